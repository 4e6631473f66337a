-- Hold mode: an order that fails a credit rule is saved on hold instead of refused; a credit
-- controller releases or cancels it; payments release what fits.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit) VALUES ('ACME', 1000), ('BLACK', 1000);
UPDATE credit.account SET status = 'blacklisted' WHERE customer = 'BLACK';
CREATE TABLE sales_order (
    id      int PRIMARY KEY,
    customer text NOT NULL,
    amount  numeric NOT NULL,
    status  text NOT NULL DEFAULT 'open'
);
CREATE TABLE delivery (id int PRIMARY KEY, customer text, amount numeric);
-- Bad configurations are refused.
SELECT credit.guard('sales_order', 'customer', 'amount', mode => 'hold');
SELECT credit.guard('sales_order', 'customer', 'amount', 'status', '{open}', 'park');
SELECT credit.guard('sales_order', 'customer', 'amount', 'status', '{open,credit_hold}', 'hold', 'credit_hold');
SELECT credit.guard('delivery', 'customer', 'amount', hold_value => 'x');
CREATE TABLE no_key (customer text, amount numeric, status text);
SELECT credit.guard('no_key', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold');
SELECT credit.guard('sales_order', 'customer', 'amount', 'status', '{open,confirmed}', 'hold', 'credit_hold');
SELECT mode, hold_value, key_columns FROM credit.guarded_table;
-- Shipments are guarded in reject mode against the same exposure.
SELECT credit.guard('delivery', 'customer', 'amount');

INSERT INTO sales_order VALUES (1, 'ACME', 700);
INSERT INTO sales_order VALUES (2, 'ACME', 400);                 -- over the limit: held, not refused
INSERT INTO sales_order VALUES (3, 'BLACK', 10);                 -- blacklisted: held
SELECT id, customer, amount, status FROM sales_order ORDER BY id;
SELECT open_orders, exposure FROM credit.account WHERE customer = 'ACME';   -- the held order is not exposure
SELECT hold_id, customer, amount, reasons_when_held, credit_limit, exposure, reasons_now, fits_now FROM credit.hold_queue;
-- The application cannot sneak a held order back to open: the guard holds it again.
UPDATE sales_order SET status = 'open' WHERE id = 2;
SELECT status FROM sales_order WHERE id = 2;
SELECT count(*) FILTER (WHERE status = 'held') AS held, count(*) FILTER (WHERE status = 'released') AS released FROM credit.order_hold;
-- Deliveries in reject mode: the customer cannot ship beyond its limit either.
INSERT INTO delivery VALUES (1, 'ACME', 301);

-- A release that does not fit is refused for a clerk (23514) ...
GRANT USAGE ON SCHEMA credit TO regress_clerk;
GRANT EXECUTE ON FUNCTION credit.release_hold(bigint, text), credit.cancel_hold(bigint, text) TO regress_clerk;
SELECT hold_id AS acme_hold FROM credit.hold_queue WHERE customer = 'ACME' \gset
SET ROLE regress_clerk;
SELECT credit.release_hold(:acme_hold);
RESET ROLE;
-- ... and a payment makes room: the held order is released by itself.
SELECT credit.post_invoice('ACME', 'I-1', 100, current_date) > 0 AS invoiced;
SELECT credit.post_payment('ACME', 500, current_date) > 0 AS paid;
SELECT id, status FROM sales_order ORDER BY id;
SELECT open_orders, exposure, unapplied_credit FROM credit.account WHERE customer = 'ACME';
SELECT status, decided_by IS NOT NULL AS decided, comment FROM credit.order_hold WHERE customer = 'ACME' ORDER BY id;

-- A member of the releasing role may force a release; it is recorded as an override.
INSERT INTO sales_order VALUES (4, 'ACME', 900);
SELECT hold_id AS acme_hold FROM credit.hold_queue WHERE customer = 'ACME' \gset
SET LOCAL pg_credit.admin_role = 'regress_clerk';
SET ROLE regress_clerk;
SELECT credit.release_hold(:acme_hold, 'director approved the big order');
RESET ROLE;
SELECT status, forced, comment FROM credit.order_hold WHERE id = :acme_hold;
SELECT kind, reason, after->>'forced' AS forced FROM credit.event WHERE kind LIKE 'hold%' ORDER BY id;
SELECT status FROM sales_order WHERE id = 4;
-- Cancelling: the hold leaves the queue; the row stays held for the application to deal with.
SELECT hold_id AS black_hold FROM credit.hold_queue WHERE customer = 'BLACK' \gset
SELECT credit.cancel_hold(:black_hold, NULL);
SELECT credit.cancel_hold(:black_hold, 'customer blacklisted');
SELECT credit.cancel_hold(:black_hold, 'again');
SELECT credit.release_hold(:black_hold);
SELECT credit.release_hold(999999);
SELECT credit.release_hold(NULL);
SELECT count(*) AS queue FROM credit.hold_queue;
-- A held row the application deletes is withdrawn from the queue.
INSERT INTO sales_order VALUES (5, 'BLACK', 1);
DELETE FROM sales_order WHERE id = 5;
SELECT status, comment FROM credit.order_hold WHERE row_key = '{"id": "5"}';
SELECT * FROM credit.verify();
ROLLBACK;
