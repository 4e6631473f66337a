//! Payment-behaviour aggregates: `credit.weighted_days_late`, `credit.weighted_days_late_clamped`,
//! `credit.paydex`, `credit.on_time_ratio` (by count and by amount).
//!
//! Written the way timescaledb-toolkit writes its hot aggregates: `CREATE AGGREGATE` by hand
//! (sql/aggregates.sql) over `internal` states that live in the aggregate's memory context and are
//! updated in place, with combine/serialize/deserialize functions so PostgreSQL can run them in
//! parallel workers. (pgrx's #[pg_aggregate] would copy a varlena state per row, and its generated
//! deserialize signature for internal states is wrong in 0.18, pgrx issue #2351.) The maths is in
//! credit_core::lateness; these functions only move bytes.
//!
//! Every function here is called by PostgreSQL's function manager with the arguments its SQL
//! declaration names, so the raw argument reads below are safe for those declarations.
use crate::pg::entry::finfo_v1;
use crate::pg::error::{self, Code, OrRaise};
use crate::pg::numeric::decode_datum;
use credit_core::lateness::{OnTime, Paydex, WeightedDays};
use credit_core::numeric::Decoded;
use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use pgrx::prelude::*;
use rust_decimal::Decimal;

trait State: Copy + Default {
    fn merge(&mut self, other: &Self);
}
impl State for WeightedDays {
    fn merge(&mut self, o: &Self) {
        self.combine(o)
    }
}
impl State for Paydex {
    fn merge(&mut self, o: &Self) {
        self.combine(o)
    }
}
impl State for OnTime {
    fn merge(&mut self, o: &Self) {
        self.combine(o)
    }
}

unsafe fn arg_null(fcinfo: FunctionCallInfo, i: usize) -> bool {
    (*fcinfo).args.as_slice((*fcinfo).nargs as usize)[i].isnull
}

unsafe fn arg(fcinfo: FunctionCallInfo, i: usize) -> Datum {
    (*fcinfo).args.as_slice((*fcinfo).nargs as usize)[i].value
}

unsafe fn return_null(fcinfo: FunctionCallInfo) -> Datum {
    (*fcinfo).isnull = true;
    Datum::from(0)
}

unsafe fn agg_context(fcinfo: FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut cx = std::ptr::null_mut();
    if pg_sys::AggCheckCallContext(fcinfo, &mut cx) == 0 {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            "pg_credit aggregate support function called outside an aggregate",
            None,
            None,
        )
    }
    cx
}

unsafe fn new_state<S: State>(cx: pg_sys::MemoryContext, value: S) -> *mut S {
    let p = pg_sys::MemoryContextAlloc(cx, std::mem::size_of::<S>()) as *mut S;
    p.write(value);
    p
}

/// The transition state to update: the existing one, or a new one in the aggregate context.
unsafe fn state_for_update<S: State>(fcinfo: FunctionCallInfo) -> *mut S {
    if arg_null(fcinfo, 0) {
        new_state(agg_context(fcinfo), S::default())
    } else {
        arg(fcinfo, 0).cast_mut_ptr::<S>()
    }
}

/// Keeps the state as it was (NULL stays NULL) when a row is skipped for NULL inputs.
unsafe fn unchanged(fcinfo: FunctionCallInfo) -> Datum {
    if arg_null(fcinfo, 0) {
        return_null(fcinfo)
    } else {
        arg(fcinfo, 0)
    }
}

unsafe fn amount(fcinfo: FunctionCallInfo, i: usize) -> Decimal {
    match decode_datum(arg(fcinfo, i)) {
        Decoded::Value(d) if d.is_sign_negative() && !d.is_zero() => {
            error::raise(Code::ERRCODE_INVALID_PARAMETER_VALUE, format!("amount {d} must not be negative"), None, None)
        }
        Decoded::Value(d) => d,
        Decoded::NotFinite => {
            error::raise(Code::ERRCODE_INVALID_PARAMETER_VALUE, "amount must be a finite number", None, None)
        }
        Decoded::TooLarge => error::raise(
            Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            "amount is out of range for pg_credit's aggregates (at most 28 significant digits)",
            None,
            None,
        ),
    }
}

unsafe fn combine<S: State>(fcinfo: FunctionCallInfo) -> Datum {
    let cx = agg_context(fcinfo);
    match (arg_null(fcinfo, 0), arg_null(fcinfo, 1)) {
        (true, true) => return_null(fcinfo),
        (false, true) => arg(fcinfo, 0),
        (true, false) => Datum::from(new_state(cx, *arg(fcinfo, 1).cast_mut_ptr::<S>())),
        (false, false) => {
            let a = arg(fcinfo, 0).cast_mut_ptr::<S>();
            (*a).merge(&*arg(fcinfo, 1).cast_mut_ptr::<S>());
            Datum::from(a)
        }
    }
}

