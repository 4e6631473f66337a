-- The attack matrix. A role that owns guarded tables and holds no credit level plants traps in
-- its own schema, first on its search_path — an operator for every pg_catalog operator on the
-- types the extension works with and a function for every plain pg_catalog function (generated
-- from the catalog), domains named like the built-in types — and on its own tables: triggers
-- of every kind, a stored generated column, an expression index, a forced row-level policy, a
-- type with its own cast. Then it calls every SECURITY DEFINER function of the extension (from
-- the catalog), fires every trigger the extension attaches (orders accepted, refused, held,
-- changed, truncated; DDL that the watch answers), attaches the extension's trigger functions
-- to tables of its own; and people with credit levels work on its tables. Every trap records
-- who ran it: none may ever run with the extension's rights.
\set VERBOSITY terse
\set SHOW_CONTEXT never
DO $$ BEGIN CREATE ROLE regress_am_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT CREATE ON SCHEMA public TO regress_am_owner;
GRANT USAGE ON SCHEMA credit TO regress_am_owner;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA credit TO regress_am_owner;
CREATE SCHEMA am_evil AUTHORIZATION regress_am_owner;
GRANT USAGE ON SCHEMA am_evil TO PUBLIC;
CREATE TABLE am_trap_log (trap text, who name, super boolean);
GRANT INSERT, SELECT ON am_trap_log TO PUBLIC;

INSERT INTO credit.account (customer, credit_limit) VALUES ('AM-A', 1000), ('AM-B', 1000);
SELECT credit.post_invoice('AM-A', 'AM-1', 100, current_date - 40) > 0 AS posted,
       credit.post_invoice('AM-A', 'AM-2', 100, current_date - 40) > 0 AS posted_2,
       credit.dispute('AM-A', 'AM-2', 'wrong price') > 0 AS disputed;

-- The attacker's traps.
SET ROLE regress_am_owner;
CREATE FUNCTION am_evil.trap(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.am_trap_log SELECT what, current_user, r.rolsuper FROM pg_roles r WHERE r.rolname = current_user;
    RETURN true;
END $$;
CREATE FUNCTION am_evil.trap_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM am_evil.trap('trigger ' || TG_WHEN || ' ' || TG_OP || ' ' || TG_LEVEL);
    RETURN CASE WHEN TG_LEVEL = 'ROW' AND TG_OP = 'DELETE' THEN OLD WHEN TG_LEVEL = 'ROW' THEN NEW END;
END $$;
CREATE FUNCTION am_evil.trap_text(v text) RETURNS text IMMUTABLE
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM am_evil.trap('expression');
    RETURN v;
END $$;
-- An operator for every binary pg_catalog operator on the types pg_credit's SQL uses.
DO $$
DECLARE
    o record;
    n int := 0;
BEGIN
    FOR o IN SELECT p.oid, p.oprname, p.oprleft::regtype AS l, p.oprright::regtype AS r, p.oprresult::regtype AS res,
                    p.oprcode::regproc AS fn
               FROM pg_operator p
              WHERE p.oprnamespace = 'pg_catalog'::regnamespace AND p.oprkind = 'b'
                AND p.oprleft IN ('text'::regtype, 'numeric'::regtype, 'int4'::regtype, 'int8'::regtype, 'int2'::regtype,
                                  'date'::regtype, 'bool'::regtype, 'jsonb'::regtype, 'bytea'::regtype, 'timestamptz'::regtype,
                                  'name'::regtype, 'oid'::regtype, 'tid'::regtype, 'text[]'::regtype, 'name[]'::regtype)
                AND p.oprright = p.oprleft OR p.oprnamespace = 'pg_catalog'::regnamespace AND p.oprkind = 'b'
                AND (p.oprleft, p.oprright) IN (('jsonb'::regtype, 'text'::regtype), ('date'::regtype, 'int4'::regtype),
                                                ('text'::regtype, 'text[]'::regtype), ('name'::regtype, 'text'::regtype),
                                                ('text'::regtype, 'name'::regtype), ('numeric'::regtype, 'int4'::regtype))
              ORDER BY p.oid LOOP
        EXECUTE format('CREATE FUNCTION am_evil.op_%s(%s, %s) RETURNS %s LANGUAGE sql AS %L',
                       o.oid, o.l, o.r, o.res,
                       format('SELECT CASE WHEN am_evil.trap(%L) THEN %s($1, $2) END', 'operator ' || o.oprname, o.fn));
        EXECUTE format('CREATE OPERATOR am_evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = am_evil.op_%s)', o.oprname, o.l, o.r, o.oid);
        n := n + 1;
    END LOOP;
    RAISE NOTICE 'operator traps: %', CASE WHEN n > 100 THEN 'more than 100' ELSE n::text END;
END $$;
-- A function for every plain pg_catalog function (no polymorphic or pseudo-type argument, not a
-- set or aggregate), same name and arguments.
DO $$
DECLARE
    f record;
    n int := 0;
BEGIN
    FOR f IN SELECT p.oid, p.proname, p.pronargs, p.prorettype::regtype AS res,
                    (SELECT string_agg(format_type(t, NULL), ', ' ORDER BY i) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, i)) AS args
               FROM pg_proc p JOIN pg_type rt ON rt.oid = p.prorettype
              WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f' AND NOT p.proretset AND p.provariadic = 0
                AND rt.typtype IN ('b', 'c', 'd', 'e', 'r') AND rt.typname NOT IN ('cstring', 'internal')
                AND p.pronargs BETWEEN 0 AND 4
                AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t JOIN pg_type ty ON ty.oid = t WHERE ty.typtype = 'p')
                AND p.proname !~ '^(trap|op_)'
              ORDER BY p.oid LOOP
        BEGIN
            EXECUTE format('CREATE FUNCTION am_evil.%I(%s) RETURNS %s LANGUAGE sql AS %L', f.proname, coalesce(f.args, ''), f.res,
                           format('SELECT CASE WHEN am_evil.trap(%L) THEN pg_catalog.%I(%s) END', 'function ' || f.proname, f.proname,
                                  (SELECT string_agg('$' || i, ', ') FROM generate_series(1, f.pronargs) i)));
            n := n + 1;
        EXCEPTION WHEN duplicate_function OR invalid_function_definition OR datatype_mismatch OR syntax_error THEN
            NULL;
        END;
    END LOOP;
    RAISE NOTICE 'function traps: %', CASE WHEN n > 1000 THEN 'more than 1000' ELSE n::text END;
