-- A statement run (src/statements/mod.rs): issues, for every customer whose statement cycle ends
-- on $1, its statement for the period from the day after its last statement (or the cycle's
-- start) to $1 — unless it has neither activity nor a balance, or its closing balance is under
-- its minimum — once per customer and period. $2: the cycles ending on $1; $3..$6: per
-- (customer_type, region) present among the accounts, the policy's cycle and minimum balance.
--
-- A statement opens with the last one's closing balance, so a customer's statements run on from
-- one another. What was posted after the last statement was issued but dated before its end (a
-- payment received on the last day and posted the next) moves the balance before this period:
-- one 'prior_period_adjustment' line, dated the period's first day, carries it.
--
-- Each statement: a numbered header, its rows as credit.statement computes them, and a
-- statement_issued event (the audit chain; the outbox for delivery) with a digest of the rows.
-- Returns the statements issued.
WITH m AS (SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::numeric[])
                           AS m(customer_type, region, cycle, min_balance)),
acct AS (SELECT a.customer, a.currency::text AS currency,
                coalesce(st.cycle, m.cycle) AS cycle,
                coalesce(st.min_balance, m.min_balance) AS min_balance,
                coalesce(st.language, 'zh') AS language
           FROM credit.account a
           JOIN m ON m.customer_type IS NOT DISTINCT FROM a.customer_type AND m.region IS NOT DISTINCT FROM a.region
           LEFT JOIN credit.statement_setting st ON st.customer = a.customer),
due AS MATERIALIZED (
    SELECT acct.*, last.closing AS last_closing,
           coalesce(last.period_end + 1,
                    CASE acct.cycle WHEN 'weekly' THEN $1 - 6
                                    WHEN 'monthly' THEN date_trunc('month', $1)::date
                                    ELSE date_trunc('quarter', $1)::date END) AS period_start
      FROM acct
      LEFT JOIN LATERAL (SELECT s.period_end, s.closing FROM credit.statement s
                          WHERE s.customer = acct.customer ORDER BY s.period_end DESC LIMIT 1) last ON true
     WHERE acct.cycle = ANY ($2) AND (last.period_end IS NULL OR last.period_end < $1)),
computed AS MATERIALIZED (
    SELECT r.* FROM credit._statement_rows($1, (SELECT array_agg(d.customer ORDER BY d.customer) FROM due d),
                                           (SELECT array_agg(d.period_start ORDER BY d.customer) FROM due d)) r),
-- The balance before the period as it stands now, against the last statement's closing.
adjustment AS (
    SELECT d.customer, d.period_start, d.last_closing, c.balance - d.last_closing AS amount
      FROM due d JOIN computed c ON c.customer = d.customer AND c.section = 'opening'
     WHERE d.last_closing IS NOT NULL AND c.balance <> d.last_closing),
rows AS MATERIALIZED (
    SELECT c.customer, c.section, c.line, c.entry_date, c.kind, c.doc_no, c.detail,
           CASE WHEN c.section = 'closing' THEN c.debit + greatest(coalesce(a.amount, 0), 0) ELSE c.debit END,
           CASE WHEN c.section = 'closing' THEN c.credit + greatest(-coalesce(a.amount, 0), 0) ELSE c.credit END,
           c.applied,
           CASE WHEN c.section = 'opening' THEN coalesce(a.last_closing, c.balance) ELSE c.balance END AS balance,
           c.due_date, c.days, c.bucket, c.promised_amount, c.promised_date, c.disputed_since
      FROM computed c LEFT JOIN adjustment a ON a.customer = c.customer
    UNION ALL
    SELECT a.customer, 'activity', 0, a.period_start, 'prior_period_adjustment', NULL, NULL,
           greatest(a.amount, 0), greatest(-a.amount, 0), NULL, a.last_closing + a.amount,
           NULL, NULL, NULL, NULL, NULL, NULL
      FROM adjustment a),
head AS (
    SELECT r.customer,
           max(r.balance) FILTER (WHERE r.section = 'opening') AS opening,
           max(r.debit) FILTER (WHERE r.section = 'closing') AS debits,
           max(r.credit) FILTER (WHERE r.section = 'closing') AS credits,
           max(r.balance) FILTER (WHERE r.section = 'closing') AS closing,
           coalesce(sum(r.balance) FILTER (WHERE r.section = 'open_item' AND r.kind = 'invoice' AND r.days > 0), 0) AS overdue,
           count(*) FILTER (WHERE r.section = 'activity') AS activity,
           count(*) AS lines,
           encode(sha256(convert_to(string_agg(concat_ws('|', r.section, r.line, r.entry_date, r.kind, r.doc_no, r.detail,
                                                              r.debit, r.credit, r.applied, r.balance, r.due_date, r.days,
                                                              r.bucket, r.promised_amount, r.promised_date, r.disputed_since),
                                                    E'\n' ORDER BY r.section, r.line), 'UTF8')), 'hex') AS digest
      FROM rows r GROUP BY r.customer),
issue AS MATERIALIZED (
    SELECT nextval('credit.statement_id_seq') AS id, q.*
      FROM (SELECT d.customer, d.period_start, d.cycle, d.currency, d.language, h.opening,
                   coalesce(h.debits, 0) AS debits, coalesce(h.credits, 0) AS credits,
                   h.closing, h.overdue, h.lines, h.digest
              FROM due d JOIN head h ON h.customer = d.customer
             WHERE (h.activity > 0 OR h.closing <> 0) AND (d.min_balance IS NULL OR h.closing >= d.min_balance)
             ORDER BY d.customer) q),
statements AS (
    INSERT INTO credit.statement (id, statement_no, customer, period_start, period_end, cycle, currency, language,
                                  opening, debits, credits, closing, overdue)
    SELECT i.id, 'ST-' || to_char($1, 'YYYYMMDD') || '-' || i.id, i.customer, i.period_start, $1, i.cycle, i.currency,
           i.language, i.opening, i.debits, i.credits, i.closing, i.overdue
      FROM issue i
    RETURNING id, statement_no, customer),
lines AS (
    INSERT INTO credit.statement_line (statement_id, section, line, entry_date, kind, doc_no, detail, debit, credit,
                                       applied, balance, due_date, days, bucket, promised_amount, promised_date,
                                       disputed_since)
    SELECT s.id, r.section, r.line, r.entry_date, r.kind, r.doc_no, r.detail, r.debit, r.credit, r.applied, r.balance,
           r.due_date, r.days, r.bucket, r.promised_amount, r.promised_date, r.disputed_since
      FROM statements s JOIN rows r ON r.customer = s.customer),
events AS (
    INSERT INTO credit.event (kind, customer, after, acting_as)
    SELECT 'statement_issued', i.customer,
           jsonb_build_object('statement_id', i.id, 'statement_no', 'ST-' || to_char($1, 'YYYYMMDD') || '-' || i.id,
                              'period_start', i.period_start, 'period_end', $1, 'cycle', i.cycle, 'currency', i.currency,
                              'language', i.language, 'opening', i.opening, 'debits', i.debits, 'credits', i.credits,
                              'closing', i.closing, 'overdue', i.overdue, 'lines', i.lines, 'digest', i.digest),
           credit._caller()
      FROM issue i ORDER BY i.id)
SELECT s.id, s.statement_no, s.customer, i.period_start, i.opening, i.closing, i.lines
  FROM statements s JOIN issue i ON i.id = s.id
 ORDER BY s.id
