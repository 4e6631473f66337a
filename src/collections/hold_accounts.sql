-- Collections puts on hold the accounts of the invoices in $1 that reached a hold level, as of $2
-- (src/collections/ladder.rs): only active accounts (a person's hold or a blacklisting stays as it
-- is), for invoices still open and undisputed now. Returns a change row per account held.
WITH cause AS (SELECT DISTINCT ON (i.customer) i.customer, i.doc_no, $2 - i.due_date AS days
                 FROM credit.invoice i
                WHERE i.id = ANY($1) AND i.open_amount > 0 AND NOT i.disputed
                ORDER BY i.customer, i.due_date, i.doc_no),
     held AS (UPDATE credit.account a SET status = 'hold', collection_hold_since = $2
                FROM cause WHERE a.customer = cause.customer AND a.status = 'active'
              RETURNING a.customer)
SELECT 'account_held', cause.customer, cause.doc_no, NULL::int, NULL::bigint, cause.days || ' days overdue'
  FROM cause JOIN held USING (customer) ORDER BY cause.customer
