-- The daily job on Citus, through the coordinator, in a distributed database of its own
-- (tests/citus/run.sh): temporary limits, collections, re-grading, the credit history, early
-- warnings, statements of account and confirmation reminders run over every node. Account changes
-- made on the workers are recorded there with their reason and the person behind them. Missed
-- days are backfilled from the ledger and every node's events.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT CURRENT_DATE AS today \gset
CREATE SCHEMA regress_citus;
CREATE FUNCTION regress_citus.state_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
-- What every worker's credit.event holds (each node records its own accounts' changes).
CREATE FUNCTION regress_citus.worker_events(q text) RETURNS SETOF jsonb LANGUAGE sql AS $$
    SELECT e FROM run_command_on_workers(format('SELECT coalesce(json_agg(x), ''[]'') FROM (%s) x', q)) r,
                  jsonb_array_elements(r.result::jsonb) e
$$;

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_daily_manager') THEN
        CREATE ROLE regress_daily_manager LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_daily_managers') THEN
        CREATE ROLE regress_daily_managers;
    END IF;
END $$;
SELECT count(*) > 0 AS granted
  FROM credit.grant_privileges(reader => NULL, clerk => NULL, manager => 'regress_daily_managers', admin => NULL);
GRANT regress_daily_managers TO regress_daily_manager;
SELECT count(*) AS laid_out FROM credit.distribute();

-- Twelve customers on both workers: good payers, late payers, one with a temporary limit that
-- ended yesterday, one who promised and did not pay.
INSERT INTO credit.account (customer, credit_limit, customer_type, region)
SELECT 'D-' || lpad(g::text, 2, '0'), 5000, CASE WHEN g % 2 = 0 THEN 'retail' ELSE 'wholesale' END,
       CASE WHEN g <= 6 THEN 'north' ELSE 'south' END
  FROM generate_series(1, 12) g;
SELECT count(DISTINCT n.nodeport) AS workers
  FROM credit.account a
  JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('credit.account', a.customer)
  JOIN pg_dist_node n USING (groupid);
-- A year of monthly invoices; D-01..D-06 pay each on time, D-07..D-12 pay 40 days late; the last
-- two months stay open for all.
SELECT count(*) AS invoices FROM (
    SELECT credit.post_invoice(c, c || '-' || m, 1000 + 10 * g, :'today'::date - 30 * m - 30, :'today'::date - 30 * m)
      FROM generate_series(1, 12) g, generate_series(0, 11) m, LATERAL (SELECT 'D-' || lpad(g::text, 2, '0') AS c) x) i;
SELECT count(*) AS payments FROM (
    SELECT credit.post_payment(c, 1000 + 10 * g, CASE WHEN g <= 6 THEN :'today'::date - 30 * m ELSE :'today'::date - 30 * m + 40 END)
      FROM generate_series(1, 12) g, generate_series(2, 11) m, LATERAL (SELECT 'D-' || lpad(g::text, 2, '0') AS c) x
     WHERE g <= 6 OR 30 * m - 40 >= 0) p;
-- D-03's temporary limit ended yesterday.
UPDATE credit.account SET temporary_limit = 9000, temporary_limit_until = :'today'::date - 1 WHERE customer = 'D-03';

-- Ten days ago: collections created the tasks of that day; D-09 promised 500 for eight days ago.
SELECT count(*) > 0 AS tasks_then FROM credit.run_collections(:'today'::date - 10) WHERE change = 'task_created';
SELECT t.id AS d09_task FROM credit.collection_task t
 WHERE t.customer = 'D-09' AND t.status = 'open' ORDER BY t.level DESC, t.id LIMIT 1 \gset
SELECT credit.log_contact(:d09_task, 'promised', 'will pay', 500, :'today'::date - 8) > 0 AS promised;

-- The daily job of today, as a manager. Its statements step issues those of periods that ended
-- yesterday (how many depends on the day the test runs: checked below for a fixed period).
SET client_min_messages = warning;
SET ROLE regress_daily_manager;
SELECT step, CASE WHEN step <> 'statements' THEN changes::text WHEN changes >= 0 THEN 'counted' END AS changes
  FROM credit.run_daily();
