-- On a Citus node (src/pg/citus.rs, shards_here): the shards of distributed tables (as regclass
-- text) that hold the rows of one distribution value, for those placed on this node: each table's
-- position in $1, its shard's schema.table and oid. $1 the tables, $2 the value (a customer).
SELECT t.position::pg_catalog.int4,
       pg_catalog.format('%I.%I', n.nspname, c.relname || '_' || s.shardid) AS shard,
       pg_catalog.to_regclass(pg_catalog.format('%I.%I', n.nspname, c.relname || '_' || s.shardid))::pg_catalog.oid
  FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS t(table_name, position)
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(t.table_name)
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  JOIN pg_catalog.pg_dist_shard s ON s.shardid OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column(c.oid, $2)
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p
                WHERE p.shardid OPERATOR(pg_catalog.=) s.shardid
                  AND p.groupid OPERATOR(pg_catalog.=) (SELECT l.groupid FROM pg_catalog.pg_dist_local_group l))
