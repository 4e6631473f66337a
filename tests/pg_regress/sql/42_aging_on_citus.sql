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
-- Statements on Citus read the ledger's entries and one customer's statement through PL/pgSQL
-- (credit._ledger_entries_on_citus, credit._statement_on_citus): the same rows as the one-node
-- functions, for all customers and for each, over every month of the suite's ledger.
CREATE TEMP TABLE months AS
SELECT d::date AS first_day, (d + interval '1 month - 1 day')::date AS last_day
  FROM generate_series(date_trunc('month', (SELECT min(doc_date) FROM credit.invoice)),
                       date_trunc('month', current_date), interval '1 month') d;
SELECT sum(c.differing) AS differing_rows, sum(c.n) > 100 AS entries_compared
  FROM months m,
       LATERAL (SELECT (SELECT count(*) FROM credit._ledger_entries(NULL, m.first_day, m.last_day)) AS n,
                       (SELECT count(*)
                          FROM ((SELECT * FROM credit._ledger_entries(NULL, m.first_day, m.last_day)
                                 EXCEPT ALL SELECT * FROM credit._ledger_entries_on_citus(NULL, m.first_day, m.last_day))
                                UNION ALL
                                (SELECT * FROM credit._ledger_entries_on_citus(NULL, m.first_day, m.last_day)
                                 EXCEPT ALL SELECT * FROM credit._ledger_entries(NULL, m.first_day, m.last_day))) x) AS differing) c;
SELECT count(*) FILTER (WHERE x.kind = 'write_off_reversal') > 0 AS written_off_and_reversed,
       count(*) FILTER (WHERE x.kind LIKE 'application%') > 0 AS applications
  FROM credit._ledger_entries_on_citus(NULL, '-infinity', 'infinity') x;
-- Each customer's statements of the month of its first invoice, of the month of its last, and of
-- its whole history to today.
CREATE TEMP TABLE periods AS
SELECT c.customer, p.first_day, p.last_day
  FROM (SELECT i.customer, min(i.doc_date) AS first_doc, max(i.doc_date) AS last_doc FROM credit.invoice i GROUP BY 1) c,
       LATERAL (VALUES (date_trunc('month', c.first_doc)::date, (date_trunc('month', c.first_doc) + interval '1 month - 1 day')::date),
                       (date_trunc('month', c.last_doc)::date, least((date_trunc('month', c.last_doc) + interval '1 month - 1 day')::date, current_date)),
                       (c.first_doc, current_date)) p(first_day, last_day);
SELECT count(*) > 60 AS statements_compared, count(*) FILTER (WHERE x.differing > 0) AS differing,
       sum(x.lines) > 1000 AS lines_compared
  FROM periods p,
       LATERAL (SELECT count(*) AS differing, (SELECT count(*) FROM credit.statement(p.customer, p.first_day, p.last_day)) AS lines
                  FROM ((SELECT * FROM credit.statement(p.customer, p.first_day, p.last_day)
                         EXCEPT ALL SELECT * FROM credit._statement_on_citus(p.customer, p.first_day, p.last_day))
                        UNION ALL
                        (SELECT * FROM credit._statement_on_citus(p.customer, p.first_day, p.last_day)
                         EXCEPT ALL SELECT * FROM credit.statement(p.customer, p.first_day, p.last_day))) d) x;
SELECT credit._statement_on_citus('NOBODY', current_date - 30, current_date);
