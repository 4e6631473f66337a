//! The order guard: an AFTER ROW trigger on any application table that keeps `open_orders` of
//! `credit.account` equal to the sum of the customer's open orders, refusing any change that would
//! raise a customer's exposure past the limit.
//!
//! Why AFTER ROW: it sees the row as finally stored (after every BEFORE trigger, and only for the
//! branch INSERT ... ON CONFLICT actually took), so the counter can never drift from the table.
//! Why one conditional UPDATE: the row lock plus PostgreSQL's re-check of the WHERE clause against
//! the latest row version (EvalPlanQual) make check-and-reserve atomic under READ COMMITTED; under
//! REPEATABLE READ and SERIALIZABLE a concurrent change of the same account raises 40001 instead.
//! Orders of different customers touch different rows and never wait on each other.
use crate::core::decision::{self, Reason};
use crate::core::money::MAX_AMOUNT;
use crate::error::{self, Code, OrRaise};
use crate::{guc, input, internal};
use pgrx::pg_sys::{self, Oid, PgOid};
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::{AnyNumeric, PgBuiltInOids};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

// ---------------------------------------------------------------------------------------------
// Trigger configuration, read from the trigger's arguments once per trigger and cached per backend.
// Arguments: customer column, amount column, status column ('' for none), open statuses...
// Column names (not numbers) are what the trigger carries, so pg_dump/restore keeps it valid.

#[derive(Clone, Copy, PartialEq, Eq)]
enum AmountKind {
    Numeric,
    Int2,
    Int4,
    Int8,
}

struct Column {
    attnum: i32,
    name: String,
    typoid: Oid,
}

struct Config {
    customer: Column,
    amount: Column,
    amount_kind: AmountKind,
    status: Option<Column>,
    open_statuses: Vec<String>,
}

thread_local! {
    static MAX_NUMERIC: AnyNumeric = input::numeric(MAX_AMOUNT);
    static INFINITY: AnyNumeric = AnyNumeric::try_from("Infinity").expect("numeric infinity");
    static CONFIGS: RefCell<HashMap<Oid, Rc<Config>>> = RefCell::new(HashMap::new());
    static PLANS: RefCell<Option<Rc<Plans>>> = const { RefCell::new(None) };
}

unsafe fn find_column(tupdesc: pg_sys::TupleDesc, name: &str, table: &str) -> Column {
    let natts = (*tupdesc).natts as usize;
    let attrs = (*tupdesc).attrs.as_slice(natts);
    for (i, att) in attrs.iter().enumerate() {
        if att.attisdropped {
            continue;
        }
        let attname = CStr::from_ptr(att.attname.data.as_ptr()).to_string_lossy();
        if attname == name {
            return Column { attnum: i as i32 + 1, name: name.to_string(), typoid: att.atttypid };
        }
    }
    error::raise(
        Code::ERRCODE_UNDEFINED_COLUMN,
        format!("guarded column \"{name}\" does not exist in table {table}"),
        None,
        Some("A guarded column was renamed or dropped: run credit.unguard() and credit.guard() again."),
    )
}

unsafe fn still_matches(tupdesc: pg_sys::TupleDesc, col: &Column) -> bool {
    if col.attnum > (*tupdesc).natts {
        return false;
    }
    let att = &(*tupdesc).attrs.as_slice((*tupdesc).natts as usize)[(col.attnum - 1) as usize];
    !att.attisdropped
        && att.atttypid == col.typoid
        && CStr::from_ptr(att.attname.data.as_ptr()).to_bytes() == col.name.as_bytes()
}

fn amount_kind(typoid: Oid, column: &str) -> AmountKind {
    match PgOid::from(typoid) {
        PgOid::BuiltIn(PgBuiltInOids::NUMERICOID) => AmountKind::Numeric,
        PgOid::BuiltIn(PgBuiltInOids::INT2OID) => AmountKind::Int2,
        PgOid::BuiltIn(PgBuiltInOids::INT4OID) => AmountKind::Int4,
        PgOid::BuiltIn(PgBuiltInOids::INT8OID) => AmountKind::Int8,
        _ => error::raise(
            Code::ERRCODE_DATATYPE_MISMATCH,
            format!("amount column \"{column}\" must be numeric, smallint, integer or bigint"),
            None,
            Some("Money is never kept in floating point."),
        ),
    }
}

