-- Aging (账龄), receivables analytics and expected credit loss. Functions BI reads are SQL with
-- SQL-standard bodies (parsed at creation, immune to the caller's search_path) and simple enough
-- for the planner to inline, so queries over them plan like hand-written SQL (parallel scans
-- included).

-- ---------------------------------------------------------------------------------------------
-- Buckets. Shipped with five defaults; editable like any table. Restore-safe: pg_dump keeps only
-- rows a DBA touched (NOT is_default); deleting a default bucket retires it (kept, hidden) so a
-- restore does not bring it back; inserting at a default's or retired bucket's position replaces it.

CREATE TABLE credit.aging_bucket (
    position    int PRIMARY KEY,
    label       text NOT NULL,
    lower_days  int,     -- inclusive; NULL = no lower bound (the first bucket)
    upper_days  int,     -- inclusive; NULL = no upper bound (the last bucket)
    is_default  boolean NOT NULL DEFAULT false,
    retired     boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX aging_bucket_label_key ON credit.aging_bucket (label) WHERE NOT retired;
INSERT INTO credit.aging_bucket (position, label, lower_days, upper_days, is_default) VALUES
    (1, 'not due', NULL, 0, true),
    (2, '1-30', 1, 30, true),
    (3, '31-60', 31, 60, true),
    (4, '61-90', 61, 90, true),
    (5, 'over 90', 91, NULL, true);
SELECT pg_catalog.pg_extension_config_dump('credit.aging_bucket', 'WHERE NOT is_default');

CREATE TRIGGER aging_bucket_write BEFORE INSERT OR UPDATE OR DELETE ON credit.aging_bucket
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('position');

-- Checked at commit, so a DBA can rearrange buckets over several statements in one transaction.
CREATE FUNCTION credit._aging_bucket_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text := credit._aging_buckets_problem();
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid aging buckets: %', problem USING ERRCODE = 'check_violation',
            HINT = 'Active buckets, in position order, must cover every day exactly once: the first without lower_days, the last without upper_days, each starting the day after the previous one ends.';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER aging_bucket_check AFTER INSERT OR UPDATE OR DELETE ON credit.aging_bucket
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION credit._aging_bucket_check();

-- Bucket labels in order (credit._bucket_rank, in C, finds a day count's bucket).
CREATE FUNCTION credit._bucket_labels() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT array_agg(b.label ORDER BY b.position) FROM credit.aging_bucket b WHERE NOT b.retired;
END;

-- ---------------------------------------------------------------------------------------------
-- credit.aging: every document open as of a date.
-- Each UNION ALL branch is wrapped in its own subquery: PostgreSQL flattens a UNION ALL into one
-- append relation (so aggregates over it can run as parallel partial aggregates) only when each
-- branch's FROM holds a single item.
-- An invoice is open as of D when dated on or before D, for its amount minus what was applied to
-- it on or before D (= today's open amount plus what was applied after D). Unapplied credit
-- (payments, credit notes) as of D is shown as negative rows, aged by its own date.

CREATE FUNCTION credit.aging(as_of date DEFAULT current_date, basis text DEFAULT 'due')
RETURNS TABLE (customer text, doc_type text, doc_no text, doc_date date, due_date date,
               open_amount numeric, days integer, bucket text, bucket_position integer)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT o.customer, o.doc_type, o.doc_no, o.doc_date, o.due_date, o.open_amount, o.days,
           (SELECT credit._bucket_labels())[o.rank], o.rank
      FROM (
        SELECT s.customer, s.doc_type, s.doc_no, s.doc_date, s.due_date, s.open_amount, s.days,
               credit._bucket_rank(s.days) AS rank
          FROM (
            -- invoices open today with nothing applied to them after as_of: as they are
            SELECT * FROM (
              SELECT i.customer, 'invoice'::text AS doc_type, i.doc_no, i.doc_date, i.due_date, i.open_amount,
                     aging.as_of - CASE WHEN aging.basis = 'document' THEN i.doc_date ELSE i.due_date END AS days
                FROM credit.invoice i
               WHERE i.open_amount > 0 AND i.doc_date <= aging.as_of
                 AND (i.last_applied_on IS NULL OR i.last_applied_on <= aging.as_of)
                 AND credit._aging_args(aging.as_of, aging.basis)
            ) b
            UNION ALL
            -- invoices with money applied after as_of (open or settled today): add it back
            SELECT * FROM (
              SELECT i.customer, 'invoice'::text, i.doc_no, i.doc_date, i.due_date,
                     i.open_amount + (SELECT sum(a.amount) FROM credit.allocation a
                                       WHERE a.invoice_id = i.id AND a.applied_on > aging.as_of),
                     aging.as_of - CASE WHEN aging.basis = 'document' THEN i.doc_date ELSE i.due_date END
                FROM credit.invoice i
               WHERE i.last_applied_on > aging.as_of AND i.doc_date <= aging.as_of
                 AND credit._aging_args(aging.as_of, aging.basis)
            ) b
            UNION ALL
            -- unapplied payments and credit notes: unapplied today and untouched since as_of...
            SELECT * FROM (
              SELECT st.customer, st.kind, st.doc_no, st.doc_date, NULL::date, -st.unapplied, aging.as_of - st.doc_date
                FROM credit.settlement st
               WHERE st.unapplied > 0 AND st.kind NOT IN ('write_off', 'cancellation') AND st.doc_date <= aging.as_of
                 AND (st.last_applied_on IS NULL OR st.last_applied_on <= aging.as_of)
                 AND credit._aging_args(aging.as_of, aging.basis)
            ) b
            UNION ALL
            -- ...and those applied (or reversed) since: what was unapplied as of as_of. A reversal
            -- after as_of undid every application (negative allocations, added back here too) and
            -- took what was left: all of the amount counted until then.
            SELECT * FROM (
              SELECT st.customer, st.kind, st.doc_no, st.doc_date, NULL::date,
                     -(st.unapplied + coalesce((SELECT sum(a.amount) FROM credit.allocation a
                                                 WHERE a.settlement_id = st.id AND a.applied_on > aging.as_of), 0)
                       + CASE WHEN st.reversed_on > aging.as_of THEN st.amount ELSE 0 END),
                     aging.as_of - st.doc_date
                FROM credit.settlement st
               WHERE st.last_applied_on > aging.as_of AND st.kind NOT IN ('write_off', 'cancellation')
                 AND st.doc_date <= aging.as_of
                 AND credit._aging_args(aging.as_of, aging.basis)
            ) b
            UNION ALL
            -- No rows; there so the argument check runs even when a NULL as_of lets the planner
            -- drop every branch above (a STABLE call is never constant-folded).
            SELECT * FROM (
              SELECT NULL::text, NULL::text, NULL::text, NULL::date, NULL::date, NULL::numeric, NULL::integer
               WHERE NOT credit._aging_args(aging.as_of, aging.basis)
            ) b
          ) s
         -- A reversal after as_of can leave nothing open as of as_of on a touched document: no row.
         WHERE s.open_amount <> 0
      ) o;
END;

-- ---------------------------------------------------------------------------------------------
-- Views for BI (security_invoker: readers need SELECT on the credit tables, RLS applies).

CREATE VIEW credit.aging_detail WITH (security_invoker = true) AS
SELECT * FROM credit.aging(current_date, 'due');

-- Aggregated per customer before joining accounts, so the per-row work runs in parallel workers.
-- (due_date IS NOT NULL marks invoices: cheaper per row than comparing doc_type.)
CREATE VIEW credit.aging_by_customer WITH (security_invoker = true) AS
SELECT a.customer, a.region, a.customer_type,
       coalesce(g.not_due, 0) AS not_due, coalesce(g.days_1_30, 0) AS days_1_30,
       coalesce(g.days_31_60, 0) AS days_31_60, coalesce(g.days_61_90, 0) AS days_61_90,
       coalesce(g.over_90, 0) AS over_90, coalesce(g.later_buckets, 0) AS later_buckets,
       coalesce(g.not_due, 0) + coalesce(g.days_1_30, 0) + coalesce(g.days_31_60, 0)
         + coalesce(g.days_61_90, 0) + coalesce(g.over_90, 0) + coalesce(g.later_buckets, 0) AS total,
       coalesce(g.overdue, 0) AS overdue, g.oldest_days_past_due
  FROM credit.account a
  LEFT JOIN (
    SELECT x.customer,
           sum(x.open_amount) FILTER (WHERE x.bucket_position = 1) AS not_due,
           sum(x.open_amount) FILTER (WHERE x.bucket_position = 2) AS days_1_30,
           sum(x.open_amount) FILTER (WHERE x.bucket_position = 3) AS days_31_60,
           sum(x.open_amount) FILTER (WHERE x.bucket_position = 4) AS days_61_90,
           sum(x.open_amount) FILTER (WHERE x.bucket_position = 5) AS over_90,
           sum(x.open_amount) FILTER (WHERE x.bucket_position > 5) AS later_buckets,
           sum(x.open_amount) FILTER (WHERE x.due_date IS NOT NULL AND x.days > 0) AS overdue,
           max(x.days) FILTER (WHERE x.due_date IS NOT NULL AND x.days > 0) AS oldest_days_past_due
      FROM credit.aging(current_date, 'due') x
     GROUP BY x.customer) g ON g.customer = a.customer;

CREATE VIEW credit.aging_summary WITH (security_invoker = true) AS
SELECT g.customer, a.region, a.customer_type, g.bucket, g.bucket_position, sum(g.open_amount) AS amount
  FROM credit.aging(current_date, 'due') g
  JOIN credit.account a ON a.customer = g.customer
 GROUP BY g.customer, a.region, a.customer_type, g.bucket, g.bucket_position;

CREATE VIEW credit.aging_by_region WITH (security_invoker = true) AS
SELECT region, count(*) AS customers,
       sum(not_due) AS not_due, sum(days_1_30) AS days_1_30, sum(days_31_60) AS days_31_60,
       sum(days_61_90) AS days_61_90, sum(over_90) AS over_90, sum(later_buckets) AS later_buckets,
       sum(total) AS total, sum(overdue) AS overdue, max(oldest_days_past_due) AS oldest_days_past_due
  FROM credit.aging_by_customer GROUP BY region;

CREATE VIEW credit.aging_by_customer_type WITH (security_invoker = true) AS
SELECT customer_type, count(*) AS customers,
       sum(not_due) AS not_due, sum(days_1_30) AS days_1_30, sum(days_31_60) AS days_31_60,
       sum(days_61_90) AS days_61_90, sum(over_90) AS over_90, sum(later_buckets) AS later_buckets,
       sum(total) AS total, sum(overdue) AS overdue, max(oldest_days_past_due) AS oldest_days_past_due
  FROM credit.aging_by_customer GROUP BY customer_type;

-- ---------------------------------------------------------------------------------------------
-- Payment behaviour. A payment experience is one payment applied to one invoice: days late =
-- applied_on - due_date, weighted by the amount applied. Credit notes and write-offs are not
-- payments and do not count; a reversed payment (a bounced cheque) was never one.

CREATE VIEW credit.payment_experience WITH (security_invoker = true) AS
SELECT i.customer, i.doc_no, i.doc_date, i.due_date, a.applied_on AS paid_on, a.amount,
       a.applied_on - i.due_date AS days_late, a.applied_on - i.doc_date AS days_to_pay
  FROM credit.allocation a
  JOIN credit.settlement s ON s.customer = a.customer AND s.id = a.settlement_id AND s.kind = 'payment' AND s.reversed_on IS NULL
  JOIN credit.invoice i ON i.customer = a.customer AND i.id = a.invoice_id;

-- Days late at the payment that closes the invoice: one experience per invoice that a payment
-- settled last (its last application, dated by the rule above, is a payment's), weighted by the
-- invoice's amount.
CREATE VIEW credit.invoice_payment_experience WITH (security_invoker = true) AS
SELECT i.customer, i.doc_no, i.doc_date, i.due_date, c.applied_on AS paid_on, i.amount,
       c.applied_on - i.due_date AS days_late, c.applied_on - i.doc_date AS days_to_pay
  FROM credit.invoice i
  CROSS JOIN LATERAL (SELECT a.applied_on, s.kind FROM credit.allocation a
                         JOIN credit.settlement s ON s.customer = a.customer AND s.id = a.settlement_id
                       WHERE a.customer = i.customer AND a.invoice_id = i.id AND a.reversal_id IS NULL AND s.reversed_on IS NULL
                       ORDER BY a.applied_on DESC, a.id DESC LIMIT 1) c
 WHERE i.open_amount = 0 AND c.kind = 'payment';

-- The experiences payment behaviour and the score count: per payment (the default) or at the
-- closing payment, as the setting pg_credit.days_late_basis says.
CREATE VIEW credit.days_late_experience WITH (security_invoker = true) AS
SELECT e.customer, e.doc_no, e.doc_date, e.due_date, e.paid_on, e.amount, e.days_late, e.days_to_pay
  FROM credit.payment_experience e
 WHERE coalesce(current_setting('pg_credit.days_late_basis', true), 'payment') <> 'closing'
UNION ALL
SELECT e.customer, e.doc_no, e.doc_date, e.due_date, e.paid_on, e.amount, e.days_late, e.days_to_pay
  FROM credit.invoice_payment_experience e
 WHERE current_setting('pg_credit.days_late_basis', true) = 'closing';

CREATE VIEW credit.payment_behavior WITH (security_invoker = true) AS
SELECT a.customer, a.region, a.customer_type,
       p.experiences,
       p.average_days_to_pay,
       p.weighted_days_late,
       p.on_time_ratio,
       CASE WHEN p.experiences >= 3 THEN p.paydex END AS paydex,
       coalesce(o.overdue_amount, 0) AS overdue_amount,
       o.oldest_overdue_days,
       (SELECT max(s.doc_date) FROM credit.settlement s WHERE s.customer = a.customer AND s.kind = 'payment' AND s.reversed_on IS NULL) AS last_payment_date
  FROM credit.account a
  LEFT JOIN (SELECT e.customer, count(*) AS experiences,
                    round(avg(e.days_to_pay), 1) AS average_days_to_pay,
                    credit.weighted_days_late(e.days_late, e.amount) AS weighted_days_late,
                    credit.on_time_ratio(e.days_late, e.amount, 0) AS on_time_ratio,
                    credit.paydex(e.days_late, e.amount) AS paydex
               FROM credit.days_late_experience e GROUP BY e.customer) p ON p.customer = a.customer
  LEFT JOIN (SELECT i.customer, sum(i.open_amount) AS overdue_amount,
                    max(current_date - i.due_date) AS oldest_overdue_days
               FROM credit.invoice i WHERE i.open_amount > 0 AND i.due_date < current_date
              GROUP BY i.customer) o ON o.customer = a.customer;

-- ---------------------------------------------------------------------------------------------
-- Receivables metrics (credit.receivables_metrics is Rust; these pick one figure each).

CREATE FUNCTION credit.dso(period_start date, period_end date, customer text DEFAULT NULL) RETURNS numeric
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC SELECT m.dso FROM credit.receivables_metrics(period_start, period_end, customer) m; END;
CREATE FUNCTION credit.best_possible_dso(period_start date, period_end date, customer text DEFAULT NULL) RETURNS numeric
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC SELECT m.best_possible_dso FROM credit.receivables_metrics(period_start, period_end, customer) m; END;
CREATE FUNCTION credit.average_days_delinquent(period_start date, period_end date, customer text DEFAULT NULL) RETURNS numeric
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC SELECT m.average_days_delinquent FROM credit.receivables_metrics(period_start, period_end, customer) m; END;
CREATE FUNCTION credit.count_back_dso(period_end date, customer text DEFAULT NULL, month_days text DEFAULT 'calendar') RETURNS numeric
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC SELECT m.count_back_dso FROM credit.receivables_metrics(period_end, period_end, customer, NULL, month_days) m; END;
CREATE FUNCTION credit.cei(period_start date, period_end date, customer text DEFAULT NULL, n_months numeric DEFAULT NULL) RETURNS numeric
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC SELECT m.cei FROM credit.receivables_metrics(period_start, period_end, customer, n_months) m; END;

-- ---------------------------------------------------------------------------------------------
-- Provision for bad debts (坏账准备; IFRS 9 simplified approach): a loss rate per bucket,
-- optionally per customer_type and/or region. The most specific rate wins: type and region, then
-- type, then region, then the general rate.

CREATE TABLE credit.provision_rate (
    bucket         text NOT NULL,
    customer_type  text,
    region         text,
    loss_rate      numeric NOT NULL CHECK (loss_rate >= 0 AND loss_rate <= 1),
    CONSTRAINT provision_rate_key UNIQUE NULLS NOT DISTINCT (bucket, customer_type, region)
);
SELECT pg_catalog.pg_extension_config_dump('credit.provision_rate', '');

CREATE FUNCTION credit.expected_loss(as_of date DEFAULT current_date)
RETURNS TABLE (customer text, customer_type text, region text, bucket text, bucket_position integer,
               gross_amount numeric, loss_rate numeric, expected_loss numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH detail AS (
        SELECT g.customer, a.customer_type, a.region, g.bucket, g.bucket_position,
               sum(g.open_amount) AS gross_amount,
               (SELECT r.loss_rate FROM credit.provision_rate r
                 WHERE r.bucket = g.bucket
                   AND (r.customer_type IS NULL OR r.customer_type = a.customer_type)
                   AND (r.region IS NULL OR r.region = a.region)
                 ORDER BY (r.customer_type IS NOT NULL) DESC, (r.region IS NOT NULL) DESC
                 LIMIT 1) AS loss_rate
          FROM credit.aging(expected_loss.as_of, 'due') g
          JOIN credit.account a ON a.customer = g.customer
         WHERE g.doc_type = 'invoice'
         GROUP BY g.customer, a.customer_type, a.region, g.bucket, g.bucket_position)
    SELECT d.customer, d.customer_type, d.region, d.bucket, d.bucket_position, d.gross_amount,
           d.loss_rate, d.gross_amount * d.loss_rate
      FROM detail d
    UNION ALL
    -- the total: unrounded products summed, rounded once
    SELECT NULL, NULL, NULL, NULL, NULL, sum(d.gross_amount), NULL, round(sum(d.gross_amount * d.loss_rate), 2)
      FROM detail d;
END;

-- The provision adjustment to book (坏账准备的计提或冲回): the allowance the matrix requires as of a
-- day against the allowance already on the books; positive: increase it (debit bad-debt expense),
-- negative: release the excess.
CREATE FUNCTION credit.provision_adjustment(as_of date, allowance_on_books numeric)
RETURNS TABLE (required numeric, on_books numeric, adjustment numeric, entry text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    need numeric;
BEGIN
    IF as_of IS NULL OR allowance_on_books IS NULL THEN
        RAISE EXCEPTION 'as_of and allowance_on_books must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (allowance_on_books >= 0 AND allowance_on_books <= 1000000000000000) THEN   -- NaN fails both
        RAISE EXCEPTION 'allowance_on_books % is not an amount from 0 to 10^15', allowance_on_books
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The allowance account''s credit balance, as a positive amount.';
    END IF;
    SELECT coalesce(e.expected_loss, 0) INTO need FROM credit.expected_loss(as_of) e WHERE e.customer IS NULL;
    need := coalesce(need, 0);
    RETURN QUERY SELECT need, allowance_on_books, need - allowance_on_books,
        CASE WHEN need > allowance_on_books THEN 'increase: debit bad-debt expense, credit the allowance'
             WHEN need < allowance_on_books THEN 'release: debit the allowance, credit bad-debt expense'
             ELSE 'none' END;
END
$$;

-- Roll rates: for each month-end pair over the last `months` months, the share of each bucket's
-- invoice balance that was still open one bucket later a month on. Loss rate of a bucket = product
-- of the roll rates from it to the last bucket x final_loss_rate (the last bucket's own rate).
CREATE FUNCTION credit._roll_rates_args(period_end date, months integer, final_loss_rate numeric) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF period_end IS NULL OR months IS NULL OR final_loss_rate IS NULL THEN
        RAISE EXCEPTION 'period_end, months and final_loss_rate must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(period_end) THEN
        RAISE EXCEPTION 'period_end must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF months NOT BETWEEN 1 AND 600 THEN
        RAISE EXCEPTION 'months % is out of range', months USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Roll rates look back 1 to 600 months.';
    END IF;
    IF NOT (final_loss_rate >= 0 AND final_loss_rate <= 1) THEN   -- NaN fails both
        RAISE EXCEPTION 'final_loss_rate % is not a rate between 0 and 1', final_loss_rate
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION credit.roll_rates(period_end date DEFAULT current_date, months integer DEFAULT 12,
                                  final_loss_rate numeric DEFAULT 1)
RETURNS TABLE (bucket text, bucket_position integer, balance numeric, rolled_forward numeric,
               roll_rate numeric, loss_rate numeric)
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC
    SELECT credit._roll_rates_args(roll_rates.period_end, roll_rates.months, roll_rates.final_loss_rate);
    WITH steps AS (
        SELECT (roll_rates.period_end - make_interval(months => k))::date AS d0,
               (roll_rates.period_end - make_interval(months => k - 1))::date AS d1
          FROM generate_series(1, roll_rates.months) k),
    moves AS (
        SELECT g0.bucket_position AS pos, sum(g0.open_amount) AS balance,
               sum(g1.open_amount) FILTER (WHERE g1.bucket_position = g0.bucket_position + 1) AS rolled
          FROM steps s
          CROSS JOIN LATERAL credit.aging(s.d0, 'due') g0
          LEFT JOIN LATERAL credit.aging(s.d1, 'due') g1
                 ON g1.doc_type = 'invoice' AND g1.customer = g0.customer AND g1.doc_no = g0.doc_no
         WHERE g0.doc_type = 'invoice'
         GROUP BY g0.bucket_position),
    rates AS (
        SELECT b.position, b.label, row_number() OVER (ORDER BY b.position)::int AS rank,
               coalesce(m.balance, 0) AS balance, coalesce(m.rolled, 0) AS rolled,
               round(coalesce(m.rolled, 0) / nullif(m.balance, 0), 6) AS roll_rate
          FROM credit.aging_bucket b
          LEFT JOIN moves m ON m.pos = b.position
         WHERE NOT b.retired)
    SELECT r.label, r.rank, r.balance, r.rolled,
           CASE WHEN r.rank < (SELECT max(rank) FROM rates) THEN r.roll_rate END,
           -- A bucket nothing rolled forward from (or that never held a balance) stops the chain:
           -- its loss rate, and that of every bucket before it, is 0, not the final rate.
           round(roll_rates.final_loss_rate *
               CASE WHEN EXISTS (SELECT 1 FROM rates r3 WHERE r3.rank >= r.rank
                                   AND r3.rank < (SELECT max(rank) FROM rates) AND coalesce(r3.roll_rate, 0) = 0)
                    THEN 0
                    ELSE coalesce((SELECT exp(sum(ln(r2.roll_rate))) FROM rates r2
                                    WHERE r2.rank >= r.rank AND r2.rank < (SELECT max(rank) FROM rates)), 1) END, 6)
      FROM rates r ORDER BY r.rank;
END;

-- ---------------------------------------------------------------------------------------------
COMMENT ON FUNCTION credit._roll_rates_args(date, integer, numeric) IS 'Internal: validates credit.roll_rates arguments';
COMMENT ON TABLE credit.aging_bucket IS 'Aging buckets (DBA-managed): active rows in position order must cover every day exactly once; every aging output follows them';
COMMENT ON COLUMN credit.aging_bucket.position IS 'Order of the bucket';
COMMENT ON COLUMN credit.aging_bucket.label IS 'Bucket name shown in reports';
COMMENT ON COLUMN credit.aging_bucket.lower_days IS 'First day of the bucket (inclusive); NULL for the first bucket';
COMMENT ON COLUMN credit.aging_bucket.upper_days IS 'Last day of the bucket (inclusive); NULL for the last bucket';
COMMENT ON COLUMN credit.aging_bucket.is_default IS 'Shipped default, untouched (not dumped; recreated by CREATE EXTENSION)';
COMMENT ON COLUMN credit.aging_bucket.retired IS 'A deleted default bucket, kept hidden so a restore does not bring it back';
COMMENT ON FUNCTION credit.aging(date, text) IS 'Every document open as of a date, with days (past due, or since the document date with basis ''document'') and bucket; unapplied credit as negative rows';
COMMENT ON VIEW credit.aging_detail IS 'Aging as of today, one row per open document (basis: due date)';
COMMENT ON COLUMN credit.aging_detail.customer IS 'Customer';
COMMENT ON COLUMN credit.aging_detail.doc_type IS 'invoice, or payment / credit_note for unapplied credit';
COMMENT ON COLUMN credit.aging_detail.doc_no IS 'Document number (payment reference for payments)';
COMMENT ON COLUMN credit.aging_detail.doc_date IS 'Document date';
COMMENT ON COLUMN credit.aging_detail.due_date IS 'Due date (NULL for unapplied credit)';
COMMENT ON COLUMN credit.aging_detail.open_amount IS 'Amount open (negative for unapplied credit)';
COMMENT ON COLUMN credit.aging_detail.days IS 'Days past due (unapplied credit: days since its date)';
COMMENT ON COLUMN credit.aging_detail.bucket IS 'Aging bucket label';
COMMENT ON COLUMN credit.aging_detail.bucket_position IS 'Rank of the bucket (1 = first)';
COMMENT ON VIEW credit.aging_by_customer IS 'Aging as of today, one row per customer, one column per default bucket (by rank)';
COMMENT ON COLUMN credit.aging_by_customer.customer IS 'Customer';
COMMENT ON COLUMN credit.aging_by_customer.region IS 'Region';
COMMENT ON COLUMN credit.aging_by_customer.customer_type IS 'Customer type';
COMMENT ON COLUMN credit.aging_by_customer.not_due IS 'First bucket (default: not yet due)';
COMMENT ON COLUMN credit.aging_by_customer.days_1_30 IS 'Second bucket (default: 1-30 days past due)';
COMMENT ON COLUMN credit.aging_by_customer.days_31_60 IS 'Third bucket (default: 31-60 days past due)';
COMMENT ON COLUMN credit.aging_by_customer.days_61_90 IS 'Fourth bucket (default: 61-90 days past due)';
COMMENT ON COLUMN credit.aging_by_customer.over_90 IS 'Fifth bucket (default: over 90 days past due)';
COMMENT ON COLUMN credit.aging_by_customer.later_buckets IS 'Buckets after the fifth, if configured';
COMMENT ON COLUMN credit.aging_by_customer.total IS 'All open amounts, net of unapplied credit';
COMMENT ON COLUMN credit.aging_by_customer.overdue IS 'Open invoice amounts past their due date';
COMMENT ON COLUMN credit.aging_by_customer.oldest_days_past_due IS 'Days past due of the oldest overdue invoice';
COMMENT ON VIEW credit.aging_summary IS 'Aging as of today in long format: customer x configured bucket';
COMMENT ON COLUMN credit.aging_summary.customer IS 'Customer';
COMMENT ON COLUMN credit.aging_summary.region IS 'Region';
COMMENT ON COLUMN credit.aging_summary.customer_type IS 'Customer type';
COMMENT ON COLUMN credit.aging_summary.bucket IS 'Aging bucket label';
COMMENT ON COLUMN credit.aging_summary.bucket_position IS 'Rank of the bucket (1 = first)';
COMMENT ON COLUMN credit.aging_summary.amount IS 'Open amount in the bucket';
COMMENT ON VIEW credit.aging_by_region IS 'Aging as of today by region';
COMMENT ON VIEW credit.aging_by_customer_type IS 'Aging as of today by customer type';
COMMENT ON VIEW credit.payment_experience IS 'Each payment applied to an invoice, with days late and days to pay';
COMMENT ON COLUMN credit.payment_experience.customer IS 'Customer';
COMMENT ON COLUMN credit.payment_experience.doc_no IS 'Invoice number';
COMMENT ON COLUMN credit.payment_experience.doc_date IS 'Invoice date';
COMMENT ON COLUMN credit.payment_experience.due_date IS 'Invoice due date';
COMMENT ON COLUMN credit.payment_experience.paid_on IS 'Date the payment was applied';
COMMENT ON COLUMN credit.payment_experience.amount IS 'Amount applied';
COMMENT ON COLUMN credit.payment_experience.days_late IS 'paid_on - due_date (negative when early)';
COMMENT ON COLUMN credit.payment_experience.days_to_pay IS 'paid_on - doc_date';
COMMENT ON VIEW credit.payment_behavior IS 'Per customer: payment habits and what is overdue today';
COMMENT ON COLUMN credit.payment_behavior.customer IS 'Customer';
COMMENT ON COLUMN credit.payment_behavior.region IS 'Region';
COMMENT ON COLUMN credit.payment_behavior.customer_type IS 'Customer type';
COMMENT ON COLUMN credit.payment_behavior.experiences IS 'Payment experiences (payments applied to invoices)';
COMMENT ON COLUMN credit.payment_behavior.average_days_to_pay IS 'Average days from invoice date to payment, per experience';
COMMENT ON COLUMN credit.payment_behavior.weighted_days_late IS 'Amount-weighted days beyond the due date (signed)';
COMMENT ON COLUMN credit.payment_behavior.on_time_ratio IS 'Share of the amount paid on or before the due date';
COMMENT ON COLUMN credit.payment_behavior.paydex IS 'PAYDEX-like score 1-100 (NULL below 3 experiences); not D&B''s proprietary PAYDEX';
COMMENT ON COLUMN credit.payment_behavior.overdue_amount IS 'Open invoice amounts past due today';
COMMENT ON COLUMN credit.payment_behavior.oldest_overdue_days IS 'Days past due of the oldest overdue invoice';
COMMENT ON COLUMN credit.payment_behavior.last_payment_date IS 'Date of the latest payment';
COMMENT ON AGGREGATE credit.weighted_days_late(integer, numeric) IS 'Amount-weighted days late: sum(amount * days) / sum(amount), signed';
COMMENT ON AGGREGATE credit.weighted_days_late_clamped(integer, numeric) IS 'Amount-weighted days late with early payment counted as 0 days';
COMMENT ON AGGREGATE credit.paydex(integer, numeric) IS 'PAYDEX-like score 1-100: amount-weighted points by days beyond terms, linear through (-30,100) (-20,90) (-10,85) (0,80) (15,70) (22,60) (30,50) (60,40) (90,30) (120,20)';
COMMENT ON AGGREGATE credit.on_time_ratio(integer, integer) IS 'Share of items (by count) with days_late <= grace_days';
COMMENT ON AGGREGATE credit.on_time_ratio(integer, numeric, integer) IS 'Share of the amount with days_late <= grace_days';
COMMENT ON FUNCTION credit.dso(date, date, text) IS 'Days sales outstanding: ending AR / credit sales x days';
COMMENT ON FUNCTION credit.best_possible_dso(date, date, text) IS 'Best possible DSO: current AR / credit sales x days';
COMMENT ON FUNCTION credit.average_days_delinquent(date, date, text) IS 'ADD = DSO - best possible DSO';
COMMENT ON FUNCTION credit.count_back_dso(date, text, text) IS 'Count-back DSO at a date; month_days ''calendar'' or ''30''';
COMMENT ON FUNCTION credit.cei(date, date, text, numeric) IS 'Collection effectiveness index in percent; n_months is N in (B + S/N - E) / (B + S/N - E_current)';
COMMENT ON FUNCTION credit.receivables_metrics(date, date, text, numeric, text) IS 'All receivables metrics of a period in one row';
COMMENT ON TABLE credit.provision_rate IS 'Expected loss rates per aging bucket, optionally per customer_type and/or region';
COMMENT ON COLUMN credit.provision_rate.bucket IS 'Aging bucket label';
COMMENT ON COLUMN credit.provision_rate.customer_type IS 'Customer type, or NULL for any';
COMMENT ON COLUMN credit.provision_rate.region IS 'Region, or NULL for any';
COMMENT ON COLUMN credit.provision_rate.loss_rate IS 'Loss rate, 0 to 1';
COMMENT ON FUNCTION credit.expected_loss(date) IS 'Expected credit loss per customer and bucket (unrounded), plus a total row rounded once';
COMMENT ON FUNCTION credit.provision_adjustment(date, numeric) IS 'The provision adjustment to book: the allowance the provision matrix requires as of a day, against the allowance on the books (positive: increase, negative: release)';
COMMENT ON VIEW credit.invoice_payment_experience IS 'Days late at the payment that closes each invoice (one row per invoice settled last by a payment, weighted by the invoice''s amount)';
COMMENT ON COLUMN credit.invoice_payment_experience.customer IS 'Customer';
COMMENT ON COLUMN credit.invoice_payment_experience.doc_no IS 'Invoice number';
COMMENT ON COLUMN credit.invoice_payment_experience.doc_date IS 'Invoice date';
COMMENT ON COLUMN credit.invoice_payment_experience.due_date IS 'Due date';
COMMENT ON COLUMN credit.invoice_payment_experience.paid_on IS 'Date of the payment that closed it';
COMMENT ON COLUMN credit.invoice_payment_experience.amount IS 'Invoice amount (the weight)';
COMMENT ON COLUMN credit.invoice_payment_experience.days_late IS 'paid_on - due_date (negative: early)';
COMMENT ON COLUMN credit.invoice_payment_experience.days_to_pay IS 'paid_on - doc_date';
COMMENT ON VIEW credit.days_late_experience IS 'The payment experiences that payment behaviour and the score count: credit.payment_experience, or credit.invoice_payment_experience when pg_credit.days_late_basis = closing';
COMMENT ON COLUMN credit.days_late_experience.customer IS 'Customer';
COMMENT ON COLUMN credit.days_late_experience.doc_no IS 'Invoice number';
COMMENT ON COLUMN credit.days_late_experience.doc_date IS 'Invoice date';
COMMENT ON COLUMN credit.days_late_experience.due_date IS 'Due date';
COMMENT ON COLUMN credit.days_late_experience.paid_on IS 'Date the payment counts from';
COMMENT ON COLUMN credit.days_late_experience.amount IS 'Weight: the amount paid (per payment) or the invoice amount (closing)';
COMMENT ON COLUMN credit.days_late_experience.days_late IS 'paid_on - due_date (negative: early)';
COMMENT ON COLUMN credit.days_late_experience.days_to_pay IS 'paid_on - doc_date';
COMMENT ON FUNCTION credit.roll_rates(date, integer, numeric) IS 'Roll rates between buckets over past month-ends, and the loss rates they imply';
COMMENT ON FUNCTION credit._aging_args(date, text) IS 'Internal: validates aging arguments';
COMMENT ON FUNCTION credit._aging_buckets_problem() IS 'Internal: why the bucket table is invalid, or NULL';
COMMENT ON FUNCTION credit._bucket_rank(integer) IS 'Internal: the rank of the aging bucket a day count falls in';
COMMENT ON FUNCTION credit._bucket_labels() IS 'Internal: bucket labels in order';
COMMENT ON FUNCTION credit._aging_bucket_check() IS 'Internal: validates buckets at commit';
COMMENT ON COLUMN credit.aging_by_region.region IS 'Region';
COMMENT ON COLUMN credit.aging_by_region.customers IS 'Customers with open items';
COMMENT ON COLUMN credit.aging_by_region.not_due IS 'Open amount not yet due';
COMMENT ON COLUMN credit.aging_by_region.days_1_30 IS '1-30 days past due';
COMMENT ON COLUMN credit.aging_by_region.days_31_60 IS '31-60 days past due';
COMMENT ON COLUMN credit.aging_by_region.days_61_90 IS '61-90 days past due';
COMMENT ON COLUMN credit.aging_by_region.over_90 IS 'Over 90 days past due';
COMMENT ON COLUMN credit.aging_by_region.later_buckets IS 'Amount in buckets after the first five (custom bucket sets)';
COMMENT ON COLUMN credit.aging_by_region.total IS 'Open amount';
COMMENT ON COLUMN credit.aging_by_region.overdue IS 'Open amount past due';
COMMENT ON COLUMN credit.aging_by_region.oldest_days_past_due IS 'Days past due of the oldest open item';
COMMENT ON COLUMN credit.aging_by_customer_type.customer_type IS 'Customer type';
COMMENT ON COLUMN credit.aging_by_customer_type.customers IS 'Customers with open items';
COMMENT ON COLUMN credit.aging_by_customer_type.not_due IS 'Open amount not yet due';
COMMENT ON COLUMN credit.aging_by_customer_type.days_1_30 IS '1-30 days past due';
COMMENT ON COLUMN credit.aging_by_customer_type.days_31_60 IS '31-60 days past due';
COMMENT ON COLUMN credit.aging_by_customer_type.days_61_90 IS '61-90 days past due';
COMMENT ON COLUMN credit.aging_by_customer_type.over_90 IS 'Over 90 days past due';
COMMENT ON COLUMN credit.aging_by_customer_type.later_buckets IS 'Amount in buckets after the first five (custom bucket sets)';
COMMENT ON COLUMN credit.aging_by_customer_type.total IS 'Open amount';
COMMENT ON COLUMN credit.aging_by_customer_type.overdue IS 'Open amount past due';
COMMENT ON COLUMN credit.aging_by_customer_type.oldest_days_past_due IS 'Days past due of the oldest open item';
