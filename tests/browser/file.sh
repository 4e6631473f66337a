#!/usr/bin/env bash
# The credit file page in a real browser: credit.file_html (Chinese and English) for a customer
# with a year of rebuilt history, loaded by headless Chromium. Checked from what the browser
# built and printed:
#   - the page loads (Chromium's DOM comes back with its four charts);
#   - every chart has the marks its data calls for, counted in the rendered DOM against SQL: a
#     point per month-end (and today) and series on credit used against the limit, a dashed mark
#     per month with a temporary limit, a bar segment per non-zero aging bucket, a point per
#     recorded score change (and the score now), a point per month with payments on days late;
#   - the figures of the history table equal SQL's, as printed (pdftotext);
#   - no word lies outside the printed page (pdftotext -bbox);
#   - a screenshot of each page is kept with the test results.
#   tests/browser/file.sh SOCKET_DIR PORT [OUT_DIR]
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
DIR=$1 PORT=$2
OUT=${3:-$ROOT/target/test-results/browser}
DB=pg_credit_file_page
mkdir -p "$OUT"; chmod 755 "$OUT"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "chromium is not installed (scripts/common.sh ensure_deps installs it)"; exit 1; }

pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
pg "$DIR" "$PORT" -d "$DB" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit, customer_type, region) VALUES ('华东五金 <总部> & Co', 80000, 'wholesale', 'east');
-- A year of trade: an invoice every 10 days, a payment every 30 days paying the two oldest, late.
SELECT count(credit.post_invoice('华东五金 <总部> & Co', 'INV-' || k, 5000 + 37 * k, d, d + 30))
  FROM generate_series(1, 36) k, LATERAL (SELECT current_date - 370 + 10 * k AS d) x;
SELECT count(credit.post_payment('华东五金 <总部> & Co', 9000 + 11 * k, current_date - 350 + 30 * k))
  FROM generate_series(1, 11) k;
UPDATE credit.account SET credit_limit = 120000 WHERE customer = '华东五金 <总部> & Co';
SELECT credit.backfill_history(current_date - 366, current_date - 1);
SQL
# Today: a temporary limit, and the daily job records the day.
pg "$DIR" "$PORT" -d "$DB" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
UPDATE credit.account SET temporary_limit = 200000, temporary_limit_until = current_date + 5 WHERE customer = '华东五金 <总部> & Co';
SELECT count(*) FROM credit.run_daily();
SQL
# What the charts must hold, from SQL: the month-ends of the year and today with history.
read -r want_points want_bars want_late want_score want_temporary <<<"$(pg "$DIR" "$PORT" -d "$DB" -At -F' ' <<'SQL'
WITH m AS (SELECT DISTINCT x.day FROM (SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date AS day
                                         FROM generate_series(current_date - 365, current_date - 1, interval '1 month') d
                                       UNION ALL SELECT current_date) x WHERE x.day <= current_date),
h AS (SELECT h.* FROM credit.customer_history_daily h WHERE h.customer = '华东五金 <总部> & Co' AND h.day IN (SELECT day FROM m)),
f AS (SELECT credit.file('华东五金 <总部> & Co') AS f),
scored AS (SELECT e, row_number() OVER (ORDER BY e ->> 'day' DESC) AS k
             FROM f, jsonb_array_elements(f.f #> '{score,history}') e WHERE e ->> 'score' IS NOT NULL)
SELECT (SELECT 2 * count(*) FROM h),
       (SELECT sum((not_due > 0)::int + (days_1_30 > 0)::int + (days_31_60 > 0)::int + (days_61_90 > 0)::int
                   + (over_90 + later_buckets > 0)::int) FROM h),
       (SELECT count(DISTINCT date_trunc('month', paid_on)) FROM credit.days_late_experience
         WHERE customer = '华东五金 <总部> & Co' AND paid_on > current_date - 365 AND paid_on <= current_date),
       (SELECT count(*) FROM scored)
         + (SELECT CASE WHEN f.f #>> '{score,score}' IS NULL THEN 0
                        WHEN EXISTS (SELECT 1 FROM scored WHERE k = 1 AND (e ->> 'score')::numeric = (f.f #>> '{score,score}')::numeric
                                       AND e ->> 'grade' IS NOT DISTINCT FROM f.f #>> '{score,grade}') THEN 0 ELSE 1 END FROM f),
       (SELECT count(*) FROM h WHERE EXISTS (
            SELECT 1 FROM credit.customer_history_daily d WHERE d.customer = h.customer AND d.temporary_limit
               AND d.day BETWEEN date_trunc('month', h.day)::date AND h.day));
SQL
)"
figures=$(pg "$DIR" "$PORT" -d "$DB" -At <<'SQL'
SELECT to_char(coalesce(exposure, open_ar - unapplied_credit), 'FM999,999,999,990.00')
  FROM credit.customer_history_daily
 WHERE customer = '华东五金 <总部> & Co'
   AND day IN (SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date
                 FROM generate_series(current_date - 365, current_date - 1, interval '1 month') d
               UNION SELECT current_date);
SQL
)
source "$(dirname "$0")/render.sh"
failures=0
for lang in zh en; do
    base="$OUT/credit-file-$lang"
    pg "$DIR" "$PORT" -d "$DB" -At -c "SELECT credit.file_html('华东五金 <总部> & Co', '$lang')" > "$base.html"
    render "$base"
    if [ "$lang" = zh ]; then
        t_exposure='近12个月月末及今日信用占用与额度' t_aging='月末及今日账龄结构' t_score='信用评分与等级走势' t_late='按付款月份的逾期天数'
    else
        t_exposure='Credit used against the limit, month-ends of the last 12 months and today' t_aging='Aging mix at month-ends and today'
        t_score='Score and grade over time' t_late='Days late by month of payment'
    fi
    printf '%s\t%s\t%s\n' "$t_exposure" 'class="point"' "$want_points" "$t_exposure" 'class="mark mark-temporary"' "$want_temporary" \
        "$t_aging" 'class="bar"' "$want_bars" "$t_score" 'class="point"' "$want_score" "$t_late" 'class="point"' "$want_late" \
        > "$base.expected"
    check_marks "$base" "$base.expected"
    check_printed "$base" $figures
    check_inside "$base"
    if [ "$lang" = zh ]; then
        grep -q '客户信用档案' "$base.txt" || { echo "zh: the Chinese title did not render"; failures=$((failures + 1)); }
    fi
done
((failures == 0)) || exit 1
echo "credit file pages: 4 charts each with the marks the data calls for ($want_points points and $want_temporary temporary-limit marks on credit used, $want_bars aging segments, $want_score score points, $want_late days-late points), every figure printed, nothing beyond the page; screenshots in $OUT"
