-- Aging: bucket edges, as-of dates before and after payments, document basis, unapplied credit,
-- empty customers, configurable buckets, bad input.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, region, customer_type)
VALUES ('EDGE', 1e6, 'east', 'wholesale'), ('PAYER', 1e6, 'west', 'retail'), ('EMPTY', 1000, 'east', 'retail');
-- One invoice per edge: days past due as of 2026-06-30 = 0, 1, 30, 31, 90, 91, and one not yet due.
SELECT count(credit.post_invoice('EDGE', 'D' || d, 100 + d, date '2026-06-30' - d - 30, date '2026-06-30' - d))
  FROM unnest(ARRAY[-10, 0, 1, 30, 31, 60, 61, 90, 91]) d;
SELECT doc_no, due_date, open_amount, days, bucket, bucket_position
  FROM credit.aging('2026-06-30') WHERE customer = 'EDGE' ORDER BY days;
-- basis 'document': days since the document date (账龄)
SELECT doc_no, doc_date, days, bucket FROM credit.aging('2026-06-30', 'document') WHERE customer = 'EDGE' ORDER BY days;

-- As of a past date: documents after it do not exist yet, settlements after it are still open.
SELECT credit.post_invoice('PAYER', 'P1', 1000, '2026-03-01', '2026-03-31') > 0 AS posted;
SELECT credit.post_invoice('PAYER', 'P2', 500, '2026-04-01', '2026-04-30') > 0 AS posted;
CREATE TEMP TABLE aging_may AS SELECT * FROM credit.aging('2026-05-15') WHERE customer = 'PAYER';
SELECT doc_no, open_amount, days, bucket FROM aging_may ORDER BY doc_no;
SELECT credit.post_payment('PAYER', 1200, '2026-05-20') > 0 AS paid;                 -- P1 in full, 200 of P2
SELECT credit.post_credit_note('PAYER', 'CN1', 100, 'P2', '2026-06-05', 'short delivery') > 0 AS credited;
SELECT credit.post_payment('PAYER', 350, '2026-06-10', NULL, 'OVERPAY') > 0 AS paid;   -- 200 to P2, 150 unapplied
SELECT credit.post_invoice('PAYER', 'P3', 300, '2026-06-20') > 0 AS posted;           -- takes the 150 credit
SELECT credit.post_payment('PAYER', 80, '2026-06-25', NULL, 'PREPAY') > 0 AS paid;     -- applied to P3
SELECT credit.post_payment('PAYER', 400, '2026-06-28', NULL, 'ADVANCE') > 0 AS paid;   -- 70 to P3, 330 unapplied
-- The report for 2026-05-15 is the same today as it was on that day.
SELECT doc_no, open_amount, days, bucket FROM credit.aging('2026-05-15') WHERE customer = 'PAYER'
EXCEPT ALL SELECT doc_no, open_amount, days, bucket FROM aging_may;
SELECT count(*) AS rows_then, (SELECT count(*) FROM aging_may) AS rows_recorded
  FROM credit.aging('2026-05-15') WHERE customer = 'PAYER';
-- Between the payments, and today: unapplied credit shows as negative rows.
SELECT doc_type, doc_no, open_amount, days, bucket FROM credit.aging('2026-05-31') WHERE customer = 'PAYER' ORDER BY doc_type, doc_no;
SELECT doc_type, doc_no, open_amount, days, bucket FROM credit.aging('2026-06-12') WHERE customer = 'PAYER' ORDER BY doc_type, doc_no;
SELECT doc_type, doc_no, open_amount, days, bucket FROM credit.aging('2026-06-30') WHERE customer = 'PAYER' ORDER BY doc_type, doc_no;
SELECT sum(open_amount) AS aging_total, (SELECT exposure FROM credit.account WHERE customer = 'PAYER') AS exposure
  FROM credit.aging('2099-01-01') WHERE customer = 'PAYER';
-- Before any document: nothing.
SELECT count(*) FROM credit.aging('2020-01-01');

-- The views (as of today): every account has a row, empty ones with zeros.
SELECT customer, region, customer_type, not_due, days_1_30, days_31_60, days_61_90, over_90, later_buckets,
       total, overdue, oldest_days_past_due > 0 AS has_overdue
  FROM credit.aging_by_customer ORDER BY customer;
SELECT customer, bucket, bucket_position, amount FROM credit.aging_summary WHERE customer = 'EDGE' ORDER BY bucket_position;
SELECT region, customers, total, overdue FROM credit.aging_by_region ORDER BY region;
SELECT customer_type, customers, total FROM credit.aging_by_customer_type ORDER BY customer_type;
SELECT count(*) = (SELECT count(*) FROM credit.aging()) AS detail_is_today FROM credit.aging_detail;

-- Buckets are data: reconfigure to 1-15 / 16-45 / over 45, and every output follows.
UPDATE credit.aging_bucket SET label = '1-15', upper_days = 15 WHERE position = 2;
UPDATE credit.aging_bucket SET label = '16-45', lower_days = 16, upper_days = 45 WHERE position = 3;
UPDATE credit.aging_bucket SET label = 'over 45', lower_days = 46, upper_days = NULL WHERE position = 4;
DELETE FROM credit.aging_bucket WHERE position = 5;
SET CONSTRAINTS ALL IMMEDIATE;
SELECT position, label, lower_days, upper_days, is_default, retired FROM credit.aging_bucket ORDER BY position;
SELECT days, bucket, bucket_position FROM credit.aging('2026-06-30') WHERE customer = 'EDGE' ORDER BY days;
SELECT bucket, sum(amount) FROM credit.aging_summary WHERE customer = 'EDGE' GROUP BY bucket, bucket_position ORDER BY bucket_position;
-- A gap or an overlap is refused when the transaction (here: the statement) ends.
UPDATE credit.aging_bucket SET upper_days = 14 WHERE position = 2;
UPDATE credit.aging_bucket SET upper_days = 16 WHERE position = 2;
UPDATE credit.aging_bucket SET lower_days = 0 WHERE position = 1;
DELETE FROM credit.aging_bucket WHERE position = 4;
-- Re-adding a bucket at a retired position replaces the retired row (checked at the end).
SET CONSTRAINTS ALL DEFERRED;
UPDATE credit.aging_bucket SET label = '46-90', upper_days = 90 WHERE position = 4;
INSERT INTO credit.aging_bucket (position, label, lower_days, upper_days) VALUES (5, 'over 90', 91, NULL);
SET CONSTRAINTS ALL IMMEDIATE;
SELECT position, label, lower_days, upper_days, is_default, retired FROM credit.aging_bucket ORDER BY position;

-- Bad input: unknown basis 22023, NULL 22004, infinite date 22023 (raised even with no rows).
SELECT * FROM credit.aging('2026-06-30', 'invoice_date');
SELECT * FROM credit.aging(NULL);
SELECT * FROM credit.aging('2026-06-30', NULL);
SELECT * FROM credit.aging('infinity');
SELECT regress.sqlstate_of($$SELECT count(*) FROM credit.aging('2000-01-01', 'bogus')$$) AS no_rows_still_checked;
ROLLBACK;
