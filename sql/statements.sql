-- Statements of account (对账单): what a customer owed at the start of a period, every document
-- and settlement in it with a running balance, what it owes at the end, and its open items then,
-- with their aging, promises and disputes. Computed from the ledger as of any dates (so a past
-- period reads as it stood, later payments and reversals notwithstanding), and issued as numbered,
-- immutable statements by credit.statement_run (src/statements/), rendered by credit.statement_html.

-- ---------------------------------------------------------------------------------------------
-- Every entry of the ledger in a date range, with the date it took effect: what raises the
-- balance (invoices, reversals) as a debit, what lowers it (payments, credit notes, cancellations,
-- write-offs) as a credit; applications of money to invoices (and their undoing by a reversal)
-- move nothing and are listed for the reader. The balance as of a date (credit.aging) moves by
-- exactly these debits and credits, day by day.

CREATE FUNCTION credit._ledger_entries(customer text, from_date date, to_date date)
RETURNS TABLE (customer text, entry_date date, sort integer, kind text, doc_no text, detail text,
               debit numeric, credit numeric, applied numeric, document_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT * FROM (
        -- an invoice's detail: its payment terms ("terms <days>")
        SELECT i.customer, i.doc_date, 1, 'invoice'::text, i.doc_no, 'terms ' || (i.due_date - i.doc_date), i.amount,
               0::numeric, NULL::numeric, i.id
          FROM credit.invoice i
         WHERE (_ledger_entries.customer IS NULL OR i.customer = _ledger_entries.customer)
           AND i.doc_date BETWEEN _ledger_entries.from_date AND _ledger_entries.to_date
    ) b
    UNION ALL
    -- payments, credit notes and cancellations count from their own date
    SELECT * FROM (
        SELECT s.customer, s.doc_date, 2, s.kind, s.doc_no, s.reason, 0::numeric, s.amount, NULL::numeric, s.id
          FROM credit.settlement s
         WHERE (_ledger_entries.customer IS NULL OR s.customer = _ledger_entries.customer)
           AND s.kind <> 'write_off' AND s.doc_date BETWEEN _ledger_entries.from_date AND _ledger_entries.to_date
    ) b
    UNION ALL
    -- a write-off counts from the day it took effect on its invoice
    SELECT * FROM (
        SELECT s.customer, a.applied_on, 2, 'write_off'::text, i.doc_no, s.reason, 0::numeric, a.amount, NULL::numeric, s.id
          FROM credit.settlement s
          JOIN credit.allocation a ON a.settlement_id = s.id AND a.reversal_id IS NULL
          JOIN credit.invoice i ON i.id = a.invoice_id
         WHERE (_ledger_entries.customer IS NULL OR s.customer = _ledger_entries.customer)
           AND s.kind = 'write_off' AND a.applied_on BETWEEN _ledger_entries.from_date AND _ledger_entries.to_date
    ) b
    UNION ALL
    -- a reversal: the customer owes the settlement's amount again from its date
    SELECT * FROM (
        SELECT r.customer, r.doc_date, 3, s.kind || '_reversal',
               coalesce(s.doc_no, (SELECT i.doc_no FROM credit.allocation a JOIN credit.invoice i ON i.id = a.invoice_id
                                    WHERE a.settlement_id = s.id AND s.kind = 'write_off' ORDER BY a.id LIMIT 1)),
               r.reason, r.amount, 0::numeric, NULL::numeric, r.id
          FROM credit.reversal r JOIN credit.settlement s ON s.id = r.settlement_id
         WHERE (_ledger_entries.customer IS NULL OR r.customer = _ledger_entries.customer)
           AND r.doc_date BETWEEN _ledger_entries.from_date AND _ledger_entries.to_date
    ) b
    UNION ALL
    -- applications of payments and credit notes to invoices, and their undoing: for the reader
    SELECT * FROM (
        SELECT s.customer, a.applied_on, 4,
               CASE WHEN a.reversal_id IS NULL THEN 'application' ELSE 'application_reversed' END,
               i.doc_no, s.kind || coalesce(' ' || s.doc_no, ''), 0::numeric, 0::numeric, a.amount, a.id
          FROM credit.allocation a
          JOIN credit.settlement s ON s.id = a.settlement_id AND s.kind IN ('payment', 'credit_note')
          JOIN credit.invoice i ON i.id = a.invoice_id
         WHERE (_ledger_entries.customer IS NULL OR s.customer = _ledger_entries.customer)
           AND a.applied_on BETWEEN _ledger_entries.from_date AND _ledger_entries.to_date
    ) b;
END;

-- Statements of several customers over periods that end on the same day (each from its own
-- start), as rows: 'opening', 'activity' (with the running balance), 'closing' (with the
-- period's debits and credits), 'open_item' (open as of the end, with aging, promise, dispute
-- and payment arrangement), 'aging' (per bucket), 'interest' (late-payment interest accrued by the
-- end, per invoice; not part of the balance). The closing balance is the balance as of the end
-- (credit.aging); the opening is the closing less the period's entries, which is the balance as
-- of the day before the start (a property test holds the two ways to each other).
--
-- openings (statement runs): the opening each statement must show — the last statement's
-- closing. Where the ledger's balance before the period differs (a document posted after that
-- statement was issued, dated before its end), one 'prior_period_adjustment' activity line
-- (line 0, dated the period's first day) carries the difference, and the closing's debits or
-- credits include it. idx: the customer's position in the arrays.
--
-- PL/pgSQL only to plan the query for its arguments (EXECUTE ... USING): the planner then knows
-- how many customers there are and, for one customer, uses its indexes. ROWS 100000: a
-- statement run joins these rows by hash (src/statements/run.sql); the default guess of 1,000
-- would have it loop over them. Not in parallel: called
-- from a statement run's INSERT, a parallel plan here fails (cannot start commands during a
-- parallel operation).
CREATE FUNCTION credit._statement_rows(period_end date, customers text[], starts date[], openings numeric[] DEFAULT NULL)
RETURNS TABLE (idx bigint, customer text, section text, line bigint, entry_date date, kind text, doc_no text,
               detail text, debit numeric, credit numeric, applied numeric, balance numeric, due_date date,
               days integer, bucket text, promised_amount numeric, promised_date date, disputed_since date)
