-- Hold mode on Citus, through the coordinator (after citus_orders, in its distributed database):
-- an order that does not fit is held on the node of its shard, in the order_hold shard beside its
-- account; a credit controller releases, forces or cancels it from the coordinator; the
-- application's own changes close its queue entry there; a shard move carries the queue along.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- The hold queued before distribution came along, named by the coordinator's table.
SELECT id, table_name, row_key, customer, amount, status FROM credit.order_hold ORDER BY id;
SELECT hold_id, table_name, customer, amount, reasons_when_held, credit_limit, exposure, reasons_now, fits_now
  FROM credit.hold_queue;
SELECT qualified_name, table_oid = 'held_orders'::regclass::oid AS coordinator_oid FROM credit.guard_registration
 ORDER BY 1;

-- New holds are written on the node of their shard: on both workers, with ids from that node's
-- range (its group id in the top 16 bits), named by the coordinator's table.
INSERT INTO credit.account (customer, credit_limit) VALUES
    ('H-02', 1000), ('H-03', 500), ('H-04', 300), ('H-05', 2000), ('H-06', 1000), ('H-07', 600);
INSERT INTO held_orders VALUES (10, 'H-02', 900), (11, 'H-02', 200), (12, 'H-03', 600), (13, 'H-04', 400),
                               (14, 'H-05', 2500), (15, 'H-06', 1100), (16, 'H-07', 700);
SELECT customer, id, amount, status FROM held_orders ORDER BY customer, id;
WITH h AS MATERIALIZED (SELECT * FROM credit.order_hold WHERE status = 'held' AND id >> 48 > 0)
SELECT h.customer, h.table_name, h.amount, h.reasons, h.held_by,
       (h.id >> 48) = (SELECT p.groupid FROM pg_dist_placement p
                        WHERE p.shardid = get_shard_id_for_distribution_column('credit.order_hold', h.customer)) AS id_of_its_node
  FROM h ORDER BY h.customer;
SELECT count(DISTINCT n.nodeport) AS workers_with_holds
  FROM credit.order_hold h
  JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('credit.order_hold', h.customer)
  JOIN pg_dist_node n USING (groupid);
SELECT count(*) = count(DISTINCT id) AS ids_unique FROM credit.order_hold;
SELECT customer, open_orders, exposure FROM credit.account WHERE customer LIKE 'H-%' ORDER BY customer;
-- The queue reads across the nodes: credit.check runs for each hold on its node.
SELECT customer, amount, credit_limit, exposure, reasons_now, fits_now FROM credit.hold_queue ORDER BY customer;

-- A release that fits: room made on H-02, its hold goes back to open and is reserved on its node.
UPDATE held_orders SET status = 'cancelled' WHERE customer = 'H-02' AND id = 10;
SELECT hold_id AS h02 FROM credit.hold_queue WHERE customer = 'H-02' \gset
SELECT credit.release_hold(:h02, 'room made');
SELECT credit.release_hold(:h02);
SELECT credit.release_hold(-1);
SELECT customer, id, status FROM held_orders WHERE customer = 'H-02' ORDER BY id;
SELECT status, decided_by, comment, forced FROM credit.order_hold WHERE id = :h02;

-- A clerk outside the releasing role cannot release what does not fit; the admin forces it. The
-- release runs on H-03's node in one backend (credit._release_here), where the guard on the
-- order's shard sees the override.
CREATE ROLE regress_citus_holds_clerk NOLOGIN;
CREATE ROLE credit_admin NOLOGIN;
CREATE ROLE regress_citus_holds_admin NOLOGIN IN ROLE credit_admin;
SELECT level, role FROM credit.grant_privileges(NULL, 'regress_citus_holds_clerk', NULL, 'credit_admin')
 WHERE role IS NOT NULL ORDER BY 1;
SELECT hold_id AS h03 FROM credit.hold_queue WHERE customer = 'H-03' \gset
SET ROLE regress_citus_holds_clerk;
SELECT credit.release_hold(:h03);
RESET ROLE;
SELECT customer, open_orders FROM credit.account WHERE customer = 'H-03';
SET ROLE regress_citus_holds_admin;
SELECT credit.release_hold(:h03, 'customer called');
RESET ROLE;
SELECT status, decided_by, comment, forced FROM credit.order_hold WHERE id = :h03;
SELECT customer, open_orders, exposure, credit_limit FROM credit.account WHERE customer = 'H-03';
SELECT status FROM held_orders WHERE customer = 'H-03';
-- The release's events, written on H-03's node, name the admin who released, not the
-- coordinator's connection user.
SELECT result AS acted FROM run_command_on_workers($$
    SELECT string_agg(DISTINCT e.kind || ' by ' || e.acting_as, ', ') FROM credit.event e
     WHERE e.customer = 'H-03' AND e.kind LIKE 'hold\_%'$$)
 WHERE result <> '';
-- An override is for that release only: a later increase of the order is checked as any.
UPDATE held_orders SET amount = 601 WHERE customer = 'H-03';
SELECT customer, open_orders FROM credit.account WHERE customer = 'H-03';

