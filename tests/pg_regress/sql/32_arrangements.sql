-- Payment arrangements (分期付款): a plan replaces the ladder while kept; payments pay the
-- instalments in order; a missed instalment breaks it and the ladder resumes from the invoices'
-- own due dates; statements and the schedule show the plan; the score counts kept and broken
-- plans; bad input changes nothing. Customers A-*; outputs filtered to them.
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO credit.account (customer, credit_limit, terms_days) VALUES
    ('A-PLAN', 100000, 30), ('A-GOOD', 100000, 30), ('A-OTHER', 100000, 30);
SELECT credit.post_invoice('A-PLAN', 'AP-1', 1000, '2024-03-01', '2024-03-31') > 0 AS posted,
       credit.post_invoice('A-PLAN', 'AP-2', 500, '2024-03-11', '2024-04-10') > 0 AS posted,
       credit.post_invoice('A-GOOD', 'AG-1', 900, '2024-03-01', '2024-03-31') > 0 AS posted,
       credit.post_invoice('A-GOOD', 'AG-2', 100, '2024-03-01', '2024-03-31') > 0 AS posted;
CREATE FUNCTION a_run(d date) RETURNS TABLE (change text, customer text, doc_no text, level int, detail text)
LANGUAGE sql AS $$
    SELECT r.change, r.customer, r.doc_no, r.level, regexp_replace(r.detail, 'arrangement \d+', 'arrangement N')
      FROM credit.run_collections(d) r
     WHERE r.customer LIKE 'A-%' ORDER BY r.change, r.customer, r.doc_no, r.level
$$;
-- In arrears: notices, then day 15 escalates and holds the account.
SELECT * FROM a_run('2024-04-16');
SELECT customer, status FROM credit.account WHERE customer LIKE 'A-%' ORDER BY 1;

-- The plan: both invoices (1,500 open) in three instalments. The ladder's open tasks on them are
-- resolved and the collection hold lifts.
SELECT credit.arrange('A-PLAN', ARRAY['AP-1', 'AP-2'],
                      '[{"due_date": "2024-05-01", "amount": 500}, {"due_date": "2024-06-01", "amount": 500},
                        {"due_date": "2024-07-01", "amount": "500"}]', 'three months', '2024-04-20') AS plan \gset
SELECT customer, agreed_on, amount, status, note, agreed_by = session_user AS by_me FROM credit.arrangement WHERE id = :plan;
SELECT doc_no, open_amount, original_due_date FROM credit.arrangement_invoice WHERE arrangement_id = :plan ORDER BY doc_no;
SELECT doc_no, level, status, outcome FROM credit.collection_task WHERE customer = 'A-PLAN' ORDER BY doc_no, level;
SELECT status, collection_hold_since FROM credit.account WHERE customer = 'A-PLAN';
SELECT kind, after - 'arrangement_id' AS after FROM credit.event WHERE customer = 'A-PLAN' AND kind LIKE 'arrangement%';
-- While the plan is kept, the ladder leaves its invoices alone (day +30 and more pass quietly);
-- another customer's invoices are not affected.
SELECT * FROM a_run('2024-04-30');
SELECT * FROM a_run('2024-05-01');
-- The first instalment paid on its due date, the second part-paid: paid in order.
SELECT credit.post_payment('A-PLAN', 500, '2024-05-01') > 0 AS paid;
SELECT credit.post_payment('A-PLAN', 200, '2024-05-20') > 0 AS paid;
SELECT * FROM a_run('2024-05-21');
SELECT instalment, due_date, amount, paid, open_amount, state, arrangement_status
  FROM credit.arrangement_schedule('2024-05-21', 'A-PLAN');
-- The aging keeps the invoices' own due dates; the statement shows the plan beside them.
SELECT doc_no, due_date, open_amount, days, bucket FROM credit.aging('2024-05-31', 'due') WHERE customer = 'A-PLAN' ORDER BY doc_no;
SELECT section, doc_no, due_date, balance, regexp_replace(detail, 'arrangement \d+', 'arrangement N') AS detail
  FROM credit.statement('A-PLAN', '2024-05-01', '2024-05-31')
 WHERE section IN ('open_item', 'closing');
-- The second instalment's day passes with 300 of it unpaid: broken the day after, logged, and the
-- ladder resumes from the invoices' own due dates (AP-1 is 63 days past due: legal referral).
SELECT * FROM a_run('2024-06-02');
SELECT status, decided_on, missed_instalment FROM credit.arrangement WHERE id = :plan;
SELECT kind, after - 'arrangement_id' AS after FROM credit.event WHERE customer = 'A-PLAN' AND kind = 'arrangement_broken';
SELECT instalment, paid, state, arrangement_status FROM credit.arrangement_schedule('2024-06-02', 'A-PLAN');
-- As of a day before the break, the schedule reads as it did then.
SELECT instalment, paid, state, arrangement_status FROM credit.arrangement_schedule('2024-05-31', 'A-PLAN');

-- A plan kept to the end: completed, the customer's commitments count as kept in the score.
SELECT credit.arrange('A-GOOD', ARRAY['AG-1', 'AG-2'],
                      '[{"due_date": "2024-05-15", "amount": 600}, {"due_date": "2024-06-15", "amount": 400}]',
                      NULL, '2024-04-20') AS good \gset
SELECT credit.post_payment('A-GOOD', 600, '2024-05-10') > 0, credit.post_payment('A-GOOD', 400, '2024-06-15') > 0;
SELECT * FROM a_run('2024-06-16');
SELECT status, decided_on, missed_instalment FROM credit.arrangement WHERE id = :good;
SELECT customer, (s.components -> 7) AS kept_commitments
  FROM unnest(ARRAY['A-GOOD', 'A-PLAN', 'A-OTHER']) customer, credit.score(customer, '2024-06-30') s ORDER BY 1;

