//! The credit manager's morning page (`credit.portfolio_html`): what changed since yesterday, who
//! is over or near the limit, what is overdue, what the dunning ladder does today, with the
//! portfolio's charts. Figures come from the credit history (credit.history and
//! credit.portfolio_history, as the daily job records them), the collection worklist and the
//! ladder's own step (read, not run).
use crate::collections::ladder;
use crate::pages;
use crate::pg::args;
use crate::pg::error::{OrRaise, Required};
use crate::pg::numeric::decimal;
use credit_core::chart::{self, Series};
use credit_core::statement::amount;
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Sum of the portfolio on a day and the day before.
const TOTALS: &str = "\
SELECT p.day = $1, sum(p.customers)::bigint, sum(p.credit_limit), sum(p.open_ar) - sum(p.unapplied_credit), \
       CASE WHEN count(p.exposure) = count(*) THEN sum(p.exposure) END, sum(p.overdue), \
       sum(p.over_limit)::bigint, sum(p.near_limit)::bigint \
  FROM credit.portfolio_history p WHERE p.day IN ($1, $1 - 1) GROUP BY p.day ORDER BY p.day";

/// Customers whose history changed on the day, beside the figures of the day before.
const CHANGES: &str = "\
SELECT t.customer, y.customer IS NULL, y.credit_limit, t.credit_limit, y.status, t.status, y.grade, t.grade, \
       y.utilization, t.utilization, y.overdue, t.overdue, y.dunning_level, t.dunning_level, y.source \
  FROM credit.history t \
  LEFT JOIN credit.history y ON y.customer = t.customer AND y.valid_until = $1 \
 WHERE t.valid_from = $1 \
 ORDER BY t.customer";

/// The history rows in force on the day.
const IN_FORCE: &str = "credit.history h WHERE h.valid_from <= $1 AND (h.valid_until IS NULL OR h.valid_until > $1)";

/// Month-ends of the year before the day, and the day itself: overdue and open receivables from
/// the portfolio history, and credit sales of each month (at most 30 days) up to that day —
/// invoices less credit notes and cancellations, as credit.dso counts them — read in one pass.
const TREND: &str = "\
WITH d AS (SELECT DISTINCT x.day FROM (SELECT (date_trunc('month', g) + interval '1 month - 1 day')::date AS day \
                                         FROM generate_series($1 - 365, $1 - 1, interval '1 month') g \
                                       UNION ALL SELECT $1) x WHERE x.day <= $1), \
p AS (SELECT d.day, greatest(date_trunc('month', d.day)::date, d.day - 29) AS start FROM d), \
daily AS (SELECT i.doc_date AS day, sum(i.amount) AS amount FROM credit.invoice i \
           WHERE i.doc_date BETWEEN $1 - 400 AND $1 GROUP BY 1 \
          UNION ALL \
          SELECT s.doc_date, -sum(s.amount) FROM credit.settlement s \
           WHERE s.kind IN ('credit_note', 'cancellation') AND s.reversed_on IS NULL AND s.doc_date BETWEEN $1 - 400 AND $1 \
           GROUP BY 1) \
SELECT to_char(p.day, 'YYYY-MM-DD'), sum(h.overdue), sum(h.open_ar), \
       (SELECT coalesce(sum(x.amount), 0) FROM daily x WHERE x.day BETWEEN p.start AND p.day), (p.day - p.start + 1)::int \
  FROM p JOIN credit.portfolio_history h ON h.day = p.day GROUP BY p.day, p.start ORDER BY p.day";

/// The collection worklist (credit.collection_worklist's rows) by level.
const WORKLIST: &str = "\
SELECT t.level, count(*), sum(i.open_amount) FROM credit.collection_task t \
  JOIN credit.invoice i ON i.customer = t.customer AND i.id = t.invoice_id \
 WHERE t.status = 'open' AND i.open_amount > 0 AND t.level IS NOT NULL GROUP BY t.level ORDER BY t.level";

/// Tasks the ladder created for the day (its run done), not superseded at once.
const LADDER_DONE: &str = "\
SELECT t.customer, t.doc_no, t.level, t.action, t.channel, t.open_amount FROM credit.collection_task t \
 WHERE t.created_for = $1 AND t.level IS NOT NULL AND t.status <> 'superseded' ORDER BY t.customer, t.doc_no, t.level";

