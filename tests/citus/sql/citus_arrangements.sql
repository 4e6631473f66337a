-- Payment arrangements on Citus, through the coordinator (after citus_orders, citus_holds and
-- citus_ladder, in their distributed database): a plan's rows live with its customer's ledger;
-- credit.arrange and credit.cancel_arrangement name the customer in every statement, and
-- credit.run_collections decides plans on each node over its shards, before the ladder's step.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT CURRENT_DATE AS today \gset

-- The plan tables are distributed by customer, with the accounts and the ledger.
SELECT logicalrelid, column_to_column_name(logicalrelid, partkey) AS by_column,
       colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'credit.account'::regclass) AS with_accounts
  FROM pg_dist_partition
 WHERE logicalrelid IN ('credit.arrangement'::regclass, 'credit.arrangement_invoice'::regclass,
                        'credit.arrangement_instalment'::regclass)
 ORDER BY logicalrelid::text;
-- The plan agreed before credit.distribute() (citus_orders) came along with its customer.
SELECT customer, amount, status FROM credit.arrangement WHERE customer = 'C-02';
SELECT customer, instalment, amount, paid, state FROM credit.arrangement_schedule(CURRENT_DATE, 'C-02');

-- Customers in arrears on both workers.
INSERT INTO credit.account (customer, credit_limit) VALUES
    ('P-01', 10000), ('P-06', 10000), ('P-03', 10000), ('P-10', 10000), ('P-05', 10000);
SELECT count(DISTINCT n.nodeport) AS workers_with_plan_customers
  FROM credit.account a
  JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('credit.account', a.customer)
  JOIN pg_dist_node n USING (groupid)
 WHERE a.customer LIKE 'P-%';
SELECT credit.post_invoice('P-01', 'PI-1a', 300, CURRENT_DATE - 50, CURRENT_DATE - 20) > 0 AS posted,
       credit.post_invoice('P-01', 'PI-1b', 200, CURRENT_DATE - 45, CURRENT_DATE - 15) > 0,
       credit.post_invoice('P-03', 'PI-3', 100, CURRENT_DATE - 55, CURRENT_DATE - 25) > 0,
       credit.post_invoice('P-10', 'PI-10', 250, CURRENT_DATE - 40, CURRENT_DATE - 10) > 0,
       credit.post_invoice('P-05', 'PI-5', 50, CURRENT_DATE - 40, CURRENT_DATE - 10) > 0;
-- The ladder reaches them: P-01 goes on hold.
SELECT customer, count(*) AS tasks FROM credit.run_collections()
 WHERE customer LIKE 'P-%' AND change = 'task_created' GROUP BY customer ORDER BY customer;
SELECT customer, status, collection_hold_since IS NOT NULL AS held_by_collections FROM credit.account WHERE customer = 'P-01';

-- P-01 agrees to pay both invoices in two instalments: the plan replaces the invoices' open tasks
-- and the collection hold lifts, on P-01's node.
SELECT credit.arrange('P-01', ARRAY['PI-1a', 'PI-1b'],
                      jsonb_build_array(jsonb_build_object('due_date', CURRENT_DATE + 10, 'amount', 250),
                                        jsonb_build_object('due_date', CURRENT_DATE + 40, 'amount', 250)),
                      'two instalments') AS p01_plan \gset
SELECT customer, amount, status, agreed_on = :'today' AS today, agreed_by FROM credit.arrangement WHERE id = :p01_plan;
SELECT customer, doc_no, open_amount FROM credit.arrangement_invoice WHERE arrangement_id = :p01_plan ORDER BY doc_no;
SELECT customer, level, status, outcome FROM credit.collection_task WHERE customer = 'P-01' ORDER BY doc_no, level;
SELECT customer, status, collection_hold_since FROM credit.account WHERE customer = 'P-01';
SELECT kind, customer, after -> 'documents' AS documents, jsonb_array_length(after -> 'instalments') AS instalments
  FROM credit.event WHERE kind = 'arrangement_made' AND customer = 'P-01';
-- The ladder leaves the plan's invoices alone while it is kept.
SELECT count(*) AS p01_changes FROM credit.run_collections() WHERE customer = 'P-01';

-- What is refused, with nothing changed: an unknown invoice, an invoice already in an active plan,
-- instalments that do not add up, a customer without an account, a clerk.
SELECT regress_citus.state_of($$SELECT credit.arrange('P-01', ARRAY['PI-9'], '[{"due_date": "2099-01-01", "amount": 1}]')$$) AS unknown_invoice,
       regress_citus.state_of(format('SELECT credit.arrange(%L, ARRAY[%L], %L)', 'P-01', 'PI-1a',
                                     jsonb_build_array(jsonb_build_object('due_date', CURRENT_DATE + 5, 'amount', 300)))) AS already_arranged,
       regress_citus.state_of(format('SELECT credit.arrange(%L, ARRAY[%L], %L)', 'P-10', 'PI-10',
                                     jsonb_build_array(jsonb_build_object('due_date', CURRENT_DATE + 5, 'amount', 200)))) AS not_adding_up,
       regress_citus.state_of($$SELECT credit.arrange('NOBODY', ARRAY['X'], '[{"due_date": "2099-01-01", "amount": 1}]')$$) AS no_account;
