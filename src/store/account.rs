//! `credit.account`: the read model the decisions use, the row locks, and every move of the
//! maintained counters. See the module above for the lock order.
//!
//! The guard's statements are prepared once per backend and kept (SPI_keepplan); operators are
//! schema-qualified because the guard's trigger does not pin search_path (that would cost a GUC
//! save and restore on every row).
use crate::pg::args;
use crate::pg::error::{self, Code, OrRaise, Required};
use crate::pg::numeric::{decimal, decimal_opt, numeric};
use crate::store;
use crate::store::fast_read::{self, Read};
use crate::store::reservations::{self, Checked};
use credit_core::decision::{self, Account, Status};
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiHeapTupleData};
use pgrx::{AnyNumeric, PgBuiltInOids, PgOid};
use rust_decimal::Decimal;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::LazyLock;

/// SQL: the limit in force on day `today` (an SQL expression: a parameter) on one row — the
/// temporary limit while it lasts, capped by the policy maximum. Today's date is a parameter, not
/// CURRENT_DATE: Citus refuses non-immutable functions in the CASE of a statement on a distributed
/// table (docs/citus.md), and a parameter costs nothing on one node.
fn limit_in_force(today: &str) -> String {
    format!(
        "LEAST(CASE WHEN temporary_limit_until OPERATOR(pg_catalog.>=) {today} \
                    THEN temporary_limit ELSE credit_limit END, policy_max_limit)"
    )
}

/// SQL: what a decision needs from one row, in the order [`Loaded::from_row`] reads it.
fn decision_columns(today: &str) -> String {
    format!(
        "{}, exposure OPERATOR(pg_catalog.+) member_exposure, status, policy_prepayment_only, \
         {today} OPERATOR(pg_catalog.-) oldest_open_due, policy_overdue_block_days, policy_warn_ratio, parent",
        limit_in_force(today)
    )
}

/// SQL: the order of amount $2 fits the row — the account is active, not blocked by the overdue
/// rule, and exposure plus the order stays within the usable limit (0 for prepayment-only
/// customers): `credit_core::decision`'s rule, as a condition on one row (a property test holds
/// the two to each other, src/pg_tests.rs).
fn fits(today: &str) -> String {
    format!(
        "status OPERATOR(pg_catalog.=) 'active' \
         AND exposure OPERATOR(pg_catalog.+) member_exposure OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.<=) \
             CASE WHEN policy_prepayment_only THEN 0 ELSE {} END \
         AND (oldest_open_due IS NULL OR policy_overdue_block_days IS NULL \
              OR oldest_open_due OPERATOR(pg_catalog.>=) ({today} OPERATOR(pg_catalog.-) policy_overdue_block_days))",
        limit_in_force(today)
    )
}

/// SQL: this reservation of $2 crossed the warning line — at or above it now, below it before.
/// Evaluated in the reserving UPDATE, so the common case costs a few numeric comparisons and the
/// guard reads back one boolean.
fn crossed_warning(today: &str) -> String {
    let limit = limit_in_force(today);
    format!(
        "policy_warn_ratio IS NOT NULL AND credit_limit OPERATOR(pg_catalog.>) 0 AND NOT policy_prepayment_only \
         AND exposure OPERATOR(pg_catalog.+) member_exposure OPERATOR(pg_catalog.>=) ({limit} OPERATOR(pg_catalog.*) policy_warn_ratio) \
         AND exposure OPERATOR(pg_catalog.+) member_exposure OPERATOR(pg_catalog.-) $2 OPERATOR(pg_catalog.<) \
             ({limit} OPERATOR(pg_catalog.*) policy_warn_ratio)"
    )
}

/// The reading statement's decision columns, with today as its parameter $2.
static DECISION_COLUMNS: LazyLock<String> = LazyLock::new(|| decision_columns("$2::pg_catalog.date"));

/// SQL: due date of customer $1's oldest open invoice not in dispute (the overdue rule reads it).
const OLDEST_OPEN_DUE: &str = "(SELECT min(i.due_date) FROM credit.invoice i \
                                WHERE i.customer = $1 AND i.open_amount > 0 AND NOT i.disputed)";

// ---------------------------------------------------------------------------------------------
// The read model.

/// One account as read for a decision, with the numbers for messages.
pub struct Loaded {
    pub account: Account,
    /// Limit in force (temporary limit while it lasts, capped by the policy maximum).
    pub limit: AnyNumeric,
    /// Exposure the limit is held against (a group head's includes its members').
    pub exposure: AnyNumeric,
    pub parent: Option<String>,
}