struct L {
    zh: bool,
}

impl L {
    fn t(&self, zh: &'static str, en: &'static str) -> &'static str {
        if self.zh {
            zh
        } else {
            en
        }
    }
}

fn n(r: &pgrx::spi::SpiHeapTupleData<'_>, i: usize) -> Option<Decimal> {
    r.get::<AnyNumeric>(i).or_raise().map(|x| decimal(&x))
}

fn opt(d: Option<Decimal>) -> String {
    d.map(amount).unwrap_or_default()
}

fn percent(d: Option<Decimal>) -> String {
    d.map(|u| format!("{}%", (u * Decimal::ONE_HUNDRED).round_dp(1))).unwrap_or_default()
}

/// The credit manager's morning page for a day (today by default), Chinese by default or English.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn portfolio_html(as_of: default!(Option<Date>, "CURRENT_DATE"), lang: default!(Option<&str>, "'zh'")) -> String {
    crate::pg::citus::refuse_on_worker("The morning page");
    let as_of = args::not_future(as_of, "as_of");
    let lang = pages::language(lang);
    let l = L { zh: lang == "zh" };
    let day = as_of.to_string();
    let mut out = String::new();
    let title = format!("{} {day}", l.t("信用管理晨报", "Credit morning page"));
    pages::open(&mut out, lang, &title, &title);
    Spi::connect(|c| {
        totals(c, as_of, &l, &mut out);
        changes(c, as_of, &l, &mut out);
        limits(c, as_of, &l, &mut out);
        overdue(c, as_of, &l, &mut out);
        aging_by(c, as_of, "region", &l, &mut out);
        aging_by(c, as_of, "customer_type", &l, &mut out);
        ladder_today(c, as_of, &l, &mut out);
    });
    out.push_str("</body></html>");
    out
}

fn totals(c: &SpiClient<'_>, as_of: Date, l: &L, out: &mut String) {
    let mut today: Option<Vec<String>> = None;
    let mut yesterday: Option<Vec<String>> = None;
    for r in c.select(TOTALS, None, &[as_of.into()]).or_raise() {
        let row = vec![
            r.get::<i64>(2).or_raise().unwrap_or(0).to_string(),
            opt(n(&r, 3)),
            opt(n(&r, 4)),
            opt(n(&r, 5)),
            opt(n(&r, 6)),
            r.get::<i64>(7).or_raise().unwrap_or(0).to_string(),
            r.get::<i64>(8).or_raise().unwrap_or(0).to_string(),
        ];
        if r.get::<bool>(1).or_raise().unwrap_or(false) {
            today = Some(row);
        } else {
            yesterday = Some(row);
        }
    }
    pages::heading(out, l.t("概览", "The portfolio"));
    let Some(today) = today else {
        pages::note(
            out,
            l.t(
                "该日尚无信用历史：每日作业 credit.run_daily 记录当日，credit.backfill_history 回填过去。",
                "No credit history for this day: the daily job (credit.run_daily) records it, credit.backfill_history rebuilds past days.",
            ),
        );
        return;
    };
    let names = [
        l.t("客户数", "customers"),
        l.t("额度合计", "limits"),
        l.t("应收减未核销", "receivables less unapplied"),
        l.t("敞口", "exposure"),
        l.t("逾期", "overdue"),
        l.t("超额客户", "over the limit"),
        l.t("接近额度客户", "near the limit"),
    ];
    let rows: Vec<Vec<String>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            vec![name.to_string(), today[i].clone(), yesterday.as_ref().map(|y| y[i].clone()).unwrap_or_default()]
        })
        .collect();
    pages::table(out, "totals", &["", l.t("今日", "today"), l.t("昨日", "yesterday")], &[false, true, true], &rows);
}

