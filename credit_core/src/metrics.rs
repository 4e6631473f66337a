//! Receivables metrics (formulas in shared/reference/credit-metrics.md). Exact decimal arithmetic;
//! None where a formula divides by zero (no sales, no receivables).
use rust_decimal::Decimal;

/// Simple DSO = ending AR / credit sales × days in period.
pub fn dso(ending_ar: Decimal, credit_sales: Decimal, days: Decimal) -> Option<Decimal> {
    ending_ar.checked_div(credit_sales).map(|r| r * days)
}

/// Best possible DSO = current (not yet due) AR / credit sales × days.
pub fn best_possible_dso(current_ar: Decimal, credit_sales: Decimal, days: Decimal) -> Option<Decimal> {
    dso(current_ar, credit_sales, days)
}

/// Average days delinquent = DSO − best possible DSO.
pub fn average_days_delinquent(dso: Decimal, bpdso: Decimal) -> Decimal {
    dso - bpdso
}

/// Count-back DSO: walk the months newest first; while the AR left exceeds the month's sales,
/// count the whole month and subtract its sales; then count the fraction of the month the rest
/// represents, and stop. `months` is (sales, days in that month), newest first. If the AR exceeds
/// all the given months' sales, the result counts every month given (a lower bound).
///
/// `skip_empty`: a month without sales is passed over (its days do not count) — for seasonal
/// businesses, where counting an idle month's days would inflate the DSO; by default it counts.
pub fn count_back_dso(ending_ar: Decimal, months: &[(Decimal, Decimal)], skip_empty: bool) -> Decimal {
    let mut left = ending_ar;
    let mut days = Decimal::ZERO;
    for (sales, month_days) in months {
        if left <= Decimal::ZERO {
            break;
        }
        if skip_empty && *sales <= Decimal::ZERO {
            continue;
        }
        if left > *sales {
            days += month_days;
            left -= sales;
        } else {
            days += month_days * left / sales;
            left = Decimal::ZERO;
        }
    }
    days
}

/// Collection effectiveness index, in percent:
/// (B + S/N − E_total) / (B + S/N − E_current) × 100, N = months in the period. N = 1 gives the
/// second published form (without /N).
pub fn cei(
    beginning_ar: Decimal,
    credit_sales: Decimal,
    months: Decimal,
    ending_total_ar: Decimal,
    ending_current_ar: Decimal,
) -> Option<Decimal> {
    let monthly = credit_sales.checked_div(months)?;
    let denom = beginning_ar + monthly - ending_current_ar;
    (beginning_ar + monthly - ending_total_ar).checked_div(denom).map(|r| r * Decimal::ONE_HUNDRED)
}

/// AR turnover = credit sales / average AR.
pub fn ar_turnover(credit_sales: Decimal, average_ar: Decimal) -> Option<Decimal> {
    credit_sales.checked_div(average_ar)
}

/// Average collection period = days in the year / AR turnover.
pub fn average_collection_period(turnover: Decimal, days_in_year: Decimal) -> Option<Decimal> {
    days_in_year.checked_div(turnover)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn published_dso_bpdso_add() {
        // AR 15,000, current 4,000, credit sales 10,000 over 30 days -> DSO 45, BPDSO 12, ADD 33.
        let dso = dso(d("15000"), d("10000"), d("30")).unwrap();
        let bp = best_possible_dso(d("4000"), d("10000"), d("30")).unwrap();
        assert_eq!(dso, d("45"));
        assert_eq!(bp, d("12"));
        assert_eq!(average_days_delinquent(dso, bp), d("33"));
    }

    #[test]
    fn published_count_back() {
        // Ending AR 212,000; monthly sales newest first 100,000 / 80,000 / 70,000; 30-day months.
        let months = [(d("100000"), d("30")), (d("80000"), d("30")), (d("70000"), d("30"))];
        let v = count_back_dso(d("212000"), &months, false);
        assert_eq!(v.round_dp(3), d("73.714"));
        // calendar days: Nov 30, Oct 31, Sep 30
        let cal = [(d("100000"), d("30")), (d("80000"), d("31")), (d("70000"), d("30"))];
        assert_eq!(count_back_dso(d("212000"), &cal, false).round_dp(3), d("74.714"));
        assert_eq!(count_back_dso(d("0"), &months, false), d("0"));
        assert_eq!(count_back_dso(d("50000"), &months, false), d("15"));
    }

    #[test]
    fn count_back_over_an_idle_month() {
        // Ending AR 150,000; newest first: 100,000, an idle month, 80,000 (30-day months).
        let months = [(d("100000"), d("30")), (d("0"), d("30")), (d("80000"), d("30"))];
        // Counting the idle month: 30 + 30 + 30 x 50/80 = 78.75; passing over it: 30 + 18.75.
        assert_eq!(count_back_dso(d("150000"), &months, false), d("78.75"));
        assert_eq!(count_back_dso(d("150000"), &months, true), d("48.75"));
        // Without an idle month both are the same.
        let busy = [(d("100000"), d("30")), (d("80000"), d("30"))];
        assert_eq!(count_back_dso(d("150000"), &busy, true), count_back_dso(d("150000"), &busy, false));
    }

    #[test]
    fn cei_both_forms_and_zero_division() {
        // B 10,000, S 30,000 over 3 months, E 12,000 of which current 6,000.
        let v = cei(d("10000"), d("30000"), d("3"), d("12000"), d("6000")).unwrap();
        assert_eq!(v.round_dp(6), d("57.142857"));
        let one = cei(d("10000"), d("30000"), d("1"), d("12000"), d("6000")).unwrap();
        assert_eq!(one.round_dp(4), d("82.3529"));
        assert_eq!(cei(d("0"), d("0"), d("1"), d("0"), d("0")), None);
        assert_eq!(dso(d("1"), d("0"), d("30")), None);
    }

    #[test]
    fn turnover_and_collection_period() {
        let t = ar_turnover(d("1200000"), d("100000")).unwrap();
        assert_eq!(t, d("12"));
        assert_eq!(average_collection_period(t, d("365")).unwrap().round_dp(2), d("30.42"));
        assert_eq!(ar_turnover(d("1"), d("0")), None);
    }
}
