//! Shared informers: one list + watch per kind (and selector) into an indexed in-memory cache,
//! with event handlers called after each change is applied.
//!
//! The reflector is an explicit state machine: List (then replace the cache, emitting the
//! differences and `Synced`), Watch from the list's resourceVersion, and back to List when the
//! store says the version is too old (`Gone`). Transport failures retry with capped back-off and
//! resume the watch from the last version seen, so no event is lost or replayed.
//!
//! A relist never moves the cache back in time, though the store replica it reaches may trail
//! the one that fed the cache: as client-go's reflector, it lists "not older than" the last
//! resourceVersion the cache synced to (the store waits for its own cache to reach it), and
//! when the store answers Expired or "Too large resource version" it lists again at once with
//! no resourceVersion, a consistent read, as its first list is (see
//! [`relist_resource_version`]).
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use coxswain_api::Resource;
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::client::{object_key, Client, ListParams, WatchEvent};
use crate::error::Error;

/// What an informer's handlers see, after the cache has applied it.
#[derive(Debug)]
pub enum Event<R> {
    Added(Arc<R>),
    Modified {
        old: Arc<R>,
        new: Arc<R>,
    },
    Deleted(Arc<R>),
    /// The cache holds a complete list (after the first list, and after every relist).
    Synced,
}

impl<R> Event<R> {
    /// The object the event is about (the new state for Modified); None for Synced.
    pub fn object(&self) -> Option<&Arc<R>> {
        match self {
            Event::Added(o) | Event::Deleted(o) => Some(o),
            Event::Modified { new, .. } => Some(new),
            Event::Synced => None,
        }
    }
}

pub(crate) type IndexFn<R> = Arc<dyn Fn(&R) -> Vec<String> + Send + Sync>;
pub(crate) type Handler<R> = Arc<dyn Fn(&Event<R>) + Send + Sync>;
type TransformFn<R> = Arc<dyn Fn(R) -> R + Send + Sync>;

/// The name of the built-in index over ownerReferences' uids.
pub const OWNER_INDEX: &str = "owner";
/// The name of the built-in index over namespaces.
pub const NAMESPACE_INDEX: &str = "namespace";

/// Builds and starts an informer.
pub struct Informer<R: Resource> {
    client: Option<Client>,
    namespace: String,
    params: ListParams,
    indexes: Vec<(String, IndexFn<R>)>,
    handlers: Vec<Handler<R>>,
    transform: Option<TransformFn<R>>,
    backoff: (Duration, Duration),
    /// Built by [`crate::SharedInformers::informer`]: `start` joins that factory's informer
    /// of the kind instead of starting one of its own.
    shared: Option<crate::SharedInformers>,
}

/// The reflector's retry back-off after transport errors (base, cap) unless set.
pub(crate) const DEFAULT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));

