#!/usr/bin/env bash
# Runs every test layer; `make test` and .ci/run call this. Set-up included: a fresh Debian 12
# machine with only the Rust toolchain is enough.
#   0. habits: cargo fmt --check, cargo clippy -D warnings, every file comments name exists
#   1. unit and property tests of the core (cargo test -p credit_core, no PostgreSQL) + #[pg_test]s
#      (cargo pgrx test, as postgres)
#   2. pg_regress: the SQL contract, with expected output          (tests/pg_regress)
#   3. pg_isolation_regress: concurrency                          (tests/isolation)
#   4. multi-session stress: 16+ sessions racing on one customer    (tests/stress)
#   5. pg_dump / pg_restore of a populated database                 (tests/dump_restore.sh)
#   6. the SQL examples in docs/*.md, output compared with the page  (tests/docs)
#   7. statement, credit file and morning pages in headless Chromium: A4, CJK, every figure, chart marks (tests/browser)
#   8. pg_cron schedules credit.run_daily and it takes effect          (tests/cron)
#   9. the updates 0.1.0 -> and 0.2.0 -> current on filled databases; the suite on each (tests/upgrade)
#  10. 32 sessions, crash (immediate stop) under load, recovery checks   (tests/stress/crash.sh)
#  11. backend memory flat over 200,000 guarded inserts in one session   (bench/memory.sh --check)
#  12. 32 sessions refusing for 60 s: every refusal a client saw recorded (tests/stress/refusals.sh)
#  13. the courier against real SMTP (STARTTLS, AUTH) and signature-checking HTTP receivers: content,
#      dead letters, kill -9, server down, two couriers                  (tests/courier)
#  14. the fast path on a server that preloads pg_credit: its SQL contract, isolation specs, a
#      prepared order, three databases at once, a promoted standby, 32 sessions with SIGKILLed
#      backends and an immediate stop, dump/restore; again with room for 16 customers only, so
#      that the fast path and the row path run side by side (tests/fast_path)
#  15. Citus 13.2.2 (built from third_party/citus) with a coordinator and two workers: the contract
#      through the coordinator (orders, postings, limit requests, holds, the dunning ladder, payment
#      arrangements, aging, the daily job, statements, the morning page), three ladder runs at once
#      with payments in flight, 32 sessions over 100 tight limits with a shard move under load,
#      again with pg_credit preloaded (the fast path per node) (tests/citus); skipped, and said so,
#      where Citus cannot be built
# Ends with one line "N passed, N failed" over the layers.
source "$(dirname "$0")/common.sh"
DIR=/tmp/pg_credit_test
PORT=5492
OUT="$ROOT/target/test-results"
rm -rf "$OUT"; mkdir -p "$OUT"
passed=0; failed=0; failures=()
layer() { # name command...
    local name=$1; shift
    local started=$SECONDS
    log "test layer: $name"
    if "$@"; then passed=$((passed + 1)); log "PASS $name ($((SECONDS - started)) s)"
    else failed=$((failed + 1)); failures+=("$name"); log "FAIL $name ($((SECONDS - started)) s)"; fi
}

# Statement pages are printed by a real browser (layer 7): Debian's chromium, a CJK font so
# Chinese text renders, poppler to read the PDFs back.
# The courier's receivers (layer 13): Debian's Python with aiosmtpd, openssl for a test CA.
ensure_deps chromium fonts-noto-cjk poppler-utils python3-aiosmtpd openssl
export USER=${USER:-root}

habits() {
    (cd "$ROOT" && cargo fmt --all -- --check) || { echo "cargo fmt --all would change the files above"; return 1; }
    (cd "$ROOT" && cargo clippy --workspace --all-targets -- -D warnings) || return 1
    "$ROOT/tests/docs/check_paths.sh"
}

unit_tests() {
    (cd "$ROOT" && cargo test -p credit_core) || return 1
    # pgrx initdb's its own cluster as postgres under --pgdata (must not be under /root).
    (cd "$ROOT" && cargo pgrx test pg15 --runas postgres --pgdata /tmp/pg_credit_pgrx_test)
}

