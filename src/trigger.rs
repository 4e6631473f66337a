//! The calling convention of pg_credit's Rust trigger functions. pgrx's `#[pg_trigger]` wrapper
//! panics (XX000) when its function is called directly (`SELECT credit._guard_row()`), and turns
//! a returned `Err` into XX000 too; these entry points answer a direct call with 0A000 like
//! PL/pgSQL does, and their bodies report every failure themselves (error::raise).
//!
//! `c_trigger!(symbol, body)` exports `symbol` (with its `pg_finfo_` record) for
//! `CREATE FUNCTION ... RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'symbol'` in sql/; the
//! symbols keep the names pgrx gave them, so a database whose SQL is older than the library
//! still finds them.
use crate::error::{self, Code};
use pgrx::prelude::*;

/// Runs a trigger body when PostgreSQL's trigger manager called; a direct call gets 0A000.
///
/// # Safety
/// `fcinfo` comes from PostgreSQL's function manager.
pub unsafe fn run(
    fcinfo: pg_sys::FunctionCallInfo,
    name: &str,
    body: impl for<'a> FnOnce(&'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>>,
) -> pg_sys::Datum {
    if fcinfo.is_null() || !pgrx::trigger_support::called_as_trigger(fcinfo) {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("trigger functions can only be called as triggers: credit.{name}()"),
            None,
            None,
        )
    }
    let fcinfo_ref = &*fcinfo;
    entry(fcinfo_ref, name, body)
}

fn entry<'f>(
    fcinfo: &'f pg_sys::FunctionCallInfoBaseData,
    name: &str,
    body: impl for<'a> FnOnce(&'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>>,
) -> pg_sys::Datum {
    // SAFETY: called_as_trigger was checked by the caller.
    let Ok(trigger) = (unsafe { PgTrigger::from_fcinfo(fcinfo) }) else {
        error::raise(Code::ERRCODE_FEATURE_NOT_SUPPORTED, format!("credit.{name}() was not called as a trigger"), None, None)
    };
    let row = body(&trigger);
    match row {
        None => pg_sys::Datum::from(0),
        Some(row) => row.into_trigger_datum().unwrap_or(pg_sys::Datum::from(0)),
    }
}

/// The `pg_finfo_` record PostgreSQL looks up for a version-1 C function.
macro_rules! finfo_v1 {
    ($finfo:ident) => {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}
pub(crate) use finfo_v1;

/// Exports a trigger function `$symbol` whose body is `$body(&PgTrigger) -> Option<row>`.
macro_rules! c_trigger {
    ($symbol:ident, $finfo:ident, $name:literal, $body:path) => {
        crate::trigger::finfo_v1!($finfo);

        /// # Safety
        /// Called by PostgreSQL's function manager.
        #[pgrx::pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $symbol(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
            crate::trigger::run(fcinfo, $name, |t| $body(t))
        }
    };
}
pub(crate) use c_trigger;
