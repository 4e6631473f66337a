-- The customers in $1, just referred to legal, whose policy blacklists on a legal referral
-- ($2, $3, $4: the policy's choice for each (customer_type, region)) are blacklisted
-- (src/collections/ladder.rs, under the reason the account's history records). Returns a change
-- row per account blacklisted.
WITH m AS (SELECT * FROM unnest($2::text[], $3::text[], $4::boolean[]) AS m(customer_type, region, blacklist)),
     -- Locked in customer order, as every path that locks several accounts does.
     due AS MATERIALIZED (SELECT a.customer FROM credit.account a
               JOIN m ON m.customer_type IS NOT DISTINCT FROM a.customer_type
                     AND m.region IS NOT DISTINCT FROM a.region
              WHERE a.customer = ANY($1) AND m.blacklist AND a.status <> 'blacklisted'
              ORDER BY a.customer FOR NO KEY UPDATE OF a),
     done AS (UPDATE credit.account a SET status = 'blacklisted'
                FROM due WHERE a.customer = due.customer AND a.status <> 'blacklisted'
              RETURNING a.customer)
SELECT 'account_blacklisted', done.customer, NULL::text, NULL::int, NULL::bigint, 'policy: blacklist on legal referral'
  FROM done ORDER BY done.customer
