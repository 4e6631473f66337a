-- credit.regrade reads every customer's score inputs set-wise (a few queries for up to 2,000
-- customers: src/grading/score_inputs.sql and the files beside it); credit.score reads one
-- customer's with the same queries. Each re-graded score must be the customer's score of that day:
-- compared here over everything the suite has posted (payments late and in parts, dunning, promises
-- and arrangements, external ratings, temporary limits), every 30 days from the first invoice to
-- today, on both bases of days late.
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE TEMP TABLE days AS
SELECT d::date AS d FROM generate_series(current_date, (SELECT min(doc_date) FROM credit.invoice), interval '-30 days') d;
SELECT count(*) > 10 AS days, (SELECT count(*) FROM credit.account) > 30 AS customers FROM days;
-- External ratings for three customers with receivables (two sources for one), in force from 100
-- and 40 days ago.
SELECT count(credit.import_rating(a.customer, 'dnb', jsonb_build_object('duns', '804735132', 'paydex', 60 + n, 'rating_date', current_date - 100))) AS rated
  FROM (SELECT customer, row_number() OVER (ORDER BY customer) AS n FROM credit.account WHERE open_ar > 0 ORDER BY customer LIMIT 3) a;
SELECT credit.import_rating(min(customer), 'qichacha', jsonb_build_object('unified_social_credit_code', '91350100M000100Y43',
                                                                         'risk_level', '低', 'rating_date', current_date - 40)) > 0 AS second_source
  FROM credit.account WHERE open_ar > 0;
CREATE TEMP TABLE compared (basis text, d date, customer text, regraded numeric, scored numeric, components jsonb);
CREATE FUNCTION pg_temp.compare(basis text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('pg_credit.days_late_basis', basis, true);
    INSERT INTO compared
    SELECT basis, days.d, r.customer, r.score, s.score, s.components
      FROM days, LATERAL credit.regrade(days.d, true) r, LATERAL credit.score(r.customer, days.d) s;
END $$;
BEGIN;
SELECT pg_temp.compare('payment');
SELECT pg_temp.compare('closing');
COMMIT;
-- Every component had a value somewhere (else the comparison proves little of it).
SELECT c->>'component' AS component, count(*) FILTER (WHERE c->>'value' IS NOT NULL AND (c->>'value')::numeric <> 0) > 0 AS seen
  FROM compared, jsonb_array_elements(components) c GROUP BY 1 ORDER BY 1;
SELECT basis, count(*) > 500 AS reviews, count(regraded) > 30 AS scored,
       count(*) FILTER (WHERE regraded IS DISTINCT FROM scored) AS differing
  FROM compared GROUP BY basis ORDER BY basis;
-- The bases differ somewhere (each was in force as its comparison ran).
SELECT count(*) > 0 AS bases_differ
  FROM compared p JOIN compared c ON c.basis = 'closing' AND c.d = p.d AND c.customer = p.customer
 WHERE p.basis = 'payment' AND p.scored IS DISTINCT FROM c.scored;
