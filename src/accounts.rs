//! Credit accounts as users meet them: the triggers on `credit.account` (its maintained columns
//! protected, new accounts counted from the open orders already in guarded tables, groups and the
//! policy copy kept in step, limits changed only through approval) and the read side
//! (`credit.exposure`, `credit.available_credit`, `credit.check`, `credit.rebuild_exposure`).
//! The row itself — its read model, locks and counters — belongs to store::account.
use crate::guard::tables;
use crate::pg::args;
use crate::pg::error::{self, Code};
use crate::pg::numeric::numeric;
use crate::pg::settings;
use crate::store::{self, account, reservations};
use credit_core::decision;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;

/// Internal: sets the reason for the transaction's account changes from here on ('' clears it),
/// on Citus on the workers too, with the person and caller behind it (store::events::set_reason);
/// credit._set_status calls it. No search_path of its own: a function's SET would undo the
/// setting when it returns.
#[pg_extern]
fn _set_reason(reason: Option<&str>) {
    crate::privileges::require_internal("credit._set_reason");
    store::events::set_reason_now(reason.unwrap_or(""));
}

const MAINTAINED: [&str; 5] = ["open_ar", "unapplied_credit", "open_orders", "exposure", "member_exposure"];

crate::pg::entry::finfo_v1!(pg_finfo_credit_protect_account);

/// BEFORE UPDATE OF the maintained columns on credit.account: only pg_credit itself may write
/// them. Every guarded order's account UPDATE fires it, so it is a bare C-ABI trigger (no pgrx
/// trigger wrapper): check the internal-write flag, pass the new row through.
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_protect_account(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: fcinfo is the function manager's.
    if !unsafe { pgrx::trigger_support::called_as_trigger(fcinfo) } {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            "trigger functions can only be called as triggers: credit._protect_account()",
            None,
            None,
        )
    }
    // SAFETY: called as a trigger (checked above), so the context is its TriggerData.
    let td = unsafe { (*fcinfo).context as *mut pg_sys::TriggerData };
    // SAFETY: the trigger's relation is open for the call.
    if store::is_writing() || unsafe { store::is_remote_own_write((*td).tg_relation, store::fast_read::account_rel()) }
    {
        // SAFETY: as above.
        return pg_sys::Datum::from(unsafe { (*td).tg_newtuple });
    }
    error::raise(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        "open_ar, unapplied_credit, open_orders and exposure of credit.account are maintained by pg_credit",
        Some("They change only through credit.post_invoice, credit.post_payment, credit.post_credit_note, credit.write_off and guarded order tables.".into()),
        Some("If credit.verify() reports drift, a superuser can repair it with credit.rebuild_exposure()."),
    )
}

crate::pg::entry::finfo_v1!(pg_finfo_credit_account_written);

/// BEFORE UPDATE OR DELETE of each row, and BEFORE TRUNCATE, of credit.account (enabled ALWAYS, so
/// replication and restores fire it too): a transaction about to write an account row drops the
/// copy the fast path keeps in shared memory, and keeps anyone from caching the row until it ends.
/// Every writer fires it, pg_credit's own included; the flush's write is the one exception
/// (`reservations::flush_write`). A bare C-ABI trigger: the row path fires it per order.
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_account_written(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: fcinfo is the function manager's.
    if !unsafe { pgrx::trigger_support::called_as_trigger(fcinfo) } {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            "trigger functions can only be called as triggers: credit._account_written()",
            None,
            None,
        )
    }
    // SAFETY: called as a trigger (checked above): the context is its TriggerData, whose
    // relation and tuples are valid for the call.
    unsafe {
        let td = (*fcinfo).context as *mut pg_sys::TriggerData;
        let rel = (*td).tg_relation;
        if (*rel).rd_id != store::fast_read::account_rel() && !store::is_own_table(rel, "account") {
            only_on_account_error("credit._account_written")
        }
        let op = (*td).tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
        if op == pg_sys::TRIGGER_EVENT_TRUNCATE {
            reservations::table_written();
            return pg_sys::Datum::from(0usize);
        }
        let old = (*td).tg_trigtuple;
        let new = (*td).tg_newtuple;
        if reservations::preloaded() {
            let desc = (*rel).rd_att;
            let before = store::fast_read::customer_of((*rel).rd_id, old, desc);
            reservations::row_written(before.as_deref());
            if op == pg_sys::TRIGGER_EVENT_UPDATE {
                let after = store::fast_read::customer_of((*rel).rd_id, new, desc);
                if after != before {
                    reservations::row_written(after.as_deref());
                }
            }
        }
        pg_sys::Datum::from(if op == pg_sys::TRIGGER_EVENT_UPDATE { new } else { old })
    }
}

