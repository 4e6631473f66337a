-- Payment-behaviour aggregates (src/aggregates.rs): internal states, parallel safe, usable with
-- GROUP BY and as window functions.

CREATE FUNCTION credit._wdl_trans(internal, integer, numeric) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_wdl_trans';
CREATE FUNCTION credit._wdl_clamped_trans(internal, integer, numeric) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_wdl_clamped_trans';
CREATE FUNCTION credit._wdl_combine(internal, internal) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_wdl_combine';
CREATE FUNCTION credit._wdl_serial(internal) RETURNS bytea
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_wdl_serial';
CREATE FUNCTION credit._wdl_deserial(bytea, internal) RETURNS internal
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_wdl_deserial';
CREATE FUNCTION credit._wdl_final(internal) RETURNS numeric
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_wdl_final';

CREATE AGGREGATE credit.weighted_days_late(days_late integer, amount numeric) (
    SFUNC = credit._wdl_trans, STYPE = internal, FINALFUNC = credit._wdl_final,
    COMBINEFUNC = credit._wdl_combine, SERIALFUNC = credit._wdl_serial,
    DESERIALFUNC = credit._wdl_deserial, PARALLEL = SAFE);
CREATE AGGREGATE credit.weighted_days_late_clamped(days_late integer, amount numeric) (
    SFUNC = credit._wdl_clamped_trans, STYPE = internal, FINALFUNC = credit._wdl_final,
    COMBINEFUNC = credit._wdl_combine, SERIALFUNC = credit._wdl_serial,
    DESERIALFUNC = credit._wdl_deserial, PARALLEL = SAFE);

CREATE FUNCTION credit._paydex_trans(internal, integer, numeric) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_paydex_trans';
CREATE FUNCTION credit._paydex_combine(internal, internal) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_paydex_combine';
CREATE FUNCTION credit._paydex_serial(internal) RETURNS bytea
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_paydex_serial';
CREATE FUNCTION credit._paydex_deserial(bytea, internal) RETURNS internal
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_paydex_deserial';
CREATE FUNCTION credit._paydex_final(internal) RETURNS numeric
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_paydex_final';
CREATE AGGREGATE credit.paydex(days_beyond_terms integer, amount numeric) (
    SFUNC = credit._paydex_trans, STYPE = internal, FINALFUNC = credit._paydex_final,
    COMBINEFUNC = credit._paydex_combine, SERIALFUNC = credit._paydex_serial,
    DESERIALFUNC = credit._paydex_deserial, PARALLEL = SAFE);

CREATE FUNCTION credit._ontime_count_trans(internal, integer, integer) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_ontime_count_trans';
CREATE FUNCTION credit._ontime_amount_trans(internal, integer, numeric, integer) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_ontime_amount_trans';
CREATE FUNCTION credit._ontime_combine(internal, internal) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_ontime_combine';
CREATE FUNCTION credit._ontime_serial(internal) RETURNS bytea
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_ontime_serial';
CREATE FUNCTION credit._ontime_deserial(bytea, internal) RETURNS internal
    LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_ontime_deserial';
CREATE FUNCTION credit._ontime_count_final(internal) RETURNS numeric
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_ontime_count_final';
CREATE FUNCTION credit._ontime_amount_final(internal) RETURNS numeric
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_ontime_amount_final';
CREATE AGGREGATE credit.on_time_ratio(days_late integer, grace_days integer) (
    SFUNC = credit._ontime_count_trans, STYPE = internal, FINALFUNC = credit._ontime_count_final,
    COMBINEFUNC = credit._ontime_combine, SERIALFUNC = credit._ontime_serial,
    DESERIALFUNC = credit._ontime_deserial, PARALLEL = SAFE);
CREATE AGGREGATE credit.on_time_ratio(days_late integer, amount numeric, grace_days integer) (
    SFUNC = credit._ontime_amount_trans, STYPE = internal, FINALFUNC = credit._ontime_amount_final,
    COMBINEFUNC = credit._ontime_combine, SERIALFUNC = credit._ontime_serial,
    DESERIALFUNC = credit._ontime_deserial, PARALLEL = SAFE);

CREATE FUNCTION credit._bucket_rank(days integer) RETURNS integer
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'credit_bucket_rank';

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'credit'::regnamespace AND p.proname ~ '^_(wdl|paydex|ontime)_' LOOP
        EXECUTE format('COMMENT ON FUNCTION %s IS %L', f, 'Internal: support function of a payment-behaviour aggregate');
    END LOOP;
END
$$;
