#!/usr/bin/env bash
# The main job: set up everything on a fresh machine, start a throwaway PostgreSQL 15 cluster with
# pg_credit and a wholesale distributor's year of data, and tell what the credit engine does with
# it, in a page or two; the credit manager's morning page and a credit file are written as HTML.
# Running it again starts over with a fresh cluster.
source "$(dirname "$0")/common.sh"
DIR=${PG_CREDIT_DEMO_DIR:-/tmp/pg_credit_demo}
PORT=${PG_CREDIT_DEMO_PORT:-5499}
LOG=${DIR}.log

# python3-aiosmtpd: a local mail sink the courier delivers the demo's messages to.
ensure_deps python3-aiosmtpd
# Building prints a lot the first time; it goes to the log, and to the screen only on failure.
install_extension release 2>"$LOG" || { cat "$LOG"; exit 1; }
build_courier 2>>"$LOG" || { cat "$LOG"; exit 1; }
install -m 755 "$(courier_binary)" /usr/local/bin/pg_credit_courier
# pg_credit preloaded: orders reserve credit in shared memory (the fast path, docs/fast_path.md).
EXTRA_CONF="shared_preload_libraries = 'pg_credit'" start_cluster "$DIR" "$PORT" >>"$LOG" 2>&1
pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE wholesale"
# Loading prints a near-limit WARNING per order that came near its limit (kept as events too).
PGOPTIONS='-c client_min_messages=error' pg "$DIR" "$PORT" -d wholesale -f "$ROOT/demo/demo.sql" >>"$LOG"
# Who receives the messages from now on: each customer's accounts payable by e-mail (Chinese, a
# few in English), SMS reminders for some, and the credit team for refused orders and warnings.
pg "$DIR" "$PORT" -d wholesale -q >>"$LOG" <<'SQL'
SELECT count(*) FROM (SELECT credit.set_contact(customer, 'email', 'ap-' || lower(regexp_replace(customer, '[^A-Za-z0-9]', '', 'g')) || '@customers.example',
                                                language => CASE WHEN region = 'east' THEN 'en' ELSE 'zh' END)
                        FROM credit.account ORDER BY customer) x;
SELECT count(*) FROM (SELECT credit.set_contact(customer, 'sms', '1390000' || lpad((row_number() OVER (ORDER BY customer))::text, 4, '0'),
                                                kinds => '{payment_reminder,overdue_notice}')
                        FROM credit.account WHERE customer_type = 'retail' ORDER BY customer) x;
SELECT credit.set_contact(NULL, 'email', 'credit-team@distributor.example', kinds => '{order_refused,risk_warning}');
SQL

show() { printf '\n\033[1m%s\033[0m\n' "$1"; }
q() { pg "$DIR" "$PORT" -d wholesale "$@"; }
say() { q -At -c "$1"; }

show "A wholesale distributor, a year into pg_credit"
say "SELECT format('%s customers in %s regions; a year of trade: %s invoices, %s payments. Today %s orders went through the guard: %s accepted, %s refused, %s came near their customer''s limit.',
              (SELECT count(*) FROM credit.account), (SELECT count(DISTINCT region) FROM credit.account),
              (SELECT count(*) FROM credit.invoice), (SELECT count(*) FROM credit.settlement WHERE kind = 'payment'),
              count(*), count(*) FILTER (WHERE accepted), count(*) FILTER (WHERE NOT accepted),
              (SELECT count(*) FROM credit.event WHERE kind = 'near_limit'))
         FROM sales.order_attempt"

show "An order over the limit is refused by the database, whatever the client (SQLSTATE 23514):"
target=$(say "SELECT customer FROM credit.account WHERE status = 'active' ORDER BY credit_limit - exposure, customer LIMIT 1")
echo "INSERT INTO sales.orders (order_no, customer, order_date, amount) VALUES ('SO-DEMO-1', '$target', current_date, 20000);"
q -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "INSERT INTO sales.orders (order_no, customer, order_date, amount) VALUES ('SO-DEMO-1', '$target', current_date, 20000)" 2>&1 | grep -v '^LOCATION\|^HINT' || true
held=$(say "SELECT customer FROM credit.account WHERE status = 'hold' ORDER BY customer LIMIT 1")
q -v ON_ERROR_STOP=0 -c "INSERT INTO sales.orders (order_no, customer, order_date, amount) VALUES ('SO-DEMO-2', '$held', current_date, 10)" 2>&1 | grep '^ERROR' || true