/// The state's bytes as bytea: partial states only travel between workers of one server, so the
/// in-memory layout is the wire format.
unsafe fn serialize<S: State>(fcinfo: FunctionCallInfo) -> Datum {
    let s = arg(fcinfo, 0).cast_mut_ptr::<S>();
    let bytes = std::slice::from_raw_parts(s as *const u8, std::mem::size_of::<S>());
    Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(bytes).into_pg())
}

unsafe fn deserialize<S: State>(fcinfo: FunctionCallInfo) -> Datum {
    let v = pg_sys::pg_detoast_datum_packed(arg(fcinfo, 0).cast_mut_ptr());
    let bytes = pgrx::varlena::varlena_to_byte_slice(v);
    if bytes.len() != std::mem::size_of::<S>() {
        error::raise(Code::ERRCODE_DATA_CORRUPTED, "pg_credit: malformed aggregate state", None, None)
    }
    let p = pg_sys::palloc(std::mem::size_of::<S>()) as *mut S;
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), p as *mut u8, bytes.len());
    Datum::from(p)
}

unsafe fn final_numeric<S: State>(fcinfo: FunctionCallInfo, f: impl Fn(&S) -> Option<Decimal>) -> Datum {
    if arg_null(fcinfo, 0) {
        return return_null(fcinfo);
    }
    match f(&*arg(fcinfo, 0).cast_mut_ptr::<S>()) {
        None => return_null(fcinfo),
        Some(d) => crate::pg::numeric::numeric(d.normalize()).into_datum().unwrap_or_else(|| return_null(fcinfo)),
    }
}

finfo_v1!(
    pg_finfo_credit_wdl_trans,
    pg_finfo_credit_wdl_clamped_trans,
    pg_finfo_credit_wdl_combine,
    pg_finfo_credit_wdl_serial,
    pg_finfo_credit_wdl_deserial,
    pg_finfo_credit_wdl_final,
    pg_finfo_credit_paydex_trans,
    pg_finfo_credit_paydex_combine,
    pg_finfo_credit_paydex_serial,
    pg_finfo_credit_paydex_deserial,
    pg_finfo_credit_paydex_final,
    pg_finfo_credit_ontime_count_trans,
    pg_finfo_credit_ontime_amount_trans,
    pg_finfo_credit_ontime_combine,
    pg_finfo_credit_ontime_serial,
    pg_finfo_credit_ontime_deserial,
    pg_finfo_credit_ontime_count_final,
    pg_finfo_credit_ontime_amount_final,
);

/// `extern "C-unwind"` V1 entry points, each delegating to a Rust function of `fcinfo`.
macro_rules! entry_points {
    ($($name:ident => $target:path;)*) => {$(
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name(fcinfo: FunctionCallInfo) -> Datum {
            $target(fcinfo)
        }
    )*};
}

entry_points! {
    credit_wdl_trans => wdl_signed_trans;
    credit_wdl_clamped_trans => wdl_clamped_trans;
    credit_wdl_combine => combine::<WeightedDays>;
    credit_wdl_serial => serialize::<WeightedDays>;
    credit_wdl_deserial => deserialize::<WeightedDays>;
    credit_wdl_final => wdl_final;
    credit_paydex_combine => combine::<Paydex>;
    credit_paydex_serial => serialize::<Paydex>;
    credit_paydex_deserial => deserialize::<Paydex>;
    credit_paydex_final => paydex_final;
    credit_ontime_combine => combine::<OnTime>;
    credit_ontime_serial => serialize::<OnTime>;
    credit_ontime_deserial => deserialize::<OnTime>;
    credit_ontime_count_final => ontime_count_final;
    credit_ontime_amount_final => ontime_amount_final;
}

