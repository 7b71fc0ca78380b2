//! The CronJob controller (Kubernetes' `ControllerV2.syncCronJob`): track the CronJob's Jobs
//! (status.active, lastSuccessfulTime, `SawCompletedJob`), trim finished Jobs to the history
//! limits, and start the most recent missed run (respecting suspend, startingDeadlineSeconds and
//! concurrencyPolicy) as Job `<cronjob>-<scheduled minutes>`; then sleep until the next start
//! time.
//!
//! Time: the controller's clock is the wall clock, shifted by `cron_clock_offset` and sped up by
//! `cron_clock_rate` from the moment the controllers started (both flags exist for tests: a
//! rate of 30 makes a minute pass in 2 s). Production runs with offset 0 and rate 1.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use coxswain_api::v1::{CronJob, CronJobStatus, Job, ObjectMeta, ObjectReference};
use coxswain_api::Resource;
use coxswain_client::{DeleteParams, ObjectRef};

use crate::cron::{
    cron_decision, history_to_delete, job_name, ConcurrencyPolicy, CronAction, Schedule,
};
use crate::job::{finish_time, finished_type};
use crate::manager::{Config, Ctx};
use crate::runtime::{controller_of, controller_ref, split_key, Action, Result};
use crate::time::{format_rfc3339, parse_rfc3339};

/// The annotation carrying a cron Job's scheduled time.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

fn wall() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The controller's clock (seconds since the epoch): see the module docs.
pub fn cron_now(cfg: &Config) -> i64 {
    static START: OnceLock<f64> = OnceLock::new();
    let start = *START.get_or_init(wall);
    let elapsed = wall() - start;
    (start + cfg.cron_clock_offset.as_secs_f64() + elapsed * cfg.cron_clock_rate.max(0.001)) as i64
}

