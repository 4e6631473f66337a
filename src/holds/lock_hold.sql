-- A held order (src/holds.rs, lock_hold_if), locked: its customer, amount and status, the UPDATE
-- that puts its row back to the status it had (or NULL when its table is no longer guarded in hold
-- mode), its row key and its table.
SELECT h.customer, h.amount, h.status,
       -- (format's %I refuses NULL: a table no longer guarded in hold mode has no status column)
       CASE WHEN g.status_column IS NOT NULL THEN
       format('UPDATE %s SET %I = %L WHERE %s', h.table_name, g.status_column, h.original_status,
              (SELECT string_agg(format('%I = ($1::jsonb ->> %L)::%s', k, k, format_type(a.atttypid, a.atttypmod)), ' AND ')
                 FROM unnest(g.key_columns) k JOIN pg_attribute a ON a.attrelid = h.table_name AND a.attname = k)) END,
       h.row_key::text, h.table_name::oid
  FROM credit.order_hold h LEFT JOIN credit.guarded_table g ON g.table_name = h.table_name
 WHERE h.id = $1 FOR UPDATE OF h
