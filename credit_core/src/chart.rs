//! SVG charts drawn in the database: self-contained, deterministic (the same data gives the same
//! bytes), with a title, axis labels and a text alternative (`<title>`, `<desc>`), in Chinese or
//! English through the labels the caller passes. Every point of a line is a `<circle
//! class="point">`, every segment of a stacked bar a `<rect class="bar">`, so a test can count the
//! marks the data calls for.
use crate::statement::escape;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;
const COLORS: [&str; 6] = ["#2b6cb0", "#dd6b20", "#c53030", "#805ad5", "#2f855a", "#718096"];

/// A line: its name and (x label, value) points, in order.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(String, Decimal)>,
}

/// Something that happened at a point of the x axis (a temporary limit in force, orders held),
/// drawn as a dashed vertical line with a short label: `<line class="mark mark-{kind}">`.
pub struct Mark<'a> {
    pub index: usize,
    pub kind: &'a str,
    pub label: String,
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// A round upper bound for the axis: 1, 2 or 5 times a power of ten, at or above `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

/// An axis from below zero: four equal steps of a round size (1, 2, 5 or 10 times a power of ten)
/// that cover `min..max`, zero on a tick.
fn axis_range(min: f64, max: f64) -> (f64, f64) {
    if min >= 0.0 {
        return (0.0, nice_max(max));
    }
    let mut step = nice_max((max.max(0.0) - min) / 4.0);
    loop {
        let lo = (min / step).floor() * step;
        if lo + 4.0 * step >= max {
            return (lo, lo + 4.0 * step);
        }
        step = nice_max(step * 1.01);
    }
}

fn frame(out: &mut String, title: &str, desc: &str, y_label: &str, x_label: &str, lo: f64, top: f64) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         font-family=\"'Noto Sans CJK SC', 'Noto Sans', sans-serif\" font-size=\"11\">\
         <title>{}</title><desc>{}</desc>\
         <text x=\"{}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        escape(title),
        escape(desc),
        LEFT,
        escape(title)
    );
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let _ = write!(out, "<line x1=\"{x0}\" y1=\"{y1}\" x2=\"{x1}\" y2=\"{y1}\" stroke=\"#333\"/>");
    let _ = write!(out, "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#333\"/>");
    for k in 0..=4 {
        let v = lo + (top - lo) * k as f64 / 4.0;
        let y = y1 - (y1 - y0) * k as f64 / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"#e2e8f0\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 - 4.0,
            y + 4.0,
            axis_number(v)
        );
    }
    let _ = write!(
        out,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        escape(y_label),
        (x0 + x1) / 2.0,
        H - 6.0,
        escape(x_label)
    );
}

/// An axis number: grouped thousands, no decimals beyond what a tick needs.
fn axis_number(v: f64) -> String {
    let whole = v.round() as i64;
    let s = whole.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if whole < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn legend(out: &mut String, names: &[&str]) {
    let mut x = W - RIGHT;
    for (i, name) in names.iter().enumerate().rev() {
        x -= 12.0 + 7.0 * name.chars().count() as f64 + 14.0;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"17\">{}</text>",
            COLORS[i % COLORS.len()],
            x + 13.0,
            escape(name)
        );
    }
}

