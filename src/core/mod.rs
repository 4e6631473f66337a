//! The pure core: no pgrx types, no database. Everything here is unit- and property-tested with
//! plain `cargo test`; the pgrx layer only moves values between PostgreSQL and these functions.
pub mod aging;
pub mod allocation;
pub mod decision;
pub mod lateness;
pub mod metrics;
pub mod money;
pub mod policy;
pub mod scoring;
