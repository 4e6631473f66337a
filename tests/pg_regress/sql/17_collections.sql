-- Collections: the dunning ladder on its boundary days, idempotence, holds that stop shipments and
-- lift by themselves, promises, disputes, legal referral, bad input. Customers K-*; outputs are
-- filtered to them (earlier files leave other customers' invoices behind).
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO credit.account (customer, credit_limit, terms_days) VALUES
    ('K-LADDER', 100000, 30), ('K-MANUAL', 100000, 30), ('K-DISPUTE', 100000, 30), ('K-PROMISE', 100000, 30);
CREATE TABLE k_orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL);
SELECT credit.guard('k_orders', 'customer', 'amount');
-- Due 2024-03-31.
SELECT credit.post_invoice('K-LADDER', 'L-1', 1000, '2024-03-01') > 0 AS posted;
SELECT due_date FROM credit.invoice WHERE doc_no = 'L-1';

-- Each level on its boundary day, and not the day before.
CREATE FUNCTION k_run(d date) RETURNS TABLE (change text, customer text, doc_no text, level int, detail text)
LANGUAGE sql AS $$
    SELECT r.change, r.customer, r.doc_no, r.level, r.detail FROM credit.run_collections(d) r
     WHERE r.customer LIKE 'K-%' ORDER BY r.change, r.customer, r.doc_no, r.level
$$;
SELECT * FROM k_run('2024-03-27');   -- day -4
SELECT * FROM k_run('2024-03-28');   -- day -3: remind
SELECT * FROM k_run('2024-03-28');   -- again: nothing
SELECT * FROM k_run('2024-03-31');   -- due date
SELECT * FROM k_run('2024-04-01');   -- day +1: first notice
SELECT * FROM k_run('2024-04-14');
SELECT status FROM credit.account WHERE customer = 'K-LADDER';
SELECT * FROM k_run('2024-04-15');   -- day +15: escalate and hold
SELECT status, collection_hold_since FROM credit.account WHERE customer = 'K-LADDER';
-- Stop shipments: the guard refuses the held customer's new credit orders.
INSERT INTO k_orders VALUES (1, 'K-LADDER', 10);
-- The refusal rolled back, but it is recorded (spooled, then moved into credit.event by a
-- background recorder, in its own transaction).
SELECT regress.wait_for_refusals() AS recorded;
SELECT kind, reason, after ->> 'table' AS "table", after -> 'reasons' AS reasons, after ->> 'amount' AS amount
  FROM credit.event WHERE customer = 'K-LADDER' AND kind = 'order_refused';
SELECT kind, payload ->> 'kind' AS payload_kind FROM credit.outbox WHERE customer = 'K-LADDER' AND kind = 'order_refused';
SELECT * FROM k_run('2024-04-29');
SELECT * FROM k_run('2024-04-30');   -- day +30: second notice
SELECT * FROM k_run('2024-05-29');
SELECT * FROM k_run('2024-05-30');   -- day +60: legal referral
SELECT legal_referred_on FROM credit.account WHERE customer = 'K-LADDER';
SELECT doc_no, legal_referred_on FROM credit.invoice WHERE doc_no = 'L-1';
SELECT level, action, channel, assigned_to, open_amount, days_past_due, created_for, status
  FROM credit.collection_task WHERE customer = 'K-LADDER' ORDER BY level;
-- Exactly once: every date again, in any order, creates nothing.
SELECT count(*) AS replayed FROM (VALUES ('2024-05-30'::date), ('2024-03-28'), ('2024-04-15'), ('2024-04-01')) d(d), k_run(d.d);
SELECT count(*) AS tasks FROM credit.collection_task WHERE customer = 'K-LADDER';

-- The collection hold lifts by itself once the invoices that caused it are paid.
SELECT credit.post_payment('K-LADDER', 400, '2024-06-01') > 0 AS part_paid;
SELECT status FROM credit.account WHERE customer = 'K-LADDER';
SELECT credit.post_payment('K-LADDER', 600, '2024-06-02') > 0 AS paid;
SELECT status, collection_hold_since FROM credit.account WHERE customer = 'K-LADDER';
INSERT INTO k_orders VALUES (1, 'K-LADDER', 10);
SELECT status, count(*) FROM credit.collection_task WHERE customer = 'K-LADDER' GROUP BY status ORDER BY status;   -- its open task was resolved by the payment
SELECT count(*) FILTER (WHERE status = 'open') AS open_tasks FROM credit.collection_task WHERE customer = 'K-LADDER';