show "Policy as data, and the review it drives:"
q -q -c "INSERT INTO credit.policy (customer_type, region, terms_days, warn_ratio, overdue_block_days, max_limit) VALUES
           (NULL, NULL, 30, 0.8, 90, NULL), ('retail', NULL, 20, NULL, 45, 200000), (NULL, 'east', NULL, 0.9, NULL, NULL)
         ON CONFLICT DO NOTHING;
         INSERT INTO credit.term_tier (min_amount, terms_days) VALUES (100000, 45) ON CONFLICT DO NOTHING;"
say "SELECT format('Retail customers get %s days and at most %s of credit; east warns at %s%% of the limit; orders of 100,000 or more get %s days.',
              (SELECT terms_days FROM credit.effective_policy((SELECT customer FROM credit.account WHERE customer_type = 'retail' ORDER BY 1 LIMIT 1))),
              (SELECT max_limit FROM credit.effective_policy((SELECT customer FROM credit.account WHERE customer_type = 'retail' ORDER BY 1 LIMIT 1))),
              (SELECT 100 * warn_ratio FROM credit.effective_policy((SELECT customer FROM credit.account WHERE region = 'east' ORDER BY 1 LIMIT 1)))::int,
              credit.terms_for((SELECT customer FROM credit.account WHERE customer_type = 'wholesale' ORDER BY 1 LIMIT 1), 120000))"
say "SELECT format('Scored on their payments (new customers are not graded yet), a review (credit.regrade, dry run) would leave %s limits as they are, lower %s at once by %s, and send %s to approval: %s cuts larger than a quarter, %s raises.',
              count(*) FILTER (WHERE action IN ('unchanged', 'new', 'unrated')), count(*) FILTER (WHERE action = 'decrease'),
              coalesce(to_char(sum(old_limit - proposed_limit) FILTER (WHERE action = 'decrease'), 'FM999,999,990'), '0'),
              count(*) FILTER (WHERE action = 'request'), count(*) FILTER (WHERE action = 'request' AND proposed_limit < old_limit),
              count(*) FILTER (WHERE action = 'request' AND proposed_limit > old_limit))
         FROM credit.regrade(dry_run => true)"

show "Collections: the dunning ladder walks today (credit.run_collections):"
say "SELECT format('%s new tasks for %s customers; %s accounts put on hold (shipments stop); %s invoices referred to legal.',
              count(*) FILTER (WHERE change = 'task_created'), count(DISTINCT customer) FILTER (WHERE change = 'task_created'),
              count(*) FILTER (WHERE change = 'account_held'), count(*) FILTER (WHERE change = 'legal_referral'))
         FROM credit.run_collections()"
q -c "SELECT customer, doc_no, action, open_amount, days_past_due FROM credit.collection_worklist LIMIT 3"

show "Trust:"
say "SELECT format('The audit chain of %s events is %s; stored exposure (%s) equals a full recomputation for %s of %s accounts.',
              (SELECT count(*) FROM credit.event),
              CASE WHEN (SELECT count(*) FROM credit.verify_audit()) = 0 THEN 'intact' ELSE 'BROKEN' END,
              (SELECT to_char(sum(exposure), 'FM999,999,990.00') FROM credit.account),
              (SELECT count(*) FROM credit.account) - (SELECT count(*) FROM credit.verify()), (SELECT count(*) FROM credit.account))"

show "The fast path (shared_preload_libraries = 'pg_credit', set in this cluster's postgresql.conf):"
say "SELECT format('Orders reserve credit in shared memory: %s; %s customers held there now, %s reserved by transactions in flight; credit.account brought up to date %s times so far (%s customers written). Without preloading, every order updates its customer''s account row instead (docs/fast_path.md).',
              state, customers, reserved_in_flight, flushes, customers_flushed)
         FROM credit.fast_path_status()"