impl Loaded {
    /// A row of `SELECT <DECISION_COLUMNS>`.
    pub fn from_row(row: &SpiHeapTupleData<'_>) -> Loaded {
        let limit: AnyNumeric = row.get(1).or_raise().required("credit_limit");
        let exposure: AnyNumeric = row.get(2).or_raise().required("exposure");
        let status: String = row.get(3).or_raise().required("status");
        let account = Account {
            credit_limit: decimal(&limit),
            exposure: decimal(&exposure),
            // An unknown status cannot come from the validated table; treat it as the strictest.
            status: Status::parse(&status).unwrap_or(Status::Blacklisted),
            prepayment_only: row.get::<bool>(4).or_raise().unwrap_or(false),
            days_past_due: row.get::<i32>(5).or_raise(),
            overdue_block_days: row.get::<i32>(6).or_raise(),
            warn_ratio: decimal_opt(row.get::<AnyNumeric>(7).or_raise()),
        };
        Loaded { account, limit, exposure, parent: row.get(8).or_raise() }
    }

    /// The limit orders are held against: 0 for prepayment-only customers.
    pub fn usable_limit(&self) -> AnyNumeric {
        if self.account.prepayment_only {
            AnyNumeric::from(0)
        } else {
            self.limit.clone()
        }
    }

    /// A row read by the fast path (refusals' and warnings' numbers).
    pub fn from_fast(row: fast_read::Row) -> Loaded {
        let limit = numeric(row.account.credit_limit);
        let exposure = numeric(row.account.exposure);
        Loaded { account: row.account, limit, exposure, parent: row.parent }
    }

    /// Adds what shared memory holds for the customer and the row does not show yet (the fast
    /// path's reservations in flight and committed open orders not yet flushed).
    pub fn add_reserved(&mut self, customer: &str) {
        let d = reservations::delta(customer);
        if !d.is_zero() {
            self.account.exposure += d;
            self.exposure = self.exposure.clone() + numeric(d);
        }
    }

    pub fn available(&self) -> AnyNumeric {
        self.usable_limit() - self.exposure.clone()
    }
}

/// The account as the decision logic sees it; None when the customer has no credit account.
pub fn load(customer: &str) -> Option<Loaded> {
    Spi::connect(|c| {
        let table = read_table_for(c, customer);
        let t = c
            .select(
                &format!("SELECT {} FROM {table} WHERE customer OPERATOR(pg_catalog.=) $1", *DECISION_COLUMNS),
                Some(1),
                &[customer.into(), args::today().into()],
            )
            .or_raise();
        if t.is_empty() {
            return None;
        }
        let mut l = Loaded::from_row(&t.first().get_heap_tuple().or_raise().required("account row"));
        l.add_reserved(customer);
        Some(l)
    })
}

/// The table a read of `customer`'s account names: credit.account; on a Citus worker, in a task
/// another node sent (a query over the shards that calls credit.check for each row, such as
/// credit.hold_queue), the customer's account shard when it is placed here: a read of
/// credit.account there would be a distributed query inside a shard's, which Citus refuses.
fn read_table_for(c: &SpiClient<'_>, customer: &str) -> String {
    const ACCOUNT: &str = "credit.account";
    if !crate::pg::citus::from_other_node() || !crate::pg::citus::on_worker() {
        return ACCOUNT.into();
    }
    crate::pg::citus::shard_here(c, ACCOUNT, customer).map_or_else(|| ACCOUNT.into(), |(shard, _)| shard)
}

/// The account and its group head.
pub fn load_with_group(customer: &str) -> Option<(Loaded, Option<Loaded>)> {
    let own = load(customer)?;
    let head = own.parent.as_deref().and_then(load);
    Some((own, head))
}

/// The group head of a customer: None when it has no account, Some(None) when it heads no group.
pub fn parent_of(c: &SpiClient<'_>, customer: &str) -> Option<Option<String>> {
    let t = c.select("SELECT parent FROM credit.account WHERE customer = $1", Some(1), &[customer.into()]).or_raise();
    (!t.is_empty()).then(|| t.first().get_one::<String>().or_raise())
}

