//! NodeResourcesFit: the pod's requests ([`Resources::for_pod`]: containers summed, the
//! largest init container, overhead) must fit in the node's allocatable minus what its pods
//! already request, and the node must take one more pod. Reasons: `Too many pods`,
//! `Insufficient cpu`, `Insufficient memory`, `Insufficient ephemeral-storage`,
//! `Insufficient <extended resource>`; all that apply are reported.
//!
//! Score (`scoringStrategy`, from `pluginConfig` args): per resource (default cpu and memory,
//! weight 1 each) after placing the pod, using non-zero requests for cpu and memory (a
//! container without a cpu/memory request counts as 100m / 200Mi), averaged by weight over the
//! resources the node has (allocatable 0 is skipped):
//! - `LeastAllocated` (default): `(allocatable - requested) * 100 / allocatable`;
//! - `MostAllocated`: `min(requested, allocatable) * 100 / allocatable`;
//! - `RequestedToCapacityRatio`: the utilization mapped through `shape` (points of
//!   utilization 0..=100 → score 0..=10, linear between them, scaled to 0..=100).
use coxswain_api::v1;

use crate::framework::{
    ClusterEvent, CycleState, Filter, Plugin, PreFilter, PreScore, Score, Status,
};
use crate::snapshot::{pod_spec, NodeInfo, Resources, Snapshot};

pub const NAME: &str = "NodeResourcesFit";

/// How NodeResourcesFit scores.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// `(utilization, score)` points, utilization ascending.
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

#[derive(Debug)]
pub struct NodeResourcesFit {
    pub strategy: Strategy,
    /// Resource name and weight.
    pub resources: Vec<(String, i64)>,
}

impl Default for NodeResourcesFit {
    fn default() -> Self {
        NodeResourcesFit {
            strategy: Strategy::LeastAllocated,
            resources: vec![("cpu".into(), 1), ("memory".into(), 1)],
        }
    }
}

impl NodeResourcesFit {
    /// From `pluginConfig` args: `scoringStrategy: {type, resources: [{name, weight}],
    /// requestedToCapacityRatio: {shape: [{utilization, score}]}}`.
    pub fn from_args(args: &serde_json::Value) -> Result<NodeResourcesFit, String> {
        let mut p = NodeResourcesFit::default();
        let Some(ss) = args.get("scoringStrategy") else {
            return Ok(p);
        };
        let kind = ss
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("LeastAllocated");
        p.strategy = match kind {
            "LeastAllocated" => Strategy::LeastAllocated,
            "MostAllocated" => Strategy::MostAllocated,
            "RequestedToCapacityRatio" => {
                let shape = ss
                    .pointer("/requestedToCapacityRatio/shape")
                    .and_then(|s| s.as_array())
                    .ok_or("scoringStrategy.requestedToCapacityRatio.shape: required")?;
                let mut pts = Vec::new();
                for (i, pt) in shape.iter().enumerate() {
                    let u = pt.get("utilization").and_then(|v| v.as_i64());
                    let sc = pt.get("score").and_then(|v| v.as_i64());
                    match (u, sc) {
                        (Some(u @ 0..=100), Some(sc @ 0..=10)) => pts.push((u, sc)),
                        _ => {
                            return Err(format!(
                                "scoringStrategy.requestedToCapacityRatio.shape[{i}]: utilization must be 0..100 and score 0..10"
                            ))
                        }
                    }
                }
                if pts.is_empty() || pts.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err("scoringStrategy.requestedToCapacityRatio.shape: utilization values must be non-empty and strictly increasing".into());
                }
                Strategy::RequestedToCapacityRatio(pts)
            }
            other => {
                return Err(format!(
                    "scoringStrategy.type: Unsupported value: {other:?}: supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
                ))
            }
        };
        if let Some(rs) = ss.get("resources") {
            let rs = rs
                .as_array()
                .ok_or("scoringStrategy.resources: must be a list")?;
            p.resources.clear();
            for (i, r) in rs.iter().enumerate() {
                let name = r
                    .get("name")
                    .and_then(|n| n.as_str())
                    .filter(|n| !n.is_empty())
                    .ok_or(format!(
                        "scoringStrategy.resources[{i}].name: Required value"
                    ))?;
                let w = r.get("weight").and_then(|w| w.as_i64()).unwrap_or(1);
                if !(1..=100).contains(&w) {
                    return Err(format!(
                        "scoringStrategy.resources[{i}].weight: Invalid value: {w}: resource weight of {name} should be in range [1, 100]"
                    ));
                }
                p.resources.push((name.to_string(), w));
            }
        }
        Ok(p)
    }
}

