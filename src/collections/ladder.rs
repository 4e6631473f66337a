//! Walking the dunning ladder (`credit.run_collections`). The work is set-based SQL over the ledger
//! as of a date (the `.sql` files next to this one), so a run for a past date reproduces what a run
//! on that day would have created; the unique indexes on credit.collection_task make every
//! (invoice, level) happen once. A run, in order: payment arrangements decided (completed or
//! broken), promises decided (a broken one escalates), the
//! ladder's step, tasks of settled invoices resolved, accounts held, invoices referred to legal
//! (the policy may blacklist), collection holds lifted.
use crate::collections::{arranged_condition, arrangements_present, lift_holds, resolve_settled_tasks, Change};
use crate::pg::args;
use crate::pg::error::{OrRaise, Required};
use crate::privileges;
use crate::store::{self, events};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiHeapTupleData};

/// What a new task is, for the run's output: "<action> by <channel>[ for <assignee>]".
fn task_detail(action: &str, channel: &str, assigned_to: Option<&str>) -> String {
    match assigned_to {
        Some(who) => format!("{action} by {channel} for {who}"),
        None => format!("{action} by {channel}"),
    }
}

/// A row of the step or the escalations: change, customer, doc_no, level, task id, then (for a
/// new task) its action, channel and assignee.
fn task_row(r: &SpiHeapTupleData<'_>) -> Change {
    let action: Option<String> = r.get(6).or_raise();
    let detail = action.map(|a| {
        let channel: String = r.get(7).or_raise().unwrap_or_default();
        task_detail(&a, &channel, r.get::<String>(8).or_raise().as_deref())
    });
    (
        r.get::<String>(1).or_raise().required("change"),
        r.get::<String>(2).or_raise().required("customer"),
        r.get(3).or_raise(),
        r.get(4).or_raise(),
        r.get(5).or_raise(),
        detail,
    )
}

/// A change row of the other statements: change, customer, doc_no, level, task id, detail.
pub(crate) fn change_row(r: &SpiHeapTupleData<'_>) -> Change {
    (
        r.get::<String>(1).or_raise().required("change"),
        r.get::<String>(2).or_raise().required("customer"),
        r.get(3).or_raise(),
        r.get(4).or_raise(),
        r.get(5).or_raise(),
        r.get(6).or_raise(),
    )
}

/// Records the task_created events of new tasks.
fn task_created_events(c: &mut SpiClient<'_>, created: &[Change]) {
    let ids: Vec<i64> = created.iter().filter(|r| r.0 == "task_created").filter_map(|r| r.4).collect();
    if !ids.is_empty() {
        c.update(include_str!("task_created_events.sql"), None, &[ids.into()]).or_raise();
    }
}

/// Per (customer_type, region) present among the accounts, what the policies say for collections:
/// the dunning ladder and whether a legal referral blacklists.
struct Rules {
    types: Vec<Option<String>>,
    regions: Vec<Option<String>>,
    ladders: Vec<String>,
    grace_days: Vec<i32>,
    blacklist_on_legal: Vec<bool>,
}

fn rules(c: &SpiClient<'_>) -> Rules {
    let mut out =
        Rules { types: vec![], regions: vec![], ladders: vec![], grace_days: vec![], blacklist_on_legal: vec![] };
    for (t, r, e) in crate::policy::by_subject(c) {
        out.types.push(t);
        out.regions.push(r);
        out.ladders.push(e.dunning_ladder);
        out.grace_days.push(e.grace_days);
        out.blacklist_on_legal.push(e.blacklist_on_legal);
    }
    out
}

/// One run at a time: a second concurrent run waits, then finds the work done. The lock is on a
/// table nobody else has privileges on (an advisory key anyone could hold).
fn lock_out_other_runs(c: &mut SpiClient<'_>) {
    // (A database still on an older version's SQL has no lock table: its advisory key.)
    let lock = if store::has(c, "credit.collections_lock") {
        "LOCK TABLE credit.collections_lock IN EXCLUSIVE MODE"
    } else {
        "SELECT pg_catalog.pg_advisory_xact_lock(1885823858, 1)"
    };
    c.update(lock, None, &[]).or_raise();
}

