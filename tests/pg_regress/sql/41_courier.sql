-- The courier's database side: contacts and their checks, templates, planning (which event makes
-- which message for whom, rendered in the contact's language), the claim / report state machine
-- (retries with backoff, dead letters, leases that run out, rate limits), opt-outs, retries by a
-- clerk, and the courier's own role. The courier program and real servers: tests/courier.
\set VERBOSITY default
\set SHOW_CONTEXT never
-- Events reach the outbox when their transaction commits, so this test commits as it goes.
-- Start from the outbox's end: only this test's events are planned.
UPDATE credit.courier_state SET position = (SELECT coalesce(max(id), 0) FROM credit.outbox);
INSERT INTO credit.account (customer, credit_limit, currency) VALUES ('CR-华', 50000, 'CNY'), ('CR-B', 20000, 'USD'), ('CR-Q', 1000, 'CNY');

-- Contacts: each bad value is refused with its reason, and nothing is stored.
SELECT regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'fax', '123')$$) AS bad_channel,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'email', 'not-an-address')$$) AS bad_email,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'email', 'Ann <ann@b.example>')$$) AS display_name,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'sms', '12-34')$$) AS bad_phone,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'webhook', 'ftp://b.example/x', secret => '0123456789abcdef')$$) AS bad_url,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'webhook', 'https://b.example/x')$$) AS no_secret,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'webhook', 'https://b.example/x', secret => 'short')$$) AS short_secret,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'email', 'ap@b.example', secret => '0123456789abcdef')$$) AS secret_on_email;
SELECT regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'email', 'ap@b.example', language => 'fr')$$) AS bad_language,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'email', 'ap@b.example', kinds => '{statement,gossip}')$$) AS unknown_kind,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'email', 'ap@b.example', kinds => '{risk_warning}')$$) AS staff_kind,
       regress.sqlstate_of($$SELECT credit.set_contact(NULL, 'email', 'team@seller.example')$$) AS staff_without_kinds,
       regress.sqlstate_of($$SELECT credit.set_contact('NOBODY', 'email', 'ap@b.example')$$) AS unknown_customer,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'email', NULL)$$) AS null_address;
SELECT count(*) AS contacts FROM credit.contact;

SELECT credit.set_contact('CR-华', 'email', 'finance@hua.example', language => 'zh', name => '王会计') AS hua_email \gset
SELECT credit.set_contact('CR-华', 'sms', '+8613800138000') AS hua_sms \gset
SELECT credit.set_contact('CR-B', 'email', 'ap@b.example', language => 'zh') AS b_email \gset
-- The same customer, channel and address again changes the contact (language, kinds), not a second one.
SELECT credit.set_contact('CR-B', 'email', 'ap@b.example', language => 'en', kinds => '{payment_reminder,overdue_notice,statement}') = :b_email AS same_contact;
SELECT credit.set_contact('CR-B', 'webhook', 'https://erp.b.example/hooks/credit', language => 'en', secret => 'a-secret-of-20-bytes') AS b_hook \gset
SELECT credit.set_contact(NULL, 'email', 'credit-team@seller.example', kinds => '{order_refused,risk_warning}') AS team \gset
SELECT credit.set_contact('CR-Q', 'email', 'quiet@q.example', language => 'en') AS quiet \gset
SELECT channel, address, name, language, receives, opted_out_at IS NOT NULL AS opted_out, has_secret FROM credit.contacts('CR-B');
SELECT channel, address, receives FROM credit.contacts(NULL);
SELECT count(*) AS secrets_readable_in_contacts FROM information_schema.columns WHERE table_schema = 'credit' AND table_name = 'contact' AND column_name = 'secret';
SELECT kind, customer, after - 'contact_id' AS after FROM credit.event WHERE kind = 'contact_set' AND customer = 'CR-B' ORDER BY id;
SELECT credit.opt_out(:quiet, 'asked by phone');
SELECT credit.opt_out(:quiet, 'again: nothing changes');
SELECT opt_out_reason FROM credit.contact WHERE id = :quiet;
SELECT regress.sqlstate_of('SELECT credit.opt_out(999999)') AS unknown_contact;

