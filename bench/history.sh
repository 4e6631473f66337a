#!/usr/bin/env bash
# The credit history at scale (bench/history_data.sql): backfilling two years for 10,000 trading
# customers (640,000 documents); the daily recording over 100,000 customers; a year of portfolio
# history by region; the morning page over 100,000 customers; bytes per customer-day. Each against plain SQL of the same figures in the same
# run (writes rolled back each round); the backfill's figures are compared with the baseline's.
# Medians and ratios go to target/bench/history.md (BENCHMARKS.md quotes them).
#   bench/history.sh        ROUNDS=3 bench/history.sh
source "$(dirname "$0")/../scripts/common.sh"
ROUNDS=${ROUNDS:-3}
DIR=/tmp/pg_credit_bench_history
PORT=5497
OUT="$ROOT/target/bench"
mkdir -p "$OUT"
ensure_deps
install_extension release
start_cluster "$DIR" "$PORT"
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_buffers = 4GB
work_mem = 256MB
max_wal_size = 8GB
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -w restart -l "$DIR/server.log" >/dev/null
[ -n "${KEEP_CLUSTER:-}" ] || trap 'stop_cluster "$DIR"' EXIT
for db in traders portfolio; do pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE $db" >/dev/null; done
log "generating data"
pg "$DIR" "$PORT" -d traders -v traders=10000 -v others=0 -f "$ROOT/bench/history_data.sql" >/dev/null
pg "$DIR" "$PORT" -d portfolio -v traders=10000 -v others=90000 -f "$ROOT/bench/history_data.sql" >/dev/null

# The baseline of a backfill: every customer's figures on every day, by plain SQL (a snapshot per
# day, not changes), into a table.
BASELINE_BACKFILL="CREATE TABLE snapshot (customer text, day date, open_ar numeric, overdue numeric, buckets numeric[]);
INSERT INTO snapshot
WITH open_spans AS (
    SELECT i.customer, i.doc_date AS open_from, coalesce(max(a.applied_on), DATE '2026-11-30') AS open_until, i.due_date, i.amount
      FROM credit.invoice i LEFT JOIN credit.allocation a ON a.invoice_id = i.id
     GROUP BY i.id),
days AS (SELECT s.customer, d::date AS day, s.amount, d::date - s.due_date AS past
           FROM open_spans s, generate_series(greatest(s.open_from, DATE '2024-12-01'), least(s.open_until - 1, DATE '2026-11-29'), '1 day') d)
SELECT d.customer, d.day, sum(d.amount), coalesce(sum(d.amount) FILTER (WHERE d.past > 0), 0),
       ARRAY[coalesce(sum(d.amount) FILTER (WHERE d.past <= 0), 0), coalesce(sum(d.amount) FILTER (WHERE d.past BETWEEN 1 AND 30), 0),
             coalesce(sum(d.amount) FILTER (WHERE d.past BETWEEN 31 AND 60), 0), coalesce(sum(d.amount) FILTER (WHERE d.past BETWEEN 61 AND 90), 0),
             coalesce(sum(d.amount) FILTER (WHERE d.past > 90), 0)]
  FROM days d GROUP BY d.customer, d.day;"
BASELINE_DAILY="CREATE TABLE today_snapshot AS
SELECT a.customer, a.credit_limit, g.open_ar, g.unapplied, g.overdue, g.oldest, g.buckets, a.open_orders, a.exposure, a.status, a.grade
  FROM credit.account a
  LEFT JOIN (SELECT customer, sum(open_amount) FILTER (WHERE doc_type = 'invoice') AS open_ar,
                    -sum(open_amount) FILTER (WHERE doc_type <> 'invoice') AS unapplied,
                    sum(open_amount) FILTER (WHERE doc_type = 'invoice' AND days > 0) AS overdue,
                    min(due_date) FILTER (WHERE doc_type = 'invoice' AND days > 0) AS oldest,
                    ARRAY[coalesce(sum(open_amount) FILTER (WHERE doc_type = 'invoice' AND bucket_position = 1), 0),
                          coalesce(sum(open_amount) FILTER (WHERE doc_type = 'invoice' AND bucket_position = 2), 0),
                          coalesce(sum(open_amount) FILTER (WHERE doc_type = 'invoice' AND bucket_position = 3), 0),
                          coalesce(sum(open_amount) FILTER (WHERE doc_type = 'invoice' AND bucket_position = 4), 0),
                          coalesce(sum(open_amount) FILTER (WHERE doc_type = 'invoice' AND bucket_position = 5), 0)] AS buckets
               FROM credit.aging(current_date) GROUP BY customer) g ON g.customer = a.customer;"

