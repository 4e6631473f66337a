-- Stress schema: one hot customer, a guarded order table, and the client operations.
CREATE EXTENSION pg_credit;
CREATE SCHEMA stress;
INSERT INTO credit.account (customer, credit_limit) VALUES ('HOT', 10000), ('WARM', 5000);
CREATE TABLE stress.orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric(12,2) NOT NULL,
                            status text NOT NULL DEFAULT 'open');
SELECT credit.guard('stress.orders', 'customer', 'amount', 'status');
CREATE TABLE stress.attempt (accepted boolean NOT NULL);
CREATE TABLE stress.violation (seen_at timestamptz DEFAULT clock_timestamp(), what text);
CREATE SEQUENCE stress.doc_no;

-- Place an order; a credit refusal is an expected outcome, anything else is a failure.
CREATE FUNCTION stress.place(c text, amt numeric) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stress.orders (customer, amount) VALUES (c, amt);
    INSERT INTO stress.attempt VALUES (true);
    RETURN true;
EXCEPTION WHEN check_violation THEN
    INSERT INTO stress.attempt VALUES (false);
    RETURN false;
END $$;

-- Cancel, shrink or grow one random open order.
CREATE FUNCTION stress.change(c text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE o bigint;
BEGIN
    SELECT id INTO o FROM stress.orders WHERE customer = c AND status = 'open'
     ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF o IS NULL THEN RETURN; END IF;
    CASE (random() * 3)::int
        WHEN 0 THEN UPDATE stress.orders SET status = 'cancelled' WHERE id = o;
        WHEN 1 THEN UPDATE stress.orders SET amount = amount / 2 WHERE id = o;
        ELSE
            BEGIN
                UPDATE stress.orders SET amount = amount + 50 WHERE id = o;
            EXCEPTION WHEN check_violation THEN NULL;
            END;
    END CASE;
END $$;

-- Invoice one open order (order closes, receivable opens: exposure unchanged).
CREATE FUNCTION stress.invoice(c text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE o record;
BEGIN
    SELECT id, amount INTO o FROM stress.orders WHERE customer = c AND status = 'open'
     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF o.id IS NULL THEN RETURN; END IF;
    UPDATE stress.orders SET status = 'invoiced' WHERE id = o.id;
    PERFORM credit.post_invoice(c, 'INV-' || nextval('stress.doc_no'), o.amount, current_date - 40);
END $$;

-- Pay part of what is open (never more, so exposure only falls).
CREATE FUNCTION stress.pay(c text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE ar numeric;
BEGIN
    SELECT open_ar INTO ar FROM credit.account WHERE customer = c;
    IF ar > 1 THEN
        PERFORM credit.post_payment(c, round(ar * random()::numeric, 2) + 0.01);
    END IF;
END $$;

-- The invariants, checked by a monitor while the clients run: within the limit, and the counter
-- equal to the open orders (one snapshot sees both, since they commit together).
CREATE FUNCTION stress.monitor() RETURNS void LANGUAGE sql AS $$
    INSERT INTO stress.violation (what)
    SELECT format('%s: exposure %s limit %s open_orders %s actual %s', a.customer, a.exposure, a.credit_limit,
                  a.open_orders, (SELECT coalesce(sum(amount), 0) FROM stress.orders o WHERE o.customer = a.customer AND o.status = 'open'))
      FROM credit.account a
     WHERE a.exposure > a.credit_limit
        OR a.open_orders <> (SELECT coalesce(sum(amount), 0) FROM stress.orders o WHERE o.customer = a.customer AND o.status = 'open')
$$;
