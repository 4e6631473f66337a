//! Posting to the receivables ledger: invoices, payments, credit notes and write-offs. Each posting
//! locks the customer's account row first, so postings and guarded orders of one customer are
//! serialised and the maintained counters move in the same transaction as the documents. Invoices
//! and payments are facts: they are never refused for being over the limit.
use crate::pg::args;
use crate::pg::citus;
use crate::pg::error::{self, Code, OrRaise, Required};
use crate::pg::numeric::numeric;
use crate::store::events::{self, Event};
use crate::store::ledger::{self as documents, SettlementKind};
use crate::store::{self, account};
use crate::{collections, policy, privileges};
use credit_core::allocation;
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Posts an invoice (a receivable). The due date defaults to doc_date + the account's terms.
/// Unapplied credit the customer holds (prepayments, credit notes) is applied to it at once.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn post_invoice(
    customer: Option<&str>,
    doc_no: Option<&str>,
    amount: Option<AnyNumeric>,
    doc_date: default!(Option<Date>, "CURRENT_DATE"),
    due_date: default!(Option<Date>, "NULL"),
    product_category: default!(Option<&str>, "NULL"),
) -> i64 {
    citus::refuse_on_worker("Posting an invoice");
    privileges::require("clerk", "posting an invoice");
    let customer = args::text(customer, "customer");
    let doc_no = args::text(doc_no, "doc_no");
    let amount = args::positive_amount(amount.as_ref(), "amount");
    let doc_date = args::date(doc_date, "doc_date");
    let due_date = args::optional_date(due_date, "due_date");
    if let Some(due) = due_date {
        if due < doc_date {
            error::invalid(format!("due_date {due} is before doc_date {doc_date}"))
        }
    }
    Spi::connect_mut(|c| {
        account::lock(c, customer);
        // The terms in force on the invoice's own date (a promotion's window, say).
        let terms = policy::terms(c, customer, amount, product_category, doc_date);
        documents::refuse_duplicate_invoice(c, customer, doc_no);
        let source = due_date.is_none().then_some(terms.rule.as_str());
        let id = documents::insert_invoice(
            c,
            &documents::NewInvoice {
                customer,
                doc_no,
                doc_date,
                due_date,
                amount,
                terms_days: terms.days,
                terms_source: source,
            },
        );
        // Unapplied credit, oldest first.
        let credits = documents::unapplied_credits(c, customer);
        let out = allocation::allocate(amount, &credits);
        let mut applied = Decimal::ZERO;
        for a in &out.allocations {
            documents::allocate(c, customer, a.id, id, a.amount, doc_date, true);
            applied += a.amount;
        }
        account::move_receivables(c, customer, amount - applied, -applied);
        id
    })
}

/// Shared by payments and credit notes: apply to the named invoice, or oldest due first; what is
/// left stays as unapplied credit, which lowers exposure and is applied to the next invoices.
fn settle(
    kind: SettlementKind,
    customer: &str,
    doc_no: Option<&str>,
    amount: Decimal,
    on: Date,
    apply_to: Option<&str>,
    reason: Option<&str>,
) -> i64 {
    let id = Spi::connect_mut(|c| {
        account::lock(c, customer);
        if let Some(doc) = doc_no {
            documents::refuse_duplicate_settlement(c, kind, customer, doc);
        }
        let items = match apply_to {
            Some(inv) => {
                let i = documents::find_invoice(c, customer, inv);
                vec![allocation::OpenItem { id: i.id, open: i.open }]
            }
            None => documents::open_invoices(c, customer),
        };
        let out = allocation::allocate(amount, &items);
        let id = documents::insert_settlement(c, customer, kind, doc_no, on, amount, out.remainder, reason);
        let mut applied = Decimal::ZERO;
        for a in &out.allocations {
            documents::allocate(c, customer, id, a.id, a.amount, on, false);
            applied += a.amount;
        }
        account::move_receivables(c, customer, -applied, out.remainder);
        id
    });
    collections::after_settlement(customer);
    id
}