unsafe fn config(trigger: &PgTrigger<'_>) -> Rc<Config> {
    let tg = trigger.trigger();
    let tupdesc = (*trigger.trigger_data().tg_relation).rd_att;
    let cached = CONFIGS.with(|c| c.borrow().get(&tg.tgoid).cloned());
    if let Some(cfg) = cached {
        let status_ok = cfg.status.as_ref().is_none_or(|s| still_matches(tupdesc, s));
        if still_matches(tupdesc, &cfg.customer) && still_matches(tupdesc, &cfg.amount) && status_ok {
            return cfg;
        }
    }
    let args = trigger.extra_args().unwrap_or_default();
    if args.len() < 3 {
        error::raise(
            Code::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
            "credit guard trigger was created without its arguments",
            None,
            Some("Attach the guard with credit.guard(), not CREATE TRIGGER."),
        )
    }
    let table = trigger.table_name().unwrap_or_default();
    let customer = find_column(tupdesc, &args[0], &table);
    let amount = find_column(tupdesc, &args[1], &table);
    let kind = amount_kind(amount.typoid, &amount.name);
    let status = (!args[2].is_empty()).then(|| find_column(tupdesc, &args[2], &table));
    let cfg = Rc::new(Config {
        customer,
        amount,
        amount_kind: kind,
        status,
        open_statuses: args[3..].to_vec(),
    });
    CONFIGS.with(|c| c.borrow_mut().insert(tg.tgoid, cfg.clone()));
    cfg
}

// ---------------------------------------------------------------------------------------------
// Reading a row.

unsafe fn attr(tuple: *mut pg_sys::HeapTupleData, tupdesc: pg_sys::TupleDesc, col: &Column) -> Option<pg_sys::Datum> {
    let mut isnull = false;
    let d = pg_sys::heap_getattr(tuple, col.attnum, tupdesc, &mut isnull);
    (!isnull).then_some(d)
}

/// The text form of a value, the same as `value::text` in SQL (so bpchar loses its padding).
unsafe fn as_text(datum: pg_sys::Datum, typoid: Oid) -> String {
    match PgOid::from(typoid) {
        PgOid::BuiltIn(PgBuiltInOids::TEXTOID) | PgOid::BuiltIn(PgBuiltInOids::VARCHAROID) => {
            String::from_datum(datum, false).unwrap_or_default()
        }
        _ => {
            let mut typoutput = Oid::INVALID;
            let mut varlena = false;
            pg_sys::getTypeOutputInfo(typoid, &mut typoutput, &mut varlena);
            let cstr = pg_sys::OidOutputFunctionCall(typoutput, datum);
            let s = CStr::from_ptr(cstr).to_string_lossy().into_owned();
            pg_sys::pfree(cstr.cast());
            if typoid == pg_sys::BPCHAROID {
                s.trim_end_matches(' ').to_string()
            } else {
                s
            }
        }
    }
}

struct Contribution {
    customer: String,
    amount: AnyNumeric,
}

