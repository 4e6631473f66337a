//! `#[pg_test]`s: run inside PostgreSQL by `cargo pgrx test`, each in a rolled-back transaction.
//! The SQL contract as users see it is covered by tests/pg_regress; these check what only Rust can
//! see (the internal-write flag) and SQLSTATEs through PgTryBuilder.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use crate::internal;
    use pgrx::prelude::*;
    use pgrx::{AnyNumeric, PgSqlErrorCode};

    /// Runs `sql` in a subtransaction (as a PL/pgSQL EXCEPTION block does) and returns the SQLSTATE
    /// it failed with, or None when it succeeded. The failed subtransaction is rolled back.
    fn sqlstate_of(sql: &'static str) -> Option<PgSqlErrorCode> {
        unsafe {
            let cxt = pg_sys::CurrentMemoryContext;
            let owner = pg_sys::CurrentResourceOwner;
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            PgTryBuilder::new(|| {
                Spi::run(sql).expect("SPI");
                pg_sys::ReleaseCurrentSubTransaction();
                pg_sys::MemoryContextSwitchTo(cxt);
                pg_sys::CurrentResourceOwner = owner;
                None
            })
            .catch_others(|e| {
                pg_sys::MemoryContextSwitchTo(cxt);
                pg_sys::RollbackAndReleaseCurrentSubTransaction();
                pg_sys::MemoryContextSwitchTo(cxt);
                pg_sys::CurrentResourceOwner = owner;
                match e {
                    pg_sys::panic::CaughtError::PostgresError(r)
                    | pg_sys::panic::CaughtError::ErrorReport(r)
                    | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => Some(r.sql_error_code()),
                }
            })
            .execute()
        }
    }

    fn num(sql: &str) -> AnyNumeric {
        Spi::get_one::<AnyNumeric>(sql).expect("SPI").expect("not NULL")
    }

    #[pg_test]
    fn internal_flag_is_reset_after_an_error_inside_it() {
        Spi::run("INSERT INTO credit.account (customer, credit_limit) VALUES ('T1', 100)").unwrap();
        // post_invoice fails inside its internal scope (unknown customer)...
        assert_eq!(
            sqlstate_of("SELECT credit.post_invoice('NOBODY', 'X', 10)"),
            Some(PgSqlErrorCode::ERRCODE_FOREIGN_KEY_VIOLATION)
        );
        // ...and the scope must not leak: a direct write of a maintained column is refused again.
        assert!(!internal::active());
        assert_eq!(
            sqlstate_of("UPDATE credit.account SET open_orders = 1 WHERE customer = 'T1'"),
            Some(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE)
        );
    }

    #[pg_test]
    fn guard_and_check_agree_at_the_limit() {
        Spi::run(
            "INSERT INTO credit.account (customer, credit_limit) VALUES ('T2', 100);
             CREATE TABLE t2_orders (customer text, amount numeric);
             SELECT credit.guard('t2_orders', 'customer', 'amount');",
        )
        .unwrap();
        let allowed = |amt: &str| {
            Spi::get_one::<bool>(&format!("SELECT allowed FROM credit.check('T2', {amt})")).unwrap().unwrap()
        };
        assert!(allowed("100"));
        assert!(!allowed("100.01"));
        assert_eq!(sqlstate_of("INSERT INTO t2_orders VALUES ('T2', 60)"), None);
        assert!(allowed("40"));
        assert!(!allowed("40.01"));
        assert_eq!(
            sqlstate_of("INSERT INTO t2_orders VALUES ('T2', 40.01)"),
            Some(PgSqlErrorCode::ERRCODE_CHECK_VIOLATION)
        );
        assert_eq!(sqlstate_of("INSERT INTO t2_orders VALUES ('T2', 40)"), None);
        assert_eq!(num("SELECT credit.exposure('T2')"), AnyNumeric::from(100));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM credit.verify()").unwrap(), Some(0));
    }

    #[pg_test]
    fn payments_settle_oldest_due_first_and_keep_the_rest() {
        Spi::run(
            "INSERT INTO credit.account (customer, credit_limit) VALUES ('T3', 1000);
             SELECT credit.post_invoice('T3', 'LATE', 100, '2026-01-10', '2026-03-01');
             SELECT credit.post_invoice('T3', 'EARLY', 100, '2026-01-20', '2026-02-01');
             SELECT credit.post_payment('T3', 150, '2026-02-15');",
        )
        .unwrap();
        assert_eq!(num("SELECT open_amount FROM credit.invoice WHERE doc_no = 'EARLY'"), AnyNumeric::from(0));
        assert_eq!(num("SELECT open_amount FROM credit.invoice WHERE doc_no = 'LATE'"), AnyNumeric::from(50));
        Spi::run("SELECT credit.post_payment('T3', 80)").unwrap();
        assert_eq!(num("SELECT unapplied_credit FROM credit.account WHERE customer = 'T3'"), AnyNumeric::from(30));
        assert_eq!(num("SELECT credit.exposure('T3')"), AnyNumeric::from(-30));
        // the next invoice consumes the unapplied credit
        Spi::run("SELECT credit.post_invoice('T3', 'NEXT', 100)").unwrap();
        assert_eq!(num("SELECT open_amount FROM credit.invoice WHERE doc_no = 'NEXT'"), AnyNumeric::from(70));
        assert_eq!(num("SELECT credit.exposure('T3')"), AnyNumeric::from(70));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM credit.verify()").unwrap(), Some(0));
    }

    #[pg_test]
    fn bad_amounts_have_their_own_sqlstates() {
        Spi::run("INSERT INTO credit.account (customer, credit_limit) VALUES ('T4', 100)").unwrap();
        use PgSqlErrorCode::*;
        let cases: [(&'static str, PgSqlErrorCode); 6] = [
            ("SELECT credit.post_invoice('T4', 'A', NULL)", ERRCODE_NULL_VALUE_NOT_ALLOWED),
            ("SELECT credit.post_invoice('T4', 'A', 'NaN')", ERRCODE_INVALID_PARAMETER_VALUE),
            ("SELECT credit.post_invoice('T4', 'A', '-Infinity')", ERRCODE_INVALID_PARAMETER_VALUE),
            ("SELECT credit.post_invoice('T4', 'A', 0)", ERRCODE_INVALID_PARAMETER_VALUE),
            ("SELECT credit.post_invoice('T4', 'A', 1e30)", ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
            ("SELECT credit.post_payment('T4', -5)", ERRCODE_INVALID_PARAMETER_VALUE),
        ];
        for (sql, code) in cases {
            assert_eq!(sqlstate_of(sql), Some(code), "{sql}");
        }
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM credit.invoice WHERE customer = 'T4'").unwrap(), Some(0));
    }

    #[pg_test]
    fn numeric_decoder_agrees_with_postgres_text_output() {
        use crate::numeric_fast::{decode_datum, Decoded};
        use rust_decimal::Decimal;
        use std::str::FromStr;
        // Short and long header forms, signs, scales 0-20, weights from 10^-20 to 10^24.
        let sql = "SELECT v, v::text FROM (
                     SELECT round(((random() - 0.5) * 10 ^ (random() * 44 - 20))::numeric, (random() * 20)::int) AS v
                       FROM generate_series(1, 5000)
                     UNION ALL SELECT unnest(ARRAY[0, -0.0, 1, -1, 0.5, 10000, 9999.9999, 100000000, 0.0001,
                                                   1e-20, 123456789012345678901234.5678, -7.05, 1000000000000000]::numeric[])) s";
        let checked = Spi::connect(|c| {
            let rows = c.select(sql, None, &[]).unwrap();
            let mut n = 0;
            for row in rows {
                let datum: AnyNumeric = row.get(1).unwrap().unwrap();
                let text: String = row.get(2).unwrap().unwrap();
                let decoded = unsafe { decode_datum(datum.into_datum().unwrap()) };
                // Significant digits: what a Decimal (28 digits) must hold exactly.
                let digits = text.trim_start_matches('-').replace('.', "");
                let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
                if significant > 28 {
                    assert_eq!(decoded, Decoded::TooLarge, "{text}");
                } else {
                    assert_eq!(decoded, Decoded::Value(Decimal::from_str(&text).unwrap()), "{text}");
                }
                n += 1;
            }
            n
        });
        assert_eq!(checked, 5013);
        let nan = Spi::get_one::<AnyNumeric>("SELECT 'NaN'::numeric").unwrap().unwrap();
        assert_eq!(unsafe { decode_datum(nan.into_datum().unwrap()) }, Decoded::NotFinite);
        let inf = Spi::get_one::<AnyNumeric>("SELECT '-Infinity'::numeric").unwrap().unwrap();
        assert_eq!(unsafe { decode_datum(inf.into_datum().unwrap()) }, Decoded::NotFinite);
    }
}
