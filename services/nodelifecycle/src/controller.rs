//! The loops around the pure logic: informers over nodes, node Leases (namespace
//! `kube-node-lease`) and pods (indexed by spec.nodeName); the node monitor (every
//! `monitor_period`); and the taint-eviction worker, driven by a work queue of pod keys.
//!
//! The monitor owns node conditions (Unknown on a missed heartbeat), the controller-managed
//! taints, and pods' Ready=False on not-ready nodes. The eviction worker owns deleting pods
//! whose node has NoExecute taints they do not tolerate (or no longer tolerate). Neither
//! moves anything back when a node returns: evicted pods were deleted gracefully and the
//! node's agent finishes them.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::time::now_rfc3339;
use coxswain_api::v1::{Condition, Lease, Node, Pod};
use coxswain_api::Resource;
use coxswain_client::{
    object_key, Cache, Client, DeleteParams, Event, Informer, ObjectRef, RateLimit, Recorder,
    SharedInformers, WorkQueue,
};
use tokio::time::Instant;

use crate::disruption::{zone_key, Rates, Zones};
use crate::health::{
    ready_status, reconcile_taints, unknown_conditions, wanted_taints, Graces, HealthTracker,
};
use crate::podgc::GcConfig;
use crate::taints::{
    bound_at, decide, no_execute, Eviction, NO_EXECUTE, TAINT_NOT_READY, TAINT_UNREACHABLE,
};

/// The namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The pod index by node name.
pub const NODE_INDEX: &str = "node";

/// Every period and grace, as flags set them.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often the monitor looks at every node (`--node-monitor-period`, 5s).
    pub monitor_period: Duration,
    /// No heartbeat for this long → Unknown (`--node-monitor-grace-period`, 40s).
    pub monitor_grace: Duration,
    /// The same for a node that never posted status (`--node-startup-grace-period`, 60s).
    pub startup_grace: Duration,
    /// Retry back-off of failed evictions.
    pub retry: RateLimit,
    /// NoExecute tainting rates per zone state.
    pub rates: Rates,
    /// The pod garbage collector.
    pub gc: GcConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            monitor_period: Duration::from_secs(5),
            monitor_grace: Duration::from_secs(40),
            startup_grace: Duration::from_secs(60),
            retry: RateLimit {
                base: Duration::from_millis(5),
                max: Duration::from_secs(30),
            },
            rates: Rates::default(),
            gc: GcConfig::default(),
        }
    }
}

/// The running controller's caches (for waiting until synced).
pub struct Handle {
    pub nodes: Cache<Node>,
    pub leases: Cache<Lease>,
    pub pods: Cache<Pod>,
}

impl Handle {
    pub async fn wait_synced(&self) {
        self.nodes.wait_synced().await;
        self.leases.wait_synced().await;
        self.pods.wait_synced().await;
    }
}

fn name_of<R: coxswain_api::Resource>(r: &R) -> (&str, &str) {
    let m = r.metadata();
    (m.namespace.as_str(), m.name.as_str())
}

fn pod_node(p: &Pod) -> &str {
    p.spec.as_ref().map_or("", |s| s.node_name.as_str())
}

fn node_taints(n: &Node) -> &[coxswain_api::v1::Taint] {
    n.spec.as_ref().map_or(&[], |s| &s.taints)
}

