-- The highest dunning step past due customer $1 reached in the 12 months before $2, counted as
-- the number of distinct overdue day-steps of the ladder up to it (escalate and hold on the same
-- day are one step) (src/grading/mod.rs, dunning_level: asked only where collections have run).
SELECT (SELECT max((SELECT count(DISTINCT l2.days) FROM credit.dunning_level l2
                     WHERE l2.ladder = t.ladder AND NOT l2.retired AND l2.days > 0 AND l2.days <= l.days))
          FROM credit.collection_task t JOIN credit.dunning_level l ON l.ladder = t.ladder AND l.level = t.level
         WHERE t.customer = $1 AND t.created_for <= $2 AND t.created_for > $2 - 365)
