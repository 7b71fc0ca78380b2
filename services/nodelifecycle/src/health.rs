//! The node monitor's pure logic, as Kubernetes' node lifecycle controller has it
//! (`tryUpdateNodeHealth`, `doNoScheduleTaintingPass`, `doNoExecuteTaintingPass`):
//!
//! - [`HealthTracker`] remembers, per node, when the controller last *saw* a heartbeat change
//!   (a newer Lease renewTime or a new Ready lastHeartbeatTime). Timing is by the controller's
//!   own clock (tokio `Instant`), never by the agent's timestamps, so clock skew does not matter
//!   and a restarted controller gives every node a fresh grace period.
//! - [`unknown_conditions`]: what the node's conditions become when its heartbeat is overdue.
//! - [`reconcile_taints`]: the node's taints with the controller-managed ones (from conditions
//!   and spec.unschedulable) brought up to date.
//!
//! Nothing here does I/O.
use std::collections::HashMap;
use std::time::Duration;

use coxswain_api::v1::{Condition, Node, Taint};
use tokio::time::Instant;

use crate::taints::{
    same_taint, taint, NO_EXECUTE, NO_SCHEDULE, TAINT_DISK_PRESSURE, TAINT_MEMORY_PRESSURE,
    TAINT_NETWORK_UNAVAILABLE, TAINT_NOT_READY, TAINT_PID_PRESSURE, TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
};

/// The conditions the controller turns Unknown when a node stops posting status
/// (NetworkUnavailable is left alone, as upstream does).
pub const MONITORED_CONDITIONS: &[&str] =
    &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
pub const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
pub const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";

/// The grace periods of the monitor.
#[derive(Debug, Clone, Copy)]
pub struct Graces {
    /// No heartbeat for this long → the node's conditions become Unknown.
    pub monitor: Duration,
    /// The same for a node that never posted a Ready condition.
    pub startup: Duration,
}

#[derive(Debug, Clone)]
struct Seen {
    probe: Instant,
    ready_heartbeat: Option<String>,
    lease_renew: Option<String>,
}

/// Per-node heartbeat observations.
#[derive(Debug, Default)]
pub struct HealthTracker {
    nodes: HashMap<String, Seen>,
}

/// A node's Ready condition, if any.
pub fn condition<'a>(node: &'a Node, ty: &str) -> Option<&'a Condition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == ty))
}

/// The status of the node's Ready condition: "True", "False", "Unknown", or "" when absent.
pub fn ready_status(node: &Node) -> &str {
    condition(node, "Ready").map_or("", |c| c.status.as_str())
}

fn node_name(node: &Node) -> &str {
    node.metadata.as_ref().map_or("", |m| m.name.as_str())
}

