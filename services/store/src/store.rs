//! The store: Kubernetes API-server semantics over a backend and the watch cache.
//!
//! Writes: admission (namespace exists, defaults, validation, immutability), identity (uid,
//! generateName, creationTimestamp, generation), then one compare-and-swap transaction against
//! the object's last revision. Reads (get, list, watch) are served from the cache, which the
//! backend's change feed keeps current; a write returns once the cache has applied it, so a
//! client reads its own writes.
//!
//! This file holds the handle, its reads and the commit; the writes are in `store/`: admission,
//! create, update (and patch, bind), delete, apply, Services' allocations, watch, and the merge
//! patches.
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use coxswain_api::selector::{FieldSelector, LabelSelector};
use coxswain_api::{defaults, manifest, validation, Kind, Object};
use tokio::sync::mpsc;

use crate::alloc::{Taken, NODE_PORTS_KEY, RANGES_PREFIX, SERVICE_IPS_KEY};
use crate::backend::{Backend, BackendError, Op, Txn, TxnResult};
use crate::cache::{backend_key, Cache, EventType, Stored};
use crate::error::{resource_name, Result, StoreError};
use crate::util::random_suffix;
use coxswain_api::time::now_rfc3339;

mod admission;
mod apply;
mod create;
mod delete;
mod fresh;
mod merge;
mod paging;
mod services;
mod update;
mod watches;

use admission::*;
use delete::*;
pub use fresh::ListFreshness;
pub use merge::{merge_patch, three_way_merge};
use paging::{check_list_options, decode_continue, list_in};
use update::*;

/// Namespaces that exist from the start, as in Kubernetes.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Finalizers the garbage collector acts on.
pub const FINALIZER_ORPHAN: &str = "orphan";
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";
/// The namespace finalizer (in Namespace spec.finalizers), removed once the namespace is empty.
pub const FINALIZER_NAMESPACE: &str = "kubernetes";
/// The annotation apply keeps the last applied manifest in, as kubectl does.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Change events retained for watch resumption.
    pub watch_history: usize,
    /// Interval of BOOKMARK events on watches that ask for them.
    pub bookmark_interval: Duration,
    /// Buffered events per watch before the producer waits for the client.
    pub watch_buffer: usize,
    /// tolerationSeconds of the `node.kubernetes.io/not-ready:NoExecute` toleration added to
    /// every pod that has none (Kubernetes' DefaultTolerationSeconds admission plugin).
    pub default_not_ready_toleration_seconds: i32,
    /// The same for `node.kubernetes.io/unreachable:NoExecute`.
    pub default_unreachable_toleration_seconds: i32,
    /// How long a watch from a resourceVersion above the current revision waits for the store
    /// to reach it before it fails with "Too large resource version" (Kubernetes waits 3 s).
    pub too_large_resource_version_wait: Duration,
    /// Where Services' ClusterIPs come from (`--service-cluster-ip-range`).
    pub service_cluster_ip_range: crate::alloc::ServiceRange,
    /// The ServiceAccount admission mounts a token volume in pods (TokenRequest is served:
    /// authentication is on; [`crate::sa_admission`]).
    pub mount_service_account_tokens: bool,
    /// How long the namespace deleter waits after it saw a namespace terminating before it
    /// lists and deletes the content (upstream's namespace controller waits 5 s,
    /// `namespaceDeletionGracePeriod`): every replica's admission sees the mark meanwhile,
    /// and creates admitted before it land, so none is left behind.
    pub namespace_deletion_grace: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            watch_history: 100_000,
            bookmark_interval: Duration::from_secs(10),
            watch_buffer: 1024,
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
            too_large_resource_version_wait: Duration::from_secs(3),
            namespace_deletion_grace: Duration::from_secs(5),
            service_cluster_ip_range: crate::alloc::ServiceRange::DEFAULT,
            mount_service_account_tokens: false,
        }
    }
}

