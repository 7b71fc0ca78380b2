//! Pure pod-status computations, as the kubelet does them: the phase from container states
//! (`getPhase`), the pod conditions, and the restart back-off.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::time::now_rfc3339;
use coxswain_api::v1::{Condition, ContainerStatus, PodSpec, PodStatus};
use prost::Message;

/// A pod's status as its protobuf encoding, shared by the pod's worker, the status writer and
/// the readers of the pod's latest status. A running pod's status is a few hundred bytes
/// encoded and ~2 KB decoded (five conditions of eight strings each are 1,000 bytes inline):
/// it is decoded when read or changed and kept encoded (sim pods' memory, issue 17).
#[derive(Clone, Debug)]
pub struct PackedStatus(Arc<[u8]>);

impl PackedStatus {
    pub fn pack(status: &PodStatus) -> PackedStatus {
        PackedStatus(status.encode_to_vec().into())
    }

    /// The status (it was encoded here, so it decodes).
    pub fn unpack(&self) -> PodStatus {
        PodStatus::decode(&*self.0).unwrap_or_default()
    }

    /// The phase, without decoding the rest: prost writes the fields in their order, and the
    /// phase is field 1 (absent when empty).
    pub fn phase(&self) -> String {
        match *self.0 {
            [] => String::new(),
            // Field 1, length-delimited; a phase is shorter than 128 bytes (one-byte length).
            [0x0A, len, ref rest @ ..] if len < 0x80 && rest.len() >= len as usize => {
                String::from_utf8_lossy(&rest[..len as usize]).into_owned()
            }
            _ => self.unpack().phase,
        }
    }
}

/// Whether an init container is done: exited 0, or — a sidecar (restartPolicy Always) — started
/// (or stopped after the containers).
fn init_complete(c: &coxswain_api::v1::Container, status: &PodStatus) -> bool {
    status.init_container_statuses.iter().any(|s| {
        if s.name != c.name {
            return false;
        }
        let st = s.state.clone().unwrap_or_default();
        if c.restart_policy.as_deref() == Some("Always") {
            return (st.running.is_some() && s.started == Some(true))
                || st.terminated.is_some()
                || s.restart_count > 0;
        }
        st.terminated.is_some_and(|t| t.exit_code == 0)
    })
}

/// The lastState upstream's kubelet writes for a container that was Running and is gone.
pub const STATUS_UNKNOWN_MESSAGE: &str =
    "The container could not be located when the pod was deleted.  The container used to be Running";

