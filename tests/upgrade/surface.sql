-- Every object of the extension with everything that defines it: a fresh install and an updated
-- one must print the same (tests/upgrade/upgrade.sh diffs them). Bodies and comments as md5.
WITH ext AS (SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
              WHERE e.extname = 'pg_credit' AND d.deptype = 'e'),
rels AS (SELECT c.oid, c.relname, c.relkind FROM pg_class c JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
SELECT * FROM (
  SELECT 'function ' || p.oid::regprocedure::text
         || ' returns ' || pg_get_function_result(p.oid)
         || ' args(' || pg_get_function_arguments(p.oid) || ')'
         || ' kind ' || p.prokind::text || ' lang ' || l.lanname || ' secdef ' || p.prosecdef || ' vol ' || p.provolatile::text
         || ' par ' || p.proparallel::text || ' strict ' || p.proisstrict
         || ' config ' || coalesce(p.proconfig::text, '-') || ' body ' || md5(coalesce(p.prosrc, '') || coalesce(p.probin, ''))
         || ' acl ' || coalesce(p.proacl::text, '-')
         || ' comment ' || coalesce(md5(obj_description(p.oid, 'pg_proc')), '-') AS line
    FROM pg_proc p JOIN ext ON ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid
    JOIN pg_language l ON l.oid = p.prolang
  UNION ALL
  SELECT 'relation ' || r.relname || ' kind ' || r.relkind::text || ' options ' || coalesce(c.reloptions::text, '-')
         || ' acl ' || coalesce(c.relacl::text, '-') || ' comment ' || coalesce(md5(obj_description(r.oid, 'pg_class')), '-')
         || CASE WHEN r.relkind = 'v' THEN ' view ' || md5(pg_get_viewdef(r.oid)) ELSE '' END
    FROM rels r JOIN pg_class c ON c.oid = r.oid
  UNION ALL
  SELECT 'column ' || r.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
         || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
         || ' comment ' || coalesce(md5(col_description(r.oid, a.attnum)), '-')
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
   WHERE r.relkind IN ('r', 'v')
  UNION ALL
  SELECT 'constraint ' || r.relname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
    FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM rels r JOIN pg_index i ON i.indrelid = r.oid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
    FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
  UNION ALL
  SELECT 'sequence ' || s.seqrelid::regclass::text || ' ' || format_type(s.seqtypid, NULL) || ' increment ' || s.seqincrement
    FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
  UNION ALL
  SELECT 'config_dump ' || c::regclass::text || ' ' || coalesce(e.extcondition[i], '')
    FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY u(c, i) WHERE e.extname = 'pg_credit'
  UNION ALL
  SELECT 'event trigger ' || t.evtname || ' ' || t.evtevent || ' ' || t.evtfoid::regproc::text
    FROM pg_event_trigger t JOIN ext ON ext.classid = 'pg_event_trigger'::regclass AND ext.objid = t.oid
  UNION ALL
  SELECT 'other ' || pg_describe_object(ext.classid, ext.objid, 0) FROM ext
   WHERE ext.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_event_trigger'::regclass)
  UNION ALL
  SELECT 'schema credit acl ' || coalesce(n.nspacl::text, '-') || ' comment ' || coalesce(md5(obj_description(n.oid, 'pg_namespace')), '-')
    FROM pg_namespace n WHERE n.nspname = 'credit'
) s ORDER BY line;
