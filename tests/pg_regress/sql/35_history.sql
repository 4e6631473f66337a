-- Credit history: backfilled from the ledger and the events for past days, recorded by the daily
-- job (open orders, exposure and the score only then), as changes; every day's figures equal the
-- aging of that day; the portfolio per region and type equals the customers' history summed.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, customer_type, region) VALUES
    ('H-A', 2000, 'history', 'north'), ('H-B', 1000, 'history', 'south');
SELECT credit.post_invoice('H-A', 'HA-1', 1000, '2026-09-01', '2026-09-30') > 0 AS ha1,
       credit.post_payment('H-A', 400, '2026-10-15') > 0 AS pay,
       credit.post_invoice('H-A', 'HA-2', 500, '2026-10-20', '2026-11-19') > 0 AS ha2,
       credit.post_credit_note('H-B', 'CN-B', 100, NULL, '2026-11-05') > 0 AS credit_b,
       credit.post_invoice('H-B', 'HB-1', 300, '2026-10-01', '2026-10-31') > 0 AS hb1;
-- Two years back would do as well; the changes of these customers:
SELECT credit.backfill_history('2026-08-25', '2026-11-29') > 0 AS backfilled;
SELECT customer, valid_from, valid_until, credit_limit, open_ar, unapplied_credit, overdue, buckets, oldest_overdue_due,
       open_orders, exposure, source
  FROM credit.history WHERE customer IN ('H-A', 'H-B') ORDER BY customer, valid_from;
-- Every day's figures are the aging of that day, for every customer of the database.
SELECT count(*) AS days_checked,
       count(*) FILTER (WHERE h.open_ar IS DISTINCT FROM coalesce(g.open_ar, 0)
                           OR h.unapplied_credit IS DISTINCT FROM coalesce(g.unapplied, 0)
                           OR h.overdue IS DISTINCT FROM coalesce(g.overdue, 0)
                           OR h.not_due + h.days_1_30 + h.days_31_60 + h.days_61_90 + h.over_90 + h.later_buckets
                              IS DISTINCT FROM coalesce(g.open_ar, 0)) AS differing
  FROM credit.customer_history_daily h
  LEFT JOIN LATERAL (SELECT sum(x.open_amount) FILTER (WHERE x.doc_type = 'invoice') AS open_ar,
                            -sum(x.open_amount) FILTER (WHERE x.doc_type <> 'invoice') AS unapplied,
                            sum(x.open_amount) FILTER (WHERE x.doc_type = 'invoice' AND x.days > 0) AS overdue
                       FROM credit.aging(h.day) x WHERE x.customer = h.customer) g ON true
 WHERE h.day BETWEEN '2026-08-25' AND '2026-11-29' AND h.day IN (SELECT d::date FROM generate_series('2026-08-25'::date, '2026-11-29'::date, '3 days') d)
   AND h.customer LIKE 'H-%';
-- The daily job records today: open orders, exposure, the score; a second run adds no row for
-- customers whose figures did not change (H-B; H-A's first re-grade lowered its limit, so the
-- second scores it again on the new limit).
SELECT step, changes > 0 AS wrote FROM credit.run_daily() WHERE step = 'history';
SELECT customer, valid_from = current_date AS today, open_orders, exposure, source, valid_until
  FROM credit.history WHERE customer IN ('H-A', 'H-B') AND source = 'recorded' ORDER BY customer;
