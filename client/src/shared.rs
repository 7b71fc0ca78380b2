//! One informer per kind for every component of a process, as client-go's
//! SharedInformerFactory: `coxswain up` runs the scheduler, the controllers and the node
//! lifecycle controller in one process, and each used to hold its own pod informer: three
//! watches the store encoded and sent, and three decodes of every pod event. Through a factory
//! there is one watch and one decode per event; every component adds its indexes and handlers
//! to that informer and reads the same cache (the same `Arc`'d objects).
//!
//! - [`SharedInformers::informer`] gives the usual [`Informer`] builder. Its
//!   [`Informer::start`] starts no reflector: it joins the factory's informer of the kind
//!   (creating it on first use) and returns its cache. A builder that asks for a namespace,
//!   a selector or a transform cannot share a cache of everything and gets its own informer.
//! - [`SharedInformers::start`] starts the reflectors (client-go's `factory.Start`); an
//!   informer first asked for after that starts at once. Until then the caches are empty and
//!   not synced, so components register first and the process starts the factory once.
//! - Handlers run in registration order, from the one reflector task, after the change is in
//!   the cache. A handler added to an informer that already holds objects gets them as Added
//!   (then Synced if it is), as client-go's AddEventHandler on a running informer does.
//! - Indexes are known by name: the first registration of a name defines it (components that
//!   use the same name must mean the same function).
//! - A component's [`Cache::stop`] removes its handlers; the watch ends when the last
//!   component stops, or at [`SharedInformers::stop`].
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coxswain_api::Resource;

use crate::client::{Client, ListParams};
use crate::informer::{Cache, Handler, IndexFn, Informer, DEFAULT_BACKOFF};

/// The shared informers of one process. Cheap to clone.
#[derive(Clone)]
pub struct SharedInformers {
    inner: Arc<Inner>,
}

struct Inner {
    /// The client every shared informer lists and watches with.
    client: Client,
    state: Mutex<FactoryState>,
}

#[derive(Default)]
struct FactoryState {
    started: bool,
    /// By the kind's type: the one cache of each kind asked for.
    informers: HashMap<TypeId, Arc<dyn Shared>>,
}

/// What the factory does with an informer whatever its kind.
trait Shared: Send + Sync {
    fn run(&self, client: &Client);
    fn stop(&self);
    fn as_any(&self) -> &dyn Any;
}

impl<R: Resource + Send + Sync + 'static> Shared for Cache<R> {
    fn run(&self, client: &Client) {
        Cache::run(
            self,
            client.clone(),
            String::new(),
            ListParams::default(),
            DEFAULT_BACKOFF,
        );
    }

    fn stop(&self) {
        self.stop_all();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl SharedInformers {
    /// A factory whose informers list and watch through `client` (every kind, every
    /// namespace: the client's identity must be allowed to).
    pub fn new(client: Client) -> Self {
        SharedInformers {
            inner: Arc::new(Inner {
                client,
                state: Mutex::new(FactoryState::default()),
            }),
        }
    }

    /// An informer builder for `R` that joins this factory's informer of the kind on
    /// [`Informer::start`].
    pub fn informer<R: Resource + Send + Sync + 'static>(&self) -> Informer<R> {
        Informer::shared(self.inner.client.clone(), self.clone())
    }

    /// Start every informer asked for so far; any asked for later starts at once.
    pub fn start(&self) {
        let mut st = self.lock();
        st.started = true;
        for i in st.informers.values() {
            i.run(&self.inner.client);
        }
    }

    /// End every shared informer's watch (the caches keep their contents).
    pub fn stop(&self) {
        for i in self.lock().informers.values() {
            i.stop();
        }
    }

    /// How many informers (kinds) the factory holds.
    pub fn len(&self) -> usize {
        self.lock().informers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FactoryState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Informer::start`] of a builder from this factory: the kind's cache with these
    /// indexes and handlers added, as this component's handle.
    pub(crate) fn join<R: Resource + Send + Sync + 'static>(
        &self,
        indexes: Vec<(String, IndexFn<R>)>,
        handlers: Vec<Handler<R>>,
    ) -> Cache<R> {
        let cache = {
            let mut st = self.lock();
            let started = st.started;
            let entry = st.informers.entry(TypeId::of::<R>()).or_insert_with(|| {
                let c = Cache::<R>::new_shared();
                if started {
                    Shared::run(&c, &self.inner.client);
                }
                Arc::new(c)
            });
            match entry.as_any().downcast_ref::<Cache<R>>() {
                Some(c) => c.clone(),
                // Unreachable: the map is keyed by R's TypeId.
                None => Cache::<R>::new_shared(),
            }
        };
        // Outside the factory's lock: the replay calls the component's handlers.
        cache.register(indexes, handlers)
    }
}

#[cfg(test)]
mod tests;
