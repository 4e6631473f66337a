#!/usr/bin/env bash
# pg_credit on Citus against one node, on the same machine (docs/citus.md): orders per second
# through a coordinator with two workers (tests/citus/cluster.sh) and on a single node, each with
# and without the guard, 10,000 customers and one hot customer, and ledger postings (an invoice, a
# payment applied FIFO) through the same coordinator; and the analytics reads over the same
# receivables on both (aging of today through its BI view, aging as of a past date, the provision
# matrix: bench/citus_aging_data.sql), 2 clients; medians of interleaved rounds; and the daily job
# (a dry re-grade, against every customer's score read by itself; last month's statement run;
# one account's repair against the cluster-wide verify;
# then credit.run_daily()) and 200 credit files over the same accounts, once per side.
# The single node runs the row path (no shared_preload_libraries), as Citus does.
#   bench/citus.sh                       # 3 rounds of 15 s per variant, 16 clients
#   ROUNDS=5 SECONDS_PER_RUN=20 CLIENTS=32 bench/citus.sh
#   DAILY_ONLY=1 bench/citus.sh          # only the daily job, over the 2,000 customers with receivables
# Results are printed and written to target/bench/citus.md (BENCHMARKS.md quotes them).
source "$(dirname "$0")/../scripts/common.sh"
source "$ROOT/tests/citus/cluster.sh"
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
CLIENTS=${CLIENTS:-16}
ONE=/tmp/pg_credit_bench_one ONE_PORT=5495
CITUS=/tmp/pg_credit_bench_citus CITUS_PORT=5520
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

ensure_deps
ensure_citus || { log "Citus could not be built: no benchmark"; exit 1; }
install_extension release
# Both sides get the same settings, the single node also 128MB of shared buffers per node.
EXTRA_CONF="shared_buffers = 128MB
max_connections = 300" start_cluster "$ONE" "$ONE_PORT"
citus_start "$CITUS" "$CITUS_PORT"
trap 'stop_cluster "$ONE"; citus_stop "$CITUS"' EXIT
pg "$ONE" "$ONE_PORT" -c "CREATE DATABASE bench" -d postgres
pg "$ONE" "$ONE_PORT" -d bench -c "CREATE EXTENSION pg_credit"
citus_db "$CITUS" "$CITUS_PORT" bench
if [ -n "${DAILY_ONLY:-}" ]; then
    pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -c "SET client_min_messages = warning" -c "SELECT count(*) FROM credit.distribute()" >/dev/null
else
    pg "$ONE" "$ONE_PORT" -d bench -v citus=0 -f "$ROOT/bench/citus_setup.sql" >/dev/null
    pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -v citus=1 -f "$ROOT/bench/citus_setup.sql" >/dev/null
fi

tps() { # host port script [clients]
    "$PGBIN/pgbench" -n -M prepared -h "$1" -p "$2" -U postgres -c "${4:-$CLIENTS}" -j 2 -T "$SECONDS_PER_RUN" -f "$3" bench 2>&1 \
        | awk '/^tps = /{print $3}'
}
declare -A results
# Analytics first, while both sides hold the same receivables (the rounds below post more).
pg "$ONE" "$ONE_PORT" -d bench -f "$ROOT/bench/citus_aging_data.sql" >/dev/null
pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -f "$ROOT/bench/citus_aging_data.sql" >/dev/null
same_q="SELECT (SELECT sum(total) || ' / ' || sum(overdue) FROM credit.aging_by_customer) || ' / ' || (SELECT expected_loss FROM credit.expected_loss() WHERE customer IS NULL)"
same_one=$(pg "$ONE" "$ONE_PORT" -d bench -Atc "$same_q")
same_citus=$(pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -Atc "$same_q")
READS="aging_by_customer aging_past expected_loss"
[ -z "${DAILY_ONLY:-}" ] || ROUNDS=0
for r in $(seq 1 "$ROUNDS"); do
    for v in $READS; do
        t=$(tps "$ONE" "$ONE_PORT" "$ROOT/bench/$v.pgbench" 2); results[one_$v]+="$t "; log "round $r one node $v: $t tps"
        t=$(tps "$CITUS/coordinator" "$CITUS_PORT" "$ROOT/bench/$v.pgbench" 2); results[citus_$v]+="$t "; log "round $r Citus $v: $t tps"
    done
