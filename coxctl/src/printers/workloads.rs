//! Rows of the workload kinds: Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob,
//! HorizontalPodAutoscaler, ControllerRevision.
use serde_json::Value;

use crate::age;
use crate::jv::{arr, at, format_labels, format_selector, i, map, opt_b, opt_i, s};

fn name(o: &Value) -> String {
    s(o, "metadata.name").into_owned()
}

fn age_of(o: &Value, now: i64) -> String {
    age::since(&s(o, "metadata.creationTimestamp"), now)
}

/// CONTAINERS and IMAGES of a pod template spec.
fn containers_images(pod_spec: &Value) -> (String, String) {
    let cs = arr(pod_spec, "containers");
    let names = cs
        .iter()
        .map(|c| s(c, "name").into_owned())
        .collect::<Vec<_>>()
        .join(",");
    let images = cs
        .iter()
        .map(|c| s(c, "image").into_owned())
        .collect::<Vec<_>>()
        .join(",");
    (names, images)
}

fn wide_template(row: &mut Vec<String>, o: &Value, template_spec: &str, selector: &str) {
    let (c, im) = containers_images(at(o, template_spec));
    row.push(c);
    row.push(im);
    row.push(format_selector(at(o, selector)));
}

pub const DEPLOYMENT: &[&str] = &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"];
pub const DEPLOYMENT_WIDE: &[&str] = &["CONTAINERS", "IMAGES", "SELECTOR"];

pub fn deployment(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let desired = opt_i(o, "spec.replicas").unwrap_or(1);
    let mut row = vec![
        name(o),
        format!("{}/{}", i(o, "status.readyReplicas"), desired),
        i(o, "status.updatedReplicas").to_string(),
        i(o, "status.availableReplicas").to_string(),
        age_of(o, now),
    ];
    if wide {
        wide_template(&mut row, o, "spec.template.spec", "spec.selector");
    }
    row
}

pub const REPLICASET: &[&str] = &["NAME", "DESIRED", "CURRENT", "READY", "AGE"];
pub const REPLICASET_WIDE: &[&str] = &["CONTAINERS", "IMAGES", "SELECTOR"];

pub fn replicaset(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let mut row = vec![
        name(o),
        opt_i(o, "spec.replicas").unwrap_or(1).to_string(),
        i(o, "status.replicas").to_string(),
        i(o, "status.readyReplicas").to_string(),
        age_of(o, now),
    ];
    if wide {
        wide_template(&mut row, o, "spec.template.spec", "spec.selector");
    }
    row
}

pub const DAEMONSET: &[&str] = &[
    "NAME",
    "DESIRED",
    "CURRENT",
    "READY",
    "UP-TO-DATE",
    "AVAILABLE",
    "NODE SELECTOR",
    "AGE",
];
pub const DAEMONSET_WIDE: &[&str] = &["CONTAINERS", "IMAGES", "SELECTOR"];

pub fn daemonset(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let mut row = vec![
        name(o),
        i(o, "status.desiredNumberScheduled").to_string(),
        i(o, "status.currentNumberScheduled").to_string(),
        i(o, "status.numberReady").to_string(),
        i(o, "status.updatedNumberScheduled").to_string(),
        i(o, "status.numberAvailable").to_string(),
        format_labels(&map(o, "spec.template.spec.nodeSelector")),
        age_of(o, now),
    ];
    if wide {
        wide_template(&mut row, o, "spec.template.spec", "spec.selector");
    }
    row
}

pub const STATEFULSET: &[&str] = &["NAME", "READY", "AGE"];
pub const STATEFULSET_WIDE: &[&str] = &["CONTAINERS", "IMAGES"];

pub fn statefulset(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let mut row = vec![
        name(o),
        format!(
            "{}/{}",
            i(o, "status.readyReplicas"),
            opt_i(o, "spec.replicas").unwrap_or(1)
        ),
        age_of(o, now),
    ];
    if wide {
        let (c, im) = containers_images(at(o, "spec.template.spec"));
        row.push(c);
        row.push(im);
    }
    row
}

