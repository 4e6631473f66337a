//! Credit policies in the database: reading credit.policy and credit.term_tier into the core's
//! matcher, keeping each account's copy of its policy (the policy_* columns the guard reads) in
//! step, and payment terms for an order.
use crate::pg::args;
use crate::pg::error::{self, OrRaise, Required};
use crate::pg::numeric::{decimal_opt as dec, numeric};
use crate::store;
use credit_core::policy::{self, Effective, Fields, Match, Policy, Subject, Tier};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// The columns added in 0.3.0 are read through to_jsonb: the library also serves databases whose
/// SQL is still 0.2.0 (between installing it and ALTER EXTENSION UPDATE), where accounts are
/// written and orders guarded as before.
pub fn load_policies(c: &SpiClient<'_>) -> Vec<Policy> {
    c.select(
        "SELECT p.id, p.customer_type, p.region, p.product_category, p.terms_days, p.max_limit, p.warn_ratio, \
                p.overdue_block_days, p.prepayment_required, p.max_increase_ratio, p.approval_above, \
                p.releasing_role::text, p.blacklist_on_write_off, p.dunning_ladder, p.blacklist_on_legal, \
                to_jsonb(p) ->> 'statement_cycle', (to_jsonb(p) ->> 'statement_min_balance')::numeric, \
                (to_jsonb(p) ->> 'grace_days')::int, (to_jsonb(p) ->> 'max_decrease_ratio')::numeric, \
                (to_jsonb(p) ->> 'decrease_approval_ratio')::numeric, (to_jsonb(p) ->> 'max_grade_steps')::int, \
                (to_jsonb(p) ->> 'strong_evidence_payments')::int, (to_jsonb(p) ->> 'min_settled_invoices')::int, \
                (to_jsonb(p) ->> 'min_relationship_months')::int, (to_jsonb(p) ->> 'limit_tolerance_ratio')::numeric, \
                (to_jsonb(p) ->> 'warning_score_drop')::numeric, (to_jsonb(p) ->> 'warning_days_late_rise')::numeric, \
                (to_jsonb(p) ->> 'warning_very_late_probability')::numeric, (to_jsonb(p) ->> 'warning_very_late_amount')::numeric \
           FROM credit.policy p",
        None,
        &[],
    )
    .or_raise()
    .map(|r| Policy {
        id: r.get::<i64>(1).or_raise().required("policy id"),
        on: Match {
            customer_type: r.get(2).or_raise(),
            region: r.get(3).or_raise(),
            product_category: r.get(4).or_raise(),
        },
        fields: Fields {
            terms_days: r.get(5).or_raise(),
            max_limit: dec(r.get(6).or_raise()),
            warn_ratio: dec(r.get(7).or_raise()),
            overdue_block_days: r.get(8).or_raise(),
            prepayment_required: r.get(9).or_raise(),
            max_increase_ratio: dec(r.get(10).or_raise()),
            approval_above: dec(r.get(11).or_raise()),
            releasing_role: r.get(12).or_raise(),
            blacklist_on_write_off: r.get(13).or_raise(),
            dunning_ladder: r.get(14).or_raise(),
            blacklist_on_legal: r.get(15).or_raise(),
            statement_cycle: r.get(16).or_raise(),
            statement_min_balance: dec(r.get(17).or_raise()),
            grace_days: r.get(18).or_raise(),
            max_decrease_ratio: dec(r.get(19).or_raise()),
            decrease_approval_ratio: dec(r.get(20).or_raise()),
            max_grade_steps: r.get(21).or_raise(),
            strong_evidence_payments: r.get(22).or_raise(),
            min_settled_invoices: r.get(23).or_raise(),
            min_relationship_months: r.get(24).or_raise(),
            limit_tolerance_ratio: dec(r.get(25).or_raise()),
            warning_score_drop: dec(r.get(26).or_raise()),
            warning_days_late_rise: dec(r.get(27).or_raise()),
            warning_very_late_probability: dec(r.get(28).or_raise()),
            warning_very_late_amount: dec(r.get(29).or_raise()),
        },
    })
    .collect()
}

fn load_tiers(c: &SpiClient<'_>) -> Vec<Tier> {
    c.select(
        "SELECT id, customer_type, region, product_category, min_amount, terms_days FROM credit.term_tier",
        None,
        &[],
    )
    .or_raise()
    .map(|r| Tier {
        id: r.get::<i64>(1).or_raise().required("tier id"),
        on: Match {
            customer_type: r.get(2).or_raise(),
            region: r.get(3).or_raise(),
            product_category: r.get(4).or_raise(),
        },
        min_amount: dec(r.get(5).or_raise()).required("tier min_amount"),
        terms_days: r.get::<i32>(6).or_raise().required("tier terms_days"),
    })
    .collect()
}

