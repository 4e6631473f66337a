-- Credit accounts: one row per customer, the row every guarded order updates. DBAs manage the
-- limit, terms, status, type, region and group; pg_credit maintains the exposure counters
-- (src/store/account.rs moves them) and records every change (credit._account_history, audit.sql).
--
-- No CHECK constraints, generated columns or WHEN clauses here: PostgreSQL re-parses those on every
-- executor start, i.e. on every guarded order's UPDATE of this row. Validation is a trigger that
-- fires only when a DBA-managed column is written (credit._validate_account, below).
CREATE TABLE credit.account (
    customer          text PRIMARY KEY,
    credit_limit      numeric NOT NULL,
    -- NULL: terms come from the grade, then the policy, then 30 days (credit.terms_for).
    terms_days        int,
    status            text NOT NULL DEFAULT 'active',
    customer_type     text,
    region            text,
    currency          char(3),
    grade             text,
    -- Group head whose limit this customer shares (one level: a head has no parent).
    parent            text,
    -- A temporary limit replaces credit_limit through temporary_limit_until (inclusive), then
    -- lapses by itself: every check compares with the limit in force today, no job needed.
    temporary_limit        numeric,
    temporary_limit_until  date,
    -- Maintained by pg_credit; read-only to users (credit._protect_account refuses writes).
    open_ar           numeric NOT NULL DEFAULT 0,
    unapplied_credit  numeric NOT NULL DEFAULT 0,
    open_orders       numeric NOT NULL DEFAULT 0,
    exposure          numeric NOT NULL DEFAULT 0,   -- open_ar - unapplied_credit + open_orders
    member_exposure   numeric NOT NULL DEFAULT 0,   -- a group head: sum of its members' exposure
    oldest_open_due   date,                         -- due date of the oldest open, undisputed invoice
    -- Set by collections (a dunning level with action 'hold'): the day the account was put on hold.
    -- NULL when the hold, if any, is a person's; collections lifts only its own holds.
    collection_hold_since date,
    legal_referred_on     date,                     -- first legal referral by collections
    -- The customer's policy (credit.policy), copied here so the guard reads one row; kept in step
    -- when policies or the customer's type or region change.
    policy_max_limit          numeric,
    policy_warn_ratio         numeric,
    policy_overdue_block_days int,
    policy_prepayment_only    boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);  -- room for HOT updates: every order updates its customer's row
CREATE INDEX account_parent_idx ON credit.account (parent) WHERE parent IS NOT NULL;

-- The account triggers written in Rust (src/accounts.rs; src/pg/entry.rs has their calling convention).
CREATE FUNCTION credit._account_insert() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '_account_insert_wrapper';
CREATE FUNCTION credit._account_derive() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '_account_derive_wrapper';
CREATE FUNCTION credit._limit_control() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '_limit_control_wrapper';

CREATE TRIGGER account_insert BEFORE INSERT ON credit.account
    FOR EACH ROW EXECUTE FUNCTION credit._account_insert();