/// `MostAllocated` for one resource.
pub fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * crate::framework::MAX_NODE_SCORE / capacity
}

/// `RequestedToCapacityRatio` for one resource: the broken-linear shape (scores 0..=10 scaled
/// by 10) at utilization `requested * 100 / capacity`.
pub fn ratio_score(shape: &[(i64, i64)], requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return shape.last().map_or(0, |p| p.1 * 10);
    }
    let u = requested * 100 / capacity;
    let pts: Vec<(i64, i64)> = shape.iter().map(|(x, y)| (*x, y * 10)).collect();
    if u <= pts[0].0 {
        return pts[0].1;
    }
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if u <= x1 {
            return y0 + (y1 - y0) * (u - x0) / (x1 - x0);
        }
    }
    pts[pts.len() - 1].1
}

struct PreFilterState(Resources);
struct PreScoreState {
    non_zero: Resources,
    actual: Resources,
    /// The scored resources with their names resolved once per cycle.
    kinds: Vec<(ResKind, i64)>,
}

/// A scored resource's name resolved to its field of [`Resources`].
enum ResKind {
    Cpu,
    Memory,
    EphemeralStorage,
    Pods,
    Scalar(String),
}

impl ResKind {
    fn of(name: &str) -> ResKind {
        match name {
            "cpu" => ResKind::Cpu,
            "memory" => ResKind::Memory,
            "ephemeral-storage" => ResKind::EphemeralStorage,
            "pods" => ResKind::Pods,
            other => ResKind::Scalar(other.to_string()),
        }
    }

