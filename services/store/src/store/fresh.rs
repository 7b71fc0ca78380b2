//! The object a write starts from, when other store replicas write to the same etcd.
//!
//! A replica's cache is fed by etcd's watch, so it can lag behind what a client has already
//! seen through another replica: a pod created through one replica and bound through the other
//! before this one's watch delivered the create. Answered from the lagging cache, such a write
//! was refused — NotFound, or a Conflict on a resourceVersion or uid the cache had not reached
//! — and a refusal that is not true loses work: the scheduler drops a pod whose Bind says
//! NotFound, so the pod stayed Pending for good (tests/ha_up.rs, about 1 run in 7 under load).
//! Upstream's GuaranteedUpdate reads etcd when the watch cache has no object and re-reads after
//! a stale one failed its compare.
//!
//! The cache still answers every write it can. Only an answer that would refuse the write is
//! checked: the store asks the backend for its current revision (one read of a key that does
//! not exist) and waits until its cache has applied it — upstream's consistent read from the
//! cache (KEP-2340), bounded by `too_large_resource_version_wait` as its
//! `waitUntilFreshAndBlock` — then reads the object again. A write whose object is found and
//! current pays nothing; neither does a backend only this store writes.
//!
//! Lists follow kube-apiserver's rules for `resourceVersion` ([`ListFreshness`]), so an
//! informer relisting through a lagging replica never moves back in time: a list "not older
//! than N" waits until the cache has applied N (then "Too large resource version", as the
//! watch cache's `waitUntilFreshAndBlock`), and a list with no resourceVersion is a consistent
//! read — the cache first reaches the backend's current revision (ConsistentListFromCache,
//! 1.31), and a cache that does not get there within the same wait has the list read from the
//! backend itself, as kube-apiserver falls back to etcd. A backend only this store writes is
//! always current: its consistent lists wait for nothing and ask the backend nothing.
use super::*;

/// How fresh a list must be: its `resourceVersion` and `resourceVersionMatch` (and a continue
/// token's revision), read as kube-apiserver reads them (`ListReadConsistency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFreshness {
    /// `resourceVersion` "": the most recent state (a consistent read).
    Consistent,
    /// "0": whatever state the cache holds, at once.
    Any,
    /// N (`resourceVersionMatch` "" or `NotOlderThan`): a state at revision N or later.
    NotOlderThan(i64),
    /// Exactly the state at revision N: `Exact`, a paged list with N and no match (upstream's
    /// legacy exact case), and every page after the first (the continue token's revision).
    Exact(i64),
}

impl ListFreshness {
    /// From a request's fields, with upstream's validation (`ValidateListOptions`, and the
    /// etcd store's "specifying resource version is not allowed when using continue"). A
    /// continue token is read at its revision (-1: the most recent).
    pub fn parse(
        resource_version: &str,
        matching: &str,
        continue_token: &str,
        limit: i64,
    ) -> Result<Self> {
        let bad = |m: String| Err(StoreError::BadRequest(m));
        match matching {
            "" | "NotOlderThan" | "Exact" => {}
            other => {
                return bad(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""
                ))
            }
        }
        if !matching.is_empty() {
            if resource_version.is_empty() {
                return bad("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".into());
            }
            if !continue_token.is_empty() {
                return bad("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided".into());
            }
            if matching == "Exact" && resource_version == "0" {
                return bad("resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"".into());
            }
        }
        let freshness = match resource_version {
            "" => ListFreshness::Consistent,
            "0" => ListFreshness::Any,
            s => match s.parse::<i64>() {
                Ok(n) if n > 0 => ListFreshness::NotOlderThan(n),
                _ => {
                    return bad(format!(
                        "resourceVersion: Invalid value: {s:?}: must be a non-negative integer"
                    ))
                }
            },
        };
        if !continue_token.is_empty() {
            if matches!(freshness, ListFreshness::NotOlderThan(_)) {
                return bad(
                    "specifying resource version is not allowed when using continue".into(),
                );
            }
            let (_, revision) = super::decode_continue(continue_token)?;
            return Ok(match revision {
                r if r > 0 => ListFreshness::Exact(r),
                _ => ListFreshness::Consistent,
            });
        }
        Ok(match freshness {
            ListFreshness::NotOlderThan(n) if matching == "Exact" => ListFreshness::Exact(n),
            ListFreshness::NotOlderThan(n) if matching.is_empty() && limit > 0 => {
                ListFreshness::Exact(n)
            }
            f => f,
        })
    }
}

