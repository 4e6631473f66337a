//! A statement of account as a document a person can send: one self-contained HTML page (no
//! scripts, no external assets; it prints on A4), in Chinese or English. The figures come from an
//! issued statement (credit.statement, credit.statement_line); this module only lays them out.
use rust_decimal::Decimal;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// One row of an issued statement (credit.statement_line); dates as ISO text.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub section: String,
    pub entry_date: Option<String>,
    pub kind: Option<String>,
    pub doc_no: Option<String>,
    pub detail: Option<String>,
    pub debit: Option<Decimal>,
    pub credit: Option<Decimal>,
    pub applied: Option<Decimal>,
    pub balance: Option<Decimal>,
    pub due_date: Option<String>,
    pub days: Option<i32>,
    pub bucket: Option<String>,
    pub promised_amount: Option<Decimal>,
    pub promised_date: Option<String>,
    pub disputed_since: Option<String>,
}

/// An issued statement's header and rows.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    pub statement_no: String,
    pub customer: String,
    pub currency: Option<String>,
    pub period_start: String,
    pub period_end: String,
    pub issued_on: String,
    pub opening: Decimal,
    pub debits: Decimal,
    pub credits: Decimal,
    pub closing: Decimal,
    pub overdue: Decimal,
    /// Days the customer has to reply to the confirmation request printed at the bottom.
    pub reply_days: i32,
    pub rows: Vec<Row>,
}

