-- Generator for bench/prediction.sh (psql variable: traders): :traders customers with 100
-- invoices each over two years, every one settled by a payment (1,000,000 settled invoices at
-- 10,000), each customer late with its own propensity (a deterministic hash); and ten times as
-- many customers with 10 recent open invoices each (1,000,000 open invoices). Written directly as
-- a superuser with triggers off (the posting functions would take long at this size).
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS pg_credit;
SET session_replication_role = replica;
SET maintenance_work_mem = '1GB';
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region, currency, created_at)
SELECT 'P' || lpad(c::text, 7, '0'), 1e9, 30, (ARRAY['distributor', 'wholesale', 'retail'])[1 + c % 3],
       (ARRAY['east', 'south', 'north', 'west', 'central'])[1 + c % 5], 'CNY', now() - interval '3 years'
  FROM generate_series(1, 11 * :traders) c;
-- Traders: invoice j (1..100) of customer c every 7 days, 30-day terms; days late from the
-- customer's propensity (c % 10 in tenths) and the invoice's own draw.
INSERT INTO credit.invoice (id, customer, doc_no, doc_date, due_date, amount, open_amount, last_applied_on)
SELECT (c - 1) * 100 + j, 'P' || lpad(c::text, 7, '0'), 'INV-' || c || '-' || j, d, d + 30,
       round((200 + ((c * 7919 + j * 104729) % 100000) / 20.0)::numeric, 2), 0, d + 30 + late
  FROM generate_series(1, :traders) c, generate_series(1, 100) j,
       LATERAL (SELECT current_date - 800 + 7 * j AS d,
                       CASE WHEN (c * 2654435761 + j * 40503) % 100 < 10 * (c % 10) THEN 1 + (c * 31 + j * 17) % 50
                            ELSE -((c + j) % 5) END AS late) x;
INSERT INTO credit.settlement (id, customer, kind, doc_no, doc_date, amount, unapplied, last_applied_on)
SELECT i.id, i.customer, 'payment', 'PAY-' || i.id, i.last_applied_on, i.amount, 0, i.last_applied_on
  FROM credit.invoice i;
INSERT INTO credit.allocation (id, settlement_id, invoice_id, amount, applied_on)
SELECT i.id, i.id, i.id, i.amount, i.last_applied_on FROM credit.invoice i;
-- The open book: 10 invoices in the last 10 weeks for each of the other customers.
INSERT INTO credit.invoice (id, customer, doc_no, doc_date, due_date, amount, open_amount)
SELECT 100000000 + (c - :traders - 1) * 10 + j, 'P' || lpad(c::text, 7, '0'), 'OPEN-' || c || '-' || j, d, d + 30, a, a
  FROM generate_series(:traders + 1, 11 * :traders) c, generate_series(1, 10) j,
       LATERAL (SELECT current_date - 70 + 7 * j - c % 7 AS d, round((200 + ((c * 7919 + j * 104729) % 100000) / 20.0)::numeric, 2) AS a) x;
SELECT setval('credit.invoice_id_seq', 200000000), setval('credit.settlement_id_seq', 100000000),
       setval('credit.allocation_id_seq', 100000000);
RESET session_replication_role;
SELECT credit.rebuild_exposure() AS accounts_recomputed;
VACUUM ANALYZE;
