-- Corrections in the ledger: a payment, credit note or write-off reversed on its own date (the
-- invoices it paid reopen, what it left unapplied is gone), an invoice cancelled before
-- settlement. Nothing is deleted or edited: as of any earlier date the ledger reads as before;
-- exposure, aging, payment behaviour, collections and statements follow.
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO credit.account (customer, credit_limit) VALUES ('RV-A', 10000), ('RV-B', 10000);
SELECT credit.post_invoice('RV-A', 'RV-1', 100, '2025-03-01', '2025-03-31') > 0 AS i1,
       credit.post_invoice('RV-A', 'RV-2', 200, '2025-03-05', '2025-04-04') > 0 AS i2,
       credit.post_invoice('RV-A', 'RV-3', 50, '2025-03-10', '2025-04-09') > 0 AS i3;
-- A payment that pays RV-1 and part of RV-2 (oldest due first), and one with a rest left unapplied.
SELECT credit.post_payment('RV-A', 150, '2025-03-20', NULL, 'CHQ-1') AS cheque \gset
SELECT credit.post_payment('RV-A', 260, '2025-04-02', NULL, 'WIRE-1') AS wire \gset
SELECT doc_no, open_amount FROM credit.invoice WHERE customer = 'RV-A' ORDER BY doc_no;
SELECT credit.exposure('RV-A') AS exposure_before;

-- The cheque bounces: reversed on 2025-04-10.
SELECT credit.reverse_settlement(:cheque, 'cheque returned unpaid', '2025-04-10') > 0 AS reversed;
SELECT doc_no, open_amount, last_applied_on FROM credit.invoice WHERE customer = 'RV-A' ORDER BY doc_no;
SELECT kind, amount, unapplied, reversed_on FROM credit.settlement WHERE id = :cheque;
SELECT amount, applied_on, reversal_id IS NOT NULL AS undoes FROM credit.allocation
 WHERE settlement_id = :cheque ORDER BY id;
SELECT credit.exposure('RV-A') AS exposure_after;
-- As of before the reversal everything reads as it was; from its date on, the invoices are open.
SELECT d AS as_of, coalesce(sum(g.open_amount), 0) AS balance
  FROM unnest(ARRAY['2025-03-19', '2025-03-20', '2025-04-01', '2025-04-09', '2025-04-10']::date[]) d
  LEFT JOIN credit.aging(d) g ON g.customer = 'RV-A'
 GROUP BY d ORDER BY d;
-- Nothing open for nothing: a document the reversal touched shows no zero rows as of earlier dates.
SELECT count(*) AS zero_rows FROM credit.aging('2025-04-05') g WHERE g.customer = 'RV-A' AND g.open_amount = 0;
SELECT kind, reason, after ->> 'amount' AS amount, after -> 'reopened' AS reopened FROM credit.event
 WHERE customer = 'RV-A' AND kind = 'payment_reversed';
-- A bounced cheque was never a payment: payment behaviour leaves it out.
SELECT count(*) AS experiences, sum(amount) AS paid FROM credit.payment_experience WHERE customer = 'RV-A';

-- What cannot be reversed.
SELECT regress.sqlstate_of(format('SELECT credit.reverse_settlement(%s, %L)', :cheque, 'again')) AS twice,
       regress.sqlstate_of(format('SELECT credit.reverse_settlement(%s, %L, %L)', :wire, 'early', '2025-04-01')) AS before_it,
       regress.sqlstate_of(format('SELECT credit.reverse_settlement(%s, %L, current_date + 1)', :wire, 'future')) AS future,
       regress.sqlstate_of(format('SELECT credit.reverse_settlement(%s, %L)', :wire, '')) AS empty_reason,
       regress.sqlstate_of(format('SELECT credit.reverse_settlement(%s, NULL)', :wire)) AS null_reason,
       regress.sqlstate_of('SELECT credit.reverse_settlement(NULL, ''x'')') AS null_id,
       regress.sqlstate_of('SELECT credit.reverse_settlement(999999, ''x'')') AS unknown;

