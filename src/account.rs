//! Credit accounts: the protection of the maintained columns, and the read side
//! (`exposure`, `available_credit`, `check`).
use crate::core::decision::{self, Account, Status};
use pgrx::spi::SpiClient;
use crate::error::{self, Code, OrRaise};
use crate::{guc, input, internal};
use pgrx::prelude::*;
use pgrx::AnyNumeric;

const MAINTAINED: [&str; 5] = ["open_ar", "unapplied_credit", "open_orders", "exposure", "member_exposure"];

crate::trigger::finfo_v1!(pg_finfo_credit_protect_account);

/// BEFORE UPDATE OF the maintained columns on credit.account: only pg_credit itself may write
/// them. Every guarded order's account UPDATE fires it, so it is a bare C-ABI trigger (no pgrx
/// trigger wrapper): check the internal-write flag, pass the new row through.
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_protect_account(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    if !pgrx::trigger_support::called_as_trigger(fcinfo) {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            "trigger functions can only be called as triggers: credit._protect_account()",
            None,
            None,
        )
    }
    let td = (*fcinfo).context as *mut pg_sys::TriggerData;
    if internal::active() {
        return pg_sys::Datum::from((*td).tg_newtuple);
    }
    error::raise(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        "open_ar, unapplied_credit, open_orders and exposure of credit.account are maintained by pg_credit",
        Some("They change only through credit.post_invoice, credit.post_payment, credit.post_credit_note, credit.write_off and guarded order tables.".into()),
        Some("If credit.verify() reports drift, a superuser can repair it with credit.rebuild_exposure()."),
    )
}


crate::trigger::c_trigger!(_account_insert_wrapper, pg_finfo__account_insert_wrapper, "_account_insert", _account_insert_entry);

fn _account_insert_entry<'a>(t: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    _account_insert(t).unwrap_or_else(|e| crate::error::conversion(e))
}

/// BEFORE INSERT on credit.account (SECURITY DEFINER, to read guarded tables). The maintained
/// columns start from the source rows: open orders already in guarded tables count at once. A
/// superuser may supply them instead: that is how pg_restore brings back a consistent dump.
fn _account_insert<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, pgrx::datum::TryFromDatumError> {
    only_on_account(trigger, "credit._account_insert");
    let Some(new) = trigger.new() else { only_on_account_error("credit._account_insert") };
    if internal::active() {
        return Ok(Some(new.into_owned()));
    }
    let supplied = MAINTAINED.iter().any(|c| {
        new.get_by_name::<AnyNumeric>(c)
            .ok()
            .flatten()
            .is_some_and(|v| v != AnyNumeric::from(0))
    });
    if supplied {
        // The caller, not this function's owner: GetOuterUserId ignores SECURITY DEFINER.
        if unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) } {
            let mut row = new.into_owned();
            let policy = Spi::connect(|c| row_policy(c, &row))?;
            set_policy_columns(&mut row, &policy)?;
            return Ok(Some(row));
        }
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "open_ar, unapplied_credit, open_orders and exposure of credit.account are maintained by pg_credit",
            Some("Insert the account without them; open orders already in guarded tables are counted automatically.".into()),
            None,
        )
    }
    let customer: String = new.get_by_name("customer").ok().flatten().unwrap_or_default();
    let open_orders = crate::verify::open_orders_of(&customer);
    let mut row = new.into_owned();
    row.set_by_name("open_orders", open_orders.clone())?;
    row.set_by_name("exposure", open_orders.clone())?;
    row.set_by_name("member_exposure", AnyNumeric::from(0))?;
    row.set_by_name("oldest_open_due", None::<pgrx::datum::Date>)?;
    row.set_by_name("collection_hold_since", None::<pgrx::datum::Date>)?;
    row.set_by_name("legal_referred_on", None::<pgrx::datum::Date>)?;
    let parent: Option<String> = row.get_by_name("parent")?;
    // pg_restore inserts accounts in no particular order: a member may come before its head. A
    // superuser's insert of an account created earlier is a restore; its head is restored with it.
    let created_at: Option<pgrx::datum::TimestampWithTimeZone> = row.get_by_name("created_at")?;
    let restoring = unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) }
        && created_at.is_some_and(|t| pg_sys::TimestampTz::from(t) < unsafe { pg_sys::GetCurrentTransactionStartTimestamp() });
    let policy = Spi::connect_mut(|c| -> Result<_, pgrx::datum::TryFromDatumError> {
        if let Some(p) = parent.as_ref().filter(|_| !restoring) {
            head_check(c, &customer, p);
            shift_head(c, p, &open_orders);
        }
        row_policy(c, &row)
    })?;
    set_policy_columns(&mut row, &policy)?;
    Ok(Some(row))
}

