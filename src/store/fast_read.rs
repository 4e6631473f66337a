//! Reading one account row for the fast path without SPI and without a lock: its latest committed
//! version (a dirty snapshot), or word that a transaction in flight is writing it (then the caller
//! takes the row path and waits for the row lock). The same columns and rule as
//! `account::DECISION_COLUMNS`, computed in Rust.
use crate::pg::numeric::decode_datum;
use credit_core::decision::{Account, Status};
use credit_core::numeric::Decoded;
use pgrx::pg_sys::{self, Oid};
use pgrx::IntoDatum;
use rust_decimal::Decimal;
use std::cell::Cell;

pub enum Read {
    NoAccount,
    /// A transaction in flight is writing the row: wait for it ([`wait_for`]) and read again.
    Busy(pg_sys::TransactionId),
    Row(Box<Row>),
}

/// The row as a decision needs it (numbers as Decimal: no numeric is built on the hot path).
pub struct Row {
    pub account: Account,
    /// The same columns as stored, for the customer's entry in shared memory to keep.
    pub raw: Raw,
    pub parent: Option<String>,
}

/// An account row's decision columns as stored, before today's date applies (a temporary limit's
/// end, days past due): what the fast path keeps in shared memory between an account's writes.
/// Plain data (no pointer), so it can live there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Raw {
    pub credit_limit: Option<Decimal>,
    pub temporary_limit: Option<Decimal>,
    pub temporary_limit_until: Option<i32>,
    pub policy_max_limit: Option<Decimal>,
    pub status: Status,
    pub prepayment_only: bool,
    pub oldest_open_due: Option<i32>,
    pub overdue_block_days: Option<i32>,
    pub warn_ratio: Option<Decimal>,
    /// exposure plus member_exposure.
    pub exposure: Decimal,
}

impl Raw {
    /// The account a decision reads on `today` (days since 2000-01-01, as DateADT), by the rule of
    /// `account::DECISION_COLUMNS`.
    pub fn account(&self, today: i32) -> Account {
        let base = match self.temporary_limit_until {
            Some(until) if until >= today => self.temporary_limit,
            _ => self.credit_limit,
        };
        let limit = match (base, self.policy_max_limit) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(Decimal::ZERO),
        };
        Account {
            credit_limit: limit,
            exposure: self.exposure,
            status: self.status,
            prepayment_only: self.prepayment_only,
            days_past_due: self.oldest_open_due.map(|due| today - due),
            overdue_block_days: self.overdue_block_days,
            warn_ratio: self.warn_ratio,
        }
    }
}

/// The session's current date, as CURRENT_DATE.
pub fn today() -> i32 {
    // SAFETY: reads the transaction's start time and the session's time zone.
    unsafe { pg_sys::GetSQLCurrentDate() }
}

const COLUMNS: [&std::ffi::CStr; 12] = [
    c"customer",
    c"credit_limit",
    c"temporary_limit",
    c"temporary_limit_until",
    c"policy_max_limit",
    c"status",
    c"policy_prepayment_only",
    c"oldest_open_due",
    c"policy_overdue_block_days",
    c"policy_warn_ratio",
    c"parent",
    c"exposure",
];
const MEMBER_EXPOSURE: &std::ffi::CStr = c"member_exposure";

#[derive(Clone, Copy)]
struct Ids {
    rel: Oid,
    index: Oid,
    att: [i16; 13],
}

/// What the catalog says about credit.account, kept per backend until an invalidation says the
/// catalog changed (a lookup by name per order was four syscache searches on the hot path).
#[derive(Clone, Copy)]
struct Catalog {
    /// credit.account's OID (InvalidOid: not installed in this database).
    rel: Oid,
    /// Its primary key and columns (None: not installed, or not as this library expects).
    ids: Option<Ids>,
    /// Its triggers that drop the fast path's copies of rows are there and enabled ALWAYS (not
    /// before ALTER EXTENSION UPDATE to 0.3.0, nor while a superuser has disabled them).
    copies_dropped: bool,
}

