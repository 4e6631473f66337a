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

/// Advisory lock key class 'pgcr'; 1 serialises collection runs (2 is the outbox's).
const LOCK_CLASS: i32 = 1885823858;
const LOCK_COLLECTIONS: i32 = 1;

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

/// Ladder of each (customer_type, region) present among the accounts, resolved by the policies.
fn ladders(c: &mut SpiClient<'_>) -> (Vec<Option<String>>, Vec<Option<String>>, Vec<String>) {
    let ps = crate::policy::load_policies(c);
    let subjects: Vec<(Option<String>, Option<String>)> = c
        .update("SELECT DISTINCT customer_type, region FROM credit.account", None, &[])
        .or_raise()
        .map(|r| (r.get(1).or_raise(), r.get(2).or_raise()))
        .collect();
    let mut types = Vec::new();
    let mut regions = Vec::new();
    let mut names = Vec::new();
    for (t, r) in subjects {
        let e = policy::resolve(&ps, &Subject { customer_type: t.as_deref(), region: r.as_deref(), product_category: None });
        types.push(t);
        regions.push(r);
        names.push(e.dunning_ladder);
    }
    (types, regions, names)
}

fn ids(t: pgrx::spi::SpiTupleTable<'_>, col: usize) -> Vec<i64> {
    t.map(|r| r.get::<i64>(col).or_raise().expect("id")).collect()
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
    // Escalation of a broken promise: to the ladder's first escalation level's role.
    let escalations = ids(
        c.update(
            "INSERT INTO credit.collection_task (customer, invoice_id, doc_no, ladder, level, promise_id, action, channel, \
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
             ON CONFLICT DO NOTHING RETURNING id",
            None,
            &[broken.into(), as_of.into()],
        )
        .or_raise(),
        1,
    );
    task_events(c, &escalations);
    for (id, customer, doc_no, status) in decided {
        out.push((format!("promise_{status}"), customer, Some(doc_no), None, None, Some(format!("promise {id}"))));
    }
    for id in escalations {
        out.push(task_change(c, id));
    }
}

fn task_events(c: &mut SpiClient<'_>, ids: &[i64]) {
    if ids.is_empty() {
        return;
    }
    c.update(
        "INSERT INTO credit.event (kind, customer, after, acting_as) \
         SELECT 'task_created', t.customer, \
                jsonb_build_object('task_id', t.id, 'doc_no', t.doc_no, 'ladder', t.ladder, 'level', t.level, \
                                   'promise_id', t.promise_id, 'action', t.action, 'channel', t.channel, \
                                   'assigned_to', t.assigned_to, 'open_amount', t.open_amount, \
                                   'days_past_due', t.days_past_due, 'created_for', t.created_for), credit._caller() \
           FROM credit.collection_task t WHERE t.id = ANY($1) ORDER BY t.id",
        None,
        &[ids.to_vec().into()],
    )
    .or_raise();
}

fn task_change(c: &mut SpiClient<'_>, id: i64) -> Change {
    let t = c
        .update(
            "SELECT customer, doc_no, level, action || ' by ' || channel || coalesce(' for ' || assigned_to, '') \
             FROM credit.collection_task WHERE id = $1",
            Some(1),
            &[id.into()],
        )
        .or_raise();
    let r = t.first();
    (
        "task_created".into(),
        r.get::<String>(1).or_raise().expect("customer"),
        r.get(2).or_raise(),
        r.get(3).or_raise(),
        Some(id),
        r.get(4).or_raise(),
    )
}

