//! The fast path: open-order reservations in shared memory (with `shared_preload_libraries =
//! 'pg_credit'`), so that an order writes no account row and a hot customer does not serialise.
//!
//! Shared memory holds, per database and customer, only what `credit.account` does not show yet:
//!
//! - `pending`: reservations of transactions in flight (they count against the limit at once);
//! - `unflushed`: open-order changes committed since the database's flusher last wrote them into
//!   `credit.account.open_orders` (the flusher, a background worker, does so in batches);
//! - `flushing`: what a flusher (or a repair) has taken out of `unflushed` and is writing now.
//!
//! A decision is the account row (read without a lock, latest committed version) plus all three.
//! The rules that keep it exact:
//!
//! 1. Every reservation of a customer is checked and registered under this module's lock, so
//!    concurrent reservations see each other (fast ones and the row path's alike).
//! 2. A fast read that meets an account row being written by a transaction in flight takes the
//!    row path (it waits for the row lock), so it never decides on a row about to change.
//! 3. A transaction that wrote an account row bumps the customer's generation when it commits
//!    (after its commit became visible); a fast decision that saw the generation move between
//!    reading the row and reserving reads again, so it never mixes a row from before a commit
//!    with counters from after it.
//! 4. Decreases apply at commit; increases at once. Aborts (including a subtransaction's and a
//!    backend's death, which restarts shared memory) release what they reserved. PREPARE
//!    TRANSACTION writes them into the account rows first (`prepare_moves`): a prepared
//!    transaction may outlive shared memory, its locked rows do not.
//! 5. An entry may keep a copy of the account row's decision columns (`cached`), so that orders
//!    need not read the row. Every writer of the row drops it and keeps it from being kept again
//!    until the writer ends (`row_written`, from a BEFORE trigger on credit.account enabled
//!    ALWAYS); a row is kept only if the generation did not move since it was read, nobody
//!    writes it and no flush is in flight for it. The flush's write is the one exception: its
//!    claim adds what it wrote to the copy at commit, as the row gains it.
//! 6. Shared memory starts empty after every start, crash or promotion: the database is not ready
//!    until its flusher has recounted every account from the source rows; until then orders wait
//!    (`wait_for_recount`: a row may miss orders committed before the restart). Whenever the fast
//!    path cannot be used, the row path (the design without preloading) runs.
//! 7. On an account shard of a Citus node (`ready_on_shard`), nothing is ever committed and not
//!    written: every commit writes the transaction's reservations into the shard's rows first, as
//!    PREPARE does (rule 4), so `unflushed` stays empty there, rows are exact after any restart, and
//!    a shard move (which waits for the writes in flight on the shard) takes everything with it.
//!    No copies are kept there (every commit would drop them).
//!
//! ARCHITECTURE.md ("The fast path") tells the whole story; docs/fast_path.md the DBA's side.
use super::fast_read::Raw;
use crate::pg::error::{self, Code};
use credit_core::decision::{self, Account};
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use rust_decimal::Decimal;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::c_void;
use std::ptr;

/// Customer names up to this many bytes take the fast path; longer ones the row path.
pub const NAME_MAX: usize = 116;
/// Databases that can use the fast path at once (a slot is about 60 bytes).
const MAX_DBS: usize = 1024;
/// Amounts in shared memory: fixed point with 8 decimals (credit_core::money's precision).
const SCALE: u32 = 8;

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    db: u32,
    len: u32,
    name: [u8; NAME_MAX],
}

/// i128 in two words: dynahash aligns entries to 8 bytes, an i128 wants 16.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Amount([u64; 2]);

impl Amount {
    fn get(self) -> i128 {
        (((self.0[0] as u128) << 64) | self.0[1] as u128) as i128
    }
    fn set(&mut self, v: i128) {
        let u = v as u128;
        self.0 = [(u >> 64) as u64, u as u64];
    }
    fn add(&mut self, v: i128) {
        let n = self.get() + v;
        self.set(n);
    }
}

#[repr(C)]
struct Entry {
    key: Key,
    generation: u64,
    /// Records of transactions in flight that name this entry (it is not evicted while > 0).
    refs: u32,
    /// Transactions draining this customer (a group join, a rename): fast reservations wait.
    draining: u32,
    /// The largest scale of the amounts counted: sums are shown with it, as numeric addition would.
    scale: u32,
    pending: Amount,
    unflushed: Amount,
    flushing: Amount,
    /// Transactions in flight that write (or wrote) the customer's account row: no cached row
    /// is used or kept until they end.
    writers: u32,
    /// The account row's decision columns as of `generation`, kept so that an order need not read
    /// the row (None: read it). Dropped whenever a transaction starts writing the row; a flush's
    /// write adds what it wrote instead.
    cached: Option<Raw>,
}

const FREE: u32 = 0;
const RECOUNTING: u32 = 1;
const READY: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy)]
struct DbSlot {
    db: u32,
    state: u32,
    /// credit.account's OID when the slot was set up: a recreated extension starts over.
    account_rel: u32,
    worker_pid: i32,
    /// When a backend last asked for the worker (ms since the epoch): asked at most once a second.
    worker_asked_ms: i64,
    /// Transactions draining the whole database (credit.verify, credit.rebuild_exposure).
    draining: u32,
    /// Transactions with fast records in this database.
    fast_in_flight: u32,
    /// Row-path reservations in flight that found no free entry: no entry may be created until
    /// they end (they could not register, so a new fast reader could not see them).
    overflow: u32,
    /// Transactions in flight that write account rows of customers without an entry (or TRUNCATE
    /// credit.account): no row may be cached in the database until they end.
    uncached_writers: u32,
    /// Moves when such a transaction ends: a row read before then may be older than the latest.
    epoch: u64,
    /// Reservations that found the table full and took the row path.
    full_misses: u64,
    flushes: u64,
    flushed_customers: u64,
}

#[repr(C)]
struct Header {
    lock: *mut pg_sys::LWLock,
    generation: u64,
    count: u32,
    capacity: u32,
    dbs: [DbSlot; MAX_DBS],
}

static mut HEADER: *mut Header = ptr::null_mut();
static mut TABLE: *mut pg_sys::HTAB = ptr::null_mut();
static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;
static mut PRELOADED: bool = false;

pub static CAPACITY: pgrx::guc::GucSetting<i32> = pgrx::guc::GucSetting::<i32>::new(100_000);
pub static ENABLED: pgrx::guc::GucSetting<bool> = pgrx::guc::GucSetting::<bool>::new(true);
pub static FLUSH_MS: pgrx::guc::GucSetting<i32> = pgrx::guc::GucSetting::<i32>::new(1000);
pub static DRAIN_TIMEOUT_MS: pgrx::guc::GucSetting<i32> = pgrx::guc::GucSetting::<i32>::new(10_000);

const TRANCHE: &std::ffi::CStr = c"pg_credit fast path";
const SHMEM_NAME: &std::ffi::CStr = c"pg_credit fast path";
const HASH_NAME: &std::ffi::CStr = c"pg_credit fast path customers";

// ---------------------------------------------------------------------------------------------
// Set-up (from _PG_init while shared_preload_libraries loads the library).

