-- Statements of account (对账单): as of any dates, opening + entries = closing; the cases other
-- systems get wrong (a fully paid invoice shown as outstanding after partial settlements, "open as
-- of a date" meaning open now, 0.00 lines from partial settlements); statement runs by cycle,
-- numbered and immutable, once per customer and period, running on from one another; the
-- document (HTML) with the same figures.
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO credit.account (customer, credit_limit, currency) VALUES ('ST-A', 10000, 'CNY'), ('ST-B', 10000, 'CNY');
SELECT credit.post_invoice('ST-A', 'SA-1', 1000, '2025-01-05', '2025-02-04') > 0 AS i1,
       credit.post_invoice('ST-A', 'SA-2', 500, '2025-01-20', '2025-02-19') > 0 AS i2,
       credit.post_invoice('ST-A', 'SA-3', 300, '2025-02-03', '2025-03-05') > 0 AS i3;
-- SA-1 settled in two parts; a credit note for SA-3 applied to SA-2 (applied where it was told to);
-- a payment on account (applied oldest due first); SA-5 cancelled; a bounced payment.
SELECT credit.post_payment('ST-A', 400, '2025-01-25', 'SA-1', 'P-1') > 0 AS p1,
       credit.post_payment('ST-A', 600, '2025-02-10', 'SA-1', 'P-2') > 0 AS p2,
       credit.post_credit_note('ST-A', 'CN-1', 100, 'SA-2', '2025-02-12', 'price difference on SA-3') > 0 AS cn,
       credit.post_payment('ST-A', 250, '2025-02-20', NULL, 'PRE-1') > 0 AS prepayment,
       credit.post_invoice('ST-A', 'SA-4', 200, '2025-03-01', '2025-03-31') > 0 AS i4,
       credit.post_invoice('ST-A', 'SA-5', 70, '2025-03-02', '2025-04-01') > 0 AS i5,
       credit.cancel_invoice('ST-A', 'SA-5', 'duplicate', '2025-03-04') > 0 AS cancelled,
       credit.post_payment('ST-A', 90, '2025-03-06', 'SA-3', 'P-3') > 0 AS p3;
SELECT credit.reverse_settlement(id, 'returned by the bank', '2025-03-09') > 0 AS bounced
  FROM credit.settlement WHERE customer = 'ST-A' AND doc_no = 'P-3';
SELECT credit.dispute('ST-A', 'SA-2', 'quantity', '2025-03-15') > 0 AS disputed;

-- February, as of its own end: SA-1 is not outstanding (paid in two parts), SA-2 is open for what
-- was open then — although it is in dispute and SA-3 was paid and the payment reversed since.
SELECT section, line, entry_date, kind, doc_no, detail, debit, credit, applied, balance, due_date, days, bucket,
       disputed_since, currency
  FROM credit.statement('ST-A', '2025-02-01', '2025-02-28');
-- March.
SELECT section, line, entry_date, kind, doc_no, debit, credit, applied, balance, days, disputed_since
  FROM credit.statement('ST-A', '2025-03-01', '2025-03-31') WHERE section <> 'aging';
-- No 0.00 open items, and no settled invoice among them, in any month.
SELECT count(*) AS zero_or_settled
  FROM generate_series('2025-01-31'::date, '2025-06-30', '1 month') m(end_day),
       LATERAL credit.statement('ST-A', date_trunc('month', m.end_day)::date, (m.end_day + interval '1 month - 1 day')::date) s
 WHERE s.section = 'open_item' AND (s.balance = 0 OR s.doc_no = 'SA-1');

-- Any period: opening + debits - credits = closing, the running balance ends there, the open items
-- and the aging add up to it, and each period opens where the day before closed.
WITH periods AS (SELECT s::date AS period_start, (s + (n || ' days')::interval)::date AS period_end
                   FROM generate_series('2024-12-20'::date, '2025-04-10', '3 days') s, unnest(ARRAY[0, 6, 20, 45]) n),
st AS (SELECT p.period_start, p.period_end, x.*
         FROM periods p, LATERAL credit.statement('ST-A', p.period_start, p.period_end) x),
check_each AS (
    SELECT period_start, period_end,
           max(balance) FILTER (WHERE section = 'opening') AS opening,
           max(balance) FILTER (WHERE section = 'closing') AS closing,
           coalesce(sum(debit - credit) FILTER (WHERE section = 'activity'), 0) AS moved,
           (array_agg(balance ORDER BY line DESC) FILTER (WHERE section = 'activity'))[1] AS last_running,
           coalesce(sum(balance) FILTER (WHERE section = 'open_item'), 0) AS open_items,
           coalesce(sum(balance) FILTER (WHERE section = 'aging'), 0) AS aged
      FROM st GROUP BY period_start, period_end)
SELECT count(*) AS periods,
       count(*) FILTER (WHERE opening + moved <> closing) AS not_adding_up,
       count(*) FILTER (WHERE last_running IS NOT NULL AND last_running <> closing) AS running_balance_off,
       count(*) FILTER (WHERE open_items <> closing OR aged <> closing) AS open_items_off,
       count(*) FILTER (WHERE opening <> (SELECT coalesce(sum(g.open_amount), 0) FROM credit.aging(period_start - 1) g
                                            WHERE g.customer = 'ST-A')) AS opening_off
  FROM check_each;

-- Arguments.
SELECT regress.sqlstate_of('SELECT * FROM credit.statement(NULL, ''2025-01-01'', ''2025-01-31'')') AS null_customer,
       regress.sqlstate_of('SELECT * FROM credit.statement(''ST-A'', NULL, ''2025-01-31'')') AS null_start,
       regress.sqlstate_of('SELECT * FROM credit.statement(''ST-A'', ''2025-02-01'', ''2025-01-31'')') AS reversed,
       regress.sqlstate_of('SELECT * FROM credit.statement(''ST-A'', ''-infinity'', ''2025-01-31'')') AS infinite,
       regress.sqlstate_of('SELECT * FROM credit.statement(''NOBODY'', ''2025-01-01'', ''2025-01-31'')') AS unknown,
       regress.sqlstate_of('SELECT * FROM credit.statement('''', ''2025-01-01'', ''2025-01-31'')') AS empty;

-- Statement runs. ST-A monthly (the default), ST-B weekly and a minimum balance; a customer of
-- type 'ST-Q' quarterly by policy; one with no cycle.
INSERT INTO credit.statement_setting (customer, cycle, min_balance, language) VALUES ('ST-B', 'weekly', 50, 'en');
INSERT INTO credit.policy (customer_type, statement_cycle) VALUES ('ST-Q', 'quarterly');
INSERT INTO credit.account (customer, credit_limit, customer_type) VALUES ('ST-Q1', 10000, 'ST-Q'), ('ST-N', 10000, 'ST-Q');
INSERT INTO credit.statement_setting (customer, cycle) VALUES ('ST-N', 'none');
SELECT statement_cycle FROM credit.effective_policy('ST-Q1');
SELECT credit.post_invoice('ST-Q1', 'Q-1', 40, '2025-02-10') > 0 AS q1,
       credit.post_invoice('ST-N', 'N-1', 40, '2025-02-10') > 0 AS n1,
       credit.post_invoice('ST-B', 'SB-1', 30, '2025-03-03', '2025-04-02') > 0 AS b1,
       credit.post_invoice('ST-B', 'SB-2', 45, '2025-03-12', '2025-04-11') > 0 AS b2;
-- 2025-03-31 ends a month and a quarter (not a week: a Monday).
SELECT statement_no ~ '^ST-20250331-[0-9]+$' AS numbered, customer, period_start, opening, closing, lines
  FROM credit.statement_run('2025-03-31') WHERE customer LIKE 'ST-%' ORDER BY customer;
SELECT customer, count(*) AS issued FROM credit.statement_run('2025-03-31') GROUP BY customer;
-- Weekly for ST-B: 2025-03-09 (a Sunday) finds 30 under its minimum of 50; 2025-03-16 issues, from
-- the week's start (no earlier statement).
SELECT customer, period_start FROM credit.statement_run('2025-03-09') WHERE customer LIKE 'ST-%';
SELECT customer, period_start, opening, closing FROM credit.statement_run('2025-03-16') WHERE customer LIKE 'ST-%';
-- April: ST-A's statement opens with March's closing; a payment posted now but dated in March
-- (after March's statement was issued) comes in as a prior-period adjustment.
SELECT credit.post_payment('ST-A', 25, '2025-03-30', NULL, 'LATE-1') > 0 AS late_payment;
SELECT customer, period_start, opening, closing FROM credit.statement_run('2025-04-30') WHERE customer = 'ST-A';
SELECT s.opening = p.closing AS runs_on, s.opening + s.debits - s.credits = s.closing AS adds_up
  FROM credit.statement s JOIN credit.statement p ON p.customer = s.customer AND p.period_end = '2025-03-31'
 WHERE s.customer = 'ST-A' AND s.period_end = '2025-04-30';
SELECT l.line, l.entry_date, l.kind, l.debit, l.credit, l.balance
  FROM credit.statement_line l JOIN credit.statement s ON s.id = l.statement_id
 WHERE s.customer = 'ST-A' AND s.period_end = '2025-04-30' AND l.section IN ('opening', 'activity', 'closing')
 ORDER BY array_position(ARRAY['opening', 'activity', 'closing'], l.section), l.line;
-- Every issued statement adds up and was announced, with a digest.
SELECT count(*) AS issued, count(*) FILTER (WHERE opening + debits - credits <> closing) AS not_adding_up
  FROM credit.statement WHERE customer LIKE 'ST-%';
SELECT count(*) AS announced, count(*) FILTER (WHERE length(after ->> 'digest') = 64) AS with_digest
  FROM credit.event e JOIN credit.statement s ON s.id = (e.after ->> 'statement_id')::bigint
 WHERE e.kind = 'statement_issued' AND s.customer LIKE 'ST-%';
-- Immutable.
SELECT regress.sqlstate_of('UPDATE credit.statement SET closing = 0') AS update_statement,
       regress.sqlstate_of('DELETE FROM credit.statement_line') AS delete_lines,
       regress.sqlstate_of('TRUNCATE credit.statement_line') AS truncate_lines;
-- Arguments.
SELECT regress.sqlstate_of('SELECT credit.statement_run(NULL)') AS null_end,
       regress.sqlstate_of('SELECT credit.statement_run(current_date + 31)') AS future,
       regress.sqlstate_of('SELECT credit.statement_run(''2025-03-30'', ''monthly'')') AS not_month_end,
       regress.sqlstate_of('SELECT credit.statement_run(''2025-03-31'', ''yearly'')') AS unknown_cycle;
-- A Saturday ends no cycle; a Sunday ends ST-B's week (its balance of 75 is over its minimum).
SELECT count(*) AS nothing_ends FROM credit.statement_run('2025-03-29');
SELECT customer, period_start, closing FROM credit.statement_run('2025-03-30') WHERE customer LIKE 'ST-%';

-- The document: the statement's own figures, in its language or the one asked for, escaped.
INSERT INTO credit.account (customer, credit_limit) VALUES ('ST-<&>', 10000);
SELECT credit.post_invoice('ST-<&>', 'X<1>', 12345.5, '2025-03-10') > 0 AS posted;
SELECT count(*) AS issued FROM credit.statement_run('2025-03-31') WHERE customer = 'ST-<&>';
SELECT position('对账单' IN h) > 0 AS chinese, position('ST-&lt;&amp;&gt;' IN h) > 0 AS escaped_customer,
       position('X&lt;1&gt;' IN h) > 0 AS escaped_doc, position('12,345.50' IN h) > 0 AS amount,
       position('<script' IN h) = 0 AS no_script, position('src=' IN h) = 0 AS nothing_external
  FROM (SELECT credit.statement_html(id) AS h FROM credit.statement WHERE customer = 'ST-<&>') x;
SELECT position('Statement of account' IN credit.statement_html(id, 'en')) > 0 AS english
  FROM credit.statement WHERE customer = 'ST-<&>';
SELECT position('Statement of account' IN credit.statement_html(id)) > 0 AS english_by_setting
  FROM credit.statement WHERE customer = 'ST-B' ORDER BY period_end LIMIT 1;
SELECT regress.sqlstate_of('SELECT credit.statement_html(999999)') AS unknown,
       regress.sqlstate_of('SELECT credit.statement_html(NULL)') AS null_id,
       regress.sqlstate_of(format('SELECT credit.statement_html(%s, %L)', (SELECT min(id) FROM credit.statement), 'fr')) AS bad_lang;
SELECT count(*) AS drift FROM credit.verify();
