//! Fields kubectl always prints. The proto3 JSON mapping leaves out every field at its zero
//! value; Kubernetes' Go types only leave out fields tagged `omitempty`, and a struct-typed
//! field is never left out (`resources: {}`, `lastState: {}`, `status: {}`), nor is a zero
//! `metav1.Time` (`lastProbeTime: null`, the template's `creationTimestamp: null`). This puts
//! back, for the kinds coxctl prints, the non-`omitempty` fields of upstream's types, so that
//! `-o json|yaml|jsonpath` read `.state.terminated.exitCode` as 0, not as missing.
use coxswain_api::Kind;
use serde_json::{json, Value};

/// Set `path` (dot-separated; `name[]` walks every element of an array) to `default` where
/// it is missing, but only where its parent exists.
fn ensure(v: &mut Value, path: &str, default: &Value) {
    let parts: Vec<&str> = path.split('.').collect();
    ensure_parts(v, &parts, default);
}

fn ensure_parts(v: &mut Value, parts: &[&str], default: &Value) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    if let Some(name) = first.strip_suffix("[]") {
        if let Some(Value::Array(items)) = obj.get_mut(name) {
            for item in items {
                ensure_parts(item, rest, default);
            }
        }
        return;
    }
    if rest.is_empty() {
        if !obj.contains_key(*first) {
            obj.insert(first.to_string(), default.clone());
        }
        return;
    }
    if let Some(child) = obj.get_mut(*first) {
        ensure_parts(child, rest, default);
    }
}

/// The pod spec's always-printed fields, under `p` ("spec", "spec.template.spec", …).
fn pod_spec(v: &mut Value, p: &str) {
    for c in ["containers[]", "initContainers[]"] {
        ensure(v, &format!("{p}.{c}.resources"), &json!({}));
        ensure(v, &format!("{p}.{c}.ports[].containerPort"), &json!(0));
    }
}

/// An embedded ObjectMeta (a template's): always there, with `creationTimestamp: null`.
fn template_meta(v: &mut Value, p: &str) {
    ensure(v, &format!("{p}.metadata"), &json!({}));
    ensure(v, &format!("{p}.metadata.creationTimestamp"), &Value::Null);
}

fn container_statuses(v: &mut Value, list: &str) {
    let base = format!("status.{list}[]");
    for (field, d) in [
        ("name", json!("")),
        ("ready", json!(false)),
        ("restartCount", json!(0)),
        ("image", json!("")),
        ("imageID", json!("")),
        ("state", json!({})),
        ("lastState", json!({})),
    ] {
        ensure(v, &format!("{base}.{field}"), &d);
    }
    for s in ["state", "lastState"] {
        ensure(v, &format!("{base}.{s}.terminated.exitCode"), &json!(0));
        ensure(v, &format!("{base}.{s}.terminated.startedAt"), &Value::Null);
        ensure(
            v,
            &format!("{base}.{s}.terminated.finishedAt"),
            &Value::Null,
        );
        ensure(v, &format!("{base}.{s}.running.startedAt"), &Value::Null);
    }
}

/// Put back the always-printed fields of one object (its Kubernetes JSON).
pub fn fill(kind: Kind, v: &mut Value) {
    if !v.is_object() {
        return;
    }
    match kind {
        Kind::Pod => {
            pod_spec(v, "spec");
            ensure(v, "status", &json!({}));
            ensure(v, "status.conditions[].lastProbeTime", &Value::Null);
            ensure(v, "status.conditions[].lastTransitionTime", &Value::Null);
            container_statuses(v, "containerStatuses");
            container_statuses(v, "initContainerStatuses");
        }
        Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet | Kind::StatefulSet | Kind::Job => {
            template_meta(v, "spec.template");
            pod_spec(v, "spec.template.spec");
            ensure(v, "status", &json!({}));
            ensure(v, "status.conditions[].lastTransitionTime", &Value::Null);
            match kind {
                Kind::ReplicaSet => ensure(v, "status.replicas", &json!(0)),
                Kind::StatefulSet => {
                    ensure(v, "status.replicas", &json!(0));
                    ensure(v, "status.availableReplicas", &json!(0));
                    ensure(
                        v,
                        "spec.volumeClaimTemplates[].metadata.creationTimestamp",
                        &Value::Null,
                    );
                    ensure(v, "spec.volumeClaimTemplates[].status", &json!({}));
                }
                Kind::DaemonSet => {
                    for f in [
                        "currentNumberScheduled",
                        "numberMisscheduled",
                        "desiredNumberScheduled",
                        "numberReady",
                    ] {
                        ensure(v, &format!("status.{f}"), &json!(0));
                    }
                }
                _ => {}
            }
        }
        Kind::CronJob => {
            template_meta(v, "spec.jobTemplate");
            template_meta(v, "spec.jobTemplate.spec.template");
            pod_spec(v, "spec.jobTemplate.spec.template.spec");
            ensure(v, "status", &json!({}));
        }
        Kind::Service => {
            ensure(v, "spec.ports[].port", &json!(0));
            ensure(v, "status", &json!({}));
            ensure(v, "status.loadBalancer", &json!({}));
        }
        Kind::Event => {
            ensure(v, "eventTime", &Value::Null);
            ensure(v, "reportingComponent", &json!(""));
            ensure(v, "reportingInstance", &json!(""));
            ensure(v, "involvedObject", &json!({}));
            ensure(v, "source", &json!({}));
        }
        Kind::Namespace | Kind::Node | Kind::PersistentVolumeClaim => {
            ensure(v, "spec", &json!({}));
            ensure(v, "status", &json!({}));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_zero_values_are_printed_as_kubectl_prints_them() {
        let mut p = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http"}]}]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "state": {"terminated": {"reason": "Completed"}}}]
            }
        });
        fill(Kind::Pod, &mut p);
        let cs = &p["status"]["containerStatuses"][0];
        assert_eq!(cs["restartCount"], 0);
        assert_eq!(cs["ready"], false);
        assert_eq!(cs["imageID"], "");
        assert_eq!(cs["lastState"], json!({}));
        assert_eq!(cs["state"]["terminated"]["exitCode"], 0);
        // Only what exists gets its fields: no `running` appears.
        assert!(cs["state"].get("running").is_none());
        assert!(p["status"]["conditions"][0]
            .as_object()
            .unwrap()
            .contains_key("lastProbeTime"));
        assert_eq!(p["spec"]["containers"][0]["resources"], json!({}));
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["containerPort"], 0);
    }

    #[test]
    fn workload_templates_and_status_counts() {
        let mut rs = json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
        fill(Kind::ReplicaSet, &mut rs);
        assert_eq!(rs["status"]["replicas"], 0);
        assert!(rs["spec"]["template"]["metadata"]["creationTimestamp"].is_null());
        assert!(rs["spec"]["template"]["metadata"]
            .as_object()
            .unwrap()
            .contains_key("creationTimestamp"));
        let mut ds = json!({"spec": {}});
        fill(Kind::DaemonSet, &mut ds);
        assert_eq!(ds["status"]["numberMisscheduled"], 0);
        let mut svc = json!({"spec": {"ports": [{"targetPort": 80}]}});
        fill(Kind::Service, &mut svc);
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
        assert_eq!(svc["spec"]["ports"][0]["port"], 0);
    }
}
