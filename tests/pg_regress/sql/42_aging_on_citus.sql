-- On Citus, credit.distribute() points credit.aging and credit.expected_loss at PL/pgSQL versions
-- that Citus can plan over its shards (sql/citus.sql). They must give exactly the rows the one-node
-- SQL functions give: compared here over everything the suite has posted (invoices paid late and
-- in parts, unapplied payments and credit notes, reversals, write-offs, cancellations, custom
-- buckets), on every third day from the first document to a year after the last, both bases.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT count(*) > 50 AS invoices, count(DISTINCT customer) > 20 AS customers FROM credit.invoice;
SELECT count(*) FILTER (WHERE kind = 'payment') > 0 AS payments, count(*) FILTER (WHERE kind = 'credit_note') > 0 AS credit_notes,
       count(*) FILTER (WHERE kind = 'write_off') > 0 AS write_offs, count(*) FILTER (WHERE reversed_on IS NOT NULL) > 0 AS reversed,
       count(*) FILTER (WHERE unapplied > 0) > 0 AS unapplied
  FROM credit.settlement;
CREATE TEMP TABLE days AS
SELECT d::date AS d
  FROM generate_series((SELECT min(doc_date) FROM credit.invoice) - 1,
                       (SELECT greatest(max(doc_date), max(due_date)) FROM credit.invoice) + 365, interval '3 days') d;
SELECT count(*) > 100 AS days FROM days;
-- Rows of one and not the other, both ways (as multisets), per basis.
SELECT b.basis, count(*) AS differing_rows
  FROM days, (VALUES ('due'), ('document')) b(basis),
       LATERAL ((SELECT * FROM credit.aging(days.d, b.basis) EXCEPT ALL SELECT * FROM credit._aging_on_citus(days.d, b.basis))
                UNION ALL
                (SELECT * FROM credit._aging_on_citus(days.d, b.basis) EXCEPT ALL SELECT * FROM credit.aging(days.d, b.basis))) x
 GROUP BY b.basis ORDER BY b.basis;
SELECT sum(n) > 10000 AS rows_compared FROM days, LATERAL (SELECT count(*) AS n FROM credit.aging(days.d, 'due')) x;
-- The provision matrix, with rates by bucket, by customer type and by region.
INSERT INTO credit.provision_rate (bucket, customer_type, region, loss_rate)
SELECT b.label, NULL, NULL, 0.01 * b.position FROM credit.aging_bucket b WHERE NOT b.retired
ON CONFLICT DO NOTHING;
INSERT INTO credit.provision_rate (bucket, customer_type, region, loss_rate)
SELECT b.label, a.customer_type, NULL, 0.05 * b.position
  FROM credit.aging_bucket b, (SELECT DISTINCT customer_type FROM credit.account WHERE customer_type IS NOT NULL LIMIT 1) a
 WHERE NOT b.retired
ON CONFLICT DO NOTHING;
SELECT count(*) FILTER (WHERE x.expected_loss > 0) > 0 AS losses_compared
  FROM (SELECT d FROM days WHERE extract(day FROM d) < 4) days, LATERAL credit.expected_loss(days.d) x;
SELECT count(*) AS differing_rows
  FROM (SELECT d FROM days WHERE extract(day FROM d) < 4) days,
       LATERAL ((SELECT * FROM credit.expected_loss(days.d) EXCEPT ALL SELECT * FROM credit._expected_loss_on_citus(days.d))
                UNION ALL
                (SELECT * FROM credit._expected_loss_on_citus(days.d) EXCEPT ALL SELECT * FROM credit.expected_loss(days.d))) x;
-- Bad arguments are refused alike.
SELECT credit._aging_on_citus(NULL, 'due');
SELECT credit._aging_on_citus(current_date, 'weekly');