pub fn init() {
    use pgrx::guc::{GucContext, GucFlags, GucRegistry};
    GucRegistry::define_bool_guc(
        c"pg_credit.fast_path",
        c"Reserve credit for guarded orders in shared memory (needs shared_preload_libraries).",
        c"On by default. Off in a session or transaction (SET LOCAL) makes its orders take the row path, \
          which writes and locks the customer's account row from the first order on.",
        &ENABLED,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_credit.fast_path_flush_interval",
        c"How often (ms) the flusher writes committed open orders into credit.account.",
        c"credit.account's open_orders and exposure lag the orders by at most about this long; decisions never do.",
        &FLUSH_MS,
        10,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_credit.fast_path_drain_timeout",
        c"How long (ms) a repair or group change waits for fast-path reservations in flight.",
        c"credit.verify, credit.rebuild_exposure and changes of an account's group or name wait for the \
          transactions holding reservations to end; after this long they fail with 55P03.",
        &DRAIN_TIMEOUT_MS,
        100,
        3_600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    // SAFETY: _PG_init runs single-threaded; the hooks are chained as PostgreSQL expects.
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        GucRegistry::define_int_guc(
            c"pg_credit.fast_path_customers",
            c"How many customers' reservations shared memory holds at once (all databases).",
            c"Customers beyond it take the row path until the flusher frees entries. About 400 bytes each.",
            &CAPACITY,
            16,
            10_000_000,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        PRELOADED = true;
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(request);
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup);
        pg_sys::RegisterXactCallback(Some(xact_callback), ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subxact_callback), ptr::null_mut());
    }
}

fn capacity() -> i64 {
    CAPACITY.get().max(16) as i64
}

#[pg_guard]
unsafe extern "C-unwind" fn request() {
    // SAFETY: called once in the postmaster, within the shmem request phase.
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        let size = std::mem::size_of::<Header>() + pg_sys::hash_estimate_size(capacity(), std::mem::size_of::<Entry>());
        pg_sys::RequestAddinShmemSpace(size);
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn startup() {
    // SAFETY: PostgreSQL's documented protocol for an add-in's shared memory.
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        pg_sys::LWLockAcquire(addin_init_lock(), pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let h = pg_sys::ShmemInitStruct(SHMEM_NAME.as_ptr(), std::mem::size_of::<Header>(), &mut found) as *mut Header;
        if !found {
            ptr::write_bytes(h as *mut u8, 0, std::mem::size_of::<Header>());
            (*h).lock = &mut (*pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr())).lock;
            (*h).capacity = capacity() as u32;
        }
        let mut info: pg_sys::HASHCTL = std::mem::zeroed();
        info.keysize = std::mem::size_of::<Key>();
        info.entrysize = std::mem::size_of::<Entry>();
        TABLE = pg_sys::ShmemInitHash(
            HASH_NAME.as_ptr(),
            capacity(),
            capacity(),
            &mut info,
            (pg_sys::HASH_ELEM | pg_sys::HASH_BLOBS) as i32,
        );
        HEADER = h;
        pg_sys::LWLockRelease(addin_init_lock());
    }
}

/// AddinShmemInitLock: number 21 of the main LWLock array (lwlocknames.txt).
///
/// # Safety
/// Called after the main LWLock array exists.
unsafe fn addin_init_lock() -> *mut pg_sys::LWLock {
    // SAFETY: the main array has every named lock; 21 is AddinShmemInitLock's fixed slot.
    unsafe { &raw mut (*pg_sys::MainLWLockArray.add(21)).lock }
}

/// Whether this server loaded pg_credit at start (the fast path exists at all).
pub fn preloaded() -> bool {
    // SAFETY: written once in _PG_init.
    unsafe { PRELOADED && !HEADER.is_null() }
}

// ---------------------------------------------------------------------------------------------
// The lock and the table.

struct Locked;

// The accessors hand out `&mut` into shared memory from `&self`: the LWLock this guard holds is
// what makes them exclusive (no other process touches the memory meanwhile), and within a
// backend the header, the database slots and each entry are distinct memory.
#[allow(clippy::mut_from_ref)]
impl Locked {
    fn exclusive() -> Locked {
        // SAFETY: the header exists (callers check `preloaded`); an ERROR releases LWLocks.
        unsafe { pg_sys::LWLockAcquire((*HEADER).lock, pg_sys::LWLockMode::LW_EXCLUSIVE) };
        Locked
    }
    fn header(&self) -> &mut Header {
        // SAFETY: the lock is held.
        unsafe { &mut *HEADER }
    }
    fn slot(&self, db: u32) -> Option<&mut DbSlot> {
        let h = self.header();
        // A backend stays in one database: remember where its slot was.
        if let Some(i) = SLOT_HINT.with(|x| x.get()) {
            if h.dbs[i].state != FREE && h.dbs[i].db == db {
                return Some(&mut h.dbs[i]);
            }
        }
        let i = h.dbs.iter().position(|s| s.state != FREE && s.db == db)?;
        SLOT_HINT.with(|x| x.set(Some(i)));
        Some(&mut h.dbs[i])
    }
    fn find(&self, key: &Key) -> Option<&mut Entry> {
        // SAFETY: the lock is held; HASH_FIND does not allocate.
        unsafe {
            let e =
                pg_sys::hash_search(TABLE, ptr::from_ref(key).cast(), pg_sys::HASHACTION::HASH_FIND, ptr::null_mut())
                    as *mut Entry;
            e.as_mut()
        }
    }
    /// The entry, created if there is room (and no overflow in the database).
    fn entry(&self, key: &Key) -> Option<&mut Entry> {
        if let Some(e) = self.find(key) {
            // SAFETY: re-borrow through a raw pointer: the table outlives the lock.
            return Some(unsafe { &mut *(e as *mut Entry) });
        }
        let h = self.header();
        let overflow = self.slot(key.db).is_some_and(|s| s.overflow > 0);
        if h.count >= h.capacity || overflow {
            if let Some(s) = self.slot(key.db) {
                s.full_misses += 1;
            }
            return None;
        }
        // SAFETY: the lock is held; HASH_ENTER_NULL returns NULL instead of raising when full.
        let e = unsafe {
            let mut found = false;
            pg_sys::hash_search(TABLE, ptr::from_ref(key).cast(), pg_sys::HASHACTION::HASH_ENTER_NULL, &mut found)
                as *mut Entry
        };
        // SAFETY: a new entry of the table, its key set by dynahash.
        let e = unsafe { e.as_mut()? };
        h.count += 1;
        h.generation += 1;
        e.generation = h.generation;
        e.refs = 0;
        e.draining = 0;
        e.scale = 0;
        e.pending = Amount::default();
        e.unflushed = Amount::default();
        e.flushing = Amount::default();
        e.writers = 0;
        e.cached = None;
        Some(e)
    }
    /// No drain of the whole database holds fast reservations off.
    fn open(&self, db: u32) -> bool {
        self.slot(db).is_some_and(|s| s.draining == 0)
    }
    fn bump(&self, e: &mut Entry) {
        let h = self.header();
        h.generation += 1;
        e.generation = h.generation;
    }
    /// Whether rows of the database may be cached and cached rows used: no writer without an
    /// entry is in flight, and credit.account's triggers drop copies on every write. Without those
    /// triggers (SQL older than the library, or disabled by a superuser) a copy could outlive a
    /// write: this backend drops the database's copies, once until the triggers are back.
    /// `triggers`: [`copies_dropped`], looked up before the lock (the lookup may read catalogs).
    fn caching(&self, db: u32, triggers: bool) -> bool {
        if !triggers {
            if !COPIES_DROPPED.with(|x| x.replace(true)) {
                for e in self.entries_of(db) {
                    // SAFETY: entries returned under the held lock.
                    unsafe { (*e).cached = None };
                }
            }
            return false;
        }
        COPIES_DROPPED.with(|x| x.set(false));
        self.slot(db).is_some_and(|s| s.uncached_writers == 0)
    }
    /// A number that moves whenever a row the customer's decisions read may have changed: the
    /// entry's generation or the database's epoch, whichever moved last (both come from the
    /// header's counter).
    fn stamp(&self, e: &Entry) -> u64 {
        e.generation.max(self.slot(e.key.db).map_or(0, |s| s.epoch))
    }
    /// Removes the entry if nothing refers to it and it holds nothing; one that holds only a
    /// cached row stays while the table is at most half full.
    fn remove_if_clean(&self, key: &Key) {
        let h = self.header();
        let roomy = h.count <= h.capacity / 2;
        let clean = self.find(key).is_some_and(|e| {
            e.refs == 0
                && e.writers == 0
                && e.draining == 0
                && e.pending.get() == 0
                && e.unflushed.get() == 0
                && e.flushing.get() == 0
                && !(roomy && e.cached.is_some())
        });
        if clean {
            // SAFETY: the lock is held.
            unsafe {
                pg_sys::hash_search(TABLE, ptr::from_ref(key).cast(), pg_sys::HASHACTION::HASH_REMOVE, ptr::null_mut());
            }
            self.header().count -= 1;
        }
    }
    /// Every entry of a database.
    fn entries_of(&self, db: u32) -> Vec<*mut Entry> {
        let mut out = Vec::new();
        // SAFETY: the lock is held for the whole scan.
        unsafe {
            let mut status: pg_sys::HASH_SEQ_STATUS = std::mem::zeroed();
            pg_sys::hash_seq_init(&mut status, TABLE);
            loop {
                let e = pg_sys::hash_seq_search(&mut status) as *mut Entry;
                if e.is_null() {
                    break;
                }
                if (*e).key.db == db {
                    out.push(e);
                }
            }
        }
        out
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: acquired in `exclusive`.
        unsafe { pg_sys::LWLockRelease((*HEADER).lock) };
    }
}