-- Cancelling: the ladder resumes; the plan is not counted against the customer.
SELECT credit.post_invoice('A-OTHER', 'AO-1', 300, '2024-03-01', '2024-03-31') > 0 AS posted;
SELECT credit.arrange('A-OTHER', ARRAY['AO-1'], '[{"due_date": "2024-08-01", "amount": 300}]', NULL, '2024-06-20') AS other \gset
SELECT credit.cancel_arrangement(:other, 'agreed in error');
SELECT status, decided_on IS NOT NULL AS decided FROM credit.arrangement WHERE id = :other;
SELECT kind, reason FROM credit.event WHERE customer = 'A-OTHER' AND kind LIKE 'arrangement%' ORDER BY id;

-- Bad input: a clear error and nothing changes.
SELECT count(*) AS plans_before FROM credit.arrangement \gset
SELECT credit.post_invoice('A-OTHER', 'AO-2', 300, '2024-06-01', '2024-07-01') > 0 AS posted;
SELECT regress.sqlstate_of($$SELECT credit.arrange(NULL, ARRAY['AO-2'], '[]')$$) AS null_customer,
       regress.sqlstate_of($$SELECT credit.arrange('A-OTHER', NULL, '[]')$$) AS null_documents,
       regress.sqlstate_of($$SELECT credit.arrange('A-OTHER', '{}', '[{"due_date": "2024-08-01", "amount": 300}]')$$) AS no_documents,
       regress.sqlstate_of($$SELECT credit.arrange('NOBODY', ARRAY['AO-2'], '[{"due_date": "2030-08-01", "amount": 300}]')$$) AS no_customer,
       regress.sqlstate_of($$SELECT credit.arrange('A-OTHER', ARRAY['NOPE'], '[{"due_date": "2030-08-01", "amount": 300}]')$$) AS no_invoice,
       regress.sqlstate_of($$SELECT credit.arrange('A-OTHER', ARRAY['AO-2', 'AO-2'], '[{"due_date": "2030-08-01", "amount": 300}]')$$) AS twice,
       regress.sqlstate_of($$SELECT credit.arrange('A-GOOD', ARRAY['AG-1'], '[{"due_date": "2030-08-01", "amount": 300}]')$$) AS settled,
       regress.sqlstate_of($$SELECT credit.arrange('A-PLAN', ARRAY['AP-1'], '[{"due_date": "2030-08-01", "amount": 300}]', NULL, current_date + 1)$$) AS future;
\set VERBOSITY terse
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due_date": "2030-08-01", "amount": 200}]');
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due_date": "2030-08-01", "amount": 200}, {"due_date": "2030-08-01", "amount": 100}]');
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due_date": "2024-06-30", "amount": 300}]', NULL, '2024-07-02');
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due_date": "someday", "amount": 300}]');
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due": "2030-08-01", "amount": 300}]');
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due_date": "2030-08-01", "amount": "NaN"}]');
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due_date": "2030-08-01", "amount": -300}, {"due_date": "2030-09-01", "amount": 600}]');
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due_date": "2030-08-01", "amount": 300.000000001}]');
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '{"due_date": "2030-08-01", "amount": 300}');
SELECT regress.sqlstate_of(format('SELECT credit.cancel_arrangement(%s, %L)', :plan, 'too late')) AS broken_plan;
SELECT credit.cancel_arrangement(-1, 'none');
SELECT credit.cancel_arrangement(:plan, ' ');
\set VERBOSITY default
SELECT count(*) = :plans_before AS nothing_changed FROM credit.arrangement;
-- An invoice in an active plan cannot join another.
SELECT credit.arrange('A-OTHER', ARRAY['AO-2'], '[{"due_date": "2030-08-01", "amount": 300}]') > 0 AS arranged;
SELECT credit.arrange('A-OTHER', ARRAY['AO-1', 'AO-2'], '[{"due_date": "2030-08-01", "amount": 600}]');
-- A role without a pg_credit level cannot agree a plan (every level: 25_function_levels).
SET ROLE regress_clerk;
SELECT credit.arrange('A-OTHER', ARRAY['AO-1'], '[{"due_date": "2030-08-01", "amount": 300}]');
RESET ROLE;
-- A plan covers what is open when it is recorded: a part paid earlier on the day of the agreement
-- does not pay its instalments again, and the plan is not completed by it.
INSERT INTO credit.account (customer, credit_limit) VALUES ('A-SAMEDAY', 5000);
SELECT credit.post_invoice('A-SAMEDAY', 'AS-1', 200, current_date - 40, current_date - 10) > 0 AS posted;
SELECT credit.post_payment('A-SAMEDAY', 100) > 0 AS paid_half;
SELECT credit.arrange('A-SAMEDAY', ARRAY['AS-1'], jsonb_build_array(jsonb_build_object('due_date', current_date + 30, 'amount', 100)))
    AS sameday \gset
SELECT instalment, amount, paid, open_amount, state FROM credit.arrangement_schedule(current_date, 'A-SAMEDAY');
SELECT count(*) AS decided FROM credit.run_collections() WHERE customer = 'A-SAMEDAY' AND change LIKE 'arrangement%';
-- Money posted after it pays it, even dated the day of the agreement.
SELECT credit.post_payment('A-SAMEDAY', 100) > 0 AS paid_rest;
SELECT change, detail = format('arrangement %s paid', :sameday) AS this_plan
  FROM credit.run_collections() WHERE customer = 'A-SAMEDAY' AND change LIKE 'arrangement%';
SELECT count(*) FROM credit.verify();