CREATE FUNCTION credit._protect_account() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'credit_protect_account';
-- UPDATE OF: fires only when the statement writes a maintained column (the guard's UPDATE does, and
-- passes at once as pg_credit's own write); a DBA's UPDATE of credit_limit never calls it.
CREATE TRIGGER account_protect BEFORE UPDATE OF open_ar, unapplied_credit, open_orders, exposure, member_exposure,
    oldest_open_due, policy_max_limit, policy_warn_ratio, policy_overdue_block_days, policy_prepayment_only,
    collection_hold_since, legal_referred_on ON credit.account
    FOR EACH ROW EXECUTE FUNCTION credit._protect_account();
-- Groups and the policy copy follow DBA changes; limits change only through approval.
CREATE TRIGGER account_derive BEFORE DELETE OR UPDATE OF customer, parent, customer_type, region ON credit.account
    FOR EACH ROW EXECUTE FUNCTION credit._account_derive();
CREATE TRIGGER account_limit_control BEFORE UPDATE OF credit_limit, temporary_limit, temporary_limit_until ON credit.account
    FOR EACH ROW EXECUTE FUNCTION credit._limit_control();
-- With the fast path (shared_preload_libraries), shared memory caches account rows' decision columns;
-- every writer of a row drops its copy until it ends. ALWAYS: logical replication's apply and
-- restores with session_replication_role = replica write rows too.
CREATE FUNCTION credit._account_written() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'credit_account_written';
CREATE TRIGGER account_written BEFORE UPDATE OR DELETE ON credit.account
    FOR EACH ROW EXECUTE FUNCTION credit._account_written();
CREATE TRIGGER account_truncated BEFORE TRUNCATE ON credit.account
    FOR EACH STATEMENT EXECUTE FUNCTION credit._account_written();
ALTER TABLE credit.account ENABLE ALWAYS TRIGGER account_written, ENABLE ALWAYS TRIGGER account_truncated;
ALTER FUNCTION credit._account_derive() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION credit._account_insert() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION credit._validate_account() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.customer = '' THEN
        RAISE EXCEPTION 'customer must not be empty' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.credit_limit < 0 OR NEW.credit_limit > 1000000000000000 THEN  -- NaN sorts above every number
        RAISE EXCEPTION 'credit_limit % of customer "%" is out of range', NEW.credit_limit, NEW.customer
            USING ERRCODE = 'check_violation',
                  DETAIL = 'A credit limit is a finite amount from 0 (no credit) to 1000000000000000.';
    END IF;
    IF NEW.grade IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit.grade g WHERE g.grade = NEW.grade AND NOT g.retired) THEN
        RAISE EXCEPTION 'grade "%" of customer "%" does not exist', NEW.grade, NEW.customer
            USING ERRCODE = 'foreign_key_violation', HINT = 'credit.grade lists the grades.';
    END IF;
    IF NEW.terms_days NOT BETWEEN 0 AND 3650 THEN
        RAISE EXCEPTION 'terms_days % of customer "%" is out of range', NEW.terms_days, NEW.customer
            USING ERRCODE = 'check_violation', DETAIL = 'Payment terms are 0 to 3650 days.';
    END IF;
    IF NEW.status NOT IN ('active', 'hold', 'blacklisted') THEN
        RAISE EXCEPTION 'status "%" of customer "%" is not valid', NEW.status, NEW.customer
            USING ERRCODE = 'check_violation', DETAIL = 'Valid statuses: active, hold, blacklisted.';
    END IF;
    IF (NEW.temporary_limit IS NULL) <> (NEW.temporary_limit_until IS NULL) THEN
        RAISE EXCEPTION 'temporary_limit and temporary_limit_until of customer "%" go together', NEW.customer
            USING ERRCODE = 'check_violation', DETAIL = 'Set both (a temporary limit and its last day) or neither.';
    END IF;
    IF NEW.temporary_limit < 0 OR NEW.temporary_limit > 1000000000000000 THEN
        RAISE EXCEPTION 'temporary_limit % of customer "%" is out of range', NEW.temporary_limit, NEW.customer
            USING ERRCODE = 'check_violation';
    END IF;
    -- Amounts are compared exactly, never rounded (credit_core/src/money.rs, MAX_FRACTION_DIGITS).
    IF scale(trim_scale(NEW.credit_limit)) > 8 OR scale(trim_scale(NEW.temporary_limit)) > 8 THEN
        RAISE EXCEPTION 'the credit limit of customer "%" has more than 8 fractional digits', NEW.customer
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(NEW.temporary_limit_until) THEN
        RAISE EXCEPTION 'temporary_limit_until of customer "%" must be a finite date', NEW.customer
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.currency !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'currency "%" of customer "%" is not an ISO 4217 code', NEW.currency, NEW.customer
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER account_validate BEFORE INSERT OR UPDATE OF customer, credit_limit, terms_days, status, currency,
    temporary_limit, temporary_limit_until, grade ON credit.account FOR EACH ROW EXECUTE FUNCTION credit._validate_account();

SELECT pg_catalog.pg_extension_config_dump('credit.account', '');

