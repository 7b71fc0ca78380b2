//! The scheduler's view of the cluster for one cycle: every node with the pods bound (or
//! assumed) on it, the sum of their requests, and the host ports they use.
//!
//! Requests follow Kubernetes' rule (`resourcehelper.PodRequests`): per resource, the larger of
//! the sum over containers (plus restartable "sidecar" init containers, which keep running) and
//! the largest single init container (plus the sidecars started before it), then the pod
//! overhead added on top. Quantities are exact ([`Quantity`]): cpu in millicores
//! (`MilliValue`), everything else in whole units (`Value`).
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use coxswain_api::quantity::Quantity;
use coxswain_api::v1;

/// Millicores a container without a cpu request counts as when scoring (kube-scheduler's
/// `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Bytes a container without a memory request counts as when scoring (`DefaultMemoryRequest`).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each schedulable resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// As allocatable: how many pods the node takes. As a request: unused (0).
    pub allowed_pods: i64,
    /// Extended (`vendor/name`) and `hugepages-*` resources, in whole units.
    pub scalar: BTreeMap<String, i64>,
}

/// True for extended resources (`example.com/gpu`) and hugepages: the resources beyond cpu,
/// memory and ephemeral-storage that the scheduler counts.
pub fn is_scalar_resource(name: &str) -> bool {
    name.starts_with("hugepages-") || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

impl Resources {
    /// From a resource list (`requests`, `allocatable`, `overhead`). Unparsable quantities
    /// count as zero (validation rejects them before they get here).
    pub fn from_list(list: &BTreeMap<String, String>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list {
            let Ok(q) = Quantity::parse(q) else { continue };
            match name.as_str() {
                "cpu" => r.milli_cpu = q.milli_value(),
                "memory" => r.memory = q.value(),
                "ephemeral-storage" => r.ephemeral_storage = q.value(),
                "pods" => r.allowed_pods = q.value(),
                other if is_scalar_resource(other) => {
                    r.scalar.insert(other.to_string(), q.value());
                }
                _ => {}
            }
        }
        r
    }

    /// Add `o` to `self`, per resource.
    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pods += o.allowed_pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtract `o` from `self`, per resource (undoes [`Resources::add`]).
    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pods -= o.allowed_pods;
        for (k, v) in &o.scalar {
            if let Some(e) = self.scalar.get_mut(k) {
                *e -= v;
                if *e == 0 {
                    self.scalar.remove(k);
                }
            }
        }
    }

    /// Raise each resource of `self` to at least `o`'s.
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.max(o.allowed_pods);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// True when nothing is requested (a best-effort pod).
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    /// The pod's effective requests (Kubernetes' rule; see the module docs).
    pub fn for_pod(spec: &v1::PodSpec) -> Resources {
        aggregate(spec, false)
    }

    /// As [`Resources::for_pod`], but a container that omits its cpu or memory request counts
    /// as [`DEFAULT_MILLI_CPU_REQUEST`] / [`DEFAULT_MEMORY_REQUEST`] (scoring's "non-zero"
    /// requests, so best-effort pods still spread).
    pub fn non_zero_for_pod(spec: &v1::PodSpec) -> Resources {
        aggregate(spec, true)
    }
}

