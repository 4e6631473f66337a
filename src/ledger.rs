//! The receivables ledger: invoices, payments, credit notes and write-offs. Each posting locks the
//! customer's account row first, so postings and guarded orders of one customer are serialised and
//! the maintained counters move in the same transaction as the documents. Invoices and payments are
//! facts: they are never refused for being over the limit.
use crate::core::allocation::{self, OpenItem};
use crate::error::{self, Code, OrRaise};
use crate::{input, internal};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Locks the account row (FOR NO KEY UPDATE, the same lock a guarded order takes).
pub(crate) fn lock_account(c: &mut SpiClient<'_>, customer: &str) {
    let t = c
        .update("SELECT 1 FROM credit.account WHERE customer = $1 FOR NO KEY UPDATE", Some(1), &[customer.into()])
        .or_raise();
    if t.is_empty() {
        error::unknown_customer(customer)
    }
}

pub(crate) struct Invoice {
    pub id: i64,
    pub open: Decimal,
    pub doc_date: Date,
}

/// Finds and locks an invoice (its account row is locked first by the caller).
pub(crate) fn find_invoice(c: &mut SpiClient<'_>, customer: &str, doc_no: &str) -> Invoice {
    let t = c
        .update(
            "SELECT id, open_amount, doc_date FROM credit.invoice WHERE customer = $1 AND doc_no = $2 FOR UPDATE",
            Some(1),
            &[customer.into(), doc_no.into()],
        )
        .or_raise();
    if t.is_empty() {
        error::raise(
            Code::ERRCODE_FOREIGN_KEY_VIOLATION,
            format!("invoice \"{doc_no}\" of customer \"{customer}\" does not exist"),
            None,
            None,
        )
    }
    let (id, open, doc_date) = t.first().get_three::<i64, AnyNumeric, Date>().or_raise();
    Invoice { id: id.expect("id"), open: input::decimal(&open.expect("open_amount")), doc_date: doc_date.expect("doc_date") }
}

fn open_invoices(c: &mut SpiClient<'_>, customer: &str) -> Vec<OpenItem> {
    let t = c
        .update(
            "SELECT id, open_amount FROM credit.invoice WHERE customer = $1 AND open_amount > 0 \
             ORDER BY due_date, doc_date, id",
            None,
            &[customer.into()],
        )
        .or_raise();
    t.map(|row| OpenItem {
        id: row.get::<i64>(1).or_raise().expect("id"),
        open: input::decimal(&row.get::<AnyNumeric>(2).or_raise().expect("open_amount")),
    })
    .collect()
}

/// SQL: due date of customer $1's oldest open invoice not in dispute (the overdue rule reads it).
macro_rules! oldest_open_due {
    () => {
        "(SELECT min(i.due_date) FROM credit.invoice i WHERE i.customer = $1 AND i.open_amount > 0 AND NOT i.disputed)"
    };
}
pub(crate) use oldest_open_due;

/// Moves the account's counters (and its group head's member_exposure, after it: the lock order)
/// and keeps the due date of the oldest open invoice, which the overdue rule reads.
fn add_to_account(c: &mut SpiClient<'_>, customer: &str, open_ar: Decimal, unapplied: Decimal) {
    if open_ar.is_zero() && unapplied.is_zero() {
        return;
    }
    let parent: Option<String> = c
        .update(
            concat!(
                "UPDATE credit.account SET open_ar = open_ar + $2, unapplied_credit = unapplied_credit + $3, \
                 exposure = exposure + $2 - $3, oldest_open_due = ",
                oldest_open_due!(),
                " WHERE customer = $1 RETURNING parent"
            ),
            None,
            &[customer.into(), input::numeric(open_ar).into(), input::numeric(unapplied).into()],
        )
        .or_raise()
        .first()
        .get_one()
        .or_raise();
    if let Some(head) = parent {
        c.update(
            "UPDATE credit.account SET member_exposure = member_exposure + $2 WHERE customer = $1",
            None,
            &[head.into(), input::numeric(open_ar - unapplied).into()],
        )
        .or_raise();
    }
}

