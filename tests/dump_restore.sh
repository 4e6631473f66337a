#!/usr/bin/env bash
# pg_dump / pg_restore of a populated database: every account, ledger row, guard registration and
# sequence comes back, credit.verify() is empty, and the guard keeps working on the restored copy.
#   tests/dump_restore.sh SOCKET_DIR PORT
set -euo pipefail
DIR=$1 PORT=$2
PGBIN=/usr/lib/postgresql/15/bin
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres)
DUMP=$(mktemp /tmp/pg_credit_dump.XXXXXX)
trap 'rm -f "$DUMP"' EXIT
for db in pg_credit_src pg_credit_dst; do
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
done
"${PSQL[@]}" -d pg_credit_src <<'SQL' >/dev/null
CREATE EXTENSION pg_credit;
CREATE TABLE orders (id bigint PRIMARY KEY, cust bigint NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region, currency)
SELECT i::text, 1000 * (1 + i % 7), 30 + 15 * (i % 3), (ARRAY['wholesale','retail'])[1 + i % 2], (ARRAY['east','west','north'])[1 + i % 3], 'CNY'
  FROM generate_series(1, 50) i;
UPDATE credit.account SET status = 'hold' WHERE customer = '7';
SELECT credit.guard('orders', 'cust', 'amount', 'status', '{open,confirmed}');
INSERT INTO orders SELECT i, 1 + i % 50, 10 + i % 90, (ARRAY['open','confirmed','shipped'])[1 + i % 3]
  FROM generate_series(1, 300) i WHERE 1 + i % 50 <> 7;