/// Whether a customer heads a credit group.
pub fn has_members(c: &SpiClient<'_>, customer: &str) -> bool {
    // Citus has no groups (docs/citus.md), and from an account shard's trigger this would be a
    // query over every shard, which Citus refuses there.
    if crate::pg::citus::distributed() {
        return false;
    }
    !c.select("SELECT 1 FROM credit.account WHERE parent = $1 LIMIT 1", Some(1), &[customer.into()])
        .or_raise()
        .is_empty()
}

// ---------------------------------------------------------------------------------------------
// Locks.

/// Locks the account row (FOR NO KEY UPDATE, the lock a guarded order takes); 23503 when the
/// customer has no account.
pub fn lock(c: &mut SpiClient<'_>, customer: &str) {
    let t = c
        .update("SELECT 1 FROM credit.account WHERE customer = $1 FOR NO KEY UPDATE", Some(1), &[customer.into()])
        .or_raise();
    if t.is_empty() {
        error::unknown_customer(customer)
    }
}

/// Locks the row and reads it for a decision (None: no account). Waits for a concurrent change to
/// commit or roll back and then reads the latest row, so a decision is never based on a stale
/// exposure.
pub fn lock_for_decision(c: &mut SpiClient<'_>, customer: &str) -> Option<Loaded> {
    order_moves(c).lookup_locked(c, customer)
}

