-- The kept_commitments component of customer $1 as of $2 (src/grading/mod.rs): of the promises
-- to pay and the payment arrangements decided in the 12 months before $2 (a cancelled
-- arrangement is neither), the share kept. NULL when none was decided.
WITH decided AS (
    SELECT p.status = 'kept' AS kept FROM credit.promise p
     WHERE p.customer = $1 AND p.status IN ('kept', 'broken') AND p.decided_on <= $2 AND p.decided_on > $2 - 365
    UNION ALL
    SELECT ar.status = 'completed' FROM credit.arrangement ar
     WHERE ar.customer = $1 AND ar.status IN ('completed', 'broken') AND ar.decided_on <= $2 AND ar.decided_on > $2 - 365)
SELECT round(count(*) FILTER (WHERE kept)::numeric / nullif(count(*), 0), 4) FROM decided
