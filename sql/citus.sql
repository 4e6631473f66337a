-- Citus (docs/citus.md): one call lays pg_credit's tables out on a Citus cluster so that every
-- customer's credit lives on the node that holds its orders. Run on the coordinator, after
-- CREATE EXTENSION citus and pg_credit on every node and citus_add_node for the workers.
--
-- Configuration every node reads (policies, grades, buckets, tiers, the ladder, levels, the
-- guard triggers' registration) becomes reference tables: a copy on every node, written through
-- the coordinator. The per-customer tables the order guard reads and writes (accounts, held
-- orders, credit history) are distributed by customer and colocated, so the guard's trigger on an
-- order shard finds its customer's account row on the same node, in the same transaction, and a
-- shard move carries the row with its orders. Guarded order tables are distributed by their
-- customer column, colocated with credit.account.

-- The tables, by their place on Citus. Everything not listed stays on the coordinator.
CREATE FUNCTION credit._citus_layout() RETURNS TABLE (table_name regclass, layout text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    VALUES
    -- Read by the guard, the account triggers and the privilege checks on every node.
    ('credit.access_role'::regclass, 'reference'), ('credit.trusted_proxy'::regclass, 'reference'),
    ('credit.policy'::regclass, 'reference'), ('credit.grade'::regclass, 'reference'),
    ('credit.term_tier'::regclass, 'reference'), ('credit.terms_window'::regclass, 'reference'),
    ('credit.aging_bucket'::regclass, 'reference'), ('credit.dunning_level'::regclass, 'reference'),
    ('credit.approval_rule'::regclass, 'reference'), ('credit.score_weight'::regclass, 'reference'),
    ('credit.provision_rate'::regclass, 'reference'), ('credit.reference_rate'::regclass, 'reference'),
    ('credit.guard_registration'::regclass, 'reference'),
    -- With their customer's orders.
    ('credit.account'::regclass, 'customer'), ('credit.order_hold'::regclass, 'customer'),
    ('credit.history'::regclass, 'customer'),
    -- The receivables ledger, which postings write under the customer's account row lock.
    ('credit.invoice'::regclass, 'customer'), ('credit.settlement'::regclass, 'customer'),
    ('credit.reversal'::regclass, 'customer'), ('credit.allocation'::regclass, 'customer'),
    -- Collections: the ladder runs on each node over its shards (src/collections/tables.rs).
    ('credit.collection_task'::regclass, 'customer'), ('credit.collection_contact'::regclass, 'customer'),
    ('credit.promise'::regclass, 'customer'), ('credit.invoice_dispute'::regclass, 'customer'),
    ('credit.arrangement'::regclass, 'customer'), ('credit.arrangement_invoice'::regclass, 'customer'),
    ('credit.arrangement_instalment'::regclass, 'customer'),
    -- Limit requests and their signatures, beside the account whose limit they change.
    ('credit.limit_request'::regclass, 'customer'), ('credit.limit_approval'::regclass, 'customer')
$$;

-- What the guard's trigger on an order shard checks its arguments against (src/guard/config.rs):
-- each guarded relation by name, with the arguments credit.guard() gave its trigger. A reference
-- table, so that every node reads it locally. credit.guarded_table itself stays on the
-- coordinator: the DDL watch reads it there while Citus runs ALTER TABLE, when Citus returns no
-- rows from its own tables; and its regclass values are the coordinator's oids.
CREATE TABLE credit.guard_registration (
    qualified_name text PRIMARY KEY,
    trigger_args   text[] NOT NULL,
    table_oid      oid NOT NULL
);
COMMENT ON TABLE credit.guard_registration IS 'On Citus: credit.guarded_table by name, with each guard trigger''s arguments, on every node (kept by pg_credit; empty elsewhere)';
COMMENT ON COLUMN credit.guard_registration.qualified_name IS 'schema.table of the guarded relation';
COMMENT ON COLUMN credit.guard_registration.trigger_args IS 'The arguments of its credit_guard trigger (credit._guard_trigger_args)';
COMMENT ON COLUMN credit.guard_registration.table_oid IS 'Its oid on the coordinator: what credit.order_hold.table_name holds on every node';

-- Rewrites credit.guard_registration from credit.guarded_table, on Citus's coordinator after
-- every change of the registry and after DDL (a renamed table); nothing elsewhere.
CREATE FUNCTION credit._sync_guard_registration() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g           credit.guarded_table;
    coordinator boolean;
BEGIN
    PERFORM credit._internal('credit._sync_guard_registration');
    IF NOT credit.is_distributed() THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
    IF NOT coordinator THEN
        RETURN;
    END IF;
    DELETE FROM credit.guard_registration;
    FOR g IN SELECT * FROM credit.guarded_table x ORDER BY x.table_name LOOP
        INSERT INTO credit.guard_registration (qualified_name, trigger_args, table_oid)
        VALUES (credit._qualified_name(g.table_name), credit._guard_trigger_args(g), g.table_name);
    END LOOP;
END
$$;
COMMENT ON FUNCTION credit._sync_guard_registration() IS 'Internal: on Citus''s coordinator, rewrites credit.guard_registration from credit.guarded_table';

-- Only pg_credit's SECURITY DEFINER functions write credit.guarded_table: this runs as its owner.
CREATE FUNCTION credit._guarded_table_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._sync_guard_registration();
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION credit._guarded_table_changed() IS 'Internal: keeps credit.guard_registration after a change of credit.guarded_table';
CREATE TRIGGER guarded_table_changed AFTER INSERT OR UPDATE OR DELETE ON credit.guarded_table
    FOR EACH STATEMENT EXECUTE FUNCTION credit._guarded_table_changed();

-- How a guarded or to-be-guarded table stands on Citus: NULL when it is distributed by `column`
-- and colocated with credit.account (or when this database is not distributed); otherwise what
-- is wrong, for a message.
CREATE FUNCTION credit._citus_placement_problem(orders regclass, customer_column name) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
BEGIN
    IF NOT credit.is_distributed() THEN
        RETURN NULL;
    END IF;
    SELECT d.partmethod, d.colocationid, column_to_column_name(d.logicalrelid, d.partkey) AS dist_column INTO p
      FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = orders;
    IF NOT FOUND THEN
        RETURN 'it is not a distributed table';
    ELSIF p.partmethod <> 'h' OR p.dist_column IS DISTINCT FROM customer_column::text THEN
        RETURN format('it is not distributed by its customer column %I', customer_column);
    ELSIF p.colocationid <> (SELECT a.colocationid FROM pg_catalog.pg_dist_partition a
                              WHERE a.logicalrelid = 'credit.account'::regclass) THEN
        RETURN 'it is not colocated with credit.account';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION credit.distribute() RETURNS TABLE (table_name regclass, layout text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t      record;
    g      credit.guarded_table;
    args   text;
    key    name[];
    ddl    text[];
    stmt   text;
    failed text;
BEGIN
    PERFORM credit._require('admin', 'laying pg_credit out on Citus');
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'CREATE EXTENSION citus on every node first, and add the workers with citus_add_node().';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'credit.distribute() runs on the coordinator' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF credit.is_distributed() THEN
        RAISE EXCEPTION 'pg_credit is already distributed in this database' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF EXISTS (SELECT 1 FROM credit.account a WHERE a.parent IS NOT NULL) THEN
        RAISE EXCEPTION 'credit groups do not work on Citus' USING ERRCODE = 'feature_not_supported',
            DETAIL = 'Some accounts belong to a credit group; a group''s head may sit on another node than its members'' orders.',
            HINT = 'Take the members out of their groups (UPDATE credit.account SET parent = NULL) first (docs/citus.md).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n WHERE n.shouldhaveshards AND n.isactive AND n.noderole = 'primary') THEN
        RAISE EXCEPTION 'the Citus cluster has no worker to hold shards' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Add workers with citus_add_node() first.';
    END IF;
    -- A table guarded before it was distributed: its open orders are counted already, so it is
    -- distributed without its guard (the copy fires no trigger), and guarded again after.
    FOR g IN SELECT * FROM credit.guarded_table x ORDER BY x.table_name LOOP
        IF g.root <> g.table_name OR g.kind <> 'table' THEN
            RAISE EXCEPTION 'guarded table % has partitions or children', g.root USING ERRCODE = 'feature_not_supported',
                HINT = 'Unguard it first; partitioned tables are distributed by Citus as a whole (docs/citus.md).';
        END IF;
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = g.table_name) THEN
            RAISE EXCEPTION 'guarded table % is distributed already', g.table_name USING ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'Unguard it, run credit.distribute(), then guard it again.';
        END IF;
    END LOOP;

    -- On a server that preloads pg_credit, open orders committed but not yet written into
    -- credit.account go into its rows before they are copied to the shards (on Citus every commit
    -- writes them: docs/citus.md).
    PERFORM credit.flush_open_orders();
    PERFORM credit._ddl_quiet(true);
    FOR t IN SELECT * FROM credit._citus_layout() l WHERE l.layout = 'reference' LOOP
        PERFORM pg_catalog.create_reference_table(t.table_name);
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;
    -- Unique keys of a distributed table include its distribution column; so do foreign keys
    -- between distributed tables: pg_credit's own foreign keys to the ledger, between the
    -- collection tables and from a payment arrangement's invoices and instalments to it are made
    -- again through the customer.
    -- Each worker has these tables too (from CREATE EXTENSION there, without rows); Citus keeps
    -- them as its shells, so they change the same way, first (idempotent: a failed run may be
    -- run again).
    SELECT array_agg(format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', c.conrelid::regclass, c.conname)
                     ORDER BY c.conrelid::regclass::text, c.conname)
      INTO ddl
      FROM pg_catalog.pg_constraint c
     WHERE c.contype = 'f' AND c.connamespace = 'credit'::regnamespace
       AND c.confrelid IN ('credit.invoice'::regclass, 'credit.settlement'::regclass, 'credit.reversal'::regclass,
                           'credit.collection_task'::regclass, 'credit.collection_contact'::regclass,
                           'credit.arrangement'::regclass, 'credit.limit_request'::regclass);
    ddl := coalesce(ddl, '{}') || ARRAY[
        'ALTER TABLE credit.order_hold DROP CONSTRAINT IF EXISTS order_hold_pkey, ADD CONSTRAINT order_hold_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.reversal DROP CONSTRAINT IF EXISTS reversal_settlement_id_key, ADD CONSTRAINT reversal_settlement_id_key UNIQUE (customer, settlement_id)',
        'ALTER TABLE credit.invoice DROP CONSTRAINT IF EXISTS invoice_pkey, ADD CONSTRAINT invoice_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.settlement DROP CONSTRAINT IF EXISTS settlement_pkey, ADD CONSTRAINT settlement_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.reversal DROP CONSTRAINT IF EXISTS reversal_pkey, ADD CONSTRAINT reversal_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.allocation DROP CONSTRAINT IF EXISTS allocation_pkey, ADD CONSTRAINT allocation_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.collection_task DROP CONSTRAINT IF EXISTS collection_task_pkey, ADD CONSTRAINT collection_task_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.collection_contact DROP CONSTRAINT IF EXISTS collection_contact_pkey, ADD CONSTRAINT collection_contact_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.promise DROP CONSTRAINT IF EXISTS promise_pkey, ADD CONSTRAINT promise_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.invoice_dispute DROP CONSTRAINT IF EXISTS invoice_dispute_pkey, ADD CONSTRAINT invoice_dispute_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.arrangement DROP CONSTRAINT IF EXISTS arrangement_pkey, ADD CONSTRAINT arrangement_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.arrangement_invoice DROP CONSTRAINT IF EXISTS arrangement_invoice_pkey, ADD CONSTRAINT arrangement_invoice_pkey PRIMARY KEY (customer, arrangement_id, invoice_id)',
        'ALTER TABLE credit.arrangement_instalment DROP CONSTRAINT IF EXISTS arrangement_instalment_pkey, ADD CONSTRAINT arrangement_instalment_pkey PRIMARY KEY (customer, arrangement_id, instalment)',
        'ALTER TABLE credit.limit_request DROP CONSTRAINT IF EXISTS limit_request_pkey, ADD CONSTRAINT limit_request_pkey PRIMARY KEY (customer, id)',
        'ALTER TABLE credit.limit_approval DROP CONSTRAINT IF EXISTS limit_approval_pkey, ADD CONSTRAINT limit_approval_pkey PRIMARY KEY (customer, request_id, level)',
        -- A person signs a request once: a request has one customer.
        'ALTER TABLE credit.limit_approval DROP CONSTRAINT IF EXISTS limit_approval_one_signature_each, ADD CONSTRAINT limit_approval_one_signature_each UNIQUE (customer, request_id, approver)',
        -- Exactly once per (invoice, level), per broken promise, one open dispute per invoice:
        -- an invoice, a promise and a dispute have one customer.
        'DROP INDEX IF EXISTS credit.collection_task_level_key',
        'CREATE UNIQUE INDEX collection_task_level_key ON credit.collection_task (customer, invoice_id, ladder, level) WHERE level IS NOT NULL',
        'DROP INDEX IF EXISTS credit.collection_task_promise_key',
        'CREATE UNIQUE INDEX collection_task_promise_key ON credit.collection_task (customer, promise_id) WHERE promise_id IS NOT NULL',
        'DROP INDEX IF EXISTS credit.invoice_dispute_open_key',
        'CREATE UNIQUE INDEX invoice_dispute_open_key ON credit.invoice_dispute (customer, invoice_id) WHERE resolved_on IS NULL'];
    FOREACH stmt IN ARRAY ddl LOOP
        EXECUTE stmt;
    END LOOP;
    SELECT string_agg(format('%s: %s', w.nodename || ':' || w.nodeport, w.result), '; ') INTO failed
      FROM pg_catalog.run_command_on_workers(array_to_string(ddl, '; ')) w WHERE NOT w.success;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'the workers'' copies of pg_credit''s tables could not be prepared' USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = failed, HINT = 'pg_credit must be installed on every worker, at the coordinator''s version.';
    END IF;
    -- The shards' rows are copies of rows pg_credit wrote: the copy fires no trigger.
    PERFORM pg_catalog.create_distributed_table('credit.account', 'customer');
    PERFORM pg_catalog.create_distributed_table('credit.order_hold', 'customer', colocate_with => 'credit.account');
    PERFORM pg_catalog.create_distributed_table('credit.history', 'customer', colocate_with => 'credit.account');
    PERFORM pg_catalog.create_distributed_table(x, 'customer', colocate_with => 'credit.account')
       FROM unnest(ARRAY['credit.invoice', 'credit.settlement', 'credit.reversal', 'credit.allocation',
                         'credit.collection_task', 'credit.collection_contact', 'credit.promise',
                         'credit.invoice_dispute', 'credit.arrangement', 'credit.arrangement_invoice',
                         'credit.arrangement_instalment', 'credit.limit_request', 'credit.limit_approval']::regclass[]) x;
    ALTER TABLE credit.reversal ADD CONSTRAINT reversal_customer_settlement_fkey
        FOREIGN KEY (customer, settlement_id) REFERENCES credit.settlement (customer, id);
    ALTER TABLE credit.allocation ADD CONSTRAINT allocation_customer_settlement_fkey
        FOREIGN KEY (customer, settlement_id) REFERENCES credit.settlement (customer, id);
    ALTER TABLE credit.allocation ADD CONSTRAINT allocation_customer_invoice_fkey
        FOREIGN KEY (customer, invoice_id) REFERENCES credit.invoice (customer, id);
    ALTER TABLE credit.allocation ADD CONSTRAINT allocation_customer_reversal_fkey
        FOREIGN KEY (customer, reversal_id) REFERENCES credit.reversal (customer, id);
    ALTER TABLE credit.collection_task ADD CONSTRAINT collection_task_customer_invoice_fkey
        FOREIGN KEY (customer, invoice_id) REFERENCES credit.invoice (customer, id);
    ALTER TABLE credit.invoice_dispute ADD CONSTRAINT invoice_dispute_customer_invoice_fkey
        FOREIGN KEY (customer, invoice_id) REFERENCES credit.invoice (customer, id);
    ALTER TABLE credit.collection_contact ADD CONSTRAINT collection_contact_customer_task_fkey
        FOREIGN KEY (customer, task_id) REFERENCES credit.collection_task (customer, id);
    ALTER TABLE credit.promise ADD CONSTRAINT promise_customer_task_fkey
        FOREIGN KEY (customer, task_id) REFERENCES credit.collection_task (customer, id);
    ALTER TABLE credit.promise ADD CONSTRAINT promise_customer_contact_fkey
        FOREIGN KEY (customer, contact_id) REFERENCES credit.collection_contact (customer, id);
    ALTER TABLE credit.arrangement_invoice ADD CONSTRAINT arrangement_invoice_customer_arrangement_fkey
        FOREIGN KEY (customer, arrangement_id) REFERENCES credit.arrangement (customer, id);
    ALTER TABLE credit.arrangement_invoice ADD CONSTRAINT arrangement_invoice_customer_invoice_fkey
        FOREIGN KEY (customer, invoice_id) REFERENCES credit.invoice (customer, id);
    ALTER TABLE credit.arrangement_instalment ADD CONSTRAINT arrangement_instalment_customer_arrangement_fkey
        FOREIGN KEY (customer, arrangement_id) REFERENCES credit.arrangement (customer, id);
    ALTER TABLE credit.limit_approval ADD CONSTRAINT limit_approval_customer_request_fkey
        FOREIGN KEY (customer, request_id) REFERENCES credit.limit_request (customer, id);
    FOR t IN SELECT * FROM credit._citus_layout() l WHERE l.layout = 'customer' LOOP
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;
    FOR g IN SELECT * FROM credit.guarded_table x ORDER BY x.table_name LOOP
        EXECUTE format('DROP TRIGGER credit_guard ON %s', g.table_name);
        EXECUTE format('DROP TRIGGER IF EXISTS credit_guard_truncate ON %s', g.table_name);
        PERFORM pg_catalog.create_distributed_table(g.table_name, g.customer_column, colocate_with => 'credit.account');
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(g.table_name);
        EXECUTE format('CREATE TRIGGER credit_guard AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION credit._guard_row(%s)', g.table_name,
                       (SELECT string_agg(quote_literal(a), ', ') FROM unnest(credit._guard_trigger_args(g)) a));
        EXECUTE format('CREATE TRIGGER credit_guard_truncate BEFORE TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION credit._guard_truncate()', g.table_name);
    END LOOP;
    -- A statement over many shards runs on one connection per worker, so that all its work on a
    -- worker is one transaction there. Two would each hold the outbox's lock (taken by the events
    -- they record) from PREPARE to COMMIT PREPARED, one waiting for the other: a distributed
    -- deadlock, which Citus resolves by cancelling the statement.
    EXECUTE format('ALTER DATABASE %I SET citus.multi_shard_modify_mode TO sequential', current_database());
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', false);
    -- A credit check naming one customer runs on that customer's node: the coordinator hands the
    -- whole call to it (Citus's function delegation, by the customer argument).
    PERFORM pg_catalog.create_distributed_function(f, 'customer', colocate_with => 'credit.account',
                                                   force_delegation => true)
       FROM unnest(ARRAY['credit.check(text,numeric)', 'credit.exposure(text)',
                         'credit.available_credit(text)']::regprocedure[]) f;
    -- The collectors' worklist reads the coordinator's early warnings and dead letters beside the
    -- distributed tasks: Citus joins the two only when the tasks are read first, by themselves
    -- (joined by customer), and the rest is added on the coordinator. (On one node the view stays
    -- one query, so that a filter on a customer reaches the tasks.)
    CREATE OR REPLACE VIEW credit.collection_worklist WITH (security_invoker = true) AS
    WITH open_tasks AS MATERIALIZED (
        SELECT t.id AS task_id, t.customer, t.doc_no, t.level, t.action, t.channel, t.assigned_to, t.due_on,
               t.invoice_id, i.open_amount, i.due_date, a.exposure, a.grade, a.status AS account_status,
               lc.contacted_at, lc.outcome, lc.contacted_by, p.amount AS promised_amount, p.promised_date
          FROM credit.collection_task t
          JOIN credit.invoice i ON i.customer = t.customer AND i.id = t.invoice_id
          LEFT JOIN credit.account a ON a.customer = t.customer
          LEFT JOIN LATERAL (SELECT c.contacted_at, c.outcome, c.contacted_by FROM credit.collection_contact c
                              WHERE c.customer = t.customer ORDER BY c.contacted_at DESC, c.id DESC LIMIT 1) lc ON true
          LEFT JOIN credit.promise p ON p.customer = t.customer AND p.invoice_id = t.invoice_id AND p.status = 'open'
         WHERE t.status = 'open' AND i.open_amount > 0)
    SELECT x.task_id, x.customer, x.doc_no, x.level, x.action, x.channel, x.assigned_to, x.due_on,
           x.open_amount,
           current_date - x.due_date AS days_past_due,
           x.open_amount * greatest(current_date - x.due_date, 0) AS priority,
           x.exposure, x.grade, x.account_status,
           x.contacted_at AS last_contact_at, x.outcome AS last_contact_outcome, x.contacted_by AS last_contact_by,
           x.promised_amount, x.promised_date,
           credit._invoice_interest(x.invoice_id, current_date) AS interest,
           (SELECT array_agg(w.cause ORDER BY w.cause) FROM credit.risk_warning w
             WHERE w.customer = x.customer AND w.cleared_on IS NULL) AS risk_warnings,
           (SELECT count(*) FROM credit.delivery d WHERE d.customer = x.customer AND d.status = 'dead') AS undelivered
      FROM open_tasks x
     ORDER BY priority DESC, x.open_amount DESC, x.task_id;
    -- Aging and the provision matrix read the ledger on every node (credit._aging_on_citus,
    -- credit._expected_loss_on_citus); the views over them stay.
    -- On the coordinator only: the workers' queries never call it, and Citus would send the
    -- change to them on connections of their own after this transaction's parallel copies.
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    CREATE OR REPLACE FUNCTION credit.aging(as_of date DEFAULT current_date, basis text DEFAULT 'due')
    RETURNS TABLE (customer text, doc_type text, doc_no text, doc_date date, due_date date,
                   open_amount numeric, days integer, bucket text, bucket_position integer)
    LANGUAGE sql STABLE
    AS $body$ SELECT * FROM credit._aging_on_citus($1, $2) $body$;
    CREATE OR REPLACE FUNCTION credit.expected_loss(as_of date DEFAULT current_date)
    RETURNS TABLE (customer text, customer_type text, region text, bucket text, bucket_position integer,
                   gross_amount numeric, loss_rate numeric, expected_loss numeric)
    LANGUAGE sql STABLE
    AS $body$ SELECT * FROM credit._expected_loss_on_citus($1) $body$;
    -- Statements: the ledger's entries and one customer's statement read through PL/pgSQL
    -- (credit._ledger_entries_on_citus, credit._statement_on_citus); a statement run reads the
    -- accounts first (src/statements/mod.rs).
    CREATE OR REPLACE FUNCTION credit._ledger_entries(customer text, from_date date, to_date date)
    RETURNS TABLE (customer text, entry_date date, sort integer, kind text, doc_no text, detail text,
                   debit numeric, credit numeric, applied numeric, document_id bigint)
    LANGUAGE sql STABLE
    AS $body$ SELECT * FROM credit._ledger_entries_on_citus($1, $2, $3) $body$;
    CREATE OR REPLACE FUNCTION credit.statement(customer text, period_start date, period_end date)
    RETURNS TABLE (section text, line bigint, entry_date date, kind text, doc_no text, detail text,
                   debit numeric, credit numeric, applied numeric, balance numeric, due_date date, days integer,
                   bucket text, promised_amount numeric, promised_date date, disputed_since date, currency text)
    LANGUAGE sql STABLE
    AS $body$ SELECT * FROM credit._statement_on_citus($1, $2, $3) $body$;
    PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
    PERFORM credit._sync_guard_registration();
    PERFORM credit._ddl_quiet(false);
    -- Privilege levels granted before: on the workers too.
    PERFORM credit._grants_to_workers();
    RETURN QUERY SELECT l.table_name, l.layout FROM credit._citus_layout() l
                 UNION ALL SELECT x.table_name, 'customer (guarded orders)' FROM credit.guarded_table x;
END
$$;

-- pg_credit's privileges on this node: one row per privilege and grantee (PUBLIC too) on its
-- schema, tables, views, sequences and functions (not on shards), the owner's own left out; by_citus where Citus
-- carries a grant itself (distributed tables, distributed functions, the schema). Named alike on
-- every node (search_path pinned), so that the coordinator compares a worker's with its own.
CREATE FUNCTION credit._privileges_here()
RETURNS TABLE (kind text, object text, privilege text, grantee text, by_citus boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    citus boolean := to_regclass('pg_catalog.pg_dist_object') IS NOT NULL;
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT x.kind, x.object, x.privilege, x.grantee, %s
          FROM (SELECT 'pg_namespace'::regclass AS classid, n.oid AS objid, 'SCHEMA' AS kind, 'credit' AS object,
                       a.privilege_type AS privilege, a.grantee AS grantee_id
                  FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) a
                 WHERE n.oid = 'credit'::regnamespace AND a.grantee <> n.nspowner
                UNION ALL
                SELECT 'pg_class'::regclass, c.oid, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                       c.oid::regclass::text, a.privilege_type, a.grantee
                  FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
                 WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'v', 'S') AND a.grantee <> c.relowner
                UNION ALL
                SELECT 'pg_proc'::regclass, p.oid, 'FUNCTION', p.oid::regprocedure::text, a.privilege_type, a.grantee
                  FROM pg_catalog.pg_proc p CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
                 WHERE p.pronamespace = 'credit'::regnamespace AND a.grantee <> p.proowner) y
         CROSS JOIN LATERAL (SELECT y.kind, y.object, y.privilege,
                                    CASE WHEN y.grantee_id = 0 THEN 'PUBLIC'
                                         ELSE pg_catalog.quote_ident((SELECT r.rolname FROM pg_catalog.pg_roles r
                                                                       WHERE r.oid = y.grantee_id)) END AS grantee) x
         WHERE x.grantee IS NOT NULL
           -- pg_credit's own objects: not the shards Citus keeps in schema credit on a worker.
           AND (y.classid = 'pg_namespace'::regclass
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                            WHERE e.classid = y.classid AND e.objid = y.objid AND e.deptype = 'e'
                              AND e.refclassid = 'pg_extension'::regclass
                              AND e.refobjid = (SELECT x.oid FROM pg_catalog.pg_extension x WHERE x.extname = 'pg_credit')))
        $q$,
        CASE WHEN citus THEN
            'EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o WHERE o.classid = y.classid AND o.objid = y.objid)
             OR EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE y.classid = ''pg_class''::regclass
                                                                        AND d.logicalrelid = y.objid)'
        ELSE 'false' END);