done
# The daily job over the same accounts (12,001: 2,000 with receivables), once per side (a second
# run the same day does less): a dry re-grade (reads only), then the whole job. Milliseconds.
elapsed_ms() { # host port sql
    local t0 t1
    t0=$(date +%s%N)
    pg "$1" "$2" -d bench -Atc "SET client_min_messages = error" -c "$3" >/dev/null || { echo "failed"; return; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
regrade_one=$(elapsed_ms "$ONE" "$ONE_PORT" "SELECT count(*) FROM credit.regrade(dry_run => true)")
regrade_citus=$(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "SELECT count(*) FROM credit.regrade(dry_run => true)")
# The same scores one customer at a time (credit.score per account: how the re-grade read them
# before it read them set-wise), the baseline of the re-grade's reads.
scores_q="WITH c AS MATERIALIZED (SELECT customer FROM credit.account)
          SELECT count(x.score) FROM c, LATERAL (SELECT s.score FROM credit.score(c.customer) s OFFSET 0) x"
scores_one=$(elapsed_ms "$ONE" "$ONE_PORT" "$scores_q")
scores_citus=$(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "$scores_q")
# Both sides review alike: every row of the dry re-grade compared by digest.
regrade_q="SELECT md5(string_agg(r::text, '|' ORDER BY r.customer)) || ' ' || count(r.score) || ' scored, '
                  || count(*) FILTER (WHERE r.new_grade IS DISTINCT FROM r.old_grade) || ' grades changing, '
                  || count(*) FILTER (WHERE r.action IN ('increase', 'decrease', 'request')) || ' limits'
             FROM credit.regrade(dry_run => true) r"
reviewed_one=$(pg "$ONE" "$ONE_PORT" -d bench -Atc "$regrade_q")
reviewed_citus=$(pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -Atc "$regrade_q")
same_reviews=$([ "$reviewed_one" = "$reviewed_citus" ] && echo "the same reviews, ${reviewed_one#* }" || echo "DIFFERENT reviews: $reviewed_one / $reviewed_citus")
# Last month's statements (monthly is the default cycle): every customer with receivables gets one.
month_end="(date_trunc('month', current_date)::date - 1)"
statements_one=$(elapsed_ms "$ONE" "$ONE_PORT" "SELECT count(*) FROM credit.statement_run($month_end)")
statements_citus=$(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "SELECT count(*) FROM credit.statement_run($month_end)")
issued_one=$(pg "$ONE" "$ONE_PORT" -d bench -Atc "SELECT count(*) || ' statements, ' || sum(closing) FROM credit.statement")
issued_citus=$(pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -Atc "SELECT count(*) || ' statements, ' || sum(closing) FROM credit.statement")
daily_one=$(elapsed_ms "$ONE" "$ONE_PORT" "SELECT count(*) FROM credit.run_daily()")
daily_citus=$(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "SELECT count(*) FROM credit.run_daily()")
# The credit files of 200 customers with receivables (read from the coordinator on Citus).
files_q="WITH c AS MATERIALIZED (SELECT customer FROM credit.account WHERE open_ar > 0 ORDER BY customer LIMIT 200)
         SELECT count(*) FROM c, LATERAL (SELECT credit.file(c.customer) AS f OFFSET 0) x WHERE x.f IS NOT NULL"
files_one=$(elapsed_ms "$ONE" "$ONE_PORT" "$files_q")
files_citus=$(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "$files_q")
same_files_q="WITH c AS MATERIALIZED (SELECT customer FROM credit.account WHERE open_ar > 0 ORDER BY customer LIMIT 200)
              SELECT md5(string_agg(x.f::text, '' ORDER BY x.customer))
                FROM (SELECT c.customer, credit.file(c.customer) AS file FROM c OFFSET 0) y,
                     LATERAL (SELECT y.customer, jsonb_build_object('payment', y.file -> 'payment_behaviour', 'score', y.file #> '{score,score}',
                                                                    'grade', y.file #> '{identity,grade}', 'limit', y.file #> '{limits,in_force}',
                                                                    'holds', y.file -> 'holds_and_refusals') AS f) x"
same_files=$([ "$(pg "$ONE" "$ONE_PORT" -d bench -Atc "$same_files_q")" = "$(pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -Atc "$same_files_q")" ] && echo "the same documents" || echo "DIFFERENT documents")
# Repairing one account: 20 customers with receivables, each credit.rebuild_exposure(customer) by
# itself (milliseconds per call), against the cluster-wide check credit.verify(), which that call
# used to run twice before this version.
rebuild_q="SELECT count(credit.rebuild_exposure(customer)) FROM (SELECT customer FROM credit.account WHERE open_ar > 0 ORDER BY customer DESC LIMIT 20) c"
rebuild_one=$(( $(elapsed_ms "$ONE" "$ONE_PORT" "$rebuild_q") / 20 ))
rebuild_citus=$(( $(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "$rebuild_q") / 20 ))
verify_one=$(elapsed_ms "$ONE" "$ONE_PORT" "SELECT count(*) FROM credit.verify()")
verify_citus=$(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "SELECT count(*) FROM credit.verify()")
# Applying a re-grade. The bench's customers are too new for a grade under the default evidence
# rules (3 settled invoices, 3 months of relationship), so a policy row for every customer waives
# them: each scored customer then gets a grade and a limit request. Timed against the dry re-grade
# under the same rules (its reads), in the same run; both sides must apply alike.
relax="INSERT INTO credit.policy (min_settled_invoices, min_relationship_months, note) VALUES (0, 0, 'bench: no evidence needed')"
pg "$ONE" "$ONE_PORT" -d bench -qc "$relax"
pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -qc "$relax"
dry_relaxed_one=$(elapsed_ms "$ONE" "$ONE_PORT" "SELECT count(*) FROM credit.regrade(dry_run => true)")
dry_relaxed_citus=$(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "SELECT count(*) FROM credit.regrade(dry_run => true)")
apply_one=$(elapsed_ms "$ONE" "$ONE_PORT" "SELECT count(*) FROM credit.regrade()")
apply_citus=$(elapsed_ms "$CITUS/coordinator" "$CITUS_PORT" "SELECT count(*) FROM credit.regrade()")
applied_q="SELECT (SELECT count(grade) || ' graded (' || md5(string_agg(customer || ':' || coalesce(grade, '-') || ':' || credit_limit, ',' ORDER BY customer)) || ')'
                     FROM credit.account)
                  || ', ' || (SELECT count(*) FROM credit.limit_request WHERE status = 'pending') || ' limit requests pending, '
                  || ' grade_changed events '"
# On Citus each node records its own accounts' events.
events_q="SELECT count(*) FROM credit.event WHERE kind = 'grade_changed'"
applied_one=$(pg "$ONE" "$ONE_PORT" -d bench -Atc "$applied_q || ($events_q)")
applied_citus=$(pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -Atc "$applied_q || (($events_q) + (SELECT sum(result::bigint) FROM run_command_on_workers(\$\$$events_q\$\$)))")
same_applied=$([ "$applied_one" = "$applied_citus" ] && echo "applied alike: $applied_one" || echo "applied DIFFERENTLY: $applied_one / $applied_citus")
log "dry re-grade: one node $regrade_one ms, Citus $regrade_citus ms ($same_reviews); each customer's score by itself: one node $scores_one ms, Citus $scores_citus ms; statements: one node $statements_one ms, Citus $statements_citus ms; daily job: one node $daily_one ms, Citus $daily_citus ms; 200 files: one node $files_one ms, Citus $files_citus ms ($same_files); one account's repair: one node $rebuild_one ms, Citus $rebuild_citus ms; verify: one node $verify_one ms, Citus $verify_citus ms; applied re-grade: one node $apply_one ms, Citus $apply_citus ms (dry $dry_relaxed_one / $dry_relaxed_citus ms; $same_applied)"
daily_line() { # accounts
    echo "The daily job over $1 accounts, once each: a dry re-grade one node $regrade_one ms, Citus $regrade_citus ms (Citus / one node $(ratio "$regrade_citus" "$regrade_one"); $same_reviews), against each customer's credit.score by itself one node $scores_one ms ($(ratio "$scores_one" "$regrade_one") times the re-grade), Citus $scores_citus ms ($(ratio "$scores_citus" "$regrade_citus") times); last month's statement run one node $statements_one ms ($issued_one), Citus $statements_citus ms ($issued_citus; $(ratio "$statements_citus" "$statements_one")); credit.run_daily() after it one node $daily_one ms, Citus $daily_citus ms ($(ratio "$daily_citus" "$daily_one")); the credit files of 200 customers one node $files_one ms, Citus $files_citus ms ($(ratio "$files_citus" "$files_one"); payment behaviour, score, grade, limit and holds: $same_files). Repairing one account (credit.rebuild_exposure(customer), 20 calls): one node $rebuild_one ms a call, Citus $rebuild_citus ms; against credit.verify() over every account one node $verify_one ms ($(ratio "$verify_one" "$rebuild_one") times a repair), Citus $verify_citus ms ($(ratio "$verify_citus" "$rebuild_citus") times). Applying a re-grade (evidence rules waived by a policy row, so that scored customers get a grade): one node $apply_one ms, Citus $apply_citus ms ($(ratio "$apply_citus" "$apply_one")), against the dry re-grade under the same rules one node $dry_relaxed_one ms, Citus $dry_relaxed_citus ms ($same_applied)."
}
if [ -n "${DAILY_ONLY:-}" ]; then
    accounts=$(pg "$ONE" "$ONE_PORT" -d bench -Atc "SELECT count(*) FROM credit.account")
    daily_line "$accounts" | tee "$OUT/citus_daily.md"
    exit 0
fi
VARIANTS="plain guarded hot_guarded post_invoice post_payment"
for r in $(seq 1 "$ROUNDS"); do
    for v in $VARIANTS; do
        script="$ROOT/bench/insert_$v.pgbench"
        case $v in post_*) script="$ROOT/bench/$v.pgbench" ;; esac
        t=$(tps "$ONE" "$ONE_PORT" "$script"); results[one_$v]+="$t "; log "round $r one node $v: $t tps"
        t=$(tps "$CITUS/coordinator" "$CITUS_PORT" "$script"); results[citus_$v]+="$t "; log "round $r Citus $v: $t tps"
    done
