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

mod job;
mod pod;
#[cfg(test)]
mod tests;

use job::job_spec_defaults;
pub use job::{
    job_selector_for_uid, CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
};
use pod::template_defaults;
pub use pod::{default_image_pull_policy, pod_spec_defaults};

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