-- A person's hold stays until a person lifts it.
SELECT credit.post_invoice('K-MANUAL', 'M-1', 500, '2024-03-01') > 0 AS posted;
UPDATE credit.account SET status = 'hold' WHERE customer = 'K-MANUAL';
SELECT * FROM k_run('2024-04-15') WHERE customer = 'K-MANUAL';
SELECT status, collection_hold_since FROM credit.account WHERE customer = 'K-MANUAL';
SELECT credit.post_payment('K-MANUAL', 500, '2024-04-20') > 0 AS paid;
SELECT status FROM credit.account WHERE customer = 'K-MANUAL';
SELECT credit.reinstate('K-MANUAL', 'paid, released by credit manager');
-- And a person who lifts a collection hold early takes it over: collections does not re-lift or
-- re-hold for the same invoice (its hold level was already reached).
SELECT credit.post_invoice('K-MANUAL', 'M-2', 500, '2024-05-01') > 0 AS posted;
SELECT * FROM k_run('2024-06-15') WHERE customer = 'K-MANUAL' AND change = 'account_held';
SELECT credit.reinstate('K-MANUAL', 'customer pays on Friday');
SELECT status, collection_hold_since FROM credit.account WHERE customer = 'K-MANUAL';
SELECT * FROM k_run('2024-06-16') WHERE customer = 'K-MANUAL';

-- A run for a past date replays what that day's run would have created, even for an invoice paid
-- since (its tasks are resolved in the same run; no hold for an invoice that is paid now).
INSERT INTO credit.account (customer, credit_limit, terms_days) VALUES ('K-REPLAY', 10000, 30);
SELECT credit.post_invoice('K-REPLAY', 'RP-1', 900, '2024-01-01') > 0 AS posted;
SELECT credit.post_payment('K-REPLAY', 900, '2024-03-01') > 0 AS paid_later;
SELECT * FROM k_run('2024-02-20') WHERE customer = 'K-REPLAY';
SELECT status FROM credit.account WHERE customer = 'K-REPLAY';
SELECT level, open_amount, days_past_due, status FROM credit.collection_task WHERE customer = 'K-REPLAY' ORDER BY level;

-- Disputes: out of dunning and out of the overdue rule until resolved.
INSERT INTO credit.policy (customer_type, overdue_block_days) VALUES ('k-strict', 10);
UPDATE credit.account SET customer_type = 'k-strict' WHERE customer = 'K-DISPUTE';
SELECT credit.post_invoice('K-DISPUTE', 'D-1', 700, current_date - 60) > 0 AS posted;
SELECT allowed, reasons FROM credit.check('K-DISPUTE', 1);
SELECT credit.dispute('K-DISPUTE', 'D-1', 'goods arrived damaged') > 0 AS disputed;
SELECT allowed, reasons FROM credit.check('K-DISPUTE', 1);
SELECT oldest_open_due FROM credit.account WHERE customer = 'K-DISPUTE';
SELECT * FROM k_run(current_date) WHERE customer = 'K-DISPUTE';
SELECT credit.resolve_dispute('K-DISPUTE', 'D-1', 'customer accepts after inspection') > 0 AS resolved;
SELECT allowed, reasons FROM credit.check('K-DISPUTE', 1);
SELECT * FROM k_run(current_date) WHERE customer = 'K-DISPUTE';
SELECT status FROM credit.account WHERE customer = 'K-DISPUTE';
-- A dispute opened in a contact cancels the task's open work.
SELECT credit.post_invoice('K-DISPUTE', 'D-2', 300, current_date - 40) > 0 AS posted;
SELECT * FROM k_run(current_date) WHERE doc_no = 'D-2';
SELECT credit.log_contact((SELECT max(id) FROM credit.collection_task WHERE doc_no = 'D-2' AND status = 'open'),
                          'disputed', 'price differs from the quote') > 0 AS logged;
SELECT doc_no, reason, opened_by IS NOT NULL AS by FROM credit.invoice_dispute WHERE doc_no = 'D-2';
SELECT status, count(*) FROM credit.collection_task WHERE doc_no = 'D-2' GROUP BY status ORDER BY status;
-- Past dates inside the dispute window are not dunned either.
SELECT * FROM k_run(current_date - 1) WHERE doc_no = 'D-2';

