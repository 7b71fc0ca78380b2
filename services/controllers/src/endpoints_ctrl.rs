//! The Endpoints and EndpointSlice controllers' loops (upstream's `EndpointController` and
//! `EndpointSliceController`): informers on Services, Endpoints and EndpointSlices, the shared
//! pod and node caches, one queue each keyed by Service `namespace/name`.
//!
//! A pod change enqueues only the Services of its namespace whose selector matches its old or
//! new labels, and only when something an endpoint shows changed (IP, readiness, deletion,
//! phase, labels, hostname, node, ports). A reconcile reads the Service's pods from the pod
//! cache's label index (`namespace/key=value`, the selector's rarest pair), never a full list.
//! The pure logic is in [`crate::endpoints`] and [`crate::endpointslice`].
//!
//! Slices are written incrementally; until the cache shows the controller's own last writes
//! for a Service (the generations it wrote, the slices it deleted), that Service is not
//! reconciled again (upstream's endpointSliceTracker), so a stale cache never duplicates slices.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{EndpointSlice, Endpoints, Node, Pod, Service};
use coxswain_api::Resource;
use coxswain_client::{Cache, Client, DeleteParams, Event, Informer, RateLimit, WorkQueue};
use tokio::time::Instant;

use crate::endpoints::{self, is_managed, selector_matches};
use crate::endpointslice::{self, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::endpointslice_mirroring as mirroring;
use crate::runtime::{key_of, split_key, Action, Result};

/// Index of pods by `namespace/key=value`, one entry per label.
pub const LABEL_INDEX: &str = "label";
/// Index of managed EndpointSlices by their Service's `namespace/name`.
pub const SERVICE_INDEX: &str = "service";
/// Index of mirrored EndpointSlices by their Service's `namespace/name`.
pub const MIRROR_INDEX: &str = "mirror";

/// The pod cache's [`LABEL_INDEX`] function.
pub fn label_pairs(p: &Pod) -> Vec<String> {
    let m = p.metadata();
    m.labels
        .iter()
        .map(|(k, v)| format!("{}/{k}={v}", m.namespace))
        .collect()
}

fn managed_slice_service(s: &EndpointSlice) -> Option<String> {
    slice_service_of(s, endpointslice::CONTROLLER_NAME)
}

fn mirrored_slice_service(s: &EndpointSlice) -> Option<String> {
    slice_service_of(s, mirroring::CONTROLLER_NAME)
}

fn slice_service_of(s: &EndpointSlice, manager: &str) -> Option<String> {
    let m = s.metadata();
    if m.labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(manager) {
        return None;
    }
    m.labels
        .get(SERVICE_NAME_LABEL)
        .map(|svc| format!("{}/{svc}", m.namespace))
}

/// The informers and queues, started before the pod informer (its handler needs them).
#[derive(Clone)]
pub struct Parts {
    pub services: Cache<Service>,
    pub endpoints: Cache<Endpoints>,
    pub slices: Cache<EndpointSlice>,
    pub q_ep: WorkQueue<String>,
    pub q_slice: WorkQueue<String>,
    pub tracker: Tracker,
    /// The EndpointSliceMirroring controller's queue (Service keys) and write tracker.
    pub q_mirror: WorkQueue<String>,
    pub mirror_tracker: Tracker,
}

impl Parts {
    pub fn start(client: &Client, rl: RateLimit) -> Parts {
        let q_ep = WorkQueue::named(rl, "endpoint");
        let q_slice = WorkQueue::named(rl, "endpoint_slice");
        let q_mirror = WorkQueue::named(rl, "endpoint_slice_mirroring");
        let tracker = Tracker::default();
        let mirror_tracker = Tracker::default();
        let services = {
            let (a, b, c) = (q_ep.clone(), q_slice.clone(), q_mirror.clone());
            Informer::<Service>::new(client.clone())
                .on_event(move |ev: &Event<Service>| {
                    if let Some(o) = ev.object() {
                        let k = key_of(o.metadata());
                        a.add(k.clone());
                        b.add(k.clone());
                        c.add(k);
                    }
                })
                .start()
        };
        let endpoints = {
            let (q, svcs, qm) = (q_ep.clone(), services.clone(), q_mirror.clone());
            Informer::<Endpoints>::new(client.clone())
                .on_event(move |ev: &Event<Endpoints>| {
                    if let Some(o) = ev.object() {
                        qm.add(key_of(o.metadata()));
                    }
                    // Recreate Endpoints deleted under a Service that selects pods.
                    if let Event::Deleted(o) = ev {
                        let m = o.metadata();
                        if svcs
                            .get(&m.namespace, &m.name)
                            .is_some_and(|s| is_managed(&s))
                        {
                            q.add(key_of(m));
                        }
                    }
                })
                .start()
        };
        let slices = {
            let (q, t) = (q_slice.clone(), tracker.clone());
            let (qm, tm) = (q_mirror.clone(), mirror_tracker.clone());
            Informer::<EndpointSlice>::new(client.clone())
                .index(SERVICE_INDEX, |s: &EndpointSlice| {
                    managed_slice_service(s).into_iter().collect()
                })
                .index(MIRROR_INDEX, |s: &EndpointSlice| {
                    mirrored_slice_service(s).into_iter().collect()
                })
                .on_event(move |ev: &Event<EndpointSlice>| {
                    let Some(o) = ev.object() else { return };
                    if let Some(svc) = mirrored_slice_service(o) {
                        if let Event::Deleted(_) = ev {
                            tm.deleted_observed(&svc, &o.metadata().name);
                        }
                        qm.add(svc);
                        return;
                    }
                    let Some(svc) = managed_slice_service(o) else {
                        return;
                    };
                    if let Event::Deleted(_) = ev {
                        t.deleted_observed(&svc, &o.metadata().name);
                    }
                    q.add(svc);
                })
                .start()
        };
        Parts {
            services,
            endpoints,
            slices,
            q_ep,
            q_slice,
            tracker,
            q_mirror,
            mirror_tracker,
        }
    }

    /// The pod informer's handler: enqueue the Services a pod change concerns.
    pub fn pod_handler(&self) -> impl Fn(&Event<Pod>) + Send + Sync + 'static {
        let p = self.clone();
        move |ev: &Event<Pod>| match ev {
            Event::Added(o) | Event::Deleted(o) => p.enqueue_for(o, None),
            Event::Modified { old, new } => {
                if endpoint_view(old) != endpoint_view(new) {
                    p.enqueue_for(new, Some(old));
                }
            }
            Event::Synced => {}
        }
    }

    fn enqueue_for(&self, pod: &Pod, old: Option<&Pod>) {
        let m = pod.metadata();
        for s in self.services.list_namespace(&m.namespace) {
            if !is_managed(&s) {
                continue;
            }
            if selector_matches(&s, &m.labels)
                || old.is_some_and(|o| selector_matches(&s, &o.metadata().labels))
            {
                let k = key_of(s.metadata());
                self.q_ep.add(k.clone());
                self.q_slice.add(k);
            }
        }
    }
}

