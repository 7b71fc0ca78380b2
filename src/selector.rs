//! Label selectors (equality and set-based, as `kubectl -l` takes them and as
//! `metav1.LabelSelector` holds them) and field selectors (`--field-selector`).
use std::collections::BTreeMap;

use crate::kinds::{Kind, Object};
use crate::v1;
use crate::validation::{is_qualified_name, is_valid_label_value};
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    /// A requirement checked as labels.NewRequirement checks it (LabelSelectorAsSelector and
    /// labels.Parse build theirs through it): the key a qualified name; In/NotIn with at least
    /// one value; =, == and != with exactly one; Exists/DoesNotExist with none; Gt/Lt with one
    /// integer; every value a label value (≤ 63 characters, may be empty). The key and value
    /// rules are validation's (`is_qualified_name`, `is_valid_label_value`).
    pub fn new(key: String, op: Op, values: Vec<String>) -> Result<Self, String> {
        let mut errs = Vec::new();
        let key_errs = is_qualified_name(&key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "key: Invalid value: {key:?}: {}",
                key_errs.join("; ")
            ));
        }
        let go_list = || {
            let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            format!("[]string{{{}}}", quoted.join(", "))
        };
        let count = match op {
            Op::In | Op::NotIn if values.is_empty() => {
                Some("for 'in', 'notin' operators, values set can't be empty")
            }
            Op::Eq | Op::NotEq if values.len() != 1 => {
                Some("exact-match compatibility requires one single value")
            }
            Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                Some("values set must be empty for exists and does not exist")
            }
            Op::Gt | Op::Lt if values.len() != 1 => {
                Some("for 'Gt', 'Lt' operators, exactly one value is required")
            }
            _ => None,
        };
        if let Some(m) = count {
            errs.push(format!("values: Invalid value: {}: {m}", go_list()));
        }
        if matches!(op, Op::Gt | Op::Lt) {
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(format!(
                        "values[{i}]: Invalid value: {v:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                    ));
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = is_valid_label_value(v);
            if !value_errs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {v:?}: {}",
                    value_errs.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => Ok(Requirement { key, op, values }),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(&|k| labels.get(k).map(String::as_str))
    }

    /// Match against labels looked up by `get`.
    pub fn matches_with<'a>(&self, get: &dyn Fn(&str) -> Option<&'a str>) -> bool {
        let v = get(&self.key);
        match self.op {
            Op::Eq | Op::In => v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotEq | Op::NotIn => v.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (v, self.values.first()) else {
                    return false;
                };
                match (v.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(v), Ok(b)) => (self.op == Op::Gt && v > b) || (self.op == Op::Lt && v < b),
                    _ => false,
                }
            }
        }
    }
}

/// A label selector. `Everything` matches all objects, `Nothing` none (a nil selector in
/// Kubernetes' LabelSelectorAsSelector).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
    pub nothing: bool,
}

