//! pg_credit's pure core: the arithmetic and the rules, with no PostgreSQL in sight. This crate
//! does not depend on pgrx, so the compiler keeps it pure, and `cargo test -p credit_core` runs
//! its unit and property tests without a database. The extension (the crate at the repository's
//! root) only moves values between PostgreSQL and these functions.
pub mod aging;
pub mod allocation;
pub mod chart;
pub mod decision;
pub mod history;
pub mod interest;
pub mod lateness;
pub mod metrics;
pub mod money;
pub mod numeric;
pub mod policy;
pub mod predict;
pub mod rating;
pub mod scoring;
pub mod shard_sql;
pub mod statement;
pub mod template;
