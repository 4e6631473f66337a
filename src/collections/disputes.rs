//! Disputes: a disputed invoice leaves dunning and the overdue rule until the dispute is resolved.
use crate::collections::after_settlement;
use crate::pg::args;
use crate::pg::error::{self, Code, OrRaise, Required};
use crate::pg::numeric::numeric;
use crate::privileges;
use crate::store::events::{self, Event};
use crate::store::{self, account, ledger};
use pgrx::datum::Date;
use pgrx::prelude::*;

/// A business date: not in the future, not before `not_before`.
fn business_date(d: Option<Date>, arg: &str, not_before: Date) -> Date {
    let d = args::not_future(d, arg);
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
    privileges::require("clerk", "opening a dispute");
    crate::pg::citus::refuse_on_worker("Opening a dispute");
    let customer = args::text(customer, "customer");
    let doc_no = args::text(doc_no, "doc_no");
    let why = args::text(reason, "reason");
    let id = store::writing(|| {
        Spi::connect_mut(|c| {
            account::lock(c, customer);
            let inv = ledger::find_invoice(c, customer, doc_no);
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
                .update(
                    "SELECT 1 FROM credit.invoice_dispute WHERE customer = $2 AND invoice_id = $1 AND resolved_on IS NULL",
                    Some(1),
                    &[inv.id.into(), customer.into()],
                )
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
                    &[customer.into(), inv.id.into(), doc_no.into(), why.into(), on.into()],
                )
                .or_raise()
                .first()
                .get_one()
                .or_raise()
                .required("new dispute id");
            ledger::set_disputed(c, customer, inv.id, true);
            // (The time as a value: Citus refuses a volatile function in an UPDATE's SET.)
            let now = c
                .select("SELECT pg_catalog.clock_timestamp()", Some(1), &[])
                .or_raise()
                .first()
                .get_one::<pgrx::datum::TimestampWithTimeZone>()
                .or_raise();
            c.update(
                "UPDATE credit.collection_task SET status = 'cancelled', outcome = 'disputed', closed_at = $3 \
                 WHERE customer = $2 AND invoice_id = $1 AND status = 'open'",
                None,
                &[inv.id.into(), customer.into(), now.into()],
            )
            .or_raise();
            account::refresh_oldest_due(c, customer);
            events::append(
                c,
                Event {
                    kind: "dispute_opened",
                    customer,
                    reason: Some(why),
                    after: vec![
                        ("dispute_id", id.into()),
                        ("doc_no", doc_no.into()),
                        ("open_amount", numeric(inv.open).into()),
                        ("opened_on", on.into()),
                    ],
                    json: vec![],
                },
            );
            id
        })
    });
    after_settlement(customer);
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
    privileges::require("manager", "resolving a dispute");
    crate::pg::citus::refuse_on_worker("Resolving a dispute");
    let customer = args::text(customer, "customer");
    let doc_no = args::text(doc_no, "doc_no");
    let resolution = args::text(resolution, "resolution");
    store::writing(|| {
        Spi::connect_mut(|c| {
            account::lock(c, customer);
            let invoice = ledger::find_invoice(c, customer, doc_no).id;
            let t = c
                .update(
                    "SELECT id, opened_on FROM credit.invoice_dispute \
                     WHERE customer = $2 AND invoice_id = $1 AND resolved_on IS NULL FOR UPDATE",
                    Some(1),
                    &[invoice.into(), customer.into()],
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
            let (id, opened_on) = (id.required("dispute id"), opened_on.required("dispute opened_on"));
            let on = business_date(resolved_on, "resolved_on", opened_on);
            c.update(
                "UPDATE credit.invoice_dispute SET resolved_on = $2, resolved_by = credit._caller(), resolution = $3 \
                 WHERE customer = $4 AND id = $1",
                None,
                &[id.into(), on.into(), resolution.into(), customer.into()],
            )
            .or_raise();
            ledger::set_disputed(c, customer, invoice, false);
            account::refresh_oldest_due(c, customer);
            events::append(
                c,
                Event {
                    kind: "dispute_resolved",
                    customer,
                    reason: Some(resolution),
                    after: vec![("dispute_id", id.into()), ("doc_no", doc_no.into()), ("resolved_on", on.into())],
                    json: vec![],
                },
            );
            id
        })
    })
}
