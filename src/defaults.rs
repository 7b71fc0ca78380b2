//! The defaults the Kubernetes API server applies on create and update (the `SetDefaults_*`
//! functions of each API group, plus the few values the registries set on create: Namespace
//! finalizers are the store's), and the Job selector generated once the store has assigned a uid.
//!
//! Applying defaults is idempotent: applying them twice gives the same object as once.
use std::collections::BTreeMap;

use crate::kinds::Object;
use crate::quantity::Quantity;
use crate::v1;
use crate::v1::IntOrString;

/// Labels a generated Job selector uses (Kubernetes' batch labels, legacy and current).
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";

/// Apply Kubernetes' defaults to an object of any kind.
pub fn apply_defaults(obj: &mut Object) {
    let api_version = obj.api_version().to_string();
    match obj {
        Object::Namespace(ns) => {
            // spec.finalizers ["kubernetes"] is set by the store on create only (as the
            // namespace registry does): the namespace deleter removes it, and defaulting an
            // update must not put it back.
            let status = ns.status.get_or_insert_with(Default::default);
            if status.phase.is_empty() {
                status.phase = "Active".to_string();
            }
        }
        Object::Node(node) => {
            if let Some(status) = node.status.as_mut() {
                canonicalize_map(&mut status.capacity);
                if status.allocatable.is_empty() && !status.capacity.is_empty() {
                    status.allocatable = status.capacity.clone();
                }
                canonicalize_map(&mut status.allocatable);
            }
        }
        Object::Pod(pod) => {
            let spec = pod.spec.get_or_insert_with(Default::default);
            // Only a Pod (not a template) gets requests defaulted from limits.
            for c in spec
                .init_containers
                .iter_mut()
                .chain(spec.containers.iter_mut())
            {
                if let Some(r) = c.resources.as_mut() {
                    for (k, v) in &r.limits {
                        r.requests.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            pod_spec_defaults(spec);
        }
        Object::Service(svc) => service_defaults(svc.spec.get_or_insert_with(Default::default)),
        Object::Endpoints(ep) => {
            for s in &mut ep.subsets {
                for p in &mut s.ports {
                    default_str(&mut p.protocol, "TCP");
                }
            }
        }
        Object::EndpointSlice(es) => {
            // discovery/v1 SetDefaults_EndpointPort: name "" and protocol TCP.
            for p in &mut es.ports {
                p.name.get_or_insert_with(String::new);
                p.protocol.get_or_insert_with(|| "TCP".to_string());
            }
        }
        Object::PersistentVolumeClaim(pvc) => pvc_defaults(pvc),
        Object::PersistentVolume(pv) => {
            let spec = pv.spec.get_or_insert_with(Default::default);
            default_str(&mut spec.persistent_volume_reclaim_policy, "Retain");
            spec.volume_mode
                .get_or_insert_with(|| "Filesystem".to_string());
            canonicalize_map(&mut spec.capacity);
            let status = pv.status.get_or_insert_with(Default::default);
            default_str(&mut status.phase, "Pending");
        }
        Object::StorageClass(sc) => {
            sc.reclaim_policy
                .get_or_insert_with(|| "Delete".to_string());
            sc.volume_binding_mode
                .get_or_insert_with(|| "Immediate".to_string());
        }
        Object::Secret(s) => {
            default_str(&mut s.r#type, "Opaque");
            // stringData is write-only: merged into data, its keys winning, and never stored
            // (upstream's v1 → internal conversion does the same).
            for (k, v) in std::mem::take(&mut s.string_data) {
                s.data.insert(k, v.into_bytes());
            }
        }
        Object::ServiceAccount(_)
        | Object::ConfigMap(_)
        | Object::Event(_)
        | Object::ControllerRevision(_)
        | Object::Lease(_)
        | Object::Role(_)
        | Object::ClusterRole(_)
        | Object::RoleBinding(_)
        | Object::ClusterRoleBinding(_) => {}
        Object::ReplicaSet(rs) => {
            let spec = rs.spec.get_or_insert_with(Default::default);
            spec.replicas.get_or_insert(1);
            if is_legacy_beta(&api_version) {
                default_selector_from_template(&mut spec.selector, spec.template.as_ref());
                default_labels_from_template(&mut rs.metadata, spec.template.as_ref());
            }
            template_defaults(spec.template.as_mut());
        }
        Object::Deployment(d) => {
            let spec = d.spec.get_or_insert_with(Default::default);
            let extensions = api_version == "extensions/v1beta1";
            spec.replicas.get_or_insert(1);
            let strategy = spec.strategy.get_or_insert_with(Default::default);
            default_str(&mut strategy.r#type, "RollingUpdate");
            if strategy.r#type == "RollingUpdate" {
                let ru = strategy.rolling_update.get_or_insert_with(Default::default);
                let (unavailable, surge) = if extensions {
                    (IntOrString::int(1), IntOrString::int(1))
                } else {
                    (IntOrString::string("25%"), IntOrString::string("25%"))
                };
                ru.max_unavailable.get_or_insert(unavailable);
                ru.max_surge.get_or_insert(surge);
            }
            let (history, deadline) = match api_version.as_str() {
                "extensions/v1beta1" => (i32::MAX, i32::MAX),
                "apps/v1beta1" => (2, 600),
                _ => (10, 600),
            };
            spec.revision_history_limit.get_or_insert(history);
            spec.progress_deadline_seconds.get_or_insert(deadline);
            if is_legacy_beta(&api_version) {
                default_selector_from_template(&mut spec.selector, spec.template.as_ref());
                default_labels_from_template(&mut d.metadata, spec.template.as_ref());
            }
            template_defaults(spec.template.as_mut());
        }
        Object::DaemonSet(ds) => {
            let spec = ds.spec.get_or_insert_with(Default::default);
            let strategy = spec.update_strategy.get_or_insert_with(Default::default);
            let default_type = if api_version == "extensions/v1beta1" {
                "OnDelete"
            } else {
                "RollingUpdate"
            };
            default_str(&mut strategy.r#type, default_type);
            if strategy.r#type == "RollingUpdate" {
                let ru = strategy.rolling_update.get_or_insert_with(Default::default);
                ru.max_unavailable.get_or_insert(IntOrString::int(1));
                ru.max_surge.get_or_insert(IntOrString::int(0));
            }
            spec.revision_history_limit.get_or_insert(10);
            if is_legacy_beta(&api_version) {
                default_selector_from_template(&mut spec.selector, spec.template.as_ref());
                default_labels_from_template(&mut ds.metadata, spec.template.as_ref());
            }
            template_defaults(spec.template.as_mut());
        }
        Object::StatefulSet(sts) => {
            let spec = sts.spec.get_or_insert_with(Default::default);
            spec.replicas.get_or_insert(1);
            default_str(&mut spec.pod_management_policy, "OrderedReady");
            let strategy = spec.update_strategy.get_or_insert_with(Default::default);
            if strategy.r#type.is_empty() {
                strategy.r#type = if api_version == "apps/v1beta1" {
                    "OnDelete"
                } else {
                    "RollingUpdate"
                }
                .to_string();
                if strategy.r#type == "RollingUpdate" && strategy.rolling_update.is_none() {
                    strategy.rolling_update = Some(Default::default());
                }
            }
            if strategy.r#type == "RollingUpdate" {
                if let Some(ru) = strategy.rolling_update.as_mut() {
                    ru.partition.get_or_insert(0);
                }
            }
            let policy = spec
                .persistent_volume_claim_retention_policy
                .get_or_insert_with(Default::default);
            default_str(&mut policy.when_deleted, "Retain");
            default_str(&mut policy.when_scaled, "Retain");
            spec.revision_history_limit.get_or_insert(10);
            if api_version == "apps/v1beta1" {
                default_selector_from_template(&mut spec.selector, spec.template.as_ref());
                default_labels_from_template(&mut sts.metadata, spec.template.as_ref());
            }
            for pvc in &mut spec.volume_claim_templates {
                pvc_defaults(pvc);
            }
            template_defaults(spec.template.as_mut());
        }
        Object::Job(job) => {
            let spec = job.spec.get_or_insert_with(Default::default);
            job_spec_defaults(spec);
            let template_labels = spec.template.as_ref().and_then(|t| t.metadata.as_ref());
            if let Some(tl) = template_labels.map(|m| &m.labels).filter(|l| !l.is_empty()) {
                let meta = job.metadata.get_or_insert_with(Default::default);
                if meta.labels.is_empty() {
                    meta.labels = tl.clone();
                }
            }
            template_defaults(spec.template.as_mut());
        }
        Object::CronJob(cj) => {
            let spec = cj.spec.get_or_insert_with(Default::default);
            default_str(&mut spec.concurrency_policy, "Allow");
            spec.suspend.get_or_insert(false);
            spec.successful_jobs_history_limit.get_or_insert(3);
            spec.failed_jobs_history_limit.get_or_insert(1);
            // Kubernetes defaults only the pod template inside jobTemplate (SetDefaults_Job runs
            // on Jobs, not on JobTemplateSpec): the Job gets the rest when it is created.
            if let Some(jt) = spec.job_template.as_mut() {
                if let Some(js) = jt.spec.as_mut() {
                    template_defaults(js.template.as_mut());
                }
            }
        }
        Object::HorizontalPodAutoscaler(hpa) => {
            let spec = hpa.spec.get_or_insert_with(Default::default);
            spec.min_replicas.get_or_insert(1);
            // autoscaling/v1 keeps its shape (targetCPUUtilizationPercentage, absent means 80%
            // to the autoscaler); v2 gets the default metric and behavior defaults.
            if api_version != "autoscaling/v1" {
                if spec.metrics.is_empty() && spec.target_cpu_utilization_percentage.is_none() {
                    spec.metrics.push(v1::MetricSpec {
                        r#type: "Resource".to_string(),
                        resource: Some(v1::ResourceMetricSource {
                            name: "cpu".to_string(),
                            target: Some(v1::MetricTarget {
                                r#type: "Utilization".to_string(),
                                average_utilization: Some(80),
                                ..Default::default()
                            }),
                        }),
                        ..Default::default()
                    });
                }
                if let Some(b) = spec.behavior.as_mut() {
                    scaling_rules_defaults(b.scale_up.get_or_insert_with(Default::default), true);
                    scaling_rules_defaults(
                        b.scale_down.get_or_insert_with(Default::default),
                        false,
                    );
                }
            }
            for m in &mut spec.metrics {
                let targets = [
                    m.resource.as_mut().and_then(|r| r.target.as_mut()),
                    m.container_resource
                        .as_mut()
                        .and_then(|r| r.target.as_mut()),
                    m.pods.as_mut().and_then(|r| r.target.as_mut()),
                    m.object.as_mut().and_then(|r| r.target.as_mut()),
                    m.external.as_mut().and_then(|r| r.target.as_mut()),
                ];
                for t in targets.into_iter().flatten() {
                    canonicalize(&mut t.value);
                    canonicalize(&mut t.average_value);
                }
            }
        }
    }
}

