-- Escalation of each broken promise in $1 as of $2 (src/collections/ladder.rs): a task for the
-- role of the ladder's first escalation level, once per promise, while its invoice is open and not
-- in dispute. Returns the new tasks as the ladder's step does (columns 1-8).
WITH new AS (
    INSERT INTO credit.collection_task (id, customer, invoice_id, doc_no, ladder, level, promise_id, action, channel,
                                        assigned_to, open_amount, days_past_due, created_for, due_on)
    SELECT nextval('credit.collection_task_id_seq'), p.customer, p.invoice_id, i.doc_no, t.ladder, NULL, p.id, 'escalate', 'phone',
           coalesce((SELECT l.assignee_role FROM credit.dunning_level l
                      WHERE l.ladder = t.ladder AND l.action = 'escalate' AND NOT l.retired ORDER BY l.level LIMIT 1),
                    t.assigned_to),
           i.open_amount, $2 - i.due_date, $2, $2
      FROM credit.promise p JOIN credit.invoice i ON i.id = p.invoice_id
      JOIN credit.collection_task t ON t.id = p.task_id
     WHERE p.id = ANY($1) AND i.open_amount > 0 AND NOT i.disputed
       AND NOT EXISTS (SELECT 1 FROM credit.collection_task x WHERE x.promise_id = p.id) ORDER BY p.id
    ON CONFLICT DO NOTHING RETURNING *)
SELECT 'task_created', n.customer, n.doc_no, n.level, n.id, n.action, n.channel, n.assigned_to::text
  FROM new n ORDER BY n.id
