//! The DDL watch: event triggers that keep the guard on an application table whatever its owner
//! does to it (the reconciliation itself is SQL, in sql/guard.sql).
//!
//! - `ddl_command_start`: before DROP TABLE / DROP SCHEMA / DROP OWNED, the open orders of the
//!   guarded relations the command drops leave exposure while their rows can still be read;
//!   DETACH PARTITION ... CONCURRENTLY of a guarded partition is refused (it spans transactions).
//! - `table_rewrite`: before ALTER TABLE rewrites a guarded table (a column retyped with USING,
//!   say), its open orders per customer are noted, so that afterwards only what changed is
//!   reserved — checked, as an UPDATE of those rows would be.
//! - `ddl_command_end`: a renamed guarded column is followed, and `credit._guard_reconcile()`
//!   registers new partitions and children, releases detached ones and refuses any command that
//!   would leave the guard switched off below the admin level.
//!
//! The functions are SECURITY DEFINER without a pinned search_path, so that names in the command
//! resolve as the command resolved them; every statement they run is fully qualified.
use crate::guard::reserve::Deltas;
use crate::guard::tables;
use crate::pg::error::{self, Code, OrRaise};
use crate::pg::event::{event_data, list, relid};
use crate::privileges;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;

/// Where a flag was set: (local transaction, subtransaction). A flag set by a call that failed
/// is void once its (sub)transaction rolled back, so it cannot outlive the failure.
type Scope = (pg_sys::LocalTransactionId, pg_sys::SubTransactionId);

fn scope_now() -> Scope {
    // SAFETY: reads of backend globals.
    unsafe { ((*pg_sys::MyProc).lxid, pg_sys::GetCurrentSubTransactionId()) }
}

thread_local! {
    /// credit.guard() / credit.unguard() change triggers themselves: the watch stays quiet.
    static QUIET: Cell<Option<Scope>> = const { Cell::new(None) };
    /// The watch's own DDL (registering a partition, following a rename) is not watched again.
    static BUSY: Cell<u32> = const { Cell::new(0) };
    /// The guard's problems when the current command started (only new ones are refused).
    static BEFORE: RefCell<Option<(pg_sys::LocalTransactionId, Vec<String>)>> = const { RefCell::new(None) };
    /// Open orders per customer of guarded tables about to be rewritten, by relation.
    static REWRITES: RefCell<(Option<pg_sys::LocalTransactionId>, HashMap<Oid, Deltas>)> =
        RefCell::new((None, HashMap::new()));
}

/// On a Citus worker, DDL that another node sends over a Citus connection (a shard's CREATE TABLE,
/// a propagated ALTER TABLE) was watched on the node that ran it, on the distributed table; inside
/// the task Citus refuses the watch's reads of reference tables (pg::citus says who counts).
fn quiet() -> bool {
    BUSY.with(|b| b.get() > 0)
        || QUIET.with(|q| q.get() == Some(scope_now()))
        || crate::pg::citus::command_from_another_node()
}

fn busy<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            BUSY.with(|b| b.set(b.get() - 1));
        }
    }
    BUSY.with(|b| b.set(b.get() + 1));
    let _r = Reset;
    f()
}

/// Internal: quiets the watch for the current (sub)transaction while credit.guard() or
/// credit.unguard() create and drop the guard's triggers.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _ddl_quiet(on: bool) {
    privileges::require_internal("credit._ddl_quiet");
    QUIET.with(|q| q.set(on.then(scope_now)));
}

fn registry_empty() -> bool {
    !Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM credit.guarded_table)").or_raise().unwrap_or(false)
}

