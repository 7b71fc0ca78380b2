//! ReplicaSet controller logic, after Kubernetes' `pkg/controller/replicaset` and the pod
//! helpers in `pkg/controller/controller_utils.go` / `pkg/api/v1/pod`.
//!
//! - [`replica_diff`]: how many pods to create or delete in one sync (capped at
//!   [`BURST_REPLICAS`], Kubernetes' `burstReplicas`).
//! - [`slow_start_batches`]: the batch sizes pods are created in (1, 2, 4, …), so a template that
//!   cannot create pods fails fast instead of hammering the API with hundreds of requests.
//! - [`rank_for_deletion`] / [`replica_set_pods_to_delete`]: which pods go first when scaling
//!   down, upstream's `ActivePodsWithRanks` ordering rule by rule (see [`deletion`]).
//! - [`is_pod_active`], [`is_pod_ready`], [`is_pod_available`] and [`replica_set_status`].
//!
use std::borrow::Borrow;
use std::cmp::Ordering;

use coxswain_api::v1::{Pod, ReplicaSet, ReplicaSetStatus};

use crate::time::parse_rfc3339;

pub mod deletion;
pub use deletion::{
    active_pods_on_node, now_nanos, pods_to_delete, rank_for_deletion, replica_set_pods_to_delete,
};

/// At most this many pods are created or deleted per sync (Kubernetes' `burstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// The annotation a user sets to make a pod cheaper (lower) or dearer (higher) to delete.
pub const POD_DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Batch sizes for creating `n` pods (capped at [`BURST_REPLICAS`]): 1, 2, 4, 8, … with the last
/// batch holding the remainder. The caller creates a batch concurrently and stops at the first
/// batch with a failure (Kubernetes' `slowStartBatch` with an initial batch size of 1).
pub fn slow_start_batches(n: usize) -> Vec<usize> {
    let mut remaining = n.min(BURST_REPLICAS);
    let mut batch = 1usize;
    let mut out = Vec::new();
    while remaining > 0 {
        let b = batch.min(remaining);
        out.push(b);
        remaining -= b;
        batch = b * 2;
    }
    out
}

/// What one sync of a ReplicaSet does to its pod count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaDiff {
    InSync,
    Create(usize),
    Delete(usize),
}

/// Compare the desired replicas with the active pods the ReplicaSet owns; the result is capped
/// at [`BURST_REPLICAS`] per sync.
pub fn replica_diff(desired: i32, active: usize) -> ReplicaDiff {
    let desired = desired.max(0) as usize;
    match desired.cmp(&active) {
        Ordering::Equal => ReplicaDiff::InSync,
        Ordering::Greater => ReplicaDiff::Create((desired - active).min(BURST_REPLICAS)),
        Ordering::Less => ReplicaDiff::Delete((active - desired).min(BURST_REPLICAS)),
    }
}

pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().map_or("", |s| s.phase.as_str())
}

fn is_deleting(pod: &Pod) -> bool {
    pod.metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty())
}

/// A pod counts toward replicas while it is not Succeeded, not Failed and not being deleted
/// (Kubernetes' `IsPodActive`).
pub fn is_pod_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_deleting(pod)
}

/// The pod's Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

fn ready_condition(pod: &Pod) -> Option<&coxswain_api::v1::Condition> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
}

/// When the pod last became Ready (the Ready condition's lastTransitionTime), if it is Ready and
/// the time is known.
pub fn ready_since(pod: &Pod) -> Option<i64> {
    let c = ready_condition(pod)?;
    if c.status != "True" {
        return None;
    }
    parse_rfc3339(&c.last_transition_time)
}

/// Ready for more than `min_ready_seconds` at `now` (Kubernetes' `IsPodAvailable`). With
/// `min_ready_seconds == 0` a Ready pod is available at once; a Ready pod with an unknown
/// transition time is available only then.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: i64) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod).is_some_and(|t| t + i64::from(min_ready_seconds) < now)
}

