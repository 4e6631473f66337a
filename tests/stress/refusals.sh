#!/usr/bin/env bash
# Every refusal recorded, none lost: 32 sessions place orders far over their customers' limits
# for SECONDS (default 60), mixed with orders that fit. Each refusal the client sees is counted
# in the client's own transaction (a plpgsql handler catches the 23514 and inserts a row). When
# the load ends, the order_refused events in credit.event (and their outbox rows) must equal the
# refusals the clients saw, credit.refusal_recording must show nothing pending or unrecordable,
# and credit.verify() and credit.verify_audit() must be empty.
#   tests/stress/refusals.sh SOCKET_DIR PORT [SECONDS]
set -uo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
set +e
DIR=$1 PORT=$2 SECS=${3:-60}
SESSIONS=32
DB=pg_credit_refusals
WORK=$(mktemp -d /tmp/pg_credit_refusals.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null 2>&1
pg "$DIR" "$PORT" -d "$DB" >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit) SELECT 'R' || i, 1000 FROM generate_series(1, 200) i;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL,
                     status text NOT NULL DEFAULT 'open');
SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}');
-- What the clients saw, written in their own transactions (a refusal rolls back only the order).
CREATE TABLE seen (refused boolean NOT NULL);
CREATE FUNCTION place(customer text, amount numeric) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO orders (customer, amount) VALUES (customer, amount);
    INSERT INTO seen VALUES (false);
EXCEPTION WHEN check_violation THEN
    INSERT INTO seen VALUES (true);
END $$;
SQL
cat >"$WORK/load.pgbench" <<'EOF'
\set c random(1, 200)
\set big random(0, 9)
SELECT place('R' || :c, CASE WHEN :big < 8 THEN 1000000 ELSE 1 END);
\if :big = 9
UPDATE orders SET status = 'cancelled' WHERE customer = 'R' || :c AND status = 'open';
\endif
EOF
chown -R postgres "$WORK"
log "refusal recording: $SESSIONS sessions for ${SECS}s, 80 % of orders refused"
runuser -u postgres -- "$PGBIN/pgbench" -n -h "$DIR" -p "$PORT" -U postgres -c $SESSIONS -j 2 -T "$SECS" \
    -f "$WORK/load.pgbench" "$DB" > "$WORK/pgbench.out" 2>&1 || { cat "$WORK/pgbench.out"; exit 1; }
grep -E "^(number of transactions actually processed|tps)" "$WORK/pgbench.out"
# The recorder moves what is still spooled within a moment.
for _ in $(seq 1 600); do
    pending=$(pg "$DIR" "$PORT" -d "$DB" -At -c "SELECT pending FROM credit.refusal_recording")
    [ "$pending" = 0 ] && break
    sleep 0.1
done
result=$(pg "$DIR" "$PORT" -d "$DB" -At -F ' ' <<'SQL'
SELECT (SELECT count(*) FROM seen WHERE refused),
       (SELECT count(*) FROM seen WHERE NOT refused),
       (SELECT count(*) FROM credit.event WHERE kind = 'order_refused'),
       (SELECT count(*) FROM credit.outbox WHERE kind = 'order_refused'),
       (SELECT pending + unrecorded FROM credit.refusal_recording),
       (SELECT count(*) FROM credit.verify()),
       (SELECT count(*) FROM credit.verify_audit()),
       (SELECT count(*) FROM credit.account WHERE exposure > credit_limit);
SQL
)
read -r seen accepted events outbox pending drift audit crossed <<<"$result"
echo "clients saw $seen refusals ($accepted orders accepted); credit.event has $events order_refused events, the outbox $outbox;" \
     "pending or unrecordable $pending; verify $drift, verify_audit $audit, limits crossed $crossed"
rc=0
[ "${seen:-0}" -gt 1000 ] || { echo "too few refusals to tell"; rc=1; }
[ "$seen" = "$events" ] && [ "$seen" = "$outbox" ] || { echo "recorded refusals differ from the refusals the clients saw"; rc=1; }
for v in "$pending" "$drift" "$audit" "$crossed"; do [ "$v" = 0 ] || rc=1; done
exit $rc
