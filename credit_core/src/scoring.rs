//! Credit score (0-100) from transparent components, grade lookup and the limit a review proposes.
//! Every component maps its raw value to 0-100 points by a fixed, documented line; the score is
//! the weighted mean of the components that have data (a component without data is left out and
//! the other weights share its part), so a new customer is not punished for having no history.
use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Paydex,
    WeightedDaysLate,
    OnTimeRatio,
    DaysPastDue,
    Utilization,
    Relationship,
    Dunning,
    Commitments,
    ExternalRating,
}

impl Component {
    pub const ALL: [Component; 9] = [
        Component::Paydex,
        Component::WeightedDaysLate,
        Component::OnTimeRatio,
        Component::DaysPastDue,
        Component::Utilization,
        Component::Relationship,
        Component::Dunning,
        Component::Commitments,
        Component::ExternalRating,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Component::Paydex => "paydex",
            Component::WeightedDaysLate => "weighted_days_late",
            Component::OnTimeRatio => "on_time_ratio",
            Component::DaysPastDue => "days_past_due",
            Component::Utilization => "utilization",
            Component::Relationship => "relationship_months",
            Component::Dunning => "dunning_level",
            Component::Commitments => "kept_commitments",
            Component::ExternalRating => "external_rating",
        }
    }

    pub fn parse(s: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.code() == s)
    }

    /// Points 0-100 for a raw value.
    /// - paydex: the PAYDEX-like score itself (80 = pays on time).
    /// - weighted_days_late: 100 at 0 days or early, minus 2 points a day late (0 at 50 days).
    /// - on_time_ratio: share of the amount paid on time, times 100.
    /// - days_past_due (oldest open invoice): 100 when nothing is overdue, 0 at 90 days or more.
    /// - utilization (exposure / limit): 100 up to 50 %, 50 at 100 %, 0 at 120 % and above.
    /// - relationship_months: 100/36 a month, full marks after three years.
    /// - dunning_level (highest reached): 100 at none, minus 25 a level.
    /// - kept_commitments (share of promises and payment arrangements kept): times 100.
    /// - external_rating (the agencies' ratings valid on the day, normalised 0-100): itself.
    pub fn points(self, raw: Decimal) -> Decimal {
        let d = |v: i64| Decimal::from(v);
        let p = match self {
            Component::Paydex => raw,
            Component::WeightedDaysLate => d(100) - d(2) * raw.max(Decimal::ZERO),
            Component::OnTimeRatio => raw * d(100),
            Component::DaysPastDue => d(100) - raw.max(Decimal::ZERO) * d(100) / d(90),
            Component::Utilization => {
                let half = Decimal::new(5, 1);
                if raw <= half {
                    d(100)
                } else if raw <= Decimal::ONE {
                    d(100) - (raw - half) * d(100)
                } else {
                    d(50) - (raw - Decimal::ONE) * d(250)
                }
            }
            Component::Relationship => raw * d(100) / d(36),
            Component::Dunning => d(100) - raw * d(25),
            Component::Commitments => raw * d(100),
            Component::ExternalRating => raw,
        };
        p.clamp(Decimal::ZERO, d(100)).round_dp(2)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    pub component: Component,
    pub raw: Option<Decimal>,
    pub points: Option<Decimal>,
    pub weight: Decimal,
}

/// The score (None when no weighted component has data) and each component's part.
pub fn score(
    inputs: &[(Component, Option<Decimal>)],
    weights: &[(Component, Decimal)],
) -> (Option<Decimal>, Vec<Scored>) {
    let weight_of = |c: Component| weights.iter().find(|(w, _)| *w == c).map(|(_, w)| *w).unwrap_or(Decimal::ZERO);
    let parts: Vec<Scored> = Component::ALL
        .iter()
        .map(|&c| {
            let raw = inputs.iter().find(|(i, _)| *i == c).and_then(|(_, v)| *v);
            Scored { component: c, raw, points: raw.map(|r| c.points(r)), weight: weight_of(c) }
        })
        .collect();
    let (sum, wsum) = parts
        .iter()
        .filter_map(|p| p.points.map(|pt| (pt * p.weight, p.weight)))
        .fold((Decimal::ZERO, Decimal::ZERO), |(s, w), (a, b)| (s + a, w + b));
    let total = (wsum > Decimal::ZERO).then(|| (sum / wsum).round_dp(2));
    (total, parts)
}

