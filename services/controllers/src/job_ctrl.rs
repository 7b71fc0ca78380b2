//! The Job controller (Kubernetes' `syncJob`/`manageJob`): count the Job's pods, finish it
//! (Complete, or Failed with BackoffLimitExceeded / DeadlineExceeded, active pods deleted),
//! otherwise create or delete pods toward the wanted active count (after the failure back-off),
//! write status, and delete finished Jobs whose ttlSecondsAfterFinished has passed.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{Job, JobStatus, Pod};
use coxswain_api::Resource;
use coxswain_client::{DeleteParams, ObjectRef};
use tokio::time::Instant;

use crate::job::{
    backoff_delay, completion_index, completions, count_pods, finish, finished_condition,
    finished_type, format_indexes, indexes_to_create, is_indexed, parallelism, parse_indexes,
    pods_delta, ttl_expiry, Finish, COMPLETION_INDEX_ANNOTATION,
};
use crate::manager::{exp_key, Ctx};
use crate::podctl::{create_pods, delete_pods, now, pod_from_template};
use crate::replicaset::{is_pod_active, pods_to_delete};
use crate::runtime::{controller_of, controller_ref, split_key, Action, Result};
use crate::time::{format_rfc3339, parse_rfc3339};

/// When each Job last saw its failed-pod count grow: the back-off runs from then.
#[derive(Debug, Default)]
pub struct FailureClock(Mutex<HashMap<String, (i32, Instant)>>);

impl FailureClock {
    /// Record `failed`; returns when the latest failure was first seen.
    fn observe(&self, key: &str, failed: i32) -> Option<Instant> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if failed == 0 {
            m.remove(key);
            return None;
        }
        let e = m.entry(key.to_string()).or_insert((failed, Instant::now()));
        if failed > e.0 {
            *e = (failed, Instant::now());
        }
        Some(e.1)
    }
    fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map_or("", |s| s.phase.as_str())
}

