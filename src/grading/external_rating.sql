-- The external_rating component of the customers $1 as of $2 (src/grading/mod.rs): the mean
-- normalised score of each source's latest rating valid on the day and received by then (an
-- expired one no longer counts). Customers without one have no row.
SELECT x.customer, avg(x.score)
  FROM (SELECT DISTINCT ON (r.customer, r.source) r.customer, r.score FROM credit.external_rating r
         WHERE r.customer = ANY ($1) AND r.valid_from <= $2 AND r.valid_until > $2 AND r.received_at < $2 + 1
         ORDER BY r.customer, r.source, r.valid_from DESC, r.id DESC) x
 GROUP BY x.customer