/// Start the informers, the monitor and the eviction worker (returns at once). The pod
/// informer joins `informers` (in `coxswain up` the process's one pod informer): the caller
/// starts the factory once every component has registered.
pub fn start(client: Client, config: Config, informers: &SharedInformers) -> Handle {
    let evict_queue: WorkQueue<String> = WorkQueue::named(config.retry, "node_lifecycle_eviction");
    let node_queue: WorkQueue<String> = WorkQueue::named(config.retry, "node_lifecycle_controller");

    let nq = node_queue.clone();
    let nodes = Informer::<Node>::new(client.clone())
        .on_event(move |ev: &Event<Node>| match ev {
            Event::Added(n) => nq.add(n.metadata().name.clone()),
            Event::Modified { old, new } => {
                if node_taints(old) != node_taints(new) || ready_status(old) != ready_status(new) {
                    nq.add(new.metadata().name.clone());
                }
            }
            Event::Deleted(_) | Event::Synced => {}
        })
        .start();
    let leases = Informer::<Lease>::new(client.clone())
        .namespace(LEASE_NAMESPACE)
        .start();
    let eq = evict_queue.clone();
    let pods = informers
        .informer::<Pod>()
        .index(NODE_INDEX, |p: &Pod| {
            let n = pod_node(p);
            if n.is_empty() {
                vec![]
            } else {
                vec![n.to_string()]
            }
        })
        .on_event(move |ev: &Event<Pod>| {
            if let Event::Added(p) | Event::Modified { new: p, .. } = ev {
                if !pod_node(p).is_empty() {
                    let (ns, name) = name_of(p.as_ref());
                    eq.add(object_key(ns, name));
                }
            }
        })
        .start();

    let recorder = Recorder::new(client.clone(), "node-controller", "");
    let handle = Handle {
        nodes: nodes.clone(),
        leases: leases.clone(),
        pods: pods.clone(),
    };

    // A node's taints changed: look at every pod on it.
    {
        let (nodes_q, pods, evict_queue) = (node_queue.clone(), pods.clone(), evict_queue.clone());
        tokio::spawn(async move {
            while let Some(name) = nodes_q.next().await {
                for p in pods.by_index(NODE_INDEX, &name) {
                    let (ns, n) = name_of(p.as_ref());
                    evict_queue.add(object_key(ns, n));
                }
                nodes_q.done(&name);
            }
        });
    }

    let monitor = Monitor {
        client: client.clone(),
        nodes: nodes.clone(),
        leases,
        pods: pods.clone(),
        recorder: recorder.clone(),
        graces: Graces {
            monitor: config.monitor_grace,
            startup: config.startup_grace,
        },
        tracker: HealthTracker::new(),
        marked: HashMap::new(),
        zones: Zones::new(),
        rates: config.rates,
    };
    tokio::spawn(monitor.run(config.monitor_period, handle_synced(&handle)));

    tokio::spawn(crate::podgc::run(
        client.clone(),
        pods.clone(),
        nodes.clone(),
        config.gc,
    ));

    let evictor = Arc::new(Evictor {
        client,
        nodes,
        pods,
        recorder,
        queue: evict_queue,
        state: Mutex::new(EvictState::default()),
    });
    tokio::spawn(evictor.run());
    handle
}

fn handle_synced(h: &Handle) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (n, l, p) = (h.nodes.clone(), h.leases.clone(), h.pods.clone());
    async move {
        n.wait_synced().await;
        l.wait_synced().await;
        p.wait_synced().await;
    }
}

// === node monitor ===

struct Monitor {
    client: Client,
    nodes: Cache<Node>,
    leases: Cache<Lease>,
    pods: Cache<Pod>,
    recorder: Recorder,
    graces: Graces,
    tracker: HealthTracker,
    /// Per not-ready node, the uids of the pods already marked not ready in this episode:
    /// as upstream, a pod is marked once (on the node's transition, or when it lands on the
    /// node), so an agent that is alive but NotReady is not fought every period.
    marked: HashMap<String, HashSet<String>>,
    /// Zone states and the per-zone NoExecute tainting rate.
    zones: Zones,
    rates: Rates,
}