impl HealthTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record what the node and its Lease (`lease_renew`: the Lease's renewTime) show at `now`;
    /// true when the node's heartbeat is overdue (nothing new seen for its grace period).
    pub fn observe(
        &mut self,
        node: &Node,
        lease_renew: Option<&str>,
        now: Instant,
        graces: Graces,
    ) -> bool {
        let ready = condition(node, "Ready");
        let grace = if ready.is_some() {
            graces.monitor
        } else {
            graces.startup
        };
        let heartbeat = ready.map(|c| c.last_heartbeat_time.clone());
        let lease_renew = lease_renew.filter(|s| !s.is_empty()).map(str::to_string);
        let seen = self
            .nodes
            .entry(node_name(node).to_string())
            .or_insert_with(|| Seen {
                probe: now,
                ready_heartbeat: heartbeat.clone(),
                lease_renew: lease_renew.clone(),
            });
        if seen.ready_heartbeat != heartbeat {
            seen.ready_heartbeat = heartbeat;
            seen.probe = now;
        }
        if lease_renew.is_some() && seen.lease_renew != lease_renew {
            seen.lease_renew = lease_renew;
            seen.probe = now;
        }
        now > seen.probe + grace
    }

    /// Every node's heartbeat counts as seen `now` (upstream does this when leaving full
    /// disruption, so nodes are not evicted the moment the control plane is back).
    pub fn reset_probes(&mut self, now: Instant) {
        for s in self.nodes.values_mut() {
            s.probe = now;
        }
    }

    /// Forget a deleted node.
    pub fn forget(&mut self, name: &str) {
        self.nodes.remove(name);
    }

    /// Names of the nodes tracked.
    pub fn names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// How many nodes are tracked.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// The node's conditions after its heartbeat went overdue: Ready, MemoryPressure, DiskPressure
/// and PIDPressure become Unknown ("NodeStatusUnknown", "Kubelet stopped posting node
/// status."); missing ones are added as Unknown ("NodeStatusNeverUpdated"). `None` when the
/// Ready condition is already Unknown (nothing to write, as upstream compares Ready only).
pub fn unknown_conditions(node: &Node, now_rfc3339: &str) -> Option<Vec<Condition>> {
    let mut conditions: Vec<Condition> = node
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let before = conditions.iter().find(|c| c.r#type == "Ready").cloned();
    let created = node
        .metadata
        .as_ref()
        .map(|m| m.creation_timestamp.clone())
        .unwrap_or_default();
    for ty in MONITORED_CONDITIONS {
        match conditions.iter_mut().find(|c| c.r#type == *ty) {
            Some(c) => {
                if c.status != "Unknown" {
                    c.status = "Unknown".into();
                    c.reason = REASON_UNKNOWN.into();
                    c.message = MESSAGE_UNKNOWN.into();
                    c.last_transition_time = now_rfc3339.into();
                }
            }
            None => conditions.push(Condition {
                r#type: (*ty).into(),
                status: "Unknown".into(),
                reason: REASON_NEVER_UPDATED.into(),
                message: MESSAGE_NEVER_UPDATED.into(),
                last_heartbeat_time: created.clone(),
                last_transition_time: now_rfc3339.into(),
                ..Default::default()
            }),
        }
    }
    let after = conditions.iter().find(|c| c.r#type == "Ready");
    if before.as_ref() == after {
        return None;
    }
    Some(conditions)
}

/// The controller-managed taints a node should carry. `no_execute` is false in full
/// disruption (every node not Ready), when upstream stops NoExecute tainting.
pub fn wanted_taints(node: &Node, no_execute: bool) -> Vec<Taint> {
    let mut want = Vec::new();
    match ready_status(node) {
        "False" => {
            want.push(taint(TAINT_NOT_READY, NO_SCHEDULE));
            if no_execute {
                want.push(taint(TAINT_NOT_READY, NO_EXECUTE));
            }
        }
        "Unknown" => {
            want.push(taint(TAINT_UNREACHABLE, NO_SCHEDULE));
            if no_execute {
                want.push(taint(TAINT_UNREACHABLE, NO_EXECUTE));
            }
        }
        _ => {}
    }
    for (ty, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if condition(node, ty).is_some_and(|c| c.status == "True") {
            want.push(taint(key, NO_SCHEDULE));
        }
    }
    if node.spec.as_ref().is_some_and(|s| s.unschedulable) {
        want.push(taint(TAINT_UNSCHEDULABLE, NO_SCHEDULE));
    }
    want
}

fn managed(t: &Taint) -> bool {
    matches!(
        (t.key.as_str(), t.effect.as_str()),
        (
            TAINT_NOT_READY | TAINT_UNREACHABLE,
            NO_SCHEDULE | NO_EXECUTE
        ) | (
            TAINT_MEMORY_PRESSURE
                | TAINT_DISK_PRESSURE
                | TAINT_PID_PRESSURE
                | TAINT_NETWORK_UNAVAILABLE
                | TAINT_UNSCHEDULABLE,
            NO_SCHEDULE
        )
    )
}

/// The node's taints with the managed ones reconciled against `want`: other taints are kept
/// as they are, in order; managed taints no longer wanted are removed; wanted ones missing are
/// appended with `timeAdded = now`. `None` when nothing changes.
pub fn reconcile_taints(
    current: &[Taint],
    want: &[Taint],
    now_rfc3339: &str,
) -> Option<Vec<Taint>> {
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || want.iter().any(|w| same_taint(w, t)))
        .cloned()
        .collect();
    let mut changed = out.len() != current.len();
    for w in want {
        if !out.iter().any(|t| same_taint(t, w)) {
            let mut t = w.clone();
            t.time_added = now_rfc3339.into();
            out.push(t);
            changed = true;
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{NodeSpec, NodeStatus, ObjectMeta};

    const GRACES: Graces = Graces {
        monitor: Duration::from_secs(40),
        startup: Duration::from_secs(60),
    };

    fn node(ready: Option<(&str, &str)>) -> Node {
        Node {
            metadata: Some(ObjectMeta {
                name: "node1".into(),
                creation_timestamp: "2026-01-01T00:00:00Z".into(),
                ..Default::default()
            }),
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: ready
                    .map(|(status, hb)| {
                        vec![Condition {
                            r#type: "Ready".into(),
                            status: status.into(),
                            reason: "KubeletReady".into(),
                            last_heartbeat_time: hb.into(),
                            last_transition_time: "2026-01-01T00:00:01Z".into(),
                            ..Default::default()
                        }]
                    })
                    .unwrap_or_default(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_goes_overdue_after_the_grace_period_without_heartbeats() {
        let mut h = HealthTracker::new();
        let n = node(Some(("True", "2026-01-01T00:00:10Z")));
        assert!(!h.observe(&n, Some("2026-01-01T00:00:10Z"), Instant::now(), GRACES));
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(!h.observe(&n, Some("2026-01-01T00:00:10Z"), Instant::now(), GRACES));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(h.observe(&n, Some("2026-01-01T00:00:10Z"), Instant::now(), GRACES));
    }

    #[tokio::test(start_paused = true)]
    async fn lease_renewals_alone_keep_a_node_healthy() {
        let mut h = HealthTracker::new();
        let n = node(Some(("True", "2026-01-01T00:00:10Z")));
        for i in 0..10 {
            tokio::time::advance(Duration::from_secs(30)).await;
            let renew = format!("2026-01-01T00:{:02}:00Z", i + 1);
            assert!(!h.observe(&n, Some(&renew), Instant::now(), GRACES));
        }
        // Renewals stop: overdue 40 s after the last one was seen.
        tokio::time::advance(Duration::from_secs(41)).await;
        assert!(h.observe(&n, Some("2026-01-01T00:10:00Z"), Instant::now(), GRACES));
        // A status heartbeat (new lastHeartbeatTime) brings it back.
        let n2 = node(Some(("True", "2026-01-01T00:11:00Z")));
        assert!(!h.observe(&n2, Some("2026-01-01T00:10:00Z"), Instant::now(), GRACES));
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_that_never_posted_status_gets_the_startup_grace() {
        let mut h = HealthTracker::new();
        let n = node(None);
        assert!(!h.observe(&n, None, Instant::now(), GRACES));
        tokio::time::advance(Duration::from_secs(45)).await;
        assert!(!h.observe(&n, None, Instant::now(), GRACES));
        tokio::time::advance(Duration::from_secs(16)).await;
        assert!(h.observe(&n, None, Instant::now(), GRACES));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_controller_gives_every_node_a_fresh_grace() {
        // First observation counts as a heartbeat, whatever the timestamps say.
        let mut h = HealthTracker::new();
        let n = node(Some(("True", "2000-01-01T00:00:00Z")));
        assert!(!h.observe(&n, Some("2000-01-01T00:00:00Z"), Instant::now(), GRACES));
        h.forget("node1");
        assert!(h.is_empty());
    }

    #[test]
    fn overdue_conditions_become_unknown() {
        let n = node(Some(("True", "2026-01-01T00:00:10Z")));
        let c = unknown_conditions(&n, "2026-01-01T00:01:00Z").expect("changed");
        let ready = c.iter().find(|c| c.r#type == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason, "NodeStatusUnknown");
        assert_eq!(ready.message, "Kubelet stopped posting node status.");
        assert_eq!(ready.last_transition_time, "2026-01-01T00:01:00Z");
        assert_eq!(ready.last_heartbeat_time, "2026-01-01T00:00:10Z");
        for ty in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let x = c.iter().find(|c| c.r#type == ty).unwrap();
            assert_eq!(x.status, "Unknown");
            assert_eq!(x.reason, "NodeStatusNeverUpdated");
            assert_eq!(x.message, "Kubelet never posted node status.");
        }
        // Already Unknown: nothing to write.
        let mut n2 = n.clone();
        n2.status.as_mut().unwrap().conditions = c;
        assert_eq!(unknown_conditions(&n2, "2026-01-01T00:02:00Z"), None);
    }

    #[test]
    fn taints_follow_the_ready_condition() {
        let now = "2026-01-01T00:01:00Z";
        let unknown = node(Some(("Unknown", "x")));
        let want = wanted_taints(&unknown, true);
        let t = reconcile_taints(&[], &want, now).expect("changed");
        assert_eq!(t.len(), 2);
        assert!(t
            .iter()
            .all(|t| t.key == TAINT_UNREACHABLE && t.time_added == now));
        assert!(t.iter().any(|t| t.effect == NO_EXECUTE));
        // Stable once present (timeAdded kept).
        assert_eq!(reconcile_taints(&t, &want, "2026-01-01T00:05:00Z"), None);

        // Not ready: unreachable swapped for not-ready.
        let not_ready = node(Some(("False", "x")));
        let t2 = reconcile_taints(&t, &wanted_taints(&not_ready, true), now).unwrap();
        assert!(t2.iter().all(|t| t.key == TAINT_NOT_READY));
        assert_eq!(t2.len(), 2);

        // Ready again: lifted, user taints kept.
        let mut with_user = t2.clone();
        with_user.insert(0, taint("tag", NO_EXECUTE));
        let ready = node(Some(("True", "x")));
        let t3 = reconcile_taints(&with_user, &wanted_taints(&ready, true), now).unwrap();
        assert_eq!(t3, vec![taint("tag", NO_EXECUTE)]);
    }

    #[test]
    fn full_disruption_stops_no_execute_tainting() {
        let unknown = node(Some(("Unknown", "x")));
        let want = wanted_taints(&unknown, false);
        assert_eq!(want, vec![taint(TAINT_UNREACHABLE, NO_SCHEDULE)]);
    }

    #[test]
    fn cordoned_and_pressured_nodes_get_no_schedule_taints() {
        let mut n = node(Some(("True", "x")));
        n.spec.as_mut().unwrap().unschedulable = true;
        n.status.as_mut().unwrap().conditions.push(Condition {
            r#type: "MemoryPressure".into(),
            status: "True".into(),
            ..Default::default()
        });
        let want = wanted_taints(&n, true);
        assert_eq!(
            want,
            vec![
                taint(TAINT_MEMORY_PRESSURE, NO_SCHEDULE),
                taint(TAINT_UNSCHEDULABLE, NO_SCHEDULE)
            ]
        );
        // Uncordoned: the unschedulable taint goes.
        let current = reconcile_taints(&[], &want, "t").unwrap();
        n.spec.as_mut().unwrap().unschedulable = false;
        let after = reconcile_taints(&current, &wanted_taints(&n, true), "t").unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].key, TAINT_MEMORY_PRESSURE);
    }
}
