//! The fast path seen from SQL: its state for DBAs (`credit.fast_path_status`), and what
//! `credit.verify` reads (sql/guard.sql). The mechanism is `store::reservations`.
use crate::pg::numeric::numeric;
use crate::privileges;
use crate::store::reservations;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// The fast path in this database: whether orders reserve in shared memory, and what it holds.
#[pg_extern(volatile, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn fast_path_status() -> TableIterator<
    'static,
    (
        name!(state, String),
        name!(customers, i64),
        name!(capacity, i64),
        name!(reserved_in_flight, AnyNumeric),
        name!(committed_not_flushed, AnyNumeric),
        name!(transactions_in_flight, i64),
        name!(row_path_when_full, i64),
        name!(flushes, i64),
        name!(customers_flushed, i64),
        name!(flusher_pid, Option<i32>),
    ),
> {
    privileges::require("reader", "reading the fast path's state");
    let s = reservations::status();
    TableIterator::once((
        s.state.to_string(),
        s.customers,
        s.capacity,
        numeric(s.pending),
        numeric(s.unflushed),
        s.transactions_in_flight,
        s.full_misses,
        s.flushes,
        s.flushed_customers,
        s.flusher_pid,
    ))
}

/// Internal: waits for fast reservations in flight to end and holds new ones off until the
/// calling transaction ends; then returns the open orders committed per customer that
/// credit.account does not show yet (credit.verify adds them).
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn _fast_path_open_orders() -> TableIterator<'static, (name!(customer, String), name!(open_orders, AnyNumeric))> {
    privileges::require_internal("credit._fast_path_open_orders");
    reservations::drain_database();
    TableIterator::new(reservations::committed_deltas().into_iter().map(|(c, d)| (c, numeric(d))))
}

/// Writes the open orders committed since the flusher's last round into credit.account now (waits
/// for the rows' locks): what a report reading credit.account directly may run first. Right after
/// a start it waits for the recount first (its rows may miss orders until then); on Citus every
/// commit writes its open orders, and there is nothing to write.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn flush_open_orders() -> i64 {
    privileges::require("clerk", "flushing open orders into credit.account");
    if !reservations::preloaded() || crate::pg::citus::distributed() {
        return 0;
    }
    reservations::wait_for_recount(|| Spi::connect(crate::store::account::account_created_here));
    if !reservations::counting() {
        return 0;
    }
    crate::store::flusher::flush(reservations::unflushed_customers(), true) as i64
}