END
$$;
COMMENT ON FUNCTION credit._privileges_here() IS 'Internal: pg_credit''s privileges on this node, one row per privilege and grantee (Citus: the coordinator compares each worker''s with its own)';

-- On a Citus worker, called by the coordinator (credit._privileges_to_workers): makes this node's
-- privileges on pg_credit's objects those the coordinator sent. On objects Citus does not carry
-- grants for, revokes what the coordinator does not have and, if asked, grants what it has; on
-- Citus's own objects (as the coordinator names them: what credit.distribute() distributes in the
-- coordinator's transaction is not yet Citus's here) only reports what the coordinator does not
-- have, for the coordinator to revoke there (Citus then revokes it on every node, shards included).
CREATE FUNCTION credit._match_privileges(wanted jsonb, citus_objects text[], grant_missing boolean) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    extra jsonb := '[]';
    coordinator boolean := true;
BEGIN
    IF to_regproc('pg_catalog.citus_is_coordinator') IS NOT NULL THEN
        EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
    END IF;
    -- Only as the coordinator calls it: a superuser, on a worker.
    IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false)
       OR coordinator THEN
        RAISE EXCEPTION 'credit._match_privileges() runs on a Citus worker, called by the coordinator'
            USING ERRCODE = 'insufficient_privilege', HINT = 'Run SELECT credit.grant_privileges(...) on the coordinator.';
    END IF;
    -- This node's own copies: Citus must not send these statements on.
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    FOR p IN
        SELECT h.kind, h.object, h.privilege, h.grantee, (h.kind || ' ' || h.object) = ANY (citus_objects) AS by_citus
          FROM credit._privileges_here() h
         WHERE NOT EXISTS (SELECT 1 FROM jsonb_to_recordset(wanted) AS w(kind text, object text, privilege text, grantee text)
                            WHERE (w.kind, w.object, w.privilege, w.grantee) = (h.kind, h.object, h.privilege, h.grantee))
         ORDER BY 2, 3, 4
    LOOP
        IF p.by_citus THEN
            extra := extra || jsonb_build_object('kind', p.kind, 'object', p.object, 'privilege', p.privilege,
                                                 'grantee', p.grantee);
        ELSE
            EXECUTE format('REVOKE %s ON %s %s FROM %s', p.privilege, p.kind, p.object, p.grantee);
        END IF;
    END LOOP;
    IF grant_missing THEN
        FOR p IN
            SELECT w.kind, w.object, w.privilege, w.grantee
              FROM jsonb_to_recordset(wanted) AS w(kind text, object text, privilege text, grantee text)
             WHERE (w.kind || ' ' || w.object) <> ALL (citus_objects)
            EXCEPT
            SELECT h.kind, h.object, h.privilege, h.grantee FROM credit._privileges_here() h
             ORDER BY 2, 3, 4
        LOOP
            EXECUTE format('GRANT %s ON %s %s TO %s', p.privilege, p.kind, p.object, p.grantee);
        END LOOP;
    END IF;
    RETURN extra;
