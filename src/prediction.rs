//! Late-payment prediction in the database (docs/prediction.md): every invoice's features as of
//! its document date (credit_core::predict, from the ledger read once), a multinomial model (on
//! time / late / very late) and a binary one (on time / late) trained on settled invoices and kept
//! in credit.payment_model, predictions for open invoices with their top factors, and the
//! evaluation on the invoices after the training window.
use crate::pg::args;
use crate::pg::error::{self, OrRaise, Required};
use crate::privileges;
use credit_core::predict::{self, Events, Features, Invoice, Model, FEATURE_NAMES};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::HashMap;

/// An invoice with what the model needs beside its features.
struct Row {
    id: i64,
    customer: String,
    doc_no: String,
    doc_day: i32,
    due_day: i32,
    open: f64,
    /// (day of the closing payment, days late) when settled by a payment.
    settled: Option<(i32, i32)>,
    amount: f64,
    /// Applications (any kind, reversals negative): (day, amount).
    applied: Vec<(i32, f64)>,
    features: Features,
}

/// Every invoice (of one customer, or all) with its features as of its document date.
fn ledger(c: &SpiClient<'_>, customer: Option<&str>) -> Vec<Row> {
    let mut invoices: HashMap<i64, (String, String, Invoice, f64)> = HashMap::new();
    let mut order: Vec<i64> = Vec::new();
    // One customer's rows named by equality (on Citus, read on its node alone).
    let one = |sql: &str| crate::pg::citus::given(sql, "$1", customer);
    for r in c
        .select(
            &one("SELECT i.id, i.customer, i.doc_no, i.doc_date - DATE '2000-01-01', i.due_date - DATE '2000-01-01', \
                    i.amount::float8, extract(month FROM i.doc_date)::int, i.open_amount::float8, \
                    e.paid_on - DATE '2000-01-01', e.days_late \
               FROM credit.invoice i \
               LEFT JOIN credit.invoice_payment_experience e ON e.customer = i.customer AND e.doc_no = i.doc_no \
              WHERE $1::text IS NULL OR i.customer = $1 \
              ORDER BY i.customer, i.doc_date, i.id"),
            None,
            &[customer.into()],
        )
        .or_raise()
    {
        let id = r.get::<i64>(1).or_raise().required("invoice id");
        let paid: Option<i32> = r.get(9).or_raise();
        let late: Option<i32> = r.get(10).or_raise();
        order.push(id);
        invoices.insert(
            id,
            (
                r.get::<String>(2).or_raise().required("customer"),
                r.get::<String>(3).or_raise().required("doc_no"),
                Invoice {
                    doc_day: r.get::<i32>(4).or_raise().required("doc_date"),
                    due_day: r.get::<i32>(5).or_raise().required("due_date"),
                    amount: r.get::<f64>(6).or_raise().required("amount"),
                    month: r.get::<i32>(7).or_raise().required("month") as u32,
                    settled: paid.zip(late),
                    applied: Vec::new(),
                },
                r.get::<f64>(8).or_raise().required("open_amount"),
            ),
        );
    }
    for r in c
        .select(
            &one("SELECT a.invoice_id, a.applied_on - DATE '2000-01-01', a.amount::float8 FROM credit.allocation a \
              WHERE $1::text IS NULL OR a.customer = $1"),
            None,
            &[customer.into()],
        )
        .or_raise()
    {
        let id = r.get::<i64>(1).or_raise().required("invoice id");
        if let Some(inv) = invoices.get_mut(&id) {
            inv.2.applied.push((
                r.get::<i32>(2).or_raise().required("applied_on"),
                r.get::<f64>(3).or_raise().required("amount"),
            ));
        }
    }
    let mut events: HashMap<String, Events> = HashMap::new();
    for r in c
        .select(
            &one("SELECT d.customer, 'dispute', d.opened_on - DATE '2000-01-01', 0 FROM credit.invoice_dispute d \
              WHERE $1::text IS NULL OR d.customer = $1 \
             UNION ALL \
             SELECT p.customer, 'broken', p.decided_on - DATE '2000-01-01', 0 FROM credit.promise p \
              WHERE p.status = 'broken' AND ($1::text IS NULL OR p.customer = $1) \
             UNION ALL \
             SELECT r.customer, 'broken', r.decided_on - DATE '2000-01-01', 0 FROM credit.arrangement r \
              WHERE r.status = 'broken' AND ($1::text IS NULL OR r.customer = $1) \
             UNION ALL \
             SELECT t.customer, 'dunning', t.created_for - DATE '2000-01-01', t.level FROM credit.collection_task t \
              WHERE t.level IS NOT NULL AND ($1::text IS NULL OR t.customer = $1)"),
            None,
            &[customer.into()],
        )
        .or_raise()
    {
        let e = events.entry(r.get::<String>(1).or_raise().required("customer")).or_default();
        let day = r.get::<i32>(3).or_raise().required("day");
        match r.get::<String>(2).or_raise().as_deref() {
            Some("dispute") => e.disputes.push(day),
            Some("broken") => e.broken_promises.push(day),
            _ => e.dunning.push((day, r.get::<i32>(4).or_raise().unwrap_or(0))),
        }
    }
    // Features per customer, in the invoices' order.
    let mut out = Vec::with_capacity(order.len());
    let mut start = 0;
    while start < order.len() {
        let customer = invoices[&order[start]].0.clone();
        let mut end = start;
        while end < order.len() && invoices[&order[end]].0 == customer {
            end += 1;
        }
        let ids = &order[start..end];
        let group: Vec<Invoice> = ids.iter().map(|id| invoices[id].2.clone()).collect();
        let feats = predict::features(&group, events.get(&customer).unwrap_or(&Events::default()));
        for (id, f) in ids.iter().zip(feats) {
            let (cust, doc_no, inv, open) = &invoices[id];
            out.push(Row {
                id: *id,
                customer: cust.clone(),
                doc_no: doc_no.clone(),
                doc_day: inv.doc_day,
                due_day: inv.due_day,
                open: *open,
                settled: inv.settled,
                amount: inv.amount,
                applied: inv.applied.clone(),
                features: f,
            });
        }
        start = end;
    }
    out
}

