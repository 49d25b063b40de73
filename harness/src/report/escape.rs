//! Escaping for what the pages embed: text in HTML, and JSON inside `<script>`.

/// Text or an attribute value in HTML.
pub fn html(s: &str) -> String {
    markup(s)
}

/// Text or an attribute value in HTML or XML (JUnit files): the five special characters
/// become entities, and control characters XML 1.0 forbids become spaces.
pub fn markup(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// JSON that is safe inside `<script type="application/json">`: a value holding
/// `</script>` or `<!--` must not end the element, so `<`, `>` and `&` become `\u` escapes
/// (still the same JSON), and so do U+2028/2029 for old JavaScript parsers.
pub fn script_json(v: &impl serde::Serialize) -> String {
    let text = serde_json::to_string(v).expect("JSON values serialise");
    let mut o = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => o.push_str("\\u003c"),
            '>' => o.push_str("\\u003e"),
            '&' => o.push_str("\\u0026"),
            '\u{2028}' => o.push_str("\\u2028"),
            '\u{2029}' => o.push_str("\\u2029"),
            c => o.push(c),
        }
    }
    o
}

/// A relative URL path: each segment percent-encoded, `/` kept.
pub fn url_path(p: &str) -> String {
    let mut o = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                o.push(b as char)
            }
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_embedded_can_close_a_tag() {
        assert_eq!(
            html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let j = script_json(&serde_json::json!({"v": "</script><!--&"}));
        assert!(!j.contains('<') && !j.contains('>') && !j.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["v"], "</script><!--&");
        assert_eq!(url_path("a b/%2e.log"), "a%20b/%252e.log");
    }
}
