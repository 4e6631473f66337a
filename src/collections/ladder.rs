//! Walking the dunning ladder (`credit.run_collections`). The work is set-based SQL over the ledger
//! as of a date (the `.sql` files next to this one), so a run for a past date reproduces what a run
//! on that day would have created; the unique indexes on credit.collection_task make every
//! (invoice, level) happen once. A run, in order: payment arrangements decided (completed or
//! broken), promises decided (a broken one escalates), the
//! ladder's step, tasks of settled invoices resolved, accounts held, invoices referred to legal
//! (the policy may blacklist), collection holds lifted.
use crate::collections::{
    arranged_condition, arrangements_present, lift_holds_in, resolve_settled_tasks, Change, Tables,
};
use crate::pg::args;
use crate::pg::error::{self, Code, OrRaise, Required};
use crate::pg::numeric::{decimal, numeric};
use crate::privileges;
use crate::store::{self, events};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiHeapTupleData};
use rust_decimal::Decimal;

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
fn task_created_events(c: &mut SpiClient<'_>, t: &Tables, created: &[Change]) {
    let ids: Vec<i64> = created.iter().filter(|r| r.0 == "task_created").filter_map(|r| r.4).collect();
    if !ids.is_empty() {
        c.update(&t.sql(include_str!("task_created_events.sql")), None, &[ids.into()]).or_raise();
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

impl Rules {
    /// The rules a worker step receives from the coordinator as arrays (a query on a shard cannot
    /// read the reference tables they come from); a NULL array or ladder is refused, a NULL grace
    /// is none, a NULL blacklist flag is no. `blacklist_on_legal` None: not sent (a preview).
    fn from_args(
        types: Option<Vec<Option<String>>>,
        regions: Option<Vec<Option<String>>>,
        ladders: Option<Vec<Option<String>>>,
        grace_days: Option<Vec<Option<i32>>>,
        blacklist_on_legal: Option<Option<Vec<Option<bool>>>>,
    ) -> Rules {
        Rules {
            types: types.unwrap_or_else(|| error::null_arg("types")),
            regions: regions.unwrap_or_else(|| error::null_arg("regions")),
            ladders: ladders
                .unwrap_or_else(|| error::null_arg("ladders"))
                .into_iter()
                .map(|x| x.unwrap_or_else(|| error::null_arg("ladders")))
                .collect(),
            grace_days: grace_days
                .unwrap_or_else(|| error::null_arg("grace_days"))
                .into_iter()
                .map(|g| g.unwrap_or(0))
                .collect(),
            blacklist_on_legal: blacklist_on_legal
                .map(|b| {
                    b.unwrap_or_else(|| error::null_arg("blacklist_on_legal"))
                        .into_iter()
                        .map(|b| b.unwrap_or(false))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
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
fn arrangements(c: &mut SpiClient<'_>, t: &Tables, as_of: Date, out: &mut Vec<Change>) {
    if arrangements_present(c) {
        // The accounts of plans with an instalment due before the day are locked first (in the
        // lock order): a payment being posted for one of them is waited for, and the decision
        // (a new statement, a new snapshot) sees it — a plan is not broken by a payment that was
        // merely in flight.
        c.update(
            &t.sql(
                "SELECT a.customer FROM credit.account a \
                  WHERE a.customer IN (SELECT ar.customer FROM credit.arrangement ar \
                                         JOIN credit.arrangement_instalment x \
                                           ON x.customer = ar.customer AND x.arrangement_id = ar.id \
                                        WHERE ar.status = 'active' AND ar.agreed_on <= $1 AND x.due_date < $1) \
                  ORDER BY a.customer FOR NO KEY UPDATE",
            ),
            None,
            &[as_of.into()],
        )
        .or_raise();
        out.extend(
            c.update(&t.sql(include_str!("arrangements_decide.sql")), None, &[as_of.into()])
                .or_raise()
                .map(|r| change_row(&r)),
        );
    }
}

/// Evaluates open promises: kept or broken; a broken promise gets an escalation task.
fn promises(c: &mut SpiClient<'_>, t: &Tables, as_of: Date, out: &mut Vec<Change>) {
    let decided: Vec<(i64, String, String, String)> = c
        .update(&t.sql(include_str!("promises_decide.sql")), None, &[as_of.into()])
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
    c.update(&t.sql(include_str!("promise_events.sql")), None, &[all.into()]).or_raise();
    let broken: Vec<i64> = decided.iter().filter(|d| d.3 == "broken").map(|d| d.0).collect();
    let escalations: Vec<Change> = c
        .update(&t.sql(include_str!("promise_escalations.sql")), None, &[broken.into(), as_of.into()])
        .or_raise()
        .map(|r| task_row(&r))
        .collect();
    task_created_events(c, t, &escalations);
    for (id, customer, doc_no, status) in decided {
        out.push((format!("promise_{status}"), customer, Some(doc_no), None, None, Some(format!("promise {id}"))));
    }
    out.extend(escalations);
}

/// The ladder's step for the day; returns the invoices whose new tasks hold the account and those
/// that refer it to legal.
fn step(c: &mut SpiClient<'_>, t: &Tables, as_of: Date, rules: &Rules, out: &mut Vec<Change>) -> (Vec<i64>, Vec<i64>) {
    let (mut holds, mut legal) = (Vec::new(), Vec::new());
    let mut created = Vec::new();
    let sql = t.sql(&include_str!("ladder_step.sql").replace("/*arranged*/", arranged_condition(c)));
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
    task_created_events(c, t, &created);
    out.extend(created);
    (holds, legal)
}

/// A task the ladder's step would create today: customer, doc_no, level, action, channel, open
/// amount.
pub(crate) type PlannedTask = (String, String, i32, String, String, pgrx::AnyNumeric);

/// What the ladder's step would create on `as_of` if it ran now, without writing anything: the
/// step's own statement (ladder_step.sql) read up to the tasks it reaches, keeping those not
/// superseded at once. Promises and arrangements are as they stand (a run decides those first).
/// On Citus's coordinator, each group of colocated shards is read on its worker
/// (`credit._ladder_preview_here`), as a run walks them.
pub(crate) fn preview(c: &SpiClient<'_>, as_of: Date) -> Vec<PlannedTask> {
    if !crate::pg::citus::distributed() {
        return preview_over(c, &Tables::logical(), as_of, &rules(c));
    }
    let reply = c.select("SELECT credit._ladder_preview_on_citus($1)", Some(1), &[as_of.into()]).or_raise();
    let rows = reply.first().get_one::<pgrx::JsonB>().or_raise().map(|j| j.0).unwrap_or_default();
    let rows: Vec<(String, String, i32, String, String, String)> = serde_json::from_value(rows).unwrap_or_else(|e| {
        error::raise(Code::ERRCODE_DATA_EXCEPTION, "a ladder preview could not be read", Some(e.to_string()), None)
    });
    rows.into_iter()
        .map(|(cu, doc, lv, action, channel, open)| {
            let open: Decimal = open.parse().unwrap_or_else(|e| error::conversion(e));
            (cu, doc, lv, action, channel, numeric(open))
        })
        .collect()
}

/// Internal: on Citus's coordinator, the ladder's preview (see `preview`): one call per group of
/// colocated shards, on its worker (`credit._ladder_preview_here`), as a run walks them. As
/// pg_credit's owner, so that the calls reach the workers as pg_credit's own steps; the reader
/// level, as the morning page. The tasks as JSON rows, in order.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn _ladder_preview_on_citus(as_of: Option<Date>) -> pgrx::JsonB {
    privileges::require("reader", "reading what the dunning ladder does today");
    let Some(as_of) = as_of else { error::null_arg("as_of") };
    if !crate::pg::citus::distributed() {
        return planned_json(Spi::connect(|c| preview_over(c, &Tables::logical(), as_of, &rules(c))));
    }
    let mut out: Vec<serde_json::Value> = Vec::new();
    Spi::connect(|c| {
        let rules = rules(c);
        for customer in shard_groups(c) {
            let reply = c
                .select(
                    "SELECT credit._ladder_preview_here($1, $2, $3, $4, $5, $6) FROM credit.account a WHERE a.customer = $1",
                    None,
                    &[
                        customer.as_str().into(),
                        as_of.into(),
                        rules.types.clone().into(),
                        rules.regions.clone().into(),
                        rules.ladders.clone().into(),
                        rules.grace_days.clone().into(),
                    ],
                )
                .or_raise();
            if reply.is_empty() {
                continue; // the account is gone: nothing of it to preview
            }
            if let Some(pgrx::JsonB(serde_json::Value::Array(rows))) = reply.first().get_one::<pgrx::JsonB>().or_raise()
            {
                out.extend(rows);
            }
        }
    });
    // Each group's rows are in order; the groups' customers interleave.
    out.sort_by_cached_key(|v| (v[0].as_str().map(String::from), v[1].as_str().map(String::from), v[2].as_i64()));
    pgrx::JsonB(serde_json::Value::Array(out))
}

/// [`preview`] over some tables (pg_credit's, or one shard group's on a Citus worker).
fn preview_over(c: &SpiClient<'_>, t: &Tables, as_of: Date, rules: &Rules) -> Vec<PlannedTask> {
    let step = include_str!("ladder_step.sql").replace("/*arranged*/", arranged_condition(c));
    let reached = step[..step.find("new AS (").required("the ladder step's insert")].trim_end().trim_end_matches(',');
    let sql = t.sql(&format!(
        "{reached} \
         SELECT r.customer, r.doc_no, r.level, r.action, r.channel, r.open_then FROM reached r \
          WHERE r.days >= coalesce(r.top_days, r.days) ORDER BY r.customer, r.doc_no, r.level"
    ));
    c.select(
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

/// Internal: on a Citus worker, the ladder preview the coordinator's morning page asks for (see
/// `preview`), over the shards of `customer`'s group placed here, with the coordinator's rules.
/// Reads only. Superuser over a Citus connection only. Returns the tasks as JSON rows.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn _ladder_preview_here(
    customer: Option<&str>,
    as_of: Option<Date>,
    types: Option<Vec<Option<String>>>,
    regions: Option<Vec<Option<String>>>,
    ladders: Option<Vec<Option<String>>>,
    grace_days: Option<Vec<Option<i32>>>,
) -> pgrx::JsonB {
    privileges::admit_coordinator_step(
        "_ladder_preview_here",
        "the morning page",
        "Read credit.portfolio_html() on the coordinator.",
        None,
    );
    let customer = args::text(customer, "customer");
    let Some(as_of) = as_of else { error::null_arg("as_of") };
    let rules = Rules::from_args(types, regions, ladders, grace_days, None);
    planned_json(Spi::connect(|c| {
        let t = Tables::shard_group(c, customer);
        preview_over(c, &t, as_of, &rules)
    }))
}

/// Planned tasks as JSON rows (the amount as text), as `preview` reads them back.
fn planned_json(rows: Vec<PlannedTask>) -> pgrx::JsonB {
    pgrx::JsonB(serde_json::Value::from(
        rows.into_iter()
            .map(|(cu, doc, lv, action, channel, open)| {
                serde_json::json!([cu, doc, lv, action, channel, decimal(&open).to_string()])
            })
            .collect::<Vec<_>>(),
    ))
}

/// Stop shipments: the accounts of invoices that reached a hold level go on hold.
fn hold_accounts(c: &mut SpiClient<'_>, t: &Tables, as_of: Date, invoices: Vec<i64>, out: &mut Vec<Change>) {
    if invoices.is_empty() {
        return;
    }
    events::with_reason(c, "collections: an invoice reached the hold level of the dunning ladder", |c| {
        for r in c.update(&t.sql(include_str!("hold_accounts.sql")), None, &[invoices.into(), as_of.into()]).or_raise()
        {
            out.push(change_row(&r));
        }
    });
}

/// Legal referral: the invoice and the account are marked; the policy may blacklist.
fn refer_to_legal(
    c: &mut SpiClient<'_>,
    t: &Tables,
    as_of: Date,
    invoices: Vec<i64>,
    rules: Rules,
    out: &mut Vec<Change>,
) {
    if invoices.is_empty() {
        return;
    }
    let referred: Vec<Change> = c
        .update(&t.sql(include_str!("legal_referral.sql")), None, &[invoices.into(), as_of.into()])
        .or_raise()
        .map(|r| change_row(&r))
        .collect();
    let customers: Vec<String> = referred.iter().map(|r| r.1.clone()).collect();
    out.extend(referred);
    if rules.blacklist_on_legal.iter().any(|b| *b) && !customers.is_empty() {
        events::with_reason(c, "policy: legal referral by collections", |c| {
            for r in c
                .update(
                    &t.sql(include_str!("blacklist_on_legal.sql")),
                    None,
                    &[customers.into(), rules.types.into(), rules.regions.into(), rules.blacklist_on_legal.into()],
                )
                .or_raise()
            {
                out.push(change_row(&r));
            }
        });
    }
}

/// The run's steps after the lock, over `t`.
fn run_over(c: &mut SpiClient<'_>, t: &Tables, as_of: Date, rules: Rules) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    arrangements(c, t, as_of, &mut out);
    promises(c, t, as_of, &mut out);
    let (holds, legal) = step(c, t, as_of, &rules, &mut out);
    // Tasks of invoices settled since are resolved (a run for a past date may have just
    // replayed tasks of invoices paid later).
    out.extend(resolve_settled_tasks(c, t, None));
    hold_accounts(c, t, as_of, holds, &mut out);
    refer_to_legal(c, t, as_of, legal, rules, &mut out);
    for customer in lift_holds_in(c, t, None) {
        out.push(("hold_lifted".into(), customer, None, None, None, Some("overdue invoices paid".into())));
    }
    out
}

fn run(as_of: Date) -> Vec<Change> {
    store::writing(|| {
        Spi::connect_mut(|c| {
            lock_out_other_runs(c);
            let rules = rules(c);
            run_over(c, &Tables::logical(), as_of, rules)
        })
    })
}

/// On Citus's coordinator: the run, one call per group of colocated shards that holds accounts,
/// each on the worker holding the group (credit._collections_here, in a query Citus routes there
/// by one customer of the group), all in this transaction. The rules go with the call: a query
/// on a shard cannot read the reference tables they come from.
fn run_distributed(as_of: Date) -> Vec<Change> {
    Spi::connect_mut(|c| {
        lock_out_other_runs(c);
        let rules = rules(c);
        let mut out = Vec::new();
        for customer in shard_groups(c) {
            out.extend(on_node(c, &customer, None, Some(as_of), Some(&rules)));
        }
        out
    })
}

/// On Citus: one customer of each group of colocated shards that holds accounts (the first), in
/// order: a call naming it is routed to the group's worker.
fn shard_groups(c: &SpiClient<'_>) -> Vec<String> {
    c.select(
        "SELECT min(a.customer) FROM credit.account a \
          GROUP BY pg_catalog.get_shard_id_for_distribution_column('credit.account'::pg_catalog.regclass, a.customer) \
          ORDER BY 1",
        None,
        &[],
    )
    .or_raise()
    .map(|r| r.get::<String>(1).or_raise().required("customer"))
    .collect()
}

/// Sends one collections call to the node of `customer`'s shard group: the whole run over the
/// group (rules given), or what follows a settlement of `settled` alone.
fn on_node(
    c: &mut SpiClient<'_>,
    customer: &str,
    settled: Option<&str>,
    as_of: Option<Date>,
    rules: Option<&Rules>,
) -> Vec<Change> {
    let reply = c
        .update(
            "SELECT credit._collections_here($1, $2, $3, $4, $5, $6, $7, $8, $9) FROM credit.account a WHERE a.customer = $1",
            None,
            &[
                customer.into(),
                settled.into(),
                as_of.into(),
                rules.map(|r| r.types.clone()).into(),
                rules.map(|r| r.regions.clone()).into(),
                rules.map(|r| r.ladders.clone()).into(),
                rules.map(|r| r.grace_days.clone()).into(),
                rules.map(|r| r.blacklist_on_legal.clone()).into(),
                privileges::name_of(privileges::caller()).into(),
            ],
        )
        .or_raise();
    // (No row: the account is gone, nothing of it to collect.)
    if reply.is_empty() {
        return Vec::new();
    }
    let Some(pgrx::JsonB(changes)) = reply.first().get_one::<pgrx::JsonB>().or_raise() else { return Vec::new() };
    serde_json::from_value(changes).unwrap_or_else(|e| {
        error::raise(
            Code::ERRCODE_DATA_EXCEPTION,
            "a worker's reply to a collections call could not be read",
            Some(e.to_string()),
            None,
        )
    })
}

/// On Citus: what follows a settlement of `customer` (its tasks of settled invoices resolved, its
/// collection hold lifted), on its node.
pub(crate) fn settled_on_node(customer: &str) {
    Spi::connect_mut(|c| on_node(c, customer, Some(customer), None, None));
}

/// Internal: on a Citus worker, the collections work the coordinator sends (see `on_node`), over
/// the shards of `customer`'s group placed here: the run as of `as_of` with the rules given, or
/// (`settled` given) what follows that customer's settlement, acting as the coordinator's caller
/// (`acting_as`). Superuser over a Citus connection only; the coordinator checked the caller's
/// level. Returns the changes as JSON rows.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn _collections_here(
    customer: Option<&str>,
    settled: Option<&str>,
    as_of: Option<Date>,
    types: Option<Vec<Option<String>>>,
    regions: Option<Vec<Option<String>>>,
    ladders: Option<Vec<Option<String>>>,
    grace_days: Option<Vec<Option<i32>>>,
    blacklist_on_legal: Option<Vec<Option<bool>>>,
    acting_as: Option<&str>,
) -> pgrx::JsonB {
    privileges::admit_coordinator_step(
        "_collections_here",
        "collections",
        "Run credit.run_collections() on the coordinator.",
        acting_as,
    );
    let customer = args::text(customer, "customer");
    let changes = store::writing(|| {
        Spi::connect_mut(|c| {
            let t = Tables::shard_group(c, customer);
            if let Some(settled) = settled {
                let mut out = resolve_settled_tasks(c, &t, Some(settled));
                for customer in lift_holds_in(c, &t, Some(settled)) {
                    out.push(("hold_lifted".into(), customer, None, None, None, Some("overdue invoices paid".into())));
                }
                return out;
            }
            let Some(as_of) = as_of else { error::null_arg("as_of") };
            let rules = Rules::from_args(types, regions, ladders, grace_days, Some(blacklist_on_legal));
            run_over(c, &t, as_of, rules)
        })
    });
    pgrx::JsonB(serde_json::Value::from(
        changes
            .into_iter()
            .map(|(change, customer, doc_no, level, task, detail)| {
                serde_json::json!([change, customer, doc_no, level, task, detail])
            })
            .collect::<Vec<_>>(),
    ))
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
    privileges::require("manager", "running collections");
    crate::pg::citus::refuse_on_worker("Running collections");
    let as_of = args::not_future(as_of, "as_of");
    if crate::pg::citus::distributed() {
        return TableIterator::new(run_distributed(as_of));
    }
    TableIterator::new(run(as_of))
}
