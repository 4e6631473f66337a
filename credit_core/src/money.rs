//! Money amounts. Money is `rust_decimal::Decimal` in the core and `numeric` in the database;
//! it never passes through a float.
use rust_decimal::Decimal;
use std::str::FromStr;

/// Largest amount any single document, payment or limit may carry (one quadrillion). Sums of many
/// documents may exceed it; single inputs above it are almost always a unit or typing mistake.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0x_a4c6_8000, 0x_38d7e, 0, false, 0); // 10^15

/// Most fractional digits an amount may carry (trailing zeros do not count). With at most 16
/// integer digits that is 24 significant digits, so sums of many amounts stay exact in a
/// `Decimal` (28 digits) and the guard's SQL check and the core's decision compare the same
/// numbers. More digits than this are refused (22023), never rounded.
pub const MAX_FRACTION_DIGITS: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    /// NaN, Infinity or -Infinity.
    NotFinite,
    /// Above `MAX_AMOUNT`, or more digits than a Decimal holds.
    OutOfRange,
    Negative,
    Zero,
    /// More than `MAX_FRACTION_DIGITS` significant fractional digits.
    TooManyFractionDigits,
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
            AmountError::TooManyFractionDigits => {
                format!("{what} has more than {MAX_FRACTION_DIGITS} fractional digits")
            }
        }
    }
}

/// Significant fractional digits of a numeric's text form ("1.2500" has 2).
pub fn fraction_digits(text: &str) -> u32 {
    match text.split_once('.') {
        None => 0,
        Some((_, frac)) => frac.trim_end_matches(|c: char| c == '0' || !c.is_ascii_digit()).len() as u32,
    }
}

/// Checks an amount already decoded: within range and precision.
pub fn check(d: Decimal) -> Result<Decimal, AmountError> {
    if d.abs() > MAX_AMOUNT {
        return Err(AmountError::OutOfRange);
    }
    if d.normalize().scale() > MAX_FRACTION_DIGITS {
        return Err(AmountError::TooManyFractionDigits);
    }
    Ok(d)
}

/// Parses the text form PostgreSQL gives a `numeric` (`numeric_out`).
pub fn parse(text: &str) -> Result<Decimal, AmountError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("nan") || t.ends_with("Infinity") || t.ends_with("infinity") {
        return Err(AmountError::NotFinite);
    }
    // Counted on the text: a Decimal would round digits beyond its 28.
    if fraction_digits(t) > MAX_FRACTION_DIGITS {
        let integer_digits = t.split('.').next().unwrap_or("").trim_start_matches(['-', '+', '0']).len();
        if integer_digits <= 16 {
            return Err(AmountError::TooManyFractionDigits);
        }
    }
    let d = Decimal::from_str(t).map_err(|_| AmountError::OutOfRange)?;
    check(d)
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

    #[test]
    fn fraction_digits_are_limited_not_rounded() {
        assert_eq!(fraction_digits("1.2500"), 2);
        assert_eq!(fraction_digits("12"), 0);
        assert_eq!(parse("0.00000001"), Ok(Decimal::from_str("0.00000001").unwrap()));
        assert_eq!(parse("1.123456780000"), Ok(Decimal::from_str("1.12345678").unwrap()));
        assert_eq!(parse("0.000000001"), Err(AmountError::TooManyFractionDigits));
        // 9e-34: a Decimal would round it to 0; it is refused instead
        assert_eq!(parse("0.0000000000000000000000000000000009"), Err(AmountError::TooManyFractionDigits));
        assert_eq!(positive("1000.000000000000000000000000000000009"), Err(AmountError::TooManyFractionDigits));
        assert_eq!(check(Decimal::from_str("0.000000001").unwrap()), Err(AmountError::TooManyFractionDigits));
    }

    proptest! {
        /// Amounts within the limits parse exactly, and their sums stay exact.
        #[test]
        fn limited_amounts_add_exactly(a in 0i64..=999_999_999_999_999i64, b in 0i64..=99_999_999i64, n in 1u32..5000) {
            let x = Decimal::new(a, 0) + Decimal::new(b, MAX_FRACTION_DIGITS);
            prop_assert_eq!(parse(&x.to_string()), Ok(x));
            let sum: Decimal = (0..n).map(|_| x).sum();
            prop_assert_eq!(sum, x * Decimal::from(n));
        }

        #[test]
        fn text_round_trip(units in -999_999_999_999_999i64..999_999_999_999_999i64, scale in 0u32..6) {
            let d = Decimal::new(units, scale);
            prop_assert_eq!(parse(&d.to_string()), Ok(d));
        }
    }
}
