//! pg_credit's writes into application tables run with the rights of the table's owner, never the
//! extension's: a write fires the owner's own triggers and defaults, which must not run as the
//! extension's owner (a superuser).
use pgrx::pg_sys::{self, Oid};
use std::cell::RefCell;

thread_local! {
    /// The extension's own user id and security context, saved while pg_credit writes into an
    /// application table with its owner's rights (innermost last).
    static OWN_CONTEXT: RefCell<Vec<(Oid, i32)>> = const { RefCell::new(Vec::new()) };
}

struct Restore(Oid, i32);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores saved ids (also while unwinding from an ERROR).
        unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) }
    }
}

fn current_context() -> (Oid, i32) {
    let (mut user, mut sec) = (Oid::INVALID, 0i32);
    // SAFETY: plain read of the backend's current user id.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut sec) };
    (user, sec)
}

/// The owner of a relation.
pub fn relation_owner(relid: Oid) -> Oid {
    // SAFETY: RelationIdGetRelation with a reference count (PgRelation closes it on drop); the
    // callers hold a lock on the relation or are about to write it.
    unsafe {
        let rel = pgrx::PgRelation::open(relid);
        (*(*rel.as_ptr()).rd_rel).relowner
    }
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
    let owner = relation_owner(relid);
    let (user, sec) = current_context();
    OWN_CONTEXT.with(|c| c.borrow_mut().push((user, sec)));
    let _pop = Pop;
    // SAFETY: plain write of the backend's current user id; Restore puts it back.
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            owner,
            sec | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32,
        );
    }
    let _restore = Restore(user, sec);
    f()
}

/// The guard's own work when its trigger fires inside such a write (a held order released): back
/// in the extension's context, whose deferred publishing of events PostgreSQL would refuse inside a
/// security-restricted operation. Only pg_credit's code runs here.
pub fn in_own_context<R>(f: impl FnOnce() -> R) -> R {
    let Some((user, sec)) = OWN_CONTEXT.with(|c| c.borrow().last().copied()) else { return f() };
    let (now_user, now_sec) = current_context();
    // SAFETY: plain write of the backend's current user id; Restore puts it back.
    unsafe { pg_sys::SetUserIdAndSecContext(user, sec) };
    let _restore = Restore(now_user, now_sec);
    f()
}
