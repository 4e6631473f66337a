#!/usr/bin/env bash
# Aging and analytics at scale: 100,000 customers, 5,000,000 open invoices, 2,000,000 settled ones
# with payments; 10,000,000 payment experiences. Each query runs ROUNDS times, interleaved with its
# baseline; medians and ratios go to target/bench/aging.md (BENCHMARKS.md quotes them).
#   bench/aging.sh        ROUNDS=3 bench/aging.sh
source "$(dirname "$0")/../scripts/common.sh"
ROUNDS=${ROUNDS:-5}
DIR=/tmp/pg_credit_bench_aging
PORT=5495
OUT="$ROOT/target/bench"
mkdir -p "$OUT"
ensure_deps
install_extension release
start_cluster "$DIR" "$PORT"
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_buffers = 6GB
work_mem = 256MB
max_parallel_workers_per_gather = 2
max_wal_size = 8GB
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -w restart -l "$DIR/server.log" >/dev/null
[ -n "${KEEP_CLUSTER:-}" ] || trap 'stop_cluster "$DIR"' EXIT   # KEEP_CLUSTER=1 leaves it running for EXPLAIN
pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE aging"
log "generating data (takes a few minutes)"
start=$(date +%s)
pg "$DIR" "$PORT" -d aging -f "$ROOT/bench/aging_data.sql" >/dev/null
log "generated in $(( $(date +%s) - start )) s"

declare -A sql
name=""
while IFS= read -r line; do
    if [[ $line == "-- name: "* ]]; then name=${line#-- name: }; else sql[$name]+="$line"; fi
done < "$ROOT/bench/aging_queries.sql"
order=(aging_by_customer handwritten_by_customer aging_today aging_30_days_ago weighted_days_late sql_weighted_days_late)

ms() { # one run, server-side duration in ms as psql's \timing reports it
    "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d aging -c '\timing on' -c "${sql[$1]}" \
        | awk '/^Time: /{print $2}' | tail -1
}
declare -A runs
for q in "${order[@]}"; do ms "$q" >/dev/null; done   # warm the cache
for r in $(seq 1 "$ROUNDS"); do
    for q in "${order[@]}"; do
        t=$(ms "$q"); runs[$q]+="$t "; log "round $r $q: $t ms"
    done
done
m() { echo "${runs[$1]}" | median; }
same=$("$PGBIN/psql" -X -At -h "$DIR" -p "$PORT" -U postgres -d aging -c "
  SELECT (SELECT row(sum(not_due), sum(days_1_30), sum(days_31_60), sum(days_61_90), sum(over_90), sum(total)) FROM credit.aging_by_customer)
       = (SELECT row(sum(CASE WHEN current_date - due_date <= 0 THEN open_amount ELSE 0 END),
                     sum(CASE WHEN current_date - due_date BETWEEN 1 AND 30 THEN open_amount ELSE 0 END),
                     sum(CASE WHEN current_date - due_date BETWEEN 31 AND 60 THEN open_amount ELSE 0 END),
                     sum(CASE WHEN current_date - due_date BETWEEN 61 AND 90 THEN open_amount ELSE 0 END),
                     sum(CASE WHEN current_date - due_date > 90 THEN open_amount ELSE 0 END), sum(open_amount))
            FROM credit.invoice WHERE open_amount > 0)")
counts=$("$PGBIN/psql" -X -At -h "$DIR" -p "$PORT" -U postgres -d aging -c "
  SELECT format('%s customers, %s open invoices, %s invoices in all, %s allocations, %s experiences',
    (SELECT count(*) FROM credit.account), (SELECT count(*) FROM credit.invoice WHERE open_amount > 0),
    (SELECT count(*) FROM credit.invoice), (SELECT count(*) FROM credit.allocation), (SELECT count(*) FROM public.experience))")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "### Aging and analytics at scale ($(date -u +%F), $ROUNDS interleaved rounds, medians, parallel workers per gather: 2)"
    echo
    echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), release build. Data: $counts."
    echo
    echo "| query | median ms | all rounds (ms) | baseline | ratio | target |"
    echo "|---|---:|---|---|---:|---|"
    echo "| credit.aging_by_customer | $(m aging_by_customer) | ${runs[aging_by_customer]}| hand-written one-pass sum(CASE …) per customer: $(m handwritten_by_customer) ms | $(ratio "$(m aging_by_customer)" "$(m handwritten_by_customer)") | ≤ 1.25 |"
    echo "| credit.aging(current_date - 30) | $(m aging_30_days_ago) | ${runs[aging_30_days_ago]}| credit.aging(current_date): $(m aging_today) ms | $(ratio "$(m aging_30_days_ago)" "$(m aging_today)") | ≤ 2 |"
    echo "| credit.weighted_days_late, 10M rows | $(m weighted_days_late) | ${runs[weighted_days_late]}| sum(days*amount)/sum(amount): $(m sql_weighted_days_late) ms | $(ratio "$(m weighted_days_late)" "$(m sql_weighted_days_late)") | ≤ 1.5 |"
    echo
    echo "aging_by_customer bucket totals equal the hand-written query's: $same."
} | tee "$OUT/aging.md"
