//! The agent proper: node registration, Lease heartbeats, node status, one pod worker per pod
//! bound to the node, status writes, graceful deletion, usage sampling.
//!
//! A [`Host`] runs one or many nodes in one process (`coxswain up --nodes N`,
//! `coxswain agent --sim-nodes 1000`) over one shared pod informer.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::time::now_rfc3339;
use coxswain_api::v1::{
    Condition, DaemonEndpoint, Lease, LeaseSpec, Node, NodeAddress, NodeDaemonEndpoints, NodeSpec,
    NodeStatus, NodeSystemInfo, ObjectMeta, OwnerReference, Pod, PodStatus, Taint,
};
use coxswain_client::{Cache, Client, DeleteParams, Event, Informer, ObjectRef, Recorder};
use tokio::sync::mpsc;

use crate::cell;

use crate::pod::{self, Instances, NodeCtx, PodSink};
use crate::runtime::{MetaMap, PodInfo, Runtime, Usage};
use crate::status::PackedStatus;
use crate::writer::{digest, StatusQueue, WriterState, OWN_CONDITIONS};

mod access;
mod admission;
mod host;
mod node;
mod objects;
mod stored;
mod usage;

pub use access::LogTarget;
pub use host::Host;
use objects::StoreObjects;
pub use usage::{ContainerUsage, NodeUsage, PodUsage};

/// Annotation on the Node naming the agent's gRPC endpoint (NodeAgent service).
pub const ENDPOINT_ANNOTATION: &str = "coxswain.io/agent-endpoint";

/// One node's settings.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// capacity (cpu, memory, pods, ephemeral-storage); allocatable is the same.
    pub capacity: BTreeMap<String, String>,
    pub lease_duration_seconds: i32,
    pub lease_renew_interval: Duration,
    /// How often the node status is checked and written when it changed.
    pub status_update_frequency: Duration,
    /// How often the node status is written even when unchanged.
    pub status_report_frequency: Duration,
    pub metrics_resolution: Duration,
    /// First address of the node's /24 pod range inside 127.0.0.0/8 (x.y.z.0).
    pub pod_range: Ipv4Addr,
    /// The URL coxctl uses to reach this node's NodeAgent service.
    pub endpoint: String,
    /// Record events (sim benchmarks turn them off).
    pub events: bool,
}

impl NodeConfig {
    pub fn new(name: &str) -> NodeConfig {
        NodeConfig {
            name: name.into(),
            labels: BTreeMap::new(),
            taints: vec![],
            capacity: [
                ("cpu", "4"),
                ("memory", "8Gi"),
                ("pods", "110"),
                ("ephemeral-storage", "100Gi"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            lease_duration_seconds: 40,
            lease_renew_interval: Duration::from_secs(10),
            status_update_frequency: Duration::from_secs(10),
            status_report_frequency: Duration::from_secs(300),
            metrics_resolution: Duration::from_secs(15),
            pod_range: default_pod_range(name),
            endpoint: String::new(),
            events: true,
        }
    }

    pub fn internal_ip(&self) -> Ipv4Addr {
        let o = self.pod_range.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 1)
    }
}

/// The /24 pod range of a node: `nodeN` → 127.(1 + N/256).(N%256).0; other names hash into
/// 127.200.0.0–127.254.255.0.
pub fn default_pod_range(name: &str) -> Ipv4Addr {
    let digits: String = name
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if let Ok(n) = digits.parse::<u32>() {
        if n < 256 * 190 {
            return Ipv4Addr::new(127, (1 + n / 256) as u8, (n % 256) as u8, 0);
        }
    }
    let h = name
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    Ipv4Addr::new(127, 200 + (h % 55) as u8, ((h >> 8) % 256) as u8, 0)
}

struct Worker {
    /// The latest version of the pod, shared with the informer's cache and the pod's task.
    pod: Arc<Pod>,
    /// What the runtime knows of the pod, shared with the pod's task (which replaces it once
    /// its claims are mounted). Its labels and annotations are read from `latest`'s pod.
    info: Arc<PodInfo>,
    term: cell::Sender<Option<Duration>>,
    status: cell::Sender<Option<PackedStatus>>,
    instances: Arc<Mutex<Instances>>,
    sync: Arc<WriterState>,
    /// The latest pod object, for in-place image changes.
    latest: cell::Sender<Arc<Pod>>,
}

impl Worker {
    /// The pod's status as its task last published it (empty before the first).
    fn status(&self) -> PodStatus {
        self.status
            .borrow()
            .as_ref()
            .map(PackedStatus::unpack)
            .unwrap_or_default()
    }