unsafe fn wdl_signed_trans(fcinfo: FunctionCallInfo) -> Datum {
    wdl_trans(fcinfo, false)
}
unsafe fn wdl_clamped_trans(fcinfo: FunctionCallInfo) -> Datum {
    wdl_trans(fcinfo, true)
}
unsafe fn wdl_final(fcinfo: FunctionCallInfo) -> Datum {
    final_numeric::<WeightedDays>(fcinfo, |s| s.result().map(|d| d.round_dp(4)))
}
unsafe fn paydex_final(fcinfo: FunctionCallInfo) -> Datum {
    final_numeric::<Paydex>(fcinfo, |s| s.result())
}
unsafe fn ontime_count_final(fcinfo: FunctionCallInfo) -> Datum {
    final_numeric::<OnTime>(fcinfo, |s| s.by_count().map(|d| d.round_dp(4)))
}
unsafe fn ontime_amount_final(fcinfo: FunctionCallInfo) -> Datum {
    final_numeric::<OnTime>(fcinfo, |s| s.by_amount().map(|d| d.round_dp(4)))
}

unsafe fn wdl_trans(fcinfo: FunctionCallInfo, clamp: bool) -> Datum {
    if arg_null(fcinfo, 1) || arg_null(fcinfo, 2) {
        return unchanged(fcinfo);
    }
    let days = arg(fcinfo, 1).value() as i32;
    let amt = amount(fcinfo, 2);
    let s = state_for_update::<WeightedDays>(fcinfo);
    (*s).add(days, amt, clamp);
    Datum::from(s)
}

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_paydex_trans(fcinfo: FunctionCallInfo) -> Datum {
    if arg_null(fcinfo, 1) || arg_null(fcinfo, 2) {
        return unchanged(fcinfo);
    }
    let days = arg(fcinfo, 1).value() as i32;
    let amt = amount(fcinfo, 2);
    let s = state_for_update::<Paydex>(fcinfo);
    (*s).add(days, amt);
    Datum::from(s)
}

unsafe fn grace(fcinfo: FunctionCallInfo, i: usize) -> i32 {
    if arg_null(fcinfo, i) {
        error::null_arg("grace_days")
    }
    let g = arg(fcinfo, i).value() as i32;
    if g < 0 {
        error::invalid("grace_days must not be negative")
    }
    g
}

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_ontime_count_trans(fcinfo: FunctionCallInfo) -> Datum {
    let g = grace(fcinfo, 2);
    if arg_null(fcinfo, 1) {
        return unchanged(fcinfo);
    }
    let s = state_for_update::<OnTime>(fcinfo);
    (*s).add(arg(fcinfo, 1).value() as i32, Decimal::ZERO, g);
    Datum::from(s)
}
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_ontime_amount_trans(fcinfo: FunctionCallInfo) -> Datum {
    let g = grace(fcinfo, 3);
    if arg_null(fcinfo, 1) || arg_null(fcinfo, 2) {
        return unchanged(fcinfo);
    }
    let amt = amount(fcinfo, 2);
    let s = state_for_update::<OnTime>(fcinfo);
    (*s).add(arg(fcinfo, 1).value() as i32, amt, g);
    Datum::from(s)
}

// ---------------------------------------------------------------------------------------------
// credit._bucket_rank(days): the aging bucket a day count falls in (1 = first active bucket).
// The bucket bounds are read once per query and call site and kept in fn_extra (each parallel
// worker keeps its own), so the per-row cost is a binary search. It replaces an InitPlan
// parameter, which in PostgreSQL 15 would keep aging queries from running in parallel.

finfo_v1!(pg_finfo_credit_bucket_rank);

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_bucket_rank(fcinfo: FunctionCallInfo) -> Datum {
    if arg_null(fcinfo, 0) {
        return return_null(fcinfo);
    }
    let days = arg(fcinfo, 0).value() as i32;
    let flinfo = (*fcinfo).flinfo;
    if (*flinfo).fn_extra.is_null() {
        let lowers: Vec<i32> = Spi::connect(|c| {
            c.select(
                "SELECT b.lower_days FROM credit.aging_bucket b \
                 WHERE NOT b.retired AND b.lower_days IS NOT NULL ORDER BY b.position",
                None,
                &[],
            )
            .or_raise()
            .filter_map(|r| r.get::<i32>(1).or_raise())
            .collect()
        });
        // [len, lowers...] in the function's memory context, which lives as long as the query.
        let p = pg_sys::MemoryContextAlloc((*flinfo).fn_mcxt, (lowers.len() + 1) * 4) as *mut i32;
        p.write(lowers.len() as i32);
        std::ptr::copy_nonoverlapping(lowers.as_ptr(), p.add(1), lowers.len());
        (*flinfo).fn_extra = p.cast();
    }
    let p = (*flinfo).fn_extra as *const i32;
    let lowers = std::slice::from_raw_parts(p.add(1), *p as usize);
    Datum::from(credit_core::aging::rank(lowers, days) as i32)
}
