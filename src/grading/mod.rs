//! Credit scores, grades and the periodic review of limits (`credit.score`, `credit.regrade`). The
//! arithmetic is in credit_core::scoring; this module gathers the inputs (the `.sql` files next to
//! it) and applies the outcome.
use crate::pg::args;
use crate::pg::error::{self, OrRaise, Required};
use crate::pg::numeric::{decimal, decimal_opt, numeric};
use crate::privileges;
use crate::store::{self, account, events};
use credit_core::policy::Effective;
use credit_core::scoring::{
    self, Component, Evidence, EvidenceRules, Grade, LimitOutcome, Proposal, ReviewRules, Standing,
};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;

/// What a score is computed from, for one customer: raw component values as of a date (None = no
/// data), and the evidence behind them.
struct Inputs {
    components: Vec<(Component, Option<Decimal>)>,
    evidence: Evidence,
}

/// Customers read together: each query below reads them all at once (on Citus, a query each node
/// answers for its own customers), bounding the arrays a call sends.
const BATCH: usize = 2000;

/// Some customers, as the `.sql` files beside this one read them: `$1` their array, `$2` the day,
/// `$3` the customer when there is one only. One customer is named by equality, so that on Citus
/// the whole query goes to its node (an array is read on every node holding a shard).
struct Batch<'a> {
    customers: &'a [String],
    as_of: Date,
}

impl<'a> Batch<'a> {
    fn all(customers: &'a [String], as_of: Date) -> impl Iterator<Item = Batch<'a>> {
        customers.chunks(BATCH).map(move |customers| Batch { customers, as_of })
    }

    fn sql(&self, sql: &str) -> String {
        if self.customers.len() == 1 {
            sql.replace("= ANY ($1)", "= $3")
        } else {
            sql.to_string()
        }
    }

    fn select<'c>(&self, c: &SpiClient<'c>, sql: &str) -> pgrx::spi::SpiTupleTable<'c> {
        let one = (self.customers.len() == 1).then(|| self.customers[0].as_str());
        c.select(&self.sql(sql), None, &[self.customers.to_vec().into(), self.as_of.into(), one.into()]).or_raise()
    }
}

