//! Pod garbage collection, as kube-controller-manager's `podgc` controller does it, every
//! `--pod-gc-period`:
//!
//! - orphaned pods: bound to a node that does not exist for `--pod-gc-quarantine` (checked
//!   with a live read) → marked Failed with condition DisruptionTarget ("DeletionByPodGC",
//!   "PodGC: node no longer exists") and deleted at once — so the Unknown pods of a node that
//!   is deleted for good (`coxctl delete node`) go away;
//! - terminating pods on a not-Ready node tainted `node.kubernetes.io/out-of-service`
//!   (non-graceful node shutdown) → marked Failed and deleted at once;
//! - terminating pods never scheduled → deleted at once;
//! - terminated pods (Succeeded/Failed) beyond `--terminated-pod-gc-threshold` (0: never) →
//!   the oldest deleted, evicted ones first.
//!
//! [`plan`] is pure; [`run`] is the loop.
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1::{Condition, Node, Pod};
use coxswain_api::Resource;
use coxswain_client::{Cache, Client, DeleteParams};
use tokio::time::Instant;

use crate::health::ready_status;

pub const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// The pod GC's settings.
#[derive(Debug, Clone, Copy)]
pub struct GcConfig {
    /// How often the collector runs (upstream: 20 s).
    pub period: Duration,
    /// How long a pod's node must be missing before the pod is collected (upstream: 40 s).
    pub quarantine: Duration,
    /// Terminated pods kept; 0 disables that collection (upstream default 12500).
    pub terminated_threshold: usize,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            period: Duration::from_secs(20),
            quarantine: Duration::from_secs(40),
            terminated_threshold: 12500,
        }
    }
}

/// Why a pod is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Terminated,
    TerminatingOutOfService,
    Orphaned,
    TerminatingUnscheduled,
}

/// What one pass collects: (pod, reason), and the missing nodes seen (for the quarantine).
#[derive(Debug, Default)]
pub struct Plan {
    pub collect: Vec<(Arc<Pod>, Reason)>,
    pub missing_nodes: HashSet<String>,
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map_or("", |s| s.phase.as_str())
}

fn terminated(p: &Pod) -> bool {
    !matches!(phase(p), "Pending" | "Running" | "Unknown" | "")
}

fn terminating(p: &Pod) -> bool {
    !p.metadata().deletion_timestamp.is_empty()
}

fn node_of(p: &Pod) -> &str {
    p.spec.as_ref().map_or("", |s| s.node_name.as_str())
}

fn evicted(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| s.reason == "Evicted")
}

/// Evicted first, then oldest, then by name (`byEvictionAndCreationTimestamp`).
fn gc_order(a: &Arc<Pod>, b: &Arc<Pod>) -> Ordering {
    evicted(b)
        .cmp(&evicted(a))
        .then_with(|| {
            let ca = coxswain_api::time::parse_rfc3339(&a.metadata().creation_timestamp);
            let cb = coxswain_api::time::parse_rfc3339(&b.metadata().creation_timestamp);
            ca.cmp(&cb)
        })
        .then_with(|| a.metadata().name.cmp(&b.metadata().name))
}

