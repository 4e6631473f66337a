-- Active payment arrangements decided as of $1 (src/collections/ladder.rs, arrangements):
-- completed once what was applied to the plan's invoices from its agreement on (payments and
-- credit notes) covers the instalments, or nothing is open on its invoices any more; broken when
-- an instalment's due date has passed and the money applied by then does not cover it and every
-- instalment before it — decided the day after that due date, so the ladder resumes from then.
-- Each decision is an event. Returns change, customer, doc_no (NULL), level (NULL), task id
-- (NULL), detail. Every join goes through the customer and no function reads a table: on Citus
-- this runs on each node over its shards (src/collections/tables.rs).
WITH plan AS (
    SELECT ar.id, ar.customer, ar.amount, ar.agreed_on, ar.allocations_before
      FROM credit.arrangement ar
     WHERE ar.status = 'active' AND ar.agreed_on <= $1),
-- Payments and credit notes (net of their reversals) applied to each plan's invoices since it was
-- recorded (what was open then is what it covers), dated from its agreement up to the day;
-- write-offs and cancellations are not the customer paying.
applied AS MATERIALIZED (
    SELECT pl.id, al.applied_on, al.amount
      FROM plan pl
      JOIN credit.arrangement_invoice ai ON ai.customer = pl.customer AND ai.arrangement_id = pl.id
      JOIN credit.allocation al ON al.customer = ai.customer AND al.invoice_id = ai.invoice_id
      JOIN credit.settlement s ON s.customer = al.customer AND s.id = al.settlement_id
     WHERE s.kind IN ('payment', 'credit_note') AND al.id > pl.allocations_before
       AND al.applied_on >= pl.agreed_on AND al.applied_on <= $1),
p AS (
    SELECT pl.id, pl.customer, pl.amount,
           coalesce((SELECT sum(a.amount) FROM applied a WHERE a.id = pl.id), 0) AS paid,
           NOT EXISTS (SELECT 1 FROM credit.arrangement_invoice ai
                         JOIN credit.invoice i ON i.customer = ai.customer AND i.id = ai.invoice_id
                        WHERE ai.customer = pl.customer AND ai.arrangement_id = pl.id
                          AND i.open_amount + coalesce((SELECT sum(al.amount) FROM credit.allocation al
                                                         WHERE al.customer = i.customer AND al.invoice_id = i.id
                                                           AND al.applied_on > $1), 0) > 0) AS settled
      FROM plan pl),
missed AS (
    SELECT DISTINCT ON (p.id) p.id, x.instalment, x.due_date
      FROM p JOIN credit.arrangement_instalment x ON x.customer = p.customer AND x.arrangement_id = p.id
     WHERE x.due_date < $1 AND NOT p.settled
       AND coalesce((SELECT sum(a.amount) FROM applied a WHERE a.id = p.id AND a.applied_on <= x.due_date), 0)
           < (SELECT sum(y.amount) FROM credit.arrangement_instalment y
               WHERE y.customer = x.customer AND y.arrangement_id = x.arrangement_id AND y.instalment <= x.instalment)
     ORDER BY p.id, x.instalment),
d AS (
    SELECT p.id, p.customer, CASE WHEN m.id IS NOT NULL THEN 'broken' WHEN p.settled OR p.paid >= p.amount THEN 'completed' END AS verdict,
           CASE WHEN m.id IS NOT NULL THEN m.due_date + 1 ELSE $1 END AS on_date, m.instalment, m.due_date, p.paid
      FROM p LEFT JOIN missed m ON m.id = p.id),
decided AS (
    UPDATE credit.arrangement ar SET status = d.verdict, decided_on = d.on_date, missed_instalment = d.instalment
      FROM d WHERE ar.customer = d.customer AND ar.id = d.id AND d.verdict IS NOT NULL
    RETURNING ar.id, ar.customer, ar.status, ar.decided_on, ar.missed_instalment, ar.amount, d.due_date, d.paid),
events AS (
    INSERT INTO credit.event (kind, customer, after, acting_as)
    SELECT 'arrangement_' || x.status, x.customer,
           jsonb_strip_nulls(jsonb_build_object('arrangement_id', x.id, 'decided_on', x.decided_on, 'amount', x.amount,
                                                'paid', x.paid, 'missed_instalment', x.missed_instalment,
                                                'missed_due_date', x.due_date)),
           credit._caller()
      FROM decided x ORDER BY x.id)
SELECT 'arrangement_' || x.status, x.customer, NULL::text, NULL::int, NULL::bigint,
       CASE WHEN x.status = 'broken' THEN format('arrangement %s: instalment %s due %s not paid', x.id, x.missed_instalment, to_char(x.due_date, 'YYYY-MM-DD'))
            ELSE format('arrangement %s paid', x.id) END
  FROM decided x ORDER BY x.id
