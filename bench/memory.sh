#!/usr/bin/env bash
# Backend memory over many guarded inserts in one session: one pgbench client inserts N orders
# (default 1,000,000) one statement at a time through the guard, across 1,000 customers, while
# this script samples the backend's private memory (RssAnon in /proc/PID/status: shared buffers it
# touches do not count) every tenth of the run.
#   bench/memory.sh                    # 1,000,000 inserts, results to target/bench/memory.md
#   N=200000 bench/memory.sh --check   # test mode (scripts/test.sh): fails if memory grows by more
#                                      # than 8 MB between the first sample and the last
# Uses the installed build on a cluster of its own (port 5491).
source "$(dirname "$0")/../scripts/common.sh"
N=${N:-1000000}
CHECK=${1:-}
DIR=/tmp/pg_credit_memory
PORT=5491
OUT="$ROOT/target/bench"
mkdir -p "$OUT"
if [ "$CHECK" != --check ]; then ensure_deps; install_extension release; fi
start_cluster "$DIR" "$PORT"
trap 'stop_cluster "$DIR"' EXIT
pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE mem" >/dev/null
pg "$DIR" "$PORT" -d mem >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit) SELECT 'M' || i, 1e12 FROM generate_series(1, 1000) i;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}');
SQL
cat >"$DIR/insert.pgbench" <<'PGB'
\set c random(1, 1000)
INSERT INTO orders (customer, amount) VALUES ('M' || :c, 1);
PGB
"$PGBIN/pgbench" -n -M prepared -h "$DIR" -p "$PORT" -U postgres -c 1 -t "$N" -f "$DIR/insert.pgbench" mem \
    > "$DIR/pgbench.log" 2>&1 &
bench=$!
# The inserting backend: looked up at every sample (pgbench opens a short-lived connection before
# the run's own), and it must be the same backend throughout.
backend() {
    pg "$DIR" "$PORT" -d postgres -At -c "SELECT pid FROM pg_stat_activity
        WHERE application_name = 'pgbench' AND datname = 'mem' AND state IS NOT NULL ORDER BY backend_start DESC LIMIT 1" || true
}
samples=()
pids=()
step=$((N / 10))
next=$step
while kill -0 "$bench" 2>/dev/null; do
    done_rows=$(pg "$DIR" "$PORT" -d mem -At -c "SELECT coalesce(max(id), 0) FROM orders" || echo 0)
    if ((done_rows >= next)); then
        pid=$(backend)
        kb=$(awk '/^RssAnon:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
        if [ -n "$pid" ] && [ -n "$kb" ]; then samples+=("$done_rows:$kb"); pids+=("$pid"); fi
        next=$((next + step))
    fi
    sleep 0.5
done
wait "$bench" || { echo "pgbench failed:"; tail -3 "$DIR/pgbench.log"; exit 1; }
grep -E "number of transactions actually processed|tps = " "$DIR/pgbench.log"
first=${samples[0]#*:}; last=${samples[${#samples[@]}-1]#*:}
growth=$(( (last - first) / 1024 ))
drift=$(pg "$DIR" "$PORT" -d mem -At -c "SELECT count(*) FROM credit.verify()")
{
    echo "### Backend memory over $N guarded inserts in one session ($(date -u +%F))"
    echo
    echo "Private memory (RssAnon) of the inserting backend after each tenth of the run, in MB:"
    echo
    echo "| inserts | RssAnon MB |"
    echo "|---:|---:|"
    for s in "${samples[@]}"; do echo "| ${s%%:*} | $(awk -v k="${s#*:}" 'BEGIN{printf "%.1f", k/1024}') |"; done
    echo
    echo "Growth from the first sample to the last: $growth MB. credit.verify() after the run: $drift."
} | tee "$OUT/memory.md"
if [ "$CHECK" = --check ]; then
    ((${#samples[@]} >= 5)) || { echo "too few samples"; exit 1; }
    [ "$(printf '%s\n' "${pids[@]}" | sort -u | wc -l)" = 1 ] || { echo "the samples came from different backends: ${pids[*]}"; exit 1; }
    ((growth <= 8)) || { echo "backend memory grew by $growth MB"; exit 1; }
    [ "$drift" = 0 ] || exit 1
fi