/// A line chart of several series over the same x labels; a point mark at every value.
pub fn line_chart(title: &str, desc: &str, y_label: &str, x_label: &str, series: &[Series<'_>]) -> String {
    marked_line_chart(title, desc, y_label, x_label, series, &[], &[])
}

/// A line chart with marks on the x axis and, optionally, a short tag printed above each point of
/// the first series (a grade beside a score).
pub fn marked_line_chart(
    title: &str,
    desc: &str,
    y_label: &str,
    x_label: &str,
    series: &[Series<'_>],
    marks: &[Mark<'_>],
    tags: &[String],
) -> String {
    let n = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let values = || series.iter().flat_map(|s| s.points.iter().map(|(_, v)| f(*v)));
    let (lo, top) = axis_range(values().fold(0.0, f64::min), values().fold(0.0, f64::max));
    let mut out = String::new();
    frame(&mut out, title, desc, y_label, x_label, lo, top);
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let x_of = |i: usize| if n <= 1 { (x0 + x1) / 2.0 } else { x0 + (x1 - x0) * i as f64 / (n - 1) as f64 };
    let y_of = |v: f64| y1 - (y1 - y0) * ((v - lo) / (top - lo)).clamp(0.0, 1.0);
    if lo < 0.0 {
        let _ = write!(out, "<line x1=\"{x0}\" y1=\"{0:.1}\" x2=\"{x1}\" y2=\"{0:.1}\" stroke=\"#999\"/>", y_of(0.0));
    }
    if let Some(first) = series.first() {
        let step = (n / 6).max(1);
        for (i, (label, _)) in first.points.iter().enumerate().filter(|(i, _)| i % step == 0 || *i + 1 == n) {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x_of(i),
                y1 + 14.0,
                escape(label)
            );
        }
    }
    for m in marks.iter().filter(|m| m.index < n.max(1)) {
        let x = x_of(m.index);
        let _ = write!(
            out,
            "<line class=\"mark mark-{}\" x1=\"{x:.1}\" y1=\"{y0}\" x2=\"{x:.1}\" y2=\"{y1}\" stroke=\"#a0aec0\" \
             stroke-dasharray=\"4 3\"><title>{}</title></line>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#4a5568\">{}</text>",
            escape(m.kind),
            escape(&m.label),
            x + 2.0,
            y0 + 10.0 + 10.0 * (m.kind.len() % 2) as f64,
            escape(&m.label)
        );
    }
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let path: Vec<String> =
            s.points.iter().enumerate().map(|(i, (_, v))| format!("{:.1},{:.1}", x_of(i), y_of(f(*v)))).collect();
        let _ = write!(
            out,
            "<polyline class=\"line\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for (i, (label, v)) in s.points.iter().enumerate() {
            let _ = write!(
                out,
                "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"><title>{} {}: {}</title></circle>",
                x_of(i),
                y_of(f(*v)),
                escape(s.name),
                escape(label),
                v
            );
            if k == 0 {
                if let Some(tag) = tags.get(i).filter(|t| !t.is_empty()) {
                    let _ = write!(
                        out,
                        "<text class=\"tag\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
                        x_of(i),
                        y_of(f(*v)) - 6.0,
                        escape(tag)
                    );
                }
            }
        }
    }
    legend(&mut out, &series.iter().map(|s| s.name).collect::<Vec<_>>());
    out.push_str("</svg>");
    out
}

/// Horizontal bars, one per row (a customer and its utilization), largest first as given, with a
/// dashed reference line (the limit at 100 %) when there is one.
pub fn horizontal_bars(
    title: &str,
    desc: &str,
    x_label: &str,
    rows: &[(String, Decimal)],
    reference: Option<Decimal>,
) -> String {
    let max = rows.iter().map(|(_, v)| f(*v)).chain(reference.map(f)).fold(0.0, f64::max);
    let top = nice_max(max);
    let left = 170.0;
    let row_h = 18.0;
    let h = TOP + BOTTOM + row_h * rows.len().max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\" \
         font-family=\"'Noto Sans CJK SC', 'Noto Sans', sans-serif\" font-size=\"11\">\
         <title>{}</title><desc>{}</desc>\
         <text x=\"{left}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        escape(title),
        escape(desc),
        escape(title)
    );
    let (x0, x1, y0, y1) = (left, W - RIGHT, TOP, h - BOTTOM);
    let x_of = |v: f64| x0 + (x1 - x0) * (v / top).clamp(0.0, 1.0);
    let _ = write!(out, "<line x1=\"{x0}\" y1=\"{y1}\" x2=\"{x1}\" y2=\"{y1}\" stroke=\"#333\"/>");
    for k in 0..=4 {
        let v = top * k as f64 / 4.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x_of(v),
            y1 + 14.0,
            axis_number(v)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (x0 + x1) / 2.0,
        h - 6.0,
        escape(x_label)
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = y0 + row_h * i as f64;
        let shown: String =
            if label.chars().count() > 24 { label.chars().take(23).chain(['…']).collect() } else { label.clone() };
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" x=\"{x0}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
            x0 - 4.0,
            y + row_h * 0.7,
            escape(&shown),
            y + 2.0,
            (x_of(f(*v)) - x0).max(0.5),
            row_h - 4.0,
            if reference.is_some_and(|r| *v > r) { COLORS[2] } else { COLORS[0] },
            escape(label),
            v
        );
    }
    if let Some(r) = reference {
        let x = x_of(f(r));
        let _ = write!(
            out,
            "<line class=\"reference\" x1=\"{x:.1}\" y1=\"{y0}\" x2=\"{x:.1}\" y2=\"{y1}\" stroke=\"#c53030\" stroke-dasharray=\"4 3\"/>"
        );
    }
    out.push_str("</svg>");
    out
}

