//! CronJobs with a fast controller clock: schedules, history, concurrency policies (S19/S21)
//! and spec.timeZone.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{CronJob, Job};
use coxswain_api::Resource;
use coxswain_client::{Client, ListParams};
use coxswain_test_support::{scenarios_dir, wait_for};

use crate::common::*;

/// S19/S21: with the CronJob clock at 60× (a minute per second), `*/1 * * * *` starts a Job per
/// (controller) minute named `<cronjob>-<minutes>`, history is trimmed to 3; Forbid never has
/// two active Jobs; Replace never lets a long run complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_schedules_with_a_fast_clock() {
    let cx = up(&["--cron-clock-rate", "60", "--cron-resync", "200ms"]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let d = scenarios_dir();
    let d = d.to_str().unwrap();
    // The seed's Job echoes and exits: in the sim runtime that is a run of 100 ms.
    let manifest = std::fs::read_to_string(format!("{d}/12-cronjob-hello-v2alpha1.yaml"))
        .unwrap()
        .replace(
            "      template:\n        spec:\n",
            "      template:\n        metadata:\n          annotations:\n            sim.coxswain.io/run-duration: 100ms\n        spec:\n",
        );
    assert!(manifest.contains("run-duration"));
    let out = cx
        .coxctl_in(&["apply", "-f", "-"], None, Some(&manifest))
        .success()
        .stdout;
    assert!(out.contains("cronjob.batch/hello"), "{out}");
    // Jobs complete at once in the sim runtime: at least 4 runs happen, 3 successful kept.
    let jobs = wait_for("several runs", T, || async {
        let cj = c.get::<CronJob>("default", "hello").await.ok()??;
        let st = cj.status?;
        let (jobs, _) = c
            .list::<Job>("default", &ListParams::default())
            .await
            .ok()?;
        let minutes: Vec<i64> = jobs
            .iter()
            .filter_map(|j| j.metadata().name.strip_prefix("hello-")?.parse().ok())
            .collect();
        (!st.last_successful_time.is_empty()
            && minutes.len() == 3
            && minutes.iter().max()? - minutes.iter().min()? >= 2)
            .then_some(jobs)
    })
    .await
    .unwrap();
    for j in &jobs {
        assert_eq!(j.metadata().owner_references[0].kind, "CronJob");
    }
    let out = cx.coxctl(&["get", "cronjob", "hello"]).success().stdout;
    assert!(
        out.contains("*/1 * * * *") && out.contains("False"),
        "{out}"
    );
    let desc = cx
        .coxctl(&["describe", "cronjob", "hello"])
        .success()
        .stdout;
    for want in [
        "Schedule:",
        "*/1 * * * *",
        "Concurrency Policy:",
        "Allow",
        "Last Schedule Time:",
        "SuccessfulCreate",
        "SawCompletedJob",
    ] {
        assert!(desc.contains(want), "{want:?} missing in\n{desc}");
    }
    // create job --from
    let out = cx
        .coxctl(&["create", "job", "manual-1", "--from=cronjob/hello"])
        .success()
        .stdout;
    assert_eq!(out.trim(), "job.batch/manual-1 created");
    cx.coxctl(&["delete", "cronjob", "hello"]).success();

    // Forbid and Replace with runs longer than the schedule (sim run-duration 3 s = 3 minutes).
    for (name, policy) in [("forbid", "Forbid"), ("replace", "Replace")] {
        let m = format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: \"* * * * *\"\n  concurrencyPolicy: {policy}\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          annotations:\n            sim.coxswain.io/run-duration: 3s\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image: busybox\n"
        );
        cx.coxctl_in(&["apply", "-f", "-"], None, Some(&m))
            .success();
    }
    let max_active: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let seen: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>> = Arc::default();
    wait_for(
        "forbid skipped and replace replaced",
        Duration::from_secs(20),
        || {
            let c = c.clone();
            let max_active = max_active.clone();
            let seen = seen.clone();
            async move {
                let (jobs, _) = c
                    .list::<Job>("default", &ListParams::default())
                    .await
                    .ok()?;
                let mut per: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
                for j in &jobs {
                    let Some(owner) = j.metadata().owner_references.first() else {
                        continue;
                    };
                    let e = per.entry(owner.name.clone()).or_default();
                    seen.lock()
                        .unwrap()
                        .entry(owner.name.clone())
                        .or_default()
                        .insert(j.metadata().name.clone());
                    let st = j.status.clone().unwrap_or_default();
                    let done = st.conditions.iter().any(|c| c.status == "True");
                    if !done && j.metadata().deletion_timestamp.is_empty() {
                        e.1 += 1;
                    }
                    if st
                        .conditions
                        .iter()
                        .any(|c| c.r#type == "Complete" && c.status == "True")
                    {
                        e.2 += 1;
                    }
                }
                let mut m = max_active.lock().unwrap();
                for (k, v) in &per {
                    let x = m.entry(k.clone()).or_default();
                    *x = (*x).max(v.1);
                }
                let forbid = per.get("forbid").copied().unwrap_or_default();
                let replaced = seen.lock().unwrap().get("replace").map_or(0, |s| s.len());
                // Replace has started at least 3 Jobs (each replacing the last); Forbid let one finish.
                (replaced >= 3 && forbid.2 >= 1).then_some(())
            }
        },
    )
    .await
    .unwrap();
    let m = max_active.lock().unwrap().clone();
    assert!(
        m.get("forbid").copied().unwrap_or(0) <= 1,
        "Forbid ran two Jobs at once: {m:?}"
    );
    assert!(
        m.get("replace").copied().unwrap_or(0) <= 1,
        "Replace ran two Jobs at once: {m:?}"
    );
    let (jobs, _) = c
        .list::<Job>("default", &ListParams::default())
        .await
        .unwrap();
    assert!(
        !jobs.iter().any(|j| j
            .metadata()
            .owner_references
            .first()
            .is_some_and(|o| o.name == "replace")
            && j.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Complete"))),
        "a replaced run completed"
    );
}

/// spec.timeZone: an unknown zone is refused at admission with Kubernetes' message, and a named
/// zone's schedule runs in its local time: `30 9 * * *` in Asia/Kolkata (+05:30) is 04:00 UTC.
/// The controller's clock is started a minute before the next 04:00Z and runs at 10×.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_runs_in_its_time_zone() {
    assert!(
        coxswain_api::tz::database_present(),
        "the tz database is missing (no America/New_York under {:?}): install tzdata or set ZONEINFO",
        coxswain_api::tz::search_dirs()
    );
    let now = coxswain_api::time::now_secs();
    let day = 86_400;
    let four = 4 * 3600;
    // The next 04:00Z at least a minute away.
    let target = (now + 60 - four).div_euclid(day) * day + day + four;
    let offset = format!("{}s", target - now - 60);
    let cx = up(&[
        "--cron-clock-offset",
        &offset,
        "--cron-clock-rate",
        "10",
        "--cron-resync",
        "200ms",
    ]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let cj = |name: &str, tz: &str| {
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: \"30 9 * * *\"\n  timeZone: {tz}\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image: busybox\n"
        )
    };
    let out = cx
        .coxctl_in(&["apply", "-f", "-"], None, Some(&cj("bad", "Nope/Zone")))
        .failure();
    assert!(
        out.stderr
            .contains("spec.timeZone: Invalid value: \"Nope/Zone\": unknown time zone Nope/Zone"),
        "{}",
        out.stderr
    );
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(&cj("tz", "Asia/Kolkata")))
        .success();
    let want = format!("tz-{}", target / 60);
    wait_for("the 09:30 IST run", T, || async {
        let (jobs, _) = c
            .list::<Job>("default", &ListParams::default())
            .await
            .ok()?;
        jobs.iter().any(|j| j.metadata().name == want).then_some(())
    })
    .await
    .unwrap();
    // The controller creates the Job, then records the run in the CronJob's status.
    let want_time = coxswain_api::time::format_rfc3339(target);
    wait_for("lastScheduleTime of the 09:30 IST run", T, || async {
        let cj = c.get::<CronJob>("default", "tz").await.ok()??;
        (cj.status?.last_schedule_time == want_time).then_some(())
    })
    .await
    .unwrap();
    let (jobs, _) = c
        .list::<Job>("default", &ListParams::default())
        .await
        .unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j.metadata().name.as_str()).collect();
    assert_eq!(names, vec![want.as_str()], "exactly one run");
}
