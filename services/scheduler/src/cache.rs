//! The scheduler cache: a [`Snapshot`] kept current by node and pod events, one change at a
//! time (no rebuild per cycle), plus the pods the scheduler has *assumed* (decided, binding in
//! flight). A pod is accounted to its node as soon as it is assumed, so the next cycle sees it
//! without waiting for the watch; the informer's copy of the bound pod later confirms it, a
//! failed binding forgets it.
//!
//! Every change returns the [`ClusterEvent`]s it amounts to, for the scheduling queue.
//! Pods bound to a node the cache does not know (yet) are kept aside and accounted when the
//! node appears. Terminal pods (Succeeded/Failed) hold nothing.
use std::collections::HashMap;
use std::sync::Arc;

use coxswain_api::v1;

use crate::framework::ClusterEvent;
use crate::queue::pod_key;
use crate::snapshot::{node_name, pod_labels, pod_name, pod_namespace, pod_spec, Snapshot};

#[derive(Debug, Clone)]
struct PodState {
    node: String,
    assumed: bool,
    pod: Arc<v1::Pod>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct SchedulerCache {
    snapshot: Snapshot,
    pods: HashMap<String, PodState>,
    /// Pods bound to nodes not in the snapshot, by node name.
    orphans: HashMap<String, Vec<Arc<v1::Pod>>>,
}

fn is_terminal(pod: &v1::Pod) -> bool {
    matches!(
        pod.status.as_ref().map(|s| s.phase.as_str()),
        Some("Succeeded" | "Failed")
    )
}

impl SchedulerCache {
    pub fn new() -> SchedulerCache {
        SchedulerCache::default()
    }

    /// The current snapshot (what a scheduling cycle reads).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The claims, volumes and classes VolumeBinding reads.
    pub fn set_volumes(&mut self, v: crate::plugins::volume_binding::Volumes) {
        self.snapshot.volumes = Some(v);
    }

    pub fn node_count(&self) -> usize {
        self.snapshot.len()
    }

    /// Pods accounted or assumed.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    /// Add or update a node.
    pub fn upsert_node(&mut self, node: Arc<v1::Node>) -> Vec<ClusterEvent> {
        let name = node_name(&node).to_string();
        let old = self.snapshot.get(&name).map(|ni| Arc::clone(&ni.node));
        self.snapshot.upsert_node(Arc::clone(&node));
        let Some(old) = old else {
            for p in self.orphans.remove(&name).unwrap_or_default() {
                self.snapshot.add_pod(p);
            }
            return vec![ClusterEvent::NodeAdd];
        };
        let mut evs = Vec::new();
        if old.metadata.as_ref().map(|m| &m.labels) != node.metadata.as_ref().map(|m| &m.labels) {
            evs.push(ClusterEvent::NodeLabel);
        }
        let spec = |n: &v1::Node| n.spec.clone().unwrap_or_default();
        let (os, ns) = (spec(&old), spec(&node));
        if os.taints != ns.taints {
            evs.push(ClusterEvent::NodeTaint);
        }
        if os.unschedulable != ns.unschedulable {
            evs.push(ClusterEvent::NodeSchedulable);
        }
        let alloc = |n: &v1::Node| n.status.as_ref().map(|s| s.allocatable.clone());
        if alloc(&old) != alloc(&node) {
            evs.push(ClusterEvent::NodeAllocatable);
        }
        evs
    }

    /// Remove a node; its pods wait for it to come back.
    pub fn remove_node(&mut self, name: &str) {
        if let Some(ni) = self.snapshot.remove_node(name) {
            if !ni.pods.is_empty() {
                self.orphans.insert(name.to_string(), ni.pods);
            }
        }
    }

    fn unaccount(&mut self, key: &str) -> Option<PodState> {
        let st = self.pods.remove(key)?;
        let (ns, name) = (pod_namespace(&st.pod), pod_name(&st.pod));
        match self.snapshot.index_of(&st.node) {
            Some(i) => {
                self.snapshot.remove_pod_at(i, ns, name);
            }
            None => {
                if let Some(v) = self.orphans.get_mut(&st.node) {
                    v.retain(|p| !(pod_namespace(p) == ns && pod_name(p) == name));
                }
            }
        }
        Some(st)
    }