/// Posts a payment: to the named invoice, or oldest due first. An overpayment stays as unapplied
/// credit. `reference` (a bank reference, receipt number) is unique per customer when given.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn post_payment(
    customer: Option<&str>,
    amount: Option<AnyNumeric>,
    paid_on: default!(Option<Date>, "CURRENT_DATE"),
    apply_to: default!(Option<&str>, "NULL"),
    reference: default!(Option<&str>, "NULL"),
) -> i64 {
    citus::refuse_on_worker("Posting a payment");
    privileges::require("clerk", "posting a payment");
    let customer = args::text(customer, "customer");
    let amount = args::positive_amount(amount.as_ref(), "amount");
    let paid_on = args::date(paid_on, "paid_on");
    let apply_to = args::optional_text(apply_to, "apply_to");
    let reference = args::optional_text(reference, "reference");
    settle(SettlementKind::Payment, customer, reference, amount, paid_on, apply_to, None)
}

/// Posts a credit note (returns, price corrections): to the named invoice, or oldest due first;
/// any rest is unapplied credit.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn post_credit_note(
    customer: Option<&str>,
    doc_no: Option<&str>,
    amount: Option<AnyNumeric>,
    apply_to: default!(Option<&str>, "NULL"),
    doc_date: default!(Option<Date>, "CURRENT_DATE"),
    reason: default!(Option<&str>, "NULL"),
) -> i64 {
    citus::refuse_on_worker("Posting a credit note");
    privileges::require("clerk", "posting a credit note");
    let customer = args::text(customer, "customer");
    let doc_no = args::text(doc_no, "doc_no");
    let amount = args::positive_amount(amount.as_ref(), "amount");
    let apply_to = args::optional_text(apply_to, "apply_to");
    let doc_date = args::date(doc_date, "doc_date");
    settle(SettlementKind::CreditNote, customer, Some(doc_no), amount, doc_date, apply_to, reason)
}

/// Writes off (part of) an invoice's open amount as a bad debt; by default all of it.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn write_off(
    customer: Option<&str>,
    doc_no: Option<&str>,
    amount: default!(Option<AnyNumeric>, "NULL"),
    written_off_on: default!(Option<Date>, "CURRENT_DATE"),
    reason: default!(Option<&str>, "NULL"),
) -> i64 {
    citus::refuse_on_worker("Writing off");
    privileges::require("manager", "writing off");
    let customer = args::text(customer, "customer");
    let doc_no = args::text(doc_no, "doc_no");
    let requested = amount.as_ref().map(|a| args::positive_amount(Some(a), "amount"));
    let on = args::date(written_off_on, "written_off_on");
    let id = Spi::connect_mut(|c| {
        account::lock(c, customer);
        let inv = documents::find_invoice(c, customer, doc_no);
        if inv.open.is_zero() {
            error::invalid(format!("invoice \"{doc_no}\" of customer \"{customer}\" has nothing open to write off"))
        }
        let amount = requested.unwrap_or(inv.open);
        if amount > inv.open {
            error::raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("write-off of {amount} exceeds the open amount {} of invoice \"{doc_no}\"", inv.open),
                None,
                None,
            )
        }
        let id = documents::insert_settlement(
            c,
            customer,
            SettlementKind::WriteOff,
            None,
            on,
            amount,
            Decimal::ZERO,
            reason,
        );
        documents::allocate(c, customer, id, inv.id, amount, on, false);
        account::move_receivables(c, customer, -amount, Decimal::ZERO);
        // Policy: a bad debt may blacklist the customer. Read first, then changed by a call of its
        // own: on Citus no function that queries distributed tables runs inside a shard's query.
        let mut read = |sql: &str| {
            c.update(sql, Some(1), &[customer.into()]).or_raise().first().get_one::<bool>().or_raise().unwrap_or(false)
        };
        let blacklist = read("SELECT e.blacklist_on_write_off FROM credit.effective_policy($1) e")
            && read("SELECT a.status <> 'blacklisted' FROM credit.account a WHERE a.customer = $1");
        if blacklist {
            c.update(
                "SELECT credit._set_status($1, $2, 'blacklisted')",
                None,
                &[customer.into(), format!("policy: write-off of invoice {doc_no}").into()],
            )
            .or_raise();
        }
        id
    });
    collections::after_settlement(customer);
    id
}