/// Whether any payment-behaviour component has data. Without payment history a customer is not
/// graded: a score from only "nothing overdue" and "limit unused" would rate a stranger highly.
pub fn has_payment_history(inputs: &[(Component, Option<Decimal>)]) -> bool {
    inputs.iter().any(|(c, v)| {
        v.is_some() && matches!(c, Component::Paydex | Component::WeightedDaysLate | Component::OnTimeRatio)
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    pub grade: String,
    pub min_score: Decimal,
    /// Exclusive; None = no upper bound.
    pub max_score: Option<Decimal>,
}

pub fn grade_for(grades: &[Grade], score: Decimal) -> Option<&Grade> {
    grades.iter().find(|g| g.min_score <= score && g.max_score.is_none_or(|m| score < m))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitOutcome {
    /// Apply at once (a decrease, or an increase within the approval threshold).
    Apply,
    /// An increase above the threshold: becomes an approval request.
    Request,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub limit: Decimal,
    pub outcome: LimitOutcome,
    pub reason: String,
}

pub struct ReviewRules {
    pub coefficient: Decimal,
    pub terms_days: i32,
    pub max_limit: Option<Decimal>,
    /// An increase is capped at old_limit × (1 + ratio) per review (not applied when the old limit is 0).
    pub max_increase_ratio: Option<Decimal>,
    /// Increases larger than this need approval; None = every increase needs approval.
    pub approval_above: Option<Decimal>,
    /// A decrease is capped at old_limit × ratio per review (None: no cap).
    pub max_decrease_ratio: Option<Decimal>,
    /// A decrease of more than old_limit × ratio needs approval (None: every decrease applies).
    pub decrease_approval_ratio: Option<Decimal>,
    /// A change within old_limit × ratio either way is not made (None: every change is).
    pub tolerance_ratio: Option<Decimal>,
}

/// How much a score stands on, and whether it may grade: a grade needs `min_settled` invoices
/// settled by payment and `min_months` of relationship; below either the customer is new or
/// unrated and keeps the limit it was given. Strong evidence (`strong_payments` payments in the
/// 12 months) lets a grade move more than the step a review allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub settled_invoices: i64,
    pub payments_12_months: i64,
    pub relationship_months: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRules {
    pub min_settled: i64,
    pub min_months: i64,
    pub strong_payments: i64,
}

/// rated: enough evidence to grade; new: the relationship is younger than the minimum; unrated:
/// old enough, but too few invoices settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Rated,
    New,
    Unrated,
}

impl Standing {
    pub fn code(self) -> &'static str {
        match self {
            Standing::Rated => "rated",
            Standing::New => "new",
            Standing::Unrated => "unrated",
        }
    }
}

impl Evidence {
    pub fn standing(&self, r: &EvidenceRules) -> (Standing, String) {
        if self.relationship_months < r.min_months {
            (
                Standing::New,
                format!("{} months of relationship, a grade needs {}", self.relationship_months, r.min_months),
            )
        } else if self.settled_invoices < r.min_settled {
            (
                Standing::Unrated,
                format!("{} invoices settled by payment, a grade needs {}", self.settled_invoices, r.min_settled),
            )
        } else {
            (
                Standing::Rated,
                format!(
                    "{} invoices settled, {} payments in 12 months, {} months of relationship",
                    self.settled_invoices, self.payments_12_months, self.relationship_months
                ),
            )
        }
    }

    pub fn strong(&self, r: &EvidenceRules) -> bool {
        self.payments_12_months >= r.strong_payments
    }
}

/// The grade a review gives: the score's grade, but at most `max_steps` ranks from the current one
/// unless the evidence is strong (a first grade is the score's). `ranked` is best first. Returns
/// the grade and whether the step limit held it back.
pub fn stepped_grade<'g>(
    ranked: &'g [Grade],
    current: Option<&str>,
    scored: &'g Grade,
    max_steps: i64,
    strong: bool,
) -> (&'g Grade, bool) {
    let pos = |g: &str| ranked.iter().position(|x| x.grade == g);
    let (Some(from), Some(to)) = (current.and_then(pos), pos(&scored.grade)) else {
        return (scored, false);
    };
    let steps = max_steps.max(1) as usize;
    if strong || from.abs_diff(to) <= steps {
        return (scored, false);
    }
    let held = if to > from { from + steps } else { from - steps };
    (&ranked[held], true)
}

