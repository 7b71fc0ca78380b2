//! Validation of objects as the Kubernetes API server validates them: every problem collected,
//! each with its field path, in Kubernetes' wording (`Required value`, `Unsupported value: "x":
//! supported values: "a", "b"`, `Invalid value: ...`, `Forbidden: ...`).
//!
//! [`validate`] checks one object (run it after [`crate::defaults::apply_defaults`]);
//! [`validate_update`] checks only what an update may not change (run [`validate`] on the new
//! object as well).
use std::collections::{BTreeMap, BTreeSet};

use crate::error::FieldError;
use crate::kinds::{Kind, Object};
use crate::quantity::Quantity;
use crate::selector::LabelSelector;
use crate::v1;
use crate::v1::IntOrString;

mod cron;
mod discovery;
mod hpa;
mod names;
mod path;
mod pod;
mod projected;
mod scheduling;
mod service;
mod storage;
mod storage_class;
#[cfg(test)]
mod tests;
mod update;
mod workloads;

use cron::*;
use hpa::*;
use names::*;
use path::{IntoPath, Path};
use pod::*;
use scheduling::*;
use service::*;
use storage::*;
use workloads::*;

pub use cron::validate_cron_schedule;
pub use names::{is_qualified_name, is_valid_label_value};
pub use update::validate_update;

type Errs = Vec<FieldError>;

// ---------------------------------------------------------------------------------------------
// Message helpers (Kubernetes' field.ErrorList wording)
// ---------------------------------------------------------------------------------------------

fn required(errs: &mut Errs, path: impl IntoPath, detail: &str) {
    let msg = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    errs.push(FieldError::new(path.into_path(), msg));
}

fn invalid(errs: &mut Errs, path: impl IntoPath, value: impl std::fmt::Display, detail: &str) {
    errs.push(FieldError::new(
        path.into_path(),
        format!("Invalid value: {value}: {detail}"),
    ));
}

fn invalid_str(errs: &mut Errs, path: impl IntoPath, value: &str, detail: &str) {
    invalid(errs, path, format!("{value:?}"), detail);
}

fn unsupported(errs: &mut Errs, path: impl IntoPath, value: &str, supported: &[&str]) {
    let list = supported
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    errs.push(FieldError::new(
        path.into_path(),
        format!("Unsupported value: {value:?}: supported values: {list}"),
    ));
}

fn forbidden(errs: &mut Errs, path: impl IntoPath, detail: &str) {
    errs.push(FieldError::new(
        path.into_path(),
        format!("Forbidden: {detail}"),
    ));
}

fn duplicate(errs: &mut Errs, path: impl IntoPath, value: &str) {
    errs.push(FieldError::new(
        path.into_path(),
        format!("Duplicate value: {value:?}"),
    ));
}

fn not_found(errs: &mut Errs, path: impl IntoPath, value: &str) {
    errs.push(FieldError::new(
        path.into_path(),
        format!("Not found: {value:?}"),
    ));
}

fn one_of(
    errs: &mut Errs,
    path: impl IntoPath + Copy,
    value: &str,
    supported: &[&str],
    allow_empty: bool,
) {
    if (value.is_empty() && allow_empty) || supported.contains(&value) {
        return;
    }
    if value.is_empty() {
        required(errs, path, "");
    } else {
        unsupported(errs, path, value, supported);
    }
}

fn non_negative(errs: &mut Errs, path: impl IntoPath, v: i64) {
    if v < 0 {
        invalid(errs, path, v, "must be greater than or equal to 0");
    }
}