    /// Its phase alone, read without decoding the rest.
    fn phase(&self) -> String {
        self.status
            .borrow()
            .as_ref()
            .map(PackedStatus::phase)
            .unwrap_or_default()
    }
}

/// Sends pod status to the node's status writer and events to the recorder.
struct Sink {
    writer: Arc<StatusQueue>,
    recorder: Option<Recorder>,
}

impl PodSink for Sink {
    fn status(&self, pod: &Pod, status: PackedStatus) {
        let uid = pod.metadata.as_ref().map(|m| m.uid.as_str()).unwrap_or("");
        self.writer.set(uid, status);
    }

    fn event(&self, pod: &Pod, field_path: &str, warning: bool, reason: &str, message: String) {
        if let Some(r) = &self.recorder {
            let o = ObjectRef::from_resource(pod).with_field_path(field_path);
            if warning {
                r.warning(&o, reason, message);
            } else {
                r.normal(&o, reason, message);
            }
        }
    }
}

/// One node: registration, heartbeats, pod workers.
pub struct NodeAgent<R: Runtime> {
    pub config: NodeConfig,
    client: Client,
    ctx: Arc<NodeCtx<R>>,
    sink: Arc<Sink>,
    workers: Mutex<HashMap<String, Worker>>,
    /// Pods (by UID) whose object this agent removed, or is removing, until the informer sees
    /// them go: as the kubelet's pod workers remember a terminated pod until its config source
    /// drops it, a later update of the pod (its final status coming back) is not taken for a
    /// pod to delete again.
    removed: Mutex<HashSet<String>>,
    /// ns/name → uid
    names: Mutex<HashMap<String, String>>,
    ips: Mutex<[bool; 256]>,
    usage: Mutex<HashMap<String, PodUsage>>,
    node_uid: Mutex<String>,
    last_samples: Mutex<HashMap<String, (tokio::time::Instant, Usage)>>,
    /// The node's own last sample (runtimes whose nodes are real machines).
    node_usage: Mutex<Option<(tokio::time::Instant, NodeUsage)>>,
    /// The host's Node informer: the node status check reads the node from it, as the
    /// kubelet's from its node lister, instead of a GET every status_update_frequency.
    node_cache: std::sync::OnceLock<Cache<Node>>,
}

impl<R: Runtime> NodeAgent<R> {
    pub fn new(
        config: NodeConfig,
        client: Client,
        runtime: Arc<R>,
        pod_config: pod::Config,
    ) -> Arc<NodeAgent<R>> {
        let recorder = config
            .events
            .then(|| Recorder::new(client.clone(), "kubelet", &config.name));
        let sink = Arc::new(Sink {
            writer: Default::default(),
            recorder,
        });
        let ctx = Arc::new(NodeCtx {
            runtime,
            config: pod_config,
            sink: sink.clone(),
            objects: Some(Arc::new(StoreObjects {
                client: client.clone(),
                tokens: Default::default(),
            })),
            images: Mutex::new(Default::default()),
        });
        let mut ips = [false; 256];
        ips[0] = true;
        ips[1] = true;
        ips[255] = true;
        Arc::new(NodeAgent {
            config,
            client,
            ctx,
            sink,
            workers: Mutex::new(HashMap::new()),
            removed: Mutex::new(HashSet::new()),
            names: Mutex::new(HashMap::new()),
            ips: Mutex::new(ips),
            usage: Mutex::new(HashMap::new()),
            node_uid: Mutex::new(String::new()),
            last_samples: Mutex::new(HashMap::new()),
            node_usage: Mutex::new(None),
            node_cache: std::sync::OnceLock::new(),
        })
    }

    pub fn runtime(&self) -> &Arc<R> {
        &self.ctx.runtime
    }

    fn allocate_ip(&self, preferred: &str) -> Option<Ipv4Addr> {
        let base = self.config.pod_range.octets();
        let mut ips = self.ips.lock().ok()?;
        if let Ok(p) = preferred.parse::<Ipv4Addr>() {
            let o = p.octets();
            if o[..3] == base[..3] && !ips[o[3] as usize] {
                ips[o[3] as usize] = true;
                return Some(p);
            }
        }
        let i = ips.iter().position(|used| !used)?;
        ips[i] = true;
        Some(Ipv4Addr::new(base[0], base[1], base[2], i as u8))
    }

