#!/usr/bin/env bash
# Sourced by tests/citus/run.sh and bench/citus.sh (after scripts/common.sh): a Citus cluster of a
# coordinator and two workers on loopback ports, each a throwaway cluster of start_cluster.
#   citus_start BASE PORT: nodes in BASE/{coordinator,worker1,worker2} on PORT, PORT+1, PORT+2
#   citus_db BASE PORT NAME: database NAME on every node, with citus and pg_credit, workers added
#   citus_stop BASE
citus_nodes=(coordinator worker1 worker2)
citus_start() {
    local base=$1 port=$2 i=0
    for n in "${citus_nodes[@]}"; do
        # wal_level logical: shard moves copy by logical replication while orders go on.
        EXTRA_CONF="shared_preload_libraries = 'citus'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_worker_processes = 32
max_connections = 300
max_prepared_transactions = 300
citus.shard_count = 8
shared_buffers = 128MB
citus.enable_unsafe_triggers = on
log_error_verbosity = verbose
${EXTRA_CITUS_CONF:-}" start_cluster "$base/$n" $((port + i)) || return 1
        i=$((i + 1))
    done
}
citus_db() {
    local base=$1 port=$2 db=$3 i
    for i in 0 1 2; do
        pg "$base/${citus_nodes[$i]}" $((port + i)) -d postgres -c "SET client_min_messages = warning" \
            -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || return 1
        pg "$base/${citus_nodes[$i]}" $((port + i)) -d "$db" -c "CREATE EXTENSION citus" -c "CREATE EXTENSION pg_credit" || return 1
    done
    # Nodes reach each other over loopback TCP; start_cluster's clusters trust local connections.
    pg "$base/coordinator" "$port" -d "$db" -c "
        SELECT citus_set_coordinator_host('127.0.0.1', $port);
        SELECT citus_add_node('127.0.0.1', $((port + 1)));
        SELECT citus_add_node('127.0.0.1', $((port + 2)));" >/dev/null
}
citus_stop() {
    local base=$1
    for n in "${citus_nodes[@]}"; do stop_cluster "$base/$n"; done
}
