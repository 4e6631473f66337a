//! The pgrx side of aging and receivables metrics: argument checks the SQL functions call once
//! per query, bucket-table validation, and `credit.receivables_metrics` (inputs read with
//! read-only SPI, formulas in credit_core::metrics). The views and SQL functions are in
//! sql/aging.sql.
use crate::pg::args;
use crate::pg::error::{self, Code, OrRaise, Required};
use crate::pg::numeric::{decimal_opt, numeric};
use credit_core::aging::{self, Bucket};
use credit_core::metrics;
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Validates `credit.aging(as_of, basis)` arguments. Called as a pseudo-constant qual, so it runs
/// once per query, before any row. Returns true; raises 22004/22023 otherwise.
#[pg_extern(stable, parallel_safe)]
fn _aging_args(as_of: Option<Date>, basis: Option<&str>) -> bool {
    args::date(as_of, "as_of");
    match basis {
        None => error::null_arg("basis"),
        Some("due") | Some("document") => true,
        Some(other) => error::raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown aging basis \"{other}\""),
            Some("basis is 'due' (days past the due date) or 'document' (days since the document date, 账龄).".into()),
            None,
        ),
    }
}

/// The bucket table's problem, or NULL when its active buckets tile the day axis.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn _aging_buckets_problem() -> Option<String> {
    let buckets: Vec<Bucket> = Spi::connect(|c| {
        c.select(
            "SELECT label, lower_days, upper_days FROM credit.aging_bucket WHERE NOT retired ORDER BY position",
            None,
            &[],
        )
        .or_raise()
        .map(|r| Bucket {
            label: r.get::<String>(1).or_raise().unwrap_or_default(),
            lower: r.get::<i32>(2).or_raise(),
            upper: r.get::<i32>(3).or_raise(),
        })
        .collect()
    });
    aging::validate(&buckets).err().map(|e| e.describe())
}

/// A sum over no rows is NULL: nothing.
fn sum_of(n: Option<AnyNumeric>) -> Decimal {
    decimal_opt(n).unwrap_or_default()
}

/// A metric, rounded to 4 decimals (None when it is undefined, e.g. no sales in the period).
fn rounded(d: Option<Decimal>) -> Option<AnyNumeric> {
    d.map(|v| numeric(v.round_dp(4)))
}

/// Receivables as of a date: (total, not yet due), invoices only (gross AR). On Citus one
/// customer's aging is read on its node alone (`citus`: asked only with a customer; credit.aging
/// there reads every node's ledger).
fn receivables(c: &SpiClient<'_>, as_of: Date, customer: Option<&str>, citus: bool) -> (Decimal, Decimal) {
    const SQL: &str = "SELECT sum(open_amount), sum(open_amount) FILTER (WHERE days <= 0) \
                       FROM credit.aging($1, 'due') WHERE doc_type = 'invoice' AND ($2::text IS NULL OR customer = $2)";
    let mut sql = crate::pg::citus::given(SQL, "$2", customer);
    if citus {
        sql = sql.replace("credit.aging($1, 'due')", "credit._aging_on_citus($1, 'due', $2)");
    }
    let t = c.select(&sql, Some(1), &[as_of.into(), customer.into()]).or_raise().first();
    let (total, current) = t.get_two::<AnyNumeric, AnyNumeric>().or_raise();
    (sum_of(total), sum_of(current))
}

/// Credit sales in [from, to]: invoices minus credit notes and cancellations dated then (a reversed
/// credit note never counted). `reversed_on` is read through to_jsonb: the library also serves
/// databases whose SQL is still 0.2.0 (between installing it and ALTER EXTENSION UPDATE).
fn credit_sales(c: &SpiClient<'_>, from: Date, to: Date, customer: Option<&str>) -> Decimal {
    const SQL: &str = "SELECT coalesce((SELECT sum(amount) FROM credit.invoice WHERE doc_date BETWEEN $1 AND $2 \
                                         AND ($3::text IS NULL OR customer = $3)), 0) \
                           - coalesce((SELECT sum(s.amount) FROM credit.settlement s \
                                        WHERE s.kind IN ('credit_note', 'cancellation') AND to_jsonb(s) ->> 'reversed_on' IS NULL \
                                         AND s.doc_date BETWEEN $1 AND $2 AND ($3::text IS NULL OR s.customer = $3)), 0)";
    let sql = crate::pg::citus::given(SQL, "$3", customer);
    let t = c.select(&sql, Some(1), &[from.into(), to.into(), customer.into()]).or_raise().first();
    sum_of(t.get_one::<AnyNumeric>().or_raise())
}

/// The period's calendar: the day before it, its days (both ends included), the calendar months
/// it touches.
fn period(c: &SpiClient<'_>, start: Date, end: Date) -> (Date, i32, i32) {
    let row = c
        .select(
            "SELECT ($1::date - 1), ($2::date - $1::date + 1), \
                    ((extract(year FROM $2::date) * 12 + extract(month FROM $2::date)) \
                   - (extract(year FROM $1::date) * 12 + extract(month FROM $1::date)) + 1)::int",
            Some(1),
            &[start.into(), end.into()],
        )
        .or_raise()
        .first();
    let (before, days, months) = row.get_three::<Date, i32, i32>().or_raise();
    (
        before.required("day before the period"),
        days.required("days in the period"),
        months.required("months in the period"),
    )
}

