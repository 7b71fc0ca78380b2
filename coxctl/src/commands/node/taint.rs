//! `coxctl taint`: kubectl's parseTaints and reorganizeTaints.
use coxswain_api::v1::Taint;
use coxswain_api::Kind;
use serde_json::json;

use super::{aggregate, select_nodes, typed_node, TaintArgs};
use crate::client::{other, Client, Result};

const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// One parsed taint argument.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    key: String,
    value: String,
    effect: String,
}

impl Spec {
    /// As `Taint.ToString()`.
    fn to_taint_string(&self) -> String {
        match (self.value.is_empty(), self.effect.is_empty()) {
            (true, true) => self.key.clone(),
            (false, true) => format!("{}={}:", self.key, self.value),
            (true, false) => format!("{}:{}", self.key, self.effect),
            (false, false) => format!("{}={}:{}", self.key, self.value, self.effect),
        }
    }
}

fn is_qualified_name(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok {
        return Some("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into());
    }
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Some("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
        }
    }
    None
}

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// kubectl's parseTaint: `key=value:effect`, `key:effect` or `key`.
fn parse_one(st: &str) -> Result<Spec> {
    let parts: Vec<&str> = st.split(':').collect();
    let (key, value, effect) = match parts.as_slice() {
        [k] => (k.to_string(), String::new(), String::new()),
        [kv, effect] => {
            if !EFFECTS.contains(effect) {
                return Err(other(format!(
                    "invalid taint effect: {effect}, unsupported taint effect"
                )));
            }
            let kv_parts: Vec<&str> = kv.split('=').collect();
            if kv_parts.len() > 2 {
                return Err(other(format!("invalid taint spec: {st}")));
            }
            let value = kv_parts.get(1).map(|v| v.to_string()).unwrap_or_default();
            if !is_label_value(&value) {
                return Err(other(format!("invalid taint spec: {st}, a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")));
            }
            (kv_parts[0].to_string(), value, effect.to_string())
        }
        _ => return Err(other(format!("invalid taint spec: {st}"))),
    };
    if let Some(e) = is_qualified_name(&key) {
        return Err(other(format!("invalid taint spec: {st}, {e}")));
    }
    Ok(Spec { key, value, effect })
}

/// kubectl's parseTaints: (to add, to remove).
fn parse_specs(specs: &[String]) -> Result<(Vec<Spec>, Vec<Spec>)> {
    let mut add: Vec<Spec> = Vec::new();
    let mut remove = Vec::new();
    for s in specs {
        if let Some(r) = s.strip_suffix('-') {
            let t = parse_one(r)?;
            remove.push(Spec {
                value: String::new(),
                ..t
            });
        } else {
            let t = parse_one(s)?;
            if t.effect.is_empty() {
                return Err(other(format!("unknown taint spec: {s}")));
            }
            if add.iter().any(|a| a.key == t.key && a.effect == t.effect) {
                return Err(other(format!(
                    "duplicated taints with the same key and effect: {}",
                    t.to_taint_string()
                )));
            }
            add.push(t);
        }
    }
    Ok((add, remove))
}

/// What `taint` did to one node.
#[derive(Debug, PartialEq, Eq)]
enum Operation {
    Tainted,
    Untainted,
    Modified,
}

impl Operation {
    fn word(&self) -> &'static str {
        match self {
            Operation::Tainted => "tainted",
            Operation::Untainted => "untainted",
            Operation::Modified => "modified",
        }
    }
}

