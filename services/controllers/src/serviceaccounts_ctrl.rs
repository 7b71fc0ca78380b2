//! The serviceaccounts controller (upstream's ServiceAccountsController): every namespace that
//! is not terminating has a ServiceAccount named `default`; one deleted is made again. Pods
//! get `serviceAccountName: default` from the store's ServiceAccount admission.
use std::sync::Arc;

use coxswain_api::v1::{Namespace, ObjectMeta, ServiceAccount};
use coxswain_api::Resource;
use coxswain_client::{Cache, Client, Event, Informer, RateLimit, WorkQueue};

use crate::runtime::{Action, Result};

/// The name of the ServiceAccount every namespace has.
pub const DEFAULT: &str = "default";

/// The ServiceAccount to make in a namespace, if any: none while the namespace is
/// terminating (or gone), or when it has one already.
pub fn wanted(ns: Option<&Namespace>, existing: Option<&ServiceAccount>) -> Option<ServiceAccount> {
    let ns = ns?;
    let terminating = crate::runtime::namespace_terminating(ns);
    if terminating || existing.is_some() {
        return None;
    }
    Some(ServiceAccount {
        metadata: Some(ObjectMeta {
            name: DEFAULT.into(),
            namespace: ns.metadata().name.clone(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub struct ServiceAccountsCtx {
    client: Client,
    namespaces: Cache<Namespace>,
    accounts: Cache<ServiceAccount>,
    queue: WorkQueue<String>,
}

/// Start the informers (namespaces, ServiceAccounts) and the workers; keys are namespaces.
pub fn start(client: Client, rl: RateLimit, workers: usize) -> Arc<ServiceAccountsCtx> {
    let queue = WorkQueue::named(rl, "serviceaccount");
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
    let accounts = {
        let q = queue.clone();
        Informer::<ServiceAccount>::new(client.clone())
            .on_event(move |ev: &Event<ServiceAccount>| {
                if let Event::Deleted(o) = ev {
                    if o.metadata().name == DEFAULT {
                        q.add(o.metadata().namespace.clone());
                    }
                }
            })
            .start()
    };
    let ctx = Arc::new(ServiceAccountsCtx {
        client,
        namespaces,
        accounts,
        queue,
    });
    let c = ctx.clone();
    tokio::spawn(async move {
        c.namespaces.wait_synced().await;
        c.accounts.wait_synced().await;
        for n in c.namespaces.list() {
            c.queue.add(n.metadata().name.clone());
        }
        let c2 = c.clone();
        crate::runtime::run("serviceaccount", c.queue.clone(), workers, move |k| {
            let c3 = c2.clone();
            async move { c3.sync(k).await }
        })
        .await;
    });
    ctx
}

impl ServiceAccountsCtx {
    pub fn stop(&self) {
        self.namespaces.stop();
        self.accounts.stop();
        self.queue.shutdown();
    }

    async fn sync(&self, ns: String) -> Result<Action> {
        let namespace = self.namespaces.get("", &ns);
        let existing = self.accounts.get(&ns, DEFAULT);
        if let Some(sa) = wanted(namespace.as_deref(), existing.as_deref()) {
            match self.client.create(&sa).await {
                Ok(_) => {}
                // Made since our cache looked, or the namespace began terminating.
                Err(e) if e.is_already_exists() || e.is_namespace_terminating() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::Await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, phase: &str) -> Namespace {
        Namespace {
            metadata: Some(ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            status: Some(coxswain_api::v1::NamespaceStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_active_namespace_gets_a_default_account_once() {
        let sa = wanted(Some(&ns("team", "Active")), None).expect("made");
        assert_eq!(sa.metadata().name, "default");
        assert_eq!(sa.metadata().namespace, "team");
        assert!(wanted(Some(&ns("team", "Active")), Some(&sa)).is_none());
        assert!(wanted(Some(&ns("team", "Terminating")), None).is_none());
        assert!(wanted(None, None).is_none());
    }
}
