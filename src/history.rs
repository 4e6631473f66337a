//! The credit history rebuilt for past days (`credit.backfill_history`): the ledger's figures day by
//! day from credit_core::history's sweep, the limit, status and grade from credit.event, written as
//! changes into credit.history for the days no daily job recorded (sql/history.sql has the tables,
//! the daily recording and the portfolio).
use crate::pg::args;
use crate::pg::error::{self, OrRaise, Required};
use crate::pg::numeric::{decimal, numeric};
use crate::privileges;
use credit_core::history::{self, Credit, Figures, Invoice};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

/// Customers rebuilt per round of queries.
const CHUNK: usize = 2000;

/// What credit.event says about an account on a day.
#[derive(Clone, Default, PartialEq)]
struct State {
    limit: Option<Decimal>,
    temporary: Option<Decimal>,
    temporary_until: Option<i32>,
    status: Option<String>,
    grade: Option<String>,
}

impl State {
    fn limit_on(&self, day: i32) -> (Option<Decimal>, bool) {
        match (self.temporary, self.temporary_until) {
            (Some(t), Some(until)) if until >= day => (Some(t), true),
            _ => (self.limit, false),
        }
    }
}

#[derive(Default)]
struct Ledger {
    invoices: Vec<Invoice>,
    credits: Vec<Credit>,
    /// (day, the event's `after`, its `before`), in the order they happened.
    events: Vec<(i32, serde_json::Value, serde_json::Value)>,
    /// Recorded rows' ranges [from, until) (until None: still in force).
    recorded: Vec<(i32, Option<i32>)>,
    /// The account as it is now (the state before any event, for accounts older than their events).
    now: State,
}

fn days(v: Option<Vec<i32>>) -> Vec<i32> {
    v.unwrap_or_default()
}

fn amounts(v: Option<Vec<AnyNumeric>>) -> Vec<Decimal> {
    v.unwrap_or_default().iter().map(decimal).collect()
}

