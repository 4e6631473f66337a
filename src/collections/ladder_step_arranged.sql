-- Condition of the ladder's step (ladder_step.sql, at /*arranged*/; left out on a database still
-- on an older version's SQL): not under a payment arrangement active on $1 — the plan's
-- instalments, not the invoice's due date, count while it is kept.
AND NOT EXISTS (SELECT 1 FROM credit.arrangement_invoice ai
                  JOIN credit.arrangement ar ON ar.customer = ai.customer AND ar.id = ai.arrangement_id
                 WHERE ai.customer = i.customer AND ai.invoice_id = i.id AND ar.agreed_on <= $1
                   AND (ar.decided_on IS NULL OR ar.decided_on > $1))