fn go_map(m: &BTreeMap<String, String>) -> String {
    let inner = m
        .iter()
        .map(|(k, v)| format!("{k:?}:{v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("map[string]string{{{inner}}}")
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    /// RBAC's names (`system:kube-scheduler`): upstream's `ValidateRBACName`, a path segment.
    PathSegment,
}

fn name_rule(kind: Kind) -> NameRule {
    match kind {
        Kind::Namespace => NameRule::Label,
        Kind::Service => NameRule::Dns1035,
        Kind::Role | Kind::ClusterRole | Kind::RoleBinding | Kind::ClusterRoleBinding => {
            NameRule::PathSegment
        }
        _ => NameRule::Subdomain,
    }
}

/// Upstream's `path.IsValidPathSegmentName`.
fn is_path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ['/', '%']
        .iter()
        .filter(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

fn validate_name(errs: &mut Errs, path: &str, name: &str, rule: NameRule) {
    let msgs = match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::Dns1035 => is_dns1035_label(name),
        NameRule::PathSegment => is_path_segment_name(name),
    };
    check(errs, path, name, msgs);
}

fn validate_object_meta(errs: &mut Errs, meta: &v1::ObjectMeta, kind: Kind) {
    let rule = name_rule(kind);
    if meta.name.is_empty() {
        if meta.generate_name.is_empty() {
            required(errs, "metadata.name", "name or generateName is required");
        } else {
            // generateName gets a random suffix: check the prefix without its trailing dash.
            let prefix = meta.generate_name.trim_end_matches('-');
            if !prefix.is_empty() {
                let msgs = match rule {
                    NameRule::Subdomain => is_dns1123_subdomain(prefix),
                    NameRule::Label => is_dns1123_label(prefix),
                    NameRule::Dns1035 => is_dns1035_label(prefix),
                    NameRule::PathSegment => is_path_segment_name(prefix),
                };
                check(errs, "metadata.generateName", &meta.generate_name, msgs);
            }
        }
    } else {
        validate_name(errs, "metadata.name", &meta.name, rule);
    }
    if kind.namespaced() {
        if !meta.namespace.is_empty() {
            check(
                errs,
                "metadata.namespace",
                &meta.namespace,
                is_dns1123_label(&meta.namespace),
            );
        }
    } else if !meta.namespace.is_empty() {
        forbidden(errs, "metadata.namespace", "not allowed on this type");
    }
    validate_labels(errs, "metadata.labels", &meta.labels);
    validate_annotations(errs, "metadata.annotations", &meta.annotations);
    for (i, f) in meta.finalizers.iter().enumerate() {
        check(
            errs,
            &format!("metadata.finalizers[{i}]"),
            f,
            is_qualified_name(f),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// Validate an object; every error found, with its field path. Empty when valid.
pub fn validate(obj: &Object) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_object_meta(&mut errs, obj.meta(), obj.kind());
    let e = &mut errs;
    match obj {
        Object::Namespace(_) => {}
        Object::Node(n) => {
            if let Some(spec) = &n.spec {
                for (i, t) in spec.taints.iter().enumerate() {
                    let p = format!("spec.taints[{i}]");
                    if t.key.is_empty() {
                        required(e, format!("{p}.key"), "");
                    } else {
                        check(e, &format!("{p}.key"), &t.key, is_qualified_name(&t.key));
                    }
                    check(
                        e,
                        &format!("{p}.value"),
                        &t.value,
                        is_valid_label_value(&t.value),
                    );
                    one_of(e, &format!("{p}.effect"), &t.effect, TAINT_EFFECTS, false);
                }
            }
            if let Some(st) = &n.status {
                for (name, v) in st.capacity.iter() {
                    validate_quantity(e, &format!("status.capacity[{name}]"), v);
                }
                for (name, v) in st.allocatable.iter() {
                    validate_quantity(e, &format!("status.allocatable[{name}]"), v);
                }
            }
        }
        Object::Pod(p) => match &p.spec {
            Some(spec) => validate_pod_spec(e, "spec", spec, &PodCtx::default()),
            None => required(e, "spec", ""),
        },
        Object::Service(s) => match &s.spec {
            Some(spec) => validate_service_spec(e, spec),
            None => required(e, "spec", ""),
        },
        Object::Endpoints(ep) => {
            for (i, s) in ep.subsets.iter().enumerate() {
                for (j, port) in s.ports.iter().enumerate() {
                    let p = format!("subsets[{i}].ports[{j}]");
                    validate_port_number(e, &format!("{p}.port"), port.port);
                    one_of(e, &format!("{p}.protocol"), &port.protocol, PROTOCOLS, true);
                }
            }
        }
        Object::EndpointSlice(es) => discovery::validate_endpoint_slice(e, es),
        Object::PersistentVolumeClaim(pvc) => match &pvc.spec {
            Some(spec) => validate_pvc_spec(e, "spec", spec),
            None => required(e, "spec", ""),
        },
        Object::PersistentVolume(pv) => match &pv.spec {
            Some(spec) => validate_pv_spec(e, spec),
            None => required(e, "spec", ""),
        },
        Object::StorageClass(sc) => {
            if sc.provisioner.is_empty() {
                required(e, "provisioner", "");
            } else {
                check(
                    e,
                    "provisioner",
                    &sc.provisioner,
                    is_qualified_name(&sc.provisioner),
                );
            }
            if let Some(r) = &sc.reclaim_policy {
                one_of(e, "reclaimPolicy", r, &["Delete", "Retain"], false);
            }
            if let Some(m) = &sc.volume_binding_mode {
                one_of(
                    e,
                    "volumeBindingMode",
                    m,
                    &["Immediate", "WaitForFirstConsumer"],
                    false,
                );
            }
            storage_class::validate_allowed_topologies(e, &sc.allowed_topologies);
        }
        Object::ServiceAccount(_)
        | Object::Event(_)
        | Object::ControllerRevision(_)
        | Object::Lease(_)
        | Object::Role(_)
        | Object::ClusterRole(_)
        | Object::RoleBinding(_)
        | Object::ClusterRoleBinding(_) => {}
        Object::ConfigMap(cm) => {
            let mut size = 0;
            for k in cm.data.keys().chain(cm.binary_data.keys()) {
                check(e, "data", k, config_key_errors(k));
            }
            for k in cm.data.keys() {
                if cm.binary_data.contains_key(k) {
                    invalid_str(e, "data", k, "duplicate of key present in binaryData");
                }
            }
            size += cm.data.values().map(String::len).sum::<usize>();
            size += cm.binary_data.values().map(Vec::len).sum::<usize>();
            if size > 1024 * 1024 {
                errs.push(FieldError::new(
                    "",
                    "Too long: must have at most 1048576 bytes",
                ));
            }
        }
        Object::Secret(s) => {
            for k in s.data.keys() {
                check(e, "data", k, config_key_errors(k));
            }
            for k in s.string_data.keys() {
                check(e, "stringData", k, config_key_errors(k));
            }
            let size: usize = s.data.values().map(Vec::len).sum();
            if size > 1024 * 1024 {
                errs.push(FieldError::new(
                    "data",
                    "Too long: must have at most 1048576 bytes",
                ));
            }
        }
        Object::ReplicaSet(rs) => match &rs.spec {
            Some(spec) => {
                non_negative(e, "spec.replicas", spec.replicas.unwrap_or(0).into());
                non_negative(e, "spec.minReadySeconds", spec.min_ready_seconds.into());
                validate_workload_selector_and_template(
                    e,
                    "replicaset",
                    spec.selector.as_ref(),
                    spec.template.as_ref(),
                    &[],
                );
            }
            None => required(e, "spec", ""),
        },
        Object::Deployment(d) => match &d.spec {
            Some(spec) => validate_deployment_spec(e, spec),
            None => required(e, "spec", ""),
        },
        Object::DaemonSet(ds) => match &ds.spec {
            Some(spec) => validate_daemonset_spec(e, spec),
            None => required(e, "spec", ""),
        },
        Object::StatefulSet(s) => match &s.spec {
            Some(spec) => validate_statefulset_spec(e, spec),
            None => required(e, "spec", ""),
        },
        Object::Job(j) => match &j.spec {
            Some(spec) => validate_job_spec(e, "spec", spec, true),
            None => required(e, "spec", ""),
        },
        Object::CronJob(cj) => {
            if obj.name().len() > 52 {
                invalid_str(
                    e,
                    "metadata.name",
                    obj.name(),
                    "must be no more than 52 characters",
                );
            }
            match &cj.spec {
                Some(spec) => validate_cronjob_spec(e, spec),
                None => required(e, "spec", ""),
            }
        }
        Object::HorizontalPodAutoscaler(h) => match &h.spec {
            Some(spec) => validate_hpa_spec(e, spec),
            None => required(e, "spec", ""),
        },
    }
    errs
}

/// Upstream's `validation.IsConfigMapKey` (ConfigMap and Secret keys); kubectl checks keys
/// with it before sending, so coxctl's `create configmap|secret` uses it too.
pub fn config_key_errors(k: &str) -> Vec<String> {
    let mut out = Vec::new();
    if k.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if k.is_empty()
        || !k
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        out.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    if k == "." || k == ".." {
        out.push(format!("must not be '{k}'"));
    } else if k.starts_with("..") {
        out.push("must not start with '..'".to_string());
    }
    out
}
