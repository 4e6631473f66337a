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

/// A relation's schema-qualified name, each part quoted as needed (None: the relation is gone).
pub fn relation_name(relid: pgrx::pg_sys::Oid) -> Option<String> {
    use pgrx::pg_sys;
    // SAFETY: catalog look-ups by OID, each NULL when missing; the result is copied at once.
    unsafe {
        let rel = pg_sys::get_rel_name(relid);
        let nsp = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        if rel.is_null() || nsp.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(pg_sys::quote_qualified_identifier(nsp, rel)).to_string_lossy().into_owned())
    }
}