crate::pg::entry::c_trigger!(
    _account_insert_wrapper,
    pg_finfo__account_insert_wrapper,
    "_account_insert",
    _account_insert
);

/// BEFORE INSERT on credit.account (SECURITY DEFINER, to read guarded tables). The maintained
/// columns start from the source rows: open orders already in guarded tables count at once. A
/// superuser may supply them instead: that is how pg_restore brings back a consistent dump.
fn _account_insert<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, pgrx::datum::TryFromDatumError> {
    only_on_account(trigger, "credit._account_insert");
    let Some(new) = trigger.new() else { only_on_account_error("credit._account_insert") };
    if store::is_writing() {
        return Ok(Some(new.into_owned()));
    }
    let supplied = MAINTAINED
        .iter()
        .any(|c| new.get_by_name::<AnyNumeric>(c).ok().flatten().is_some_and(|v| v != AnyNumeric::from(0)));
    if supplied {
        // The caller, not this function's owner: GetOuterUserId ignores SECURITY DEFINER.
        // SAFETY: plain reads of the role cache.
        if unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) } {
            let mut row = new.into_owned();
            let policy = Spi::connect(|c| row_policy(c, &row))?;
            set_policy_columns(&mut row, &policy)?;
            return Ok(Some(row));
        }
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "open_ar, unapplied_credit, open_orders and exposure of credit.account are maintained by pg_credit",
            Some(
                "Insert the account without them; open orders already in guarded tables are counted automatically."
                    .into(),
            ),
            None,
        )
    }
    let customer: String = new.get_by_name("customer").ok().flatten().unwrap_or_default();
    let open_orders = tables::open_orders_of(&customer);
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
    // SAFETY: plain reads of the role cache and the transaction's start time.
    let restoring = unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) }
        && created_at
            .is_some_and(|t| pg_sys::TimestampTz::from(t) < unsafe { pg_sys::GetCurrentTransactionStartTimestamp() });
    if let Some(p) = &parent {
        refuse_group_on_citus(&customer, p);
    }
    let policy = Spi::connect_mut(|c| -> Result<_, pgrx::datum::TryFromDatumError> {
        if let Some(p) = parent.as_ref().filter(|_| !restoring) {
            account::check_group_head(c, &customer, p);
            account::move_member_exposure(c, p, &open_orders);
        }
        row_policy(c, &row)
    })?;
    set_policy_columns(&mut row, &policy)?;
    Ok(Some(row))
}

/// The account triggers are SECURITY DEFINER: fired on another table (a trigger created by hand,
/// with EXECUTE granted too widely) they would write credit's counters from fake rows.
fn only_on_account(trigger: &PgTrigger<'_>, function: &str) {
    // SAFETY: a trigger's relation is open for the call.
    if !unsafe { store::is_own_table(trigger.trigger_data().tg_relation, "account") } {
        only_on_account_error(function)
    }
}

/// On Citus a group's head may sit on another node than its members' orders, where the guard's
/// trigger cannot reach it (docs/citus.md).
fn refuse_group_on_citus(customer: &str, parent: &str) {
    if crate::pg::citus::distributed() {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            "credit groups do not work on Citus",
            Some(format!(
                "Customer \"{customer}\" would join the group of \"{parent}\", whose account may sit on another node."
            )),
            Some("Give each customer a limit of its own (docs/citus.md)."),
        )
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

/// Open receivables (net of unapplied credit) plus open orders of every guarded table; for a group
/// head, its members' too.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn exposure(customer: Option<&str>) -> AnyNumeric {
    let customer = args::text(customer, "customer");
    match account::load(customer) {
        Some(l) => l.exposure,
        None => error::unknown_customer(customer),
    }
}

