//! Whose rights pg_credit's code runs with, where that is not the caller's.
use pgrx::pg_sys::{self, Oid};

struct Restore(Oid, i32);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores saved ids (also while unwinding from an ERROR).
        unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) }
    }
}

/// The backend's current user id and security context.
pub fn current_context() -> (Oid, i32) {
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

/// Runs `f` as `user`, its security context the current one plus `extra` (a local user id change
/// always), and back afterwards, also when `f` raises.
pub fn as_user<R>(user: Oid, extra: u32, f: impl FnOnce() -> R) -> R {
    let (now_user, sec) = current_context();
    // SAFETY: plain write of the backend's current user id; Restore puts it back.
    unsafe { pg_sys::SetUserIdAndSecContext(user, sec | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | extra) as i32) };
    let _restore = Restore(now_user, sec);
    f()
}

/// Runs `f` with the saved `(user, context)` exactly, and back afterwards.
pub fn in_context<R>(saved: (Oid, i32), f: impl FnOnce() -> R) -> R {
    let (now_user, now_sec) = current_context();
    // SAFETY: plain write of the backend's current user id; Restore puts it back.
    unsafe { pg_sys::SetUserIdAndSecContext(saved.0, saved.1) };
    let _restore = Restore(now_user, now_sec);
    f()
}