    /// The amount of this resource in `r` (extended resources: 0 when absent).
    #[inline]
    fn amount(&self, r: &Resources) -> i64 {
        match self {
            ResKind::Cpu => r.milli_cpu,
            ResKind::Memory => r.memory,
            ResKind::EphemeralStorage => r.ephemeral_storage,
            ResKind::Pods => r.allowed_pods,
            ResKind::Scalar(n) => r.scalar.get(n).copied().unwrap_or(0),
        }
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeAllocatable,
            ClusterEvent::AssignedPodDelete,
        ]
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

/// True when [`insufficient_resources`] would find nothing, decided with integer compares
/// only for a request without extended resources (the common case); with extended resources,
/// the full check answers.
#[inline]
pub fn fits(request: &Resources, node: &NodeInfo) -> bool {
    if !request.scalar.is_empty() {
        return insufficient_resources(request, node).is_empty();
    }
    let (alloc, used) = (&node.allocatable, &node.requested);
    let short = |want: i64, have: i64, taken: i64| want > 0 && want > have - taken;
    (node.pods.len() as i64) < alloc.allowed_pods
        && !short(request.milli_cpu, alloc.milli_cpu, used.milli_cpu)
        && !short(request.memory, alloc.memory, used.memory)
        && !short(
            request.ephemeral_storage,
            alloc.ephemeral_storage,
            used.ephemeral_storage,
        )
}

impl Filter for NodeResourcesFit {
    fn filter(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Status {
        self.rejection(state, pod, node)
            .unwrap_or_else(Status::success)
    }

    fn rejection(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> Option<Status> {
        let computed;
        let req = match state.read::<PreFilterState>() {
            Some(s) => &s.0,
            None => {
                computed = Resources::for_pod(pod_spec(pod));
                &computed
            }
        };
        if fits(req, node) {
            return None;
        }
        let reasons = insufficient_resources(req, node);
        (!reasons.is_empty()).then(|| Status::new(crate::framework::Code::Unschedulable, reasons))
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
        // The requests PreFilter computed for this pod this cycle, when it ran.
        let actual = state.read::<PreFilterState>().map(|s| s.0.clone());
        state.write(self.pre_score_state(pod, actual));
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

impl NodeResourcesFit {
    /// `actual`: the pod's [`Resources::for_pod`], when already computed.
    fn pre_score_state(&self, pod: &v1::Pod, actual: Option<Resources>) -> PreScoreState {
        PreScoreState {
            non_zero: Resources::non_zero_for_pod(pod_spec(pod)),
            actual: actual.unwrap_or_else(|| Resources::for_pod(pod_spec(pod))),
            kinds: self
                .resources
                .iter()
                .map(|(n, w)| (ResKind::of(n), *w))
                .collect(),
        }
    }
}

impl Score for NodeResourcesFit {
    fn score(&self, state: &CycleState, pod: &v1::Pod, node: &NodeInfo) -> i64 {
        let computed;
        let s = match state.read::<PreScoreState>() {
            Some(s) => s,
            None => {
                computed = self.pre_score_state(pod, None);
                &computed
            }
        };
        self.score_with(s, node)
    }

    /// The cycle state is read once; the default strategy and resources (`LeastAllocated`
    /// over cpu and memory) take [`least_allocated_cpu_memory`], the rest [`Self::score_with`].
    fn score_all(&self, state: &CycleState, pod: &v1::Pod, nodes: &[&NodeInfo], out: &mut [i64]) {
        let computed;
        let s = match state.read::<PreScoreState>() {
            Some(s) => s,
            None => {
                computed = self.pre_score_state(pod, None);
                &computed
            }
        };
        if let (Strategy::LeastAllocated, [(ResKind::Cpu, wc), (ResKind::Memory, wm)]) =
            (&self.strategy, s.kinds.as_slice())
        {
            let (pod_cpu, pod_mem) = (s.non_zero.milli_cpu, s.non_zero.memory);
            for (o, n) in out.iter_mut().zip(nodes) {
                let h = n.hot();
                *o = least_allocated_cpu_memory(
                    (h.non_zero_cpu + pod_cpu, h.alloc_cpu, *wc),
                    (h.non_zero_memory + pod_mem, h.alloc_memory, *wm),
                );
            }
            return;
        }
        for (o, n) in out.iter_mut().zip(nodes) {
            *o = self.score_with(s, n);
        }
    }
}

/// `LeastAllocated` over (requested, allocatable, weight) for cpu and memory: the same
/// arithmetic as the general loop in [`NodeResourcesFit::score_with`] (a resource with
/// nothing allocatable is left out of the average).
#[inline]
pub fn least_allocated_cpu_memory(cpu: (i64, i64, i64), mem: (i64, i64, i64)) -> i64 {
    let (mut total, mut weights) = (0, 0);
    for (req, alloc, w) in [cpu, mem] {
        if alloc != 0 {
            total += least_requested_score(req, alloc) * w;
            weights += w;
        }
    }
    if weights == 0 {
        0
    } else {
        total / weights
    }
}

impl NodeResourcesFit {
    /// One node's score from the cycle's PreScore state (the reference for every strategy).
    fn score_with(&self, s: &PreScoreState, node: &NodeInfo) -> i64 {
        let (mut total, mut weights) = (0, 0);
        for (kind, w) in &s.kinds {
            let alloc = kind.amount(&node.allocatable);
            if alloc == 0 {
                continue;
            }
            let req = if matches!(kind, ResKind::Cpu | ResKind::Memory) {
                kind.amount(&node.non_zero_requested) + kind.amount(&s.non_zero)
            } else {
                kind.amount(&node.requested) + kind.amount(&s.actual)
            };
            let score = match &self.strategy {
                Strategy::LeastAllocated => least_requested_score(req, alloc),
                Strategy::MostAllocated => most_requested_score(req, alloc),
                Strategy::RequestedToCapacityRatio(shape) => ratio_score(shape, req, alloc),
            };
            total += score * w;
            weights += w;
        }
        if weights == 0 {
            0
        } else {
            total / weights
        }
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
            let s = NodeResourcesFit::default().filter(&CycleState::new(), &incoming, &ni);
            assert_eq!(s.code, code, "{incoming:?}");
            assert_eq!(s.reasons.to_vec(), reasons);
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
        assert_eq!(
            NodeResourcesFit::default().score(&CycleState::new(), &p, &ni),
            37
        );
        // MostAllocated: (75 + 50) / 2 = 62; weights 3:1 → (75*3 + 50) / 4 = 68.
        let most = NodeResourcesFit::from_args(&serde_json::json!({
            "scoringStrategy": {"type": "MostAllocated"}
        }))
        .unwrap();
        assert_eq!(most.score(&CycleState::new(), &p, &ni), 62);
        let weighted = NodeResourcesFit::from_args(&serde_json::json!({
            "scoringStrategy": {"type": "MostAllocated", "resources": [
                {"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]}
        }))
        .unwrap();
        assert_eq!(weighted.score(&CycleState::new(), &p, &ni), 68);
        // Shape 0→10, 100→0 is LeastAllocated.
        assert_eq!(ratio_score(&[(0, 10), (100, 0)], 3000, 4000), 25);
        assert_eq!(ratio_score(&[(0, 0), (100, 10)], 3000, 4000), 75);
        assert!(NodeResourcesFit::from_args(&serde_json::json!({
            "scoringStrategy": {"type": "Bogus"}
        }))
        .unwrap_err()
        .starts_with("scoringStrategy.type: Unsupported value: \"Bogus\""));
    }
}
