//! Kubelet admission: a pod is run only if the node has room for it.
use super::*;

impl<R: Runtime> NodeAgent<R> {
    /// Kubelet admission: room for one more pod, and for its CPU and memory requests.
    pub(super) fn admit(&self, pod: &Pod) -> Option<(String, String)> {
        let cap = |k: &str| {
            self.config
                .capacity
                .get(k)
                .and_then(|v| coxswain_api::quantity::Quantity::parse(v).ok())
        };
        let workers = self.workers.lock().ok()?;
        let active: Vec<Arc<Pod>> = workers
            .values()
            .filter(|w| {
                let phase = w.phase();
                phase != "Succeeded" && phase != "Failed"
            })
            .map(|w| w.pod.clone())
            .collect();
        drop(workers);
        let msg = |res: &str, req: i64, used: i64, capacity: i64| {
            (
                format!("OutOf{res}"),
                format!(
                    "Node didn't have enough resource: {res}, requested: {req}, used: {used}, capacity: {capacity}"
                ),
            )
        };
        if let Some(pods) = cap("pods") {
            let capacity = pods.value();
            if active.len() as i64 + 1 > capacity {
                return Some(msg("pods", 1, active.len() as i64, capacity));
            }
        }
        let want = requests(pod.spec.as_ref());
        let used = active
            .iter()
            .map(|p| requests(p.spec.as_ref()))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        if let Some(cpu) = cap("cpu") {
            let capacity = cpu.milli_value();
            if want.0 > 0 && used.0 + want.0 > capacity {
                return Some(msg("cpu", want.0, used.0, capacity));
            }
        }
        if let Some(mem) = cap("memory") {
            let capacity = mem.value();
            if want.1 > 0 && used.1 + want.1 > capacity {
                return Some(msg("memory", want.1, used.1, capacity));
            }
        }
        None
    }
}

/// A pod's (CPU millicores, memory bytes) requests: the containers' sum, or the largest init
/// container's when that is more (as the scheduler counts them).
fn requests(spec: Option<&coxswain_api::v1::PodSpec>) -> (i64, i64) {
    let Some(spec) = spec else {
        return (0, 0);
    };
    let of = |c: &coxswain_api::v1::Container| {
        let r = c.resources.as_ref().map(|r| &r.requests);
        let q = |k: &str| {
            r.and_then(|r| r.get(k))
                .and_then(|v| coxswain_api::quantity::Quantity::parse(v).ok())
        };
        (
            q("cpu").map(|q| q.milli_value()).unwrap_or(0),
            q("memory").map(|q| q.value()).unwrap_or(0),
        )
    };
    let sum = spec
        .containers
        .iter()
        .map(of)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    spec.init_containers
        .iter()
        .map(of)
        .fold(sum, |a, b| (a.0.max(b.0), a.1.max(b.1)))
}
