#!/usr/bin/env bash
# Late-payment prediction at scale (bench/prediction_data.sql): training the models on 1,000,000
# settled invoices and scoring 1,000,000 open ones, each against plain SQL that reads the same rows
# (the invoices with their closing payments, and the applications), in the same run. Medians and
# ratios go to target/bench/prediction.md (BENCHMARKS.md quotes them).
#   bench/prediction.sh        ROUNDS=3 TRADERS=10000 bench/prediction.sh
source "$(dirname "$0")/../scripts/common.sh"
ROUNDS=${ROUNDS:-3}
TRADERS=${TRADERS:-10000}
DIR=/tmp/pg_credit_bench_prediction
PORT=5496
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
pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE book" >/dev/null
log "generating data ($TRADERS traders with 100 settled invoices each, $((10 * TRADERS)) customers with 10 open ones)"
pg "$DIR" "$PORT" -d book -v traders="$TRADERS" -f "$ROOT/bench/prediction_data.sql" >/dev/null

# What both the model and the baseline read: every invoice with its closing payment, and every
# application.
BASELINE="SELECT count(*), sum(i.amount), sum(e.days_late) FROM credit.invoice i
            LEFT JOIN credit.invoice_payment_experience e ON e.customer = i.customer AND e.doc_no = i.doc_no;
          SELECT count(*), sum(a.amount) FROM credit.allocation a;"
ms() { # the server-side duration of the statements, summed, in ms
    "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d book -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" \
        | awk '/^Time: /{s += $2} END {printf "%.3f\n", s}'
}
declare -A runs
for r in $(seq 1 "$ROUNDS"); do
    t=$(ms "BEGIN; SELECT * FROM credit.train_payment_model(NULL, current_date); ROLLBACK;"); runs[train]+="$t "; log "round $r train: $t ms"
    t=$(ms "$BASELINE"); runs[base]+="$t "; log "round $r baseline: $t ms"
done
pg "$DIR" "$PORT" -d book -At -c "SELECT * FROM credit.train_payment_model(NULL, current_date)" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
    t=$(ms "SELECT count(*), sum(p_very_late) FROM credit.payment_prediction()"); runs[score]+="$t "; log "round $r score: $t ms"
    t=$(ms "$BASELINE"); runs[base2]+="$t "; log "round $r baseline: $t ms"
done
m() { echo "${runs[$1]}" | median; }
sizes=$(pg "$DIR" "$PORT" -d book -At -c "SELECT format('%s invoices with a known outcome trained on (each model; 1,000,000 settled and the open ones already more than 30 days late), %s open invoices scored',
          (SELECT max(examples) FROM credit.payment_model), (SELECT count(*) FROM credit.invoice WHERE open_amount > 0))")
auc=$(pg "$DIR" "$PORT" -d book -At -c "SELECT count(*) FROM credit.payment_prediction()")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "### Late-payment prediction at scale ($(date -u +%F), $ROUNDS interleaved rounds, medians)"
    echo
    echo "Machine: $(nproc) cores ($cpu), PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), release build. $sizes."
    echo
    echo "| what | median ms | all rounds (ms) | baseline | ratio |"
    echo "|---|---:|---|---|---:|"
    echo "| credit.train_payment_model(): both models on every settled invoice | $(m train) | ${runs[train]}| plain SQL reading the invoices with their closing payments and the applications: $(m base) ms | $(ratio "$(m train)" "$(m base)") |"
    echo "| credit.payment_prediction(): every open invoice scored, with factors | $(m score) | ${runs[score]}| the same plain SQL: $(m base2) ms | $(ratio "$(m score)" "$(m base2)") |"
    echo
    echo "Predictions returned: $auc."
} | tee "$OUT/prediction.md"
