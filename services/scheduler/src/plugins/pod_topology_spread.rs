//! PodTopologySpread: `topologySpreadConstraints`. For each constraint, the pods matching its
//! selector (in the pod's namespace, not terminating) are counted per topology domain over the
//! eligible nodes (nodes with every constraint's key; `nodeAffinityPolicy` Honor (default):
//! only nodes matching the pod's nodeSelector/required affinity; `nodeTaintsPolicy` Honor: only
//! nodes whose NoSchedule/NoExecute taints the pod tolerates, Ignore by default).
//!
//! Filter (`whenUnsatisfiable: DoNotSchedule`): placing the pod in the node's domain must keep
//! `count + (1 if the pod matches its own selector) - global minimum <= maxSkew`; the global
//! minimum is 0 while fewer than `minDomains` domains exist. A node without the key is
//! unresolvable. Reason `node(s) didn't match pod topology spread constraints`.
//!
//! Score (`ScheduleAnyway`): per constraint `count * ln(domains + 2) + (maxSkew - 1)`, summed
//! and rounded; normalized as `100 * (max + min - score) / max` so fewer matching pods score
//! higher; nodes without every key score 0. kube-scheduler's system default constraints (for
//! pods owned by services/replica sets) are not applied.
use std::collections::{BTreeSet, HashMap};

use coxswain_api::selector::{LabelSelector, Op, Requirement};
use coxswain_api::v1;

use super::node_affinity::pod_matches_node_selector_and_affinity;
use super::taint_toleration::first_untolerated;
use crate::framework::{
    CycleState, Filter, NodeScore, Plugin, PreFilter, PreScore, Score, ScoreExtensions, Status,
    MAX_NODE_SCORE,
};
use crate::snapshot::{pod_labels, pod_namespace, pod_spec, NodeInfo, Snapshot};

pub const NAME: &str = "PodTopologySpread";
pub const ERR_REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

#[derive(Debug, Clone)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: LabelSelector,
    min_domains: Option<i64>,
    honor_affinity: bool,
    honor_taints: bool,
}

