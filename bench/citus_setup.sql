-- bench/citus.sh: 10,000 customers and a guarded and a plain order table, on one node or (with
-- :citus = 1) laid out on Citus by credit.distribute(), the order tables colocated with the accounts.
SET client_min_messages = warning;
\if :citus
SELECT count(*) FROM credit.distribute();
\endif
CREATE SCHEMA bench;
INSERT INTO credit.account (customer, credit_limit)
SELECT 'C' || lpad(n::text, 5, '0'), 1e14 FROM generate_series(1, 10000) n;
INSERT INTO credit.account (customer, credit_limit) VALUES ('HOT', 1e14);
CREATE TABLE bench.orders_plain (id bigserial, customer text NOT NULL, amount numeric NOT NULL,
                                 status text NOT NULL DEFAULT 'open', PRIMARY KEY (customer, id));
CREATE TABLE bench.orders_guarded (LIKE bench.orders_plain INCLUDING ALL);
\if :citus
SELECT create_distributed_table('bench.orders_plain', 'customer', colocate_with => 'credit.account');
SELECT create_distributed_table('bench.orders_guarded', 'customer', colocate_with => 'credit.account');
\endif
SELECT credit.guard('bench.orders_guarded', 'customer', 'amount', 'status', '{open}');
