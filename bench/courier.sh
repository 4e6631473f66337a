#!/usr/bin/env bash
# The courier's throughput and delay, against the test receivers (tests/courier/receivers.py: an
# SMTP server with STARTTLS and AUTH, an HTTP server checking signatures) on loopback:
#   - messages per second, e-mail and webhook: N events (balance confirmation requests, one per
#     customer) committed, then one `pg_credit_courier --once` plans and delivers them all;
#     baseline in the same run: the same messages sent to the same receivers by the simplest
#     client (bench/courier_baseline.py: one SMTP connection, one keep-alive HTTP connection,
#     no database)
#   - delay from commit to delivery (p50, p99): a running courier (woken by NOTIFY) while events
#     are committed one by one, RATE a second; the delay is the receiver's clock at arrival minus
#     the event's commit (credit.outbox.published_at), same machine
# Results to target/bench/courier.md (BENCHMARKS.md quotes them).
#   bench/courier.sh        N=2000 LATENCY_EVENTS=300 RATE=20 bench/courier.sh
source "$(dirname "$0")/../scripts/common.sh"
N=${N:-2000}
LATENCY_EVENTS=${LATENCY_EVENTS:-300}
RATE=${RATE:-20}
DIR=/tmp/pg_credit_bench_courier
PORT=5501
SMTP_PORT=5532
HTTP_PORT=5533
SECRET=bench-secret-0123456789
OUT="$ROOT/target/bench"
WORK="$OUT/courier"
rm -rf "$WORK"; mkdir -p "$WORK"
ensure_deps python3-aiosmtpd openssl
install_extension release
build_courier
COURIER="$(courier_binary)"
start_cluster "$DIR" "$PORT"
cd "$WORK"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
SMTP_PASSWORD=pw /usr/bin/python3 "$ROOT/tests/courier/receivers.py" smtp "$SMTP_PORT" "$WORK/mail.log" server.pem server.key >smtp.out 2>&1 &
smtp_pid=$!
WEBHOOK_SECRETS="/hook=$SECRET" /usr/bin/python3 "$ROOT/tests/courier/receivers.py" http "$HTTP_PORT" "$WORK/hook.log" >http.out 2>&1 &
http_pid=$!
trap 'kill $smtp_pid $http_pid 2>/dev/null; pkill -f "$COURIER" 2>/dev/null; [ -n "${KEEP_CLUSTER:-}" ] || stop_cluster "$DIR"' EXIT
sleep 1
db() { pg "$DIR" "$PORT" -d bench "$@"; }
pg "$DIR" "$PORT" -d postgres -c "CREATE DATABASE bench" >/dev/null
db -q <<SQL >/dev/null
CREATE EXTENSION pg_credit;
INSERT INTO credit.account (customer, credit_limit) SELECT c || i, 100000 FROM unnest(ARRAY['E', 'H', 'L']) c, generate_series(1, greatest($N, $LATENCY_EVENTS)) i;
SELECT credit.post_invoice(a.customer, a.customer || '-1', 1234.5, '2026-01-05', '2026-02-04') FROM credit.account a;
SELECT credit.set_contact('E' || i, 'email', 'e' || i || '@bench.example', language => 'zh') FROM generate_series(1, $N) i;
SELECT credit.set_contact('H' || i, 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook', language => 'zh', secret => '$SECRET') FROM generate_series(1, $N) i;
SELECT credit.set_contact('L' || i, 'email', 'l' || i || '@bench.example', language => 'zh'),
       credit.set_contact('L' || i, 'webhook', 'http://127.0.0.1:$HTTP_PORT/hook', language => 'zh', secret => '$SECRET')
  FROM generate_series(1, $LATENCY_EVENTS) i;
SQL
courier() {
    "$COURIER" --dsn "host=$DIR port=$PORT user=postgres dbname=bench" --smtp-host 127.0.0.1 --smtp-port "$SMTP_PORT" \
        --smtp-user courier --smtp-password pw --smtp-from "信用管理部 <credit@seller.example>" --smtp-ca-file "$WORK/ca.pem" "$@"
}
throughput() { # prefix channel
    db -qc "SELECT count(*) FROM (SELECT credit.request_confirmation('$1' || i, '2026-06-30', 'positive', '2026-07-14') FROM generate_series(1, $N) i) x" >/dev/null
    local t0 t1
    t0=$(date +%s.%N)
    courier --once --batch 100 2>>courier.err
    t1=$(date +%s.%N)
    local sent
    sent=$(db -Atc "SELECT count(*) FROM credit.delivery WHERE customer LIKE '$1%' AND status = 'sent'")
    [ "$sent" = "$N" ] || { echo "only $sent of $N $2 messages sent"; exit 1; }
    awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }'
}
log "e-mail: $N messages"
email_rate=$(throughput E email)
db -Atc "\\copy (SELECT json_build_object('key', idempotency_key || '-baseline', 'address', address, 'subject', subject, 'body', body) FROM credit.delivery WHERE customer LIKE 'E%' ORDER BY id) TO '$WORK/email.jsonl'"
email_base=$(/usr/bin/python3 "$ROOT/bench/courier_baseline.py" smtp "$WORK/email.jsonl" 127.0.0.1 "$SMTP_PORT" "$WORK/ca.pem" pw)
log "webhook: $N messages"
hook_rate=$(throughput H webhook)
db -Atc "\\copy (SELECT json_build_object('key', idempotency_key || '-baseline', 'address', address, 'payload', payload) FROM credit.delivery WHERE customer LIKE 'H%' ORDER BY id) TO '$WORK/hook.jsonl'"
hook_base=$(/usr/bin/python3 "$ROOT/bench/courier_baseline.py" http "$WORK/hook.jsonl" 127.0.0.1 "$HTTP_PORT" "$SECRET")

