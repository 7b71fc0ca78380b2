//! The `coxswain.v1.Metrics` gRPC service: resource metrics from the storage, filtered and
//! labelled through the Node and Pod informers (never a list per request), and the pushed
//! custom/external metrics.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::quantity::{Format, Quantity};
use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::metrics_server::Metrics;
use coxswain_api::v1::{
    ContainerMetrics, ExternalMetricValue, ExternalMetricValueList, GetExternalMetricRequest,
    GetNodeMetricsRequest, GetObjectMetricRequest, GetPodMetricsRequest, GetPodsMetricRequest,
    ListNodeMetricsRequest, ListPodMetricsRequest, MetricValue, MetricValueList, Node, NodeMetrics,
    NodeMetricsList, ObjectMeta, ObjectReference, Pod, PodMetrics, PodMetricsList,
    PushMetricsRequest, PushMetricsResponse,
};
use coxswain_client::authz::{check, Attributes};
use coxswain_client::Cache;
use tonic::{Request, Response, Status};

use crate::pushed::Sample;
use crate::storage::{NodeUsage, PodUsage, Usage};
use crate::time::{format_nanos, go_duration, now_nanos, Nanos};
use crate::State;

/// The service over the shared state and the informer caches.
#[derive(Clone)]
pub struct Service {
    pub(crate) state: Arc<State>,
    pub(crate) nodes: Cache<Node>,
    pub(crate) pods: Cache<Pod>,
}

fn selector(s: &str, field: &str) -> Result<LabelSelector, Status> {
    LabelSelector::parse(s)
        .map_err(|e| Status::invalid_argument(format!("{field}: Invalid value: \"{s}\": {e}")))
}

/// Nanocores as the quantity metrics-server serves ("250m", "105273846n").
pub fn cpu_quantity(nano_cores: u64) -> String {
    Quantity::parse(&format!("{nano_cores}n"))
        .map(|q| q.canonical())
        .unwrap_or_else(|_| "0".into())
}

/// Bytes as a binary-SI quantity ("12Mi", "1234567").
pub fn memory_quantity(bytes: u64) -> String {
    Quantity::from_value(bytes.min(i64::MAX as u64) as i64, Format::BinarySI).canonical()
}

fn usage_map(u: Usage) -> std::collections::BTreeMap<String, String> {
    [
        ("cpu".to_string(), cpu_quantity(u.cpu_nano_cores)),
        ("memory".to_string(), memory_quantity(u.memory_bytes)),
    ]
    .into_iter()
    .collect()
}

fn window(w: Nanos) -> String {
    go_duration(Duration::from_nanos(w.max(0) as u64))
}

fn node_metrics(node: &Node, u: NodeUsage, now: &str) -> NodeMetrics {
    let m = node.metadata.clone().unwrap_or_default();
    NodeMetrics {
        metadata: Some(ObjectMeta {
            name: m.name,
            labels: m.labels,
            creation_timestamp: now.to_string(),
            ..Default::default()
        }),
        timestamp: format_nanos(u.timestamp),
        window: window(u.window),
        usage: usage_map(u.usage),
    }
}

fn pod_metrics(pod: &Pod, u: PodUsage, now: &str) -> PodMetrics {
    let m = pod.metadata.clone().unwrap_or_default();
    PodMetrics {
        metadata: Some(ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            labels: m.labels,
            creation_timestamp: now.to_string(),
            ..Default::default()
        }),
        timestamp: format_nanos(u.timestamp),
        window: window(u.window),
        containers: u
            .containers
            .into_iter()
            .map(|(name, u)| ContainerMetrics {
                name,
                usage: usage_map(u),
            })
            .collect(),
    }
}

