-- Reconciliation with the finance ledger (对账): the finance system's items as of a date loaded from
-- any query, matched with pg_credit's open items as of that date — not as of now — by customer and
-- document; every kind of difference; runs kept, so the next run shows what was fixed; a
-- difference traced back to the documents and events behind it (差异追溯).
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO credit.account (customer, credit_limit) VALUES ('RC-A', 100000), ('RC-B', 100000), ('RC-C', 100000);
SELECT count(*) AS posted FROM (VALUES
    (credit.post_invoice('RC-A', 'RA-1', 1000, '2015-05-02', '2015-06-01')),   -- matches
    (credit.post_invoice('RC-A', 'RA-2', 500, '2015-05-05', '2015-06-04')),    -- amount differs
    (credit.post_invoice('RC-A', 'RA-3', 300, '2015-05-06', '2015-06-05')),    -- dates differ by 2 days
    (credit.post_invoice('RC-A', 'RA-4', 200, '2015-05-07', '2015-06-06')),    -- not in finance
    (credit.post_invoice('RC-A', 'RA-5', 150, '2015-05-08', '2015-06-07')),    -- settled here, open there
    (credit.post_invoice('RC-A', 'RA-6', 80, '2015-05-09', '2015-06-08')),     -- under RC-B there
    (credit.post_invoice('RC-C', 'RCC-1', 100.4, '2015-05-10', '2015-06-09')),
    (credit.post_invoice('RC-C', 'RCC-2', 100.4, '2015-05-10', '2015-06-09')),
    (credit.post_invoice('RC-C', 'RCC-3', 100.4, '2015-05-10', '2015-06-09'))) v(id);
SELECT credit.post_payment('RC-A', 150, '2015-05-20', 'RA-5', 'PAY-5') > 0 AS ra5_paid,
       credit.post_payment('RC-B', 60, '2015-05-21', NULL, 'PRE-B') > 0 AS rc_b_prepaid;
-- After the date: a payment of RA-1 and a new invoice. As of 2015-05-31 neither counts.
SELECT credit.post_payment('RC-A', 1000, '2015-06-03', 'RA-1', 'PAY-1') > 0 AS paid_later,
       credit.post_invoice('RC-A', 'RA-9', 70, '2015-06-02', '2015-07-02') > 0 AS invoiced_later;

-- The finance system's items as of 2015-05-31, from a staging table in the caller's schema.
CREATE TABLE fin_staging (customer text, doc_no text, amount numeric, doc_date date, due_date date);
INSERT INTO fin_staging VALUES
    ('RC-A', 'RA-1', 1000, '2015-05-02', '2015-06-01'),
    ('RC-A', 'RA-2', 450, '2015-05-05', '2015-06-04'),
    ('RC-A', 'RA-3', 300, '2015-05-08', '2015-06-07'),
    ('RC-A', 'RA-5', 150, '2015-05-08', '2015-06-07'),
    ('RC-B', 'RA-6', 80, '2015-05-09', '2015-06-08'),
    ('RC-B', 'PRE-B', -60, '2015-05-21', NULL),
    ('RC-B', 'FB-7', 35, '2015-05-30', '2015-06-29'),
    ('RC-C', 'RCC-1', 100, '2015-05-10', '2015-06-09'),
    ('RC-C', 'RCC-2', 100, '2015-05-10', '2015-06-09'),
    ('RC-C', 'RCC-3', 100, '2015-05-10', '2015-06-09');
SELECT credit.load_finance_items('2015-05-31', 'SELECT * FROM fin_staging') AS loaded;

-- Exact: every difference, as of the date.
SELECT kind, customer, doc_no, credit_amount, finance_amount, difference, credit_date, finance_date, other_customer, status
  FROM credit.reconcile('2015-05-31') WHERE customer LIKE 'RC-%';
-- With tolerances of 0.5 and 2 days: RA-3's dates and each RCC line match, but RC-C's balance is 1.20 off.
SELECT kind, customer, doc_no, difference, status
  FROM credit.reconcile('2015-05-31', 0.5, 2) WHERE customer LIKE 'RC-%';
