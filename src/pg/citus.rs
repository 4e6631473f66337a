//! Citus (docs/citus.md): whether this database's pg_credit is distributed, and whether this
//! backend carries a command another Citus node sent.
use crate::pg::error::{self, Code, OrRaise};
use pgrx::prelude::*;

/// Citus names the connections its nodes open to each other so (`CITUS_APPLICATION_NAME_PREFIX`).
const INTERNAL_PREFIX: &[u8] = b"citus_internal gpid=";

/// Whether this backend runs a command another Citus node sent over a Citus connection (a shard's
/// DDL, a task of a distributed statement). Anyone can set application_name, so this alone proves
/// nothing: callers that let something through also require a superuser.
pub fn from_other_node() -> bool {
    // SAFETY: a read of the application_name GUC, a NUL-terminated string or NULL.
    unsafe {
        !pg_sys::application_name.is_null()
            && std::ffi::CStr::from_ptr(pg_sys::application_name).to_bytes().starts_with(INTERNAL_PREFIX)
    }
}

/// Whether credit.distribute() laid this database out on Citus (credit.account is distributed).
/// Read-only: no transaction id.
pub fn distributed() -> bool {
    Spi::connect(|c| {
        let citus = c
            .select("SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise();
        citus == Some(true)
            && c.select(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p \
                 WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'credit.account'::pg_catalog.regclass)",
                Some(1),
                &[],
            )
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
                == Some(true)
    })
}

/// Whether this backend carries a command another node sent to this Citus **worker**: the
/// connection says so, this database is distributed, and this node is not the coordinator. The
/// node that ran the command checked it; here the DDL watch leaves it alone. A client that sets
/// the same application_name gets nothing from it on one node or on the coordinator (where the
/// watch always runs); docs/citus.md says why workers admit only the coordinator and admins.
pub fn command_from_another_node() -> bool {
    if !from_other_node() || !distributed() {
        return false;
    }
    let coordinator = Spi::connect(|c| {
        c.select("SELECT pg_catalog.citus_is_coordinator()", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
    });
    coordinator == Some(false)
}

/// Refuses what does not run on Citus yet, with the page that says so.
pub fn refuse_if_distributed(what: &str) {
    if distributed() {
        error::raise(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{what} does not work on Citus yet"),
            Some(
                "pg_credit is distributed in this database (credit.distribute()); the receivables ledger is not."
                    .into(),
            ),
            Some("docs/citus.md lists what runs on Citus."),
        )
    }
}