/// One pass's decisions. `gone_nodes`: nodes whose quarantine has run out and that a live read
/// confirmed missing.
pub fn plan(
    pods: &[Arc<Pod>],
    nodes: &HashMap<String, Arc<Node>>,
    gone_nodes: &HashSet<String>,
    terminated_threshold: usize,
) -> Plan {
    let mut out = Plan::default();
    let mut taken: HashSet<(String, String)> = HashSet::new();
    let key = |p: &Pod| (p.metadata().namespace.clone(), p.metadata().name.clone());
    if terminated_threshold > 0 {
        let mut done: Vec<Arc<Pod>> = pods.iter().filter(|p| terminated(p)).cloned().collect();
        if done.len() > terminated_threshold {
            done.sort_by(gc_order);
            let n = done.len() - terminated_threshold;
            for p in done.into_iter().take(n) {
                taken.insert(key(&p));
                out.collect.push((p, Reason::Terminated));
            }
        }
    }
    for p in pods.iter().filter(|p| terminating(p)) {
        let Some(node) = nodes.get(node_of(p)) else {
            continue;
        };
        let out_of_service = node
            .spec
            .as_ref()
            .is_some_and(|s| s.taints.iter().any(|t| t.key == TAINT_OUT_OF_SERVICE));
        if ready_status(node) != "True" && out_of_service && taken.insert(key(p)) {
            out.collect
                .push((p.clone(), Reason::TerminatingOutOfService));
        }
    }
    for p in pods {
        let n = node_of(p);
        if n.is_empty() || nodes.contains_key(n) {
            continue;
        }
        out.missing_nodes.insert(n.to_string());
        if gone_nodes.contains(n) && taken.insert(key(p)) {
            out.collect.push((p.clone(), Reason::Orphaned));
        }
    }
    for p in pods {
        if terminating(p) && node_of(p).is_empty() && taken.insert(key(p)) {
            out.collect
                .push((p.clone(), Reason::TerminatingUnscheduled));
        }
    }
    out
}

