#!/usr/bin/env bash
# The update paths to the current version (UPDATING.md), from 0.1.0 and from 0.2.0:
#   1. a database created at the old version and filled (accounts, guarded orders — at 0.2.0 also
#      a partitioned guarded table and an inheritance child —, ledger, policies, holds, approvals,
#      collections, events, and a refused order made with the new library before the update) is
#      updated with ALTER EXTENSION pg_credit UPDATE: its data are unchanged, credit.verify() and
#      credit.verify_audit() are empty, the tables guarded before are re-protected (partitions and
#      children registered, the guard's triggers kept on), the refusal is recorded, the guard and
#      the new features work on the old data, and the privilege levels granted at 0.2.0 reach them;
#   2. every object of the updated extension is defined exactly as in a fresh install
#      (tests/upgrade/surface.sql, diffed);
#   3. the whole pg_regress suite runs on databases created at 0.1.0 and at 0.2.0 and updated.
#   tests/upgrade/upgrade.sh SOCKET_DIR PORT
set -uo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
set +e   # common.sh sets -e; this script collects failures in rc and reports them all
DIR=$1 PORT=$2
OUT="$ROOT/target/test-results/upgrade"
rm -rf "$OUT"; mkdir -p "$OUT"
rc=0
# The earlier versions' install scripts, frozen as they shipped (only this test creates those
# versions; the update scripts are installed with the extension).
install -m 644 "$ROOT"/tests/upgrade/versions/pg_credit--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS upg_fresh" -c "CREATE DATABASE upg_fresh" >/dev/null 2>&1
pg "$DIR" "$PORT" -d upg_fresh -c "CREATE EXTENSION pg_credit" >/dev/null
# Privilege levels granted (at 0.2.0: before the update, which must extend them to what it adds).
LEVELS="DO \$\$ DECLARE r text; BEGIN FOREACH r IN ARRAY ARRAY['upg_reader', 'upg_clerk', 'upg_manager', 'upg_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN EXECUTE format('CREATE ROLE %I', r); END IF; END LOOP; END \$\$;
SELECT count(*) FROM credit.grant_privileges('upg_reader', 'upg_clerk', 'upg_manager', 'upg_admin');"
pg "$DIR" "$PORT" -d upg_fresh -c "$LEVELS" >/dev/null
fresh_version=$(pg "$DIR" "$PORT" -d upg_fresh -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_credit'")
pg "$DIR" "$PORT" -d upg_fresh -At -f "$ROOT/tests/upgrade/surface.sql" > "$OUT/fresh.txt"

fill() {   # DB VERSION
    local extra=""
    if [ "$2" != 0.1.0 ]; then
        # Guarded before the update: a partitioned table (row trigger cloned on its partitions) and
        # a plain table with an (empty) inheritance child the old version did not guard; an owner
        # without credit levels.
        extra="
CREATE TABLE porders (id bigint, cust text NOT NULL, amount numeric NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE porders_east PARTITION OF porders FOR VALUES IN ('east');
CREATE TABLE porders_west PARTITION OF porders FOR VALUES IN ('west');
SELECT credit.guard('porders', 'cust', 'amount');
INSERT INTO porders SELECT i, 'U' || (1 + i % 40), 5, (ARRAY['east','west'])[1 + i % 2] FROM generate_series(1, 60) i;
CREATE TABLE orders_archive () INHERITS (orders);
DO \$\$ BEGIN CREATE ROLE upg_owner; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
ALTER TABLE orders OWNER TO upg_owner;
ALTER TABLE orders_archive OWNER TO upg_owner;
ALTER TABLE porders OWNER TO upg_owner;
ALTER TABLE porders_east OWNER TO upg_owner;
ALTER TABLE porders_west OWNER TO upg_owner;
$LEVELS"
    fi
    pg "$DIR" "$PORT" -d "$1" >/dev/null <<SQL
CREATE EXTENSION pg_credit VERSION '$2';
CREATE TABLE orders (id bigint PRIMARY KEY, cust text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region)
SELECT 'U' || i, 1000 * (1 + i % 7), 30, (ARRAY['wholesale','retail'])[1 + i % 2], (ARRAY['east','west'])[1 + i % 2]
  FROM generate_series(1, 40) i;
SELECT credit.guard('orders', 'cust', 'amount', 'status', '{open}');
INSERT INTO orders SELECT i, 'U' || (1 + i % 40), 10 + i % 50 FROM generate_series(1, 200) i;
$extra
SELECT count(credit.post_invoice('U' || (1 + i % 40), 'INV-' || i, 100 + i, date '2026-01-01' + i % 200)) FROM generate_series(1, 300) i;
SELECT count(credit.post_payment('U' || (1 + i % 40), 150 + i, date '2026-05-01' + i % 100)) FROM generate_series(1, 100) i;
INSERT INTO credit.policy (customer_type, overdue_block_days) VALUES ('retail', 120);
SELECT credit.request_limit('U3', 9000, 'growth');
-- A first signature on it (as an approver would have signed): the update gives it its request's customer.
INSERT INTO credit.limit_approval (request_id, level, approver, as_role) SELECT r.id, 1, 'upg_signer', 'upg_manager' FROM credit.limit_request r WHERE r.customer = 'U3';
SELECT credit.blacklist('U5', 'returned cheques');
SELECT count(*) FROM credit.run_collections('2026-09-30');
SELECT credit.log_contact((SELECT min(id) FROM credit.collection_task WHERE status = 'open'), 'promised', 'soon', 10, '2026-10-10');
SQL
    # A refusal made with this library before the update: spooled, recorded once the update made
    # the recorder's table.
    pg "$DIR" "$PORT" -d "$1" -c "INSERT INTO orders VALUES (100000, 'U1', 1000000)" >/dev/null 2>&1
}
fingerprint() {   # the tables the old version had (the update adds some), and the guarded ones
    # credit.allocation.customer and credit.limit_approval.customer (0.3.0) are filled from the
    # settlement's and the request's: checked below.
    pg "$DIR" "$PORT" -d "$1" -At -v extra=orders -v derived=credit.allocation:customer,credit.limit_approval:customer -f "$ROOT/tests/fingerprint.sql" | tr ' ' '\n' \
        | grep -v -e '^credit.event_chain:' -e '^credit.access_role:' -e '^credit.guarded_table:' | tr '\n' ' '
}
for from in 0.1.0 0.2.0; do
    db=upg_from_${from//./_}
    pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
    fill "$db" "$from"
    before=$(fingerprint "$db")
    pg "$DIR" "$PORT" -d "$db" -c "ALTER EXTENSION pg_credit UPDATE" >/dev/null || rc=1
    version=$(pg "$DIR" "$PORT" -d "$db" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_credit'")
    # 0.1.0 had no levels: the DBA grants them after the update.
    [ "$from" = 0.1.0 ] && pg "$DIR" "$PORT" -d "$db" -c "$LEVELS" >/dev/null
    [ "$version" = "$fresh_version" ] || { echo "$from: updated to $version, fresh install is $fresh_version"; rc=1; }
    # Of the tables the old version had: the update adds some.
    after=$(for t in $before; do fingerprint "$db" | tr ' ' '\n' | grep -x -- "${t%%:*}:.*"; done | tr '\n' ' ')
    [ "$before" = "$after" ] || { echo "$from: data changed by the update:"; echo " before: $before"; echo " after:  $after"; rc=1; }
    checks=$(pg "$DIR" "$PORT" -d "$db" -At 2>&1 <<'SQL'
\set ON_ERROR_STOP 0
SELECT 'verify ' || count(*) FROM credit.verify();
SELECT 'verify_audit ' || count(*) FROM credit.verify_audit();
SELECT 'allocations ' || (count(*) > 0) || ', of another customer ' || count(*) FILTER (WHERE a.customer IS DISTINCT FROM s.customer)
  FROM credit.allocation a JOIN credit.settlement s ON s.id = a.settlement_id;
SELECT 'signatures ' || count(*) || ', of another customer ' || count(*) FILTER (WHERE l.customer IS DISTINCT FROM r.customer)
  FROM credit.limit_approval l JOIN credit.limit_request r ON r.id = l.request_id;
SELECT 'problems ' || count(*) FROM credit.guard_status WHERE problems <> '{}';
SELECT 'refusal recorded ' || (credit.record_refusals() + (SELECT count(*) FROM credit.event WHERE kind = 'order_refused'));
INSERT INTO credit.account (customer, credit_limit) VALUES ('U-NEW', 100);
INSERT INTO orders VALUES (1001, 'U-NEW', 1000000);
INSERT INTO orders VALUES (1002, 'U-NEW', 1);
SELECT 'order counted ' || (SELECT count(*) FROM orders WHERE id = 1002);
SELECT 'collections ' || count(*) FROM credit.run_collections('2026-10-31');
SELECT 'verify after ' || count(*) FROM credit.verify();
SELECT 'verify_audit after ' || count(*) FROM credit.verify_audit();
SQL
)
    if [ "$from" != 0.1.0 ]; then
        checks+=$'\n'$(pg "$DIR" "$PORT" -d "$db" -At 2>&1 <<'SQL'
\set ON_ERROR_STOP 0
SELECT 'registered ' || string_agg(table_name || ':' || kind, ' ' ORDER BY table_name::text) FROM credit.guarded_table;
SET ROLE upg_owner;
INSERT INTO orders_archive VALUES (2001, 'U-NEW', 1000000);
INSERT INTO porders VALUES (2002, 'U-NEW', 1000000, 'east');
ALTER TABLE porders_west DISABLE TRIGGER ALL;
TRUNCATE porders_west;
RESET ROLE;
SELECT 'verify after partitions ' || count(*) FROM credit.verify();
SET ROLE upg_clerk;
SELECT 'clerk issues statements ' || (count(*) > 0) FROM credit.statement_run('2026-10-31');
RESET ROLE;
SQL
)
    fi
    echo "$checks" | sed "s/^/  updated from $from: /"
    wants=("verify 0" "verify_audit 0" "allocations true, of another customer 0" "signatures 1, of another customer 0" "problems 0" "refusal recorded 1" "order counted 1" "verify after 0" "verify_audit after 0")
    [ "$from" != 0.1.0 ] && wants+=("registered orders:table orders_archive:child porders:table porders_east:partition porders_west:partition" "verify after partitions 0" "clerk issues statements true")
    for want in "${wants[@]}"; do
        grep -qx "$want" <<<"$checks" || { echo "after the update from $from, expected: $want"; rc=1; }
    done
    grep -q "ERROR:  order exceeds the credit limit" <<<"$checks" || { echo "$from: the updated guard did not refuse"; rc=1; }
    grep -q "^collections [0-9]" <<<"$checks" || { echo "$from: collections failed after the update"; rc=1; }
    if [ "$from" != 0.1.0 ]; then
        [ "$(echo "$checks" | grep -c 'ERROR:  order exceeds the credit limit')" -ge 3 ] \
            || { echo "$from: a child or a partition guarded before the update did not refuse"; rc=1; }
        grep -q "only a credit admin can switch the credit guard off" <<<"$checks" \
            || { echo "$from: the DDL watch does not protect a table guarded before the update"; rc=1; }
    fi
    pg "$DIR" "$PORT" -d "$db" -At -f "$ROOT/tests/upgrade/surface.sql" > "$OUT/updated_from_$from.txt"
    if ! diff -u "$OUT/fresh.txt" "$OUT/updated_from_$from.txt" > "$OUT/surface_$from.diff"; then
        echo "the extension updated from $from differs from a fresh install:"; head -60 "$OUT/surface_$from.diff"; rc=1
    fi
    # The whole regression suite on an empty database created at that version and updated.
    pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS upg_suite WITH (FORCE)" -c "CREATE DATABASE upg_suite" >/dev/null 2>&1
    pg "$DIR" "$PORT" -d upg_suite -c "CREATE EXTENSION pg_credit VERSION '$from'" -c "ALTER EXTENSION pg_credit UPDATE" >/dev/null || rc=1
    tests=$(cd "$ROOT/tests/pg_regress/sql" && ls ./*.sql | sed 's|^\./||; s/\.sql$//' | sort)
    "$PGXS_TEST/regress/pg_regress" --host="$DIR" --port="$PORT" --user=postgres --dbname=upg_suite --use-existing \
        --inputdir="$ROOT/tests/pg_regress" --outputdir="$OUT/suite_$from" $tests > "$OUT/suite_$from.log" 2>&1 \
        || { echo "the suite failed on a database updated from $from:"; tail -5 "$OUT/suite_$from.log"; head -100 "$OUT/suite_$from/regression.diffs"; rc=1; }
    [ $rc = 0 ] && echo "update $from -> $version: data unchanged, verify and verify_audit empty, surface identical to a fresh install ($(wc -l < "$OUT/fresh.txt") lines), regression suite passes on the updated database"
done

# 0.2.0 dated an application by the invoice when an invoice keyed in late consumed money received
# after its date; the update re-dates such applications (the later of the two dates), so aging as
# of a day in between shows the invoice open, as it was.
db=upg_late_applications
pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
late=$(pg "$DIR" "$PORT" -d "$db" -At 2>&1 <<'SQL'
CREATE EXTENSION pg_credit VERSION '0.2.0';
INSERT INTO credit.account (customer, credit_limit) VALUES ('LATE', 10000);
SELECT credit.post_payment('LATE', 500, '2026-08-20') > 0;
SELECT credit.post_invoice('LATE', 'L-1', 500, '2026-08-01', '2026-08-31') > 0;
-- What the 0.2.0 library recorded (this library dates it right already): the invoice's date.
SET session_replication_role = replica;
UPDATE credit.allocation SET applied_on = '2026-08-01';
UPDATE credit.invoice SET last_applied_on = '2026-08-01';
UPDATE credit.settlement SET last_applied_on = '2026-08-01';
RESET session_replication_role;
ALTER EXTENSION pg_credit UPDATE;
SELECT 'applied on ' || applied_on FROM credit.allocation;
SELECT 'last applied ' || i.last_applied_on || ' ' || s.last_applied_on FROM credit.invoice i, credit.settlement s;
SELECT 'open on 2026-08-10: ' || coalesce(sum(open_amount), 0) FROM credit.aging('2026-08-10');
SELECT 'verify ' || count(*) FROM credit.verify();
SQL
)
for want in "applied on 2026-08-20" "last applied 2026-08-20 2026-08-20" "open on 2026-08-10: 500" "verify 0"; do
    grep -qx "$want" <<<"$late" || { echo "late applications after the update: expected $want, got: $late"; rc=1; }
done
((rc)) || echo "update 0.2.0 -> 0.3.0: an application recorded by the invoice's date is re-dated to the later payment's"
exit $rc
