-- Credit history (信用档案的历史): what every customer's credit looked like on every day, kept
-- as changes (a row holds from valid_from until valid_until, exclusive; a quiet customer costs a
-- row per change, not a row per day), and the portfolio per region and customer type per day.
--
-- Two sources (the `source` column):
--   recorded   — written by the daily job for its day (credit._record_history, run by
--                credit.run_daily): every figure, open orders and exposure and the score included.
--   backfilled — rebuilt from the ledger and credit.event for days no daily job recorded
--                (credit.backfill_history, and a missed day on the next daily run): the ledger's
--                figures (open receivables, unapplied credit, overdue, aging buckets, oldest
--                overdue item), the limit in force, status and grade from their events; open
--                orders, exposure, score and dunning level cannot be rebuilt (NULL).
-- A backfill never rewrites a recorded day.

CREATE TABLE credit.history (
    customer            text NOT NULL,
    valid_from          date NOT NULL,
    valid_until         date,              -- exclusive; NULL: still in force
    credit_limit        numeric,           -- the limit in force (a temporary limit included)
    temporary_limit     boolean NOT NULL DEFAULT false,
    open_ar             numeric NOT NULL,
    unapplied_credit    numeric NOT NULL,
    open_orders         numeric,           -- NULL on backfilled days
    exposure            numeric,           -- NULL on backfilled days
    overdue             numeric NOT NULL,
    buckets             numeric[] NOT NULL, -- open invoice amounts per aging bucket, in position order
    oldest_overdue_due  date,
    utilization         numeric,           -- exposure (or, backfilled, open_ar - unapplied) / limit
    status              text,
    grade               text,
    score               numeric,           -- NULL on backfilled days
    dunning_level       int,               -- highest ladder level of an open task; NULL on backfilled days
    source              text NOT NULL CHECK (source IN ('recorded', 'backfilled')),
    PRIMARY KEY (customer, valid_from),
    CONSTRAINT history_range CHECK (valid_until IS NULL OR valid_until > valid_from)
);
CREATE INDEX history_open_idx ON credit.history (customer) WHERE valid_until IS NULL;
-- The changes of a day (the morning page's "what changed since yesterday").
CREATE INDEX history_day_idx ON credit.history (valid_from);
SELECT pg_catalog.pg_extension_config_dump('credit.history', '');

-- The portfolio per day, region and customer type: the sum of the customers' figures in force
-- that day (written with the history; a year of it charts without touching 100,000 customers).
CREATE TABLE credit.portfolio_history (
    day                 date NOT NULL,
    region              text,
    customer_type       text,
    customers           int NOT NULL,
    credit_limit        numeric NOT NULL,
    open_ar             numeric NOT NULL,
    unapplied_credit    numeric NOT NULL,
    exposure            numeric,           -- NULL when any customer's day is backfilled
    overdue             numeric NOT NULL,
    buckets             numeric[] NOT NULL,
    over_limit          int NOT NULL,      -- customers whose exposure (backfilled: open_ar - unapplied) exceeds the limit
    near_limit          int NOT NULL,      -- customers at 80 % of the limit or more, not over it
    CONSTRAINT portfolio_history_key UNIQUE NULLS NOT DISTINCT (day, region, customer_type)
);
SELECT pg_catalog.pg_extension_config_dump('credit.portfolio_history', '');

-- Records the figures of `as_of` for every account (the daily job's step): as changes, a row only
-- where something differs from the row in force that day (the day before's, or an earlier run's
-- of the same day). Scores: those the day's regrade computed.
CREATE FUNCTION credit._record_history(as_of date, scored text[] DEFAULT NULL, scores numeric[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    written bigint;
    touched text[];
    last_day date;
    nb int := (SELECT count(*) FROM credit.aging_bucket b WHERE NOT b.retired);
BEGIN
    PERFORM credit._internal('credit._record_history');
    -- Days since the last recorded one that no daily job recorded: rebuilt from the ledger.
    SELECT max(h.valid_from) INTO last_day FROM credit.history h WHERE h.source = 'recorded';
    IF last_day IS NOT NULL AND last_day < as_of - 1 THEN
        PERFORM credit._backfill_history(last_day + 1, as_of - 1);
    END IF;
    WITH g AS MATERIALIZED (SELECT * FROM credit.aging(_record_history.as_of)),
    ag AS (
        SELECT g.customer,
               coalesce(sum(g.open_amount) FILTER (WHERE g.doc_type = 'invoice'), 0) AS open_ar,
               coalesce(-sum(g.open_amount) FILTER (WHERE g.doc_type <> 'invoice'), 0) AS unapplied,
               coalesce(sum(g.open_amount) FILTER (WHERE g.doc_type = 'invoice' AND g.days > 0), 0) AS overdue,
               min(g.due_date) FILTER (WHERE g.doc_type = 'invoice' AND g.days > 0) AS oldest_overdue_due
          FROM g GROUP BY g.customer),
    -- Open invoices per bucket, as an array in bucket order (zeros filled in).
    ranks AS (SELECT b.position, row_number() OVER (ORDER BY b.position) AS k FROM credit.aging_bucket b WHERE NOT b.retired),
    per_bucket AS (
        SELECT g.customer, r.k, sum(g.open_amount) AS amount
          FROM g JOIN ranks r ON r.position = g.bucket_position
         WHERE g.doc_type = 'invoice' GROUP BY g.customer, r.k),
    bk AS (
        SELECT c.customer, array_agg(coalesce(p.amount, 0) ORDER BY r.k) AS buckets
          FROM (SELECT DISTINCT pb.customer FROM per_bucket pb) c CROSS JOIN ranks r
          LEFT JOIN per_bucket p ON p.customer = c.customer AND p.k = r.k
         GROUP BY c.customer),
    lvl AS (
        SELECT t.customer, max(t.level) AS level FROM credit.collection_task t
         WHERE t.status = 'open' AND t.level IS NOT NULL AND t.created_for <= _record_history.as_of
         GROUP BY t.customer),
    sc AS (SELECT * FROM unnest(scored, scores) AS s(customer, score)),
    now AS (
        SELECT a.customer,
               CASE WHEN a.temporary_limit_until >= _record_history.as_of THEN a.temporary_limit ELSE a.credit_limit END AS lim,
               coalesce(a.temporary_limit_until >= _record_history.as_of, false) AS temp,
               coalesce(ag.open_ar, 0) AS open_ar, coalesce(ag.unapplied, 0) AS unapplied,
               CASE WHEN _record_history.as_of = current_date THEN a.open_orders END AS open_orders,
               CASE WHEN _record_history.as_of = current_date
                    THEN coalesce(ag.open_ar, 0) - coalesce(ag.unapplied, 0) + a.open_orders END AS exposure,
               coalesce(ag.overdue, 0) AS overdue,
               coalesce(bk.buckets, array_fill(0::numeric, ARRAY[nb])) AS buckets,
               ag.oldest_overdue_due, a.status, a.grade, sc.score, lvl.level
          FROM credit.account a
          LEFT JOIN ag ON ag.customer = a.customer
          LEFT JOIN bk ON bk.customer = a.customer
          LEFT JOIN lvl ON lvl.customer = a.customer
          LEFT JOIN sc ON sc.customer = a.customer),
    -- The rows in force on the day, read once (a lookup per customer would see the rows this
    -- statement inserts, and on a table without statistics be planned as a scan per customer).
    in_force AS MATERIALIZED (
        SELECT h.* FROM credit.history h
         WHERE h.valid_from <= _record_history.as_of AND (h.valid_until IS NULL OR h.valid_until > _record_history.as_of)),
    prev AS (
        SELECT n.*, p.valid_from AS prev_from,
               (p.customer IS NULL OR (n.lim, n.temp, n.open_ar, n.unapplied, n.open_orders, n.exposure, n.overdue, n.buckets,
                                       n.oldest_overdue_due, n.status, n.grade, n.score, n.level)
                    IS DISTINCT FROM (p.credit_limit, p.temporary_limit, p.open_ar, p.unapplied_credit, p.open_orders, p.exposure,
                                      p.overdue, p.buckets, p.oldest_overdue_due, p.status, p.grade, p.score, p.dunning_level)) AS changed
          FROM now n
          LEFT JOIN in_force p ON p.customer = n.customer),
    ins AS (
        INSERT INTO credit.history AS h (customer, valid_from, credit_limit, temporary_limit, open_ar, unapplied_credit, open_orders,
                                         exposure, overdue, buckets, oldest_overdue_due, utilization, status, grade, score,
                                         dunning_level, source)
        SELECT p.customer, _record_history.as_of, p.lim, p.temp, p.open_ar, p.unapplied, p.open_orders, p.exposure,
               p.overdue, p.buckets, p.oldest_overdue_due,
               CASE WHEN p.lim > 0 THEN round(coalesce(p.exposure, p.open_ar - p.unapplied) / p.lim, 4) END,
               p.status, p.grade, p.score, p.level, 'recorded'
          FROM prev p WHERE p.changed
        ON CONFLICT (customer, valid_from) DO UPDATE
           SET credit_limit = excluded.credit_limit, temporary_limit = excluded.temporary_limit, open_ar = excluded.open_ar,
               unapplied_credit = excluded.unapplied_credit, open_orders = excluded.open_orders, exposure = excluded.exposure,
               overdue = excluded.overdue, buckets = excluded.buckets, oldest_overdue_due = excluded.oldest_overdue_due,
               utilization = excluded.utilization, status = excluded.status, grade = excluded.grade, score = excluded.score,
               dunning_level = excluded.dunning_level, source = 'recorded'
        RETURNING h.customer)
    SELECT count(*), array_agg(ins.customer) INTO written, touched FROM ins;
    -- A row recorded today for an unchanged customer is not needed: the day before holds on.
    WITH del AS (
        DELETE FROM credit.history h
         USING credit.history p
         WHERE h.valid_from = _record_history.as_of AND h.source = 'recorded'
           AND p.customer = h.customer AND p.valid_until = h.valid_from
           AND (h.credit_limit, h.temporary_limit, h.open_ar, h.unapplied_credit, h.open_orders, h.exposure, h.overdue, h.buckets,
                h.oldest_overdue_due, h.status, h.grade, h.score, h.dunning_level)
               IS NOT DISTINCT FROM (p.credit_limit, p.temporary_limit, p.open_ar, p.unapplied_credit, p.open_orders, p.exposure,
                                     p.overdue, p.buckets, p.oldest_overdue_due, p.status, p.grade, p.score, p.dunning_level)
        RETURNING h.customer)
    SELECT coalesce(touched, '{}') || coalesce(array_agg(del.customer), '{}') INTO touched FROM del;
    IF cardinality(touched) > 0 THEN
        PERFORM credit._close_history_ranges(touched);
    END IF;
    PERFORM credit._portfolio_history(_record_history.as_of, _record_history.as_of);
    RETURN written;
END
$$;

-- Sets every row's valid_until to the next row's valid_from (of the customers given, or all).
CREATE FUNCTION credit._close_history_ranges(customers text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF customers IS NULL THEN
        UPDATE credit.history h SET valid_until = n.next_from
          FROM (SELECT x.customer, x.valid_from, lead(x.valid_from) OVER (PARTITION BY x.customer ORDER BY x.valid_from) AS next_from
                  FROM credit.history x) n
         WHERE h.customer = n.customer AND h.valid_from = n.valid_from AND h.valid_until IS DISTINCT FROM n.next_from;
    ELSE
        UPDATE credit.history h SET valid_until = n.next_from
          FROM (SELECT x.customer, x.valid_from, lead(x.valid_from) OVER (PARTITION BY x.customer ORDER BY x.valid_from) AS next_from
                  FROM credit.history x WHERE x.customer = ANY (customers)) n
         WHERE h.customer = ANY (customers) AND h.customer = n.customer AND h.valid_from = n.valid_from
           AND h.valid_until IS DISTINCT FROM n.next_from;
    END IF;
END
$$;

-- The portfolio of the days from..to, from the history rows in force each day. Computed from the
-- rows' starts and ends (each row adds its figures on valid_from and takes them away on
-- valid_until), summed over the days in order and carried over quiet days: the cost follows the
-- number of changes, not customers x days.
CREATE FUNCTION credit._portfolio_history(from_day date, to_day date) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    written bigint;
BEGIN
    DELETE FROM credit.portfolio_history p WHERE p.day BETWEEN from_day AND to_day;
    WITH rows AS MATERIALIZED (
        SELECT h.*, a.region, a.customer_type, coalesce(h.exposure, h.open_ar - h.unapplied_credit) AS used
          FROM credit.history h JOIN credit.account a ON a.customer = h.customer
         WHERE h.valid_from <= to_day AND (h.valid_until IS NULL OR h.valid_until > from_day)),
    ev AS MATERIALIZED (
        SELECT greatest(r.valid_from, from_day) AS day, 1 AS sgn, r.* FROM rows r
        UNION ALL
        SELECT r.valid_until, -1, r.* FROM rows r WHERE r.valid_until <= to_day),
    per_day AS (
        SELECT e.day, e.region, e.customer_type,
               sum(e.sgn) AS customers, sum(e.sgn * coalesce(e.credit_limit, 0)) AS credit_limit,
               sum(e.sgn * e.open_ar) AS open_ar, sum(e.sgn * e.unapplied_credit) AS unapplied,
               sum(e.sgn * coalesce(e.exposure, 0)) AS exposure, sum(e.sgn * (e.exposure IS NULL)::int) AS unknown_exposure,
               sum(e.sgn * e.overdue) AS overdue,
               sum(e.sgn * (e.used > e.credit_limit)::int) AS over_limit,
               sum(e.sgn * (e.used >= 0.8 * e.credit_limit AND e.used <= e.credit_limit)::int) AS near_limit
          FROM ev e GROUP BY e.day, e.region, e.customer_type),
    bk_ev AS (
        SELECT e.day, e.region, e.customer_type, u.k, sum(e.sgn * u.b) AS delta
          FROM ev e, unnest(e.buckets) WITH ORDINALITY AS u(b, k)
         GROUP BY e.day, e.region, e.customer_type, u.k),
    groups AS (SELECT DISTINCT p.region, p.customer_type FROM per_day p),
    days AS (SELECT d::date AS day FROM generate_series(from_day, to_day, interval '1 day') d),
    ks AS (SELECT generate_series(1, coalesce((SELECT max(k) FROM bk_ev), 0)) AS k),
    running AS (
        SELECT d.day, g.region, g.customer_type,
               sum(coalesce(p.customers, 0)) OVER w AS customers, sum(coalesce(p.credit_limit, 0)) OVER w AS credit_limit,
               sum(coalesce(p.open_ar, 0)) OVER w AS open_ar, sum(coalesce(p.unapplied, 0)) OVER w AS unapplied,
               sum(coalesce(p.exposure, 0)) OVER w AS exposure, sum(coalesce(p.unknown_exposure, 0)) OVER w AS unknown_exposure,
               sum(coalesce(p.overdue, 0)) OVER w AS overdue, sum(coalesce(p.over_limit, 0)) OVER w AS over_limit,
               sum(coalesce(p.near_limit, 0)) OVER w AS near_limit
          FROM groups g CROSS JOIN days d
          LEFT JOIN per_day p ON p.day = d.day AND p.region IS NOT DISTINCT FROM g.region
                             AND p.customer_type IS NOT DISTINCT FROM g.customer_type
        WINDOW w AS (PARTITION BY g.region, g.customer_type ORDER BY d.day)),
    bk_running AS (
        SELECT d.day, g.region, g.customer_type, ks.k,
               sum(coalesce(b.delta, 0)) OVER (PARTITION BY g.region, g.customer_type, ks.k ORDER BY d.day) AS amount
          FROM groups g CROSS JOIN days d CROSS JOIN ks
          LEFT JOIN bk_ev b ON b.day = d.day AND b.k = ks.k AND b.region IS NOT DISTINCT FROM g.region
                           AND b.customer_type IS NOT DISTINCT FROM g.customer_type),
    bk AS (
        SELECT b.day, b.region, b.customer_type, array_agg(b.amount ORDER BY b.k) AS buckets
          FROM bk_running b GROUP BY b.day, b.region, b.customer_type)
    INSERT INTO credit.portfolio_history (day, region, customer_type, customers, credit_limit, open_ar, unapplied_credit, exposure,
                                          overdue, buckets, over_limit, near_limit)
    SELECT r.day, r.region, r.customer_type, r.customers::int, r.credit_limit, r.open_ar, r.unapplied,
           CASE WHEN r.unknown_exposure = 0 THEN r.exposure END, r.overdue, coalesce(bk.buckets, '{}'),
           r.over_limit::int, r.near_limit::int
      FROM running r
      LEFT JOIN bk ON bk.day = r.day AND bk.region IS NOT DISTINCT FROM r.region AND bk.customer_type IS NOT DISTINCT FROM r.customer_type
     WHERE r.customers > 0;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- Views for BI tools: one row per customer and day, and per region, customer type and day; a date
-- column named `day`, the first five aging buckets as columns (named after the shipped defaults,
-- like credit.aging_by_customer), every column commented.
CREATE VIEW credit.customer_history_daily WITH (security_invoker = true) AS
SELECT d::date AS day, h.customer, h.credit_limit, h.temporary_limit, h.open_ar, h.unapplied_credit, h.open_orders,
       h.exposure, h.overdue,
       coalesce(h.buckets[1], 0) AS not_due, coalesce(h.buckets[2], 0) AS days_1_30, coalesce(h.buckets[3], 0) AS days_31_60,
       coalesce(h.buckets[4], 0) AS days_61_90, coalesce(h.buckets[5], 0) AS over_90,
       coalesce((SELECT sum(b) FROM unnest(h.buckets[6:]) b), 0) AS later_buckets,
       CASE WHEN h.oldest_overdue_due IS NOT NULL THEN d::date - h.oldest_overdue_due END AS oldest_days_past_due,
       h.utilization, h.status, h.grade, h.score, h.dunning_level, h.source
  FROM credit.history h
  CROSS JOIN LATERAL generate_series(h.valid_from, coalesce(h.valid_until - 1, greatest(current_date, h.valid_from)),
                                     interval '1 day') d;

CREATE VIEW credit.portfolio_daily WITH (security_invoker = true) AS
SELECT p.day, p.region, p.customer_type, p.customers, p.credit_limit, p.open_ar, p.unapplied_credit, p.exposure, p.overdue,
       coalesce(p.buckets[1], 0) AS not_due, coalesce(p.buckets[2], 0) AS days_1_30, coalesce(p.buckets[3], 0) AS days_31_60,
       coalesce(p.buckets[4], 0) AS days_61_90, coalesce(p.buckets[5], 0) AS over_90,
       coalesce((SELECT sum(b) FROM unnest(p.buckets[6:]) b), 0) AS later_buckets,
       CASE WHEN p.credit_limit > 0 THEN round(coalesce(p.exposure, p.open_ar - p.unapplied_credit) / p.credit_limit, 4) END
           AS utilization,
       CASE WHEN p.open_ar > 0 THEN round(p.overdue / p.open_ar, 4) END AS overdue_share,
       p.over_limit, p.near_limit
  FROM credit.portfolio_history p;

COMMENT ON TABLE credit.history IS 'Credit history per customer, as changes: the figures hold from valid_from until valid_until (docs/history.md)';
COMMENT ON COLUMN credit.history.customer IS 'Customer';
COMMENT ON COLUMN credit.history.valid_from IS 'First day the figures held';
COMMENT ON COLUMN credit.history.valid_until IS 'Day they changed (exclusive); NULL: in force';
COMMENT ON COLUMN credit.history.credit_limit IS 'Limit in force (a temporary limit included)';
COMMENT ON COLUMN credit.history.temporary_limit IS 'The limit in force was a temporary limit';
COMMENT ON COLUMN credit.history.open_ar IS 'Open receivables (invoices)';
COMMENT ON COLUMN credit.history.unapplied_credit IS 'Payments and credit notes not yet applied';
COMMENT ON COLUMN credit.history.open_orders IS 'Open orders (recorded days only)';
COMMENT ON COLUMN credit.history.exposure IS 'open_ar - unapplied_credit + open_orders (recorded days only)';
COMMENT ON COLUMN credit.history.overdue IS 'Open receivables past their due date';
COMMENT ON COLUMN credit.history.buckets IS 'Open receivables per aging bucket, in position order';
COMMENT ON COLUMN credit.history.oldest_overdue_due IS 'Due date of the oldest overdue invoice';
COMMENT ON COLUMN credit.history.utilization IS 'exposure / limit (backfilled days: (open_ar - unapplied_credit) / limit)';
COMMENT ON COLUMN credit.history.status IS 'Account status (active, hold, blacklisted)';
COMMENT ON COLUMN credit.history.grade IS 'Credit grade';
COMMENT ON COLUMN credit.history.score IS 'Credit score the day''s regrade computed (recorded days only)';
COMMENT ON COLUMN credit.history.dunning_level IS 'Highest dunning level of an open task (recorded days only)';
COMMENT ON COLUMN credit.history.source IS 'recorded (by the daily job) or backfilled (rebuilt from the ledger and events)';
COMMENT ON TABLE credit.portfolio_history IS 'The portfolio per day, region and customer type: the sum of the customers'' history in force that day';
COMMENT ON COLUMN credit.portfolio_history.day IS 'Day';
COMMENT ON COLUMN credit.portfolio_history.region IS 'Region (NULL: none set)';
COMMENT ON COLUMN credit.portfolio_history.customer_type IS 'Customer type (NULL: none set)';
COMMENT ON COLUMN credit.portfolio_history.customers IS 'Customers with history that day';
COMMENT ON COLUMN credit.portfolio_history.credit_limit IS 'Sum of the limits in force';
COMMENT ON COLUMN credit.portfolio_history.open_ar IS 'Open receivables';
COMMENT ON COLUMN credit.portfolio_history.unapplied_credit IS 'Unapplied payments and credit notes';
COMMENT ON COLUMN credit.portfolio_history.exposure IS 'Exposure (NULL when a customer''s day is backfilled: open orders unknown)';
COMMENT ON COLUMN credit.portfolio_history.overdue IS 'Open receivables past due';
COMMENT ON COLUMN credit.portfolio_history.buckets IS 'Open receivables per aging bucket, in position order';
COMMENT ON COLUMN credit.portfolio_history.over_limit IS 'Customers over their limit';
COMMENT ON COLUMN credit.portfolio_history.near_limit IS 'Customers at 80 % of their limit or more, not over it';
COMMENT ON FUNCTION credit._record_history(date, text[], numeric[]) IS 'Internal: records the day''s credit history (the daily job''s step), filling missed days from the ledger';
COMMENT ON FUNCTION credit._close_history_ranges(text[]) IS 'Internal: sets each history row''s valid_until to the next row''s valid_from';
COMMENT ON FUNCTION credit._portfolio_history(date, date) IS 'Internal: the portfolio history of a range of days, from the customers'' history';
COMMENT ON FUNCTION credit._backfill_history(date, date) IS 'Internal: credit.backfill_history for the daily job (missed days)';
COMMENT ON FUNCTION credit.backfill_history(date, date) IS 'Rebuilds the credit history of past days from the ledger and the events, for days no daily job recorded (manager)';
COMMENT ON VIEW credit.customer_history_daily IS 'One row per customer and day of its credit history (BI: time series per customer; filter by customer and day)';
COMMENT ON COLUMN credit.customer_history_daily.day IS 'Day';
COMMENT ON COLUMN credit.customer_history_daily.customer IS 'Customer';
COMMENT ON COLUMN credit.customer_history_daily.credit_limit IS 'Limit in force';
COMMENT ON COLUMN credit.customer_history_daily.temporary_limit IS 'The limit in force was temporary';
COMMENT ON COLUMN credit.customer_history_daily.open_ar IS 'Open receivables';
COMMENT ON COLUMN credit.customer_history_daily.unapplied_credit IS 'Unapplied payments and credit notes';
COMMENT ON COLUMN credit.customer_history_daily.open_orders IS 'Open orders (recorded days only)';
COMMENT ON COLUMN credit.customer_history_daily.exposure IS 'Exposure (recorded days only)';
COMMENT ON COLUMN credit.customer_history_daily.overdue IS 'Open receivables past due';
COMMENT ON COLUMN credit.customer_history_daily.not_due IS 'First aging bucket (not yet due, by default)';
COMMENT ON COLUMN credit.customer_history_daily.days_1_30 IS 'Second aging bucket (1-30 days past due, by default)';
COMMENT ON COLUMN credit.customer_history_daily.days_31_60 IS 'Third aging bucket (31-60, by default)';
COMMENT ON COLUMN credit.customer_history_daily.days_61_90 IS 'Fourth aging bucket (61-90, by default)';
COMMENT ON COLUMN credit.customer_history_daily.over_90 IS 'Fifth aging bucket (over 90, by default)';
COMMENT ON COLUMN credit.customer_history_daily.later_buckets IS 'Any buckets after the fifth';
COMMENT ON COLUMN credit.customer_history_daily.oldest_days_past_due IS 'Days past due of the oldest overdue invoice that day';
COMMENT ON COLUMN credit.customer_history_daily.utilization IS 'Exposure (backfilled: open_ar - unapplied_credit) / limit';
COMMENT ON COLUMN credit.customer_history_daily.status IS 'Account status';
COMMENT ON COLUMN credit.customer_history_daily.grade IS 'Credit grade';
COMMENT ON COLUMN credit.customer_history_daily.score IS 'Credit score (recorded days only)';
COMMENT ON COLUMN credit.customer_history_daily.dunning_level IS 'Highest dunning level of an open task (recorded days only)';
COMMENT ON COLUMN credit.customer_history_daily.source IS 'recorded or backfilled';
COMMENT ON VIEW credit.portfolio_daily IS 'The portfolio per day, region and customer type (BI: a year by region charts from a few thousand rows)';
COMMENT ON COLUMN credit.portfolio_daily.day IS 'Day';
COMMENT ON COLUMN credit.portfolio_daily.region IS 'Region';
COMMENT ON COLUMN credit.portfolio_daily.customer_type IS 'Customer type';
COMMENT ON COLUMN credit.portfolio_daily.customers IS 'Customers';
COMMENT ON COLUMN credit.portfolio_daily.credit_limit IS 'Sum of the limits in force';
COMMENT ON COLUMN credit.portfolio_daily.open_ar IS 'Open receivables';
COMMENT ON COLUMN credit.portfolio_daily.unapplied_credit IS 'Unapplied payments and credit notes';
COMMENT ON COLUMN credit.portfolio_daily.exposure IS 'Exposure (NULL when open orders are unknown for a customer''s day)';
COMMENT ON COLUMN credit.portfolio_daily.overdue IS 'Open receivables past due';
COMMENT ON COLUMN credit.portfolio_daily.not_due IS 'First aging bucket (not yet due, by default)';
COMMENT ON COLUMN credit.portfolio_daily.days_1_30 IS 'Second aging bucket (1-30, by default)';
COMMENT ON COLUMN credit.portfolio_daily.days_31_60 IS 'Third aging bucket (31-60, by default)';
COMMENT ON COLUMN credit.portfolio_daily.days_61_90 IS 'Fourth aging bucket (61-90, by default)';
COMMENT ON COLUMN credit.portfolio_daily.over_90 IS 'Fifth aging bucket (over 90, by default)';
COMMENT ON COLUMN credit.portfolio_daily.later_buckets IS 'Any buckets after the fifth';
COMMENT ON COLUMN credit.portfolio_daily.utilization IS 'Exposure (or open_ar - unapplied_credit) / limits';
COMMENT ON COLUMN credit.portfolio_daily.overdue_share IS 'overdue / open_ar';
COMMENT ON COLUMN credit.portfolio_daily.over_limit IS 'Customers over their limit';
COMMENT ON COLUMN credit.portfolio_daily.near_limit IS 'Customers at 80 % of their limit or more, not over it';