fn metric_value(s: &Sample) -> MetricValue {
    MetricValue {
        described_object: Some(ObjectReference {
            kind: s.kind.clone(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            api_version: coxswain_api::Kind::parse(&s.kind)
                .map(|k| k.api_version().to_string())
                .unwrap_or_default(),
            ..Default::default()
        }),
        metric_name: s.metric_name.clone(),
        metric_labels: s.labels.clone(),
        timestamp: format_nanos(s.timestamp),
        window_seconds: s.window_seconds,
        value: s.value.canonical(),
    }
}

fn namespace_or_default(ns: &str) -> &str {
    if ns.is_empty() {
        "default"
    } else {
        ns
    }
}

impl Service {
    fn storage(&self) -> Result<std::sync::RwLockReadGuard<'_, crate::storage::Storage>, Status> {
        self.state
            .storage
            .read()
            .map_err(|_| Status::internal("metrics storage poisoned"))
    }
}

/// The API groups of the resource metrics and of the custom and external metrics APIs.
const METRICS: &str = "metrics.k8s.io";
const CUSTOM: &str = "custom.metrics.k8s.io";
const EXTERNAL: &str = "external.metrics.k8s.io";

/// The resource of an object kind in the custom metrics API (`pods`, `deployments`, as its
/// URL names it), and whether it is namespaced.
fn object_resource(kind: &str) -> (String, bool) {
    match coxswain_api::Kind::parse(kind) {
        Some(k) => (k.plural().to_string(), k.namespaced()),
        None => (kind.to_ascii_lowercase(), true),
    }
}

/// The request a metric push is authorized as: a `create` of the series it would be read as
/// (`<resource>/<metric>` in custom.metrics.k8s.io, `<metric>` in external.metrics.k8s.io).
fn push_attributes(m: &coxswain_api::v1::PushedMetric) -> Attributes {
    match m.r#type.as_str() {
        "external" => Attributes::resource(
            "create",
            EXTERNAL,
            &m.metric_name,
            namespace_or_default(&m.namespace),
            "",
        ),
        _ => {
            let o = m.described_object.clone().unwrap_or_default();
            let (resource, namespaced) = object_resource(&o.kind);
            let ns = match namespaced {
                true => namespace_or_default(&o.namespace),
                false => "",
            };
            Attributes::resource("create", CUSTOM, &resource, ns, &o.name)
                .on_subresource(&m.metric_name)
        }
    }
}

#[tonic::async_trait]
impl Metrics for Service {
    async fn get_node_metrics(
        &self,
        req: Request<GetNodeMetricsRequest>,
    ) -> Result<Response<NodeMetrics>, Status> {
        let a = Attributes::resource("get", METRICS, "nodes", "", &req.get_ref().name);
        check(&req, &a)?;
        let r = req.into_inner();
        if r.name.is_empty() {
            return Err(Status::invalid_argument("name: Required value"));
        }
        let not_found = || {
            Status::not_found(format!(
                "nodemetrics.metrics.k8s.io \"{}\" not found",
                r.name
            ))
        };
        let node = self.nodes.get("", &r.name).ok_or_else(not_found)?;
        let u = self.storage()?.node(&r.name).ok_or_else(not_found)?;
        Ok(Response::new(node_metrics(
            &node,
            u,
            &format_nanos(now_nanos()),
        )))
    }

    async fn list_node_metrics(
        &self,
        req: Request<ListNodeMetricsRequest>,
    ) -> Result<Response<NodeMetricsList>, Status> {
        check(
            &req,
            &Attributes::resource("list", METRICS, "nodes", "", ""),
        )?;
        let r = req.into_inner();
        let sel = selector(&r.label_selector, "labelSelector")?;
        let now = format_nanos(now_nanos());
        let storage = self.storage()?;
        let mut items: Vec<NodeMetrics> = self
            .nodes
            .list()
            .iter()
            .filter(|n| n.metadata.as_ref().is_some_and(|m| sel.matches(&m.labels)))
            .filter_map(|n| {
                let name = n.metadata.as_ref().map(|m| m.name.as_str())?;
                storage.node(name).map(|u| node_metrics(n, u, &now))
            })
            .collect();
        items.sort_by(|a, b| {
            let name = |m: &NodeMetrics| m.metadata.as_ref().map(|m| m.name.clone());
            name(a).cmp(&name(b))
        });
        Ok(Response::new(NodeMetricsList { items }))
    }

