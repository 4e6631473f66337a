-- On a Citus worker (src/holds.rs, order_shard_here): the shard of a guarded table (schema.table,
-- as the coordinator names it) holding the customer's orders, when it is placed on this node.
-- $1 the table, $2 customer.
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', n.nspname, c.relname || '_' || s.shardid))::pg_catalog.oid
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  JOIN pg_catalog.pg_dist_shard s ON s.shardid OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column(c.oid, $2)
 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p
                WHERE p.shardid OPERATOR(pg_catalog.=) s.shardid
                  AND p.groupid OPERATOR(pg_catalog.=) (SELECT l.groupid FROM pg_catalog.pg_dist_local_group l))
