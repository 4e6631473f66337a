//! The credit file as a page (`credit.file_html`): the figures of `credit.file` and the customer's
//! history drawn as charts, for a credit controller about to approve an order or a limit.
use crate::pages;
use crate::pg::args;
use crate::pg::error::{OrRaise, Required};
use crate::pg::numeric::decimal;
use credit_core::chart::{self, Mark, Series};
use credit_core::statement::{amount, escape};
use pgrx::prelude::*;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;
use std::fmt::Write;

struct Labels {
    title: &'static str,
    figures: &'static str,
    exposure_title: &'static str,
    exposure_desc: &'static str,
    used: &'static str,
    limit: &'static str,
    temporary: &'static str,
    account_hold: &'static str,
    orders_held: &'static str,
    aging_title: &'static str,
    aging_desc: &'static str,
    score_title: &'static str,
    score_desc: &'static str,
    score: &'static str,
    today: &'static str,
    late_title: &'static str,
    late_desc: &'static str,
    days: &'static str,
    amount: &'static str,
    month: &'static str,
    day: &'static str,
    columns: [&'static str; 8],
    score_columns: [&'static str; 3],
    late_columns: [&'static str; 3],
    marks_columns: [&'static str; 4],
    no_history: &'static str,
    no_payments: &'static str,
}

fn labels(lang: &str) -> Labels {
    if lang == "en" {
        Labels {
            title: "Credit file",
            figures: "Key figures",
            exposure_title: "Credit used against the limit, month-ends of the last 12 months and today",
            exposure_desc: "Line chart: credit used (exposure, or receivables less unapplied credit where open orders are unknown) and the limit in force at each month-end and today; dashed lines mark months with a temporary limit, the account on hold or orders held; the tables below list the same figures.",
            used: "used",
            limit: "limit",
            temporary: "temporary limit",
            account_hold: "account on hold",
            orders_held: "orders held",
            aging_title: "Aging mix at month-ends and today",
            aging_desc: "Stacked bars: open receivables per aging bucket at each month-end and today; the table below lists the same figures.",
            score_title: "Score and grade over time",
            score_desc: "Line chart: the credit score at each recorded change of the last 12 months and today, with the grade above each point; the table below lists the same figures.",
            score: "score",
            today: "now",
            late_title: "Days late by month of payment",
            late_desc: "Line chart: days late weighted by amount of the payments of each month of the last 12 months (negative: early); the table below lists the same figures.",
            days: "days",
            amount: "amount",
            month: "month-end, today",
            day: "day",
            columns: ["Day", "Limit", "Used", "Not due", "1-30", "31-60", "61-90", "Over 90"],
            score_columns: ["Day", "Score", "Grade"],
            late_columns: ["Month", "Weighted days late", "Payments"],
            marks_columns: ["Day", "Temporary limit", "Account on hold", "Orders held"],
            no_history: "No history recorded or rebuilt yet (credit.backfill_history).",
            no_payments: "No payments in the last 12 months.",
        }
    } else {
        Labels {
            title: "客户信用档案",
            figures: "关键指标",
            exposure_title: "近12个月月末及今日信用占用与额度",
            exposure_desc: "折线图：各月末的信用占用（敞口；未知未结订单时为应收减未核销款）与当时有效额度（及今日）；虚线标出有临时额度、账户暂停或订单暂挂的月份；下表列出相同数字。",
            used: "占用",
            limit: "额度",
            temporary: "临时额度",
            account_hold: "账户暂停",
            orders_held: "订单暂挂",
            aging_title: "月末及今日账龄结构",
            aging_desc: "堆叠柱状图：各月末及今日按账龄区间的未收金额；下表列出相同数字。",
            score_title: "信用评分与等级走势",
            score_desc: "折线图：近12个月每次记录的评分变化及今日评分，点上方为信用等级；下表列出相同数字。",
            score: "评分",
            today: "当前",
            late_title: "按付款月份的逾期天数",
            late_desc: "折线图：近12个月各月付款按金额加权的逾期天数（负数为提前）；下表列出相同数字。",
            days: "天数",
            amount: "金额",
            month: "月末、今日",
            day: "日期",
            columns: ["日期", "额度", "占用", "未到期", "1-30天", "31-60天", "61-90天", "90天以上"],
            score_columns: ["日期", "评分", "等级"],
            late_columns: ["月份", "加权逾期天数", "付款笔数"],
            marks_columns: ["日期", "临时额度", "账户暂停", "订单暂挂"],
            no_history: "尚无历史记录（可用 credit.backfill_history 回填）。",
            no_payments: "近12个月无付款。",
        }
    }
}

/// One month-end of history: day, limit, used, the five buckets (the fifth with any later ones),
/// and what happened in the month: a temporary limit in force, the account on hold, orders held.
struct MonthRow {
    day: String,
    limit: Option<Decimal>,
    used: Decimal,
    buckets: [Decimal; 5],
    temporary: bool,
    account_hold: bool,
    orders_held: i64,
}

/// The month-ends of the year before today and today, those with history, with their figures; a
/// day's marks cover its month up to that day.
const MONTHS: &str = "\
WITH m AS (SELECT DISTINCT x.day \
             FROM (SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date AS day \
                     FROM generate_series(current_date - 365, current_date - 1, interval '1 month') d \
                   UNION ALL SELECT current_date) x \
            WHERE x.day <= current_date), \
days AS (SELECT m.day AS month_end, bool_or(h.temporary_limit) AS temporary, bool_or(h.status = 'hold') AS account_hold \
           FROM m JOIN credit.customer_history_daily h ON h.customer = $1 \
                   AND h.day BETWEEN date_trunc('month', m.day)::date AND m.day \
          GROUP BY m.day) \
SELECT to_char(h.day, 'YYYY-MM-DD'), h.credit_limit, coalesce(h.exposure, h.open_ar - h.unapplied_credit), \
       h.not_due, h.days_1_30, h.days_31_60, h.days_61_90, h.over_90 + h.later_buckets, \
       coalesce(days.temporary, false), coalesce(days.account_hold, false), \
       (SELECT count(*) FROM credit.order_hold o WHERE o.customer = $1 \
           AND o.held_at >= date_trunc('month', h.day) AND o.held_at < h.day + 1) \
  FROM credit.customer_history_daily h LEFT JOIN days ON days.month_end = h.day \
 WHERE h.customer = $1 AND h.day IN (SELECT m.day FROM m) \
 ORDER BY h.day";

/// Days late per month of payment, the last 12 months (the experiences the score counts).
const DAYS_LATE: &str = "\
SELECT to_char(date_trunc('month', e.paid_on), 'YYYY-MM'), credit.weighted_days_late(e.days_late, e.amount), count(*) \
  FROM credit.days_late_experience e \
 WHERE e.customer = $1 AND e.paid_on > current_date - 365 AND e.paid_on <= current_date \
 GROUP BY 1 ORDER BY 1";

/// The credit file of a customer as a self-contained page (Chinese by default, or English): the
/// key figures of `credit.file`; credit used against the limit (temporary limits and holds
/// marked), the aging mix, score and grade, and days late over the last 12 months as SVG charts,
/// with the same figures in tables under them.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn file_html(customer: Option<&str>, lang: default!(Option<&str>, "'zh'")) -> String {
    crate::pg::citus::refuse_on_worker("The credit file");
    let customer = args::text(customer, "customer");
    let lang = pages::language(lang);
    let l = labels(lang);
    // On Citus, the view of the coordinator's basis by name: the workers do not see this
    // session's setting, and Citus routes a query over one view with the customer to its node
    // (the union of both views it would gather from every node).
    let late_query = if crate::pg::citus::distributed() {
        DAYS_LATE.replace("credit.days_late_experience", crate::pg::settings::days_late_view())
    } else {
        DAYS_LATE.to_string()
    };
    let (file, months, late) = Spi::connect(|c| {
        let file: pgrx::JsonB = c
            .select("SELECT credit.file($1)", Some(1), &[customer.into()])
            .or_raise()
            .first()
            .get_one()
            .or_raise()
            .required("credit file");
        let months: Vec<MonthRow> = c
            .select(MONTHS, None, &[customer.into()])
            .or_raise()
            .map(|r| {
                let n = |i: usize| decimal(&r.get::<AnyNumeric>(i).or_raise().required("history figure"));
                MonthRow {
                    day: r.get::<String>(1).or_raise().required("day"),
                    limit: r.get::<AnyNumeric>(2).or_raise().map(|x| decimal(&x)),
                    used: n(3),
                    buckets: [n(4), n(5), n(6), n(7), n(8)],
                    temporary: r.get::<bool>(9).or_raise().unwrap_or(false),
                    account_hold: r.get::<bool>(10).or_raise().unwrap_or(false),
                    orders_held: r.get::<i64>(11).or_raise().unwrap_or(0),
                }
            })
            .collect();
        let late: Vec<(String, Decimal, i64)> = c
            .select(&late_query, None, &[customer.into()])
            .or_raise()
            .filter_map(|r| {
                let days = r.get::<AnyNumeric>(2).or_raise()?;
                Some((
                    r.get::<String>(1).or_raise().required("month"),
                    decimal(&days),
                    r.get::<i64>(3).or_raise().unwrap_or(0),
                ))
            })
            .collect();
        (file.0, months, late)
    });
    let mut out = String::new();
    pages::open(&mut out, lang, &format!("{} {}", l.title, customer), &format!("{} — {}", l.title, customer));
    key_figures(&mut out, &file, lang, &l);
    if months.is_empty() {
        pages::note(&mut out, l.no_history);
    } else {
        exposure_and_aging(&mut out, &months, &l);
    }
    warnings(&mut out, &file, lang);
    score_over_time(&mut out, &file, &l);
    days_late(&mut out, &late, &l);
    out.push_str("</body></html>");
    out
}

/// A value of the file's JSON at a path, as text (empty when absent).
fn field(file: &serde_json::Value, path: &[&str]) -> String {
    let mut v = file;
    for p in path {
        v = v.get(*p).unwrap_or(&serde_json::Value::Null);
    }
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn key_figures(out: &mut String, file: &serde_json::Value, lang: &str, l: &Labels) {
    pages::heading(out, l.figures);
    out.push_str("<table><tbody>");
    let zh = lang == "zh";
    // Amounts as amounts, other numbers to one decimal, the rest as the file has them.
    let amounts = ["in_force", "open_receivables", "overdue"];
    for (label, path) in [
        (if zh { "状态" } else { "status" }, &["identity", "status"][..]),
        (if zh { "信用等级" } else { "grade" }, &["identity", "grade"]),
        (if zh { "有效额度" } else { "limit in force" }, &["limits", "in_force"]),
        (if zh { "临时额度至" } else { "temporary limit until" }, &["limits", "temporary_limit_until"]),
        (if zh { "信用评分" } else { "score" }, &["score", "score"]),
        (if zh { "评分趋势" } else { "trend" }, &["score", "trend"]),
        (if zh { "评级依据" } else { "evidence" }, &["score", "evidence", "why"]),
        (if zh { "应收余额" } else { "open receivables" }, &["payment_behaviour", "open_receivables"]),
        (if zh { "逾期金额" } else { "overdue" }, &["payment_behaviour", "overdue"]),
        (if zh { "加权逾期天数" } else { "weighted days late" }, &["payment_behaviour", "weighted_days_late"]),
        (if zh { "应收账款周转天数 (DSO)" } else { "DSO" }, &["payment_behaviour", "dso"]),
        (if zh { "近12个月暂挂订单" } else { "orders held, 12 months" }, &["holds_and_refusals", "orders_held"]),
        (if zh { "近12个月拒绝订单" } else { "orders refused, 12 months" }, &["holds_and_refusals", "orders_refused"]),
    ] {
        let text = field(file, path);
        let shown = match text.parse::<Decimal>() {
            Ok(d) if amounts.contains(&path[1]) => amount(d),
            Ok(d) => d.round_dp(1).normalize().to_string(),
            Err(_) => text,
        };
        let _ = write!(out, "<tr><th>{}</th><td class=\"num\">{}</td></tr>", escape(label), escape(&shown));
    }
    out.push_str("</tbody></table>");
}

fn exposure_and_aging(out: &mut String, months: &[MonthRow], l: &Labels) {
    let x = |m: &MonthRow| m.day[5..].to_string();
    let used = Series { name: l.used, points: months.iter().map(|m| (x(m), m.used)).collect() };
    let limit =
        Series { name: l.limit, points: months.iter().map(|m| (x(m), m.limit.unwrap_or(Decimal::ZERO))).collect() };
    let mut marks = Vec::new();
    for (i, m) in months.iter().enumerate() {
        if m.temporary {
            marks.push(Mark { index: i, kind: "temporary", label: l.temporary.to_string() });
        }
        if m.account_hold {
            marks.push(Mark { index: i, kind: "account-hold", label: l.account_hold.to_string() });
        }
        if m.orders_held > 0 {
            marks.push(Mark { index: i, kind: "orders-held", label: format!("{} {}", l.orders_held, m.orders_held) });
        }
    }
    pages::heading(out, l.exposure_title);
    out.push_str(&chart::marked_line_chart(
        l.exposure_title,
        l.exposure_desc,
        l.amount,
        l.month,
        &[used, limit],
        &marks,
        &[],
    ));
    if !marks.is_empty() {
        let rows: Vec<Vec<String>> = months
            .iter()
            .filter(|m| m.temporary || m.account_hold || m.orders_held > 0)
            .map(|m| {
                let yes = |b: bool| if b { "✓".to_string() } else { String::new() };
                vec![m.day.clone(), yes(m.temporary), yes(m.account_hold), m.orders_held.to_string()]
            })
            .collect();
        pages::table(out, "marks", &l.marks_columns, &[false, false, false, true], &rows);
    }
    let bars: Vec<(String, Vec<Decimal>)> = months.iter().map(|m| (x(m), m.buckets.to_vec())).collect();
    pages::heading(out, l.aging_title);
    out.push_str(&chart::stacked_bars(l.aging_title, l.aging_desc, l.amount, l.month, &l.columns[3..], &bars));
    let rows: Vec<Vec<String>> = months
        .iter()
        .map(|m| {
            let mut r = vec![m.day.clone(), m.limit.map(amount).unwrap_or_default(), amount(m.used)];
            r.extend(m.buckets.iter().map(|b| amount(*b)));
            r
        })
        .collect();
    pages::table(out, "history", &l.columns, &[false, true, true, true, true, true, true, true], &rows);
}

/// The early warnings of the year (credit.risk_warning), open ones first.
fn warnings(out: &mut String, file: &serde_json::Value, lang: &str) {
    let Some(list) = file.get("risk_warnings").and_then(|w| w.as_array()).filter(|w| !w.is_empty()) else {
        return;
    };
    let zh = lang == "zh";
    pages::heading(out, if zh { "风险预警" } else { "Early warnings" });
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut rows: Vec<Vec<String>> = list
        .iter()
        .map(|w| {
            let cleared = text(w, "cleared_on");
            let state = match (cleared.is_empty(), zh) {
                (true, true) => "未解除".to_string(),
                (true, false) => "open".to_string(),
                (false, _) => cleared,
            };
            vec![text(w, "raised_on"), text(w, "cause"), state, text(w, "reason")]
        })
        .collect();
    rows.sort_by_key(|r| (r[2] != "open" && r[2] != "未解除", std::cmp::Reverse(r[0].clone())));
    let header =
        if zh { ["发出日期", "原因", "解除", "说明"] } else { ["raised", "cause", "cleared", "why"] };
    pages::table(out, "warnings", &header, &[false, false, false, false], &rows);
}

/// Score and grade: every recorded change of the last 12 months (credit.file's score history),
/// then today's.
fn score_over_time(out: &mut String, file: &serde_json::Value, l: &Labels) {
    let mut points: Vec<(String, Decimal, String)> = Vec::new();
    if let Some(history) = file.pointer("/score/history").and_then(|h| h.as_array()) {
        for h in history {
            let score = h.get("score").and_then(|s| s.to_string().parse::<Decimal>().ok());
            if let (Some(day), Some(score)) = (h.get("day").and_then(|d| d.as_str()), score) {
                points.push((
                    day.to_string(),
                    score,
                    h.get("grade").and_then(|g| g.as_str()).unwrap_or("").to_string(),
                ));
            }
        }
    }
    // The score now, unless the last recorded change says the same.
    if let Some(score) = file.pointer("/score/score").and_then(|s| s.to_string().parse::<Decimal>().ok()) {
        let grade = field(file, &["score", "grade"]);
        if points.last().is_none_or(|p| p.1 != score || p.2 != grade) {
            points.push((l.today.to_string(), score, grade));
        }
    }
    pages::heading(out, l.score_title);
    let series = Series {
        name: l.score,
        points: points.iter().map(|p| (p.0.get(5..).unwrap_or(&p.0).to_string(), p.1)).collect(),
    };
    let tags: Vec<String> = points.iter().map(|p| p.2.clone()).collect();
    out.push_str(&chart::marked_line_chart(l.score_title, l.score_desc, l.score, l.day, &[series], &[], &tags));
    let rows: Vec<Vec<String>> =
        points.iter().map(|p| vec![p.0.clone(), p.1.round_dp(2).to_string(), p.2.clone()]).collect();
    pages::table(out, "scores", &l.score_columns, &[false, true, false], &rows);
}

fn days_late(out: &mut String, late: &[(String, Decimal, i64)], l: &Labels) {
    pages::heading(out, l.late_title);
    if late.is_empty() {
        pages::note(out, l.no_payments);
        return;
    }
    let series = Series { name: l.days, points: late.iter().map(|m| (m.0.clone(), m.1)).collect() };
    out.push_str(&chart::line_chart(l.late_title, l.late_desc, l.days, l.late_columns[0], &[series]));
    let rows: Vec<Vec<String>> =
        late.iter().map(|m| vec![m.0.clone(), m.1.round_dp(1).to_string(), m.2.to_string()]).collect();
    pages::table(out, "days-late", &l.late_columns, &[false, true, true], &rows);
}