log "delay from commit to delivery: $LATENCY_EVENTS events at $RATE a second"
courier --poll 60 2>>courier.err &
listener=$!
sleep 1
for i in $(seq "$LATENCY_EVENTS"); do
    db -qc "SELECT credit.request_confirmation('L$i', '2026-06-30', 'positive', '2026-07-14')" >/dev/null
    sleep "$(awk -v r="$RATE" 'BEGIN { printf "%.3f", 1 / r }')"
done
for _ in $(seq 300); do
    [ "$(db -Atc "SELECT count(*) FROM credit.delivery WHERE customer LIKE 'L%' AND status = 'sent'")" = $((2 * LATENCY_EVENTS)) ] && break
    sleep 0.1
done
kill $listener; wait $listener 2>/dev/null || true
db -q <<SQL
CREATE TABLE got (doc jsonb);
\copy got FROM '$WORK/mail.log' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
\copy got FROM '$WORK/hook.log' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
CREATE TABLE delay AS
SELECT d.channel, (g.doc->>'received_at')::float8 - extract(epoch FROM o.published_at) AS seconds
  FROM credit.delivery d JOIN credit.outbox o ON o.id = d.outbox_id JOIN got g ON g.doc->>'key' = d.idempotency_key
 WHERE d.customer LIKE 'L%';
SQL
delays=$(db -Atc "SELECT string_agg(format('%s: p50 %s ms, p99 %s ms (%s messages)', channel, p50, p99, n), '; ' ORDER BY channel)
                  FROM (SELECT channel, round((percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) * 1000)::numeric, 1) AS p50,
                               round((percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds) * 1000)::numeric, 1) AS p99, count(*) AS n
                          FROM delay GROUP BY channel) x")
{
    echo "| workload | courier | baseline (same receivers, no database) | ratio |"
    echo "|---|---|---|---|"
    awk -v n="$N" -v c="$email_rate" -v b="$email_base" 'BEGIN { printf "| e-mail, STARTTLS + AUTH, %s messages | %.0f msg/s | %.0f msg/s | %.2f |\n", n, c, b, c / b }'
    awk -v n="$N" -v c="$hook_rate" -v b="$hook_base" 'BEGIN { printf "| webhook, signed JSON, %s messages | %.0f msg/s | %.0f msg/s | %.2f |\n", n, c, b, c / b }'
    echo
    echo "Commit to delivery, a running courier, $LATENCY_EVENTS events at $RATE/s (each an e-mail and a webhook): $delays."
} | tee "$OUT/courier.md"
