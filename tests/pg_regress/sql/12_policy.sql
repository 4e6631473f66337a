-- Credit policies as data: precedence, amount tiers and terms, and the rules the guard applies
-- from them (overdue block, prepayment only, policy maximum, near-limit warning).
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, customer_type, region) VALUES
    ('SHOP', 10000, 'retail', 'east'),
    ('DIST', 500000, 'distributor', 'east'),
    ('WEST', 10000, 'retail', 'west'),
    ('NEW', 10000, NULL, NULL);

-- Layered policies: the most specific matching row that sets a field wins (more match columns
-- first; at equal count product_category > customer_type > region).
INSERT INTO credit.policy (customer_type, region, product_category, terms_days, warn_ratio, overdue_block_days, max_limit, note) VALUES
    (NULL, NULL, NULL, 30, 0.8, 60, NULL, 'company default'),
    ('retail', NULL, NULL, 15, NULL, NULL, 20000, 'retail'),
    ('retail', 'east', NULL, NULL, NULL, 10, NULL, 'retail east: strict on overdue'),
    (NULL, 'east', NULL, 45, 0.9, NULL, NULL, 'east'),
    (NULL, NULL, 'steel', 60, NULL, NULL, NULL, 'steel is sold on longer terms');
SELECT customer, e.terms_days, e.max_limit, e.warn_ratio, e.overdue_block_days, e.matched_policies
  FROM credit.account a, credit.effective_policy(a.customer) e ORDER BY customer;
-- The guard's copy on the account follows the policies.
SELECT customer, policy_max_limit, policy_warn_ratio, policy_overdue_block_days, policy_prepayment_only
  FROM credit.account ORDER BY customer;
-- Changing a customer's region re-applies its policy at once.
UPDATE credit.account SET region = 'east' WHERE customer = 'WEST';
SELECT policy_overdue_block_days FROM credit.account WHERE customer = 'WEST';
UPDATE credit.account SET region = 'west' WHERE customer = 'WEST';
-- One row per match combination (NULL counts as a value): a duplicate is refused.
INSERT INTO credit.policy (customer_type) VALUES ('retail');
INSERT INTO credit.policy (warn_ratio) VALUES (1.5);
INSERT INTO credit.policy (region) VALUES ('');

-- Amount tiers: the most specific matching tier set, the highest min_amount at or below the order.
INSERT INTO credit.term_tier (customer_type, min_amount, terms_days) VALUES
    (NULL, 50000, 40), (NULL, 100000, 45), ('distributor', 200000, 75);
SELECT amount, credit.terms_for('WEST', amount) AS west, credit.terms_for('DIST', amount) AS dist
  FROM unnest(ARRAY[49999.99, 50000, 99999.99, 100000, 199999.99, 200000]) amount;
-- Precedence: the customer's own terms, else grade, else policy, else 30; a tier only lengthens.
SELECT * FROM credit.explain_terms('SHOP', 10);
SELECT * FROM credit.explain_terms('SHOP', 10, 'steel');
SELECT * FROM credit.explain_terms('NEW', 100000);
UPDATE credit.account SET terms_days = 90 WHERE customer = 'NEW';
SELECT * FROM credit.explain_terms('NEW', 100000);
UPDATE credit.account SET terms_days = 7, grade = 'AA' WHERE customer = 'WEST';
SELECT * FROM credit.explain_terms('WEST', 10);
UPDATE credit.account SET terms_days = NULL WHERE customer = 'WEST';
SELECT * FROM credit.explain_terms('WEST', 10);   -- grade AA: 45 days
-- post_invoice without a due date uses them.
SELECT credit.post_invoice('DIST', 'D-1', 250000, current_date) > 0 AS posted;
SELECT credit.post_invoice('SHOP', 'S-1', 100, current_date, product_category => 'steel') > 0 AS posted;
SELECT doc_no, due_date - doc_date AS terms FROM credit.invoice ORDER BY doc_no;
SELECT regress.sqlstate_of($$SELECT credit.terms_for('NOBODY', 1)$$), regress.sqlstate_of($$SELECT credit.terms_for('SHOP', -1)$$);

