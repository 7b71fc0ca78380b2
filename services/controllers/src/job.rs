//! Job controller logic, after Kubernetes' `pkg/controller/job`.
//!
//! - [`count_pods`]: active / succeeded / failed / ready pods and container restarts.
//! - [`pods_delta`]: how many pods to create or delete now, from completions and parallelism
//!   (NonIndexed, and work-queue mode when completions is unset); [`indexes_to_create`] for
//!   Indexed Jobs.
//! - [`backoff_delay`]: the delay before re-creating a pod after failures.
//! - [`finish`]: whether the Job is now Failed (BackoffLimitExceeded, DeadlineExceeded) or
//!   Complete, and [`finished_condition`] for the condition it then gets.
//! - [`ttl_expiry`]: when a finished Job with ttlSecondsAfterFinished is to be deleted.
//!
//! Counting: the Job's succeeded/failed totals outlive the pods (pods may be deleted), so the
//! caller adds the terminal pods it has not counted yet to `status.succeeded`/`status.failed`
//! (Kubernetes tracks these with a finalizer and uncountedTerminatedPods) and passes the
//! resulting totals in [`JobCounts`].
use std::collections::BTreeSet;
use std::time::Duration;

use coxswain_api::v1::{Condition, Job, Pod};

use crate::replicaset::{is_pod_active, is_pod_ready};
use crate::time::{format_rfc3339, parse_rfc3339};

/// backoffLimit when unset.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// The first re-creation delay after a failure.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest re-creation delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(360);
/// The annotation (and label) carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// At most this many pods are created per sync.
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;

/// Pod counts of a Job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Pods neither Succeeded nor Failed and not being deleted.
    pub active: i32,
    /// Succeeded pods (cumulative; see the module docs).
    pub succeeded: i32,
    /// Failed pods (cumulative; see the module docs).
    pub failed: i32,
    /// Active pods whose Ready condition is True.
    pub ready: i32,
    /// Container restarts summed over the active pods (init containers included); with
    /// restartPolicy OnFailure these count toward backoffLimit.
    pub restarts: i32,
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map_or("", |s| s.phase.as_str())
}

/// Count `pods` (the Job's pods currently present).
pub fn count_pods<P: std::borrow::Borrow<Pod>>(pods: &[P]) -> JobCounts {
    let mut c = JobCounts::default();
    for p in pods.iter().map(std::borrow::Borrow::borrow) {
        match phase(p) {
            "Succeeded" => c.succeeded += 1,
            "Failed" => c.failed += 1,
            _ if is_pod_active(p) => {
                c.active += 1;
                if is_pod_ready(p) {
                    c.ready += 1;
                }
                if let Some(s) = &p.status {
                    c.restarts += s
                        .init_container_statuses
                        .iter()
                        .chain(&s.container_statuses)
                        .map(|cs| cs.restart_count)
                        .sum::<i32>();
                }
            }
            _ => {}
        }
    }
    c
}

/// `spec.parallelism` (default 1).
pub fn parallelism(job: &Job) -> i32 {
    job.spec
        .as_ref()
        .and_then(|s| s.parallelism)
        .unwrap_or(1)
        .max(0)
}

/// `spec.completions`; `None` is work-queue mode.
pub fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref().and_then(|s| s.completions)
}

/// `spec.backoffLimit` (default 6).
pub fn backoff_limit(job: &Job) -> i32 {
    job.spec
        .as_ref()
        .and_then(|s| s.backoff_limit)
        .unwrap_or(DEFAULT_BACKOFF_LIMIT)
}

/// `spec.completionMode` is Indexed.
pub fn is_indexed(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|s| s.completion_mode.as_deref())
        .is_some_and(|m| m == "Indexed")
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false)
}

fn restart_policy(job: &Job) -> &str {
    job.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map_or("", |s| s.restart_policy.as_str())
}

