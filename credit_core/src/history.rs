//! A customer's receivables day by day, rebuilt from its ledger (credit.backfill_history): what was
//! open, unapplied, overdue and in each aging bucket on every day of a range — kept as changes
//! only (a day's figures are stored when they differ from the day before), so a quiet customer
//! costs one row a year, not 365.
//!
//! Conventions are the aging's (credit.aging, basis 'due'): an invoice counts from its date, an
//! application from its date; days past due = day - due date; an invoice is overdue from the day
//! after its due date; unapplied credit is not in the buckets.
use crate::aging;
use rust_decimal::Decimal;

/// An invoice: amount, its date, its due date, and every application to it (day, amount;
/// negative for a reversal), any order. Days are day numbers (any epoch).
#[derive(Debug, Clone)]
pub struct Invoice {
    pub amount: Decimal,
    pub doc_day: i32,
    pub due_day: i32,
    pub applied: Vec<(i32, Decimal)>,
}

/// A settlement that can leave credit unapplied (a payment, a credit note): amount, its date, and
/// what was applied from it (day, amount), any order. A reversal on day d: amount `reversed`.
#[derive(Debug, Clone)]
pub struct Credit {
    pub amount: Decimal,
    pub doc_day: i32,
    pub applied: Vec<(i32, Decimal)>,
    pub reversed_day: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Figures {
    pub open_ar: Decimal,
    pub unapplied: Decimal,
    pub overdue: Decimal,
    /// Open invoice amounts by bucket (rank 1 first).
    pub buckets: Vec<Decimal>,
    /// Due day of the oldest overdue invoice (None: nothing overdue); its days past due grow
    /// every day, this does not.
    pub oldest_overdue_due: Option<i32>,
}

/// The figures on one day.
pub fn on_day(invoices: &[Invoice], credits: &[Credit], lowers: &[i32], day: i32) -> Figures {
    let mut f = Figures { buckets: vec![Decimal::ZERO; lowers.len() + 1], ..Figures::default() };
    for i in invoices.iter().filter(|i| i.doc_day <= day) {
        let open = i.amount - i.applied.iter().filter(|(d, _)| *d <= day).map(|(_, a)| *a).sum::<Decimal>();
        if open == Decimal::ZERO {
            continue;
        }
        f.open_ar += open;
        let past = day - i.due_day;
        f.buckets[aging::rank(lowers, past) - 1] += open;
        if past > 0 {
            f.overdue += open;
            f.oldest_overdue_due = Some(f.oldest_overdue_due.map_or(i.due_day, |o| o.min(i.due_day)));
        }
    }
    for c in credits.iter().filter(|c| c.doc_day <= day && c.reversed_day.is_none_or(|r| r > day)) {
        f.unapplied += c.amount - c.applied.iter().filter(|(d, _)| *d <= day).map(|(_, a)| *a).sum::<Decimal>();
    }
    f
}

/// The days in `from..=to` on which the figures may change: the first, and every document date,
/// application, reversal, day after a due date and day an invoice enters another bucket.
fn change_days(invoices: &[Invoice], credits: &[Credit], lowers: &[i32], from: i32, to: i32) -> Vec<i32> {
    let mut days = vec![from];
    for i in invoices {
        days.push(i.doc_day);
        days.extend(i.applied.iter().map(|(d, _)| *d));
        days.push(i.due_day + 1);
        days.extend(lowers.iter().map(|lo| i.due_day + lo));
    }
    for c in credits {
        days.push(c.doc_day);
        days.extend(c.applied.iter().map(|(d, _)| *d));
        days.extend(c.reversed_day);
    }
    days.retain(|d| *d >= from && *d <= to);
    days.sort_unstable();
    days.dedup();
    days
}

/// The figures over `from..=to`, as changes: (first day, figures) whenever they differ from the
/// day before; the first entry is `from`'s.
pub fn sweep(invoices: &[Invoice], credits: &[Credit], lowers: &[i32], from: i32, to: i32) -> Vec<(i32, Figures)> {
    let mut out: Vec<(i32, Figures)> = Vec::new();
    for day in change_days(invoices, credits, lowers, from, to) {
        let f = on_day(invoices, credits, lowers, day);
        if out.last().is_none_or(|(_, last)| *last != f) {
            out.push((day, f));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEFAULT_LOWERS: [i32; 4] = [1, 31, 61, 91];

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn an_invoice_ages_and_is_paid() {
        let inv = Invoice { amount: d("100"), doc_day: 0, due_day: 30, applied: vec![(75, d("40"))] };
        let s = sweep(&[inv], &[], &DEFAULT_LOWERS, -5, 200);
        let days: Vec<i32> = s.iter().map(|(day, _)| *day).collect();
        // nothing, invoiced, overdue (1-30), 31-60, part paid, 61-90, over 90
        assert_eq!(days, vec![-5, 0, 31, 61, 75, 91, 121]);
        assert_eq!(s[0].1.open_ar, Decimal::ZERO);
        assert_eq!(s[2].1.overdue, d("100"));
        assert_eq!(s[4].1.buckets, vec![d("0"), d("0"), d("60"), d("0"), d("0")]);
        assert_eq!(s.last().unwrap().1.oldest_overdue_due, Some(30));
    }

    #[test]
    fn unapplied_credit_until_used_or_reversed() {
        let c = Credit { amount: d("50"), doc_day: 10, applied: vec![(20, d("30"))], reversed_day: Some(40) };
        let s = sweep(&[], &[c], &DEFAULT_LOWERS, 0, 60);
        let unapplied: Vec<(i32, Decimal)> = s.iter().map(|(day, f)| (*day, f.unapplied)).collect();
        assert_eq!(unapplied, vec![(0, d("0")), (10, d("50")), (20, d("20")), (40, d("0"))]);
    }

    proptest! {
        // The changes replay every day: the figures of any day are those of the last change on or
        // before it.
        #[test]
        fn changes_replay_every_day(docs in proptest::collection::vec((0i32..100, 0i32..60, 1i64..100_000, proptest::collection::vec((0i32..200, 1i64..50_000), 0..3)), 0..6),
                                    credits in proptest::collection::vec((0i32..150, 1i64..80_000, proptest::collection::vec((0i32..200, 1i64..30_000), 0..2), proptest::option::of(0i32..200)), 0..3)) {
            let invoices: Vec<Invoice> = docs.iter().map(|(day, terms, cents, apps)| Invoice {
                amount: Decimal::new(*cents, 2), doc_day: *day, due_day: day + terms,
                applied: apps.iter().map(|(ad, a)| ((*ad).max(*day), Decimal::new(*a, 2))).collect(),
            }).collect();
            let credits: Vec<Credit> = credits.iter().map(|(day, cents, apps, rev)| Credit {
                amount: Decimal::new(*cents, 2), doc_day: *day,
                applied: apps.iter().map(|(ad, a)| ((*ad).max(*day), Decimal::new(*a, 2))).collect(),
                reversed_day: rev.map(|r| r.max(*day)),
            }).collect();
            let changes = sweep(&invoices, &credits, &DEFAULT_LOWERS, 0, 250);
            for day in 0..=250 {
                let last = changes.iter().rev().find(|(d, _)| *d <= day).map(|(_, f)| f.clone()).unwrap();
                prop_assert_eq!(last, on_day(&invoices, &credits, &DEFAULT_LOWERS, day));
            }
        }
    }
}
