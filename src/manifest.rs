//! Manifest text (YAML, multi-document, or JSON) to typed objects, strictly, as the Kubernetes
//! API server decodes a request body: apiVersion and kind checked against the kinds registry,
//! deprecated versions warned about, unknown and duplicate fields rejected with their paths.
use serde_json::Value as Json;

use crate::error::{Error, FieldError};
use crate::kinds::{Kind, Object, Served};

/// One decoded object and the warnings its decoding produced (deprecated apiVersion).
#[derive(Debug, Clone)]
pub struct Parsed {
    pub object: Object,
    pub warnings: Vec<String>,
}

/// The deepest nesting of collections a manifest or patch may have. Kubernetes' decoders stop
/// deeply nested input before decoding it; so do we, with a linear scan, because the YAML
/// parser's cost grows with the square of the depth.
pub const MAX_NESTING_DEPTH: usize = 100;

/// Reject text (YAML or JSON) whose flow collections (`[`, `{`) nest deeper than `max`, in one
/// linear pass and before any parsing. Brackets inside quoted scalars and comments do not count;
/// block collections nest by indentation, whose depth the size limit already bounds to
/// √(2·size).
pub fn check_nesting(text: &str, max: usize) -> Result<(), Error> {
    let mut depth = 0usize;
    // The last byte that is not a space or tab: a quote opens a quoted scalar only where a
    // scalar may start (a line start, or after `:`, `-`, `?`, `,`, `[`, `{`).
    let mut last = b'\n';
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut comment = false;
    // The byte just before (a `#` starts a comment only after white space or at a line start).
    let mut prev = b'\n';
    for &b in text.as_bytes() {
        let before = std::mem::replace(&mut prev, b);
        if comment {
            if b == b'\n' {
                comment = false;
                last = b;
            }
            continue;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if q == b'"' && b == b'\\' {
                escaped = true;
            } else if b == q {
                quote = None;
                last = b;
            }
            continue;
        }
        match b {
            b'"' | b'\'' if matches!(last, b'\n' | b':' | b'-' | b'?' | b',' | b'[' | b'{') => {
                quote = Some(b)
            }
            b'#' if matches!(before, b'\n' | b' ' | b'\t') => comment = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(Error::Parse(format!(
                        "the document nests deeper than {max} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if b != b' ' && b != b'\t' && b != b'\r' {
            last = b;
        }
    }
    Ok(())
}

#[cfg(test)]
mod nesting_tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_rejected_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(check_nesting(&deep, MAX_NESTING_DEPTH).is_err());
        let err = parse_manifests(&format!("a: {deep}")).unwrap_err();
        assert!(err.to_string().contains("deeper than 100"), "{err}");
        let json = format!(
            "{}{}",
            "{\"a\":".repeat(101),
            "1".to_string() + &"}".repeat(101)
        );
        assert!(check_nesting(&json, MAX_NESTING_DEPTH).is_err());
    }

    #[test]
    fn brackets_in_quotes_comments_and_shallow_documents_pass() {
        let ok = format!(
            "a: \"{}\"\nb: '{}'\n# {}\nc: [[1], {{d: [2]}}]\ne: it's [x]\n",
            "[".repeat(500),
            "{".repeat(500),
            "[".repeat(500)
        );
        assert!(check_nesting(&ok, MAX_NESTING_DEPTH).is_ok());
        let at_limit = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(check_nesting(&at_limit, MAX_NESTING_DEPTH).is_ok());
    }
}

/// Parse manifest text: YAML documents separated by `---` (empty ones skipped) or JSON. A
/// `kind: List` expands into its `items`. The first failing document fails the whole call.
pub fn parse_manifests(text: &str) -> Result<Vec<Parsed>, Error> {
    check_nesting(text, MAX_NESTING_DEPTH)?;
    let multi = is_multi_document(text);
    let label = |n: usize| {
        if multi {
            format!("document {n}: ")
        } else {
            String::new()
        }
    };
    let docs = crate::yaml::documents(text, MAX_NESTING_DEPTH)
        .map_err(|e| yaml_error(&e.error, &label(e.document)))?;
    let mut out = Vec::new();
    for (i, json) in docs.into_iter().enumerate() {
        if json.is_null() {
            continue;
        }
        parse_document(json, &label(i + 1), &mut out)?;
    }
    Ok(out)
}

/// Decode one object already in JSON form (apiVersion and kind inside), as
/// [`parse_manifests`] does for each document. A `List` is rejected here: use
/// [`parse_manifests`].
pub fn parse_value(value: Json) -> Result<Parsed, Error> {
    let mut out = Vec::new();
    parse_document(value, "", &mut out)?;
    match out.len() {
        1 => Ok(out.remove(0)),
        _ => Err(Error::Parse("expected exactly one object".to_string())),
    }
}

/// The warning Kubernetes gives for a deprecated apiVersion of a kind, or None when the version
/// is current (or not served at all).
pub fn deprecation_warning(kind: Kind, api_version: &str) -> Option<String> {
    if kind.serves(api_version) != Some(Served::Deprecated) {
        return None;
    }
    let (deprecated, removed) = match (api_version, kind) {
        ("batch/v1beta1", Kind::CronJob) => ("1.21", "1.25"),
        ("batch/v2alpha1", Kind::CronJob) => ("1.8", "1.21"),
        ("autoscaling/v2beta1", Kind::HorizontalPodAutoscaler) => ("1.22", "1.25"),
        ("autoscaling/v2beta2", Kind::HorizontalPodAutoscaler) => ("1.23", "1.26"),
        ("apps/v1beta1", _) | ("apps/v1beta2", _) | ("extensions/v1beta1", _) => ("1.9", "1.16"),
        ("events.k8s.io/v1", Kind::Event) => return None,
        _ => {
            return Some(format!(
                "{api_version} {kind} is deprecated; use {} {kind}",
                kind.api_version()
            ))
        }
    };
    Some(format!(
        "{api_version} {kind} is deprecated in v{deprecated}+, unavailable in v{removed}+; use {} {kind}",
        kind.api_version()
    ))
}

/// A strict deserialization error as a field error at its full path
/// (`spec.containers[0].livenessProbe.initialDelaySecands: unknown field ...`).
pub fn path_error(e: &serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let message = describe_serde_error(&e.inner().to_string());
    Error::Invalid(vec![FieldError::new(path, message)])
}

fn is_multi_document(text: &str) -> bool {
    let mut seps = 0;
    let mut content_before_first = false;
    for line in text.lines() {
        if line.starts_with("---") {
            seps += 1;
        } else if seps == 0 && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            content_before_first = true;
        }
    }
    seps > 1 || (seps == 1 && content_before_first)
}

