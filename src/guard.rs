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
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ffi::CStr;
use std::rc::Rc;

// ---------------------------------------------------------------------------------------------
// Trigger configuration, read from the trigger's arguments once per trigger and cached per backend.
// Arguments: customer column, amount column, status column ('' for none), mode ('reject' or
// 'hold'), hold value ('' for none), number of key columns, key columns..., open statuses...
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Reject,
    Hold,
}

struct Config {
    customer: Column,
    amount: Column,
    amount_kind: AmountKind,
    status: Option<Column>,
    open_statuses: Vec<String>,
    mode: Mode,
    hold_value: String,
    key_columns: Vec<Column>,
}

thread_local! {
    static MAX_NUMERIC: AnyNumeric = input::numeric(MAX_AMOUNT);
    static INFINITY: AnyNumeric = AnyNumeric::try_from("Infinity").expect("numeric infinity");
    static ZERO: AnyNumeric = AnyNumeric::from(0);
    static CONFIGS: RefCell<HashMap<Oid, Rc<Config>>> = RefCell::new(HashMap::new());
    static PLANS: RefCell<Option<Rc<Plans>>> = const { RefCell::new(None) };
    /// The row a hold is being written to (relation, block, offset): its own guard run is skipped.
    static HOLDING: Cell<Option<(Oid, u32, u16)>> = const { Cell::new(None) };
    /// Set while a credit controller's override releases a held order: reserve without checks.
    static FORCE: Cell<bool> = const { Cell::new(false) };
    /// Set when a row that was held is held again (a release whose order changed meanwhile).
    static REHELD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a release's UPDATE of a held row) and tells whether the guard held the row again.
pub fn reheld_during(f: impl FnOnce()) -> bool {
    REHELD.with(|r| r.set(false));
    f();
    REHELD.with(|r| r.replace(false))
}

/// Runs `f` with the guard reserving without checks (a recorded override of a held order).
pub fn forced<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            FORCE.with(|x| x.set(false));
        }
    }
    FORCE.with(|x| x.set(true));
    let _r = Reset;
    f()
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

/// The trigger acts only on a relation credit.guard() registered, with the configuration it was
/// registered with: a guard trigger created by hand (EXECUTE on the function is public, so that
/// partitions can be created) refuses every write instead of counting fake orders.
fn check_registration(relid: Oid, args: &[String], table: &str) {
    // A database still on an older version's SQL (before ALTER EXTENSION UPDATE) registers
    // guards without this check; its triggers were made by credit.guard() then.
    let current = Spi::get_one::<bool>(
        "SELECT pg_catalog.to_regprocedure('credit._guard_trigger_args(credit.guarded_table)') IS NOT NULL",
    )
    .or_raise()
    .unwrap_or(false);
    if !current {
        return;
    }
    let registered: Option<Vec<Option<String>>> = Spi::connect(|c| {
        let t = c
            .select(
                "SELECT credit._guard_trigger_args(g) FROM credit.guarded_table g \
                 WHERE g.table_name OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass",
                Some(1),
                &[relid.into()],
            )
            .or_raise();
        (!t.is_empty()).then(|| t.first().get_one::<Vec<Option<String>>>().or_raise().unwrap_or_default())
    });
    let Some(registered) = registered else {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("table {table} is not guarded by credit.guard()"),
            Some("Its credit guard trigger was created by hand; the guard counts orders only of tables credit.guard() registered.".into()),
            Some("A credit admin guards the table with credit.guard(); drop the hand-made trigger."),
        )
    };
    if registered.iter().map(|a| a.as_deref().unwrap_or("")).ne(args.iter().map(String::as_str)) {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("the credit guard trigger of table {table} does not match its registration"),
            Some("Its arguments differ from credit.guarded_table; writes are refused until a credit admin repairs it.".into()),
            Some("credit.guard_status shows the problem; unguard and guard the table again."),
        )
    }
}