/// The pod marked Failed (with `condition`) before a forced deletion; None when it is
/// terminated already (`markFailedAndDeletePodWithCondition`).
pub fn marked_failed(pod: &Pod, condition: Option<Condition>) -> Option<Pod> {
    if matches!(phase(pod), "Succeeded" | "Failed") {
        return None;
    }
    let mut p = pod.clone();
    let st = p.status.get_or_insert_with(Default::default);
    st.phase = "Failed".into();
    if let Some(c) = condition {
        st.conditions.retain(|x| x.r#type != c.r#type);
        st.conditions.push(c);
    }
    Some(p)
}

/// The collector loop.
pub async fn run(client: Client, pods: Cache<Pod>, nodes: Cache<Node>, config: GcConfig) {
    pods.wait_synced().await;
    nodes.wait_synced().await;
    let mut first_missing: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(config.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let all_pods = pods.list();
        let all_nodes: HashMap<String, Arc<Node>> = nodes
            .list()
            .into_iter()
            .map(|n| (n.metadata().name.clone(), n))
            .collect();
        // Nodes missing for the whole quarantine, confirmed by a live read.
        let mut gone = HashSet::new();
        for (name, since) in &first_missing {
            if now.duration_since(*since) >= config.quarantine
                && matches!(client.get::<Node>("", name).await, Ok(None))
            {
                gone.insert(name.clone());
            }
        }
        let p = plan(&all_pods, &all_nodes, &gone, config.terminated_threshold);
        first_missing.retain(|n, _| p.missing_nodes.contains(n));
        for n in &p.missing_nodes {
            first_missing.entry(n.clone()).or_insert(now);
        }
        for (pod, reason) in p.collect {
            let condition = (reason == Reason::Orphaned).then(|| Condition {
                r#type: "DisruptionTarget".into(),
                status: "True".into(),
                reason: "DeletionByPodGC".into(),
                message: "PodGC: node no longer exists".into(),
                last_transition_time: coxswain_api::time::now_rfc3339(),
                ..Default::default()
            });
            let m = pod.metadata();
            if let Some(failed) = marked_failed(&pod, condition) {
                if let Err(e) = client.update_status(&failed).await {
                    if !e.is_not_found() {
                        tracing::debug!(pod = %m.name, error = %e, "pod GC: marking failed");
                    }
                    continue;
                }
            }
            let dp = DeleteParams {
                precondition_uid: Some(m.uid.clone()),
                ..DeleteParams::now()
            };
            match client.delete::<Pod>(&m.namespace, &m.name, &dp).await {
                Ok(()) => {
                    tracing::info!(pod = %format!("{}/{}", m.namespace, m.name), ?reason, "PodGC force deleted pod")
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => tracing::debug!(pod = %m.name, error = %e, "pod GC: delete"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{NodeSpec, NodeStatus, ObjectMeta, PodSpec, PodStatus, Taint};

    fn pod(name: &str, node: &str, phase: &str, created: &str, deleting: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                creation_timestamp: created.into(),
                deletion_timestamp: if deleting {
                    "2026-01-01T00:00:00Z".into()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
            spec: Some(PodSpec {
                node_name: node.into(),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn node(name: &str, ready: &str, taints: &[&str]) -> (String, Arc<Node>) {
        (
            name.into(),
            Arc::new(Node {
                metadata: Some(ObjectMeta {
                    name: name.into(),
                    ..Default::default()
                }),
                spec: Some(NodeSpec {
                    taints: taints
                        .iter()
                        .map(|k| Taint {
                            key: (*k).into(),
                            effect: "NoExecute".into(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }),
                status: Some(NodeStatus {
                    conditions: vec![Condition {
                        r#type: "Ready".into(),
                        status: ready.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        )
    }

    fn names(p: &Plan) -> Vec<(String, Reason)> {
        p.collect
            .iter()
            .map(|(p, r)| (p.metadata().name.clone(), *r))
            .collect()
    }

    #[test]
    fn orphaned_pods_go_only_after_their_node_is_confirmed_gone() {
        let nodes: HashMap<_, _> = [node("node1", "True", &[])].into();
        let pods = vec![
            pod("a", "node1", "Running", "2026-01-01T00:00:00Z", false),
            pod("b", "node9", "Running", "2026-01-01T00:00:00Z", true),
        ];
        let p = plan(&pods, &nodes, &HashSet::new(), 0);
        assert!(p.collect.is_empty());
        assert_eq!(p.missing_nodes, ["node9".to_string()].into());
        let p = plan(&pods, &nodes, &["node9".to_string()].into(), 0);
        assert_eq!(names(&p), vec![("b".into(), Reason::Orphaned)]);
    }

    #[test]
    fn terminating_pods_on_out_of_service_nodes_go() {
        let nodes: HashMap<_, _> = [
            node("down", "Unknown", &[TAINT_OUT_OF_SERVICE]),
            node("up", "True", &[TAINT_OUT_OF_SERVICE]),
            node("lost", "Unknown", &[]),
        ]
        .into();
        let pods = vec![
            pod("a", "down", "Running", "t", true),
            pod("b", "up", "Running", "t", true),
            pod("c", "lost", "Running", "t", true),
            pod("d", "down", "Running", "t", false),
            pod("e", "", "Pending", "t", true),
        ];
        let p = plan(&pods, &nodes, &HashSet::new(), 0);
        assert_eq!(
            names(&p),
            vec![
                ("a".into(), Reason::TerminatingOutOfService),
                ("e".into(), Reason::TerminatingUnscheduled)
            ]
        );
    }

    #[test]
    fn terminated_pods_beyond_the_threshold_go_oldest_and_evicted_first() {
        let nodes: HashMap<_, _> = [node("n", "True", &[])].into();
        let mut evicted = (*pod("z-evicted", "n", "Failed", "2026-01-03T00:00:00Z", false)).clone();
        evicted.status.as_mut().unwrap().reason = "Evicted".into();
        let pods = vec![
            pod("new", "n", "Succeeded", "2026-01-02T00:00:00Z", false),
            pod("old", "n", "Failed", "2026-01-01T00:00:00Z", false),
            Arc::new(evicted),
            pod("running", "n", "Running", "2025-01-01T00:00:00Z", false),
        ];
        let p = plan(&pods, &nodes, &HashSet::new(), 1);
        assert_eq!(
            names(&p),
            vec![
                ("z-evicted".into(), Reason::Terminated),
                ("old".into(), Reason::Terminated)
            ]
        );
        assert!(plan(&pods, &nodes, &HashSet::new(), 0).collect.is_empty());
    }

    #[test]
    fn collected_pods_are_marked_failed_first() {
        let p = pod("a", "n", "Running", "t", false);
        let f = marked_failed(
            &p,
            Some(Condition {
                r#type: "DisruptionTarget".into(),
                status: "True".into(),
                ..Default::default()
            }),
        )
        .unwrap();
        let st = f.status.as_ref().unwrap();
        assert_eq!(st.phase, "Failed");
        assert_eq!(st.conditions.len(), 1);
        assert!(marked_failed(&pod("b", "n", "Succeeded", "t", false), None).is_none());
    }
}
