-- Receivables metrics (published checks), payment-behaviour aggregates (serial = parallel, window
-- use, NULLs, bad input) and the payment_behavior view.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
-- DSO 45, best possible DSO 12, ADD 33: AR 15,000 of which 4,000 current, credit sales 10,000 in 30 days.
INSERT INTO credit.account (customer, credit_limit) VALUES ('DSO', 1e6), ('CB', 1e6), ('LATE', 1e6), ('NEW', 1e6);
SELECT credit.post_invoice('DSO', 'A', 5000, '2025-12-01', '2025-12-31') > 0,
       credit.post_invoice('DSO', 'B', 6000, '2026-01-05', '2026-01-20') > 0,
       credit.post_invoice('DSO', 'C', 4000, '2026-01-25', '2026-02-24') > 0;
SELECT ending_ar, current_ar, credit_sales, days, dso, best_possible_dso, average_days_delinquent
  FROM credit.receivables_metrics('2026-01-01', '2026-01-30', 'DSO');
SELECT credit.dso('2026-01-01', '2026-01-30', 'DSO'), credit.best_possible_dso('2026-01-01', '2026-01-30', 'DSO'),
       credit.average_days_delinquent('2026-01-01', '2026-01-30', 'DSO');
-- Count-back with 30-day months: AR 212,000; sales newest first 100,000 / 80,000 / 70,000 -> 73.714.
SELECT credit.post_invoice('CB', 'M0', 100000, '2026-06-15', '2026-08-15') > 0,
       credit.post_invoice('CB', 'M1', 80000, '2026-05-15', '2026-07-15') > 0,
       credit.post_invoice('CB', 'M2', 70000, '2026-04-15', '2026-06-15') > 0,
       credit.post_payment('CB', 38000, '2026-06-20', 'M2') > 0;
SELECT credit.count_back_dso('2026-06-30', 'CB', '30') AS count_back_30,
       credit.count_back_dso('2026-06-30', 'CB', 'calendar') AS count_back_calendar;
-- CEI, both published forms (N = months in the period, and N = 1).
SELECT credit.cei('2026-04-01', '2026-06-30', 'CB') AS cei_n3, credit.cei('2026-04-01', '2026-06-30', 'CB', 1) AS cei_n1;
SELECT beginning_ar, ending_ar, credit_sales, ar_turnover, average_collection_period
  FROM credit.receivables_metrics('2026-04-01', '2026-06-30', 'CB');
-- No sales: the ratios are NULL, not a division error.
SELECT dso, cei, ar_turnover FROM credit.receivables_metrics('2026-01-01', '2026-01-31', 'NEW');
SELECT * FROM credit.receivables_metrics('2026-02-01', '2026-01-01');
SELECT * FROM credit.receivables_metrics(NULL, '2026-01-01');
SELECT * FROM credit.receivables_metrics('2026-01-01', '2026-01-31', 'NOBODY');
SELECT * FROM credit.receivables_metrics('2026-01-01', '2026-01-31', NULL, NULL, 'weekly');

-- Aggregates on known values.
SELECT credit.weighted_days_late(d, a) AS wdl, credit.weighted_days_late_clamped(d, a) AS wdl_clamped,
       credit.paydex(d, a) AS paydex, credit.on_time_ratio(d, 0) AS on_time_by_count,
       credit.on_time_ratio(d, a, 3) AS on_time_by_amount
  FROM (VALUES (-10, 100::numeric), (20, 300), (3, 600), (NULL, 50), (5, NULL)) v(d, a);
-- The PAYDEX-like curve at its points and beyond.
SELECT d, credit.paydex(d, 1) FROM unnest(ARRAY[-60, -30, -25, -10, 0, 5, 15, 22, 30, 45, 60, 90, 120, 500]) d GROUP BY d ORDER BY d;
-- No rows, or only NULLs: NULL.
SELECT credit.weighted_days_late(d, a), credit.paydex(d, a), credit.on_time_ratio(d, 0)
  FROM (VALUES (NULL::int, NULL::numeric)) v(d, a) WHERE d IS NOT NULL;
-- As window functions.
SELECT n, credit.weighted_days_late(d, a) OVER (ORDER BY n) AS running_wdl
  FROM (VALUES (1, 10, 100::numeric), (2, 0, 100), (3, -20, 200)) v(n, d, a) ORDER BY n;
-- Bad input.
SELECT credit.weighted_days_late(1, 'NaN');
SELECT credit.paydex(1, -5);
SELECT credit.on_time_ratio(1, NULL::int);
SELECT credit.on_time_ratio(1, 10, -1);
SELECT credit.weighted_days_late(1, 1e40);

-- Serial and parallel aggregation give the same result, and the plan is parallel.
CREATE TABLE experiences AS
SELECT (i % 250 - 60)::int AS days, ((i * 7919) % 100000 / 100.0)::numeric(12,2) AS amount, i % 10 AS grp
  FROM generate_series(1, 200000) i;
ANALYZE experiences;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT credit.weighted_days_late(days, amount), credit.weighted_days_late_clamped(days, amount),
       credit.paydex(days, amount), credit.on_time_ratio(days, 5), credit.on_time_ratio(days, amount, 5)
  FROM experiences;
CREATE TEMP TABLE par AS
SELECT credit.weighted_days_late(days, amount) AS w, credit.weighted_days_late_clamped(days, amount) AS wc,
       credit.paydex(days, amount) AS p, credit.on_time_ratio(days, 5) AS oc, credit.on_time_ratio(days, amount, 5) AS oa
  FROM experiences;
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE ser AS
SELECT credit.weighted_days_late(days, amount) AS w, credit.weighted_days_late_clamped(days, amount) AS wc,
       credit.paydex(days, amount) AS p, credit.on_time_ratio(days, 5) AS oc, credit.on_time_ratio(days, amount, 5) AS oa
  FROM experiences;
SELECT par.*, par = ser AS same_serial_and_parallel FROM par, ser;
SELECT round(sum(days * amount) / sum(amount), 4) AS plain_sql FROM experiences;
SELECT grp, credit.weighted_days_late(days, amount) FROM experiences GROUP BY grp ORDER BY grp LIMIT 3;

-- payment_behavior: LATE paid 2, 7 and 12 days late and has one invoice overdue; NEW has no history.
SELECT credit.post_invoice('LATE', 'L' || i, 1000, date '2026-01-01' + 30 * i, date '2026-01-31' + 30 * i) > 0
  FROM generate_series(0, 3) i;
SELECT credit.post_payment('LATE', 1000, date '2026-01-31' + 30 * i + (i * 5 + 2)) > 0 FROM generate_series(0, 2) i;
SELECT customer, experiences, average_days_to_pay, weighted_days_late, on_time_ratio, paydex,
       overdue_amount, oldest_overdue_days > 0 AS overdue_now, last_payment_date
  FROM credit.payment_behavior WHERE customer IN ('LATE', 'NEW') ORDER BY customer;
SELECT doc_no, paid_on, amount, days_late, days_to_pay FROM credit.payment_experience WHERE customer = 'LATE' ORDER BY doc_no;
ROLLBACK;
