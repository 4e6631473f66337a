//! The guard trigger's configuration, read from the trigger's arguments once per trigger and
//! cached per backend. Arguments (credit._guard_trigger_args, sql/guard.sql): customer column,
//! amount column, status column ('' for none), mode ('reject' or 'hold'), hold value ('' for
//! none), number of key columns, the key columns, the open statuses. Column names (not numbers) are
//! what the trigger carries, so pg_dump/restore keeps it valid.
use crate::pg::error::{self, Code, OrRaise};
use pgrx::pg_sys::{self, Oid, PgOid};
use pgrx::prelude::*;
use pgrx::PgBuiltInOids;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AmountKind {
    Numeric,
    Int2,
    Int4,
    Int8,
}

#[derive(Clone)]
pub struct Column {
    pub attnum: i32,
    pub name: String,
    pub typoid: Oid,
}

/// Hold mode: an order that does not fit is saved with its status column set to `value` and
/// queued in credit.order_hold, named by its key columns.
pub struct HoldMode {
    pub status: Column,
    pub value: String,
    pub keys: Vec<Column>,
}

pub struct Config {
    pub customer: Column,
    pub amount: Column,
    pub amount_kind: AmountKind,
    pub status: Option<Column>,
    pub open_statuses: Vec<String>,
    /// None: reject mode.
    pub hold: Option<HoldMode>,
    /// On a Citus node, when the trigger fires on an order shard: the account shard colocated with
    /// it (`credit.account_<shard id>`, on this node), which holds the account row of every
    /// customer of this order shard. The guard writes it as the plain table it is, without
    /// Citus's planning of a statement on a distributed table (docs/citus.md). With its oid.
    pub account_shard: Option<(String, Oid)>,
    /// In hold mode on a Citus order shard: where its held orders are queued ([`HoldShard`]).
    pub hold_shard: Option<HoldShard>,
}

/// On a Citus node, for an order shard in hold mode: the colocated `credit.order_hold` shard on
/// this node, and the guarded table's oid on the coordinator, which `credit.order_hold.table_name`
/// holds on every node (a worker's own oid for the table means nothing to the coordinator).
pub struct HoldShard {
    pub table: String,
    pub logical: Oid,
    /// The guarded table's schema.table, for events.
    pub name: String,
}

thread_local! {
    static CONFIGS: RefCell<HashMap<Oid, Rc<Config>>> = RefCell::new(HashMap::new());
}

/// # Safety
/// `tupdesc` is the firing relation's descriptor.
unsafe fn find_column(tupdesc: pg_sys::TupleDesc, name: &str, table: &str) -> Column {
    // SAFETY: the descriptor of an open relation, natts attributes long.
    let attrs = unsafe { (*tupdesc).attrs.as_slice((*tupdesc).natts as usize) };
    for (i, att) in attrs.iter().enumerate() {
        if att.attisdropped {
            continue;
        }
        // SAFETY: attname is a NUL-terminated NameData.
        let attname = unsafe { CStr::from_ptr(att.attname.data.as_ptr()) }.to_string_lossy();
        if attname == name {
            return Column { attnum: i as i32 + 1, name: name.to_string(), typoid: att.atttypid };
        }
    }
    error::raise(
        Code::ERRCODE_UNDEFINED_COLUMN,
        format!("guarded column \"{name}\" does not exist in table {table}"),
        None,
        Some("A guarded column was renamed or dropped: run credit.unguard() and credit.guard() again."),
    )
}

/// # Safety
/// `tupdesc` is the firing relation's descriptor.
unsafe fn still_matches(tupdesc: pg_sys::TupleDesc, col: &Column) -> bool {
    // SAFETY: the descriptor of an open relation; attnum is checked against natts first.
    unsafe {
        if col.attnum > (*tupdesc).natts {
            return false;
        }
        let att = &(*tupdesc).attrs.as_slice((*tupdesc).natts as usize)[(col.attnum - 1) as usize];
        !att.attisdropped
            && att.atttypid == col.typoid
            && CStr::from_ptr(att.attname.data.as_ptr()).to_bytes() == col.name.as_bytes()
    }
}

