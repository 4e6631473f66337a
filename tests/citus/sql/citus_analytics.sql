-- Aging and the provision matrix on Citus, through the coordinator (after the other Citus tests,
-- in their distributed database): credit.distribute() pointed credit.aging and
-- credit.expected_loss at versions Citus plans over every node's shards (sql/citus.sql; that they
-- give the one-node rows exactly: tests/pg_regress/sql/42_aging_on_citus.sql). The BI views over
-- them read as on one node.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- Today's aging is what is open on every node: per customer, the ledger's open invoices less
-- unapplied credit, as the accounts' counters say.
SELECT count(DISTINCT customer) AS customers, count(*) AS documents, sum(open_amount) AS total
  FROM credit.aging_detail;
SELECT count(*) AS customers_differing
  FROM credit.account a
  FULL JOIN (SELECT customer, sum(open_amount) AS open FROM credit.aging() GROUP BY customer) g USING (customer)
 WHERE coalesce(g.open, 0) <> a.open_ar - a.unapplied_credit;
SELECT customer, doc_type, doc_no, open_amount, days, bucket, bucket_position
  FROM credit.aging_detail WHERE customer LIKE 'P-%' ORDER BY customer, doc_no;
-- As of yesterday: P-01's instalment and P-03's payment (both today) are added back; by document
-- date, the same documents in older buckets.
SELECT customer, doc_no, open_amount, days, bucket FROM credit.aging(CURRENT_DATE - 1)
 WHERE customer IN ('P-01', 'P-03') ORDER BY customer, doc_no;
SELECT customer, doc_no, open_amount, days, bucket FROM credit.aging(CURRENT_DATE - 1, 'document')
 WHERE customer IN ('P-01', 'P-03') ORDER BY customer, doc_no;
-- The views over it, for BI.
SELECT customer, not_due, days_1_30, days_31_60, days_61_90, over_90, total, overdue, oldest_days_past_due
  FROM credit.aging_by_customer WHERE customer LIKE 'P-%' ORDER BY customer;
SELECT bucket, sum(amount) AS amount FROM credit.aging_summary WHERE customer LIKE 'P-%' GROUP BY bucket, bucket_position
 ORDER BY bucket_position;
SELECT customers > 0 AS read, total = (SELECT sum(open_amount) FROM credit.aging_detail) AS adds_up FROM credit.aging_by_region;
SELECT sum(total) = (SELECT sum(open_amount) FROM credit.aging_detail) AS adds_up FROM credit.aging_by_customer_type;
-- Bad arguments are refused as on one node.
SELECT count(*) FROM credit.aging(NULL);
SELECT count(*) FROM credit.aging(CURRENT_DATE, 'weekly');

-- The provision matrix with rates by bucket and one for the customer type of the L- customers.
INSERT INTO credit.provision_rate (bucket, customer_type, region, loss_rate) VALUES
    ('not due', NULL, NULL, 0.01), ('1-30', NULL, NULL, 0.05), ('31-60', NULL, NULL, 0.2),
    ('61-90', NULL, NULL, 0.5), ('over 90', NULL, NULL, 1), ('61-90', 'l-trade', NULL, 0.8);
SELECT customer, customer_type, bucket, gross_amount, loss_rate, expected_loss
  FROM credit.expected_loss() WHERE customer LIKE 'P-%' OR customer LIKE 'L-%' OR customer IS NULL
 ORDER BY customer NULLS LAST, bucket_position;
SELECT required = (SELECT expected_loss FROM credit.expected_loss() WHERE customer IS NULL) AS matrix_total, on_books, entry
  FROM credit.provision_adjustment(CURRENT_DATE, 100);
SELECT count(*) > 0 AS roll_rates FROM credit.roll_rates();
SELECT credit.dso(CURRENT_DATE - 90, CURRENT_DATE, 'P-01') > 0 AS dso_p01;
-- One customer's metrics read on its node (its aging and sales named by equality) add up to the
-- whole ledger's, read over every node, and its receivables are what the aging says.
WITH a AS MATERIALIZED (SELECT customer FROM credit.account),
m AS MATERIALIZED (SELECT a.customer, x.* FROM a, LATERAL credit.receivables_metrics(CURRENT_DATE - 90, CURRENT_DATE, a.customer) x),
g AS MATERIALIZED (SELECT customer, sum(open_amount) AS open, sum(open_amount) FILTER (WHERE days <= 0) AS current
                     FROM credit.aging(CURRENT_DATE, 'due') WHERE doc_type = 'invoice' GROUP BY customer),
t AS MATERIALIZED (SELECT * FROM credit.receivables_metrics(CURRENT_DATE - 90, CURRENT_DATE))
SELECT count(*) AS customers, count(*) FILTER (WHERE m.ending_ar > 0) AS with_receivables,
       count(*) FILTER (WHERE m.ending_ar <> coalesce(g.open, 0) OR m.current_ar <> coalesce(g.current, 0)) AS ar_differs,
       sum(m.credit_sales) = (SELECT credit_sales FROM t) AND sum(m.credit_sales) > 0 AS sales_add_up,
       sum(m.ending_ar) = (SELECT ending_ar FROM t) AS ending_adds_up,
       sum(m.beginning_ar) = (SELECT beginning_ar FROM t) AS beginning_adds_up
  FROM m LEFT JOIN g USING (customer);
DELETE FROM credit.provision_rate;

-- One account's recount (credit.rebuild_exposure of one customer), read on its node alone, equals
-- its row of the cluster-wide recount, for every account of the ledger above.
SELECT count(*) AS accounts, count(*) FILTER (WHERE o IS DISTINCT FROM a) AS differing,
       count(*) FILTER (WHERE a.open_ar <> 0) AS with_receivables
  FROM credit._recomputed() a CROSS JOIN LATERAL (SELECT * FROM credit._recomputed(ARRAY[a.customer])) o;
