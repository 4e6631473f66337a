-- The fast path's contract on a server with shared_preload_libraries = 'pg_credit'
-- (tests/fast_path/run.sh). Reservations live in shared memory; decisions count them at once;
-- credit.account shows committed open orders after the flusher (or credit.flush_open_orders).
\set VERBOSITY terse
-- The database's flusher recounts every account first; then the fast path is on.
DO $$ BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN (SELECT state FROM credit.fast_path_status()) = 'on';
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT state, capacity > 0 AS has_room FROM credit.fast_path_status();
-- A slow flusher, so that what credit.account shows before a flush is deterministic here.
ALTER SYSTEM SET pg_credit.fast_path_flush_interval = '60s';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);

CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
INSERT INTO credit.account (customer, credit_limit) VALUES ('A', 100), ('B', 1000), ('G', 150), ('M', 100), ('W', 1000);
SELECT credit.guard('orders', 'customer', 'amount', 'status', '{open}');

-- 1. An order reserves at once: the next decision counts it, credit.account shows it after a flush.
INSERT INTO orders (customer, amount) VALUES ('A', 60);
SELECT credit.exposure('A') AS exposure, (SELECT allowed FROM credit.check('A', 50)) AS fits_50,
       (SELECT allowed FROM credit.check('A', 40)) AS fits_40;
INSERT INTO orders (customer, amount) VALUES ('A', 50);
SELECT open_orders, exposure FROM credit.account WHERE customer = 'A';
SELECT committed_not_flushed, reserved_in_flight FROM credit.fast_path_status();
SELECT credit.flush_open_orders();
SELECT open_orders, exposure FROM credit.account WHERE customer = 'A';
SELECT committed_not_flushed FROM credit.fast_path_status();

-- 2. A subtransaction's reservation is released when it rolls back, the transaction's own stay.
BEGIN;
SAVEPOINT s;
INSERT INTO orders (customer, amount) VALUES ('A', 30);
ROLLBACK TO SAVEPOINT s;
INSERT INTO orders (customer, amount) VALUES ('A', 40);
SELECT credit.exposure('A') AS exposure_in_transaction;
COMMIT;
SELECT credit.exposure('A') AS exposure;
DO $$ BEGIN
    BEGIN
        INSERT INTO orders (customer, amount) VALUES ('B', 500);
        RAISE EXCEPTION 'changed my mind';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
END $$;
SELECT credit.exposure('B') AS exposure_after_exception_block;
-- A release inside a subtransaction that rolls back is undone with it.
BEGIN;
INSERT INTO orders (customer, amount) VALUES ('B', 300);
SAVEPOINT s;
DELETE FROM orders WHERE customer = 'B' AND amount = 300;
SELECT credit.exposure('B') AS released_in_savepoint;
ROLLBACK TO SAVEPOINT s;
SELECT credit.exposure('B') AS after_rollback_to;
COMMIT;
SELECT credit.exposure('B') AS committed, (SELECT count(*) FROM credit.verify()) AS drift;
DELETE FROM orders WHERE customer = 'B';

-- 3. A release (cancelling, deleting, moving an order) counts from its commit.
UPDATE orders SET status = 'cancelled' WHERE customer = 'A' AND amount = 40;
SELECT credit.exposure('A') AS after_cancel;
BEGIN;
DELETE FROM orders WHERE customer = 'A';
INSERT INTO orders (customer, amount) VALUES ('A', 100);
SELECT credit.exposure('A') AS in_transaction;
COMMIT;
SELECT credit.exposure('A') AS after_move;
UPDATE orders SET customer = 'B' WHERE customer = 'A';
SELECT credit.exposure('A') AS a, credit.exposure('B') AS b;

