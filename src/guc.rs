//! Settings. The only switch that weakens enforcement is superuser-only (PGC_SUSET).
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

pub static ALLOW_ORDERS_WITHOUT_ACCOUNT: GucSetting<bool> = GucSetting::<bool>::new(false);

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
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"pg_credit".as_ptr()) };
}
