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
use super::*;

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
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use coxswain_api::v1;
    use tokio::sync::mpsc;

    use super::*;
    use crate::backend::{BoxFuture, Change, EmbeddedBackend, Started};

    /// An embedded backend whose feed to the store is held back while `held` is set, and which
    /// says it is shared (reports its current revision) as etcd does.
    struct Lagging {
        inner: EmbeddedBackend,
        held: Arc<AtomicBool>,
        /// Changes held back, in order.
        queue: Arc<Mutex<Vec<Vec<Change>>>>,
        released: Arc<tokio::sync::Notify>,
    }

    impl Backend for Lagging {
        fn name(&self) -> &'static str {
            "lagging"
        }

        fn start(&self) -> BoxFuture<'_, std::result::Result<Started, BackendError>> {
            Box::pin(async move {
                let (snapshot, mut feed) = self.inner.start().await?;
                let (tx, rx) = mpsc::unbounded_channel();
                let (held, queue, released) =
                    (self.held.clone(), self.queue.clone(), self.released.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            batch = feed.recv() => {
                                let Some(batch) = batch else { return };
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
    }

    struct Replicas {
        store: Store,
        held: Arc<AtomicBool>,
        released: Arc<tokio::sync::Notify>,
    }

    impl Replicas {
        /// Real time: the embedded backend commits on a thread of its own, which a paused
        /// clock would not wait for before firing the catch-up's timeout.
        async fn new(wait: Duration) -> Replicas {
            let held = Arc::new(AtomicBool::new(false));
            let released = Arc::new(tokio::sync::Notify::new());
            let backend = Arc::new(Lagging {
                inner: EmbeddedBackend::memory(),
                held: held.clone(),
                queue: Arc::default(),
                released: released.clone(),
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
}
