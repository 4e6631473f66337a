-- Helpers shared by the regression files (pg_regress runs each file in its own session).
CREATE SCHEMA regress;
-- The SQLSTATE a statement fails with ('ok' when it succeeds). Runs in a subtransaction, so the
-- statement's effects are always rolled back: callers can prove a failure changed nothing.
CREATE FUNCTION regress.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE stmt;
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLSTATE;
    END;
    RETURN 'ok';
END $$;
-- Runs a statement (as a role, when given) in a subtransaction that is always rolled back: the
-- SQLSTATE it fails with, or 'ok'.
CREATE FUNCTION regress.try(stmt text, as_role name DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text;
BEGIN
    BEGIN
        IF as_role IS NOT NULL THEN
            EXECUTE format('SET LOCAL ROLE %I', as_role);
        END IF;
        EXECUTE stmt;
        RAISE EXCEPTION USING ERRCODE = 'P0099';   -- undo whatever it did
    EXCEPTION WHEN OTHERS THEN
        state := CASE WHEN SQLSTATE = 'P0099' THEN 'ok' ELSE SQLSTATE END;
    END;
    RETURN state;
END $$;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
GRANT EXECUTE ON FUNCTION regress.try(text, name) TO PUBLIC;
-- A fingerprint of every table of pg_credit (found in the catalog, so a new table is covered by
-- itself), to show that refused calls change nothing — but for the order_refused events that
-- record refused orders, with their outbox rows and chain links, and the refusal recorder's
-- progress (it records them in the background).
CREATE FUNCTION regress.snapshot() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    part text;
    parts text := '';
    refused text := '(SELECT e.id FROM credit.event e WHERE e.kind = ''order_refused'')';
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'r' ORDER BY c.relname LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x %s', ',', '', t,
                       CASE t WHEN 'credit.event'::regclass THEN 'WHERE x.id NOT IN ' || refused
                              WHEN 'credit.outbox'::regclass THEN 'WHERE x.event_id NOT IN ' || refused
                              WHEN 'credit.event_chain'::regclass THEN 'WHERE x.event_id NOT IN ' || refused
                              WHEN 'credit.refusal_spool'::regclass THEN 'WHERE false'
                              ELSE '' END)
          INTO part;
        parts := parts || t::text || ':' || part || ' ';
    END LOOP;
    RETURN md5(parts);
END $$;
-- Calls generated from the catalog (bad-input, level and attack matrices) need a valid value
-- for every argument: by function and argument name, else by type, from the current test's
-- fixture (regress.fixture rows: customer, doc, disputed_doc, orders, held, role, person). PL/pgSQL
-- with the fixture read first, so that on Citus (tests/citus/sql/citus_entry_points.sql) the
-- look-ups of ids run on the coordinator as queries of their own.
CREATE TABLE regress.fixture (key text PRIMARY KEY, value text NOT NULL);
GRANT SELECT ON regress.fixture TO PUBLIC;
CREATE FUNCTION regress.fx(k text) RETURNS text LANGUAGE sql STABLE AS $$ SELECT value FROM regress.fixture WHERE key = k $$;
CREATE FUNCTION regress.valid_arg(fn name, arg name, typ regtype) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    fx_customer text := regress.fx('customer');
    fx_disputed_doc text := regress.fx('disputed_doc');
    fx_doc text := regress.fx('doc');
    fx_held text := regress.fx('held');
    fx_orders text := regress.fx('orders');
    fx_role text := regress.fx('role');
    fx_person text := regress.fx('person');
