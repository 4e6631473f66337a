-- Helpers shared by the regression files (pg_regress runs each file in its own session).
CREATE SCHEMA regress;
-- The SQLSTATE a statement fails with ('ok' when it succeeds). Runs in a subtransaction, so the
-- statement's effects are always rolled back: callers can prove a failure changed nothing.
CREATE FUNCTION regress.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE stmt;
    EXCEPTION WHEN OTHERS THEN
        RETURN SQLSTATE;
    END;
    RETURN 'ok';
END $$;
-- A fingerprint of every pg_credit table, to show that refused calls change nothing (but for the
-- order_refused events that record refused orders).
CREATE FUNCTION regress.snapshot() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(a::text, ',' ORDER BY customer) FROM credit.account a),
        (SELECT string_agg(i::text, ',' ORDER BY id) FROM credit.invoice i),
        (SELECT string_agg(s::text, ',' ORDER BY id) FROM credit.settlement s),
        (SELECT string_agg(x::text, ',' ORDER BY id) FROM credit.allocation x),
        (SELECT string_agg(g::text, ',' ORDER BY table_name) FROM credit.guarded_table g),
        (SELECT string_agg(p::text, ',' ORDER BY id) FROM credit.policy p),
        (SELECT string_agg(t::text, ',' ORDER BY id) FROM credit.term_tier t),
        (SELECT string_agg(h::text, ',' ORDER BY id) FROM credit.order_hold h),
        (SELECT string_agg(r::text, ',' ORDER BY id) FROM credit.limit_request r),
        (SELECT string_agg(l::text, ',' ORDER BY request_id, level) FROM credit.limit_approval l),
        (SELECT string_agg(d::text, ',' ORDER BY ladder, level) FROM credit.dunning_level d),
        (SELECT string_agg(t::text, ',' ORDER BY id) FROM credit.collection_task t),
        (SELECT string_agg(c::text, ',' ORDER BY id) FROM credit.collection_contact c),
        (SELECT string_agg(p::text, ',' ORDER BY id) FROM credit.promise p),
        (SELECT string_agg(d::text, ',' ORDER BY id) FROM credit.invoice_dispute d),
        -- A refused order is recorded (kind order_refused) and nothing else changes.
        (SELECT count(*)::text FROM credit.outbox WHERE kind <> 'order_refused'),
        (SELECT count(*)::text FROM credit.event WHERE kind <> 'order_refused')))
$$;
DO $$ BEGIN CREATE ROLE regress_clerk NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT extversion FROM pg_extension WHERE extname = 'pg_credit';
