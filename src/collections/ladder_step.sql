-- The dunning ladder's step for the day $1, in one statement (src/collections/ladder.rs): every
-- (invoice, level) reached on $1 by an invoice open on $1, not in dispute (now, or on $1), not
-- under a promise that still runs and not under a payment arrangement active on $1, becomes a
-- task — already superseded when a level of more days is reached too; open tasks of fewer days on
-- the same invoices are superseded. $2, $3, $4, $5: the ladder and the grace days of each
-- (customer_type, region) present among the accounts; a level after the due date (days > 0) is
-- reached grace days later.
-- Task ids are given here, not by the column's default: on a Citus worker they are the node's
-- (src/collections/tables.rs).
-- Returns: change, customer, doc_no, level, task id, action, channel, assigned_to, invoice id.
WITH m AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[]) AS m(customer_type, region, ladder, grace)),
cand AS (
    SELECT i.id, i.customer, i.doc_no, i.due_date, m.ladder, m.grace,
           i.open_amount + coalesce((SELECT sum(al.amount) FROM credit.allocation al
                                      WHERE al.invoice_id = i.id AND al.applied_on > $1), 0) AS open_then
      FROM credit.invoice i
      JOIN credit.account a ON a.customer = i.customer
      JOIN m ON m.customer_type IS NOT DISTINCT FROM a.customer_type AND m.region IS NOT DISTINCT FROM a.region
     WHERE i.id IN (SELECT x.id FROM credit.invoice x WHERE x.open_amount > 0
                    UNION SELECT x.id FROM credit.invoice x WHERE x.last_applied_on > $1)
       AND i.doc_date <= $1
       AND NOT i.disputed
       AND NOT EXISTS (SELECT 1 FROM credit.invoice_dispute d WHERE d.invoice_id = i.id
                         AND d.opened_on <= $1 AND (d.resolved_on IS NULL OR d.resolved_on > $1))
       AND NOT EXISTS (SELECT 1 FROM credit.promise p WHERE p.invoice_id = i.id
                         AND p.made_on <= $1 AND p.promised_date >= $1 AND p.status <> 'broken')
       /*arranged*/),
reached AS (
    SELECT c.*, l.level, l.action, l.channel, l.assignee_role, l.fee, l.days,
           greatest(max(l.days) OVER (PARTITION BY c.id),
                    (SELECT max(l2.days) FROM credit.collection_task t2
                       JOIN credit.dunning_level l2 ON l2.ladder = t2.ladder AND l2.level = t2.level
                      WHERE t2.invoice_id = c.id)) AS top_days
      FROM cand c JOIN credit.dunning_level l ON l.ladder = c.ladder AND NOT l.retired
                   AND $1 - c.due_date >= l.days + CASE WHEN l.days > 0 THEN c.grace ELSE 0 END
     WHERE c.open_then > 0
       AND NOT EXISTS (SELECT 1 FROM credit.collection_task x WHERE x.invoice_id = c.id AND x.ladder = c.ladder AND x.level = l.level)),
new AS (
    INSERT INTO credit.collection_task (id, customer, invoice_id, doc_no, ladder, level, action, channel, assigned_to,
                                        fee, open_amount, days_past_due, created_for, due_on, status, closed_at)
    SELECT nextval('credit.collection_task_id_seq'), r.customer, r.id, r.doc_no, r.ladder, r.level, r.action, r.channel, r.assignee_role, r.fee,
           r.open_then, $1 - r.due_date, $1, $1,
           CASE WHEN r.days < r.top_days THEN 'superseded' ELSE 'open' END,
           CASE WHEN r.days < r.top_days THEN clock_timestamp() END
      FROM reached r ORDER BY r.customer, r.id, r.level
    ON CONFLICT DO NOTHING
    RETURNING *),
top AS (SELECT n.invoice_id, max(l.days) AS days FROM new n
          JOIN credit.dunning_level l ON l.ladder = n.ladder AND l.level = n.level GROUP BY n.invoice_id),
superseded AS (
    UPDATE credit.collection_task t SET status = 'superseded', closed_at = clock_timestamp()
      FROM top, credit.dunning_level l
     WHERE t.invoice_id = top.invoice_id AND t.status = 'open' AND t.level IS NOT NULL
       AND l.ladder = t.ladder AND l.level = t.level AND l.days < top.days
    RETURNING t.id, t.customer, t.doc_no, t.level)
SELECT 'task_created', n.customer, n.doc_no, n.level, n.id, n.action, n.channel, n.assigned_to::text, n.invoice_id, 1 AS o
  FROM new n
UNION ALL
SELECT 'task_superseded', n.customer, n.doc_no, n.level, n.id, NULL, NULL, NULL, NULL, 2 FROM new n WHERE n.status = 'superseded'
UNION ALL
SELECT 'task_superseded', s.customer, s.doc_no, s.level, s.id, NULL, NULL, NULL, NULL, 2 FROM superseded s
ORDER BY 10, 5