-- Status changes with a recorded reason: credit.blacklist, credit.reinstate, and pg_credit's own
-- rules (a write-off or a legal referral may blacklist, by policy).
CREATE FUNCTION credit._set_status(customer text, reason text, new_status text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed boolean;
BEGIN
    PERFORM credit._internal('credit._set_status');
    IF customer IS NULL THEN
        RAISE EXCEPTION 'customer must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF reason IS NULL THEN
        RAISE EXCEPTION 'reason must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(reason) = '' OR btrim(customer) = '' THEN
        RAISE EXCEPTION 'customer and reason must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM credit.account a WHERE a.customer = _set_status.customer FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer "%" has no credit account', customer USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM credit._set_reason(reason);   -- on Citus, on the account's worker too
    UPDATE credit.account a SET status = new_status
     WHERE a.customer = _set_status.customer AND a.status <> new_status;
    changed := FOUND;
    PERFORM credit._set_reason('');
    RETURN changed;
END
$$;

CREATE FUNCTION credit.blacklist(customer text, reason text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('manager', 'blacklisting');
    SELECT credit._set_status(customer, reason, 'blacklisted');
$$;

CREATE FUNCTION credit.reinstate(customer text, reason text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT credit._require('manager', 'reinstating');
    SELECT credit._set_status(customer, reason, 'active');
$$;

COMMENT ON TABLE credit.account IS 'One credit account per customer (DBA-managed). open_ar, unapplied_credit, open_orders and exposure are maintained by pg_credit.';
COMMENT ON COLUMN credit.account.customer IS 'Customer key; orders of guarded tables match it by the text form of their customer column';
COMMENT ON COLUMN credit.account.credit_limit IS 'Credit limit; 0 means no credit (cash in advance or prepayment only)';
COMMENT ON COLUMN credit.account.terms_days IS 'The customer''s own payment terms in days; NULL = from its grade, then its policy, then 30 (credit.terms_for)';
COMMENT ON COLUMN credit.account.grade IS 'Credit grade (credit.grade), set by credit.regrade';
COMMENT ON COLUMN credit.account.parent IS 'Group head whose credit limit this customer shares (credit groups are one level deep)';
COMMENT ON COLUMN credit.account.member_exposure IS 'Maintained: for a group head, the sum of its members'' exposure';
COMMENT ON COLUMN credit.account.oldest_open_due IS 'Maintained: due date of the oldest open invoice not in dispute (the overdue rule reads it)';
COMMENT ON COLUMN credit.account.collection_hold_since IS 'Maintained: the day collections put the account on hold (NULL: no hold, or a person''s); collections lifts its own holds once the overdue invoices are paid';
COMMENT ON COLUMN credit.account.legal_referred_on IS 'Maintained: the day collections first referred one of the customer''s invoices to legal';
COMMENT ON COLUMN credit.account.policy_max_limit IS 'Maintained from credit.policy: the limit in force never exceeds it';
COMMENT ON COLUMN credit.account.policy_warn_ratio IS 'Maintained from credit.policy: near-limit warning line (share of the limit)';
COMMENT ON COLUMN credit.account.policy_overdue_block_days IS 'Maintained from credit.policy: new credit orders are refused while an invoice is more days past due';
COMMENT ON COLUMN credit.account.policy_prepayment_only IS 'Maintained from credit.policy: orders must be covered by money already received';
COMMENT ON COLUMN credit.account.status IS 'active | hold | blacklisted; only active accounts may take new credit orders';
COMMENT ON COLUMN credit.account.customer_type IS 'Customer type (for policies and reporting)';
COMMENT ON COLUMN credit.account.region IS 'Sales region (for policies and reporting)';
COMMENT ON COLUMN credit.account.currency IS 'ISO 4217 currency of the limit and documents';
COMMENT ON COLUMN credit.account.temporary_limit IS 'A temporary limit in force through temporary_limit_until instead of credit_limit';
COMMENT ON COLUMN credit.account.temporary_limit_until IS 'Last day of the temporary limit (inclusive); afterwards credit_limit applies again by itself';
COMMENT ON COLUMN credit.account.open_ar IS 'Maintained: sum of open invoice amounts';
COMMENT ON COLUMN credit.account.unapplied_credit IS 'Maintained: payments and credit notes not yet applied to an invoice';
COMMENT ON COLUMN credit.account.open_orders IS 'Maintained: sum of open orders in every guarded table';
COMMENT ON COLUMN credit.account.exposure IS 'Maintained: open_ar - unapplied_credit + open_orders (its own; a group head''s limit covers exposure + member_exposure)';
COMMENT ON COLUMN credit.account.created_at IS 'When the account was created';
COMMENT ON FUNCTION credit.exposure(text) IS 'Open receivables (net of unapplied credit) plus open orders of every guarded table';
COMMENT ON FUNCTION credit.available_credit(text) IS 'Limit in force minus exposure, and for a group member no more than the group has left (negative when over)';
COMMENT ON FUNCTION credit.check(text, numeric) IS 'The decision the guard would take for an order of this amount now, with every reason and warning; reserves nothing';
COMMENT ON FUNCTION credit.rebuild_exposure(text) IS 'Resets maintained columns to a full recomputation (one customer or all); returns how many accounts changed';
COMMENT ON FUNCTION credit._protect_account() IS 'Internal: refuses direct writes of maintained columns';
COMMENT ON FUNCTION credit._account_written() IS 'Internal: a write of an account row drops the copy the fast path caches in shared memory';
COMMENT ON FUNCTION credit._account_insert() IS 'Internal: initialises maintained columns of a new account';
COMMENT ON FUNCTION credit._validate_account() IS 'Internal: validates DBA-managed columns of credit.account';
COMMENT ON FUNCTION credit._account_derive() IS 'Internal: keeps group sums and the policy copy in step with account changes';
COMMENT ON FUNCTION credit._limit_control() IS 'Internal: refuses direct limit changes outside the admin role';
COMMENT ON FUNCTION credit.blacklist(text, text) IS 'Blacklists a customer (no new credit orders); returns false if already blacklisted. Recorded in credit.event with the reason.';
COMMENT ON FUNCTION credit.reinstate(text, text) IS 'Sets a blacklisted or held customer back to active; returns false if already active. Recorded in credit.event with the reason.';
COMMENT ON FUNCTION credit._set_status(text, text, text) IS 'Internal: status change with a recorded reason';
COMMENT ON FUNCTION credit._set_reason(text) IS 'Internal: the reason recorded with the transaction''s account changes from here on; on Citus also on the workers, with the person and caller behind them';
