-- Credit history: every change of a customer's limit, temporary limit, terms or status, with who,
-- when, why, before and after. Append-only: nobody updates or deletes it, the table owner included.

CREATE TABLE credit.event (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    happened_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind              text NOT NULL,
    customer          text,
    reason            text,
    before            jsonb,
    after             jsonb,
    actor             name NOT NULL DEFAULT session_user,
    acting_as         name NOT NULL DEFAULT current_user,
    application_name  text DEFAULT current_setting('application_name', true),
    transaction_id    xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX event_customer_idx ON credit.event (customer, id);
SELECT pg_catalog.pg_extension_config_dump('credit.event', '');
SELECT pg_catalog.pg_extension_config_dump('credit.event_id_seq', '');

-- The role that called a SECURITY DEFINER function (SET ROLE counts), by name.
CREATE FUNCTION credit._caller() RETURNS name
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = credit._calling_user());

CREATE FUNCTION credit._event_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'credit.event is append-only' USING ERRCODE = 'insufficient_privilege',
        DETAIL = 'The credit history records who changed what and why; it is never updated or deleted.';
END
$$;
CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON credit.event
    FOR EACH ROW EXECUTE FUNCTION credit._event_append_only();
CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON credit.event
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
    caller name := credit._caller();
    change record;
BEGIN
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

CREATE FUNCTION credit._set_status(customer text, reason text, new_status text) RETURNS boolean
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
    IF btrim(reason) = '' THEN
        RAISE EXCEPTION 'reason must not be empty' USING ERRCODE = 'invalid_parameter_value';
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

CREATE FUNCTION credit.blacklist(customer text, reason text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN credit._set_status(customer, reason, 'blacklisted');

CREATE FUNCTION credit.reinstate(customer text, reason text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN credit._set_status(customer, reason, 'active');

COMMENT ON TABLE credit.event IS 'Append-only credit history: limit, grade, terms, status and group changes, approvals, holds and near-limit warnings, with who, when, why, before and after';
COMMENT ON COLUMN credit.event.id IS 'Increasing event number';
COMMENT ON COLUMN credit.event.happened_at IS 'When';
COMMENT ON COLUMN credit.event.kind IS 'account_created, account_deleted, limit_changed, temporary_limit_changed, terms_changed, status_changed, grade_changed, group_changed, near_limit, order_held, hold_released, hold_overridden, hold_cancelled, hold_withdrawn, limit_requested, limit_approval_signed, limit_request_rejected, limit_request_withdrawn';
COMMENT ON COLUMN credit.event.customer IS 'Customer';
COMMENT ON COLUMN credit.event.reason IS 'Why (given to credit.blacklist / credit.reinstate, or the credit.reason setting)';
COMMENT ON COLUMN credit.event.before IS 'Values before the change';
COMMENT ON COLUMN credit.event.after IS 'Values after the change';
COMMENT ON COLUMN credit.event.actor IS 'session_user of the change';
COMMENT ON COLUMN credit.event.acting_as IS 'current_user of the change (differs under SET ROLE or SECURITY DEFINER)';
COMMENT ON COLUMN credit.event.application_name IS 'application_name of the session';
COMMENT ON COLUMN credit.event.transaction_id IS 'Transaction that made the change';
COMMENT ON FUNCTION credit.blacklist(text, text) IS 'Blacklists a customer (no new credit orders); returns false if already blacklisted. Recorded in credit.event with the reason.';
COMMENT ON FUNCTION credit.reinstate(text, text) IS 'Sets a blacklisted or held customer back to active; returns false if already active. Recorded in credit.event with the reason.';
COMMENT ON FUNCTION credit._set_status(text, text, text) IS 'Internal: status change with a recorded reason';
COMMENT ON FUNCTION credit._caller() IS 'Internal: name of the role that called a SECURITY DEFINER function';
COMMENT ON FUNCTION credit._account_history() IS 'Internal: records account changes in credit.event';
COMMENT ON FUNCTION credit._event_append_only() IS 'Internal: keeps credit.event append-only';
