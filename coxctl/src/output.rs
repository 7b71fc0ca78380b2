//! `-o json|yaml|name` output.
use coxswain_api::Kind;
use serde::Serialize;
use serde_json::{json, Value};

use crate::client::{other, Result};
use crate::printers::resource_name;

/// An output format given with `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Wide,
    Json,
    Yaml,
    Name,
}

impl Format {
    pub fn parse(o: Option<&str>) -> Result<Format> {
        Ok(match o.unwrap_or("") {
            "" => Format::Table,
            "wide" => Format::Wide,
            "json" => Format::Json,
            "yaml" | "yml" => Format::Yaml,
            "name" => Format::Name,
            x => {
                return Err(other(format!(
                    "unable to match a printer suitable for the output format \"{x}\", allowed formats are: json,name,wide,yaml"
                )))
            }
        })
    }
}

/// kubectl's List wrapper.
pub fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
}

/// JSON as kubectl prints it (4-space indentation), with a trailing newline.
pub fn to_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serializing a Value into memory cannot fail.
    let _ = v.serialize(&mut ser);
    let mut s = String::from_utf8(buf).unwrap_or_default();
    s.push('\n');
    s
}

/// YAML, with a trailing newline.
pub fn to_yaml(v: &Value) -> String {
    let mut s = serde_yaml::to_string(v).unwrap_or_default();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// `-o name`: "pod/x", "deployment.apps/x".
pub fn name_line(kind: Kind, name: &str) -> String {
    format!("{}/{name}", resource_name(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_shape_and_formats() {
        let l = list(vec![json!({"kind": "Pod"})]);
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"apiVersion":"v1","items":[{"kind":"Pod"}],"kind":"List","metadata":{"resourceVersion":""}}"#
        );
        assert_eq!(to_json(&json!({"a": 1})), "{\n    \"a\": 1\n}\n");
        assert_eq!(to_yaml(&json!({"a": "25%", "b": [1]})), "a: 25%\nb:\n- 1\n");
        assert_eq!(name_line(Kind::Deployment, "x"), "deployment.apps/x");
        assert_eq!(Format::parse(Some("wide")).unwrap(), Format::Wide);
        assert!(Format::parse(Some("xml")).is_err());
    }
}
