//! Resolving kubectl resource arguments: `pods`, `deploy,rs x y`, `pod/x deploy/y`, `all`,
//! and label/annotation arguments `k=v k2-`.
use coxswain_api::Kind;

use crate::client::{other, Result};

/// kubectl's `all` category, in kubectl's order.
pub const ALL_CATEGORY: &[Kind] = &[
    Kind::Pod,
    Kind::Service,
    Kind::DaemonSet,
    Kind::Deployment,
    Kind::ReplicaSet,
    Kind::StatefulSet,
    Kind::HorizontalPodAutoscaler,
    Kind::CronJob,
    Kind::Job,
];

/// What the resource arguments select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Each kind requested, in order, with the names asked for (empty: list).
    pub groups: Vec<(Kind, Vec<String>)>,
    /// Several kinds were asked for (or `all`): names print as "kind.group/name".
    pub multi: bool,
    /// Exactly one named object was asked for (prints as an object, not a List).
    pub single: bool,
}

pub fn parse_kind(name: &str) -> Result<Kind> {
    Kind::parse(name).ok_or_else(|| {
        other(format!(
            "the server doesn't have a resource type \"{name}\""
        ))
    })
}

/// Parse resource arguments as kubectl does.
pub fn parse_targets(args: &[String]) -> Result<Targets> {
    let Some(first) = args.first() else {
        return Err(other(
            "You must specify the type of resource to get. Use \"coxctl api-resources\" for a complete list of supported resources.",
        ));
    };
    if first.contains('/') {
        let mut groups: Vec<(Kind, Vec<String>)> = Vec::new();
        for a in args {
            let (k, n) = a.split_once('/').ok_or_else(|| {
                other(format!("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'coxctl get resource/<resource_name>' instead of 'coxctl get resource resource/<resource_name>'): {a}"))
            })?;
            let kind = parse_kind(k)?;
            if n.is_empty() {
                return Err(other(format!(
                    "arguments in resource/name form must have a single resource and name: {a}"
                )));
            }
            match groups.iter_mut().find(|(gk, _)| *gk == kind) {
                Some((_, names)) => names.push(n.to_string()),
                None => groups.push((kind, vec![n.to_string()])),
            }
        }
        let multi = groups.len() > 1;
        let single = args.len() == 1;
        return Ok(Targets {
            groups,
            multi,
            single,
        });
    }
    let mut kinds: Vec<Kind> = Vec::new();
    let mut multi = false;
    for part in first.split(',').filter(|p| !p.is_empty()) {
        if part.eq_ignore_ascii_case("all") {
            multi = true;
            for k in ALL_CATEGORY {
                if !kinds.contains(k) {
                    kinds.push(*k);
                }
            }
        } else {
            let k = parse_kind(part)?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    if kinds.is_empty() {
        return Err(other(format!(
            "the server doesn't have a resource type \"{first}\""
        )));
    }
    multi |= kinds.len() > 1;
    let names: Vec<String> = args[1..].to_vec();
    if let Some(n) = names.iter().find(|n| n.contains('/')) {
        return Err(other(format!("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'coxctl get resource/<resource_name>' instead of 'coxctl get resource resource/<resource_name>'): {n}")));
    }
    let single = kinds.len() == 1 && names.len() == 1;
    Ok(Targets {
        groups: kinds.into_iter().map(|k| (k, names.clone())).collect(),
        multi,
        single,
    })
}

/// One change of a label or annotation argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    Set(String, String),
    Remove(String),
}

impl KeyChange {
    pub fn key(&self) -> &str {
        match self {
            KeyChange::Set(k, _) | KeyChange::Remove(k) => k,
        }
    }
}

/// Whether `arg` is a `k=v` or `k-` argument rather than a resource (as kubectl: a trailing
/// '-' always removes, also for prefixed keys such as `deployment.kubernetes.io/x-`).
pub fn is_key_change(arg: &str) -> bool {
    arg.contains('=') || arg.ends_with('-')
}

/// Parse `k=v` / `k-` arguments (`what` is "label" or "annotation", for messages).
pub fn parse_key_changes(args: &[String], what: &str) -> Result<Vec<KeyChange>> {
    let mut out = Vec::new();
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            if k.is_empty() {
                return Err(other(format!("invalid {what} spec: {a}")));
            }
            if what == "label" {
                validate_label(k, v).map_err(|e| other(format!("invalid label spec: {a}: {e}")))?;
            }
            out.push(KeyChange::Set(k.to_string(), v.to_string()));
        } else if let Some(k) = a.strip_suffix('-') {
            if k.is_empty() {
                return Err(other(format!("invalid {what} spec: {a}")));
            }
            out.push(KeyChange::Remove(k.to_string()));
        } else {
            return Err(other(format!("invalid {what} spec: {a}")));
        }
    }
    for (i, c) in out.iter().enumerate() {
        if out[..i].iter().any(|p| p.key() == c.key()) {
            return Err(other(format!(
                "can not both modify and remove the same {what} in the same command: {}",
                c.key()
            )));
        }
    }
    Ok(out)
}

fn valid_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn validate_label(k: &str, v: &str) -> std::result::Result<(), String> {
    let name = match k.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 {
                return Err(format!("invalid label key {k:?}"));
            }
            name
        }
        None => k,
    };
    if !valid_name_part(name) {
        return Err(format!("invalid label key {k:?}"));
    }
    if !v.is_empty() && !valid_name_part(v) {
        return Err(format!("invalid label value {v:?}"));
    }
    Ok(())
}

