-- The dunning ladder on Citus, through the coordinator (after citus_orders and citus_holds, in
-- their distributed database): credit.run_collections() sends one call per shard group to the
-- worker that holds it, where the ladder's statements run over that group's shards; tasks,
-- promises, holds and legal referrals are written on the customers' nodes, exactly once.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- Today on the coordinator (the workers' sessions may run in another time zone).
SELECT CURRENT_DATE AS today \gset

-- The collection tables are distributed by customer, with the accounts.
SELECT logicalrelid, column_to_column_name(logicalrelid, partkey) AS by_column,
       colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'credit.account'::regclass) AS with_accounts
  FROM pg_dist_partition
 WHERE logicalrelid IN ('credit.collection_task'::regclass, 'credit.collection_contact'::regclass,
                        'credit.promise'::regclass, 'credit.invoice_dispute'::regclass)
 ORDER BY logicalrelid::text;

-- Customers in arrears on both workers: a policy whose ladder blacklists on a legal referral.
INSERT INTO credit.policy (customer_type, dunning_ladder, blacklist_on_legal) VALUES ('l-trade', 'default', true);
INSERT INTO credit.account (customer, credit_limit, customer_type) VALUES
    ('L-01', 10000, 'l-trade'), ('L-02', 10000, 'l-trade'), ('L-03', 10000, 'l-trade'),
    ('L-04', 10000, 'l-trade'), ('L-05', 10000, 'l-trade'), ('L-06', 10000, 'l-trade');
SELECT count(DISTINCT n.nodeport) AS workers_with_ladder_customers
  FROM credit.account a
  JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('credit.account', a.customer)
  JOIN pg_dist_node n USING (groupid)
 WHERE a.customer LIKE 'L-%';
-- Due in two days, 5, 20 and 70 days overdue, 20 days overdue (L-05), not due for a month (L-06).
SELECT credit.post_invoice('L-01', 'LI-01', 100, CURRENT_DATE - 28, CURRENT_DATE + 2) > 0 AS posted,
       credit.post_invoice('L-02', 'LI-02', 200, CURRENT_DATE - 35, CURRENT_DATE - 5) > 0,
       credit.post_invoice('L-03', 'LI-03', 300, CURRENT_DATE - 50, CURRENT_DATE - 20) > 0,
       credit.post_invoice('L-04', 'LI-04', 400, CURRENT_DATE - 100, CURRENT_DATE - 70) > 0,
       credit.post_invoice('L-05', 'LI-05', 500, CURRENT_DATE - 50, CURRENT_DATE - 20) > 0,
       credit.post_invoice('L-06', 'LI-06', 600, CURRENT_DATE, CURRENT_DATE + 30) > 0;

