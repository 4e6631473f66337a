#!/usr/bin/env bash
# The credit file page in a real browser: credit.file_html (Chinese and English) for a customer
# with a year of rebuilt history, loaded by headless Chromium. Checked from what the browser
# built and printed:
#   - the page loads (Chromium's DOM comes back with both charts);
#   - every chart has the marks its data calls for: a point per month-end and series (used and
#     limit), a bar segment per non-zero aging bucket and month-end, counted in the rendered DOM
#     against SQL over credit.customer_history_daily;
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
expected=$(pg "$DIR" "$PORT" -d "$DB" -At <<'SQL'
SELECT count(*) * 2 || ' ' || sum((not_due > 0)::int + (days_1_30 > 0)::int + (days_31_60 > 0)::int + (days_61_90 > 0)::int
                                  + (over_90 + later_buckets > 0)::int)
  FROM credit.customer_history_daily
 WHERE customer = '华东五金 <总部> & Co'
   AND day IN (SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date
                 FROM generate_series(current_date - 365, current_date - 1, interval '1 month') d);
SQL
)
read -r want_points want_bars <<<"$expected"
figures=$(pg "$DIR" "$PORT" -d "$DB" -At <<'SQL'
SELECT to_char(coalesce(exposure, open_ar - unapplied_credit), 'FM999,999,999,990.00')
  FROM credit.customer_history_daily
 WHERE customer = '华东五金 <总部> & Co'
   AND day IN (SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date
                 FROM generate_series(current_date - 365, current_date - 1, interval '1 month') d);
SQL
)
failures=0
for lang in zh en; do
    base="$OUT/credit-file-$lang"
    pg "$DIR" "$PORT" -d "$DB" -At -c "SELECT credit.file_html('华东五金 <总部> & Co', '$lang')" > "$base.html"
    chmod 644 "$base.html"
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --dump-dom "file://$base.html" \
        > "$base.dom.html" 2>"$base.chromium.log" || { cat "$base.chromium.log"; echo "chromium failed on $base.html"; exit 1; }
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
        --window-size=1100,1600 --screenshot="$base.png" "file://$base.html" >>"$base.chromium.log" 2>&1
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-pdf-header-footer \
        --print-to-pdf="$base.pdf" "file://$base.html" >>"$base.chromium.log" 2>&1
    points=$(grep -o 'class="point"' "$base.dom.html" | wc -l)
    bars=$(grep -o 'class="bar"' "$base.dom.html" | wc -l)
    svgs=$(grep -o '<svg' "$base.dom.html" | wc -l)
    [ "$svgs" = 2 ] || { echo "$lang: $svgs charts in the rendered page, expected 2"; failures=$((failures + 1)); }
    [ "$points" = "$want_points" ] || { echo "$lang: $points points drawn, the history calls for $want_points"; failures=$((failures + 1)); }
    [ "$bars" = "$want_bars" ] || { echo "$lang: $bars bar segments drawn, the history calls for $want_bars"; failures=$((failures + 1)); }
    [ -s "$base.png" ] || { echo "$lang: no screenshot"; failures=$((failures + 1)); }
    pdftotext -layout "$base.pdf" "$base.txt"
    for fig in $figures; do
        grep -qF -- "$fig" "$base.txt" || { echo "$lang: the page does not show $fig"; failures=$((failures + 1)); }
    done
    # No word outside the page.
    pdftotext -bbox "$base.pdf" "$base.bbox.html"
    outside=$(grep -o 'page width="[0-9.]*"\|xMax="[0-9.]*"' "$base.bbox.html" \
        | awk -F'"' '/page width/ {w = $2; next} { if ($2 > w + 0.5) n++ } END {print n + 0}')
    [ "$outside" = 0 ] || { echo "$lang: $outside words beyond the page's width"; failures=$((failures + 1)); }
    if [ "$lang" = zh ]; then
        grep -q '客户信用档案' "$base.txt" || { echo "zh: the Chinese title did not render"; failures=$((failures + 1)); }
    fi
done
((failures == 0)) || exit 1
echo "credit file pages: 2 charts each, $want_points points and $want_bars bar segments as the history says, every month's figure printed, nothing beyond the page; screenshots in $OUT"