/// What a row adds to its customer's open orders: its amount when the row is open, else nothing.
/// A new row is validated (a bad open order is refused); an old row only counts if it was valid,
/// the same rule credit.verify() uses.
unsafe fn contribution(
    cfg: &Config,
    tuple: *mut pg_sys::HeapTupleData,
    tupdesc: pg_sys::TupleDesc,
    is_new: bool,
    table: &dyn Fn() -> String,
) -> Option<Contribution> {
    if let Some(status_col) = &cfg.status {
        let status = attr(tuple, tupdesc, status_col).map(|d| as_text(d, status_col.typoid))?;
        if !cfg.open_statuses.iter().any(|s| *s == status) {
            return None;
        }
    }
    let customer = match attr(tuple, tupdesc, &cfg.customer) {
        Some(d) => as_text(d, cfg.customer.typoid),
        None if is_new => error::raise(
            Code::ERRCODE_NOT_NULL_VIOLATION,
            format!("open order in {} has no customer", table()),
            None,
            Some("Every open order of a guarded table must name its customer."),
        ),
        None => return None,
    };
    let amount = match attr(tuple, tupdesc, &cfg.amount) {
        Some(d) => match cfg.amount_kind {
            AmountKind::Numeric => AnyNumeric::from_datum(d, false).expect("not null"),
            AmountKind::Int2 => AnyNumeric::from(i16::from_datum(d, false).expect("not null")),
            AmountKind::Int4 => AnyNumeric::from(i32::from_datum(d, false).expect("not null")),
            AmountKind::Int8 => AnyNumeric::from(i64::from_datum(d, false).expect("not null")),
        },
        None if is_new => error::raise(
            Code::ERRCODE_NOT_NULL_VIOLATION,
            format!("open order of customer \"{customer}\" in {} has no amount", table()),
            None,
            None,
        ),
        None => return None,
    };
    let not_valid_number = amount.is_nan()
        || matches!(amount.sign(), pgrx::datum::numeric::Sign::Negative)
        || INFINITY.with(|inf| amount == *inf);
    let valid = !not_valid_number && MAX_NUMERIC.with(|max| amount <= *max);
    if !valid {
        if !is_new {
            return None;
        }
        if not_valid_number {
            error::raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("order amount {amount} of customer \"{customer}\" is not a valid amount"),
                Some("Order amounts must be zero or positive finite numbers.".into()),
                Some("Record returns and corrections as credit notes (credit.post_credit_note)."),
            )
        }
        error::raise(
            Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("order amount {amount} of customer \"{customer}\" is out of range"),
            Some(format!("The largest amount pg_credit accepts is {MAX_AMOUNT}.")),
            None,
        )
    }
    Some(Contribution { customer, amount })
}

// ---------------------------------------------------------------------------------------------
// Reserving and releasing. Plans are prepared once per backend and kept (SPI_keepplan). Operators
// are schema-qualified because the trigger does not pin search_path (that would cost a GUC save and
// restore on every row).

struct Plans {
    reserve: OwnedPreparedStatement,
    release: OwnedPreparedStatement,
    lookup: OwnedPreparedStatement,
}

fn plans(c: &SpiClient<'_>) -> Rc<Plans> {
    if let Some(p) = PLANS.with(|p| p.borrow().clone()) {
        return p;
    }
    let text = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
    let numeric = PgOid::BuiltIn(PgBuiltInOids::NUMERICOID);
    let reserve = c
        .prepare_mut(
            "UPDATE credit.account SET open_orders = open_orders OPERATOR(pg_catalog.+) $2, \
                 exposure = exposure OPERATOR(pg_catalog.+) $2 \
             WHERE customer OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'active' \
             AND exposure OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.<=) \
                 CASE WHEN temporary_limit_until OPERATOR(pg_catalog.>=) CURRENT_DATE \
                      THEN temporary_limit ELSE credit_limit END",
            &[text, numeric],
        )
        .or_raise()
        .keep();
    let release = c
        .prepare_mut(
            "UPDATE credit.account SET open_orders = open_orders OPERATOR(pg_catalog.-) $2, \
                 exposure = exposure OPERATOR(pg_catalog.-) $2 \
             WHERE customer OPERATOR(pg_catalog.=) $1",
            &[text, numeric],
        )
        .or_raise()
        .keep();
    // Locks: it waits for a concurrent release (a cancellation, a payment) to commit or roll back
    // and then reads the latest row, so a refusal is never based on a stale exposure.
    let lookup = c
        .prepare_mut(
            "SELECT CASE WHEN temporary_limit_until OPERATOR(pg_catalog.>=) CURRENT_DATE \
                         THEN temporary_limit ELSE credit_limit END, exposure, status \
             FROM credit.account WHERE customer OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
            &[text],
        )
        .or_raise()
        .keep();
    let p = Rc::new(Plans { reserve, release, lookup });
    PLANS.with(|slot| *slot.borrow_mut() = Some(p.clone()));
    p
}

