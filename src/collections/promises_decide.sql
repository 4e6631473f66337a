-- Open promises decided as of $1 (src/collections/ladder.rs, promises): kept when the promised
-- amount was paid (payments and credit notes, net of reversals) or the invoice settled by the
-- promised date; broken when the date has passed
-- without it. Returns each decided promise: id, customer, invoice number, verdict.
WITH p AS (
    SELECT p.id, p.amount, p.promised_date,
           coalesce((SELECT sum(al.amount) FROM credit.allocation al JOIN credit.settlement s ON s.id = al.settlement_id
                      WHERE al.invoice_id = p.invoice_id AND s.kind NOT IN ('write_off', 'cancellation')
                        AND al.applied_on BETWEEN p.made_on AND least(p.promised_date, $1)), 0) AS paid,
           i.amount - coalesce((SELECT sum(al.amount) FROM credit.allocation al
                                 WHERE al.invoice_id = i.id AND al.applied_on <= least(p.promised_date, $1)), 0) AS open_then
      FROM credit.promise p JOIN credit.invoice i ON i.id = p.invoice_id
     WHERE p.status = 'open' AND p.made_on <= $1),
d AS (SELECT id, CASE WHEN paid >= amount OR open_then = 0 THEN 'kept'
                      WHEN promised_date < $1 THEN 'broken' END AS verdict FROM p)
UPDATE credit.promise x SET status = d.verdict, decided_on = $1 FROM d
 WHERE x.id = d.id AND d.verdict IS NOT NULL
RETURNING x.id, x.customer, (SELECT i.doc_no FROM credit.invoice i WHERE i.id = x.invoice_id), x.status