fn load(c: &SpiClient<'_>, customers: &[String], to: Date, citus: bool) -> HashMap<String, Ledger> {
    let mut out: HashMap<String, Ledger> = customers.iter().map(|c| (c.clone(), Ledger::default())).collect();
    let custs: Vec<String> = customers.to_vec();
    for r in c
        .select(
            "SELECT i.customer, i.doc_date - DATE '2000-01-01', i.due_date - DATE '2000-01-01', i.amount, \
                    array_agg(a.applied_on - DATE '2000-01-01' ORDER BY a.id) FILTER (WHERE a.id IS NOT NULL), \
                    array_agg(a.amount ORDER BY a.id) FILTER (WHERE a.id IS NOT NULL) \
               FROM credit.invoice i \
               LEFT JOIN credit.allocation a ON a.customer = i.customer AND a.invoice_id = i.id AND a.applied_on <= $2 \
              WHERE i.customer = ANY ($1) AND i.doc_date <= $2 GROUP BY i.customer, i.id",
            None,
            &[custs.clone().into(), to.into()],
        )
        .or_raise()
    {
        let customer: String = r.get(1).or_raise().required("customer");
        let applied: Vec<(i32, Decimal)> =
            days(r.get(5).or_raise()).into_iter().zip(amounts(r.get(6).or_raise())).collect();
        if let Some(l) = out.get_mut(&customer) {
            l.invoices.push(Invoice {
                amount: decimal(&r.get::<AnyNumeric>(4).or_raise().required("amount")),
                doc_day: r.get(2).or_raise().required("doc_date"),
                due_day: r.get(3).or_raise().required("due_date"),
                applied,
            });
        }
    }
    for r in c
        .select(
            "SELECT s.customer, s.doc_date - DATE '2000-01-01', s.amount, \
                    array_agg(a.applied_on - DATE '2000-01-01' ORDER BY a.id) FILTER (WHERE a.id IS NOT NULL AND a.reversal_id IS NULL), \
                    array_agg(a.amount ORDER BY a.id) FILTER (WHERE a.id IS NOT NULL AND a.reversal_id IS NULL), \
                    s.reversed_on - DATE '2000-01-01' \
               FROM credit.settlement s \
               LEFT JOIN credit.allocation a ON a.customer = s.customer AND a.settlement_id = s.id AND a.applied_on <= $2 \
              WHERE s.customer = ANY ($1) AND s.kind IN ('payment', 'credit_note') AND s.doc_date <= $2 GROUP BY s.customer, s.id",
            None,
            &[custs.clone().into(), to.into()],
        )
        .or_raise()
    {
        let customer: String = r.get(1).or_raise().required("customer");
        let applied: Vec<(i32, Decimal)> = days(r.get(4).or_raise()).into_iter().zip(amounts(r.get(5).or_raise())).collect();
        if let Some(l) = out.get_mut(&customer) {
            l.credits.push(Credit {
                amount: decimal(&r.get::<AnyNumeric>(3).or_raise().required("amount")),
                doc_day: r.get(2).or_raise().required("doc_date"),
                applied,
                reversed_day: r.get(6).or_raise(),
            });
        }
    }
    // On Citus every node records the changes of the accounts it holds (sql/citus.sql).
    let events = if citus {
        "SELECT * FROM credit._account_events_on_citus($1)"
    } else {
        "SELECT e.customer, e.happened_at::date - DATE '2000-01-01', coalesce(e.after, '{}'), coalesce(e.before, '{}') \
           FROM credit.event e \
          WHERE e.customer = ANY ($1) \
            AND e.kind IN ('account_created', 'limit_changed', 'temporary_limit_changed', 'status_changed', 'grade_changed') \
          ORDER BY e.id"
    };
    for r in c.select(events, None, &[custs.clone().into()]).or_raise() {
        let customer: String = r.get(1).or_raise().required("customer");
        let after: pgrx::JsonB = r.get(3).or_raise().required("after");
        let before: pgrx::JsonB = r.get(4).or_raise().required("before");
        if let Some(l) = out.get_mut(&customer) {
            l.events.push((r.get(2).or_raise().required("happened_at"), after.0, before.0));
        }
    }
    for r in c
        .select(
            "SELECT h.customer, h.valid_from - DATE '2000-01-01', h.valid_until - DATE '2000-01-01' \
               FROM credit.history h WHERE h.customer = ANY ($1) AND h.source = 'recorded'",
            None,
            &[custs.clone().into()],
        )
        .or_raise()
    {
        let customer: String = r.get(1).or_raise().required("customer");
        if let Some(l) = out.get_mut(&customer) {
            l.recorded.push((r.get(2).or_raise().required("valid_from"), r.get(3).or_raise()));
        }
    }
    for r in c
        .select(
            "SELECT customer, credit_limit, temporary_limit, temporary_limit_until - DATE '2000-01-01', status, grade \
               FROM credit.account WHERE customer = ANY ($1)",
            None,
            &[custs.into()],
        )
        .or_raise()
    {
        let customer: String = r.get(1).or_raise().required("customer");
        if let Some(l) = out.get_mut(&customer) {
            l.now = State {
                limit: r.get::<AnyNumeric>(2).or_raise().map(|x| decimal(&x)),
                temporary: r.get::<AnyNumeric>(3).or_raise().map(|x| decimal(&x)),
                temporary_until: r.get(4).or_raise(),
                status: r.get(5).or_raise(),
                grade: r.get(6).or_raise(),
            };
        }
    }
    out
}

/// The state after applying an event's `after` (only the keys it carries change).
fn apply(state: &mut State, after: &serde_json::Value) {
    let dec = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        serde_json::Value::String(s) => Decimal::from_str(s).ok(),
        _ => None,
    };
    if let Some(v) = after.get("credit_limit") {
        state.limit = dec(v);
    }
    if let Some(v) = after.get("temporary_limit") {
        state.temporary = dec(v);
    }
    if let Some(v) = after.get("temporary_limit_until") {
        state.temporary_until = v.as_str().and_then(chrono_days);
    }
    if let Some(v) = after.get("status") {
        state.status = v.as_str().map(String::from);
    }
    if let Some(v) = after.get("grade") {
        state.grade = v.as_str().map(String::from);
    }
}

