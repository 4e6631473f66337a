//! Credit policy matching. A policy row matches a customer when each of its match columns
//! (customer_type, region, product_category) is NULL or equal to the customer's value. Rows are
//! layered: for every field, the most specific matching row that sets it wins, so a row for one
//! region may set only overdue_block_days and inherit the rest.
//!
//! Precedence ("most specific"): more match columns set beats fewer; between rows with as many,
//! product_category beats customer_type beats region. Two rows with the same match columns cannot
//! exist (unique index), so the order is total and there are no ties left to break.
//!
//! Terms for one order: the customer's own terms_days when set, else the grade's, else the
//! policy's, else 30 days; an amount tier for the order then lengthens them (a tier is a floor,
//! never a cut).
use rust_decimal::Decimal;

/// Payment terms when nothing else says.
pub const DEFAULT_TERMS_DAYS: i32 = 30;
/// Dunning ladder when no policy names one.
pub const DEFAULT_LADDER: &str = "default";
/// Statement cycle when no policy sets one.
pub const DEFAULT_STATEMENT_CYCLE: &str = "monthly";
/// Near-limit warning ratio when no policy sets one.
/// Review defaults (docs/grading.md#a-review-a-credit-manager-accepts): a review leaves a limit alone
/// within 20 % of its target, cuts it by at most half, a cut of more than a quarter waits for approval, a grade moves a step at a time
/// unless a year holds 12 payments, and a grade needs 3 invoices settled and 3 months.
pub const DEFAULT_MAX_DECREASE_RATIO: Decimal = Decimal::from_parts(5, 0, 0, false, 1);
pub const DEFAULT_DECREASE_APPROVAL_RATIO: Decimal = Decimal::from_parts(25, 0, 0, false, 2);
pub const DEFAULT_MAX_GRADE_STEPS: i32 = 1;
/// Early warnings: a score drop of more than 10 points in 30 days; payments 10 days later.
pub const DEFAULT_WARNING_SCORE_DROP: Decimal = Decimal::from_parts(10, 0, 0, false, 0);
pub const DEFAULT_WARNING_DAYS_LATE_RISE: Decimal = Decimal::from_parts(10, 0, 0, false, 0);
/// Early warnings: open invoices the payment model gives a very-late probability of 0.5 or more.
pub const DEFAULT_WARNING_VERY_LATE_PROBABILITY: Decimal = Decimal::from_parts(5, 0, 0, false, 1);
pub const DEFAULT_LIMIT_TOLERANCE_RATIO: Decimal = Decimal::from_parts(2, 0, 0, false, 1);
pub const DEFAULT_STRONG_EVIDENCE_PAYMENTS: i32 = 12;
pub const DEFAULT_MIN_SETTLED_INVOICES: i32 = 3;
pub const DEFAULT_MIN_RELATIONSHIP_MONTHS: i32 = 3;

pub fn default_warn_ratio() -> Decimal {
    Decimal::new(8, 1)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    pub customer_type: Option<String>,
    pub region: Option<String>,
    pub product_category: Option<String>,
}

/// What is being matched: a customer, and for terms an order's product category.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    pub customer_type: Option<&'a str>,
    pub region: Option<&'a str>,
    pub product_category: Option<&'a str>,
}

impl Match {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        fn one(rule: &Option<String>, value: Option<&str>) -> bool {
            rule.as_deref().is_none_or(|r| Some(r) == value)
        }
        one(&self.customer_type, s.customer_type)
            && one(&self.region, s.region)
            && one(&self.product_category, s.product_category)
    }

    /// Sort key, larger = more specific: (columns set, product_category, customer_type, region).
    pub fn specificity(&self) -> (u8, bool, bool, bool) {
        let c = self.product_category.is_some();
        let t = self.customer_type.is_some();
        let r = self.region.is_some();
        (c as u8 + t as u8 + r as u8, c, t, r)
    }
}