ms() { # database, SQL: the server-side duration of the slowest statement in ms
    "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$1" -v ON_ERROR_STOP=1 -c '\timing on' -c "$2" \
        | awk '/^Time: /{print $2}' | sort -g | tail -1
}
declare -A runs
for r in $(seq 1 "$ROUNDS"); do
    t=$(ms traders "BEGIN; SELECT credit.backfill_history('2024-12-01', '2026-11-29'); ROLLBACK;"); runs[backfill]+="$t "; log "round $r backfill: $t ms"
    t=$(ms traders "BEGIN; $BASELINE_BACKFILL ROLLBACK;"); runs[backfill_base]+="$t "; log "round $r baseline backfill: $t ms"
    t=$(ms portfolio "BEGIN; SELECT credit._record_history(current_date); ROLLBACK;"); runs[daily]+="$t "; log "round $r daily: $t ms"
    t=$(ms portfolio "BEGIN; $BASELINE_DAILY ROLLBACK;"); runs[daily_base]+="$t "; log "round $r baseline daily: $t ms"
done
m() { echo "${runs[$1]}" | median; }

log "keeping a backfill, comparing with the baseline, measuring storage"
pg "$DIR" "$PORT" -d traders -At -c "SELECT credit.backfill_history('2024-12-01', '2026-11-29')" >/dev/null
compare=$(pg "$DIR" "$PORT" -d traders -At <<SQL
$BASELINE_BACKFILL
SELECT format('%s customer-days compared, %s differ', count(*),
              count(*) FILTER (WHERE (h.open_ar, h.overdue, ARRAY[h.not_due, h.days_1_30, h.days_31_60, h.days_61_90, h.over_90])
                                     IS DISTINCT FROM (coalesce(s.open_ar, 0), coalesce(s.overdue, 0), coalesce(s.buckets, '{0,0,0,0,0}'))))
  FROM credit.customer_history_daily h LEFT JOIN snapshot s ON s.customer = h.customer AND s.day = h.day
 WHERE h.day BETWEEN '2024-12-01' AND '2026-11-29';
SQL
)
storage=$(pg "$DIR" "$PORT" -d traders -At -c "
  SELECT format('%s rows for %s customer-days (%s per customer a year); %s bytes per customer-day (table and indexes: %s)',
                count(*), sum(coalesce(valid_until, DATE '2026-11-30') - valid_from),
                round(count(*) / 10000.0 / 2, 1),
                round(pg_total_relation_size('credit.history')::numeric / sum(coalesce(valid_until, DATE '2026-11-30') - valid_from), 1),
                pg_size_pretty(pg_total_relation_size('credit.history')))
    FROM credit.history")
log "portfolio: a year by region"
pg "$DIR" "$PORT" -d portfolio -At -c "SELECT credit.backfill_history('2025-11-30', current_date - 1)" >/dev/null
pg "$DIR" "$PORT" -d portfolio -At -c "SELECT credit._record_history(current_date)" >/dev/null
declare -a year
for r in $(seq 1 "$ROUNDS"); do
    year+=("$(ms portfolio "SELECT day, region, sum(overdue), sum(open_ar) FROM credit.portfolio_daily WHERE day > current_date - 365 GROUP BY day, region")")
done
# The morning page over the same 100,000 customers (today recorded, the ladder's preview over every
# open invoice), against reading the day's history rows in force, which the page must at least do.
declare -a page page_base
for r in $(seq 1 "$ROUNDS"); do
    page+=("$(ms portfolio "SELECT length(credit.portfolio_html())")")
    page_base+=("$(ms portfolio "SELECT count(*), sum(h.overdue), max(h.utilization) FROM credit.history h
                                  WHERE h.valid_from <= current_date AND (h.valid_until IS NULL OR h.valid_until > current_date)")")
done
year_rows=$(pg "$DIR" "$PORT" -d portfolio -At -c "SELECT count(*) FROM credit.portfolio_history WHERE day > current_date - 365")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "### Credit history at scale ($(date -u +%F), $ROUNDS interleaved rounds, medians)"
    echo
    echo "Machine: $(nproc) cores ($cpu), PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), release build."
    echo
    echo "| what | median ms | all rounds (ms) | baseline | ratio |"
    echo "|---|---:|---|---|---:|"
    echo "| credit.backfill_history: two years for 10,000 customers (640,000 documents; changes, limits and states from events, portfolio) | $(m backfill) | ${runs[backfill]}| plain SQL of every customer's figures for every day into a table: $(m backfill_base) ms | $(ratio "$(m backfill)" "$(m backfill_base)") |"
    echo "| the daily recording (run_daily's history step), its first day over 100,000 customers (a row each, the portfolio) | $(m daily) | ${runs[daily]}| plain SQL of today's figures (buckets included) of every customer into a table: $(m daily_base) ms | $(ratio "$(m daily)" "$(m daily_base)") |"
    echo "| a year of portfolio history by region (credit.portfolio_daily, $year_rows rows) | $(echo "${year[*]}" | median) | ${year[*]} | | |"
    echo "| credit.portfolio_html(): the morning page over 100,000 customers | $(echo "${page[*]}" | median) | ${page[*]} | reading the day's history rows in force: $(echo "${page_base[*]}" | median) ms | $(ratio "$(echo "${page[*]}" | median)" "$(echo "${page_base[*]}" | median)") |"
    echo
    echo "Storage: $storage. Outputs: $compare."
} | tee "$OUT/history.md"
