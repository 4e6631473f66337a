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

CREATE FUNCTION credit.file(customer text, as_of date DEFAULT current_date) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._refuse_on_citus('The credit file');
    WITH a0 AS (SELECT x.* FROM credit.account x
                 WHERE credit._file_args(file.customer, file.as_of) AND x.customer = file.customer),
    -- The permanent limit on the day: the last change by then, else the value the first later
    -- change replaced, else today's.
    a AS (SELECT a0.*, coalesce(
                (SELECT (e.after ->> 'credit_limit')::numeric FROM credit.event e
                  WHERE e.customer = a0.customer AND e.kind IN ('account_created', 'limit_changed')
                    AND e.happened_at < file.as_of + 1 AND e.after ? 'credit_limit' ORDER BY e.id DESC LIMIT 1),
                (SELECT (e.before ->> 'credit_limit')::numeric FROM credit.event e
                  WHERE e.customer = a0.customer AND e.kind = 'limit_changed'
                    AND e.happened_at >= file.as_of + 1 AND e.before ? 'credit_limit' ORDER BY e.id LIMIT 1),
                a0.credit_limit) AS limit_then
            FROM a0),
    sc AS (SELECT s.* FROM credit.score(file.customer, file.as_of) s),
    exp AS (SELECT e.* FROM credit.days_late_experience e
             WHERE e.customer = file.customer AND e.paid_on <= file.as_of AND e.paid_on > file.as_of - 365),
    sales AS (SELECT date_trunc('month', i.doc_date)::date AS month, sum(i.amount) AS amount FROM credit.invoice i
               WHERE i.customer = file.customer AND i.doc_date <= file.as_of AND i.doc_date > file.as_of - 365
               GROUP BY 1),
    open_items AS (SELECT g.* FROM credit.aging(file.as_of) g WHERE g.customer = file.customer),
    last_pay AS (SELECT s.doc_date, s.amount FROM credit.settlement s
                  WHERE s.customer = file.customer AND s.kind = 'payment' AND s.reversed_on IS NULL AND s.doc_date <= file.as_of
                  ORDER BY s.doc_date DESC, s.id DESC LIMIT 1),
    score_history AS (SELECT h.valid_from, h.score, h.grade FROM credit.history h
                       WHERE h.customer = file.customer AND h.valid_from <= file.as_of AND h.valid_from > file.as_of - 365
                         AND (h.score IS NOT NULL OR h.grade IS NOT NULL)),
    ev AS (SELECT e.* FROM credit.event e
            WHERE e.customer = file.customer AND e.happened_at < file.as_of + 1 AND e.happened_at >= file.as_of - 365)
    SELECT jsonb_build_object(
        'customer', a.customer,
        'as_of', file.as_of,
        'identity', jsonb_build_object(
            'customer_type', a.customer_type, 'region', a.region, 'group', a.parent, 'currency', a.currency,
            'customer_since', least(a.created_at::date, (SELECT min(i.doc_date) FROM credit.invoice i WHERE i.customer = a.customer)),
            'status', a.status, 'grade', a.grade),
        'limits', jsonb_build_object(
            'in_force', CASE WHEN a.temporary_limit_until >= file.as_of THEN a.temporary_limit ELSE a.limit_then END,
            'credit_limit', a.limit_then, 'temporary_limit', a.temporary_limit, 'temporary_limit_until', a.temporary_limit_until,
            'policy_max_limit', a.policy_max_limit,
            'changes', coalesce((SELECT jsonb_agg(jsonb_build_object('at', e.happened_at, 'kind', e.kind, 'before', e.before,
                                                                     'after', e.after, 'reason', e.reason, 'actor', e.actor)
                                                  ORDER BY e.id)
                                   FROM credit.event e
                                  WHERE e.customer = a.customer AND e.happened_at < file.as_of + 1
                                    AND e.kind IN ('account_created', 'limit_changed', 'temporary_limit_changed')), '[]'),
            'requests', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                      'id', r.id, 'requested_limit', r.requested_limit, 'current_limit', r.current_limit,
                                      'reason', r.reason, 'source', r.source, 'status', r.status, 'requested_by', r.requested_by,
                                      'requested_at', r.requested_at, 'decided_by', r.decided_by, 'decided_at', r.decided_at,
                                      'approvals', coalesce((SELECT jsonb_agg(jsonb_build_object('level', l.level, 'approver', l.approver,
                                                                                                 'as_role', l.as_role, 'at', l.approved_at)
                                                                              ORDER BY l.level)
                                                               FROM credit.limit_approval l WHERE l.customer = r.customer AND l.request_id = r.id), '[]'))
                                   ORDER BY r.id)
                                    FROM credit.limit_request r WHERE r.customer = a.customer AND r.requested_at < file.as_of + 1), '[]')),
        'score', jsonb_build_object(
            'score', (SELECT sc.score FROM sc), 'grade', (SELECT sc.grade FROM sc), 'components', (SELECT sc.components FROM sc),
            'evidence', (SELECT sc.evidence FROM sc),
            'history', coalesce((SELECT jsonb_agg(jsonb_build_object('day', h.valid_from, 'score', h.score, 'grade', h.grade)
                                                  ORDER BY h.valid_from) FROM score_history h), '[]'),
            -- up / flat / down: today's score against the first recorded in the 12 months (5 points or more)
            'trend', (SELECT CASE WHEN first.score IS NULL OR (SELECT sc.score FROM sc) IS NULL THEN NULL
                                  WHEN (SELECT sc.score FROM sc) - first.score >= 5 THEN 'up'
                                  WHEN first.score - (SELECT sc.score FROM sc) >= 5 THEN 'down'
                                  ELSE 'flat' END
                        FROM (SELECT (SELECT h.score FROM score_history h WHERE h.score IS NOT NULL
                                       ORDER BY h.valid_from LIMIT 1) AS score) first)),
        -- Early warnings raised in the 12 months (open on the day: cleared_on null or later).
        'risk_warnings', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                      'cause', w.cause, 'raised_on', w.raised_on,
                                      'cleared_on', CASE WHEN w.cleared_on <= file.as_of THEN w.cleared_on END,
                                      'reason', w.reason, 'detail', w.detail) ORDER BY w.raised_on DESC, w.id DESC)
                                    FROM credit.risk_warning w
                                   WHERE w.customer = a.customer AND w.raised_on <= file.as_of AND w.raised_on > file.as_of - 365), '[]'),
        -- External ratings received by the day, newest first, each with whether it counts that day.
        'ratings', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'source', r.source, 'external_id', r.external_id, 'procedure', r.procedure,
                                 'agency_grade', r.agency_grade, 'agency_score', r.agency_score, 'score', r.score,
                                 'risk_level', r.risk_level, 'trend', r.trend, 'valid_from', r.valid_from,
                                 'valid_until', r.valid_until,
                                 'in_force', r.valid_from <= file.as_of AND r.valid_until > file.as_of)
                                 ORDER BY r.valid_from DESC, r.id DESC)
                               FROM credit.external_rating r
                              WHERE r.customer = a.customer AND r.received_at < file.as_of + 1), '[]'),
        'payment_behaviour', jsonb_build_object(
            'basis', coalesce(current_setting('pg_credit.days_late_basis', true), 'payment'),
            'experiences', (SELECT count(*) FROM exp),
            'average_days_to_pay', (SELECT round(avg(e.days_to_pay), 1) FROM exp e),
            'average_days_late', (SELECT round(avg(e.days_late), 1) FROM exp e),
            'weighted_days_late', (SELECT credit.weighted_days_late(e.days_late, e.amount) FROM exp e),
            'on_time_ratio', (SELECT credit.on_time_ratio(e.days_late, e.amount, 0) FROM exp e),
            'paydex', (SELECT CASE WHEN count(*) >= 3 THEN credit.paydex(e.days_late, e.amount) END FROM exp e),
            'dso', credit.dso(file.as_of - 89, file.as_of, a.customer),
            'last_payment', (SELECT jsonb_build_object('date', p.doc_date, 'amount', p.amount) FROM last_pay p),
            'sales_12_months', coalesce((SELECT sum(s.amount) FROM sales s), 0),
            'highest_monthly_sales', (SELECT jsonb_build_object('month', s.month, 'amount', s.amount) FROM sales s
                                       ORDER BY s.amount DESC, s.month DESC LIMIT 1),
            'open_receivables', coalesce((SELECT sum(o.open_amount) FROM open_items o WHERE o.doc_type = 'invoice'), 0),
            'overdue', coalesce((SELECT sum(o.open_amount) FROM open_items o WHERE o.doc_type = 'invoice' AND o.days > 0), 0),
            'oldest_overdue', (SELECT jsonb_build_object('doc_no', o.doc_no, 'due_date', o.due_date, 'days', o.days, 'open', o.open_amount)
                                 FROM open_items o WHERE o.doc_type = 'invoice' AND o.days > 0 ORDER BY o.days DESC, o.doc_no LIMIT 1),
            'highest_dunning_level', (SELECT max(t.level) FROM credit.collection_task t
                                       WHERE t.customer = a.customer AND t.level IS NOT NULL
                                         AND t.created_for <= file.as_of AND t.created_for > file.as_of - 365),
            'promises_broken', (SELECT count(*) FROM credit.promise p WHERE p.customer = a.customer AND p.status = 'broken'
                                  AND p.decided_on <= file.as_of AND p.decided_on > file.as_of - 365),
            'promises_kept', (SELECT count(*) FROM credit.promise p WHERE p.customer = a.customer AND p.status = 'kept'
                                AND p.decided_on <= file.as_of AND p.decided_on > file.as_of - 365),
            'disputes', jsonb_build_object(
                'open', (SELECT count(*) FROM credit.invoice_dispute d WHERE d.customer = a.customer AND d.opened_on <= file.as_of
                           AND (d.resolved_on IS NULL OR d.resolved_on > file.as_of)),
                'opened_in_12_months', (SELECT count(*) FROM credit.invoice_dispute d WHERE d.customer = a.customer
                                          AND d.opened_on <= file.as_of AND d.opened_on > file.as_of - 365)),
            'arrangements', coalesce((SELECT jsonb_agg(jsonb_build_object('id', x.id, 'agreed_on', x.agreed_on, 'amount', x.amount,
                                                                         'status', CASE WHEN x.decided_on IS NULL OR x.decided_on > file.as_of
                                                                                        THEN 'active' ELSE x.status END)
                                                      ORDER BY x.id)
                                         FROM credit.arrangement x WHERE x.customer = a.customer AND x.agreed_on <= file.as_of), '[]')),
        'holds_and_refusals', jsonb_build_object(
            'orders_held', (SELECT count(*) FROM credit.order_hold o WHERE o.customer = a.customer
                              AND o.held_at < file.as_of + 1 AND o.held_at >= file.as_of - 365),
            'orders_refused', (SELECT count(*) FROM ev WHERE ev.kind = 'order_refused'),
            'near_limit_warnings', (SELECT count(*) FROM ev WHERE ev.kind = 'near_limit')),
        'decisions', coalesce((SELECT jsonb_agg(jsonb_build_object('at', ev.happened_at, 'kind', ev.kind, 'before', ev.before,
                                                                   'after', ev.after, 'reason', ev.reason, 'actor', ev.actor)
                                                ORDER BY ev.id)
                                 FROM ev
                                WHERE ev.kind IN ('limit_changed', 'temporary_limit_changed', 'terms_changed', 'status_changed',
                                                  'grade_changed', 'group_changed', 'limit_request_rejected', 'hold_released',
                                                  'hold_overridden', 'hold_cancelled', 'legal_referral', 'arrangement_made',
                                                  'arrangement_broken', 'arrangement_cancelled', 'invoice_cancelled',
                                                  'payment_reversed', 'credit_note_reversed', 'write_off_reversed')), '[]'))
      FROM a
$$;

COMMENT ON FUNCTION credit._file_args(text, date) IS 'Internal: validates credit.file arguments';
COMMENT ON FUNCTION credit.file(text, date) IS 'The credit file (客户信用档案) of a customer as of a day, as one JSON document: identity, limits and their changes and requests, score and grade with history and trend, payment behaviour, holds and refusals, the decisions of the last 12 months';
COMMENT ON FUNCTION credit.file_html(text, text) IS 'The credit file as a self-contained page (zh or en): key figures; credit used against the limit (temporary limits and holds marked), the aging mix, score and grade, and days late over the last 12 months as SVG charts, the same figures in tables';
COMMENT ON FUNCTION credit.portfolio_html(date, text) IS 'The credit manager''s morning page for a day (zh or en): the portfolio against the day before, what changed since yesterday, customers nearest or over their limits, what is overdue with overdue and DSO over time, aging by region and customer type, the collection worklist by level and what the dunning ladder does today';
