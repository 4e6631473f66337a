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
pub mod ledger;

use std::cell::Cell;

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
