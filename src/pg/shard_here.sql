-- On a Citus node (src/pg/citus.rs, shard_here): the shard of a distributed table (as regclass
-- text) that holds the rows of one distribution value, when it is placed on this node: its
-- schema.table and its oid. $1 the table, $2 the value (a customer).
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname || '_' || s.shardid) AS shard,
       pg_catalog.to_regclass(pg_catalog.format('%I.%I', n.nspname, c.relname || '_' || s.shardid))::pg_catalog.oid
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  JOIN pg_catalog.pg_dist_shard s ON s.shardid OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column(c.oid, $2)
 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p
                WHERE p.shardid OPERATOR(pg_catalog.=) s.shardid
                  AND p.groupid OPERATOR(pg_catalog.=) (SELECT l.groupid FROM pg_catalog.pg_dist_local_group l))
