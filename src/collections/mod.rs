//! Collections: walking the dunning ladder ([`ladder`]), disputes ([`disputes`]), collection holds
//! that lift by themselves, and what follows a settlement. Tables, views and the SQL-language
//! functions (credit.log_contact, credit.run_daily) are in sql/collections.sql.
pub mod disputes;
pub mod interest;
pub mod ladder;
mod tables;

use crate::holds;
use crate::pg::error::{OrRaise, Required};
use crate::privileges;
use crate::store::{self, events};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
pub(crate) use tables::Tables;

/// A row of a run's output: change, customer, doc_no, level, task id, detail.
pub(crate) type Change = (String, String, Option<String>, Option<i32>, Option<i64>, Option<String>);

/// What follows money received (a payment, a credit note, a write-off) or an invoice taken into
/// dispute: open tasks of the customer's invoices that are now settled are resolved (they leave
/// the worklist at once), collection holds lift, and held orders that fit now are released.
pub fn after_settlement(customer: &str) {
    if crate::pg::citus::distributed() {
        // On the customer's node, over its shards (src/collections/tables.rs).
        ladder::settled_on_node(customer);
    } else {
        store::writing(|| Spi::connect_mut(|c| resolve_settled_tasks(c, &Tables::logical(), Some(customer))));
        lift_holds(Some(customer));
    }
    holds::release_fitting(Some(customer));
}

/// Whether the database has payment arrangements (not yet on a database still on an older
/// version's SQL).
pub(crate) fn arrangements_present(c: &SpiClient<'_>) -> bool {
    store::has(c, "credit.arrangement")
}

/// The condition "invoice i is not under a payment arrangement active on $1", for the statements
/// that leave such invoices to the plan (empty where arrangements do not exist yet).
pub(crate) fn arranged_condition(c: &SpiClient<'_>) -> &'static str {
    if arrangements_present(c) {
        include_str!("ladder_step_arranged.sql")
    } else {
        ""
    }
}

/// Open tasks of settled invoices (of one customer, or all) are resolved.
pub(crate) fn resolve_settled_tasks(c: &mut SpiClient<'_>, t: &Tables, customer: Option<&str>) -> Vec<Change> {
    c.update(
        &t.sql(
            "UPDATE credit.collection_task t SET status = 'resolved', closed_at = clock_timestamp() \
           FROM credit.invoice i \
          WHERE i.id = t.invoice_id AND t.status = 'open' AND i.open_amount = 0 \
            AND ($1::text IS NULL OR t.customer = $1) \
         RETURNING 'task_resolved', t.customer, t.doc_no, t.level, t.id, 'invoice settled'",
        ),
        None,
        &[customer.into()],
    )
    .or_raise()
    .map(|r| ladder::change_row(&r))
    .collect()
}

/// Puts collection-held accounts back to active once no invoice that reached a hold level is still
/// open and undisputed (for one customer, or all). Holds set by people are not touched: a person's
/// status change clears collection_hold_since (credit._account_history).
pub fn lift_holds(customer: Option<&str>) -> Vec<String> {
    store::writing(|| Spi::connect_mut(|c| lift_holds_in(c, &Tables::logical(), customer)))
}

/// [`lift_holds`] over the given tables.
pub(crate) fn lift_holds_in(c: &mut SpiClient<'_>, t: &Tables, customer: Option<&str>) -> Vec<String> {
    // (Invoices under a payment arrangement active today do not keep the hold.)
    let sql = "SELECT a.customer FROM credit.account a \
                       WHERE a.collection_hold_since IS NOT NULL AND a.status = 'hold' \
                         AND ($2::text IS NULL OR a.customer = $2) \
                         AND NOT EXISTS (SELECT 1 FROM credit.collection_task t JOIN credit.invoice i ON i.id = t.invoice_id \
                                          WHERE t.customer = a.customer AND t.action = 'hold' \
                                            AND i.open_amount > 0 AND NOT i.disputed /*arranged*/) \
                       ORDER BY a.customer"
                .replace("/*arranged*/", arranged_condition(c));
    let sql = t.sql(&sql);
    let lifted: Vec<String> = c
        .update(&sql, None, &[crate::pg::args::today().into(), customer.into()])
        .or_raise()
        .map(|r| r.get::<String>(1).or_raise().required("customer"))
        .collect();
    events::with_reason(
        c,
        "collections: the overdue invoices that caused the hold are paid, credited or disputed",
        |c| {
            for cust in &lifted {
                c.update(
                    &t.sql(
                        "UPDATE credit.account SET status = 'active', collection_hold_since = NULL \
                         WHERE customer = $1 AND status = 'hold' AND collection_hold_since IS NOT NULL",
                    ),
                    None,
                    &[cust.as_str().into()],
                )
                .or_raise();
            }
        },
    );
    lifted
}

/// Ends temporary limits whose last day is before as_of (they already lapse by themselves in every
/// check; this clears them from the account and records it).
fn expire_temporary_limits(as_of: Date) -> i64 {
    store::writing(|| {
        Spi::connect_mut(|c| {
            events::with_reason(c, "temporary limit expired", |c| {
                c.update(
                    "UPDATE credit.account SET temporary_limit = NULL, temporary_limit_until = NULL \
                     WHERE temporary_limit_until < $1 RETURNING 1",
                    None,
                    &[as_of.into()],
                )
                .or_raise()
                .len() as i64
            })
        })
    })
}

/// Internal: the daily job's first step (credit.run_daily).
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _expire_temporary_limits(as_of: Date) -> i64 {
    privileges::require_internal("credit._expire_temporary_limits");
    expire_temporary_limits(as_of)
}
