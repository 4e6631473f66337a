//! Reading a row: what an old or a new version of an order row adds to its customer's open
//! orders. A new row is validated (a bad open order is refused); an old row only counts if it was
//! valid, the same rule credit.verify() uses (credit._open_orders_query, sql/guard.sql).
use crate::guard::config::{AmountKind, Column, Config};
use crate::pg::error::{self, Code};
use crate::pg::numeric::{decode_datum, numeric};
use credit_core::money::{self, MAX_AMOUNT, MAX_FRACTION_DIGITS};
use credit_core::numeric::Decoded;
use pgrx::pg_sys::{self, Oid, PgOid};
use pgrx::prelude::*;
use pgrx::{AnyNumeric, PgBuiltInOids};
use std::ffi::CStr;

thread_local! {
    static MAX_NUMERIC: AnyNumeric = numeric(MAX_AMOUNT);
}

/// One row version of a guarded table, as the trigger received it.
#[derive(Clone, Copy)]
pub struct Tuple {
    pub tuple: *mut pg_sys::HeapTupleData,
    pub tupdesc: pg_sys::TupleDesc,
}

impl Tuple {
    /// The value of a column (None: NULL).
    pub fn attr(&self, col: &Column) -> Option<pg_sys::Datum> {
        let mut isnull = false;
        // SAFETY: a tuple and descriptor of the firing relation, valid while the trigger runs.
        let d = unsafe { pg_sys::heap_getattr(self.tuple, col.attnum, self.tupdesc, &mut isnull) };
        (!isnull).then_some(d)
    }

    /// A column's value in its text form, the same as `value::text` in SQL (bpchar loses its padding).
    pub fn text(&self, col: &Column) -> Option<String> {
        // SAFETY: the datum is of the column's type.
        self.attr(col).map(|d| unsafe { as_text(d, col.typoid) })
    }

    /// Where the row is stored: (block, offset).
    pub fn tid(&self) -> (u32, u16) {
        // SAFETY: a stored tuple's header, valid while the trigger runs.
        let t = unsafe { &(*self.tuple).t_self };
        (((t.ip_blkid.bi_hi as u32) << 16) | t.ip_blkid.bi_lo as u32, t.ip_posid)
    }
}

/// # Safety
/// `datum` is a non-null value of type `typoid`.
unsafe fn as_text(datum: pg_sys::Datum, typoid: Oid) -> String {
    match PgOid::from(typoid) {
        PgOid::BuiltIn(PgBuiltInOids::TEXTOID) | PgOid::BuiltIn(PgBuiltInOids::VARCHAROID) => {
            // SAFETY: a text datum.
            unsafe { String::from_datum(datum, false) }.unwrap_or_default()
        }
        _ => {
            let mut typoutput = Oid::INVALID;
            let mut varlena = false;
            // SAFETY: the type's output function, called on a value of the type; the C string is
            // copied and freed.
            let s = unsafe {
                pg_sys::getTypeOutputInfo(typoid, &mut typoutput, &mut varlena);
                let cstr = pg_sys::OidOutputFunctionCall(typoutput, datum);
                let s = CStr::from_ptr(cstr).to_string_lossy().into_owned();
                pg_sys::pfree(cstr.cast());
                s
            };
            if typoid == pg_sys::BPCHAROID {
                s.trim_end_matches(' ').to_string()
            } else {
                s
            }
        }
    }
}

/// What a row adds to one customer's open orders.
pub struct Contribution {
    pub customer: String,
    pub amount: AnyNumeric,
}

fn amount_of(cfg: &Config, d: pg_sys::Datum) -> AnyNumeric {
    // SAFETY: a non-null datum of the amount column's type (checked by AmountKind).
    unsafe {
        match cfg.amount_kind {
            AmountKind::Numeric => AnyNumeric::from_datum(d, false),
            AmountKind::Int2 => i16::from_datum(d, false).map(AnyNumeric::from),
            AmountKind::Int4 => i32::from_datum(d, false).map(AnyNumeric::from),
            AmountKind::Int8 => i64::from_datum(d, false).map(AnyNumeric::from),
        }
    }
    .unwrap_or_else(|| AnyNumeric::from(0))
}

/// Whether the row is open: every row is, unless the guard has a status column.
pub fn is_open(cfg: &Config, row: Tuple) -> bool {
    match &cfg.status {
        None => true,
        Some(col) => row.text(col).is_some_and(|s| cfg.open_statuses.contains(&s)),
    }
}

/// What a row contributes: its amount when the row is open, else nothing. `is_new`: the row is
/// being written (validated: a bad open order is refused) rather than replaced or deleted.
pub fn contribution(cfg: &Config, row: Tuple, is_new: bool, table: &dyn Fn() -> String) -> Option<Contribution> {
    if !is_open(cfg, row) {
        return None;
    }
    let customer = match row.text(&cfg.customer) {
        Some(c) => c,
        None if is_new => error::raise(
            Code::ERRCODE_NOT_NULL_VIOLATION,
            format!("open order in {} has no customer", table()),
            None,
            Some("Every open order of a guarded table must name its customer."),
        ),
        None => return None,
    };
    let datum = match row.attr(&cfg.amount) {
        Some(d) => d,
        None if is_new => error::raise(
            Code::ERRCODE_NOT_NULL_VIOLATION,
            format!("open order of customer \"{customer}\" in {} has no amount", table()),
            None,
            None,
        ),
        None => return None,
    };
    let amount = amount_of(cfg, datum);
    // SAFETY: a non-null numeric datum.
    let decoded = (cfg.amount_kind == AmountKind::Numeric).then(|| unsafe { decode_datum(datum) });
    let not_valid_number = matches!(decoded, Some(Decoded::NotFinite))   // NaN, ±Infinity
        || matches!(amount.sign(), pgrx::datum::numeric::Sign::Negative);
    let valid = !not_valid_number && MAX_NUMERIC.with(|max| amount <= *max);
    if let (true, true, Some(decoded)) = (valid, is_new, &decoded) {
        // One precision for the SQL check and the core's decision: more fractional digits than
        // an amount may carry are refused, never rounded away.
        let precise = matches!(decoded, Decoded::Value(v) if money::check(*v).is_ok());
        if !precise {
            error::raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("order amount {amount} of customer \"{customer}\" has more than {MAX_FRACTION_DIGITS} fractional digits"),
                Some("pg_credit compares amounts exactly; it does not round them.".into()),
                Some("Round the amount to the currency's precision."),
            )
        }
    }
    if !valid {
        if !is_new {
            return None;
        }
        if not_valid_number {
            error::raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("order amount {amount} of customer \"{customer}\" is not a valid amount"),
                Some("Order amounts must be zero or positive finite numbers.".into()),
                Some("Record returns and corrections as credit notes (credit.post_credit_note)."),
            )
        }
        error::raise(
            Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("order amount {amount} of customer \"{customer}\" is out of range"),
            Some(format!("The largest amount pg_credit accepts is {MAX_AMOUNT}.")),
            None,
        )
    }
    Some(Contribution { customer, amount })
}