fn release(c: &mut SpiClient<'_>, p: &Plans, customer: &str, amount: &AnyNumeric) {
    if *amount == AnyNumeric::from(0) {
        return;
    }
    c.update(&p.release, None, &[customer.into(), amount.clone().into()]).or_raise();
}

/// Checks and reserves `amount` on the customer's account in one statement; on refusal, explains.
fn reserve(c: &mut SpiClient<'_>, p: &Plans, customer: &str, amount: &AnyNumeric, change: &str) {
    // The conditional UPDATE skips a row whose snapshot version fails its WHERE clause without
    // waiting for concurrent writers. So before refusing, lock the row (waiting for any uncommitted
    // release) and decide on its latest version; if the order fits now, reserve again.
    for _ in 0..3 {
        let t = c.update(&p.reserve, None, &[customer.into(), amount.clone().into()]).or_raise();
        if t.len() == 1 {
            return;
        }
        let t = c.update(&p.lookup, Some(1), &[customer.into()]).or_raise();
        if t.is_empty() {
            if guc::ALLOW_ORDERS_WITHOUT_ACCOUNT.get() {
                return;
            }
            refuse(customer, Reason::NoAccount, None, amount, change);
        }
        let row = t.first();
        let limit: AnyNumeric = row.get(1).or_raise().expect("NOT NULL");
        let exposure: AnyNumeric = row.get(2).or_raise().expect("NOT NULL");
        let status: String = row.get(3).or_raise().expect("NOT NULL");
        let account = crate::account::decision_account(&limit, &exposure, &status);
        let d = decision::decide(Some(&account), input::decimal(amount));
        if let Some(reason) = d.reasons.first() {
            refuse(customer, *reason, Some((&limit, &exposure)), amount, change);
        }
    }
    error::raise(
        Code::ERRCODE_T_R_SERIALIZATION_FAILURE,
        format!("could not reserve credit for customer \"{customer}\": the account keeps changing"),
        None,
        Some("Retry the transaction."),
    )
}

fn refuse(customer: &str, reason: Reason, numbers: Option<(&AnyNumeric, &AnyNumeric)>, amount: &AnyNumeric, change: &str) -> ! {
    let message = match reason {
        Reason::NoAccount => format!("customer \"{customer}\" has no credit account: order refused"),
        Reason::Blacklisted => format!("customer \"{customer}\" is blacklisted: order refused"),
        Reason::OnHold => format!("customer \"{customer}\" is on credit hold: order refused"),
        Reason::OverLimit => format!("order exceeds the credit limit of customer \"{customer}\""),
    };
    let detail = match numbers {
        None => format!("{change} {amount}; there is no row for this customer in credit.account."),
        Some((limit, exposure)) => {
            let after = exposure.clone() + amount.clone();
            let over = after.clone() - limit.clone();
            let mut d = format!("Credit limit {limit}, exposure {exposure}, {change} {amount}: exposure would be {after}");
            if over > AnyNumeric::from(0) {
                d.push_str(&format!(", {over} over the limit"));
            }
            d.push('.');
            d
        }
    };
    let hint = match reason {
        Reason::NoAccount => "Create a credit account for the customer (INSERT INTO credit.account), or take the order as cash in advance.",
        Reason::Blacklisted => "The customer is blacklisted; only a credit manager can reinstate the account.",
        Reason::OnHold => "The account is on hold; a credit manager must set it back to active before new credit orders.",
        Reason::OverLimit => "Reduce the order, collect payment first, or ask a credit manager to raise the limit. credit.check(customer, amount) shows the numbers.",
    };
    error::raise(Code::ERRCODE_CHECK_VIOLATION, message, Some(detail), Some(hint))
}

enum Step<'a> {
    Reserve(&'a str, AnyNumeric, &'static str),
    Release(&'a str, AnyNumeric),
}

impl Step<'_> {
    fn customer(&self) -> &str {
        match self {
            Step::Reserve(c, ..) | Step::Release(c, _) => c,
        }
    }
}

/// AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW on a guarded table.
#[pg_trigger]
fn _guard_row<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, std::convert::Infallible> {
    unsafe {
        let td = trigger.trigger_data();
        let ev = td.tg_event;
        let row_level = ev & pg_sys::TRIGGER_EVENT_ROW != 0;
        let after = ev & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_AFTER;
        if !row_level || !after {
            error::raise(
                Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "credit._guard_row() must be fired AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW",
                None,
                Some("Attach the guard with credit.guard(), not CREATE TRIGGER."),
            )
        }
        let cfg = config(trigger);
        let tupdesc = (*td.tg_relation).rd_att;
        let event = td.tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
        let table = || trigger.table_name().unwrap_or_default();
        let zero = AnyNumeric::from(0);

        let mut steps: Vec<Step> = Vec::with_capacity(2);
        let old_c;
        let new_c;
        match event {
            pg_sys::TRIGGER_EVENT_INSERT => {
                new_c = contribution(&cfg, td.tg_trigtuple, tupdesc, true, &table);
                if let Some(n) = &new_c {
                    steps.push(Step::Reserve(&n.customer, n.amount.clone(), "order amount"));
                }
            }
            pg_sys::TRIGGER_EVENT_DELETE => {
                old_c = contribution(&cfg, td.tg_trigtuple, tupdesc, false, &table);
                if let Some(o) = &old_c {
                    steps.push(Step::Release(&o.customer, o.amount.clone()));
                }
            }
            pg_sys::TRIGGER_EVENT_UPDATE => {
                old_c = contribution(&cfg, td.tg_trigtuple, tupdesc, false, &table);
                new_c = contribution(&cfg, td.tg_newtuple, tupdesc, true, &table);
                match (&old_c, &new_c) {
                    (None, None) => {}
                    (Some(o), None) => steps.push(Step::Release(&o.customer, o.amount.clone())),
                    (None, Some(n)) => steps.push(Step::Reserve(&n.customer, n.amount.clone(), "reopened order amount")),
                    (Some(o), Some(n)) if o.customer == n.customer => {
                        let delta = n.amount.clone() - o.amount.clone();
                        if delta > zero {
                            steps.push(Step::Reserve(&n.customer, delta, "order increase"));
                        } else if delta < zero {
                            steps.push(Step::Release(&n.customer, -delta));
                        }
                    }
                    (Some(o), Some(n)) => {
                        steps.push(Step::Release(&o.customer, o.amount.clone()));
                        steps.push(Step::Reserve(&n.customer, n.amount.clone(), "order amount moved in"));
                        // One global lock order (by customer) so two orders moving in opposite
                        // directions between the same customers cannot deadlock.
                        steps.sort_by(|a, b| a.customer().cmp(b.customer()));
                    }
                }
            }
            _ => {}
        }
        if steps.is_empty() {
            return Ok(None);
        }
        internal::scope(|| {
            Spi::connect_mut(|c| {
                let p = plans(c);
                for step in &steps {
                    match step {
                        Step::Reserve(cust, amt, change) => reserve(c, &p, cust, amt, change),
                        Step::Release(cust, amt) => release(c, &p, cust, amt),
                    }
                }
            })
        });
    }
    // AFTER ROW: the return value is ignored.
    Ok(None)
}

/// BEFORE TRUNCATE ... FOR EACH STATEMENT on a guarded table: the table's open orders leave the
/// customers' exposure before the rows go.
#[pg_trigger]
fn _guard_truncate<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, std::convert::Infallible> {
    let ev = trigger.trigger_data().tg_event;
    if ev & pg_sys::TRIGGER_EVENT_OPMASK != pg_sys::TRIGGER_EVENT_TRUNCATE {
        error::raise(
            Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "credit._guard_truncate() must be fired BEFORE TRUNCATE",
            None,
            Some("Attach the guard with credit.guard(), not CREATE TRIGGER."),
        )
    }
    let relid = trigger.relid().expect("trigger has a relation");
    crate::verify::shift_open_orders(relid, -1);
    Ok(None)
}
