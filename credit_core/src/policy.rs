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
}

impl TermsSource {
    pub fn code(self) -> &'static str {
        match self {
            TermsSource::Account => "account",
            TermsSource::Grade => "grade",
            TermsSource::Policy => "policy",
            TermsSource::Default => "default",
            TermsSource::Tier => "tier",
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
