//! Deployment rollout math, after Kubernetes' `pkg/controller/deployment` and
//! `deployment/util`.
//!
//! Conventions: a Deployment's `spec.replicas` defaults to 1 and its strategy to RollingUpdate
//! with maxSurge and maxUnavailable 25%. A ReplicaSet's `spec.replicas` defaults to 1. "Old"
//! ReplicaSets are every ReplicaSet the Deployment owns except the one whose template matches the
//! Deployment's ("new"). ReplicaSets are ordered oldest first by creationTimestamp, then name.
//!
//! Changes are returned as `(replica set name, new spec.replicas)` pairs; the caller writes them.
//!
//! The Deployment's status and its conditions are in [`status`], the pod-template hash and
//! revision numbers in [`history`]; both are re-exported here.
use std::cmp::Ordering;
use std::collections::BTreeMap;

use coxswain_api::v1::{Deployment, IntOrString, Pod, ReplicaSet};

use crate::time::parse_rfc3339;

mod history;
mod status;
pub use history::*;
pub use status::*;

/// The revision a ReplicaSet represents (a decimal number).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas + maxSurge when the ReplicaSet was last scaled; the basis of
/// proportional scaling.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// The label carrying [`pod_template_hash`] on a Deployment's ReplicaSets and pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// maxSurge and maxUnavailable when unset.
pub const DEFAULT_FENCEPOST: &str = "25%";
/// progressDeadlineSeconds when unset.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// Resolve maxSurge (percentages round UP) and maxUnavailable (round DOWN) against `desired`.
/// Unset values are 25%. If both come out 0, maxUnavailable becomes 1 so a rollout can progress.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let default = IntOrString::string(DEFAULT_FENCEPOST);
    let surge = max_surge.unwrap_or(&default).scaled_value(desired, true)?;
    let unavailable = max_unavailable
        .unwrap_or(&default)
        .scaled_value(desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// `spec.replicas` (default 1).
pub fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The strategy is Recreate (anything else, including unset, is RollingUpdate).
pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .is_some_and(|s| s.r#type == "Recreate")
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        desired_replicas(d),
    )
    .unwrap_or((0, 0))
}

/// Resolved maxSurge (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        0
    } else {
        fenceposts(d).0
    }
}

/// Resolved maxUnavailable, capped at replicas (0 for Recreate or 0 replicas).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = desired_replicas(d);
    if is_recreate(d) || replicas == 0 {
        0
    } else {
        fenceposts(d).1.min(replicas)
    }
}

/// The most pods all the Deployment's ReplicaSets may have together: replicas + maxSurge.
pub fn max_surge_total(d: &Deployment) -> i32 {
    desired_replicas(d) + max_surge(d)
}

/// The fewest available pods a rollout may leave: replicas − maxUnavailable.
pub fn min_available(d: &Deployment) -> i32 {
    desired_replicas(d) - max_unavailable(d)
}

/// A ReplicaSet's `spec.replicas` (default 1).
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// A ReplicaSet's available pods for rollout math: status.availableReplicas, but never more than
/// spec.replicas. Right after the Deployment scales an old ReplicaSet down, its status still
/// counts the pods it is about to delete; trusting it would let the next sync scale down again
/// and drop below replicas − maxUnavailable (seen in the 10,000-pod benchmark).
fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .map_or(0, |s| s.available_replicas)
        .min(rs_replicas(rs))
}

fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.as_ref().map_or("", |m| m.name.as_str())
}

fn rs_created(rs: &ReplicaSet) -> Option<i64> {
    rs.metadata
        .as_ref()
        .and_then(|m| parse_rfc3339(&m.creation_timestamp))
}

/// Oldest first (creationTimestamp, then name).
pub fn older_first(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_created(a)
        .cmp(&rs_created(b))
        .then_with(|| rs_name(a).cmp(rs_name(b)))
}

