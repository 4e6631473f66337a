-- bench/citus.sh: the same receivables on one node and on Citus, for the analytics reads: 2,000
-- customers with three invoices each, 30 days apart and up to 200 days overdue, two in three of
-- them having paid part today. Posted through pg_credit's functions (on Citus, through the
-- coordinator to each customer's node).
SET client_min_messages = warning;
INSERT INTO credit.account (customer, credit_limit)
SELECT 'AG' || lpad(n::text, 4, '0'), 1e14 FROM generate_series(1, 2000) n;
SELECT count(*) AS invoices
  FROM (SELECT credit.post_invoice('AG' || lpad(n::text, 4, '0'), 'AGI-' || n || '-' || k, 100 * k + n % 97,
                                   current_date - (n % 200) - 30 * k, current_date - (n % 200) - 30 * k + 30)
          FROM generate_series(1, 2000) n, generate_series(1, 3) k ORDER BY n, k) x;
SELECT count(*) AS payments
  FROM (SELECT credit.post_payment('AG' || lpad(n::text, 4, '0'), 150 + n % 50)
          FROM generate_series(1, 2000) n WHERE n % 3 <> 0 ORDER BY n) x;
INSERT INTO credit.provision_rate (bucket, loss_rate) VALUES
    ('not due', 0.01), ('1-30', 0.05), ('31-60', 0.2), ('61-90', 0.5), ('over 90', 1);