-- Ten days ago: the ladder as it stood then (a run for a past date reproduces that day's tasks).
SELECT change, customer, doc_no, level, detail FROM credit.run_collections(CURRENT_DATE - 10)
 WHERE customer LIKE 'L-%' ORDER BY customer, change, level;
-- Today: the levels reached since; lower open levels superseded; L-03 and L-05 on hold (level 4),
-- L-04 referred to legal and blacklisted by its policy.
SELECT change, customer, doc_no, level, detail FROM credit.run_collections()
 WHERE customer LIKE 'L-%' ORDER BY customer, change, level;
-- Exactly once: a second run finds nothing to do.
SELECT count(*) AS second_run FROM credit.run_collections() WHERE customer LIKE 'L-%';
SELECT customer, doc_no, level, action, status, days_past_due, created_for = :'today' AS today
  FROM credit.collection_task WHERE customer LIKE 'L-%' ORDER BY customer, level;
-- Each task was written on its customer's node, with an id from that node's range (its group id
-- in the top 16 bits): unique across the cluster.
SELECT bool_and((t.id >> 48) = p.groupid) AS ids_of_their_nodes, count(*) = count(DISTINCT t.id) AS ids_unique,
       count(DISTINCT p.groupid) AS nodes
  FROM credit.collection_task t
  JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('credit.collection_task', t.customer)
 WHERE t.customer LIKE 'L-%';
SELECT customer, status, :'today'::date - collection_hold_since AS held_days_ago,
       :'today'::date - legal_referred_on AS referred_days_ago
  FROM credit.account WHERE customer LIKE 'L-%' ORDER BY customer;
SELECT doc_no, :'today'::date - legal_referred_on AS referred_days_ago FROM credit.invoice WHERE customer = 'L-04';
-- The events are on the workers, published by the relay in the global order.
SELECT kind, count(*) AS events, string_agg(DISTINCT customer, ' ' ORDER BY customer) AS customers
  FROM credit.relay_events() WHERE customer LIKE 'L-%' GROUP BY kind ORDER BY kind;

-- An order of a customer held by collections is refused on its node.
CREATE TABLE ladder_orders (id bigint NOT NULL, customer text NOT NULL, amount numeric NOT NULL,
                            status text NOT NULL DEFAULT 'open', PRIMARY KEY (customer, id));
SELECT create_distributed_table('ladder_orders', 'customer', colocate_with => 'credit.account');
SELECT credit.guard('ladder_orders', 'customer', 'amount', 'status', '{open}');
INSERT INTO ladder_orders VALUES (1, 'L-03', 10);
INSERT INTO ladder_orders VALUES (2, 'L-01', 10);

-- The collectors' worklist reads through the coordinator: the open tasks with their invoices,
-- accounts, last contacts and promises, most urgent first.
SELECT customer, doc_no, level, action, open_amount, days_past_due, priority, account_status, interest,
       risk_warnings, undelivered
  FROM credit.collection_worklist WHERE customer LIKE 'L-%';
-- A contact with a promise, logged through the coordinator on the customer's node.
SELECT id AS l02_task FROM credit.collection_task WHERE customer = 'L-02' AND status = 'open' \gset
SELECT credit.log_contact(:l02_task, 'promised', 'will pay next week', 150, CURRENT_DATE + 7) > 0 AS logged;
SELECT customer, amount, status, made_on = :'today' AS today FROM credit.promise WHERE customer = 'L-02';
SELECT status, outcome FROM credit.collection_task WHERE id = :l02_task;
SELECT regress_citus.state_of(format('SELECT credit.log_contact(%s, %L)', :l02_task, 'reached')) AS on_a_done_task,
       regress_citus.state_of($$SELECT credit.log_contact(-1, 'reached')$$) AS on_no_task;

-- A payment settles L-03's invoice: on its node its open task is resolved and the collection hold
-- lifts, in the posting's transaction.
SELECT credit.post_payment('L-03', 300) > 0 AS paid;
SELECT customer, level, status FROM credit.collection_task WHERE customer = 'L-03' ORDER BY level;
SELECT customer, status, collection_hold_since FROM credit.account WHERE customer = 'L-03';
INSERT INTO ladder_orders VALUES (3, 'L-03', 10);
SELECT customer, open_orders FROM credit.account WHERE customer IN ('L-01', 'L-03') ORDER BY customer;
-- What the collector achieved: contacts, the promise, the payments after the contact (L-02 pays
-- part of its invoice).
SELECT credit.post_payment('L-02', 120) > 0 AS paid;
SELECT tasks, contacts, promises_made, collected_after_contact FROM credit.collection_effectiveness;
-- A promise made eight days ago for five days ago, not kept: the next run breaks it and escalates
-- on the customer's node.
SELECT id AS l04_task FROM credit.collection_task WHERE customer = 'L-04' AND status = 'open' \gset
SELECT credit.log_contact(:l04_task, 'promised', 'by the end of the week', 100, CURRENT_DATE - 5, CURRENT_DATE - 8) > 0 AS logged;
SET ROLE regress_citus_holds_admin;
SELECT change, customer, doc_no, level, detail FROM credit.run_collections()
 WHERE customer LIKE 'L-%' ORDER BY customer, change;
RESET ROLE;
SELECT customer, status, :'today'::date - decided_on AS decided_days_ago FROM credit.promise WHERE customer = 'L-04';
-- The events written on L-04's node name who ran collections on the coordinator, not the
-- connection's user.
SELECT result AS acted FROM run_command_on_workers($$
    SELECT string_agg(e.kind || ' by ' || e.acting_as, ', ' ORDER BY e.kind) FROM credit.event e
     WHERE e.customer = 'L-04' AND e.kind IN ('promise_broken', 'task_created') AND e.after ->> 'promise_id' IS NOT NULL$$)
 WHERE result <> '';
SELECT customer, action, level, status, promise_id = (SELECT id FROM credit.promise WHERE customer = 'L-04') AS escalates_promise
  FROM credit.collection_task WHERE customer = 'L-04' AND status = 'open';
-- A later run lifts nothing twice and creates nothing new.
SELECT count(*) AS third_run FROM credit.run_collections() WHERE customer LIKE 'L-%';

-- L-02's shard group moves to the other worker, its tasks and promise with it: a run after the
-- move, by an admin who is not a superuser, creates nothing twice.
SELECT n.nodeport AS l02_port FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
 WHERE p.shardid = get_shard_id_for_distribution_column('credit.collection_task', 'L-02') \gset
SELECT citus_move_shard_placement(get_shard_id_for_distribution_column('credit.account', 'L-02'),
                                  '127.0.0.1', :l02_port, '127.0.0.1', CASE WHEN :l02_port = 5501 THEN 5502 ELSE 5501 END,
                                  shard_transfer_mode => 'block_writes') IS NOT NULL AS moved;
SELECT n.nodeport <> :l02_port AS moved_away FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
 WHERE p.shardid = get_shard_id_for_distribution_column('credit.promise', 'L-02');
SET ROLE regress_citus_holds_admin;
SELECT count(*) AS after_the_move FROM credit.run_collections() WHERE customer LIKE 'L-%';
RESET ROLE;
SELECT customer, level, status FROM credit.collection_task WHERE customer = 'L-02' ORDER BY level;
SELECT customer, amount, status FROM credit.promise WHERE customer = 'L-02';
SELECT count(*) AS l02_open_tasks FROM credit.collection_task WHERE customer = 'L-02' AND status = 'open';

-- Disputes, through the coordinator on the customer's node: the invoice's open tasks are
-- cancelled, its collection hold lifts, the ladder leaves it alone until it is resolved.
SELECT credit.dispute('L-05', 'LI-05', 'goods damaged') > 0 AS disputed;
SELECT customer, level, status, outcome FROM credit.collection_task WHERE customer = 'L-05' ORDER BY level;
SELECT customer, status, collection_hold_since, oldest_open_due FROM credit.account WHERE customer = 'L-05';
SELECT customer, doc_no, reason, resolved_on FROM credit.invoice_dispute WHERE customer = 'L-05';
SELECT disputed FROM credit.invoice WHERE customer = 'L-05';
SELECT regress_citus.state_of($$SELECT credit.dispute('L-05', 'LI-05', 'again')$$) AS twice,
       regress_citus.state_of($$SELECT credit.dispute('L-05', 'LI-99', 'no such invoice')$$) AS unknown_invoice,
       regress_citus.state_of($$SELECT credit.resolve_dispute('L-06', 'LI-06', 'never disputed')$$) AS not_disputed;
SELECT count(*) AS run_leaves_it FROM credit.run_collections() WHERE customer = 'L-05';
SELECT credit.resolve_dispute('L-05', 'LI-05', 'replaced, price stands') > 0 AS resolved;
SELECT customer, doc_no, resolution, resolved_on = :'today' AS today FROM credit.invoice_dispute WHERE customer = 'L-05';
SELECT disputed FROM credit.invoice WHERE customer = 'L-05';
SELECT customer, oldest_open_due IS NOT NULL AS overdue_again FROM credit.account WHERE customer = 'L-05';
-- A contact that ends in a dispute opens it on the customer's node.
SELECT id AS l01_task FROM credit.collection_task WHERE customer = 'L-01' AND status = 'open' \gset
SELECT credit.log_contact(:l01_task, 'disputed', 'quantity short') > 0 AS logged;
SELECT t.status, t.outcome, d.reason FROM credit.collection_task t
  JOIN credit.invoice_dispute d ON d.customer = t.customer AND d.invoice_id = t.invoice_id
 WHERE t.id = :l01_task;

-- Running collections takes the manager level; pg_credit's worker step is nobody's to call.
SET ROLE regress_citus_holds_clerk;
SELECT count(*) FROM credit.run_collections();
SELECT credit._collections_here('L-01', NULL, CURRENT_DATE, '{}', '{}', '{}', '{}', '{}', NULL);
RESET ROLE;
SELECT credit._collections_here('L-01', NULL, CURRENT_DATE, '{}', '{}', '{}', '{}', '{}', NULL);
SELECT regress_citus.state_of($$SELECT credit.run_collections(CURRENT_DATE + 1)$$) AS in_the_future;

-- Nothing drifted.
SELECT count(*) AS drift FROM credit.verify();