/// The new ReplicaSet's target replicas in this RollingUpdate step (Kubernetes'
/// `NewRSNewReplicas`). `all_total` is the sum of spec.replicas over all the Deployment's
/// ReplicaSets, new included. For Recreate the answer is simply the desired replicas.
pub fn new_rs_new_replicas(d: &Deployment, all_total: i32, new_rs_replicas: i32) -> i32 {
    let desired = desired_replicas(d);
    if is_recreate(d) || new_rs_replicas == desired {
        return desired;
    }
    let max_total = max_surge_total(d);
    if all_total >= max_total {
        return new_rs_replicas;
    }
    let scale_up = (max_total - all_total).min(desired - new_rs_replicas);
    new_rs_replicas + scale_up
}

/// How many old pods may go in this step: all pods − minAvailable − the new ReplicaSet's
/// unavailable pods. `all_total` is the sum of spec.replicas over all ReplicaSets.
pub fn max_scaled_down(d: &Deployment, all_total: i32, new_rs: Option<&ReplicaSet>) -> i32 {
    let new_unavailable = new_rs.map_or(0, |rs| rs_replicas(rs) - rs_available(rs));
    all_total - min_available(d) - new_unavailable
}

/// The RollingUpdate scale-down of old ReplicaSets (Kubernetes' `reconcileOldReplicaSets`):
/// first remove unhealthy (unavailable) old replicas up to [`max_scaled_down`], oldest
/// ReplicaSet first; then scale old ReplicaSets down (oldest first) as long as the available
/// pods of all ReplicaSets stay at or above [`min_available`].
pub fn plan_old_scale_down(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
) -> Vec<(String, i32)> {
    let old_total: i32 = old.iter().map(rs_replicas).sum();
    if old_total == 0 {
        return vec![];
    }
    let all_total = old_total + new_rs.map_or(0, rs_replicas);
    let max = max_scaled_down(d, all_total, new_rs);
    if max <= 0 {
        return vec![];
    }
    let mut sorted: Vec<&ReplicaSet> = old.iter().collect();
    sorted.sort_by(|a, b| older_first(a, b));
    let mut size: Vec<i32> = sorted.iter().map(|rs| rs_replicas(rs)).collect();

    // Clean up unhealthy replicas first.
    let mut cleaned = 0;
    for (i, rs) in sorted.iter().enumerate() {
        if cleaned >= max {
            break;
        }
        let unhealthy = size[i] - rs_available(rs);
        if size[i] == 0 || unhealthy <= 0 {
            continue;
        }
        let n = (max - cleaned).min(unhealthy);
        size[i] -= n;
        cleaned += n;
    }

    // Then scale down healthy ones while keeping minAvailable.
    let available: i32 = old.iter().map(rs_available).sum::<i32>() + new_rs.map_or(0, rs_available);
    let min_avail = min_available(d);
    if available > min_avail {
        let to_scale = available - min_avail;
        let mut scaled = 0;
        for s in size.iter_mut() {
            if scaled >= to_scale {
                break;
            }
            if *s == 0 {
                continue;
            }
            let n = (*s).min(to_scale - scaled);
            *s -= n;
            scaled += n;
        }
    }

    sorted
        .iter()
        .zip(size)
        .filter(|(rs, s)| rs_replicas(rs) != *s)
        .map(|(rs, s)| (rs_name(rs).to_string(), s))
        .collect()
}

fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .as_ref()?
        .annotations
        .get(MAX_REPLICAS_ANNOTATION)?
        .parse()
        .ok()
}

/// The annotations a ReplicaSet gets whenever the Deployment scales it:
/// desired-replicas = replicas, max-replicas = replicas + maxSurge.
pub fn replica_annotations(d: &Deployment) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            DESIRED_REPLICAS_ANNOTATION.to_string(),
            desired_replicas(d).to_string(),
        ),
        (
            MAX_REPLICAS_ANNOTATION.to_string(),
            max_surge_total(d).to_string(),
        ),
    ])
}

