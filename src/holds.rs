//! Held orders (guard mode `hold`): releasing them when they fit, forcing them by a recorded
//! override, cancelling them. A release decides under the customer's row lock (and its group
//! head's), the same locks a new order takes, so a release racing a new order cannot both fit into
//! the same credit.
use crate::guard::{hold, owner, reserve};
use crate::pg::args;
use crate::pg::error::{self, Code, OrRaise, Required};
use crate::pg::numeric::decimal;
use crate::pg::settings;
use crate::privileges;
use crate::store::events::{self, Event};
use crate::store::{self, account};
use credit_core::decision::{self, Reason};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;

struct Held {
    table: pgrx::pg_sys::Oid,
    customer: String,
    amount: AnyNumeric,
    update_sql: String,
    row_key: String,
}

/// Locks a hold; 55000 when it is decided already.
fn lock_hold(c: &mut SpiClient<'_>, hold_id: i64) -> Held {
    lock_hold_if(c, hold_id, true).required("held order")
}

/// Locks a hold; when not `strict`, a hold another transaction has just decided, or whose table is
/// no longer guarded in hold mode, is skipped.
fn lock_hold_if(c: &mut SpiClient<'_>, hold_id: i64, strict: bool) -> Option<Held> {
    let t = c.update(include_str!("holds/lock_hold.sql"), Some(1), &[hold_id.into()]).or_raise();
    if t.is_empty() {
        error::raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("hold {hold_id} does not exist"),
            None,
            Some("credit.hold_queue lists open holds."),
        )
    }
    let row = t.first();
    let status: String = row.get(3).or_raise().required("hold status");
    if status != "held" && !strict {
        return None;
    }
    if status != "held" {
        error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("hold {hold_id} is already {status}"),
            None,
            None,
        )
    }
    let Some(update_sql) = row.get::<String>(4).or_raise() else {
        // Releasing automatically passes over such a hold (a person cancels it); asked for by
        // name, it is an error.
        if !strict {
            return None;
        }
        error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("the table of hold {hold_id} is no longer guarded in hold mode"),
            None,
            Some("Cancel the hold with credit.cancel_hold()."),
        )
    };
    Some(Held {
        table: row.get(6).or_raise().required("hold table_name"),
        customer: row.get(1).or_raise().required("hold customer"),
        amount: row.get(2).or_raise().required("hold amount"),
        update_sql,
        row_key: row.get(5).or_raise().required("hold row_key"),
    })
}

/// The decision for the held amount, taken under the customer's and its group head's row locks
/// (the locks a new order takes, in the same order).
fn decide_locked(c: &mut SpiClient<'_>, customer: &str, amount: &AnyNumeric) -> Vec<Reason> {
    let own = account::lock_for_decision(c, customer);
    let head = own.as_ref().and_then(|o| o.parent.clone()).and_then(|h| account::lock_for_decision(c, &h));
    decision::decide(own.as_ref().map(|o| &o.account), head.as_ref().map(|h| &h.account), decimal(amount)).reasons
}

/// Puts the held row back to its open status (the guard reserves its amount); marks the hold.
/// Returns false when the row no longer exists (the hold is then withdrawn).
fn reopen(c: &mut SpiClient<'_>, hold_id: i64, h: &Held, forced: bool, comment: Option<&str>) -> bool {
    let mut n = 0;
    // With the table owner's rights: the owner's own triggers on the table run as the owner.
    let reheld = hold::reheld_during(|| {
        let mut update = || {
            owner::as_table_owner(h.table, || {
                c.update(&h.update_sql, None, &[h.row_key.as_str().into()]).or_raise().len()
            })
        };
        n = if forced { reserve::forced(update) } else { update() };
    });
    if reheld {
        // The application changed the held order (its amount, its customer) since it was held.
        error::raise(
            Code::ERRCODE_CHECK_VIOLATION,
            format!("held order {hold_id} of customer \"{}\" changed since it was held and does not fit", h.customer),
            None,
            Some("Check the order in its table; release it again when it fits, or cancel the hold."),
        )
    }
    let status = if n == 0 { "withdrawn" } else { "released" };
    let comment = if n == 0 { Some("the held order no longer exists") } else { comment };
    decide(c, hold_id, status, comment, forced);
    events::append(
        c,
        Event {
            kind: if n == 0 {
                "hold_withdrawn"
            } else if forced {
                "hold_overridden"
            } else {
                "hold_released"
            },
            customer: &h.customer,
            reason: comment,
            after: vec![("hold_id", hold_id.into()), ("amount", h.amount.clone().into()), ("forced", forced.into())],
            json: vec![],
        },
    );
    n > 0
}

