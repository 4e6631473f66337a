//! Business errors reach the client with a proper SQLSTATE, DETAIL and HINT. Nothing in pg_credit
//! reports XX000 on purpose: `raise` is the only way out for an expected failure.
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

pub use pgrx::PgSqlErrorCode as Code;

/// Raises an ERROR and never returns. The transaction (or subtransaction) is aborted, so whatever
/// the failing call had written is rolled back.
#[track_caller]
pub fn raise(code: Code, message: impl Into<String>, detail: Option<String>, hint: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "pg_credit");
    if let Some(d) = detail {
        report = report.set_detail(d);
    }
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

#[track_caller]
pub fn invalid(message: impl Into<String>) -> ! {
    raise(Code::ERRCODE_INVALID_PARAMETER_VALUE, message, None, None)
}

#[track_caller]
pub fn null_arg(arg: &str) -> ! {
    raise(Code::ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("{arg} must not be NULL"), None, None)
}

#[track_caller]
pub fn unknown_customer(customer: &str) -> ! {
    raise(
        Code::ERRCODE_FOREIGN_KEY_VIOLATION,
        format!("customer \"{customer}\" has no credit account"),
        None,
        Some("Create the account first: INSERT INTO credit.account (customer, credit_limit) VALUES (...)."),
    )
}

/// An SPI failure is a bug or an environment problem, not a business outcome; report it as an
/// internal error with the SPI text rather than panicking.
#[track_caller]
pub fn spi(e: pgrx::spi::SpiError) -> ! {
    raise(Code::ERRCODE_INTERNAL_ERROR, format!("pg_credit: SPI failure: {e}"), None, None)
}

/// A value of pg_credit's own tables that does not convert to its Rust type: the table was
/// altered behind the extension's back.
#[track_caller]
pub fn conversion(e: impl std::fmt::Display) -> ! {
    raise(
        Code::ERRCODE_DATA_CORRUPTED,
        format!("pg_credit: a value of its own tables has an unexpected type: {e}"),
        None,
        Some("credit.account or another pg_credit table was altered; reinstall the extension's objects."),
    )
}

/// A value pg_credit's own tables guarantee (a NOT NULL column, a row a statement must return) is
/// missing: the table was altered behind the extension's back. Reported, never a panic.
#[track_caller]
pub fn missing(what: &str) -> ! {
    raise(
        Code::ERRCODE_DATA_CORRUPTED,
        format!("pg_credit: {what} is missing"),
        None,
        Some("credit.account or another pg_credit table was altered; reinstall the extension's objects."),
    )
}

/// `Option` → value, or the `missing` error naming what was expected.
pub trait Required<T> {
    fn required(self, what: &str) -> T;
}

impl<T> Required<T> for Option<T> {
    #[track_caller]
    fn required(self, what: &str) -> T {
        match self {
            Some(v) => v,
            None => missing(what),
        }
    }
}

pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, pgrx::spi::SpiError> {
    #[track_caller]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => spi(e),
        }
    }
}
