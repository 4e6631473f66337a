#!/usr/bin/env bash
# Collections at scale: 10,000 customers, 200,000 invoices over the past year (about a third paid),
# then credit.run_collections for today: the first run (creates every task, holds, referrals), a
# second run (finds nothing to do: exactly once), and as the baseline in the same run the plain
# SELECT that only counts the (invoice, level) pairs reached — what any collections job must at
# least read. Medians of ROUNDS; results to target/bench/collections.md (BENCHMARKS.md quotes them).
#   bench/collections.sh        ROUNDS=3 bench/collections.sh
source "$(dirname "$0")/../scripts/common.sh"
ROUNDS=${ROUNDS:-3}
DIR=/tmp/pg_credit_bench_collections
PORT=5494
OUT="$ROOT/target/bench"
mkdir -p "$OUT"
ensure_deps
install_extension release
start_cluster "$DIR" "$PORT"
trap 'stop_cluster "$DIR"' EXIT
pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE coll"
log "generating 10,000 customers and 200,000 invoices"
start=$(date +%s)
pg "$DIR" "$PORT" -d coll >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit, terms_days)
SELECT 'C' || lpad(i::text, 5, '0'), 1e6, 30 FROM generate_series(1, 10000) i;
SELECT count(credit.post_invoice('C' || lpad((1 + i % 10000)::text, 5, '0'), 'I-' || i, 100 + i % 900,
                                 current_date - 1 - (i * 7919) % 365))
  FROM generate_series(1, 200000) i;
-- About a third paid in full, on their due date.
SELECT count(credit.post_payment(customer, amount, due_date, doc_no))
  FROM credit.invoice WHERE id % 3 = 0;
VACUUM ANALYZE;
SQL
log "generated in $(( $(date +%s) - start )) s"

# The pairs reached, read the way run_collections reads them (open as of the day), without writing.
BASELINE="WITH cand AS (
    SELECT i.id, i.due_date FROM credit.invoice i
     WHERE i.id IN (SELECT x.id FROM credit.invoice x WHERE x.open_amount > 0
                    UNION SELECT x.id FROM credit.invoice x WHERE x.last_applied_on > current_date)
       AND i.doc_date <= current_date AND NOT i.disputed
       AND i.open_amount + coalesce((SELECT sum(al.amount) FROM credit.allocation al
                                      WHERE al.invoice_id = i.id AND al.applied_on > current_date), 0) > 0)
  SELECT count(*) FROM cand c JOIN credit.dunning_level l ON l.ladder = 'default' AND NOT l.retired
                      AND current_date - c.due_date >= l.days"
ms() { # DB SQL -> server-side ms
    "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$1" -c '\timing on' -c "$2" | awk '/^Time: /{print $2}' | tail -1
}
declare -A runs
for r in $(seq 1 "$ROUNDS"); do
    # Each round on a fresh copy of the generated database: no tasks yet.
    pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS coll_run" -c "CREATE DATABASE coll_run TEMPLATE coll"
    runs[baseline]+="$(ms coll_run "$BASELINE") "
    runs[first]+="$(ms coll_run "SELECT count(*) FROM credit.run_collections()") "
    runs[second]+="$(ms coll_run "SELECT count(*) FROM credit.run_collections()") "
    log "round $r: baseline ${runs[baseline]} first ${runs[first]} second ${runs[second]}"
done
tasks=$(pg "$DIR" "$PORT" -d coll_run -Atc "SELECT count(*) FROM credit.collection_task")
held=$(pg "$DIR" "$PORT" -d coll_run -Atc "SELECT count(*) FROM credit.account WHERE status = 'hold'")
open=$(pg "$DIR" "$PORT" -d coll -Atc "SELECT count(*) FROM credit.invoice WHERE open_amount > 0")
pairs=$(pg "$DIR" "$PORT" -d coll -Atc "$BASELINE")
m() { echo "${runs[$1]}" | median; }
{
    echo "### Collections run ($(date -u +%F), 10,000 customers, $open open of 200,000 invoices, $ROUNDS rounds, medians)"
    echo
    echo "| step | median ms | all rounds | ratio to baseline |"
    echo "|---|---:|---|---:|"
    echo "| baseline: count the (invoice, level) pairs reached | $(m baseline) | ${runs[baseline]}| 1.00 |"
    echo "| first run_collections (creates $tasks tasks, $held accounts held) | $(m first) | ${runs[first]}| $(ratio "$(m first)" "$(m baseline)") |"
    echo "| second run_collections (nothing to do) | $(m second) | ${runs[second]}| $(ratio "$(m second)" "$(m baseline)") |"
    echo
    echo "Pairs reached: $pairs; tasks after the last round: $tasks (one per pair: exactly once)."
} | tee "$OUT/collections.md"