/// The account triggers are SECURITY DEFINER: fired on another table (a trigger created by hand,
/// with EXECUTE granted too widely) they would write credit's counters from fake rows.
fn only_on_account(trigger: &PgTrigger<'_>, function: &str) {
    let relid = trigger.relid().ok();
    let account = Spi::get_one::<pg_sys::Oid>("SELECT 'credit.account'::pg_catalog.regclass::pg_catalog.oid").or_raise();
    if relid.is_none() || relid != account {
        only_on_account_error(function)
    }
}

fn only_on_account_error(function: &str) -> ! {
    error::raise(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{function}() is a row trigger of credit.account only"),
        None,
        None,
    )
}


crate::trigger::c_trigger!(_protect_ledger_wrapper, pg_finfo__protect_ledger_wrapper, "_protect_ledger", _protect_ledger_entry);

fn _protect_ledger_entry<'a>(t: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    _protect_ledger(t).unwrap_or_else(|e| crate::error::conversion(e))
}

/// BEFORE INSERT OR UPDATE OR DELETE on the ledger tables: they are facts, written only by the
/// posting functions. A superuser may INSERT (pg_restore does); corrections are new documents.
fn _protect_ledger<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, pgrx::datum::TryFromDatumError> {
    let op = trigger.op().ok();
    let row = match op {
        Some(PgTriggerOperation::Delete) => trigger.old(),
        _ => trigger.new(),
    };
    let restore_insert = matches!(op, Some(PgTriggerOperation::Insert)) && unsafe { pg_sys::superuser() };
    if internal::active() || restore_insert {
        return Ok(row.map(|r| r.into_owned()));
    }
    let table = trigger.table_name().unwrap_or_default();
    error::raise(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("credit.{table} is written only by pg_credit's posting functions"),
        Some("Invoices, payments, credit notes, write-offs and their allocations are facts; correct a mistake by posting a new document (for example a credit note).".into()),
        Some("Use credit.post_invoice, credit.post_payment, credit.post_credit_note or credit.write_off."),
    )
}

/// SQL: what the decision needs from one credit.account row, in the order `Loaded::from_row`
/// reads it. Qualified operators: the guard runs under the caller's search_path.
/// SQL: the limit in force today on one credit.account row — the temporary limit while it lasts,
/// capped by the policy maximum.
macro_rules! limit_in_force {
    () => {
        "LEAST(CASE WHEN temporary_limit_until OPERATOR(pg_catalog.>=) CURRENT_DATE \
                    THEN temporary_limit ELSE credit_limit END, policy_max_limit)"
    };
}
pub(crate) use limit_in_force;

macro_rules! decision_columns {
    () => {
        concat!(
            crate::account::limit_in_force!(),
            ", exposure OPERATOR(pg_catalog.+) member_exposure, status, policy_prepayment_only, \
             CURRENT_DATE OPERATOR(pg_catalog.-) oldest_open_due, policy_overdue_block_days, policy_warn_ratio, parent"
        )
    };
}
pub(crate) use decision_columns;

/// One account as read for a decision, with the numbers for messages.
pub struct Loaded {
    pub account: Account,
    /// Limit in force (temporary limit while it lasts, capped by the policy maximum).
    pub limit: AnyNumeric,
    /// Exposure the limit is held against (a group head's includes its members').
    pub exposure: AnyNumeric,
    pub parent: Option<String>,
}

impl Loaded {
    pub fn from_row(row: &pgrx::spi::SpiHeapTupleData<'_>) -> Loaded {
        let limit: AnyNumeric = row.get(1).or_raise().expect("credit_limit is NOT NULL");
        let exposure: AnyNumeric = row.get(2).or_raise().expect("exposure is NOT NULL");
        let status: String = row.get(3).or_raise().expect("status is NOT NULL");
        let account = Account {
            credit_limit: input::decimal(&limit),
            exposure: input::decimal(&exposure),
            // An unknown status cannot come from the validated table; treat it as the strictest.
            status: Status::parse(&status).unwrap_or(Status::Blacklisted),
            prepayment_only: row.get::<bool>(4).or_raise().unwrap_or(false),
            days_past_due: row.get::<i32>(5).or_raise(),
            overdue_block_days: row.get::<i32>(6).or_raise(),
            warn_ratio: row.get::<AnyNumeric>(7).or_raise().map(|r| input::decimal(&r)),
        };
        Loaded { account, limit, exposure, parent: row.get(8).or_raise() }
    }