/// A stacked bar chart: one bar per x label, a segment per part (the parts named in `parts`).
pub fn stacked_bars(
    title: &str,
    desc: &str,
    y_label: &str,
    x_label: &str,
    parts: &[&str],
    bars: &[(String, Vec<Decimal>)],
) -> String {
    let max = bars.iter().map(|(_, v)| v.iter().map(|x| f(*x).max(0.0)).sum::<f64>()).fold(0.0, f64::max);
    let top = nice_max(max);
    let mut out = String::new();
    frame(&mut out, title, desc, y_label, x_label, 0.0, top);
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let n = bars.len().max(1);
    let slot = (x1 - x0) / n as f64;
    let width = (slot * 0.7).max(1.0);
    for (i, (label, values)) in bars.iter().enumerate() {
        let x = x0 + slot * i as f64 + (slot - width) / 2.0;
        let mut base = y1;
        for (k, v) in values.iter().enumerate() {
            let h = (y1 - y0) * (f(*v).max(0.0) / top);
            if h <= 0.0 {
                continue;
            }
            base -= h;
            let _ = write!(
                out,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{base:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                COLORS[k % COLORS.len()],
                escape(label),
                escape(parts.get(k).copied().unwrap_or("")),
                v
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x + width / 2.0,
            y1 + 14.0,
            escape(label)
        );
    }
    legend(&mut out, parts);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn a_point_per_value_and_a_segment_per_nonzero_part() {
        let s = vec![
            Series {
                name: "used",
                points: vec![("01".into(), d("10")), ("02".into(), d("40")), ("03".into(), d("25"))],
            },
            Series {
                name: "limit",
                points: vec![("01".into(), d("50")), ("02".into(), d("50")), ("03".into(), d("60"))],
            },
        ];
        let svg = line_chart("Exposure <& limit>", "text", "CNY", "month", &s);
        assert_eq!(svg.matches("class=\"point\"").count(), 6);
        assert_eq!(svg.matches("class=\"line\"").count(), 2);
        assert!(svg.contains("<title>Exposure &lt;&amp; limit&gt;</title>") && svg.contains("<desc>text</desc>"));
        assert_eq!(svg, line_chart("Exposure <& limit>", "text", "CNY", "month", &s), "deterministic");
        let bars = vec![("01".into(), vec![d("5"), d("0"), d("2")]), ("02".into(), vec![d("1"), d("1"), d("1")])];
        let svg = stacked_bars("账龄", "文字说明", "金额", "月份", &["a", "b", "c"], &bars);
        assert_eq!(svg.matches("class=\"bar\"").count(), 5);
        assert!(svg.contains("账龄"));
    }

    #[test]
    fn marks_tags_negative_values_and_horizontal_bars() {
        let s = vec![Series {
            name: "days late",
            points: vec![("01".into(), d("-3")), ("02".into(), d("12")), ("03".into(), d("40"))],
        }];
        let marks = [
            Mark { index: 1, kind: "hold", label: "held".into() },
            Mark { index: 9, kind: "temporary", label: "x".into() },
        ];
        let svg = marked_line_chart("t", "d", "days", "month", &s, &marks, &["A".into(), String::new(), "B".into()]);
        assert_eq!(svg.matches("class=\"point\"").count(), 3);
        assert_eq!(svg.matches("class=\"mark mark-hold\"").count(), 1, "a mark past the last point is dropped");
        assert_eq!(svg.matches("class=\"tag\"").count(), 2);
        assert!(
            svg.contains(">-20<") && svg.contains(">0<") && svg.contains(">40<"),
            "round ticks through zero: {svg}"
        );
        let rows = vec![
            ("a customer with a very long name indeed, longer than fits".to_string(), d("1.25")),
            ("b".into(), d("0.8")),
        ];
        let svg = horizontal_bars("near", "d", "%", &rows, Some(d("1")));
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert_eq!(svg.matches("class=\"reference\"").count(), 1);
        assert!(svg.contains("…"), "long names are shortened on the axis");
    }

    #[test]
    fn axes_round_up() {
        assert_eq!(axis_range(-10.0, 1.0), (-10.0, 10.0));
        assert_eq!(axis_range(-3.0, 40.0), (-20.0, 60.0));
        assert_eq!(axis_range(-7.0, 0.0), (-8.0, 0.0));
        assert_eq!(axis_range(0.0, 73.0), (0.0, 100.0));
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(73.0), 100.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(4500.0), 5000.0);
        assert_eq!(axis_number(1234567.0), "1,234,567");
    }
}