fn changes(c: &SpiClient<'_>, as_of: Date, l: &L, out: &mut String) {
    let mut rows: Vec<(u8, Vec<String>)> = Vec::new();
    for r in c.select(CHANGES, None, &[as_of.into()]).or_raise() {
        let customer = r.get::<String>(1).or_raise().required("customer");
        let new = r.get::<bool>(2).or_raise().unwrap_or(false);
        let (lim0, lim1) = (n(&r, 3), n(&r, 4));
        let (st0, st1): (Option<String>, Option<String>) = (r.get(5).or_raise(), r.get(6).or_raise());
        let (gr0, gr1): (Option<String>, Option<String>) = (r.get(7).or_raise(), r.get(8).or_raise());
        let (u0, u1) = (n(&r, 9), n(&r, 10));
        let (od0, od1) = (n(&r, 11).unwrap_or_default(), n(&r, 12).unwrap_or_default());
        let (lv0, lv1): (Option<i32>, Option<i32>) = (r.get(13).or_raise(), r.get(14).or_raise());
        let mut what: Vec<String> = Vec::new();
        let mut rank = 9u8;
        let over = |u: Option<Decimal>| u.is_some_and(|u| u > Decimal::ONE);
        if new {
            what.push(l.t("新客户", "new customer").to_string());
            rank = rank.min(5);
        }
        if !new && over(u1) && !over(u0) {
            what.push(format!("{} ({})", l.t("超出额度", "now over the limit"), percent(u1)));
            rank = 0;
        }
        // A figure the day before did not know (a backfilled day has no dunning level; a grade
        // set for the first time) is not a change to report.
        if !new && st0.is_some() && st0 != st1 {
            what.push(format!("{} {} → {}", l.t("状态", "status"), st0.unwrap_or_default(), st1.unwrap_or_default()));
            rank = rank.min(1);
        }
        if !new && gr0.is_some() && gr0 != gr1 {
            what.push(format!("{} {} → {}", l.t("等级", "grade"), gr0.unwrap_or_default(), gr1.unwrap_or_default()));
            rank = rank.min(2);
        }
        if !new && lim0 != lim1 {
            what.push(format!("{} {} → {}", l.t("额度", "limit"), opt(lim0), opt(lim1)));
            rank = rank.min(3);
        }
        if !new && od0.is_zero() && od1 > Decimal::ZERO {
            what.push(format!("{} {}", l.t("新逾期", "newly overdue"), amount(od1)));
            rank = rank.min(4);
        }
        let recorded = r.get::<String>(15).or_raise().as_deref() == Some("recorded");
        if !new && recorded && lv1.unwrap_or(0) > lv0.unwrap_or(0) {
            what.push(format!("{} {} → {}", l.t("催收级别", "dunning level"), lv0.unwrap_or(0), lv1.unwrap_or(0)));
            rank = rank.min(4);
        }
        if !what.is_empty() {
            rows.push((rank, vec![customer, what.join("; ")]));
        }
    }
    pages::heading(out, l.t("自昨日以来的变化", "What changed since yesterday"));
    if rows.is_empty() {
        pages::note(
            out,
            l.t(
                "无额度、状态、等级、超额、逾期或催收级别的变化。",
                "No change of limit, status, grade, over-limit, overdue or dunning level.",
            ),
        );
        return;
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1[0].cmp(&b.1[0])));
    let shown: Vec<Vec<String>> = rows.iter().take(LISTED).map(|r| r.1.clone()).collect();
    pages::table(out, "changes", &[l.t("客户", "customer"), l.t("变化", "change")], &[false, false], &shown);
    more(out, rows.len(), l);
}

/// Rows a list shows; the rest are counted.
const LISTED: usize = 20;

fn more(out: &mut String, total: usize, l: &L) {
    if total > LISTED {
        pages::note(out, &format!("{} {}", total - LISTED, l.t("项未列出。", "more not listed.")));
    }
}