-- Templates: placeholders are checked when written; defaults exist for every kind, channel and language.
SELECT count(*) AS kinds, count(*) FILTER (WHERE audience = 'staff') AS staff_kinds FROM credit.message_kind;
SELECT k.kind, c.channel, l.language FROM credit.message_kind k CROSS JOIN (VALUES ('email'), ('sms')) c(channel)
 CROSS JOIN (VALUES ('zh'), ('en')) l(language)
 WHERE NOT EXISTS (SELECT 1 FROM credit.message_template t WHERE (t.kind, t.channel, t.language) = (k.kind, c.channel, l.language));
SELECT regress.sqlstate_of($$UPDATE credit.message_template SET body = 'Dear {{customer' WHERE kind = 'statement' AND channel = 'sms' AND language = 'en'$$) AS unclosed,
       regress.sqlstate_of($$UPDATE credit.message_template SET body = '{{event..doc_no}}' WHERE kind = 'statement' AND channel = 'sms' AND language = 'en'$$) AS malformed,
       regress.sqlstate_of($$UPDATE credit.message_template SET body = '{{weather.today}}' WHERE kind = 'statement' AND channel = 'sms' AND language = 'en'$$) AS unknown_part,
       regress.sqlstate_of($$UPDATE credit.message_template SET subject = NULL WHERE kind = 'statement' AND channel = 'email' AND language = 'en'$$) AS email_without_subject;
SELECT credit._render_message('{{customer}} owes {{ figures.overdue }}{{event.none}}', '{"customer": "A&B", "figures": {"overdue": "1,000.00"}, "event": {"none": null}}') AS rendered;
SELECT regress.sqlstate_of($$SELECT credit._render_message('{{event.due_date}}', '{"event": {}}')$$) AS missing_field;
SELECT credit._money_text(1234567.5) AS money, credit._money_text(0.125) AS fine_money,
       credit._json_numbers_as_text('{"amount": 1000, "days_past_due": 9, "x": [1.50]}') AS event_fields;

-- Documents and the ladder: CR-华 is reminded and noticed by e-mail; CR-B by e-mail and its ERP's
-- webhook; the phone call (level 3) and the hold (level 4, internal) are work for people, not
-- messages. CR-Q opted out.
-- The ladder runs as of today: documents are dated from today (and dates are masked below).
SELECT credit.post_invoice('CR-华', 'HUA-1', 12000.50, '2025-01-05', current_date - 20) > 0 AS posted,
       credit.post_invoice('CR-B', 'B-1', 5000, '2025-01-10', current_date - 3) > 0 AS posted_b,
       credit.post_invoice('CR-Q', 'Q-1', 300, '2025-01-10', current_date - 3) > 0 AS posted_q;
SELECT level, detail, count(*) AS tasks FROM credit.run_collections(current_date)
 WHERE change = 'task_created' AND customer LIKE 'CR-%' GROUP BY 1, 2 ORDER BY 1;
SELECT count(*) AS statements FROM credit.statement_run('2025-01-31') WHERE customer LIKE 'CR-%';
-- A contact added now receives none of the above.
SELECT credit.set_contact('CR-B', 'email', 'late@b.example', language => 'en') > 0 AS late_contact;
SELECT events > 0 AS read_events, deliveries FROM credit.courier_plan();
SELECT * FROM credit.courier_plan() AS again;
SELECT position = (SELECT max(id) FROM credit.outbox) AS planned_to_the_end FROM credit.courier_state;
SELECT d.customer, d.kind, d.channel, d.address, d.language, d.status, d.idempotency_key = format('pgc-%s-%s', d.outbox_id, d.contact_id) AS key_ok
  FROM credit.delivery d ORDER BY d.id;
