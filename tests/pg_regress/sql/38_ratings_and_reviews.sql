-- Grades need evidence, reviews move a step at a time and cap what they cut, external ratings
-- (征信) count in the score while valid. Dates are relative where the rule is "as of today";
-- what is printed does not move with the calendar.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on

-- A new account with one invoice and one partial payment is not graded (the README's quickstart
-- used to give it AAA and ask for 2.4 times its limit).
INSERT INTO credit.account (customer, credit_limit, customer_type, region) VALUES ('R-NEW', 5000, 'review', 'north');
SELECT credit.post_invoice('R-NEW', 'RN-1', 1200, current_date - 20, current_date + 10) > 0 AS invoiced,
       credit.post_payment('R-NEW', 500, current_date - 5) > 0 AS paid;
SELECT s.score IS NOT NULL AS has_score, s.grade, s.evidence ->> 'standing' AS standing, s.evidence ->> 'why' AS why
  FROM credit.score('R-NEW') s;
SELECT old_limit, proposed_limit, action, reason FROM credit.regrade(dry_run => true) WHERE customer = 'R-NEW';

-- An old customer graded AA that now pays very late: its score says C. A review moves it one step
-- (to A), and cuts its limit by at most half, for approval.
INSERT INTO credit.account (customer, credit_limit, customer_type, region, created_at)
VALUES ('R-SLIDE', 40000, 'review', 'north', now() - interval '3 years');
UPDATE credit.account SET grade = 'AA' WHERE customer = 'R-SLIDE';
SELECT count(*) AS documents FROM (
    SELECT credit.post_invoice('R-SLIDE', 'RS-' || k, 3000, current_date - 40 * k - 100, current_date - 40 * k - 70),
           credit.post_payment('R-SLIDE', 3000, current_date - 40 * k, 'RS-' || k)
      FROM generate_series(1, 6) k) x;
SELECT s.grade AS score_grade, s.evidence ->> 'standing' AS standing, (s.evidence ->> 'strong')::boolean AS strong
  FROM credit.score('R-SLIDE') s;
SELECT old_grade, new_grade, old_limit, proposed_limit, action,
       reason LIKE '%the score says C; a review moves 1 step without strong evidence%' AS held_back_said,
       reason LIKE '%held at the maximum decrease per review (0.5)%needs approval%' AS cap_said
  FROM credit.regrade(dry_run => true) WHERE customer = 'R-SLIDE';
-- Applied: the grade moves a step, the cut waits for approval by the first approval tier
-- (nothing cut yet).
SELECT action, applied FROM credit.regrade() WHERE customer = 'R-SLIDE';
SELECT grade, credit_limit FROM credit.account WHERE customer = 'R-SLIDE';
SELECT requested_limit, current_limit, source, status FROM credit.limit_request WHERE customer = 'R-SLIDE';
-- Strong evidence (here the policy counts 6 payments in the year as strong) moves the grade all
-- the way.
INSERT INTO credit.policy (customer_type, strong_evidence_payments) VALUES ('review', 6);
SELECT new_grade, reason NOT LIKE '%score says%' AS not_held FROM credit.regrade(dry_run => true) WHERE customer = 'R-SLIDE';
-- A small cut applies at once: 10 % with approval above 25 %.
UPDATE credit.policy SET decrease_approval_ratio = 0.9, max_decrease_ratio = 0.1 WHERE customer_type = 'review';
SELECT proposed_limit, action FROM credit.regrade(dry_run => true) WHERE customer = 'R-SLIDE';
SELECT max_decrease_ratio, decrease_approval_ratio, max_grade_steps, strong_evidence_payments, min_settled_invoices,
       min_relationship_months FROM credit.effective_policy('R-SLIDE');
DELETE FROM credit.policy WHERE customer_type = 'review';

-- The dry run by region and grade, per region and in all.
SELECT rows_for, region, grade, customers, unchanged, increases, decreases, requests, unrated, limits_now, limits_after, limits_requested
  FROM credit.regrade_summary() WHERE region = 'north';

-- External ratings: three formats and a generic mapping, previewed.
SELECT format, external_id, agency_grade, agency_score, score, risk_level, explanation
  FROM credit.map_rating('{"duns": "804735132", "paydex": 72, "failure_score": 40, "failure_class": 3, "rating_date": "2026-10-01"}');
SELECT format, agency_grade, score, risk_level, explanation FROM credit.map_rating('{"company_id": "GB-1", "score": 64, "rating": "B"}');
SELECT format, external_id, score, risk_level, explanation
  FROM credit.map_rating('{"unified_social_credit_code": "91350100M000100Y43", "risk_level": "中风险", "risk_items": [{"type": "被执行人", "count": 2}, {"type": "行政处罚"}]}');
SELECT format, procedure, external_id, score, risk_level, rating_date, explanation
  FROM credit.map_rating('{"report": {"risk": 250, "id": "X-9", "on": "2026-09-30"}}', 'generic',
                         '{"score": "/report/risk", "min": 0, "max": 1000, "higher_is_better": false, "external_id": "/report/id", "rating_date": "/report/on", "procedure": "ACME risk index"}');

