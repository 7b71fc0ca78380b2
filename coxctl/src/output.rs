//! `-o json|yaml|name` output.
use coxswain_api::Kind;
use serde_json::{json, Value};

use crate::client::{other, Result};
use crate::printers::resource_name;

/// An output format given with `-o`.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Table,
    Wide,
    Json,
    Yaml,
    Name,
    /// `-o jsonpath=TEMPLATE` (also `jsonpath-file=FILE`).
    JsonPath(crate::jsonpath::Template),
    /// `-o custom-columns=HEADER:PATH,...` (also `custom-columns-file=FILE`).
    CustomColumns(Vec<(String, crate::jsonpath::Template)>),
}

const ALLOWED: &str = "custom-columns,custom-columns-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,wide,yaml";

impl Format {
    pub fn parse(o: Option<&str>) -> Result<Format> {
        let o = o.unwrap_or("");
        if let Some((kind, arg)) = o.split_once('=') {
            let read = |f: &str| {
                std::fs::read_to_string(f).map_err(|e| other(format!("error reading {f}: {e}")))
            };
            return match kind {
                "jsonpath" | "jsonpath-file" => {
                    let text = if kind == "jsonpath" {
                        arg.to_string()
                    } else {
                        read(arg)?
                    };
                    if text.is_empty() {
                        return Err(other("template format specified but no template given"));
                    }
                    let t = crate::jsonpath::Template::parse(&text).map_err(|e| {
                        other(format!("error parsing jsonpath {text}, {e}"))
                    })?;
                    Ok(Format::JsonPath(t))
                }
                "custom-columns" | "custom-columns-file" => {
                    if kind == "custom-columns" {
                        Ok(Format::CustomColumns(custom_columns(arg)?))
                    } else {
                        custom_columns_file(&read(arg)?)
                    }
                }
                _ => Err(other(format!(
                    "unable to match a printer suitable for the output format \"{o}\", allowed formats are: {ALLOWED}"
                ))),
            };
        }
        Ok(match o {
            "" => Format::Table,
            "wide" => Format::Wide,
            "json" => Format::Json,
            "yaml" | "yml" => Format::Yaml,
            "name" => Format::Name,
            "jsonpath" | "custom-columns" => {
                return Err(other(if o == "jsonpath" {
                    "template format specified but no template given"
                } else {
                    "custom-columns format specified but no custom columns given"
                }))
            }
            x => {
                return Err(other(format!(
                    "unable to match a printer suitable for the output format \"{x}\", allowed formats are: {ALLOWED}"
                )))
            }
        })
    }
}

/// A JSONPath as custom-columns and --sort-by take it: "{.a.b}", ".a.b" or "a.b".
pub fn relaxed_path(p: &str) -> Result<crate::jsonpath::Template> {
    let p = p.trim();
    let expr = if p.starts_with('{') {
        p.to_string()
    } else if p.starts_with('.') || p.starts_with('$') || p.starts_with('@') {
        format!("{{{p}}}")
    } else {
        format!("{{.{p}}}")
    };
    crate::jsonpath::Template::parse(&expr).map_err(other)
}

fn custom_columns(spec: &str) -> Result<Vec<(String, crate::jsonpath::Template)>> {
    if spec.is_empty() {
        return Err(other(
            "custom-columns format specified but no custom columns given",
        ));
    }
    spec.split(',')
        .map(|col| {
            let (h, p) = col.split_once(':').ok_or_else(|| {
                other(format!(
                    "unexpected custom-columns spec: {col}, expected <header>:<json-path-expr>"
                ))
            })?;
            Ok((h.to_string(), relaxed_path(p)?))
        })
        .collect()
}

/// kubectl's custom-columns-file: a header line and a line of paths, split on whitespace.
fn custom_columns_file(text: &str) -> Result<Format> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(h), Some(p)) = (lines.next(), lines.next()) else {
        return Err(other("expected two lines in custom-columns file"));
    };
    let heads: Vec<&str> = h.split_whitespace().collect();
    let paths: Vec<&str> = p.split_whitespace().collect();
    if heads.len() != paths.len() {
        return Err(other(format!(
            "number of headers ({}) does not match number of jsonpaths ({})",
            heads.len(),
            paths.len()
        )));
    }
    Ok(Format::CustomColumns(
        heads
            .iter()
            .zip(paths)
            .map(|(h, p)| Ok((h.to_string(), relaxed_path(p)?)))
            .collect::<Result<_>>()?,
    ))
}

/// The cells of custom columns for one object: several results joined by ",", none "<none>".
pub fn custom_row(cols: &[(String, crate::jsonpath::Template)], obj: &Value) -> Vec<String> {
    cols.iter()
        .map(|(_, t)| {
            let vals = t.values(obj).unwrap_or_default();
            let texts: Vec<String> = vals
                .iter()
                .filter(|v| !v.is_null())
                .filter_map(crate::jsonpath::scalar_text)
                .collect();
            if texts.is_empty() {
                "<none>".to_string()
            } else {
                texts.join(",")
            }
        })
        .collect()
}

/// kubectl's List wrapper.
pub fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
}

/// JSON as kubectl prints it (JSONPrinter: Go's json.MarshalIndent with 4 spaces, map keys
/// sorted, and encoding/json's HTML-safe escapes `\u003c`, `\u003e`, `\u0026`, `\u2028`,
/// `\u2029` in strings), with a trailing newline.
pub fn to_json(v: &Value) -> String {
    coxswain_api::gojson::encode_indent(v, "    ")
}

/// YAML as kubectl writes it (go-yaml's quoting and styles), with a trailing newline.
pub fn to_yaml(v: &Value) -> String {
    let mut s = coxswain_api::yaml::to_string(v);
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
        // encoding/json's HTML-safe escapes, as kubectl's -o json prints them.
        assert_eq!(
            to_json(&json!({"cmd": "a && b <x> \u{2028}\u{2029}", "z": [], "y": {}})),
            "{\n    \"cmd\": \"a \\u0026\\u0026 b \\u003cx\\u003e \\u2028\\u2029\",\n    \"y\": {},\n    \"z\": []\n}\n"
        );
        assert_eq!(to_yaml(&json!({"a": "25%", "b": [1]})), "a: 25%\nb:\n- 1\n");
        // kubectl's quoting: strings that would read back as another type are double-quoted.
        assert_eq!(
            to_yaml(&json!({"creationTimestamp": "2024-01-02T03:04:05Z", "v": "1", "e": ""})),
            "creationTimestamp: \"2024-01-02T03:04:05Z\"\ne: \"\"\nv: \"1\"\n"
        );
        assert_eq!(name_line(Kind::Deployment, "x"), "deployment.apps/x");
        assert_eq!(Format::parse(Some("wide")).unwrap(), Format::Wide);
        assert!(Format::parse(Some("xml")).is_err());
    }
}
