-- credit.account: a DBA-managed table whose maintained columns nobody else may write.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region, currency)
VALUES ('ACME', 50000, 45, 'wholesale', 'east', 'CNY'),
       ('BOLT', 0, 30, 'retail', 'north', 'CNY');
SELECT customer, credit_limit, terms_days, status, open_ar, unapplied_credit, open_orders, exposure
  FROM credit.account ORDER BY customer;

-- Validation of the DBA-managed columns (SQLSTATE 23514, nothing inserted).
INSERT INTO credit.account (customer, credit_limit) VALUES ('NEG', -1);
INSERT INTO credit.account (customer, credit_limit) VALUES ('NAN', 'NaN');
INSERT INTO credit.account (customer, credit_limit) VALUES ('INF', 'Infinity');
INSERT INTO credit.account (customer, credit_limit) VALUES ('BIG', 1e16);
INSERT INTO credit.account (customer, credit_limit, status) VALUES ('ST', 1, 'closed');
INSERT INTO credit.account (customer, credit_limit, terms_days) VALUES ('TD', 1, -5);
INSERT INTO credit.account (customer, credit_limit, currency) VALUES ('CUR', 1, 'usd');
INSERT INTO credit.account (customer, credit_limit) VALUES ('', 1);
\set VERBOSITY terse
INSERT INTO credit.account (customer, credit_limit) VALUES (NULL, 1);
\set VERBOSITY default
UPDATE credit.account SET status = 'frozen' WHERE customer = 'ACME';
SELECT count(*) AS accounts FROM credit.account;

-- Maintained columns are read-only to users, superusers included (42501).
UPDATE credit.account SET open_orders = 0 WHERE customer = 'ACME';
UPDATE credit.account SET exposure = -100 WHERE customer = 'ACME';
-- A non-superuser cannot create an account with counters either.
GRANT USAGE ON SCHEMA credit TO regress_clerk;
GRANT INSERT, SELECT ON credit.account TO regress_clerk;
SET ROLE regress_clerk;
INSERT INTO credit.account (customer, credit_limit, open_orders) VALUES ('FAKE', 10, -1000);
INSERT INTO credit.account (customer, credit_limit) VALUES ('CLERKS', 10);
RESET ROLE;
SELECT customer, open_orders, exposure FROM credit.account WHERE customer IN ('FAKE', 'CLERKS');

-- DBA-managed columns change freely.
UPDATE credit.account SET credit_limit = 60000, status = 'hold' WHERE customer = 'ACME';
SELECT customer, credit_limit, status FROM credit.account WHERE customer = 'ACME';

-- Ledger tables are facts: no direct UPDATE or DELETE, even for a superuser.
SELECT credit.post_invoice('ACME', 'INV-1', 100, '2026-01-01') > 0 AS posted;
UPDATE credit.invoice SET open_amount = 0;
DELETE FROM credit.invoice;
DELETE FROM credit.account WHERE customer = 'ACME';
UPDATE credit.account SET customer = 'ACME-2' WHERE customer = 'ACME';
ROLLBACK;
