-- Credit groups: members share their head's limit; an order must fit both.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit) VALUES ('HQ', 1500);
INSERT INTO credit.account (customer, credit_limit, parent) VALUES ('NORTH', 1000, 'HQ'), ('SOUTH', 1000, 'HQ');
-- One level deep; the head must exist; nobody heads itself.
INSERT INTO credit.account (customer, credit_limit, parent) VALUES ('SUB', 10, 'NORTH');
INSERT INTO credit.account (customer, credit_limit, parent) VALUES ('LOST', 10, 'NOBODY');
UPDATE credit.account SET parent = 'HQ' WHERE customer = 'HQ';
UPDATE credit.account SET parent = 'NORTH' WHERE customer = 'HQ';
CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric);
SELECT credit.guard('orders', 'customer', 'amount');
INSERT INTO orders VALUES (1, 'NORTH', 900);
INSERT INTO orders VALUES (2, 'SOUTH', 700);     -- fits SOUTH's own limit, not the group's
INSERT INTO orders VALUES (2, 'SOUTH', 600);     -- exactly at the group limit
SELECT customer, exposure, member_exposure FROM credit.account ORDER BY customer;
SELECT allowed, available, reasons FROM credit.check('SOUTH', 1);
SELECT credit.available_credit('SOUTH') AS south, credit.available_credit('HQ') AS hq, credit.exposure('HQ') AS group_exposure;
-- The head's own orders count against the group too.
INSERT INTO orders VALUES (3, 'HQ', 1);
-- Invoices and payments of members move the group's exposure.
SELECT credit.post_invoice('NORTH', 'N-1', 100, current_date) > 0 AS invoiced;
SELECT member_exposure FROM credit.account WHERE customer = 'HQ';
SELECT credit.post_payment('NORTH', 300, current_date) > 0 AS paid;
SELECT member_exposure FROM credit.account WHERE customer = 'HQ';
INSERT INTO orders VALUES (3, 'HQ', 200);
-- A group on hold stops every member.
UPDATE credit.account SET status = 'hold' WHERE customer = 'HQ';
INSERT INTO orders VALUES (4, 'NORTH', 1);
UPDATE credit.account SET status = 'active' WHERE customer = 'HQ';
-- Moving a member out takes its exposure with it; a head with members cannot leave or be deleted.
UPDATE credit.account SET parent = NULL WHERE customer = 'SOUTH';
SELECT member_exposure FROM credit.account WHERE customer = 'HQ';
DELETE FROM credit.account WHERE customer = 'HQ';
UPDATE credit.account SET customer = 'HQ2' WHERE customer = 'HQ';
UPDATE credit.account SET parent = 'HQ' WHERE customer = 'SOUTH';
SELECT kind, customer, before, after FROM credit.event WHERE kind = 'group_changed' ORDER BY id;
SELECT * FROM credit.verify();
SELECT credit.rebuild_exposure();
ROLLBACK;
