//! Who is calling, and the one membership test every privilege rule of pg_credit uses.
//!
//! Three identities (docs/privileges.md):
//! - the **caller**: the role outside any SECURITY DEFINER function (`GetOuterUserId`; SET ROLE
//!   counts) — privilege levels are checked for it;
//! - the **person**: the login (`session_user`), whatever SET ROLE says — four eyes counts people;
//! - a **named person**: an application that connects through one pooled login registered in
//!   `credit.trusted_proxy` names the person it acts for with `credit.act_for(person)`, for the
//!   current transaction; that role is then both the caller and the person.
//!
//! Superusers are members of every role, as in PostgreSQL's `pg_has_role(..., 'MEMBER')`.
use crate::pg::error::{self, Code, OrRaise};
use crate::pg::settings;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::{CStr, CString};

/// The person a trusted proxy named: valid in the transaction it was named in.
#[derive(Clone, Copy)]
struct Named {
    lxid: pg_sys::LocalTransactionId,
    role: Option<Oid>,
}

thread_local! {
    static NAMED: RefCell<Option<Named>> = const { RefCell::new(None) };
    /// What to restore when a subtransaction that named a person rolls back: (subtransaction,
    /// the person before it), innermost last.
    static UNDO: RefCell<Vec<(pg_sys::SubTransactionId, Option<Named>)>> = const { RefCell::new(Vec::new()) };
    static SUBXACT_HOOK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn current_lxid() -> pg_sys::LocalTransactionId {
    // SAFETY: MyProc is set for every backend that runs SQL.
    unsafe { (*pg_sys::MyProc).lxid }
}

/// The person a trusted proxy named in this transaction, if any.
fn named() -> Option<Oid> {
    NAMED.with(|n| match *n.borrow() {
        Some(Named { lxid, role }) if lxid == current_lxid() => role,
        _ => None,
    })
}

/// ROLLBACK TO SAVEPOINT undoes a person named after the savepoint; RELEASE keeps it.
///
/// # Safety
/// Called by PostgreSQL's transaction manager.
unsafe extern "C-unwind" fn subxact(
    event: pg_sys::SubXactEvent::Type,
    sub: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    UNDO.with(|u| {
        let mut u = u.borrow_mut();
        match event {
            pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
                while let Some((s, before)) = u.last().copied() {
                    if s != sub {
                        break;
                    }
                    u.pop();
                    NAMED.with(|n| *n.borrow_mut() = before);
                }
            }
            pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => {
                // The parent takes the change over, unless it saved an older state itself.
                if let Some(last) = u.last_mut().filter(|(s, _)| *s == sub) {
                    last.0 = parent;
                    let n = u.len();
                    if n >= 2 && u[n - 2].0 == parent {
                        u.pop();
                    }
                }
            }
            _ => {}
        }
    });
}

/// Names `role` (None: nobody) for the rest of the transaction, undone if the current
/// subtransaction rolls back.
fn name(role: Option<Oid>) {
    // SAFETY: reads of backend globals; the callback is registered once per backend.
    let (nest, sub) = unsafe { (pg_sys::GetCurrentTransactionNestLevel(), pg_sys::GetCurrentSubTransactionId()) };
    let lxid = current_lxid();
    let before = NAMED.with(|n| *n.borrow()).filter(|n| n.lxid == lxid);
    UNDO.with(|u| {
        let mut u = u.borrow_mut();
        if before.is_none() {
            u.clear(); // a new transaction
        }
        if nest > 1 && u.last().is_none_or(|(s, _)| *s != sub) {
            u.push((sub, before));
        }
    });
    if nest > 1 && !SUBXACT_HOOK.with(|h| h.replace(true)) {
        // SAFETY: registers a callback that lives as long as the library (once per backend).
        unsafe { pg_sys::RegisterSubXactCallback(Some(subxact), std::ptr::null_mut()) };
    }
    NAMED.with(|n| *n.borrow_mut() = Some(Named { lxid, role }));
}

/// The role privilege levels are checked for: a named person, else the caller.
pub fn caller() -> Oid {
    // SAFETY: plain reads of backend globals.
    named().unwrap_or_else(|| unsafe { pg_sys::GetOuterUserId() })
}

/// The person four eyes counts: a named person, else the login.
pub fn person() -> Oid {
    // SAFETY: plain read of a backend global.
    named().unwrap_or_else(|| unsafe { pg_sys::GetSessionUserId() })
}

