//! TaintToleration: a node's NoSchedule and NoExecute taints keep off pods that do not
//! tolerate them (filter); PreferNoSchedule taints the pod does not tolerate count against the
//! node (score: the count, normalized and reversed, so fewer is better).
//!
//! Matching (`Toleration.ToleratesTaint`): an empty effect matches every effect; an empty key
//! matches every key (validation allows that only with `Exists`); operator `Exists` matches any
//! value, `Equal` (or empty) only an equal value.
use coxswain_api::v1;

use crate::framework::{
    default_normalize_score, ClusterEvent, CycleState, Filter, NodeScore, Plugin, PreScore, Score,
    ScoreExtensions, Status, MAX_NODE_SCORE,
};
use crate::snapshot::{pod_spec, NodeInfo, Snapshot};

pub const NAME: &str = "TaintToleration";

/// Does the toleration match the taint?
pub fn tolerates(t: &v1::Toleration, taint: &v1::Taint) -> bool {
    if !t.effect.is_empty() && t.effect != taint.effect {
        return false;
    }
    if !t.key.is_empty() && t.key != taint.key {
        return false;
    }
    match t.operator.as_str() {
        "" | "Equal" => t.value == taint.value,
        "Exists" => true,
        _ => false,
    }
}

/// The first taint with an effect in `effects` that no toleration matches.
pub fn first_untolerated<'a>(
    taints: &'a [v1::Taint],
    tolerations: &[v1::Toleration],
    effects: &[&str],
) -> Option<&'a v1::Taint> {
    taints.iter().find(|taint| {
        effects.contains(&taint.effect.as_str()) && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

fn taints(node: &NodeInfo) -> &[v1::Taint] {
    if !node.tainted() {
        return &[];
    }
    node.node.spec.as_ref().map_or(&[], |s| &s.taints)
}

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeTaint]
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

impl Filter for TaintToleration {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        self.rejection(state, pod, node)
            .unwrap_or_else(Status::success)
    }

    fn rejection(&self, _: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Option<Status> {
        first_untolerated(
            taints(node),
            &pod_spec(pod).tolerations,
            &["NoSchedule", "NoExecute"],
        )
        .map(|t| {
            Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key, t.value
            ))
        })
    }
}

/// The pod's tolerations that can match PreferNoSchedule taints.
struct PreScoreState(Vec<v1::Toleration>);

impl PreScore for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &v1::Pod,
        _: &Snapshot,
        _: &[&NodeInfo],
    ) -> Status {
        let tols = pod_spec(pod)
            .tolerations
            .iter()
            .filter(|t| t.effect.is_empty() || t.effect == "PreferNoSchedule")
            .cloned()
            .collect();
        state.write(PreScoreState(tols));
        Status::success()
    }
}

impl Score for TaintToleration {
    fn score(&self, state: &CycleState, _: &v1::Pod, node: &NodeInfo) -> i64 {
        let empty = PreScoreState(vec![]);
        let tols = state.read::<PreScoreState>().unwrap_or(&empty);
        taints(node)
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule")
            .filter(|taint| !tols.0.iter().any(|t| tolerates(t, taint)))
            .count() as i64
    }
    /// The cycle state read once; an untainted node scores 0 without looking further.
    fn score_all(&self, state: &CycleState, _: &v1::Pod, nodes: &[&NodeInfo], out: &mut [i64]) {
        let empty = PreScoreState(vec![]);
        let tols = state.read::<PreScoreState>().unwrap_or(&empty);
        for (o, node) in out.iter_mut().zip(nodes) {
            *o = if node.tainted() {
                taints(node)
                    .iter()
                    .filter(|taint| taint.effect == "PreferNoSchedule")
                    .filter(|taint| !tols.0.iter().any(|t| tolerates(t, taint)))
                    .count() as i64
            } else {
                0
            };
        }
    }
    fn score_extensions(&self) -> Option<&dyn ScoreExtensions> {
        Some(self)
    }
}

impl ScoreExtensions for TaintToleration {
    fn normalize(&self, _: &CycleState, _: &v1::Pod, scores: &mut [NodeScore]) {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> v1::Toleration {
        v1::Toleration {
            key: key.into(),
            operator: op.into(),
            value: value.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    #[test]
    fn toleration_matching() {
        let t = taint("k", "v", "NoSchedule");
        for (tl, want) in [
            (tol("k", "Equal", "v", "NoSchedule"), true),
            (tol("k", "", "v", "NoSchedule"), true),
            (tol("k", "Equal", "x", "NoSchedule"), false),
            (tol("k", "Exists", "", "NoSchedule"), true),
            (tol("k", "Exists", "", ""), true),
            (tol("k", "Exists", "", "NoExecute"), false),
            (tol("other", "Exists", "", ""), false),
            (tol("", "Exists", "", ""), true),
            (tol("", "Exists", "", "PreferNoSchedule"), false),
            (tol("k", "Bogus", "v", ""), false),
        ] {
            assert_eq!(tolerates(&tl, &t), want, "{tl:?}");
        }
    }

    #[test]
    fn filter() {
        let cp = taint("node-role.kubernetes.io/control-plane", "", "NoSchedule");
        for (taints, tolerations, code, reason) in [
            (vec![], vec![], Code::Success, ""),
            (
                vec![cp.clone()],
                vec![],
                Code::UnschedulableAndUnresolvable,
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
            ),
            (
                vec![taint("dedicated", "gpu", "NoExecute")],
                vec![],
                Code::UnschedulableAndUnresolvable,
                "node(s) had untolerated taint {dedicated: gpu}",
            ),
            (
                vec![taint("soft", "x", "PreferNoSchedule")],
                vec![],
                Code::Success,
                "",
            ),
            (
                vec![cp.clone()],
                vec![tol(
                    "node-role.kubernetes.io/control-plane",
                    "Exists",
                    "",
                    "NoSchedule",
                )],
                Code::Success,
                "",
            ),
        ] {
            let n = with_taints(node("n", &[]), taints);
            let mut p = pod("p", &[]);
            spec(&mut p).tolerations = tolerations;
            let s = TaintToleration.filter(&CycleState::new(), &p, &info(n, vec![]));
            assert_eq!(s.code, code);
            assert_eq!(s.message(), reason);
        }
    }

    #[test]
    fn score_prefers_fewer_intolerable_prefer_no_schedule_taints() {
        let nodes = [
            with_taints(node("a", &[]), vec![]),
            with_taints(node("b", &[]), vec![taint("x", "1", "PreferNoSchedule")]),
            with_taints(
                node("c", &[]),
                vec![
                    taint("x", "1", "PreferNoSchedule"),
                    taint("y", "1", "PreferNoSchedule"),
                ],
            ),
            with_taints(node("d", &[]), vec![taint("y", "1", "PreferNoSchedule")]),
        ];
        let mut p = pod("p", &[]);
        spec(&mut p).tolerations = vec![tol("y", "Exists", "", "PreferNoSchedule")];
        let mut st = CycleState::new();
        let snap = snapshot(vec![], vec![]);
        TaintToleration.pre_score(&mut st, &p, &snap, &[]);
        let mut scores: Vec<NodeScore> = nodes
            .into_iter()
            .map(|n| {
                let ni = info(n, vec![]);
                NodeScore {
                    name: ni.name().into(),
                    score: TaintToleration.score(&st, &p, &ni),
                }
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [0, 1, 1, 0]
        );
        TaintToleration.normalize(&st, &p, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [100, 0, 0, 100]
        );
    }
}