show "History: the year rebuilt from the ledger, then today's daily job (credit.run_daily):"
say "SELECT format('%s history rows rebuilt for the year (%s bytes per customer-day).', n,
              (SELECT round(pg_total_relation_size('credit.history')::numeric / (240 * 365), 1)))
         FROM credit.backfill_history(current_date - 365, current_date - 1) n"
say "SELECT string_agg(format('%s: %s', step, changes), ', ' ORDER BY step) FROM credit.run_daily()"
q -c "SELECT region, customers, open_ar, overdue, round(100 * overdue_share, 1) AS overdue_pct, over_limit, near_limit
        FROM credit.portfolio_daily WHERE day = current_date ORDER BY region"

show "Prediction: a payment model trained on the year, and the cash it expects:"
say "SELECT format('Trained on %s invoices whose outcome is known (model %s); of the %s open invoices, %s look more likely than not to be paid very late (over 30 days).',
              t.examples, t.model_id, count(p.*), count(p.*) FILTER (WHERE p.p_very_late > 0.5))
         FROM (SELECT * FROM credit.train_payment_model() WHERE kind = 'multinomial') t, credit.payment_prediction(t.model_id) p
        GROUP BY t.examples, t.model_id"
say "SELECT 'Expected receipts, next four weeks: ' || string_agg(format('%s %s', to_char(week_start, 'MM-DD'), to_char(expected, 'FM999,999,990')), ', ' ORDER BY week_start)
         FROM credit.cash_forecast(4) WHERE customer IS NULL"

show "Delivery: the day's messages by e-mail, exactly once (pg_credit_courier):"
MAILBOX=$DIR/mailbox
/usr/bin/python3 -m aiosmtpd -n -c aiosmtpd.handlers.Mailbox "$MAILBOX" -l "127.0.0.1:$((PORT + 1))" >>"$LOG" 2>&1 &
sink=$!
sleep 1
say "SELECT count(*) FROM credit.statement_run((date_trunc('month', current_date) - interval '1 day')::date)" >/dev/null
q -q -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS demo_courier" -c "CREATE ROLE demo_courier LOGIN" -c "SELECT credit.grant_courier('demo_courier')" >/dev/null
# No SMS gateway in the demo: SMS would wait for one (retries); the ladder's steps are by e-mail.
pg_credit_courier --once --dsn "host=$DIR port=$PORT user=demo_courier dbname=wholesale" --smtp-host 127.0.0.1 \
    --smtp-port $((PORT + 1)) --smtp-security none --smtp-from '信用管理部 <credit@distributor.example>' 2>>"$LOG" || true
kill $sink 2>/dev/null || true
say "SELECT format('%s e-mails delivered (%s) to the mail sink %s, each once; %s waiting, %s dead letters.',
              count(*) FILTER (WHERE channel = 'email' AND status = 'sent'),
              (SELECT string_agg(format('%s %s', n, kind), ', ' ORDER BY n DESC) FROM
                 (SELECT kind, count(*) AS n FROM credit.delivery WHERE channel = 'email' AND status = 'sent' GROUP BY kind) k),
              '$MAILBOX', count(*) FILTER (WHERE status IN ('pending', 'retry')), count(*) FILTER (WHERE status = 'dead'))
         FROM credit.delivery"
say "SELECT 'For example: \"' || subject || '\" to ' || address FROM credit.delivery
      WHERE kind = 'overdue_notice' AND language = 'zh' AND status = 'sent' ORDER BY id LIMIT 1"

show "Pages (open them in a browser):"
PAGES=$DIR/pages
mkdir -p "$PAGES"
say "SELECT credit.portfolio_html(current_date, 'zh')" > "$PAGES/morning-zh.html"
say "SELECT credit.portfolio_html(current_date, 'en')" > "$PAGES/morning-en.html"
say "SELECT credit.file_html('$target', 'zh')" > "$PAGES/credit-file-$target.html"
echo "  the credit manager's morning page:  $PAGES/morning-zh.html  (English: morning-en.html)"
echo "  the credit file of $target:          $PAGES/credit-file-$target.html"

cat <<MSG

The demo cluster is running (set-up log: $LOG).
  Connect:  $PGBIN/psql -h $DIR -p $PORT -U postgres wholesale
  Stop:     runuser -u postgres -- $PGBIN/pg_ctl -D $DIR/data stop     (or: make stop)
MSG
