//! Collections: walking the dunning ladder (credit.run_collections), disputes, collection holds
//! that lift by themselves, and the daily housekeeping. The work is set-based SQL over the ledger
//! as of a date, so a run for a past date reproduces what a run on that day would have created;
//! the unique indexes on credit.collection_task make every (invoice, level) happen once.
use crate::core::policy::{self, Subject};
use crate::error::{self, Code, OrRaise};
use crate::{input, internal, ledger};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

/// SQL: a CTE `events` appending a task_created event for every row of the CTE `new` (new tasks).
macro_rules! task_created_events {
    () => {
        "events AS ( \
            INSERT INTO credit.event (kind, customer, after, acting_as) \
            SELECT 'task_created', n.customer, \
                   jsonb_build_object('task_id', n.id, 'doc_no', n.doc_no, 'ladder', n.ladder, 'level', n.level, \
                                      'promise_id', n.promise_id, 'action', n.action, 'channel', n.channel, \
                                      'assigned_to', n.assigned_to, 'open_amount', n.open_amount, \
                                      'days_past_due', n.days_past_due, 'created_for', n.created_for), credit._caller() \
              FROM new n ORDER BY n.id)"
    };
}

/// SQL: what a new task `n` is, for run_collections' output.
macro_rules! task_detail {
    () => {
        "n.action || ' by ' || n.channel || coalesce(' for ' || n.assigned_to, '')"
    };
}

type Change = (String, String, Option<String>, Option<i32>, Option<i64>, Option<String>);

fn reason(c: &mut SpiClient<'_>, text: &str) {
    c.update("SELECT pg_catalog.set_config('credit.reason', $1, true)", None, &[text.into()]).or_raise();
}

/// Puts collection-held accounts back to active once no invoice that reached a hold level is still
/// open and undisputed (for one customer, or all). Holds set by people are not touched: a person's
/// status change clears collection_hold_since (credit._account_history).
pub fn lift_holds(customer: Option<&str>) -> Vec<String> {
    internal::scope(|| {
        Spi::connect_mut(|c| {
            let lifted: Vec<String> = c
                .update(
                    "SELECT a.customer FROM credit.account a \
                     WHERE a.collection_hold_since IS NOT NULL AND a.status = 'hold' \
                       AND ($1::text IS NULL OR a.customer = $1) \
                       AND NOT EXISTS (SELECT 1 FROM credit.collection_task t JOIN credit.invoice i ON i.id = t.invoice_id \
                                        WHERE t.customer = a.customer AND t.action = 'hold' \
                                          AND i.open_amount > 0 AND NOT i.disputed) \
                     ORDER BY a.customer",
                    None,
                    &[customer.into()],
                )
                .or_raise()
                .map(|r| r.get::<String>(1).or_raise().expect("customer"))
                .collect();
            for cust in &lifted {
                reason(c, "collections: the overdue invoices that caused the hold are paid, credited or disputed");
                c.update(
                    "UPDATE credit.account SET status = 'active', collection_hold_since = NULL \
                     WHERE customer = $1 AND status = 'hold' AND collection_hold_since IS NOT NULL",
                    None,
                    &[cust.as_str().into()],
                )
                .or_raise();
            }
            reason(c, "");
            lifted
        })
    })
}

/// After a payment, credit note or write-off: open tasks of the customer's invoices that are now
/// settled are resolved (they leave the worklist at once), and collection holds lift.
pub fn after_settlement(customer: &str) {
    internal::scope(|| {
        Spi::connect_mut(|c| {
            c.update(
                "UPDATE credit.collection_task t SET status = 'resolved', closed_at = clock_timestamp() \
                   FROM credit.invoice i \
                  WHERE t.customer = $1 AND t.status = 'open' AND i.id = t.invoice_id AND i.open_amount = 0",
                None,
                &[customer.into()],
            )
            .or_raise();
        })
    });
    lift_holds(Some(customer));
}

