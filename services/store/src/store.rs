//! The store: Kubernetes API-server semantics over a backend and the watch cache.
//!
//! Writes: admission (namespace exists, defaults, validation, immutability), identity (uid,
//! generateName, creationTimestamp, generation), then one compare-and-swap transaction against
//! the object's last revision. Reads (get, list, watch) are served from the cache, which the
//! backend's change feed keeps current; a write returns once the cache has applied it, so a
//! client reads its own writes.
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use coxswain_api::selector::{FieldSelector, LabelSelector};
use coxswain_api::{defaults, manifest, validation, Kind, Object};
use tokio::sync::{mpsc, watch};

use crate::alloc::{Taken, NODE_PORTS_KEY, RANGES_PREFIX, SERVICE_IPS_KEY};
use crate::backend::{Backend, BackendError, Op, Txn, TxnResult};
use crate::cache::{backend_key, map_key, Cache, EventType, Stored};
use crate::error::{resource_name, Result, StoreError};
use crate::util::random_suffix;
use coxswain_api::time::now_rfc3339;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdateMode {
    Spec,
    Status,
}

/// How many times in a row a Service write re-allocates after losing a race on the bitmaps.
const RANGE_ATTEMPTS: u32 = 64;

/// The allocators' bitmaps and their stored records (bytes, mod_revision; None: not stored).
struct Ranges {
    taken: Taken,
    ips: Option<(Bytes, i64)>,
    ports: Option<(Bytes, i64)>,
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
    revision: watch::Sender<i64>,
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
        let (rev_tx, _) = watch::channel(revision);
        let store = Store {
            inner: Arc::new(Inner {
                service_lock: tokio::sync::Mutex::new(()),
                backend,
                cache: RwLock::new(cache),
                revision: rev_tx,
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
                inner.revision.send_replace(rev);
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

    pub(crate) fn revision_rx(&self) -> watch::Receiver<i64> {
        self.inner.revision.subscribe()
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
        let mut rx = self.inner.revision.subscribe();
        // The sender lives as long as the store; wait_for only fails if it is dropped.
        let _ = rx.wait_for(|r| *r >= revision).await;
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

    pub fn list(&self, kind: Kind, opts: &ListOptions) -> Result<ListResult> {
        opts.fields
            .check_supported(kind)
            .map_err(|e| StoreError::BadRequest(e.to_string()))?;
        let after = match &opts.continue_token {
            Some(t) if !t.is_empty() => Some(decode_continue(t)?),
            _ => None,
        };
        let c = self.cache();
        let ns = opts.namespace.as_deref().filter(|n| !n.is_empty());
        let mut items = Vec::new();
        let mut remaining = 0i64;
        let mut last_key = None;
        for s in c.range(kind, ns, after.as_deref()) {
            if !s.matches(&opts.labels, &opts.fields) {
                continue;
            }
            if opts.limit > 0 && items.len() >= opts.limit {
                remaining += 1;
                continue;
            }
            last_key = Some(map_key(kind, s.namespace(), s.name()));
            items.push(s.clone());
        }
        let continue_token = (remaining > 0)
            .then(|| last_key.map(|k| encode_continue(&k)))
            .flatten();
        Ok(ListResult {
            items,
            revision: c.revision,
            continue_token,
            remaining,
        })
    }

    // === writes ===

    /// Refuse a create into a namespace that is missing or terminating. Returns the
    /// namespace's key and revision as seen here, which the create's transaction compares: it
    /// commits only if the namespace did not change since (through any store replica), so
    /// every object that lands in a namespace was created before it was marked for deletion,
    /// and the namespace deleter, having seen the mark, lists it.
    fn check_namespace(&self, obj: &Object) -> Result<Option<(String, i64)>> {
        let kind = obj.kind();
        if !kind.namespaced() {
            return Ok(None);
        }
        let ns = obj.namespace();
        let s = self.cache().get(Kind::Namespace, "", ns);
        match s {
            None => Err(StoreError::NotFound { resource: "namespaces".into(), name: ns.to_string() }),
            Some(s) if s.deleting => Err(StoreError::Forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                resource_name(kind),
                obj.name()
            ))),
            Some(s) => Ok(Some((backend_key(Kind::Namespace, "", ns), s.revision))),
        }
    }

    fn invalid(obj: &Object, errs: Vec<coxswain_api::error::FieldError>) -> StoreError {
        StoreError::Invalid {
            kind: obj.kind(),
            name: obj.name().to_string(),
            source: coxswain_api::Error::Invalid(errs),
        }
    }

    /// Defaults and validation of a new object, without side effects.
    pub fn admit_new(&self, obj: &mut Object) -> Result<()> {
        let kind = obj.kind();
        if kind.namespaced() {
            if obj.meta().namespace.is_empty() {
                obj.meta_mut().namespace = "default".into();
            }
        } else {
            obj.meta_mut().namespace.clear();
        }
        obj.set_type_meta();
        defaults::apply_defaults(obj);
        if let Object::Pod(pod) = obj {
            add_default_tolerations(
                pod,
                self.inner.config.default_not_ready_toleration_seconds,
                self.inner.config.default_unreachable_toleration_seconds,
            );
        }
        let mut errs = validation::validate(obj);
        if obj.meta().name.is_empty()
            && obj.meta().generate_name.is_empty()
            && !errs.iter().any(|e| e.path == "metadata.name")
        {
            {
                errs.insert(
                    0,
                    coxswain_api::error::FieldError::new(
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ),
                );
            }
        }
        if !errs.is_empty() {
            return Err(Self::invalid(obj, errs));
        }
        Ok(())
    }

    /// The allocators' bitmaps as this replica's cache holds them, with the mod_revisions a
    /// write of them compares against. A record that is missing (first start) or covers another
    /// range is rebuilt from the cached Services, as upstream's repair controller does; its
    /// write then compares against the revision it was read at, so only one replica's rebuild
    /// lands.
    fn service_ranges(&self) -> Ranges {
        let range = self.inner.config.service_cluster_ip_range;
        let c = self.cache();
        let ips = c.range_allocation(SERVICE_IPS_KEY);
        let ports = c.range_allocation(NODE_PORTS_KEY);
        let ips_map = Taken::decode_ips(range, ips.as_ref().map(|(b, _)| &b[..]));
        let ports_map = Taken::decode_node_ports(ports.as_ref().map(|(b, _)| &b[..]));
        let mut taken = Taken::new(range);
        if ips_map.is_none() || ports_map.is_none() {
            for s in c.range(Kind::Service, None, None) {
                if let Object::Service(svc) = s.decode() {
                    taken.add(&svc);
                }
            }
        }
        if let Some(b) = ips_map {
            taken.ips = b;
        }
        if let Some(b) = ports_map {
            taken.node_ports = b;
        }
        Ranges { taken, ips, ports }
    }

    /// Add to `txn` the bitmap writes that replacing `old` by `new` (None: absent) makes, each
    /// guarded by the revision the bitmap was read at. Nothing for bitmaps that stay the same.
    fn add_range_ops(ranges: &Ranges, txn: &mut Txn, old: Option<&Object>, new: Option<&Object>) {
        let mut t = ranges.taken.clone();
        if let Some(Object::Service(o)) = old {
            t.remove(o);
        }
        if let Some(Object::Service(n)) = new {
            t.add(n);
        }
        for (key, bytes, stored) in [
            (SERVICE_IPS_KEY, t.encode_ips(), &ranges.ips),
            (NODE_PORTS_KEY, t.encode_node_ports(), &ranges.ports),
        ] {
            if stored.as_ref().map(|(b, _)| b) != Some(&bytes) {
                txn.compares
                    .push((key.to_string(), stored.as_ref().map_or(0, |(_, r)| *r)));
                txn.ops.push(Op::Put {
                    key: key.to_string(),
                    value: bytes,
                });
            }
        }
    }

    /// Another writer (this or another replica) changed an allocator's bitmap first: allocate
    /// again from the new one, a bounded number of times.
    fn range_conflict(r: &TxnResult, attempts: &mut u32) -> Result<bool> {
        match r {
            TxnResult::Conflict { key, .. } if key.starts_with(RANGES_PREFIX) => {
                *attempts += 1;
                if *attempts > RANGE_ATTEMPTS {
                    return Err(StoreError::Backend(BackendError::Unavailable(format!(
                        "the Service address allocators changed under {RANGE_ATTEMPTS} attempts in a row; retry"
                    ))));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Give a Service its ClusterIP and NodePorts (kept from `old` on update) from the
    /// bitmaps in `ranges`.
    fn allocate_service(
        &self,
        obj: &mut Object,
        old: Option<&Object>,
        taken: &Taken,
    ) -> Result<()> {
        let name = obj.name().to_string();
        let Object::Service(svc) = obj else {
            return Ok(());
        };
        let old = match old {
            Some(Object::Service(o)) => Some(o),
            _ => None,
        };
        crate::alloc::allocate(
            svc,
            old,
            taken,
            &self.inner.config.service_cluster_ip_range,
            rand::random(),
        )
        .map_err(|errs| StoreError::Invalid {
            kind: Kind::Service,
            name,
            source: coxswain_api::Error::Invalid(errs),
        })
    }

    /// The ServiceAccount admission plugin on a new pod (mirror pods aside): no
    /// `serviceAccountName` means `default` (and the deprecated `serviceAccount` mirrors it),
    /// and a named ServiceAccount must exist, else Forbidden with upstream's message. A missing
    /// `default` is let through: the serviceaccounts controller creates it in every namespace,
    /// and a bare `coxswain store` (no controllers) still serves pods.
    fn admit_service_account(&self, obj: &mut Object) -> Result<()> {
        let Object::Pod(pod) = obj else {
            return Ok(());
        };
        // Borrowed, not cloned: a pod's metadata (labels, annotations, the last applied
        // configuration) would otherwise be copied on every pod create.
        let Some(meta) = pod.metadata.as_ref() else {
            return Ok(());
        };
        if meta.annotations.contains_key("kubernetes.io/config.mirror") {
            return Ok(());
        }
        let spec = pod.spec.get_or_insert_with(Default::default);
        if spec.service_account_name.is_empty() {
            spec.service_account_name = "default".into();
        }
        spec.service_account = spec.service_account_name.clone();
        let sa = spec.service_account_name.clone();
        let account = self.get_stored(Kind::ServiceAccount, &meta.namespace, &sa);
        if sa != "default" && account.is_err() {
            return Err(StoreError::Forbidden(format!(
                "pods \"{}\" is forbidden: error looking up service account {}/{sa}: serviceaccount \"{sa}\" not found",
                meta.name, meta.namespace
            )));
        }
        // The token volume (crate::sa_admission), unless the pod or its ServiceAccount opts out.
        if !self.config().mount_service_account_tokens {
            return Ok(());
        }
        let sa_automount = match (spec.automount_service_account_token, account) {
            (Some(_), _) | (None, Err(_)) => None,
            (None, Ok(s)) => match s.decode() {
                Object::ServiceAccount(a) => a.automount_service_account_token,
                _ => None,
            },
        };
        if crate::sa_admission::should_automount(spec.automount_service_account_token, sa_automount)
        {
            crate::sa_admission::mount_service_account_token(spec);
        }
        Ok(())
    }

    /// Create an object. `dry_run`: admit it and return what would be stored.
    pub async fn create(&self, mut obj: Object, dry_run: bool) -> Result<Object> {
        self.admit_new(&mut obj)?;
        // The namespace as seen now; the transaction compares its revision, and a retry reads
        // it again.
        let mut namespace = self.check_namespace(&obj)?;
        let mut first = true;
        self.admit_service_account(&mut obj)?;
        let kind = obj.kind();
        let generated = obj.meta().name.is_empty();
        {
            let m = obj.meta_mut();
            m.uid = uuid::Uuid::new_v4().to_string();
            m.creation_timestamp = now_rfc3339();
            m.resource_version.clear();
            m.deletion_timestamp.clear();
            m.deletion_grace_period_seconds = None;
            m.generation = if kind_has_spec(kind) { 1 } else { 0 };
        }
        prepare_for_create(&mut obj);
        let _allocating = match kind {
            Kind::Service => Some(self.inner.service_lock.lock().await),
            _ => None,
        };
        // A Service is allocated afresh from the bitmaps on every attempt.
        let template = (kind == Kind::Service).then(|| obj.clone());
        let (mut attempts, mut range_attempts, mut ns_attempts) = (0, 0, 0);
        loop {
            let ranges = match &template {
                Some(t) => {
                    obj = t.clone();
                    let r = self.service_ranges();
                    self.allocate_service(&mut obj, None, &r.taken)?;
                    Some(r)
                }
                None => None,
            };
            if generated {
                let base = obj.meta().generate_name.clone();
                obj.meta_mut().name = format!("{base}{}", random_suffix());
            }
            if dry_run {
                return Ok(obj);
            }
            if !std::mem::take(&mut first) {
                namespace = self.check_namespace(&obj)?;
            }
            let key = backend_key(kind, obj.namespace(), obj.name());
            let value = Bytes::from(obj.encode_to_vec());
            // The cache takes the entry built from `obj` rather than decoding `value` again.
            let built = Stored::prebuilt(&obj, value.clone());
            self.cache_mut().expect_built(&key, built);
            let mut txn = Txn::put_if(key.clone(), 0, value.clone());
            if let Some(r) = &ranges {
                Self::add_range_ops(r, &mut txn, None, Some(&obj));
            }
            if let Some(ns) = &namespace {
                txn.compares.push(ns.clone());
            }
            let result = self.commit(txn).await;
            self.cache_mut().forget_built(&key, &value);
            let result = result?;
            if Self::range_conflict(&result, &mut range_attempts)? {
                continue;
            }
            // The namespace changed (the cache has caught up with it): check it again.
            if let (TxnResult::Conflict { key, .. }, Some((ns_key, _))) = (&result, &namespace) {
                if key == ns_key {
                    ns_attempts += 1;
                    if ns_attempts > RANGE_ATTEMPTS {
                        return Err(StoreError::Backend(BackendError::Unavailable(format!(
                            "namespace {} changed under {RANGE_ATTEMPTS} attempts in a row; retry",
                            obj.namespace()
                        ))));
                    }
                    continue;
                }
            }
            match result {
                TxnResult::Committed { revision } => {
                    obj.meta_mut().resource_version = revision.to_string();
                    return Ok(obj);
                }
                TxnResult::Conflict { .. } if generated && attempts < 8 => attempts += 1,
                TxnResult::Conflict { .. } => {
                    return Err(StoreError::AlreadyExists {
                        resource: resource_name(kind),
                        name: obj.name().to_string(),
                    })
                }
            }
        }
    }

    /// Replace an object's spec and metadata (status is kept).
    pub async fn update(&self, obj: Object) -> Result<Object> {
        self.write(obj, UpdateMode::Spec, false).await
    }

    /// Replace an object's status (spec and metadata are kept).
    pub async fn update_status(&self, obj: Object) -> Result<Object> {
        self.write(obj, UpdateMode::Status, false).await
    }

    /// Update by re-reading and applying `f` until the write does not conflict (a
    /// "guaranteed update"). `f` returns None to leave the object as it is.
    pub async fn update_with<F>(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        status: bool,
        mut f: F,
    ) -> Result<Object>
    where
        F: FnMut(&mut Object) -> Result<Option<()>>,
    {
        loop {
            let cur = self.get_stored(kind, namespace, name)?;
            let mut obj = cur.decode();
            if f(&mut obj)?.is_none() {
                return Ok(obj);
            }
            let mode = if status {
                UpdateMode::Status
            } else {
                UpdateMode::Spec
            };
            match self.write(obj, mode, false).await {
                Err(StoreError::Conflict { .. }) => continue,
                r => return r,
            }
        }
    }

    async fn write(&self, new: Object, mode: UpdateMode, dry_run: bool) -> Result<Object> {
        let kind = new.kind();
        let namespace = ns_for(kind, new.namespace()).to_string();
        let name = new.name().to_string();
        if name.is_empty() {
            return Err(Self::invalid(
                &new,
                vec![coxswain_api::error::FieldError::new(
                    "metadata.name",
                    "Required value",
                )],
            ));
        }
        let user_rv = new.meta().resource_version.clone();
        let _allocating = match (kind, mode) {
            (Kind::Service, UpdateMode::Spec) => Some(self.inner.service_lock.lock().await),
            _ => None,
        };
        let mut range_attempts = 0;
        loop {
            let ranges =
                (kind == Kind::Service && mode == UpdateMode::Spec).then(|| self.service_ranges());
            let cur = self.get_stored(kind, &namespace, &name)?;
            let user_uid = &new.meta().uid;
            if !user_uid.is_empty() && **user_uid != *cur.uid {
                return Err(StoreError::Conflict {
                    resource: resource_name(kind),
                    name,
                    message: format!(
                        "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                        truncate_for_message(user_uid),
                        cur.uid
                    ),
                });
            }
            if !user_rv.is_empty() && user_rv != cur.revision.to_string() {
                return Err(StoreError::Conflict {
                    resource: resource_name(kind),
                    name,
                    message: format!(
                        "the object has been modified; please apply your changes to the latest version and try again (resourceVersion {user_rv} given, {} stored)",
                        cur.revision
                    ),
                });
            }
            let mut old = cur.decode();
            old.meta_mut().resource_version.clear();
            let mut next = match mode {
                UpdateMode::Spec => {
                    let mut m = new.clone();
                    m.meta_mut().namespace = namespace.clone();
                    m.set_type_meta();
                    m.copy_status_from(&old);
                    keep_system_metadata(&mut m, &old);
                    keep_admitted_priority(&mut m, &old);
                    defaults::apply_defaults(&mut m);
                    let mut errs = validation::validate(&m);
                    errs.extend(validation::validate_update(&old, &m));
                    if !errs.is_empty() {
                        return Err(Self::invalid(&m, errs));
                    }
                    if let Some(r) = &ranges {
                        self.allocate_service(&mut m, Some(&old), &r.taken)?;
                    }
                    if m.spec_bytes() != old.spec_bytes() && kind_has_spec(kind) {
                        m.meta_mut().generation = old.meta().generation + 1;
                    }
                    m
                }
                UpdateMode::Status => {
                    if !kind.has_status() {
                        return Err(StoreError::BadRequest(format!("{kind} has no status")));
                    }
                    let mut m = old.clone();
                    m.copy_status_from(&new);
                    // A pod's QoS class is the API server's (set at create): a status write that
                    // leaves it out does not clear it.
                    if let (Object::Pod(p), Object::Pod(o)) = (&mut m, &old) {
                        let kept = o.status.as_ref().map(|s| s.qos_class.clone());
                        if let (Some(st), Some(q)) = (p.status.as_mut(), kept) {
                            if st.qos_class.is_empty() {
                                st.qos_class = q;
                            }
                        }
                    }
                    m
                }
            };
            next.meta_mut().resource_version.clear();
            if next == old {
                let mut same = old;
                same.meta_mut().resource_version = cur.revision.to_string();
                return Ok(same);
            }
            if dry_run {
                return Ok(next);
            }
            let key = backend_key(kind, &namespace, &name);
            let finished = ready_to_delete(&next);
            let mut txn = if finished {
                Txn::delete_if(key, cur.revision)
            } else {
                Txn::put_if(key, cur.revision, Bytes::from(next.encode_to_vec()))
            };
            if let Some(r) = &ranges {
                Self::add_range_ops(r, &mut txn, Some(&old), (!finished).then_some(&next));
            }
            let result = self.commit(txn).await?;
            if Self::range_conflict(&result, &mut range_attempts)? {
                continue;
            }
            match result {
                TxnResult::Committed { revision } => {
                    next.meta_mut().resource_version = revision.to_string();
                    return Ok(next);
                }
                TxnResult::Conflict { .. } if user_rv.is_empty() => continue,
                TxnResult::Conflict { mod_revision, .. } => {
                    return Err(StoreError::Conflict {
                        resource: resource_name(kind),
                        name,
                        message: format!(
                            "the object has been modified; please apply your changes to the latest version and try again (resourceVersion {user_rv} given, {mod_revision} stored)"
                        ),
                    })
                }
            }
        }
    }

    /// Apply a JSON merge patch (RFC 7386) to an object, or to its status.
    ///
    /// As kube-apiserver's patch handler: the patched object must keep the name and namespace of
    /// the request (a BadRequest otherwise), a `metadata.resourceVersion` in the patch is a
    /// precondition (a Conflict when stale, never retried), and a `metadata.uid` naming another
    /// incarnation is a Conflict. Without a resourceVersion a write that lost a race is re-applied
    /// to the newer object, at most [`PATCH_RETRIES`] times, and only while the object really
    /// changed in between — a conflict that would repeat is returned, never spun on.
    pub async fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: &str,
        status: bool,
    ) -> Result<Object> {
        let text = patch.to_owned();
        let patch: serde_json::Value = off_reactor(move || {
            manifest::check_nesting(&text, manifest::MAX_NESTING_DEPTH)
                .map_err(|e| StoreError::BadRequest(format!("patch: {e}")))?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::BadRequest(format!("patch is not valid JSON: {e}")))
        })
        .await??;
        let patch = Arc::new(patch);
        if !patch.is_object() {
            return Err(StoreError::BadRequest(
                "a merge patch must be a JSON object".into(),
            ));
        }
        // A resourceVersion in the patch is a precondition (null: none, as upstream).
        let precondition_rv = match patch.pointer("/metadata/resourceVersion") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(rv)) if !rv.is_empty() => Some(rv.clone()),
            Some(serde_json::Value::String(_)) => None,
            Some(v) => {
                return Err(StoreError::BadRequest(format!(
                    "metadata.resourceVersion: Invalid value: {v}: must be a string"
                )))
            }
        };
        let want_namespace = ns_for(kind, namespace);
        let mut attempts = 0;
        loop {
            let cur = self.get_stored(kind, namespace, name)?;
            let (stored, merge, owned_name) = (cur.clone(), patch.clone(), name.to_string());
            let mut patched = off_reactor(move || {
                let mut json = stored.decode().to_json_value();
                merge_patch(&mut json, &merge);
                kind.from_json_value(json).map_err(|e| StoreError::Invalid {
                    kind,
                    name: owned_name,
                    source: manifest::path_error(&e),
                })
            })
            .await??;
            if patched.name() != name {
                return Err(StoreError::BadRequest(format!(
                    "metadata.name: the name of the object ({}) does not match the name on the URL ({name})",
                    truncate_for_message(patched.name())
                )));
            }
            if ns_for(kind, patched.namespace()) != want_namespace {
                return Err(StoreError::BadRequest(format!(
                    "metadata.namespace: the namespace of the object ({}) does not match the namespace on the URL ({want_namespace})",
                    truncate_for_message(patched.namespace())
                )));
            }
            patched.meta_mut().resource_version = precondition_rv
                .clone()
                .unwrap_or_else(|| cur.revision.to_string());
            let mode = if status {
                UpdateMode::Status
            } else {
                UpdateMode::Spec
            };
            match self.write(patched, mode, false).await {
                Err(e @ StoreError::Conflict { .. }) if precondition_rv.is_none() => {
                    attempts += 1;
                    let changed = self
                        .get_stored(kind, namespace, name)
                        .is_ok_and(|now| now.revision != cur.revision);
                    if !changed || attempts >= PATCH_RETRIES {
                        return Err(e);
                    }
                }
                r => return r,
            }
        }
    }

    /// Delete an object. With finalizers (or a propagation policy that needs the garbage
    /// collector) the object gets a deletionTimestamp and stays until they are removed.
    /// Returns the object as it was deleted or marked.
    pub async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Object> {
        let namespace = ns_for(kind, namespace);
        if kind == Kind::Namespace && SYSTEM_NAMESPACES.contains(&name) && name != "kube-node-lease"
        {
            return Err(StoreError::Forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let _allocating = match kind {
            Kind::Service => Some(self.inner.service_lock.lock().await),
            _ => None,
        };
        loop {
            let cur = self.get_stored(kind, namespace, name)?;
            if let Some(uid) = &opts.precondition_uid {
                if !uid.is_empty() && *uid != *cur.uid {
                    return Err(StoreError::Conflict {
                        resource: resource_name(kind),
                        name: name.to_string(),
                        message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", cur.uid),
                    });
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                if !rv.is_empty() && *rv != cur.revision.to_string() {
                    return Err(StoreError::Conflict {
                        resource: resource_name(kind),
                        name: name.to_string(),
                        message: format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            cur.revision
                        ),
                    });
                }
            }
            let mut obj = cur.decode();
            obj.meta_mut().resource_version.clear();
            let before = obj.clone();
            let finalizer = match opts.propagation {
                Propagation::Orphan => Some(FINALIZER_ORPHAN),
                Propagation::Foreground => Some(FINALIZER_FOREGROUND),
                Propagation::Background => None,
            };
            if let Some(f) = finalizer {
                // The last policy asked for wins, as in Kubernetes.
                let fins = &mut obj.meta_mut().finalizers;
                fins.retain(|x| x != FINALIZER_ORPHAN && x != FINALIZER_FOREGROUND);
                fins.push(f.to_string());
            }
            // Graceful deletion: a pod that may be running on a node stays, marked, until the
            // node's agent has stopped it and deletes it with grace 0.
            let grace = match &obj {
                Object::Pod(p) => self.pod_grace_period(p, opts.grace_period_seconds),
                _ => 0,
            };
            let shorter = obj
                .meta()
                .deletion_grace_period_seconds
                .is_some_and(|g| grace < g);
            if grace > 0 && (obj.meta().deletion_timestamp.is_empty() || shorter) {
                let now = coxswain_api::time::now_secs();
                obj.meta_mut().deletion_timestamp =
                    coxswain_api::time::format_rfc3339(now + i64::from(grace));
                obj.meta_mut().deletion_grace_period_seconds = Some(grace);
            } else if grace == 0
                && matches!(obj, Object::Pod(_))
                && obj
                    .meta()
                    .deletion_grace_period_seconds
                    .is_some_and(|g| g > 0)
            {
                obj.meta_mut().deletion_grace_period_seconds = Some(0);
            }
            if obj.meta().deletion_timestamp.is_empty() {
                obj.meta_mut().deletion_timestamp = now_rfc3339();
                obj.meta_mut().deletion_grace_period_seconds = Some(0);
                if let Object::Namespace(n) = &mut obj {
                    n.status.get_or_insert_with(Default::default).phase = "Terminating".into();
                    // A namespace always goes through the namespace deleter, which empties it
                    // and then removes this finalizer.
                    let spec = n.spec.get_or_insert_with(Default::default);
                    if !spec.finalizers.iter().any(|f| f == FINALIZER_NAMESPACE) {
                        spec.finalizers.push(FINALIZER_NAMESPACE.into());
                    }
                }
            }
            let key = backend_key(kind, namespace, name);
            let txn = if ready_to_delete(&obj) {
                // A Service frees its ClusterIP and NodePorts in the same transaction.
                let mut txn = Txn::delete_if(key, cur.revision);
                if kind == Kind::Service {
                    Self::add_range_ops(&self.service_ranges(), &mut txn, Some(&before), None);
                }
                txn
            } else if obj == before {
                // Already being deleted the same way.
                let mut o = obj;
                o.meta_mut().resource_version = cur.revision.to_string();
                return Ok(o);
            } else {
                Txn::put_if(key, cur.revision, Bytes::from(obj.encode_to_vec()))
            };
            match self.commit(txn).await? {
                TxnResult::Committed { revision } => {
                    obj.meta_mut().resource_version = revision.to_string();
                    return Ok(obj);
                }
                TxnResult::Conflict { .. } => continue,
            }
        }
    }

    /// The grace period a pod deletion gets: 0 (remove at once) for a pod no agent runs — not
    /// bound, bound to a node that does not exist (as Kubernetes' pod GC force-deletes such
    /// orphans), or already finished — else the requested period or the pod's
    /// terminationGracePeriodSeconds (default 30).
    fn pod_grace_period(&self, pod: &coxswain_api::v1::Pod, requested: Option<i32>) -> i32 {
        let spec = pod.spec.as_ref();
        let node = spec.map(|s| s.node_name.as_str()).unwrap_or("");
        let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
        if node.is_empty()
            || matches!(phase, "Succeeded" | "Failed")
            || self.get_stored(Kind::Node, "", node).is_err()
        {
            return 0;
        }
        requested
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30)
            .max(0)
    }

    /// The pods/binding subresource: assign an unbound pod to `node` and mark it scheduled.
    pub async fn bind(&self, namespace: &str, name: &str, uid: &str, node: &str) -> Result<Object> {
        if node.is_empty() {
            return Err(StoreError::BadRequest(
                "target.name: Required value: the node to bind to".into(),
            ));
        }
        loop {
            let cur = self.get_stored(Kind::Pod, namespace, name)?;
            let Object::Pod(mut pod) = cur.decode() else {
                return Err(StoreError::BadRequest(format!("{name} is not a pod")));
            };
            let conflict = |message: String| StoreError::Conflict {
                resource: resource_name(Kind::Pod),
                name: name.to_string(),
                message,
            };
            let meta = pod.metadata.get_or_insert_with(Default::default);
            if !uid.is_empty() && meta.uid != uid {
                return Err(conflict(format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta.uid
                )));
            }
            if !meta.deletion_timestamp.is_empty() {
                return Err(conflict(format!(
                    "pod {name} is being deleted, cannot be assigned to a host"
                )));
            }
            meta.resource_version.clear();
            let spec = pod.spec.get_or_insert_with(Default::default);
            if !spec.node_name.is_empty() {
                return Err(conflict(format!(
                    "pod {name} is already assigned to node \"{}\"",
                    spec.node_name
                )));
            }
            spec.node_name = node.to_string();
            let status = pod.status.get_or_insert_with(Default::default);
            let now = now_rfc3339();
            status.conditions.retain(|c| c.r#type != "PodScheduled");
            status.conditions.push(coxswain_api::v1::Condition {
                r#type: "PodScheduled".into(),
                status: "True".into(),
                last_transition_time: now,
                ..Default::default()
            });
            let mut obj = Object::Pod(pod);
            let key = backend_key(Kind::Pod, namespace, name);
            match self
                .commit(Txn::put_if(
                    key,
                    cur.revision,
                    Bytes::from(obj.encode_to_vec()),
                ))
                .await?
            {
                TxnResult::Committed { revision } => {
                    obj.meta_mut().resource_version = revision.to_string();
                    return Ok(obj);
                }
                TxnResult::Conflict { .. } => continue,
            }
        }
    }

    /// Apply manifest text: every document is parsed, defaulted and validated before anything is
    /// written; then each is created, or updated as `kubectl apply` does (a three-way merge
    /// against the last applied configuration, kept in an annotation).
    pub async fn apply(
        &self,
        text: &str,
        default_namespace: &str,
        create_only: bool,
        dry_run: bool,
    ) -> Result<(Vec<Applied>, Vec<String>)> {
        let text_owned = text.to_owned();
        let parsed = off_reactor(move || manifest::parse_manifests(&text_owned))
            .await?
            .map_err(StoreError::InvalidManifest)?;
        let mut warnings = Vec::new();
        let mut docs = Vec::new();
        // Admission of every document first: nothing is written if any is invalid.
        for p in parsed {
            warnings.extend(p.warnings);
            let mut obj = p.object;
            if obj.kind().namespaced() && obj.meta().namespace.is_empty() {
                obj.meta_mut().namespace = if default_namespace.is_empty() {
                    "default".into()
                } else {
                    default_namespace.into()
                };
            }
            if obj.meta().name.is_empty() && (!create_only || obj.meta().generate_name.is_empty()) {
                return Err(Self::invalid(
                    &obj,
                    vec![coxswain_api::error::FieldError::new(
                        "metadata.name",
                        "Required value: name is required",
                    )],
                ));
            }
            let desired = obj.to_json_value();
            let mut admitted = obj.clone();
            self.admit_new(&mut admitted)?;
            docs.push((obj, desired));
        }
        let mut out = Vec::new();
        for (obj, desired) in docs {
            let kind = obj.kind();
            let existing = if obj.meta().name.is_empty() {
                None
            } else {
                self.cache().get(kind, obj.namespace(), obj.name())
            };
            match existing {
                Some(_) if create_only => {
                    return Err(StoreError::AlreadyExists {
                        resource: resource_name(kind),
                        name: obj.name().to_string(),
                    })
                }
                None => {
                    let mut o = obj;
                    if !create_only {
                        let last = serde_json::to_string(&desired).unwrap_or_default();
                        o.meta_mut().annotations.insert(LAST_APPLIED.into(), last);
                    }
                    self.check_namespace(&o)?;
                    let created = self.create(o, dry_run).await?;
                    out.push(Applied {
                        object: created,
                        action: "created",
                    });
                }
                Some(_) => {
                    let (object, changed) = self.apply_update(&obj, &desired, dry_run).await?;
                    out.push(Applied {
                        object,
                        action: if changed { "configured" } else { "unchanged" },
                    });
                }
            }
        }
        Ok((out, warnings))
    }

    async fn apply_update(
        &self,
        obj: &Object,
        desired: &serde_json::Value,
        dry_run: bool,
    ) -> Result<(Object, bool)> {
        let kind = obj.kind();
        let last_applied = serde_json::to_string(desired).unwrap_or_default();
        loop {
            let cur = self.get_stored(kind, obj.namespace(), obj.name())?;
            let current = cur.decode();
            let last: Option<serde_json::Value> = current
                .meta()
                .annotations
                .get(LAST_APPLIED)
                .and_then(|s| serde_json::from_str(s).ok());
            let mut json = current.to_json_value();
            let mut desired = desired.clone();
            if let Some(d) = desired.as_object_mut() {
                d.remove("status");
            }
            three_way_merge(&mut json, last.as_ref(), &desired);
            if let Some(m) = json
                .pointer_mut("/metadata/annotations")
                .and_then(|a| a.as_object_mut())
            {
                m.insert(
                    LAST_APPLIED.into(),
                    serde_json::Value::String(last_applied.clone()),
                );
            } else if let Some(m) = json
                .pointer_mut("/metadata")
                .and_then(|a| a.as_object_mut())
            {
                m.insert(
                    "annotations".into(),
                    serde_json::json!({ LAST_APPLIED: last_applied }),
                );
            }
            let mut merged = kind
                .from_json_value(json)
                .map_err(|e| StoreError::Invalid {
                    kind,
                    name: obj.name().to_string(),
                    source: manifest::path_error(&e),
                })?;
            merged.meta_mut().resource_version = cur.revision.to_string();
            match self.write(merged, UpdateMode::Spec, dry_run).await {
                Ok(o) => {
                    let changed = o.meta().resource_version != cur.revision.to_string();
                    return Ok((o, changed));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    // === watch ===

    /// Start a watch. Events arrive on the returned channel until the receiver is dropped; an
    /// `Err` (TooOld when the watcher fell out of the retained window) ends the stream.
    pub fn watch(&self, opts: WatchOptions) -> Result<mpsc::Receiver<Result<WatchEvent>>> {
        if let Some(kind) = opts.kind {
            opts.fields
                .check_supported(kind)
                .map_err(|e| StoreError::BadRequest(e.to_string()))?;
        }
        let (tx, rx) = mpsc::channel(self.inner.config.watch_buffer.max(1));
        let mut initial = Vec::new();
        let start = {
            let c = self.cache();
            match opts.resource_version {
                Some(rv) => {
                    if rv < c.compacted {
                        return Err(StoreError::TooOld {
                            requested: rv,
                            oldest: c.compacted + 1,
                        });
                    }
                    rv
                }
                None => {
                    let kinds: Vec<Kind> = match opts.kind {
                        Some(k) => vec![k],
                        None => Kind::ALL.to_vec(),
                    };
                    for k in kinds {
                        let ns = opts.namespace.as_deref().filter(|n| !n.is_empty());
                        for s in c.range(k, ns, None) {
                            if s.matches(&opts.labels, &opts.fields) {
                                initial.push(WatchEvent::Change {
                                    typ: EventType::Added,
                                    object: s.clone(),
                                });
                            }
                        }
                    }
                    c.revision
                }
            }
        };
        let store = self.clone();
        tokio::spawn(async move { store.run_watch(opts, start, initial, tx).await });
        Ok(rx)
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

/// Status a new object starts with, and identity-derived defaults.
fn prepare_for_create(obj: &mut Object) {
    let uid = obj.meta().uid.clone();
    match obj {
        Object::Pod(p) => {
            let spec = p.spec.get_or_insert_with(Default::default);
            // The Priority admission plugin: the built-in classes' values, 0 without a class
            // (no PriorityClass objects here), and the default preemption policy.
            if spec.priority.is_none() {
                spec.priority = match spec.priority_class_name.as_str() {
                    "system-node-critical" => Some(2_000_001_000),
                    "system-cluster-critical" => Some(2_000_000_000),
                    "" => Some(0),
                    _ => None,
                };
            }
            if spec.priority.is_some() && spec.preemption_policy.is_none() {
                spec.preemption_policy = Some("PreemptLowerPriority".into());
            }
            let qos = coxswain_api::qos::pod_qos(spec);
            let st = p.status.get_or_insert_with(Default::default);
            if st.phase.is_empty() {
                st.phase = "Pending".into();
            }
            // The pod strategy's PrepareForCreate.
            st.qos_class = qos.into();
        }
        Object::Namespace(n) => {
            n.status.get_or_insert_with(Default::default).phase = "Active".into();
            let spec = n.spec.get_or_insert_with(Default::default);
            if !spec.finalizers.iter().any(|f| f == FINALIZER_NAMESPACE) {
                spec.finalizers.push(FINALIZER_NAMESPACE.into());
            }
            let name = n
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            n.metadata
                .get_or_insert_with(Default::default)
                .labels
                .insert("kubernetes.io/metadata.name".into(), name);
        }
        Object::Job(j) => {
            defaults::job_selector_for_uid(j, &uid);
            // The one default that depends on what was just set: a Job without labels takes
            // its template's, now with the generated ones. Other kinds were defaulted once, at
            // admission.
            defaults::apply_defaults(obj);
        }
        // The StorageObjectInUseProtection admission plugin: claims and volumes are protected
        // from removal while in use (the PV controller removes the finalizers).
        Object::PersistentVolumeClaim(_) | Object::PersistentVolume(_) => {
            let f = if matches!(obj, Object::PersistentVolume(_)) {
                "kubernetes.io/pv-protection"
            } else {
                "kubernetes.io/pvc-protection"
            };
            let fins = &mut obj.meta_mut().finalizers;
            if !fins.iter().any(|x| x == f) {
                fins.push(f.into());
            }
        }
        _ => {}
    }
}

/// A pod's priority and preemption policy are set by admission at create; an update that
/// leaves them out keeps them (the spec of a pod may not change them).
fn keep_admitted_priority(new: &mut Object, old: &Object) {
    let (Object::Pod(n), Object::Pod(o)) = (new, old) else {
        return;
    };
    let (Some(ns), Some(os)) = (n.spec.as_mut(), o.spec.as_ref()) else {
        return;
    };
    if ns.priority.is_none() {
        ns.priority = os.priority;
    }
    if ns.preemption_policy.is_none() {
        ns.preemption_policy = os.preemption_policy.clone();
    }
    // So does the ServiceAccount admission's serviceAccountName.
    if ns.service_account_name.is_empty() && ns.service_account.is_empty() {
        ns.service_account_name = os.service_account_name.clone();
        ns.service_account = os.service_account.clone();
    }
}

/// Carry over what a client may not change through an update: identity, creation time, the
/// deletion mark, generation.
fn keep_system_metadata(new: &mut Object, old: &Object) {
    let o = old.meta().clone();
    let m = new.meta_mut();
    m.uid = o.uid;
    m.creation_timestamp = o.creation_timestamp;
    m.generation = o.generation;
    m.generate_name = o.generate_name;
    if !o.deletion_timestamp.is_empty() {
        m.deletion_timestamp = o.deletion_timestamp;
        m.deletion_grace_period_seconds = o.deletion_grace_period_seconds;
    } else {
        m.deletion_timestamp.clear();
        m.deletion_grace_period_seconds = None;
    }
}

/// An object marked for deletion whose finalizers are all gone is removed.
fn ready_to_delete(obj: &Object) -> bool {
    let m = obj.meta();
    if m.deletion_timestamp.is_empty()
        || !m.finalizers.is_empty()
        || m.deletion_grace_period_seconds.unwrap_or(0) > 0
    {
        return false;
    }
    match obj {
        Object::Namespace(n) => n.spec.as_ref().is_none_or(|s| s.finalizers.is_empty()),
        _ => true,
    }
}

fn encode_continue(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_continue(token: &str) -> Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| StoreError::BadRequest(format!("continue token {token:?} is not valid")))
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// kubectl apply's three-way merge on JSON: fields in `desired` are set (objects merged
/// recursively, lists and scalars replaced); fields in the last applied configuration that
/// `desired` no longer has are removed; everything else (set by controllers) is kept.
pub fn three_way_merge(
    current: &mut serde_json::Value,
    last: Option<&serde_json::Value>,
    desired: &serde_json::Value,
) {
    use serde_json::Value;
    let (Value::Object(cur), Value::Object(want)) = (current, desired) else {
        return;
    };
    if let Some(Value::Object(last)) = last {
        for k in last.keys() {
            if !want.contains_key(k) {
                cur.remove(k);
            }
        }
    }
    for (k, v) in want {
        let last_k = last.and_then(|l| l.get(k));
        match (cur.get_mut(k), v) {
            (Some(c @ Value::Object(_)), Value::Object(_)) => three_way_merge(c, last_k, v),
            // Unchanged since the last apply: what is live stays (it may hold what admission
            // or controllers added, like default tolerations).
            (Some(_), _) if last_k == Some(v) => {}
            _ => {
                cur.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Kubernetes' DefaultTolerationSeconds admission: a pod that does not already tolerate the
/// not-ready / unreachable NoExecute taints gets tolerations for them with a time limit, so it
/// is evicted from a failed node after that long.
fn add_default_tolerations(pod: &mut coxswain_api::v1::Pod, not_ready: i32, unreachable: i32) {
    const NOT_READY: &str = "node.kubernetes.io/not-ready";
    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
    let spec = pod.spec.get_or_insert_with(Default::default);
    let tolerates = |key: &str| {
        spec.tolerations.iter().any(|t| {
            (t.key == key || t.key.is_empty()) && (t.effect == "NoExecute" || t.effect.is_empty())
        })
    };
    let (has_not_ready, has_unreachable) = (tolerates(NOT_READY), tolerates(UNREACHABLE));
    for (has, key, secs) in [
        (has_not_ready, NOT_READY, not_ready),
        (has_unreachable, UNREACHABLE, unreachable),
    ] {
        if !has {
            spec.tolerations.push(coxswain_api::v1::Toleration {
                key: key.into(),
                operator: "Exists".into(),
                effect: "NoExecute".into(),
                toleration_seconds: Some(secs),
                ..Default::default()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        let mut t = json!({"a": [1, 2]});
        merge_patch(&mut t, &json!({"a": [3]}));
        assert_eq!(t, json!({"a": [3]}));
    }

    #[test]
    fn three_way_merge_keeps_controller_fields_and_drops_removed_ones() {
        let mut cur = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"deployment.kubernetes.io/revision": "3"}},
                             "spec": {"replicas": 5, "paused": true}});
        let last = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"paused": true}});
        let want = json!({"metadata": {"labels": {"a": "1"}}, "spec": {}});
        three_way_merge(&mut cur, Some(&last), &want);
        assert_eq!(
            cur,
            json!({"metadata": {"labels": {"a": "1"}, "annotations": {"deployment.kubernetes.io/revision": "3"}}, "spec": {"replicas": 5}})
        );
    }

    #[test]
    fn three_way_merge_leaves_lists_the_user_did_not_change() {
        let mut cur =
            json!({"spec": {"tolerations": [{"key": "a"}, {"key": "not-ready"}], "x": [1]}});
        let last = json!({"spec": {"tolerations": [{"key": "a"}], "x": [1]}});
        let want = json!({"spec": {"tolerations": [{"key": "a"}], "x": [2]}});
        three_way_merge(&mut cur, Some(&last), &want);
        assert_eq!(
            cur,
            json!({"spec": {"tolerations": [{"key": "a"}, {"key": "not-ready"}], "x": [2]}})
        );
    }
}
