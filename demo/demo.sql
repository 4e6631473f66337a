-- A wholesale distributor (批发/分销) a year into using pg_credit: 240 customers, a year of orders,
-- invoices and payments, some good payers, some slow, a few bad; today's open orders go through
-- the guard like any application's would.
\set ON_ERROR_STOP on
SELECT setseed(0.20261123);
CREATE EXTENSION IF NOT EXISTS pg_credit;

-- Customers: types, regions, terms and limits sized to about two months of their business.
CREATE TEMP TABLE cust AS
SELECT 'C' || lpad(i::text, 4, '0') AS customer,
       (ARRAY['distributor', 'wholesale', 'wholesale', 'retail', 'retail'])[1 + (i % 5)] AS customer_type,
       (ARRAY['east', 'south', 'north', 'west', 'central'])[1 + (i * 7 % 5)] AS region,
       (ARRAY[30, 30, 45, 60])[1 + (i % 4)] AS terms_days,
       round((2000 + random() * 48000)::numeric, -2) AS monthly_sales,
       CASE WHEN random() < 0.7 THEN 'good' WHEN random() < 0.85 THEN 'slow' ELSE 'bad' END AS behaviour
  FROM generate_series(1, 240) i;
INSERT INTO credit.account (customer, credit_limit, terms_days, customer_type, region, currency)
SELECT customer,
       -- most get about three months of sales; some were given too little
       round(monthly_sales * (CASE WHEN random() < 0.1 THEN 1.2 ELSE 3 END)::numeric, -3),
       terms_days, customer_type, region, 'CNY'
  FROM cust;

-- Application tables: sales orders, guarded. Shipped but not yet invoiced still counts.
CREATE SCHEMA sales;
CREATE TABLE sales.orders (
    order_no   text PRIMARY KEY,
    customer   text NOT NULL,
    order_date date NOT NULL,
    amount     numeric(14,2) NOT NULL,
    status     text NOT NULL DEFAULT 'open'
               CHECK (status IN ('open', 'confirmed', 'shipped', 'invoiced', 'cancelled'))
);
SELECT credit.guard('sales.orders', 'customer', 'amount', 'status', '{open,confirmed,shipped}');

-- A year of history: about two orders a month per customer, each invoiced a few days later.
CREATE TEMP TABLE hist AS
SELECT c.customer, c.behaviour, c.terms_days,
       'SO-' || to_char(d, 'YYMMDD') || '-' || substr(c.customer, 2) AS order_no,
       d::date AS order_date,
       round((c.monthly_sales / 2 * (0.5 + random()))::numeric, 2) AS amount
  FROM cust c,
       generate_series(current_date - 365, current_date - 8, interval '15 days') d
 WHERE random() < 0.9;
INSERT INTO sales.orders (order_no, customer, order_date, amount, status)
SELECT order_no, customer, order_date, amount, 'invoiced' FROM hist;
SELECT count(credit.post_invoice(customer, 'INV' || substr(order_no, 3), amount, order_date + 3)) AS invoices_posted
  FROM hist ORDER BY 1;

-- Payments by behaviour: good payers around the due date, slow ones weeks late, bad ones often
-- not at all. Only payments dated up to today are posted; the rest is today's receivables.
CREATE TEMP TABLE pay AS
SELECT h.customer, 'INV' || substr(h.order_no, 3) AS doc_no, h.amount,
       h.order_date + 3 + h.terms_days + CASE h.behaviour
           WHEN 'good' THEN (random() * 10 - 7)::int
           WHEN 'slow' THEN (5 + random() * 25)::int
           ELSE (20 + random() * 60)::int END AS paid_on,
       h.behaviour
  FROM hist h
 WHERE h.behaviour <> 'bad' OR random() < 0.85;
SELECT count(credit.post_payment(customer, amount, paid_on, doc_no)) AS payments_posted
  FROM (SELECT * FROM pay WHERE paid_on <= current_date ORDER BY paid_on) p;

-- Credit control actions taken during the year.
UPDATE credit.account SET status = 'hold'
 WHERE customer IN (SELECT customer FROM cust WHERE behaviour = 'bad' ORDER BY customer LIMIT 4);
UPDATE credit.account SET status = 'blacklisted'
 WHERE customer = (SELECT customer FROM cust WHERE behaviour = 'bad' ORDER BY customer OFFSET 4 LIMIT 1);
SELECT count(credit.write_off(i.customer, i.doc_no, NULL, current_date - 30, 'customer insolvent')) AS written_off
  FROM credit.invoice i
 WHERE i.customer = (SELECT customer FROM cust WHERE behaviour = 'bad' ORDER BY customer OFFSET 4 LIMIT 1)
   AND i.open_amount > 0 AND i.due_date < current_date - 120;

-- Today's orders, placed the way any application would; the guard refuses what does not fit.
-- The application's log of today's order attempts (what the demo's story counts).
CREATE TABLE sales.order_attempt (customer text, amount numeric, accepted boolean, reason text);
DO $$
DECLARE
    c record;
    amt numeric;
BEGIN
    FOR c IN SELECT customer, monthly_sales FROM cust ORDER BY customer LOOP
        FOR k IN 1..2 LOOP
            amt := round((c.monthly_sales * (0.1 + random() * 0.6))::numeric, 2);
            BEGIN
                INSERT INTO sales.orders (order_no, customer, order_date, amount)
                VALUES ('SO-TODAY-' || substr(c.customer, 2) || '-' || k, c.customer, current_date, amt);
                INSERT INTO sales.order_attempt VALUES (c.customer, amt, true, NULL);
            EXCEPTION WHEN check_violation THEN
                INSERT INTO sales.order_attempt VALUES (c.customer, amt, false, SQLERRM);
            END;
        END LOOP;
    END LOOP;
END $$;
UPDATE sales.orders SET status = 'shipped' WHERE status = 'open' AND random() < 0.3;

SELECT count(*) FILTER (WHERE accepted) AS orders_accepted_today,
       count(*) FILTER (WHERE NOT accepted) AS orders_refused_today
  FROM sales.order_attempt;
ANALYZE;
