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

/// Where a hold and its customer's account are: pg_credit's tables (one node; Citus's
/// coordinator, cancelling), or on a Citus worker releasing it ([`release_here`]) the customer's
/// shards placed there, which that worker's guard writes in the same backend.
struct Place {
    holds: String,
    /// The account shard and its oid (None: credit.account).
    accounts: Option<(String, pgrx::pg_sys::Oid)>,
}

impl Place {
    fn tables() -> Place {
        Place { holds: "credit.order_hold".into(), accounts: None }
    }

    /// On a Citus worker: the customer's order_hold and account shards, placed on this node.
    fn shards_of(c: &SpiClient<'_>, customer: &str) -> Place {
        let mut shards = crate::pg::citus::shards_here(c, &["credit.order_hold", "credit.account"], customer);
        let (Some(accounts), Some((holds, _))) = (shards.pop().flatten(), shards.pop().flatten()) else {
            not_here(customer, "its credit")
        };
        Place { holds, accounts: Some(accounts) }
    }
}

/// A release sent to a worker that no longer holds the customer's shards.
fn not_here(customer: &str, what: &str) -> ! {
    error::raise(
        Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("{what} of customer \"{customer}\" is not placed on this node"),
        Some("A shard move may have finished meanwhile.".into()),
        Some("Run the release again through the coordinator."),
    )
}

struct Held {
    /// The relation the order row is in: the guarded table, or on a worker its shard.
    relation: pgrx::pg_sys::Oid,
    customer: String,
    amount: AnyNumeric,
    /// The UPDATE that puts the row back to the status it had; None when its table is no longer
    /// guarded in hold mode.
    update_sql: Option<String>,
}

/// A hold as read without a lock (its customer and table never change; its status is checked
/// again under the lock): on Citus a hold lives on its customer's node, where it is then locked by
/// customer and id. 42704 when there is none.
struct HoldRef {
    customer: String,
    table: pgrx::pg_sys::Oid,
    status: String,
}

fn hold_ref(c: &SpiClient<'_>, hold_id: i64) -> HoldRef {
    let found = c
        .select(
            "SELECT customer, table_name::pg_catalog.oid, status FROM credit.order_hold WHERE id = $1",
            Some(1),
            &[hold_id.into()],
        )
        .or_raise();
    if found.is_empty() {
        no_such_hold(hold_id)
    }
    let r = found.first();
    HoldRef {
        customer: r.get(1).or_raise().required("hold customer"),
        table: r.get(2).or_raise().required("hold table_name"),
        status: r.get(3).or_raise().required("hold status"),
    }
}

fn no_such_hold(hold_id: i64) -> ! {
    error::raise(
        Code::ERRCODE_UNDEFINED_OBJECT,
        format!("hold {hold_id} does not exist"),
        None,
        Some("credit.hold_queue lists open holds."),
    )
}