/// How a deletion treats the object's dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn parse(s: &str) -> Result<Propagation> {
        match s {
            "" | "Background" | "background" => Ok(Propagation::Background),
            "Foreground" | "foreground" => Ok(Propagation::Foreground),
            "Orphan" | "orphan" => Ok(Propagation::Orphan),
            other => Err(StoreError::BadRequest(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Propagation,
    /// For pods bound to a node: how long the node agent has to stop the pod (None: the pod's
    /// terminationGracePeriodSeconds). 0 removes the pod at once.
    pub grace_period_seconds: Option<i32>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// 0: everything.
    pub limit: usize,
    pub continue_token: Option<String>,
}

pub struct ListResult {
    pub items: Vec<Arc<Stored>>,
    pub revision: i64,
    pub continue_token: Option<String>,
    pub remaining: i64,
}

#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    pub kind: Option<Kind>,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// None: first an ADDED event for every matching object, then changes.
    pub resource_version: Option<i64>,
    pub bookmarks: bool,
}

/// One event delivered to a watcher.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    Change { typ: EventType, object: Arc<Stored> },
    Bookmark { kind: Option<Kind>, revision: i64 },
}

/// The outcome of applying one manifest document.
#[derive(Debug, Clone)]
pub struct Applied {
    pub object: Object,
    /// "created", "configured" or "unchanged".
    pub action: &'static str,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Held from allocating a Service's ClusterIP/NodePorts until its write commits, so this
    /// replica's own Service writes do not race each other on the bitmaps (the bitmaps' CAS
    /// keeps replicas apart).
    service_lock: tokio::sync::Mutex<()>,
    backend: Arc<dyn Backend>,
    cache: RwLock<Cache>,
    /// The revision the cache has applied, for whoever waits for one (a write for its own
    /// change, a list or watch for a revision it was asked for): only those whose revision is
    /// reached are woken.
    applied: crate::backend::revisions::Revisions,
    /// The open watches, which each applied batch is dispatched to.
    fanout: Arc<crate::fanout::Fanout>,
    config: StoreConfig,
}

