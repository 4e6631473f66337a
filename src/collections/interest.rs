//! Late-payment interest by dunning level (`credit.late_interest`): the rates are data
//! (credit.dunning_level.interest_rate, credit.reference_rate), the arithmetic is
//! credit_core::interest; this module reads the ledger as of a day and hands it over.
use crate::pg::args;
use crate::pg::error::{OrRaise, Required};
use crate::pg::numeric::{decimal, numeric};
use crate::store::account;
use credit_core::interest::{self, LevelRate, ReferenceRate};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;
use std::collections::HashMap;

/// One invoice's interest as of a day.
pub struct Accrued {
    pub customer: String,
    pub doc_no: String,
    pub due_date: Date,
    /// Days past due as of the day, or on the day it was paid.
    pub days_late: i32,
    pub open_amount: Decimal,
    /// The annual rate on the day (or on the last day it was open).
    pub rate: Option<Decimal>,
    pub interest: Decimal,
}

/// The interest-bearing levels of every ladder, each from its days past due (grace added for the
/// customer's policy by the caller).
fn ladders(c: &SpiClient<'_>) -> HashMap<String, Vec<LevelRate>> {
    let mut out: HashMap<String, Vec<LevelRate>> = HashMap::new();
    for r in c
        .select(
            "SELECT ladder, days, interest_rate, interest_over_reference FROM credit.dunning_level \
              WHERE NOT retired AND interest_rate IS NOT NULL AND days > 0",
            None,
            &[],
        )
        .or_raise()
    {
        out.entry(r.get::<String>(1).or_raise().required("ladder")).or_default().push(LevelRate {
            days_past_due: r.get::<i32>(2).or_raise().required("level days"),
            annual_rate: decimal(&r.get::<AnyNumeric>(3).or_raise().required("interest_rate")),
            over_reference: r.get::<bool>(4).or_raise().unwrap_or(false),
        });
    }
    out
}

fn reference_rates(c: &SpiClient<'_>) -> Vec<ReferenceRate> {
    c.select("SELECT valid_from, rate FROM credit.reference_rate", None, &[])
        .or_raise()
        .map(|r| ReferenceRate {
            from_day: r.get::<Date>(1).or_raise().required("valid_from").to_pg_epoch_days(),
            rate: decimal(&r.get::<AnyNumeric>(2).or_raise().required("rate")),
        })
        .collect()
}

/// Interest as of `as_of` on the invoices of one customer (or all), or on one invoice: every
/// invoice that was past due by then and bore interest (open, or paid late).
pub fn accrued(c: &SpiClient<'_>, as_of: Date, customers: Option<Vec<String>>, invoice: Option<i64>) -> Vec<Accrued> {
    let ladders = ladders(c);
    if ladders.is_empty() {
        return Vec::new();
    }
    let refs = reference_rates(c);
    // Each (customer_type, region)'s ladder and grace days.
    let rules: Vec<(Option<String>, Option<String>, String, i32)> =
        crate::policy::by_subject(c).into_iter().map(|(t, r, e)| (t, r, e.dunning_ladder, e.grace_days)).collect();
    let day = as_of.to_pg_epoch_days();
    let mut out = Vec::new();
    for r in c
        .select(
            "SELECT i.customer, i.doc_no, i.due_date, i.amount, a.customer_type, a.region, \
                    coalesce(array_agg(al.applied_on - DATE '2000-01-01' ORDER BY al.id) FILTER (WHERE al.id IS NOT NULL), '{}'), \
                    coalesce(array_agg(al.amount ORDER BY al.id) FILTER (WHERE al.id IS NOT NULL), '{}') \
               FROM credit.invoice i \
               JOIN credit.account a ON a.customer = i.customer \
               LEFT JOIN credit.allocation al ON al.invoice_id = i.id AND al.applied_on <= $1 \
              WHERE i.due_date < $1 AND ($2::text[] IS NULL OR i.customer = ANY ($2)) AND ($3::bigint IS NULL OR i.id = $3) \
                AND (i.open_amount > 0 OR i.last_applied_on > i.due_date) \
              GROUP BY i.id, a.customer_type, a.region \
              ORDER BY i.customer, i.due_date, i.doc_no",
            None,
            &[as_of.into(), customers.into(), invoice.into()],
        )
        .or_raise()
    {
        let ctype: Option<String> = r.get(5).or_raise();
        let region: Option<String> = r.get(6).or_raise();
        let Some((_, _, ladder, grace)) = rules.iter().find(|(t, g, _, _)| *t == ctype && *g == region) else {
            continue;
        };
        let Some(levels) = ladders.get(ladder) else { continue };
        let levels: Vec<LevelRate> = levels
            .iter()
            .map(|l| LevelRate { days_past_due: l.days_past_due + grace, ..l.clone() })
            .collect();
        let due: Date = r.get(3).or_raise().required("due_date");
        let amount = decimal(&r.get::<AnyNumeric>(4).or_raise().required("amount"));
        // Days since 2000-01-01, PostgreSQL's epoch (as to_pg_epoch_days counts).
        let days: Vec<i32> = r.get::<Vec<i32>>(7).or_raise().unwrap_or_default();
        let amounts: Vec<AnyNumeric> = r.get::<Vec<AnyNumeric>>(8).or_raise().unwrap_or_default();
        let apps: Vec<(i32, Decimal)> = days.iter().zip(amounts.iter()).map(|(d, a)| (*d, decimal(a))).collect();
        let open = amount - apps.iter().map(|(_, a)| *a).sum::<Decimal>();
        // Open as of the day: interest runs to it; paid: to the day it was paid.
        let last_day =
            if open > Decimal::ZERO { day } else { apps.iter().map(|(d, _)| *d).max().unwrap_or(day).min(day) };
        let due_day = due.to_pg_epoch_days();
        let value = interest::accrued(amount, due_day, &apps, &levels, &refs, last_day);
        if value <= Decimal::ZERO {
            continue;
        }
        out.push(Accrued {
            customer: r.get::<String>(1).or_raise().required("customer"),
            doc_no: r.get::<String>(2).or_raise().required("doc_no"),
            due_date: due,
            days_late: last_day - due_day,
            open_amount: open,
            rate: interest::rate_on(last_day, due_day, &levels, &refs),
            interest: value,
        });
    }
    out
}