fn amount_kind(typoid: Oid, column: &str) -> AmountKind {
    match PgOid::from(typoid) {
        PgOid::BuiltIn(PgBuiltInOids::NUMERICOID) => AmountKind::Numeric,
        PgOid::BuiltIn(PgBuiltInOids::INT2OID) => AmountKind::Int2,
        PgOid::BuiltIn(PgBuiltInOids::INT4OID) => AmountKind::Int4,
        PgOid::BuiltIn(PgBuiltInOids::INT8OID) => AmountKind::Int8,
        _ => error::raise(
            Code::ERRCODE_DATATYPE_MISMATCH,
            format!("amount column \"{column}\" must be numeric, smallint, integer or bigint"),
            None,
            Some("Money is never kept in floating point."),
        ),
    }
}

/// The trigger acts only on a relation credit.guard() registered, with the configuration it was
/// registered with: a guard trigger created by hand (EXECUTE on the function is public, so that
/// partitions can be created) refuses every write instead of counting fake orders.
fn check_registration(relid: Oid, args: &[String], table: &str) {
    // A database still on an older version's SQL (before ALTER EXTENSION UPDATE) registers
    // guards without this check; its triggers were made by credit.guard() then.
    let current = Spi::get_one::<bool>(
        "SELECT pg_catalog.to_regprocedure('credit._guard_trigger_args(credit.guarded_table)') IS NOT NULL",
    )
    .or_raise()
    .unwrap_or(false);
    if !current {
        return;
    }
    let registered: Option<Vec<Option<String>>> = Spi::connect(|c| {
        let t = c
            .select(
                "SELECT credit._guard_trigger_args(g) FROM credit.guarded_table g \
                 WHERE g.table_name OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass",
                Some(1),
                &[relid.into()],
            )
            .or_raise();
        if !t.is_empty() {
            return Some(t.first().get_one::<Vec<Option<String>>>().or_raise().unwrap_or_default());
        }
        // On a Citus node the trigger fires on a shard: its table's registration, by name (older
        // SQL has no Citus support).
        let citus_aware = c
            .select("SELECT pg_catalog.to_regclass('credit.guard_registration') IS NOT NULL", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise();
        if citus_aware != Some(true) {
            return None;
        }
        let t = c
            .select(
                "SELECT r.trigger_args FROM credit.guard_registration r \
                 WHERE r.qualified_name OPERATOR(pg_catalog.=) credit._qualified_name(credit._shard_of($1))",
                Some(1),
                &[relid.into()],
            )
            .or_raise();
        (!t.is_empty()).then(|| t.first().get_one::<Vec<Option<String>>>().or_raise().unwrap_or_default())
    });
    let Some(registered) = registered else {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("table {table} is not guarded by credit.guard()"),
            Some("Its credit guard trigger was created by hand; the guard counts orders only of tables credit.guard() registered.".into()),
            Some("A credit admin guards the table with credit.guard(); drop the hand-made trigger."),
        )
    };
    if registered.iter().map(|a| a.as_deref().unwrap_or("")).ne(args.iter().map(String::as_str)) {
        error::raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("the credit guard trigger of table {table} does not match its registration"),
            Some(
                "Its arguments differ from credit.guarded_table; writes are refused until a credit admin repairs it."
                    .into(),
            ),
            Some("credit.guard_status shows the problem; unguard and guard the table again."),
        )
    }
}

fn unusable_arguments() -> ! {
    error::raise(
        Code::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
        "credit guard trigger was created without its arguments",
        None,
        Some("Attach the guard with credit.guard(), not CREATE TRIGGER."),
    )
}