END
$$;
COMMENT ON FUNCTION credit._match_privileges(jsonb, text[], boolean) IS 'Internal: on a Citus worker, makes its privileges on pg_credit''s objects the coordinator''s (credit._privileges_to_workers); returns what only the coordinator can revoke';

-- On Citus's coordinator: makes every worker's privileges on pg_credit's schema, tables, views,
-- sequences and functions the coordinator's. Each worker's own copies of them (from CREATE
-- EXTENSION there) are checked when a call runs there as the caller (credit.check handed over
-- whole, a function Citus evaluates on a shard). Citus carries a grant or revoke on what it
-- distributes (tables, distributed functions) to every node, but grants made before
-- credit.distribute() it never carried, and the rest it never carries at all. So: with
-- grant_missing, grants on what Citus distributes are made again here, in this transaction; the
-- rest each worker makes its own, on a connection of its own (credit._match_privileges), and
-- revokes there what the coordinator does not grant. Returns how many privileges the coordinator
-- grants.
CREATE FUNCTION credit._privileges_to_workers(grant_missing boolean) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g      record;
    wanted  jsonb;
    citus_objects text[];
    replies jsonb;
    n       int := 0;
    failed  text;
BEGIN
    -- Only from pg_credit's own SECURITY DEFINER functions (an EXECUTE granted by hand opens nothing).
    IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false) THEN
        RAISE EXCEPTION 'credit._privileges_to_workers() is called by pg_credit''s own functions'
            USING ERRCODE = 'insufficient_privilege', HINT = 'Run SELECT credit.grant_privileges(...) on the coordinator.';
    END IF;
    IF NOT credit.is_distributed() OR credit._on_citus_worker() THEN
        RETURN 0;
    END IF;
    -- The revokes below fire credit_privileges_to_workers again: not twice.
    PERFORM set_config('credit.matching_privileges', 'on', true);
    SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.object, h.privilege, h.grantee), '[]'), count(*)
      INTO wanted, n FROM credit._privileges_here() h;
    -- Citus's own objects in schema credit (with a grant or not).
    SELECT coalesce(array_agg(x.name ORDER BY x.name), '{}') INTO citus_objects
      FROM (SELECT 'SCHEMA credit' AS name
              FROM pg_catalog.pg_dist_object o
             WHERE o.classid = 'pg_namespace'::regclass AND o.objid = 'credit'::regnamespace
            UNION ALL
            SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.oid::regclass::text
              FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'credit'::regnamespace
               AND (EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = c.oid)
                    OR EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o WHERE o.classid = 'pg_class'::regclass AND o.objid = c.oid))
            UNION ALL
            SELECT 'FUNCTION ' || p.oid::regprocedure::text
              FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'credit'::regnamespace
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid)) x;
    IF grant_missing THEN
        FOR g IN SELECT h.* FROM credit._privileges_here() h WHERE h.by_citus ORDER BY h.object, h.privilege, h.grantee LOOP
            -- Citus's own objects: granted again here, Citus carries the grant to every node in
            -- this transaction.
            EXECUTE format('GRANT %s ON %s %s TO %s', g.privilege, g.kind, g.object, g.grantee);
        END LOOP;
    END IF;
    SELECT jsonb_agg(jsonb_build_object('node', w.nodename || ':' || w.nodeport, 'success', w.success, 'result', w.result))
      INTO replies
      FROM pg_catalog.run_command_on_workers(
               format('SELECT credit._match_privileges(%L::jsonb, %L::text[], %L)', wanted, citus_objects, grant_missing)) w;
    SELECT string_agg(format('%s: %s', r.node, r.result), '; ' ORDER BY r.node) INTO failed
      FROM jsonb_to_recordset(coalesce(replies, '[]')) AS r(node text, success boolean, result text) WHERE NOT r.success;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'pg_credit''s privileges could not be made alike on every worker' USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = failed,
            HINT = 'Bring every worker up (every role with a level must exist on every node: Citus creates roles made after it was installed), then run the statement again.';
    END IF;
    -- What a worker grants on Citus's own objects and the coordinator does not: revoked here, and
    -- Citus revokes it on every node.
    FOR g IN
        SELECT DISTINCT e.kind, e.object, e.privilege, e.grantee
          FROM jsonb_to_recordset(coalesce(replies, '[]')) AS r(node text, success boolean, result text)
         CROSS JOIN LATERAL jsonb_to_recordset(r.result::jsonb) AS e(kind text, object text, privilege text, grantee text)
         ORDER BY 2, 3, 4
    LOOP
        EXECUTE format('REVOKE %s ON %s %s FROM %s', g.privilege, g.kind, g.object, g.grantee);
    END LOOP;
    PERFORM set_config('credit.matching_privileges', '', true);
    RETURN n;
