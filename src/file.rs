//! The credit file as a page (`credit.file_html`): the figures of `credit.file` and the customer's
//! history drawn as charts (credit_core::chart), self-contained HTML for a credit controller.
use crate::pg::args;
use crate::pg::error::{self, OrRaise, Required};
use crate::pg::numeric::decimal;
use credit_core::chart::{self, Series};
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
    aging_title: &'static str,
    aging_desc: &'static str,
    amount: &'static str,
    month: &'static str,
    columns: [&'static str; 8],
    no_history: &'static str,
}

fn labels(lang: &str) -> Labels {
    if lang == "en" {
        Labels {
            title: "Credit file",
            figures: "Key figures",
            exposure_title: "Credit used against the limit, month-ends of the last 12 months",
            exposure_desc: "Line chart: credit used (exposure, or receivables less unapplied credit where open orders are unknown) and the limit in force at each month-end; the table below lists the same figures.",
            used: "used",
            limit: "limit",
            aging_title: "Aging mix at month-ends",
            aging_desc: "Stacked bars: open receivables per aging bucket at each month-end; the table below lists the same figures.",
            amount: "amount",
            month: "month-end",
            columns: ["Month-end", "Limit", "Used", "Not due", "1-30", "31-60", "61-90", "Over 90"],
            no_history: "No history recorded or rebuilt yet (credit.backfill_history).",
        }
    } else {
        Labels {
            title: "客户信用档案",
            figures: "关键指标",
            exposure_title: "近12个月月末信用占用与额度",
            exposure_desc:
                "折线图：各月末的信用占用（敞口；未知未结订单时为应收减未核销款）与当时有效额度；下表列出相同数字。",
            used: "占用",
            limit: "额度",
            aging_title: "月末账龄结构",
            aging_desc: "堆叠柱状图：各月末按账龄区间的未收金额；下表列出相同数字。",
            amount: "金额",
            month: "月末",
            columns: ["月末", "额度", "占用", "未到期", "1-30天", "31-60天", "61-90天", "90天以上"],
            no_history: "尚无历史记录（可用 credit.backfill_history 回填）。",
        }
    }
}

/// One month-end of history: day, limit, used, the five buckets (the fifth with any later ones).
type MonthRow = (String, Option<Decimal>, Decimal, [Decimal; 5]);

