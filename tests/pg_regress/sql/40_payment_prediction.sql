-- Late-payment prediction on a generated ledger whose payers follow known probabilities: the
-- model trained on the first 14 months, judged on the 6 after, reaches at least 95 % of the best
-- possible AUC (that of the true probabilities) and is calibrated; predictions for open invoices
-- come with their factors; bad requests are refused. Everything printed is a comparison.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
SET LOCAL session_replication_role = replica;
DO $$
BEGIN
    EXECUTE (SELECT 'TRUNCATE ' || string_agg(c::regclass::text, ', ')
               FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, cond)
              WHERE e.extname = 'pg_credit' AND cond = '' AND (SELECT relkind FROM pg_class WHERE oid = c) = 'r');
END
$$;
RESET session_replication_role;
-- Nothing to predict with yet.
SELECT regress.sqlstate_of($$SELECT * FROM credit.payment_prediction()$$) AS no_model_yet;

-- 160 customers, each late with its own propensity; bigger invoices are later too. The truth is kept.
SELECT setseed(0.4242);
CREATE TEMP TABLE payer AS
SELECT 'PP-' || lpad(k::text, 3, '0') AS customer, random() AS propensity FROM generate_series(1, 160) k;
INSERT INTO credit.account (customer, credit_limit, created_at) SELECT customer, 1e9, now() - interval '3 years' FROM payer;
CREATE TEMP TABLE truth AS
SELECT p.customer, p.customer || '-' || j AS doc_no, current_date - 600 + 20 * j + (random() * 10)::int AS doc_date,
       round((200 + random() * 5000)::numeric, 2) AS amount, p.propensity
  FROM payer p, generate_series(0, 29) j;
ALTER TABLE truth ADD COLUMN p_late float8, ADD COLUMN days_late int;
UPDATE truth SET p_late = 1 / (1 + exp(-(-2.5 + 5 * propensity + 0.6 * (ln(amount::float8) - 7))));
UPDATE truth SET days_late = CASE WHEN random() < p_late THEN CASE WHEN random() < propensity THEN 31 + (random() * 40)::int
                                                                   ELSE 1 + (random() * 25)::int END
                                  ELSE -(random() * 5)::int END;
SELECT count(credit.post_invoice(customer, doc_no, amount, doc_date, doc_date + 30)) AS invoices FROM truth;
-- Paid when the truth says, if that day has come.
SELECT count(credit.post_payment(customer, amount, doc_date + 30 + days_late, doc_no)) AS payments
  FROM truth WHERE doc_date + 30 + days_late <= current_date ORDER BY 1;

-- Trained on invoices dated in the first 420 days whose outcome was known by then.
SELECT kind, examples > 400 AS enough FROM credit.train_payment_model(NULL, current_date - 180) ORDER BY model_id;
SELECT kind, features[1:3] AS first_features, cardinality(feature_mean) AS features, jsonb_array_length(weights) AS classes,
       class_examples[1] > 0 AND class_examples[2] > 0 AS classes_filled, trained_until = current_date - 180 AS window_kept
  FROM credit.payment_model ORDER BY id;

-- Judged on what came later (invoices dated after the window whose outcome is known: due more than
-- 30 days ago), against the best possible AUC: the true probabilities' on the same invoices.
SELECT credit.evaluate_payment_model((SELECT max(id) FROM credit.payment_model WHERE kind = 'binary')) AS e \gset
CREATE TEMP TABLE heldout AS
SELECT t.p_late, t.days_late > 0 AS late FROM truth t
 WHERE t.doc_date > current_date - 180 AND t.doc_date + 30 + 30 < current_date;
WITH r AS (SELECT late, rank() OVER (ORDER BY p_late) AS k FROM heldout),
     s AS (SELECT count(*) FILTER (WHERE late)::float8 AS pos, count(*) FILTER (WHERE NOT late)::float8 AS neg,
                  sum(k) FILTER (WHERE late)::float8 AS ranks FROM r)
SELECT (:'e'::jsonb ->> 'test_examples')::int = (SELECT count(*) FROM heldout) AS same_invoices,
       (:'e'::jsonb ->> 'auc_late')::float8 >= 0.95 * ((ranks - pos * (pos + 1) / 2) / (pos * neg)) AS reaches_95_percent_of_best_auc,
       (:'e'::jsonb ->> 'brier')::float8 < (:'e'::jsonb ->> 'brier_of_class_shares')::float8 AS brier_better_than_the_shares
  FROM s;
-- Calibrated: in every tenth of predicted probability with 30 invoices or more, what happened is
-- within 0.15 of what was predicted.
SELECT bool_and(abs((c ->> 'predicted')::float8 - (c ->> 'observed')::float8) < 0.15) AS calibrated,
       count(*) >= 3 AS bins_with_data
  FROM jsonb_array_elements(:'e'::jsonb -> 'calibration') c WHERE (c ->> 'invoices')::int >= 30;
