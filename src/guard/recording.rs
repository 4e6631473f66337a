//! Recording refused orders. A refusal is an ERROR: the refused transaction rolls back, and with
//! it anything it wrote. So before raising the error the guard appends the `order_refused` event
//! to a spool file of its own backend (a `write(2)` into the page cache: no process started, no
//! lock held, nothing waited for), and one recorder per database — a background worker started
//! when the first refusal arrives, gone two seconds after the last — moves spooled refusals into
//! credit.event (and so the outbox and the audit chain) in batches.
//!
//! Exactly once: the recorder remembers how far it has read each file in credit.refusal_spool,
//! in the same transaction as the events it writes, and deletes a file only after that
//! transaction committed, once it is read to the end and closed. A refusal whose spool line cannot
//! be written (a full disk) is counted in credit.refusal_recording, and the client gets a WARNING.
//!
//! Spool: `$PGDATA/pg_credit/refusals/<database oid>/<postmaster start>-<pid>-<backend start>-<n>.jsonl`.
//! A backend writes only its newest file (the next one after 8 MB); a file is closed when its
//! backend has gone (or the server restarted) or the backend has moved on to a newer file. Files
//! are never renamed, so a listing never misses one. They are not WAL-logged: a standby promoted
//! after a crash of the primary does not have them.
use crate::pg::error::OrRaise;
use crate::pg::settings;
use crate::privileges;
use crate::store::events;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROTATE_AT: u64 = 8 << 20;
/// Lines moved into credit.event per transaction.
const BATCH: usize = 5000;
/// How long the recorder waits for new refusals before it exits: short, because a connected
/// worker keeps DROP DATABASE from proceeding (it waits 5 seconds for other sessions to go).
const IDLE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(50);

fn dir(db: Oid) -> PathBuf {
    // Backends and workers run with the data directory as their working directory.
    PathBuf::from(format!("pg_credit/refusals/{}", u32::from(db)))
}

struct Spool {
    file: File,
    size: u64,
    seq: u32,
}

thread_local! {
    static SPOOL: RefCell<Option<Spool>> = const { RefCell::new(None) };
    static LAST_START: RefCell<Option<Instant>> = const { RefCell::new(None) };
}

fn file_name(seq: u32) -> String {
    // SAFETY: plain reads of backend globals.
    let (pm, pid, me) = unsafe { (pg_sys::PgStartTime, pg_sys::MyProcPid, pg_sys::MyStartTime) };
    format!("{pm}-{pid}-{me}-{seq}.jsonl")
}

fn open_spool(db: Oid, seq: u32) -> std::io::Result<Spool> {
    let d = dir(db);
    fs::create_dir_all(&d)?;
    let file = OpenOptions::new().create(true).append(true).open(d.join(file_name(seq)))?;
    let size = file.metadata()?.len();
    Ok(Spool { file, size, seq })
}

fn append(db: Oid, line: &[u8]) -> std::io::Result<()> {
    SPOOL.with(|s| {
        let mut s = s.borrow_mut();
        // A full file is followed by the next one (if that cannot be opened, the error counts this
        // refusal as unrecorded, and the next refusal tries again).
        if let Some(next) = s.as_ref().filter(|sp| sp.size >= ROTATE_AT).map(|sp| sp.seq + 1) {
            *s = Some(open_spool(db, next)?);
        }
        let sp = match s.as_mut() {
            Some(sp) => sp,
            None => s.insert(open_spool(db, 0)?),
        };
        sp.file.write_all(line)?;
        sp.size += line.len() as u64;
        Ok(())
    })
}

fn now_utc() -> String {
    // SAFETY: GetCurrentTimestamp reads the clock.
    let us = unsafe { pg_sys::GetCurrentTimestamp() };
    // PostgreSQL counts from 2000-01-01, Unix from 1970-01-01: 946,684,800 seconds apart.
    chrono::DateTime::from_timestamp_micros(us + 946_684_800_000_000)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

fn qualified_name(relid: Oid) -> String {
    crate::pg::relation_name(relid).unwrap_or_else(|| format!("relation {}", u32::from(relid)))
}

fn application_name() -> Option<String> {
    // SAFETY: the GUC's C string, set by PostgreSQL.
    unsafe {
        let p = pg_sys::application_name;
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned()).filter(|s| !s.is_empty())
    }
}

/// A refused order as it is recorded.
pub struct RefusedOrder<'a> {
    pub customer: &'a str,
    pub amount: String,
    pub reasons: Vec<&'static str>,
    /// Refused for the customer's group (the customer is the group head).
    pub group: bool,
    pub message: &'a str,
    pub table: Oid,
}

