-- pg_credit 0.2.0 -> 0.3.0 (UPDATING.md). Applied by ALTER EXTENSION pg_credit UPDATE.
-- The surface test (tests/upgrade) proves that it reproduces a fresh 0.3.0 install; the whole
-- regression suite then runs on the updated database.
--
-- Trust, part 2: the guard's registry covers partitions and inheritance children, and a DDL
-- watch keeps the guard on below the admin level; SECURITY DEFINER code never runs user code
-- (pinned search_path, built-in guarded column types, writes into application tables with the
-- owner's rights); four eyes counts people (logins, or persons named by a trusted proxy); every
-- function checks its level; refused orders are spooled and recorded by one worker per database;
-- private lock tables replace advisory keys; the audit chain can be verified against an anchor.
-- Tables guarded before the update are re-protected at its end (their partitions and children
-- registered, exposure recounted once).
\echo Use "ALTER EXTENSION pg_credit UPDATE" to load this file. \quit

-- Private locks (nobody else holds privileges on these tables, so nobody else can take them).
CREATE TABLE credit.outbox_lock ();
CREATE TABLE credit.collections_lock ();
CREATE TABLE credit.daily_lock ();

-- Logins of applications that connect through one pooled role and name the person they act for.
CREATE TABLE credit.trusted_proxy (
    role   name PRIMARY KEY,
    note   text
);
SELECT pg_catalog.pg_extension_config_dump('credit.trusted_proxy', '');
CREATE TRIGGER trusted_proxy_write_check BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit.trusted_proxy
    FOR EACH STATEMENT EXECUTE FUNCTION credit._policy_write_check();

-- How far the refusal recorder has read each spool file (tied to this server's files: not dumped).
CREATE TABLE credit.refusal_spool (
    file      text PRIMARY KEY,
    consumed  bigint NOT NULL DEFAULT 0
);

-- The registry: every relation carrying the guard's triggers, with the table credit.guard() was
-- called on. Tables guarded before the update are their own root.
ALTER TABLE credit.guarded_table
    ADD COLUMN root regclass,
    ADD COLUMN kind text NOT NULL DEFAULT 'table' CHECK (kind IN ('table', 'partition', 'child'));
UPDATE credit.guarded_table SET root = table_name;
ALTER TABLE credit.guarded_table ALTER COLUMN root SET NOT NULL;
CREATE INDEX guarded_table_root_idx ON credit.guarded_table (root);

-- New functions of the library.

CREATE FUNCTION "_person"() RETURNS TEXT /* String */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_person_wrapper';

CREATE FUNCTION "_internal"(
	"function" TEXT /* Option < & str > */
) RETURNS void
STABLE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_internal_wrapper';

CREATE FUNCTION "_require_member"(
	"role" TEXT, /* Option < & str > */
	"action" TEXT /* Option < & str > */
) RETURNS void
STABLE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_require_member_wrapper';

CREATE FUNCTION "act_for"(
	"person" TEXT /* Option < & str > */
) RETURNS TEXT /* Option < String > */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'act_for_wrapper';

CREATE FUNCTION "_is_admin"() RETURNS bool /* bool */
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_is_admin_wrapper';

CREATE FUNCTION "_is_superuser"() RETURNS bool /* bool */
STRICT STABLE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_is_superuser_wrapper';

CREATE FUNCTION "_count_open_orders"(
	"rel" oid, /* pg_sys :: Oid */
	"sign" INT, /* i32 */
	"checked" bool /* bool */
) RETURNS bigint /* i64 */
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_count_open_orders_wrapper';

CREATE FUNCTION "_ddl_quiet"(
	"on" bool /* bool */
) RETURNS void
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_ddl_quiet_wrapper';

CREATE FUNCTION "_recount_exposure"() RETURNS bigint /* i64 */
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_recount_exposure_wrapper';

CREATE FUNCTION "_refusal_recording"() RETURNS TABLE (
	"pending" bigint,  /* i64 */
	"spool_files" INT,  /* i32 */
	"oldest_pending" timestamp with time zone,  /* Option < pgrx :: datum :: TimestampWithTimeZone > */
	"recorder_running" bool,  /* bool */
	"unrecorded" bigint  /* i64 */
)
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_refusal_recording_wrapper';

CREATE FUNCTION "record_refusals"() RETURNS bigint /* i64 */
STRICT SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'record_refusals_wrapper';



-- Functions of the library with new attributes (a pinned search_path; internal ones no longer SECURITY DEFINER).

CREATE OR REPLACE FUNCTION "check"(
	"customer" TEXT, /* Option < & str > */
	"amount" NUMERIC /* Option < AnyNumeric > */
) RETURNS TABLE (
	"allowed" bool,  /* bool */
	"decision" TEXT,  /* String */
	"credit_limit" NUMERIC,  /* Option < AnyNumeric > */
	"exposure" NUMERIC,  /* Option < AnyNumeric > */
	"available" NUMERIC,  /* Option < AnyNumeric > */
	"reasons" TEXT[],  /* Vec < String > */
	"exposure_after" NUMERIC,  /* Option < AnyNumeric > */
	"warnings" TEXT[]  /* Vec < String > */
)
STABLE PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'check_wrapper';

CREATE OR REPLACE FUNCTION "exposure"(
	"customer" TEXT /* Option < & str > */
) RETURNS NUMERIC /* AnyNumeric */
STABLE PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'exposure_wrapper';

CREATE OR REPLACE FUNCTION "available_credit"(
	"customer" TEXT /* Option < & str > */
) RETURNS NUMERIC /* AnyNumeric */
STABLE PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'available_credit_wrapper';

CREATE OR REPLACE FUNCTION "explain_terms"(
	"customer" TEXT, /* Option < & str > */
	"amount" NUMERIC, /* Option < AnyNumeric > */
	"product_category" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"terms_days" INT,  /* i32 */
	"source" TEXT  /* String */
)
STABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'explain_terms_wrapper';

CREATE OR REPLACE FUNCTION "effective_policy"(
	"customer" TEXT, /* Option < & str > */
	"product_category" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"terms_days" INT,  /* Option < i32 > */
	"max_limit" NUMERIC,  /* Option < AnyNumeric > */
	"warn_ratio" NUMERIC,  /* AnyNumeric */
	"overdue_block_days" INT,  /* Option < i32 > */
	"prepayment_required" bool,  /* bool */
	"max_increase_ratio" NUMERIC,  /* Option < AnyNumeric > */
	"approval_above" NUMERIC,  /* Option < AnyNumeric > */
	"releasing_role" TEXT,  /* Option < String > */
	"blacklist_on_write_off" bool,  /* bool */
	"dunning_ladder" TEXT,  /* String */
	"blacklist_on_legal" bool,  /* bool */
	"matched_policies" bigint[]  /* Vec < i64 > */
)
STABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'effective_policy_wrapper';

CREATE OR REPLACE FUNCTION "terms_for"(
	"customer" TEXT, /* Option < & str > */
	"amount" NUMERIC, /* Option < AnyNumeric > */
	"product_category" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS INT /* i32 */
STABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'terms_for_wrapper';

CREATE OR REPLACE FUNCTION "score"(
	"customer" TEXT, /* Option < & str > */
	"as_of" date DEFAULT CURRENT_DATE /* Option < Date > */
) RETURNS TABLE (
	"score" NUMERIC,  /* Option < AnyNumeric > */
	"grade" TEXT,  /* Option < String > */
	"components" jsonb  /* pgrx :: JsonB */
)
STABLE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'score_wrapper';

CREATE OR REPLACE FUNCTION "receivables_metrics"(
	"period_start" date, /* Option < Date > */
	"period_end" date, /* Option < Date > */
	"customer" TEXT DEFAULT NULL, /* Option < & str > */
	"cei_months" NUMERIC DEFAULT NULL, /* Option < AnyNumeric > */
	"count_back_months" TEXT DEFAULT 'calendar' /* Option < & str > */
) RETURNS TABLE (
	"beginning_ar" NUMERIC,  /* AnyNumeric */
	"ending_ar" NUMERIC,  /* AnyNumeric */
	"current_ar" NUMERIC,  /* AnyNumeric */
	"credit_sales" NUMERIC,  /* AnyNumeric */
	"days" INT,  /* i32 */
	"dso" NUMERIC,  /* Option < AnyNumeric > */
	"best_possible_dso" NUMERIC,  /* Option < AnyNumeric > */
	"average_days_delinquent" NUMERIC,  /* Option < AnyNumeric > */
	"count_back_dso" NUMERIC,  /* AnyNumeric */
	"cei" NUMERIC,  /* Option < AnyNumeric > */
	"ar_turnover" NUMERIC,  /* Option < AnyNumeric > */
	"average_collection_period" NUMERIC  /* Option < AnyNumeric > */
)
STABLE PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'receivables_metrics_wrapper';

CREATE OR REPLACE FUNCTION "_aging_buckets_problem"() RETURNS TEXT /* Option < String > */
STRICT STABLE PARALLEL RESTRICTED
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_aging_buckets_problem_wrapper';

CREATE OR REPLACE FUNCTION "_apply_limit"(
	"customer" TEXT, /* Option < & str > */
	"new_limit" NUMERIC, /* Option < AnyNumeric > */
	"valid_until" date, /* Option < Date > */
	"reason" TEXT /* Option < & str > */
) RETURNS bool /* bool */
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_apply_limit_wrapper';

CREATE OR REPLACE FUNCTION "_expire_temporary_limits"(
	"as_of" date /* Date */
) RETURNS bigint /* i64 */
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_expire_temporary_limits_wrapper';

ALTER FUNCTION credit._guard_truncate() SET search_path = pg_catalog, pg_temp;

GRANT EXECUTE ON FUNCTION credit._guard_row() TO PUBLIC;

DROP FUNCTION credit._shift_open_orders(oid, integer);

DROP FUNCTION credit._record_refusal(jsonb);

DROP FUNCTION credit.verify_audit();

ALTER TABLE credit.event ALTER COLUMN actor SET DEFAULT credit._person();

-- SQL functions, new and changed (their 0.3.0 text).

CREATE FUNCTION credit._guard_type_problem(col_type oid, purpose text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE d AS (
        SELECT t.oid, t.typtype, t.typbasetype FROM pg_type t WHERE t.oid = col_type
        UNION ALL
        SELECT t.oid, t.typtype, t.typbasetype FROM pg_type t JOIN d ON t.oid = d.typbasetype WHERE d.typtype = 'd'),
    base AS (SELECT d.oid FROM d WHERE d.typtype <> 'd')
    SELECT CASE
        WHEN (SELECT b.oid FROM base b) = ANY (CASE purpose
                WHEN 'amount' THEN ARRAY['numeric', 'int2', 'int4', 'int8']::regtype[]::oid[]
                WHEN 'status' THEN ARRAY['text', 'varchar', 'bpchar', 'name', 'char', 'int2', 'int4', 'int8']::regtype[]::oid[]
                ELSE ARRAY['text', 'varchar', 'bpchar', 'name', 'int2', 'int4', 'int8', 'numeric', 'uuid']::regtype[]::oid[] END)
        THEN NULL
        WHEN purpose = 'amount' THEN format('type %s is not numeric, smallint, integer or bigint (money is never kept in floating point)', col_type::regtype)
        ELSE format('type %s cannot be a guarded %s column: its text form is not canonical, or not built in', col_type::regtype,
                    CASE purpose WHEN 'key' THEN 'primary key' ELSE purpose END)
    END
$$;

CREATE FUNCTION credit._guard_trigger_args(g credit.guarded_table) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[g.customer_column::text, g.amount_column::text, coalesce(g.status_column::text, ''), g.mode,
                 coalesce(g.hold_value, ''), coalesce(cardinality(g.key_columns), 0)::text]
           || coalesce(g.key_columns::text[], '{}') || coalesce(g.open_statuses, '{}')
$$;

CREATE FUNCTION credit._guard_problems(rel oid)
RETURNS TABLE (table_name regclass, problem text, fatal boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g        credit.guarded_table;
    kind     "char";
    col      record;
    want     bytea;
    t        record;
BEGIN
    SELECT * INTO g FROM credit.guarded_table x WHERE x.table_name = rel;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    table_name := g.table_name;
    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = rel;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        problem := 'is no longer a table'; fatal := true; RETURN NEXT;
        RETURN;
    END IF;
    FOR col IN
        SELECT u.col, u.purpose, a.atttypid
          FROM unnest(ARRAY[g.customer_column, g.amount_column, g.status_column] || coalesce(g.key_columns, '{}'),
                      ARRAY['customer', 'amount', 'status'] || array_fill('key'::text, ARRAY[coalesce(cardinality(g.key_columns), 0)]))
               AS u(col, purpose)
          LEFT JOIN pg_attribute a ON a.attrelid = rel AND a.attname = u.col AND a.attnum > 0 AND NOT a.attisdropped
         WHERE u.col IS NOT NULL
    LOOP
        IF col.atttypid IS NULL THEN
            problem := format('guarded %s column "%s" is missing', col.purpose, col.col); fatal := true; RETURN NEXT;
        ELSIF credit._guard_type_problem(col.atttypid, col.purpose) IS NOT NULL THEN
            problem := format('column "%s": %s', col.col, credit._guard_type_problem(col.atttypid, col.purpose)); fatal := true;
            RETURN NEXT;
        END IF;
    END LOOP;
    -- The trigger's arguments as stored: each followed by a zero byte.
    SELECT coalesce(string_agg(convert_to(a, 'UTF8') || '\x00'::bytea, ''::bytea ORDER BY o), ''::bytea) INTO want
      FROM unnest(credit._guard_trigger_args(g)) WITH ORDINALITY u(a, o);
    fatal := false;
    FOR t IN SELECT tr.tgenabled, tr.tgtype, tr.tgargs, tr.tgqual IS NOT NULL AS conditional, count(*) OVER () AS n
               FROM pg_trigger tr WHERE tr.tgrelid = rel AND tr.tgfoid = 'credit._guard_row()'::regprocedure LOOP
        IF t.n > 1 THEN
            problem := 'the guard''s row trigger is there more than once'; RETURN NEXT;
            EXIT;
        END IF;
        IF t.tgenabled NOT IN ('O', 'A') THEN
            problem := 'the guard''s row trigger is disabled'; RETURN NEXT;
        END IF;
        -- AFTER (neither BEFORE nor INSTEAD OF) ROW INSERT OR UPDATE OR DELETE, unconditional.
        IF t.tgtype & (1 | 2 | 4 | 8 | 16 | 32 | 64) <> (1 | 4 | 8 | 16) OR t.conditional THEN
            problem := 'the guard''s row trigger does not fire after every insert, update and delete'; RETURN NEXT;
        END IF;
        IF t.tgargs <> want THEN
            problem := 'the guard''s row trigger points at other columns than credit.guarded_table'; RETURN NEXT;
        END IF;
    END LOOP;
    IF NOT FOUND THEN
        problem := 'the guard''s row trigger is missing'; RETURN NEXT;
    END IF;
    IF kind = 'r' THEN
        SELECT tr.tgenabled, tr.tgtype, tr.tgqual IS NOT NULL AS conditional INTO t FROM pg_trigger tr
         WHERE tr.tgrelid = rel AND tr.tgfoid = 'credit._guard_truncate()'::regprocedure;
        IF NOT FOUND THEN
            problem := 'the guard''s TRUNCATE trigger is missing'; RETURN NEXT;
        ELSIF t.tgenabled NOT IN ('O', 'A') THEN
            problem := 'the guard''s TRUNCATE trigger is disabled'; RETURN NEXT;
        ELSIF t.tgtype <> (2 | 32) OR t.conditional THEN
            problem := 'the guard''s TRUNCATE trigger does not fire before every TRUNCATE'; RETURN NEXT;
        END IF;
    END IF;
END
$$;

CREATE FUNCTION credit._guard_problem_list() RETURNS TABLE (problem text, fatal boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('%s: %s', p.table_name, p.problem), p.fatal
      FROM credit.guarded_table x, credit._guard_problems(x.table_name) p
    UNION ALL
    SELECT format('%s: has a trigger calling %s that credit.guard() did not create', t.tgrelid::regclass, t.tgfoid::regproc), false
      FROM pg_trigger t
     WHERE t.tgfoid IN ('credit._guard_row()'::regprocedure, 'credit._guard_truncate()'::regprocedure)
       AND NOT EXISTS (SELECT 1 FROM credit.guarded_table x WHERE x.table_name = t.tgrelid)
$$;

CREATE FUNCTION credit._guard_descendants(rel regclass)
RETURNS TABLE (relid regclass, kind text, relkind "char")
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE d(relid, ispartition) AS (
        SELECT i.inhrelid, c.relispartition FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = rel
        UNION
        SELECT i.inhrelid, c.relispartition FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN d ON i.inhparent = d.relid)
    SELECT d.relid::regclass, CASE WHEN d.ispartition THEN 'partition' ELSE 'child' END, c.relkind
      FROM d JOIN pg_class c ON c.oid = d.relid
$$;

CREATE OR REPLACE FUNCTION credit._open_orders_query(relid oid DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q text;
BEGIN
    PERFORM credit._internal('credit._open_orders_query');
    SELECT string_agg(format(
               'SELECT (t.%I)::pg_catalog.text COLLATE pg_catalog."C" AS customer, (t.%I)::pg_catalog.numeric AS amount '
               'FROM ONLY %s t%s',
               g.customer_column, g.amount_column, g.table_name::text,
               CASE WHEN g.status_column IS NULL THEN ''
                    ELSE format(' WHERE (t.%I)::pg_catalog.text COLLATE pg_catalog."C" OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])',
                                g.status_column, g.open_statuses) END),
           ' UNION ALL ')
      INTO q
      FROM credit.guarded_table g JOIN pg_class c ON c.oid = g.table_name
     WHERE (relid IS NULL OR g.table_name = relid) AND c.relkind = 'r'
       AND NOT EXISTS (SELECT 1 FROM credit._guard_problems(g.table_name) p WHERE p.fatal);
    RETURN coalesce(
        'SELECT customer, amount FROM (' || q || ') o WHERE customer IS NOT NULL '
        'AND amount OPERATOR(pg_catalog.>=) 0 AND amount OPERATOR(pg_catalog.<=) 1000000000000000',
        'SELECT NULL::pg_catalog.text AS customer, NULL::pg_catalog.numeric AS amount WHERE false');
END
$$;

CREATE OR REPLACE FUNCTION credit._actual_exposure()
RETURNS TABLE (customer text, open_ar numeric, unapplied_credit numeric, open_orders numeric, oldest_open_due date)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._internal('credit._actual_exposure');
    RETURN QUERY EXECUTE format($q$
        WITH alloc_inv AS (SELECT invoice_id, sum(amount) AS s FROM credit.allocation GROUP BY invoice_id),
             alloc_set AS (SELECT settlement_id, sum(amount) AS s FROM credit.allocation GROUP BY settlement_id),
             ar AS (SELECT i.customer, sum(i.amount - coalesce(ai.s, 0)) AS v
                      FROM credit.invoice i LEFT JOIN alloc_inv ai ON ai.invoice_id = i.id GROUP BY i.customer),
             un AS (SELECT s.customer, sum(s.amount - coalesce(x.s, 0)) AS v
                      FROM credit.settlement s LEFT JOIN alloc_set x ON x.settlement_id = s.id
                     WHERE s.kind <> 'write_off' GROUP BY s.customer),
             oo AS (SELECT customer, sum(amount) AS v FROM (%s) o GROUP BY customer),
             od AS (SELECT i.customer, min(i.due_date) AS d
                      FROM credit.invoice i LEFT JOIN alloc_inv ai ON ai.invoice_id = i.id
                     WHERE i.amount - coalesce(ai.s, 0) > 0 AND NOT i.disputed GROUP BY i.customer)
        SELECT a.customer, coalesce(ar.v, 0), coalesce(un.v, 0), coalesce(oo.v, 0), od.d
          FROM credit.account a
          LEFT JOIN od ON od.customer = a.customer
          LEFT JOIN ar ON ar.customer = a.customer
          LEFT JOIN un ON un.customer = a.customer
          LEFT JOIN oo ON oo.customer = a.customer
    $q$, credit._open_orders_query());
END
$$;

CREATE OR REPLACE FUNCTION credit._recomputed()
RETURNS TABLE (customer text, open_ar numeric, unapplied_credit numeric, open_orders numeric, exposure numeric,
               member_exposure numeric, oldest_open_due date)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH x AS (SELECT x.*, x.open_ar - x.unapplied_credit + x.open_orders AS exposure FROM credit._actual_exposure() x),
         m AS (SELECT a.parent, sum(x.exposure) AS s FROM credit.account a JOIN x ON x.customer = a.customer
                WHERE a.parent IS NOT NULL GROUP BY a.parent)
    SELECT x.customer, x.open_ar, x.unapplied_credit, x.open_orders, x.exposure, coalesce(m.s, 0), x.oldest_open_due
      FROM x LEFT JOIN m ON m.parent = x.customer
$$;

CREATE OR REPLACE FUNCTION credit.verify()
RETURNS TABLE (customer text,
               stored_exposure numeric, actual_exposure numeric,
               stored_open_ar numeric, actual_open_ar numeric,
               stored_unapplied_credit numeric, actual_unapplied_credit numeric,
               stored_open_orders numeric, actual_open_orders numeric,
               stored_member_exposure numeric, actual_member_exposure numeric,
               stored_oldest_open_due date, actual_oldest_open_due date)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('reader', 'verifying exposure');
    SELECT a.customer,
           a.exposure, x.exposure,
           a.open_ar, x.open_ar,
           a.unapplied_credit, x.unapplied_credit,
           a.open_orders, x.open_orders,
           a.member_exposure, x.member_exposure,
           a.oldest_open_due, x.oldest_open_due
      FROM credit.account a
      JOIN credit._recomputed() x ON x.customer = a.customer
     WHERE (a.open_ar, a.unapplied_credit, a.open_orders, a.exposure, a.member_exposure, a.oldest_open_due)
           IS DISTINCT FROM (x.open_ar, x.unapplied_credit, x.open_orders, x.exposure, x.member_exposure, x.oldest_open_due)
     ORDER BY a.customer
$$;

CREATE FUNCTION credit._guard_register(rel regclass, root_rel regclass, kind text, checked boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g credit.guarded_table;
    relkind "char";
BEGIN
    PERFORM credit._internal('credit._guard_register');
    SELECT * INTO g FROM credit.guarded_table x WHERE x.table_name = root_rel;
    SELECT c.relkind INTO relkind FROM pg_class c WHERE c.oid = rel;
    IF relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% cannot become part of guarded table %: it is not a table', rel, root_rel
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Foreign tables and views cannot be guarded; their rows would be orders nobody checks.';
    END IF;
    INSERT INTO credit.guarded_table (table_name, customer_column, amount_column, status_column, open_statuses, mode,
                                      hold_value, key_columns, guarded_by, root, kind)
    VALUES (rel, g.customer_column, g.amount_column, g.status_column, g.open_statuses, g.mode,
            g.hold_value, g.key_columns, session_user, root_rel, kind);
    IF kind = 'child' THEN
        EXECUTE format('CREATE TRIGGER credit_guard AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION credit._guard_row(%s)', rel,
                       (SELECT string_agg(quote_literal(a), ', ') FROM unnest(credit._guard_trigger_args(g)) a));
    END IF;
    IF relkind = 'r' THEN
        EXECUTE format('CREATE TRIGGER credit_guard_truncate BEFORE TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION credit._guard_truncate()', rel);
        PERFORM credit._count_open_orders(rel, 1, checked);
    END IF;
END
$$;

CREATE FUNCTION credit._guard_unregister(rel regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g credit.guarded_table;
    t name;
BEGIN
    PERFORM credit._internal('credit._guard_unregister');
    SELECT * INTO g FROM credit.guarded_table x WHERE x.table_name = rel;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = rel) THEN
        PERFORM credit._count_open_orders(rel, -1, false);
        -- Our own triggers on it (a partition's clone of the row trigger goes with detaching).
        FOR t IN SELECT DISTINCT tr.tgname FROM pg_trigger tr
                  WHERE tr.tgrelid = rel AND tr.tgparentid = 0
                    AND tr.tgfoid IN ('credit._guard_row()'::regprocedure, 'credit._guard_truncate()'::regprocedure) LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', t, rel);
        END LOOP;
    END IF;
    DELETE FROM credit.guarded_table x WHERE x.table_name = rel;
END
$$;

CREATE FUNCTION credit._open_orders_of_tree(root_rel regclass) RETURNS TABLE (customer text, amount numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r regclass;
BEGIN
    PERFORM credit._internal('credit._open_orders_of_tree');
    FOR r IN SELECT g.table_name FROM credit.guarded_table g WHERE g.root = root_rel LOOP
        RETURN QUERY EXECUTE credit._open_orders_query(r);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION credit.guard(orders regclass, customer_column name, amount_column name,
                             status_column name DEFAULT NULL, open_statuses text[] DEFAULT NULL,
                             mode text DEFAULT 'reject', hold_value text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel        record;
    statuses   text[] := open_statuses;
    missing    bigint := 0;
    keys       name[];
    g          credit.guarded_table;
    item       record;
    problem    text;
    col        record;
BEGIN
    PERFORM credit._require('admin', 'guarding a table');
    IF mode IS NULL OR mode NOT IN ('reject', 'hold') THEN
        RAISE EXCEPTION 'mode must be ''reject'' or ''hold''' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF orders IS NULL THEN
        RAISE EXCEPTION 'orders must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF customer_column IS NULL OR amount_column IS NULL THEN
        RAISE EXCEPTION 'customer_column and amount_column must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.relowner, c.relispartition, n.nspname INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = orders;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', orders USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.nspname = 'credit' THEN
        RAISE EXCEPTION 'pg_credit''s own tables cannot be guarded' USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_has_role(credit._calling_user(), rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to guard it', orders USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO g FROM credit.guarded_table x WHERE x.table_name = orders;
    IF FOUND THEN
        RAISE EXCEPTION 'table % is already guarded%', orders,
                        CASE WHEN g.root <> orders THEN format(' (as part of %s)', g.root) ELSE '' END
            USING ERRCODE = 'duplicate_object', HINT = 'Run credit.unguard() first to change how it is guarded.';
    END IF;
    SELECT x.table_name INTO g.table_name FROM credit._guard_descendants(orders) dd
      JOIN credit.guarded_table x ON x.table_name = dd.relid LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '% inside table % is guarded by itself', g.table_name, orders USING ERRCODE = 'duplicate_object',
            HINT = format('Run credit.unguard(%L) first; guarding %s then guards it too.', g.table_name::text, orders);
    END IF;
    SELECT dd.relid INTO g.table_name FROM credit._guard_descendants(orders) dd WHERE dd.relkind NOT IN ('r', 'p') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '% inside table % is not a table', g.table_name, orders USING ERRCODE = 'wrong_object_type',
            DETAIL = 'Foreign-table partitions cannot be guarded; their rows would be orders nobody checks.';
    END IF;
    FOR col IN SELECT * FROM (VALUES (customer_column, 'customer'), (amount_column, 'amount'), (status_column, 'status')) v(c, purpose)
                WHERE v.c IS NOT NULL LOOP
        SELECT a.atttypid INTO item FROM pg_attribute a
         WHERE a.attrelid = orders AND a.attname = col.c AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" does not exist in table %', col.c, orders USING ERRCODE = 'undefined_column';
        END IF;
        problem := credit._guard_type_problem(item.atttypid, col.purpose);
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION '% column "%" of table % cannot be guarded', col.purpose, col.c, orders
                USING ERRCODE = 'datatype_mismatch', DETAIL = initcap(left(problem, 1)) || substr(problem, 2) || '.',
                      HINT = CASE col.purpose
                               WHEN 'amount' THEN 'Keep money in numeric (or an integer of minor units).'
                               ELSE 'Guard a column of type text, varchar, an integer, numeric or uuid (a domain over one of them is fine); '
                                    'floating-point, date, time and user-defined types have text forms that depend on settings or on code their owner controls.' END;
        END IF;
    END LOOP;
    IF status_column IS NULL THEN
        IF statuses IS NOT NULL THEN
            RAISE EXCEPTION 'open_statuses needs a status_column' USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        statuses := coalesce(statuses, ARRAY['open']);
        IF cardinality(statuses) = 0 THEN
            RAISE EXCEPTION 'open_statuses must name at least one status' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF array_position(statuses, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'open_statuses must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
        END IF;
    END IF;
    IF mode = 'hold' THEN
        IF status_column IS NULL OR hold_value IS NULL THEN
            RAISE EXCEPTION 'hold mode needs a status_column and a hold_value' USING ERRCODE = 'invalid_parameter_value',
                HINT = 'A held order is saved with its status column set to hold_value (for example ''credit_hold'').';
        END IF;
        IF hold_value = ANY (statuses) THEN
            RAISE EXCEPTION 'hold_value "%" must not be an open status', hold_value USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT array_agg(a.attname ORDER BY k.ord) INTO keys
          FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = orders AND a.attnum = k.attnum
         WHERE i.indrelid = orders AND i.indisprimary;
        IF keys IS NULL THEN
            RAISE EXCEPTION 'table % needs a primary key to be guarded in hold mode', orders USING ERRCODE = 'invalid_table_definition',
                DETAIL = 'Held orders are named by their primary key in credit.order_hold.';
        END IF;
        SELECT format('%s (%s)', a.attname, credit._guard_type_problem(a.atttypid, 'key')) INTO problem
          FROM unnest(keys) k JOIN pg_attribute a ON a.attrelid = orders AND a.attname = k
         WHERE credit._guard_type_problem(a.atttypid, 'key') IS NOT NULL LIMIT 1;
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'the primary key of table % cannot name held orders: %', orders, problem
                USING ERRCODE = 'datatype_mismatch';
        END IF;
    ELSIF hold_value IS NOT NULL THEN
        RAISE EXCEPTION 'hold_value is only for mode ''hold''' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = orders AND tgname IN ('credit_guard', 'credit_guard_truncate')) THEN
        RAISE EXCEPTION 'table % already has a trigger named credit_guard', orders USING ERRCODE = 'duplicate_object';
    END IF;

    -- Writers wait until the table's existing orders are counted.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', orders);
    PERFORM credit._ddl_quiet(true);
    INSERT INTO credit.guarded_table (table_name, customer_column, amount_column, status_column, open_statuses, mode,
                                      hold_value, key_columns, guarded_by, root, kind)
    VALUES (orders, customer_column, amount_column, status_column, statuses, mode, hold_value, keys, session_user,
            orders, 'table')
    RETURNING * INTO g;
    -- On a partitioned table PostgreSQL clones the row trigger onto every partition, now and later.
    EXECUTE format('CREATE TRIGGER credit_guard AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION credit._guard_row(%s)', orders,
                   (SELECT string_agg(quote_literal(a), ', ') FROM unnest(credit._guard_trigger_args(g)) a));
    IF rel.relkind = 'r' THEN
        EXECUTE format('CREATE TRIGGER credit_guard_truncate BEFORE TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION credit._guard_truncate()', orders);
        missing := credit._count_open_orders(orders, 1, false);
    END IF;
    -- Orders already in the table and its partitions or children count from now on, unchecked
    -- (they were accepted before there was a guard).
    FOR item IN SELECT * FROM credit._guard_descendants(orders) x ORDER BY x.relid LOOP
        PERFORM credit._guard_register(item.relid, orders, item.kind, false);
    END LOOP;
    PERFORM credit._ddl_quiet(false);
    SELECT count(DISTINCT o.customer) INTO missing
      FROM credit._open_orders_of_tree(orders) o
     WHERE NOT EXISTS (SELECT 1 FROM credit.account a WHERE a.customer = o.customer);
    IF missing > 0 THEN
        RAISE NOTICE '% customer(s) with open orders in % have no credit account; their orders are not counted', missing, orders
            USING HINT = 'Creating their credit.account rows counts those orders.';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION credit.unguard(orders regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g     credit.guarded_table;
    owner oid;
    r     text;
BEGIN
    PERFORM credit._require('admin', 'switching the guard off');
    IF orders IS NULL THEN
        RAISE EXCEPTION 'orders must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO g FROM credit.guarded_table x WHERE x.table_name = orders;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not guarded', orders USING ERRCODE = 'undefined_object';
    END IF;
    IF g.root <> orders THEN
        RAISE EXCEPTION 'table % is guarded as part of %', orders, g.root USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = format('Unguard %s, or detach %s from it.', g.root, orders);
    END IF;
    SELECT relowner INTO owner FROM pg_class WHERE oid = orders;
    IF NOT pg_has_role(credit._calling_user(), owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to unguard it', orders USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', orders);
    PERFORM credit._ddl_quiet(true);
    FOR r IN SELECT x.table_name FROM credit.guarded_table x WHERE x.root = orders AND x.table_name <> orders
              ORDER BY x.table_name LOOP
        PERFORM credit._guard_unregister(r::regclass);
    END LOOP;
    -- The root's row trigger takes its clones on the partitions with it.
    PERFORM credit._count_open_orders(orders, -1, false);
    FOR r IN SELECT DISTINCT t.tgname FROM pg_trigger t
              WHERE t.tgrelid = orders AND t.tgfoid IN ('credit._guard_row()'::regprocedure, 'credit._guard_truncate()'::regprocedure)
                AND t.tgparentid = 0 LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r, orders);
    END LOOP;
    DELETE FROM credit.guarded_table x WHERE x.table_name = orders;
    PERFORM credit._ddl_quiet(false);
END
$$;

CREATE FUNCTION credit._guard_release(rels oid[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r regclass;
BEGIN
    PERFORM credit._internal('credit._guard_release');
    FOR r IN SELECT g.table_name FROM credit.guarded_table g
              WHERE g.table_name = ANY (rels)
                 OR g.table_name IN (SELECT d.relid FROM unnest(rels) x, credit._guard_descendants(x::regclass) d)
              ORDER BY g.table_name LOOP
        PERFORM credit._count_open_orders(r, -1, false);
        DELETE FROM credit.guarded_table g WHERE g.table_name = r;
    END LOOP;
END
$$;

CREATE FUNCTION credit._guard_follow_rename(rel oid, old_name name, new_name name) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    root_rel regclass;
    g        credit.guarded_table;
BEGIN
    PERFORM credit._internal('credit._guard_follow_rename');
    SELECT x.root INTO root_rel FROM credit.guarded_table x WHERE x.table_name = rel;
    IF NOT FOUND OR NOT EXISTS (
        SELECT 1 FROM credit.guarded_table x
         WHERE x.table_name = root_rel
           AND (old_name IN (x.customer_column, x.amount_column, x.status_column) OR old_name = ANY (x.key_columns))) THEN
        RETURN;
    END IF;
    UPDATE credit.guarded_table x
       SET customer_column = CASE WHEN x.customer_column = old_name THEN new_name ELSE x.customer_column END,
           amount_column = CASE WHEN x.amount_column = old_name THEN new_name ELSE x.amount_column END,
           status_column = CASE WHEN x.status_column = old_name THEN new_name ELSE x.status_column END,
           key_columns = array_replace(x.key_columns, old_name, new_name)
     WHERE x.root = root_rel;
    -- The root's row trigger (and with it the clones on partitions), and every child's own.
    FOR g IN SELECT * FROM credit.guarded_table x WHERE x.root = root_rel AND x.kind <> 'partition' ORDER BY x.table_name LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS credit_guard ON %s', g.table_name);
        EXECUTE format('CREATE TRIGGER credit_guard AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION credit._guard_row(%s)', g.table_name,
                       (SELECT string_agg(quote_literal(a), ', ') FROM unnest(credit._guard_trigger_args(g)) a));
    END LOOP;
END
$$;

CREATE FUNCTION credit._guard_reconcile(before text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g        credit.guarded_table;
    joined   record;
    problems text;
    fatal    boolean;
    admin    boolean;
BEGIN
    PERFORM credit._internal('credit._guard_reconcile');
    -- Left: partitions detached, children no longer inheriting.
    FOR g IN SELECT x.* FROM credit.guarded_table x
              WHERE x.kind <> 'table' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.table_name)
                AND x.table_name NOT IN (SELECT d.relid FROM credit._guard_descendants(x.root) d)
              ORDER BY x.table_name LOOP
        PERFORM credit._guard_unregister(g.table_name);
    END LOOP;
    -- Joined: partitions and children created or attached.
    FOR joined IN SELECT x.table_name AS root, y.relid, y.kind
                    FROM credit.guarded_table x, credit._guard_descendants(x.table_name) y
                   WHERE x.kind = 'table' AND NOT EXISTS (SELECT 1 FROM credit.guarded_table z WHERE z.table_name = y.relid)
                   ORDER BY y.relid LOOP
        PERFORM credit._guard_register(joined.relid, joined.root, joined.kind, true);
    END LOOP;
    SELECT string_agg(p.problem, '; ' ORDER BY p.problem), bool_or(p.fatal) INTO problems, fatal
      FROM credit._guard_problem_list() p
     WHERE p.problem <> ALL (coalesce(before, '{}'));
    IF problems IS NULL OR credit._is_superuser() THEN
        RETURN;
    END IF;
    admin := credit._is_admin();
    IF fatal THEN
        RAISE EXCEPTION 'this command would leave a guarded table without its credit guard'
            USING ERRCODE = CASE WHEN admin THEN 'object_not_in_prerequisite_state' ELSE 'insufficient_privilege' END,
                  DETAIL = problems || '.',
                  HINT = 'Guarded columns keep a type that can be guarded; to change them, a credit admin unguards the table first (credit.unguard).';
    ELSIF NOT admin THEN
        RAISE EXCEPTION 'only a credit admin can switch the credit guard off'
            USING ERRCODE = 'insufficient_privilege', DETAIL = problems || '.',
                  HINT = 'The guard''s triggers stay on below the admin level (docs/privileges.md).';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION credit._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() d
                JOIN credit.guarded_table g ON g.table_name::oid = d.objid
               WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0) THEN
        DELETE FROM credit.guarded_table g USING pg_event_trigger_dropped_objects() d
         WHERE g.table_name::oid = d.objid AND d.classid = 'pg_class'::regclass AND d.objsubid = 0;
        PERFORM credit._recount_exposure();
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION credit._event_publish() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF TG_RELID <> 'credit.event'::regclass THEN
        RAISE EXCEPTION 'credit._event_publish() publishes credit.event only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Rows a restore brings back were published where they happened (and their outbox rows are
    -- restored with them).
    IF NEW.transaction_id <> pg_current_xact_id() OR NEW.happened_at < now() THEN
        RETURN NULL;
    END IF;
    -- Held until the transaction ends, so outbox ids follow commit order.
    LOCK TABLE credit.outbox_lock IN EXCLUSIVE MODE;
    n := nextval('credit.outbox_id_seq');
    INSERT INTO credit.event_chain (seq, event_id, hash)
    VALUES (n, NEW.id, credit._event_hash(coalesce((SELECT c.hash FROM credit.event_chain c ORDER BY c.seq DESC LIMIT 1), ''::bytea), NEW));
    INSERT INTO credit.outbox (id, event_id, kind, customer, payload)
    VALUES (n, NEW.id, NEW.kind, NEW.customer,
            jsonb_build_object('id', n, 'event_id', NEW.id, 'kind', NEW.kind, 'customer', NEW.customer,
                               'happened_at', NEW.happened_at, 'reason', NEW.reason,
                               'before', NEW.before, 'after', NEW.after, 'actor', NEW.actor,
                               'acting_as', NEW.acting_as, 'application_name', NEW.application_name,
                               'transaction_id', NEW.transaction_id::text));
    -- A notification carries at most 8000 bytes: the id and kind, and the customer when short.
    PERFORM pg_notify('credit_events', json_build_object('id', n, 'kind', NEW.kind,
        'customer', CASE WHEN octet_length(NEW.customer) <= 1000 THEN NEW.customer END)::text);
    RETURN NULL;
END
$$;

CREATE FUNCTION credit.verify_audit(anchor_seq bigint DEFAULT NULL, anchor_hash text DEFAULT NULL)
RETURNS TABLE (seq bigint, event_id bigint, problem text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._require('reader', 'verifying the audit chain');
    IF (anchor_seq IS NULL) <> (anchor_hash IS NULL) THEN
        RAISE EXCEPTION 'anchor_seq and anchor_hash go together' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass both, as credit.audit_head() returned them, or neither.';
    END IF;
    IF anchor_hash IS NOT NULL AND anchor_hash !~ '^[0-9a-fA-F]{64}$' THEN
        RAISE EXCEPTION 'anchor_hash must be 64 hexadecimal digits (a sha256 from credit.audit_head())'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH c AS (SELECT c.seq, c.event_id, c.hash, lag(c.hash) OVER (ORDER BY c.seq) AS prev FROM credit.event_chain c)
    SELECT c.seq, c.event_id,
           CASE WHEN e.id IS NULL THEN 'event deleted'
                ELSE 'event changed, or the chain changed before it' END
      FROM c LEFT JOIN credit.event e ON e.id = c.event_id
     WHERE e.id IS NULL OR c.hash <> credit._event_hash(coalesce(c.prev, ''::bytea), e)
    UNION ALL
    SELECT NULL, e.id, 'event not in the chain'
      FROM credit.event e
     WHERE NOT EXISTS (SELECT 1 FROM credit.event_chain x WHERE x.event_id = e.id)
       -- this transaction's own events are chained when it commits
       AND e.transaction_id IS DISTINCT FROM pg_current_xact_id_if_assigned()
    UNION ALL
    SELECT anchor_seq, NULL::bigint,
           CASE WHEN x.seq IS NULL THEN 'anchor missing: the chain was cut at or before it'
                ELSE 'anchor differs: the chain up to it was rewritten' END
      FROM (SELECT 1) one
      LEFT JOIN credit.event_chain x ON x.seq = anchor_seq
     WHERE anchor_seq IS NOT NULL AND (x.seq IS NULL OR x.hash <> decode(anchor_hash, 'hex'))
    ORDER BY 1 NULLS LAST, 2;
END
$$;

CREATE OR REPLACE FUNCTION credit.audit_head()
RETURNS TABLE (seq bigint, event_id bigint, hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('reader', 'reading the audit head');
    SELECT c.seq, c.event_id, encode(c.hash, 'hex') FROM credit.event_chain c ORDER BY c.seq DESC LIMIT 1
$$;

CREATE OR REPLACE FUNCTION credit.outbox_since(after_id bigint, max_rows int DEFAULT 1000)
RETURNS SETOF credit.outbox
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._require('reader', 'reading the outbox');
    IF after_id IS NULL THEN
        RAISE EXCEPTION 'after_id must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass 0 to read from the beginning.';
    END IF;
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY SELECT o.* FROM credit.outbox o WHERE o.id > after_id ORDER BY o.id LIMIT max_rows;
END
$$;

CREATE OR REPLACE FUNCTION credit._set_status(customer text, reason text, new_status text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed boolean;
BEGIN
    PERFORM credit._internal('credit._set_status');
    IF customer IS NULL THEN
        RAISE EXCEPTION 'customer must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF reason IS NULL THEN
        RAISE EXCEPTION 'reason must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(reason) = '' OR btrim(customer) = '' THEN
        RAISE EXCEPTION 'customer and reason must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM credit.account a WHERE a.customer = _set_status.customer FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer "%" has no credit account', customer USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM set_config('credit.reason', reason, true);
    UPDATE credit.account a SET status = new_status
     WHERE a.customer = _set_status.customer AND a.status <> new_status;
    changed := FOUND;
    PERFORM set_config('credit.reason', '', true);
    RETURN changed;
END
$$;

CREATE OR REPLACE FUNCTION credit._account_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    why text := nullif(current_setting('credit.reason', true), '');
    caller name := credit._caller();
    change record;
BEGIN
    IF TG_RELID <> 'credit.account'::regclass THEN
        RAISE EXCEPTION 'credit._account_history() records credit.account only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.customer IS DISTINCT FROM OLD.customer) THEN
        IF EXISTS (SELECT 1 FROM credit.invoice i WHERE i.customer = OLD.customer)
           OR EXISTS (SELECT 1 FROM credit.settlement s WHERE s.customer = OLD.customer) THEN
            RAISE EXCEPTION 'customer "%" has ledger entries', OLD.customer
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = 'An account with invoices, payments, credit notes or write-offs cannot be deleted or renamed.',
                      HINT = 'Set its status to blacklisted or its credit_limit to 0 instead.';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- pg_restore brings accounts back with their original created_at, and their history with
        -- them: a superuser's insert of an account created before this transaction is not new.
        IF NEW.created_at < now() AND (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = credit._calling_user()) THEN
            RETURN NEW;
        END IF;
        INSERT INTO credit.event (kind, customer, reason, after, acting_as)
        VALUES ('account_created', NEW.customer, why,
                jsonb_build_object('credit_limit', NEW.credit_limit, 'terms_days', NEW.terms_days, 'status', NEW.status,
                                   'grade', NEW.grade, 'parent', NEW.parent), caller);
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO credit.event (kind, customer, reason, before, acting_as)
        VALUES ('account_deleted', OLD.customer, why,
                jsonb_build_object('credit_limit', OLD.credit_limit, 'terms_days', OLD.terms_days, 'status', OLD.status), caller);
        RETURN OLD;
    END IF;
    -- A status change that does not come with a new collection_hold_since is a person's: from then
    -- on the hold (if any) is theirs, and collections will not lift it.
    IF NEW.status IS DISTINCT FROM OLD.status AND NEW.collection_hold_since IS NOT DISTINCT FROM OLD.collection_hold_since THEN
        NEW.collection_hold_since := NULL;
    END IF;
    -- One event per group of tracked columns that changed.
    FOR change IN
        SELECT t.kind, jsonb_object_agg(f, to_jsonb(OLD) -> f) AS before, jsonb_object_agg(f, to_jsonb(NEW) -> f) AS after
          FROM (VALUES ('limit_changed', ARRAY['credit_limit']),
                       ('temporary_limit_changed', ARRAY['temporary_limit', 'temporary_limit_until']),
                       ('terms_changed', ARRAY['terms_days']),
                       ('status_changed', ARRAY['status']),
                       ('grade_changed', ARRAY['grade']),
                       ('group_changed', ARRAY['parent'])) t(kind, fields),
               unnest(t.fields) f
         GROUP BY t.kind
    LOOP
        IF change.before IS DISTINCT FROM change.after THEN
            INSERT INTO credit.event (kind, customer, reason, before, after, acting_as)
            VALUES (change.kind, NEW.customer, why, change.before, change.after, caller);
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION credit._request_limit(customer text, new_limit numeric, reason text, valid_until date, source text)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    acct      record;
    max_limit numeric;
    increase  numeric;
    roles     name[];
    pending   bigint;
    req_id    bigint;
    me        name := credit._person();
BEGIN
    PERFORM credit._internal('credit._request_limit');
    IF customer IS NULL OR new_limit IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'customer, new_limit and reason must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(reason) = '' OR btrim(customer) = '' THEN
        RAISE EXCEPTION 'customer and reason must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF new_limit = 'NaN' OR new_limit < 0 THEN
        RAISE EXCEPTION 'new_limit % is not a valid credit limit', new_limit USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A credit limit is a finite amount from 0 (no credit) to 1000000000000000.';
    END IF;
    IF new_limit > 1000000000000000 THEN
        RAISE EXCEPTION 'new_limit % is out of range', new_limit USING ERRCODE = 'numeric_value_out_of_range',
            DETAIL = 'A credit limit is a finite amount from 0 (no credit) to 1000000000000000.';
    END IF;
    IF scale(trim_scale(new_limit)) > 8 THEN
        RAISE EXCEPTION 'new_limit % has more than 8 fractional digits', new_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF valid_until IS NOT NULL AND (NOT isfinite(valid_until) OR valid_until < current_date) THEN
        RAISE EXCEPTION 'valid_until % is not a future date', valid_until USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A temporary limit lasts through valid_until (inclusive), today at the earliest.';
    END IF;
    SELECT a.credit_limit INTO acct FROM credit.account a WHERE a.customer = _request_limit.customer FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer "%" has no credit account', customer USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT e.max_limit INTO max_limit FROM credit.effective_policy(customer) e;
    IF new_limit > max_limit THEN
        RAISE EXCEPTION 'requested limit % of customer "%" is above the policy maximum %', new_limit, customer, max_limit
            USING ERRCODE = 'check_violation', HINT = 'credit.effective_policy(customer) shows the policy in force.';
    END IF;
    SELECT r.id INTO pending FROM credit.limit_request r WHERE r.customer = _request_limit.customer AND r.status = 'pending';
    IF FOUND THEN
        RAISE EXCEPTION 'customer "%" already has a pending limit request (%)', customer, pending
            USING ERRCODE = 'unique_violation', HINT = 'Approve, reject or withdraw (credit.reject by the requester) that request first.';
    END IF;
    increase := new_limit - acct.credit_limit;
    IF increase <= 0 THEN
        roles := '{}';   -- a decrease (or no change) lowers risk: it applies at once
    ELSE
        SELECT r.approver_roles INTO roles FROM credit.approval_rule r
         WHERE r.min_increase <= increase ORDER BY r.min_increase DESC LIMIT 1;
        IF NOT FOUND THEN
            roles := ARRAY[current_setting('pg_credit.admin_role')::name];
        END IF;
    END IF;

    INSERT INTO credit.limit_request (customer, current_limit, requested_limit, valid_until, reason, source, approver_roles, requested_by)
    VALUES (customer, acct.credit_limit, new_limit, valid_until, reason, source, roles, me)
    RETURNING id INTO req_id;
    INSERT INTO credit.event (kind, customer, reason, before, after, acting_as)
    VALUES ('limit_requested', customer, reason, jsonb_build_object('credit_limit', acct.credit_limit),
            jsonb_build_object('request_id', req_id, 'requested_limit', new_limit, 'valid_until', valid_until,
                               'approver_roles', roles, 'source', source), credit._caller());
    IF cardinality(roles) = 0 THEN
        UPDATE credit.limit_request r SET status = 'approved', decided_by = me, decided_at = clock_timestamp(),
               decision_comment = 'no approval needed' WHERE r.id = req_id;
        PERFORM credit._apply_limit(customer, new_limit, valid_until, format('limit request %s: %s', req_id, reason));
    END IF;
    RETURN req_id;
END
$$;

CREATE OR REPLACE FUNCTION credit._lock_pending_request(request_id bigint) RETURNS credit.limit_request
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    req credit.limit_request;
BEGIN
    PERFORM credit._internal('credit._lock_pending_request');
    IF request_id IS NULL THEN
        RAISE EXCEPTION 'request_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO req FROM credit.limit_request r WHERE r.id = request_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'limit request % does not exist', request_id USING ERRCODE = 'undefined_object';
    END IF;
    IF req.status <> 'pending' THEN
        RAISE EXCEPTION 'limit request % is already %', request_id, req.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN req;
END
$$;

CREATE OR REPLACE FUNCTION credit.approve(request_id bigint, comment text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    req    credit.limit_request := credit._lock_pending_request(request_id);
    me     name := credit._person();
    level  int;
    role   name;
    signed int;
BEGIN
    PERFORM credit._require('manager', 'approving a limit request');
    IF me = req.requested_by THEN
        RAISE EXCEPTION 'the requester cannot approve their own limit request (%)', request_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Four eyes: %s requested it; another person must approve each level.', me);
    END IF;
    SELECT a.level INTO signed FROM credit.limit_approval a WHERE a.request_id = req.id AND a.approver = me;
    IF FOUND THEN
        RAISE EXCEPTION '% already signed level % of limit request %', me, signed, request_id
            USING ERRCODE = 'insufficient_privilege', DETAIL = 'Each level must be signed by a different person.';
    END IF;
    level := (SELECT count(*) FROM credit.limit_approval a WHERE a.request_id = req.id) + 1;
    role := req.approver_roles[level];
    PERFORM credit._require_member(role, format('approving level %s of limit request %s', level, request_id));
    INSERT INTO credit.limit_approval (request_id, level, approver, as_role, comment) VALUES (req.id, level, me, role, comment);
    INSERT INTO credit.event (kind, customer, reason, after, acting_as)
    VALUES ('limit_approval_signed', req.customer, comment,
            jsonb_build_object('request_id', req.id, 'level', level, 'of', cardinality(req.approver_roles), 'as_role', role),
            credit._caller());
    IF level < cardinality(req.approver_roles) THEN
        RETURN format('level %s of %s approved', level, cardinality(req.approver_roles));
    END IF;
    UPDATE credit.limit_request r SET status = 'approved', decided_by = me, decided_at = clock_timestamp(), decision_comment = comment
     WHERE r.id = req.id;
    PERFORM credit._apply_limit(req.customer, req.requested_limit, req.valid_until,
                                format('limit request %s: %s', req.id, req.reason));
    RETURN 'approved';
END
$$;

CREATE OR REPLACE FUNCTION credit.reject(request_id bigint, comment text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    req    credit.limit_request := credit._lock_pending_request(request_id);
    me     name := credit._person();
    role   name;
    result text;
BEGIN
    PERFORM credit._require('clerk', 'rejecting or withdrawing a limit request');
    IF comment IS NULL THEN
        RAISE EXCEPTION 'comment must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Say why the request is rejected.';
    END IF;
    IF btrim(comment) = '' THEN
        RAISE EXCEPTION 'comment must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF me = req.requested_by THEN
        result := 'withdrawn';
    ELSE
        role := req.approver_roles[(SELECT count(*) FROM credit.limit_approval a WHERE a.request_id = req.id) + 1];
        PERFORM credit._require_member(role, format('rejecting limit request %s (or its requester, withdrawing it)', request_id));
        result := 'rejected';
    END IF;
    UPDATE credit.limit_request r SET status = result, decided_by = me, decided_at = clock_timestamp(), decision_comment = comment
     WHERE r.id = req.id;
    INSERT INTO credit.event (kind, customer, reason, after, acting_as)
    VALUES ('limit_request_' || result, req.customer, comment, jsonb_build_object('request_id', req.id), credit._caller());
    RETURN result;
END
$$;

CREATE OR REPLACE FUNCTION credit.log_contact(task_id bigint, outcome text, note text DEFAULT NULL,
                                   promised_amount numeric DEFAULT NULL, promised_date date DEFAULT NULL,
                                   contacted_on date DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t credit.collection_task;
    inv credit.invoice;
    on_date date;
    contact_id bigint;
    promise_id bigint;
    keeps_open boolean := outcome IN ('no_answer', 'wrong_contact');
    caller name := credit._caller();
BEGIN
    PERFORM credit._require('clerk', 'logging a contact');
    IF task_id IS NULL OR outcome IS NULL THEN
        RAISE EXCEPTION 'task_id and outcome must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF outcome NOT IN ('sent', 'reached', 'promised', 'refused', 'disputed', 'no_answer', 'wrong_contact') THEN
        RAISE EXCEPTION 'outcome "%" is not valid', outcome USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Valid outcomes: sent, reached, promised, refused, disputed, no_answer, wrong_contact.';
    END IF;
    SELECT * INTO t FROM credit.collection_task ct WHERE ct.id = log_contact.task_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection task % does not exist', task_id USING ERRCODE = 'undefined_object',
            HINT = 'credit.collection_worklist lists open tasks.';
    END IF;
    IF t.status <> 'open' THEN
        RAISE EXCEPTION 'collection task % is %', task_id, t.status USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Contacts are logged on open tasks only.';
    END IF;
    on_date := coalesce(contacted_on, least(t.created_for, current_date));
    IF on_date < t.created_for OR on_date > current_date THEN
        RAISE EXCEPTION 'contacted_on % is outside the task''s time (% to today)', on_date, t.created_for
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF outcome = 'promised' THEN
        IF promised_amount IS NULL OR promised_date IS NULL THEN
            RAISE EXCEPTION 'a promise needs promised_amount and promised_date' USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF NOT (promised_amount > 0 AND promised_amount <= 1000000000000000) THEN   -- NaN fails both
            RAISE EXCEPTION 'promised_amount % must be a positive amount', promised_amount
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF scale(trim_scale(promised_amount)) > 8 THEN
            RAISE EXCEPTION 'promised_amount % has more than 8 fractional digits', promised_amount
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF promised_date < on_date OR promised_date = 'infinity' THEN
            RAISE EXCEPTION 'promised_date % is not on or after the contact date %', promised_date, on_date
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT * INTO inv FROM credit.invoice i WHERE i.id = t.invoice_id;
        IF promised_amount > inv.open_amount THEN
            RAISE EXCEPTION 'promised_amount % exceeds the open amount % of invoice "%"', promised_amount, inv.open_amount, inv.doc_no
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSIF promised_amount IS NOT NULL OR promised_date IS NOT NULL THEN
        RAISE EXCEPTION 'promised_amount and promised_date go with outcome "promised"' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO credit.collection_contact (task_id, customer, invoice_id, outcome, note, contact_date, contacted_by)
    VALUES (t.id, t.customer, t.invoice_id, outcome, note, on_date, caller)
    RETURNING id INTO contact_id;
    IF outcome = 'promised' THEN
        -- A new promise replaces an open one on the same invoice.
        UPDATE credit.promise p SET status = 'broken', decided_on = on_date
         WHERE p.invoice_id = t.invoice_id AND p.status = 'open';
        INSERT INTO credit.promise (task_id, contact_id, customer, invoice_id, amount, made_on, promised_date)
        VALUES (t.id, contact_id, t.customer, t.invoice_id, promised_amount, on_date, promised_date)
        RETURNING id INTO promise_id;
        INSERT INTO credit.event (kind, customer, reason, after, acting_as)
        VALUES ('promise_made', t.customer, note,
                jsonb_build_object('promise_id', promise_id, 'task_id', t.id, 'doc_no', t.doc_no,
                                   'amount', promised_amount, 'promised_date', promised_date), caller);
    END IF;
    IF NOT keeps_open THEN
        UPDATE credit.collection_task ct SET status = 'done', outcome = log_contact.outcome, closed_at = clock_timestamp()
         WHERE ct.id = t.id;
    END IF;
    IF outcome = 'disputed' THEN
        PERFORM credit.dispute(t.customer, t.doc_no, coalesce(nullif(btrim(note), ''), 'disputed when contacted'), on_date);
    END IF;
    RETURN contact_id;
END
$$;

CREATE OR REPLACE FUNCTION credit.run_daily(as_of date DEFAULT CURRENT_DATE)
RETURNS TABLE (step text, changes bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF as_of > CURRENT_DATE OR as_of = '-infinity' THEN
        RAISE EXCEPTION 'as_of % is in the future or not a date', as_of USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM credit._require('manager', 'running the daily job');
    LOCK TABLE credit.daily_lock IN EXCLUSIVE MODE;   -- one daily run at a time
    step := 'temporary_limits_expired';
    changes := credit._expire_temporary_limits(as_of);
    RETURN NEXT;
    step := 'collections';
    SELECT count(*) INTO changes FROM credit.run_collections(as_of);
    RETURN NEXT;
    step := 'regrade';
    SELECT count(*) FILTER (WHERE r.applied OR r.action = 'request') INTO changes FROM credit.regrade(as_of, false) r;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION credit._validate_account() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.customer = '' THEN
        RAISE EXCEPTION 'customer must not be empty' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.credit_limit < 0 OR NEW.credit_limit > 1000000000000000 THEN  -- NaN sorts above every number
        RAISE EXCEPTION 'credit_limit % of customer "%" is out of range', NEW.credit_limit, NEW.customer
            USING ERRCODE = 'check_violation',
                  DETAIL = 'A credit limit is a finite amount from 0 (no credit) to 1000000000000000.';
    END IF;
    IF NEW.grade IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit.grade g WHERE g.grade = NEW.grade AND NOT g.retired) THEN
        RAISE EXCEPTION 'grade "%" of customer "%" does not exist', NEW.grade, NEW.customer
            USING ERRCODE = 'foreign_key_violation', HINT = 'credit.grade lists the grades.';
    END IF;
    IF NEW.terms_days NOT BETWEEN 0 AND 3650 THEN
        RAISE EXCEPTION 'terms_days % of customer "%" is out of range', NEW.terms_days, NEW.customer
            USING ERRCODE = 'check_violation', DETAIL = 'Payment terms are 0 to 3650 days.';
    END IF;
    IF NEW.status NOT IN ('active', 'hold', 'blacklisted') THEN
        RAISE EXCEPTION 'status "%" of customer "%" is not valid', NEW.status, NEW.customer
            USING ERRCODE = 'check_violation', DETAIL = 'Valid statuses: active, hold, blacklisted.';
    END IF;
    IF (NEW.temporary_limit IS NULL) <> (NEW.temporary_limit_until IS NULL) THEN
        RAISE EXCEPTION 'temporary_limit and temporary_limit_until of customer "%" go together', NEW.customer
            USING ERRCODE = 'check_violation', DETAIL = 'Set both (a temporary limit and its last day) or neither.';
    END IF;
    IF NEW.temporary_limit < 0 OR NEW.temporary_limit > 1000000000000000 THEN
        RAISE EXCEPTION 'temporary_limit % of customer "%" is out of range', NEW.temporary_limit, NEW.customer
            USING ERRCODE = 'check_violation';
    END IF;
    -- Amounts are compared exactly, never rounded (credit_core/src/money.rs, MAX_FRACTION_DIGITS).
    IF scale(trim_scale(NEW.credit_limit)) > 8 OR scale(trim_scale(NEW.temporary_limit)) > 8 THEN
        RAISE EXCEPTION 'the credit limit of customer "%" has more than 8 fractional digits', NEW.customer
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(NEW.temporary_limit_until) THEN
        RAISE EXCEPTION 'temporary_limit_until of customer "%" must be a finite date', NEW.customer
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.currency !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'currency "%" of customer "%" is not an ISO 4217 code', NEW.currency, NEW.customer
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION credit.grant_privileges(reader name DEFAULT 'credit_reader', clerk name DEFAULT 'credit_clerk',
                                        manager name DEFAULT 'credit_manager', admin name DEFAULT 'credit_admin')
RETURNS TABLE (level text, role name, functions int, tables int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    levels text[] := ARRAY['reader', 'clerk', 'manager', 'admin'];
    roles name[] := ARRAY[reader, clerk, manager, admin];
    -- What each level may call, besides what the levels below it may.
    fns text[] := ARRAY[
        'aging available_credit average_days_delinquent best_possible_dso cei check count_back_dso dso effective_policy '
        'expected_loss explain_terms exposure on_time_ratio outbox_since paydex receivables_metrics roll_rates score '
        'terms_for verify verify_audit audit_head weighted_days_late weighted_days_late_clamped regrade act_for',
        'post_invoice post_payment post_credit_note log_contact dispute request_limit release_hold cancel_hold '
        'release_fitting_holds record_refusals',
        'write_off blacklist reinstate resolve_dispute run_collections run_daily approve reject',
        'guard unguard rebuild_exposure prune_outbox grant_privileges'];
    -- DBA-managed tables the admin level writes (the rest is written by pg_credit's functions).
    managed text[] := ARRAY['account', 'policy', 'term_tier', 'grade', 'score_weight', 'dunning_level', 'approval_rule',
                            'aging_bucket', 'provision_rate', 'trusted_proxy'];
    i int;
    j int;
    f regprocedure;
    nf int;
    nt int;
BEGIN
    PERFORM credit._require('admin', 'granting pg_credit''s privileges');
    FOR i IN 1..4 LOOP
        IF roles[i] IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = roles[i]) THEN
            RAISE EXCEPTION 'role "%" does not exist', roles[i] USING ERRCODE = 'undefined_object',
                HINT = format('CREATE ROLE %I first, or pass NULL to leave the %s level out.', roles[i], levels[i]);
        END IF;
    END LOOP;
    FOR i IN 1..4 LOOP
        CONTINUE WHEN roles[i] IS NULL;
        nf := 0;
        EXECUTE format('GRANT USAGE ON SCHEMA credit TO %I', roles[i]);
        FOR j IN 1..i LOOP
            FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
                      WHERE p.pronamespace = 'credit'::regnamespace
                        AND (p.proname = ANY (string_to_array(fns[j], ' '))
                             -- the read-only helpers the readable functions and views call
                             OR j = 1 AND p.proname ~ '^_' AND p.provolatile IN ('s', 'i'))
                      ORDER BY 1 LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, roles[i]);   -- aggregates too
                nf := nf + 1;
            END LOOP;
        END LOOP;
        -- Everyone reads everything (BI); the admin level also writes the DBA-managed tables.
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA credit TO %I', roles[i]);
        EXECUTE format('REVOKE SELECT ON credit.access_role, credit.outbox_lock, credit.collections_lock, credit.daily_lock FROM %I',
                       roles[i]);
        SELECT count(*) INTO nt FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'v')
           AND c.relname NOT IN ('access_role', 'outbox_lock', 'collections_lock', 'daily_lock');
        IF levels[i] = 'admin' THEN
            FOR j IN 1..array_length(managed, 1) LOOP
                EXECUTE format('GRANT INSERT, UPDATE, DELETE ON credit.%I TO %I', managed[j], roles[i]);
            END LOOP;
            EXECUTE format('GRANT SELECT ON credit.access_role TO %I', roles[i]);
            EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA credit TO %I', roles[i]);
        END IF;
        INSERT INTO credit.access_role AS a (level, role) VALUES (levels[i], roles[i])
        ON CONFLICT ON CONSTRAINT access_role_pkey DO UPDATE SET role = EXCLUDED.role;
        level := levels[i]; role := roles[i]; functions := nf; tables := nt;
        RETURN NEXT;
    END LOOP;
END
$$;


CREATE VIEW credit.guard_status WITH (security_invoker = true) AS
SELECT g.table_name, g.kind, g.root, g.mode, g.customer_column, g.amount_column, g.status_column, g.open_statuses,
       coalesce((SELECT array_agg(p.problem ORDER BY p.problem) FROM credit._guard_problems(g.table_name) p), '{}') AS problems
  FROM credit.guarded_table g
 ORDER BY g.root::text, g.table_name::text;
CREATE VIEW credit.refusal_recording WITH (security_invoker = true) AS
SELECT * FROM credit._refusal_recording();

-- New functions are not for PUBLIC (finalize.sql revokes everything in a fresh install).
REVOKE ALL ON FUNCTION credit._person(), credit._internal(text), credit._require_member(text, text), credit.act_for(text),
    credit._is_admin(), credit._is_superuser(), credit._count_open_orders(oid, integer, boolean), credit._ddl_quiet(boolean),
    credit._recount_exposure(), credit._refusal_recording(), credit.record_refusals(),
    credit._guard_type_problem(oid, text), credit._guard_trigger_args(credit.guarded_table), credit._guard_problems(oid),
    credit._guard_problem_list(), credit._guard_descendants(regclass), credit._guard_register(regclass, regclass, text, boolean),
    credit._guard_unregister(regclass), credit._open_orders_of_tree(regclass), credit._guard_release(oid[]),
    credit._guard_follow_rename(oid, name, name), credit._guard_reconcile(text[]), credit.verify_audit(bigint, text)
  FROM PUBLIC;

-- Re-protect the tables guarded before the update: partitions and inheritance children are
-- registered with their root's configuration and get the triggers they lack (a partitioned
-- table's own TRUNCATE trigger had nothing to count); then every account is recounted once from
-- the source rows, so the counters follow the new rules (children's orders count, each table
-- counts its own rows).
DO $$
DECLARE
    g credit.guarded_table;
    d record;
BEGIN
    FOR g IN SELECT * FROM credit.guarded_table x WHERE x.kind = 'table' ORDER BY x.table_name LOOP
        FOR d IN SELECT * FROM credit._guard_descendants(g.table_name) y
                  WHERE NOT EXISTS (SELECT 1 FROM credit.guarded_table z WHERE z.table_name = y.relid) ORDER BY y.relid LOOP
            INSERT INTO credit.guarded_table (table_name, customer_column, amount_column, status_column, open_statuses, mode,
                                              hold_value, key_columns, guarded_at, guarded_by, root, kind)
            VALUES (d.relid, g.customer_column, g.amount_column, g.status_column, g.open_statuses, g.mode,
                    g.hold_value, g.key_columns, g.guarded_at, g.guarded_by, g.table_name, d.kind);
            IF d.kind = 'child' THEN
                EXECUTE format('CREATE TRIGGER credit_guard AFTER INSERT OR UPDATE OR DELETE ON %s '
                               'FOR EACH ROW EXECUTE FUNCTION credit._guard_row(%s)', d.relid,
                               (SELECT string_agg(quote_literal(a), ', ') FROM unnest(credit._guard_trigger_args(g)) a));
            END IF;
            IF d.relkind = 'r' THEN
                EXECUTE format('CREATE TRIGGER credit_guard_truncate BEFORE TRUNCATE ON %s '
                               'FOR EACH STATEMENT EXECUTE FUNCTION credit._guard_truncate()', d.relid);
            END IF;
        END LOOP;
        IF (SELECT c.relkind FROM pg_class c WHERE c.oid = g.table_name) = 'p' THEN
            EXECUTE format('DROP TRIGGER IF EXISTS credit_guard_truncate ON %s', g.table_name);
        END IF;
    END LOOP;
    PERFORM credit._recount_exposure();
    IF EXISTS (SELECT 1 FROM credit.guard_status s WHERE s.problems <> '{}') THEN
        RAISE WARNING 'pg_credit: some guarded tables have problems; writes to them are refused until a credit admin repairs them'
            USING DETAIL = (SELECT string_agg(format('%s: %s', s.table_name, array_to_string(s.problems, '; ')), E'\n')
                              FROM credit.guard_status s WHERE s.problems <> '{}'),
                  HINT = 'credit.guard_status lists them; a guarded column of a type that cannot be guarded needs credit.unguard() and a new column.';
    END IF;
END
$$;

-- The DDL watch, last: nothing above is watched.
CREATE FUNCTION credit._guard_ddl_start() RETURNS event_trigger
    LANGUAGE c SECURITY DEFINER AS 'MODULE_PATHNAME', 'credit_guard_ddl_start';
CREATE FUNCTION credit._guard_ddl_rewrite() RETURNS event_trigger
    LANGUAGE c SECURITY DEFINER AS 'MODULE_PATHNAME', 'credit_guard_ddl_rewrite';
CREATE FUNCTION credit._guard_ddl_end() RETURNS event_trigger
    LANGUAGE c SECURITY DEFINER AS 'MODULE_PATHNAME', 'credit_guard_ddl_end';
REVOKE ALL ON FUNCTION credit._guard_ddl_start(), credit._guard_ddl_rewrite(), credit._guard_ddl_end() FROM PUBLIC;
CREATE EVENT TRIGGER credit_guard_ddl_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED', 'ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER',
                 'DROP TRIGGER', 'CREATE RULE', 'ALTER TYPE', 'ALTER DOMAIN', 'DROP TYPE', 'DROP DOMAIN', 'DROP FUNCTION',
                 'ALTER EXTENSION')
    EXECUTE FUNCTION credit._guard_ddl_start();
CREATE EVENT TRIGGER credit_guard_ddl_rewrite ON table_rewrite EXECUTE FUNCTION credit._guard_ddl_rewrite();
CREATE EVENT TRIGGER credit_guard_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER', 'CREATE RULE',
                 'ALTER TYPE', 'ALTER DOMAIN', 'DROP TYPE', 'DROP DOMAIN', 'DROP FUNCTION', 'ALTER EXTENSION')
    EXECUTE FUNCTION credit._guard_ddl_end();
-- As finalize.sql does for every table of a fresh install (it leaves the owner's privileges spelled out).
REVOKE ALL ON TABLE credit.outbox_lock, credit.collections_lock, credit.daily_lock, credit.trusted_proxy, credit.refusal_spool,
    credit.guard_status, credit.refusal_recording FROM PUBLIC;

-- Documentation in the catalog.

COMMENT ON TABLE credit.trusted_proxy IS 'Pooled application logins that may name the person they act for (credit.act_for); admin-managed';
COMMENT ON COLUMN credit.trusted_proxy.role IS 'The login (session user) of the application';
COMMENT ON COLUMN credit.trusted_proxy.note IS 'Free text: which application, who vouches for it';
COMMENT ON FUNCTION credit.act_for(text) IS 'A trusted proxy (credit.trusted_proxy) names the person it acts for until the end of the transaction; levels, approver roles and four eyes count that person';
COMMENT ON TABLE credit.outbox_lock IS 'Internal: its lock serialises outbox numbering (nobody else can take it)';
COMMENT ON TABLE credit.collections_lock IS 'Internal: its lock serialises collection runs (nobody else can take it)';
COMMENT ON TABLE credit.daily_lock IS 'Internal: its lock serialises daily runs (nobody else can take it)';
COMMENT ON TABLE credit.refusal_spool IS 'Internal: how far the refusal recorder has read each spool file (exactly-once recording of refused orders)';
COMMENT ON COLUMN credit.refusal_spool.file IS 'Spool file name';
COMMENT ON COLUMN credit.refusal_spool.consumed IS 'Bytes read and recorded';
COMMENT ON VIEW credit.refusal_recording IS 'Refused orders waiting to be recorded in credit.event, and any that could not be spooled; monitoring reads it';
COMMENT ON COLUMN credit.refusal_recording.pending IS 'Refusals spooled and not yet in credit.event (the recorder moves them within a moment)';
COMMENT ON COLUMN credit.refusal_recording.spool_files IS 'Spool files on disk';
COMMENT ON COLUMN credit.refusal_recording.oldest_pending IS 'When the oldest pending refusal happened';
COMMENT ON COLUMN credit.refusal_recording.recorder_running IS 'Whether this database''s recorder runs now (it starts with the next refusal)';
COMMENT ON COLUMN credit.refusal_recording.unrecorded IS 'Refusals that could not be spooled (a full disk): never in credit.event; each also warned its client';
COMMENT ON FUNCTION credit._refusal_recording() IS 'Internal: state of refusal recording (credit.refusal_recording)';
COMMENT ON VIEW credit.guard_status IS 'Every guarded relation (tables, their partitions and inheritance children) and what, if anything, is wrong with its guard';
COMMENT ON COLUMN credit.guard_status.table_name IS 'The guarded relation';
COMMENT ON COLUMN credit.guard_status.kind IS 'table, partition or child';
COMMENT ON COLUMN credit.guard_status.root IS 'The table credit.guard() was called on';
COMMENT ON COLUMN credit.guard_status.mode IS 'reject or hold';
COMMENT ON COLUMN credit.guard_status.customer_column IS 'Customer column';
COMMENT ON COLUMN credit.guard_status.amount_column IS 'Amount column';
COMMENT ON COLUMN credit.guard_status.status_column IS 'Status column (NULL: every row is open)';
COMMENT ON COLUMN credit.guard_status.open_statuses IS 'Statuses that count as open';
COMMENT ON COLUMN credit.guard_status.problems IS 'What is wrong (empty: the guard is intact); a table with a missing or unguardable column is not counted by credit.verify() and refuses writes';

COMMENT ON FUNCTION credit._is_admin() IS 'Internal: whether the caller is a credit admin';
COMMENT ON FUNCTION credit._is_superuser() IS 'Internal: whether the caller is a superuser';
COMMENT ON FUNCTION credit._person() IS 'Internal: the person behind the call (the login, or the person a trusted proxy named)';
COMMENT ON FUNCTION credit._require_member(text, text) IS 'Internal: 42501 unless the person behind the call is a member of the role (superusers pass; a missing role is named)';
COMMENT ON FUNCTION credit._internal(text) IS 'Internal: 42501 unless called from pg_credit''s own functions';
COMMENT ON FUNCTION credit.act_for(text) IS 'A trusted proxy (credit.trusted_proxy) names the person it acts for until the end of the transaction; levels, approver roles and four eyes count that person';
COMMENT ON FUNCTION credit.verify_audit(bigint, text) IS 'Where the audit chain does not hold (changed, deleted or unchained events; with an anchor from credit.audit_head() kept outside the database, also a chain rewritten or cut up to it); empty when the history is intact';
COMMENT ON FUNCTION credit._guard_row() IS 'Internal: the guard''s row trigger';
COMMENT ON FUNCTION credit._guard_truncate() IS 'Internal: the guard''s TRUNCATE trigger';
COMMENT ON FUNCTION credit.record_refusals() IS 'Records every spooled refusal of this database in credit.event now; returns how many';
COMMENT ON FUNCTION credit._refusal_recording() IS 'Internal: state of refusal recording (credit.refusal_recording)';
COMMENT ON FUNCTION credit._guard_type_problem(oid, text) IS 'Internal: why a column type cannot be guarded for a purpose (NULL: it can)';
COMMENT ON FUNCTION credit._guard_trigger_args(credit.guarded_table) IS 'Internal: the arguments of the guard''s row trigger for a registered configuration';
COMMENT ON FUNCTION credit._guard_problems(oid) IS 'Internal: what is wrong with one guarded relation (none when intact)';
COMMENT ON FUNCTION credit._guard_descendants(regclass) IS 'Internal: partitions or inheritance children of a relation, all levels';
COMMENT ON FUNCTION credit._guard_register(regclass, regclass, text, boolean) IS 'Internal: guards a partition or child of a guarded table, counting its open orders';
COMMENT ON FUNCTION credit._guard_unregister(regclass) IS 'Internal: takes a partition or child out of the guard, releasing its open orders';
COMMENT ON FUNCTION credit._open_orders_of_tree(regclass) IS 'Internal: open orders of a guarded table and everything guarded with it';
COMMENT ON FUNCTION credit._guard_release(oid[]) IS 'Internal: releases the open orders of guarded relations about to be dropped';
COMMENT ON FUNCTION credit._guard_follow_rename(oid, name, name) IS 'Internal: the guard follows a renamed guarded column';
COMMENT ON FUNCTION credit._guard_problem_list() IS 'Internal: every problem of every guard, as text';
COMMENT ON FUNCTION credit._guard_reconcile(text[]) IS 'Internal: after DDL, guards new partitions and children, releases detached ones, refuses a broken guard below the admin level';
COMMENT ON FUNCTION credit._guard_ddl_start() IS 'Internal: DDL watch before DROP and ALTER TABLE';
COMMENT ON FUNCTION credit._guard_ddl_rewrite() IS 'Internal: DDL watch before a guarded table is rewritten';
COMMENT ON FUNCTION credit._guard_ddl_end() IS 'Internal: DDL watch after commands that can touch a guarded table';
COMMENT ON FUNCTION credit._count_open_orders(oid, integer, boolean) IS 'Internal: moves one guarded relation''s open orders into or out of exposure';
COMMENT ON FUNCTION credit._ddl_quiet(boolean) IS 'Internal: quiets the DDL watch while credit.guard() or credit.unguard() change triggers';
COMMENT ON FUNCTION credit._recount_exposure() IS 'Internal: recounts every account after a guarded table was dropped unseen';

COMMENT ON COLUMN credit.event.actor IS 'The person behind the change: the login (session_user), or the person a trusted proxy named (credit.act_for)';
COMMENT ON COLUMN credit.limit_request.requested_by IS 'Who asked: the person (login, or the person a trusted proxy named)';
COMMENT ON COLUMN credit.limit_approval.approver IS 'Who signed: the person (login, or the person a trusted proxy named)';
COMMENT ON COLUMN credit.guarded_table.root IS 'The table credit.guard() was called on (itself for it)';
COMMENT ON COLUMN credit.guarded_table.kind IS 'table (credit.guard was called on it), partition or child (guarded with it, created or attached at any time)';

COMMENT ON TABLE credit.guarded_table IS 'Application tables whose open orders count toward exposure (credit.guard / credit.unguard), with their partitions and inheritance children';