/// Decides active payment arrangements: completed, or broken by a missed instalment (the ladder
/// then resumes from the invoices' own due dates). A database still on an older version's SQL
/// has no arrangements.
fn arrangements(c: &mut SpiClient<'_>, as_of: Date, out: &mut Vec<Change>) {
    if arrangements_present(c) {
        // The accounts of plans with an instalment due before the day are locked first (in the
        // lock order): a payment being posted for one of them is waited for, and the decision
        // (a new statement, a new snapshot) sees it — a plan is not broken by a payment that was
        // merely in flight.
        c.update(
            "SELECT a.customer FROM credit.account a \
              WHERE a.customer IN (SELECT ar.customer FROM credit.arrangement ar \
                                     JOIN credit.arrangement_instalment x ON x.arrangement_id = ar.id \
                                    WHERE ar.status = 'active' AND ar.agreed_on <= $1 AND x.due_date < $1) \
              ORDER BY a.customer FOR NO KEY UPDATE",
            None,
            &[as_of.into()],
        )
        .or_raise();
        out.extend(
            c.update(include_str!("arrangements_decide.sql"), None, &[as_of.into()]).or_raise().map(|r| change_row(&r)),
        );
    }
}

/// Evaluates open promises: kept or broken; a broken promise gets an escalation task.
fn promises(c: &mut SpiClient<'_>, as_of: Date, out: &mut Vec<Change>) {
    let decided: Vec<(i64, String, String, String)> = c
        .update(include_str!("promises_decide.sql"), None, &[as_of.into()])
        .or_raise()
        .map(|r| {
            (
                r.get::<i64>(1).or_raise().required("promise id"),
                r.get::<String>(2).or_raise().required("customer"),
                r.get::<String>(3).or_raise().required("doc_no"),
                r.get::<String>(4).or_raise().required("promise status"),
            )
        })
        .collect();
    if decided.is_empty() {
        return;
    }
    let all: Vec<i64> = decided.iter().map(|d| d.0).collect();
    c.update(include_str!("promise_events.sql"), None, &[all.into()]).or_raise();
    let broken: Vec<i64> = decided.iter().filter(|d| d.3 == "broken").map(|d| d.0).collect();
    let escalations: Vec<Change> = c
        .update(include_str!("promise_escalations.sql"), None, &[broken.into(), as_of.into()])
        .or_raise()
        .map(|r| task_row(&r))
        .collect();
    task_created_events(c, &escalations);
    for (id, customer, doc_no, status) in decided {
        out.push((format!("promise_{status}"), customer, Some(doc_no), None, None, Some(format!("promise {id}"))));
    }
    out.extend(escalations);
}

/// The ladder's step for the day; returns the invoices whose new tasks hold the account and those
/// that refer it to legal.
fn step(c: &mut SpiClient<'_>, as_of: Date, rules: &Rules, out: &mut Vec<Change>) -> (Vec<i64>, Vec<i64>) {
    let (mut holds, mut legal) = (Vec::new(), Vec::new());
    let mut created = Vec::new();
    let sql = include_str!("ladder_step.sql").replace("/*arranged*/", arranged_condition(c));
    for r in c
        .update(
            &sql,
            None,
            &[
                as_of.into(),
                rules.types.clone().into(),
                rules.regions.clone().into(),
                rules.ladders.clone().into(),
                rules.grace_days.clone().into(),
            ],
        )
        .or_raise()
    {
        let invoice = r.get::<i64>(9).or_raise();
        match (r.get::<String>(6).or_raise().as_deref(), invoice) {
            (Some("hold"), Some(i)) => holds.push(i),
            (Some("legal"), Some(i)) => legal.push(i),
            _ => {}
        }
        created.push(task_row(&r));
    }
    task_created_events(c, &created);
    out.extend(created);
    (holds, legal)
}

/// A task the ladder's step would create today: customer, doc_no, level, action, channel, open
/// amount.
pub(crate) type PlannedTask = (String, String, i32, String, String, pgrx::AnyNumeric);