fn my_db() -> u32 {
    // SAFETY: a backend's database, set at connection.
    unsafe { u32::from(pg_sys::MyDatabaseId) }
}

pub fn key(customer: &str) -> Option<Key> {
    let b = customer.as_bytes();
    if b.len() > NAME_MAX {
        return None;
    }
    let mut name = [0u8; NAME_MAX];
    name[..b.len()].copy_from_slice(b);
    Some(Key { db: my_db(), len: b.len() as u32, name })
}

fn customer_of(key: &Key) -> String {
    String::from_utf8_lossy(&key.name[..key.len as usize]).into_owned()
}

pub fn to_fixed(d: Decimal) -> i128 {
    let mut d = d;
    d.rescale(SCALE);
    d.mantissa()
}

pub fn to_decimal(v: i128) -> Decimal {
    Decimal::try_from_i128_with_scale(v, SCALE).unwrap_or(Decimal::MAX)
}

/// A sum of amounts shown with the scale of its largest-scale amount.
fn shown(v: i128, scale: u32) -> Decimal {
    let mut d = to_decimal(v);
    d.rescale(scale.min(SCALE));
    d
}

// ---------------------------------------------------------------------------------------------
// The database's state.

/// credit.account's OID in this database (0: not installed).
fn account_rel() -> u32 {
    u32::from(super::fast_read::account_rel())
}

/// Whether this database's reservations are in shared memory now; asks for the flusher (which
/// recounts first) when they are not, or when it stopped.
pub fn ready() -> bool {
    session_enabled() && counting()
}

/// This session's pg_credit.fast_path.
pub fn session_enabled() -> bool {
    ENABLED.get()
}

/// Whether the database's decisions count what shared memory holds (its fast path runs), whatever
/// this session's pg_credit.fast_path.
pub fn counting() -> bool {
    preloaded() && database_ready()
}

/// On an account shard of a Citus node: whether orders reserve in shared memory here. The fast
/// path's per-node form (docs/citus.md): a reservation lives in shared memory only while its
/// transaction is in flight; the transaction's commit (or PREPARE) writes it into the shard's row
/// first (`flusher::move_into_rows`), so nothing is committed and not written. The rows are exact
/// after any restart (no recount, no flusher), and a shard moves with everything that counts.
pub fn ready_on_shard() -> bool {
    session_enabled() && counting_on_shard() && {
        let l = Locked::exclusive();
        l.open(my_db())
    }
}

/// On an account shard of a Citus node: whether decisions count what shared memory holds there,
/// whatever this session's pg_credit.fast_path (`ready_on_shard`).
pub fn counting_on_shard() -> bool {
    // SAFETY: plain read of a backend global.
    if !preloaded() || unsafe { pg_sys::RecoveryInProgress() } {
        return false;
    }
    let db = my_db();
    let rel = account_rel();
    let l = Locked::exclusive();
    slot_index(&l, db, rel).is_some()
}

/// The database's slot, taken if it has none (None: no slot free, or the extension was created
/// again and its reservations were dropped just now).
fn slot_index(l: &Locked, db: u32, rel: u32) -> Option<usize> {
    let h = l.header();
    let idx = SLOT_HINT
        .with(|x| x.get())
        .filter(|&i| h.dbs[i].state != FREE && h.dbs[i].db == db)
        .or_else(|| h.dbs.iter().position(|s| s.state != FREE && s.db == db));
    let idx = match idx {
        Some(i) => i,
        None => {
            let i = h.dbs.iter().position(|s| s.state == FREE)?;
            h.dbs[i] = DbSlot {
                db,
                state: RECOUNTING,
                account_rel: rel,
                worker_pid: 0,
                worker_asked_ms: 0,
                draining: 0,
                fast_in_flight: 0,
                overflow: 0,
                uncached_writers: 0,
                epoch: 0,
                full_misses: 0,
                flushes: 0,
                flushed_customers: 0,
            };
            i
        }
    };
    if h.dbs[idx].account_rel != rel {
        // The extension was dropped and created again: its reservations are gone with it.
        reset_db(l, db, rel);
        return None;
    }
    Some(idx)
}

/// Whether the database's accounts are exact in their rows plus shared memory (its flusher has
/// recounted them since shared memory started), whatever this session's pg_credit.fast_path.
fn database_ready() -> bool {
    // SAFETY: plain read of a backend global.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return false;
    }
    let db = my_db();
    let rel = account_rel();
    let now = chrono_ms();
    let (is_ready, start_worker) = {
        let l = Locked::exclusive();
        if slot_index(&l, db, rel).is_none() {
            return false;
        }
        let Some(s) = l.slot(db) else { return false };
        // At most one look per second at whether the flusher lives: a kill(pid, 0) per order was
        // a system call on every order (a tenth of the trigger's cost).
        let due = now - s.worker_asked_ms > 1000;
        if due {
            s.worker_asked_ms = now;
        }
        let start = due && (s.worker_pid == 0 || !alive(s.worker_pid));
        (s.state == READY, start)
    };
    if start_worker {
        start_worker_for(Oid::from(db));
    }
    is_ready
}

