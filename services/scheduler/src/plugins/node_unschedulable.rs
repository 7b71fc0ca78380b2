//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.
use coxswain_api::v1;

use super::taint_toleration::tolerates;
use crate::framework::{ClusterEvent, CycleState, Filter, Plugin, Status};
use crate::snapshot::{pod_spec, NodeInfo};

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON: &str = "node(s) were unschedulable";
pub const TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeSchedulable,
            ClusterEvent::NodeTaint,
        ]
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

/// Whether `pod` may go to `node`: the node is not cordoned, or the pod tolerates the
/// unschedulable taint.
fn admits(pod: &v1::Pod, node: &NodeInfo) -> bool {
    if !node.cordoned() {
        return true;
    }
    let taint = v1::Taint {
        key: TAINT_KEY.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    pod_spec(pod)
        .tolerations
        .iter()
        .any(|t| tolerates(t, &taint))
}

impl Filter for NodeUnschedulable {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        self.rejection(state, pod, node)
            .unwrap_or_else(Status::success)
    }

    fn rejection(&self, _: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Option<Status> {
        (!admits(pod, node)).then(|| Status::unresolvable(ERR_REASON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    #[test]
    fn table() {
        let tol = |key: &str, op: &str, effect: &str| v1::Toleration {
            key: key.into(),
            operator: op.into(),
            effect: effect.into(),
            ..Default::default()
        };
        for (cordoned, tolerations, code) in [
            (false, vec![], Code::Success),
            (true, vec![], Code::UnschedulableAndUnresolvable),
            (
                true,
                vec![tol(TAINT_KEY, "Exists", "NoSchedule")],
                Code::Success,
            ),
            (true, vec![tol("", "Exists", "")], Code::Success),
            (
                true,
                vec![tol(TAINT_KEY, "Exists", "NoExecute")],
                Code::UnschedulableAndUnresolvable,
            ),
        ] {
            let mut n = node("n", &[]);
            n.spec.as_mut().unwrap().unschedulable = cordoned;
            let mut p = pod("p", &[]);
            spec(&mut p).tolerations = tolerations.clone();
            let s = NodeUnschedulable.filter(&CycleState::new(), &p, &info(n, vec![]));
            assert_eq!(s.code, code, "{cordoned} {tolerations:?}");
        }
    }
}