fn constraints(pod: &v1::Pod, when: &str) -> Vec<Constraint> {
    pod_spec(pod)
        .topology_spread_constraints
        .iter()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| {
            let mut selector = LabelSelector::from_proto(c.label_selector.as_ref())
                .unwrap_or_else(|_| LabelSelector::nothing());
            for k in &c.match_label_keys {
                if let Some(v) = pod_labels(pod).get(k) {
                    selector.requirements.push(Requirement {
                        key: k.clone(),
                        op: Op::In,
                        values: vec![v.clone()],
                    });
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.map(i64::from),
                honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

fn has_all_keys(node: &NodeInfo, cs: &[Constraint]) -> bool {
    cs.iter()
        .all(|c| node.labels().contains_key(&c.topology_key))
}

fn included(c: &Constraint, pod: &v1::Pod, node: &NodeInfo) -> bool {
    if c.honor_affinity && !pod_matches_node_selector_and_affinity(pod, &node.node) {
        return false;
    }
    if c.honor_taints {
        let taints = node.node.spec.as_ref().map_or(&[][..], |s| &s.taints);
        if first_untolerated(
            taints,
            &pod_spec(pod).tolerations,
            &["NoSchedule", "NoExecute"],
        )
        .is_some()
        {
            return false;
        }
    }
    true
}

fn count_matching(node: &NodeInfo, c: &Constraint, ns: &str) -> i64 {
    node.pods
        .iter()
        .filter(|p| {
            pod_namespace(p) == ns
                && p.metadata
                    .as_ref()
                    .is_none_or(|m| m.deletion_timestamp.is_empty())
                && c.selector.matches(pod_labels(p))
        })
        .count() as i64
}

pub struct PodTopologySpread;

struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: topology value → matching pods.
    counts: Vec<HashMap<String, i64>>,
}

impl PreFilterState {
    fn min_match(&self, i: usize) -> i64 {
        let domains = &self.counts[i];
        if self.constraints[i]
            .min_domains
            .is_some_and(|m| (domains.len() as i64) < m)
        {
            return 0;
        }
        domains
            .values()
            .copied()
            .min()
            .unwrap_or(i64::from(i32::MAX))
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScore> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

impl PreFilter for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &v1::Pod, snapshot: &Snapshot) -> Status {
        let cs = constraints(pod, "DoNotSchedule");
        if cs.is_empty() {
            return Status::skip();
        }
        let ns = pod_namespace(pod);
        let mut counts = vec![HashMap::new(); cs.len()];
        for node in &snapshot.nodes {
            if !has_all_keys(node, &cs) {
                continue;
            }
            for (i, c) in cs.iter().enumerate() {
                if !included(c, pod, node) {
                    continue;
                }
                let v = node.labels()[&c.topology_key].clone();
                *counts[i].entry(v).or_default() += count_matching(node, c, ns);
            }
        }
        state.write(PreFilterState {
            constraints: cs,
            counts,
        });
        Status::success()
    }
}

impl Filter for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>() else {
            return Status::success();
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = node.labels().get(&c.topology_key) else {
                return Status::unresolvable(ERR_REASON_MISSING_LABEL);
            };
            let self_match = i64::from(c.selector.matches(pod_labels(pod)));
            let count = s.counts[i].get(v).copied().unwrap_or(0);
            if count + self_match - s.min_match(i) > c.max_skew {
                return Status::unschedulable(ERR_REASON);
            }
        }
        Status::success()
    }
}

struct PreScoreState {
    constraints: Vec<Constraint>,
    ignored: BTreeSet<String>,
    /// Per constraint: topology value → matching pods (only domains of feasible nodes).
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

impl PreScore for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &v1::Pod,
        snapshot: &Snapshot,
        nodes: &[&NodeInfo],
    ) -> Status {
        let cs = constraints(pod, "ScheduleAnyway");
        if cs.is_empty() {
            return Status::skip();
        }
        let mut ignored = BTreeSet::new();
        let mut counts = vec![HashMap::new(); cs.len()];
        for n in nodes {
            if !has_all_keys(n, &cs) {
                ignored.insert(n.name().to_string());
                continue;
            }
            for (i, c) in cs.iter().enumerate() {
                counts[i].insert(n.labels()[&c.topology_key].clone(), 0i64);
            }
        }
        let weights = counts.iter().map(|m| ((m.len() + 2) as f64).ln()).collect();
        let ns = pod_namespace(pod);
        for node in &snapshot.nodes {
            if !has_all_keys(node, &cs) {
                continue;
            }
            for (i, c) in cs.iter().enumerate() {
                if !included(c, pod, node) {
                    continue;
                }
                if let Some(n) = counts[i].get_mut(&node.labels()[&c.topology_key]) {
                    *n += count_matching(node, c, ns);
                }
            }
        }
        state.write(PreScoreState {
            constraints: cs,
            ignored,
            counts,
            weights,
        });
        Status::success()
    }
}

impl Score for PodTopologySpread {
    fn score(&self, state: &CycleState, _: &v1::Pod, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<PreScoreState>() else {
            return 0;
        };
        if s.ignored.contains(node.name()) {
            return 0;
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            if let Some(v) = node.labels().get(&c.topology_key) {
                let cnt = s.counts[i].get(v).copied().unwrap_or(0);
                score += cnt as f64 * s.weights[i] + (c.max_skew - 1) as f64;
            }
        }
        score.round() as i64
    }
    fn score_extensions(&self) -> Option<&dyn ScoreExtensions> {
        Some(self)
    }
}