/// The policy in force for a customer of this type and region (customer-level rows only).
pub fn effective(c: &SpiClient<'_>, customer_type: Option<&str>, region: Option<&str>) -> Effective {
    let ps = load_policies(c);
    policy::resolve(&ps, &Subject { customer_type, region, product_category: None })
}

/// The policy in force for a customer (its type and region, and a product category if given);
/// 23503 for an unknown customer.
pub fn for_customer(c: &SpiClient<'_>, customer: &str, product_category: Option<&str>) -> Effective {
    let t = c
        .select("SELECT customer_type, region FROM credit.account WHERE customer = $1", Some(1), &[customer.into()])
        .or_raise();
    if t.is_empty() {
        error::unknown_customer(customer)
    }
    let (ct, rg): (Option<String>, Option<String>) = t.first().get_two().or_raise();
    let ps = load_policies(c);
    policy::resolve(&ps, &Subject { customer_type: ct.as_deref(), region: rg.as_deref(), product_category })
}

/// The policy in force for every (customer_type, region) present among the accounts: set-based
/// work (collections, statement runs, the policy copy) resolves each once and joins on the pair.
pub fn by_subject(c: &SpiClient<'_>) -> Vec<(Option<String>, Option<String>, Effective)> {
    let ps = load_policies(c);
    c.select("SELECT DISTINCT customer_type, region FROM credit.account", None, &[])
        .or_raise()
        .map(|r| {
            let (t, g): (Option<String>, Option<String>) = (r.get(1).or_raise(), r.get(2).or_raise());
            let e = policy::resolve(
                &ps,
                &Subject { customer_type: t.as_deref(), region: g.as_deref(), product_category: None },
            );
            (t, g, e)
        })
        .collect()
}

/// Copies every account's policy into its policy_* columns (accounts inserted or re-typed get
/// theirs from the account triggers). Returns how many accounts changed.
fn apply_to_all() -> i64 {
    store::writing(|| {
        Spi::connect_mut(|c| {
            let mut changed = 0;
            for (t, r, e) in by_subject(c) {
                changed += c
                    .update(
                        "UPDATE credit.account SET policy_max_limit = $3, policy_warn_ratio = $4, \
                                policy_overdue_block_days = $5, policy_prepayment_only = $6 \
                         WHERE customer_type IS NOT DISTINCT FROM $1 AND region IS NOT DISTINCT FROM $2 \
                           AND (policy_max_limit, policy_warn_ratio, policy_overdue_block_days, policy_prepayment_only) \
                               IS DISTINCT FROM ($3, $4, $5, $6) RETURNING 1",
                        None,
                        &[
                            t.as_deref().into(),
                            r.as_deref().into(),
                            e.max_limit.map(numeric).into(),
                            numeric(e.warn_ratio).into(),
                            e.overdue_block_days.into(),
                            e.prepayment_required.into(),
                        ],
                    )
                    .or_raise()
                    .len() as i64;
            }
            changed
        })
    })
}

crate::pg::entry::c_trigger!(
    _policy_changed_wrapper,
    pg_finfo__policy_changed_wrapper,
    "_policy_changed",
    policy_changed
);

/// AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ... FOR EACH STATEMENT on credit.policy.
/// On Citus credit.policy is a reference table: the trigger fires on each node's copy, and only
/// the coordinator's applies the change, as a distributed update of the accounts nested in the
/// write of its copy (which Citus allows when asked: the copy's write runs here, not pushed to a
/// worker).
fn policy_changed<'a>(_trigger: &'a PgTrigger<'a>) -> Option<PgHeapTuple<'a, AllocatedByRust>> {
    if !crate::pg::citus::distributed() {
        apply_to_all();
    } else if crate::pg::citus::is_coordinator() {
        crate::pg::citus::nested(apply_to_all);
    }
    None
}

/// The terms for an order, every step considered, and the rule that decided them.
pub struct Terms {
    pub days: i32,
    pub source: policy::TermsSource,
    /// What decided them, as stored on an invoice: "account", "grade AA", "policy 3", "default",
    /// "tier 2", "window 7".
    pub rule: String,
    pub rule_id: Option<i64>,
    /// The deciding window's validity.
    pub valid_from: Option<Date>,
    pub valid_until: Option<Date>,
    /// Every step, for a person: "account: 40 days (applied); grade AA: 45 days; ...".
    pub explanation: String,
}

struct WindowRow {
    window: policy::TermsWindow,
    name: String,
    valid_from: Date,
    valid_until: Date,
}

