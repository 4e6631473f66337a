-- The raw score components of the customers $1 as of $2 (src/grading/mod.rs, Inputs::read), one
-- row per account: payment behaviour over the 12 months before $2 (paydex from 3 payments on; per
-- payment or at the closing payment, as pg_credit.days_late_basis says), the limit in force and
-- the amount used today, whether $2 is today, months of relationship. NULL = no data. Then the
-- evidence behind the score: invoices settled by payment by $2 (ever), payments in the 12 months.
-- Days past due, and the amount used on a past day, come from the aging (score_aging.sql).
-- Set-wise, every join through the customer: on Citus each node reads its own customers at once
-- (one customer alone is named by equality, `= $3`, and read on its node only: Batch in mod.rs).
WITH exp AS (SELECT e.customer,
                    CASE WHEN count(*) >= 3 THEN credit.paydex(e.days_late, e.amount) END AS paydex,
                    credit.weighted_days_late(e.days_late, e.amount) AS wdl,
                    credit.on_time_ratio(e.days_late, e.amount, 0) AS otr,
                    count(*) AS payments
               FROM credit.days_late_experience e
              WHERE e.customer = ANY ($1) AND e.paid_on <= $2 AND e.paid_on > $2 - 365
              GROUP BY e.customer),
     settled AS (SELECT e.customer, count(DISTINCT i.id) AS invoices
                   FROM credit.payment_experience e
                   JOIN credit.invoice i ON i.customer = e.customer AND i.doc_no = e.doc_no
                  WHERE e.customer = ANY ($1) AND e.paid_on <= $2 AND i.open_amount = 0
                  GROUP BY e.customer),
     first_invoice AS (SELECT i.customer, min(i.doc_date) AS doc_date FROM credit.invoice i
                        WHERE i.customer = ANY ($1) GROUP BY i.customer)
SELECT a.customer, x.paydex, x.wdl, x.otr,
       LEAST(CASE WHEN a.temporary_limit_until >= $2 THEN a.temporary_limit ELSE a.credit_limit END, a.policy_max_limit),
       a.exposure + a.member_exposure,
       $2 >= current_date,
       (extract(year FROM age($2, LEAST(a.created_at::date, f.doc_date))) * 12
        + extract(month FROM age($2, LEAST(a.created_at::date, f.doc_date))))::numeric,
       coalesce(s.invoices, 0), coalesce(x.payments, 0)
  FROM credit.account a
  LEFT JOIN exp x ON x.customer = a.customer
  LEFT JOIN settled s ON s.customer = a.customer
  LEFT JOIN first_invoice f ON f.customer = a.customer
 WHERE a.customer = ANY ($1)