fn has_condition(o: &Value, ty: &str) -> bool {
    arr(o, "status.conditions")
        .iter()
        .any(|c| s(c, "type") == ty && s(c, "status") == "True")
}

/// The STATUS of a Job as kubectl 1.30 prints it.
pub fn job_status(o: &Value) -> &'static str {
    if has_condition(o, "Complete") {
        "Complete"
    } else if has_condition(o, "Failed") {
        "Failed"
    } else if !s(o, "metadata.deletionTimestamp").is_empty() {
        "Terminating"
    } else if has_condition(o, "Suspended") {
        "Suspended"
    } else if has_condition(o, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(o, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

pub const JOB: &[&str] = &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"];
pub const JOB_WIDE: &[&str] = &["CONTAINERS", "IMAGES", "SELECTOR"];

pub fn job(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let succeeded = i(o, "status.succeeded");
    let completions = match (opt_i(o, "spec.completions"), opt_i(o, "spec.parallelism")) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, Some(p)) if p > 1 => format!("{succeeded}/1 of {p}"),
        _ => format!("{succeeded}/1"),
    };
    let start = age::parse_rfc3339(&s(o, "status.startTime"));
    let end = age::parse_rfc3339(&s(o, "status.completionTime"));
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(st), None) => age::human_duration(now - st),
        (Some(st), Some(en)) => age::human_duration(en - st),
    };
    let mut row = vec![
        name(o),
        job_status(o).to_string(),
        completions,
        duration,
        age_of(o, now),
    ];
    if wide {
        wide_template(&mut row, o, "spec.template.spec", "spec.selector");
    }
    row
}

pub const CRONJOB: &[&str] = &[
    "NAME",
    "SCHEDULE",
    "TIMEZONE",
    "SUSPEND",
    "ACTIVE",
    "LAST SCHEDULE",
    "AGE",
];
pub const CRONJOB_WIDE: &[&str] = &["CONTAINERS", "IMAGES", "SELECTOR"];