fn allocate_row(c: &mut SpiClient<'_>, settlement: i64, invoice: i64, amount: Decimal, on: Date) {
    // The application counts from the later of the settlement's and the invoice's date; both
    // documents remember the latest such date (aging as of an earlier date adds it back).
    c.update(
        "WITH inv AS (UPDATE credit.invoice SET open_amount = open_amount - $3, \
                        last_applied_on = greatest(last_applied_on, $4::date, doc_date) \
                      WHERE id = $2 RETURNING greatest($4::date, doc_date) AS on_date), \
              st AS (UPDATE credit.settlement SET last_applied_on = greatest(last_applied_on, (SELECT on_date FROM inv)) \
                      WHERE id = $1) \
         INSERT INTO credit.allocation (settlement_id, invoice_id, amount, applied_on) \
         SELECT $1, $2, $3, inv.on_date FROM inv",
        None,
        &[settlement.into(), invoice.into(), input::numeric(amount).into(), on.into()],
    )
    .or_raise();
}

fn reject_duplicate(c: &mut SpiClient<'_>, sql: &str, customer: &str, kind: &str, doc_no: &str) {
    let t = c.update(sql, Some(1), &[customer.into(), doc_no.into()]).or_raise();
    if !t.is_empty() {
        error::raise(
            Code::ERRCODE_UNIQUE_VIOLATION,
            format!("{kind} \"{doc_no}\" of customer \"{customer}\" already exists"),
            None,
            Some("Document numbers are unique per customer; post a correction as a new document."),
        )
    }
}

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
    crate::roles::require("clerk", "posting an invoice");
    let customer = input::text(customer, "customer");
    let doc_no = input::text(doc_no, "doc_no");
    let amount = input::positive_amount(amount.as_ref(), "amount");
    let doc_date = input::date(doc_date, "doc_date");
    let due_date = input::optional_date(due_date, "due_date");
    if let Some(due) = due_date {
        if due < doc_date {
            error::invalid(format!("due_date {due} is before doc_date {doc_date}"))
        }
    }
    internal::scope(|| {
        Spi::connect_mut(|c| {
            lock_account(c, customer);
            let terms = crate::policy::terms(c, customer, amount, product_category).0;
            reject_duplicate(
                c,
                "SELECT 1 FROM credit.invoice WHERE customer = $1 AND doc_no = $2",
                customer,
                "invoice",
                doc_no,
            );
            let id: i64 = c
                .update(
                    "INSERT INTO credit.invoice (customer, doc_no, doc_date, due_date, amount, open_amount) \
                     VALUES ($1, $2, $3, coalesce($4, $3 + $6), $5, $5) RETURNING id",
                    None,
                    &[
                        customer.into(),
                        doc_no.into(),
                        doc_date.into(),
                        due_date.into(),
                        input::numeric(amount).into(),
                        terms.into(),
                    ],
                )
                .or_raise()
                .first()
                .get_one()
                .or_raise()
                .expect("RETURNING id");
            // Apply unapplied credit, oldest first.
            let credits: Vec<OpenItem> = c
                .update(
                    "SELECT id, unapplied FROM credit.settlement WHERE customer = $1 AND unapplied > 0 \
                     ORDER BY doc_date, id",
                    None,
                    &[customer.into()],
                )
                .or_raise()
                .map(|row| OpenItem {
                    id: row.get::<i64>(1).or_raise().expect("id"),
                    open: input::decimal(&row.get::<AnyNumeric>(2).or_raise().expect("unapplied")),
                })
                .collect();
            let out = allocation::allocate(amount, &credits);
            let mut applied = Decimal::ZERO;
            for a in &out.allocations {
                c.update(
                    "UPDATE credit.settlement SET unapplied = unapplied - $2 WHERE id = $1",
                    None,
                    &[a.id.into(), input::numeric(a.amount).into()],
                )
                .or_raise();
                allocate_row(c, a.id, id, a.amount, doc_date);
                applied += a.amount;
            }
            add_to_account(c, customer, amount - applied, -applied);
            id
        })
    })
}

