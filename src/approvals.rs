//! Applying an approved limit change. Direct writes of credit_limit are refused outside the admin
//! role (accounts.rs, `_limit_control`); the approval functions (sql/approvals.sql) change limits
//! through this function, whose write runs as pg_credit's own.
use crate::pg::args;
use crate::pg::error;
use crate::pg::error::OrRaise;
use crate::pg::numeric::numeric;
use crate::store::{self, events};
use crate::{holds, privileges};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// Internal: sets a customer's limit (valid_until NULL) or temporary limit through valid_until,
/// recording `reason` in credit.event. Held orders that fit afterwards are released.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _apply_limit(
    customer: Option<&str>,
    new_limit: Option<AnyNumeric>,
    valid_until: Option<Date>,
    reason: Option<&str>,
) -> bool {
    privileges::require_internal("credit._apply_limit");
    let customer = args::text(customer, "customer");
    let limit = args::non_negative_amount(new_limit.as_ref(), "new_limit");
    let reason = args::text(reason, "reason");
    let changed = store::writing(|| {
        Spi::connect_mut(|c| {
            events::with_reason(c, reason, |c| {
                let sql = if valid_until.is_some() {
                    "UPDATE credit.account SET temporary_limit = $2, temporary_limit_until = $3 WHERE customer = $1 RETURNING 1"
                } else {
                    "UPDATE credit.account SET credit_limit = $2 WHERE customer = $1 RETURNING 1"
                };
                c.update(sql, None, &[customer.into(), numeric(limit).into(), valid_until.into()]).or_raise().len()
            })
        })
    });
    if changed == 0 {
        error::unknown_customer(customer)
    }
    holds::release_fitting(Some(customer));
    true
}
