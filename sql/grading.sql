-- Credit grading as data: grades and score weights (src/grading/ scores and re-grades). Shipped
-- defaults are restore-safe like aging buckets (credit._default_row_write, schema.sql).

-- Grades: score ranges [min_score, max_score) that never overlap; rank 1 is the best.

CREATE TABLE credit.grade (
    grade              text PRIMARY KEY CHECK (grade <> ''),
    min_score          numeric NOT NULL CHECK (min_score >= 0 AND min_score <= 100),
    max_score          numeric CHECK (max_score > min_score),   -- exclusive; NULL = no upper bound
    limit_coefficient  numeric NOT NULL CHECK (limit_coefficient >= 0 AND limit_coefficient <= 100),
    terms_days         int NOT NULL CHECK (terms_days BETWEEN 0 AND 3650),
    rank               int NOT NULL,
    description        text,
    is_default         boolean NOT NULL DEFAULT false,
    retired            boolean NOT NULL DEFAULT false,
    CONSTRAINT grade_ranges_do_not_overlap EXCLUDE USING gist (numrange(min_score, max_score, '[)') WITH &&) WHERE (NOT retired)
);
CREATE UNIQUE INDEX grade_rank_key ON credit.grade (rank) WHERE NOT retired;
INSERT INTO credit.grade (grade, min_score, max_score, limit_coefficient, terms_days, rank, description, is_default) VALUES
    ('AAA', 90, NULL, 2.0, 60, 1, 'Excellent: pays early or on time, long relationship', true),
    ('AA',  80, 90,   2.0, 45, 2, 'Very good', true),
    ('A',   70, 80,   2.5, 30, 3, 'Good', true),
    ('B',   55, 70,   1.5, 30, 4, 'Watch: pays late at times', true),
    ('C',    0, 55,   0,    0, 5, 'No credit: cash in advance or prepayment only', true);
SELECT pg_catalog.pg_extension_config_dump('credit.grade', 'WHERE NOT is_default');
CREATE TRIGGER grade_write BEFORE INSERT OR UPDATE OR DELETE ON credit.grade
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('grade');

CREATE TABLE credit.score_weight (
    component   text PRIMARY KEY CHECK (component IN ('paydex', 'weighted_days_late', 'on_time_ratio', 'days_past_due',
                                                      'utilization', 'relationship_months', 'dunning_level',
                                                      'kept_commitments', 'external_rating')),
    weight      numeric NOT NULL CHECK (weight >= 0 AND weight <= 1000),
    is_default  boolean NOT NULL DEFAULT false,
    retired     boolean NOT NULL DEFAULT false
);
INSERT INTO credit.score_weight (component, weight, is_default) VALUES
    ('paydex', 25, true), ('weighted_days_late', 15, true), ('on_time_ratio', 15, true), ('days_past_due', 20, true),
    ('utilization', 10, true), ('relationship_months', 5, true), ('dunning_level', 10, true),
    ('kept_commitments', 10, true), ('external_rating', 15, true);
SELECT pg_catalog.pg_extension_config_dump('credit.score_weight', 'WHERE NOT is_default');
CREATE TRIGGER score_weight_write BEFORE INSERT OR UPDATE OR DELETE ON credit.score_weight
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('component');

