//! The store: the only code that writes pg_credit's own rows of record. Every other module asks it.
//!
//! - [`account`] owns `credit.account`: the read model the decisions use, the row locks, and every
//!   move of the maintained counters (open_ar, unapplied_credit, open_orders, exposure,
//!   member_exposure, oldest_open_due). The rule it keeps is the rule `credit.verify()` checks
//!   (sql/guard.sql, `credit._recomputed`): exposure is open_ar minus unapplied_credit plus
//!   open_orders, and a group head's member_exposure is the sum of its members' exposure.
//! - [`ledger`] owns the document rows: invoices, settlements, allocations.
//! - [`events`] writes `credit.event` (and so the outbox and the audit chain) and the reason
//!   that the account history trigger records with a change.
//!
//! **Lock order**, the same for every writer, so that no two of them deadlock: the customers' own
//! account rows in customer order, then their group heads' rows in customer order; ledger rows
//! after the account row of their customer. Postings, orders, releases, approvals, re-grading and
//! repairs all lock this way.
//!
//! The maintained columns and the ledger are written only inside [`writing`], which the
//! protection triggers (src/accounts.rs, src/ledger.rs) recognise; anyone else's write is refused.
pub mod account;
pub mod events;
pub mod fast_read;
pub mod flusher;
pub mod ledger;
pub mod reservations;

use crate::pg::error::OrRaise;
use pgrx::spi::SpiClient;
use std::cell::Cell;

/// Whether one of pg_credit's relations (or a relation's column, `table.column`) exists. The
/// library also serves a database whose SQL is still an older version's (between installing the
/// library and ALTER EXTENSION UPDATE): code that reads what the newer SQL added asks first.
pub fn has(c: &SpiClient<'_>, name: &str) -> bool {
    let (rel, column) = match name.rsplit_once('.') {
        Some((r, col)) if r.contains('.') => (r, Some(col)),
        _ => (name, None),
    };
    c.select(
        "SELECT CASE WHEN $2::text IS NULL THEN pg_catalog.to_regclass($1) IS NOT NULL \
                     ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a \
                                   WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped) END",
        Some(1),
        &[rel.into(), column.into()],
    )
    .or_raise()
    .first()
    .get_one::<bool>()
    .or_raise()
    .unwrap_or(false)
}

thread_local! {
    // A backend is single-threaded, so a thread-local depth counter is exact.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

struct Leave;

impl Drop for Leave {
    // Runs on unwinding too: a PostgreSQL ERROR inside the scope becomes a Rust panic in pgrx.
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Runs `f` as pg_credit's own write of its maintained columns and ledger rows.
pub fn writing<R>(f: impl FnOnce() -> R) -> R {
    DEPTH.with(|d| d.set(d.get() + 1));
    let _leave = Leave;
    f()
}

/// Whether pg_credit itself is writing (the protection triggers let the write through).
pub fn is_writing() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// Whether `rel` is pg_credit's table `credit.<name>`, or on a Citus node one of its shards
/// (`credit.<name>_<shard id>`, docs/citus.md): the row triggers that refuse any other table ask
/// this. Only the extension's owner creates relations in schema credit, so the name is proof.
/// The same rule as SQL's `credit._is_own_table`.
///
/// # Safety
/// `rel` must be an open relation (a trigger's `tg_relation`).
pub unsafe fn is_own_table(rel: pgrx::pg_sys::Relation, name: &str) -> bool {
    use pgrx::pg_sys;
    // SAFETY: an open relation's descriptor and its pg_class row are valid while it is open.
    let (namespace, relname) = unsafe {
        let form = (*rel).rd_rel;
        ((*form).relnamespace, std::ffi::CStr::from_ptr((*form).relname.data.as_ptr()).to_bytes().to_vec())
    };
    // SAFETY: a syscache lookup by name; missing_ok, so no error.
    if namespace != unsafe { pg_sys::get_namespace_oid(c"credit".as_ptr(), true) } {
        return false;
    }
    is_name_or_shard(&relname, name.as_bytes())
}

/// `relname` is `name`, or `name` followed by `_` and a Citus shard id.
fn is_name_or_shard(relname: &[u8], name: &[u8]) -> bool {
    match relname.strip_prefix(name) {
        Some([]) => true,
        Some([b'_', digits @ ..]) => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// On a Citus node: whether this write of `rel`, a shard of one of pg_credit's tables, comes from
/// pg_credit's own code on another node (docs/citus.md). Such a write arrives over a Citus
/// connection without this backend's [`writing`] flag; it runs as a superuser because every
/// pg_credit function that writes maintained columns or the ledger is a SECURITY DEFINER function
/// owned by the extension's superuser, and no role below that can run a statement as one.
///
/// # Safety
/// `rel` must be an open relation (a trigger's `tg_relation`).
pub unsafe fn is_remote_own_write(rel: pgrx::pg_sys::Relation, base: pgrx::pg_sys::Oid) -> bool {
    use pgrx::pg_sys;
    // SAFETY: the relation is open; superuser() reads the current user's role.
    unsafe { (*rel).rd_id != base && pg_sys::superuser() && crate::pg::citus::from_other_node() }
}

/// [`is_remote_own_write`] for a row trigger shared by several of pg_credit's tables, which knows
/// its table only by the relation: `rel` is a shard (`credit.<name>_<shard id>`) of one of them,
/// written over a Citus connection by a superuser.
///
/// # Safety
/// `rel` must be an open relation (a trigger's `tg_relation`).
pub unsafe fn is_remote_shard_write(rel: pgrx::pg_sys::Relation) -> bool {
    // SAFETY: as is_own_table; superuser() reads the current user's role.
    unsafe {
        let relname = std::ffi::CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_bytes();
        let Some(base) = shard_base(relname).and_then(|b| std::str::from_utf8(b).ok()) else { return false };
        is_own_table(rel, base) && pgrx::pg_sys::superuser() && crate::pg::citus::from_other_node()
    }
}

/// `name` of a shard's relation name `name_<digits>`; None for any other name.
fn shard_base(relname: &[u8]) -> Option<&[u8]> {
    let cut = relname.iter().rposition(|&b| b == b'_')?;
    let (base, digits) = (&relname[..cut], &relname[cut + 1..]);
    (!base.is_empty() && !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::is_name_or_shard;

    #[test]
    fn shard_bases() {
        use super::shard_base;
        assert_eq!(shard_base(b"invoice_102040"), Some(&b"invoice"[..]));
        assert_eq!(shard_base(b"order_hold_7"), Some(&b"order_hold"[..]));
        assert_eq!(shard_base(b"order_hold"), None);
        assert_eq!(shard_base(b"invoice_"), None);
        assert_eq!(shard_base(b"_123"), None);
        assert_eq!(shard_base(b"invoice_12x"), None);
    }

    #[test]
    fn shard_names() {
        assert!(is_name_or_shard(b"account", b"account"));
        assert!(is_name_or_shard(b"account_102008", b"account"));
        assert!(!is_name_or_shard(b"account_", b"account"));
        assert!(!is_name_or_shard(b"account_x1", b"account"));
        assert!(!is_name_or_shard(b"accounts", b"account"));
        assert!(!is_name_or_shard(b"event_chain", b"event"));
    }
}
