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

mod discovery;

type Errs = Vec<FieldError>;

// ---------------------------------------------------------------------------------------------
// Message helpers (Kubernetes' field.ErrorList wording)
// ---------------------------------------------------------------------------------------------

fn required(errs: &mut Errs, path: impl Into<String>, detail: &str) {
    let msg = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    errs.push(FieldError::new(path, msg));
}

fn invalid(errs: &mut Errs, path: impl Into<String>, value: impl std::fmt::Display, detail: &str) {
    errs.push(FieldError::new(
        path,
        format!("Invalid value: {value}: {detail}"),
    ));
}

fn invalid_str(errs: &mut Errs, path: impl Into<String>, value: &str, detail: &str) {
    invalid(errs, path, format!("{value:?}"), detail);
}

fn unsupported(errs: &mut Errs, path: impl Into<String>, value: &str, supported: &[&str]) {
    let list = supported
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    errs.push(FieldError::new(
        path,
        format!("Unsupported value: {value:?}: supported values: {list}"),
    ));
}

fn forbidden(errs: &mut Errs, path: impl Into<String>, detail: &str) {
    errs.push(FieldError::new(path, format!("Forbidden: {detail}")));
}

fn duplicate(errs: &mut Errs, path: impl Into<String>, value: &str) {
    errs.push(FieldError::new(path, format!("Duplicate value: {value:?}")));
}

fn not_found(errs: &mut Errs, path: impl Into<String>, value: &str) {
    errs.push(FieldError::new(path, format!("Not found: {value:?}")));
}

fn one_of(errs: &mut Errs, path: &str, value: &str, supported: &[&str], allow_empty: bool) {
    if (value.is_empty() && allow_empty) || supported.contains(&value) {
        return;
    }
    if value.is_empty() {
        required(errs, path, "");
    } else {
        unsupported(errs, path, value, supported);
    }
}

fn non_negative(errs: &mut Errs, path: &str, v: i64) {
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
// Name and label syntax (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------------------------

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        out.push(DNS1123_LABEL_MSG.to_string());
    }
    out
}

fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        out.push(DNS1035_LABEL_MSG.to_string());
    }
    out
}

fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    let ok = !s.is_empty()
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        });
    if !ok {
        out.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    out
}

fn is_label_value_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    b.is_empty()
        || (b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}

pub fn is_valid_label_value(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !is_label_value_syntax(s) {
        out.push(LABEL_VALUE_MSG.to_string());
    }
    out
}

/// A qualified name (label or annotation key): `[prefix/]name`.
pub fn is_qualified_name(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if name.contains('/') {
        out.push(format!("a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
        return out;
    }
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push("prefix part must be non-empty".to_string());
        } else {
            out.extend(
                is_dns1123_subdomain(p)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            out.push("name part must be no more than 63 characters".to_string());
        }
        if !is_label_value_syntax(name) {
            out.push(QUALIFIED_NAME_MSG.to_string());
        }
    }
    out
}

/// IANA service name: a named port.
fn is_valid_port_name(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 15 {
        out.push("must be no more than 15 characters".to_string());
    }
    let b = s.as_bytes();
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        out.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !b.iter().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        out.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        out.push("must not begin or end with a hyphen".to_string());
    }
    out
}

fn check(errs: &mut Errs, path: &str, value: &str, msgs: Vec<String>) {
    for m in msgs {
        invalid_str(errs, path, value, &m);
    }
}

fn validate_labels(errs: &mut Errs, path: &str, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        check(errs, path, k, is_qualified_name(k));
        check(errs, path, v, is_valid_label_value(v));
    }
}

fn validate_annotations(errs: &mut Errs, path: &str, ann: &BTreeMap<String, String>) {
    let mut total = 0;
    for (k, v) in ann {
        check(
            errs,
            path,
            &k.to_ascii_lowercase(),
            is_qualified_name(&k.to_ascii_lowercase()),
        );
        total += k.len() + v.len();
    }
    if total > 256 * 1024 {
        errs.push(FieldError::new(
            path,
            format!("Too long: may not be more than {} bytes", 256 * 1024),
        ));
    }
}

fn validate_port_number(errs: &mut Errs, path: &str, port: i32) {
    if !(1..=65535).contains(&port) {
        invalid(errs, path, port, "must be between 1 and 65535, inclusive");
    }
}

fn validate_int_or_port_name(errs: &mut Errs, path: &str, port: Option<&IntOrString>) {
    match port {
        None => required(errs, path, ""),
        Some(p) if p.is_string => {
            if p.str_val.is_empty() {
                required(errs, path, "");
            } else {
                check(errs, path, &p.str_val, is_valid_port_name(&p.str_val));
            }
        }
        Some(p) => validate_port_number(errs, path, p.int_val),
    }
}