-- Changed since it was held: the release finds the row held again on its node and says so;
-- nothing changes.
UPDATE held_orders SET amount = 2600 WHERE customer = 'H-05';
UPDATE credit.account SET credit_limit = 2550 WHERE customer = 'H-05';
SELECT amount, fits_now FROM credit.hold_queue WHERE customer = 'H-05';
SELECT hold_id AS h05 FROM credit.hold_queue WHERE customer = 'H-05' \gset
SELECT credit.release_hold(:h05);
SELECT status FROM held_orders WHERE customer = 'H-05';
SELECT status FROM credit.order_hold WHERE id = :h05;
SELECT customer, open_orders FROM credit.account WHERE customer = 'H-05';
-- The application brings it back within the limit and re-opens it: released on its node.
UPDATE held_orders SET amount = 2500 WHERE customer = 'H-05';
UPDATE held_orders SET status = 'open' WHERE customer = 'H-05';
SELECT status, comment FROM credit.order_hold WHERE id = :h05;
SELECT customer, open_orders FROM credit.account WHERE customer = 'H-05';

-- Deleted while held: withdrawn. Cancelled by a controller: it stays in its hold status.
DELETE FROM held_orders WHERE customer = 'H-04';
SELECT status, comment FROM credit.order_hold WHERE customer = 'H-04';
SELECT hold_id AS h07 FROM credit.hold_queue WHERE customer = 'H-07' \gset
SELECT credit.cancel_hold(:h07, 'customer withdrew');
SELECT credit.cancel_hold(:h07, 'again');
SELECT status, comment FROM credit.order_hold WHERE id = :h07;
SELECT status FROM held_orders WHERE customer = 'H-07';

-- Released by itself when money comes in: a prepayment on H-06's node makes room, and its held
-- order, which fits now, opens.
SELECT customer, amount, fits_now FROM credit.hold_queue WHERE customer = 'H-06';
SELECT credit.post_payment('H-06', 200) > 0 AS paid;
SELECT count(*) AS held_of_h06 FROM credit.hold_queue WHERE customer = 'H-06';
SELECT status FROM held_orders WHERE customer = 'H-06';
SELECT status, comment FROM credit.order_hold WHERE customer = 'H-06';
SELECT customer, unapplied_credit, open_orders, exposure FROM credit.account WHERE customer = 'H-06';

-- The table's owner (no credit level) can neither release nor mark a hold.
ALTER TABLE held_orders OWNER TO regress_citus_app;
INSERT INTO held_orders VALUES (20, 'H-01', 150);
SELECT hold_id AS h01 FROM credit.hold_queue WHERE customer = 'H-01' ORDER BY hold_id DESC LIMIT 1 \gset
SET ROLE regress_citus_app;
SELECT credit.release_hold(:h01);
SELECT credit._release_here(:h01, 'H-01', 'public.held_orders', 'status', '{customer,id}', true, NULL, NULL, 'x', false);
UPDATE credit.order_hold SET forced = true WHERE customer = 'H-01';
UPDATE held_orders SET status = 'open' WHERE customer = 'H-01' AND id = 20;
SELECT status FROM held_orders WHERE customer = 'H-01' AND id = 20;
RESET ROLE;
-- Only the coordinator sends the worker's step, over a Citus connection; called directly, even
-- by a superuser, it refuses.
SELECT credit._release_here(:h01, 'H-01', 'public.held_orders', 'status', '{customer,id}', true, NULL, NULL, 'x', false);

-- A shard move carries the queue with the accounts and the orders: the hold of H-01 is released
-- on its new node.
SELECT n.nodeport AS h01_port FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
 WHERE p.shardid = get_shard_id_for_distribution_column('credit.order_hold', 'H-01') \gset
SELECT citus_move_shard_placement(get_shard_id_for_distribution_column('credit.account', 'H-01'),
                                  '127.0.0.1', :h01_port, '127.0.0.1', CASE WHEN :h01_port = 5501 THEN 5502 ELSE 5501 END,
                                  shard_transfer_mode => 'block_writes') IS NOT NULL AS moved;
SELECT n.nodeport <> :h01_port AS moved_away FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
 WHERE p.shardid = get_shard_id_for_distribution_column('credit.order_hold', 'H-01');
SELECT customer, amount, fits_now FROM credit.hold_queue WHERE customer = 'H-01' ORDER BY hold_id;
UPDATE credit.account SET credit_limit = 300 WHERE customer = 'H-01';
SELECT credit.release_fitting_holds('H-01');
SELECT customer, id, status FROM held_orders WHERE customer = 'H-01' ORDER BY id;
INSERT INTO held_orders VALUES (21, 'H-01', 500);
SELECT count(*) AS held_on_new_node FROM credit.order_hold WHERE customer = 'H-01' AND status = 'held';

-- Everything adds up, on every node; the holds' events are on their nodes, relayed.
SELECT customer, open_orders, exposure FROM credit.account WHERE customer LIKE 'H-%' ORDER BY customer;
SELECT count(*) AS drift FROM credit.verify();
SELECT kind, count(*) AS events FROM credit.relay_events() WHERE kind LIKE '%hold%' OR kind = 'order_held'
 GROUP BY 1 ORDER BY 1;
SELECT kind, count(*) AS events FROM credit.event WHERE kind LIKE 'hold%' GROUP BY 1 ORDER BY 1;