type InterestRow = (String, String, Date, i32, AnyNumeric, Option<AnyNumeric>, AnyNumeric);

fn rows(as_of: Date, customers: Option<Vec<String>>) -> Vec<InterestRow> {
    Spi::connect(|c| accrued(c, as_of, customers, None))
        .into_iter()
        .map(|a| {
            (
                a.customer,
                a.doc_no,
                a.due_date,
                a.days_late,
                numeric(a.open_amount),
                a.rate.map(numeric),
                numeric(a.interest),
            )
        })
        .collect()
}

/// Late-payment interest as of a day, per invoice: every invoice of the customer (or all) that was
/// past due and bore interest by then — open, or paid late (what accrued stays after the principal
/// is paid). Interest runs from the day after the due date to the day of payment, on what was open
/// each day, at the rate of the dunning level the invoice had reached (after the policy's grace
/// days), over the reference rate where the level says so; 365-day years; rounded to cents.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn late_interest(
    as_of: default!(Option<Date>, "CURRENT_DATE"),
    customer: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(customer, String),
        name!(doc_no, String),
        name!(due_date, Date),
        name!(days_late, i32),
        name!(open_amount, AnyNumeric),
        name!(rate, Option<AnyNumeric>),
        name!(interest, AnyNumeric),
    ),
> {
    let as_of = args::date(as_of, "as_of");
    let customer = args::optional_text(customer, "customer");
    if let Some(c) = customer {
        if account::load(c).is_none() {
            crate::pg::error::unknown_customer(c)
        }
    }
    TableIterator::new(rows(as_of, customer.map(|c| vec![c.to_string()])))
}

/// The interest of the invoices of some customers as of a day (statements: no check of the
/// arguments, unknown customers have none).
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn _late_interest_of(
    as_of: Option<Date>,
    customers: Option<Vec<String>>,
) -> TableIterator<
    'static,
    (
        name!(customer, String),
        name!(doc_no, String),
        name!(due_date, Date),
        name!(days_late, i32),
        name!(open_amount, AnyNumeric),
        name!(rate, Option<AnyNumeric>),
        name!(interest, AnyNumeric),
    ),
> {
    match (as_of, customers) {
        (Some(as_of), Some(customers)) => TableIterator::new(rows(as_of, Some(customers))),
        _ => TableIterator::new(Vec::new()),
    }
}

/// Interest accrued on one invoice as of a day (0 when none), for the collection worklist.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn _invoice_interest(invoice_id: Option<i64>, as_of: Option<Date>) -> Option<AnyNumeric> {
    let (invoice_id, as_of) = (invoice_id?, as_of?);
    let rows = Spi::connect(|c| accrued(c, as_of, None, Some(invoice_id)));
    Some(numeric(rows.first().map_or(Decimal::ZERO, |a| a.interest)))
}