LANGUAGE plpgsql STABLE ROWS 100000 SET search_path = pg_catalog, pg_temp SET max_parallel_workers_per_gather = 0 AS $fn$
BEGIN
    RETURN QUERY EXECUTE $q$
    WITH p AS (SELECT * FROM unnest($2, $3, $4) WITH ORDINALITY AS p(customer, period_start, stated_opening, idx)),
    e AS (SELECT p.customer, p.period_start, e.entry_date, e.sort, e.kind, e.doc_no, e.detail, e.debit, e.credit,
                 e.applied, e.document_id
            FROM credit._ledger_entries($6, $5, $1) e
            JOIN p ON p.customer = e.customer AND e.entry_date >= p.period_start),
    g AS (SELECT g.customer, g.doc_type, g.doc_no, g.doc_date, g.due_date, g.open_amount, g.days, g.bucket,
                 g.bucket_position
            FROM credit.aging($1) g WHERE g.customer = ANY ($2)),
    net AS (SELECT e.customer, sum(e.debit - e.credit) AS net, sum(e.debit) AS debits, sum(e.credit) AS credits
              FROM e GROUP BY e.customer),
    closing AS (SELECT g.customer, sum(g.open_amount) AS balance FROM g GROUP BY g.customer),
    head AS (SELECT x.*, coalesce(x.stated_opening, x.opening) AS shown_opening,
                    x.opening - coalesce(x.stated_opening, x.opening) AS adjustment
               FROM (SELECT p.idx, p.customer, p.period_start, p.stated_opening, coalesce(c.balance, 0) AS closing,
                            coalesce(c.balance, 0) - coalesce(n.net, 0) AS opening,
                            coalesce(n.debits, 0) AS debits, coalesce(n.credits, 0) AS credits
                       FROM p LEFT JOIN closing c ON c.customer = p.customer LEFT JOIN net n ON n.customer = p.customer) x),
    promised AS (SELECT DISTINCT ON (i.customer, i.doc_no) i.customer, i.doc_no, pr.amount, pr.promised_date
                   FROM credit.promise pr JOIN credit.invoice i ON i.customer = pr.customer AND i.id = pr.invoice_id
                  WHERE pr.customer = ANY ($2) AND pr.made_on <= $1 AND (pr.status = 'open' OR pr.decided_on > $1)
                  ORDER BY i.customer, i.doc_no, pr.made_on DESC, pr.id DESC),
    disputed AS (SELECT d.customer, d.doc_no, d.opened_on FROM credit.invoice_dispute d
                  WHERE d.customer = ANY ($2) AND d.opened_on <= $1 AND (d.resolved_on IS NULL OR d.resolved_on > $1)),
    -- Invoices under a payment arrangement active at the end: the plan and its instalments
    -- still open then ("arrangement <id>: <due date> <open amount>, ..."), beside the invoice's
    -- own due date and aging.
    arranged AS (SELECT i.customer, i.doc_no,
                        'arrangement ' || s.arrangement_id || ': '
                        || string_agg(to_char(s.due_date, 'YYYY-MM-DD') || ' ' || s.open_amount, ', ' ORDER BY s.instalment) AS plan
                   FROM credit.arrangement_schedule($1) s
                   JOIN credit.arrangement_invoice ai ON ai.customer = s.customer AND ai.arrangement_id = s.arrangement_id
                   JOIN credit.invoice i ON i.customer = ai.customer AND i.id = ai.invoice_id
                  WHERE s.customer = ANY ($2) AND s.arrangement_status = 'active' AND s.open_amount > 0
                  GROUP BY i.customer, i.doc_no, s.arrangement_id),
    -- Late-payment interest accrued by the end (credit.late_interest): not part of the balance.
    interest AS (SELECT li.* FROM credit._late_interest_of($1, $2) li),
    buckets AS (SELECT b.label, row_number() OVER (ORDER BY b.position) AS rank
                  FROM credit.aging_bucket b WHERE NOT b.retired),
    aged AS (SELECT g.customer, g.bucket_position, sum(g.open_amount) AS amount FROM g GROUP BY 1, 2)
    SELECT h.idx, h.customer, 'opening', 0::bigint, h.period_start - 1, NULL::text, NULL::text, NULL::text, NULL::numeric,
           NULL::numeric, NULL::numeric, h.shown_opening, NULL::date, NULL::integer, NULL::text, NULL::numeric, NULL::date,
           NULL::date
      FROM head h
    UNION ALL
    SELECT h.idx, h.customer, 'activity', 0, h.period_start, 'prior_period_adjustment', NULL, NULL,
           greatest(h.adjustment, 0), greatest(-h.adjustment, 0), NULL, h.opening, NULL, NULL, NULL, NULL, NULL, NULL
      FROM head h WHERE h.adjustment <> 0
    UNION ALL
    SELECT h.idx, e.customer, 'activity',
           row_number() OVER (PARTITION BY e.customer ORDER BY e.entry_date, e.sort, e.doc_no, e.document_id),
           e.entry_date, e.kind, e.doc_no, e.detail, e.debit, e.credit, e.applied,
           h.opening + sum(e.debit - e.credit) OVER (PARTITION BY e.customer
                                                     ORDER BY e.entry_date, e.sort, e.doc_no, e.document_id
                                                     ROWS UNBOUNDED PRECEDING),
           NULL, NULL, NULL, NULL, NULL, NULL
      FROM e JOIN head h ON h.customer = e.customer
    UNION ALL
    SELECT h.idx, h.customer, 'closing', 0, $1, NULL, NULL, NULL, h.debits + greatest(h.adjustment, 0),
           h.credits + greatest(-h.adjustment, 0), NULL, h.closing, NULL, NULL, NULL, NULL, NULL, NULL
      FROM head h
    UNION ALL
    SELECT h.idx, g.customer, 'open_item',
           row_number() OVER (PARTITION BY g.customer ORDER BY g.due_date NULLS LAST, g.doc_date, g.doc_type, g.doc_no),
           g.doc_date, g.doc_type, g.doc_no, ar.plan,
           greatest(g.open_amount, 0), greatest(-g.open_amount, 0), NULL, g.open_amount, g.due_date, g.days, g.bucket,
           pr.amount, pr.promised_date, d.opened_on
      FROM g
      JOIN head h ON h.customer = g.customer
      LEFT JOIN arranged ar ON g.doc_type = 'invoice' AND ar.customer = g.customer AND ar.doc_no = g.doc_no
      LEFT JOIN promised pr ON g.doc_type = 'invoice' AND pr.customer = g.customer AND pr.doc_no = g.doc_no
      LEFT JOIN disputed d ON g.doc_type = 'invoice' AND d.customer = g.customer AND d.doc_no = g.doc_no
    UNION ALL
    SELECT h.idx, li.customer, 'interest', row_number() OVER (PARTITION BY li.customer ORDER BY li.due_date, li.doc_no),
           NULL, 'interest', li.doc_no, 'rate ' || li.rate, NULL, NULL, NULL, li.interest, li.due_date, li.days_late,
           NULL, NULL, NULL, NULL
      FROM interest li JOIN head h ON h.customer = li.customer
    UNION ALL
    SELECT h.idx, h.customer, 'aging', b.rank, NULL, b.label, NULL, NULL, NULL, NULL, NULL, coalesce(ag.amount, 0),
           NULL, NULL, b.label, NULL, NULL, NULL
      FROM head h CROSS JOIN buckets b
      LEFT JOIN aged ag ON ag.customer = h.customer AND ag.bucket_position = b.rank
    $q$
    USING period_end, customers, starts, openings, (SELECT min(x) FROM unnest(starts) x),
          CASE WHEN cardinality(customers) = 1 THEN customers[1] END;
