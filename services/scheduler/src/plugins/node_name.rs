//! NodeName: a pod with `spec.nodeName` set fits only that node.
use coxswain_api::v1;

use crate::framework::{ClusterEvent, CycleState, Filter, Plugin, Status};
use crate::snapshot::{pod_spec, NodeInfo};

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd]
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl Filter for NodeName {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        self.rejection(state, pod, node)
            .unwrap_or_else(Status::success)
    }

    fn rejection(&self, _: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Option<Status> {
        let want = &pod_spec(pod).node_name;
        (!want.is_empty() && want != node.name()).then(|| Status::unresolvable(ERR_REASON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    #[test]
    fn table() {
        for (want, node_name, code) in [
            ("", "n1", Code::Success),
            ("n1", "n1", Code::Success),
            ("n2", "n1", Code::UnschedulableAndUnresolvable),
        ] {
            let p = on(pod("p", &[]), want);
            let s = NodeName.filter(&CycleState::new(), &p, &info(node(node_name, &[]), vec![]));
            assert_eq!(s.code, code, "{want} on {node_name}");
        }
    }
}
