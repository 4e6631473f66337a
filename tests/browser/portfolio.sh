#!/usr/bin/env bash
# The credit manager's morning page in a real browser: credit.portfolio_html (Chinese and English)
# over a portfolio of 60 customers in three regions with a year of rebuilt history and today's
# daily run, loaded by headless Chromium. Checked from what the browser built and printed:
#   - every chart has the marks its data calls for, counted in the rendered DOM against SQL: a bar
#     per customer nearest its limit (up to ten), a point per month-end and today on overdue, a
#     point per month with a DSO, a segment per non-empty aging bucket of each region and customer
#     type, a segment per dunning level for the worklist and for today's new tasks;
#   - the portfolio's totals and every customer at 80 % of its limit or more are printed;
#   - no word lies outside the printed page; a screenshot of each page is kept.
#   tests/browser/portfolio.sh SOCKET_DIR PORT [OUT_DIR]
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
DIR=$1 PORT=$2
OUT=${3:-$ROOT/target/test-results/browser}
DB=pg_credit_portfolio_page
mkdir -p "$OUT"; chmod 755 "$OUT"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "chromium is not installed (scripts/common.sh ensure_deps installs it)"; exit 1; }

pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
pg "$DIR" "$PORT" -d "$DB" -v ON_ERROR_STOP=1 -q >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit, customer_type, region)
SELECT 'K' || lpad(k::text, 3, '0') || CASE WHEN k % 7 = 0 THEN ' 华南五金批发有限公司' ELSE '' END,
       5000 + 1000 * (k % 9), (ARRAY['wholesale', 'retail'])[1 + k % 2], (ARRAY['east', 'north', '华南'])[1 + k % 3]
  FROM generate_series(1, 60) k;
-- A year of trade: an invoice every 20 days per customer, most paid, some late, some not at all.
SELECT count(credit.post_invoice(a.customer, a.customer || '-' || j, 500 + 37 * ((j * 13 + length(a.customer)) % 40),
                                 current_date - 400 + 20 * j + (j % 5), current_date - 370 + 20 * j + (j % 5)))
  FROM credit.account a, generate_series(1, 19) j;
SELECT count(credit.post_payment(i.customer, i.amount, least(i.due_date + (i.id % 10)::int - 6, current_date), i.doc_no))
  FROM credit.invoice i WHERE (i.id % 23 <> 0 OR i.due_date < current_date - 200) AND i.due_date + (i.id % 10)::int - 6 < current_date - 10;
SELECT credit.backfill_history(current_date - 366, current_date - 1);
SELECT count(*) FROM credit.run_daily();
SQL

read -r want_near want_trend want_dso want_region want_type want_worklist <<<"$(pg "$DIR" "$PORT" -d "$DB" -At -F' ' <<'SQL'
WITH d AS (SELECT DISTINCT x.day FROM (SELECT (date_trunc('month', g) + interval '1 month - 1 day')::date AS day
                                         FROM generate_series(current_date - 365, current_date - 1, interval '1 month') g
                                       UNION ALL SELECT current_date) x WHERE x.day <= current_date),
trend AS (SELECT d.day FROM d WHERE EXISTS (SELECT 1 FROM credit.portfolio_history p WHERE p.day = d.day)),
seg AS (SELECT dim, count(*) FILTER (WHERE b > 0) AS n FROM (
            SELECT 'region' AS dim, unnest(ARRAY[sum(not_due), sum(days_1_30), sum(days_31_60), sum(days_61_90), sum(over_90 + later_buckets)]) AS b
              FROM credit.portfolio_daily WHERE day = current_date GROUP BY region
            UNION ALL
            SELECT 'type', unnest(ARRAY[sum(not_due), sum(days_1_30), sum(days_31_60), sum(days_61_90), sum(over_90 + later_buckets)])
              FROM credit.portfolio_daily WHERE day = current_date GROUP BY customer_type) x GROUP BY dim),
work AS (SELECT level, sum(open_amount) AS amount FROM credit.collection_worklist WHERE level IS NOT NULL GROUP BY level),
today AS (SELECT level, sum(open_amount) AS amount FROM credit.collection_task
           WHERE created_for = current_date AND level IS NOT NULL AND status <> 'superseded' GROUP BY level)
SELECT (SELECT least(10, count(*)) FROM credit.customer_history_daily WHERE day = current_date AND utilization IS NOT NULL),
       (SELECT count(*) FROM trend),
       (SELECT count(*) FROM trend WHERE credit.dso(greatest(date_trunc('month', trend.day)::date, trend.day - 29), trend.day) IS NOT NULL),
       (SELECT n FROM seg WHERE dim = 'region'), (SELECT n FROM seg WHERE dim = 'type'),
       (SELECT count(*) FILTER (WHERE amount > 0) FROM work) + (SELECT count(*) FILTER (WHERE amount > 0) FROM today);
SQL
)"
# Printed: the totals of today and every customer at 80 % of the limit or more (up to 20).
figures=$(pg "$DIR" "$PORT" -d "$DB" -At <<'SQL'
SELECT to_char(sum(overdue), 'FM999,999,999,990.00') FROM credit.portfolio_daily WHERE day = current_date
UNION ALL SELECT to_char(sum(credit_limit), 'FM999,999,999,990.00') FROM credit.portfolio_daily WHERE day = current_date
UNION ALL (SELECT split_part(customer, ' ', 1) FROM credit.customer_history_daily WHERE day = current_date AND utilization >= 0.8
            ORDER BY utilization DESC, customer LIMIT 20);
SQL
)
[ "$want_near" -gt 0 ] && [ "$want_worklist" -gt 0 ] || { echo "the portfolio has nobody near a limit or nothing to collect: the test data is wrong"; exit 1; }
source "$(dirname "$0")/render.sh"
failures=0
for lang in zh en; do
    base="$OUT/portfolio-$lang"
    pg "$DIR" "$PORT" -d "$DB" -At -c "SELECT credit.portfolio_html(current_date, '$lang')" > "$base.html"
    render "$base"
    if [ "$lang" = zh ]; then
        t_near='最接近或超出额度的客户' t_trend='逾期金额走势（月末）' t_dso='应收账款周转天数 (DSO) 走势'
        t_region='按地区的账龄' t_type='按客户类型的账龄' t_work='催收工作清单（按级别）'
    else
        t_near='Customers nearest or over their limits' t_trend='Overdue amount at month-ends' t_dso='DSO over time'
        t_region='Aging by region' t_type='Aging by customer type' t_work='The collection worklist by level'
    fi
    printf '%s\t%s\t%s\n' "$t_near" 'class="bar"' "$want_near" "$t_trend" 'class="point"' "$want_trend" \
        "$t_dso" 'class="point"' "$want_dso" "$t_region" 'class="bar"' "$want_region" "$t_type" 'class="bar"' "$want_type" \
        "$t_work" 'class="bar"' "$want_worklist" > "$base.expected"
    check_marks "$base" "$base.expected"
    check_printed "$base" $figures
    check_inside "$base"
    if [ "$lang" = zh ]; then
        grep -q '信用管理晨报' "$base.txt" || { echo "zh: the Chinese title did not render"; failures=$((failures + 1)); }
        grep -q '华南' "$base.txt" || { echo "zh: the Chinese region did not render"; failures=$((failures + 1)); }
    fi
done
((failures == 0)) || exit 1
echo "morning pages: 6 charts each with the marks the data calls for ($want_near customers nearest their limits, $want_trend overdue and $want_dso DSO points, $want_region + $want_type aging segments, $want_worklist worklist segments), totals and near-limit customers printed, nothing beyond the page; screenshots in $OUT"
