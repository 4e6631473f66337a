-- Documents keyed in late: an application counts from the later of the settlement's and the
-- invoice's dates, whichever was posted first, so every as-of figure reads as it did on the day.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
INSERT INTO credit.account (customer, credit_limit) VALUES ('LATE', 1e6), ('ONTIME', 1e6);
-- The same business twice: LATE's February invoice is keyed in after the March prepayment that
-- it then consumes; ONTIME's documents are keyed in on their dates.
SELECT credit.post_payment('LATE', 1000, '2026-03-10') > 0 AS prepayment;
SELECT credit.post_invoice('LATE', 'L-FEB', 1000, '2026-02-01', '2026-02-28') > 0 AS february_invoice_late;
SELECT credit.post_invoice('ONTIME', 'O-FEB', 1000, '2026-02-01', '2026-02-28') > 0 AS february_invoice;
SELECT credit.post_payment('ONTIME', 1000, '2026-03-10') > 0 AS payment;
-- The application, dated 10 March for both.
SELECT i.customer, i.doc_no, s.doc_date AS paid, a.applied_on
  FROM credit.allocation a JOIN credit.invoice i ON i.id = a.invoice_id JOIN credit.settlement s ON s.id = a.settlement_id
 WHERE i.customer IN ('LATE', 'ONTIME') ORDER BY 1;
-- Aging at the end of February: the invoice open, nothing unapplied; identical for both.
SELECT customer, doc_type, doc_no, open_amount, days, bucket FROM credit.aging('2026-02-28', 'due')
 WHERE customer IN ('LATE', 'ONTIME') ORDER BY 1;
SELECT customer, doc_type, open_amount, days, bucket FROM credit.aging('2026-03-05', 'due')
 WHERE customer IN ('LATE', 'ONTIME') ORDER BY 1;
SELECT count(*) AS open_on_march_10 FROM credit.aging('2026-03-10') WHERE customer IN ('LATE', 'ONTIME');
-- Lateness: paid 10 days after the due date, by both.
SELECT customer, doc_no, paid_on, days_late, days_to_pay FROM credit.payment_experience
 WHERE customer IN ('LATE', 'ONTIME') ORDER BY 1;
SELECT customer, experiences, weighted_days_late, on_time_ratio FROM credit.payment_behavior
 WHERE customer IN ('LATE', 'ONTIME') ORDER BY 1;
-- DSO and ADD over February (ending receivables 1,000 on 1,000 of sales), equal for both.
SELECT credit.dso('2026-02-01', '2026-02-28', 'LATE') AS dso_late, credit.dso('2026-02-01', '2026-02-28', 'ONTIME') AS dso_ontime,
       credit.average_days_delinquent('2026-02-01', '2026-02-28', 'LATE') AS add_late,
       credit.average_days_delinquent('2026-02-01', '2026-02-28', 'ONTIME') AS add_ontime;
-- The statement of February shows the invoice open at its end for both.
SELECT customer, s.section, s.kind, s.doc_no, s.balance
  FROM unnest(ARRAY['LATE', 'ONTIME']) customer, credit.statement(customer, '2026-02-01', '2026-02-28') s
 WHERE s.section IN ('closing', 'open_item') ORDER BY 1, 2;

-- An unapplied credit note of 20 April consumed by a March invoice keyed in afterwards: the
-- application is dated 20 April, so on 10 April the March invoice is open in full and no credit
-- exists yet; on 30 April 100 of it is open.
SELECT credit.post_credit_note('LATE', 'CN-1', 200, NULL, '2026-04-20') > 0 AS credit_note;
SELECT doc_type, doc_no, open_amount FROM credit.aging('2026-04-25') WHERE customer = 'LATE' ORDER BY 1, 2;
SELECT credit.post_invoice('LATE', 'L-MAR', 300, '2026-03-15', '2026-04-14') > 0 AS march_invoice_late;
SELECT credit.post_payment('LATE', 100, '2026-05-02') > 0 AS payment;
SELECT i.doc_no, s.kind, s.doc_date, a.amount, a.applied_on
  FROM credit.allocation a JOIN credit.invoice i ON i.id = a.invoice_id JOIN credit.settlement s ON s.id = a.settlement_id
 WHERE i.customer = 'LATE' ORDER BY a.id;
SELECT doc_type, doc_no, open_amount, days FROM credit.aging('2026-04-10', 'due') WHERE customer = 'LATE' ORDER BY 1, 2;
SELECT doc_type, doc_no, open_amount, days FROM credit.aging('2026-04-30', 'due') WHERE customer = 'LATE' ORDER BY 1, 2;
SELECT doc_no, paid_on, days_late FROM credit.payment_experience WHERE customer = 'LATE' ORDER BY paid_on, doc_no;
SELECT count(*) FROM credit.verify();
ROLLBACK;
