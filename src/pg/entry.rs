//! The calling convention of pg_credit's C entry points (trigger, event trigger and aggregate
//! support functions declared in `sql/*.sql` as `LANGUAGE c`). pgrx's `#[pg_trigger]` wrapper
//! panics (XX000) when its function is called directly (`SELECT credit._guard_row()`), and turns a
//! returned `Err` into XX000 too; these entry points answer a direct call with 0A000 like PL/pgSQL
//! does, and their bodies report every failure themselves (`error::raise`).
//!
//! `c_trigger!(symbol, finfo, name, body)` exports `symbol` (with its `pg_finfo_` record) for
//! `CREATE FUNCTION ... RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'symbol'`; the symbols keep
//! the names pgrx once gave them, so a database whose SQL is older than the library still finds them.
use crate::pg::error::{self, Code};
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
    // SAFETY: fcinfo is the function manager's; called_as_trigger only reads its context node.
    if fcinfo.is_null() || !unsafe { pgrx::trigger_support::called_as_trigger(fcinfo) } {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("trigger functions can only be called as triggers: credit.{name}()"),
            None,
            None,
        )
    }
    // SAFETY: not null (checked above), valid for the call.
    let fcinfo_ref = unsafe { &*fcinfo };
    entry(fcinfo_ref, name, body)
}

fn entry<'f>(
    fcinfo: &'f pg_sys::FunctionCallInfoBaseData,
    name: &str,
    body: impl for<'a> FnOnce(&'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>>,
) -> pg_sys::Datum {
    // SAFETY: called_as_trigger was checked by the caller.
    let Ok(trigger) = (unsafe { PgTrigger::from_fcinfo(fcinfo) }) else {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("credit.{name}() was not called as a trigger"),
            None,
            None,
        )
    };
    let row = body(&trigger);
    match row {
        None => pg_sys::Datum::from(0),
        Some(row) => row.into_trigger_datum().unwrap_or(pg_sys::Datum::from(0)),
    }
}

/// What a trigger body returns: the row, or a row read from pgrx's typed accessors whose failure
/// means a table of pg_credit's was altered (`error::conversion`, never a panic).
pub trait Outcome<'a> {
    fn into_row(self) -> Option<PgHeapTuple<'a, AllocatedByRust>>;
}

impl<'a> Outcome<'a> for Option<PgHeapTuple<'a, AllocatedByRust>> {
    fn into_row(self) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
        self
    }
}

impl<'a, E: std::fmt::Display> Outcome<'a> for Result<Option<PgHeapTuple<'a, AllocatedByRust>>, E> {
    fn into_row(self) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
        self.unwrap_or_else(|e| error::conversion(e))
    }
}

/// The `pg_finfo_` records PostgreSQL looks up for version-1 C functions.
macro_rules! finfo_v1 {
    ($($finfo:ident),* $(,)?) => {$(
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    )*};
}
pub(crate) use finfo_v1;

/// Exports a trigger function `$symbol` whose body is `$body(&PgTrigger) -> Option<row>` (or a
/// `Result` of it, see [`Outcome`]).
macro_rules! c_trigger {
    ($symbol:ident, $finfo:ident, $name:literal, $body:path) => {
        crate::pg::entry::finfo_v1!($finfo);

        /// # Safety
        /// Called by PostgreSQL's function manager.
        #[pgrx::pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $symbol(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
            // SAFETY: fcinfo is the function manager's.
            unsafe { crate::pg::entry::run(fcinfo, $name, |t| crate::pg::entry::Outcome::into_row($body(t))) }
        }
    };
}
pub(crate) use c_trigger;
