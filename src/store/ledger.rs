//! The ledger's document rows: invoices, settlements (payments, credit notes, write-offs) and the
//! allocations between them. Callers hold the customer's account row lock (store::account::lock)
//! before touching its documents.
use crate::pg::error::{self, Code, OrRaise, Required};
use crate::pg::numeric::{decimal, numeric};
use crate::store;
use credit_core::allocation::OpenItem;
use pgrx::datum::Date;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// What lowers a customer's receivables; the value is `credit.settlement.kind`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SettlementKind {
    Payment,
    CreditNote,
    WriteOff,
    /// An invoice cancelled before settlement (credit.cancel_invoice).
    Cancellation,
}

impl SettlementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SettlementKind::Payment => "payment",
            SettlementKind::CreditNote => "credit_note",
            SettlementKind::WriteOff => "write_off",
            SettlementKind::Cancellation => "cancellation",
        }
    }

    pub fn parse(kind: &str) -> Option<SettlementKind> {
        [SettlementKind::Payment, SettlementKind::CreditNote, SettlementKind::WriteOff, SettlementKind::Cancellation]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }

    /// For messages.
    pub fn label(self) -> &'static str {
        match self {
            SettlementKind::Payment => "payment",
            SettlementKind::CreditNote => "credit note",
            SettlementKind::WriteOff => "write off",
            SettlementKind::Cancellation => "cancellation",
        }
    }
}

/// A settlement as a reversal needs it.
pub struct Settlement {
    pub customer: String,
    pub kind: SettlementKind,
    pub doc_no: Option<String>,
    pub doc_date: Date,
    pub amount: Decimal,
    pub unapplied: Decimal,
    pub last_applied_on: Option<Date>,
    pub reversed_on: Option<Date>,
}

/// A settlement by id: unlocked to learn its customer, then, once the customer's account row is
/// locked, read again locked (`locked_of`: the customer, which routes the lock to one node on Citus).
pub fn settlement(c: &mut SpiClient<'_>, id: i64, locked_of: Option<&str>) -> Option<Settlement> {
    const COLUMNS: &str = "SELECT customer, kind, doc_no, doc_date, amount, unapplied, last_applied_on, reversed_on \
                           FROM credit.settlement WHERE id = $1";
    let t = match locked_of {
        Some(customer) => {
            c.update(&format!("{COLUMNS} AND customer = $2 FOR UPDATE"), Some(1), &[id.into(), customer.into()])
        }
        None => c.update(COLUMNS, Some(1), &[id.into()]),
    }
    .or_raise();
    if t.is_empty() {
        return None;
    }
    let r = t.first();
    let kind: String = r.get(2).or_raise().required("settlement kind");
    Some(Settlement {
        customer: r.get(1).or_raise().required("settlement customer"),
        kind: SettlementKind::parse(&kind).required("a known settlement kind"),
        doc_no: r.get(3).or_raise(),
        doc_date: r.get(4).or_raise().required("settlement doc_date"),
        amount: decimal(&r.get::<AnyNumeric>(5).or_raise().required("settlement amount")),
        unapplied: decimal(&r.get::<AnyNumeric>(6).or_raise().required("settlement unapplied")),
        last_applied_on: r.get(7).or_raise(),
        reversed_on: r.get(8).or_raise(),
    })
}

/// Reverses a settlement on a date: the reversal document, a negative allocation for each of its
/// applications (the invoices reopen by those amounts, in the order they were paid), and nothing
/// left unapplied. Returns the reversal's id, the total reopened, and the invoices reopened as
/// JSON text ([{doc_no, amount}], for the event).
pub fn reverse(
    c: &mut SpiClient<'_>,
    settlement_id: i64,
    s: &Settlement,
    on: Date,
    reason: &str,
) -> (i64, Decimal, String) {
    store::writing(|| {
        let reversal: i64 = c
            .update(
                "INSERT INTO credit.reversal (customer, settlement_id, doc_date, amount, reason) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                None,
                &[s.customer.as_str().into(), settlement_id.into(), on.into(), numeric(s.amount).into(), reason.into()],
            )
            .or_raise()
            .first()
            .get_one()
            .or_raise()
            .required("new reversal id");
        let (customer_col, customer_value, customer_filter) = if allocation_names_customer(c) {
            (", customer", ", a.customer", " AND a.customer = $4")
        } else {
            ("", "", "")
        };
        let sql = format!(
            "WITH undo AS ( \
                     INSERT INTO credit.allocation (settlement_id, invoice_id, amount, applied_on, reversal_id{customer_col}) \
                     SELECT a.settlement_id, a.invoice_id, -a.amount, $2, $3{customer_value} FROM credit.allocation a \
                      WHERE a.settlement_id = $1{customer_filter} AND a.reversal_id IS NULL ORDER BY a.id \
                     RETURNING invoice_id, -amount AS amount), \
                   per_invoice AS (SELECT invoice_id, sum(amount) AS amount FROM undo GROUP BY invoice_id), \
                   reopened AS ( \
                     UPDATE credit.invoice i SET open_amount = i.open_amount + p.amount, \
                            last_applied_on = greatest(i.last_applied_on, $2) \
                       FROM per_invoice p WHERE i.id = p.invoice_id AND i.customer = $4 \
                     RETURNING i.doc_no, p.amount) \
                 SELECT coalesce(sum(amount), 0), \
                        coalesce(jsonb_agg(jsonb_build_object('doc_no', doc_no, 'amount', amount) ORDER BY doc_no), '[]')::text \
                   FROM reopened"
        );
        let t = c
            .update(&sql, Some(1), &[settlement_id.into(), on.into(), reversal.into(), s.customer.as_str().into()])
            .or_raise();
        let row = t.first();
        let total = decimal(&row.get::<AnyNumeric>(1).or_raise().required("reopened total"));
        let reopened: String = row.get(2).or_raise().required("reopened invoices");
        c.update(
            "UPDATE credit.settlement SET unapplied = 0, reversed_on = $2, \
                    last_applied_on = greatest(last_applied_on, $2) WHERE id = $1 AND customer = $3",
            None,
            &[settlement_id.into(), on.into(), s.customer.as_str().into()],
        )
        .or_raise();
        (reversal, total, reopened)
    })
}

