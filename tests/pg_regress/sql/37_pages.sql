-- The pages: credit.file_html and credit.portfolio_html draw what the SQL says — every chart has
-- the marks its data calls for, every table the rows, and the dunning ladder's preview on the
-- morning page is what the ladder then does. (The browser tests render them; this holds the
-- figures.) Results are counts and comparisons, so the output does not move with the calendar.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
-- The pages show the whole portfolio, so this test starts, inside its transaction, from an empty
-- one: the user-data tables (those dumped whole) are emptied with triggers off, and the ROLLBACK
-- at the end gives the other tests' rows back.
SET LOCAL session_replication_role = replica;
DO $$
BEGIN
    EXECUTE (SELECT 'TRUNCATE ' || string_agg(c::regclass::text, ', ')
               FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, cond)
              WHERE e.extname = 'pg_credit' AND cond = '' AND (SELECT relkind FROM pg_class WHERE oid = c) = 'r');
END
$$;
RESET session_replication_role;
-- How often `needle` occurs in the chart titled `chart` (its <svg> up to the next one).
CREATE FUNCTION pg_temp.marks(html text, chart text, needle text) RETURNS int LANGUAGE sql AS $$
    SELECT coalesce(sum((length(p) - length(replace(p, needle, ''))) / length(needle)), 0)::int
      FROM unnest(string_to_array(html, '<svg ')) p
     WHERE substring(p FROM '<title>([^<]*)</title>') = chart
$$;
-- The rows of the table of class `class`.
CREATE FUNCTION pg_temp.table_rows(html text, class text) RETURNS int LANGUAGE sql AS $$
    SELECT coalesce((SELECT count(*) FROM regexp_matches(substring(html FROM '<table class="' || class || '">.*?</table>'),
                                                        '<tr><td', 'g')), 0)::int
$$;
INSERT INTO credit.account (customer, credit_limit, customer_type, region) VALUES
    ('P-A', 10000, 'wholesale', 'east'), ('P-B', 5000, 'retail', 'west'), ('P-C', 1000, 'wholesale', 'east'),
    ('P-D', 8000, 'retail', 'east');
-- P-A: an invoice a month for a year, paid late; the last two open, one overdue.
SELECT count(credit.post_invoice('P-A', 'PA-' || k, 1000 + 10 * k, current_date - 380 + 30 * k, current_date - 350 + 30 * k))
  FROM generate_series(1, 12) k;
SELECT count(credit.post_payment('P-A', 1000 + 10 * k, current_date - 340 + 30 * k, 'PA-' || k)) FROM generate_series(1, 10) k;
-- P-B: over its limit and overdue; P-C: near its limit; P-D: quiet.
SELECT credit.post_invoice('P-B', 'PB-1', 6000, current_date - 50, current_date - 20) > 0 AS pb,
       credit.post_invoice('P-C', 'PC-1', 850, current_date - 5, current_date + 25) > 0 AS pc,
       credit.post_invoice('P-D', 'PD-1', 100, current_date - 100, current_date - 70) > 0 AS pd,
       credit.post_payment('P-D', 100, current_date - 60, 'PD-1') > 0 AS pd_paid;
SELECT credit.backfill_history(current_date - 366, current_date - 1) > 0 AS backfilled;

-- Before today's run: the morning page has no figures for today yet, and its ladder section says
-- what the ladder will do.
SELECT credit.portfolio_html(current_date, 'en') AS before \gset
SELECT :'before' LIKE '%No credit history for this day%' AS says_no_history_yet,
       (SELECT sum(m[1]::int) FROM regexp_matches(:'before', '<td>to do</td><td class="num">(\d+)</td>', 'g') m) AS invoices_to_do;
SELECT sum(m[1]::int) AS to_do FROM regexp_matches(:'before', '<td>to do</td><td class="num">(\d+)</td>', 'g') m \gset
-- Today: a temporary limit for P-A, P-C's limit raised, then the daily job.
UPDATE credit.account SET temporary_limit = 15000, temporary_limit_until = current_date + 10 WHERE customer = 'P-A';
UPDATE credit.account SET credit_limit = 1050 WHERE customer = 'P-C';
SELECT count(*) > 0 AS ran FROM credit.run_daily();
-- The preview was what the ladder did: the tasks created for today, one per invoice and level.
SELECT count(*) = :to_do AS preview_was_the_run, count(*) > 0 AS tasks_created
  FROM credit.collection_task WHERE created_for = current_date AND level IS NOT NULL AND status <> 'superseded';
