-- Every function of the extension checks its level inside — public API, configuration and
-- internal helpers alike — so that EXECUTE granted to everyone opens nothing. Generated from the
-- catalog: each function is called with valid arguments by a role of each level and by one with
-- none, all holding EXECUTE on every function of the schema. Each function's level is listed
-- below; a function missing from the list fails this test until someone decides its level.
\set VERBOSITY default
\set SHOW_CONTEXT never
DO $$ BEGIN
    CREATE ROLE regress_fl_none; CREATE ROLE regress_fl_reader; CREATE ROLE regress_fl_clerk;
    CREATE ROLE regress_fl_manager; CREATE ROLE regress_fl_admin;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT level, role FROM credit.grant_privileges('regress_fl_reader', 'regress_fl_clerk', 'regress_fl_manager', 'regress_fl_admin')
 ORDER BY credit._level_rank(level);
GRANT USAGE ON SCHEMA credit TO regress_fl_none;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA credit TO regress_fl_none, regress_fl_reader, regress_fl_clerk, regress_fl_manager, regress_fl_admin;
SET pg_credit.admin_role = 'regress_fl_admin';

INSERT INTO credit.account (customer, credit_limit) VALUES ('FL-A', 1000);
SELECT credit.post_invoice('FL-A', 'FL-1', 100, current_date - 40) > 0 AS posted,
       credit.post_invoice('FL-A', 'FL-2', 100, current_date - 40) > 0 AS posted_2,
       credit.dispute('FL-A', 'FL-2', 'wrong price') > 0 AS disputed;