fn container_requests(c: &v1::Container, non_zero: bool) -> Resources {
    let empty = BTreeMap::new();
    let list = c.resources.as_ref().map_or(&empty, |r| &r.requests);
    let mut r = Resources::from_list(list);
    r.allowed_pods = 0;
    if non_zero {
        if !list.contains_key("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !list.contains_key("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn is_sidecar(c: &v1::Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn aggregate(spec: &v1::PodSpec, non_zero: bool) -> Resources {
    let mut reqs = Resources::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in &spec.init_containers {
        let mut r = container_requests(c, non_zero);
        if is_sidecar(c) {
            // A sidecar runs for the pod's whole life: it adds to the steady state, and every
            // later init container runs next to it.
            reqs.add(&r);
            sidecars.add(&r);
            r = sidecars.clone();
        } else {
            r.add(&sidecars);
        }
        init_max.max_with(&r);
    }
    reqs.max_with(&init_max);
    let mut overhead = Resources::from_list(&spec.overhead);
    overhead.allowed_pods = 0;
    reqs.add(&overhead);
    reqs
}

/// A host port a pod uses: `ip` defaults to `0.0.0.0` (every address), `protocol` to TCP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Two uses conflict on the same protocol and port when their IPs are equal or either is
    /// the wildcard `0.0.0.0`.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }

    /// The host ports of a pod's containers (and sidecar init containers).
    pub fn for_pod(spec: &v1::PodSpec) -> Vec<HostPort> {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().filter(|c| is_sidecar(c)))
            .flat_map(|c| &c.ports)
            .filter(|p| p.host_port > 0)
            .map(|p| HostPort {
                ip: if p.host_ip.is_empty() {
                    "0.0.0.0".into()
                } else {
                    p.host_ip.clone()
                },
                protocol: if p.protocol.is_empty() {
                    "TCP".into()
                } else {
                    p.protocol.clone()
                },
                port: p.host_port,
            })
            .collect()
    }
}

fn empty_spec() -> &'static v1::PodSpec {
    static EMPTY: std::sync::OnceLock<v1::PodSpec> = std::sync::OnceLock::new();
    EMPTY.get_or_init(v1::PodSpec::default)
}

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// A pod's spec, or an empty one.
pub fn pod_spec(pod: &v1::Pod) -> &v1::PodSpec {
    pod.spec.as_ref().unwrap_or_else(|| empty_spec())
}

/// A pod's labels (empty when it has no metadata).
pub fn pod_labels(pod: &v1::Pod) -> &BTreeMap<String, String> {
    pod.metadata.as_ref().map_or(&EMPTY_LABELS, |m| &m.labels)
}

/// A pod's namespace, `default` when unset.
pub fn pod_namespace(pod: &v1::Pod) -> &str {
    match pod.metadata.as_ref().map(|m| m.namespace.as_str()) {
        Some(ns) if !ns.is_empty() => ns,
        _ => "default",
    }
}

/// A pod's name.
pub fn pod_name(pod: &v1::Pod) -> &str {
    pod.metadata.as_ref().map_or("", |m| m.name.as_str())
}

/// A node's labels.
pub fn node_labels(node: &v1::Node) -> &BTreeMap<String, String> {
    node.metadata.as_ref().map_or(&EMPTY_LABELS, |m| &m.labels)
}

/// A node's name.
pub fn node_name(node: &v1::Node) -> &str {
    node.metadata.as_ref().map_or("", |m| m.name.as_str())
}

fn has_affinity(pod: &v1::Pod) -> bool {
    pod_spec(pod)
        .affinity
        .as_ref()
        .is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
}

/// The per-node integers the resource scores read (NodeResourcesFit, BalancedAllocation),
/// side by side: copies of fields of [`NodeInfo`]'s `allocatable`, `requested` and
/// `non_zero_requested`, refreshed whenever those change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HotResources {
    pub alloc_cpu: i64,
    pub alloc_memory: i64,
    pub requested_cpu: i64,
    pub requested_memory: i64,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
}

/// One node and what is placed on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// See [`HotResources`]: 48 contiguous bytes, so scoring a node touches one or two cache
    /// lines of it.
    hot: HotResources,
    pub node: Arc<v1::Node>,
    name: Arc<str>,
    pub pods: Vec<Arc<v1::Pod>>,
    /// Each pod's label class (parallel to `pods`).
    pub classes: Vec<crate::affinity::Class>,
    /// Each pod's [`Resources::for_pod`] and [`Resources::non_zero_for_pod`] (parallel to
    /// `pods`): computed once when the pod is added, subtracted as they are when it goes.
    pod_requests: Vec<(Resources, Resources)>,
    /// Sum of the pods' requests ([`Resources::for_pod`]).
    pub requested: Resources,
    /// Sum of the pods' non-zero requests ([`Resources::non_zero_for_pod`]), for scoring.
    pub non_zero_requested: Resources,
    /// The node's `status.allocatable`.
    pub allocatable: Resources,
    /// Host ports in use by the pods.
    pub used_ports: Vec<HostPort>,
    /// The pods with pod affinity or anti-affinity, with their terms parsed once (and shared
    /// between pods with the same affinity).
    pub affinity: Vec<(Arc<v1::Pod>, crate::affinity::SharedTerms)>,
    /// The node's labels interned ([`crate::affinity::label_ids`]), sorted by key id.
    label_ids: Vec<(u32, u32)>,
    /// Copies of `spec.unschedulable` and "has taints", kept next to the rest of the node's
    /// hot data so filtering a node that has neither does not touch the Node object.
    cordoned: bool,
    tainted: bool,
}

