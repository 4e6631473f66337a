//! pg_credit: customer credit management inside PostgreSQL. ARCHITECTURE.md is the map; in short:
//!
//! - `credit_core` (its own crate): the arithmetic and the rules, no PostgreSQL;
//! - [`pg`]: how pg_credit meets PostgreSQL (errors, arguments, numerics, settings, C entry points);
//!   [`privileges`]: who is calling and what they may do;
//! - [`store`]: the only writer of pg_credit's rows of record (accounts, ledger, events);
//! - [`guard`]: the order guard on application tables;
//! - the domains users call: [`accounts`], [`ledger`], [`holds`], [`approvals`], [`policy`],
//!   [`collections`], [`grading`], [`analytics`] and [`aggregates`].
//!
//! The SQL side lives in `sql/`, one file per domain, wired below in the order CREATE EXTENSION
//! runs them.
use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

mod accounts;
mod aggregates;
mod analytics;
mod approvals;
mod citus_privileges;
mod collections;
mod courier;
mod fast_path;
mod grading;
mod guard;
mod history;
mod holds;
mod ledger;
mod pages;
mod pg;
mod policy;
mod prediction;
mod privileges;
mod ratings;
mod statements;
mod store;

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!(
    "../sql/privileges.sql",
    name = "privileges",
    requires = [
        "schema",
        privileges::_calling_user,
        privileges::_person,
        privileges::_acting_as,
        privileges::_require_member,
        privileges::_internal,
        privileges::act_for,
        privileges::_is_admin,
        privileges::_is_superuser
    ]
);
extension_sql_file!(
    "../sql/accounts.sql",
    name = "accounts",
    requires = [
        "privileges",
        accounts::exposure,
        accounts::available_credit,
        accounts::check,
        accounts::rebuild_exposure,
        accounts::_set_reason
    ]
);
extension_sql_file!(
    "../sql/ledger.sql",
    name = "ledger",
    requires = [
        "accounts",
        ledger::post_invoice,
        ledger::post_payment,
        ledger::post_credit_note,
        ledger::write_off,
        ledger::reverse_settlement,
        ledger::cancel_invoice
    ]
);
extension_sql_file!("../sql/audit.sql", name = "audit", requires = ["privileges", "accounts", "ledger"]);
extension_sql_file!(
    "../sql/policy.sql",
    name = "policy",
    requires = ["accounts", policy::terms_for, policy::explain_terms, policy::effective_policy]
);
extension_sql_file!("../sql/grading.sql", name = "grading", requires = ["policy", grading::score, grading::regrade]);
extension_sql_file!(
    "../sql/approvals.sql",
    name = "approvals",
    requires = ["policy", "audit", approvals::_apply_limit, policy::effective_policy]
);
extension_sql_file!(
    "../sql/holds.sql",
    name = "holds",
    requires = [
        "accounts",
        "audit",
        accounts::check,
        holds::release_hold,
        holds::cancel_hold,
        holds::release_fitting_holds,
        holds::_release_here
    ]
);
extension_sql_file!(
    "../sql/guard.sql",
    name = "guard",
    requires = [
        "holds",
        "ledger",
        guard::tables::_count_open_orders,
        guard::tables::_recount_exposure,
        guard::ddl::_ddl_quiet,
        guard::recording::_refusal_recording,
        guard::recording::record_refusals,
        fast_path::_fast_path_open_orders,
        privileges::_is_admin,
        privileges::_is_superuser
    ]
);
extension_sql_file!(
    "../sql/collections.sql",
    name = "collections",
    requires = [
        "policy",
        "audit",
        "ledger",
        collections::disputes::dispute,
        collections::disputes::resolve_dispute,
        collections::ladder::run_collections,
        collections::ladder::_collections_here,
        collections::interest::_invoice_interest,
        collections::interest::late_interest,
        collections::interest::_late_interest_of,
        collections::_expire_temporary_limits,
        grading::regrade
    ]
);
extension_sql_file!("../sql/aggregates.sql", name = "aggregates", requires = ["schema"]);
extension_sql_file!(
    "../sql/aging.sql",
    name = "aging",
    requires = [
        "aggregates",
        "ledger",
        analytics::_aging_args,
        analytics::_aging_buckets_problem,
        analytics::receivables_metrics
    ]
);
extension_sql_file!(
    "../sql/statements.sql",
    name = "statements",
    requires = ["collections", "aging", statements::statement_run, statements::statement_html]
);
extension_sql_file!("../sql/confirmations.sql", name = "confirmations", requires = ["statements"]);
extension_sql_file!("../sql/reconciliation.sql", name = "reconciliation", requires = ["statements"]);
extension_sql_file!("../sql/arrangements.sql", name = "arrangements", requires = ["collections", "ledger", "accounts"]);
extension_sql_file!(
    "../sql/history.sql",
    name = "history",
    requires = ["aging", "collections", history::backfill_history, history::_backfill_history]
);
extension_sql_file!(
    "../sql/ratings.sql",
    name = "ratings",
    requires = ["grading", "audit", "privileges", ratings::map_rating]
);
extension_sql_file!(
    "../sql/warnings.sql",
    name = "warnings",
    requires = ["ratings", "history", "arrangements", "collections", collections::interest::_invoice_interest]
);
extension_sql_file!(
    "../sql/prediction.sql",
    name = "prediction",
    requires = [
        "arrangements",
        "privileges",
        prediction::train_payment_model,
        prediction::payment_prediction,
        prediction::evaluate_payment_model,
        prediction::cash_forecast,
        prediction::_predicted_very_late
    ]
);
extension_sql_file!(
    "../sql/file.sql",
    name = "file",
    requires = [
        "history",
        "ratings",
        "warnings",
        "arrangements",
        "grading",
        "approvals",
        "holds",
        pages::file::file_html,
        pages::portfolio::portfolio_html
    ]
);
extension_sql_file!(
    "../sql/courier.sql",
    name = "courier",
    requires = [
        "warnings",
        "statements",
        "confirmations",
        "arrangements",
        "privileges",
        courier::_render_message,
        courier::_template_fields,
        courier::_money_text
    ]
);
extension_sql_file!(
    "../sql/fast_path.sql",
    name = "fast_path",
    requires = ["guard", fast_path::fast_path_status, fast_path::flush_open_orders, fast_path::_fast_path_open_orders]
);
extension_sql_file!("../sql/citus.sql", name = "citus", requires = ["guard", "holds", "history", "privileges"]);
extension_sql_file!("../sql/grants.sql", name = "grants", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx's panic hook captures a Rust backtrace and appends it to the ERROR's DETAIL when
    // RUST_BACKTRACE is set in the server's environment; a client must never see one. The
    // library-specific variable wins over RUST_BACKTRACE, and is read at the first capture.
    // set_var is sound here: a backend (or the postmaster, when preloaded) is single-threaded.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    // The fast path's settings first: settings::init reserves the prefix, which drops placeholders
    // (values from postgresql.conf) of settings not defined yet.
    store::reservations::init();
    store::flusher::init();
    pg::settings::init();
}