/// A date from a day number of the queries above.
fn date_of(day: i32) -> Date {
    // SAFETY: every day given here is a stored date's day number plus at most 36,500 days of
    // expected lateness (clamped below), far inside the range a PostgreSQL date holds.
    unsafe { Date::from_pg_epoch_days(day) }
}

/// Days late of an invoice as known on `until`, for training and testing: only invoices whose
/// every class is decided by then — due more than `very_late_after` days before — count (taking
/// the recent ones paid on time but not yet the recent late ones would teach the model that
/// invoices are paid on time); one still open is at least as late as it has been.
fn outcome(r: &Row, until: i32, very_late_after: i32) -> Option<i32> {
    if r.due_day + very_late_after >= until {
        return None;
    }
    match r.settled {
        Some((paid, late)) if paid <= until => Some(late),
        _ if r.open > 0.0 || r.settled.is_some() => Some(until - r.due_day),
        _ => None, // settled otherwise (cancelled, written off): no payment behaviour
    }
}

fn day_number(d: Date) -> i32 {
    d.to_pg_epoch_days() // 2000-01-01 is day 0, as in the queries above
}

/// Trains the two models on the invoices dated in [trained_from, trained_until] whose outcome is
/// known by trained_until (due more than very_late_after days before it): on time (at most late_after days late), late, very late (more than
/// very_late_after); stores them in credit.payment_model and returns their ids, kinds and sizes.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn train_payment_model(
    trained_from: default!(Option<Date>, "NULL"),
    trained_until: default!(Option<Date>, "CURRENT_DATE"),
    late_after: default!(Option<i32>, "0"),
    very_late_after: default!(Option<i32>, "30"),
) -> TableIterator<'static, (name!(model_id, i64), name!(kind, String), name!(examples, i64))> {
    crate::pg::citus::refuse_on_worker("Training the payment model");
    privileges::require("manager", "training the payment model");
    let until = args::not_future(trained_until, "trained_until");
    let from = args::optional_date(trained_from, "trained_from");
    let Some(late_after) = late_after else { error::null_arg("late_after") };
    let Some(very_late_after) = very_late_after else { error::null_arg("very_late_after") };
    if !(0..=365).contains(&late_after) || very_late_after <= late_after || very_late_after > 3650 {
        error::invalid(format!(
            "late_after {late_after} and very_late_after {very_late_after}: 0 <= late_after < very_late_after <= 3650"
        ))
    }
    if from.is_some_and(|f| f > until) {
        error::invalid(format!("trained_from {} is after trained_until {until}", from.unwrap_or(until)))
    }
    let (f, u) = (from.map(day_number).unwrap_or(i32::MIN), day_number(until));
    let rows = Spi::connect(|c| ledger(c, None));
    let train: Vec<(&Row, i32)> = rows
        .iter()
        .filter(|r| r.doc_day >= f && r.doc_day <= u)
        .filter_map(|r| outcome(r, u, very_late_after).map(|late| (r, late)))
        .collect();
    let x: Vec<Vec<f64>> = train.iter().map(|(r, _)| r.features.to_vec()).collect();
    let mut out = Vec::new();
    for (kind, classes, binary) in [("multinomial", 3usize, false), ("binary", 2usize, true)] {
        let y: Vec<usize> =
            train.iter().map(|(_, late)| predict::class_of(*late, late_after, very_late_after, binary)).collect();
        let model = predict::train(&x, &y, classes).unwrap_or_else(|e| {
            error::raise(
                error::Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("cannot train the {kind} payment model: {e}"),
                Some(format!(
                    "{} invoices in the window whose outcome is known; classes: on time (<= {late_after} days late), late{}",
                    train.len(),
                    if binary { String::new() } else { format!(", very late (> {very_late_after})") }
                )),
                Some("Widen the window (trained_from, trained_until) or move the thresholds so every class has examples."),
            )
        });
        // Mean days late per class: the expected payment date of a prediction.
        let class_days: Vec<f64> = (0..classes)
            .map(|k| {
                let v: Vec<f64> =
                    train.iter().zip(&y).filter(|(_, c)| **c == k).map(|((_, late), _)| f64::from(*late)).collect();
                v.iter().sum::<f64>() / v.len().max(1) as f64
            })
            .collect();
        let counts: Vec<i64> = (0..classes).map(|k| y.iter().filter(|c| **c == k).count() as i64).collect();
        // Days late of each class at its 5th, 15th, ... 95th percentiles: a forecast spreads a
        // class's money over them.
        let quantiles: Vec<Vec<i32>> = (0..classes)
            .map(|k| {
                let mut v: Vec<i32> =
                    train.iter().zip(&y).filter(|(_, c)| **c == k).map(|((_, late), _)| *late).collect();
                v.sort_unstable();
                (0..10).map(|q| v[((2 * q + 1) * v.len() / 20).min(v.len() - 1)]).collect()
            })
            .collect();
        let weights = serde_json::to_value(&model.weights).unwrap_or_default();
        let id: i64 = Spi::connect_mut(|c| {
            c.update(
                "INSERT INTO credit.payment_model (kind, late_after, very_late_after, features, feature_mean, feature_scale, \
                                                   weights, class_mean_days_late, class_days_late_deciles, class_examples, \
                                                   trained_from, trained_until, examples, trained_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, credit._person()) RETURNING id",
                Some(1),
                &[
                    kind.into(),
                    late_after.into(),
                    very_late_after.into(),
                    FEATURE_NAMES.iter().map(|s| s.to_string()).collect::<Vec<String>>().into(),
                    model.mean.clone().into(),
                    model.scale.clone().into(),
                    pgrx::JsonB(weights).into(),
                    class_days.into(),
                    pgrx::JsonB(serde_json::to_value(&quantiles).unwrap_or_default()).into(),
                    counts.into(),
                    from.into(),
                    until.into(),
                    (train.len() as i64).into(),
                ],
            )
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise()
            .required("model id")
        });
        out.push((id, kind.to_string(), train.len() as i64));
    }
    TableIterator::new(out)
}

