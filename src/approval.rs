//! Applying an approved limit change. Direct writes of credit_limit are refused outside the admin
//! role (account::_limit_control); the approval functions (sql/approval.sql) change limits through
//! this function, whose write runs as pg_credit's own.
use crate::error::{self, OrRaise};
use crate::{hold, input, internal};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// Internal: sets a customer's limit (valid_until NULL) or temporary limit through valid_until,
/// recording `reason` in credit.event. Held orders that fit afterwards are released.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn _apply_limit(customer: Option<&str>, new_limit: Option<AnyNumeric>, valid_until: Option<Date>, reason: Option<&str>) -> bool {
    crate::roles::require_internal("credit._apply_limit");
    let customer = input::text(customer, "customer");
    let limit = input::non_negative_amount(new_limit.as_ref(), "new_limit");
    let reason = input::text(reason, "reason");
    let changed = internal::scope(|| {
        Spi::connect_mut(|c| {
            c.update("SELECT set_config('credit.reason', $1, true)", None, &[reason.into()]).or_raise();
            let sql = if valid_until.is_some() {
                "UPDATE credit.account SET temporary_limit = $2, temporary_limit_until = $3 WHERE customer = $1 RETURNING 1"
            } else {
                "UPDATE credit.account SET credit_limit = $2 WHERE customer = $1 RETURNING 1"
            };
            let n = c.update(sql, None, &[customer.into(), input::numeric(limit).into(), valid_until.into()]).or_raise().len();
            c.update("SELECT set_config('credit.reason', '', true)", None, &[]).or_raise();
            n
        })
    });
    if changed == 0 {
        error::unknown_customer(customer)
    }
    hold::release_fitting(Some(customer));
    true
}