/// Per (customer_type, region) present among the accounts, what the policies say for collections:
/// the dunning ladder and whether a legal referral blacklists.
struct Rules {
    types: Vec<Option<String>>,
    regions: Vec<Option<String>>,
    ladders: Vec<String>,
    blacklist_on_legal: Vec<bool>,
}

fn rules(c: &mut SpiClient<'_>) -> Rules {
    let ps = crate::policy::load_policies(c);
    let subjects: Vec<(Option<String>, Option<String>)> = c
        .update("SELECT DISTINCT customer_type, region FROM credit.account", None, &[])
        .or_raise()
        .map(|r| (r.get(1).or_raise(), r.get(2).or_raise()))
        .collect();
    let mut out = Rules { types: vec![], regions: vec![], ladders: vec![], blacklist_on_legal: vec![] };
    for (t, r) in subjects {
        let e = policy::resolve(&ps, &Subject { customer_type: t.as_deref(), region: r.as_deref(), product_category: None });
        out.types.push(t);
        out.regions.push(r);
        out.ladders.push(e.dunning_ladder);
        out.blacklist_on_legal.push(e.blacklist_on_legal);
    }
    out
}

/// Evaluates open promises: kept when the promised amount was paid (or the invoice settled) by
/// the promised date; broken when the date has passed without it. A broken promise gets an
/// escalation task.
fn promises(c: &mut SpiClient<'_>, as_of: Date, out: &mut Vec<Change>) {
    let decided: Vec<(i64, String, String, String)> = c
        .update(
            "WITH p AS ( \
                SELECT p.id, p.amount, p.promised_date, \
                       coalesce((SELECT sum(al.amount) FROM credit.allocation al JOIN credit.settlement s ON s.id = al.settlement_id \
                                  WHERE al.invoice_id = p.invoice_id AND s.kind <> 'write_off' \
                                    AND al.applied_on BETWEEN p.made_on AND least(p.promised_date, $1)), 0) AS paid, \
                       i.amount - coalesce((SELECT sum(al.amount) FROM credit.allocation al \
                                             WHERE al.invoice_id = i.id AND al.applied_on <= least(p.promised_date, $1)), 0) AS open_then \
                  FROM credit.promise p JOIN credit.invoice i ON i.id = p.invoice_id \
                 WHERE p.status = 'open' AND p.made_on <= $1), \
             d AS (SELECT id, CASE WHEN paid >= amount OR open_then = 0 THEN 'kept' \
                                   WHEN promised_date < $1 THEN 'broken' END AS verdict FROM p) \
             UPDATE credit.promise x SET status = d.verdict, decided_on = $1 FROM d \
              WHERE x.id = d.id AND d.verdict IS NOT NULL \
             RETURNING x.id, x.customer, (SELECT i.doc_no FROM credit.invoice i WHERE i.id = x.invoice_id), x.status",
            None,
            &[as_of.into()],
        )
        .or_raise()
        .map(|r| {
            (
                r.get::<i64>(1).or_raise().expect("id"),
                r.get::<String>(2).or_raise().expect("customer"),
                r.get::<String>(3).or_raise().expect("doc_no"),
                r.get::<String>(4).or_raise().expect("status"),
            )
        })
        .collect();
    if decided.is_empty() {
        return;
    }
    let all: Vec<i64> = decided.iter().map(|d| d.0).collect();
    c.update(
        "INSERT INTO credit.event (kind, customer, after, acting_as) \
         SELECT 'promise_' || p.status, p.customer, \
                jsonb_build_object('promise_id', p.id, 'task_id', p.task_id, 'doc_no', i.doc_no, 'amount', p.amount, \
                                   'promised_date', p.promised_date, 'decided_on', p.decided_on), credit._caller() \
           FROM credit.promise p JOIN credit.invoice i ON i.id = p.invoice_id WHERE p.id = ANY($1) ORDER BY p.id",
        None,
        &[all.into()],
    )
    .or_raise();
    let broken: Vec<i64> = decided.iter().filter(|d| d.3 == "broken").map(|d| d.0).collect();
    let mut escalations: Vec<Change> = Vec::new();
    // Escalation of a broken promise: to the ladder's first escalation level's role.
    for r in c
        .update(
            concat!(
                "WITH new AS ( \
                    INSERT INTO credit.collection_task (customer, invoice_id, doc_no, ladder, level, promise_id, action, channel, \
                                                        assigned_to, open_amount, days_past_due, created_for, due_on) \
                    SELECT p.customer, p.invoice_id, i.doc_no, t.ladder, NULL, p.id, 'escalate', 'phone', \
                           coalesce((SELECT l.assignee_role FROM credit.dunning_level l \
                                      WHERE l.ladder = t.ladder AND l.action = 'escalate' AND NOT l.retired ORDER BY l.level LIMIT 1), \
                                    t.assigned_to), \
                           i.open_amount, $2 - i.due_date, $2, $2 \
                      FROM credit.promise p JOIN credit.invoice i ON i.id = p.invoice_id \
                      JOIN credit.collection_task t ON t.id = p.task_id \
                     WHERE p.id = ANY($1) AND i.open_amount > 0 AND NOT i.disputed \
                       AND NOT EXISTS (SELECT 1 FROM credit.collection_task x WHERE x.promise_id = p.id) ORDER BY p.id \
                    ON CONFLICT DO NOTHING RETURNING *), ",
                task_created_events!(),
                " SELECT 'task_created', n.customer, n.doc_no, n.level, n.id, ",
                task_detail!(),
                " FROM new n ORDER BY n.id"
            ),
            None,
            &[broken.into(), as_of.into()],
        )
        .or_raise()
    {
        escalations.push(change_row(&r));
    }
    for (id, customer, doc_no, status) in decided {
        out.push((format!("promise_{status}"), customer, Some(doc_no), None, None, Some(format!("promise {id}"))));
    }
    out.extend(escalations);
}

