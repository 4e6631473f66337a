-- Expected credit loss (provision matrix) with rate precedence, and roll rates.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, customer_type, region) VALUES
    ('W-EAST', 1e6, 'wholesale', 'east'), ('W-WEST', 1e6, 'wholesale', 'west'), ('R-EAST', 1e6, 'retail', 'east');
SELECT credit.post_invoice(c, c || '-1', 1000, '2026-01-01', '2026-01-31') > 0,
       credit.post_invoice(c, c || '-2', 333.33, '2026-06-01', '2026-07-31') > 0
  FROM unnest(ARRAY['W-EAST', 'W-WEST', 'R-EAST']) c;
INSERT INTO credit.provision_rate (bucket, customer_type, region, loss_rate) VALUES
    ('not due', NULL, NULL, 0.005),
    ('over 90', NULL, NULL, 0.5),
    ('over 90', 'wholesale', NULL, 0.4),
    ('over 90', NULL, 'east', 0.6),
    ('over 90', 'wholesale', 'east', 0.35);
-- Most specific wins: type+region, then type, then region, then general; unrounded detail, total rounded once.
SELECT * FROM credit.expected_loss('2026-06-30') ORDER BY customer NULLS LAST, bucket_position;
INSERT INTO credit.provision_rate (bucket, customer_type, region, loss_rate) VALUES ('not due', NULL, NULL, 0.01);
INSERT INTO credit.provision_rate (bucket, loss_rate) VALUES ('1-30', 1.5);
SELECT * FROM credit.expected_loss(NULL);

-- Roll rates: of what was 1-30 days past due at each month-end, how much was 31-60 a month later.
SELECT credit.post_payment('W-WEST', 1000, '2026-03-15', 'W-WEST-1') > 0;
SELECT * FROM credit.roll_rates('2026-06-30', 6);
ROLLBACK;

-- A customer who pays within 20 days of the due date: nothing rolls beyond 1-30 and the later
-- buckets never hold a balance, so no bucket carries a loss rate but the last (its own rate).
BEGIN;
INSERT INTO credit.account (customer, credit_limit) VALUES ('PROMPT', 1e6);
SELECT count(*) FROM (
    SELECT credit.post_invoice('PROMPT', 'P-' || m, 100, d, d + 30),
           credit.post_payment('PROMPT', 100, d + 45, 'P-' || m)
      FROM generate_series(1, 6) m, LATERAL (SELECT make_date(2026, m, 1) AS d) x) posted;
SELECT * FROM credit.roll_rates('2026-07-31', 6, 0.8);
ROLLBACK;