/// The fields a policy row may set; None = inherit from a less specific row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub terms_days: Option<i32>,
    pub max_limit: Option<Decimal>,
    pub warn_ratio: Option<Decimal>,
    pub overdue_block_days: Option<i32>,
    pub prepayment_required: Option<bool>,
    pub max_increase_ratio: Option<Decimal>,
    pub approval_above: Option<Decimal>,
    pub releasing_role: Option<String>,
    pub blacklist_on_write_off: Option<bool>,
    pub dunning_ladder: Option<String>,
    pub blacklist_on_legal: Option<bool>,
    /// weekly | monthly | quarterly | none.
    pub statement_cycle: Option<String>,
    pub statement_min_balance: Option<Decimal>,
    /// Days after the due date before the ladder's overdue levels count (pre-due ones do not wait).
    pub grace_days: Option<i32>,
    pub max_decrease_ratio: Option<Decimal>,
    pub decrease_approval_ratio: Option<Decimal>,
    pub max_grade_steps: Option<i32>,
    pub limit_tolerance_ratio: Option<Decimal>,
    pub warning_score_drop: Option<Decimal>,
    pub warning_days_late_rise: Option<Decimal>,
    pub warning_very_late_probability: Option<Decimal>,
    pub warning_very_late_amount: Option<Decimal>,
    pub strong_evidence_payments: Option<i32>,
    pub min_settled_invoices: Option<i32>,
    pub min_relationship_months: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: i64,
    pub on: Match,
    pub fields: Fields,
}

/// The policy in force for one subject, with the row each field came from (None = built-in default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub terms_days: Option<i32>,
    pub max_limit: Option<Decimal>,
    pub warn_ratio: Decimal,
    pub overdue_block_days: Option<i32>,
    pub prepayment_required: bool,
    pub max_increase_ratio: Option<Decimal>,
    pub approval_above: Option<Decimal>,
    pub releasing_role: Option<String>,
    pub blacklist_on_write_off: bool,
    /// Dunning ladder (credit.dunning_level.ladder).
    pub dunning_ladder: String,
    pub blacklist_on_legal: bool,
    /// Statement cycle: weekly, monthly (the default), quarterly, or none.
    pub statement_cycle: String,
    /// No statement unless the closing balance reaches it (None: no minimum).
    pub statement_min_balance: Option<Decimal>,
    /// Grace days before an overdue dunning level is reached (0 by default).
    pub grace_days: i32,
    /// Reviews: the largest decrease per review and the share above which one needs approval.
    pub max_decrease_ratio: Decimal,
    pub decrease_approval_ratio: Decimal,
    /// Reviews: grade ranks a review may move, unless the evidence is strong (this many payments
    /// in 12 months).
    pub max_grade_steps: i32,
    pub strong_evidence_payments: i32,
    /// Reviews: a change within this share of the current limit is not made.
    pub limit_tolerance_ratio: Decimal,
    /// Early warnings: score points lost in 30 days, days later in 90 days, that raise one.
    pub warning_score_drop: Decimal,
    pub warning_days_late_rise: Decimal,
    /// Early warnings: the very-late probability of an open invoice that counts, and the open
    /// amount so predicted that raises one (0: any).
    pub warning_very_late_probability: Decimal,
    pub warning_very_late_amount: Decimal,
    /// The evidence a grade needs.
    pub min_settled_invoices: i32,
    pub min_relationship_months: i32,
    /// Ids of the matching rows, most specific first.
    pub matched: Vec<i64>,
}

/// Matching rows, most specific first.
pub fn ranked<'p>(policies: &'p [Policy], s: &Subject<'_>) -> Vec<&'p Policy> {
    let mut m: Vec<&Policy> = policies.iter().filter(|p| p.on.matches(s)).collect();
    m.sort_by(|a, b| b.on.specificity().cmp(&a.on.specificity()).then(a.id.cmp(&b.id)));
    m
}