SELECT (m ->> 'f1_macro')::float8 > (m ->> 'f1_macro_of_commonest_class')::float8 + 0.1 AS f1_macro_beats_the_commonest_class,
       (m ->> 'accuracy')::float8 >= (m ->> 'majority_class_accuracy')::float8 AS beats_the_commonest_class,
       (m ->> 'auc_very_late')::float8 > 0.6 AS very_late_ranked
  FROM (SELECT credit.evaluate_payment_model((SELECT max(id) FROM credit.payment_model WHERE kind = 'multinomial')) AS m) x;

-- Open invoices: three probabilities adding to 1, an expected date no earlier than the document,
-- three factors each.
SELECT count(*) = (SELECT count(*) FROM credit.invoice WHERE open_amount > 0) AS every_open_invoice,
       bool_and(abs(p_on_time + p_late + p_very_late - 1) < 1e-9) AS probabilities_add_up,
       bool_and(expected_payment_date >= due_date - 30) AS dates_sensible,
       bool_and(jsonb_array_length(factors) = 3) AS three_factors
  FROM credit.payment_prediction();
-- A habitual late payer's open invoice looks later than a punctual one's.
SELECT (SELECT avg(p.p_late + p.p_very_late) FROM credit.payment_prediction() p
         WHERE p.customer IN (SELECT customer FROM payer ORDER BY propensity DESC LIMIT 10))
     > (SELECT avg(p.p_late + p.p_very_late) FROM credit.payment_prediction() p
         WHERE p.customer IN (SELECT customer FROM payer ORDER BY propensity LIMIT 10)) AS late_payers_look_late;

-- The early warning hears the model: customers whose open invoices look very late.
SELECT credit._risk_warnings(current_date) > 0 AS step_raised;
SELECT count(*) > 0 AS warned,
       bool_and((detail ->> 'highest_probability')::numeric >= 0.5) AS above_the_threshold,
       bool_and(reason LIKE '% open invoice(s), % in all, look very late: up to %% likely') AS says_why
  FROM credit.risk_warning WHERE cause = 'predicted_very_late' AND raised_on = current_date;

-- The cash-in forecast, backtested: as of 150 days ago (the model knew nothing after 180 days
-- ago), eight weeks of expected receipts against what the generated payers then paid.
CREATE TEMP TABLE backtest AS
SELECT week_start, expected, actual FROM credit.cash_forecast(8, current_date - 150,
                                                              (SELECT max(id) FROM credit.payment_model WHERE kind = 'multinomial'))
 WHERE customer IS NULL;
SELECT count(*) AS weeks, bool_and(actual IS NOT NULL) AS all_weeks_ended,
       abs(sum(expected) - sum(actual)) / sum(actual) < 0.10 AS eight_weeks_within_10_percent,
       sum(abs(expected - actual)) / sum(actual) < 0.25 AS weekly_error_below_25_percent
  FROM backtest;
-- Per customer and in all: the customers' rows add up to the total of each week.
SELECT bool_and(t.expected = s.expected) AS customers_add_up
  FROM credit.cash_forecast(4) t
  JOIN (SELECT week_start, sum(expected) AS expected FROM credit.cash_forecast(4) WHERE customer IS NOT NULL GROUP BY 1) s
    USING (week_start)
 WHERE t.customer IS NULL;
-- A payment arrangement is promised money, on its instalment's date, and its invoice leaves the
-- predicted part.
SELECT i.customer AS plan_customer, i.doc_no AS plan_doc, i.open_amount AS plan_amount
  FROM credit.invoice i WHERE i.open_amount > 0 AND i.due_date < current_date ORDER BY i.open_amount DESC, i.doc_no LIMIT 1 \gset
SELECT credit.arrange(:'plan_customer', ARRAY[:'plan_doc'],
                      jsonb_build_array(jsonb_build_object('due_date', current_date + 10, 'amount', :plan_amount))) > 0 AS arranged;
SELECT week_start = current_date + 7 AS second_week, promised = :plan_amount AS instalment_promised
  FROM credit.cash_forecast(4) WHERE customer = :'plan_customer' AND promised > 0;

-- Refused, with nothing stored.
SELECT regress.sqlstate_of($$SELECT * FROM credit.train_payment_model(NULL, current_date - 560)$$) AS too_few,
       regress.sqlstate_of($$SELECT * FROM credit.train_payment_model(NULL, current_date, 200, 300)$$) AS empty_class,
       regress.sqlstate_of($$SELECT * FROM credit.train_payment_model(NULL, current_date, 30, 10)$$) AS thresholds,
       regress.sqlstate_of($$SELECT * FROM credit.train_payment_model(current_date, current_date - 1)$$) AS window,
       regress.sqlstate_of($$SELECT * FROM credit.train_payment_model(NULL, current_date + 1)$$) AS future,
       regress.sqlstate_of($$SELECT credit.evaluate_payment_model(-1)$$) AS no_such_model,
       regress.sqlstate_of($$SELECT credit.evaluate_payment_model(NULL)$$) AS null_model,
       regress.sqlstate_of($$SELECT * FROM credit.cash_forecast(0)$$) AS no_weeks,
       regress.sqlstate_of($$SELECT * FROM credit.cash_forecast(8, current_date - 400)$$) AS model_from_the_future;
SELECT count(*) AS models FROM credit.payment_model;
ROLLBACK;