    /// The limit orders are held against: 0 for prepayment-only customers.
    pub fn usable_limit(&self) -> AnyNumeric {
        if self.account.prepayment_only { AnyNumeric::from(0) } else { self.limit.clone() }
    }

    pub fn available(&self) -> AnyNumeric {
        self.usable_limit() - self.exposure.clone()
    }
}

/// The account as the decision logic sees it; None when the customer has no credit account.
pub fn load(customer: &str) -> Option<Loaded> {
    Spi::connect(|c| {
        let t = c
            .select(
                concat!("SELECT ", decision_columns!(), " FROM credit.account WHERE customer OPERATOR(pg_catalog.=) $1"),
                Some(1),
                &[customer.into()],
            )
            .or_raise();
        if t.is_empty() {
            return None;
        }
        Some(Loaded::from_row(&t.first().get_heap_tuple().or_raise().expect("one row")))
    })
}

/// The account and its group head.
fn load_with_group(customer: &str) -> Option<(Loaded, Option<Loaded>)> {
    let own = load(customer)?;
    let head = own.parent.as_deref().and_then(load);
    Some((own, head))
}

/// Open receivables (net of unapplied credit) plus open orders of every guarded table; for a group
/// head, its members' too.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn exposure(customer: Option<&str>) -> AnyNumeric {
    let customer = input::text(customer, "customer");
    match load(customer) {
        Some(l) => l.exposure,
        None => error::unknown_customer(customer),
    }
}

/// What the customer may still order: the limit in force minus exposure, and for a group member
/// no more than its group has left; negative when over.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn available_credit(customer: Option<&str>) -> AnyNumeric {
    let customer = input::text(customer, "customer");
    match load_with_group(customer) {
        Some((own, None)) => own.available(),
        Some((own, Some(head))) => {
            let (a, b) = (own.available(), head.available());
            if a < b { a } else { b }
        }
        None => error::unknown_customer(customer),
    }
}

/// What the guard would decide for an order of `amount` now, with every reason. Reserves nothing.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn check(
    customer: Option<&str>,
    amount: Option<AnyNumeric>,
) -> TableIterator<
    'static,
    (
        name!(allowed, bool),
        name!(decision, String),
        name!(credit_limit, Option<AnyNumeric>),
        name!(exposure, Option<AnyNumeric>),
        name!(available, Option<AnyNumeric>),
        name!(reasons, Vec<String>),
        name!(exposure_after, Option<AnyNumeric>),
        name!(warnings, Vec<String>),
    ),
