//! Late-payment prediction, the arithmetic (issue 16, part 2; the database side is still to come):
//! the features of an invoice as of its document date, a multinomial logistic model (softmax; two
//! classes make the binary one) trained by gradient descent on standardised features, and the
//! measures a model is judged by (AUC, F1-macro, accuracy, Brier score, calibration). Floats are
//! fine here: these are scores, not money.

/// What the customer's ledger said on an invoice's document date — nothing later.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub ln_amount: f64,
    pub terms_days: f64,
    /// Of the customer's invoices that fell due in the 180 days before the day, the share settled
    /// by then, smoothed: (settled + 1) / (due + 2). (A count of settled invoices would grow with
    /// the ledger's age, and a model would read the years as a change in the payers.)
    pub recent_due_paid_share: f64,
    /// Share of the settled invoices paid late, smoothed: (late + 1) / (settled + 2).
    pub share_late: f64,
    pub average_days_late: f64,
    pub weighted_days_late: f64,
    /// Open and overdue receivables of the customer at the start of the day (other invoices).
    pub ln_outstanding: f64,
    pub ln_overdue: f64,
    pub disputes_before: f64,
    pub broken_promises_before: f64,
    /// Highest dunning level of the 90 days before.
    pub dunning_level: f64,
    /// The month, as a point on a circle (December next to January).
    pub month_sin: f64,
    pub month_cos: f64,
}

pub const FEATURE_NAMES: [&str; 13] = [
    "ln_amount",
    "terms_days",
    "recent_due_paid_share",
    "share_late",
    "average_days_late",
    "weighted_days_late",
    "ln_outstanding",
    "ln_overdue",
    "disputes_before",
    "broken_promises_before",
    "dunning_level",
    "month_sin",
    "month_cos",
];

impl Features {
    pub fn to_vec(&self) -> Vec<f64> {
        vec![
            self.ln_amount,
            self.terms_days,
            self.recent_due_paid_share,
            self.share_late,
            self.average_days_late,
            self.weighted_days_late,
            self.ln_outstanding,
            self.ln_overdue,
            self.disputes_before,
            self.broken_promises_before,
            self.dunning_level,
            self.month_sin,
            self.month_cos,
        ]
    }
}

/// One invoice of a customer: its days (any epoch), amount, month (1-12), and when it was settled
/// with how many days late (None: open).
#[derive(Debug, Clone)]
pub struct Invoice {
    pub doc_day: i32,
    pub due_day: i32,
    pub amount: f64,
    pub month: u32,
    /// (day of the closing payment, days late, amount paid by then) — None while open.
    pub settled: Option<(i32, i32)>,
    /// Applications before settlement: (day, amount); what was open on a day is the amount less
    /// what was applied before it.
    pub applied: Vec<(i32, f64)>,
}

/// The customer's other events: (day) of disputes opened, promises broken, and (day, level) of
/// dunning tasks created.
#[derive(Debug, Clone, Default)]
pub struct Events {
    pub disputes: Vec<i32>,
    pub broken_promises: Vec<i32>,
    pub dunning: Vec<(i32, i32)>,
}

/// The features of each invoice of one customer, as of its document date: only invoices settled
/// before that day count as history, only applications before it reduce what was outstanding.
pub fn features(invoices: &[Invoice], events: &Events) -> Vec<Features> {
    invoices
        .iter()
        .map(|inv| {
            let day = inv.doc_day;
            let mut n = 0.0;
            let (mut due_recent, mut paid_recent) = (0.0, 0.0);
            let mut late = 0.0;
            let mut sum_late = 0.0;
            let mut w_late = 0.0;
            let mut w = 0.0;
            let mut outstanding = 0.0;
            let mut overdue = 0.0;
            for other in invoices.iter().filter(|o| !std::ptr::eq(*o, inv)) {
                if other.due_day < day && other.due_day >= day - 180 {
                    due_recent += 1.0;
                    if other.settled.is_some_and(|(paid_day, _)| paid_day < day) {
                        paid_recent += 1.0;
                    }
                }
                if let Some((paid_day, days_late)) = other.settled {
                    if paid_day < day {
                        n += 1.0;
                        if days_late > 0 {
                            late += 1.0;
                        }
                        sum_late += f64::from(days_late);
                        w_late += f64::from(days_late) * other.amount;
                        w += other.amount;
                        continue;
                    }
                }
                if other.doc_day < day {
                    let paid: f64 = other.applied.iter().filter(|(d, _)| *d < day).map(|(_, a)| *a).sum();
                    let open = (other.amount - paid).max(0.0);
                    outstanding += open;
                    if other.due_day < day {
                        overdue += open;
                    }
                }
            }
            let angle = f64::from(inv.month.clamp(1, 12) - 1) / 12.0 * std::f64::consts::TAU;
            Features {
                ln_amount: inv.amount.max(0.0).ln_1p(),
                terms_days: f64::from(inv.due_day - inv.doc_day),
                recent_due_paid_share: (paid_recent + 1.0) / (due_recent + 2.0),
                // Smoothed (Laplace): one late and one on-time invoice assumed before any, so two
                // late of two and twenty of twenty do not read as the same certainty.
                share_late: (late + 1.0) / (n + 2.0),
                average_days_late: if n > 0.0 { sum_late / n } else { 0.0 },
                weighted_days_late: if w > 0.0 { w_late / w } else { 0.0 },
                ln_outstanding: outstanding.ln_1p(),
                ln_overdue: overdue.ln_1p(),
                disputes_before: events.disputes.iter().filter(|d| **d < day).count() as f64,
                broken_promises_before: events.broken_promises.iter().filter(|d| **d < day).count() as f64,
                dunning_level: events
                    .dunning
                    .iter()
                    .filter(|(d, _)| *d < day && *d >= day - 90)
                    .map(|(_, l)| f64::from(*l))
                    .fold(0.0, f64::max),
                month_sin: angle.sin(),
                month_cos: angle.cos(),
            }
        })
        .collect()
}