    fn release_ip(&self, ip: Ipv4Addr) {
        let base = self.config.pod_range.octets();
        let o = ip.octets();
        if o[..3] == base[..3] && o[3] > 1 && o[3] < 255 {
            if let Ok(mut ips) = self.ips.lock() {
                ips[o[3] as usize] = false;
            }
        }
    }

    /// Reacts to a pod bound to this node (added, changed or deleted).
    pub fn handle(self: &Arc<Self>, pod: Arc<Pod>, deleted: bool) {
        let meta = pod.metadata.clone().unwrap_or_default();
        let uid = meta.uid.clone();
        let key = format!("{}/{}", meta.namespace, meta.name);
        if deleted {
            let w = self.workers.lock().ok().and_then(|mut w| w.remove(&uid));
            if let Some(w) = w {
                // Gone from the store: nothing more is written for it.
                self.sink.writer.deleted(&uid);
                w.term.send_replace(Some(Duration::ZERO));
            }
            if let Ok(mut r) = self.removed.lock() {
                r.remove(&uid);
            }
            return;
        }
        if !meta.deletion_timestamp.is_empty() {
            let has_worker = self
                .workers
                .lock()
                .map(|w| {
                    if let Some(w) = w.get(&uid) {
                        if w.term.borrow().is_none() {
                            let grace = self
                                .ctx
                                .config
                                .secs(meta.deletion_grace_period_seconds.unwrap_or(30) as i64);
                            w.term.send_replace(Some(grace));
                        }
                        true
                    } else {
                        false
                    }
                })
                .unwrap_or(false);
            // Nothing runs here (an agent restart, or a pod that never started): finish the
            // deletion, once (not again for an update that comes back before its removal).
            let first = !has_worker && self.removed.lock().is_ok_and(|mut r| r.insert(uid.clone()));
            if first {
                let this = self.clone();
                tokio::spawn(async move {
                    this.ctx.runtime.remove_pod(&uid);
                    if !this.delete_now(&meta.namespace, &meta.name, &uid).await {
                        // Not removed: a later update of the pod tries again.
                        if let Ok(mut r) = this.removed.lock() {
                            r.remove(&uid);
                        }
                    }
                });
            }
            return;
        }
        let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
        if let Ok(mut w) = self.workers.lock() {
            if let Some(w) = w.get_mut(&uid) {
                // Every new version goes to the worker (in-place image changes), and replaces
                // the one it had: the pod is held once, shared with the informer's cache.
                if !Arc::ptr_eq(&w.pod, &pod) {
                    w.pod = pod.clone();
                    w.latest.send_replace(pod.clone());
                }
                // A pod whose worker already ran when the informer took it in was checked
                // and trimmed there (`trim`); one that came in just before has its status.
                if let Some(stored) = pod.status.as_ref() {
                    self.check_stored_status(&uid, &w.sync, stored);
                }
                return;
            }
        }
        if phase == "Succeeded" || phase == "Failed" {
            return;
        }
        if let Some((reason, message)) = self.admit(&pod) {
            // Kubelet admission: the pod fails here and never runs.
            tracing::info!(node = %self.config.name, pod = %key, %reason, "pod rejected");
            let this = self.clone();
            tokio::spawn(async move {
                let mut p = Pod {
                    metadata: Some(ObjectMeta {
                        name: meta.name.clone(),
                        namespace: meta.namespace.clone(),
                        uid: meta.uid.clone(),
                        ..Default::default()
                    }),
                    status: pod.status.clone(),
                    ..Default::default()
                };
                let st = p.status.get_or_insert_with(Default::default);
                st.phase = "Failed".into();
                st.reason = reason.clone();
                st.message = message.clone();
                if let Err(e) = this.client.update_status(&p).await {
                    tracing::warn!(pod = %meta.name, error = %e, "writing the rejection failed");
                }
                this.sink.event(&pod, "", true, &reason, message);
            });
            return;
        }
        let preferred = pod
            .status
            .as_ref()
            .map(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        // hostNetwork pods use the node's address and take none from the pod range.
        let ip = if spec.host_network {
            self.config.internal_ip()
        } else if let Some(ip) = self.allocate_ip(&preferred) {
            ip
        } else {
            tracing::warn!(node = %self.config.name, pod = %key, "no free pod IP in the node's range");
            return;
        };
        let (latest_tx, latest_rx) = cell::channel(pod.clone());
        let info = Arc::new(PodInfo {
            uid: uid.clone(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
            node_name: self.config.name.clone(),
            ip,
            host_ip: self.config.internal_ip().to_string(),
            annotations: MetaMap::annotations(latest_rx.clone()),
            labels: MetaMap::labels(latest_rx.clone()),
            service_account: spec.service_account_name.clone(),
            volumes: spec.volumes.clone(),
            security_context: spec.security_context.clone(),
        });
        let (term_tx, term_rx) = cell::channel(None);
        let (status_tx, _) = cell::channel(None);
        let instances = Arc::new(Mutex::new(Instances::default()));
        let sync = Arc::new(WriterState::default());
        if let (Some(st), Ok(mut f)) = (pod.status.as_ref(), sync.foreign.lock()) {
            *f = st
                .conditions
                .iter()
                .filter(|c| !OWN_CONDITIONS.contains(&c.r#type.as_str()))
                .cloned()
                .collect();
        }
        self.sink
            .writer
            .add(&uid, &key, status_tx.clone(), sync.clone());
        self.sink.writer.start(&self.client);
        if let Ok(mut w) = self.workers.lock() {
            w.insert(
                uid.clone(),
                Worker {
                    pod: pod.clone(),
                    info: info.clone(),
                    term: term_tx,
                    status: status_tx,
                    instances: instances.clone(),
                    sync: sync.clone(),
                    latest: latest_tx,
                },
            );
        }
        if let Ok(mut n) = self.names.lock() {
            n.insert(key, uid.clone());
        }
        let this = self.clone();
        // The task keeps the pod's namespace and name, not a copy of its metadata.
        let (namespace, name) = (meta.namespace, meta.name);
        tokio::spawn(async move {
            // Claims are mounted on a copy, which then replaces the worker's: the pod's info is
            // held once. The gRPC calls before and after the pod's life are boxed, so the
            // task's idle size is the worker's alone.
            let info = if info
                .volumes
                .iter()
                .any(|v| v.persistent_volume_claim.is_some())
            {
                let mut mounted = PodInfo::clone(&info);
                Box::pin(crate::volumes::mount_claims(
                    &this.client,
                    &mut mounted,
                    Duration::from_secs(30),
                ))
                .await;
                let mounted = Arc::new(mounted);
                if let Ok(mut w) = this.workers.lock() {
                    if let Some(w) = w.get_mut(&uid) {
                        w.info = mounted.clone();
                    }
                }
                mounted
            } else {
                info
            };
            pod::run_pod(this.ctx.clone(), pod, info, instances, latest_rx, term_rx).await;
            // Containers are stopped. As the kubelet's status manager: the final status is
            // written first, then the pod object is removed (grace 0), then the pod forgotten.
            // A pod the informer saw deleted meanwhile is neither written nor deleted again.
            this.sink.writer.flushed(&uid).await;
            let still_ours = this
                .workers
                .lock()
                .map(|w| w.contains_key(&uid))
                .unwrap_or(false);
            let removed = still_ours && Box::pin(this.delete_now(&namespace, &name, &uid)).await;
            this.forget(&uid, &format!("{namespace}/{name}"), ip, removed);
        });
    }

    /// Drops a pod whose worker ended; `removed`: this agent removed its object, so it is
    /// remembered until the informer sees it go (unless that was seen already).
    fn forget(&self, uid: &str, key: &str, ip: Ipv4Addr, removed: bool) {
        if let Ok(mut w) = self.workers.lock() {
            // Under the workers' lock: the informer's deletion removes the worker under it, so
            // a worker still here means the deletion is yet to come, and will clear the mark.
            if w.remove(uid).is_some() && removed {
                if let Ok(mut r) = self.removed.lock() {
                    r.insert(uid.to_string());
                }
            }
        }
        self.sink.writer.remove(uid);
        if let Ok(mut n) = self.names.lock() {
            if n.get(key).is_some_and(|u| u == uid) {
                n.remove(key);
            }
        }
        if let Ok(mut u) = self.usage.lock() {
            u.remove(uid);
        }
        self.release_ip(ip);
    }

    /// Removes the pod object (grace 0, its UID as precondition); false when that failed
    /// (the pod may still be there).
    async fn delete_now(&self, namespace: &str, name: &str, uid: &str) -> bool {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            precondition_uid: Some(uid.to_string()),
            ..Default::default()
        };
        for attempt in 0..5u32 {
            match self.client.delete::<Pod>(namespace, name, &dp).await {
                Ok(()) => return true,
                Err(e) if e.is_not_found() || e.is_conflict() => return true,
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "deleting the pod failed");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        false
    }

    pub fn pod_count(&self) -> usize {
        self.workers.lock().map(|w| w.len()).unwrap_or(0)
    }
}
