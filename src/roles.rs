//! Role membership, the one test every privilege rule of pg_credit uses (superusers are members of
//! every role, as in PostgreSQL's pg_has_role(..., 'MEMBER')).
use crate::guc;
use pgrx::pg_sys::{self, Oid};

/// Whether `user` is a member of the role named `role` (false when no such role exists).
pub fn is_member(user: Oid, role: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(role) else { return false };
    unsafe {
        let roleid = pg_sys::get_role_oid(name.as_ptr(), true);
        roleid != Oid::INVALID && pg_sys::is_member_of_role(user, roleid)
    }
}

/// Superusers and members of pg_credit.admin_role.
pub fn is_admin(user: Oid) -> bool {
    let superuser = unsafe { pg_sys::superuser_arg(user) };
    superuser || guc::admin_role().is_some_and(|r| is_member(user, &r))
}

/// The role that called a SECURITY DEFINER function (SET ROLE counts).
pub fn caller() -> Oid {
    unsafe { pg_sys::GetOuterUserId() }
}

/// The privilege model's check (credit._require): 42501 unless the caller is a superuser or a
/// member of the role of `level` or a higher one (once credit.grant_privileges recorded roles).
/// Until ALTER EXTENSION UPDATE has run, the library may serve an older version's SQL without
/// credit._require: then EXECUTE alone decides, as it did in that version.
pub fn require(level: &str, action: &str) {
    use crate::error::OrRaise;
    let installed = pgrx::Spi::get_one::<bool>("SELECT pg_catalog.to_regprocedure('credit._require(text,text)') IS NOT NULL")
        .or_raise()
        .unwrap_or(false);
    if installed {
        pgrx::Spi::run_with_args("SELECT credit._require($1, $2)", &[level.into(), action.into()]).or_raise();
    }
}