END
$$;
COMMENT ON FUNCTION credit._privileges_to_workers(boolean) IS 'Internal: on Citus, makes every worker''s privileges on pg_credit''s objects the coordinator''s (grants too with grant_missing, else revokes only); returns how many privileges the coordinator grants';

CREATE FUNCTION credit._grants_to_workers() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._require('admin', 'granting pg_credit''s privileges on the Citus workers');
    RETURN credit._privileges_to_workers(true);
END
$$;
COMMENT ON FUNCTION credit._grants_to_workers() IS 'Internal: on Citus, makes every worker''s privileges on pg_credit''s objects the coordinator''s, grants and revokes (credit.distribute, credit.grant_privileges); returns how many privileges the coordinator grants';

-- A REVOKE on the coordinator of a distributed database that names pg_credit's objects reaches the
-- workers' own copies at once (Citus carries it only for what it distributes): anyone's REVOKE, as
-- it only takes away there what the coordinator does not grant. Grants reach them through
-- credit.grant_privileges(). In C (src/citus_privileges.rs): only the parse tree says what a
-- REVOKE names. SECURITY DEFINER without a pinned search_path, as the DDL watch's functions:
-- names in the command resolve as the command resolved them; what it runs is fully qualified.
CREATE FUNCTION credit._revokes_to_workers() RETURNS event_trigger
    LANGUAGE c SECURITY DEFINER AS 'MODULE_PATHNAME', 'credit_revokes_to_workers';
