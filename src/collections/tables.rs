//! Where the collection statements run: over pg_credit's tables on one node (or on Citus's
//! coordinator), or on a Citus worker over the shards of one colocated group placed there.
//!
//! The ladder's statements are set-based SQL over the ledger and the collection tables. On Citus
//! the coordinator sends one call per group of colocated shards to the worker that holds it
//! (`credit._collections_here`, in a query Citus routes by one customer of the group); there the
//! same statements run over that group's shards by name (`credit_core::shard_sql`), plain local
//! tables, in the transaction the coordinator commits. A statement over the distributed tables
//! themselves would be a distributed query inside a query on a shard, which Citus refuses.
use crate::pg::error::{self, Code};
use pgrx::spi::SpiClient;

/// The tables the collection statements name that Citus places by customer, colocated with
/// credit.account, and the reference tables they read (one local copy on every node).
const ON_SHARDS: &[&str] = &[
    "account",
    "invoice",
    "settlement",
    "allocation",
    "collection_task",
    "promise",
    "invoice_dispute",
    "dunning_level",
];

/// Collection tasks get their ids from this sequence; on a worker, in the node's range.
const TASK_ID: &str = "nextval('credit.collection_task_id_seq')";
/// A worker's ids: its group id in the top 16 bits, a per-node sequence below, unique across the
/// cluster (as held orders' ids, src/guard/hold.rs); the coordinator (group 0) continues its own.
const TASK_ID_ON_WORKER: &str = "((SELECT l.groupid::pg_catalog.int8 OPERATOR(pg_catalog.<<) 48 \
                                    FROM pg_catalog.pg_dist_local_group l) \
                                   OPERATOR(pg_catalog.|) (pg_catalog.nextval('credit.collection_task_id_seq'::pg_catalog.regclass) \
                                   OPERATOR(pg_catalog.&) 281474976710655))";

pub(crate) struct Tables {
    shards: Vec<(&'static str, String)>,
}

impl Tables {
    /// pg_credit's tables, as named.
    pub fn logical() -> Self {
        Tables { shards: Vec::new() }
    }

    /// On a Citus worker: the shards of the colocated group holding `customer`'s rows, which must
    /// be placed on this node.
    pub fn shard_group(c: &SpiClient<'_>, customer: &str) -> Self {
        let shards = ON_SHARDS
            .iter()
            .map(|t| match crate::pg::citus::shard_here(c, &format!("credit.{t}"), customer) {
                Some((shard, _)) => (*t, shard),
                None => error::raise(
                    Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!("the shard of credit.{t} holding customer \"{customer}\" is not on this node"),
                    Some("It moved while the collections run was sent here.".into()),
                    Some("Run credit.run_collections() again."),
                ),
            })
            .collect();
        Tables { shards }
    }

    /// Whether the statements run on a worker's shards.
    pub fn on_shards(&self) -> bool {
        !self.shards.is_empty()
    }

    /// The statement, pointed at these tables.
    pub fn sql(&self, sql: &str) -> String {
        if self.shards.is_empty() {
            return sql.to_string();
        }
        let map: Vec<(&str, &str)> = self.shards.iter().map(|(t, s)| (*t, s.as_str())).collect();
        credit_core::shard_sql::point_at_shards(sql, &map).replace(TASK_ID, TASK_ID_ON_WORKER)
    }
}
