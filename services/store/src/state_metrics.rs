//! Object state as kube-state-metrics exports it, read from the store's watch cache at scrape
//! time: no list through the API and no work on the write path.
//!
//! A scrape clones the `Arc`s of the cached Deployments, Pods, Nodes and HPAs under the cache's
//! read lock (no decoding there), then renders each object's series outside it. The series of
//! an object are memoised by its revision, so a scrape decodes only what changed since the last
//! one; objects gone from the cache leave the memo.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coxswain_api::quantity::Quantity;
use coxswain_api::v1;
use coxswain_api::{Kind, Object};
use coxswain_telemetry::text::{header, sample, Type};

use crate::cache::Stored;
use crate::Store;

/// One family: name and HELP (all are gauges).
struct Family {
    name: &'static str,
    help: &'static str,
}

const fn fam(name: &'static str, help: &'static str) -> Family {
    Family { name, help }
}

const DEPLOYMENT: &[Family] = &[
    fam(
        "kube_deployment_spec_replicas",
        "Number of desired pods for a deployment.",
    ),
    fam(
        "kube_deployment_status_replicas",
        "The number of replicas per deployment.",
    ),
    fam(
        "kube_deployment_status_replicas_ready",
        "The number of ready replicas per deployment.",
    ),
    fam(
        "kube_deployment_status_replicas_updated",
        "The number of updated replicas per deployment.",
    ),
    fam(
        "kube_deployment_status_replicas_available",
        "The number of available replicas per deployment.",
    ),
];
const POD: &[Family] = &[fam("kube_pod_status_phase", "The pods current phase.")];
const NODE: &[Family] = &[fam(
    "kube_node_status_condition",
    "The condition of a cluster node.",
)];
const HPA: &[Family] = &[
    fam("kube_horizontalpodautoscaler_spec_min_replicas", "Lower limit for the number of pods that can be set by the autoscaler, default 1."),
    fam("kube_horizontalpodautoscaler_spec_max_replicas", "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas."),
    fam("kube_horizontalpodautoscaler_spec_target_metric", "The metric specifications used by this autoscaler when calculating the desired replica count."),
    fam("kube_horizontalpodautoscaler_status_target_metric", "The current metric status used by this autoscaler when calculating the desired replica count."),
    fam("kube_horizontalpodautoscaler_status_current_replicas", "Current number of replicas of pods managed by this autoscaler."),
    fam("kube_horizontalpodautoscaler_status_desired_replicas", "Desired number of replicas of pods managed by this autoscaler."),
];

const KINDS: &[(Kind, &[Family])] = &[
    (Kind::Deployment, DEPLOYMENT),
    (Kind::Pod, POD),
    (Kind::Node, NODE),
    (Kind::HorizontalPodAutoscaler, HPA),
];

/// An object's rendered series, one chunk per family of its kind.
struct Rendered {
    revision: i64,
    chunks: Vec<String>,
}

/// The collector: register it with `coxswain_telemetry::register`.
pub struct StateMetrics {
    store: Store,
    memo: Mutex<HashMap<(Kind, Box<str>), Rendered>>,
}

impl StateMetrics {
    pub fn new(store: Store) -> Arc<StateMetrics> {
        Arc::new(StateMetrics {
            store,
            memo: Mutex::new(HashMap::new()),
        })
    }
}

impl coxswain_telemetry::Collector for StateMetrics {
    fn collect(&self, out: &mut String) {
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh = HashMap::with_capacity(memo.len());
        for (kind, families) in KINDS {
            let objects = self.store.cached(*kind);
            let mut rendered = Vec::with_capacity(objects.len());
            for s in objects {
                let key = (*kind, Box::<str>::from(s.key()));
                let r = match memo.remove(&key) {
                    Some(r) if r.revision == s.revision => r,
                    _ => Rendered {
                        revision: s.revision,
                        chunks: render(&s, families.len()),
                    },
                };
                rendered.push(key.clone());
                fresh.insert(key, r);
            }
            for (i, f) in families.iter().enumerate() {
                header(out, f.name, Type::Gauge, f.help);
                for key in &rendered {
                    if let Some(c) = fresh.get(key).and_then(|r| r.chunks.get(i)) {
                        out.push_str(c);
                    }
                }
            }
        }
        *memo = fresh;
    }
}

fn render(s: &Stored, n: usize) -> Vec<String> {
    let mut chunks = vec![String::new(); n];
    match s.decode() {
        Object::Deployment(d) => deployment(&d, &mut chunks),
        Object::Pod(p) => pod(&p, &mut chunks),
        Object::Node(n) => node(&n, &mut chunks),
        Object::HorizontalPodAutoscaler(h) => hpa(&h, &mut chunks),
        _ => {}
    }
    chunks
}

fn meta(m: &Option<v1::ObjectMeta>) -> (&str, &str, &str) {
    m.as_ref().map_or(("", "", ""), |m| {
        (m.namespace.as_str(), m.name.as_str(), m.uid.as_str())
    })
}

fn deployment(d: &v1::Deployment, c: &mut [String]) {
    let (ns, name, _) = meta(&d.metadata);
    let l = [("namespace", ns), ("deployment", name)];
    let spec = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let values = [
        spec,
        st.replicas,
        st.ready_replicas,
        st.updated_replicas,
        st.available_replicas,
    ];
    for ((chunk, f), v) in c.iter_mut().zip(DEPLOYMENT).zip(values) {
        sample(chunk, f.name, &l, v as f64);
    }
}