fn change_row(r: &pgrx::spi::SpiHeapTupleData<'_>) -> Change {
    (
        r.get::<String>(1).or_raise().expect("change"),
        r.get::<String>(2).or_raise().expect("customer"),
        r.get(3).or_raise(),
        r.get(4).or_raise(),
        r.get(5).or_raise(),
        r.get(6).or_raise(),
    )
}

/// The ladder's step for the day, in one statement: every (invoice, level) reached on as_of by an
/// invoice open on as_of, not in dispute (now, or on as_of) and not under a promise that still
/// runs, becomes a task — already superseded when a level of more days is reached too — with its
/// task_created event; open tasks of fewer days on the same invoices are superseded. Returns the
/// changes, and (in column 7, 8) the action and invoice of each new task.
const STEP: &str = concat!(
    r#"
WITH m AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) AS m(customer_type, region, ladder)),
cand AS (
    SELECT i.id, i.customer, i.doc_no, i.due_date, m.ladder,
           i.open_amount + coalesce((SELECT sum(al.amount) FROM credit.allocation al
                                      WHERE al.invoice_id = i.id AND al.applied_on > $1), 0) AS open_then
      FROM credit.invoice i
      JOIN credit.account a ON a.customer = i.customer
      JOIN m ON m.customer_type IS NOT DISTINCT FROM a.customer_type AND m.region IS NOT DISTINCT FROM a.region
     WHERE i.id IN (SELECT x.id FROM credit.invoice x WHERE x.open_amount > 0
                    UNION SELECT x.id FROM credit.invoice x WHERE x.last_applied_on > $1)
       AND i.doc_date <= $1
       AND NOT i.disputed
       AND NOT EXISTS (SELECT 1 FROM credit.invoice_dispute d WHERE d.invoice_id = i.id
                         AND d.opened_on <= $1 AND (d.resolved_on IS NULL OR d.resolved_on > $1))
       AND NOT EXISTS (SELECT 1 FROM credit.promise p WHERE p.invoice_id = i.id
                         AND p.made_on <= $1 AND p.promised_date >= $1 AND p.status <> 'broken')),