    fn account(&mut self, key: String, pod: Arc<v1::Pod>, assumed: bool) {
        let node = pod_spec(&pod).node_name.clone();
        if !self.snapshot.add_pod(Arc::clone(&pod)) {
            self.orphans
                .entry(node.clone())
                .or_default()
                .push(Arc::clone(&pod));
        }
        self.pods.insert(key, PodState { node, assumed, pod });
    }

    /// Account `pod` to `node` before the binding is confirmed.
    pub fn assume(&mut self, pod: &v1::Pod, node: &str) {
        let mut p = pod.clone();
        p.spec.get_or_insert_with(Default::default).node_name = node.to_string();
        let key = pod_key(&p);
        self.unaccount(&key);
        self.account(key, Arc::new(p), true);
    }

    /// Undo an assume (the binding failed). No-op when the pod was confirmed meanwhile.
    pub fn forget(&mut self, key: &str) -> bool {
        if self.is_assumed(key) {
            self.unaccount(key);
            return true;
        }
        false
    }

    /// A pod from the informer (added or modified). Bound, non-terminal pods are accounted
    /// (confirming an assumed one); others are removed.
    pub fn upsert_pod(&mut self, pod: Arc<v1::Pod>) -> Vec<ClusterEvent> {
        let key = pod_key(&pod);
        if pod_spec(&pod).node_name.is_empty() {
            // Not bound (yet): an assumed copy stays until the binding is confirmed or fails.
            return vec![];
        }
        if is_terminal(&pod) {
            return match self.unaccount(&key) {
                Some(_) => vec![ClusterEvent::AssignedPodDelete],
                None => vec![],
            };
        }
        if let Some(ev) = self.replace_same_spec(&key, &pod) {
            return ev;
        }
        let old = self.unaccount(&key);
        let ev = match &old {
            Some(o) if !o.assumed => {
                if pod_labels(&o.pod) != pod_labels(&pod) {
                    vec![ClusterEvent::AssignedPodUpdate]
                } else {
                    vec![]
                }
            }
            _ => vec![ClusterEvent::AssignedPodAdd],
        };
        self.account(key, pod, false);
        ev
    }

    /// [`SchedulerCache::upsert_pod`] of a pod already accounted to the same node with the
    /// same labels and spec (the informer's copy of a pod this scheduler assumed; a status
    /// update): the new version takes the old one's place as unaccounting and accounting it
    /// would leave the node, without deriving its requests, ports, class and terms again.
    /// None when that does not apply.
    fn replace_same_spec(&mut self, key: &str, pod: &Arc<v1::Pod>) -> Option<Vec<ClusterEvent>> {
        let st = self.pods.get_mut(key)?;
        if st.node != pod_spec(pod).node_name
            || pod_labels(&st.pod) != pod_labels(pod)
            || pod_spec(&st.pod) != pod_spec(pod)
        {
            return None;
        }
        let i = self.snapshot.index_of(&st.node)?;
        if !self
            .snapshot
            .replace_pod_at(i, pod_namespace(pod), pod_name(pod), Arc::clone(pod))
        {
            return None;
        }
        let was_assumed = std::mem::replace(&mut st.assumed, false);
        st.pod = Arc::clone(pod);
        // As the general path: a confirmed assumed pod is an add, same labels no update.
        Some(if was_assumed {
            vec![ClusterEvent::AssignedPodAdd]
        } else {
            vec![]
        })
    }

    /// A pod was deleted.
    pub fn remove_pod(&mut self, pod: &v1::Pod) -> Vec<ClusterEvent> {
        match self.unaccount(&pod_key(pod)) {
            Some(_) => vec![ClusterEvent::AssignedPodDelete],
            None => vec![],
        }
    }

    /// A namespace's labels (for affinity terms' `namespaceSelector`).
    pub fn upsert_namespace(&mut self, ns: &v1::Namespace) {
        if let Some(m) = &ns.metadata {
            self.snapshot
                .namespace_labels
                .insert(m.name.clone(), m.labels.clone());
        }
    }

