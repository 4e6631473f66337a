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
    "arrangement",
    "arrangement_invoice",
    "arrangement_instalment",
    "dunning_level",
];

/// Collection tasks get their ids from this sequence; on a worker, in the node's range
/// (`pg::citus::node_id_sql`, as held orders').
const TASK_ID: &str = "nextval('credit.collection_task_id_seq')";

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
        let tables: Vec<String> = ON_SHARDS.iter().map(|t| format!("credit.{t}")).collect();
        let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
        let shards = ON_SHARDS
            .iter()
            .zip(crate::pg::citus::shards_here(c, &tables, customer))
            .map(|(t, found)| match found {
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

    /// The statement, pointed at these tables.
    pub fn sql(&self, sql: &str) -> String {
        if self.shards.is_empty() {
            return sql.to_string();
        }
        let map: Vec<(&str, &str)> = self.shards.iter().map(|(t, s)| (*t, s.as_str())).collect();
        credit_core::shard_sql::point_at_shards(sql, &map)
            .replace(TASK_ID, &crate::pg::citus::node_id_sql("credit.collection_task_id_seq"))
    }
}
