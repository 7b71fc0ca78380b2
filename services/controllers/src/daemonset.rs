//! DaemonSet logic, after Kubernetes' `pkg/controller/daemon`:
//! - [`node_should_run`]: whether a node should run the daemon pod (nodeSelector, required node
//!   affinity, NoSchedule/NoExecute taints against the template's tolerations plus the
//!   automatic DaemonSet tolerations) and whether an existing pod may keep running there;
//! - [`add_daemon_tolerations`] and [`node_affinity_for`]: what the controller adds to every
//!   pod (it pins the pod to its node with a `metadata.name` matchFields term and lets the
//!   scheduler bind it, as upstream does);
//! - [`plan_node`]: per node, which pods to create or delete;
//! - [`rolling_update_deletions`]: RollingUpdate with maxUnavailable (maxSurge 0).
use coxswain_api::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec,
    Taint, Toleration,
};

/// The automatic tolerations every DaemonSet pod gets (Kubernetes'
/// `AddOrUpdateDaemonPodTolerations`): not-ready/unreachable NoExecute without a time limit, the
/// pressure and unschedulable NoSchedule taints, and network-unavailable for hostNetwork pods.
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: key.into(),
        operator: "Exists".into(),
        effect: effect.into(),
        ..Default::default()
    };
    let mut v = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        v.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    v
}

/// Add the automatic tolerations the spec does not already have (same key, operator, effect).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    for t in daemon_tolerations(spec.host_network) {
        // The NoExecute ones replace any with the same key and effect (they must be unlimited).
        spec.tolerations
            .retain(|x| !(x.key == t.key && x.effect == t.effect && t.effect == "NoExecute"));
        if !spec
            .tolerations
            .iter()
            .any(|x| x.key == t.key && x.effect == t.effect && x.operator == t.operator)
        {
            spec.tolerations.push(t);
        }
    }
}

/// Does toleration `t` tolerate `taint` (Kubernetes' `ToleratesTaint`)?
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if !t.effect.is_empty() && t.effect != taint.effect {
        return false;
    }
    if !t.key.is_empty() && t.key != taint.key {
        return false;
    }
    match t.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => !t.key.is_empty() && t.value == taint.value,
        _ => false,
    }
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let vals = &r.values;
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| vals.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !vals.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(Ok(v)), Some(Ok(b))) = (
                value.map(str::parse::<i64>),
                vals.first().map(|s| s.parse::<i64>()),
            ) else {
                return false;
            };
            if op == "Gt" {
                v > b
            } else {
                v < b
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    if term.match_expressions.is_empty() && term.match_fields.is_empty() {
        return false;
    }
    let meta = node.metadata.clone().unwrap_or_default();
    term.match_expressions
        .iter()
        .all(|r| requirement_matches(r, meta.labels.get(&r.key).map(String::as_str)))
        && term
            .match_fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(meta.name.as_str())))
}

/// The pod spec's nodeSelector and required node affinity match the node.
pub fn selector_and_affinity_match(spec: &PodSpec, node: &Node) -> bool {
    let labels = node
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    if !spec
        .node_selector
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    required.is_none_or(|sel| {
        sel.node_selector_terms
            .iter()
            .any(|t| term_matches(t, node))
    })
}

/// (should run, may continue running) of the daemon pod on `node` (Kubernetes'
/// `NodeShouldRunDaemonPod`). `spec` is the template's spec; the automatic tolerations are
/// added here. An untolerated NoSchedule taint stops new pods but keeps existing ones; an
/// untolerated NoExecute taint, a selector/affinity mismatch or a different spec.nodeName stops
/// both.
pub fn node_should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let mut spec = spec.clone();
    add_daemon_tolerations(&mut spec);
    let name = node.metadata.as_ref().map_or("", |m| m.name.as_str());
    if !spec.node_name.is_empty() && spec.node_name != name {
        return (false, false);
    }
    if !selector_and_affinity_match(&spec, node) {
        return (false, false);
    }
    let taints = node
        .spec
        .as_ref()
        .map(|s| s.taints.clone())
        .unwrap_or_default();
    let untolerated = |effect: &str| {
        taints
            .iter()
            .filter(|t| t.effect == effect)
            .any(|taint| !spec.tolerations.iter().any(|t| tolerates(t, taint)))
    };
    if untolerated("NoExecute") {
        return (false, false);
    }
    if untolerated("NoSchedule") {
        return (false, true);
    }
    (true, true)
}

