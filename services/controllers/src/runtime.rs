//! The controller runtime (after kube-runtime / client-go): a reconcile runner over a
//! [`WorkQueue`], "expectations" so a controller never double-creates or double-deletes while its
//! watch catches up with its own writes, and owner-reference helpers.
//!
//! The runner hands a key to one worker at a time (the queue never gives out a key that is being
//! processed), requeues with the queue's per-key exponential back-off when reconcile fails, and
//! honours [`Action::Requeue`] for time-driven work (minReadySeconds, deadlines, back-offs).
//!
//! A key queued by a watch event that carried a request id (a `coxctl apply`, or a write made
//! under one) is reconciled in [`coxswain_client::trace::scope`]: every write of that reconcile
//! carries the id, and the reconcile is logged once at INFO with it.
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{ObjectMeta, OwnerReference};
use coxswain_client::WorkQueue;
use tokio::time::Instant;

/// What to do with a key after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconcile again after this long (unless a change comes first).
    Requeue(Duration),
    /// Nothing to do until something changes.
    Await,
}

impl Action {
    /// The sooner of two actions.
    pub fn min(self, other: Action) -> Action {
        match (self, other) {
            (Action::Await, x) | (x, Action::Await) => x,
            (Action::Requeue(a), Action::Requeue(b)) => Action::Requeue(a.min(b)),
        }
    }
    /// Requeue after `d` if `d` is some.
    pub fn after(d: Option<Duration>) -> Action {
        d.map_or(Action::Await, Action::Requeue)
    }
}

/// A reconcile error: logged and the key retried with back-off.
pub type Error = anyhow::Error;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A namespace that no longer takes new content: being deleted, or in phase Terminating.
pub fn namespace_terminating(ns: &coxswain_api::v1::Namespace) -> bool {
    use coxswain_api::Resource;
    !ns.metadata().deletion_timestamp.is_empty()
        || ns.status.as_ref().is_some_and(|s| s.phase == "Terminating")
}

/// Run `workers` workers over `queue`, calling `reconcile(key)` for every key handed out, until
/// the queue shuts down. A key is never reconciled twice at once.
pub async fn run<F, Fut>(name: &'static str, queue: WorkQueue<String>, workers: usize, reconcile: F)
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let q = queue.clone();
        let f = reconcile.clone();
        handles.push(tokio::spawn(async move {
            while let Some(key) = q.next().await {
                let started = std::time::Instant::now();
                let request_id = q.take_request_id(&key);
                let res = match &request_id {
                    None => f(key.clone()).await,
                    Some(id) => coxswain_client::trace::scope(Some(id.clone()), f(key.clone())).await,
                };
                let elapsed = started.elapsed();
                metrics::histogram!("coxswain_controller_reconcile_seconds", "controller" => name)
                    .record(elapsed.as_secs_f64());
                if let Some(id) = &request_id {
                    tracing::info!(
                        request_id = %id,
                        controller = name,
                        key = %key,
                        ok = res.is_ok(),
                        latency_ms = elapsed.as_secs_f64() * 1e3,
                        "reconcile"
                    );
                }
                match res {
                    Ok(Action::Await) => q.forget(&key),
                    Ok(Action::Requeue(d)) => {
                        q.forget(&key);
                        q.add_after(key.clone(), d);
                    }
                    Err(e) => {
                        metrics::counter!("coxswain_controller_reconcile_errors_total", "controller" => name)
                            .increment(1);
                        tracing::debug!(controller = name, key = %key, error = %format!("{e:#}"), "reconcile failed; retrying");
                        // The retry carries the id of the change it reconciles.
                        coxswain_client::trace::with_event(request_id.as_ref(), || {
                            q.add_rate_limited(key.clone())
                        });
                    }
                }
                q.done(&key);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

// === impl Expectations ===

#[derive(Debug)]
struct Expectation {
    adds: i64,
    dels: HashSet<String>,
    at: Instant,
}

/// Kubernetes' (UID-tracking) ControllerExpectations: before creating N pods the controller
/// expects N creations, before deleting pods it expects their UIDs to disappear; until the
/// informer has observed all of them (or `ttl` passed) the controller does not act on a stale
/// cache. Keys are the controller's `namespace/name`.
#[derive(Debug, Clone)]
pub struct Expectations {
    inner: Arc<Mutex<HashMap<String, Expectation>>>,
    ttl: Duration,
}

impl Expectations {
    pub fn new(ttl: Duration) -> Self {
        Expectations {
            inner: Arc::default(),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expectation>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The controller may act: nothing expected, everything observed, or the expectation expired.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.dels.is_empty()) || e.at.elapsed() > self.ttl,
        }
    }

    /// Expect `n` creations (replacing any previous expectation for `key`).
    pub fn expect_creations(&self, key: &str, n: usize) {
        self.lock().insert(
            key.to_string(),
            Expectation {
                adds: n as i64,
                dels: HashSet::new(),
                at: Instant::now(),
            },
        );
    }

    /// Expect these UIDs to be deleted (replacing any previous expectation for `key`).
    pub fn expect_deletions(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        self.lock().insert(
            key.to_string(),
            Expectation {
                adds: 0,
                dels: uids.into_iter().collect(),
                at: Instant::now(),
            },
        );
    }

    /// One creation was observed (or failed and will not be observed).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// A deletion of `uid` was observed (or failed).
    pub fn deletion_observed(&self, key: &str, uid: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.dels.remove(uid);
        }
    }

    /// Forget `key` (its controller object was deleted).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

// === owner references ===

/// An ownerReference with controller=true and blockOwnerDeletion=true, as every controller sets
/// on what it creates.
pub fn controller_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The controller ownerReference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .find(|r| r.controller == Some(true))
}

/// `namespace/name`.
pub fn key_of(meta: &ObjectMeta) -> String {
    format!("{}/{}", meta.namespace, meta.name)
}

/// Split a `namespace/name` key.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expectations_block_until_observed_or_expired() {
        let e = Expectations::new(Duration::from_secs(300));
        assert!(e.satisfied("ns/a"));
        e.expect_creations("ns/a", 2);
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        assert!(e.satisfied("ns/a"));

        e.expect_deletions("ns/a", ["u1".to_string(), "u2".to_string()]);
        assert!(!e.satisfied("ns/a"));
        e.deletion_observed("ns/a", "u1");
        e.deletion_observed("ns/a", "u1"); // a repeat does not count twice
        assert!(!e.satisfied("ns/a"));
        e.deletion_observed("ns/a", "u2");
        assert!(e.satisfied("ns/a"));

        e.expect_creations("ns/b", 1);
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(e.satisfied("ns/b"), "an expectation expires after its ttl");
    }

    #[test]
    fn action_min_prefers_the_sooner_requeue() {
        let a = Action::Requeue(Duration::from_secs(5));
        assert_eq!(a.min(Action::Await), a);
        assert_eq!(Action::Await.min(Action::Await), Action::Await);
        assert_eq!(
            a.min(Action::Requeue(Duration::from_secs(2))),
            Action::Requeue(Duration::from_secs(2))
        );
    }
}
