-- Terms over time: windows (a promotion lengthens terms for orders placed in it, a seasonal
-- category gets shorter terms, better terms for a better grade), explain_terms saying which window
-- and rule applied, an invoice getting the terms in force at its own date, a statement showing
-- each invoice's terms.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, customer_type, region) VALUES
    ('TW-SHOP', 1e6, 'retail', 'east'), ('TW-BEST', 1e6, 'retail', 'east');
UPDATE credit.account SET grade = 'AAA' WHERE customer = 'TW-BEST';
INSERT INTO credit.policy (customer_type, terms_days) VALUES ('retail', 30);
INSERT INTO credit.terms_window (name, customer_type, valid_from, valid_until, terms_days, mode) VALUES
    ('Double 11 promotion', 'retail', '2026-11-01', '2026-11-11', 60, 'at_least');
INSERT INTO credit.terms_window (name, product_category, valid_from, valid_until, terms_days, mode) VALUES
    ('ice cream season', 'ice', '2026-06-01', '2026-08-31', 15, 'at_most');
INSERT INTO credit.terms_window (name, grade, valid_from, valid_until, terms_days, mode) VALUES
    ('best customers, 2026', 'AAA', '2026-01-01', '2026-12-31', 75, 'at_least');
-- Before, during and after the promotion; in the season; for the AAA customer.
SELECT d AS on_date, c AS customer, cat, e.terms_days, e.source, e.rule LIKE 'window %' AS by_window, e.valid_from, e.valid_until
  FROM (VALUES ('2026-10-31'::date, 'TW-SHOP', NULL), ('2026-11-01', 'TW-SHOP', NULL), ('2026-11-11', 'TW-SHOP', NULL),
               ('2026-11-12', 'TW-SHOP', NULL), ('2026-07-15', 'TW-SHOP', 'ice'), ('2026-07-15', 'TW-BEST', NULL),
               ('2026-07-15', 'TW-BEST', 'ice'), ('2026-11-05', 'TW-BEST', NULL)) v(d, c, cat),
       credit.explain_terms(c, 100, cat, d) e
 ORDER BY c, d, cat NULLS FIRST;
-- A window for large orders only (an amount tier for a time).
INSERT INTO credit.terms_window (name, customer_type, valid_from, valid_until, terms_days, mode, min_amount) VALUES
    ('big orders in November', 'retail', '2026-11-01', '2026-11-30', 90, 'at_least', 50000);
SELECT amount, e.terms_days, e.source, e.rule LIKE 'window %' AS by_window
  FROM unnest(ARRAY[49999.99, 50000]) amount, credit.explain_terms('TW-SHOP', amount, NULL, '2026-11-05') e ORDER BY amount;
SELECT count(*) AS refused FROM (SELECT 1) x
 WHERE regress.sqlstate_of($$INSERT INTO credit.terms_window (name, valid_from, valid_until, terms_days, min_amount)
                             VALUES ('none', '2026-01-01', '2026-02-01', 10, 0)$$) = '23514';
DELETE FROM credit.terms_window WHERE name = 'big orders in November';
-- Every step, for a person: the base, then the window.
SELECT regexp_replace(steps, '(policy|window) \d+', '\1 N', 'g') AS steps
  FROM credit.explain_terms('TW-SHOP', 100, NULL, '2026-11-05');
SELECT credit.terms_for('TW-SHOP', 100, NULL, '2026-11-05') AS in_promotion, credit.terms_for('TW-SHOP', 100, 'ice', '2026-07-01') AS in_season;
-- An invoice gets the terms in force at its own date (keyed in later or not), and remembers the
-- rule; an invoice with its own due date has none.
SELECT credit.post_invoice('TW-SHOP', 'TW-1', 500, '2026-11-05') > 0 AS promotion_invoice,
       credit.post_invoice('TW-SHOP', 'TW-2', 500, '2026-11-20') > 0 AS ordinary_invoice,
       credit.post_invoice('TW-SHOP', 'TW-3', 500, '2026-07-10', NULL, 'ice') > 0 AS season_invoice,
       credit.post_invoice('TW-SHOP', 'TW-4', 500, '2026-11-05', '2026-11-25') > 0 AS own_due_date;
SELECT doc_no, doc_date, due_date, due_date - doc_date AS terms_days, regexp_replace(terms_source, '\d+', 'N') AS terms_source
  FROM credit.invoice WHERE customer = 'TW-SHOP' ORDER BY doc_no;
-- The statement shows each invoice's terms.
SELECT entry_date, kind, doc_no, detail, debit FROM credit.statement('TW-SHOP', '2026-07-01', '2026-11-30')
 WHERE section = 'activity' ORDER BY line;
-- Bad windows are refused by the table; the matching is data, so nothing else changes.
\set VERBOSITY terse
INSERT INTO credit.terms_window (name, valid_from, valid_until, terms_days) VALUES ('backwards', '2026-02-01', '2026-01-01', 10);
INSERT INTO credit.terms_window (name, valid_from, valid_until, terms_days) VALUES ('forever', '2026-01-01', 'infinity', 10);
INSERT INTO credit.terms_window (name, valid_from, valid_until, terms_days, mode) VALUES ('odd', '2026-01-01', '2026-02-01', 10, 'sometimes');
INSERT INTO credit.terms_window (name, valid_from, valid_until, terms_days) VALUES (' ', '2026-01-01', '2026-02-01', 10);
INSERT INTO credit.terms_window (name, grade, valid_from, valid_until, terms_days) VALUES ('blank grade', '', '2026-01-01', '2026-02-01', 10);
\set VERBOSITY default
SELECT regress.sqlstate_of($$SELECT credit.explain_terms('TW-SHOP', 100, NULL, 'infinity')$$) AS infinite_date,
       regress.sqlstate_of($$SELECT credit.terms_for('TW-SHOP', 100, NULL, NULL)$$) AS null_date;
ROLLBACK;
-- A role without a pg_credit level cannot write the windows (the admin level writes them: 19_privilege_model).
SET ROLE regress_clerk;
INSERT INTO credit.terms_window (name, valid_from, valid_until, terms_days) VALUES ('mine', '2026-01-01', '2026-02-01', 90);
RESET ROLE;