    pub fn remove_namespace(&mut self, name: &str) {
        self.snapshot.namespace_labels.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;

    #[test]
    fn assume_confirm_forget_and_orphans() {
        let mut c = SchedulerCache::new();
        assert_eq!(
            c.upsert_node(Arc::new(node("n1", &[]))),
            [ClusterEvent::NodeAdd]
        );
        let mut p = pod("p", &[]);
        spec(&mut p).containers = vec![container(&[("cpu", "1")])];
        c.assume(&p, "n1");
        assert!(c.is_assumed("default/p"));
        assert_eq!(c.snapshot().get("n1").unwrap().requested.milli_cpu, 1000);
        // Confirmed by the informer.
        let bound = Arc::new(on(p.clone(), "n1"));
        assert_eq!(
            c.upsert_pod(Arc::clone(&bound)),
            [ClusterEvent::AssignedPodAdd]
        );
        assert!(!c.is_assumed("default/p"));
        assert!(!c.forget("default/p"), "confirmed pods are not forgotten");
        assert_eq!(c.snapshot().get("n1").unwrap().pods.len(), 1);
        // A label change.
        let mut relabelled = (*bound).clone();
        relabelled.metadata.as_mut().unwrap().labels = labels(&[("a", "b")]);
        assert_eq!(
            c.upsert_pod(Arc::new(relabelled.clone())),
            [ClusterEvent::AssignedPodUpdate]
        );
        // Finished pods free their node.
        relabelled.status = Some(v1::PodStatus {
            phase: "Succeeded".into(),
            ..Default::default()
        });
        assert_eq!(
            c.upsert_pod(Arc::new(relabelled)),
            [ClusterEvent::AssignedPodDelete]
        );
        assert_eq!(c.snapshot().get("n1").unwrap().requested.milli_cpu, 0);
        // Assume then forget.
        let q = pod("q", &[]);
        c.assume(&q, "n1");
        assert!(c.forget("default/q"));
        assert!(c.snapshot().get("n1").unwrap().pods.is_empty());
        // A pod on an unknown node waits for it.
        c.upsert_pod(Arc::new(on(pod("r", &[]), "n2")));
        assert!(c.snapshot().get("n2").is_none());
        c.upsert_node(Arc::new(node("n2", &[])));
        assert_eq!(c.snapshot().get("n2").unwrap().pods.len(), 1);
        c.remove_node("n2");
        c.upsert_node(Arc::new(node("n2", &[])));
        assert_eq!(c.snapshot().get("n2").unwrap().pods.len(), 1);
        assert_eq!(
            c.remove_pod(&on(pod("r", &[]), "n2")),
            [ClusterEvent::AssignedPodDelete]
        );
        assert!(c.snapshot().get("n2").unwrap().pods.is_empty());
    }

    /// What a node holds, in order: each pod (name, which version), its class, the host
    /// ports, the affinity pods, the sums.
    fn held(ni: &crate::snapshot::NodeInfo) -> String {
        let pods: Vec<_> = ni
            .pods
            .iter()
            .map(|p| (pod_name(p).to_string(), Arc::as_ptr(p), p.metadata.clone()))
            .collect();
        let classes: Vec<_> = ni.classes.iter().map(|c| c.id).collect();
        let affinity: Vec<_> = ni
            .affinity
            .iter()
            .map(|(p, t)| (Arc::as_ptr(p), t.id))
            .collect();
        format!(
            "{pods:?} {classes:?} {:?} {affinity:?} {:?} {:?}",
            ni.used_ports, ni.requested, ni.non_zero_requested
        )
    }

    /// Confirming an assumed pod (and a status update of a bound one) leaves the node exactly
    /// as removing the old version and adding the new one would (upstream's updatePod): the
    /// same pod order, classes, ports, affinity list and sums.
    #[test]
    fn confirming_a_pod_orders_the_node_as_remove_then_add() {
        let with = |name: &str, port: i32, anti: bool| {
            let mut p = pod(name, &[("app", name)]);
            spec(&mut p).containers = vec![container(&[("cpu", "100m"), ("memory", "1Gi")])];
            if port > 0 {
                spec(&mut p).containers[0].ports = vec![v1::ContainerPort {
                    host_port: port,
                    container_port: port,
                    protocol: "TCP".into(),
                    ..Default::default()
                }];
            }
            if anti {
                affinity(&mut p).pod_anti_affinity = Some(v1::PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: vec![pod_term(
                        &[("app", name)],
                        "kubernetes.io/hostname",
                    )],
                    ..Default::default()
                });
            }
            p
        };
        let mut c = SchedulerCache::new();
        c.upsert_node(Arc::new(node("n1", &[])));
        for (name, port, anti) in [("a", 80, true), ("b", 0, false), ("c", 81, true)] {
            c.upsert_pod(Arc::new(on(with(name, port, anti), "n1")));
        }
        // x is assumed, then y: x is not the node's last pod when it is confirmed.
        let x = with("x", 8080, true);
        c.assume(&x, "n1");
        c.assume(&with("y", 0, true), "n1");
        let confirm = |c: &mut SchedulerCache, new: v1::Pod, events: &[ClusterEvent]| {
            let new = Arc::new(new);
            let mut reference = c.snapshot().clone();
            let i = reference.index_of("n1").unwrap();
            assert!(reference.remove_pod_at(i, "default", pod_name(&new)));
            assert!(reference.add_pod(Arc::clone(&new)));
            assert_eq!(c.upsert_pod(Arc::clone(&new)), events);
            assert_eq!(
                held(c.snapshot().get("n1").unwrap()),
                held(reference.get("n1").unwrap())
            );
        };
        let mut bound = on(x.clone(), "n1");
        bound.metadata.as_mut().unwrap().resource_version = "7".into();
        confirm(&mut c, bound.clone(), &[ClusterEvent::AssignedPodAdd]);
        assert!(!c.is_assumed("default/x"));
        // A status update of a bound pod in the middle of the list.
        let mut b = on(with("b", 0, false), "n1");
        b.status = Some(v1::PodStatus {
            phase: "Running".into(),
            ..Default::default()
        });
        confirm(&mut c, b, &[]);
        // And of one with ports and affinity.
        bound.status = Some(v1::PodStatus {
            phase: "Running".into(),
            ..Default::default()
        });
        confirm(&mut c, bound, &[]);
        assert_eq!(c.snapshot().get("n1").unwrap().pods.len(), 5);
        assert_eq!(c.snapshot().get("n1").unwrap().requested.milli_cpu, 500);
    }