pub fn cronjob(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let last = s(o, "status.lastScheduleTime");
    let last = if last.is_empty() {
        "<none>".to_string()
    } else {
        age::since(&last, now)
    };
    let tz = s(o, "spec.timeZone");
    let suspend = match opt_b(o, "spec.suspend") {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let mut row = vec![
        name(o),
        s(o, "spec.schedule").into_owned(),
        if tz.is_empty() {
            "<none>".into()
        } else {
            tz.into_owned()
        },
        suspend.to_string(),
        arr(o, "status.active").len().to_string(),
        last,
        age_of(o, now),
    ];
    if wide {
        wide_template(
            &mut row,
            o,
            "spec.jobTemplate.spec.template.spec",
            "spec.jobTemplate.spec.selector",
        );
    }
    row
}

/// HPA TARGETS as kubectl's `formatHPAMetrics` (at most two metrics, then "+ N more...").
pub fn hpa_targets(o: &Value) -> String {
    let mut specs: Vec<Value> = arr(o, "spec.metrics").to_vec();
    let mut statuses: Vec<Value> = arr(o, "status.currentMetrics").to_vec();
    // autoscaling/v1 form: targetCPUUtilizationPercentage / currentCPUUtilizationPercentage.
    if specs.is_empty() {
        if let Some(t) = opt_i(o, "spec.targetCPUUtilizationPercentage") {
            specs.push(
                serde_json::json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": t}}}),
            );
            if statuses.is_empty() {
                if let Some(c) = opt_i(o, "status.currentCPUUtilizationPercentage") {
                    statuses.push(
                        serde_json::json!({"type": "Resource", "resource": {"name": "cpu",
                        "current": {"averageUtilization": c}}}),
                    );
                }
            }
        }
    }
    if specs.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    for (idx, spec) in specs.iter().enumerate() {
        let st = statuses.get(idx);
        let cur = |section: &str, field: &str| -> Option<String> {
            let v = st.map(|x| at(x, section)).filter(|x| !x.is_null())?;
            let c = s(v, &format!("current.{field}"));
            if c.is_empty() {
                None
            } else {
                Some(c.into_owned())
            }
        };
        let text = match s(spec, "type").as_ref() {
            "Resource" | "ContainerResource" => {
                let section = if s(spec, "type") == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let src = at(spec, section);
                let avg_value = s(src, "target.averageValue");
                if !avg_value.is_empty() {
                    let c = cur(section, "averageValue").unwrap_or_else(|| "<unknown>".into());
                    format!("{c}/{avg_value}")
                } else {
                    let c = cur(section, "averageUtilization")
                        .map(|c| format!("{c}%"))
                        .unwrap_or_else(|| "<unknown>".into());
                    let t = opt_i(src, "target.averageUtilization")
                        .map(|t| format!("{t}%"))
                        .unwrap_or_else(|| "<auto>".into());
                    format!("{}: {c}/{t}", s(src, "name"))
                }
            }
            "Pods" => {
                let c = cur("pods", "averageValue").unwrap_or_else(|| "<unknown>".into());
                format!("{c}/{}", s(spec, "pods.target.averageValue"))
            }
            "Object" => {
                let av = s(spec, "object.target.averageValue");
                if !av.is_empty() {
                    let c = cur("object", "averageValue").unwrap_or_else(|| "<unknown>".into());
                    format!("{c}/{av} (avg)")
                } else {
                    let c = cur("object", "value").unwrap_or_else(|| "<unknown>".into());
                    format!("{c}/{}", s(spec, "object.target.value"))
                }
            }
            "External" => {
                let av = s(spec, "external.target.averageValue");
                if !av.is_empty() {
                    let c = cur("external", "averageValue").unwrap_or_else(|| "<unknown>".into());
                    format!("{c}/{av} (avg)")
                } else {
                    let c = cur("external", "value").unwrap_or_else(|| "<unknown>".into());
                    format!("{c}/{}", s(spec, "external.target.value"))
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(text);
    }
    let max = 2;
    if list.len() > max {
        let more = list.len() - max;
        list.truncate(max);
        format!("{} + {more} more...", list.join(", "))
    } else {
        list.join(", ")
    }
}

pub const HPA: &[&str] = &[
    "NAME",
    "REFERENCE",
    "TARGETS",
    "MINPODS",
    "MAXPODS",
    "REPLICAS",
    "AGE",
];

pub fn hpa(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    let reference = format!(
        "{}/{}",
        s(o, "spec.scaleTargetRef.kind"),
        s(o, "spec.scaleTargetRef.name")
    );
    let min = opt_i(o, "spec.minReplicas")
        .map(|m| m.to_string())
        .unwrap_or_else(|| "<unset>".into());
    vec![
        name(o),
        reference,
        hpa_targets(o),
        min,
        i(o, "spec.maxReplicas").to_string(),
        i(o, "status.currentReplicas").to_string(),
        age_of(o, now),
    ]
}

pub const CONTROLLER_REVISION: &[&str] = &["NAME", "CONTROLLER", "REVISION", "AGE"];

/// "kind.group/name" of an owner reference, as kubectl's formatResourceName.
pub fn owner_resource_name(owner: &Value) -> String {
    let api_version = s(owner, "apiVersion");
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let kind = s(owner, "kind").to_ascii_lowercase();
    if group.is_empty() {
        format!("{kind}/{}", s(owner, "name"))
    } else {
        format!("{kind}.{group}/{}", s(owner, "name"))
    }
}

pub fn controller_revision(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    let controller = arr(o, "metadata.ownerReferences")
        .iter()
        .find(|r| opt_b(r, "controller") == Some(true))
        .map(owner_resource_name)
        .unwrap_or_else(|| "<none>".into());
    vec![
        name(o),
        controller,
        i(o, "revision").to_string(),
        age_of(o, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_704_164_645 + 300;

    fn meta() -> Value {
        json!({"name": "x", "creationTimestamp": "2024-01-02T03:04:05Z"})
    }

    #[test]
    fn deployment_columns() {
        let d = json!({"metadata": meta(),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx-pod"}},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.17.9"}]}}},
            "status": {"readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3}});
        assert_eq!(
            deployment(&d, NOW, true),
            vec![
                "x",
                "3/3",
                "3",
                "3",
                "5m",
                "nginx",
                "nginx:1.17.9",
                "app=nginx-pod"
            ]
        );
        let d = json!({"metadata": meta(), "spec": {"replicas": 2}});
        assert_eq!(deployment(&d, NOW, false), vec!["x", "0/2", "0", "0", "5m"]);
    }

    #[test]
    fn daemonset_shows_node_selector() {
        let d = json!({"metadata": meta(),
            "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}});
        assert_eq!(
            daemonset(&d, NOW, false),
            vec!["x", "0", "0", "0", "0", "0", "disk=ssd", "5m"]
        );
        let d = json!({"metadata": meta()});
        assert_eq!(daemonset(&d, NOW, false)[6], "<none>");
    }

    #[test]
    fn job_status_and_completions() {
        let j = json!({"metadata": meta(), "spec": {"completions": 6, "parallelism": 2},
            "status": {"succeeded": 6, "startTime": "2024-01-02T03:04:05Z",
                       "completionTime": "2024-01-02T03:04:50Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(
            job(&j, NOW, false),
            vec!["x", "Complete", "6/6", "45s", "5m"]
        );
        let j = json!({"metadata": meta(), "spec": {"parallelism": 2},
            "status": {"startTime": "2024-01-02T03:04:05Z"}});
        assert_eq!(
            job(&j, NOW, false),
            vec!["x", "Running", "0/1 of 2", "5m", "5m"]
        );
        let j = json!({"metadata": meta(), "status": {"conditions": [
            {"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}});
        assert_eq!(job_status(&j), "Failed");
        let j = json!({"metadata": meta(), "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(job_status(&j), "Suspended");
    }

    #[test]
    fn cronjob_columns() {
        let c = json!({"metadata": meta(), "spec": {"schedule": "*/1 * * * *", "suspend": false},
            "status": {"active": [{"name": "a"}], "lastScheduleTime": "2024-01-02T03:08:05Z"}});
        assert_eq!(
            cronjob(&c, NOW, false),
            vec!["x", "*/1 * * * *", "<none>", "False", "1", "60s", "5m"]
        );
    }

    #[test]
    fn hpa_targets_like_kubectl() {
        let h = json!({"metadata": meta(), "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "nginx"}, "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"currentReplicas": 1}});
        assert_eq!(hpa_targets(&h), "cpu: <unknown>/50%");
        assert_eq!(
            hpa(&h, NOW, false),
            vec![
                "x",
                "Deployment/nginx",
                "cpu: <unknown>/50%",
                "1",
                "10",
                "1",
                "5m"
            ]
        );
        let mut h2 = h.clone();
        h2["status"]["currentMetrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 10, "averageValue": "20m"}}}]);
        assert_eq!(hpa_targets(&h2), "cpu: 10%/50%");
        // autoscaling/v1 form
        let v1 = json!({"spec": {"targetCPUUtilizationPercentage": 2}, "status": {"currentCPUUtilizationPercentage": 150}});
        assert_eq!(hpa_targets(&v1), "cpu: 150%/2%");
        let none = json!({"spec": {}});
        assert_eq!(hpa_targets(&none), "<none>");
        let av = json!({"spec": {"metrics": [
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 50}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 60}}}]}});
        assert_eq!(
            hpa_targets(&av),
            "<unknown>/100Mi, cpu: <unknown>/50% + 1 more..."
        );
    }

    #[test]
    fn controller_revision_names_its_owner() {
        let c = json!({"metadata": {"name": "ds-abc", "creationTimestamp": "2024-01-02T03:04:05Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]},
            "revision": "2"});
        assert_eq!(
            controller_revision(&c, NOW, false),
            vec!["ds-abc", "daemonset.apps/ds", "2", "5m"]
        );
    }
}