/// An amount as printed: thousands separators, at least two decimals, never rounded (an amount
/// with more decimals shows them all).
pub fn amount(d: Decimal) -> String {
    let d = d.normalize();
    let scale = d.scale().max(2);
    let text = format!("{:.*}", scale as usize, d.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if d.is_sign_negative() && !d.is_zero() { "-" } else { "" };
    format!("{sign}{grouped}.{frac}")
}

/// Text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

struct Labels {
    title: &'static str,
    customer: &'static str,
    number: &'static str,
    period: &'static str,
    currency: &'static str,
    issued: &'static str,
    opening: &'static str,
    debits: &'static str,
    credits: &'static str,
    closing: &'static str,
    overdue: &'static str,
    activity: &'static str,
    columns: [&'static str; 7],
    no_activity: &'static str,
    open_items: &'static str,
    open_columns: [&'static str; 7],
    no_open_items: &'static str,
    aging: &'static str,
    confirmation: &'static str,
    interest: &'static str,
    interest_columns: [&'static str; 5],
}

fn labels(lang: Lang) -> Labels {
    match lang {
        Lang::Zh => Labels {
            title: "对账单",
            customer: "客户",
            number: "对账单号",
            period: "期间",
            currency: "币种",
            issued: "出具日期",
            opening: "期初余额",
            debits: "本期借方",
            credits: "本期贷方",
            closing: "期末余额",
            overdue: "其中逾期",
            activity: "本期明细",
            columns: ["日期", "类型", "单据号", "说明", "借方", "贷方", "余额"],
            no_activity: "本期无往来。",
            open_items: "期末未清项目",
            open_columns: ["单据日期", "类型", "单据号", "到期日", "逾期天数", "未清金额", "备注"],
            no_open_items: "期末无未清项目。",
            aging: "账龄",
            confirmation: "余额确认",
            interest: "逾期利息（未计入余额）",
            interest_columns: ["单据号", "到期日", "逾期天数", "年利率", "利息"],
        },
        Lang::En => Labels {
            title: "Statement of account",
            customer: "Customer",
            number: "Statement no.",
            period: "Period",
            currency: "Currency",
            issued: "Issued",
            opening: "Opening balance",
            debits: "Debits",
            credits: "Credits",
            closing: "Closing balance",
            overdue: "of which overdue",
            activity: "Activity",
            columns: ["Date", "Type", "Document", "Details", "Debit", "Credit", "Balance"],
            no_activity: "No activity in the period.",
            open_items: "Open items at the end of the period",
            open_columns: ["Date", "Type", "Document", "Due", "Days past due", "Open amount", "Notes"],
            no_open_items: "Nothing open at the end of the period.",
            aging: "Aging",
            confirmation: "Balance confirmation",
            interest: "Late-payment interest (not included in the balance)",
            interest_columns: ["Document", "Due", "Days late", "Annual rate", "Interest"],
        },
    }
}

/// What a kind of entry is called.
pub fn kind_label(kind: &str, lang: Lang) -> &str {
    let (zh, en) = match kind {
        "invoice" => ("发票", "Invoice"),
        "payment" => ("收款", "Payment"),
        "credit_note" => ("贷项通知", "Credit note"),
        "cancellation" => ("发票作废", "Invoice cancelled"),
        "write_off" => ("坏账核销", "Write-off"),
        "payment_reversal" => ("收款冲销", "Payment reversed"),
        "credit_note_reversal" => ("贷项冲销", "Credit note reversed"),
        "write_off_reversal" => ("坏账转回", "Write-off reversed"),
        "application" => ("核销", "Applied"),
        "application_reversed" => ("核销撤销", "Application undone"),
        "prior_period_adjustment" => ("上期后补入账", "Posted late for earlier periods"),
        other => (other, other),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

fn opt_amount(d: Option<Decimal>) -> String {
    d.filter(|v| !v.is_zero()).map(amount).unwrap_or_default()
}

fn cell(out: &mut String, class: &str, text: &str) {
    let _ = write!(out, "<td class=\"{class}\">{}</td>", escape(text));
}

fn reply_text(s: &Statement, lang: Lang) -> String {
    let closing = amount(s.closing);
    let currency = s.currency.clone().unwrap_or_default();
    let no = &s.statement_no;
    let days = s.reply_days;
    match lang {
        Lang::Zh => format!(
            "截至 {} 贵方欠款余额为 {currency} {closing}。请核对：如无异议，请于收到本对账单后 {days} 日内回复确认；\
             如有差异，请注明贵方余额，并列出有差异或不认可的单据及金额。回复时请注明对账单号 {no}。",
            s.period_end
        ),
        Lang::En => format!(
            "Your balance with us on {} is {currency} {closing}. Please check it: if it agrees, reply to confirm \
             within {days} days of receiving this statement; if it differs, state your balance and list the \
             documents and amounts you dispute or do not know. Please quote statement no. {no} in your reply.",
            s.period_end
        ),
    }
}

/// The aging as a small bar chart (inline SVG: prints like text, needs nothing external).
fn aging_chart(out: &mut String, buckets: &[&Row]) {
    let largest = buckets.iter().filter_map(|b| b.balance).map(|v| v.abs()).max().unwrap_or(Decimal::ZERO);
    let n = buckets.len().max(1);
    let width = 640;
    let slot = width / n;
    let _ = write!(
        out,
        "<svg class=\"aging\" viewBox=\"0 0 {width} 120\" width=\"100%\" height=\"120\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    // Figures fit their slot: the font shrinks for long amounts (a digit is about 0.6 em).
    let longest = buckets.iter().map(|b| amount(b.balance.unwrap_or(Decimal::ZERO)).len()).max().unwrap_or(1);
    let font = (slot as f64 * 0.95 / (longest as f64 * 0.6)).clamp(5.0, 11.0);
    for (i, b) in buckets.iter().enumerate() {
        let value = b.balance.unwrap_or(Decimal::ZERO);
        let height = if largest.is_zero() {
            0
        } else {
            ((value.abs() / largest) * Decimal::from(70)).round().try_into().unwrap_or(0i64)
        };
        let x = i * slot + slot / 6;
        let w = slot * 2 / 3;
        let fill = if value.is_sign_negative() && !value.is_zero() { "#7aa37a" } else { "#4a6fa5" };
        let label = escape(b.bucket.as_deref().unwrap_or(""));
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{height}\" fill=\"{fill}\"/>\
             <text x=\"{cx}\" y=\"{ty}\" text-anchor=\"middle\" font-size=\"{font:.1}\">{amt}</text>\
             <text x=\"{cx}\" y=\"114\" text-anchor=\"middle\" font-size=\"11\">{label}</text>",
            y = 88 - height,
            cx = x + w / 2,
            ty = 84 - height,
            amt = escape(&amount(value)),
        );
    }
    out.push_str("</svg>");
}

/// The size of the figures in the tables: 9pt, smaller when the longest amount would not leave
/// the text columns room on an A4 page (figures never wrap).
fn amount_font_pt(s: &Statement) -> &'static str {
    let longest = s
        .rows
        .iter()
        .flat_map(|r| [r.debit, r.credit, r.balance])
        .chain([s.opening, s.debits, s.credits, s.closing].map(Some))
        .flatten()
        .map(|d| amount(d).len())
        .max()
        .unwrap_or(0);
    match longest {
        0..=18 => "9",
        19..=24 => "7.5",
        _ => "6.5",
    }
}

/// The statement as one printable HTML page.
pub fn render_html(s: &Statement, lang: Lang) -> String {
    let l = labels(lang);
    let mut out = String::new();
    let currency = s.currency.clone().unwrap_or_default();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title} {no}</title><style>\
         @page {{ size: A4; margin: 14mm 12mm; }}\
         body {{ font-family: 'Noto Sans CJK SC', 'Noto Sans SC', 'Noto Sans', 'DejaVu Sans', sans-serif; font-size: 10pt; color: #111; margin: 0; }}\
         h1 {{ font-size: 16pt; margin: 0 0 6pt; }} h2 {{ font-size: 11pt; margin: 12pt 0 4pt; }}\
         table {{ width: 100%; border-collapse: collapse; }}\
         th, td {{ border-bottom: 0.5pt solid #bbb; padding: 2pt 3pt; vertical-align: top; overflow-wrap: anywhere; font-size: 9pt; }}\
         th {{ text-align: left; background: #eee; }}\
         .num {{ text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }} td.num {{ font-size: {num_pt}pt; }}\
         .date {{ white-space: nowrap; }} .kind {{ overflow-wrap: normal; word-break: keep-all; }}\
         tr {{ break-inside: avoid; }} thead {{ display: table-header-group; }}\
         .head td {{ border: none; padding: 1pt 3pt; font-size: 10pt; }} .total td {{ font-weight: bold; }}\
         .note {{ border: 0.5pt solid #888; padding: 6pt; margin-top: 10pt; }}\
         </style></head><body>",
        lang = if lang == Lang::Zh { "zh-CN" } else { "en" },
        num_pt = amount_font_pt(s),
        title = l.title,
        no = escape(&s.statement_no),
    );
    let _ = write!(out, "<h1>{}</h1><table class=\"head\"><tbody>", l.title);
    for (k, v) in [
        (l.customer, s.customer.clone()),
        (l.number, s.statement_no.clone()),
        (l.period, format!("{} – {}", s.period_start, s.period_end)),
        (l.currency, currency.clone()),
        (l.issued, s.issued_on.clone()),
    ] {
        let _ = write!(out, "<tr><td style=\"width:22%\">{k}</td><td>{}</td></tr>", escape(&v));
    }
    out.push_str("</tbody></table>");
    let _ = write!(out, "<table class=\"head totals\"><tbody>");
    for (k, v) in [
        (l.opening, s.opening),
        (l.debits, s.debits),
        (l.credits, s.credits),
        (l.closing, s.closing),
        (l.overdue, s.overdue),
    ] {
        let _ = write!(
            out,
            "<tr><td style=\"width:22%\">{k}</td><td class=\"num\" style=\"width:26%\">{}</td><td></td></tr>",
            amount(v)
        );
    }
    out.push_str("</tbody></table>");

    // Activity, with the running balance.
    let _ = write!(out, "<h2>{}</h2>", l.activity);
    let activity: Vec<&Row> = s.rows.iter().filter(|r| r.section == "activity").collect();
    // Dates and figures take what they need (they never wrap); document numbers and details share
    // the rest and wrap.
    out.push_str("<table class=\"activity\"><thead><tr>");
    for (i, c) in l.columns.iter().enumerate() {
        let attrs = match i {
            2 => " style=\"width:30%\"",
            3 => " style=\"width:22%\"",
            1 => " class=\"kind\"",
            4.. => " class=\"num\"",
            _ => "",
        };
        let _ = write!(out, "<th{attrs}>{c}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    let _ = write!(
        out,
        "<tr class=\"total\"><td class=\"date\">{}</td><td colspan=\"5\">{}</td><td class=\"num\">{}</td></tr>",
        escape(&s.period_start),
        l.opening,
        amount(s.opening)
    );
    for r in &activity {
        out.push_str("<tr>");
        cell(&mut out, "date", r.entry_date.as_deref().unwrap_or(""));
        cell(&mut out, "kind", kind_label(r.kind.as_deref().unwrap_or(""), lang));
        cell(&mut out, "", r.doc_no.as_deref().unwrap_or(""));
        let detail = match (r.kind.as_deref(), r.applied) {
            // "<settlement kind> [<its number>]": the settlement applied, then the amount.
            (Some("application") | Some("application_reversed"), Some(a)) => {
                let text = r.detail.as_deref().unwrap_or("");
                let (kind, number) = text.split_once(' ').unwrap_or((text, ""));
                // The amount kept on one line.
                let _ = write!(
                    out,
                    "<td>{} <span class=\"num\">{}</span></td>",
                    escape(format!("{} {number}", kind_label(kind, lang)).trim_end()),
                    amount(a)
                );
                None
            }
            // An invoice's payment terms: "terms <days>".
            (Some("invoice"), _) => match r.detail.as_deref().and_then(|t| t.strip_prefix("terms ")) {
                Some(days) => Some(match lang {
                    Lang::Zh => format!("账期 {days} 天"),
                    Lang::En => format!("Terms {days} days"),
                }),
                None => Some(r.detail.clone().unwrap_or_default()),
            },
            _ => Some(r.detail.clone().unwrap_or_default()),
        };
        if let Some(detail) = detail {
            cell(&mut out, "", &detail);
        }
        cell(&mut out, "num", &opt_amount(r.debit));
        cell(&mut out, "num", &opt_amount(r.credit));
        cell(&mut out, "num", &r.balance.map(amount).unwrap_or_default());
        out.push_str("</tr>");
    }
    if activity.is_empty() {
        let _ = write!(out, "<tr><td colspan=\"7\">{}</td></tr>", l.no_activity);
    }
    let _ = write!(
        out,
        "<tr class=\"total\"><td class=\"date\">{}</td><td colspan=\"3\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td></tr></tbody></table>",
        escape(&s.period_end),
        l.closing,
        amount(s.debits),
        amount(s.credits),
        amount(s.closing)
    );

    // Open items at the end, with promises and disputes.
    let _ = write!(out, "<h2>{}</h2>", l.open_items);
    let open: Vec<&Row> = s.rows.iter().filter(|r| r.section == "open_item").collect();
    out.push_str("<table class=\"open\"><thead><tr>");
    for (i, c) in l.open_columns.iter().enumerate() {
        let attrs = match i {
            2 => " style=\"width:30%\"",
            1 => " class=\"kind\"",
            4 | 5 => " class=\"num\"",
            6 => " style=\"width:22%\"",
            _ => "",
        };
        let _ = write!(out, "<th{attrs}>{c}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for r in &open {
        out.push_str("<tr>");
        cell(&mut out, "date", r.entry_date.as_deref().unwrap_or(""));
        cell(&mut out, "kind", kind_label(r.kind.as_deref().unwrap_or(""), lang));
        cell(&mut out, "", r.doc_no.as_deref().unwrap_or(""));
        cell(&mut out, "date", r.due_date.as_deref().unwrap_or(""));
        let days = r.days.filter(|d| *d > 0 && r.kind.as_deref() == Some("invoice")).map(|d| d.to_string());
        cell(&mut out, "num", days.as_deref().unwrap_or(""));
        cell(&mut out, "num", &r.balance.map(amount).unwrap_or_default());
        let mut notes = Vec::new();
        if let (Some(a), Some(d)) = (r.promised_amount, r.promised_date.as_deref()) {
            notes.push(match lang {
                Lang::Zh => format!("承诺于 {d} 付款 {}", amount(a)),
                Lang::En => format!("Promised {} by {d}", amount(a)),
            });
        }
        // "arrangement <id>: <due> <amount>, ...": the plan's instalments still open at the end.
        if let Some(plan) = r.detail.as_deref().and_then(|t| t.strip_prefix("arrangement ")) {
            let (id, instalments) = plan.split_once(": ").unwrap_or((plan, ""));
            let listed: Vec<String> = instalments
                .split(", ")
                .filter_map(|i| i.split_once(' '))
                .map(|(due, a)| format!("{due} {}", a.parse::<Decimal>().map(amount).unwrap_or_else(|_| a.to_string())))
                .collect();
            notes.push(match lang {
                Lang::Zh => format!("分期付款计划 {id}：{}", listed.join("，")),
                Lang::En => format!("Instalment plan {id}: {}", listed.join(", ")),
            });
        }
        if let Some(d) = r.disputed_since.as_deref() {
            notes.push(match lang {
                Lang::Zh => format!("争议中（自 {d}）"),
                Lang::En => format!("In dispute since {d}"),
            });
        }
        cell(&mut out, "", &notes.join("; "));
        out.push_str("</tr>");
    }
    if open.is_empty() {
        let _ = write!(out, "<tr><td colspan=\"7\">{}</td></tr>", l.no_open_items);
    }
    out.push_str("</tbody></table>");

    // Aging: the chart, and the same figures as a table.
    let buckets: Vec<&Row> = s.rows.iter().filter(|r| r.section == "aging").collect();
    if !buckets.is_empty() {
        let _ = write!(out, "<h2>{}</h2>", l.aging);
        aging_chart(&mut out, &buckets);
        out.push_str("<table class=\"aging\"><tbody><tr>");
        for b in &buckets {
            let _ = write!(out, "<th class=\"num\">{}</th>", escape(b.bucket.as_deref().unwrap_or("")));
        }
        out.push_str("</tr><tr>");
        for b in &buckets {
            cell(&mut out, "num", &b.balance.map(amount).unwrap_or_default());
        }
        out.push_str("</tr></tbody></table>");
    }

    // Late-payment interest accrued by the end, per invoice ("rate <annual rate>" in the detail).
    let interest: Vec<&Row> = s.rows.iter().filter(|r| r.section == "interest").collect();
    if !interest.is_empty() {
        let _ = write!(out, "<h2>{}</h2><table class=\"interest\"><thead><tr>", l.interest);
        for (i, c) in l.interest_columns.iter().enumerate() {
            let _ = write!(out, "<th{}>{c}</th>", if i >= 2 { " class=\"num\"" } else { "" });
        }
        out.push_str("</tr></thead><tbody>");
        for r in &interest {
            out.push_str("<tr>");
            cell(&mut out, "", r.doc_no.as_deref().unwrap_or(""));
            cell(&mut out, "date", r.due_date.as_deref().unwrap_or(""));
            cell(&mut out, "num", &r.days.map(|d| d.to_string()).unwrap_or_default());
            let rate = r
                .detail
                .as_deref()
                .and_then(|t| t.strip_prefix("rate "))
                .and_then(|t| t.parse::<Decimal>().ok())
                .map(|x| format!("{}%", (x * Decimal::ONE_HUNDRED).normalize()))
                .unwrap_or_default();
            cell(&mut out, "num", &rate);
            cell(&mut out, "num", &r.balance.map(amount).unwrap_or_default());
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }

    let _ = write!(
        out,
        "<div class=\"note\"><strong>{}</strong><br>{}</div>",
        l.confirmation,
        escape(&reply_text(s, lang))
    );
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn amounts_are_grouped_and_never_rounded() {
        assert_eq!(amount(d("0")), "0.00");
        assert_eq!(amount(d("5")), "5.00");
        assert_eq!(amount(d("1234.5")), "1,234.50");
        assert_eq!(amount(d("-1234567.891")), "-1,234,567.891");
        assert_eq!(amount(d("1000000000000000")), "1,000,000,000,000,000.00");
        assert_eq!(amount(d("0.00000001")), "0.00000001");
        assert_eq!(amount(d("-0.00")), "0.00");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<b a=\"x\">'&'</b>"), "&lt;b a=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;");
    }

    fn sample() -> Statement {
        let row = |section: &str, kind: &str, doc: &str, debit: &str, credit: &str, balance: &str| Row {
            section: section.into(),
            entry_date: Some("2026-01-05".into()),
            kind: Some(kind.into()),
            doc_no: Some(doc.into()),
            debit: Some(d(debit)),
            credit: Some(d(credit)),
            balance: Some(d(balance)),
            ..Row::default()
        };
        let mut open = row("open_item", "invoice", "INV-<1>", "100", "0", "100");
        open.due_date = Some("2026-02-04".into());
        open.days = Some(3);
        open.promised_amount = Some(d("60"));
        open.promised_date = Some("2026-02-10".into());
        let mut bucket = row("aging", "1-30", "", "0", "0", "100");
        bucket.bucket = Some("1-30".into());
        Statement {
            statement_no: "ST-20260131-7".into(),
            customer: "ACME & Sons".into(),
            currency: Some("CNY".into()),
            period_start: "2026-01-01".into(),
            period_end: "2026-01-31".into(),
            issued_on: "2026-02-01".into(),
            opening: d("0"),
            debits: d("100"),
            credits: d("0"),
            closing: d("100"),
            overdue: d("100"),
            reply_days: 14,
            rows: vec![row("activity", "invoice", "INV-<1>", "100", "0", "100"), open, bucket],
        }
    }

    #[test]
    fn interest_is_shown_apart_from_the_balance() {
        let mut s = sample();
        let mut row = s.rows[1].clone();
        row.section = "interest".into();
        row.kind = Some("interest".into());
        row.detail = Some("rate 0.115".into());
        row.balance = Some(d("12.34"));
        row.days = Some(40);
        s.rows.push(row);
        let en = render_html(&s, Lang::En);
        assert!(en.contains("Late-payment interest (not included in the balance)"));
        assert!(en.contains("11.5%") && en.contains("12.34"));
        assert!(render_html(&s, Lang::Zh).contains("逾期利息"));
        assert!(!render_html(&sample(), Lang::En).contains("Late-payment interest"));
    }

    #[test]
    fn an_invoice_shows_its_terms() {
        let mut s = sample();
        s.rows[0].detail = Some("terms 45".into());
        assert!(render_html(&s, Lang::En).contains("Terms 45 days"));
        assert!(render_html(&s, Lang::Zh).contains("账期 45 天"));
    }

    #[test]
    fn an_arranged_invoice_shows_its_plan() {
        let mut s = sample();
        s.rows[1].detail = Some("arrangement 12: 2026-03-01 1500, 2026-04-01 1500.5".into());
        let en = render_html(&s, Lang::En);
        assert!(en.contains("Instalment plan 12: 2026-03-01 1,500.00, 2026-04-01 1,500.50"), "{en}");
        let zh = render_html(&s, Lang::Zh);
        assert!(zh.contains("分期付款计划 12：2026-03-01 1,500.00，2026-04-01 1,500.50"));
    }

    #[test]
    fn the_page_holds_the_figures_escaped_in_both_languages() {
        for lang in [Lang::Zh, Lang::En] {
            let html = render_html(&sample(), lang);
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(html.contains("ACME &amp; Sons") && !html.contains("ACME & Sons"));
            assert!(html.contains("INV-&lt;1&gt;"));
            assert!(html.contains("100.00"));
            assert!(html.contains("ST-20260131-7"));
            assert!(html.contains("<svg"));
            // Self-contained: nothing to fetch, nothing to run.
            assert!(
                !html.contains("<script")
                    && !html.contains("src=")
                    && !html.contains("href=")
                    && !html.contains("url(")
            );
        }
        // Figures never wrap; long ones print smaller so the text columns keep room.
        assert!(render_html(&sample(), Lang::En).contains("td.num { font-size: 9pt; }"));
        let mut big = sample();
        big.closing = d("987654321098765.43");
        assert!(render_html(&big, Lang::En).contains("td.num { font-size: 7.5pt; }"));
        big.closing = d("-1000000000000000.12345678");
        assert!(render_html(&big, Lang::En).contains("td.num { font-size: 6.5pt; }"));
        assert!(render_html(&sample(), Lang::Zh).contains("对账单"));
        assert!(render_html(&sample(), Lang::Zh).contains("承诺于 2026-02-10 付款 60.00"));
        assert!(render_html(&sample(), Lang::En).contains("Promised 60.00 by 2026-02-10"));
    }
}
