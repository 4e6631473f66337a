//! On Citus's coordinator, a REVOKE on pg_credit's objects reaches every worker's own copies of
//! them at once (event trigger credit_privileges_to_workers, sql/citus.sql): Citus carries a
//! REVOKE only for what it distributes, and a worker checks its own copies when a call runs there
//! as the caller. Only a REVOKE that names something in schema credit contacts the workers, so
//! that a REVOKE on an application's table neither waits for them nor fails while one is down.
use crate::pg::error::OrRaise;
use crate::pg::event::{event_data, list, relid};
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

/// Whether a GRANT or REVOKE names schema credit or an object in it: named tables, sequences,
/// functions and schemas, and ALL ... IN SCHEMA credit.
unsafe fn names_credit(stmt: *mut pg_sys::GrantStmt) -> bool {
    let credit = pg_sys::get_namespace_oid(c"credit".as_ptr(), true);
    if credit == Oid::INVALID {
        return false;
    }
    let schema_named = |objects| {
        list::<pg_sys::String>(objects).into_iter().any(|s| pg_sys::get_namespace_oid((*s).sval, true) == credit)
    };
    match ((*stmt).targtype, (*stmt).objtype) {
        (pg_sys::GrantTargetType::ACL_TARGET_ALL_IN_SCHEMA, _) => schema_named((*stmt).objects),
        (pg_sys::GrantTargetType::ACL_TARGET_OBJECT, pg_sys::ObjectType::OBJECT_SCHEMA) => {
            schema_named((*stmt).objects)
        }
        (
            pg_sys::GrantTargetType::ACL_TARGET_OBJECT,
            pg_sys::ObjectType::OBJECT_TABLE | pg_sys::ObjectType::OBJECT_SEQUENCE,
        ) => list::<pg_sys::RangeVar>((*stmt).objects)
            .into_iter()
            .filter_map(|rv| relid(rv))
            .any(|rel| pg_sys::get_rel_namespace(rel) == credit),
        (
            pg_sys::GrantTargetType::ACL_TARGET_OBJECT,
            kind @ (pg_sys::ObjectType::OBJECT_FUNCTION
            | pg_sys::ObjectType::OBJECT_PROCEDURE
            | pg_sys::ObjectType::OBJECT_ROUTINE),
        ) => list::<pg_sys::ObjectWithArgs>((*stmt).objects).into_iter().any(|f| {
            let oid = pg_sys::LookupFuncWithArgs(kind, f, true);
            oid != Oid::INVALID && pg_sys::get_func_namespace(oid) == credit
        }),
        _ => false,
    }
}

crate::pg::entry::finfo_v1!(pg_finfo_credit_revokes_to_workers);

/// ddl_command_end WHEN TAG IN ('REVOKE'): on a distributed database's coordinator, a REVOKE that
/// names pg_credit's objects is made on every worker too (credit._privileges_to_workers, which
/// returns at once elsewhere). Not inside an extension script, nor for the REVOKEs
/// credit._privileges_to_workers runs itself.
///
/// # Safety
/// Called by PostgreSQL as an event trigger function.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn credit_revokes_to_workers(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let data = event_data(fcinfo, "credit._revokes_to_workers");
    let node = (*data).parsetree;
    if pg_sys::creating_extension
        || node.is_null()
        || (*node).type_ != pg_sys::NodeTag::T_GrantStmt
        || !names_credit(node as *mut pg_sys::GrantStmt)
    {
        return pg_sys::Datum::from(0);
    }
    let replaying = Spi::get_one::<bool>(
        "SELECT pg_catalog.current_setting('credit.matching_privileges', true) OPERATOR(pg_catalog.=) 'on'",
    )
    .or_raise()
    .unwrap_or(false);
    if !replaying {
        Spi::run("SELECT credit._privileges_to_workers(false)").or_raise();
    }
    pg_sys::Datum::from(0)
}