SELECT finance_items, open_items, matched, differences, fixed, finance_total, credit_total, amount_tolerance, date_tolerance
  FROM credit.reconciliation WHERE as_of = '2015-05-31' ORDER BY id;

-- Fixed on both sides: RA-2 corrected in finance, RA-4 added there, RA-5's payment booked there,
-- FB-7 posted here — where RC-B's prepayment settles it at once, which the finance system has not
-- done: FB-7 is closed here now and PRE-B's rest differs. The next run shows what was fixed, what
-- persists and what is new.
UPDATE fin_staging SET amount = 500 WHERE doc_no = 'RA-2';
INSERT INTO fin_staging VALUES ('RC-A', 'RA-4', 200, '2015-05-07', '2015-06-06');
DELETE FROM fin_staging WHERE doc_no = 'RA-5';
SELECT credit.post_invoice('RC-B', 'FB-7', 35, '2015-05-30', '2015-06-29') > 0 AS posted_here;
SELECT credit.load_finance_items('2015-05-31', 'SELECT * FROM fin_staging') AS reloaded;
SELECT kind, customer, doc_no, difference, status
  FROM credit.reconcile('2015-05-31', 0.5, 2) WHERE customer LIKE 'RC-%';
SELECT matched, differences, fixed FROM credit.reconciliation WHERE as_of = '2015-05-31' ORDER BY id DESC LIMIT 1;
-- Loading adds to the date's items when told not to replace them.
SELECT credit.load_finance_items('2015-05-31', $$SELECT 'RC-C' AS customer, 'RCC-4' AS doc_no, 5 AS amount, NULL AS doc_date, NULL AS due_date$$, false) AS added;
SELECT count(*) AS items FROM credit.finance_item WHERE as_of = '2015-05-31' AND customer LIKE 'RC-%';
-- A document's lines (instalments) are one item: amounts summed, the earliest dates; lines added
-- later for a document already loaded add to it.
SELECT credit.load_finance_items('2015-06-30', $$SELECT * FROM (VALUES ('RC-C', 'RCC-1', 60.4, DATE '2015-05-10', DATE '2015-06-09'),
                                                                  ('RC-C', 'RCC-1', 30, DATE '2015-05-10', DATE '2015-06-19'))
                                                      v(customer, doc_no, amount, doc_date, due_date)$$) AS documents;
SELECT credit.load_finance_items('2015-06-30', $$SELECT 'RC-C' AS customer, 'RCC-1' AS doc_no, 10 AS amount,
                                                        NULL::date AS doc_date, NULL::date AS due_date$$, false) AS added;
SELECT customer, doc_no, amount, doc_date, due_date FROM credit.finance_item WHERE as_of = '2015-06-30';
-- Every run is an event.
SELECT count(*) AS runs FROM credit.event WHERE kind = 'reconciliation_run' AND after ->> 'as_of' = '2015-05-31';

-- Tracing RA-5 (open there, settled here) and RA-1 (paid after the date; the payment then bounced).
SELECT credit.reverse_settlement(id, 'cheque returned', '2015-06-10') > 0 AS bounced
  FROM credit.settlement WHERE customer = 'RC-A' AND doc_no = 'PAY-1';
