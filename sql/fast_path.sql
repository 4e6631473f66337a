-- The fast path (shared_preload_libraries = 'pg_credit'): guarded orders reserve credit in shared
-- memory instead of writing the customer's account row (src/store/reservations.rs). What SQL sees
-- of it: its state, and a way to bring credit.account up to the minute.
COMMENT ON FUNCTION credit.fast_path_status() IS 'The fast path in this database: on, recounting (after a start, crash or promotion), draining or off; customers held in shared memory, reservations in flight, open orders committed but not yet written into credit.account, the flusher''s work';
COMMENT ON FUNCTION credit.flush_open_orders() IS 'Writes the open orders committed since the fast path''s flusher last ran into credit.account now (waits for the rows'' locks); returns how many customers it wrote';
COMMENT ON FUNCTION credit._fast_path_open_orders() IS 'Internal: open orders committed per customer that credit.account does not show yet, after waiting for fast-path reservations in flight (credit.verify)';
