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
use std::ptr;
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

/// Locks the named customers' account rows in customer order, as every writer does.
const LOCK_IN_ORDER: &str =
    "SELECT customer FROM credit.account WHERE customer OPERATOR(pg_catalog.=) ANY($1) ORDER BY customer FOR NO KEY UPDATE";

/// Writes the committed open orders of the customers whose rows it can lock now (`wait`: waits
/// for every row instead); returns how many.
pub fn flush(customers: Vec<String>, wait: bool) -> usize {
    let lock = if wait {
        LOCK_IN_ORDER
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
            // The rows' cached copies stay: the claims add what this writes at commit.
            add_open_orders(names, amounts, true);
            n
        })
    })
}

/// Adds `amounts` to the named customers' open orders and exposure, and to their group heads'
/// member_exposure; the caller holds the customers' row locks. `flush`: the flusher's write, which
/// leaves the rows' cached copies (its claims add to them at commit); any other write drops them.
/// A head's member_exposure is a change its decisions see, so that write drops its copy anyway.
///
/// The statements read the latest committed rows, not the transaction's snapshot: they only add
/// to counters, which a write committed since a REPEATABLE READ transaction began (a flush, a
/// posting) must not turn into a serialization failure at PREPARE (`move_into_rows`).
fn add_open_orders(names: Vec<String>, amounts: Vec<pgrx::AnyNumeric>, flush: bool) {
    // One customer (a PREPARE's usual move) by its key alone: no arrays to build and unnest.
    let one = (names.len() == 1).then(|| {
        [(pg_sys::TEXTOID, names[0].clone().into_datum()), (pg_sys::NUMERICOID, amounts[0].clone().into_datum())]
    });
    let args = [(pg_sys::TEXTARRAYOID, names.into_datum()), (pg_sys::NUMERICARRAYOID, amounts.into_datum())];
    // Returns how many of the customers belong to a group (usually none: members take the row path).
    let own = || match &one {
        Some(one) => execute_latest(
            "UPDATE credit.account SET open_orders = open_orders OPERATOR(pg_catalog.+) $2, \
                 exposure = exposure OPERATOR(pg_catalog.+) $2 \
             WHERE customer OPERATOR(pg_catalog.=) $1 \
             RETURNING CASE WHEN parent IS NULL THEN 0 ELSE 1 END::pg_catalog.int8",
            one,
        ),
        None => execute_latest(
            "WITH w AS (UPDATE credit.account a SET open_orders = a.open_orders OPERATOR(pg_catalog.+) d.x, \
                 exposure = a.exposure OPERATOR(pg_catalog.+) d.x \
             FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) d(c, x) \
             WHERE a.customer OPERATOR(pg_catalog.=) d.c RETURNING a.parent) \
             SELECT pg_catalog.count(*) FROM w WHERE w.parent IS NOT NULL",
            &args,
        ),
    };
    let members = if flush { reservations::flush_write(own) } else { own() };
    if members.unwrap_or(0) == 0 {
        return;
    }
    // Heads after their members, in customer order (the store's lock order).
    execute_latest(
        "SELECT h.customer FROM credit.account h \
          WHERE h.customer OPERATOR(pg_catalog.=) ANY (SELECT a.parent FROM credit.account a \
                 WHERE a.customer OPERATOR(pg_catalog.=) ANY ($1)) \
          ORDER BY h.customer FOR NO KEY UPDATE",
        &args,
    );
    execute_latest(
        "UPDATE credit.account h SET member_exposure = h.member_exposure OPERATOR(pg_catalog.+) s.x \
           FROM (SELECT a.parent, pg_catalog.sum(d.x) AS x \
                   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) d(c, x) \
                   JOIN credit.account a ON a.customer OPERATOR(pg_catalog.=) d.c \
                  WHERE a.parent IS NOT NULL GROUP BY a.parent) s \
          WHERE h.customer OPERATOR(pg_catalog.=) s.parent",
        &args,
    );
}

thread_local! {
    /// This backend's plans of `execute_latest`, by statement (kept across transactions; PostgreSQL
    /// re-plans them when credit.account changes).
    static PLANS: std::cell::RefCell<Vec<(&'static str, usize)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs a statement (within a connected SPI) on the latest committed rows, and returns the first
/// column of its first row as a bigint, if any: SPI's own calls use the transaction's snapshot,
/// which under REPEATABLE READ is as old as the transaction.
fn execute_latest(sql: &'static str, args: &[(Oid, Option<pg_sys::Datum>)]) -> Option<i64> {
    let kept = PLANS.with(|p| p.borrow().iter().find(|(s, _)| ptr::eq(*s, sql)).map(|x| x.1));
    let plan = match kept {
        Some(p) => p as pg_sys::SPIPlanPtr,
        None => {
            let plan = prepare_kept(sql, args);
            PLANS.with(|p| p.borrow_mut().push((sql, plan as usize)));
            plan
        }
    };
    run_latest(plan, args)
}

fn failed(rc: i32) -> ! {
    crate::pg::error::raise(
        crate::pg::error::Code::ERRCODE_INTERNAL_ERROR,
        format!("pg_credit: writing open orders into credit.account failed (SPI code {rc})"),
        None,
        None,
    )
}

/// Prepares a statement for `run_latest` and keeps its plan for the backend's life.
fn prepare_kept(sql: &str, args: &[(Oid, Option<pg_sys::Datum>)]) -> pg_sys::SPIPlanPtr {
    let mut types: Vec<Oid> = args.iter().map(|a| a.0).collect();
    let text = std::ffi::CString::new(sql).expect("statement without NUL");
    // SAFETY: called inside a connected SPI; the plan is kept until the backend ends.
    unsafe {
        let plan = pg_sys::SPI_prepare(text.as_ptr(), types.len() as i32, types.as_mut_ptr());
        if plan.is_null() {
            failed(pg_sys::SPI_result);
        }
        let rc = pg_sys::SPI_keepplan(plan);
        if rc != 0 {
            failed(rc);
        }
        plan
    }
}

/// Runs a kept plan (within a connected SPI) on the latest committed rows, and returns the first
/// column of its first row as a bigint, if any.
fn run_latest(plan: pg_sys::SPIPlanPtr, args: &[(Oid, Option<pg_sys::Datum>)]) -> Option<i64> {
    let mut values: Vec<pg_sys::Datum> = args.iter().map(|a| a.1.unwrap_or(pg_sys::Datum::from(0))).collect();
    let nulls: Vec<std::ffi::c_char> =
        args.iter().map(|a| if a.1.is_some() { b' ' } else { b'n' } as std::ffi::c_char).collect();
    // SAFETY: a kept plan; the arguments live across the call; the result is read before SPI is left.
    unsafe {
        let rc = pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            pg_sys::GetLatestSnapshot(),
            ptr::null_mut(),
            false,
            true,
            0,
        );
        if rc < 0 {
            failed(rc);
        }
        let table = pg_sys::SPI_tuptable;
        if table.is_null() || pg_sys::SPI_processed == 0 {
            return None;
        }
        let mut isnull = false;
        let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut isnull);
        if isnull {
            None
        } else {
            i64::from_datum(d, false)
        }
    }
}