/// Generate a Job's selector from its uid as Kubernetes' job registry does on create, unless
/// the user chose the selector (`manualSelector: true`): the pod template gets the labels
/// `controller-uid`, `batch.kubernetes.io/controller-uid`, `job-name` and
/// `batch.kubernetes.io/job-name` (where not already set), and the selector matches
/// `batch.kubernetes.io/controller-uid`.
pub fn job_selector_for_uid(job: &mut v1::Job, uid: &str) {
    let name = job
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let spec = job.spec.get_or_insert_with(Default::default);
    if spec.manual_selector == Some(true) {
        return;
    }
    let template = spec.template.get_or_insert_with(Default::default);
    let labels = &mut template
        .metadata
        .get_or_insert_with(Default::default)
        .labels;
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        labels
            .entry(key.to_string())
            .or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
        labels
            .entry(key.to_string())
            .or_insert_with(|| uid.to_string());
    }
    let selector = spec.selector.get_or_insert_with(Default::default);
    selector
        .match_labels
        .entry(CONTROLLER_UID_LABEL.to_string())
        .or_insert_with(|| uid.to_string());
}

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

fn default_str(s: &mut String, v: &str) {
    if s.is_empty() {
        *s = v.to_string();
    }
}

fn is_legacy_beta(api_version: &str) -> bool {
    matches!(api_version, "extensions/v1beta1" | "apps/v1beta1")
}