SELECT md5(string_agg(h::text, ',' ORDER BY valid_from)) AS hb_before FROM credit.history h WHERE customer = 'H-B' \gset
SELECT step FROM credit.run_daily() WHERE step = 'history';
SELECT md5(string_agg(h::text, ',' ORDER BY valid_from)) = :'hb_before' AS unchanged FROM credit.history h WHERE customer = 'H-B';
SELECT count(*) AS rows_today FROM credit.history WHERE valid_from = current_date AND customer LIKE 'H-%';
-- A backfill over the same range again writes the same rows and leaves the recorded day alone.
SELECT md5(string_agg(h::text, ',' ORDER BY customer, valid_from)) AS before FROM credit.history h \gset
SELECT credit.backfill_history('2026-08-25', '2026-11-29') >= 0 AS again;
SELECT md5(string_agg(h::text, ',' ORDER BY customer, valid_from)) = :'before' AS same FROM credit.history h;
SELECT credit.backfill_history(current_date, current_date) AS recorded_day_untouched;
-- The portfolio per region and type is the customers' history summed, day by day.
SELECT count(*) AS portfolio_days,
       count(*) FILTER (WHERE (p.customers, p.credit_limit, p.open_ar, p.overdue, p.over_90 + p.days_61_90)
                              IS DISTINCT FROM (c.customers, c.credit_limit, c.open_ar, c.overdue, c.late)) AS differing
  FROM credit.portfolio_daily p
  JOIN (SELECT h.day, a.region, a.customer_type, count(*) AS customers, sum(coalesce(h.credit_limit, 0)) AS credit_limit,
               sum(h.open_ar) AS open_ar, sum(h.overdue) AS overdue, sum(h.over_90 + h.days_61_90) AS late
          FROM credit.customer_history_daily h JOIN credit.account a ON a.customer = h.customer
         WHERE h.day BETWEEN '2026-08-25' AND '2026-11-29'
         GROUP BY 1, 2, 3) c
    ON c.day = p.day AND c.region IS NOT DISTINCT FROM p.region AND c.customer_type IS NOT DISTINCT FROM p.customer_type
 WHERE p.customer_type = 'history';
SELECT day, region, customers, credit_limit, open_ar, overdue, over_90, utilization, over_limit, near_limit
  FROM credit.portfolio_daily WHERE customer_type = 'history' AND day IN ('2026-09-15', '2026-10-16', '2026-11-25')
 ORDER BY day, region;
-- A messy ledger: a bounced cheque, an unapplied credit note, a write-off, an invoice keyed in
-- late; every rebuilt day is still that day's aging.
INSERT INTO credit.account (customer, credit_limit) VALUES ('H-RV', 10000);
SELECT credit.post_invoice('H-RV', 'R-1', 1000, '2026-08-01', '2026-08-31') > 0 AS r1,
       credit.post_invoice('H-RV', 'R-2', 500, '2026-08-10', '2026-09-09') > 0 AS r2;
SELECT credit.post_payment('H-RV', 1200, '2026-09-05', NULL, 'CHQ') AS chq \gset
SELECT credit.reverse_settlement(:chq, 'bounced', '2026-09-20') > 0 AS bounced,
       credit.post_credit_note('H-RV', 'CN', 300, NULL, '2026-10-01') > 0 AS credit_note,
       credit.write_off('H-RV', 'R-2', NULL, '2026-10-15') > 0 AS written_off,
       credit.post_invoice('H-RV', 'R-3', 200, '2026-09-01', '2026-10-01') > 0 AS late_invoice,
       credit.post_payment('H-RV', 5000, '2026-11-01') > 0 AS prepaid;
SELECT credit.backfill_history('2026-07-25', '2026-11-29') > 0 AS backfilled;
SELECT count(*) AS days, count(*) FILTER (WHERE h.open_ar IS DISTINCT FROM coalesce(g.open_ar, 0)
                                             OR h.unapplied_credit IS DISTINCT FROM coalesce(g.unapplied, 0)
                                             OR h.overdue IS DISTINCT FROM coalesce(g.overdue, 0)) AS differing
  FROM credit.customer_history_daily h
  LEFT JOIN LATERAL (SELECT sum(x.open_amount) FILTER (WHERE x.doc_type = 'invoice') AS open_ar,
                            -sum(x.open_amount) FILTER (WHERE x.doc_type <> 'invoice') AS unapplied,
                            sum(x.open_amount) FILTER (WHERE x.doc_type = 'invoice' AND x.days > 0) AS overdue
                       FROM credit.aging(h.day) x WHERE x.customer = h.customer) g ON true
 WHERE h.customer = 'H-RV' AND h.day BETWEEN '2026-07-25' AND '2026-11-29';
-- Bad input changes nothing.
SELECT regress.sqlstate_of($$SELECT credit.backfill_history(NULL, current_date)$$) AS null_from,
       regress.sqlstate_of($$SELECT credit.backfill_history(current_date, '2026-11-29')$$) AS backwards,
       regress.sqlstate_of($$SELECT credit.backfill_history(current_date, current_date + 1)$$) AS future,
       regress.sqlstate_of($$SELECT credit.backfill_history('2000-01-01', current_date)$$) AS too_long,
       regress.sqlstate_of($$SELECT credit.backfill_history('-infinity', current_date)$$) AS infinite;
ROLLBACK;