impl Inputs {
    /// The inputs of `customers` as of a date, for those with an account; set-wise, a few queries
    /// for them all (the `.sql` files next to this one) rather than a few per customer.
    fn read(c: &SpiClient<'_>, customers: &[String], as_of: Date, scale: &Scale) -> HashMap<String, Inputs> {
        let mut sql = include_str!("score_inputs.sql").to_string();
        // (A database still on an older version's SQL has no days_late_experience: per payment.)
        if !store::has(c, "credit.days_late_experience") {
            sql = sql.replace("credit.days_late_experience", "credit.payment_experience");
        }
        let mut aging = include_str!("score_aging.sql").to_string();
        // On Citus, the view of the experiences the coordinator's basis picks (the workers would
        // read their own setting); the aging of one customer read on its node alone (credit.aging
        // there reads every node).
        if scale.citus {
            sql = sql.replace("credit.days_late_experience", crate::pg::settings::days_late_view());
            aging = aging.replace("credit.aging($2)", "credit._aging_on_citus($2, 'due', $3)");
        }
        let mut out = HashMap::with_capacity(customers.len());
        for batch in Batch::all(customers, as_of) {
            let by_customer = |sql: &str| -> HashMap<String, Option<Decimal>> {
                batch
                    .select(c, sql)
                    .map(|r| (r.get::<String>(1).or_raise().required("customer"), decimal_opt(r.get(2).or_raise())))
                    .collect()
            };
            let aged: HashMap<String, (Decimal, Decimal)> = batch
                .select(c, &aging)
                .map(|r| {
                    let d = |i: usize| decimal_opt(r.get::<AnyNumeric>(i).or_raise()).unwrap_or_default();
                    (r.get::<String>(1).or_raise().required("customer"), (d(2), d(3)))
                })
                .collect();
            let dunning =
                if scale.collections_ran { by_customer(include_str!("dunning_level.sql")) } else { HashMap::new() };
            let kept = if store::has(c, "credit.arrangement") {
                Some(by_customer(include_str!("kept_commitments.sql")))
            } else {
                None
            };
            let rated = if store::has(c, "credit.external_rating") {
                Some(by_customer(include_str!("external_rating.sql")))
            } else {
                None
            };
            for r in batch.select(c, &sql) {
                let customer: String = r.get(1).or_raise().required("customer");
                let get = |i: usize| decimal_opt(r.get::<AnyNumeric>(i).or_raise());
                let count = |i: usize| r.get::<i64>(i).or_raise().unwrap_or(0);
                let (days_past_due, open_then) = aged.get(&customer).copied().unwrap_or_default();
                let used =
                    if r.get::<bool>(7).or_raise() == Some(true) { get(6).unwrap_or_default() } else { open_then };
                let utilization = get(5)
                    .filter(|lim| *lim > Decimal::ZERO)
                    .map(|lim| (used / lim).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero));
                let months = get(8).map(|m| m.max(Decimal::ZERO));
                let evidence = Evidence {
                    settled_invoices: count(9),
                    payments_12_months: count(10),
                    relationship_months: months.and_then(|m| m.trunc().to_string().parse().ok()).unwrap_or(0),
                };
                // The dunning component where collections have run (else no data: not being dunned
                // then says nothing): 0 = never dunned after the due date.
                let dunning_level =
                    scale.collections_ran.then(|| dunning.get(&customer).copied().flatten().unwrap_or_default());
                let components = vec![
                    (Component::Paydex, get(2)),
                    (Component::WeightedDaysLate, get(3)),
                    (Component::OnTimeRatio, get(4)),
                    (Component::DaysPastDue, Some(days_past_due)),
                    (Component::Utilization, utilization),
                    (Component::Relationship, months),
                    (Component::Dunning, dunning_level),
                    (Component::Commitments, kept.as_ref().and_then(|k| k.get(&customer).copied().flatten())),
                    (
                        Component::ExternalRating,
                        rated.as_ref().and_then(|k| k.get(&customer).copied().flatten()).map(|d| d.round_dp(2)),
                    ),
                ];
                out.insert(customer, Inputs { components, evidence });
            }
        }
        out
    }

    /// The inputs of one customer, which must have an account.
    fn of(c: &SpiClient<'_>, customer: &str, as_of: Date, scale: &Scale) -> Inputs {
        Inputs::read(c, &[customer.to_string()], as_of, scale)
            .remove(customer)
            .unwrap_or_else(|| error::unknown_customer(customer))
    }
}

fn weights(c: &SpiClient<'_>) -> Vec<(Component, Decimal)> {
    c.select("SELECT component, weight FROM credit.score_weight WHERE NOT retired", None, &[])
        .or_raise()
        .filter_map(|r| {
            let comp: String = r.get(1).or_raise()?;
            let w: AnyNumeric = r.get(2).or_raise()?;
            Some((Component::parse(&comp)?, decimal(&w)))
        })
        .collect()
}

struct GradeRow {
    grade: Grade,
    coefficient: Decimal,
    terms_days: i32,
}

fn grades(c: &SpiClient<'_>) -> Vec<GradeRow> {
    c.select(
        "SELECT grade, min_score, max_score, limit_coefficient, terms_days FROM credit.grade WHERE NOT retired ORDER BY rank",
        None,
        &[],
    )
    .or_raise()
    .map(|r| GradeRow {
        grade: Grade {
            grade: r.get(1).or_raise().required("grade"),
            min_score: decimal(&r.get::<AnyNumeric>(2).or_raise().required("grade min_score")),
            max_score: decimal_opt(r.get::<AnyNumeric>(3).or_raise()),
        },
        coefficient: decimal(&r.get::<AnyNumeric>(4).or_raise().required("grade limit_coefficient")),
        terms_days: r.get(5).or_raise().required("grade terms_days"),
    })
    .collect()
}

