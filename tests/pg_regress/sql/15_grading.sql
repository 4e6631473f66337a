-- Scores, grades and the periodic review of limits.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
SELECT grade, min_score, max_score, limit_coefficient, terms_days, rank FROM credit.grade ORDER BY rank;
SELECT component, weight FROM credit.score_weight ORDER BY component;
-- Ranges never overlap.
INSERT INTO credit.grade (grade, min_score, max_score, limit_coefficient, terms_days, rank) VALUES ('X', 85, 95, 1, 30, 9);
INSERT INTO credit.score_weight (component, weight) VALUES ('astrology', 1);

-- GOOD pays on time; LATE pays 40 days late and has an invoice 50 days overdue; NEW has no history.
INSERT INTO credit.account (customer, credit_limit, created_at) VALUES
    ('GOOD', 10000, now() - interval '3 years'), ('LATE', 10000, now() - interval '1 year'), ('NEW', 5000, now());
INSERT INTO credit.policy (max_limit, max_increase_ratio, approval_above) VALUES (100000, 0.5, 2000);
DO $$
DECLARE m int;
BEGIN
    FOR m IN 1..6 LOOP
        PERFORM credit.post_invoice('GOOD', 'G-' || m, 6000, current_date - 30 * m - 30, current_date - 30 * m);
        PERFORM credit.post_payment('GOOD', 6000, current_date - 30 * m, 'G-' || m);
        PERFORM credit.post_invoice('LATE', 'L-' || m, 3000, current_date - 30 * m - 70, current_date - 30 * m - 40);
        PERFORM credit.post_payment('LATE', 3000, current_date - 30 * m, 'L-' || m);
    END LOOP;
    PERFORM credit.post_invoice('LATE', 'L-open', 2000, current_date - 80, current_date - 50);
END $$;
SELECT customer, s.score, s.grade FROM credit.account a, credit.score(a.customer) s ORDER BY customer;
SELECT c->>'component' AS component, c->>'value' AS value, c->>'points' AS points, c->>'weight' AS weight
  FROM credit.score('LATE') s, jsonb_array_elements(s.components) c;
-- A score as of a past date uses only what was known then.
SELECT score AS late_score_90_days_ago FROM credit.score('LATE', current_date - 90);

-- Dry run: nothing changes.
SELECT customer, old_grade, new_grade, old_limit, proposed_limit, applied, action FROM credit.regrade(dry_run => true);
SELECT customer, grade, credit_limit FROM credit.account ORDER BY customer;
SELECT count(*) AS events FROM credit.event WHERE kind IN ('grade_changed', 'limit_changed');
-- Apply: GOOD's increase is capped at +50 % and above approval_above, so it becomes a request;
-- LATE (grade C) falls to no credit at once; NEW has nothing to score.
SELECT customer, old_grade, new_grade, old_limit, proposed_limit, applied, action, reason FROM credit.regrade();
SELECT customer, grade, credit_limit FROM credit.account ORDER BY customer;
SELECT customer, requested_limit, source, status FROM credit.limit_request;
SELECT kind, customer, before, after FROM credit.event WHERE kind IN ('grade_changed', 'limit_changed') ORDER BY id;
-- Running it again changes nothing more (the request is still pending).
SELECT customer, applied, action FROM credit.regrade() ORDER BY customer;
-- Bad input.
SELECT regress.sqlstate_of($$SELECT * FROM credit.regrade(current_date + 1)$$) AS future,
       regress.sqlstate_of($$SELECT * FROM credit.regrade(NULL)$$) AS null_date,
       regress.sqlstate_of($$SELECT * FROM credit.score('NOBODY')$$) AS unknown,
       regress.sqlstate_of($$SELECT * FROM credit.score('GOOD', 'infinity')$$) AS infinite;
-- Grades are data: a DBA may set one by hand (recorded), but only an existing one.
UPDATE credit.account SET grade = 'ZZZ' WHERE customer = 'NEW';
UPDATE credit.account SET grade = 'B' WHERE customer = 'NEW';
ROLLBACK;