-- What CR-华's overdue notice says, in Chinese, to the cent.
SELECT replace(subject, to_char(current_date - 20, 'YYYY-MM-DD'), '<due>') AS subject,
       replace(body, to_char(current_date - 20, 'YYYY-MM-DD'), '<due>') AS body
  FROM credit.delivery WHERE customer = 'CR-华' AND kind = 'overdue_notice';
-- The webhook's JSON: the rendered words, the customer's figures and the event.
SELECT jsonb_pretty(payload - 'event' - 'text' - 'idempotency_key' || jsonb_build_object('event_kind', payload -> 'event' ->> 'kind')) AS webhook
  FROM credit.delivery WHERE customer = 'CR-B' AND channel = 'webhook' AND kind = 'overdue_notice';
-- Statements carry the statement page as HTML body (e-mail) and attachment.
SELECT d.channel, regexp_replace(d.attachment_name, '-\d+\.html$', '-N.html') AS attachment_name, d.attachment = credit.statement_html(s.id, 'en') AS attachment_is_the_page,
       coalesce(d.body_html = d.attachment, d.payload -> 'attachment' ->> 'content' = credit.statement_html(s.id, 'en')) AS body_is_the_page
  FROM credit.delivery d JOIN credit.statement s ON s.customer = d.customer
 WHERE d.kind = 'statement' AND d.customer = 'CR-B' ORDER BY d.id;

-- Claim and report, as the courier does.
UPDATE credit.courier_setting SET backoff_base = '30 seconds', backoff_max = '5 minutes', max_attempts = 3;
SELECT attempt, channel, address, idempotency_key LIKE 'pgc-%' AS keyed, webhook_secret
  FROM credit.courier_claim('regress-1', 3) ORDER BY delivery_id;
SELECT status, count(*) FROM credit.delivery GROUP BY 1 ORDER BY 1;
SELECT min(id) AS d1, min(id) + 1 AS d2, min(id) + 2 AS d3 FROM credit.delivery \gset
SELECT credit.courier_report(:d1, 1, 'sent', '250 OK') AS first,
       credit.courier_report(:d2, 1, 'temporary', '421 try later') AS second,
       credit.courier_report(:d3, 1, 'permanent', '550 no such user') AS third;
SELECT id - :d1 AS n, status, attempts, last_error, next_attempt_at - clock_timestamp() BETWEEN '29 seconds' AND '31 seconds' AS backoff_30s
  FROM credit.delivery WHERE id IN (:d1, :d2, :d3) ORDER BY id;
-- A late report of an attempt that is no longer current changes nothing.
SELECT credit.courier_report(:d1, 1, 'permanent', 'late') AS late_report, (SELECT status FROM credit.delivery WHERE id = :d1) AS still;
SELECT regress.sqlstate_of(format('SELECT credit.courier_report(%s, 1, %L)', :d2, 'maybe')) AS bad_outcome,
       regress.sqlstate_of('SELECT credit.courier_report(999999, 1, ''sent'')') AS unknown_delivery,
       regress.sqlstate_of($$SELECT count(*) FROM credit.courier_claim('', 1)$$) AS unnamed_courier,
       regress.sqlstate_of($$SELECT count(*) FROM credit.courier_claim('x', 0)$$) AS no_rows;
