-- What users of the anchors expect besides: late-payment interest by dunning level (a rate per
-- level, or a margin over a reference rate by period; on tasks and statements; kept after the
-- principal is paid), grace days before a level fires, days late per payment or at the closing
-- payment, the provision adjustment to book, count-back DSO over idle months.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, customer_type) VALUES
    ('IN-A', 1e6, 'interest'), ('IN-B', 1e6, 'interest'), ('IN-C', 1e6, 'interest');
INSERT INTO credit.dunning_level (ladder, level, days, action, channel, interest_rate, interest_over_reference) VALUES
    ('interest', 1, 1, 'notice', 'email', 0.08, false),
    ('interest', 2, 31, 'escalate', 'phone', 0.08, true);
INSERT INTO credit.reference_rate (valid_from, rate, note) VALUES
    ('2025-01-01', 0.04, 'reference rate, first half'), ('2025-07-01', 0.035, 'reference rate, second half');
INSERT INTO credit.policy (customer_type, dunning_ladder) VALUES ('interest', 'interest');
-- 3,650 due 2025-05-31: 8 % a year for days 1-30 (0.80 a day), then 8 points over the reference
-- rate (12 %, 11.5 % from 1 July); 1,650 paid on 2025-06-20.
SELECT credit.post_invoice('IN-A', 'IA-1', 3650, '2025-05-01', '2025-05-31') > 0 AS posted,
       credit.post_payment('IN-A', 1650, '2025-06-20') > 0 AS part_paid;
SELECT customer, doc_no, due_date, days_late, open_amount, rate, interest FROM credit.late_interest('2025-06-30', 'IN-A');
-- by hand: 20 days on 3,650 at 8 % + 10 days on 2,000 at 8 % (to day 30)
SELECT round(3650 * 0.08 * 20 / 365 + 2000 * 0.08 * 10 / 365, 2) AS by_hand_june;
SELECT days_late, rate, interest,
       round(3650 * 0.08 * 20 / 365 + 2000 * 0.08 * 10 / 365 + 2000 * 0.12 * 0 / 365 + 2000 * 0.115 * 31 / 365, 2) AS by_hand
  FROM credit.late_interest('2025-07-31', 'IN-A');
-- Paid in full on 2025-08-10: the interest accrued to that day stays, and grows no more.
SELECT credit.post_payment('IN-A', 2000, '2025-08-10') > 0 AS paid;
SELECT days_late, open_amount, interest FROM credit.late_interest('2025-08-10', 'IN-A');
SELECT days_late, open_amount, interest FROM credit.late_interest('2025-12-31', 'IN-A');
-- As of a past day, what had accrued then.
SELECT interest FROM credit.late_interest('2025-06-30', 'IN-A');
-- On the collection worklist and on statements (apart from the balance).
SELECT credit.post_invoice('IN-B', 'IB-1', 1000, '2025-05-01', '2025-05-31') > 0 AS posted;
SELECT count(*) > 0 AS tasks FROM credit.run_collections('2025-07-15') WHERE customer = 'IN-B';
SELECT doc_no, interest = (SELECT li.interest FROM credit.late_interest(current_date, 'IN-B') li) AS as_today
  FROM credit.collection_worklist WHERE customer = 'IN-B' LIMIT 1;
SELECT section, doc_no, due_date, days, detail, balance FROM credit.statement('IN-A', '2025-08-01', '2025-08-31')
 WHERE section IN ('closing', 'interest');
-- A ladder without rates charges nothing.
SELECT count(*) AS no_rate FROM credit.late_interest('2025-12-31') WHERE customer NOT LIKE 'IN-%';

