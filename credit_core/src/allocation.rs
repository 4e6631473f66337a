//! Applying money (payments, credit notes, unapplied credit) to open invoices.
//!
//! The rule, as Chinese 账龄 practice states it (按照先发生先收回): the oldest due first, ties by
//! document date and then by posting order. Callers pass the items already in that order; this
//! module only decides how much goes where, so it can be tested without a database.
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItem {
    pub id: i64,
    pub open: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub id: i64,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allocations: Vec<Allocation>,
    /// What could not be applied (stays as unapplied credit).
    pub remainder: Decimal,
}

/// Applies `amount` to `items` in the given order, each item up to its open amount.
pub fn allocate(amount: Decimal, items: &[OpenItem]) -> Outcome {
    let mut left = amount.max(Decimal::ZERO);
    let mut allocations = Vec::new();
    for item in items {
        if left.is_zero() {
            break;
        }
        if item.open <= Decimal::ZERO {
            continue;
        }
        let take = left.min(item.open);
        allocations.push(Allocation { id: item.id, amount: take });
        left -= take;
    }
    Outcome { allocations, remainder: left }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn oldest_first_then_remainder() {
        let items = vec![
            OpenItem { id: 1, open: d("100") },
            OpenItem { id: 2, open: d("50.50") },
            OpenItem { id: 3, open: d("10") },
        ];
        let out = allocate(d("120"), &items);
        assert_eq!(
            out.allocations,
            vec![Allocation { id: 1, amount: d("100") }, Allocation { id: 2, amount: d("20") }]
        );
        assert_eq!(out.remainder, Decimal::ZERO);

        let out = allocate(d("200"), &items);
        assert_eq!(out.allocations.len(), 3);
        assert_eq!(out.remainder, d("39.50"));
    }

    #[test]
    fn nothing_open_keeps_everything() {
        let out = allocate(d("5"), &[]);
        assert!(out.allocations.is_empty());
        assert_eq!(out.remainder, d("5"));
    }

    proptest! {
        // Money is conserved, no item gets more than it has open, and an item is only touched
        // once every older item is settled in full.
        #[test]
        fn conserves_and_respects_order(amount in 0i64..10_000_000, opens in proptest::collection::vec(0i64..1_000_000, 0..20)) {
            let items: Vec<OpenItem> = opens.iter().enumerate()
                .map(|(i, o)| OpenItem { id: i as i64, open: Decimal::new(*o, 2) }).collect();
            let amount = Decimal::new(amount, 2);
            let out = allocate(amount, &items);
            let applied: Decimal = out.allocations.iter().map(|a| a.amount).sum();
            prop_assert_eq!(applied + out.remainder, amount);
            prop_assert!(out.remainder >= Decimal::ZERO);
            for a in &out.allocations {
                let item = &items[a.id as usize];
                prop_assert!(a.amount > Decimal::ZERO && a.amount <= item.open);
            }
            // every allocation but the last settles its item fully
            for a in out.allocations.iter().rev().skip(1) {
                prop_assert_eq!(a.amount, items[a.id as usize].open);
            }
            // a remainder means every item was settled fully
            if out.remainder > Decimal::ZERO {
                let total_open: Decimal = items.iter().map(|i| i.open).sum();
                prop_assert_eq!(applied, total_open);
            }
        }
    }
}