/// Spools the refusal as an `order_refused` event; never waits, never fails the refusal.
pub fn record(r: &RefusedOrder<'_>) {
    if !settings::RECORD_REFUSALS.get() {
        return;
    }
    let line = serde_json::json!({
        "refused_at": now_utc(),
        "customer": r.customer,
        "amount": r.amount,
        "reasons": r.reasons,
        "group": r.group,
        "message": r.message,
        "table": qualified_name(r.table),
        "actor": privileges::name_of(privileges::person()),
        "acting_as": privileges::name_of(privileges::caller()),
        "application_name": application_name(),
    });
    let mut bytes = line.to_string().into_bytes();
    bytes.push(b'\n');
    // SAFETY: plain read of a backend global.
    let db = unsafe { pg_sys::MyDatabaseId };
    if let Err(e) = append(db, &bytes) {
        count_unrecorded(db);
        warn(&format!("pg_credit: the refused order could not be spooled for recording ({e}); it is counted in credit.refusal_recording"));
        return;
    }
    start_recorder(db);
}

fn count_unrecorded(db: Oid) {
    let _ = fs::create_dir_all(dir(db))
        .and_then(|_| OpenOptions::new().create(true).append(true).open(dir(db).join("unrecorded")))
        .and_then(|mut f| f.write_all(b"1\n"));
}

fn warn(message: &str) {
    pgrx::pg_sys::panic::ErrorReport::new(pgrx::PgSqlErrorCode::ERRCODE_WARNING, message.to_string(), "pg_credit")
        .report(PgLogLevel::WARNING);
}

fn lock_path(db: Oid) -> PathBuf {
    dir(db).join("recorder.lock")
}

/// Whether a recorder holds the database's lock file.
fn recorder_running(db: Oid) -> bool {
    let Ok(f) = OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(db)) else { return false };
    match f.try_lock() {
        Ok(()) => {
            let _ = f.unlock();
            false
        }
        Err(_) => true,
    }
}

/// Starts the database's recorder unless one runs (checked at most once a second per backend).
fn start_recorder(db: Oid) {
    let due = LAST_START.with(|l| {
        let mut l = l.borrow_mut();
        let due = l.is_none_or(|t| t.elapsed() > Duration::from_secs(1));
        if due {
            *l = Some(Instant::now());
        }
        due
    });
    if !due || recorder_running(db) {
        return;
    }
    let started = BackgroundWorkerBuilder::new("pg_credit refusal recorder")
        .set_type("pg_credit refusal recorder")
        .set_library("pg_credit")
        .set_function("pg_credit_refusal_recorder")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_extra(&u32::from(db).to_string())
        .load_dynamic();
    if started.is_err() {
        // The refusal stays spooled: the next refusal, credit.record_refusals() or a free slot
        // records it; credit.refusal_recording shows it pending meanwhile.
        warn("pg_credit: no background worker slot is free to record refused orders now; they stay spooled (credit.refusal_recording)");
    }
}

/// A spool file and whether its writer is done with it. `key` (its name without `.jsonl`) names
/// it in credit.refusal_spool.
struct SpoolFile {
    key: String,
    path: PathBuf,
    closed: bool,
}

fn writer_gone(name: &str) -> bool {
    let mut parts = name.split('-');
    let (Some(pm), Some(pid)) = (parts.next(), parts.next()) else { return true };
    // SAFETY: plain read of a postmaster global.
    let started = unsafe { pg_sys::PgStartTime };
    if pm != started.to_string() {
        return true; // written before the server restarted
    }
    let Ok(pid) = pid.parse::<i32>() else { return true };
    // SAFETY: signal 0 only checks whether the process exists.
    let alive =
        unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    !alive
}

/// The writer of `key` (everything before its sequence number) and the sequence number.
fn writer_and_seq(key: &str) -> (&str, u32) {
    match key.rsplit_once('-') {
        Some((writer, seq)) => (writer, seq.parse().unwrap_or(0)),
        None => (key, 0),
    }
}

fn spool_files(db: Oid) -> Vec<SpoolFile> {
    let Ok(entries) = fs::read_dir(dir(db)) else { return vec![] };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some((name.strip_suffix(".jsonl")?.to_string(), e.path()))
        })
        .collect();
    found.sort();
    let newest: std::collections::HashMap<String, u32> = found.iter().fold(Default::default(), |mut m, (k, _)| {
        let (w, seq) = writer_and_seq(k);
        let e = m.entry(w.to_string()).or_insert(seq);
        *e = (*e).max(seq);
        m
    });
    found
        .into_iter()
        .map(|(key, path)| {
            let (w, seq) = writer_and_seq(&key);
            let closed = seq < newest[w] || writer_gone(&key);
            SpoolFile { key, path, closed }
        })
        .collect()
}

