-- Average monthly invoiced amount of the customers $1 over the 12 months before $2
-- (src/grading/mod.rs): what the limit a grade supports is proportional to. A cancelled invoice
-- was never a sale. Customers without sales have no row. (Every join goes through the customer:
-- on Citus each node reads its own customers.)
SELECT s.customer, avg(s.m)
  FROM (SELECT i.customer, sum(i.amount) AS m FROM credit.invoice i
         WHERE i.customer = ANY ($1) AND i.doc_date <= $2 AND i.doc_date > ($2 - interval '12 months')::date
           AND NOT EXISTS (SELECT 1 FROM credit.allocation a
                             JOIN credit.settlement s ON s.customer = a.customer AND s.id = a.settlement_id
                            WHERE a.customer = i.customer AND a.invoice_id = i.id AND s.kind = 'cancellation')
         GROUP BY i.customer, date_trunc('month', i.doc_date)) s
 GROUP BY s.customer