fn run(as_of: Date) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    internal::scope(|| {
        Spi::connect_mut(|c| {
            // One run at a time: a second concurrent run waits, then finds the work done.
            c.update("SELECT pg_catalog.pg_advisory_xact_lock($1, $2)", None, &[LOCK_CLASS.into(), LOCK_COLLECTIONS.into()])
                .or_raise();
            promises(c, as_of, &mut out);

            // Levels reached on as_of by invoices open on as_of, not in dispute (now, or on as_of)
            // and not under a promise that still runs.
            let (types, regions, names) = ladders(c);
            let created = ids(
                c.update(
                    "WITH m AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) AS m(customer_type, region, ladder)), \
                          cand AS ( \
                            SELECT i.id, i.customer, i.doc_no, i.due_date, m.ladder, \
                                   i.open_amount + coalesce((SELECT sum(al.amount) FROM credit.allocation al \
                                                              WHERE al.invoice_id = i.id AND al.applied_on > $1), 0) AS open_then \
                              FROM credit.invoice i \
                              JOIN credit.account a ON a.customer = i.customer \
                              JOIN m ON m.customer_type IS NOT DISTINCT FROM a.customer_type AND m.region IS NOT DISTINCT FROM a.region \
                             WHERE i.id IN (SELECT x.id FROM credit.invoice x WHERE x.open_amount > 0 \
                                            UNION SELECT x.id FROM credit.invoice x WHERE x.last_applied_on > $1) \
                               AND i.doc_date <= $1 \
                               AND NOT i.disputed \
                               AND NOT EXISTS (SELECT 1 FROM credit.invoice_dispute d WHERE d.invoice_id = i.id \
                                                 AND d.opened_on <= $1 AND (d.resolved_on IS NULL OR d.resolved_on > $1)) \
                               AND NOT EXISTS (SELECT 1 FROM credit.promise p WHERE p.invoice_id = i.id \
                                                 AND p.made_on <= $1 AND p.promised_date >= $1 AND p.status <> 'broken')) \
                     INSERT INTO credit.collection_task (customer, invoice_id, doc_no, ladder, level, action, channel, assigned_to, \
                                                        fee, open_amount, days_past_due, created_for, due_on) \
                     SELECT c.customer, c.id, c.doc_no, c.ladder, l.level, l.action, l.channel, l.assignee_role, l.fee, \
                            c.open_then, $1 - c.due_date, $1, $1 \
                       FROM cand c JOIN credit.dunning_level l ON l.ladder = c.ladder AND NOT l.retired AND $1 - c.due_date >= l.days \
                      WHERE c.open_then > 0 \
                        AND NOT EXISTS (SELECT 1 FROM credit.collection_task x \
                                         WHERE x.invoice_id = c.id AND x.ladder = c.ladder AND x.level = l.level) \
                      ORDER BY c.customer, c.id, l.level \
                     ON CONFLICT DO NOTHING RETURNING id",
                    None,
                    &[as_of.into(), types.into(), regions.into(), names.into()],
                )
                .or_raise(),
                1,
            );
            let mut created = created;
            created.sort_unstable();
            task_events(c, &created);
            for &id in &created {
                out.push(task_change(c, id));
            }
            // Tasks of invoices settled since are resolved (a run for a past date may have just
            // replayed tasks of invoices paid later).
            for r in c
                .update(
                    "UPDATE credit.collection_task t SET status = 'resolved', closed_at = clock_timestamp() \
                       FROM credit.invoice i \
                      WHERE i.id = t.invoice_id AND t.status = 'open' AND i.open_amount = 0 \
                     RETURNING t.id, t.customer, t.doc_no, t.level",
                    None,
                    &[],
                )
                .or_raise()
            {
                out.push((
                    "task_resolved".into(),
                    r.get::<String>(2).or_raise().expect("customer"),
                    r.get(3).or_raise(),
                    r.get(4).or_raise(),
                    r.get(1).or_raise(),
                    Some("invoice settled".into()),
                ));
            }

            if created.is_empty() {
                return;
            }

            // A higher level supersedes open tasks of lower days on the same invoice.
            for r in c
                .update(
                    "WITH top AS (SELECT t.invoice_id, max(l.days) AS days FROM credit.collection_task t \
                                   JOIN credit.dunning_level l ON l.ladder = t.ladder AND l.level = t.level \
                                  WHERE t.id = ANY($1) GROUP BY t.invoice_id) \
                     UPDATE credit.collection_task t SET status = 'superseded', closed_at = clock_timestamp() \
                       FROM top, credit.dunning_level l \
                      WHERE t.invoice_id = top.invoice_id AND t.status = 'open' AND t.level IS NOT NULL \
                        AND l.ladder = t.ladder AND l.level = t.level AND l.days < top.days \
                     RETURNING t.id, t.customer, t.doc_no, t.level",
                    None,
                    &[created.clone().into()],
                )
                .or_raise()
            {
                out.push((
                    "task_superseded".into(),
                    r.get::<String>(2).or_raise().expect("customer"),
                    r.get(3).or_raise(),
                    r.get(4).or_raise(),
                    r.get(1).or_raise(),
                    None,
                ));
            }

            // Hold: stop shipments. Only an active account is put on hold; a person's hold or a
            // blacklisting stays as it is.
            let holds: Vec<(String, String, i32)> = c
                .update(
                    "SELECT DISTINCT ON (t.customer) t.customer, t.doc_no, t.days_past_due \
                       FROM credit.collection_task t JOIN credit.invoice i ON i.id = t.invoice_id \
                      WHERE t.id = ANY($1) AND t.action = 'hold' AND i.open_amount > 0 AND NOT i.disputed \
                      ORDER BY t.customer, t.days_past_due DESC, t.doc_no",
                    None,
                    &[created.clone().into()],
                )
                .or_raise()
                .map(|r| {
                    (
                        r.get::<String>(1).or_raise().expect("customer"),
                        r.get::<String>(2).or_raise().expect("doc_no"),
                        r.get::<i32>(3).or_raise().expect("days"),
                    )
                })
                .collect();
            for (customer, doc_no, days) in holds {
                reason(c, &format!("collections: invoice {doc_no} is {days} days overdue"));
                let t = c
                    .update(
                        "UPDATE credit.account SET status = 'hold', collection_hold_since = $2 \
                         WHERE customer = $1 AND status = 'active' RETURNING 1",
                        None,
                        &[customer.as_str().into(), as_of.into()],
                    )
                    .or_raise();
                if !t.is_empty() {
                    out.push(("account_held".into(), customer, Some(doc_no), None, None, Some(format!("{days} days overdue"))));
                }
            }
            reason(c, "");

            // Legal referral: the invoice and the account are marked; the policy may blacklist.
            let legal: Vec<(String, String, i64)> = c
                .update(
                    "WITH r AS (UPDATE credit.invoice i SET legal_referred_on = $2 \
                                 FROM credit.collection_task t \
                                WHERE t.id = ANY($1) AND t.action = 'legal' AND i.id = t.invoice_id \
                                  AND i.open_amount > 0 AND NOT i.disputed AND i.legal_referred_on IS NULL \
                                RETURNING i.customer, i.doc_no, t.id AS task_id) \
                     SELECT customer, doc_no, task_id FROM r ORDER BY customer, doc_no",
                    None,
                    &[created.clone().into(), as_of.into()],
                )
                .or_raise()
                .map(|r| {
                    (
                        r.get::<String>(1).or_raise().expect("customer"),
                        r.get::<String>(2).or_raise().expect("doc_no"),
                        r.get::<i64>(3).or_raise().expect("task"),
                    )
                })
                .collect();
            for (customer, doc_no, task) in legal {
                c.update(
                    "UPDATE credit.account SET legal_referred_on = coalesce(legal_referred_on, $2) WHERE customer = $1",
                    None,
                    &[customer.as_str().into(), as_of.into()],
                )
                .or_raise();
                c.update(
                    "INSERT INTO credit.event (kind, customer, reason, after, acting_as) \
                     VALUES ('legal_referral', $1, 'collections: dunning ladder reached legal referral', \
                             jsonb_build_object('doc_no', $2::text, 'task_id', $3::bigint, 'referred_on', $4::date), credit._caller())",
                    None,
                    &[customer.as_str().into(), doc_no.as_str().into(), task.into(), as_of.into()],
                )
                .or_raise();
                out.push(("legal_referral".into(), customer.clone(), Some(doc_no.clone()), None, Some(task), None));
                let blacklisted = c
                    .update(
                        "SELECT credit._set_status(a.customer, $2, 'blacklisted') FROM credit.account a \
                         WHERE a.customer = $1 AND a.status <> 'blacklisted' \
                           AND (SELECT e.blacklist_on_legal FROM credit.effective_policy(a.customer) e)",
                        None,
                        &[customer.as_str().into(), format!("policy: legal referral of invoice {doc_no}").into()],
                    )
                    .or_raise();
                if !blacklisted.is_empty() {
                    out.push(("account_blacklisted".into(), customer, Some(doc_no), None, None, Some("policy: blacklist on legal referral".into())));
                }
            }
        })
    });
    for customer in lift_holds(None) {
        out.push(("hold_lifted".into(), customer, None, None, None, Some("overdue invoices paid".into())));
    }
    out
}

fn check_as_of(as_of: Option<Date>) -> Date {
    let as_of = input::date(as_of, "as_of");
    let today = Spi::get_one::<Date>("SELECT CURRENT_DATE").or_raise().expect("current_date");
    if as_of > today {
        error::raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("as_of {as_of} is in the future"),
            Some("Collections act on what is overdue today or was overdue on a past date.".into()),
            None,
        )
    }
    as_of
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
    let as_of = check_as_of(as_of);
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

#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn _expire_temporary_limits(as_of: Date) -> i64 {
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
    let d = input::date(d, arg);
    let today = Spi::get_one::<Date>("SELECT CURRENT_DATE").or_raise().expect("current_date");
    if d > today || d < not_before {
        error::invalid(format!("{arg} {d} is outside {not_before} to today"))
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