/// Terms windows in force on a day (none on a database still on an older version's SQL).
fn load_windows(c: &SpiClient<'_>, on: Date) -> Vec<WindowRow> {
    if !store::has(c, "credit.terms_window") {
        return Vec::new();
    }
    c.select(
        "SELECT id, customer_type, region, product_category, grade, valid_from - DATE '2000-01-01', terms_days, mode, \
                name, valid_from, valid_until, min_amount \
           FROM credit.terms_window WHERE $1 BETWEEN valid_from AND valid_until",
        None,
        &[on.into()],
    )
    .or_raise()
    .map(|r| WindowRow {
        window: policy::TermsWindow {
            id: r.get::<i64>(1).or_raise().required("window id"),
            on: Match {
                customer_type: r.get(2).or_raise(),
                region: r.get(3).or_raise(),
                product_category: r.get(4).or_raise(),
            },
            grade: r.get(5).or_raise(),
            min_amount: dec(r.get(12).or_raise()),
            valid_from: r.get::<i32>(6).or_raise().required("window valid_from"),
            terms_days: r.get::<i32>(7).or_raise().required("window terms_days"),
            mode: policy::WindowMode::parse(&r.get::<String>(8).or_raise().required("window mode"))
                .unwrap_or(policy::WindowMode::Set),
        },
        name: r.get::<String>(9).or_raise().required("window name"),
        valid_from: r.get::<Date>(10).or_raise().required("window valid_from"),
        valid_until: r.get::<Date>(11).or_raise().required("window valid_until"),
    })
    .collect()
}

