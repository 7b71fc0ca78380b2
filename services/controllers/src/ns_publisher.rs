//! One named object in every namespace that is not terminating: the loop shared by upstream's
//! ServiceAccountsController (`default`, [`crate::serviceaccounts_ctrl`]) and the
//! root-ca-cert-publisher (`kube-root-ca.crt`, [`crate::rootca_ctrl`]).
//!
//! Keys are namespace names. A namespace added or changed, or the object changed or deleted,
//! queues its namespace; after both caches have synced every namespace is queued once. Each
//! controller gives only its pure `wanted` decision: `None` leaves the namespace alone, an
//! object without a resourceVersion is created, one with the cached object's resourceVersion
//! replaces it.
use std::sync::Arc;

use coxswain_api::v1::Namespace;
use coxswain_api::Resource;
use coxswain_client::{Cache, Client, Event, Informer, RateLimit, WorkQueue};

use crate::runtime::{Action, Result};

/// What to keep in each namespace, for a resource `R`.
pub struct Spec<R> {
    /// The controller's name: its work queue's and its workers' (metrics labels).
    pub controller: &'static str,
    /// The object's name in every namespace.
    pub object: &'static str,
    /// The object to write, given the namespace (None: gone) and the cached object.
    pub wanted: Wanted<R>,
}

/// A controller's pure decision (see [`Spec::wanted`]).
pub type Wanted<R> = Box<dyn Fn(Option<&Namespace>, Option<&R>) -> Option<R> + Send + Sync>;

pub struct Publisher<R: Resource> {
    client: Client,
    spec: Spec<R>,
    namespaces: Cache<Namespace>,
    objects: Cache<R>,
    queue: WorkQueue<String>,
}

/// Start the two informers and the workers.
pub fn start<R: Resource + Send + Sync + 'static>(
    client: Client,
    rl: RateLimit,
    workers: usize,
    spec: Spec<R>,
) -> Arc<Publisher<R>> {
    let queue = WorkQueue::named(rl, spec.controller);
    let namespaces = {
        let q = queue.clone();
        Informer::<Namespace>::new(client.clone())
            .on_event(move |ev: &Event<Namespace>| {
                if let Event::Added(o) | Event::Modified { new: o, .. } = ev {
                    q.add(o.metadata().name.clone());
                }
            })
            .start()
    };
    let objects = {
        let q = queue.clone();
        Informer::<R>::new(client.clone())
            .field_selector(format!("metadata.name={}", spec.object))
            .on_event(move |ev: &Event<R>| {
                if let Event::Modified { new: o, .. } | Event::Deleted(o) = ev {
                    q.add(o.metadata().namespace.clone());
                }
            })
            .start()
    };
    let ctx = Arc::new(Publisher {
        client,
        spec,
        namespaces,
        objects,
        queue,
    });
    let c = ctx.clone();
    tokio::spawn(async move {
        c.namespaces.wait_synced().await;
        c.objects.wait_synced().await;
        for n in c.namespaces.list() {
            c.queue.add(n.metadata().name.clone());
        }
        let c2 = c.clone();
        crate::runtime::run(c.spec.controller, c.queue.clone(), workers, move |k| {
            let c3 = c2.clone();
            async move { c3.sync(k).await }
        })
        .await;
    });
    ctx
}

impl<R: Resource + Send + Sync + 'static> Publisher<R> {
    pub fn stop(&self) {
        self.namespaces.stop();
        self.objects.stop();
        self.queue.shutdown();
    }

    async fn sync(&self, ns: String) -> Result<Action> {
        let namespace = self.namespaces.get("", &ns);
        let existing = self.objects.get(&ns, self.spec.object);
        let Some(obj) = (self.spec.wanted)(namespace.as_deref(), existing.as_deref()) else {
            return Ok(Action::Await);
        };
        let r = match existing.is_some() {
            true => self.client.update(&obj).await.map(|_| ()),
            false => self.client.create(&obj).await.map(|_| ()),
        };
        match r {
            Ok(()) => {}
            // Made since our cache looked, or the namespace began terminating.
            Err(e) if e.is_already_exists() || e.is_namespace_terminating() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::Await)
    }
}
