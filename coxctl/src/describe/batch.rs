//! `describe` for Jobs and CronJobs, field by field as kubernetes/kubectl pkg/describe/describe.go
//! @eb83633 describeJob, describeCronJob and describeJobTemplate print them. Fields the API server
//! defaults (parallelism, completionMode, suspend, backoffLimit) are printed with their defaults
//! when absent, as they would be present on a real server's object.
use serde_json::Value;

use crate::jv::{arr, at, b, format_selector, i, opt_i, s};

use super::pod::pod_template;
use super::workloads::selector_head;
use super::{annotations, pairs, ts, W};
use crate::age;

pub(super) fn describe_job(w: &mut W, o: &Value) {
    selector_head(w, o);
    w.line(
        0,
        format!(
            "Parallelism:\t{}",
            opt_i(o, "spec.parallelism").unwrap_or(1)
        ),
    );
    match opt_i(o, "spec.completions") {
        Some(c) => w.line(0, format!("Completions:\t{c}")),
        None => w.line(0, "Completions:\t<unset>"),
    }
    let mode = s(o, "spec.completionMode").into_owned();
    w.line(
        0,
        format!(
            "Completion Mode:\t{}",
            if mode.is_empty() { "NonIndexed" } else { &mode }
        ),
    );
    w.line(0, format!("Suspend:\t{}", b(o, "spec.suspend")));
    w.line(
        0,
        format!(
            "Backoff Limit:\t{}",
            opt_i(o, "spec.backoffLimit").unwrap_or(6)
        ),
    );
    if let Some(t) = opt_i(o, "spec.ttlSecondsAfterFinished") {
        w.line(0, format!("TTL Seconds After Finished:\t{t}"));
    }
    let start = age::parse_rfc3339(&s(o, "status.startTime"));
    if start.is_some() {
        w.line(0, format!("Start Time:\t{}", ts(o, "status.startTime")));
    }
    let end = age::parse_rfc3339(&s(o, "status.completionTime"));
    if let Some(e) = end {
        w.line(
            0,
            format!("Completed At:\t{}", ts(o, "status.completionTime")),
        );
        // Only a finished Job has a Duration (a running one shows none).
        if let Some(st) = start {
            w.line(0, format!("Duration:\t{}", age::human_duration(e - st)));
        }
    }
    if let Some(a) = opt_i(o, "spec.activeDeadlineSeconds") {
        w.line(0, format!("Active Deadline Seconds:\t{a}s"));
    }
    let ready = opt_i(o, "status.ready").map_or(String::new(), |r| format!(" ({r} Ready)"));
    w.line(
        0,
        format!(
            "Pods Statuses:\t{} Active{ready} / {} Succeeded / {} Failed",
            i(o, "status.active"),
            i(o, "status.succeeded"),
            i(o, "status.failed")
        ),
    );
    if mode == "Indexed" {
        w.line(
            0,
            format!(
                "Completed Indexes:\t{}",
                cap_indexes(&s(o, "status.completedIndexes"), 50)
            ),
        );
    }
    pod_template(w, at(o, "spec.template"));
}

/// kubectl's capIndexesListOrNone: the list cut after the first comma at or past `soft_limit`
/// bytes, with "..."; "<none>" when empty.
fn cap_indexes(indexes: &str, soft_limit: usize) -> String {
    if indexes.is_empty() {
        return "<none>".into();
    }
    match indexes.bytes().skip(soft_limit).position(|c| c == b',') {
        Some(p) => format!("{}...", &indexes[..soft_limit + p + 1]),
        None => indexes.to_string(),
    }
}

pub(super) fn describe_cronjob(w: &mut W, o: &Value) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    w.line(0, format!("Schedule:\t{}", s(o, "spec.schedule")));
    let policy = s(o, "spec.concurrencyPolicy");
    w.line(
        0,
        format!(
            "Concurrency Policy:\t{}",
            if policy.is_empty() {
                "Allow".into()
            } else {
                policy.into_owned()
            }
        ),
    );
    w.line(
        0,
        format!(
            "Suspend:\t{}",
            if b(o, "spec.suspend") {
                "True"
            } else {
                "False"
            }
        ),
    );
    let unset = |v: Option<i64>| v.map_or("<unset>".to_string(), |v| v.to_string());
    w.line(
        0,
        format!(
            "Successful Job History Limit:\t{}",
            opt_i(o, "spec.successfulJobsHistoryLimit").unwrap_or(3)
        ),
    );
    w.line(
        0,
        format!(
            "Failed Job History Limit:\t{}",
            opt_i(o, "spec.failedJobsHistoryLimit").unwrap_or(1)
        ),
    );
    w.line(
        0,
        format!(
            "Starting Deadline Seconds:\t{}",
            opt_i(o, "spec.startingDeadlineSeconds")
                .map_or("<unset>".to_string(), |v| format!("{v}s"))
        ),
    );
    let sel = at(o, "spec.jobTemplate.spec.selector");
    w.line(
        0,
        format!(
            "Selector:\t{}",
            if sel.is_null() {
                "<unset>".into()
            } else {
                format_selector(sel)
            }
        ),
    );
    w.line(
        0,
        format!(
            "Parallelism:\t{}",
            unset(opt_i(o, "spec.jobTemplate.spec.parallelism"))
        ),
    );
    w.line(
        0,
        format!(
            "Completions:\t{}",
            unset(opt_i(o, "spec.jobTemplate.spec.completions"))
        ),
    );
    if let Some(a) = opt_i(o, "spec.jobTemplate.spec.activeDeadlineSeconds") {
        w.line(0, format!("Active Deadline Seconds:\t{a}s"));
    }
    pod_template(w, at(o, "spec.jobTemplate.spec.template"));
    let last = s(o, "status.lastScheduleTime");
    w.line(
        0,
        format!(
            "Last Schedule Time:\t{}",
            if last.is_empty() {
                "<unset>".into()
            } else {
                ts(o, "status.lastScheduleTime")
            }
        ),
    );
    let active: Vec<String> = arr(o, "status.active")
        .iter()
        .map(|r| s(r, "name").into_owned())
        .collect();
    w.line(
        0,
        format!(
            "Active Jobs:\t{}",
            if active.is_empty() {
                "<none>".into()
            } else {
                active.join(", ")
            }
        ),
    );
}