/// Asks for the database's worker (`store::flusher`, registered by its entry point's name; the
/// caller rate-limits).
fn start_worker_for(db: Oid) {
    use pgrx::bgworkers::{BackgroundWorkerBuilder, BgWorkerStartTime};
    let started = BackgroundWorkerBuilder::new("pg_credit fast path")
        .set_type("pg_credit fast path")
        .set_library("pg_credit")
        .set_function("pg_credit_fast_path_worker")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_extra(&u32::from(db).to_string())
        .load_dynamic();
    if started.is_err() {
        pgrx::warning!(
            "pg_credit: no background worker slot is free for the fast path's flusher; orders take the row path (raise max_worker_processes)"
        );
    }
}

/// Before the row path decides on an account row: on a server that preloads pg_credit, a row may
/// miss open orders committed before a restart (they were in shared memory, not yet written), until
/// the database's flusher has recounted every account. Wait for that (at most
/// pg_credit.fast_path_drain_timeout, then 55P03). A credit.account created by this very
/// transaction has nothing to recount.
pub fn wait_for_recount(created_here: impl FnOnce() -> bool) {
    if !preloaded() || database_ready() {
        return;
    }
    // SAFETY: plain read of a backend global.
    if unsafe { pg_sys::RecoveryInProgress() } || created_here() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(DRAIN_TIMEOUT_MS.get().max(1) as u64);
    while !database_ready() {
        if std::time::Instant::now() > deadline {
            let has_slot = Locked::exclusive().slot(my_db()).is_some();
            if !has_slot {
                error::raise(
                    Code::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                    format!("more than {MAX_DBS} databases use pg_credit's fast path on this server"),
                    Some("Each database that uses pg_credit on a server that preloads it takes a slot in shared memory until the server restarts.".into()),
                    Some("Restart the server, or take pg_credit out of shared_preload_libraries."),
                )
            }
            error::raise(
                Code::ERRCODE_LOCK_NOT_AVAILABLE,
                "credit accounts are being recounted after a restart",
                Some("On a server that preloads pg_credit, orders wait until the database's fast-path worker has recounted every account from the source rows.".into()),
                Some("Retry in a moment; a transaction that holds an account row locked while it waits delays the recount. credit.fast_path_status() shows the state."),
            )
        }
        // SAFETY: a short sleep that answers cancel requests.
        unsafe {
            pg_sys::pg_usleep(5000);
            if pg_sys::InterruptPending != 0 {
                pg_sys::ProcessInterrupts();
            }
        }
    }
}

fn reset_db(l: &Locked, db: u32, rel: u32) {
    for e in l.entries_of(db) {
        // SAFETY: entries returned under the held lock.
        let key = unsafe { (*e).key };
        // SAFETY: the lock is held.
        unsafe {
            pg_sys::hash_search(TABLE, ptr::from_ref(&key).cast(), pg_sys::HASHACTION::HASH_REMOVE, ptr::null_mut())
        };
        l.header().count -= 1;
    }
    if let Some(s) = l.slot(db) {
        s.state = RECOUNTING;
        s.account_rel = rel;
        s.draining = 0;
        s.fast_in_flight = 0;
        s.overflow = 0;
        s.uncached_writers = 0;
    }
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// What this backend's transaction holds (undone at abort, turned into committed counters at commit).

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A fast reservation: pending now, unflushed at commit.
    FastUp,
    /// A fast release: unflushed at commit.
    FastDown,
    /// A row-path reservation, registered so fast readers count it; the account row has it.
    HeapUp,
    /// Taken out of unflushed into flushing while its writer (a repair, a group change) puts the
    /// truth into the row: gone at commit, back to unflushed at abort.
    Claim,
    /// A flush's claim: as Claim, and at commit the cached row gains what the flush wrote (the
    /// flush's write does not drop it: decisions read row + counters, which the flush only moves
    /// between).
    FlushClaim,
    /// This customer is drained (no fast reservations) until the transaction ends.
    Drain,
}

struct Rec {
    key: Key,
    sub: pg_sys::SubTransactionId,
    kind: Kind,
    amount: i128,
}

#[derive(Default)]
struct Local {
    recs: Vec<Rec>,
    /// Customers whose account row this transaction wrote: their generation moves at commit.
    touched: BTreeSet<String>,
    /// This transaction counts in its database's fast_in_flight.
    in_flight: bool,
    /// Customers whose account rows this transaction writes (their entries' `writers`).
    writes: std::collections::HashSet<Key>,
    /// Counting in the database's `uncached_writers`.
    uncached_writer: bool,
    /// Draining the whole database (sub-transaction that asked).
    db_drain: Option<pg_sys::SubTransactionId>,
    /// Holding the database's overflow count.
    overflow: bool,
    /// The account shard of each customer reserved or released on a Citus node (`ready_on_shard`):
    /// the commit writes those into the shard's rows.
    shards: std::collections::HashMap<Key, Oid>,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
    static SLOT_HINT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    /// This backend dropped its database's copies since it last saw credit.account without the
    /// triggers that drop them (`Locked::caching`).
    static COPIES_DROPPED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn sub() -> pg_sys::SubTransactionId {
    // SAFETY: plain read of the transaction state.
    unsafe { pg_sys::GetCurrentSubTransactionId() }
}

/// Applies one record's end (commit or abort) to its entry.
fn finish_rec(l: &Locked, r: &Rec, commit: bool) {
    let Some(e) = l.find(&r.key) else { return };
    match r.kind {
        Kind::FastUp => {
            e.pending.add(-r.amount);
            if commit {
                e.unflushed.add(r.amount);
            }
        }
        Kind::FastDown => {
            if commit {
                e.unflushed.add(-r.amount);
            }
        }
        Kind::HeapUp => e.pending.add(-r.amount),
        Kind::Claim | Kind::FlushClaim => {
            e.flushing.add(-r.amount);
            if commit {
                l.bump(e);
                let written = shown(r.amount, e.scale);
                e.cached = match (r.kind, e.cached) {
                    (Kind::FlushClaim, Some(mut raw)) => {
                        raw.exposure += written;
                        Some(raw)
                    }
                    _ => None,
                };
            } else {
                e.unflushed.add(r.amount);
            }
        }
        Kind::Drain => e.draining = e.draining.saturating_sub(1),
    }
    e.refs = e.refs.saturating_sub(1);
}

fn end_of_transaction(commit: bool) {
    let local = LOCAL.with(|l| std::mem::take(&mut *l.borrow_mut()));
    if local.recs.is_empty()
        && local.touched.is_empty()
        && !local.in_flight
        && local.db_drain.is_none()
        && !local.overflow
        && local.writes.is_empty()
        && !local.uncached_writer
    {
        return;
    }
    if !preloaded() {
        return;
    }
    let l = Locked::exclusive();
    let db = my_db();
    for r in &local.recs {
        finish_rec(&l, r, commit);
    }
    if commit {
        for c in &local.touched {
            if let Some(k) = key(c) {
                if let Some(e) = l.find(&k) {
                    // SAFETY: re-borrow under the held lock.
                    let e = unsafe { &mut *(e as *mut Entry) };
                    l.bump(e);
                }
            }
        }
    }
    for k in &local.writes {
        if let Some(e) = l.find(k) {
            // SAFETY: re-borrow under the held lock.
            let e = unsafe { &mut *(e as *mut Entry) };
            e.writers = e.writers.saturating_sub(1);
            e.refs = e.refs.saturating_sub(1);
            l.bump(e);
        }
    }
    for r in &local.recs {
        l.remove_if_clean(&r.key);
    }
    for k in &local.writes {
        l.remove_if_clean(k);
    }
    if local.uncached_writer {
        let h = l.header();
        h.generation += 1;
        let epoch = h.generation;
        if let Some(s) = l.slot(db) {
            s.uncached_writers = s.uncached_writers.saturating_sub(1);
            s.epoch = epoch;
        }
    }
    if let Some(s) = l.slot(db) {
        if local.in_flight {
            s.fast_in_flight = s.fast_in_flight.saturating_sub(1);
        }
        if local.db_drain.is_some() {
            s.draining = s.draining.saturating_sub(1);
        }
        if local.overflow {
            s.overflow = s.overflow.saturating_sub(1);
        }
    }
}

fn end_of_subtransaction(my: pg_sys::SubTransactionId, parent: pg_sys::SubTransactionId, commit: bool) {
    let undo: Vec<Rec> = LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        if commit {
            for r in l.recs.iter_mut().filter(|r| r.sub == my) {
                r.sub = parent;
            }
            if l.db_drain == Some(my) {
                l.db_drain = Some(parent);
            }
            Vec::new()
        } else {
            let (gone, kept): (Vec<Rec>, Vec<Rec>) = std::mem::take(&mut l.recs).into_iter().partition(|r| r.sub == my);
            l.recs = kept;
            gone
        }
    });
    let drop_db_drain = !commit && LOCAL.with(|l| l.borrow().db_drain == Some(my));
    if undo.is_empty() && !drop_db_drain {
        return;
    }
    let l = Locked::exclusive();
    for r in &undo {
        finish_rec(&l, r, false);
    }
    for r in &undo {
        l.remove_if_clean(&r.key);
    }
    if drop_db_drain {
        LOCAL.with(|x| x.borrow_mut().db_drain = None);
        if let Some(s) = l.slot(my_db()) {
            s.draining = s.draining.saturating_sub(1);
        }
    }
}

