-- Four eyes means two people. A person is the login (session_user), whatever SET ROLE says; one
-- person signs at most one level of a request and never their own. An application that connects
-- through one pooled login names the person behind each transaction (credit.act_for), once an
-- admin has registered the login as a trusted proxy. A missing approver role is refused the same
-- way everywhere (42501 naming the role; a superuser passes), never 42704.
\set VERBOSITY default
\set SHOW_CONTEXT never
DO $$ BEGIN
    CREATE ROLE regress_fe_manager NOLOGIN;
    CREATE ROLE regress_fe_director NOLOGIN;
    CREATE ROLE regress_fe_alice LOGIN IN ROLE regress_fe_manager;
    CREATE ROLE regress_fe_bob LOGIN IN ROLE regress_fe_manager, regress_fe_director;
    CREATE ROLE regress_fe_carol LOGIN IN ROLE regress_fe_director;
    CREATE ROLE regress_fe_app LOGIN;
    CREATE ROLE regress_fe_dave NOLOGIN IN ROLE regress_fe_manager;
    CREATE ROLE regress_fe_erin NOLOGIN IN ROLE regress_fe_manager, regress_fe_director;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT USAGE ON SCHEMA credit TO regress_fe_manager, regress_fe_director, regress_fe_app;
GRANT EXECUTE ON FUNCTION credit.request_limit(text, numeric, text, date), credit.approve(bigint, text),
                          credit.reject(bigint, text), credit.act_for(text), credit._person()
   TO regress_fe_manager, regress_fe_director, regress_fe_app;
INSERT INTO credit.account (customer, credit_limit) VALUES ('FE-A', 1000);
INSERT INTO credit.approval_rule (min_increase, approver_roles)
VALUES (0, '{regress_fe_manager,regress_fe_director}'), (100000, '{regress_fe_no_such_role}');

-- Alice requests; becoming the manager role does not make her someone else.
\c - regress_fe_alice
SELECT credit.request_limit('FE-A', 5000, 'new stores') AS req \gset
SET ROLE regress_fe_manager;
SELECT credit.approve(:req);
RESET ROLE;
-- Bob belongs to both approving roles: he signs one level, and SET ROLE does not let him sign two.
\c - regress_fe_bob
SELECT credit.approve(:req, 'stores visited');
SELECT credit.approve(:req);
SET ROLE regress_fe_director;
SELECT credit.approve(:req);
RESET ROLE;
-- Carol, a director, signs the second level.
\c - regress_fe_carol
SELECT credit.approve(:req, 'agreed');
\c - postgres
SELECT credit_limit FROM credit.account WHERE customer = 'FE-A';
SELECT level, approver, as_role FROM credit.limit_approval WHERE request_id = :req ORDER BY level;
SELECT requested_by, decided_by FROM credit.limit_request WHERE id = :req;

-- A pooled application login: registered as a trusted proxy, it names the person behind each
-- transaction; the rules then count that person.
INSERT INTO credit.trusted_proxy (role, note) VALUES ('regress_fe_app', 'order entry application');
\c - regress_fe_app
\set ON_ERROR_ROLLBACK on
BEGIN;
SELECT credit.act_for('regress_fe_dave');
SELECT credit.request_limit('FE-A', 9000, 'trade fair') AS req2 \gset
SELECT credit.approve(:req2);
SELECT credit.act_for('regress_fe_erin');
SELECT credit.approve(:req2, 'fair confirmed');
SELECT credit.approve(:req2);
COMMIT;
-- A savepoint rolled back takes back a person named after it; a released one keeps it.
BEGIN;
SELECT credit.act_for('regress_fe_dave');
SAVEPOINT s1;
SELECT credit.act_for('regress_fe_erin');
ROLLBACK TO SAVEPOINT s1;
SELECT credit._person() AS person_after_rollback;
SAVEPOINT s2;
SELECT credit.act_for('regress_fe_erin');
RELEASE SAVEPOINT s2;
SELECT credit._person() AS person_after_release;
COMMIT;
-- A new transaction names nobody: the person is the application's login, which holds no role.
SELECT credit.approve(:req2);
-- The person must be a role other than the proxy, and not a superuser.
SELECT credit.act_for('regress_fe_app');
SELECT credit.act_for('postgres');
SELECT credit.act_for('regress_fe_nobody');
-- A login that is not a registered proxy names nobody.
\c - regress_fe_alice
SELECT credit.act_for('regress_fe_dave');
\c - regress_fe_carol
SELECT credit.approve(:req2, 'agreed');
\c - postgres
SELECT level, approver, as_role FROM credit.limit_approval WHERE request_id = :req2 ORDER BY level;
SELECT kind, actor, acting_as, after ->> 'level' AS level FROM credit.event
 WHERE customer = 'FE-A' AND kind IN ('limit_requested', 'limit_approval_signed') ORDER BY id;

-- An approver role that does not exist: nobody but a superuser is its member (42501 naming it).
\c - regress_fe_alice
SELECT credit.request_limit('FE-A', 200000, 'big contract') AS req3 \gset
\c - regress_fe_bob
SELECT credit.approve(:req3);
SELECT credit.reject(:req3, 'no');
\c - postgres
SELECT credit.reject(:req3, 'the approver role is missing');

-- Clean up.
DELETE FROM credit.approval_rule WHERE approver_roles && '{regress_fe_manager,regress_fe_no_such_role}';
DELETE FROM credit.trusted_proxy WHERE role = 'regress_fe_app';
REVOKE ALL ON FUNCTION credit.request_limit(text, numeric, text, date), credit.approve(bigint, text),
                       credit.reject(bigint, text), credit.act_for(text), credit._person()
  FROM regress_fe_manager, regress_fe_director, regress_fe_app;
REVOKE USAGE ON SCHEMA credit FROM regress_fe_manager, regress_fe_director, regress_fe_app;
DROP ROLE regress_fe_alice, regress_fe_bob, regress_fe_carol, regress_fe_app, regress_fe_dave, regress_fe_erin,
          regress_fe_manager, regress_fe_director;
