#!/usr/bin/env bash
# pg_credit on Citus (docs/citus.md): a coordinator and two workers on loopback ports, started here
# (tests/citus/cluster.sh); Citus 13.2.2 must be installed (scripts/common.sh ensure_citus).
#   1. pg_regress through the coordinator: the layout credit.distribute() makes, orders decided on
#      their shard's node, postings, limit requests approved, rejected and withdrawn on their
#      customer's node (one from before distribution), what does not run on Citus refused clearly,
#      repairs cluster-wide (citus_orders); hold mode: orders held on their node, released, forced and
#      cancelled from the coordinator, across a shard move (citus_holds); the dunning ladder run
#      per shard group on its worker: tasks, holds, legal referral, promises, a payment that
#      resolves and lifts (citus_ladder); payment arrangements agreed, refused, decided by a run
#      (broken, completed) and cancelled through the coordinator, one across a shard move
#      (citus_arrangements); aging for any date and basis, its BI views, the provision matrix
#      and the receivables metrics read over every node (citus_analytics); in a database of its
#      own, the daily job as a manager: temporary limits, collections, re-grading, the history,
#      early warnings, statements; account changes recorded on the workers with their reason and
#      person; missed days rebuilt from every node; last month's statements issued and checked;
#      the morning page read as the manager, with the ladder's preview from each worker (citus_daily);
#      then the credit file and its page, the payment model trained and used, reconciliation with
#      the finance ledger and a document's trace, the review's summary (citus_files); every entry
#      point called with valid arguments, generated from the catalog: none with XX000
#      (citus_entry_points) (tests/citus/sql)
#      Then three runs of collections at once with payments in flight: one does the work, none twice.
#   2. the race: 32 sessions order, grow and cancel over 100 customers with tight limits while a
#      monitor compares every customer's open orders and counter with its limit; in the middle of
#      the load one shard group moves to the other worker (citus_move_shard_placement, logical
#      replication). Passes when no limit was ever crossed, orders were accepted and refused, no
#      client failed otherwise, the shard moved, and credit.verify() is empty. Then a listener on
#      the coordinator hears each event credit.relay_events() publishes from the workers, once.
#   3. the race again with pg_credit preloaded on every node: orders on the shards reserve in their
#      node's shared memory (the fast path's per-node form, written into the shard's rows at
#      commit), exact under the shard move; nothing left in shared memory after the load; an order
#      in flight locks no account row and counts at once, commit, savepoint and abort
#      (specs/citus_fast_path); one transaction over both workers written by each worker's PREPARE
#   tests/citus/run.sh BASE_DIR PORT [SECONDS]
set -uo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
source "$(dirname "$0")/cluster.sh"
set +e
BASE=$1 PORT=$2 SECS=${3:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$ROOT/target/test-results/citus"
rm -rf "$OUT"; mkdir -p "$OUT"
rc=0
fail() { echo "FAIL: $*"; rc=1; }
C="$BASE/coordinator"
q() { "$PGBIN/psql" -X -q -At -h "$C" -p "$PORT" -U postgres "$@"; }

cd "$ROOT" || exit 1   # citus_entry_points reads the one-node suite's helpers from here
citus_start "$BASE" "$PORT" || { echo "FAIL: the Citus cluster did not start"; exit 1; }
trap 'citus_stop "$BASE"' EXIT

# 1. The contract, through the coordinator.
citus_db "$BASE" "$PORT" pg_credit_citus || fail "database pg_credit_citus"
"$PGXS_TEST/regress/pg_regress" --host="$C" --port="$PORT" --user=postgres --use-existing \
    --dbname=pg_credit_citus --inputdir="$HERE" --outputdir="$OUT/regress" citus_orders citus_holds citus_ladder citus_arrangements citus_analytics \
    || { cat "$OUT/regress/regression.diffs" 2>/dev/null | head -300; fail "pg_regress"; }
# The daily job in a distributed database of its own (it re-grades and records every customer).
citus_db "$BASE" "$PORT" pg_credit_citus_daily || fail "database pg_credit_citus_daily"
"$PGXS_TEST/regress/pg_regress" --host="$C" --port="$PORT" --user=postgres --use-existing \
    --dbname=pg_credit_citus_daily --inputdir="$HERE" --outputdir="$OUT/regress_daily" citus_daily citus_files citus_entry_points \
    || { cat "$OUT/regress_daily/regression.diffs" 2>/dev/null | head -300; fail "pg_regress citus_daily"; }

# After the contract, on its distributed database: every view reads or is refused, and every
# function callable without arguments answers or refuses, with a SQLSTATE of its own, never XX000
# (generated from the catalog: what joins or reads the whole ledger may be refused by Citus).
views=0 funcs=0
for v in $(q -d pg_credit_citus -c "SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'v' ORDER BY 1"); do
    r=$(q -d pg_credit_citus -c "SET statement_timeout = '60s'" -c "\set VERBOSITY sqlstate" -c "SELECT count(*) FROM $v" 2>&1 | tail -1)
    views=$((views + 1))
    case "$r" in *XX000*|*XX001*|*panic*|*"server closed"*) fail "citus: view $v: $r" ;; esac