/// How many pods a running Job should have active now (Kubernetes' `manageJob`):
/// - suspended: 0;
/// - work queue (completions unset): parallelism until the first success, then no new pods
///   (the active ones finish);
/// - otherwise: completions − succeeded, at most parallelism.
pub fn want_active(job: &Job, counts: &JobCounts) -> i32 {
    if suspended(job) {
        return 0;
    }
    let par = parallelism(job);
    match completions(job) {
        None if counts.succeeded > 0 => counts.active,
        None => par,
        Some(c) => (c - counts.succeeded).clamp(0, par),
    }
}

/// Pods to create (positive) or delete (negative) now; capped at
/// [`MAX_POD_CREATE_DELETE_PER_SYNC`] per sync. The caller applies the back-off
/// ([`backoff_delay`]) before creating replacements after failures.
pub fn pods_delta(job: &Job, counts: &JobCounts) -> i32 {
    let cap = MAX_POD_CREATE_DELETE_PER_SYNC as i32;
    (want_active(job, counts) - counts.active).clamp(-cap, cap)
}

/// The completion index of an Indexed Job's pod.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let m = pod.metadata.as_ref()?;
    m.annotations
        .get(COMPLETION_INDEX_ANNOTATION)
        .or_else(|| m.labels.get(COMPLETION_INDEX_ANNOTATION))?
        .parse()
        .ok()
        .filter(|i: &i32| *i >= 0)
}

/// For an Indexed Job: the lowest indexes in `0..completions` that neither succeeded nor have an
/// active pod, as many as parallelism allows next to the `active` indexes.
pub fn indexes_to_create(
    completions: i32,
    parallelism: i32,
    succeeded: &BTreeSet<i32>,
    active: &BTreeSet<i32>,
) -> Vec<i32> {
    let remaining = (0..completions).filter(|i| !succeeded.contains(i)).count() as i32;
    let want = remaining.min(parallelism);
    let room = (want - active.len() as i32).clamp(0, MAX_POD_CREATE_DELETE_PER_SYNC as i32);
    (0..completions)
        .filter(|i| !succeeded.contains(i) && !active.contains(i))
        .take(room as usize)
        .collect()
}

/// Render a set of indexes as Kubernetes' `completedIndexes`: `0-2,5,7-8`.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// Parse `completedIndexes` (`0-2,5`); malformed parts are skipped.
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    set.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    set.insert(i);
                }
            }
        }
    }
    set
}

/// The delay before creating a pod after `failures` consecutive failures:
/// `min(base · 2^(failures−1), cap)`, zero without failures (Kubernetes: 10 s doubling to 6 min).
pub fn backoff_delay(failures: u32, base: Duration, cap: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let shift = failures - 1;
    if shift >= 32 {
        return cap;
    }
    base.checked_mul(1u32 << shift).map_or(cap, |d| d.min(cap))
}

/// Why a Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Complete,
    Failed { reason: String, message: String },
}

/// The Job's backoffLimit is exceeded: more failed pods than backoffLimit or, with restartPolicy
/// OnFailure, at least backoffLimit container restarts (any restart when the limit is 0).
pub fn backoff_limit_exceeded(job: &Job, counts: &JobCounts) -> bool {
    let limit = backoff_limit(job);
    if counts.failed > limit {
        return true;
    }
    restart_policy(job) == "OnFailure"
        && if limit == 0 {
            counts.restarts > 0
        } else {
            counts.restarts >= limit
        }
}

/// `status.startTime` + activeDeadlineSeconds has been reached at `now`.
pub fn past_active_deadline(job: &Job, now: i64) -> bool {
    if suspended(job) {
        // Kubernetes: a suspended Job's deadline does not run (startTime restarts on resume).
        return false;
    }
    let Some(deadline) = job.spec.as_ref().and_then(|s| s.active_deadline_seconds) else {
        return false;
    };
    job.status
        .as_ref()
        .and_then(|s| parse_rfc3339(&s.start_time))
        .is_some_and(|start| now - start >= i64::from(deadline))
}

