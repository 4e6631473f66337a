#!/usr/bin/env bash
# Multi-session stress: 16 sessions race on one customer (orders, changes, invoicing, payments)
# and 4 on a second one, while a monitor session checks the invariants continuously.
# Passes when: no client aborted, no invariant violation was ever seen, orders were both accepted
# and refused, credit.verify() is empty and no limit is crossed at the end.
#   tests/stress/stress.sh SOCKET_DIR PORT [SECONDS]
set -euo pipefail
DIR=$1 PORT=$2 SECS=${3:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS pg_credit_stress" -c "CREATE DATABASE pg_credit_stress" 2>/dev/null
"${PSQL[@]}" -d pg_credit_stress -f "$HERE/setup.sql" >/dev/null
bench() { "$PGBIN/pgbench" -n -h "$DIR" -p "$PORT" -U postgres -T "$SECS" "$@" pg_credit_stress; }
bench -c 16 -j 2 -f "$HERE/place.pgbench@10" -f "$HERE/change.pgbench@3" -f "$HERE/invoice.pgbench@2" -f "$HERE/pay.pgbench@1" \
    > /tmp/pg_credit_stress_hot.log 2>&1 &
hot=$!
bench -c 4 -j 1 -f "$HERE/place_warm.pgbench@5" -f "$HERE/monitor.pgbench@1" > /tmp/pg_credit_stress_warm.log 2>&1 &
warm=$!
rc=0
wait $hot || rc=1
wait $warm || rc=1
for log in /tmp/pg_credit_stress_hot.log /tmp/pg_credit_stress_warm.log; do
    grep -E "number of (transactions actually processed|failed transactions)|aborted" "$log" || true
    if grep -qE "aborted|ERROR" "$log"; then echo "a client failed:"; grep -m5 -E "ERROR|aborted" "$log"; rc=1; fi
done
"${PSQL[@]}" -d pg_credit_stress -c "SELECT stress.monitor()" >/dev/null
result=$("${PSQL[@]}" -d pg_credit_stress -At -F ' ' -c "
    SELECT (SELECT count(*) FROM stress.attempt WHERE accepted),
           (SELECT count(*) FROM stress.attempt WHERE NOT accepted),
           (SELECT count(*) FROM stress.violation),
           (SELECT count(*) FROM credit.verify()),
           (SELECT count(*) FROM credit.account WHERE exposure > credit_limit),
           (SELECT count(*) FROM credit.invoice),
           (SELECT count(*) FROM credit.settlement)")
read -r accepted refused violations drift over invoices payments <<<"$result"
echo "stress: accepted $accepted, refused $refused, invoices $invoices, payments $payments;" \
     "violations seen $violations, drifting accounts $drift, accounts over limit $over"
"${PSQL[@]}" -d pg_credit_stress -c "SELECT * FROM stress.violation LIMIT 5" | grep -v "^(0 rows)" || true
[ "$accepted" -gt 0 ] && [ "$refused" -gt 0 ] && [ "$violations" -eq 0 ] && [ "$drift" -eq 0 ] && [ "$over" -eq 0 ] || rc=1
exit $rc
