-- pg_credit on Citus, through the coordinator: the layout credit.distribute() makes, the guard on
-- a distributed order table (each order decided on the node of its shard, against the account row
-- beside it), what Citus refuses clearly, and the repairs cluster-wide. The cluster: a coordinator
-- and two workers (tests/citus/run.sh).
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- Helper: the SQLSTATE a statement fails with, 'ok' when it succeeds (its effects stay).
CREATE SCHEMA regress_citus;
CREATE FUNCTION regress_citus.state_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

-- Accounts, and an order table guarded before distribution, with orders already in it.
INSERT INTO credit.account (customer, credit_limit) VALUES
    ('C-01', 1000), ('C-02', 1000), ('C-03', 500), ('C-04', 500), ('C-05', 2000), ('C-06', 300);
CREATE TABLE orders (id bigint NOT NULL, customer text NOT NULL, amount numeric NOT NULL,
                     status text NOT NULL DEFAULT 'open', PRIMARY KEY (customer, id));
SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}');
INSERT INTO orders VALUES (1, 'C-01', 400), (2, 'C-02', 300), (3, 'C-05', 1500);
-- The ledger goes with its customers: an invoice posted and partly paid before distribution.
SELECT credit.post_invoice('C-02', 'INV-0', 200, CURRENT_DATE - 5) > 0 AS posted;
SELECT credit.post_payment('C-02', 50) > 0 AS paid;
-- And a payment arrangement on what is left of it (tests/citus/sql/citus_arrangements.sql).
SELECT credit.arrange('C-02', ARRAY['INV-0'], jsonb_build_array(jsonb_build_object('due_date', CURRENT_DATE + 30, 'amount', 150))) > 0 AS arranged;
SELECT customer, open_orders, exposure FROM credit.account ORDER BY customer;
-- A limit request pending when the tables are distributed: it goes with its customer.
SELECT credit.request_limit('C-01', 1500, 'season') AS early_request \gset

-- A table guarded in hold mode, with a held order in the queue: distributed with it.
INSERT INTO credit.account (customer, credit_limit) VALUES ('H-01', 100);
CREATE TABLE held_orders (id bigint NOT NULL, customer text NOT NULL, amount numeric NOT NULL,
                          status text NOT NULL DEFAULT 'open', PRIMARY KEY (customer, id));
SELECT credit.guard('held_orders', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold');
INSERT INTO held_orders VALUES (1, 'H-01', 80), (2, 'H-01', 50);
SELECT id, table_name, customer, amount, status FROM credit.order_hold;

-- A credit group does not run on Citus: credit.distribute() says so before it changes anything.
UPDATE credit.account SET parent = 'C-05' WHERE customer = 'C-06';
SELECT credit.distribute();
UPDATE credit.account SET parent = NULL WHERE customer = 'C-06';

-- The layout: configuration on every node, per-customer tables with the orders.
SELECT table_name, layout FROM credit.distribute() ORDER BY layout, table_name::text;
SELECT credit.is_distributed();
SELECT logicalrelid, partmethod, column_to_column_name(logicalrelid, partkey) AS by_column,
       colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'credit.account'::regclass) AS with_accounts
  FROM pg_dist_partition
 WHERE logicalrelid IN ('credit.account'::regclass, 'credit.order_hold'::regclass, 'credit.history'::regclass,
                        'orders'::regclass, 'held_orders'::regclass, 'credit.policy'::regclass, 'credit.guard_registration'::regclass,
                        'credit.invoice'::regclass, 'credit.settlement'::regclass, 'credit.reversal'::regclass,
                        'credit.allocation'::regclass)
 ORDER BY logicalrelid::text;
-- Both workers hold accounts; the orders already there were counted once, not again.
SELECT count(DISTINCT n.nodeport) AS nodes_with_accounts
  FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
 WHERE s.logicalrelid = 'credit.account'::regclass;
SELECT customer, open_orders, open_ar, exposure FROM credit.account ORDER BY customer;
SELECT doc_no, amount, open_amount FROM credit.invoice ORDER BY doc_no;
SELECT count(*) AS drift FROM credit.verify();
-- Once is enough.
SELECT credit.distribute();