done
for f in $(q -d pg_credit_citus -c "SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'credit'::regnamespace AND p.proname NOT LIKE '\_%' AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype AND p.pronargs = p.pronargdefaults ORDER BY 1" | tr -d ' '); do
    r=$(q -d pg_credit_citus -c "SET statement_timeout = '60s'" -c "\set VERBOSITY sqlstate" -c "SELECT count(*) FROM (SELECT ${f%%(*}()) x" 2>&1 | tail -1)
    funcs=$((funcs + 1))
    case "$r" in *XX000*|*XX001*|*panic*|*"server closed"*) fail "citus: $f: $r" ;; esac
done
echo "citus: on the distributed database, $views views read and $funcs functions without arguments answered or refused, none with XX000"

# The ladder concurrently: three runs of collections at once, with payments being posted for the
# same customers. The run's lock lets one create the tasks; the others create none (they may
# resolve tasks of invoices a payment settled meanwhile); no (invoice, level) twice, every payment
# committed, the counters exact.
ladder_race() {
    local DB=pg_credit_ladder_race pids=() i out=$OUT/ladder_race
    mkdir -p "$out"
    citus_db "$BASE" "$PORT" $DB || { fail "database $DB"; return; }
    q -d $DB -c "SET client_min_messages = warning" -c "SELECT count(*) FROM credit.distribute()" \
        -c "INSERT INTO credit.account (customer, credit_limit) SELECT 'A-' || g, 1000 FROM generate_series(1, 60) g" \
        -c "SELECT count(*) FROM (SELECT credit.post_invoice('A-' || g, 'I-' || g, 100, CURRENT_DATE - 40 - g, CURRENT_DATE - g) FROM generate_series(1, 60) g) x" \
        >/dev/null || { fail "ladder race setup"; return; }
    for i in 1 2 3; do
        q -d $DB -c "SELECT count(*) FILTER (WHERE change = 'task_created') FROM credit.run_collections()" >"$out/run$i" 2>&1 & pids+=($!)
    done
    for i in $(seq 1 20); do
        q -d $DB -c "SELECT credit.post_payment('A-' || $i, 60) > 0" >"$out/pay$i" 2>&1 & pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || fail "ladder race: a session failed: $(cat "$out"/* | grep -m1 ERROR)"; done
    local runs dup pays drift
    runs=$(cat "$out"/run* | sort -n | tr '\n' ' ')
    dup=$(q -d $DB -c "SELECT count(*) FROM (SELECT 1 FROM credit.collection_task WHERE level IS NOT NULL
                                                GROUP BY customer, invoice_id, ladder, level HAVING count(*) > 1) x")
    pays=$(q -d $DB -c "SELECT count(*) FROM credit.settlement WHERE kind = 'payment'")
    drift=$(q -d $DB -c "SELECT count(*) FROM credit.verify()")
    echo "citus ladder: 3 runs at once with 20 payments in flight: tasks created per run $runs; (invoice, level) twice: $dup; payments committed: $pays of 20; drifting accounts: $drift"
    [ "$(echo "$runs" | tr ' ' '\n' | grep -c '^0$')" = 2 ] || fail "ladder race: not exactly one run did the work ($runs)"
    [ "$dup" = 0 ] && [ "$pays" = 20 ] && [ "$drift" = 0 ] || fail "ladder race: duplicates $dup, payments $pays, drift $drift"
}
ladder_race

