-- Every object of the extension, and every column of its tables and views, is documented with
-- COMMENT ON (what \d+ and BI tools show). Sequences and indexes are named after their tables.
SELECT pg_describe_object(d.classid, d.objid, 0) AS undocumented
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_credit'
 WHERE d.deptype = 'e' AND d.classid IN ('pg_class'::regclass, 'pg_proc'::regclass)
   AND obj_description(d.objid, d.classid::regclass::name) IS NULL
   AND NOT (d.classid = 'pg_class'::regclass AND (SELECT relkind FROM pg_class WHERE oid = d.objid) IN ('S', 'i'))
UNION ALL
SELECT format('column %s.%s', c.oid::regclass, a.attname)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'v') AND col_description(c.oid, a.attnum) IS NULL
ORDER BY 1;
-- Every view runs with the rights of whoever reads it (security_invoker): a BI tool's role sees
-- through a view only what its own level may read.
SELECT c.oid::regclass AS view_not_security_invoker
  FROM pg_class c
 WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'v'
   AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
ORDER BY 1;
