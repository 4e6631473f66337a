//! External credit ratings (第三方征信): an agency's report, as received (JSON), mapped onto one
//! scale — a 0-100 score where higher is better and a risk level — so that ratings of different
//! agencies can feed the score together. Three common formats have mappers, and a generic one
//! takes a mapping of JSON pointers. Every mapping explains itself; bad or unknown payloads are
//! refused with what was expected.
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A PAYDEX-style payment index 0-100 (80 = pays on time), with an optional failure score
    /// (a 1-100 percentile, higher = less likely to fail) and failure class (1-5, 1 = lowest risk).
    Paydex,
    /// A commercial score 0-100 and/or a letter A-E (A = very low risk).
    CommercialScore,
    /// A 企查查/天眼查-style risk level (低/中/高 or low/medium/high) with risk items (被执行人,
    /// 失信被执行人, 经营异常, 行政处罚, ...), keyed by the 统一社会信用代码.
    RiskLevel,
    /// Anything else: a mapping names where the score is and its scale.
    Generic,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Paydex, Format::CommercialScore, Format::RiskLevel, Format::Generic];

    pub fn code(self) -> &'static str {
        match self {
            Format::Paydex => "paydex",
            Format::CommercialScore => "commercial_score",
            Format::RiskLevel => "risk_level",
            Format::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.code() == s)
    }

    /// The format a payload looks like, when none is named.
    pub fn detect(payload: &Value) -> Option<Format> {
        if payload.get("paydex").is_some() {
            Some(Format::Paydex)
        } else if payload.get("risk_level").is_some() || payload.get("risk_items").is_some() {
            Some(Format::RiskLevel)
        } else if payload.get("score").is_some() || payload.get("rating").is_some() {
            Some(Format::CommercialScore)
        } else {
            None
        }
    }

    fn expects(self) -> &'static str {
        match self {
            Format::Paydex => "{\"duns\": \"...\", \"paydex\": 0-100, \"failure_score\": 1-100, \"failure_class\": 1-5, \"rating_date\": \"YYYY-MM-DD\"}",
            Format::CommercialScore => "{\"company_id\": \"...\", \"score\": 0-100, \"rating\": \"A\"-\"E\", \"rating_date\": \"YYYY-MM-DD\"}",
            Format::RiskLevel => "{\"unified_social_credit_code\": \"18 characters\", \"risk_level\": \"低|中|高\", \"risk_items\": [{\"type\": \"被执行人\", \"count\": 1}], \"rating_date\": \"YYYY-MM-DD\"}",
            Format::Generic => "a mapping {\"score\": \"/json/pointer\", \"min\": 0, \"max\": 100, \"higher_is_better\": true, \"grade\": \"/...\", \"external_id\": \"/...\", \"rating_date\": \"/...\", \"valid_until\": \"/...\"}",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiskLevel {
    Low,
    Moderate,
    Elevated,
    High,
    Severe,
}

impl RiskLevel {
    pub fn code(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Moderate => "moderate",
            RiskLevel::Elevated => "elevated",
            RiskLevel::High => "high",
            RiskLevel::Severe => "severe",
        }
    }

    /// From a normalised score: 80+ low, 60+ moderate, 40+ elevated, 20+ high, else severe.
    pub fn of_score(score: Decimal) -> RiskLevel {
        let d = Decimal::from;
        if score >= d(80) {
            RiskLevel::Low
        } else if score >= d(60) {
            RiskLevel::Moderate
        } else if score >= d(40) {
            RiskLevel::Elevated
        } else if score >= d(20) {
            RiskLevel::High
        } else {
            RiskLevel::Severe
        }
    }
}

/// A report mapped onto pg_credit's scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub format: Format,
    pub external_id: Option<String>,
    pub procedure: String,
    pub agency_grade: Option<String>,
    pub agency_score: Option<Decimal>,
    /// 0-100, higher is better.
    pub score: Decimal,
    pub risk_level: RiskLevel,
    /// As the payload has them (the database reads them as dates).
    pub rating_date: Option<String>,
    pub valid_until: Option<String>,
    /// up, flat or down, when the agency says.
    pub trend: Option<String>,
    pub explanation: String,
}