/// The complete lines of a file from `offset` on (at most BATCH), and the offset after them.
fn read_lines(path: &Path, offset: u64) -> (Vec<String>, u64) {
    let Ok(mut f) = File::open(path) else { return (vec![], offset) };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return (vec![], offset);
    }
    let mut buf = Vec::new();
    let _ = f.take(64 << 20).read_to_end(&mut buf);
    let mut lines = Vec::new();
    let mut end = 0usize;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' {
            lines.push(String::from_utf8_lossy(&buf[end..i]).into_owned());
            end = i + 1;
            if lines.len() == BATCH {
                break;
            }
        }
    }
    (lines, offset + end as u64)
}

/// Moves spooled refusals of this database into credit.event; returns how many, and the files
/// read to the end whose writers are done with them: they may be deleted once the caller's
/// transaction has committed (never before: a rollback would lose what was read). Concurrent
/// callers serialise on the progress rows (locked until their transactions end).
fn drain(db: Oid) -> (i64, Vec<PathBuf>) {
    let mut moved = 0;
    let mut finished = Vec::new();
    if !hold_extension() {
        return (0, finished);
    }
    let files = spool_files(db);
    // Progress rows of files that are gone (deleted after an earlier drain committed).
    Spi::run_with_args(
        "DELETE FROM credit.refusal_spool WHERE file <> ALL ($1)",
        &[files.iter().map(|f| f.key.clone()).collect::<Vec<_>>().into()],
    )
    .or_raise();
    for f in files {
        let name = f.key.clone();
        let offset: i64 = Spi::connect_mut(|c| {
            c.update(
                "INSERT INTO credit.refusal_spool (file) VALUES ($1) ON CONFLICT DO NOTHING",
                None,
                &[name.as_str().into()],
            )
            .or_raise();
            c.update(
                "SELECT consumed FROM credit.refusal_spool WHERE file = $1 FOR UPDATE",
                Some(1),
                &[name.as_str().into()],
            )
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise()
            .unwrap_or(0)
        });
        let (lines, next) = read_lines(&f.path, offset as u64);
        if !lines.is_empty() {
            Spi::connect_mut(|c| {
                events::append_refused_orders(
                    c,
                    lines
                        .iter()
                        .map(|l| pgrx::JsonB(serde_json::from_str(l).unwrap_or(serde_json::Value::Null)))
                        .collect(),
                );
                c.update(
                    "UPDATE credit.refusal_spool SET consumed = $2 WHERE file = $1",
                    None,
                    &[name.as_str().into(), (next as i64).into()],
                )
                .or_raise();
            });
            moved += lines.len() as i64;
        }
        let size = fs::metadata(&f.path).map(|m| m.len()).unwrap_or(u64::MAX);
        if f.closed && next >= size.saturating_sub(trailing_partial(&f.path, next)) {
            // Read to the end, its writer done with it (a line cut off by a crash was never
            // refused to anyone: the backend died before it raised the error).
            finished.push(f.path);
        }
    }
    (moved, finished)
}

/// Locks the extension against DROP EXTENSION for the rest of the transaction (false: it is gone).
/// DROP EXTENSION locks the extension first and then each of its objects in creation order, and
/// a drain touches several of them (the events' sequence after credit.event): holding the
/// extension first, it waits for a DROP that came first instead of deadlocking with it.
fn hold_extension() -> bool {
    // SAFETY: a catalog look-up (missing_ok) and a lock on the extension object, released at the
    // end of the transaction.
    unsafe {
        let ext = pg_sys::get_extension_oid(c"pg_credit".as_ptr(), true);
        if ext == Oid::INVALID {
            return false;
        }
        pg_sys::LockDatabaseObject(pg_sys::ExtensionRelationId, ext, 0, pg_sys::AccessShareLock as i32);
    }
    // Dropped while this waited: a new statement sees it.
    Spi::get_one::<bool>("SELECT pg_catalog.to_regclass('credit.refusal_spool') IS NOT NULL")
        .or_raise()
        .unwrap_or(false)
}

/// Bytes after `offset` that do not end in a newline (a line its writer never finished).
fn trailing_partial(path: &Path, offset: u64) -> u64 {
    let Ok(mut f) = File::open(path) else { return 0 };
    let _ = f.seek(SeekFrom::Start(offset));
    let mut rest = Vec::new();
    let _ = f.read_to_end(&mut rest);
    if rest.contains(&b'\n') {
        0
    } else {
        rest.len() as u64
    }
}