/// The class of a settled invoice: 0 on time (days late at most `late_after`), 1 late, 2 very late
/// (more than `very_late_after`); with `binary`, 0 on time and 1 late.
pub fn class_of(days_late: i32, late_after: i32, very_late_after: i32, binary: bool) -> usize {
    if days_late <= late_after {
        0
    } else if binary || days_late <= very_late_after {
        1
    } else {
        2
    }
}

/// A trained model: feature scaling, and per class the intercept and weights on the standardised
/// features (softmax over the classes).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    /// classes × (1 + features): intercept first.
    pub weights: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrainError {
    TooFew { have: usize, need: usize },
    EmptyClass(usize),
    Shape,
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainError::TooFew { have, need } => {
                write!(f, "{have} settled invoices to learn from, at least {need} needed")
            }
            TrainError::EmptyClass(c) => write!(f, "class {c} has no examples"),
            TrainError::Shape => write!(f, "rows of different lengths"),
        }
    }
}

pub const MIN_EXAMPLES: usize = 100;

fn softmax(z: &mut [f64]) {
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        s += *v;
    }
    for v in z.iter_mut() {
        *v /= s;
    }
}

impl Model {
    fn standardise(&self, x: &[f64]) -> Vec<f64> {
        x.iter().zip(self.mean.iter().zip(&self.scale)).map(|(v, (m, s))| (v - m) / s).collect()
    }

    /// Class probabilities of one row of features.
    pub fn predict(&self, x: &[f64]) -> Vec<f64> {
        let z = self.standardise(x);
        let mut out: Vec<f64> =
            self.weights.iter().map(|w| w[0] + w[1..].iter().zip(&z).map(|(a, b)| a * b).sum::<f64>()).collect();
        softmax(&mut out);
        out
    }

    /// What each feature adds to a class's score against the average of the classes, largest
    /// (in absolute value) first: the factors that make this invoice look like that class.
    pub fn contributions(&self, x: &[f64], class: usize) -> Vec<(usize, f64)> {
        let z = self.standardise(x);
        let k = self.weights.len() as f64;
        let mut c: Vec<(usize, f64)> = (0..z.len())
            .map(|j| {
                let mean_w = self.weights.iter().map(|w| w[j + 1]).sum::<f64>() / k;
                (j, (self.weights[class][j + 1] - mean_w) * z[j])
            })
            .collect();
        c.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        c
    }
}