/// Marks a hold decided, by the caller.
fn decide(c: &mut SpiClient<'_>, hold_id: i64, status: &str, comment: Option<&str>, forced: bool) {
    let who = privileges::name_of(privileges::caller());
    c.update(
        "UPDATE credit.order_hold SET status = $2, decided_at = clock_timestamp(), decided_by = $3, comment = $4, forced = $5 \
         WHERE id = $1",
        None,
        &[hold_id.into(), status.into(), who.as_str().into(), comment.into(), forced.into()],
    )
    .or_raise();
}

/// The role whose members may release a held order that still does not fit: the customer's policy
/// releasing_role, else the admin role.
fn releasing_role(c: &mut SpiClient<'_>, customer: &str) -> Option<String> {
    let t = c
        .update("SELECT releasing_role::text FROM credit.effective_policy($1)", Some(1), &[customer.into()])
        .or_raise();
    t.first().get_one::<String>().or_raise().or_else(settings::admin_role)
}

/// Re-checks a held order now: if it fits, it becomes open with its amount reserved. If it still
/// does not fit, a member of the releasing role releases it anyway (a recorded override); anyone
/// else gets 23514. Returns 'released', 'overridden' or 'withdrawn' (the row is gone).
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn release_hold(hold_id: Option<i64>, comment: default!(Option<&str>, "NULL")) -> String {
    privileges::require("clerk", "releasing a held order");
    let Some(hold_id) = hold_id else { error::null_arg("hold_id") };
    store::writing(|| {
        Spi::connect_mut(|c| {
            let h = lock_hold(c, hold_id);
            let reasons = decide_locked(c, &h.customer, &h.amount);
            if reasons.is_empty() {
                return if reopen(c, hold_id, &h, false, comment) { "released" } else { "withdrawn" }.to_string();
            }
            let role = releasing_role(c, &h.customer);
            if role.as_deref().is_some_and(|r| privileges::is_member(privileges::caller(), r)) {
                let why = comment.map(str::to_string).unwrap_or_else(|| {
                    format!("override: {}", reasons.iter().map(|r| r.code()).collect::<Vec<_>>().join(", "))
                });
                return if reopen(c, hold_id, &h, true, Some(&why)) { "overridden" } else { "withdrawn" }.to_string();
            }
            error::raise(
                Code::ERRCODE_CHECK_VIOLATION,
                format!("held order {hold_id} of customer \"{}\" still does not fit", h.customer),
                Some(format!(
                    "Amount {}; reasons: {}.",
                    h.amount,
                    reasons.iter().map(|r| r.code()).collect::<Vec<_>>().join(", ")
                )),
                Some(&format!(
                    "Collect payment or raise the limit first; a member of role \"{}\" may release it anyway.",
                    role.unwrap_or_default()
                )),
            )
        })
    })
}

/// Rejects a held order: it leaves the queue and stays in its hold status in the application's
/// table (the application decides whether to delete or cancel it).
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cancel_hold(hold_id: Option<i64>, comment: Option<&str>) {
    privileges::require("clerk", "cancelling a held order");
    let Some(hold_id) = hold_id else { error::null_arg("hold_id") };
    let comment = args::text(comment, "comment");
    Spi::connect_mut(|c| {
        let h = lock_hold(c, hold_id);
        decide(c, hold_id, "cancelled", Some(comment), false);
        events::append(
            c,
            Event {
                kind: "hold_cancelled",
                customer: &h.customer,
                reason: Some(comment),
                after: vec![("hold_id", hold_id.into()), ("amount", h.amount.into())],
                json: vec![],
            },
        );
    });
}

/// Releases, oldest first, every held order of the customer (or of every customer) that fits now.
/// Runs by itself after a payment, credit note or write-off and when an approved limit applies.
pub fn release_fitting(customer: Option<&str>) -> i64 {
    store::writing(|| {
        Spi::connect_mut(|c| {
            let ids: Vec<i64> = c
                .update(
                    "SELECT id FROM credit.order_hold WHERE status = 'held' AND ($1::text IS NULL OR customer = $1) \
                     ORDER BY held_at, id",
                    None,
                    &[customer.into()],
                )
                .or_raise()
                .map(|r| r.get::<i64>(1).or_raise().required("hold id"))
                .collect();
            let mut released = 0;
            for id in ids {
                let Some(h) = lock_hold_if(c, id, false) else { continue };
                if decide_locked(c, &h.customer, &h.amount).is_empty()
                    && reopen(c, id, &h, false, Some("released automatically: the order fits"))
                {
                    released += 1;
                }
            }
            released
        })
    })
}

/// Releases every held order that fits now, oldest first; returns how many.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn release_fitting_holds(customer: default!(Option<&str>, "NULL")) -> i64 {
    privileges::require("clerk", "releasing held orders");
    release_fitting(args::optional_text(customer, "customer"))
}
