//! Argument checks shared by every SQL-callable function: NULL, empty, non-finite and out-of-range
//! inputs are refused before anything is written.
use crate::pg::error::{self, Code};
use credit_core::money::{self, AmountError};
use pgrx::datum::Date;
use pgrx::{pg_sys, AnyNumeric};
use rust_decimal::Decimal;

pub fn text<'a>(value: Option<&'a str>, arg: &str) -> &'a str {
    match value {
        None => error::null_arg(arg),
        Some(v) if v.trim().is_empty() => error::invalid(format!("{arg} must not be empty")),
        Some(v) => v,
    }
}

/// An optional text argument: NULL is fine, empty is not.
pub fn optional_text<'a>(value: Option<&'a str>, arg: &str) -> Option<&'a str> {
    value.map(|v| text(Some(v), arg))
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

/// CURRENT_DATE: the transaction's start, in the session's time zone.
pub fn today() -> Date {
    // SAFETY: GetSQLCurrentDate reads the transaction start time; every caller runs in a transaction.
    Date::saturating_from_raw(unsafe { pg_sys::GetSQLCurrentDate() })
}

/// A finite date not after today: a business event that has happened, or a run for a day that has
/// come.
pub fn not_future(value: Option<Date>, arg: &str) -> Date {
    let d = date(value, arg);
    if d > today() {
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
