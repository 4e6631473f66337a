-- The privilege model: four levels granted by credit.grant_privileges, each checked inside the
-- functions too (an EXECUTE granted too widely by hand does not open them); and search_path
-- hijacking attempts that change nothing.
\set VERBOSITY default
\set SHOW_CONTEXT never
DO $$ BEGIN
    CREATE ROLE regress_pm_reader; CREATE ROLE regress_pm_clerk; CREATE ROLE regress_pm_manager;
    CREATE ROLE regress_pm_admin; CREATE ROLE regress_pm_wide; CREATE ROLE regress_pm_nobody;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
-- Roles must exist; NULL leaves a level out.
SELECT regress.sqlstate_of($$SELECT credit.grant_privileges('regress_pm_reader', 'no_such_role')$$) AS missing_role;
SELECT * FROM credit.grant_privileges('regress_pm_reader', 'regress_pm_clerk', 'regress_pm_manager', 'regress_pm_admin');
SELECT level, role FROM credit.access_role ORDER BY credit._level_rank(level);
-- An application role someone granted every function to by hand, and one with nothing.
GRANT USAGE ON SCHEMA credit TO regress_pm_wide, regress_pm_nobody;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA credit TO regress_pm_wide;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA credit TO regress_pm_wide;
SET pg_credit.admin_role = 'regress_pm_admin';

INSERT INTO credit.account (customer, credit_limit) VALUES ('PM-A', 1000);
SELECT credit.post_invoice('PM-A', 'PM-1', 100, '2026-01-01') > 0 AS posted;
CREATE TABLE pm_orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL,
                        status text NOT NULL DEFAULT 'open');
