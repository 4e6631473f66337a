#!/usr/bin/env bash
# Statements and reconciliation at scale (bench/statements_data.sql): one customer's statement
# with 10,000 documents in a year; a statement run over 100,000 customers and 5,000,000
# documents; reconciling 1,000,000 finance items with 1,000,000 open items. Each against a plain
# SQL baseline of the same output, run interleaved with it ROUNDS times (writes rolled back);
# medians and ratios go to target/bench/statements.md (BENCHMARKS.md quotes them). The outputs
# are then compared: the baseline's rows must be the statements' rows.
#   bench/statements.sh        ROUNDS=3 bench/statements.sh
source "$(dirname "$0")/../scripts/common.sh"
ROUNDS=${ROUNDS:-5}
DIR=/tmp/pg_credit_bench_statements
PORT=5496
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
[ -n "${KEEP_CLUSTER:-}" ] || trap 'stop_cluster "$DIR"' EXIT
pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE statements" >/dev/null
log "generating data (takes a few minutes)"
start=$(date +%s)
pg "$DIR" "$PORT" -d statements -f "$ROOT/bench/statements_data.sql" >/dev/null
log "generated in $(( $(date +%s) - start )) s"

declare -A sql
name=""
while IFS= read -r line; do
    if [[ $line == "-- name: "* ]]; then name=${line#-- name: }; elif [ -n "$name" ]; then sql[$name]+="$line"; fi
done < "$ROOT/bench/statements_queries.sql"
baseline() { # SCOPE START END: the baseline's INSERT for that scope and period
    local q=${sql[baseline]}
    q=${q//\{SCOPE\}/$1}; q=${q//\{START\}/$2}; q=${q//\{END\}/$3}
    printf '%s' "$q"
}
sql[baseline_big]=${sql[baseline_big]//\{BASELINE_BIG\}/$(baseline "a.customer = 'BIG'" 2025-01-01 2025-12-31)}
sql[baseline_run]=${sql[baseline_run]//\{BASELINE_RUN\}/$(baseline "a.customer <> 'BIG'" 2026-10-01 2026-10-31)}
order=(statement_big baseline_big statement_run baseline_run reconcile full_outer_join)

ms() { # one run, the server-side duration in ms as psql's \timing reports it
    "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d statements -v ON_ERROR_STOP=1 -c '\timing on' -c "${sql[$1]}" \
        | awk '/^Time: /{print $2}' | sort -g | tail -1
}
declare -A runs
for q in "${order[@]}"; do ms "$q" >/dev/null; done   # warm the cache
for r in $(seq 1 "$ROUNDS"); do
    for q in "${order[@]}"; do
        t=$(ms "$q"); runs[$q]+="$t "; log "round $r $q: $t ms"
    done
done
m() { echo "${runs[$1]}" | median; }

# The outputs, compared: per customer and section, the baseline's rows are the statements' rows.
log "comparing outputs"
same=$(pg "$DIR" "$PORT" -d statements -At <<SQL
CREATE TABLE baseline_lines (customer text, section text, line bigint, balance numeric, debit numeric, credit numeric, PRIMARY KEY (customer, section, line));
$(baseline "a.customer <> 'BIG'" 2026-10-01 2026-10-31)
$(baseline "a.customer = 'BIG'" 2025-01-01 2025-12-31)
SELECT count(*) FROM credit.statement_run('2026-10-31');
WITH issued AS (
    SELECT s.customer, l.section, count(*) AS n, sum(l.balance) AS balance, sum(l.debit) AS debit, sum(l.credit) AS credit
      FROM credit.statement_line l JOIN credit.statement s ON s.id = l.statement_id GROUP BY 1, 2
    UNION ALL
    SELECT 'BIG', section, count(*), sum(balance), sum(debit), sum(credit)
      FROM credit.statement('BIG', '2025-01-01', '2025-12-31') GROUP BY section),
base AS (SELECT customer, section, count(*) AS n, sum(balance) AS balance, sum(debit) AS debit, sum(credit) AS credit
           FROM baseline_lines GROUP BY 1, 2)
SELECT format('%s customer-sections compared, %s differ', count(*),
              count(*) FILTER (WHERE i IS DISTINCT FROM b))
  FROM (SELECT coalesce(i.customer, b.customer) AS customer, coalesce(i.section, b.section) AS section,
               row(i.n, i.balance, i.debit, i.credit) AS i, row(b.n, b.balance, b.debit, b.credit) AS b
          FROM issued i FULL JOIN base b ON b.customer = i.customer AND b.section = i.section) x;
SELECT format('%s differences found by credit.reconcile, %s by the FULL OUTER JOIN',
              (SELECT count(*) FROM credit.reconcile('2026-10-31') WHERE kind <> 'balance_differs'),
              (${sql[full_outer_join]%;}));
SQL
)
counts=$(pg "$DIR" "$PORT" -d statements -At -c "
  SELECT format('%s customers, %s documents (%s invoices, %s payments), %s allocations, %s open items on 2026-10-31, %s finance items',
    (SELECT count(*) FROM credit.account),
    (SELECT count(*) FROM credit.invoice) + (SELECT count(*) FROM credit.settlement),
    (SELECT count(*) FROM credit.invoice), (SELECT count(*) FROM credit.settlement), (SELECT count(*) FROM credit.allocation),
    (SELECT count(*) FROM credit.aging('2026-10-31')), (SELECT count(*) FROM credit.finance_item))")
statements=$(pg "$DIR" "$PORT" -d statements -At -c "
  SELECT format('%s statements with %s lines', (SELECT count(*) FROM credit.statement), (SELECT count(*) FROM credit.statement_line))")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "### Statements and reconciliation at scale ($(date -u +%F), $ROUNDS interleaved rounds, medians)"
    echo
    echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), release build. Data: $counts."
    echo
    echo "| what | median ms | all rounds (ms) | baseline | ratio | target |"
    echo "|---|---:|---|---|---:|---|"
    echo "| credit.statement: one customer, 10,000 documents in 2025 | $(m statement_big) | ${runs[statement_big]}| plain SQL of the same rows into a table: $(m baseline_big) ms | $(ratio "$(m statement_big)" "$(m baseline_big)") | |"
    echo "| credit.statement_run: October for 100,000 customers (issued, numbered, lines written, events) | $(m statement_run) | ${runs[statement_run]}| plain SQL of the same lines into a table: $(m baseline_run) ms | $(ratio "$(m statement_run)" "$(m baseline_run)") | |"
    echo "| credit.reconcile: 1,000,000 finance items against 1,000,000 open items (run and differences kept) | $(m reconcile) | ${runs[reconcile]}| hand-written FULL OUTER JOIN of credit.aging and the items: $(m full_outer_join) ms | $(ratio "$(m reconcile)" "$(m full_outer_join)") | ≤ 2 |"
    echo
    echo "Outputs: $(echo "$same" | sed -n 2p) (the run issued $statements); $(echo "$same" | sed -n 3p)."
} | tee "$OUT/statements.md"