-- Grace days: the overdue levels wait; the pre-due reminder does not.
INSERT INTO credit.account (customer, credit_limit, customer_type) VALUES ('GR-A', 1e6, 'grace'), ('GR-B', 1e6, 'plain');
INSERT INTO credit.policy (customer_type, grace_days) VALUES ('grace', 5);
SELECT credit.post_invoice(c, c || '-1', 100, '2025-09-01', '2025-09-30') > 0 FROM unnest(ARRAY['GR-A', 'GR-B']) c;
SELECT d AS as_of, r.customer, r.level
  FROM unnest(ARRAY['2025-09-27', '2025-10-01', '2025-10-05', '2025-10-06']::date[]) d,
       credit.run_collections(d) r
 WHERE r.customer LIKE 'GR-%' AND r.change = 'task_created' ORDER BY 1, 2, 3;
SELECT grace_days FROM credit.effective_policy('GR-A');

-- Days late per payment (the default) or at the payment that closes the invoice.
INSERT INTO credit.account (customer, credit_limit) VALUES ('DL', 1e6);
SELECT credit.post_invoice('DL', 'DL-1', 1000, '2025-01-01', '2025-01-31') > 0,
       credit.post_payment('DL', 900, '2025-01-31') > 0,
       credit.post_payment('DL', 100, '2025-03-02') > 0;
SELECT doc_no, paid_on, amount, days_late FROM credit.payment_experience WHERE customer = 'DL' ORDER BY paid_on;
SELECT doc_no, paid_on, amount, days_late FROM credit.invoice_payment_experience WHERE customer = 'DL';
SELECT current_setting('pg_credit.days_late_basis') AS basis, weighted_days_late, on_time_ratio
  FROM credit.payment_behavior WHERE customer = 'DL';
SET pg_credit.days_late_basis = closing;
SELECT current_setting('pg_credit.days_late_basis') AS basis, weighted_days_late, on_time_ratio
  FROM credit.payment_behavior WHERE customer = 'DL';
SELECT (s.components -> 1) ->> 'value' AS weighted_days_late_in_score FROM credit.score('DL', '2025-06-30') s;
RESET pg_credit.days_late_basis;
SELECT (s.components -> 1) ->> 'value' AS weighted_days_late_in_score FROM credit.score('DL', '2025-06-30') s;
SET pg_credit.days_late_basis = sometimes;

-- The provision adjustment to book, given the allowance already on the books.
INSERT INTO credit.provision_rate (bucket, loss_rate) VALUES ('over 90', 0.5);
SELECT (SELECT expected_loss FROM credit.expected_loss('2025-12-31') WHERE customer IS NULL) AS required_by_matrix;
SELECT * FROM credit.provision_adjustment('2025-12-31', 100);
SELECT * FROM credit.provision_adjustment('2025-12-31', 100000);
SELECT adjustment, entry FROM credit.provision_adjustment('2025-12-31',
    (SELECT expected_loss FROM credit.expected_loss('2025-12-31') WHERE customer IS NULL));
SELECT regress.sqlstate_of($$SELECT credit.provision_adjustment('2025-12-31', -1)$$) AS negative,
       regress.sqlstate_of($$SELECT credit.provision_adjustment('2025-12-31', 'NaN')$$) AS nan,
       regress.sqlstate_of($$SELECT credit.provision_adjustment(NULL, 1)$$) AS null_day;

-- Count-back DSO over an idle month: counted in full by default, passed over on request.
INSERT INTO credit.account (customer, credit_limit) VALUES ('SEASON', 1e7);
SELECT credit.post_invoice('SEASON', 'S-' || m, amount, make_date(2025, m, 15), make_date(2025, m, 15) + 90) > 0
  FROM (VALUES (4, 80000), (6, 100000)) v(m, amount);
SELECT credit.count_back_dso('2025-06-30', 'SEASON') AS counting_may,
       credit.count_back_dso('2025-06-30', 'SEASON', 'calendar_skip_empty') AS passing_over_may,
       credit.count_back_dso('2025-06-30', 'SEASON', '30_skip_empty') AS passing_over_may_30;
SELECT regress.sqlstate_of($$SELECT credit.count_back_dso('2025-06-30', 'SEASON', 'skip')$$) AS bad_mode;
SELECT count(*) FROM credit.verify();
ROLLBACK;
