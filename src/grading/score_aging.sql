-- What the score takes from the aging of the customers $1 as of $2 (src/grading/mod.rs,
-- Inputs::read), for those with open documents: days past due of the oldest overdue invoice, and
-- the open amount (the amount used on a past day).
SELECT g.customer,
       coalesce(max(g.days) FILTER (WHERE g.doc_type = 'invoice' AND g.days > 0), 0)::numeric,
       coalesce(sum(g.open_amount), 0)
  FROM credit.aging($2) g
 WHERE g.customer = ANY ($1)
 GROUP BY g.customer
