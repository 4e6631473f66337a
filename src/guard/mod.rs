//! The order guard: triggers on the application's order tables that keep `open_orders` of
//! `credit.account` equal to the sum of each customer's open orders, and refuse (or hold) any
//! change that would take a customer past its limit — whoever writes, by whatever path.
//!
//! An order's path through the guard, by phase:
//! 1. [`config`]: the trigger's configuration (which columns are the customer, the amount, the
//!    status), read from its arguments once per backend and checked against the registry;
//! 2. [`row`]: what the old and the new row contribute to their customers' open orders;
//! 3. [`reserve`]: the net changes applied to the account rows in the lock order, each increase
//!    checked and reserved in one statement (store::account), warnings near the limit;
//! 4. [`refusal`]: an increase that does not fit is refused with its reasons (23514) —
//! 5. [`hold`]: — or, in hold mode, the order is saved with a hold status and queued;
//! 6. [`recording`]: a refusal rolls back with its transaction, so it is spooled outside it and
//!    recorded in credit.event by a background worker.
//!
//! [`trigger`] runs these phases for each row (and for TRUNCATE). Around them: [`tables`] moves a
//! whole table's open orders (guard, unguard, TRUNCATE, ATTACH, DETACH, DROP, rewrites), [`ddl`]
//! is the DDL watch that keeps the guard on whatever the table's owner does, and [`owner`] runs
//! pg_credit's writes into application tables with their owner's rights.
//!
//! Why AFTER ROW: the trigger sees the row as finally stored (after every BEFORE trigger, and only
//! for the branch INSERT ... ON CONFLICT took), so the counter can never drift from the table.
//! Orders of different customers touch different account rows and never wait on each other.
pub mod config;
pub mod ddl;
pub mod hold;
pub mod owner;
pub mod recording;
pub mod refusal;
pub mod reserve;
pub mod row;
pub mod tables;
pub mod trigger;