/// Locks every account (or one), in the lock order; returns the customers locked.
pub fn lock_all(c: &mut SpiClient<'_>, only: Option<&str>) -> Vec<String> {
    c.update(
        "SELECT customer FROM credit.account WHERE $1::text IS NULL OR customer = $1 ORDER BY customer FOR NO KEY UPDATE",
        None,
        &[only.into()],
    )
    .or_raise()
    .map(|r| r.get::<String>(1).or_raise().required("customer"))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Counter moves. Each runs as pg_credit's own write; the caller holds the row's lock or takes it
// with the move.

/// A posting moved the customer's receivables: open_ar and unapplied credit change, exposure with
/// them, and the group head's member_exposure after it (the lock order); the due date of the
/// oldest open invoice, which the overdue rule reads, is kept.
pub fn move_receivables(c: &mut SpiClient<'_>, customer: &str, open_ar: Decimal, unapplied: Decimal) {
    if open_ar.is_zero() && unapplied.is_zero() {
        return;
    }
    reservations::touched(customer);
    store::writing(|| {
        let parent: Option<String> = c
            .update(
                &format!(
                    "UPDATE credit.account SET open_ar = open_ar + $2, unapplied_credit = unapplied_credit + $3, \
                     exposure = exposure + $2 - $3, oldest_open_due = {OLDEST_OPEN_DUE} \
                     WHERE customer = $1 RETURNING parent"
                ),
                None,
                &[customer.into(), numeric(open_ar).into(), numeric(unapplied).into()],
            )
            .or_raise()
            .first()
            .get_one()
            .or_raise();
        if let Some(head) = parent {
            move_member_exposure(c, &head, &numeric(open_ar - unapplied));
        }
    })
}

/// A member's exposure joined or left its group head's.
pub fn move_member_exposure(c: &mut SpiClient<'_>, head: &str, delta: &AnyNumeric) {
    if *delta == AnyNumeric::from(0) {
        return;
    }
    reservations::touched(head);
    store::writing(|| {
        c.update(
            "UPDATE credit.account SET member_exposure = member_exposure + $2 WHERE customer = $1",
            None,
            &[head.into(), delta.clone().into()],
        )
        .or_raise();
    })
}

/// An invoice entered or left a dispute: the overdue rule's date is read again.
pub fn refresh_oldest_due(c: &mut SpiClient<'_>, customer: &str) {
    store::writing(|| {
        c.update(
            &format!("UPDATE credit.account SET oldest_open_due = {OLDEST_OPEN_DUE} WHERE customer = $1"),
            None,
            &[customer.into()],
        )
        .or_raise();
    })
}

/// Sets the maintained columns of one account (with its group head) or of all to a full
/// recomputation from the source rows (`credit._recomputed()`, the rule `credit.verify()` checks);
/// returns the number of accounts that changed. One account is recounted from its own rows (and
/// its group's), not from the whole ledger.
pub fn rebuild(customer: Option<&str>) -> i64 {
    // 0.3.0's SQL recounts given customers; the library also serves older SQL until
    // ALTER EXTENSION UPDATE (UPDATING.md), which recounts every account.
    if crate::pg::citus::distributed() {
        return rebuild_distributed(customer);
    }
    let by_customer = customer.is_some()
        && Spi::get_one::<bool>("SELECT pg_catalog.to_regprocedure('credit._recomputed(text[])') IS NOT NULL")
            .or_raise()
            .unwrap_or(false);
    // The recount writes the truth: fast reservations in flight wait (or finish) first, and what
    // shared memory holds committed is discarded with the recount's commit.
    if let Some(one) = customer {
        reservations::drain_customer(one);
    } else {
        reservations::drain_database();
        reservations::claim_all_for_recount();
    }
    store::writing(|| {
        Spi::connect_mut(|c| {
            let locked = lock_all(c, customer);
            for l in &locked {
                reservations::touched(l);
            }
            if let (Some(cust), true) = (customer, locked.is_empty()) {
                error::unknown_customer(cust)
            }
            c.update(
                "UPDATE credit.account a SET open_ar = x.open_ar, unapplied_credit = x.unapplied_credit, \
                 open_orders = x.open_orders, exposure = x.exposure, member_exposure = x.member_exposure, \
                 oldest_open_due = x.oldest_open_due \
                 FROM RECOMPUTED x \
                 WHERE x.customer = a.customer \
                 AND ($1::text IS NULL OR a.customer = $1 OR a.customer = (SELECT m.parent FROM credit.account m WHERE m.customer = $1)) \
                 AND (a.open_ar, a.unapplied_credit, a.open_orders, a.exposure, a.member_exposure, a.oldest_open_due) IS DISTINCT FROM \
                     (x.open_ar, x.unapplied_credit, x.open_orders, x.exposure, x.member_exposure, x.oldest_open_due) \
                 RETURNING 1"
                    .replace(
                        "RECOMPUTED",
                        if by_customer {
                            "credit._recomputed(ARRAY[$1::text] || ARRAY(SELECT m.parent FROM credit.account m \
                             WHERE m.customer = $1 AND m.parent IS NOT NULL))"
                        } else {
                            "credit._recomputed()"
                        },
                    )
                    .as_str(),
                None,
                &[customer.into()],
            )
            .or_raise()
            .len() as i64
        })
    })
}

/// [`rebuild`] on Citus (docs/citus.md): Citus locks rows only in statements that name one
/// customer, and updates a distributed table from no function. So each account is repaired by
/// itself ([`repair_on_its_node`]); all of them, the drifted ones that `credit.verify()` finds.
/// No groups and no fast path run on Citus, and its SQL is always 0.3.0's (`credit.distribute`).
fn rebuild_distributed(customer: Option<&str>) -> i64 {
    store::writing(|| {
        Spi::connect_mut(|c| {
            let customers: Vec<String> = match customer {
                Some(one) => vec![one.to_string()],
                None => c
                    .select("SELECT customer FROM credit.verify() ORDER BY customer", None, &[])
                    .or_raise()
                    .filter_map(|r| r.get::<String>(1).or_raise())
                    .collect(),
            };
            let mut written = 0;
            for cust in &customers {
                match repair_on_its_node(c, cust) {
                    Some(changed) => written += changed as i64,
                    None if customer.is_some() => error::unknown_customer(cust),
                    None => {} // deleted since verify() listed it
                }
            }
            written
        })
    })
}

/// One account on Citus: its row locked on its node, then (orders in flight for it have ended,
/// later ones wait) recounted from its own documents and orders, each read routed to its node,
/// and written if it drifted. None: no such account.
fn repair_on_its_node(c: &mut SpiClient<'_>, customer: &str) -> Option<bool> {
    let locked = c
        .update("SELECT 1 FROM credit.account WHERE customer = $1 FOR NO KEY UPDATE", None, &[customer.into()])
        .or_raise();
    if locked.is_empty() {
        return None;
    }
    let t = c
        .select(
            "SELECT x.open_ar, x.unapplied_credit, x.open_orders, x.exposure, x.member_exposure, x.oldest_open_due \
               FROM credit._recomputed(ARRAY[$1::text]) x",
            Some(1),
            &[customer.into()],
        )
        .or_raise();
    if t.is_empty() {
        return Some(false);
    }
    let r = t.first();
    let row: [pgrx::datum::DatumWithOid<'static>; 7] = [
        customer.into(),
        r.get::<AnyNumeric>(1).or_raise().into(),
        r.get::<AnyNumeric>(2).or_raise().into(),
        r.get::<AnyNumeric>(3).or_raise().into(),
        r.get::<AnyNumeric>(4).or_raise().into(),
        r.get::<AnyNumeric>(5).or_raise().into(),
        r.get::<pgrx::datum::Date>(6).or_raise().into(),
    ];
    let written = c
        .update(
            "UPDATE credit.account SET open_ar = $2, unapplied_credit = $3, open_orders = $4, exposure = $5, \
             member_exposure = $6, oldest_open_due = $7 WHERE customer = $1 \
             AND (open_ar, unapplied_credit, open_orders, exposure, member_exposure, oldest_open_due) \
                 IS DISTINCT FROM ($2, $3, $4, $5, $6, $7) RETURNING 1",
            None,
            &row,
        )
        .or_raise();
    Some(!written.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Open orders: the guard's moves, prepared once per backend.
//
// Why one conditional UPDATE: the row lock plus PostgreSQL's re-check of the WHERE clause against
// the latest row version (EvalPlanQual) make check-and-reserve atomic under READ COMMITTED; under
// REPEATABLE READ and SERIALIZABLE a concurrent change of the same account raises 40001 instead.

/// The guard's statements on credit.account.
pub struct OrderMoves {
    reserve: OwnedPreparedStatement,
    shift: OwnedPreparedStatement,
    group_reserve: OwnedPreparedStatement,
    group_shift: OwnedPreparedStatement,
    lookup: OwnedPreparedStatement,
}

/// What a reservation that fitted reports.
pub struct Reserved {
    /// The customer's group head (None for a head itself, or a customer in no group).
    pub parent: Option<String>,
    /// The reservation crossed the customer's warning line.
    pub crossed_warning: bool,
}

thread_local! {
    static ORDER_MOVES: RefCell<HashMap<Option<String>, Rc<OrderMoves>>> = RefCell::new(HashMap::new());
    /// The table [`on_table`] set (None: credit.account).
    static TABLE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Whether credit.account was created by the current transaction (CREATE EXTENSION in it).
pub fn account_created_here(c: &SpiClient<'_>) -> bool {
    let xmin: Option<String> = c
        .select(
            "SELECT c.xmin::pg_catalog.text FROM pg_catalog.pg_class c WHERE c.oid = 'credit.account'::pg_catalog.regclass",
            Some(1),
            &[],
        )
        .or_raise()
        .first()
        .get_one()
        .or_raise();
    let xid = xmin.and_then(|x| x.parse::<u32>().ok()).unwrap_or(0);
    // SAFETY: a plain check of the transaction state.
    xid != 0 && unsafe { pg_sys::TransactionIdIsCurrentTransactionId(xid.into()) }
}

/// The prepared statements of the table accounts are read and written in (see [`on_table`]),
/// prepared on first use.
pub fn order_moves(c: &SpiClient<'_>) -> Rc<OrderMoves> {
    let table = TABLE.with(|t| t.borrow().clone());
    if let Some(p) = ORDER_MOVES.with(|p| p.borrow().get(&table).cloned()) {
        return p;
    }
    let account = table.as_deref().unwrap_or("credit.account");
    let text = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
    let numeric = PgOid::BuiltIn(PgBuiltInOids::NUMERICOID);
    let date = PgOid::BuiltIn(PgBuiltInOids::DATEOID);
    let prepare = |sql: &str, args: &[PgOid]| c.prepare_mut(sql, args).or_raise().keep();
    let moves = Rc::new(OrderMoves {
        reserve: prepare(
            &format!(
                "UPDATE {account} SET open_orders = open_orders OPERATOR(pg_catalog.+) $2, \
                     exposure = exposure OPERATOR(pg_catalog.+) $2 \
                 WHERE customer OPERATOR(pg_catalog.=) $1 AND {} RETURNING parent, {}",
                fits("$3"),
                crossed_warning("$3")
            ),
            &[text, numeric, date],
        ),
        shift: prepare(
            &format!(
                "UPDATE {account} SET open_orders = open_orders OPERATOR(pg_catalog.+) $2, \
                     exposure = exposure OPERATOR(pg_catalog.+) $2 \
                 WHERE customer OPERATOR(pg_catalog.=) $1 RETURNING parent"
            ),
            &[text, numeric],
        ),
        group_reserve: prepare(
            &format!(
                "UPDATE {account} SET member_exposure = member_exposure OPERATOR(pg_catalog.+) $2 \
                 WHERE customer OPERATOR(pg_catalog.=) $1 AND {} RETURNING NULL::pg_catalog.text, {}",
                fits("$3"),
                crossed_warning("$3")
            ),
            &[text, numeric, date],
        ),
        group_shift: prepare(
            &format!(
                "UPDATE {account} SET member_exposure = member_exposure OPERATOR(pg_catalog.+) $2 \
                 WHERE customer OPERATOR(pg_catalog.=) $1"
            ),
            &[text, numeric],
        ),
        lookup: prepare(
            &format!(
                "SELECT {} FROM {account} WHERE customer OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
                *DECISION_COLUMNS
            ),
            &[text, date],
        ),
    });
    ORDER_MOVES.with(|slot| slot.borrow_mut().insert(table, moves.clone()));
    moves
}

/// Whether the guard works on an account shard of a Citus node ([`on_table`]).
fn on_shard() -> bool {
    TABLE.with(|t| t.borrow().is_some())
}

/// Whether shared memory holds reservations a decision here must count, whatever this session's
/// pg_credit.fast_path: a session that turned it off takes the row path beside the others' fast
/// reservations, and counts them (and registers its own for them to count).
fn counters_here() -> bool {
    if on_shard() {
        reservations::counting_on_shard()
    } else {
        reservations::counting()
    }
}

/// Whether orders reserve in shared memory here: on one node, the fast path is on; on an account
/// shard of a Citus node, it is on in its per-node form (reservations only while their
/// transactions are in flight, written into the shard's rows at commit: docs/citus.md).
pub fn fast_path_here() -> bool {
    if on_shard() {
        reservations::ready_on_shard()
    } else {
        reservations::ready()
    }
}

/// Runs `f` with the guard's account statements on `table` instead of `credit.account`: on a
/// Citus node, the account shard colocated with the order shard whose trigger fires (a plain
/// table there, so PostgreSQL plans the statements once and Citus not at all). None: the table
/// itself.
pub fn on_table<R>(table: Option<(&str, Oid)>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<String>, Oid);
    impl Drop for Restore {
        fn drop(&mut self) {
            TABLE.with(|t| *t.borrow_mut() = self.0.take());
            fast_read::on_relation(self.1);
        }
    }
    let before = TABLE.with(|t| t.replace(table.map(|(name, _)| name.to_owned())));
    let _restore = Restore(before, fast_read::on_relation(table.map_or(Oid::INVALID, |(_, oid)| oid)));
    f()
}

impl OrderMoves {
    /// Checks and reserves `amount` on one row in one statement — against its own limit, or for a
    /// group head (`group`) against the whole group's. None: it did not fit by the row version the
    /// statement saw (or the customer has no account); the caller decides on the locked row.
    pub fn reserve(&self, c: &mut SpiClient<'_>, customer: &str, amount: &AnyNumeric, group: bool) -> Option<Reserved> {
        if counters_here() {
            return self.reserve_with_counters(c, customer, amount, group);
        }
        if !on_shard() {
            reservations::wait_for_recount(|| account_created_here(c));
        }
        if counters_here() {
            return self.reserve_with_counters(c, customer, amount, group);
        }
        let plan = if group { &self.group_reserve } else { &self.reserve };
        store::writing(|| {
            let t = c.update(plan, None, &[customer.into(), amount.clone().into(), args::today().into()]).or_raise();
            if t.len() != 1 {
                return None;
            }
            let row = t.first();
            Some(Reserved {
                parent: row.get::<String>(1).or_raise(),
                crossed_warning: row.get::<bool>(2).or_raise() == Some(true),
            })
        })
    }

    /// With the fast path on: a customer in no group whose row nobody is writing reserves in
    /// shared memory only; otherwise the row path locks the row, decides with the counters under
    /// the module's lock (so fast reservations and this one see each other), and writes the row.
    fn reserve_with_counters(
        &self,
        c: &mut SpiClient<'_>,
        customer: &str,
        amount: &AnyNumeric,
        group: bool,
    ) -> Option<Reserved> {
        let amt = decimal(amount);
        // A session with pg_credit.fast_path off takes the row path below, counting the others'
        // (the database's fast path runs: the caller checked).
        if !group && reservations::session_enabled() {
            match try_fast(customer, amt) {
                Fast::Fits(r) => return Some(Reserved { parent: None, crossed_warning: r.crossed_warning }),
                Fast::Refused | Fast::NoAccount => return None,
                Fast::RowPath => {}
            }
        }
        let t = c.update(&self.lookup, Some(1), &[customer.into(), args::today().into()]).or_raise();
        if t.is_empty() {
            return None;
        }
        let l = Loaded::from_row(&t.first().get_heap_tuple().or_raise().required("account row"));
        let crossed_warning = match reservations::reserve(customer, &l.account, amt, None, true, None) {
            Checked::Fits { crossed_warning, .. } => crossed_warning,
            Checked::Refused | Checked::Stale => return None,
            // No room to register: the row alone decides, and no fast reservation starts in this
            // database until this transaction ends.
            Checked::NoEntry => {
                if !decision::decide(Some(&l.account), None, amt).allowed() {
                    return None;
                }
                l.account.crosses_warning(amt)
            }
        };
        let parent = self.shift_row(c, customer, amount, group);
        Some(Reserved { parent, crossed_warning })
    }

    /// Moves open orders without checks (releases, overrides, compensation); returns the group
    /// head (a head's own move never has one).
    pub fn shift(&self, c: &mut SpiClient<'_>, customer: &str, delta: &AnyNumeric, group: bool) -> Option<String> {
        let d = decimal(delta);
        if !group && !d.is_zero() && fast_path_here() && fast_shift(customer, d) {
            return None;
        }
        self.shift_row(c, customer, delta, group)
    }

    /// The row path's move: the account row itself.
    fn shift_row(&self, c: &mut SpiClient<'_>, customer: &str, delta: &AnyNumeric, group: bool) -> Option<String> {
        reservations::touched(customer);
        store::writing(|| {
            if group {
                c.update(&self.group_shift, None, &[customer.into(), delta.clone().into()]).or_raise();
                return None;
            }
            let t = c.update(&self.shift, None, &[customer.into(), delta.clone().into()]).or_raise();
            if t.is_empty() {
                return None;
            }
            t.first().get::<String>(1).or_raise()
        })
    }

    /// The row's latest committed version with what shared memory adds, for a refusal's or a
    /// warning's numbers: with the fast path, read without a lock (a lock held to the end of the
    /// transaction would make the customer's next orders wait); otherwise locked.
    pub fn lookup_latest(&self, c: &mut SpiClient<'_>, customer: &str) -> Option<Loaded> {
        if fast_path_here() {
            let cached = reservations::cached_row(customer).map(|raw| fast_read::Row {
                account: raw.account(fast_read::today()),
                raw,
                parent: None,
            });
            match cached.map(|r| Read::Row(Box::new(r))).or_else(|| fast_read::read_settled(customer)) {
                Some(Read::NoAccount) => return None,
                Some(Read::Row(row)) if row.parent.is_none() => {
                    let mut l = Loaded::from_fast(*row);
                    l.add_reserved(customer);
                    return Some(l);
                }
                _ => {}
            }
        }
        self.lookup_locked(c, customer)
    }

    /// Locks and reads the row for a decision (see [`lock_for_decision`]).
    pub fn lookup_locked(&self, c: &mut SpiClient<'_>, customer: &str) -> Option<Loaded> {
        let t = c.update(&self.lookup, Some(1), &[customer.into(), args::today().into()]).or_raise();
        if t.is_empty() {
            return None;
        }
        let mut l = Loaded::from_row(&t.first().get_heap_tuple().or_raise().required("account row"));
        l.add_reserved(customer);
        Some(l)
    }
}

// ---------------------------------------------------------------------------------------------
// The fast path without SPI: what the guard's trigger tries first for a one-customer change.

/// What a fast reservation reports for its warning: the numbers after it.
pub struct FastReserved {
    pub crossed_warning: bool,
    pub exposure_after: Decimal,
    pub usable_limit: Decimal,
    pub warn_ratio: Option<Decimal>,
}

/// What the fast path made of a reservation.
pub enum Fast {
    Fits(FastReserved),
    Refused,
    NoAccount,
    /// It does not apply (a group member, a row that keeps being written, no room, a drain):
    /// take the row path.
    RowPath,
}

/// Reserves on the fast path, if the database has it on.
pub fn fast_reserve(customer: &str, amount: Decimal) -> Fast {
    if !fast_path_here() {
        return Fast::RowPath;
    }
    try_fast(customer, amount)
}

fn try_fast(customer: &str, amount: Decimal) -> Fast {
    let fast = try_fast_once(customer, amount);
    // On a shard no flusher evicts entries: one that registered nothing goes now.
    if on_shard() && !matches!(fast, Fast::Fits(_)) {
        reservations::forget_if_clean(customer);
    }
    fast
}

fn try_fast_once(customer: &str, amount: Decimal) -> Fast {
    // Most orders find the customer's row cached in shared memory and read nothing (not on a
    // Citus shard: `fast_read::copies_dropped_by_trigger`).
    if let Some((checked, account)) = reservations::reserve_cached(customer, amount, fast_read::today()) {
        if let Some(f) = outcome(checked, &account, amount) {
            return f;
        }
    }
    for _ in 0..8 {
        let Some(generation) = reservations::generation(customer) else { return Fast::RowPath };
        match fast_read::read_settled(customer) {
            Some(Read::NoAccount) => return Fast::NoAccount,
            Some(Read::Row(row)) if row.parent.is_none() => {
                let checked =
                    reservations::reserve(customer, &row.account, amount, Some(generation), false, Some(&row.raw));
                match outcome(checked, &row.account, amount) {
                    Some(f) => return f,
                    None => continue,
                }
            }
            _ => return Fast::RowPath,
        }
    }
    Fast::RowPath
}

/// What a fast reservation's check means for the order (None: the row moved; read it again).
fn outcome(checked: Checked, account: &Account, amount: Decimal) -> Option<Fast> {
    match checked {
        Checked::Fits { crossed_warning, exposure } => Some(Fast::Fits(FastReserved {
            crossed_warning,
            exposure_after: exposure + amount,
            usable_limit: account.usable_limit(),
            warn_ratio: account.warn_ratio,
        })),
        Checked::Refused => Some(Fast::Refused),
        Checked::Stale => None,
        Checked::NoEntry => Some(Fast::RowPath),
    }
}

/// Moves open orders without a check on the fast path (a release, or an override's increase);
/// false: take the row path. The caller checked that the fast path is on.
pub fn fast_shift(customer: &str, delta: Decimal) -> bool {
    // A cached row is parentless (only those are kept) and nobody is writing it.
    let parentless = reservations::cached_row(customer).is_some()
        || matches!(fast_read::read_settled(customer), Some(Read::Row(row)) if row.parent.is_none());
    if !parentless {
        false
    } else if delta < Decimal::ZERO {
        reservations::release(customer, -delta)
    } else {
        reservations::add_unchecked(customer, delta)
    }
}

/// The decision columns and (last) the fit rule over given values instead of a stored row: the
/// property test holds the guard's SQL rule and the core's decision to each other with it.
#[cfg(any(test, feature = "pg_test"))]
pub fn fits_over_values(columns: &str) -> String {
    format!("SELECT {}, {} FROM (SELECT {columns}) AS a", decision_columns("CURRENT_DATE"), fits("CURRENT_DATE"))
}

/// Customers that are not in credit.account, of those given.
pub fn without_account(c: &SpiClient<'_>, customers: Vec<String>) -> i64 {
    c.select(
        // No correlated subquery: Citus joins its tables with no set-returning function.
        "SELECT pg_catalog.cardinality($1::pg_catalog.text[]) OPERATOR(pg_catalog.-) pg_catalog.count(*) \
           FROM credit.account a WHERE a.customer OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])",
        Some(1),
        &[customers.into()],
    )
    .or_raise()
    .first()
    .get_one::<i64>()
    .or_raise()
    .unwrap_or(0)
}

/// A group head must be an account that heads (not joins) a group, and a head cannot join one.
pub fn check_group_head(c: &SpiClient<'_>, customer: &str, parent: &str) {
    if parent == customer {
        error::raise(
            Code::ERRCODE_CHECK_VIOLATION,
            format!("customer \"{customer}\" cannot be its own group head"),
            None,
            None,
        )
    }
    match parent_of(c, parent) {
        None => error::raise(
            Code::ERRCODE_FOREIGN_KEY_VIOLATION,
            format!("group head \"{parent}\" of customer \"{customer}\" has no credit account"),
            None,
            Some("Create the group's account first; its credit_limit is the limit the members share."),
        ),
        Some(Some(_)) => error::raise(
            Code::ERRCODE_CHECK_VIOLATION,
            format!("\"{parent}\" is itself a member of a group and cannot head one"),
            Some("Credit groups are one level deep.".into()),
            None,
        ),
        Some(None) => {}
    }
    if has_members(c, customer) {
        error::raise(
            Code::ERRCODE_CHECK_VIOLATION,
            format!("customer \"{customer}\" heads a credit group and cannot join another"),
            Some("Credit groups are one level deep.".into()),
            None,
        )
    }
}
