//! `#[pg_test]`s: run inside PostgreSQL by `cargo pgrx test`, each in a rolled-back transaction.
//! The SQL contract as users see it is covered by tests/pg_regress; these check what only Rust can
//! see (the internal-write flag) and SQLSTATEs through PgTryBuilder.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use crate::store;
    use pgrx::prelude::*;
    use pgrx::{AnyNumeric, PgSqlErrorCode};

    /// Runs `sql` in a subtransaction (as a PL/pgSQL EXCEPTION block does) and returns the SQLSTATE
    /// it failed with, or None when it succeeded. The failed subtransaction is rolled back.
    fn sqlstate_of(sql: &'static str) -> Option<PgSqlErrorCode> {
        // SAFETY: the subtransaction is begun and ended (released or rolled back) here, with the
        // memory context and resource owner restored, as PL/pgSQL's exception blocks do.
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
        assert!(!store::is_writing());
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
        use crate::pg::numeric::decode_datum;
        use credit_core::numeric::Decoded;
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
                // SAFETY: a non-null numeric datum.
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
        // SAFETY: non-null numeric datums.
        assert_eq!(unsafe { decode_datum(nan.into_datum().unwrap()) }, Decoded::NotFinite);
        let inf = Spi::get_one::<AnyNumeric>("SELECT '-Infinity'::numeric").unwrap().unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { decode_datum(inf.into_datum().unwrap()) }, Decoded::NotFinite);
    }

    /// The guard decides with SQL (the conditional UPDATE of store::account, its fit rule);
    /// credit.check, holds and the refusal messages decide with credit_core::decision. Both must
    /// agree for every account, not only at the limit's edge: random statuses, limits (temporary,
    /// capped by a policy maximum), exposures (negative too), prepayment, overdue rules, and
    /// amounts anywhere or within a cent (and 1e-8) of the room left.
    #[pg_test]
    fn guard_sql_rule_and_core_decision_agree() {
        use crate::pg::numeric::numeric;
        use crate::store::account::{fits_over_values, Loaded};
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        use rust_decimal::Decimal;

        let sql = fits_over_values(
            "$1::text AS status, $3::numeric AS credit_limit, $4::numeric AS temporary_limit, \
             (CURRENT_DATE + $5::int) AS temporary_limit_until, $6::numeric AS policy_max_limit, \
             $7::numeric AS exposure, $8::numeric AS member_exposure, $9::boolean AS policy_prepayment_only, \
             (CURRENT_DATE + $10::int) AS oldest_open_due, $11::int AS policy_overdue_block_days, \
             $12::numeric AS policy_warn_ratio, NULL::text AS parent",
        );
        let money = |max: i64| (0..=max).prop_map(|units| Decimal::new(units, 2));
        let signed = |max: i64| (-max..=max).prop_map(|units| Decimal::new(units, 2));
        #[derive(Debug, Clone)]
        enum Amount {
            Anywhere(Decimal),
            /// The room left plus this many cents and this many 1e-8.
            Edge(i64, i64),
        }
        let strategy = (
            prop_oneof!["active", "hold", "blacklisted"],
            money(10_000_000),
            proptest::option::of((money(10_000_000), -30i32..30)),
            proptest::option::of(money(10_000_000)),
            signed(12_000_000),
            signed(3_000_000),
            any::<bool>(),
            proptest::option::of(-200i32..30),
            proptest::option::of(0i32..120),
            prop_oneof![
                money(20_000_000).prop_map(Amount::Anywhere),
                (-2i64..=2, -1i64..=1).prop_map(|(c, t)| Amount::Edge(c, t))
            ],
        );
        /// status, limit, temporary (limit, days from today), policy maximum, exposure, member
        /// exposure, prepayment only, oldest open due (days from today), overdue block days.
        type Case = (
            String,
            Decimal,
            Option<(Decimal, i32)>,
            Option<Decimal>,
            Decimal,
            Decimal,
            bool,
            Option<i32>,
            Option<i32>,
        );
        let decide = |case: &Case, amount: Decimal| {
            let (status, limit, temporary, policy_max, exposure, members, prepay, due, block) = case.clone();
            Spi::connect(|c| {
                let row = c
                    .select(
                        &sql,
                        Some(1),
                        &[
                            status.into(),
                            numeric(amount).into(),
                            numeric(limit).into(),
                            temporary.map(|t| numeric(t.0)).into(),
                            temporary.map(|t| t.1).into(),
                            policy_max.map(numeric).into(),
                            numeric(exposure).into(),
                            numeric(members).into(),
                            prepay.into(),
                            due.into(),
                            block.into(),
                            numeric(Decimal::new(8, 1)).into(),
                        ],
                    )
                    .unwrap()
                    .first();
                let fits = row.get::<bool>(9).unwrap().unwrap_or(false);
                (fits, Loaded::from_row(&row.get_heap_tuple().unwrap().unwrap()))
            })
        };
        let mut runner = TestRunner::new(Config { cases: 2000, failure_persistence: None, ..Config::default() });
        let result = runner.run(
            &strategy,
            |(status, limit, temporary, policy_max, exposure, members, prepay, due, block, amount)| {
                let case = (status.to_string(), limit, temporary, policy_max, exposure, members, prepay, due, block);
                let amount = match amount {
                    Amount::Anywhere(a) => a,
                    Amount::Edge(cents, tiny) => {
                        let (_, l) = decide(&case, Decimal::ZERO);
                        let room = l.account.credit_limit - l.account.exposure;
                        let room = if l.account.prepayment_only { -l.account.exposure } else { room };
                        (room + Decimal::new(cents, 2) + Decimal::new(tiny, 8)).max(Decimal::ZERO)
                    }
                };
                let (fits, loaded) = decide(&case, amount);
                let allowed = credit_core::decision::decide(Some(&loaded.account), None, amount).allowed();
                if fits != allowed {
                    return Err(TestCaseError::fail(format!(
                        "SQL says fits = {fits}, the core says allowed = {allowed}, amount {amount}"
                    )));
                }
                Ok(())
            },
        );
        if let Err(e) = result {
            panic!("the guard's SQL rule and the core's decision disagree: {e}");
        }
    }

    /// Statements add up on any ledger: for random sequences of invoices, payments, credit notes,
    /// write-offs, reversals and cancellations (back-dated too), and random periods, the opening
    /// balance is the balance the day before the period, the closing balance the balance at its
    /// end — both by an oracle that knows only each posting's effect and date — the activity's
    /// debits less credits go from one to the other, and the open items and the aging add up to
    /// the closing balance.
    #[pg_test]
    fn statements_add_up_on_generated_ledgers() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        use rust_decimal::Decimal;
        use std::str::FromStr;

        #[derive(Debug, Clone)]
        enum Op {
            Invoice { back: i32, cents: i64, terms: i32 },
            Payment { back: i32, cents: i64 },
            CreditNote { back: i32, cents: i64, apply_to: Option<usize> },
            WriteOff { pick: usize },
            Reverse { pick: usize },
            Cancel { pick: usize },
        }
        let op = prop_oneof![
            4 => (0..15i32, 1..500_000i64, 0..60i32).prop_map(|(back, cents, terms)| Op::Invoice { back, cents, terms }),
            3 => (0..15i32, 1..400_000i64).prop_map(|(back, cents)| Op::Payment { back, cents }),
            1 => (0..15i32, 1..100_000i64, proptest::option::of(0..20usize))
                .prop_map(|(back, cents, apply_to)| Op::CreditNote { back, cents, apply_to }),
            1 => (0..20usize).prop_map(|pick| Op::WriteOff { pick }),
            1 => (0..20usize).prop_map(|pick| Op::Reverse { pick }),
            1 => (0..20usize).prop_map(|pick| Op::Cancel { pick }),
        ];
        let strategy =
            (proptest::collection::vec((op, 0..6i32), 1..30), proptest::collection::vec((0..200i32, 0..120i32), 1..4));
        let case_no = std::cell::Cell::new(0);
        let one = |sql: &str, args: Vec<pgrx::datum::DatumWithOid>| -> Option<String> {
            Spi::get_one_with_args::<String>(sql, &args).ok().flatten()
        };
        let mut runner = TestRunner::new(Config { cases: 120, failure_persistence: None, ..Config::default() });
        let result = runner.run(&strategy, |(ops, periods)| {
            case_no.set(case_no.get() + 1);
            let customer = format!("ST-{}", case_no.get());
            Spi::run_with_args("INSERT INTO credit.account (customer, credit_limit) VALUES ($1, 1000000)", &[customer.as_str().into()]).unwrap();
            // The oracle: (effective day, effect on the balance), days counted from 300 days ago.
            let mut effects: Vec<(i32, Decimal)> = Vec::new();
            let mut invoices: Vec<(String, i32)> = Vec::new();
            let mut settlements: Vec<i64> = Vec::new();
            let mut day = 0i32;
            let date = |d: i32| format!("(CURRENT_DATE - 300 + {d})");
            for (k, (op, advance)) in ops.iter().enumerate() {
                day += advance;
                match op {
                    Op::Invoice { back, cents, terms } => {
                        let d = (day - back).max(0);
                        let no = format!("I{k}");
                        let amount = Decimal::new(*cents, 2);
                        Spi::run_with_args(
                            &format!("SELECT credit.post_invoice($1, $2, $3, {}, {} + $4)", date(d), date(d)),
                            &[customer.as_str().into(), no.as_str().into(), crate::pg::numeric::numeric(amount).into(), (*terms).into()],
                        ).unwrap();
                        effects.push((d, amount));
                        invoices.push((no, d));
                    }
                    Op::Payment { back, cents } => {
                        let d = (day - back).max(0);
                        let amount = Decimal::new(*cents, 2);
                        let id = one(&format!("SELECT credit.post_payment($1, $2, {})::text", date(d)),
                                     vec![customer.as_str().into(), crate::pg::numeric::numeric(amount).into()]).unwrap();
                        effects.push((d, -amount));
                        settlements.push(id.parse().unwrap());
                    }
                    Op::CreditNote { back, cents, apply_to } => {
                        let d = (day - back).max(0);
                        let amount = Decimal::new(*cents, 2);
                        // Applied to a named invoice only when it is dated on or before the note and open enough.
                        let target = apply_to.and_then(|i| invoices.get(i % invoices.len().max(1)).cloned()).filter(|(_, idate)| *idate <= d);
                        let fits = target.as_ref().is_some_and(|(no, _)| {
                            one("SELECT (open_amount >= $3)::text FROM credit.invoice WHERE customer = $1 AND doc_no = $2",
                                vec![customer.as_str().into(), no.as_str().into(), crate::pg::numeric::numeric(amount).into()]).as_deref() == Some("true")
                        });
                        let id = one(&format!("SELECT credit.post_credit_note($1, $2, $3, $4, {})::text", date(d)),
                                     vec![customer.as_str().into(), format!("C{k}").as_str().into(), crate::pg::numeric::numeric(amount).into(),
                                          target.filter(|_| fits).map(|t| t.0).into()]).unwrap();
                        effects.push((d, -amount));
                        settlements.push(id.parse().unwrap());
                    }
                    Op::WriteOff { pick } => {
                        let Some((no, idate)) = invoices.get(pick % invoices.len().max(1)).cloned() else { continue };
                        let open = one("SELECT open_amount::text FROM credit.invoice WHERE customer = $1 AND doc_no = $2",
                                       vec![customer.as_str().into(), no.as_str().into()]).unwrap();
                        let open = Decimal::from_str(&open).unwrap();
                        if open.is_zero() { continue; }
                        let id = one(&format!("SELECT credit.write_off($1, $2, NULL, {})::text", date(day)),
                                     vec![customer.as_str().into(), no.as_str().into()]).unwrap();
                        effects.push((day.max(idate), -open));
                        settlements.push(id.parse().unwrap());
                    }
                    Op::Reverse { pick } => {
                        let Some(id) = settlements.get(pick % settlements.len().max(1)).copied() else { continue };
                        let row = one("SELECT amount::text || ' ' || kind || ' ' || (reversed_on IS NULL)::text FROM credit.settlement WHERE id = $1",
                                      vec![id.into()]).unwrap();
                        let parts: Vec<&str> = row.split(' ').collect();
                        if parts[1] == "cancellation" || parts[2] != "true" { continue; }
                        Spi::run_with_args(&format!("SELECT credit.reverse_settlement($1, 'test', {})", date(day)), &[id.into()]).unwrap();
                        effects.push((day, Decimal::from_str(parts[0]).unwrap()));
                    }
                    Op::Cancel { pick } => {
                        let Some((no, idate)) = invoices.get(pick % invoices.len().max(1)).cloned() else { continue };
                        let row = one("SELECT (open_amount = amount AND NOT disputed)::text || ' ' || amount::text FROM credit.invoice WHERE customer = $1 AND doc_no = $2",
                                      vec![customer.as_str().into(), no.as_str().into()]).unwrap();
                        let parts: Vec<&str> = row.split(' ').collect();
                        if parts[0] != "true" || idate > day { continue; }
                        Spi::run_with_args(&format!("SELECT credit.cancel_invoice($1, $2, 'test', {})", date(day)),
                                           &[customer.as_str().into(), no.as_str().into()]).unwrap();
                        effects.push((day, -Decimal::from_str(parts[1]).unwrap()));
                    }
                }
            }
            let balance = |d: i32| effects.iter().filter(|(e, _)| *e <= d).map(|(_, a)| *a).sum::<Decimal>();
            for (start, len) in periods {
                let end = start + len;
                let rows: Vec<(String, Decimal, Decimal, Decimal)> = Spi::connect(|c| {
                    c.select(
                        &format!("SELECT section, coalesce(debit, 0), coalesce(credit, 0), coalesce(balance, 0) \
                                  FROM credit.statement($1, {}, {})", date(start), date(end)),
                        None,
                        &[customer.as_str().into()],
                    )
                    .unwrap()
                    .map(|r| {
                        let dec = |i| Decimal::from_str(&r.get::<pgrx::AnyNumeric>(i).unwrap().unwrap().to_string()).unwrap();
                        (r.get::<String>(1).unwrap().unwrap(), dec(2), dec(3), dec(4))
                    })
                    .collect()
                });
                let of = |section: &str| rows.iter().filter(|r| r.0 == section).cloned().collect::<Vec<_>>();
                let opening = of("opening")[0].3;
                let closing = of("closing")[0].3;
                let activity = of("activity");
                let moved: Decimal = activity.iter().map(|r| r.1 - r.2).sum();
                let fail = |what: &str| Err(TestCaseError::fail(format!("{what}: ops {ops:?}, period {start}..{end}, rows {rows:?}")));
                if opening != balance(start - 1) {
                    return fail(&format!("opening {opening}, the oracle says {}", balance(start - 1)));
                }
                if closing != balance(end) {
                    return fail(&format!("closing {closing}, the oracle says {}", balance(end)));
                }
                if opening + moved != closing {
                    return fail("opening + debits - credits <> closing");
                }
                if activity.last().is_some_and(|r| r.3 != closing) {
                    return fail("the running balance does not end at the closing balance");
                }
                if of("open_item").iter().map(|r| r.3).sum::<Decimal>() != closing {
                    return fail("the open items do not add up to the closing balance");
                }
                if of("aging").iter().map(|r| r.3).sum::<Decimal>() != closing {
                    return fail("the aging does not add up to the closing balance");
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("a statement does not add up: {e}");
        }
    }

    /// Documents keyed in late: for random ledgers of invoices, payments and credit notes where a
    /// share of the documents is posted days or weeks after its date (so invoices consume money
    /// received after them, and payments settle invoices dated before them), every as-of figure
    /// equals a replay of the ledger by the documented rule: an application counts from the later
    /// of its settlement's and its invoice's dates. Checked on random days: each invoice's and each
    /// settlement's open amount in credit.aging, the balance, and each payment's days late in
    /// credit.payment_experience.
    #[pg_test]
    fn as_of_figures_replay_late_documents() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        use rust_decimal::Decimal;
        use std::collections::BTreeMap;
        use std::str::FromStr;

        #[derive(Debug, Clone)]
        enum Doc {
            Invoice { cents: i64, terms: i32 },
            Payment { cents: i64 },
            CreditNote { cents: i64 },
        }
        // (document, its day, days it is keyed in late: 0 for most)
        let doc = (
            prop_oneof![
                4 => (1..300_000i64, 0..60i32).prop_map(|(cents, terms)| Doc::Invoice { cents, terms }),
                3 => (1..250_000i64).prop_map(|cents| Doc::Payment { cents }),
                1 => (1..50_000i64).prop_map(|cents| Doc::CreditNote { cents }),
            ],
            0..200i32,
            prop_oneof![3 => Just(0i32), 1 => 1..45i32],
        );
        let strategy = (proptest::collection::vec(doc, 1..25), proptest::collection::vec(0..260i32, 1..5));
        let case_no = std::cell::Cell::new(0);
        let dec = |s: String| Decimal::from_str(&s).unwrap();
        let mut runner = TestRunner::new(Config { cases: 80, failure_persistence: None, ..Config::default() });
        let result = runner.run(&strategy, |(docs, days)| {
            case_no.set(case_no.get() + 1);
            let customer = format!("LD-{}", case_no.get());
            Spi::run_with_args("INSERT INTO credit.account (customer, credit_limit) VALUES ($1, 1000000)", &[customer.as_str().into()]).unwrap();
            let date = |d: i32| format!("(DATE '2025-01-01' + {d})");
            // Posting order: by the day each document is keyed in.
            let mut order: Vec<usize> = (0..docs.len()).collect();
            order.sort_by_key(|&k| (docs[k].1 + docs[k].2, k));
            for k in order {
                let (d, day, _) = &docs[k];
                match d {
                    Doc::Invoice { cents, terms } => {
                        Spi::run_with_args(
                            &format!("SELECT credit.post_invoice($1, $2, $3, {}, {} + $4)", date(*day), date(*day)),
                            &[customer.as_str().into(), format!("I{k}").as_str().into(),
                              crate::pg::numeric::numeric(Decimal::new(*cents, 2)).into(), (*terms).into()],
                        ).unwrap();
                    }
                    Doc::Payment { cents } => {
                        Spi::run_with_args(&format!("SELECT credit.post_payment($1, $2, {})", date(*day)),
                            &[customer.as_str().into(), crate::pg::numeric::numeric(Decimal::new(*cents, 2)).into()]).unwrap();
                    }
                    Doc::CreditNote { cents } => {
                        Spi::run_with_args(&format!("SELECT credit.post_credit_note($1, $2, $3, NULL, {})", date(*day)),
                            &[customer.as_str().into(), format!("C{k}").as_str().into(),
                              crate::pg::numeric::numeric(Decimal::new(*cents, 2)).into()]).unwrap();
                    }
                }
            }
            // The replay: documents with their days, and what was applied where; each application
            // dated by the rule, not by what the ledger stored.
            let rows = |sql: &str| -> Vec<Vec<Option<String>>> {
                Spi::connect(|c| {
                    c.select(sql, None, &[customer.as_str().into()]).unwrap()
                        .map(|r| (1..=r.columns()).map(|i| r.get::<String>(i).unwrap()).collect())
                        .collect()
                })
            };
            let invoices: BTreeMap<i64, (String, i32, i32, Decimal)> = rows(
                "SELECT id::text, doc_no, (doc_date - DATE '2025-01-01')::text, (due_date - DATE '2025-01-01')::text, amount::text \
                   FROM credit.invoice WHERE customer = $1")
                .into_iter()
                .map(|r| (r[0].clone().unwrap().parse().unwrap(),
                          (r[1].clone().unwrap(), r[2].clone().unwrap().parse().unwrap(), r[3].clone().unwrap().parse().unwrap(), dec(r[4].clone().unwrap()))))
                .collect();
            let settlements: BTreeMap<i64, (String, i32, Decimal)> = rows(
                "SELECT id::text, kind, (doc_date - DATE '2025-01-01')::text, amount::text FROM credit.settlement WHERE customer = $1")
                .into_iter()
                .map(|r| (r[0].clone().unwrap().parse().unwrap(),
                          (r[1].clone().unwrap(), r[2].clone().unwrap().parse().unwrap(), dec(r[3].clone().unwrap()))))
                .collect();
            let applications: Vec<(i64, i64, Decimal, i32)> = rows(
                "SELECT a.settlement_id::text, a.invoice_id::text, a.amount::text, (a.applied_on - DATE '2025-01-01')::text \
                   FROM credit.allocation a JOIN credit.invoice i ON i.id = a.invoice_id WHERE i.customer = $1")
                .into_iter()
                .map(|r| (r[0].clone().unwrap().parse().unwrap(), r[1].clone().unwrap().parse().unwrap(),
                          dec(r[2].clone().unwrap()), r[3].clone().unwrap().parse().unwrap()))
                .collect();
            let fail = |what: String| Err(TestCaseError::fail(format!("{what}: docs {docs:?}")));
            let mut dated: Vec<(i64, i64, Decimal, i32)> = Vec::new();
            for (sid, iid, amount, stored) in &applications {
                let rule = settlements[sid].1.max(invoices[iid].1);
                if *stored != rule {
                    return fail(format!("application of settlement {sid} to invoice {iid} dated day {stored}, the rule says day {rule}"));
                }
                dated.push((*sid, *iid, *amount, rule));
            }
            for day in days {
                // Open invoices by number; unapplied credit summed per (kind, day): two payments of
                // one day without a number are alike in the aging.
                let mut want: BTreeMap<String, Decimal> = BTreeMap::new();
                for (iid, (no, d, _, amount)) in &invoices {
                    if *d <= day {
                        let paid: Decimal = dated.iter().filter(|a| a.1 == *iid && a.3 <= day).map(|a| a.2).sum();
                        if *amount - paid != Decimal::ZERO {
                            want.insert(format!("invoice {no}"), *amount - paid);
                        }
                    }
                }
                for (sid, (kind, d, amount)) in &settlements {
                    if *d <= day {
                        let used: Decimal = dated.iter().filter(|a| a.0 == *sid && a.3 <= day).map(|a| a.2).sum();
                        if *amount - used != Decimal::ZERO {
                            *want.entry(format!("{kind} on day {d}")).or_default() -= *amount - used;
                        }
                    }
                }
                let mut got: BTreeMap<String, Decimal> = BTreeMap::new();
                for r in rows(&format!(
                    "SELECT CASE WHEN g.doc_type = 'invoice' THEN 'invoice ' || g.doc_no \
                                 ELSE g.doc_type || ' on day ' || (g.doc_date - DATE '2025-01-01') END, \
                            g.open_amount::text FROM credit.aging({}) g WHERE g.customer = $1", date(day)))
                {
                    *got.entry(r[0].clone().unwrap()).or_default() += dec(r[1].clone().unwrap());
                }
                if want != got {
                    return fail(format!("day {day}: the aging says {got:?}, the replay {want:?}"));
                }
            }
            // Days late of each payment application, as the replay dates it.
            let late: Vec<(String, i32)> = rows(
                "SELECT doc_no, days_late::text FROM credit.payment_experience WHERE customer = $1 ORDER BY doc_no, paid_on, days_late")
                .into_iter()
                .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap().parse().unwrap()))
                .collect();
            let mut want_late: Vec<(String, i32)> = dated.iter()
                .filter(|a| settlements[&a.0].0 == "payment")
                .map(|a| (invoices[&a.1].0.clone(), a.3 - invoices[&a.1].2))
                .collect();
            want_late.sort();
            let mut late_sorted = late.clone();
            late_sorted.sort();
            if late_sorted != want_late {
                return fail(format!("days late {late_sorted:?}, the replay says {want_late:?}"));
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("an as-of figure disagrees with the replay of late documents: {e}");
        }
    }
}