thread_local! {
    static CATALOG: Cell<Option<Catalog>> = const { Cell::new(None) };
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    /// The account shard reads go to (InvalidOid: credit.account itself), set by [`on_relation`].
    static RELATION: Cell<Oid> = const { Cell::new(Oid::INVALID) };
    /// Account shards' primary keys and column numbers, by shard (forgotten with the catalog).
    static SHARD_IDS: std::cell::RefCell<std::collections::HashMap<Oid, Option<Ids>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Makes reads go to `rel`, an account shard of a Citus node (InvalidOid: credit.account); returns
/// the relation they went to before.
pub fn on_relation(rel: Oid) -> Oid {
    RELATION.with(|r| r.replace(rel))
}

/// The account shard reads go to now (None: credit.account itself).
pub fn shard() -> Option<Oid> {
    Some(RELATION.with(|r| r.get())).filter(|r| *r != Oid::INVALID)
}

/// credit.account's OID in this database (InvalidOid: the extension is not installed).
pub fn account_rel() -> Oid {
    catalog().rel
}

fn ids() -> Option<Ids> {
    match shard() {
        None => catalog().ids,
        Some(rel) => ids_of(rel),
    }
}

/// The ids of credit.account or of one of its shards (a shard is made by Citus from the table's
/// definition, so its column numbers may differ from the table's on this node).
fn ids_of(rel: Oid) -> Option<Ids> {
    let c = catalog();
    if rel == c.rel {
        return c.ids;
    }
    if let Some(ids) = SHARD_IDS.with(|m| m.borrow().get(&rel).copied()) {
        return ids;
    }
    let ids = shard_ids(rel);
    SHARD_IDS.with(|m| m.borrow_mut().insert(rel, ids));
    ids
}

/// A shard's primary key and column numbers.
fn shard_ids(rel: Oid) -> Option<Ids> {
    // SAFETY: the relcache entry is opened and closed here; lookups by OID and name return
    // InvalidOid / InvalidAttrNumber when missing.
    unsafe {
        let r = pg_sys::RelationIdGetRelation(rel);
        if r.is_null() {
            return None;
        }
        let index = pg_sys::RelationGetPrimaryKeyIndex(r);
        pg_sys::RelationClose(r);
        if index == Oid::INVALID {
            return None;
        }
        let mut att = [0i16; 13];
        for (i, name) in COLUMNS.iter().chain(std::iter::once(&MEMBER_EXPOSURE)).enumerate() {
            let n = pg_sys::get_attnum(rel, name.as_ptr());
            if n <= 0 {
                return None;
            }
            att[i] = n;
        }
        Some(Ids { rel, index, att })
    }
}

/// Whether every write of an account row drops the copy shared memory keeps of it: only then may
/// copies be kept and used. Never on a Citus shard: every commit writes its rows there, so a copy
/// would not outlive the customer's next order.
pub fn copies_dropped_by_trigger() -> bool {
    shard().is_none() && catalog().copies_dropped
}

fn catalog() -> Catalog {
    if let Some(c) = CATALOG.with(|c| c.get()) {
        return c;
    }
    if !WATCHING.with(|w| w.replace(true)) {
        // SAFETY: registered once per backend; the callbacks only forget the cached lookup.
        unsafe {
            pg_sys::CacheRegisterSyscacheCallback(
                pg_sys::SysCacheIdentifier::RELNAMENSP as i32,
                Some(forget),
                pg_sys::Datum::from(0usize),
            );
            pg_sys::CacheRegisterSyscacheCallback(
                pg_sys::SysCacheIdentifier::NAMESPACENAME as i32,
                Some(forget),
                pg_sys::Datum::from(0usize),
            );
            pg_sys::CacheRegisterRelcacheCallback(Some(forget_relation), pg_sys::Datum::from(0usize));
        }
    }
    let c = look_up();
    CATALOG.with(|x| x.set(Some(c)));
    c
}

/// A relation or schema was created, renamed or dropped somewhere in the database.
unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    CATALOG.with(|x| x.set(None));
    SHARD_IDS.with(|m| m.borrow_mut().clear());
}

/// A relation's definition changed (ALTER TABLE credit.account, or every relation at once).
unsafe extern "C-unwind" fn forget_relation(_arg: pg_sys::Datum, rel: Oid) {
    CATALOG.with(|x| {
        if rel == Oid::INVALID || x.get().is_some_and(|c| c.rel == rel) {
            x.set(None);
        }
    });
    SHARD_IDS.with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            if rel == Oid::INVALID {
                m.clear();
            } else {
                m.remove(&rel);
            }
        }
    });
}