/// Split `label` arguments into resource arguments and key changes.
pub fn split_label_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut res = Vec::new();
    let mut changes = Vec::new();
    for (i, a) in args.iter().enumerate() {
        // The first argument is always a resource (kind or kind/name).
        if i > 0 && is_key_change(a) {
            changes.push(a.clone());
        } else {
            res.push(a.clone());
        }
    }
    (res, changes)
}

/// The merge patch of a set of key changes, checked against the current values. Returns the
/// patch (None if nothing changes) or kubectl's overwrite error.
pub fn key_patch(
    current: &std::collections::BTreeMap<String, String>,
    changes: &[KeyChange],
    overwrite: bool,
    what: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let mut patch = serde_json::Map::new();
    for c in changes {
        match c {
            KeyChange::Set(k, v) => {
                match current.get(k) {
                    Some(old) if old == v => continue,
                    Some(old) if !overwrite => {
                        return Err(other(format!(
                            "'{k}' already has a value ({old}), and --overwrite is false"
                        )));
                    }
                    _ => {}
                }
                patch.insert(k.clone(), serde_json::Value::String(v.clone()));
            }
            KeyChange::Remove(k) => {
                if current.contains_key(k) {
                    patch.insert(k.clone(), serde_json::Value::Null);
                } else {
                    eprintln!("{what} \"{k}\" not found.");
                }
            }
        }
    }
    Ok(if patch.is_empty() { None } else { Some(patch) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn comma_separated_kinds_resolve() {
        let t = parse_targets(&v(&["deploy,rs"])).unwrap();
        assert_eq!(
            t.groups,
            vec![(Kind::Deployment, vec![]), (Kind::ReplicaSet, vec![])]
        );
        assert!(t.multi);
        assert!(!t.single);
        let t = parse_targets(&v(&["po", "a"])).unwrap();
        assert_eq!(t.groups, vec![(Kind::Pod, v(&["a"]))]);
        assert!(!t.multi && t.single);
        let t = parse_targets(&v(&["deploy,pod,svc"])).unwrap();
        assert_eq!(t.groups.len(), 3);
    }

    #[test]
    fn kind_slash_name_and_all() {
        let t = parse_targets(&v(&["pod/a", "deploy/b", "pod/c"])).unwrap();
        assert_eq!(
            t.groups,
            vec![(Kind::Pod, v(&["a", "c"])), (Kind::Deployment, v(&["b"]))]
        );
        assert!(t.multi);
        let t = parse_targets(&v(&["all"])).unwrap();
        assert_eq!(
            t.groups.iter().map(|g| g.0).collect::<Vec<_>>(),
            ALL_CATEGORY.to_vec()
        );
        assert!(t.multi);
        assert!(parse_targets(&v(&["nope"])).is_err());
        assert!(parse_targets(&v(&[])).is_err());
        assert_eq!(
            parse_targets(&v(&["foo"])).unwrap_err().to_string(),
            "error: the server doesn't have a resource type \"foo\""
        );
    }

    #[test]
    fn label_arguments_parse() {
        let (res, ch) = split_label_args(&v(&["node", "k8s-node1", "disktype=ssd", "old-"]));
        assert_eq!(res, v(&["node", "k8s-node1"]));
        let ch = parse_key_changes(&ch, "label").unwrap();
        assert_eq!(
            ch,
            vec![
                KeyChange::Set("disktype".into(), "ssd".into()),
                KeyChange::Remove("old".into())
            ]
        );
        let (res, ch) =
            split_label_args(&v(&["rs", "x", "deployment.kubernetes.io/max-replicas-"]));
        assert_eq!(res, v(&["rs", "x"]));
        assert_eq!(
            parse_key_changes(&ch, "annotation").unwrap(),
            vec![KeyChange::Remove(
                "deployment.kubernetes.io/max-replicas".into()
            )]
        );
        let (res, ch) = split_label_args(&v(&["node/minikube", "disk=hdd"]));
        assert_eq!(res, v(&["node/minikube"]));
        assert_eq!(ch, v(&["disk=hdd"]));
        assert!(parse_key_changes(&v(&["=x"]), "label").is_err());
        assert!(parse_key_changes(&v(&["a=b", "a-"]), "label").is_err());
        assert!(parse_key_changes(&v(&["a=b c"]), "label").is_err());
        assert!(parse_key_changes(&v(&["a=b c"]), "annotation").is_ok());
        assert!(parse_key_changes(&v(&["node-role.kubernetes.io/master="]), "label").is_ok());
    }

    #[test]
    fn overwrite_is_required_to_change_a_value() {
        let mut cur = std::collections::BTreeMap::new();
        cur.insert("nodev".to_string(), "v2".to_string());
        let ch = vec![KeyChange::Set("nodev".into(), "v3".into())];
        let e = key_patch(&cur, &ch, false, "label").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: 'nodev' already has a value (v2), and --overwrite is false"
        );
        let p = key_patch(&cur, &ch, true, "label").unwrap().unwrap();
        assert_eq!(
            serde_json::Value::Object(p),
            serde_json::json!({"nodev": "v3"})
        );
        let same = vec![KeyChange::Set("nodev".into(), "v2".into())];
        assert!(key_patch(&cur, &same, false, "label").unwrap().is_none());
        let rm = vec![KeyChange::Remove("nodev".into())];
        assert_eq!(
            serde_json::Value::Object(key_patch(&cur, &rm, false, "label").unwrap().unwrap()),
            serde_json::json!({"nodev": null})
        );
    }
}