-- A credit note applied to an invoice, reversed: the invoice reopens by the note's amount.
SELECT credit.post_credit_note('RV-B', 'CN-1', 30, 'RV-B1', '2025-05-10') > 0
  FROM (SELECT credit.post_invoice('RV-B', 'RV-B1', 120, '2025-05-01', '2025-05-31')) i;
SELECT credit.reverse_settlement(id, 'issued in error', '2025-05-20') > 0 AS note_reversed
  FROM credit.settlement WHERE customer = 'RV-B' AND kind = 'credit_note';
SELECT open_amount FROM credit.invoice WHERE doc_no = 'RV-B1';
-- A write-off reversed: the debt is collectible after all.
SELECT credit.write_off('RV-B', 'RV-B1', NULL, '2025-06-01', 'bankrupt') AS written_off \gset
SELECT open_amount AS after_write_off FROM credit.invoice WHERE doc_no = 'RV-B1';
SELECT credit.reverse_settlement(:written_off, 'paid by the administrator', '2025-06-15') > 0 AS write_off_reversed;
SELECT open_amount AS after_reversal FROM credit.invoice WHERE doc_no = 'RV-B1';

-- Cancelling an invoice nothing was applied to: a cancellation document settles it in full.
SELECT credit.post_invoice('RV-B', 'RV-B2', 80, '2025-06-01', '2025-07-01') > 0 AS posted;
SELECT credit.cancel_invoice('RV-B', 'RV-B2', 'posted twice', '2025-06-03') AS cancellation \gset
SELECT kind, doc_no, amount, unapplied, reason FROM credit.settlement WHERE id = :cancellation;
SELECT open_amount FROM credit.invoice WHERE doc_no = 'RV-B2';
SELECT d AS as_of, coalesce(sum(g.open_amount), 0) AS open_rv_b2
  FROM unnest(ARRAY['2025-06-02', '2025-06-03']::date[]) d
  LEFT JOIN credit.aging(d) g ON g.customer = 'RV-B' AND g.doc_no = 'RV-B2'
 GROUP BY d ORDER BY d;
-- What cannot be cancelled, or reversed once cancelled.
SELECT credit.post_invoice('RV-B', 'RV-B3', 90, '2025-06-01', '2025-07-01') > 0 AS posted,
       credit.post_payment('RV-B', 10, '2025-06-02', 'RV-B3') > 0 AS partly_paid;
SELECT credit.post_invoice('RV-B', 'RV-B4', 40, '2025-06-01', '2025-07-01') > 0 AS posted,
       credit.dispute('RV-B', 'RV-B4', 'wrong goods', '2025-06-02') > 0 AS disputed;
SELECT regress.sqlstate_of('SELECT credit.cancel_invoice(''RV-B'', ''RV-B3'', ''x'', ''2025-06-05'')') AS partly_settled,
       regress.sqlstate_of('SELECT credit.cancel_invoice(''RV-B'', ''RV-B4'', ''x'', ''2025-06-05'')') AS in_dispute,
       regress.sqlstate_of('SELECT credit.cancel_invoice(''RV-B'', ''RV-B2'', ''again'', ''2025-06-05'')') AS cancelled_already,
       regress.sqlstate_of('SELECT credit.cancel_invoice(''RV-B'', ''RV-B1'', ''x'', ''2025-04-01'')') AS before_invoice,
       regress.sqlstate_of('SELECT credit.cancel_invoice(''RV-B'', ''NO-SUCH'', ''x'')') AS unknown,
       regress.sqlstate_of(format('SELECT credit.reverse_settlement(%s, %L)', :cancellation, 'undo')) AS reverse_cancellation;

-- Collections pick a reopened overdue invoice up again.
SELECT change, doc_no, level FROM credit.run_collections('2025-05-15')
 WHERE customer = 'RV-A' ORDER BY doc_no, level, change;

-- The ledger's corrections are facts too.
SELECT regress.sqlstate_of('UPDATE credit.reversal SET reason = ''x''') AS update_reversal,
       regress.sqlstate_of('DELETE FROM credit.reversal') AS delete_reversal;
SELECT count(*) AS drift FROM credit.verify();
SELECT count(*) AS audit_problems FROM credit.verify_audit();