-- Orders through the coordinator: each is decided on its shard's node.
INSERT INTO orders VALUES (10, 'C-01', 500);
INSERT INTO orders VALUES (11, 'C-01', 200);
INSERT INTO orders VALUES (12, 'C-03', 501);
INSERT INTO orders VALUES (13, 'NOBODY', 1);
-- Many rows in one statement, over both workers: all or nothing.
INSERT INTO orders VALUES (20, 'C-02', 100), (21, 'C-03', 100), (22, 'C-04', 100), (23, 'C-06', 400);
INSERT INTO orders VALUES (20, 'C-02', 100), (21, 'C-03', 100), (22, 'C-04', 100), (23, 'C-06', 300);
SELECT customer, open_orders, exposure FROM credit.account ORDER BY customer;
-- Changing an order: a larger amount is checked, a cancellation or a delete gives the credit back.
UPDATE orders SET amount = 150 WHERE customer = 'C-06' AND id = 23;
UPDATE orders SET amount = 250 WHERE customer = 'C-06' AND id = 23;
UPDATE orders SET status = 'cancelled' WHERE customer = 'C-01' AND id = 10;
DELETE FROM orders WHERE customer = 'C-02' AND id = 20;
SELECT customer, open_orders, exposure FROM credit.account ORDER BY customer;

-- The DBA's policy through the coordinator: limits, a temporary limit, status.
UPDATE credit.account SET credit_limit = 1200 WHERE customer = 'C-01';
INSERT INTO orders VALUES (30, 'C-01', 600);
UPDATE credit.account SET temporary_limit = 1000, temporary_limit_until = CURRENT_DATE + 7 WHERE customer = 'C-03';
INSERT INTO orders VALUES (31, 'C-03', 700);
UPDATE credit.account SET temporary_limit = 1000, temporary_limit_until = CURRENT_DATE - 1 WHERE customer = 'C-04';
INSERT INTO orders VALUES (32, 'C-04', 450);
SELECT credit.blacklist('C-05', 'fraud');
INSERT INTO orders VALUES (33, 'C-05', 1);
SELECT credit.reinstate('C-05', 'cleared');
SELECT credit.blacklist('C-05', 'fraud again');
-- A limit increase through four eyes: asked by one person, approved by another (credit.act_for,
-- for one transaction, as in 14_approval); the approved limit takes effect on C-04's node.
CREATE ROLE regress_citus_manager NOLOGIN;
CREATE ROLE regress_citus_mgr_a NOLOGIN IN ROLE regress_citus_manager;
GRANT USAGE ON SCHEMA credit TO regress_citus_manager;
GRANT EXECUTE ON FUNCTION credit.approve(bigint, text) TO regress_citus_manager;
INSERT INTO credit.trusted_proxy (role, note) VALUES (session_user, 'the test stands in for a manager');
INSERT INTO credit.approval_rule (min_increase, approver_roles) VALUES (0, '{regress_citus_manager}');
SELECT credit.request_limit('C-04', 800, 'growth') AS request \gset
SELECT credit.approve(:request);
BEGIN;
SELECT credit.act_for('regress_citus_mgr_a') IS NOT NULL AS acting;
SET ROLE regress_citus_mgr_a;
SELECT credit.approve(:request, 'seen the orders');
RESET ROLE;
COMMIT;
SELECT status, requested_limit, decided_by FROM credit.limit_request WHERE id = :request;
SELECT customer, credit_limit FROM credit.account WHERE customer = 'C-04';
-- Requests and signatures live with their customer (limit_request, limit_approval): the one
-- asked before distribute() is withdrawn by its requester on C-01's node; one pending request per
-- customer; a rejection by the level's manager; what is decided or missing is refused.
SELECT credit.reject(:early_request, 'no longer needed');
SELECT credit.request_limit('C-03', 900, 'new branch') AS third_request \gset
SELECT regress_citus.state_of($$SELECT credit.request_limit('C-03', 950, 'again')$$) AS second_pending;
GRANT EXECUTE ON FUNCTION credit.reject(bigint, text) TO regress_citus_manager;
BEGIN;
SELECT credit.act_for('regress_citus_mgr_a') IS NOT NULL AS acting;
SET ROLE regress_citus_mgr_a;
SELECT credit.reject(:third_request, 'not this quarter');
RESET ROLE;
COMMIT;
SELECT regress_citus.state_of(format('SELECT credit.approve(%s)', :third_request)) AS decided_already,
       regress_citus.state_of('SELECT credit.approve(987654321)') AS missing;
