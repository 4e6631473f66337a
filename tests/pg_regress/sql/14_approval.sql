-- Limit changes through approval: levels by size of increase, four eyes, temporary limits.
-- Four eyes counts people, not roles: this test stands in for several people through one login,
-- registered as a trusted proxy that names the person behind each call (credit.act_for);
-- 23_four_eyes shows the same rules with real logins, and that SET ROLE changes nobody.
\set VERBOSITY default
\set SHOW_CONTEXT never
DO $$ BEGIN
    CREATE ROLE regress_sales NOLOGIN;   CREATE ROLE regress_manager NOLOGIN;
    CREATE ROLE regress_mgr_a NOLOGIN IN ROLE regress_manager;
    CREATE ROLE regress_mgr_b NOLOGIN IN ROLE regress_manager;
    CREATE ROLE regress_director NOLOGIN;
    CREATE ROLE regress_dir_a NOLOGIN IN ROLE regress_director;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
BEGIN;
\set ON_ERROR_ROLLBACK on
GRANT USAGE ON SCHEMA credit TO regress_sales, regress_manager, regress_director;
GRANT EXECUTE ON FUNCTION credit.request_limit(text, numeric, text, date), credit.approve(bigint, text),
                          credit.reject(bigint, text) TO regress_sales, regress_manager, regress_director;
GRANT SELECT, UPDATE ON credit.account TO regress_sales;
INSERT INTO credit.trusted_proxy (role, note) VALUES (session_user, 'the regression test stands in for its people');
INSERT INTO credit.account (customer, credit_limit) VALUES ('ACME', 10000), ('BETA', 10000);
INSERT INTO credit.policy (max_limit) VALUES (1000000);
-- Up to +10,000: one manager; +10,000 and more: a manager, then a director.
INSERT INTO credit.approval_rule (min_increase, approver_roles) VALUES
    (0, '{regress_manager}'), (10000, '{regress_manager,regress_director}');

-- Direct updates are refused (42501), even with the table privilege.
RESET ROLE;
SELECT credit.act_for('regress_sales') AS person \gset
SET ROLE regress_sales;
UPDATE credit.account SET credit_limit = 50000 WHERE customer = 'ACME';
UPDATE credit.account SET temporary_limit = 50000, temporary_limit_until = current_date WHERE customer = 'ACME';
-- A large increase needs two levels.
SELECT credit.request_limit('ACME', 40000, 'peak season, new stores') AS big \gset
SELECT credit.approve(:big);                          -- four eyes: not the requester
RESET ROLE;
SELECT status, approver_roles, requested_by FROM credit.limit_request WHERE id = :big;
RESET ROLE;
SELECT credit.act_for('regress_dir_a') AS person \gset
SET ROLE regress_dir_a;
SELECT credit.approve(:big);                          -- level 1 is a manager's
RESET ROLE;
SELECT credit.act_for('regress_mgr_a') AS person \gset
SET ROLE regress_mgr_a;
SELECT credit.approve(:big, 'orders confirmed');
SELECT credit.approve(:big);                          -- the same person cannot sign twice
RESET ROLE;
SELECT credit.act_for('regress_mgr_b') AS person \gset
SET ROLE regress_mgr_b;
SELECT credit.approve(:big);                          -- level 2 is a director's
RESET ROLE;
SELECT credit_limit FROM credit.account WHERE customer = 'ACME';   -- unchanged until the last level
RESET ROLE;
SELECT credit.act_for('regress_dir_a') AS person \gset
SET ROLE regress_dir_a;
SELECT credit.approve(:big, 'ok for the season');
RESET ROLE;
SELECT credit_limit FROM credit.account WHERE customer = 'ACME';
SELECT level, approver, as_role, comment FROM credit.limit_approval WHERE request_id = :big ORDER BY level;
SELECT kind, reason, after->>'level' AS level FROM credit.event
 WHERE customer = 'ACME' AND kind IN ('limit_requested', 'limit_approval_signed', 'limit_changed') ORDER BY id;
