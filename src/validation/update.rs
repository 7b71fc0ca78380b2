//! What an update may not change ([`super::validate_update`]): names, immutable fields of each
//! kind, and the pod spec's few mutable fields.
use super::*;

pub(super) const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
pub(super) const STS_UPDATE_MSG: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
pub(super) const PVC_UPDATE_MSG: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

pub(super) fn immutable(e: &mut Errs, path: &str, value: impl std::fmt::Display) {
    invalid(e, path, value, "field is immutable");
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// The leaf paths where two JSON values differ (at most `limit`).
pub(super) fn diff_paths(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
    limit: usize,
) {
    use serde_json::Value as J;
    if out.len() >= limit || a == b {
        return;
    }
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_paths(
                    x.get(k).unwrap_or(&J::Null),
                    y.get(k).unwrap_or(&J::Null),
                    &p,
                    out,
                    limit,
                );
            }
        }
        (J::Array(x), J::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff_paths(u, v, &format!("{path}[{i}]"), out, limit);
            }
        }
        _ => out.push(path.to_string()),
    }
}

pub(super) fn go_selector(s: Option<&v1::LabelSelector>) -> String {
    match s {
        None => "null".to_string(),
        Some(s) => serde_json::to_string(s).unwrap_or_default(),
    }
}

/// What an update may not change: names, immutable fields of each kind. Only the
/// update-specific errors are returned; validate the new object with [`validate`] too.
pub fn validate_update(old: &Object, new: &Object) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let e = &mut errs;
    if old.kind() != new.kind() {
        invalid_str(
            e,
            "kind",
            new.kind().as_str(),
            &format!("may not change kind from {}", old.kind()),
        );
        return errs;
    }
    if old.name() != new.name() && !old.name().is_empty() {
        immutable(e, "metadata.name", format!("{:?}", new.name()));
    }
    if old.namespace() != new.namespace() && !old.namespace().is_empty() {
        immutable(e, "metadata.namespace", format!("{:?}", new.namespace()));
    }
    if !old.meta().uid.is_empty() && !new.meta().uid.is_empty() && old.meta().uid != new.meta().uid
    {
        immutable(e, "metadata.uid", format!("{:?}", new.meta().uid));
    }
    match (old, new) {
        (Object::EndpointSlice(a), Object::EndpointSlice(b))
            if a.address_type != b.address_type =>
        {
            immutable(e, "addressType", format!("{:?}", b.address_type));
        }
        (Object::Pod(a), Object::Pod(b)) => validate_pod_update(
            e,
            a.spec.clone().unwrap_or_default(),
            b.spec.clone().unwrap_or_default(),
        ),
        (Object::Deployment(a), Object::Deployment(b)) => {
            let (x, y) = (
                a.spec.as_ref().and_then(|s| s.selector.as_ref()),
                b.spec.as_ref().and_then(|s| s.selector.as_ref()),
            );
            if x != y {
                immutable(e, "spec.selector", go_selector(y));
            }
        }
        (Object::ReplicaSet(a), Object::ReplicaSet(b)) => {
            let (x, y) = (
                a.spec.as_ref().and_then(|s| s.selector.as_ref()),
                b.spec.as_ref().and_then(|s| s.selector.as_ref()),
            );
            if x != y {
                immutable(e, "spec.selector", go_selector(y));
            }
        }
        (Object::DaemonSet(a), Object::DaemonSet(b)) => {
            let (x, y) = (
                a.spec.as_ref().and_then(|s| s.selector.as_ref()),
                b.spec.as_ref().and_then(|s| s.selector.as_ref()),
            );
            if x != y {
                immutable(e, "spec.selector", go_selector(y));
            }
        }
        (Object::StatefulSet(a), Object::StatefulSet(b)) => {
            let mut x = a.spec.clone().unwrap_or_default();
            let mut y = b.spec.clone().unwrap_or_default();
            for s in [&mut x, &mut y] {
                s.replicas = None;
                s.template = None;
                s.update_strategy = None;
                s.ordinals = None;
                s.min_ready_seconds = 0;
                s.revision_history_limit = None;
                s.persistent_volume_claim_retention_policy = None;
            }
            if x != y {
                forbidden(e, "spec", STS_UPDATE_MSG);
            }
        }
        (Object::Job(a), Object::Job(b)) => {
            let x = a.spec.clone().unwrap_or_default();
            let y = b.spec.clone().unwrap_or_default();
            if x.selector != y.selector {
                immutable(e, "spec.selector", go_selector(y.selector.as_ref()));
            }
            if x.template != y.template {
                let mut paths = Vec::new();
                diff_paths(
                    &to_json(&x.template),
                    &to_json(&y.template),
                    "spec.template",
                    &mut paths,
                    1,
                );
                immutable(
                    e,
                    "spec.template",
                    paths
                        .first()
                        .map(|p| format!("change at {p}"))
                        .unwrap_or_default(),
                );
            }
            if x.completions != y.completions {
                let v = y
                    .completions
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "null".to_string());
                immutable(e, "spec.completions", v);
            }
            if x.completion_mode != y.completion_mode {
                immutable(
                    e,
                    "spec.completionMode",
                    format!("{:?}", y.completion_mode.unwrap_or_default()),
                );
            }
            if x.manual_selector != y.manual_selector
                && y.manual_selector.is_some()
                && x.manual_selector.is_some()
            {
                immutable(
                    e,
                    "spec.manualSelector",
                    y.manual_selector.unwrap_or_default(),
                );
            }
        }
        (Object::Service(a), Object::Service(b)) => {
            let x = a.spec.clone().unwrap_or_default();
            let y = b.spec.clone().unwrap_or_default();
            let to_external_name = y.r#type == "ExternalName" && x.r#type != "ExternalName";
            if !x.cluster_ip.is_empty()
                && !y.cluster_ip.is_empty()
                && x.cluster_ip != y.cluster_ip
                && !to_external_name
            {
                immutable(e, "spec.clusterIP", format!("{:?}", y.cluster_ip));
            }
        }
        (Object::PersistentVolumeClaim(a), Object::PersistentVolumeClaim(b)) => {
            let x = a.spec.clone().unwrap_or_default();
            let mut y = b.spec.clone().unwrap_or_default();
            let old_storage = x
                .resources
                .as_ref()
                .and_then(|r| r.requests.get("storage"))
                .and_then(|s| Quantity::parse(s).ok());
            let new_storage = y
                .resources
                .as_ref()
                .and_then(|r| r.requests.get("storage"))
                .and_then(|s| Quantity::parse(s).ok());
            if let (Some(o), Some(n)) = (old_storage, new_storage) {
                if n < o {
                    forbidden(
                        e,
                        "spec.resources.requests.storage",
                        "field can not be less than previous value",
                    );
                }
            }
            // Requests may change; the binder may set volumeName once.
            if let (Some(ry), Some(rx)) = (y.resources.as_mut(), x.resources.as_ref()) {
                ry.requests = rx.requests.clone();
            }
            if x.volume_name.is_empty() {
                y.volume_name.clear();
                // The PV controller gives an unbound claim without a class the default class
                // (retroactive default StorageClass assignment).
                if x.storage_class_name.is_none() {
                    y.storage_class_name = None;
                }
            }
            let mut x2 = x.clone();
            x2.volume_name = if x.volume_name.is_empty() {
                String::new()
            } else {
                x.volume_name.clone()
            };
            if x2 != y {
                forbidden(e, "spec", PVC_UPDATE_MSG);
            }
        }
        (Object::ConfigMap(a), Object::ConfigMap(b)) if a.immutable == Some(true) => {
            if a.data != b.data {
                forbidden(e, "data", "field is immutable when `immutable` is set");
            }
            if a.binary_data != b.binary_data {
                forbidden(
                    e,
                    "binaryData",
                    "field is immutable when `immutable` is set",
                );
            }
            if b.immutable != Some(true) {
                forbidden(e, "immutable", "field is immutable when `immutable` is set");
            }
        }
        (Object::Secret(a), Object::Secret(b)) => {
            if a.r#type != b.r#type && !a.r#type.is_empty() {
                immutable(e, "type", format!("{:?}", b.r#type));
            }
            if a.immutable == Some(true) {
                if a.data != b.data {
                    forbidden(e, "data", "field is immutable when `immutable` is set");
                }
                if b.immutable != Some(true) {
                    forbidden(e, "immutable", "field is immutable when `immutable` is set");
                }
            }
        }
        _ => {}
    }
    errs
}