mod pg_tests;

/// SQL cannot name a Rust constant: where an amount bound or the precision appears in `sql/` (CHECK
/// constraints, PL/pgSQL validation), it must be credit_core's, everywhere. This test holds every
/// such literal of the install script to `MAX_AMOUNT` and `MAX_FRACTION_DIGITS`.
#[cfg(test)]
mod sql_constants {
    use credit_core::money::{MAX_AMOUNT, MAX_FRACTION_DIGITS};

    const SQL: [(&str, &str); 24] = [
        ("schema", include_str!("../sql/schema.sql")),
        ("privileges", include_str!("../sql/privileges.sql")),
        ("accounts", include_str!("../sql/accounts.sql")),
        ("ledger", include_str!("../sql/ledger.sql")),
        ("audit", include_str!("../sql/audit.sql")),
        ("policy", include_str!("../sql/policy.sql")),
        ("grading", include_str!("../sql/grading.sql")),
        ("approvals", include_str!("../sql/approvals.sql")),
        ("holds", include_str!("../sql/holds.sql")),
        ("guard", include_str!("../sql/guard.sql")),
        ("collections", include_str!("../sql/collections.sql")),
        ("aggregates", include_str!("../sql/aggregates.sql")),
        ("aging", include_str!("../sql/aging.sql")),
        ("statements", include_str!("../sql/statements.sql")),
        ("confirmations", include_str!("../sql/confirmations.sql")),
        ("reconciliation", include_str!("../sql/reconciliation.sql")),
        ("arrangements", include_str!("../sql/arrangements.sql")),
        ("history", include_str!("../sql/history.sql")),
        ("file", include_str!("../sql/file.sql")),
        ("ratings", include_str!("../sql/ratings.sql")),
        ("warnings", include_str!("../sql/warnings.sql")),
        ("prediction", include_str!("../sql/prediction.sql")),
        ("fast_path", include_str!("../sql/fast_path.sql")),
        ("grants", include_str!("../sql/grants.sql")),
    ];

    /// Digit runs of 13 or more: amounts near the bound (no other number in pg_credit's SQL is that long).
    fn long_numbers(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut run = String::new();
        for ch in text.chars().chain(std::iter::once(' ')) {
            if ch.is_ascii_digit() {
                run.push(ch);
            } else {
                if run.len() >= 13 {
                    out.push(std::mem::take(&mut run));
                }
                run.clear();
            }
        }
        out
    }

    #[test]
    fn every_amount_bound_is_max_amount() {
        let mut seen = 0;
        for (file, text) in SQL {
            for n in long_numbers(text) {
                assert_eq!(n, MAX_AMOUNT.to_string(), "sql/{file}.sql has an amount bound other than MAX_AMOUNT");
                seen += 1;
            }
        }
        assert!(seen >= 10, "the bounds were found ({seen})");
    }

    #[test]
    fn every_precision_check_is_max_fraction_digits() {
        let mut seen = 0;
        for (file, text) in SQL {
            for (i, _) in text.match_indices("scale(trim_scale(") {
                let rest = &text[i..];
                let check = &rest[..rest.find(" THEN").unwrap_or(rest.len())];
                for part in check.split(" > ").skip(1) {
                    let n: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
                    assert_eq!(n, MAX_FRACTION_DIGITS.to_string(), "sql/{file}.sql: {check}");
                    seen += 1;
                }
            }
            for (i, _) in text.match_indices(" fractional digits") {
                let before: String = text[..i].chars().rev().take_while(|c| c.is_ascii_digit()).collect();
                assert_eq!(before, MAX_FRACTION_DIGITS.to_string(), "sql/{file}.sql names another precision");
            }
        }
        assert!(seen >= 4, "the precision checks were found ({seen})");
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