SELECT credit.guard('pm_orders', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold');
SET client_min_messages = error;
INSERT INTO pm_orders VALUES (1, 'PM-A', 5000);
RESET client_min_messages;
SELECT id AS pm_hold FROM credit.order_hold WHERE customer = 'PM-A' \gset

SELECT regress.snapshot() AS before \gset
WITH calls(n, stmt) AS (VALUES
    (1, $$SELECT credit.check('PM-A', 1)$$),
    (2, $$SELECT count(*) FROM credit.aging_detail$$),
    (3, $$SELECT count(*) FROM credit.regrade(dry_run => true)$$),
    (4, $$SELECT credit.post_invoice('PM-A', 'PM-2', 10)$$),
    (5, $$SELECT credit.post_payment('PM-A', 10)$$),
    (6, $$SELECT credit.request_limit('PM-A', 2000, 'growth')$$),
    (7, $$SELECT credit.dispute('PM-A', 'PM-1', 'damaged')$$),
    (8, format($$SELECT credit.cancel_hold(%s, 'customer withdrew')$$, :pm_hold)),
    (9, $$SELECT credit.write_off('PM-A', 'PM-1', 10)$$),
    (10, $$SELECT credit.blacklist('PM-A', 'fraud')$$),
    (11, $$SELECT count(*) FROM credit.run_collections()$$),
    (12, $$SELECT count(*) FROM credit.regrade()$$),
    (13, $$SELECT count(*) FROM credit.run_daily()$$),
    (14, $$UPDATE credit.account SET credit_limit = 5000 WHERE customer = 'PM-A'$$),
    (15, $$INSERT INTO credit.policy (region, terms_days) VALUES ('pm', 10)$$),
    (16, $$SELECT credit.prune_outbox(0)$$),
    (17, $$SELECT credit.rebuild_exposure()$$),
    (18, $$SELECT credit.unguard('pm_orders')$$),
    (19, $$UPDATE credit.account SET exposure = 0$$),
    (20, $$SELECT count(*) FROM credit.access_role$$))
SELECT n, left(stmt, 62) AS call,
       regress.try(stmt, 'regress_pm_nobody') AS nobody,
       regress.try(stmt, 'regress_pm_reader') AS reader,
       regress.try(stmt, 'regress_pm_clerk') AS clerk,
       regress.try(stmt, 'regress_pm_manager') AS manager,
       regress.try(stmt, 'regress_pm_admin') AS admin,
       regress.try(stmt, 'regress_pm_wide') AS wide_execute
  FROM calls ORDER BY n;
SELECT regress.snapshot() = :'before' AS unchanged;
-- The message says which level is missing.
SET ROLE regress_pm_wide;
SELECT credit.post_payment('PM-A', 10);
RESET ROLE;

-- search_path hijacking: a role whose path puts an evil schema before pg_catalog, with functions
-- and operators shadowing what pg_credit uses. pg_credit's SECURITY DEFINER functions pin their
-- path and the guard qualifies every name, so nothing evil is ever called (each would raise).
CREATE SCHEMA pm_evil;
GRANT USAGE ON SCHEMA pm_evil TO PUBLIC;
CREATE FUNCTION pm_evil.hijacked() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE FUNCTION pm_evil.num_eq(numeric, numeric) RETURNS boolean LANGUAGE sql AS 'SELECT pm_evil.hijacked()';
CREATE FUNCTION pm_evil.num_le(numeric, numeric) RETURNS boolean LANGUAGE sql AS 'SELECT pm_evil.hijacked()';
CREATE FUNCTION pm_evil.num_add(numeric, numeric) RETURNS numeric LANGUAGE sql AS 'SELECT 0 WHERE pm_evil.hijacked()';
CREATE FUNCTION pm_evil.text_eq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT pm_evil.hijacked()';
CREATE OPERATOR pm_evil.= (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = pm_evil.num_eq);
CREATE OPERATOR pm_evil.<= (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = pm_evil.num_le);
CREATE OPERATOR pm_evil.+ (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = pm_evil.num_add);
CREATE OPERATOR pm_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pm_evil.text_eq);
CREATE FUNCTION pm_evil.jsonb_build_object(VARIADIC text[]) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb WHERE pm_evil.hijacked()';
CREATE FUNCTION pm_evil.current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE FUNCTION pm_evil.sha256(bytea) RETURNS bytea LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE FUNCTION pm_evil.pg_advisory_xact_lock(integer, integer) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
-- Types named like the built-in ones: a statement that names `text` or `jsonb` unqualified would
-- coerce to these (and once gave XX000).
CREATE DOMAIN pm_evil.text AS pg_catalog.text CHECK (pm_evil.hijacked());
CREATE DOMAIN pm_evil.jsonb AS pg_catalog.jsonb CHECK (pm_evil.hijacked());
CREATE DOMAIN pm_evil.numeric AS pg_catalog.numeric CHECK (pm_evil.hijacked());
GRANT SELECT, INSERT, UPDATE ON pm_orders TO regress_pm_clerk;
SET ROLE regress_pm_clerk;
SET search_path = pm_evil, pg_catalog, public;
INSERT INTO pm_orders VALUES (2, 'PM-A', 10);              -- fits: saved and counted
INSERT INTO pm_orders VALUES (3, 'PM-A', 100000);          -- held, not counted
SELECT credit.post_payment('PM-A', 5, '2026-02-01') > 0 AS paid;
SELECT allowed, available FROM credit.check('PM-A', 1);
RESET search_path;
RESET ROLE;
SELECT id, status FROM pm_orders ORDER BY id;
SELECT exposure, open_orders FROM credit.account WHERE customer = 'PM-A';
SELECT count(*) AS drift FROM credit.verify();
SELECT count(*) AS audit_breaks FROM credit.verify_audit();

-- Settings that switch enforcement or recording off are superuser-only.
SET ROLE regress_pm_admin;
SET pg_credit.allow_orders_without_account = on;
SET pg_credit.record_refusals = off;
SET pg_credit.admin_role = 'regress_pm_clerk';
RESET ROLE;

-- Clean up: the levels are forgotten with their roles.
SET client_min_messages = warning;
DROP TABLE pm_orders;
DROP SCHEMA pm_evil CASCADE;
RESET client_min_messages;
DELETE FROM credit.access_role;
DROP OWNED BY regress_pm_reader, regress_pm_clerk, regress_pm_manager, regress_pm_admin, regress_pm_wide, regress_pm_nobody;
DROP ROLE regress_pm_reader, regress_pm_clerk, regress_pm_manager, regress_pm_admin, regress_pm_wide, regress_pm_nobody;
RESET pg_credit.admin_role;