/// Count-back: months ending at period_end, newest first, until the AR is accounted for (36 at
/// most): each month's credit sales and days (calendar days, or 30 with `flat_30`).
fn count_back_months(
    c: &SpiClient<'_>,
    end: Date,
    ending_ar: Decimal,
    customer: Option<&str>,
    flat_30: bool,
) -> Vec<(Decimal, Decimal)> {
    let mut months = Vec::new();
    let mut left = ending_ar;
    for k in 0..36 {
        if left <= Decimal::ZERO {
            break;
        }
        let m = c
            .select(
                "SELECT ($1::date - make_interval(months => $2 + 1))::date + 1, \
                        ($1::date - make_interval(months => $2))::date",
                Some(1),
                &[end.into(), k.into()],
            )
            .or_raise()
            .first();
        let (m_start, m_end) = m.get_two::<Date, Date>().or_raise();
        let (m_start, m_end) = (m_start.required("month start"), m_end.required("month end"));
        let m_sales = credit_sales(c, m_start, m_end, customer);
        let m_days = if flat_30 {
            Decimal::from(30)
        } else {
            Decimal::from(m_end.to_pg_epoch_days() - m_start.to_pg_epoch_days() + 1)
        };
        if m_sales > Decimal::ZERO {
            left -= m_sales;
        }
        months.push((m_sales.max(Decimal::ZERO), m_days));
    }
    months
}

/// What the metrics are computed from.
struct PeriodInputs {
    beginning: Decimal,
    ending: Decimal,
    current: Decimal,
    sales: Decimal,
    days: i32,
    months_touched: i32,
    count_back: Vec<(Decimal, Decimal)>,
}

fn period_inputs(start: Date, end: Date, customer: Option<&str>, flat_30: bool) -> PeriodInputs {
    let citus = customer.is_some() && crate::pg::citus::distributed();
    Spi::connect(|c| {
        let (before, days, months_touched) = period(c, start, end);
        let (beginning, _) = receivables(c, before, customer, citus);
        let (ending, current) = receivables(c, end, customer, citus);
        let sales = credit_sales(c, start, end, customer);
        let count_back = count_back_months(c, end, ending, customer, flat_30);
        PeriodInputs { beginning, ending, current, sales, days, months_touched, count_back }
    })
}

/// Receivables metrics over [period_start, period_end], for one customer or all (NULL).
/// Conventions (docs/analytics.md): AR is gross invoice AR from credit.aging (basis 'due') at the
/// period end; credit sales are invoices minus credit notes dated in the period; days are calendar
/// days, both ends included; count-back walks months ending at period_end, newest first, with
/// calendar-day months ('calendar') or 30-day months ('30'); CEI's N is `cei_months`, by default
/// the number of calendar months the period touches (N = 1 gives the form without /N).
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn receivables_metrics(
    period_start: Option<Date>,
    period_end: Option<Date>,
    customer: default!(Option<&str>, "NULL"),
    cei_months: default!(Option<AnyNumeric>, "NULL"),
    count_back_months: default!(Option<&str>, "'calendar'"),
) -> TableIterator<
    'static,
    (
        name!(beginning_ar, AnyNumeric),
        name!(ending_ar, AnyNumeric),
        name!(current_ar, AnyNumeric),
        name!(credit_sales, AnyNumeric),
        name!(days, i32),
        name!(dso, Option<AnyNumeric>),
        name!(best_possible_dso, Option<AnyNumeric>),
        name!(average_days_delinquent, Option<AnyNumeric>),
        name!(count_back_dso, AnyNumeric),
        name!(cei, Option<AnyNumeric>),
        name!(ar_turnover, Option<AnyNumeric>),
        name!(average_collection_period, Option<AnyNumeric>),
    ),
> {
    let start = args::date(period_start, "period_start");
    let end = args::date(period_end, "period_end");
    if end < start {
        error::invalid(format!("period_end {end} is before period_start {start}"))
    }
    // Month lengths, and whether months without sales are passed over.
    let (flat_30, skip_empty) = match count_back_months {
        None => error::null_arg("count_back_months"),
        Some("calendar") => (false, false),
        Some("30") => (true, false),
        Some("calendar_skip_empty") => (false, true),
        Some("30_skip_empty") => (true, true),
        Some(other) => error::invalid(format!(
            "count_back_months is 'calendar', '30', 'calendar_skip_empty' or '30_skip_empty', not \"{other}\""
        )),
    };
    let customer = args::optional_text(customer, "customer");
    if let Some(c) = customer {
        if crate::store::account::load(c).is_none() {
            error::unknown_customer(c)
        }
    }
    let n_override = cei_months.as_ref().map(|m| args::positive_amount(Some(m), "cei_months"));

    let p = period_inputs(start, end, customer, flat_30);
    let d = Decimal::from(p.days);
    let dso = metrics::dso(p.ending, p.sales, d);
    let bp = metrics::best_possible_dso(p.current, p.sales, d);
    let add = dso.zip(bp).map(|(a, b)| metrics::average_days_delinquent(a, b));
    let count_back = metrics::count_back_dso(p.ending, &p.count_back, skip_empty);
    let n = n_override.unwrap_or_else(|| Decimal::from(p.months_touched));
    let cei = metrics::cei(p.beginning, p.sales, n, p.ending, p.current);
    let avg_ar = (p.beginning + p.ending) / Decimal::TWO;
    let turnover = metrics::ar_turnover(p.sales, avg_ar);
    let acp = turnover.and_then(|t| metrics::average_collection_period(t, d));
    TableIterator::once((
        numeric(p.beginning),
        numeric(p.ending),
        numeric(p.current),
        numeric(p.sales),
        p.days,
        rounded(dso),
        rounded(bp),
        rounded(add),
        numeric(count_back.round_dp(4)),
        rounded(cei),
        rounded(turnover),
        rounded(acp),
    ))
}