/// Whether a not-yet-finished Job finishes now. Failure wins over completion, backoff over the
/// deadline (Kubernetes' order). Complete: succeeded ≥ completions; in work-queue mode at least
/// one success and no active pod.
pub fn finish(job: &Job, counts: &JobCounts, now: i64) -> Option<Finish> {
    if backoff_limit_exceeded(job, counts) {
        return Some(Finish::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        });
    }
    if past_active_deadline(job, now) {
        return Some(Finish::Failed {
            reason: "DeadlineExceeded".into(),
            message: "Job was active longer than specified deadline".into(),
        });
    }
    let complete = match completions(job) {
        Some(c) => counts.succeeded >= c,
        None => counts.succeeded > 0 && counts.active == 0,
    };
    complete.then_some(Finish::Complete)
}

/// The condition a finished Job gets (type Complete or Failed, status True).
pub fn finished_condition(f: &Finish, now: i64) -> Condition {
    let (t, reason, message) = match f {
        Finish::Complete => ("Complete", String::new(), String::new()),
        Finish::Failed { reason, message } => ("Failed", reason.clone(), message.clone()),
    };
    Condition {
        r#type: t.into(),
        status: "True".into(),
        reason,
        message,
        last_transition_time: format_rfc3339(now),
        last_probe_time: format_rfc3339(now),
        ..Default::default()
    }
}

/// The type of the Job's True finished condition: `Some("Complete")`, `Some("Failed")`, or
/// `None` while it runs (for CronJob active/history bookkeeping).
pub fn finished_type(job: &Job) -> Option<&'static str> {
    let st = job.status.as_ref()?;
    st.conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.r#type.as_str() {
            "Complete" => Some("Complete"),
            "Failed" => Some("Failed"),
            _ => None,
        })
}

