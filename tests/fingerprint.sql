-- A fingerprint of every table of pg_credit (found in the catalog, so a new table is covered by
-- itself) and of the tables named in the psql variable extra (comma-separated): one md5 per table,
-- on one line. Used by tests/dump_restore.sh and tests/upgrade/upgrade.sh to compare databases.
--   psql -v extra=orders,held -At -f tests/fingerprint.sql
SELECT 'SELECT string_agg(t || '':'' || h, '' '' ORDER BY t) FROM ('
       || string_agg(format('SELECT %L AS t, md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) AS h FROM %s x',
                            c.oid::regclass::text, ',', '', c.oid::regclass), ' UNION ALL ')
       || ') f'
  FROM pg_class c
 WHERE (c.relnamespace = 'credit'::regnamespace AND c.relkind = 'r')
    OR c.oid = ANY (SELECT to_regclass(n) FROM unnest(string_to_array(:'extra', ',')) n)
\gexec