impl NodeInfo {
    pub fn new(node: Arc<v1::Node>) -> NodeInfo {
        let allocatable = node
            .status
            .as_ref()
            .map(|s| Resources::from_list(&s.allocatable))
            .unwrap_or_default();
        let mut ni = NodeInfo {
            hot: HotResources::default(),
            label_ids: crate::affinity::label_ids(node_labels(&node)),
            cordoned: node.spec.as_ref().is_some_and(|s| s.unschedulable),
            tainted: node.spec.as_ref().is_some_and(|s| !s.taints.is_empty()),
            name: node_name(&node).into(),
            node,
            pods: Vec::new(),
            classes: Vec::new(),
            pod_requests: Vec::new(),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            allocatable,
            used_ports: Vec::new(),
            affinity: Vec::new(),
        };
        ni.refresh_hot();
        ni
    }

    /// Copy the scored amounts into [`HotResources`] (after any change to them).
    fn refresh_hot(&mut self) {
        self.hot = HotResources {
            alloc_cpu: self.allocatable.milli_cpu,
            alloc_memory: self.allocatable.memory,
            requested_cpu: self.requested.milli_cpu,
            requested_memory: self.requested.memory,
            non_zero_cpu: self.non_zero_requested.milli_cpu,
            non_zero_memory: self.non_zero_requested.memory,
        };
    }