/// PREPARE TRANSACTION, first half (`flusher::move_into_rows` writes the rows; on a Citus shard every commit does so): shared memory does
/// not survive the restart a prepared transaction may wait through, so the transaction's fast
/// reservations and releases go into its customers' account rows, net per customer — the row
/// path's form, which the prepared transaction keeps written and locked until COMMIT or ROLLBACK
/// PREPARED (fast orders of those customers meet the locked row and wait for it, rule 2). Returns
/// the amounts to write. A repair's claim cannot be moved so (its truth is in the row only if the
/// transaction commits): refused.
pub fn prepare_moves() -> Vec<(String, Decimal, Option<Oid>)> {
    let (claims, fast) = LOCAL.with(|l| {
        let l = l.borrow();
        let claims = l.recs.iter().any(|r| matches!(r.kind, Kind::Claim | Kind::FlushClaim));
        let fast = l.recs.iter().any(|r| matches!(r.kind, Kind::FastUp | Kind::FastDown));
        (claims, fast)
    });
    if claims {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            "cannot PREPARE a transaction that recounted accounts from the fast path's counters",
            Some("credit.verify, credit.rebuild_exposure or a change of an account's group or name in this transaction took committed open orders out of shared memory, which would be lost if the prepared transaction rolled back.".into()),
            Some("Run the repair or the account change in a transaction of its own."),
        )
    }
    if !fast || !preloaded() {
        return Vec::new();
    }
    let mut sums: std::collections::HashMap<Key, i128> = std::collections::HashMap::new();
    LOCAL.with(|l| {
        for r in &l.borrow().recs {
            match r.kind {
                Kind::FastUp => *sums.entry(r.key).or_default() += r.amount,
                Kind::FastDown => *sums.entry(r.key).or_default() -= r.amount,
                _ => {}
            }
        }
    });
    // In the entry's scale: the row gains what a commit would have added.
    let shards = LOCAL.with(|x| x.borrow().shards.clone());
    let l = Locked::exclusive();
    sums.into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| (customer_of(&k), shown(v, l.find(&k).map_or(SCALE, |e| e.scale)), shards.get(&k).copied()))
        .collect()
}

/// Whether this transaction reserved or released on an account shard of a Citus node: its
/// commit writes those into the shard's rows first (`ready_on_shard`).
pub fn moves_on_shards() -> bool {
    LOCAL.with(|x| {
        let x = x.borrow();
        !x.shards.is_empty()
            && x.recs.iter().any(|r| matches!(r.kind, Kind::FastUp | Kind::FastDown) && x.shards.contains_key(&r.key))
    })
}

/// PREPARE TRANSACTION, second half: the rows have the moves now. Until PREPARE ends the
/// transaction here, the reservations stay counted as row-path ones (HeapUp: the row has them);
/// a release no longer applies at commit (the row has it).
pub fn moved_into_rows() {
    if !LOCAL.with(|l| l.borrow().recs.iter().any(|r| matches!(r.kind, Kind::FastUp | Kind::FastDown))) {
        return;
    }
    let l = Locked::exclusive();
    LOCAL.with(|x| {
        let mut x = x.borrow_mut();
        let recs = std::mem::take(&mut x.recs);
        for mut r in recs {
            match r.kind {
                Kind::FastUp => {
                    r.kind = Kind::HeapUp;
                    x.recs.push(r);
                }
                Kind::FastDown => {
                    if let Some(e) = l.find(&r.key) {
                        e.refs = e.refs.saturating_sub(1);
                    }
                    l.remove_if_clean(&r.key);
                }
                _ => x.recs.push(r),
            }
        }
    });
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    match event {
        // A prepared transaction keeps its account rows locked and written: the reservations in
        // shared memory are no longer needed to make others wait or count.
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => end_of_transaction(true),
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => end_of_transaction(false),
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    my: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_COMMIT_SUB => end_of_subtransaction(my, parent, true),
        SUBXACT_EVENT_ABORT_SUB => end_of_subtransaction(my, parent, false),
        _ => {}
    }
}

fn push(l: &Locked, e: &mut Entry, kind: Kind, amount: i128) {
    e.refs += 1;
    let key = e.key;
    let first = LOCAL.with(|x| {
        let mut x = x.borrow_mut();
        x.recs.push(Rec { key, sub: sub(), kind, amount });
        if matches!(kind, Kind::FastUp | Kind::FastDown) {
            if let Some(shard) = super::fast_read::shard() {
                x.shards.insert(key, shard);
            }
        }
        let first = !x.in_flight && matches!(kind, Kind::FastUp | Kind::FastDown | Kind::Claim | Kind::FlushClaim);
        if first {
            x.in_flight = true;
        }
        first
    });
    if first {
        if let Some(s) = l.slot(key.db) {
            s.fast_in_flight += 1;
        }
    }
}

/// What this transaction's own decisions see differently from everyone else's: its row-path
/// reservations, and what its flushes and repairs took out of shared memory, are in its own
/// account-row writes already; its releases (which others see only from its commit) count for it
/// at once — whatever it reserves later shares their fate.
fn own_adjustment(key: &Key) -> i128 {
    LOCAL.with(|x| {
        x.borrow()
            .recs
            .iter()
            .filter(|r| r.key == *key)
            .map(|r| match r.kind {
                Kind::HeapUp | Kind::FastDown | Kind::Claim | Kind::FlushClaim => r.amount,
                _ => 0,
            })
            .sum()
    })
}