impl LabelSelector {
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    pub fn nothing() -> Self {
        LabelSelector {
            requirements: vec![],
            nothing: true,
        }
    }

    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(&|k| labels.get(k).map(String::as_str))
    }

    /// Match against labels looked up by `get`.
    pub fn matches_with<'a>(&self, get: &dyn Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_with(get))
    }

    /// From a `metav1.LabelSelector`: matchLabels and matchExpressions ANDed; an empty selector
    /// matches everything; a missing one (None) nothing.
    pub fn from_proto(sel: Option<&v1::LabelSelector>) -> Result<Self, Error> {
        let Some(sel) = sel else {
            return Ok(LabelSelector::nothing());
        };
        let mut requirements = Vec::new();
        for (k, v) in &sel.match_labels {
            requirements.push(
                Requirement::new(k.clone(), Op::Eq, vec![v.clone()]).map_err(Error::Selector)?,
            );
        }
        for e in &sel.match_expressions {
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => {
                    return Err(Error::Selector(format!(
                        "{other:?} is not a valid label selector operator"
                    )))
                }
            };
            requirements.push(
                Requirement::new(e.key.clone(), op, e.values.clone()).map_err(Error::Selector)?,
            );
        }
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Parse kubectl's string form: `app=x,env!=dev,tier in (a,b),tier notin (c),!k,k`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let mut p = Parser {
            s: s.as_bytes(),
            i: 0,
            src: s,
        };
        let mut requirements = Vec::new();
        p.skip_ws();
        if p.eof() {
            return Ok(LabelSelector::everything());
        }
        loop {
            let r = p.requirement()?;
            requirements.push(Requirement::new(r.key, r.op, r.values).map_err(|e| {
                Error::Selector(format!("{s:?}: unable to parse requirement: {e}"))
            })?);
            p.skip_ws();
            if p.eof() {
                break;
            }
            p.expect(b',')?;
        }
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r.op {
                Op::Eq => format!("{}={}", r.key, r.values.join(",")),
                Op::NotEq => format!("{}!={}", r.key, r.values.join(",")),
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
                Op::Gt => format!("{}>{}", r.key, r.values.join(",")),
                Op::Lt => format!("{}<{}", r.key, r.values.join(",")),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn err(&self, what: &str) -> Error {
        Error::Selector(format!("{:?}: {what} at position {}", self.src, self.i))
    }
    fn expect(&mut self, c: u8) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/') {
                self.i += 1;
            } else {
                break;
            }
        }
        self.src[start..self.i].to_string()
    }
    fn requirement(&mut self) -> Result<Requirement, Error> {
        self.skip_ws();
        if self.peek() == Some(b'!') {
            self.i += 1;
            let key = self.word();
            if key.is_empty() {
                return Err(self.err("expected a key after '!'"));
            }
            return Ok(Requirement {
                key,
                op: Op::DoesNotExist,
                values: vec![],
            });
        }
        let key = self.word();
        if key.is_empty() {
            return Err(self.err("expected a key"));
        }
        self.skip_ws();
        let rest = &self.s[self.i..];
        let (op, len) = if rest.starts_with(b"==") {
            (Op::Eq, 2)
        } else if rest.starts_with(b"!=") {
            (Op::NotEq, 2)
        } else if rest.starts_with(b"=") {
            (Op::Eq, 1)
        } else if rest.starts_with(b">") {
            (Op::Gt, 1)
        } else if rest.starts_with(b"<") {
            (Op::Lt, 1)
        } else if rest.is_empty() || rest.starts_with(b",") {
            return Ok(Requirement {
                key,
                op: Op::Exists,
                values: vec![],
            });
        } else {
            let save = self.i;
            let w = self.word();
            match w.as_str() {
                "in" => return self.set(key, Op::In),
                "notin" => return self.set(key, Op::NotIn),
                _ => {
                    self.i = save;
                    return Err(self.err("expected an operator (=, ==, !=, in, notin)"));
                }
            }
        };
        self.i += len;
        let value = self.word();
        if matches!(op, Op::Gt | Op::Lt) && value.parse::<i64>().is_err() {
            return Err(self.err("expected an integer"));
        }
        Ok(Requirement {
            key,
            op,
            values: vec![value],
        })
    }
    fn set(&mut self, key: String, op: Op) -> Result<Requirement, Error> {
        self.expect(b'(')?;
        let mut values = Vec::new();
        loop {
            let v = self.word();
            values.push(v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.err("expected ',' or ')'")),
            }
        }
        Ok(Requirement { key, op, values })
    }
}

/// A field selector: `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// (field, equal?, value)
    pub terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(Error::Selector(format!(
                    "{s:?}: invalid field selector {part:?}"
                )));
            };
            terms.push((field.trim().to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Check every field is one `kind` supports, as the API server does ("field label not
    /// supported").
    pub fn check_supported(&self, kind: Kind) -> Result<(), Error> {
        for (f, _, _) in &self.terms {
            if !supported_fields(kind).contains(&f.as_str()) {
                return Err(Error::Selector(format!(
                    "field label not supported: {f} (for {kind}: {})",
                    supported_fields(kind).join(", ")
                )));
            }
        }
        Ok(())
    }

    pub fn matches(&self, obj: &Object) -> bool {
        self.matches_with(&|f| field_value(obj, f))
    }

    /// Match against field values looked up by `get`.
    pub fn matches_with(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|(f, eq, v)| {
            let actual = get(f).unwrap_or_default();
            (actual == *v) == *eq
        })
    }
}

/// The fields a kind can be selected by.
pub fn supported_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Pod => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.schedulerName",
            "spec.restartPolicy",
            "status.phase",
            "status.podIP",
        ],
        Kind::Event => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "reason",
            "type",
            "source",
        ],
        Kind::Node => &["metadata.name", "spec.unschedulable"],
        Kind::Namespace => &["metadata.name", "status.phase"],
        Kind::Job => &["metadata.name", "metadata.namespace", "status.successful"],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