fn parse_document(json: Json, label: &str, out: &mut Vec<Parsed>) -> Result<(), Error> {
    let Json::Object(map) = &json else {
        return Err(Error::Parse(format!(
            "{label}a manifest must be a mapping with apiVersion and kind, not {}",
            json_type(&json)
        )));
    };
    let api_version = map.get("apiVersion");
    let kind_name = map.get("kind");
    let mut missing = Vec::new();
    for (field, v) in [("apiVersion", api_version), ("kind", kind_name)] {
        match v {
            None | Some(Json::Null) => missing.push(FieldError::new(field, "Required value")),
            Some(Json::String(s)) if s.is_empty() => {
                missing.push(FieldError::new(field, "Required value"))
            }
            Some(Json::String(_)) => {}
            Some(other) => missing.push(FieldError::new(
                field,
                format!("Invalid value: {other}: must be a string"),
            )),
        }
    }
    if !missing.is_empty() {
        // Name misspelt top-level fields too: a typo of "apiVersion" is the likely cause.
        for key in map.keys() {
            for wanted in ["apiVersion", "kind", "metadata"] {
                if key != wanted && !map.contains_key(wanted) && edit_distance(key, wanted) <= 2 {
                    missing.push(FieldError::new(
                        key.clone(),
                        format!("unknown field {key:?} (did you mean {wanted:?}?)"),
                    ));
                }
            }
        }
        return Err(Error::Invalid(with_label(missing, label)));
    }
    let api_version = api_version
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let kind_name = kind_name
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();

    if kind_name == "List" {
        let items = match map.get("items") {
            None | Some(Json::Null) => return Ok(()),
            Some(Json::Array(items)) => items.clone(),
            Some(other) => {
                return Err(Error::Invalid(with_label(
                    vec![FieldError::new(
                        "items",
                        format!("Invalid value: {}: must be a list", json_type(other)),
                    )],
                    label,
                )))
            }
        };
        for (i, item) in items.into_iter().enumerate() {
            parse_document(item, &format!("{label}items[{i}]: "), out)?;
        }
        return Ok(());
    }

    let Some(kind) = Kind::from_manifest_kind(&kind_name) else {
        return Err(Error::UnknownKind(format!(
            "{label}no matches for kind {kind_name:?} in version {api_version:?}"
        )));
    };
    let mut warnings = Vec::new();
    match kind.serves(&api_version) {
        None => {
            let mut versions = vec![kind.api_version().to_string()];
            versions.extend(kind.other_api_versions().iter().map(|v| v.to_string()));
            return Err(Error::UnknownKind(format!(
                "{label}no matches for kind {kind_name:?} in version {api_version:?}: {kind} is served as {}",
                versions.join(", ")
            )));
        }
        Some(Served::Deprecated) => {
            if let Some(w) = deprecation_warning(kind, &api_version) {
                warnings.push(w);
            }
        }
        Some(Served::Current) => {}
    }

    let mut json = json;
    strip_nulls(&mut json);
    quantities_to_strings(&mut json, None);
    if kind == Kind::HorizontalPodAutoscaler {
        crate::hpa_convert::to_v2(&mut json, &api_version).map_err(|e| match e {
            Error::Invalid(errs) => Error::Invalid(with_label(errs, label)),
            other => other,
        })?;
    }
    let object = kind
        .from_json_value(json)
        .map_err(|e| match path_error(&e) {
            Error::Invalid(errs) => Error::Invalid(with_label(errs, label)),
            other => other,
        })?;
    out.push(Parsed { object, warnings });
    Ok(())
}

