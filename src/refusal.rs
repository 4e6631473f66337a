//! Recording refused orders. A refusal is an ERROR: the refused transaction rolls back, and with
//! it anything it wrote. So the `order_refused` event is written by a short-lived background
//! worker in its own transaction: the guard hands it the event through a dynamic shared memory
//! segment and waits (at most a few seconds) until it has committed, then raises the error. The
//! event reaches credit.event and the outbox like every other; a consumer sees refusals that no
//! application transaction could have recorded.
//!
//! Costs a worker start (a few milliseconds) per refusal, never anything per accepted order.
//! Without a free worker slot (max_worker_processes) the refusal is still raised, with a WARNING
//! that it was not recorded.
use crate::error::OrRaise;
use crate::guard::Refusal;
use crate::guc;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::time::{Duration, Instant};

/// How long the refused statement waits for the worker before giving up on waiting.
const WAIT: Duration = Duration::from_secs(5);

fn warn(message: &str) {
    pgrx::pg_sys::panic::ErrorReport::new(pgrx::PgSqlErrorCode::ERRCODE_WARNING, message.to_string(), "pg_credit")
        .report(PgLogLevel::WARNING);
}

/// Hands the refusal to a worker that records it as an `order_refused` event; returns once it is
/// committed (or after WAIT).
pub fn record(c: &mut SpiClient<'_>, r: &Refusal, relid: pg_sys::Oid, message: &str) {
    if !guc::RECORD_REFUSALS.get() {
        return;
    }
    let who = c
        .update(
            "SELECT pg_catalog.jsonb_build_object('table', $1::pg_catalog.regclass::pg_catalog.text, \
                    'actor', session_user, 'acting_as', credit._caller(), \
                    'application_name', pg_catalog.current_setting('application_name'))",
            Some(1),
            &[relid.into()],
        )
        .or_raise()
        .first()
        .get_one::<pgrx::JsonB>()
        .or_raise()
        .map(|j| j.0)
        .unwrap_or_default();
    let mut payload = serde_json::json!({
        "customer": r.customer,
        "amount": r.amount.to_string(),
        "reasons": r.reasons.iter().map(|x| x.code()).collect::<Vec<_>>(),
        "group": r.group,
        "message": message,
    });
    if let (Some(p), serde_json::Value::Object(w)) = (payload.as_object_mut(), who) {
        p.extend(w);
    }
    let bytes = payload.to_string().into_bytes();
    unsafe { hand_over(&bytes) }
}

unsafe fn hand_over(bytes: &[u8]) {
    let seg = pg_sys::dsm_create(4 + bytes.len(), 0);
    let base = pg_sys::dsm_segment_address(seg) as *mut u8;
    std::ptr::copy_nonoverlapping((bytes.len() as u32).to_le_bytes().as_ptr(), base, 4);
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(4), bytes.len());
    let handle = pg_sys::dsm_segment_handle(seg);
    let worker = BackgroundWorkerBuilder::new("pg_credit refusal recorder")
        .set_type("pg_credit refusal recorder")
        .set_library("pg_credit")
        .set_function("pg_credit_refusal_worker")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_argument(Some(pg_sys::Datum::from(handle as usize)))
        .set_extra(&u32::from(pg_sys::MyDatabaseId).to_string())
        .set_notify_pid(pg_sys::MyProcPid)
        .load_dynamic();
    let Ok(worker) = worker else {
        warn("pg_credit: no background worker slot free; the refused order is not recorded in credit.event (raise max_worker_processes)");
        pg_sys::dsm_detach(seg);
        return;
    };
    let start = Instant::now();
    loop {
        match worker.pid() {
            Err(BackgroundWorkerStatus::Stopped) | Err(BackgroundWorkerStatus::PostmasterDied) => break,
            _ if start.elapsed() > WAIT => {
                warn("pg_credit: the refusal recorder is slow; the refused order's event may appear late");
                break;
            }
            _ => {
                pg_sys::WaitLatch(
                    pg_sys::MyLatch,
                    (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                    10,
                    pg_sys::PG_WAIT_EXTENSION,
                );
                pg_sys::ResetLatch(pg_sys::MyLatch);
                pg_sys::check_for_interrupts!();
            }
        }
    }
    // The worker holds its own mapping while it reads, so detaching here is safe either way.
    pg_sys::dsm_detach(seg);
}

/// The worker: reads the event, connects to the guard's database as the bootstrap superuser,
/// appends the event (credit.event's deferred trigger numbers it in the outbox and notifies).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_credit_refusal_worker(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let Ok(dboid) = BackgroundWorker::get_extra().parse::<u32>() else { return };
    let payload = unsafe {
        let seg = pg_sys::dsm_attach(arg.value() as pg_sys::dsm_handle);
        if seg.is_null() {
            return; // the refused backend stopped waiting and the segment is gone
        }
        let base = pg_sys::dsm_segment_address(seg) as *const u8;
        let mut len = [0u8; 4];
        std::ptr::copy_nonoverlapping(base, len.as_mut_ptr(), 4);
        let bytes = std::slice::from_raw_parts(base.add(4), u32::from_le_bytes(len) as usize).to_vec();
        pg_sys::dsm_detach(seg);
        String::from_utf8_lossy(&bytes).into_owned()
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(dboid)), Some(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID)));
    BackgroundWorker::transaction(|| {
        Spi::run_with_args(
            "SELECT credit._record_refusal($1::jsonb)",
            &[payload.as_str().into()],
        )
    })
    .or_raise();
}
