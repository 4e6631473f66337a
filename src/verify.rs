//! Recomputing exposure from the source rows: the ledger and every guarded table. `credit.verify()`
//! (SQL) compares; these functions repair and shift counters when a table is guarded, unguarded,
//! truncated or dropped. Account rows are always locked in customer order, the guard's lock order.
use crate::error::{self, OrRaise};
use crate::{input, internal};
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

fn open_orders_query(relid: Option<Oid>) -> String {
    Spi::connect_mut(|c| {
        c.update("SELECT credit._open_orders_query($1)", Some(1), &[relid.into()])
            .or_raise()
            .first()
            .get_one::<String>()
            .or_raise()
            .expect("query text")
    })
}

/// Adds (sign = 1) or removes (sign = -1) one guarded table's open orders to or from the accounts.
/// Returns how many customers with open orders in it have no credit account (those are not counted).
pub fn shift_open_orders(relid: Oid, sign: i32) -> i64 {
    let q = open_orders_query(Some(relid));
    internal::scope(|| {
        Spi::connect_mut(|c| {
            let sums: Vec<(String, AnyNumeric)> = c
                .update(
                    &format!("SELECT customer, sum(amount) FROM ({q}) o GROUP BY customer ORDER BY customer"),
                    None,
                    &[],
                )
                .or_raise()
                .map(|r| (r.get::<String>(1).or_raise().unwrap_or_default(), r.get::<AnyNumeric>(2).or_raise().unwrap_or_default()))
                .collect();
            let mut missing = 0;
            let mut heads: std::collections::BTreeMap<String, AnyNumeric> = std::collections::BTreeMap::new();
            for (customer, sum) in sums {
                let delta = if sign < 0 { -sum } else { sum };
                let t = c
                    .update(
                        "UPDATE credit.account SET open_orders = open_orders + $2, exposure = exposure + $2 \
                         WHERE customer = $1 RETURNING parent",
                        None,
                        &[customer.as_str().into(), delta.clone().into()],
                    )
                    .or_raise();
                if t.is_empty() {
                    missing += 1;
                } else if let Some(h) = t.first().get_one::<String>().or_raise() {
                    let e = heads.entry(h).or_insert_with(|| AnyNumeric::from(0));
                    *e = e.clone() + delta;
                }
            }
            // Heads after members: the guard's lock order.
            for (head, delta) in heads {
                c.update(
                    "UPDATE credit.account SET member_exposure = member_exposure + $2 WHERE customer = $1",
                    None,
                    &[head.as_str().into(), delta.into()],
                )
                .or_raise();
            }
            missing
        })
    })
}

/// Internal: used by credit.guard() and credit.unguard().
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn _shift_open_orders(relid: Oid, sign: i32) -> i64 {
    if sign != 1 && sign != -1 {
        error::invalid("sign must be 1 or -1")
    }
    shift_open_orders(relid, sign)
}

/// Open orders of one customer across every guarded table (a new account starts from these).
pub fn open_orders_of(customer: &str) -> AnyNumeric {
    let q = open_orders_query(None);
    Spi::connect_mut(|c| {
        c.update(
            &format!("SELECT coalesce(sum(amount), 0) FROM ({q}) o WHERE customer = $1"),
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

/// Sets the maintained columns of one account (or all) to a full recomputation from the source rows;
/// returns the number of accounts that changed. For repairs after direct writes by a superuser.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rebuild_exposure(customer: default!(Option<&str>, "NULL")) -> i64 {
    crate::roles::require("admin", "rebuilding exposure");
    if let Some(c) = customer {
        input::text(Some(c), "customer");
    }
    internal::scope(|| {
        Spi::connect_mut(|c| {
            let locked = c
                .update(
                    "SELECT customer FROM credit.account WHERE $1::text IS NULL OR customer = $1 \
                     ORDER BY customer FOR NO KEY UPDATE",
                    None,
                    &[customer.into()],
                )
                .or_raise()
                .len();
            if let Some(cust) = customer {
                if locked == 0 {
                    error::unknown_customer(cust)
                }
            }
            c.update(
                "UPDATE credit.account a SET open_ar = x.open_ar, unapplied_credit = x.unapplied_credit, \
                 open_orders = x.open_orders, exposure = x.exposure, member_exposure = x.member_exposure, \
                 oldest_open_due = x.oldest_open_due \
                 FROM credit._recomputed() x \
                 WHERE x.customer = a.customer \
                 AND ($1::text IS NULL OR a.customer = $1 OR a.customer = (SELECT m.parent FROM credit.account m WHERE m.customer = $1)) \
                 AND (a.open_ar, a.unapplied_credit, a.open_orders, a.exposure, a.member_exposure, a.oldest_open_due) IS DISTINCT FROM \
                     (x.open_ar, x.unapplied_credit, x.open_orders, x.exposure, x.member_exposure, x.oldest_open_due) \
                 RETURNING 1",
                None,
                &[customer.into()],
            )
            .or_raise()
            .len() as i64
        })
    })
}

/// GetOuterUserId(): the user a SECURITY DEFINER function was called by (SET ROLE counts).
#[pg_extern(stable, parallel_safe)]
fn _calling_user() -> Oid {
    crate::roles::caller()
}

