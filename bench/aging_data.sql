-- Generator: 100,000 customers, 5,000,000 open invoices (10% partly paid in the last 60 days),
-- 2,000,000 settled invoices with their payments (applied over the last 200 days), for the aging
-- and analytics benchmarks. Writes the ledger directly as a superuser with triggers off (the
-- posting functions would take an hour at this size), then recomputes the counters.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS pg_credit;
SET session_replication_role = replica;
SET maintenance_work_mem = '1GB';
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region, currency)
SELECT 'K' || lpad(i::text, 6, '0'), 1e9, (ARRAY[30, 45, 60])[1 + i % 3],
       (ARRAY['distributor', 'wholesale', 'retail'])[1 + i % 3],
       (ARRAY['east', 'south', 'north', 'west', 'central'])[1 + i % 5], 'CNY'
  FROM generate_series(1, 100000) i;
-- open invoices: ids 1..5,000,000, dated over the last 400 days
INSERT INTO credit.invoice (id, customer, doc_no, doc_date, due_date, amount, open_amount, last_applied_on)
SELECT i, 'K' || lpad((1 + i % 100000)::text, 6, '0'), 'O' || i, d, d + 30, amt,
       CASE WHEN i % 10 = 0 THEN round(amt / 2, 2) ELSE amt END,
       CASE WHEN i % 10 = 0 THEN greatest(d, current_date - (i % 60)::int) END
  FROM (SELECT i, current_date - (i * 7 % 400)::int AS d,
               round((100 + (i * 7919 % 100000) / 10.0)::numeric, 2) AS amt
          FROM generate_series(1::bigint, 5000000) i) s;
-- settled invoices: ids 5,000,001..7,000,000
INSERT INTO credit.invoice (id, customer, doc_no, doc_date, due_date, amount, open_amount, last_applied_on)
SELECT 5000000 + i, 'K' || lpad((1 + i % 100000)::text, 6, '0'), 'H' || i, d, d + 30,
       round((100 + (i * 6007 % 100000) / 10.0)::numeric, 2), 0,
       least(current_date, d + 30 + ((5000000 + i) % 61)::int)
  FROM (SELECT i, current_date - 40 - (i * 13 % 500)::int AS d FROM generate_series(1::bigint, 2000000) i) s;
-- their payments (one each, applied 0-60 days after the due date, never in the future)
INSERT INTO credit.settlement (id, customer, kind, doc_date, amount, unapplied, last_applied_on)
SELECT i.id - 5000000, i.customer, 'payment', i.last_applied_on, i.amount, 0, i.last_applied_on
  FROM credit.invoice i WHERE i.id > 5000000;
INSERT INTO credit.allocation (id, settlement_id, invoice_id, amount, applied_on)
SELECT s.id, s.id, s.id + 5000000, s.amount, s.doc_date FROM credit.settlement s;
-- partial payments on every tenth open invoice, in the last 60 days
INSERT INTO credit.settlement (id, customer, kind, doc_date, amount, unapplied, last_applied_on)
SELECT 2000000 + i.id / 10, i.customer, 'payment', i.last_applied_on, i.amount - i.open_amount, 0, i.last_applied_on
  FROM credit.invoice i WHERE i.id <= 5000000 AND i.id % 10 = 0;
INSERT INTO credit.allocation (id, settlement_id, invoice_id, amount, applied_on)
SELECT s.id, s.id, (s.id - 2000000) * 10, s.amount, s.doc_date FROM credit.settlement s WHERE s.id > 2000000;
SELECT setval('credit.invoice_id_seq', 7000000), setval('credit.settlement_id_seq', 2500000),
       setval('credit.allocation_id_seq', 2500000);
RESET session_replication_role;
-- 10M payment experiences for the aggregate benchmark
CREATE TABLE IF NOT EXISTS public.experience AS
SELECT ((i * 7) % 250 - 60)::int AS days_late, round(((i * 7919) % 1000000 / 100.0)::numeric, 2) AS amount
  FROM generate_series(1::bigint, 10000000) i;
SELECT credit.rebuild_exposure() AS accounts_recomputed;
VACUUM ANALYZE;