COMMENT ON FUNCTION credit._revokes_to_workers() IS 'Internal: on Citus''s coordinator, takes a REVOKE on to every worker''s copies of pg_credit''s objects (event trigger credit_privileges_to_workers)';
CREATE EVENT TRIGGER credit_privileges_to_workers ON ddl_command_end WHEN TAG IN ('REVOKE')
    EXECUTE FUNCTION credit._revokes_to_workers();
COMMENT ON EVENT TRIGGER credit_privileges_to_workers IS 'On Citus''s coordinator: a REVOKE reaches every worker''s copies of pg_credit''s objects (credit._revokes_to_workers)';

COMMENT ON FUNCTION credit._citus_layout() IS 'Internal: pg_credit''s tables on Citus: reference tables, and tables distributed by customer with credit.account';
COMMENT ON FUNCTION credit._citus_placement_problem(regclass, name) IS 'Internal: why a table cannot be guarded on Citus (not distributed by its customer column, not colocated with credit.account); NULL when it can';
COMMENT ON FUNCTION credit.distribute() IS 'Lays pg_credit out on a Citus cluster (run on the coordinator): configuration as reference tables; accounts, held orders, credit history, the ledger, collections and payment arrangements distributed by customer, colocated with the guarded order tables (docs/citus.md)';

-- Aging on Citus (credit.distribute() points credit.aging here). The same documents, amounts and
-- buckets as sql/aging.sql's credit.aging, planned so that Citus can run it on every node over
-- its shards: PL/pgSQL (Citus refuses a SQL function's parameters over distributed tables); the
-- bucket bounds read on the coordinator and passed in (a query on a shard cannot read the
-- reference table through a function); every subquery over the ledger joined through the
-- customer. With of_customer, every table is filtered on that customer as a literal, so that
-- Citus sends the whole query to the customer's node alone (a score reads one customer's aging).
-- On one node credit.aging stays one SQL query that the planner inlines into its caller, so a
-- filter on a customer reaches the ledger's indexes and big reads run in parallel.
CREATE FUNCTION credit._aging_on_citus(as_of date, basis text, of_customer text DEFAULT NULL)
RETURNS TABLE (customer text, doc_type text, doc_no text, doc_date date, due_date date,
               open_amount numeric, days integer, bucket text, bucket_position integer)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    labels text[];
    bounds int[];
    -- ' AND <alias>.customer = <literal>' per table read, or nothing
    only_i text := CASE WHEN of_customer IS NOT NULL THEN format(' AND i.customer = %L', of_customer) ELSE '' END;
    only_st text := replace(only_i, 'i.customer', 'st.customer');
    only_a text := replace(only_i, 'i.customer', 'a.customer');