unsafe fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Relations a DROP is about to remove that carry the guard: named tables, every table of named
/// schemas, every table of the roles of DROP OWNED.
unsafe fn dropped_relations(node: *mut pg_sys::Node) -> Vec<Oid> {
    match (*node).type_ {
        pg_sys::NodeTag::T_DropStmt => {
            let stmt = node as *mut pg_sys::DropStmt;
            match (*stmt).removeType {
                pg_sys::ObjectType::OBJECT_TABLE => list::<pg_sys::List>((*stmt).objects)
                    .into_iter()
                    .filter_map(|names| relid(pg_sys::makeRangeVarFromNameList(names)))
                    .collect(),
                pg_sys::ObjectType::OBJECT_SCHEMA => {
                    let schemas: Vec<Oid> = list::<pg_sys::String>((*stmt).objects)
                        .into_iter()
                        .map(|s| pg_sys::get_namespace_oid((*s).sval, true))
                        .filter(|o| *o != Oid::INVALID)
                        .collect();
                    in_catalog("c.relnamespace OPERATOR(pg_catalog.=) ANY ($1)", schemas)
                }
                _ => vec![],
            }
        }
        pg_sys::NodeTag::T_DropOwnedStmt => {
            let stmt = node as *mut pg_sys::DropOwnedStmt;
            let roles: Vec<Oid> = list::<pg_sys::RoleSpec>((*stmt).roles)
                .into_iter()
                .map(|r| pg_sys::get_rolespec_oid(r, true))
                .filter(|o| *o != Oid::INVALID)
                .collect();
            in_catalog("c.relowner OPERATOR(pg_catalog.=) ANY ($1)", roles)
        }
        _ => vec![],
    }
}

/// Guarded relations whose pg_class row matches `condition` over the oids in $1.
fn in_catalog(condition: &str, oids: Vec<Oid>) -> Vec<Oid> {
    if oids.is_empty() {
        return vec![];
    }
    Spi::connect(|c| {
        c.select(
            &format!(
                "SELECT g.table_name::pg_catalog.oid FROM credit.guarded_table g \
                 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.table_name::pg_catalog.oid WHERE {condition}"
            ),
            None,
            &[oids.into()],
        )
        .or_raise()
        .filter_map(|r| r.get::<Oid>(1).or_raise())
        .collect()
    })
}

/// Refuses DETACH PARTITION ... CONCURRENTLY of a guarded table's partition: it commits in two
/// transactions, between which the partition's orders would be neither counted nor guarded.
unsafe fn refuse_concurrent_detach(node: *mut pg_sys::Node) {
    if (*node).type_ != pg_sys::NodeTag::T_AlterTableStmt {
        return;
    }
    let stmt = node as *mut pg_sys::AlterTableStmt;
    for cmd in list::<pg_sys::AlterTableCmd>((*stmt).cmds) {
        if (*cmd).subtype != pg_sys::AlterTableType::AT_DetachPartition || (*cmd).def.is_null() {
            continue;
        }
        let part = (*cmd).def as *mut pg_sys::PartitionCmd;
        if !(*part).concurrent {
            continue;
        }
        let Some(parent) = relid((*stmt).relation) else { continue };
        if !in_catalog("c.oid OPERATOR(pg_catalog.=) ANY ($1)", vec![parent]).is_empty() {
            error::raise(
                Code::ERRCODE_FEATURE_NOT_SUPPORTED,
                "a partition of a guarded table cannot be detached concurrently",
                Some("DETACH CONCURRENTLY commits in two steps; between them the partition's orders would be neither counted nor guarded.".into()),
                Some("Detach it without CONCURRENTLY."),
            )
        }
    }
}

crate::pg::entry::finfo_v1!(pg_finfo_credit_guard_ddl_start);