/// The credit file of a customer as a self-contained page (Chinese by default, or English): the
/// key figures of `credit.file`, credit used against the limit and the aging mix at the month-ends
/// of the last 12 months as SVG charts, with the same figures in tables under them.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn file_html(customer: Option<&str>, lang: default!(Option<&str>, "'zh'")) -> String {
    let customer = args::text(customer, "customer");
    let lang = match lang {
        Some("zh") | None => "zh",
        Some("en") => "en",
        Some(other) => error::invalid(format!("lang is 'zh' or 'en', not \"{other}\"")),
    };
    let l = labels(lang);
    let (file, months): (serde_json::Value, Vec<MonthRow>) = Spi::connect(|c| {
        let file: pgrx::JsonB = c
            .select("SELECT credit.file($1)", Some(1), &[customer.into()])
            .or_raise()
            .first()
            .get_one()
            .or_raise()
            .required("credit file");
        let months = c
            .select(
                "SELECT to_char(h.day, 'YYYY-MM-DD'), h.credit_limit, coalesce(h.exposure, h.open_ar - h.unapplied_credit), \
                        h.not_due, h.days_1_30, h.days_31_60, h.days_61_90, h.over_90 + h.later_buckets \
                   FROM credit.customer_history_daily h \
                  WHERE h.customer = $1 \
                    AND h.day IN (SELECT (date_trunc('month', d) + interval '1 month - 1 day')::date \
                                    FROM generate_series(current_date - 365, current_date - 1, interval '1 month') d) \
                  ORDER BY h.day",
                None,
                &[customer.into()],
            )
            .or_raise()
            .map(|r| {
                let n = |i: usize| decimal(&r.get::<AnyNumeric>(i).or_raise().required("history figure"));
                (
                    r.get::<String>(1).or_raise().required("day"),
                    r.get::<AnyNumeric>(2).or_raise().map(|x| decimal(&x)),
                    n(3),
                    [n(4), n(5), n(6), n(7), n(8)],
                )
            })
            .collect();
        (file.0, months)
    });
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{} {}</title><style>\
         body {{ font-family: 'Noto Sans CJK SC', 'Noto Sans', sans-serif; margin: 24px; color: #1a202c; }}\
         table {{ border-collapse: collapse; margin: 8px 0 20px; }} td, th {{ border: 1px solid #cbd5e0; padding: 3px 8px; }}\
         td.num, th.num {{ text-align: right; white-space: nowrap; }} svg {{ max-width: 100%; height: auto; display: block; }}\
         </style></head><body><h1>{} — {}</h1>",
        escape(l.title),
        escape(customer),
        escape(l.title),
        escape(customer)
    );
    // Key figures: identity, limit, score and payment behaviour, as credit.file has them.
    let get = |path: &[&str]| -> String {
        let mut v = &file;
        for p in path {
            v = v.get(*p).unwrap_or(&serde_json::Value::Null);
        }
        match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let _ = write!(out, "<h2>{}</h2><table><tbody>", escape(l.figures));
    let zh = lang == "zh";
    for (label, path) in [
        (if zh { "状态" } else { "status" }, vec!["identity", "status"]),
        (if zh { "信用等级" } else { "grade" }, vec!["identity", "grade"]),
        (if zh { "有效额度" } else { "limit in force" }, vec!["limits", "in_force"]),
        (if zh { "信用评分" } else { "score" }, vec!["score", "score"]),
        (if zh { "评分趋势" } else { "trend" }, vec!["score", "trend"]),
        (if zh { "应收余额" } else { "open receivables" }, vec!["payment_behaviour", "open_receivables"]),
        (if zh { "逾期金额" } else { "overdue" }, vec!["payment_behaviour", "overdue"]),
        (if zh { "加权逾期天数" } else { "weighted days late" }, vec!["payment_behaviour", "weighted_days_late"]),
        (if zh { "应收账款周转天数 (DSO)" } else { "DSO" }, vec!["payment_behaviour", "dso"]),
    ] {
        let _ = write!(out, "<tr><th>{}</th><td class=\"num\">{}</td></tr>", escape(label), escape(&get(&path)));
    }
    out.push_str("</tbody></table>");
    if months.is_empty() {
        let _ = write!(out, "<p>{}</p>", escape(l.no_history));
    } else {
        let used = Series { name: l.used, points: months.iter().map(|m| (m.0[5..].to_string(), m.2)).collect() };
        let limit = Series {
            name: l.limit,
            points: months.iter().map(|m| (m.0[5..].to_string(), m.1.unwrap_or(Decimal::ZERO))).collect(),
        };
        let _ = write!(out, "<h2>{}</h2>", escape(l.exposure_title));
        out.push_str(&chart::line_chart(l.exposure_title, l.exposure_desc, l.amount, l.month, &[used, limit]));
        let bars: Vec<(String, Vec<Decimal>)> = months.iter().map(|m| (m.0[5..].to_string(), m.3.to_vec())).collect();
        let _ = write!(out, "<h2>{}</h2>", escape(l.aging_title));
        out.push_str(&chart::stacked_bars(l.aging_title, l.aging_desc, l.amount, l.month, &l.columns[3..], &bars));
        out.push_str("<table class=\"history\"><thead><tr>");
        for (i, c) in l.columns.iter().enumerate() {
            let _ = write!(out, "<th{}>{}</th>", if i > 0 { " class=\"num\"" } else { "" }, escape(c));
        }
        out.push_str("</tr></thead><tbody>");
        for m in &months {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                escape(&m.0),
                m.1.map(amount).unwrap_or_default(),
                amount(m.2)
            );
            for b in m.3 {
                let _ = write!(out, "<td class=\"num\">{}</td>", amount(b));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</body></html>");
    out
}