/// kubectl's updateTaints/reorganizeTaints: the node's new taint list, or kubectl's error.
fn reorganize(
    node_name: &str,
    old: &[Taint],
    add: &[Spec],
    remove: &[Spec],
    overwrite: bool,
    now: &str,
) -> Result<(Operation, Vec<Taint>)> {
    if !overwrite {
        let exists: Vec<&str> = add
            .iter()
            .flat_map(|a| {
                old.iter()
                    .filter(move |o| o.key == a.key && o.effect == a.effect)
                    .map(move |_| a.key.as_str())
            })
            .collect();
        if !exists.is_empty() {
            return Err(other(format!(
                "node {node_name} already has {} taint(s) with same effect(s) and --overwrite is false",
                exists.join(",")
            )));
        }
    }
    let mut new: Vec<Taint> = add
        .iter()
        .map(|a| {
            // An unchanged NoExecute taint keeps its timeAdded; a new one gets "now".
            let kept = old
                .iter()
                .find(|o| o.key == a.key && o.effect == a.effect && o.value == a.value)
                .map(|o| o.time_added.clone());
            Taint {
                key: a.key.clone(),
                value: a.value.clone(),
                effect: a.effect.clone(),
                time_added: if a.effect == "NoExecute" {
                    kept.unwrap_or_else(|| now.to_string())
                } else {
                    String::new()
                },
            }
        })
        .collect();
    for o in old {
        if !new.iter().any(|t| t.key == o.key && t.effect == o.effect) {
            new.push(o.clone());
        }
    }
    let added = old.len() != new.len();
    let mut errors = Vec::new();
    let mut removed = false;
    for r in remove {
        let before = new.len();
        if r.effect.is_empty() {
            new.retain(|t| t.key != r.key);
        } else {
            new.retain(|t| !(t.key == r.key && t.effect == r.effect));
        }
        removed = new.len() != before;
        if !removed {
            errors.push(format!("taint {:?} not found", r.to_taint_string()));
        }
    }
    if !errors.is_empty() {
        return Err(other(aggregate(&errors)));
    }
    let op = if (added && removed) || overwrite {
        Operation::Modified
    } else if added {
        Operation::Tainted
    } else {
        Operation::Untainted
    };
    Ok((op, new))
}

