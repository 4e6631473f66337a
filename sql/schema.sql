-- pg_credit's schema-wide pieces (loaded first, bootstrap). Each domain's tables, functions and
-- triggers are in the file named after it, loaded in this order (src/lib.rs wires it):
--   privileges.sql  the four levels and the checks every function makes
--   accounts.sql    credit.account: limits, status, the maintained exposure counters
--   ledger.sql      invoices, payments, credit notes, write-offs and their allocations
--   audit.sql       credit.event (the history), the outbox and the tamper-evident chain
--   policy.sql, grading.sql, approvals.sql, holds.sql, guard.sql, collections.sql,
--   aggregates.sql, aging.sql, statements.sql, confirmations.sql, reconciliation.sql
--   grants.sql      last (finalize): nothing for PUBLIC, and credit.grant_privileges()
-- Every name is schema-qualified: the extension's code never depends on the caller's search_path.

-- Whether relation `rel` is pg_credit's table credit.<name>, or on a Citus node one of its shards
-- (credit.<name>_<shard id>, docs/citus.md): the row triggers that refuse to run on any other
-- table ask this. Only the extension's owner creates relations in schema credit, so the name is
-- proof enough.
CREATE FUNCTION credit._is_own_table(rel oid, name text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM pg_class c
                WHERE c.oid = rel AND c.relnamespace = 'credit'::regnamespace
                  AND (c.relname = name OR c.relname ~ ('^' || name || '_[0-9]+$')));
COMMENT ON FUNCTION credit._is_own_table(oid, text) IS 'Internal: whether a relation is credit.<name> or one of its Citus shards';

-- Shipped default rows (aging buckets, grades, score weights) that survive dump and restore:
-- pg_dump keeps only rows a DBA touched (NOT is_default); deleting a default retires it (kept,
-- hidden) so a restore does not bring it back; inserting a default's or retired row's key replaces
-- it. The trigger's arguments name the key columns.
CREATE FUNCTION credit._default_row_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_object_agg(k, to_jsonb(NEW) -> k) INTO key FROM unnest(TG_ARGV) k;
        EXECUTE format('DELETE FROM %s t WHERE to_jsonb(t) @> $1 AND (is_default OR retired)', TG_RELID::regclass)
          USING key;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        NEW.is_default := false;   -- a touched default is the DBA's now, and is dumped
        RETURN NEW;
    ELSE
        IF OLD.is_default AND pg_trigger_depth() = 1 THEN
            SELECT jsonb_object_agg(k, to_jsonb(OLD) -> k) INTO key FROM unnest(TG_ARGV) k;
            EXECUTE format('UPDATE %s t SET retired = true WHERE to_jsonb(t) @> $1', TG_RELID::regclass)
              USING key;
            RETURN NULL;
        END IF;
        RETURN OLD;
    END IF;
END
$$;

COMMENT ON SCHEMA credit IS 'pg_credit: customer credit limits, receivables, exposure and the order guard';
COMMENT ON FUNCTION credit._default_row_write() IS 'Internal: keeps shipped default rows restore-safe';
