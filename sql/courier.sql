-- Delivery of the outbox to people and systems (docs/courier.md): who receives what
-- (credit.contact), the words (credit.message_template), and the delivery log through which the
-- courier program (courier/ in this repository) delivers each message exactly once.
--
-- The work is split so that a courier killed at any moment loses nothing and repeats nothing it
-- could know about:
--   plan    credit.courier_plan() reads the outbox after the position kept in
--           credit.courier_state, renders one credit.delivery per event and recipient and moves
--           the position, in one transaction (two couriers planning take turns on its row);
--   claim   credit.courier_claim() leases due deliveries to one courier (SKIP LOCKED, rate
--           limits per channel) and records the attempt before anything is sent;
--   report  credit.courier_report() records the outcome: sent, retried later with exponential
--           backoff, or a dead letter.
-- A courier killed between sending and reporting leaves a lease that runs out; the delivery is
-- sent again with the same idempotency key (the webhook's Idempotency-Key header, the e-mail's
-- Message-ID), so a receiver that keeps keys applies it once.

-- Message kinds: which event becomes which message, and for whom. Fixed by pg_credit (the
-- planner's rules); templates and contacts refer to these names.
CREATE TABLE credit.message_kind (
    kind         text PRIMARY KEY,
    event_kind   text NOT NULL,
    task_action  text,             -- task_created: the ladder action that makes this kind
    audience     text NOT NULL CHECK (audience IN ('customer', 'staff')),
    description  text NOT NULL
);
INSERT INTO credit.message_kind VALUES
    ('payment_reminder',      'task_created',           'remind',   'customer', 'A dunning level with action remind (by default three days before the due date)'),
    ('overdue_notice',        'task_created',           'notice',   'customer', 'A dunning level with action notice: the invoice is overdue'),
    ('escalation_notice',     'task_created',           'escalate', 'customer', 'A dunning level with action escalate sent by e-mail or SMS'),
    ('supply_suspended',      'task_created',           'hold',     'customer', 'A dunning level with action hold: shipments are stopped'),
    ('legal_referral',        'task_created',           'legal',    'customer', 'A dunning level with action legal: the debt is referred'),
    ('statement',             'statement_issued',       NULL,       'customer', 'A statement of account was issued (the page as the body and as an attachment)'),
    ('confirmation_request',  'confirmation_requested', NULL,       'customer', 'The customer is asked to confirm its balance'),
    ('confirmation_reminder', 'confirmation_reminder',  NULL,       'customer', 'A reminder of an unanswered balance confirmation'),
    ('promise_broken',        'promise_broken',         NULL,       'customer', 'A promise to pay was not kept'),
    ('arrangement_broken',    'arrangement_broken',     NULL,       'customer', 'An instalment of a payment arrangement was missed'),
    ('risk_warning',          'risk_warning',           NULL,       'staff',    'An early warning on a customer (credit team)'),
    ('order_refused',         'order_refused',          NULL,       'staff',    'An order was refused by the guard (credit team)');

-- Who receives what. customer NULL: a member of staff or a team system, receiving the kinds it
-- lists for every customer.
CREATE TABLE credit.contact (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer      text,
    channel       text NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    address       text NOT NULL,
    name          text,
    kinds         text[],
    language      text NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    opted_out_at  timestamptz,
    opt_out_reason text,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by    name NOT NULL DEFAULT credit._person(),
    CONSTRAINT contact_key UNIQUE NULLS NOT DISTINCT (customer, channel, address),
    CONSTRAINT contact_staff_kinds CHECK (customer IS NOT NULL OR kinds IS NOT NULL)
);
CREATE INDEX contact_staff_idx ON credit.contact (id) WHERE customer IS NULL;
SELECT pg_catalog.pg_extension_config_dump('credit.contact', '');
SELECT pg_catalog.pg_extension_config_dump('credit.contact_id_seq', '');

-- Webhook keys, apart from the contacts everyone at a level may read: only pg_credit's own
-- functions read them (for the courier).
CREATE TABLE credit.contact_secret (
    contact_id  bigint PRIMARY KEY REFERENCES credit.contact (id),
    secret      text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('credit.contact_secret', '');

-- The words. Webhooks use the e-mail template of their kind and language (subject and text) in
-- their JSON. Placeholders: docs/courier.md#templates.
CREATE TABLE credit.message_template (
    kind        text NOT NULL REFERENCES credit.message_kind (kind),
    channel     text NOT NULL CHECK (channel IN ('email', 'sms')),
    language    text NOT NULL CHECK (language IN ('zh', 'en')),
    subject     text,
    body        text NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    retired     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (kind, channel, language)
);
SELECT pg_catalog.pg_extension_config_dump('credit.message_template', 'WHERE NOT is_default');
CREATE TRIGGER message_template_write BEFORE INSERT OR UPDATE OR DELETE ON credit.message_template
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('kind', 'channel', 'language');

-- A template is checked when written: placeholders well formed (credit._template_fields raises
-- 22023) and naming one of the parts a message has.
CREATE FUNCTION credit._message_template_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY credit._template_fields(coalesce(NEW.subject, '')) || credit._template_fields(NEW.body) LOOP
        IF split_part(f, '.', 1) NOT IN ('customer', 'kind', 'language', 'sender', 'contact', 'event', 'invoice', 'figures') THEN
            RAISE EXCEPTION 'template %/%/% references {{%}}, which no message has', NEW.kind, NEW.channel, NEW.language, f
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Placeholders start with customer, kind, language, sender, contact, event, invoice or figures (docs/courier.md#templates).';
        END IF;
    END LOOP;
    IF NEW.channel = 'email' AND NEW.subject IS NULL THEN
        RAISE EXCEPTION 'an e-mail template needs a subject' USING ERRCODE = 'not_null_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER message_template_check BEFORE INSERT OR UPDATE ON credit.message_template
    FOR EACH ROW EXECUTE FUNCTION credit._message_template_check();

INSERT INTO credit.message_template (kind, channel, language, subject, body, is_default) VALUES
('payment_reminder', 'email', 'zh', '付款提醒：发票 {{invoice.doc_no}} 将于 {{invoice.due_date}} 到期',
 E'{{customer}} 您好：\n\n发票 {{invoice.doc_no}}（开票日期 {{invoice.doc_date}}）尚有 {{invoice.open_amount}} {{figures.currency}} 未付，到期日为 {{invoice.due_date}}。请按期安排付款；如已付款，请忽略本提醒。\n\n贵司目前应收余额 {{figures.open_ar}}，其中逾期 {{figures.overdue}}。\n\n{{sender}}', true),
('payment_reminder', 'email', 'en', 'Payment reminder: invoice {{invoice.doc_no}} is due on {{invoice.due_date}}',
 E'Dear {{customer}},\n\nInvoice {{invoice.doc_no}} of {{invoice.doc_date}} has {{invoice.open_amount}} {{figures.currency}} open, due on {{invoice.due_date}}. Please arrange payment by then; if you have paid already, please ignore this reminder.\n\nYour open balance is {{figures.open_ar}}, of which {{figures.overdue}} is overdue.\n\n{{sender}}', true),
('payment_reminder', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：发票{{invoice.doc_no}}未付{{invoice.open_amount}}元，将于{{invoice.due_date}}到期，请按期付款。', true),
('payment_reminder', 'sms', 'en', NULL, '{{sender}}: invoice {{invoice.doc_no}}, {{invoice.open_amount}} open, is due on {{invoice.due_date}}. Please pay on time.', true),
('overdue_notice', 'email', 'zh', '逾期通知：发票 {{invoice.doc_no}} 已逾期 {{event.days_past_due}} 天',
 E'{{customer}} 您好：\n\n发票 {{invoice.doc_no}} 已于 {{invoice.due_date}} 到期，至今逾期 {{event.days_past_due}} 天，未付金额 {{invoice.open_amount}} {{figures.currency}}。请尽快付款，或与我们联系商定付款日期。\n\n贵司逾期合计 {{figures.overdue}}，应收余额 {{figures.open_ar}}。\n\n{{sender}}', true),
('overdue_notice', 'email', 'en', 'Overdue notice: invoice {{invoice.doc_no}} is {{event.days_past_due}} days past due',
 E'Dear {{customer}},\n\nInvoice {{invoice.doc_no}} was due on {{invoice.due_date}} and is {{event.days_past_due}} days past due with {{invoice.open_amount}} {{figures.currency}} open. Please pay it now, or contact us to agree a payment date.\n\nYour overdue total is {{figures.overdue}}; your open balance {{figures.open_ar}}.\n\n{{sender}}', true),
('overdue_notice', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：发票{{invoice.doc_no}}已逾期{{event.days_past_due}}天，未付{{invoice.open_amount}}元，请尽快付款。', true),
('overdue_notice', 'sms', 'en', NULL, '{{sender}}: invoice {{invoice.doc_no}} is {{event.days_past_due}} days overdue, {{invoice.open_amount}} open. Please pay now.', true),
('escalation_notice', 'email', 'zh', '催款升级：发票 {{invoice.doc_no}} 逾期 {{event.days_past_due}} 天',
 E'{{customer}} 您好：\n\n发票 {{invoice.doc_no}} 逾期 {{event.days_past_due}} 天，未付 {{invoice.open_amount}} {{figures.currency}}，已转由财务负责人跟进，我们将与您联系。\n\n{{sender}}', true),
('escalation_notice', 'email', 'en', 'Escalation: invoice {{invoice.doc_no}} is {{event.days_past_due}} days past due',
 E'Dear {{customer}},\n\nInvoice {{invoice.doc_no}} is {{event.days_past_due}} days past due with {{invoice.open_amount}} {{figures.currency}} open. Our finance manager has taken it over and will contact you.\n\n{{sender}}', true),
('escalation_notice', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：发票{{invoice.doc_no}}逾期{{event.days_past_due}}天，已转财务负责人跟进。', true),
('escalation_notice', 'sms', 'en', NULL, '{{sender}}: invoice {{invoice.doc_no}} is {{event.days_past_due}} days overdue; our finance manager will call you.', true),
('supply_suspended', 'email', 'zh', '暂停发货通知', E'{{customer}} 您好：\n\n因发票 {{invoice.doc_no}} 逾期 {{event.days_past_due}} 天未付（{{invoice.open_amount}} {{figures.currency}}），自即日起暂停向贵司发货，付款后恢复。\n\n逾期合计 {{figures.overdue}}。\n\n{{sender}}', true),
('supply_suspended', 'email', 'en', 'Shipments suspended', E'Dear {{customer}},\n\nAs invoice {{invoice.doc_no}} is {{event.days_past_due}} days overdue ({{invoice.open_amount}} {{figures.currency}} open), shipments to you are suspended until it is paid.\n\nOverdue total: {{figures.overdue}}.\n\n{{sender}}', true),
('supply_suspended', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：因逾期未付，已暂停发货，付款后恢复。逾期合计{{figures.overdue}}元。', true),
('supply_suspended', 'sms', 'en', NULL, '{{sender}}: shipments are suspended until your overdue {{figures.overdue}} is paid.', true),
('legal_referral', 'email', 'zh', '法律催收通知', E'{{customer}} 您好：\n\n发票 {{invoice.doc_no}} 逾期 {{event.days_past_due}} 天，经多次催收仍未付款（{{invoice.open_amount}} {{figures.currency}}），已移交法务处理。\n\n{{sender}}', true),
('legal_referral', 'email', 'en', 'Referral to legal collection', E'Dear {{customer}},\n\nInvoice {{invoice.doc_no}} is {{event.days_past_due}} days overdue ({{invoice.open_amount}} {{figures.currency}} open) despite our reminders and has been referred to our legal department.\n\n{{sender}}', true),
('legal_referral', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：发票{{invoice.doc_no}}长期逾期，已移交法务处理。', true),
('legal_referral', 'sms', 'en', NULL, '{{sender}}: invoice {{invoice.doc_no}} has been referred to our legal department.', true),
('statement', 'email', 'zh', '对账单 {{event.statement_no}}（{{event.period_start}} 至 {{event.period_end}}）',
 E'{{customer}} 您好：\n\n附件为贵司 {{event.period_start}} 至 {{event.period_end}} 的对账单 {{event.statement_no}}：期初余额 {{event.opening}}，本期借方 {{event.debits}}，贷方 {{event.credits}}，期末余额 {{event.closing}} {{event.currency}}，其中逾期 {{event.overdue}}。如有不符，请回复说明。\n\n{{sender}}', true),
('statement', 'email', 'en', 'Statement {{event.statement_no}} ({{event.period_start}} to {{event.period_end}})',
 E'Dear {{customer}},\n\nAttached is your statement {{event.statement_no}} for {{event.period_start}} to {{event.period_end}}: opening balance {{event.opening}}, debits {{event.debits}}, credits {{event.credits}}, closing balance {{event.closing}} {{event.currency}}, of which {{event.overdue}} overdue. Please tell us of any difference.\n\n{{sender}}', true),
('statement', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：对账单{{event.statement_no}}已发出，期末余额{{event.closing}}元，其中逾期{{event.overdue}}元。', true),
('statement', 'sms', 'en', NULL, '{{sender}}: statement {{event.statement_no}} issued; closing balance {{event.closing}}, overdue {{event.overdue}}.', true),
('confirmation_request', 'email', 'zh', '余额询证：截至 {{event.as_of}}', E'{{customer}} 您好：\n\n根据我方记录，截至 {{event.as_of}} 贵司应付我方余额为 {{event.balance}} {{figures.currency}}。请于 {{event.reply_by}} 前确认该余额，或列明不符的单据。\n\n{{sender}}', true),
('confirmation_request', 'email', 'en', 'Balance confirmation as of {{event.as_of}}', E'Dear {{customer}},\n\nOur records show a balance of {{event.balance}} {{figures.currency}} owed by you as of {{event.as_of}}. Please confirm it by {{event.reply_by}}, or list the documents that differ.\n\n{{sender}}', true),
('confirmation_request', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：请于{{event.reply_by}}前确认截至{{event.as_of}}的余额{{event.balance}}元。', true),
('confirmation_request', 'sms', 'en', NULL, '{{sender}}: please confirm your balance of {{event.balance}} as of {{event.as_of}} by {{event.reply_by}}.', true),
('confirmation_reminder', 'email', 'zh', '余额询证提醒：截至 {{event.as_of}}', E'{{customer}} 您好：\n\n我们尚未收到贵司对截至 {{event.as_of}} 余额的确认（第 {{event.reminder}} 次提醒），请于 {{event.reply_by}} 前回复。\n\n{{sender}}', true),
('confirmation_reminder', 'email', 'en', 'Reminder: balance confirmation as of {{event.as_of}}', E'Dear {{customer}},\n\nWe have not yet received your confirmation of the balance as of {{event.as_of}} (reminder {{event.reminder}}). Please reply by {{event.reply_by}}.\n\n{{sender}}', true),
('confirmation_reminder', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：请尽快回复截至{{event.as_of}}的余额询证。', true),
('confirmation_reminder', 'sms', 'en', NULL, '{{sender}}: please reply to our balance confirmation as of {{event.as_of}}.', true),
('promise_broken', 'email', 'zh', '付款承诺未兑现：发票 {{event.doc_no}}', E'{{customer}} 您好：\n\n贵司承诺于 {{event.promised_date}} 支付发票 {{event.doc_no}} 的 {{event.amount}} {{figures.currency}}，我们至今未收到该款项。请尽快付款。\n\n{{sender}}', true),
('promise_broken', 'email', 'en', 'Promise to pay not kept: invoice {{event.doc_no}}', E'Dear {{customer}},\n\nYou promised to pay {{event.amount}} {{figures.currency}} on invoice {{event.doc_no}} by {{event.promised_date}}; we have not received it. Please pay now.\n\n{{sender}}', true),
('promise_broken', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：承诺于{{event.promised_date}}支付的{{event.amount}}元未到账，请尽快付款。', true),
('promise_broken', 'sms', 'en', NULL, '{{sender}}: the {{event.amount}} you promised by {{event.promised_date}} has not arrived. Please pay now.', true),
('arrangement_broken', 'email', 'zh', '分期付款计划未履行', E'{{customer}} 您好：\n\n分期付款计划第 {{event.missed_instalment}} 期（到期日 {{event.missed_due_date}}）未按期支付，该计划已终止，相关发票恢复按原到期日催收。\n\n{{sender}}', true),
('arrangement_broken', 'email', 'en', 'Payment arrangement broken', E'Dear {{customer}},\n\nInstalment {{event.missed_instalment}} of your payment arrangement, due on {{event.missed_due_date}}, was not paid. The arrangement has ended and its invoices are collected from their own due dates again.\n\n{{sender}}', true),
('arrangement_broken', 'sms', 'zh', NULL, '【{{sender}}】{{customer}}：分期计划第{{event.missed_instalment}}期未付，计划已终止。', true),
('arrangement_broken', 'sms', 'en', NULL, '{{sender}}: instalment {{event.missed_instalment}} was missed; your payment arrangement has ended.', true),
('risk_warning', 'email', 'zh', '风险预警：{{customer}}（{{event.cause}}）', E'客户 {{customer}} 触发风险预警（{{event.cause}}）：{{event.reason}}\n\n额度 {{figures.credit_limit}}，敞口 {{figures.exposure}}，逾期 {{figures.overdue}}，等级 {{figures.grade}}。', true),
('risk_warning', 'email', 'en', 'Risk warning: {{customer}} ({{event.cause}})', E'Customer {{customer}} raised an early warning ({{event.cause}}): {{event.reason}}\n\nLimit {{figures.credit_limit}}, exposure {{figures.exposure}}, overdue {{figures.overdue}}, grade {{figures.grade}}.', true),
('risk_warning', 'sms', 'zh', NULL, '风险预警：{{customer}}（{{event.cause}}）{{event.reason}}', true),
('risk_warning', 'sms', 'en', NULL, 'Risk warning: {{customer}} ({{event.cause}}) {{event.reason}}', true),
('order_refused', 'email', 'zh', '订单被拒：{{customer}}', E'客户 {{customer}} 的订单（金额 {{event.amount}}）被信用检查拒绝：{{event.reason}}\n\n额度 {{figures.credit_limit}}，敞口 {{figures.exposure}}，逾期 {{figures.overdue}}。', true),
('order_refused', 'email', 'en', 'Order refused: {{customer}}', E'An order of {{customer}} ({{event.amount}}) was refused by the credit check: {{event.reason}}\n\nLimit {{figures.credit_limit}}, exposure {{figures.exposure}}, overdue {{figures.overdue}}.', true),
('order_refused', 'sms', 'zh', NULL, '订单被拒：{{customer}} {{event.amount}}，{{event.reason}}', true),
('order_refused', 'sms', 'en', NULL, 'Order refused: {{customer}} {{event.amount}}: {{event.reason}}', true);

-- Settings (one row, admin-managed): retries, leases, sizes, the sender's name in messages, and
-- the role the courier logs in with (credit.grant_courier).
CREATE TABLE credit.courier_setting (
    single            boolean PRIMARY KEY DEFAULT true CHECK (single),
    max_attempts      int NOT NULL DEFAULT 8 CHECK (max_attempts BETWEEN 1 AND 100),
    backoff_base      interval NOT NULL DEFAULT '30 seconds' CHECK (backoff_base > '0'),
    backoff_max       interval NOT NULL DEFAULT '6 hours' CHECK (backoff_max >= backoff_base),
    lease             interval NOT NULL DEFAULT '2 minutes' CHECK (lease >= '1 second'),
    max_message_bytes int NOT NULL DEFAULT 10000000 CHECK (max_message_bytes >= 1000),
    max_sms_chars     int NOT NULL DEFAULT 500 CHECK (max_sms_chars >= 70),
    sender_zh         text NOT NULL DEFAULT '信用管理部',
    sender_en         text NOT NULL DEFAULT 'Credit Control',
    courier_role      name,
    -- As shipped (not dumped; a restored row replaces it); the row cannot be deleted.
    is_default        boolean NOT NULL DEFAULT false,
    retired           boolean NOT NULL DEFAULT false CHECK (NOT retired)
);
INSERT INTO credit.courier_setting (is_default) VALUES (true);
SELECT pg_catalog.pg_extension_config_dump('credit.courier_setting', 'WHERE NOT is_default');
CREATE TRIGGER courier_setting_write BEFORE INSERT OR UPDATE OR DELETE ON credit.courier_setting
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('single');

-- Rate limits: at most this many attempts per minute on a channel, for all couriers together.
CREATE TABLE credit.courier_channel (
    channel          text PRIMARY KEY CHECK (channel IN ('email', 'sms', 'webhook')),
    rate_per_minute  int CHECK (rate_per_minute > 0),
    is_default       boolean NOT NULL DEFAULT false,
    retired          boolean NOT NULL DEFAULT false CHECK (NOT retired)
);
INSERT INTO credit.courier_channel (channel, is_default) VALUES ('email', true), ('sms', true), ('webhook', true);
SELECT pg_catalog.pg_extension_config_dump('credit.courier_channel', 'WHERE NOT is_default');
CREATE TRIGGER courier_channel_write BEFORE INSERT OR UPDATE OR DELETE ON credit.courier_channel
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('channel');

-- How far the planner has read the outbox (one row).
CREATE TABLE credit.courier_state (
    single     boolean PRIMARY KEY DEFAULT true CHECK (single),
    position   bigint NOT NULL DEFAULT 0,
    planned_at timestamptz,
    is_default boolean NOT NULL DEFAULT false,
    retired    boolean NOT NULL DEFAULT false CHECK (NOT retired)
);
INSERT INTO credit.courier_state (is_default) VALUES (true);
SELECT pg_catalog.pg_extension_config_dump('credit.courier_state', 'WHERE NOT is_default');
CREATE TRIGGER courier_state_write BEFORE INSERT OR UPDATE OR DELETE ON credit.courier_state
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('single');

-- One message to one recipient. The idempotency key is the same on every attempt.
CREATE TABLE credit.delivery (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id       bigint NOT NULL,
    event_id        bigint NOT NULL,
    contact_id      bigint NOT NULL REFERENCES credit.contact (id),
    customer        text,
    kind            text NOT NULL,
    channel         text NOT NULL,
    address         text NOT NULL,
    language        text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    subject         text,
    body            text,
    body_html       text,
    attachment_name text,
    attachment      text,
    payload         jsonb,
    status          text NOT NULL CHECK (status IN ('pending', 'sending', 'retry', 'sent', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    retried_after   int NOT NULL DEFAULT 0,   -- attempts before a clerk's credit.retry_delivery
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until     timestamptz,
    claimed_by      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at         timestamptz,
    dead_at         timestamptz,
    last_error      text,
    CONSTRAINT delivery_once UNIQUE (outbox_id, contact_id)
);
CREATE INDEX delivery_due_idx ON credit.delivery (next_attempt_at, id) WHERE status IN ('pending', 'retry');
CREATE INDEX delivery_sending_idx ON credit.delivery (lease_until) WHERE status = 'sending';
CREATE INDEX delivery_dead_idx ON credit.delivery (customer) WHERE status = 'dead';
SELECT pg_catalog.pg_extension_config_dump('credit.delivery', '');
SELECT pg_catalog.pg_extension_config_dump('credit.delivery_id_seq', '');

CREATE TABLE credit.delivery_attempt (
    delivery_id  bigint NOT NULL REFERENCES credit.delivery (id),
    attempt      int NOT NULL,
    channel      text NOT NULL,
    courier      text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    outcome      text CHECK (outcome IN ('sent', 'temporary', 'permanent', 'unknown')),
    detail       text,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX delivery_attempt_recent_idx ON credit.delivery_attempt (started_at, channel);
SELECT pg_catalog.pg_extension_config_dump('credit.delivery_attempt', '');

-- Only the courier role (or the admin level) runs the courier's functions.
CREATE FUNCTION credit._require_courier() RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r name := (SELECT s.courier_role FROM credit.courier_setting s);
BEGIN
    IF r IS NOT NULL AND EXISTS (SELECT 1 FROM pg_roles x WHERE x.rolname = r)
       AND pg_has_role(credit._caller(), r, 'MEMBER') THEN
        RETURN;
    END IF;
    PERFORM credit._require('admin', 'running the courier');
END
$$;

-- An event's data for messages: amounts as money text (grouped, to the cent), other numbers as
-- their exact text, so templates never see a float.
CREATE FUNCTION credit._json_numbers_as_text(j jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
SELECT CASE WHEN jsonb_typeof(j) = 'object' THEN
            coalesce((SELECT jsonb_object_agg(k, CASE WHEN jsonb_typeof(v) = 'number' AND k = ANY (ARRAY[
                                                          'amount', 'open_amount', 'opening', 'debits', 'credits', 'closing',
                                                          'overdue', 'balance', 'paid', 'credit_limit', 'exposure',
                                                          'promised_amount', 'our_balance', 'customer_balance', 'difference',
                                                          'limit', 'old_limit', 'new_limit'])
                                                      THEN to_jsonb(credit._money_text((v #>> '{}')::numeric))
                                                      ELSE credit._json_numbers_as_text(v) END)
                        FROM jsonb_each(j) AS e(k, v)), '{}'::jsonb)
            WHEN jsonb_typeof(j) = 'array' THEN
            coalesce((SELECT jsonb_agg(credit._json_numbers_as_text(v) ORDER BY n) FROM jsonb_array_elements(j) WITH ORDINALITY AS e(v, n)), '[]'::jsonb)
            WHEN jsonb_typeof(j) = 'number' THEN to_jsonb(j #>> '{}')
            ELSE j END
$$;

-- What a message to one customer can say about it today.
CREATE FUNCTION credit._message_figures(c text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT jsonb_build_object(
            'credit_limit', credit._money_text(lim.v),
            'exposure', credit._money_text(a.exposure),
            'available', credit._money_text(lim.v - a.exposure),
            'open_ar', credit._money_text(a.open_ar - a.unapplied_credit),
            'overdue', credit._money_text(coalesce((SELECT sum(i.open_amount) FROM credit.invoice i
                                                     WHERE i.customer = a.customer AND i.open_amount > 0
                                                       AND i.due_date < current_date), 0)),
            'currency', coalesce(a.currency, ''),
            'grade', coalesce(a.grade, ''),
            'status', a.status)
          FROM credit.account a
          CROSS JOIN LATERAL (SELECT CASE WHEN a.temporary_limit IS NOT NULL AND a.temporary_limit_until >= current_date
                                          THEN a.temporary_limit ELSE a.credit_limit END AS v) lim
         WHERE a.customer = c);

-- Plans the deliveries of up to max_events outbox rows after the position and moves it: one
-- delivery per event and recipient, rendered now (so a bad template, address or size is a dead
-- letter with its reason, and stops nothing else). Returns how many outbox rows it read (fewer
-- than max_events: the outbox is planned to its end) and how many deliveries it planned.
CREATE FUNCTION credit.courier_plan(max_events int DEFAULT 1000, OUT events int, OUT deliveries int)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st credit.courier_setting;
    pos bigint;
    o record;
    k credit.message_kind;
    c record;
    t credit.message_template;
    fields jsonb;
    figures jsonb;
    inv jsonb;
    subj text;
    txt text;
    html text;
    att_name text;
    att text;
    payload jsonb;
    problem text;
    size bigint;
BEGIN
    events := 0;
    deliveries := 0;
    PERFORM credit._require_courier();
    IF max_events IS NULL OR max_events < 1 THEN
        RAISE EXCEPTION 'max_events must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO st FROM credit.courier_setting;
    -- Two couriers planning take turns here; the second reads the position the first committed.
    SELECT s.position INTO pos FROM credit.courier_state s FOR UPDATE;
    FOR o IN SELECT x.id, x.event_id, x.kind, x.customer, x.payload, x.published_at
               FROM credit.outbox x WHERE x.id > pos ORDER BY x.id LIMIT max_events LOOP
        pos := o.id;
        events := events + 1;
        SELECT * INTO k FROM credit.message_kind m
         WHERE m.event_kind = o.kind AND (m.task_action IS NULL OR m.task_action = o.payload -> 'after' ->> 'action');
        CONTINUE WHEN NOT FOUND;
        figures := NULL;
        inv := NULL;
        -- The customer's contacts, then staff's (two index scans); a contact receives what
        -- happens after it is added. A ladder step names its channel: e-mail or SMS go to those
        -- contacts (and to systems); letters, calls and internal steps are work for people.
        FOR c IN SELECT x.* FROM (
                     SELECT ct.id, ct.customer, ct.channel, ct.address, ct.name, ct.language
                       FROM credit.contact ct
                      WHERE ct.customer = o.customer AND k.audience = 'customer'
                        AND ct.opted_out_at IS NULL AND ct.created_at <= o.published_at
                        AND (ct.kinds IS NULL OR k.kind = ANY (ct.kinds))
                        AND (k.event_kind <> 'task_created'
                             OR ct.channel = 'webhook' AND o.payload -> 'after' ->> 'channel' IN ('email', 'sms')
                             OR ct.channel = o.payload -> 'after' ->> 'channel')
                     UNION ALL
                     SELECT ct.id, ct.customer, ct.channel, ct.address, ct.name, ct.language
                       FROM credit.contact ct
                      WHERE ct.customer IS NULL AND k.kind = ANY (ct.kinds)
                        AND ct.opted_out_at IS NULL AND ct.created_at <= o.published_at) x
                  ORDER BY x.id LOOP
            IF figures IS NULL THEN
                figures := coalesce(credit._message_figures(o.customer), '{}'::jsonb);
                IF o.payload -> 'after' ? 'doc_no' THEN
                    inv := (SELECT jsonb_build_object('doc_no', i.doc_no, 'doc_date', i.doc_date, 'due_date', i.due_date,
                                                      'amount', credit._money_text(i.amount),
                                                      'open_amount', credit._money_text(i.open_amount))
                              FROM credit.invoice i WHERE i.customer = o.customer AND i.doc_no = o.payload -> 'after' ->> 'doc_no');
                END IF;
            END IF;
            fields := jsonb_build_object(
                'customer', o.customer, 'kind', k.kind, 'language', c.language,
                'sender', CASE c.language WHEN 'zh' THEN st.sender_zh ELSE st.sender_en END,
                'contact', jsonb_build_object('name', c.name, 'address', c.address),
                'event', credit._json_numbers_as_text(coalesce(o.payload -> 'after', '{}'::jsonb))
                         || jsonb_build_object('reason', o.payload -> 'reason', 'happened_at', o.payload -> 'happened_at',
                                               'outbox_id', o.id::text),
                'figures', figures);
            IF inv IS NOT NULL THEN
                fields := fields || jsonb_build_object('invoice', inv);
            END IF;
            subj := NULL; txt := NULL; html := NULL; att_name := NULL; att := NULL; payload := NULL; problem := NULL;
            SELECT * INTO t FROM credit.message_template m
             WHERE m.kind = k.kind AND m.channel = CASE c.channel WHEN 'sms' THEN 'sms' ELSE 'email' END
               AND m.language = c.language AND NOT m.retired;
            IF NOT FOUND THEN
                problem := format('no message template for %s/%s/%s', k.kind,
                                  CASE c.channel WHEN 'sms' THEN 'sms' ELSE 'email' END, c.language);
            ELSE
                BEGIN
                    subj := credit._render_message(t.subject, fields);
                    txt := credit._render_message(t.body, fields);
                EXCEPTION WHEN invalid_parameter_value THEN
                    GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
                    problem := format('template %s/%s/%s: %s', t.kind, t.channel, t.language, problem);
                END;
            END IF;
            -- Whatever else fails for one message (the statement it names, say) makes it a dead
            -- letter with the reason; the other messages, and the courier, go on.
            BEGIN
                IF problem IS NULL AND c.customer IS NOT NULL AND c.channel IN ('email', 'webhook')
                   AND k.kind IN ('statement', 'confirmation_request')
                   AND (o.payload -> 'after' ->> 'statement_id') IS NOT NULL THEN
                    html := credit.statement_html((o.payload -> 'after' ->> 'statement_id')::bigint, c.language);
                    att_name := format('statement-%s.html', coalesce(o.payload -> 'after' ->> 'statement_no',
                                                                     o.payload -> 'after' ->> 'statement_id'));
                    att := html;
                END IF;
                IF problem IS NULL AND c.channel = 'webhook' THEN
                    payload := jsonb_build_object('idempotency_key', format('pgc-%s-%s', o.id, c.id), 'kind', k.kind,
                                                  'customer', o.customer, 'language', c.language, 'subject', subj, 'text', txt,
                                                  'figures', figures, 'event', o.payload)
                               || CASE WHEN att IS NOT NULL THEN jsonb_build_object('attachment',
                                      jsonb_build_object('name', att_name, 'content_type', 'text/html; charset=utf-8', 'content', att))
                                  ELSE '{}'::jsonb END;
                    html := NULL;
                END IF;
            EXCEPTION WHEN OTHERS THEN
                problem := format('the message could not be built: %s (SQLSTATE %s)', SQLERRM, SQLSTATE);
            END;
            IF problem IS NULL THEN
                size := coalesce(octet_length(subj), 0) + coalesce(octet_length(txt), 0) + coalesce(octet_length(html), 0) * 2
                        + coalesce(octet_length(payload::text), 0);
                IF c.channel = 'sms' AND char_length(txt) > st.max_sms_chars THEN
                    problem := format('the SMS is %s characters, over the limit of %s (credit.courier_setting.max_sms_chars)',
                                      char_length(txt), st.max_sms_chars);
                ELSIF size > st.max_message_bytes THEN
                    problem := format('the message is %s bytes, over the limit of %s (credit.courier_setting.max_message_bytes)',
                                      size, st.max_message_bytes);
                END IF;
            END IF;
            INSERT INTO credit.delivery (outbox_id, event_id, contact_id, customer, kind, channel, address, language,
                                         idempotency_key, subject, body, body_html, attachment_name, attachment, payload,
                                         status, dead_at, last_error)
            VALUES (o.id, o.event_id, c.id, o.customer, k.kind, c.channel, c.address, c.language,
                    format('pgc-%s-%s', o.id, c.id),
                    CASE WHEN problem IS NULL THEN subj END, CASE WHEN problem IS NULL THEN txt END,
                    CASE WHEN problem IS NULL THEN html END, CASE WHEN problem IS NULL THEN att_name END,
                    CASE WHEN problem IS NULL THEN att END, CASE WHEN problem IS NULL THEN payload END,
                    CASE WHEN problem IS NULL THEN 'pending' ELSE 'dead' END,
                    CASE WHEN problem IS NOT NULL THEN clock_timestamp() END, problem);
            deliveries := deliveries + 1;
        END LOOP;
    END LOOP;
    UPDATE credit.courier_state s SET position = pos, planned_at = clock_timestamp();
END
$$;

-- Leases up to max_rows due deliveries to one courier and records their attempts (started,
-- outcome unknown) before anything is sent; lease_seconds says how long the courier may take
-- to send them (it sends none after that: another courier may have taken them over). A delivery whose lease ran out (its courier died
-- between claiming and reporting) is due again: its open attempt is closed as 'unknown' and it is
-- sent again under the same idempotency key. Rate limits count every courier's attempts.
CREATE FUNCTION credit.courier_claim(courier text, max_rows int DEFAULT 50)
RETURNS TABLE (delivery_id bigint, attempt int, channel text, address text, idempotency_key text, kind text,
               customer text, language text, subject text, body text, body_html text, attachment_name text,
               attachment text, payload jsonb, webhook_secret text, lease_seconds double precision)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lease interval := (SELECT s.lease FROM credit.courier_setting s);
    -- A value, not clock_timestamp() in the query: the due and lease indexes can then be used.
    at timestamptz := clock_timestamp();
BEGIN
    PERFORM credit._require_courier();
    IF courier IS NULL OR courier = '' THEN
        RAISE EXCEPTION 'courier must name the courier (its host and process, say)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_rows IS NULL OR max_rows < 1 OR max_rows > 10000 THEN
        RAISE EXCEPTION 'max_rows must be between 1 and 10000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH budget AS (
        SELECT ch.channel,
               CASE WHEN ch.rate_per_minute IS NULL THEN NULL   -- no limit
                    ELSE greatest(ch.rate_per_minute - (SELECT count(*) FROM credit.delivery_attempt a
                                                         WHERE a.channel = ch.channel
                                                           AND a.started_at > at - interval '1 minute'), 0) END AS n
          FROM credit.courier_channel ch),
    candidates AS (
        (SELECT d.id FROM credit.delivery d
          WHERE d.status IN ('pending', 'retry') AND d.next_attempt_at <= at
          ORDER BY d.next_attempt_at, d.id LIMIT max_rows * 4)
        UNION ALL
        (SELECT d.id FROM credit.delivery d
          WHERE d.status = 'sending' AND d.lease_until < at
          ORDER BY d.lease_until LIMIT max_rows * 4)),
    -- Within the rate limits, oldest first; then locked, skipping rows another courier is
    -- claiming (only what is taken is locked, so the others stay free for it).
    ranked AS (
        SELECT d.id, row_number() OVER (PARTITION BY d.channel ORDER BY d.next_attempt_at, d.id) AS r, b.n
          FROM credit.delivery d LEFT JOIN budget b ON b.channel = d.channel
         WHERE d.id IN (SELECT c.id FROM candidates c)),
    picked AS (
        SELECT d.id, d.channel, d.status, d.attempts
          FROM credit.delivery d
         WHERE d.id IN (SELECT x.id FROM ranked x WHERE x.n IS NULL OR x.r <= x.n)
           AND (d.status IN ('pending', 'retry') AND d.next_attempt_at <= at OR d.status = 'sending' AND d.lease_until < at)
         ORDER BY d.next_attempt_at, d.id
         LIMIT max_rows
           FOR UPDATE OF d SKIP LOCKED),
    lost AS (
        UPDATE credit.delivery_attempt a
           SET outcome = 'unknown', finished_at = clock_timestamp(),
               detail = 'the courier stopped before recording the outcome; sent again with the same idempotency key'
          FROM picked p
         WHERE p.status = 'sending' AND a.delivery_id = p.id AND a.attempt = p.attempts AND a.outcome IS NULL
        RETURNING a.delivery_id),
    claimed AS (
        UPDATE credit.delivery d
           SET status = 'sending', attempts = d.attempts + 1, lease_until = at + lease,
               claimed_by = courier
          FROM picked p
         WHERE d.id = p.id
        RETURNING d.*),
    attempts AS (
        INSERT INTO credit.delivery_attempt (delivery_id, attempt, channel, courier)
        SELECT d.id, d.attempts, d.channel, courier FROM claimed d
        RETURNING 1)
    SELECT d.id, d.attempts, d.channel, d.address, d.idempotency_key, d.kind, d.customer, d.language, d.subject,
           d.body, d.body_html, d.attachment_name, d.attachment, d.payload,
           CASE WHEN d.channel = 'webhook' THEN (SELECT s.secret FROM credit.contact_secret s WHERE s.contact_id = d.contact_id) END,
           extract(epoch FROM lease)::double precision
      FROM claimed d
     ORDER BY d.id;
END
$$;

-- Records the outcome of an attempt: 'sent'; 'temporary' (retried after backoff_base x 2^(n-1),
-- at most backoff_max, until max_attempts, then a dead letter); 'permanent' (a dead letter at
-- once). A report for an attempt that is no longer the delivery's current one (its lease ran
-- out and another courier took it) changes nothing. Returns the delivery's status.
CREATE FUNCTION credit.courier_report(delivery_id bigint, attempt int, outcome text, detail text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st credit.courier_setting;
    d credit.delivery;
BEGIN
    PERFORM credit._require_courier();
    IF delivery_id IS NULL OR attempt IS NULL THEN
        RAISE EXCEPTION 'delivery_id and attempt must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF outcome IS NULL OR outcome NOT IN ('sent', 'temporary', 'permanent') THEN
        RAISE EXCEPTION 'outcome is sent, temporary or permanent, not %', coalesce(quote_literal(outcome), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO st FROM credit.courier_setting;
    SELECT * INTO d FROM credit.delivery x WHERE x.id = courier_report.delivery_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % does not exist', delivery_id USING ERRCODE = 'undefined_object';
    END IF;
    IF d.status <> 'sending' OR d.attempts <> attempt THEN
        RETURN d.status;
    END IF;
    UPDATE credit.delivery_attempt a SET outcome = courier_report.outcome, finished_at = clock_timestamp(),
           detail = left(courier_report.detail, 2000)
     WHERE a.delivery_id = d.id AND a.attempt = d.attempts;
    IF outcome = 'sent' THEN
        UPDATE credit.delivery x SET status = 'sent', sent_at = clock_timestamp(), lease_until = NULL, last_error = NULL
         WHERE x.id = d.id;
        RETURN 'sent';
    ELSIF outcome = 'temporary' AND d.attempts - d.retried_after < st.max_attempts THEN
        UPDATE credit.delivery x
           SET status = 'retry', lease_until = NULL, last_error = left(courier_report.detail, 2000),
               next_attempt_at = clock_timestamp() + least(st.backoff_base * power(2, least(d.attempts - d.retried_after - 1, 30)), st.backoff_max)
         WHERE x.id = d.id;
        RETURN 'retry';
    END IF;
    UPDATE credit.delivery x
       SET status = 'dead', dead_at = clock_timestamp(), lease_until = NULL,
           last_error = left(CASE WHEN outcome = 'temporary'
                                  THEN format('gave up after %s attempts: %s', d.attempts - d.retried_after, courier_report.detail)
                                  ELSE courier_report.detail END, 2000)
     WHERE x.id = d.id;
    RETURN 'dead';
END
$$;

-- Contacts. A contact receives the messages of events committed after it was added.
CREATE FUNCTION credit.set_contact(customer text, channel text, address text, kinds text[] DEFAULT NULL,
                                   language text DEFAULT 'zh', name text DEFAULT NULL, secret text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
    unknown text;
    staff text;
    old credit.contact;
BEGIN
    PERFORM credit._require('clerk', 'setting a contact');
    IF channel IS NULL OR channel NOT IN ('email', 'sms', 'webhook') THEN
        RAISE EXCEPTION 'channel is email, sms or webhook, not %', coalesce(quote_literal(channel), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF address IS NULL THEN
        RAISE EXCEPTION 'address must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF channel = 'email' AND (address !~ '^[^@[:space:]<>(),;:"]+@[^@[:space:]<>(),;:"]+\.[^@[:space:]<>(),;:".]+$'
                              OR octet_length(address) > 254) THEN
        RAISE EXCEPTION 'address "%" is not an e-mail address', address USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Write one address, like name@example.com, without a display name.';
    ELSIF channel = 'sms' AND address !~ '^\+?[0-9]{6,15}$' THEN
        RAISE EXCEPTION 'address "%" is not a phone number', address USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Digits only, 6 to 15, with + and the country code for numbers abroad: +8613800138000.';
    ELSIF channel = 'webhook' AND (address !~ '^https?://[^/[:space:]?#]+(/[^[:space:]]*)?$' OR octet_length(address) > 2000) THEN
        RAISE EXCEPTION 'address "%" is not an http(s) URL', address USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF channel = 'webhook' AND (secret IS NULL OR octet_length(secret) < 16) THEN
        RAISE EXCEPTION 'a webhook needs a secret of at least 16 bytes' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'The receiver checks each request''s X-Credit-Signature with it (docs/courier.md#webhooks).';
    ELSIF channel <> 'webhook' AND secret IS NOT NULL THEN
        RAISE EXCEPTION 'only webhooks have a secret' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF language IS NULL OR language NOT IN ('zh', 'en') THEN
        RAISE EXCEPTION 'language is zh or en, not %', coalesce(quote_literal(language), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF kinds IS NOT NULL AND (cardinality(kinds) = 0 OR array_position(kinds, NULL) IS NOT NULL) THEN
        RAISE EXCEPTION 'kinds lists message kinds (NULL: every kind for customers)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ') INTO unknown FROM unnest(kinds) k WHERE NOT EXISTS (SELECT 1 FROM credit.message_kind m WHERE m.kind = k);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown message kind: %', unknown USING ERRCODE = 'invalid_parameter_value',
            HINT = 'credit.message_kind lists them.';
    END IF;
    IF customer IS NULL THEN
        IF kinds IS NULL THEN
            RAISE EXCEPTION 'a staff contact (customer NULL) lists the kinds it receives' USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        IF NOT EXISTS (SELECT 1 FROM credit.account a WHERE a.customer = set_contact.customer) THEN
            RAISE EXCEPTION 'customer "%" has no credit account', customer USING ERRCODE = 'foreign_key_violation';
        END IF;
        SELECT string_agg(k, ', ') INTO staff FROM unnest(kinds) k
         WHERE EXISTS (SELECT 1 FROM credit.message_kind m WHERE m.kind = k AND m.audience = 'staff');
        IF staff IS NOT NULL THEN
            RAISE EXCEPTION 'a customer''s contact cannot receive %: those messages are for staff', staff
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Add a staff contact (customer NULL) for them.';
        END IF;
    END IF;
    SELECT * INTO old FROM credit.contact c
     WHERE c.customer IS NOT DISTINCT FROM set_contact.customer AND c.channel = set_contact.channel AND c.address = set_contact.address
       FOR UPDATE;
    IF FOUND THEN
        UPDATE credit.contact c SET kinds = set_contact.kinds, language = set_contact.language, name = set_contact.name
         WHERE c.id = old.id;
        id := old.id;
    ELSE
        INSERT INTO credit.contact (customer, channel, address, name, kinds, language)
        VALUES (customer, channel, address, name, kinds, language) RETURNING contact.id INTO id;
    END IF;
    IF channel = 'webhook' THEN
        INSERT INTO credit.contact_secret (contact_id, secret) VALUES (id, secret)
        ON CONFLICT (contact_id) DO UPDATE SET secret = EXCLUDED.secret;
    END IF;
    INSERT INTO credit.event (kind, customer, before, after, acting_as)
    VALUES ('contact_set', customer,
            CASE WHEN old.id IS NOT NULL THEN jsonb_build_object('kinds', old.kinds, 'language', old.language, 'name', old.name) END,
            jsonb_build_object('contact_id', id, 'channel', channel, 'address', address, 'kinds', kinds,
                               'language', language, 'name', name), credit._caller());
    RETURN id;
END
$$;

-- A contact asks for no more messages (or a clerk records that it did); opt_in undoes it.
CREATE FUNCTION credit.opt_out(contact_id bigint, reason text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c credit.contact;
BEGIN
    PERFORM credit._require('clerk', 'recording an opt-out');
    IF opt_out.contact_id IS NULL THEN
        RAISE EXCEPTION 'contact_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO c FROM credit.contact x WHERE x.id = opt_out.contact_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'contact % does not exist', contact_id USING ERRCODE = 'undefined_object';
    END IF;
    IF c.opted_out_at IS NOT NULL THEN
        RETURN;
    END IF;
    UPDATE credit.contact x SET opted_out_at = clock_timestamp(), opt_out_reason = reason WHERE x.id = c.id;
    -- What is planned and not yet sent to it is not sent.
    UPDATE credit.delivery d SET status = 'dead', dead_at = clock_timestamp(), last_error = 'the contact opted out'
     WHERE d.contact_id = c.id AND d.status IN ('pending', 'retry');
    INSERT INTO credit.event (kind, customer, reason, after, acting_as)
    VALUES ('contact_opted_out', c.customer, reason, jsonb_build_object('contact_id', c.id, 'channel', c.channel, 'address', c.address),
            credit._caller());
END
$$;

CREATE FUNCTION credit.opt_in(contact_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c credit.contact;
BEGIN
    PERFORM credit._require('clerk', 'recording an opt-in');
    IF opt_in.contact_id IS NULL THEN
        RAISE EXCEPTION 'contact_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO c FROM credit.contact x WHERE x.id = opt_in.contact_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'contact % does not exist', contact_id USING ERRCODE = 'undefined_object';
    END IF;
    IF c.opted_out_at IS NULL THEN
        RETURN;
    END IF;
    UPDATE credit.contact x SET opted_out_at = NULL, opt_out_reason = NULL WHERE x.id = c.id;
    INSERT INTO credit.event (kind, customer, after, acting_as)
    VALUES ('contact_opted_in', c.customer, jsonb_build_object('contact_id', c.id, 'channel', c.channel, 'address', c.address),
            credit._caller());
END
$$;

-- A customer's contacts (NULL: staff contacts), with what each receives; secrets are not shown.
CREATE FUNCTION credit.contacts(customer text)
RETURNS TABLE (contact_id bigint, channel text, address text, name text, language text, receives text[],
               opted_out_at timestamptz, has_secret boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._require('reader', 'reading contacts');
    RETURN QUERY
    SELECT c.id, c.channel, c.address, c.name, c.language,
           coalesce(c.kinds, (SELECT array_agg(m.kind ORDER BY m.kind) FROM credit.message_kind m WHERE m.audience = 'customer')),
           c.opted_out_at, EXISTS (SELECT 1 FROM credit.contact_secret s WHERE s.contact_id = c.id)
      FROM credit.contact c
     WHERE c.customer IS NOT DISTINCT FROM contacts.customer
     ORDER BY c.id;
END
$$;

-- A dead letter sent again (after the address or the receiver was mended), as it was planned,
-- with a fresh count of attempts. One never rendered (a bad template, too big) cannot be: the
-- template applies to the next events.
CREATE FUNCTION credit.retry_delivery(delivery_id bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d credit.delivery;
BEGIN
    PERFORM credit._require('clerk', 'retrying a delivery');
    IF retry_delivery.delivery_id IS NULL THEN
        RAISE EXCEPTION 'delivery_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO d FROM credit.delivery x WHERE x.id = retry_delivery.delivery_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % does not exist', delivery_id USING ERRCODE = 'undefined_object';
    END IF;
    IF d.status <> 'dead' THEN
        RAISE EXCEPTION 'delivery % is %, not a dead letter', delivery_id, d.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF d.body IS NULL AND d.payload IS NULL THEN
        RAISE EXCEPTION 'delivery % was never rendered: %', delivery_id, d.last_error USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Mend the template or the contact; the next event is rendered with it.';
    END IF;
    IF EXISTS (SELECT 1 FROM credit.contact c WHERE c.id = d.contact_id AND c.opted_out_at IS NOT NULL) THEN
        RAISE EXCEPTION 'contact % opted out', d.contact_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE credit.delivery x SET status = 'retry', next_attempt_at = clock_timestamp(), dead_at = NULL,
           last_error = NULL, retried_after = d.attempts
     WHERE x.id = d.id;
    INSERT INTO credit.event (kind, customer, after, acting_as)
    VALUES ('delivery_retried', d.customer, jsonb_build_object('delivery_id', d.id, 'kind', d.kind, 'channel', d.channel,
                                                                 'address', d.address, 'reason', d.last_error), credit._caller());
    RETURN 'retry';
END
$$;

-- Grants a role exactly what a courier needs: the three courier functions (and nothing to read
-- or write directly). The courier logs in with a member of it. Security definer, so that the
-- admin level can set the courier up without owning pg_credit's functions.
CREATE FUNCTION credit.grant_courier(role name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._require('admin', 'granting the courier role');
    IF role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = role) THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = 'undefined_object',
            HINT = format('CREATE ROLE %I LOGIN first.', role);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA credit TO %I', role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION credit.courier_plan(int), credit.courier_claim(text, int), '
                   'credit.courier_report(bigint, int, text, text) TO %I', role);
    UPDATE credit.courier_setting s SET courier_role = role;
END
$$;

CREATE VIEW credit.dead_letter WITH (security_invoker = true) AS
SELECT d.id AS delivery_id, d.customer, d.kind, d.channel, d.address, d.idempotency_key, d.attempts, d.last_error AS reason,
       d.created_at, d.dead_at, d.outbox_id, d.contact_id
  FROM credit.delivery d
 WHERE d.status = 'dead';

CREATE VIEW credit.delivery_summary WITH (security_invoker = true) AS
SELECT d.channel, d.status, count(*) AS deliveries, min(d.created_at) AS oldest, max(d.attempts) AS most_attempts,
       min(d.next_attempt_at) FILTER (WHERE d.status IN ('pending', 'retry')) AS next_due
  FROM credit.delivery d
 GROUP BY d.channel, d.status;

-- The collectors' worklist (the ladder's tasks, sql/collections.sql), with the customer's open
-- early warnings and undelivered messages.
CREATE VIEW credit.collection_worklist WITH (security_invoker = true) AS
SELECT t.id AS task_id, t.customer, t.doc_no, t.level, t.action, t.channel, t.assigned_to, t.due_on,
       i.open_amount,
       current_date - i.due_date AS days_past_due,
       i.open_amount * greatest(current_date - i.due_date, 0) AS priority,
       a.exposure, a.grade, a.status AS account_status,
       lc.contacted_at AS last_contact_at, lc.outcome AS last_contact_outcome, lc.contacted_by AS last_contact_by,
       p.amount AS promised_amount, p.promised_date,
       credit._invoice_interest(t.invoice_id, current_date) AS interest,
       (SELECT array_agg(w.cause ORDER BY w.cause) FROM credit.risk_warning w
         WHERE w.customer = t.customer AND w.cleared_on IS NULL) AS risk_warnings,
       (SELECT count(*) FROM credit.delivery d WHERE d.customer = t.customer AND d.status = 'dead') AS undelivered
  FROM credit.collection_task t
  JOIN credit.invoice i ON i.id = t.invoice_id
  LEFT JOIN credit.account a ON a.customer = t.customer
  LEFT JOIN LATERAL (SELECT c.contacted_at, c.outcome, c.contacted_by FROM credit.collection_contact c
                      WHERE c.customer = t.customer ORDER BY c.contacted_at DESC, c.id DESC LIMIT 1) lc ON true
  LEFT JOIN credit.promise p ON p.invoice_id = t.invoice_id AND p.status = 'open'
 WHERE t.status = 'open' AND i.open_amount > 0
 ORDER BY priority DESC, i.open_amount DESC, t.id;

COMMENT ON VIEW credit.collection_worklist IS 'Open collection tasks, most urgent first (open amount x days past due), with the customer''s exposure, grade, last contact and open promise';
COMMENT ON COLUMN credit.collection_worklist.task_id IS 'Task (credit.log_contact takes it)';
COMMENT ON COLUMN credit.collection_worklist.customer IS 'Customer';
COMMENT ON COLUMN credit.collection_worklist.doc_no IS 'Invoice number';
COMMENT ON COLUMN credit.collection_worklist.level IS 'Ladder level (NULL: broken promise)';
COMMENT ON COLUMN credit.collection_worklist.action IS 'remind, notice, escalate, hold or legal';
COMMENT ON COLUMN credit.collection_worklist.channel IS 'sms, email, letter, phone or internal';
COMMENT ON COLUMN credit.collection_worklist.assigned_to IS 'Role the task is assigned to';
COMMENT ON COLUMN credit.collection_worklist.due_on IS 'When the work is due';
COMMENT ON COLUMN credit.collection_worklist.open_amount IS 'Open amount of the invoice now';
COMMENT ON COLUMN credit.collection_worklist.days_past_due IS 'Days past due today';
COMMENT ON COLUMN credit.collection_worklist.priority IS 'open_amount x days past due (0 before due): the ranking';
COMMENT ON COLUMN credit.collection_worklist.exposure IS 'Customer''s exposure';
COMMENT ON COLUMN credit.collection_worklist.grade IS 'Customer''s grade';
COMMENT ON COLUMN credit.collection_worklist.account_status IS 'Customer''s status (hold: shipments stopped)';
COMMENT ON COLUMN credit.collection_worklist.last_contact_at IS 'Last contact with the customer (any task)';
COMMENT ON COLUMN credit.collection_worklist.last_contact_outcome IS 'Its outcome';
COMMENT ON COLUMN credit.collection_worklist.last_contact_by IS 'Who made it';
COMMENT ON COLUMN credit.collection_worklist.promised_amount IS 'Open promise on the invoice: amount';
COMMENT ON COLUMN credit.collection_worklist.promised_date IS 'Open promise on the invoice: date';
COMMENT ON COLUMN credit.collection_worklist.interest IS 'Late-payment interest accrued on the invoice by today (credit.late_interest; 0 when its ladder charges none)';
COMMENT ON COLUMN credit.collection_worklist.risk_warnings IS 'The customer''s open early warnings (credit.risk_warning causes)';
COMMENT ON COLUMN credit.collection_worklist.undelivered IS 'The customer''s dead letters (credit.dead_letter): messages the courier could not deliver';

COMMENT ON TABLE credit.message_kind IS 'The messages pg_credit sends and the events they come from (fixed): a ladder step by its action, statements, confirmations, broken promises and arrangements for customers; early warnings and refused orders for staff';
COMMENT ON COLUMN credit.message_kind.kind IS 'Message kind (contacts and templates name it)';
COMMENT ON COLUMN credit.message_kind.event_kind IS 'The outbox event that makes it';
COMMENT ON COLUMN credit.message_kind.task_action IS 'For task_created: the dunning action that makes this kind';
COMMENT ON COLUMN credit.message_kind.audience IS 'customer (to the customer''s contacts) or staff (to staff contacts only)';
COMMENT ON COLUMN credit.message_kind.description IS 'When it is sent';
COMMENT ON TABLE credit.contact IS 'Who receives which messages: a customer''s e-mail addresses, phone numbers (SMS through the gateway) and webhooks, or staff (customer NULL); written through credit.set_contact, credit.opt_out and credit.opt_in';
COMMENT ON COLUMN credit.contact.id IS 'Contact';
COMMENT ON COLUMN credit.contact.customer IS 'Customer (NULL: staff, receiving its kinds for every customer)';
COMMENT ON COLUMN credit.contact.channel IS 'email, sms or webhook';
COMMENT ON COLUMN credit.contact.address IS 'E-mail address, phone number or http(s) URL';
COMMENT ON COLUMN credit.contact.name IS 'Person or system (contact.name in templates)';
COMMENT ON COLUMN credit.contact.kinds IS 'Message kinds it receives (NULL: every customer kind)';
COMMENT ON COLUMN credit.contact.language IS 'zh or en: the template''s language';
COMMENT ON COLUMN credit.contact.opted_out_at IS 'When it asked for no more messages (NULL: it receives them)';
COMMENT ON COLUMN credit.contact.opt_out_reason IS 'Why, as recorded';
COMMENT ON COLUMN credit.contact.created_at IS 'When it was added: it receives the messages of events committed after this';
COMMENT ON COLUMN credit.contact.created_by IS 'Who added it';
COMMENT ON TABLE credit.contact_secret IS 'Internal: webhook signing keys (read only by pg_credit''s functions for the courier)';
COMMENT ON COLUMN credit.contact_secret.contact_id IS 'Webhook contact';
COMMENT ON COLUMN credit.contact_secret.secret IS 'HMAC-SHA256 key of X-Credit-Signature';
COMMENT ON TABLE credit.message_template IS 'The words of each message kind per channel (email: subject and body, also used by webhooks; sms: body) and language, with {{placeholders}} (docs/courier.md#templates); Chinese and English defaults shipped';
COMMENT ON COLUMN credit.message_template.kind IS 'Message kind';
COMMENT ON COLUMN credit.message_template.channel IS 'email (and webhooks) or sms';
COMMENT ON COLUMN credit.message_template.language IS 'zh or en';
COMMENT ON COLUMN credit.message_template.subject IS 'E-mail subject (NULL for SMS)';
COMMENT ON COLUMN credit.message_template.body IS 'Text, with {{placeholders}}';
COMMENT ON COLUMN credit.message_template.is_default IS 'Shipped by pg_credit and untouched (not dumped)';
COMMENT ON COLUMN credit.message_template.retired IS 'A default deleted by the DBA (kept hidden so a restore does not bring it back)';
COMMENT ON FUNCTION credit._message_template_check() IS 'Internal: checks a template''s placeholders when it is written';
COMMENT ON TABLE credit.courier_setting IS 'Courier settings (one row, admin): attempts, backoff, lease, size limits, the sender''s name in messages, the courier''s role';
COMMENT ON COLUMN credit.courier_setting.single IS 'Always true: one row';
COMMENT ON COLUMN credit.courier_setting.max_attempts IS 'Attempts before a temporary failure becomes a dead letter';
COMMENT ON COLUMN credit.courier_setting.backoff_base IS 'Wait after the first failed attempt; doubled after each further one';
COMMENT ON COLUMN credit.courier_setting.backoff_max IS 'Longest wait between attempts';
COMMENT ON COLUMN credit.courier_setting.lease IS 'How long a courier holds a claimed delivery; after it, another courier sends it again (same idempotency key)';
COMMENT ON COLUMN credit.courier_setting.max_message_bytes IS 'Largest message (subject, text, page and attachment); larger ones are dead letters';
COMMENT ON COLUMN credit.courier_setting.max_sms_chars IS 'Longest SMS text; longer ones are dead letters';
COMMENT ON COLUMN credit.courier_setting.sender_zh IS 'The sender''s name in Chinese messages ({{sender}})';
COMMENT ON COLUMN credit.courier_setting.sender_en IS 'The sender''s name in English messages ({{sender}})';
COMMENT ON COLUMN credit.courier_setting.courier_role IS 'Role whose members run the courier (credit.grant_courier)';
COMMENT ON COLUMN credit.courier_setting.is_default IS 'As shipped and untouched (not dumped)';
COMMENT ON COLUMN credit.courier_setting.retired IS 'Always false: the row cannot be deleted';
COMMENT ON TABLE credit.courier_channel IS 'Rate limit per channel, all couriers together (admin)';
COMMENT ON COLUMN credit.courier_channel.channel IS 'email, sms or webhook';
COMMENT ON COLUMN credit.courier_channel.rate_per_minute IS 'Most attempts started in any minute (NULL: no limit)';
COMMENT ON COLUMN credit.courier_channel.is_default IS 'As shipped and untouched (not dumped)';
COMMENT ON COLUMN credit.courier_channel.retired IS 'Always false: the rows cannot be deleted';
COMMENT ON TABLE credit.courier_state IS 'How far the courier has planned the outbox (one row)';
COMMENT ON COLUMN credit.courier_state.single IS 'Always true: one row';
COMMENT ON COLUMN credit.courier_state.position IS 'Last outbox id planned: the next plan reads after it';
COMMENT ON COLUMN credit.courier_state.planned_at IS 'When it last moved';
COMMENT ON COLUMN credit.courier_state.is_default IS 'Never moved (not dumped)';
COMMENT ON COLUMN credit.courier_state.retired IS 'Always false: the row cannot be deleted';
COMMENT ON TABLE credit.delivery IS 'One message to one recipient, rendered when planned, with its status: pending, sending (leased to a courier), retry, sent or dead';
COMMENT ON COLUMN credit.delivery.id IS 'Delivery';
COMMENT ON COLUMN credit.delivery.outbox_id IS 'The outbox row it came from';
COMMENT ON COLUMN credit.delivery.event_id IS 'The credit.event it came from';
COMMENT ON COLUMN credit.delivery.contact_id IS 'Recipient';
COMMENT ON COLUMN credit.delivery.customer IS 'Customer the event is about';
COMMENT ON COLUMN credit.delivery.kind IS 'Message kind';
COMMENT ON COLUMN credit.delivery.channel IS 'email, sms or webhook';
COMMENT ON COLUMN credit.delivery.address IS 'Address, number or URL at planning';
COMMENT ON COLUMN credit.delivery.language IS 'zh or en';
COMMENT ON COLUMN credit.delivery.idempotency_key IS 'Same on every attempt: the webhook''s Idempotency-Key header, the e-mail''s Message-ID';
COMMENT ON COLUMN credit.delivery.subject IS 'Subject';
COMMENT ON COLUMN credit.delivery.body IS 'Text';
COMMENT ON COLUMN credit.delivery.body_html IS 'HTML body of an e-mail (the statement page)';
COMMENT ON COLUMN credit.delivery.attachment_name IS 'Attachment file name';
COMMENT ON COLUMN credit.delivery.attachment IS 'Attachment (the statement page)';
COMMENT ON COLUMN credit.delivery.payload IS 'Webhook: the JSON body sent';
COMMENT ON COLUMN credit.delivery.status IS 'pending, sending, retry, sent or dead';
COMMENT ON COLUMN credit.delivery.attempts IS 'Attempts so far';
COMMENT ON COLUMN credit.delivery.retried_after IS 'Attempts before the last credit.retry_delivery (max_attempts counts from there)';
COMMENT ON COLUMN credit.delivery.next_attempt_at IS 'Not before: the backoff';
COMMENT ON COLUMN credit.delivery.lease_until IS 'While sending: the claiming courier''s lease';
COMMENT ON COLUMN credit.delivery.claimed_by IS 'Courier of the last attempt';
COMMENT ON COLUMN credit.delivery.created_at IS 'When planned';
COMMENT ON COLUMN credit.delivery.sent_at IS 'When the receiver accepted it';
COMMENT ON COLUMN credit.delivery.dead_at IS 'When it became a dead letter';
COMMENT ON COLUMN credit.delivery.last_error IS 'Why the last attempt failed, or why it is dead';
COMMENT ON TABLE credit.delivery_attempt IS 'Every attempt of every delivery, recorded before sending and closed with its outcome';
COMMENT ON COLUMN credit.delivery_attempt.delivery_id IS 'Delivery';
COMMENT ON COLUMN credit.delivery_attempt.attempt IS 'Attempt number';
COMMENT ON COLUMN credit.delivery_attempt.channel IS 'Channel (rate limits count these)';
COMMENT ON COLUMN credit.delivery_attempt.courier IS 'Courier that made it';
COMMENT ON COLUMN credit.delivery_attempt.started_at IS 'When claimed';
COMMENT ON COLUMN credit.delivery_attempt.finished_at IS 'When its outcome was recorded';
COMMENT ON COLUMN credit.delivery_attempt.outcome IS 'sent, temporary, permanent, or unknown (the courier stopped before recording it)';
COMMENT ON COLUMN credit.delivery_attempt.detail IS 'The receiver''s answer or the error';
COMMENT ON FUNCTION credit._require_courier() IS 'Internal: 42501 unless the caller is a member of the courier role or holds the admin level';
COMMENT ON FUNCTION credit._money_text(numeric) IS 'Internal: an amount as text for messages (grouped, two or more decimals)';
COMMENT ON FUNCTION credit._json_numbers_as_text(jsonb) IS 'Internal: an event''s data for messages: amounts as money text, other numbers as their exact text';
COMMENT ON FUNCTION credit._message_figures(text) IS 'Internal: a customer''s figures for messages (limit, exposure, available, open, overdue)';
COMMENT ON FUNCTION credit._render_message(text, jsonb) IS 'Internal: fills a template''s placeholders (22023 naming a missing field)';
COMMENT ON FUNCTION credit._template_fields(text) IS 'Internal: the placeholders of a template (22023 if malformed)';
COMMENT ON FUNCTION credit.courier_plan(integer) IS 'Courier: renders one delivery per outbox event and recipient after the planned position and moves it, in one transaction; returns the outbox rows read and the deliveries planned';
COMMENT ON FUNCTION credit.courier_claim(text, integer) IS 'Courier: leases due deliveries (within rate limits) and records their attempts before they are sent';
COMMENT ON FUNCTION credit.courier_report(bigint, integer, text, text) IS 'Courier: records an attempt''s outcome (sent, temporary: retried with backoff, permanent: dead letter); returns the delivery''s status';
COMMENT ON FUNCTION credit.set_contact(text, text, text, text[], text, text, text) IS 'Adds or changes a contact (customer NULL: staff) with the kinds it receives, its language and a webhook''s secret; returns its id';
COMMENT ON FUNCTION credit.opt_out(bigint, text) IS 'Stops messages to a contact (what is planned and unsent becomes a dead letter)';
COMMENT ON FUNCTION credit.opt_in(bigint) IS 'Resumes messages to a contact that opted out';
COMMENT ON FUNCTION credit.contacts(text) IS 'A customer''s contacts (NULL: staff) with the kinds each receives; secrets are not shown';
COMMENT ON FUNCTION credit.retry_delivery(bigint) IS 'Sends a dead letter again with a fresh count of attempts (after its address or receiver was mended)';
COMMENT ON FUNCTION credit.grant_courier(name) IS 'Makes a role the courier''s: EXECUTE on the three courier functions and nothing else';
COMMENT ON VIEW credit.dead_letter IS 'Messages that could not be delivered, with the reason: bad address or endpoint, template, size, opt-out, or attempts exhausted';
COMMENT ON COLUMN credit.dead_letter.delivery_id IS 'Delivery (credit.retry_delivery takes it)';
COMMENT ON COLUMN credit.dead_letter.customer IS 'Customer';
COMMENT ON COLUMN credit.dead_letter.kind IS 'Message kind';
COMMENT ON COLUMN credit.dead_letter.channel IS 'email, sms or webhook';
COMMENT ON COLUMN credit.dead_letter.address IS 'Recipient';
COMMENT ON COLUMN credit.dead_letter.idempotency_key IS 'Its idempotency key';
COMMENT ON COLUMN credit.dead_letter.attempts IS 'Attempts made';
COMMENT ON COLUMN credit.dead_letter.reason IS 'Why it is dead';
COMMENT ON COLUMN credit.dead_letter.created_at IS 'When planned';
COMMENT ON COLUMN credit.dead_letter.dead_at IS 'When it died';
COMMENT ON COLUMN credit.dead_letter.outbox_id IS 'The outbox row';
COMMENT ON COLUMN credit.dead_letter.contact_id IS 'The contact';
COMMENT ON VIEW credit.delivery_summary IS 'Deliveries by channel and status: the courier''s backlog at a glance';
COMMENT ON COLUMN credit.delivery_summary.channel IS 'email, sms or webhook';
COMMENT ON COLUMN credit.delivery_summary.status IS 'pending, sending, retry, sent or dead';
COMMENT ON COLUMN credit.delivery_summary.deliveries IS 'How many';
COMMENT ON COLUMN credit.delivery_summary.oldest IS 'Oldest planned';
COMMENT ON COLUMN credit.delivery_summary.most_attempts IS 'Most attempts of one';
COMMENT ON COLUMN credit.delivery_summary.next_due IS 'Next attempt due (pending and retry)';
