//! Whole tables' open orders: what a guarded relation holds per customer, moved into or out of
//! exposure at once — by credit.guard()/unguard(), TRUNCATE, ATTACH, DETACH, DROP and rewrites.
//! Tables are read with the extension's rights by a query over built-in casts only
//! (credit._open_orders_query, sql/guard.sql).
use crate::guard::reserve::{self, Applied, Deltas};
use crate::pg::error::{self, Code, OrRaise};
use crate::privileges;
use crate::store::{self, account};
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// The query selecting (customer, amount) of open orders: of one relation (its own rows: FROM
/// ONLY), or of every guarded relation.
fn open_orders_query(c: &pgrx::spi::SpiClient<'_>, relid: Option<Oid>) -> String {
    c.select("SELECT credit._open_orders_query($1)", Some(1), &[relid.into()])
        .or_raise()
        .first()
        .get_one()
        .or_raise()
        .unwrap_or_default()
}

/// One guarded relation's open orders per customer.
pub fn open_orders_by_customer(relid: Oid) -> Deltas {
    Spi::connect(|c| {
        let q = open_orders_query(c, Some(relid));
        c.select(&format!("SELECT customer, pg_catalog.sum(amount) FROM ({q}) o GROUP BY customer"), None, &[])
            .or_raise()
            .filter_map(|r| Some((r.get::<String>(1).or_raise()?, r.get::<AnyNumeric>(2).or_raise()?)))
            .collect()
    })
}

/// Open orders of one customer across every guarded table (a new or renamed account starts from
/// these).
pub fn open_orders_of(customer: &str) -> AnyNumeric {
    Spi::connect(|c| {
        let q = open_orders_query(c, None);
        c.select(
            &format!(
                "SELECT coalesce(pg_catalog.sum(amount), 0) FROM ({q}) o WHERE customer OPERATOR(pg_catalog.=) $1"
            ),
            Some(1),
            &[customer.into()],
        )
        .or_raise()
        .first()
        .get_one::<AnyNumeric>()
        .or_raise()
        .unwrap_or_default()
    })
}

/// A relation's name as `regclass` prints it (schema-qualified when not on the search_path).
pub fn relation_name(relid: Oid) -> String {
    Spi::get_one_with_args::<String>("SELECT $1::pg_catalog.regclass::pg_catalog.text", &[relid.into()])
        .or_raise()
        .unwrap_or_else(|| format!("relation {}", u32::from(relid)))
}

/// Moves open orders of a table into or out of the customers' exposure, in the lock order;
/// `checked`: every customer's increase must fit, as an order would, else 23514 naming the table.
/// Returns how many customers have no credit account (not counted when unchecked).
pub fn move_open_orders(relid: Oid, deltas: &Deltas, checked: bool) -> i64 {
    if deltas.is_empty() {
        return 0;
    }
    store::writing(|| {
        Spi::connect_mut(|c| {
            let mut applied = Applied::default();
            let mut warnings = Vec::new();
            let result = if checked {
                reserve::apply(c, deltas, None, &mut applied, false, &mut warnings)
            } else {
                reserve::forced(|| reserve::apply(c, deltas, None, &mut applied, false, &mut warnings))
            };
            if let Err(mut r) = result {
                r.change = "open orders of the table";
                error::raise(
                    Code::ERRCODE_CHECK_VIOLATION,
                    format!("the open orders of table {} do not fit: {}", relation_name(relid), r.message()),
                    Some(r.detail()),
                    Some("Rows that join a guarded table (a partition attached, a table made to inherit, a rewrite that changes amounts) are checked like orders."),
                )
            }
            account::without_account(c, deltas.keys().cloned().collect())
        })
    })
}

/// After a guarded table was rewritten: what changed per customer moves, increases checked.
pub fn reserve_changes(relid: Oid, before: &Deltas, after: &Deltas) {
    let mut deltas = Deltas::new();
    for (customer, amount) in after {
        reserve::add_to(&mut deltas, customer, amount);
    }
    for (customer, amount) in before {
        reserve::add_to(&mut deltas, customer, &-amount.clone());
    }
    let zero = reserve::zero();
    deltas.retain(|_, d| *d != zero);
    move_open_orders(relid, &deltas, true);
}

/// A relation's open orders, to move in (sign 1) or out (-1).
fn signed_open_orders(rel: Oid, sign: i32) -> Deltas {
    if sign != 1 && sign != -1 {
        error::invalid("sign must be 1 or -1")
    }
    open_orders_by_customer(rel).into_iter().map(|(c, s)| (c, if sign < 0 { -s } else { s })).collect()
}

/// Internal: moves one guarded relation's open orders (FROM ONLY) into exposure (sign 1) or out
/// of it (-1); `checked`: an amount moving in must fit, as an order would. Returns how many of
/// its customers have no credit account.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _count_open_orders(rel: pg_sys::Oid, sign: i32, checked: bool) -> i64 {
    privileges::require_internal("credit._count_open_orders");
    let deltas = signed_open_orders(rel, sign);
    move_open_orders(rel, &deltas, checked && sign > 0)
}

/// 0.2.0's helper, kept for a database whose SQL is older than this library (until ALTER
/// EXTENSION pg_credit UPDATE); 0.3.0's SQL has no such function.
#[pg_extern(sql = false)]
fn _shift_open_orders(rel: pg_sys::Oid, sign: i32) -> i64 {
    let deltas = signed_open_orders(rel, sign);
    move_open_orders(rel, &deltas, false)
}

/// Internal: recounts every account after a guarded table went with a command the DDL watch
/// could not see coming (its rows are gone, so what is left is counted).
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _recount_exposure() -> i64 {
    privileges::require_internal("credit._recount_exposure");
    account::rebuild(None)
}