/// What of a pod its endpoints show: a change elsewhere enqueues nothing.
fn endpoint_view(p: &Pod) -> impl PartialEq + '_ {
    let m = p.metadata();
    let spec = p.spec.as_ref();
    (
        &m.labels,
        &m.deletion_timestamp,
        endpoints::pod_ip(p),
        endpoints::is_ready(p),
        endpoints::is_terminal(p),
        spec.map(|s| (&s.hostname, &s.subdomain, &s.node_name)),
        spec.map(|s| s.containers.iter().map(|c| &c.ports).collect::<Vec<_>>()),
    )
}

// === impl Tracker ===

#[derive(Debug, Clone, Copy)]
enum Expect {
    Generation(i64),
    Deleted,
}

/// Service key → slice name → the write expected and when it was made.
type TrackerMap = HashMap<String, HashMap<String, (Expect, Instant)>>;

/// The controller's own slice writes not yet seen in its cache, per Service.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    inner: Arc<Mutex<TrackerMap>>,
}

/// How long an unobserved write holds a Service back at most.
const TRACKER_TTL: Duration = Duration::from_secs(10);

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerMap> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expect(&self, svc: &str, slice: &str, e: Expect) {
        self.lock()
            .entry(svc.to_string())
            .or_default()
            .insert(slice.to_string(), (e, Instant::now()));
    }

    fn deleted_observed(&self, svc: &str, slice: &str) {
        if let Some(m) = self.lock().get_mut(svc) {
            m.remove(slice);
        }
    }

    fn forget(&self, svc: &str) {
        self.lock().remove(svc);
    }

    /// Some of the controller's writes for `svc` are not in `cache` yet.
    fn stale(&self, svc: &str, cache: &Cache<EndpointSlice>) -> bool {
        let (ns, _) = split_key(svc);
        let mut t = self.lock();
        let Some(m) = t.get_mut(svc) else {
            return false;
        };
        m.retain(|name, (e, at)| {
            if at.elapsed() > TRACKER_TTL {
                return false;
            }
            match (e, cache.get(ns, name)) {
                (Expect::Generation(g), Some(s)) => i64::from(s.metadata().generation) < *g,
                (Expect::Generation(_), None) => true,
                (Expect::Deleted, found) => found.is_some(),
            }
        });
        let stale = !m.is_empty();
        if !stale {
            t.remove(svc);
        }
        stale
    }
}

