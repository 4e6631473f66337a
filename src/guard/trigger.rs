//! The guard's triggers on an application table: the phases of guard/mod.rs, run for each row
//! (AFTER INSERT OR UPDATE OR DELETE) and for TRUNCATE.
use crate::guard::config::{self, Config};
use crate::guard::reserve::{self, Applied, Deltas};
use crate::guard::row::{self, Contribution, Tuple};
use crate::guard::{hold, owner, tables};
use crate::pg::error::{self, Code};
use crate::pg::numeric::decimal;
use crate::store::{self, account};
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

crate::pg::entry::c_trigger!(_guard_row_wrapper, pg_finfo__guard_row_wrapper, "_guard_row", guard_row);
crate::pg::entry::c_trigger!(
    _guard_truncate_wrapper,
    pg_finfo__guard_truncate_wrapper,
    "_guard_truncate",
    guard_truncate
);

fn attach_with_guard() -> &'static str {
    "Attach the guard with credit.guard(), not CREATE TRIGGER."
}

/// A row event, read: what the old and the new row version contribute.
struct Change {
    event: u32,
    old_row: Option<Tuple>,
    new_row: Option<Tuple>,
    old: Option<Contribution>,
    new: Option<Contribution>,
    /// In hold mode: a held row that the application changes or deletes leaves the queue.
    was_held: bool,
}

impl Change {
    fn read(cfg: &Config, td: &pg_sys::TriggerData, table: &dyn Fn() -> String) -> Change {
        // SAFETY: the trigger's relation is open while it fires.
        let tupdesc = unsafe { (*td.tg_relation).rd_att };
        let tuple = |t: *mut pg_sys::HeapTupleData| Tuple { tuple: t, tupdesc };
        let event = td.tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
        let (old_row, new_row) = match event {
            pg_sys::TRIGGER_EVENT_INSERT => (None, Some(tuple(td.tg_trigtuple))),
            pg_sys::TRIGGER_EVENT_DELETE => (Some(tuple(td.tg_trigtuple)), None),
            pg_sys::TRIGGER_EVENT_UPDATE => (Some(tuple(td.tg_trigtuple)), Some(tuple(td.tg_newtuple))),
            _ => (None, None),
        };
        let old = old_row.and_then(|r| row::contribution(cfg, r, false, table));
        let new = new_row.and_then(|r| row::contribution(cfg, r, true, table));
        let was_held = match (&cfg.hold, old_row) {
            (Some(mode), Some(o)) => hold::is_held(mode, o) && new_row.is_none_or(|n| !hold::is_held(mode, n)),
            _ => false,
        };
        Change { event, old_row, new_row, old, new, was_held }
    }

    /// Net change per customer (an update that leaves amount and customer as they were: none).
    fn deltas(&self) -> Deltas {
        let mut deltas = Deltas::new();
        if let Some(o) = &self.old {
            reserve::add_to(&mut deltas, &o.customer, &-o.amount.clone());
        }
        if let Some(n) = &self.new {
            reserve::add_to(&mut deltas, &n.customer, &n.amount);
        }
        if self.same_customer() {
            let zero = reserve::zero();
            deltas.retain(|_, d| *d != zero);
        }
        deltas
    }

    fn same_customer(&self) -> bool {
        matches!((&self.old, &self.new), (Some(o), Some(n)) if o.customer == n.customer)
    }

    /// The customer the order newly counts for: it is checked even at amount 0.
    fn new_order_of(&self) -> Option<&str> {
        if self.same_customer() {
            return None;
        }
        self.new.as_ref().map(|n| n.customer.as_str())
    }

    /// What the amount that did not fit is, for the message.
    fn described(&self) -> &'static str {
        match (&self.old, &self.new) {
            (None, _) if self.event == pg_sys::TRIGGER_EVENT_INSERT => "order amount",
            (None, _) => "reopened order amount",
            (Some(o), Some(n)) if o.customer == n.customer => "order increase",
            _ => "order amount moved in",
        }
    }
}

/// AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW on a guarded table.
fn guard_row<'a>(trigger: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    let td = trigger.trigger_data();
    let row_level = td.tg_event & pg_sys::TRIGGER_EVENT_ROW != 0;
    let after = td.tg_event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_AFTER;
    if !row_level || !after {
        error::raise(
            Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "credit._guard_row() must be fired AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW",
            None,
            Some(attach_with_guard()),
        )
    }
    // SAFETY: the trigger's relation is open while it fires.
    let (relid, tupdesc) = unsafe { ((*td.tg_relation).rd_id, (*td.tg_relation).rd_att) };
    let own_write = td.tg_event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_UPDATE
        && hold::is_own_write(relid, Tuple { tuple: td.tg_trigtuple, tupdesc });
    if own_write {
        return None;
    }
    let cfg = config::config(trigger);
    let table = || trigger.table_name().unwrap_or_default();
    let change = Change::read(&cfg, td, &table);
    let deltas = change.deltas();
    if deltas.is_empty() && !change.was_held {
        return None;
    }
    let account_shard = cfg.account_shard.as_ref().map(|(t, oid)| (t.as_str(), *oid));
    if !change.was_held && account::on_table(account_shard, || fast(&change, &deltas)) {
        return None;
    }
    owner::in_own_context(|| {
        store::writing(|| {
            account::on_table(account_shard, || Spi::connect_mut(|c| settle(c, &cfg, relid, &change, &deltas)))
        })
    });
    // AFTER ROW: the return value is ignored.
    None
}

/// The fast path without SPI, for a change of one customer's open orders that fits (or releases):
/// true when done. Anything else — a refusal, a group member, a row being written, an override —
/// takes the full path, which decides again.
fn fast(change: &Change, deltas: &Deltas) -> bool {
    let mut it = deltas.iter();
    let (Some((customer, delta)), None) = (it.next(), it.next()) else { return false };
    if reserve::is_forced() {
        return false;
    }
    let zero = reserve::zero();
    let amount = decimal(delta);
    if *delta > zero || change.new_order_of() == Some(customer.as_str()) {
        let account::Fast::Fits(r) = account::fast_reserve(customer, amount) else { return false };
        if r.crossed_warning {
            if let Some(w) = reserve::NearLimit::fast(customer, &r, delta) {
                owner::in_own_context(|| store::writing(|| Spi::connect_mut(|c| reserve::announce(c, w))));
            }
        }
        true
    } else if *delta < zero {
        account::fast_path_here() && account::fast_shift(customer, amount)
    } else {
        false
    }
}

/// Applies the change; on a refusal, holds the order (hold mode) or raises 23514.
fn settle(c: &mut SpiClient<'_>, cfg: &Config, relid: Oid, change: &Change, deltas: &Deltas) {
    let mut applied = Applied::default();
    let mut warnings = Vec::new();
    match reserve::apply(c, deltas, change.new_order_of(), &mut applied, cfg.hold.is_some(), &mut warnings) {
        Ok(()) => {
            if let (Some(_), Some(old_row), true) = (&cfg.hold, change.old_row, change.was_held) {
                // Re-opened and fitting: released by the application; cancelled or deleted: withdrawn.
                hold::close(c, cfg, relid, old_row, change.new.is_none());
            }
            for w in warnings {
                reserve::announce(c, w);
            }
        }
        Err(mut r) => {
            if !r.group {
                r.change = change.described();
            }
            if let (Some(_), Some(new), Some(new_row)) = (&cfg.hold, &change.new, change.new_row) {
                // Hold mode: undo what was applied — the old version's amount leaves, nothing new
                // comes in — and hold the row.
                let mut wanted = Deltas::new();
                if let Some(o) = &change.old {
                    reserve::add_to(&mut wanted, &o.customer, &-o.amount.clone());
                }
                reserve::compensate(c, &applied, &wanted);
                if hold::hold(c, cfg, relid, new_row, &r, new, change.was_held) {
                    return;
                }
            }
            r.raise(relid)
        }
    }
}

/// BEFORE TRUNCATE ... FOR EACH STATEMENT on a guarded table: the table's open orders leave the
/// customers' exposure before the rows go.
fn guard_truncate<'a>(trigger: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    let ev = trigger.trigger_data().tg_event;
    if ev & pg_sys::TRIGGER_EVENT_OPMASK != pg_sys::TRIGGER_EVENT_TRUNCATE {
        error::raise(
            Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "credit._guard_truncate() must be fired BEFORE TRUNCATE",
            None,
            Some(attach_with_guard()),
        )
    }
    // SAFETY: a trigger's relation is open while it fires.
    let relid = unsafe { (*trigger.trigger_data().tg_relation).rd_id };
    // A relation that is not registered (a hand-made trigger) or has no rows of its own (a
    // partitioned table) has no open orders to release.
    let deltas: Deltas = tables::open_orders_by_customer(relid).into_iter().map(|(c, s)| (c, -s)).collect();
    tables::move_open_orders(relid, &deltas, false);
    None
}
