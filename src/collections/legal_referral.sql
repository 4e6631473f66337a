-- Legal referral of the invoices in $1 as of $2 (src/collections/ladder.rs): the invoice and the
-- account are marked, with a legal_referral event each. Returns a change row per invoice referred.
WITH r AS (UPDATE credit.invoice i SET legal_referred_on = $2
            WHERE i.id = ANY($1) AND i.open_amount > 0 AND NOT i.disputed AND i.legal_referred_on IS NULL
           RETURNING i.customer, i.doc_no),
     a AS (UPDATE credit.account a SET legal_referred_on = coalesce(a.legal_referred_on, $2)
            WHERE a.customer IN (SELECT customer FROM r)),
     e AS (INSERT INTO credit.event (kind, customer, reason, after, acting_as)
           SELECT 'legal_referral', r.customer, 'collections: dunning ladder reached legal referral',
                  jsonb_build_object('doc_no', r.doc_no, 'referred_on', $2::date), credit._caller()
             FROM r ORDER BY r.customer, r.doc_no)
SELECT 'legal_referral', r.customer, r.doc_no, NULL::int, NULL::bigint, NULL::text
  FROM r ORDER BY r.customer, r.doc_no