END
$fn$;

-- Arguments of credit.statement, checked once per query (a pseudo-constant qual); true, or 22004,
-- 22023 or 23503.
CREATE FUNCTION credit._statement_args(customer text, period_start date, period_end date) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF customer IS NULL OR period_start IS NULL OR period_end IS NULL THEN
        RAISE EXCEPTION 'customer, period_start and period_end must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(customer) = '' THEN
        RAISE EXCEPTION 'customer must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(period_start) OR NOT isfinite(period_end) THEN
        RAISE EXCEPTION 'period_start and period_end must be finite dates' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF period_end < period_start THEN
        RAISE EXCEPTION 'period_end % is before period_start %', period_end, period_start
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit.account a WHERE a.customer = _statement_args.customer) THEN
        RAISE EXCEPTION 'customer "%" has no credit account', customer USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN true;
END
$$;

CREATE FUNCTION credit.statement(customer text, period_start date, period_end date)
RETURNS TABLE (section text, line bigint, entry_date date, kind text, doc_no text, detail text,
               debit numeric, credit numeric, applied numeric, balance numeric, due_date date, days integer,
               bucket text, promised_amount numeric, promised_date date, disputed_since date, currency text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT r.section, r.line, r.entry_date, r.kind, r.doc_no, r.detail, r.debit, r.credit, r.applied, r.balance,
           r.due_date, r.days, r.bucket, r.promised_amount, r.promised_date, r.disputed_since, a.currency::text
      FROM credit._statement_rows(statement.period_end, ARRAY[statement.customer], ARRAY[statement.period_start]) r
      JOIN credit.account a ON a.customer = r.customer
     WHERE credit._statement_args(statement.customer, statement.period_start, statement.period_end)
     ORDER BY array_position(ARRAY['opening', 'activity', 'closing', 'open_item', 'aging', 'interest'], r.section), r.line;
END;

-- ---------------------------------------------------------------------------------------------
-- Issued statements. credit.statement_run issues one per customer and period (once), numbered,
-- immutable, with its rows as credit.statement computed them when issued; each issue is a
-- statement_issued event (the audit chain, the outbox for delivery).

-- Per-account settings, over the policy's (credit.policy.statement_cycle, statement_min_balance).
CREATE TABLE credit.statement_setting (
    customer     text PRIMARY KEY,
    cycle        text CHECK (cycle IN ('weekly', 'monthly', 'quarterly', 'none')),
    min_balance  numeric CHECK (min_balance >= 0 AND min_balance <= 1000000000000000),
    language     text NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    note         text
);
SELECT pg_catalog.pg_extension_config_dump('credit.statement_setting', '');

CREATE TABLE credit.statement (
    id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    statement_no  text NOT NULL UNIQUE,
    customer      text NOT NULL,
    period_start  date NOT NULL,
    period_end    date NOT NULL,
    cycle         text NOT NULL,
    currency      text,
    language      text NOT NULL,
    opening       numeric NOT NULL,
    debits        numeric NOT NULL,
    credits       numeric NOT NULL,
    closing       numeric NOT NULL,
    overdue       numeric NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    issued_by     name NOT NULL DEFAULT credit._person(),
    CONSTRAINT statement_once_per_period UNIQUE (customer, period_end),
    CONSTRAINT statement_period CHECK (period_end >= period_start),
    CONSTRAINT statement_adds_up CHECK (opening + debits - credits = closing)
);
CREATE INDEX statement_period_idx ON credit.statement (period_end);

CREATE TABLE credit.statement_line (
    statement_id     bigint NOT NULL REFERENCES credit.statement (id),
    section          text NOT NULL CHECK (section IN ('opening', 'activity', 'closing', 'open_item', 'aging', 'interest')),
    line             bigint NOT NULL,
    entry_date       date,
    kind             text,
    doc_no           text,
    detail           text,
    debit            numeric,
    credit           numeric,
    applied          numeric,
    balance          numeric,
    due_date         date,
    days             integer,
    bucket           text,
    promised_amount  numeric,
    promised_date    date,
    disputed_since   date,
    PRIMARY KEY (statement_id, section, line)
);
SELECT pg_catalog.pg_extension_config_dump('credit.statement', '');
SELECT pg_catalog.pg_extension_config_dump('credit.statement_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit.statement_line', '');

-- An issued statement went to the customer: it is never changed or deleted (the next period's
-- statement carries any correction). pg_credit alone writes them; see the grants.
CREATE FUNCTION credit._statement_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'credit.% is immutable', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege',
        DETAIL = 'An issued statement is a document the customer received; corrections appear in the next statement.';
END
$$;
CREATE TRIGGER statement_immutable BEFORE UPDATE OR DELETE ON credit.statement
    FOR EACH ROW EXECUTE FUNCTION credit._statement_immutable();
CREATE TRIGGER statement_no_truncate BEFORE TRUNCATE ON credit.statement
    FOR EACH STATEMENT EXECUTE FUNCTION credit._statement_immutable();
CREATE TRIGGER statement_line_immutable BEFORE UPDATE OR DELETE ON credit.statement_line
    FOR EACH ROW EXECUTE FUNCTION credit._statement_immutable();
CREATE TRIGGER statement_line_no_truncate BEFORE TRUNCATE ON credit.statement_line
    FOR EACH STATEMENT EXECUTE FUNCTION credit._statement_immutable();

COMMENT ON FUNCTION credit._ledger_entries(text, date, date) IS 'Internal: every ledger entry of a date range with the date it took effect (debits, credits, and applications that move nothing)';
COMMENT ON FUNCTION credit._statement_rows(date, text[], date[], numeric[]) IS 'Internal: statements of several customers over periods ending on one day, as rows (with the openings a statement run must show)';
COMMENT ON FUNCTION credit._statement_args(text, date, date) IS 'Internal: checks credit.statement arguments';
COMMENT ON FUNCTION credit._statement_immutable() IS 'Internal: issued statements are never changed';
COMMENT ON FUNCTION credit.statement(text, date, date) IS 'Statement of account for a period: opening balance, every entry with a running balance, closing balance (opening + debits - credits), open items at the end with aging, promises and disputes, and the aging per bucket';
COMMENT ON FUNCTION credit.statement_run(date, text) IS 'Issues the statements of every customer whose cycle (or the given cycle) ends on a date: numbered, immutable, once per customer and period, each announced as a statement_issued event; returns them';
COMMENT ON FUNCTION credit.statement_html(bigint, text) IS 'An issued statement as a self-contained printable HTML page (A4), in Chinese or English, with the balance confirmation reply instructions';
COMMENT ON TABLE credit.statement_setting IS 'Per-customer statement settings over the policy''s: cycle (weekly, monthly, quarterly, none), minimum balance, language of the document';
COMMENT ON COLUMN credit.statement_setting.customer IS 'Customer';
COMMENT ON COLUMN credit.statement_setting.cycle IS 'weekly | monthly | quarterly | none (no statements); NULL: the policy''s, else monthly';
COMMENT ON COLUMN credit.statement_setting.min_balance IS 'No statement unless the closing balance reaches it; NULL: the policy''s, else none';
COMMENT ON COLUMN credit.statement_setting.language IS 'zh | en: the statement document''s language';
COMMENT ON COLUMN credit.statement_setting.note IS 'Free text';
COMMENT ON TABLE credit.statement IS 'Issued statements of account (credit.statement_run): numbered, immutable, one per customer and period';
COMMENT ON COLUMN credit.statement.id IS 'Statement id';
COMMENT ON COLUMN credit.statement.statement_no IS 'Statement number (ST-<period end>-<id>)';
COMMENT ON COLUMN credit.statement.customer IS 'Customer';
COMMENT ON COLUMN credit.statement.period_start IS 'First day of the period';
COMMENT ON COLUMN credit.statement.period_end IS 'Last day of the period';
COMMENT ON COLUMN credit.statement.cycle IS 'weekly | monthly | quarterly';
COMMENT ON COLUMN credit.statement.currency IS 'The account''s currency';
COMMENT ON COLUMN credit.statement.language IS 'zh | en';
COMMENT ON COLUMN credit.statement.opening IS 'The last statement''s closing balance (the first statement: the balance the day before the period)';
COMMENT ON COLUMN credit.statement.debits IS 'Invoices and reversals in the period (and a prior-period adjustment that raises the balance)';
COMMENT ON COLUMN credit.statement.credits IS 'Payments, credit notes, cancellations and write-offs in the period (and a prior-period adjustment that lowers it)';
COMMENT ON COLUMN credit.statement.closing IS 'Balance at the end of the period (opening + debits - credits)';
COMMENT ON COLUMN credit.statement.overdue IS 'Open invoice amounts past due at the end of the period';
COMMENT ON COLUMN credit.statement.issued_at IS 'When it was issued';
COMMENT ON COLUMN credit.statement.issued_by IS 'Who issued it';
COMMENT ON TABLE credit.statement_line IS 'The rows of each issued statement, as credit.statement computed them when it was issued';
COMMENT ON COLUMN credit.statement_line.statement_id IS 'The statement';
COMMENT ON COLUMN credit.statement_line.section IS 'opening | activity | closing | open_item | aging';
COMMENT ON COLUMN credit.statement_line.line IS 'Order within the section (aging: the bucket''s rank)';
COMMENT ON COLUMN credit.statement_line.entry_date IS 'Date the entry took effect (open items: document date)';
COMMENT ON COLUMN credit.statement_line.kind IS 'invoice, payment, credit_note, cancellation, write_off, *_reversal, application, application_reversed, prior_period_adjustment (posted after the last statement, dated before this period); open items: invoice, payment, credit_note';
COMMENT ON COLUMN credit.statement_line.doc_no IS 'Document number (applications: the invoice)';
COMMENT ON COLUMN credit.statement_line.detail IS 'Reason, or for an application the settlement applied';
COMMENT ON COLUMN credit.statement_line.debit IS 'What raised the balance';
COMMENT ON COLUMN credit.statement_line.credit IS 'What lowered the balance';
COMMENT ON COLUMN credit.statement_line.applied IS 'Applications: the amount applied (negative when undone)';
COMMENT ON COLUMN credit.statement_line.balance IS 'Running balance (open items: the open amount; aging: the bucket''s total)';
COMMENT ON COLUMN credit.statement_line.due_date IS 'Open items: due date';
COMMENT ON COLUMN credit.statement_line.days IS 'Open items: days past due at the end of the period';
COMMENT ON COLUMN credit.statement_line.bucket IS 'Open items and aging: the aging bucket';
COMMENT ON COLUMN credit.statement_line.promised_amount IS 'Open items: a promise to pay open at the end of the period';
COMMENT ON COLUMN credit.statement_line.promised_date IS 'Open items: the date promised';
COMMENT ON COLUMN credit.statement_line.disputed_since IS 'Open items: in dispute since';