/// The pod's affinity with its required node affinity replaced by one term pinning it to
/// `node` (`metadata.name In [node]`), preferred terms and pod (anti-)affinity kept.
pub fn node_affinity_for(affinity: Option<&Affinity>, node: &str) -> Affinity {
    let mut a = affinity.cloned().unwrap_or_default();
    let na = a.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: vec![node.to_string()],
            }],
            ..Default::default()
        }],
    });
    a
}

/// The node a daemon pod is for: spec.nodeName, else the node its affinity pins it to.
pub fn target_node(spec: &PodSpec) -> Option<String> {
    if !spec.node_name.is_empty() {
        return Some(spec.node_name.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| &t.match_fields)
        .find(|r| r.key == "metadata.name" && r.operator == "In" && r.values.len() == 1)
        .map(|r| r.values[0].clone())
}

/// What one node's daemon pods look like to the planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPod {
    pub name: String,
    /// Succeeded or Failed.
    pub terminal: bool,
    pub terminating: bool,
    /// Created at (seconds), for keeping the oldest.
    pub created: i64,
}

/// Per node: create a pod? which pods to delete? (Kubernetes' `podsShouldBeOnNode`.)
/// Should run: failed pods are deleted (and a new one created once none is left); more than one
/// live pod keeps the oldest. May not continue: every pod goes.
pub fn plan_node(should_run: bool, may_continue: bool, pods: &[DaemonPod]) -> (bool, Vec<String>) {
    let mut delete = Vec::new();
    if should_run {
        let mut live: Vec<&DaemonPod> = Vec::new();
        for p in pods {
            if p.terminating {
                continue;
            }
            if p.terminal {
                delete.push(p.name.clone());
            } else {
                live.push(p);
            }
        }
        let create = live.is_empty() && !pods.iter().any(|p| p.terminating);
        if live.len() > 1 {
            live.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
            delete.extend(live[1..].iter().map(|p| p.name.clone()));
        }
        (create, delete)
    } else if !may_continue {
        (
            false,
            pods.iter()
                .filter(|p| !p.terminating)
                .map(|p| p.name.clone())
                .collect(),
        )
    } else {
        (false, vec![])
    }
}