fn validate_quantity(errs: &mut Errs, path: &str, value: &str) -> Option<Quantity> {
    match Quantity::parse(value) {
        Ok(q) => Some(q),
        Err(e) => {
            invalid_str(errs, path, value, &e);
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    Label,
    Dns1035,
}

fn name_rule(kind: Kind) -> NameRule {
    match kind {
        Kind::Namespace => NameRule::Label,
        Kind::Service => NameRule::Dns1035,
        _ => NameRule::Subdomain,
    }
}

fn validate_name(errs: &mut Errs, path: &str, name: &str, rule: NameRule) {
    let msgs = match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::Dns1035 => is_dns1035_label(name),
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

fn config_key_errors(k: &str) -> Vec<String> {
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

// ---------------------------------------------------------------------------------------------
// Pod spec
// ---------------------------------------------------------------------------------------------

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TAINT_EFFECTS: &[&str] = &["NoExecute", "NoSchedule", "PreferNoSchedule"];

#[derive(Default)]
struct PodCtx<'a> {
    /// Restart policies the owner allows (empty: any of Always, OnFailure, Never).
    restart_policies: &'a [&'a str],
    /// Volume names provided from outside the pod spec (StatefulSet claim templates).
    extra_volumes: Vec<String>,
    /// Owner kind for "activeDeadlineSeconds in X is not Supported".
    forbid_active_deadline: Option<&'a str>,
}

fn validate_pod_spec(e: &mut Errs, path: &str, spec: &v1::PodSpec, ctx: &PodCtx) {
    // Volumes.
    let mut volumes: BTreeSet<String> = ctx.extra_volumes.iter().cloned().collect();
    let mut seen_volumes = BTreeSet::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let p = format!("{path}.volumes[{i}]");
        if v.name.is_empty() {
            required(e, format!("{p}.name"), "");
        } else {
            check(e, &format!("{p}.name"), &v.name, is_dns1123_label(&v.name));
            if !seen_volumes.insert(v.name.clone()) {
                duplicate(e, format!("{p}.name"), &v.name);
            }
        }
        volumes.insert(v.name.clone());
        let sources = [
            v.host_path.is_some(),
            v.empty_dir.is_some(),
            v.persistent_volume_claim.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        match sources {
            0 => required(e, p.clone(), "must specify a volume type"),
            1 => {}
            _ => forbidden(e, p.clone(), "may not specify more than 1 volume type"),
        }
        if let Some(hp) = &v.host_path {
            if hp.path.is_empty() {
                required(e, format!("{p}.hostPath.path"), "");
            }
            if let Some(t) = &hp.r#type {
                one_of(
                    e,
                    &format!("{p}.hostPath.type"),
                    t,
                    &[
                        "",
                        "BlockDevice",
                        "CharDevice",
                        "Directory",
                        "DirectoryOrCreate",
                        "File",
                        "FileOrCreate",
                        "Socket",
                    ],
                    true,
                );
            }
        }
        if let Some(ed) = &v.empty_dir {
            one_of(
                e,
                &format!("{p}.emptyDir.medium"),
                &ed.medium,
                &["", "Memory", "HugePages"],
                true,
            );
            if !ed.size_limit.is_empty() {
                validate_quantity(e, &format!("{p}.emptyDir.sizeLimit"), &ed.size_limit);
            }
        }
        if let Some(c) = &v.persistent_volume_claim {
            if c.claim_name.is_empty() {
                required(e, format!("{p}.persistentVolumeClaim.claimName"), "");
            }
        }
        if let Some(c) = &v.config_map {
            if c.name.is_empty() {
                required(e, format!("{p}.configMap.name"), "");
            }
        }
        if let Some(s) = &v.secret {
            if s.secret_name.is_empty() {
                required(e, format!("{p}.secret.secretName"), "");
            }
        }
    }

    // Containers.
    if spec.containers.is_empty() {
        required(e, format!("{path}.containers"), "");
    }
    let mut names = BTreeSet::new();
    let mut port_names = BTreeSet::new();
    for (field, list) in [
        ("initContainers", &spec.init_containers),
        ("containers", &spec.containers),
    ] {
        for (i, c) in list.iter().enumerate() {
            let p = format!("{path}.{field}[{i}]");
            validate_container(
                e,
                &p,
                c,
                &volumes,
                field == "initContainers",
                &mut port_names,
            );
            if !c.name.is_empty() && !names.insert(c.name.clone()) {
                duplicate(e, format!("{p}.name"), &c.name);
            }
        }
    }

    // Pod-level fields.
    let restart = &spec.restart_policy;
    if ctx.restart_policies.is_empty() {
        one_of(
            e,
            &format!("{path}.restartPolicy"),
            restart,
            &["Always", "OnFailure", "Never"],
            true,
        );
    } else if restart.is_empty() {
        required(e, format!("{path}.restartPolicy"), "");
    } else if !ctx.restart_policies.contains(&restart.as_str()) {
        unsupported(
            e,
            format!("{path}.restartPolicy"),
            restart,
            ctx.restart_policies,
        );
    }
    one_of(
        e,
        &format!("{path}.dnsPolicy"),
        &spec.dns_policy,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        true,
    );
    if spec.dns_policy == "None" && spec.dns_config.is_none() {
        required(
            e,
            format!("{path}.dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        );
    }
    if let Some(t) = spec.termination_grace_period_seconds {
        non_negative(
            e,
            &format!("{path}.terminationGracePeriodSeconds"),
            t.into(),
        );
    }
    if let Some(a) = spec.active_deadline_seconds {
        if let Some(owner) = ctx.forbid_active_deadline {
            forbidden(
                e,
                format!("{path}.activeDeadlineSeconds"),
                &format!("activeDeadlineSeconds in {owner} is not Supported"),
            );
        } else if a < 1 {
            invalid(
                e,
                format!("{path}.activeDeadlineSeconds"),
                a,
                "must be between 1 and 2147483647, inclusive",
            );
        }
    }
    validate_labels(e, &format!("{path}.nodeSelector"), &spec.node_selector);
    if !spec.service_account_name.is_empty() {
        check(
            e,
            &format!("{path}.serviceAccountName"),
            &spec.service_account_name,
            is_dns1123_subdomain(&spec.service_account_name),
        );
    }
    if !spec.node_name.is_empty() {
        check(
            e,
            &format!("{path}.nodeName"),
            &spec.node_name,
            is_dns1123_subdomain(&spec.node_name),
        );
    }
    if !spec.hostname.is_empty() {
        check(
            e,
            &format!("{path}.hostname"),
            &spec.hostname,
            is_dns1123_label(&spec.hostname),
        );
    }
    if !spec.subdomain.is_empty() {
        check(
            e,
            &format!("{path}.subdomain"),
            &spec.subdomain,
            is_dns1123_label(&spec.subdomain),
        );
    }
    for (i, t) in spec.tolerations.iter().enumerate() {
        validate_toleration(e, &format!("{path}.tolerations[{i}]"), t);
    }
    if let Some(a) = &spec.affinity {
        validate_affinity(e, &format!("{path}.affinity"), a);
    }
    for (i, c) in spec.topology_spread_constraints.iter().enumerate() {
        let p = format!("{path}.topologySpreadConstraints[{i}]");
        if c.max_skew <= 0 {
            invalid(
                e,
                format!("{p}.maxSkew"),
                c.max_skew,
                "must be greater than zero",
            );
        }
        if c.topology_key.is_empty() {
            required(e, format!("{p}.topologyKey"), "can not be empty");
        }
        one_of(
            e,
            &format!("{p}.whenUnsatisfiable"),
            &c.when_unsatisfiable,
            &["DoNotSchedule", "ScheduleAnyway"],
            false,
        );
    }
    if let Some(p) = &spec.preemption_policy {
        one_of(
            e,
            &format!("{path}.preemptionPolicy"),
            p,
            &["Never", "PreemptLowerPriority"],
            false,
        );
    }
    for (name, v) in &spec.overhead {
        validate_quantity(e, &format!("{path}.overhead[{name}]"), v);
    }
}

fn validate_container(
    e: &mut Errs,
    p: &str,
    c: &v1::Container,
    volumes: &BTreeSet<String>,
    init: bool,
    port_names: &mut BTreeSet<String>,
) {
    if c.name.is_empty() {
        required(e, format!("{p}.name"), "");
    } else {
        check(e, &format!("{p}.name"), &c.name, is_dns1123_label(&c.name));
    }
    if c.image.trim().is_empty() {
        required(e, format!("{p}.image"), "");
    } else if c.image != c.image.trim() {
        invalid_str(
            e,
            format!("{p}.image"),
            &c.image,
            "must not have leading or trailing whitespace",
        );
    }
    one_of(
        e,
        &format!("{p}.imagePullPolicy"),
        &c.image_pull_policy,
        &["Always", "IfNotPresent", "Never"],
        true,
    );
    one_of(
        e,
        &format!("{p}.terminationMessagePolicy"),
        &c.termination_message_policy,
        &["File", "FallbackToLogsOnError"],
        true,
    );
    for (i, port) in c.ports.iter().enumerate() {
        let pp = format!("{p}.ports[{i}]");
        if !port.name.is_empty() {
            check(
                e,
                &format!("{pp}.name"),
                &port.name,
                is_valid_port_name(&port.name),
            );
            if !port_names.insert(port.name.clone()) {
                duplicate(e, format!("{pp}.name"), &port.name);
            }
        }
        if port.container_port == 0 {
            required(e, format!("{pp}.containerPort"), "");
        } else {
            validate_port_number(e, &format!("{pp}.containerPort"), port.container_port);
        }
        if port.host_port != 0 {
            validate_port_number(e, &format!("{pp}.hostPort"), port.host_port);
        }
        one_of(
            e,
            &format!("{pp}.protocol"),
            &port.protocol,
            PROTOCOLS,
            true,
        );
    }
    for (i, env) in c.env.iter().enumerate() {
        let ep = format!("{p}.env[{i}]");
        if env.name.is_empty() {
            required(e, format!("{ep}.name"), "");
        } else if env.name.contains('=') || !env.name.chars().all(|ch| (' '..='~').contains(&ch)) {
            invalid_str(
                e,
                format!("{ep}.name"),
                &env.name,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            );
        }
        if let Some(from) = &env.value_from {
            if !env.value.is_empty() {
                invalid_str(
                    e,
                    format!("{ep}.valueFrom"),
                    "",
                    "may not be specified when `value` is not empty",
                );
            }
            let n = [
                from.field_ref.is_some(),
                from.resource_field_ref.is_some(),
                from.config_map_key_ref.is_some(),
                from.secret_key_ref.is_some(),
            ]
            .into_iter()
            .filter(|x| *x)
            .count();
            if n == 0 {
                invalid_str(e, format!("{ep}.valueFrom"), "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
            } else if n > 1 {
                invalid_str(
                    e,
                    format!("{ep}.valueFrom"),
                    "",
                    "may not have more than one field specified at a time",
                );
            }
            if let Some(f) = &from.field_ref {
                if f.field_path.is_empty() {
                    required(e, format!("{ep}.valueFrom.fieldRef.fieldPath"), "");
                }
            }
            if let Some(k) = &from.config_map_key_ref {
                if k.key.is_empty() {
                    required(e, format!("{ep}.valueFrom.configMapKeyRef.key"), "");
                }
            }
            if let Some(k) = &from.secret_key_ref {
                if k.key.is_empty() {
                    required(e, format!("{ep}.valueFrom.secretKeyRef.key"), "");
                }
            }
        }
    }
    if let Some(r) = &c.resources {
        validate_resources(e, &format!("{p}.resources"), &r.limits, &r.requests);
    }
    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mp = format!("{p}.volumeMounts[{i}]");
        if m.name.is_empty() {
            required(e, format!("{mp}.name"), "");
        } else if !volumes.contains(&m.name) {
            not_found(e, format!("{mp}.name"), &m.name);
        }
        if m.mount_path.is_empty() {
            required(e, format!("{mp}.mountPath"), "");
        } else if !mount_paths.insert(m.mount_path.clone()) {
            invalid_str(
                e,
                format!("{mp}.mountPath"),
                &m.mount_path,
                "must be unique",
            );
        }
        if m.sub_path.starts_with('/') || m.sub_path.split('/').any(|s| s == "..") {
            invalid_str(
                e,
                format!("{mp}.subPath"),
                &m.sub_path,
                "must be a relative path without '..'",
            );
        }
    }
    for (name, probe, liveness_like) in [
        ("livenessProbe", &c.liveness_probe, true),
        ("readinessProbe", &c.readiness_probe, false),
        ("startupProbe", &c.startup_probe, true),
    ] {
        if let Some(pr) = probe {
            if init && c.restart_policy.as_deref() != Some("Always") {
                forbidden(
                    e,
                    format!("{p}.{name}"),
                    "may not be set for init containers without restartPolicy=Always",
                );
                continue;
            }
            validate_probe(e, &format!("{p}.{name}"), pr, liveness_like);
        }
    }
    if let Some(l) = &c.lifecycle {
        for (name, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
            if let Some(h) = h {
                validate_lifecycle_handler(e, &format!("{p}.lifecycle.{name}"), h);
            }
        }
    }
    if let Some(rp) = &c.restart_policy {
        if !init {
            forbidden(
                e,
                format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            );
        } else if rp != "Always" {
            unsupported(e, format!("{p}.restartPolicy"), rp, &["Always"]);
        }
    }
}

fn validate_resources(
    e: &mut Errs,
    p: &str,
    limits: &BTreeMap<String, String>,
    requests: &BTreeMap<String, String>,
) {
    let mut parsed_limits = BTreeMap::new();
    for (name, v) in limits {
        let path = format!("{p}.limits[{name}]");
        check(e, &path, name, is_qualified_name(name));
        if let Some(q) = validate_quantity(e, &path, v) {
            if q.sign() < 0 {
                invalid_str(e, path.clone(), v, "must be greater than or equal to 0");
            }
            parsed_limits.insert(name.clone(), q);
        }
    }
    for (name, v) in requests {
        let path = format!("{p}.requests[{name}]");
        check(e, &path, name, is_qualified_name(name));
        if let Some(q) = validate_quantity(e, &path, v) {
            if q.sign() < 0 {
                invalid_str(e, path.clone(), v, "must be greater than or equal to 0");
            }
            if let Some(l) = parsed_limits.get(name) {
                if q > *l {
                    invalid_str(
                        e,
                        path,
                        &q.canonical(),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            l.canonical()
                        ),
                    );
                }
            }
        }
    }
}

/// What probes and lifecycle hooks share: exactly one handler (`others` counts the kind's own
/// extra handlers: grpc for probes, sleep for hooks), and the exec/httpGet/tcpSocket fields.
fn validate_handler(
    e: &mut Errs,
    p: &str,
    exec: Option<&v1::ExecAction>,
    http_get: Option<&v1::HttpGetAction>,
    tcp_socket: Option<&v1::TcpSocketAction>,
    others: usize,
) {
    let n = usize::from(exec.is_some())
        + usize::from(http_get.is_some())
        + usize::from(tcp_socket.is_some())
        + others;
    match n {
        0 => required(e, p, "must specify a handler type"),
        1 => {}
        _ => forbidden(e, p, "may not specify more than 1 handler type"),
    }
    if exec.is_some_and(|x| x.command.is_empty()) {
        required(e, format!("{p}.exec.command"), "");
    }
    if let Some(h) = http_get {
        validate_http_get(e, &format!("{p}.httpGet"), h);
    }
    if let Some(t) = tcp_socket {
        validate_int_or_port_name(e, &format!("{p}.tcpSocket.port"), t.port.as_ref());
    }
}

fn validate_probe(e: &mut Errs, p: &str, pr: &v1::Probe, liveness_like: bool) {
    validate_handler(
        e,
        p,
        pr.exec.as_ref(),
        pr.http_get.as_ref(),
        pr.tcp_socket.as_ref(),
        usize::from(pr.grpc.is_some()),
    );
    if let Some(g) = &pr.grpc {
        validate_port_number(e, &format!("{p}.grpc.port"), g.port);
    }
    for (name, v) in [
        ("initialDelaySeconds", pr.initial_delay_seconds),
        ("timeoutSeconds", pr.timeout_seconds),
        ("periodSeconds", pr.period_seconds),
        ("successThreshold", pr.success_threshold),
        ("failureThreshold", pr.failure_threshold),
    ] {
        if let Some(v) = v {
            non_negative(e, &format!("{p}.{name}"), v.into());
        }
    }
    if liveness_like {
        if let Some(s) = pr.success_threshold {
            if s != 1 {
                invalid(e, format!("{p}.successThreshold"), s, "must be 1");
            }
        }
    }
    if let Some(t) = pr.termination_grace_period_seconds {
        if t <= 0 {
            invalid(
                e,
                format!("{p}.terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            );
        }
        if !liveness_like {
            invalid(
                e,
                format!("{p}.terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            );
        }
    }
}

fn validate_http_get(e: &mut Errs, p: &str, h: &v1::HttpGetAction) {
    validate_int_or_port_name(e, &format!("{p}.port"), h.port.as_ref());
    one_of(
        e,
        &format!("{p}.scheme"),
        &h.scheme,
        &["HTTP", "HTTPS"],
        true,
    );
    for (i, hd) in h.http_headers.iter().enumerate() {
        if hd.name.is_empty() {
            required(e, format!("{p}.httpHeaders[{i}].name"), "");
        }
    }
}

fn validate_lifecycle_handler(e: &mut Errs, p: &str, h: &v1::LifecycleHandler) {
    validate_handler(
        e,
        p,
        h.exec.as_ref(),
        h.http_get.as_ref(),
        h.tcp_socket.as_ref(),
        usize::from(h.sleep.is_some()),
    );
    if let Some(s) = &h.sleep {
        if s.seconds < 0 {
            invalid(
                e,
                format!("{p}.sleep.seconds"),
                s.seconds,
                "must be greater than or equal to 0",
            );
        }
    }
}

fn validate_toleration(e: &mut Errs, p: &str, t: &v1::Toleration) {
    if !t.key.is_empty() {
        check(e, &format!("{p}.key"), &t.key, is_qualified_name(&t.key));
    }
    if t.key.is_empty() && t.operator != "Exists" {
        invalid_str(
            e,
            format!("{p}.operator"),
            &t.operator,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        invalid_str(
            e,
            format!("{p}.effect"),
            &t.effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        );
    }
    match t.operator.as_str() {
        "" | "Equal" => check(
            e,
            &format!("{p}.operator"),
            &t.value,
            is_valid_label_value(&t.value),
        ),
        "Exists" => {
            if !t.value.is_empty() {
                invalid_str(
                    e,
                    format!("{p}.operator"),
                    &t.value,
                    "value must be empty when `operator` is 'Exists'",
                );
            }
        }
        other => unsupported(e, format!("{p}.operator"), other, &["Equal", "Exists"]),
    }
    one_of(e, &format!("{p}.effect"), &t.effect, TAINT_EFFECTS, true);
}

fn validate_node_selector_requirement(
    e: &mut Errs,
    p: &str,
    r: &v1::NodeSelectorRequirement,
    field: bool,
) {
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if r.values.is_empty() {
                required(
                    e,
                    format!("{p}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                );
            }
        }
        "Exists" | "DoesNotExist" => {
            if !r.values.is_empty() {
                forbidden(
                    e,
                    format!("{p}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                );
            }
        }
        "Gt" | "Lt" => {
            if r.values.len() != 1 {
                required(
                    e,
                    format!("{p}.values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                );
            } else if r.values[0].parse::<i64>().is_err() {
                invalid_str(
                    e,
                    format!("{p}.values[0]"),
                    &r.values[0],
                    "must be an integer",
                );
            }
        }
        other => invalid_str(
            e,
            format!("{p}.operator"),
            other,
            "not a valid selector operator",
        ),
    }
    if field {
        if r.key != "metadata.name" {
            unsupported(e, format!("{p}.key"), &r.key, &["metadata.name"]);
        }
    } else {
        check(e, &format!("{p}.key"), &r.key, is_qualified_name(&r.key));
    }
}

fn validate_node_selector_term(e: &mut Errs, p: &str, t: &v1::NodeSelectorTerm) {
    for (i, r) in t.match_expressions.iter().enumerate() {
        validate_node_selector_requirement(e, &format!("{p}.matchExpressions[{i}]"), r, false);
    }
    for (i, r) in t.match_fields.iter().enumerate() {
        validate_node_selector_requirement(e, &format!("{p}.matchFields[{i}]"), r, true);
    }
}

fn validate_pod_affinity_term(e: &mut Errs, p: &str, t: &v1::PodAffinityTerm) {
    if let Some(s) = &t.label_selector {
        validate_label_selector(e, &format!("{p}.labelSelector"), s);
    }
    if let Some(s) = &t.namespace_selector {
        validate_label_selector(e, &format!("{p}.namespaceSelector"), s);
    }
    for (i, ns) in t.namespaces.iter().enumerate() {
        check(e, &format!("{p}.namespaces[{i}]"), ns, is_dns1123_label(ns));
    }
    if t.topology_key.is_empty() {
        required(e, format!("{p}.topologyKey"), "can not be empty");
    } else {
        check(
            e,
            &format!("{p}.topologyKey"),
            &t.topology_key,
            is_qualified_name(&t.topology_key),
        );
    }
}

fn validate_affinity(e: &mut Errs, p: &str, a: &v1::Affinity) {
    if let Some(na) = &a.node_affinity {
        let np = format!("{p}.nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            let rp = format!("{np}.requiredDuringSchedulingIgnoredDuringExecution");
            if req.node_selector_terms.is_empty() {
                required(
                    e,
                    format!("{rp}.nodeSelectorTerms"),
                    "must have at least one node selector term",
                );
            }
            for (i, t) in req.node_selector_terms.iter().enumerate() {
                let tp = format!("{rp}.nodeSelectorTerms[{i}]");
                validate_node_selector_term(e, &tp, t);
                // Required terms of new pods: In/NotIn values must be label values
                // (upstream's AllowInvalidLabelValueInRequiredNodeAffinity is false on create).
                for (j, r) in t.match_expressions.iter().enumerate() {
                    if matches!(r.operator.as_str(), "In" | "NotIn") {
                        for (k, v) in r.values.iter().enumerate() {
                            check(
                                e,
                                &format!("{tp}.matchExpressions[{j}].values[{k}]"),
                                v,
                                is_valid_label_value(v),
                            );
                        }
                    }
                }
            }
        }
        for (i, pref) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            let pp = format!("{np}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            if !(1..=100).contains(&pref.weight) {
                invalid(
                    e,
                    format!("{pp}.weight"),
                    pref.weight,
                    "must be in the range 1-100",
                );
            }
            match &pref.preference {
                Some(t) => validate_node_selector_term(e, &format!("{pp}.preference"), t),
                None => required(e, format!("{pp}.preference"), ""),
            }
        }
    }
    let pod_terms = [
        (
            "podAffinity",
            a.pod_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            a.pod_anti_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ];
    for (name, terms) in pod_terms {
        let Some((req, pref)) = terms else { continue };
        let ap = format!("{p}.{name}");
        for (i, t) in req.iter().enumerate() {
            validate_pod_affinity_term(
                e,
                &format!("{ap}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
                t,
            );
        }
        for (i, w) in pref.iter().enumerate() {
            let wp = format!("{ap}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            if !(1..=100).contains(&w.weight) {
                invalid(
                    e,
                    format!("{wp}.weight"),
                    w.weight,
                    "must be in the range 1-100",
                );
            }
            match &w.pod_affinity_term {
                Some(t) => validate_pod_affinity_term(e, &format!("{wp}.podAffinityTerm"), t),
                None => required(e, format!("{wp}.podAffinityTerm"), ""),
            }
        }
    }
}

fn validate_label_selector(e: &mut Errs, p: &str, s: &v1::LabelSelector) {
    validate_labels(e, &format!("{p}.matchLabels"), &s.match_labels);
    for (i, r) in s.match_expressions.iter().enumerate() {
        let rp = format!("{p}.matchExpressions[{i}]");
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.is_empty() {
                    required(
                        e,
                        format!("{rp}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !r.values.is_empty() {
                    forbidden(
                        e,
                        format!("{rp}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            other => invalid_str(
                e,
                format!("{rp}.operator"),
                other,
                "not a valid selector operator",
            ),
        }
        check(e, &format!("{rp}.key"), &r.key, is_qualified_name(&r.key));
        for (j, v) in r.values.iter().enumerate() {
            check(e, &format!("{rp}.values[{j}]"), v, is_valid_label_value(v));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

fn selector_is_empty(s: &v1::LabelSelector) -> bool {
    s.match_labels.is_empty() && s.match_expressions.is_empty()
}

/// Selector required, non-empty and matching the template labels; template with restartPolicy
/// Always and no activeDeadlineSeconds. For ReplicaSet, Deployment, DaemonSet, StatefulSet.
fn validate_workload_selector_and_template(
    e: &mut Errs,
    kind_lower: &str,
    selector: Option<&v1::LabelSelector>,
    template: Option<&v1::PodTemplateSpec>,
    extra_volumes: &[String],
) {
    match selector {
        None => required(e, "spec.selector", ""),
        Some(s) => {
            validate_label_selector(e, "spec.selector", s);
            if selector_is_empty(s) {
                invalid_str(
                    e,
                    "spec.selector",
                    "",
                    &format!("empty selector is invalid for {kind_lower}"),
                );
            }
        }
    }
    let Some(t) = template else {
        required(e, "spec.template", "");
        return;
    };
    validate_template_metadata(e, t);
    if let Some(s) = selector.filter(|s| !selector_is_empty(s)) {
        selector_matches_template(e, s, t);
    }
    let owner = match kind_lower {
        "replicaset" => "ReplicaSet",
        "deployment" => "Deployment",
        "daemonset" => "DaemonSet",
        _ => "StatefulSet",
    };
    let ctx = PodCtx {
        restart_policies: &["Always"],
        extra_volumes: extra_volumes.to_vec(),
        forbid_active_deadline: Some(owner),
    };
    match &t.spec {
        Some(spec) => validate_pod_spec(e, "spec.template.spec", spec, &ctx),
        None => required(e, "spec.template.spec", ""),
    }
}

fn validate_template_metadata(e: &mut Errs, t: &v1::PodTemplateSpec) {
    if let Some(m) = &t.metadata {
        validate_labels(e, "spec.template.metadata.labels", &m.labels);
        validate_annotations(e, "spec.template.metadata.annotations", &m.annotations);
    }
}

fn template_labels(t: &v1::PodTemplateSpec) -> BTreeMap<String, String> {
    t.metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default()
}

fn selector_matches_template_at(
    e: &mut Errs,
    path: &str,
    s: &v1::LabelSelector,
    t: &v1::PodTemplateSpec,
) {
    let labels = template_labels(t);
    match LabelSelector::from_proto(Some(s)) {
        Ok(sel) => {
            if !sel.matches(&labels) {
                invalid(
                    e,
                    path,
                    go_map(&labels),
                    "`selector` does not match template `labels`",
                );
            }
        }
        Err(err) => invalid(
            e,
            path.replace("template.metadata.labels", "selector"),
            "",
            &err.to_string(),
        ),
    }
}

fn selector_matches_template(e: &mut Errs, s: &v1::LabelSelector, t: &v1::PodTemplateSpec) {
    selector_matches_template_at(e, "spec.template.metadata.labels", s, t);
}

fn validate_percent_or_int(e: &mut Errs, p: &str, v: &IntOrString) -> bool {
    if v.is_string {
        let ok = v
            .str_val
            .strip_suffix('%')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
        if !ok {
            invalid_str(e, p, &v.str_val, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
            return false;
        }
        true
    } else {
        if v.int_val < 0 {
            invalid(e, p, v.int_val, "must be greater than or equal to 0");
            return false;
        }
        true
    }
}

fn is_zero_int_or_percent(v: &IntOrString) -> bool {
    if v.is_string {
        v.str_val
            .strip_suffix('%')
            .and_then(|n| n.parse::<i64>().ok())
            == Some(0)
    } else {
        v.int_val == 0
    }
}

fn validate_max_unavailable_surge(
    e: &mut Errs,
    p: &str,
    unavailable: Option<&IntOrString>,
    surge: Option<&IntOrString>,
) {
    let mut ok = true;
    if let Some(u) = unavailable {
        ok &= validate_percent_or_int(e, &format!("{p}.maxUnavailable"), u);
        if u.is_string {
            if let Some(n) = u
                .str_val
                .strip_suffix('%')
                .and_then(|n| n.parse::<i64>().ok())
            {
                if n > 100 {
                    invalid_str(
                        e,
                        format!("{p}.maxUnavailable"),
                        &u.str_val,
                        "must not be greater than 100%",
                    );
                }
            }
        }
    }
    if let Some(s) = surge {
        ok &= validate_percent_or_int(e, &format!("{p}.maxSurge"), s);
    }
    if ok {
        let u0 = unavailable.is_none_or(is_zero_int_or_percent);
        let s0 = surge.is_none_or(is_zero_int_or_percent);
        if u0 && s0 {
            invalid(
                e,
                format!("{p}.maxUnavailable"),
                0,
                "may not be 0 when `maxSurge` is 0",
            );
        }
    }
}

fn validate_deployment_spec(e: &mut Errs, spec: &v1::DeploymentSpec) {
    non_negative(e, "spec.replicas", spec.replicas.unwrap_or(0).into());
    non_negative(e, "spec.minReadySeconds", spec.min_ready_seconds.into());
    if let Some(r) = spec.revision_history_limit {
        non_negative(e, "spec.revisionHistoryLimit", r.into());
    }
    if let Some(d) = spec.progress_deadline_seconds {
        non_negative(e, "spec.progressDeadlineSeconds", d.into());
        if d <= spec.min_ready_seconds {
            invalid(
                e,
                "spec.progressDeadlineSeconds",
                d,
                "must be greater than minReadySeconds",
            );
        }
    }
    validate_workload_selector_and_template(
        e,
        "deployment",
        spec.selector.as_ref(),
        spec.template.as_ref(),
        &[],
    );
    if let Some(s) = &spec.strategy {
        match s.r#type.as_str() {
            "Recreate" => {
                if s.rolling_update.is_some() {
                    forbidden(
                        e,
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    );
                }
            }
            "RollingUpdate" | "" => {
                if let Some(ru) = &s.rolling_update {
                    validate_max_unavailable_surge(
                        e,
                        "spec.strategy.rollingUpdate",
                        ru.max_unavailable.as_ref(),
                        ru.max_surge.as_ref(),
                    );
                }
            }
            other => unsupported(
                e,
                "spec.strategy.type",
                other,
                &["Recreate", "RollingUpdate"],
            ),
        }
    }
}

fn validate_daemonset_spec(e: &mut Errs, spec: &v1::DaemonSetSpec) {
    non_negative(e, "spec.minReadySeconds", spec.min_ready_seconds.into());
    if let Some(r) = spec.revision_history_limit {
        non_negative(e, "spec.revisionHistoryLimit", r.into());
    }
    validate_workload_selector_and_template(
        e,
        "daemonset",
        spec.selector.as_ref(),
        spec.template.as_ref(),
        &[],
    );
    if let Some(s) = &spec.update_strategy {
        match s.r#type.as_str() {
            "OnDelete" => {}
            "RollingUpdate" | "" => {
                if let Some(ru) = &s.rolling_update {
                    validate_max_unavailable_surge(
                        e,
                        "spec.updateStrategy.rollingUpdate",
                        ru.max_unavailable.as_ref(),
                        ru.max_surge.as_ref(),
                    );
                }
            }
            other => unsupported(
                e,
                "spec.updateStrategy.type",
                other,
                &["OnDelete", "RollingUpdate"],
            ),
        }
    }
}

fn validate_statefulset_spec(e: &mut Errs, spec: &v1::StatefulSetSpec) {
    non_negative(e, "spec.replicas", spec.replicas.unwrap_or(0).into());
    non_negative(e, "spec.minReadySeconds", spec.min_ready_seconds.into());
    if let Some(r) = spec.revision_history_limit {
        non_negative(e, "spec.revisionHistoryLimit", r.into());
    }
    one_of(
        e,
        "spec.podManagementPolicy",
        &spec.pod_management_policy,
        &["OrderedReady", "Parallel"],
        true,
    );
    if !spec.service_name.is_empty() {
        check(
            e,
            "spec.serviceName",
            &spec.service_name,
            is_dns1123_label(&spec.service_name),
        );
    }
    if let Some(s) = &spec.update_strategy {
        match s.r#type.as_str() {
            "OnDelete" => {
                if s.rolling_update.is_some() {
                    forbidden(
                        e,
                        "spec.updateStrategy.rollingUpdate",
                        "only allowed for updateStrategy 'RollingUpdate'",
                    );
                }
            }
            "RollingUpdate" | "" => {
                if let Some(ru) = &s.rolling_update {
                    if let Some(pt) = ru.partition {
                        non_negative(e, "spec.updateStrategy.rollingUpdate.partition", pt.into());
                    }
                    if let Some(mu) = &ru.max_unavailable {
                        let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                        if validate_percent_or_int(e, p, mu) && is_zero_int_or_percent(mu) {
                            invalid(e, p, mu, "must be greater than 0");
                        }
                    }
                }
            }
            other => unsupported(
                e,
                "spec.updateStrategy.type",
                other,
                &["OnDelete", "RollingUpdate"],
            ),
        }
    }
    if let Some(rp) = &spec.persistent_volume_claim_retention_policy {
        let p = "spec.persistentVolumeClaimRetentionPolicy";
        one_of(
            e,
            &format!("{p}.whenDeleted"),
            &rp.when_deleted,
            &["Retain", "Delete"],
            true,
        );
        one_of(
            e,
            &format!("{p}.whenScaled"),
            &rp.when_scaled,
            &["Retain", "Delete"],
            true,
        );
    }
    if let Some(o) = &spec.ordinals {
        non_negative(e, "spec.ordinals.start", o.start.into());
    }
    let mut claim_names = Vec::new();
    for (i, pvc) in spec.volume_claim_templates.iter().enumerate() {
        let p = format!("spec.volumeClaimTemplates[{i}]");
        let name = pvc.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
        if name.is_empty() {
            required(e, format!("{p}.metadata.name"), "");
        } else {
            check(
                e,
                &format!("{p}.metadata.name"),
                name,
                is_dns1123_subdomain(name),
            );
            claim_names.push(name.to_string());
        }
        match &pvc.spec {
            Some(s) => validate_pvc_spec(e, &format!("{p}.spec"), s),
            None => required(e, format!("{p}.spec"), ""),
        }
    }
    validate_workload_selector_and_template(
        e,
        "statefulset",
        spec.selector.as_ref(),
        spec.template.as_ref(),
        &claim_names,
    );
}

fn validate_job_spec(e: &mut Errs, path: &str, spec: &v1::JobSpec, is_job: bool) {
    for (name, v) in [
        ("parallelism", spec.parallelism),
        ("completions", spec.completions),
        ("backoffLimit", spec.backoff_limit),
        ("ttlSecondsAfterFinished", spec.ttl_seconds_after_finished),
        ("backoffLimitPerIndex", spec.backoff_limit_per_index),
        ("maxFailedIndexes", spec.max_failed_indexes),
    ] {
        if let Some(v) = v {
            non_negative(e, &format!("{path}.{name}"), v.into());
        }
    }
    if let Some(a) = spec.active_deadline_seconds {
        non_negative(e, &format!("{path}.activeDeadlineSeconds"), a.into());
    }
    if let Some(mode) = &spec.completion_mode {
        one_of(
            e,
            &format!("{path}.completionMode"),
            mode,
            &["NonIndexed", "Indexed"],
            false,
        );
        if mode == "Indexed" && spec.completions.is_none() {
            required(
                e,
                format!("{path}.completions"),
                "when completion mode is Indexed",
            );
        }
    }
    if let Some(p) = &spec.pod_replacement_policy {
        one_of(
            e,
            &format!("{path}.podReplacementPolicy"),
            p,
            &["TerminatingOrFailed", "Failed"],
            false,
        );
    }
    let template = spec.template.as_ref();
    let Some(t) = template else {
        required(e, format!("{path}.template"), "");
        return;
    };
    if let Some(m) = &t.metadata {
        validate_labels(e, &format!("{path}.template.metadata.labels"), &m.labels);
    }
    if is_job {
        match &spec.selector {
            None => {
                if spec.manual_selector == Some(true) {
                    required(e, format!("{path}.selector"), "");
                }
            }
            Some(s) => {
                validate_label_selector(e, &format!("{path}.selector"), s);
                if selector_is_empty(s) {
                    if spec.manual_selector == Some(true) {
                        invalid_str(
                            e,
                            format!("{path}.selector"),
                            "",
                            "empty selector is invalid for job",
                        );
                    }
                } else {
                    selector_matches_template_at(
                        e,
                        &format!("{path}.template.metadata.labels"),
                        s,
                        t,
                    );
                }
            }
        }
    }
    let ctx = PodCtx {
        restart_policies: &["OnFailure", "Never"],
        ..Default::default()
    };
    match &t.spec {
        Some(ps) => validate_pod_spec(e, &format!("{path}.template.spec"), ps, &ctx),
        None => required(e, format!("{path}.template.spec"), ""),
    }
}

fn validate_cronjob_spec(e: &mut Errs, spec: &v1::CronJobSpec) {
    if spec.schedule.is_empty() {
        required(e, "spec.schedule", "");
    } else {
        // As Kubernetes' validateScheduleFormat: the cron parser's verdict (which accepts a
        // `TZ=`/`CRON_TZ=` prefix), then the ban on TZ in the schedule.
        if let Err(err) = validate_cron_with_tz(&spec.schedule) {
            invalid_str(e, "spec.schedule", &spec.schedule, &err);
        }
        if spec.schedule.contains("TZ") {
            invalid_str(
                e,
                "spec.schedule",
                &spec.schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            );
        }
    }
    if let Some(tz) = &spec.time_zone {
        validate_time_zone(e, "spec.timeZone", tz);
    }
    one_of(
        e,
        "spec.concurrencyPolicy",
        &spec.concurrency_policy,
        &["Allow", "Forbid", "Replace"],
        false,
    );
    for (name, v) in [
        ("startingDeadlineSeconds", spec.starting_deadline_seconds),
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(v) = v {
            non_negative(e, &format!("spec.{name}"), v.into());
        }
    }
    match spec.job_template.as_ref().and_then(|jt| jt.spec.as_ref()) {
        Some(js) => validate_job_spec(e, "spec.jobTemplate.spec", js, false),
        None => required(e, "spec.jobTemplate.spec", ""),
    }
}

/// robfig/cron's `ParseStandard`, including its `TZ=`/`CRON_TZ=` prefix (whose location must
/// load).
fn validate_cron_with_tz(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        let (prefix, rest) = s.split_once(' ').unwrap_or((s, ""));
        let loc = prefix.split_once('=').map_or("", |(_, l)| l);
        if let Err(err) = crate::tz::load(loc) {
            return Err(format!("provided bad location {loc}: {err}"));
        }
        return validate_cron_schedule(rest);
    }
    validate_cron_schedule(s)
}

/// Kubernetes' `validateTimeZone`: each `/`-separated part is 1–14 of `[A-Za-z.\-_0-9+]`, not
/// `.`/`..` and not starting with `-`; `Local` is refused; and the zone must load from the tz
/// database ([`crate::tz::load`], Go's `time.LoadLocation`).
fn validate_time_zone(e: &mut Errs, path: &str, tz: &str) {
    if tz.is_empty() {
        invalid_str(e, path, tz, "timeZone must be nil or non-empty string");
        return;
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
    };
    if !tz.split('/').all(part_ok) {
        invalid_str(e, path, tz, &format!("unknown time zone {tz}"));
        return;
    }
    if tz.eq_ignore_ascii_case("Local") {
        invalid_str(
            e,
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        );
        if tz == "Local" {
            // Go's LoadLocation("Local") succeeds.
            return;
        }
    }
    if let Err(err) = crate::tz::load(tz) {
        invalid_str(e, path, tz, &err);
    }
}

/// Check a standard 5-field cron schedule (minute hour day-of-month month day-of-week) or a
/// macro (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>),
/// as the cron library Kubernetes uses accepts them.
pub fn validate_cron_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if let Some(m) = s.strip_prefix('@') {
        return match m {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if m.starts_with("every ") => {
                let d = m["every ".len()..].trim();
                if is_go_duration(d) {
                    Ok(())
                } else {
                    Err(format!("failed to parse duration {d}"))
                }
            }
            _ => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {s}",
            fields.len()
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(u32, u32, &[&str], u32, bool); 5] = [
        (0, 59, &[], 0, false),
        (0, 23, &[], 0, false),
        (1, 31, &[], 0, true),
        (1, 12, MONTHS, 1, false),
        (0, 6, DAYS, 0, true),
    ];
    for (field, (min, max, names, name_base, question)) in fields.iter().zip(specs) {
        for part in field.split(',') {
            parse_cron_part(part, min, max, names, name_base, question)?;
        }
    }
    Ok(())
}

fn parse_cron_part(
    part: &str,
    min: u32,
    max: u32,
    names: &[&str],
    base: u32,
    question: bool,
) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((r, s)) => {
            let step: u32 = s
                .parse()
                .map_err(|_| format!("failed to parse int from {s}"))?;
            if step == 0 {
                return Err(format!("step of range should be a positive number: {part}"));
            }
            (r, Some(step))
        }
        None => (part, None),
    };
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + base);
        }
        s.parse::<u32>()
            .map_err(|_| format!("failed to parse int from {s}"))
    };
    let (lo, hi) = if range == "*" || (question && range == "?") {
        (min, max)
    } else if let Some((a, b)) = range.split_once('-') {
        (value(a)?, value(b)?)
    } else {
        let v = value(range)?;
        // "5/10" means from 5 to the maximum by 10.
        (v, if step.is_some() { max } else { v })
    };
    if lo < min {
        return Err(format!(
            "beginning of range ({lo}) below minimum ({min}): {part}"
        ));
    }
    if hi > max {
        return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
    }
    if lo > hi {
        return Err(format!(
            "beginning of range ({lo}) beyond end of range ({hi}): {part}"
        ));
    }
    Ok(())
}

fn is_go_duration(d: &str) -> bool {
    let mut rest = d;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Service, PVC, HPA
// ---------------------------------------------------------------------------------------------

fn validate_service_spec(e: &mut Errs, spec: &v1::ServiceSpec) {
    let ty = spec.r#type.as_str();
    one_of(
        e,
        "spec.type",
        ty,
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        true,
    );
    let headless = spec.cluster_ip == "None";
    if ty == "ExternalName" {
        // ValidateServiceCreate: no IP family fields on an ExternalName Service (its selector,
        // if any, is allowed and ignored: the endpoint controllers skip ExternalName).
        if !spec.ip_families.is_empty() {
            forbidden(
                e,
                "spec.ipFamilies",
                "may not be set for ExternalName services",
            );
        }
        if spec.ip_family_policy.is_some() {
            forbidden(
                e,
                "spec.ipFamilyPolicy",
                "may not be set for ExternalName services",
            );
        }
        if spec.external_name.is_empty() {
            required(e, "spec.externalName", "");
        } else {
            check(
                e,
                "spec.externalName",
                &spec.external_name,
                is_dns1123_subdomain(spec.external_name.trim_end_matches('.')),
            );
        }
    } else if spec.ports.is_empty() && !headless {
        required(e, "spec.ports", "");
    }
    if headless && matches!(ty, "NodePort" | "LoadBalancer") {
        invalid_str(
            e,
            "spec.clusterIP",
            "None",
            &format!("may not be set to 'None' for {ty} services"),
        );
    } else if !spec.cluster_ip.is_empty()
        && !headless
        && spec.cluster_ip.parse::<std::net::IpAddr>().is_err()
    {
        invalid_str(
            e,
            "spec.clusterIP",
            &spec.cluster_ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        );
    }
    one_of(
        e,
        "spec.sessionAffinity",
        &spec.session_affinity,
        &["ClientIP", "None"],
        true,
    );
    if let Some(c) = &spec.session_affinity_config {
        if spec.session_affinity != "ClientIP" {
            forbidden(
                e,
                "spec.sessionAffinityConfig".to_string(),
                &format!(
                    "must not be set when session affinity is {}",
                    spec.session_affinity
                ),
            );
        } else if let Some(t) = c.client_ip.as_ref().and_then(|c| c.timeout_seconds) {
            if !(1..=86400).contains(&t) {
                invalid(
                    e,
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds".to_string(),
                    t,
                    "must be greater than 0 and less than 86400",
                );
            }
        }
    }
    let mut names = BTreeSet::new();
    let mut port_protocols = BTreeSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        if spec.ports.len() > 1 && port.name.is_empty() {
            required(e, format!("{p}.name"), "");
        } else if !port.name.is_empty() {
            check(
                e,
                &format!("{p}.name"),
                &port.name,
                is_dns1123_label(&port.name),
            );
            if !names.insert(port.name.clone()) {
                duplicate(e, format!("{p}.name"), &port.name);
            }
        }
        validate_port_number(e, &format!("{p}.port"), port.port);
        one_of(e, &format!("{p}.protocol"), &port.protocol, PROTOCOLS, true);
        if !port_protocols.insert((port.port, port.protocol.clone())) {
            duplicate(e, p.clone(), &format!("{}/{}", port.port, port.protocol));
        }
        if let Some(t) = &port.target_port {
            if t.is_string {
                if !t.str_val.is_empty() {
                    check(
                        e,
                        &format!("{p}.targetPort"),
                        &t.str_val,
                        is_valid_port_name(&t.str_val),
                    );
                }
            } else if t.int_val != 0 {
                validate_port_number(e, &format!("{p}.targetPort"), t.int_val);
            }
        }
        if port.node_port != 0 {
            if matches!(ty, "ClusterIP" | "" | "ExternalName") {
                forbidden(
                    e,
                    format!("{p}.nodePort"),
                    &format!(
                        "may not be used when `type` is '{}'",
                        if ty.is_empty() { "ClusterIP" } else { ty }
                    ),
                );
            } else if !(30000..=32767).contains(&port.node_port) {
                invalid(e, format!("{p}.nodePort"), port.node_port, "provided port is not in the valid range. The range of valid ports is 30000-32767");
            }
        }
    }
    validate_labels(e, "spec.selector", &spec.selector);
    if !spec.external_traffic_policy.is_empty() {
        if matches!(ty, "NodePort" | "LoadBalancer") {
            one_of(
                e,
                "spec.externalTrafficPolicy",
                &spec.external_traffic_policy,
                &["Cluster", "Local"],
                false,
            );
        } else {
            invalid_str(
                e,
                "spec.externalTrafficPolicy",
                &spec.external_traffic_policy,
                "may only be set for externally-accessible services",
            );
        }
    }
    if let Some(p) = &spec.internal_traffic_policy {
        one_of(
            e,
            "spec.internalTrafficPolicy",
            p,
            &["Cluster", "Local"],
            false,
        );
    }
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// ValidatePersistentVolumeSpec: capacity, access modes, reclaim policy, exactly one source.
fn validate_pv_spec(e: &mut Errs, spec: &v1::PersistentVolumeSpec) {
    if spec.access_modes.is_empty() {
        required(e, "spec.accessModes", "");
    }
    for m in &spec.access_modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            unsupported(e, "spec.accessModes", m, ACCESS_MODES);
        }
    }
    match spec.capacity.get("storage") {
        None => required(e, "spec.capacity", ""),
        Some(v) => {
            validate_quantity(e, "spec.capacity[storage]", v);
        }
    }
    for k in spec.capacity.keys().filter(|k| k.as_str() != "storage") {
        unsupported(e, "spec.capacity", k, &["storage"]);
    }
    one_of(
        e,
        "spec.persistentVolumeReclaimPolicy",
        &spec.persistent_volume_reclaim_policy,
        &["Delete", "Recycle", "Retain"],
        true,
    );
    match (&spec.host_path, &spec.local) {
        (None, None) => required(e, "spec", "must specify a volume type"),
        (Some(_), Some(_)) => forbidden(e, "spec.local", "may not specify more than 1 volume type"),
        (Some(h), None) if h.path.is_empty() => required(e, "spec.hostPath.path", ""),
        (None, Some(l)) => {
            if l.path.is_empty() {
                required(e, "spec.local.path", "");
            }
            if spec
                .node_affinity
                .as_ref()
                .and_then(|n| n.required.as_ref())
                .is_none()
            {
                required(
                    e,
                    "spec.nodeAffinity",
                    "Local volume requires node affinity",
                );
            }
        }
        _ => {}
    }
}

fn validate_pvc_spec(e: &mut Errs, p: &str, spec: &v1::PersistentVolumeClaimSpec) {
    if spec.access_modes.is_empty() {
        required(
            e,
            format!("{p}.accessModes"),
            "at least 1 access mode is required",
        );
    }
    for m in &spec.access_modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            unsupported(e, format!("{p}.accessModes"), m, ACCESS_MODES);
        }
    }
    if spec.access_modes.iter().any(|m| m == "ReadWriteOncePod") && spec.access_modes.len() > 1 {
        forbidden(
            e,
            format!("{p}.accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        );
    }
    if let Some(s) = &spec.selector {
        validate_label_selector(e, &format!("{p}.selector"), s);
    }
    let requests = spec.resources.as_ref().map(|r| &r.requests);
    match requests.and_then(|r| r.get("storage")) {
        None => required(e, format!("{p}.resources[storage]"), ""),
        Some(v) => {
            if let Some(q) = validate_quantity(e, &format!("{p}.resources[storage]"), v) {
                if q.sign() <= 0 {
                    invalid_str(
                        e,
                        format!("{p}.resources[storage]"),
                        v,
                        "must be greater than zero",
                    );
                }
            }
        }
    }
    if let Some(r) = &spec.resources {
        for (name, v) in r.limits.iter() {
            validate_quantity(e, &format!("{p}.resources.limits[{name}]"), v);
        }
        for (name, v) in r.requests.iter().filter(|(n, _)| n.as_str() != "storage") {
            validate_quantity(e, &format!("{p}.resources.requests[{name}]"), v);
        }
    }
    if let Some(m) = &spec.volume_mode {
        one_of(
            e,
            &format!("{p}.volumeMode"),
            m,
            &["Block", "Filesystem"],
            false,
        );
    }
}

fn validate_hpa_spec(e: &mut Errs, spec: &v1::HorizontalPodAutoscalerSpec) {
    match &spec.scale_target_ref {
        None => {
            required(e, "spec.scaleTargetRef.kind", "");
            required(e, "spec.scaleTargetRef.name", "");
        }
        Some(r) => {
            if r.kind.is_empty() {
                required(e, "spec.scaleTargetRef.kind", "");
            }
            if r.name.is_empty() {
                required(e, "spec.scaleTargetRef.name", "");
            } else {
                check(
                    e,
                    "spec.scaleTargetRef.name",
                    &r.name,
                    is_dns1123_subdomain(&r.name),
                );
            }
        }
    }
    let min = spec.min_replicas.unwrap_or(1);
    if min < 1 {
        invalid(
            e,
            "spec.minReplicas",
            min,
            "must be greater than or equal to 1",
        );
    }
    if spec.max_replicas < 1 {
        invalid(
            e,
            "spec.maxReplicas",
            spec.max_replicas,
            "must be greater than 0",
        );
    } else if spec.max_replicas < min {
        invalid(
            e,
            "spec.maxReplicas",
            spec.max_replicas,
            "must be greater than or equal to `minReplicas`",
        );
    }
    if let Some(t) = spec.target_cpu_utilization_percentage {
        if t < 1 {
            invalid(
                e,
                "spec.targetCPUUtilizationPercentage",
                t,
                "must be greater than 0",
            );
        }
    }
    for (i, m) in spec.metrics.iter().enumerate() {
        let p = format!("spec.metrics[{i}]");
        let (expected, target) = match m.r#type.as_str() {
            "Resource" => {
                if let Some(r) = &m.resource {
                    if r.name.is_empty() {
                        required(e, format!("{p}.resource.name"), "");
                    }
                }
                ("resource", m.resource.as_ref().map(|r| r.target.as_ref()))
            }
            "ContainerResource" => {
                if let Some(r) = &m.container_resource {
                    if r.container.is_empty() {
                        required(e, format!("{p}.containerResource.container"), "");
                    }
                }
                (
                    "containerResource",
                    m.container_resource.as_ref().map(|r| r.target.as_ref()),
                )
            }
            "Pods" => ("pods", m.pods.as_ref().map(|r| r.target.as_ref())),
            "Object" => ("object", m.object.as_ref().map(|r| r.target.as_ref())),
            "External" => ("external", m.external.as_ref().map(|r| r.target.as_ref())),
            other => {
                unsupported(
                    e,
                    format!("{p}.type"),
                    other,
                    &[
                        "ContainerResource",
                        "External",
                        "Object",
                        "Pods",
                        "Resource",
                    ],
                );
                continue;
            }
        };
        let Some(target) = target else {
            required(
                e,
                format!("{p}.{expected}"),
                &format!(
                    "must populate information for the given metric source (type {})",
                    m.r#type
                ),
            );
            continue;
        };
        let tp = format!("{p}.{expected}.target");
        let Some(t) = target else {
            required(e, tp, "");
            continue;
        };
        match t.r#type.as_str() {
            "Utilization" => match t.average_utilization {
                None => required(
                    e,
                    format!("{tp}.averageUtilization"),
                    "must set averageUtilization when type is Utilization",
                ),
                Some(u) if u <= 0 => invalid(
                    e,
                    format!("{tp}.averageUtilization"),
                    u,
                    "must be greater than 0",
                ),
                _ => {}
            },
            "Value" => {
                if t.value.is_empty() {
                    required(
                        e,
                        format!("{tp}.value"),
                        "must set value when type is Value",
                    );
                } else if let Some(q) = validate_quantity(e, &format!("{tp}.value"), &t.value) {
                    if q.sign() <= 0 {
                        invalid_str(e, format!("{tp}.value"), &t.value, "must be positive");
                    }
                }
            }
            "AverageValue" => {
                if t.average_value.is_empty() {
                    required(
                        e,
                        format!("{tp}.averageValue"),
                        "must set averageValue when type is AverageValue",
                    );
                } else if let Some(q) =
                    validate_quantity(e, &format!("{tp}.averageValue"), &t.average_value)
                {
                    if q.sign() <= 0 {
                        invalid_str(
                            e,
                            format!("{tp}.averageValue"),
                            &t.average_value,
                            "must be positive",
                        );
                    }
                }
            }
            other => unsupported(
                e,
                format!("{tp}.type"),
                other,
                &["AverageValue", "Utilization", "Value"],
            ),
        }
    }
    if let Some(b) = &spec.behavior {
        for (name, r) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
            let Some(r) = r else { continue };
            let p = format!("spec.behavior.{name}");
            if let Some(w) = r.stabilization_window_seconds {
                if !(0..=3600).contains(&w) {
                    invalid(
                        e,
                        format!("{p}.stabilizationWindowSeconds"),
                        w,
                        "must be less than or equal to 3600",
                    );
                }
            }
            if let Some(sp) = &r.select_policy {
                one_of(
                    e,
                    &format!("{p}.selectPolicy"),
                    sp,
                    &["Disabled", "Max", "Min"],
                    false,
                );
            }
            for (i, pol) in r.policies.iter().enumerate() {
                let pp = format!("{p}.policies[{i}]");
                one_of(
                    e,
                    &format!("{pp}.type"),
                    &pol.r#type,
                    &["Percent", "Pods"],
                    false,
                );
                if pol.value <= 0 {
                    invalid(
                        e,
                        format!("{pp}.value"),
                        pol.value,
                        "must be greater than zero",
                    );
                }
                if !(1..=1800).contains(&pol.period_seconds) {
                    invalid(
                        e,
                        format!("{pp}.periodSeconds"),
                        pol.period_seconds,
                        "must be greater than zero and less than or equal to 1800",
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Updates
// ---------------------------------------------------------------------------------------------

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
const STS_UPDATE_MSG: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
const PVC_UPDATE_MSG: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

fn immutable(e: &mut Errs, path: &str, value: impl std::fmt::Display) {
    invalid(e, path, value, "field is immutable");
}

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// The leaf paths where two JSON values differ (at most `limit`).
fn diff_paths(
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

fn go_selector(s: Option<&v1::LabelSelector>) -> String {
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

fn validate_pod_update(e: &mut Errs, old: v1::PodSpec, new: v1::PodSpec) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::manifest::parse_manifests;

    fn obj(text: &str) -> Object {
        let mut o = parse_manifests(text).expect("parses").remove(0).object;
        apply_defaults(&mut o);
        o
    }

    fn errors(text: &str) -> Vec<String> {
        validate(&obj(text)).iter().map(|e| e.to_string()).collect()
    }

    fn has(errs: &[String], want: &str) -> bool {
        errs.iter().any(|e| e == want)
    }

    const POD_HEAD: &str =
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\nspec:\n";

    fn pod(spec: &str) -> Vec<String> {
        errors(&format!("{POD_HEAD}{spec}"))
    }

    #[test]
    fn metadata_rules() {
        let e = errors("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    'bad key!': x\n    ok: 'bad value!'\n");
        assert!(
            has(
                &e,
                "metadata.name: Required value: name or generateName is required"
            ),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|x| x.starts_with("metadata.labels: Invalid value: \"bad key!\"")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|x| x.starts_with("metadata.labels: Invalid value: \"bad value!\"")),
            "{e:?}"
        );
        let e = errors("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cm-\n");
        assert!(e.is_empty(), "{e:?}");
        let e = errors("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n");
        assert!(
            e[0].starts_with(
                "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
            ),
            "{e:?}"
        );
        let e = errors("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a.b\n");
        assert!(
            e[0].starts_with("metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label"),
            "{e:?}"
        );
        let e = errors("apiVersion: v1\nkind: Service\nmetadata:\n  name: 1abc\nspec:\n  ports:\n  - port: 80\n");
        assert!(
            e[0].starts_with("metadata.name: Invalid value: \"1abc\": a DNS-1035 label"),
            "{e:?}"
        );
        let e = errors("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: 'n'\n  namespace: x\n");
        assert!(
            has(
                &e,
                "metadata.namespace: Forbidden: not allowed on this type"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn pod_spec_rules() {
        assert!(pod("  containers:\n  - name: a\n    image: x\n").is_empty());
        let e = pod("  containers: []\n");
        assert!(has(&e, "spec.containers: Required value"), "{e:?}");
        let e = pod("  containers:\n  - name: a\n  - name: a\n    image: x\n");
        assert!(has(&e, "spec.containers[0].image: Required value"), "{e:?}");
        assert!(
            has(&e, "spec.containers[1].name: Duplicate value: \"a\""),
            "{e:?}"
        );
        let e = pod("  containers:\n  - name: A_b\n    image: x\n");
        assert!(
            e[0].starts_with("spec.containers[0].name: Invalid value: \"A_b\""),
            "{e:?}"
        );
        let e = pod("  restartPolicy: Sometimes\n  containers:\n  - name: a\n    image: x\n");
        assert!(has(&e, "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""), "{e:?}");
        let e = pod("  dnsPolicy: Weird\n  containers:\n  - name: a\n    image: x\n    ports:\n    - containerPort: 70000\n      protocol: ICMP\n");
        assert!(has(&e, "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"), "{e:?}");
        assert!(has(&e, "spec.containers[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""), "{e:?}");
        assert!(
            e.iter()
                .any(|x| x.starts_with("spec.dnsPolicy: Unsupported value: \"Weird\"")),
            "{e:?}"
        );
        let e = pod("  activeDeadlineSeconds: 0\n  containers:\n  - name: a\n    image: x\n");
        assert!(has(&e, "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"), "{e:?}");
    }

    #[test]
    fn probe_rules() {
        let e = pod("  containers:\n  - name: a\n    image: x\n    livenessProbe:\n      periodSeconds: 5\n");
        assert!(
            has(
                &e,
                "spec.containers[0].livenessProbe: Required value: must specify a handler type"
            ),
            "{e:?}"
        );
        let e = pod("  containers:\n  - name: a\n    image: x\n    livenessProbe:\n      exec:\n        command: [ls]\n      tcpSocket:\n        port: 80\n      successThreshold: 2\n      periodSeconds: -1\n");
        assert!(has(&e, "spec.containers[0].livenessProbe: Forbidden: may not specify more than 1 handler type"), "{e:?}");
        assert!(
            has(
                &e,
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
            ),
            "{e:?}"
        );
        assert!(has(&e, "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"), "{e:?}");
        // Readiness probes may have a success threshold above 1.
        let e = pod("  containers:\n  - name: a\n    image: x\n    readinessProbe:\n      httpGet:\n        port: http\n      successThreshold: 2\n");
        assert!(e.is_empty(), "{e:?}");
        let e = pod("  containers:\n  - name: a\n    image: x\n    readinessProbe:\n      httpGet:\n        port: 0\n");
        assert!(has(&e, "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive"), "{e:?}");
    }

    #[test]
    fn volume_and_resource_rules() {
        let e = pod("  volumes:\n  - name: v\n    emptyDir: {}\n  - name: v\n    hostPath:\n      path: /x\n  - name: w\n  containers:\n  - name: a\n    image: x\n    volumeMounts:\n    - name: v\n      mountPath: /a\n    - name: missing\n      mountPath: /b\n");
        assert!(
            has(&e, "spec.volumes[1].name: Duplicate value: \"v\""),
            "{e:?}"
        );
        assert!(
            has(
                &e,
                "spec.volumes[2]: Required value: must specify a volume type"
            ),
            "{e:?}"
        );
        assert!(
            has(
                &e,
                "spec.containers[0].volumeMounts[1].name: Not found: \"missing\""
            ),
            "{e:?}"
        );
        let e = pod("  containers:\n  - name: a\n    image: x\n    resources:\n      limits:\n        cpu: 500m\n      requests:\n        cpu: '1'\n        memory: lots\n");
        assert!(has(&e, "spec.containers[0].resources.requests[cpu]: Invalid value: \"1\": must be less than or equal to cpu limit of 500m"), "{e:?}");
        assert!(e.iter().any(|x| x.starts_with("spec.containers[0].resources.requests[memory]: Invalid value: \"lots\": quantities must match")), "{e:?}");
    }

    #[test]
    fn scheduling_rules() {
        let e = pod("  containers:\n  - name: a\n    image: x\n  tolerations:\n  - key: k\n    operator: Exists\n    value: v\n  - operator: Equal\n    value: v\n  - key: k\n    effect: NoSchedule\n    tolerationSeconds: 5\n  - key: k\n    effect: Sometimes\n  - key: k\n    operator: Like\n");
        assert!(has(&e, "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'"), "{e:?}");
        assert!(e.iter().any(|x| x.starts_with("spec.tolerations[1].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty")), "{e:?}");
        assert!(has(&e, "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"), "{e:?}");
        assert!(
            e.iter()
                .any(|x| x
                    .starts_with("spec.tolerations[3].effect: Unsupported value: \"Sometimes\"")),
            "{e:?}"
        );
        assert!(has(&e, "spec.tolerations[4].operator: Unsupported value: \"Like\": supported values: \"Equal\", \"Exists\""), "{e:?}");
        let e = pod("  containers:\n  - name: a\n    image: x\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - key: a\n            operator: In\n          - key: b\n            operator: Exists\n            values: [x]\n          - key: c\n            operator: Gt\n            values: ['1', '2']\n          - key: d\n            operator: Near\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 0\n        preference:\n          matchExpressions:\n          - key: e\n            operator: Lt\n            values: [x]\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector:\n          matchLabels:\n            a: b\n");
        let base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions";
        assert!(has(&e, &format!("{base}[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'")), "{e:?}");
        assert!(has(&e, &format!("{base}[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")), "{e:?}");
        assert!(has(&e, &format!("{base}[2].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'")), "{e:?}");
        assert!(
            has(
                &e,
                &format!(
                    "{base}[3].operator: Invalid value: \"Near\": not a valid selector operator"
                )
            ),
            "{e:?}"
        );
        assert!(has(&e, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100"), "{e:?}");
        assert!(has(&e, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values[0]: Invalid value: \"x\": must be an integer"), "{e:?}");
        assert!(has(&e, "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty"), "{e:?}");
    }

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: a\n    spec:\n      containers:\n      - name: c\n        image: x\n";

    #[test]
    fn workload_rules() {
        assert!(errors(DEPLOY).is_empty());
        let e = errors(&DEPLOY.replace(
            "  selector:\n    matchLabels:\n      app: a\n",
            "  replicas: -1\n",
        ));
        assert!(has(&e, "spec.selector: Required value"), "{e:?}");
        assert!(
            has(
                &e,
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
            ),
            "{e:?}"
        );
        let e = errors(&DEPLOY.replace("      app: a\n  template", "      app: z\n  template"));
        assert!(has(&e, "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`"), "{e:?}");
        let e = errors(&DEPLOY.replace(
            "  selector:\n    matchLabels:\n      app: a\n",
            "  selector: {}\n",
        ));
        assert!(
            has(
                &e,
                "spec.selector: Invalid value: \"\": empty selector is invalid for deployment"
            ),
            "{e:?}"
        );
        let e = errors(&DEPLOY.replace(
            "    spec:\n",
            "    spec:\n      restartPolicy: Never\n      activeDeadlineSeconds: 5\n",
        ));
        assert!(has(&e, "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""), "{e:?}");
        assert!(has(&e, "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in Deployment is not Supported"), "{e:?}");
        let e = errors(&DEPLOY.replace("spec:\n  selector", "spec:\n  strategy:\n    type: Recreate\n    rollingUpdate:\n      maxSurge: 1\n  selector"));
        assert!(has(&e, "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"), "{e:?}");
        let e = errors(&DEPLOY.replace("spec:\n  selector", "spec:\n  strategy:\n    rollingUpdate:\n      maxSurge: 0\n      maxUnavailable: 0%\n  selector"));
        assert!(has(&e, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"), "{e:?}");
        let e = errors(&DEPLOY.replace("spec:\n  selector", "spec:\n  strategy:\n    rollingUpdate:\n      maxSurge: x\n      maxUnavailable: 150%\n  selector"));
        assert!(e.iter().any(|x| x.starts_with("spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x\": a valid percent string")), "{e:?}");
        assert!(has(&e, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%"), "{e:?}");
        let e = errors(&DEPLOY.replace(
            "spec:\n  selector",
            "spec:\n  strategy:\n    type: Blue\n  selector",
        ));
        assert!(has(&e, "spec.strategy.type: Unsupported value: \"Blue\": supported values: \"Recreate\", \"RollingUpdate\""), "{e:?}");
        // Set-based selectors are matched against the labels too.
        let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: r\nspec:\n  selector:\n    matchExpressions:\n    - key: env\n      operator: NotIn\n      values: [dev]\n  template:\n    metadata:\n      labels:\n        env: dev\n    spec:\n      containers:\n      - name: c\n        image: x\n";
        let e = errors(rs);
        assert!(
            e.iter()
                .any(|x| x.starts_with("spec.template.metadata.labels: Invalid value:")),
            "{e:?}"
        );
    }

    #[test]
    fn statefulset_rules() {
        let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  podManagementPolicy: Random\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: a\n    spec:\n      containers:\n      - name: c\n        image: x\n        volumeMounts:\n        - name: www\n          mountPath: /w\n  volumeClaimTemplates:\n  - metadata:\n      name: www\n    spec:\n      accessModes: [ReadWriteSometimes]\n";
        let e = errors(sts);
        assert!(has(&e, "spec.podManagementPolicy: Unsupported value: \"Random\": supported values: \"OrderedReady\", \"Parallel\""), "{e:?}");
        assert!(e.iter().any(|x| x.starts_with("spec.volumeClaimTemplates[0].spec.accessModes: Unsupported value: \"ReadWriteSometimes\"")), "{e:?}");
        assert!(
            has(
                &e,
                "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value"
            ),
            "{e:?}"
        );
        // The claim template provides the mounted volume.
        assert!(!e.iter().any(|x| x.contains("volumeMounts")), "{e:?}");
    }

    #[test]
    fn job_and_cronjob_rules() {
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  completions: -1\n  backoffLimit: -2\n  template:\n    spec:\n      restartPolicy: Always\n      containers:\n      - name: c\n        image: x\n";
        let e = errors(job);
        assert!(has(&e, "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""), "{e:?}");
        assert!(
            has(
                &e,
                "spec.completions: Invalid value: -1: must be greater than or equal to 0"
            ),
            "{e:?}"
        );
        assert!(
            has(
                &e,
                "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0"
            ),
            "{e:?}"
        );
        let manual = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  manualSelector: true\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: x\n";
        assert!(has(&errors(manual), "spec.selector: Required value"));
        let cj = |schedule: &str, extra: &str| {
            errors(&format!("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: '{schedule}'\n{extra}  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n          - name: c\n            image: x\n"))
        };
        for ok in [
            "*/1 * * * *",
            "0 0 * * *",
            "@hourly",
            "@every 1h30m",
            "0 9-17/2 * JAN-MAR mon-fri",
            "5,10 * ? * *",
        ] {
            assert!(cj(ok, "").is_empty(), "{ok}: {:?}", cj(ok, ""));
        }
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "*/0 * * * *",
            "@fortnightly",
            "a * * * *",
            "5-1 * * * *",
        ] {
            let e = cj(bad, "");
            assert!(
                e.iter()
                    .any(|x| x.starts_with(&format!("spec.schedule: Invalid value: \"{bad}\""))),
                "{bad}: {e:?}"
            );
        }
        let e = cj(
            "* * * * *",
            "  concurrencyPolicy: Sometimes\n  timeZone: Local\n",
        );
        assert!(has(&e, "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\""), "{e:?}");
        assert!(
            has(
                &e,
                "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
            ),
            "{e:?}"
        );
        assert!(
            crate::tz::database_present(),
            "the tz database is missing (install tzdata or set ZONEINFO): timeZone validation needs it"
        );
        for ok in [
            "Asia/Shanghai",
            "America/New_York",
            "Etc/UTC",
            "UTC",
            "Europe/London",
            "Etc/GMT+5",
        ] {
            let e = cj("* * * * *", &format!("  timeZone: {ok}\n"));
            assert!(e.is_empty(), "{ok}: {e:?}");
        }
        for (tz, msg) in [
            ("Nope/Zone", "unknown time zone Nope/Zone"),
            ("America/Nowhere", "unknown time zone America/Nowhere"),
            ("../etc/passwd", "unknown time zone ../etc/passwd"),
            ("Europe/Berlin:x", "unknown time zone Europe/Berlin:x"),
            (
                "America/Argentina/ComodRivadavia1",
                "unknown time zone America/Argentina/ComodRivadavia1",
            ),
            ("+05:30", "unknown time zone +05:30"),
            ("", "timeZone must be nil or non-empty string"),
        ] {
            let e = cj("* * * * *", &format!("  timeZone: '{tz}'\n"));
            let want = format!("spec.timeZone: Invalid value: {tz:?}: {msg}");
            assert!(has(&e, &want), "{tz}: {e:?}");
            assert_eq!(e.len(), 1, "{tz}: {e:?}");
        }
        for sched in ["TZ=UTC * * * * *", "CRON_TZ=Asia/Shanghai 0 9 * * *"] {
            let e = cj(sched, "");
            assert_eq!(
                e,
                vec![format!("spec.schedule: Invalid value: {sched:?}: cannot use TZ or CRON_TZ in schedule, use timeZone field instead")],
                "{sched}"
            );
        }
        let e = cj("CRON_TZ=Nope/Zone 0 9 * * *", "");
        assert!(has(&e, "spec.schedule: Invalid value: \"CRON_TZ=Nope/Zone 0 9 * * *\": provided bad location Nope/Zone: unknown time zone Nope/Zone"), "{e:?}");
        assert!(has(&e, "spec.schedule: Invalid value: \"CRON_TZ=Nope/Zone 0 9 * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"), "{e:?}");
    }

    #[test]
    fn service_rules() {
        let svc = |spec: &str| {
            errors(&format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n{spec}"
            ))
        };
        assert!(svc("  ports:\n  - port: 80\n").is_empty());
        assert!(has(
            &svc("  selector:\n    a: b\n"),
            "spec.ports: Required value"
        ));
        assert!(svc("  clusterIP: None\n").is_empty());
        let e = svc("  type: Weird\n  ports:\n  - port: 0\n  - port: 81\n    name: a\n  - port: 82\n    name: a\n    nodePort: 30001\n");
        assert!(
            e.iter()
                .any(|x| x.starts_with("spec.type: Unsupported value: \"Weird\"")),
            "{e:?}"
        );
        assert!(
            has(
                &e,
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
            ),
            "{e:?}"
        );
        assert!(has(&e, "spec.ports[0].name: Required value"), "{e:?}");
        assert!(
            has(&e, "spec.ports[2].name: Duplicate value: \"a\""),
            "{e:?}"
        );
        let e =
            svc("  type: NodePort\n  clusterIP: None\n  ports:\n  - port: 80\n    nodePort: 80\n");
        assert!(has(&e, "spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for NodePort services"), "{e:?}");
        assert!(e.iter().any(|x| x.starts_with("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range")), "{e:?}");
        let e = svc("  ports:\n  - port: 80\n    nodePort: 30080\n");
        assert!(
            has(
                &e,
                "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
            ),
            "{e:?}"
        );
        assert!(has(
            &svc("  type: ExternalName\n"),
            "spec.externalName: Required value"
        ));
        let e = svc("  type: ExternalName\n  externalName: example.com\n  selector: {app: web}\n  ipFamilies: [IPv4]\n  ipFamilyPolicy: SingleStack\n");
        assert_eq!(
            e,
            [
                "spec.ipFamilies: Forbidden: may not be set for ExternalName services",
                "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services"
            ],
            "a selector is allowed"
        );
    }

    #[test]
    fn hpa_node_pvc_rules() {
        let hpa = |spec: &str| {
            errors(&format!("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n{spec}"))
        };
        let e = hpa("  minReplicas: 0\n  maxReplicas: 0\n  scaleTargetRef:\n    name: x\n");
        assert!(has(&e, "spec.scaleTargetRef.kind: Required value"), "{e:?}");
        assert!(
            has(
                &e,
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
            ),
            "{e:?}"
        );
        assert!(
            has(
                &e,
                "spec.maxReplicas: Invalid value: 0: must be greater than 0"
            ),
            "{e:?}"
        );
        let e = hpa("  minReplicas: 5\n  maxReplicas: 3\n  scaleTargetRef:\n    kind: Deployment\n    name: x\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 0\n");
        assert!(has(&e, "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"), "{e:?}");
        assert!(has(&e, "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"), "{e:?}");
        let e = errors("apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n  targetCPUUtilizationPercentage: 0\n  scaleTargetRef:\n    kind: Deployment\n    name: x\n");
        assert!(
            has(
                &e,
                "spec.targetCPUUtilizationPercentage: Invalid value: 0: must be greater than 0"
            ),
            "{e:?}"
        );

        let e = errors("apiVersion: v1\nkind: Node\nmetadata:\n  name: 'n'\nspec:\n  taints:\n  - key: k\n    effect: Sometimes\n  - key: k2\n");
        assert!(
            e.iter()
                .any(|x| x.starts_with("spec.taints[0].effect: Unsupported value: \"Sometimes\"")),
            "{e:?}"
        );
        assert!(has(&e, "spec.taints[1].effect: Required value"), "{e:?}");

        let e = errors("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  resources:\n    requests:\n      storage: 0\n");
        assert!(
            has(
                &e,
                "spec.accessModes: Required value: at least 1 access mode is required"
            ),
            "{e:?}"
        );
        assert!(
            has(
                &e,
                "spec.resources[storage]: Invalid value: \"0\": must be greater than zero"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn pod_updates_only_change_what_kubernetes_allows() {
        let base = obj(&format!("{POD_HEAD}  containers:\n  - name: a\n    image: x:1\n  tolerations:\n  - key: k\n    operator: Exists\n    effect: NoExecute\n    tolerationSeconds: 60\n"));
        let change = |edit: &dyn Fn(&mut v1::PodSpec)| {
            let mut new = base.clone();
            if let Object::Pod(p) = &mut new {
                edit(p.spec.as_mut().expect("spec"));
            }
            validate_update(&base, &new)
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        };
        assert!(change(&|s| s.containers[0].image = "x:2".into()).is_empty());
        assert!(change(&|s| s.active_deadline_seconds = Some(30)).is_empty());
        assert!(change(&|s| s.termination_grace_period_seconds = Some(5)).is_empty());
        assert!(change(&|s| s.node_name = "n1".into()).is_empty());
        assert!(change(&|s| {
            s.tolerations.push(v1::Toleration {
                key: "other".into(),
                operator: "Exists".into(),
                ..Default::default()
            })
        })
        .is_empty());
        assert!(change(&|s| s.tolerations[0].toleration_seconds = Some(30)).is_empty());
        let e = change(&|s| s.restart_policy = "Never".into());
        assert_eq!(
            e,
            vec![format!("spec.restartPolicy: Forbidden: {POD_UPDATE_MSG}")]
        );
        let e = change(&|s| {
            s.containers[0].ports.push(v1::ContainerPort {
                container_port: 80,
                ..Default::default()
            })
        });
        assert!(
            e[0].starts_with(
                "spec.containers[0].ports: Forbidden: pod updates may not change fields"
            ),
            "{e:?}"
        );
        let e = change(&|s| s.tolerations.clear());
        assert!(e[0].starts_with("spec.tolerations[0]: Forbidden"), "{e:?}");
        let mut renamed = base.clone();
        renamed.meta_mut().name = "q".into();
        let e = validate_update(&base, &renamed);
        assert_eq!(
            e[0].to_string(),
            "metadata.name: Invalid value: \"q\": field is immutable"
        );
    }

    #[test]
    fn workload_updates() {
        let d = obj(DEPLOY);
        let mut d2 = obj(&DEPLOY.replace("replicas", "x"));
        if let Object::Deployment(x) = &mut d2 {
            x.spec.as_mut().expect("spec").replicas = Some(5);
        }
        assert!(validate_update(&d, &d2).is_empty());
        let d3 = obj(&DEPLOY.replace("app: a", "app: b"));
        let e = validate_update(&d, &d3);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "spec.selector");
        assert!(e[0].message.ends_with("field is immutable"), "{e:?}");

        let sts_text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  serviceName: nginx\n  replicas: 3\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: a\n    spec:\n      containers:\n      - name: c\n        image: x\n";
        let sts = obj(sts_text);
        let scaled = obj(&sts_text
            .replace("replicas: 3", "replicas: 5")
            .replace("image: x", "image: 'y'"));
        assert!(validate_update(&sts, &scaled).is_empty());
        let renamed = obj(&sts_text.replace("serviceName: nginx", "serviceName: other"));
        let e = validate_update(&sts, &renamed);
        assert_eq!(
            e[0].to_string(),
            format!("spec: Forbidden: {STS_UPDATE_MSG}")
        );

        let job_text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  completions: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: x\n";
        let job = obj(job_text);
        let e = validate_update(
            &job,
            &obj(&job_text
                .replace("completions: 2", "completions: 3")
                .replace("image: x", "image: 'y'")),
        );
        let paths: Vec<&str> = e.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(paths, vec!["spec.template", "spec.completions"]);
        assert!(validate_update(
            &job,
            &obj(&job_text.replace("completions: 2", "completions: 2\n  parallelism: 2"))
        )
        .is_empty());

        let svc_text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  clusterIP: 10.0.0.1\n  ports:\n  - port: 80\n";
        let svc = obj(svc_text);
        let e = validate_update(&svc, &obj(&svc_text.replace("10.0.0.1", "10.0.0.2")));
        assert_eq!(
            e[0].to_string(),
            "spec.clusterIP: Invalid value: \"10.0.0.2\": field is immutable"
        );
        assert!(validate_update(&svc, &obj(&svc_text.replace("port: 80", "port: 81"))).is_empty());

        let pvc_text = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";
        let pvc = obj(pvc_text);
        assert!(validate_update(&pvc, &obj(&pvc_text.replace("1Gi", "2Gi"))).is_empty());
        let e = validate_update(&pvc, &obj(&pvc_text.replace("1Gi", "512Mi")));
        assert_eq!(e[0].path, "spec.resources.requests.storage");
        let e = validate_update(
            &pvc,
            &obj(&pvc_text.replace("ReadWriteOnce", "ReadWriteMany")),
        );
        assert_eq!(
            e[0].to_string(),
            format!("spec: Forbidden: {PVC_UPDATE_MSG}")
        );

        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nimmutable: true\ndata:\n  a: b\n";
        let e = validate_update(&obj(cm), &obj(&cm.replace("a: b", "a: c")));
        assert_eq!(e[0].path, "data");
    }

    #[test]
    fn required_node_affinity_values_must_be_label_values() {
        let pod = |section: &str| {
            format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: x\n  affinity:\n    nodeAffinity:\n{section}")
        };
        let required = "      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - key: zone\n            operator: In\n            values: [a, -bad-]\n";
        let e = errors(&pod(required));
        assert!(
            e.iter().any(|m| m.starts_with("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[1]: Invalid value: \"-bad-\"")),
            "{e:?}"
        );
        // Preferred terms keep accepting them, as upstream does.
        let preferred = "      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 1\n        preference:\n          matchExpressions:\n          - key: zone\n            operator: In\n            values: [-bad-]\n";
        assert!(
            errors(&pod(preferred)).is_empty(),
            "{:?}",
            errors(&pod(preferred))
        );
    }
}