fn number(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            n.as_i64().map(Decimal::from).or_else(|| n.as_f64().and_then(Decimal::from_f64).map(|d| d.round_dp(6)))
        }
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_text(payload: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text(payload.get(*k)))
}

fn in_range(what: &str, v: Decimal, lo: i64, hi: i64) -> Result<Decimal, String> {
    if v < Decimal::from(lo) || v > Decimal::from(hi) {
        Err(format!("{what} {v} is outside {lo}-{hi}"))
    } else {
        Ok(v)
    }
}

fn trend(payload: &Value) -> Result<Option<String>, String> {
    match first_text(payload, &["trend"]).as_deref() {
        None => Ok(None),
        Some("up" | "improving" | "上升" | "向好") => Ok(Some("up".into())),
        Some("down" | "deteriorating" | "下降" | "恶化") => Ok(Some("down".into())),
        Some("flat" | "stable" | "持平" | "稳定") => Ok(Some("flat".into())),
        Some(other) => Err(format!("trend \"{other}\" is not up, flat or down")),
    }
}

/// Weight of a 企查查/天眼查 risk item type in points taken off the level's base score (per item).
fn risk_item_points(kind: &str) -> i64 {
    match kind {
        "破产" | "破产重整" | "bankruptcy" => 30,
        "失信被执行人" | "失信" | "dishonest_debtor" => 15,
        "被执行人" | "enforcement" => 8,
        "股权冻结" | "equity_frozen" => 8,
        "限制高消费" | "consumption_restriction" => 8,
        "经营异常" | "abnormal_operation" => 5,
        "行政处罚" | "administrative_penalty" => 3,
        "欠税" | "tax_arrears" => 5,
        _ => 2,
    }
}

/// Whether an 18-character 统一社会信用代码 (GB 32100-2015) has a valid check character.
pub fn valid_credit_code(code: &str) -> bool {
    const CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let cs: Vec<char> = code.chars().collect();
    if cs.len() != 18 {
        return false;
    }
    let mut sum = 0;
    for (c, w) in cs[..17].iter().zip(WEIGHTS) {
        let Some(v) = CHARS.find(*c) else { return false };
        sum += v as u32 * w;
    }
    let check = (31 - sum % 31) % 31;
    CHARS.chars().nth(check as usize) == Some(cs[17])
}

