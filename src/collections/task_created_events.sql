-- A task_created event for each new collection task in $1, in task order
-- (src/collections/ladder.rs: the ladder's step and promise escalations).
INSERT INTO credit.event (kind, customer, after, acting_as)
SELECT 'task_created', n.customer,
       jsonb_build_object('task_id', n.id, 'doc_no', n.doc_no, 'ladder', n.ladder, 'level', n.level,
                          'promise_id', n.promise_id, 'action', n.action, 'channel', n.channel,
                          'assigned_to', n.assigned_to, 'open_amount', n.open_amount,
                          'days_past_due', n.days_past_due, 'created_for', n.created_for), credit._caller()
  FROM credit.collection_task n WHERE n.id = ANY($1) ORDER BY n.id
