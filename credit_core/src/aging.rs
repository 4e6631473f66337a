//! Aging buckets (账龄区间). A bucket table is valid when its buckets, in order, tile the whole day
//! axis: the first starts at -infinity (no lower bound), each next one starts the day after the
//! previous one ends (upper bounds inclusive), and the last has no upper bound. Then every day
//! falls in exactly one bucket.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub label: String,
    /// Inclusive; None = no lower bound.
    pub lower: Option<i32>,
    /// Inclusive; None = no upper bound.
    pub upper: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketError {
    Empty,
    FirstHasLowerBound(String),
    LastHasUpperBound(String),
    Inverted(String),
    Gap { after: String, next: String },
    Overlap { after: String, next: String },
    OpenInside(String),
}

impl BucketError {
    pub fn describe(&self) -> String {
        match self {
            BucketError::Empty => "there must be at least one aging bucket".into(),
            BucketError::FirstHasLowerBound(l) => {
                format!("the first bucket \"{l}\" must have no lower bound (it takes every day before the next bucket)")
            }
            BucketError::LastHasUpperBound(l) => {
                format!(
                    "the last bucket \"{l}\" must have no upper bound (it takes every day after the previous bucket)"
                )
            }
            BucketError::Inverted(l) => format!("bucket \"{l}\" has its upper bound below its lower bound"),
            BucketError::Gap { after, next } => {
                format!("days between buckets \"{after}\" and \"{next}\" fall in no bucket")
            }
            BucketError::Overlap { after, next } => format!("buckets \"{after}\" and \"{next}\" overlap"),
            BucketError::OpenInside(l) => {
                format!("only the first bucket may lack a lower bound and only the last an upper bound (\"{l}\")")
            }
        }
    }
}

/// Checks that `buckets` (in their display order) tile the day axis.
pub fn validate(buckets: &[Bucket]) -> Result<(), BucketError> {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Err(BucketError::Empty);
    };
    if first.lower.is_some() {
        return Err(BucketError::FirstHasLowerBound(first.label.clone()));
    }
    if last.upper.is_some() {
        return Err(BucketError::LastHasUpperBound(last.label.clone()));
    }
    for b in buckets {
        if let (Some(lo), Some(hi)) = (b.lower, b.upper) {
            if hi < lo {
                return Err(BucketError::Inverted(b.label.clone()));
            }
        }
    }
    for pair in buckets.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (Some(hi), Some(lo)) = (a.upper, b.lower) else {
            return Err(BucketError::OpenInside(if a.upper.is_none() { a.label.clone() } else { b.label.clone() }));
        };
        match (lo as i64).cmp(&(hi as i64 + 1)) {
            std::cmp::Ordering::Greater => {
                return Err(BucketError::Gap { after: a.label.clone(), next: b.label.clone() })
            }
            std::cmp::Ordering::Less => {
                return Err(BucketError::Overlap { after: a.label.clone(), next: b.label.clone() })
            }
            std::cmp::Ordering::Equal => {}
        }
    }
    Ok(())
}

/// Index of the bucket `days` falls in, for a valid bucket table: the plain definition `rank` is
/// tested against.
#[cfg(test)]
fn assign(buckets: &[Bucket], days: i32) -> usize {
    buckets.iter().position(|b| b.upper.is_none_or(|hi| days <= hi)).unwrap_or(buckets.len().saturating_sub(1))
}

/// The per-row form of `assign` used by `credit._bucket_rank`: for a valid table, `lowers` holds
/// the lower bounds of every bucket after the first, in order; returns the 1-based rank.
pub fn rank(lowers: &[i32], days: i32) -> usize {
    1 + lowers.partition_point(|&lo| lo <= days)
}

