//! Credit scores, grades and the periodic review of limits (credit.score, credit.regrade). The
//! arithmetic is in core::scoring; this module gathers the inputs and applies the outcome.
use crate::core::scoring::{self, Component, Grade, LimitOutcome, ReviewRules};
use crate::error::{self, OrRaise};
use crate::input;
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Raw component values for one customer as of a date (payment behaviour over the 12 months
/// before it). None = no data.
fn inputs(c: &SpiClient<'_>, customer: &str, as_of: Date) -> Vec<(Component, Option<Decimal>)> {
    let t = c
        .select(
            "WITH exp AS (SELECT e.days_late, e.amount FROM credit.payment_experience e \
                           WHERE e.customer = $1 AND e.paid_on <= $2 AND e.paid_on > $2 - 365), \
                  b AS (SELECT CASE WHEN count(*) >= 3 THEN credit.paydex(days_late, amount) END AS paydex, \
                               credit.weighted_days_late(days_late, amount) AS wdl, \
                               credit.on_time_ratio(days_late, amount, 0) AS otr FROM exp) \
             SELECT b.paydex, b.wdl, b.otr, \
                    coalesce((SELECT max(g.days) FROM credit.aging($2) g \
                               WHERE g.customer = $1 AND g.doc_type = 'invoice' AND g.days > 0), 0)::numeric, \
                    CASE WHEN lim > 0 THEN round(used / lim, 4) END, \
                    ((extract(year FROM age($2, since)) * 12 + extract(month FROM age($2, since))))::numeric \
             FROM b, \
                  (SELECT LEAST(CASE WHEN a.temporary_limit_until >= $2 THEN a.temporary_limit ELSE a.credit_limit END, a.policy_max_limit) AS lim, \
                          CASE WHEN $2 >= current_date THEN a.exposure + a.member_exposure \
                               ELSE (SELECT coalesce(sum(g.open_amount), 0) FROM credit.aging($2) g WHERE g.customer = $1) END AS used, \
                          LEAST(a.created_at::date, (SELECT min(i.doc_date) FROM credit.invoice i WHERE i.customer = $1)) AS since \
                     FROM credit.account a WHERE a.customer = $1) acct",
            Some(1),
            &[customer.into(), as_of.into()],
        )
        .or_raise();
    if t.is_empty() {
        error::unknown_customer(customer)
    }
    let row = t.first();
    let get = |i: usize| row.get::<AnyNumeric>(i).or_raise().map(|n| input::decimal(&n));
    let months = get(6).map(|m| m.max(Decimal::ZERO));
    vec![
        (Component::Paydex, get(1)),
        (Component::WeightedDaysLate, get(2)),
        (Component::OnTimeRatio, get(3)),
        (Component::DaysPastDue, get(4)),
        (Component::Utilization, get(5)),
        (Component::Relationship, months),
        (Component::Dunning, dunning_level(c, customer, as_of)),
    ]
}

/// Highest dunning step past due reached in the 12 months before as_of, counted as the number of
/// distinct overdue day-steps of the ladder up to it (escalate and hold on the same day are one
/// step): 0 = never dunned after the due date. No data (None) where collections have never run:
/// not being dunned then says nothing.
fn dunning_level(c: &SpiClient<'_>, customer: &str, as_of: Date) -> Option<Decimal> {
    let (in_use, n): (Option<bool>, Option<i64>) = c
        .select(
            "SELECT EXISTS (SELECT 1 FROM credit.collection_task), \
                    (SELECT max((SELECT count(DISTINCT l2.days) FROM credit.dunning_level l2 \
                                  WHERE l2.ladder = t.ladder AND NOT l2.retired AND l2.days > 0 AND l2.days <= l.days)) \
                       FROM credit.collection_task t JOIN credit.dunning_level l ON l.ladder = t.ladder AND l.level = t.level \
                      WHERE t.customer = $1 AND t.created_for <= $2 AND t.created_for > $2 - 365)",
            Some(1),
            &[customer.into(), as_of.into()],
        )
        .or_raise()
        .first()
        .get_two()
        .or_raise();
    in_use.unwrap_or(false).then(|| Decimal::from(n.unwrap_or(0)))
}

fn weights(c: &SpiClient<'_>) -> Vec<(Component, Decimal)> {
    c.select("SELECT component, weight FROM credit.score_weight WHERE NOT retired", None, &[])
        .or_raise()
        .filter_map(|r| {
            let comp: String = r.get(1).or_raise()?;
            let w: AnyNumeric = r.get(2).or_raise()?;
            Some((Component::parse(&comp)?, input::decimal(&w)))
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
            grade: r.get(1).or_raise().expect("grade"),
            min_score: input::decimal(&r.get::<AnyNumeric>(2).or_raise().expect("min_score")),
            max_score: r.get::<AnyNumeric>(3).or_raise().map(|m| input::decimal(&m)),
        },
        coefficient: input::decimal(&r.get::<AnyNumeric>(4).or_raise().expect("coefficient")),
        terms_days: r.get(5).or_raise().expect("terms_days"),
    })
    .collect()
}