/// On a Citus worker, the role the coordinator relayed in `setting` with a change it sends here
/// (crate::store::events::set_reason): Citus connects as pg_credit's owner from inside its
/// SECURITY DEFINER functions, so the person and caller behind the change come with it, for the
/// record only (privileges are checked on the coordinator; here they stay the connection's).
/// Believed only from a superuser over a Citus connection (who could write anything anyway);
/// None elsewhere, where the setting is empty, or for a role unknown here.
fn relayed(setting: &CStr) -> Option<Oid> {
    // SAFETY: GetConfigOption with missing_ok returns NULL or a NUL-terminated string.
    let value = unsafe { pg_sys::GetConfigOption(setting.as_ptr(), true, false) };
    if value.is_null() {
        return None;
    }
    // SAFETY: checked non-NULL above.
    let name = unsafe { CStr::from_ptr(value) }.to_str().ok().filter(|n| !n.is_empty())?;
    // SAFETY: a plain read of a backend global.
    if !(crate::pg::citus::from_other_node() && is_superuser(unsafe { pg_sys::GetSessionUserId() })) {
        return None;
    }
    role_oid(name)
}

/// Admits only a step the Citus coordinator sends to a worker (pg_credit's own, `function` doing
/// `step`): a superuser over a Citus connection, on a worker; 42501 otherwise, with `hint`. The
/// coordinator checked its caller's level; `acting_as`, its caller, then becomes the person behind
/// the call for the rest of the worker's transaction, so that the events and history written there
/// name who acted, as on one node. (A role unknown on this node leaves the connection's user.)
pub fn admit_coordinator_step(function: &str, step: &str, hint: &str, acting_as: Option<&str>) {
    // SAFETY: a plain read of a backend global.
    let user = unsafe { pg_sys::GetUserId() };
    if !(is_superuser(user) && crate::pg::citus::from_other_node() && crate::pg::citus::on_worker()) {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("credit.{function}() is pg_credit's own step of {step} on a Citus worker"),
            None,
            Some(hint),
        )
    }
    if let Some(oid) = acting_as.and_then(role_oid) {
        name(Some(oid));
    }
}

pub fn name_of(role: Oid) -> String {
    // SAFETY: GetUserNameFromId returns a palloc'd copy; noerr avoids an ERROR for a dropped role.
    unsafe {
        let p = pg_sys::GetUserNameFromId(role, true);
        if p.is_null() {
            return format!("role {}", u32::from(role));
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn role_oid(role: &str) -> Option<Oid> {
    let name = CString::new(role).ok()?;
    // SAFETY: missing_ok = true, so no ERROR for an unknown name.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    (oid != Oid::INVALID).then_some(oid)
}

pub fn is_superuser(user: Oid) -> bool {
    // SAFETY: superuser_arg reads the syscache.
    unsafe { pg_sys::superuser_arg(user) }
}

/// Whether `user` is a member of the role named `role` (false when no such role exists).
pub fn is_member(user: Oid, role: &str) -> bool {
    // SAFETY: is_member_of_role reads the role cache.
    is_superuser(user) || role_oid(role).is_some_and(|r| unsafe { pg_sys::is_member_of_role(user, r) })
}

/// 42501 unless `user` is a superuser or a member of `role`. A role that does not exist is
/// treated the same way by every function: nobody but a superuser is its member, and the error
/// names the role to create.
pub fn require_member(user: Oid, role: &str, action: &str) {
    if is_member(user, role) {
        return;
    }
    let who = name_of(user);
    if role_oid(role).is_none() {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("{action} needs membership in role \"{role}\", which does not exist"),
            Some(format!("Role \"{who}\" cannot be a member of a role that does not exist.")),
            Some(&format!("Create the role (CREATE ROLE \"{role}\") and grant it to the people who may do this.")),
        )
    }
    error::raise(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{action} needs membership in role \"{role}\""),
        Some(format!("Role \"{who}\" is not a member of \"{role}\".")),
        None,
    )
}

/// Superusers and members of pg_credit.admin_role.
pub fn is_admin(user: Oid) -> bool {
    is_superuser(user) || settings::admin_role().is_some_and(|r| is_member(user, &r))
}

/// The privilege model's check (credit._require): 42501 unless the caller is a superuser or a
/// member of the role of `level` or a higher one (once credit.grant_privileges recorded roles).
/// Until ALTER EXTENSION UPDATE has run, the library may serve an older version's SQL without
/// credit._require: then EXECUTE alone decides, as it did in that version.
///
/// Read-only SPI: pgrx's `Spi::get_one` and `Spi::run` mark the transaction as writing (they
/// assign a transaction id), which would make every report a write (a commit record and a WAL
/// flush) and fail on a standby (XX000 "cannot assign TransactionIds during recovery").
pub fn require(level: &str, action: &str) {
    if level != "reader" {
        refuse_on_standby(action);
    }
    Spi::connect(|c| {
        let installed = c
            .select("SELECT pg_catalog.to_regprocedure('credit._require(text,text)') IS NOT NULL", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
            .unwrap_or(false);
        if installed {
            c.select("SELECT credit._require($1, $2)", Some(1), &[level.into(), action.into()]).or_raise();
        }
    })
}

/// Above the reader level pg_credit writes; a standby cannot (25006, as PostgreSQL answers a write
/// there, instead of the XX000 a transaction id asked for during recovery would give).
pub fn refuse_on_standby(action: &str) {
    // SAFETY: plain read of the server's state.
    if unsafe { pg_sys::RecoveryInProgress() } {
        error::raise(
            Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("{action} cannot run on a standby"),
            Some("The server is in recovery: pg_credit writes only on the primary.".into()),
            Some("Run it on the primary."),
        )
    }
}

/// Internal functions are called by pg_credit's own SECURITY DEFINER functions, which run as the
/// extension's owner (a superuser); anyone else — even with EXECUTE granted by hand — gets 42501.
pub fn require_internal(function: &str) {
    // SAFETY: superuser() reads the current user (the SECURITY DEFINER owner inside pg_credit).
    if !unsafe { pg_sys::superuser() } {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("{function} is internal to pg_credit"),
            Some("It is called by pg_credit's own functions, not directly.".into()),
            None,
        )
    }
}

/// GetOuterUserId(): the role a SECURITY DEFINER function was called by (SET ROLE counts), or
/// the person a trusted proxy named.
#[pg_extern(stable, parallel_safe)]
fn _calling_user() -> Oid {
    caller()
}

/// The person behind the call (the login, or the person a trusted proxy named; on a Citus worker,
/// the one the coordinator relayed with the change), as events and documents record it.
#[pg_extern(stable, parallel_safe)]
fn _person() -> String {
    name_of(relayed(c"credit.acting_person").unwrap_or_else(person))
}

/// The role that called pg_credit (SET ROLE counts; on a Citus worker, the one the coordinator
/// relayed with the change), as events record it (acting_as).
#[pg_extern(stable, parallel_safe)]
fn _acting_as() -> String {
    name_of(relayed(c"credit.acting_caller").unwrap_or_else(caller))
}

/// 42501 unless the person behind the call is a member of `role` (superusers pass).
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn _require_member(role: Option<&str>, action: Option<&str>) {
    let role = crate::pg::args::text(role, "role");
    let action = action.unwrap_or("this");
    require_member(person(), role, action)
}

/// 42501 unless called from pg_credit's own functions.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn _internal(function: Option<&str>) {
    require_internal(function.unwrap_or("this function"))
}