SELECT credit.approve(:big);                          -- already approved
SELECT credit.approve(424242);
SELECT credit.approve(NULL);

-- A small increase: one level. Rejection needs a comment; the requester may withdraw.
RESET ROLE;
SELECT credit.act_for('regress_sales') AS person \gset
SET ROLE regress_sales;
SELECT credit.request_limit('BETA', 15000, 'steady growth') AS small \gset
SELECT credit.request_limit('BETA', 16000, 'second request');   -- one pending request per customer
SELECT credit.reject(:small, NULL);
SELECT credit.reject(:small, 'changed my mind');
SELECT credit.request_limit('BETA', 15000, 'steady growth, again') AS small2 \gset
RESET ROLE;
SELECT credit.act_for('regress_mgr_b') AS person \gset
SET ROLE regress_mgr_b;
SELECT credit.reject(:small2, 'payment record too short');
RESET ROLE;
SELECT id = :small AS first, status, decided_by, decision_comment FROM credit.limit_request WHERE customer = 'BETA' ORDER BY id;

-- Decreases apply at once; requests above the policy maximum and bad input are refused.
RESET ROLE;
SELECT credit.act_for('regress_sales') AS person \gset
SET ROLE regress_sales;
SELECT credit.request_limit('BETA', 5000, 'late payments') AS dec \gset
RESET ROLE;
SELECT credit_limit FROM credit.account WHERE customer = 'BETA';
SELECT status, decision_comment FROM credit.limit_request WHERE id = :dec;
SELECT regress.sqlstate_of($$SELECT credit.request_limit('BETA', 2000000, 'x')$$) AS above_max,
       regress.sqlstate_of($$SELECT credit.request_limit('BETA', -1, 'x')$$) AS negative,
       regress.sqlstate_of($$SELECT credit.request_limit('BETA', 'NaN', 'x')$$) AS nan,
       regress.sqlstate_of($$SELECT credit.request_limit('BETA', 1e30, 'x')$$) AS huge,
       regress.sqlstate_of($$SELECT credit.request_limit('BETA', 1, '  ')$$) AS empty_reason,
       regress.sqlstate_of($$SELECT credit.request_limit('NOBODY', 1, 'x')$$) AS unknown,
       regress.sqlstate_of($$SELECT credit.request_limit('BETA', 1, 'x', current_date - 1)$$) AS past;

-- A temporary limit: approved like any other, in force through valid_until, then gone by itself.
RESET ROLE;
SELECT credit.act_for('regress_sales') AS person \gset
SET ROLE regress_sales;
SELECT credit.request_limit('BETA', 8000, 'one big order', current_date + 1) AS temp \gset
RESET ROLE;
SELECT credit.act_for('regress_mgr_a') AS person \gset
SET ROLE regress_mgr_a;
SELECT credit.approve(:temp);
RESET ROLE;
SELECT credit_limit, temporary_limit, temporary_limit_until - current_date AS days_left FROM credit.account WHERE customer = 'BETA';
SELECT credit.available_credit('BETA') AS available_now;
-- Once valid_until is past, the permanent limit is back by itself (no job involved): a superuser
-- moves the date back to stand in for the calendar.
SELECT credit.act_for(NULL) AS person \gset
UPDATE credit.account SET temporary_limit_until = current_date - 1 WHERE customer = 'BETA';
SELECT credit.available_credit('BETA') AS available_after_expiry, (credit.check('BETA', 6000)).reasons;
-- The admin role may set limits directly.
SET LOCAL pg_credit.admin_role = 'regress_sales';
RESET ROLE;
SELECT credit.act_for('regress_sales') AS person \gset
SET ROLE regress_sales;
UPDATE credit.account SET credit_limit = 6000 WHERE customer = 'BETA';
RESET ROLE;
SELECT credit_limit FROM credit.account WHERE customer = 'BETA';
ROLLBACK;
