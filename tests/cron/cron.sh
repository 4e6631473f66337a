#!/usr/bin/env bash
# pg_cron really runs credit.run_daily on the test cluster (started with pg_cron preloaded, see
# scripts/test.sh): a job scheduled every minute puts an overdue customer on hold within about a
# minute, and its run is recorded as succeeded.
#   tests/cron/cron.sh SOCKET_DIR PORT
set -euo pipefail
source "$(dirname "$0")/../../scripts/common.sh"
DIR=$1 PORT=$2
DB=pg_credit_cron
pg "$DIR" "$PORT" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
pg "$DIR" "$PORT" -d postgres -c "CREATE EXTENSION IF NOT EXISTS pg_cron"
pg "$DIR" "$PORT" -d "$DB" >/dev/null <<'SQL'
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit, terms_days) VALUES ('CRON-LATE', 5000, 30), ('CRON-GOOD', 5000, 30);
SELECT credit.post_invoice('CRON-LATE', 'CL-1', 1000, current_date - 50);   -- 20 days overdue
SELECT credit.post_invoice('CRON-GOOD', 'CG-1', 1000, current_date - 5);
SQL
pg "$DIR" "$PORT" -d postgres -At -c \
    "SELECT cron.schedule_in_database('pg_credit-daily', '* * * * *', 'SELECT credit.run_daily()', '$DB')" >/dev/null
cleanup() { pg "$DIR" "$PORT" -d postgres -c "SELECT cron.unschedule('pg_credit-daily')" >/dev/null 2>&1 || true; }
trap cleanup EXIT
status=
for _ in $(seq 1 100); do   # pg_cron starts jobs on the minute
    status=$(pg "$DIR" "$PORT" -d postgres -At -c \
        "SELECT status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
          WHERE j.jobname = 'pg_credit-daily' AND status IN ('succeeded', 'failed') ORDER BY runid DESC LIMIT 1")
    [ -n "$status" ] && break
    sleep 2
done
pg "$DIR" "$PORT" -d postgres -c "SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 3"
[ "$status" = succeeded ] || { echo "pg_cron job did not succeed (status: ${status:-none})"; exit 1; }
result=$(pg "$DIR" "$PORT" -d "$DB" -At -F' ' <<'SQL'
SELECT string_agg(customer || ':' || status, ',' ORDER BY customer) FROM credit.account;
SELECT count(*) FROM credit.collection_task WHERE customer = 'CRON-LATE';
SQL
)
echo "after the scheduled run: $result"
[ "$result" = "CRON-GOOD:active,CRON-LATE:hold
4" ] || { echo "unexpected state after the scheduled run"; exit 1; }
echo "pg_cron ran credit.run_daily: overdue customer held, 4 collection tasks"