unsafe fn config(trigger: &PgTrigger<'_>) -> Rc<Config> {
    let tg = trigger.trigger();
    let tupdesc = (*trigger.trigger_data().tg_relation).rd_att;
    let cached = CONFIGS.with(|c| c.borrow().get(&tg.tgoid).cloned());
    if let Some(cfg) = cached {
        let status_ok = cfg.status.as_ref().is_none_or(|s| still_matches(tupdesc, s));
        let keys_ok = cfg.key_columns.iter().all(|k| still_matches(tupdesc, k));
        if still_matches(tupdesc, &cfg.customer) && still_matches(tupdesc, &cfg.amount) && status_ok && keys_ok {
            return cfg;
        }
    }
    let args = trigger.extra_args().unwrap_or_default();
    let relid = (*trigger.trigger_data().tg_relation).rd_id;
    check_registration(relid, &args, &trigger.table_name().unwrap_or_default());
    let nkeys: usize = args.get(5).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    if args.len() < 6 || args.len() < 6 + nkeys {
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
    let mode = if args[3] == "hold" { Mode::Hold } else { Mode::Reject };
    let key_columns = args[6..6 + nkeys].iter().map(|k| find_column(tupdesc, k, &table)).collect();
    let cfg = Rc::new(Config {
        customer,
        amount,
        amount_kind: kind,
        status,
        open_statuses: args[6 + nkeys..].to_vec(),
        mode,
        hold_value: args[4].clone(),
        key_columns,
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
    if valid && is_new && cfg.amount_kind == AmountKind::Numeric {
        // One precision for the SQL check and the core's decision: more fractional digits than
        // an amount may carry are refused, never rounded away.
        let d = attr(tuple, tupdesc, &cfg.amount).expect("checked above");
        let precise = match crate::numeric_fast::decode_datum(d) {
            crate::numeric_fast::Decoded::Value(v) => crate::core::money::check(v).is_ok(),
            _ => false,
        };
        if !precise {
            error::raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("order amount {amount} of customer \"{customer}\" has more than {} fractional digits", crate::core::money::MAX_FRACTION_DIGITS),
                Some("pg_credit compares amounts exactly; it does not round them.".into()),
                Some("Round the amount to the currency's precision."),
            )
        }
    }
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
//
// Lock order, the same for every writer: the customers' own rows in customer order, then their
// group heads' rows in customer order. Orders in one group therefore never deadlock.

struct Plans {
    reserve: OwnedPreparedStatement,
    shift: OwnedPreparedStatement,
    group_reserve: OwnedPreparedStatement,
    group_shift: OwnedPreparedStatement,
    lookup: OwnedPreparedStatement,
}

/// The order fits: the account is active, not blocked by the overdue rule, and exposure plus the
/// order stays within the usable limit (0 for prepayment-only customers) — the rule of
/// core::decision, as SQL over one credit.account row.
macro_rules! fits {
    () => {
        concat!(
            "status OPERATOR(pg_catalog.=) 'active' \
             AND exposure OPERATOR(pg_catalog.+) member_exposure OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.<=) \
                 CASE WHEN policy_prepayment_only THEN 0 ELSE ",
            crate::account::limit_in_force!(),
            " END \
             AND (oldest_open_due IS NULL OR policy_overdue_block_days IS NULL \
                  OR oldest_open_due OPERATOR(pg_catalog.>=) (CURRENT_DATE OPERATOR(pg_catalog.-) policy_overdue_block_days))"
        )
    };
}

/// Whether this reservation crossed the warning line: at or above it now, below it before. The
/// comparison stays in SQL so the common case costs the executor a few numeric comparisons and the
/// trigger reads back one boolean.
macro_rules! crossed_warning {
    () => {
        concat!(
            "policy_warn_ratio IS NOT NULL AND credit_limit OPERATOR(pg_catalog.>) 0 AND NOT policy_prepayment_only \
             AND exposure OPERATOR(pg_catalog.+) member_exposure OPERATOR(pg_catalog.>=) (",
            crate::account::limit_in_force!(),
            " OPERATOR(pg_catalog.*) policy_warn_ratio) \
             AND exposure OPERATOR(pg_catalog.+) member_exposure OPERATOR(pg_catalog.-) $2 OPERATOR(pg_catalog.<) (",
            crate::account::limit_in_force!(),
            " OPERATOR(pg_catalog.*) policy_warn_ratio)"
        )
    };
}

fn plans(c: &SpiClient<'_>) -> Rc<Plans> {
    if let Some(p) = PLANS.with(|p| p.borrow().clone()) {
        return p;
    }
    let text = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
    let numeric = PgOid::BuiltIn(PgBuiltInOids::NUMERICOID);
    let prepare = |sql: &str, args: &[PgOid]| c.prepare_mut(sql, args).or_raise().keep();
    let reserve = prepare(
        concat!(
            "UPDATE credit.account SET open_orders = open_orders OPERATOR(pg_catalog.+) $2, \
                 exposure = exposure OPERATOR(pg_catalog.+) $2 \
             WHERE customer OPERATOR(pg_catalog.=) $1 AND ",
            fits!(),
            " RETURNING parent, ",
            crossed_warning!()
        ),
        &[text, numeric],
    );
    let shift = prepare(
        "UPDATE credit.account SET open_orders = open_orders OPERATOR(pg_catalog.+) $2, \
             exposure = exposure OPERATOR(pg_catalog.+) $2 \
         WHERE customer OPERATOR(pg_catalog.=) $1 RETURNING parent",
        &[text, numeric],
    );
    let group_reserve = prepare(
        concat!(
            "UPDATE credit.account SET member_exposure = member_exposure OPERATOR(pg_catalog.+) $2 \
             WHERE customer OPERATOR(pg_catalog.=) $1 AND ",
            fits!(),
            " RETURNING NULL::pg_catalog.text, ",
            crossed_warning!()
        ),
        &[text, numeric],
    );
    let group_shift = prepare(
        "UPDATE credit.account SET member_exposure = member_exposure OPERATOR(pg_catalog.+) $2 \
         WHERE customer OPERATOR(pg_catalog.=) $1",
        &[text, numeric],
    );
    // Locks: it waits for a concurrent release (a cancellation, a payment) to commit or roll back
    // and then reads the latest row, so a refusal is never based on a stale exposure.
    let lookup = prepare(
        concat!(
            "SELECT ",
            crate::account::decision_columns!(),
            " FROM credit.account WHERE customer OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE"
        ),
        &[text],
    );
    let p = Rc::new(Plans { reserve, shift, group_reserve, group_shift, lookup });
    PLANS.with(|slot| *slot.borrow_mut() = Some(p.clone()));
    p
}

/// Why an order did not fit, with the numbers for the message.
pub struct Refusal {
    pub customer: String,
    pub reasons: Vec<Reason>,
    pub loaded: Option<crate::account::Loaded>,
    pub amount: AnyNumeric,
    pub group: bool,
    /// What the amount is, for the message: "order amount", "order increase", ...
    pub change: &'static str,
}

struct NearLimit {
    customer: String,
    exposure: AnyNumeric,
    limit: AnyNumeric,
    ratio: AnyNumeric,
    amount: AnyNumeric,
}

/// The numbers of a crossing, read back from the (locked) account row; only when a warning is due.
fn warning_of(c: &mut SpiClient<'_>, p: &Plans, customer: &str, amount: &AnyNumeric) -> Option<NearLimit> {
    let t = c.update(&p.lookup, Some(1), &[customer.into()]).or_raise();
    if t.is_empty() {
        return None;
    }
    let l = crate::account::Loaded::from_row(&t.first().get_heap_tuple().or_raise().expect("one row"));
    let ratio = l.account.warn_ratio.map(input::numeric)?;
    if l.usable_limit() <= AnyNumeric::from(0) {
        return None;
    }
    Some(NearLimit { customer: customer.to_string(), exposure: l.exposure.clone(), limit: l.usable_limit(), ratio, amount: amount.clone() })
}

/// Checks and reserves `amount` on one account row in one statement (its own limit, or for a group
/// head the whole group's). On refusal, locks the row and decides on its latest version; if the
/// order fits by then (a concurrent release committed), reserves again.
fn try_reserve(
    c: &mut SpiClient<'_>,
    p: &Plans,
    customer: &str,
    amount: &AnyNumeric,
    group: bool,
    warnings: &mut Vec<NearLimit>,
) -> Result<Option<String>, Refusal> {
    // The conditional UPDATE skips a row whose snapshot version fails its WHERE clause without
    // waiting for concurrent writers, hence the locked look before refusing.
    let plan = if group { &p.group_reserve } else { &p.reserve };
    for _ in 0..3 {
        let t = c.update(plan, None, &[customer.into(), amount.clone().into()]).or_raise();
        if t.len() == 1 {
            let t = t.first();
            let parent = t.get::<String>(1).or_raise();
            if t.get::<bool>(2).or_raise() == Some(true) {
                if let Some(w) = warning_of(c, p, customer, amount) {
                    warnings.push(w);
                }
            }
            return Ok(parent);
        }
        let t = c.update(&p.lookup, Some(1), &[customer.into()]).or_raise();
        if t.is_empty() {
            if !group && guc::ALLOW_ORDERS_WITHOUT_ACCOUNT.get() {
                return Ok(None);
            }
            return Err(Refusal { customer: customer.into(), reasons: vec![Reason::NoAccount], loaded: None, amount: amount.clone(), group, change: "order amount" });
        }
        let loaded = crate::account::Loaded::from_row(&t.first().get_heap_tuple().or_raise().expect("one row"));
        let d = decision::decide(Some(&loaded.account), None, input::decimal(amount));
        if !d.allowed() {
            let reasons = if group {
                let mut r: Vec<Reason> = d
                    .reasons
                    .iter()
                    .map(|r| match r {
                        Reason::OverLimit | Reason::PrepaymentRequired => Reason::GroupOverLimit,
                        _ => Reason::GroupBlocked,
                    })
                    .collect();
                r.dedup();
                r
            } else {
                d.reasons
            };
            return Err(Refusal { customer: customer.into(), reasons, loaded: Some(loaded), amount: amount.clone(), group, change: "amount" });
        }
    }
    error::raise(
        Code::ERRCODE_T_R_SERIALIZATION_FAILURE,
        format!("could not reserve credit for customer \"{customer}\": the account keeps changing"),
        None,
        Some("Retry the transaction."),
    )
}

/// Moves exposure without checks (releases, overrides, compensation); returns the group head.
fn shift(c: &mut SpiClient<'_>, p: &Plans, customer: &str, delta: &AnyNumeric, group: bool) -> Option<String> {
    if group {
        c.update(&p.group_shift, None, &[customer.into(), delta.clone().into()]).or_raise();
        return None;
    }
    let t = c.update(&p.shift, None, &[customer.into(), delta.clone().into()]).or_raise();
    if t.is_empty() {
        return None;
    }
    t.first().get::<String>(1).or_raise()
}

/// Net changes per account, applied in the global lock order; what was applied so far is kept in
/// `applied` so a held order can be undone exactly.
#[derive(Default)]
struct Applied {
    own: BTreeMap<String, AnyNumeric>,
    heads: BTreeMap<String, AnyNumeric>,
    parents: HashMap<String, Option<String>>,
}

fn zero() -> AnyNumeric {
    ZERO.with(|z| z.clone())
}

fn add_to(map: &mut BTreeMap<String, AnyNumeric>, key: &str, delta: &AnyNumeric) {
    match map.get_mut(key) {
        Some(e) => *e = e.clone() + delta.clone(),
        None => {
            map.insert(key.to_string(), delta.clone());
        }
    }
}

/// `new_order_of`: the customer an order newly counts for (an insert, a reopened or moved-in
/// order); its order is checked even at amount 0 (a blacklisted customer gets no orders at all).
/// `track`: keep what was applied (hold mode needs it to undo a held order exactly).
fn apply(
    c: &mut SpiClient<'_>,
    p: &Plans,
    deltas: &BTreeMap<String, AnyNumeric>,
    new_order_of: Option<&str>,
    applied: &mut Applied,
    track: bool,
    warnings: &mut Vec<NearLimit>,
) -> Result<(), Refusal> {
    use std::cmp::Ordering;
    let zero = zero();
    let force = FORCE.with(|f| f.get());
    let mut heads: BTreeMap<String, AnyNumeric> = BTreeMap::new();
    for (customer, delta) in deltas {
        let check = match delta.cmp(&zero) {
            Ordering::Greater => !force,
            Ordering::Equal if new_order_of == Some(customer.as_str()) => !force,
            Ordering::Equal => continue,
            Ordering::Less => false,
        };
        let parent = if check {
            try_reserve(c, p, customer, delta, false, warnings)?
        } else {
            shift(c, p, customer, delta, false)
        };
        if track {
            add_to(&mut applied.own, customer, delta);
            applied.parents.insert(customer.clone(), parent.clone());
        }
        if let Some(h) = parent {
            add_to(&mut heads, &h, delta);
        }
    }
    for (head, delta) in &heads {
        let ord = delta.cmp(&zero);
        if ord == Ordering::Equal {
            continue;
        }
        if ord == Ordering::Greater && !force {
            try_reserve(c, p, head, delta, true, warnings)?;
        } else {
            shift(c, p, head, delta, true);
        }
        if track {
            add_to(&mut applied.heads, head, delta);
        }
    }
    Ok(())
}

/// Brings the accounts from what was applied to what is wanted, without checks (a held order:
/// its old version's amount leaves, nothing new comes in).
fn compensate(c: &mut SpiClient<'_>, p: &Plans, applied: &Applied, wanted: &BTreeMap<String, AnyNumeric>) {
    let zero = zero();
    let mut keys: Vec<&String> = applied.own.keys().chain(wanted.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut heads: BTreeMap<String, AnyNumeric> = BTreeMap::new();
    for k in keys {
        let have = applied.own.get(k).cloned().unwrap_or_else(|| zero.clone());
        let want = wanted.get(k).cloned().unwrap_or_else(|| zero.clone());
        let diff = want.clone() - have;
        let parent = if diff != zero {
            shift(c, p, k, &diff, false)
        } else {
            applied.parents.get(k).cloned().flatten()
        };
        if let Some(h) = parent.or_else(|| applied.parents.get(k).cloned().flatten()) {
            add_to(&mut heads, &h, &want);
        }
    }
    let mut hk: Vec<&String> = heads.keys().chain(applied.heads.keys()).collect();
    hk.sort();
    hk.dedup();
    for h in hk {
        let have = applied.heads.get(h).cloned().unwrap_or_else(|| zero.clone());
        let want = heads.get(h).cloned().unwrap_or_else(|| zero.clone());
        let diff = want - have;
        if diff != zero {
            shift(c, p, h, &diff, true);
        }
    }
}

pub fn refusal_message(r: &Refusal) -> (String, String, &'static str) {
    let customer = &r.customer;
    let first = r.reasons.first().copied().unwrap_or(Reason::OverLimit);
    let message = match first {
        Reason::NoAccount => format!("customer \"{customer}\" has no credit account: order refused"),
        Reason::Blacklisted => format!("customer \"{customer}\" is blacklisted: order refused"),
        Reason::OnHold => format!("customer \"{customer}\" is on credit hold: order refused"),
        Reason::Overdue => format!("customer \"{customer}\" has invoices too far past due: order refused"),
        Reason::PrepaymentRequired => format!("customer \"{customer}\" must pay in advance: order refused"),
        Reason::OverLimit => format!("order exceeds the credit limit of customer \"{customer}\""),
        Reason::GroupBlocked => format!("credit group \"{customer}\" is not active: order refused"),
        Reason::GroupOverLimit => format!("order exceeds the shared credit limit of group \"{customer}\""),
    };
    let amount = &r.amount;
    let detail = match &r.loaded {
        None => format!("{} {amount}; there is no row for this customer in credit.account.", r.change),
        Some(l) => {
            let after = l.exposure.clone() + amount.clone();
            let usable = l.usable_limit();
            let over = after.clone() - usable.clone();
            let mut d = if r.group {
                format!("Group limit {usable}, group exposure {}, amount {amount}: group exposure would be {after}", l.exposure)
            } else {
                format!("Credit limit {usable}, exposure {}, {} {amount}: exposure would be {after}", l.exposure, r.change)
            };
            if over > AnyNumeric::from(0) {
                d.push_str(&format!(", {over} over the limit"));
            }
            if let (Some(days), Some(block)) = (l.account.days_past_due, l.account.overdue_block_days) {
                if days > block {
                    d.push_str(&format!("; the oldest open invoice is {days} days past due (policy allows {block})"));
                }
            }
            d.push('.');
            if r.reasons.len() > 1 {
                d.push_str(&format!(" Reasons: {}.", r.reasons.iter().map(|x| x.code()).collect::<Vec<_>>().join(", ")));
            }
            d
        }
    };
    let hint = match first {
        Reason::NoAccount => "Create a credit account for the customer (INSERT INTO credit.account), or take the order as cash in advance.",
        Reason::Blacklisted => "The customer is blacklisted; only a credit manager can reinstate the account.",
        Reason::OnHold => "The account is on hold; a credit manager must set it back to active before new credit orders.",
        Reason::Overdue => "Collect the overdue invoices first (credit.aging_detail lists them).",
        Reason::PrepaymentRequired => "The customer's policy requires payment in advance: post the prepayment with credit.post_payment first.",
        Reason::OverLimit => "Reduce the order, collect payment first, or ask a credit manager to raise the limit. credit.check(customer, amount) shows the numbers.",
        Reason::GroupBlocked => "The customer's credit group is on hold, blacklisted or overdue; a credit manager must clear the group account.",
        Reason::GroupOverLimit => "The group's members together would exceed the group's limit. credit.check(customer, amount) shows the numbers.",
    };
    (message, detail, hint)
}

fn refuse(r: &Refusal, relid: Oid) -> ! {
    let (message, detail, hint) = refusal_message(r);
    crate::refusal::record(r, relid, &message);
    error::raise(Code::ERRCODE_CHECK_VIOLATION, message, Some(detail), Some(hint))
}

fn announce(c: &mut SpiClient<'_>, w: &NearLimit) {
    let ratio_pct = (w.ratio.clone() * AnyNumeric::from(100)).to_string();
    pgrx::pg_sys::panic::ErrorReport::new(
        Code::ERRCODE_WARNING,
        format!("customer \"{}\" is near the credit limit", w.customer),
        "pg_credit",
    )
    .set_detail(format!("Exposure {} of limit {} ({ratio_pct} % warning line) after an order of {}.", w.exposure, w.limit, w.amount))
    .report(PgLogLevel::WARNING);
    c.update(
        "INSERT INTO credit.event (kind, customer, after, acting_as) \
         VALUES ('near_limit', $1, pg_catalog.jsonb_build_object('exposure', $2, 'limit', $3, 'warn_ratio', $4, 'amount', $5), \
                 credit._caller())",
        None,
        &[
            w.customer.as_str().into(),
            w.exposure.clone().into(),
            w.limit.clone().into(),
            w.ratio.clone().into(),
            w.amount.clone().into(),
        ],
    )
    .or_raise();
}

// ---------------------------------------------------------------------------------------------
// Holding an order (hold mode).

unsafe fn tid_of(tuple: *mut pg_sys::HeapTupleData) -> (u32, u16) {
    let t = &(*tuple).t_self;
    (((t.ip_blkid.bi_hi as u32) << 16) | t.ip_blkid.bi_lo as u32, t.ip_posid)
}

unsafe fn row_key(cfg: &Config, tuple: *mut pg_sys::HeapTupleData, tupdesc: pg_sys::TupleDesc) -> String {
    let mut m = serde_json::Map::new();
    for k in &cfg.key_columns {
        let v = attr(tuple, tupdesc, k).map(|d| serde_json::Value::String(as_text(d, k.typoid)));
        m.insert(k.name.clone(), v.unwrap_or(serde_json::Value::Null));
    }
    serde_json::Value::Object(m).to_string()
}

/// Sets the saved row's status to the hold value and queues it in credit.order_hold.
unsafe fn hold(
    c: &mut SpiClient<'_>,
    cfg: &Config,
    relid: Oid,
    tuple: *mut pg_sys::HeapTupleData,
    tupdesc: pg_sys::TupleDesc,
    r: &Refusal,
    order: &Contribution,
    already_queued: bool,
) -> bool {
    let status_col = cfg.status.as_ref().expect("hold mode has a status column");
    let original = attr(tuple, tupdesc, status_col).map(|d| as_text(d, status_col.typoid)).unwrap_or_default();
    let key = row_key(cfg, tuple, tupdesc);
    let sql: String = c
        .update(
            "SELECT pg_catalog.format('UPDATE %s SET %I = %L WHERE ctid OPERATOR(pg_catalog.=) $1::pg_catalog.tid', \
                    $1::pg_catalog.regclass, $2::pg_catalog.text, $3::pg_catalog.text)",
            Some(1),
            &[relid.into(), status_col.name.as_str().into(), cfg.hold_value.as_str().into()],
        )
        .or_raise()
        .first()
        .get_one()
        .or_raise()
        .expect("format");
    let (block, offset) = tid_of(tuple);
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            HOLDING.with(|h| h.set(None));
        }
    }
    HOLDING.with(|h| h.set(Some((relid, block, offset))));
    let n = {
        let _r = Reset;
        // With the table owner's rights: the owner's own triggers on the table run as the owner.
        as_table_owner(relid, || c.update(&sql, None, &[format!("({block},{offset})").into()]).or_raise().len())
    };
    if n != 1 {
        return false;
    }
    let reasons_txt = r.reasons.iter().map(|x| x.code()).collect::<Vec<_>>().join(", ");
    let warn = || {
        pgrx::pg_sys::panic::ErrorReport::new(
            Code::ERRCODE_WARNING,
            format!("order of customer \"{}\" put on credit hold ({reasons_txt})", order.customer),
            "pg_credit",
        )
        .set_detail(refusal_message(r).1)
        .set_hint("A credit controller releases it with credit.release_hold() (see credit.hold_queue).")
        .report(PgLogLevel::WARNING);
    };
    if already_queued {
        // Still held: its queue entry stands.
        REHELD.with(|x| x.set(true));
        warn();
        return true;
    }
    let reasons: Vec<String> = r.reasons.iter().map(|x| x.code().to_string()).collect();
    c.update(
        "WITH h AS (INSERT INTO credit.order_hold (table_name, row_key, customer, amount, reasons, original_status, held_by) \
                    VALUES ($1::pg_catalog.oid::pg_catalog.regclass, $2::pg_catalog.jsonb, $3, $4, $5, $6, credit._caller()) \
                    RETURNING id, held_by) \
         INSERT INTO credit.event (kind, customer, reason, after, acting_as) \
         SELECT 'order_held', $3, pg_catalog.array_to_string($5, ', '), \
                pg_catalog.jsonb_build_object('hold_id', h.id, 'table', $1::pg_catalog.oid::pg_catalog.regclass::pg_catalog.text, \
                                              'row_key', $2::pg_catalog.jsonb, 'amount', $4), h.held_by \
           FROM h",
        None,
        &[relid.into(), key.as_str().into(), order.customer.as_str().into(), order.amount.clone().into(), reasons.into(), original.as_str().into()],
    )
    .or_raise();
    warn();
    true
}

/// A held row left its hold by another way than credit.release_hold (the application changed or
/// deleted it): its queue entry is closed.
unsafe fn close_hold(c: &mut SpiClient<'_>, cfg: &Config, relid: Oid, old: *mut pg_sys::HeapTupleData, tupdesc: pg_sys::TupleDesc, withdrawn: bool) {
    let key = row_key(cfg, old, tupdesc);
    c.update(
        "UPDATE credit.order_hold SET status = $3, decided_at = pg_catalog.clock_timestamp(), \
                decided_by = credit._caller(), \
                comment = 'changed by the application' \
         WHERE table_name OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass \
           AND row_key OPERATOR(pg_catalog.=) $2::pg_catalog.jsonb AND status OPERATOR(pg_catalog.=) 'held'",
        None,
        &[relid.into(), key.as_str().into(), (if withdrawn { "withdrawn" } else { "released" }).into()],
    )
    .or_raise();
}


crate::trigger::c_trigger!(_guard_row_wrapper, pg_finfo__guard_row_wrapper, "_guard_row", _guard_row_entry);

fn _guard_row_entry<'a>(t: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    _guard_row(t).unwrap_or_else(|e| crate::error::conversion(e))
}

/// AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW on a guarded table.
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
        let relid = (*td.tg_relation).rd_id;
        let event = td.tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
        if let Some((r, b, o)) = HOLDING.with(|h| h.get()) {
            if r == relid && event == pg_sys::TRIGGER_EVENT_UPDATE && tid_of(td.tg_trigtuple) == (b, o) {
                return Ok(None);
            }
        }
        let cfg = config(trigger);
        let tupdesc = (*td.tg_relation).rd_att;
        let table = || trigger.table_name().unwrap_or_default();

        let (old_c, new_c, new_tuple) = match event {
            pg_sys::TRIGGER_EVENT_INSERT => (None, contribution(&cfg, td.tg_trigtuple, tupdesc, true, &table), td.tg_trigtuple),
            pg_sys::TRIGGER_EVENT_DELETE => (contribution(&cfg, td.tg_trigtuple, tupdesc, false, &table), None, std::ptr::null_mut()),
            pg_sys::TRIGGER_EVENT_UPDATE => (
                contribution(&cfg, td.tg_trigtuple, tupdesc, false, &table),
                contribution(&cfg, td.tg_newtuple, tupdesc, true, &table),
                td.tg_newtuple,
            ),
            _ => (None, None, std::ptr::null_mut()),
        };
        // In hold mode, a held row that the application changes or deletes leaves the queue.
        let was_held = cfg.mode == Mode::Hold && event != pg_sys::TRIGGER_EVENT_INSERT && {
            let s = cfg.status.as_ref().expect("hold mode has a status column");
            let held = |t| attr(t, tupdesc, s).map(|d| as_text(d, s.typoid)).is_some_and(|v| v == cfg.hold_value);
            held(td.tg_trigtuple) && (event == pg_sys::TRIGGER_EVENT_DELETE || !held(td.tg_newtuple))
        };
        let mut deltas: BTreeMap<String, AnyNumeric> = BTreeMap::new();
        if let Some(o) = &old_c {
            add_to(&mut deltas, &o.customer, &-o.amount.clone());
        }
        if let Some(n) = &new_c {
            add_to(&mut deltas, &n.customer, &n.amount);
        }
        if let (Some(o), Some(n)) = (&old_c, &new_c) {
            if o.customer == n.customer {
                let zero = zero();
                deltas.retain(|_, d| *d != zero); // an update that leaves the amount as it was
            }
        }
        if deltas.is_empty() && !was_held {
            return Ok(None);
        }
        in_own_context(|| internal::scope(|| {
            Spi::connect_mut(|c| {
                let p = plans(c);
                let mut applied = Applied::default();
                let mut warnings = Vec::new();
                let new_order_of = match (&old_c, &new_c) {
                    (Some(o), Some(n)) if o.customer == n.customer => None,
                    (_, n) => n.as_ref().map(|n| n.customer.as_str()),
                };
                match apply(c, &p, &deltas, new_order_of, &mut applied, cfg.mode == Mode::Hold, &mut warnings) {
                    Ok(()) => {
                        if was_held {
                            // Re-opened and fitting: released by the application; cancelled or deleted: withdrawn.
                            close_hold(c, &cfg, relid, td.tg_trigtuple, tupdesc, new_c.is_none());
                        }
                        for w in &warnings {
                            announce(c, w);
                        }
                    }
                    Err(mut r) => {
                        if !r.group {
                            r.change = match (&old_c, &new_c) {
                                (None, _) if event == pg_sys::TRIGGER_EVENT_INSERT => "order amount",
                                (None, _) => "reopened order amount",
                                (Some(o), Some(n)) if o.customer == n.customer => "order increase",
                                _ => "order amount moved in",
                            };
                        }
                        let holdable = cfg.mode == Mode::Hold && new_c.is_some();
                        if holdable {
                            let mut wanted = BTreeMap::new();
                            if let Some(o) = &old_c {
                                add_to(&mut wanted, &o.customer, &-o.amount.clone());
                            }
                            compensate(c, &p, &applied, &wanted);
                            if hold(c, &cfg, relid, new_tuple, tupdesc, &r, new_c.as_ref().expect("holdable"), was_held) {
                                return;
                            }
                        }
                        refuse(&r, relid)
                    }
                }
            })
        }));
    }
    // AFTER ROW: the return value is ignored.
    Ok(None)
}