struct Scored {
    score: Option<Decimal>,
    grade: Option<String>,
    components: serde_json::Value,
}

fn score_of(c: &SpiClient<'_>, customer: &str, as_of: Date, grades: &[GradeRow], weights: &[(Component, Decimal)]) -> Scored {
    let inputs = inputs(c, customer, as_of);
    let (mut score, parts) = scoring::score(&inputs, weights);
    if !scoring::has_payment_history(&inputs) {
        score = None; // a grade needs payment behaviour, not only the absence of debt
    }
    let gs: Vec<Grade> = grades.iter().map(|g| g.grade.clone()).collect();
    let grade = score.and_then(|s| scoring::grade_for(&gs, s)).map(|g| g.grade.clone());
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
    Scored { score, grade, components }
}

/// The credit score (0-100) of a customer as of a date, its grade, and every component: raw value,
/// points and weight (a component without data has value null and does not count).
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn score(
    customer: Option<&str>,
    as_of: default!(Option<Date>, "CURRENT_DATE"),
) -> TableIterator<'static, (name!(score, Option<AnyNumeric>), name!(grade, Option<String>), name!(components, pgrx::JsonB))> {
    let customer = input::text(customer, "customer");
    let as_of = input::date(as_of, "as_of");
    let s = Spi::connect(|c| {
        let g = grades(c);
        let w = weights(c);
        score_of(c, customer, as_of, &g, &w)
    });
    TableIterator::once((s.score.map(input::numeric), s.grade, pgrx::JsonB(s.components)))
}

fn num(v: Option<AnyNumeric>) -> Option<Decimal> {
    v.map(|n| input::decimal(&n))
}