impl<R: Resource + Send + Sync + 'static> Informer<R> {
    pub fn new(client: Client) -> Self {
        Self::with_client(Some(client))
    }

    /// A builder that joins `shared`'s one informer of the kind on [`Informer::start`].
    pub(crate) fn shared(client: Client, shared: crate::SharedInformers) -> Self {
        Informer {
            shared: Some(shared),
            ..Self::new(client)
        }
    }

    fn with_client(client: Option<Client>) -> Self {
        let i = Informer {
            client,
            namespace: String::new(),
            params: ListParams::default(),
            indexes: Vec::new(),
            handlers: Vec::new(),
            transform: None,
            backoff: DEFAULT_BACKOFF,
            shared: None,
        };
        i.index(OWNER_INDEX, |o: &R| {
            o.metadata()
                .owner_references
                .iter()
                .map(|r| r.uid.clone())
                .collect()
        })
        .index(NAMESPACE_INDEX, |o: &R| {
            vec![o.metadata().namespace.clone()]
        })
    }
    /// A cache with this informer's indexes and handlers that no reflector feeds: tests and
    /// fakes fill it with [`Cache::apply`].
    pub fn detached() -> Self {
        Self::with_client(None)
    }

    /// Only objects in this namespace ("" = all).
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    pub fn label_selector(mut self, s: impl Into<String>) -> Self {
        self.params.label_selector = s.into();
        self
    }

    pub fn field_selector(mut self, s: impl Into<String>) -> Self {
        self.params.field_selector = s.into();
        self
    }

    /// Add an index: `f` gives the values an object is found under.
    pub fn index(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&R) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.indexes.push((name.into(), Arc::new(f)));
        self
    }

    /// Call `f` after every change the cache applies, in order, from the reflector task. Keep
    /// it cheap (enqueue a key); it must not block.
    pub fn on_event(mut self, f: impl Fn(&Event<R>) + Send + Sync + 'static) -> Self {
        self.handlers.push(Arc::new(f));
        self
    }

    /// Transform every object from list and watch before the cache stores it (client-go's
    /// `SetTransform`): the cache, the indexes and the handlers see only what `f` returns, so
    /// an informer can keep less than the store sends (the node agent's pods). `f` must keep
    /// the metadata's name, namespace and resourceVersion, and whatever the indexes read.
    /// Deleted objects go through it too. One transform per informer; a second replaces it.
    pub fn transform(mut self, f: impl Fn(R) -> R + Send + Sync + 'static) -> Self {
        self.transform = Some(Arc::new(f));
        self
    }

    /// Retry back-off after transport errors (base, cap).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = (base, max);
        self
    }

    /// Start the reflector on the current tokio runtime; the cache fills in the background
    /// (see [`Cache::wait_synced`]). A detached informer starts nothing.
    ///
    /// A builder from [`crate::SharedInformers::informer`] starts no reflector of its own: it
    /// adds its indexes and handlers to the factory's one informer of the kind and returns
    /// that informer's cache (see [`crate::shared`]). One that asks for a namespace, a
    /// selector or a transform cannot share it and gets an informer of its own.
    pub fn start(self) -> Cache<R> {
        let shareable = self.namespace.is_empty()
            && self.params.label_selector.is_empty()
            && self.params.field_selector.is_empty()
            && self.transform.is_none();
        match self.shared {
            Some(shared) if shareable => shared.join(self.indexes, self.handlers),
            _ => {
                let cache = Cache::new(self.indexes, self.handlers, self.transform);
                if let Some(client) = self.client {
                    cache.run(client, self.namespace, self.params, self.backoff);
                }
                cache
            }
        }
    }
}

struct State<R> {
    objects: HashMap<String, Arc<R>>,
    /// index name → value → keys.
    indexes: HashMap<String, HashMap<String, HashSet<String>>>,
    resource_version: String,
}

impl<R> Default for State<R> {
    fn default() -> Self {
        State {
            objects: HashMap::new(),
            indexes: HashMap::new(),
            resource_version: String::new(),
        }
    }
}

struct CacheInner<R> {
    state: RwLock<State<R>>,
    /// Lock order: `state`, then `index_fns`.
    index_fns: RwLock<Vec<(String, IndexFn<R>)>>,
    /// Each with the id of the registration that added it (0: the builder's own). Held for
    /// reading while a change is applied and delivered, so a handler added meanwhile (a
    /// shared informer's) sees every change once: in its replay or as an event, never both.
    /// Lock order: `handlers`, then `state`.
    handlers: RwLock<Vec<(u64, Handler<R>)>>,
    transform: Option<TransformFn<R>>,
    synced: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    /// Registrations of a shared informer not stopped yet; the last one's stop ends the watch.
    live: AtomicUsize,
    next_registration: AtomicU64,
}

/// A read handle on an informer's cache. Cheap to clone.
pub struct Cache<R> {
    inner: Arc<CacheInner<R>>,
    /// The handle of one component's registration on a shared informer: its `stop` removes
    /// that component's handlers (and ends the watch once no registration is left).
    registration: Option<Arc<Registration>>,
}

pub(crate) struct Registration {
    id: u64,
    stopped: AtomicBool,
}

impl<R> Clone for Cache<R> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
            registration: self.registration.clone(),
        }
    }
}

fn key_of<R: Resource>(o: &R) -> String {
    let m = o.metadata();
    object_key(&m.namespace, &m.name)
}

