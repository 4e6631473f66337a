//! Credit accounts: the protection of the maintained columns, and the read side
//! (`exposure`, `available_credit`, `check`).
use crate::core::decision::{self, Account, Status};
use crate::error::{self, Code, OrRaise};
use crate::{guc, input, internal};
use pgrx::prelude::*;
use pgrx::AnyNumeric;

const MAINTAINED: [&str; 4] = ["open_ar", "unapplied_credit", "open_orders", "exposure"];

/// BEFORE UPDATE OF the maintained columns on credit.account: only pg_credit itself may write
/// them. Every guarded order's account UPDATE fires it, so it is a bare C-ABI trigger (no pgrx
/// trigger wrapper): check the internal-write flag, pass the new row through.
#[doc(hidden)]
#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_credit_protect_account() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_protect_account(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    if !pgrx::trigger_support::called_as_trigger(fcinfo) {
        error::raise(
            Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "credit._protect_account() must be called as a trigger",
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

/// BEFORE INSERT on credit.account (SECURITY DEFINER, to read guarded tables). The maintained
/// columns start from the source rows: open orders already in guarded tables count at once. A
/// superuser may supply them instead: that is how pg_restore brings back a consistent dump.
#[pg_trigger]
fn _account_insert<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    let new = trigger.new().expect("row-level INSERT trigger has a NEW row");
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
            return Ok(Some(new.into_owned()));
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
    row.set_by_name("exposure", open_orders)?;
    Ok(Some(row))
}

/// BEFORE INSERT OR UPDATE OR DELETE on the ledger tables: they are facts, written only by the
/// posting functions. A superuser may INSERT (pg_restore does); corrections are new documents.
#[pg_trigger]
fn _protect_ledger<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
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

/// The decision's view of an account row: limit in force, exposure, status.
pub fn decision_account(limit: &AnyNumeric, exposure: &AnyNumeric, status: &str) -> Account {
    Account {
        credit_limit: input::decimal(limit),
        exposure: input::decimal(exposure),
        // An unknown status cannot come from the validated table; treat it as the strictest.
        status: Status::parse(status).unwrap_or(Status::Blacklisted),
    }
}

/// The account as the decision logic sees it; None when the customer has no credit account.
pub fn load(customer: &str) -> Option<(Account, AnyNumeric, AnyNumeric)> {
    Spi::connect(|c| {
        let t = c
            .select(
                "SELECT CASE WHEN temporary_limit_until OPERATOR(pg_catalog.>=) CURRENT_DATE \
                             THEN temporary_limit ELSE credit_limit END, exposure, status \
                 FROM credit.account WHERE customer OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[customer.into()],
            )
            .or_raise();
        if t.is_empty() {
            return None;
        }
        let t = t.first();
        let limit: AnyNumeric = t.get(1).or_raise().expect("credit_limit is NOT NULL");
        let exposure: AnyNumeric = t.get(2).or_raise().expect("exposure is NOT NULL");
        let status: String = t.get(3).or_raise().expect("status is NOT NULL");
        Some((decision_account(&limit, &exposure, &status), limit, exposure))
    })
}

/// Open receivables (net of unapplied credit) plus open orders of every guarded table.
#[pg_extern(stable, parallel_restricted)]
fn exposure(customer: Option<&str>) -> AnyNumeric {
    let customer = input::text(customer, "customer");
    match load(customer) {
        Some((_, _, exposure)) => exposure,
        None => error::unknown_customer(customer),
    }
}

/// The limit in force today (a temporary limit while it lasts) minus exposure; negative when over.
#[pg_extern(stable, parallel_restricted)]
fn available_credit(customer: Option<&str>) -> AnyNumeric {
    let customer = input::text(customer, "customer");
    match load(customer) {
        Some((_, limit, exposure)) => limit - exposure,
        None => error::unknown_customer(customer),
    }
}

/// What the guard would decide for an order of `amount` now. Reserves nothing.
#[pg_extern(stable, parallel_restricted)]
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
    ),
> {
    let customer = input::text(customer, "customer");
    let amount_dec = input::non_negative_amount(amount.as_ref(), "amount");
    let Some((account, limit, exposure)) = load(customer) else {
        if guc::ALLOW_ORDERS_WITHOUT_ACCOUNT.get() {
            return TableIterator::once((true, "accept".into(), None, None, None, vec![], None));
        }
        error::unknown_customer(customer)
    };
    let d = decision::decide(Some(&account), amount_dec);
    let available = limit.clone() - exposure.clone();
    let after = exposure.clone() + input::numeric(amount_dec);
    TableIterator::once((
        d.allowed(),
        d.word().into(),
        Some(limit),
        Some(exposure),
        Some(available),
        d.reasons.iter().map(|r| r.code().to_string()).collect(),
        Some(after),
    ))
}