done
drift_one=$(pg "$ONE" "$ONE_PORT" -d bench -Atc "SELECT count(*) FROM credit.verify()")
drift_citus=$(pg "$CITUS/coordinator" "$CITUS_PORT" -d bench -Atc "SELECT count(*) FROM credit.verify()")
m() { median <<<"${results[$1]}"; }
{
    echo "### pg_credit on Citus against one node ($(date -u +%Y-%m-%d), $(nproc) cores, $CLIENTS clients, $ROUNDS rounds of $SECONDS_PER_RUN s, medians)"
    echo
    echo "Citus $CITUS_VERSION: a coordinator and two workers on this machine; one node: the same PostgreSQL 15, row path."
    echo
    echo "| variant | one node, tps | Citus, tps | Citus / one node |"
    echo "|---|---:|---:|---:|"
    for v in $VARIANTS; do
        printf "| %s | %.0f | %.0f | %s |\n" "$v" "$(m one_$v)" "$(m citus_$v)" "$(ratio "$(m citus_$v)" "$(m one_$v)")"
    done
    echo
    echo "The guard's cost: guarded / plain = $(ratio "$(m one_guarded)" "$(m one_plain)") on one node, $(ratio "$(m citus_guarded)" "$(m citus_plain)") on Citus."
    echo "All rounds: one node guarded ${results[one_guarded]}; Citus guarded ${results[citus_guarded]}."
    echo "Postings: post_invoice / guarded order = $(ratio "$(m one_post_invoice)" "$(m one_guarded)") on one node, $(ratio "$(m citus_post_invoice)" "$(m citus_guarded)") on Citus; all rounds, Citus post_invoice ${results[citus_post_invoice]}, post_payment ${results[citus_post_payment]}."
    echo "credit.verify() after the run: $drift_one drifting accounts on one node, $drift_citus on Citus."
    echo
    echo "Analytics over the same receivables (2,000 customers, 6,000 invoices, 1,333 payments), 2 clients, queries per second:"
    echo
    echo "| read | one node, q/s | Citus, q/s | Citus / one node |"
    echo "|---|---:|---:|---:|"
    for v in $READS; do
        printf "| %s | %.1f | %.1f | %s |\n" "$v" "$(m one_$v)" "$(m citus_$v)" "$(ratio "$(m citus_$v)" "$(m one_$v)")"
    done
    echo
    echo "Same answers (total / overdue / expected loss): one node $same_one; Citus $same_citus."
    echo
    daily_line "the same 12,001"
} | tee "$OUT/citus.md"
