-- Balance confirmation (电子对账): requests in the three modes, replies recorded with who and when,
-- differences explained item by item (contested invoices open disputes, payments in transit are
-- found), reminders for non-responders and negative requests deemed confirmed, each step an event.
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO credit.account (customer, credit_limit) VALUES
    ('CF-A', 10000), ('CF-B', 10000), ('CF-C', 10000), ('CF-D', 10000), ('CF-E', 10000);
SELECT count(*) AS posted FROM (VALUES
    (credit.post_invoice('CF-A', 'CA-1', 800, '2025-04-02', '2025-05-02')),
    (credit.post_invoice('CF-B', 'CB-1', 300, '2025-04-03', '2025-05-03')),
    (credit.post_invoice('CF-C', 'CC-1', 1000, '2025-04-01', '2025-05-01')),
    (credit.post_invoice('CF-C', 'CC-2', 400, '2025-04-10', '2025-05-10')),
    (credit.post_invoice('CF-C', 'CC-3', 250, '2025-04-20', '2025-05-20')),
    (credit.post_invoice('CF-D', 'CD-1', 120, '2025-04-05', '2025-05-05')),
    (credit.post_invoice('CF-E', 'CE-1', 90, '2025-04-05', '2025-05-05'))) v(id);
SELECT count(*) AS statements FROM credit.statement_run('2025-04-30') WHERE customer LIKE 'CF-%';

-- Positive, with the month's statement: our balance as of the date, a reply date 14 days on.
SELECT credit.request_confirmation('CF-A', '2025-04-30', 'positive', '2025-05-14',
                                   (SELECT id FROM credit.statement WHERE customer = 'CF-A')) AS cf_a \gset
-- A payment after the date does not change the balance asked about.
SELECT credit.post_payment('CF-A', 800, '2025-05-03', 'CA-1') > 0 AS paid_later;
SELECT customer, as_of, mode, our_balance, status, reply_by, statement_id IS NOT NULL AS with_statement
  FROM credit.confirmation_status WHERE confirmation_id = :cf_a;
SELECT credit.record_confirmation(:cf_a, true, replied_on => '2025-05-06') AS status;
SELECT status, customer_balance, difference, replied_on, recorded_by = session_user AS recorded_by_caller
  FROM credit.balance_confirmation WHERE id = :cf_a;
SELECT regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, false, 1)', :cf_a)) AS answered_twice;

-- Blank: the customer states its balance, agreeing or not.
SELECT credit.request_confirmation('CF-B', '2025-04-30', 'blank', '2025-05-14') AS cf_b \gset
SELECT regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, true)', :cf_b)) AS blank_needs_balance,
       regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, true, 299)', :cf_b)) AS agrees_but_differs;
SELECT credit.record_confirmation(:cf_b, true, 300, replied_on => '2025-05-08') AS status;

-- Contested, item by item: CC-1 contested (a dispute opens), CC-3 unknown to the customer, a
-- payment it says is on its way (and which we received after the date: in transit), a document
-- only it has, and 5 nobody can explain. Ours 1650, theirs 1650 - 1000 - 250 - 300 - 40 - 5 = 55.
SELECT credit.request_confirmation('CF-C', '2025-04-30') AS cf_c \gset
SELECT reply_by = greatest(as_of, current_date) + 14 AS reply_in_14_days FROM credit.balance_confirmation WHERE id = :cf_c;
SELECT credit.post_payment('CF-C', 300, '2025-05-04', 'CC-2', 'WIRE-77') > 0 AS received_later;
SELECT credit.record_confirmation(:cf_c, false, 55,
         '[{"doc_no": "CC-1", "issue": "contested", "note": "goods returned 2025-04-12"},
           {"doc_no": "CC-3", "issue": "unknown"},
           {"issue": "paid", "amount": 300, "note": "wired 2025-04-29"},
           {"doc_no": "THEIR-CN-9", "issue": "theirs", "amount": 40, "note": "our credit note"}]',
         'see attached', '2025-05-09') AS status;
SELECT line, doc_no, issue, amount, customer_note, explanation FROM credit.confirmation_item
 WHERE confirmation_id = :cf_c ORDER BY line;
SELECT status, our_balance, customer_balance, difference, explained, unexplained, items, contested_documents
  FROM credit.confirmation_status WHERE confirmation_id = :cf_c;
-- The contested invoice is in dispute now, with the customer's words; the others are not.
SELECT i.doc_no, i.disputed, d.reason, d.opened_on FROM credit.invoice i
  LEFT JOIN credit.invoice_dispute d ON d.invoice_id = i.id
 WHERE i.customer = 'CF-C' ORDER BY i.doc_no;