BEGIN
    RETURN (SELECT CASE
        WHEN arg = 'customer' THEN quote_literal(fx_customer)
        WHEN arg = 'doc_no' AND fn IN ('post_invoice', 'post_credit_note') THEN quote_literal(fx_customer || '-NEW')
        WHEN arg = 'doc_no' AND fn = 'resolve_dispute' THEN quote_literal(fx_disputed_doc)
        WHEN arg IN ('doc_no', 'apply_to') THEN quote_literal(fx_doc)
        WHEN arg = 'orders' AND fn = 'unguard' THEN quote_literal(fx_held)
        WHEN arg = 'orders' THEN quote_literal(fx_orders)
        WHEN arg IN ('rel', 'relid', 'root_rel') THEN format('%L::regclass', fx_held)
        WHEN arg = 'rels' THEN format('ARRAY[%L::regclass::oid]', fx_held)
        WHEN arg = 'customer_column' THEN quote_literal('customer')
        WHEN arg = 'amount_column' THEN quote_literal('amount')
        WHEN arg = 'status_column' THEN quote_literal('status')
        WHEN arg IN ('old_name', 'new_name') THEN quote_literal('amount')
        WHEN arg = 'open_statuses' THEN quote_literal('{open}')
        WHEN arg = 'mode' AND fn = 'request_confirmation' THEN quote_literal('positive')
        WHEN arg = 'as_of' AND fn = 'request_confirmation' THEN '(current_date - 1)'
        WHEN arg = 'mode' THEN quote_literal('reject')
        WHEN arg = 'lang' THEN quote_literal('en')
        WHEN arg = 'cycle' THEN quote_literal('monthly')
        WHEN arg = 'query' THEN quote_literal('SELECT ''NOBODY''::text AS customer, ''D-1''::text AS doc_no, '
                                              '1::numeric AS amount, current_date AS doc_date, current_date AS due_date')
        WHEN arg = 'settlement_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.settlement
                                          WHERE reversed_on IS NULL AND kind <> 'cancellation')
        WHEN arg = 'confirmation_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.balance_confirmation
                                            WHERE status = 'requested')
        WHEN arg = 'statement_id' AND fn = 'statement_html' THEN (SELECT coalesce(max(id), 0)::text FROM credit.statement)
        WHEN arg = 'statement_id' THEN 'NULL'
        WHEN arg = 'outcome' AND fn = 'courier_report' THEN quote_literal('sent')
        WHEN arg = 'outcome' THEN quote_literal('reached')
        WHEN arg = 'channel' AND fn = 'set_contact' THEN quote_literal('email')
        WHEN arg = 'address' AND fn = 'set_contact' THEN quote_literal('fixture@example.com')
        WHEN arg = 'contact_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.contact)
        WHEN arg = 'delivery_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.delivery)
        WHEN arg = 'courier' THEN quote_literal('regress')
        WHEN arg = 'basis' THEN quote_literal('due')
        WHEN arg IN ('month_days', 'count_back_months') THEN quote_literal('calendar')
        WHEN arg = 'kind' THEN quote_literal('partition')
        WHEN arg = 'purpose' THEN quote_literal('customer')
        WHEN arg = 'level' THEN quote_literal('reader')
        WHEN arg = 'new_status' THEN quote_literal('active')
        WHEN arg = 'source' THEN quote_literal('manual')
        WHEN arg = 'role' THEN quote_literal(fx_role)
        WHEN arg = 'person' THEN quote_literal(fx_person)
        WHEN arg = 'col_type' THEN '''text''::regtype'
        WHEN arg = 'sign' THEN '1'
        WHEN arg IN ('checked', 'on') THEN 'false'
        WHEN arg = 'prev' THEN '''\x''::bytea'
        WHEN arg = 'e' THEN '(SELECT e FROM credit.event e ORDER BY e.id LIMIT 1)'
        WHEN arg = 'g' THEN '(SELECT g FROM credit.guarded_table g ORDER BY g.table_name::text LIMIT 1)'
        WHEN arg = 'task_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.collection_task WHERE status = 'open')
        WHEN arg = 'hold_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.order_hold WHERE status = 'held')
        WHEN arg = 'request_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.limit_request WHERE status = 'pending')
        WHEN arg = 'period_start' THEN quote_literal(current_date - 90)
        WHEN arg = 'documents' THEN quote_literal(ARRAY[fx_doc])
        WHEN arg = 'schedule' THEN (SELECT quote_literal(jsonb_build_array(jsonb_build_object('due_date', current_date + 30,
                                                                                            'amount', i.open_amount)))
                                      FROM credit.invoice i WHERE i.customer = fx_customer AND i.doc_no = fx_doc)
        WHEN arg = 'arrangement_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.arrangement WHERE status = 'active')
        WHEN typ = 'text'::regtype THEN quote_literal('a reason')
        WHEN typ = 'name'::regtype THEN quote_literal('postgres')
        WHEN typ = 'numeric'::regtype THEN '100'
        WHEN typ IN ('integer'::regtype, 'bigint'::regtype) THEN '1'
        WHEN typ = 'date'::regtype THEN 'current_date'
        WHEN typ = 'boolean'::regtype THEN 'true'
        WHEN typ IN ('regclass'::regtype, 'oid'::regtype) THEN format('%L::regclass', fx_orders)
        WHEN typ = 'text[]'::regtype THEN quote_literal('{open}')
        ELSE 'NULL' END || '::' || typ::text);