> {
    let customer = input::text(customer, "customer");
    let amount_dec = input::non_negative_amount(amount.as_ref(), "amount");
    let Some((own, head)) = load_with_group(customer) else {
        if guc::ALLOW_ORDERS_WITHOUT_ACCOUNT.get() {
            return TableIterator::once((true, "accept".into(), None, None, None, vec![], None, vec![]));
        }
        error::unknown_customer(customer)
    };
    let d = decision::decide(Some(&own.account), head.as_ref().map(|h| &h.account), amount_dec);
    let mut available = own.available();
    if let Some(h) = &head {
        if h.available() < available {
            available = h.available();
        }
    }
    let after = own.exposure.clone() + input::numeric(amount_dec);
    TableIterator::once((
        d.allowed(),
        d.word().into(),
        Some(own.usable_limit()),
        Some(own.exposure),
        Some(available),
        d.reasons.iter().map(|r| r.code().to_string()).collect(),
        Some(after),
        d.warnings.iter().map(|w| w.code().to_string()).collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Groups, policy copy and limit control on DBA changes of an account.


crate::trigger::c_trigger!(_limit_control_wrapper, pg_finfo__limit_control_wrapper, "_limit_control", _limit_control_entry);

fn _limit_control_entry<'a>(t: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    _limit_control(t).unwrap_or_else(|e| crate::error::conversion(e))
}

/// BEFORE UPDATE OF credit_limit, temporary_limit, temporary_limit_until on credit.account: limits
/// change through credit.request_limit / credit.approve; only the admin role (pg_credit.admin_role)
/// and superusers may set them directly.
fn _limit_control<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, pgrx::datum::TryFromDatumError> {
    let (Some(new), Some(old)) = (trigger.new(), trigger.old()) else { only_on_account_error("credit._limit_control") };
    let changed = ["credit_limit", "temporary_limit"].iter().any(|c| {
        old.get_by_name::<AnyNumeric>(c).ok().flatten() != new.get_by_name::<AnyNumeric>(c).ok().flatten()
    }) || old.get_by_name::<pgrx::datum::Date>("temporary_limit_until").ok().flatten()
        != new.get_by_name::<pgrx::datum::Date>("temporary_limit_until").ok().flatten();
    if changed && !internal::active() && !crate::roles::is_admin(crate::roles::caller()) {
        let customer: String = new.get_by_name("customer").ok().flatten().unwrap_or_default();
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("credit limits of customer \"{customer}\" change only through approval"),
            Some(format!(
                "Direct changes of credit_limit and temporary limits are reserved to superusers and members of role \"{}\" (pg_credit.admin_role).",
                guc::admin_role().unwrap_or_default()
            )),
            Some("Request the change with credit.request_limit(customer, new_limit, reason); approvers sign it with credit.approve()."),
        )
    }
    Ok(Some(new.into_owned()))
}

fn head_check(c: &SpiClient<'_>, customer: &str, parent: &str) {
    if parent == customer {
        error::raise(Code::ERRCODE_CHECK_VIOLATION, format!("customer \"{customer}\" cannot be its own group head"), None, None)
    }
    let t = c
        .select("SELECT parent FROM credit.account WHERE customer = $1", Some(1), &[parent.into()])
        .or_raise();
    if t.is_empty() {
        error::raise(
            Code::ERRCODE_FOREIGN_KEY_VIOLATION,
            format!("group head \"{parent}\" of customer \"{customer}\" has no credit account"),
            None,
            Some("Create the group's account first; its credit_limit is the limit the members share."),
        )
    }
    if t.first().get_one::<String>().or_raise().is_some() {
        error::raise(
            Code::ERRCODE_CHECK_VIOLATION,
            format!("\"{parent}\" is itself a member of a group and cannot head one"),
            Some("Credit groups are one level deep.".into()),
            None,
        )
    }
    let members = c
        .select("SELECT 1 FROM credit.account WHERE parent = $1 LIMIT 1", Some(1), &[customer.into()])
        .or_raise();
    if !members.is_empty() {
        error::raise(
            Code::ERRCODE_CHECK_VIOLATION,
            format!("customer \"{customer}\" heads a credit group and cannot join another"),
            Some("Credit groups are one level deep.".into()),
            None,
        )
    }
}

fn shift_head(c: &mut SpiClient<'_>, head: &str, delta: &AnyNumeric) {
    if *delta == AnyNumeric::from(0) {
        return;
    }
    internal::scope(|| {
        c.update(
            "UPDATE credit.account SET member_exposure = member_exposure + $2 WHERE customer = $1",
            None,
            &[head.into(), delta.clone().into()],
        )
        .or_raise();
    });
}

fn has_members(c: &SpiClient<'_>, customer: &str) -> bool {
    !c.select("SELECT 1 FROM credit.account WHERE parent = $1 LIMIT 1", Some(1), &[customer.into()])
        .or_raise()
        .is_empty()
}

/// The policy in force for the row's customer type and region.
fn row_policy(c: &SpiClient<'_>, row: &PgHeapTuple<'_, AllocatedByRust>) -> Result<crate::core::policy::Effective, pgrx::datum::TryFromDatumError> {
    let ctype: Option<String> = row.get_by_name("customer_type")?;
    let region: Option<String> = row.get_by_name("region")?;
    Ok(crate::policy::effective(c, ctype.as_deref(), region.as_deref()))
}

/// Copies the policy into the row. Outside any SPI connection: the modified tuple must live in the
/// trigger's memory context, not SPI's (freed when the connection ends).
fn set_policy_columns(row: &mut PgHeapTuple<'_, AllocatedByRust>, e: &crate::core::policy::Effective) -> Result<(), pgrx::datum::TryFromDatumError> {
    row.set_by_name("policy_max_limit", e.max_limit.map(input::numeric))?;
    row.set_by_name("policy_warn_ratio", input::numeric(e.warn_ratio))?;
    row.set_by_name("policy_overdue_block_days", e.overdue_block_days)?;
    row.set_by_name("policy_prepayment_only", e.prepayment_required)?;
    Ok(())
}


crate::trigger::c_trigger!(_account_derive_wrapper, pg_finfo__account_derive_wrapper, "_account_derive", _account_derive_entry);

fn _account_derive_entry<'a>(t: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    _account_derive(t).unwrap_or_else(|e| crate::error::conversion(e))
}