RESET ROLE;

-- The temporary limit is gone; D-09's promise is broken.
SELECT customer, temporary_limit, temporary_limit_until FROM credit.account WHERE customer = 'D-03';
SELECT customer, status, decided_on = :'today' AS today FROM credit.promise WHERE customer = 'D-09';
-- Grades: what credit.score gives each customer (the regrade scores on the customer's node).
WITH a AS MATERIALIZED (SELECT customer, grade FROM credit.account)
SELECT a.customer, a.grade, s.grade AS scored, s.score IS NOT NULL AS has_score
  FROM a, LATERAL credit.score(a.customer) s ORDER BY a.customer;
-- (credit.score in a query over the accounts would be sent to the shards: refused clearly.)
SELECT regress_citus.state_of($$SELECT credit.score(customer) FROM credit.account$$) AS score_per_row;
-- Limits the regrade changed or asked for.
SELECT customer, current_limit, requested_limit, source, status FROM credit.limit_request ORDER BY customer;
-- The day's history: one row per customer, its figures the accounts' counters.
SELECT count(*) AS history_today,
       count(*) FILTER (WHERE h.open_ar <> a.open_ar OR h.unapplied_credit <> a.unapplied_credit
                           OR h.exposure <> a.exposure OR h.credit_limit <> a.credit_limit
                           OR h.grade IS DISTINCT FROM a.grade OR h.status <> a.status) AS differing,
       count(*) FILTER (WHERE h.score IS NOT NULL) AS with_score
  FROM credit.history h JOIN credit.account a USING (customer)
 WHERE h.valid_from = :'today' AND h.source = 'recorded';
SELECT region, customer_type, customers, open_ar FROM credit.portfolio_history WHERE day = :'today' ORDER BY 1, 2;
-- Early warnings: D-09's broken promise.
SELECT customer, cause, raised_on = :'today' AS today, cleared_on FROM credit.risk_warning ORDER BY customer, cause;

-- The account changes of the run, recorded on the workers with the reason and the person.
SELECT e ->> 'kind' AS kind, e ->> 'actor' AS actor, e ->> 'acting_as' AS acting_as, count(*) AS events,
       bool_and(e ->> 'reason' LIKE 'regrade as of%' OR e ->> 'reason' = 'temporary limit expired') AS with_reason
  FROM regress_citus.worker_events($$SELECT kind, actor, acting_as, reason FROM credit.event
                                     WHERE kind IN ('grade_changed', 'limit_changed', 'temporary_limit_changed')$$) e
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- A blacklisting by the manager (logged in as postgres): on D-12's worker, with its reason, the
-- login and the manager's role, as on one node.
SET ROLE regress_daily_manager;
SELECT credit.blacklist('D-12', 'fraud suspected');
RESET ROLE;
SELECT e ->> 'customer' AS customer, e ->> 'reason' AS reason, e ->> 'actor' AS actor, e ->> 'acting_as' AS acting_as
  FROM regress_citus.worker_events($$SELECT customer, reason, actor, acting_as FROM credit.event WHERE kind = 'status_changed'$$) e
 ORDER BY 1, 2;
-- The reason does not outlive its change: a later account change in the same transaction has none.
BEGIN;
SELECT credit.reinstate('D-12', 'cleared');
UPDATE credit.account SET terms_days = 45 WHERE customer = 'D-12';
COMMIT;
SELECT e ->> 'kind' AS kind,
       CASE WHEN e ->> 'reason' LIKE 'regrade as of %' THEN 'regrade as of today: ...' ELSE e ->> 'reason' END AS reason
  FROM regress_citus.worker_events($$SELECT kind, reason FROM credit.event WHERE customer = 'D-12' ORDER BY id$$) e
 WHERE e ->> 'kind' NOT IN ('task_created');

-- Again the same day: nothing new (each step is idempotent).
SELECT step, changes FROM credit.run_daily() WHERE step <> 'statements';

-- A missed day: tomorrow's job rebuilds the days no job recorded. Here: the last ten days rebuilt
-- by credit.backfill_history (the same code), from the ledger and every node's account events.
-- D-05's limit raised today: the rebuilt days before show the limit it had then (the event's
-- "before", on D-05's worker).
UPDATE credit.account SET credit_limit = 7000 WHERE customer = 'D-05';
SELECT credit.backfill_history(:'today'::date - 10, :'today'::date - 1) AS backfilled;
-- Each rebuilt day's receivables are what aging says for that day.
WITH g AS MATERIALIZED (
    SELECT d.day::date AS day, x.customer, sum(x.open_amount) FILTER (WHERE x.doc_type = 'invoice') AS open_ar
      FROM generate_series(:'today'::date - 10, :'today'::date - 1, interval '1 day') d(day),
           LATERAL credit.aging(d.day::date) x
     GROUP BY 1, 2),
h AS MATERIALIZED (SELECT * FROM credit.history),
a AS MATERIALIZED (SELECT customer FROM credit.account)
SELECT count(*) AS days_customers,
       count(*) FILTER (WHERE h.open_ar <> coalesce(g.open_ar, 0)) AS differing
  FROM generate_series(:'today'::date - 10, :'today'::date - 1, interval '1 day') d(day)
  CROSS JOIN a
  JOIN h ON h.customer = a.customer AND h.valid_from <= d.day::date AND (h.valid_until IS NULL OR h.valid_until > d.day::date)
  LEFT JOIN g ON g.day = d.day::date AND g.customer = a.customer;
SELECT h.customer, h.valid_from - :'today'::date AS from_day, h.credit_limit, h.source
  FROM credit.history h WHERE h.customer = 'D-05' ORDER BY h.valid_from;

-- Statements of account for last month (monthly, the policy's default cycle), issued on the
-- coordinator from every node's ledger (a run the job made already leaves nothing to issue; the
-- statements are counted, not the run's rows): one per customer, each closing balance what aging
-- says for the period's end and its opening plus debits minus credits, a line per ledger entry
-- of the period, each announced by a statement_issued event, each rendered; a customer's
-- statement read again gives the issued rows.
SELECT date_trunc('month', :'today'::date)::date - 1 AS month_end \gset
SET ROLE regress_daily_manager;
SELECT count(*) >= 0 AS ran FROM credit.statement_run(:'month_end');
RESET ROLE;
WITH aged AS MATERIALIZED (SELECT g.customer, sum(g.open_amount) AS balance FROM credit.aging(:'month_end') g GROUP BY 1)
SELECT count(*) AS statements, count(DISTINCT s.customer) AS customers,
       count(*) FILTER (WHERE s.closing <> coalesce(aged.balance, 0)) AS closing_not_aging,
       count(*) FILTER (WHERE s.closing <> s.opening + s.debits - s.credits) AS not_adding_up,
       count(*) FILTER (WHERE (SELECT count(*) FROM credit.statement_line l WHERE l.statement_id = s.id AND l.section = 'activity')
                              <> (SELECT count(*) FROM credit._ledger_entries(s.customer, s.period_start, s.period_end))) AS activity_not_ledger,
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM credit.event e WHERE e.kind = 'statement_issued'
                                            AND (e.after ->> 'statement_id')::bigint = s.id)) AS unannounced,
       count(*) FILTER (WHERE position(s.statement_no IN credit.statement_html(s.id)) = 0) AS not_rendered
  FROM credit.statement s LEFT JOIN aged ON aged.customer = s.customer
 WHERE s.period_end = :'month_end';
