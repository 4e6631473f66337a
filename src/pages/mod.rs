//! Pages drawn in the database for people: self-contained HTML (inline style, inline SVG charts
//! from `credit_core::chart`, no script, nothing fetched), in Chinese or English. Each page reads
//! its figures from the functions and views that compute them elsewhere, and prints them in a
//! table under every chart, so what a chart shows can be read and checked.
pub(crate) mod file;
pub(crate) mod portfolio;

use crate::pg::error;
use credit_core::statement::escape;
use std::fmt::Write;

/// The page language: 'zh' (the default) or 'en'.
pub(crate) fn language(lang: Option<&str>) -> &'static str {
    match lang {
        Some("zh") | None => "zh",
        Some("en") => "en",
        Some(other) => error::invalid(format!("lang is 'zh' or 'en', not \"{other}\"")),
    }
}

/// The document's head and the page heading.
pub(crate) fn open(out: &mut String, lang: &str, title: &str, heading: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body {{ font-family: 'Noto Sans CJK SC', 'Noto Sans', sans-serif; margin: 24px; color: #1a202c; max-width: 1000px; }}\
         table {{ border-collapse: collapse; margin: 8px 0 20px; }} td, th {{ border: 1px solid #cbd5e0; padding: 3px 8px; }}\
         td.num, th.num {{ text-align: right; white-space: nowrap; }} td {{ overflow-wrap: anywhere; }}\
         svg {{ max-width: 100%; height: auto; display: block; }} p.note {{ color: #4a5568; }}\
         </style></head><body><h1>{}</h1>",
        escape(title),
        escape(heading)
    );
}

/// A table: a header row (columns after the first right-aligned when `numeric` says so) and rows
/// of already-formatted cells.
pub(crate) fn table(out: &mut String, class: &str, header: &[&str], numeric: &[bool], rows: &[Vec<String>]) {
    let _ = write!(out, "<table class=\"{class}\"><thead><tr>");
    for (i, h) in header.iter().enumerate() {
        let _ = write!(out, "<th{}>{}</th>", num_class(numeric, i), escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for (i, cell) in r.iter().enumerate() {
            let _ = write!(out, "<td{}>{}</td>", num_class(numeric, i), escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn num_class(numeric: &[bool], i: usize) -> &'static str {
    if numeric.get(i).copied().unwrap_or(false) {
        " class=\"num\""
    } else {
        ""
    }
}

pub(crate) fn heading(out: &mut String, text: &str) {
    let _ = write!(out, "<h2>{}</h2>", escape(text));
}

pub(crate) fn note(out: &mut String, text: &str) {
    let _ = write!(out, "<p class=\"note\">{}</p>", escape(text));
}
