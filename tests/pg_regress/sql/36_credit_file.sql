-- The credit file: one JSON document per customer and day; every figure agrees with the function
-- or view that computes it elsewhere.
\set VERBOSITY default
\set SHOW_CONTEXT never
BEGIN;
\set ON_ERROR_ROLLBACK on
INSERT INTO credit.account (customer, credit_limit, customer_type, region) VALUES ('F-A', 5000, 'file', 'north');
SELECT credit.post_invoice('F-A', 'FA-' || m, 1000 + 100 * m, make_date(2026, m, 1), make_date(2026, m, 1) + 30) > 0 AS posted,
       credit.post_payment('F-A', 1000 + 100 * m, make_date(2026, m, 1) + 30 + m, 'FA-' || m) > 0 AS paid
  FROM generate_series(1, 9) m;
SELECT credit.post_invoice('F-A', 'FA-OPEN', 700, '2026-10-01', '2026-10-31') > 0 AS open_invoice;
UPDATE credit.account SET credit_limit = 6000 WHERE customer = 'F-A';
SELECT credit.dispute('F-A', 'FA-OPEN', 'short delivery', '2026-11-05') > 0 AS disputed;
SELECT credit.file('F-A', '2026-11-20') AS f \gset
-- The document's shape.
SELECT jsonb_object_keys(:'f'::jsonb) AS section ORDER BY 1;
SELECT (:'f'::jsonb -> 'identity') - 'customer_since' AS identity, (:'f'::jsonb #>> '{identity,customer_since}')::date <= '2026-01-01' AS since_ok;
-- The limit changed today: in today's file, not in the file of the 20th.
SELECT :'f'::jsonb #> '{limits,in_force}' AS in_force_on_20th, jsonb_array_length(:'f'::jsonb #> '{limits,changes}') AS changes_by_20th;
SELECT credit.file('F-A') #> '{limits,in_force}' AS in_force_today,
       (SELECT string_agg(c ->> 'kind', ', ' ORDER BY c ->> 'at') FROM jsonb_array_elements(credit.file('F-A') #> '{limits,changes}') c) AS limit_events,
       (SELECT string_agg(c #>> '{after,credit_limit}', ', ' ORDER BY c ->> 'at') FROM jsonb_array_elements(credit.file('F-A') #> '{limits,changes}') c) AS limits,
       (SELECT string_agg(d ->> 'kind', ', ' ORDER BY d ->> 'at') FROM jsonb_array_elements(credit.file('F-A') -> 'decisions') d) AS decisions_today;
-- Every figure agrees with what computes it elsewhere.
SELECT (:'f'::jsonb #>> '{payment_behaviour,weighted_days_late}')::numeric
           IS NOT DISTINCT FROM ((s.components -> 1) ->> 'value')::numeric AS weighted_days_late_as_score,
       (:'f'::jsonb #>> '{payment_behaviour,on_time_ratio}')::numeric
           IS NOT DISTINCT FROM ((s.components -> 2) ->> 'value')::numeric AS on_time_ratio_as_score,
       (:'f'::jsonb #>> '{payment_behaviour,paydex}')::numeric
           IS NOT DISTINCT FROM ((s.components -> 0) ->> 'value')::numeric AS paydex_as_score,
       (:'f'::jsonb #>> '{score,score}')::numeric IS NOT DISTINCT FROM s.score AS score_as_score,
       (:'f'::jsonb #>> '{payment_behaviour,dso}')::numeric
           IS NOT DISTINCT FROM credit.dso('2026-11-20'::date - 89, '2026-11-20', 'F-A') AS dso_as_dso,
       (:'f'::jsonb #>> '{payment_behaviour,overdue}')::numeric
           = (SELECT coalesce(sum(open_amount), 0) FROM credit.aging('2026-11-20') WHERE customer = 'F-A' AND doc_type = 'invoice' AND days > 0)
           AS overdue_as_aging,
       (:'f'::jsonb #>> '{payment_behaviour,sales_12_months}')::numeric
           = (SELECT sum(amount) FROM credit.invoice WHERE customer = 'F-A' AND doc_date > '2026-11-20'::date - 365) AS sales_as_ledger
  FROM credit.score('F-A', '2026-11-20') s;
SELECT :'f'::jsonb #> '{payment_behaviour,last_payment}' AS last_payment,
       :'f'::jsonb #> '{payment_behaviour,highest_monthly_sales}' AS highest_month,
       :'f'::jsonb #> '{payment_behaviour,oldest_overdue}' AS oldest_overdue,
       :'f'::jsonb #> '{payment_behaviour,disputes}' AS disputes;
-- As of a past day, what was known then.
SELECT credit.file('F-A', '2026-03-15') #> '{payment_behaviour,last_payment}' AS last_payment_in_march,
       credit.file('F-A', '2026-03-15') #> '{payment_behaviour,experiences}' AS experiences_in_march;
-- The basis of days late is the session's: an invoice paid in two parts counts twice per payment,
-- once at its closing payment; the score counts alike.
SELECT credit.post_invoice('F-A', 'FA-SPLIT', 600, '2026-10-05', '2026-11-04') > 0 AS split_posted,
       credit.post_payment('F-A', 300, '2026-11-04', 'FA-SPLIT') > 0 AS half_paid,
       credit.post_payment('F-A', 300, '2026-11-14', 'FA-SPLIT') > 0 AS rest_paid;
SELECT f #>> '{payment_behaviour,basis}' AS basis, (f #>> '{payment_behaviour,experiences}')::int AS experiences,
       (f #>> '{payment_behaviour,experiences}')::int
           = (SELECT count(*) FROM credit.payment_experience e WHERE e.customer = 'F-A' AND e.paid_on <= '2026-11-20') AS as_view,
       (f #>> '{payment_behaviour,weighted_days_late}')::numeric = ((f #> '{score,components}' -> 1) ->> 'value')::numeric AS as_score
  FROM credit.file('F-A', '2026-11-20') f;
SET LOCAL pg_credit.days_late_basis = 'closing';
SELECT f #>> '{payment_behaviour,basis}' AS basis, (f #>> '{payment_behaviour,experiences}')::int AS experiences,
       (f #>> '{payment_behaviour,experiences}')::int
           = (SELECT count(*) FROM credit.invoice_payment_experience e WHERE e.customer = 'F-A' AND e.paid_on <= '2026-11-20') AS as_view,
       (f #>> '{payment_behaviour,weighted_days_late}')::numeric = ((f #> '{score,components}' -> 1) ->> 'value')::numeric AS as_score
  FROM credit.file('F-A', '2026-11-20') f;
RESET pg_credit.days_late_basis;
-- Bad input changes nothing.
SELECT regress.sqlstate_of($$SELECT credit.file(NULL)$$) AS null_customer,
       regress.sqlstate_of($$SELECT credit.file('NOBODY')$$) AS unknown,
       regress.sqlstate_of($$SELECT credit.file('F-A', current_date + 1)$$) AS future,
       regress.sqlstate_of($$SELECT credit.file(' ')$$) AS blank;
ROLLBACK;
