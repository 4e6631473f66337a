#!/usr/bin/env bash
# Refusal recording under load (issue 11): how fast refusals are recorded, what a refused order
# costs its client, and whether a flood of refusals slows a customer's accepted orders.
#   bench/refusals.sh                 # 30 s per phase
#   SECONDS_PER_RUN=10 bench/refusals.sh
# Phases, each on the same throwaway cluster (release build):
#   1. 32 clients refuse orders as fast as they can: refusals/s the clients saw, refused-order
#      latency p50/p99, and that every refusal was recorded; then one client alone, for the
#      refusal's own latency;
#   2. the recorder alone: a backlog of spooled refusals built while the recorder is held back (a
#      lock on its progress table — the refusing clients do not notice), then the time it takes
#      to record it: recorded/s;
#   3. one client placing small orders that fit for customer HOT, while 31 clients flood (a) HOT,
#      (b) other customers, with refused orders; and (c) alone: its latency p50/p99 in each.
# Results are printed and written to target/bench/refusals.md (BENCHMARKS.md quotes them).
source "$(dirname "$0")/../scripts/common.sh"
SECS=${SECONDS_PER_RUN:-30}
DIR=/tmp/pg_credit_bench_refusals
PORT=5494
OUT="$ROOT/target/bench"
WORK=$(mktemp -d /tmp/pg_credit_bench_refusals.XXXXXX)
mkdir -p "$OUT"
ensure_deps
install_extension release
start_cluster "$DIR" "$PORT"
trap 'stop_cluster "$DIR"; rm -rf "$WORK"' EXIT
chown postgres "$WORK"
pg "$DIR" "$PORT" -c "CREATE DATABASE bench"
pg "$DIR" "$PORT" -d bench >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit) SELECT 'R' || i, 1000 FROM generate_series(1, 1000) i;
INSERT INTO credit.account (customer, credit_limit) VALUES ('HOT', 1000000000);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL,
                     status text NOT NULL DEFAULT 'open');
SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}');
-- A client that sees the refusal (and goes on).
CREATE FUNCTION refuse(customer text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO orders (customer, amount) VALUES (customer, 1000000000000);
EXCEPTION WHEN check_violation THEN NULL;
END $$;
SQL
cat >"$WORK/refuse_many.pgbench" <<'EOF'
\set c random(1, 1000)
SELECT refuse('R' || :c);
EOF
cat >"$WORK/refuse_hot.pgbench" <<'EOF'
SELECT refuse('HOT');
EOF
cat >"$WORK/accept_hot.pgbench" <<'EOF'
INSERT INTO orders (customer, amount) VALUES ('HOT', 1);
EOF
chown postgres "$WORK"/*

# pgbench as postgres, per-transaction latencies (µs) in $WORK/<name>.log*
bench() { # name script clients [-M prepared]
    local name=$1 script=$2 clients=$3
    runuser -u postgres -- "$PGBIN/pgbench" -n -M prepared -h "$DIR" -p "$PORT" -U postgres -c "$clients" -j 2 -T "$SECS" \
        -l --log-prefix="$WORK/$name" -f "$script" bench 2>&1
}
percentile() { # p files...: latency percentile in ms from pgbench logs
    local p=$1; shift
    cat "$@" | awk '{print $3}' | sort -n | awk -v p="$p" '{a[NR]=$1} END{i=int(NR*p/100); if(i<1)i=1; printf "%.2f", a[i]/1000}'
}
recorded() { pg "$DIR" "$PORT" -d bench -At -c "SELECT count(*) FROM credit.event WHERE kind = 'order_refused'"; }
wait_recorded() { # seconds waited until nothing is pending (0.05 s resolution)
    local t0 t1
    t0=$(date +%s.%N)
    for _ in $(seq 1 6000); do
        [ "$(pg "$DIR" "$PORT" -d bench -At -c "SELECT pending FROM credit.refusal_recording")" = 0 ] && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}'
}

log "phase 1: 32 clients refusing for ${SECS}s"
out=$(bench refuse "$WORK/refuse_many.pgbench" 32)
refused_tps=$(echo "$out" | awk '/^tps = /{printf "%.0f", $3}')
refused_n=$(echo "$out" | awk '/actually processed/{print $NF}')
lag=$(wait_recorded)
rec1=$(recorded)
p50=$(percentile 50 "$WORK"/refuse.*); p99=$(percentile 99 "$WORK"/refuse.*)
log "phase 1: $refused_n refusals ($refused_tps/s), p50 $p50 ms, p99 $p99 ms; $rec1 recorded, the last $lag s after the load"

log "phase 1b: one client refusing for ${SECS}s (the refusal's own latency, no queueing for the 2 cores)"
out=$(bench single "$WORK/refuse_many.pgbench" 1)
single_tps=$(echo "$out" | awk '/^tps = /{printf "%.0f", $3}')
single_n=$(echo "$out" | awk '/actually processed/{print $NF}')
s50=$(percentile 50 "$WORK"/single.*); s99=$(percentile 99 "$WORK"/single.*)
wait_recorded >/dev/null
log "phase 1b: $single_n refusals ($single_tps/s), p50 $s50 ms, p99 $s99 ms"

log "phase 2: a backlog built while the recorder is held back, then recorded"
pg "$DIR" "$PORT" -d bench -c "SELECT credit.record_refusals()" >/dev/null
coproc HOLD { "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d bench; }
echo "BEGIN; LOCK TABLE credit.refusal_spool IN EXCLUSIVE MODE; SELECT 'locked';" >&"${HOLD[1]}"
read -r _ <&"${HOLD[0]}"
out=$(bench backlog "$WORK/refuse_many.pgbench" 32)
backlog=$(pg "$DIR" "$PORT" -d bench -At -c "SELECT pending FROM credit.refusal_recording")
before=$(recorded)
echo "ROLLBACK;" >&"${HOLD[1]}"; echo "\\q" >&"${HOLD[1]}"
drain=$(wait_recorded)
after=$(recorded)
drain_rate=$(awk -v n="$((after - before))" -v s="$drain" 'BEGIN{printf "%.0f", n/s}')
log "phase 2: backlog of $backlog refusals recorded in $drain s: $drain_rate/s"

log "phase 3: accepted orders of HOT while refusals flood HOT, flood others, or nothing"
declare -A lat
backlog_n=$(echo "$out" | awk '/actually processed/{print $NF}')
for variant in flood_hot flood_others alone; do
    case $variant in
        flood_hot) runuser -u postgres -- "$PGBIN/pgbench" -n -M prepared -h "$DIR" -p "$PORT" -U postgres -c 31 -j 2 -T "$SECS" \
                       -f "$WORK/refuse_hot.pgbench" bench >"$WORK/flood_$variant.out" 2>&1 & ;;
        flood_others) runuser -u postgres -- "$PGBIN/pgbench" -n -M prepared -h "$DIR" -p "$PORT" -U postgres -c 31 -j 2 -T "$SECS" \
                       -f "$WORK/refuse_many.pgbench" bench >"$WORK/flood_$variant.out" 2>&1 & ;;
    esac
    sleep 1
    bench "accept_$variant" "$WORK/accept_hot.pgbench" 1 >/dev/null
    wait
    wait_recorded >/dev/null
    lat[$variant]="$(percentile 50 "$WORK"/accept_$variant.*) $(percentile 99 "$WORK"/accept_$variant.*)"
    log "phase 3 $variant: accepted p50/p99 ${lat[$variant]} ms"
done
read -r hot50 hot99 <<<"${lat[flood_hot]}"; read -r oth50 oth99 <<<"${lat[flood_others]}"; read -r al50 al99 <<<"${lat[alone]}"
seen=$(pg "$DIR" "$PORT" -d bench -At -c "SELECT count(*) FROM credit.event WHERE kind = 'order_refused'")
expected=$(( refused_n + single_n + backlog_n + $(cat "$WORK"/flood_*.out | awk '/actually processed/{s+=$NF} END{print s+0}') ))
drift=$(pg "$DIR" "$PORT" -d bench -At -c "SELECT count(*) FROM credit.verify()")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "### Refusal recording ($(date -u +%F), bench/refusals.sh, ${SECS}s per phase)"
    echo
    echo "Machine: $(nproc) cores ($cpu), PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), synchronous_commit=on, release build."
    echo
    echo "| measure | value |"
    echo "|---|---:|"
    echo "| refusals the 32 clients saw (phase 1) | $refused_n ($refused_tps/s) |"
    echo "| refused-order latency p50 / p99, 32 clients on $(nproc) cores (queueing for the CPUs included) | $p50 / $p99 ms |"
    echo "| refused-order latency p50 / p99, 1 client ($single_tps refusals/s) | **$s50 / $s99 ms** |"
    echo "| recorded after phase 1 (last one recorded $lag s after the load ended) | $rec1 of $refused_n |"
    echo "| recorder alone: backlog of $backlog recorded in $drain s | **$drain_rate refusals/s** |"
    echo "| HOT's accepted orders, p50 / p99: alone | $al50 / $al99 ms |"
    echo "| … while 31 clients flood HOT with refused orders | $hot50 / $hot99 ms |"
    echo "| … while 31 clients flood other customers | $oth50 / $oth99 ms |"
    echo "| flooded HOT vs flood elsewhere (p99 ratio) | **$(ratio "$hot99" "$oth99")** |"
    echo
    echo "Refusals the clients saw in all phases: $expected; order_refused events in credit.event: $seen. credit.verify(): $drift drifting account(s)."
} | tee "$OUT/refusals.md"