/// RollingUpdate (maxSurge 0): of the old pods (node, pod, available), delete first the
/// unavailable ones, then available ones while the number unavailable stays within
/// `max_unavailable`. `unavailable_now` counts nodes that should run a pod and have no available
/// one. Returns the pods to delete.
pub fn rolling_update_deletions(
    old: &[(String, String, bool)],
    max_unavailable: i32,
    unavailable_now: i32,
) -> Vec<String> {
    let mut out: Vec<String> = old
        .iter()
        .filter(|(_, _, avail)| !avail)
        .map(|(_, p, _)| p.clone())
        .collect();
    let mut budget = max_unavailable - unavailable_now;
    for (_, p, avail) in old {
        if budget <= 0 {
            break;
        }
        if *avail {
            out.push(p.clone());
            budget -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{NodeSpec, ObjectMeta};

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: Some(ObjectMeta {
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            spec: Some(NodeSpec {
                taints: taints
                    .iter()
                    .map(|(k, e)| Taint {
                        key: k.to_string(),
                        effect: e.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn spec_with_selector(sel: &[(&str, &str)]) -> PodSpec {
        PodSpec {
            node_selector: sel
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn should_run_table() {
        let master = ("node-role.kubernetes.io/master", "NoSchedule");
        let cases: Vec<(&str, PodSpec, Node, (bool, bool))> = vec![
            (
                "plain node",
                PodSpec::default(),
                node("n1", &[], &[]),
                (true, true),
            ),
            (
                "selector matches",
                spec_with_selector(&[("disk", "ssd")]),
                node("n1", &[("disk", "ssd")], &[]),
                (true, true),
            ),
            (
                "selector mismatch (relabelled)",
                spec_with_selector(&[("disk", "ssd")]),
                node("n1", &[("disk", "hdd")], &[]),
                (false, false),
            ),
            (
                "untolerated master NoSchedule",
                PodSpec::default(),
                node("m", &[], &[master]),
                (false, true),
            ),
            (
                "cordoned: unschedulable taint tolerated",
                PodSpec::default(),
                node(
                    "n1",
                    &[],
                    &[("node.kubernetes.io/unschedulable", "NoSchedule")],
                ),
                (true, true),
            ),
            (
                "not-ready NoExecute tolerated",
                PodSpec::default(),
                node("n1", &[], &[("node.kubernetes.io/not-ready", "NoExecute")]),
                (true, true),
            ),
            (
                "other NoExecute evicts",
                PodSpec::default(),
                node("n1", &[], &[("dedicated", "NoExecute")]),
                (false, false),
            ),
            (
                "PreferNoSchedule ignored",
                PodSpec::default(),
                node("n1", &[], &[("x", "PreferNoSchedule")]),
                (true, true),
            ),
        ];
        for (what, spec, n, want) in cases {
            assert_eq!(node_should_run(&spec, &n), want, "{what}");
        }
        let mut tolerant = PodSpec::default();
        tolerant.tolerations.push(Toleration {
            key: "node-role.kubernetes.io/master".into(),
            operator: "Exists".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
        assert_eq!(
            node_should_run(&tolerant, &node("m", &[], &[master])),
            (true, true)
        );
    }

    #[test]
    fn affinity_pins_the_node_and_is_read_back() {
        let a = node_affinity_for(None, "n2");
        let spec = PodSpec {
            affinity: Some(a),
            ..Default::default()
        };
        assert_eq!(target_node(&spec).as_deref(), Some("n2"));
        assert!(selector_and_affinity_match(&spec, &node("n2", &[], &[])));
        assert!(!selector_and_affinity_match(&spec, &node("n1", &[], &[])));
    }

    #[test]
    fn tolerations_added_once() {
        let mut s = PodSpec {
            host_network: true,
            ..Default::default()
        };
        add_daemon_tolerations(&mut s);
        add_daemon_tolerations(&mut s);
        assert_eq!(s.tolerations.len(), 7);
    }

    fn dp(name: &str, created: i64) -> DaemonPod {
        DaemonPod {
            name: name.into(),
            terminal: false,
            terminating: false,
            created,
        }
    }

    #[test]
    fn plan_node_table() {
        assert_eq!(plan_node(true, true, &[]), (true, vec![]));
        assert_eq!(plan_node(true, true, &[dp("a", 1)]), (false, vec![]));
        assert_eq!(
            plan_node(true, true, &[dp("b", 2), dp("a", 1), dp("c", 3)]),
            (false, vec!["b".to_string(), "c".to_string()]),
            "keep the oldest"
        );
        let mut failed = dp("f", 1);
        failed.terminal = true;
        assert_eq!(
            plan_node(true, true, &[failed.clone()]),
            (true, vec!["f".to_string()])
        );
        let mut term = dp("t", 1);
        term.terminating = true;
        assert_eq!(
            plan_node(true, true, &[term.clone()]),
            (false, vec![]),
            "wait for it to go"
        );
        assert_eq!(
            plan_node(false, false, &[dp("a", 1), term]),
            (false, vec!["a".to_string()])
        );
        assert_eq!(
            plan_node(false, true, &[dp("a", 1)]),
            (false, vec![]),
            "NoSchedule keeps it"
        );
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        let old = vec![
            ("n1".to_string(), "p1".to_string(), true),
            ("n2".to_string(), "p2".to_string(), false),
            ("n3".to_string(), "p3".to_string(), true),
        ];
        assert_eq!(rolling_update_deletions(&old, 1, 1), vec!["p2".to_string()]);
        assert_eq!(
            rolling_update_deletions(&old, 2, 1),
            vec!["p2".to_string(), "p1".to_string()]
        );
        assert_eq!(
            rolling_update_deletions(&old[..1], 1, 0),
            vec!["p1".to_string()]
        );
        assert_eq!(
            rolling_update_deletions(&old[..1], 1, 1),
            Vec::<String>::new()
        );
    }
}
