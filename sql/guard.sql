-- The order guard on application tables: which tables are guarded (credit.guarded_table, the
-- registry), attaching and removing the guard, what open orders the tables hold (verify), and
-- the DDL watch that keeps the guard on whatever the table's owner does to the table.
--
-- The registry holds every relation that carries the guard's triggers: the table credit.guard()
-- was called on (kind 'table'), and — registered by themselves, with the same configuration —
-- its partitions (kind 'partition') and inheritance children (kind 'child'), including those
-- created or attached later. Every leaf counts its own rows (FROM ONLY), so a TRUNCATE, DROP,
-- DETACH or ATTACH of one of them moves exactly its open orders.
--
-- Nothing here runs code a user can define with the extension's rights: SECURITY DEFINER
-- functions pin search_path; guarded columns are limited to built-in types (and domains over
-- them) whose text form is canonical and independent of settings, read through built-in casts
-- under collation "C"; writes into application tables run as the table's owner (src/guard/owner.rs).

-- The registry.
CREATE TABLE credit.guarded_table (
    table_name       regclass PRIMARY KEY,
    customer_column  name NOT NULL,
    amount_column    name NOT NULL,
    status_column    name,
    open_statuses    text[],
    -- reject: an order that fails a credit rule is refused. hold: it is saved with its status set
    -- to hold_value and queued in credit.order_hold.
    mode             text NOT NULL DEFAULT 'reject' CHECK (mode IN ('reject', 'hold')),
    hold_value       text,
    key_columns      name[],   -- the table's primary key, naming held rows
    guarded_at       timestamptz NOT NULL DEFAULT now(),
    guarded_by       name NOT NULL DEFAULT current_user,
    -- The table credit.guard() was called on; a partition or inheritance child of it is
    -- registered by itself (kind 'partition' or 'child') with the same configuration.
    root             regclass NOT NULL,
    kind             text NOT NULL DEFAULT 'table' CHECK (kind IN ('table', 'partition', 'child')),
    CONSTRAINT guarded_table_statuses_need_column CHECK (status_column IS NOT NULL OR open_statuses IS NULL),
    CONSTRAINT guarded_table_hold_needs_status CHECK (mode = 'reject' OR (status_column IS NOT NULL AND hold_value IS NOT NULL AND key_columns IS NOT NULL))
);
CREATE INDEX guarded_table_root_idx ON credit.guarded_table (root);
SELECT pg_catalog.pg_extension_config_dump('credit.guarded_table', '');

-- The guard's row trigger keeps no search_path of its own (a GUC save/restore per row); its SQL
-- qualifies every name, operator and type. Its EXECUTE is public: PostgreSQL checks it when it
-- clones the trigger onto a partition the table's owner creates or attaches. The trigger itself
-- refuses to act on a relation that is not registered with the configuration it carries.
CREATE FUNCTION credit._guard_row() RETURNS trigger LANGUAGE c SECURITY DEFINER AS 'MODULE_PATHNAME', '_guard_row_wrapper';
CREATE FUNCTION credit._guard_truncate() RETURNS trigger LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', '_guard_truncate_wrapper';

-- ---------------------------------------------------------------------------------------------
-- Which column types can be guarded.

-- NULL when a column of type col_type may hold a guarded value of this purpose ('customer',
-- 'amount', 'status', 'key'), else why not. Domains count as their base type (a domain's casts
-- are never used, and its output is its base type's).
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

-- Whether this database runs pg_credit on Citus: credit.account is a distributed table.
CREATE FUNCTION credit.is_distributed() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = 'credit.account'::regclass);
END
$$;

COMMENT ON FUNCTION credit.is_distributed() IS 'Whether pg_credit runs on Citus in this database (credit.distribute() was run)';