-- What a review would do, summarised by region and grade (and per region, and in all): the dry
-- run a credit manager reads before letting credit.regrade change anything.
CREATE FUNCTION credit.regrade_summary(as_of date DEFAULT current_date)
RETURNS TABLE (rows_for text, region text, grade text, customers bigint, unchanged bigint, increases bigint, decreases bigint,
               requests bigint, unrated bigint, limits_now numeric, limits_after numeric, limits_requested numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- PL/pgSQL, and the review and the accounts read by themselves: on Citus no SQL function's
    -- parameters in a query over distributed tables, and the review runs on the coordinator.
    RETURN QUERY
    WITH r AS MATERIALIZED (SELECT * FROM credit.regrade(regrade_summary.as_of, dry_run => true)),
         a AS MATERIALIZED (SELECT x.customer, x.region FROM credit.account x)
    SELECT CASE GROUPING(a.region, r.new_grade) WHEN 0 THEN 'grade' WHEN 1 THEN 'region' ELSE 'all' END,
           a.region, r.new_grade, count(*),
           count(*) FILTER (WHERE r.action = 'unchanged'), count(*) FILTER (WHERE r.action = 'increase'),
           count(*) FILTER (WHERE r.action = 'decrease'), count(*) FILTER (WHERE r.action = 'request'),
           count(*) FILTER (WHERE r.action IN ('new', 'unrated')),
           coalesce(sum(r.old_limit), 0),
           coalesce(sum(CASE WHEN r.action IN ('increase', 'decrease') THEN r.proposed_limit ELSE r.old_limit END), 0),
           coalesce(sum(r.proposed_limit) FILTER (WHERE r.action = 'request'), 0)
      FROM r JOIN a ON a.customer = r.customer
     GROUP BY GROUPING SETS ((a.region, r.new_grade), (a.region), ())
     ORDER BY GROUPING(a.region), a.region NULLS LAST, GROUPING(r.new_grade),
              (SELECT g.rank FROM credit.grade g WHERE g.grade = r.new_grade AND NOT g.retired) NULLS LAST;
END
$$;

COMMENT ON FUNCTION credit.score(text, date) IS 'Credit score 0-100 as of a date, its grade (null while the evidence is short of the policy''s minimum), every component (raw value, points, weight), and the evidence behind it';
COMMENT ON FUNCTION credit.regrade(date, boolean) IS 'Re-grades every customer; dry_run shows what would change. A grade needs evidence and moves a step per review unless it is strong; decreases are capped per review and large ones, like large increases, become limit requests.';
COMMENT ON FUNCTION credit.regrade_summary(date) IS 'What credit.regrade would do, by region and grade, per region and in all: customers unchanged, increased, decreased, sent for approval and unrated (new or too little history: grade null), and the limits now, after and requested (a dry run); rows_for says what a row sums: grade (a region''s grade), region, or all';
COMMENT ON TABLE credit.grade IS 'Credit grades: non-overlapping score ranges, rank 1 the best; each gives a limit coefficient and terms';
COMMENT ON COLUMN credit.grade.grade IS 'Grade name (AAA, AA, A, B, C)';
COMMENT ON COLUMN credit.grade.min_score IS 'Lowest score of the grade (inclusive)';
COMMENT ON COLUMN credit.grade.max_score IS 'Score above the grade (exclusive); NULL: no upper bound';
COMMENT ON COLUMN credit.grade.limit_coefficient IS 'Limit = average monthly sales x terms in months x this (shipped: AAA 4, AA 3, A 2.5, B 1.5 months of sales, C none)';
COMMENT ON COLUMN credit.grade.terms_days IS 'Payment terms of the grade';
COMMENT ON COLUMN credit.grade.rank IS '1 = best';
COMMENT ON COLUMN credit.grade.description IS 'What the grade means';
COMMENT ON COLUMN credit.grade.is_default IS 'Shipped by pg_credit and not changed since (not dumped)';
COMMENT ON COLUMN credit.grade.retired IS 'A deleted shipped grade (kept so a restore does not bring it back)';
COMMENT ON TABLE credit.score_weight IS 'Weight of each score component (docs/grading.md)';
COMMENT ON COLUMN credit.score_weight.component IS 'paydex, weighted_days_late, on_time_ratio, days_past_due, utilization, relationship_months, dunning_level, kept_commitments or external_rating';
COMMENT ON COLUMN credit.score_weight.weight IS 'Relative weight (0 leaves the component out)';
COMMENT ON COLUMN credit.score_weight.is_default IS 'Shipped by pg_credit and not changed since (not dumped)';
COMMENT ON COLUMN credit.score_weight.retired IS 'A deleted shipped weight (kept so a restore does not bring it back)';
