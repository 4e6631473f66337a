//! Citus (docs/citus.md): whether this database's pg_credit is distributed, and whether this
//! backend carries a command another Citus node sent.
use crate::pg::error::{self, Code, OrRaise};
use pgrx::prelude::*;

/// Citus names the connections its nodes open to each other so (`CITUS_APPLICATION_NAME_PREFIX`).
const INTERNAL_PREFIX: &[u8] = b"citus_internal gpid=";

/// Whether this backend runs a command another Citus node sent over a Citus connection (a shard's
/// DDL, a task of a distributed statement). Anyone can set application_name, so this alone proves
/// nothing: callers that let something through also require a superuser.
pub fn from_other_node() -> bool {
    // SAFETY: a read of the application_name GUC, a NUL-terminated string or NULL.
    unsafe {
        !pg_sys::application_name.is_null()
            && std::ffi::CStr::from_ptr(pg_sys::application_name).to_bytes().starts_with(INTERNAL_PREFIX)
    }
}

/// Whether credit.distribute() laid this database out on Citus (credit.account is distributed).
/// Read-only: no transaction id.
pub fn distributed() -> bool {
    Spi::connect(|c| {
        let citus = c
            .select("SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise();
        citus == Some(true)
            && c.select(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p \
                 WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'credit.account'::pg_catalog.regclass)",
                Some(1),
                &[],
            )
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
                == Some(true)
    })
}

/// Whether this backend carries a command another node sent to this Citus **worker**: the
/// connection says so, this database is distributed, and this node is not the coordinator. The
/// node that ran the command checked it; here the DDL watch leaves it alone. A client that sets
/// the same application_name gets nothing from it on one node or on the coordinator (where the
/// watch always runs); docs/citus.md says why workers admit only the coordinator and admins.
pub fn command_from_another_node() -> bool {
    if !from_other_node() || !distributed() {
        return false;
    }
    !is_coordinator()
}

/// Whether this node is a Citus worker of a distributed pg_credit (SQL's credit._on_citus_worker,
/// asked from the catalog here: a database still on older SQL has no such function).
pub fn on_worker() -> bool {
    distributed() && !is_coordinator()
}

/// Whether this node is the Citus coordinator; ask only where Citus is installed ([`distributed`]).
pub fn is_coordinator() -> bool {
    Spi::get_one::<bool>("SELECT pg_catalog.citus_is_coordinator()").or_raise().unwrap_or(false)
}

/// Refuses, on a Citus worker, an entry point that must run on the coordinator: a call in a
/// statement that reads a distributed table (`SELECT credit.post_payment(customer, 10) FROM
/// credit.account WHERE customer = 'C-05'`) is sent whole to the shard's worker, where its own
/// distributed statements (and reads of reference tables) would fail with Citus's XX000: so it
/// comes first.
pub fn refuse_on_worker(what: &str) {
    if on_worker() {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{what} runs through the coordinator, not inside a query on a shard"),
            Some(
                "Citus sent this call to a worker with the statement around it, which reads a distributed table.".into(),
            ),
            Some("Pass the arguments as values (psql's \\gset, or a separate query), not as a query over pg_credit's tables."),
        )
    }
}

/// Runs `f`, whose distributed statements run inside the write of a reference table's local copy
/// on the coordinator, with Citus's nested execution allowed for it alone.
pub fn nested<R>(f: impl FnOnce() -> R) -> R {
    const GUC: &str = "citus.allow_nested_distributed_execution";
    let before = Spi::get_one_with_args::<String>("SELECT pg_catalog.current_setting($1, true)", &[GUC.into()])
        .or_raise()
        .unwrap_or_else(|| "off".into());
    let set = |v: &str| {
        Spi::run_with_args("SELECT pg_catalog.set_config($1, $2, true)", &[GUC.into(), v.into()]).or_raise();
    };
    set("on");
    let r = f();
    set(&before);
    r
}

/// On a Citus node: the shards of the distributed tables `tables` (schema.table each) that hold
/// the rows of `customer`, for those placed on this node (a moved shard's old copy awaiting cleanup
/// does not count), as schema.table and oid, in the order of `tables`; None where not here. One
/// catalog query for them all. Ask only where Citus is installed.
pub fn shards_here(
    c: &pgrx::spi::SpiClient<'_>,
    tables: &[&str],
    customer: &str,
) -> Vec<Option<(String, pg_sys::Oid)>> {
    let mut found = vec![None; tables.len()];
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    for r in c.select(include_str!("shard_here.sql"), None, &[names.into(), customer.into()]).or_raise() {
        let position = r.get::<i32>(1).or_raise().unwrap_or(0) as usize;
        if let (Some(slot), Some(shard), Some(oid)) =
            (found.get_mut(position.wrapping_sub(1)), r.get::<String>(2).or_raise(), r.get::<pg_sys::Oid>(3).or_raise())
        {
            *slot = Some((shard, oid));
        }
    }
    found
}

/// [`shards_here`] of one table.
pub fn shard_here(c: &pgrx::spi::SpiClient<'_>, table: &str, customer: &str) -> Option<(String, pg_sys::Oid)> {
    shards_here(c, &[table], customer).pop().flatten()
}

/// The SQL expression of a new id for a row a Citus node writes: the node's group id in the top
/// 16 bits, the next value of `sequence` (a regclass literal's text) below, so that ids are unique
/// across the cluster; the coordinator (group 0) continues its own sequence.
pub fn node_id_sql(sequence: &str) -> String {
    format!(
        "((SELECT l.groupid::pg_catalog.int8 OPERATOR(pg_catalog.<<) 48 FROM pg_catalog.pg_dist_local_group l) \
          OPERATOR(pg_catalog.|) \
          (pg_catalog.nextval('{sequence}'::pg_catalog.regclass) OPERATOR(pg_catalog.&) 281474976710655))"
    )
}

/// `sql` for a call that gives its optional text parameter `param` (such as `$1`) a value: the
/// `$1::text IS NULL OR ` tests dropped, so that the customer is named by equality alone. The
/// meaning is the same for a value given; on Citus the query then goes to that customer's node,
/// where a test of the parameter beside it sends it to every shard.
pub fn given(sql: &str, param: &str, value: Option<&str>) -> String {
    match value {
        Some(_) => sql.replace(&format!("{param}::text IS NULL OR "), ""),
        None => sql.to_string(),
    }
}
