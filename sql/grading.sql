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
    ('AA',  80, 90,   1.5, 45, 2, 'Very good', true),
    ('A',   70, 80,   1.2, 30, 3, 'Good', true),
    ('B',   55, 70,   0.8, 30, 4, 'Watch: pays late at times', true),
    ('C',    0, 55,   0,    0, 5, 'No credit: cash in advance or prepayment only', true);
SELECT pg_catalog.pg_extension_config_dump('credit.grade', 'WHERE NOT is_default');
CREATE TRIGGER grade_write BEFORE INSERT OR UPDATE OR DELETE ON credit.grade
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('grade');

CREATE TABLE credit.score_weight (
    component   text PRIMARY KEY CHECK (component IN ('paydex', 'weighted_days_late', 'on_time_ratio', 'days_past_due',
                                                      'utilization', 'relationship_months', 'dunning_level',
                                                      'kept_commitments')),
    weight      numeric NOT NULL CHECK (weight >= 0 AND weight <= 1000),
    is_default  boolean NOT NULL DEFAULT false,
    retired     boolean NOT NULL DEFAULT false
);
INSERT INTO credit.score_weight (component, weight, is_default) VALUES
    ('paydex', 25, true), ('weighted_days_late', 15, true), ('on_time_ratio', 15, true), ('days_past_due', 20, true),
    ('utilization', 10, true), ('relationship_months', 5, true), ('dunning_level', 10, true),
    ('kept_commitments', 10, true);
SELECT pg_catalog.pg_extension_config_dump('credit.score_weight', 'WHERE NOT is_default');
CREATE TRIGGER score_weight_write BEFORE INSERT OR UPDATE OR DELETE ON credit.score_weight
    FOR EACH ROW EXECUTE FUNCTION credit._default_row_write('component');

COMMENT ON FUNCTION credit.score(text, date) IS 'Credit score 0-100 as of a date, its grade, and every component (raw value, points, weight)';
COMMENT ON FUNCTION credit.regrade(date, boolean) IS 'Re-grades every customer; dry_run shows what would change. Decreases apply at once, large increases become limit requests.';
COMMENT ON TABLE credit.grade IS 'Credit grades: non-overlapping score ranges, rank 1 the best; each gives a limit coefficient and terms';
COMMENT ON COLUMN credit.grade.grade IS 'Grade name (AAA, AA, A, B, C)';
COMMENT ON COLUMN credit.grade.min_score IS 'Lowest score of the grade (inclusive)';
COMMENT ON COLUMN credit.grade.max_score IS 'Score above the grade (exclusive); NULL: no upper bound';
COMMENT ON COLUMN credit.grade.limit_coefficient IS 'Limit = average monthly sales x terms in months x this';
COMMENT ON COLUMN credit.grade.terms_days IS 'Payment terms of the grade';
COMMENT ON COLUMN credit.grade.rank IS '1 = best';
COMMENT ON COLUMN credit.grade.description IS 'What the grade means';
COMMENT ON COLUMN credit.grade.is_default IS 'Shipped by pg_credit and not changed since (not dumped)';
COMMENT ON COLUMN credit.grade.retired IS 'A deleted shipped grade (kept so a restore does not bring it back)';
COMMENT ON TABLE credit.score_weight IS 'Weight of each score component (docs/grading.md)';
COMMENT ON COLUMN credit.score_weight.component IS 'paydex, weighted_days_late, on_time_ratio, days_past_due, utilization, relationship_months, dunning_level or kept_commitments';
COMMENT ON COLUMN credit.score_weight.weight IS 'Relative weight (0 leaves the component out)';
COMMENT ON COLUMN credit.score_weight.is_default IS 'Shipped by pg_credit and not changed since (not dumped)';
COMMENT ON COLUMN credit.score_weight.retired IS 'A deleted shipped weight (kept so a restore does not bring it back)';