reached AS (
    SELECT c.*, l.level, l.action, l.channel, l.assignee_role, l.fee, l.days,
           greatest(max(l.days) OVER (PARTITION BY c.id),
                    (SELECT max(l2.days) FROM credit.collection_task t2
                       JOIN credit.dunning_level l2 ON l2.ladder = t2.ladder AND l2.level = t2.level
                      WHERE t2.invoice_id = c.id)) AS top_days
      FROM cand c JOIN credit.dunning_level l ON l.ladder = c.ladder AND NOT l.retired AND $1 - c.due_date >= l.days
     WHERE c.open_then > 0
       AND NOT EXISTS (SELECT 1 FROM credit.collection_task x WHERE x.invoice_id = c.id AND x.ladder = c.ladder AND x.level = l.level)),
new AS (
    INSERT INTO credit.collection_task (customer, invoice_id, doc_no, ladder, level, action, channel, assigned_to,
                                        fee, open_amount, days_past_due, created_for, due_on, status, closed_at)
    SELECT r.customer, r.id, r.doc_no, r.ladder, r.level, r.action, r.channel, r.assignee_role, r.fee,
           r.open_then, $1 - r.due_date, $1, $1,
           CASE WHEN r.days < r.top_days THEN 'superseded' ELSE 'open' END,
           CASE WHEN r.days < r.top_days THEN clock_timestamp() END
      FROM reached r ORDER BY r.customer, r.id, r.level
    ON CONFLICT DO NOTHING
    RETURNING *),
"#,
    task_created_events!(),
    r#",
top AS (SELECT n.invoice_id, max(l.days) AS days FROM new n
          JOIN credit.dunning_level l ON l.ladder = n.ladder AND l.level = n.level GROUP BY n.invoice_id),
superseded AS (
    UPDATE credit.collection_task t SET status = 'superseded', closed_at = clock_timestamp()
      FROM top, credit.dunning_level l
     WHERE t.invoice_id = top.invoice_id AND t.status = 'open' AND t.level IS NOT NULL
       AND l.ladder = t.ladder AND l.level = t.level AND l.days < top.days
    RETURNING t.id, t.customer, t.doc_no, t.level)
SELECT 'task_created', n.customer, n.doc_no, n.level, n.id,
       "#,
    task_detail!(),
    r#", n.action, n.invoice_id, 1 AS o
  FROM new n
UNION ALL
SELECT 'task_superseded', n.customer, n.doc_no, n.level, n.id, NULL, NULL, NULL, 2 FROM new n WHERE n.status = 'superseded'
UNION ALL
SELECT 'task_superseded', s.customer, s.doc_no, s.level, s.id, NULL, NULL, NULL, 2 FROM superseded s
ORDER BY 9, 5
"#
);

