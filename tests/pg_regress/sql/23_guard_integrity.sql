-- The guard stays on: below the admin level nobody — the guarded table's owner included — can
-- disable, drop or re-point it, or open an unguarded path into a guarded table (inheritance,
-- partitions created or attached later, renamed or retyped columns). Partitions and children
-- join the guard by themselves; detached, truncated or dropped ones release their open orders.
\set VERBOSITY default
\set SHOW_CONTEXT never
DO $$ BEGIN
    CREATE ROLE regress_gi_owner; CREATE ROLE regress_gi_admin;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT CREATE ON SCHEMA public TO regress_gi_owner;
GRANT USAGE ON SCHEMA credit TO regress_gi_owner, regress_gi_admin;
GRANT regress_gi_owner TO regress_gi_admin;   -- the admin may act as the table's owner
SET pg_credit.admin_role = 'regress_gi_admin';
INSERT INTO credit.account (customer, credit_limit) VALUES ('GI-A', 1000), ('GI-B', 1000);
CREATE VIEW gi_state AS
SELECT (SELECT string_agg(customer || '=' || open_orders, ' ' ORDER BY customer) FROM credit.account
         WHERE customer LIKE 'GI-%') AS open_orders,
       (SELECT count(*) FROM credit.verify()) AS drift;
GRANT SELECT ON gi_state TO PUBLIC;

CREATE TABLE gi_orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL,
                        status text NOT NULL DEFAULT 'open');
ALTER TABLE gi_orders OWNER TO regress_gi_owner;
SELECT credit.guard('gi_orders', 'customer', 'amount', 'status', '{open}');
INSERT INTO gi_orders VALUES (1, 'GI-A', 100);

-- The owner, with no credit level, tries to switch the guard off: every way is refused.
SET ROLE regress_gi_owner;
ALTER TABLE gi_orders DISABLE TRIGGER ALL;
ALTER TABLE gi_orders DISABLE TRIGGER USER;
ALTER TABLE gi_orders DISABLE TRIGGER credit_guard;
ALTER TABLE gi_orders ENABLE REPLICA TRIGGER credit_guard;
DROP TRIGGER credit_guard ON gi_orders;
DROP TRIGGER credit_guard_truncate ON gi_orders;
-- Posing as a Citus node's connection (whose DDL a Citus worker leaves to the node that sent it)
-- changes nothing here: this database is not distributed.
SET application_name = 'citus_internal gpid=10000000001';
ALTER TABLE gi_orders DISABLE TRIGGER credit_guard;
DROP TRIGGER credit_guard ON gi_orders;
RESET application_name;
-- A second guard trigger of the owner's own making (EXECUTE on the trigger function is public,
-- so that partitions can be created): refused.
CREATE TRIGGER my_guard AFTER INSERT ON gi_orders FOR EACH ROW
    EXECUTE FUNCTION credit._guard_row('customer', 'amount', '', 'reject', '', '0');
-- Renaming the trigger is harmless: the guard is found by its function, not its name.
ALTER TRIGGER credit_guard ON gi_orders RENAME TO renamed_guard;
ALTER TRIGGER renamed_guard ON gi_orders RENAME TO credit_guard;
-- Rename the amount column and add a dummy with the old name: the guard follows the rename.
ALTER TABLE gi_orders RENAME COLUMN amount TO amount_old;
ALTER TABLE gi_orders ADD COLUMN amount numeric;
INSERT INTO gi_orders (id, customer, amount_old, amount) VALUES (2, 'GI-A', 5000, 1);
INSERT INTO gi_orders (id, customer, amount_old, amount) VALUES (2, 'GI-A', 50, 999999);
-- A rewrite that changes amounts is checked like an UPDATE of those rows.
ALTER TABLE gi_orders ALTER COLUMN amount_old TYPE numeric USING amount_old * 100;
ALTER TABLE gi_orders ALTER COLUMN amount_old TYPE numeric(12,2) USING amount_old * 2;
-- Guarded columns keep a type whose text form is canonical; they cannot be dropped.
ALTER TABLE gi_orders ALTER COLUMN customer TYPE float8 USING 1;
ALTER TABLE gi_orders DROP COLUMN amount_old;
-- Inheritance: a child joins the guard; a table made to inherit brings its rows, checked.
CREATE TABLE gi_child () INHERITS (gi_orders);
INSERT INTO gi_child (id, customer, amount_old) VALUES (10, 'GI-A', 5000);
INSERT INTO gi_child (id, customer, amount_old) VALUES (10, 'GI-A', 10);
CREATE TABLE gi_loose (LIKE gi_orders);
INSERT INTO gi_loose (id, customer, amount_old, status) VALUES (20, 'GI-B', 5000, 'open');
ALTER TABLE gi_loose INHERIT gi_orders;
UPDATE gi_loose SET amount_old = 20;
ALTER TABLE gi_loose INHERIT gi_orders;
RESET ROLE;
SELECT * FROM gi_state;
SELECT table_name, kind, amount_column, problems FROM credit.guard_status WHERE root = 'gi_orders'::regclass ORDER BY 1;
SELECT id, customer, amount_old, amount FROM gi_orders ORDER BY id;