CREATE TABLE fl_orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
CREATE TABLE fl_held (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
ALTER TABLE fl_orders OWNER TO regress_fl_admin;
ALTER TABLE fl_held OWNER TO regress_fl_admin;
SELECT credit.guard('fl_held', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold');
SET client_min_messages = error;
INSERT INTO fl_held VALUES (1, 'FL-A', 5000);
RESET client_min_messages;
-- The limit request comes from another person than this login, so the approvals below meet
-- four eyes and show only the levels.
INSERT INTO credit.trusted_proxy (role) VALUES (session_user);
BEGIN;
SELECT credit.act_for('regress_fl_clerk') AS person \gset
SELECT credit.request_limit('FL-A', 2000, 'growth') > 0 AS requested;
COMMIT;
SELECT count(*) > 0 AS ran FROM credit.run_collections();
SELECT regress.more_documents('FL-A') AS more_documents;
DELETE FROM regress.fixture;
INSERT INTO regress.fixture VALUES ('customer', 'FL-A'), ('doc', 'FL-1'), ('disputed_doc', 'FL-2'),
    ('orders', 'fl_orders'), ('held', 'fl_held'), ('role', 'regress_fl_manager'), ('person', 'regress_fl_reader');

-- The level each function needs: reader, clerk, manager, admin; 'internal' (only pg_credit's own
-- functions call it); 'any' (pure, or reads only what the caller may read: table privileges
-- decide); 'trigger' (fires only as a trigger); 'proxy' (the login must be a trusted proxy,
-- 24_four_eyes).
CREATE TEMP TABLE fl_level (fn text PRIMARY KEY, level text NOT NULL);
INSERT INTO fl_level SELECT split_part(x, ':', 1), split_part(x, ':', 2) FROM unnest(string_to_array(
    'act_for:proxy approve:manager audit_head:reader available_credit:any average_days_delinquent:any '
    'best_possible_dso:any blacklist:manager cancel_hold:clerk cei:any check:any count_back_dso:any dispute:clerk '
    'dso:any effective_policy:any expected_loss:any explain_terms:any exposure:any grant_privileges:admin guard:admin '
    'log_contact:clerk on_time_ratio:any outbox_since:reader paydex:any post_credit_note:clerk post_invoice:clerk '
    'post_payment:clerk prune_outbox:admin rebuild_exposure:admin receivables_metrics:any record_refusals:clerk '
    'regrade:manager reinstate:manager reject:clerk release_fitting_holds:clerk release_hold:clerk request_limit:clerk '
    'resolve_dispute:manager roll_rates:any run_collections:manager run_daily:manager score:any terms_for:any unguard:admin '
    'verify:reader verify_audit:reader weighted_days_late:any weighted_days_late_clamped:any write_off:manager aging:any _aging_on_citus:any _expected_loss_on_citus:any _acting_as:any _set_reason:internal _account_events_on_citus:internal _ledger_entries_on_citus:any _statement_on_citus:any '
    '_apply_limit:internal _set_status:internal _request_limit:internal _lock_pending_request:internal '
    '_expire_temporary_limits:internal _count_open_orders:internal _ddl_quiet:internal _recount_exposure:internal '
    '_open_orders_query:internal _actual_exposure:internal _recomputed:internal _open_orders_of_tree:internal '
    '_guard_register:internal _guard_unregister:internal _guard_release:internal _guard_follow_rename:internal '
    '_guard_reconcile:internal _internal:any _require:any _require_member:any _is_admin:any _is_superuser:any '
    '_calling_user:any _caller:any _person:any _level_rank:any _event_hash:any _bucket_labels:any _bucket_rank:any '
    '_aging_args:any _aging_buckets_problem:any _roll_rates_args:any _guard_type_problem:any _guard_trigger_args:any '
    '_guard_problems:any _guard_problem_list:any _guard_descendants:any _refusal_recording:reader '
    'reverse_settlement:manager cancel_invoice:manager statement:any statement_html:any statement_run:clerk '
    'request_confirmation:clerk record_confirmation:clerk remind_confirmations:clerk load_finance_items:clerk '
    'reconcile:clerk reconciliation_trace:any _ledger_entries:any _statement_rows:any _statement_args:any '
    'arrange:manager cancel_arrangement:manager arrangement_schedule:any _arrangement_schedule:any '
    'late_interest:any _late_interest_of:any _invoice_interest:any provision_adjustment:any '
    'backfill_history:manager _backfill_history:internal _record_history:internal '
    '_close_history_ranges:internal _portfolio_history:internal file:any _file_args:any file_html:any portfolio_html:any '
    'map_rating:any import_rating:manager _ratings_due:internal regrade_summary:reader _risk_warnings:internal '
    'train_payment_model:manager payment_prediction:any evaluate_payment_model:any '
    'cash_forecast:any _predicted_very_late:internal '
    'set_contact:clerk opt_out:clerk opt_in:clerk contacts:reader retry_delivery:clerk grant_courier:admin '
    'courier_plan:admin courier_claim:admin courier_report:admin _require_courier:any _render_message:any '
    '_template_fields:any _money_text:any _json_numbers_as_text:any _message_figures:any '
    'fast_path_status:reader flush_open_orders:clerk _fast_path_open_orders:internal '
    'distribute:admin is_distributed:any _citus_layout:any _citus_placement_problem:any _shard_of:any _qualified_name:any '
    '_is_own_table:any _sync_guard_registration:internal _colocated_account_shard:any relay_events:admin '
    '_on_citus_worker:any _refuse_on_worker:any _events_on_citus:any _events_here:any _has_document:any _colocated_shard:any _hold_fit:any _release_here:internal _collections_here:internal _ladder_preview_here:internal _ladder_preview_on_citus:reader _grants_to_workers:admin _privileges_here:any _match_privileges:internal _privileges_to_workers:internal',
    ' ')) x;
INSERT INTO fl_level
SELECT p.proname, 'trigger' FROM pg_proc p
 WHERE p.pronamespace = 'credit'::regnamespace AND p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype);
-- Aggregate support functions take `internal` and cannot be called from SQL at all.
INSERT INTO fl_level
SELECT DISTINCT p.proname, 'support' FROM pg_proc p
 WHERE p.pronamespace = 'credit'::regnamespace AND 'internal'::regtype = ANY (p.proargtypes::oid[]::regtype[]);
-- Every function of the extension has a level.
SELECT p.oid::regprocedure AS function_without_a_level FROM pg_proc p
 WHERE p.pronamespace = 'credit'::regnamespace AND NOT EXISTS (SELECT 1 FROM fl_level l WHERE l.fn = p.proname)
 ORDER BY 1;

CREATE TEMP TABLE fl_matrix AS
SELECT p.oid::regprocedure AS function, l.level,
       CASE WHEN l.level = 'trigger' THEN format('SELECT credit.%I()', p.proname) ELSE regress.call_of(p.oid) END AS stmt,
       NULL::text AS none, NULL::text AS reader, NULL::text AS clerk, NULL::text AS manager, NULL::text AS admin
  FROM pg_proc p JOIN fl_level l ON l.fn = p.proname
 WHERE p.pronamespace = 'credit'::regnamespace AND l.level <> 'support';
SELECT regress.snapshot() AS before \gset
UPDATE fl_matrix SET none = regress.try(stmt, 'regress_fl_none'), reader = regress.try(stmt, 'regress_fl_reader'),
                     clerk = regress.try(stmt, 'regress_fl_clerk'), manager = regress.try(stmt, 'regress_fl_manager'),
                     admin = regress.try(stmt, 'regress_fl_admin');
SELECT regress.snapshot() = :'before' AS unchanged;
SELECT function, level, none, reader, clerk, manager, admin FROM fl_matrix ORDER BY level, function::text;

-- The rule, checked: below a function's level the call is refused (42501); internal helpers
-- refuse every role; trigger functions cannot be called.
SELECT function, level, none, reader, clerk, manager, admin FROM fl_matrix
 WHERE (level = 'internal' AND ARRAY[none, reader, clerk, manager, admin] <> array_fill('42501'::text, ARRAY[5]))
    OR (level = 'trigger' AND ARRAY[none, reader, clerk, manager, admin] <> array_fill('0A000'::text, ARRAY[5]))
    OR (level IN ('reader', 'clerk', 'manager', 'admin') AND none <> '42501')
    OR (level IN ('clerk', 'manager', 'admin') AND reader <> '42501')
    OR (level IN ('manager', 'admin') AND clerk <> '42501')
    OR (level = 'admin' AND manager <> '42501')
 ORDER BY function::text;

-- Clean up.
DELETE FROM regress.fixture;
DELETE FROM credit.trusted_proxy;
DROP TABLE fl_orders, fl_held;
DELETE FROM credit.access_role;
RESET pg_credit.admin_role;
DROP OWNED BY regress_fl_none, regress_fl_reader, regress_fl_clerk, regress_fl_manager, regress_fl_admin;
DROP ROLE regress_fl_none, regress_fl_reader, regress_fl_clerk, regress_fl_manager, regress_fl_admin;
