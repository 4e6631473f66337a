#!/usr/bin/env bash
# The main job: set up everything on a fresh machine, start a throwaway PostgreSQL 15 cluster with
# pg_credit and a wholesale distributor's year of data, and show the credit engine at work.
# Running it again starts over with a fresh cluster.
source "$(dirname "$0")/common.sh"
DIR=${PG_CREDIT_DEMO_DIR:-/tmp/pg_credit_demo}
PORT=${PG_CREDIT_DEMO_PORT:-5499}

ensure_deps
install_extension release
log "starting a throwaway cluster in $DIR (port $PORT)"
start_cluster "$DIR" "$PORT"
pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE wholesale"
log "loading the demo: 240 customers, a year of orders, invoices and payments"
pg "$DIR" "$PORT" -d wholesale -f "$ROOT/demo/demo.sql"

show() { printf '\n\033[1m-- %s\033[0m\n' "$1"; }
q() { pg "$DIR" "$PORT" -d wholesale "$@"; }

show "An order over the limit, refused by the guard (SQLSTATE 23514), whatever the client:"
target=$(q -At -c "SELECT customer FROM credit.account WHERE status = 'active' ORDER BY credit_limit - exposure, customer LIMIT 1")
echo "INSERT INTO sales.orders (order_no, customer, order_date, amount) VALUES ('SO-DEMO-1', '$target', current_date, 20000);"
q -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "INSERT INTO sales.orders (order_no, customer, order_date, amount) VALUES ('SO-DEMO-1', '$target', current_date, 20000)" 2>&1 | grep -v '^LOCATION' || true

show "An order for a customer on credit hold:"
held=$(q -At -c "SELECT customer FROM credit.account WHERE status = 'hold' ORDER BY customer LIMIT 1")
q -v ON_ERROR_STOP=0 -c "INSERT INTO sales.orders (order_no, customer, order_date, amount) VALUES ('SO-DEMO-2', '$held', current_date, 10)" 2>&1 || true

show "credit.check for a few customers (reserves nothing):"
q -c "SELECT c.customer, k.* FROM (VALUES ('$target', 20000), ('$held', 10), ('C0002', 5000), ('C0100', 100000)) c(customer, amount),
      LATERAL credit.check(c.customer, c.amount) k"

show "Highest utilization (exposure / limit):"
q -c "SELECT customer, customer_type, region, status, credit_limit, open_ar, open_orders, exposure,
             round(100 * exposure / nullif(credit_limit, 0), 1) AS utilization_pct
        FROM credit.account ORDER BY exposure / nullif(credit_limit, 0) DESC NULLS LAST, customer LIMIT 12"

show "Credit policy as data: layered by customer type and region, amount tiers for terms:"
q -q -c "INSERT INTO credit.policy (customer_type, region, terms_days, warn_ratio, overdue_block_days, max_limit) VALUES
           (NULL, NULL, 30, 0.8, 90, NULL), ('retail', NULL, 20, NULL, 45, 200000), (NULL, 'east', NULL, 0.9, NULL, NULL)
         ON CONFLICT DO NOTHING;
         INSERT INTO credit.term_tier (min_amount, terms_days) VALUES (100000, 45) ON CONFLICT DO NOTHING;"
q -c "SELECT a.customer, a.customer_type, a.region, e.terms_days, e.max_limit, e.warn_ratio, e.overdue_block_days,
             credit.terms_for(a.customer, 120000) AS terms_for_120k
        FROM (SELECT DISTINCT ON (customer_type, region) * FROM credit.account ORDER BY customer_type, region, customer) a,
             credit.effective_policy(a.customer) e ORDER BY a.customer_type, a.region"

show "Scores and grades, and what a review would do to limits (credit.regrade dry run):"
q -c "SELECT action, count(*) AS customers, sum(proposed_limit - old_limit) AS limit_change
        FROM credit.regrade(dry_run => true) GROUP BY action ORDER BY action"
q -c "SELECT customer, old_grade, new_grade, score, old_limit, proposed_limit, action
        FROM credit.regrade(dry_run => true) WHERE action <> 'unchanged' ORDER BY score NULLS LAST LIMIT 8"

show "Collections: today's run of the dunning ladder (tasks, holds that stop shipments, legal referrals):"
q -c "SELECT change, count(*) AS times, count(DISTINCT customer) AS customers FROM credit.run_collections() GROUP BY change ORDER BY change"
q -c "SELECT customer, doc_no, action, assigned_to, open_amount, days_past_due, account_status
        FROM credit.collection_worklist LIMIT 8"
q -c "SELECT kind, count(*) AS events, max(id) AS last_outbox_id FROM credit.outbox GROUP BY kind ORDER BY events DESC LIMIT 8"

show "Trust: the credit history is hash-chained (credit.verify_audit(): no rows = intact):"
q -c "SELECT (SELECT count(*) FROM credit.event) AS events, (SELECT count(*) FROM credit.verify_audit()) AS audit_problems,
             h.seq AS head_position, left(h.hash, 16) || '...' AS head_hash FROM credit.audit_head() h"

show "Stored exposure against a full recomputation (credit.verify(): no rows = consistent):"
q -c "SELECT count(*) AS accounts, sum(exposure) AS total_exposure,
             (SELECT count(*) FROM credit.verify()) AS drifting_accounts,
             (SELECT count(*) FROM credit.invoice) AS invoices,
             (SELECT count(*) FROM credit.settlement) AS settlements FROM credit.account"

show "Credit history: the year rebuilt from the ledger, the portfolio by region at each month-end:"
q -At -c "SELECT 'history rows written: ' || credit.backfill_history(current_date - 365, current_date - 1)"
q -c "SELECT day, region, customers, open_ar, overdue, round(100 * overdue_share, 1) AS overdue_pct, over_limit, near_limit
        FROM credit.portfolio_daily
       WHERE day IN (SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date
                       FROM generate_series(current_date - 120, current_date - 31, interval '1 month') d)
       ORDER BY day, region"

show "A credit file (credit.file): payment behaviour of the customer nearest its limit:"
q -c "SELECT jsonb_pretty((credit.file('$target') -> 'payment_behaviour') - 'arrangements' - 'disputes' - 'basis') AS payment_behaviour"

cat <<MSG

The demo cluster is running.
  Connect:  $PGBIN/psql -h $DIR -p $PORT -U postgres wholesale
  Stop:     runuser -u postgres -- $PGBIN/pg_ctl -D $DIR/data stop     (or: make stop)
MSG