/// Proposed limit = average monthly sales (months with sales) × terms in months × grade
/// coefficient, rounded down to a whole unit, capped by the policy maximum and the maximum
/// increase per review. Without sales history the limit is left alone.
pub fn propose(old_limit: Decimal, avg_monthly_sales: Option<Decimal>, r: &ReviewRules) -> Proposal {
    let Some(sales) = avg_monthly_sales.filter(|s| *s > Decimal::ZERO) else {
        return Proposal {
            limit: old_limit,
            outcome: LimitOutcome::Unchanged,
            reason: "no sales in the last 12 months".into(),
        };
    };
    let months = Decimal::from(r.terms_days) / Decimal::from(30);
    let mut limit = (sales * months * r.coefficient).floor();
    let mut why = format!(
        "average monthly sales {} x {} months x coefficient {}",
        sales.round_dp(2),
        months.round_dp(2),
        r.coefficient
    );
    if let Some(max) = r.max_limit {
        if limit > max {
            limit = max;
            why.push_str(&format!(", capped at the policy maximum {max}"));
        }
    }
    if let Some(ratio) = r.max_increase_ratio {
        let cap = (old_limit * (Decimal::ONE + ratio)).floor();
        if old_limit > Decimal::ZERO && limit > cap {
            limit = cap;
            why.push_str(&format!(", capped at the maximum increase per review ({ratio})"));
        }
    }
    decide(old_limit, limit, why, r)
}

/// A review's target for a grade that means no credit (coefficient 0): 0, under the same decrease
/// rules as any other.
pub fn propose_no_credit(old_limit: Decimal, grade: &str, r: &ReviewRules) -> Proposal {
    decide(old_limit, Decimal::ZERO, format!("grade {grade} means no credit"), r)
}

