-- pg_credit 0.1.0 -> 0.2.0 (UPDATING.md). Applied by ALTER EXTENSION pg_credit UPDATE.
-- Adds the privilege model (credit.access_role, credit._require, credit.grant_privileges), the
-- hash-chained audit (credit.event_chain, credit.verify_audit, credit.audit_head; the existing
-- history is chained in event order), and argument checks; replaces the functions that now check
-- the caller's level. The Rust functions keep their signatures (their new code is in the library).
\echo Use "ALTER EXTENSION pg_credit UPDATE" to load this file. \quit


CREATE TABLE credit.access_role (
    level  text PRIMARY KEY CHECK (level IN ('reader', 'clerk', 'manager', 'admin')),
    role   name NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('credit.access_role', '');

CREATE FUNCTION credit._level_rank(level text) RETURNS int
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN array_position(ARRAY['reader', 'clerk', 'manager', 'admin'], level);

-- Raises 42501 unless the caller (the user outside any SECURITY DEFINER function) is a superuser
-- or a member of the role of this level or a higher one. Before grant_privileges has recorded
-- any role, EXECUTE alone decides.
CREATE FUNCTION credit._require(level text, action text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := credit._calling_user();
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = caller) OR NOT EXISTS (SELECT 1 FROM credit.access_role) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM credit.access_role a JOIN pg_roles r ON r.rolname = a.role
                WHERE credit._level_rank(a.level) >= credit._level_rank(_require.level)
                  AND pg_has_role(caller, r.oid, 'MEMBER')) THEN
        RETURN;
    END IF;
    RAISE EXCEPTION '% needs the % level', action, level USING ERRCODE = 'insufficient_privilege',
        DETAIL = format('Role "%s" is not a member of %s.', (SELECT r.rolname FROM pg_roles r WHERE r.oid = caller),
                        (SELECT string_agg(format('"%s"', a.role), ' or ' ORDER BY credit._level_rank(a.level))
                           FROM credit.access_role a WHERE credit._level_rank(a.level) >= credit._level_rank(_require.level))),
        HINT = 'credit.access_role lists the roles of each level (docs/privileges.md).';
END
$$;

