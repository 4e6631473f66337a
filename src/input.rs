//! Argument checks shared by every SQL-callable function: NULL, empty, non-finite and out-of-range
//! inputs are refused before anything is written.
use crate::core::money::{self, AmountError};
use crate::error::{self, Code};
use pgrx::datum::Date;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

pub fn text<'a>(value: Option<&'a str>, arg: &str) -> &'a str {
    match value {
        None => error::null_arg(arg),
        Some(v) if v.trim().is_empty() => error::invalid(format!("{arg} must not be empty")),
        Some(v) => v,
    }
}

fn amount_error(e: AmountError, arg: &str) -> ! {
    let code = match e {
        AmountError::OutOfRange => Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        _ => Code::ERRCODE_INVALID_PARAMETER_VALUE,
    };
    error::raise(code, e.describe(arg), None, None)
}

pub fn positive_amount(value: Option<&AnyNumeric>, arg: &str) -> Decimal {
    let Some(v) = value else { error::null_arg(arg) };
    money::positive(&v.to_string()).unwrap_or_else(|e| amount_error(e, arg))
}

pub fn non_negative_amount(value: Option<&AnyNumeric>, arg: &str) -> Decimal {
    let Some(v) = value else { error::null_arg(arg) };
    money::non_negative(&v.to_string()).unwrap_or_else(|e| amount_error(e, arg))
}

pub fn date(value: Option<Date>, arg: &str) -> Date {
    match value {
        None => error::null_arg(arg),
        Some(d) if !d.is_finite() => error::invalid(format!("{arg} must be a finite date")),
        Some(d) => d,
    }
}

/// A finite date not after today: a business event that has happened, or a run for a day that has
/// come.
pub fn not_future(value: Option<Date>, arg: &str) -> Date {
    use crate::error::OrRaise;
    let d = date(value, arg);
    let today = pgrx::Spi::get_one::<Date>("SELECT CURRENT_DATE").or_raise().expect("current_date");
    if d > today {
        error::invalid(format!("{arg} {d} is in the future"))
    }
    d
}

pub fn optional_date(value: Option<Date>, arg: &str) -> Option<Date> {
    match value {
        Some(d) if !d.is_finite() => error::invalid(format!("{arg} must be a finite date")),
        v => v,
    }
}

/// Decimal → numeric for SPI arguments.
pub fn numeric(d: Decimal) -> AnyNumeric {
    AnyNumeric::try_from(d.to_string().as_str()).expect("a Decimal's text is valid numeric input")
}

/// numeric → Decimal for values read back from the database (sums may exceed MAX_AMOUNT).
pub fn decimal(n: &AnyNumeric) -> Decimal {
    use std::str::FromStr;
    Decimal::from_str(&n.to_string()).unwrap_or_else(|_| {
        error::raise(
            Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("amount {n} is outside the range pg_credit computes with"),
            None,
            None,
        )
    })
}