/// A stored model.
struct Stored {
    kind: String,
    late_after: i32,
    very_late_after: i32,
    until: i32,
    class_days: Vec<f64>,
    /// Per class, days late at the 5th, 15th, ... 95th percentiles.
    class_deciles: Vec<Vec<i32>>,
    model: Model,
}

fn stored(c: &SpiClient<'_>, model_id: Option<i64>) -> (i64, Stored) {
    let t = c
        .select(
            "SELECT m.id, m.kind, m.late_after, m.very_late_after, m.trained_until - DATE '2000-01-01', m.class_mean_days_late, \
                    m.feature_mean, m.feature_scale, m.weights, m.class_days_late_deciles \
               FROM credit.payment_model m \
              WHERE ($1::bigint IS NULL AND m.kind = 'multinomial') OR m.id = $1 \
              ORDER BY m.id DESC LIMIT 1",
            Some(1),
            &[model_id.into()],
        )
        .or_raise();
    if t.is_empty() {
        error::raise(
            error::Code::ERRCODE_NO_DATA_FOUND,
            match model_id {
                Some(id) => format!("payment model {id} does not exist"),
                None => "no payment model has been trained".to_string(),
            },
            None,
            Some("credit.train_payment_model() trains one."),
        )
    }
    let r = t.first();
    let weights: pgrx::JsonB = r.get(9).or_raise().required("weights");
    let weights: Vec<Vec<f64>> = serde_json::from_value(weights.0).unwrap_or_else(|e| error::conversion(e));
    let deciles: pgrx::JsonB = r.get(10).or_raise().required("deciles");
    let deciles: Vec<Vec<i32>> = serde_json::from_value(deciles.0).unwrap_or_else(|e| error::conversion(e));
    (
        r.get::<i64>(1).or_raise().required("model id"),
        Stored {
            kind: r.get::<String>(2).or_raise().required("kind"),
            late_after: r.get::<i32>(3).or_raise().required("late_after"),
            very_late_after: r.get::<i32>(4).or_raise().required("very_late_after"),
            until: r.get::<i32>(5).or_raise().required("trained_until"),
            class_days: r.get::<Vec<f64>>(6).or_raise().required("class means"),
            class_deciles: deciles,
            model: Model {
                mean: r.get::<Vec<f64>>(7).or_raise().required("feature_mean"),
                scale: r.get::<Vec<f64>>(8).or_raise().required("feature_scale"),
                weights,
            },
        },
    )
}

