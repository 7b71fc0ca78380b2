//! What the agent keeps of a pod object bound to its node (the pod informer's transform) and
//! what it reads of the pod's stored status once the pod's worker runs.
use super::*;

impl<R: Runtime> NodeAgent<R> {
    /// The stored status of a pod with a worker changed under us (another component, or an
    /// agent that was away): keep its foreign conditions, and rewrite ours when it is not one
    /// we wrote.
    pub(super) fn check_stored_status(&self, uid: &str, sync: &WriterState, stored: &PodStatus) {
        let foreign: Vec<Condition> = stored
            .conditions
            .iter()
            .filter(|c| !OWN_CONDITIONS.contains(&c.r#type.as_str()))
            .cloned()
            .collect();
        let mut rewrite = false;
        if let Ok(mut f) = sync.foreign.lock() {
            if *f != foreign {
                *f = foreign;
                rewrite = true;
            }
        }
        let d = digest(stored);
        if let Ok(r) = sync.recent.lock() {
            if !r.is_empty() && !r.contains(&d) {
                rewrite = true;
            }
        }
        if rewrite {
            self.sink.writer.rewrite(uid);
        }
    }

    /// What the pod informer keeps of a pod bound to this node: its transform (client-go's
    /// `SetTransform`), applied before the cache stores the pod. The cache, the handler and the
    /// pod's worker share that one object, so what is dropped here is memory per pod (sim pods'
    /// memory, issue 17).
    ///
    /// A pod without a worker keeps everything: admission reads its spec, and the worker's
    /// start its stored status (the IP, the start time, the restart counts an agent takes over,
    /// the conditions a rejection keeps). Once the worker runs, the agent reads the stored
    /// status only to compare it with what it wrote and to keep the foreign conditions: that is
    /// done here, and the status is dropped (the worker has its own, the one it writes). The
    /// scheduling fields of the spec (nodeSelector, affinity, tolerations, topology spread,
    /// priority, schedulerName, preemptionPolicy, overhead) are read by nothing on the node
    /// after admission, and are dropped too. Metadata is kept whole: annotations and labels
    /// reach the containers (downward API) and script the sim runtime.
    pub fn trim(&self, mut pod: Pod) -> Pod {
        shrink(&mut pod);
        let Some(uid) = pod.metadata.as_ref().map(|m| m.uid.as_str()) else {
            return pod;
        };
        let sync = match self.workers.lock() {
            Ok(w) => match w.get(uid) {
                Some(w) => w.sync.clone(),
                None => return pod,
            },
            Err(_) => return pod,
        };
        let stored = pod.status.take().unwrap_or_default();
        self.check_stored_status(uid, &sync, &stored);
        if let Some(s) = pod.spec.as_mut() {
            s.node_selector = Default::default();
            s.affinity = None;
            s.tolerations = Vec::new();
            s.topology_spread_constraints = Vec::new();
            s.scheduler_name = String::new();
            s.priority_class_name = String::new();
            s.priority = None;
            s.preemption_policy = None;
            s.overhead = Default::default();
        }
        pod
    }
}

/// A decoded pod's lists hold their length and no more: the decoder grows a list as it pushes,
/// and a list of one Container (480 bytes) kept room for four, 1,440 bytes unused in every
/// cached pod (sim pods' memory, issue 17). Only the capacity changes.
fn shrink(pod: &mut Pod) {
    if let Some(s) = pod.spec.as_mut() {
        s.containers.shrink_to_fit();
        s.init_containers.shrink_to_fit();
        s.volumes.shrink_to_fit();
        s.readiness_gates.shrink_to_fit();
        for c in s.containers.iter_mut().chain(s.init_containers.iter_mut()) {
            c.ports.shrink_to_fit();
            c.env.shrink_to_fit();
            c.volume_mounts.shrink_to_fit();
        }
    }
    if let Some(st) = pod.status.as_mut() {
        st.conditions.shrink_to_fit();
        st.container_statuses.shrink_to_fit();
        st.init_container_statuses.shrink_to_fit();
    }
}