/// ddl_command_start WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED', 'ALTER TABLE').
///
/// # Safety
/// Called by PostgreSQL as an event trigger function.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_guard_ddl_start(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let data = event_data(fcinfo, "credit._guard_ddl_start");
    REWRITES.with(|r| r.borrow_mut().1.clear());
    if quiet() {
        return pg_sys::Datum::from(0);
    }
    let problems: Vec<String> = busy(|| {
        Spi::connect(|c| {
            c.select("SELECT p.problem FROM credit._guard_problem_list() p", None, &[])
                .or_raise()
                .filter_map(|r| r.get::<String>(1).or_raise())
                .collect()
        })
    });
    BEFORE.with(|b| *b.borrow_mut() = Some((scope_now().0, problems)));
    let node = (*data).parsetree;
    refuse_concurrent_detach(node);
    let rels = if registry_empty() { vec![] } else { dropped_relations(node) };
    if !rels.is_empty() {
        busy(|| {
            Spi::run_with_args("SELECT credit._guard_release($1::pg_catalog.oid[])", &[rels.into()]).or_raise();
        });
    }
    pg_sys::Datum::from(0)
}

crate::pg::entry::finfo_v1!(pg_finfo_credit_guard_ddl_rewrite);

/// table_rewrite: notes the open orders of a guarded table about to be rewritten.
///
/// # Safety
/// Called by PostgreSQL as an event trigger function.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_guard_ddl_rewrite(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    event_data(fcinfo, "credit._guard_ddl_rewrite");
    if quiet() || registry_empty() {
        return pg_sys::Datum::from(0);
    }
    let rel = Spi::get_one::<Oid>("SELECT pg_catalog.pg_event_trigger_table_rewrite_oid()").or_raise();
    if let Some(rel) = rel {
        let sums = busy(|| tables::open_orders_by_customer(rel));
        if !sums.is_empty() {
            let lxid = scope_now().0;
            REWRITES.with(|r| {
                let mut r = r.borrow_mut();
                if r.0 != Some(lxid) {
                    *r = (Some(lxid), HashMap::new());
                }
                r.1.entry(rel).or_insert(sums);
            });
        }
    }
    pg_sys::Datum::from(0)
}

crate::pg::entry::finfo_v1!(pg_finfo_credit_guard_ddl_end);

/// ddl_command_end for commands that can touch a guarded table.
///
/// # Safety
/// Called by PostgreSQL as an event trigger function.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_guard_ddl_end(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let data = event_data(fcinfo, "credit._guard_ddl_end");
    let lxid = scope_now().0;
    let rewritten = REWRITES.with(|r| {
        let mut r = r.borrow_mut();
        let taken = std::mem::take(&mut r.1);
        if r.0 == Some(lxid) {
            taken
        } else {
            HashMap::new()
        }
    });
    if quiet() {
        return pg_sys::Datum::from(0);
    }
    let node = (*data).parsetree;
    busy(|| {
        if !node.is_null() && (*node).type_ == pg_sys::NodeTag::T_RenameStmt {
            let stmt = node as *mut pg_sys::RenameStmt;
            if (*stmt).renameType == pg_sys::ObjectType::OBJECT_COLUMN {
                if let Some(rel) = relid((*stmt).relation) {
                    let (old, new) = (cstr((*stmt).subname), cstr((*stmt).newname));
                    Spi::run_with_args(
                        "SELECT credit._guard_follow_rename($1, $2::pg_catalog.name, $3::pg_catalog.name)",
                        &[rel.into(), old.as_str().into(), new.as_str().into()],
                    )
                    .or_raise();
                }
            }
        }
        let mut rels: Vec<(Oid, Deltas)> = rewritten.into_iter().collect();
        rels.sort_by_key(|(r, _)| u32::from(*r));
        for (rel, before) in rels {
            tables::reserve_changes(rel, &before, &tables::open_orders_by_customer(rel));
        }
        // Problems there were when the command started (none known: every problem counts).
        let before: Option<Vec<String>> =
            BEFORE.with(|b| b.borrow_mut().take()).and_then(|(l, p)| (l == lxid).then_some(p));
        Spi::run_with_args("SELECT credit._guard_reconcile($1)", &[before.into()]).or_raise();
    });
    pg_sys::Datum::from(0)
}
