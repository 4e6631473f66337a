-- Generator for bench/statements.sh: 100,000 customers with 5,000,000 documents in 2026 — each
-- 40 invoices (every 7.5 days from 1 January) and 10 payments (every 30 days, each paying three
-- invoices in full, oldest first): at the end of October ten invoices per customer are open (1,000,000
-- open items), October holds three invoices, one payment and its three applications per customer.
-- One more customer, BIG, has 10,000 documents in 2025 (8,000 invoices, 2,000 payments, each
-- paying four). Writes the ledger directly as a superuser with triggers off (the posting functions
-- would take an hour at this size), then recomputes the counters. The finance system's items as of
-- 31 October: pg_credit's open items with differences sown in (amounts, dates, missing on either
-- side, posted to another customer).
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS pg_credit;
SET session_replication_role = replica;
SET maintenance_work_mem = '1GB';
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region, currency)
SELECT 'C' || lpad(c::text, 6, '0'), 1e12, 30, (ARRAY['distributor', 'wholesale', 'retail'])[1 + c % 3],
       (ARRAY['east', 'south', 'north', 'west', 'central'])[1 + c % 5], 'CNY'
  FROM generate_series(1, 100000) c;
-- Invoice j (1..40) of customer c: id (c - 1) * 40 + j, dated 7.5 * (j - 1) days into 2026.
INSERT INTO credit.invoice (id, customer, doc_no, doc_date, due_date, amount, open_amount, last_applied_on)
SELECT (c - 1) * 40 + j, 'C' || lpad(c::text, 6, '0'), 'INV-' || c || '-' || j, d, d + 30,
       round((100 + ((c * 7919 + j * 104729) % 100000) / 10.0)::numeric, 2), 0, NULL
  FROM generate_series(1, 100000) c, generate_series(1, 40) j,
       LATERAL (SELECT DATE '2026-01-01' + floor(7.5 * (j - 1))::int AS d) x;
-- Payment k (1..10) of customer c: id (c - 1) * 10 + k, on day 30 * k, pays invoices 3k-2..3k.
INSERT INTO credit.settlement (id, customer, kind, doc_no, doc_date, amount, unapplied, last_applied_on)
SELECT (c - 1) * 10 + k, 'C' || lpad(c::text, 6, '0'), 'payment', 'PAY-' || c || '-' || k, DATE '2026-01-01' + 30 * k,
       (SELECT sum(i.amount) FROM credit.invoice i WHERE i.id BETWEEN (c - 1) * 40 + 3 * k - 2 AND (c - 1) * 40 + 3 * k),
       0, DATE '2026-01-01' + 30 * k
  FROM generate_series(1, 100000) c, generate_series(1, 10) k;
INSERT INTO credit.allocation (id, settlement_id, invoice_id, amount, applied_on)
SELECT i.id, s.id, i.id, i.amount, s.doc_date
  FROM credit.settlement s
  JOIN credit.invoice i ON i.id BETWEEN ((s.id - 1) / 10) * 40 + 3 * ((s.id - 1) % 10 + 1) - 2
                                    AND ((s.id - 1) / 10) * 40 + 3 * ((s.id - 1) % 10 + 1);
UPDATE credit.invoice i SET open_amount = i.amount - coalesce(a.paid, 0), last_applied_on = a.last
  FROM (SELECT i2.id, sum(a.amount) AS paid, max(a.applied_on) AS last
          FROM credit.invoice i2 LEFT JOIN credit.allocation a ON a.invoice_id = i2.id GROUP BY i2.id) a
 WHERE a.id = i.id;

-- BIG: 8,000 invoices and 2,000 payments in 2025, each payment paying four invoices.
INSERT INTO credit.account (customer, credit_limit, terms_days, currency) VALUES ('BIG', 1e12, 30, 'CNY');
INSERT INTO credit.invoice (id, customer, doc_no, doc_date, due_date, amount, open_amount)
SELECT 5000000 + j, 'BIG', 'BIG-INV-' || j, d, d + 30, round((500 + (j * 7919 % 100000) / 10.0)::numeric, 2), 0
  FROM generate_series(1, 8000) j, LATERAL (SELECT DATE '2025-01-01' + ((j - 1) * 365 / 8000) AS d) x;
INSERT INTO credit.settlement (id, customer, kind, doc_no, doc_date, amount, unapplied, last_applied_on)
SELECT 2000000 + k, 'BIG', 'payment', 'BIG-PAY-' || k, least(DATE '2025-12-31', d + 20),
       (SELECT sum(i.amount) FROM credit.invoice i WHERE i.id BETWEEN 5000000 + 4 * k - 3 AND 5000000 + 4 * k),
       0, least(DATE '2025-12-31', d + 20)
  FROM generate_series(1, 2000) k, LATERAL (SELECT DATE '2025-01-01' + ((4 * k - 1) * 365 / 8000) AS d) x;
INSERT INTO credit.allocation (id, settlement_id, invoice_id, amount, applied_on)
SELECT 4000000 + (i.id - 5000000), s.id, i.id, i.amount, s.doc_date
  FROM credit.settlement s JOIN credit.invoice i ON i.id BETWEEN 5000000 + 4 * (s.id - 2000000) - 3 AND 5000000 + 4 * (s.id - 2000000)
 WHERE s.id > 2000000;
UPDATE credit.invoice i SET last_applied_on = a.applied_on
  FROM credit.allocation a WHERE a.invoice_id = i.id AND i.customer = 'BIG';
SELECT setval('credit.invoice_id_seq', 6000000), setval('credit.settlement_id_seq', 3000000),
       setval('credit.allocation_id_seq', 5000000);

-- The finance system's items as of 31 October: the open items, with 1% of amounts off by 0.50 to
-- 5.00, 1% of dates a day or two later, 1% missing, 0.5% posted to the next customer, and 1% of
-- items the finance system has alone.
INSERT INTO credit.finance_item (as_of, customer, doc_no, amount, doc_date, due_date)
SELECT DATE '2026-10-31', CASE WHEN h BETWEEN 30 AND 34 THEN 'C' || lpad((c % 100000 + 1)::text, 6, '0') ELSE i.customer END,
       i.doc_no, i.open_amount + CASE WHEN h < 10 THEN round((h + 1) / 2.0, 2) ELSE 0 END,
       i.doc_date + CASE WHEN h BETWEEN 10 AND 19 THEN 1 + h % 2 ELSE 0 END, i.due_date
  FROM credit.invoice i,
       LATERAL (SELECT substr(i.customer, 2)::int AS c, abs(hashint8(i.id) % 1000) AS h) x
 WHERE i.open_amount > 0 AND i.customer <> 'BIG' AND h NOT BETWEEN 20 AND 29;
INSERT INTO credit.finance_item (as_of, customer, doc_no, amount, doc_date, due_date)
SELECT DATE '2026-10-31', 'C' || lpad((1 + n * 97 % 100000)::text, 6, '0'), 'FIN-' || n, 250, DATE '2026-10-15', DATE '2026-11-14'
  FROM generate_series(1, 10000) n;
RESET session_replication_role;
SELECT credit.rebuild_exposure() AS accounts_recomputed;
VACUUM ANALYZE;