crate::trigger::c_trigger!(_guard_truncate_wrapper, pg_finfo__guard_truncate_wrapper, "_guard_truncate", _guard_truncate_entry);

fn _guard_truncate_entry<'a>(t: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    _guard_truncate(t).unwrap_or_else(|e| crate::error::conversion(e))
}

/// BEFORE TRUNCATE ... FOR EACH STATEMENT on a guarded table: the table's open orders leave the
/// customers' exposure before the rows go.
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
    // SAFETY: a trigger's relation is open while it fires.
    let relid = unsafe { (*trigger.trigger_data().tg_relation).rd_id };
    // A relation that is not registered (a hand-made trigger) or has no rows of its own (a
    // partitioned table) has no open orders to release.
    let deltas: BTreeMap<String, AnyNumeric> = open_orders_by_customer(relid).into_iter().map(|(c, s)| (c, -s)).collect();
    internal::scope(|| move_open_orders(relid, &deltas, false));
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Whole tables' open orders (guard, unguard, TRUNCATE, ATTACH, DETACH, DROP, rewrites).

/// One guarded relation's open orders per customer (its own rows: FROM ONLY), read with the
/// extension's rights by a query over built-in casts only (credit._open_orders_query).
pub fn open_orders_by_customer(relid: Oid) -> BTreeMap<String, AnyNumeric> {
    Spi::connect(|c| {
        let q: String = c
            .select("SELECT credit._open_orders_query($1)", Some(1), &[relid.into()])
            .or_raise()
            .first()
            .get_one()
            .or_raise()
            .unwrap_or_default();
        c.select(&format!("SELECT customer, pg_catalog.sum(amount) FROM ({q}) o GROUP BY customer"), None, &[])
            .or_raise()
            .filter_map(|r| Some((r.get::<String>(1).or_raise()?, r.get::<AnyNumeric>(2).or_raise()?)))
            .collect()
    })
}