fn limits(c: &SpiClient<'_>, as_of: Date, l: &L, out: &mut String) {
    // Every customer at 80 % or more, and at least ten: counted first (Citus takes no subquery in
    // the LIMIT of a query over every shard).
    let near = c
        .select(&format!("SELECT count(*) FROM {IN_FORCE} AND h.utilization >= 0.8"), Some(1), &[as_of.into()])
        .or_raise()
        .first()
        .get_one::<i64>()
        .or_raise()
        .unwrap_or(0);
    let rows: Vec<(String, Option<Decimal>, Decimal, Decimal, String)> = c
        .select(
            &format!(
                "SELECT h.customer, h.credit_limit, coalesce(h.exposure, h.open_ar - h.unapplied_credit), h.utilization, h.status \
                   FROM {IN_FORCE} AND h.utilization IS NOT NULL \
                  ORDER BY h.utilization DESC, h.customer LIMIT $2"
            ),
            None,
            &[as_of.into(), near.max(10).into()],
        )
        .or_raise()
        .map(|r| {
            (
                r.get::<String>(1).or_raise().required("customer"),
                n(&r, 2),
                n(&r, 3).unwrap_or_default(),
                n(&r, 4).unwrap_or_default(),
                r.get::<String>(5).or_raise().unwrap_or_default(),
            )
        })
        .collect();
    let title = l.t("最接近或超出额度的客户", "Customers nearest or over their limits");
    pages::heading(out, title);
    if rows.is_empty() {
        pages::note(out, l.t("该日无有额度的客户历史。", "No customer with a limit has history on this day."));
        return;
    }
    let bars: Vec<(String, Decimal)> =
        rows.iter().take(10).map(|r| (r.0.clone(), (r.3 * Decimal::ONE_HUNDRED).round_dp(1))).collect();
    out.push_str(&chart::horizontal_bars(
        title,
        l.t(
            "条形图：额度使用率最高的十位客户（占用/额度，%），虚线为100%；下表列出使用率80%及以上的客户。",
            "Bar chart: the ten customers using the largest share of their limits (used / limit, %), the dashed line at 100 %; the table below lists those at 80 % or more.",
        ),
        l.t("额度使用率 %", "utilization %"),
        &bars,
        Some(Decimal::ONE_HUNDRED),
    ));
    let near: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| r.3 >= Decimal::new(8, 1))
        .map(|r| vec![r.0.clone(), opt(r.1), amount(r.2), percent(Some(r.3)), r.4.clone()])
        .collect();
    if near.is_empty() {
        pages::note(out, l.t("无客户使用额度达80%。", "No customer uses 80 % of its limit or more."));
    } else {
        pages::table(
            out,
            "near-limit",
            &[
                l.t("客户", "customer"),
                l.t("额度", "limit"),
                l.t("占用", "used"),
                l.t("使用率", "utilization"),
                l.t("状态", "status"),
            ],
            &[false, true, true, true, false],
            &near[..near.len().min(LISTED)],
        );
        more(out, near.len(), l);
    }
}

fn overdue(c: &SpiClient<'_>, as_of: Date, l: &L, out: &mut String) {
    let title = l.t("逾期", "What is overdue");
    pages::heading(out, title);
    let rows: Vec<Vec<String>> = c
        .select(
            &format!(
                "SELECT h.customer, h.overdue, h.open_ar, $1 - h.oldest_overdue_due, h.dunning_level, h.status \
                   FROM {IN_FORCE} AND h.overdue > 0 ORDER BY h.overdue DESC, h.customer"
            ),
            None,
            &[as_of.into()],
        )
        .or_raise()
        .map(|r| {
            vec![
                r.get::<String>(1).or_raise().required("customer"),
                opt(n(&r, 2)),
                opt(n(&r, 3)),
                r.get::<i32>(4).or_raise().map(|d| d.to_string()).unwrap_or_default(),
                r.get::<i32>(5).or_raise().map(|d| d.to_string()).unwrap_or_default(),
                r.get::<String>(6).or_raise().unwrap_or_default(),
            ]
        })
        .collect();
    // DSO as credit.dso computes it: receivables at the day / credit sales of the period x its days.
    let trend: Vec<(String, Decimal, Option<Decimal>)> = c
        .select(TREND, None, &[as_of.into()])
        .or_raise()
        .map(|r| {
            let days = Decimal::from(r.get::<i32>(5).or_raise().unwrap_or(0));
            let dso = credit_core::metrics::dso(n(&r, 3).unwrap_or_default(), n(&r, 4).unwrap_or_default(), days)
                .map(|d| d.round_dp(4));
            (r.get::<String>(1).or_raise().required("day"), n(&r, 2).unwrap_or_default(), dso)
        })
        .collect();
    if !trend.is_empty() {
        let x = |d: &String| d.get(5..).unwrap_or(d).to_string();
        let t1 = l.t("逾期金额走势（月末）", "Overdue amount at month-ends");
        out.push_str(&chart::line_chart(
            t1,
            l.t("折线图：近12个月各月末及当日的逾期应收合计；下表列出相同数字。", "Line chart: overdue receivables at each month-end of the last 12 months and on the day; the table below lists the same figures."),
            l.t("金额", "amount"),
            l.t("日期", "day"),
            &[Series { name: l.t("逾期", "overdue"), points: trend.iter().map(|t| (x(&t.0), t.1)).collect() }],
        ));
        let dso: Vec<(String, Decimal)> = trend.iter().filter_map(|t| t.2.map(|d| (x(&t.0), d))).collect();
        if !dso.is_empty() {
            let t2 = l.t("应收账款周转天数 (DSO) 走势", "DSO over time");
            out.push_str(&chart::line_chart(
                t2,
                l.t("折线图：各月（最长30天）的应收账款周转天数；下表列出相同数字。", "Line chart: days sales outstanding of each month (at most 30 days) to the month-end or the day; the table below lists the same figures."),
                l.t("天数", "days"),
                l.t("日期", "day"),
                &[Series { name: "DSO", points: dso }],
            ));
        }
        let table: Vec<Vec<String>> = trend
            .iter()
            .map(|t| vec![t.0.clone(), amount(t.1), t.2.map(|d| format!("{:.1}", d.round_dp(1))).unwrap_or_default()])
            .collect();
        pages::table(out, "trend", &[l.t("日期", "day"), l.t("逾期", "overdue"), "DSO"], &[false, true, true], &table);
    }
    if rows.is_empty() {
        pages::note(out, l.t("该日无逾期。", "Nothing overdue on this day."));
    } else {
        pages::table(
            out,
            "overdue",
            &[
                l.t("客户", "customer"),
                l.t("逾期", "overdue"),
                l.t("应收", "receivables"),
                l.t("最早逾期天数", "oldest days past due"),
                l.t("催收级别", "dunning level"),
                l.t("状态", "status"),
            ],
            &[false, true, true, true, true, false],
            &rows[..rows.len().min(LISTED)],
        );
        more(out, rows.len(), l);
    }
}

