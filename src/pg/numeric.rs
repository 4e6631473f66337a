//! Money between PostgreSQL and the core: `numeric` ↔ `Decimal`. The one place amounts change
//! representation; they never pass through a float.
use crate::pg::error::{self, Code};
use credit_core::numeric::{decode, Decoded};
use pgrx::pg_sys;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;
use std::str::FromStr;

/// Decimal → numeric (SPI arguments, results).
pub fn numeric(d: Decimal) -> AnyNumeric {
    AnyNumeric::try_from(d.to_string().as_str()).unwrap_or_else(|e| {
        error::raise(
            Code::ERRCODE_INTERNAL_ERROR,
            format!("pg_credit: {d} did not convert to numeric: {e}"),
            None,
            None,
        )
    })
}

/// numeric → Decimal for values read back from the database (sums may exceed MAX_AMOUNT, but not
/// a Decimal's 28 digits).
pub fn decimal(n: &AnyNumeric) -> Decimal {
    Decimal::from_str(&n.to_string()).unwrap_or_else(|_| {
        error::raise(
            Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("amount {n} is outside the range pg_credit computes with"),
            None,
            None,
        )
    })
}

/// A nullable numeric column: NULL stays None (callers that mean "nothing" say `unwrap_or_default`).
pub fn decimal_opt(n: Option<AnyNumeric>) -> Option<Decimal> {
    n.map(|v| decimal(&v))
}

/// Decodes a numeric Datum (possibly toasted or with a short varlena header) straight from its
/// binary form: the per-row path (aggregate transitions, the guard's precision check).
///
/// # Safety
/// `datum` must be a non-null numeric Datum.
pub unsafe fn decode_datum(datum: pg_sys::Datum) -> Decoded {
    let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: the caller passes a numeric Datum; detoasting returns `raw` or a palloc'd copy.
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(raw);
        let len = pgrx::varlena::varsize_any_exhdr(v);
        let data = pgrx::varlena::vardata_any(v) as *const u8;
        let out = decode(std::slice::from_raw_parts(data, len));
        if v != raw {
            pg_sys::pfree(v.cast());
        }
        out
    }
}