/// Reverses a payment, credit note or write-off on a date (a bounced cheque, a posting error): a
/// reversal document that reopens, by negative allocations dated that day, exactly what the
/// settlement paid, and takes away what it left unapplied. Nothing is deleted or edited: as of
/// any earlier date the ledger reads as before. Returns the reversal's id.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn reverse_settlement(
    settlement_id: Option<i64>,
    reason: Option<&str>,
    reversed_on: default!(Option<Date>, "CURRENT_DATE"),
) -> i64 {
    citus::refuse_on_worker("Reversing a settlement");
    privileges::require("manager", "reversing a settlement");
    let Some(settlement_id) = settlement_id else { error::null_arg("settlement_id") };
    let reason = args::text(reason, "reason");
    let on = args::not_future(reversed_on, "reversed_on");
    // Exposure goes up: nothing is released; collections pick the reopened invoices up again.
    Spi::connect_mut(|c| {
        let Some(found) = documents::settlement(c, settlement_id, None) else {
            error::raise(
                Code::ERRCODE_FOREIGN_KEY_VIOLATION,
                format!("settlement {settlement_id} does not exist"),
                None,
                Some("credit.settlement lists payments, credit notes and write-offs with their ids."),
            )
        };
        // The lock order: the account row, then its documents.
        account::lock(c, &found.customer);
        let s = documents::settlement(c, settlement_id, Some(&found.customer)).required("settlement");
        refuse_reversal(settlement_id, &s, on);
        let (reversal, reopened_ar, reopened) = documents::reverse(c, settlement_id, &s, on, reason);
        account::move_receivables(c, &s.customer, reopened_ar, -s.unapplied);
        let kind = match s.kind {
            SettlementKind::Payment => "payment_reversed",
            SettlementKind::CreditNote => "credit_note_reversed",
            _ => "write_off_reversed",
        };
        events::append(
            c,
            Event {
                kind,
                customer: &s.customer,
                reason: Some(reason),
                after: vec![
                    ("reversal_id", reversal.into()),
                    ("settlement_id", settlement_id.into()),
                    ("doc_no", s.doc_no.as_deref().into()),
                    ("amount", numeric(s.amount).into()),
                    ("reversed_on", on.into()),
                ],
                json: vec![("reopened", reopened)],
            },
        );
        reversal
    })
}

/// 55000 or 22023 unless the settlement can be reversed on `on`.
fn refuse_reversal(id: i64, s: &documents::Settlement, on: Date) {
    if s.kind == SettlementKind::Cancellation {
        error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("settlement {id} is an invoice cancellation and cannot be reversed"),
            None,
            Some("Post the invoice again (credit.post_invoice) with a new number."),
        )
    }
    if let Some(when) = s.reversed_on {
        error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("{} {id} of customer \"{}\" was reversed on {when}", s.kind.label(), s.customer),
            None,
            None,
        )
    }
    let earliest = s.last_applied_on.map_or(s.doc_date, |l| if l > s.doc_date { l } else { s.doc_date });
    if on < earliest {
        error::raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("reversed_on {on} is before {earliest}, when {} {id} last counted", s.kind.label()),
            Some("A reversal undoes a settlement from its own date on; it cannot be dated before the settlement, or before the settlement's last application.".into()),
            None,
        )
    }
}