impl Monitor {
    async fn run(mut self, period: Duration, synced: impl std::future::Future<Output = ()>) {
        synced.await;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.pass().await;
        }
    }

    /// One monitor pass over every node (`monitorNodeHealth`).
    async fn pass(&mut self) {
        let now = Instant::now();
        let now_rfc = now_rfc3339();
        let mut current: Vec<Node> = Vec::new();
        let mut names = HashSet::new();
        for node in self.nodes.list() {
            let name = node.metadata().name.clone();
            names.insert(name.clone());
            let lease = self.leases.get(LEASE_NAMESPACE, &name);
            let renew = lease
                .as_ref()
                .and_then(|l| l.spec.as_ref())
                .map(|s| s.renew_time.as_str());
            let overdue = self.tracker.observe(&node, renew, now, self.graces);
            let mut node = (*node).clone();
            if overdue {
                if let Some(conditions) = unknown_conditions(&node, &now_rfc) {
                    let mut updated = node.clone();
                    updated
                        .status
                        .get_or_insert_with(Default::default)
                        .conditions = conditions;
                    match self.client.update_status(&updated).await {
                        Ok(n) => {
                            tracing::info!(node = %name, "node stopped posting status: Ready=Unknown");
                            self.recorder.normal(
                                &ObjectRef::from(&n),
                                "NodeNotReady",
                                format!("Node {name} status is now: NodeNotReady"),
                            );
                            node = n;
                        }
                        Err(e) => {
                            tracing::debug!(node = %name, error = %e, "marking node Unknown; retrying next pass");
                        }
                    }
                }
            }
            current.push(node);
        }
        self.tracker_retain(&names);
        self.marked.retain(|n, _| names.contains(n));

        let disruption = self.zones.update(
            current.iter().map(|n| (zone_key(n), ready_status(n))),
            &self.rates,
            now,
        );
        if disruption.exited_full_disruption {
            tracing::info!("some nodes are Ready again: leaving full-disruption mode");
            self.tracker.reset_probes(now);
        }
        for node in &current {
            let no_execute = !disruption.all_fully_disrupted;
            self.reconcile_node_taints(node, no_execute, now, &now_rfc)
                .await;
            let ready = ready_status(node);
            let name = &node.metadata().name;
            if !ready.is_empty() && ready != "True" {
                let mut done = self.marked.remove(name).unwrap_or_default();
                self.mark_pods_not_ready(node, &now_rfc, &mut done).await;
                self.marked.insert(name.clone(), done);
            } else {
                self.marked.remove(name);
            }
        }
    }

    fn tracker_retain(&mut self, names: &HashSet<String>) {
        for n in self.tracker.names() {
            if !names.contains(&n) {
                self.tracker.forget(&n);
            }
        }
    }

    /// Bring the controller-managed taints up to date; on a conflict, re-read and retry. A new
    /// not-ready/unreachable NoExecute taint takes a token of the node's zone (swapping one
    /// for the other does not); without one it waits for a later pass.
    async fn reconcile_node_taints(
        &mut self,
        node: &Node,
        no_execute: bool,
        now: Instant,
        now_rfc: &str,
    ) {
        let mut node = node.clone();
        let mut token: Option<bool> = None;
        for _ in 0..3 {
            let mut want = wanted_taints(&node, no_execute);
            let has_lifecycle_no_execute = node_taints(&node).iter().any(|t| {
                t.effect == NO_EXECUTE && (t.key == TAINT_UNREACHABLE || t.key == TAINT_NOT_READY)
            });
            if !has_lifecycle_no_execute && want.iter().any(|t| t.effect == NO_EXECUTE) {
                let ok = *token.get_or_insert_with(|| self.zones.try_taint(&zone_key(&node), now));
                if !ok {
                    want.retain(|t| t.effect != NO_EXECUTE);
                }
            }
            let Some(taints) = reconcile_taints(node_taints(&node), &want, now_rfc) else {
                return;
            };
            let mut updated = node.clone();
            updated.spec.get_or_insert_with(Default::default).taints = taints;
            match self.client.update(&updated).await {
                Ok(_) => {
                    tracing::info!(node = %node.metadata().name, "node taints updated");
                    if token == Some(true) {
                        // A new NoExecute taint: kube-controller-manager counts it as an eviction.
                        metrics::counter!("node_collector_evictions_total", "zone" => zone_key(&node))
                            .increment(1);
                    }
                    return;
                }
                Err(e) if e.is_conflict() => {
                    match self.client.get::<Node>("", &node.metadata().name).await {
                        Ok(Some(fresh)) => node = fresh,
                        _ => return,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "updating node taints; retrying next pass");
                    return;
                }
            }
        }
    }

    /// `MarkPodsNotReady`: the Ready condition of every pod on the node not yet in `done`
    /// becomes False.
    async fn mark_pods_not_ready(&self, node: &Node, now_rfc: &str, done: &mut HashSet<String>) {
        let name = &node.metadata().name;
        for pod in self.pods.by_index(NODE_INDEX, name) {
            let uid = &pod.metadata().uid;
            if pod_node(&pod) != name.as_str() || done.contains(uid) {
                continue;
            }
            let Some(updated) = pod_marked_not_ready(&pod, now_rfc) else {
                done.insert(uid.clone());
                continue;
            };
            match self.client.update_status(&updated).await {
                Ok(p) => {
                    done.insert(uid.clone());
                    self.recorder
                        .warning(&ObjectRef::from(&p), "NodeNotReady", "Node is not ready")
                }
                Err(e) => tracing::debug!(error = %e, "marking pod not ready; retrying next pass"),
            }
        }
    }
}

