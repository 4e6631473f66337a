//! Reserving and releasing: the net changes of open orders per customer, applied to the account
//! rows in the lock order (customers, then their group heads); each increase is checked and
//! reserved in one statement (store::account), a decrease moves without checks.
use crate::guard::refusal::Refusal;
use crate::pg::error::{self, Code};
use crate::pg::numeric::{decimal, numeric};
use crate::pg::settings;
use crate::store::account::{self, OrderMoves};
use crate::store::events::{self, Event};
use credit_core::decision::{self, Reason};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

thread_local! {
    /// Set while a credit controller's override releases a held order (or a table's orders move
    /// unchecked): reserve without checks.
    static FORCE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the guard reserving without checks.
pub fn forced<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            FORCE.with(|x| x.set(self.0));
        }
    }
    let _reset = Reset(FORCE.with(|x| x.replace(true)));
    f()
}

/// Net changes per customer.
pub type Deltas = BTreeMap<String, AnyNumeric>;

pub fn zero() -> AnyNumeric {
    AnyNumeric::from(0)
}

pub fn add_to(map: &mut Deltas, key: &str, delta: &AnyNumeric) {
    match map.get_mut(key) {
        Some(e) => *e = e.clone() + delta.clone(),
        None => {
            map.insert(key.to_string(), delta.clone());
        }
    }
}

/// What was applied so far, so that a held order can be undone exactly.
#[derive(Default)]
pub struct Applied {
    own: Deltas,
    heads: Deltas,
    parents: HashMap<String, Option<String>>,
}

/// A reservation that crossed a customer's warning line, with the numbers for the warning.
pub struct NearLimit {
    customer: String,
    exposure: AnyNumeric,
    limit: AnyNumeric,
    ratio: AnyNumeric,
    amount: AnyNumeric,
}

impl NearLimit {
    /// A fast reservation's crossing, with the numbers it decided on.
    pub fn fast(customer: &str, f: &account::FastReserved, amount: &AnyNumeric) -> Option<NearLimit> {
        Some(NearLimit {
            customer: customer.to_string(),
            exposure: numeric(f.exposure_after),
            limit: numeric(f.usable_limit),
            ratio: numeric(f.warn_ratio?),
            amount: amount.clone(),
        })
    }
}

/// Whether the guard reserves without checks now (an override).
pub fn is_forced() -> bool {
    FORCE.with(|f| f.get())
}

/// The numbers of a crossing, read back from the (locked) account row.
fn warning_of(c: &mut SpiClient<'_>, moves: &OrderMoves, customer: &str, amount: &AnyNumeric) -> Option<NearLimit> {
    let l = moves.lookup_latest(c, customer)?;
    let ratio = l.account.warn_ratio.map(numeric)?;
    if l.usable_limit() <= zero() {
        return None;
    }
    Some(NearLimit {
        customer: customer.to_string(),
        exposure: l.exposure.clone(),
        limit: l.usable_limit(),
        ratio,
        amount: amount.clone(),
    })
}

/// Checks and reserves `amount` on one account row (its own limit, or for a group head the whole
/// group's). On refusal, locks the row and decides on its latest version; if the order fits by
/// then (a concurrent release committed), reserves again. Returns the customer's group head.
fn try_reserve(
    c: &mut SpiClient<'_>,
    moves: &OrderMoves,
    customer: &str,
    amount: &AnyNumeric,
    group: bool,
    warnings: &mut Vec<NearLimit>,
) -> Result<Option<String>, Refusal> {
    // The conditional UPDATE skips a row whose snapshot version fails its WHERE clause without
    // waiting for concurrent writers, hence the locked look before refusing.
    for _ in 0..3 {
        if let Some(r) = moves.reserve(c, customer, amount, group) {
            if r.crossed_warning {
                warnings.extend(warning_of(c, moves, customer, amount));
            }
            return Ok(r.parent);
        }
        let Some(loaded) = moves.lookup_latest(c, customer) else {
            if !group && settings::ALLOW_ORDERS_WITHOUT_ACCOUNT.get() {
                return Ok(None);
            }
            return Err(Refusal::new(customer, vec![Reason::NoAccount], None, amount, group));
        };
        let d = decision::decide(Some(&loaded.account), None, decimal(amount));
        if !d.allowed() {
            let reasons = if group {
                let mut r: Vec<Reason> = d
                    .reasons
                    .iter()
                    .map(|r| match r {
                        Reason::OverLimit | Reason::PrepaymentRequired => Reason::GroupOverLimit,
                        _ => Reason::GroupBlocked,
                    })
                    .collect();
                r.dedup();
                r
            } else {
                d.reasons
            };
            return Err(Refusal::new(customer, reasons, Some(loaded), amount, group));
        }
    }
    error::raise(
        Code::ERRCODE_T_R_SERIALIZATION_FAILURE,
        format!("could not reserve credit for customer \"{customer}\": the account keeps changing"),
        None,
        Some("Retry the transaction."),
    )
}

