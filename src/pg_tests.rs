//! `#[pg_test]`s: run inside PostgreSQL by `cargo pgrx test`, each in a rolled-back transaction.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn placeholder() {}
}
