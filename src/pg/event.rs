//! Event trigger functions in C: the trigger's data, and a command's parse tree read with names
//! resolved as the command resolves them (the DDL watch, src/guard/ddl.rs; a REVOKE taken on to
//! Citus's workers, src/citus_privileges.rs).
use crate::pg::error::{self, Code};
use pgrx::pg_sys::{self, Oid};

/// The event trigger's data, or an error when called otherwise.
///
/// # Safety
/// `fcinfo` is the call's own.
pub unsafe fn event_data(fcinfo: pg_sys::FunctionCallInfo, name: &str) -> *mut pg_sys::EventTriggerData {
    // SAFETY: the call's own fcinfo; its context is checked to be event trigger data.
    unsafe {
        let ctx = (*fcinfo).context;
        if ctx.is_null() || (*ctx).type_ != pg_sys::NodeTag::T_EventTriggerData {
            error::raise(
                Code::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("event trigger functions can only be called as event triggers: {name}()"),
                None,
                None,
            )
        }
        ctx as *mut pg_sys::EventTriggerData
    }
}

/// The relation a RangeVar names now, under the command's search_path (no lock: the command
/// takes its own).
///
/// # Safety
/// `rv` is NULL or a RangeVar of the command being run.
pub unsafe fn relid(rv: *mut pg_sys::RangeVar) -> Option<Oid> {
    if rv.is_null() {
        return None;
    }
    // SAFETY: a valid RangeVar; missing_ok, no lock.
    let oid = unsafe {
        pg_sys::RangeVarGetRelidExtended(
            rv,
            pg_sys::NoLock as i32,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        )
    };
    (oid != Oid::INVALID).then_some(oid)
}

/// A parse tree's list as pointers to its nodes.
///
/// # Safety
/// `l` is NULL or a List whose cells point to `T`s.
pub unsafe fn list<T>(l: *mut pg_sys::List) -> Vec<*mut T> {
    // SAFETY: as the caller promises.
    unsafe { pgrx::PgList::<T>::from_pg(l).iter_ptr().collect() }
}