# 2. The race, with a shard move in the middle.
race() { # database seconds: 32 sessions over 100 tight limits, a shard group moved a third of the way in
    local DB=$1 SECS=$2 shard moved_customers move_start clients monitor accepted refused violations drift node
    citus_db "$BASE" "$PORT" $DB || fail "database $DB"
    q -d $DB -f "$HERE/race/setup.sql" >/dev/null || fail "race setup"
    run_bench() { "$PGBIN/pgbench" -n -h "$C" -p "$PORT" -U postgres -T "$SECS" "$@" $DB; }
    run_bench -c 32 -j 2 -f "$HERE/race/place.pgbench@3" -f "$HERE/race/change.pgbench@1" >"$OUT/$DB.log" 2>&1 &
    clients=$!
    run_bench -c 1 -f "$HERE/race/monitor.pgbench" >"$OUT/$DB.monitor.log" 2>&1 &
    monitor=$!
    # The account shard group with most customers on worker 1 moves to worker 2.
    sleep $((SECS / 3))
    read -r shard moved_customers <<<"$(q -d $DB -F ' ' -c "
        WITH per_shard AS MATERIALIZED (
            SELECT get_shard_id_for_distribution_column('credit.account', a.customer) AS shardid, count(*) AS customers
              FROM credit.account a GROUP BY 1)
        SELECT x.shardid, x.customers FROM per_shard x JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
         WHERE n.nodeport = $((PORT + 1)) ORDER BY x.customers DESC, x.shardid LIMIT 1")"
    move_start=$SECONDS
    q -d $DB -c "SELECT citus_move_shard_placement($shard, '127.0.0.1', $((PORT + 1)), '127.0.0.1', $((PORT + 2)))" >/dev/null \
        || fail "$DB: citus_move_shard_placement of shard $shard"
    echo "citus $DB: shard $shard ($moved_customers customers, with their orders) moved from worker 1 to worker 2 under load in $((SECONDS - move_start)) s"
    wait $clients || fail "$DB: a race client failed: $(grep -m3 -E 'ERROR|aborted' "$OUT/$DB.log")"
    wait $monitor || fail "$DB: the monitor failed: $(grep -m3 -E 'ERROR|aborted' "$OUT/$DB.monitor.log")"
    grep -E "number of transactions actually processed|tps" "$OUT/$DB.log" | head -2
    q -d $DB -c "SELECT race.monitor()" >/dev/null
    read -r accepted refused violations drift node <<<"$(q -d $DB -F ' ' -c "
        SELECT (SELECT count(*) FROM race.attempt WHERE accepted), (SELECT count(*) FROM race.attempt WHERE NOT accepted),
               (SELECT count(*) FROM race.violation), (SELECT count(*) FROM credit.verify()),
               (SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $shard)")"
    echo "citus $DB: accepted $accepted, refused $refused; limits crossed $violations, drifting accounts $drift; shard $shard now on port $node"
    q -d $DB -c "SELECT what FROM race.violation LIMIT 5"
    [ "${accepted:-0}" -gt 0 ] && [ "${refused:-0}" -gt 0 ] || fail "$DB: the race accepted $accepted and refused $refused orders"
    [ "$violations" = 0 ] || fail "$DB: $violations limit crossings seen"
    [ "$drift" = 0 ] || fail "$DB: credit.verify() found $drift drifting accounts"
    [ "$node" = $((PORT + 2)) ] || fail "$DB: shard $shard is on port $node, not on worker 2"
}
DB=pg_credit_race
race $DB "$SECS"
# The workers' events, published from the coordinator: a listener hears each relayed row once.
q -d $DB -c "SELECT count(*) FROM credit.relay_events(100000)" >/dev/null   # the race's backlog
q -d $DB -c "INSERT INTO race.orders (customer, amount) VALUES ('R001', 100000)" >/dev/null 2>&1
q -d $DB -c "UPDATE credit.account SET credit_limit = credit_limit + 1" >/dev/null
"$PGBIN/psql" -X -At -h "$C" -p "$PORT" -U postgres -d $DB -c "LISTEN credit_events" -c "SELECT pg_sleep(3)" \
    >"$OUT/listen.log" 2>&1 &
