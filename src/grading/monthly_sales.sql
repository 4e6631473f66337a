-- Average monthly invoiced amount of customer $1 over the 12 months before $2 (src/grading/mod.rs):
-- what the limit a grade supports is proportional to.
SELECT avg(m) FROM (SELECT sum(amount) AS m FROM credit.invoice
                     WHERE customer = $1 AND doc_date <= $2 AND doc_date > ($2 - interval '12 months')::date
                     GROUP BY date_trunc('month', doc_date)) s
