-- Limit changes through approval: credit.request_limit, credit.approve, credit.reject.
-- Four eyes means two people: a person is the login (session_user), whatever SET ROLE says, or
-- the person a trusted proxy named (credit.act_for). The requester never approves; a person
-- signs at most one level of a request, as a member of that level's role; the limit changes only
-- when the last level signs.

CREATE FUNCTION credit._request_limit(customer text, new_limit numeric, reason text, valid_until date, source text)
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

CREATE FUNCTION credit.request_limit(customer text, new_limit numeric, reason text, valid_until date DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('clerk', 'requesting a limit');
    SELECT credit._request_limit(customer, new_limit, reason, valid_until, 'manual');
$$;

CREATE FUNCTION credit._lock_pending_request(request_id bigint) RETURNS credit.limit_request
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

CREATE FUNCTION credit.approve(request_id bigint, comment text DEFAULT NULL) RETURNS text
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

CREATE FUNCTION credit.reject(request_id bigint, comment text) RETURNS text
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

COMMENT ON TABLE credit.approval_rule IS 'Who approves a limit increase: the row with the largest min_increase at or below the increase applies; approver_roles are the levels in order (empty: no approval). No row: the admin role approves.';
COMMENT ON COLUMN credit.approval_rule.min_increase IS 'Smallest increase (new limit minus current credit_limit) this rule covers';
COMMENT ON COLUMN credit.approval_rule.approver_roles IS 'PostgreSQL roles approving level 1, 2, ... in order';
COMMENT ON COLUMN credit.approval_rule.note IS 'Free text';
COMMENT ON TABLE credit.limit_request IS 'Requested limit changes and their outcome (credit.request_limit, credit.regrade)';
COMMENT ON COLUMN credit.limit_request.id IS 'Request id';
COMMENT ON COLUMN credit.limit_request.customer IS 'Customer';
COMMENT ON COLUMN credit.limit_request.current_limit IS 'credit_limit when requested';
COMMENT ON COLUMN credit.limit_request.requested_limit IS 'Requested limit';
COMMENT ON COLUMN credit.limit_request.valid_until IS 'Last day of a temporary limit; NULL = permanent';
COMMENT ON COLUMN credit.limit_request.reason IS 'Why';
COMMENT ON COLUMN credit.limit_request.source IS 'manual | regrade';
COMMENT ON COLUMN credit.limit_request.approver_roles IS 'Roles approving each level (from credit.approval_rule when requested)';
COMMENT ON COLUMN credit.limit_request.status IS 'pending | approved | rejected | withdrawn';
COMMENT ON COLUMN credit.limit_request.requested_by IS 'Who asked: the person (login, or the person a trusted proxy named)';
COMMENT ON COLUMN credit.limit_request.requested_at IS 'When';
COMMENT ON COLUMN credit.limit_request.decided_by IS 'Who signed the last level, rejected or withdrew it';
COMMENT ON COLUMN credit.limit_request.decided_at IS 'When it was decided';
COMMENT ON COLUMN credit.limit_request.decision_comment IS 'Comment of the decision';
COMMENT ON TABLE credit.limit_approval IS 'Signatures on limit requests, one per level';
COMMENT ON COLUMN credit.limit_approval.request_id IS 'The request';
COMMENT ON COLUMN credit.limit_approval.level IS 'Level signed (1 = first)';
COMMENT ON COLUMN credit.limit_approval.approver IS 'Who signed: the person (login, or the person a trusted proxy named)';
COMMENT ON COLUMN credit.limit_approval.as_role IS 'The level''s role the approver is a member of';
COMMENT ON COLUMN credit.limit_approval.approved_at IS 'When';
COMMENT ON COLUMN credit.limit_approval.comment IS 'Comment';
COMMENT ON FUNCTION credit.request_limit(text, numeric, text, date) IS 'Requests a new limit (a temporary one through valid_until); returns the request id. Decreases apply at once; increases need the approvals of credit.approval_rule.';
COMMENT ON FUNCTION credit.approve(bigint, text) IS 'Signs the next level of a limit request; the limit changes when the last level signs. The requester cannot approve; nobody signs twice.';
COMMENT ON FUNCTION credit.reject(bigint, text) IS 'Rejects a pending limit request (a member of the next level''s role) or withdraws it (the requester)';
COMMENT ON FUNCTION credit._request_limit(text, numeric, text, date, text) IS 'Internal: creates a limit request';
COMMENT ON FUNCTION credit._lock_pending_request(bigint) IS 'Internal: locks a pending limit request';
