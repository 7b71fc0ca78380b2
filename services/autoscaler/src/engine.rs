//! What the controller loop and the Autoscaler service share: the store client, the metrics
//! client, the pod cache, the clock, the controller's per-HPA memory and decision history, and
//! the I/O around [`decide`](crate::decide::decide): reading the target's scale, gathering the
//! metric inputs, writing the scale.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{
    CrossVersionObjectReference, Decision, Deployment, HorizontalPodAutoscaler, MetricSpec, Pod,
    PodMetrics, ReplicaSet, StatefulSet,
};
use coxswain_api::Kind;
use coxswain_client::{Cache, Client, Error as ClientError};
use coxswain_metrics::select::select;

use crate::behavior::Memory;
use crate::calc::PodInfo;
use crate::decide::{DecideConfig, Inputs, MetricInput, Scale};
use crate::metrics::MetricsClient;
use crate::selectors::SelectorIndex;
use crate::spec;

/// Every flag of the controller.
#[derive(Debug, Clone)]
pub struct Config {
    pub sync_period: Duration,
    pub decide: DecideConfig,
    pub workers: usize,
    /// Decisions kept per HPA for History.
    pub history: usize,
    /// Component name on Events.
    pub component: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sync_period: Duration::from_secs(15),
            decide: DecideConfig::default(),
            workers: 4,
            history: 100,
            component: "horizontal-pod-autoscaler".into(),
        }
    }
}