/// `rank`'s input for a bucket table (the SQL side reads it from credit.aging_bucket).
#[cfg(test)]
fn lower_bounds(buckets: &[Bucket]) -> Vec<i32> {
    buckets.iter().filter_map(|b| b.lower).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The shipped defaults (sql/aging.sql): not yet due, 1-30, 31-60, 61-90, over 90.
    fn defaults() -> Vec<Bucket> {
        let b = |label: &str, lower, upper| Bucket { label: label.into(), lower, upper };
        vec![
            b("not due", None, Some(0)),
            b("1-30", Some(1), Some(30)),
            b("31-60", Some(31), Some(60)),
            b("61-90", Some(61), Some(90)),
            b("over 90", Some(91), None),
        ]
    }

    #[test]
    fn defaults_are_valid_and_edges_land_right() {
        let d = defaults();
        assert_eq!(validate(&d), Ok(()));
        let at = |days| d[assign(&d, days)].label.clone();
        assert_eq!(at(-400), "not due");
        assert_eq!(at(0), "not due");
        assert_eq!(at(1), "1-30");
        assert_eq!(at(30), "1-30");
        assert_eq!(at(31), "31-60");
        assert_eq!(at(90), "61-90");
        assert_eq!(at(91), "over 90");
        assert_eq!(at(100_000), "over 90");
    }

    #[test]
    fn invalid_tables_are_named() {
        let b = |label: &str, lower, upper| Bucket { label: label.into(), lower, upper };
        assert_eq!(validate(&[]), Err(BucketError::Empty));
        assert!(matches!(validate(&[b("a", None, Some(0)), b("b", Some(2), None)]), Err(BucketError::Gap { .. })));
        assert!(matches!(validate(&[b("a", None, Some(5)), b("b", Some(3), None)]), Err(BucketError::Overlap { .. })));
        assert!(matches!(validate(&[b("a", Some(0), None)]), Err(BucketError::FirstHasLowerBound(_))));
        assert!(matches!(validate(&[b("a", None, Some(9))]), Err(BucketError::LastHasUpperBound(_))));
        assert!(matches!(
            validate(&[b("a", None, Some(0)), b("b", Some(1), Some(0)), b("c", Some(1), None)]),
            Err(BucketError::Inverted(_))
        ));
        assert_eq!(validate(&[b("all", None, None)]), Ok(()));
    }

    fn valid_table() -> impl Strategy<Value = Vec<Bucket>> {
        // widths of the inner buckets; the first and last are open-ended
        (-50i32..50, proptest::collection::vec(1i32..40, 0..8)).prop_map(|(start, widths)| {
            let mut out = Vec::new();
            let mut upper = start;
            out.push(Bucket { label: "b0".into(), lower: None, upper: Some(upper) });
            for (i, w) in widths.iter().enumerate() {
                out.push(Bucket { label: format!("b{}", i + 1), lower: Some(upper + 1), upper: Some(upper + w) });
                upper += w;
            }
            out.push(Bucket { label: "last".into(), lower: Some(upper + 1), upper: None });
            out
        })
    }

    proptest! {
        // For any valid table, every day is in exactly one bucket, and `assign` finds it.
        #[test]
        fn every_day_in_exactly_one_bucket(table in valid_table(), day in -500i32..500) {
            prop_assert_eq!(validate(&table), Ok(()));
            let containing: Vec<usize> = table.iter().enumerate()
                .filter(|(_, b)| b.lower.is_none_or(|lo| day >= lo) && b.upper.is_none_or(|hi| day <= hi))
                .map(|(i, _)| i).collect();
            prop_assert_eq!(containing.len(), 1);
            prop_assert_eq!(assign(&table, day), containing[0]);
            prop_assert_eq!(rank(&lower_bounds(&table), day), containing[0] + 1);
        }

        // Breaking the tiling anywhere is caught.
        #[test]
        fn any_gap_or_overlap_is_rejected(table in valid_table(), which in 0usize..10, shift in prop_oneof![Just(-1i32), Just(1i32)]) {
            prop_assume!(table.len() > 1);
            let mut t = table.clone();
            let i = 1 + which % (t.len() - 1);
            t[i].lower = t[i].lower.map(|l| l + shift);
            prop_assert!(validate(&t).is_err());
        }
    }
}
