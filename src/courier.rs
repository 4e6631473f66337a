//! Messages for the courier (sql/courier.sql plans them; the courier program in courier/ sends
//! them): templates are filled by credit_core::template. Amounts reach these functions as text,
//! so money never passes through a float on its way into a message.
use crate::pg::error;
use crate::pg::numeric::decimal;
use credit_core::{statement, template};
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// Fills a template's `{{placeholders}}` from a JSON object; a placeholder naming a field the
/// object does not have is 22023 with its name (the planner makes that a dead letter).
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn _render_message(template: Option<&str>, fields: Option<pgrx::JsonB>) -> Option<String> {
    let template = template?;
    let Some(fields) = fields else { error::null_arg("fields") };
    Some(template::render(template, &fields.0).unwrap_or_else(|e| error::invalid(e.to_string())))
}

/// The placeholders of a template, in order; a malformed one is 22023.
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn _template_fields(template: Option<&str>) -> Vec<String> {
    let Some(template) = template else { error::null_arg("template") };
    template::fields(template).unwrap_or_else(|e| error::invalid(e.to_string()))
}

/// An amount as messages print it: the statement's rule (thousands separators, at least two
/// decimals, never rounded).
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn _money_text(x: Option<AnyNumeric>) -> Option<String> {
    x.map(|x| statement::amount(decimal(&x)))
}
