#!/usr/bin/env bash
# The fast path on a server with shared_preload_libraries = 'pg_credit' (scripts/test.sh starts
# one for this layer):
#   1. pg_regress: the fast path's SQL contract                        (tests/fast_path/sql)
#   2. pg_isolation_regress: reservations in flight, aborts, releases,
#      postings, groups, a hot customer                                 (tests/fast_path/specs)
#   3. a prepared order (row path, or fast reservations moved into the row at PREPARE) makes a
#      fast order wait for COMMIT PREPARED, also across a restart
#   4. three databases under load at once, same customer names: each fills its own limits
#   5. a standby promoted after the primary fails: orders the primary had committed but not
#      flushed into credit.account are recounted, and count against the limit
#   6. crash stress: 32 sessions order, cancel, invoice and pay for one hot customer and 200 cold
#      ones while a monitor checks every limit against the source rows; backends holding
#      reservations are killed with SIGKILL (the server restarts its shared memory), and at the
#      end the server is stopped immediately under load. After recovery: no limit was ever crossed,
#      credit.verify() is empty, nothing is left reserved, every account equals its recount.
#   tests/fast_path/run.sh SOCKET_DIR PORT [SECONDS [stress]]   (stress: part 6 only)
set -uo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
set +e
DIR=$1 PORT=$2 SECS=${3:-40} ONLY=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$ROOT/target/test-results/fast_path${ONLY:+_$ONLY}"
rm -rf "$OUT"; mkdir -p "$OUT"
rc=0
fail() { echo "FAIL: $*"; rc=1; }
q() { "$PGBIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U postgres "$@"; }

wait_on() { # db: until the database's fast path is on (its flusher recounted every account)
    for _ in $(seq 1 600); do
        [ "$(q -d "$1" -c "SELECT state FROM credit.fast_path_status()" 2>/dev/null)" = on ] && return 0
        sleep 0.1
    done
    return 1
}

if [ -z "$ONLY" ]; then
# 1, 2
"$PGXS_TEST/regress/pg_regress" --host="$DIR" --port="$PORT" --user=postgres --dbname=pg_credit_fast \
    --load-extension=pg_credit --inputdir="$HERE" --outputdir="$OUT/regress" fast_path \
    || { cat "$OUT/regress/regression.diffs" 2>/dev/null | head -200; fail "pg_regress"; }
specs=$(cd "$HERE/specs" && ls ./*.spec | sed 's|^\./||; s/\.spec$//' | sort)
"$PGXS_TEST/isolation/pg_isolation_regress" --host="$DIR" --port="$PORT" --user=postgres \
    --dbname=pg_credit_fast_iso --inputdir="$HERE" --outputdir="$OUT/isolation" $specs \
    || { cat "$OUT/isolation/regression.diffs" 2>/dev/null | head -200; fail "isolation"; }

# 3. A prepared transaction's row-path order holds the account row; a fast order waits for it.
DB=pg_credit_fast_2pc
q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -d $DB -c "CREATE EXTENSION pg_credit" \
  -c "CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open')" \
  -c "INSERT INTO credit.account (customer, credit_limit) VALUES ('P', 100)" \
  -c "SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}')" >/dev/null
wait_on $DB || fail "2pc: the fast path did not come on"
q -d $DB -c "BEGIN" -c "SET LOCAL pg_credit.fast_path = off" -c "INSERT INTO orders (customer, amount) VALUES ('P', 60)" \
  -c "PREPARE TRANSACTION 'fast_path_2pc'" || fail "2pc: PREPARE of a row-path order"
out=$(q -d $DB -c "SET statement_timeout = '1s'" -c "INSERT INTO orders (customer, amount) VALUES ('P', 50)" 2>&1)
grep -q "statement timeout" <<<"$out" || fail "2pc: a fast order did not wait for the prepared transaction ($out)"
q -d $DB -c "COMMIT PREPARED 'fast_path_2pc'"
out=$(q -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('P', 50)" 2>&1)
grep -q "exceeds the credit limit" <<<"$out" || fail "2pc: 60 prepared + 50 was not refused ($out)"
q -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('P', 40)" || fail "2pc: 60 + 40 refused"
[ "$(q -d $DB -c "SELECT count(*) FROM credit.verify()")" = 0 ] || fail "2pc: verify"
# 3b. Fast reservations go into the account row at PREPARE: the same, without SET LOCAL, and
#     across a restart while the transaction waits prepared (shared memory starts empty; the
#     recount waits for the prepared transaction's row, orders wait for the recount).
q -d $DB -c "INSERT INTO credit.account (customer, credit_limit) VALUES ('F', 100), ('F2', 100)" >/dev/null
q -d $DB -c "BEGIN" -c "INSERT INTO orders (customer, amount) VALUES ('F', 60)" \
  -c "PREPARE TRANSACTION 'fast_path_2pc_fast'" || fail "2pc: PREPARE of a fast order"
[ "$(q -d $DB -c "SELECT reserved_in_flight FROM credit.fast_path_status()")" = 0 ] \
    || fail "2pc: reservations left in shared memory after PREPARE"
out=$(q -d $DB -c "SET statement_timeout = '1s'" -c "INSERT INTO orders (customer, amount) VALUES ('F', 50)" 2>&1)
grep -q "statement timeout" <<<"$out" || fail "2pc: a fast order did not wait for the prepared fast order ($out)"
q -d $DB -c "COMMIT PREPARED 'fast_path_2pc_fast'"
out=$(q -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('F', 50)" 2>&1)
grep -q "exceeds the credit limit" <<<"$out" || fail "2pc: 60 prepared (fast) + 50 was not refused ($out)"
q -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('F', 40)" || fail "2pc: 60 (fast, prepared) + 40 refused"
q -d $DB -c "BEGIN" -c "INSERT INTO orders (customer, amount) VALUES ('F2', 60)" \
  -c "PREPARE TRANSACTION 'fast_path_2pc_restart'" || fail "2pc: PREPARE of a fast order before the restart"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w restart -l "$DIR/server.log" >/dev/null || fail "2pc: restart"
out=$(q -d $DB -c "SET pg_credit.fast_path_drain_timeout = '1s'" -c "INSERT INTO orders (customer, amount) VALUES ('F2', 10)" 2>&1)
grep -q "being recounted" <<<"$out" || fail "2pc: an order did not wait for the recount behind the prepared transaction ($out)"
q -d $DB -c "COMMIT PREPARED 'fast_path_2pc_restart'"
wait_on $DB || fail "2pc: the fast path did not come on after COMMIT PREPARED"
out=$(q -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('F2', 50)" 2>&1)
grep -q "exceeds the credit limit" <<<"$out" || fail "2pc: 60 prepared before a restart + 50 was not refused ($out)"
q -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('F2', 40)" || fail "2pc: 60 (prepared before a restart) + 40 refused"
[ "$(q -d $DB -c "SELECT count(*) FROM credit.verify()")" = 0 ] || fail "2pc: verify after the fast prepared orders"
q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"

# 4. Several databases under load at once: each has its own entries (same customer names), its own
#    flusher, and fills its own limit exactly; none sees another's reservations.
for n in 1 2 3; do
    q -d postgres -c "DROP DATABASE IF EXISTS pg_credit_fast_db$n" -c "CREATE DATABASE pg_credit_fast_db$n"
    q -d pg_credit_fast_db$n -c "CREATE EXTENSION pg_credit" \
      -c "CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open')" \
      -c "INSERT INTO credit.account (customer, credit_limit) VALUES ('HOT', 1000), ('COLD', 1000)" \
      -c "SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}')" >/dev/null
done
for n in 1 2 3; do wait_on pg_credit_fast_db$n || fail "databases: the fast path did not come on in db$n"; done
orderer() { # db: orders of 7 for HOT and COLD until both are refused
    local end=$((SECONDS + 20)) refused=0
    while ((SECONDS < end && refused < 2)); do
        refused=0
        for c in HOT COLD; do
            q -d "$1" -c "INSERT INTO orders (customer, amount) VALUES ('$c', 7)" >/dev/null 2>&1 || refused=$((refused + 1))
        done
    done
}
for n in 1 2 3; do for s in 1 2 3 4; do orderer pg_credit_fast_db$n & done; done
wait
for n in 1 2 3; do
    got=$(q -d pg_credit_fast_db$n -c "SELECT string_agg(customer || '=' || (SELECT coalesce(sum(amount), 0) FROM orders o WHERE o.customer = a.customer AND status = 'open'), ' ' ORDER BY customer) || ' flusher=' || (SELECT (flusher_pid IS NOT NULL OR flushes > 0)::text FROM credit.fast_path_status()) || ' drift=' || (SELECT count(*) FROM credit.verify()) FROM credit.account a")
    echo "database $n: $got"
    # 7 x 142 = 994: each limit filled to within one order, by this database's orders alone.
    [ "$got" = "COLD=994 HOT=994 flusher=true drift=0" ] || fail "databases: db$n ended at $got (expected each limit filled to 994 by its own orders)"
done
for n in 1 2 3; do q -d postgres -c "DROP DATABASE pg_credit_fast_db$n WITH (FORCE)"; done

# 5. A standby promoted to primary: its shared memory starts empty, and the orders the old primary
#    had committed but not yet flushed into credit.account are recounted from the order rows.
DB=pg_credit_fast_promote
SDIR=$DIR/standby SPORT=$((PORT + 1))
qs() { "$PGBIN/psql" -X -q -At -h "$SDIR" -p "$SPORT" -U postgres "$@"; }
# A slow flusher from its start (set before the database exists), so that the order below stays
# unflushed on the primary.
q -d postgres -c "ALTER SYSTEM SET pg_credit.fast_path_flush_interval = '60s'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -d $DB -c "CREATE EXTENSION pg_credit" \
  -c "CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open')" \
  -c "INSERT INTO credit.account (customer, credit_limit) VALUES ('S', 100), ('S2', 100)" \
  -c "SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}')" >/dev/null
wait_on $DB || fail "promote: the fast path did not come on"
rm -rf "$SDIR"; mkdir -p "$SDIR"; chown postgres: "$SDIR"
runuser -u postgres -- "$PGBIN/pg_basebackup" -h "$DIR" -p "$PORT" -U postgres -D "$SDIR/data" -R -X stream >/dev/null \
    || fail "promote: pg_basebackup"
printf "port = %s\nunix_socket_directories = '%s'\n" "$SPORT" "$SDIR" >>"$SDIR/data/postgresql.conf"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$SDIR/data" -l "$SDIR/server.log" -w start >/dev/null || fail "promote: standby start"
# The order must still be unflushed on the primary when it fails. A flush before that (seen once
# in about seven runs, cause not yet found) makes the case prove nothing: then it is said, with
# the primary's fast-path state, and the case runs once more with another customer.
for S in S S2; do
    q -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('$S', 60)"
    lsn=$(q -d postgres -c "SELECT pg_current_wal_lsn()")
    for _ in $(seq 1 100); do
        [ "$(qs -d postgres -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break
        sleep 0.1
    done
    row=$(qs -d $DB -c "SELECT open_orders FROM credit.account WHERE customer = '$S'")
    [ "$row" = 0 ] && break
    echo "promote: the order of $S was flushed before the failover (open_orders $row on the standby); primary: $(q -d $DB -c "SELECT row(f.*) FROM credit.fast_path_status() f")"
done
state=$(qs -d $DB -c "SELECT state FROM credit.fast_path_status()")
echo "promote: on the standby, credit.account shows open_orders $row for $S (the primary had not flushed 60); fast path $state"
[ "$row" = 0 ] || fail "promote: the order was flushed before the failover; the test proves nothing ($row)"
[ "$state" = "off (a standby takes no orders)" ] || fail "promote: fast path state on the standby: $state"
# On the standby every view reads, and every function callable without arguments answers or
# refuses with a SQLSTATE of its own (25006 for writers), never XX000 (generated from the catalog).
for v in $(qs -d $DB -c "SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'v' ORDER BY 1"); do
    r=$(qs -d $DB -c "SELECT count(*) FROM $v" 2>&1 | tail -1)
    case "$r" in [0-9]*) ;; *) fail "standby: view $v: $r" ;; esac
done
n=0
for f in $(qs -d $DB -c "SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'credit'::regnamespace AND p.proname NOT LIKE '\_%' AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype AND p.pronargs = p.pronargdefaults ORDER BY 1" | tr -d ' '); do
    r=$(qs -d $DB -c "\set VERBOSITY sqlstate" -c "SELECT count(*) FROM (SELECT ${f%%(*}()) x" 2>&1 | tail -1)
    n=$((n + 1))
    case "$r" in *XX000*|*XX001*|*panic*) fail "standby: $f: $r" ;; esac
done
echo "promote: on the standby, every view read and $n functions without arguments answered without XX000"
# The primary fails; the standby takes over.
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$SDIR/data" -w promote >/dev/null || fail "promote: pg_ctl promote"
for _ in $(seq 1 600); do [ "$(qs -d $DB -c "SELECT state FROM credit.fast_path_status()" 2>/dev/null)" = on ] && break; sleep 0.1; done
out=$(qs -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('$S', 50)" 2>&1)
grep -q "exceeds the credit limit" <<<"$out" || fail "promote: 60 (unflushed on the old primary) + 50 was not refused ($out)"
qs -d $DB -c "INSERT INTO orders (customer, amount) VALUES ('$S', 40)" || fail "promote: 60 + 40 refused"
got=$(qs -d $DB -c "SELECT credit.exposure('$S') || ' ' || (SELECT state FROM credit.fast_path_status()) || ' drift=' || (SELECT count(*) FROM credit.verify())")
echo "promote: after promotion, exposure state drift: $got"
[ "$got" = "100 on drift=0" ] || fail "promote: after promotion $got"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$SDIR/data" -m fast -w stop >/dev/null
rm -rf "$SDIR"
# The old primary comes back as it was (it is thrown away with the cluster afterwards).
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null || fail "promote: primary restart"
q -d postgres -c "ALTER SYSTEM RESET pg_credit.fast_path_flush_interval" -c "SELECT pg_reload_conf()" >/dev/null
q -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
fi

# 6. Crash stress.
DB=pg_credit_fast_crash
WORK=$(mktemp -d /tmp/pg_credit_fast.XXXXXX)
q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -d $DB >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit) VALUES ('HOT', 3000);
INSERT INTO credit.account (customer, credit_limit) SELECT 'C' || lpad(i::text, 3, '0'), 300 + (i % 5) * 200 FROM generate_series(1, 200) i;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}');
-- What the monitor checks: from the source rows alone (open orders and the ledger), in one
-- snapshot, no customer is over its limit.
CREATE FUNCTION over_limit() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('%s: %s > %s', a.customer, x.exposure, a.credit_limit)
      FROM credit.account a JOIN credit._recomputed() x ON x.customer = a.customer
     WHERE x.exposure > a.credit_limit
$$;
SQL
wait_on $DB || fail "crash: the fast path did not come on"
client() {
    local s=$1 end=$((SECONDS + SECS)) op cust amt
    while ((SECONDS < end)); do
        op=$((RANDOM % 100)); amt=$((1 + RANDOM % 120))
        if ((RANDOM % 3 == 0)); then cust=HOT; else cust=$(printf 'C%03d' $((1 + RANDOM % 200))); fi
        if ((op < 55)); then
            # An order, held open a moment so that kills find reservations in flight.
            q -d $DB -c "BEGIN" -c "INSERT INTO orders (customer, amount) VALUES ('$cust', $amt)" \
              -c "SELECT pg_sleep(0.02)" -c "COMMIT" >/dev/null 2>&1
        elif ((op < 70)); then
            q -d $DB -c "UPDATE orders SET status = 'cancelled' WHERE id = (SELECT id FROM orders WHERE customer = '$cust' AND status = 'open' ORDER BY random() LIMIT 1)" >/dev/null 2>&1
        elif ((op < 82)); then
            # Invoicing an order: it leaves open orders and becomes a receivable, in one transaction.
            q -d $DB -c "BEGIN" -c "WITH o AS (UPDATE orders SET status = 'invoiced' WHERE id = (SELECT id FROM orders WHERE customer = '$cust' AND status = 'open' LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, amount) SELECT credit.post_invoice('$cust', 'I-' || id, amount, current_date) FROM o" -c "COMMIT" >/dev/null 2>&1
        elif ((op < 92)); then
            q -d $DB -c "SELECT credit.post_payment('$cust', $amt)" >/dev/null 2>&1
        else
            q -d $DB -c "BEGIN" -c "SAVEPOINT a" -c "INSERT INTO orders (customer, amount) VALUES ('$cust', $amt)" \
              -c "ROLLBACK TO SAVEPOINT a" -c "INSERT INTO orders (customer, amount) VALUES ('$cust', 1)" -c "COMMIT" >/dev/null 2>&1
        fi
    done
}
monitor() {
    local end=$((SECONDS + SECS))
    while ((SECONDS < end)); do
        q -d $DB -c "SELECT * FROM over_limit()" >>"$WORK/violations" 2>/dev/null
        q -d $DB -c "SELECT row_path_when_full FROM credit.fast_path_status()" >>"$WORK/full" 2>/dev/null
        sleep 0.3
    done
}
killer() { # SIGKILL a backend holding reservations every 8 s: the postmaster restarts shared memory
    local end=$((SECONDS + SECS - 8)) pid kills=0
    sleep 4
    while ((SECONDS < end)); do
        # A client's order transaction sleeps after its INSERT: a backend there holds a reservation.
        pid=$(q -d postgres -c "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND state IN ('active', 'idle in transaction') AND query LIKE 'SELECT pg_sleep%' LIMIT 1" 2>/dev/null)
        if [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; then
            kills=$((kills + 1))
            sleep 8
        else
            sleep 0.05
        fi
    done
    echo "$kills" >"$WORK/kills"
}
for s in $(seq 1 32); do client "$s" & done
monitor & killer &
sleep $((SECS - 5))
# An immediate stop with the clients still running, then a restart.
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null
wait
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
wait_on $DB || fail "crash: the fast path did not come on after the restart"
kills=$(cat "$WORK/kills" 2>/dev/null || echo 0)
full=$(sort -n "$WORK/full" 2>/dev/null | tail -1)   # most seen between restarts of shared memory
violations=$(grep -c . "$WORK/violations" 2>/dev/null)
over=$(q -d $DB -c "SELECT count(*) FROM over_limit()")
drift=$(q -d $DB -c "SELECT count(*) FROM credit.verify()")
left=$(q -d $DB -c "SELECT reserved_in_flight FROM credit.fast_path_status()")
q -d $DB -c "SELECT credit.flush_open_orders()" >/dev/null
after_flush=$(q -d $DB -c "SELECT count(*) FROM credit.verify()")
stats=$(q -d $DB -c "SELECT count(*) FILTER (WHERE status = 'open') || ' open, ' || count(*) FILTER (WHERE status = 'cancelled') || ' cancelled, ' || count(*) FILTER (WHERE status = 'invoiced') || ' invoiced orders; HOT at ' || credit.exposure('HOT') || ' of 3000; ' || (SELECT count(*) FROM credit.account a WHERE credit.exposure(a.customer) > a.credit_limit - 120) || ' customers within one order of their limit' FROM orders")
echo "crash stress: $stats; backends killed $kills (+ an immediate stop); reservations that found shared memory full ${full:-?}; over the limit during the run $violations, after $over; verify $drift, after a flush $after_flush; left reserved $left"
[ "$violations" = 0 ] || { head -5 "$WORK/violations"; fail "crash: a limit was crossed"; }
[ "$over" = 0 ] || fail "crash: over the limit after recovery"
[ "$drift" = 0 ] && [ "$after_flush" = 0 ] || fail "crash: credit.verify() not empty"
[ "$left" = 0 ] || fail "crash: reservations left in shared memory"
[ "$kills" -ge 1 ] || fail "crash: no backend was killed"
if [ -n "$ONLY" ]; then [ "${full:-0}" -gt 0 ] || fail "crash: shared memory was never full (pg_credit.fast_path_customers)"; fi
rm -rf "$WORK"
exit $rc