/// The open invoices (settled by nothing yet) with their features and the model's probabilities.
fn open_scored(rows: Vec<Row>, model: &Model) -> impl Iterator<Item = (Row, Vec<f64>, Vec<f64>)> + '_ {
    rows.into_iter().filter(|r| r.open > 0.0 && r.settled.is_none()).map(move |r| {
        let x = r.features.to_vec();
        let p = model.predict(&x);
        (r, x, p)
    })
}

/// For every open invoice (of one customer, or all): the probabilities of being paid on time, late
/// and very late (a binary model gives no very-late probability), the expected payment date (the
/// due date plus the classes' mean days late, weighted by their probabilities), and the three
/// features that most make it look late (their contribution to the late classes' score).
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn payment_prediction(
    model_id: default!(Option<i64>, "NULL"),
    customer: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(invoice_id, i64),
        name!(customer, String),
        name!(doc_no, String),
        name!(open_amount, f64),
        name!(due_date, Date),
        name!(p_on_time, f64),
        name!(p_late, f64),
        name!(p_very_late, Option<f64>),
        name!(expected_payment_date, Date),
        name!(factors, pgrx::JsonB),
    ),
> {
    let customer = args::optional_text(customer, "customer");
    let (rows, m) = Spi::connect(|c| {
        let (_, m) = stored(c, model_id);
        (ledger(c, customer), m)
    });
    let out: Vec<_> = open_scored(rows, &m.model)
        .map(|(r, x, p)| {
            let late_class = p.len() - 1;
            let expected_late: f64 = p.iter().zip(&m.class_days).map(|(a, b)| a * b).sum();
            let factors: Vec<serde_json::Value> = m
                .model
                .contributions(&x, late_class)
                .into_iter()
                .take(3)
                .map(|(j, v)| serde_json::json!({"feature": FEATURE_NAMES[j], "value": x[j], "contribution": (v * 1000.0).round() / 1000.0}))
                .collect();
            (
                r.id,
                r.customer,
                r.doc_no,
                r.open,
                date_of(r.due_day),
                p[0],
                p[1],
                (p.len() == 3).then(|| p[2]),
                date_of(r.due_day + expected_late.round().clamp(f64::from(r.doc_day - r.due_day), 36500.0) as i32),
                pgrx::JsonB(serde_json::Value::Array(factors)),
            )
        })
        .collect();
    TableIterator::new(out)
}

/// The early-warning step's view of the predictions (sql/warnings.sql): every open invoice's
/// very-late probability by the latest multinomial model — nothing while none is trained.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn _predicted_very_late() -> TableIterator<
    'static,
    (name!(customer, String), name!(doc_no, String), name!(open_amount, f64), name!(p_very_late, f64)),
