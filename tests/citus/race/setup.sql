-- The race on Citus (tests/citus/run.sh part 2): 100 customers with tight limits, a guarded order
-- table distributed with the accounts, and the client operations. Run on the coordinator.
SET client_min_messages = warning;
SELECT count(*) FROM credit.distribute();
INSERT INTO credit.account (customer, credit_limit)
SELECT 'R' || lpad(n::text, 3, '0'), 100 + (n % 5) * 50 FROM generate_series(1, 100) n;
CREATE SCHEMA race;
CREATE TABLE race.orders (id bigserial, customer text NOT NULL, amount numeric(12,2) NOT NULL,
                          status text NOT NULL DEFAULT 'open', PRIMARY KEY (customer, id));
SELECT create_distributed_table('race.orders', 'customer', colocate_with => 'credit.account');
SELECT credit.guard('race.orders', 'customer', 'amount', 'status');
-- On the coordinator only: what the clients saw, and what the monitor found.
SET citus.enable_ddl_propagation = off;
CREATE TABLE race.attempt (accepted boolean NOT NULL);
CREATE TABLE race.violation (seen_at timestamptz DEFAULT clock_timestamp(), what text);
RESET citus.enable_ddl_propagation;

-- Place an order; a credit refusal is an expected outcome, anything else fails the client.
CREATE FUNCTION race.place(c text, amt numeric) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO race.orders (customer, amount) VALUES (c, amt);
    INSERT INTO race.attempt VALUES (true);
    RETURN true;
EXCEPTION WHEN check_violation THEN
    INSERT INTO race.attempt VALUES (false);
    RETURN false;
END $$;

-- Cancel the customer's oldest open order, or grow it (checked like a new order).
CREATE FUNCTION race.change(c text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE o bigint;
BEGIN
    SELECT id INTO o FROM race.orders WHERE customer = c AND status = 'open'
     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF o IS NULL THEN RETURN; END IF;
    IF random() < 0.7 THEN
        UPDATE race.orders SET status = 'cancelled' WHERE customer = c AND id = o;
    ELSE
        BEGIN
            UPDATE race.orders SET amount = amount + 20 WHERE customer = c AND id = o;
        EXCEPTION WHEN check_violation THEN NULL;
        END;
    END IF;
END $$;

-- Every customer's open orders against its limit, and its counter against both: one customer's
-- rows and account sit on one node, so each comparison reads one snapshot.
CREATE FUNCTION race.monitor() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v record;
BEGIN
    FOR v IN SELECT a.customer, max(a.credit_limit) AS credit_limit, max(a.open_orders) AS counted,
                    coalesce(sum(o.amount) FILTER (WHERE o.status = 'open'), 0) AS open
               FROM credit.account a LEFT JOIN race.orders o ON o.customer = a.customer
              GROUP BY a.customer
             HAVING coalesce(sum(o.amount) FILTER (WHERE o.status = 'open'), 0) > max(a.credit_limit)
                 OR max(a.open_orders) > max(a.credit_limit) LOOP
        INSERT INTO race.violation (what)
        VALUES (format('%s: open orders %s, counted %s, limit %s', v.customer, v.open, v.counted, v.credit_limit));
    END LOOP;
END $$;