/// Days since 2000-01-01 of an ISO date.
fn chrono_days(s: &str) -> Option<i32> {
    let mut p = s.split('-');
    let (y, m, d) = (p.next()?.parse().ok()?, p.next()?.parse().ok()?, p.next()?.parse().ok()?);
    Date::new(y, m, d).ok().map(|x| x.to_pg_epoch_days())
}

/// One row to write: day, state, ledger figures.
struct Row {
    day: i32,
    state: State,
    figures: Figures,
}

/// A customer's rows over from..=to: a row where the figures or the account's state change, or
/// where a recorded range ends; none on a recorded day.
fn rows_of(l: &Ledger, lowers: &[i32], from: i32, to: i32) -> Vec<Row> {
    let covered = |day: i32| l.recorded.iter().any(|(f, u)| *f <= day && u.is_none_or(|u| day < u));
    // The state before the first event: the account as it is now with every event undone (its
    // `before` put back, newest first); a creation has no `before`, so the account reads as it was
    // created on the days before it (documents may be dated before the account was opened).
    let mut initial = l.now.clone();
    for (_, _, before) in l.events.iter().rev() {
        apply(&mut initial, before);
    }
    // The ledger's figures change only on the sweep's days: any other day has those of the last
    // sweep day before it (the sweep starts on `from`).
    let changes = history::sweep(&l.invoices, &l.credits, lowers, from, to);
    let figures_on =
        |day: i32| changes.iter().rev().find(|(d, _)| *d <= day).map(|(_, f)| f.clone()).unwrap_or_default();
    let mut candidates: BTreeSet<i32> = changes.iter().map(|(d, _)| *d).collect();
    candidates.insert(from);
    for (day, after, _) in &l.events {
        if *day >= from && *day <= to {
            candidates.insert(*day);
        }
        if let Some(until) = after.get("temporary_limit_until").and_then(|v| v.as_str()).and_then(chrono_days) {
            if until + 1 >= from && until < to {
                candidates.insert(until + 1);
            }
        }
    }
    for (_, until) in &l.recorded {
        if let Some(u) = until {
            if *u >= from && *u <= to {
                candidates.insert(*u);
            }
        }
    }
    let mut out: Vec<Row> = Vec::new();
    let mut last: Option<(State, Figures)> = None;
    let mut was_covered = false;
    for day in candidates {
        if covered(day) {
            was_covered = true;
            continue;
        }
        let mut state = initial.clone();
        for (_, after, _) in l.events.iter().filter(|(d, _, _)| *d <= day) {
            apply(&mut state, after);
        }
        let figures = figures_on(day);
        let same = last.as_ref().is_some_and(|(s, f)| *s == state && *f == figures);
        if !same || was_covered {
            last = Some((state.clone(), figures.clone()));
            out.push(Row { day, state, figures });
        }
        was_covered = false;
    }
    out
}

/// Rebuilds the credit history of the days from..=to for every customer, from the ledger and
/// credit.event, for the days no daily job recorded (recorded days are never rewritten), and the
/// portfolio of those days. Figures that cannot be rebuilt (open orders, exposure, score, dunning
/// level) are NULL on the days it writes. Returns the rows written.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn backfill_history(from_date: Option<Date>, to_date: Option<Date>) -> i64 {
    crate::pg::citus::refuse_on_worker("Backfilling the credit history");
    privileges::require("manager", "backfilling the credit history");
    backfill(from_date, to_date)
}

/// The daily job's fill of missed days (credit._record_history): the same, inside pg_credit.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _backfill_history(from_date: Option<Date>, to_date: Option<Date>) -> i64 {
    privileges::require_internal("credit._backfill_history");
    backfill(from_date, to_date)
}