-- Imported: a valid rating counts in the score (its component and its weight), with its trend.
SELECT (SELECT c FROM jsonb_array_elements(s.components) c WHERE c ->> 'component' = 'external_rating') AS before_import
  FROM credit.score('R-SLIDE') s;
SELECT credit.import_rating('R-SLIDE', 'dnb', jsonb_build_object('duns', '804735132', 'paydex', 50, 'rating_date', current_date - 30)) > 0 AS imported;
SELECT credit.import_rating('R-SLIDE', 'dnb', jsonb_build_object('duns', '804735132', 'paydex', 40, 'rating_date', current_date - 10)) > 0 AS imported_again;
SELECT source, score, risk_level, trend, valid_until - valid_from AS valid_days FROM credit.external_rating WHERE customer = 'R-SLIDE' ORDER BY id;
SELECT (SELECT c ->> 'value' FROM jsonb_array_elements(s.components) c WHERE c ->> 'component' = 'external_rating') AS rating_component
  FROM credit.score('R-SLIDE') s;
SELECT kind, after ->> 'score' AS score, after ->> 'trend' AS trend, before ->> 'score' AS previous
  FROM credit.event WHERE customer = 'R-SLIDE' AND kind = 'rating_received' ORDER BY id;
-- Two sources valid: their mean.
SELECT credit.import_rating('R-SLIDE', 'qichacha', jsonb_build_object('unified_social_credit_code', '91350100M000100Y43',
                                                                      'risk_level', '低', 'rating_date', current_date - 3)) > 0 AS second_source;
SELECT (SELECT c ->> 'value' FROM jsonb_array_elements(s.components) c WHERE c ->> 'component' = 'external_rating') AS two_sources
  FROM credit.score('R-SLIDE') s;
-- The credit file shows them, newest first.
SELECT r ->> 'source' AS source, r ->> 'score' AS score, r ->> 'in_force' AS in_force
  FROM jsonb_array_elements(credit.file('R-SLIDE') -> 'ratings') r;
-- An expired rating stops counting, and the daily job announces once that a new report is due.
SELECT credit.import_rating('R-NEW', 'creditsafe', jsonb_build_object('rating', 'A', 'rating_date', current_date - 400)) > 0 AS old_report;
SELECT (SELECT c ->> 'value' FROM jsonb_array_elements(s.components) c WHERE c ->> 'component' = 'external_rating') AS expired_counts
  FROM credit.score('R-NEW') s;
SELECT step, changes FROM credit.run_daily() WHERE step = 'ratings_due';
SELECT step, changes FROM credit.run_daily() WHERE step = 'ratings_due';
SELECT customer, reason = format('the creditsafe rating expired on %s: a new report is due', to_char(current_date - 35, 'YYYY-MM-DD')) AS says_when,
       after ->> 'source' AS source
  FROM credit.event WHERE kind = 'rating_due' AND customer LIKE 'R-%';

-- Bad input: a clear error, nothing stored.
SELECT regress.sqlstate_of($$SELECT credit.map_rating(NULL)$$) AS null_payload,
       regress.sqlstate_of($$SELECT credit.map_rating('{"x": 1}')$$) AS unknown_format,
       regress.sqlstate_of($$SELECT credit.map_rating('{"paydex": 1}', 'nope')$$) AS bad_format_name,
       regress.sqlstate_of($$SELECT credit.map_rating('[1, 2]', 'paydex')$$) AS not_an_object,
       regress.sqlstate_of($$SELECT credit.map_rating('{"paydex": 101}')$$) AS out_of_range,
       regress.sqlstate_of($$SELECT credit.map_rating('{"risk_level": "低", "unified_social_credit_code": "91350100M000100Y44"}')$$) AS bad_code,
       regress.sqlstate_of($$SELECT credit.map_rating('{"a": 1}', 'generic', '{"score": "/a", "min": 5, "max": 5}')$$) AS bad_mapping;
SELECT regress.sqlstate_of($$SELECT credit.import_rating('NOBODY', 'dnb', '{"paydex": 80}')$$) AS unknown_customer,
       regress.sqlstate_of($$SELECT credit.import_rating('R-NEW', ' ', '{"paydex": 80}')$$) AS blank_source,
       regress.sqlstate_of($$SELECT credit.import_rating('R-NEW', 'dnb', NULL)$$) AS null_payload,
       regress.sqlstate_of($$SELECT credit.import_rating('R-NEW', 'dnb', '{"paydex": 80, "rating_date": "2026-13-45"}')$$) AS bad_date,
       regress.sqlstate_of(format($$SELECT credit.import_rating('R-NEW', 'dnb', '{"paydex": 80, "rating_date": "%s"}')$$, current_date + 1)) AS future,
       regress.sqlstate_of($$SELECT credit.import_rating('R-NEW', 'dnb', '{"paydex": 80, "rating_date": "2026-01-01", "valid_until": "2025-01-01"}')$$) AS ends_before,
       regress.sqlstate_of($$SELECT credit.import_rating('R-NEW', 'dnb', '{"paydex": 80}', valid_days => 0)$$) AS zero_days;
SELECT count(*) AS ratings_stored FROM credit.external_rating WHERE customer = 'R-NEW';
ROLLBACK;
