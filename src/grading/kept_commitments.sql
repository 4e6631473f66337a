-- The kept_commitments component of the customers $1 as of $2 (src/grading/mod.rs): of the
-- promises to pay and the payment arrangements decided in the 12 months before $2 (a cancelled
-- arrangement is neither), the share kept. Customers with none decided have no row.
WITH decided AS (
    SELECT p.customer, p.status = 'kept' AS kept FROM credit.promise p
     WHERE p.customer = ANY ($1) AND p.status IN ('kept', 'broken') AND p.decided_on <= $2 AND p.decided_on > $2 - 365
    UNION ALL
    SELECT ar.customer, ar.status = 'completed' FROM credit.arrangement ar
     WHERE ar.customer = ANY ($1) AND ar.status IN ('completed', 'broken') AND ar.decided_on <= $2 AND ar.decided_on > $2 - 365)
SELECT d.customer, round(count(*) FILTER (WHERE d.kept)::numeric / count(*), 4) FROM decided d GROUP BY d.customer
