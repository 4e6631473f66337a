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

-- A valid value for an argument, by function and name, else by type.
CREATE FUNCTION regress.valid_arg(fn name, arg name, typ regtype) RETURNS text LANGUAGE sql AS $$
    SELECT CASE
        WHEN arg = 'customer' THEN quote_literal('MX-A')
        WHEN arg = 'doc_no' AND fn IN ('post_invoice', 'post_credit_note') THEN quote_literal('MX-NEW')
        WHEN arg = 'doc_no' AND fn = 'resolve_dispute' THEN quote_literal('MX-2')
        WHEN arg IN ('doc_no', 'apply_to') THEN quote_literal('MX-1')
        WHEN arg = 'orders' AND fn = 'unguard' THEN quote_literal('mx_held')
        WHEN arg = 'orders' THEN quote_literal('mx_orders')
        WHEN arg = 'customer_column' THEN quote_literal('customer')
        WHEN arg = 'amount_column' THEN quote_literal('amount')
        WHEN arg = 'status_column' THEN quote_literal('status')
        WHEN arg = 'open_statuses' THEN quote_literal('{open}')
        WHEN arg = 'mode' THEN quote_literal('reject')
        WHEN arg = 'outcome' THEN quote_literal('reached')
        WHEN arg = 'basis' THEN quote_literal('due')
        WHEN arg IN ('month_days', 'count_back_months') THEN quote_literal('calendar')
        WHEN arg = 'task_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.collection_task WHERE status = 'open')
        WHEN arg = 'hold_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.order_hold WHERE status = 'held')
        WHEN arg = 'request_id' THEN (SELECT coalesce(max(id), 0)::text FROM credit.limit_request WHERE status = 'pending')
        WHEN arg = 'period_start' THEN quote_literal(current_date - 90)
        WHEN typ = 'text'::regtype THEN quote_literal('a reason')
        WHEN typ = 'name'::regtype THEN quote_literal('postgres')
        WHEN typ = 'numeric'::regtype THEN '100'
        WHEN typ IN ('integer'::regtype, 'bigint'::regtype) THEN '1'
        WHEN typ = 'date'::regtype THEN 'current_date'
        WHEN typ = 'boolean'::regtype THEN 'true'
        WHEN typ = 'regclass'::regtype THEN quote_literal('mx_orders')
        WHEN typ = 'text[]'::regtype THEN quote_literal('{open}')
        ELSE 'NULL' END || '::' || typ::text
$$;
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
        ('text[]', 'NULL'), ('text[]', $q$'{}'$q$), ('text[]', $q$'{""}'$q$)) t(ty, v)
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
    SELECT a.proname, a.oid, a.pos, a.arg, a.typ, v AS bad,
           CASE WHEN a.prokind = 'a' THEN
               format('SELECT credit.%I(%s)', a.proname,
                      (SELECT string_agg(CASE WHEN j = a.pos THEN v || '::' || a.typ::text
                                              ELSE regress.valid_arg(a.proname, a.proargnames[j], a.types[j - 1]::regtype) END,
                                         ', ' ORDER BY j) FROM generate_series(1, a.pronargs) j))
           ELSE
               format('SELECT count(*) FROM credit.%I(%s)', a.proname,
                      (SELECT string_agg(format('%I => ', a.proargnames[j])
                                         || CASE WHEN j = a.pos THEN v || '::' || a.typ::text
                                                 ELSE regress.valid_arg(a.proname, a.proargnames[j], a.types[j - 1]::regtype) END,
                                         ', ' ORDER BY j)
                         FROM generate_series(1, a.pronargs) j
                        WHERE j = a.pos OR j <= a.pronargs - a.pronargdefaults))
           END AS stmt
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
DROP TABLE mx_orders, mx_held;