/// BEFORE UPDATE OF customer, parent, customer_type, region OR DELETE on credit.account (SECURITY
/// DEFINER): keeps group heads' member_exposure and the account's policy copy in step.
fn _account_derive<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, pgrx::datum::TryFromDatumError> {
    only_on_account(trigger, "credit._account_derive");
    let op = trigger.op().ok();
    let Some(old) = trigger.old() else { only_on_account_error("credit._account_derive") };
    let old_customer: String = old.get_by_name("customer")?.unwrap_or_default();
    let old_parent: Option<String> = old.get_by_name("parent")?;
    let old_exposure: AnyNumeric = old.get_by_name("exposure")?.unwrap_or_default();
    if matches!(op, Some(PgTriggerOperation::Delete)) {
        Spi::connect_mut(|c| {
            if has_members(c, &old_customer) {
                error::raise(
                    Code::ERRCODE_FOREIGN_KEY_VIOLATION,
                    format!("customer \"{old_customer}\" heads a credit group"),
                    Some("Its members share its limit.".into()),
                    Some("Move the members out of the group (UPDATE credit.account SET parent = NULL) first."),
                )
            }
            if let Some(h) = &old_parent {
                shift_head(c, h, &-old_exposure.clone());
            }
        });
        return Ok(Some(old.into_owned()));
    }
    let Some(new) = trigger.new() else { only_on_account_error("credit._account_derive") };
    let mut row = new.into_owned();
    let new_customer: String = row.get_by_name("customer")?.unwrap_or_default();
    let new_parent: Option<String> = row.get_by_name("parent")?;
    let mut exposure: AnyNumeric = row.get_by_name("exposure")?.unwrap_or_default();
    if new_customer != old_customer && Spi::connect(|c| has_members(c, &old_customer)) {
        error::raise(
            Code::ERRCODE_FOREIGN_KEY_VIOLATION,
            format!("customer \"{old_customer}\" heads a credit group and cannot be renamed"),
            None,
            Some("Move the members out of the group first."),
        )
    }
    if new_customer != old_customer {
        // Guarded tables name the customer by its key: the old name's open orders would stay
        // counted on the new name, and the new name's (uncounted until now) would be missed.
        let old_orders: AnyNumeric = old.get_by_name("open_orders")?.unwrap_or_default();
        if old_orders != AnyNumeric::from(0) {
            error::raise(
                Code::ERRCODE_FOREIGN_KEY_VIOLATION,
                format!("customer \"{old_customer}\" has open orders and cannot be renamed"),
                Some(format!("Guarded tables name the customer \"{old_customer}\" in orders worth {old_orders}.")),
                Some("Rename the customer in the order tables first (or close those orders), then rename the account."),
            )
        }
        let new_orders = crate::verify::open_orders_of(&new_customer);
        exposure = exposure + new_orders.clone();
        row.set_by_name("open_orders", new_orders)?;
        row.set_by_name("exposure", exposure.clone())?;
    }
    let policy = Spi::connect_mut(|c| -> Result<_, pgrx::datum::TryFromDatumError> {
        if new_parent != old_parent {
            if let Some(p) = &new_parent {
                head_check(c, &new_customer, p);
            }
            // Lock order: this member's row is locked already; heads come after, in name order.
            let mut heads: Vec<(String, AnyNumeric)> = Vec::new();
            if let Some(h) = &old_parent {
                heads.push((h.clone(), -old_exposure.clone()));
            }
            if let Some(h) = &new_parent {
                heads.push((h.clone(), exposure.clone()));
            }
            heads.sort_by(|a, b| a.0.cmp(&b.0));
            for (h, d) in heads {
                shift_head(c, &h, &d);
            }
        } else if let Some(h) = &new_parent {
            // A rename that brought the new name's open orders along.
            shift_head(c, h, &(exposure.clone() - old_exposure.clone()));
        }
        let type_or_region_changed = old.get_by_name::<String>("customer_type")? != row.get_by_name::<String>("customer_type")?
            || old.get_by_name::<String>("region")? != row.get_by_name::<String>("region")?;
        Ok(if type_or_region_changed { Some(row_policy(c, &row)?) } else { None })
    })?;
    if let Some(p) = policy {
        set_policy_columns(&mut row, &p)?;
    }
    Ok(Some(row))
}
