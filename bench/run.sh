#!/usr/bin/env bash
# Guard throughput benchmark: plain INSERT vs pg_credit's guard (the fast path, and the row path
# with pg_credit.fast_path off) vs a hand-written PL/pgSQL trigger vs an AFTER ROW trigger that
# does nothing (the ceiling for any trigger-based guard), all in the same run on the
# same cluster (which preloads pg_credit), medians of several interleaved rounds; plus the O(1)
# check (a customer with 1 open invoice/order vs one with 10,000 of each); the hot customer (every
# client ordering for one customer); orders committed with two-phase commit (PREPARE TRANSACTION,
# COMMIT PREPARED), where the fast path moves its reservations into the account row at PREPARE.
#   bench/run.sh            # 5 rounds of 20 s per variant
#   ROUNDS=3 SECONDS_PER_RUN=10 bench/run.sh
#   ONLY=prepared bench/run.sh   # the two-phase-commit rounds alone (written to target/bench/prepared.md)
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
EXTRA_CONF="shared_preload_libraries = 'pg_credit'" start_cluster "$DIR" "$PORT"
trap 'stop_cluster "$DIR"' EXIT
pg "$DIR" "$PORT" -c "CREATE DATABASE bench"
log "loading benchmark schema"
pg "$DIR" "$PORT" -d bench -f "$ROOT/bench/setup.sql" >/dev/null
# The fast path comes on once the database's flusher has recounted every account.
for _ in $(seq 1 600); do
    [ "$(pg "$DIR" "$PORT" -d bench -Atc "SELECT state FROM credit.fast_path_status()")" = on ] && break
    sleep 0.1
done
ROWPATH="-c pg_credit.fast_path=off"

tps() { # script clients seconds [PGOPTIONS]
    PGOPTIONS=${4:-} "$PGBIN/pgbench" -n -M prepared -h "$DIR" -p "$PORT" -U postgres -c "$2" -j "$(( $2 < 2 ? 1 : 2 ))" -T "$3" -f "$1" bench 2>&1 \
        | awk '/^tps = /{print $3}'
}

declare -A results
m() { echo "${results[$1]}" | median; }
# Two-phase commit: BEGIN, INSERT, PREPARE TRANSACTION, COMMIT PREPARED (pgbench -M simple, which
# substitutes the client's id into the transaction's name), for 10,000 customers and for one hot one.
prepared_rounds() {
    local t s v
    for r in $(seq 1 "$ROUNDS"); do
        for s in "" hot_; do
            for v in plain guarded rowpath; do
                local f="$ROOT/bench/insert_prepared_${s}${v/rowpath/guarded}.pgbench" opts=""
                [ $v = rowpath ] && opts=$ROWPATH
                t=$(PGOPTIONS=$opts "$PGBIN/pgbench" -n -M simple -h "$DIR" -p "$PORT" -U postgres -c "$CLIENTS" -j 2 \
                    -T "$SECONDS_PER_RUN" -f "$f" bench 2>&1 | awk '/^tps = /{print $3}')
                results[prepared_$s$v]+="$t "
                log "2PC round $r ${s}$v: $t tps"
            done
        done
    done
    local p=$(m prepared_plain) g=$(m prepared_guarded) w=$(m prepared_rowpath)
    local hp=$(m prepared_hot_plain) hg=$(m prepared_hot_guarded) hw=$(m prepared_hot_rowpath)
    local drift left
    drift=$(pg "$DIR" "$PORT" -d bench -Atc "SELECT count(*) FROM credit.verify()")
    left=$(pg "$DIR" "$PORT" -d bench -Atc "SELECT count(*) FROM pg_prepared_xacts")
    {
        echo "### Orders with two-phase commit ($(date -u +%F), pgbench -M simple, $CLIENTS clients, ${SECONDS_PER_RUN}s x $ROUNDS rounds, medians)"
        echo
        echo "Each transaction: BEGIN, one INSERT, PREPARE TRANSACTION, COMMIT PREPARED. With the fast path the order reserves in shared memory and PREPARE writes the reservation into the account row; on the row path (pg_credit.fast_path off) the order writes the row itself."
        echo
        echo "| variant | 10,000 customers: median tps | ratio to plain | all rounds | one hot customer: median tps | ratio to plain | all rounds |"
        echo "|---|---:|---:|---|---:|---:|---|"
        echo "| plain INSERT (no trigger) | $p | 1.00 | ${results[prepared_plain]}| $hp | 1.00 | ${results[prepared_hot_plain]}|"
        echo "| pg_credit guard, fast path (moved into the row at PREPARE) | $g | **$(ratio "$g" "$p")** | ${results[prepared_guarded]}| $hg | **$(ratio "$hg" "$hp")** | ${results[prepared_hot_guarded]}|"
        echo "| pg_credit guard, row path | $w | $(ratio "$w" "$p") | ${results[prepared_rowpath]}| $hw | $(ratio "$hw" "$hp") | ${results[prepared_hot_rowpath]}|"
        echo
        echo "Fast path / row path: $(ratio "$g" "$w") (10,000 customers), $(ratio "$hg" "$hw") (hot customer). credit.verify() after the rounds: $drift drifting account(s); $left prepared transaction(s) left."
    } | tee "$OUT/prepared.md"
}
if [ "${ONLY:-}" = prepared ]; then
    prepared_rounds
    exit 0