/// credit.account, its primary key and the column numbers, by name.
fn look_up() -> Catalog {
    // SAFETY: catalog lookups by name; each returns InvalidOid / InvalidAttrNumber when missing.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"credit".as_ptr(), true);
        if nsp == Oid::INVALID {
            return Catalog { rel: Oid::INVALID, ids: None, copies_dropped: false };
        }
        let rel = pg_sys::get_relname_relid(c"account".as_ptr(), nsp);
        let index = pg_sys::get_relname_relid(c"account_pkey".as_ptr(), nsp);
        if rel == Oid::INVALID || index == Oid::INVALID {
            return Catalog { rel, ids: None, copies_dropped: false };
        }
        let mut att = [0i16; 13];
        for (i, name) in COLUMNS.iter().chain(std::iter::once(&MEMBER_EXPOSURE)).enumerate() {
            let n = pg_sys::get_attnum(rel, name.as_ptr());
            if n <= 0 {
                return Catalog { rel, ids: None, copies_dropped: false };
            }
            att[i] = n;
        }
        Catalog { rel, ids: Some(Ids { rel, index, att }), copies_dropped: copies_dropped(rel) }
    }
}

/// Whether credit.account has `account_written` and `account_truncated` enabled ALWAYS.
fn copies_dropped(rel: Oid) -> bool {
    // SAFETY: the relcache entry is opened and closed here; its trigger descriptor is read while
    // open. (A change of the triggers invalidates the entry, and `forget_relation` this lookup.)
    unsafe {
        let r = pg_sys::RelationIdGetRelation(rel);
        if r.is_null() {
            return false;
        }
        let td = (*r).trigdesc;
        let mut found = 0;
        if !td.is_null() {
            for i in 0..(*td).numtriggers as usize {
                let t = &*(*td).triggers.add(i);
                let name = std::ffi::CStr::from_ptr(t.tgname);
                if (name == c"account_written" || name == c"account_truncated")
                    && t.tgenabled as u8 == pg_sys::TRIGGER_FIRES_ALWAYS
                {
                    found += 1;
                }
            }
        }
        pg_sys::RelationClose(r);
        found == 2
    }
}

/// Reads the customer's account row; None when the fast read cannot be used here.
pub fn read(customer: &str) -> Option<Read> {
    let ids = ids()?;
    // SAFETY: the relation is opened and closed here; the scan key's text lives in the current
    // memory context for the scan; tuples are read while the scan holds their buffer.
    unsafe {
        let rel = pg_sys::table_open(ids.rel, pg_sys::AccessShareLock as i32);
        let mut snap: pg_sys::SnapshotData = std::mem::zeroed();
        snap.snapshot_type = pg_sys::SnapshotType::SNAPSHOT_DIRTY;
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        let value = customer.into_datum().unwrap_or(pg_sys::Datum::from(0usize));
        pg_sys::ScanKeyEntryInitialize(
            &mut key,
            0,
            ids.att[0],
            pg_sys::BTEqualStrategyNumber as u16,
            Oid::INVALID,
            pg_sys::DEFAULT_COLLATION_OID,
            Oid::from(pg_sys::F_TEXTEQ),
            value,
        );
        let scan = pg_sys::systable_beginscan(rel, ids.index, true, &mut snap, 1, &mut key);
        let tupdesc = (*rel).rd_att;
        let mut out = Read::NoAccount;
        loop {
            let tup = pg_sys::systable_getnext(scan);
            if tup.is_null() {
                break;
            }
            if snap.xmin != pg_sys::InvalidTransactionId {
                out = Read::Busy(snap.xmin);
                break;
            }
            if snap.xmax != pg_sys::InvalidTransactionId {
                out = Read::Busy(snap.xmax);
                break;
            }
            out = Read::Row(Box::new(decode(tup, tupdesc, &ids)));
        }
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
        Some(out)
    }
}