    #[test]
    fn affinity_pod_count_follows_assume_confirm_forget_and_node_removal() {
        let mut c = SchedulerCache::new();
        c.upsert_node(Arc::new(node("n1", &[])));
        assert!(!c.snapshot().may_have_affinity_pods());
        c.assume(&pod("plain", &[]), "n1");
        assert!(!c.snapshot().may_have_affinity_pods());
        let mut a = pod("a", &[]);
        spec(&mut a).affinity = Some(v1::Affinity {
            pod_anti_affinity: Some(v1::PodAntiAffinity::default()),
            ..Default::default()
        });
        c.assume(&a, "n1");
        assert!(c.snapshot().may_have_affinity_pods());
        assert!(c.forget("default/a"));
        assert!(!c.snapshot().may_have_affinity_pods());
        // Confirmed, then its node goes away and comes back.
        c.upsert_pod(Arc::new(on(a.clone(), "n1")));
        assert!(c.snapshot().may_have_affinity_pods());
        c.remove_node("n1");
        assert!(!c.snapshot().may_have_affinity_pods());
        c.upsert_node(Arc::new(node("n1", &[])));
        assert!(c.snapshot().may_have_affinity_pods());
        c.remove_pod(&on(a, "n1"));
        assert!(!c.snapshot().may_have_affinity_pods());
    }

    #[test]
    fn node_updates_name_what_changed() {
        let mut c = SchedulerCache::new();
        c.upsert_node(Arc::new(node("n", &[])));
        assert!(c.upsert_node(Arc::new(node("n", &[]))).is_empty());
        assert_eq!(
            c.upsert_node(Arc::new(node("n", &[("a", "1")]))),
            [ClusterEvent::NodeLabel]
        );
        let tainted = with_taints(node("n", &[("a", "1")]), vec![taint("k", "", "NoSchedule")]);
        assert_eq!(c.upsert_node(Arc::new(tainted)), [ClusterEvent::NodeTaint]);
    }
}