END
$$;
-- The call of a function with valid values for its arguments without defaults (and, when
-- given, `bad` for argument number `pos`): named notation, positional for aggregates.
CREATE FUNCTION regress.call_of(f regprocedure, pos int DEFAULT NULL, bad text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN p.prokind = 'a' THEN
               format('SELECT credit.%I(%s)', p.proname,
                      (SELECT string_agg(CASE WHEN j = pos THEN bad || '::' || (p.proargtypes[j - 1])::regtype::text
                                              ELSE regress.valid_arg(p.proname, p.proargnames[j], p.proargtypes[j - 1]::regtype) END,
                                         ', ' ORDER BY j) FROM generate_series(1, p.pronargs) j))
           ELSE
               format('SELECT count(*) FROM credit.%I(%s)', p.proname,
                      (SELECT string_agg(CASE WHEN p.proargnames[j] IS NULL THEN '' ELSE format('%I => ', p.proargnames[j]) END
                                         || CASE WHEN j = pos THEN bad || '::' || (p.proargtypes[j - 1])::regtype::text
                                                 ELSE regress.valid_arg(p.proname, p.proargnames[j], p.proargtypes[j - 1]::regtype) END,
                                         ', ' ORDER BY j)
                         FROM generate_series(1, p.pronargs) j
                        WHERE j = pos OR j <= p.pronargs - p.pronargdefaults))
           END
      FROM pg_proc p WHERE p.oid = f
$$;
GRANT EXECUTE ON FUNCTION regress.fx(text), regress.valid_arg(name, name, regtype), regress.call_of(regprocedure, int, text) TO PUBLIC;
-- More documents of a fixture customer, for the functions that take their ids: an invoice of the
-- month before last, a payment, the statements of last month, a balance confirmation request.
CREATE FUNCTION regress.more_documents(c text) RETURNS boolean LANGUAGE sql AS $$
    SELECT credit.post_invoice(c, c || '-OLD', 100, current_date - 60) > 0
       AND credit.post_payment(c, 10, current_date - 1, NULL, c || '-PAY') > 0
       AND (SELECT count(*) FROM credit.statement_run((date_trunc('month', current_date) - interval '1 day')::date)) >= 0
       AND credit.request_confirmation(c, current_date - 2, 'positive') > 0
$$;
-- Refused orders are recorded in the background within a moment; this waits until they are.
CREATE FUNCTION regress.wait_for_refusals() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..800 LOOP
        IF (SELECT r.pending FROM credit.refusal_recording r) = 0 THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.025);
    END LOOP;
    RETURN false;
END $$;
DO $$ BEGIN CREATE ROLE regress_clerk NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT extversion FROM pg_extension WHERE extname = 'pg_credit';
