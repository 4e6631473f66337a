//! Late-payment interest (逾期利息), as statutory late-payment interest works: for every day an
//! invoice is past due, interest on what is open that day at the rate in force that day, by
//! dunning level (the level the invoice has reached by then) and optionally over a reference rate
//! that changes by period. Days are counted as day numbers (any epoch).
//!
//! Conventions: interest runs from the day after the due date up to and including the day of the
//! payment (an application dated day d pays at the end of d, so d still bears interest on what it
//! paid); a year has 365 days; the total is rounded to cents once. Interest is a claim on the
//! customer, computed from the ledger; it is not posted, and what accrued stays after the
//! principal is paid.
use rust_decimal::Decimal;

/// The rate of one dunning level: from `days_past_due` on (the level's days plus any grace), an
/// annual rate, or a margin over the reference rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelRate {
    pub days_past_due: i32,
    pub annual_rate: Decimal,
    pub over_reference: bool,
}

/// A reference rate (e.g. a central bank's) in force from a day until the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRate {
    pub from_day: i32,
    pub rate: Decimal,
}

/// The annual rate on `day` for an invoice due on `due`: that of the highest level reached by then
/// (levels sorted or not); None before any level with a rate is reached.
pub fn rate_on(day: i32, due: i32, levels: &[LevelRate], refs: &[ReferenceRate]) -> Option<Decimal> {
    let past = day - due;
    let level = levels.iter().filter(|l| l.days_past_due <= past).max_by_key(|l| l.days_past_due)?;
    if level.over_reference {
        let reference =
            refs.iter().filter(|r| r.from_day <= day).max_by_key(|r| r.from_day).map_or(Decimal::ZERO, |r| r.rate);
        Some((reference + level.annual_rate).max(Decimal::ZERO))
    } else {
        Some(level.annual_rate)
    }
}

/// Interest accrued on an invoice of `amount`, due on `due`, up to and including `as_of`.
/// `applications`: (day, amount) of everything applied to it (negative for a reversal), any order.
pub fn accrued(
    amount: Decimal,
    due: i32,
    applications: &[(i32, Decimal)],
    levels: &[LevelRate],
    refs: &[ReferenceRate],
    as_of: i32,
) -> Decimal {
    if as_of <= due {
        return Decimal::ZERO;
    }
    // Days where what is open or the rate may change: the day after an application, a level's
    // first day, a reference rate's first day.
    let mut cuts: Vec<i32> = vec![due + 1, as_of + 1];
    cuts.extend(applications.iter().map(|(d, _)| d + 1));
    cuts.extend(levels.iter().map(|l| due + l.days_past_due.max(1)));
    cuts.extend(refs.iter().map(|r| r.from_day));
    cuts.retain(|d| *d > due && *d <= as_of + 1);
    cuts.sort_unstable();
    cuts.dedup();
    let year = Decimal::from(365);
    let mut total = Decimal::ZERO;
    for w in cuts.windows(2) {
        let (from, to) = (w[0], w[1]); // days from..to-1, on which nothing changes
        let open = amount - applications.iter().filter(|(d, _)| *d < from).map(|(_, a)| *a).sum::<Decimal>();
        if open <= Decimal::ZERO {
            continue;
        }
        if let Some(rate) = rate_on(from, due, levels, refs) {
            total += open * rate * Decimal::from(to - from) / year;
        }
    }
    total.round_dp(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn flat(rate: &str) -> Vec<LevelRate> {
        vec![LevelRate { days_past_due: 1, annual_rate: d(rate), over_reference: false }]
    }

    #[test]
    fn a_year_late_at_ten_percent() {
        // 10,000 at 10 % for 365 days: 1,000.
        assert_eq!(accrued(d("10000"), 0, &[], &flat("0.10"), &[], 365), d("1000.00"));
        // Paid on day 73: interest for days 1..73.
        assert_eq!(accrued(d("10000"), 0, &[(73, d("10000"))], &flat("0.10"), &[], 365), d("200.00"));
        // Nothing before or on the due date, and none without a rate.
        assert_eq!(accrued(d("10000"), 10, &[], &flat("0.10"), &[], 10), Decimal::ZERO);
        assert_eq!(accrued(d("10000"), 0, &[], &[], &[], 365), Decimal::ZERO);
    }

    #[test]
    fn part_payments_and_levels() {
        // 1,000 due day 0; 8 % from day 1, 12 % from day 31 (a later level); 400 paid on day 20.
        let levels = vec![
            LevelRate { days_past_due: 1, annual_rate: d("0.08"), over_reference: false },
            LevelRate { days_past_due: 31, annual_rate: d("0.12"), over_reference: false },
        ];
        // days 1-20 on 1,000 at 8 %, 21-30 on 600 at 8 %, 31-60 on 600 at 12 %
        let want = (d("1000") * d("0.08") * d("20") + d("600") * d("0.08") * d("10") + d("600") * d("0.12") * d("30"))
            / d("365");
        assert_eq!(accrued(d("1000"), 0, &[(20, d("400"))], &levels, &[], 60), want.round_dp(2));
    }

    #[test]
    fn statutory_reference_rate_plus_margin() {
        // Reference 4 % until day 100, 3.5 % after; 8 points over it from the first day late.
        let levels = vec![LevelRate { days_past_due: 1, annual_rate: d("0.08"), over_reference: true }];
        let refs =
            vec![ReferenceRate { from_day: -500, rate: d("0.04") }, ReferenceRate { from_day: 100, rate: d("0.035") }];
        let want = (d("5000") * d("0.12") * d("99") + d("5000") * d("0.115") * d("50")) / d("365");
        assert_eq!(accrued(d("5000"), 0, &[], &levels, &refs, 149), want.round_dp(2));
        assert_eq!(rate_on(100, 0, &levels, &refs), Some(d("0.115")));
    }

    #[test]
    fn a_reversal_reopens_and_interest_runs_again() {
        // Paid on day 10, the payment reversed on day 40: interest on days 1-10 and 41-50.
        let apps = [(10, d("3650")), (40, d("-3650"))];
        assert_eq!(accrued(d("3650"), 0, &apps, &flat("0.10"), &[], 50), d("20.00"));
    }

    proptest! {
        // The segment sum equals a day-by-day sum.
        #[test]
        fn segments_equal_days(amount in 1i64..10_000_000, pays in proptest::collection::vec((1i32..200, 1i64..5_000_000), 0..5),
                               l2 in 2i32..120, as_of in 0i32..250) {
            let amount = Decimal::new(amount, 2);
            let apps: Vec<(i32, Decimal)> = pays.iter().map(|(dd, a)| (*dd, Decimal::new(*a, 2))).collect();
            let levels = vec![
                LevelRate { days_past_due: 1, annual_rate: d("0.05"), over_reference: false },
                LevelRate { days_past_due: l2, annual_rate: d("0.0875"), over_reference: true },
            ];
            let refs = vec![ReferenceRate { from_day: 0, rate: d("0.02") }, ReferenceRate { from_day: 90, rate: d("0.03") }];
            let mut daily = Decimal::ZERO;
            for day in 1..=as_of {
                let open = amount - apps.iter().filter(|(x, _)| *x < day).map(|(_, a)| *a).sum::<Decimal>();
                if open > Decimal::ZERO {
                    if let Some(r) = rate_on(day, 0, &levels, &refs) {
                        daily += open * r / Decimal::from(365);
                    }
                }
            }
            prop_assert_eq!(accrued(amount, 0, &apps, &levels, &refs, as_of), daily.round_dp(2));
        }
    }
}