impl Store {
    /// The stored object a write (update, patch, bind, delete) of `kind` `namespace`/`name`
    /// starts from. `seen_rv` (a resourceVersion precondition, "" for none) and `uid` (a uid
    /// precondition, "" for none) are what the client has seen: a cached object older than
    /// `seen_rv`, of another uid, or no cached object at all, is looked up again once the cache
    /// has caught up with the backend.
    pub(super) async fn get_for_write(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        seen_rv: &str,
        uid: &str,
    ) -> Result<Arc<Stored>> {
        let cached = self.cache().get(kind, ns_for(kind, namespace), name);
        let doubtful = match &cached {
            None => true,
            Some(s) => {
                (!uid.is_empty() && *s.uid != *uid)
                    || seen_rv.parse::<i64>().is_ok_and(|rv| rv > s.revision)
            }
        };
        if doubtful && self.catch_up_with_backend().await? {
            return self.get_stored(kind, namespace, name);
        }
        cached.ok_or_else(|| StoreError::not_found(kind, name))
    }

    /// A list of `kind` at least as fresh as `freshness` asks: after waiting, when it must,
    /// for the cache to reach the revision asked for (NotOlderThan; "Too large resource
    /// version" after `too_large_resource_version_wait`) or the backend's current revision
    /// (Consistent). A consistent list whose cache does not get there within that wait is
    /// read from the backend itself, as kube-apiserver falls back to etcd. An Exact list (and
    /// every page after a paged list's first) is read at its revision (paging.rs).
    pub async fn list_fresh(
        &self,
        kind: Kind,
        opts: &ListOptions,
        freshness: ListFreshness,
    ) -> Result<ListResult> {
        // A request that cannot be served fails before it waits.
        let after = check_list_options(kind, opts)?;
        match freshness {
            ListFreshness::Any => {}
            ListFreshness::Exact(revision) => {
                let paging = opts
                    .continue_token
                    .as_deref()
                    .is_some_and(|t| !t.is_empty());
                return self.list_exact(kind, opts, after, revision, paging).await;
            }
            ListFreshness::Consistent => {
                if let Some(revision) = self.inner.backend.current_revision().await? {
                    let fallback = self.wait_until_fresh(revision).await.is_err();
                    let r = match fallback {
                        true => self.list_from_backend(kind, opts, after).await,
                        false => Ok(list_in(&self.cache(), kind, opts, after)),
                    };
                    metrics::counter!(
                        "apiserver_watch_cache_consistent_read_total",
                        "resource" => kind.plural(),
                        "success" => if r.is_ok() { "true" } else { "false" },
                        "fallback" => if fallback { "true" } else { "false" },
                    )
                    .increment(1);
                    return r;
                }
            }
            ListFreshness::NotOlderThan(rv) => self.wait_until_fresh(rv).await?,
        }
        Ok(list_in(&self.cache(), kind, opts, after))
    }

    /// A consistent list of `kind` read from the backend, not the cache (upstream's fallback
    /// of a consistent list to etcd when the watch cache has not caught up): every object of
    /// the kind is read and decoded, so only a cache that is stuck pays for it.
    async fn list_from_backend(
        &self,
        kind: Kind,
        opts: &ListOptions,
        after: Option<String>,
    ) -> Result<ListResult> {
        let prefix = format!("/registry/{}/", kind.plural());
        let Some(snapshot) = self.inner.backend.list_prefix(&prefix).await? else {
            return Ok(list_in(&self.cache(), kind, opts, after));
        };
        tracing::warn!(
            kind = kind.as_str(),
            cache = self.revision(),
            backend = snapshot.revision,
            "this store's cache has not caught up with the backend; a consistent list is read from it"
        );
        let objects = off_reactor(move || Cache::new(snapshot.revision, snapshot.kvs, 1)).await?;
        Ok(list_in(&objects, kind, opts, after))
    }