/// The configuration of the firing trigger (cached while the table's columns stay as they were).
pub fn config(trigger: &PgTrigger<'_>) -> Rc<Config> {
    let tg = trigger.trigger();
    // SAFETY: a firing trigger's relation is open and its descriptor valid.
    let (tupdesc, relid) = unsafe {
        let rel = trigger.trigger_data().tg_relation;
        ((*rel).rd_att, (*rel).rd_id)
    };
    let cached = CONFIGS.with(|c| c.borrow().get(&tg.tgoid).cloned());
    if let Some(cfg) = cached {
        // SAFETY: the firing relation's descriptor.
        let intact = unsafe {
            let status_ok = cfg.status.as_ref().is_none_or(|s| still_matches(tupdesc, s));
            let keys_ok = cfg.hold.as_ref().is_none_or(|h| h.keys.iter().all(|k| still_matches(tupdesc, k)));
            still_matches(tupdesc, &cfg.customer) && still_matches(tupdesc, &cfg.amount) && status_ok && keys_ok
        };
        if intact {
            return cfg;
        }
    }
    let args = trigger.extra_args().unwrap_or_default();
    let table = trigger.table_name().unwrap_or_default();
    check_registration(relid, &args, &table);
    let nkeys: usize = args.get(5).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    if args.len() < 6 || args.len() < 6 + nkeys {
        unusable_arguments()
    }
    // SAFETY: the firing relation's descriptor.
    let find = |name: &str| unsafe { find_column(tupdesc, name, &table) };
    let customer = find(&args[0]);
    let amount = find(&args[1]);
    let amount_kind = amount_kind(amount.typoid, &amount.name);
    let status = (!args[2].is_empty()).then(|| find(&args[2]));
    let hold = match (args[3].as_str(), &status) {
        ("hold", Some(s)) => Some(HoldMode {
            status: s.clone(),
            value: args[4].clone(),
            keys: args[6..6 + nkeys].iter().map(|k| find(k)).collect(),
        }),
        ("hold", None) => unusable_arguments(),
        _ => None,
    };
    let account_shard = colocated_account_shard(relid);
    let hold_shard = match (&hold, &account_shard) {
        (Some(_), Some(_)) => Some(colocated_hold_shard(relid, &table)),
        _ => None,
    };
    let cfg = Rc::new(Config {
        customer,
        amount,
        amount_kind,
        status,
        open_statuses: args[6 + nkeys..].to_vec(),
        hold,
        account_shard,
        hold_shard,
    });
    CONFIGS.with(|c| c.borrow_mut().insert(tg.tgoid, cfg.clone()));
    cfg
}

/// On a Citus node, for an order shard placed here: the colocated account shard (same hash range)
/// when it is placed here too, as `credit.account_<shard id>`; None elsewhere (one node, or a
/// database on older SQL).
fn colocated_account_shard(relid: Oid) -> Option<(String, Oid)> {
    Spi::connect(|c| {
        let citus_aware = c
            .select(
                "SELECT pg_catalog.to_regprocedure('credit._colocated_account_shard(oid)') IS NOT NULL",
                Some(1),
                &[],
            )
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise();
        if citus_aware != Some(true) {
            return None;
        }
        let t = c
            .select(
                "SELECT s, pg_catalog.to_regclass(s)::pg_catalog.oid FROM credit._colocated_account_shard($1) s",
                Some(1),
                &[relid.into()],
            )
            .or_raise();
        let row = t.first();
        let shard = row.get::<String>(1).or_raise()?;
        let oid = row.get::<Oid>(2).or_raise()?;
        Some((shard, oid))
    })
}

/// On a Citus node, for an order shard in hold mode whose account shard is here: its held orders'
/// shard and its table's oid on the coordinator (credit.guard_registration).
fn colocated_hold_shard(relid: Oid, table: &str) -> HoldShard {
    let found = Spi::connect(|c| {
        let t = c
            .select(
                "SELECT credit._colocated_shard($1, 'credit.order_hold'::pg_catalog.regclass), r.table_oid, r.qualified_name \
                   FROM credit.guard_registration r \
                  WHERE r.qualified_name OPERATOR(pg_catalog.=) credit._qualified_name(credit._shard_of($1))",
                Some(1),
                &[relid.into()],
            )
            .or_raise();
        if t.is_empty() {
            return None;
        }
        let row = t.first();
        Some((row.get::<String>(1).or_raise(), row.get::<Oid>(2).or_raise(), row.get::<String>(3).or_raise()))
    });
    match found {
        Some((Some(table), Some(logical), Some(name))) => HoldShard { table, logical, name },
        _ => error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("the held orders of table {table} have no shard on this node"),
            Some("On Citus, credit.order_hold is distributed with credit.account and the guarded tables (credit.distribute()).".into()),
            Some("docs/citus.md: a shard move carries the colocated shards together; credit.verify() shows drift."),
        ),
    }
}
