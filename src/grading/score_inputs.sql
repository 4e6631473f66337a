-- The raw score components of customer $1 as of $2 (src/grading/mod.rs, inputs): payment behaviour
-- over the 12 months before $2 (paydex from 3 payments on; per payment or at the closing payment,
-- as pg_credit.days_late_basis says), days past due of the oldest overdue
-- invoice, utilisation of the limit in force, months of relationship. NULL = no data. Then the
-- evidence behind the score: invoices settled by payment by $2 (ever), payments in the 12 months.
WITH exp AS (SELECT e.days_late, e.amount FROM credit.days_late_experience e
              WHERE e.customer = $1 AND e.paid_on <= $2 AND e.paid_on > $2 - 365),
     b AS (SELECT CASE WHEN count(*) >= 3 THEN credit.paydex(days_late, amount) END AS paydex,
                  credit.weighted_days_late(days_late, amount) AS wdl,
                  credit.on_time_ratio(days_late, amount, 0) AS otr FROM exp)
SELECT b.paydex, b.wdl, b.otr,
       coalesce((SELECT max(g.days) FROM credit.aging($2) g
                  WHERE g.customer = $1 AND g.doc_type = 'invoice' AND g.days > 0), 0)::numeric,
       CASE WHEN lim > 0 THEN round(used / lim, 4) END,
       ((extract(year FROM age($2, since)) * 12 + extract(month FROM age($2, since))))::numeric,
       (SELECT count(DISTINCT i.id) FROM credit.payment_experience e
          JOIN credit.invoice i ON i.customer = e.customer AND i.doc_no = e.doc_no
         WHERE e.customer = $1 AND e.paid_on <= $2 AND i.open_amount = 0),
       (SELECT count(*) FROM exp)
FROM b,
     (SELECT LEAST(CASE WHEN a.temporary_limit_until >= $2 THEN a.temporary_limit ELSE a.credit_limit END, a.policy_max_limit) AS lim,
             CASE WHEN $2 >= current_date THEN a.exposure + a.member_exposure
                  ELSE (SELECT coalesce(sum(g.open_amount), 0) FROM credit.aging($2) g WHERE g.customer = $1) END AS used,
             LEAST(a.created_at::date, (SELECT min(i.doc_date) FROM credit.invoice i WHERE i.customer = $1)) AS since
        FROM credit.account a WHERE a.customer = $1) acct