    async fn get_pod_metrics(
        &self,
        req: Request<GetPodMetricsRequest>,
    ) -> Result<Response<PodMetrics>, Status> {
        let r = req.get_ref();
        let ns = namespace_or_default(&r.namespace);
        check(
            &req,
            &Attributes::resource("get", METRICS, "pods", ns, &r.name),
        )?;
        let r = req.into_inner();
        if r.name.is_empty() {
            return Err(Status::invalid_argument("name: Required value"));
        }
        let ns = namespace_or_default(&r.namespace);
        let not_found = || {
            Status::not_found(format!(
                "podmetrics.metrics.k8s.io \"{ns}/{}\" not found",
                r.name
            ))
        };
        let pod = self.pods.get(ns, &r.name).ok_or_else(not_found)?;
        let u = self.storage()?.pod(ns, &r.name).ok_or_else(not_found)?;
        Ok(Response::new(pod_metrics(
            &pod,
            u,
            &format_nanos(now_nanos()),
        )))
    }

    async fn list_pod_metrics(
        &self,
        req: Request<ListPodMetricsRequest>,
    ) -> Result<Response<PodMetricsList>, Status> {
        // An empty namespace lists every namespace's pods: a cluster-scope list.
        let a = Attributes::resource("list", METRICS, "pods", &req.get_ref().namespace, "");
        check(&req, &a)?;
        let r = req.into_inner();
        let sel = selector(&r.label_selector, "labelSelector")?;
        let now = format_nanos(now_nanos());
        let pods = crate::select::select(&self.pods, &r.namespace, &sel);
        let storage = self.storage()?;
        let mut items: Vec<PodMetrics> = pods
            .iter()
            .filter_map(|p| {
                let m = p.metadata.as_ref()?;
                storage
                    .pod(&m.namespace, &m.name)
                    .map(|u| pod_metrics(p, u, &now))
            })
            .collect();
        items.sort_by(|a, b| {
            let key = |m: &PodMetrics| {
                m.metadata
                    .as_ref()
                    .map(|m| (m.namespace.clone(), m.name.clone()))
            };
            key(a).cmp(&key(b))
        });
        Ok(Response::new(PodMetricsList { items }))
    }

    async fn push_metrics(
        &self,
        req: Request<PushMetricsRequest>,
    ) -> Result<Response<PushMetricsResponse>, Status> {
        for m in &req.get_ref().metrics {
            check(&req, &push_attributes(m))?;
        }
        let r = req.into_inner();
        let n = self
            .state
            .pushed
            .lock()
            .map_err(|_| Status::internal("pushed metrics poisoned"))?
            .push(&r.metrics, now_nanos())
            .map_err(|e| Status::invalid_argument(e.0))?;
        Ok(Response::new(PushMetricsResponse { accepted: n as i32 }))
    }

