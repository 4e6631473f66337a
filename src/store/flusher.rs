//! The fast path's background worker, one per database: first it recounts every account from the
//! source rows (shared memory starts empty after every start, crash or promotion, so what was
//! committed but not yet written could be anywhere), then it writes committed open orders from
//! shared memory into `credit.account` every `pg_credit.fast_path_flush_interval`.
use crate::pg::error::OrRaise;
use crate::pg::numeric::numeric;
use crate::store::{self, reservations};
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a flusher with nothing to write stays.
const IDLE: Duration = Duration::from_secs(2);

/// The worker's entry point (`reservations::start_worker` registers it by this name).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_credit_fast_path_worker(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let Ok(db) = BackgroundWorker::get_extra().parse::<u32>() else { return };
    let db = Oid::from(db);
    // SAFETY: plain read of the process's pid.
    let pid = unsafe { pg_sys::MyProcPid };
    if !reservations::claim_worker(db, pid) {
        return; // another one runs
    }
    struct Leave(Oid);
    impl Drop for Leave {
        fn drop(&mut self) {
            reservations::set_worker(self.0, 0);
        }
    }
    let _leave = Leave(db);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(db), Some(Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID)));
    // A flush lost in a crash is recounted at the next start anyway: no need to wait for its WAL.
    BackgroundWorker::transaction(|| {
        Spi::run("SET search_path = pg_catalog, pg_temp").or_raise();
        Spi::run("SET synchronous_commit = off").or_raise();
    });
    // At once when the database needs its recount; otherwise the first flush comes one interval
    // after the start, as every later one does (a flusher started by an order would otherwise
    // write that order at once, whatever the interval).
    let interval = || Duration::from_millis(reservations::FLUSH_MS.get().max(10) as u64);
    let mut due = if reservations::is_ready_state(db) { Instant::now() + interval() } else { Instant::now() };
    let mut idle_since = Instant::now();
    while BackgroundWorker::wait_latch(Some(
        due.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
    )) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: re-reads the configuration file, as PostgreSQL's own workers do on SIGHUP.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            due = due.min(Instant::now() + interval()); // a shorter interval counts from now
        }
        // The latch is also set by what is not a flush's turn (the invalidation catch-up signal
        // after much DDL elsewhere, a reload): the flush waits for the rest of its interval.
        if Instant::now() < due {
            continue;
        }
        // Nothing to do once pg_credit is dropped, or on Citus, whose accounts are shards the fast
        // path does not know (docs/citus.md).
        let wanted = BackgroundWorker::transaction(|| {
            Spi::get_one::<bool>("SELECT pg_catalog.to_regclass('credit.account') IS NOT NULL")
                .or_raise()
                .unwrap_or(false)
                && !crate::pg::citus::distributed()
        });
        if !wanted {
            break;
        }
        due = Instant::now() + interval();
        if !reservations::is_ready_state(db) {
            if BackgroundWorker::transaction(recount_pass) {
                reservations::set_ready(db);
                pgrx::log!("pg_credit: fast path on in this database (every account recounted)");
            } else {
                due = Instant::now() + Duration::from_millis(500);
            }
            continue;
        }
        let customers = reservations::unflushed_customers();
        if !customers.is_empty() {
            let n = BackgroundWorker::transaction(|| flush(customers, false));
            reservations::note_flush(db, n);
            idle_since = Instant::now();
        } else if idle_since.elapsed() > IDLE && reservations::leave_if_idle(db, pid) {
            // Nothing to write: leave, so that DROP DATABASE (which waits 5 s for the database's
            // sessions) can go on; the next order that commits asks for a flusher again.
            break;
        }
        reservations::evict_clean();
    }
}

