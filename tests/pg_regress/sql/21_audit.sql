-- The credit history is append-only and hash-chained: what a superuser changes behind pg_credit's
-- back (triggers disabled) shows in credit.verify_audit(). All inside a transaction that is rolled
-- back, so the database stays intact for what follows.
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO credit.account (customer, credit_limit) VALUES ('AU-A', 100);
SELECT credit.blacklist('AU-A', 'first reason');
SELECT credit.reinstate('AU-A', 'second reason');
-- Every committed event is chained, in commit order.
SELECT regress.wait_for_refusals() AS refusals_recorded;   -- earlier tests' refusals are recorded in the background
SELECT count(*) AS events, count(c.event_id) AS chained FROM credit.event e LEFT JOIN credit.event_chain c ON c.event_id = e.id;
SELECT count(*) AS problems FROM credit.verify_audit();
SELECT seq > 0 AS has_head, length(hash) AS hex_length FROM credit.audit_head();
-- Append-only, for the owner too (and the chain itself).
UPDATE credit.event SET reason = 'rewritten' WHERE customer = 'AU-A';
DELETE FROM credit.event_chain;
TRUNCATE credit.event_chain;
BEGIN;
-- A superuser switches the protection off and rewrites history.
ALTER TABLE credit.event DISABLE TRIGGER event_append_only;
ALTER TABLE credit.event_chain DISABLE TRIGGER event_chain_append_only;
SAVEPOINT s;
UPDATE credit.event SET reason = 'never happened' WHERE customer = 'AU-A' AND reason = 'first reason';
SELECT e.kind, v.problem FROM credit.verify_audit() v JOIN credit.event e ON e.id = v.event_id;
ROLLBACK TO s;
DELETE FROM credit.event WHERE customer = 'AU-A' AND reason = 'second reason';
SELECT problem FROM credit.verify_audit();
ROLLBACK TO s;
-- Deleting an event and its link as well: the next link no longer matches.
DELETE FROM credit.event_chain WHERE event_id = (SELECT id FROM credit.event WHERE customer = 'AU-A' AND reason = 'first reason');
DELETE FROM credit.event WHERE customer = 'AU-A' AND reason = 'first reason';
SELECT e.kind, e.reason, v.problem FROM credit.verify_audit() v JOIN credit.event e ON e.id = v.event_id;
ROLLBACK TO s;
-- An event slipped in without its link (as if from an earlier transaction) is not in the chain.
ALTER TABLE credit.event DISABLE TRIGGER event_publish;
INSERT INTO credit.event (kind, customer, reason, transaction_id) VALUES ('limit_changed', 'AU-A', 'forged', '1234');
SELECT problem FROM credit.verify_audit();
ROLLBACK;
SELECT count(*) AS problems_after_rollback FROM credit.verify_audit();