/// Locks a hold at `place`: 55000 when it is decided already, or (`for_release`) when its table is
/// no longer guarded in hold mode. When not `strict`, such a hold is skipped instead.
fn lock_hold_at(
    c: &mut SpiClient<'_>,
    place: &Place,
    hold_id: i64,
    customer: &str,
    strict: bool,
    for_release: bool,
    guarded: impl FnOnce(&SpiClient<'_>, pgrx::pg_sys::Oid) -> Option<GuardedRow>,
) -> Option<Held> {
    let t = c
        .update(
            &format!(
                "SELECT h.amount, h.status, h.original_status, h.row_key::pg_catalog.text, h.table_name::pg_catalog.oid \
                   FROM {} h \
                  WHERE h.customer OPERATOR(pg_catalog.=) $2 AND h.id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
                place.holds
            ),
            Some(1),
            &[hold_id.into(), customer.into()],
        )
        .or_raise();
    if t.is_empty() {
        no_such_hold(hold_id)
    }
    let row = t.first();
    let status: String = row.get(2).or_raise().required("hold status");
    if status != "held" {
        if !strict {
            return None;
        }
        already_decided(hold_id, &status)
    }
    let amount: AnyNumeric = row.get(1).or_raise().required("hold amount");
    let original: String = row.get(3).or_raise().required("hold original_status");
    let row_key: String = row.get(4).or_raise().required("hold row_key");
    let table: pgrx::pg_sys::Oid = row.get(5).or_raise().required("hold table_name");
    let (relation, update_sql) = match guarded(c, table) {
        Some(g) => {
            let sql = c
                .update(
                    include_str!("holds/row_update.sql"),
                    Some(1),
                    &[
                        g.relation.into(),
                        g.status_column.as_str().into(),
                        original.as_str().into(),
                        g.keys.into(),
                        row_key.as_str().into(),
                    ],
                )
                .or_raise();
            let sql = if sql.is_empty() { None } else { sql.first().get_one::<String>().or_raise() };
            (g.relation, sql)
        }
        None => (table, None),
    };
    if update_sql.is_none() && for_release {
        // Releasing automatically passes over such a hold (a person cancels it); asked for by
        // name, it is an error.
        if !strict {
            return None;
        }
        no_longer_guarded(hold_id)
    }
    Some(Held { relation, customer: customer.to_string(), amount, update_sql })
}

/// How a held order's table is guarded in hold mode, where its row is at `place`.
struct GuardedRow {
    relation: pgrx::pg_sys::Oid,
    status_column: String,
    keys: Vec<String>,
}

fn already_decided(hold_id: i64, status: &str) -> ! {
    error::raise(
        Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("hold {hold_id} is already {status}"),
        None,
        None,
    )
}

fn no_longer_guarded(hold_id: i64) -> ! {
    error::raise(
        Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("the table of hold {hold_id} is no longer guarded in hold mode"),
        None,
        Some("Cancel the hold with credit.cancel_hold()."),
    )
}

/// From credit.guarded_table. None: not guarded in hold mode (any more).
fn guarded_row(c: &SpiClient<'_>, table: pgrx::pg_sys::Oid) -> Option<GuardedRow> {
    let t = c
        .select(
            "SELECT g.status_column::pg_catalog.text, g.key_columns::pg_catalog.text[] FROM credit.guarded_table g \
              WHERE g.table_name OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass \
                AND g.mode OPERATOR(pg_catalog.=) 'hold'",
            Some(1),
            &[table.into()],
        )
        .or_raise();
    if t.is_empty() {
        return None;
    }
    let r = t.first();
    Some(GuardedRow {
        relation: table,
        status_column: r.get::<String>(1).or_raise()?,
        keys: r.get::<Vec<String>>(2).or_raise()?,
    })
}

/// The decision for the held amount, taken under the customer's and its group head's row locks
/// (the locks a new order takes, in the same order).
fn decide_locked(c: &mut SpiClient<'_>, place: &Place, customer: &str, amount: &AnyNumeric) -> Vec<Reason> {
    account::on_table(place.accounts.as_ref().map(|(t, oid)| (t.as_str(), *oid)), || {
        let own = account::lock_for_decision(c, customer);
        let head = own.as_ref().and_then(|o| o.parent.clone()).and_then(|h| account::lock_for_decision(c, &h));
        decision::decide(own.as_ref().map(|o| &o.account), head.as_ref().map(|h| &h.account), decimal(amount)).reasons
    })
}

/// Who may override, and what the caller's release does.
struct Release<'a> {
    /// The caller is a member of the releasing role.
    may_force: bool,
    /// That role, for the message.
    role: Option<String>,
    comment: Option<&'a str>,
    /// Who decides (recorded in decided_by).
    by: String,
}

/// Releases a locked hold: when it fits, or by an override when the caller may force it; else
/// 23514. Returns 'released', 'overridden' or 'withdrawn' (the row is gone).
fn release_locked(c: &mut SpiClient<'_>, place: &Place, hold_id: i64, h: &Held, how: &Release<'_>) -> String {
    let reasons = decide_locked(c, place, &h.customer, &h.amount);
    if reasons.is_empty() {
        return if reopen(c, place, hold_id, h, false, how.comment, &how.by) { "released" } else { "withdrawn" }
            .to_string();
    }
    if how.may_force {
        let why = how.comment.map(str::to_string).unwrap_or_else(|| {
            format!("override: {}", reasons.iter().map(|r| r.code()).collect::<Vec<_>>().join(", "))
        });
        return if reopen(c, place, hold_id, h, true, Some(&why), &how.by) { "overridden" } else { "withdrawn" }
            .to_string();
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
            how.role.clone().unwrap_or_default()
        )),
    )
}