/// Moves open orders of a table into or out of the customers' exposure, in the guard's lock
/// order; `checked`: every customer's increase must fit, as an order would, else 23514 naming
/// the table. Returns how many customers have no credit account (not counted when unchecked).
pub fn move_open_orders(relid: Oid, deltas: &BTreeMap<String, AnyNumeric>, checked: bool) -> i64 {
    if deltas.is_empty() {
        return 0;
    }
    Spi::connect_mut(|c| {
        let p = plans(c);
        let mut applied = Applied::default();
        let mut warnings = Vec::new();
        let result = if checked {
            apply(c, &p, deltas, None, &mut applied, false, &mut warnings)
        } else {
            forced(|| apply(c, &p, deltas, None, &mut applied, false, &mut warnings))
        };
        if let Err(mut r) = result {
            r.change = "open orders of the table";
            let (message, detail, _) = refusal_message(&r);
            let table = crate::roles::relation_name(relid);
            error::raise(
                Code::ERRCODE_CHECK_VIOLATION,
                format!("the open orders of table {table} do not fit: {message}"),
                Some(detail),
                Some("Rows that join a guarded table (a partition attached, a table made to inherit, a rewrite that changes amounts) are checked like orders."),
            )
        }
        let customers: Vec<String> = deltas.keys().cloned().collect();
        c.select(
            "SELECT pg_catalog.count(*) FROM pg_catalog.unnest($1::pg_catalog.text[]) x(c) \
              WHERE NOT EXISTS (SELECT 1 FROM credit.account a WHERE a.customer OPERATOR(pg_catalog.=) x.c)",
            Some(1),
            &[customers.into()],
        )
        .or_raise()
        .first()
        .get_one::<i64>()
        .or_raise()
        .unwrap_or(0)
    })
}