/// Registers `move_into_rows` (from _PG_init while shared_preload_libraries loads the library).
pub fn init() {
    // SAFETY: _PG_init runs single-threaded; PostgreSQL keeps the callback for the process.
    unsafe {
        if pg_sys::process_shared_preload_libraries_in_progress {
            pg_sys::RegisterXactCallback(Some(xact_callback), ptr::null_mut());
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE => move_into_rows(),
        // On a Citus node every commit writes its reservations on shards (`ready_on_shard`).
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT if reservations::moves_on_shards() => move_into_rows(),
        _ => {}
    }
}

/// At PREPARE TRANSACTION, and at COMMIT of a transaction that reserved on an account shard of a
/// Citus node: writes the transaction's fast reservations and releases, net per customer
/// (`reservations::prepare_moves`), into the account rows, locked in customer order as every
/// writer locks them. Runs as the accounts' owner, as the guard's row path does: the caller may
/// hold no right on the table. Every name in the statements is schema-qualified.
fn move_into_rows() {
    let moves = reservations::prepare_moves();
    let (mut on_shards, here): (Vec<_>, Vec<_>) = moves.into_iter().partition(|m| m.2.is_some());
    if !here.is_empty() {
        let owner = crate::pg::user::relation_owner(super::fast_read::account_rel());
        crate::pg::user::as_user(owner, 0, || {
            store::writing(|| {
                Spi::connect_mut(|_| {
                    let (names, amounts): (Vec<String>, Vec<pgrx::AnyNumeric>) =
                        here.into_iter().map(|(c, x, _)| (c, numeric(x))).unzip();
                    // One row needs no order: the update locks it.
                    if names.len() > 1 {
                        execute_latest(LOCK_IN_ORDER, &[(pg_sys::TEXTARRAYOID, names.clone().into_datum())]);
                    }
                    add_open_orders(names, amounts, false);
                })
            })
        });
    }
    if !on_shards.is_empty() {
        // One row at a time, in customer order over all shards: the order every writer locks in.
        on_shards.sort_by(|a, b| a.0.cmp(&b.0));
        let owner = crate::pg::user::relation_owner(on_shards[0].2.unwrap_or(Oid::INVALID));
        crate::pg::user::as_user(owner, 0, || {
            store::writing(|| {
                Spi::connect_mut(|_| {
                    for (customer, amount, shard) in on_shards {
                        let shard = shard.unwrap_or(Oid::INVALID);
                        // The shard's row is written here: its generation moves at commit.
                        reservations::touched(&customer);
                        execute_on_shard(
                            shard,
                            &[
                                (pg_sys::TEXTOID, customer.into_datum()),
                                (pg_sys::NUMERICOID, numeric(amount).into_datum()),
                            ],
                        );
                    }
                })
            })
        });
    }
    reservations::moved_into_rows();
}

thread_local! {
    /// This backend's plans of `execute_on_shard`, by account shard.
    static SHARD_PLANS: std::cell::RefCell<std::collections::HashMap<Oid, usize>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Adds $2 to the open orders and exposure of customer $1 in an account shard, on the latest
/// committed row (as `add_open_orders`). Groups do not exist on Citus.
fn execute_on_shard(shard: Oid, args: &[(Oid, Option<pg_sys::Datum>)]) {
    let kept = SHARD_PLANS.with(|p| p.borrow().get(&shard).copied());
    let plan = match kept {
        Some(p) => p as pg_sys::SPIPlanPtr,
        None => {
            let name = crate::pg::relation_name(shard).unwrap_or_else(|| {
                crate::pg::error::raise(
                    crate::pg::error::Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!("the account shard (oid {}) of an order in this transaction is gone", u32::from(shard)),
                    Some("A shard move took it away while the transaction was in flight.".into()),
                    Some("Retry the transaction."),
                )
            });
            let sql = format!(
                "UPDATE {name} SET open_orders = open_orders OPERATOR(pg_catalog.+) $2, \
                     exposure = exposure OPERATOR(pg_catalog.+) $2 \
                 WHERE customer OPERATOR(pg_catalog.=) $1"
            );
            let plan = prepare_kept(&sql, args);
            SHARD_PLANS.with(|p| p.borrow_mut().insert(shard, plan as usize));
            plan
        }
    };
    run_latest(plan, args);
}