> {
    privileges::require_internal("credit._predicted_very_late");
    let out: Vec<_> = Spi::connect(|c| {
        let any = c
            .select("SELECT EXISTS (SELECT 1 FROM credit.payment_model WHERE kind = 'multinomial')", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
            .unwrap_or(false);
        if !any {
            return Vec::new();
        }
        let (_, m) = stored(c, None);
        open_scored(ledger(c, None), &m.model)
            .map(|(r, _, p)| (r.customer, r.doc_no, r.open, p.last().copied().unwrap_or(0.0)))
            .collect()
    });
    TableIterator::new(out)
}

/// A model judged on what came after its training window: the invoices dated after it whose
/// outcome is known today (a time-ordered hold-out; see `outcome`). AUC of the late-or-worse probability, AUC of the
/// very-late one (multinomial), accuracy and F1-macro each beside always predicting the commonest
/// class, the Brier score beside predicting the class shares, and a calibration table of the
/// late-or-worse probability.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn evaluate_payment_model(model_id: Option<i64>) -> pgrx::JsonB {
    let Some(model_id) = model_id else { error::null_arg("model_id") };
    let (rows, m) = Spi::connect(|c| {
        let (_, m) = stored(c, Some(model_id));
        (ledger(c, None), m)
    });
    let binary = m.kind == "binary";
    let today = day_number(args::today());
    let test: Vec<(&Row, i32)> = rows
        .iter()
        .filter(|r| r.doc_day > m.until)
        .filter_map(|r| outcome(r, today, m.very_late_after).map(|late| (r, late)))
        .collect();
    if test.is_empty() {
        error::raise(
            error::Code::ERRCODE_NO_DATA_FOUND,
            format!("no invoice dated after payment model {model_id}'s window has a known outcome yet"),
            None,
            Some("Train on an earlier window (trained_until) to keep later invoices for the test."),
        )
    }
    let classes = if binary { 2 } else { 3 };
    let actual: Vec<usize> =
        test.iter().map(|(_, late)| predict::class_of(*late, m.late_after, m.very_late_after, binary)).collect();
    let probs: Vec<Vec<f64>> = test.iter().map(|(r, _)| m.model.predict(&r.features.to_vec())).collect();
    let predicted: Vec<usize> = probs
        .iter()
        .map(|p| p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k).unwrap_or(0))
        .collect();
    let late_p: Vec<f64> = probs.iter().map(|p| 1.0 - p[0]).collect();
    let late_y: Vec<bool> = actual.iter().map(|c| *c > 0).collect();
    let accuracy = predicted.iter().zip(&actual).filter(|(p, a)| p == a).count() as f64 / test.len() as f64;
    let counts: Vec<usize> = (0..classes).map(|k| actual.iter().filter(|c| **c == k).count()).collect();
    let majority = *counts.iter().max().unwrap_or(&0) as f64 / test.len() as f64;
    let commonest = counts.iter().enumerate().max_by_key(|(_, c)| **c).map(|(k, _)| k).unwrap_or(0);
    let majority_f1 = predict::f1_macro(&vec![commonest; test.len()], &actual, classes);
    // The reference a Brier score is read against: always predicting the test's class shares.
    let shares: Vec<f64> = counts.iter().map(|c| *c as f64 / test.len() as f64).collect();
    let reference = predict::brier(&vec![shares; test.len()], &actual);
    let very_late = (!binary).then(|| {
        let p: Vec<f64> = probs.iter().map(|p| p[2]).collect();
        let y: Vec<bool> = actual.iter().map(|c| *c == 2).collect();
        predict::auc(&p, &y)
    });
    let round = |v: f64| (v * 10000.0).round() / 10000.0;
    pgrx::JsonB(serde_json::json!({
        "model_id": model_id,
        "kind": m.kind,
        "test_examples": test.len(),
        "class_examples": counts,
        "auc_late": predict::auc(&late_p, &late_y).map(round),
        "auc_very_late": very_late.flatten().map(round),
        "accuracy": round(accuracy),
        "majority_class_accuracy": round(majority),
        "f1_macro": round(predict::f1_macro(&predicted, &actual, classes)),
        "f1_macro_of_commonest_class": round(majority_f1),
        "brier": round(predict::brier(&probs, &actual)),
        "brier_of_class_shares": round(reference),
        "calibration": predict::calibration(&late_p, &late_y, 10).into_iter()
            .map(|(lo, n, mean_p, seen)| serde_json::json!({"from": lo, "invoices": n, "predicted": round(mean_p), "observed": round(seen)}))
            .collect::<Vec<_>>(),
    }))
}