/// The ReplicaSet's status from the pods it owns (Kubernetes' `calculateStatus`). `pods` are the
/// owned pods; inactive ones are skipped here. fullyLabeledReplicas counts pods carrying every
/// label of the template; conditions are kept from the current status.
pub fn replica_set_status<P: Borrow<Pod>>(
    rs: &ReplicaSet,
    pods: &[P],
    now: i64,
) -> ReplicaSetStatus {
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .map(|m| &m.labels);
    let min_ready = rs.spec.as_ref().map_or(0, |s| s.min_ready_seconds);
    let mut st = ReplicaSetStatus {
        observed_generation: rs.metadata.as_ref().map_or(0, |m| m.generation),
        conditions: rs
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    for pod in pods.iter().map(Borrow::borrow).filter(|p| is_pod_active(p)) {
        st.replicas += 1;
        let labels = pod.metadata.as_ref().map(|m| &m.labels);
        let fully = template_labels.is_none_or(|want| {
            want.iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        });
        if fully {
            st.fully_labeled_replicas += 1;
        }
        if is_pod_ready(pod) {
            st.ready_replicas += 1;
            if is_pod_available(pod, min_ready, now) {
                st.available_replicas += 1;
            }
        }
    }
    st
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::time::format_rfc3339;
    use coxswain_api::v1::{
        Condition, ContainerStatus, ObjectMeta, PodSpec, PodStatus, PodTemplateSpec, ReplicaSetSpec,
    };

    /// A test pod: name, phase, node, ready-since (None = not ready), restarts, created.
    pub(crate) fn pod(
        name: &str,
        phase: &str,
        node: &str,
        ready_at: Option<i64>,
        restarts: i32,
        created: i64,
    ) -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                creation_timestamp: format_rfc3339(created),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                node_name: node.into(),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: phase.into(),
                conditions: vec![Condition {
                    r#type: "Ready".into(),
                    status: if ready_at.is_some() { "True" } else { "False" }.into(),
                    last_transition_time: ready_at.map(format_rfc3339).unwrap_or_default(),
                    ..Default::default()
                }],
                container_statuses: vec![ContainerStatus {
                    name: "c".into(),
                    restart_count: restarts,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn slow_start() {
        let cases: &[(usize, &[usize])] = &[
            (0, &[]),
            (1, &[1]),
            (3, &[1, 2]),
            (5, &[1, 2, 2]),
            (10, &[1, 2, 4, 3]),
            (16, &[1, 2, 4, 8, 1]),
            (1000, &[1, 2, 4, 8, 16, 32, 64, 128, 245]),
        ];
        for (n, want) in cases {
            let got = slow_start_batches(*n);
            assert_eq!(got, *want, "n={n}");
            assert_eq!(got.iter().sum::<usize>(), (*n).min(BURST_REPLICAS));
        }
    }

    #[test]
    fn diffs() {
        let cases = [
            (3, 3, ReplicaDiff::InSync),
            (6, 3, ReplicaDiff::Create(3)),
            (2, 6, ReplicaDiff::Delete(4)),
            (0, 0, ReplicaDiff::InSync),
            (1000, 0, ReplicaDiff::Create(500)),
            (0, 700, ReplicaDiff::Delete(500)),
        ];
        for (desired, active, want) in cases {
            assert_eq!(replica_diff(desired, active), want, "{desired} vs {active}");
        }
    }

    #[test]
    fn activity_and_availability() {
        let mut deleting = pod("d", "Running", "n", Some(0), 0, 0);
        deleting.metadata.as_mut().unwrap().deletion_timestamp = format_rfc3339(5);
        let cases = [
            (
                pod("a", "Running", "n", Some(100), 0, 0),
                true,
                true,
                0,
                100,
                true,
            ),
            (
                pod("b", "Running", "n", Some(100), 0, 0),
                true,
                true,
                10,
                105,
                false,
            ),
            (
                pod("c", "Running", "n", Some(100), 0, 0),
                true,
                true,
                10,
                110,
                false,
            ),
            (
                pod("c2", "Running", "n", Some(100), 0, 0),
                true,
                true,
                10,
                111,
                true,
            ),
            (
                pod("e", "Running", "n", None, 0, 0),
                true,
                false,
                0,
                100,
                false,
            ),
            (
                pod("f", "Pending", "", None, 0, 0),
                true,
                false,
                0,
                100,
                false,
            ),
            (
                pod("g", "Succeeded", "n", None, 0, 0),
                false,
                false,
                0,
                100,
                false,
            ),
            (
                pod("h", "Failed", "n", None, 0, 0),
                false,
                false,
                0,
                100,
                false,
            ),
            (deleting, false, true, 0, 100, true),
        ];
        for (p, active, ready, min_ready, now, available) in cases {
            let n = &p.metadata.as_ref().unwrap().name;
            assert_eq!(is_pod_active(&p), active, "{n} active");
            assert_eq!(is_pod_ready(&p), ready, "{n} ready");
            assert_eq!(
                is_pod_available(&p, min_ready, now),
                available,
                "{n} available"
            );
        }
    }

    #[test]
    fn status() {
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("app".to_string(), "nginx".to_string());
        let rs = ReplicaSet {
            metadata: Some(ObjectMeta {
                generation: 4,
                ..Default::default()
            }),
            spec: Some(ReplicaSetSpec {
                replicas: Some(3),
                min_ready_seconds: 10,
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: labels.clone(),
                        ..Default::default()
                    }),
                    spec: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let labelled = |p: Pod| {
            let mut p = p;
            p.metadata.as_mut().unwrap().labels = labels.clone();
            p
        };
        let pods = vec![
            labelled(pod("a", "Running", "n", Some(0), 0, 0)),
            labelled(pod("b", "Running", "n", Some(91), 0, 0)),
            labelled(pod("c", "Pending", "", None, 0, 0)),
            pod("d", "Running", "n", Some(0), 0, 0),
            labelled(pod("e", "Succeeded", "n", None, 0, 0)),
        ];
        let st = replica_set_status(&rs, &pods, 100);
        assert_eq!(
            (
                st.replicas,
                st.fully_labeled_replicas,
                st.ready_replicas,
                st.available_replicas,
                st.observed_generation
            ),
            (4, 3, 3, 2, 4)
        );
    }
}
