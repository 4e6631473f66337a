-- The credit file (客户信用档案): one JSON document per customer as of a day, gathering what the
-- rest of pg_credit computes — each figure comes from the function or view that computes it
-- elsewhere (tests/pg_regress/sql/36_credit_file.sql holds them to it). docs/history.md#the-credit-file.

-- Validates credit.file's arguments (true, or an error).
CREATE FUNCTION credit._file_args(customer text, as_of date) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF customer IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'customer and as_of must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(customer) = '' THEN
        RAISE EXCEPTION 'customer must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(as_of) OR as_of > current_date THEN
        RAISE EXCEPTION 'as_of % is not a past or present date', as_of USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit.account a WHERE a.customer = _file_args.customer) THEN
        RAISE EXCEPTION 'customer "%" has no credit account', customer USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN true;
END
$$;

-- Read in parts, so that it reads alike on one node and on Citus's coordinator (docs/citus.md):
-- what the customer's node holds (its ledger, tasks, promises, disputes, plans, holds, requests,
-- history) in one query naming the customer in every table, which Citus routes there; the events
-- of every node (credit._events_on_citus; on one node, its own), ordered by time, node, id; the
-- score, aging and DSO by their own functions; warnings and ratings from the coordinator's tables.
-- The basis of days late is this session's setting, written into the query (on Citus a session's
-- SET does not reach the workers).
CREATE FUNCTION credit.file(customer text, as_of date DEFAULT current_date) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a credit.account;
    basis text := coalesce(current_setting('pg_credit.days_late_basis', true), 'payment');
    ev jsonb;
    evs jsonb;
    node jsonb;
    sc record;
    open_items jsonb;
    dso numeric;
    here jsonb;
    limit_then numeric;
