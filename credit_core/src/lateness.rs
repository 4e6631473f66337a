//! Payment-behaviour aggregates: weighted days late, a PAYDEX-like score, on-time ratios.
//! States hold exact decimal sums (each row's contribution rounded to a fixed scale first), so a
//! serial and a parallel (combined) aggregation give bit-identical results.
use rust_decimal::Decimal;

/// Scale each per-row product is rounded to before summing (sums of fixed-scale decimals are exact).
const ROW_SCALE: u32 = 8;

/// Σ amount × days / Σ amount. `clamp` counts early payment as 0 days (Experian's DBT convention).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeightedDays {
    pub amount: Decimal,
    pub weighted: Decimal,
}

impl WeightedDays {
    pub fn add(&mut self, days: i32, amount: Decimal, clamp: bool) {
        let days = if clamp { days.max(0) } else { days };
        self.amount += amount;
        self.weighted += amount * Decimal::from(days);
    }
    pub fn combine(&mut self, other: &Self) {
        self.amount += other.amount;
        self.weighted += other.weighted;
    }
    pub fn result(&self) -> Option<Decimal> {
        self.weighted.checked_div(self.amount)
    }
}

/// The transparent PAYDEX-like curve: days beyond terms → points, linear between these points and
/// clamped outside them. D&B's own PAYDEX algorithm is proprietary; this is not it.
pub const PAYDEX_POINTS: [(i32, i32); 10] =
    [(-30, 100), (-20, 90), (-10, 85), (0, 80), (15, 70), (22, 60), (30, 50), (60, 40), (90, 30), (120, 20)];

pub fn paydex_points(days_beyond_terms: i32) -> Decimal {
    let (first, last) = (PAYDEX_POINTS[0], PAYDEX_POINTS[PAYDEX_POINTS.len() - 1]);
    if days_beyond_terms <= first.0 {
        return first.1.into();
    }
    if days_beyond_terms >= last.0 {
        return last.1.into();
    }
    for w in PAYDEX_POINTS.windows(2) {
        let ((d0, p0), (d1, p1)) = (w[0], w[1]);
        if days_beyond_terms <= d1 {
            let t = Decimal::from(days_beyond_terms - d0) / Decimal::from(d1 - d0);
            return (Decimal::from(p0) + Decimal::from(p1 - p0) * t).round_dp(ROW_SCALE);
        }
    }
    last.1.into()
}

/// Amount-weighted PAYDEX-like score, 1-100.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paydex {
    pub amount: Decimal,
    pub weighted: Decimal,
    pub count: i64,
}

impl Paydex {
    pub fn add(&mut self, days_beyond_terms: i32, amount: Decimal) {
        self.amount += amount;
        self.weighted += (amount * paydex_points(days_beyond_terms)).round_dp(ROW_SCALE);
        self.count += 1;
    }
    pub fn combine(&mut self, other: &Self) {
        self.amount += other.amount;
        self.weighted += other.weighted;
        self.count += other.count;
    }
    pub fn result(&self) -> Option<Decimal> {
        self.weighted.checked_div(self.amount).map(|s| s.round_dp(2))
    }
}

/// Share of items settled on time (days late <= grace days), by count and by amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnTime {
    pub count: i64,
    pub on_time_count: i64,
    pub amount: Decimal,
    pub on_time_amount: Decimal,
}

impl OnTime {
    pub fn add(&mut self, days_late: i32, amount: Decimal, grace_days: i32) {
        let on_time = days_late <= grace_days;
        self.count += 1;
        self.amount += amount;
        if on_time {
            self.on_time_count += 1;
            self.on_time_amount += amount;
        }
    }
    pub fn combine(&mut self, other: &Self) {
        self.count += other.count;
        self.on_time_count += other.on_time_count;
        self.amount += other.amount;
        self.on_time_amount += other.on_time_amount;
    }
    pub fn by_count(&self) -> Option<Decimal> {
        Decimal::from(self.on_time_count).checked_div(Decimal::from(self.count))
    }
    pub fn by_amount(&self) -> Option<Decimal> {
        self.on_time_amount.checked_div(self.amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn paydex_curve_points_and_clamps() {
        for (days, pts) in PAYDEX_POINTS {
            assert_eq!(paydex_points(days), Decimal::from(pts), "at {days}");
        }
        assert_eq!(paydex_points(-400), d("100"));
        assert_eq!(paydex_points(5000), d("20"));
        assert_eq!(paydex_points(-25), d("95"));
        assert_eq!(paydex_points(45), d("45"));
        assert_eq!(paydex_points(5), d("76.66666667"));
    }

    #[test]
    fn weighted_days_signed_and_clamped() {
        let mut s = WeightedDays::default();
        s.add(-10, d("100"), false);
        s.add(20, d("300"), false);
        assert_eq!(s.result(), Some(d("12.5")));
        let mut c = WeightedDays::default();
        c.add(-10, d("100"), true);
        c.add(20, d("300"), true);
        assert_eq!(c.result(), Some(d("15")));
        assert_eq!(WeightedDays::default().result(), None);
    }

    #[test]
    fn on_time_with_grace() {
        let mut s = OnTime::default();
        s.add(0, d("100"), 0);
        s.add(3, d("300"), 0);
        s.add(3, d("600"), 5);
        assert_eq!(s.by_count().unwrap().round_dp(4), d("0.6667"));
        assert_eq!(s.by_amount(), Some(d("0.7")));
    }

    fn rows() -> impl Strategy<Value = Vec<(i32, i64)>> {
        proptest::collection::vec((-200i32..400, 1i64..10_000_000), 0..60)
    }

    proptest! {
        // Any split of the rows into partial states, combined in any order, equals the serial state.
        #[test]
        fn serial_equals_combined(rows in rows(), cut in 0usize..60, clamp: bool) {
            let cut = cut.min(rows.len());
            let amt = |a: i64| Decimal::new(a, 2);
            let (mut w, mut p, mut o) = (WeightedDays::default(), Paydex::default(), OnTime::default());
            for (days, a) in &rows { w.add(*days, amt(*a), clamp); p.add(*days, amt(*a)); o.add(*days, amt(*a), 3); }
            let (mut w1, mut p1, mut o1) = (WeightedDays::default(), Paydex::default(), OnTime::default());
            let (mut w2, mut p2, mut o2) = (WeightedDays::default(), Paydex::default(), OnTime::default());
            for (days, a) in &rows[..cut] { w1.add(*days, amt(*a), clamp); p1.add(*days, amt(*a)); o1.add(*days, amt(*a), 3); }
            for (days, a) in &rows[cut..] { w2.add(*days, amt(*a), clamp); p2.add(*days, amt(*a)); o2.add(*days, amt(*a), 3); }
            w2.combine(&w1); p2.combine(&p1); o2.combine(&o1);
            prop_assert_eq!(w, w2);
            prop_assert_eq!(p, p2);
            prop_assert_eq!(o, o2);
            if let Some(score) = p.result() {
                prop_assert!(score >= d("20") && score <= d("100"));
            }
        }
    }
}
