-- A promise_kept or promise_broken event for each promise in $1 (src/collections/ladder.rs).
INSERT INTO credit.event (kind, customer, after, acting_as)
SELECT 'promise_' || p.status, p.customer,
       jsonb_build_object('promise_id', p.id, 'task_id', p.task_id, 'doc_no', i.doc_no, 'amount', p.amount,
                          'promised_date', p.promised_date, 'decided_on', p.decided_on), credit._caller()
  FROM credit.promise p JOIN credit.invoice i ON i.id = p.invoice_id WHERE p.id = ANY($1) ORDER BY p.id
