-- Benchmark schema: four identical order tables, 10,000 customers with room to spare.
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE EXTENSION IF NOT EXISTS pg_credit;

CREATE TABLE bench.orders_plain   (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, status text NOT NULL DEFAULT 'open');
CREATE TABLE bench.orders_guarded (LIKE bench.orders_plain INCLUDING ALL);
CREATE TABLE bench.orders_plpgsql (LIKE bench.orders_plain INCLUDING ALL);

INSERT INTO credit.account (customer, credit_limit)
SELECT 'C' || lpad(i::text, 5, '0'), 1e14 FROM generate_series(1, 10000) i;
SELECT credit.guard('bench.orders_guarded', 'customer', 'amount', 'status', '{open}');

-- The reference a good DBA would write by hand: a table-specialised, incremental, atomic PL/pgSQL
-- trigger with the same semantics as pg_credit's guard (AFTER ROW, one conditional UPDATE per
-- change, releases on cancel/delete, moves between customers locked in customer order).
CREATE TABLE bench.plpgsql_account (
    customer text PRIMARY KEY, credit_limit numeric NOT NULL, status text NOT NULL DEFAULT 'active',
    open_ar numeric NOT NULL DEFAULT 0, unapplied_credit numeric NOT NULL DEFAULT 0, open_orders numeric NOT NULL DEFAULT 0
) WITH (fillfactor = 80);
INSERT INTO bench.plpgsql_account (customer, credit_limit) SELECT customer, credit_limit FROM credit.account;

CREATE FUNCTION bench.plpgsql_reserve(c text, amt numeric) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bench.plpgsql_account SET open_orders = open_orders + amt
     WHERE customer = c AND status = 'active' AND open_ar - unapplied_credit + open_orders + amt <= credit_limit;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order exceeds the credit limit of customer "%"', c USING ERRCODE = '23514';
    END IF;
END $$;

CREATE FUNCTION bench.plpgsql_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_amt numeric := CASE WHEN TG_OP <> 'INSERT' AND OLD.status = 'open' THEN OLD.amount END;
    new_amt numeric := CASE WHEN TG_OP <> 'DELETE' AND NEW.status = 'open' THEN NEW.amount END;
BEGIN
    IF new_amt < 0 THEN
        RAISE EXCEPTION 'order amount must not be negative' USING ERRCODE = '22023';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF new_amt IS NOT NULL THEN PERFORM bench.plpgsql_reserve(NEW.customer, new_amt); END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF old_amt IS NOT NULL THEN
            UPDATE bench.plpgsql_account SET open_orders = open_orders - old_amt WHERE customer = OLD.customer;
        END IF;
    ELSIF OLD.customer = NEW.customer THEN
        IF coalesce(new_amt, 0) > coalesce(old_amt, 0) OR (old_amt IS NULL AND new_amt IS NOT NULL) THEN
            PERFORM bench.plpgsql_reserve(NEW.customer, coalesce(new_amt, 0) - coalesce(old_amt, 0));
        ELSIF coalesce(new_amt, 0) < coalesce(old_amt, 0) THEN
            UPDATE bench.plpgsql_account SET open_orders = open_orders - (old_amt - coalesce(new_amt, 0)) WHERE customer = NEW.customer;
        END IF;
    ELSE
        IF OLD.customer < NEW.customer THEN
            IF old_amt IS NOT NULL THEN UPDATE bench.plpgsql_account SET open_orders = open_orders - old_amt WHERE customer = OLD.customer; END IF;
            IF new_amt IS NOT NULL THEN PERFORM bench.plpgsql_reserve(NEW.customer, new_amt); END IF;
        ELSE
            IF new_amt IS NOT NULL THEN PERFORM bench.plpgsql_reserve(NEW.customer, new_amt); END IF;
            IF old_amt IS NOT NULL THEN UPDATE bench.plpgsql_account SET open_orders = open_orders - old_amt WHERE customer = OLD.customer; END IF;
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER plpgsql_guard AFTER INSERT OR UPDATE OR DELETE ON bench.orders_plpgsql
    FOR EACH ROW EXECUTE FUNCTION bench.plpgsql_guard();

-- The ceiling for any trigger-based guard: an AFTER ROW trigger that does nothing.
CREATE TABLE bench.orders_noop (LIKE bench.orders_plain INCLUDING ALL);
CREATE FUNCTION bench.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER noop AFTER INSERT OR UPDATE OR DELETE ON bench.orders_noop
    FOR EACH ROW EXECUTE FUNCTION bench.noop();

-- O(1) check: one customer with a single open invoice and order, one with 10,000 of each.
INSERT INTO credit.account (customer, credit_limit) VALUES ('SMALL', 1e14), ('BIG', 1e14);
SELECT credit.post_invoice('SMALL', 'S-1', 100, current_date - 10);
INSERT INTO bench.orders_guarded (customer, amount) VALUES ('SMALL', 100);
SELECT count(credit.post_invoice('BIG', 'B-' || i, 100, current_date - (i % 300))) FROM generate_series(1, 10000) i;
INSERT INTO bench.orders_guarded (customer, amount) SELECT 'BIG', 100 FROM generate_series(1, 10000);
-- Hot customer (issue 18): every client orders for the same customer, whose limit never binds.
INSERT INTO credit.account (customer, credit_limit) VALUES ('HOT', 1e14);
INSERT INTO bench.plpgsql_account (customer, credit_limit) VALUES ('HOT', 1e14);
VACUUM ANALYZE;