CREATE TABLE credit.event_chain (
    seq       bigint PRIMARY KEY,      -- the event's outbox id: commit order
    event_id  bigint NOT NULL UNIQUE,
    hash      bytea NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('credit.event_chain', '');

CREATE OR REPLACE FUNCTION credit._event_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'credit.% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege',
        DETAIL = 'The credit history records who changed what and why; it is never updated or deleted.';
END
$$;

CREATE TRIGGER event_chain_append_only BEFORE UPDATE OR DELETE ON credit.event_chain
    FOR EACH ROW EXECUTE FUNCTION credit._event_append_only();
CREATE TRIGGER event_chain_no_truncate BEFORE TRUNCATE ON credit.event_chain
    FOR EACH STATEMENT EXECUTE FUNCTION credit._event_append_only();

CREATE FUNCTION credit._event_hash(prev bytea, e credit.event) RETURNS bytea
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN sha256(prev || convert_to(concat_ws(',', e.id::text,
    quote_nullable(to_char(e.happened_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')),
    quote_nullable(e.kind), quote_nullable(e.customer), quote_nullable(e.reason),
    quote_nullable(e.before::text), quote_nullable(e.after::text), quote_nullable(e.actor::text),
    quote_nullable(e.acting_as::text), quote_nullable(e.application_name), e.transaction_id::text), 'UTF8'));

-- The history so far, chained in event order (before any new link: negative positions).
DO $$
DECLARE
    e credit.event;
    h bytea := ''::bytea;
    n bigint := -(SELECT count(*) FROM credit.event);
BEGIN
    FOR e IN SELECT * FROM credit.event ORDER BY id LOOP
        h := credit._event_hash(h, e);
        INSERT INTO credit.event_chain (seq, event_id, hash) VALUES (n, e.id, h);
        n := n + 1;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION credit._event_publish() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    -- Rows a restore brings back were published where they happened (and their outbox rows are
    -- restored with them).
    IF NEW.transaction_id <> pg_current_xact_id() OR NEW.happened_at < now() THEN
        RETURN NULL;
    END IF;
    -- Key: 'pgcr' and 2; held until the transaction ends, so outbox ids follow commit order.
    PERFORM pg_advisory_xact_lock(1885823858, 2);
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

CREATE FUNCTION credit.verify_audit()
RETURNS TABLE (seq bigint, event_id bigint, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    ORDER BY 1 NULLS LAST, 2
$$;

CREATE FUNCTION credit.audit_head()
RETURNS TABLE (seq bigint, event_id bigint, hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.seq, c.event_id, encode(c.hash, 'hex') FROM credit.event_chain c ORDER BY c.seq DESC LIMIT 1
$$;

CREATE OR REPLACE FUNCTION credit.prune_outbox(up_to_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM credit._require('admin', 'pruning the outbox');
    IF up_to_id IS NULL THEN
        RAISE EXCEPTION 'up_to_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM credit.outbox o WHERE o.id <= up_to_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION credit._set_status(customer text, reason text, new_status text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed boolean;
BEGIN
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

CREATE OR REPLACE FUNCTION credit.blacklist(customer text, reason text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('manager', 'blacklisting');
    SELECT credit._set_status(customer, reason, 'blacklisted');
$$;

CREATE OR REPLACE FUNCTION credit.reinstate(customer text, reason text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('manager', 'reinstating');
    SELECT credit._set_status(customer, reason, 'active');
$$;

CREATE FUNCTION credit._roll_rates_args(period_end date, months integer, final_loss_rate numeric) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF period_end IS NULL OR months IS NULL OR final_loss_rate IS NULL THEN
        RAISE EXCEPTION 'period_end, months and final_loss_rate must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(period_end) THEN
        RAISE EXCEPTION 'period_end must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF months NOT BETWEEN 1 AND 600 THEN
        RAISE EXCEPTION 'months % is out of range', months USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Roll rates look back 1 to 600 months.';
    END IF;
    IF NOT (final_loss_rate >= 0 AND final_loss_rate <= 1) THEN   -- NaN fails both
        RAISE EXCEPTION 'final_loss_rate % is not a rate between 0 and 1', final_loss_rate
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION credit.roll_rates(period_end date DEFAULT current_date, months integer DEFAULT 12,
                                  final_loss_rate numeric DEFAULT 1)
RETURNS TABLE (bucket text, bucket_position integer, balance numeric, rolled_forward numeric,
               roll_rate numeric, loss_rate numeric)
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC
    SELECT credit._roll_rates_args(roll_rates.period_end, roll_rates.months, roll_rates.final_loss_rate);
    WITH steps AS (
        SELECT (roll_rates.period_end - make_interval(months => k))::date AS d0,
               (roll_rates.period_end - make_interval(months => k - 1))::date AS d1
          FROM generate_series(1, roll_rates.months) k),
    moves AS (
        SELECT g0.bucket_position AS pos, sum(g0.open_amount) AS balance,
               sum(g1.open_amount) FILTER (WHERE g1.bucket_position = g0.bucket_position + 1) AS rolled
          FROM steps s
          CROSS JOIN LATERAL credit.aging(s.d0, 'due') g0
          LEFT JOIN LATERAL credit.aging(s.d1, 'due') g1
                 ON g1.doc_type = 'invoice' AND g1.customer = g0.customer AND g1.doc_no = g0.doc_no
         WHERE g0.doc_type = 'invoice'
         GROUP BY g0.bucket_position),
    rates AS (
        SELECT b.position, b.label, row_number() OVER (ORDER BY b.position)::int AS rank,
               coalesce(m.balance, 0) AS balance, coalesce(m.rolled, 0) AS rolled,
               round(coalesce(m.rolled, 0) / nullif(m.balance, 0), 6) AS roll_rate
          FROM credit.aging_bucket b
          LEFT JOIN moves m ON m.pos = b.position
         WHERE NOT b.retired)
    SELECT r.label, r.rank, r.balance, r.rolled,
           CASE WHEN r.rank < (SELECT max(rank) FROM rates) THEN r.roll_rate END,
           round(roll_rates.final_loss_rate * coalesce(
               (SELECT exp(sum(ln(nullif(r2.roll_rate, 0)))) FROM rates r2
                 WHERE r2.rank >= r.rank AND r2.rank < (SELECT max(rank) FROM rates))
               * CASE WHEN EXISTS (SELECT 1 FROM rates r3 WHERE r3.rank >= r.rank
                                     AND r3.rank < (SELECT max(rank) FROM rates) AND coalesce(r3.roll_rate, 0) = 0)
                      THEN 0 ELSE 1 END, 1), 6)
      FROM rates r ORDER BY r.rank;
END;

CREATE OR REPLACE FUNCTION credit.request_limit(customer text, new_limit numeric, reason text, valid_until date DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('clerk', 'requesting a limit');
    SELECT credit._request_limit(customer, new_limit, reason, valid_until, 'manual');
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
    PERFORM pg_advisory_xact_lock(1885823858, 3);   -- one daily run at a time
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

CREATE OR REPLACE FUNCTION credit.unguard(orders regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    owner oid;
BEGIN
    PERFORM credit._require('admin', 'switching the guard off');
    IF orders IS NULL THEN
        RAISE EXCEPTION 'orders must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit.guarded_table g WHERE g.table_name = orders) THEN
        RAISE EXCEPTION 'table % is not guarded', orders USING ERRCODE = 'undefined_object';
    END IF;
    SELECT relowner INTO owner FROM pg_class WHERE oid = orders;
    IF NOT pg_has_role(credit._calling_user(), owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to unguard it', orders USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', orders);
    PERFORM credit._shift_open_orders(orders, -1);
    EXECUTE format('DROP TRIGGER IF EXISTS credit_guard ON %s', orders);
    EXECUTE format('DROP TRIGGER IF EXISTS credit_guard_truncate ON %s', orders);
    DELETE FROM credit.guarded_table g WHERE g.table_name = orders;
END
$$;

CREATE FUNCTION credit.grant_privileges(reader name DEFAULT 'credit_reader', clerk name DEFAULT 'credit_clerk',
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
        'terms_for verify verify_audit audit_head weighted_days_late weighted_days_late_clamped regrade',
        'post_invoice post_payment post_credit_note log_contact dispute request_limit release_hold cancel_hold '
        'release_fitting_holds',
        'write_off blacklist reinstate resolve_dispute run_collections run_daily approve reject',
        'guard unguard rebuild_exposure prune_outbox grant_privileges'];
    -- DBA-managed tables the admin level writes (the rest is written by pg_credit's functions).
    managed text[] := ARRAY['account', 'policy', 'term_tier', 'grade', 'score_weight', 'dunning_level', 'approval_rule',
                            'aging_bucket', 'provision_rate'];
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
        EXECUTE format('REVOKE SELECT ON credit.access_role FROM %I', roles[i]);
        SELECT count(*) INTO nt FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'v')
           AND c.relname <> 'access_role';
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

CREATE FUNCTION credit._policy_write_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._require('admin', format('changing credit.%s', TG_TABLE_NAME));
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['policy', 'term_tier', 'grade', 'score_weight', 'dunning_level', 'approval_rule',
                             'aging_bucket', 'provision_rate'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION credit._policy_write_check()', t || '_write_check', t);
    END LOOP;
END
$$;

-- New objects get what CREATE EXTENSION gives: nothing for PUBLIC.
REVOKE ALL ON credit.access_role, credit.event_chain FROM PUBLIC;
REVOKE ALL ON FUNCTION credit._level_rank(text), credit._require(text, text), credit._event_hash(bytea, credit.event),
    credit.verify_audit(), credit.audit_head(), credit._roll_rates_args(date, integer, numeric),
    credit.grant_privileges(name, name, name, name), credit._policy_write_check() FROM PUBLIC;

COMMENT ON TABLE credit.event_chain IS 'Tamper evidence: every committed event hashed together with the one before it, in commit order (credit.verify_audit)';
COMMENT ON COLUMN credit.event_chain.seq IS 'Position in commit order (the event''s outbox id)';
COMMENT ON COLUMN credit.event_chain.event_id IS 'credit.event id';
COMMENT ON COLUMN credit.event_chain.hash IS 'sha256 of the previous hash and the event''s canonical text';
COMMENT ON FUNCTION credit._event_hash(bytea, credit.event) IS 'Internal: chain hash of an event';
COMMENT ON FUNCTION credit.verify_audit() IS 'Where the audit chain does not hold (changed, deleted or unchained events); empty when the history is intact';
COMMENT ON FUNCTION credit.audit_head() IS 'The newest link of the audit chain, to record outside the database';
COMMENT ON TABLE credit.access_role IS 'The role of each privilege level (reader, clerk, manager, admin), recorded by credit.grant_privileges; functions that change things check membership';
COMMENT ON COLUMN credit.access_role.level IS 'reader, clerk, manager or admin';
COMMENT ON COLUMN credit.access_role.role IS 'The role holding the level (members of a higher level''s role pass too)';
COMMENT ON FUNCTION credit._level_rank(text) IS 'Internal: order of the privilege levels';
COMMENT ON FUNCTION credit._require(text, text) IS 'Internal: 42501 unless the caller holds the privilege level';
COMMENT ON FUNCTION credit._roll_rates_args(date, integer, numeric) IS 'Internal: validates credit.roll_rates arguments';
COMMENT ON FUNCTION credit._policy_write_check() IS 'Internal: writing credit policy tables needs the admin level';
COMMENT ON FUNCTION credit.grant_privileges(name, name, name, name) IS 'Grants pg_credit''s privileges to the roles of the four levels (reader, clerk, manager, admin; NULL leaves one out) and records them in credit.access_role (docs/privileges.md)';