-- The guard applies the policy.
CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric);
SELECT credit.guard('orders', 'customer', 'amount');
-- Policy maximum: SHOP (retail) may not use more than 20000 even with a larger limit.
SET LOCAL pg_credit.admin_role = 'postgres';
UPDATE credit.account SET credit_limit = 50000 WHERE customer = 'SHOP';
RESET pg_credit.admin_role;
SELECT allowed, credit_limit, reasons FROM credit.check('SHOP', 20000);
INSERT INTO orders VALUES (1, 'SHOP', 19900.01);
-- Near-limit warning once, when an order crosses the line (retail east: 0.9 of the limit).
INSERT INTO orders VALUES (1, 'SHOP', 17000);
INSERT INTO orders VALUES (2, 'SHOP', 1000);    -- crosses 18000: WARNING and an event
INSERT INTO orders VALUES (3, 'SHOP', 100);     -- already past the line: no second warning
SELECT kind, after FROM credit.event WHERE kind = 'near_limit' ORDER BY id;
SELECT allowed, warnings FROM credit.check('WEST', 8000);
DELETE FROM orders;

-- Overdue block: retail east refuses new credit orders while an invoice is more than 10 days late.
SELECT credit.post_invoice('SHOP', 'S-2', 100, current_date - 40, current_date - 10) > 0 AS due_10_days_ago;
INSERT INTO orders VALUES (10, 'SHOP', 1);      -- 10 days: still allowed
SELECT credit.post_invoice('SHOP', 'S-3', 100, current_date - 40, current_date - 11) > 0 AS due_11_days_ago;
INSERT INTO orders VALUES (11, 'SHOP', 1);
SELECT allowed, reasons FROM credit.check('SHOP', 1);
-- Paying the late invoice lifts the block.
SELECT credit.post_payment('SHOP', 100, current_date, 'S-3') > 0 AS paid;
INSERT INTO orders VALUES (11, 'SHOP', 1);
SELECT oldest_open_due = current_date - 10 AS oldest_is_s2 FROM credit.account WHERE customer = 'SHOP';

-- Prepayment only: orders must be covered by money already received.
INSERT INTO credit.policy (customer_type, prepayment_required) VALUES ('cash', true);
INSERT INTO credit.account (customer, credit_limit, customer_type) VALUES ('CASHY', 5000, 'cash');
INSERT INTO orders VALUES (20, 'CASHY', 100);
SELECT credit.post_payment('CASHY', 150, current_date) > 0 AS prepaid;
INSERT INTO orders VALUES (20, 'CASHY', 100);
INSERT INTO orders VALUES (21, 'CASHY', 51);
SELECT allowed, credit_limit, available, reasons FROM credit.check('CASHY', 50);
-- A policy change reaches existing accounts: lifting prepayment restores the limit.
UPDATE credit.policy SET prepayment_required = false WHERE customer_type = 'cash';
INSERT INTO orders VALUES (21, 'CASHY', 51);

-- A policy may blacklist a customer after a write-off (recorded with the reason).
UPDATE credit.policy SET blacklist_on_write_off = true WHERE customer_type = 'retail' AND region IS NULL;
SELECT credit.write_off('SHOP', 'S-2', NULL, current_date, 'insolvent') > 0 AS written_off;
SELECT status FROM credit.account WHERE customer = 'SHOP';
SELECT kind, reason, after FROM credit.event WHERE customer = 'SHOP' AND kind = 'status_changed';
SELECT credit.write_off('DIST', 'D-1', 1, current_date, 'rounding') > 0 AS written_off;   -- no such policy for DIST
SELECT status FROM credit.account WHERE customer = 'DIST';

SELECT * FROM credit.verify();
ROLLBACK;
