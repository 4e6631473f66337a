-- Generator for bench/history.sh (psql variables: traders, others): customers in 5 regions and 3
-- types. The first :traders (10,000) have two years of trade (1 December 2024 to 29 November 2026): an invoice every 15 days (30-day
-- terms) and a payment every 45 days paying the three oldest open invoices, some late — 64
-- documents each. The next :others (90,000) have four invoices in October and November 2026. Writes the ledger directly as a superuser with triggers off (the posting
-- functions would take long at this size), then recomputes the counters.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS pg_credit;
SET session_replication_role = replica;
SET maintenance_work_mem = '1GB';
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region, currency)
SELECT 'C' || lpad(c::text, 6, '0'), 20000 + (c % 10) * 5000, 30, (ARRAY['distributor', 'wholesale', 'retail'])[1 + c % 3],
       (ARRAY['east', 'south', 'north', 'west', 'central'])[1 + c % 5], 'CNY'
  FROM generate_series(1, :traders + :others) c;
-- Traders: invoice j (1..48) of customer c, every 15 days from 2024-12-01.
INSERT INTO credit.invoice (id, customer, doc_no, doc_date, due_date, amount, open_amount)
SELECT (c - 1) * 48 + j, 'C' || lpad(c::text, 6, '0'), 'INV-' || c || '-' || j, d, d + 30,
       round((1000 + ((c * 7919 + j * 104729) % 100000) / 20.0)::numeric, 2), 0
  FROM generate_series(1, :traders) c, generate_series(1, 48) j,
       LATERAL (SELECT DATE '2024-12-01' + 15 * (j - 1) AS d) x;
-- Payment k (1..16) of customer c: 45 * k days in, plus up to 20 days late; pays invoices 3k-2..3k.
INSERT INTO credit.settlement (id, customer, kind, doc_no, doc_date, amount, unapplied, last_applied_on)
SELECT (c - 1) * 16 + k, 'C' || lpad(c::text, 6, '0'), 'payment', 'PAY-' || c || '-' || k, d,
       (SELECT sum(i.amount) FROM credit.invoice i WHERE i.id BETWEEN (c - 1) * 48 + 3 * k - 2 AND (c - 1) * 48 + 3 * k),
       0, d
  FROM generate_series(1, :traders) c, generate_series(1, 16) k,
       LATERAL (SELECT least(DATE '2024-12-01' + 45 * k + (c * 31 + k * 17) % 21, DATE '2026-11-29') AS d) x;
INSERT INTO credit.allocation (id, settlement_id, invoice_id, amount, applied_on)
SELECT i.id, s.id, i.id, i.amount, greatest(s.doc_date, i.doc_date)
  FROM credit.settlement s
  JOIN credit.invoice i ON i.id BETWEEN ((s.id - 1) / 16) * 48 + 3 * ((s.id - 1) % 16 + 1) - 2
                                    AND ((s.id - 1) / 16) * 48 + 3 * ((s.id - 1) % 16 + 1);
-- The others: four invoices each in October and November 2026.
INSERT INTO credit.invoice (id, customer, doc_no, doc_date, due_date, amount, open_amount)
SELECT 1000000 + (c - :traders - 1) * 4 + j, 'C' || lpad(c::text, 6, '0'), 'INV-' || c || '-' || j, d, d + 30,
       round((500 + ((c * 7919 + j * 104729) % 100000) / 50.0)::numeric, 2), 0
  FROM generate_series(:traders + 1, :traders + :others) c, generate_series(1, 4) j,
       LATERAL (SELECT DATE '2026-10-01' + 14 * (j - 1) + c % 7 AS d) x;
UPDATE credit.invoice i SET open_amount = i.amount - coalesce(a.paid, 0), last_applied_on = a.last
  FROM (SELECT i2.id, sum(a.amount) AS paid, max(a.applied_on) AS last
          FROM credit.invoice i2 LEFT JOIN credit.allocation a ON a.invoice_id = i2.id GROUP BY i2.id) a
 WHERE a.id = i.id;
SELECT setval('credit.invoice_id_seq', 2000000), setval('credit.settlement_id_seq', 1000000),
       setval('credit.allocation_id_seq', 2000000);
RESET session_replication_role;
SELECT credit.rebuild_exposure() AS accounts_recomputed;
VACUUM ANALYZE;