BEGIN
    PERFORM credit._aging_args(as_of, basis);
    -- A document's bucket: 1 + the number of lower bounds it reaches (credit_core::aging::rank);
    -- the last bound is there so that width_bucket has at least one.
    SELECT array_agg(b.label ORDER BY b.position) INTO labels FROM credit.aging_bucket b WHERE NOT b.retired;
    SELECT coalesce(array_agg(b.lower_days ORDER BY b.position), '{}') || 2147483647 INTO bounds
      FROM credit.aging_bucket b WHERE NOT b.retired AND b.lower_days IS NOT NULL;
    RETURN QUERY EXECUTE format($q$
    SELECT s.customer, s.doc_type, s.doc_no, s.doc_date, s.due_date, s.open_amount, s.days,
           $3[width_bucket(s.days, $4) + 1], width_bucket(s.days, $4) + 1
      FROM (
        -- invoices open today with nothing applied to them after as_of: as they are
        SELECT i.customer, 'invoice'::text AS doc_type, i.doc_no, i.doc_date, i.due_date, i.open_amount,
               $1 - CASE WHEN $2 THEN i.doc_date ELSE i.due_date END AS days
          FROM credit.invoice i
         WHERE i.open_amount > 0 AND i.doc_date <= $1
           AND (i.last_applied_on IS NULL OR i.last_applied_on <= $1) %1$s
        UNION ALL
        -- invoices with money applied after as_of (open or settled today): add it back
        SELECT i.customer, 'invoice'::text, i.doc_no, i.doc_date, i.due_date, i.open_amount + l.later,
               $1 - CASE WHEN $2 THEN i.doc_date ELSE i.due_date END
          FROM credit.invoice i
          JOIN (SELECT a.customer, a.invoice_id, sum(a.amount) AS later FROM credit.allocation a
                 WHERE a.applied_on > $1 %3$s GROUP BY a.customer, a.invoice_id) l
            ON l.customer = i.customer AND l.invoice_id = i.id
         WHERE i.last_applied_on > $1 AND i.doc_date <= $1 %1$s
        UNION ALL
        -- unapplied payments and credit notes: unapplied today and untouched since as_of...
        SELECT st.customer, st.kind, st.doc_no, st.doc_date, NULL::date, -st.unapplied, $1 - st.doc_date
          FROM credit.settlement st
         WHERE st.unapplied > 0 AND st.kind NOT IN ('write_off', 'cancellation') AND st.doc_date <= $1
           AND (st.last_applied_on IS NULL OR st.last_applied_on <= $1) %2$s
        UNION ALL
        -- ...and those applied (or reversed) since: what was unapplied as of as_of (a reversal
        -- after as_of took all of the amount counted until then).
        SELECT st.customer, st.kind, st.doc_no, st.doc_date, NULL::date,
               -(st.unapplied + coalesce(l.later, 0) + CASE WHEN st.reversed_on > $1 THEN st.amount ELSE 0 END),
               $1 - st.doc_date
          FROM credit.settlement st
          LEFT JOIN (SELECT a.customer, a.settlement_id, sum(a.amount) AS later FROM credit.allocation a
                      WHERE a.applied_on > $1 %3$s GROUP BY a.customer, a.settlement_id) l
            ON l.customer = st.customer AND l.settlement_id = st.id
         WHERE st.last_applied_on > $1 AND st.kind NOT IN ('write_off', 'cancellation')
           AND st.doc_date <= $1 %2$s
      ) s
     -- A reversal after as_of can leave nothing open as of as_of on a touched document: no row.
     WHERE s.open_amount <> 0
    $q$, only_i, only_st, only_a)
    USING as_of, basis = 'document', labels, bounds;
END
$$;
COMMENT ON FUNCTION credit._aging_on_citus(date, text, text) IS 'Internal: credit.aging on Citus (credit.distribute() points credit.aging here); of_customer: that customer''s documents alone, read on its node';

-- Statements on Citus (credit.distribute() points credit._ledger_entries and credit.statement
-- here). The ledger's entries as sql/statements.sql's credit._ledger_entries gives them, every
-- join through the customer, in PL/pgSQL (Citus refuses a SQL function's parameters over
-- distributed tables); with a customer, every table filtered on it as a literal, so that Citus
-- sends each part to that customer's node alone.
CREATE FUNCTION credit._ledger_entries_on_citus(of_customer text, from_date date, to_date date)
RETURNS TABLE (customer text, entry_date date, sort integer, kind text, doc_no text, detail text,
               debit numeric, credit numeric, applied numeric, document_id bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- ' AND <alias>.customer = <literal>' per table read, or nothing
    only_i text := CASE WHEN of_customer IS NOT NULL THEN format(' AND i.customer = %L', of_customer) ELSE '' END;
    only_s text := replace(only_i, 'i.customer', 's.customer');
    only_r text := replace(only_i, 'i.customer', 'r.customer');
    only_a text := replace(only_i, 'i.customer', 'a.customer');
BEGIN
    RETURN QUERY EXECUTE format($q$
        -- an invoice's detail: its payment terms ("terms <days>")
        SELECT i.customer, i.doc_date, 1, 'invoice'::text, i.doc_no, 'terms ' || (i.due_date - i.doc_date), i.amount,
               0::numeric, NULL::numeric, i.id
          FROM credit.invoice i
         WHERE i.doc_date BETWEEN $1 AND $2 %1$s
        UNION ALL
        -- payments, credit notes and cancellations count from their own date
        SELECT s.customer, s.doc_date, 2, s.kind, s.doc_no, s.reason, 0::numeric, s.amount, NULL::numeric, s.id
          FROM credit.settlement s
         WHERE s.kind <> 'write_off' AND s.doc_date BETWEEN $1 AND $2 %2$s
        UNION ALL
        -- a write-off counts from the day it took effect on its invoice
        SELECT s.customer, a.applied_on, 2, 'write_off'::text, i.doc_no, s.reason, 0::numeric, a.amount, NULL::numeric, s.id
          FROM credit.settlement s
          JOIN credit.allocation a ON a.customer = s.customer AND a.settlement_id = s.id AND a.reversal_id IS NULL
          JOIN credit.invoice i ON i.customer = a.customer AND i.id = a.invoice_id
         WHERE s.kind = 'write_off' AND a.applied_on BETWEEN $1 AND $2 %2$s
        UNION ALL
        -- a reversal: the customer owes the settlement's amount again from its date (a written-off
        -- invoice's number: its first allocation's, grouped by customer so that each node finds it)
        SELECT r.customer, r.doc_date, 3, s.kind || '_reversal', coalesce(s.doc_no, w.doc_no),
               r.reason, r.amount, 0::numeric, NULL::numeric, r.id
          FROM credit.reversal r
          JOIN credit.settlement s ON s.customer = r.customer AND s.id = r.settlement_id
          LEFT JOIN (SELECT a.customer, a.settlement_id, (array_agg(i.doc_no ORDER BY a.id))[1] AS doc_no
                       FROM credit.allocation a JOIN credit.invoice i ON i.customer = a.customer AND i.id = a.invoice_id
                      WHERE true %4$s
                      GROUP BY a.customer, a.settlement_id) w
            ON w.customer = s.customer AND w.settlement_id = s.id AND s.kind = 'write_off'
         WHERE r.doc_date BETWEEN $1 AND $2 %3$s
        UNION ALL
        -- applications of payments and credit notes to invoices, and their undoing: for the reader
        SELECT s.customer, a.applied_on, 4,
               CASE WHEN a.reversal_id IS NULL THEN 'application' ELSE 'application_reversed' END,
               i.doc_no, s.kind || coalesce(' ' || s.doc_no, ''), 0::numeric, 0::numeric, a.amount, a.id
          FROM credit.allocation a
          JOIN credit.settlement s ON s.customer = a.customer AND s.id = a.settlement_id AND s.kind IN ('payment', 'credit_note')
          JOIN credit.invoice i ON i.customer = a.customer AND i.id = a.invoice_id
         WHERE a.applied_on BETWEEN $1 AND $2 %2$s
    $q$, only_i, only_s, only_r, only_a)
    USING from_date, to_date;