/// What the ladder's step would create on `as_of` if it ran now, without writing anything: the
/// step's own statement (ladder_step.sql) read up to the tasks it reaches, keeping those not
/// superseded at once. Promises and arrangements are as they stand (a run decides those first).
pub(crate) fn preview(c: &SpiClient<'_>, as_of: Date) -> Vec<PlannedTask> {
    let step = include_str!("ladder_step.sql").replace("/*arranged*/", arranged_condition(c));
    let reached = step[..step.find("new AS (").required("the ladder step's insert")].trim_end().trim_end_matches(',');
    let sql = format!(
        "{reached} \
         SELECT r.customer, r.doc_no, r.level, r.action, r.channel, r.open_then FROM reached r \
          WHERE r.days >= coalesce(r.top_days, r.days) ORDER BY r.customer, r.doc_no, r.level"
    );
    let rules = rules(c);
    c.select(
        &sql,
        None,
        &[as_of.into(), rules.types.into(), rules.regions.into(), rules.ladders.into(), rules.grace_days.into()],
    )
    .or_raise()
    .map(|r| {
        (
            r.get::<String>(1).or_raise().required("customer"),
            r.get::<String>(2).or_raise().required("doc_no"),
            r.get::<i32>(3).or_raise().required("level"),
            r.get::<String>(4).or_raise().required("action"),
            r.get::<String>(5).or_raise().required("channel"),
            r.get::<pgrx::AnyNumeric>(6).or_raise().required("open amount"),
        )
    })
    .collect()
}

/// Stop shipments: the accounts of invoices that reached a hold level go on hold.
fn hold_accounts(c: &mut SpiClient<'_>, as_of: Date, invoices: Vec<i64>, out: &mut Vec<Change>) {
    if invoices.is_empty() {
        return;
    }
    events::with_reason(c, "collections: an invoice reached the hold level of the dunning ladder", |c| {
        for r in c.update(include_str!("hold_accounts.sql"), None, &[invoices.into(), as_of.into()]).or_raise() {
            out.push(change_row(&r));
        }
    });
}

/// Legal referral: the invoice and the account are marked; the policy may blacklist.
fn refer_to_legal(c: &mut SpiClient<'_>, as_of: Date, invoices: Vec<i64>, rules: Rules, out: &mut Vec<Change>) {
    if invoices.is_empty() {
        return;
    }
    let referred: Vec<Change> = c
        .update(include_str!("legal_referral.sql"), None, &[invoices.into(), as_of.into()])
        .or_raise()
        .map(|r| change_row(&r))
        .collect();
    let customers: Vec<String> = referred.iter().map(|r| r.1.clone()).collect();
    out.extend(referred);
    if rules.blacklist_on_legal.iter().any(|b| *b) && !customers.is_empty() {
        for r in c
            .update(
                include_str!("blacklist_on_legal.sql"),
                None,
                &[customers.into(), rules.types.into(), rules.regions.into(), rules.blacklist_on_legal.into()],
            )
            .or_raise()
        {
            out.push(change_row(&r));
        }
    }
}

fn run(as_of: Date) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    store::writing(|| {
        Spi::connect_mut(|c| {
            lock_out_other_runs(c);
            arrangements(c, as_of, &mut out);
            promises(c, as_of, &mut out);
            let rules = rules(c);
            let (holds, legal) = step(c, as_of, &rules, &mut out);
            // Tasks of invoices settled since are resolved (a run for a past date may have just
            // replayed tasks of invoices paid later).
            out.extend(resolve_settled_tasks(c, None));
            hold_accounts(c, as_of, holds, &mut out);
            refer_to_legal(c, as_of, legal, rules, &mut out);
        })
    });
    for customer in lift_holds(None) {
        out.push(("hold_lifted".into(), customer, None, None, None, Some("overdue invoices paid".into())));
    }
    out
}

/// Walks the dunning ladder as of a date: evaluates promises, creates one task per (invoice,
/// level) reached (exactly once), supersedes lower levels, holds accounts and refers to legal as
/// the ladder says, lifts collection holds whose invoices are paid. Returns what it did.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn run_collections(
    as_of: default!(Option<Date>, "CURRENT_DATE"),
) -> TableIterator<
    'static,
    (
        name!(change, String),
        name!(customer, String),
        name!(doc_no, Option<String>),
        name!(level, Option<i32>),
        name!(task_id, Option<i64>),
        name!(detail, Option<String>),
    ),
> {
    crate::pg::citus::refuse_if_distributed("Running collections");
    privileges::require("manager", "running collections");
    let as_of = args::not_future(as_of, "as_of");
    TableIterator::new(run(as_of))
}