/// The pod with its Ready condition set to False, or None when it has no Ready condition or
/// it is False already (upstream changes only an existing Ready condition).
pub fn pod_marked_not_ready(pod: &Pod, now_rfc: &str) -> Option<Pod> {
    let mut p = pod.clone();
    let c: &mut Condition = p
        .status
        .as_mut()?
        .conditions
        .iter_mut()
        .find(|c| c.r#type == "Ready")?;
    if c.status == "False" {
        return None;
    }
    c.status = "False".into();
    c.last_transition_time = now_rfc.into();
    Some(p)
}

// === taint eviction ===

#[derive(Default)]
struct EvictState {
    /// When the worker first saw each pod under a timed NoExecute taint (for taints without
    /// timeAdded).
    first_seen: HashMap<String, i64>,
    /// Pods with an eviction scheduled for later (for the "Cancelling deletion" event).
    scheduled: HashSet<String>,
}

struct Evictor {
    client: Client,
    nodes: Cache<Node>,
    pods: Cache<Pod>,
    recorder: Recorder,
    queue: WorkQueue<String>,
    state: Mutex<EvictState>,
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Evictor {
    async fn run(self: Arc<Self>) {
        self.nodes.wait_synced().await;
        self.pods.wait_synced().await;
        while let Some(key) = self.queue.next().await {
            let me = self.clone();
            // Deletes run concurrently; the queue never hands out one key twice at once.
            tokio::spawn(async move {
                match me.reconcile(&key).await {
                    Ok(()) => me.queue.forget(&key),
                    Err(e) => {
                        tracing::debug!(pod = %key, error = %e, "eviction failed; retrying");
                        me.queue.add_rate_limited(key.clone());
                    }
                }
                me.queue.done(&key);
            });
        }
    }

    fn cancel(&self, key: &str, pod: &Pod) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.first_seen.remove(key);
        if st.scheduled.remove(key) {
            self.recorder.normal(
                &ObjectRef::from(pod),
                "TaintManagerEviction",
                format!("Cancelling deletion of Pod {key}"),
            );
        }
    }

    /// `processPodOnNode`.
    async fn reconcile(&self, key: &str) -> coxswain_client::Result<()> {
        let Some(pod) = self.pods.get_key(key) else {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.first_seen.remove(key);
            st.scheduled.remove(key);
            return Ok(());
        };
        let meta = pod.metadata();
        if !meta.deletion_timestamp.is_empty() || pod_node(&pod).is_empty() {
            return Ok(());
        }
        let Some(node) = self.nodes.get("", pod_node(&pod)) else {
            return Ok(());
        };
        let taints = no_execute(node_taints(&node));
        if taints.is_empty() {
            self.cancel(key, &pod);
            return Ok(());
        }
        let now_ms = now_millis();
        let first_seen = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            *st.first_seen
                .entry(key.to_string())
                .or_insert(now_ms.div_euclid(1000))
        };
        match decide(&pod, &taints, bound_at(&pod), first_seen) {
            Eviction::Keep => {
                self.cancel(key, &pod);
                Ok(())
            }
            Eviction::Now => self.evict(key, &pod, &node).await,
            Eviction::At(at) => {
                let wait = at * 1000 - now_ms;
                if wait <= 0 {
                    return self.evict(key, &pod, &node).await;
                }
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .scheduled
                    .insert(key.to_string());
                self.queue
                    .add_after(key.to_string(), Duration::from_millis(wait as u64));
                Ok(())
            }
        }
    }

    /// Mark the pod (DisruptionTarget; NodeLost when its node is not Ready) and delete it
    /// gracefully.
    async fn evict(&self, key: &str, pod: &Pod, node: &Node) -> coxswain_client::Result<()> {
        let (ns, name) = name_of(pod);
        let node_name = &node.metadata().name;
        let marked = pod_marked_for_eviction(pod, node_name, ready_status(node) != "True");
        if let Some(p) = marked {
            match self.client.update_status(&p).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.recorder.normal(
            &ObjectRef::from(pod),
            "TaintManagerEviction",
            format!("Marking for deletion Pod {key}"),
        );
        let dp = DeleteParams {
            precondition_uid: Some(pod.metadata().uid.clone()),
            ..Default::default()
        };
        match self.client.delete::<Pod>(ns, name, &dp).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        tracing::info!(pod = %key, node = %node_name, "evicted by NoExecute taint");
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.first_seen.remove(key);
        st.scheduled.remove(key);
        Ok(())
    }
}

/// The pod's status before a taint eviction: condition DisruptionTarget=True
/// ("DeletionByTaintManager"), and when its node is not Ready, reason NodeLost with upstream's
/// message (so `get pods` shows STATUS Unknown while the deletion waits for the node, as
/// kubectl prints it). None when nothing changes.
pub fn pod_marked_for_eviction(pod: &Pod, node: &str, node_lost: bool) -> Option<Pod> {
    let mut p = pod.clone();
    let status = p.status.get_or_insert_with(Default::default);
    let mut changed = false;
    if !status
        .conditions
        .iter()
        .any(|c| c.r#type == "DisruptionTarget" && c.status == "True")
    {
        status.conditions.retain(|c| c.r#type != "DisruptionTarget");
        status.conditions.push(Condition {
            r#type: "DisruptionTarget".into(),
            status: "True".into(),
            reason: "DeletionByTaintManager".into(),
            message: "Taint manager: deleting due to NoExecute taint".into(),
            last_transition_time: now_rfc3339(),
            ..Default::default()
        });
        changed = true;
    }
    if node_lost && status.reason != "NodeLost" {
        status.reason = "NodeLost".into();
        status.message = format!(
            "Node {node} which was running pod {} is unresponsive",
            pod.metadata().name
        );
        changed = true;
    }
    changed.then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{ObjectMeta, PodStatus};

    fn pod(ready: Option<&str>) -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: "Running".into(),
                conditions: ready
                    .map(|s| {
                        vec![Condition {
                            r#type: "Ready".into(),
                            status: s.into(),
                            ..Default::default()
                        }]
                    })
                    .unwrap_or_default(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pods_on_a_not_ready_node_are_marked_not_ready() {
        let p = pod_marked_not_ready(&pod(Some("True")), "t").expect("changed");
        let c = &p.status.as_ref().unwrap().conditions[0];
        assert_eq!(
            (c.status.as_str(), c.last_transition_time.as_str()),
            ("False", "t")
        );
        assert!(pod_marked_not_ready(&pod(Some("False")), "t").is_none());
        assert!(pod_marked_not_ready(&pod(None), "t").is_none());
    }

    #[test]
    fn evicted_pods_get_disruption_target_and_node_lost() {
        let p = pod_marked_for_eviction(&pod(None), "node2", true).expect("changed");
        let s = p.status.as_ref().unwrap();
        assert_eq!(s.reason, "NodeLost");
        assert_eq!(
            s.message,
            "Node node2 which was running pod web is unresponsive"
        );
        assert!(s
            .conditions
            .iter()
            .any(|c| c.r#type == "DisruptionTarget" && c.reason == "DeletionByTaintManager"));
        assert!(pod_marked_for_eviction(&p, "node2", true).is_none());
        // A user's NoExecute taint on a Ready node: no NodeLost.
        let p = pod_marked_for_eviction(&pod(None), "node1", false).unwrap();
        assert_eq!(p.status.as_ref().unwrap().reason, "");
    }
}
