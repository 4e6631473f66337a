//! The pgrx side of aging and receivables metrics: argument checks the SQL functions call once
//! per query, bucket-table validation, and `credit.receivables_metrics` (inputs read with
//! read-only SPI, formulas in core::metrics).
use crate::core::aging::{self, Bucket};
use crate::core::metrics;
use crate::error::{self, Code, OrRaise};
use crate::input;
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Validates `credit.aging(as_of, basis)` arguments. Called as a pseudo-constant qual, so it runs
/// once per query, before any row. Returns true; raises 22004/22023 otherwise.
#[pg_extern(stable, parallel_safe)]
fn _aging_args(as_of: Option<Date>, basis: Option<&str>) -> bool {
    input::date(as_of, "as_of");
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

fn dec(n: Option<AnyNumeric>) -> Decimal {
    n.map(|v| input::decimal(&v)).unwrap_or_default()
}

fn num(d: Option<Decimal>, dp: u32) -> Option<AnyNumeric> {
    d.map(|v| input::numeric(v.round_dp(dp)))
}

/// Receivables as of a date: (total, not yet due), invoices only (gross AR).
fn receivables(c: &pgrx::spi::SpiClient<'_>, as_of: Date, customer: Option<&str>) -> (Decimal, Decimal) {
    let t = c
        .select(
            "SELECT sum(open_amount), sum(open_amount) FILTER (WHERE days <= 0) \
             FROM credit.aging($1, 'due') WHERE doc_type = 'invoice' AND ($2::text IS NULL OR customer = $2)",
            Some(1),
            &[as_of.into(), customer.into()],
        )
        .or_raise()
        .first();
    let (total, current) = t.get_two::<AnyNumeric, AnyNumeric>().or_raise();
    (dec(total), dec(current))
}

fn credit_sales(c: &pgrx::spi::SpiClient<'_>, from: Date, to: Date, customer: Option<&str>) -> Decimal {
    let t = c
        .select(
            "SELECT coalesce((SELECT sum(amount) FROM credit.invoice WHERE doc_date BETWEEN $1 AND $2 \
                                AND ($3::text IS NULL OR customer = $3)), 0) \
                  - coalesce((SELECT sum(amount) FROM credit.settlement WHERE kind = 'credit_note' \
                                AND doc_date BETWEEN $1 AND $2 AND ($3::text IS NULL OR customer = $3)), 0)",
            Some(1),
            &[from.into(), to.into(), customer.into()],
        )
        .or_raise()
        .first();
    dec(t.get_one::<AnyNumeric>().or_raise())
}

/// Receivables metrics over [period_start, period_end], for one customer or all (NULL).
/// Conventions (docs/metrics.md): AR is gross invoice AR from credit.aging (basis 'due') at the
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
    let start = input::date(period_start, "period_start");
    let end = input::date(period_end, "period_end");
    if end < start {
        error::invalid(format!("period_end {end} is before period_start {start}"))
    }
    let flat_30 = match count_back_months {
        None => error::null_arg("count_back_months"),
        Some("calendar") => false,
        Some("30") => true,
        Some(other) => error::invalid(format!("count_back_months is 'calendar' or '30', not \"{other}\"")),
    };
    if let Some(c) = customer {
        input::text(Some(c), "customer");
        let known = Spi::connect(|cl| {
            !cl.select("SELECT 1 FROM credit.account WHERE customer = $1", Some(1), &[c.into()])
                .or_raise()
                .is_empty()
        });
        if !known {
            error::unknown_customer(c)
        }
    }
    let n_override = cei_months.as_ref().map(|m| input::positive_amount(Some(m), "cei_months"));

    let row = Spi::connect(|c| {
        let dates = c
            .select(
                "SELECT ($1::date - 1), ($2::date - $1::date + 1), \
                        ((extract(year FROM $2::date) * 12 + extract(month FROM $2::date)) \
                       - (extract(year FROM $1::date) * 12 + extract(month FROM $1::date)) + 1)::int",
                Some(1),
                &[start.into(), end.into()],
            )
            .or_raise()
            .first();
        let (before, days, months_touched) = dates.get_three::<Date, i32, i32>().or_raise();
        let (before, days, months_touched) = (before.unwrap(), days.unwrap(), months_touched.unwrap());
        let (beginning, _) = receivables(c, before, customer);
        let (ending, current) = receivables(c, end, customer);
        let sales = credit_sales(c, start, end, customer);

        // Count-back: months ending at period_end, newest first, until the AR is accounted for.
        let mut months = Vec::new();
        let mut left = ending;
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
            let (m_start, m_end) = (m_start.unwrap(), m_end.unwrap());
            let m_sales = credit_sales(c, m_start, m_end, customer);
            let m_days = if flat_30 {
                Decimal::from(30)
            } else {
                Decimal::from(
                    c.select("SELECT $2::date - $1::date + 1", Some(1), &[m_start.into(), m_end.into()])
                        .or_raise()
                        .first()
                        .get_one::<i32>()
                        .or_raise()
                        .unwrap(),
                )
            };
            if m_sales > Decimal::ZERO {
                left -= m_sales;
            }
            months.push((m_sales.max(Decimal::ZERO), m_days));
        }
        (beginning, ending, current, sales, days, months_touched, months)
    });
    let (beginning, ending, current, sales, days, months_touched, months) = row;
    let d = Decimal::from(days);
    let dso = metrics::dso(ending, sales, d);
    let bp = metrics::best_possible_dso(current, sales, d);
    let add = dso.zip(bp).map(|(a, b)| metrics::average_days_delinquent(a, b));
    let count_back = metrics::count_back_dso(ending, &months);
    let n = n_override.unwrap_or_else(|| Decimal::from(months_touched));
    let cei = metrics::cei(beginning, sales, n, ending, current);
    let avg_ar = (beginning + ending) / Decimal::TWO;
    let turnover = metrics::ar_turnover(sales, avg_ar);
    let acp = turnover.and_then(|t| metrics::average_collection_period(t, d));
    TableIterator::once((
        input::numeric(beginning),
        input::numeric(ending),
        input::numeric(current),
        input::numeric(sales),
        days,
        num(dso, 4),
        num(bp, 4),
        num(add, 4),
        input::numeric(count_back.round_dp(4)),
        num(cei, 4),
        num(turnover, 4),
        num(acp, 4),
    ))
}

extension_sql_file!(
    "../sql/aging.sql",
    name = "aging",
    requires = ["aggregates", _aging_args, _aging_buckets_problem, receivables_metrics]
);