-- (Ids and the events' recording dates vary from run to run: masked.)
SELECT CASE WHEN what LIKE 'event %' THEN NULL ELSE happened_on END AS happened_on, what, amount,
       regexp_replace(document, '[0-9]+', 'n', 'g') AS document, detail
  FROM credit.reconciliation_trace('RC-A', 'RA-5');
SELECT CASE WHEN what LIKE 'event %' THEN NULL ELSE happened_on END AS happened_on, what, amount,
       regexp_replace(document, '[0-9]+', 'n', 'g') AS document, detail
  FROM credit.reconciliation_trace('RC-A', 'RA-1');
SELECT count(*) AS nothing FROM credit.reconciliation_trace('RC-A', 'NO-SUCH');

-- What cannot be loaded or reconciled; a failed load leaves the items as they were.
SELECT regress.sqlstate_of('SELECT credit.load_finance_items(''2015-05-31'', ''SELECT 1'')') AS wrong_columns,
       regress.sqlstate_of('SELECT credit.load_finance_items(''2015-05-31'', ''SELEC * FROM fin_staging'')') AS syntax,
       regress.sqlstate_of('SELECT credit.load_finance_items(''2015-05-31'', ''SELECT * FROM no_such_table'')') AS no_table,
       regress.sqlstate_of('SELECT credit.load_finance_items(''2015-05-31'', '''')') AS empty_query,
       regress.sqlstate_of('SELECT credit.load_finance_items(NULL, ''SELECT * FROM fin_staging'')') AS null_date,
       regress.sqlstate_of('SELECT credit.load_finance_items(''infinity'', ''SELECT * FROM fin_staging'')') AS infinite,
       regress.sqlstate_of($q$SELECT credit.load_finance_items('2015-05-31', $$SELECT 'RC-A' customer, 'X' doc_no, 'NaN'::numeric amount, NULL doc_date, NULL due_date$$)$q$) AS nan,
       regress.sqlstate_of($q$SELECT credit.load_finance_items('2015-05-31', $$SELECT NULL customer, 'X' doc_no, 1 amount, NULL doc_date, NULL due_date$$)$q$) AS null_customer,
       regress.sqlstate_of($q$SELECT credit.load_finance_items('2015-05-31', $$SELECT 'RC-A' customer, 'X' doc_no, 'ten' amount, NULL doc_date, NULL due_date$$)$q$) AS not_a_number,
       regress.sqlstate_of($q$SELECT credit.load_finance_items('2015-05-31', $$SELECT 'RC-A' customer, 'X' doc_no, 1 amount, 'infinity'::date doc_date, NULL due_date$$)$q$) AS infinite_doc_date,
       regress.sqlstate_of($q$SELECT credit.load_finance_items('2015-05-31', $$SELECT 'RC-A' customer, 'X' doc_no, 1 amount$$)$q$) AS columns_missing;
SELECT count(*) AS items FROM credit.finance_item WHERE as_of = '2015-05-31' AND customer LIKE 'RC-%';
SELECT regress.sqlstate_of('SELECT * FROM credit.reconcile(NULL)') AS null_date,
       regress.sqlstate_of('SELECT * FROM credit.reconcile(current_date + 1)') AS future,
       regress.sqlstate_of('SELECT * FROM credit.reconcile(''2015-05-31'', -1)') AS negative_tolerance,
       regress.sqlstate_of('SELECT * FROM credit.reconcile(''2015-05-31'', ''NaN'')') AS nan_tolerance,
       regress.sqlstate_of('SELECT * FROM credit.reconcile(''2015-05-31'', 0, -1)') AS negative_days,
       regress.sqlstate_of('SELECT * FROM credit.reconciliation_trace(NULL, ''RA-1'')') AS trace_null,
       regress.sqlstate_of('SELECT * FROM credit.reconciliation_trace(''RC-A'', '' '')') AS trace_empty;
-- A date nothing was loaded for: every open item is missing in finance.
SELECT kind, count(*) FROM credit.reconcile('2015-05-15') WHERE customer LIKE 'RC-%' GROUP BY kind ORDER BY kind;
-- Runs and their differences are records: not even the owner edits them.
SELECT regress.sqlstate_of('UPDATE credit.reconciliation_difference SET status = ''new''') AS update_difference,
       regress.sqlstate_of('DELETE FROM credit.reconciliation_difference') AS delete_difference,
       regress.sqlstate_of('UPDATE credit.reconciliation SET fixed = 0') AS update_run,
       regress.sqlstate_of('TRUNCATE credit.reconciliation CASCADE') AS truncate_runs;