type RegradeRow = (
    String,
    Option<String>,
    Option<String>,
    Option<AnyNumeric>,
    AnyNumeric,
    AnyNumeric,
    bool,
    String,
    String,
);

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
    let as_of = input::not_future(as_of, "as_of");
    let Some(dry_run) = dry_run else { error::null_arg("dry_run") };
    crate::roles::require(if dry_run { "reader" } else { "manager" }, "re-grading");
    let rows: Vec<RegradeRow> = Spi::connect_mut(|c| {
        let g = grades(c);
        let w = weights(c);
        // Applying locks the accounts (in customer order, the guard's); a dry run only reads.
        let accounts: Vec<(String, Option<String>, AnyNumeric)> = c
            .update(
                if dry_run {
                    "SELECT customer, grade, credit_limit FROM credit.account ORDER BY customer"
                } else {
                    "SELECT customer, grade, credit_limit FROM credit.account ORDER BY customer FOR NO KEY UPDATE"
                },
                None,
                &[],
            )
            .or_raise()
            .map(|r| (r.get(1).or_raise().expect("customer"), r.get(2).or_raise(), r.get(3).or_raise().expect("limit")))
            .collect();
        let mut out = Vec::with_capacity(accounts.len());
        for (customer, old_grade, old_limit) in accounts {
            let s = score_of(c, &customer, as_of, &g, &w);
            let Some(new_grade) = s.grade.clone() else {
                let why = if s.score.is_none() { "no data to score" } else { "the score falls in no grade" };
                out.push((customer, old_grade.clone(), old_grade, s.score.map(input::numeric), old_limit.clone(), old_limit, false, "unchanged".into(), why.into()));
                continue;
            };
            let gr = g.iter().find(|x| x.grade.grade == new_grade).expect("graded");
            let pol = c
                .update(
                    "SELECT max_limit, max_increase_ratio, approval_above FROM credit.effective_policy($1)",
                    Some(1),
                    &[customer.as_str().into()],
                )
                .or_raise();
            let p = pol.first();
            let rules = ReviewRules {
                coefficient: gr.coefficient,
                terms_days: gr.terms_days,
                max_limit: num(p.get(1).or_raise()),
                max_increase_ratio: num(p.get(2).or_raise()),
                approval_above: num(p.get(3).or_raise()),
            };
            let sales: Option<AnyNumeric> = c
                .update(
                    "SELECT avg(m) FROM (SELECT sum(amount) AS m FROM credit.invoice \
                      WHERE customer = $1 AND doc_date <= $2 AND doc_date > ($2 - interval '12 months')::date \
                      GROUP BY date_trunc('month', doc_date)) s",
                    Some(1),
                    &[customer.as_str().into(), as_of.into()],
                )
                .or_raise()
                .first()
                .get_one()
                .or_raise();
            let old = input::decimal(&old_limit);
            let prop = if gr.coefficient.is_zero() {
                // The lowest grade means no credit, with or without sales.
                scoring::Proposal {
                    limit: Decimal::ZERO,
                    outcome: if old.is_zero() { LimitOutcome::Unchanged } else { LimitOutcome::Apply },
                    reason: format!("grade {new_grade} means no credit"),
                }
            } else {
                scoring::propose(old, num(sales), &rules)
            };
            let score_txt = s.score.map(|x| x.to_string()).unwrap_or_default();
            let mut reason = format!("score {score_txt}, grade {new_grade}: {}", prop.reason);
            let mut action = match prop.outcome {
                LimitOutcome::Apply => if prop.limit < old { "decrease" } else { "increase" },
                LimitOutcome::Request => "request",
                LimitOutcome::Unchanged => "unchanged",
            }
            .to_string();
            let mut applied = false;
            if !dry_run {
                let why = format!("regrade as of {as_of}: {reason}");
                if old_grade.as_deref() != Some(new_grade.as_str()) {
                    c.update("SELECT set_config('credit.reason', $1, true)", None, &[why.as_str().into()]).or_raise();
                    c.update("UPDATE credit.account SET grade = $2 WHERE customer = $1", None, &[customer.as_str().into(), new_grade.as_str().into()])
                        .or_raise();
                    c.update("SELECT set_config('credit.reason', '', true)", None, &[]).or_raise();
                    applied = true;
                }
                match prop.outcome {
                    LimitOutcome::Apply => {
                        c.update(
                            "SELECT credit._apply_limit($1, $2, NULL, $3)",
                            None,
                            &[customer.as_str().into(), input::numeric(prop.limit).into(), why.as_str().into()],
                        )
                        .or_raise();
                        applied = true;
                    }
                    LimitOutcome::Request => {
                        let t = c
                            .update(
                                "SELECT id FROM credit.limit_request WHERE customer = $1 AND status = 'pending'",
                                Some(1),
                                &[customer.as_str().into()],
                            )
                            .or_raise();
                        let pending: Option<i64> = if t.is_empty() { None } else { t.first().get_one().or_raise() };
                        match pending {
                            Some(id) => {
                                action = "unchanged".into();
                                reason.push_str(&format!("; limit request {id} is already pending"));
                            }
                            None => {
                                let id: Option<i64> = c
                                    .update(
                                        "SELECT credit._request_limit($1, $2, $3, NULL, 'regrade')",
                                        Some(1),
                                        &[customer.as_str().into(), input::numeric(prop.limit).into(), why.as_str().into()],
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
            }
            out.push((
                customer,
                old_grade,
                Some(new_grade),
                s.score.map(input::numeric),
                old_limit,
                input::numeric(prop.limit),
                applied,
                action,
                reason,
            ));
        }
        out
    });
    TableIterator::new(rows)
}