fn pod(p: &v1::Pod, c: &mut [String]) {
    let (ns, name, uid) = meta(&p.metadata);
    let phase = p.status.as_ref().map_or("", |s| s.phase.as_str());
    let phase = if phase.is_empty() { "Pending" } else { phase };
    for ph in ["Pending", "Succeeded", "Failed", "Unknown", "Running"] {
        sample(
            &mut c[0],
            POD[0].name,
            &[
                ("namespace", ns),
                ("pod", name),
                ("uid", uid),
                ("phase", ph),
            ],
            if ph == phase { 1.0 } else { 0.0 },
        );
    }
}

fn node(n: &v1::Node, c: &mut [String]) {
    let (_, name, _) = meta(&n.metadata);
    let Some(st) = &n.status else { return };
    for cond in &st.conditions {
        for (status, label) in [("True", "true"), ("False", "false"), ("Unknown", "unknown")] {
            sample(
                &mut c[0],
                NODE[0].name,
                &[
                    ("node", name),
                    ("condition", cond.r#type.as_str()),
                    ("status", label),
                ],
                if cond.status == status { 1.0 } else { 0.0 },
            );
        }
    }
}

/// A quantity as a float (milli-precision; the metric is a gauge).
fn qty(s: &str) -> Option<f64> {
    Quantity::parse(s).ok().map(|q| q.nano_value() as f64 / 1e9)
}

/// (metric name, target type label, value) of a MetricTarget or MetricValueStatus.
fn target_values(utilization: Option<i32>, average: &str, value: &str) -> Vec<(&'static str, f64)> {
    let mut v = Vec::new();
    if let Some(u) = utilization {
        v.push(("utilization", u as f64));
    }
    if let Some(a) = qty(average).filter(|_| !average.is_empty()) {
        v.push(("average", a));
    }
    if let Some(x) = qty(value).filter(|_| !value.is_empty()) {
        v.push(("value", x));
    }
    v
}

fn hpa(h: &v1::HorizontalPodAutoscaler, c: &mut [String]) {
    let (ns, name, _) = meta(&h.metadata);
    let l = [("namespace", ns), ("horizontalpodautoscaler", name)];
    let spec = h.spec.clone().unwrap_or_default();
    let st = h.status.clone().unwrap_or_default();
    sample(
        &mut c[0],
        HPA[0].name,
        &l,
        spec.min_replicas.unwrap_or(1) as f64,
    );
    sample(&mut c[1], HPA[1].name, &l, spec.max_replicas as f64);
    let metric = |chunk: &mut String, family: &str, metric_name: &str, vals: Vec<(&str, f64)>| {
        for (typ, v) in vals {
            sample(
                chunk,
                family,
                &[
                    ("namespace", ns),
                    ("horizontalpodautoscaler", name),
                    ("metric_name", metric_name),
                    ("metric_target_type", typ),
                ],
                v,
            );
        }
    };
    if let Some(p) = spec.target_cpu_utilization_percentage {
        metric(
            &mut c[2],
            HPA[2].name,
            "cpu",
            vec![("utilization", p as f64)],
        );
    }
    for m in &spec.metrics {
        let (metric_name, t) = match m.r#type.as_str() {
            "Resource" => m
                .resource
                .as_ref()
                .map(|r| (r.name.clone(), r.target.clone())),
            "ContainerResource" => m
                .container_resource
                .as_ref()
                .map(|r| (r.name.clone(), r.target.clone())),
            "Pods" => m
                .pods
                .as_ref()
                .map(|r| (r.metric.clone().unwrap_or_default().name, r.target.clone())),
            "Object" => m
                .object
                .as_ref()
                .map(|r| (r.metric.clone().unwrap_or_default().name, r.target.clone())),
            "External" => m
                .external
                .as_ref()
                .map(|r| (r.metric.clone().unwrap_or_default().name, r.target.clone())),
            _ => None,
        }
        .unwrap_or_default();
        let t = t.unwrap_or_default();
        metric(
            &mut c[2],
            HPA[2].name,
            &metric_name,
            target_values(t.average_utilization, &t.average_value, &t.value),
        );
    }
    if let Some(p) = st.current_cpu_utilization_percentage {
        metric(
            &mut c[3],
            HPA[3].name,
            "cpu",
            vec![("utilization", p as f64)],
        );
    }
    for m in &st.current_metrics {
        let (metric_name, cur) = match m.r#type.as_str() {
            "Resource" => m
                .resource
                .as_ref()
                .map(|r| (r.name.clone(), r.current.clone())),
            "ContainerResource" => m
                .container_resource
                .as_ref()
                .map(|r| (r.name.clone(), r.current.clone())),
            "Pods" => m
                .pods
                .as_ref()
                .map(|r| (r.metric.clone().unwrap_or_default().name, r.current.clone())),
            "Object" => m
                .object
                .as_ref()
                .map(|r| (r.metric.clone().unwrap_or_default().name, r.current.clone())),
            "External" => m
                .external
                .as_ref()
                .map(|r| (r.metric.clone().unwrap_or_default().name, r.current.clone())),
            _ => None,
        }
        .unwrap_or_default();
        let cur = cur.unwrap_or_default();
        metric(
            &mut c[3],
            HPA[3].name,
            &metric_name,
            target_values(cur.average_utilization, &cur.average_value, &cur.value),
        );
    }
    sample(&mut c[4], HPA[4].name, &l, st.current_replicas as f64);
    sample(&mut c[5], HPA[5].name, &l, st.desired_replicas as f64);
}
