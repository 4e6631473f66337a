-- The customers in $1, just referred to legal, whose policy blacklists on a legal referral
-- ($2, $3, $4: the policy's choice for each (customer_type, region)) are blacklisted
-- (src/collections/ladder.rs). Returns a change row per account blacklisted.
WITH m AS (SELECT * FROM unnest($2::text[], $3::text[], $4::boolean[]) AS m(customer_type, region, blacklist)),
     due AS MATERIALIZED (SELECT a.customer FROM credit.account a
             JOIN m ON m.customer_type IS NOT DISTINCT FROM a.customer_type
                   AND m.region IS NOT DISTINCT FROM a.region
            WHERE a.customer = ANY($1) AND m.blacklist AND a.status <> 'blacklisted'
            ORDER BY a.customer)
SELECT 'account_blacklisted', due.customer, NULL::text, NULL::int, NULL::bigint, 'policy: blacklist on legal referral'
  FROM due, LATERAL credit._set_status(due.customer, 'policy: legal referral by collections', 'blacklisted')
 ORDER BY due.customer