-- Backoff doubles, then the last attempt gives up: a dead letter.
UPDATE credit.delivery SET next_attempt_at = clock_timestamp() WHERE id = :d2;
SELECT attempt FROM credit.courier_claim('regress-1', 100) WHERE delivery_id = :d2;
SELECT credit.courier_report(:d2, 2, 'temporary', '421 still later') AS second_again;
SELECT next_attempt_at - clock_timestamp() BETWEEN '59 seconds' AND '61 seconds' AS backoff_60s FROM credit.delivery WHERE id = :d2;
UPDATE credit.delivery SET next_attempt_at = clock_timestamp() WHERE id = :d2;
SELECT attempt FROM credit.courier_claim('regress-1', 100) WHERE delivery_id = :d2;
SELECT credit.courier_report(:d2, 3, 'temporary', '421 still later') AS gave_up;
SELECT attempt, outcome, detail FROM credit.delivery_attempt WHERE delivery_id = :d2 ORDER BY attempt;
-- A courier that died holding a lease: when it runs out the delivery is claimed again under the
-- same key and the lost attempt is closed as unknown.
SELECT count(*) AS still_sending FROM credit.delivery WHERE status = 'sending';
UPDATE credit.delivery SET lease_until = clock_timestamp() - interval '1 second' WHERE status = 'sending';
SELECT count(*) AS reclaimed, min(attempt) AS attempt FROM credit.courier_claim('regress-2', 100);
SELECT outcome, count(*) FROM credit.delivery_attempt WHERE attempt = 1 AND courier = 'regress-1' GROUP BY 1 ORDER BY 1;
SELECT count(*) AS reports FROM (SELECT credit.courier_report(d.id, d.attempts, 'sent') FROM credit.delivery d WHERE d.status = 'sending') x;

-- Rate limits count every courier's attempts of the last minute.
SELECT credit.post_invoice('CR-B', 'B-2', 10, '2025-02-01', current_date + 3) > 0 AS posted;
SELECT count(*) AS tasks FROM credit.run_collections(current_date) WHERE customer LIKE 'CR-%';
SELECT deliveries FROM credit.courier_plan();
UPDATE credit.courier_channel SET rate_per_minute = (SELECT count(*) FROM credit.delivery_attempt WHERE channel = 'email'
                                                      AND started_at > clock_timestamp() - interval '1 minute') + 1
 WHERE channel = 'email';
SELECT channel, count(*) FROM credit.courier_claim('regress-3', 100) GROUP BY 1 ORDER BY 1;
SELECT count(*) AS email_over_the_limit FROM credit.courier_claim('regress-3', 100) WHERE channel = 'email';
UPDATE credit.courier_channel SET rate_per_minute = NULL;

-- Dead letters: a template with a missing field and a message over the size limit are dead at
-- planning, with their reasons; a recipient that opts out is not sent what is planned for it.
UPDATE credit.message_template SET body = body || ' {{event.promised_time}}' WHERE kind = 'statement' AND channel = 'email' AND language = 'en';
UPDATE credit.courier_setting SET max_message_bytes = 1000;
SELECT credit.post_invoice('CR-华', 'HUA-2', 99.99, '2025-02-03', '2025-03-05') > 0 AS posted;
SELECT count(*) AS statements FROM credit.statement_run('2025-02-28') WHERE customer LIKE 'CR-%';
SELECT deliveries FROM credit.courier_plan();
SELECT customer, kind, channel, address, regexp_replace(reason, '\d+ bytes', 'N bytes') AS reason
  FROM credit.dead_letter WHERE kind = 'statement' ORDER BY delivery_id;
SELECT count(*) AS sms_pending FROM credit.delivery WHERE contact_id = :hua_sms AND status IN ('pending', 'retry');
SELECT credit.opt_out(:hua_sms, 'no more SMS, please');
SELECT kind, status, last_error FROM credit.delivery WHERE contact_id = :hua_sms ORDER BY id;
SELECT credit.opt_in(:hua_sms);
SELECT customer, kind, channel, regexp_replace(reason, '\d+ bytes', 'N bytes') AS reason FROM credit.dead_letter ORDER BY delivery_id;
SELECT customer, undelivered FROM credit.collection_worklist WHERE customer LIKE 'CR-%' ORDER BY task_id;
SELECT channel, status, deliveries FROM credit.delivery_summary ORDER BY 1, 2;