/// Applies net changes in the lock order. `new_order_of`: the customer an order newly counts for
/// (an insert, a reopened or moved-in order); its order is checked even at amount 0 (a blacklisted
/// customer gets no orders at all). `track`: keep what was applied (hold mode undoes a held order).
pub fn apply(
    c: &mut SpiClient<'_>,
    deltas: &Deltas,
    new_order_of: Option<&str>,
    applied: &mut Applied,
    track: bool,
    warnings: &mut Vec<NearLimit>,
) -> Result<(), Refusal> {
    let moves = account::order_moves(c);
    let force = FORCE.with(|f| f.get());
    let z = zero();
    let mut heads = Deltas::new();
    for (customer, delta) in deltas {
        let check = match delta.cmp(&z) {
            Ordering::Greater => !force,
            Ordering::Equal if new_order_of == Some(customer.as_str()) => !force,
            Ordering::Equal => continue,
            Ordering::Less => false,
        };
        let parent = if check {
            try_reserve(c, &moves, customer, delta, false, warnings)?
        } else {
            moves.shift(c, customer, delta, false)
        };
        if track {
            add_to(&mut applied.own, customer, delta);
            applied.parents.insert(customer.clone(), parent.clone());
        }
        if let Some(h) = parent {
            add_to(&mut heads, &h, delta);
        }
    }
    for (head, delta) in &heads {
        let ord = delta.cmp(&z);
        if ord == Ordering::Equal {
            continue;
        }
        if ord == Ordering::Greater && !force {
            try_reserve(c, &moves, head, delta, true, warnings)?;
        } else {
            moves.shift(c, head, delta, true);
        }
        if track {
            add_to(&mut applied.heads, head, delta);
        }
    }
    Ok(())
}

/// Brings the accounts from what was applied to what is wanted, without checks (a held order:
/// its old version's amount leaves, nothing new comes in).
pub fn compensate(c: &mut SpiClient<'_>, applied: &Applied, wanted: &Deltas) {
    let moves = account::order_moves(c);
    let z = zero();
    let mut keys: Vec<&String> = applied.own.keys().chain(wanted.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut heads = Deltas::new();
    for k in keys {
        let have = applied.own.get(k).cloned().unwrap_or_else(zero);
        let want = wanted.get(k).cloned().unwrap_or_else(zero);
        let diff = want.clone() - have;
        let parent =
            if diff != z { moves.shift(c, k, &diff, false) } else { applied.parents.get(k).cloned().flatten() };
        if let Some(h) = parent.or_else(|| applied.parents.get(k).cloned().flatten()) {
            add_to(&mut heads, &h, &want);
        }
    }
    let mut hk: Vec<&String> = heads.keys().chain(applied.heads.keys()).collect();
    hk.sort();
    hk.dedup();
    for h in hk {
        let have = applied.heads.get(h).cloned().unwrap_or_else(zero);
        let want = heads.get(h).cloned().unwrap_or_else(zero);
        let diff = want - have;
        if diff != z {
            moves.shift(c, h, &diff, true);
        }
    }
}

/// Warns the client and records a `near_limit` event.
pub fn announce(c: &mut SpiClient<'_>, w: NearLimit) {
    let ratio_pct = (w.ratio.clone() * AnyNumeric::from(100)).to_string();
    pgrx::pg_sys::panic::ErrorReport::new(
        Code::ERRCODE_WARNING,
        format!("customer \"{}\" is near the credit limit", w.customer),
        "pg_credit",
    )
    .set_detail(format!(
        "Exposure {} of limit {} ({ratio_pct} % warning line) after an order of {}.",
        w.exposure, w.limit, w.amount
    ))
    .report(PgLogLevel::WARNING);
    events::append(
        c,
        Event {
            kind: "near_limit",
            customer: &w.customer,
            reason: None,
            after: vec![
                ("exposure", w.exposure.into()),
                ("limit", w.limit.into()),
                ("warn_ratio", w.ratio.into()),
                ("amount", w.amount.into()),
            ],
            json: vec![],
        },
    );
}