SELECT s.id AS d07_statement, s.period_start AS d07_start FROM credit.statement s
 WHERE s.customer = 'D-07' AND s.period_end = :'month_end' \gset
SELECT count(*) >= 7 AS lines,   -- opening, closing, five aging buckets, and what happened
       count(*) FILTER (WHERE x.section IS NULL OR l.section IS NULL) AS differing
  FROM (SELECT r.*, row_number() OVER () AS n FROM credit.statement('D-07', :'d07_start', :'month_end') r) x
  FULL JOIN (SELECT l.*, row_number() OVER (ORDER BY array_position(ARRAY['opening', 'activity', 'closing', 'open_item', 'aging', 'interest'], l.section), l.line) AS n
               FROM credit.statement_line l WHERE l.statement_id = :d07_statement) l
    ON l.n = x.n AND l.section = x.section AND l.line = x.line AND l.kind IS NOT DISTINCT FROM x.kind
   AND l.doc_no IS NOT DISTINCT FROM x.doc_no AND l.balance IS NOT DISTINCT FROM x.balance
   AND l.entry_date IS NOT DISTINCT FROM x.entry_date AND l.debit IS NOT DISTINCT FROM x.debit
   AND l.credit IS NOT DISTINCT FROM x.credit;
-- The same period again: nothing more.
SELECT count(*) AS issued_again FROM credit.statement_run(:'month_end');

