#!/usr/bin/env bash
# Guard throughput benchmark: plain INSERT vs pg_credit's guard vs a hand-written PL/pgSQL trigger,
# all in the same run on the same cluster, medians of several interleaved rounds; plus the O(1)
# check (a customer with 1 open invoice/order vs one with 10,000 of each); the hot customer (every
# client ordering for one customer).
#   bench/run.sh            # 5 rounds of 20 s per variant
#   ROUNDS=3 SECONDS_PER_RUN=10 bench/run.sh
# Results are printed and written to target/bench/guard.md (BENCHMARKS.md quotes them).
source "$(dirname "$0")/../scripts/common.sh"
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
CLIENTS=${CLIENTS:-8}
DIR=/tmp/pg_credit_bench
PORT=5493
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

ensure_deps
install_extension release
start_cluster "$DIR" "$PORT"
trap 'stop_cluster "$DIR"' EXIT
pg "$DIR" "$PORT" -c "CREATE DATABASE bench"
log "loading benchmark schema"
pg "$DIR" "$PORT" -d bench -f "$ROOT/bench/setup.sql" >/dev/null

tps() { # script clients seconds
    "$PGBIN/pgbench" -n -M prepared -h "$DIR" -p "$PORT" -U postgres -c "$2" -j "$(( $2 < 2 ? 1 : 2 ))" -T "$3" -f "$1" bench 2>&1 \
        | awk '/^tps = /{print $3}'
}

declare -A results
for r in $(seq 1 "$ROUNDS"); do
    for v in plain guarded plpgsql; do
        t=$(tps "$ROOT/bench/insert_$v.pgbench" "$CLIENTS" "$SECONDS_PER_RUN")
        results[$v]+="$t "
        log "round $r $v: $t tps"
    done
    pg "$DIR" "$PORT" -d bench -c "CHECKPOINT" >/dev/null
done
for r in 1 2 3; do   # interleaved, so table growth during the run favours neither
    for v in SMALL BIG; do
        t=$(tps "$ROOT/bench/insert_$v.pgbench" 1 "$(( SECONDS_PER_RUN / 2 ))")
        results[$v]+="$t "
        log "O(1) $v round $r: $t tps"
    done
done
# Hot customer: every client orders for the same customer (the row-lock design serialises them).
for r in $(seq 1 "$ROUNDS"); do
    for v in plain guarded plpgsql; do
        t=$(tps "$ROOT/bench/insert_hot_$v.pgbench" "$CLIENTS" "$SECONDS_PER_RUN")
        results[hot_$v]+="$t "
        log "hot round $r $v: $t tps"
    done
done
# A refused order: with its order_refused event spooled for the recorder, and without recording.
pg "$DIR" "$PORT" -d bench -c "INSERT INTO credit.account (customer, credit_limit) VALUES ('REFUSED', 0)" >/dev/null
refusal_ms() { # on|off: milliseconds per refused order, 200 refusals in one session
    pg "$DIR" "$PORT" -d bench -At -c "SET pg_credit.record_refusals = $1" -c "
      DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
        FOR i IN 1..200 LOOP
          BEGIN INSERT INTO bench.orders_guarded (customer, amount) VALUES ('REFUSED', 1); EXCEPTION WHEN check_violation THEN NULL; END;
        END LOOP;
        RAISE WARNING 'ms %', round(extract(epoch FROM clock_timestamp() - t0) * 1000 / 200, 3);
      END \$\$" 2>&1 | awk '/ms /{print $NF}'
}
for r in 1 2 3; do
    for v in off on; do
        t=$(refusal_ms "$v")
        results[refusal_$v]+="$t "
        log "refusal round $r, recording $v: $t ms"
    done
done
pg "$DIR" "$PORT" -d bench -Atc "SELECT credit.record_refusals()" >/dev/null
recorded=$(pg "$DIR" "$PORT" -d bench -Atc "SELECT count(*) FROM credit.event WHERE kind = 'order_refused'")
drift=$(pg "$DIR" "$PORT" -d bench -Atc "SELECT count(*) FROM credit.verify()")

m() { echo "${results[$1]}" | median; }
plain=$(m plain); guarded=$(m guarded); plpgsql=$(m plpgsql); small=$(m SMALL); big=$(m BIG)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "### Guarded INSERT throughput ($(date -u +%F), pgbench -M prepared, $CLIENTS clients, ${SECONDS_PER_RUN}s x $ROUNDS rounds, medians)"
    echo
    echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), synchronous_commit=on, release build."
    echo
    echo "| variant | median tps | all rounds | ratio to plain INSERT |"
    echo "|---|---:|---|---:|"
    echo "| plain INSERT (no trigger) | $plain | ${results[plain]}| 1.00 |"
    echo "| pg_credit guard | $guarded | ${results[guarded]}| $(ratio "$guarded" "$plain") |"
    echo "| hand-written PL/pgSQL trigger | $plpgsql | ${results[plpgsql]}| $(ratio "$plpgsql" "$plain") |"
    echo
    echo "pg_credit guard / PL/pgSQL reference: **$(ratio "$guarded" "$plpgsql")**."
    echo
    echo "Hot customer, $CLIENTS clients all ordering for one customer: plain INSERT $(m hot_plain) tps (${results[hot_plain]}), pg_credit guard $(m hot_guarded) tps (${results[hot_guarded]}; ratio $(ratio "$(m hot_guarded)" "$(m hot_plain)")), PL/pgSQL reference $(m hot_plpgsql) tps (${results[hot_plpgsql]}; ratio $(ratio "$(m hot_plpgsql)" "$(m hot_plain)"))."
    echo
    echo "O(1) check, 1 client: customer with 1 open invoice and order $small tps; with 10,000 open invoices and 10,000 open orders $big tps (ratio $(ratio "$big" "$small"))."
    echo
    echo "A refused order (200 in one session, 3 rounds, medians): $(m refusal_off) ms without recording, $(m refusal_on) ms with its order_refused event spooled for the recorder (ratio $(ratio "$(m refusal_on)" "$(m refusal_off)")); $recorded events recorded (expected $((3 * 200)))."
    echo
    echo "credit.verify() after the run: $drift drifting account(s)."
} | tee "$OUT/guard.md"