-- 4. PREPARE TRANSACTION: shared memory does not survive the restart a prepared transaction may
--    wait through, so at PREPARE its fast reservations and releases go into the account row (the
--    row path's form), which stays written and locked until COMMIT or ROLLBACK PREPARED.
BEGIN;
INSERT INTO orders (customer, amount) VALUES ('W', 10);
INSERT INTO orders (customer, amount) VALUES ('W', 5);
PREPARE TRANSACTION 'pg_credit_fast';
SELECT open_orders AS committed_row, (SELECT reserved_in_flight FROM credit.fast_path_status()) AS in_shared_memory
  FROM credit.account WHERE customer = 'W';
COMMIT PREPARED 'pg_credit_fast';
SELECT credit.exposure('W') AS after_commit_prepared, open_orders FROM credit.account WHERE customer = 'W';
-- A release and an order prepared, then rolled back: nothing changed.
BEGIN;
UPDATE orders SET status = 'cancelled' WHERE customer = 'W' AND amount = 10;
INSERT INTO orders (customer, amount) VALUES ('W', 7);
PREPARE TRANSACTION 'pg_credit_fast_release';
ROLLBACK PREPARED 'pg_credit_fast_release';
SELECT credit.exposure('W') AS after_rollback_prepared, open_orders FROM credit.account WHERE customer = 'W';
-- The same committed: 15 - 10 + 7.
BEGIN;
UPDATE orders SET status = 'cancelled' WHERE customer = 'W' AND amount = 10;
INSERT INTO orders (customer, amount) VALUES ('W', 7);
PREPARE TRANSACTION 'pg_credit_fast_release';
COMMIT PREPARED 'pg_credit_fast_release';
SELECT credit.exposure('W') AS after_commit_prepared, open_orders,
       (SELECT count(*) FROM credit.verify()) AS drift
  FROM credit.account WHERE customer = 'W';
-- A repair that took committed counters out of shared memory cannot be prepared: they would be
-- lost if the prepared transaction rolled back.
INSERT INTO orders (customer, amount) VALUES ('W', 1);
BEGIN;
SELECT credit.rebuild_exposure('W') >= 0 AS rebuilt;
PREPARE TRANSACTION 'pg_credit_repair';
SELECT credit.exposure('W') AS after_refused_prepare;
UPDATE orders SET status = 'cancelled' WHERE customer = 'W';
SELECT credit.flush_open_orders() >= 0 AS flushed;
SELECT credit.exposure('W') AS cancelled, open_orders FROM credit.account WHERE customer = 'W';
-- An application role with no right on credit.account prepares its fast orders all the same (the
-- move writes the rows with the extension's rights, as the guard does).
CREATE ROLE fast_path_app;
GRANT SELECT, INSERT, UPDATE ON orders TO fast_path_app;
GRANT USAGE ON SEQUENCE orders_id_seq TO fast_path_app;
SET ROLE fast_path_app;
BEGIN;
INSERT INTO orders (customer, amount) VALUES ('W', 9);
PREPARE TRANSACTION 'pg_credit_app';
UPDATE credit.account SET open_orders = 0 WHERE customer = 'W';
RESET ROLE;
COMMIT PREPARED 'pg_credit_app';
SELECT credit.exposure('W') AS app_prepared, open_orders FROM credit.account WHERE customer = 'W';
UPDATE orders SET status = 'cancelled' WHERE customer = 'W' AND amount = 9;
REVOKE ALL ON orders FROM fast_path_app;
REVOKE ALL ON SEQUENCE orders_id_seq FROM fast_path_app;
DROP ROLE fast_path_app;
-- A flush and decisions in one transaction: what the flush moved into the row counts once.
INSERT INTO orders (customer, amount) VALUES ('W', 25);
BEGIN;
SELECT credit.flush_open_orders() >= 1 AS flushed;
SELECT credit.exposure('W') AS exposure_after_own_flush, (SELECT count(*) FROM credit.verify()) AS drift;
COMMIT;
UPDATE orders SET status = 'cancelled' WHERE customer = 'W' AND amount = 25;
SELECT credit.flush_open_orders() >= 0 AS flushed;
-- With pg_credit.fast_path off, orders take the row path from the start.
BEGIN;
SET LOCAL pg_credit.fast_path = off;
INSERT INTO orders (customer, amount) VALUES ('W', 10);
PREPARE TRANSACTION 'pg_credit_row';
SELECT open_orders FROM credit.account WHERE customer = 'W';
COMMIT PREPARED 'pg_credit_row';
SELECT credit.exposure('W') AS after_commit_prepared, open_orders FROM credit.account WHERE customer = 'W';

-- 5. Groups: a customer with fast orders joins a group (its orders come into the row first); a
--    member then takes the row path, its head the fast path, and both limits hold.
INSERT INTO orders (customer, amount) VALUES ('M', 70);
UPDATE credit.account SET parent = 'G' WHERE customer = 'M';
SELECT customer, open_orders, exposure, member_exposure FROM credit.account WHERE customer IN ('G', 'M') ORDER BY 1;
INSERT INTO orders (customer, amount) VALUES ('M', 20);
INSERT INTO orders (customer, amount) VALUES ('G', 70);
INSERT INTO orders (customer, amount) VALUES ('G', 60);
INSERT INTO orders (customer, amount) VALUES ('M', 1);
SELECT credit.exposure('G') AS head, credit.exposure('M') AS member, credit.available_credit('M') AS member_available;
UPDATE credit.account SET parent = NULL WHERE customer = 'M';
SELECT customer, exposure, member_exposure FROM credit.account WHERE customer IN ('G', 'M') ORDER BY 1;

-- 6. Postings, holds and blacklisting read the same numbers.
SELECT credit.post_invoice('W', 'W-1', 900, current_date);
INSERT INTO orders (customer, amount) VALUES ('W', 100);
INSERT INTO orders (customer, amount) VALUES ('W', 80);
SELECT credit.post_payment('W', 500);
INSERT INTO orders (customer, amount) VALUES ('W', 80);
UPDATE credit.account SET status = 'hold' WHERE customer = 'B';
INSERT INTO orders (customer, amount) VALUES ('B', 1);
UPDATE credit.account SET status = 'active' WHERE customer = 'B';

-- 7. Hold mode: an order that does not fit is held, and its reservation undone at once.
CREATE TABLE held_orders (id serial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
SELECT credit.guard('held_orders', 'customer', 'amount', 'status', '{open}', mode => 'hold', hold_value => 'credit_hold');
INSERT INTO credit.account (customer, credit_limit) VALUES ('H', 100);
INSERT INTO held_orders (customer, amount) VALUES ('H', 70), ('H', 50), ('H', 30);
SELECT customer, amount, status FROM held_orders ORDER BY id;
SELECT credit.exposure('H') AS h;

-- 8. verify counts what shared memory holds; a rebuild writes the truth and empties it.
SELECT * FROM credit.verify();
SELECT credit.rebuild_exposure() >= 0 AS rebuilt;
SELECT committed_not_flushed FROM credit.fast_path_status();
SELECT customer, open_orders, exposure FROM credit.account ORDER BY customer;
SELECT * FROM credit.verify();

-- 9. A name longer than shared memory's key takes the row path, with the same result.
INSERT INTO credit.account (customer, credit_limit) VALUES (repeat('L', 200), 50);
INSERT INTO orders (customer, amount) VALUES (repeat('L', 200), 30);
SELECT open_orders FROM credit.account WHERE customer = repeat('L', 200);
INSERT INTO orders (customer, amount) VALUES (repeat('L', 200), 30);

-- 10. TRUNCATE and unguard release through the same path.
TRUNCATE orders;
SELECT credit.exposure('G') AS g, credit.exposure('W') AS w;
SELECT * FROM credit.verify();
-- 11. Shared memory keeps each customer's account row once an order read it; every write of the
--     row drops the copy (a DBA's, a replica's, a delete), and a flush adds what it wrote to it.
INSERT INTO credit.account (customer, credit_limit) VALUES ('K', 100);
INSERT INTO orders (customer, amount) VALUES ('K', 50);
INSERT INTO orders (customer, amount) VALUES ('K', 10);
UPDATE credit.account SET credit_limit = 70 WHERE customer = 'K';
INSERT INTO orders (customer, amount) VALUES ('K', 20);
INSERT INTO orders (customer, amount) VALUES ('K', 10);
SELECT credit.flush_open_orders() > 0 AS flushed;
SELECT open_orders, exposure FROM credit.account WHERE customer = 'K';
INSERT INTO orders (customer, amount) VALUES ('K', 1);
UPDATE orders SET status = 'cancelled' WHERE customer = 'K' AND amount = 10;
INSERT INTO orders (customer, amount) VALUES ('K', 20);
INSERT INTO orders (customer, amount) VALUES ('K', 0.01);
-- A temporary limit counts through its last day, not after.
UPDATE credit.account SET temporary_limit = 90, temporary_limit_until = current_date WHERE customer = 'K';
INSERT INTO orders (customer, amount) VALUES ('K', 20);
UPDATE credit.account SET temporary_limit_until = current_date - 1 WHERE customer = 'K';
INSERT INTO orders (customer, amount) VALUES ('K', 1);
-- Written with session_replication_role = replica (logical replication's apply, a restore).
SET session_replication_role = replica;
UPDATE credit.account SET status = 'hold' WHERE customer = 'K';
RESET session_replication_role;
INSERT INTO orders (customer, amount) VALUES ('K', 1);
UPDATE credit.account SET status = 'active' WHERE customer = 'K';
UPDATE orders SET status = 'cancelled' WHERE customer = 'K';
-- Deleted and created again with a lower limit.
DELETE FROM credit.account WHERE customer = 'K';
INSERT INTO credit.account (customer, credit_limit) VALUES ('K', 30);
INSERT INTO orders (customer, amount) VALUES ('K', 40);
INSERT INTO orders (customer, amount) VALUES ('K', 30);
SELECT credit.exposure('K') AS k, (SELECT count(*) FROM credit.verify()) AS drift;
-- With the trigger that drops copies disabled (a superuser's bulk change), no copy is used or kept,
-- and those kept before are gone when it is enabled again.
INSERT INTO credit.account (customer, credit_limit) VALUES ('D', 100);
INSERT INTO orders (customer, amount) VALUES ('D', 10);
INSERT INTO orders (customer, amount) VALUES ('D', 10);
ALTER TABLE credit.account DISABLE TRIGGER account_written;
UPDATE credit.account SET credit_limit = 25 WHERE customer = 'D';
INSERT INTO orders (customer, amount) VALUES ('D', 10);
ALTER TABLE credit.account ENABLE ALWAYS TRIGGER account_written;
INSERT INTO orders (customer, amount) VALUES ('D', 10);
UPDATE credit.account SET credit_limit = 100 WHERE customer = 'D';
INSERT INTO orders (customer, amount) VALUES ('D', 10);
SELECT credit.exposure('D') AS d, (SELECT count(*) FROM credit.verify()) AS drift;

-- A warning from the fast path reads as the row path's: the warning line as the policy stores it.
INSERT INTO credit.account (customer, credit_limit) VALUES ('NEAR-FAST', 100), ('NEAR-ROW', 100);
\set VERBOSITY default
INSERT INTO orders (customer, amount) VALUES ('NEAR-FAST', 85);
SET pg_credit.fast_path = off;
INSERT INTO orders (customer, amount) VALUES ('NEAR-ROW', 85);
RESET pg_credit.fast_path;
\set VERBOSITY terse
ALTER SYSTEM RESET pg_credit.fast_path_flush_interval;
SELECT pg_reload_conf();
