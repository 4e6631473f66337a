//! Hold mode: an order that does not fit is not refused but saved with its status set to the hold
//! value and queued in credit.order_hold, for a credit controller to release (src/holds.rs).
use crate::guard::config::{Config, HoldMode};
use crate::guard::owner;
use crate::guard::refusal::Refusal;
use crate::guard::row::{Contribution, Tuple};
use crate::pg::error::{Code, OrRaise, Required};
use crate::privileges;
use crate::store::events::{self, Event};
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::cell::Cell;

thread_local! {
    /// The row a hold is being written to (relation, block, offset): its own guard run is skipped.
    static HOLDING: Cell<Option<(Oid, u32, u16)>> = const { Cell::new(None) };
    /// Set when a row that was held is held again (a release whose order changed meanwhile).
    static REHELD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a release's UPDATE of a held row) and tells whether the guard held the row again.
pub fn reheld_during(f: impl FnOnce()) -> bool {
    REHELD.with(|r| r.set(false));
    f();
    REHELD.with(|r| r.replace(false))
}

/// Whether this UPDATE is the guard's own write of the hold status into `row`.
pub fn is_own_write(relid: Oid, row: Tuple) -> bool {
    HOLDING.with(|h| h.get()).is_some_and(|(r, b, o)| r == relid && row.tid() == (b, o))
}

/// Whether the row carries the hold status.
pub fn is_held(mode: &HoldMode, row: Tuple) -> bool {
    row.text(&mode.status).is_some_and(|v| v == mode.value)
}

/// The held row's key columns as JSON, naming it in credit.order_hold.
fn row_key(mode: &HoldMode, row: Tuple) -> String {
    let mut m = serde_json::Map::new();
    for k in &mode.keys {
        m.insert(k.name.clone(), row.text(k).map(serde_json::Value::String).unwrap_or(serde_json::Value::Null));
    }
    serde_json::Value::Object(m).to_string()
}

/// Sets the saved row's status to the hold value and queues it in credit.order_hold (or, when it
/// was held already, keeps its queue entry). False when the row could not be written.
pub fn hold(
    c: &mut SpiClient<'_>,
    cfg: &Config,
    relid: Oid,
    row: Tuple,
    r: &Refusal,
    order: &Contribution,
    already_queued: bool,
) -> bool {
    let Some(mode) = &cfg.hold else { return false };
    let original = row.text(&mode.status).unwrap_or_default();
    let key = row_key(mode, row);
    let sql: String = c
        .update(
            "SELECT pg_catalog.format('UPDATE %s SET %I = %L WHERE ctid OPERATOR(pg_catalog.=) $1::pg_catalog.tid', \
                    $1::pg_catalog.regclass, $2::pg_catalog.text, $3::pg_catalog.text)",
            Some(1),
            &[relid.into(), mode.status.name.as_str().into(), mode.value.as_str().into()],
        )
        .or_raise()
        .first()
        .get_one()
        .or_raise()
        .required("hold statement");
    let (block, offset) = row.tid();
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            HOLDING.with(|h| h.set(None));
        }
    }
    HOLDING.with(|h| h.set(Some((relid, block, offset))));
    let written = {
        let _reset = Reset;
        // With the table owner's rights: the owner's own triggers on the table run as the owner.
        owner::as_table_owner(relid, || c.update(&sql, None, &[format!("({block},{offset})").into()]).or_raise().len())
    };
    if written != 1 {
        return false;
    }
    let warn = || {
        pgrx::pg_sys::panic::ErrorReport::new(
            Code::ERRCODE_WARNING,
            format!("order of customer \"{}\" put on credit hold ({})", order.customer, r.reason_codes().join(", ")),
            "pg_credit",
        )
        .set_detail(r.detail())
        .set_hint("A credit controller releases it with credit.release_hold() (see credit.hold_queue).")
        .report(PgLogLevel::WARNING);
    };
    if already_queued {
        // Still held: its queue entry stands.
        REHELD.with(|x| x.set(true));
        warn();
        return true;
    }
    let caller = privileges::name_of(privileges::caller());
    let (holds, table) = queue_of(cfg, relid);
    let hold_id: i64 = c
        .update(
            &insert_statement(holds),
            None,
            &[
                table.into(),
                key.as_str().into(),
                order.customer.as_str().into(),
                order.amount.clone().into(),
                r.reason_codes().into_iter().map(String::from).collect::<Vec<_>>().into(),
                original.as_str().into(),
                caller.as_str().into(),
            ],
        )
        .or_raise()
        .first()
        .get_one()
        .or_raise()
        .required("new hold id");
    let reasons = r.reason_codes().join(", ");
    let table = match &cfg.hold_shard {
        Some(h) => h.name.clone(),
        None => crate::guard::tables::relation_name(relid),
    };
    events::append(
        c,
        Event {
            kind: "order_held",
            customer: &order.customer,
            reason: Some(&reasons),
            after: vec![
                ("hold_id", hold_id.into()),
                ("table", table.as_str().into()),
                ("amount", order.amount.clone().into()),
            ],
            json: vec![("row_key", key.clone())],
        },
    );
    warn();
    true
}

/// A held row left its hold by another way than credit.release_hold (the application changed or
/// deleted it): its queue entry is closed — released when it now fits, withdrawn when it is gone
/// or no longer open.
pub fn close(c: &mut SpiClient<'_>, cfg: &Config, relid: Oid, old: Tuple, withdrawn: bool) {
    let Some(mode) = &cfg.hold else { return };
    let key = row_key(mode, old);
    let (holds, table) = queue_of(cfg, relid);
    c.update(
        &format!(
            "UPDATE {holds} SET status = $3, decided_at = pg_catalog.clock_timestamp(), \
                    decided_by = credit._caller(), \
                    comment = 'changed by the application' \
             WHERE table_name OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass \
               AND row_key OPERATOR(pg_catalog.=) $2::pg_catalog.jsonb AND status OPERATOR(pg_catalog.=) 'held'"
        ),
        None,
        &[table.into(), key.as_str().into(), (if withdrawn { "withdrawn" } else { "released" }).into()],
    )
    .or_raise();
}

/// Where the guard queues the held orders of `relid`, and the table oid it names them by:
/// credit.order_hold and the relation itself; on a Citus order shard, the colocated order_hold
/// shard and the guarded table's oid on the coordinator (config::HoldShard).
fn queue_of(cfg: &Config, relid: Oid) -> (&str, Oid) {
    match &cfg.hold_shard {
        Some(h) => (h.table.as_str(), h.logical),
        None => ("credit.order_hold", relid),
    }
}

/// The INSERT of a new hold into `holds`. A shard has no identity default: its ids are the node's
/// (its group id in the top 16 bits, a per-node sequence below), unique across the cluster; the
/// coordinator's (group 0) continue its own.
fn insert_statement(holds: &str) -> String {
    let columns = "table_name, row_key, customer, amount, reasons, original_status, held_by";
    let values = "$1::pg_catalog.oid::pg_catalog.regclass, $2::pg_catalog.jsonb, $3, $4, $5, $6, $7";
    if holds == "credit.order_hold" {
        return format!("INSERT INTO credit.order_hold ({columns}) VALUES ({values}) RETURNING id");
    }
    let id = crate::pg::citus::node_id_sql("credit.order_hold_id_seq");
    format!(
        "INSERT INTO {holds} (id, {columns}, held_at, status, forced) \
         SELECT {id}, {values}, pg_catalog.clock_timestamp(), 'held', false RETURNING id"
    )
}