-- Refused clearly: on a worker.
SELECT bool_and(result LIKE '%runs on the Citus coordinator%' OR result LIKE '%through the coordinator%') AS refused_on_workers
  FROM run_command_on_workers('SELECT credit.run_daily()');

-- The morning page on Citus, from the coordinator: the portfolio from the day's history, the
-- collection worklist, and what the ladder does today — the tasks its run created, and, for two
-- invoices posted since (D-12's ten days, D-01's 35 days overdue, on their nodes), the tasks it
-- would create: read on each shard group's worker (credit._ladder_preview_here).
SELECT credit.post_invoice('D-12', 'LATE-1', 500, :'today'::date - 40, :'today'::date - 10) > 0 AS posted,
       credit.post_invoice('D-01', 'LATE-2', 700, :'today'::date - 60, :'today'::date - 35) > 0 AS posted_too;
-- (As the manager, whose level was granted before credit.distribute(): the workers have it too.)
SET ROLE regress_daily_manager;
SELECT credit.portfolio_html(:'today', 'en') AS page \gset
SELECT count(*) AS checked_on_the_node FROM credit.check('D-01', 1);
RESET ROLE;
SELECT position('<td>customers</td><td class="num">12</td>' IN :'page') > 0 AS portfolio,
       position('<tr><td>L1</td><td class="num">12</td><td class="num">12,780.00</td></tr>' IN :'page') > 0 AS worklist,
       position('<tr><td>L1</td><td>remind</td><td>email</td><td>created</td><td class="num">12</td>' IN :'page') > 0 AS created_today,
       position('<tr><td>L2</td><td>notice</td><td>email</td><td>to do</td><td class="num">1</td><td class="num">1</td><td class="num">500.00</td></tr>' IN :'page') > 0 AS to_do_d12,
       position('<tr><td>L5</td><td>notice</td><td>letter</td><td>to do</td><td class="num">1</td><td class="num">1</td><td class="num">700.00</td></tr>' IN :'page') > 0 AS to_do_d01;
-- Nothing was written by reading it; the worker's step is pg_credit's own.
SELECT count(*) AS tasks_of_the_new_invoices FROM credit.collection_task WHERE doc_no IN ('LATE-1', 'LATE-2');
SELECT regress_citus.state_of($$SELECT credit._ladder_preview_here('D-01', current_date, '{}', '{}', '{}', '{}')$$) AS preview_step_here;