END $$;
-- A type of its own with its own cast to text (its owner's code would run on every cast).
CREATE TYPE am_evil.cust AS ENUM ('AM-A', 'AM-B');
CREATE FUNCTION am_evil.cust_text(am_evil.cust) RETURNS text LANGUAGE sql
    AS $$ SELECT CASE WHEN am_evil.trap('cast') THEN pg_catalog.textin(pg_catalog.enum_out($1)) END $$;
CREATE CAST (am_evil.cust AS text) WITH FUNCTION am_evil.cust_text(am_evil.cust);

-- Its tables, every trigger kind armed, a generated column, an expression index, a forced policy.
CREATE TABLE am_orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL,
                        status text NOT NULL DEFAULT 'open',
                        shadow text GENERATED ALWAYS AS (am_evil.trap_text(customer || status)) STORED);
CREATE TABLE am_held (LIKE am_orders INCLUDING ALL);
CREATE TABLE am_parts (id int, customer text NOT NULL, amount numeric NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE am_parts_east PARTITION OF am_parts FOR VALUES IN ('east');
CREATE TABLE am_enum_orders (id int, customer am_evil.cust, amount numeric);
DO $$
DECLARE
    t text;
    w text;
BEGIN
    FOREACH t IN ARRAY ARRAY['am_orders', 'am_held', 'am_parts_east'] LOOP
        FOREACH w IN ARRAY ARRAY['BEFORE', 'AFTER'] LOOP
            EXECUTE format('CREATE TRIGGER trap_%s_row BEFORE INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION am_evil.trap_trigger()',
                           lower(w), t) ;
            EXECUTE format('CREATE TRIGGER trap_%s_stmt %s INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION am_evil.trap_trigger()',
                           lower(w), w, t);
        END LOOP;
        EXECUTE format('CREATE INDEX ON %I (am_evil.trap_text(customer))', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY trap ON %I USING (am_evil.trap(''policy'')) WITH CHECK (am_evil.trap(''policy check''))', t);
    END LOOP;
END $$;
RESET ROLE;
SELECT credit.guard('am_orders', 'customer', 'amount', 'status', '{open}'),
       credit.guard('am_held', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold'),
       credit.guard('am_parts', 'customer', 'amount');
-- Its own type with its own cast cannot be guarded (a cast would run the owner's code).
SELECT regress.sqlstate_of($$SELECT credit.guard('am_enum_orders', 'customer', 'amount')$$) AS enum_customer;
-- Types named like the built-in ones come last (the attacker's own statements above use them).
SET ROLE regress_am_owner;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['text', 'numeric', 'int4', 'int8', 'date', 'bool', 'jsonb', 'bytea', 'timestamptz', 'name',
                             'oid', 'regclass', 'tid', 'char'] LOOP
        EXECUTE format('CREATE DOMAIN am_evil.%I AS pg_catalog.%I CHECK (am_evil.trap(%L))', t, t, 'type ' || t);
    END LOOP;
END $$;
RESET ROLE;
-- The traps are armed: the owner's own statement with its search_path runs them (as itself).
SET ROLE regress_am_owner;
SET search_path = am_evil, pg_catalog, public;
SELECT 'x'::text = 'y' AS control;
RESET search_path;
RESET ROLE;
SELECT count(*) > 0 AS traps_armed FROM am_trap_log WHERE trap = 'operator =' AND who = 'regress_am_owner';

-- 1. The attacker writes its guarded tables and runs DDL on them; every trigger of the extension
--    fires (the guard, its TRUNCATE trigger, the DDL watch), every refusal is recorded.
SET ROLE regress_am_owner;
SET search_path = am_evil, pg_catalog, public;
INSERT INTO public.am_orders (id, customer, amount) VALUES (1, 'AM-A', 10);
SELECT regress.sqlstate_of($$INSERT INTO public.am_orders (id, customer, amount) VALUES (2, 'AM-A', 99999)$$) AS refused;
UPDATE public.am_orders SET amount = 20 WHERE id = 1;
SET client_min_messages = error;
INSERT INTO public.am_held (id, customer, amount) VALUES (1, 'AM-A', 5000);
RESET client_min_messages;
INSERT INTO public.am_held (id, customer, amount) VALUES (2, 'AM-B', 5);
DELETE FROM public.am_orders WHERE id = 1;
INSERT INTO public.am_orders (id, customer, amount) VALUES (3, 'AM-B', 30);
TRUNCATE public.am_orders;
INSERT INTO public.am_parts VALUES (1, 'AM-A', 10, 'east');
ALTER TABLE public.am_orders ADD COLUMN note pg_catalog.text;
ALTER TABLE public.am_orders RENAME COLUMN amount TO amount_old;
INSERT INTO public.am_orders (id, customer, amount_old) VALUES (4, 'AM-A', 40);
ALTER TABLE public.am_orders ALTER COLUMN amount_old TYPE pg_catalog.numeric(14,2) USING amount_old;
SELECT regress.sqlstate_of($$ALTER TABLE public.am_orders DISABLE TRIGGER ALL$$) AS disable;
CREATE TABLE public.am_child () INHERITS (public.am_orders);
INSERT INTO public.am_child (id, customer, amount_old) VALUES (5, 'AM-A', 5);
CREATE TABLE public.am_parts_west PARTITION OF public.am_parts FOR VALUES IN ('west');
INSERT INTO public.am_parts VALUES (2, 'AM-A', 20, 'west');
CREATE TABLE public.am_parts_north (LIKE public.am_parts);
INSERT INTO public.am_parts_north VALUES (3, 'AM-B', 3, 'north');
ALTER TABLE public.am_parts ATTACH PARTITION public.am_parts_north FOR VALUES IN ('north');
ALTER TABLE public.am_parts DETACH PARTITION public.am_parts_north;
TRUNCATE public.am_parts_west;
DROP TABLE public.am_parts_north, public.am_child;
RESET search_path;
RESET ROLE;
SELECT regress.wait_for_refusals() AS refusals_recorded;

-- 2. Every SECURITY DEFINER function of the extension, called by the attacker with valid
--    arguments, its traps on the search_path (each call rolled back).
SELECT regress.more_documents('AM-A') AS more_documents;
INSERT INTO regress.fixture VALUES ('customer', 'AM-A'), ('doc', 'AM-1'), ('disputed_doc', 'AM-2'),
    ('orders', 'am_orders'), ('held', 'am_held'), ('role', 'regress_am_owner'), ('person', 'regress_am_owner');
CREATE TEMP TABLE am_calls AS
SELECT p.oid::regprocedure AS function, regress.call_of(p.oid) AS stmt, NULL::text AS state
  FROM pg_proc p
 WHERE p.pronamespace = 'credit'::regnamespace AND p.prosecdef
   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype);
GRANT SELECT, UPDATE ON am_calls TO regress_am_owner;
SET ROLE regress_am_owner;
SET search_path = am_evil, pg_catalog, public;
UPDATE pg_temp.am_calls SET state = regress.try(stmt);
RESET search_path;
RESET ROLE;
SELECT state, count(*) AS functions FROM am_calls GROUP BY state ORDER BY state;

-- 3. The extension's trigger functions attached by the attacker to a table of its own (EXECUTE
--    granted on everything) and fired: they act on nothing that is not theirs.
SET ROLE regress_am_owner;
CREATE TABLE public.am_fake (customer text, credit_limit numeric, amount numeric, status text, id bigint,
                             kind text, reason text, before jsonb, after jsonb, actor name, acting_as name,
                             happened_at timestamptz DEFAULT now(), application_name text,
                             transaction_id xid8 DEFAULT pg_current_xact_id(), is_default boolean, retired boolean);
RESET ROLE;
CREATE TEMP TABLE am_trigger_calls AS
SELECT p.oid::regprocedure AS function, NULL::text AS outcome
  FROM pg_proc p WHERE p.pronamespace = 'credit'::regnamespace AND p.prorettype = 'trigger'::regtype;
GRANT SELECT, UPDATE ON am_trigger_calls TO regress_am_owner;
SET ROLE regress_am_owner;
SET search_path = am_evil, pg_catalog, public;
UPDATE pg_temp.am_trigger_calls
   SET outcome = regress.try(format(
       $f$DO $d$ BEGIN
            CREATE TRIGGER am_fake_trigger BEFORE INSERT OR UPDATE OR DELETE ON public.am_fake FOR EACH ROW EXECUTE FUNCTION %s(%s);
            INSERT INTO public.am_fake (customer, credit_limit, amount, status, id, kind) VALUES ('AM-A', 1e9, 1e9, 'open', 1, 'limit_changed');
          END $d$$f$,
       function::regproc,
       CASE WHEN function = 'credit._guard_row()'::regprocedure THEN $a$'customer', 'amount', '', 'reject', '', '0'$a$ ELSE '' END));
RESET search_path;
RESET ROLE;
SELECT function, outcome FROM am_trigger_calls ORDER BY function::text;

-- 4. People with credit levels work on the attacker's tables with their own search_path; the
--    attacker's triggers, generated column, index and policy run, as the attacker.
SELECT id AS held_id FROM credit.order_hold WHERE customer = 'AM-A' AND status = 'held' \gset
UPDATE credit.account SET credit_limit = 10000 WHERE customer = 'AM-A';
SELECT credit.release_hold(:held_id, 'limit raised');
SELECT count(*) AS drift FROM credit.verify();
SELECT credit.rebuild_exposure();
SELECT credit.unguard('am_held');
SELECT credit.guard('am_held', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold');
SELECT count(*) >= 0 AS ran FROM credit.run_daily();
DROP TABLE am_parts;

-- The verdict: traps ran (as the attacker, where its own code legitimately runs), and never with
-- the extension's rights.
SELECT count(*) > 0 AS trigger_traps_ran_as_owner FROM am_trap_log WHERE trap LIKE 'trigger%' AND who = 'regress_am_owner';
SELECT trap, who, super FROM am_trap_log WHERE super OR who <> 'regress_am_owner' GROUP BY 1, 2, 3 ORDER BY 1, 2;

-- Clean up.
SET client_min_messages = warning;
DELETE FROM regress.fixture;
DROP TABLE am_orders, am_held, am_enum_orders, am_fake, am_trap_log;
DROP SCHEMA am_evil CASCADE;
REVOKE CREATE ON SCHEMA public FROM regress_am_owner;
DROP OWNED BY regress_am_owner;
DROP ROLE regress_am_owner;
