//! Money amounts. Money is `rust_decimal::Decimal` in the core and `numeric` in the database;
//! it never passes through a float.
use rust_decimal::Decimal;
use std::str::FromStr;

/// Largest amount any single document, payment or limit may carry (one quadrillion). Sums of many
/// documents may exceed it; single inputs above it are almost always a unit or typing mistake.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0x_a4c6_8000, 0x_38d7e, 0, false, 0); // 10^15

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    /// NaN, Infinity or -Infinity.
    NotFinite,
    /// Above `MAX_AMOUNT`, or more digits than a Decimal holds.
    OutOfRange,
    Negative,
    Zero,
}

impl AmountError {
    pub fn describe(&self, what: &str) -> String {
        match self {
            AmountError::NotFinite => format!("{what} must be a finite number"),
            AmountError::OutOfRange => {
                format!("{what} is out of range (at most {MAX_AMOUNT}, at most 28 significant digits)")
            }
            AmountError::Negative => format!("{what} must not be negative"),
            AmountError::Zero => format!("{what} must be greater than zero"),
        }
    }
}

/// Parses the text form PostgreSQL gives a `numeric` (`numeric_out`).
pub fn parse(text: &str) -> Result<Decimal, AmountError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("nan") || t.ends_with("Infinity") || t.ends_with("infinity") {
        return Err(AmountError::NotFinite);
    }
    let d = Decimal::from_str(t).map_err(|_| AmountError::OutOfRange)?;
    if d.abs() > MAX_AMOUNT {
        return Err(AmountError::OutOfRange);
    }
    Ok(d)
}

/// An amount that must be strictly positive: invoices, payments, credit notes, write-offs.
pub fn positive(text: &str) -> Result<Decimal, AmountError> {
    let d = parse(text)?;
    if d.is_sign_negative() && !d.is_zero() {
        Err(AmountError::Negative)
    } else if d.is_zero() {
        Err(AmountError::Zero)
    } else {
        Ok(d)
    }
}

/// An amount that may be zero but not negative: limits, order amounts in `credit.check`.
pub fn non_negative(text: &str) -> Result<Decimal, AmountError> {
    let d = parse(text)?;
    if d.is_sign_negative() && !d.is_zero() {
        Err(AmountError::Negative)
    } else {
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn max_amount_is_ten_to_the_fifteen() {
        assert_eq!(MAX_AMOUNT, Decimal::from_str("1000000000000000").unwrap());
    }

    #[test]
    fn rejects_non_finite_and_out_of_range() {
        assert_eq!(parse("NaN"), Err(AmountError::NotFinite));
        assert_eq!(parse("Infinity"), Err(AmountError::NotFinite));
        assert_eq!(parse("-Infinity"), Err(AmountError::NotFinite));
        assert_eq!(parse("1000000000000000000000000000000"), Err(AmountError::OutOfRange));
        assert_eq!(parse("1000000000000000.01"), Err(AmountError::OutOfRange));
        assert_eq!(parse("1000000000000000"), Ok(MAX_AMOUNT));
    }

    #[test]
    fn sign_rules() {
        assert_eq!(positive("0"), Err(AmountError::Zero));
        assert_eq!(positive("0.00"), Err(AmountError::Zero));
        assert_eq!(positive("-0.01"), Err(AmountError::Negative));
        assert_eq!(positive("12.50"), Ok(Decimal::from_str("12.50").unwrap()));
        assert_eq!(non_negative("0"), Ok(Decimal::ZERO));
        assert_eq!(non_negative("-1"), Err(AmountError::Negative));
    }

    proptest! {
        #[test]
        fn text_round_trip(units in -999_999_999_999_999i64..999_999_999_999_999i64, scale in 0u32..6) {
            let d = Decimal::new(units, scale);
            prop_assert_eq!(parse(&d.to_string()), Ok(d));
        }
    }
}
