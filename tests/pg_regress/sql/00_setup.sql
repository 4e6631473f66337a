-- Helpers shared by the regression files (pg_regress runs each file in its own session).
CREATE SCHEMA regress;
-- The SQLSTATE a statement fails with ('ok' when it succeeds). Runs in a subtransaction, so the
-- statement's effects are always rolled back: callers can prove a failure changed nothing.
CREATE FUNCTION regress.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE stmt;
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLSTATE;
    END;
    RETURN 'ok';
END $$;
-- Runs a statement (as a role, when given) in a subtransaction that is always rolled back: the
-- SQLSTATE it fails with, or 'ok'.
CREATE FUNCTION regress.try(stmt text, as_role name DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text;
BEGIN
    BEGIN
        IF as_role IS NOT NULL THEN
            EXECUTE format('SET LOCAL ROLE %I', as_role);
        END IF;
        EXECUTE stmt;
        RAISE EXCEPTION USING ERRCODE = 'P0099';   -- undo whatever it did
    EXCEPTION WHEN OTHERS THEN
        state := CASE WHEN SQLSTATE = 'P0099' THEN 'ok' ELSE SQLSTATE END;
    END;
    RETURN state;
END $$;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
GRANT EXECUTE ON FUNCTION regress.try(text, name) TO PUBLIC;
-- A fingerprint of every table of pg_credit (found in the catalog, so a new table is covered by
-- itself), to show that refused calls change nothing — but for the order_refused events that
-- record refused orders, with their outbox rows and chain links.
CREATE FUNCTION regress.snapshot() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    part text;
    parts text := '';
    refused text := '(SELECT e.id FROM credit.event e WHERE e.kind = ''order_refused'')';
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'credit'::regnamespace AND c.relkind = 'r' ORDER BY c.relname LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x %s', ',', '', t,
                       CASE t WHEN 'credit.event'::regclass THEN 'WHERE x.id NOT IN ' || refused
                              WHEN 'credit.outbox'::regclass THEN 'WHERE x.event_id NOT IN ' || refused
                              WHEN 'credit.event_chain'::regclass THEN 'WHERE x.event_id NOT IN ' || refused
                              ELSE '' END)
          INTO part;
        parts := parts || t::text || ':' || part || ' ';
    END LOOP;
    RETURN md5(parts);
END $$;
DO $$ BEGIN CREATE ROLE regress_clerk NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT extversion FROM pg_extension WHERE extname = 'pg_credit';