    /// The amounts the resource scores read, in one place.
    #[inline]
    pub fn hot(&self) -> &HotResources {
        &self.hot
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared.
    pub fn name_arc(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    /// Replace the node object (labels, taints, allocatable changed), keeping its pods.
    pub fn set_node(&mut self, node: Arc<v1::Node>) {
        self.allocatable = node
            .status
            .as_ref()
            .map(|s| Resources::from_list(&s.allocatable))
            .unwrap_or_default();
        self.label_ids = crate::affinity::label_ids(node_labels(&node));
        self.cordoned = node.spec.as_ref().is_some_and(|s| s.unschedulable);
        self.tainted = node.spec.as_ref().is_some_and(|s| !s.taints.is_empty());
        self.node = node;
        self.refresh_hot();
    }

    /// `spec.unschedulable`.
    #[inline]
    pub fn cordoned(&self) -> bool {
        self.cordoned
    }

    /// True when the node has any taint.
    #[inline]
    pub fn tainted(&self) -> bool {
        self.tainted
    }

    /// The interned value of the node's label with interned key `key`.
    #[inline]
    pub fn label_value_id(&self, key: u32) -> Option<u32> {
        self.label_ids
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        node_labels(&self.node)
    }

    /// Account a pod to this node.
    pub fn add_pod(&mut self, pod: Arc<v1::Pod>) {
        let spec = pod_spec(&pod);
        let (requested, non_zero) = (Resources::for_pod(spec), Resources::non_zero_for_pod(spec));
        self.requested.add(&requested);
        self.non_zero_requested.add(&non_zero);
        self.pod_requests.push((requested, non_zero));
        self.used_ports.extend(HostPort::for_pod(spec));
        if has_affinity(&pod) {
            self.affinity
                .push((Arc::clone(&pod), crate::affinity::terms_of(&pod)));
        }
        self.classes.push(crate::affinity::class_of(&pod));
        self.pods.push(pod);
        self.refresh_hot();
    }

    /// Remove the pod `namespace/name`; false when it is not here.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> bool {
        self.take_pod(namespace, name).is_some()
    }

    /// Remove the pod `namespace/name` and return it; None when it is not here.
    pub fn take_pod(&mut self, namespace: &str, name: &str) -> Option<Arc<v1::Pod>> {
        self.take_pod_ids(namespace, name).map(|(p, _, _)| p)
    }

    /// As [`NodeInfo::take_pod`], with the pod's class id and affinity term-set id.
    fn take_pod_ids(
        &mut self,
        namespace: &str,
        name: &str,
    ) -> Option<(Arc<v1::Pod>, u32, Option<u32>)> {
        let i = self
            .pods
            .iter()
            .position(|p| pod_namespace(p) == namespace && pod_name(p) == name)?;
        let pod = self.pods.swap_remove(i);
        let class = self.classes.swap_remove(i).id;
        let (requested, non_zero) = self.pod_requests.swap_remove(i);
        let mut terms = None;
        if has_affinity(&pod) {
            if let Some(j) = self.affinity.iter().position(|(p, _)| Arc::ptr_eq(p, &pod)) {
                terms = Some(self.affinity.swap_remove(j).1.id);
            }
        }
        let spec = pod_spec(&pod);
        self.requested.sub(&requested);
        self.non_zero_requested.sub(&non_zero);
        self.refresh_hot();
        for hp in HostPort::for_pod(spec) {
            if let Some(j) = self.used_ports.iter().position(|u| *u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        Some((pod, class, terms))
    }

    /// Put `pod`, a newer version of the pod `namespace/name` with the same labels and spec,
    /// in its place: the vectors move exactly as [`NodeInfo::take_pod`] then
    /// [`NodeInfo::add_pod`] move them (upstream's updatePod = removePod + addPod: the node's
    /// last pod takes the old one's slot and the new version goes last), without computing
    /// again what the node derives from the pod (requests, ports, label class, affinity
    /// terms), which the same labels and spec leave as they are. The old version, or None
    /// when the pod is not here.
    fn replace_pod(
        &mut self,
        namespace: &str,
        name: &str,
        pod: Arc<v1::Pod>,
    ) -> Option<Arc<v1::Pod>> {
        let i = self
            .pods
            .iter()
            .position(|p| pod_namespace(p) == namespace && pod_name(p) == name)?;
        let last = self.pods.len() - 1;
        self.pods.swap(i, last);
        self.classes.swap(i, last);
        self.pod_requests.swap(i, last);
        let old = std::mem::replace(&mut self.pods[last], Arc::clone(&pod));
        if has_affinity(&old) {
            if let Some(j) = self.affinity.iter().position(|(p, _)| Arc::ptr_eq(p, &old)) {
                let last = self.affinity.len() - 1;
                self.affinity.swap(j, last);
                self.affinity[last].0 = pod;
            }
        }
        let ports = HostPort::for_pod(pod_spec(&old));
        if !ports.is_empty() {
            for hp in &ports {
                if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                    self.used_ports.swap_remove(j);
                }
            }
            self.used_ports.extend(ports);
        }
        Some(old)
    }

    /// The pods here with pod affinity or anti-affinity of any kind.
    pub fn pods_with_affinity(&self) -> impl Iterator<Item = &Arc<v1::Pod>> {
        self.affinity.iter().map(|(p, _)| p)
    }
}

/// Every node, with an index by name, and the namespaces' labels (for affinity terms'
/// `namespaceSelector`).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pub namespace_labels: HashMap<String, BTreeMap<String, String>>,
    /// Pods with pod affinity or anti-affinity accounted through the snapshot's methods, minus
    /// those removed through them: an upper bound (a pod removed directly from a `NodeInfo`
    /// still counts), so zero means no node holds such a pod (upstream's empty
    /// `HavePodsWithAffinityList`). Add pods through [`Snapshot::add_pod`] only.
    affinity_pods: usize,
    /// Claims, volumes and classes, for VolumeBinding (None: the plugin skips).
    pub volumes: Option<crate::plugins::volume_binding::Volumes>,
    /// Which nodes carry each label (kept by the node methods below; `nodes` must change only
    /// through them).
    label_index: crate::nodeset::LabelIndex,
    /// Pods per label class and per affinity term set, by node (kept by the pod and node
    /// methods below).
    affinity_index: crate::affinity_index::AffinityIndex,
}

fn is_terminal(pod: &v1::Pod) -> bool {
    matches!(
        pod.status.as_ref().map(|s| s.phase.as_str()),
        Some("Succeeded" | "Failed")
    )
}

impl Snapshot {
    /// Nodes in the given order (the scheduler's evaluation order), and the pods bound to them
    /// (by `spec.nodeName`; pods on unknown nodes, unbound and terminal pods are skipped).
    pub fn new(
        nodes: impl IntoIterator<Item = Arc<v1::Node>>,
        pods: impl IntoIterator<Item = Arc<v1::Pod>>,
    ) -> Snapshot {
        let mut s = Snapshot::default();
        for n in nodes {
            s.upsert_node(n);
        }
        for p in pods {
            s.add_pod(p);
        }
        s
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, node: &str) -> Option<&NodeInfo> {
        self.index.get(node).map(|i| &self.nodes[*i])
    }

    /// Account a pod to the node in its `spec.nodeName`; false when unbound, terminal, or the
    /// node is unknown.
    pub fn add_pod(&mut self, pod: Arc<v1::Pod>) -> bool {
        if is_terminal(&pod) {
            return false;
        }
        let Some(&i) = self.index.get(pod_spec(&pod).node_name.as_str()) else {
            return false;
        };
        let affinity = has_affinity(&pod);
        if affinity {
            self.affinity_pods += 1;
        }
        let ni = &mut self.nodes[i];
        ni.add_pod(Arc::clone(&pod));
        let class = ni.classes.last().expect("just added");
        let terms = if affinity {
            ni.affinity.last().map(|(_, t)| t)
        } else {
            None
        };
        self.affinity_index.add(i, &pod, class, terms);
        true
    }