/// Payment terms in days for an order of `amount` dated `on`, and how they were reached.
pub fn terms(c: &SpiClient<'_>, customer: &str, amount: Decimal, product_category: Option<&str>, on: Date) -> Terms {
    let t = c
        .select(
            "SELECT a.customer_type, a.region, a.terms_days, g.terms_days, a.grade \
             FROM credit.account a LEFT JOIN credit.grade g ON g.grade = a.grade AND NOT g.retired \
             WHERE a.customer = $1",
            Some(1),
            &[customer.into()],
        )
        .or_raise();
    if t.is_empty() {
        error::unknown_customer(customer)
    }
    let row = t.first();
    let ctype: Option<String> = row.get(1).or_raise();
    let region: Option<String> = row.get(2).or_raise();
    let own: Option<i32> = row.get(3).or_raise();
    let by_grade: Option<i32> = row.get(4).or_raise();
    let grade: Option<String> = row.get(5).or_raise();
    let s = Subject { customer_type: ctype.as_deref(), region: region.as_deref(), product_category };
    let ps = load_policies(c);
    let tiers = load_tiers(c);
    let windows = load_windows(c, on);
    let policy_row = policy::ranked(&ps, &s).into_iter().find(|p| p.fields.terms_days.is_some());
    let tier = policy::tier_for(&tiers, &s, amount);
    let ws: Vec<policy::TermsWindow> = windows.iter().map(|w| w.window.clone()).collect();
    let window = policy::window_for(&ws, &s, grade.as_deref(), amount)
        .and_then(|w| windows.iter().find(|x| x.window.id == w.id));
    let steps = policy::terms_steps(
        own,
        by_grade,
        policy_row.and_then(|p| p.fields.terms_days),
        tier.map(|t| t.terms_days),
        window.map(|w| (w.window.terms_days, w.window.mode)),
    );
    let (days, source) = policy::terms_with_window(&steps);
    let rule_of = |src: policy::TermsSource| -> (String, Option<i64>) {
        use policy::TermsSource as S;
        match src {
            S::Account => ("account".into(), None),
            S::Grade => (format!("grade {}", grade.as_deref().unwrap_or("")), None),
            S::Policy => (format!("policy {}", policy_row.map_or(0, |p| p.id)), policy_row.map(|p| p.id)),
            S::Default => ("default".into(), None),
            S::Tier => (format!("tier {}", tier.map_or(0, |t| t.id)), tier.map(|t| t.id)),
            S::Window => (format!("window {}", window.map_or(0, |w| w.window.id)), window.map(|w| w.window.id)),
        }
    };
    let explanation = steps
        .iter()
        .map(|st| {
            let (rule, _) = rule_of(st.source);
            let what = match (st.source, window) {
                (policy::TermsSource::Tier, _) => {
                    format!(
                        "{rule} (orders from {}): {} days",
                        tier.map(|t| t.min_amount).unwrap_or_default(),
                        st.terms_days
                    )
                }
                (policy::TermsSource::Window, Some(w)) => format!(
                    "{rule} \"{}\" {}..{}, {} {} days",
                    w.name,
                    w.valid_from,
                    w.valid_until,
                    match w.window.mode {
                        policy::WindowMode::Set => "set to",
                        policy::WindowMode::AtLeast => "at least",
                        policy::WindowMode::AtMost => "at most",
                    },
                    st.terms_days
                ),
                _ => format!("{rule}: {} days", st.terms_days),
            };
            if st.applied {
                format!("{what} (applied)")
            } else {
                what
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let (rule, rule_id) = rule_of(source);
    let deciding_window = (source == policy::TermsSource::Window).then_some(window).flatten();
    Terms {
        days,
        source,
        rule,
        rule_id,
        valid_from: deciding_window.map(|w| w.valid_from),
        valid_until: deciding_window.map(|w| w.valid_until),
        explanation,
    }
}

/// Payment terms in days for an order of `amount` dated `on_date`: the customer's own terms, else
/// its grade's, else its policy's, else 30; an amount tier lengthens them; a terms window in force
/// on the day sets, lengthens or shortens them (see docs/policies.md).
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn terms_for(
    customer: Option<&str>,
    amount: Option<AnyNumeric>,
    product_category: default!(Option<&str>, "NULL"),
    on_date: default!(Option<Date>, "CURRENT_DATE"),
) -> i32 {
    let customer = args::text(customer, "customer");
    let amount = args::non_negative_amount(amount.as_ref(), "amount");
    let on = args::date(on_date, "on_date");
    Spi::connect(|c| terms(c, customer, amount, product_category, on).days)
}

/// How the terms for an order dated `on_date` are reached, for explaining them to a customer or
/// an auditor: the terms, the rule that decided them (its id, and a window's validity), and every
/// step considered.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn explain_terms(
    customer: Option<&str>,
    amount: Option<AnyNumeric>,
    product_category: default!(Option<&str>, "NULL"),
    on_date: default!(Option<Date>, "CURRENT_DATE"),
) -> TableIterator<
    'static,
    (
        name!(terms_days, i32),
        name!(source, String),
        name!(rule, String),
        name!(rule_id, Option<i64>),
        name!(valid_from, Option<Date>),
        name!(valid_until, Option<Date>),
        name!(steps, String),
    ),
> {
    let customer = args::text(customer, "customer");
    let amount = args::non_negative_amount(amount.as_ref(), "amount");
    let on = args::date(on_date, "on_date");
    let t = Spi::connect(|c| terms(c, customer, amount, product_category, on));
    TableIterator::once((
        t.days,
        t.source.code().to_string(),
        t.rule,
        t.rule_id,
        t.valid_from,
        t.valid_until,
        t.explanation,
    ))
}

/// The policy in force for a customer (and optionally a product category), field by field.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn effective_policy(
    customer: Option<&str>,
    product_category: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(terms_days, Option<i32>),
        name!(max_limit, Option<AnyNumeric>),
        name!(warn_ratio, AnyNumeric),
        name!(overdue_block_days, Option<i32>),
        name!(prepayment_required, bool),
        name!(max_increase_ratio, Option<AnyNumeric>),
        name!(approval_above, Option<AnyNumeric>),
        name!(releasing_role, Option<String>),
        name!(blacklist_on_write_off, bool),
        name!(dunning_ladder, String),
        name!(blacklist_on_legal, bool),
        name!(statement_cycle, String),
        name!(statement_min_balance, Option<AnyNumeric>),
        name!(grace_days, i32),
        name!(max_decrease_ratio, AnyNumeric),
        name!(decrease_approval_ratio, AnyNumeric),
        name!(max_grade_steps, i32),
        name!(strong_evidence_payments, i32),
        name!(min_settled_invoices, i32),
        name!(min_relationship_months, i32),
        name!(limit_tolerance_ratio, AnyNumeric),
        name!(warning_score_drop, AnyNumeric),
        name!(warning_days_late_rise, AnyNumeric),
        name!(warning_very_late_probability, AnyNumeric),
        name!(warning_very_late_amount, AnyNumeric),
        name!(matched_policies, Vec<i64>),
    ),
> {
    let customer = args::text(customer, "customer");
    let e = Spi::connect(|c| for_customer(c, customer, product_category));
    TableIterator::once((
        e.terms_days,
        e.max_limit.map(numeric),
        numeric(e.warn_ratio),
        e.overdue_block_days,
        e.prepayment_required,
        e.max_increase_ratio.map(numeric),
        e.approval_above.map(numeric),
        e.releasing_role,
        e.blacklist_on_write_off,
        e.dunning_ladder,
        e.blacklist_on_legal,
        e.statement_cycle,
        e.statement_min_balance.map(numeric),
        e.grace_days,
        numeric(e.max_decrease_ratio),
        numeric(e.decrease_approval_ratio),
        e.max_grade_steps,
        e.strong_evidence_payments,
        e.min_settled_invoices,
        e.min_relationship_months,
        numeric(e.limit_tolerance_ratio),
        numeric(e.warning_score_drop),
        numeric(e.warning_days_late_rise),
        numeric(e.warning_very_late_probability),
        numeric(e.warning_very_late_amount),
        e.matched,
    ))
}