-- A clerk sends a dead letter again (the address was mended); one never rendered cannot be.
SELECT credit.retry_delivery(:d3) AS retried, (SELECT attempts || '/' || retried_after FROM credit.delivery WHERE id = :d3) AS attempts;
SELECT attempt FROM credit.courier_claim('regress-4', 100) WHERE delivery_id = :d3;
SELECT credit.courier_report(:d3, 2, 'temporary', 'busy') AS counts_afresh;
SELECT regress.sqlstate_of(format('SELECT credit.retry_delivery(%s)', :d1)) AS sent_one,
       regress.sqlstate_of(format('SELECT credit.retry_delivery(%s)', (SELECT min(delivery_id) FROM credit.dead_letter WHERE reason LIKE 'template%'))) AS unrendered,
       regress.sqlstate_of('SELECT credit.retry_delivery(999999)') AS unknown;

-- The outbox is not pruned past what the courier has planned while it has contacts.
SELECT credit.set_contact('CR-B', 'email', 'pruning@b.example') > 0 AS one_more_event;
SET client_min_messages = warning;   -- (the notice names the position)
SELECT credit.prune_outbox((SELECT max(id) FROM credit.outbox)) > 0 AS pruned;
RESET client_min_messages;
SELECT count(*) AS unplanned_kept FROM credit.outbox WHERE id > (SELECT position FROM credit.courier_state);
SELECT deliveries FROM credit.courier_plan();

-- A message that cannot be built (here: the statement an event names cannot be read) is a dead
-- letter with the reason; the plan goes on with the others.
INSERT INTO credit.outbox (id, event_id, kind, customer, payload)
SELECT nextval('credit.outbox_id_seq'), 0, 'statement_issued', 'CR-华',
       jsonb_build_object('kind', 'statement_issued', 'after', jsonb_build_object(
           'statement_id', 999999, 'statement_no', 'ST-LOST', 'period_start', '2025-03-01', 'period_end', '2025-03-31',
           'opening', 0, 'debits', 0, 'credits', 0, 'closing', 0, 'overdue', 0, 'currency', 'CNY'));
SELECT deliveries FROM credit.courier_plan();
SELECT channel, status, last_error FROM credit.delivery WHERE outbox_id = (SELECT max(id) FROM credit.outbox) ORDER BY id;
DELETE FROM credit.delivery WHERE outbox_id = (SELECT max(id) FROM credit.outbox);
DELETE FROM credit.outbox WHERE event_id = 0;

-- The courier's role: the three courier functions, nothing else.
SELECT regress.sqlstate_of($$SELECT credit.grant_courier('no_such_role')$$) AS missing_role;
DO $$ BEGIN CREATE ROLE regress_courier; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT credit.grant_courier('regress_courier');
SELECT p.oid::regprocedure AS executable FROM pg_proc p
 WHERE p.pronamespace = 'credit'::regnamespace AND has_function_privilege('regress_courier', p.oid, 'EXECUTE')
   AND NOT has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1;
SET ROLE regress_courier;
SELECT events >= 0 AS plans FROM credit.courier_plan();
SELECT count(*) >= 0 AS claims FROM credit.courier_claim('regress-role', 1);
SELECT regress.sqlstate_of('SELECT count(*) FROM credit.delivery') AS reads_deliveries,
       regress.sqlstate_of('SELECT count(*) FROM credit.contact_secret') AS reads_secrets,
       regress.sqlstate_of($$SELECT credit.set_contact('CR-B', 'email', 'x@b.example')$$) AS sets_contacts;
RESET ROLE;
DROP OWNED BY regress_courier;
DROP ROLE regress_courier;
-- Leave no contact behind: later runs of the suite (the update test) start without them.
SET session_replication_role = replica;
DELETE FROM credit.delivery_attempt;
DELETE FROM credit.delivery;
DELETE FROM credit.contact_secret;
DELETE FROM credit.contact;
RESET session_replication_role;
UPDATE credit.courier_setting SET backoff_base = DEFAULT, backoff_max = DEFAULT, max_attempts = DEFAULT, max_message_bytes = DEFAULT;
