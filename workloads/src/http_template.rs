//! Request templates of the generic HTTP adapter: a path or body with `{key}`, `{value}`,
//! `{from}`, `{to}` placeholders, each with an optional encoding (`{key:url}`).
//!
//! Parsed once when the spec is loaded, so a misspelt placeholder or encoding is an error
//! naming the key, not a literal `{kye}` sent to the system under test. `{{` and `}}`
//! stand for literal braces (JSON bodies need them).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::fmt::Write as _;

/// What a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The key, with the adapter's prefix.
    Key,
    /// The value written or added.
    Value,
    /// A cas's expected value.
    From,
    /// A cas's new value.
    To,
}

impl Slot {
    pub const ALL: [Slot; 4] = [Slot::Key, Slot::Value, Slot::From, Slot::To];

    pub fn name(self) -> &'static str {
        match self {
            Slot::Key => "key",
            Slot::Value => "value",
            Slot::From => "from",
            Slot::To => "to",
        }
    }
}

/// How a placeholder's text is written into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is: `k1`, `42`.
    Raw,
    /// A JSON string, quotes included: `"k1"`, `"42"`.
    Json,
    /// Standard base64 (with padding) of the text.
    Base64,
    /// Percent-encoded: every byte but `A-Z a-z 0-9 - . _ ~`.
    Url,
}

impl Encoding {
    pub const ALL: [Encoding; 4] = [
        Encoding::Raw,
        Encoding::Json,
        Encoding::Base64,
        Encoding::Url,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Json => "json",
            Encoding::Base64 => "base64",
            Encoding::Url => "url",
        }
    }

    pub fn encode(self, text: &str) -> String {
        match self {
            Encoding::Raw => text.to_string(),
            Encoding::Json => serde_json::Value::from(text).to_string(),
            Encoding::Base64 => B64.encode(text),
            Encoding::Url => {
                let mut out = String::with_capacity(text.len());
                for b in text.bytes() {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        out.push(b as char);
                    } else {
                        let _ = write!(out, "%{b:02X}");
                    }
                }
                out
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Slot, Encoding),
}

/// A parsed request template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTemplate {
    pieces: Vec<Piece>,
}

/// The values one operation fills a template with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fill<'a> {
    pub key: &'a str,
    pub value: Option<i64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl RequestTemplate {
    /// Parses `text`, accepting only the placeholders in `allowed`.
    pub fn parse(text: &str, allowed: &[Slot]) -> Result<RequestTemplate, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            lit.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                lit.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err(format!(
                    "unmatched `}}` in {text:?} (write `}}}}` for a literal brace)"
                ));
            }
            let Some(end) = tail.find('}') else {
                return Err(format!(
                    "unclosed `{{` in {text:?} (write `{{{{` for a literal brace)"
                ));
            };
            let inner = &tail[1..end];
            let (name, enc) = inner.split_once(':').unwrap_or((inner, "raw"));
            let slot = Slot::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown placeholder {{{name}}} in {text:?}; known: {}",
                        names(allowed)
                    )
                })?;
            if !allowed.contains(&slot) {
                return Err(format!(
                    "placeholder {{{name}}} has no value here; this template may use {}",
                    names(allowed)
                ));
            }
            let enc = Encoding::ALL
                .into_iter()
                .find(|e| e.name() == enc)
                .ok_or_else(|| {
                    format!(
                        "unknown encoding {enc:?} in {{{inner}}}; known: {}",
                        Encoding::ALL.map(Encoding::name).join(", ")
                    )
                })?;
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Var(slot, enc));
            rest = &tail[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(RequestTemplate { pieces })
    }

    /// Whether `slot` appears.
    pub fn uses(&self, slot: Slot) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Var(s, _) if *s == slot))
    }

    /// The text for one operation. A placeholder without a value (never for a template
    /// checked against its operation's slots) renders empty.
    pub fn render(&self, fill: &Fill<'_>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(slot, enc) => {
                    let text = match slot {
                        Slot::Key => fill.key.to_string(),
                        Slot::Value => fill.value.map(|v| v.to_string()).unwrap_or_default(),
                        Slot::From => fill.from.map(|v| v.to_string()).unwrap_or_default(),
                        Slot::To => fill.to.map(|v| v.to_string()).unwrap_or_default(),
                    };
                    out.push_str(&enc.encode(&text));
                }
            }
        }
        out
    }
}

fn names(slots: &[Slot]) -> String {
    slots
        .iter()
        .map(|s| format!("{{{}}}", s.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill() -> Fill<'static> {
        Fill {
            key: "a b/é",
            value: Some(42),
            from: Some(1),
            to: Some(-2),
        }
    }

    #[test]
    fn encodings() {
        let t = |s| {
            RequestTemplate::parse(s, &Slot::ALL)
                .unwrap()
                .render(&fill())
        };
        assert_eq!(t("/kv/{key}"), "/kv/a b/é");
        assert_eq!(t("/kv/{key:url}"), "/kv/a%20b%2F%C3%A9");
        assert_eq!(t("{key:json}"), r#""a b/é""#);
        assert_eq!(t("{key:base64}"), B64.encode("a b/é"));
        assert_eq!(t("{value:base64}"), "NDI=");
        assert_eq!(t("{value:json}"), r#""42""#);
        assert_eq!(
            t(r#"{{"from": {from}, "to": {to:json}}}"#),
            r#"{"from": 1, "to": "-2"}"#
        );
        assert_eq!(t("{value:raw}x"), "42x");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let e = |s, allowed: &[Slot]| RequestTemplate::parse(s, allowed).unwrap_err();
        assert!(e("/kv/{kye}", &Slot::ALL).contains("unknown placeholder {kye}"));
        assert!(e("/kv/{key:hex}", &Slot::ALL).contains("unknown encoding \"hex\""));
        assert!(e("/kv/{value}", &[Slot::Key]).contains("has no value here"));
        assert!(e("{\"a\": 1}", &Slot::ALL).contains("unknown placeholder"));
        assert!(e("x}", &Slot::ALL).contains("unmatched"));
        assert!(e("{key", &Slot::ALL).contains("unclosed"));
    }

    #[test]
    fn uses_reports_placeholders() {
        let t = RequestTemplate::parse("/cas/{key}?to={to}", &Slot::ALL).unwrap();
        assert!(t.uses(Slot::Key) && t.uses(Slot::To) && !t.uses(Slot::From));
    }
}
