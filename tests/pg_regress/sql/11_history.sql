-- Credit history (append-only), blacklist / reinstate, temporary limits that lapse by themselves.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
CREATE TEMP TABLE first_event AS SELECT coalesce(max(id), 0) AS id FROM credit.event;
CREATE TEMP VIEW history AS
SELECT kind, customer, reason, before, after - 'refused_at' AS after, actor = session_user AS by_me, acting_as,
       transaction_id = pg_current_xact_id() AS this_txn
  FROM credit.event WHERE id > (SELECT id FROM first_event)
 -- a refused order is recorded a moment later, in the recorder's transaction: in the order things
 -- happened, it comes where it was refused
 ORDER BY coalesce((after ->> 'refused_at')::timestamptz, happened_at), id;

INSERT INTO credit.account (customer, credit_limit) VALUES ('ACME', 1000);
UPDATE credit.account SET credit_limit = 1500, terms_days = 45 WHERE customer = 'ACME';
UPDATE credit.account SET credit_limit = 1500 WHERE customer = 'ACME';     -- no change, no event
CREATE TABLE orders (id int, customer text, amount numeric);
SELECT credit.guard('orders', 'customer', 'amount');
INSERT INTO orders VALUES (1, 'ACME', 100);                               -- counters only, no event

-- Blacklisting: recorded with the reason; the guard refuses at once; idempotent.
SELECT credit.blacklist('ACME', 'cheque bounced twice');
SELECT credit.blacklist('ACME', 'again');
INSERT INTO orders VALUES (2, 'ACME', 1);
SELECT credit.reinstate('ACME', 'paid in full, director guarantee');
INSERT INTO orders VALUES (2, 'ACME', 1);
UPDATE credit.account SET status = 'hold' WHERE customer = 'ACME';
SELECT credit.reinstate('ACME', 'hold reviewed');
SELECT regress.wait_for_refusals() AS refusals_recorded;
SELECT * FROM history;

-- Bad input.
SELECT credit.blacklist(NULL, 'x');
SELECT credit.blacklist('ACME', NULL);
SELECT credit.blacklist('ACME', '  ');
SELECT credit.reinstate('NOBODY', 'x');

-- Append-only, for the owner too.
UPDATE credit.event SET reason = 'edited';
DELETE FROM credit.event;
TRUNCATE credit.event;

-- Temporary limits: in force through their last day, then the base limit applies by itself.
UPDATE credit.account SET temporary_limit = 5000, temporary_limit_until = current_date WHERE customer = 'ACME';
SELECT credit_limit, exposure, available FROM credit.check('ACME', 0);
INSERT INTO orders VALUES (3, 'ACME', 3000);                              -- fits the temporary limit
SELECT credit.available_credit('ACME');
UPDATE credit.account SET temporary_limit_until = current_date - 1 WHERE customer = 'ACME';   -- as if a day passed
SELECT credit_limit, exposure, available, reasons FROM credit.check('ACME', 1);
INSERT INTO orders VALUES (4, 'ACME', 1);                                 -- refused: back to 1500
UPDATE orders SET amount = amount - 1 WHERE id = 3;                       -- releasing is always allowed
-- Validation.
UPDATE credit.account SET temporary_limit = 100, temporary_limit_until = NULL WHERE customer = 'ACME';
UPDATE credit.account SET temporary_limit = -1, temporary_limit_until = current_date WHERE customer = 'ACME';
UPDATE credit.account SET temporary_limit = 1, temporary_limit_until = 'infinity' WHERE customer = 'ACME';
SELECT kind, before->'temporary_limit' AS limit_before, after->'temporary_limit' AS limit_after,
       (before->>'temporary_limit_until')::date - current_date AS until_before,
       (after->>'temporary_limit_until')::date - current_date AS until_after
  FROM history WHERE kind = 'temporary_limit_changed';
-- Changes by another role are recorded as theirs (the history needs no grant to write).
GRANT USAGE ON SCHEMA credit TO regress_clerk;
GRANT UPDATE (credit_limit, terms_days), SELECT ON credit.account TO regress_clerk;
SET ROLE regress_clerk;
UPDATE credit.account SET terms_days = 60 WHERE customer = 'ACME';
-- A table grant is not enough to change a limit: that goes through approval (42501).
UPDATE credit.account SET credit_limit = 1600 WHERE customer = 'ACME';
SELECT count(*) FROM credit.event;   -- and cannot read it without a grant
RESET ROLE;
SELECT kind, after, acting_as FROM history WHERE kind = 'terms_changed' ORDER BY after::text;
SELECT kind, after, by_me AS session_is_mine, acting_as FROM history WHERE kind = 'limit_changed';
SELECT * FROM credit.verify();
ROLLBACK;
