-- The receivables ledger: invoices, payments (oldest due first), unapplied credit, credit notes,
-- write-offs; exposure follows every posting.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, terms_days) VALUES ('ACME', 10000, 30), ('ZETA', 500, 60);

-- Due date defaults to doc_date + terms_days; an explicit one is kept.
SELECT credit.post_invoice('ACME', 'INV-001', 1000, '2026-01-05') > 0 AS posted;
SELECT credit.post_invoice('ACME', 'INV-002', 2500.50, '2026-01-20', '2026-02-10') > 0 AS posted;
SELECT credit.post_invoice('ACME', 'INV-003', 700, '2026-02-01') > 0 AS posted;
SELECT doc_no, doc_date, due_date, amount, open_amount FROM credit.invoice ORDER BY doc_no;
SELECT open_ar, unapplied_credit, exposure FROM credit.account WHERE customer = 'ACME';

-- Duplicate document numbers are refused per customer (23505); another customer may reuse one.
SELECT credit.post_invoice('ACME', 'INV-001', 5, '2026-01-05');
SELECT credit.post_invoice('ZETA', 'INV-001', 50, '2026-01-05') > 0 AS posted;
-- Unknown customer (23503), due before document date (22023).
SELECT credit.post_invoice('NOBODY', 'X-1', 5);
SELECT credit.post_invoice('ACME', 'X-2', 5, '2026-03-01', '2026-02-01');

-- A payment goes to the oldest due first: INV-001 (due 02-04), then INV-002 (due 02-10).
SELECT credit.post_payment('ACME', 1500, '2026-02-15') > 0 AS paid;
SELECT doc_no, due_date, open_amount FROM credit.invoice WHERE customer = 'ACME' ORDER BY due_date;
SELECT i.doc_no, a.amount, a.applied_on FROM credit.allocation a JOIN credit.invoice i ON i.id = a.invoice_id ORDER BY a.id;

-- A payment for a named invoice goes there, even if it is not the oldest.
SELECT credit.post_payment('ACME', 200, '2026-02-16', 'INV-003', 'BANK-778') > 0 AS paid;
SELECT doc_no, open_amount FROM credit.invoice WHERE customer = 'ACME' ORDER BY due_date;
-- Payment references are unique per customer; unknown invoices are refused.
SELECT credit.post_payment('ACME', 1, '2026-02-16', NULL, 'BANK-778');
SELECT credit.post_payment('ACME', 1, '2026-02-16', 'INV-404');

-- An overpayment stays as unapplied credit, which lowers exposure (below zero: a prepayment).
SELECT credit.post_payment('ACME', 3000, '2026-02-20') > 0 AS paid;
SELECT doc_no, open_amount FROM credit.invoice WHERE customer = 'ACME' ORDER BY due_date;
SELECT open_ar, unapplied_credit, exposure, credit.exposure('ACME'), credit.available_credit('ACME')
  FROM credit.account WHERE customer = 'ACME';

-- The next invoice consumes the unapplied credit, dated no earlier than the invoice.
SELECT credit.post_invoice('ACME', 'INV-004', 1000, '2026-03-01') > 0 AS posted;
SELECT doc_no, amount, open_amount FROM credit.invoice WHERE doc_no = 'INV-004';
SELECT s.kind, s.amount, s.unapplied, a.amount AS applied, a.applied_on
  FROM credit.allocation a JOIN credit.settlement s ON s.id = a.settlement_id
 WHERE a.invoice_id = (SELECT id FROM credit.invoice WHERE doc_no = 'INV-004');
SELECT open_ar, unapplied_credit, exposure FROM credit.account WHERE customer = 'ACME';

-- Credit notes: named invoice, rest unapplied; duplicates refused.
SELECT credit.post_credit_note('ACME', 'CN-1', 100, 'INV-004', '2026-03-02', 'damaged goods') > 0 AS credited;
SELECT credit.post_credit_note('ACME', 'CN-1', 5, NULL, '2026-03-02');
SELECT doc_no, open_amount FROM credit.invoice WHERE doc_no = 'INV-004';

-- Write-offs: partial, then the rest by default; more than open, or nothing open, is refused.
SELECT credit.post_invoice('ZETA', 'INV-900', 400, '2025-06-01') > 0 AS posted;
SELECT credit.write_off('ZETA', 'INV-900', 500, '2026-03-31', 'too much');
SELECT credit.write_off('ZETA', 'INV-900', 150, '2026-03-31', 'partial settlement') > 0 AS written_off;
SELECT credit.write_off('ZETA', 'INV-900', written_off_on => '2026-04-30', reason => 'customer insolvent') > 0 AS written_off;
SELECT credit.write_off('ZETA', 'INV-900');
SELECT kind, amount, unapplied, reason FROM credit.settlement WHERE customer = 'ZETA' ORDER BY id;
SELECT doc_no, open_amount FROM credit.invoice WHERE customer = 'ZETA' ORDER BY doc_no;
SELECT customer, open_ar, unapplied_credit, open_orders, exposure FROM credit.account ORDER BY customer;

-- Invoices are facts: posted even over the limit (ZETA: limit 500).
SELECT credit.post_invoice('ZETA', 'INV-901', 450, '2026-04-01') > 0 AS posted;
SELECT credit.post_invoice('ZETA', 'INV-902', 450, '2026-04-02') > 0 AS posted;
SELECT exposure, credit.available_credit('ZETA') FROM credit.account WHERE customer = 'ZETA';

-- Everything recomputes to the stored counters.
SELECT * FROM credit.verify();
ROLLBACK;