/// What an agent keeps of a container's stored status when it takes over a pod whose
/// containers are gone (the agent restarted): kubelet's convertToAPIContainerStatuses carries
/// restartCount and lastState over from the old status, and a container that used to be Running
/// gets lastState terminated ContainerStatusUnknown (exit code 137) and one more restart. So the
/// count never goes backwards, and Job back-off, which counts on it, sees every restart.
///
/// `fresh` is the status the agent would start from (waiting); returns it with the old values
/// applied, and the attempt number of the container's next instance.
pub fn adopt(mut fresh: ContainerStatus, old: Option<&ContainerStatus>) -> (ContainerStatus, u32) {
    use coxswain_api::v1::{ContainerState, ContainerStateTerminated};
    let Some(old) = old else {
        return (fresh, 0);
    };
    let count = old.restart_count.max(0);
    let state = old.state.clone().unwrap_or_default();
    let had_last = old
        .last_state
        .as_ref()
        .is_some_and(|l| l.terminated.is_some());
    fresh.restart_count = count;
    fresh.last_state = old.last_state.clone().filter(|_| had_last);
    let next = if let Some(t) = state.terminated {
        // The instance `count` ended; the next one is a restart.
        fresh.last_state = Some(ContainerState {
            terminated: Some(t),
            ..Default::default()
        });
        count + 1
    } else if state.running.is_some() {
        if !had_last {
            fresh.last_state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    reason: "ContainerStatusUnknown".into(),
                    message: STATUS_UNKNOWN_MESSAGE.into(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            fresh.restart_count = count + 1;
        }
        count + 1
    } else {
        let reason = state.waiting.map(|w| w.reason).unwrap_or_default();
        if reason == "ContainerCreating" || reason == "PodInitializing" || reason.is_empty() {
            // Not started since the count was taken (or never ran).
            count
        } else if had_last {
            // CrashLoopBackOff and the like: the instance `count` ended.
            count + 1
        } else {
            count
        }
    };
    (fresh, next as u32)
}

/// The pod phase from its container statuses (kubelet's getPhase).
pub fn phase(spec: &PodSpec, status: &PodStatus) -> &'static str {
    let init_done = spec
        .init_containers
        .iter()
        .all(|c| init_complete(c, status));
    let policy = restart_policy(spec);
    // A failed init container that will not be retried fails the pod.
    if !init_done && policy == "Never" {
        let failed = status.init_container_statuses.iter().any(|s| {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0)
        });
        if failed {
            return "Failed";
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in &spec.containers {
        let Some(cs) = status.container_statuses.iter().find(|s| s.name == c.name) else {
            waiting += 1;
            continue;
        };
        let st = cs.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if cs
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if !init_done || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// Whether a container a restarted agent finds terminated in the stored status is done for
/// good, as kubelet, which never reruns such a container: a completed init container (not a
/// sidecar), or a container that the restart policy does not restart (Never; OnFailure after
/// exit 0).
pub fn already_done(
    old: Option<&ContainerStatus>,
    init: bool,
    sidecar: bool,
    policy: &str,
) -> bool {
    let Some(t) = old
        .and_then(|o| o.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
    else {
        return false;
    };
    if sidecar {
        return false;
    }
    if init {
        return t.exit_code == 0;
    }
    match policy {
        "Never" => true,
        "OnFailure" => t.exit_code == 0,
        _ => false,
    }
}

pub fn restart_policy(spec: &PodSpec) -> &str {
    if spec.restart_policy.is_empty() {
        "Always"
    } else {
        &spec.restart_policy
    }
}

fn set_condition(conds: &mut Vec<Condition>, ty: &str, ok: bool, reason: &str, message: &str) {
    let status = if ok { "True" } else { "False" };
    if let Some(c) = conds.iter_mut().find(|c| c.r#type == ty) {
        if c.status != status {
            c.last_transition_time = now_rfc3339();
        }
        c.status = status.into();
        c.reason = reason.into();
        c.message = message.into();
    } else {
        conds.push(Condition {
            r#type: ty.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now_rfc3339(),
            ..Default::default()
        });
    }
}

fn unready(statuses: &[ContainerStatus], spec: &PodSpec) -> Vec<String> {
    spec.containers
        .iter()
        .filter(|c| !statuses.iter().any(|s| s.name == c.name && s.ready))
        .map(|c| c.name.clone())
        .collect()
}

/// Recomputes phase and conditions (PodScheduled, Initialized, ContainersReady, Ready).
pub fn recompute(spec: &PodSpec, status: &mut PodStatus) {
    let phase = phase(spec, status);
    status.phase = phase.into();
    let pending_init: Vec<String> = spec
        .init_containers
        .iter()
        .filter(|c| !init_complete(c, status))
        .map(|c| c.name.clone())
        .collect();
    let conds = &mut status.conditions;
    // PodReadyToStartContainers (kubelet ≥ 1.29) once the sandbox exists.
    set_condition(conds, "PodReadyToStartContainers", true, "", "");
    if pending_init.is_empty() {
        set_condition(conds, "Initialized", true, "", "");
    } else {
        set_condition(
            conds,
            "Initialized",
            false,
            "ContainersNotInitialized",
            &format!(
                "containers with incomplete status: [{}]",
                pending_init.join(" ")
            ),
        );
    }
    let unready = unready(&status.container_statuses, spec);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let (ok, reason, msg) = if terminal && phase == "Succeeded" {
        (false, "PodCompleted", String::new())
    } else if unready.is_empty() {
        (true, "", String::new())
    } else {
        (
            false,
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    set_condition(conds, "ContainersReady", ok, reason, &msg);
    set_condition(conds, "Ready", ok, reason, &msg);
    set_condition(conds, "PodScheduled", true, "", "");
    let order = |t: &str| match t {
        "PodReadyToStartContainers" => 0,
        "Initialized" => 1,
        "Ready" => 2,
        "ContainersReady" => 3,
        "PodScheduled" => 4,
        _ => 5,
    };
    conds.sort_by_key(|c| order(&c.r#type));
}

/// Container restart back-off: the first restart is immediate, then `base`, doubling up to
/// `max` (kubelet: 10 s doubling to 5 min).
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            failures: 0,
        }
    }

    /// The delay before the next restart, counting this failure.
    pub fn next_delay(&mut self) -> Duration {
        self.failures += 1;
        if self.failures == 1 {
            return Duration::ZERO;
        }
        let exp = (self.failures - 2).min(20);
        self.base.saturating_mul(1 << exp).min(self.max)
    }

    /// The delay before the next attempt when even the first one waits (image pulls).
    pub fn next_from_base(&mut self) -> Duration {
        self.failures += 1;
        let exp = (self.failures - 1).min(20);
        self.base.saturating_mul(1 << exp).min(self.max)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_status_unpacks_to_itself_and_reads_its_phase() {
        let mut st = PodStatus {
            phase: "Running".into(),
            host_ip: "127.0.0.1".into(),
            container_statuses: vec![ContainerStatus {
                name: "c".into(),
                ready: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        recompute(&PodSpec::default(), &mut st);
        st.phase = "Running".into();
        let packed = PackedStatus::pack(&st);
        assert_eq!(packed.unpack(), st);
        assert_eq!(packed.phase(), "Running");
        // No phase: field 1 is absent, the phase is empty.
        let none = PodStatus {
            host_ip: "127.0.0.1".into(),
            ..Default::default()
        };
        assert_eq!(PackedStatus::pack(&none).phase(), "");
        assert_eq!(PackedStatus::pack(&PodStatus::default()).phase(), "");
        // A phase of 128 bytes or more (a two-byte length) is read by decoding.
        let long = PodStatus {
            phase: "x".repeat(200),
            ..Default::default()
        };
        assert_eq!(PackedStatus::pack(&long).phase(), "x".repeat(200));
    }

    #[test]
    fn terminated_containers_are_done_as_their_policy_says() {
        let ended = |code: i32| ContainerStatus {
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let running = ContainerStatus {
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        for (old, init, sidecar, policy, want) in [
            (Some(ended(0)), false, false, "Never", true),
            (Some(ended(1)), false, false, "Never", true),
            (Some(ended(0)), false, false, "OnFailure", true),
            (Some(ended(1)), false, false, "OnFailure", false),
            (Some(ended(0)), false, false, "Always", false),
            (Some(ended(0)), true, false, "Always", true),
            (Some(ended(1)), true, false, "Always", false),
            (Some(ended(0)), true, true, "Always", false),
            (Some(running.clone()), false, false, "Never", false),
            (None, false, false, "Never", false),
        ] {
            assert_eq!(
                already_done(old.as_ref(), init, sidecar, policy),
                want,
                "{old:?} init={init} sidecar={sidecar} {policy}"
            );
        }
    }
    use coxswain_api::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    };

    fn spec(policy: &str) -> PodSpec {
        PodSpec {
            restart_policy: policy.into(),
            containers: vec![Container {
                name: "a".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn term(code: i32) -> ContainerStatus {
        ContainerStatus {
            name: "a".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn phases_like_kubelet() {
        let mut st = PodStatus::default();
        assert_eq!(phase(&spec("Always"), &st), "Pending");
        st.container_statuses = vec![ContainerStatus {
            name: "a".into(),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }];
        assert_eq!(phase(&spec("Always"), &st), "Running");
        st.container_statuses = vec![term(0)];
        assert_eq!(phase(&spec("Never"), &st), "Succeeded");
        assert_eq!(phase(&spec("OnFailure"), &st), "Succeeded");
        assert_eq!(phase(&spec("Always"), &st), "Running");
        st.container_statuses = vec![term(1)];
        assert_eq!(phase(&spec("Never"), &st), "Failed");
        assert_eq!(phase(&spec("OnFailure"), &st), "Running");
    }

    #[test]
    fn adopting_a_stored_status_never_counts_backwards() {
        let waiting = |reason: &str| ContainerState {
            waiting: Some(coxswain_api::v1::ContainerStateWaiting {
                reason: reason.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let fresh = ContainerStatus {
            name: "a".into(),
            state: Some(waiting("ContainerCreating")),
            ..Default::default()
        };
        let with =
            |state: ContainerState, count: i32, last: Option<ContainerStatus>| ContainerStatus {
                name: "a".into(),
                state: Some(state),
                restart_count: count,
                last_state: last.and_then(|l| l.state),
                ..Default::default()
            };
        let running = ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        };
        // (old status, restartCount shown, lastState reason/exit code, next attempt)
        type Case<'a> = (Option<ContainerStatus>, i32, Option<(&'a str, i32)>, u32);
        let cases: Vec<Case> = vec![
            (None, 0, None, 0),
            (
                Some(with(waiting("ContainerCreating"), 0, None)),
                0,
                None,
                0,
            ),
            // Running, never restarted: upstream's ContainerStatusUnknown and +1.
            (
                Some(with(running.clone(), 4, None)),
                5,
                Some(("ContainerStatusUnknown", 137)),
                5,
            ),
            // Running with a previous termination: kept; the next instance is a restart.
            (Some(with(running, 4, Some(term(2)))), 4, Some(("", 2)), 5),
            // Crash-looping: instance 3 ended with 1.
            (
                Some(with(waiting("CrashLoopBackOff"), 3, Some(term(1)))),
                3,
                Some(("", 1)),
                4,
            ),
            // Terminated: it becomes lastState.
            (term(7).state.map(|s| with(s, 2, None)), 2, Some(("", 7)), 3),
            // Already adopted once (the agent restarted twice before the container started).
            (
                Some(ContainerStatus {
                    last_state: adopt(
                        fresh.clone(),
                        Some(&with(
                            ContainerState {
                                running: Some(ContainerStateRunning::default()),
                                ..Default::default()
                            },
                            1,
                            None,
                        )),
                    )
                    .0
                    .last_state,
                    ..with(waiting("ContainerCreating"), 2, None)
                }),
                2,
                Some(("ContainerStatusUnknown", 137)),
                2,
            ),
        ];
        for (i, (old, count, last, next)) in cases.into_iter().enumerate() {
            let (st, n) = adopt(fresh.clone(), old.as_ref());
            assert_eq!(st.restart_count, count, "case {i}");
            assert_eq!(n, next, "case {i}");
            let got = st
                .last_state
                .and_then(|l| l.terminated)
                .map(|t| (t.reason, t.exit_code));
            assert_eq!(got, last.map(|(r, c)| (r.to_string(), c)), "case {i}");
            assert_eq!(st.state, fresh.state, "case {i}: the state stays waiting");
        }
    }

    #[test]
    fn backoff_doubles_to_max() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(300));
        let d: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(d, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }
}