/// Puts the held row back to its open status (the guard reserves its amount); marks the hold.
/// Returns false when the row no longer exists (the hold is then withdrawn).
fn reopen(
    c: &mut SpiClient<'_>,
    place: &Place,
    hold_id: i64,
    h: &Held,
    forced: bool,
    comment: Option<&str>,
    by: &str,
) -> bool {
    let update_sql = h.update_sql.as_deref().required("held order's update");
    let mut n = 0;
    // With the table owner's rights: the owner's own triggers on the table run as the owner.
    let reheld = hold::reheld_during(|| {
        let mut update = || owner::as_table_owner(h.relation, || c.update(update_sql, None, &[]).or_raise().len());
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
    decide(c, place, hold_id, &h.customer, status, comment, forced, by);
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

/// Marks a hold decided.
#[allow(clippy::too_many_arguments)]
fn decide(
    c: &mut SpiClient<'_>,
    place: &Place,
    hold_id: i64,
    customer: &str,
    status: &str,
    comment: Option<&str>,
    forced: bool,
    by: &str,
) {
    // The time as a value: Citus refuses a volatile function in an UPDATE of a distributed table.
    let at: Option<pgrx::datum::TimestampWithTimeZone> =
        c.update("SELECT pg_catalog.clock_timestamp()", Some(1), &[]).or_raise().first().get_one().or_raise();
    c.update(
        &format!(
            "UPDATE {} SET status = $2, decided_at = $7, decided_by = $3, comment = $4, forced = $5 \
             WHERE customer OPERATOR(pg_catalog.=) $6 AND id OPERATOR(pg_catalog.=) $1",
            place.holds
        ),
        None,
        &[hold_id.into(), status.into(), by.into(), comment.into(), forced.into(), customer.into(), at.into()],
    )
    .or_raise();
}

/// The role whose members may release a held order that still does not fit: the customer's policy
/// releasing_role, else the admin role.
fn releasing_role(c: &SpiClient<'_>, customer: &str) -> Option<String> {
    let t = c
        .select("SELECT releasing_role::text FROM credit.effective_policy($1)", Some(1), &[customer.into()])
        .or_raise();
    let role = if t.is_empty() { None } else { t.first().get_one::<String>().or_raise() };
    role.or_else(settings::admin_role)
}

/// How the caller releases: may they override for this customer, and who they are.
fn release_by_caller<'a>(c: &SpiClient<'_>, customer: &str, comment: Option<&'a str>) -> Release<'a> {
    let role = releasing_role(c, customer);
    let may_force = role.as_deref().is_some_and(|r| privileges::is_member(privileges::caller(), r));
    Release { may_force, role, comment, by: privileges::name_of(privileges::caller()) }
}

/// Re-checks a held order now: if it fits, it becomes open with its amount reserved. If it still
/// does not fit, a member of the releasing role releases it anyway (a recorded override); anyone
/// else gets 23514. Returns 'released', 'overridden' or 'withdrawn' (the row is gone).
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn release_hold(hold_id: Option<i64>, comment: default!(Option<&str>, "NULL")) -> String {
    privileges::require("clerk", "releasing a held order");
    let Some(hold_id) = hold_id else { error::null_arg("hold_id") };
    crate::pg::citus::refuse_on_worker("Releasing a held order");
    store::writing(|| {
        Spi::connect_mut(|c| {
            let hold = hold_ref(c, hold_id);
            let how = release_by_caller(c, &hold.customer, comment);
            if crate::pg::citus::distributed() {
                return on_customers_node(c, hold_id, &hold, &how, false);
            }
            let place = Place::tables();
            let h = lock_hold_at(c, &place, hold_id, &hold.customer, true, true, guarded_row).required("held order");
            release_locked(c, &place, hold_id, &h, &how)
        })
    })
}

/// On Citus (from the coordinator): the release runs on the customer's node, in one backend there
/// (credit._release_here), so that the guard that reserves the order sees the override and tells
/// whether it held the row again, and the table owner's rights (its triggers run as the owner)
/// take no second connection, which would wait for the locks of the first. A statement that reads
/// the hold by its customer takes the call there. When `automatic`, a hold that is decided, no
/// longer guarded in hold mode or does not fit is skipped ('skipped').
fn on_customers_node(
    c: &mut SpiClient<'_>,
    hold_id: i64,
    hold: &HoldRef,
    how: &Release<'_>,
    automatic: bool,
) -> String {
    if hold.status != "held" {
        if automatic {
            return "skipped".into();
        }
        already_decided(hold_id, &hold.status)
    }
    let Some(g) = guarded_row(c, hold.table) else {
        if automatic {
            return "skipped".into();
        }
        no_longer_guarded(hold_id)
    };
    let table = crate::guard::tables::relation_name(g.relation);
    let t = c
        .update(
            "SELECT credit._release_here(h.id, h.customer, $3, $4, $5, $6, $7, $8, $9, $10) FROM credit.order_hold h \
              WHERE h.customer = $2 AND h.id = $1",
            None,
            &[
                hold_id.into(),
                hold.customer.as_str().into(),
                table.as_str().into(),
                g.status_column.as_str().into(),
                g.keys.into(),
                (how.may_force && !automatic).into(),
                how.role.as_deref().into(),
                how.comment.into(),
                how.by.as_str().into(),
                automatic.into(),
            ],
        )
        .or_raise();
    if t.is_empty() {
        no_such_hold(hold_id)
    }
    t.first().get_one::<String>().or_raise().required("release")
}

/// The worker's side of a release on Citus ([`on_customers_node`]): locks the hold and the account
/// in the customer's shards here, decides, and puts the order's row in its shard of `table` back to
/// open (the guard's trigger on that shard reserves it, in this backend). Returns 'released',
/// 'overridden', 'withdrawn' or, when `automatic` and the hold does not fit or is decided already,
/// 'skipped'. Only the coordinator calls it, as pg_credit's superuser over a Citus connection: it
/// reads no reference table (Citus refuses that inside a query on a shard), the coordinator
/// passes what its registry says.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn _release_here(
    hold_id: Option<i64>,
    customer: Option<&str>,
    table: Option<&str>,
    status_column: Option<&str>,
    key_columns: Option<Vec<String>>,
    may_force: Option<bool>,
    releasing_role: Option<&str>,
    comment: Option<&str>,
    decided_by: Option<&str>,
    automatic: Option<bool>,
) -> String {
    privileges::admit_coordinator_step(
        "_release_here",
        "a release",
        "Release held orders with credit.release_hold() on the coordinator.",
        decided_by,
    );
    let Some(hold_id) = hold_id else { error::null_arg("hold_id") };
    let (customer, table) = (args::text(customer, "customer"), args::text(table, "table"));
    let (status_column, decided_by) =
        (args::text(status_column, "status_column"), args::text(decided_by, "decided_by"));
    let Some(key_columns) = key_columns else { error::null_arg("key_columns") };
    let (may_force, automatic) = (may_force.unwrap_or(false), automatic.unwrap_or(false));
    store::writing(|| {
        Spi::connect_mut(|c| {
            let place = Place::shards_of(c, customer);
            // The order's shard of the guarded table (schema.table, as the coordinator names it).
            let Some((_, relation)) = crate::pg::citus::shard_here(c, table, customer) else {
                not_here(customer, &format!("the orders in table {table}"))
            };
            let guarded = |_: &SpiClient<'_>, _| {
                Some(GuardedRow { relation, status_column: status_column.to_string(), keys: key_columns.clone() })
            };
            let Some(h) = lock_hold_at(c, &place, hold_id, customer, !automatic, true, guarded) else {
                return "skipped".to_string();
            };
            if automatic && !decide_locked(c, &place, customer, &h.amount).is_empty() {
                return "skipped".to_string();
            }
            let how =
                Release { may_force, role: releasing_role.map(str::to_string), comment, by: decided_by.to_string() };
            release_locked(c, &place, hold_id, &h, &how)
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
    crate::pg::citus::refuse_on_worker("Cancelling a held order");
    Spi::connect_mut(|c| {
        let customer = hold_ref(c, hold_id).customer;
        let place = Place::tables();
        let h = lock_hold_at(c, &place, hold_id, &customer, true, false, |_, _| None).required("held order");
        let by = privileges::name_of(privileges::caller());
        decide(c, &place, hold_id, &customer, "cancelled", Some(comment), false, &by);
        events::append(
            c,
            Event {
                kind: "hold_cancelled",
                customer: &customer,
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
    const WHY: &str = "released automatically: the order fits";
    store::writing(|| {
        Spi::connect_mut(|c| {
            // One customer's by its name alone: on Citus a statement on that customer's node (this
            // runs after every payment).
            let sql = if customer.is_some() {
                "SELECT id, customer, table_name::pg_catalog.oid FROM credit.order_hold \
                  WHERE customer = $1 AND status = 'held' ORDER BY held_at, id"
            } else {
                "SELECT id, customer, table_name::pg_catalog.oid FROM credit.order_hold \
                  WHERE status = 'held' ORDER BY held_at, id"
            };
            let args: Vec<pgrx::datum::DatumWithOid> = customer.map(|x| x.into()).into_iter().collect();
            let holds: Vec<(i64, String, pgrx::pg_sys::Oid)> = c
                .update(sql, None, &args)
                .or_raise()
                .map(|r| {
                    (
                        r.get::<i64>(1).or_raise().required("hold id"),
                        r.get::<String>(2).or_raise().required("customer"),
                        r.get::<pgrx::pg_sys::Oid>(3).or_raise().required("table_name"),
                    )
                })
                .collect();
            let distributed = !holds.is_empty() && crate::pg::citus::distributed();
            let by = privileges::name_of(privileges::caller());
            let how = Release { may_force: false, role: None, comment: Some(WHY), by: by.clone() };
            let mut released = 0;
            for (id, who, table) in holds {
                if distributed {
                    let hold = HoldRef { customer: who, table, status: "held".into() };
                    if on_customers_node(c, id, &hold, &how, true) == "released" {
                        released += 1;
                    }
                    continue;
                }
                let place = Place::tables();
                let Some(h) = lock_hold_at(c, &place, id, &who, false, true, guarded_row) else { continue };
                if decide_locked(c, &place, &who, &h.amount).is_empty()
                    && reopen(c, &place, id, &h, false, Some(WHY), &by)
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
