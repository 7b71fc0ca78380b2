//! Pod spec defaults, shared by Pods and every pod template.

use super::{canonicalize, canonicalize_map, default_str};
use crate::v1;

/// Kubernetes' imagePullPolicy default: Always for `:latest` or an untagged image (without a
/// digest), IfNotPresent otherwise.
pub fn default_image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    // The tag follows the last ':' after the last '/' (a registry may have a port).
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

pub(super) fn template_defaults(template: Option<&mut v1::PodTemplateSpec>) {
    if let Some(t) = template {
        pod_spec_defaults(t.spec.get_or_insert_with(Default::default));
    }
}

/// SetDefaults_PodSpec and the defaults of everything a pod spec holds.
pub fn pod_spec_defaults(spec: &mut v1::PodSpec) {
    default_str(&mut spec.dns_policy, "ClusterFirst");
    default_str(&mut spec.restart_policy, "Always");
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.security_context.get_or_insert_with(Default::default);
    default_str(&mut spec.scheduler_name, "default-scheduler");
    spec.enable_service_links.get_or_insert(true);
    if spec.service_account_name.is_empty() && !spec.service_account.is_empty() {
        spec.service_account_name = spec.service_account.clone();
    }
    canonicalize_map(&mut spec.overhead);
    let host_network = spec.host_network;
    for c in spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
    {
        container_defaults(c, host_network);
    }
    for v in &mut spec.volumes {
        if let Some(hp) = v.host_path.as_mut() {
            hp.r#type.get_or_insert_with(String::new);
        }
        if let Some(ed) = v.empty_dir.as_mut() {
            canonicalize(&mut ed.size_limit);
        }
        if let Some(cm) = v.config_map.as_mut() {
            cm.default_mode.get_or_insert(0o644);
        }
        if let Some(s) = v.secret.as_mut() {
            s.default_mode.get_or_insert(0o644);
        }
    }
}

fn container_defaults(c: &mut v1::Container, host_network: bool) {
    if c.image_pull_policy.is_empty() {
        c.image_pull_policy = default_image_pull_policy(&c.image).to_string();
    }
    default_str(&mut c.termination_message_path, "/dev/termination-log");
    default_str(&mut c.termination_message_policy, "File");
    for p in &mut c.ports {
        default_str(&mut p.protocol, "TCP");
        if host_network && p.host_port == 0 {
            p.host_port = p.container_port;
        }
    }
    for e in &mut c.env {
        if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            default_str(&mut f.api_version, "v1");
        }
        if let Some(r) = e
            .value_from
            .as_mut()
            .and_then(|v| v.resource_field_ref.as_mut())
        {
            canonicalize(&mut r.divisor);
        }
    }
    if let Some(r) = c.resources.as_mut() {
        canonicalize_map(&mut r.limits);
        canonicalize_map(&mut r.requests);
    }
    for p in [
        c.liveness_probe.as_mut(),
        c.readiness_probe.as_mut(),
        c.startup_probe.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        // Kubernetes holds these as plain ints: 0 (or unset) means the default.
        for (field, default) in [
            (&mut p.timeout_seconds, 1),
            (&mut p.period_seconds, 10),
            (&mut p.success_threshold, 1),
            (&mut p.failure_threshold, 3),
        ] {
            if field.unwrap_or(0) == 0 {
                *field = Some(default);
            }
        }
        if let Some(h) = p.http_get.as_mut() {
            http_get_defaults(h);
        }
    }
    if let Some(l) = c.lifecycle.as_mut() {
        for h in [l.post_start.as_mut(), l.pre_stop.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(g) = h.http_get.as_mut() {
                http_get_defaults(g);
            }
        }
    }
}

fn http_get_defaults(h: &mut v1::HttpGetAction) {
    default_str(&mut h.path, "/");
    default_str(&mut h.scheme, "HTTP");
}