SELECT r.customer, r.requested_limit, r.status, r.decided_by, r.decision_comment,
       (SELECT string_agg(l.level || ':' || l.approver, ', ' ORDER BY l.level) FROM credit.limit_approval l
         WHERE l.customer = r.customer AND l.request_id = r.id) AS signatures
  FROM credit.limit_request r ORDER BY r.id;
SELECT customer, credit_limit FROM credit.account WHERE customer IN ('C-01', 'C-03') ORDER BY customer;
-- Each on the node of its customer's account.
WITH r AS MATERIALIZED (SELECT customer FROM credit.limit_request)
SELECT count(*) AS requests, count(*) FILTER (
 WHERE (SELECT p.groupid FROM pg_dist_placement p WHERE p.shardid = get_shard_id_for_distribution_column('credit.limit_request', r.customer))
       <> (SELECT p.groupid FROM pg_dist_placement p WHERE p.shardid = get_shard_id_for_distribution_column('credit.account', r.customer))
       ) AS away_from_their_account
  FROM r;
INSERT INTO orders VALUES (35, 'C-04', 300);
UPDATE credit.account SET status = 'hold' WHERE customer = 'C-02';
INSERT INTO orders VALUES (34, 'C-02', 1);
UPDATE credit.account SET status = 'active' WHERE customer = 'C-02';
INSERT INTO orders VALUES (34, 'C-02', 1);
-- Reads through the coordinator.
SELECT c.customer, (credit.check(c.customer, 100)).*
  FROM (VALUES ('C-01'), ('C-03'), ('C-05')) c(customer) ORDER BY 1;
SELECT credit.exposure('C-01'), credit.available_credit('C-01');
-- A call naming one customer runs on that customer's node (Citus hands it over whole).
SELECT objid::regprocedure AS routed_by_customer, distribution_argument_index,
       colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'credit.account'::regclass) AS with_accounts
  FROM pg_dist_object WHERE classid = 'pg_proc'::regclass AND objid::regprocedure::text LIKE 'credit.%'
 ORDER BY objid::regprocedure::text;
EXPLAIN (COSTS OFF) SELECT credit.check('C-03', 100);
SELECT credit.check('C-03', 100), credit.exposure('C-02');
SELECT credit.available_credit('NOBODY');

-- One statement over every account: events on several shards of each worker, one transaction
-- per worker (credit.distribute() sets citus.multi_shard_modify_mode to sequential).
SHOW citus.multi_shard_modify_mode;
UPDATE credit.account SET credit_limit = credit_limit + 100 WHERE customer <> 'C-05';
SELECT customer, credit_limit FROM credit.account ORDER BY customer;

-- Events: each worker records the warnings and refusals of its orders (and its accounts'
-- changes) in its own credit.event; the relay publishes them from the coordinator, each once, in
-- the order (node group, outbox id).
SELECT bool_and(success) AS refusals_recorded FROM run_command_on_workers('SELECT credit.record_refusals()');
SELECT node_group, kind, count(*) AS events, string_agg(DISTINCT customer, ' ' ORDER BY customer) AS customers
  FROM credit.relay_events() GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS published_again FROM credit.relay_events();
SELECT node_group, last_outbox_id > 0 AS published FROM credit.relay_cursor ORDER BY 1;
SELECT credit.relay_events(0);

-- Re-grading and the credit file read on Citus (the ladder and disputes: citus_ladder; the daily
-- job, re-grading and statements: citus_daily; the credit file: citus_files). Not on Citus yet:
-- credit groups, refused.
SELECT regress_citus.state_of($$SELECT credit.regrade(dry_run => true)$$) AS regrade,
       regress_citus.state_of($$SELECT credit.file('C-01')$$) AS file;
