#!/usr/bin/env bash
# The courier against real receivers on loopback (tests/courier/receivers.py): an SMTP server
# that requires STARTTLS and AUTH, and an HTTP server that checks every webhook's signature.
#   1. content: what the outbox called for arrives, once, with Chinese text, the statement page
#      as body and attachment; bad addresses, endpoints, templates and sizes are dead letters
#      with their reasons; opt-outs and later contacts receive nothing; least privilege
#   2. the courier killed (kill -9) in the middle of a batch and restarted: nothing lost, no key
#      applied twice
#   3. the SMTP server down for a while: retries with backoff, then delivery
#   4. two couriers at once: each message sent once
#   5. a running courier is woken by NOTIFY (poll 60 s, delivered within seconds)
# usage: tests/courier/courier.sh CLUSTER_DIR PORT   (a running cluster with pg_credit installed)
source "$(dirname "$0")/../../scripts/common.sh"
DIR=$1
PORT=$2
WORK="$ROOT/target/courier-test"
DB=pg_credit_courier
SMTP_PORT=$((PORT + 30))
HTTP_PORT=$((PORT + 31))
DEAD_PORT=$((PORT + 32))   # nothing listens here
HOOK_SECRET=0123456789abcdef-hook
SMS_SECRET=0123456789abcdef-sms
rm -rf "$WORK"; mkdir -p "$WORK"
cd "$WORK"
fail() { echo "FAIL: $*"; exit 1; }
psql_db() { "$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

build_courier
COURIER="$(courier_binary)"

# A private CA and a server certificate for 127.0.0.1 (the courier trusts the CA by --smtp-ca-file).
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=pg_credit test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null

wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
start_smtp() { # [delay seconds per message]
    SMTP_PASSWORD=smtp-pw SMTP_DELAY=${1:-0} /usr/bin/python3 "$ROOT/tests/courier/receivers.py" smtp "$SMTP_PORT" "$WORK/mail.log" \
        server.pem server.key >>smtp.out 2>&1 &
    echo $! >smtp.pid
    wait_port "$SMTP_PORT" || fail "the SMTP server did not start: $(cat smtp.out)"
}
stop_smtp() { kill "$(cat smtp.pid)" 2>/dev/null || true; wait "$(cat smtp.pid)" 2>/dev/null || true; }
WEBHOOK_SECRETS="/hook/acme=$HOOK_SECRET,/hook/bulk=$HOOK_SECRET,/sms=$SMS_SECRET" \
    /usr/bin/python3 "$ROOT/tests/courier/receivers.py" http "$HTTP_PORT" "$WORK/hook.log" >http.out 2>&1 &
echo $! >http.pid
cleanup() { stop_smtp; kill "$(cat http.pid)" 2>/dev/null || true; pkill -9 -f "$COURIER" 2>/dev/null || true; }
trap cleanup EXIT
wait_port "$HTTP_PORT" || fail "the HTTP server did not start"
start_smtp

"$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
"$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -c "DROP ROLE IF EXISTS credit_courier_login" \
    -c "CREATE ROLE credit_courier_login LOGIN"
psql_db >/dev/null <<SQL
CREATE EXTENSION pg_credit;
SELECT credit.grant_courier('credit_courier_login');
UPDATE credit.courier_setting SET backoff_base = '1 second', backoff_max = '2 seconds', max_attempts = 4, lease = '3 seconds',
                                  max_sms_chars = 70;
SQL

# The courier as its own least-privileged login. A script that execs it, so that $! of a courier
# started in the background is the courier's own process (kill -9 hits it, not a shell).
cat >run-courier <<RUN
#!/bin/sh
exec "$COURIER" --dsn "host=127.0.0.1 port=$PORT user=credit_courier_login dbname=$DB" \\
    --smtp-host 127.0.0.1 --smtp-port "$SMTP_PORT" --smtp-security starttls --smtp-user courier \\
    --smtp-from "信用管理部 <credit@seller.example>" --smtp-ca-file "$WORK/ca.pem" --timeout 5 \\
    --sms-url "http://127.0.0.1:$HTTP_PORT/sms" "\$@"
RUN
chmod +x run-courier
courier() { "$WORK/run-courier" "$@"; }
export PG_CREDIT_COURIER_SMTP_PASSWORD=smtp-pw PG_CREDIT_COURIER_SMS_SECRET=$SMS_SECRET
# Runs --once until nothing is pending or waiting for a retry (retries come due within seconds).
drain() {
    for _ in $(seq 60); do
        courier --once --name "${1:-drain}" 2>>courier.err || fail "courier --once failed: $(tail -3 courier.err)"
        [ "$(psql_db -Atc "SELECT count(*) FROM credit.delivery WHERE status IN ('pending', 'retry', 'sending')")" = 0 ] && return 0
        sleep 0.5
    done
    fail "deliveries still pending after 30 s"
}
# Loads the receivers' logs into tables for the checks below.
load_logs() {
    psql_db <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS got_mail, got_hook;
CREATE TABLE got_mail (doc jsonb);
CREATE TABLE got_hook (doc jsonb);
\copy got_mail FROM '$WORK/mail.log' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
\copy got_hook FROM '$WORK/hook.log' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
SQL
}
touch mail.log hook.log
# check NAME SQL: the query returns problems, one per row; none is a pass.
check() {
    local out
    out=$(psql_db -At -c "$2") || fail "$1: query failed"
    [ -z "$out" ] || { echo "$out" | head -20; fail "$1"; }
    echo "ok: $1"
}

echo "== 1. content, bad input, least privilege"
psql_db >/dev/null <<SQL
INSERT INTO credit.account (customer, credit_limit, currency) VALUES
    ('华东商贸', 50000, 'CNY'), ('ACME', 20000, 'USD'), ('BAD', 1000, 'CNY'), ('QUIET', 1000, 'CNY'),
    (repeat('超长名称', 20), 90000, 'CNY');
SELECT credit.set_contact('华东商贸', 'email', 'finance@huadong.example', language => 'zh', name => '王会计');
SELECT credit.set_contact('华东商贸', 'sms', '+8613800138000', language => 'zh');
SELECT credit.set_contact('ACME', 'email', 'ap@acme.example', language => 'en');
SELECT credit.set_contact('ACME', 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook/acme', language => 'en', secret => '$HOOK_SECRET');
SELECT credit.set_contact('BAD', 'email', 'nobody@bad.example', language => 'en');
SELECT credit.set_contact('BAD', 'webhook', 'http://127.0.0.1:$HTTP_PORT/gone', language => 'en', secret => '$HOOK_SECRET');
SELECT credit.set_contact('BAD', 'webhook', 'http://127.0.0.1:$DEAD_PORT/nothing-listens', kinds => '{statement}', language => 'en', secret => '$HOOK_SECRET');
SELECT credit.set_contact('BAD', 'webhook', 'http://127.0.0.1:$HTTP_PORT/moved', kinds => '{statement}', language => 'en', secret => '$HOOK_SECRET');
SELECT credit.set_contact(repeat('超长名称', 20), 'sms', '13900139000', kinds => '{statement}');
SELECT credit.opt_out(credit.set_contact('QUIET', 'email', 'quiet@example.com', language => 'en'), 'asked by phone');
SELECT credit.set_contact(NULL, 'email', 'credit-team@seller.example', kinds => '{order_refused}', language => 'zh');
-- a template that references a field its event does not have
UPDATE credit.message_template SET body = body || ' {{event.nonexistent}}' WHERE kind = 'confirmation_request' AND channel = 'email' AND language = 'en';
SELECT credit.post_invoice('华东商贸', 'HD-1', 12000.50, '2026-10-21', '2026-10-25');
SELECT credit.post_invoice('华东商贸', 'HD-2', 8000, '2026-10-28', current_date + 3);
SELECT credit.post_invoice('ACME', 'AC-1', 5000, '2026-10-30', current_date - 1);
SELECT credit.post_invoice('BAD', 'BD-1', 500, '2026-10-30', current_date - 1);
SELECT credit.post_invoice('QUIET', 'QU-1', 300, '2026-10-30', current_date - 1);
SELECT credit.post_invoice(repeat('超长名称', 20), 'LN-1', 70000, '2026-10-30', current_date + 30);
SELECT count(*) FROM credit.run_collections(current_date);
SELECT count(*) FROM credit.statement_run('2026-10-31', 'monthly');
SELECT credit.request_confirmation('ACME', '2026-10-31', 'positive', current_date + 14,
                                   (SELECT id FROM credit.statement WHERE customer = 'ACME'));
-- an order the guard refuses: the credit team hears of it
CREATE TABLE sales_order (id serial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, state text NOT NULL DEFAULT 'open');
SELECT credit.guard('sales_order', 'customer', 'amount', 'state', '{open}');
DO \$\$ BEGIN INSERT INTO sales_order (customer, amount) VALUES ('BAD', 5000); EXCEPTION WHEN OTHERS THEN NULL; END \$\$;
SELECT credit.record_refusals();
-- a contact added after all this receives none of it
SELECT credit.set_contact('ACME', 'email', 'late@acme.example', language => 'en');
SQL
# Least privilege: the courier's login runs the three courier functions and nothing else.
for q in "SELECT count(*) FROM credit.delivery" "SELECT count(*) FROM credit.contact_secret" \
         "SELECT count(*) FROM credit.outbox" "SELECT credit.post_payment('ACME', 1, current_date)" \
         "SELECT credit.set_contact('ACME', 'email', 'x@y.example')"; do
    code=$("$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U credit_courier_login -d "$DB" -X -q -At \
        -v VERBOSITY=sqlstate -c "$q" 2>&1 | grep -o 42501 | head -1 || true)
    [ "$code" = 42501 ] || fail "the courier's login could run: $q"
done
echo "ok: the courier's login can run nothing but the courier's functions"
drain content
load_logs
# What the outbox called for, by customer, kind, channel and address, and how it ended.
check "every message the outbox called for, and nothing else" "
WITH expected(customer, kind, channel, address, status, reason) AS (VALUES
    ('ACME', 'payment_reminder', 'email', 'ap@acme.example', 'sent', NULL),
    ('ACME', 'payment_reminder', 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook/acme', 'sent', NULL),
    ('ACME', 'overdue_notice', 'email', 'ap@acme.example', 'sent', NULL),
    ('ACME', 'overdue_notice', 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook/acme', 'sent', NULL),
    ('ACME', 'statement', 'email', 'ap@acme.example', 'sent', NULL),
    ('ACME', 'statement', 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook/acme', 'sent', NULL),
    ('ACME', 'confirmation_request', 'email', 'ap@acme.example', 'dead', '%references {{event.nonexistent}}%'),
    ('ACME', 'confirmation_request', 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook/acme', 'dead', '%references {{event.nonexistent}}%'),
    ('BAD', 'payment_reminder', 'email', 'nobody@bad.example', 'dead', '%550%no such user%'),
    ('BAD', 'payment_reminder', 'webhook', 'http://127.0.0.1:$HTTP_PORT/gone', 'dead', 'HTTP 410%'),
    ('BAD', 'overdue_notice', 'email', 'nobody@bad.example', 'dead', '%550%no such user%'),
    ('BAD', 'overdue_notice', 'webhook', 'http://127.0.0.1:$HTTP_PORT/gone', 'dead', 'HTTP 410%'),
    ('BAD', 'statement', 'email', 'nobody@bad.example', 'dead', '%550%no such user%'),
    ('BAD', 'statement', 'webhook', 'http://127.0.0.1:$HTTP_PORT/gone', 'dead', 'HTTP 410%'),
    ('BAD', 'statement', 'webhook', 'http://127.0.0.1:$DEAD_PORT/nothing-listens', 'dead', 'gave up after 4 attempts: HTTP%'),
    ('BAD', 'statement', 'webhook', 'http://127.0.0.1:$HTTP_PORT/moved', 'dead', 'HTTP 301%'),
    ('BAD', 'order_refused', 'email', 'credit-team@seller.example', 'sent', NULL),
    ('华东商贸', 'payment_reminder', 'email', 'finance@huadong.example', 'sent', NULL),
    ('华东商贸', 'overdue_notice', 'email', 'finance@huadong.example', 'sent', NULL),
    ('华东商贸', 'payment_reminder', 'email', 'finance@huadong.example', 'sent', NULL),
    ('华东商贸', 'statement', 'email', 'finance@huadong.example', 'sent', NULL),
    ('华东商贸', 'statement', 'sms', '+8613800138000', 'sent', NULL),
    (repeat('超长名称', 20), 'statement', 'sms', '13900139000', 'dead', 'the SMS is % characters, over the limit of 70%')),
e AS (SELECT *, row_number() OVER (PARTITION BY customer, kind, channel, address ORDER BY status) AS n FROM expected),
d AS (SELECT customer, kind, channel, address, status, last_error,
             row_number() OVER (PARTITION BY customer, kind, channel, address ORDER BY status) AS n FROM credit.delivery)
SELECT format('expected %s/%s/%s/%s %s (%s), got %s (%s)', e.customer, e.kind, e.channel, e.address, e.status, e.reason, d.status, d.last_error)
  FROM e FULL JOIN d USING (customer, kind, channel, address, n)
 WHERE e.status IS DISTINCT FROM d.status OR e.reason IS NOT NULL AND d.last_error NOT LIKE e.reason"
check "every e-mail sent arrived once, over STARTTLS with AUTH, as rendered" "
SELECT format('delivery %s (%s): %s', d.id, d.idempotency_key, p)
  FROM credit.delivery d
  CROSS JOIN LATERAL (SELECT count(*) AS n, min(m.doc::text)::jsonb AS doc FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key) g
  CROSS JOIN LATERAL (VALUES
      (CASE WHEN g.n <> 1 THEN format('received %s times', g.n) END),
      (CASE WHEN g.doc->'rcpt' <> jsonb_build_array(d.address) THEN 'recipient ' || (g.doc->>'rcpt') END),
      (CASE WHEN g.doc->>'subject' <> d.subject THEN 'subject ' || (g.doc->>'subject') END),
      (CASE WHEN rtrim(replace(g.doc->>'text', E'\r\n', E'\n'), E'\n') <> rtrim(d.body, E'\n') THEN 'text differs: ' || (g.doc->>'text') END),
      (CASE WHEN NOT (g.doc->>'tls')::boolean OR NOT (g.doc->>'authenticated')::boolean THEN 'not over TLS with AUTH' END),
      (CASE WHEN g.doc->>'message_id' <> format('<%s@seller.example>', d.idempotency_key) THEN 'Message-ID ' || (g.doc->>'message_id') END)) v(p)
 WHERE d.channel = 'email' AND d.status = 'sent' AND p IS NOT NULL
UNION ALL
SELECT 'a message arrived that no delivery sent: ' || (m.doc->>'key') FROM got_mail m
 WHERE NOT EXISTS (SELECT 1 FROM credit.delivery d WHERE d.idempotency_key = m.doc->>'key' AND d.status = 'sent')"
check "Chinese text arrives as written, amounts to the cent" "
SELECT 'Chinese reminder not as expected: ' || (m.doc->>'subject') || ' / ' || (m.doc->>'text')
  FROM got_mail m
 WHERE m.doc->>'kind' = 'overdue_notice' AND 'finance@huadong.example' = ANY (SELECT jsonb_array_elements_text(m.doc->'rcpt'))
   AND NOT (m.doc->>'subject' LIKE '逾期通知：发票 HD-1 已逾期 % 天' AND m.doc->>'text' LIKE '华东商贸 您好：%未付金额 12,000.50 CNY%信用管理部%')
UNION ALL
SELECT 'no Chinese overdue notice arrived' WHERE NOT EXISTS (SELECT 1 FROM got_mail m WHERE m.doc->>'subject' LIKE '逾期通知%')"
check "statements arrive with the statement page as body and attachment" "
SELECT format('%s: %s', d.idempotency_key, p)
  FROM credit.delivery d
  JOIN credit.contact c ON c.id = d.contact_id
  CROSS JOIN LATERAL (SELECT encode(sha256(convert_to(credit.statement_html((d.payload->'event'->'after'->>'statement_id')::bigint, c.language), 'UTF8')), 'hex') AS h
                       WHERE d.channel = 'webhook'
                      UNION ALL
                      SELECT encode(sha256(convert_to(credit.statement_html(s.id, c.language), 'UTF8')), 'hex')
                        FROM credit.statement s WHERE d.channel = 'email' AND s.customer = d.customer) page
  LEFT JOIN got_mail m ON m.doc->>'key' = d.idempotency_key
  LEFT JOIN got_hook k ON k.doc->>'key' = d.idempotency_key AND (k.doc->>'valid')::boolean
  CROSS JOIN LATERAL (VALUES
      (CASE WHEN d.channel = 'email' AND m.doc->>'html_sha256' IS DISTINCT FROM page.h THEN 'HTML body is not the statement page' END),
      (CASE WHEN d.channel = 'email' AND m.doc->'attachments'->0->>'sha256' IS DISTINCT FROM page.h THEN 'attachment is not the statement page' END),
      (CASE WHEN d.channel = 'email' AND m.doc->'attachments'->0->>'name' NOT LIKE 'statement-ST-20261031-%.html' THEN 'attachment name ' || (m.doc->'attachments'->0->>'name') END),
      (CASE WHEN d.channel = 'webhook' AND k.doc->>'attachment_sha256' IS DISTINCT FROM page.h THEN 'webhook attachment is not the statement page' END)) v(p)
 WHERE d.kind = 'statement' AND d.status = 'sent' AND d.channel IN ('email', 'webhook') AND p IS NOT NULL
UNION ALL
SELECT 'no statement arrived with an attachment' WHERE NOT EXISTS (SELECT 1 FROM got_mail m WHERE jsonb_array_length(m.doc->'attachments') = 1)"
check "webhooks and SMS arrive signed, once, with what was rendered" "
SELECT format('delivery %s (%s): %s', d.id, d.idempotency_key, p)
  FROM credit.delivery d
  CROSS JOIN LATERAL (SELECT count(*) AS n, min(h.doc::text)::jsonb AS doc FROM got_hook h WHERE h.doc->>'key' = d.idempotency_key) g
  CROSS JOIN LATERAL (VALUES
      (CASE WHEN g.n <> 1 THEN format('received %s times', g.n) END),
      (CASE WHEN NOT (g.doc->>'valid')::boolean THEN 'signature refused' END),
      (CASE WHEN g.doc->>'text' IS DISTINCT FROM d.body THEN 'text ' || (g.doc->>'text') END),
      (CASE WHEN d.channel = 'webhook' AND (g.doc->>'outbox_id')::bigint IS DISTINCT FROM d.outbox_id THEN 'outbox id' END),
      (CASE WHEN d.channel = 'webhook' AND g.doc->>'body_key' IS DISTINCT FROM d.idempotency_key THEN 'key in the body' END),
      (CASE WHEN d.channel = 'sms' AND (g.doc->>'path' <> '/sms' OR g.doc->>'to' <> d.address) THEN 'SMS not to the gateway for ' || d.address END)) v(p)
 WHERE d.channel IN ('webhook', 'sms') AND d.status = 'sent' AND p IS NOT NULL
UNION ALL
SELECT 'an unsigned or forged request was accepted' FROM got_hook h WHERE NOT (h.doc->>'valid')::boolean"
check "the Chinese SMS text" "
SELECT 'SMS: ' || (h.doc->>'text') FROM got_hook h WHERE h.doc->>'path' = '/sms'
   AND h.doc->>'text' NOT LIKE '【信用管理部】华东商贸：对账单ST-20261031-%已发出，期末余额20,000.50元，其中逾期12,000.50元。'"
check "retries back off exponentially before the dead letter" "
WITH a AS (SELECT a.attempt, a.outcome, a.started_at - lag(a.finished_at) OVER (ORDER BY a.attempt) AS gap
             FROM credit.delivery d JOIN credit.delivery_attempt a ON a.delivery_id = d.id
            WHERE d.address LIKE '%nothing-listens%')
SELECT format('attempt %s (%s) came %s after the one before', attempt, outcome, gap) FROM a
 WHERE outcome <> 'temporary' OR attempt = 2 AND gap < '1 second' OR attempt >= 3 AND gap < '2 seconds'
UNION ALL
SELECT format('%s attempts, not 4', count(*)) FROM a HAVING count(*) <> 4"
check "dead letters are in the view and the worklist" "
SELECT 'dead letters: ' || count(*) FROM credit.dead_letter HAVING count(*) <> 11
UNION ALL
SELECT 'BAD worklist shows ' || w.undelivered || ' undelivered' FROM credit.collection_worklist w
 WHERE w.customer = 'BAD' AND w.undelivered <> 8"
check "opted-out and later contacts receive nothing" "
SELECT 'delivery to ' || d.address FROM credit.delivery d WHERE d.address IN ('quiet@example.com', 'late@acme.example')"

echo "== 2. kill -9 in the middle of a batch"
psql_db >/dev/null <<SQL
INSERT INTO credit.account (customer, credit_limit) SELECT 'K' || i, 100000 FROM generate_series(1, 100) i;
SELECT count(*) FROM (SELECT credit.set_contact('K' || i, 'email', 'k' || i || '@kill.example', language => 'en'),
                             credit.set_contact('K' || i, 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook/bulk', language => 'en', secret => '$HOOK_SECRET')
                        FROM generate_series(1, 100) i) x;
SELECT count(*) FROM (SELECT credit.post_invoice('K' || i, 'K-' || i, 100 + i, current_date - 27, current_date + 3) FROM generate_series(1, 100) i) x;
SELECT count(*) FROM credit.run_collections(current_date);
SQL
stop_smtp; start_smtp 0.03   # a slower server, so that the kill lands mid-batch
before=$(wc -l <mail.log)
"$WORK/run-courier" --name victim --batch 50 2>>courier.err &
victim=$!
for _ in $(seq 200); do [ $(($(wc -l <mail.log) - before)) -ge 30 ] && break; sleep 0.05; done
kill -9 $victim; wait $victim 2>/dev/null || true
in_flight=$(psql_db -Atc "SELECT count(*) FROM credit.delivery WHERE status = 'sending'")
echo "killed after $(($(wc -l <mail.log) - before)) messages; $in_flight deliveries held by the dead courier's lease"
[ "$in_flight" -gt 0 ] || fail "the kill did not land in the middle of a batch"
drain restarted
load_logs
check "after kill -9 and restart: every K message sent, each key applied once" "
WITH k AS (SELECT d.*, (SELECT count(*) FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key) AS mails,
                  (SELECT count(*) FROM got_hook h WHERE h.doc->>'key' = d.idempotency_key AND NOT (h.doc->>'duplicate')::boolean) AS applied
             FROM credit.delivery d WHERE d.customer LIKE 'K%')
SELECT format('%s: %s', k.idempotency_key, p)
  FROM k CROSS JOIN LATERAL (VALUES
      (CASE WHEN k.status <> 'sent' THEN 'status ' || k.status END),
      (CASE WHEN k.channel = 'webhook' AND k.applied <> 1 THEN format('applied %s times', k.applied) END),
      (CASE WHEN k.channel = 'email' AND k.mails NOT IN (1, 2) THEN format('received %s times', k.mails) END)) v(p)
 WHERE p IS NOT NULL
UNION ALL
SELECT format('%s K deliveries, not 200', count(*)) FROM k HAVING count(*) <> 200
UNION ALL
SELECT format('%s e-mails arrived twice (at most the one in flight at the kill may)', count(*)) FROM k WHERE k.mails > 1 HAVING count(*) > 1
UNION ALL
SELECT 'no attempt was found unfinished after the kill'
 WHERE NOT EXISTS (SELECT 1 FROM credit.delivery_attempt a WHERE a.outcome = 'unknown' AND a.courier = 'victim')"
psql_db -Atc "SELECT format('  %s attempts closed as unknown, %s deliveries sent again; e-mails received twice: %s (same Message-ID)',
    count(*), count(DISTINCT a.delivery_id), (SELECT count(*) FROM (SELECT 1 FROM got_mail m GROUP BY m.doc->>'key' HAVING count(*) > 1) x))
  FROM credit.delivery_attempt a WHERE a.outcome = 'unknown'"

echo "== 2b. stopped dead between sending and recording"
psql_db >/dev/null <<SQL
INSERT INTO credit.account (customer, credit_limit) VALUES ('W1', 1000), ('W2', 1000);
SELECT credit.set_contact('W' || i, 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook/bulk', language => 'en', secret => '$HOOK_SECRET'),
       credit.set_contact('W' || i, 'email', 'w' || i || '@window.example', language => 'en') FROM generate_series(1, 2) i;
SELECT credit.post_invoice('W' || i, 'W-' || i, 10, current_date - 27, current_date + 3) FROM generate_series(1, 2) i;
SELECT count(*) FROM credit.run_collections(current_date);
SQL
# The courier aborts right after a send, before recording it: once after its 1st send, and once
# after its 2nd (the 1st being the same delivery again, whose lease ran out).
PG_CREDIT_COURIER_FAULT_ABORT_AFTER_SENDS=1 courier --once --batch 1 --name window 2>>courier.err && fail "the fault did not fire"
sleep 3.2   # the lease runs out
PG_CREDIT_COURIER_FAULT_ABORT_AFTER_SENDS=2 courier --once --batch 1 --name window 2>>courier.err && fail "the fault did not fire"
sleep 3.2
drain window-restarted
load_logs
check "a send not recorded is sent again with the same key: the webhook applies it once, the e-mail keeps its Message-ID" "
WITH w AS (SELECT d.*, (SELECT count(*) FROM got_hook h WHERE h.doc->>'key' = d.idempotency_key) AS received,
                  (SELECT count(*) FROM got_hook h WHERE h.doc->>'key' = d.idempotency_key AND NOT (h.doc->>'duplicate')::boolean) AS applied,
                  (SELECT count(*) FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key) AS mails,
                  (SELECT count(DISTINCT m.doc->>'message_id') FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key) AS ids
             FROM credit.delivery d WHERE d.customer LIKE 'W%')
SELECT format('%s (%s): status %s, received %s, applied %s, mails %s, Message-IDs %s', idempotency_key, channel, status, received, applied, mails, ids)
  FROM w WHERE status <> 'sent' OR channel = 'webhook' AND applied <> 1 OR channel = 'email' AND ids <> 1
UNION ALL
SELECT format('%s deliveries went twice, not 2', count(*)) FROM w WHERE received > 1 OR mails > 1 HAVING count(*) <> 2"
psql_db -Atc "SELECT '  sent twice under one key (receiver saw the key again): ' || string_agg(format('%s %s', d.channel, d.idempotency_key), ', ')
  FROM credit.delivery d JOIN credit.delivery_attempt a ON a.delivery_id = d.id AND a.outcome = 'unknown' WHERE d.customer LIKE 'W%'"

echo "== 2c. a slow server: nothing is sent once its lease may have run out"
psql_db >/dev/null <<SQL
UPDATE credit.courier_setting SET lease = '1 second', max_attempts = 20;
INSERT INTO credit.account (customer, credit_limit) SELECT 'S' || i, 1000 FROM generate_series(1, 8) i;
SELECT credit.set_contact('S' || i, 'email', 's' || i || '@slow.example', language => 'en') FROM generate_series(1, 8) i;
SELECT credit.post_invoice('S' || i, 'S-' || i, 10, current_date - 27, current_date + 3) FROM generate_series(1, 8) i;
SELECT count(*) FROM credit.run_collections(current_date);
SQL
stop_smtp; start_smtp 0.3   # 0.3 s a message: a batch of 8 outlasts a 1 s lease
courier --once --batch 8 --name slow 2>>courier.err
drain slow-again
load_logs
check "a slow server: each S message received once, the rest of a batch left for its next attempt" "
SELECT format('%s: received %s times', d.idempotency_key, (SELECT count(*) FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key))
  FROM credit.delivery d WHERE d.customer LIKE 'S%' AND (SELECT count(*) FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key) <> 1
UNION ALL
SELECT 'no delivery was held back when its lease ran short'
 WHERE NOT EXISTS (SELECT 1 FROM credit.delivery_attempt a JOIN credit.delivery d ON d.id = a.delivery_id
                    WHERE d.customer LIKE 'S%' AND a.detail LIKE 'not sent: its lease%')"
psql_db -Atc "SELECT format('  %s attempts held back for a lease running short; all %s delivered once', count(*) FILTER (WHERE a.detail LIKE 'not sent%'), count(DISTINCT d.id))
  FROM credit.delivery d JOIN credit.delivery_attempt a ON a.delivery_id = d.id WHERE d.customer LIKE 'S%'"
psql_db -qc "UPDATE credit.courier_setting SET lease = '3 seconds', max_attempts = 4"
stop_smtp; start_smtp

echo "== 3. the SMTP server down for a while"
stop_smtp
psql_db >/dev/null <<SQL
INSERT INTO credit.account (customer, credit_limit) SELECT 'D' || i, 100000 FROM generate_series(1, 20) i;
SELECT count(*) FROM (SELECT credit.set_contact('D' || i, 'email', 'd' || i || '@down.example', language => 'zh') FROM generate_series(1, 20) i) x;
SELECT count(*) FROM (SELECT credit.post_invoice('D' || i, 'D-' || i, 100 + i, current_date - 27, current_date + 3) FROM generate_series(1, 20) i) x;
SELECT count(*) FROM credit.run_collections(current_date);
SQL
courier --once --name down 2>>courier.err
sleep 1.2
courier --once --name down 2>>courier.err
retrying=$(psql_db -Atc "SELECT count(*) FROM credit.delivery WHERE customer LIKE 'D%' AND status = 'retry' AND attempts >= 2")
[ "$retrying" = 20 ] || fail "with the SMTP server down, expected 20 deliveries waiting for a retry after 2 attempts, got $retrying"
start_smtp
drain back
load_logs
check "with the server back, every D message delivered once after its failed attempts" "
SELECT format('%s: %s', d.idempotency_key, p)
  FROM credit.delivery d
  CROSS JOIN LATERAL (VALUES
      (CASE WHEN d.status <> 'sent' THEN 'status ' || d.status END),
      (CASE WHEN (SELECT count(*) FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key) <> 1 THEN 'not received once' END),
      (CASE WHEN (SELECT count(*) FROM credit.delivery_attempt a WHERE a.delivery_id = d.id AND a.outcome = 'temporary'
                     AND a.detail ILIKE '%connection refused%') < 2 THEN 'fewer than 2 failed attempts recorded' END)) v(p)
 WHERE d.customer LIKE 'D%' AND p IS NOT NULL"

echo "== 4. two couriers at once"
psql_db >/dev/null <<SQL
INSERT INTO credit.account (customer, credit_limit) SELECT 'T' || i, 100000 FROM generate_series(1, 100) i;
SELECT count(*) FROM (SELECT credit.set_contact('T' || i, 'email', 't' || i || '@two.example', language => 'en'),
                             credit.set_contact('T' || i, 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook/bulk', language => 'en', secret => '$HOOK_SECRET')
                        FROM generate_series(1, 100) i) x;
SELECT count(*) FROM (SELECT credit.post_invoice('T' || i, 'T-' || i, 100 + i, current_date - 27, current_date + 3) FROM generate_series(1, 100) i) x;
SELECT count(*) FROM credit.run_collections(current_date);
SQL
"$WORK/run-courier" --name one --batch 10 2>>courier.err & one=$!
"$WORK/run-courier" --name two --batch 10 2>>courier.err & two=$!
for _ in $(seq 600); do
    [ "$(psql_db -Atc "SELECT count(*) FROM credit.delivery WHERE customer LIKE 'T%' AND status = 'sent'")" = 200 ] && break
    sleep 0.1
done
kill $one $two; wait $one $two 2>/dev/null || true
load_logs
check "two couriers: each T message received exactly once" "
SELECT format('%s: received %s times', d.idempotency_key, (SELECT count(*) FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key)
                                                        + (SELECT count(*) FROM got_hook h WHERE h.doc->>'key' = d.idempotency_key))
  FROM credit.delivery d
 WHERE d.customer LIKE 'T%'
   AND (SELECT count(*) FROM got_mail m WHERE m.doc->>'key' = d.idempotency_key)
     + (SELECT count(*) FROM got_hook h WHERE h.doc->>'key' = d.idempotency_key) <> 1
UNION ALL
SELECT format('%s T deliveries, not 200', count(*)) FROM credit.delivery d WHERE d.customer LIKE 'T%' HAVING count(*) <> 200"
psql_db -Atc "SELECT '  sent by ' || string_agg(format('%s: %s', claimed_by, n), ', ') FROM (SELECT claimed_by, count(*) n FROM credit.delivery WHERE customer LIKE 'T%' GROUP BY 1 ORDER BY 1) x"

echo "== 5. a running courier is woken by NOTIFY"
"$WORK/run-courier" --name listener --poll 60 2>>courier.err & listener=$!
sleep 1   # it has planned and sent everything, and waits
psql_db -c "SELECT credit.post_invoice('ACME', 'AC-2', 10, '2026-11-20', current_date + 3)" -c "SELECT count(*) FROM credit.run_collections(current_date)" >/dev/null
woken=no
for _ in $(seq 100); do
    [ "$(psql_db -Atc "SELECT count(*) FROM credit.delivery d JOIN credit.outbox o ON o.id = d.outbox_id WHERE o.payload->'after'->>'doc_no' = 'AC-2' AND d.status = 'sent'")" = 3 ] && { woken=yes; break; }
    sleep 0.1
done
kill $listener; wait $listener 2>/dev/null || true
[ $woken = yes ] || fail "the courier (poll 60 s) did not deliver within 10 s of the commit"
echo "ok: delivered within seconds of the commit, woken by NOTIFY"
check "nothing left undelivered but the expected dead letters" "
SELECT format('%s %s', status, count(*)) FROM credit.delivery WHERE status NOT IN ('sent', 'dead') GROUP BY status"
echo "courier tests passed"
