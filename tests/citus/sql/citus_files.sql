-- After citus_daily, in its database: what reads a customer's whole story or the whole ledger on
-- Citus, through the coordinator — the credit file and its page (from the customer's node, every
-- node's events and the coordinator's tables), the payment model trained and used, the
-- reconciliation with the finance ledger and a document's trace, the review's summary.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT CURRENT_DATE AS today \gset

-- The account changes of citus_daily (every grade, D-05's limit raised today, D-12 blacklisted
-- and reinstated) are recorded on the workers already; an order refused for D-04 is, on D-04's.
CREATE TABLE file_orders (id bigint, customer text NOT NULL, amount numeric NOT NULL,
                          status text NOT NULL DEFAULT 'open', PRIMARY KEY (customer, id));
SELECT create_distributed_table('file_orders', 'customer', colocate_with => 'credit.account');
SELECT credit.guard('file_orders', 'customer', 'amount', 'status');
SELECT regress_citus.state_of($$INSERT INTO file_orders VALUES (1, 'D-04', 999999)$$) AS refused;
SELECT bool_and(success) AS refusals_recorded FROM run_command_on_workers('SELECT credit.record_refusals()');

-- The file of each customer agrees with what pg_credit computes elsewhere on the cluster: its
-- score, its payment experiences, its open and overdue receivables (aging), its promises.
WITH a AS MATERIALIZED (SELECT customer FROM credit.account),
f AS MATERIALIZED (SELECT a.customer, credit.file(a.customer) AS file FROM a),
s AS MATERIALIZED (SELECT a.customer, x.score FROM a, LATERAL credit.score(a.customer) x),
g AS MATERIALIZED (SELECT x.customer, sum(x.open_amount) AS open_ar, sum(x.open_amount) FILTER (WHERE x.days > 0) AS overdue
                     FROM credit.aging(:'today') x WHERE x.doc_type = 'invoice' GROUP BY 1),
e AS MATERIALIZED (SELECT x.customer, count(*) AS experiences FROM credit.days_late_experience x
                    WHERE x.paid_on <= :'today' AND x.paid_on > :'today'::date - 365 GROUP BY 1)
SELECT count(*) AS files,
       count(*) FILTER (WHERE (f.file -> 'score' ->> 'score')::numeric IS DISTINCT FROM s.score) AS score_differs,
       count(*) FILTER (WHERE (f.file -> 'payment_behaviour' ->> 'experiences')::bigint <> coalesce(e.experiences, 0)) AS experiences_differ,
       count(*) FILTER (WHERE (f.file -> 'payment_behaviour' ->> 'open_receivables')::numeric <> coalesce(g.open_ar, 0)) AS receivables_differ,
       count(*) FILTER (WHERE (f.file -> 'payment_behaviour' ->> 'overdue')::numeric <> coalesce(g.overdue, 0)) AS overdue_differs,
       count(*) FILTER (WHERE f.file -> 'identity' ->> 'grade' IS NULL) AS without_grade
  FROM f JOIN s USING (customer) LEFT JOIN g USING (customer) LEFT JOIN e USING (customer);
-- The re-grade reads every customer's score inputs at once (each node answers for its own); each
-- of its scores is the customer's credit.score of that day (read on its node alone), on both bases.
SET citus.enable_ddl_propagation = off;  -- a helper of this session, on the coordinator alone
CREATE FUNCTION pg_temp.regrade_against_score(today date) RETURNS text LANGUAGE sql AS $$
    WITH r AS MATERIALIZED (SELECT v.d, x.customer, x.score
                              FROM (VALUES (today), (today - 60)) v(d), LATERAL credit.regrade(v.d, true) x),
         s AS MATERIALIZED (SELECT r.d, r.customer, x.score FROM r, LATERAL credit.score(r.customer, r.d) x)
    SELECT format('%s: %s reviews, %s scored, %s differing', current_setting('pg_credit.days_late_basis'),
                  count(*), count(r.score), count(*) FILTER (WHERE r.score IS DISTINCT FROM s.score))
      FROM r JOIN s USING (d, customer) $$;
