-- Privileges (finalize: runs after every object exists). Nothing for PUBLIC; credit.grant_privileges()
-- grants each level its functions and tables; DBA-managed tables need the admin level to write.

REVOKE ALL ON ALL TABLES IN SCHEMA credit FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA credit FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA credit FROM PUBLIC;
-- PostgreSQL checks EXECUTE on a row trigger's function when it clones the trigger onto a
-- partition the table's owner creates or attaches; the function refuses to act on a relation
-- credit.guard() did not register (guard.sql). Citus creates a shard's triggers as the table's
-- owner when it moves the shard: the TRUNCATE trigger's function too, which does nothing for a
-- relation that is not registered (a second one on a guarded table is refused by the DDL watch).
GRANT EXECUTE ON FUNCTION credit._guard_row() TO PUBLIC;
GRANT EXECUTE ON FUNCTION credit._guard_truncate() TO PUBLIC;

-- credit.access_role and credit._require (the privilege model's check) are in privileges.sql.
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
        'terms_for verify verify_audit audit_head weighted_days_late weighted_days_late_clamped regrade regrade_summary act_for '
        'statement statement_html reconciliation_trace arrangement_schedule late_interest provision_adjustment file '
        'file_html portfolio_html map_rating payment_prediction evaluate_payment_model '
        'cash_forecast contacts fast_path_status is_distributed',
        'post_invoice post_payment post_credit_note log_contact dispute request_limit release_hold cancel_hold '
        'release_fitting_holds record_refusals statement_run request_confirmation record_confirmation '
        'remind_confirmations reconcile load_finance_items set_contact opt_out opt_in retry_delivery flush_open_orders',
        'write_off blacklist reinstate resolve_dispute run_collections run_daily approve reject reverse_settlement '
        'cancel_invoice arrange cancel_arrangement backfill_history import_rating train_payment_model',
        'guard unguard rebuild_exposure prune_outbox grant_privileges grant_courier courier_plan courier_claim courier_report '
        'distribute relay_events _grants_to_workers'];
    -- DBA-managed tables the admin level writes (the rest is written by pg_credit's functions).
    managed text[] := ARRAY['account', 'policy', 'term_tier', 'terms_window', 'reference_rate', 'grade', 'score_weight',
                            'dunning_level', 'approval_rule',
                            'aging_bucket', 'provision_rate', 'trusted_proxy', 'statement_setting',
                            'message_template', 'courier_setting', 'courier_channel'];
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
        EXECUTE format('REVOKE SELECT ON credit.access_role, credit.outbox_lock, credit.collections_lock, credit.daily_lock, '
                       'credit.contact_secret FROM %I',
                       roles[i]);
        SELECT count(*) INTO nt FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind IN ('r', 'v')
           AND c.relname NOT IN ('access_role', 'outbox_lock', 'collections_lock', 'daily_lock', 'contact_secret');
        IF levels[i] = 'admin' THEN
            FOR j IN 1..array_length(managed, 1) LOOP
                EXECUTE format('GRANT INSERT, UPDATE, DELETE ON credit.%I TO %I', managed[j], roles[i]);
            END LOOP;
            EXECUTE format('GRANT SELECT ON credit.access_role TO %I', roles[i]);
            EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA credit TO %I', roles[i]);
        END IF;
        -- From the clerk level on: loading the finance system's items (credit.load_finance_items
        -- runs with the caller's rights).
        IF i >= 2 THEN
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON credit.finance_item TO %I', roles[i]);
            EXECUTE format('GRANT USAGE ON SEQUENCE credit.finance_item_id_seq TO %I', roles[i]);
        END IF;
        INSERT INTO credit.access_role AS a (level, role) VALUES (levels[i], roles[i])
        ON CONFLICT ON CONSTRAINT access_role_pkey DO UPDATE SET role = EXCLUDED.role;
        level := levels[i]; role := roles[i]; functions := nf; tables := nt;
        RETURN NEXT;
    END LOOP;
    -- On Citus: the workers' copies too (sql/citus.sql).
    IF credit.is_distributed() THEN
        PERFORM credit._grants_to_workers();
    END IF;
END
$$;
-- Credit policy is data in tables; writing it needs the admin level too (table privileges granted
-- too widely by hand do not open it). Statement-level: a bulk load checks once.
CREATE FUNCTION credit._policy_write_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM credit._require(coalesce(TG_ARGV[0], 'admin'), format('changing credit.%s', TG_TABLE_NAME));
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['policy', 'term_tier', 'terms_window', 'reference_rate', 'grade', 'score_weight',
                             'dunning_level', 'approval_rule',
                             'aging_bucket', 'provision_rate', 'trusted_proxy', 'statement_setting',
                             'message_template', 'courier_setting', 'courier_channel'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION credit._policy_write_check()', t || '_write_check', t);
    END LOOP;
END
$$;
-- The finance system's items are loaded from the clerk level on.
CREATE TRIGGER finance_item_write_check BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit.finance_item
    FOR EACH STATEMENT EXECUTE FUNCTION credit._policy_write_check('clerk');
REVOKE ALL ON FUNCTION credit._policy_write_check() FROM PUBLIC;

REVOKE ALL ON FUNCTION credit.grant_privileges(name, name, name, name) FROM PUBLIC;

COMMENT ON FUNCTION credit._policy_write_check() IS 'Internal: writing credit policy tables needs the admin level (or the level the trigger names)';
COMMENT ON FUNCTION credit.grant_privileges(name, name, name, name) IS 'Grants pg_credit''s privileges to the roles of the four levels (reader, clerk, manager, admin; NULL leaves one out) and records them in credit.access_role (docs/privileges.md)';
