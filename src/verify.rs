//! Recomputing exposure from the source rows: the ledger and every guarded table. `credit.verify()`
//! (SQL, sql/guard.sql) compares; these functions repair. Account rows are always locked in
//! customer order, the guard's lock order.
use crate::error::{self, OrRaise};
use crate::{input, internal, roles};
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// Open orders of one customer across every guarded table (a new account starts from these).
pub fn open_orders_of(customer: &str) -> AnyNumeric {
    Spi::connect_mut(|c| {
        let q: String = c
            .update("SELECT credit._open_orders_query()", Some(1), &[])
            .or_raise()
            .first()
            .get_one()
            .or_raise()
            .unwrap_or_default();
        c.update(
            &format!("SELECT coalesce(pg_catalog.sum(amount), 0) FROM ({q}) o WHERE customer OPERATOR(pg_catalog.=) $1"),
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

/// Sets the maintained columns of one account (or all) to a full recomputation from the source
/// rows; returns the number of accounts that changed.
fn rebuild(customer: Option<&str>) -> i64 {
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

/// Resets maintained columns to a full recomputation (one customer or all). For repairs after
/// direct writes by a superuser; credit.verify() shows whether any are needed.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rebuild_exposure(customer: default!(Option<&str>, "NULL")) -> i64 {
    roles::require("admin", "rebuilding exposure");
    if let Some(c) = customer {
        input::text(Some(c), "customer");
    }
    rebuild(customer)
}

/// Internal: recounts every account after a guarded table went with a command the DDL watch
/// could not see coming (its rows are gone, so what is left is counted).
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _recount_exposure() -> i64 {
    roles::require_internal("credit._recount_exposure");
    rebuild(None)
}
