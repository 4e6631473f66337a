//! pg_credit's writes into application tables run with the rights of the table's owner, never the
//! extension's: a write fires the owner's own triggers and defaults, which must not run as the
//! extension's owner (a superuser).
use crate::pg::user;
use pgrx::pg_sys::{self, Oid};
use std::cell::RefCell;

thread_local! {
    /// The extension's own user id and security context, saved while pg_credit writes into an
    /// application table with its owner's rights (innermost last).
    static OWN_CONTEXT: RefCell<Vec<(Oid, i32)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the rights of the relation's owner, in a security-restricted operation (as
/// REFRESH MATERIALIZED VIEW does): the owner's code may neither switch roles nor queue code for
/// commit time.
pub fn as_table_owner<R>(relid: Oid, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            OWN_CONTEXT.with(|c| c.borrow_mut().pop());
        }
    }
    let owner = user::relation_owner(relid);
    OWN_CONTEXT.with(|c| c.borrow_mut().push(user::current_context()));
    let _pop = Pop;
    user::as_user(owner, pg_sys::SECURITY_RESTRICTED_OPERATION, f)
}

/// The guard's own work when its trigger fires inside such a write (a held order released): back
/// in the extension's context, whose deferred publishing of events PostgreSQL would refuse inside a
/// security-restricted operation. Only pg_credit's code runs here.
pub fn in_own_context<R>(f: impl FnOnce() -> R) -> R {
    let Some(saved) = OWN_CONTEXT.with(|c| c.borrow().last().copied()) else { return f() };
    user::in_context(saved, f)
}