RESET citus.enable_ddl_propagation;
SET pg_credit.days_late_basis = payment;
SELECT pg_temp.regrade_against_score(:'today');
SET pg_credit.days_late_basis = closing;
SELECT pg_temp.regrade_against_score(:'today');
RESET pg_credit.days_late_basis;
-- The events of every node, as the file reads them (each worker's in a query Citus routes there),
-- are each node's own, read over a connection of its own: per node, the same count.
WITH a AS MATERIALIZED (SELECT array_agg(customer) AS customers FROM credit.account),
routed AS (SELECT e.node, count(*) AS events FROM a, credit._events_on_citus(a.customers, '-infinity') e GROUP BY e.node),
direct AS (SELECT d.groupid AS node, jsonb_array_length(r.result::jsonb -> 'events') AS events
             FROM a, pg_dist_node d,
                  master_run_on_worker(ARRAY[d.nodename], ARRAY[d.nodeport],
                                       ARRAY[format('SELECT credit._events_here(%L::text[], ''-infinity'', NULL)', a.customers)], false) r
            WHERE d.groupid > 0)
SELECT count(*) AS nodes, count(*) FILTER (WHERE r.events = d.events) AS same_events, bool_and(r.events > 0) AS each_has_events
  FROM routed r JOIN direct d USING (node);
-- D-01: its oldest overdue invoice, posted after the job (on its worker).
SELECT x -> 'payment_behaviour' -> 'oldest_overdue' ->> 'doc_no' AS oldest_overdue,
       x -> 'payment_behaviour' ->> 'highest_dunning_level' AS highest_level
  FROM credit.file('D-01') x;
-- D-05's limit, raised today on its worker: yesterday's file has the limit then (the change's
-- "before"), today's the change itself, by the person who made it.
SELECT (credit.file('D-05', :'today'::date - 1) -> 'limits' ->> 'credit_limit') AS limit_yesterday,
       (credit.file('D-05') -> 'limits' ->> 'credit_limit') AS limit_today,
       (SELECT jsonb_agg(jsonb_build_object('kind', c ->> 'kind', 'before', c -> 'before' -> 'credit_limit',
                                            'after', c -> 'after' -> 'credit_limit', 'actor', c ->> 'actor'))
          FROM jsonb_array_elements(credit.file('D-05') -> 'limits' -> 'changes') c) AS changes;
-- D-12's decisions: the grade set by the job, blacklisted and reinstated by the manager, its terms
-- changed — each recorded on D-12's worker with its reason.
SELECT d ->> 'kind' AS kind, d ->> 'reason' LIKE 'regrade as of%' AS by_regrade,
       CASE WHEN d ->> 'reason' LIKE 'regrade as of%' THEN NULL ELSE d ->> 'reason' END AS reason
  FROM jsonb_array_elements(credit.file('D-12') -> 'decisions') d;
-- D-09's broken promise and the early warnings it raised (those live on the coordinator).
SELECT x -> 'payment_behaviour' ->> 'promises_broken' AS promises_broken,
       (SELECT string_agg(w ->> 'cause', ' ' ORDER BY w ->> 'cause') FROM jsonb_array_elements(x -> 'risk_warnings') w) AS warnings
  FROM credit.file('D-09') x;
-- D-04's refused order, recorded on its worker.
SELECT x -> 'holds_and_refusals' AS holds_and_refusals FROM credit.file('D-04') x;
-- The basis of days late is the session's, on the customer's node too: D-02 pays an invoice in
-- two parts, on time and 30 days late: two experiences per payment, one at the closing payment.
SELECT credit.post_invoice('D-02', 'SPLIT', 1000, :'today'::date - 100, :'today'::date - 70) > 0 AS posted,
       credit.post_payment('D-02', 500, :'today'::date - 70, 'SPLIT') > 0 AS paid_half,
       credit.post_payment('D-02', 500, :'today'::date - 40, 'SPLIT') > 0 AS paid_rest;
SELECT x -> 'payment_behaviour' ->> 'basis' AS basis, x -> 'payment_behaviour' ->> 'experiences' AS experiences,
       x -> 'payment_behaviour' ->> 'weighted_days_late' AS weighted_days_late, x -> 'score' -> 'components' -> 1 ->> 'value' AS score_wdl
  FROM credit.file('D-02') x;
SET pg_credit.days_late_basis = 'closing';
SELECT x -> 'payment_behaviour' ->> 'basis' AS basis, x -> 'payment_behaviour' ->> 'experiences' AS experiences,
       x -> 'payment_behaviour' ->> 'weighted_days_late' AS weighted_days_late, x -> 'score' -> 'components' -> 1 ->> 'value' AS score_wdl
  FROM credit.file('D-02') x;
SELECT count(*) AS closing_experiences FROM credit.invoice_payment_experience
 WHERE customer = 'D-02' AND paid_on <= :'today' AND paid_on > :'today'::date - 365;
SELECT credit.file_html('D-02', 'en') AS page_closing \gset
RESET pg_credit.days_late_basis;
-- A BI tool's read of the view: a session's SET stays on the coordinator, the workers read the
-- database's basis; in a transaction, SET LOCAL with citus.propagate_set_commands = local reaches
-- them (docs/citus.md).
SET pg_credit.days_late_basis = 'closing';
SELECT count(*) AS session_set_reaches_workers_not FROM credit.days_late_experience WHERE customer = 'D-02';
RESET pg_credit.days_late_basis;
SET citus.propagate_set_commands = 'local';
BEGIN;
SET LOCAL pg_credit.days_late_basis = 'closing';
SELECT count(*) AS set_local_reaches_workers FROM credit.days_late_experience WHERE customer = 'D-02';
COMMIT;
RESET citus.propagate_set_commands;
SELECT count(*) AS payment_basis FROM credit.payment_experience WHERE customer = 'D-02';
SELECT count(*) AS closing_basis FROM credit.invoice_payment_experience WHERE customer = 'D-02';
SELECT credit.file_html('D-02', 'en') AS page_payment \gset
-- The page's days-late table counts the experiences of the session's basis, on Citus too.
SELECT (SELECT coalesce(sum(m[1]::int), 0) FROM regexp_matches(substring(:'page_closing' FROM '<table class="days-late">.*?</table>'),
                                                               '<td class="num">([0-9]+)</td></tr>', 'g') m)
       = (SELECT count(*) FROM credit.invoice_payment_experience
           WHERE customer = 'D-02' AND paid_on <= current_date AND paid_on > current_date - 365) AS page_counts_closing,
       (SELECT coalesce(sum(m[1]::int), 0) FROM regexp_matches(substring(:'page_payment' FROM '<table class="days-late">.*?</table>'),
                                                               '<td class="num">([0-9]+)</td></tr>', 'g') m)
       = (SELECT count(*) FROM credit.payment_experience
           WHERE customer = 'D-02' AND paid_on <= current_date AND paid_on > current_date - 365) AS page_counts_payment,
       :'page_closing' <> :'page_payment' AS bases_differ;
-- Bad arguments: as on one node.
SELECT credit.file('NOBODY');
-- (tomorrow: by its SQLSTATE, the message names the date)
SELECT regress_citus.state_of($$SELECT credit.file('D-01', current_date + 1)$$) AS tomorrow;
-- On a worker: refused, it runs through the coordinator.
SELECT bool_and(result LIKE '%through the coordinator%') AS refused_on_workers
  FROM run_command_on_workers($$SELECT credit.file('D-01')$$);

-- The page, as the manager (a reader's level is enough): the figures and the charts.
SET ROLE regress_daily_manager;
SELECT credit.file_html('D-07') AS page_zh \gset
SELECT credit.file_html('D-07', 'en') AS page_en \gset
RESET ROLE;
SELECT position('客户信用档案 — D-07' IN :'page_zh') > 0 AS title_zh,
       position('Credit file — D-07' IN :'page_en') > 0 AS title_en,
       (length(:'page_en') - length(replace(:'page_en', '<svg', ''))) / 4 AS charts,
       position('Days late by month of payment' IN :'page_en') > 0 AS days_late_chart;

-- The payment model, trained on the cluster's ledger: every invoice due more than 30 days ago has
-- a known outcome (paid, or still open and late).
SET ROLE regress_daily_manager;
SELECT kind, examples = (SELECT count(*) FROM credit.invoice WHERE due_date + 30 < :'today') AS every_decided_invoice
  FROM credit.train_payment_model() ORDER BY kind;
RESET ROLE;
-- Predictions for D-01's open invoices (each a distribution), and the cash forecast: expected
-- receipts no more than what is open, promised nothing (no open promise), every customer with
-- open invoices in it.
SELECT count(*) AS predictions, bool_and(abs(p_on_time + p_late + p_very_late - 1) < 0.0001) AS distributions
  FROM credit.payment_prediction() WHERE customer = 'D-01';
-- The same predictions asked for D-01 alone (its ledger read on its node).
SELECT count(*) AS predictions,
       count(*) FILTER (WHERE a.invoice_id IS NULL OR b.invoice_id IS NULL OR a.p_late <> b.p_late
                           OR a.expected_payment_date <> b.expected_payment_date OR a.factors <> b.factors) AS differing
  FROM credit.payment_prediction(NULL, 'D-01') a
  FULL JOIN (SELECT * FROM credit.payment_prediction() WHERE customer = 'D-01') b USING (invoice_id);
SELECT sum(f.expected) <= (SELECT sum(open_amount) FROM credit.invoice) AS within_open, sum(f.promised) AS promised,
       count(*) = 13 AS weeks,
       (SELECT count(DISTINCT x.customer) FROM credit.cash_forecast() x WHERE x.customer IS NOT NULL)
       = (SELECT count(DISTINCT i.customer) FROM credit.invoice i WHERE i.open_amount > 0) AS every_customer_with_open_invoices
  FROM credit.cash_forecast() f WHERE f.customer IS NULL;

-- Reconciliation with the finance ledger: the finance system's items are today's open items but
-- for D-01's LATE-2 (missing there), D-02-1 (another amount), an invoice pg_credit has settled
-- (D-03-5) and one it never had (D-03-X).
SELECT credit.load_finance_items(:'today', format($q$
    SELECT customer, doc_no, CASE WHEN doc_no = 'D-02-1' THEN open_amount - 20 ELSE open_amount END AS amount,
           doc_date, due_date
      FROM credit.aging(%L) WHERE doc_no <> 'LATE-2'
    UNION ALL SELECT 'D-03', 'D-03-5', 1030, %L::date - 180, %L::date - 150
    UNION ALL SELECT 'D-03', 'D-03-X', 77, %L::date - 10, %L::date + 20$q$, :'today', :'today', :'today', :'today', :'today')) AS loaded;
SELECT kind, customer, doc_no, credit_amount, finance_amount, difference, status FROM credit.reconcile(:'today');
SELECT finance_items, open_items, matched, differences FROM credit.reconciliation ORDER BY id DESC LIMIT 1;
-- A document's story: D-09-1, posted, dunned (tasks created on D-09's worker), promised (the
-- promise's event on the coordinator) and broken (on the worker).
SELECT happened_on - :'today'::date AS day, what, count(*) AS times
  FROM credit.reconciliation_trace('D-09', 'D-09-1') GROUP BY 1, 2 ORDER BY 1, 2;

-- The review's summary, from the coordinator (a dry run over every node).
SELECT rows_for, customers, unchanged + increases + decreases + requests + unrated AS counted
  FROM credit.regrade_summary() WHERE rows_for = 'all';