pub fn resolve(policies: &[Policy], s: &Subject<'_>) -> Effective {
    let m = ranked(policies, s);
    fn first<T: Clone>(m: &[&Policy], f: impl Fn(&Fields) -> &Option<T>) -> Option<T> {
        m.iter().find_map(|p| f(&p.fields).clone())
    }
    Effective {
        terms_days: first(&m, |f| &f.terms_days),
        max_limit: first(&m, |f| &f.max_limit),
        warn_ratio: first(&m, |f| &f.warn_ratio).unwrap_or_else(default_warn_ratio),
        overdue_block_days: first(&m, |f| &f.overdue_block_days),
        prepayment_required: first(&m, |f| &f.prepayment_required).unwrap_or(false),
        max_increase_ratio: first(&m, |f| &f.max_increase_ratio),
        approval_above: first(&m, |f| &f.approval_above),
        releasing_role: first(&m, |f| &f.releasing_role),
        blacklist_on_write_off: first(&m, |f| &f.blacklist_on_write_off).unwrap_or(false),
        dunning_ladder: first(&m, |f| &f.dunning_ladder).unwrap_or_else(|| DEFAULT_LADDER.to_string()),
        blacklist_on_legal: first(&m, |f| &f.blacklist_on_legal).unwrap_or(false),
        statement_cycle: first(&m, |f| &f.statement_cycle).unwrap_or_else(|| DEFAULT_STATEMENT_CYCLE.to_string()),
        statement_min_balance: first(&m, |f| &f.statement_min_balance),
        grace_days: first(&m, |f| &f.grace_days).unwrap_or(0),
        max_decrease_ratio: first(&m, |f| &f.max_decrease_ratio).unwrap_or(DEFAULT_MAX_DECREASE_RATIO),
        decrease_approval_ratio: first(&m, |f| &f.decrease_approval_ratio).unwrap_or(DEFAULT_DECREASE_APPROVAL_RATIO),
        max_grade_steps: first(&m, |f| &f.max_grade_steps).unwrap_or(DEFAULT_MAX_GRADE_STEPS),
        limit_tolerance_ratio: first(&m, |f| &f.limit_tolerance_ratio).unwrap_or(DEFAULT_LIMIT_TOLERANCE_RATIO),
        warning_score_drop: first(&m, |f| &f.warning_score_drop).unwrap_or(DEFAULT_WARNING_SCORE_DROP),
        warning_days_late_rise: first(&m, |f| &f.warning_days_late_rise).unwrap_or(DEFAULT_WARNING_DAYS_LATE_RISE),
        warning_very_late_probability: first(&m, |f| &f.warning_very_late_probability)
            .unwrap_or(DEFAULT_WARNING_VERY_LATE_PROBABILITY),
        warning_very_late_amount: first(&m, |f| &f.warning_very_late_amount).unwrap_or(Decimal::ZERO),
        strong_evidence_payments: first(&m, |f| &f.strong_evidence_payments)
            .unwrap_or(DEFAULT_STRONG_EVIDENCE_PAYMENTS),
        min_settled_invoices: first(&m, |f| &f.min_settled_invoices).unwrap_or(DEFAULT_MIN_SETTLED_INVOICES),
        min_relationship_months: first(&m, |f| &f.min_relationship_months).unwrap_or(DEFAULT_MIN_RELATIONSHIP_MONTHS),
        matched: m.iter().map(|p| p.id).collect(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub id: i64,
    pub on: Match,
    pub min_amount: Decimal,
    pub terms_days: i32,
}

/// The tier for an order: the most specific tier *set* that matches the subject replaces the less
/// specific ones; within it, the highest min_amount at or below the amount. None when the amount is
/// below every tier of that set.
pub fn tier_for<'t>(tiers: &'t [Tier], s: &Subject<'_>, amount: Decimal) -> Option<&'t Tier> {
    let best = tiers.iter().filter(|t| t.on.matches(s)).map(|t| t.on.specificity()).max()?;
    tiers
        .iter()
        .filter(|t| t.on.matches(s) && t.on.specificity() == best && t.min_amount <= amount)
        .max_by(|a, b| a.min_amount.cmp(&b.min_amount))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermsSource {
    Account,
    Grade,
    Policy,
    Default,
    Tier,
    Window,
}

impl TermsSource {
    pub fn code(self) -> &'static str {
        match self {
            TermsSource::Account => "account",
            TermsSource::Grade => "grade",
            TermsSource::Policy => "policy",
            TermsSource::Default => "default",
            TermsSource::Tier => "tier",
            TermsSource::Window => "window",
        }
    }
}

/// Terms in days and where they came from.
pub fn terms(account: Option<i32>, grade: Option<i32>, policy: Option<i32>, tier: Option<i32>) -> (i32, TermsSource) {
    let base = account
        .map(|d| (d, TermsSource::Account))
        .or(grade.map(|d| (d, TermsSource::Grade)))
        .or(policy.map(|d| (d, TermsSource::Policy)))
        .unwrap_or((DEFAULT_TERMS_DAYS, TermsSource::Default));
    match tier {
        Some(t) if t > base.0 => (t, TermsSource::Tier),
        _ => base,
    }
}

/// How a terms window changes the terms it finds: `Set` replaces them, `AtLeast` lengthens them
/// to its days (a promotion), `AtMost` shortens them to its days (a seasonal category).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowMode {
    Set,
    AtLeast,
    AtMost,
}

impl WindowMode {
    pub fn parse(s: &str) -> Option<WindowMode> {
        match s {
            "set" => Some(WindowMode::Set),
            "at_least" => Some(WindowMode::AtLeast),
            "at_most" => Some(WindowMode::AtMost),
            _ => None,
        }
    }

    /// The terms after the window, from the terms before it.
    pub fn apply(self, before: i32, window: i32) -> i32 {
        match self {
            WindowMode::Set => window,
            WindowMode::AtLeast => before.max(window),
            WindowMode::AtMost => before.min(window),
        }
    }
}

/// Terms in force for a time (credit.terms_window): for orders and invoices dated in the window,
/// of customers (and a grade) and a product category it matches. The caller passes only windows
/// in force on the day; `valid_from` (any increasing day number) breaks ties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsWindow {
    pub id: i64,
    pub on: Match,
    pub grade: Option<String>,
    /// Orders from this amount on (None: any amount): a promotion for large orders.
    pub min_amount: Option<Decimal>,
    pub valid_from: i32,
    pub terms_days: i32,
    pub mode: WindowMode,
}

