//! A Deployment's status from its ReplicaSets and its Available/Progressing conditions
//! (Kubernetes' `syncRolloutStatus` and `deployment/util`'s condition helpers).
use coxswain_api::v1::{Condition, Deployment, DeploymentStatus, ReplicaSet};

use super::{desired_replicas, min_available, rs_replicas, DEFAULT_PROGRESS_DEADLINE_SECONDS};
use crate::time::{format_rfc3339, parse_rfc3339};

/// The Deployment's status from its ReplicaSets' statuses (conditions are kept from `d`).
pub fn deployment_status(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    all: &[ReplicaSet],
) -> DeploymentStatus {
    let sum = |f: fn(&coxswain_api::v1::ReplicaSetStatus) -> i32| -> i32 {
        all.iter().filter_map(|rs| rs.status.as_ref()).map(f).sum()
    };
    let available = sum(|s| s.available_replicas);
    let prev = d.status.clone().unwrap_or_default();
    DeploymentStatus {
        observed_generation: d.metadata.as_ref().map_or(0, |m| m.generation),
        replicas: sum(|s| s.replicas),
        updated_replicas: new_rs
            .and_then(|rs| rs.status.as_ref())
            .map_or(0, |s| s.replicas),
        ready_replicas: sum(|s| s.ready_replicas),
        available_replicas: available,
        // Kubernetes: spec.replicas summed over the ReplicaSets minus the available pods.
        unavailable_replicas: (all.iter().map(rs_replicas).sum::<i32>() - available).max(0),
        conditions: prev.conditions,
        collision_count: prev.collision_count,
    }
}

/// The rollout made progress between two statuses: more updated/ready/available pods or fewer
/// old pods. The caller records `now` as the last progress time when this holds.
pub fn is_progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let old_old = old.replicas - old.updated_replicas;
    let new_old = new.replicas - new.updated_replicas;
    new.updated_replicas > old.updated_replicas
        || new_old < old_old
        || new.ready_replicas > old.ready_replicas
        || new.available_replicas > old.available_replicas
}

/// Inputs to [`deployment_conditions`].
#[derive(Debug, Clone, Copy)]
pub struct ConditionInput<'a> {
    pub deployment: &'a Deployment,
    /// The new ReplicaSet's name, if it exists.
    pub new_rs: Option<&'a str>,
    /// The new ReplicaSet was created in this sync.
    pub new_rs_created: bool,
    /// The status before this sync (its conditions are the current ones).
    pub old_status: &'a DeploymentStatus,
    /// The status computed now ([`deployment_status`]).
    pub new_status: &'a DeploymentStatus,
    /// Now, in seconds.
    pub now: i64,
    /// When the rollout last progressed; when `None` the Progressing condition's lastUpdateTime
    /// (refreshed on every ReplicaSetUpdated) is used, then its lastTransitionTime.
    pub last_progress: Option<i64>,
}

fn cond(t: &str, status: &str, reason: &str, message: String) -> Condition {
    Condition {
        r#type: t.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        ..Default::default()
    }
}

/// Put `c` into `conds` as Kubernetes' `SetDeploymentCondition`: an existing condition with the
/// same status and reason is left alone (unless `touch`, which refreshes its lastUpdateTime and
/// message); otherwise lastUpdateTime is `now` and lastTransitionTime is kept when the status did
/// not change.
pub fn set_condition(conds: &mut Vec<Condition>, mut c: Condition, now: i64, touch: bool) {
    let now_s = format_rfc3339(now);
    match conds.iter_mut().find(|x| x.r#type == c.r#type) {
        Some(old) => {
            if old.status == c.status && old.reason == c.reason && !touch {
                return;
            }
            c.last_transition_time =
                if old.status == c.status && !old.last_transition_time.is_empty() {
                    old.last_transition_time.clone()
                } else {
                    now_s.clone()
                };
            c.last_update_time = now_s;
            *old = c;
        }
        None => {
            c.last_transition_time = now_s.clone();
            c.last_update_time = now_s;
            conds.push(c);
        }
    }
}