impl<R: Resource + Send + Sync + 'static> Cache<R> {
    fn new(
        index_fns: Vec<(String, IndexFn<R>)>,
        handlers: Vec<Handler<R>>,
        transform: Option<TransformFn<R>>,
    ) -> Self {
        let (synced, _) = watch::channel(false);
        Cache {
            inner: Arc::new(CacheInner {
                state: RwLock::new(State::default()),
                index_fns: RwLock::new(index_fns),
                handlers: RwLock::new(handlers.into_iter().map(|h| (0, h)).collect()),
                transform,
                synced,
                task: Mutex::new(None),
                live: AtomicUsize::new(0),
                next_registration: AtomicU64::new(1),
            }),
            registration: None,
        }
    }

    /// The cache of a shared informer: the built-in indexes, no handlers yet.
    pub(crate) fn new_shared() -> Self {
        let builder = Informer::<R>::with_client(None);
        Cache::new(builder.indexes, Vec::new(), None)
    }

    /// Start the reflector feeding this cache (once; later calls do nothing).
    pub(crate) fn run(
        &self,
        client: Client,
        namespace: String,
        params: ListParams,
        backoff: (Duration, Duration),
    ) {
        let mut t = self.inner.task.lock().unwrap_or_else(|e| e.into_inner());
        if t.is_none() {
            let task = tokio::spawn(reflect(client, namespace, params, self.clone(), backoff));
            *t = Some(task.abort_handle());
        }
    }

    /// One component joins this (shared) informer: indexes of a name the cache does not have
    /// yet are built over what it holds (a name it has is kept: registrants that name the
    /// same index must mean the same function), and the handlers get what the cache holds
    /// as Added, then Synced if it is (client-go's AddEventHandler on a running informer),
    /// before any later change. Returns the component's handle.
    pub(crate) fn register(
        &self,
        indexes: Vec<(String, IndexFn<R>)>,
        handlers: Vec<Handler<R>>,
    ) -> Cache<R> {
        let mut hs = self.handlers_mut();
        let held = {
            let mut st = self.write();
            let mut fns = self.index_fns_mut();
            for (name, f) in indexes {
                if fns.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                let mut idx: HashMap<String, HashSet<String>> = HashMap::new();
                for (key, o) in &st.objects {
                    for v in f(o) {
                        idx.entry(v).or_default().insert(key.clone());
                    }
                }
                st.indexes.insert(name.clone(), idx);
                fns.push((name, f));
            }
            st.objects.values().cloned().collect::<Vec<_>>()
        };
        let synced = self.is_synced();
        let id = self.inner.next_registration.fetch_add(1, Ordering::Relaxed);
        for h in handlers {
            for o in &held {
                h(&Event::Added(o.clone()));
            }
            if synced {
                h(&Event::Synced);
            }
            hs.push((id, h));
        }
        self.inner.live.fetch_add(1, Ordering::SeqCst);
        Cache {
            inner: self.inner.clone(),
            registration: Some(Arc::new(Registration {
                id,
                stopped: AtomicBool::new(false),
            })),
        }
    }

    /// End the watch whatever registrations are left (the factory's stop).
    pub(crate) fn stop_all(&self) {
        if let Ok(mut t) = self.inner.task.lock() {
            if let Some(t) = t.take() {
                t.abort();
            }
        }
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, Vec<(u64, Handler<R>)>> {
        self.inner
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn handlers_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<(u64, Handler<R>)>> {
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn index_fns(&self) -> std::sync::RwLockReadGuard<'_, Vec<(String, IndexFn<R>)>> {
        self.inner
            .index_fns
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn index_fns_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<(String, IndexFn<R>)>> {
        self.inner
            .index_fns
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State<R>> {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State<R>> {
        self.inner.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<R>> {
        self.read()
            .objects
            .get(&object_key(namespace, name))
            .cloned()
    }

    /// By cache key ("ns/name" or "name").
    pub fn get_key(&self, key: &str) -> Option<Arc<R>> {
        self.read().objects.get(key).cloned()
    }

    /// Every object (in no particular order).
    pub fn list(&self) -> Vec<Arc<R>> {
        self.read().objects.values().cloned().collect()
    }

    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<R>> {
        self.by_index(NAMESPACE_INDEX, namespace)
    }

    /// Objects found under `value` in index `index` (empty for an unknown index).
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<R>> {
        let st = self.read();
        let Some(keys) = st.indexes.get(index).and_then(|m| m.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| st.objects.get(k).cloned())
            .collect()
    }

    /// How many objects `by_index` would return, without cloning them.
    pub fn count_index(&self, index: &str, value: &str) -> usize {
        self.read()
            .indexes
            .get(index)
            .and_then(|m| m.get(value))
            .map_or(0, |k| k.len())
    }

    /// Objects with an ownerReference to `uid`.
    pub fn by_owner(&self, uid: &str) -> Vec<Arc<R>> {
        self.by_index(OWNER_INDEX, uid)
    }

    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resourceVersion the cache is at.
    pub fn resource_version(&self) -> String {
        self.read().resource_version.clone()
    }

    pub fn is_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// Wait until the first complete list is in.
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Stop the reflector (the cache keeps its contents). On a shared informer, remove this
    /// component's handlers; the watch ends when the last component stops (or the factory).
    pub fn stop(&self) {
        let Some(reg) = &self.registration else {
            return self.stop_all();
        };
        if reg.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| *id != reg.id);
        if self.inner.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.stop_all();
        }
    }

    /// Apply one change and call the handlers; what the reflector does for each watch event.
    /// Public for tests and fakes (detached informers).
    pub fn apply(&self, ev: WatchEvent<R>) {
        // Transformed before the cache's lock is taken: the transform may take its own locks.
        let ev = match ev {
            WatchEvent::Added(o) => WatchEvent::Added(self.transformed(o)),
            WatchEvent::Modified(o) => WatchEvent::Modified(self.transformed(o)),
            WatchEvent::Deleted(o) => WatchEvent::Deleted(self.transformed(o)),
            b @ WatchEvent::Bookmark(_) => b,
        };
        let handlers = self.handlers();
        let event = {
            let mut st = self.write();
            match ev {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    let rv = o.metadata().resource_version.clone();
                    let new = Arc::new(o);
                    let old = self.insert(&mut st, new.clone());
                    if !rv.is_empty() {
                        st.resource_version = rv;
                    }
                    Some(match old {
                        Some(old) => Event::Modified { old, new },
                        None => Event::Added(new),
                    })
                }
                WatchEvent::Deleted(o) => {
                    let rv = o.metadata().resource_version.clone();
                    if !rv.is_empty() {
                        st.resource_version = rv;
                    }
                    let key = key_of(&o);
                    // The event carries the last state; the cached copy stands in for an
                    // event without one.
                    self.remove(&mut st, &key).map(|old| {
                        Event::Deleted(if o.metadata().name.is_empty() {
                            old
                        } else {
                            Arc::new(o)
                        })
                    })
                }
                WatchEvent::Bookmark(rv) => {
                    st.resource_version = rv;
                    None
                }
            }
        };
        if let Some(e) = event {
            notify(&handlers, &e);
        }
    }

    /// Replace the whole contents with a fresh list, emitting the differences, then Synced.
    pub fn replace(&self, items: Vec<R>, resource_version: String) {
        let mut events = Vec::new();
        // Objects the cache holds at the same resourceVersion are kept as they are (not
        // transformed again); the others are transformed before the cache's lock is taken.
        let mut items: Vec<(String, Option<R>)> = {
            let st = self.read();
            items
                .into_iter()
                .map(|o| {
                    let key = key_of(&o);
                    let unchanged = st.objects.get(&key).is_some_and(|old| {
                        old.metadata().resource_version == o.metadata().resource_version
                            && !o.metadata().resource_version.is_empty()
                    });
                    (key, (!unchanged).then_some(o))
                })
                .collect()
        };
        for (_, o) in items.iter_mut() {
            if let Some(x) = o.take() {
                *o = Some(self.transformed(x));
            }
        }
        let handlers = self.handlers();
        {
            let mut st = self.write();
            let mut seen = HashSet::with_capacity(items.len());
            for (key, o) in items {
                seen.insert(key);
                let Some(o) = o else {
                    continue;
                };
                let new = Arc::new(o);
                match self.insert(&mut st, new.clone()) {
                    Some(old) => events.push(Event::Modified { old, new }),
                    None => events.push(Event::Added(new)),
                }
            }
            let gone: Vec<String> = st
                .objects
                .keys()
                .filter(|k| !seen.contains(*k))
                .cloned()
                .collect();
            for k in gone {
                if let Some(old) = self.remove(&mut st, &k) {
                    events.push(Event::Deleted(old));
                }
            }
            st.resource_version = resource_version;
        }
        for e in &events {
            notify(&handlers, e);
        }
        self.inner.synced.send_replace(true);
        notify(&handlers, &Event::Synced);
    }

    fn transformed(&self, o: R) -> R {
        match &self.inner.transform {
            Some(f) => f(o),
            None => o,
        }
    }

    fn insert(&self, st: &mut State<R>, new: Arc<R>) -> Option<Arc<R>> {
        let key = key_of(&*new);
        let old = st.objects.insert(key.clone(), new.clone());
        let fns = self.index_fns();
        for (name, f) in fns.iter() {
            let before = old.as_ref().map(|o| f(o)).unwrap_or_default();
            let after = f(&new);
            // The key is already under every value of `before`: an update that changes none of
            // them (most do: a status write, a bind) leaves the index as it is.
            if old.is_some() && before == after {
                continue;
            }
            if !st.indexes.contains_key(name) {
                st.indexes.insert(name.clone(), HashMap::new());
            }
            let Some(idx) = st.indexes.get_mut(name) else {
                continue;
            };
            for v in &before {
                if !after.contains(v) {
                    if let Some(set) = idx.get_mut(v) {
                        set.remove(&key);
                        if set.is_empty() {
                            idx.remove(v);
                        }
                    }
                }
            }
            for v in after {
                if !before.contains(&v) {
                    idx.entry(v).or_default().insert(key.clone());
                }
            }
        }
        old
    }

    fn remove(&self, st: &mut State<R>, key: &str) -> Option<Arc<R>> {
        let old = st.objects.remove(key)?;
        let fns = self.index_fns();
        for (name, f) in fns.iter() {
            if let Some(idx) = st.indexes.get_mut(name) {
                for v in f(&old) {
                    if let Some(set) = idx.get_mut(&v) {
                        set.remove(key);
                        if set.is_empty() {
                            idx.remove(&v);
                        }
                    }
                }
            }
        }
        Some(old)
    }
}

fn notify<R>(handlers: &[(u64, Handler<R>)], e: &Event<R>) {
    for (_, h) in handlers {
        h(e);
    }
}

/// The reflector: list, watch, relist when too old.
async fn reflect<R: Resource + Send + Sync + 'static>(
    client: Client,
    namespace: String,
    params: ListParams,
    cache: Cache<R>,
    (base, max): (Duration, Duration),
) {
    let mut delay = base;
    let kind = R::KIND.as_str();
    // The last synced resourceVersion could not be listed at (client-go's
    // isLastSyncResourceVersionUnavailable): the next list is a consistent read.
    let mut unavailable = false;
    'list: loop {
        let asked = relist_resource_version(&cache.resource_version(), unavailable).to_string();
        let (items, rv) = match client.list_at::<R>(&namespace, &params, &asked).await {
            // A store that ignored the resourceVersion (one older than this client): its list
            // would take the cache back in time.
            Ok((_, rv)) if older_than_asked(&asked, &rv) => {
                tracing::warn!(kind, asked, got = %rv, "the store listed older than asked; listing its most recent state");
                unavailable = true;
                continue;
            }
            Ok(x) => x,
            // Expired, or Too large resource version (the store did not reach it in time):
            // at once with no resourceVersion, as client-go.
            Err(e) if e.is_gone() && !asked.is_empty() => {
                tracing::debug!(kind, asked, error = %e, "informer list at the last synced resourceVersion failed; listing the most recent state");
                unavailable = true;
                continue;
            }
            // Warnings, as client-go's reflector ("failed to list", "watch ... ended with"): a
            // component that cannot reach or authenticate to its store says so at the default
            // level instead of never syncing in silence. The back-off spaces them.
            Err(e) => {
                tracing::warn!(kind, error = %e, retry_in = ?delay, "informer list failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(max);
                continue;
            }
        };
        unavailable = false;
        cache.replace(items, rv);
        loop {
            let rv = cache.resource_version();
            let mut stream = match client.watch_traced::<R>(&namespace, &params, &rv).await {
                Ok(s) => s,
                Err(Error::Gone(_)) => continue 'list,
                Err(e) => {
                    tracing::warn!(kind, error = %e, retry_in = ?delay, "informer watch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(max);
                    continue;
                }
            };
            delay = base;
            while let Some(ev) = stream.next().await {
                match ev {
                    // Handlers run with the event's request id current: the keys they queue
                    // keep it (crate::trace).
                    Ok((ev, id)) => crate::trace::with_event(id.as_ref(), || cache.apply(ev)),
                    Err(Error::Gone(_)) => continue 'list,
                    Err(e) => {
                        tracing::warn!(kind, error = %e, retry_in = ?delay, "informer watch broke; resuming");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(max);
                        break;
                    }
                }
            }
        }
    }
}

/// The resourceVersion a (re)list asks for, as client-go's reflector: the last resourceVersion
/// the cache synced to (a list not older than what it holds, `relistResourceVersion`), and ""
/// (the most recent state, a consistent read) for the first list and once a list at that
/// version failed as Expired or Too large. The first list is consistent as client-go's
/// WatchList initial sync is (`rewatchResourceVersion`, KEP-3157), not "0" (any state) as its
/// older list-then-watch: a component that starts or takes over leadership through a lagging
/// replica does not act on a state older than what others have already written.
fn relist_resource_version(last_synced: &str, unavailable: bool) -> &str {
    if unavailable {
        ""
    } else {
        last_synced
    }
}

/// A list answered at `got` for a list asked not older than `asked`, older than that. A
/// consistent read ("") is never refused: it is the store's truth (even one restored older).
fn older_than_asked(asked: &str, got: &str) -> bool {
    match (asked.parse::<i64>(), got.parse::<i64>()) {
        (Ok(a), Ok(g)) => a > 0 && g < a,
        (Ok(a), Err(_)) => a > 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