/// The window that applies to an order of `amount`: among those matching the subject (and the
/// customer's grade, and the amount), the most specific (a grade counts as a match column, weighed
/// after the category); then the one with the higher minimum amount; then the one that started
/// last; then the newest.
pub fn window_for<'w>(
    windows: &'w [TermsWindow],
    s: &Subject<'_>,
    grade: Option<&str>,
    amount: Decimal,
) -> Option<&'w TermsWindow> {
    windows
        .iter()
        .filter(|w| {
            w.on.matches(s)
                && w.grade.as_deref().is_none_or(|g| Some(g) == grade)
                && w.min_amount.is_none_or(|m| amount >= m)
        })
        .max_by_key(|w| {
            let (n, c, t, r) = w.on.specificity();
            (n + w.grade.is_some() as u8, c, w.grade.is_some(), t, r, w.min_amount, w.valid_from, w.id)
        })
}

/// One step of reaching the terms, for credit.explain_terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsStep {
    pub source: TermsSource,
    pub terms_days: i32,
    /// Whether the step decided the terms (a later applied step overrides an earlier one).
    pub applied: bool,
}

/// Every input to the terms and whether it applied: the base (the customer's own terms, else its
/// grade's, else its policy's, else the default), an amount tier that lengthens them, then a
/// terms window in force on the day. The terms are those of the last applied step.
pub fn terms_steps(
    account: Option<i32>,
    grade: Option<i32>,
    policy: Option<i32>,
    tier: Option<i32>,
    window: Option<(i32, WindowMode)>,
) -> Vec<TermsStep> {
    let mut steps = Vec::new();
    let mut current: Option<i32> = None;
    for (source, days) in [(TermsSource::Account, account), (TermsSource::Grade, grade), (TermsSource::Policy, policy)]
    {
        if let Some(d) = days {
            let applied = current.is_none();
            if applied {
                current = Some(d);
            }
            steps.push(TermsStep { source, terms_days: d, applied });
        }
    }
    let mut now = match current {
        Some(d) => d,
        None => {
            steps.push(TermsStep { source: TermsSource::Default, terms_days: DEFAULT_TERMS_DAYS, applied: true });
            DEFAULT_TERMS_DAYS
        }
    };
    if let Some(t) = tier {
        let applied = t > now;
        if applied {
            now = t;
        }
        steps.push(TermsStep { source: TermsSource::Tier, terms_days: t, applied });
    }
    if let Some((w, mode)) = window {
        let after = mode.apply(now, w);
        steps.push(TermsStep {
            source: TermsSource::Window,
            terms_days: w,
            applied: after != now || mode == WindowMode::Set,
        });
        now = after;
    }
    debug_assert_eq!(steps.iter().rev().find(|s| s.applied).map(|s| s.terms_days).unwrap_or(now), now);
    steps
}

