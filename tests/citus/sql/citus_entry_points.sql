-- Every entry point of pg_credit called through the coordinator with valid arguments, generated
-- from the catalog as tests/pg_regress/sql/25_function_levels.sql does on one node (its helpers,
-- tests/pg_regress/sql/00_setup.sql): each answers, or refuses with a SQLSTATE of its own (an id
-- that is not there, a request already pending), never with XX000. Each call is rolled back. Run
-- after citus_daily and citus_files, in their database: a year of ledger, tasks, promises,
-- statements, models.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- (pg_regress feeds this file on standard input from the repository's root: tests/citus/run.sh.)
\set ECHO none
\i tests/pg_regress/sql/00_setup.sql
\set ECHO all

-- The fixture: a customer on a worker with documents of every kind, an order table guarded in
-- each mode with a held order, a disputed invoice, a person and a role.
CREATE TABLE ep_orders (id bigint, customer text NOT NULL, amount numeric NOT NULL,
                        status text NOT NULL DEFAULT 'open', PRIMARY KEY (customer, id));
SELECT create_distributed_table('ep_orders', 'customer', colocate_with => 'credit.account');
SELECT credit.guard('ep_orders', 'customer', 'amount', 'status');
CREATE TABLE ep_held (id bigint, customer text NOT NULL, amount numeric NOT NULL,
                      status text NOT NULL DEFAULT 'open', PRIMARY KEY (customer, id));
SELECT create_distributed_table('ep_held', 'customer', colocate_with => 'credit.account');
SELECT credit.guard('ep_held', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold');
INSERT INTO ep_held VALUES (1, 'D-06', 999999);
SELECT credit.dispute('D-06', 'D-06-0', 'wrong price') > 0 AS disputed;
SELECT regress.more_documents('D-06') AS more_documents;
INSERT INTO regress.fixture VALUES ('customer', 'D-06'), ('doc', 'D-06-1'), ('disputed_doc', 'D-06-0'),
    ('orders', 'ep_orders'), ('held', 'ep_held'), ('role', 'regress_daily_managers'), ('person', 'regress_daily_manager');

CREATE TEMP TABLE entry_point AS
SELECT p.oid::regprocedure AS function, regress.call_of(p.oid) AS stmt, NULL::text AS state
  FROM pg_proc p
 WHERE p.pronamespace = 'credit'::regnamespace AND p.proname NOT LIKE '\_%' AND p.prokind IN ('f', 'a')
   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
   AND NOT ('internal'::regtype = ANY (p.proargtypes::oid[]::regtype[]));
UPDATE entry_point SET state = regress.try(stmt);
SELECT count(*) > 80 AS entry_points, count(*) FILTER (WHERE state = 'ok') AS answered,
       count(*) FILTER (WHERE state LIKE 'XX%') AS internal_errors
  FROM entry_point;
-- What each did: ok, or why it refused with these arguments.
SELECT function, state FROM entry_point ORDER BY function::text;
