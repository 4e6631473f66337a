-- Privileges and hardening: nothing for PUBLIC, enforcement switches are superuser-only, the
-- guard cannot be bypassed or hijacked by an ordinary role.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
-- PUBLIC can execute no pg_credit function and read no table.
SELECT p.proname
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_credit'
 WHERE has_function_privilege('regress_clerk', p.oid, 'EXECUTE');
SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'r'
   AND has_table_privilege('regress_clerk', c.oid, 'SELECT,INSERT,UPDATE,DELETE');
-- SECURITY DEFINER functions pin search_path (the guard's triggers qualify every name instead).
SELECT p.proname, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'credit'::regnamespace AND p.prosecdef ORDER BY 1;

INSERT INTO credit.account (customer, credit_limit) VALUES ('ACME', 100);
CREATE TABLE app_orders (id int, customer text, amount numeric);
SELECT credit.guard('app_orders', 'customer', 'amount');
GRANT SELECT, INSERT, UPDATE, DELETE ON app_orders TO regress_clerk;
GRANT USAGE ON SCHEMA credit TO regress_clerk;

SET ROLE regress_clerk;
-- An application role without any pg_credit grant is still guarded (the trigger runs as owner).
INSERT INTO app_orders VALUES (1, 'ACME', 60);
INSERT INTO app_orders VALUES (2, 'ACME', 41);
-- It cannot switch enforcement off, touch the counters, the ledger, or the guard.
SET pg_credit.allow_orders_without_account = on;
UPDATE credit.account SET credit_limit = 1e9;
SELECT credit.post_payment('ACME', 1000);
SELECT credit.unguard('app_orders');
ALTER TABLE app_orders DISABLE TRIGGER credit_guard;
-- A shadowing operator in the caller's path does not change the guard's arithmetic.
RESET ROLE;
CREATE SCHEMA evil;
CREATE FUNCTION evil.always_fits(numeric, numeric) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.<= (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = evil.always_fits);
CREATE FUNCTION evil.zero(numeric, numeric) RETURNS numeric LANGUAGE sql AS 'SELECT 0::numeric';
CREATE OPERATOR evil.+ (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = evil.zero);
CREATE TABLE evil.account (customer text, credit_limit numeric);
GRANT USAGE ON SCHEMA evil TO regress_clerk;
SET ROLE regress_clerk;
SET search_path = evil, pg_catalog, public;
INSERT INTO app_orders VALUES (3, 'ACME', 41);
INSERT INTO app_orders VALUES (3, 'ACME', 40);
RESET search_path;
RESET ROLE;
SELECT open_orders, exposure FROM credit.account WHERE customer = 'ACME';
SELECT * FROM credit.verify();
ROLLBACK;
