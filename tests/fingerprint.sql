-- A fingerprint of every table of pg_credit (found in the catalog, so a new table is covered by
-- itself) and of the tables named in the psql variable extra (comma-separated): one md5 per table,
-- on one line. Used by tests/dump_restore.sh and tests/upgrade/upgrade.sh to compare databases.
-- Rows as JSON without their NULL fields: a column an update adds (NULL in the old rows) leaves
-- the fingerprint of the old data as it was. Shipped rows still as shipped (is_default) are the
-- extension's, not data: an update may ship more (a new score component's weight).
-- Columns an update fills from other rows (psql variable derived, comma-separated table:column,
-- e.g. credit.allocation:customer, a copy of its settlement's customer) are left out: the update
-- test checks them itself.
--   psql -v extra=orders,held [-v derived=credit.allocation:customer] -At -f tests/fingerprint.sql
\if :{?derived}
\else
\set derived ''
\endif
SELECT 'SELECT string_agg(t || '':'' || h, '' '' ORDER BY t) FROM ('
       || string_agg(format('SELECT %L AS t, md5(coalesce(string_agg(x.r, %L ORDER BY x.r), %L)) AS h '
                            'FROM (SELECT jsonb_strip_nulls(to_jsonb(y) - %L::text[])::text AS r FROM %s y '
                            'WHERE NOT coalesce((to_jsonb(y) ->> ''is_default'')::boolean, false)) x',
                            c.oid::regclass::text, ',', '',
                            coalesce((SELECT array_agg(split_part(d, ':', 2)) FROM unnest(string_to_array(:'derived', ',')) d
                                       WHERE to_regclass(split_part(d, ':', 1)) = c.oid), '{}'),
                            c.oid::regclass), ' UNION ALL ')
       || ') f'
  FROM pg_class c
 WHERE (c.relnamespace = 'credit'::regnamespace AND c.relkind = 'r')
    OR c.oid = ANY (SELECT to_regclass(n) FROM unnest(string_to_array(:'extra', ',')) n)
\gexec