SELECT count(credit.post_invoice((1 + i % 50)::text, 'INV-' || i, 100 + i, date '2026-01-01' + i)) FROM generate_series(1, 400) i;
SELECT count(credit.post_payment((1 + i % 50)::text, 150 + i, date '2026-03-01' + i)) FROM generate_series(1, 120) i;
SELECT count(credit.post_credit_note((1 + i % 50)::text, 'CN-' || i, 25, NULL, date '2026-04-01')) FROM generate_series(1, 30) i;
SELECT count(credit.write_off((1 + i % 50)::text, 'INV-' || i, NULL, date '2026-05-01', 'insolvent')) FROM generate_series(391, 400) i;
SELECT credit.blacklist('13', 'returned cheques');
UPDATE credit.account SET temporary_limit = 9000, temporary_limit_until = date '2099-12-31' WHERE customer = '2';
-- DBA configuration: one default bucket edited, one deleted (retired), one added; provision rates.
BEGIN;
UPDATE credit.aging_bucket SET label = '61-120', upper_days = 120 WHERE position = 4;
DELETE FROM credit.aging_bucket WHERE position = 5;
INSERT INTO credit.aging_bucket (position, label, lower_days, upper_days) VALUES (6, 'over 120', 121, NULL);
COMMIT;
INSERT INTO credit.provision_rate (bucket, customer_type, region, loss_rate)
VALUES ('over 120', NULL, NULL, 0.5), ('over 120', 'retail', NULL, 0.7), ('not due', NULL, 'east', 0.01);
-- Policies, tiers, grades, weights, approvals, a credit group, a held order.
INSERT INTO credit.policy (customer_type, terms_days, max_limit, overdue_block_days) VALUES (NULL, 30, 8000, 365), ('retail', 20, NULL, NULL);
INSERT INTO credit.term_tier (min_amount, terms_days) VALUES (100000, 45);
UPDATE credit.grade SET limit_coefficient = 1.8 WHERE grade = 'AA';
DELETE FROM credit.score_weight WHERE component = 'dunning_level';
INSERT INTO credit.approval_rule (min_increase, approver_roles) VALUES (0, '{postgres}');
INSERT INTO credit.account (customer, credit_limit) VALUES ('GROUP', 20000);
UPDATE credit.account SET parent = 'GROUP' WHERE customer IN ('3', '4');
SELECT credit.request_limit('5', 7000, 'growth');
SELECT credit.request_limit('6', 100, 'risk');
CREATE TABLE held (id int PRIMARY KEY, cust text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
SELECT credit.guard('held', 'cust', 'amount', 'status', '{open}', 'hold', 'credit_hold');
SET client_min_messages = error;
INSERT INTO held VALUES (1, '8', 999999), (2, '8', 1);
-- Privilege levels.
DO $$ BEGIN CREATE ROLE dump_reader; CREATE ROLE dump_clerk; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT count(*) FROM credit.grant_privileges('dump_reader', 'dump_clerk', NULL, NULL);
-- Collections: a custom ladder level, a run, a promise, a dispute; the events reach the outbox.
INSERT INTO credit.dunning_level (ladder, level, days, action, channel, fee) VALUES ('default', 7, 90, 'notice', 'letter', 15);
SELECT count(*) FROM credit.run_collections('2026-06-30');
SELECT credit.log_contact((SELECT min(id) FROM credit.collection_task WHERE status = 'open'), 'promised', 'next week', 10, '2026-07-07');
SELECT credit.dispute(i.customer, i.doc_no, 'wrong price') FROM credit.invoice i
 WHERE i.open_amount > 0 AND NOT i.disputed AND i.doc_date <= current_date ORDER BY i.id DESC LIMIT 1;
-- A partitioned guarded table (a partition created after guarding, one attached) and an
-- inheritance child, owned by a role without credit levels; a trusted proxy.
DO $$ BEGIN CREATE ROLE dump_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
INSERT INTO credit.account (customer, credit_limit) SELECT 'P' || i, 100000 FROM generate_series(1, 10) i;
CREATE TABLE porders (id int, cust text NOT NULL, amount numeric NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE porders_east PARTITION OF porders FOR VALUES IN ('east');
SELECT credit.guard('porders', 'cust', 'amount');
CREATE TABLE porders_west PARTITION OF porders FOR VALUES IN ('west');
CREATE TABLE porders_north (LIKE porders);
INSERT INTO porders_north VALUES (1, 'P1', 11, 'north');
ALTER TABLE porders ATTACH PARTITION porders_north FOR VALUES IN ('north');
INSERT INTO porders SELECT i, 'P' || (1 + i % 10), 3, (ARRAY['east','west'])[1 + i % 2] FROM generate_series(1, 40) i;
CREATE TABLE orders_old () INHERITS (orders);
INSERT INTO orders_old VALUES (9001, 9, 1, 'open');
ALTER TABLE porders OWNER TO dump_owner;
ALTER TABLE porders_east OWNER TO dump_owner;
ALTER TABLE porders_west OWNER TO dump_owner;
ALTER TABLE porders_north OWNER TO dump_owner;
ALTER TABLE orders_old OWNER TO dump_owner;
INSERT INTO credit.trusted_proxy (role, note) VALUES ('dump_clerk', 'order entry');
-- Corrections, statements, a balance confirmation and a reconciliation with the finance ledger.
SELECT credit.reverse_settlement((SELECT min(id) FROM credit.settlement WHERE kind = 'payment'), 'bounced', date '2026-05-15');
SELECT credit.cancel_invoice(i.customer, i.doc_no, 'duplicate', date '2026-05-20') FROM credit.invoice i
 WHERE i.open_amount = i.amount AND NOT i.disputed AND i.doc_date <= date '2026-05-20'
   AND NOT EXISTS (SELECT 1 FROM credit.allocation a WHERE a.invoice_id = i.id) ORDER BY i.id LIMIT 1;
INSERT INTO credit.statement_setting (customer, cycle, min_balance, language) VALUES ('3', 'weekly', 10, 'en');
SELECT count(*) FROM credit.statement_run('2026-05-31');
SELECT count(*) FROM credit.statement_run('2026-06-28');
SELECT credit.request_confirmation('1', '2026-05-31', 'positive', '2026-06-14');
SELECT credit.record_confirmation((SELECT id FROM credit.balance_confirmation WHERE customer = '1'), false, 0, NULL, 'we paid all', '2026-06-10');
SELECT credit.load_finance_items('2026-05-31', $$SELECT customer, doc_no, open_amount AS amount, doc_date, due_date
                                                  FROM credit.aging('2026-05-31') WHERE customer <> '4'$$);
SELECT count(*) FROM credit.reconcile('2026-05-31');
-- Terms windows, grace days, interest rates, a payment arrangement.
INSERT INTO credit.terms_window (name, customer_type, valid_from, valid_until, terms_days, mode, min_amount)
VALUES ('summer', 'retail', '2026-06-01', '2026-08-31', 45, 'at_least', 1000);
UPDATE credit.policy SET grace_days = 3 WHERE customer_type = 'retail';
UPDATE credit.dunning_level SET interest_rate = 0.08 WHERE ladder = 'default' AND level = 2;
INSERT INTO credit.reference_rate (valid_from, rate, note) VALUES ('2026-01-01', 0.04, 'reference rate');
SELECT credit.arrange(i.customer, ARRAY[i.doc_no],
                      jsonb_build_array(jsonb_build_object('due_date', '2026-07-31', 'amount', i.open_amount)), 'plan', '2026-06-15')
  FROM credit.invoice i
 WHERE i.customer = '2' AND i.open_amount > 0 AND NOT i.disputed AND i.doc_date <= '2026-06-15'
 ORDER BY i.id LIMIT 1;
-- The credit history: rebuilt for the past, recorded for today.
SELECT credit.backfill_history('2026-04-01', current_date - 1) > 0;
SELECT credit._record_history(current_date) > 0;   -- the daily job's step (run_daily would also re-grade)
-- The courier: contacts (a webhook's secret), a changed template, settings and rate, and
-- deliveries planned, attempted and sent.
SELECT credit.set_contact('1', 'email', 'ap@one.example', language => 'en') > 0;
SELECT credit.set_contact('1', 'webhook', 'https://one.example/hooks/credit', language => 'en', secret => 'a-secret-of-20-bytes!') > 0;
SELECT credit.set_contact(NULL, 'email', 'team@seller.example', kinds => '{order_refused}') > 0;
UPDATE credit.message_template SET subject = 'Reminder: {{invoice.doc_no}}' WHERE kind = 'payment_reminder' AND channel = 'email' AND language = 'en';
UPDATE credit.courier_setting SET max_attempts = 5, sender_en = 'ACME Credit';
UPDATE credit.courier_channel SET rate_per_minute = 600 WHERE channel = 'email';
SELECT credit.request_confirmation('1', '2026-06-15', 'positive', '2026-06-29') > 0;
SELECT deliveries > 0 FROM credit.courier_plan();
SELECT count(*) > 0 FROM (SELECT credit.courier_report(c.delivery_id, c.attempt, 'sent', '250 OK') FROM credit.courier_claim('dump', 1) c) x;
SELECT count(*) > 0 FROM credit.courier_claim('dump', 1);
SQL
HERE=$(cd "$(dirname "$0")" && pwd)
fingerprint() {   # every pg_credit table, the two guarded tables, and the aging computed from them
    # On a server with the fast path (layer 14 runs this there too), credit.account shows open
    # orders once flushed: bring it up to date first (a no-op without preloading).
    "${PSQL[@]}" -d "$1" -At -c "SELECT credit.flush_open_orders()" >/dev/null
    "${PSQL[@]}" -d "$1" -At -v extra=orders,held,porders_east,porders_west,porders_north,orders_old -f "$HERE/fingerprint.sql"
    "${PSQL[@]}" -d "$1" -At -c "SELECT 'aging:' || md5(string_agg(x::text, ',' ORDER BY customer, doc_type, doc_no)) FROM credit.aging('2026-06-30') x"
}
src=$(fingerprint pg_credit_src)
"$PGBIN/pg_dump" -h "$DIR" -p "$PORT" -U postgres -Fc -f "$DUMP" pg_credit_src
"$PGBIN/pg_restore" -h "$DIR" -p "$PORT" -U postgres -d pg_credit_dst --exit-on-error "$DUMP"
dst=$(fingerprint pg_credit_dst)
rc=0
if [ "$src" != "$dst" ]; then echo "restored data differs:"; echo " source:   $src"; echo " restored: $dst"; rc=1; fi
drift=$("${PSQL[@]}" -d pg_credit_dst -At -c "SELECT count(*) FROM credit.verify()")
[ "$drift" = 0 ] || { echo "credit.verify() after restore: $drift drifting accounts"; rc=1; }
breaks=$("${PSQL[@]}" -d pg_credit_dst -At -c "SELECT count(*) FROM credit.verify_audit()")
[ "$breaks" = 0 ] || { echo "credit.verify_audit() after restore: $breaks problems"; rc=1; }
# The restored guard still enforces, counts and releases; sequences continue past restored ids.
out=$("${PSQL[@]}" -d pg_credit_dst -At <<'SQL' 2>&1 || true
\set ON_ERROR_STOP 0
SELECT max(id) AS restored_outbox FROM credit.outbox \gset
SELECT credit.exposure('1') AS before;
INSERT INTO orders VALUES (1001, 1, 1000000);
INSERT INTO orders VALUES (1002, 7, 1);
INSERT INTO orders VALUES (1003, 1, 1);
SELECT credit.exposure('1');
SELECT credit.post_invoice('1', 'INV-NEW', 5, '2026-06-01') > (SELECT max(id) FROM credit.invoice WHERE doc_no <> 'INV-NEW');
SELECT credit.record_refusals() >= 0 AS recorded \gset
SELECT CASE WHEN count(*) = 2 THEN 'outbox continues' END FROM credit.outbox
 WHERE id > :restored_outbox AND kind = 'order_refused';
SELECT count(*) FROM credit.verify();
SQL
)
# Statements, confirmations and reconciliation runs carry on where the restored ones left off.
docs_out=$("${PSQL[@]}" -d pg_credit_dst -At <<'SQL' 2>&1 || true
SELECT 'statements ' || (count(*) > 0 AND min(s.statement_id) > (SELECT max(id) FROM credit.statement WHERE period_end < '2026-07-31'))
  FROM credit.statement_run('2026-07-31') s;
SELECT 'runs on ' || bool_and(s.opening = p.closing) FROM credit.statement s
  CROSS JOIN LATERAL (SELECT x.closing FROM credit.statement x WHERE x.customer = s.customer AND x.period_end < s.period_end
                       ORDER BY x.period_end DESC LIMIT 1) p
 WHERE s.period_end = '2026-07-31';
SELECT 'persisting ' || bool_and(status = 'persisting') FROM credit.reconcile('2026-05-31');
SELECT 'confirmation ' || status FROM credit.balance_confirmation WHERE customer = '1' AND as_of = '2026-05-31';
SQL
)
echo "$docs_out" | sed 's/^/  restored documents: /'
[ "$docs_out" = "statements true
runs on true
persisting true
confirmation contested" ] || { echo "statements, confirmations or reconciliations did not carry on after restore"; rc=1; }
# The restored guard keeps its partitions and children, and the DDL watch keeps it on.
guard_out=$("${PSQL[@]}" -d pg_credit_dst -At <<'SQL' 2>&1 || true
\set ON_ERROR_STOP 0
SELECT 'registered ' || string_agg(table_name || ':' || kind, ' ' ORDER BY table_name::text) FROM credit.guarded_table
 WHERE root IN ('porders'::regclass, 'orders'::regclass);
SET ROLE dump_owner;
ALTER TABLE porders_west DISABLE TRIGGER ALL;
INSERT INTO orders_old VALUES (9002, 9, 1000000, 'open');
TRUNCATE porders_west;
RESET ROLE;
SELECT 'proxies ' || string_agg(role, ' ') FROM credit.trusted_proxy;
SELECT 'verify ' || count(*) FROM credit.verify();
SQL
)
echo "$guard_out" | sed 's/^/  restored guard: /'
grep -qx "registered orders:table orders_old:child porders:table porders_east:partition porders_north:partition porders_west:partition" <<<"$guard_out" \
    || { echo "the restored registry lost partitions or children"; rc=1; }
grep -q "only a credit admin can switch the credit guard off" <<<"$guard_out" || { echo "the DDL watch does not protect the restored tables"; rc=1; }
grep -q "ERROR:  order exceeds the credit limit" <<<"$guard_out" || { echo "the restored inheritance child is not guarded"; rc=1; }
grep -qx "proxies dump_clerk" <<<"$guard_out" || { echo "trusted proxies were not restored"; rc=1; }
grep -qx "verify 0" <<<"$guard_out" || { echo "drift after truncating a restored partition"; rc=1; }
echo "$out" | sed 's/^/  restored: /'
expected_refusals=$(echo "$out" | grep -c "ERROR:  order exceeds the credit limit\|ERROR:  customer \"7\" is on credit hold" || true)
before=$(echo "$out" | sed -n 1p); after=$(echo "$out" | grep -v ERROR | grep -v DETAIL | grep -v HINT | sed -n 2p)
[ "$expected_refusals" = 2 ] || { echo "the restored guard did not refuse as expected"; rc=1; }
[ "$(awk -v a="$after" -v b="$before" 'BEGIN{print a-b}')" = 1 ] || { echo "the restored guard did not count the new order ($before -> $after)"; rc=1; }
grep -qx t <<<"$out" || { echo "sequences did not continue after restore"; rc=1; }
grep -qx "outbox continues" <<<"$out" || { echo "the outbox did not number new events (refusals) after the restored ones"; rc=1; }
[ "$(echo "$out" | tail -1)" = 0 ] || { echo "drift after writes on the restored database"; rc=1; }
[ $rc = 0 ] && echo "dump/restore: $(echo "$src" | wc -w) tables (and the aging) identical, verify and verify_audit empty, guard enforcing"
exit $rc