END
$$;
COMMENT ON FUNCTION credit._ledger_entries_on_citus(text, date, date) IS 'Internal: credit._ledger_entries on Citus (credit.distribute() points it here): every join through the customer';

-- One customer's statement on Citus (credit.distribute() points credit.statement here): the same
-- rows, read through PL/pgSQL.
CREATE FUNCTION credit._statement_on_citus(customer text, period_start date, period_end date)
RETURNS TABLE (section text, line bigint, entry_date date, kind text, doc_no text, detail text,
               debit numeric, credit numeric, applied numeric, balance numeric, due_date date, days integer,
               bucket text, promised_amount numeric, promised_date date, disputed_since date, currency text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur text;
BEGIN
    PERFORM credit._statement_args(customer, period_start, period_end);
    SELECT a.currency::text INTO cur FROM credit.account a WHERE a.customer = _statement_on_citus.customer;
    RETURN QUERY
    SELECT r.section, r.line, r.entry_date, r.kind, r.doc_no, r.detail, r.debit, r.credit, r.applied, r.balance,
           r.due_date, r.days, r.bucket, r.promised_amount, r.promised_date, r.disputed_since, cur
      FROM credit._statement_rows(period_end, ARRAY[customer], ARRAY[period_start]) r
     ORDER BY array_position(ARRAY['opening', 'activity', 'closing', 'open_item', 'aging', 'interest'], r.section), r.line;
END
$$;
COMMENT ON FUNCTION credit._statement_on_citus(text, date, date) IS 'Internal: credit.statement on Citus (credit.distribute() points it here)';

-- The provision matrix on Citus (credit.distribute() points credit.expected_loss here): the same
-- rows as sql/aging.sql's credit.expected_loss. Each part is read by itself (the documents' aging
-- on every node, their customers' accounts, the rates), then put together on the coordinator:
-- Citus does not join a distributed table with a function's rows inside a SQL function.
CREATE FUNCTION credit._expected_loss_on_citus(as_of date)
RETURNS TABLE (customer text, customer_type text, region text, bucket text, bucket_position integer,
               gross_amount numeric, loss_rate numeric, expected_loss numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH g AS MATERIALIZED (
        SELECT x.customer, x.bucket, x.bucket_position, sum(x.open_amount) AS gross_amount
          FROM credit._aging_on_citus(as_of, 'due') x
         WHERE x.doc_type = 'invoice'
         GROUP BY x.customer, x.bucket, x.bucket_position),
    accounts AS MATERIALIZED (
        SELECT a.customer, a.customer_type, a.region FROM credit.account a
         WHERE a.customer IN (SELECT g.customer FROM g)),
    rates AS MATERIALIZED (
        SELECT r.bucket, r.customer_type, r.region, r.loss_rate FROM credit.provision_rate r),
    detail AS MATERIALIZED (
        SELECT g.customer, a.customer_type, a.region, g.bucket, g.bucket_position, g.gross_amount,
               (SELECT r.loss_rate FROM rates r
                 WHERE r.bucket = g.bucket
                   AND (r.customer_type IS NULL OR r.customer_type = a.customer_type)
                   AND (r.region IS NULL OR r.region = a.region)
                 ORDER BY (r.customer_type IS NOT NULL) DESC, (r.region IS NOT NULL) DESC
                 LIMIT 1) AS loss_rate
          FROM g JOIN accounts a ON a.customer = g.customer)
    SELECT d.customer, d.customer_type, d.region, d.bucket, d.bucket_position, d.gross_amount,
           d.loss_rate, d.gross_amount * d.loss_rate
      FROM detail d
    UNION ALL
    -- the total: unrounded products summed, rounded once
    SELECT NULL, NULL, NULL, NULL, NULL, sum(d.gross_amount), NULL, round(sum(d.gross_amount * d.loss_rate), 2)
      FROM detail d;
END
$$;
COMMENT ON FUNCTION credit._expected_loss_on_citus(date) IS 'Internal: credit.expected_loss on Citus (credit.distribute() points credit.expected_loss here)';

-- This node's events of some customers (see credit._events_on_citus), as JSON rows, with this
-- node's group (0 without Citus).
CREATE FUNCTION credit._events_here(customers text[], since timestamptz, kinds_before text[])
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    here integer := 0;
    found_events jsonb;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL THEN
        EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO here;
    END IF;
    SELECT coalesce(jsonb_agg(to_jsonb(x) || jsonb_build_object('node', here)), '[]') INTO found_events
      FROM (SELECT e.id, e.customer, e.kind, e.happened_at, e.before, e.after, e.reason, e.actor FROM credit.event e
             WHERE e.customer = ANY (customers)
               AND (e.happened_at >= since OR e.kind = ANY (coalesce(kinds_before, '{}')))) x;
    RETURN jsonb_build_object('node', here, 'events', found_events);
END
$$;
COMMENT ON FUNCTION credit._events_here(text[], timestamptz, text[]) IS 'Internal: this node''s events of some customers since a time (and before it those of some kinds), as JSON, with the node''s group';

-- Events of some customers on every node: on Citus each node records the events of what happened
-- there (an account's changes on the node that holds it; a moved account leaves its older events
-- behind; some events on the coordinator). Those since a time, and before it those of some kinds
-- (NULL: none). This node's own events are read here (this transaction's included), every other
-- node's as the caller (what the caller may read on each node decides; committed ones): in a query
-- Citus routes there over its pooled connections (one that names a value whose credit.account
-- shard the node holds), or, for a node that holds no such shard or lost it meanwhile, over a
-- connection of its own. In the order they happened: time, node group, id. On one node, this
-- node's alone.
CREATE FUNCTION credit._events_on_citus(customers text[], since timestamptz, kinds_before text[] DEFAULT NULL)
RETURNS TABLE (node integer, id bigint, customer text, kind text, happened_at timestamptz, before jsonb,
               after jsonb, reason text, actor text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    got record;
    probe text;
    reply jsonb;
    ok boolean;
    answer text;
    sharded boolean := false;
    here jsonb := credit._events_here(customers, since, kinds_before);
    found_events jsonb := here -> 'events';
BEGIN
    IF to_regclass('pg_catalog.pg_dist_node') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                                 WHERE p.logicalrelid = ''credit.account''::pg_catalog.regclass AND p.partmethod = ''h'')'
           INTO sharded;
        FOR got IN EXECUTE 'SELECT d.groupid, d.nodename, d.nodeport FROM pg_catalog.pg_dist_node d
                             WHERE d.noderole = ''primary'' AND d.isactive AND d.groupid <> $1 ORDER BY d.groupid'
                     USING (here ->> 'node')::integer LOOP
            reply := NULL;
            probe := NULL;
            -- A value whose shard of credit.account this node holds (found among the first numbers).
            IF sharded THEN
                EXECUTE 'SELECT v::text FROM pg_catalog.generate_series(0, 9999) v
                          WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p
                                         WHERE p.groupid = $1 AND p.shardid = pg_catalog.get_shard_id_for_distribution_column(
                                                                                 ''credit.account''::pg_catalog.regclass, v::text))
                          LIMIT 1' INTO probe USING got.groupid;
            END IF;
            IF sharded AND probe IS NOT NULL THEN
                EXECUTE 'SELECT credit._events_here($1, $2, $3) FROM (SELECT count(*) FROM credit.account a WHERE a.customer = $4) x'
                   INTO reply USING customers, since, kinds_before, probe;
                IF (reply ->> 'node')::integer IS DISTINCT FROM got.groupid THEN
                    reply := NULL;  -- the shard moved meanwhile: ask the node directly
                END IF;
            END IF;
            IF reply IS NULL THEN
                SELECT r.success, r.result INTO ok, answer
                  FROM pg_catalog.master_run_on_worker(ARRAY[got.nodename], ARRAY[got.nodeport],
                           ARRAY[format('SELECT credit._events_here(%L::text[], %L::timestamptz, %L::text[])',
                                        customers, since, kinds_before)], false) r;
                IF ok IS NOT TRUE THEN
                    RAISE EXCEPTION 'could not read the events of node group %', got.groupid
                        USING ERRCODE = 'connection_failure', DETAIL = answer;
                END IF;
                reply := answer::jsonb;
            END IF;
            found_events := found_events || (reply -> 'events');
        END LOOP;
    END IF;
    RETURN QUERY
    SELECT e.node, e.id, e.customer, e.kind, e.happened_at, e.before, e.after, e.reason, e.actor
      FROM jsonb_to_recordset(found_events) AS e(node integer, id bigint, customer text, kind text, happened_at timestamptz,
                                                 before jsonb, after jsonb, reason text, actor text)
     ORDER BY e.happened_at, e.node, e.id;