/// After a guarded table was rewritten: what changed per customer moves, increases checked.
pub fn reserve_changes(relid: Oid, before: &BTreeMap<String, AnyNumeric>, after: &BTreeMap<String, AnyNumeric>) {
    let mut deltas: BTreeMap<String, AnyNumeric> = BTreeMap::new();
    for (customer, amount) in after {
        add_to(&mut deltas, customer, amount);
    }
    for (customer, amount) in before {
        add_to(&mut deltas, customer, &-amount.clone());
    }
    let zero = zero();
    deltas.retain(|_, d| *d != zero);
    internal::scope(|| move_open_orders(relid, &deltas, true));
}

thread_local! {
    /// The extension's own user id and security context, saved while pg_credit writes into an
    /// application table with its owner's rights (innermost last).
    static OWN_CONTEXT: RefCell<Vec<(Oid, i32)>> = const { RefCell::new(Vec::new()) };
}

struct Restore(Oid, i32);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores saved ids (also while unwinding from an ERROR).
        unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) }
    }
}

fn current_context() -> (Oid, i32) {
    let (mut user, mut sec) = (Oid::INVALID, 0i32);
    // SAFETY: plain read of the backend's current user id.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut sec) };
    (user, sec)
}

/// Runs `f` with the rights of the relation's owner, in a security-restricted operation (as
/// REFRESH MATERIALIZED VIEW does): a write into an application table fires the owner's own
/// triggers and defaults, which must never run with the extension's rights — nor switch roles or
/// queue code for commit time.
pub fn as_table_owner<R>(relid: Oid, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            OWN_CONTEXT.with(|c| c.borrow_mut().pop());
        }
    }
    let owner = crate::roles::relation_owner(relid);
    let (user, sec) = current_context();
    OWN_CONTEXT.with(|c| c.borrow_mut().push((user, sec)));
    let _pop = Pop;
    // SAFETY: plain write of the backend's current user id; Restore puts it back.
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            owner,
            sec | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32,
        );
    }
    let _restore = Restore(user, sec);
    f()
}

/// The guard's own work when its trigger fires inside such a write (a held order released):
/// back in the extension's context, whose deferred publishing of events PostgreSQL would refuse
/// inside a security-restricted operation. Only pg_credit's code runs here.
fn in_own_context<R>(f: impl FnOnce() -> R) -> R {
    let Some((user, sec)) = OWN_CONTEXT.with(|c| c.borrow().last().copied()) else { return f() };
    let (now_user, now_sec) = current_context();
    // SAFETY: plain write of the backend's current user id; Restore puts it back.
    unsafe { pg_sys::SetUserIdAndSecContext(user, sec) };
    let _restore = Restore(now_user, now_sec);
    f()
}