/// The decrease rules, then the outcome: a decrease is capped at the maximum per review, and one
/// larger than the approval share waits for approval like a large increase.
fn decide(old_limit: Decimal, target: Decimal, mut why: String, r: &ReviewRules) -> Proposal {
    let mut limit = target;
    if let Some(tol) = r.tolerance_ratio.filter(|_| old_limit > Decimal::ZERO && target != old_limit) {
        if (target - old_limit).abs() <= (old_limit * tol).floor() {
            why.push_str(&format!(" = {target}, within the tolerance ({tol}) of the current limit: left as it is"));
            return Proposal { limit: old_limit, outcome: LimitOutcome::Unchanged, reason: why };
        }
    }
    if limit < old_limit {
        if let Some(ratio) = r.max_decrease_ratio {
            let floor = (old_limit * (Decimal::ONE - ratio.min(Decimal::ONE))).ceil();
            if limit < floor {
                limit = floor;
                why.push_str(&format!(", held at the maximum decrease per review ({ratio})"));
            }
        }
    }
    let decrease_needs_approval =
        limit < old_limit && r.decrease_approval_ratio.is_some_and(|a| old_limit - limit > (old_limit * a).floor());
    let outcome = if limit == old_limit {
        LimitOutcome::Unchanged
    } else if (limit < old_limit && !decrease_needs_approval)
        || (limit > old_limit && r.approval_above.is_some_and(|a| limit - old_limit <= a))
    {
        LimitOutcome::Apply
    } else {
        LimitOutcome::Request
    };
    if decrease_needs_approval {
        why.push_str(", a decrease that large needs approval");
    }
    Proposal { limit, outcome, reason: why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn points_lines() {
        assert_eq!(Component::WeightedDaysLate.points(dec("-5")), dec("100"));
        assert_eq!(Component::WeightedDaysLate.points(dec("10")), dec("80"));
        assert_eq!(Component::WeightedDaysLate.points(dec("60")), dec("0"));
        assert_eq!(Component::Utilization.points(dec("0.5")), dec("100"));
        assert_eq!(Component::Utilization.points(dec("1")), dec("50"));
        assert_eq!(Component::Utilization.points(dec("1.2")), dec("0"));
        assert_eq!(Component::DaysPastDue.points(dec("45")), dec("50"));
        assert_eq!(Component::Relationship.points(dec("48")), dec("100"));
        assert_eq!(Component::Dunning.points(dec("2")), dec("50"));
        assert_eq!(Component::Commitments.points(dec("0.5")), dec("50"));
        assert_eq!(Component::Commitments.points(dec("1")), dec("100"));
        assert_eq!(Component::OnTimeRatio.points(dec("0.75")), dec("75"));
    }

    #[test]
    fn missing_components_do_not_count() {
        let w = vec![(Component::Paydex, dec("2")), (Component::Utilization, dec("1")), (Component::Dunning, dec("1"))];
        let (s, parts) = score(&[(Component::Paydex, Some(dec("80"))), (Component::Utilization, Some(dec("1")))], &w);
        assert_eq!(s, Some(dec("70"))); // (80*2 + 50*1) / 3
        assert_eq!(parts.len(), Component::ALL.len());
        assert_eq!(score(&[], &w).0, None);
        assert!(!has_payment_history(&[(Component::Utilization, Some(dec("0"))), (Component::Paydex, None)]));
        assert!(has_payment_history(&[(Component::OnTimeRatio, Some(dec("1")))]));
    }

    #[test]
    fn grades_by_range() {
        let g = vec![
            Grade { grade: "A".into(), min_score: dec("70"), max_score: None },
            Grade { grade: "B".into(), min_score: dec("0"), max_score: Some(dec("70")) },
        ];
        assert_eq!(grade_for(&g, dec("69.99")).unwrap().grade, "B");
        assert_eq!(grade_for(&g, dec("70")).unwrap().grade, "A");
    }

    fn rules() -> ReviewRules {
        ReviewRules {
            coefficient: dec("1.5"),
            terms_days: 30,
            max_limit: Some(dec("100000")),
            max_increase_ratio: Some(dec("0.5")),
            approval_above: Some(dec("10000")),
            max_decrease_ratio: None,
            decrease_approval_ratio: None,
            tolerance_ratio: None,
        }
    }

    #[test]
    fn small_changes_are_left_alone() {
        let r = ReviewRules { tolerance_ratio: Some(dec("0.2")), ..rules() };
        // 30,000 against 27,000: within 20 %
        let p = propose(dec("27000"), Some(dec("20000")), &r);
        assert_eq!((p.limit, p.outcome.clone()), (dec("27000"), LimitOutcome::Unchanged));
        assert!(p.reason.contains("within the tolerance"), "{}", p.reason);
        // 30,000 against 20,000: 50 % more, applies as before (capped +50 %, within approval_above)
        assert_eq!(propose(dec("20000"), Some(dec("20000")), &r).outcome, LimitOutcome::Apply);
        // from 0, any limit is a change
        assert_eq!(propose(dec("0"), Some(dec("20000")), &r).outcome, LimitOutcome::Request);
    }

    #[test]
    fn decreases_are_capped_and_large_ones_need_approval() {
        let r =
            ReviewRules { max_decrease_ratio: Some(dec("0.5")), decrease_approval_ratio: Some(dec("0.25")), ..rules() };
        // to 1,500 from 50,000: held at 25,000, a 50 % decrease: approval
        let p = propose(dec("50000"), Some(dec("1000")), &r);
        assert_eq!((p.limit, p.outcome.clone()), (dec("25000"), LimitOutcome::Request));
        assert!(p.reason.contains("maximum decrease") && p.reason.contains("approval"), "{}", p.reason);
        // to 45,000 from 50,000 (10 %): applies
        let p = propose(dec("50000"), Some(dec("30000")), &r);
        assert_eq!((p.limit, p.outcome), (dec("45000"), LimitOutcome::Apply));
        // no credit: held at half, for approval
        let p = propose_no_credit(dec("10000"), "C", &r);
        assert_eq!((p.limit, p.outcome), (dec("5000"), LimitOutcome::Request));
        assert_eq!(propose_no_credit(dec("0"), "C", &r).outcome, LimitOutcome::Unchanged);
    }

    #[test]
    fn grades_move_a_step_unless_the_evidence_is_strong() {
        let g = |n: &str, lo: &str| Grade { grade: n.into(), min_score: dec(lo), max_score: None };
        let ranked = vec![g("AAA", "90"), g("AA", "80"), g("A", "70"), g("B", "55"), g("C", "0")];
        assert_eq!(stepped_grade(&ranked, Some("AA"), &ranked[4], 1, false), (&ranked[2], true));
        assert_eq!(stepped_grade(&ranked, Some("C"), &ranked[0], 1, false), (&ranked[3], true));
        assert_eq!(stepped_grade(&ranked, Some("AA"), &ranked[4], 2, false), (&ranked[3], true));
        assert_eq!(stepped_grade(&ranked, Some("AA"), &ranked[4], 1, true), (&ranked[4], false));
        assert_eq!(stepped_grade(&ranked, Some("AA"), &ranked[2], 1, false), (&ranked[2], false));
        assert_eq!(
            stepped_grade(&ranked, None, &ranked[4], 1, false),
            (&ranked[4], false),
            "a first grade is the score's"
        );
        assert_eq!(stepped_grade(&ranked, Some("gone"), &ranked[4], 1, false), (&ranked[4], false));
        let rules = EvidenceRules { min_settled: 3, min_months: 3, strong_payments: 12 };
        let e = |s, p, m| Evidence { settled_invoices: s, payments_12_months: p, relationship_months: m };
        assert_eq!(e(1, 1, 1).standing(&rules).0, Standing::New);
        assert_eq!(e(2, 2, 6).standing(&rules).0, Standing::Unrated);
        assert_eq!(e(3, 3, 3).standing(&rules).0, Standing::Rated);
        assert!(e(20, 12, 24).strong(&rules) && !e(20, 11, 24).strong(&rules));
    }

    #[test]
    fn proposals() {
        // 20,000 a month x 1 month x 1.5 = 30,000; from 25,000 (+5,000, within threshold): apply
        let p = propose(dec("25000"), Some(dec("20000")), &rules());
        assert_eq!((p.limit, p.outcome), (dec("30000"), LimitOutcome::Apply));
        // from 10,000: capped at +50 % = 15,000, increase 5,000: apply
        let p = propose(dec("10000"), Some(dec("20000")), &rules());
        assert_eq!((p.limit, p.outcome.clone()), (dec("15000"), LimitOutcome::Apply));
        assert!(p.reason.contains("maximum increase"));
        // from 50,000 to 90,000 capped by the policy maximum 100,000 and +50 % = 75,000: request
        let p = propose(dec("50000"), Some(dec("60000")), &rules());
        assert_eq!((p.limit, p.outcome), (dec("75000"), LimitOutcome::Request));
        // decreases apply at once
        let p = propose(dec("50000"), Some(dec("1000")), &rules());
        assert_eq!((p.limit, p.outcome), (dec("1500"), LimitOutcome::Apply));
        assert_eq!(propose(dec("5"), None, &rules()).outcome, LimitOutcome::Unchanged);
    }

    proptest! {
        #[test]
        fn score_is_within_0_100(vals in proptest::collection::vec(proptest::option::of(-1000i64..1000), 9),
                                 ws in proptest::collection::vec(0i64..10, 9)) {
            let inputs: Vec<_> = Component::ALL.iter().zip(&vals).map(|(c, v)| (*c, v.map(Decimal::from))).collect();
            let weights: Vec<_> = Component::ALL.iter().zip(&ws).map(|(c, w)| (*c, Decimal::from(*w))).collect();
            if let (Some(s), _) = score(&inputs, &weights) {
                prop_assert!(s >= Decimal::ZERO && s <= Decimal::from(100));
            }
        }

        #[test]
        fn proposal_respects_caps(old in 0i64..200_000, sales in 1i64..200_000) {
            let r = rules();
            let p = propose(Decimal::from(old), Some(Decimal::from(sales)), &r);
            prop_assert!(p.limit <= dec("100000") || p.limit <= Decimal::from(old));
            if old > 0 && p.limit > Decimal::from(old) {
                prop_assert!(p.limit <= Decimal::from(old) * dec("1.5"));
            }
            if p.outcome == LimitOutcome::Request {
                prop_assert!(p.limit - Decimal::from(old) > dec("10000"));
            }
        }

        #[test]
        fn a_review_never_cuts_more_than_the_cap(old in 0i64..200_000, sales in 0i64..200_000) {
            let r = ReviewRules { max_decrease_ratio: Some(dec("0.3")), decrease_approval_ratio: Some(dec("0.1")), ..rules() };
            let old = Decimal::from(old);
            let p = propose(old, Some(Decimal::from(sales)), &r);
            prop_assert!(p.limit >= old * dec("0.7"));
            if p.limit < old && p.outcome == LimitOutcome::Apply {
                prop_assert!(old - p.limit <= (old * dec("0.1")).floor());
            }
        }
    }
}