/// The new size of every ReplicaSet when the Deployment's replicas change (Kubernetes'
/// `scale`/`getProportion`). Inputs: `rss` all the Deployment's ReplicaSets (new and old) with
/// their spec.replicas and their max-replicas annotation (the Deployment's replicas + maxSurge
/// when each was last scaled; `d.status.replicas` stands in for a missing one), `new_rs` the new
/// ReplicaSet's name if it exists. Rules:
/// - zero or one active (replicas > 0) ReplicaSet: that one (or else the new one, or else the
///   newest) gets the Deployment's replicas, the others nothing;
/// - the new ReplicaSet saturated (replicas = available = desired): old ones go to 0;
/// - otherwise (RollingUpdate only) the difference between replicas + maxSurge and the current
///   total is spread over the active ReplicaSets in proportion to their size, largest first
///   (ties: newer first when growing, older first when shrinking); the rounding leftover goes to
///   the first (largest) one.
///
/// Returns only the ReplicaSets whose size changes.
pub fn proportional_scale(
    d: &Deployment,
    rss: &[ReplicaSet],
    new_rs: Option<&str>,
) -> Vec<(String, i32)> {
    let desired = desired_replicas(d);
    let active: Vec<&ReplicaSet> = rss.iter().filter(|rs| rs_replicas(rs) > 0).collect();
    let changed = |target: &[(String, i32)]| -> Vec<(String, i32)> {
        target
            .iter()
            .filter(|(n, s)| {
                rss.iter()
                    .find(|rs| rs_name(rs) == n)
                    .is_some_and(|rs| rs_replicas(rs) != *s)
            })
            .cloned()
            .collect()
    };
    if active.len() <= 1 {
        let target = active.first().copied().or_else(|| {
            new_rs
                .and_then(|n| rss.iter().find(|rs| rs_name(rs) == n))
                .or_else(|| rss.iter().max_by(|a, b| older_first(a, b)))
        });
        return match target {
            Some(rs) => changed(&[(rs_name(rs).to_string(), desired)]),
            None => vec![],
        };
    }
    if let Some(new) = new_rs.and_then(|n| rss.iter().find(|rs| rs_name(rs) == n)) {
        if rs_replicas(new) == desired && rs_available(new) == desired {
            let zeros: Vec<(String, i32)> = rss
                .iter()
                .filter(|rs| rs_name(rs) != rs_name(new))
                .map(|rs| (rs_name(rs).to_string(), 0))
                .collect();
            return changed(&zeros);
        }
    }
    if is_recreate(d) {
        return vec![];
    }
    let allowed = if desired > 0 { max_surge_total(d) } else { 0 };
    let current: i32 = active.iter().map(|rs| rs_replicas(rs)).sum();
    let to_add = allowed - current;
    if to_add == 0 {
        return vec![];
    }
    let mut sorted = active;
    sorted.sort_by(|a, b| {
        rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| {
            if to_add > 0 {
                older_first(b, a)
            } else {
                older_first(a, b)
            }
        })
    });
    let status_replicas = d.status.as_ref().map_or(0, |s| s.replicas);
    let deployment_total = max_surge_total(d);
    let mut added = 0;
    let mut sizes: Vec<i32> = Vec::with_capacity(sorted.len());
    for rs in &sorted {
        let size = rs_replicas(rs);
        let proportion = if to_add == added {
            0
        } else {
            let fraction = if desired == 0 {
                -size
            } else {
                let annotated = max_replicas_annotation(rs).unwrap_or(status_replicas);
                if annotated == 0 {
                    0
                } else {
                    let f = f64::from(size) * f64::from(deployment_total) / f64::from(annotated);
                    f.round() as i32 - size
                }
            };
            let allowed = to_add - added;
            if to_add > 0 {
                fraction.min(allowed)
            } else {
                fraction.max(allowed)
            }
        };
        sizes.push(size + proportion);
        added += proportion;
    }
    if let Some(first) = sizes.first_mut() {
        *first = (*first + to_add - added).max(0);
    }
    let target: Vec<(String, i32)> = sorted
        .iter()
        .zip(sizes)
        .map(|(rs, s)| (rs_name(rs).to_string(), s))
        .collect();
    changed(&target)
}

