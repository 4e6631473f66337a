-- The order guard on an application table: every write path is checked, releases are exact.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit) VALUES ('ACME', 1000), ('BETA', 500), ('HELD', 1000), ('BLACK', 1000);
UPDATE credit.account SET status = 'hold' WHERE customer = 'HELD';
UPDATE credit.account SET status = 'blacklisted' WHERE customer = 'BLACK';
SELECT credit.post_invoice('ACME', 'I-1', 300, '2026-01-01') > 0 AS posted;

CREATE TABLE sales_order (
    id       int PRIMARY KEY,
    customer text,
    amount   numeric(12,2),
    state    text NOT NULL DEFAULT 'open'
);
SELECT credit.guard('sales_order', 'customer', 'amount', 'state', '{open,confirmed}');
SELECT table_name, customer_column, amount_column, status_column, open_statuses FROM credit.guarded_table;

-- Within the limit, then exactly at it (ACME: limit 1000, open AR 300).
INSERT INTO sales_order VALUES (1, 'ACME', 400);
INSERT INTO sales_order VALUES (2, 'ACME', 300);
SELECT open_ar, open_orders, exposure FROM credit.account WHERE customer = 'ACME';
-- One cent over: refused with 23514, the numbers and a hint; nothing is written.
INSERT INTO sales_order VALUES (3, 'ACME', 0.01);
\set VERBOSITY sqlstate
INSERT INTO sales_order VALUES (3, 'ACME', 0.01);
\set VERBOSITY default
SELECT count(*) AS orders FROM sales_order;

-- Status, hold, blacklist, no account.
INSERT INTO sales_order VALUES (10, 'HELD', 1);
INSERT INTO sales_order VALUES (11, 'BLACK', 1);
INSERT INTO sales_order VALUES (11, 'BLACK', 0);   -- not even a zero-amount order
INSERT INTO sales_order VALUES (12, 'NOBODY', 1);
-- Bad rows: negative (22023), no amount or customer on an open order (23502).
INSERT INTO sales_order VALUES (13, 'BETA', -5);
INSERT INTO sales_order VALUES (14, 'BETA', NULL);
INSERT INTO sales_order VALUES (15, NULL, 5);
-- ...but a non-open row is not the guard's business.
INSERT INTO sales_order VALUES (16, NULL, NULL, 'draft');

-- Raising an open order is checked against the increase; lowering releases.
UPDATE sales_order SET amount = 300.01 WHERE id = 2;
UPDATE sales_order SET amount = 250 WHERE id = 2;
SELECT open_orders, exposure FROM credit.account WHERE customer = 'ACME';
UPDATE sales_order SET amount = 300.01 WHERE id = 2;
UPDATE sales_order SET amount = 300 WHERE id = 2;
-- Changing a non-guarded column or moving between open statuses touches nothing.
UPDATE sales_order SET state = 'confirmed' WHERE id = 1;
SELECT open_orders FROM credit.account WHERE customer = 'ACME';

-- Closing releases; reopening is checked again.
UPDATE sales_order SET state = 'shipped' WHERE id = 1;
SELECT open_orders FROM credit.account WHERE customer = 'ACME';
INSERT INTO sales_order VALUES (4, 'ACME', 300);
UPDATE sales_order SET state = 'open' WHERE id = 1;
DELETE FROM sales_order WHERE id = 4;
UPDATE sales_order SET state = 'open' WHERE id = 1;
SELECT open_orders, exposure FROM credit.account WHERE customer = 'ACME';

-- Moving an order to another customer releases one and checks the other (BETA: limit 500).
UPDATE sales_order SET customer = 'BETA' WHERE id = 1;
UPDATE sales_order SET customer = 'BETA', amount = 200 WHERE id = 1;
SELECT customer, open_orders FROM credit.account WHERE customer IN ('ACME', 'BETA') ORDER BY customer;

-- A multi-row statement is all or nothing.
INSERT INTO sales_order VALUES (20, 'BETA', 100), (21, 'BETA', 100), (22, 'BETA', 100.01);
SELECT count(*) FROM sales_order WHERE id >= 20;
INSERT INTO sales_order VALUES (20, 'BETA', 100), (21, 'BETA', 100), (22, 'BETA', 100);
SELECT open_orders, exposure FROM credit.account WHERE customer = 'BETA';
UPDATE sales_order SET amount = amount + 1 WHERE customer = 'BETA';
UPDATE sales_order SET amount = amount - 10 WHERE customer = 'BETA';
SELECT open_orders FROM credit.account WHERE customer = 'BETA';

-- INSERT ... ON CONFLICT counts only what happened.
INSERT INTO sales_order VALUES (20, 'BETA', 50) ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount;
INSERT INTO sales_order VALUES (23, 'BETA', 50) ON CONFLICT (id) DO NOTHING;
SELECT open_orders FROM credit.account WHERE customer = 'BETA';

-- COPY is guarded too.
COPY sales_order (id, customer, amount) FROM stdin;
30	BETA	1
31	BETA	1000
\.
COPY sales_order (id, customer, amount) FROM stdin;
30	BETA	1
31	BETA	2
\.
SELECT open_orders FROM credit.account WHERE customer = 'BETA';

-- Invoicing an order: the order closes, the receivable opens; exposure is unchanged.
SELECT exposure FROM credit.account WHERE customer = 'BETA';
UPDATE sales_order SET state = 'invoiced' WHERE id = 21;
SELECT credit.post_invoice('BETA', 'SO-21', 91, '2026-02-01') > 0 AS posted;
SELECT open_ar, open_orders, exposure FROM credit.account WHERE customer = 'BETA';
-- A payment makes room for the next order.
INSERT INTO sales_order VALUES (40, 'BETA', 300);
SELECT credit.post_payment('BETA', 300, '2026-02-10') > 0 AS paid;
INSERT INTO sales_order VALUES (40, 'BETA', 300);

-- A lower limit refuses new orders but never touches existing ones.
UPDATE credit.account SET credit_limit = 100 WHERE customer = 'BETA';
INSERT INTO sales_order VALUES (41, 'BETA', 1);
UPDATE sales_order SET amount = amount - 1 WHERE id = 40;
SELECT * FROM credit.verify();

-- TRUNCATE takes the table's open orders out of exposure.
SELECT customer, open_orders FROM credit.account ORDER BY customer;
TRUNCATE sales_order;
SELECT customer, open_orders, exposure FROM credit.account ORDER BY customer;
SELECT * FROM credit.verify();

-- The superuser-only setting lets orders of customers without account through, uncounted.
SET pg_credit.allow_orders_without_account = on;
INSERT INTO sales_order VALUES (50, 'WALKIN', 99);
RESET pg_credit.allow_orders_without_account;
-- Creating the account later counts the open orders it already has.
INSERT INTO credit.account (customer, credit_limit) VALUES ('WALKIN', 50);
SELECT customer, open_orders, exposure FROM credit.account WHERE customer = 'WALKIN';
SELECT * FROM credit.verify();
ROLLBACK;