    /// Pods per label class and per affinity term set, by node index.
    pub fn affinity_index(&self) -> &crate::affinity_index::AffinityIndex {
        &self.affinity_index
    }

    /// False when no node holds a pod with pod affinity or anti-affinity (see the field).
    pub fn may_have_affinity_pods(&self) -> bool {
        self.affinity_pods > 0
    }

    /// Remove the pod `namespace/name` from node `i` (an index into `nodes`).
    pub fn remove_pod_at(&mut self, i: usize, namespace: &str, name: &str) -> bool {
        match self.nodes[i].take_pod_ids(namespace, name) {
            Some((p, class, terms)) => {
                if has_affinity(&p) {
                    self.affinity_pods = self.affinity_pods.saturating_sub(1);
                }
                self.affinity_index.remove(i, class, terms);
                true
            }
            None => false,
        }
    }

    /// Replace the pod `namespace/name` on node `i` by `pod`, a newer version of it with the
    /// same namespace, labels and spec (the informer's copy confirming an assumed pod, a
    /// status update): the node's pods end in the order [`Snapshot::remove_pod_at`] then
    /// [`Snapshot::add_pod`] leave them, and the label classes and affinity counts do not
    /// change. False when the pod is not on node `i`.
    pub fn replace_pod_at(
        &mut self,
        i: usize,
        namespace: &str,
        name: &str,
        pod: Arc<v1::Pod>,
    ) -> bool {
        self.nodes[i].replace_pod(namespace, name, pod).is_some()
    }

    /// The scheduler's "assume": account `pod` to `node` as if bound there.
    pub fn assume(&mut self, pod: &v1::Pod, node: &str) -> bool {
        let mut p = pod.clone();
        p.spec.get_or_insert_with(Default::default).node_name = node.to_string();
        self.add_pod(Arc::new(p))
    }

    /// Add a node, or replace the node object of a known one (keeping its pods). True when new.
    pub fn upsert_node(&mut self, node: Arc<v1::Node>) -> bool {
        let name = node_name(&node);
        if let Some(&i) = self.index.get(name) {
            let ni = &mut self.nodes[i];
            self.label_index.remove(i, &ni.label_ids);
            ni.set_node(node);
            self.label_index.add(i, &ni.label_ids);
            return false;
        }
        let i = self.nodes.len();
        self.index.insert(name.to_string(), i);
        let ni = NodeInfo::new(node);
        self.label_index.add(i, &ni.label_ids);
        self.nodes.push(ni);
        true
    }

    /// Which nodes carry each label.
    pub fn label_index(&self) -> &crate::nodeset::LabelIndex {
        &self.label_index
    }

    /// Remove a node; returns its NodeInfo (with the pods that were on it).
    pub fn remove_node(&mut self, name: &str) -> Option<NodeInfo> {
        let i = self.index.remove(name)?;
        let ni = self.nodes.swap_remove(i);
        self.label_index.remove(i, &ni.label_ids);
        self.affinity_pods = self.affinity_pods.saturating_sub(ni.affinity.len());
        for c in &ni.classes {
            self.affinity_index.remove_class(i, c.id);
        }
        for (_, t) in &ni.affinity {
            self.affinity_index.remove_terms(i, t.id);
        }
        if i < self.nodes.len() {
            let moved = self.nodes[i].name().to_string();
            self.index.insert(moved, i);
            self.label_index
                .moved(self.nodes.len(), i, &self.nodes[i].label_ids);
            let m = &self.nodes[i];
            self.affinity_index.moved(
                self.nodes.len(),
                i,
                m.classes.iter().map(|c| c.id),
                m.affinity.iter().map(|(_, t)| t.id),
            );
        }
        Some(ni)
    }

    /// The node's index in `nodes`.
    pub fn index_of(&self, node: &str) -> Option<usize> {
        self.index.get(node).copied()
    }

    /// Remove a pod from the node in its `spec.nodeName` (undo an assume, or a deletion).
    pub fn remove_pod(&mut self, pod: &v1::Pod) -> bool {
        let Some(&i) = self.index.get(pod_spec(pod).node_name.as_str()) else {
            return false;
        };
        self.remove_pod_at(i, pod_namespace(pod), pod_name(pod))
    }
}