/// Cancels an invoice nothing has been applied to yet (a posting error, goods never delivered): a
/// cancellation document dated `cancelled_on` settles it in full; the invoice stays in the ledger
/// and reads as open until the day before. Returns the cancellation's settlement id.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cancel_invoice(
    customer: Option<&str>,
    doc_no: Option<&str>,
    reason: Option<&str>,
    cancelled_on: default!(Option<Date>, "CURRENT_DATE"),
) -> i64 {
    citus::refuse_on_worker("Cancelling an invoice");
    privileges::require("manager", "cancelling an invoice");
    let customer = args::text(customer, "customer");
    let doc_no = args::text(doc_no, "doc_no");
    let reason = args::text(reason, "reason");
    let on = args::not_future(cancelled_on, "cancelled_on");
    let id = Spi::connect_mut(|c| {
        account::lock(c, customer);
        let inv = documents::find_invoice(c, customer, doc_no);
        if inv.open != inv.amount {
            error::raise(
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("invoice \"{doc_no}\" of customer \"{customer}\" is partly or fully settled"),
                Some(format!(
                    "Open {} of {}; only an invoice nothing is applied to can be cancelled.",
                    inv.open, inv.amount
                )),
                Some("Reverse its payments first (credit.reverse_settlement), or post a credit note for it."),
            )
        }
        if inv.disputed {
            error::raise(
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("invoice \"{doc_no}\" of customer \"{customer}\" is in dispute"),
                None,
                Some("Resolve the dispute first (credit.resolve_dispute), then cancel the invoice."),
            )
        }
        if on < inv.doc_date {
            error::invalid(format!("cancelled_on {on} is before the invoice's date {}", inv.doc_date))
        }
        documents::refuse_duplicate_settlement(c, SettlementKind::Cancellation, customer, doc_no);
        let id = documents::insert_settlement(
            c,
            customer,
            SettlementKind::Cancellation,
            Some(doc_no),
            on,
            inv.amount,
            Decimal::ZERO,
            Some(reason),
        );
        documents::allocate(c, customer, id, inv.id, inv.amount, on, false);
        account::move_receivables(c, customer, -inv.amount, Decimal::ZERO);
        events::append(
            c,
            Event {
                kind: "invoice_cancelled",
                customer,
                reason: Some(reason),
                after: vec![
                    ("settlement_id", id.into()),
                    ("doc_no", doc_no.into()),
                    ("amount", numeric(inv.amount).into()),
                    ("cancelled_on", on.into()),
                ],
                json: vec![],
            },
        );
        id
    });
    collections::after_settlement(customer);
    id
}

crate::pg::entry::c_trigger!(
    _protect_ledger_wrapper,
    pg_finfo__protect_ledger_wrapper,
    "_protect_ledger",
    protect_ledger
);

/// BEFORE INSERT OR UPDATE OR DELETE on the ledger tables: they are facts, written only by the
/// posting functions. A superuser may INSERT (pg_restore does); corrections are new documents.
fn protect_ledger<'a>(trigger: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    let op = trigger.op().ok();
    let row = match op {
        Some(PgTriggerOperation::Delete) => trigger.old(),
        _ => trigger.new(),
    };
    // SAFETY: superuser() reads the current user's role.
    let restore_insert = matches!(op, Some(PgTriggerOperation::Insert)) && unsafe { pg_sys::superuser() };
    // On Citus a posting's statements reach the ledger's shards over Citus connections.
    // SAFETY: the trigger's relation is open for the call.
    let remote = || trigger.relation().is_ok_and(|rel| unsafe { store::is_remote_shard_write(rel.as_ptr()) });
    if store::is_writing() || restore_insert || remote() {
        return row.map(|r| r.into_owned());
    }
    let table = trigger.table_name().unwrap_or_default();
    error::raise(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("credit.{table} is written only by pg_credit's posting functions"),
        Some("Invoices, payments, credit notes, write-offs, reversals and their allocations are facts; correct a mistake by posting a new document (a credit note, a reversal, a cancellation).".into()),
        Some("Use credit.post_invoice, credit.post_payment, credit.post_credit_note, credit.write_off, credit.reverse_settlement or credit.cancel_invoice."),
    )
}