-- On a Citus worker, refuses (0A000) an entry point that runs through the coordinator: a call in a
-- statement over a distributed table is sent whole to the shard's worker. The same words as
-- src/pg/citus.rs's refuse_on_worker.
CREATE FUNCTION credit._refuse_on_worker(what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF credit._on_citus_worker() THEN
        RAISE EXCEPTION '% runs through the coordinator, not inside a query on a shard', what USING ERRCODE = 'feature_not_supported',
            DETAIL = 'Citus sent this call to a worker with the statement around it, which reads a distributed table.',
            HINT = 'Pass the arguments as values (psql''s \gset, or a separate query), not as a query over pg_credit''s tables.';
    END IF;
END
$$;

COMMENT ON FUNCTION credit._refuse_on_worker(text) IS 'Internal: on a Citus worker, refuses (0A000) an entry point that runs through the coordinator';

-- Whether this node is a Citus worker of a distributed pg_credit (not the coordinator).
CREATE FUNCTION credit._on_citus_worker() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    coordinator boolean;
BEGIN
    IF NOT credit.is_distributed() THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
    RETURN NOT coordinator;
END
$$;
COMMENT ON FUNCTION credit._on_citus_worker() IS 'Internal: whether this node is a Citus worker of a distributed pg_credit';

-- schema.table of a relation, quoted where needed (credit.guard_registration on Citus).
CREATE FUNCTION credit._qualified_name(rel regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = rel);
COMMENT ON FUNCTION credit._qualified_name(regclass) IS 'Internal: schema.table of a relation, quoted where needed';

-- On a Citus node: the distributed table whose shard relation `rel` is, when that shard has a
-- placement on this node (docs/citus.md); NULL otherwise, and always without Citus. The guard's
-- trigger fires on the shards, and counts a shard's orders as its table's. The placement check
-- keeps a look-alike (a table named like a shard placed elsewhere) from passing for one.
CREATE FUNCTION credit._shard_of(rel oid) RETURNS regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- Through regclass, not a query of pg_class: Citus hides shards from such queries.
    ident  text[] := parse_ident(rel::regclass::text);
    shard  bigint := substring(ident[cardinality(ident)] FROM '_([0-9]{1,18})$')::bigint;
    result regclass;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_placement') IS NULL OR shard IS NULL OR cardinality(ident) <> 2 THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT s.logicalrelid FROM pg_catalog.pg_dist_shard s
               JOIN pg_catalog.pg_class b ON b.oid = s.logicalrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = b.relnamespace
              WHERE s.shardid = $2 AND n.nspname = $1[1] AND b.relname || ''_'' || $2::text = $1[2]
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p
                             WHERE p.shardid = s.shardid AND p.groupid = (SELECT l.groupid FROM pg_catalog.pg_dist_local_group l))'
      INTO result USING ident, shard;
    RETURN result;
END
$$;
COMMENT ON FUNCTION credit._shard_of(oid) IS 'Internal: the Citus distributed table a shard placed on this node belongs to';

-- On a Citus node: for an order shard placed here (credit._shard_of), the shard of `target` (a
-- table distributed with credit.account) with the same hash range when it is placed here too, as
-- 'credit.<table>_<shard id>'; NULL otherwise. Every customer of the order shard has its account
-- row and its held orders there (src/guard/config.rs).
CREATE FUNCTION credit._colocated_shard(rel oid, target regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ident  text[];
    result text;
BEGIN
    IF credit._shard_of(rel) IS NULL THEN
        RETURN NULL;
    END IF;
    ident := parse_ident(rel::regclass::text);
    EXECUTE 'SELECT format(''%I.%I'', n.nspname, b.relname || ''_'' || t.shardid)
               FROM pg_catalog.pg_dist_shard o
               JOIN pg_catalog.pg_dist_shard t ON t.logicalrelid = $2
                AND t.shardminvalue = o.shardminvalue AND t.shardmaxvalue = o.shardmaxvalue
               JOIN pg_catalog.pg_class b ON b.oid = t.logicalrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = b.relnamespace
              WHERE o.shardid = $1 AND n.nspname = ''credit''
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p
                             WHERE p.shardid = t.shardid AND p.groupid = (SELECT l.groupid FROM pg_catalog.pg_dist_local_group l))'
      INTO result USING substring(ident[2] FROM '_([0-9]{1,18})$')::bigint, target;
    IF result IS NULL OR to_regclass(result) IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION credit._colocated_shard(oid, regclass) IS 'Internal: on a Citus node, the shard of one of pg_credit''s distributed tables colocated with an order shard placed here';