    /// Wait until the cache has applied `revision`: "Too large resource version" (the client
    /// lists again with no resourceVersion) when it has not within
    /// `too_large_resource_version_wait`, as the watch cache's `waitUntilFreshAndBlock`.
    pub(crate) async fn wait_until_fresh(&self, revision: i64) -> Result<()> {
        if self.inner.applied.get() >= revision {
            return Ok(());
        }
        let wait = self.inner.config.too_large_resource_version_wait;
        match tokio::time::timeout(wait, self.caught_up(revision)).await {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::TooLarge {
                requested: revision,
                current: self.revision(),
            }),
        }
    }

    /// Wait until the cache has applied the backend's current revision. False (at once) for a
    /// backend only this store writes; an UNAVAILABLE error when the cache has not got there
    /// within `too_large_resource_version_wait` (the client retries, maybe on another replica).
    pub(super) async fn catch_up_with_backend(&self) -> Result<bool> {
        let Some(revision) = self.inner.backend.current_revision().await? else {
            return Ok(false);
        };
        let wait = self.inner.config.too_large_resource_version_wait;
        if tokio::time::timeout(wait, self.caught_up(revision))
            .await
            .is_err()
        {
            return Err(StoreError::Backend(BackendError::Unavailable(format!(
                "this store replica's cache has not reached the backend's revision {revision} in {wait:?} (at {}); retry",
                self.revision()
            ))));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    //! Two replicas on one backend, as the store sees them: this store, and writes made
    //! straight to the backend (another replica's) whose changes reach this store's feed only
    //! when the test lets them.
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use coxswain_api::v1;
    use tokio::sync::mpsc;

    use super::*;
    use crate::backend::{BoxFuture, Change, EmbeddedBackend, KeyValue, Snapshot, Started};

    /// An embedded backend whose feed to the store is held back while `held` is set, and which
    /// says it is shared (reports its current revision, lists what it holds) as etcd does.
    struct Lagging {
        inner: EmbeddedBackend,
        held: Arc<AtomicBool>,
        /// Changes held back, in order.
        queue: Arc<Mutex<Vec<Vec<Change>>>>,
        released: Arc<tokio::sync::Notify>,
        /// What the backend holds (its revision, and key → value and mod_revision), kept from
        /// its own feed before anything is held back.
        truth: Arc<Mutex<Truth>>,
        /// Consistent lists read from the backend.
        listed: Arc<AtomicUsize>,
    }

    type Truth = (i64, BTreeMap<String, (Bytes, i64)>);

    impl Backend for Lagging {
        fn name(&self) -> &'static str {
            "lagging"
        }

        fn start(&self) -> BoxFuture<'_, std::result::Result<Started, BackendError>> {
            Box::pin(async move {
                let (snapshot, mut feed) = self.inner.start().await?;
                {
                    let mut t = self.truth.lock().unwrap();
                    t.0 = snapshot.revision;
                    for kv in &snapshot.kvs {
                        t.1.insert(kv.key.clone(), (kv.value.clone(), kv.mod_revision));
                    }
                }
                let (tx, rx) = mpsc::unbounded_channel();
                let (held, queue, released, truth) = (
                    self.held.clone(),
                    self.queue.clone(),
                    self.released.clone(),
                    self.truth.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            batch = feed.recv() => {
                                let Some(batch) = batch else { return };
                                record(&truth, &batch);
                                queue.lock().unwrap().push(batch);
                            }
                            _ = released.notified() => {}
                        }
                        if !held.load(Ordering::SeqCst) {
                            for b in std::mem::take(&mut *queue.lock().unwrap()) {
                                if tx.send(b).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
                Ok((snapshot, rx))
            })
        }

        fn txn(&self, txn: Txn) -> BoxFuture<'_, std::result::Result<TxnResult, BackendError>> {
            // The embedded backend answers once the change is on its feed (here: queued).
            self.inner.txn(txn)
        }

        fn current_revision(
            &self,
        ) -> BoxFuture<'_, std::result::Result<Option<i64>, BackendError>> {
            Box::pin(async move {
                // A write that changes nothing answers with the last revision committed.
                match self.inner.txn(Txn::default()).await? {
                    TxnResult::Committed { revision } => Ok(Some(revision)),
                    TxnResult::Conflict { .. } => Ok(None),
                }
            })
        }

        fn list_prefix(
            &self,
            prefix: &str,
        ) -> BoxFuture<'_, std::result::Result<Option<Snapshot>, BackendError>> {
            let t = self.truth.lock().unwrap();
            let kvs =
                t.1.range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, (v, rev))| KeyValue {
                        key: k.clone(),
                        value: v.clone(),
                        mod_revision: *rev,
                    })
                    .collect();
            let snapshot = Snapshot { revision: t.0, kvs };
            self.listed.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Ok(Some(snapshot)) })
        }
    }

    /// The backend's own view of a batch it committed.
    fn record(truth: &Mutex<Truth>, batch: &[Change]) {
        let mut t = truth.lock().unwrap();
        for c in batch {
            t.0 = t.0.max(c.revision);
            match &c.value {
                Some(v) => {
                    t.1.insert(c.key.clone(), (v.clone(), c.revision));
                }
                None => {
                    t.1.remove(&c.key);
                }
            }
        }
    }

    struct Replicas {
        store: Store,
        held: Arc<AtomicBool>,
        released: Arc<tokio::sync::Notify>,
        listed: Arc<AtomicUsize>,
    }

    impl Replicas {
        /// Real time: the embedded backend commits on a thread of its own, which a paused
        /// clock would not wait for before firing the catch-up's timeout.
        async fn new(wait: Duration) -> Replicas {
            let held = Arc::new(AtomicBool::new(false));
            let released = Arc::new(tokio::sync::Notify::new());
            let listed = Arc::new(AtomicUsize::new(0));
            let backend = Arc::new(Lagging {
                inner: EmbeddedBackend::memory(),
                held: held.clone(),
                queue: Arc::default(),
                released: released.clone(),
                truth: Arc::default(),
                listed: listed.clone(),
            });
            let config = StoreConfig {
                too_large_resource_version_wait: wait,
                ..Default::default()
            };
            let store = Store::open(backend, config).await.expect("store");
            Replicas {
                store,
                held,
                released,
                listed,
            }
        }

        /// Another replica's write: straight to the backend, this store's feed held back.
        async fn elsewhere(&self, obj: &Object) -> i64 {
            self.held.store(true, Ordering::SeqCst);
            let key = backend_key(obj.kind(), obj.namespace(), obj.name());
            let txn = Txn {
                compares: Vec::new(),
                ops: vec![Op::Put {
                    key,
                    value: Bytes::from(obj.encode_to_vec()),
                }],
            };
            match self.store.inner.backend.txn(txn).await.expect("txn") {
                TxnResult::Committed { revision } => revision,
                r => panic!("{r:?}"),
            }
        }

        /// This store's watch delivers what it held back, after `after`.
        fn release_after(&self, after: Duration) {
            let (held, released) = (self.held.clone(), self.released.clone());
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                held.store(false, Ordering::SeqCst);
                released.notify_one();
            });
        }
    }

    fn pod(name: &str, uid: &str) -> Object {
        Object::Pod(v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                uid: uid.into(),
                ..Default::default()
            }),
            spec: Some(v1::PodSpec {
                containers: vec![v1::Container {
                    name: "c".into(),
                    image: "busybox".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// A pod created through another replica, bound through this one before this one's watch
    /// delivered the create: the bind waits for the cache and lands (it said NotFound).
    #[tokio::test]
    async fn a_bind_through_a_lagging_replica_finds_the_pod_created_through_another() {
        let r = Replicas::new(Duration::from_secs(10)).await;
        let created = r.elsewhere(&pod("web-1", "u1")).await;
        assert!(r.store.get_stored(Kind::Pod, "default", "web-1").is_err());
        assert!(r.store.revision() < created);
        r.release_after(Duration::from_millis(100));
        let bound = r
            .store
            .bind("default", "web-1", "u1", "node1")
            .await
            .expect("bound");
        let Object::Pod(p) = bound else {
            panic!("not a pod")
        };
        assert_eq!(p.spec.unwrap_or_default().node_name, "node1");
    }

    fn config_map(name: &str, v: &str) -> Object {
        let mut cm = Kind::ConfigMap.empty();
        cm.meta_mut().name = name.into();
        cm.meta_mut().namespace = "default".into();
        cm.meta_mut().labels.insert("v".into(), v.into());
        cm
    }

    /// An update carrying the resourceVersion the client read through another replica, and a
    /// delete of an object this replica has not seen yet: both land, neither is a false
    /// Conflict or NotFound.
    #[tokio::test]
    async fn updates_and_deletes_wait_for_what_the_client_saw_elsewhere() {
        let r = Replicas::new(Duration::from_secs(10)).await;
        let created = r
            .store
            .create(config_map("settings", "1"), false)
            .await
            .expect("create");
        let mut newer = config_map("settings", "2");
        newer.meta_mut().uid = created.meta().uid.clone();
        let seen = r.elsewhere(&newer).await;
        r.release_after(Duration::from_millis(100));
        let mut next = config_map("settings", "3");
        next.meta_mut().resource_version = seen.to_string();
        let updated = r.store.update(next).await.expect("updated");
        assert_eq!(
            updated.meta().labels.get("v").map(String::as_str),
            Some("3")
        );

        r.elsewhere(&pod("web-3", "u3")).await;
        r.release_after(Duration::from_millis(100));
        r.store
            .delete(Kind::Pod, "default", "web-3", &DeleteOptions::default())
            .await
            .expect("deleted");
    }

    /// A name that does not exist anywhere is still NotFound, at once; a cache that never
    /// catches up is UNAVAILABLE after the wait, never a NotFound it cannot vouch for.
    #[tokio::test]
    async fn missing_stays_not_found_and_a_stuck_cache_is_unavailable() {
        let r = Replicas::new(Duration::from_millis(300)).await;
        let e = r
            .store
            .bind("default", "nowhere", "", "node1")
            .await
            .expect_err("missing");
        assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");

        r.elsewhere(&pod("web-4", "u4")).await;
        let start = std::time::Instant::now();
        let e = r
            .store
            .bind("default", "web-4", "u4", "node1")
            .await
            .expect_err("stuck");
        assert!(
            matches!(e, StoreError::Backend(BackendError::Unavailable(_))),
            "{e:?}"
        );
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    fn pod_names(l: &ListResult) -> Vec<String> {
        l.items.iter().map(|s| s.name().to_string()).collect()
    }

    /// An informer that saw revision N through another replica relists "not older than N"
    /// through this lagging one: the list waits for the cache and holds what the informer saw;
    /// "0" is the cache as it is, older.
    #[tokio::test]
    async fn a_list_not_older_than_a_revision_waits_for_it() {
        let r = Replicas::new(Duration::from_secs(10)).await;
        let created = r.elsewhere(&pod("web-5", "u5")).await;
        let opts = ListOptions::default();
        let any = r
            .store
            .list_fresh(Kind::Pod, &opts, ListFreshness::Any)
            .await
            .expect("any");
        assert!(any.revision < created && any.items.is_empty());
        r.release_after(Duration::from_millis(100));
        let l = r
            .store
            .list_fresh(Kind::Pod, &opts, ListFreshness::NotOlderThan(created))
            .await
            .expect("not older than");
        assert!(l.revision >= created, "{} < {created}", l.revision);
        assert_eq!(pod_names(&l), ["web-5"]);
        // Reached: no wait at all.
        let start = std::time::Instant::now();
        r.store
            .list_fresh(Kind::Pod, &opts, ListFreshness::NotOlderThan(created))
            .await
            .expect("reached");
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    /// A revision the cache does not reach in time: "Too large resource version" after the
    /// wait (the informer lists again with no resourceVersion), never the older state.
    #[tokio::test]
    async fn a_revision_never_reached_is_too_large_and_a_consistent_list_reads_the_backend() {
        let r = Replicas::new(Duration::from_millis(300)).await;
        let created = r.elsewhere(&pod("web-6", "u6")).await;
        let start = std::time::Instant::now();
        let e = r
            .store
            .list_fresh(
                Kind::Pod,
                &ListOptions::default(),
                ListFreshness::NotOlderThan(created),
            )
            .await
            .err()
            .expect("too large");
        assert!(start.elapsed() >= Duration::from_millis(300));
        let StoreError::TooLarge { requested, current } = e else {
            panic!("{e:?}")
        };
        assert_eq!(requested, created);
        assert!(current < created);
        assert_eq!(
            e.to_string(),
            format!("Too large resource version: {created}, current: {current}")
        );
        assert_eq!(e.code(), tonic::Code::OutOfRange);
        // A consistent list is read from the backend instead, never the older cache: it
        // holds the pod, at the backend's revision.
        assert_eq!(r.listed.load(Ordering::SeqCst), 0);
        let l = r
            .store
            .list_fresh(
                Kind::Pod,
                &ListOptions::default(),
                ListFreshness::Consistent,
            )
            .await
            .expect("read from the backend");
        assert_eq!(pod_names(&l), ["web-6"]);
        assert!(l.revision >= created);
        assert_eq!(r.listed.load(Ordering::SeqCst), 1);
        assert!(r.store.revision() < created, "the cache is still behind");
        // Paged and filtered as from the cache.
        r.elsewhere(&pod("web-7", "u7")).await;
        let page = ListOptions {
            limit: 1,
            ..Default::default()
        };
        let first = r
            .store
            .list_fresh(Kind::Pod, &page, ListFreshness::Consistent)
            .await
            .expect("first page");
        assert_eq!(pod_names(&first), ["web-6"]);
        assert_eq!(first.remaining, 1);
        let next = ListOptions {
            limit: 1,
            continue_token: first.continue_token.clone(),
            ..Default::default()
        };
        let second = r
            .store
            .list_fresh(Kind::Pod, &next, ListFreshness::Consistent)
            .await
            .expect("second page");
        assert_eq!(pod_names(&second), ["web-7"]);
        assert!(second.continue_token.is_none());
    }

    /// A list with no resourceVersion through a lagging replica holds every write acknowledged
    /// before it was asked, wherever it was made (a consistent read).
    #[tokio::test]
    async fn a_consistent_list_sees_writes_made_through_another_replica() {
        let r = Replicas::new(Duration::from_secs(10)).await;
        let mut created = 0;
        for i in 0..3 {
            created = r
                .elsewhere(&pod(&format!("web-c{i}"), &format!("c{i}")))
                .await;
        }
        r.release_after(Duration::from_millis(100));
        let l = r
            .store
            .list_fresh(
                Kind::Pod,
                &ListOptions::default(),
                ListFreshness::Consistent,
            )
            .await
            .expect("consistent");
        assert!(l.revision >= created);
        assert_eq!(pod_names(&l), ["web-c0", "web-c1", "web-c2"]);
        // From the cache, which caught up: the backend was not listed.
        assert_eq!(r.listed.load(Ordering::SeqCst), 0);
        // A bad continue token fails before any wait.
        let bad = ListOptions {
            continue_token: Some("%%".into()),
            ..Default::default()
        };
        r.held.store(true, Ordering::SeqCst);
        r.elsewhere(&pod("web-c3", "c3")).await;
        let start = std::time::Instant::now();
        let e = r
            .store
            .list_fresh(Kind::Pod, &bad, ListFreshness::Consistent)
            .await
            .err()
            .expect("bad token");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    /// A store that alone writes its backend (the embedded one) is always current: a
    /// consistent list waits for nothing, and a NotOlderThan it has reached neither.
    #[tokio::test]
    async fn the_embedded_store_serves_consistent_lists_at_once() {
        let store = Store::open(Arc::new(EmbeddedBackend::memory()), StoreConfig::default())
            .await
            .expect("store");
        let created = store
            .create(config_map("one", "1"), false)
            .await
            .expect("create");
        let rv: i64 = created.meta().resource_version.parse().expect("rv");
        for f in [
            ListFreshness::Consistent,
            ListFreshness::Any,
            ListFreshness::NotOlderThan(rv),
        ] {
            let l = tokio::time::timeout(
                Duration::from_millis(500),
                store.list_fresh(Kind::ConfigMap, &ListOptions::default(), f),
            )
            .await
            .expect("at once")
            .expect("list");
            assert_eq!(l.items.len(), 1, "{f:?}");
        }
    }

    #[test]
    fn list_freshness_follows_upstreams_list_options() {
        use ListFreshness::*;
        let tok = super::super::paging::encode_continue("default/a\0", 17);
        let latest = super::super::paging::encode_continue("default/a\0", -1);
        let ok = |rv, m, c, limit| ListFreshness::parse(rv, m, c, limit).expect("valid");
        assert_eq!(ok("", "", "", 0), Consistent);
        assert_eq!(ok("", "", "", 10), Consistent);
        assert_eq!(ok("0", "", "", 0), Any);
        assert_eq!(ok("0", "", "", 10), Any);
        assert_eq!(ok("0", "NotOlderThan", "", 0), Any);
        assert_eq!(ok("42", "", "", 0), NotOlderThan(42));
        assert_eq!(ok("42", "NotOlderThan", "", 0), NotOlderThan(42));
        assert_eq!(ok("42", "NotOlderThan", "", 10), NotOlderThan(42));
        assert_eq!(ok("42", "Exact", "", 0), Exact(42));
        assert_eq!(ok("42", "Exact", "", 10), Exact(42));
        // Upstream's legacy exact match: a paged list at N with no match.
        assert_eq!(ok("42", "", "", 10), Exact(42));
        // Later pages: at the token's revision; -1 (an Expired answer's) the most recent.
        assert_eq!(ok("", "", &tok, 10), Exact(17));
        assert_eq!(ok("0", "", &tok, 10), Exact(17));
        assert_eq!(ok("", "", &latest, 10), Consistent);
        let err = |rv, m, c| match ListFreshness::parse(rv, m, c, 0) {
            Err(e @ StoreError::BadRequest(_)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(err("", "NotOlderThan", "").contains("forbidden unless resourceVersion"));
        assert!(err("", "Exact", "").contains("forbidden unless resourceVersion"));
        assert!(err("5", "NotOlderThan", &tok).contains("forbidden when continue"));
        assert!(err("5", "Exact", &tok).contains("forbidden when continue"));
        assert!(err("5", "", &tok).contains("not allowed when using continue"));
        assert_eq!(
            err("0", "Exact", ""),
            "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
        );
        assert!(err("5", "Newest", "")
            .starts_with("resourceVersionMatch: Unsupported value: \"Newest\""));
        assert!(err("x", "", "").starts_with("resourceVersion: Invalid value: \"x\""));
        assert!(err("-3", "", "").starts_with("resourceVersion: Invalid value"));
        assert!(err("", "", "tok").contains("continue key is not valid"));
    }
}