-- Items that cannot be taken; each leaves the request unanswered.
SELECT credit.request_confirmation('CF-C', '2025-03-31', 'positive', '2025-04-14') AS cf_c2 \gset
SELECT regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, false, 1, %L)', :cf_c2, j)) AS state, j AS items
  FROM unnest(ARRAY['{"issue": "paid", "amount": 1}',
                    '[1]',
                    '[{"issue": "lost", "amount": 1}]',
                    '[{"issue": "paid", "amount": "ten"}]',
                    '[{"issue": "paid"}]',
                    '[{"issue": "paid", "amount": "NaN"}]',
                    '[{"issue": "contested"}]',
                    '[{"issue": "contested", "doc_no": "CC-3"}]',
                    '[{"issue": "unknown", "doc_no": "NO-SUCH"}]']) j;
SELECT regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, true, items => %L)', :cf_c2, '[]')) AS items_with_agreement,
       regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, false)', :cf_c2)) AS no_balance,
       regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, false, 1, replied_on => %L)', :cf_c2, '2025-03-30')) AS before_as_of,
       regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, false, 1, replied_on => current_date + 1)', :cf_c2)) AS future,
       regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, false, %s)', :cf_c2, '''NaN''')) AS nan,
       regress.sqlstate_of(format('SELECT credit.record_confirmation(%s, false, 0.000000001)', :cf_c2)) AS too_precise,
       regress.sqlstate_of('SELECT credit.record_confirmation(999999, true)') AS unknown,
       regress.sqlstate_of('SELECT credit.record_confirmation(NULL, true)') AS null_id;
SELECT status FROM credit.balance_confirmation WHERE id = :cf_c2;

-- Negative: no reply by the reply date counts as confirmed. Positive: reminded every 7 days.
SELECT credit.request_confirmation('CF-D', '2025-04-30', 'negative', '2025-05-14') > 0 AS cf_d,
       credit.request_confirmation('CF-E', '2025-04-30', 'positive', '2025-05-14') > 0 AS cf_e;
SELECT d AS run_on, r.customer, r.action
  FROM unnest(ARRAY['2025-05-14', '2025-05-15', '2025-05-18', '2025-05-22', '2025-05-29']::date[]) d,
       LATERAL credit.remind_confirmations(d) r
 WHERE r.customer IN ('CF-D', 'CF-E') ORDER BY d, r.customer;
SELECT customer, status, customer_balance, difference, reminders, last_reminded_on
  FROM credit.balance_confirmation WHERE customer IN ('CF-D', 'CF-E') ORDER BY customer;
-- A late reply to a reminded request is still taken; a deemed confirmation can be contested after all.
SELECT credit.record_confirmation(id, true, replied_on => '2025-05-30') AS late_reply
  FROM credit.balance_confirmation WHERE customer = 'CF-E';
SELECT credit.record_confirmation(id, false, 100, replied_on => '2025-06-02') AS contested_after_deemed
  FROM credit.balance_confirmation WHERE customer = 'CF-D';

-- Every step is an event (the outbox delivers requests and reminders).
SELECT e.kind, count(*) FROM credit.event e
 WHERE e.kind LIKE 'confirmation_%' AND e.customer LIKE 'CF-%' GROUP BY e.kind ORDER BY e.kind;
SELECT after ->> 'status' AS status, after ->> 'difference' AS difference, after ->> 'explained' AS explained, reason
  FROM credit.event WHERE kind = 'confirmation_replied' AND customer = 'CF-C';

-- Requests that cannot be made.
SELECT regress.sqlstate_of('SELECT credit.request_confirmation(NULL)') AS null_customer,
       regress.sqlstate_of('SELECT credit.request_confirmation('''')') AS empty_customer,
       regress.sqlstate_of('SELECT credit.request_confirmation(''NOBODY'', ''2025-04-30'')') AS unknown_customer,
       regress.sqlstate_of('SELECT credit.request_confirmation(''CF-A'', ''2025-04-29'', ''sometimes'')') AS bad_mode,
       regress.sqlstate_of('SELECT credit.request_confirmation(''CF-A'', current_date + 1)') AS future,
       regress.sqlstate_of('SELECT credit.request_confirmation(''CF-A'', ''infinity'')') AS infinite,
       regress.sqlstate_of('SELECT credit.request_confirmation(''CF-A'', ''2025-04-29'', ''positive'', ''2025-04-28'')') AS reply_before_as_of,
       regress.sqlstate_of('SELECT credit.request_confirmation(''CF-A'', ''2025-04-30'')') AS twice,
       regress.sqlstate_of(format('SELECT credit.request_confirmation(''CF-B'', ''2025-04-29'', statement_id => %s)',
                                  (SELECT id FROM credit.statement WHERE customer = 'CF-A'))) AS others_statement,
       regress.sqlstate_of('SELECT * FROM credit.remind_confirmations(NULL)') AS remind_null,
       regress.sqlstate_of('SELECT * FROM credit.remind_confirmations(current_date + 1)') AS remind_future;
-- Replies and requests are records: only pg_credit's functions write them.
SELECT regress.try('UPDATE credit.balance_confirmation SET status = ''confirmed''', 'regress_clerk') AS update_as_clerk,
       regress.try('DELETE FROM credit.confirmation_item', 'regress_clerk') AS delete_as_clerk;
SELECT count(*) AS drift FROM credit.verify();
