-- pg_credit: SQL-language API, triggers on pg_credit's own tables, privileges, comments and dump
-- registration. Runs last (finalize), after the Rust functions exist.

-- ---------------------------------------------------------------------------------------------
-- Protection of maintained columns and ledger facts.

-- The account and ledger triggers written in Rust (src/trigger.rs has their calling convention).
CREATE FUNCTION credit._account_insert() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '_account_insert_wrapper';
CREATE FUNCTION credit._account_derive() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '_account_derive_wrapper';
CREATE FUNCTION credit._limit_control() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '_limit_control_wrapper';
CREATE FUNCTION credit._protect_ledger() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '_protect_ledger_wrapper';
CREATE FUNCTION credit._policy_changed() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '_policy_changed_wrapper';

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
ALTER FUNCTION credit._account_derive() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit.policy
    FOR EACH STATEMENT EXECUTE FUNCTION credit._policy_changed();
ALTER FUNCTION credit._policy_changed() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
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
    -- Amounts are compared exactly, never rounded (src/core/money.rs, MAX_FRACTION_DIGITS).
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
CREATE TRIGGER invoice_protect BEFORE INSERT OR UPDATE OR DELETE ON credit.invoice
    FOR EACH ROW EXECUTE FUNCTION credit._protect_ledger();
CREATE TRIGGER settlement_protect BEFORE INSERT OR UPDATE OR DELETE ON credit.settlement
    FOR EACH ROW EXECUTE FUNCTION credit._protect_ledger();
CREATE TRIGGER allocation_protect BEFORE INSERT OR UPDATE OR DELETE ON credit.allocation
    FOR EACH ROW EXECUTE FUNCTION credit._protect_ledger();

-- ---------------------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC. The DBA grants what each role needs (see README, "Privileges").

REVOKE ALL ON ALL TABLES IN SCHEMA credit FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA credit FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA credit FROM PUBLIC;
-- PostgreSQL checks EXECUTE on a row trigger's function when it clones the trigger onto a
-- partition the table's owner creates or attaches; the function refuses to act on a relation
-- credit.guard() did not register (sql/guard.sql).
GRANT EXECUTE ON FUNCTION credit._guard_row() TO PUBLIC;

-- credit.access_role and credit._require (the privilege model's check) are in sql/history.sql.
CREATE FUNCTION credit.grant_privileges(reader name DEFAULT 'credit_reader', clerk name DEFAULT 'credit_clerk',
                                        manager name DEFAULT 'credit_manager', admin name DEFAULT 'credit_admin')
RETURNS TABLE (level text, role name, functions int, tables int)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    levels text[] := ARRAY['reader', 'clerk', 'manager', 'admin'];
    roles name[] := ARRAY[reader, clerk, manager, admin];
    -- What each level may call, besides what the levels below it may.
    fns text[] := ARRAY[
        'aging available_credit average_days_delinquent best_possible_dso cei check count_back_dso dso effective_policy '
        'expected_loss explain_terms exposure on_time_ratio outbox_since paydex receivables_metrics roll_rates score '
        'terms_for verify verify_audit audit_head weighted_days_late weighted_days_late_clamped regrade act_for',
        'post_invoice post_payment post_credit_note log_contact dispute request_limit release_hold cancel_hold '
        'release_fitting_holds record_refusals',
        'write_off blacklist reinstate resolve_dispute run_collections run_daily approve reject',
        'guard unguard rebuild_exposure prune_outbox grant_privileges'];
    -- DBA-managed tables the admin level writes (the rest is written by pg_credit's functions).
    managed text[] := ARRAY['account', 'policy', 'term_tier', 'grade', 'score_weight', 'dunning_level', 'approval_rule',
                            'aging_bucket', 'provision_rate', 'trusted_proxy'];
    i int;
    j int;
    f regprocedure;
    nf int;
    nt int;
BEGIN
    PERFORM credit._require('admin', 'granting pg_credit''s privileges');
    FOR i IN 1..4 LOOP
        IF roles[i] IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = roles[i]) THEN
            RAISE EXCEPTION 'role "%" does not exist', roles[i] USING ERRCODE = 'undefined_object',
                HINT = format('CREATE ROLE %I first, or pass NULL to leave the %s level out.', roles[i], levels[i]);
        END IF;
    END LOOP;
    FOR i IN 1..4 LOOP
        CONTINUE WHEN roles[i] IS NULL;
        nf := 0;
        EXECUTE format('GRANT USAGE ON SCHEMA credit TO %I', roles[i]);
        FOR j IN 1..i LOOP
            FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
                      WHERE p.pronamespace = 'credit'::regnamespace
                        AND (p.proname = ANY (string_to_array(fns[j], ' '))
                             -- the read-only helpers the readable functions and views call
                             OR j = 1 AND p.proname ~ '^_' AND p.provolatile IN ('s', 'i'))
                      ORDER BY 1 LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, roles[i]);   -- aggregates too
                nf := nf + 1;
            END LOOP;
        END LOOP;
        -- Everyone reads everything (BI); the admin level also writes the DBA-managed tables.
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA credit TO %I', roles[i]);
        EXECUTE format('REVOKE SELECT ON credit.access_role, credit.outbox_lock, credit.collections_lock, credit.daily_lock FROM %I',
                       roles[i]);
        SELECT count(*) INTO nt FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'v')
           AND c.relname NOT IN ('access_role', 'outbox_lock', 'collections_lock', 'daily_lock');
        IF levels[i] = 'admin' THEN
            FOR j IN 1..array_length(managed, 1) LOOP
                EXECUTE format('GRANT INSERT, UPDATE, DELETE ON credit.%I TO %I', managed[j], roles[i]);
            END LOOP;
            EXECUTE format('GRANT SELECT ON credit.access_role TO %I', roles[i]);
            EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA credit TO %I', roles[i]);
        END IF;
        INSERT INTO credit.access_role AS a (level, role) VALUES (levels[i], roles[i])
        ON CONFLICT ON CONSTRAINT access_role_pkey DO UPDATE SET role = EXCLUDED.role;
        level := levels[i]; role := roles[i]; functions := nf; tables := nt;
        RETURN NEXT;
    END LOOP;
