//! NodePorts: a pod's host ports must be free on the node (same protocol and port conflict
//! when the host IPs are equal or either is the wildcard `0.0.0.0`).
use coxswain_api::v1;

use crate::framework::{ClusterEvent, CycleState, Filter, Plugin, PreFilter, Status};
use crate::snapshot::{pod_spec, HostPort, NodeInfo, Snapshot};

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

struct PreFilterState(Vec<HostPort>);

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::AssignedPodDelete]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl PreFilter for NodePorts {
    fn pre_filter(&self, state: &mut CycleState, pod: &v1::Pod, _: &Snapshot) -> Status {
        let ports = HostPort::for_pod(pod_spec(pod));
        if ports.is_empty() {
            return Status::skip();
        }
        state.write(PreFilterState(ports));
        Status::success()
    }
}

impl Filter for NodePorts {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        self.rejection(state, pod, node)
            .unwrap_or_else(Status::success)
    }

    fn rejection(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Option<Status> {
        let computed;
        let wanted = match state.read::<PreFilterState>() {
            Some(s) => &s.0,
            None => {
                computed = HostPort::for_pod(pod_spec(pod));
                &computed
            }
        };
        wanted
            .iter()
            .any(|w| node.used_ports.iter().any(|u| u.conflicts(w)))
            .then(|| Status::unschedulable(ERR_REASON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn port_pod(name: &str, port: i32, protocol: &str, ip: &str) -> v1::Pod {
        let mut p = pod(name, &[]);
        spec(&mut p).containers[0].ports = vec![v1::ContainerPort {
            host_port: port,
            container_port: 80,
            protocol: protocol.into(),
            host_ip: ip.into(),
            ..Default::default()
        }];
        p
    }

    #[test]
    fn table() {
        for (existing, incoming, code) in [
            (
                port_pod("e", 8080, "TCP", ""),
                port_pod("p", 8080, "", ""),
                Code::Unschedulable,
            ),
            (
                port_pod("e", 8080, "TCP", ""),
                port_pod("p", 8081, "TCP", ""),
                Code::Success,
            ),
            (
                port_pod("e", 8080, "UDP", ""),
                port_pod("p", 8080, "TCP", ""),
                Code::Success,
            ),
            (
                port_pod("e", 8080, "TCP", "10.0.0.1"),
                port_pod("p", 8080, "TCP", "10.0.0.2"),
                Code::Success,
            ),
            (
                port_pod("e", 8080, "TCP", "10.0.0.1"),
                port_pod("p", 8080, "TCP", "10.0.0.1"),
                Code::Unschedulable,
            ),
            (
                port_pod("e", 8080, "TCP", "10.0.0.1"),
                port_pod("p", 8080, "TCP", "0.0.0.0"),
                Code::Unschedulable,
            ),
            (
                port_pod("e", 8080, "TCP", ""),
                port_pod("p", 8080, "TCP", "10.0.0.1"),
                Code::Unschedulable,
            ),
            (port_pod("e", 8080, "TCP", ""), pod("p", &[]), Code::Success),
        ] {
            let ni = info(node("n", &[]), vec![on(existing, "n")]);
            let s = NodePorts.filter(&CycleState::new(), &incoming, &ni);
            assert_eq!(s.code, code);
            if code != Code::Success {
                assert_eq!(s.message(), ERR_REASON);
            }
        }
    }
}
