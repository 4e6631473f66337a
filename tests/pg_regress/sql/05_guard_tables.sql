-- credit.guard / credit.unguard: validation, any customer type, integer amounts, tables without a
-- status column, partitioned tables, orders that predate the guard, dropped tables.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit) VALUES ('1001', 1000), ('1002', 1000),
    ('6ecd8c99-4036-403d-bf84-cf8400f67836', 500);

CREATE TABLE erp_orders (order_id bigint, cust_id bigint, total integer, "Status ""x""" text, price float8);
CREATE VIEW erp_orders_v AS SELECT * FROM erp_orders;

-- Validation: 42703 for missing columns, 42804 for floats, 42809 for non-tables, 22004 for NULLs.
SELECT credit.guard('erp_orders', 'customer', 'total');
SELECT credit.guard('erp_orders', 'cust_id', 'amount');
SELECT credit.guard('erp_orders', 'cust_id', 'price');
SELECT credit.guard('erp_orders', 'cust_id', 'total', 'state');
SELECT credit.guard('erp_orders_v', 'cust_id', 'total');
SELECT credit.guard('credit.invoice', 'customer', 'amount');
SELECT credit.guard(NULL, 'cust_id', 'total');
SELECT credit.guard('erp_orders', NULL, 'total');
SELECT credit.guard('erp_orders', 'cust_id', 'total', NULL, '{open}');
SELECT credit.guard('erp_orders', 'cust_id', 'total', 'Status "x"', '{}');
SELECT credit.guard('erp_orders', 'cust_id', 'total', 'Status "x"', '{open,NULL}');
SELECT credit.guard('no_such_table', 'cust_id', 'total');
-- A column name carrying SQL runs no SQL: it is only ever a quoted identifier or literal.
SELECT credit.guard('erp_orders', 'cust_id''); DROP TABLE erp_orders; --', 'total');
SELECT count(*) FROM erp_orders;

-- Orders already in the table count from the moment the guard is attached.
INSERT INTO erp_orders VALUES (1, 1001, 200, 'open'), (2, 1001, 50, 'done'), (3, 9999, 10, 'open');
SELECT credit.guard('erp_orders', 'cust_id', 'total', 'Status "x"');
SELECT customer, open_orders FROM credit.account WHERE customer = '1001';
SELECT credit.guard('erp_orders', 'cust_id', 'total');
-- bigint customers match accounts by their text form; integer amounts work.
INSERT INTO erp_orders VALUES (4, 1002, 1000, 'open');
INSERT INTO erp_orders VALUES (5, 1002, 1, 'open');
UPDATE erp_orders SET "Status ""x""" = 'done' WHERE order_id = 4;
SELECT customer, open_orders FROM credit.account WHERE customer IN ('1001', '1002') ORDER BY customer;

-- A second table guards against the same exposure (orders and, say, deliveries).
CREATE TABLE deliveries (id serial, customer uuid NOT NULL, value numeric NOT NULL);
SELECT credit.guard('deliveries', 'customer', 'value');
INSERT INTO deliveries (customer, value) VALUES ('6ecd8c99-4036-403d-bf84-cf8400f67836', 500);
INSERT INTO deliveries (customer, value) VALUES ('6ecd8c99-4036-403d-bf84-cf8400f67836', 0.5);
DELETE FROM deliveries;
SELECT exposure FROM credit.account WHERE customer = '6ecd8c99-4036-403d-bf84-cf8400f67836';

-- Partitioned tables: the guard covers every partition, row movement included.
CREATE TABLE part_orders (id int, customer text, amount numeric, region text) PARTITION BY LIST (region);
CREATE TABLE part_orders_east PARTITION OF part_orders FOR VALUES IN ('east');
CREATE TABLE part_orders_west PARTITION OF part_orders FOR VALUES IN ('west');
SELECT credit.guard('part_orders', 'customer', 'amount');
INSERT INTO part_orders VALUES (1, '1001', 300, 'east'), (2, '1001', 300, 'west');
INSERT INTO part_orders VALUES (3, '1001', 300, 'west');
UPDATE part_orders SET region = 'west' WHERE id = 1;
SELECT customer, open_orders FROM credit.account WHERE customer = '1001';
SELECT * FROM credit.verify();

-- unguard takes the table's open orders out and removes the triggers; unknown tables are refused.
SELECT credit.unguard('part_orders');
SELECT customer, open_orders FROM credit.account WHERE customer = '1001';
INSERT INTO part_orders VALUES (9, '1001', 100000, 'east');
SELECT credit.unguard('part_orders');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'part_orders'::regclass AND NOT tgisinternal;

-- The guard's trigger functions refuse to run when attached by hand the wrong way (39P01).
CREATE TABLE manual_orders (customer text, amount numeric);
CREATE TRIGGER manual BEFORE INSERT ON manual_orders FOR EACH ROW EXECUTE FUNCTION credit._guard_row('customer', 'amount', '');
INSERT INTO manual_orders VALUES ('1001', 1);
DROP TRIGGER manual ON manual_orders;
CREATE TRIGGER manual AFTER INSERT ON manual_orders FOR EACH STATEMENT EXECUTE FUNCTION credit._guard_row('customer', 'amount', '');
INSERT INTO manual_orders VALUES ('1001', 1);
DROP TRIGGER manual ON manual_orders;
CREATE TRIGGER manual AFTER INSERT ON manual_orders FOR EACH STATEMENT EXECUTE FUNCTION credit._guard_truncate();
INSERT INTO manual_orders VALUES ('1001', 1);

-- Dropping a guarded table takes its open orders out of exposure too.
SELECT customer, open_orders FROM credit.account WHERE customer = '1001';
DROP VIEW erp_orders_v;
DROP TABLE erp_orders;
SELECT customer, open_orders FROM credit.account WHERE customer = '1001';
SELECT table_name FROM credit.guarded_table ORDER BY 1;
SELECT * FROM credit.verify();
ROLLBACK;
