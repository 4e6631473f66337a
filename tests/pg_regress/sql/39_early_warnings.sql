-- Bad-debt early warning: the daily job raises a warning per customer and cause while the risk is
-- rising, once, and clears it when the cause is gone. Dates are relative; what is printed is not.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, customer_type, region, created_at) VALUES
    ('W-LATE', 50000, 'warn', 'east', now() - interval '2 years'),
    ('W-PLAN', 50000, 'warn', 'east', now() - interval '2 years'),
    ('W-RATE', 50000, 'warn', 'east', now() - interval '2 years'),
    ('W-FINE', 50000, 'warn', 'east', now() - interval '2 years');
-- W-LATE paid on time until three months ago, 30 days late since.
SELECT count(*) AS documents FROM (
    SELECT credit.post_invoice('W-LATE', 'WL-' || k, 1000, current_date - 200 + 15 * k, current_date - 170 + 15 * k),
           credit.post_payment('W-LATE', 1000, least(current_date - 170 + 15 * k + CASE WHEN k > 6 THEN 30 ELSE 0 END, current_date), 'WL-' || k)
      FROM generate_series(1, 8) k) x;
-- W-FINE pays on time all along.
SELECT count(*) AS documents FROM (
    SELECT credit.post_invoice('W-FINE', 'WF-' || k, 1000, current_date - 200 + 15 * k, current_date - 170 + 15 * k),
           credit.post_payment('W-FINE', 1000, current_date - 170 + 15 * k, 'WF-' || k)
      FROM generate_series(1, 8) k) x;
-- W-PLAN agreed to pay an overdue invoice in two instalments and missed the first.
SELECT credit.post_invoice('W-PLAN', 'WP-1', 2000, current_date - 60, current_date - 30) > 0 AS invoiced;
SELECT credit.arrange('W-PLAN', ARRAY['WP-1'],
                      jsonb_build_array(jsonb_build_object('due_date', current_date - 10, 'amount', 1000),
                                        jsonb_build_object('due_date', current_date + 20, 'amount', 1000)),
                      'two instalments', current_date - 20) > 0 AS arranged;
-- W-RATE: the agency lowered its rating.
SELECT credit.import_rating('W-RATE', 'creditsafe', jsonb_build_object('score', 82, 'rating_date', current_date - 60)) > 0 AS first,
       credit.import_rating('W-RATE', 'creditsafe', jsonb_build_object('score', 58, 'rating_date', current_date - 5)) > 0 AS lowered;

SELECT step, changes > 0 AS raised FROM credit.run_daily() WHERE step = 'risk_warnings';
SELECT customer, cause, regexp_replace(reason, '\d{4}-\d{2}-\d{2}', 'DATE') AS reason, cleared_on IS NULL AS open
  FROM credit.risk_warning ORDER BY customer, cause;
SELECT customer, detail ->> 'weighted_days_late' AS recent, detail ->> 'weighted_days_late_before' AS before, detail ->> 'threshold' AS threshold
  FROM credit.risk_warning WHERE cause = 'days_late_rising';
-- Announced once: events and, at commit, the outbox.
SET CONSTRAINTS ALL IMMEDIATE;
SELECT e.customer, e.after ->> 'cause' AS cause, (SELECT count(*) FROM credit.outbox o WHERE o.event_id = e.id) AS in_outbox
  FROM credit.event e WHERE e.kind = 'risk_warning' ORDER BY 1, 2;
-- Once per customer and cause: a second run raises nothing new.
SELECT changes AS second_run FROM credit.run_daily() WHERE step = 'risk_warnings';
SELECT count(*) AS warnings FROM credit.risk_warning;
-- The worklist and the credit file show them.
SELECT customer, risk_warnings FROM credit.collection_worklist WHERE customer LIKE 'W-%' GROUP BY 1, 2 ORDER BY 1;
SELECT w ->> 'cause' AS cause, w ->> 'cleared_on' AS cleared FROM jsonb_array_elements(credit.file('W-RATE') -> 'risk_warnings') w;
-- The cause clears: a new report of 80 — the warning clears on the next run, and says so.
SELECT credit.import_rating('W-RATE', 'creditsafe', jsonb_build_object('score', 80, 'rating_date', current_date)) > 0 AS recovered;
SELECT changes AS cleared FROM credit.run_daily() WHERE step = 'risk_warnings';
SELECT customer, cause, cleared_on = current_date AS cleared_today FROM credit.risk_warning WHERE customer = 'W-RATE';
SELECT kind, reason FROM credit.event WHERE kind = 'risk_cleared';
-- A score that fell: W-DROP paid on time (its score recorded 30 days ago), then invoices keyed in
-- late turned out far overdue.
INSERT INTO credit.account (customer, credit_limit, customer_type, region, created_at) VALUES ('W-DROP', 50000, 'warn', 'east', now() - interval '2 years');
SELECT count(*) AS documents FROM (
    SELECT credit.post_invoice('W-DROP', 'WD-' || k, 1000, current_date - 300 + 20 * k, current_date - 270 + 20 * k),
           credit.post_payment('W-DROP', 1000, current_date - 270 + 20 * k, 'WD-' || k)
      FROM generate_series(1, 10) k) x;
SELECT count(*) > 0 AS ran_30_days_ago FROM credit.run_daily(current_date - 30);
SELECT count(credit.post_invoice('W-DROP', 'WD-X' || k, 8000, current_date - 100 - k, current_date - 70 - k)) AS keyed_late
  FROM generate_series(1, 3) k;
SELECT changes > 0 AS raised FROM credit.run_daily() WHERE step = 'risk_warnings';
SELECT cause, (detail ->> 'drop')::numeric > 10 AS dropped_more_than_10, detail ->> 'threshold' AS threshold,
       reason LIKE 'the score fell from % to % in 30 days' AS says_so
  FROM credit.risk_warning WHERE customer = 'W-DROP';
-- Thresholds are policy: with 100 days allowed for the type, W-LATE's rise of 20 warns no more.
UPDATE credit.risk_warning SET cleared_on = current_date WHERE cleared_on IS NULL;
INSERT INTO credit.policy (customer_type, warning_days_late_rise) VALUES ('warn', 100);
SELECT credit._risk_warnings(current_date) IS NOT NULL AS ran_as_owner;
SELECT count(*) AS late_warnings_open FROM credit.risk_warning WHERE cause = 'days_late_rising' AND cleared_on IS NULL;
ROLLBACK;