END
$$;
-- Credit policy is data in tables; writing it needs the admin level too (table privileges granted
-- too widely by hand do not open it). Statement-level: a bulk load checks once.
CREATE FUNCTION credit._policy_write_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._require('admin', format('changing credit.%s', TG_TABLE_NAME));
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['policy', 'term_tier', 'grade', 'score_weight', 'dunning_level', 'approval_rule',
                             'aging_bucket', 'provision_rate', 'trusted_proxy'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION credit._policy_write_check()', t || '_write_check', t);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION credit._policy_write_check() FROM PUBLIC;
COMMENT ON FUNCTION credit._policy_write_check() IS 'Internal: writing credit policy tables needs the admin level';

REVOKE ALL ON FUNCTION credit.grant_privileges(name, name, name, name) FROM PUBLIC;
COMMENT ON FUNCTION credit.grant_privileges(name, name, name, name) IS 'Grants pg_credit''s privileges to the roles of the four levels (reader, clerk, manager, admin; NULL leaves one out) and records them in credit.access_role (docs/privileges.md)';

-- ---------------------------------------------------------------------------------------------
-- pg_dump: user data in extension tables is dumped only when registered.

SELECT pg_catalog.pg_extension_config_dump('credit.account', '');
SELECT pg_catalog.pg_extension_config_dump('credit.invoice', '');
SELECT pg_catalog.pg_extension_config_dump('credit.settlement', '');
SELECT pg_catalog.pg_extension_config_dump('credit.allocation', '');
SELECT pg_catalog.pg_extension_config_dump('credit.guarded_table', '');
SELECT pg_catalog.pg_extension_config_dump('credit.invoice_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit.settlement_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit.allocation_id_seq', '');

-- ---------------------------------------------------------------------------------------------
-- Documentation in the catalog (shown by \d+ and BI tools).

COMMENT ON SCHEMA credit IS 'pg_credit: customer credit limits, receivables, exposure and the order guard';
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
COMMENT ON COLUMN credit.invoice.disputed IS 'In dispute (credit.dispute): out of dunning and the overdue rule until resolved';
COMMENT ON COLUMN credit.invoice.legal_referred_on IS 'The day collections referred it to legal';
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

COMMENT ON TABLE credit.invoice IS 'Receivables ledger: invoices, posted with credit.post_invoice; open_amount falls as money is applied';
COMMENT ON COLUMN credit.invoice.id IS 'Ledger id';
COMMENT ON COLUMN credit.invoice.customer IS 'Customer (credit.account)';
COMMENT ON COLUMN credit.invoice.doc_no IS 'Invoice number, unique per customer';
COMMENT ON COLUMN credit.invoice.doc_date IS 'Invoice date';
COMMENT ON COLUMN credit.invoice.due_date IS 'Due date';
COMMENT ON COLUMN credit.invoice.amount IS 'Invoiced amount';
COMMENT ON COLUMN credit.invoice.open_amount IS 'Amount still unpaid (amount minus allocations)';
COMMENT ON COLUMN credit.invoice.last_applied_on IS 'Latest date money was applied to it (aging as of an earlier date adds such money back)';
COMMENT ON COLUMN credit.invoice.posted_at IS 'When it was posted';

COMMENT ON TABLE credit.settlement IS 'Receivables ledger: payments, credit notes and write-offs (everything that lowers what a customer owes)';
COMMENT ON COLUMN credit.settlement.id IS 'Ledger id';
COMMENT ON COLUMN credit.settlement.customer IS 'Customer (credit.account)';
COMMENT ON COLUMN credit.settlement.kind IS 'payment | credit_note | write_off';
COMMENT ON COLUMN credit.settlement.doc_no IS 'Credit note number or payment reference, unique per customer and kind';
COMMENT ON COLUMN credit.settlement.doc_date IS 'Payment, credit note or write-off date';
COMMENT ON COLUMN credit.settlement.amount IS 'Amount';
COMMENT ON COLUMN credit.settlement.unapplied IS 'Part not yet applied to any invoice (unapplied credit)';
COMMENT ON COLUMN credit.settlement.last_applied_on IS 'Latest date part of it was applied to an invoice';
COMMENT ON COLUMN credit.settlement.reason IS 'Why (credit notes, write-offs)';
COMMENT ON COLUMN credit.settlement.posted_at IS 'When it was posted';

COMMENT ON TABLE credit.allocation IS 'Receivables ledger: which settlement paid how much of which invoice, and on what date';
COMMENT ON COLUMN credit.allocation.id IS 'Ledger id';
COMMENT ON COLUMN credit.allocation.settlement_id IS 'The payment, credit note or write-off';
COMMENT ON COLUMN credit.allocation.invoice_id IS 'The invoice';
COMMENT ON COLUMN credit.allocation.amount IS 'Amount applied';
COMMENT ON COLUMN credit.allocation.applied_on IS 'Date the amount counts as settled (the later of the settlement and invoice dates)';

COMMENT ON TABLE credit.guarded_table IS 'Application tables whose open orders count toward exposure (credit.guard / credit.unguard), with their partitions and inheritance children';
COMMENT ON COLUMN credit.guarded_table.table_name IS 'The guarded table';
COMMENT ON COLUMN credit.guarded_table.customer_column IS 'Column holding the customer (any type; matched by its text form)';
COMMENT ON COLUMN credit.guarded_table.amount_column IS 'Column holding the order amount (numeric or integer)';
COMMENT ON COLUMN credit.guarded_table.status_column IS 'Column holding the order status, or NULL: every row is open';
COMMENT ON COLUMN credit.guarded_table.open_statuses IS 'Statuses that count as open';
COMMENT ON COLUMN credit.guarded_table.mode IS 'reject: refuse orders that fail a credit rule; hold: save them with status hold_value and queue them';
COMMENT ON COLUMN credit.guarded_table.hold_value IS 'Status given to held orders (hold mode)';
COMMENT ON COLUMN credit.guarded_table.key_columns IS 'Primary key naming held rows (hold mode)';
COMMENT ON COLUMN credit.guarded_table.guarded_at IS 'When the guard was attached';
COMMENT ON COLUMN credit.guarded_table.guarded_by IS 'Who attached it';
COMMENT ON COLUMN credit.guarded_table.root IS 'The table credit.guard() was called on (itself for it)';
COMMENT ON COLUMN credit.guarded_table.kind IS 'table (credit.guard was called on it), partition or child (guarded with it, created or attached at any time)';

COMMENT ON FUNCTION credit.post_invoice(text, text, numeric, date, date, text) IS 'Posts an invoice; returns its id. Due date defaults to doc_date + credit.terms_for(customer, amount, product_category); unapplied credit is applied to it.';
COMMENT ON FUNCTION credit.post_payment(text, numeric, date, text, text) IS 'Posts a payment, applied to the named invoice or oldest due first; an overpayment stays as unapplied credit. Returns the settlement id.';
COMMENT ON FUNCTION credit.post_credit_note(text, text, numeric, text, date, text) IS 'Posts a credit note, applied to the named invoice or oldest due first; the rest is unapplied credit. Returns the settlement id.';
COMMENT ON FUNCTION credit.write_off(text, text, numeric, date, text) IS 'Writes off an invoice''s open amount (all of it by default) as a bad debt. Returns the settlement id.';
COMMENT ON FUNCTION credit.exposure(text) IS 'Open receivables (net of unapplied credit) plus open orders of every guarded table';
COMMENT ON FUNCTION credit.available_credit(text) IS 'Limit in force minus exposure, and for a group member no more than the group has left (negative when over)';
COMMENT ON FUNCTION credit.check(text, numeric) IS 'The decision the guard would take for an order of this amount now, with every reason and warning; reserves nothing';
COMMENT ON FUNCTION credit.guard(regclass, name, name, name, text[], text, text) IS 'Attaches the credit guard to an order table: open orders count toward exposure; an order that fails a credit rule is refused (mode reject, SQLSTATE 23514) or saved with its status set to hold_value and queued in credit.order_hold (mode hold)';
COMMENT ON FUNCTION credit.unguard(regclass) IS 'Removes the credit guard from a table; its open orders stop counting';
COMMENT ON FUNCTION credit.verify() IS 'Customers whose stored exposure differs from a full recomputation from the source rows; empty when consistent';
COMMENT ON FUNCTION credit.rebuild_exposure(text) IS 'Resets maintained columns to a full recomputation (one customer or all); returns how many accounts changed';
COMMENT ON FUNCTION credit._guard_row() IS 'Internal: the guard''s row trigger';
COMMENT ON FUNCTION credit._guard_truncate() IS 'Internal: the guard''s TRUNCATE trigger';
COMMENT ON FUNCTION credit._protect_account() IS 'Internal: refuses direct writes of maintained columns';
COMMENT ON FUNCTION credit._account_insert() IS 'Internal: initialises maintained columns of a new account';
COMMENT ON FUNCTION credit._validate_account() IS 'Internal: validates DBA-managed columns of credit.account';
COMMENT ON FUNCTION credit._protect_ledger() IS 'Internal: refuses direct writes of ledger facts';
COMMENT ON FUNCTION credit._open_orders_query(oid) IS 'Internal: SQL text selecting open orders of guarded tables';
COMMENT ON FUNCTION credit._actual_exposure() IS 'Internal: exposure recomputed from source rows';
COMMENT ON FUNCTION credit._recomputed() IS 'Internal: every maintained account column recomputed from source rows';
COMMENT ON FUNCTION credit._account_derive() IS 'Internal: keeps group sums and the policy copy in step with account changes';
COMMENT ON FUNCTION credit._limit_control() IS 'Internal: refuses direct limit changes outside the admin role';
COMMENT ON FUNCTION credit._policy_changed() IS 'Internal: copies changed policies to the accounts';
COMMENT ON FUNCTION credit._apply_limit(text, numeric, date, text) IS 'Internal: applies an approved limit';
COMMENT ON FUNCTION credit._default_row_write() IS 'Internal: keeps shipped default rows restore-safe';
COMMENT ON FUNCTION credit.terms_for(text, numeric, text) IS 'Payment terms in days for an order: the customer''s own, else its grade''s, else its policy''s, else 30; a matching amount tier lengthens them';
COMMENT ON FUNCTION credit.explain_terms(text, numeric, text) IS 'Payment terms for an order and where they come from (account, grade, policy, default, tier)';
COMMENT ON FUNCTION credit.effective_policy(text, text) IS 'The policy in force for a customer, field by field, and the matching policy rows, most specific first';
COMMENT ON FUNCTION credit.score(text, date) IS 'Credit score 0-100 as of a date, its grade, and every component (raw value, points, weight)';
COMMENT ON FUNCTION credit.regrade(date, boolean) IS 'Re-grades every customer; dry_run shows what would change. Decreases apply at once, large increases become limit requests.';
COMMENT ON FUNCTION credit._calling_user() IS 'Internal: the user that called a SECURITY DEFINER function';
COMMENT ON FUNCTION credit._on_sql_drop() IS 'Internal: keeps exposure right when a guarded table is dropped';