/// Whether credit.allocation names its customer (0.3.0, for Citus); the library also serves a
/// database still on 0.2.0's SQL until ALTER EXTENSION UPDATE (UPDATING.md).
fn allocation_names_customer(c: &SpiClient<'_>) -> bool {
    store::has(c, "credit.allocation.customer")
}

pub struct Invoice {
    pub id: i64,
    pub amount: Decimal,
    pub open: Decimal,
    pub doc_date: Date,
    pub disputed: bool,
}

/// Finds and locks an invoice (its account row is locked first by the caller); 23503 when the
/// customer has no such invoice.
pub fn find_invoice(c: &mut SpiClient<'_>, customer: &str, doc_no: &str) -> Invoice {
    let t = c
        .update(
            "SELECT id, open_amount, doc_date, amount, disputed FROM credit.invoice WHERE customer = $1 AND doc_no = $2 FOR UPDATE",
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
    let row = t.first();
    let (id, open, doc_date) = row.get_three::<i64, AnyNumeric, Date>().or_raise();
    Invoice {
        id: id.required("invoice id"),
        amount: decimal(&row.get::<AnyNumeric>(4).or_raise().required("invoice amount")),
        open: decimal(&open.required("invoice open_amount")),
        doc_date: doc_date.required("invoice doc_date"),
        disputed: row.get::<bool>(5).or_raise().required("invoice disputed"),
    }
}

fn open_items(c: &mut SpiClient<'_>, sql: &str, customer: &str) -> Vec<OpenItem> {
    c.update(sql, None, &[customer.into()])
        .or_raise()
        .map(|row| OpenItem {
            id: row.get::<i64>(1).or_raise().required("document id"),
            open: decimal(&row.get::<AnyNumeric>(2).or_raise().required("open amount")),
        })
        .collect()
}

/// The customer's open invoices in settlement order: oldest due first.
pub fn open_invoices(c: &mut SpiClient<'_>, customer: &str) -> Vec<OpenItem> {
    open_items(
        c,
        "SELECT id, open_amount FROM credit.invoice WHERE customer = $1 AND open_amount > 0 ORDER BY due_date, doc_date, id",
        customer,
    )
}

/// The customer's unapplied credit (prepayments, credit notes), oldest first.
pub fn unapplied_credits(c: &mut SpiClient<'_>, customer: &str) -> Vec<OpenItem> {
    open_items(
        c,
        "SELECT id, unapplied FROM credit.settlement WHERE customer = $1 AND unapplied > 0 ORDER BY doc_date, id",
        customer,
    )
}

fn refuse_duplicate(exists: bool, label: &str, customer: &str, doc_no: &str) {
    if exists {
        error::raise(
            Code::ERRCODE_UNIQUE_VIOLATION,
            format!("{label} \"{doc_no}\" of customer \"{customer}\" already exists"),
            None,
            Some("Document numbers are unique per customer; post a correction as a new document."),
        )
    }
}

/// 23505 when the customer has an invoice of this number.
pub fn refuse_duplicate_invoice(c: &mut SpiClient<'_>, customer: &str, doc_no: &str) {
    let exists = !c
        .update(
            "SELECT 1 FROM credit.invoice WHERE customer = $1 AND doc_no = $2",
            Some(1),
            &[customer.into(), doc_no.into()],
        )
        .or_raise()
        .is_empty();
    refuse_duplicate(exists, "invoice", customer, doc_no)
}

/// 23505 when the customer has a settlement of this kind and number.
pub fn refuse_duplicate_settlement(c: &mut SpiClient<'_>, kind: SettlementKind, customer: &str, doc_no: &str) {
    let exists = !c
        .update(
            "SELECT 1 FROM credit.settlement WHERE customer = $1 AND kind = $3 AND doc_no = $2",
            Some(1),
            &[customer.into(), doc_no.into(), kind.as_str().into()],
        )
        .or_raise()
        .is_empty();
    refuse_duplicate(exists, kind.label(), customer, doc_no)
}

/// An invoice to post: its due date, or the terms (and the rule that gave them) to reach it.
pub struct NewInvoice<'a> {
    pub customer: &'a str,
    pub doc_no: &'a str,
    pub doc_date: Date,
    pub due_date: Option<Date>,
    pub amount: Decimal,
    pub terms_days: i32,
    pub terms_source: Option<&'a str>,
}