pub(super) fn validate_pod_update(e: &mut Errs, old: v1::PodSpec, new: v1::PodSpec) {
    // activeDeadlineSeconds: may be set, or lowered, never unset or raised.
    match (old.active_deadline_seconds, new.active_deadline_seconds) {
        (Some(_), None) => invalid(
            e,
            "spec.activeDeadlineSeconds",
            "null",
            "must not update from a positive integer to nil value",
        ),
        (Some(o), Some(n)) if n > o => invalid(
            e,
            "spec.activeDeadlineSeconds",
            n,
            "must be less than or equal to previous value",
        ),
        _ => {}
    }
    // tolerations: existing ones stay (tolerationSeconds may only be lowered), new ones may be added.
    for (i, t) in old.tolerations.iter().enumerate() {
        let kept = new.tolerations.iter().any(|n| {
            n.key == t.key
                && n.operator == t.operator
                && n.value == t.value
                && n.effect == t.effect
                && match (t.toleration_seconds, n.toleration_seconds) {
                    (None, None) => true,
                    (Some(o), Some(x)) => x <= o,
                    _ => false,
                }
        });
        if !kept {
            forbidden(
                e,
                format!("spec.tolerations[{i}]"),
                "existing toleration can not be modified except its tolerationSeconds",
            );
        }
    }
    // Everything else must stay: neutralize what may change, then compare.
    let mut a = old;
    let b = new;
    if a.containers.len() == b.containers.len() {
        for (x, y) in a.containers.iter_mut().zip(b.containers.iter()) {
            x.image = y.image.clone();
        }
    }
    if a.init_containers.len() == b.init_containers.len() {
        for (x, y) in a.init_containers.iter_mut().zip(b.init_containers.iter()) {
            x.image = y.image.clone();
        }
    }
    a.active_deadline_seconds = b.active_deadline_seconds;
    a.tolerations = b.tolerations.clone();
    a.termination_grace_period_seconds = b.termination_grace_period_seconds;
    // The scheduler binds a pod by setting nodeName once.
    if a.node_name.is_empty() {
        a.node_name = b.node_name.clone();
    }
    if a != b {
        let mut paths = Vec::new();
        diff_paths(&to_json(&a), &to_json(&b), "spec", &mut paths, 5);
        if paths.is_empty() {
            paths.push("spec".to_string());
        }
        for p in paths {
            forbidden(e, p, POD_UPDATE_MSG);
        }
    }
}