/// The grading tables, read once per call.
struct Scale {
    grades: Vec<GradeRow>,
    weights: Vec<(Component, Decimal)>,
    /// pg_credit is distributed on Citus (credit.distribute()).
    citus: bool,
    /// Collections have ever run (a task exists): else the dunning component has no data. Asked
    /// once per call, not per customer (on Citus the question goes to every shard).
    collections_ran: bool,
}

impl Scale {
    fn read(c: &SpiClient<'_>) -> Scale {
        let collections_ran = c
            .select("SELECT EXISTS (SELECT 1 FROM credit.collection_task)", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
            .unwrap_or(false);
        Scale { grades: grades(c), weights: weights(c), citus: crate::pg::citus::distributed(), collections_ran }
    }
}

struct Scored {
    score: Option<Decimal>,
    /// The score's grade: None unless the evidence suffices.
    grade: Option<String>,
    components: serde_json::Value,
    standing: Standing,
    strong: bool,
    evidence: serde_json::Value,
}

fn evidence_rules(e: &Effective) -> EvidenceRules {
    EvidenceRules {
        min_settled: e.min_settled_invoices.into(),
        min_months: e.min_relationship_months.into(),
        strong_payments: e.strong_evidence_payments.into(),
    }
}

fn score_of(Inputs { components: inputs, evidence }: Inputs, scale: &Scale, policy: &Effective) -> Scored {
    let (mut score, parts) = scoring::score(&inputs, &scale.weights);
    if !scoring::has_payment_history(&inputs) {
        score = None; // a grade needs payment behaviour, not only the absence of debt
    }
    let rules = evidence_rules(policy);
    let (standing, why) = evidence.standing(&rules);
    let strong = evidence.strong(&rules);
    let gs: Vec<Grade> = scale.grades.iter().map(|g| g.grade.clone()).collect();
    let grade =
        score.filter(|_| standing == Standing::Rated).and_then(|s| scoring::grade_for(&gs, s)).map(|g| g.grade.clone());
    let components = serde_json::Value::Array(
        parts
            .iter()
            .map(|p| {
                serde_json::json!({
                    "component": p.component.code(),
                    "value": p.raw.map(|v| v.normalize().to_string()),
                    "points": p.points.map(|v| v.normalize().to_string()),
                    "weight": p.weight.normalize().to_string(),
                })
            })
            .collect(),
    );
    let evidence = serde_json::json!({
        "standing": standing.code(),
        "settled_invoices": evidence.settled_invoices,
        "payments_12_months": evidence.payments_12_months,
        "relationship_months": evidence.relationship_months,
        "strong": strong,
        "why": why,
        "needs": {"settled_invoices": rules.min_settled, "relationship_months": rules.min_months,
                  "payments_for_strong_evidence": rules.strong_payments},
    });
    Scored { score, grade, components, standing, strong, evidence }
}

/// The credit score (0-100) of a customer as of a date, its grade, every component (raw value,
/// points and weight; a component without data has value null and does not count), and the
/// evidence behind it: a grade needs the policy's minimum history (else the customer is new or
/// unrated, the grade null, and `evidence.why` says why).
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn score(
    customer: Option<&str>,
    as_of: default!(Option<Date>, "CURRENT_DATE"),
) -> TableIterator<
    'static,
    (
        name!(score, Option<AnyNumeric>),
        name!(grade, Option<String>),
        name!(components, pgrx::JsonB),
        name!(evidence, pgrx::JsonB),
    ),
> {
    crate::pg::citus::refuse_on_worker("Scoring");
    let customer = args::text(customer, "customer");
    let as_of = args::date(as_of, "as_of");
    let s = Spi::connect(|c| {
        let policy = crate::policy::for_customer(c, customer, None);
        let scale = Scale::read(c);
        score_of(Inputs::of(c, customer, as_of, &scale), &scale, &policy)
    });
    TableIterator::once((s.score.map(numeric), s.grade, pgrx::JsonB(s.components), pgrx::JsonB(s.evidence)))
}

type RegradeRow =
    (String, Option<String>, Option<String>, Option<AnyNumeric>, AnyNumeric, AnyNumeric, bool, String, String);

/// The limit a grade supports for one customer: the grade's coefficient times its monthly sales
/// (`sales`, None without any), within the customer's policy (credit_core::scoring::propose); a
/// grade of no credit aims at 0.
fn proposal(grade: &GradeRow, sales: Option<Decimal>, old: Decimal, e: &Effective) -> Proposal {
    let rules = ReviewRules {
        coefficient: grade.coefficient,
        terms_days: grade.terms_days,
        max_limit: e.max_limit,
        max_increase_ratio: e.max_increase_ratio,
        approval_above: e.approval_above,
        max_decrease_ratio: Some(e.max_decrease_ratio),
        decrease_approval_ratio: Some(e.decrease_approval_ratio),
        tolerance_ratio: Some(e.limit_tolerance_ratio),
    };
    if grade.coefficient.is_zero() {
        return scoring::propose_no_credit(old, &grade.grade.grade, &rules);
    }
    scoring::propose(old, sales, &rules)
}

/// Average monthly sales of `customers` over the 12 months before a date (monthly_sales.sql), for
/// those with any.
fn monthly_sales(c: &SpiClient<'_>, customers: &[String], as_of: Date) -> HashMap<String, Decimal> {
    let mut out = HashMap::new();
    for batch in Batch::all(customers, as_of) {
        for r in batch.select(c, include_str!("monthly_sales.sql")) {
            if let Some(avg) = decimal_opt(r.get::<AnyNumeric>(2).or_raise()) {
                out.insert(r.get::<String>(1).or_raise().required("customer"), avg);
            }
        }
    }
    out
}

/// Applies a review: the new grade, and the limit — at once, or as a limit request awaiting
/// approval (unless one is pending already). Returns whether anything changed, and the action and
/// reason as they stand after applying.
fn apply_review(
    c: &mut SpiClient<'_>,
    customer: &str,
    grade_changed: Option<&str>,
    prop: &Proposal,
    why: &str,
    action: &mut String,
    reason: &mut String,
) -> bool {
    let mut applied = false;
    if let Some(new_grade) = grade_changed {
        // The reason stays set until the next review sets its own, and regrade clears it at the
        // end: on Citus each setting is sent on to every worker of the transaction, and clearing
        // it after every customer doubled the round trips of an applied review.
        events::set_reason(c, why);
        c.update(
            "UPDATE credit.account SET grade = $2 WHERE customer = $1",
            None,
            &[customer.into(), new_grade.into()],
        )
        .or_raise();
        applied = true;
    }
    match prop.outcome {
        LimitOutcome::Apply => {
            c.update(
                "SELECT credit._apply_limit($1, $2, NULL, $3)",
                None,
                &[customer.into(), numeric(prop.limit).into(), why.into()],
            )
            .or_raise();
            applied = true;
        }
        LimitOutcome::Request => {
            let t = c
                .update(
                    "SELECT id FROM credit.limit_request WHERE customer = $1 AND status = 'pending'",
                    Some(1),
                    &[customer.into()],
                )
                .or_raise();
            let pending: Option<i64> = if t.is_empty() { None } else { t.first().get_one().or_raise() };
            match pending {
                Some(id) => {
                    *action = "unchanged".into();
                    reason.push_str(&format!("; limit request {id} is already pending"));
                }
                None => {
                    let id: Option<i64> = c
                        .update(
                            "SELECT credit._request_limit($1, $2, $3, NULL, 'regrade')",
                            Some(1),
                            &[customer.into(), numeric(prop.limit).into(), why.into()],
                        )
                        .or_raise()
                        .first()
                        .get_one()
                        .or_raise();
                    reason.push_str(&format!("; limit request {} awaits approval", id.unwrap_or_default()));
                }
            }
        }
        LimitOutcome::Unchanged => {}
    }
    applied
}

/// An account as a review reads it: customer, grade, limit, customer type, region.
type Reviewed = (String, Option<String>, AnyNumeric, Option<String>, Option<String>);

/// Reviews one customer: score, grade (a step at a time unless the evidence is strong; none
/// without enough evidence), the limit the grade supports, and (unless a dry run) the outcome
/// applied.
#[allow(clippy::too_many_arguments)]
fn review(
    c: &mut SpiClient<'_>,
    scale: &Scale,
    policies: &[(Option<String>, Option<String>, Effective)],
    as_of: Date,
    dry_run: bool,
    (customer, old_grade, old_limit, customer_type, region): Reviewed,
    inputs: Inputs,
    sales: Option<Decimal>,
) -> RegradeRow {
    let policy = policies
        .iter()
        .find(|p| p.0 == customer_type && p.1 == region)
        .map(|p| p.2.clone())
        .unwrap_or_else(|| crate::policy::effective(c, customer_type.as_deref(), region.as_deref()));
    let s = score_of(inputs, scale, &policy);
    let unchanged = |action: &str, why: String| {
        (
            customer.clone(),
            old_grade.clone(),
            old_grade.clone(),
            s.score.map(numeric),
            old_limit.clone(),
            old_limit.clone(),
            false,
            action.to_string(),
            why,
        )
    };
    if s.standing != Standing::Rated {
        let why = s.evidence.get("why").and_then(|w| w.as_str()).unwrap_or_default();
        return unchanged(s.standing.code(), format!("{}: {why}; the limit stays", s.standing.code()));
    }
    let Some(scored) = s.grade.as_deref().and_then(|g| scale.grades.iter().find(|x| x.grade.grade == g)) else {
        let why = if s.score.is_none() { "no data to score" } else { "the score falls in no grade" };
        return unchanged("unchanged", why.into());
    };
    let ranked: Vec<Grade> = scale.grades.iter().map(|g| g.grade.clone()).collect();
    let (stepped, held) =
        scoring::stepped_grade(&ranked, old_grade.as_deref(), &scored.grade, policy.max_grade_steps.into(), s.strong);
    let gr = scale.grades.iter().find(|g| g.grade.grade == stepped.grade).unwrap_or(scored);
    let new_grade = gr.grade.grade.clone();
    let old = decimal(&old_limit);
    let prop = proposal(gr, sales, old, &policy);
    let score_txt = s.score.map(|x| x.to_string()).unwrap_or_default();
    let held_txt = if held {
        format!(
            " (the score says {}; a review moves {} step{} without strong evidence: {} payments in 12 months, {} needed)",
            scored.grade.grade,
            policy.max_grade_steps,
            if policy.max_grade_steps == 1 { "" } else { "s" },
            s.evidence.get("payments_12_months").and_then(|v| v.as_i64()).unwrap_or(0),
            policy.strong_evidence_payments
        )
    } else {
        String::new()
    };
    let mut reason = format!("score {score_txt}, grade {new_grade}{held_txt}: {}", prop.reason);
    let mut action = match prop.outcome {
        LimitOutcome::Apply if prop.limit < old => "decrease",
        LimitOutcome::Apply => "increase",
        LimitOutcome::Request => "request",
        LimitOutcome::Unchanged => "unchanged",
    }
    .to_string();
    let mut applied = false;
    if !dry_run {
        let why = format!("regrade as of {as_of}: {reason}");
        let grade_changed = (old_grade.as_deref() != Some(new_grade.as_str())).then_some(new_grade.as_str());
        applied = apply_review(c, &customer, grade_changed, &prop, &why, &mut action, &mut reason);
    }
    (
        customer,
        old_grade,
        Some(new_grade.clone()),
        s.score.map(numeric),
        old_limit,
        numeric(prop.limit),
        applied,
        action,
        reason,
    )
}

/// Re-grades every customer as of a date: score, grade, and the limit the grade supports. With
/// dry_run nothing changes. Grade changes and decreases apply at once; an increase within the
/// policy's approval_above applies at once, a larger one becomes a limit request.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn regrade(
    as_of: default!(Option<Date>, "CURRENT_DATE"),
    dry_run: default!(Option<bool>, "false"),
) -> TableIterator<
    'static,
    (
        name!(customer, String),
        name!(old_grade, Option<String>),
        name!(new_grade, Option<String>),
        name!(score, Option<AnyNumeric>),
        name!(old_limit, AnyNumeric),
        name!(proposed_limit, AnyNumeric),
        name!(applied, bool),
        name!(action, String),
        name!(reason, String),
    ),