/// Wall-clock milliseconds that advance with tokio's clock (so paused-clock tests move it).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_ms: i64,
    start: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock::at(base_ms)
    }

    /// A clock that reads `base_ms` now.
    pub fn at(base_ms: i64) -> Clock {
        Clock {
            base_ms,
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.base_ms + self.start.elapsed().as_millis() as i64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The shared state.
pub struct Engine {
    pub client: Client,
    pub metrics: Arc<dyn MetricsClient>,
    pub pods: Cache<Pod>,
    pub config: Config,
    pub clock: Clock,
    memory: Mutex<HashMap<String, Memory>>,
    history: Mutex<HashMap<String, VecDeque<Decision>>>,
    /// Each evaluated HPA's target selector, for AmbiguousSelector.
    selectors: Mutex<SelectorIndex>,
}

/// "ns/name".
pub fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Engine {
    pub fn new(
        client: Client,
        metrics: Arc<dyn MetricsClient>,
        pods: Cache<Pod>,
        config: Config,
    ) -> Engine {
        Engine {
            client,
            metrics,
            pods,
            config,
            clock: Clock::new(),
            memory: Mutex::new(HashMap::new()),
            history: Mutex::new(HashMap::new()),
            selectors: Mutex::new(SelectorIndex::default()),
        }
    }

    /// A copy of an HPA's memory.
    pub fn memory(&self, key: &str) -> Memory {
        self.memory
            .lock()
            .expect("memory")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    pub fn with_memory<T>(&self, key: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut m = self.memory.lock().expect("memory");
        f(m.entry(key.to_string()).or_default())
    }

    /// Forget a deleted HPA.
    pub fn forget(&self, key: &str) {
        self.memory.lock().expect("memory").remove(key);
        self.history.lock().expect("history").remove(key);
        self.selectors.lock().expect("selectors").remove(key);
    }

    /// Remember `key`'s target selector and return the HPAs whose selectors select any of
    /// `pods` (the pods this selector selects; sorted, `key` included), as upstream's
    /// validateAndParseSelector and hpasControllingPodsUnderSelector.
    pub fn controlling(
        &self,
        key: &str,
        namespace: &str,
        selector: &str,
        pods: &[Arc<Pod>],
    ) -> Vec<String> {
        let Ok(sel) = LabelSelector::parse(selector) else {
            return vec![];
        };
        if selector.is_empty() {
            return vec![];
        }
        let mut ix = self.selectors.lock().expect("selectors");
        ix.put(key, namespace, sel);
        ix.selecting(namespace, pods.iter().filter_map(|p| labels_of(p)))
            .into_iter()
            .collect()
    }

    /// The same check for a what-if, without remembering anything: the controller's filed
    /// selectors (`key`'s own replaced by `selector`) against these pods' labels.
    pub fn controlling_peek<'a>(
        &self,
        key: &str,
        namespace: &str,
        selector: &str,
        pods: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
    ) -> Vec<String> {
        let Ok(sel) = LabelSelector::parse(selector) else {
            return vec![];
        };
        if selector.is_empty() {
            return vec![];
        }
        let pods: Vec<_> = pods.into_iter().collect();
        let ix = self.selectors.lock().expect("selectors");
        let mut out = ix.selecting(namespace, pods.iter().copied());
        out.remove(key);
        if pods.iter().any(|l| sel.matches(l)) {
            out.insert(key.to_string());
        }
        out.into_iter().collect()
    }

    pub fn push_history(&self, key: &str, d: Decision) {
        let mut h = self.history.lock().expect("history");
        let q = h.entry(key.to_string()).or_default();
        q.push_back(d);
        while q.len() > self.config.history.max(1) {
            q.pop_front();
        }
    }

    /// The last `limit` decisions, oldest first.
    pub fn history(&self, key: &str, limit: usize) -> Vec<Decision> {
        let h = self.history.lock().expect("history");
        let Some(q) = h.get(key) else {
            return vec![];
        };
        q.iter()
            .skip(q.len().saturating_sub(limit))
            .cloned()
            .collect()
    }

    /// The target's scale subresource (Deployment, ReplicaSet, StatefulSet), or the error
    /// upstream's scale client reports.
    pub async fn get_scale(
        &self,
        namespace: &str,
        r: &CrossVersionObjectReference,
    ) -> Result<Scale, String> {
        let group = r.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let kind = Kind::from_manifest_kind(&r.kind);
        let not_found = |k: Kind| {
            format!("{}.{} {:?} not found", k.plural(), k.group(), r.name).replace(". ", " ")
        };
        let sel = |s: Option<&coxswain_api::v1::LabelSelector>| {
            LabelSelector::from_proto(s)
                .map(|s| s.to_string())
                .unwrap_or_default()
        };
        let res = match kind {
            Some(Kind::Deployment) => {
                self.client
                    .get::<Deployment>(namespace, &r.name)
                    .await
                    .map(|o| {
                        o.map(|d| {
                            let (spec, st) =
                                (d.spec.unwrap_or_default(), d.status.unwrap_or_default());
                            Scale {
                                spec_replicas: spec.replicas.unwrap_or(1),
                                status_replicas: st.replicas,
                                selector: sel(spec.selector.as_ref()),
                            }
                        })
                    })
            }
            Some(Kind::ReplicaSet) => {
                self.client
                    .get::<ReplicaSet>(namespace, &r.name)
                    .await
                    .map(|o| {
                        o.map(|d| {
                            let (spec, st) =
                                (d.spec.unwrap_or_default(), d.status.unwrap_or_default());
                            Scale {
                                spec_replicas: spec.replicas.unwrap_or(1),
                                status_replicas: st.replicas,
                                selector: sel(spec.selector.as_ref()),
                            }
                        })
                    })
            }
            Some(Kind::StatefulSet) => self
                .client
                .get::<StatefulSet>(namespace, &r.name)
                .await
                .map(|o| {
                    o.map(|d| {
                        let (spec, st) = (d.spec.unwrap_or_default(), d.status.unwrap_or_default());
                        Scale {
                            spec_replicas: spec.replicas.unwrap_or(1),
                            status_replicas: st.replicas,
                            selector: sel(spec.selector.as_ref()),
                        }
                    })
                }),
            Some(_) => return Err("the server could not find the requested resource".into()),
            None => {
                return Err(format!(
                    "no matches for kind {:?} in group {:?}",
                    r.kind, group
                ))
            }
        };
        match res {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(not_found(kind.expect("known kind"))),
            Err(e) => Err(client_error(e)),
        }
    }

    /// Write spec.replicas through the target's scale.
    pub async fn write_scale(
        &self,
        namespace: &str,
        r: &CrossVersionObjectReference,
        replicas: i32,
    ) -> Result<(), String> {
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        let res = match Kind::from_manifest_kind(&r.kind) {
            Some(Kind::Deployment) => self
                .client
                .patch::<Deployment>(namespace, &r.name, &patch)
                .await
                .map(drop),
            Some(Kind::ReplicaSet) => self
                .client
                .patch::<ReplicaSet>(namespace, &r.name, &patch)
                .await
                .map(drop),
            Some(Kind::StatefulSet) => self
                .client
                .patch::<StatefulSet>(namespace, &r.name, &patch)
                .await
                .map(drop),
            _ => return Err("the server could not find the requested resource".into()),
        };
        res.map_err(client_error)
    }

    /// The pods of `namespace` the selector matches, from the cache (through its label index).
    pub fn selected(&self, namespace: &str, selector: &str) -> Vec<Arc<Pod>> {
        if selector.is_empty() {
            return vec![];
        }
        match LabelSelector::parse(selector) {
            Ok(sel) => select(&self.pods, namespace, &sel),
            Err(_) => vec![],
        }
    }

    /// [`Engine::selected`] as the replica calculator reads them.
    pub fn selected_pods(&self, namespace: &str, selector: &str) -> Vec<PodInfo> {
        self.selected(namespace, selector)
            .iter()
            .map(|p| PodInfo::from_pod(p))
            .collect()
    }

    /// Fetch one metric's values; `resource` caches the PodMetrics list across the resource
    /// metrics of one HPA.
    pub async fn fetch_metric(
        &self,
        ns: &str,
        m: &MetricSpec,
        selector: &str,
        resource: &mut Option<Result<Vec<PodMetrics>, String>>,
    ) -> MetricInput {
        let msel = |s: Option<&coxswain_api::v1::LabelSelector>| match s {
            None => String::new(),
            Some(s) => LabelSelector::from_proto(Some(s))
                .map(|s| s.to_string())
                .unwrap_or_default(),
        };
        match m.r#type.as_str() {
            "Resource" | "ContainerResource" => {
                if resource.is_none() {
                    *resource = Some(self.metrics.pod_metrics(ns, selector).await);
                }
                MetricInput::Resource(resource.clone().expect("fetched"))
            }
            "Pods" => {
                let id = m.pods.clone().and_then(|p| p.metric).unwrap_or_default();
                MetricInput::Pods(
                    self.metrics
                        .pods_metric(ns, &id.name, selector, &msel(id.selector.as_ref()))
                        .await,
                )
            }
            "Object" => {
                let o = m.object.clone().unwrap_or_default();
                let id = o.metric.unwrap_or_default();
                let obj = o.described_object.unwrap_or_default();
                MetricInput::Object(
                    self.metrics
                        .object_metric(ns, &obj, &id.name, &msel(id.selector.as_ref()))
                        .await,
                )
            }
            "External" => {
                let id = m
                    .external
                    .clone()
                    .and_then(|p| p.metric)
                    .unwrap_or_default();
                MetricInput::External(
                    self.metrics
                        .external_metric(ns, &id.name, &msel(id.selector.as_ref()))
                        .await,
                )
            }
            _ => MetricInput::None,
        }
    }

    /// Fetch every metric's values.
    pub async fn gather_metrics(
        &self,
        hpa: &HorizontalPodAutoscaler,
        selector: &str,
    ) -> Vec<MetricInput> {
        let ns = hpa
            .metadata
            .as_ref()
            .map(|m| m.namespace.clone())
            .unwrap_or_default();
        let hspec = hpa.spec.clone().unwrap_or_default();
        let mut resource = None;
        let mut out = Vec::new();
        for m in spec::metrics(&hspec) {
            out.push(self.fetch_metric(&ns, &m, selector, &mut resource).await);
        }
        out
    }

    /// The live inputs of a decision.
    pub async fn gather(&self, hpa: &HorizontalPodAutoscaler) -> Inputs {
        let ns = hpa
            .metadata
            .as_ref()
            .map(|m| m.namespace.clone())
            .unwrap_or_default();
        let target = hpa
            .spec
            .as_ref()
            .and_then(|s| s.scale_target_ref.clone())
            .unwrap_or_default();
        let scale = self.get_scale(&ns, &target).await;
        let name = hpa
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let (pods, metrics, controlling) = match &scale {
            Ok(s) => {
                let selected = self.selected(&ns, &s.selector);
                let controlling = self.controlling(&key(&ns, &name), &ns, &s.selector, &selected);
                (
                    selected.iter().map(|p| PodInfo::from_pod(p)).collect(),
                    self.gather_metrics(hpa, &s.selector).await,
                    controlling,
                )
            }
            Err(_) => (vec![], vec![], vec![]),
        };
        Inputs {
            scale,
            pods,
            metrics,
            now_ms: self.clock.now_ms(),
            controlling,
        }
    }
}

fn labels_of(p: &Pod) -> Option<&BTreeMap<String, String>> {
    p.metadata.as_ref().map(|m| &m.labels)
}

fn client_error(e: ClientError) -> String {
    match e {
        ClientError::Transport(s) => s.message().to_string(),
        ClientError::NotFound(s)
        | ClientError::AlreadyExists(s)
        | ClientError::Conflict(s)
        | ClientError::Invalid(s)
        | ClientError::Gone(s)
        | ClientError::Decode(s) => s,
    }
}

/// Labels map helper for tests.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