END
$$;
COMMENT ON FUNCTION credit._events_on_citus(text[], timestamptz, text[]) IS 'Internal: the events of some customers on every node (on one node, its own), since a time and before it those of some kinds, in the order they happened';

-- The account events of some customers on every node, for the credit history's backfill
-- (src/history.rs), in the order they happened; a day is counted from 2000-01-01.
CREATE FUNCTION credit._account_events_on_citus(customers text[])
RETURNS TABLE (customer text, day integer, after jsonb, before jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._internal('credit._account_events_on_citus');
    RETURN QUERY
    SELECT e.customer, e.happened_at::date - DATE '2000-01-01', coalesce(e.after, '{}'), coalesce(e.before, '{}')
      FROM credit._events_on_citus(customers, 'infinity', ARRAY['account_created', 'limit_changed',
                                                                'temporary_limit_changed', 'status_changed', 'grade_changed']) e;
END
$$;
COMMENT ON FUNCTION credit._account_events_on_citus(text[]) IS 'Internal: on Citus, the account events of some customers read on every node, in the order they happened (the credit history''s backfill)';

-- Events across nodes. On Citus every node keeps its own credit.event, outbox and audit chain:
-- an order's warning or refusal is recorded on the node that decided it (the refusal recorder of
-- that node spools and records it there). Their global order is (node group, outbox id): outbox
-- ids follow commit order on each node. A node's task of a distributed transaction sends no
-- NOTIFY (sql/audit.sql); the relay below publishes the workers' events from the coordinator.

-- How far credit.relay_events has published each worker's outbox.
CREATE TABLE credit.relay_cursor (
    node_group     integer PRIMARY KEY,
    last_outbox_id bigint NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('credit.relay_cursor', '');
COMMENT ON TABLE credit.relay_cursor IS 'On Citus: how far credit.relay_events has published each worker''s outbox';
COMMENT ON COLUMN credit.relay_cursor.node_group IS 'The worker''s group (pg_dist_node.groupid)';
COMMENT ON COLUMN credit.relay_cursor.last_outbox_id IS 'The last outbox id of that worker published';

-- Publishes the workers' new outbox rows on the coordinator, in their global order (node group,
-- outbox id): each as NOTIFY credit_events with its node (delivered when this transaction
-- commits, with the cursor), and as a row returned. Run it on a schedule (pg_cron) or after a
-- batch; each row is published once. At most max_rows per worker per call.
CREATE FUNCTION credit.relay_events(max_rows integer DEFAULT 1000)
RETURNS TABLE (node_group integer, outbox_id bigint, event_id bigint, kind text, customer text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n           record;
    got         record;
    o           jsonb;
    last        bigint;
    coordinator boolean;
BEGIN
    PERFORM credit._require('admin', 'relaying the events of Citus workers');
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT credit.is_distributed() THEN
        RAISE EXCEPTION 'pg_credit is not distributed in this database' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'On one node every event is announced by NOTIFY credit_events as it commits.';
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
    IF NOT coordinator THEN
        RAISE EXCEPTION 'credit.relay_events() runs on the coordinator' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- One relay at a time: each row is published once, in order.
    LOCK TABLE credit.relay_cursor IN EXCLUSIVE MODE;
    FOR n IN EXECUTE 'SELECT d.groupid, d.nodename, d.nodeport FROM pg_catalog.pg_dist_node d
                       WHERE d.groupid <> 0 AND d.noderole = ''primary'' AND d.isactive ORDER BY d.groupid' LOOP
        last := coalesce((SELECT c.last_outbox_id FROM credit.relay_cursor c WHERE c.node_group = n.groupid), 0);
        EXECUTE 'SELECT r.success, r.result FROM pg_catalog.master_run_on_worker(ARRAY[$1], ARRAY[$2], ARRAY[$3], false) r'
           INTO got
          USING n.nodename, n.nodeport,
                format('SELECT coalesce(json_agg(o ORDER BY o.id), ''[]'') FROM (SELECT x.id, x.event_id, x.kind, x.customer, x.payload '
                       'FROM credit.outbox x WHERE x.id > %s ORDER BY x.id LIMIT %s) o', last, max_rows);
        IF NOT got.success THEN
            RAISE EXCEPTION 'could not read the outbox of worker %:%', n.nodename, n.nodeport
                USING ERRCODE = 'connection_failure', DETAIL = got.result,
                      HINT = 'Nothing was published; the next call starts where this one did.';
        END IF;
        FOR o IN SELECT x FROM jsonb_array_elements(got.result::jsonb) x LOOP
            node_group := n.groupid;
            outbox_id := (o ->> 'id')::bigint;
            event_id := (o ->> 'event_id')::bigint;
            kind := o ->> 'kind';
            customer := o ->> 'customer';
            payload := o -> 'payload';
            PERFORM pg_notify('credit_events', json_build_object('node', node_group, 'id', outbox_id, 'kind', kind,
                'customer', CASE WHEN octet_length(customer) <= 1000 THEN customer END)::text);
            last := outbox_id;
            RETURN NEXT;
        END LOOP;
        INSERT INTO credit.relay_cursor AS c (node_group, last_outbox_id) VALUES (n.groupid, last)
        ON CONFLICT ON CONSTRAINT relay_cursor_pkey DO UPDATE SET last_outbox_id = EXCLUDED.last_outbox_id;
    END LOOP;
END
$$;
COMMENT ON FUNCTION credit.relay_events(integer) IS 'On Citus''s coordinator: publishes the workers'' new outbox rows in their global order (node group, outbox id), as NOTIFY credit_events and as rows; each once';