SELECT credit.portfolio_html(current_date, 'en') AS after \gset
SELECT (SELECT sum(m[1]::int) FROM regexp_matches(:'after', '<td>created</td><td class="num">(\d+)</td>', 'g') m) = :to_do
           AS created_rows_match,
       :'after' NOT LIKE '%<td>to do</td>%' AS nothing_left_to_do;

-- The portfolio figures are portfolio_daily's, today and yesterday.
SELECT bool_and(position('<td class="num">' || to_char(p.overdue, 'FM999,999,999,990.00') || '</td>' IN :'after') > 0) AS overdue_shown,
       bool_and(position('<td class="num">' || to_char(p.credit_limit, 'FM999,999,999,990.00') || '</td>' IN :'after') > 0) AS limits_shown,
       bool_and(position('<td class="num">' || p.customers || '</td>' IN :'after') > 0) AS customers_shown
  FROM (SELECT day, sum(overdue) AS overdue, sum(credit_limit) AS credit_limit, sum(customers) AS customers
          FROM credit.portfolio_daily WHERE day IN (current_date, current_date - 1) GROUP BY day) p;
-- What changed since yesterday: P-C's limit, P-A's temporary limit (the limit in force), in the page.
SELECT :'after' ~ '<td>P-C</td><td>[^<]*limit 1,000.00 → 1,050.00' AS pc_limit_change,
       :'after' ~ '<td>P-A</td><td>[^<]*limit 10,000.00 → 15,000.00' AS pa_temporary_limit;
-- Nearest or over the limit: a bar per customer with a limit (up to ten), a table row per
-- customer at 80 % or more, as the history in force today says.
SELECT pg_temp.marks(:'after', 'Customers nearest or over their limits', 'class="bar"')
           = (SELECT least(10, count(*)) FROM credit.customer_history_daily WHERE day = current_date AND utilization IS NOT NULL) AS bars_match,
       pg_temp.table_rows(:'after', 'near-limit')
           = (SELECT count(*) FROM credit.customer_history_daily WHERE day = current_date AND utilization >= 0.8) AS near_rows_match,
       pg_temp.table_rows(:'after', 'near-limit') AS near_rows;
-- What is overdue: a row per overdue customer; the trend a point per month-end with history and today.
SELECT pg_temp.table_rows(:'after', 'overdue')
           = (SELECT count(*) FROM credit.customer_history_daily WHERE day = current_date AND overdue > 0) AS overdue_rows_match,
       pg_temp.marks(:'after', 'Overdue amount at month-ends', 'class="point"')
           = (SELECT count(DISTINCT day) FROM credit.portfolio_daily
               WHERE day = current_date OR (day = (date_trunc('month', day) + interval '1 month - 1 day')::date AND day > current_date - 366))
           AS trend_points_match;
-- Its DSO figures are credit.dso's over the same periods (the month, at most 30 days, to the day).
SELECT count(*) > 0 AS dso_shown,
       bool_and(m[2] = round(credit.dso(greatest(date_trunc('month', m[1]::date)::date, m[1]::date - 29), m[1]::date), 1)::text)
           AS dso_is_credit_dso
  FROM regexp_matches(:'after', '<tr><td>(\d{4}-\d{2}-\d{2})</td><td class="num">[^<]*</td><td class="num">([^<]+)</td></tr>', 'g') m;
-- Aging by region and by customer type: a bar segment per group and non-empty bucket.
SELECT pg_temp.marks(:'after', 'Aging by ' || d, 'class="bar"') = (
           SELECT count(*) FILTER (WHERE b > 0) FROM (
               SELECT CASE d WHEN 'region' THEN region ELSE customer_type END AS g,
                      unnest(ARRAY[sum(not_due), sum(days_1_30), sum(days_31_60), sum(days_61_90), sum(over_90 + later_buckets)]) AS b
                 FROM credit.portfolio_daily WHERE day = current_date GROUP BY 1) x) AS segments_match
  FROM unnest(ARRAY['region', 'customer type']) d;
