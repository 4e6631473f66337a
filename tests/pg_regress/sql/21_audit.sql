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
SELECT count(*) > 0 AS events, count(*) = count(c.event_id) AS all_chained FROM credit.event e LEFT JOIN credit.event_chain c ON c.event_id = e.id;
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
ROLLBACK TO s;
-- What the chain cannot see by itself, an anchor kept outside the database shows. The anchor:
-- the newest link now (as a job would record it, with each daily run, say).
SELECT seq AS anchor_seq, hash AS anchor_hash FROM credit.audit_head() \gset
SELECT count(*) AS problems_against_anchor FROM credit.verify_audit(:anchor_seq, :'anchor_hash');
-- 1. The newest events deleted, with their links: the chain is consistent, the anchor is gone.
DELETE FROM credit.event_chain WHERE seq >= (SELECT max(seq) - 1 FROM credit.event_chain);
DELETE FROM credit.event e WHERE NOT EXISTS (SELECT 1 FROM credit.event_chain c WHERE c.event_id = e.id);
SELECT count(*) AS problems_without_anchor FROM credit.verify_audit();
SELECT seq = :anchor_seq AS at_anchor, problem FROM credit.verify_audit(:anchor_seq, :'anchor_hash');
ROLLBACK TO s;
-- 2. A forged event put in the middle of the history, every later link recomputed: the chain is
--    consistent again, the anchor's hash is not.
UPDATE credit.event SET reason = 'forged' WHERE customer = 'AU-A' AND reason = 'first reason';
DO $$
DECLARE
    c record;
    prev bytea := '';
BEGIN
    FOR c IN SELECT x.seq, x.event_id FROM credit.event_chain x ORDER BY x.seq LOOP
        UPDATE credit.event_chain x SET hash = credit._event_hash(prev, e) FROM credit.event e
         WHERE x.seq = c.seq AND e.id = c.event_id RETURNING x.hash INTO prev;
    END LOOP;
END $$;
SELECT count(*) AS problems_without_anchor FROM credit.verify_audit();
SELECT seq = :anchor_seq AS at_anchor, problem FROM credit.verify_audit(:anchor_seq, :'anchor_hash');
-- One call; the anchor is checked as given.
SELECT regress.sqlstate_of($$SELECT credit.verify_audit(1, NULL)$$) AS half_anchor,
       regress.sqlstate_of($$SELECT credit.verify_audit(1, 'not hex')$$) AS bad_hash;
ROLLBACK;
SELECT count(*) AS problems_after_rollback FROM credit.verify_audit();