/// # Safety
/// `tup` is a tuple of credit.account described by `tupdesc`.
unsafe fn decode(tup: pg_sys::HeapTuple, tupdesc: pg_sys::TupleDesc, ids: &Ids) -> Row {
    let get = |i: usize| {
        let mut isnull = false;
        // SAFETY: a valid tuple and column number (checked at lookup).
        let d = unsafe { pg_sys::heap_getattr(tup, ids.att[i] as i32, tupdesc, &mut isnull) };
        (!isnull).then_some(d)
    };
    // SAFETY: each column is read as its declared type (sql/accounts.sql).
    let num = |i: usize| {
        // SAFETY: a non-null numeric column's datum.
        get(i).map(|d| match unsafe { decode_datum(d) } {
            Decoded::Value(v) => v,
            _ => Decimal::MAX,
        })
    };
    let date = |i: usize| get(i).map(|d| d.value() as i32);
    let text =
        // SAFETY: a non-null text column's datum.
        |i: usize| get(i).map(|d| unsafe { <String as pgrx::FromDatum>::from_datum(d, false) }.unwrap_or_default());
    let status = text(5).unwrap_or_default();
    let raw = Raw {
        credit_limit: num(1),
        temporary_limit: num(2),
        temporary_limit_until: date(3),
        policy_max_limit: num(4),
        status: Status::parse(&status).unwrap_or(Status::Blacklisted),
        prepayment_only: get(6).map(|d| d.value() != 0).unwrap_or(false),
        oldest_open_due: date(7),
        overdue_block_days: get(8).map(|d| d.value() as i32),
        // Shown in warnings as the row path shows it: decoded from numeric's base-10000 digits,
        // 0.8 would read 0.8000.
        warn_ratio: num(9).map(|r| r.normalize()),
        exposure: num(11).unwrap_or_default() + num(12).unwrap_or_default(),
    };
    Row { account: raw.account(today()), raw, parent: text(10) }
}

/// The customer named by an account row (a trigger's OLD or NEW) of `rel` (credit.account or one
/// of its shards); None when the catalog is not as this library expects.
///
/// # Safety
/// `tup` is a tuple of `rel` described by `tupdesc`.
pub unsafe fn customer_of(rel: Oid, tup: pg_sys::HeapTuple, tupdesc: pg_sys::TupleDesc) -> Option<String> {
    let ids = ids_of(rel)?;
    let mut isnull = false;
    // SAFETY: a valid tuple and column number (checked at lookup); customer is text NOT NULL.
    unsafe {
        let d = pg_sys::heap_getattr(tup, ids.att[0] as i32, tupdesc, &mut isnull);
        if isnull {
            return None;
        }
        <String as pgrx::FromDatum>::from_datum(d, false)
    }
}

/// The row once nobody is writing it: a transaction in flight that writes it is waited for
/// (through the lock manager, so the deadlock detector sees the wait) and the row read again.
/// None: the fast read cannot be used here, or the row keeps being written.
pub fn read_settled(customer: &str) -> Option<Read> {
    for _ in 0..8 {
        match read(customer)? {
            Read::Busy(xid) => wait_for(xid),
            settled => return Some(settled),
        }
    }
    None
}

fn wait_for(xid: pg_sys::TransactionId) {
    // SAFETY: waits on the transaction's lock; no relation context is needed for the message.
    unsafe { pg_sys::XactLockTableWait(xid, std::ptr::null_mut(), std::ptr::null_mut(), pg_sys::XLTW_Oper::XLTW_None) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("a decimal literal")
    }

    fn raw() -> Raw {
        Raw {
            credit_limit: Some(d("100")),
            temporary_limit: Some(d("150")),
            temporary_limit_until: Some(10),
            policy_max_limit: None,
            status: Status::Active,
            prepayment_only: false,
            oldest_open_due: Some(4),
            overdue_block_days: Some(30),
            warn_ratio: Some(d("0.8")),
            exposure: d("60"),
        }
    }

    #[test]
    fn a_kept_row_reads_as_of_the_day_it_is_used() {
        // The temporary limit counts through its last day, not after; days past due grow.
        assert_eq!(raw().account(10).credit_limit, d("150"));
        assert_eq!(raw().account(11).credit_limit, d("100"));
        assert_eq!(raw().account(10).days_past_due, Some(6));
        assert_eq!(raw().account(11).days_past_due, Some(7));
        // The policy's maximum caps whichever limit is in force.
        let capped = Raw { policy_max_limit: Some(d("120")), ..raw() };
        assert_eq!(capped.account(10).credit_limit, d("120"));
        assert_eq!(capped.account(11).credit_limit, d("100"));
        // No limit at all is a limit of 0; only a policy maximum is that maximum.
        let none = Raw { credit_limit: None, temporary_limit: None, ..raw() };
        assert_eq!(none.account(10).credit_limit, Decimal::ZERO);
        let only_max = Raw { policy_max_limit: Some(d("5")), ..none };
        assert_eq!(only_max.account(10).credit_limit, d("5"));
        assert_eq!(raw().account(10).exposure, d("60"));
        assert_eq!(raw().account(10).warn_ratio, Some(d("0.8")));
    }
}