pub async fn taint(client: &mut Client, args: &TaintArgs) -> Result<()> {
    if args.all && args.selector.is_some() {
        return Err(other(
            "setting 'all' parameter with a label selector is not allowed",
        ));
    }
    // Resource arguments come first; the first argument that looks like a taint starts the
    // taint list (kubectl: anything containing '=' or ':' or ending in '-').
    let split = args
        .args
        .iter()
        .position(|a| a.contains('=') || a.contains(':') || a.ends_with('-'))
        .unwrap_or(args.args.len());
    let (res, specs) = args.args.split_at(split);
    if specs.is_empty() {
        return Err(other("at least one taint update is required"));
    }
    let (add, remove) = parse_specs(specs)?;
    let conflicts: Vec<String> = add
        .iter()
        .filter(|a| {
            remove
                .iter()
                .any(|r| r.key == a.key && (r.effect.is_empty() || r.effect == a.effect))
        })
        .map(Spec::to_taint_string)
        .collect();
    if !conflicts.is_empty() {
        return Err(other(format!(
            "can not both modify and remove the following taint(s) in the same command: {}",
            conflicts.join(", ")
        )));
    }
    let names = select_nodes(client, res, args.selector.as_deref(), args.all).await?;
    let now = coxswain_api::time::now_rfc3339();
    for name in names {
        let node = typed_node(client.get(Kind::Node, "", &name).await?)?;
        let old = node
            .spec
            .as_ref()
            .map(|s| s.taints.clone())
            .unwrap_or_default();
        let (op, new) = reorganize(&name, &old, &add, &remove, args.overwrite, &now)?;
        let taints = serde_json::to_value(&new).map_err(|e| other(e.to_string()))?;
        client
            .patch(Kind::Node, "", &name, &json!({"spec": {"taints": taints}}))
            .await?;
        println!("node/{name} {}", op.word());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn t(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
            time_added: String::new(),
        }
    }

    #[test]
    fn taint_specs_parse_as_kubectl() {
        let (add, remove) = parse_specs(&specs(&[
            "tag=mayikt:NoSchedule",
            "node-role.kubernetes.io/master=:NoSchedule",
            "dedicated:NoExecute",
            "gone:NoSchedule-",
            "key-",
            "tag=mayikt:PreferNoSchedule-",
        ]))
        .unwrap();
        assert_eq!(add.len(), 3);
        assert_eq!(add[0].to_taint_string(), "tag=mayikt:NoSchedule");
        assert_eq!(
            add[1].to_taint_string(),
            "node-role.kubernetes.io/master:NoSchedule"
        );
        assert_eq!(add[2].to_taint_string(), "dedicated:NoExecute");
        let r: Vec<String> = remove.iter().map(Spec::to_taint_string).collect();
        assert_eq!(r, vec!["gone:NoSchedule", "key", "tag:PreferNoSchedule"]);
    }

    #[test]
    fn bad_taint_specs_fail_as_kubectl() {
        let e = |a: &str| parse_specs(&specs(&[a])).unwrap_err().to_string();
        assert_eq!(
            e("tag=mayikt:Sometimes"),
            "error: invalid taint effect: Sometimes, unsupported taint effect"
        );
        assert_eq!(e("tag"), "error: unknown taint spec: tag");
        assert!(e("tag=mayikt").starts_with("error: invalid taint spec: tag=mayikt, name part"));
        assert_eq!(
            e("a=b=c:NoSchedule"),
            "error: invalid taint spec: a=b=c:NoSchedule"
        );
        assert_eq!(e("a:b:c"), "error: invalid taint spec: a:b:c");
        assert!(e("-bad:NoSchedule")
            .starts_with("error: invalid taint spec: -bad:NoSchedule, name part"));
        assert_eq!(
            parse_specs(&specs(&["a=1:NoSchedule", "a=2:NoSchedule"]))
                .unwrap_err()
                .to_string(),
            "error: duplicated taints with the same key and effect: a=2:NoSchedule"
        );
    }

    #[test]
    fn adding_an_existing_taint_needs_overwrite() {
        let old = vec![t("tag", "mayikt", "NoSchedule")];
        let (add, _) = parse_specs(&specs(&["tag=other:NoSchedule"])).unwrap();
        let e = reorganize("node1", &old, &add, &[], false, "now").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: node node1 already has tag taint(s) with same effect(s) and --overwrite is false"
        );
        let (op, new) = reorganize("node1", &old, &add, &[], true, "now").unwrap();
        assert_eq!(op, Operation::Modified);
        assert_eq!(new, vec![t("tag", "other", "NoSchedule")]);
        // Same key, other effect: a second taint.
        let (add, _) = parse_specs(&specs(&["tag=mayikt:NoExecute"])).unwrap();
        let (op, new) =
            reorganize("node1", &old, &add, &[], false, "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(op, Operation::Tainted);
        assert_eq!(new.len(), 2);
        assert_eq!(new[0].time_added, "2026-01-01T00:00:00Z");
        assert_eq!(new[1].time_added, "");
    }

    #[test]
    fn removing_taints_by_key_and_effect_or_by_key() {
        let old = vec![
            t("tag", "mayikt", "NoSchedule"),
            t("tag", "mayikt", "NoExecute"),
            t("other", "", "PreferNoSchedule"),
        ];
        let (_, rm) = parse_specs(&specs(&["tag=mayikt:NoExecute-"])).unwrap();
        let (op, new) = reorganize("n", &old, &[], &rm, false, "now").unwrap();
        assert_eq!(op, Operation::Untainted);
        assert_eq!(new, vec![old[0].clone(), old[2].clone()]);
        let (_, rm) = parse_specs(&specs(&["tag-"])).unwrap();
        let (_, new) = reorganize("n", &old, &[], &rm, false, "now").unwrap();
        assert_eq!(new, vec![old[2].clone()]);
        let (_, rm) = parse_specs(&specs(&["missing:NoSchedule-"])).unwrap();
        let e = reorganize("n", &old, &[], &rm, false, "now").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: taint \"missing:NoSchedule\" not found"
        );
    }
}