fn run(as_of: Date) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    internal::scope(|| {
        Spi::connect_mut(|c| {
            // One run at a time: a second concurrent run waits, then finds the work done. The lock
            // is on a table nobody else has privileges on (an advisory key anyone could hold).
            let lock_table = c
                .update("SELECT pg_catalog.to_regclass('credit.collections_lock') IS NOT NULL", Some(1), &[])
                .or_raise()
                .first()
                .get_one::<bool>()
                .or_raise()
                .unwrap_or(false);
            // (A database still on an older version's SQL has no lock table: its advisory key.)
            let lock = if lock_table {
                "LOCK TABLE credit.collections_lock IN EXCLUSIVE MODE"
            } else {
                "SELECT pg_catalog.pg_advisory_xact_lock(1885823858, 1)"
            };
            c.update(lock, None, &[]).or_raise();
            promises(c, as_of, &mut out);

            let rules = rules(c);
            let mut holds: Vec<i64> = Vec::new();
            let mut legal: Vec<i64> = Vec::new();
            for r in c
                .update(
                    STEP,
                    None,
                    &[as_of.into(), rules.types.clone().into(), rules.regions.clone().into(), rules.ladders.clone().into()],
                )
                .or_raise()
            {
                match r.get::<String>(7).or_raise().as_deref() {
                    Some("hold") => holds.push(r.get::<i64>(8).or_raise().expect("invoice")),
                    Some("legal") => legal.push(r.get::<i64>(8).or_raise().expect("invoice")),
                    _ => {}
                }
                out.push(change_row(&r));
            }

            // Tasks of invoices settled since are resolved (a run for a past date may have just
            // replayed tasks of invoices paid later).
            for r in c
                .update(
                    "UPDATE credit.collection_task t SET status = 'resolved', closed_at = clock_timestamp() \
                       FROM credit.invoice i \
                      WHERE i.id = t.invoice_id AND t.status = 'open' AND i.open_amount = 0 \
                     RETURNING 'task_resolved', t.customer, t.doc_no, t.level, t.id, 'invoice settled'",
                    None,
                    &[],
                )
                .or_raise()
            {
                out.push(change_row(&r));
            }

            // Hold: stop shipments, for invoices still open and undisputed now. Only an active
            // account is put on hold; a person's hold or a blacklisting stays as it is.
            if !holds.is_empty() {
                reason(c, "collections: an invoice reached the hold level of the dunning ladder");
                for r in c
                    .update(
                        "WITH cause AS (SELECT DISTINCT ON (i.customer) i.customer, i.doc_no, $2 - i.due_date AS days \
                                          FROM credit.invoice i \
                                         WHERE i.id = ANY($1) AND i.open_amount > 0 AND NOT i.disputed \
                                         ORDER BY i.customer, i.due_date, i.doc_no), \
                              held AS (UPDATE credit.account a SET status = 'hold', collection_hold_since = $2 \
                                         FROM cause WHERE a.customer = cause.customer AND a.status = 'active' \
                                       RETURNING a.customer) \
                         SELECT 'account_held', cause.customer, cause.doc_no, NULL::int, NULL::bigint, cause.days || ' days overdue' \
                           FROM cause JOIN held USING (customer) ORDER BY cause.customer",
                        None,
                        &[holds.into(), as_of.into()],
                    )
                    .or_raise()
                {
                    out.push(change_row(&r));
                }
                reason(c, "");
            }

            // Legal referral: the invoice and the account are marked; the policy may blacklist.
            if !legal.is_empty() {
                let referred: Vec<Change> = c
                    .update(
                        "WITH r AS (UPDATE credit.invoice i SET legal_referred_on = $2 \
                                     WHERE i.id = ANY($1) AND i.open_amount > 0 AND NOT i.disputed AND i.legal_referred_on IS NULL \
                                    RETURNING i.customer, i.doc_no), \
                              a AS (UPDATE credit.account a SET legal_referred_on = coalesce(a.legal_referred_on, $2) \
                                     WHERE a.customer IN (SELECT customer FROM r)), \
                              e AS (INSERT INTO credit.event (kind, customer, reason, after, acting_as) \
                                    SELECT 'legal_referral', r.customer, 'collections: dunning ladder reached legal referral', \
                                           jsonb_build_object('doc_no', r.doc_no, 'referred_on', $2::date), credit._caller() \
                                      FROM r ORDER BY r.customer, r.doc_no) \
                         SELECT 'legal_referral', r.customer, r.doc_no, NULL::int, NULL::bigint, NULL::text \
                           FROM r ORDER BY r.customer, r.doc_no",
                        None,
                        &[legal.into(), as_of.into()],
                    )
                    .or_raise()
                    .map(|r| change_row(&r))
                    .collect();
                let customers: Vec<String> = referred.iter().map(|r| r.1.clone()).collect();
                out.extend(referred);
                if rules.blacklist_on_legal.iter().any(|b| *b) && !customers.is_empty() {
                    for r in c
                        .update(
                            "WITH m AS (SELECT * FROM unnest($2::text[], $3::text[], $4::boolean[]) AS m(customer_type, region, blacklist)), \
                                  due AS MATERIALIZED (SELECT a.customer FROM credit.account a \
                                          JOIN m ON m.customer_type IS NOT DISTINCT FROM a.customer_type \
                                                AND m.region IS NOT DISTINCT FROM a.region \
                                         WHERE a.customer = ANY($1) AND m.blacklist AND a.status <> 'blacklisted' \
                                         ORDER BY a.customer) \
                             SELECT 'account_blacklisted', due.customer, NULL::text, NULL::int, NULL::bigint, \
                                    'policy: blacklist on legal referral' \
                               FROM due, LATERAL credit._set_status(due.customer, 'policy: legal referral by collections', 'blacklisted') \
                              ORDER BY due.customer",
                            None,
                            &[customers.into(), rules.types.into(), rules.regions.into(), rules.blacklist_on_legal.into()],
                        )
                        .or_raise()
                    {
                        out.push(change_row(&r));
                    }
                }
            }
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
    crate::roles::require("manager", "running collections");
    let as_of = input::not_future(as_of, "as_of");
    TableIterator::new(run(as_of))
}

/// Ends temporary limits whose last day is before as_of (they already lapse by themselves in every
/// check; this clears them from the account and records it).
fn expire_temporary_limits(as_of: Date) -> i64 {
    internal::scope(|| {
        Spi::connect_mut(|c| {
            reason(c, "temporary limit expired");
            let n = c
                .update(
                    "UPDATE credit.account SET temporary_limit = NULL, temporary_limit_until = NULL \
                     WHERE temporary_limit_until < $1 RETURNING 1",
                    None,
                    &[as_of.into()],
                )
                .or_raise()
                .len() as i64;
            reason(c, "");
            n
        })
    })
}

#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _expire_temporary_limits(as_of: Date) -> i64 {
    crate::roles::require_internal("credit._expire_temporary_limits");
    expire_temporary_limits(as_of)
}

fn refresh_oldest_due(c: &mut SpiClient<'_>, customer: &str) {
    c.update(
        concat!("UPDATE credit.account SET oldest_open_due = ", crate::ledger::oldest_open_due!(), " WHERE customer = $1"),
        None,
        &[customer.into()],
    )
    .or_raise();
}

fn business_date(d: Option<Date>, arg: &str, not_before: Date) -> Date {
    let d = input::not_future(d, arg);
    if d < not_before {
        error::invalid(format!("{arg} {d} is before {not_before}"))
    }
    d
}

/// Opens a dispute: the invoice leaves dunning (its open tasks are cancelled) and the overdue rule
/// until the dispute is resolved. Returns the dispute id.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn dispute(
    customer: Option<&str>,
    doc_no: Option<&str>,
    reason: Option<&str>,
    disputed_on: default!(Option<Date>, "CURRENT_DATE"),
) -> i64 {
    crate::roles::require("clerk", "opening a dispute");
    let customer = input::text(customer, "customer");
    let doc_no = input::text(doc_no, "doc_no");
    let why = input::text(reason, "reason");
    let id = internal::scope(|| {
        Spi::connect_mut(|c| {
            ledger::lock_account(c, customer);
            let inv = ledger::find_invoice(c, customer, doc_no);
            let (invoice, open) = (inv.id, input::numeric(inv.open));
            let on = business_date(disputed_on, "disputed_on", inv.doc_date);
            if inv.open.is_zero() {
                error::raise(
                    Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!("invoice \"{doc_no}\" of customer \"{customer}\" is settled"),
                    Some("Only an invoice with an open amount can be disputed.".into()),
                    None,
                )
            }
            let open_dispute = c
                .update("SELECT 1 FROM credit.invoice_dispute WHERE invoice_id = $1 AND resolved_on IS NULL", Some(1), &[invoice.into()])
                .or_raise();
            if !open_dispute.is_empty() {
                error::raise(
                    Code::ERRCODE_UNIQUE_VIOLATION,
                    format!("invoice \"{doc_no}\" of customer \"{customer}\" is already in dispute"),
                    None,
                    Some("Resolve it with credit.resolve_dispute() first."),
                )
            }
            let id: i64 = c
                .update(
                    "INSERT INTO credit.invoice_dispute (customer, invoice_id, doc_no, reason, opened_on, opened_by) \
                     VALUES ($1, $2, $3, $4, $5, credit._caller()) RETURNING id",
                    None,
                    &[customer.into(), invoice.into(), doc_no.into(), why.into(), on.into()],
                )
                .or_raise()
                .first()
                .get_one()
                .or_raise()
                .expect("id");
            c.update("UPDATE credit.invoice SET disputed = true WHERE id = $1", None, &[invoice.into()]).or_raise();
            c.update(
                "UPDATE credit.collection_task SET status = 'cancelled', outcome = 'disputed', closed_at = clock_timestamp() \
                 WHERE invoice_id = $1 AND status = 'open'",
                None,
                &[invoice.into()],
            )
            .or_raise();
            refresh_oldest_due(c, customer);
            c.update(
                "INSERT INTO credit.event (kind, customer, reason, after, acting_as) \
                 VALUES ('dispute_opened', $1, $3, jsonb_build_object('dispute_id', $4::bigint, 'doc_no', $2::text, \
                         'open_amount', $5::numeric, 'opened_on', $6::date), credit._caller())",
                None,
                &[customer.into(), doc_no.into(), why.into(), id.into(), open.into(), on.into()],
            )
            .or_raise();
            id
        })
    });
    lift_holds(Some(customer));
    crate::hold::release_fitting(Some(customer));
    id
}

/// Resolves an invoice's open dispute; dunning and the overdue rule apply to it again (a credit
/// note for the disputed part is posted separately with credit.post_credit_note).
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn resolve_dispute(
    customer: Option<&str>,
    doc_no: Option<&str>,
    resolution: Option<&str>,
    resolved_on: default!(Option<Date>, "CURRENT_DATE"),
) -> i64 {
    crate::roles::require("manager", "resolving a dispute");
    let customer = input::text(customer, "customer");
    let doc_no = input::text(doc_no, "doc_no");
    let resolution = input::text(resolution, "resolution");
    internal::scope(|| {
        Spi::connect_mut(|c| {
            ledger::lock_account(c, customer);
            let invoice = ledger::find_invoice(c, customer, doc_no).id;
            let t = c
                .update(
                    "SELECT id, opened_on FROM credit.invoice_dispute WHERE invoice_id = $1 AND resolved_on IS NULL FOR UPDATE",
                    Some(1),
                    &[invoice.into()],
                )
                .or_raise();
            if t.is_empty() {
                error::raise(
                    Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!("invoice \"{doc_no}\" of customer \"{customer}\" is not in dispute"),
                    None,
                    None,
                )
            }
            let (id, opened_on): (Option<i64>, Option<Date>) = t.first().get_two().or_raise();
            let (id, opened_on) = (id.expect("id"), opened_on.expect("opened_on"));
            let on = business_date(resolved_on, "resolved_on", opened_on);
            c.update(
                "UPDATE credit.invoice_dispute SET resolved_on = $2, resolved_by = credit._caller(), resolution = $3 WHERE id = $1",
                None,
                &[id.into(), on.into(), resolution.into()],
            )
            .or_raise();
            c.update("UPDATE credit.invoice SET disputed = false WHERE id = $1", None, &[invoice.into()]).or_raise();
            refresh_oldest_due(c, customer);
            c.update(
                "INSERT INTO credit.event (kind, customer, reason, after, acting_as) \
                 VALUES ('dispute_resolved', $1, $3, jsonb_build_object('dispute_id', $4::bigint, 'doc_no', $2::text, \
                         'resolved_on', $5::date), credit._caller())",
                None,
                &[customer.into(), doc_no.into(), resolution.into(), id.into(), on.into()],
            )
            .or_raise();
            id
        })
    })
}