BEGIN
    PERFORM credit._refuse_on_worker('The credit file');
    PERFORM credit._file_args(customer, as_of);
    SELECT x.* INTO a FROM credit.account x WHERE x.customer = file.customer;
    -- Events: the limit's changes ever (the limit on the day), the rest of the 12 months.
    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.happened_at, e.node, e.id), '[]') INTO ev
      FROM credit._events_on_citus(ARRAY[customer], as_of - 365, ARRAY['account_created', 'limit_changed', 'temporary_limit_changed']) e;
    WITH e AS (SELECT x.* FROM ROWS FROM (jsonb_to_recordset(ev) AS (kind text, happened_at timestamptz, before jsonb,
                                                                     after jsonb, reason text, actor text))
                               WITH ORDINALITY AS x(kind, happened_at, before, after, reason, actor, n)),
         y AS (SELECT e.* FROM e WHERE e.happened_at < as_of + 1 AND e.happened_at >= as_of - 365)
    SELECT coalesce(
               (SELECT (e.after ->> 'credit_limit')::numeric FROM e
                 WHERE e.kind IN ('account_created', 'limit_changed') AND e.happened_at < as_of + 1 AND e.after ? 'credit_limit'
                 ORDER BY e.n DESC LIMIT 1),
               (SELECT (e.before ->> 'credit_limit')::numeric FROM e
                 WHERE e.kind = 'limit_changed' AND e.happened_at >= as_of + 1 AND e.before ? 'credit_limit'
                 ORDER BY e.n LIMIT 1),
               a.credit_limit),
           jsonb_build_object(
               'changes', coalesce((SELECT jsonb_agg(jsonb_build_object('at', e.happened_at, 'kind', e.kind, 'before', e.before,
                                                                        'after', e.after, 'reason', e.reason, 'actor', e.actor)
                                                     ORDER BY e.n)
                                      FROM e WHERE e.happened_at < as_of + 1
                                       AND e.kind IN ('account_created', 'limit_changed', 'temporary_limit_changed')), '[]'),
               'orders_refused', (SELECT count(*) FROM y WHERE y.kind = 'order_refused'),
               'near_limit_warnings', (SELECT count(*) FROM y WHERE y.kind = 'near_limit'),
               'decisions', coalesce((SELECT jsonb_agg(jsonb_build_object('at', y.happened_at, 'kind', y.kind, 'before', y.before,
                                                                          'after', y.after, 'reason', y.reason, 'actor', y.actor)
                                                       ORDER BY y.n)
                                        FROM y
                                       WHERE y.kind IN ('limit_changed', 'temporary_limit_changed', 'terms_changed', 'status_changed',
                                                        'grade_changed', 'group_changed', 'limit_request_rejected', 'hold_released',
                                                        'hold_overridden', 'hold_cancelled', 'legal_referral', 'arrangement_made',
                                                        'arrangement_broken', 'arrangement_cancelled', 'invoice_cancelled',
                                                        'payment_reversed', 'credit_note_reversed', 'write_off_reversed')), '[]'))
      INTO limit_then, evs;
    -- The customer's node: every table named with the customer, so Citus routes the query there.
    WITH exp AS (SELECT e.days_late, e.days_to_pay, e.amount FROM credit.payment_experience e
                  WHERE basis <> 'closing' AND e.customer = file.customer
                    AND e.paid_on <= as_of AND e.paid_on > as_of - 365
                 UNION ALL
                 SELECT e.days_late, e.days_to_pay, e.amount FROM credit.invoice_payment_experience e
                  WHERE basis = 'closing' AND e.customer = file.customer
                    AND e.paid_on <= as_of AND e.paid_on > as_of - 365),
         sales AS (SELECT date_trunc('month', i.doc_date)::date AS month, sum(i.amount) AS amount FROM credit.invoice i
                    WHERE i.customer = file.customer AND i.doc_date <= as_of AND i.doc_date > as_of - 365
                    GROUP BY 1),
         score_history AS (SELECT h.valid_from, h.score, h.grade FROM credit.history h
                            WHERE h.customer = file.customer AND h.valid_from <= as_of AND h.valid_from > as_of - 365
                              AND (h.score IS NOT NULL OR h.grade IS NOT NULL))
    SELECT jsonb_build_object(
        'first_invoice', (SELECT min(i.doc_date) FROM credit.invoice i WHERE i.customer = file.customer),
        'requests', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                  'id', r.id, 'requested_limit', r.requested_limit, 'current_limit', r.current_limit,
                                  'reason', r.reason, 'source', r.source, 'status', r.status, 'requested_by', r.requested_by,
                                  'requested_at', r.requested_at, 'decided_by', r.decided_by, 'decided_at', r.decided_at,
                                  'approvals', coalesce((SELECT jsonb_agg(jsonb_build_object('level', l.level, 'approver', l.approver,
                                                                                             'as_role', l.as_role, 'at', l.approved_at)
                                                                          ORDER BY l.level)
                                                           FROM credit.limit_approval l
                                                          WHERE l.customer = file.customer AND l.request_id = r.id), '[]'))
                               ORDER BY r.id)
                                FROM credit.limit_request r
                               WHERE r.customer = file.customer AND r.requested_at < as_of + 1), '[]'),
        'score_history', coalesce((SELECT jsonb_agg(jsonb_build_object('day', h.valid_from, 'score', h.score, 'grade', h.grade)
                                                    ORDER BY h.valid_from) FROM score_history h), '[]'),
        'first_score', (SELECT h.score FROM score_history h WHERE h.score IS NOT NULL ORDER BY h.valid_from LIMIT 1),
        'experiences', (SELECT count(*) FROM exp),
        'average_days_to_pay', (SELECT round(avg(e.days_to_pay), 1) FROM exp e),
        'average_days_late', (SELECT round(avg(e.days_late), 1) FROM exp e),
        'weighted_days_late', (SELECT credit.weighted_days_late(e.days_late, e.amount) FROM exp e),
        'on_time_ratio', (SELECT credit.on_time_ratio(e.days_late, e.amount, 0) FROM exp e),
        'paydex', (SELECT CASE WHEN count(*) >= 3 THEN credit.paydex(e.days_late, e.amount) END FROM exp e),
        'last_payment', (SELECT jsonb_build_object('date', s.doc_date, 'amount', s.amount) FROM credit.settlement s
                          WHERE s.customer = file.customer AND s.kind = 'payment' AND s.reversed_on IS NULL
                            AND s.doc_date <= as_of
                          ORDER BY s.doc_date DESC, s.id DESC LIMIT 1),
        'sales_12_months', coalesce((SELECT sum(s.amount) FROM sales s), 0),
        'highest_monthly_sales', (SELECT jsonb_build_object('month', s.month, 'amount', s.amount) FROM sales s
                                   ORDER BY s.amount DESC, s.month DESC LIMIT 1),
        'highest_dunning_level', (SELECT max(t.level) FROM credit.collection_task t
                                   WHERE t.customer = file.customer AND t.level IS NOT NULL
                                     AND t.created_for <= as_of AND t.created_for > as_of - 365),
        'promises_broken', (SELECT count(*) FROM credit.promise p WHERE p.customer = file.customer AND p.status = 'broken'
                              AND p.decided_on <= as_of AND p.decided_on > as_of - 365),
        'promises_kept', (SELECT count(*) FROM credit.promise p WHERE p.customer = file.customer AND p.status = 'kept'
                            AND p.decided_on <= as_of AND p.decided_on > as_of - 365),
        'disputes', jsonb_build_object(
            'open', (SELECT count(*) FROM credit.invoice_dispute d WHERE d.customer = file.customer AND d.opened_on <= as_of
                       AND (d.resolved_on IS NULL OR d.resolved_on > as_of)),
            'opened_in_12_months', (SELECT count(*) FROM credit.invoice_dispute d WHERE d.customer = file.customer
                                      AND d.opened_on <= as_of AND d.opened_on > as_of - 365)),
        'arrangements', coalesce((SELECT jsonb_agg(jsonb_build_object('id', x.id, 'agreed_on', x.agreed_on, 'amount', x.amount,
                                                                     'status', CASE WHEN x.decided_on IS NULL OR x.decided_on > as_of
                                                                                    THEN 'active' ELSE x.status END)
                                                  ORDER BY x.id)
                                     FROM credit.arrangement x WHERE x.customer = file.customer AND x.agreed_on <= as_of), '[]'),
        'orders_held', (SELECT count(*) FROM credit.order_hold o WHERE o.customer = file.customer
                          AND o.held_at < as_of + 1 AND o.held_at >= as_of - 365))
      INTO node;
    SELECT s.* INTO sc FROM credit.score(customer, as_of) s;
    SELECT coalesce(jsonb_agg(to_jsonb(g)), '[]') INTO open_items
      FROM credit._aging_on_citus(as_of, 'due', customer) g WHERE g.doc_type = 'invoice';
    dso := credit.dso(as_of - 89, as_of, customer);
    -- The coordinator's own tables.
    SELECT jsonb_build_object(
        'risk_warnings', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                      'cause', w.cause, 'raised_on', w.raised_on,
                                      'cleared_on', CASE WHEN w.cleared_on <= as_of THEN w.cleared_on END,
                                      'reason', w.reason, 'detail', w.detail) ORDER BY w.raised_on DESC, w.id DESC)
                                    FROM credit.risk_warning w
                                   WHERE w.customer = file.customer AND w.raised_on <= as_of AND w.raised_on > as_of - 365), '[]'),
        'ratings', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'source', r.source, 'external_id', r.external_id, 'procedure', r.procedure,
                                 'agency_grade', r.agency_grade, 'agency_score', r.agency_score, 'score', r.score,
                                 'risk_level', r.risk_level, 'trend', r.trend, 'valid_from', r.valid_from,
                                 'valid_until', r.valid_until,
                                 'in_force', r.valid_from <= as_of AND r.valid_until > as_of)
                                 ORDER BY r.valid_from DESC, r.id DESC)
                               FROM credit.external_rating r
                              WHERE r.customer = file.customer AND r.received_at < as_of + 1), '[]'))
      INTO here;
    RETURN jsonb_build_object(
        'customer', a.customer,
        'as_of', as_of,
        'identity', jsonb_build_object(
            'customer_type', a.customer_type, 'region', a.region, 'group', a.parent, 'currency', a.currency,
            'customer_since', least(a.created_at::date, (node ->> 'first_invoice')::date),
            'status', a.status, 'grade', a.grade),
        'limits', jsonb_build_object(
            'in_force', CASE WHEN a.temporary_limit_until >= as_of THEN a.temporary_limit ELSE limit_then END,
            'credit_limit', limit_then, 'temporary_limit', a.temporary_limit, 'temporary_limit_until', a.temporary_limit_until,
            'policy_max_limit', a.policy_max_limit,
            'changes', evs -> 'changes',
            'requests', node -> 'requests'),
        'score', jsonb_build_object(
            'score', sc.score, 'grade', sc.grade, 'components', sc.components, 'evidence', sc.evidence,
            'history', node -> 'score_history',
            -- up / flat / down: today's score against the first recorded in the 12 months (5 points or more)
            'trend', CASE WHEN node ->> 'first_score' IS NULL OR sc.score IS NULL THEN NULL
                          WHEN sc.score - (node ->> 'first_score')::numeric >= 5 THEN 'up'
                          WHEN (node ->> 'first_score')::numeric - sc.score >= 5 THEN 'down'
                          ELSE 'flat' END),
        'risk_warnings', here -> 'risk_warnings',
        'ratings', here -> 'ratings',
        'payment_behaviour', jsonb_build_object(
            'basis', basis,
            'experiences', node -> 'experiences',
            'average_days_to_pay', node -> 'average_days_to_pay',
            'average_days_late', node -> 'average_days_late',
            'weighted_days_late', node -> 'weighted_days_late',
            'on_time_ratio', node -> 'on_time_ratio',
            'paydex', node -> 'paydex',
            'dso', dso,
            'last_payment', node -> 'last_payment',
            'sales_12_months', node -> 'sales_12_months',
            'highest_monthly_sales', node -> 'highest_monthly_sales',
            'open_receivables', coalesce((SELECT sum((o ->> 'open_amount')::numeric) FROM jsonb_array_elements(open_items) o), 0),
            'overdue', coalesce((SELECT sum((o ->> 'open_amount')::numeric) FROM jsonb_array_elements(open_items) o
                                  WHERE (o ->> 'days')::integer > 0), 0),
            'oldest_overdue', (SELECT jsonb_build_object('doc_no', o ->> 'doc_no', 'due_date', (o ->> 'due_date')::date,
                                                         'days', (o ->> 'days')::integer, 'open', (o ->> 'open_amount')::numeric)
                                 FROM jsonb_array_elements(open_items) o WHERE (o ->> 'days')::integer > 0
                                ORDER BY (o ->> 'days')::integer DESC, o ->> 'doc_no' LIMIT 1),
            'highest_dunning_level', node -> 'highest_dunning_level',
            'promises_broken', node -> 'promises_broken',
            'promises_kept', node -> 'promises_kept',
            'disputes', node -> 'disputes',
            'arrangements', node -> 'arrangements'),
        'holds_and_refusals', jsonb_build_object(
            'orders_held', node -> 'orders_held',
            'orders_refused', evs -> 'orders_refused',
            'near_limit_warnings', evs -> 'near_limit_warnings'),
        'decisions', evs -> 'decisions');
END
$$;

COMMENT ON FUNCTION credit._file_args(text, date) IS 'Internal: validates credit.file arguments';
COMMENT ON FUNCTION credit.file(text, date) IS 'The credit file (客户信用档案) of a customer as of a day, as one JSON document: identity, limits and their changes and requests, score and grade with history and trend, payment behaviour, holds and refusals, the decisions of the last 12 months';
COMMENT ON FUNCTION credit.file_html(text, text) IS 'The credit file as a self-contained page (zh or en): key figures; credit used against the limit (temporary limits and holds marked), the aging mix, score and grade, and days late over the last 12 months as SVG charts, the same figures in tables';
COMMENT ON FUNCTION credit.portfolio_html(date, text) IS 'The credit manager''s morning page for a day (zh or en): the portfolio against the day before, what changed since yesterday, customers nearest or over their limits, what is overdue with overdue and DSO over time, aging by region and customer type, the collection worklist by level and what the dunning ladder does today';