fn backfill(from_date: Option<Date>, to_date: Option<Date>) -> i64 {
    let from = args::date(from_date, "from_date");
    let to = args::not_future(to_date, "to_date");
    if to < from {
        error::invalid(format!("to_date {to} is before from_date {from}"))
    }
    if to.to_pg_epoch_days() - from.to_pg_epoch_days() > 3660 {
        error::invalid(format!("{from} to {to} is more than ten years"))
    }
    let (f, t) = (from.to_pg_epoch_days(), to.to_pg_epoch_days());
    let citus = crate::pg::citus::distributed();
    Spi::connect_mut(|c| {
        let lowers: Vec<i32> = c
            .select(
                "SELECT coalesce(array_agg(b.lower_days ORDER BY b.position) FILTER (WHERE b.lower_days IS NOT NULL), '{}') \
                   FROM credit.aging_bucket b WHERE NOT b.retired",
                Some(1),
                &[],
            )
            .or_raise()
            .first()
            .get_one::<Vec<i32>>()
            .or_raise()
            .unwrap_or_default();
        let customers: Vec<String> = c
            .select("SELECT customer FROM credit.account ORDER BY customer", None, &[])
            .or_raise()
            .map(|r| r.get::<String>(1).or_raise().required("customer"))
            .collect();
        let mut written = 0i64;
        for chunk in customers.chunks(CHUNK) {
            let ledgers = load(c, chunk, to, citus);
            let (
                mut cust,
                mut day,
                mut lim,
                mut temp,
                mut ar,
                mut un,
                mut od,
                mut bks,
                mut oldest,
                mut util,
                mut st,
                mut gr,
            ) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
            for customer in chunk {
                let Some(l) = ledgers.get(customer) else { continue };
                for r in rows_of(l, &lowers, f, t) {
                    let (limit, temporary) = r.state.limit_on(r.day);
                    let used = r.figures.open_ar - r.figures.unapplied;
                    cust.push(customer.clone());
                    day.push(r.day);
                    lim.push(limit.map(numeric));
                    temp.push(temporary);
                    ar.push(numeric(r.figures.open_ar));
                    un.push(numeric(r.figures.unapplied));
                    od.push(numeric(r.figures.overdue));
                    bks.push(
                        serde_json::to_string(&r.figures.buckets.iter().map(|b| b.to_string()).collect::<Vec<_>>())
                            .unwrap_or_default(),
                    );
                    oldest.push(r.figures.oldest_overdue_due);
                    util.push(limit.filter(|l| *l > Decimal::ZERO).map(|l| numeric((used / l).round_dp(4))));
                    st.push(r.state.status.clone());
                    gr.push(r.state.grade.clone());
                }
            }
            let chunk_vec: Vec<String> = chunk.to_vec();
            c.update(
                "DELETE FROM credit.history WHERE customer = ANY ($1) AND source = 'backfilled' AND valid_from BETWEEN $2 AND $3",
                None,
                &[chunk_vec.clone().into(), from.into(), to.into()],
            )
            .or_raise();
            if !cust.is_empty() {
                written += c
                    .update(
                        "INSERT INTO credit.history (customer, valid_from, credit_limit, temporary_limit, open_ar, unapplied_credit, \
                                                     overdue, buckets, oldest_overdue_due, utilization, status, grade, source) \
                         SELECT u.customer, DATE '2000-01-01' + u.day, u.lim, u.temp, u.ar, u.un, u.od, \
                                ARRAY(SELECT jsonb_array_elements_text(u.bk::jsonb)::numeric), \
                                DATE '2000-01-01' + u.oldest, u.util, u.st, u.gr, 'backfilled' \
                           FROM unnest($1::text[], $2::int[], $3::numeric[], $4::bool[], $5::numeric[], $6::numeric[], $7::numeric[], \
                                       $8::text[], $9::int[], $10::numeric[], $11::text[], $12::text[]) \
                                AS u(customer, day, lim, temp, ar, un, od, bk, oldest, util, st, gr) \
                         ON CONFLICT (customer, valid_from) DO NOTHING RETURNING 1",
                        None,
                        &[
                            cust.into(),
                            day.into(),
                            lim.into(),
                            temp.into(),
                            ar.into(),
                            un.into(),
                            od.into(),
                            bks.into(),
                            oldest.into(),
                            util.into(),
                            st.into(),
                            gr.into(),
                        ],
                    )
                    .or_raise()
                    .len() as i64;
            }
            c.update("SELECT credit._close_history_ranges($1)", None, &[chunk_vec.into()]).or_raise();
        }
        c.update("SELECT credit._portfolio_history($1, $2)", None, &[from.into(), to.into()]).or_raise();
        written
    })
}