/// What the customer may still order: the limit in force minus exposure, and for a group member
/// no more than its group has left; negative when over.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn available_credit(customer: Option<&str>) -> AnyNumeric {
    let customer = args::text(customer, "customer");
    match account::load_with_group(customer) {
        Some((own, None)) => own.available(),
        Some((own, Some(head))) => {
            let (a, b) = (own.available(), head.available());
            if a < b {
                a
            } else {
                b
            }
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
    let customer = args::text(customer, "customer");
    let amount_dec = args::non_negative_amount(amount.as_ref(), "amount");
    let Some((own, head)) = account::load_with_group(customer) else {
        if settings::ALLOW_ORDERS_WITHOUT_ACCOUNT.get() {
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
    let after = own.exposure.clone() + numeric(amount_dec);
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

crate::pg::entry::c_trigger!(_limit_control_wrapper, pg_finfo__limit_control_wrapper, "_limit_control", _limit_control);

/// BEFORE UPDATE OF credit_limit, temporary_limit, temporary_limit_until on credit.account: limits
/// change through credit.request_limit / credit.approve; only the admin role (pg_credit.admin_role)
/// and superusers may set them directly.
fn _limit_control<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, pgrx::datum::TryFromDatumError> {
    let (Some(new), Some(old)) = (trigger.new(), trigger.old()) else { only_on_account_error("credit._limit_control") };
    let changed = ["credit_limit", "temporary_limit"]
        .iter()
        .any(|c| old.get_by_name::<AnyNumeric>(c).ok().flatten() != new.get_by_name::<AnyNumeric>(c).ok().flatten())
        || old.get_by_name::<pgrx::datum::Date>("temporary_limit_until").ok().flatten()
            != new.get_by_name::<pgrx::datum::Date>("temporary_limit_until").ok().flatten();
    if changed && !store::is_writing() && !crate::privileges::is_admin(crate::privileges::caller()) {
        let customer: String = new.get_by_name("customer").ok().flatten().unwrap_or_default();
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("credit limits of customer \"{customer}\" change only through approval"),
            Some(format!(
                "Direct changes of credit_limit and temporary limits are reserved to superusers and members of role \"{}\" (pg_credit.admin_role).",
                settings::admin_role().unwrap_or_default()
            )),
            Some("Request the change with credit.request_limit(customer, new_limit, reason); approvers sign it with credit.approve()."),
        )
    }
    Ok(Some(new.into_owned()))
}

/// The policy in force for the row's customer type and region.
fn row_policy(
    c: &SpiClient<'_>,
    row: &PgHeapTuple<'_, AllocatedByRust>,
) -> Result<credit_core::policy::Effective, pgrx::datum::TryFromDatumError> {
    let ctype: Option<String> = row.get_by_name("customer_type")?;
    let region: Option<String> = row.get_by_name("region")?;
    Ok(crate::policy::effective(c, ctype.as_deref(), region.as_deref()))
}

/// Copies the policy into the row. Outside any SPI connection: the modified tuple must live in the
/// trigger's memory context, not SPI's (freed when the connection ends).
fn set_policy_columns(
    row: &mut PgHeapTuple<'_, AllocatedByRust>,
    e: &credit_core::policy::Effective,
) -> Result<(), pgrx::datum::TryFromDatumError> {
    row.set_by_name("policy_max_limit", e.max_limit.map(numeric))?;
    row.set_by_name("policy_warn_ratio", numeric(e.warn_ratio))?;
    row.set_by_name("policy_overdue_block_days", e.overdue_block_days)?;
    row.set_by_name("policy_prepayment_only", e.prepayment_required)?;
    Ok(())
}

crate::pg::entry::c_trigger!(
    _account_derive_wrapper,
    pg_finfo__account_derive_wrapper,
    "_account_derive",
    _account_derive
);

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
    let mut old_exposure: AnyNumeric = old.get_by_name("exposure")?.unwrap_or_default();
    let mut old_orders: AnyNumeric = old.get_by_name("open_orders")?.unwrap_or_default();
    let deleting = matches!(op, Some(PgTriggerOperation::Delete));
    // A group or name change works on the row's exposure: with the fast path, the customer's
    // open orders in shared memory come into the row first (reservations in flight wait).
    let group_or_name_changes = deleting
        || trigger.new().is_some_and(|n| {
            n.get_by_name::<String>("parent").ok() != Some(old_parent.clone())
                || n.get_by_name::<String>("customer").ok().flatten().as_deref() != Some(old_customer.as_str())
        });
    let from_memory =
        if group_or_name_changes { reservations::drain_customer(&old_customer) } else { rust_decimal::Decimal::ZERO };
    if !from_memory.is_zero() && !deleting {
        old_exposure += numeric(from_memory);
        old_orders += numeric(from_memory);
    }
    if deleting {
        Spi::connect_mut(|c| {
            if account::has_members(c, &old_customer) {
                error::raise(
                    Code::ERRCODE_FOREIGN_KEY_VIOLATION,
                    format!("customer \"{old_customer}\" heads a credit group"),
                    Some("Its members share its limit.".into()),
                    Some("Move the members out of the group (UPDATE credit.account SET parent = NULL) first."),
                )
            }
            if let Some(h) = &old_parent {
                account::move_member_exposure(c, h, &-old_exposure.clone());
            }
        });
        return Ok(Some(old.into_owned()));
    }
    let Some(new) = trigger.new() else { only_on_account_error("credit._account_derive") };
    let mut row = new.into_owned();
    if !from_memory.is_zero() {
        let e: AnyNumeric = row.get_by_name("exposure")?.unwrap_or_default();
        let o: AnyNumeric = row.get_by_name("open_orders")?.unwrap_or_default();
        row.set_by_name("exposure", e + numeric(from_memory))?;
        row.set_by_name("open_orders", o + numeric(from_memory))?;
    }
    let new_customer: String = row.get_by_name("customer")?.unwrap_or_default();
    let new_parent: Option<String> = row.get_by_name("parent")?;
    if let Some(p) = new_parent.as_ref().filter(|p| old_parent.as_ref() != Some(*p)) {
        refuse_group_on_citus(&new_customer, p);
    }
    let mut exposure: AnyNumeric = row.get_by_name("exposure")?.unwrap_or_default();
    if new_customer != old_customer && Spi::connect(|c| account::has_members(c, &old_customer)) {
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
        if old_orders != AnyNumeric::from(0) {
            error::raise(
                Code::ERRCODE_FOREIGN_KEY_VIOLATION,
                format!("customer \"{old_customer}\" has open orders and cannot be renamed"),
                Some(format!("Guarded tables name the customer \"{old_customer}\" in orders worth {old_orders}.")),
                Some("Rename the customer in the order tables first (or close those orders), then rename the account."),
            )
        }
        let new_orders = tables::open_orders_of(&new_customer);
        exposure += new_orders.clone();
        row.set_by_name("open_orders", new_orders)?;
        row.set_by_name("exposure", exposure.clone())?;
    }
    let policy = Spi::connect_mut(|c| -> Result<_, pgrx::datum::TryFromDatumError> {
        if new_parent != old_parent {
            if let Some(p) = &new_parent {
                account::check_group_head(c, &new_customer, p);
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
                account::move_member_exposure(c, &h, &d);
            }
        } else if let Some(h) = &new_parent {
            // A rename that brought the new name's open orders along.
            account::move_member_exposure(c, h, &(exposure.clone() - old_exposure.clone()));
        }
        let type_or_region_changed = old.get_by_name::<String>("customer_type")?
            != row.get_by_name::<String>("customer_type")?
            || old.get_by_name::<String>("region")? != row.get_by_name::<String>("region")?;
        Ok(if type_or_region_changed { Some(row_policy(c, &row)?) } else { None })
    })?;
    if let Some(p) = policy {
        set_policy_columns(&mut row, &p)?;
    }
    Ok(Some(row))
}

/// Resets maintained columns to a full recomputation (one customer or all). For repairs after
/// direct writes by a superuser; credit.verify() shows whether any are needed.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rebuild_exposure(customer: default!(Option<&str>, "NULL")) -> i64 {
    crate::privileges::require("admin", "rebuilding exposure");
    let customer = args::optional_text(customer, "customer");
    account::rebuild(customer)
}
