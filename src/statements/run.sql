-- A statement run (src/statements/mod.rs): issues, for every customer whose statement cycle ends
-- on $1, its statement for the period from the day after its last statement (or the cycle's
-- start) to $1 — unless it has neither activity nor a balance, or its closing balance is under
-- its minimum — once per customer and period. $2: the cycles ending on $1; $3..$6: per
-- (customer_type, region) present among the accounts, the policy's cycle and minimum balance.
--
-- A statement opens with the last one's closing balance, so a customer's statements run on from
-- one another; credit._statement_rows adds the 'prior_period_adjustment' line where the ledger
-- moved since (a document posted after the last statement was issued, dated before its end).
--
-- Each statement: a numbered header, its rows as credit._statement_rows computes them, and a
-- statement_issued event (the audit chain; the outbox for delivery) with a digest of the rows.
-- Returns the statements issued.
--
-- The customers due travel to credit._statement_rows as arrays, and its rows carry their
-- position in them (idx). The per-customer totals then meet the customers due, and the issued
-- statements their rows, on idx, by hash joins: the planner knows how many customers are due
-- (from the accounts' statistics) and credit._statement_rows declares 100,000 rows. (Looking the customers' attributes up in the arrays by
-- position instead costs a walk over the array each time for text and numeric elements:
-- quadratic, 30 s at 100,000 customers.)
WITH due AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY a.customer) AS idx,
           a.customer, a.currency::text AS currency, x.cycle, x.min_balance,
           coalesce(st.language, 'zh') AS language, last.period_end AS last_end, last.closing AS last_closing
      FROM credit.account a
      LEFT JOIN credit.statement_setting st ON st.customer = a.customer
      CROSS JOIN LATERAL (
          SELECT coalesce(st.cycle, m.cycle) AS cycle, coalesce(st.min_balance, m.min_balance) AS min_balance
            FROM unnest($3::text[], $4::text[], $5::text[], $6::numeric[]) AS m(customer_type, region, cycle, min_balance)
           WHERE m.customer_type IS NOT DISTINCT FROM a.customer_type AND m.region IS NOT DISTINCT FROM a.region
           LIMIT 1) x
      LEFT JOIN LATERAL (SELECT s.period_end, s.closing FROM credit.statement s
                          WHERE s.customer = a.customer ORDER BY s.period_end DESC LIMIT 1) last ON true
     WHERE x.cycle = ANY ($2) AND (last.period_end IS NULL OR last.period_end < $1)),
arrays AS (
    SELECT array_agg(d.customer ORDER BY d.idx) AS customers,
           array_agg(coalesce(d.last_end + 1,
                              CASE d.cycle WHEN 'weekly' THEN $1 - 6
                                           WHEN 'monthly' THEN date_trunc('month', $1)::date
                                           ELSE date_trunc('quarter', $1)::date END) ORDER BY d.idx) AS starts,
           array_agg(d.last_closing ORDER BY d.idx) AS openings
      FROM due d),
-- Every customer's rows, once (kept: the totals and the lines are both made from them).
rows AS MATERIALIZED (
    SELECT r.* FROM arrays a CROSS JOIN LATERAL credit._statement_rows($1, a.customers, a.starts, a.openings) r),
-- Per customer: the totals and a digest of the lines.
head AS (
    SELECT r.idx, r.customer,
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
      FROM rows r
     GROUP BY r.idx, r.customer),
issue AS MATERIALIZED (
    SELECT nextval('credit.statement_id_seq') AS id, q.*
      FROM (SELECT h.idx, h.customer, a.starts[h.idx] AS period_start, d.cycle, d.currency, d.language, h.opening,
                   coalesce(h.debits, 0) AS debits, coalesce(h.credits, 0) AS credits, h.closing, h.overdue, h.lines,
                   h.digest
              FROM head h JOIN due d ON d.idx = h.idx CROSS JOIN arrays a
             WHERE (h.activity > 0 OR h.closing <> 0)
               AND (d.min_balance IS NULL OR h.closing >= d.min_balance)
             ORDER BY h.customer) q),
statements AS (
    INSERT INTO credit.statement (id, statement_no, customer, period_start, period_end, cycle, currency, language,
                                  opening, debits, credits, closing, overdue)
    SELECT i.id, 'ST-' || to_char($1, 'YYYYMMDD') || '-' || i.id, i.customer, i.period_start, $1, i.cycle, i.currency,
           i.language, i.opening, i.debits, i.credits, i.closing, i.overdue
      FROM issue i),
lines AS (
    INSERT INTO credit.statement_line (statement_id, section, line, entry_date, kind, doc_no, detail, debit, credit,
                                       applied, balance, due_date, days, bucket, promised_amount, promised_date,
                                       disputed_since)
    SELECT i.id, l.section, l.line, l.entry_date, l.kind, l.doc_no, l.detail, l.debit, l.credit, l.applied, l.balance,
           l.due_date, l.days, l.bucket, l.promised_amount, l.promised_date, l.disputed_since
      FROM issue i JOIN rows l ON l.idx = i.idx),
events AS (
    INSERT INTO credit.event (kind, customer, after, acting_as)
    SELECT 'statement_issued', i.customer,
           jsonb_build_object('statement_id', i.id, 'statement_no', 'ST-' || to_char($1, 'YYYYMMDD') || '-' || i.id,
                              'period_start', i.period_start, 'period_end', $1, 'cycle', i.cycle, 'currency', i.currency,
                              'language', i.language, 'opening', i.opening, 'debits', i.debits, 'credits', i.credits,
                              'closing', i.closing, 'overdue', i.overdue, 'lines', i.lines, 'digest', i.digest),
           credit._caller()
      FROM issue i ORDER BY i.id)
SELECT i.id, 'ST-' || to_char($1, 'YYYYMMDD') || '-' || i.id, i.customer, i.period_start, i.opening, i.closing, i.lines
  FROM issue i
 ORDER BY i.id