/// When the Job finished: completionTime, else the lastTransitionTime of its True Complete or
/// Failed condition.
pub fn finish_time(job: &Job) -> Option<i64> {
    let st = job.status.as_ref()?;
    parse_rfc3339(&st.completion_time).or_else(|| {
        st.conditions
            .iter()
            .find(|c| matches!(c.r#type.as_str(), "Complete" | "Failed") && c.status == "True")
            .and_then(|c| parse_rfc3339(&c.last_transition_time))
    })
}

/// When a finished Job with ttlSecondsAfterFinished is to be deleted (None if it has no TTL or
/// has not finished). The Job is deleted once `now >= expiry`.
pub fn ttl_expiry(job: &Job) -> Option<i64> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    Some(finish_time(job)? + i64::from(ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::tests::pod;
    use coxswain_api::v1::{JobSpec, JobStatus, PodSpec, PodTemplateSpec};

    fn job(completions: Option<i32>, parallelism: Option<i32>, policy: &str) -> Job {
        Job {
            spec: Some(JobSpec {
                completions,
                parallelism,
                template: Some(PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        restart_policy: policy.into(),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn counts(active: i32, succeeded: i32, failed: i32, restarts: i32) -> JobCounts {
        JobCounts {
            active,
            succeeded,
            failed,
            ready: 0,
            restarts,
        }
    }

    #[test]
    fn counting() {
        let pods = vec![
            pod("a", "Running", "n", Some(0), 2, 0),
            pod("b", "Pending", "", None, 0, 0),
            pod("c", "Succeeded", "n", None, 0, 0),
            pod("d", "Failed", "n", None, 0, 0),
            pod("e", "Failed", "n", None, 0, 0),
        ];
        assert_eq!(
            count_pods(&pods),
            JobCounts {
                active: 2,
                succeeded: 1,
                failed: 2,
                ready: 1,
                restarts: 2
            }
        );
    }

    #[test]
    fn deltas() {
        let cases = [
            // S11: defaults 1/1
            (job(None, None, "Never"), counts(0, 0, 0, 0), 1),
            (job(Some(1), Some(1), "Never"), counts(0, 0, 0, 0), 1),
            (job(Some(1), Some(1), "Never"), counts(1, 0, 0, 0), 0),
            // S12: a failed pod is replaced
            (job(Some(1), Some(1), "Never"), counts(0, 0, 3, 0), 1),
            (job(Some(1), Some(1), "Never"), counts(0, 1, 0, 0), 0),
            // S15: completions 6, parallelism 2
            (job(Some(6), Some(2), "Never"), counts(0, 0, 0, 0), 2),
            (job(Some(6), Some(2), "Never"), counts(1, 4, 0, 0), 1),
            (job(Some(6), Some(2), "Never"), counts(1, 5, 0, 0), 0),
            (job(Some(6), Some(2), "Never"), counts(2, 5, 0, 0), -1),
            // S14: work queue, parallelism 2
            (job(None, Some(2), "Never"), counts(0, 0, 0, 0), 2),
            (job(None, Some(2), "Never"), counts(1, 1, 0, 0), 0),
            (job(None, Some(2), "Never"), counts(0, 0, 1, 0), 2),
            // parallelism 0 pauses the Job
            (job(Some(3), Some(0), "Never"), counts(2, 0, 0, 0), -2),
        ];
        for (j, c, want) in cases {
            assert_eq!(pods_delta(&j, &c), want, "{c:?}");
        }
        let mut suspended = job(Some(3), Some(3), "Never");
        suspended.spec.as_mut().unwrap().suspend = Some(true);
        assert_eq!(pods_delta(&suspended, &counts(3, 0, 0, 0)), -3);
        // at most 500 pods per sync
        let big = job(Some(10_000), Some(10_000), "Never");
        assert_eq!(pods_delta(&big, &counts(0, 0, 0, 0)), 500);
    }

    #[test]
    fn indexed() {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        let cases = [
            (4, 2, set(&[]), set(&[]), vec![0, 1]),
            (4, 2, set(&[0]), set(&[1]), vec![2]),
            (4, 2, set(&[0, 2]), set(&[1]), vec![3]),
            (4, 2, set(&[0, 1, 2]), set(&[3]), vec![]),
            (4, 2, set(&[0, 1, 2, 3]), set(&[]), vec![]),
            (3, 5, set(&[1]), set(&[]), vec![0, 2]),
        ];
        for (c, p, s, a, want) in cases {
            assert_eq!(indexes_to_create(c, p, &s, &a), want, "{s:?} {a:?}");
        }
        let s = set(&[0, 1, 2, 5, 7, 8]);
        assert_eq!(format_indexes(&s), "0-2,5,7-8");
        assert_eq!(parse_indexes("0-2,5,7-8"), s);
        assert_eq!(format_indexes(&set(&[])), "");
        let mut p = pod("p", "Running", "n", None, 0, 0);
        p.metadata
            .as_mut()
            .unwrap()
            .annotations
            .insert(COMPLETION_INDEX_ANNOTATION.into(), "3".into());
        assert_eq!(completion_index(&p), Some(3));
    }

    #[test]
    fn backoff() {
        let (b, m) = (DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX);
        let cases = [
            (0, 0),
            (1, 10),
            (2, 20),
            (3, 40),
            (4, 80),
            (5, 160),
            (6, 320),
            (7, 360),
            (40, 360),
        ];
        for (f, want) in cases {
            assert_eq!(backoff_delay(f, b, m), Duration::from_secs(want), "{f}");
        }
        let custom = backoff_delay(3, Duration::from_secs(1), Duration::from_secs(3));
        assert_eq!(custom, Duration::from_secs(3));
    }

    fn with_status(mut j: Job, start: i64, deadline: Option<i32>) -> Job {
        j.spec.as_mut().unwrap().active_deadline_seconds = deadline;
        j.status = Some(JobStatus {
            start_time: format_rfc3339(start),
            ..Default::default()
        });
        j
    }

    #[test]
    fn finishing() {
        let failed = |r: &str| {
            Some(Finish::Failed {
                reason: r.into(),
                message: if r == "BackoffLimitExceeded" {
                    "Job has reached the specified backoff limit".into()
                } else {
                    "Job was active longer than specified deadline".into()
                },
            })
        };
        let never = job(Some(1), Some(1), "Never");
        let onf = job(Some(1), Some(1), "OnFailure");
        let mut limit4 = job(Some(4), Some(2), "Never");
        limit4.spec.as_mut().unwrap().backoff_limit = Some(4);
        let mut limit0 = job(Some(1), Some(1), "OnFailure");
        limit0.spec.as_mut().unwrap().backoff_limit = Some(0);
        let cases = [
            // S12: default limit 6 → the 7th failure fails the Job
            (never.clone(), counts(1, 0, 6, 0), 0, None),
            (
                never.clone(),
                counts(0, 0, 7, 0),
                0,
                failed("BackoffLimitExceeded"),
            ),
            // S13: OnFailure restarts count
            (onf.clone(), counts(1, 0, 0, 5), 0, None),
            (
                onf.clone(),
                counts(1, 0, 0, 6),
                0,
                failed("BackoffLimitExceeded"),
            ),
            (
                limit0,
                counts(1, 0, 0, 1),
                0,
                failed("BackoffLimitExceeded"),
            ),
            // S17: backoffLimit 4 → 5 failures
            (limit4.clone(), counts(2, 0, 4, 0), 0, None),
            (
                limit4.clone(),
                counts(1, 0, 5, 0),
                0,
                failed("BackoffLimitExceeded"),
            ),
            // S17 (55): activeDeadlineSeconds 100
            (
                with_status(limit4.clone(), 1000, Some(100)),
                counts(2, 0, 0, 0),
                1099,
                None,
            ),
            (
                with_status(limit4.clone(), 1000, Some(100)),
                counts(2, 0, 0, 0),
                1100,
                failed("DeadlineExceeded"),
            ),
            // backoff wins over the deadline
            (
                with_status(limit4.clone(), 1000, Some(100)),
                counts(0, 0, 5, 0),
                2000,
                failed("BackoffLimitExceeded"),
            ),
            // completion
            (never.clone(), counts(0, 1, 2, 0), 0, Some(Finish::Complete)),
            (
                limit4.clone(),
                counts(0, 4, 0, 0),
                0,
                Some(Finish::Complete),
            ),
            (limit4, counts(1, 3, 0, 0), 0, None),
            // S14: work queue completes when all pods are done and one succeeded
            (job(None, Some(2), "Never"), counts(1, 1, 0, 0), 0, None),
            (
                job(None, Some(2), "Never"),
                counts(0, 2, 0, 0),
                0,
                Some(Finish::Complete),
            ),
            (job(None, Some(2), "Never"), counts(0, 0, 0, 0), 0, None),
        ];
        for (j, c, now, want) in cases {
            assert_eq!(finish(&j, &c, now), want, "{c:?} at {now}");
        }
        let cond = finished_condition(&failed("DeadlineExceeded").unwrap(), 5);
        assert_eq!(
            (
                cond.r#type.as_str(),
                cond.status.as_str(),
                cond.reason.as_str()
            ),
            ("Failed", "True", "DeadlineExceeded")
        );
    }

    #[test]
    fn ttl() {
        let mut j = job(Some(1), Some(1), "Never");
        assert_eq!(ttl_expiry(&j), None);
        j.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(0);
        assert_eq!(ttl_expiry(&j), None); // not finished
        j.status = Some(JobStatus {
            conditions: vec![finished_condition(&Finish::Complete, 500)],
            ..Default::default()
        });
        assert_eq!(ttl_expiry(&j), Some(500));
        assert_eq!(finished_type(&j), Some("Complete"));
        assert_eq!(finished_type(&job(None, None, "Never")), None);
        j.status.as_mut().unwrap().completion_time = format_rfc3339(490);
        j.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(100);
        assert_eq!(ttl_expiry(&j), Some(590));
    }
}