fn aging_by(c: &SpiClient<'_>, as_of: Date, dimension: &str, l: &L, out: &mut String) {
    let bars: Vec<(String, Vec<Decimal>)> = c
        .select(
            &format!(
                "SELECT coalesce(p.{dimension}, '—'), sum(p.not_due), sum(p.days_1_30), sum(p.days_31_60), sum(p.days_61_90), \
                        sum(p.over_90 + p.later_buckets) \
                   FROM credit.portfolio_daily p WHERE p.day = $1 GROUP BY 1 ORDER BY 1"
            ),
            None,
            &[as_of.into()],
        )
        .or_raise()
        .map(|r| {
            (
                r.get::<String>(1).or_raise().required(dimension),
                (2..=6).map(|i| n(&r, i).unwrap_or_default()).collect(),
            )
        })
        .collect();
    if bars.is_empty() {
        return;
    }
    let (title, x) = if dimension == "region" {
        (l.t("按地区的账龄", "Aging by region"), l.t("地区", "region"))
    } else {
        (l.t("按客户类型的账龄", "Aging by customer type"), l.t("客户类型", "customer type"))
    };
    let parts = [
        l.t("未到期", "not due"),
        l.t("1-30天", "1-30"),
        l.t("31-60天", "31-60"),
        l.t("61-90天", "61-90"),
        l.t("90天以上", "over 90"),
    ];
    pages::heading(out, title);
    out.push_str(&chart::stacked_bars(
        title,
        l.t("堆叠柱状图：该日各组按账龄区间的未收金额；下表列出相同数字。", "Stacked bars: open receivables per aging bucket of each group on the day; the table below lists the same figures."),
        l.t("金额", "amount"),
        x,
        &parts,
        &bars,
    ));
    let rows: Vec<Vec<String>> = bars
        .iter()
        .map(|(k, v)| {
            let mut r = vec![k.clone()];
            r.extend(v.iter().map(|d| amount(*d)));
            r
        })
        .collect();
    let mut header = vec![x];
    header.extend(parts);
    pages::table(out, &format!("aging-{dimension}"), &header, &[false, true, true, true, true, true], &rows);
}

/// Invoices, customers and amount of a (level, action, channel, state) of the ladder's day.
type LadderGroup = (i64, std::collections::BTreeSet<String>, Decimal);