-- Promises: kept, broken (escalates on the next run), replaced.
SELECT credit.post_invoice('K-PROMISE', 'P-1', 1000, '2024-01-01') > 0 AS posted;
SELECT credit.post_invoice('K-PROMISE', 'P-2', 1000, '2024-01-01') > 0 AS posted;
SELECT * FROM k_run('2024-02-01') WHERE customer = 'K-PROMISE';
SELECT id AS p1_task FROM credit.collection_task WHERE doc_no = 'P-1' AND level = 2 \gset
SELECT id AS p2_task FROM credit.collection_task WHERE doc_no = 'P-2' AND level = 2 \gset
SELECT credit.log_contact(:p1_task, 'promised', 'pays half next week', 500, '2024-02-08') > 0 AS promised;
SELECT credit.log_contact(:p2_task, 'no_answer') > 0 AS tried;
SELECT credit.log_contact(:p2_task, 'promised', NULL, 1000, '2024-02-10') > 0 AS promised;
SELECT amount, made_on, promised_date, status FROM credit.promise WHERE customer = 'K-PROMISE' ORDER BY id;
-- While a promise runs, the invoice is not dunned further.
SELECT * FROM k_run('2024-02-05') WHERE customer = 'K-PROMISE';
SELECT credit.post_payment('K-PROMISE', 500, '2024-02-07', 'P-1') > 0 AS paid;
SELECT * FROM k_run('2024-02-09') WHERE customer = 'K-PROMISE';   -- P-1 kept
SELECT * FROM k_run('2024-02-10') WHERE customer = 'K-PROMISE';   -- P-2 due today: still open
SELECT * FROM k_run('2024-02-11') WHERE customer = 'K-PROMISE';   -- P-2 broken: escalation
SELECT * FROM k_run('2024-02-11') WHERE customer = 'K-PROMISE';
SELECT doc_no, action, assigned_to, promise_id IS NOT NULL AS for_promise, status
  FROM credit.collection_task WHERE customer = 'K-PROMISE' AND status = 'open' ORDER BY id;
SELECT amount, status, decided_on FROM credit.promise WHERE customer = 'K-PROMISE' ORDER BY id;

-- Worklist and effectiveness.
SELECT customer, doc_no, action, open_amount, account_status, last_contact_outcome
  FROM credit.collection_worklist WHERE customer LIKE 'K-%' ORDER BY priority DESC, task_id;
SELECT tasks, contacts, promises_made, promises_kept, promises_broken, collected_after_contact
  FROM credit.collection_effectiveness WHERE period = '2024-02-01' AND collector = current_user;

-- A ladder per customer type; legal referral blacklists when the policy says so.
INSERT INTO credit.dunning_level (ladder, level, days, action, channel, assignee_role) VALUES
    ('k-retail', 1, 5, 'notice', 'sms', 'credit_clerk'),
    ('k-retail', 2, 20, 'legal', 'letter', 'credit_manager');
INSERT INTO credit.policy (customer_type, dunning_ladder, blacklist_on_legal) VALUES ('k-retail', 'k-retail', true);
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type) VALUES ('K-RETAIL', 5000, 10, 'k-retail');
SELECT dunning_ladder, blacklist_on_legal FROM credit.effective_policy('K-RETAIL');
SELECT credit.post_invoice('K-RETAIL', 'R-1', 900, '2024-01-01') > 0 AS posted;
SELECT * FROM k_run('2024-01-15') WHERE customer = 'K-RETAIL';
SELECT * FROM k_run('2024-01-31') WHERE customer = 'K-RETAIL';
SELECT status, legal_referred_on FROM credit.account WHERE customer = 'K-RETAIL';
SELECT kind, reason FROM credit.event WHERE customer = 'K-RETAIL' AND kind IN ('legal_referral', 'status_changed') ORDER BY id;
-- The ladder a policy names must exist; a shipped level deleted stays retired.
SELECT regress.sqlstate_of($$INSERT INTO credit.policy (region, dunning_ladder) VALUES ('k-none', 'no-such-ladder')$$);
DELETE FROM credit.dunning_level WHERE ladder = 'default' AND level = 5;
SELECT level, retired FROM credit.dunning_level WHERE ladder = 'default' AND level = 5;
INSERT INTO credit.dunning_level (ladder, level, days, action, channel) VALUES ('default', 5, 30, 'notice', 'letter');
SELECT level, retired, is_default FROM credit.dunning_level WHERE ladder = 'default' AND level = 5;