fn default_selector_from_template(
    selector: &mut Option<v1::LabelSelector>,
    template: Option<&v1::PodTemplateSpec>,
) {
    let labels = template
        .and_then(|t| t.metadata.as_ref())
        .map(|m| &m.labels);
    if let Some(labels) = labels.filter(|l| !l.is_empty()) {
        if selector.is_none() {
            *selector = Some(v1::LabelSelector {
                match_labels: labels.clone(),
                ..Default::default()
            });
        }
    }
}

fn default_labels_from_template(
    meta: &mut Option<v1::ObjectMeta>,
    template: Option<&v1::PodTemplateSpec>,
) {
    let labels = template
        .and_then(|t| t.metadata.as_ref())
        .map(|m| &m.labels);
    if let Some(labels) = labels.filter(|l| !l.is_empty()) {
        let meta = meta.get_or_insert_with(Default::default);
        if meta.labels.is_empty() {
            meta.labels = labels.clone();
        }
    }
}

fn canonicalize(s: &mut String) {
    if s.is_empty() {
        return;
    }
    if let Ok(q) = Quantity::parse(s) {
        *s = q.canonical();
    }
}

fn canonicalize_map(m: &mut BTreeMap<String, String>) {
    m.values_mut().for_each(canonicalize);
}

fn template_defaults(template: Option<&mut v1::PodTemplateSpec>) {
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

fn service_defaults(spec: &mut v1::ServiceSpec) {
    default_str(&mut spec.session_affinity, "None");
    if spec.session_affinity == "ClientIP" {
        // DefaultClientIPServiceAffinitySeconds.
        spec.session_affinity_config
            .get_or_insert_with(Default::default)
            .client_ip
            .get_or_insert_with(Default::default)
            .timeout_seconds
            .get_or_insert(10800);
    }
    default_str(&mut spec.r#type, "ClusterIP");
    for p in &mut spec.ports {
        default_str(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(t) => (t.is_string && t.str_val.is_empty()) || (!t.is_string && t.int_val == 0),
        };
        if unset {
            p.target_port = Some(IntOrString::int(p.port));
        }
    }
    if matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer") {
        default_str(&mut spec.external_traffic_policy, "Cluster");
    }
    if spec.r#type == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
    }
    if spec.r#type != "ExternalName" {
        spec.internal_traffic_policy
            .get_or_insert_with(|| "Cluster".to_string());
        // The service REST storage's IP family defaulting on a single-stack IPv4 cluster:
        // SingleStack, and the family of the cluster IP asked for (IPv4 when none is).
        spec.ip_family_policy
            .get_or_insert_with(|| "SingleStack".to_string());
        if spec.ip_families.is_empty() {
            let v6 = spec
                .cluster_ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_ipv6());
            spec.ip_families = vec![if v6 { "IPv6" } else { "IPv4" }.to_string()];
        }
    }
}