/// A trusted proxy (a pooled login registered in credit.trusted_proxy) names the person it acts
/// for until the end of the current transaction: privilege levels, approver roles and four eyes
/// then count that person. The person must be an existing role that is neither a superuser nor
/// the proxy itself. NULL ends acting for anyone (the login is the person again).
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn act_for(person: Option<&str>) -> Option<String> {
    let Some(person) = person else {
        name(None);
        return None;
    };
    let person = crate::pg::args::text(Some(person), "person");
    // SAFETY: plain read of a backend global.
    let login = unsafe { pg_sys::GetSessionUserId() };
    let login_name = name_of(login);
    let trusted = Spi::connect(|c| {
        !c.select("SELECT 1 FROM credit.trusted_proxy p WHERE p.role = $1", Some(1), &[login_name.as_str().into()])
            .or_raise()
            .is_empty()
    });
    if !trusted {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("login \"{login_name}\" is not a trusted proxy"),
            Some("Only logins registered in credit.trusted_proxy may act for another person.".into()),
            Some("A credit admin registers the application's pooled login: INSERT INTO credit.trusted_proxy (role) VALUES (...)."),
        )
    }
    let Some(oid) = role_oid(person) else {
        error::raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("person \"{person}\" is not a role"),
            None,
            Some("Each person is a role (NOLOGIN is enough) holding their levels and approver roles."),
        )
    };
    if oid == login || is_superuser(oid) {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("a proxy cannot act for \"{person}\""),
            Some("The person must be neither the proxy itself nor a superuser.".into()),
            None,
        )
    }
    name(Some(oid));
    Some(person.to_string())
}

/// Whether the caller is a credit admin: a superuser, a member of pg_credit.admin_role, or of the
/// role credit.grant_privileges recorded for the admin level.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn _is_admin() -> bool {
    let user = caller();
    is_admin(user)
        || Spi::connect(|c| {
            // No row at all, rather than a NULL, while Citus runs ALTER TABLE (docs/citus.md).
            let t = c
                .select("SELECT (SELECT a.role::text FROM credit.access_role a WHERE a.level = 'admin')", Some(1), &[])
                .or_raise();
            if t.is_empty() {
                return None;
            }
            t.first().get_one::<String>().or_raise()
        })
        .is_some_and(|r| is_member(user, &r))
}

/// Whether the caller is a superuser (outside pg_credit's privilege model).
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn _is_superuser() -> bool {
    is_superuser(caller())
}
