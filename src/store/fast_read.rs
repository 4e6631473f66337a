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
    Row(Row),
}

/// The row as a decision needs it (numbers as Decimal: no numeric is built on the hot path).
pub struct Row {
    pub account: Account,
    pub parent: Option<String>,
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

thread_local! {
    static IDS: Cell<Option<Ids>> = const { Cell::new(None) };
}

/// credit.account, its primary key and the column numbers (looked up again when the table's OID
/// changes: a recreated extension).
fn ids() -> Option<Ids> {
    // SAFETY: catalog lookups by name; each returns InvalidOid / InvalidAttrNumber when missing.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"credit".as_ptr(), true);
        if nsp == Oid::INVALID {
            return None;
        }
        let rel = pg_sys::get_relname_relid(c"account".as_ptr(), nsp);
        if rel == Oid::INVALID {
            return None;
        }
        if let Some(i) = IDS.with(|c| c.get()).filter(|i| i.rel == rel) {
            return Some(i);
        }
        let index = pg_sys::get_relname_relid(c"account_pkey".as_ptr(), nsp);
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
        let ids = Ids { rel, index, att };
        IDS.with(|c| c.set(Some(ids)));
        Some(ids)
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
            out = Read::Row(decode(tup, tupdesc, &ids));
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
    // SAFETY: the session's current date, as CURRENT_DATE.
    let today = unsafe { pg_sys::GetSQLCurrentDate() };
    let base = match date(3) {
        Some(until) if until >= today => num(2),
        _ => num(1),
    };
    let limit = match (base, num(4)) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(Decimal::ZERO),
    };
    let status = text(5).unwrap_or_default();
    let exposure = num(11).unwrap_or_default() + num(12).unwrap_or_default();
    let account = Account {
        credit_limit: limit,
        exposure,
        status: Status::parse(&status).unwrap_or(Status::Blacklisted),
        prepayment_only: get(6).map(|d| d.value() != 0).unwrap_or(false),
        days_past_due: date(7).map(|due| today - due),
        overdue_block_days: get(8).map(|d| d.value() as i32),
        warn_ratio: num(9),
    };
    Row { account, parent: text(10) }
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