fn pvc_defaults(pvc: &mut v1::PersistentVolumeClaim) {
    let spec = pvc.spec.get_or_insert_with(Default::default);
    spec.volume_mode
        .get_or_insert_with(|| "Filesystem".to_string());
    if let Some(r) = spec.resources.as_mut() {
        canonicalize_map(&mut r.limits);
        canonicalize_map(&mut r.requests);
    }
    let status = pvc.status.get_or_insert_with(Default::default);
    default_str(&mut status.phase, "Pending");
    canonicalize_map(&mut status.capacity);
}

fn job_spec_defaults(spec: &mut v1::JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".to_string());
    spec.suspend.get_or_insert(false);
    spec.manual_selector.get_or_insert(false);
    spec.pod_replacement_policy
        .get_or_insert_with(|| "TerminatingOrFailed".to_string());
}

fn scaling_rules_defaults(r: &mut v1::HpaScalingRules, up: bool) {
    // Scale-down keeps an unset window: the controller fills in its
    // --horizontal-pod-autoscaler-downscale-stabilization (upstream's GenerateHPAScaleDownRules).
    if up {
        r.stabilization_window_seconds.get_or_insert(0);
    }
    r.select_policy.get_or_insert_with(|| "Max".to_string());
    if r.policies.is_empty() {
        let policy = |t: &str, value| v1::HpaScalingPolicy {
            r#type: t.to_string(),
            value,
            period_seconds: 15,
        };
        r.policies = if up {
            vec![policy("Pods", 4), policy("Percent", 100)]
        } else {
            vec![policy("Percent", 100)]
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifests;

    fn defaulted(text: &str) -> Object {
        let mut o = parse_manifests(text).expect("parses").remove(0).object;
        apply_defaults(&mut o);
        let mut again = o.clone();
        apply_defaults(&mut again);
        assert_eq!(again, o, "defaults are idempotent");
        o
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: nginx\n    ports:\n    - containerPort: 80\n    resources:\n      limits:\n        cpu: '0.5'\n        memory: 1024Mi\n      requests:\n        memory: 512Mi\n    livenessProbe:\n      httpGet:\n        port: 80\n  - name: b\n    image: nginx:1.17.9\n  - name: c\n    image: registry:5000/x/nginx\n";

    #[test]
    fn pod_defaults() {
        let Object::Pod(pod) = defaulted(POD) else {
            panic!()
        };
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.restart_policy, "Always");
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(spec.dns_policy, "ClusterFirst");
        assert_eq!(spec.scheduler_name, "default-scheduler");
        assert_eq!(spec.security_context, Some(Default::default()));
        assert_eq!(spec.enable_service_links, Some(true));
        let a = &spec.containers[0];
        assert_eq!(a.image_pull_policy, "Always");
        assert_eq!(spec.containers[1].image_pull_policy, "IfNotPresent");
        assert_eq!(spec.containers[2].image_pull_policy, "Always");
        assert_eq!(a.termination_message_path, "/dev/termination-log");
        assert_eq!(a.termination_message_policy, "File");
        assert_eq!(a.ports[0].protocol, "TCP");
        let r = a.resources.as_ref().expect("resources");
        assert_eq!(r.limits.get("cpu").map(String::as_str), Some("500m"));
        assert_eq!(r.limits.get("memory").map(String::as_str), Some("1Gi"));
        // Requests default to limits only where missing, then are canonical.
        assert_eq!(r.requests.get("cpu").map(String::as_str), Some("500m"));
        assert_eq!(r.requests.get("memory").map(String::as_str), Some("512Mi"));
        let p = a.liveness_probe.as_ref().expect("probe");
        assert_eq!(
            (
                p.timeout_seconds,
                p.period_seconds,
                p.success_threshold,
                p.failure_threshold
            ),
            (Some(1), Some(10), Some(1), Some(3))
        );
        assert_eq!(p.initial_delay_seconds, None);
        let h = p.http_get.as_ref().expect("httpGet");
        assert_eq!((h.path.as_str(), h.scheme.as_str()), ("/", "HTTP"));
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        for (image, want) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.17.9", "IfNotPresent"),
            ("localhost:5000/nginx", "Always"),
            ("localhost:5000/nginx:v1", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
        ] {
            assert_eq!(default_image_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn workload_defaults() {
        let Object::Deployment(d) = defaulted(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  selector:\n    matchLabels:\n      a: b\n  template:\n    metadata:\n      labels:\n        a: b\n    spec:\n      containers:\n      - name: c\n        image: x\n",
        ) else {
            panic!()
        };
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.revision_history_limit, Some(10));
        assert_eq!(spec.progress_deadline_seconds, Some(600));
        let s = spec.strategy.expect("strategy");
        assert_eq!(s.r#type, "RollingUpdate");
        let ru = s.rolling_update.expect("rollingUpdate");
        assert_eq!(ru.max_surge, Some(IntOrString::string("25%")));
        assert_eq!(ru.max_unavailable, Some(IntOrString::string("25%")));
        let ps = spec.template.expect("t").spec.expect("s");
        assert_eq!(ps.restart_policy, "Always");

        let Object::DaemonSet(ds) =
            defaulted("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: d\n")
        else {
            panic!()
        };
        let spec = ds.spec.expect("spec");
        let s = spec.update_strategy.expect("strategy");
        assert_eq!(s.r#type, "RollingUpdate");
        let ru = s.rolling_update.expect("ru");
        assert_eq!(
            (ru.max_unavailable, ru.max_surge),
            (Some(IntOrString::int(1)), Some(IntOrString::int(0)))
        );
        assert_eq!(spec.revision_history_limit, Some(10));

        let Object::StatefulSet(sts) = defaulted(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  volumeClaimTemplates:\n  - metadata:\n      name: www\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources:\n        requests:\n          storage: 1024Mi\n",
        ) else {
            panic!()
        };
        let spec = sts.spec.expect("spec");
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.pod_management_policy, "OrderedReady");
        let us = spec.update_strategy.expect("us");
        assert_eq!(us.r#type, "RollingUpdate");
        assert_eq!(us.rolling_update.expect("ru").partition, Some(0));
        let rp = spec.persistent_volume_claim_retention_policy.expect("rp");
        assert_eq!(
            (rp.when_deleted.as_str(), rp.when_scaled.as_str()),
            ("Retain", "Retain")
        );
        let pvc = &spec.volume_claim_templates[0];
        let ps = pvc.spec.as_ref().expect("spec");
        assert_eq!(ps.volume_mode.as_deref(), Some("Filesystem"));
        assert_eq!(
            ps.resources
                .as_ref()
                .expect("r")
                .requests
                .get("storage")
                .map(String::as_str),
            Some("1Gi")
        );
        assert_eq!(pvc.status.as_ref().expect("status").phase, "Pending");

        let Object::ReplicaSet(rs) =
            defaulted("apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: r\n")
        else {
            panic!()
        };
        assert_eq!(rs.spec.expect("spec").replicas, Some(1));
    }

    #[test]
    fn legacy_versions_default_the_selector() {
        let Object::Deployment(d) = defaulted(
            "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    metadata:\n      labels:\n        a: b\n",
        ) else {
            panic!()
        };
        let spec = d.spec.expect("spec");
        assert_eq!(
            spec.selector
                .expect("sel")
                .match_labels
                .get("a")
                .map(String::as_str),
            Some("b")
        );
        assert_eq!(
            d.metadata.expect("m").labels.get("a").map(String::as_str),
            Some("b")
        );
        let ru = spec.strategy.expect("s").rolling_update.expect("ru");
        assert_eq!(ru.max_surge, Some(IntOrString::int(1)));
    }

    #[test]
    fn job_defaults() {
        let job = |extra: &str| {
            let Object::Job(j) = defaulted(&format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n{extra}  template:\n    metadata:\n      labels:\n        app: j\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n"
            )) else {
                panic!()
            };
            j
        };
        let j = job("");
        let spec = j.spec.as_ref().expect("spec");
        assert_eq!(
            (spec.completions, spec.parallelism, spec.backoff_limit),
            (Some(1), Some(1), Some(6))
        );
        assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
        assert_eq!(spec.suspend, Some(false));
        assert_eq!(spec.manual_selector, Some(false));
        assert_eq!(
            j.metadata
                .as_ref()
                .expect("m")
                .labels
                .get("app")
                .map(String::as_str),
            Some("j")
        );
        // Work queue: parallelism set, completions stays unset.
        let spec = job("  parallelism: 2\n").spec.expect("spec");
        assert_eq!((spec.completions, spec.parallelism), (None, Some(2)));
        let spec = job("  completions: 6\n").spec.expect("spec");
        assert_eq!((spec.completions, spec.parallelism), (Some(6), Some(1)));
        let spec = job("  backoffLimitPerIndex: 1\n").spec.expect("spec");
        assert_eq!(spec.backoff_limit, Some(i32::MAX));
    }

    #[test]
    fn job_selector_generation() {
        let Object::Job(mut j) = defaulted(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: pi\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: perl\n",
        ) else {
            panic!()
        };
        job_selector_for_uid(&mut j, "u-1");
        let spec = j.spec.as_ref().expect("spec");
        let labels = &spec
            .template
            .as_ref()
            .expect("t")
            .metadata
            .as_ref()
            .expect("m")
            .labels;
        assert_eq!(
            labels.get("controller-uid").map(String::as_str),
            Some("u-1")
        );
        assert_eq!(
            labels.get(CONTROLLER_UID_LABEL).map(String::as_str),
            Some("u-1")
        );
        assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
        assert_eq!(labels.get(JOB_NAME_LABEL).map(String::as_str), Some("pi"));
        let sel = &spec.selector.as_ref().expect("selector").match_labels;
        assert_eq!(sel.len(), 1);
        assert_eq!(
            sel.get(CONTROLLER_UID_LABEL).map(String::as_str),
            Some("u-1")
        );
        // The generated selector matches the template and passes validation.
        assert!(crate::validation::validate(&Object::Job(j.clone())).is_empty());

        // A manual selector is left alone.
        let mut m = j.clone();
        let spec = m.spec.as_mut().expect("spec");
        spec.manual_selector = Some(true);
        spec.selector = None;
        job_selector_for_uid(&mut m, "u-2");
        assert!(m.spec.expect("spec").selector.is_none());
    }

    #[test]
    fn cronjob_service_and_other_defaults() {
        let Object::CronJob(cj) = defaulted(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n          - name: c\n            image: busybox\n",
        ) else {
            panic!()
        };
        let spec = cj.spec.expect("spec");
        assert_eq!(spec.concurrency_policy, "Allow");
        assert_eq!(spec.suspend, Some(false));
        assert_eq!(
            (
                spec.successful_jobs_history_limit,
                spec.failed_jobs_history_limit
            ),
            (Some(3), Some(1))
        );
        let ps = spec
            .job_template
            .expect("jt")
            .spec
            .expect("js")
            .template
            .expect("t")
            .spec
            .expect("s");
        assert_eq!(ps.containers[0].image_pull_policy, "Always");

        let Object::Service(svc) = defaulted(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n  - port: 443\n    targetPort: https\n",
        ) else {
            panic!()
        };
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.r#type, "ClusterIP");
        assert_eq!(spec.session_affinity, "None");
        assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(spec.ip_families, vec!["IPv4"]);
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.ports[0].protocol, "TCP");
        assert_eq!(spec.ports[0].target_port, Some(IntOrString::int(80)));
        assert_eq!(
            spec.ports[1].target_port,
            Some(IntOrString::string("https"))
        );

        let Object::Namespace(ns) =
            defaulted("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: 'n'\n")
        else {
            panic!()
        };
        assert!(ns.spec.is_none_or(|s| s.finalizers.is_empty()));
        assert_eq!(ns.status.expect("status").phase, "Active");

        let Object::Secret(s) = defaulted("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n")
        else {
            panic!()
        };
        assert_eq!(s.r#type, "Opaque");

        let Object::Secret(s) = defaulted(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  a: b2xk\n  b: Yg==\nstringData:\n  a: new\n  c: see\n",
        ) else {
            panic!()
        };
        assert!(s.string_data.is_empty(), "stringData is never stored");
        let data: Vec<(&str, &[u8])> = s.data.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
        assert_eq!(data, [("a", &b"new"[..]), ("b", b"b"), ("c", b"see")]);

        let Object::HorizontalPodAutoscaler(h) = defaulted(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 60\n",
        ) else {
            panic!()
        };
        let spec = h.spec.expect("spec");
        assert_eq!(spec.min_replicas, Some(1));
        let m = &spec.metrics[0];
        assert_eq!(m.r#type, "Resource");
        assert_eq!(
            m.resource
                .as_ref()
                .and_then(|r| r.target.as_ref())
                .and_then(|t| t.average_utilization),
            Some(80)
        );
        let b = spec.behavior.expect("behavior");
        let down = b.scale_down.expect("down");
        assert_eq!(down.stabilization_window_seconds, Some(60));
        assert_eq!(down.policies.len(), 1);
        assert_eq!(b.scale_up.expect("up").policies.len(), 2);

        let Object::HorizontalPodAutoscaler(h) = defaulted(
            "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n",
        ) else {
            panic!()
        };
        let spec = h.spec.expect("spec");
        assert!(spec.metrics.is_empty());
        assert_eq!(spec.target_cpu_utilization_percentage, None);

        let Object::HorizontalPodAutoscaler(h) = defaulted(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n  behavior:\n    scaleUp:\n      selectPolicy: Min\n",
        ) else {
            panic!()
        };
        let b = h.spec.and_then(|s| s.behavior).expect("behavior");
        assert_eq!(
            b.scale_down.expect("down").stabilization_window_seconds,
            None
        );
        assert_eq!(
            b.scale_up.expect("up").stabilization_window_seconds,
            Some(0)
        );
    }
}