CREATE FUNCTION credit._colocated_account_shard(rel oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN credit._colocated_shard(rel, 'credit.account');
COMMENT ON FUNCTION credit._colocated_account_shard(oid) IS 'Internal: on a Citus node, the account shard colocated with an order shard placed here';

-- The arguments the guard's row trigger carries for a configuration: customer column, amount
-- column, status column ('' for none), mode, hold value ('' for none), number of key columns,
-- the key columns, the open statuses. Column names, not numbers: pg_dump/restore keeps them valid.
CREATE FUNCTION credit._guard_trigger_args(g credit.guarded_table) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[g.customer_column::text, g.amount_column::text, coalesce(g.status_column::text, ''), g.mode,
                 coalesce(g.hold_value, ''), coalesce(cardinality(g.key_columns), 0)::text]
           || coalesce(g.key_columns::text[], '{}') || coalesce(g.open_statuses, '{}')
$$;

-- What is wrong with one registered relation, one row per problem (none when it is intact):
-- gone, no longer a table, a guarded column missing or of a type that cannot be guarded, the
-- guard's triggers missing, disabled or pointing at other columns.
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
        SELECT tr.tgenabled, tr.tgtype, tr.tgqual IS NOT NULL AS conditional, count(*) OVER () AS n INTO t FROM pg_trigger tr
         WHERE tr.tgrelid = rel AND tr.tgfoid = 'credit._guard_truncate()'::regprocedure;
        IF NOT FOUND THEN
            problem := 'the guard''s TRUNCATE trigger is missing'; RETURN NEXT;
        ELSIF t.n > 1 THEN
            -- (EXECUTE on it is public, as on the row trigger's function: a second one would
            -- release the table's open orders twice.)
            problem := 'the guard''s TRUNCATE trigger is there more than once'; RETURN NEXT;
        ELSIF t.tgenabled NOT IN ('O', 'A') THEN
            problem := 'the guard''s TRUNCATE trigger is disabled'; RETURN NEXT;
        ELSIF t.tgtype <> (2 | 32) OR t.conditional THEN
            problem := 'the guard''s TRUNCATE trigger does not fire before every TRUNCATE'; RETURN NEXT;
        END IF;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Open orders of guarded tables, as one query over every registered table with rows (or one).
-- Tables with a fatal problem are left out (credit.guard_status shows them): one table's
-- misconfiguration affects only that table.

CREATE FUNCTION credit._open_orders_query(relid oid DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g credit.guarded_table;
    q text;
BEGIN
    PERFORM credit._internal('credit._open_orders_query');
    -- One registry row at a time: on Citus the registry is a reference table, which Citus joins
    -- with no set-returning function.
    FOR g IN SELECT * FROM credit.guarded_table x WHERE relid IS NULL OR x.table_name = relid ORDER BY x.table_name LOOP
        CONTINUE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = g.table_name) IS DISTINCT FROM 'r'
                   OR EXISTS (SELECT 1 FROM credit._guard_problems(g.table_name) p WHERE p.fatal);
        q := concat_ws(' UNION ALL ', q, format(
               'SELECT (t.%I)::pg_catalog.text COLLATE pg_catalog."C" AS customer, (t.%I)::pg_catalog.numeric AS amount '
               'FROM ONLY %s t%s',
               g.customer_column, g.amount_column, g.table_name::text,
               CASE WHEN g.status_column IS NULL THEN ''
                    ELSE format(' WHERE (t.%I)::pg_catalog.text COLLATE pg_catalog."C" OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])',
                                g.status_column, g.open_statuses) END));
    END LOOP;
    RETURN coalesce(
        'SELECT customer, amount FROM (' || q || ') o WHERE customer IS NOT NULL '
        'AND amount OPERATOR(pg_catalog.>=) 0 AND amount OPERATOR(pg_catalog.<=) 1000000000000000',
        'SELECT NULL::pg_catalog.text AS customer, NULL::pg_catalog.numeric AS amount WHERE false');
END
$$;

CREATE FUNCTION credit._actual_exposure(customers text[] DEFAULT NULL)
RETURNS TABLE (customer text, open_ar numeric, unapplied_credit numeric, open_orders numeric, oldest_open_due date)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- Given customers: every source read names them, so only their rows are read (on Citus, on
    -- their nodes alone); none: every account.
    f text := CASE WHEN customers IS NOT NULL THEN 'customer OPERATOR(pg_catalog.=) ANY ($1)' END;
BEGIN
    PERFORM credit._internal('credit._actual_exposure');
    RETURN QUERY EXECUTE format($q$
        WITH alloc_inv AS (SELECT invoice_id, sum(amount) AS s FROM credit.allocation WHERE %2$s GROUP BY invoice_id),
             alloc_set AS (SELECT settlement_id, sum(amount) AS s FROM credit.allocation WHERE %2$s GROUP BY settlement_id),
             ar AS (SELECT i.customer, sum(i.amount - coalesce(ai.s, 0)) AS v
                      FROM credit.invoice i LEFT JOIN alloc_inv ai ON ai.invoice_id = i.id WHERE i.%2$s GROUP BY i.customer),
             un AS (SELECT s.customer, sum(s.amount - coalesce(x.s, 0)) AS v
                      FROM credit.settlement s LEFT JOIN alloc_set x ON x.settlement_id = s.id
                     WHERE s.kind NOT IN ('write_off', 'cancellation') AND s.reversed_on IS NULL AND s.%2$s GROUP BY s.customer),
             oo AS (SELECT o.customer, sum(o.amount) AS v FROM (%1$s) o WHERE o.%2$s GROUP BY o.customer),
             od AS (SELECT i.customer, min(i.due_date) AS d
                      FROM credit.invoice i LEFT JOIN alloc_inv ai ON ai.invoice_id = i.id
                     WHERE i.amount - coalesce(ai.s, 0) > 0 AND NOT i.disputed AND i.%2$s GROUP BY i.customer)
        SELECT a.customer, coalesce(ar.v, 0), coalesce(un.v, 0), coalesce(oo.v, 0), od.d
          FROM credit.account a
          LEFT JOIN od ON od.customer = a.customer
          LEFT JOIN ar ON ar.customer = a.customer
          LEFT JOIN un ON un.customer = a.customer
          LEFT JOIN oo ON oo.customer = a.customer
         WHERE a.%2$s
    $q$, credit._open_orders_query(), coalesce(f, 'customer IS NOT NULL')) USING customers;
END
$$;

-- Every account with its maintained columns recomputed from the source rows; given customers,
-- theirs (a group head's member_exposure from its members', which are read for it).
CREATE FUNCTION credit._recomputed(customers text[] DEFAULT NULL)
RETURNS TABLE (customer text, open_ar numeric, unapplied_credit numeric, open_orders numeric, exposure numeric,
               member_exposure numeric, oldest_open_due date)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- PL/pgSQL: Citus refuses a SQL function's parameters in a query over distributed tables.
    read text[] := customers;
BEGIN
    IF customers IS NOT NULL THEN
        read := customers || ARRAY(SELECT a.customer FROM credit.account a WHERE a.parent = ANY (customers));
    END IF;
    RETURN QUERY
    WITH x AS (SELECT x.*, x.open_ar - x.unapplied_credit + x.open_orders AS exposure FROM credit._actual_exposure(read) x),
         m AS (SELECT a.parent, sum(x.exposure) AS s FROM credit.account a JOIN x ON x.customer = a.customer
                WHERE a.parent IS NOT NULL GROUP BY a.parent)
    SELECT x.customer, x.open_ar, x.unapplied_credit, x.open_orders, x.exposure, coalesce(m.s, 0), x.oldest_open_due
      FROM x LEFT JOIN m ON m.parent = x.customer
     WHERE customers IS NULL OR x.customer = ANY (customers);
END
$$;

CREATE FUNCTION credit.verify()
RETURNS TABLE (customer text,
               stored_exposure numeric, actual_exposure numeric,
               stored_open_ar numeric, actual_open_ar numeric,
               stored_unapplied_credit numeric, actual_unapplied_credit numeric,
               stored_open_orders numeric, actual_open_orders numeric,
               stored_member_exposure numeric, actual_member_exposure numeric,
               stored_oldest_open_due date, actual_oldest_open_due date)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('reader', 'verifying exposure');
    -- With the fast path, open orders committed but not yet flushed into credit.account are in
    -- shared memory: they count as stored. The first call waits for reservations in flight and
    -- holds new ones off until the transaction ends, so the next statement's snapshot and shared
    -- memory agree.
    SELECT pg_catalog.count(*) FROM credit._fast_path_open_orders();
    SELECT a.customer,
           s.exposure, x.exposure,
           a.open_ar, x.open_ar,
           a.unapplied_credit, x.unapplied_credit,
           s.open_orders, x.open_orders,
           a.member_exposure, x.member_exposure,
           a.oldest_open_due, x.oldest_open_due
      FROM credit.account a
      LEFT JOIN credit._fast_path_open_orders() f ON f.customer = a.customer
      CROSS JOIN LATERAL (SELECT a.exposure + coalesce(f.open_orders, 0) AS exposure,
                                 a.open_orders + coalesce(f.open_orders, 0) AS open_orders) s
      JOIN credit._recomputed() x ON x.customer = a.customer
     WHERE (a.open_ar, a.unapplied_credit, s.open_orders, s.exposure, a.member_exposure, a.oldest_open_due)
           IS DISTINCT FROM (x.open_ar, x.unapplied_credit, x.open_orders, x.exposure, x.member_exposure, x.oldest_open_due)
     ORDER BY a.customer
$$;

-- Every guarded relation and its state; a table with problems (a dropped guarded column, say)
-- is not counted by credit.verify() and refuses writes until an admin repairs or unguards it.
CREATE VIEW credit.guard_status WITH (security_invoker = true) AS
SELECT g.table_name, g.kind, g.root, g.mode, g.customer_column, g.amount_column, g.status_column, g.open_statuses,
       coalesce((SELECT array_agg(p.problem ORDER BY p.problem) FROM credit._guard_problems(g.table_name) p), '{}') AS problems
  FROM credit.guarded_table g
 ORDER BY g.root::text, g.table_name::text;

-- ---------------------------------------------------------------------------------------------
-- Attaching the guard to application tables.

-- The descendants of a relation that belong to its guard: its partitions (all levels), or its
-- inheritance children (all levels), with their kind.
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

-- Registers a partition or inheritance child of a guarded table with the root's configuration,
-- gives it the triggers it does not inherit, and counts its open orders (checked: a table with
-- orders attached later is refused, 23514, when they do not fit).
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

-- Takes one registered relation out of the guard: its open orders leave exposure, its own
-- triggers go (a partition's row trigger goes with its detachment).
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

CREATE FUNCTION credit.guard(orders regclass, customer_column name, amount_column name,
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
    customers  text[];
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
    -- On Citus the guard's trigger runs on the node of each order's shard, against the account
    -- row beside it, and holds orders in the order_hold shard beside it (sql/citus.sql).
    problem := credit._citus_placement_problem(orders, customer_column);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'table % cannot be guarded on Citus: %', orders, problem USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = format('Distribute it by its customer column with the accounts first: SELECT create_distributed_table(%L, %L, colocate_with => ''credit.account'');',
                          orders::text, customer_column::text);
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
    -- Without a correlated subquery: Citus joins its tables with no set-returning function.
    customers := ARRAY(SELECT DISTINCT o.customer FROM credit._open_orders_of_tree(orders) o);
    SELECT cardinality(customers) - count(*) INTO missing FROM credit.account a WHERE a.customer = ANY (customers);
    IF missing > 0 THEN
        RAISE NOTICE '% customer(s) with open orders in % have no credit account; their orders are not counted', missing, orders
            USING HINT = 'Creating their credit.account rows counts those orders.';
    END IF;
END
$$;

-- Open orders of a guarded table and everything registered under it.
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

CREATE FUNCTION credit.unguard(orders regclass) RETURNS void
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

-- ---------------------------------------------------------------------------------------------
-- The DDL watch (src/guard/ddl.rs has the event trigger functions; they call these).

-- Before DROP TABLE / DROP SCHEMA / DROP OWNED: the open orders of every guarded relation the
-- command drops leave exposure while the rows can still be read, and the relations leave the
-- registry. If the command fails, all of it rolls back.
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

-- A guarded column renamed: the guard follows it (the registry and the triggers' arguments), so
-- a new column with the old name never becomes the guarded one.
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

-- Every problem of every guarded relation, and every guard trigger on a relation that is not
-- guarded (made by hand), as 'relation: problem'.
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

-- After every DDL command that can touch a guarded table: partitions and inheritance children
-- created or attached join the guard (their rows counted, checked), detached ones leave it (their
-- rows leave exposure), and no command may break the guard — drop, disable or re-point a
-- trigger, drop or retype a guarded column to a type that cannot be guarded, turn the table into
-- something else, add a guard trigger by hand — unless the caller holds the admin level. Column
-- problems are refused for admins too (they unguard first); superusers are outside the model.
-- Only problems this command brings are refused (`before`: the problems when it started), so a
-- table broken earlier keeps nobody from working on the others.
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
    -- On Citus, the workers' copy follows renamed and moved tables (sql/citus.sql, which
    -- CREATE EXTENSION runs after DDL this watches).
    IF to_regprocedure('credit._sync_guard_registration()') IS NOT NULL THEN
        PERFORM credit._sync_guard_registration();
    END IF;
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

-- A guarded table dropped by a command the DDL watch did not see coming (DROP TYPE ... CASCADE,
-- DROP EXTENSION ... CASCADE): its rows are gone, so exposure is recounted from what is left.
CREATE FUNCTION credit._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- On a Citus worker, a drop another node sends (a shard, a propagated DROP TABLE): that node
    -- watched it (src/pg/citus.rs, command_from_another_node, says who counts).
    IF current_setting('application_name') LIKE 'citus_internal gpid=%' AND credit._on_citus_worker() THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() d
                JOIN credit.guarded_table g ON g.table_name::oid = d.objid
               WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0) THEN
        DELETE FROM credit.guarded_table g USING pg_event_trigger_dropped_objects() d
         WHERE g.table_name::oid = d.objid AND d.classid = 'pg_class'::regclass AND d.objsubid = 0;
        PERFORM credit._recount_exposure();
    END IF;
END
$$;
CREATE EVENT TRIGGER credit_guarded_table_dropped ON sql_drop EXECUTE FUNCTION credit._on_sql_drop();

CREATE FUNCTION credit._guard_ddl_start() RETURNS event_trigger
    LANGUAGE c SECURITY DEFINER AS 'MODULE_PATHNAME', 'credit_guard_ddl_start';
CREATE FUNCTION credit._guard_ddl_rewrite() RETURNS event_trigger
    LANGUAGE c SECURITY DEFINER AS 'MODULE_PATHNAME', 'credit_guard_ddl_rewrite';
CREATE FUNCTION credit._guard_ddl_end() RETURNS event_trigger
    LANGUAGE c SECURITY DEFINER AS 'MODULE_PATHNAME', 'credit_guard_ddl_end';
-- The start trigger sees every command the end trigger sees (it notes the problems there were).
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

-- Refused orders roll back with their transaction; the guard spools them outside it and a
-- recorder moves them into credit.event (src/guard/recording.rs). How far each spool file was read, kept
-- in the same transaction as the events written from it: every spooled refusal once. Tied to
-- this server's files, so not dumped.
CREATE TABLE credit.refusal_spool (
    file      text PRIMARY KEY,
    consumed  bigint NOT NULL DEFAULT 0
);
CREATE VIEW credit.refusal_recording WITH (security_invoker = true) AS
SELECT * FROM credit._refusal_recording();

COMMENT ON TABLE credit.guarded_table IS 'Application tables whose open orders count toward exposure (credit.guard / credit.unguard), with their partitions and inheritance children';
COMMENT ON COLUMN credit.guarded_table.table_name IS 'The guarded table';
COMMENT ON COLUMN credit.guarded_table.customer_column IS 'Column holding the customer (any type; matched by its text form)';
COMMENT ON COLUMN credit.guarded_table.amount_column IS 'Column holding the order amount (numeric or integer)';
COMMENT ON COLUMN credit.guarded_table.status_column IS 'Column holding the order status, or NULL: every row is open';
COMMENT ON COLUMN credit.guarded_table.open_statuses IS 'Statuses that count as open';
COMMENT ON COLUMN credit.guarded_table.mode IS 'reject: refuse orders that fail a credit rule; hold: save them with status hold_value and queue them';
COMMENT ON COLUMN credit.guarded_table.hold_value IS 'Status given to held orders (hold mode)';
COMMENT ON COLUMN credit.guarded_table.key_columns IS 'Primary key naming held rows (hold mode)';
COMMENT ON COLUMN credit.guarded_table.guarded_at IS 'When the guard was attached';
COMMENT ON COLUMN credit.guarded_table.guarded_by IS 'Who attached it';
COMMENT ON COLUMN credit.guarded_table.root IS 'The table credit.guard() was called on (itself for it)';
COMMENT ON COLUMN credit.guarded_table.kind IS 'table (credit.guard was called on it), partition or child (guarded with it, created or attached at any time)';
COMMENT ON FUNCTION credit.guard(regclass, name, name, name, text[], text, text) IS 'Attaches the credit guard to an order table: open orders count toward exposure; an order that fails a credit rule is refused (mode reject, SQLSTATE 23514) or saved with its status set to hold_value and queued in credit.order_hold (mode hold)';
COMMENT ON FUNCTION credit.unguard(regclass) IS 'Removes the credit guard from a table; its open orders stop counting';
COMMENT ON FUNCTION credit.verify() IS 'Customers whose stored exposure differs from a full recomputation from the source rows; empty when consistent';
COMMENT ON FUNCTION credit._guard_row() IS 'Internal: the guard''s row trigger';
COMMENT ON FUNCTION credit._guard_truncate() IS 'Internal: the guard''s TRUNCATE trigger';
COMMENT ON FUNCTION credit._open_orders_query(oid) IS 'Internal: SQL text selecting open orders of guarded tables';
COMMENT ON FUNCTION credit._actual_exposure(text[]) IS 'Internal: exposure recomputed from source rows (every account, or the given customers'')';
COMMENT ON FUNCTION credit._recomputed(text[]) IS 'Internal: every maintained account column recomputed from source rows (every account, or the given customers'')';
COMMENT ON FUNCTION credit._on_sql_drop() IS 'Internal: keeps exposure right when a guarded table is dropped';
COMMENT ON TABLE credit.refusal_spool IS 'Internal: how far the refusal recorder has read each spool file (exactly-once recording of refused orders)';
COMMENT ON COLUMN credit.refusal_spool.file IS 'Spool file name';
COMMENT ON COLUMN credit.refusal_spool.consumed IS 'Bytes read and recorded';
COMMENT ON VIEW credit.refusal_recording IS 'Refused orders waiting to be recorded in credit.event, and any that could not be spooled; monitoring reads it';
COMMENT ON COLUMN credit.refusal_recording.pending IS 'Refusals spooled and not yet in credit.event (the recorder moves them within a moment)';
COMMENT ON COLUMN credit.refusal_recording.spool_files IS 'Spool files on disk';
COMMENT ON COLUMN credit.refusal_recording.oldest_pending IS 'When the oldest pending refusal happened';
COMMENT ON COLUMN credit.refusal_recording.recorder_running IS 'Whether this database''s recorder runs now (it starts with the next refusal)';
COMMENT ON COLUMN credit.refusal_recording.unrecorded IS 'Refusals that could not be spooled (a full disk): never in credit.event; each also warned its client';
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
