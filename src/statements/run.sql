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
-- The customers due travel as arrays and their rows carry their position in them: no join
-- between the intermediate results, whose sizes the planner can only guess (a nested loop over
-- two guessed-small sets of 100,000 customers would take hours).
WITH due AS MATERIALIZED (
    SELECT a.customer, a.currency::text AS currency, x.cycle, x.min_balance,
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
    SELECT array_agg(d.customer ORDER BY d.customer) AS customers,
           array_agg(coalesce(d.last_end + 1,
                              CASE d.cycle WHEN 'weekly' THEN $1 - 6
                                           WHEN 'monthly' THEN date_trunc('month', $1)::date
                                           ELSE date_trunc('quarter', $1)::date END) ORDER BY d.customer) AS starts,
           array_agg(d.last_closing ORDER BY d.customer) AS openings,
           array_agg(d.cycle ORDER BY d.customer) AS cycles,
           array_agg(d.min_balance ORDER BY d.customer) AS min_balances,
           array_agg(d.currency ORDER BY d.customer) AS currencies,
           array_agg(d.language ORDER BY d.customer) AS languages
      FROM due d),
-- Per customer: the totals, the lines (as credit.statement_line rows, statement_id to be set),
-- and a digest of the lines.
head AS (
    SELECT r.idx, r.customer,
           max(r.balance) FILTER (WHERE r.section = 'opening') AS opening,
           max(r.debit) FILTER (WHERE r.section = 'closing') AS debits,
           max(r.credit) FILTER (WHERE r.section = 'closing') AS credits,
           max(r.balance) FILTER (WHERE r.section = 'closing') AS closing,
           coalesce(sum(r.balance) FILTER (WHERE r.section = 'open_item' AND r.kind = 'invoice' AND r.days > 0), 0) AS overdue,
           count(*) FILTER (WHERE r.section = 'activity') AS activity,
           count(*) AS lines,
           array_agg(ROW(NULL, r.section, r.line, r.entry_date, r.kind, r.doc_no, r.detail, r.debit, r.credit, r.applied,
                         r.balance, r.due_date, r.days, r.bucket, r.promised_amount, r.promised_date,
                         r.disputed_since)::credit.statement_line) AS rows,
           encode(sha256(convert_to(string_agg(concat_ws('|', r.section, r.line, r.entry_date, r.kind, r.doc_no, r.detail,
                                                              r.debit, r.credit, r.applied, r.balance, r.due_date, r.days,
                                                              r.bucket, r.promised_amount, r.promised_date, r.disputed_since),
                                                    E'\n' ORDER BY r.section, r.line), 'UTF8')), 'hex') AS digest
      FROM arrays a CROSS JOIN LATERAL credit._statement_rows($1, a.customers, a.starts, a.openings) r
     GROUP BY r.idx, r.customer),
issue AS MATERIALIZED (
    SELECT nextval('credit.statement_id_seq') AS id, q.*
      FROM (SELECT h.customer, a.starts[h.idx] AS period_start, a.cycles[h.idx] AS cycle,
                   a.currencies[h.idx] AS currency, a.languages[h.idx] AS language, h.opening,
                   coalesce(h.debits, 0) AS debits, coalesce(h.credits, 0) AS credits, h.closing, h.overdue, h.lines,
                   h.digest, h.rows
              FROM head h CROSS JOIN arrays a
             WHERE (h.activity > 0 OR h.closing <> 0)
               AND (a.min_balances[h.idx] IS NULL OR h.closing >= a.min_balances[h.idx])
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
      FROM issue i CROSS JOIN LATERAL unnest(i.rows) l),
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
