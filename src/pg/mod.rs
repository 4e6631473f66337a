//! How pg_credit meets PostgreSQL: errors with proper SQLSTATEs, argument checks, `numeric` values,
//! settings, and the calling convention of the C entry points. Every other module builds on these.
pub mod args;
pub mod citus;
pub mod entry;
pub mod error;
pub mod event;
pub mod numeric;
pub mod settings;
pub mod user;