-- Privileges stay alike on every node. A REVOKE on the coordinator reaches every worker's own
-- copies of pg_credit's objects at once: on a function Citus does not distribute (checked on a
-- worker when Citus evaluates it on a shard) as on one it does (credit.exposure, handed over
-- whole).
CREATE FUNCTION regress_citus.on_workers(q text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(result, ' ' ORDER BY nodeport) FROM run_command_on_workers(q)
$$;
SELECT regress_citus.on_workers($$SELECT has_function_privilege('regress_daily_managers', 'credit.cash_forecast(integer,date,bigint)', 'EXECUTE')
                                      AND has_function_privilege('regress_daily_managers', 'credit.exposure(text)', 'EXECUTE')$$) AS granted_on_workers;
REVOKE EXECUTE ON FUNCTION credit.cash_forecast(integer, date, bigint) FROM regress_daily_managers;
BEGIN;
REVOKE EXECUTE ON FUNCTION credit.exposure(text) FROM regress_daily_managers;
COMMIT;
SELECT has_function_privilege('regress_daily_managers', 'credit.cash_forecast(integer,date,bigint)', 'EXECUTE') AS on_coordinator,
       regress_citus.on_workers($$SELECT has_function_privilege('regress_daily_managers', 'credit.cash_forecast(integer,date,bigint)', 'EXECUTE')
                                      OR has_function_privilege('regress_daily_managers', 'credit.exposure(text)', 'EXECUTE')$$) AS on_workers;
SET ROLE regress_daily_manager;
SELECT credit.exposure('D-01');
RESET ROLE;
-- A REVOKE by a role without a level, on a table of its own: the replay runs for it, as the
-- extension's owner, and changes nothing of pg_credit's.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_daily_nobody') THEN
        CREATE ROLE regress_daily_nobody;
    END IF;
END $$;
CREATE TABLE regress_citus.nobodys (id int);
GRANT USAGE ON SCHEMA regress_citus TO regress_daily_nobody;
ALTER TABLE regress_citus.nobodys OWNER TO regress_daily_nobody;
GRANT SELECT ON regress_citus.nobodys TO regress_daily_manager;
SET ROLE regress_daily_nobody;
REVOKE SELECT ON regress_citus.nobodys FROM regress_daily_manager;
RESET ROLE;
-- What a worker grants and the coordinator does not (granted there by hand, with Citus's
-- propagation off): credit.grant_privileges() takes it away there, as it grants what is missing.
SELECT regress_citus.on_workers($$SET citus.enable_ddl_propagation TO off;
    GRANT EXECUTE ON FUNCTION credit.rebuild_exposure(text) TO regress_daily_managers;
    GRANT UPDATE ON credit.invoice TO regress_daily_managers;
    GRANT EXECUTE ON FUNCTION credit.exposure(text) TO PUBLIC$$) AS by_hand;
SELECT regress_citus.on_workers($$SELECT has_function_privilege('regress_daily_managers', 'credit.rebuild_exposure(text)', 'EXECUTE')
                                      AND has_table_privilege('regress_daily_managers', 'credit.invoice', 'UPDATE')$$) AS drifted;
SELECT count(*) > 0 AS granted
  FROM credit.grant_privileges(reader => NULL, clerk => NULL, manager => 'regress_daily_managers', admin => NULL);
SELECT regress_citus.on_workers($$SELECT has_function_privilege('regress_daily_managers', 'credit.rebuild_exposure(text)', 'EXECUTE')
                                      OR has_table_privilege('regress_daily_managers', 'credit.invoice', 'UPDATE')
                                      OR has_function_privilege('public', 'credit.exposure(text)', 'EXECUTE')$$) AS drift_left,
       regress_citus.on_workers($$SELECT has_function_privilege('regress_daily_managers', 'credit.cash_forecast(integer,date,bigint)', 'EXECUTE')
                                      AND has_function_privilege('regress_daily_managers', 'credit.exposure(text)', 'EXECUTE')$$) AS granted_again;
-- Every privilege on pg_credit's objects, node by node: the coordinator's.
CREATE VIEW regress_citus.privileges_digest AS
SELECT md5(string_agg(concat_ws(' ', kind, object, privilege, grantee), ',' ORDER BY kind, object, privilege, grantee)) AS digest
  FROM credit._privileges_here();
SELECT regress_citus.on_workers($$SELECT md5(string_agg(concat_ws(' ', kind, object, privilege, grantee), ','
                                                        ORDER BY kind, object, privilege, grantee))
                                    FROM credit._privileges_here()$$)
       = (SELECT digest || ' ' || digest FROM regress_citus.privileges_digest) AS alike;
