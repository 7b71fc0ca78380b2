//! JSON text as Go's `encoding/json` writes it, where kubectl's output depends on it: strings
//! carry the HTML-safe escapes (`\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`), which
//! serde_json does not produce, and a `json.Encoder` ends its document with a newline. Map keys
//! are sorted in both (serde_json's `Value` keeps a sorted map).

use serde::Serialize;
use serde_json::Value;

/// Go's HTML-safe escapes applied to JSON text. `<`, `>`, `&`, U+2028 and U+2029 only ever
/// appear inside strings in JSON text, so a character-level pass over the whole text is exact.
pub fn escape_html(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => s.push_str("\\u003c"),
            '>' => s.push_str("\\u003e"),
            '&' => s.push_str("\\u0026"),
            '\u{2028}' => s.push_str("\\u2028"),
            '\u{2029}' => s.push_str("\\u2029"),
            c => s.push(c),
        }
    }
    s
}

/// `json.NewEncoder(w).Encode(v)`: compact, HTML-safe, one trailing newline. This is how
/// kubectl writes the `kubectl.kubernetes.io/last-applied-configuration` annotation
/// (apply's GetModifiedConfiguration encodes through runtime.Encode, a json.Encoder).
pub fn encode(v: &Value) -> String {
    let mut s = escape_html(&v.to_string());
    s.push('\n');
    s
}

/// `json.MarshalIndent(v, "", indent)` followed by a newline, as kubectl's JSONPrinter prints.
pub fn encode_indent(v: &Value, indent: &str) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serializing a Value into memory cannot fail.
    let _ = v.serialize(&mut ser);
    let mut s = escape_html(&String::from_utf8(buf).unwrap_or_default());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_carry_go_s_html_safe_escapes() {
        let v = json!({"z": [], "cmd": "a && b <x> \u{2028}\u{2029}", "y": {}});
        assert_eq!(
            encode(&v),
            "{\"cmd\":\"a \\u0026\\u0026 b \\u003cx\\u003e \\u2028\\u2029\",\"y\":{},\"z\":[]}\n"
        );
        assert_eq!(
            encode_indent(&v, "    "),
            "{\n    \"cmd\": \"a \\u0026\\u0026 b \\u003cx\\u003e \\u2028\\u2029\",\n    \"y\": {},\n    \"z\": []\n}\n"
        );
        // What it writes reads back as the same value.
        let back: Value = serde_json::from_str(&encode(&v)).unwrap();
        assert_eq!(back, v);
    }
}