/// Expected receipts per week from a day: promises to pay and the instalments of active payment
/// arrangements on their dates (`promised`); for the rest of every open invoice, the model's
/// probabilities at the dates its classes pay on average (`predicted`) — a receipt expected before
/// the day falls in the first week. Per customer and week, and in all (customer NULL). For a past
/// day (a backtest) everything is as of that day — open amounts, promises, plans — the model must
/// have been trained on data up to it, and `actual` gives the payments applied to those invoices in
/// each week that has ended. Amounts are expectations (probability times money), rounded to cents.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn cash_forecast(
    weeks: default!(Option<i32>, "13"),
    as_of: default!(Option<Date>, "CURRENT_DATE"),
    model_id: default!(Option<i64>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(week_start, Date),
        name!(customer, Option<String>),
        name!(promised, pgrx::AnyNumeric),
        name!(predicted, pgrx::AnyNumeric),
        name!(expected, pgrx::AnyNumeric),
        name!(actual, Option<pgrx::AnyNumeric>),
    ),
> {
    let Some(weeks) = weeks else { error::null_arg("weeks") };
    if !(1..=104).contains(&weeks) {
        error::invalid(format!("weeks {weeks} is not between 1 and 104"))
    }
    let as_of = args::not_future(as_of, "as_of");
    let day = day_number(as_of);
    let today = day_number(args::today());
    let horizon = day + 7 * weeks;
    let week_of = |d: i32| ((d.max(day) - day) / 7) as usize;
    type Key = (usize, String);
    let mut promised: HashMap<Key, f64> = HashMap::new();
    let mut predicted: HashMap<Key, f64> = HashMap::new();
    let mut actual: HashMap<Key, f64> = HashMap::new();
    Spi::connect(|c| {
        let (id, m) = stored(c, model_id);
        if m.until > day {
            error::raise(
                error::Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("payment model {id} was trained on data after {as_of}"),
                None,
                Some(
                    "A backtest needs a model trained up to its day: credit.train_payment_model(trained_until => ...).",
                ),
            )
        }
        // Promises open on the day, and what they cover of each invoice.
        let mut covered: HashMap<i64, f64> = HashMap::new();
        for r in c
            .select(
                "SELECT p.customer, p.invoice_id, greatest(p.promised_date, $1) - DATE '2000-01-01', p.amount::float8 \
                   FROM credit.promise p WHERE p.made_on <= $1 AND (p.status = 'open' OR p.decided_on > $1)",
                None,
                &[as_of.into()],
            )
            .or_raise()
        {
            let (cust, inv, d, a) = (
                r.get::<String>(1).or_raise().required("customer"),
                r.get::<i64>(2).or_raise().required("invoice"),
                r.get::<i32>(3).or_raise().required("date"),
                r.get::<f64>(4).or_raise().required("amount"),
            );
            *covered.entry(inv).or_default() += a;
            if d < horizon {
                *promised.entry((week_of(d), cust)).or_default() += a;
            }
        }
        // Instalments of plans active on the day; their invoices are the plan's. (Here and below
        // every join goes through the customer: on Citus a customer's rows sit on one node.)
        for r in c
            .select(
                "SELECT s.customer, greatest(s.due_date, $1) - DATE '2000-01-01', s.open_amount::float8 \
                   FROM credit.arrangement_schedule($1) s WHERE s.arrangement_status = 'active' AND s.open_amount > 0",
                None,
                &[as_of.into()],
            )
            .or_raise()
        {
            let d = r.get::<i32>(2).or_raise().required("date");
            if d < horizon {
                *promised.entry((week_of(d), r.get::<String>(1).or_raise().required("customer"))).or_default() +=
                    r.get::<f64>(3).or_raise().required("amount");
            }
        }
        for r in c
            .select(
                "SELECT ai.invoice_id FROM credit.arrangement_invoice ai JOIN credit.arrangement ar ON ar.customer = ai.customer AND ar.id = ai.arrangement_id \
                  WHERE ar.agreed_on <= $1 AND (ar.decided_on IS NULL OR ar.decided_on > $1)",
                None,
                &[as_of.into()],
            )
            .or_raise()
        {
            covered.insert(r.get::<i64>(1).or_raise().required("invoice"), f64::INFINITY);
        }
        // The rest of every invoice open on the day, spread over its classes' dates.
        for r in ledger(c, None) {
            if r.doc_day > day {
                continue;
            }
            let open = r.amount - r.applied.iter().filter(|(d, _)| *d < day).map(|(_, a)| a).sum::<f64>();
            let rest = open - covered.get(&r.id).copied().unwrap_or(0.0);
            if open <= 0.005 || rest <= 0.005 {
                continue;
            }
            // What the invoice can still be: a class whose days late have passed is out, and so
            // is the part of a class's spread that has passed; the rest shares the probability.
            let overdue = day - r.due_day;
            let p = m.model.predict(&r.features.to_vec());
            let mut parts: Vec<(i32, f64)> = Vec::new();
            for (k, pk) in p.iter().enumerate() {
                let upper = if k == 0 {
                    m.late_after
                } else if k + 1 < p.len() {
                    m.very_late_after
                } else {
                    i32::MAX
                };
                if overdue > upper {
                    continue;
                }
                let deciles = m.class_deciles.get(k).cloned().unwrap_or_default();
                let ahead: Vec<i32> = deciles.iter().copied().filter(|d| *d >= overdue).collect();
                // All of the class's spread passed but the class has not: soon.
                let ahead = if ahead.is_empty() { vec![overdue] } else { ahead };
                for d in &ahead {
                    parts.push((r.due_day + d, pk / ahead.len() as f64));
                }
            }
            let total: f64 = parts.iter().map(|(_, w)| w).sum();
            for (d, w) in parts {
                if d < horizon && total > 0.0 {
                    *predicted.entry((week_of(d), r.customer.clone())).or_default() += rest * w / total;
                }
            }
        }
        // What was paid, in the weeks that have ended.
        for r in c
            .select(
                "SELECT i.customer, a.applied_on - DATE '2000-01-01', a.amount::float8 \
                   FROM credit.allocation a \
                   JOIN credit.settlement s ON s.customer = a.customer AND s.id = a.settlement_id AND s.kind = 'payment' \
                   JOIN credit.invoice i ON i.customer = a.customer AND i.id = a.invoice_id \
                  WHERE a.applied_on >= $1 AND a.applied_on < $1 + $2 * 7 AND i.doc_date <= $1",
                None,
                &[as_of.into(), weeks.into()],
            )
            .or_raise()
        {
            let d = r.get::<i32>(2).or_raise().required("day");
            *actual.entry((week_of(d), r.get::<String>(1).or_raise().required("customer"))).or_default() +=
                r.get::<f64>(3).or_raise().required("amount");
        }
    });
    use rust_decimal::Decimal;
    let cents = |v: f64| Decimal::from_f64_retain(v).unwrap_or_default().round_dp(2);
    let money = crate::pg::numeric::numeric;
    let mut customers: Vec<String> =
        promised.keys().chain(predicted.keys()).chain(actual.keys()).map(|k| k.1.clone()).collect();
    customers.sort();
    customers.dedup();
    let mut out = Vec::new();
    for w in 0..weeks as usize {
        let start = day + 7 * w as i32;
        let ended = start + 7 <= today;
        // Each row in cents; the week's total is the sum of its rows.
        let (mut tp, mut tq, mut ta) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for cust in &customers {
            let key = (w, cust.clone());
            let (p, q, a) = (
                cents(promised.get(&key).copied().unwrap_or(0.0)),
                cents(predicted.get(&key).copied().unwrap_or(0.0)),
                cents(actual.get(&key).copied().unwrap_or(0.0)),
            );
            if p.is_zero() && q.is_zero() && a.is_zero() {
                continue;
            }
            (tp, tq, ta) = (tp + p, tq + q, ta + a);
            out.push((date_of(start), Some(cust.clone()), money(p), money(q), money(p + q), ended.then(|| money(a))));
        }
        out.push((date_of(start), None, money(tp), money(tq), money(tp + tq), ended.then(|| money(ta))));
    }
    TableIterator::new(out)
}
