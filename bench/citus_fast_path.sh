#!/usr/bin/env bash
# The fast path per node on Citus (docs/citus.md) against the row path in the same run, and against
# one node with and without its fast path: orders per second of 10,000 customers, of one hot
# customer, and of the hot customer's orders each in a transaction committed by a second statement
# (bench/insert_hot_txn_guarded.pgbench), through a coordinator with two workers on this machine,
# pg_credit preloaded on every node; medians of interleaved rounds. The row path is the same
# servers with pg_credit.fast_path off (on Citus set on the workers, where the guard runs).
#   bench/citus_fast_path.sh                      # 3 rounds of 10 s per variant, 16 clients
#   ROUNDS=5 SECONDS_PER_RUN=20 CLIENTS=32 bench/citus_fast_path.sh
# Results are printed and written to target/bench/citus_fast_path.md (BENCHMARKS.md quotes them).
source "$(dirname "$0")/../scripts/common.sh"
source "$ROOT/tests/citus/cluster.sh"
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-16}
ONE=/tmp/pg_credit_bench_fp_one ONE_PORT=5496
CITUS=/tmp/pg_credit_bench_fp_citus CITUS_PORT=5530
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

ensure_deps
ensure_citus || { log "Citus could not be built: no benchmark"; exit 1; }
install_extension release
EXTRA_CONF="shared_preload_libraries = 'pg_credit'
shared_buffers = 128MB
max_connections = 300" start_cluster "$ONE" "$ONE_PORT"
EXTRA_CITUS_CONF="shared_preload_libraries = 'citus,pg_credit'" citus_start "$CITUS" "$CITUS_PORT"
trap 'stop_cluster "$ONE"; citus_stop "$CITUS"' EXIT
pg "$ONE" "$ONE_PORT" -c "CREATE DATABASE bench" -d postgres
pg "$ONE" "$ONE_PORT" -d bench -c "CREATE EXTENSION pg_credit"
citus_db "$CITUS" "$CITUS_PORT" bench
pg "$ONE" "$ONE_PORT" -d bench -v citus=0 -f "$ROOT/bench/citus_setup.sql" >/dev/null
pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -v citus=1 -f "$ROOT/bench/citus_setup.sql" >/dev/null
for _ in $(seq 1 300); do   # the single node's flusher recounts first
    [ "$(pg "$ONE" "$ONE_PORT" -d bench -Atc "SELECT state FROM credit.fast_path_status()")" = on ] && break
    sleep 0.1
done
workers() { # SQL run on each worker's bench database
    local i
    for i in 1 2; do pg "$CITUS/${citus_nodes[$i]}" $((CITUS_PORT + i)) -d bench -Atc "$1"; done
}
state_one=$(pg "$ONE" "$ONE_PORT" -d bench -Atc "SELECT state FROM credit.fast_path_status()")
state_citus=$(workers "SELECT state FROM credit.fast_path_status()" | sort -u | paste -sd ';')

tps() { # host port script
    "$PGBIN/pgbench" -n -M prepared -h "$1" -p "$2" -U postgres -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -f "$3" bench 2>&1 \
        | awk '/^tps = /{print $3}'
}
declare -A results
VARIANTS="guarded hot_guarded hot_txn_guarded"
for r in $(seq 1 "$ROUNDS"); do
    for v in $VARIANTS; do
        script="$ROOT/bench/insert_$v.pgbench"
        t=$(tps "$ONE" "$ONE_PORT" "$script"); results[one_fast_$v]+="$t "; log "round $r one node fast path $v: $t tps"
        t=$(PGOPTIONS="-c pg_credit.fast_path=off" tps "$ONE" "$ONE_PORT" "$script"); results[one_row_$v]+="$t "
        log "round $r one node row path $v: $t tps"
        t=$(tps "$CITUS/coordinator" "$CITUS_PORT" "$script"); results[citus_fast_$v]+="$t "; log "round $r Citus fast path $v: $t tps"
        workers "ALTER SYSTEM SET pg_credit.fast_path = off" >/dev/null; workers "SELECT pg_reload_conf()" >/dev/null
        t=$(tps "$CITUS/coordinator" "$CITUS_PORT" "$script"); results[citus_row_$v]+="$t "; log "round $r Citus row path $v: $t tps"
        workers "ALTER SYSTEM RESET pg_credit.fast_path" >/dev/null; workers "SELECT pg_reload_conf()" >/dev/null
    done
done
drift_one=$(pg "$ONE" "$ONE_PORT" -d bench -Atc "SELECT count(*) FROM credit.verify()")
drift_citus=$(pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -Atc "SELECT count(*) FROM credit.verify()")
left_citus=$(workers "SELECT customers || '/' || reserved_in_flight || '/' || committed_not_flushed FROM credit.fast_path_status()" | paste -sd ' ')
m() { median <<<"${results[$1]}"; }
{
    echo "### The fast path per node on Citus ($(date -u +%Y-%m-%d), $(nproc) cores, $CLIENTS clients, $ROUNDS rounds of $SECONDS_PER_RUN s, medians)"
    echo
    echo "Citus $CITUS_VERSION: a coordinator and two workers on this machine, pg_credit preloaded on every node (\"$state_citus\");"
    echo "one node: the same PostgreSQL 15, pg_credit preloaded (\"$state_one\"). Row path: the same servers with pg_credit.fast_path off."
    echo
    echo "| variant | one node row path | one node fast path | fast / row | Citus row path | Citus fast path | fast / row | Citus fast / one node fast |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for v in $VARIANTS; do
        printf "| %s | %.0f | %.0f | %s | %.0f | %.0f | %s | %s |\n" "$v" \
            "$(m one_row_$v)" "$(m one_fast_$v)" "$(ratio "$(m one_fast_$v)" "$(m one_row_$v)")" \
            "$(m citus_row_$v)" "$(m citus_fast_$v)" "$(ratio "$(m citus_fast_$v)" "$(m citus_row_$v)")" \
            "$(ratio "$(m citus_fast_$v)" "$(m one_fast_$v)")"
    done
    echo
    echo "All rounds, Citus fast path: guarded ${results[citus_fast_guarded]}; hot ${results[citus_fast_hot_guarded]}; hot in a transaction ${results[citus_fast_hot_txn_guarded]}."
    echo "All rounds, Citus row path: guarded ${results[citus_row_guarded]}; hot ${results[citus_row_hot_guarded]}; hot in a transaction ${results[citus_row_hot_txn_guarded]}."
    echo "credit.verify() after the run: $drift_one drifting accounts on one node, $drift_citus on Citus; each worker's shared memory after it (customers / reserved in flight / committed not written): $left_citus."
} | tee "$OUT/citus_fast_path.md"