SET ROLE regress_citus_holds_clerk;
SELECT credit.arrange('P-10', ARRAY['PI-10'], '[{"due_date": "2099-01-01", "amount": 250}]');
RESET ROLE;
SELECT count(*) AS plans_of_p10 FROM credit.arrangement WHERE customer = 'P-10';

-- P-06 agreed forty days ago to pay in two halves; it paid the first, not the second: today's run
-- breaks the plan the day after the missed due date, on P-06's node, and the ladder resumes from
-- the invoice's own due date.
SELECT credit.post_invoice('P-06', 'PI-6', 400, CURRENT_DATE - 80, CURRENT_DATE - 50) > 0 AS posted;
SELECT credit.arrange('P-06', ARRAY['PI-6'],
                      jsonb_build_array(jsonb_build_object('due_date', CURRENT_DATE - 30, 'amount', 200),
                                        jsonb_build_object('due_date', CURRENT_DATE - 10, 'amount', 200)),
                      NULL, CURRENT_DATE - 40) AS p06_plan \gset
SELECT credit.post_payment('P-06', 200, CURRENT_DATE - 31) > 0 AS paid_first;
-- P-03 agreed on one instalment and paid it: completed.
SELECT credit.arrange('P-03', ARRAY['PI-3'], jsonb_build_array(jsonb_build_object('due_date', CURRENT_DATE + 5, 'amount', 100)),
                      NULL, CURRENT_DATE - 20) AS p03_plan \gset
SELECT credit.post_payment('P-03', 100) > 0 AS paid_all;
SELECT change, customer,
       detail = CASE WHEN customer = 'P-06' THEN format('arrangement %s: instalment 2 due %s not paid', :p06_plan, to_char(CURRENT_DATE - 10, 'YYYY-MM-DD'))
                     ELSE format('arrangement %s paid', :p03_plan) END AS as_expected
  FROM credit.run_collections() WHERE customer IN ('P-06', 'P-03') AND change LIKE 'arrangement%' ORDER BY customer;
SELECT customer, status, :'today'::date - decided_on AS decided_days_ago, missed_instalment
  FROM credit.arrangement WHERE id IN (:p06_plan, :p03_plan) ORDER BY customer;
SELECT customer, doc_no, level, status FROM credit.collection_task WHERE customer = 'P-06' ORDER BY level;
-- Decided once: a second run decides nothing again.
SELECT count(*) AS decided_again FROM credit.run_collections() WHERE change LIKE 'arrangement%';
-- The decisions are events of the customers' nodes, relayed in the global order.
SELECT kind, customer FROM credit.relay_events() WHERE kind LIKE 'arrangement%' ORDER BY customer;
SELECT arrangement_id = :p06_plan AS p06, instalment, amount, paid, open_amount, state, arrangement_status
  FROM credit.arrangement_schedule(CURRENT_DATE, 'P-06') ORDER BY instalment;

-- P-10's plan is cancelled (agreed in error): the ladder resumes; cancelling it again, or a plan
-- that does not exist, is refused.
SELECT credit.arrange('P-10', ARRAY['PI-10'], jsonb_build_array(jsonb_build_object('due_date', CURRENT_DATE + 20, 'amount', 250)))
    AS p10_plan \gset
SELECT count(*) AS p10_open_tasks FROM credit.collection_task WHERE customer = 'P-10' AND status = 'open';
SELECT credit.cancel_arrangement(:p10_plan, 'agreed with the wrong branch');
SELECT customer, status, decided_on = :'today' AS today FROM credit.arrangement WHERE id = :p10_plan;
SELECT regress_citus.state_of(format('SELECT credit.cancel_arrangement(%s, %L)', :p10_plan, 'again')) AS twice,
       regress_citus.state_of($$SELECT credit.cancel_arrangement(-1, 'none')$$) AS no_such_plan;
SELECT kind, customer, reason FROM credit.event WHERE kind = 'arrangement_cancelled';

-- P-01's shard group moves to the other worker with its plan; there its first instalment is paid
-- and a run, by an admin who is not a superuser, decides nothing and creates nothing.
SELECT n.nodeport AS p01_port FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
 WHERE p.shardid = get_shard_id_for_distribution_column('credit.arrangement', 'P-01') \gset
SELECT citus_move_shard_placement(get_shard_id_for_distribution_column('credit.account', 'P-01'),
                                  '127.0.0.1', :p01_port, '127.0.0.1', CASE WHEN :p01_port = 5501 THEN 5502 ELSE 5501 END,
                                  shard_transfer_mode => 'block_writes') IS NOT NULL AS moved;
SELECT n.nodeport <> :p01_port AS moved_away FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
 WHERE p.shardid = get_shard_id_for_distribution_column('credit.arrangement_instalment', 'P-01');
SELECT credit.post_payment('P-01', 250) > 0 AS paid_first;
SET ROLE regress_citus_holds_admin;
SELECT count(*) AS p01_changes FROM credit.run_collections() WHERE customer = 'P-01';
RESET ROLE;
SELECT instalment, amount, paid, state FROM credit.arrangement_schedule(CURRENT_DATE, 'P-01') ORDER BY instalment;
-- Every plan of the cluster, through the coordinator.
SELECT customer, count(*) AS instalments, sum(amount) AS planned, sum(paid) AS paid
  FROM credit.arrangement_schedule() GROUP BY customer ORDER BY customer;

-- Nothing drifted.
SELECT count(*) AS drift FROM credit.verify();