-- Dunning feeds the score: the highest overdue step reached in the last 12 months.
SELECT c ->> 'value' AS dunning_steps, c ->> 'points' AS points
  FROM credit.score('K-LADDER', '2024-06-30') s, jsonb_array_elements(s.components) c
 WHERE c ->> 'component' = 'dunning_level';

-- Bad input: clear SQLSTATEs, nothing changed.
SELECT regress.snapshot() AS before \gset
SELECT regress.sqlstate_of($$SELECT credit.run_collections(NULL)$$) AS null_date,
       regress.sqlstate_of($$SELECT credit.run_collections(current_date + 1)$$) AS future,
       regress.sqlstate_of($$SELECT credit.run_collections('infinity')$$) AS infinite,
       regress.sqlstate_of($$SELECT credit.log_contact(999999, 'reached')$$) AS unknown_task,
       regress.sqlstate_of($$SELECT credit.log_contact(NULL, 'reached')$$) AS null_task,
       regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'reached')$$, :p1_task)) AS closed_task,
       regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'shouted')$$,
                                  (SELECT min(id) FROM credit.collection_task WHERE status = 'open'))) AS bad_outcome;
SELECT regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'promised', NULL, -5, '2024-12-01')$$, t)) AS negative,
       regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'promised', NULL, 'NaN', '2024-12-01')$$, t)) AS nan,
       regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'promised', NULL, 1e30, '2024-12-01')$$, t)) AS huge,
       regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'promised', NULL, 5)$$, t)) AS no_date,
       regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'promised', NULL, 5, '2000-01-01')$$, t)) AS past_date,
       regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'reached', NULL, 5, '2024-12-01')$$, t)) AS promise_without_outcome,
       regress.sqlstate_of(format($$SELECT credit.log_contact(%s, 'reached', NULL, NULL, NULL, current_date + 1)$$, t)) AS future_contact
  FROM (SELECT min(id) AS t FROM credit.collection_task WHERE status = 'open') x;
SELECT regress.sqlstate_of($$SELECT credit.dispute('K-PROMISE', 'NO-SUCH', 'x')$$) AS unknown_invoice,
       regress.sqlstate_of($$SELECT credit.dispute('K-NOBODY', 'P-1', 'x')$$) AS unknown_customer,
       regress.sqlstate_of($$SELECT credit.dispute('K-PROMISE', 'P-2', '')$$) AS empty_reason,
       regress.sqlstate_of($$SELECT credit.dispute('K-PROMISE', 'P-2', NULL)$$) AS null_reason,
       regress.sqlstate_of($$SELECT credit.dispute('K-LADDER', 'L-1', 'paid already')$$) AS settled,
       regress.sqlstate_of($$SELECT credit.dispute('K-PROMISE', 'P-2', 'x', '2023-01-01')$$) AS before_invoice,
       regress.sqlstate_of($$SELECT credit.dispute('K-DISPUTE', 'D-2', 'twice')$$) AS twice,
       regress.sqlstate_of($$SELECT credit.resolve_dispute('K-PROMISE', 'P-2', 'x')$$) AS not_disputed,
       regress.sqlstate_of($$SELECT credit.run_daily(NULL)$$) AS daily_null,
       regress.sqlstate_of($$SELECT credit.outbox_since(NULL)$$) AS outbox_null,
       regress.sqlstate_of($$SELECT credit.outbox_since(0, 0)$$) AS outbox_zero;
SELECT regress.snapshot() = :'before' AS unchanged;

-- The daily job: expiry, collections, regrade; a second run changes nothing.
SELECT step FROM credit.run_daily();
SELECT step, changes FROM credit.run_daily();
SELECT count(*) AS drift FROM credit.verify();

-- Events reach the outbox in commit order with their payload.
SELECT kind, customer, payload ->> 'kind' = kind AS payload_kind, (payload ->> 'id')::bigint = id AS payload_id,
       payload -> 'after' ->> 'doc_no' AS doc_no
  FROM credit.outbox WHERE customer = 'K-PROMISE' AND kind LIKE 'promise%' ORDER BY id;
SELECT bool_and(o.id > 0) AND count(*) = count(DISTINCT o.id) AS numbered,
       count(*) = (SELECT count(*) FROM credit.event WHERE customer LIKE 'K-%') AS every_event
  FROM credit.outbox o WHERE o.customer LIKE 'K-%';
SELECT count(*) AS after_last FROM credit.outbox_since((SELECT max(id) FROM credit.outbox));
DROP TABLE k_orders;
DROP FUNCTION k_run(date);