fn with_label(mut errs: Vec<FieldError>, label: &str) -> Vec<FieldError> {
    if !label.is_empty() {
        let l = label.trim_end_matches(": ");
        for e in &mut errs {
            e.message = format!("{} ({l})", e.message);
        }
    }
    errs
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

/// Turn a serde error from strict decoding into a Kubernetes-style message.
fn describe_serde_error(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let mut out = format!("unknown field {name:?}");
        // serde lists the accepted names; suggest the closest camelCase one.
        let expected: Vec<&str> = tail
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| !n.contains('_'))
            .collect();
        if let Some(best) = expected
            .iter()
            .map(|c| {
                (
                    edit_distance(&name.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                    *c,
                )
            })
            .filter(|(d, _)| *d <= 2 || (name.len() > 8 && *d <= 3))
            .min()
        {
            out.push_str(&format!(" (did you mean {:?}?)", best.1));
        }
        return out;
    }
    if let Some(rest) = msg.strip_prefix("duplicate field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return format!("Duplicate value: field {name:?} is set more than once");
    }
    if msg.contains("did not match any variant") {
        return "Invalid value: expected an integer".to_string();
    }
    format!("Invalid value: {msg}")
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A YAML error as Error::Parse with its line and column; a duplicate key as Error::Invalid
/// naming the key's path and the lines of both definitions.
fn yaml_error(e: &crate::yaml::YamlError, label: &str) -> Error {
    use crate::yaml::YamlError;
    match e {
        YamlError::DuplicateKey {
            path,
            key,
            line,
            first_line,
        } => Error::Invalid(with_label(
            vec![FieldError::new(
                path.clone(),
                format!(
                    "Duplicate value: line {line}: key {key:?} already set in map (first at line {first_line})"
                ),
            )],
            label,
        )),
        other => Error::Parse(format!("{label}{other}")),
    }
}

/// Drop `key: null` entries: Kubernetes treats an explicit null as unset.
fn strip_nulls(v: &mut Json) {
    match v {
        Json::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Json::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Quantities may be written as bare numbers (`cpu: 1`, `storage: 10`), which Kubernetes
/// accepts; the schema holds them as strings.
fn quantities_to_strings(v: &mut Json, key: Option<&str>) {
    const QUANTITY_MAPS: &[&str] = &["limits", "requests", "capacity", "allocatable", "overhead"];
    const QUANTITY_FIELDS: &[&str] = &["sizeLimit", "divisor", "averageValue", "tolerance"];
    match v {
        Json::Object(m) => {
            let is_quantity_map = key.is_some_and(|k| QUANTITY_MAPS.contains(&k));
            let is_metric_value = matches!(key, Some("target") | Some("current"));
            for (k, val) in m.iter_mut() {
                if let Json::Number(n) = val {
                    if is_quantity_map
                        || QUANTITY_FIELDS.contains(&k.as_str())
                        || (is_metric_value && k == "value")
                    {
                        *val = Json::String(n.to_string());
                        continue;
                    }
                }
                quantities_to_strings(val, Some(k));
            }
        }
        Json::Array(a) => a.iter_mut().for_each(|x| quantities_to_strings(x, None)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> Vec<FieldError> {
        match parse_manifests(text) {
            Err(Error::Invalid(errs)) => errs,
            other => panic!("expected Error::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let text = "---\n# just a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  k: v\n";
        let parsed = parse_manifests(text).expect("parses");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].object.kind(), Kind::Namespace);
        assert_eq!(parsed[0].object.name(), "a");
        assert_eq!(parsed[1].object.kind(), Kind::ConfigMap);
        assert_eq!(parsed[1].object.api_version(), "v1");
        assert!(parsed[1].warnings.is_empty());
    }

    #[test]
    fn json_and_lists_are_accepted() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}},
            {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":2}}]}"#;
        let parsed = parse_manifests(text).expect("parses");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].object.kind(), Kind::Deployment);
        let Object::Deployment(d) = &parsed[1].object else {
            panic!()
        };
        assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(2));
    }

    #[test]
    fn missing_api_version_and_kind_are_required_values() {
        let errs = invalid("metadata:\n  name: x\n");
        assert_eq!(
            errs,
            vec![
                FieldError::new("apiVersion", "Required value"),
                FieldError::new("kind", "Required value")
            ]
        );
        let errs = invalid("piVersion: v1\ncind: Pod\n");
        assert!(errs
            .iter()
            .any(|e| e.path == "apiVersion" && e.message == "Required value"));
        assert!(errs.iter().any(|e| e.path == "kind"));
        assert!(errs
            .iter()
            .any(|e| e.path == "piVersion" && e.message.contains("unknown field")));
        assert!(errs.iter().any(|e| e.path == "cind"));
    }

    #[test]
    fn unknown_kinds_and_versions_are_named() {
        let e = parse_manifests("apiVersion: v1\nkind: Widget\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"no matches for kind "Widget" in version "v1""#
        );
        let e = parse_manifests("apiVersion: apps/v1\nkind: CronJob\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(r#"no matches for kind "CronJob" in version "apps/v1""#),
            "{msg}"
        );
        assert!(
            msg.contains("batch/v1") && msg.contains("batch/v1beta1"),
            "{msg}"
        );
    }

    #[test]
    fn deprecated_versions_warn_like_kubernetes() {
        let text = "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: '* * * * *'\n";
        let p = parse_manifests(text).expect("parses");
        assert_eq!(
            p[0].warnings,
            vec!["batch/v1beta1 CronJob is deprecated in v1.21+, unavailable in v1.25+; use batch/v1 CronJob"]
        );
        assert_eq!(p[0].object.api_version(), "batch/v1beta1");
        let p = parse_manifests(&text.replace("v1beta1", "v2alpha1")).expect("parses");
        assert_eq!(p[0].warnings.len(), 1);
        assert!(p[0].warnings[0].starts_with("batch/v2alpha1 CronJob is deprecated in v"));
        assert!(p[0].warnings[0].ends_with("; use batch/v1 CronJob"));
        assert_eq!(
            deprecation_warning(Kind::Deployment, "extensions/v1beta1").as_deref(),
            Some("extensions/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment")
        );
        assert_eq!(deprecation_warning(Kind::CronJob, "batch/v1"), None);
        assert_eq!(
            deprecation_warning(Kind::HorizontalPodAutoscaler, "autoscaling/v1"),
            None
        );
    }

    #[test]
    fn unknown_fields_carry_their_full_path() {
        let cases = [
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: x\n  - name: b\n    image: z\n    livenessProbe:\n      initialDelaySecands: 3\n",
                "spec.containers[1].livenessProbe.initialDelaySecands",
                "initialDelaySeconds",
            ),
            (
                "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: d\nspec:\n  replicas: 2\n",
                "spec.replicas",
                "",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  lables:\n    a: b\n",
                "metadata.lables",
                "labels",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  volumes:\n  - name: v\n    hostPath:\n      path: /x\n      typo: 1\n",
                "spec.volumes[0].hostPath.typo",
                "type",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - key: a\n            operater: In\n",
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operater",
                "operator",
            ),
        ];
        for (text, path, suggestion) in cases {
            let errs = invalid(text);
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].path, path);
            let field = path.rsplit('.').next().unwrap_or_default();
            assert!(
                errs[0]
                    .message
                    .starts_with(&format!("unknown field {field:?}")),
                "{}",
                errs[0].message
            );
            if !suggestion.is_empty() {
                assert!(
                    errs[0]
                        .message
                        .contains(&format!("did you mean {suggestion:?}")),
                    "{}",
                    errs[0].message
                );
            }
        }
    }

    #[test]
    fn wrong_types_name_the_path() {
        let errs = invalid(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    enabled: true\n",
        );
        assert_eq!(errs[0].path, "metadata.labels.enabled");
        assert!(errs[0].message.contains("boolean"), "{}", errs[0].message);
        let errs = invalid(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    env:\n    - name: X\n      value: 1\n",
        );
        assert_eq!(errs[0].path, "spec.containers[0].env[0].value");
    }

    #[test]
    fn nulls_are_unset_and_numeric_quantities_are_strings() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\nspec:\n  restartPolicy:\n  containers:\n  - name: a\n    image: x\n    resources:\n      limits:\n        cpu: 1\n        memory: 0.5\n";
        let p = parse_manifests(text).expect("parses");
        let Object::Pod(pod) = &p[0].object else {
            panic!()
        };
        let c = &pod.spec.as_ref().expect("spec").containers[0];
        let limits = &c.resources.as_ref().expect("resources").limits;
        assert_eq!(limits.get("cpu").map(String::as_str), Some("1"));
        assert_eq!(limits.get("memory").map(String::as_str), Some("0.5"));
    }

    #[test]
    fn duplicate_keys_name_the_key_and_line() {
        let text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  backoffLimit: 4\n  ttlSecondsAfterFinished:\n  # comment\n  ttlSecondsAfterFinished: 0\n";
        let errs = invalid(text);
        assert_eq!(errs[0].path, "spec.ttlSecondsAfterFinished");
        assert!(errs[0].message.contains("line 9"), "{}", errs[0].message);
        assert!(
            errs[0].message.contains("first at line 7"),
            "{}",
            errs[0].message
        );
        let errs = invalid("apiVersion: v1\nkind: Pod\nkind: Pod\n");
        assert_eq!(errs[0].path, "kind");
        assert!(errs[0].message.contains("line 3"), "{}", errs[0].message);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = parse_manifests("apiVersion: v1\nkind: Pod\nnetadata\n name: x\n").unwrap_err();
        let Error::Parse(msg) = e else {
            panic!("{e:?}")
        };
        assert!(msg.starts_with("yaml: line 4 column "), "{msg}");
    }

    #[test]
    fn errors_in_later_documents_name_the_document() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n  bogus: 1\n";
        let errs = invalid(text);
        assert_eq!(errs[0].path, "metadata.bogus");
        assert!(
            errs[0].message.contains("document 2"),
            "{}",
            errs[0].message
        );
        let e =
            parse_manifests("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\nb: [\n")
                .unwrap_err();
        assert!(e.to_string().starts_with("document 2: "), "{e}");
    }

    #[test]
    fn yaml_reads_as_kubernetes_reads_it() {
        // `defaultMode: 0644` is octal (YAML 1.1), as Kubernetes stores it: 420.
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: x\n  volumes:\n  - name: v\n    configMap:\n      name: c\n      defaultMode: 0644\n";
        let p = parse_manifests(text).expect("parses");
        let Object::Pod(pod) = &p[0].object else {
            panic!()
        };
        let v = &pod.spec.as_ref().expect("spec").volumes[0];
        let mode = v.config_map.as_ref().and_then(|c| c.default_mode);
        assert_eq!(mode, Some(420));
        // `yes` is a boolean, so a string field given it is rejected at its path, as the API
        // server rejects it ("cannot unmarshal bool into ... of type string").
        let errs =
            invalid("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  debug: yes\n");
        assert_eq!(errs[0].path, "data.debug");
        assert!(errs[0].message.contains("boolean"), "{}", errs[0].message);
        // Quoted, it is the string.
        let p = parse_manifests(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  debug: 'yes'\n",
        )
        .expect("parses");
        let Object::ConfigMap(cm) = &p[0].object else {
            panic!()
        };
        assert_eq!(cm.data.get("debug").map(String::as_str), Some("yes"));
        // Anchors and merge keys work in manifests.
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: &l {app: web}\n  annotations:\n    <<: *l\n    extra: x\n";
        let p = parse_manifests(text).expect("parses");
        assert_eq!(
            p[0].object
                .meta()
                .annotations
                .get("app")
                .map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn parse_value_takes_json() {
        let v =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let p = parse_value(v).expect("parses");
        assert_eq!(p.object.name(), "c");
    }
}