/// Shared by payments and credit notes: apply to the named invoice, or oldest due first; what is
/// left stays as unapplied credit, which lowers exposure and is applied to the next invoices.
#[allow(clippy::too_many_arguments)]
fn settle(
    kind: &str,
    customer: &str,
    doc_no: Option<&str>,
    amount: Decimal,
    on: Date,
    apply_to: Option<&str>,
    reason: Option<&str>,
) -> i64 {
    let id = internal::scope(|| {
        Spi::connect_mut(|c| {
            lock_account(c, customer);
            if let Some(doc) = doc_no {
                reject_duplicate(
                    c,
                    &format!(
                        "SELECT 1 FROM credit.settlement WHERE customer = $1 AND kind = '{kind}' AND doc_no = $2"
                    ),
                    customer,
                    kind.replace('_', " ").as_str(),
                    doc,
                );
            }
            let items = match apply_to {
                Some(inv) => {
                    let i = find_invoice(c, customer, inv);
                    vec![OpenItem { id: i.id, open: i.open }]
                }
                None => open_invoices(c, customer),
            };
            let out = allocation::allocate(amount, &items);
            let id: i64 = c
                .update(
                    "INSERT INTO credit.settlement (customer, kind, doc_no, doc_date, amount, unapplied, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    None,
                    &[
                        customer.into(),
                        kind.into(),
                        doc_no.into(),
                        on.into(),
                        input::numeric(amount).into(),
                        input::numeric(out.remainder).into(),
                        reason.into(),
                    ],
                )
                .or_raise()
                .first()
                .get_one()
                .or_raise()
                .expect("RETURNING id");
            let mut applied = Decimal::ZERO;
            for a in &out.allocations {
                allocate_row(c, id, a.id, a.amount, on);
                applied += a.amount;
            }
            add_to_account(c, customer, -applied, out.remainder);
            id
        })
    });
    crate::collections::after_settlement(customer);
    crate::hold::release_fitting(Some(customer));
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
    crate::roles::require("clerk", "posting a payment");
    let customer = input::text(customer, "customer");
    let amount = input::positive_amount(amount.as_ref(), "amount");
    let paid_on = input::date(paid_on, "paid_on");
    let apply_to = apply_to.map(|a| input::text(Some(a), "apply_to"));
    let reference = reference.map(|r| input::text(Some(r), "reference"));
    settle("payment", customer, reference, amount, paid_on, apply_to, None)
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
    crate::roles::require("clerk", "posting a credit note");
    let customer = input::text(customer, "customer");
    let doc_no = input::text(doc_no, "doc_no");
    let amount = input::positive_amount(amount.as_ref(), "amount");
    let apply_to = apply_to.map(|a| input::text(Some(a), "apply_to"));
    let doc_date = input::date(doc_date, "doc_date");
    settle("credit_note", customer, Some(doc_no), amount, doc_date, apply_to, reason)
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
    crate::roles::require("manager", "writing off");
    let customer = input::text(customer, "customer");
    let doc_no = input::text(doc_no, "doc_no");
    let requested = amount.as_ref().map(|a| input::positive_amount(Some(a), "amount"));
    let on = input::date(written_off_on, "written_off_on");
    let id = internal::scope(|| {
        Spi::connect_mut(|c| {
            lock_account(c, customer);
            let inv = find_invoice(c, customer, doc_no);
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
            let id: i64 = c
                .update(
                    "INSERT INTO credit.settlement (customer, kind, doc_date, amount, unapplied, reason) \
                     VALUES ($1, 'write_off', $2, $3, 0, $4) RETURNING id",
                    None,
                    &[customer.into(), on.into(), input::numeric(amount).into(), reason.into()],
                )
                .or_raise()
                .first()
                .get_one()
                .or_raise()
                .expect("RETURNING id");
            allocate_row(c, id, inv.id, amount, on);
            add_to_account(c, customer, -amount, Decimal::ZERO);
            id
        })
    });
    // Policy: a bad debt may blacklist the customer.
    Spi::connect_mut(|c| {
        c.update(
            "SELECT credit._set_status(a.customer, $2, 'blacklisted') FROM credit.account a \
             WHERE a.customer = $1 AND a.status <> 'blacklisted' \
               AND (SELECT e.blacklist_on_write_off FROM credit.effective_policy(a.customer) e)",
            None,
            &[customer.into(), format!("policy: write-off of invoice {doc_no}").into()],
        )
        .or_raise();
    });
    crate::collections::after_settlement(customer);
    crate::hold::release_fitting(Some(customer));
    id
}