// === the controllers ===

/// What the two controllers' reconciles get.
pub struct SvcCtx {
    pub client: Client,
    pub parts: Parts,
    pub pods: Cache<Pod>,
    pub nodes: Cache<Node>,
    pub max_endpoints_per_slice: usize,
}

impl SvcCtx {
    pub fn stop(&self) {
        self.parts.services.stop();
        self.parts.endpoints.stop();
        self.parts.slices.stop();
        self.parts.q_ep.shutdown();
        self.parts.q_slice.shutdown();
        self.parts.q_mirror.shutdown();
    }

    pub async fn wait_synced(&self) {
        self.parts.services.wait_synced().await;
        self.parts.endpoints.wait_synced().await;
        self.parts.slices.wait_synced().await;
    }

    /// The pods a Service selects, from the label index.
    pub fn pods_for(&self, svc: &Service) -> Vec<Arc<Pod>> {
        let ns = &svc.metadata().namespace;
        let Some(spec) = svc.spec.as_ref() else {
            return vec![];
        };
        let Some(rarest) = spec
            .selector
            .iter()
            .map(|(k, v)| format!("{ns}/{k}={v}"))
            .min_by_key(|k| self.pods.count_index(LABEL_INDEX, k))
        else {
            return vec![];
        };
        self.pods
            .by_index(LABEL_INDEX, &rarest)
            .into_iter()
            .filter(|p| selector_matches(svc, &p.metadata().labels))
            .collect()
    }

    /// Spawn both controllers' workers and enqueue every Service.
    pub fn spawn(self: &Arc<Self>, workers: usize) {
        let c = self.clone();
        tokio::spawn(crate::runtime::run(
            "endpoints",
            self.parts.q_ep.clone(),
            workers,
            move |k| {
                let c = c.clone();
                async move { reconcile_endpoints(&c, k).await }
            },
        ));
        let c = self.clone();
        tokio::spawn(crate::runtime::run(
            "endpointslice",
            self.parts.q_slice.clone(),
            workers,
            move |k| {
                let c = c.clone();
                async move { reconcile_slices(&c, k).await }
            },
        ));
        let c = self.clone();
        tokio::spawn(crate::runtime::run(
            "endpointslicemirroring",
            self.parts.q_mirror.clone(),
            workers,
            move |k| {
                let c = c.clone();
                async move { reconcile_mirror(&c, k).await }
            },
        ));
        for s in self.parts.services.list() {
            let k = key_of(s.metadata());
            self.parts.q_ep.add(k.clone());
            self.parts.q_slice.add(k.clone());
            self.parts.q_mirror.add(k);
        }
    }
}

/// Upstream's `EndpointController.syncService`.
pub async fn reconcile_endpoints(ctx: &SvcCtx, key: String) -> Result<Action> {
    let (ns, name) = split_key(&key);
    let Some(svc) = ctx.parts.services.get(ns, name) else {
        // The Service is gone: so are its Endpoints.
        if ctx.parts.endpoints.get(ns, name).is_some() {
            match ctx
                .client
                .delete::<Endpoints>(ns, name, &DeleteParams::background())
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::Await);
    };
    // Selectorless Services keep user-managed Endpoints; ExternalName ones get none.
    if !is_managed(&svc) {
        return Ok(Action::Await);
    }
    let pods = ctx.pods_for(&svc);
    let refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let current = ctx.parts.endpoints.get(ns, name);
    let Some(new) = endpoints::desired(&svc, &refs, current.as_deref()) else {
        return Ok(Action::Await);
    };
    let res = if current.is_some() {
        ctx.client.update(&new).await.map(drop)
    } else {
        ctx.client.create(&new).await.map(drop)
    };
    match res {
        Ok(()) => Ok(Action::Await),
        // The namespace is being deleted, or the cache is behind: retried with back-off.
        Err(e) => Err(e.into()),
    }
}

