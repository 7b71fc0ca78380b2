//! Taints and tolerations, as Kubernetes matches them: the node-lifecycle taint keys, taint
//! identity (key + effect), toleration matching, and the NoExecute eviction decision of the
//! taint-eviction controller. Pure functions; the caller supplies the clock.
use coxswain_api::v1::{Pod, Taint, Toleration};

pub const NO_EXECUTE: &str = "NoExecute";
pub const NO_SCHEDULE: &str = "NoSchedule";

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// A taint with no value and no timeAdded.
pub fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        value: String::new(),
        effect: effect.into(),
        time_added: String::new(),
    }
}

/// Two taints are the same taint when key and effect match (`Taint.MatchTaint`).
pub fn same_taint(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect
}

/// Does the toleration match the taint (`Toleration.ToleratesTaint`)? An empty effect matches
/// every effect, an empty key every key; `Exists` any value, `Equal` (or empty) an equal one.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if !t.effect.is_empty() && t.effect != taint.effect {
        return false;
    }
    if !t.key.is_empty() && t.key != taint.key {
        return false;
    }
    match t.operator.as_str() {
        "" | "Equal" => t.value == taint.value,
        "Exists" => true,
        _ => false,
    }
}

/// What the taint-eviction controller does with a pod on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// No NoExecute taint, or every one tolerated forever: the pod stays.
    Keep,
    /// Some NoExecute taint is not tolerated (or a toleration's seconds are ≤ 0): delete now.
    Now,
    /// Every NoExecute taint is tolerated, the shortest for a limited time: delete at this
    /// instant (seconds since the epoch) unless the taints change first.
    At(i64),
}

/// The eviction decision for `pod` under the node's `taints`, as the taint-eviction controller
/// makes it (`processPodOnNode`): each NoExecute taint is matched by the first toleration that
/// tolerates it (`GetMatchingTolerations`); an untolerated one evicts at once; otherwise the
/// pod may stay `tolerationSeconds` after the taint was added, and the earliest such deadline
/// wins. A taint's start is its `timeAdded`, but never before `bound_at` (when the pod landed
/// on the node, so a pod scheduled onto an old taint gets its full time); a taint without a
/// parseable `timeAdded` starts at `first_seen` (when the controller first saw the pod under
/// it).
pub fn decide(pod: &Pod, taints: &[Taint], bound_at: i64, first_seen: i64) -> Eviction {
    let tolerations: &[Toleration] = pod.spec.as_ref().map_or(&[], |s| &s.tolerations);
    let mut deadline: Option<i64> = None;
    for t in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let Some(tol) = tolerations.iter().find(|tol| tolerates(tol, t)) else {
            return Eviction::Now;
        };
        let Some(secs) = tol.toleration_seconds else {
            continue; // tolerated forever
        };
        if secs <= 0 {
            return Eviction::Now;
        }
        let start = coxswain_api::time::parse_rfc3339(&t.time_added)
            .map(|added| added.max(bound_at))
            .unwrap_or(first_seen);
        let at = start + i64::from(secs);
        deadline = Some(deadline.map_or(at, |d| d.min(at)));
    }
    match deadline {
        Some(at) => Eviction::At(at),
        None => Eviction::Keep,
    }
}

/// The NoExecute taints of a list.
pub fn no_execute(taints: &[Taint]) -> Vec<Taint> {
    taints
        .iter()
        .filter(|t| t.effect == NO_EXECUTE)
        .cloned()
        .collect()
}