/// The value of a selectable field of an object (None when the kind has no such field).
pub fn field_value(obj: &Object, field: &str) -> Option<String> {
    match field {
        "metadata.name" => return Some(obj.name().to_string()),
        "metadata.namespace" => return Some(obj.namespace().to_string()),
        _ => {}
    }
    match obj {
        Object::Pod(p) => {
            let spec = p.spec.as_ref();
            let status = p.status.as_ref();
            match field {
                "spec.nodeName" => Some(spec.map(|s| s.node_name.clone()).unwrap_or_default()),
                "spec.schedulerName" => {
                    Some(spec.map(|s| s.scheduler_name.clone()).unwrap_or_default())
                }
                "spec.restartPolicy" => {
                    Some(spec.map(|s| s.restart_policy.clone()).unwrap_or_default())
                }
                "status.phase" => Some(status.map(|s| s.phase.clone()).unwrap_or_default()),
                "status.podIP" => Some(status.map(|s| s.pod_ip.clone()).unwrap_or_default()),
                _ => None,
            }
        }
        Object::Event(e) => {
            let io = e.involved_object.clone().unwrap_or_default();
            match field {
                "involvedObject.kind" => Some(io.kind),
                "involvedObject.namespace" => Some(io.namespace),
                "involvedObject.name" => Some(io.name),
                "involvedObject.uid" => Some(io.uid),
                "reason" => Some(e.reason.clone()),
                "type" => Some(e.r#type.clone()),
                "source" => Some(e.source.clone().unwrap_or_default().component),
                _ => None,
            }
        }
        Object::Node(n) => match field {
            "spec.unschedulable" => {
                Some(n.spec.as_ref().is_some_and(|s| s.unschedulable).to_string())
            }
            _ => None,
        },
        Object::Namespace(n) => match field {
            "status.phase" => Some(
                n.status
                    .as_ref()
                    .map(|s| s.phase.clone())
                    .unwrap_or_default(),
            ),
            _ => None,
        },
        Object::Job(j) => match field {
            "status.successful" => Some(
                j.status
                    .as_ref()
                    .map(|s| s.succeeded)
                    .unwrap_or_default()
                    .to_string(),
            ),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_set_based_selectors() {
        let s = LabelSelector::parse("app=x,env!=dev,tier in (a,b),!k,j").expect("parses");
        assert!(s.matches(&labels(&[("app", "x"), ("tier", "a"), ("j", "")])));
        assert!(s.matches(&labels(&[
            ("app", "x"),
            ("tier", "b"),
            ("env", "prod"),
            ("j", "1")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "x"),
            ("tier", "a"),
            ("j", ""),
            ("k", "1")
        ])));
        assert!(!s.matches(&labels(&[("app", "x"), ("tier", "c"), ("j", "")])));
        assert!(!s.matches(&labels(&[
            ("app", "x"),
            ("tier", "a"),
            ("env", "dev"),
            ("j", "")
        ])));
        assert!(!s.matches(&labels(&[("app", "x"), ("tier", "a")])));
    }

    #[test]
    fn notin_and_not_equal_match_absent_keys() {
        let s = LabelSelector::parse("tier notin (a), env != dev").expect("parses");
        assert!(s.matches(&labels(&[])));
        assert!(!s.matches(&labels(&[("tier", "a")])));
    }

    #[test]
    fn empty_selector_matches_everything_and_nil_nothing() {
        assert!(LabelSelector::parse("")
            .expect("parses")
            .matches(&labels(&[("a", "b")])));
        let empty = v1::LabelSelector::default();
        assert!(LabelSelector::from_proto(Some(&empty))
            .expect("ok")
            .matches(&labels(&[])));
        assert!(!LabelSelector::from_proto(None)
            .expect("ok")
            .matches(&labels(&[])));
    }

    #[test]
    fn bad_selectors_are_errors() {
        assert!(LabelSelector::parse("a in (b").is_err());
        assert!(LabelSelector::parse("a ~ b").is_err());
        assert!(LabelSelector::parse("=b").is_err());
        assert!(LabelSelector::parse("a>b").is_err());
    }

    /// labels.NewRequirement's rules, through LabelSelectorAsSelector (from_proto) and
    /// labels.Parse (kubectl's -l).
    #[test]
    fn requirements_are_checked_as_upstream() {
        let expr = |key: &str, op: &str, values: &[&str]| v1::LabelSelector {
            match_expressions: vec![v1::LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
            ..Default::default()
        };
        let long = "a".repeat(64);
        let cases: Vec<(v1::LabelSelector, String)> = vec![
            (
                expr("app", "In", &[]),
                "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty".into(),
            ),
            (
                expr("app", "NotIn", &[]),
                "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty".into(),
            ),
            (
                expr("app", "Exists", &["a"]),
                "values: Invalid value: []string{\"a\"}: values set must be empty for exists and does not exist".into(),
            ),
            (
                expr("app", "DoesNotExist", &["a", "b"]),
                "values: Invalid value: []string{\"a\", \"b\"}: values set must be empty for exists and does not exist".into(),
            ),
            (
                expr("app", "Gt", &["1"]),
                "\"Gt\" is not a valid label selector operator".into(),
            ),
            (
                expr("-app", "Exists", &[]),
                "key: Invalid value: \"-app\": name part must consist of alphanumeric characters".into(),
            ),
            (
                expr(&long, "Exists", &[]),
                format!("key: Invalid value: \"{long}\": name part must be no more than 63 characters"),
            ),
            (
                expr("app", "In", &["a", "b c"]),
                "values[1][app]: Invalid value: \"b c\": a valid label must be an empty string".into(),
            ),
            (
                expr("app", "NotIn", &[&long]),
                format!("values[0][app]: Invalid value: \"{long}\": must be no more than 63 characters"),
            ),
            (
                v1::LabelSelector {
                    match_labels: [("x/y/z".to_string(), "a".to_string())].into(),
                    ..Default::default()
                },
                "key: Invalid value: \"x/y/z\": a qualified name must consist".into(),
            ),
            (
                v1::LabelSelector {
                    match_labels: [("app".to_string(), "-a".to_string())].into(),
                    ..Default::default()
                },
                "values[0][app]: Invalid value: \"-a\": a valid label must be".into(),
            ),
            (
                expr("-k", "In", &[]),
                "[key: Invalid value: \"-k\": name part must consist".into(),
            ),
        ];
        for (sel, want) in &cases {
            let e = LabelSelector::from_proto(Some(sel)).expect_err(want);
            let got = e.to_string();
            assert!(
                got.starts_with(&format!("invalid selector {want}")),
                "{sel:?}: want {want}\n got {got}"
            );
        }
        let ok = v1::LabelSelector {
            match_labels: [("example.com/app".to_string(), String::new())].into(),
            match_expressions: expr("tier", "NotIn", &["", "a.b_c-1"]).match_expressions,
        };
        let s = LabelSelector::from_proto(Some(&ok)).expect("valid");
        assert!(s.matches(&labels(&[("example.com/app", "")])));

        // kubectl's -l: the same rules after the syntax.
        for (text, want) in [
            (
                "app=-x",
                "values[0][app]: Invalid value: \"-x\": a valid label must be",
            ),
            ("app in (a,-b)", "values[1][app]: Invalid value: \"-b\""),
            ("-app", "key: Invalid value: \"-app\""),
            (
                "a/b/c=x",
                "key: Invalid value: \"a/b/c\": a qualified name must consist",
            ),
            (&format!("{long}=x"), "key: Invalid value:"),
        ] {
            let got = LabelSelector::parse(text).expect_err(text).to_string();
            assert!(
                got.starts_with(&format!(
                    "invalid selector {text:?}: unable to parse requirement: {want}"
                )),
                "{text}: want {want}\n got {got}"
            );
        }
        for text in [
            "app=",
            "example.com/app in (a,b),!x",
            "app notin ()",
            "a.b_c-d",
        ] {
            LabelSelector::parse(text).expect(text);
        }
    }

    #[test]
    fn field_selectors() {
        let p = v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: "p1".into(),
                ..Default::default()
            }),
            spec: Some(v1::PodSpec {
                node_name: "node1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let o = Object::Pod(p);
        let fs = FieldSelector::parse("spec.nodeName=node1,metadata.name!=p2").expect("parses");
        assert!(fs.check_supported(Kind::Pod).is_ok());
        assert!(fs.matches(&o));
        assert!(!FieldSelector::parse("spec.nodeName==node2")
            .expect("parses")
            .matches(&o));
        assert!(FieldSelector::parse("spec.foo=1")
            .expect("parses")
            .check_supported(Kind::Pod)
            .is_err());
    }
}
