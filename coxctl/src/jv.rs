//! Small accessors over an object's Kubernetes JSON (`Object::to_json_value`). Printers read
//! JSON rather than the generated structs: fields left at their default are simply absent, and
//! a missing field reads as its default.
use serde_json::Value;

/// The value at a dotted path ("spec.template.spec"); Null when absent.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = match cur.get(part) {
            Some(x) => x,
            None => return &NULL,
        };
    }
    cur
}

/// The string at `path` ("" when absent or not a string; numbers and bools are formatted).
pub fn s<'a>(v: &'a Value, path: &str) -> std::borrow::Cow<'a, str> {
    match at(v, path) {
        Value::String(x) => std::borrow::Cow::Borrowed(x.as_str()),
        Value::Number(n) => std::borrow::Cow::Owned(n.to_string()),
        Value::Bool(b) => std::borrow::Cow::Owned(b.to_string()),
        _ => std::borrow::Cow::Borrowed(""),
    }
}

/// The integer at `path`, also when encoded as a string (proto3 JSON int64); None when absent.
pub fn opt_i(v: &Value, path: &str) -> Option<i64> {
    match at(v, path) {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(x) => x.parse().ok(),
        _ => None,
    }
}

/// The integer at `path`, 0 when absent.
pub fn i(v: &Value, path: &str) -> i64 {
    opt_i(v, path).unwrap_or(0)
}

/// The bool at `path`; None when absent.
pub fn opt_b(v: &Value, path: &str) -> Option<bool> {
    at(v, path).as_bool()
}

/// The bool at `path`, false when absent.
pub fn b(v: &Value, path: &str) -> bool {
    opt_b(v, path).unwrap_or(false)
}

/// The array at `path` (empty when absent).
pub fn arr<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path).as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The string map at `path`, sorted by key (empty when absent).
pub fn map(v: &Value, path: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = match at(v, path).as_object() {
        Some(m) => m
            .iter()
            .map(|(k, x)| {
                let val = match x {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), val)
            })
            .collect(),
        None => Vec::new(),
    };
    out.sort();
    out
}

/// Number of entries of the object at `path` (0 when absent).
pub fn len_obj(v: &Value, path: &str) -> usize {
    at(v, path).as_object().map(|m| m.len()).unwrap_or(0)
}

/// kubectl's `labels.FormatLabels`: "k=v,k2=v2" sorted by key, "<none>" when empty.
pub fn format_labels(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A label selector (matchLabels + matchExpressions, JSON) as kubectl prints it
/// (`metav1.LabelSelectorAsSelector(...).String()`): requirements sorted by key.
pub fn format_selector(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in map(sel, "matchLabels") {
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for e in arr(sel, "matchExpressions") {
        let key = s(e, "key").into_owned();
        let mut values: Vec<String> = arr(e, "values")
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        let text = match s(e, "operator").as_ref() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        };
        reqs.push((key, text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// "<none>" for an empty string.
pub fn or_none(s: impl Into<String>) -> String {
    let s = s.into();
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_read_paths_and_defaults() {
        let v =
            json!({"spec": {"replicas": 3, "x": "7", "paused": true, "sel": {"b": "2", "a": "1"}}});
        assert_eq!(i(&v, "spec.replicas"), 3);
        assert_eq!(i(&v, "spec.x"), 7);
        assert_eq!(i(&v, "spec.missing"), 0);
        assert_eq!(opt_i(&v, "spec.missing"), None);
        assert!(b(&v, "spec.paused"));
        assert_eq!(s(&v, "spec.replicas"), "3");
        assert_eq!(s(&v, "nope.deeper"), "");
        assert_eq!(format_labels(&map(&v, "spec.sel")), "a=1,b=2");
        assert_eq!(format_labels(&map(&v, "spec.none")), "<none>");
    }

    #[test]
    fn selectors_print_like_kubectl() {
        let sel = json!({
            "matchLabels": {"app": "nginx-pod"},
            "matchExpressions": [
                {"key": "version", "operator": "In", "values": ["v2.0", "v1.0"]},
                {"key": "env", "operator": "NotIn", "values": ["qa", "dev"]},
                {"key": "tier", "operator": "Exists"},
                {"key": "old", "operator": "DoesNotExist"}
            ]
        });
        assert_eq!(
            format_selector(&sel),
            "app=nginx-pod,env notin (dev,qa),!old,tier,version in (v1.0,v2.0)"
        );
        assert_eq!(format_selector(&Value::Null), "");
    }
}