/// The Deployment's conditions after a sync (Kubernetes' `syncRolloutStatus`): Available
/// (MinimumReplicasAvailable / MinimumReplicasUnavailable) and Progressing (NewReplicaSetCreated,
/// FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded;
/// Unknown/DeploymentPaused while paused).
pub fn deployment_conditions(input: &ConditionInput<'_>) -> Vec<Condition> {
    let d = input.deployment;
    let desired = desired_replicas(d);
    let mut conds = input.old_status.conditions.clone();
    let now = input.now;

    let available = if input.new_status.available_replicas >= min_available(d) {
        cond(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        cond(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    set_condition(&mut conds, available, now, false);

    let existing = conds.iter().find(|c| c.r#type == "Progressing").cloned();
    let rs = input.new_rs.unwrap_or("");
    let spec = d.spec.as_ref();
    let deadline = spec
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    let ns = input.new_status;
    let generation = d.metadata.as_ref().map_or(0, |m| m.generation);
    let complete = ns.updated_replicas == desired
        && ns.replicas == desired
        && ns.available_replicas == desired
        && ns.observed_generation >= generation;

    let progressing = if spec.is_some_and(|s| s.paused) {
        Some(cond(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
        ))
    } else if complete && input.new_rs.is_some() {
        Some(cond(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet {rs:?} has successfully progressed."),
        ))
    } else if input.new_rs_created {
        Some(cond(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set {rs:?}"),
        ))
    } else if input.new_rs.is_some()
        && existing
            .as_ref()
            .is_none_or(|c| c.reason == "DeploymentPaused")
    {
        Some(cond(
            "Progressing",
            "True",
            "FoundNewReplicaSet",
            format!("Found new replica set {rs:?}"),
        ))
    } else if is_progressing(input.old_status, ns) {
        Some(cond(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet {rs:?} is progressing."),
        ))
    } else {
        let timed_out = existing.as_ref().is_some_and(|c| match c.reason.as_str() {
            "NewReplicaSetAvailable" | "DeploymentPaused" => false,
            "ProgressDeadlineExceeded" => true,
            _ => input
                .last_progress
                .or_else(|| parse_rfc3339(&c.last_update_time))
                .or_else(|| parse_rfc3339(&c.last_transition_time))
                .is_some_and(|from| from + i64::from(deadline) < now),
        });
        timed_out.then(|| {
            cond(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet {rs:?} has timed out progressing."),
            )
        })
    };
    if let Some(p) = progressing {
        let touch = p.reason == "ReplicaSetUpdated";
        set_condition(&mut conds, p, now, touch);
    }
    conds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::tests::{deploy, rs};

    #[test]
    fn status_sums() {
        let d = deploy(3, "25%", "25%");
        let new = rs("new", 1, 1, 0);
        let all = vec![rs("old", 0, 3, 3), new.clone()];
        let st = deployment_status(&d, Some(&new), &all);
        assert_eq!(
            (
                st.replicas,
                st.updated_replicas,
                st.available_replicas,
                st.unavailable_replicas
            ),
            (4, 1, 3, 1)
        );
    }

    fn reasons(c: &[Condition]) -> Vec<(String, String, String)> {
        c.iter()
            .map(|c| (c.r#type.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    #[test]
    fn conditions() {
        let d = deploy(3, "25%", "25%");
        let st = |replicas, updated, available| DeploymentStatus {
            observed_generation: 1,
            replicas,
            updated_replicas: updated,
            ready_replicas: available,
            available_replicas: available,
            ..Default::default()
        };
        let t = |s: &str, st: &str, r: &str| (s.to_string(), st.to_string(), r.to_string());

        // creation of the new ReplicaSet
        let empty = DeploymentStatus::default();
        let s0 = st(0, 0, 0);
        let c = deployment_conditions(&ConditionInput {
            deployment: &d,
            new_rs: Some("d-abc"),
            new_rs_created: true,
            old_status: &empty,
            new_status: &s0,
            now: 100,
            last_progress: None,
        });
        assert_eq!(
            reasons(&c),
            vec![
                t("Available", "False", "MinimumReplicasUnavailable"),
                t("Progressing", "True", "NewReplicaSetCreated"),
            ]
        );
        assert_eq!(c[1].message, "Created new replica set \"d-abc\"");

        // progress
        let mut prev = s0.clone();
        prev.conditions = c.clone();
        let s1 = st(2, 2, 1);
        let c2 = deployment_conditions(&ConditionInput {
            deployment: &d,
            new_rs: Some("d-abc"),
            new_rs_created: false,
            old_status: &prev,
            new_status: &s1,
            now: 110,
            last_progress: Some(100),
        });
        assert_eq!(c2[1].reason, "ReplicaSetUpdated");
        assert_eq!(c2[1].last_transition_time, format_rfc3339(100));
        assert_eq!(c2[1].last_update_time, format_rfc3339(110));

        // stuck past the deadline
        let mut prev2 = s1.clone();
        prev2.conditions = c2.clone();
        let c3 = deployment_conditions(&ConditionInput {
            deployment: &d,
            new_rs: Some("d-abc"),
            new_rs_created: false,
            old_status: &prev2,
            new_status: &s1,
            now: 800,
            last_progress: Some(110),
        });
        assert_eq!(c3[1].reason, "ProgressDeadlineExceeded");
        assert_eq!(c3[1].status, "False");
        // not yet past it
        let c3b = deployment_conditions(&ConditionInput {
            deployment: &d,
            new_rs: Some("d-abc"),
            new_rs_created: false,
            old_status: &prev2,
            new_status: &s1,
            now: 700,
            last_progress: Some(110),
        });
        assert_eq!(c3b[1].reason, "ReplicaSetUpdated");

        // complete
        let s3 = st(3, 3, 3);
        let c4 = deployment_conditions(&ConditionInput {
            deployment: &d,
            new_rs: Some("d-abc"),
            new_rs_created: false,
            old_status: &prev2,
            new_status: &s3,
            now: 120,
            last_progress: None,
        });
        assert_eq!(
            reasons(&c4),
            vec![
                t("Available", "True", "MinimumReplicasAvailable"),
                t("Progressing", "True", "NewReplicaSetAvailable"),
            ]
        );

        // found an existing new ReplicaSet without a Progressing condition
        let c5 = deployment_conditions(&ConditionInput {
            deployment: &d,
            new_rs: Some("d-abc"),
            new_rs_created: false,
            old_status: &s1,
            new_status: &s1,
            now: 120,
            last_progress: None,
        });
        assert_eq!(c5[1].reason, "FoundNewReplicaSet");
    }
}
