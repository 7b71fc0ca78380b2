//! Explain: a dry run of one scheduling cycle that keeps every detail — per node, every Filter
//! plugin's verdict (all of them run, so "why not node3?" gets every reason, not just the
//! first), every Score plugin's raw, normalized and weighted score, the ranking and the node
//! that would be chosen. It evaluates every node (no `percentageOfNodesToScore` sampling) and
//! never binds or assumes.
use coxswain_api::v1;

use crate::framework::{
    run_filters, run_post_filters, score_nodes, Code, CycleState, FitError, PluginScore, Profile,
};
use crate::snapshot::{pod_name, pod_namespace, Snapshot};

/// One Filter plugin's verdict on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub plugin: String,
    /// `Success`, `Unschedulable`, `UnschedulableAndUnresolvable`, `Error` or `Skip`.
    pub code: String,
    pub reason: String,
}

/// One node's explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeExplanation {
    pub node: String,
    pub feasible: bool,
    pub filters: Vec<Verdict>,
    pub scores: Vec<PluginScore>,
    pub total: i64,
    /// 1 = best; 0 when infeasible.
    pub rank: usize,
}

/// The whole explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub pod: String,
    pub scheduler_name: String,
    pub nodes: Vec<NodeExplanation>,
    pub chosen: Option<String>,
    /// Feasible nodes, best first.
    pub ranking: Vec<String>,
    /// The FailedScheduling message when nothing fits.
    pub message: String,
}

pub fn code_name(c: Code) -> &'static str {
    match c {
        Code::Success => "Success",
        Code::Unschedulable => "Unschedulable",
        Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
        Code::Error => "Error",
        Code::Skip => "Skip",
    }
}

/// Explain where `pod` would go under `profile` (see the module docs).
pub fn explain(profile: &Profile, snapshot: &Snapshot, pod: &v1::Pod) -> Explanation {
    let mut state = CycleState::new();
    let mut pre_reject: Option<(String, Code, String)> = None;
    for p in &profile.filters {
        let Some(pf) = p.as_pre_filter() else {
            continue;
        };
        let s = pf.pre_filter(&mut state, pod, snapshot);
        match s.code {
            Code::Success => {}
            Code::Skip => {
                state.skip_filter.insert(p.name());
            }
            c => {
                pre_reject = Some((p.name().to_string(), c, s.message()));
                break;
            }
        }
    }
    let mut nodes = Vec::with_capacity(snapshot.len());
    let mut feasible_idx = Vec::new();
    let mut fit = FitError {
        pod: format!("{}/{}", pod_namespace(pod), pod_name(pod)),
        num_all_nodes: snapshot.len(),
        diagnosis: Default::default(),
        pre_filter_msg: String::new(),
        post_filter_msg: String::new(),
        unschedulable_plugins: Default::default(),
    };
    for (i, ni) in snapshot.nodes.iter().enumerate() {
        let mut filters = Vec::new();
        let mut feasible = true;
        for p in &profile.filters {
            if p.as_filter().is_none() && p.as_pre_filter().is_none() {
                continue;
            }
            let v = if let Some((name, code, msg)) = &pre_reject {
                if name == p.name() {
                    Verdict {
                        plugin: name.clone(),
                        code: code_name(*code).into(),
                        reason: format!("PreFilter: {msg}"),
                    }
                } else {
                    Verdict {
                        plugin: p.name().into(),
                        code: "Skip".into(),
                        reason: "not run: a PreFilter rejected the pod".into(),
                    }
                }
            } else if state.skip_filter.contains(p.name()) {
                Verdict {
                    plugin: p.name().into(),
                    code: "Skip".into(),
                    reason: String::new(),
                }
            } else if let Some(f) = p.as_filter() {
                let s = f.filter(&state, pod, ni);
                Verdict {
                    plugin: p.name().into(),
                    code: code_name(s.code).into(),
                    reason: s.message(),
                }
            } else {
                continue;
            };
            if !matches!(v.code.as_str(), "Success" | "Skip") {
                feasible = false;
            }
            filters.push(v);
        }
        if pre_reject.is_some() {
            feasible = false;
        }
        if feasible {
            feasible_idx.push(i);
        } else if pre_reject.is_none() {
            // As the real cycle records it: the first rejecting plugin's status.
            let s = run_filters(profile, &state, pod, ni);
            fit.unschedulable_plugins.insert(s.plugin.to_string());
            fit.diagnosis.insert(ni.name().to_string(), s);
        }
        nodes.push(NodeExplanation {
            node: ni.name().to_string(),
            feasible,
            filters,
            scores: vec![],
            total: 0,
            rank: 0,
        });
    }
    let mut message = String::new();
    let mut ranking = Vec::new();
    let mut chosen = None;
    if let Some((name, _, msg)) = &pre_reject {
        fit.pre_filter_msg = msg.clone();
        fit.unschedulable_plugins.insert(name.clone());
        message = fit.to_string();
    } else if snapshot.is_empty() {
        message = fit.to_string();
    } else if feasible_idx.is_empty() {
        run_post_filters(profile, &state, pod, snapshot, &mut fit);
        message = fit.to_string();
    } else {
        let scores = score_nodes(profile, &mut state, pod, snapshot, &feasible_idx);
        for (k, &i) in feasible_idx.iter().enumerate() {
            nodes[i].scores = scores[k].plugins.clone();
            nodes[i].total = scores[k].total;
        }
        let mut order: Vec<usize> = feasible_idx.clone();
        // Stable: ties keep evaluation order in the ranking.
        order.sort_by(|a, b| nodes[*b].total.cmp(&nodes[*a].total));
        for (r, &i) in order.iter().enumerate() {
            nodes[i].rank = r + 1;
            ranking.push(nodes[i].node.clone());
        }
        chosen = pick_among_top(&order, |i| nodes[i].total).map(|i| nodes[i].node.clone());
    }
    Explanation {
        pod: fit.pod.clone(),
        scheduler_name: profile.scheduler_name.clone(),
        chosen,
        nodes,
        ranking,
        message,
    }
}