impl ScoreExtensions for PodTopologySpread {
    fn normalize(&self, state: &CycleState, _: &v1::Pod, scores: &mut [NodeScore]) {
        let Some(s) = state.read::<PreScoreState>() else {
            return;
        };
        let live = || scores.iter().filter(|n| !s.ignored.contains(&*n.name));
        let min = live().map(|n| n.score).min().unwrap_or(0);
        let max = live().map(|n| n.score).max().unwrap_or(0).max(0);
        for n in scores.iter_mut() {
            n.score = if s.ignored.contains(&*n.name) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - n.score) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn spread(p: &mut v1::Pod, key: &str, max_skew: i32, when: &str, min_domains: Option<i32>) {
        spec(p)
            .topology_spread_constraints
            .push(v1::TopologySpreadConstraint {
                max_skew,
                topology_key: key.into(),
                when_unsatisfiable: when.into(),
                label_selector: Some(selector(&[("app", "web")])),
                min_domains,
                ..Default::default()
            });
    }

    fn nodes() -> Vec<v1::Node> {
        vec![
            node("a1", &[("zone", "a")]),
            node("a2", &[("zone", "a")]),
            node("b1", &[("zone", "b")]),
            node("x", &[]),
        ]
    }

    fn web(name: &str, node: &str) -> v1::Pod {
        on(pod(name, &[("app", "web")]), node)
    }

    fn filter_all(p: &v1::Pod, existing: Vec<v1::Pod>) -> Vec<Code> {
        let snap = snapshot(nodes(), existing);
        let mut st = CycleState::new();
        assert!(PodTopologySpread.pre_filter(&mut st, p, &snap).is_success());
        snap.nodes
            .iter()
            .map(|n| PodTopologySpread.filter(&st, p, n).code)
            .collect()
    }

    #[test]
    fn filter_max_skew() {
        use Code::*;
        let mut p = pod("p", &[("app", "web")]);
        spread(&mut p, "zone", 1, "DoNotSchedule", None);
        // a: 1, b: 0 → only b keeps skew <= 1; a node without the key is unresolvable.
        assert_eq!(
            filter_all(&p, vec![web("w1", "a1")]),
            [
                Unschedulable,
                Unschedulable,
                Success,
                UnschedulableAndUnresolvable
            ]
        );
        // a: 1, b: 1 → either.
        assert_eq!(
            filter_all(&p, vec![web("w1", "a1"), web("w2", "b1")]),
            [Success, Success, Success, UnschedulableAndUnresolvable]
        );
        // Other namespaces and non-matching pods do not count.
        let mut other = web("w3", "a1");
        other.metadata.as_mut().unwrap().namespace = "other".into();
        assert_eq!(
            filter_all(&p, vec![other, on(pod("db", &[("app", "db")]), "a2")])[..3],
            [Success, Success, Success]
        );
        // A pod not matching its own selector does not add itself.
        let mut q = pod("q", &[("app", "db")]);
        spread(&mut q, "zone", 1, "DoNotSchedule", None);
        assert_eq!(
            filter_all(&q, vec![web("w1", "a1")])[..3],
            [Success, Success, Success]
        );
        // maxSkew 2.
        let mut r = pod("r", &[("app", "web")]);
        spread(&mut r, "zone", 2, "DoNotSchedule", None);
        assert_eq!(
            filter_all(&r, vec![web("w1", "a1")])[..3],
            [Success, Success, Success]
        );
        // minDomains 3 with only 2 domains: global minimum is 0.
        let mut m = pod("m", &[("app", "web")]);
        spread(&mut m, "zone", 1, "DoNotSchedule", Some(3));
        assert_eq!(
            filter_all(&m, vec![web("w1", "a1"), web("w2", "b1")])[..3],
            [Unschedulable, Unschedulable, Unschedulable]
        );
    }

    #[test]
    fn score_prefers_emptier_domains() {
        let mut p = pod("p", &[("app", "web")]);
        spread(&mut p, "zone", 1, "ScheduleAnyway", None);
        let snap = snapshot(nodes(), vec![web("w1", "a1"), web("w2", "a2")]);
        let feasible: Vec<&NodeInfo> = snap.nodes.iter().collect();
        let mut st = CycleState::new();
        assert!(PodTopologySpread
            .pre_score(&mut st, &p, &snap, &feasible)
            .is_success());
        let mut scores: Vec<NodeScore> = feasible
            .iter()
            .map(|n| NodeScore {
                name: n.name().into(),
                score: PodTopologySpread.score(&st, &p, n),
            })
            .collect();
        // a: 2 * ln(4) = 2.77 → 3; b: 0.
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [3, 3, 0, 0]
        );
        PodTopologySpread.normalize(&st, &p, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [0, 0, 100, 0]
        );
    }
}