/// This (sub)transaction's own fast reservation for a customer still pending, to release first.
/// Only the current subtransaction's: a release there that nets against an outer one's would not
/// be undone if the subtransaction rolled back.
fn own_pending(key: &Key) -> i128 {
    let current = sub();
    LOCAL.with(|x| {
        x.borrow()
            .recs
            .iter()
            .filter(|r| r.key == *key && r.kind == Kind::FastUp && r.sub == current)
            .map(|r| r.amount)
            .sum()
    })
}

// ---------------------------------------------------------------------------------------------
// Decisions.

/// The counters a decision adds to the account row: everything not in the row yet.
pub fn delta(customer: &str) -> Decimal {
    if !preloaded() {
        return Decimal::ZERO;
    }
    let Some(k) = key(customer) else { return Decimal::ZERO };
    let l = Locked::exclusive();
    match l.find(&k) {
        Some(e) => shown(e.pending.get() + e.unflushed.get() + e.flushing.get() - own_adjustment(&k), e.scale),
        None => Decimal::ZERO,
    }
}

/// What a reservation under the lock found.
pub enum Checked {
    /// `exposure`: what the decision counted before this reservation.
    Fits {
        crossed_warning: bool,
        exposure: Decimal,
    },
    Refused,
    /// The generation moved since the row was read: read again.
    Stale,
    /// No entry (table full, or the customer is being drained): take the row path.
    NoEntry,
}

/// Checks `amount` against the row's account plus the counters and registers it, all under the
/// lock. `generation`: the fast path's reading (Some: refuse to decide if it moved); `heap`:
/// a row-path reservation (HeapUp: the row path then writes the row) instead of a fast one;
/// `keep`: the row as read, for the entry to cache when nothing can have changed it since.
pub fn reserve(
    customer: &str,
    account: &Account,
    amount: Decimal,
    generation: Option<u64>,
    heap: bool,
    keep: Option<&Raw>,
) -> Checked {
    let Some(k) = key(customer) else { return Checked::NoEntry };
    let triggers = keep.is_some() && copies_dropped();
    let l = Locked::exclusive();
    let Some(e) = l.entry(&k) else {
        if heap {
            // Not registered: no entry may be created in this database until this ends.
            let first = LOCAL.with(|x| !std::mem::replace(&mut x.borrow_mut().overflow, true));
            if first {
                if let Some(s) = l.slot(k.db) {
                    s.overflow += 1;
                }
            }
        }
        return Checked::NoEntry;
    };
    // SAFETY: re-borrow under the held lock (the stamp reads the slot through the lock too).
    let e = unsafe { &mut *(e as *mut Entry) };
    if let Some(g) = generation {
        if !l.open(k.db) {
            return Checked::NoEntry;
        }
        if l.stamp(e) != g {
            return Checked::Stale;
        }
        if e.draining > 0 {
            return Checked::NoEntry;
        }
        // Nobody wrote the row since it was read, nobody is writing it, and no flush is between
        // the row and the counters: it is the latest, and stays so until a writer drops it.
        if let Some(raw) = keep {
            if e.writers == 0 && e.flushing.get() == 0 && l.caching(k.db, triggers) {
                e.cached = Some(*raw);
            }
        }
    }
    decide_and_register(&l, e, &k, account, amount, heap)
}

/// Whether credit.account's triggers drop copies of rows on every write (a catalog lookup, kept per
/// backend: made before taking the lock).
fn copies_dropped() -> bool {
    super::fast_read::copies_dropped_by_trigger()
}

/// A fast reservation decided on the customer's cached row, with the account it read (None: no
/// usable cached row; read the row).
pub fn reserve_cached(customer: &str, amount: Decimal, today: i32) -> Option<(Checked, Account)> {
    let k = key(customer)?;
    let triggers = copies_dropped();
    let l = Locked::exclusive();
    if !l.open(k.db) || !l.caching(k.db, triggers) {
        return None;
    }
    let e = l.find(&k)?;
    if e.draining > 0 || e.writers > 0 {
        return None;
    }
    let account = e.cached?.account(today);
    // SAFETY: re-borrow under the held lock.
    let e = unsafe { &mut *(e as *mut Entry) };
    Some((decide_and_register(&l, e, &k, &account, amount, false), account))
}

fn decide_and_register(l: &Locked, e: &mut Entry, k: &Key, account: &Account, amount: Decimal, heap: bool) -> Checked {
    let mut a = account.clone();
    e.scale = e.scale.max(amount.scale());
    a.exposure += shown(e.pending.get() + e.unflushed.get() + e.flushing.get() - own_adjustment(k), e.scale);
    let d = decision::decide(Some(&a), None, amount);
    if !d.allowed() {
        return Checked::Refused;
    }
    let crossed_warning = a.crosses_warning(amount);
    let v = to_fixed(amount);
    if v != 0 {
        e.pending.add(v);
        push(l, e, if heap { Kind::HeapUp } else { Kind::FastUp }, v);
    }
    if heap {
        // The row path writes the row next: registered here, its trigger need not lock again.
        register_writer(e);
    }
    Checked::Fits { crossed_warning, exposure: a.exposure }
}

/// An increase without a check (an override, a forced move) on the fast path.
pub fn add_unchecked(customer: &str, amount: Decimal) -> bool {
    let Some(k) = key(customer) else { return false };
    let l = Locked::exclusive();
    if !l.open(k.db) {
        return false;
    }
    let Some(e) = l.entry(&k) else { return false };
    if e.draining > 0 {
        return false;
    }
    let v = to_fixed(amount);
    e.scale = e.scale.max(amount.scale());
    e.pending.add(v);
    // SAFETY: re-borrow under the held lock.
    let e = unsafe { &mut *(e as *mut Entry) };
    push(&l, e, Kind::FastUp, v);
    true
}

/// A release on the fast path: first this transaction's own pending reservation shrinks (at
/// once), the rest applies at commit. False: take the row path.
pub fn release(customer: &str, amount: Decimal) -> bool {
    let Some(k) = key(customer) else { return false };
    let mut rest = to_fixed(amount);
    let l = Locked::exclusive();
    if !l.open(k.db) {
        return false;
    }
    let Some(e) = l.entry(&k) else { return false };
    if e.draining > 0 {
        return false;
    }
    e.scale = e.scale.max(amount.scale());
    let mut own = own_pending(&k).min(rest);
    if own > 0 {
        e.pending.add(-own);
        rest -= own;
        let current = sub();
        LOCAL.with(|x| {
            for r in x
                .borrow_mut()
                .recs
                .iter_mut()
                .rev()
                .filter(|r| r.key == k && r.kind == Kind::FastUp && r.sub == current)
            {
                let take = r.amount.min(own);
                r.amount -= take;
                own -= take;
            }
        });
    }
    if rest > 0 {
        // SAFETY: re-borrow under the held lock.
        let e = unsafe { &mut *(e as *mut Entry) };
        push(&l, e, Kind::FastDown, rest);
    }
    true
}

/// The customer's generation now (the entry is created if there is room; None: no room).
pub fn generation(customer: &str) -> Option<u64> {
    let k = key(customer)?;
    let l = Locked::exclusive();
    if !l.open(k.db) {
        return None;
    }
    let e = l.entry(&k)?;
    (e.draining == 0).then(|| l.stamp(e))
}