/// Upstream's `EndpointSliceController.syncService`.
pub async fn reconcile_slices(ctx: &SvcCtx, key: String) -> Result<Action> {
    let (ns, name) = split_key(&key);
    let Some(svc) = ctx.parts.services.get(ns, name) else {
        // Owned slices go with the Service (garbage collection).
        ctx.parts.tracker.forget(&key);
        return Ok(Action::Await);
    };
    if !is_managed(&svc) {
        return Ok(Action::Await);
    }
    if ctx.parts.tracker.stale(&key, &ctx.parts.slices) {
        return Ok(Action::Requeue(Duration::from_millis(50)));
    }
    let pods = ctx.pods_for(&svc);
    let refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let nodes = &ctx.nodes;
    let desired = endpointslice::desired(&svc, &refs, |n| {
        nodes
            .get("", n)
            .and_then(|n| n.metadata().labels.get(endpointslice::ZONE_LABEL).cloned())
    });
    let existing = ctx.parts.slices.by_index(SERVICE_INDEX, &key);
    let existing: Vec<&EndpointSlice> = existing
        .iter()
        .map(|s| s.as_ref())
        .filter(|s| {
            s.metadata().owner_references.is_empty()
                || s.metadata()
                    .owner_references
                    .iter()
                    .any(|r| r.uid == svc.metadata().uid)
        })
        .collect();
    let plan = endpointslice::reconcile(&svc, desired, &existing, ctx.max_endpoints_per_slice);
    write_plan(ctx, &ctx.parts.tracker, &key, plan).await
}

/// Upstream's `EndpointSliceMirroringController.syncEndpoints`: the slices of a selectorless
/// Service mirror its Endpoints; otherwise it has no mirrored slices.
pub async fn reconcile_mirror(ctx: &SvcCtx, key: String) -> Result<Action> {
    let (ns, name) = split_key(&key);
    let svc = ctx.parts.services.get(ns, name);
    let eps = ctx.parts.endpoints.get(ns, name);
    let mirror = match (&svc, &eps) {
        (Some(s), Some(e)) => mirroring::should_mirror(s, e),
        _ => false,
    };
    let t = &ctx.parts.mirror_tracker;
    if t.stale(&key, &ctx.parts.slices) {
        return Ok(Action::Requeue(Duration::from_millis(50)));
    }
    let existing = ctx.parts.slices.by_index(MIRROR_INDEX, &key);
    if existing.is_empty() && !mirror {
        t.forget(&key);
        return Ok(Action::Await);
    }
    let existing: Vec<&EndpointSlice> = existing.iter().map(|s| s.as_ref()).collect();
    let plan = mirroring::reconcile(eps.as_deref().filter(|_| mirror), &existing);
    write_plan(ctx, t, &key, plan).await
}

async fn write_plan(
    ctx: &SvcCtx,
    t: &Tracker,
    key: &str,
    plan: endpointslice::Plan,
) -> Result<Action> {
    let (ns, _) = split_key(key);
    for s in &plan.delete {
        let n = &s.metadata().name;
        match ctx
            .client
            .delete::<EndpointSlice>(ns, n, &DeleteParams::background())
            .await
        {
            Ok(()) => t.expect(key, n, Expect::Deleted),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    for s in &plan.update {
        let w = ctx.client.update(s).await?;
        t.expect(
            key,
            &w.metadata().name,
            Expect::Generation(i64::from(w.metadata().generation)),
        );
    }
    for s in &plan.create {
        let w = ctx.client.create(s).await?;
        t.expect(
            key,
            &w.metadata().name,
            Expect::Generation(i64::from(w.metadata().generation)),
        );
    }
    Ok(Action::Await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_client::WatchEvent;

    #[tokio::test(start_paused = true)]
    async fn the_tracker_holds_a_service_until_its_writes_are_seen() {
        let cache: Cache<EndpointSlice> = Informer::detached().start();
        let t = Tracker::default();
        assert!(!t.stale("default/web", &cache));
        t.expect("default/web", "web-abc", Expect::Generation(2));
        assert!(t.stale("default/web", &cache), "not in the cache yet");
        let mut s = EndpointSlice::default();
        let m = s.metadata_mut();
        m.name = "web-abc".into();
        m.namespace = "default".into();
        m.generation = 1;
        m.resource_version = "5".into();
        cache.apply(WatchEvent::Added(s.clone()));
        assert!(t.stale("default/web", &cache), "an older generation");
        s.metadata_mut().generation = 2;
        s.metadata_mut().resource_version = "6".into();
        cache.apply(WatchEvent::Modified(s.clone()));
        assert!(!t.stale("default/web", &cache));

        t.expect("default/web", "web-abc", Expect::Deleted);
        assert!(t.stale("default/web", &cache), "still there");
        cache.apply(WatchEvent::Deleted(s));
        assert!(!t.stale("default/web", &cache));

        t.expect("default/web", "web-gone", Expect::Generation(1));
        tokio::time::advance(TRACKER_TTL + Duration::from_secs(1)).await;
        assert!(!t.stale("default/web", &cache), "expired");
    }
}