fn job_ref(j: &Job) -> ObjectReference {
    let m = j.metadata();
    ObjectReference {
        kind: "Job".into(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        api_version: "batch/v1".into(),
        ..Default::default()
    }
}

fn start_time(j: &Job) -> Option<i64> {
    j.status
        .as_ref()
        .and_then(|s| parse_rfc3339(&s.start_time))
        .or_else(|| parse_rfc3339(&j.metadata().creation_timestamp))
}

async fn delete_job(ctx: &Arc<Ctx>, cj: &CronJob, j: &Job) -> Result<()> {
    let m = j.metadata();
    match ctx
        .client
        .delete::<Job>(
            &m.namespace,
            &m.name,
            &DeleteParams {
                propagation: Some("Background".into()),
                precondition_uid: Some(m.uid.clone()),
                ..Default::default()
            },
        )
        .await
    {
        Ok(()) => {
            ctx.rec(coxswain_api::Kind::CronJob).normal(
                &ObjectRef::from(cj),
                "SuccessfulDelete",
                format!("Deleted job {}", m.name),
            );
            Ok(())
        }
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn reconcile(ctx: Arc<Ctx>, key: String) -> Result<Action> {
    let (ns, name) = split_key(&key);
    let Some(cj) = ctx.cronjobs.get(ns, name) else {
        return Ok(Action::Await);
    };
    if !cj.metadata().deletion_timestamp.is_empty() {
        return Ok(Action::Await);
    }
    let cj = (*cj).clone();
    let oref = ObjectRef::from(&cj);
    let spec = cj.spec.clone().unwrap_or_default();
    let now = cron_now(&ctx.cfg);
    let uid = cj.metadata().uid.clone();
    let jobs: Vec<Arc<Job>> = ctx
        .jobs
        .by_owner(&uid)
        .into_iter()
        .filter(|j| controller_of(j.metadata()).is_some_and(|r| r.uid == uid))
        .collect();
    let prev = cj.status.clone().unwrap_or_default();
    let mut status = CronJobStatus {
        active: vec![],
        last_schedule_time: prev.last_schedule_time.clone(),
        last_successful_time: prev.last_successful_time.clone(),
    };
    let mut active: Vec<Arc<Job>> = Vec::new();
    let mut succeeded: Vec<(String, Option<i64>)> = Vec::new();
    let mut failed: Vec<(String, Option<i64>)> = Vec::new();
    for j in &jobs {
        let deleting = !j.metadata().deletion_timestamp.is_empty();
        match finished_type(j) {
            None if !deleting => active.push(j.clone()),
            None => {}
            Some(t) => {
                let was_active = prev.active.iter().any(|r| r.uid == j.metadata().uid);
                if was_active {
                    ctx.rec(coxswain_api::Kind::CronJob).normal(
                        &oref,
                        "SawCompletedJob",
                        format!("Saw completed job: {}, status: {t}", j.metadata().name),
                    );
                }
                if t == "Complete" {
                    if let Some(done) = finish_time(j) {
                        let cur = parse_rfc3339(&status.last_successful_time);
                        if cur.is_none_or(|c| done > c) {
                            status.last_successful_time = format_rfc3339(done);
                        }
                    }
                    succeeded.push((j.metadata().name.clone(), start_time(j)));
                } else if !deleting {
                    failed.push((j.metadata().name.clone(), start_time(j)));
                }
            }
        }
    }
    // History limits.
    for victim in history_to_delete(
        &succeeded,
        Some(spec.successful_jobs_history_limit.unwrap_or(3)),
    )
    .into_iter()
    .chain(history_to_delete(
        &failed,
        Some(spec.failed_jobs_history_limit.unwrap_or(1)),
    )) {
        if let Some(j) = jobs.iter().find(|j| j.metadata().name == victim) {
            delete_job(&ctx, &cj, j).await?;
        }
    }

    let suspended = spec.suspend.unwrap_or(false);
    // As Kubernetes: an unloadable spec.timeZone (the tz database changed since admission, or
    // the object predates validation) is an UnknownTimeZone warning and nothing starts.
    if let Some(tz) = spec.time_zone.as_deref() {
        if let Err(e) = crate::cron::time_zone(Some(tz)) {
            ctx.rec(coxswain_api::Kind::CronJob).warning(
                &oref,
                "UnknownTimeZone",
                format!("invalid timeZone: {tz:?}: {e}"),
            );
            status.active = active.iter().map(|j| job_ref(j)).collect();
            write_status(&ctx, &cj, status).await?;
            return Ok(Action::Await);
        }
    }
    let schedule = match Schedule::parse_in(&spec.schedule, spec.time_zone.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            ctx.rec(coxswain_api::Kind::CronJob).warning(
                &oref,
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            );
            status.active = active.iter().map(|j| job_ref(j)).collect();
            write_status(&ctx, &cj, status).await?;
            return Ok(Action::Await);
        }
    };
    let policy =
        ConcurrencyPolicy::parse(&spec.concurrency_policy).unwrap_or(ConcurrencyPolicy::Allow);
    let earliest = parse_rfc3339(&prev.last_schedule_time)
        .or_else(|| parse_rfc3339(&cj.metadata().creation_timestamp))
        .unwrap_or(now);
    let decision = cron_decision(
        &schedule,
        earliest,
        now,
        spec.starting_deadline_seconds.map(i64::from),
        suspended,
        policy,
        active.len(),
    );
    if decision.missed.too_many {
        ctx.rec(coxswain_api::Kind::CronJob).warning(
            &oref,
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
        );
    }
    match decision.action {
        CronAction::Nothing => {}
        CronAction::Forbidden { .. } => {
            ctx.rec(coxswain_api::Kind::CronJob).normal(
                &oref,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            );
        }
        CronAction::Start {
            scheduled,
            replace_active,
        } => {
            let jname = job_name(name, scheduled);
            if replace_active {
                for j in active.drain(..) {
                    if j.metadata().name != jname {
                        delete_job(&ctx, &cj, &j).await?;
                    }
                }
            }
            if ctx.jobs.get(ns, &jname).is_none() {
                let tpl = spec.job_template.clone().unwrap_or_default();
                let tm = tpl.metadata.unwrap_or_default();
                let mut annotations = tm.annotations;
                annotations.insert(
                    SCHEDULED_TIMESTAMP_ANNOTATION.into(),
                    format_rfc3339(scheduled),
                );
                let job = Job {
                    metadata: Some(ObjectMeta {
                        name: jname.clone(),
                        namespace: ns.to_string(),
                        labels: tm.labels,
                        annotations,
                        owner_references: vec![controller_ref(
                            "batch/v1",
                            "CronJob",
                            cj.metadata(),
                        )],
                        ..Default::default()
                    }),
                    spec: tpl.spec,
                    ..Default::default()
                };
                match ctx.client.create(&job).await {
                    Ok(j) => {
                        ctx.rec(coxswain_api::Kind::CronJob).normal(
                            &oref,
                            "SuccessfulCreate",
                            format!("Created job {jname}"),
                        );
                        active.push(Arc::new(j));
                    }
                    Err(e) if e.is_already_exists() => {}
                    Err(e) => {
                        ctx.rec(coxswain_api::Kind::CronJob).warning(
                            &oref,
                            "FailedCreate",
                            format!("Error creating job: {e}"),
                        );
                        return Err(e.into());
                    }
                }
            }
            status.last_schedule_time = format_rfc3339(scheduled);
        }
    }
    status.active = active.iter().map(|j| job_ref(j)).collect();
    status.active.sort_by(|a, b| a.name.cmp(&b.name));
    write_status(&ctx, &cj, status).await?;
    // Sleep until the next start time (in controller-clock seconds, scaled to real time).
    Ok(match decision.next {
        Some(next) if !suspended => {
            let secs = ((next - now).max(0) as f64 + 0.05) / ctx.cfg.cron_clock_rate.max(0.001);
            Action::Requeue(Duration::from_secs_f64(secs))
        }
        _ => Action::Await,
    })
}

async fn write_status(ctx: &Arc<Ctx>, cj: &CronJob, status: CronJobStatus) -> Result<()> {
    if cj.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut n = cj.clone();
    n.status = Some(status);
    match ctx.client.update_status(&n).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