/// Removes the customer's entry if it holds nothing: on a Citus node, where no flusher evicts
/// them, after a fast decision that registered nothing (a refusal, no account, the row path).
pub fn forget_if_clean(customer: &str) {
    let Some(k) = key(customer) else { return };
    Locked::exclusive().remove_if_clean(&k);
}

thread_local! {
    static FLUSH_WRITE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a flush's write of open orders into account rows: the rows' cached copies stay (the
/// flush's claims add to them at commit).
pub fn flush_write<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            FLUSH_WRITE.with(|x| x.set(false));
        }
    }
    FLUSH_WRITE.with(|x| x.set(true));
    let _reset = Reset;
    f()
}

/// A transaction is about to write (update or delete) the customer's account row: its cached
/// copy goes, and none is kept until the transaction ends (then the generation moves). From
/// `credit._account_written`, a BEFORE trigger on credit.account that fires for every writer.
pub fn row_written(customer: Option<&str>) {
    if !preloaded() || FLUSH_WRITE.with(|x| x.get()) {
        return;
    }
    let k = customer.and_then(key);
    if k.is_some_and(|k| LOCAL.with(|x| x.borrow().writes.contains(&k))) {
        return; // registered already: no copy can have been kept since
    }
    let l = Locked::exclusive();
    if let Some(e) = k.as_ref().and_then(|k| l.find(k)) {
        register_writer(e);
        return;
    }
    // No entry to mark (or a name shared memory cannot hold): no row of the database is cached
    // until this transaction ends, since a reader could create the entry and keep the row as it
    // was before this write.
    uncached_writer(&l);
}

/// This transaction writes the entry's row: its copy goes, and none is kept until the end.
fn register_writer(e: &mut Entry) {
    let k = e.key;
    if LOCAL.with(|x| x.borrow_mut().writes.insert(k)) {
        e.writers += 1;
        e.refs += 1;
    }
    e.cached = None;
}

/// TRUNCATE credit.account: every cached row of the database goes.
pub fn table_written() {
    if !preloaded() {
        return;
    }
    let l = Locked::exclusive();
    for e in l.entries_of(my_db()) {
        // SAFETY: entries returned under the held lock.
        unsafe { (*e).cached = None };
    }
    uncached_writer(&l);
}

fn uncached_writer(l: &Locked) {
    if !LOCAL.with(|x| std::mem::replace(&mut x.borrow_mut().uncached_writer, true)) {
        if let Some(s) = l.slot(my_db()) {
            s.uncached_writers += 1;
        } else {
            LOCAL.with(|x| x.borrow_mut().uncached_writer = false);
        }
    }
}

/// The customer's cached account row, if nobody writes it now (only parentless rows are kept).
pub fn cached_row(customer: &str) -> Option<Raw> {
    let k = key(customer).filter(|_| preloaded())?;
    let triggers = copies_dropped();
    let l = Locked::exclusive();
    if !l.caching(k.db, triggers) {
        return None;
    }
    l.find(&k).filter(|e| e.writers == 0).and_then(|e| e.cached)
}

/// This transaction wrote the customer's account row.
pub fn touched(customer: &str) {
    if preloaded() {
        LOCAL.with(|x| x.borrow_mut().touched.insert(customer.to_string()));
    }
}

// ---------------------------------------------------------------------------------------------
// Draining and claiming: the set-absolute writers (repairs, group and name changes).

fn wait_until(what: &str, mut done: impl FnMut(&Locked) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(DRAIN_TIMEOUT_MS.get().max(1) as u64);
    loop {
        {
            let l = Locked::exclusive();
            if done(&l) {
                return;
            }
        }
        if std::time::Instant::now() > deadline {
            error::raise(
                Code::ERRCODE_LOCK_NOT_AVAILABLE,
                format!("could not drain the fast-path reservations of {what}"),
                Some("Transactions holding credit reservations for it did not end in time.".into()),
                Some("Retry when the orders in flight are done, or raise pg_credit.fast_path_drain_timeout."),
            )
        }
        // SAFETY: a short sleep that answers cancel requests.
        unsafe {
            pg_sys::pg_usleep(1000);
            if pg_sys::InterruptPending != 0 {
                pg_sys::ProcessInterrupts();
            }
        }
    }
}

/// Stops new fast reservations for a customer until this transaction ends, waits for those in
/// flight, and takes its committed counters out of shared memory: returns them, for the caller to
/// write into the row it holds locked (a caller that recounts the row, or deletes it, drops them).
pub fn drain_customer(customer: &str) -> Decimal {
    if !ready() {
        return Decimal::ZERO;
    }
    let Some(k) = key(customer) else { return Decimal::ZERO };
    {
        let l = Locked::exclusive();
        let Some(e) = l.entry(&k) else { return Decimal::ZERO };
        e.draining += 1;
        // SAFETY: re-borrow under the held lock.
        let e = unsafe { &mut *(e as *mut Entry) };
        push(&l, e, Kind::Drain, 0);
    }
    let mine = LOCAL.with(|x| {
        let x = x.borrow();
        (x.recs.iter().filter(|r| r.key == k).count() + usize::from(x.writes.contains(&k))) as u32
    });
    wait_until(&format!("customer \"{customer}\""), |l| {
        l.find(&k).is_none_or(|e| e.refs <= mine && e.flushing.get() == 0)
    });
    let l = Locked::exclusive();
    let Some(e) = l.find(&k) else { return Decimal::ZERO };
    let u = e.unflushed.get();
    if u == 0 {
        return Decimal::ZERO;
    }
    e.unflushed.set(0);
    e.flushing.add(u);
    // SAFETY: re-borrow under the held lock.
    let e = unsafe { &mut *(e as *mut Entry) };
    push(&l, e, Kind::Claim, u);
    shown(u, e.scale)
}

/// Stops new fast reservations in this database until this transaction ends and waits for those
/// in flight (a repair, or verify's consistent look).
pub fn drain_database() {
    if !ready() {
        return;
    }
    let db = my_db();
    let already = LOCAL.with(|x| x.borrow().db_drain.is_some());
    if !already {
        let l = Locked::exclusive();
        if let Some(s) = l.slot(db) {
            s.draining += 1;
            LOCAL.with(|x| x.borrow_mut().db_drain = Some(sub()));
        }
    }
    let mine = LOCAL.with(|x| x.borrow().in_flight) as u32;
    wait_until("this database", |l| l.slot(db).is_none_or(|s| s.fast_in_flight <= mine));
}

/// Takes every committed counter of this database out of shared memory (after `drain_database`,
/// before a recount that writes the truth): discarded at commit.
pub fn claim_all_for_recount() {
    if !ready() {
        return;
    }
    let l = Locked::exclusive();
    for e in l.entries_of(my_db()) {
        // SAFETY: entries returned under the held lock.
        let e = unsafe { &mut *e };
        let u = e.unflushed.get();
        if u != 0 {
            e.unflushed.set(0);
            e.flushing.add(u);
            push(&l, e, Kind::Claim, u);
        }
    }
}

