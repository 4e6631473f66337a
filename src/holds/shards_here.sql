-- On a Citus worker (src/holds.rs, Place::shards_of): the customer's order_hold and account shards,
-- when both are placed on this node. $1 customer.
SELECT pg_catalog.format('credit.%I', 'order_hold_' || h.shardid), pg_catalog.format('credit.%I', 'account_' || a.shardid)
  FROM pg_catalog.pg_dist_shard h, pg_catalog.pg_dist_shard a
 WHERE h.shardid OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column('credit.order_hold', $1)
   AND a.shardid OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column('credit.account', $1)
   AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_placement p
         WHERE p.shardid OPERATOR(pg_catalog.=) ANY (ARRAY[h.shardid, a.shardid])
           AND p.groupid OPERATOR(pg_catalog.=) (SELECT l.groupid FROM pg_catalog.pg_dist_local_group l)) OPERATOR(pg_catalog.=) 2
