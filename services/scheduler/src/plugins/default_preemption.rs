//! DefaultPreemption (PostFilter): kube-scheduler's preemption dry run, as far as it decides
//! the message users see. When no node is feasible it classifies every node:
//! - rejected as UnschedulableAndUnresolvable: `Preemption is not helpful for scheduling`;
//! - rejected as Unschedulable with no pod of lower priority on it:
//!   `No preemption victims found for incoming pod`;
//! - rejected as Unschedulable with lower-priority pods: a preemption candidate.
//!
//! Without candidates the status is Unschedulable with upstream's message
//! `preemption: 0/N nodes are available: <counts>.` (N: the nodes classified), which
//! the FitError appends. A pod with `preemptionPolicy: Never` gets
//! `preemption: not eligible due to preemptionPolicy=Never.`
//!
//! Evicting victims and nominating a node are not implemented: when candidates exist this
//! plugin reports nothing (upstream would preempt and its message would carry no suffix).
use std::collections::BTreeMap;

use coxswain_api::v1;

use crate::framework::{Code, CycleState, FitError, Plugin, PostFilter, PostFilterResult, Status};
use crate::snapshot::{pod_spec, Snapshot};

pub const NAME: &str = "DefaultPreemption";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

pub struct DefaultPreemption;

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilter> {
        Some(self)
    }
}

fn priority(pod: &v1::Pod) -> i32 {
    pod_spec(pod).priority.unwrap_or(0)
}

impl PostFilter for DefaultPreemption {
    fn post_filter(
        &self,
        _: &CycleState,
        pod: &v1::Pod,
        snapshot: &Snapshot,
        diagnosis: &BTreeMap<String, Status>,
    ) -> PostFilterResult {
        if pod_spec(pod).preemption_policy.as_deref() == Some("Never") {
            return PostFilterResult {
                nominated_node: None,
                status: Status::unschedulable(
                    "preemption: not eligible due to preemptionPolicy=Never.",
                ),
            };
        }
        let mut statuses = BTreeMap::new();
        let mut candidates = 0;
        let prio = priority(pod);
        for (node, s) in diagnosis {
            match s.code {
                Code::UnschedulableAndUnresolvable => {
                    statuses.insert(node.clone(), Status::unresolvable(NOT_HELPFUL));
                }
                Code::Unschedulable => {
                    let victims = snapshot
                        .get(node)
                        .is_some_and(|ni| ni.pods.iter().any(|p| priority(p) < prio));
                    if victims {
                        candidates += 1;
                    } else {
                        statuses.insert(node.clone(), Status::unresolvable(NO_VICTIMS));
                    }
                }
                _ => {}
            }
        }
        if candidates > 0 {
            return PostFilterResult {
                nominated_node: None,
                status: Status::success(),
            };
        }
        let fit = FitError {
            pod: String::new(),
            num_all_nodes: statuses.len(),
            diagnosis: statuses,
            pre_filter_msg: String::new(),
            post_filter_msg: String::new(),
            unschedulable_plugins: Default::default(),
        };
        PostFilterResult {
            nominated_node: None,
            status: Status::unschedulable(format!("preemption: {fit}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;

    #[test]
    fn classifies_nodes_like_upstream() {
        let snap = snapshot(
            vec![node("a", &[]), node("b", &[]), node("c", &[])],
            vec![on(pod("low", &[]), "c")],
        );
        let mut diag = BTreeMap::new();
        diag.insert("a".to_string(), Status::unresolvable("x"));
        diag.insert("b".to_string(), Status::unschedulable("Insufficient cpu"));
        let p = pod("p", &[]);
        let r = DefaultPreemption.post_filter(&CycleState::new(), &p, &snap, &diag);
        assert_eq!(
            r.status.message(),
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
             1 Preemption is not helpful for scheduling."
        );
        // A lower-priority pod on an Unschedulable node makes it a candidate: no message.
        diag.insert("c".to_string(), Status::unschedulable("Insufficient cpu"));
        let mut high = pod("p", &[]);
        spec(&mut high).priority = Some(10);
        let r = DefaultPreemption.post_filter(&CycleState::new(), &high, &snap, &diag);
        assert!(r.status.is_success());
        spec(&mut high).preemption_policy = Some("Never".into());
        let r = DefaultPreemption.post_filter(&CycleState::new(), &high, &snap, &diag);
        assert_eq!(
            r.status.message(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