/// A new invoice, all of it open; the due date defaults to doc_date + terms.
pub fn insert_invoice(c: &mut SpiClient<'_>, inv: &NewInvoice<'_>) -> i64 {
    store::writing(|| {
        // (A database still on an older version's SQL has no terms_source column.)
        let sql = if store::has(c, "credit.invoice.terms_source") {
            "INSERT INTO credit.invoice (customer, doc_no, doc_date, due_date, amount, open_amount, terms_source) \
             VALUES ($1, $2, $3, coalesce($4, $3 + $6), $5, $5, $7) RETURNING id"
        } else {
            "INSERT INTO credit.invoice (customer, doc_no, doc_date, due_date, amount, open_amount) \
             VALUES ($1, $2, $3, coalesce($4, $3 + $6), $5, $5) RETURNING id"
        };
        c.update(
            sql,
            None,
            &[
                inv.customer.into(),
                inv.doc_no.into(),
                inv.doc_date.into(),
                inv.due_date.into(),
                numeric(inv.amount).into(),
                inv.terms_days.into(),
                inv.terms_source.into(),
            ],
        )
        .or_raise()
        .first()
        .get_one()
        .or_raise()
        .required("new invoice id")
    })
}

/// A new settlement, `unapplied` of it not (yet) applied to an invoice.
#[allow(clippy::too_many_arguments)]
pub fn insert_settlement(
    c: &mut SpiClient<'_>,
    customer: &str,
    kind: SettlementKind,
    doc_no: Option<&str>,
    on: Date,
    amount: Decimal,
    unapplied: Decimal,
    reason: Option<&str>,
) -> i64 {
    store::writing(|| {
        c.update(
            "INSERT INTO credit.settlement (customer, kind, doc_no, doc_date, amount, unapplied, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            None,
            &[
                customer.into(),
                kind.as_str().into(),
                doc_no.into(),
                on.into(),
                numeric(amount).into(),
                numeric(unapplied).into(),
                reason.into(),
            ],
        )
        .or_raise()
        .first()
        .get_one()
        .or_raise()
        .required("new settlement id")
    })
}

/// Applies `amount` of a settlement to an invoice on a date. The application counts from the latest
/// of that date, the settlement's and the invoice's; both documents remember the latest such date (aging
/// as of an earlier date adds it back). `from_unapplied`: the amount comes out of the settlement's
/// unapplied credit (a credit applied to a new invoice), not from a new settlement.
pub fn allocate(
    c: &mut SpiClient<'_>,
    customer: &str,
    settlement: i64,
    invoice: i64,
    amount: Decimal,
    on: Date,
    from_unapplied: bool,
) {
    // Every statement names the customer: on Citus that keeps it on the customer's node.
    store::writing(|| {
        if from_unapplied {
            c.update(
                "UPDATE credit.settlement SET unapplied = unapplied - $2 WHERE id = $1 AND customer = $3",
                None,
                &[settlement.into(), numeric(amount).into(), customer.into()],
            )
            .or_raise();
        }
        // The settlement's own date counts too: an invoice keyed in late (dated February) that
        // consumes a March prepayment is settled in March, not in February.
        let (customer_col, customer_value) =
            if allocation_names_customer(c) { (", customer", ", $5") } else { ("", "") };
        let sql = format!(
            "WITH st0 AS (SELECT doc_date FROM credit.settlement WHERE id = $1 AND customer = $5), \
                  inv AS (UPDATE credit.invoice SET open_amount = open_amount - $3, \
                            last_applied_on = greatest(last_applied_on, $4::date, doc_date, (SELECT doc_date FROM st0)) \
                          WHERE id = $2 AND customer = $5 RETURNING greatest($4::date, doc_date, (SELECT doc_date FROM st0)) AS on_date), \
                  st AS (UPDATE credit.settlement SET last_applied_on = greatest(last_applied_on, (SELECT on_date FROM inv)) \
                          WHERE id = $1 AND customer = $5) \
             INSERT INTO credit.allocation (settlement_id, invoice_id, amount, applied_on{customer_col}) \
             SELECT $1, $2, $3, inv.on_date{customer_value} FROM inv"
            );
        c.update(&sql, None, &[settlement.into(), invoice.into(), numeric(amount).into(), on.into(), customer.into()])
            .or_raise();
    })
}

/// An invoice enters or leaves a dispute.
pub fn set_disputed(c: &mut SpiClient<'_>, customer: &str, invoice: i64, disputed: bool) {
    store::writing(|| {
        c.update(
            "UPDATE credit.invoice SET disputed = $2 WHERE id = $1 AND customer = $3",
            None,
            &[invoice.into(), disputed.into(), customer.into()],
        )
        .or_raise();
    })
}