regress() {
    local out="$OUT/pg_regress"
    mkdir -p "$out"
    local tests
    tests=$(cd "$ROOT/tests/pg_regress/sql" && ls ./*.sql | sed 's|^\./||; s/\.sql$//' | sort)
    for t in $tests; do
        [ -f "$ROOT/tests/pg_regress/expected/$t.out" ] || { echo "tests/pg_regress/sql/$t.sql has no expected output"; return 1; }
    done
    "$PGXS_TEST/regress/pg_regress" --host="$DIR" --port="$PORT" --user=postgres \
        --dbname=pg_credit_regress --load-extension=pg_credit \
        --inputdir="$ROOT/tests/pg_regress" --outputdir="$out" $tests \
        || { cat "$out/regression.diffs" 2>/dev/null | head -300; return 1; }
}

isolation() {
    local out="$OUT/isolation"
    mkdir -p "$out"
    local specs
    specs=$(cd "$ROOT/tests/isolation/specs" && ls ./*.spec | sed 's|^\./||; s/\.spec$//' | sort)
    "$PGXS_TEST/isolation/pg_isolation_regress" --host="$DIR" --port="$PORT" --user=postgres \
        --dbname=pg_credit_isolation \
        --inputdir="$ROOT/tests/isolation" --outputdir="$out" $specs \
        || { cat "$out/regression.diffs" 2>/dev/null | head -300; return 1; }
}

layer "format, lint, paths" habits
layer "unit + pg_test" unit_tests
# cargo pgrx test installed a test build (with its tests schema); put the normal build back.
install_extension
# pg_cron preloaded for layer 8 (jobs run in background workers: no connection settings needed).
EXTRA_CONF="shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16" start_cluster "$DIR" "$PORT"
trap 'stop_cluster "$DIR"' EXIT
layer "pg_regress" regress
layer "isolation" isolation
layer "stress" "$ROOT/tests/stress/stress.sh" "$DIR" "$PORT"
layer "dump/restore" "$ROOT/tests/dump_restore.sh" "$DIR" "$PORT"
layer "docs examples" "$ROOT/tests/docs/check_examples.sh" "$DIR" "$PORT"
browser_pages() {
    "$ROOT/tests/browser/statement.sh" "$DIR" "$PORT" && "$ROOT/tests/browser/file.sh" "$DIR" "$PORT" \
        && "$ROOT/tests/browser/portfolio.sh" "$DIR" "$PORT"
}
layer "statement, credit file and morning pages in a browser" browser_pages
layer "pg_cron schedule" "$ROOT/tests/cron/cron.sh" "$DIR" "$PORT"
layer "updates from 0.1.0 and 0.2.0" "$ROOT/tests/upgrade/upgrade.sh" "$DIR" "$PORT"
layer "crash under load" "$ROOT/tests/stress/crash.sh" "$DIR" "$PORT"
memory_check() { N=200000 "$ROOT/bench/memory.sh" --check; }
layer "memory over 200,000 inserts" memory_check
layer "refusals under load" "$ROOT/tests/stress/refusals.sh" "$DIR" "$PORT"
layer "courier against real SMTP and HTTP receivers" "$ROOT/tests/courier/courier.sh" "$DIR" "$PORT"
# The fast path needs pg_credit in shared_preload_libraries: a second cluster of its own.
fast_path() {
    local dir=/tmp/pg_credit_fast_test port=5497 rc
    EXTRA_CONF="shared_preload_libraries = 'pg_credit'
max_worker_processes = 16" start_cluster "$dir" "$port" || return 1
    "$ROOT/tests/fast_path/run.sh" "$dir" "$port"; rc=$?
    # pg_dump / pg_restore on it: the restored database recounts before taking orders.
    "$ROOT/tests/dump_restore.sh" "$dir" "$port" || rc=1
    stop_cluster "$dir"
    # Shared memory for 16 customers only: most of the 201 take the row path, beside fast ones.
    EXTRA_CONF="shared_preload_libraries = 'pg_credit'
pg_credit.fast_path_customers = 16
pg_credit.fast_path_flush_interval = 10s
max_worker_processes = 16" start_cluster "$dir" "$port" || return 1
    "$ROOT/tests/fast_path/run.sh" "$dir" "$port" 25 stress || rc=1
    stop_cluster "$dir"
    return $rc
}
layer "fast path (pg_credit preloaded)" fast_path
# Citus 13.2.2 is built from third_party/citus (not packaged for Debian 12). A machine that cannot
# build it skips the layer, and the summary says so.
skipped=()
citus() {
    if ! ensure_citus; then
        log "SKIPPED the Citus layer: Citus $CITUS_VERSION could not be built here (target/citus/*.log says why)"
        skipped+=("Citus")
        return 0
    fi
    "$ROOT/tests/citus/run.sh" /tmp/pg_credit_citus 5500
}
layer "Citus: coordinator and two workers" citus

echo
if ((failed)); then echo "failed layers: ${failures[*]}"; fi
if ((${#skipped[@]})); then echo "skipped: ${skipped[*]} (counted as passed)"; fi
echo "$passed passed, $failed failed"
((failed == 0))