    async fn get_pods_metric(
        &self,
        req: Request<GetPodsMetricRequest>,
    ) -> Result<Response<MetricValueList>, Status> {
        // GET .../namespaces/<ns>/pods/*/<metric>: resource pods, name "*", the metric as
        // the subresource (upstream's request info).
        let r = req.get_ref();
        let ns = namespace_or_default(&r.namespace);
        let a = Attributes::resource("get", CUSTOM, "pods", ns, "*").on_subresource(&r.metric_name);
        check(&req, &a)?;
        let r = req.into_inner();
        if r.metric_name.is_empty() {
            return Err(Status::invalid_argument("metricName: Required value"));
        }
        let ns = namespace_or_default(&r.namespace);
        let sel = selector(&r.label_selector, "labelSelector")?;
        let msel = selector(&r.metric_selector, "metricSelector")?;
        let pods = crate::select::select(&self.pods, ns, &sel);
        let names: Vec<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.as_ref())
            .map(|m| m.name.as_str())
            .collect();
        let pushed = self
            .state
            .pushed
            .lock()
            .map_err(|_| Status::internal("pushed metrics poisoned"))?;
        let items = pushed
            .pods(ns, &r.metric_name, &names, &msel, now_nanos())
            .into_iter()
            .map(metric_value)
            .collect();
        Ok(Response::new(MetricValueList { items }))
    }

    async fn get_object_metric(
        &self,
        req: Request<GetObjectMetricRequest>,
    ) -> Result<Response<MetricValue>, Status> {
        let r = req.get_ref();
        let o = r.described_object.clone().unwrap_or_default();
        let (resource, namespaced) = object_resource(&o.kind);
        let ns = match namespaced {
            true => namespace_or_default(&o.namespace),
            false => "",
        };
        let a = Attributes::resource("get", CUSTOM, &resource, ns, &o.name)
            .on_subresource(&r.metric_name);
        check(&req, &a)?;
        let r = req.into_inner();
        if r.metric_name.is_empty() {
            return Err(Status::invalid_argument("metricName: Required value"));
        }
        let o = r.described_object.unwrap_or_default();
        if o.kind.is_empty() {
            return Err(Status::invalid_argument(
                "describedObject.kind: Required value",
            ));
        }
        if o.name.is_empty() {
            return Err(Status::invalid_argument(
                "describedObject.name: Required value",
            ));
        }
        let msel = selector(&r.metric_selector, "metricSelector")?;
        let ns = namespace_or_default(&o.namespace);
        let pushed = self
            .state
            .pushed
            .lock()
            .map_err(|_| Status::internal("pushed metrics poisoned"))?;
        let s = pushed
            .object(&o.kind, ns, &o.name, &r.metric_name, &msel, now_nanos())
            .ok_or_else(|| {
                Status::not_found(format!(
                    "the server could not find the metric {} for {} {ns}/{}",
                    r.metric_name, o.kind, o.name
                ))
            })?;
        Ok(Response::new(metric_value(s)))
    }

    async fn get_external_metric(
        &self,
        req: Request<GetExternalMetricRequest>,
    ) -> Result<Response<ExternalMetricValueList>, Status> {
        // GET .../namespaces/<ns>/<metric>: a list of the resource named by the metric.
        let r = req.get_ref();
        let ns = namespace_or_default(&r.namespace);
        check(
            &req,
            &Attributes::resource("list", EXTERNAL, &r.metric_name, ns, ""),
        )?;
        let r = req.into_inner();
        if r.metric_name.is_empty() {
            return Err(Status::invalid_argument("metricName: Required value"));
        }
        let msel = selector(&r.metric_selector, "metricSelector")?;
        let ns = namespace_or_default(&r.namespace);
        let pushed = self
            .state
            .pushed
            .lock()
            .map_err(|_| Status::internal("pushed metrics poisoned"))?;
        let items = pushed
            .external(ns, &r.metric_name, &msel, now_nanos())
            .into_iter()
            .map(|s| ExternalMetricValue {
                metric_name: s.metric_name.clone(),
                metric_labels: s.labels.clone(),
                timestamp: format_nanos(s.timestamp),
                window_seconds: s.window_seconds,
                value: s.value.canonical(),
            })
            .collect();
        Ok(Response::new(ExternalMetricValueList { items }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_as_metrics_server_prints_them() {
        assert_eq!(cpu_quantity(250_000_000), "250m");
        assert_eq!(cpu_quantity(105_273_846), "105273846n");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(memory_quantity(12 << 20), "12Mi");
        assert_eq!(memory_quantity(1_234_567), "1234567");
        assert_eq!(memory_quantity(2048 * 3), "6Ki");
    }
}