-- The worklist by level: its table is credit.collection_worklist by level.
SELECT pg_temp.table_rows(:'after', 'worklist') = (SELECT count(DISTINCT level) FROM credit.collection_worklist WHERE level IS NOT NULL)
           AS worklist_levels_match;

-- The credit file page: the charts have the marks the history calls for.
SELECT credit.file_html('P-A', 'en') AS fa \gset
WITH m AS (SELECT DISTINCT x.day FROM (SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date AS day
                                         FROM generate_series(current_date - 365, current_date - 1, interval '1 month') d
                                       UNION ALL SELECT current_date) x WHERE x.day <= current_date),
h AS (SELECT h.* FROM credit.customer_history_daily h WHERE h.customer = 'P-A' AND h.day IN (SELECT day FROM m))
SELECT pg_temp.marks(:'fa', 'Credit used against the limit, month-ends of the last 12 months and today', 'class="point"')
           = 2 * (SELECT count(*) FROM h) AS exposure_points_match,
       pg_temp.marks(:'fa', 'Aging mix at month-ends and today', 'class="bar"')
           = (SELECT sum((not_due > 0)::int + (days_1_30 > 0)::int + (days_31_60 > 0)::int + (days_61_90 > 0)::int
                         + (over_90 + later_buckets > 0)::int) FROM h) AS aging_segments_match,
       pg_temp.marks(:'fa', 'Credit used against the limit, month-ends of the last 12 months and today', 'class="mark mark-temporary"')
           AS temporary_limit_marks,
       pg_temp.marks(:'fa', 'Days late by month of payment', 'class="point"')
           = (SELECT count(DISTINCT date_trunc('month', paid_on)) FROM credit.days_late_experience
               WHERE customer = 'P-A' AND paid_on > current_date - 365) AS days_late_points_match,
       pg_temp.marks(:'fa', 'Score and grade over time', 'class="point"') >= 1 AS score_drawn;
-- P-B went on hold today (the ladder's hold level), and an order of it is held: both marked on
-- its chart, with the count of orders held.
SELECT status FROM credit.account WHERE customer = 'P-B';
CREATE TABLE pages_order (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
SELECT credit.guard('pages_order', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold') IS NULL AS guarded;
INSERT INTO pages_order VALUES (1, 'P-B', 10);
SELECT credit.file_html('P-B', 'en') AS fb \gset
SELECT pg_temp.marks(:'fb', 'Credit used against the limit, month-ends of the last 12 months and today', 'class="mark mark-account-hold"')
           AS account_hold_marks,
       pg_temp.marks(:'fb', 'Credit used against the limit, month-ends of the last 12 months and today', 'class="mark mark-orders-held"')
           AS orders_held_marks,
       :'fb' LIKE '%>orders held 1</text>%' AS count_shown;
-- Text is escaped, Chinese is the default, and the page is the same for the same data.
INSERT INTO credit.account (customer, credit_limit) VALUES ('<b>"&', 100);
SELECT position('<b>"&' IN credit.file_html('<b>"&')) = 0 AS escaped,
       credit.file_html('P-A') LIKE '%<html lang="zh">%客户信用档案%' AS chinese_default,
       credit.portfolio_html() = credit.portfolio_html(current_date, 'zh') AS deterministic;
-- Bad input: a clear error, nothing written.
SELECT regress.sqlstate_of($$SELECT credit.file_html(NULL)$$) AS null_customer,
       regress.sqlstate_of($$SELECT credit.file_html('NOBODY')$$) AS unknown,
       regress.sqlstate_of($$SELECT credit.file_html('P-A', 'fr')$$) AS bad_lang,
       regress.sqlstate_of($$SELECT credit.portfolio_html(current_date + 1)$$) AS future,
       regress.sqlstate_of($$SELECT credit.portfolio_html(NULL)$$) AS null_day,
       regress.sqlstate_of($$SELECT credit.portfolio_html(current_date, 'de')$$) AS bad_lang2;
ROLLBACK;
