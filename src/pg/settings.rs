//! Settings. The only switch that weakens enforcement is superuser-only (PGC_SUSET).
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::PostgresGucEnum;
use std::ffi::CString;

pub static ALLOW_ORDERS_WITHOUT_ACCOUNT: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static RECORD_REFUSALS: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static ADMIN_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"credit_admin"));

/// How days late are measured for payment behaviour and the score: per payment (each payment
/// applied to an invoice, weighted by its amount: PAYDEX's way, the default) or at the payment
/// that closes the invoice (one experience per invoice, weighted by the invoice's amount).
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DaysLateBasis {
    #[name = c"payment"]
    Payment,
    #[name = c"closing"]
    Closing,
}

pub static DAYS_LATE_BASIS: GucSetting<DaysLateBasis> = GucSetting::<DaysLateBasis>::new(DaysLateBasis::Payment);

/// The view of the experiences this session's basis picks (credit.days_late_experience is their
/// UNION ALL, filtered by the setting): on Citus a query over many customers names it, as Citus
/// pushes a view down to the nodes whole but plans the union's two views apart, gathering every
/// customer's experiences on the coordinator.
pub fn days_late_view() -> &'static str {
    match DAYS_LATE_BASIS.get() {
        DaysLateBasis::Payment => "credit.payment_experience",
        DaysLateBasis::Closing => "credit.invoice_payment_experience",
    }
}

/// The role whose members may change credit limits directly (besides superusers).
pub fn admin_role() -> Option<String> {
    ADMIN_ROLE.get().map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
}

pub fn init() {
    GucRegistry::define_bool_guc(
        c"pg_credit.allow_orders_without_account",
        c"Let guarded orders of customers without a credit account through.",
        c"Off by default: an order for a customer with no row in credit.account is refused (SQLSTATE 23514). \
          When on, such orders are neither checked nor counted. Only superusers may change it.",
        &ALLOW_ORDERS_WITHOUT_ACCOUNT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_credit.admin_role",
        c"Role whose members may change credit limits directly.",
        c"Everyone else changes limits through credit.request_limit and credit.approve. Superusers always may. \
          Only superusers may change this setting.",
        &ADMIN_ROLE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pg_credit.record_refusals",
        c"Record refused orders as order_refused events.",
        c"On by default: a refused order rolls back, so the refusal is spooled outside the transaction and \
          the database's refusal recorder (a background worker) moves it into credit.event and the outbox \
          (credit.refusal_recording shows what waits). Only superusers may change it.",
        &RECORD_REFUSALS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"pg_credit.days_late_basis",
        c"How days late are measured: per payment, or at the payment that closes the invoice.",
        c"payment (the default): each payment applied to an invoice is an experience, weighted by its amount \
          (as PAYDEX does). closing: one experience per invoice settled by a payment, dated by the payment that \
          closed it and weighted by the invoice's amount. credit.payment_behavior and credit.score follow it \
          (through credit.days_late_experience); set it per database (ALTER DATABASE ... SET) to keep scores comparable.",
        &DAYS_LATE_BASIS,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init, before any setting of the prefix can be set.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"pg_credit".as_ptr()) };
}
