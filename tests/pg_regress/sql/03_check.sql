-- credit.check: the guard's decision with every reason, reserving nothing.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit) VALUES ('ACME', 1000), ('HELD', 1000), ('BLACK', 100), ('CASH', 0);
SELECT credit.post_invoice('ACME', 'I1', 600, '2026-01-01') > 0 AS posted;
UPDATE credit.account SET status = 'hold' WHERE customer = 'HELD';
UPDATE credit.account SET status = 'blacklisted' WHERE customer = 'BLACK';
SELECT credit.post_invoice('BLACK', 'I1', 150, '2026-01-01') > 0 AS posted;

SELECT * FROM credit.check('ACME', 400);        -- exactly at the limit: accepted
SELECT * FROM credit.check('ACME', 400.01);     -- one cent over
SELECT * FROM credit.check('ACME', 0);
SELECT * FROM credit.check('HELD', 1);
SELECT * FROM credit.check('BLACK', 10);        -- every reason that applies
SELECT * FROM credit.check('CASH', 1);          -- limit 0 means no credit
SELECT credit.post_payment('CASH', 250, '2026-01-01') > 0 AS prepaid;
SELECT * FROM credit.check('CASH', 250);        -- a prepayment makes room
-- check reserves nothing
SELECT exposure FROM credit.account WHERE customer = 'ACME';

-- Bad input: unknown customer 23503, NULL 22004, negative or NaN 22023, too large 22003.
SELECT * FROM credit.check('NOBODY', 1);
SELECT * FROM credit.check(NULL, 1);
SELECT * FROM credit.check('ACME', NULL);
SELECT * FROM credit.check('ACME', -1);
SELECT * FROM credit.check('ACME', 'NaN');
SELECT * FROM credit.check('ACME', 1e30);
SELECT credit.exposure('NOBODY');
SELECT credit.available_credit(NULL);
SELECT credit.exposure('');

-- With the superuser-only setting on, customers without an account are let through.
SET pg_credit.allow_orders_without_account = on;
SELECT * FROM credit.check('NOBODY', 1);
RESET pg_credit.allow_orders_without_account;
ROLLBACK;
