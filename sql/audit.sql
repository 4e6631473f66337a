-- The audit trail: credit.event, every change of a customer's credit (limit, temporary limit, terms,
-- status, grade, group) and every decision pg_credit takes (holds, refusals, approvals, collection
-- steps), with who, when, why, before and after. Append-only: nobody updates or deletes it, the
-- table owner included. Rust writes events through one module (src/store/events.rs).

CREATE TABLE credit.event (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    happened_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind              text NOT NULL,
    customer          text,
    reason            text,
    before            jsonb,
    after             jsonb,
    actor             name NOT NULL DEFAULT credit._person(),
    acting_as         name NOT NULL DEFAULT current_user,
    application_name  text DEFAULT current_setting('application_name', true),
    transaction_id    xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX event_customer_idx ON credit.event (customer, id);
SELECT pg_catalog.pg_extension_config_dump('credit.event', '');
SELECT pg_catalog.pg_extension_config_dump('credit.event_id_seq', '');

-- Outbox: every credit event, numbered in commit order, for other systems. credit.event ids are
-- taken when the event is written, so a transaction that started earlier may commit a smaller id
-- after a consumer has read past it. The outbox id is taken at commit instead (a deferred trigger
-- under a lock on credit.outbox_lock held to the end of the commit): an outbox row with a
-- larger id is never visible before a smaller one, and a consumer that remembers the last id it
-- processed misses nothing. Each new row is announced with pg_notify('credit_events', ...) when
-- the transaction commits. Payload: docs/collections.md#events.

CREATE SEQUENCE credit.outbox_id_seq;
-- Locks that serialise pg_credit's own work are taken on tables nobody else holds privileges on
-- (LOCK TABLE needs them), so no other role can take them: an advisory lock key anyone who can
-- connect may take could stall every commit that writes an event.
CREATE TABLE credit.outbox_lock ();
CREATE TABLE credit.outbox (
    id          bigint PRIMARY KEY,
    event_id    bigint NOT NULL,
    kind        text NOT NULL,
    customer    text,
    payload     jsonb NOT NULL,
    published_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('credit.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('credit.outbox_id_seq', '');

-- Tamper evidence: each committed event is chained, in commit order, to the one before it:
-- hash = sha256(previous hash || the event's canonical text). Changing, deleting or inserting an
-- event afterwards (a superuser with triggers disabled can) breaks the chain at that point, which
-- credit.verify_audit() reports. Rewriting the whole chain from the change on is detectable
-- against a head hash kept outside the database (credit.audit_head()).
CREATE TABLE credit.event_chain (
    seq       bigint PRIMARY KEY,      -- the event's outbox id: commit order
    event_id  bigint NOT NULL UNIQUE,
    hash      bytea NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('credit.event_chain', '');

-- Canonical text of an event (independent of DateStyle, TimeZone and NULLs vs empty strings).
CREATE FUNCTION credit._event_hash(prev bytea, e credit.event) RETURNS bytea
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN sha256(prev || convert_to(concat_ws(',', e.id::text,
    quote_nullable(to_char(e.happened_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')),
    quote_nullable(e.kind), quote_nullable(e.customer), quote_nullable(e.reason),
    quote_nullable(e.before::text), quote_nullable(e.after::text), quote_nullable(e.actor::text),
    quote_nullable(e.acting_as::text), quote_nullable(e.application_name), e.transaction_id::text), 'UTF8'));

CREATE FUNCTION credit._event_publish() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT credit._is_own_table(TG_RELID, 'event') THEN
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
    -- Not from a Citus node's task of a distributed transaction: it may be prepared (two-phase
    -- commit), which a transaction that notified cannot be. The event is in the outbox all the
    -- same; a listener of the node learns of it at the next notification or poll (docs/citus.md).
    IF current_setting('application_name') NOT LIKE 'citus_internal gpid=%' THEN
        PERFORM pg_notify('credit_events', json_build_object('id', n, 'kind', NEW.kind,
            'customer', CASE WHEN octet_length(NEW.customer) <= 1000 THEN NEW.customer END)::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER event_publish AFTER INSERT ON credit.event
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION credit._event_publish();

-- Every place the audit chain does not hold: an event changed or deleted, a chain row changed,
-- removed or inserted, or a committed event that is not in the chain. With an anchor — a link
-- (seq and hash, from credit.audit_head()) recorded outside the database earlier — it also proves
-- that the chain up to that link was not rewritten and not cut: a superuser who forges or deletes
-- events and recomputes every later link passes the chain's own check, never the anchor's.
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

-- The newest link, to keep outside the database (a later verify_audit() against it shows whether
-- the chain up to it was rewritten).
CREATE FUNCTION credit.audit_head()
RETURNS TABLE (seq bigint, event_id bigint, hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('reader', 'reading the audit head');
    SELECT c.seq, c.event_id, encode(c.hash, 'hex') FROM credit.event_chain c ORDER BY c.seq DESC LIMIT 1
$$;

-- Catching up: the events after the last id a consumer processed, in order.
CREATE FUNCTION credit.outbox_since(after_id bigint, max_rows int DEFAULT 1000)
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

-- Outbox rows every consumer has processed may go; credit.event keeps the history. While the
-- courier has contacts to deliver to, rows it has not planned yet stay (sql/courier.sql).
CREATE FUNCTION credit.prune_outbox(up_to_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    planned bigint;
BEGIN
    PERFORM credit._require('admin', 'pruning the outbox');
    IF up_to_id IS NULL THEN
        RAISE EXCEPTION 'up_to_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM credit.contact c WHERE c.opted_out_at IS NULL) THEN
        planned := (SELECT s.position FROM credit.courier_state s);
        IF planned < up_to_id THEN
            RAISE NOTICE 'the outbox is pruned up to %, the courier''s position: later rows are not delivered yet', planned;
            up_to_id := planned;
        END IF;
    END IF;
    DELETE FROM credit.outbox o WHERE o.id <= up_to_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE FUNCTION credit._event_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'credit.% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege',
        DETAIL = 'The credit history records who changed what and why; it is never updated or deleted.';
END
$$;
CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON credit.event
    FOR EACH ROW EXECUTE FUNCTION credit._event_append_only();
CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON credit.event
    FOR EACH STATEMENT EXECUTE FUNCTION credit._event_append_only();
CREATE TRIGGER event_chain_append_only BEFORE UPDATE OR DELETE ON credit.event_chain
    FOR EACH ROW EXECUTE FUNCTION credit._event_append_only();
CREATE TRIGGER event_chain_no_truncate BEFORE TRUNCATE ON credit.event_chain
    FOR EACH STATEMENT EXECUTE FUNCTION credit._event_append_only();

-- Records account changes (a BEFORE trigger: credit.account, updated by every guarded order, has
-- no AFTER row triggers, which would cost an extra fetch of the old row per order). If the change
-- fails later, the event rolls back with it. The reason comes from credit.blacklist / credit.reinstate (or any
-- caller that sets credit.reason for its transaction). UPDATE OF: the guard's counter updates
-- never fire it.
-- SECURITY DEFINER: whoever may change an account gets the change recorded, without rights on
-- credit.event; acting_as is the caller (GetOuterUserId), not this function's owner.
CREATE FUNCTION credit._account_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    why text := nullif(current_setting('credit.reason', true), '');
    caller name := credit._acting_as();   -- on a Citus worker, who called on the coordinator
    change record;
BEGIN
    IF NOT credit._is_own_table(TG_RELID, 'account') THEN
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
CREATE TRIGGER account_history BEFORE INSERT OR DELETE OR UPDATE OF customer, credit_limit, terms_days, status,
    temporary_limit, temporary_limit_until, grade, parent ON credit.account
    FOR EACH ROW EXECUTE FUNCTION credit._account_history();

COMMENT ON TABLE credit.event IS 'Append-only credit history: limit, grade, terms, status and group changes, approvals, holds and near-limit warnings, with who, when, why, before and after';
COMMENT ON COLUMN credit.event.id IS 'Increasing event number';
COMMENT ON COLUMN credit.event.happened_at IS 'When';
COMMENT ON COLUMN credit.event.kind IS 'account_created, account_deleted, limit_changed, temporary_limit_changed, terms_changed, status_changed, grade_changed, group_changed, near_limit, order_refused, order_held, hold_released, hold_overridden, hold_cancelled, hold_withdrawn, limit_requested, limit_approval_signed, limit_request_rejected, limit_request_withdrawn, task_created, promise_made, promise_kept, promise_broken, dispute_opened, dispute_resolved, legal_referral, payment_reversed, credit_note_reversed, write_off_reversed, invoice_cancelled, statement_issued, confirmation_requested, confirmation_reminder, confirmation_replied, confirmation_deemed, reconciliation_run, arrangement_made, arrangement_completed, arrangement_broken, arrangement_cancelled, rating_received, rating_due, risk_warning, risk_cleared, contact_set, contact_opted_out, contact_opted_in, delivery_retried (docs/collections.md#events)';
COMMENT ON TABLE credit.outbox IS 'Every credit event for other systems, numbered in commit order: read rows with id above the last one processed (credit.outbox_since); each is announced on channel credit_events';
COMMENT ON COLUMN credit.outbox.id IS 'Position in commit order: a row with a larger id never becomes visible before a smaller one';
COMMENT ON COLUMN credit.outbox.event_id IS 'credit.event id';
COMMENT ON COLUMN credit.outbox.kind IS 'Event kind (credit.event.kind)';
COMMENT ON COLUMN credit.outbox.customer IS 'Customer';
COMMENT ON COLUMN credit.outbox.payload IS 'The event as JSON: id, event_id, kind, customer, happened_at, reason, before, after, actor, acting_as, application_name, transaction_id';
COMMENT ON COLUMN credit.outbox.published_at IS 'When the event was numbered (at its transaction''s commit)';
COMMENT ON FUNCTION credit.outbox_since(bigint, integer) IS 'Outbox rows after the given id, oldest first: how a consumer catches up';
COMMENT ON FUNCTION credit.prune_outbox(bigint) IS 'Deletes outbox rows up to an id every consumer has processed (and, while the courier has contacts, no further than it has planned); returns how many (credit.event keeps the history)';
COMMENT ON TABLE credit.event_chain IS 'Tamper evidence: every committed event hashed together with the one before it, in commit order (credit.verify_audit)';
COMMENT ON COLUMN credit.event_chain.seq IS 'Position in commit order (the event''s outbox id)';
COMMENT ON COLUMN credit.event_chain.event_id IS 'credit.event id';
COMMENT ON COLUMN credit.event_chain.hash IS 'sha256 of the previous hash and the event''s canonical text';
COMMENT ON FUNCTION credit._event_hash(bytea, credit.event) IS 'Internal: chain hash of an event';
COMMENT ON FUNCTION credit.verify_audit(bigint, text) IS 'Where the audit chain does not hold (changed, deleted or unchained events; with an anchor from credit.audit_head() kept outside the database, also a chain rewritten or cut up to it); empty when the history is intact';
COMMENT ON TABLE credit.outbox_lock IS 'Internal: its lock serialises outbox numbering (nobody else can take it)';
COMMENT ON FUNCTION credit.audit_head() IS 'The newest link of the audit chain, to record outside the database';
COMMENT ON FUNCTION credit._event_publish() IS 'Internal: numbers a committed event in the outbox and notifies credit_events';
COMMENT ON COLUMN credit.event.customer IS 'Customer';
COMMENT ON COLUMN credit.event.reason IS 'Why (given to credit.blacklist / credit.reinstate, or the credit.reason setting)';
COMMENT ON COLUMN credit.event.before IS 'Values before the change';
COMMENT ON COLUMN credit.event.after IS 'Values after the change';
COMMENT ON COLUMN credit.event.actor IS 'The person behind the change: the login (session_user), or the person a trusted proxy named (credit.act_for)';
COMMENT ON COLUMN credit.event.acting_as IS 'current_user of the change (differs under SET ROLE or SECURITY DEFINER)';
COMMENT ON COLUMN credit.event.application_name IS 'application_name of the session';
COMMENT ON COLUMN credit.event.transaction_id IS 'Transaction that made the change';
COMMENT ON FUNCTION credit._account_history() IS 'Internal: records account changes in credit.event';
COMMENT ON FUNCTION credit._event_append_only() IS 'Internal: keeps credit.event append-only';