/// Trains a softmax model on rows `x` and classes `y` (0..classes): full-batch gradient descent
/// with Adam steps and a small L2 penalty, a fixed number of rounds (deterministic: the same data
/// give the same model).
pub fn train(x: &[Vec<f64>], y: &[usize], classes: usize) -> Result<Model, TrainError> {
    let n = x.len();
    if n < MIN_EXAMPLES {
        return Err(TrainError::TooFew { have: n, need: MIN_EXAMPLES });
    }
    let d = x[0].len();
    if x.iter().any(|r| r.len() != d) || y.len() != n {
        return Err(TrainError::Shape);
    }
    for c in 0..classes {
        if !y.contains(&c) {
            return Err(TrainError::EmptyClass(c));
        }
    }
    let mean: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
    let scale: Vec<f64> = (0..d)
        .map(|j| {
            let v = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n as f64;
            if v > 1e-12 {
                v.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let z: Vec<Vec<f64>> =
        x.iter().map(|r| r.iter().zip(mean.iter().zip(&scale)).map(|(v, (m, s))| (v - m) / s).collect()).collect();
    let mut w = vec![vec![0.0; d + 1]; classes];
    let (mut m1, mut m2) = (vec![vec![0.0; d + 1]; classes], vec![vec![0.0; d + 1]; classes]);
    let (lr, b1, b2, eps, l2) = (0.05, 0.9, 0.999, 1e-8, 1e-4);
    let mut p = vec![0.0; classes];
    for round in 1..=400 {
        let mut g = vec![vec![0.0; d + 1]; classes];
        for (row, &yi) in z.iter().zip(y) {
            for (k, pk) in p.iter_mut().enumerate() {
                *pk = w[k][0] + w[k][1..].iter().zip(row).map(|(a, b)| a * b).sum::<f64>();
            }
            softmax(&mut p);
            for k in 0..classes {
                let e = p[k] - if k == yi { 1.0 } else { 0.0 };
                g[k][0] += e;
                for j in 0..d {
                    g[k][j + 1] += e * row[j];
                }
            }
        }
        for k in 0..classes {
            for j in 0..=d {
                let grad = g[k][j] / n as f64 + if j > 0 { l2 * w[k][j] } else { 0.0 };
                m1[k][j] = b1 * m1[k][j] + (1.0 - b1) * grad;
                m2[k][j] = b2 * m2[k][j] + (1.0 - b2) * grad * grad;
                let mh = m1[k][j] / (1.0 - b1.powi(round));
                let vh = m2[k][j] / (1.0 - b2.powi(round));
                w[k][j] -= lr * mh / (vh.sqrt() + eps);
            }
        }
    }
    Ok(Model { mean, scale, weights: w })
}

/// Area under the ROC curve of scores for a yes/no outcome (ties count half); None without both.
pub fn auc(scores: &[f64], yes: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let (pos, neg) = (yes.iter().filter(|v| **v).count() as f64, yes.iter().filter(|v| !**v).count() as f64);
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    // Rank-sum with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            if yes[*k] {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// F1 averaged over the classes (a class never predicted nor present is left out).
pub fn f1_macro(predicted: &[usize], actual: &[usize], classes: usize) -> f64 {
    let mut f1s = Vec::new();
    for c in 0..classes {
        let tp = predicted.iter().zip(actual).filter(|(p, a)| **p == c && **a == c).count() as f64;
        let fp = predicted.iter().zip(actual).filter(|(p, a)| **p == c && **a != c).count() as f64;
        let fneg = predicted.iter().zip(actual).filter(|(p, a)| **p != c && **a == c).count() as f64;
        if tp + fp + fneg == 0.0 {
            continue;
        }
        f1s.push(if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fneg) });
    }
    if f1s.is_empty() {
        0.0
    } else {
        f1s.iter().sum::<f64>() / f1s.len() as f64
    }
}

/// Mean over rows of the squared distance between the probabilities and the one-hot outcome.
pub fn brier(probabilities: &[Vec<f64>], actual: &[usize]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    probabilities
        .iter()
        .zip(actual)
        .map(|(p, a)| p.iter().enumerate().map(|(k, v)| (v - if k == *a { 1.0 } else { 0.0 }).powi(2)).sum::<f64>())
        .sum::<f64>()
        / n
}

/// Calibration in `bins` equal-width bins of the predicted probability: (lower bound, rows, mean
/// predicted, share observed); empty bins left out.
pub fn calibration(predicted: &[f64], observed: &[bool], bins: usize) -> Vec<(f64, usize, f64, f64)> {
    let mut acc = vec![(0usize, 0.0, 0.0); bins];
    for (p, o) in predicted.iter().zip(observed) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        acc[b].0 += 1;
        acc[b].1 += p;
        acc[b].2 += if *o { 1.0 } else { 0.0 };
    }
    acc.iter()
        .enumerate()
        .filter(|(_, a)| a.0 > 0)
        .map(|(b, a)| (b as f64 / bins as f64, a.0, a.1 / a.0 as f64, a.2 / a.0 as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tiny deterministic generator (xorshift), so the tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn a_model_learns_known_probabilities_and_is_calibrated() {
        // Two features; the true probability of "late" is a logistic of 1.5 x0 - 1 x1.
        let mut r = Rng(0x9E3779B97F4A7C15);
        let (mut x, mut y, mut truth) = (vec![], vec![], vec![]);
        for _ in 0..4000 {
            let a = r.next() * 4.0 - 2.0;
            let b = r.next() * 4.0 - 2.0;
            let p = 1.0 / (1.0 + (-(1.5 * a - b)).exp());
            x.push(vec![a, b]);
            y.push(usize::from(r.next() < p));
            truth.push(p);
        }
        let m = train(&x[..3000], &y[..3000], 2).unwrap();
        let scores: Vec<f64> = x[3000..].iter().map(|v| m.predict(v)[1]).collect();
        let yes: Vec<bool> = y[3000..].iter().map(|c| *c == 1).collect();
        let best = auc(&truth[3000..], &yes).unwrap();
        let got = auc(&scores, &yes).unwrap();
        assert!(got >= 0.95 * best, "AUC {got} against the best possible {best}");
        for (_, n, mean_p, seen) in calibration(&scores, &yes, 5) {
            if n >= 100 {
                assert!((mean_p - seen).abs() < 0.1, "bin of {n}: predicted {mean_p}, observed {seen}");
            }
        }
        // The factor with the larger true weight comes first.
        assert_eq!(m.contributions(&[2.0, 0.0], 1)[0].0, 0);
    }

    #[test]
    fn training_refuses_too_little_data_and_empty_classes() {
        let x = vec![vec![1.0]; 99];
        assert_eq!(train(&x, &[0; 99], 2), Err(TrainError::TooFew { have: 99, need: 100 }));
        let x = vec![vec![1.0]; 100];
        assert_eq!(train(&x, &[0; 100], 2), Err(TrainError::EmptyClass(1)));
    }

    #[test]
    fn measures() {
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auc(&[0.5], &[true]), None);
        assert!((f1_macro(&[0, 1, 1, 2], &[0, 1, 2, 2], 3) - (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert!((brier(&[vec![1.0, 0.0], vec![0.5, 0.5]], &[0, 0]) - 0.25).abs() < 1e-12);
        assert_eq!(class_of(0, 0, 30, false), 0);
        assert_eq!(class_of(31, 0, 30, false), 2);
        assert_eq!(class_of(31, 0, 30, true), 1);
    }

    fn inv(doc: i32, due: i32, amount: f64, settled: Option<(i32, i32)>, applied: Vec<(i32, f64)>) -> Invoice {
        Invoice { doc_day: doc, due_day: due, amount, month: 1, settled, applied }
    }

    #[test]
    fn history_as_of_the_document_date() {
        let ledger = vec![
            inv(0, 30, 100.0, Some((40, 10)), vec![(40, 100.0)]),
            inv(10, 40, 200.0, None, vec![(45, 50.0)]),
            inv(50, 80, 300.0, None, vec![]),
        ];
        let f = features(&ledger, &Events { disputes: vec![5, 60], ..Events::default() });
        // The third invoice sees the first settled 10 days late, the second open (150 of it) and overdue.
        // Of the two due before day 50, one was paid: (1 + 1) / (2 + 2).
        assert_eq!((f[2].recent_due_paid_share, f[2].share_late, f[2].average_days_late), (0.5, 2.0 / 3.0, 10.0));
        let far = features(
            &[inv(0, 30, 100.0, Some((40, 10)), vec![(40, 100.0)]), inv(400, 430, 1.0, None, vec![])],
            &Events::default(),
        );
        assert_eq!(
            (far[1].recent_due_paid_share, far[1].share_late),
            (0.5, 2.0 / 3.0),
            "the recent share is of 180 days, late of all"
        );
        assert!((f[2].ln_outstanding - 150f64.ln_1p()).abs() < 1e-12 && f[2].ln_overdue > 0.0);
        assert_eq!(f[2].disputes_before, 1.0);
        // The first sees nothing.
        assert_eq!((f[0].recent_due_paid_share, f[0].ln_outstanding), (0.5, 0.0));
    }

    proptest! {
        /// No feature of an invoice changes when documents dated after it are posted.
        #[test]
        fn later_documents_change_no_features(n in 1usize..8, extra in 1usize..5, seed in 1u64..u64::MAX) {
            let mut r = Rng(seed);
            let mut day = 0;
            let mut ledger = Vec::new();
            for _ in 0..n + extra {
                day += 1 + (r.next() * 20.0) as i32;
                let amount = 100.0 + (r.next() * 900.0).round();
                let paid = day + (r.next() * 60.0) as i32;
                ledger.push(inv(day, day + 30, amount, Some((paid, paid - day - 30)), vec![(paid, amount)]));
            }
            let events = Events { disputes: vec![15, 80], broken_promises: vec![40], dunning: vec![(50, 2), (120, 3)] };
            let before = features(&ledger[..n], &events);
            let after = features(&ledger, &events);
            prop_assert_eq!(&before[..], &after[..n]);
        }
    }
}