/// Maps a payload. `mapping` is for the generic format.
pub fn map(format: Format, payload: &Value, mapping: Option<&Value>) -> Result<Mapped, String> {
    if !payload.is_object() {
        return Err("the payload must be a JSON object".into());
    }
    let fail = |msg: String| Err(format!("{msg} (the {} format expects {})", format.code(), format.expects()));
    let rating_date = first_text(payload, &["rating_date", "report_date", "date"]);
    let valid_until = first_text(payload, &["valid_until"]);
    let trend = trend(payload)?;
    let m = match format {
        Format::Paydex => {
            let Some(paydex) = payload.get("paydex").and_then(number) else {
                return fail("no numeric \"paydex\"".into());
            };
            let paydex = in_range("paydex", paydex, 0, 100)?;
            let failure = match payload.get("failure_score") {
                None | Some(Value::Null) => None,
                Some(v) => Some(in_range("failure_score", number(v).ok_or("failure_score is not a number")?, 1, 100)?),
            };
            let class = match payload.get("failure_class") {
                None | Some(Value::Null) => None,
                Some(v) => Some(in_range("failure_class", number(v).ok_or("failure_class is not a number")?, 1, 5)?),
            };
            let score = match failure {
                Some(f) => ((paydex + f) / Decimal::TWO).round_dp(2),
                None => paydex,
            };
            let mut risk = RiskLevel::of_score(score);
            if let Some(c) = class {
                let by_class =
                    [RiskLevel::Low, RiskLevel::Moderate, RiskLevel::Elevated, RiskLevel::High, RiskLevel::Severe]
                        [c.trunc().to_string().parse::<usize>().unwrap_or(1).clamp(1, 5) - 1];
                risk = risk.max(by_class);
            }
            Mapped {
                format,
                external_id: first_text(payload, &["duns", "id"]),
                procedure: "PAYDEX".into(),
                agency_grade: class.map(|c| c.normalize().to_string()),
                agency_score: Some(paydex),
                score,
                risk_level: risk,
                rating_date,
                valid_until,
                trend,
                explanation: match failure {
                    Some(f) => format!("mean of PAYDEX {paydex} and failure score {f}"),
                    None => format!("PAYDEX {paydex}"),
                },
            }
        }
        Format::CommercialScore => {
            let score = match payload.get("score") {
                None | Some(Value::Null) => None,
                Some(v) => Some(in_range("score", number(v).ok_or("score is not a number")?, 0, 100)?),
            };
            let letter = first_text(payload, &["rating", "grade"]).map(|l| l.to_uppercase());
            let by_letter = match letter.as_deref() {
                None => None,
                Some("A") => Some((Decimal::from(90), RiskLevel::Low)),
                Some("B") => Some((Decimal::from(70), RiskLevel::Moderate)),
                Some("C") => Some((Decimal::from(50), RiskLevel::Elevated)),
                Some("D") => Some((Decimal::from(30), RiskLevel::High)),
                Some("E") => Some((Decimal::from(10), RiskLevel::Severe)),
                Some(other) => return fail(format!("rating \"{other}\" is not A-E")),
            };
            let (normalised, risk, how) = match (score, by_letter) {
                (Some(s), Some((_, r))) => (
                    s,
                    r.max(RiskLevel::of_score(s)),
                    format!("score {s}, rating {}", letter.clone().unwrap_or_default()),
                ),
                (Some(s), None) => (s, RiskLevel::of_score(s), format!("score {s}")),
                (None, Some((s, r))) => (s, r, format!("rating {} taken as {s}", letter.clone().unwrap_or_default())),
                (None, None) => return fail("neither \"score\" nor \"rating\"".into()),
            };
            Mapped {
                format,
                external_id: first_text(payload, &["company_id", "id", "registration_number"]),
                procedure: "commercial score".into(),
                agency_grade: letter,
                agency_score: score,
                score: normalised,
                risk_level: risk,
                rating_date,
                valid_until,
                trend,
                explanation: how,
            }
        }
        Format::RiskLevel => {
            let code = first_text(payload, &["unified_social_credit_code", "credit_code"]);
            if let Some(c) = &code {
                if !valid_credit_code(c) {
                    return fail(format!(
                        "\"{c}\" is not a valid 统一社会信用代码 (18 characters with its check character)"
                    ));
                }
            }
            let (base, level) = match first_text(payload, &["risk_level"]).as_deref() {
                Some("低" | "低风险" | "low") => (80, RiskLevel::Low),
                Some("中" | "中风险" | "medium" | "moderate") => (50, RiskLevel::Elevated),
                Some("高" | "高风险" | "high") => (20, RiskLevel::High),
                Some(other) => return fail(format!("risk_level \"{other}\" is not 低/中/高 (low/medium/high)")),
                None => return fail("no \"risk_level\"".into()),
            };
            let mut off = 0i64;
            let mut items = Vec::new();
            match payload.get("risk_items") {
                None | Some(Value::Null) => {}
                Some(Value::Array(list)) => {
                    for it in list {
                        let kind = text(it.get("type")).ok_or("a risk item has no \"type\"")?;
                        let count = match it.get("count") {
                            None | Some(Value::Null) => 1,
                            Some(v) => number(v)
                                .filter(|n| *n >= Decimal::ZERO && n.fract().is_zero() && *n <= Decimal::from(100000))
                                .ok_or(format!("risk item \"{kind}\": count is not a whole number"))?
                                .trunc()
                                .to_string()
                                .parse::<i64>()
                                .unwrap_or(0),
                        };
                        off += risk_item_points(&kind) * count;
                        items.push(format!("{kind} x{count}"));
                    }
                }
                Some(_) => return fail("risk_items is not an array".into()),
            }
            let score = Decimal::from((base - off).max(0));
            let risk = if score < Decimal::from(20) { RiskLevel::Severe } else { level };
            Mapped {
                format,
                external_id: code,
                procedure: "risk level".into(),
                agency_grade: first_text(payload, &["risk_level"]),
                agency_score: None,
                score,
                risk_level: risk,
                rating_date,
                valid_until,
                trend,
                explanation: if items.is_empty() {
                    format!("level {base}")
                } else {
                    format!("level {base} less {off} for {}", items.join(", "))
                },
            }
        }
        Format::Generic => {
            let Some(m) = mapping.filter(|m| m.is_object()) else {
                return fail("no mapping".into());
            };
            let ptr = |k: &str| -> Result<Option<&Value>, String> {
                match m.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(p)) if p.starts_with('/') || p.is_empty() => Ok(payload.pointer(p)),
                    Some(_) => Err(format!("mapping \"{k}\" must be a JSON pointer such as \"/rating/score\"")),
                }
            };
            let Some(raw) = ptr("score")?.and_then(number) else {
                return fail("the mapping's \"score\" points at no number in the payload".into());
            };
            let lo = m.get("min").and_then(number).unwrap_or(Decimal::ZERO);
            let hi = m.get("max").and_then(number).unwrap_or(Decimal::ONE_HUNDRED);
            if hi <= lo {
                return fail(format!("the mapping's max {hi} is not above its min {lo}"));
            }
            if raw < lo || raw > hi {
                return Err(format!("score {raw} is outside the mapping's {lo}-{hi}"));
            }
            let higher_is_better = m.get("higher_is_better").and_then(|v| v.as_bool()).unwrap_or(true);
            let mut share = (raw - lo) / (hi - lo);
            if !higher_is_better {
                share = Decimal::ONE - share;
            }
            let score = (share * Decimal::ONE_HUNDRED).round_dp(2);
            Mapped {
                format,
                external_id: text(ptr("external_id")?),
                procedure: text(m.get("procedure")).unwrap_or_else(|| "generic".into()),
                agency_grade: text(ptr("grade")?),
                agency_score: Some(raw),
                score,
                risk_level: RiskLevel::of_score(score),
                rating_date: text(ptr("rating_date")?).or(rating_date),
                valid_until: text(ptr("valid_until")?).or(valid_until),
                trend,
                explanation: format!(
                    "{raw} on {lo}-{hi} ({}) is {score}",
                    if higher_is_better { "higher is better" } else { "lower is better" }
                ),
            }
        }
    };
    Ok(m)
}