impl Store {
    /// Open the store over `backend`: load everything, follow the change feed, make sure the
    /// system namespaces exist.
    pub async fn open(backend: Arc<dyn Backend>, config: StoreConfig) -> Result<Store> {
        let (snapshot, mut feed) = backend.start().await?;
        let revision = snapshot.revision;
        let cache = Cache::new(revision, snapshot.kvs, config.watch_history);
        let store = Store {
            inner: Arc::new(Inner {
                service_lock: tokio::sync::Mutex::new(()),
                backend,
                cache: RwLock::new(cache),
                applied: crate::backend::revisions::Revisions::new(revision),
                fanout: Arc::new(crate::fanout::Fanout::new(revision)),
                config,
            }),
        };
        store.publish_gauges();
        let weak = Arc::downgrade(&store.inner);
        tokio::spawn(async move {
            // The gauges' handles, resolved once (not a registry lookup per change).
            let objects: std::collections::HashMap<Kind, metrics::Gauge> = Kind::ALL
                .iter()
                .map(|k| {
                    (
                        *k,
                        metrics::gauge!("apiserver_storage_objects", "resource" => k.plural()),
                    )
                })
                .collect();
            let revision = metrics::gauge!("coxswain_store_revision");
            let mut events = Vec::new();
            while let Some(batch) = feed.recv().await {
                let Some(inner) = weak.upgrade() else { break };
                let rev = {
                    let mut c = inner.cache.write().unwrap_or_else(|p| p.into_inner());
                    events.clear();
                    for change in batch {
                        if let Some(ev) = c.apply(change) {
                            if let Some(g) = objects.get(&ev.object.kind) {
                                g.set(c.count(ev.object.kind) as f64);
                            }
                            events.push(ev);
                        }
                    }
                    let rev = c.revision;
                    // The watches' registry is taken before the cache is let go: a watch
                    // registering now has read the history up to this batch or gets it here.
                    let mut watches = inner.fanout.lock();
                    drop(c);
                    watches.dispatch(&events, rev);
                    rev
                };
                events.clear();
                revision.set(rev as f64);
                inner.applied.advance(rev);
            }
        });
        for ns in SYSTEM_NAMESPACES {
            if store.get(Kind::Namespace, "", ns).is_err() {
                let mut o = Kind::Namespace.empty();
                o.meta_mut().name = ns.to_string();
                match store.create(o, false).await {
                    Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(store)
    }

    fn publish_gauges(&self) {
        let c = self.cache();
        for k in Kind::ALL {
            metrics::gauge!("apiserver_storage_objects", "resource" => k.plural())
                .set(c.count(*k) as f64);
        }
        metrics::gauge!("coxswain_store_revision").set(c.revision as f64);
    }

    /// Every cached object of a kind: `Arc` clones under the cache's read lock, nothing decoded
    /// (the object-state metrics read this at scrape time).
    pub fn cached(&self, kind: Kind) -> Vec<Arc<crate::cache::Stored>> {
        self.cache().range(kind, None, None).cloned().collect()
    }

    pub fn backend_name(&self) -> &'static str {
        self.inner.backend.name()
    }

    pub(crate) fn cache(&self) -> RwLockReadGuard<'_, Cache> {
        self.inner.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn fanout(&self) -> &Arc<crate::fanout::Fanout> {
        &self.inner.fanout
    }

    pub(crate) fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    fn cache_mut(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.inner.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The revision of the last change the cache has applied.
    pub fn revision(&self) -> i64 {
        self.cache().revision
    }

    /// Wait until the cache has applied `revision`.
    async fn caught_up(&self, revision: i64) {
        self.inner.applied.wait_for(revision).await;
    }

    async fn commit(&self, txn: Txn) -> Result<TxnResult> {
        // A request carrying an x-request-id: the change of each key this txn writes over the
        // revision it compares against is stamped with the id, for the watchers.
        let traced = coxswain_telemetry::grpc::current_request_id().map(|id| {
            let keys: Vec<String> = txn.compares.iter().map(|(k, _)| k.clone()).collect();
            let mut c = self.inner.cache.write().unwrap_or_else(|p| p.into_inner());
            for (k, prev) in &txn.compares {
                c.expect_request_id(k, *prev, &id);
            }
            (id, keys)
        });
        let r = self.inner.backend.txn(txn).await;
        if let Ok(r) = &r {
            match r {
                TxnResult::Committed { revision } => self.caught_up(*revision).await,
                // A lost race: let the cache see the write that won, so a retry reads it
                // rather than the same stale object again.
                TxnResult::Conflict { mod_revision, .. } => self.caught_up(*mod_revision).await,
            }
        }
        if let Some((id, keys)) = traced {
            let mut c = self.inner.cache.write().unwrap_or_else(|p| p.into_inner());
            for k in &keys {
                c.forget_request_id(k, &id);
            }
        }
        Ok(r?)
    }

    // === reads ===

    pub fn get_stored(&self, kind: Kind, namespace: &str, name: &str) -> Result<Arc<Stored>> {
        self.cache()
            .get(kind, ns_for(kind, namespace), name)
            .ok_or_else(|| StoreError::not_found(kind, name))
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Object> {
        Ok(self.get_stored(kind, namespace, name)?.decode())
    }

    pub fn get_by_uid(&self, uid: &str) -> Option<Arc<Stored>> {
        self.cache().get_by_uid(uid)
    }

    pub fn dependents_of(&self, uid: &str) -> Vec<Arc<Stored>> {
        self.cache().dependents_of(uid)
    }

    /// A page of `kind` from the cache as it is (a continue token's revision is not kept to:
    /// [`Store::list_fresh`] serves the API's lists).
    pub fn list(&self, kind: Kind, opts: &ListOptions) -> Result<ListResult> {
        let start = check_list_options(kind, opts)?;
        Ok(list_in(&self.cache(), kind, opts, start))
    }
}

/// Run CPU-heavy decoding (manifests, patches) on the blocking pool, at most one job per core at
/// a time, so that a large or hostile request never stalls the reactor that serves every other
/// client. Jobs are bounded by the request size and [`manifest::MAX_NESTING_DEPTH`].
pub(crate) async fn off_reactor<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    static POOL: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(tokio::sync::Semaphore::new(cores))
    });
    let permit = pool
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| StoreError::BadRequest("decoding pool closed".into()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(|e| StoreError::BadRequest(format!("decoding failed: {e}")))
}

/// How often a patch without a resourceVersion is re-applied after losing a race (each retry
/// means another write landed in between, so the loop always makes progress).
pub const PATCH_RETRIES: usize = 64;

/// Input echoed in an error message, cut as Kubernetes cuts long values.
pub fn truncate_for_message(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 256;
    if s.len() <= MAX {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!(
        "{}...(truncated {} bytes)",
        &s[..end],
        s.len() - end
    ))
}

fn ns_for(kind: Kind, namespace: &str) -> &str {
    if kind.namespaced() {
        if namespace.is_empty() {
            "default"
        } else {
            namespace
        }
    } else {
        ""
    }
}

fn kind_has_spec(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::Endpoints
            | Kind::ServiceAccount
            | Kind::ConfigMap
            | Kind::Secret
            | Kind::Event
            | Kind::ControllerRevision
    )
}
