#!/usr/bin/env bash
# Crash under load: 32 sessions for SECONDS (default 60) place random orders, cancel and invoice
# their own orders, post payments and run collections across 1,000 customers; each client logs a
# piece of work only after its COMMIT was acknowledged, and each refusal it saw. Then the server
# is killed (pg_ctl stop -m immediate) with the clients still running, and restarted. Passes when,
# after recovery: credit.verify() and credit.verify_audit() are empty, no account's exposure is
# above its limit, every logged (acknowledged) order, cancellation, invoice and payment is there,
# and at least as many refusals are recorded as the clients saw.
#   tests/stress/crash.sh SOCKET_DIR PORT [SECONDS]
set -uo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
set +e   # common.sh sets -e; this script collects failures in rc and reports them all
DIR=$1 PORT=$2 SECS=${3:-60}
SESSIONS=32
DB=pg_credit_crash
WORK=$(mktemp -d /tmp/pg_credit_crash.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
pg "$DIR" "$PORT" -d "$DB" >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit, terms_days)
SELECT 'C' || lpad(i::text, 4, '0'), 300 + (i % 5) * 200, 30 FROM generate_series(1, 1000) i;
CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL,
                     status text NOT NULL DEFAULT 'open');
SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}');
SQL

# One client: a psql per transaction; a line in its log only after the commit returned.
client() {
    local s=$1 log="$WORK/client.$s" n=0 end=$((SECONDS + SECS + 30)) out op id cust amt
    local -a mine=()
    : >"$log"
    while ((SECONDS < end)); do
        n=$((n + 1)); op=$((RANDOM % 100)); cust=$(printf 'C%04d' $((1 + RANDOM % 1000))); amt=$((1 + RANDOM % 400))
        if ((op < 50 || ${#mine[@]} == 0)); then
            id=$((s * 10000000 + n))
            out=$("$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate \
                 -c "INSERT INTO orders VALUES ($id, '$cust', $amt)" 2>&1)
            if [ $? = 0 ]; then
                echo "order $id" >>"$log"; mine+=("$id")
            elif [ "$out" = "ERROR:  23514" ]; then
                echo "refused $id" >>"$log"   # a refusal this client saw: it must be recorded
            fi
        elif ((op < 65)); then
            id=${mine[$((RANDOM % ${#mine[@]}))]}
            out=$("$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U postgres -d "$DB" -v ON_ERROR_STOP=1 \
                 -c "WITH c AS (UPDATE orders SET status = 'cancelled' WHERE id = $id AND status = 'open' RETURNING 1) SELECT count(*) FROM c" 2>/dev/null) \
                && [ "$out" = 1 ] && echo "cancel $id" >>"$log"
        elif ((op < 80)); then
            id=${mine[$((RANDOM % ${#mine[@]}))]}
            out=$("$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U postgres -d "$DB" -v ON_ERROR_STOP=1 \
                 -c "WITH o AS (UPDATE orders SET status = 'invoiced' WHERE id = $id AND status = 'open' RETURNING customer, amount)
                     SELECT count(credit.post_invoice(o.customer, 'INV-$id', o.amount, current_date - $id % 45)) FROM o" 2>/dev/null) \
                && [ "$out" = 1 ] && echo "invoice $id" >>"$log"
        elif ((op < 96)); then
            out=$("$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U postgres -d "$DB" -v ON_ERROR_STOP=1 \
                 -c "SELECT credit.post_payment('$cust', $amt)" 2>/dev/null) && [ -n "$out" ] && echo "payment $out" >>"$log"
        else
            "$PGBIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" \
                 -c "SELECT count(*) FROM credit.run_collections()" >/dev/null 2>&1
        fi
    done
}
log "crash test: $SESSIONS sessions for ${SECS}s, then pg_ctl stop -m immediate under load"
pids=()
for s in $(seq 1 $SESSIONS); do client "$s" & pids+=($!); done
sleep "$SECS"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null
sleep 2
kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null
RUST_BACKTRACE=full runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
cat "$WORK"/client.* > "$WORK/committed"
chown postgres "$WORK" "$WORK/committed"
result=$(pg "$DIR" "$PORT" -d "$DB" -At -F ' ' <<SQL
-- Refusals spooled before the crash are recorded after it (the recorder, or this, moves them).
SELECT credit.record_refusals() >= 0 AS recorded \gset
CREATE TEMP TABLE committed (kind text, id bigint);
\copy committed FROM '$WORK/committed' WITH (DELIMITER ' ')
SELECT (SELECT count(*) FROM committed WHERE kind = 'order'),
       (SELECT count(*) FROM committed WHERE kind = 'cancel'),
       (SELECT count(*) FROM committed WHERE kind = 'invoice'),
       (SELECT count(*) FROM committed WHERE kind = 'payment'),
       (SELECT count(*) FROM committed c WHERE c.kind = 'order' AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = c.id)),
       (SELECT count(*) FROM committed c WHERE c.kind = 'cancel' AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = c.id AND o.status = 'cancelled')),
       (SELECT count(*) FROM committed c WHERE c.kind = 'invoice' AND NOT EXISTS (SELECT 1 FROM credit.invoice i WHERE i.doc_no = 'INV-' || c.id)),
       (SELECT count(*) FROM committed c WHERE c.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM credit.settlement s WHERE s.id = c.id)),
       (SELECT count(*) FROM credit.verify()),
       (SELECT count(*) FROM credit.verify_audit()),
       (SELECT count(*) FROM credit.account WHERE exposure > credit_limit),
       (SELECT count(*) FROM credit.event WHERE kind = 'order_refused'),
       (SELECT count(*) FROM credit.collection_task),
       (SELECT count(*) FROM committed WHERE kind = 'refused');
SQL
)
read -r orders cancels invoices payments lost_o lost_c lost_i lost_p drift audit crossed refused tasks seen <<<"$result"
echo "acknowledged: $orders orders, $cancels cancellations, $invoices invoices, $payments payments ($seen refusals seen by clients, $refused recorded; $tasks collection tasks)"
echo "after the crash: lost orders $lost_o, cancellations $lost_c, invoices $lost_i, payments $lost_p; verify $drift, verify_audit $audit, limits crossed $crossed"
rc=0
[ "${orders:-0}" -gt 100 ] && [ "${invoices:-0}" -gt 10 ] && [ "${payments:-0}" -gt 10 ] || { echo "too little work was done"; rc=1; }
for v in "$lost_o" "$lost_c" "$lost_i" "$lost_p" "$drift" "$audit" "$crossed"; do [ "$v" = 0 ] || rc=1; done
# Every refusal a client saw was spooled before the client saw it; the crash may add refusals no
# client saw (their connection died first), never the other way round.
[ "${refused:-0}" -ge "${seen:-1}" ] || { echo "refusals the clients saw are missing from credit.event"; rc=1; }
exit $rc