/// Committed counters per customer of this database, for credit.verify (after a drain), with
/// this transaction's own changes.
pub fn committed_deltas() -> Vec<(String, Decimal)> {
    if !preloaded() {
        return Vec::new();
    }
    let own: Vec<(Key, i128)> = LOCAL.with(|x| {
        x.borrow()
            .recs
            .iter()
            .filter_map(|r| match r.kind {
                Kind::FastUp => Some((r.key, r.amount)),
                Kind::FastDown => Some((r.key, -r.amount)),
                // Taken out of shared memory into this transaction's own row writes.
                Kind::Claim | Kind::FlushClaim => Some((r.key, -r.amount)),
                _ => None,
            })
            .collect()
    });
    let l = Locked::exclusive();
    l.entries_of(my_db())
        .into_iter()
        .map(|e| {
            // SAFETY: entries returned under the held lock.
            let e = unsafe { &*e };
            let mine: i128 = own.iter().filter(|(k, _)| *k == e.key).map(|(_, v)| v).sum();
            (customer_of(&e.key), shown(e.unflushed.get() + e.flushing.get() + mine, e.scale))
        })
        .filter(|(_, d)| !d.is_zero())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The flusher's side (src/store/flusher.rs).

/// Customers of this database with committed counters to write.
pub fn unflushed_customers() -> Vec<String> {
    let l = Locked::exclusive();
    if l.slot(my_db()).is_some_and(|s| s.draining > 0) {
        return Vec::new();
    }
    l.entries_of(my_db())
        .into_iter()
        // SAFETY: entries returned under the held lock.
        .filter(|e| unsafe { (**e).unflushed.get() } != 0)
        // SAFETY: as above.
        .map(|e| customer_of(unsafe { &(*e).key }))
        .collect()
}

/// Takes the customer's committed counter into flushing (the caller holds its row lock).
pub fn claim(customer: &str) -> Option<Decimal> {
    let k = key(customer)?;
    let l = Locked::exclusive();
    if l.slot(k.db).is_some_and(|s| s.draining > 0) {
        return None;
    }
    let e = l.find(&k)?;
    let u = e.unflushed.get();
    if u == 0 || e.draining > 0 {
        return None;
    }
    e.unflushed.set(0);
    e.flushing.add(u);
    // SAFETY: re-borrow under the held lock.
    let e = unsafe { &mut *(e as *mut Entry) };
    push(&l, e, Kind::FlushClaim, u);
    Some(shown(u, e.scale))
}

/// Removes the database's entries that hold nothing.
pub fn evict_clean() {
    let l = Locked::exclusive();
    for e in l.entries_of(my_db()) {
        // SAFETY: entries returned under the held lock.
        let key = unsafe { (*e).key };
        l.remove_if_clean(&key);
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// The worker that starts takes the database unless a live one has it.
pub fn claim_worker(db: Oid, pid: i32) -> bool {
    let l = Locked::exclusive();
    match l.slot(u32::from(db)) {
        Some(s) if s.worker_pid != 0 && s.worker_pid != pid && alive(s.worker_pid) => false,
        Some(s) => {
            s.worker_pid = pid;
            true
        }
        None => false,
    }
}

/// The flusher leaves when nothing of its database waits to be written (checked and given up under
/// the lock, so that the next reservation's `ready` asks for a new one).
pub fn leave_if_idle(db: Oid, pid: i32) -> bool {
    let l = Locked::exclusive();
    let db = u32::from(db);
    // SAFETY: entries returned under the held lock.
    let idle = l.entries_of(db).into_iter().all(|e| unsafe { (*e).unflushed.get() == 0 && (*e).flushing.get() == 0 });
    if idle {
        if let Some(s) = l.slot(db).filter(|s| s.worker_pid == pid) {
            s.worker_pid = 0;
            s.worker_asked_ms = 0;
        }
    }
    idle
}

pub fn set_worker(db: Oid, pid: i32) {
    let l = Locked::exclusive();
    if let Some(s) = l.slot(u32::from(db)) {
        s.worker_pid = pid;
    }
}

/// The flusher recounted every account: orders may reserve in shared memory from now on.
pub fn set_ready(db: Oid) {
    let l = Locked::exclusive();
    if let Some(s) = l.slot(u32::from(db)) {
        s.state = READY;
    }
}

pub fn is_ready_state(db: Oid) -> bool {
    let l = Locked::exclusive();
    l.slot(u32::from(db)).is_some_and(|s| s.state == READY)
}

pub fn note_flush(db: Oid, customers: usize) {
    let l = Locked::exclusive();
    if let Some(s) = l.slot(u32::from(db)) {
        s.flushes += 1;
        s.flushed_customers += customers as u64;
    }
}

/// For credit.fast_path_status().
pub struct FastPathStatus {
    pub state: &'static str,
    pub customers: i64,
    pub capacity: i64,
    pub pending: Decimal,
    pub unflushed: Decimal,
    pub transactions_in_flight: i64,
    pub full_misses: i64,
    pub flushes: i64,
    pub flushed_customers: i64,
    pub flusher_pid: Option<i32>,
}

/// The state `credit.fast_path_status()` shows on a Citus node (docs/citus.md).
pub const CITUS_ON: &str = "on (Citus: reservations per node, written into the shards at commit)";

pub fn status() -> FastPathStatus {
    if !preloaded() {
        return FastPathStatus {
            state: "off (not in shared_preload_libraries)",
            customers: 0,
            capacity: 0,
            pending: Decimal::ZERO,
            unflushed: Decimal::ZERO,
            transactions_in_flight: 0,
            full_misses: 0,
            flushes: 0,
            flushed_customers: 0,
            flusher_pid: None,
        };
    }
    // Read before the lock (SPI): on Citus the accounts are shards, where reservations live only
    // while their transactions are in flight (`ready_on_shard`).
    let citus = crate::pg::citus::distributed();
    let on = if citus { ready_on_shard() } else { ready() };
    let l = Locked::exclusive();
    let db = my_db();
    let (mut pending, mut unflushed, mut n) = (0i128, 0i128, 0i64);
    for e in l.entries_of(db) {
        // SAFETY: entries returned under the held lock.
        let e = unsafe { &*e };
        pending += e.pending.get();
        unflushed += e.unflushed.get() + e.flushing.get();
        n += 1;
    }
    let s = l.slot(db).copied();
    // SAFETY: plain read of the server's state.
    let standby = unsafe { pg_sys::RecoveryInProgress() };
    let state = match s {
        _ if standby => "off (a standby takes no orders)",
        _ if !ENABLED.get() => "off in this session (pg_credit.fast_path)",
        Some(s) if citus && s.draining > 0 => "draining",
        _ if citus && on => CITUS_ON,
        Some(s) if s.state == READY && s.draining > 0 => "draining",
        Some(s) if s.state == READY => "on",
        Some(_) => "recounting",
        None if on => "on",
        None => "no free database slot",
    };
    FastPathStatus {
        state,
        customers: n,
        capacity: l.header().capacity as i64,
        pending: to_decimal(pending).normalize(),
        unflushed: to_decimal(unflushed).normalize(),
        transactions_in_flight: s.map(|s| s.fast_in_flight as i64).unwrap_or(0),
        full_misses: s.map(|s| s.full_misses as i64).unwrap_or(0),
        flushes: s.map(|s| s.flushes as i64).unwrap_or(0),
        flushed_customers: s.map(|s| s.flushed_customers as i64).unwrap_or(0),
        flusher_pid: s.and_then(|s| (s.worker_pid != 0).then_some(s.worker_pid)),
    }
}
