//! Statements of account: the statement run that issues them (`credit.statement_run`, its work
//! in run.sql beside this file) and the document a person can send (`credit.statement_html`, laid
//! out by credit_core::statement). What a statement contains is SQL (sql/statements.sql,
//! `credit.statement`), the same for one customer and for a run.
use crate::pg::args;
use crate::pg::error::{self, Code, OrRaise, Required};
use crate::pg::numeric::{decimal, decimal_opt, numeric};
use crate::{policy, privileges};
use credit_core::statement::{self as document, Lang, Row, Statement};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;

/// Days a customer has to reply to the confirmation request printed on a statement.
const REPLY_DAYS: i32 = 14;

const CYCLES: [&str; 3] = ["weekly", "monthly", "quarterly"];

/// The statement cycles whose period ends on `day`: weekly on Sundays, monthly on a month's last
/// day, quarterly on a quarter's.
fn cycles_ending(c: &SpiClient<'_>, day: Date) -> Vec<String> {
    let t = c
        .select(
            "SELECT extract(isodow FROM $1::date) = 7, \
                    $1::date = (date_trunc('month', $1::date) + interval '1 month - 1 day')::date, \
                    $1::date = (date_trunc('quarter', $1::date) + interval '3 months - 1 day')::date",
            Some(1),
            &[day.into()],
        )
        .or_raise();
    let row = t.first();
    CYCLES
        .iter()
        .enumerate()
        .filter(|(i, _)| row.get::<bool>(i + 1).or_raise() == Some(true))
        .map(|(_, c)| c.to_string())
        .collect()
}

/// One run at a time: a second one waits, then finds the statements issued (once per customer
/// and period). The lock also keeps a statement from being issued twice.
fn lock_out_other_runs(c: &mut SpiClient<'_>) {
    c.update("LOCK TABLE credit.statement IN SHARE ROW EXCLUSIVE MODE", None, &[]).or_raise();
}

type Issued = (i64, String, String, Date, AnyNumeric, AnyNumeric, i64);

/// Issues the statements of every customer whose cycle ends on `period_end` (or of one cycle):
/// numbered, immutable, once per customer and period, each a statement_issued event for the audit
/// chain and the outbox. Customers with neither activity nor a balance, or a closing balance under
/// their minimum, get none. Returns the statements issued.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn statement_run(
    period_end: Option<Date>,
    cycle: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(statement_id, i64),
        name!(statement_no, String),
        name!(customer, String),
        name!(period_start, Date),
        name!(opening, AnyNumeric),
        name!(closing, AnyNumeric),
        name!(lines, i64),
    ),
> {
    crate::pg::citus::refuse_on_worker("A statement run");
    privileges::require("clerk", "issuing statements");
    let period_end = args::not_future(period_end, "period_end");
    let cycle = args::optional_text(cycle, "cycle");
    if let Some(c) = cycle {
        if !CYCLES.contains(&c) {
            error::invalid(format!("cycle is weekly, monthly or quarterly, not \"{c}\""))
        }
    }
    let issued: Vec<Issued> = Spi::connect_mut(|c| {
        let ending = cycles_ending(c, period_end);
        let due: Vec<String> = match cycle {
            Some(one) if ending.iter().any(|e| e == one) => vec![one.to_string()],
            Some(one) => error::raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{period_end} is not the last day of a {one} statement period"),
                None,
                Some(
                    "Weekly periods end on Sundays, monthly ones on a month's last day, quarterly ones on a quarter's.",
                ),
            ),
            None => ending,
        };
        if due.is_empty() {
            return vec![];
        }
        lock_out_other_runs(c);
        let (mut types, mut regions, mut cycles, mut minimums) = (vec![], vec![], vec![], vec![]);
        for (t, r, e) in policy::by_subject(c) {
            types.push(t);
            regions.push(r);
            cycles.push(e.statement_cycle);
            minimums.push(e.statement_min_balance.map(numeric));
        }
        let mut run = include_str!("run.sql").to_string();
        let mut args: Vec<pgrx::datum::DatumWithOid> =
            vec![period_end.into(), due.into(), types.into(), regions.into(), cycles.into(), minimums.into()];
        // On Citus the accounts are read first, by themselves: the run's statement then joins
        // only the coordinator's tables and their rows (Citus plans no join of a distributed
        // table with the coordinator's statement tables in a statement that writes them).
        if crate::pg::citus::distributed() {
            let (mut customers, mut currencies, mut kinds, mut places) = (vec![], vec![], vec![], vec![]);
            for r in c
                .select("SELECT customer, currency::text, customer_type, region FROM credit.account", None, &[])
                .or_raise()
            {
                customers.push(r.get::<String>(1).or_raise().required("customer"));
                currencies.push(r.get::<String>(2).or_raise());
                kinds.push(r.get::<String>(3).or_raise());
                places.push(r.get::<String>(4).or_raise());
            }
            const ACCOUNTS: &str = "FROM credit.account a\n";
            if !run.contains(ACCOUNTS) {
                error::missing("run.sql's read of the accounts (statement_run on Citus)")
            }
            run = run.replace(
                ACCOUNTS,
                "FROM unnest($7::text[], $8::text[], $9::text[], $10::text[]) AS a(customer, currency, customer_type, region)\n",
            );
            args.extend([customers.into(), currencies.into(), kinds.into(), places.into()]);
        }
        c.update(&run, None, &args)
            .or_raise()
            .map(|r| {
                (
                    r.get::<i64>(1).or_raise().required("statement id"),
                    r.get::<String>(2).or_raise().required("statement_no"),
                    r.get::<String>(3).or_raise().required("customer"),
                    r.get::<Date>(4).or_raise().required("period_start"),
                    r.get::<AnyNumeric>(5).or_raise().required("opening"),
                    r.get::<AnyNumeric>(6).or_raise().required("closing"),
                    r.get::<i64>(7).or_raise().required("lines"),
                )
            })
            .collect()
    });
    TableIterator::new(issued)
}

