#!/usr/bin/env bash
# Sourced by tests/citus/run.sh and bench/citus.sh: a Citus cluster of a coordinator and two
# workers on loopback ports, each a throwaway cluster of scripts/common.sh's start_cluster.
#   citus_start BASE PORT [preload]: nodes in BASE/{coordinator,worker1,worker2} on PORT, PORT+1,
#   PORT+2; database pg_credit_citus on each with citus and pg_credit created, workers added.
#   preload "pg_credit" adds pg_credit to shared_preload_libraries (the fast path on every node).
citus_nodes=(coordinator worker1 worker2)
citus_start() {
    local base=$1 port=$2 preload=${3:-} i=0
    local libs="citus${preload:+,$preload}"
    for n in "${citus_nodes[@]}"; do
        EXTRA_CONF="shared_preload_libraries = '$libs'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_worker_processes = 32
max_connections = 200
max_prepared_transactions = 200
citus.shard_count = 8
citus.enable_unsafe_triggers = on
${EXTRA_CITUS_CONF:-}" start_cluster "$base/$n" $((port + i)) || return 1
        i=$((i + 1))
    done
    # Loopback with trust (start_cluster's initdb --auth=trust): nodes connect to each other by TCP.
    for i in 0 1 2; do
        pg "$base/${citus_nodes[$i]}" $((port + i)) -d postgres -c "CREATE DATABASE pg_credit_citus" || return 1
        pg "$base/${citus_nodes[$i]}" $((port + i)) -d pg_credit_citus -c "CREATE EXTENSION citus; CREATE EXTENSION pg_credit" || return 1
    done
    pg "$base/coordinator" "$port" -d pg_credit_citus -c "
        SELECT citus_set_coordinator_host('127.0.0.1', $port);
        SELECT citus_add_node('127.0.0.1', $((port + 1)));
        SELECT citus_add_node('127.0.0.1', $((port + 2)));" >/dev/null
}
citus_stop() {
    local base=$1
    for n in "${citus_nodes[@]}"; do stop_cluster "$base/$n"; done
}