fn ladder_today(c: &SpiClient<'_>, as_of: Date, l: &L, out: &mut String) {
    let title = l.t("催收工作清单（按级别）", "The collection worklist by level");
    let worklist: Vec<(i32, i64, Decimal)> = c
        .select(WORKLIST, None, &[])
        .or_raise()
        .map(|r| {
            (
                r.get::<i32>(1).or_raise().required("level"),
                r.get::<i64>(2).or_raise().unwrap_or(0),
                n(&r, 3).unwrap_or_default(),
            )
        })
        .collect();
    let done: Vec<ladder::PlannedTask> = c
        .select(LADDER_DONE, None, &[as_of.into()])
        .or_raise()
        .map(|r| {
            (
                r.get::<String>(1).or_raise().required("customer"),
                r.get::<String>(2).or_raise().required("doc_no"),
                r.get::<i32>(3).or_raise().required("level"),
                r.get::<String>(4).or_raise().required("action"),
                r.get::<String>(5).or_raise().required("channel"),
                r.get::<AnyNumeric>(6).or_raise().required("open amount"),
            )
        })
        .collect();
    let planned = if as_of == args::today() { ladder::preview(c, as_of) } else { Vec::new() };
    // Per level: the worklist's open amount, and today's new tasks (done or to do).
    let mut by_level: BTreeMap<i32, (Decimal, Decimal)> = BTreeMap::new();
    for w in &worklist {
        by_level.entry(w.0).or_default().0 += w.2;
    }
    for t in done.iter().chain(planned.iter()) {
        by_level.entry(t.2).or_default().1 += decimal(&t.5);
    }
    pages::heading(out, title);
    if !by_level.is_empty() {
        let bars: Vec<(String, Vec<Decimal>)> =
            by_level.iter().map(|(lv, (w, t))| (format!("L{lv}"), vec![*w, *t])).collect();
        out.push_str(&chart::stacked_bars(
            title,
            l.t(
                "堆叠柱状图：各催收级别当前工作清单中的未收金额，以及今日新任务（已建或将建）的金额；下表列出相同数字。",
                "Stacked bars: per dunning level, the open amount of the worklist now and of today's new tasks (created, or to be created by the ladder); the tables below list the same figures.",
            ),
            l.t("金额", "amount"),
            l.t("级别", "level"),
            &[l.t("工作清单", "worklist"), l.t("今日新任务", "new today")],
            &bars,
        ));
        let rows: Vec<Vec<String>> =
            worklist.iter().map(|w| vec![format!("L{}", w.0), w.1.to_string(), amount(w.2)]).collect();
        pages::table(
            out,
            "worklist",
            &[l.t("级别", "level"), l.t("任务", "tasks"), l.t("未收金额", "open amount")],
            &[false, true, true],
            &rows,
        );
    }
    pages::heading(out, l.t("今日催收阶梯", "What the dunning ladder does today"));
    if done.is_empty() && planned.is_empty() {
        pages::note(out, l.t("今日没有发票达到新的催收级别。", "No invoice reaches a new dunning level today."));
        return;
    }
    // Per level, action, channel and state: invoices, customers, amount.
    let mut groups: BTreeMap<(i32, String, String, &str), LadderGroup> = BTreeMap::new();
    let states = [(l.t("已建", "created"), &done), (l.t("将建", "to do"), &planned)];
    for (state, tasks) in states {
        for t in tasks.iter() {
            let g = groups.entry((t.2, t.3.clone(), t.4.clone(), state)).or_default();
            g.0 += 1;
            g.1.insert(t.0.clone());
            g.2 += decimal(&t.5);
        }
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|((lv, action, channel, state), (k, customers, amt))| {
            vec![
                format!("L{lv}"),
                action.clone(),
                channel.clone(),
                state.to_string(),
                k.to_string(),
                customers.len().to_string(),
                amount(*amt),
            ]
        })
        .collect();
    pages::table(
        out,
        "ladder",
        &[
            l.t("级别", "level"),
            l.t("动作", "action"),
            l.t("渠道", "channel"),
            l.t("状态", "state"),
            l.t("发票", "invoices"),
            l.t("客户", "customers"),
            l.t("金额", "amount"),
        ],
        &[false, false, false, false, true, true, true],
        &rows,
    );
}