UPDATE credit.account SET parent = 'C-05' WHERE customer = 'C-06';
-- Tables the guard cannot run on: local, distributed by another column, not with the accounts.
CREATE TABLE local_orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL);
SELECT credit.guard('local_orders', 'customer', 'amount');
CREATE TABLE orders_by_id (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL);
SELECT create_distributed_table('orders_by_id', 'id');
SELECT credit.guard('orders_by_id', 'customer', 'amount');
CREATE TABLE orders_apart (id bigint, customer text NOT NULL, amount numeric NOT NULL, PRIMARY KEY (customer, id));
SELECT create_distributed_table('orders_apart', 'customer', colocate_with => 'none', shard_count => 4);
SELECT credit.guard('orders_apart', 'customer', 'amount');
SELECT count(*) AS guarded_tables FROM credit.guarded_table;

-- The table's owner, with no credit level, orders through the guard and cannot get around it.
CREATE ROLE regress_citus_app LOGIN;
ALTER TABLE orders OWNER TO regress_citus_app;
GRANT USAGE ON SCHEMA credit TO regress_citus_app;
GRANT CREATE ON SCHEMA public TO regress_citus_app;
SELECT bool_and(success) AS granted_on_workers
  FROM run_command_on_workers('GRANT CREATE ON SCHEMA public TO regress_citus_app');
SET ROLE regress_citus_app;
INSERT INTO orders VALUES (40, 'C-06', 10);
INSERT INTO orders VALUES (41, 'C-06', 1000);
UPDATE credit.account SET open_orders = 0 WHERE customer = 'C-06';
ALTER TABLE orders DISABLE TRIGGER credit_guard;
-- A guard trigger made by hand counts nothing: on a table of their own, colocated...
CREATE TABLE public.my_orders (id bigint, customer text NOT NULL, amount numeric NOT NULL, PRIMARY KEY (customer, id));
SELECT create_distributed_table('public.my_orders', 'customer', colocate_with => 'credit.account');
CREATE TRIGGER fake AFTER INSERT OR UPDATE OR DELETE ON public.my_orders
    FOR EACH ROW EXECUTE FUNCTION credit._guard_row('customer', 'amount', '', 'reject', '', '0');
-- ...or on a plain table named like a shard of the guarded table (the coordinator holds none).
RESET ROLE;
SELECT format('CREATE TABLE public.%I (id bigint, customer text, amount numeric, status text)',
              'orders_' || min(shardid)) AS lookalike,
       format('CREATE TRIGGER fake AFTER INSERT ON public.%I FOR EACH ROW EXECUTE FUNCTION credit._guard_row(%s)',
              'orders_' || min(shardid), (SELECT string_agg(quote_literal(a), ', ') FROM credit.guard_registration r, unnest(r.trigger_args) a)) AS fake_trigger
  FROM pg_dist_shard WHERE logicalrelid = 'orders'::regclass \gset
SELECT qualified_name, trigger_args FROM credit.guard_registration;
SET citus.enable_ddl_propagation = off;
SET ROLE regress_citus_app;
:lookalike;
:fake_trigger;
RESET ROLE;
RESET citus.enable_ddl_propagation;
SELECT customer, open_orders, exposure FROM credit.account WHERE customer = 'C-06';

-- Drift (a superuser's direct write, which a Citus worker cannot tell from pg_credit's own:
-- docs/citus.md) is found and repaired cluster-wide.
UPDATE credit.account SET open_orders = open_orders + 5, exposure = exposure + 5 WHERE customer IN ('C-01', 'C-04');
SELECT customer, stored_open_orders, actual_open_orders FROM credit.verify() ORDER BY customer;
SELECT credit.rebuild_exposure('C-01');
-- One account is recounted on its node alone: C-04 still drifts until the cluster-wide repair.
SELECT customer FROM credit.verify() ORDER BY customer;
SELECT credit.rebuild_exposure('C-01') AS again;
SELECT credit.rebuild_exposure();
SELECT count(*) AS drift FROM credit.verify();

