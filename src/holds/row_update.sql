-- The UPDATE that puts a held order's row back to the status it had (src/holds.rs,
-- lock_hold_at), its key's values as literals: on Citus it names the row's shard. No row when a
-- key column is missing. $1 relation, $2 status column, $3 original status, $4 key columns,
-- $5 row key (JSON).
SELECT pg_catalog.format('UPDATE %s SET %I = %L WHERE %s', $1::pg_catalog.oid::pg_catalog.regclass, $2::pg_catalog.text,
                         $3::pg_catalog.text,
                         pg_catalog.string_agg(pg_catalog.format('%I = %L::%s', k, $5::pg_catalog.jsonb OPERATOR(pg_catalog.->>) k,
                                                                 pg_catalog.format_type(a.atttypid, a.atttypmod)), ' AND '))
  FROM pg_catalog.unnest($4::pg_catalog.text[]) k
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND a.attname OPERATOR(pg_catalog.=) k
   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
HAVING pg_catalog.count(*) OPERATOR(pg_catalog.=) pg_catalog.cardinality($4::pg_catalog.text[])
