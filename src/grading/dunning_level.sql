-- The highest dunning step past due each of the customers $1 reached in the 12 months before $2,
-- counted as the number of distinct overdue day-steps of the ladder up to it (escalate and hold on
-- the same day are one step); customers never dunned have no row (src/grading/mod.rs: asked only
-- where collections have run).
WITH step AS (SELECT l.ladder, l.level,
                     (SELECT count(DISTINCT l2.days) FROM credit.dunning_level l2
                       WHERE l2.ladder = l.ladder AND NOT l2.retired AND l2.days > 0 AND l2.days <= l.days) AS steps
                FROM credit.dunning_level l)
SELECT t.customer, max(s.steps)::numeric
  FROM credit.collection_task t JOIN step s ON s.ladder = t.ladder AND s.level = t.level
 WHERE t.customer = ANY ($1) AND t.created_for <= $2 AND t.created_for > $2 - 365
 GROUP BY t.customer