/// An issued statement, read for the document.
fn load(c: &SpiClient<'_>, id: i64) -> Option<(Statement, Lang)> {
    let t = c
        .select(
            "SELECT statement_no, customer, currency, to_char(period_start, 'YYYY-MM-DD'), to_char(period_end, 'YYYY-MM-DD'), \
                    to_char(issued_at, 'YYYY-MM-DD'), opening, debits, credits, closing, overdue, language \
               FROM credit.statement WHERE id = $1",
            Some(1),
            &[id.into()],
        )
        .or_raise();
    if t.is_empty() {
        return None;
    }
    let h = t.first();
    let num = |i: usize| decimal(&h.get::<AnyNumeric>(i).or_raise().required("statement total"));
    let lang: String = h.get(12).or_raise().required("statement language");
    let mut s = Statement {
        statement_no: h.get(1).or_raise().required("statement_no"),
        customer: h.get(2).or_raise().required("customer"),
        currency: h.get(3).or_raise(),
        period_start: h.get(4).or_raise().required("period_start"),
        period_end: h.get(5).or_raise().required("period_end"),
        issued_on: h.get(6).or_raise().required("issued_at"),
        opening: num(7),
        debits: num(8),
        credits: num(9),
        closing: num(10),
        overdue: num(11),
        reply_days: REPLY_DAYS,
        rows: vec![],
    };
    s.rows = c
        .select(
            "SELECT section, to_char(entry_date, 'YYYY-MM-DD'), kind, doc_no, detail, debit, credit, applied, balance, \
                    to_char(due_date, 'YYYY-MM-DD'), days, bucket, promised_amount, to_char(promised_date, 'YYYY-MM-DD'), \
                    to_char(disputed_since, 'YYYY-MM-DD') \
               FROM credit.statement_line WHERE statement_id = $1 \
              ORDER BY array_position(ARRAY['opening', 'activity', 'closing', 'open_item', 'aging', 'interest'], section), line",
            None,
            &[id.into()],
        )
        .or_raise()
        .map(|r| {
            let num = |i: usize| decimal_opt(r.get::<AnyNumeric>(i).or_raise());
            Row {
                section: r.get(1).or_raise().required("section"),
                entry_date: r.get(2).or_raise(),
                kind: r.get(3).or_raise(),
                doc_no: r.get(4).or_raise(),
                detail: r.get(5).or_raise(),
                debit: num(6),
                credit: num(7),
                applied: num(8),
                balance: num(9),
                due_date: r.get(10).or_raise(),
                days: r.get(11).or_raise(),
                bucket: r.get(12).or_raise(),
                promised_amount: num(13),
                promised_date: r.get(14).or_raise(),
                disputed_since: r.get(15).or_raise(),
            }
        })
        .collect();
    Some((s, Lang::parse(&lang).unwrap_or(Lang::Zh)))
}

/// An issued statement as a self-contained, printable HTML page (A4), in the statement's language
/// or the one asked for ('zh', 'en'), with the confirmation reply instructions.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn statement_html(statement_id: Option<i64>, lang: default!(Option<&str>, "NULL")) -> String {
    let Some(id) = statement_id else { error::null_arg("statement_id") };
    let asked = args::optional_text(lang, "lang")
        .map(|l| Lang::parse(l).unwrap_or_else(|| error::invalid(format!("lang is 'zh' or 'en', not \"{l}\""))));
    let Some((s, own)) = Spi::connect(|c| load(c, id)) else {
        error::raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("statement {id} does not exist"),
            None,
            Some("credit.statement lists issued statements."),
        )
    };
    document::render_html(&s, asked.unwrap_or(own))
}