pub async fn reconcile(ctx: Arc<Ctx>, key: String) -> Result<Action> {
    let (ns, name) = split_key(&key);
    let ek = exp_key("Job", ns, name);
    let Some(job) = ctx.jobs.get(ns, name) else {
        ctx.exp.forget(&ek);
        ctx.job_failures.forget(&key);
        return Ok(Action::Await);
    };
    let mut job = (*job).clone();
    let now = now();
    let uid = job.metadata().uid.clone();
    // Expectations first, then the cache, as upstream's syncs do: read the other way round, a
    // pod created by the previous sync can land in the cache (satisfying the expectations)
    // after this sync read the cache without it, and this sync would create it twice.
    let needs_sync = ctx.exp.satisfied(&ek);
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .by_owner(&uid)
        .into_iter()
        .filter(|p| controller_of(p.metadata()).is_some_and(|r| r.uid == uid))
        .collect();

    if finished_type(&job).is_some() {
        // TTL after finished.
        if let Some(expiry) = ttl_expiry(&job) {
            if now >= expiry {
                let m = job.metadata();
                match ctx
                    .client
                    .delete::<Job>(
                        &m.namespace,
                        &m.name,
                        &DeleteParams {
                            propagation: Some("Foreground".into()),
                            precondition_uid: Some(m.uid.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
                return Ok(Action::Await);
            }
            return Ok(Action::Requeue(Duration::from_secs((expiry - now) as u64)));
        }
        return Ok(Action::Await);
    }
    if !job.metadata().deletion_timestamp.is_empty() {
        return Ok(Action::Await);
    }

    let present = count_pods(&pods);
    let prev = job.status.clone().unwrap_or_default();
    let mut counts = present;
    counts.succeeded = present.succeeded.max(prev.succeeded);
    counts.failed = present.failed.max(prev.failed);
    let suspended = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);

    let mut status = JobStatus {
        conditions: prev.conditions.clone(),
        start_time: prev.start_time.clone(),
        completion_time: prev.completion_time.clone(),
        uncounted_terminated_pods: prev.uncounted_terminated_pods.clone(),
        failed_indexes: prev.failed_indexes.clone(),
        terminating: prev.terminating,
        ..Default::default()
    };
    // suspend: condition Suspended=True (JobSuspended) and the active pods go (pods_delta wants
    // none); on resume Suspended=False (JobResumed) and the start time restarts, so
    // activeDeadlineSeconds counts from the resume (Kubernetes' behaviour).
    let was_suspended = prev
        .conditions
        .iter()
        .any(|c| c.r#type == "Suspended" && c.status == "True");
    if suspended != was_suspended
        && (suspended || prev.conditions.iter().any(|c| c.r#type == "Suspended"))
    {
        let (st, reason, message, event) = if suspended {
            ("True", "JobSuspended", "Job suspended", "Suspended")
        } else {
            ("False", "JobResumed", "Job resumed", "Resumed")
        };
        status.conditions.retain(|c| c.r#type != "Suspended");
        status.conditions.push(coxswain_api::v1::Condition {
            r#type: "Suspended".into(),
            status: st.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: format_rfc3339(now),
            last_probe_time: format_rfc3339(now),
            ..Default::default()
        });
        ctx.rec(coxswain_api::Kind::Job)
            .normal(&ObjectRef::from(&job), event, message);
        if !suspended {
            status.start_time = format_rfc3339(now);
        }
    }
    if status.start_time.is_empty() && !suspended {
        status.start_time = format_rfc3339(now);
    }
    // Indexed: completed indexes from succeeded pods (kept across pod deletion).
    let mut completed = parse_indexes(&prev.completed_indexes);
    if is_indexed(&job) {
        let total = completions(&job).unwrap_or(0);
        for p in &pods {
            if phase(p) == "Succeeded" {
                if let Some(i) = completion_index(p).filter(|i| *i < total) {
                    completed.insert(i);
                }
            }
        }
        counts.succeeded = completed.len() as i32;
        status.completed_indexes = format_indexes(&completed);
    }
    job.status = Some(status.clone());

    let mut action = Action::Await;
    let oref = ObjectRef::from(&job);
    if let Some(f) = finish(&job, &counts, now) {
        // Kill what still runs.
        let active: Vec<Arc<Pod>> = pods.iter().filter(|p| is_pod_active(p)).cloned().collect();
        if !active.is_empty() {
            if let Some(e) = delete_pods(&ctx, &job, &ek, active).await {
                return Err(e.into());
            }
        }
        let cond = finished_condition(&f, now);
        status.conditions.retain(|c| c.r#type != cond.r#type);
        status.conditions.push(cond);
        match &f {
            Finish::Complete => {
                status.completion_time = format_rfc3339(now);
                ctx.rec(coxswain_api::Kind::Job)
                    .normal(&oref, "Completed", "Job completed");
            }
            Finish::Failed { reason, message } => {
                ctx.rec(coxswain_api::Kind::Job)
                    .warning(&oref, reason, message);
            }
        }
        counts.active = 0;
        counts.ready = 0;
        if let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) {
            action = Action::Requeue(Duration::from_secs(u64::try_from(ttl).unwrap_or(0)));
        }
    } else if needs_sync {
        let delta = pods_delta(&job, &counts);
        if delta > 0 {
            // Back-off after failures: 10 s doubling (configurable), from the latest failure.
            let wait = ctx
                .job_failures
                .observe(&key, counts.failed)
                .map(|since| {
                    let d = backoff_delay(
                        counts.failed as u32,
                        ctx.cfg.job_backoff_base,
                        ctx.cfg.job_backoff_max,
                    );
                    (since + d).saturating_duration_since(Instant::now())
                })
                .unwrap_or_default();
            if !wait.is_zero() {
                action = Action::Requeue(wait);
            } else {
                let template = job
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.clone())
                    .unwrap_or_default();
                let owner = controller_ref("batch/v1", "Job", job.metadata());
                let new: Vec<Pod> = if is_indexed(&job) {
                    let active: BTreeSet<i32> = pods
                        .iter()
                        .filter(|p| is_pod_active(p))
                        .filter_map(|p| completion_index(p))
                        .collect();
                    indexes_to_create(
                        completions(&job).unwrap_or(0),
                        parallelism(&job),
                        &completed,
                        &active,
                    )
                    .into_iter()
                    .map(|i| {
                        let mut p = pod_from_template(
                            &template,
                            ns,
                            owner.clone(),
                            &format!("{name}-{i}-"),
                        );
                        let m = p.metadata.get_or_insert_with(Default::default);
                        m.annotations
                            .insert(COMPLETION_INDEX_ANNOTATION.into(), i.to_string());
                        m.labels
                            .insert(COMPLETION_INDEX_ANNOTATION.into(), i.to_string());
                        if let Some(s) = p.spec.as_mut() {
                            if s.hostname.is_empty() {
                                s.hostname = format!("{name}-{i}");
                            }
                        }
                        p
                    })
                    .collect()
                } else {
                    (0..delta)
                        .map(|_| {
                            pod_from_template(&template, ns, owner.clone(), &format!("{name}-"))
                        })
                        .collect()
                };
                if !new.is_empty() {
                    ctx.exp.expect_creations(&ek, new.len());
                    let (n, err) = create_pods(&ctx, &job, &ek, new).await;
                    counts.active += n as i32;
                    if let Some(e) = err {
                        return Err(e.into());
                    }
                }
            }
        } else if delta < 0 {
            let active: Vec<Arc<Pod>> = pods.iter().filter(|p| is_pod_active(p)).cloned().collect();
            let victims: Vec<Arc<Pod>> = pods_to_delete(&active, (-delta) as usize)
                .into_iter()
                .map(|i| active[i].clone())
                .collect();
            counts.active -= victims.len() as i32;
            if let Some(e) = delete_pods(&ctx, &job, &ek, victims).await {
                return Err(e.into());
            }
        }
        // activeDeadlineSeconds: look again when it passes.
        if let (Some(d), Some(start)) = (
            job.spec.as_ref().and_then(|s| s.active_deadline_seconds),
            parse_rfc3339(&status.start_time),
        ) {
            let left = (start + i64::from(d) - now).max(0) as u64;
            action = action.min(Action::Requeue(Duration::from_secs(left)));
        }
    }

    status.active = counts.active;
    status.succeeded = counts.succeeded;
    status.failed = counts.failed;
    status.ready = Some(counts.ready);
    let mut nj = job.clone();
    nj.status = Some(status);
    let cur = ctx.jobs.get(ns, name);
    if cur.as_ref().and_then(|j| j.status.as_ref()) != nj.status.as_ref() {
        if let Some(cur) = cur {
            nj.metadata_mut().resource_version = cur.metadata().resource_version.clone();
        }
        match ctx.client.update_status(&nj).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(Action::Await),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(action)
}