> {
    crate::pg::citus::refuse_on_worker("Re-grading");
    let as_of = args::not_future(as_of, "as_of");
    let Some(dry_run) = dry_run else { error::null_arg("dry_run") };
    privileges::require(if dry_run { "reader" } else { "manager" }, "re-grading");
    // Even a dry run reads through the writing SPI client (the same code as applying).
    privileges::refuse_on_standby("re-grading");
    let rows: Vec<RegradeRow> = Spi::connect_mut(|c| {
        let scale = Scale::read(c);
        const ACCOUNT: &str = "SELECT customer, grade, credit_limit, customer_type, region FROM credit.account";
        // Applying locks the accounts (in the lock order) before anything is scored; a dry run only
        // reads. On Citus, where one statement cannot lock rows on several shards, the accounts are
        // locked shard by shard (in shard order, then customer order), and read under the lock.
        if !dry_run && !scale.citus {
            account::lock_all(c, None);
        }
        let policies = crate::policy::by_subject(c);
        let read = |r: pgrx::spi::SpiHeapTupleData<'_>| -> Reviewed {
            (
                r.get(1).or_raise().required("customer"),
                r.get(2).or_raise(),
                r.get(3).or_raise().required("credit_limit"),
                r.get(4).or_raise(),
                r.get(5).or_raise(),
            )
        };
        let accounts: Vec<Reviewed> = if !dry_run && scale.citus {
            // Shard by shard: each shard's accounts locked by one statement Citus sends to its node.
            let listed = c
                .select(
                    "SELECT pg_catalog.get_shard_id_for_distribution_column('credit.account'::pg_catalog.regclass, customer), \
                            customer FROM credit.account ORDER BY 1, 2",
                    None,
                    &[],
                )
                .or_raise()
                .map(|r| (r.get::<i64>(1).or_raise(), r.get::<String>(2).or_raise().required("customer")))
                .collect::<Vec<_>>();
            let mut locked: Vec<Reviewed> = Vec::with_capacity(listed.len());
            for shard in listed.chunk_by(|a, b| a.0 == b.0) {
                for batch in shard.chunks(BATCH) {
                    let customers: Vec<String> = batch.iter().map(|(_, customer)| customer.clone()).collect();
                    locked.extend(
                        c.update(
                            &format!("{ACCOUNT} WHERE customer = ANY ($1) ORDER BY customer FOR NO KEY UPDATE"),
                            None,
                            &[customers.into()],
                        )
                        .or_raise()
                        .map(read), // (an account deleted since the list was read is gone)
                    );
                }
            }
            locked.sort_by(|a, b| a.0.cmp(&b.0));
            locked
        } else {
            c.update(&format!("{ACCOUNT} ORDER BY customer"), None, &[]).or_raise().map(read).collect()
        };
        // Read once the accounts are locked (when applying): nothing posts to them meanwhile. A
        // batch of customers at a time, so that only one batch's inputs are held at once.
        let mut rows = Vec::with_capacity(accounts.len());
        let mut accounts = accounts.into_iter().peekable();
        while accounts.peek().is_some() {
            let batch: Vec<Reviewed> = accounts.by_ref().take(BATCH).collect();
            let customers: Vec<String> = batch.iter().map(|a| a.0.clone()).collect();
            let mut inputs = Inputs::read(c, &customers, as_of, &scale);
            let sales = monthly_sales(c, &customers, as_of);
            for a in batch {
                let Some(i) = inputs.remove(&a.0) else { continue };
                let sales = sales.get(&a.0).copied();
                rows.push(review(c, &scale, &policies, as_of, dry_run, a, i, sales));
            }
        }
        if !dry_run {
            events::set_reason(c, ""); // set by apply_review
        }
        rows
    });
    TableIterator::new(rows)
}
