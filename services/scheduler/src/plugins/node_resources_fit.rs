//! NodeResourcesFit: the pod's requests ([`Resources::for_pod`]: containers summed, the
//! largest init container, overhead) must fit in the node's allocatable minus what its pods
//! already request, and the node must take one more pod. Reasons: `Too many pods`,
//! `Insufficient cpu`, `Insufficient memory`, `Insufficient ephemeral-storage`,
//! `Insufficient <extended resource>`; all that apply are reported.
//!
//! Score: the `LeastAllocated` strategy (the default): per resource (cpu and memory, weight 1
//! each) `(allocatable - requested) * 100 / allocatable` after placing the pod, using
//! non-zero requests (a container without a cpu/memory request counts as 100m / 200Mi),
//! averaged by weight.
use coxswain_api::v1;

use crate::framework::{CycleState, Filter, Plugin, PreFilter, PreScore, Score, Status};
use crate::snapshot::{pod_spec, NodeInfo, Resources, Snapshot};

pub const NAME: &str = "NodeResourcesFit";

pub struct NodeResourcesFit;

struct PreFilterState(Resources);
struct PreScoreState(Resources);

impl Plugin for NodeResourcesFit {
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

impl PreFilter for NodeResourcesFit {
    fn pre_filter(&self, state: &mut CycleState, pod: &v1::Pod, _: &Snapshot) -> Status {
        state.write(PreFilterState(Resources::for_pod(pod_spec(pod))));
        Status::success()
    }
}

/// The reasons `request` does not fit on `node` (empty when it fits).
pub fn insufficient_resources(request: &Resources, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    if request.is_zero() {
        return reasons;
    }
    let (alloc, used) = (&node.allocatable, &node.requested);
    for (name, want, have, taken) in [
        ("cpu", request.milli_cpu, alloc.milli_cpu, used.milli_cpu),
        ("memory", request.memory, alloc.memory, used.memory),
        (
            "ephemeral-storage",
            request.ephemeral_storage,
            alloc.ephemeral_storage,
            used.ephemeral_storage,
        ),
    ] {
        if want > 0 && want > have - taken {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    for (name, want) in &request.scalar {
        if *want == 0 {
            continue;
        }
        let have = alloc.scalar.get(name).copied().unwrap_or(0);
        let taken = used.scalar.get(name).copied().unwrap_or(0);
        if have < want + taken {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl Filter for NodeResourcesFit {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        let computed;
        let req = match state.read::<PreFilterState>() {
            Some(s) => &s.0,
            None => {
                computed = Resources::for_pod(pod_spec(pod));
                &computed
            }
        };
        let reasons = insufficient_resources(req, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::new(crate::framework::Code::Unschedulable, reasons)
        }
    }
}

impl PreScore for NodeResourcesFit {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &v1::Pod,
        _: &Snapshot,
        _: &[&NodeInfo],
    ) -> Status {
        state.write(PreScoreState(Resources::non_zero_for_pod(pod_spec(pod))));
        Status::success()
    }
}

/// `LeastAllocated` for one resource.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * crate::framework::MAX_NODE_SCORE / capacity
}

impl Score for NodeResourcesFit {
    fn score(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> i64 {
        let computed;
        let req = match state.read::<PreScoreState>() {
            Some(s) => &s.0,
            None => {
                computed = Resources::non_zero_for_pod(pod_spec(pod));
                &computed
            }
        };
        let nz = &node.non_zero_requested;
        let cpu = least_requested_score(nz.milli_cpu + req.milli_cpu, node.allocatable.milli_cpu);
        let mem = least_requested_score(nz.memory + req.memory, node.allocatable.memory);
        (cpu + mem) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn pod_with(containers: Vec<v1::Container>, init: Vec<v1::Container>) -> v1::Pod {
        let mut p = pod("p", &[]);
        spec(&mut p).containers = containers;
        spec(&mut p).init_containers = init;
        p
    }

    #[test]
    fn requests_follow_the_init_container_max_rule() {
        let sidecar = |r: &[(&str, &str)]| {
            let mut c = container(r);
            c.restart_policy = Some("Always".into());
            c
        };
        for (containers, init, overhead, cpu, mem) in [
            // Containers summed.
            (
                vec![
                    container(&[("cpu", "1"), ("memory", "1Gi")]),
                    container(&[("cpu", "500m")]),
                ],
                vec![],
                vec![],
                1500,
                1 << 30,
            ),
            // The largest init container wins when larger than the sum, per resource.
            (
                vec![container(&[("cpu", "1"), ("memory", "1Gi")])],
                vec![
                    container(&[("cpu", "2")]),
                    container(&[("memory", "512Mi")]),
                ],
                vec![],
                2000,
                1 << 30,
            ),
            (
                vec![container(&[("cpu", "1")])],
                vec![container(&[("cpu", "3")]), container(&[("cpu", "2")])],
                vec![],
                3000,
                0,
            ),
            // Overhead is added on top.
            (
                vec![container(&[("cpu", "1")])],
                vec![container(&[("cpu", "3")])],
                vec![("cpu", "250m")],
                3250,
                0,
            ),
            // A sidecar adds to the steady state and to later init containers.
            (
                vec![container(&[("cpu", "1")])],
                vec![sidecar(&[("cpu", "500m")]), container(&[("cpu", "2")])],
                vec![],
                2500,
                0,
            ),
            (
                vec![container(&[("cpu", "1")])],
                vec![container(&[("cpu", "1")]), sidecar(&[("cpu", "500m")])],
                vec![],
                1500,
                0,
            ),
            // No requests at all.
            (vec![container(&[])], vec![], vec![], 0, 0),
        ] {
            let mut p = pod_with(containers, init);
            spec(&mut p).overhead = labels(&overhead);
            let r = Resources::for_pod(spec(&mut p));
            assert_eq!((r.milli_cpu, r.memory), (cpu, mem), "{p:?}");
        }
    }

    #[test]
    fn non_zero_requests_default_missing_cpu_and_memory() {
        let p = pod_with(vec![container(&[]), container(&[("cpu", "0")])], vec![]);
        let r = Resources::non_zero_for_pod(p.spec.as_ref().unwrap());
        assert_eq!(r.milli_cpu, 100);
        assert_eq!(r.memory, 2 * 200 * 1024 * 1024);
    }

    #[test]
    fn filter() {
        let n = || {
            with_alloc(
                node("n", &[]),
                &[
                    ("cpu", "2"),
                    ("memory", "2Gi"),
                    ("pods", "2"),
                    ("example.com/gpu", "1"),
                ],
            )
        };
        let busy = on(
            pod_with(vec![container(&[("cpu", "1"), ("memory", "1Gi")])], vec![]),
            "n",
        );
        for (existing, incoming, code, reasons) in [
            (
                vec![],
                pod_with(vec![container(&[("cpu", "2")])], vec![]),
                Code::Success,
                vec![],
            ),
            (
                vec![busy.clone()],
                pod_with(vec![container(&[("cpu", "1")])], vec![]),
                Code::Success,
                vec![],
            ),
            (
                vec![busy.clone()],
                pod_with(vec![container(&[("cpu", "1001m")])], vec![]),
                Code::Unschedulable,
                vec!["Insufficient cpu"],
            ),
            (
                vec![busy.clone()],
                pod_with(vec![container(&[("cpu", "2"), ("memory", "2Gi")])], vec![]),
                Code::Unschedulable,
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            // The init container's request counts even though the containers' sum is small.
            (
                vec![],
                pod_with(
                    vec![container(&[("cpu", "100m")])],
                    vec![container(&[("cpu", "3")])],
                ),
                Code::Unschedulable,
                vec!["Insufficient cpu"],
            ),
            (
                vec![busy.clone(), busy.clone()],
                pod_with(vec![container(&[])], vec![]),
                Code::Unschedulable,
                vec!["Too many pods"],
            ),
            (
                vec![],
                pod_with(vec![container(&[("example.com/gpu", "2")])], vec![]),
                Code::Unschedulable,
                vec!["Insufficient example.com/gpu"],
            ),
            (
                vec![],
                pod_with(vec![container(&[("example.com/gpu", "1")])], vec![]),
                Code::Success,
                vec![],
            ),
        ] {
            let ni = info(n(), existing);
            let s = NodeResourcesFit.filter(&CycleState::new(), &incoming, &ni);
            assert_eq!(s.code, code, "{incoming:?}");
            assert_eq!(s.reasons, reasons);
        }
    }

    #[test]
    fn least_allocated() {
        // Upstream's example: cpu 3000m/4000m used, memory 5000/10000 → (25 + 50) / 2 = 37.
        assert_eq!(least_requested_score(3000, 4000), 25);
        assert_eq!(least_requested_score(5000, 10000), 50);
        assert_eq!(least_requested_score(1, 0), 0);
        assert_eq!(least_requested_score(11, 10), 0);
        let n = with_alloc(
            node("n", &[]),
            &[("cpu", "4"), ("memory", "10000"), ("pods", "10")],
        );
        let ni = info(
            n,
            vec![on(
                pod_with(vec![container(&[("cpu", "2"), ("memory", "2500")])], vec![]),
                "n",
            )],
        );
        let p = pod_with(vec![container(&[("cpu", "1"), ("memory", "2500")])], vec![]);
        assert_eq!(NodeResourcesFit.score(&CycleState::new(), &p, &ni), 37);
    }
}