/// Spool directories of databases that were dropped (with nothing left to record in them).
fn forget_dropped_databases() {
    let live: Vec<u32> = BackgroundWorker::transaction(|| {
        Spi::connect(|c| {
            c.select("SELECT oid FROM pg_catalog.pg_database", None, &[])
                .or_raise()
                .filter_map(|r| r.get::<Oid>(1).or_raise().map(u32::from))
                .collect()
        })
    });
    let Ok(entries) = fs::read_dir("pg_credit/refusals") else { return };
    for e in entries.flatten() {
        let Ok(oid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let spooled = fs::read_dir(e.path())
            .map(|d| d.flatten().any(|f| f.file_name().to_string_lossy().ends_with(".jsonl")))
            .unwrap_or(true);
        if !live.contains(&oid) && !spooled {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// The recorder: one per database (it holds the database's lock file), exits after IDLE.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_credit_refusal_recorder(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let Ok(db) = BackgroundWorker::get_extra().parse::<u32>() else { return };
    let db = Oid::from(db);
    let Ok(lock) = OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(db)) else { return };
    // A backend that just checked may hold it for an instant.
    let mut locked = false;
    for _ in 0..20 {
        if lock.try_lock().is_ok() {
            locked = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if !locked {
        return; // another recorder runs
    }
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(db), Some(Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID)));
    BackgroundWorker::transaction(|| Spi::run("SET search_path = pg_catalog, pg_temp").or_raise());
    forget_dropped_databases();
    let mut idle_since = Instant::now();
    let mut wait = POLL;
    while BackgroundWorker::wait_latch(Some(wait)) {
        let installed = BackgroundWorker::transaction(|| {
            Spi::get_one::<bool>("SELECT pg_catalog.to_regclass('credit.refusal_spool') IS NOT NULL")
                .or_raise()
                .unwrap_or(false)
        });
        if !installed {
            break; // the extension is gone, or not yet updated
        }
        let (moved, finished) = BackgroundWorker::transaction(|| drain(db));
        // Committed: what was read is in credit.event; the files may go (their progress rows go
        // with the next drain).
        for path in finished {
            let _ = fs::remove_file(path);
        }
        if moved > 0 {
            idle_since = Instant::now();
            wait = POLL;
        } else if idle_since.elapsed() > IDLE {
            break;
        } else {
            wait = POLL * 5;
        }
    }
    let _ = lock.unlock();
}

/// Moves every spooled refusal of this database into credit.event now (the recorder does this
/// by itself within a moment); returns how many.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn record_refusals() -> i64 {
    privileges::require("clerk", "recording spooled refusals");
    // SAFETY: plain read of a backend global.
    // (Finished files are left to the recorder: this transaction has not committed yet.)
    drain(unsafe { pg_sys::MyDatabaseId }).0
}

/// The state of refusal recording in this database (credit.refusal_recording).
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn _refusal_recording() -> TableIterator<
    'static,
    (
        name!(pending, i64),
        name!(spool_files, i32),
        name!(oldest_pending, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(recorder_running, bool),
        name!(unrecorded, i64),
    ),
> {
    privileges::require("reader", "reading the state of refusal recording");
    // SAFETY: plain read of a backend global.
    let db = unsafe { pg_sys::MyDatabaseId };
    let files = spool_files(db);
    let mut pending = 0i64;
    let mut oldest: Option<String> = None;
    for f in &files {
        let name = f.key.as_str();
        let offset = Spi::get_one_with_args::<i64>(
            "SELECT (SELECT consumed FROM credit.refusal_spool WHERE file = $1)",
            &[name.into()],
        )
        .or_raise()
        .unwrap_or(0);
        let Ok(mut file) = File::open(&f.path) else { continue };
        let _ = file.seek(SeekFrom::Start(offset as u64));
        let mut rest = Vec::new();
        let _ = file.read_to_end(&mut rest);
        let n = rest.iter().filter(|b| **b == b'\n').count() as i64;
        if n > 0 && oldest.is_none() {
            let first = rest.split(|b| *b == b'\n').next().unwrap_or(&[]);
            oldest = serde_json::from_slice::<serde_json::Value>(first)
                .ok()
                .and_then(|v| v.get("refused_at").and_then(|t| t.as_str()).map(str::to_string));
        }
        pending += n;
    }
    let oldest = oldest.and_then(|t| {
        Spi::get_one_with_args::<pgrx::datum::TimestampWithTimeZone>("SELECT $1::timestamptz", &[t.as_str().into()])
            .ok()
            .flatten()
    });
    let unrecorded =
        fs::read(dir(db).join("unrecorded")).map(|b| b.iter().filter(|c| **c == b'\n').count() as i64).unwrap_or(0);
    TableIterator::once((pending, files.len() as i32, oldest, recorder_running(db), unrecorded))
}