-- Postings through the coordinator: every statement names the customer, so each runs on the
-- customer's node against the documents beside its account row, whose counters move with them.
SELECT credit.post_invoice('C-01', 'INV-1', 100, CURRENT_DATE - 40, CURRENT_DATE - 10) > 0 AS posted;
SELECT credit.post_invoice('C-01', 'INV-2', 150) > 0 AS posted;
SELECT credit.post_payment('C-01', 120, reference => 'BANK-1') > 0 AS paid;
SELECT credit.post_credit_note('C-01', 'CN-1', 10, apply_to => 'INV-2') > 0 AS credited;
SELECT credit.post_invoice('C-01', 'INV-1', 5);
SELECT credit.post_payment('NOBODY', 5);
SELECT doc_no, amount, open_amount FROM credit.invoice WHERE customer = 'C-01' ORDER BY doc_no;
SELECT kind, doc_no, amount, unapplied FROM credit.settlement WHERE customer = 'C-01' ORDER BY id;
SELECT customer, open_ar, unapplied_credit, open_orders, exposure FROM credit.account WHERE customer = 'C-01';
-- A bounced payment reopens what it paid; a cancelled invoice and a written-off one leave nothing open.
-- A call inside a query over a distributed table goes to the shard's worker with it: refused
-- clearly, nothing changed; with the id as a value it runs.
SELECT credit.reverse_settlement((SELECT id FROM credit.settlement WHERE customer = 'C-01' AND doc_no = 'BANK-1'),
                                 'bounced') > 0 AS reversed;
SELECT id AS bank_1 FROM credit.settlement WHERE customer = 'C-01' AND doc_no = 'BANK-1' \gset
SELECT credit.reverse_settlement(:bank_1, 'bounced') > 0 AS reversed;
SELECT doc_no, open_amount FROM credit.invoice WHERE customer = 'C-01' ORDER BY doc_no;
SELECT credit.post_invoice('C-03', 'INV-3', 80) > 0 AS posted;
SELECT credit.cancel_invoice('C-03', 'INV-3', 'keyed twice') > 0 AS cancelled;
-- A policy changed through the coordinator reaches every account on every node; by it, a
-- write-off blacklists the customer.
INSERT INTO credit.policy (blacklist_on_write_off, warn_ratio) VALUES (true, 0.9);
SELECT customer, policy_warn_ratio FROM credit.account WHERE customer IN ('C-01', 'C-04') ORDER BY customer;
SELECT credit.post_invoice('C-04', 'INV-4', 60) > 0 AS posted;
SELECT credit.write_off('C-04', 'INV-4', reason => 'insolvent') > 0 AS written_off;
SELECT customer, status FROM credit.account WHERE customer = 'C-04';
DELETE FROM credit.policy;
SELECT DISTINCT policy_warn_ratio FROM credit.account;
SELECT customer, doc_no, open_amount FROM credit.invoice ORDER BY customer, doc_no;
SELECT customer, open_ar, unapplied_credit, open_orders, exposure FROM credit.account ORDER BY customer;
-- What is open on the ledger counts against the limit of the next order.
SELECT credit.available_credit('C-01') AS available;
INSERT INTO orders VALUES (60, 'C-01', 1000);
SELECT count(*) AS drift FROM credit.verify();
-- Only the posting functions write the ledger.
SET ROLE regress_citus_app;
UPDATE credit.invoice SET open_amount = 0 WHERE customer = 'C-01';
RESET ROLE;

-- Accounts created and deleted through the coordinator; Citus moves no row to another customer
-- (a rename is a new account).
INSERT INTO credit.account (customer, credit_limit) VALUES ('C-90', 100);
UPDATE credit.account SET customer = 'C-91' WHERE customer = 'C-90';
DELETE FROM credit.account WHERE customer = 'C-90';
SELECT count(*) AS accounts FROM credit.account;

-- TRUNCATE, unguard, guard again, DROP: open orders leave and come back exactly.
SELECT sum(open_orders) AS open_orders FROM credit.account;
SELECT credit.unguard('orders');
SELECT sum(open_orders) AS open_orders FROM credit.account;
SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}');
SELECT sum(open_orders) AS open_orders FROM credit.account;
TRUNCATE orders;
SELECT sum(open_orders) AS open_orders FROM credit.account;
INSERT INTO orders VALUES (50, 'C-01', 100), (51, 'C-03', 100);
DROP TABLE orders;
SELECT (SELECT sum(open_orders) FROM credit.account) AS open_orders, (SELECT count(*) FROM credit.guarded_table) AS guarded;
SELECT count(*) AS drift FROM credit.verify();