/// Terms in days and where they came from, windows included.
pub fn terms_with_window(steps: &[TermsStep]) -> (i32, TermsSource) {
    steps
        .iter()
        .rev()
        .find(|s| s.applied)
        .map(|s| (s.terms_days, s.source))
        .unwrap_or((DEFAULT_TERMS_DAYS, TermsSource::Default))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(t: Option<&str>, r: Option<&str>, c: Option<&str>) -> Match {
        Match { customer_type: t.map(String::from), region: r.map(String::from), product_category: c.map(String::from) }
    }

    fn policy(id: i64, on: Match, terms: Option<i32>, block: Option<i32>) -> Policy {
        Policy { id, on, fields: Fields { terms_days: terms, overdue_block_days: block, ..Default::default() } }
    }

    #[test]
    fn most_specific_row_wins_field_by_field() {
        let ps = vec![
            policy(1, m(None, None, None), Some(30), Some(60)),
            policy(2, m(Some("retail"), None, None), Some(15), None),
            policy(3, m(Some("retail"), Some("east"), None), None, Some(10)),
            policy(4, m(None, Some("east"), None), Some(45), Some(90)),
        ];
        let s = Subject { customer_type: Some("retail"), region: Some("east"), product_category: None };
        let e = resolve(&ps, &s);
        assert_eq!(e.matched, vec![3, 2, 4, 1]);
        assert_eq!(e.overdue_block_days, Some(10)); // from 3
        assert_eq!(e.terms_days, Some(15)); // 3 leaves it open; 2 (type) beats 4 (region)
        assert_eq!(e.warn_ratio, default_warn_ratio());
        let other = Subject { customer_type: Some("wholesale"), region: Some("west"), product_category: None };
        let e = resolve(&ps, &other);
        assert_eq!((e.terms_days, e.overdue_block_days, e.matched), (Some(30), Some(60), vec![1]));
        assert_eq!(resolve(&[], &other).terms_days, None);
    }

    #[test]
    fn category_beats_type_beats_region_at_equal_count() {
        let ps = vec![
            policy(1, m(None, Some("east"), None), Some(1), None),
            policy(2, m(Some("retail"), None, None), Some(2), None),
            policy(3, m(None, None, Some("steel")), Some(3), None),
        ];
        let s = Subject { customer_type: Some("retail"), region: Some("east"), product_category: Some("steel") };
        assert_eq!(resolve(&ps, &s).matched, vec![3, 2, 1]);
        // two columns beat one, even the category
        let mut ps2 = ps.clone();
        ps2.push(policy(4, m(Some("retail"), Some("east"), None), Some(4), None));
        assert_eq!(resolve(&ps2, &s).terms_days, Some(4));
    }

    #[test]
    fn unset_customer_attribute_matches_only_wildcards() {
        let ps = vec![policy(1, m(Some("retail"), None, None), Some(5), None)];
        assert_eq!(resolve(&ps, &Subject::default()).matched, Vec::<i64>::new());
    }

    fn window(id: i64, on: Match, grade: Option<&str>, from: i32, days: i32, mode: WindowMode) -> TermsWindow {
        TermsWindow {
            id,
            on,
            grade: grade.map(String::from),
            min_amount: None,
            valid_from: from,
            terms_days: days,
            mode,
        }
    }

    #[test]
    fn windows_lengthen_shorten_or_set() {
        // base 30 (default); a promotion at least 60; a season at most 15; a fixed 20.
        let final_of = |w: Option<(i32, WindowMode)>| terms_with_window(&terms_steps(None, None, None, None, w));
        assert_eq!(final_of(None), (30, TermsSource::Default));
        assert_eq!(final_of(Some((60, WindowMode::AtLeast))), (60, TermsSource::Window));
        assert_eq!(final_of(Some((20, WindowMode::AtLeast))), (30, TermsSource::Default));
        assert_eq!(final_of(Some((15, WindowMode::AtMost))), (15, TermsSource::Window));
        assert_eq!(final_of(Some((45, WindowMode::AtMost))), (30, TermsSource::Default));
        assert_eq!(final_of(Some((20, WindowMode::Set))), (20, TermsSource::Window));
        // own terms 40 override grade 45 and policy 50; a tier of 60 lengthens; a season caps at 35
        let steps = terms_steps(Some(40), Some(45), Some(50), Some(60), Some((35, WindowMode::AtMost)));
        let applied: Vec<(TermsSource, bool)> = steps.iter().map(|s| (s.source, s.applied)).collect();
        assert_eq!(
            applied,
            vec![
                (TermsSource::Account, true),
                (TermsSource::Grade, false),
                (TermsSource::Policy, false),
                (TermsSource::Tier, true),
                (TermsSource::Window, true)
            ]
        );
        assert_eq!(terms_with_window(&steps), (35, TermsSource::Window));
        // without a window the result is the old rule's
        for (a, g, p, t) in
            [(None, Some(45), Some(50), None), (None, None, Some(50), Some(70)), (None, None, None, None)]
        {
            assert_eq!(terms_with_window(&terms_steps(a, g, p, t, None)), terms(a, g, p, t));
        }
    }

    #[test]
    fn the_most_specific_window_then_the_latest_applies() {
        let ws = vec![
            window(1, m(None, None, None), None, 100, 60, WindowMode::AtLeast),
            window(2, m(None, None, Some("ice")), None, 90, 15, WindowMode::AtMost),
            window(3, m(None, None, None), Some("AAA"), 80, 90, WindowMode::AtLeast),
            window(4, m(None, None, None), None, 110, 50, WindowMode::AtLeast),
        ];
        let s = Subject { customer_type: Some("retail"), region: None, product_category: None };
        let any = Decimal::ONE;
        assert_eq!(window_for(&ws, &s, Some("B"), any).map(|w| w.id), Some(4)); // started last
        assert_eq!(window_for(&ws, &s, Some("AAA"), any).map(|w| w.id), Some(3)); // grade is a match column
        let ice = Subject { product_category: Some("ice"), ..s };
        assert_eq!(window_for(&ws, &ice, Some("AAA"), any).map(|w| w.id), Some(2)); // category beats grade
        assert_eq!(window_for(&ws[1..2], &s, None, any), None);
        // A window for large orders: only from its amount on, and then before an otherwise equal one.
        let mut big = window(5, m(None, None, None), None, 50, 90, WindowMode::AtLeast);
        big.min_amount = Some(Decimal::from(10_000));
        let ws2 = vec![ws[0].clone(), big];
        assert_eq!(window_for(&ws2, &s, None, Decimal::from(9_999)).map(|w| w.id), Some(1));
        assert_eq!(window_for(&ws2, &s, None, Decimal::from(10_000)).map(|w| w.id), Some(5));
    }

    fn tier(id: i64, on: Match, min: i64, days: i32) -> Tier {
        Tier { id, on, min_amount: min.into(), terms_days: days }
    }

    #[test]
    fn tiers_at_their_boundaries() {
        let ts = vec![tier(1, m(None, None, None), 50_000, 40), tier(2, m(None, None, None), 100_000, 45)];
        let s = Subject::default();
        assert_eq!(tier_for(&ts, &s, Decimal::new(4_999_999, 2)), None);
        assert_eq!(tier_for(&ts, &s, 50_000.into()).map(|t| t.id), Some(1));
        assert_eq!(tier_for(&ts, &s, Decimal::new(9_999_999, 2)).map(|t| t.id), Some(1));
        assert_eq!(tier_for(&ts, &s, 100_000.into()).map(|t| t.id), Some(2));
    }

    #[test]
    fn a_specific_tier_set_replaces_the_general_one() {
        let ts =
            vec![tier(1, m(None, None, None), 100_000, 45), tier(2, m(Some("distributor"), None, None), 200_000, 60)];
        let d = Subject { customer_type: Some("distributor"), ..Default::default() };
        assert_eq!(tier_for(&ts, &d, 150_000.into()), None);
        assert_eq!(tier_for(&ts, &d, 200_000.into()).map(|t| t.id), Some(2));
        assert_eq!(tier_for(&ts, &Subject::default(), 150_000.into()).map(|t| t.id), Some(1));
    }

    #[test]
    fn terms_precedence() {
        assert_eq!(terms(None, None, None, None), (30, TermsSource::Default));
        assert_eq!(terms(None, None, Some(20), None), (20, TermsSource::Policy));
        assert_eq!(terms(None, Some(45), Some(20), None), (45, TermsSource::Grade));
        assert_eq!(terms(Some(10), Some(45), Some(20), None), (10, TermsSource::Account));
        assert_eq!(terms(Some(10), None, None, Some(45)), (45, TermsSource::Tier));
        assert_eq!(terms(Some(60), None, None, Some(45)), (60, TermsSource::Account));
    }

    fn arb_match() -> impl Strategy<Value = Match> {
        let v = || prop_oneof![Just(None), Just(Some("a".to_string())), Just(Some("b".to_string()))];
        (v(), v(), v()).prop_map(|(t, r, c)| Match { customer_type: t, region: r, product_category: c })
    }

    proptest! {
        // Whatever the rows, each resolved field equals the field of the most specific matching row
        // that sets it, and that row is at least as specific as any other matching row setting it.
        #[test]
        fn resolved_field_comes_from_a_most_specific_setter(
            rows in proptest::collection::vec((arb_match(), proptest::option::of(0i32..100)), 0..12),
            st in proptest::option::of(prop_oneof![Just("a"), Just("b")]),
            sr in proptest::option::of(prop_oneof![Just("a"), Just("b")]),
        ) {
            // the unique index: one row per match-column combination
            let mut seen = Vec::new();
            let ps: Vec<Policy> = rows.into_iter().enumerate().filter_map(|(i, (on, t))| {
                if seen.contains(&on) { return None; }
                seen.push(on.clone());
                Some(policy(i as i64, on, t, None))
            }).collect();
            let s = Subject { customer_type: st, region: sr, product_category: None };
            let e = resolve(&ps, &s);
            let setters: Vec<&Policy> = ps.iter().filter(|p| p.on.matches(&s) && p.fields.terms_days.is_some()).collect();
            match e.terms_days {
                None => prop_assert!(setters.is_empty()),
                Some(d) => {
                    let best = setters.iter().map(|p| p.on.specificity()).max().unwrap();
                    let winners: Vec<_> = setters.iter().filter(|p| p.on.specificity() == best).collect();
                    prop_assert_eq!(winners.len(), 1);
                    prop_assert_eq!(winners[0].fields.terms_days, Some(d));
                }
            }
            // rows with a category never match a customer-level subject
            prop_assert!(e.matched.iter().all(|id| ps.iter().find(|p| p.id == *id).unwrap().on.product_category.is_none()));
        }

        #[test]
        fn tiers_never_shorten_terms(base in proptest::option::of(0i32..400), tier in proptest::option::of(0i32..400)) {
            let (d, _) = terms(base, None, None, tier);
            prop_assert!(d >= base.unwrap_or(DEFAULT_TERMS_DAYS));
            prop_assert!(d >= tier.unwrap_or(0));
        }
    }
}