-- A credit admin may switch the guard off and on (and nobody below may leave it off).
SET ROLE regress_gi_admin;
ALTER TABLE gi_orders DISABLE TRIGGER credit_guard;
ALTER TABLE gi_orders ENABLE TRIGGER credit_guard;
RESET ROLE;
-- The owner may leave the inheritance (the table leaves the guard, its orders leave exposure),
-- truncate (everything truncated releases its orders) and drop its table (the rest goes too).
SET ROLE regress_gi_owner;
ALTER TABLE gi_loose NO INHERIT gi_orders;
RESET ROLE;
SELECT * FROM gi_state;
SET ROLE regress_gi_owner;
TRUNCATE gi_orders;
RESET ROLE;
SELECT * FROM gi_state;
SET ROLE regress_gi_owner;
INSERT INTO gi_orders (id, customer, amount_old) VALUES (3, 'GI-A', 300);
INSERT INTO gi_child (id, customer, amount_old) VALUES (11, 'GI-B', 30);
DROP TABLE gi_orders CASCADE;
RESET ROLE;
SELECT * FROM gi_state;
SELECT count(*) AS still_registered FROM credit.guarded_table;

-- Partitions: created or attached later they are guarded by themselves; attached rows are
-- checked; detached, truncated or dropped ones release their open orders.
CREATE TABLE gi_parts (id int, customer text, amount numeric, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE gi_parts_east PARTITION OF gi_parts FOR VALUES IN ('east');
ALTER TABLE gi_parts OWNER TO regress_gi_owner;
ALTER TABLE gi_parts_east OWNER TO regress_gi_owner;
INSERT INTO gi_parts VALUES (1, 'GI-A', 10, 'east');
SELECT credit.guard('gi_parts', 'customer', 'amount');
SET ROLE regress_gi_owner;
CREATE TABLE gi_parts_west PARTITION OF gi_parts FOR VALUES IN ('west');
INSERT INTO gi_parts VALUES (2, 'GI-A', 20, 'west');
INSERT INTO gi_parts VALUES (3, 'GI-A', 2000, 'west');
CREATE TABLE gi_parts_north (LIKE gi_parts);
INSERT INTO gi_parts_north VALUES (4, 'GI-A', 5000, 'north');
ALTER TABLE gi_parts ATTACH PARTITION gi_parts_north FOR VALUES IN ('north');
UPDATE gi_parts_north SET customer = 'GI-B', amount = 50;
ALTER TABLE gi_parts ATTACH PARTITION gi_parts_north FOR VALUES IN ('north');
ALTER TABLE gi_parts_west DISABLE TRIGGER ALL;
ALTER TABLE gi_parts DISABLE TRIGGER ALL;
RESET ROLE;
SELECT * FROM gi_state;
SELECT table_name, kind, problems FROM credit.guard_status WHERE root = 'gi_parts'::regclass ORDER BY 1;
SET ROLE regress_gi_owner;
ALTER TABLE gi_parts DETACH PARTITION gi_parts_north CONCURRENTLY;
ALTER TABLE gi_parts DETACH PARTITION gi_parts_north;
INSERT INTO gi_parts_north VALUES (5, 'GI-A', 99999, 'north');   -- no longer an order of gi_parts
TRUNCATE gi_parts_west;
RESET ROLE;
SELECT * FROM gi_state;
SET ROLE regress_gi_owner;
INSERT INTO gi_parts VALUES (6, 'GI-B', 60, 'west');
DROP TABLE gi_parts_west;
RESET ROLE;
SELECT * FROM gi_state;
SET ROLE regress_gi_owner;
DROP TABLE gi_parts, gi_parts_north;
RESET ROLE;
SELECT * FROM gi_state;

-- Only columns whose text form is canonical and set by no one's code can be guarded.
CREATE DOMAIN gi_code AS text CHECK (VALUE <> '');
CREATE TYPE gi_kind AS ENUM ('open', 'closed');
CREATE TABLE gi_types (id int PRIMARY KEY, c_text text, c_varchar varchar(20), c_int int, c_uuid uuid, c_domain gi_code,
                       c_float float8, c_date date, c_ts timestamptz, c_interval interval, c_enum gi_kind,
                       c_bool boolean, a_numeric numeric, a_money money, a_real real);
SELECT c.col, c.purpose, regress.try(format('SELECT credit.guard(%L, %L, %L%s)', 'gi_types',
           CASE c.purpose WHEN 'amount' THEN 'c_text' ELSE c.col END,
           CASE c.purpose WHEN 'amount' THEN c.col ELSE 'a_numeric' END,
           CASE c.purpose WHEN 'status' THEN format(', %L', c.col) ELSE '' END)) AS guard
  FROM (VALUES ('c_text', 'customer'), ('c_varchar', 'customer'), ('c_int', 'customer'), ('c_uuid', 'customer'),
               ('c_domain', 'customer'), ('c_float', 'customer'), ('c_date', 'customer'), ('c_ts', 'customer'),
               ('c_interval', 'customer'), ('c_enum', 'customer'), ('c_bool', 'status'), ('c_enum', 'status'),
               ('c_int', 'status'), ('a_numeric', 'amount'), ('c_int', 'amount'), ('a_money', 'amount'), ('a_real', 'amount'))
       c(col, purpose);
SELECT credit.guard('gi_types', 'c_float', 'a_numeric');

-- A guard trigger made by hand (a superuser is outside the model and may) acts on nothing it was
-- not registered for: every write to that table is refused.
CREATE TABLE gi_fake (customer text, amount numeric);
CREATE TRIGGER fake_guard AFTER INSERT OR UPDATE OR DELETE ON gi_fake FOR EACH ROW
    EXECUTE FUNCTION credit._guard_row('customer', 'amount', '', 'reject', '', '0');
INSERT INTO gi_fake VALUES ('GI-A', 999999);
SET ROLE regress_gi_owner;
CREATE TABLE gi_mine (customer text, amount numeric);
CREATE TRIGGER fake_guard AFTER INSERT ON gi_mine FOR EACH ROW
    EXECUTE FUNCTION credit._guard_row('customer', 'amount', '', 'reject', '', '0');
RESET ROLE;
DROP TABLE gi_fake, gi_mine, gi_types;

-- One table's misconfiguration affects only writes to that table: a superuser drops a guarded
-- column; credit.verify() and new accounts keep working, that table refuses writes.
CREATE TABLE gi_broken (id int, customer text, amount numeric, note text);
CREATE TABLE gi_fine (id int, customer text, amount numeric);
SELECT credit.guard('gi_broken', 'customer', 'amount'), credit.guard('gi_fine', 'customer', 'amount');
INSERT INTO gi_fine VALUES (1, 'GI-B', 5);
ALTER TABLE gi_broken DROP COLUMN customer;
SELECT table_name, problems FROM credit.guard_status WHERE table_name IN ('gi_broken'::regclass, 'gi_fine'::regclass) ORDER BY 1;
SELECT count(*) AS drift FROM credit.verify();
INSERT INTO credit.account (customer, credit_limit) VALUES ('GI-NEW', 10);
INSERT INTO gi_broken (id, amount) VALUES (1, 1);
INSERT INTO gi_fine VALUES (2, 'GI-NEW', 5);
SELECT credit.unguard('gi_broken');
DROP TABLE gi_broken;

-- An account whose customer has open orders keeps its name (the orders name it); a rename picks
-- up the new name's orders.
SET pg_credit.allow_orders_without_account = on;   -- an order taken before the account exists
INSERT INTO gi_fine VALUES (3, 'GI-RENAMED', 7);
RESET pg_credit.allow_orders_without_account;
UPDATE credit.account SET customer = 'GI-RENAMED' WHERE customer = 'GI-NEW';
DELETE FROM gi_fine WHERE customer = 'GI-NEW';
UPDATE credit.account SET customer = 'GI-RENAMED' WHERE customer = 'GI-NEW';
SELECT customer, open_orders, exposure FROM credit.account WHERE customer = 'GI-RENAMED';
SELECT * FROM gi_state;

-- Clean up.
DROP TABLE gi_fine;
DROP VIEW gi_state;
DROP DOMAIN gi_code;
DROP TYPE gi_kind;
RESET pg_credit.admin_role;
REVOKE CREATE ON SCHEMA public FROM regress_gi_owner;
DROP OWNED BY regress_gi_owner, regress_gi_admin;
DROP ROLE regress_gi_owner, regress_gi_admin;