/// When the pod landed on its node: the PodScheduled condition's transition, else its creation.
pub fn bound_at(pod: &Pod) -> i64 {
    let scheduled = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == "PodScheduled"))
        .and_then(|c| coxswain_api::time::parse_rfc3339(&c.last_transition_time));
    let created = pod
        .metadata
        .as_ref()
        .and_then(|m| coxswain_api::time::parse_rfc3339(&m.creation_timestamp));
    scheduled.or(created).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::time::format_rfc3339;
    use coxswain_api::v1::{PodSpec, Taint, Toleration};

    fn tol(key: &str, op: &str, value: &str, effect: &str, secs: Option<i32>) -> Toleration {
        Toleration {
            key: key.into(),
            operator: op.into(),
            value: value.into(),
            effect: effect.into(),
            toleration_seconds: secs,
        }
    }

    fn t(key: &str, value: &str, effect: &str, added: Option<i64>) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
            time_added: added.map(format_rfc3339).unwrap_or_default(),
        }
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn toleration_matching_follows_kubernetes() {
        let taint = t("tag", "mayikt", NO_EXECUTE, None);
        assert!(tolerates(
            &tol("tag", "Equal", "mayikt", NO_EXECUTE, None),
            &taint
        ));
        assert!(tolerates(&tol("tag", "", "mayikt", "", None), &taint));
        assert!(tolerates(&tol("tag", "Exists", "", "", None), &taint));
        assert!(tolerates(&tol("", "Exists", "", "", None), &taint));
        assert!(!tolerates(
            &tol("tag", "Equal", "other", NO_EXECUTE, None),
            &taint
        ));
        assert!(!tolerates(
            &tol("tag", "Equal", "mayikt", NO_SCHEDULE, None),
            &taint
        ));
        assert!(!tolerates(&tol("other", "Exists", "", "", None), &taint));
        assert!(!tolerates(&tol("tag", "Bogus", "mayikt", "", None), &taint));
    }

    #[test]
    fn no_no_execute_taints_keeps_the_pod() {
        let p = pod(vec![]);
        assert_eq!(decide(&p, &[], 0, 0), Eviction::Keep);
        let taints = [t("tag", "mayikt", NO_SCHEDULE, None)];
        assert_eq!(decide(&p, &taints, 0, 0), Eviction::Keep);
    }

    #[test]
    fn a_non_tolerating_pod_is_evicted_at_once() {
        let taints = [t("tag", "mayikt", NO_EXECUTE, Some(1000))];
        assert_eq!(decide(&pod(vec![]), &taints, 0, 1000), Eviction::Now);
        // Tolerating one NoExecute taint is not enough when another is untolerated.
        let taints = [
            t("tag", "mayikt", NO_EXECUTE, Some(1000)),
            t(TAINT_UNREACHABLE, "", NO_EXECUTE, Some(1000)),
        ];
        let p = pod(vec![tol("tag", "Equal", "mayikt", NO_EXECUTE, None)]);
        assert_eq!(decide(&p, &taints, 0, 1000), Eviction::Now);
    }

    #[test]
    fn tolerating_forever_keeps_the_pod() {
        let taints = [t("tag", "mayikt", NO_EXECUTE, Some(1000))];
        let p = pod(vec![tol("tag", "Equal", "mayikt", NO_EXECUTE, None)]);
        assert_eq!(decide(&p, &taints, 0, 1000), Eviction::Keep);
    }

    #[test]
    fn toleration_seconds_count_from_the_taints_time_added() {
        let taints = [t(TAINT_UNREACHABLE, "", NO_EXECUTE, Some(1000))];
        let p = pod(vec![tol(
            TAINT_UNREACHABLE,
            "Exists",
            "",
            NO_EXECUTE,
            Some(300),
        )]);
        assert_eq!(decide(&p, &taints, 0, 5000), Eviction::At(1300));
        // A pod bound after the taint was added gets its full time from binding.
        assert_eq!(decide(&p, &taints, 2000, 5000), Eviction::At(2300));
        // Without timeAdded, from when the controller first saw it.
        let taints = [t(TAINT_UNREACHABLE, "", NO_EXECUTE, None)];
        assert_eq!(decide(&p, &taints, 0, 5000), Eviction::At(5300));
    }

    #[test]
    fn the_shortest_toleration_wins() {
        let taints = [
            t(TAINT_UNREACHABLE, "", NO_EXECUTE, Some(1000)),
            t(TAINT_NOT_READY, "", NO_EXECUTE, Some(1100)),
        ];
        let p = pod(vec![
            tol(TAINT_NOT_READY, "Exists", "", NO_EXECUTE, Some(30)),
            tol(TAINT_UNREACHABLE, "Exists", "", NO_EXECUTE, Some(300)),
        ]);
        assert_eq!(decide(&p, &taints, 0, 0), Eviction::At(1130));
        // One limited, one forever: the limited one decides.
        let p = pod(vec![
            tol(TAINT_NOT_READY, "Exists", "", NO_EXECUTE, None),
            tol(TAINT_UNREACHABLE, "Exists", "", NO_EXECUTE, Some(300)),
        ]);
        assert_eq!(decide(&p, &taints, 0, 0), Eviction::At(1300));
    }

    #[test]
    fn the_first_matching_toleration_is_the_one_used() {
        // As GetMatchingTolerations: per taint, the first toleration that tolerates it counts.
        let taints = [t(TAINT_UNREACHABLE, "", NO_EXECUTE, Some(1000))];
        let p = pod(vec![
            tol("", "Exists", "", "", None),
            tol(TAINT_UNREACHABLE, "Exists", "", NO_EXECUTE, Some(5)),
        ]);
        assert_eq!(decide(&p, &taints, 0, 0), Eviction::Keep);
    }

    #[test]
    fn zero_or_negative_seconds_evict_at_once() {
        let taints = [t(TAINT_UNREACHABLE, "", NO_EXECUTE, Some(1000))];
        for secs in [0, -5] {
            let p = pod(vec![tol(
                TAINT_UNREACHABLE,
                "Exists",
                "",
                NO_EXECUTE,
                Some(secs),
            )]);
            assert_eq!(decide(&p, &taints, 0, 0), Eviction::Now);
        }
    }
}
