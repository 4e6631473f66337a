#!/usr/bin/env bash
# The update path 0.1.0 -> 0.2.0 (UPDATING.md):
#   1. a database created at 0.1.0 and filled (accounts, guarded orders, ledger, policies, holds,
#      approvals, collections, events) is updated with ALTER EXTENSION pg_credit UPDATE: its data
#      are unchanged, credit.verify() and credit.verify_audit() are empty, the guard and the new
#      features work on the old data;
#   2. every object of the updated extension is defined exactly as in a fresh 0.2.0 install
#      (tests/upgrade/surface.sql, diffed);
#   3. the whole pg_regress suite runs on a database created at 0.1.0 and updated.
#   tests/upgrade/upgrade.sh SOCKET_DIR PORT
set -uo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
set +e   # common.sh sets -e; this script collects failures in rc and reports them all
DIR=$1 PORT=$2
OUT="$ROOT/target/test-results/upgrade"
rm -rf "$OUT"; mkdir -p "$OUT"
rc=0
for db in upg_fresh upg_filled upg_suite; do
    pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
done
pg "$DIR" "$PORT" -d upg_fresh -c "CREATE EXTENSION pg_credit" >/dev/null
pg "$DIR" "$PORT" -d upg_filled >/dev/null <<'SQL'
CREATE EXTENSION pg_credit VERSION '0.1.0';
CREATE TABLE orders (id bigint PRIMARY KEY, cust text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region)
SELECT 'U' || i, 1000 * (1 + i % 7), 30, (ARRAY['wholesale','retail'])[1 + i % 2], (ARRAY['east','west'])[1 + i % 2]
  FROM generate_series(1, 40) i;
SELECT credit.guard('orders', 'cust', 'amount', 'status', '{open}');
INSERT INTO orders SELECT i, 'U' || (1 + i % 40), 10 + i % 50 FROM generate_series(1, 200) i;
SELECT count(credit.post_invoice('U' || (1 + i % 40), 'INV-' || i, 100 + i, date '2026-01-01' + i % 200)) FROM generate_series(1, 300) i;
SELECT count(credit.post_payment('U' || (1 + i % 40), 150 + i, date '2026-05-01' + i % 100)) FROM generate_series(1, 100) i;
INSERT INTO credit.policy (customer_type, overdue_block_days) VALUES ('retail', 120);
SELECT credit.request_limit('U3', 9000, 'growth');
SELECT credit.blacklist('U5', 'returned cheques');
SELECT count(*) FROM credit.run_collections('2026-09-30');
SELECT credit.log_contact((SELECT min(id) FROM credit.collection_task WHERE status = 'open'), 'promised', 'soon', 10, '2026-10-10');
SQL
fingerprint() {   # the tables 0.1.0 had (the update adds some), and the guarded one
    pg "$DIR" "$PORT" -d "$1" -At -v extra=orders -f "$ROOT/tests/fingerprint.sql" | tr ' ' '\n' \
        | grep -v -e '^credit.event_chain:' -e '^credit.access_role:' | tr '\n' ' '
}
before=$(fingerprint upg_filled)
pg "$DIR" "$PORT" -d upg_filled -c "ALTER EXTENSION pg_credit UPDATE" || rc=1
version=$(pg "$DIR" "$PORT" -d upg_filled -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_credit'")
fresh_version=$(pg "$DIR" "$PORT" -d upg_fresh -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_credit'")
[ "$version" = "$fresh_version" ] || { echo "updated to $version, fresh install is $fresh_version"; rc=1; }
after=$(fingerprint upg_filled)
[ "$before" = "$after" ] || { echo "data changed by the update:"; echo " before: $before"; echo " after:  $after"; rc=1; }
checks=$(pg "$DIR" "$PORT" -d upg_filled -At 2>&1 <<'SQL'
\set ON_ERROR_STOP 0
SELECT 'verify ' || count(*) FROM credit.verify();
SELECT 'verify_audit ' || count(*) FROM credit.verify_audit();
INSERT INTO credit.account (customer, credit_limit) VALUES ('U-NEW', 100);
INSERT INTO orders VALUES (1001, 'U-NEW', 1000000);
INSERT INTO orders VALUES (1002, 'U-NEW', 1);
SELECT 'order counted ' || (SELECT count(*) FROM orders WHERE id = 1002);
SELECT 'collections ' || count(*) FROM credit.run_collections('2026-10-31');
SELECT 'verify after ' || count(*) FROM credit.verify();
SELECT 'verify_audit after ' || count(*) FROM credit.verify_audit();
SQL
)
echo "$checks" | sed 's/^/  updated: /'
for want in "verify 0" "verify_audit 0" "order counted 1" "verify after 0" "verify_audit after 0"; do
    echo "$checks" | grep -qx "$want" || { echo "after the update, expected: $want"; rc=1; }
done
echo "$checks" | grep -q "ERROR:  order exceeds the credit limit" || { echo "the updated guard did not refuse"; rc=1; }
echo "$checks" | grep -q "^collections [0-9]" || { echo "collections failed after the update"; rc=1; }
pg "$DIR" "$PORT" -d upg_fresh -At -f "$ROOT/tests/upgrade/surface.sql" > "$OUT/fresh.txt"
pg "$DIR" "$PORT" -d upg_filled -At -f "$ROOT/tests/upgrade/surface.sql" > "$OUT/updated.txt"
if ! diff -u "$OUT/fresh.txt" "$OUT/updated.txt" > "$OUT/surface.diff"; then
    echo "the updated extension differs from a fresh install:"; head -60 "$OUT/surface.diff"; rc=1
fi
# The whole regression suite on a database created at 0.1.0 and updated.
pg "$DIR" "$PORT" -d upg_suite -c "CREATE EXTENSION pg_credit VERSION '0.1.0'" -c "ALTER EXTENSION pg_credit UPDATE" >/dev/null || rc=1
tests=$(cd "$ROOT/tests/pg_regress/sql" && ls ./*.sql | sed 's|^\./||; s/\.sql$//' | sort)
"$PGXS_TEST/regress/pg_regress" --host="$DIR" --port="$PORT" --user=postgres --dbname=upg_suite --use-existing \
    --inputdir="$ROOT/tests/pg_regress" --outputdir="$OUT/suite" $tests > "$OUT/suite.log" 2>&1 \
    || { tail -5 "$OUT/suite.log"; head -100 "$OUT/suite/regression.diffs"; rc=1; }
[ $rc = 0 ] && echo "update 0.1.0 -> $version: data unchanged, verify and verify_audit empty, surface identical to a fresh install ($(wc -l < "$OUT/fresh.txt") lines), regression suite passes on the updated database"
exit $rc