fi
for r in $(seq 1 "$ROUNDS"); do
    for v in plain guarded rowpath plpgsql noop; do
        if [ $v = rowpath ]; then t=$(tps "$ROOT/bench/insert_guarded.pgbench" "$CLIENTS" "$SECONDS_PER_RUN" "$ROWPATH")
        else t=$(tps "$ROOT/bench/insert_$v.pgbench" "$CLIENTS" "$SECONDS_PER_RUN"); fi
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
    for v in plain guarded rowpath plpgsql; do
        if [ $v = rowpath ]; then t=$(tps "$ROOT/bench/insert_hot_guarded.pgbench" "$CLIENTS" "$SECONDS_PER_RUN" "$ROWPATH")
        else t=$(tps "$ROOT/bench/insert_hot_$v.pgbench" "$CLIENTS" "$SECONDS_PER_RUN"); fi
        results[hot_$v]+="$t "
        log "hot round $r $v: $t tps"
    done
done
prepared_rounds >/dev/null
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
fast=$(pg "$DIR" "$PORT" -d bench -Atc "SELECT format('%s flushes wrote %s customers'' open orders, %s left reserved', flushes, customers_flushed, reserved_in_flight) FROM credit.fast_path_status()")

plain=$(m plain); guarded=$(m guarded); rowpath=$(m rowpath); plpgsql=$(m plpgsql); noop=$(m noop); small=$(m SMALL); big=$(m BIG)
# Each round's fast path / plain ratio (rounds interleave the variants, so drift of the machine
# between rounds cancels out), and their median.
round_ratios=$(paste -d' ' <(echo "${results[guarded]}" | tr ' ' '\n' | grep .) <(echo "${results[plain]}" | tr ' ' '\n' | grep .) \
    | awk '{printf "%.2f ", $1 / $2}')
round_median=$(echo "$round_ratios" | median)
hplain=$(m hot_plain); hguarded=$(m hot_guarded); hrowpath=$(m hot_rowpath); hplpgsql=$(m hot_plpgsql)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "### Guarded INSERT throughput ($(date -u +%F), pgbench -M prepared, $CLIENTS clients, ${SECONDS_PER_RUN}s x $ROUNDS rounds, medians)"
    echo
    echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), synchronous_commit=on, release build."
    echo
    echo "| variant | 10,000 customers: median tps | ratio to plain | all rounds | one hot customer: median tps | ratio to plain | all rounds |"
    echo "|---|---:|---:|---|---:|---:|---|"
    echo "| plain INSERT (no trigger) | $plain | 1.00 | ${results[plain]}| $hplain | 1.00 | ${results[hot_plain]}|"
    echo "| pg_credit guard, fast path | $guarded | **$(ratio "$guarded" "$plain")** | ${results[guarded]}| $hguarded | **$(ratio "$hguarded" "$hplain")** | ${results[hot_guarded]}|"
    echo "| pg_credit guard, row path (pg_credit.fast_path off) | $rowpath | $(ratio "$rowpath" "$plain") | ${results[rowpath]}| $hrowpath | $(ratio "$hrowpath" "$hplain") | ${results[hot_rowpath]}|"
    echo "| hand-written PL/pgSQL trigger | $plpgsql | $(ratio "$plpgsql" "$plain") | ${results[plpgsql]}| $hplpgsql | $(ratio "$hplpgsql" "$hplain") | ${results[hot_plpgsql]}|"
    echo "| an AFTER ROW trigger that does nothing (PL/pgSQL) | $noop | $(ratio "$noop" "$plain") | ${results[noop]}| | | |"
    echo
    echo "Fast path / plain, round by round: $round_ratios(median $round_median)."
    echo
    echo "Fast path / PL/pgSQL reference: **$(ratio "$guarded" "$plpgsql")** (10,000 customers), **$(ratio "$hguarded" "$hplpgsql")** (hot customer). Fast path / row path: $(ratio "$guarded" "$rowpath"), $(ratio "$hguarded" "$hrowpath")."
    echo
    echo "O(1) check, 1 client: customer with 1 open invoice and order $small tps; with 10,000 open invoices and 10,000 open orders $big tps (ratio $(ratio "$big" "$small"))."
    echo
    echo "A refused order (200 in one session, 3 rounds, medians): $(m refusal_off) ms without recording, $(m refusal_on) ms with its order_refused event spooled for the recorder (ratio $(ratio "$(m refusal_on)" "$(m refusal_off)")); $recorded events recorded (expected $((3 * 200)))."
    echo
    echo "credit.verify() after the run: $drift drifting account(s). Fast path after the run: $fast."
} | tee "$OUT/guard.md"
