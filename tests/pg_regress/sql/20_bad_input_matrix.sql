-- The bad-input matrix, generated from the catalog: every public pg_credit function, each of its
-- arguments in turn replaced by bad values for its type (NULL, empty and blank text, hostile
-- identifiers, unknown customers and documents, negative, zero, NaN, ±Infinity, 1e30, infinite
-- and out-of-order dates), the other arguments valid. Each call runs as a superuser in a
-- subtransaction that is always rolled back; the SQLSTATE is recorded ('ok' when the call
-- succeeds, i.e. the value is valid there). Never XX000; a before/after snapshot of every table
-- shows that nothing leaked out of the rolled-back calls.
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO credit.account (customer, credit_limit) VALUES ('MX-A', 1000);
SELECT credit.post_invoice('MX-A', 'MX-1', 100, current_date - 10) > 0 AS posted,
       credit.post_invoice('MX-A', 'MX-2', 100, current_date - 10) > 0 AS posted_2,
       credit.dispute('MX-A', 'MX-2', 'wrong price') > 0 AS disputed;
CREATE TABLE mx_orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL,
                        status text NOT NULL DEFAULT 'open');
CREATE TABLE mx_held (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL,
                      status text NOT NULL DEFAULT 'open');
SELECT credit.guard('mx_held', 'customer', 'amount', 'status', '{open}', 'hold', 'credit_hold');
SET client_min_messages = error;
INSERT INTO mx_held VALUES (1, 'MX-A', 5000);
RESET client_min_messages;
SELECT credit.request_limit('MX-A', 100000, 'growth') > 0 AS requested;
SELECT count(*) > 0 AS ran FROM credit.run_collections();
SELECT regress.more_documents('MX-A') AS more_documents;
-- An active payment arrangement (for the functions that take its id).
SELECT credit.arrange('MX-A', ARRAY['MX-A-OLD'],
                      jsonb_build_array(jsonb_build_object('due_date', current_date + 30, 'amount', open_amount))) > 0 AS arranged
  FROM credit.invoice WHERE doc_no = 'MX-A-OLD';

INSERT INTO regress.fixture VALUES ('customer', 'MX-A'), ('doc', 'MX-1'), ('disputed_doc', 'MX-2'),
    ('orders', 'mx_orders'), ('held', 'mx_held'), ('role', 'postgres'), ('person', 'regress_clerk');
-- Bad values for a type.
CREATE FUNCTION regress.bad_values(typ regtype) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT v FROM (VALUES
        ('text', 'NULL'), ('text', $q$''$q$), ('text', $q$'   '$q$), ('text', $q$'NO-SUCH'$q$),
        ('text', $q$'x''); DROP TABLE credit.account; --'$q$), ('text', $q$'"; SELECT pg_sleep(10); --'$q$),
        ('name', 'NULL'), ('name', $q$''$q$), ('name', $q$'no_such_role'$q$),
        ('numeric', 'NULL'), ('numeric', '-1'), ('numeric', '0'), ('numeric', $q$'NaN'$q$),
        ('numeric', $q$'Infinity'$q$), ('numeric', $q$'-Infinity'$q$), ('numeric', '1e30'),
        ('integer', 'NULL'), ('integer', '-1'), ('integer', '0'), ('integer', '2147483647'),
        ('bigint', 'NULL'), ('bigint', '-1'), ('bigint', '0'), ('bigint', '9223372036854775807'),
        ('date', 'NULL'), ('date', $q$'infinity'$q$), ('date', $q$'-infinity'$q$), ('date', $q$'1900-01-01'$q$),
        ('date', $q$'2999-12-31'$q$),
        ('boolean', 'NULL'),
        ('regclass', 'NULL'), ('regclass', $q$'credit.account'$q$), ('regclass', $q$'pg_class'$q$),
        ('text[]', 'NULL'), ('text[]', $q$'{}'$q$), ('text[]', $q$'{""}'$q$),
        ('jsonb', 'NULL'), ('jsonb', $q$'{}'$q$), ('jsonb', $q$'[]'$q$), ('jsonb', $q$'[null]'$q$),
        ('jsonb', $q$'[{"due_date": "infinity", "amount": 1}]'$q$),
        ('jsonb', $q$'[{"due_date": "2999-12-31", "amount": "1e30"}]'$q$)) t(ty, v)
     WHERE ty = typ::text
$$;
-- Named notation: arguments with defaults are left out unless under test (aggregates take
-- positional arguments only).
CREATE TEMP TABLE matrix AS
WITH fns AS (
    SELECT p.oid, p.proname, p.prokind, p.proargnames, p.proargtypes::oid[] AS types, p.pronargs, p.pronargdefaults
      FROM pg_proc p
     WHERE p.pronamespace = 'credit'::regnamespace AND p.proname !~ '^_' AND p.pronargs > 0
       AND p.proname NOT IN ('grant_privileges')   -- grants, tested in 19_privilege_model
), args AS (
    SELECT f.*, i AS pos, f.proargnames[i] AS arg, f.types[i - 1]::regtype AS typ
      FROM fns f, generate_series(1, f.pronargs) i
), calls AS (
    SELECT a.proname, a.oid, a.pos, a.arg, a.typ, v AS bad, regress.call_of(a.oid::regprocedure, a.pos, v) AS stmt
      FROM args a, regress.bad_values(a.typ) v
)
SELECT proname, oid, pos, arg, typ, bad, stmt, NULL::text AS state FROM calls;
SELECT regress.snapshot() AS before \gset
UPDATE matrix SET state = regress.try(stmt);
SELECT regress.snapshot() = :'before' AS unchanged;

-- Nothing reaches the client as an internal error or an unspecific one.
SELECT proname, arg, bad, state FROM matrix WHERE state IN ('XX000', 'P0001', '42883', '42601', '42804') ORDER BY 1, 2, 3;
-- The whole matrix: per function and argument, the SQLSTATE for each bad value.
SELECT proname || '(' || arg || ' ' || typ::text || ')' AS argument,
       string_agg(bad || ' ' || state, ' | ' ORDER BY bad) AS outcomes
  FROM matrix GROUP BY proname, oid, pos, arg, typ ORDER BY proname, oid::regprocedure::text, pos;
SELECT count(*) AS calls, count(*) FILTER (WHERE state = 'ok') AS accepted, count(DISTINCT oid) AS functions FROM matrix;
DELETE FROM regress.fixture;
DROP TABLE mx_orders, mx_held;