listener=$!
sleep 1
q -d $DB -c "SELECT count(*) FROM run_command_on_workers('SELECT credit.record_refusals()')" >/dev/null
relayed=$(q -d $DB -c "SELECT count(*) FROM credit.relay_events(100000)")
again=$(q -d $DB -c "SELECT count(*) FROM credit.relay_events(100000)")
wait $listener
heard=$(grep -c 'notification "credit_events" with payload "{"node"' "$OUT/listen.log")
echo "citus events: $relayed relayed from the workers, $heard heard by a listener on the coordinator, $again relayed again"
[ "$relayed" -ge 101 ] && [ "$heard" = "$relayed" ] && [ "$again" = 0 ] \
    || fail "relay: $relayed relayed (expected the refusal and 100 limit changes at least), $heard heard, $again again"

# 3. pg_credit preloaded on every node: orders reserve in their node's shared memory (docs/citus.md),
#    and the race stays exact.
for n in "${citus_nodes[@]}"; do
    sed -i "s/^shared_preload_libraries = 'citus'$/shared_preload_libraries = 'citus,pg_credit'/" "$BASE/$n/data/postgresql.conf"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$BASE/$n/data" -l "$BASE/$n/server.log" -w restart >/dev/null || fail "restart of $n"
done
DB=pg_credit_race_preloaded
race $DB $((SECS / 2))
state=$("$PGBIN/psql" -X -At -h "$BASE/worker1" -p $((PORT + 1)) -U postgres -d $DB \
    -c "SELECT state FROM credit.fast_path_status()")
echo "citus, pg_credit preloaded: the fast path on a worker is \"$state\""
[ "$state" = "on (Citus: reservations per node, written into the shards at commit)" ] || fail "fast path state on a worker: $state"
# After the load: nothing left in any node's shared memory (entries go when their transactions end).
left=$(q -d $DB -c "SELECT string_agg(r.result, ' ' ORDER BY r.nodeport) FROM run_command_on_workers(
    'SELECT customers || ''/'' || reserved_in_flight || ''/'' || committed_not_flushed FROM credit.fast_path_status()') r")
echo "citus, pg_credit preloaded: customers / reserved in flight / committed not written, per worker, after the load: $left"
[ "$left" = "0/0/0 0/0/0" ] || fail "fast path: shared memory still holds $left after the load"
# An order in flight reserves on its node without locking the account row; commit, savepoint and
# abort (tests/citus/specs).
"$PGXS_TEST/isolation/pg_isolation_regress" --host="$C" --port="$PORT" --user=postgres --use-existing \
    --dbname=$DB --inputdir="$HERE" --outputdir="$OUT/isolation" citus_fast_path \
    || { cat "$OUT/isolation/regression.diffs" 2>/dev/null | head -200; fail "isolation citus_fast_path"; }
# One transaction over both workers (two-phase commit): each worker's PREPARE writes its customer's
# reservation into its shard's row; both rows exact at once, nothing drifting.
read -r c1 c2 <<<"$(q -d $DB -F ' ' -c "
    SELECT min(a.customer) FILTER (WHERE n.nodeport = $((PORT + 1))), min(a.customer) FILTER (WHERE n.nodeport = $((PORT + 2)))
      FROM credit.account a
      JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('credit.account', a.customer)
      JOIN pg_dist_node n USING (groupid) WHERE a.customer LIKE 'R%'")"
q -d $DB -c "UPDATE race.orders SET status = 'cancelled' WHERE customer IN ('$c1', '$c2') AND status = 'open'" >/dev/null
q -d $DB -c "BEGIN" -c "INSERT INTO race.orders (customer, amount) VALUES ('$c1', 30), ('$c2', 40)" -c "COMMIT" >/dev/null \
    || fail "a transaction over both workers"
two=$(q -d $DB -c "SELECT string_agg(customer || '=' || open_orders, ' ' ORDER BY customer) FROM credit.account WHERE customer IN ('$c1', '$c2')")
drift=$(q -d $DB -c "SELECT count(*) FROM credit.verify()")
echo "citus, pg_credit preloaded: one transaction over both workers ($c1 on worker 1, $c2 on worker 2): $two; drifting accounts $drift"
[ "$two" = "$(printf '%s\n' "$c1=30.00" "$c2=40.00" | sort | paste -sd ' ')" ] && [ "$drift" = 0 ] \
    || fail "two-phase commit with the fast path: $two, drift $drift"
exit $rc