/// The next step of a Recreate rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecreateStep {
    /// Scale these old ReplicaSets to 0.
    ScaleDownOld(Vec<String>),
    /// Old ReplicaSets are at 0 but some of their pods still run; wait.
    WaitForOldPods,
    /// Create the new ReplicaSet (if missing) or scale it to this many replicas.
    ScaleUpNew(i32),
    /// Nothing to do.
    Done,
}

/// Some old pod is still running: any pod not Succeeded/Failed counts (Unknown included).
pub fn old_pods_running<P: std::borrow::Borrow<Pod>>(old_pods: &[P]) -> bool {
    old_pods
        .iter()
        .map(std::borrow::Borrow::borrow)
        .any(|p: &Pod| {
            !matches!(
                p.status.as_ref().map_or("", |s| s.phase.as_str()),
                "Succeeded" | "Failed"
            )
        })
}

/// Recreate: every old ReplicaSet goes to 0 and every old pod is gone before the new
/// ReplicaSet is scaled up.
pub fn recreate_step(
    d: &Deployment,
    old: &[ReplicaSet],
    old_pods_running: bool,
    new_rs: Option<&ReplicaSet>,
) -> RecreateStep {
    let mut active: Vec<&ReplicaSet> = old.iter().filter(|rs| rs_replicas(rs) > 0).collect();
    if !active.is_empty() {
        active.sort_by(|a, b| older_first(a, b));
        return RecreateStep::ScaleDownOld(
            active.iter().map(|rs| rs_name(rs).to_string()).collect(),
        );
    }
    let old_status_pods = old
        .iter()
        .any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0));
    if old_pods_running || old_status_pods {
        return RecreateStep::WaitForOldPods;
    }
    let desired = desired_replicas(d);
    match new_rs {
        Some(rs) if rs_replicas(rs) == desired => RecreateStep::Done,
        _ => RecreateStep::ScaleUpNew(desired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339;
    use coxswain_api::v1::{
        DeploymentSpec, DeploymentStatus, DeploymentStrategy, ObjectMeta, ReplicaSetSpec,
        ReplicaSetStatus, RollingUpdateDeployment,
    };

    pub(super) fn ios(s: &str) -> IntOrString {
        match s.parse::<i32>() {
            Ok(v) => IntOrString::int(v),
            Err(_) => IntOrString::string(s),
        }
    }

    pub(super) fn deploy(replicas: i32, surge: &str, unavail: &str) -> Deployment {
        Deployment {
            metadata: Some(ObjectMeta {
                name: "d".into(),
                generation: 1,
                ..Default::default()
            }),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    r#type: "RollingUpdate".into(),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(ios(surge)),
                        max_unavailable: Some(ios(unavail)),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(super) fn rs(name: &str, created: i64, replicas: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: Some(ObjectMeta {
                name: name.into(),
                creation_timestamp: format_rfc3339(created),
                ..Default::default()
            }),
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                ready_replicas: available,
                available_replicas: available,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(super) fn annotated(mut r: ReplicaSet, key: &str, v: &str) -> ReplicaSet {
        r.metadata
            .as_mut()
            .unwrap()
            .annotations
            .insert(key.into(), v.into());
        r
    }

    #[test]
    fn fenceposts_round() {
        let cases = [
            ("25%", "25%", 3, (1, 0)),
            ("25%", "25%", 10, (3, 2)),
            ("25%", "25%", 4, (1, 1)),
            ("0", "0", 5, (0, 1)),
            ("0%", "0%", 5, (0, 1)),
            ("2", "30%", 10, (2, 3)),
            ("100%", "0", 3, (3, 0)),
            ("25%", "25%", 0, (0, 1)),
        ];
        for (s, u, n, want) in cases {
            assert_eq!(
                resolve_fenceposts(Some(&ios(s)), Some(&ios(u)), n),
                Ok(want),
                "{s} {u} {n}"
            );
        }
        assert_eq!(resolve_fenceposts(None, None, 10), Ok((3, 2)));
        assert!(resolve_fenceposts(Some(&ios("x")), None, 10).is_err());
    }

    #[test]
    fn totals() {
        let cases = [
            (deploy(3, "25%", "25%"), 4, 3),
            (deploy(10, "25%", "25%"), 13, 8),
            (deploy(2, "0", "5"), 2, 0),
            (deploy(0, "1", "1"), 1, 0),
        ];
        for (d, surge_total, min_avail) in cases {
            assert_eq!(max_surge_total(&d), surge_total);
            assert_eq!(min_available(&d), min_avail);
        }
        let mut r = deploy(3, "1", "1");
        r.spec.as_mut().unwrap().strategy.as_mut().unwrap().r#type = "Recreate".into();
        assert_eq!((max_surge_total(&r), min_available(&r)), (3, 3));
    }

    #[test]
    fn new_rs_scale_up() {
        // (deployment, all_total, new replicas) -> new target
        let cases = [
            (deploy(3, "25%", "25%"), 3, 0, 1), // S44: one surge pod at a time
            (deploy(3, "25%", "25%"), 4, 1, 1), // at the surge cap
            (deploy(10, "25%", "25%"), 10, 0, 3),
            (deploy(10, "25%", "25%"), 8, 0, 5),
            (deploy(10, "25%", "25%"), 12, 8, 9),
            (deploy(3, "25%", "25%"), 3, 3, 3),
            (deploy(2, "5", "0"), 2, 0, 2), // never more than desired
        ];
        for (d, all, new, want) in cases {
            assert_eq!(new_rs_new_replicas(&d, all, new), want, "{all} {new}");
        }
    }

    #[test]
    fn old_scale_down() {
        let d3 = deploy(3, "25%", "25%");
        let d4 = deploy(4, "1", "1");
        let d10k = deploy(10_000, "25%", "25%");
        let mut stale_old = rs("old", 10, 7500, 10_000);
        stale_old.status.as_mut().unwrap().replicas = 10_000;
        type Case<'a> = (
            &'a Deployment,
            ReplicaSet,
            Vec<ReplicaSet>,
            Vec<(String, i32)>,
        );
        let cases: Vec<Case> = vec![
            // new pod not yet available: nothing may go (minAvailable 3)
            (&d3, rs("new", 20, 1, 0), vec![rs("old", 10, 3, 3)], vec![]),
            // new pod available: one old pod goes
            (
                &d3,
                rs("new", 20, 1, 1),
                vec![rs("old", 10, 3, 3)],
                vec![("old".into(), 2)],
            ),
            // an unhealthy old pod is cleaned up first (available stays at minAvailable)
            (
                &d3,
                rs("new", 20, 1, 1),
                vec![rs("old", 10, 3, 2)],
                vec![("old".into(), 2)],
            ),
            // the new pod is not available and minAvailable leaves no room
            (&d3, rs("new", 20, 1, 0), vec![rs("old", 10, 3, 2)], vec![]),
            // oldest ReplicaSet first
            (
                &d4,
                rs("new", 30, 1, 1),
                vec![rs("b", 20, 2, 2), rs("a", 10, 2, 2)],
                vec![("a".into(), 0)],
            ),
            // nothing old left
            (&d3, rs("new", 20, 3, 3), vec![rs("old", 10, 0, 0)], vec![]),
            // the old ReplicaSet was just scaled 10000 → 7500 and its status still counts
            // 10000 available: with 300 new pods available only 300 more may go, not 2800
            (
                &d10k,
                rs("new", 20, 2500, 300),
                vec![stale_old.clone()],
                vec![("old".into(), 7200)],
            ),
        ];
        for (d, new, old, want) in cases {
            assert_eq!(plan_old_scale_down(d, Some(&new), &old), want);
        }
    }

    #[test]
    fn max_scaled_down_counts_new_unavailable() {
        let d = deploy(10, "3", "2");
        assert_eq!(max_scaled_down(&d, 13, Some(&rs("n", 0, 3, 0))), 2);
        assert_eq!(max_scaled_down(&d, 13, Some(&rs("n", 0, 3, 3))), 5);
    }

    #[test]
    fn proportional() {
        // 10 replicas mid-rollout (new 5 of 10, old 8): max-replicas 13 each; scale to 15 → 19.
        let mut d = deploy(15, "25%", "25%");
        d.status = Some(DeploymentStatus {
            replicas: 13,
            ..Default::default()
        });
        let new = annotated(rs("new", 20, 5, 0), MAX_REPLICAS_ANNOTATION, "13");
        let old = annotated(rs("old", 10, 8, 8), MAX_REPLICAS_ANNOTATION, "13");
        let got = proportional_scale(&d, &[new.clone(), old.clone()], Some("new"));
        // allowed = 15 + 4 = 19, to add 6: old 8*19/13=11.69→12 (+4), new 5*19/13=7.3→7 (+2)
        assert_eq!(got, vec![("old".into(), 12), ("new".into(), 7)]);

        // scale down to 5: allowed 5+2=7, to add -6: old 8*7/13=4.3→4 (-4), new 5*7/13=2.7→3 (-2)
        let d5 = deploy(5, "25%", "25%");
        let got = proportional_scale(&d5, &[new.clone(), old.clone()], Some("new"));
        assert_eq!(got, vec![("old".into(), 4), ("new".into(), 3)]);

        // a single active ReplicaSet simply takes the new size (S02, S42)
        let got = proportional_scale(&d5, &[rs("only", 0, 2, 2)], Some("only"));
        assert_eq!(got, vec![("only".into(), 5)]);
        let got = proportional_scale(&d5, &[rs("x", 0, 0, 0), rs("y", 5, 0, 0)], None);
        assert_eq!(got, vec![("y".into(), 5)]);

        // to 0: everything goes to 0
        let d0 = deploy(0, "25%", "25%");
        let got = proportional_scale(&d0, &[new, old], Some("new"));
        assert_eq!(got, vec![("old".into(), 0), ("new".into(), 0)]);
    }

    #[test]
    fn recreate() {
        let mut d = deploy(3, "1", "1");
        d.spec.as_mut().unwrap().strategy.as_mut().unwrap().r#type = "Recreate".into();
        let mut old_zero_with_pods = rs("old", 0, 0, 0);
        old_zero_with_pods.status.as_mut().unwrap().replicas = 2;
        let cases = [
            (
                vec![rs("old", 0, 3, 3)],
                false,
                None,
                RecreateStep::ScaleDownOld(vec!["old".into()]),
            ),
            (
                vec![rs("old", 0, 0, 0)],
                true,
                None,
                RecreateStep::WaitForOldPods,
            ),
            (
                vec![old_zero_with_pods],
                false,
                None,
                RecreateStep::WaitForOldPods,
            ),
            (
                vec![rs("old", 0, 0, 0)],
                false,
                None,
                RecreateStep::ScaleUpNew(3),
            ),
            (
                vec![rs("old", 0, 0, 0)],
                false,
                Some(rs("new", 1, 0, 0)),
                RecreateStep::ScaleUpNew(3),
            ),
            (
                vec![rs("old", 0, 0, 0)],
                false,
                Some(rs("new", 1, 3, 3)),
                RecreateStep::Done,
            ),
        ];
        for (old, running, new, want) in cases {
            assert_eq!(recreate_step(&d, &old, running, new.as_ref()), want);
        }
    }
}
