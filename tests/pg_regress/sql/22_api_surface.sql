-- The extension's API surface: every function with its arguments and result, every table and view
-- with its columns, every trigger and index. Any change to pg_credit's objects shows here in
-- review (tests/upgrade/surface.sql compares bodies and comments between a fresh install and an
-- update).
LOAD 'pg_credit';   -- its settings are defined when the library loads
\pset format unaligned
SELECT extversion FROM pg_extension WHERE extname = 'pg_credit';
SELECT p.oid::regprocedure AS function, pg_get_function_result(p.oid) AS returns,
       CASE p.prokind WHEN 'a' THEN 'aggregate' ELSE '' END || CASE WHEN p.prosecdef THEN 'security definer' ELSE '' END AS notes
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_credit'
 ORDER BY p.proname, p.oid::regprocedure::text;
SELECT c.relname AS relation, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END AS kind,
       string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS columns
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'v')
 GROUP BY c.relname, c.relkind ORDER BY c.relname;
SELECT t.tgrelid::regclass AS "table", t.tgname AS trigger
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'credit'::regnamespace AND NOT t.tgisinternal ORDER BY t.tgrelid::regclass::text, t.tgname;
SELECT indexrelid::regclass AS index FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'credit'::regnamespace ORDER BY i.indexrelid::regclass::text;
SELECT unnest(extconfig)::regclass::text AS dumped FROM pg_extension WHERE extname = 'pg_credit' ORDER BY 1;
SELECT evtname, evtevent FROM pg_event_trigger WHERE evtname LIKE 'credit%';
SELECT name, context FROM pg_settings WHERE name LIKE 'pg_credit.%' ORDER BY name;
