//! pg_credit: customer credit management inside PostgreSQL.
//!
//! Layout: `core` is plain Rust (money, allocation, decisions) with unit and property tests; the
//! other modules are the thin pgrx layer, one per concept. Tables live in `sql/schema.sql`
//! (bootstrap); SQL-language API, triggers on pg_credit's own tables, grants and comments in
//! `sql/finalize.sql`.
use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

pub mod core;
mod account;
mod aggregates;
mod analytics;
mod approval;
mod collections;
mod error;
mod grading;
mod guard;
mod guard_ddl;
mod guc;
mod hold;
mod input;
mod internal;
mod ledger;
mod numeric_fast;
mod policy;
mod refusal;
mod roles;
mod trigger;
mod verify;

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/aggregates.sql", name = "aggregates", requires = ["schema"]);
extension_sql_file!(
    "../sql/history.sql",
    name = "history",
    requires = [
        "schema",
        roles::_calling_user,
        roles::_person,
        roles::_internal,
        roles::_require_member,
        roles::act_for,
        refusal::_refusal_recording,
        refusal::record_refusals
    ]
);
extension_sql_file!("../sql/policy.sql", name = "policy", requires = ["schema"]);
extension_sql_file!(
    "../sql/approval.sql",
    name = "approval",
    requires = ["policy", "history", approval::_apply_limit, policy::effective_policy]
);
extension_sql_file!(
    "../sql/hold.sql",
    name = "hold",
    requires = ["schema", "history", account::check, hold::release_hold, hold::cancel_hold, hold::release_fitting_holds]
);
extension_sql_file!(
    "../sql/collections.sql",
    name = "collections",
    requires = [
        "policy",
        "history",
        collections::dispute,
        collections::run_collections,
        collections::_expire_temporary_limits,
        grading::regrade
    ]
);
extension_sql_file!(
    "../sql/guard.sql",
    name = "guard",
    requires = [
        "schema",
        "history",
        guard_ddl::_count_open_orders,
        guard_ddl::_ddl_quiet,
        verify::_recount_exposure,
        roles::_is_admin,
        roles::_is_superuser
    ]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx's panic hook captures a Rust backtrace and appends it to the ERROR's DETAIL when
    // RUST_BACKTRACE is set in the server's environment; a client must never see one. The
    // library-specific variable wins over RUST_BACKTRACE, and is read at the first capture.
    // SAFETY (set_var): a backend (or the postmaster, when preloaded) is single-threaded here.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    guc::init();
}

mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
