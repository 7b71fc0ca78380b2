//! The pod row, computed as kubectl's `printPod`.
use serde_json::Value;

use crate::age;
use crate::jv::{arr, at, b, i, opt_b, s};

/// READY, STATUS and RESTARTS of a pod, as kubectl computes them.
#[derive(Debug, PartialEq, Eq)]
pub struct PodSummary {
    pub ready: String,
    pub status: String,
    pub restarts: String,
}

fn is_restartable_init(pod: &Value, name: &str) -> bool {
    arr(pod, "spec.initContainers")
        .iter()
        .any(|c| s(c, "name") == name && s(c, "restartPolicy") == "Always")
}

fn later(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn last_terminated(cs: &Value) -> Option<i64> {
    age::parse_rfc3339(&s(cs, "lastState.terminated.finishedAt"))
}

fn has_condition_true(pod: &Value, ty: &str) -> bool {
    arr(pod, "status.conditions")
        .iter()
        .any(|c| s(c, "type") == ty && s(c, "status") == "True")
}

pub fn summarize(pod: &Value, now: i64) -> PodSummary {
    let init_specs = arr(pod, "spec.initContainers");
    let mut total = arr(pod, "spec.containers").len();
    total += init_specs
        .iter()
        .filter(|c| s(c, "restartPolicy") == "Always")
        .count();
    let mut ready = 0;
    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut last_restart: Option<i64> = None;
    let mut last_restartable_init_restart: Option<i64> = None;

    let phase = s(pod, "status.phase").into_owned();
    let mut reason = phase.clone();
    let status_reason = s(pod, "status.reason").into_owned();
    if !status_reason.is_empty() {
        reason = status_reason.clone();
    }
    for c in arr(pod, "status.conditions") {
        if s(c, "type") == "PodScheduled" && s(c, "reason") == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }

    let mut initializing = false;
    for (idx, cs) in arr(pod, "status.initContainerStatuses").iter().enumerate() {
        let name = s(cs, "name");
        let restartable = is_restartable_init(pod, &name);
        restarts += i(cs, "restartCount");
        last_restart = later(last_restart, last_terminated(cs));
        if restartable {
            restartable_init_restarts += i(cs, "restartCount");
            last_restartable_init_restart =
                later(last_restartable_init_restart, last_terminated(cs));
        }
        let terminated = at(cs, "state.terminated");
        let waiting_reason = s(cs, "state.waiting.reason");
        if !terminated.is_null() && i(terminated, "exitCode") == 0 {
            continue;
        }
        if restartable && opt_b(cs, "started") == Some(true) {
            if b(cs, "ready") {
                ready += 1;
            }
            continue;
        }
        if !terminated.is_null() {
            let r = s(terminated, "reason");
            reason = if r.is_empty() {
                if i(terminated, "signal") != 0 {
                    format!("Init:Signal:{}", i(terminated, "signal"))
                } else {
                    format!("Init:ExitCode:{}", i(terminated, "exitCode"))
                }
            } else {
                format!("Init:{r}")
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{idx}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || has_condition_true(pod, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for cs in arr(pod, "status.containerStatuses").iter().rev() {
            restarts += i(cs, "restartCount");
            last_restart = later(last_restart, last_terminated(cs));
            let waiting_reason = s(cs, "state.waiting.reason");
            let terminated = at(cs, "state.terminated");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.into_owned();
            } else if !terminated.is_null() && !s(terminated, "reason").is_empty() {
                reason = s(terminated, "reason").into_owned();
            } else if !terminated.is_null() {
                reason = if i(terminated, "signal") != 0 {
                    format!("Signal:{}", i(terminated, "signal"))
                } else {
                    format!("ExitCode:{}", i(terminated, "exitCode"))
                };
            } else if b(cs, "ready") && !at(cs, "state.running").is_null() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition_true(pod, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = !s(pod, "metadata.deletionTimestamp").is_empty();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }
    if reason.is_empty() {
        reason = "Pending".into();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", age::human_duration(now - t)),
        _ => restarts.to_string(),
    };
    PodSummary {
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts: restarts_str,
    }
}

pub const COLUMNS: &[&str] = &["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
pub const WIDE: &[&str] = &["IP", "NODE", "NOMINATED NODE", "READINESS GATES"];

pub fn row(pod: &Value, now: i64, wide: bool) -> Vec<String> {
    let sum = summarize(pod, now);
    let mut row = vec![
        s(pod, "metadata.name").into_owned(),
        sum.ready,
        sum.status,
        sum.restarts,
        age::since(&s(pod, "metadata.creationTimestamp"), now),
    ];
    if wide {
        let mut ip = arr(pod, "status.podIPs")
            .first()
            .map(|p| s(p, "ip").into_owned())
            .unwrap_or_default();
        if ip.is_empty() {
            ip = s(pod, "status.podIP").into_owned();
        }
        let gates = arr(pod, "spec.readinessGates");
        let gates_str = if gates.is_empty() {
            "<none>".to_string()
        } else {
            let t = gates
                .iter()
                .filter(|g| {
                    let ty = s(g, "conditionType");
                    arr(pod, "status.conditions")
                        .iter()
                        .find(|c| s(c, "type") == ty)
                        .is_some_and(|c| s(c, "status") == "True")
                })
                .count();
            format!("{t}/{}", gates.len())
        };
        row.push(crate::jv::or_none(ip));
        row.push(crate::jv::or_none(s(pod, "spec.nodeName")));
        row.push(crate::jv::or_none(s(pod, "status.nominatedNodeName")));
        row.push(gates_str);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_704_164_645 + 3600; // 2024-01-02T04:04:05Z

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2024-01-02T03:04:05Z"},
            "spec": spec, "status": status
        })
    }

    fn one_container() -> Value {
        json!({"containers": [{"name": "c", "image": "nginx"}]})
    }

    #[test]
    fn running_and_ready() {
        let p = pod(
            one_container(),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "c", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-01-02T03:04:06Z"}}}
            ]}),
        );
        let s = summarize(&p, NOW);
        assert_eq!(
            s,
            PodSummary {
                ready: "1/1".into(),
                status: "Running".into(),
                restarts: "0".into()
            }
        );
        let r = row(&p, NOW, true);
        assert_eq!(
            r,
            vec!["p", "1/1", "Running", "0", "60m", "<none>", "<none>", "<none>", "<none>"]
        );
    }

    #[test]
    fn pending_without_status() {
        let p = pod(one_container(), json!({"phase": "Pending"}));
        assert_eq!(summarize(&p, NOW).status, "Pending");
        assert_eq!(summarize(&p, NOW).ready, "0/1");
        let p = pod(one_container(), json!({}));
        assert_eq!(summarize(&p, NOW).status, "Pending");
    }

    #[test]
    fn waiting_reasons_show() {
        for reason in [
            "ContainerCreating",
            "CrashLoopBackOff",
            "ImagePullBackOff",
            "ErrImagePull",
        ] {
            let p = pod(
                one_container(),
                json!({"phase": "Pending", "containerStatuses": [
                    {"name": "c", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}}
                ]}),
            );
            assert_eq!(summarize(&p, NOW).status, reason);
        }
    }

    #[test]
    fn terminated_reasons_show() {
        let p = pod(
            one_container(),
            json!({"phase": "Succeeded", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]}),
        );
        assert_eq!(
            summarize(&p, NOW),
            PodSummary {
                ready: "0/1".into(),
                status: "Completed".into(),
                restarts: "0".into()
            }
        );
        let p = pod(
            one_container(),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 127, "reason": "Error"}}}
            ]}),
        );
        assert_eq!(summarize(&p, NOW).status, "Error");
        let p = pod(
            one_container(),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 2}}}
            ]}),
        );
        assert_eq!(summarize(&p, NOW).status, "ExitCode:2");
    }

    #[test]
    fn restarts_sum_and_show_last_restart_age() {
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 3, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 137, "finishedAt": "2024-01-02T04:03:25Z"}}},
                {"name": "b", "ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-02T04:02:00Z"}}}
            ]}),
        );
        let s = summarize(&p, NOW);
        assert_eq!(s.ready, "1/2");
        assert_eq!(s.status, "CrashLoopBackOff");
        assert_eq!(s.restarts, "4 (40s ago)");
    }

    #[test]
    fn init_containers_progress() {
        let spec = json!({
            "initContainers": [{"name": "i1"}, {"name": "i2"}],
            "containers": [{"name": "c"}]
        });
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending",
                "initContainerStatuses": [
                    {"name": "i1", "state": {"running": {}}},
                    {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}
                ],
                "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "PodInitializing"}}}]
            }),
        );
        assert_eq!(summarize(&p, NOW).status, "Init:0/2");
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending",
            "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "i2", "state": {"running": {}}}
            ]}),
        );
        assert_eq!(summarize(&p, NOW).status, "Init:1/2");
        let p = pod(
            spec.clone(),
            json!({"phase": "Failed",
            "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
            ]}),
        );
        assert_eq!(summarize(&p, NOW).status, "Init:Error");
        let p = pod(
            spec,
            json!({"phase": "Pending",
            "initContainerStatuses": [
                {"name": "i1", "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}),
        );
        let s = summarize(&p, NOW);
        assert_eq!(s.status, "Init:CrashLoopBackOff");
        assert_eq!(s.restarts, "2");
    }

    #[test]
    fn terminating_and_node_lost() {
        let mut p = pod(
            one_container(),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "c", "ready": true, "state": {"running": {}}}
            ]}),
        );
        p["metadata"]["deletionTimestamp"] = json!("2024-01-02T04:00:00Z");
        assert_eq!(summarize(&p, NOW).status, "Terminating");
        // kubectl: Unknown only for a pod being deleted whose reason is NodeLost (evicted
        // from an unreachable node); without a deletionTimestamp the reason shows as is.
        let mut p = pod(
            one_container(),
            json!({"phase": "Running", "reason": "NodeLost", "containerStatuses": [
                {"name": "c", "ready": true, "state": {"running": {}}}
            ]}),
        );
        assert_eq!(summarize(&p, NOW).status, "NodeLost");
        p["metadata"]["deletionTimestamp"] = json!("2024-01-02T04:00:00Z");
        assert_eq!(summarize(&p, NOW).status, "Unknown");
        let mut p = pod(one_container(), json!({"phase": "Succeeded"}));
        p["metadata"]["deletionTimestamp"] = json!("2024-01-02T04:00:00Z");
        assert_eq!(summarize(&p, NOW).status, "Succeeded");
    }

    #[test]
    fn wide_shows_ip_and_node() {
        let p = pod(
            json!({"containers": [{"name": "c"}], "nodeName": "node1"}),
            json!({"phase": "Running", "podIP": "10.0.0.5"}),
        );
        let r = row(&p, NOW, true);
        assert_eq!(&r[5..7], &["10.0.0.5".to_string(), "node1".to_string()]);
    }
}
