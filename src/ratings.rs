//! External ratings in the database: `credit.map_rating` maps an agency's report with
//! credit_core::rating (pure: a preview that stores nothing); `credit.import_rating`
//! (sql/ratings.sql) stores it with its validity and trend, and the score counts it.
use crate::pg::error;
use crate::pg::numeric::numeric;
use credit_core::rating::{self, Format};
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// Maps an agency's report (JSON as received) onto pg_credit's scale: a 0-100 score (higher is
/// better) and a risk level, with what the agency said and how the mapping read it. format:
/// paydex, commercial_score, risk_level or generic (with a mapping of JSON pointers); NULL: told
/// from the payload. Bad or unknown payloads: 22023 with what the format expects.
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn map_rating(
    payload: Option<pgrx::JsonB>,
    format: default!(Option<&str>, "NULL"),
    mapping: default!(Option<pgrx::JsonB>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(format, String),
        name!(external_id, Option<String>),
        name!(procedure, String),
        name!(agency_grade, Option<String>),
        name!(agency_score, Option<AnyNumeric>),
        name!(score, AnyNumeric),
        name!(risk_level, String),
        name!(rating_date, Option<String>),
        name!(valid_until, Option<String>),
        name!(trend, Option<String>),
        name!(explanation, String),
    ),
> {
    let Some(payload) = payload else { error::null_arg("payload") };
    let format = match format {
        Some(f) => Format::parse(f).unwrap_or_else(|| {
            error::invalid(format!("format \"{f}\" is not paydex, commercial_score, risk_level or generic"))
        }),
        None => Format::detect(&payload.0).unwrap_or_else(|| {
            error::raise(
                error::Code::ERRCODE_INVALID_PARAMETER_VALUE,
                "the payload is not a format pg_credit knows",
                None,
                Some("Name the format: paydex, commercial_score, risk_level, or generic with a mapping (docs/grading.md#external-ratings)."),
            )
        }),
    };
    let m = rating::map(format, &payload.0, mapping.as_ref().map(|m| &m.0))
        .map_err(|e| format!("rating payload: {e}"))
        .unwrap_or_else(|e| error::invalid(e));
    TableIterator::once((
        m.format.code().to_string(),
        m.external_id,
        m.procedure,
        m.agency_grade,
        m.agency_score.map(numeric),
        numeric(m.score),
        m.risk_level.code().to_string(),
        m.rating_date,
        m.valid_until,
        m.trend,
        m.explanation,
    ))
}