/// Of `order` (node indexes, highest total first), the one the cycle would pick: one of those
/// tied for the highest total, at random, as [`select_best`](crate::framework::select_best)
/// (kube-scheduler's `selectHost`). None when `order` is empty.
pub(crate) fn pick_among_top(order: &[usize], total: impl Fn(usize) -> i64) -> Option<usize> {
    let totals: Vec<i64> = order.iter().map(|&i| total(i)).collect();
    order.get(crate::framework::select_best(&totals)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;

    const CP: &str = "node-role.kubernetes.io/control-plane";

    #[test]
    fn every_filter_verdict_and_score_is_reported() {
        let snap = snapshot(
            vec![
                with_taints(
                    node("cp", &[("nodev", "v1")]),
                    vec![taint(CP, "", "NoSchedule")],
                ),
                node("node1", &[("nodev", "v1")]),
                node("node2", &[("nodev", "v2")]),
            ],
            vec![],
        );
        let mut p = pod("p", &[]);
        spec(&mut p).node_selector = labels(&[("nodev", "v1")]);
        let e = explain(&Profile::default_profile(), &snap, &p);
        assert_eq!(e.chosen.as_deref(), Some("node1"));
        assert_eq!(e.ranking, ["node1"]);
        let cp = &e.nodes[0];
        assert!(!cp.feasible);
        let v = |n: &NodeExplanation, plugin: &str| {
            n.filters
                .iter()
                .find(|v| v.plugin == plugin)
                .unwrap()
                .clone()
        };
        assert_eq!(
            v(cp, "TaintToleration").code,
            "UnschedulableAndUnresolvable"
        );
        assert_eq!(
            v(cp, "TaintToleration").reason,
            "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
        );
        assert_eq!(v(cp, "NodeAffinity").code, "Success");
        assert_eq!(v(cp, "NodePorts").code, "Skip");
        let n2 = &e.nodes[2];
        assert_eq!(
            v(n2, "NodeAffinity").reason,
            "node(s) didn't match Pod's node affinity/selector"
        );
        let n1 = &e.nodes[1];
        assert_eq!(n1.rank, 1);
        assert_eq!(n1.scores.len(), 6);
        assert_eq!(n1.total, n1.scores.iter().map(|s| s.weighted).sum::<i64>());

        // Nothing fits: the FailedScheduling message, as the cycle would write it.
        spec(&mut p).node_selector = labels(&[("nodev", "v9")]);
        let e = explain(&Profile::default_profile(), &snap, &p);
        assert_eq!(e.chosen, None);
        assert_eq!(
            e.message,
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
             2 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
        );
    }
}
