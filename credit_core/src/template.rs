//! Message templates (credit.message_template): text with `{{field.path}}` placeholders filled
//! from a JSON object of the event and the customer's figures. A placeholder naming a field the
//! object does not have is an error (the courier turns it into a dead letter with this reason),
//! never an empty hole in a message a customer reads. A field that exists with a null value
//! fills as nothing.
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `{{path}}` names no field of the values.
    MissingField(String),
    /// `{{` without its `}}`, or an empty or malformed name.
    Malformed(String),
    /// The field is an object or array: a template fills in single values only.
    NotAValue(String),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::MissingField(p) => {
                write!(f, "the template references {{{{{p}}}}}, a field the message does not have")
            }
            TemplateError::Malformed(s) => write!(f, "the template has a malformed placeholder near \"{s}\""),
            TemplateError::NotAValue(p) => write!(f, "{{{{{p}}}}} is an object or a list, not a single value"),
        }
    }
}

enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

/// Splits a template into text and placeholders, refusing malformed ones.
fn parse(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| TemplateError::Malformed(snippet(&rest[start..])))?;
        let name = after[..end].trim();
        let well_formed = !name.is_empty()
            && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.')
            && !name.split('.').any(str::is_empty);
        if !well_formed {
            return Err(TemplateError::Malformed(snippet(&rest[start..])));
        }
        pieces.push(Piece::Field(name));
        rest = &after[end + 2..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// Fills every `{{a.b.c}}` of `template` from `values`. Names are letters, digits, `_` and `.`,
/// with optional spaces inside the braces.
/// Messages are plain text (e-mail bodies, SMS, the webhook's `text`): values go in as they are.
pub fn render(template: &str, values: &Value) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    for piece in parse(template)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Field(name) => out.push_str(&lookup(values, name)?),
        }
    }
    Ok(out)
}

/// The placeholders a template uses, in order (for checking a template before it is saved).
pub fn fields(template: &str) -> Result<Vec<String>, TemplateError> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Field(name) => Some(name.to_string()),
            Piece::Text(_) => None,
        })
        .collect())
}

fn lookup(values: &Value, path: &str) -> Result<String, TemplateError> {
    let mut v = values;
    for part in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(part).ok_or_else(|| TemplateError::MissingField(path.to_string()))?,
            _ => return Err(TemplateError::MissingField(path.to_string())),
        };
    }
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Array(_) | Value::Object(_) => Err(TemplateError::NotAValue(path.to_string())),
    }
}

fn snippet(s: &str) -> String {
    s.chars().take(24).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn fills_nested_fields_and_chinese_text() {
        // Amounts arrive as text (credit._money_text): the template never sees a float.
        let v = json!({"customer": "华东商贸", "event": {"doc_no": "INV-7", "open_amount": "1,250.50", "days": null}});
        let s = render("尊敬的{{customer}}：发票 {{ event.doc_no }} 未付 {{event.open_amount}} 元{{event.days}}。", &v)
            .unwrap();
        assert_eq!(s, "尊敬的华东商贸：发票 INV-7 未付 1,250.50 元。");
    }

    #[test]
    fn a_missing_field_is_an_error_naming_it() {
        let v = json!({"event": {"doc_no": "INV-7"}});
        assert_eq!(render("{{event.due_date}}", &v), Err(TemplateError::MissingField("event.due_date".into())));
        assert_eq!(render("{{event.doc_no.x}}", &v), Err(TemplateError::MissingField("event.doc_no.x".into())));
        assert!(render("{{event}}", &v).unwrap_err().to_string().contains("not a single value"));
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        let v = json!({});
        assert!(matches!(render("a {{b", &v), Err(TemplateError::Malformed(_))));
        assert!(matches!(render("a {{}} b", &v), Err(TemplateError::Malformed(_))));
        assert!(matches!(render("a {{x y}} b", &v), Err(TemplateError::Malformed(_))));
        assert!(matches!(render("a {{x..y}} b", &v), Err(TemplateError::Malformed(_))));
        assert_eq!(fields("{{a}} and {{ b.c }}").unwrap(), vec!["a", "b.c"]);
    }

    proptest! {
        // Text without placeholders comes out as it went in; a value's text appears verbatim.
        #[test]
        fn plain_text_is_kept(s in "[^{}]*", val in "[^{}]*") {
            prop_assert_eq!(render(&s, &json!({})).unwrap(), s.clone());
            let t = format!("{s}{{{{v}}}}{s}");
            prop_assert_eq!(render(&t, &json!({"v": val})).unwrap(), format!("{s}{val}{s}"));
        }
    }
}