/// One pass of the recount: every account row not locked by someone else is set from the source
/// rows. True when no row was skipped (every account is exact; fast reservations may start).
fn recount_pass() -> bool {
    store::writing(|| {
        Spi::connect_mut(|c| {
            let total: i64 = c
                .select("SELECT pg_catalog.count(*) FROM credit.account", None, &[])
                .or_raise()
                .first()
                .get_one()
                .or_raise()
                .unwrap_or(0);
            let locked: Vec<String> = c
                .update(
                    "SELECT customer FROM credit.account ORDER BY customer FOR NO KEY UPDATE SKIP LOCKED",
                    None,
                    &[],
                )
                .or_raise()
                .filter_map(|r| r.get::<String>(1).ok().flatten())
                .collect();
            let n = locked.len() as i64;
            c.update(
                "UPDATE credit.account a SET open_ar = x.open_ar, unapplied_credit = x.unapplied_credit, \
                 open_orders = x.open_orders, exposure = x.exposure, member_exposure = x.member_exposure, \
                 oldest_open_due = x.oldest_open_due \
                 FROM credit._recomputed() x \
                 WHERE x.customer = a.customer AND a.customer = ANY($1) \
                 AND (a.open_ar, a.unapplied_credit, a.open_orders, a.exposure, a.member_exposure, a.oldest_open_due) IS DISTINCT FROM \
                     (x.open_ar, x.unapplied_credit, x.open_orders, x.exposure, x.member_exposure, x.oldest_open_due)",
                None,
                &[locked.into()],
            )
            .or_raise();
            n == total
        })
    })
}

/// Writes the committed open orders of the customers whose rows it can lock now (`wait`: waits
/// for every row instead); returns how many.
pub fn flush(customers: Vec<String>, wait: bool) -> usize {
    let lock = if wait {
        "SELECT customer FROM credit.account WHERE customer OPERATOR(pg_catalog.=) ANY($1) ORDER BY customer FOR NO KEY UPDATE"
    } else {
        "SELECT customer FROM credit.account WHERE customer OPERATOR(pg_catalog.=) ANY($1) ORDER BY customer FOR NO KEY UPDATE SKIP LOCKED"
    };
    store::writing(|| {
        Spi::connect_mut(|c| {
            let locked: Vec<String> = c
                .update(lock, None, &[customers.into()])
                .or_raise()
                .filter_map(|r| r.get::<String>(1).ok().flatten())
                .collect();
            let mut names = Vec::new();
            let mut amounts = Vec::new();
            for cust in locked {
                if let Some(x) = reservations::claim(&cust) {
                    names.push(cust);
                    amounts.push(numeric(x));
                }
            }
            if names.is_empty() {
                return 0;
            }
            let n = names.len();
            let mut heads: BTreeMap<String, pgrx::AnyNumeric> = BTreeMap::new();
            // The rows' cached copies stay: the claims add what this writes at commit. (A head's
            // member_exposure below is a change its decisions see, so that write drops its copy.)
            let written = reservations::flush_write(|| {
                c.update(
                    "UPDATE credit.account a SET open_orders = a.open_orders OPERATOR(pg_catalog.+) d.x, \
                         exposure = a.exposure OPERATOR(pg_catalog.+) d.x \
                     FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY n(c, i) \
                     JOIN pg_catalog.unnest($2::pg_catalog.numeric[]) WITH ORDINALITY d0(x, i) ON d0.i OPERATOR(pg_catalog.=) n.i \
                     CROSS JOIN LATERAL (SELECT n.c, d0.x) d \
                     WHERE a.customer OPERATOR(pg_catalog.=) d.c RETURNING a.parent, d.x",
                    None,
                    &[names.into(), amounts.into()],
                )
                .or_raise()
            });
            for row in written {
                if let (Some(h), Some(x)) = (row.get::<String>(1).or_raise(), row.get::<pgrx::AnyNumeric>(2).or_raise())
                {
                    let e = heads.entry(h).or_insert_with(|| pgrx::AnyNumeric::from(0));
                    *e = e.clone() + x;
                }
            }
            for (h, x) in heads {
                c.update(
                    "UPDATE credit.account SET member_exposure = member_exposure OPERATOR(pg_catalog.+) $2 \
                     WHERE customer OPERATOR(pg_catalog.=) $1",
                    None,
                    &[h.into(), x.into()],
                )
                .or_raise();
            }
            n
        })
    })
}