/// up when the new score is 5 points or more above the previous one, down when 5 or more below.
pub fn trend_against(previous: Option<Decimal>, now: Decimal) -> Option<&'static str> {
    let p = previous?;
    let five = Decimal::from(5);
    Some(if now - p >= five {
        "up"
    } else if p - now >= five {
        "down"
    } else {
        "flat"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn paydex_with_failure_score() {
        let m = map(Format::Paydex, &json!({"duns": "804735132", "paydex": 72, "failure_score": 40, "failure_class": 3, "rating_date": "2026-10-01"}), None)
            .unwrap();
        assert_eq!(
            (m.score, m.risk_level, m.external_id.as_deref()),
            (d("56"), RiskLevel::Elevated, Some("804735132"))
        );
        assert_eq!(m.rating_date.as_deref(), Some("2026-10-01"));
        let m = map(Format::Paydex, &json!({"paydex": "80"}), None).unwrap();
        assert_eq!((m.score, m.risk_level), (d("80"), RiskLevel::Low));
        assert!(map(Format::Paydex, &json!({"paydex": 120}), None).unwrap_err().contains("outside 0-100"));
        assert!(map(Format::Paydex, &json!({"score": 1}), None).unwrap_err().contains("expects"));
        assert!(map(Format::Paydex, &json!([1]), None).is_err());
    }

    #[test]
    fn commercial_scores_and_letters() {
        let m = map(Format::CommercialScore, &json!({"company_id": "GB-1", "score": 64, "rating": "b"}), None).unwrap();
        assert_eq!((m.score, m.risk_level, m.agency_grade.as_deref()), (d("64"), RiskLevel::Moderate, Some("B")));
        let m = map(Format::CommercialScore, &json!({"rating": "D"}), None).unwrap();
        assert_eq!((m.score, m.risk_level), (d("30"), RiskLevel::High));
        assert!(map(Format::CommercialScore, &json!({"rating": "F"}), None).unwrap_err().contains("not A-E"));
        assert!(map(Format::CommercialScore, &json!({"other": 1}), None).is_err());
    }

    #[test]
    fn risk_levels_with_items() {
        let p = json!({"unified_social_credit_code": "91350100M000100Y43", "risk_level": "中风险",
                       "risk_items": [{"type": "被执行人", "count": 2}, {"type": "行政处罚"}]});
        let m = map(Format::RiskLevel, &p, None).unwrap();
        assert_eq!((m.score, m.risk_level), (d("31"), RiskLevel::Elevated));
        assert!(m.explanation.contains("被执行人 x2"), "{}", m.explanation);
        let p = json!({"risk_level": "高", "risk_items": [{"type": "失信被执行人", "count": 3}]});
        assert_eq!(map(Format::RiskLevel, &p, None).unwrap().risk_level, RiskLevel::Severe);
        let bad = json!({"unified_social_credit_code": "91350100M000100Y44", "risk_level": "低"});
        assert!(map(Format::RiskLevel, &bad, None).unwrap_err().contains("统一社会信用代码"));
        assert!(map(Format::RiskLevel, &json!({"risk_level": "未知"}), None).is_err());
        assert!(map(Format::RiskLevel, &json!({"risk_level": "低", "risk_items": [{"type": "x", "count": -1}]}), None)
            .is_err());
    }

    #[test]
    fn credit_codes() {
        assert!(valid_credit_code("91350100M000100Y43"));
        assert!(!valid_credit_code("91350100M000100Y4"));
        assert!(!valid_credit_code("91350100M000100YI3"), "I is not in the code's alphabet");
    }

    #[test]
    fn generic_mapping() {
        let p = json!({"report": {"risk": 250, "id": "X-9", "on": "2026-09-30"}});
        let m = json!({"score": "/report/risk", "min": 0, "max": 1000, "higher_is_better": false,
                       "external_id": "/report/id", "rating_date": "/report/on", "procedure": "ACME risk index"});
        let r = map(Format::Generic, &p, Some(&m)).unwrap();
        assert_eq!((r.score, r.risk_level, r.external_id.as_deref()), (d("75"), RiskLevel::Moderate, Some("X-9")));
        assert_eq!((r.procedure.as_str(), r.rating_date.as_deref()), ("ACME risk index", Some("2026-09-30")));
        assert!(map(Format::Generic, &p, None).unwrap_err().contains("no mapping"));
        assert!(map(Format::Generic, &p, Some(&json!({"score": "/nope"}))).is_err());
        assert!(map(Format::Generic, &p, Some(&json!({"score": "/report/risk", "max": 100})))
            .unwrap_err()
            .contains("outside"));
        assert!(map(Format::Generic, &p, Some(&json!({"score": "report"}))).unwrap_err().contains("JSON pointer"));
    }

    #[test]
    fn detection_and_trend() {
        assert_eq!(Format::detect(&json!({"paydex": 1})), Some(Format::Paydex));
        assert_eq!(Format::detect(&json!({"risk_level": "低"})), Some(Format::RiskLevel));
        assert_eq!(Format::detect(&json!({"rating": "A"})), Some(Format::CommercialScore));
        assert_eq!(Format::detect(&json!({"x": 1})), None);
        assert_eq!(trend_against(Some(d("60")), d("66")), Some("up"));
        assert_eq!(trend_against(Some(d("60")), d("57")), Some("flat"));
        assert_eq!(trend_against(None, d("57")), None);
        assert!(map(Format::Paydex, &json!({"paydex": 80, "trend": "sideways"}), None).is_err());
    }
}
