//! The garbage collector and the namespace deleter.
//!
//! Level-triggered: events only say which objects to look at; each work item re-reads the cache
//! and does what the current state calls for, so a repeated or late item is harmless.
//! - A dependent all of whose owners are gone is deleted (Background); one whose owners are all
//!   being deleted in the foreground is deleted in the foreground; dangling references to owners
//!   that are gone while others live are removed.
//! - An owner marked with the `orphan` finalizer has its references removed from every
//!   dependent, then loses the finalizer (and so is deleted).
//! - An owner marked with `foregroundDeletion` has its dependents deleted in the foreground and
//!   loses the finalizer once none are left.
//! - A terminating namespace has everything in it deleted, then loses its `kubernetes`
//!   finalizer. As upstream's namespace controller (`namespaceDeletionGracePeriod`), the
//!   deleter first waits [`crate::StoreConfig::namespace_deletion_grace`] after it saw the
//!   namespace terminating: by then every store replica's admission has seen the mark and
//!   refuses new content, and every create admitted before it has landed, so the listing that
//!   decides the namespace is empty misses nothing (a create does not compare the namespace
//!   in its transaction, as upstream's does not).
use std::collections::{HashMap, HashSet, VecDeque};

use coxswain_api::{Kind, Object};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cache::{EventType, Stored};
use crate::error::StoreError;
use crate::store::{
    DeleteOptions, ListOptions, Propagation, Store, WatchEvent, WatchOptions, FINALIZER_FOREGROUND,
    FINALIZER_NAMESPACE, FINALIZER_ORPHAN,
};

/// Work items processed at once.
const PARALLEL: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Item {
    Dependent(Kind, String, String),
    Owner(String),
    Namespace(String),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    queued: HashSet<Item>,
}

impl Queue {
    fn push(&mut self, item: Item) {
        if self.queued.insert(item.clone()) {
            self.items.push_back(item);
        }
    }
    fn pop(&mut self) -> Option<Item> {
        let i = self.items.pop_front()?;
        self.queued.remove(&i);
        Some(i)
    }
}

/// Terminating namespaces, held back until the grace has passed since this collector first
/// saw each terminating.
struct Terminating {
    grace: std::time::Duration,
    /// By the namespace's uid (a namespace created again under the same name waits again).
    seen: HashMap<String, Instant>,
    /// Namespaces with a wake-up pending on `later`.
    scheduled: HashSet<String>,
    later: mpsc::UnboundedSender<Item>,
}

impl Terminating {
    /// Whether the namespace's item may be processed now; if not, it comes back through
    /// `later` once the grace has passed.
    fn due(&mut self, store: &Store, name: &str) -> bool {
        let ns = match store.get_stored(Kind::Namespace, "", name) {
            Ok(ns) if ns.deleting => ns,
            _ => return true,
        };
        if self.seen.len() >= 1024 {
            // Namespaces that are gone: forget them.
            self.seen.retain(|uid, _| store.get_by_uid(uid).is_some());
        }
        let now = Instant::now();
        let at = *self.seen.entry(ns.uid.to_string()).or_insert(now) + self.grace;
        if now >= at {
            return true;
        }
        if self.scheduled.insert(name.to_string()) {
            let later = self.later.clone();
            let item = Item::Namespace(name.to_string());
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let _ = later.send(item);
            });
        }
        false
    }

    /// An item back from `later`.
    fn returned(&mut self, queue: &mut Queue, item: Item) {
        if let Item::Namespace(name) = &item {
            self.scheduled.remove(name);
        }
        queue.push(item);
    }
}

/// Run the garbage collector until the store is dropped.
pub async fn run(store: Store) {
    let (later, mut returned) = mpsc::unbounded_channel();
    let mut terminating = Terminating {
        grace: store.config().namespace_deletion_grace,
        seen: HashMap::new(),
        scheduled: HashSet::new(),
        later,
    };
    loop {
        let mut queue = Queue::default();
        let from = store.revision();
        sweep(&store, &mut queue);
        let mut rx = match store.watch(WatchOptions {
            resource_version: Some(from),
            ..Default::default()
        }) {
            Ok(rx) => rx,
            Err(e) => {
                tracing::error!(error = %e, "garbage collector cannot watch; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            while let Ok(ev) = rx.try_recv() {
                match ev {
                    Ok(ev) => enqueue_for_event(&store, &mut queue, &ev),
                    Err(_) => break,
                }
            }
            while let Ok(item) = returned.try_recv() {
                terminating.returned(&mut queue, item);
            }
            if queue.items.is_empty() {
                let ev = tokio::select! {
                    ev = rx.recv() => ev,
                    Some(item) = returned.recv() => {
                        terminating.returned(&mut queue, item);
                        continue;
                    }
                };
                match ev {
                    Some(Ok(ev)) => enqueue_for_event(&store, &mut queue, &ev),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "garbage collector fell behind the watch window; resyncing");
                        break;
                    }
                    None => return,
                }
                continue;
            }
            let mut set = JoinSet::new();
            while set.len() < PARALLEL {
                let Some(item) = queue.pop() else { break };
                if let Item::Namespace(name) = &item {
                    if !terminating.due(&store, name) {
                        continue;
                    }
                }
                // The common case (a controller's new object whose owners all live) is decided
                // here, without a task: spawning moves the whole `process` state machine.
                if settled(&store, &item) {
                    continue;
                }
                let s = store.clone();
                set.spawn(Box::pin(async move { process(&s, item).await }));
            }
            while let Some(r) = set.join_next().await {
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "garbage collection step failed");
                }
            }
        }
    }
}

/// Everything that may need collecting now (at start, and after falling behind).
fn sweep(store: &Store, queue: &mut Queue) {
    for kind in Kind::ALL {
        let Ok(list) = store.list(*kind, &ListOptions::default()) else {
            continue;
        };
        for s in list.items {
            enqueue_for_object(queue, &s);
        }
    }
}

fn enqueue_for_object(queue: &mut Queue, s: &Stored) {
    if s.has_owners() {
        queue.push(Item::Dependent(
            s.kind,
            s.namespace().to_string(),
            s.name().to_string(),
        ));
    }
    if s.deleting {
        if s.kind == Kind::Namespace {
            queue.push(Item::Namespace(s.name().to_string()));
        } else {
            queue.push(Item::Owner(s.uid.to_string()));
        }
    }
}

fn enqueue_for_event(store: &Store, queue: &mut Queue, ev: &WatchEvent) {
    let WatchEvent::Change { typ, object } = ev else {
        return;
    };
    match typ {
        EventType::Added | EventType::Modified => enqueue_for_object(queue, object),
        EventType::Deleted => {
            for dep in store.dependents_of(&object.uid) {
                queue.push(Item::Dependent(
                    dep.kind,
                    dep.namespace().to_string(),
                    dep.name().to_string(),
                ));
            }
            for owner in object.owners() {
                queue.push(Item::Owner(owner.to_string()));
            }
            if object.kind.namespaced() {
                if let Ok(ns) = store.get_stored(Kind::Namespace, "", object.namespace()) {
                    if ns.deleting {
                        queue.push(Item::Namespace(object.namespace().to_string()));
                    }
                }
            }
        }
    }
}

fn has_finalizer(obj: &Object, f: &str) -> bool {
    obj.meta().finalizers.iter().any(|x| x == f)
}

async fn delete(store: &Store, s: &Stored, propagation: Propagation) -> Result<(), StoreError> {
    let opts = DeleteOptions {
        propagation,
        precondition_uid: Some(s.uid.to_string()),
        ..Default::default()
    };
    match store.delete(s.kind, s.namespace(), s.name(), &opts).await {
        Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
        // The uid changed: another object of the same name now; not ours to collect.
        Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn remove_finalizer(store: &Store, s: &Stored, finalizer: &str) -> Result<(), StoreError> {
    let uid = s.uid.to_string();
    let r = store
        .update_with(s.kind, s.namespace(), s.name(), false, |o| {
            if o.meta().uid != uid || !has_finalizer(o, finalizer) {
                return Ok(None);
            }
            o.meta_mut().finalizers.retain(|f| f != finalizer);
            Ok(Some(()))
        })
        .await;
    match r {
        Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A dependent that is gone, or not being deleted and all of whose owners exist and are not
/// being deleted, needs nothing: decided from the cache's indexes, without decoding.
fn settled(store: &Store, item: &Item) -> bool {
    let Item::Dependent(kind, ns, name) = item else {
        return false;
    };
    let Ok(s) = store.get_stored(*kind, ns, name) else {
        return true;
    };
    !s.deleting
        && s.owners()
            .all(|uid| store.get_by_uid(uid).is_some_and(|o| !o.deleting))
}

/// One work item that is not [`settled`].
async fn process(store: &Store, item: Item) -> Result<(), StoreError> {
    match item {
        Item::Dependent(kind, ns, name) => {
            let Ok(s) = store.get_stored(kind, &ns, &name) else {
                return Ok(());
            };
            let obj = s.decode();
            let mut dangling = Vec::new();
            let mut live = 0;
            let mut foreground = 0;
            for r in &obj.meta().owner_references {
                match store.get_by_uid(&r.uid) {
                    None => dangling.push(r.uid.clone()),
                    Some(owner) => {
                        live += 1;
                        if owner.deleting && has_finalizer(&owner.decode(), FINALIZER_FOREGROUND) {
                            foreground += 1;
                        }
                    }
                }
            }
            if obj.meta().owner_references.is_empty() {
                return Ok(());
            }
            if live == 0 {
                if !s.deleting {
                    delete(store, &s, Propagation::Background).await?;
                }
            } else if foreground == live {
                if !s.deleting || !has_finalizer(&obj, FINALIZER_FOREGROUND) {
                    delete(store, &s, Propagation::Foreground).await?;
                }
            } else if !dangling.is_empty() {
                let r = store
                    .update_with(kind, &ns, &name, false, |o| {
                        let before = o.meta().owner_references.len();
                        o.meta_mut()
                            .owner_references
                            .retain(|r| !dangling.contains(&r.uid));
                        Ok((o.meta().owner_references.len() != before).then_some(()))
                    })
                    .await;
                if let Err(e) = r {
                    if !matches!(e, StoreError::NotFound { .. }) {
                        return Err(e);
                    }
                }
            }
            Ok(())
        }
        Item::Owner(uid) => {
            let Some(s) = store.get_by_uid(&uid) else {
                return Ok(());
            };
            if !s.deleting {
                return Ok(());
            }
            let obj = s.decode();
            if has_finalizer(&obj, FINALIZER_ORPHAN) {
                for dep in store.dependents_of(&uid) {
                    let r = store
                        .update_with(dep.kind, dep.namespace(), dep.name(), false, |o| {
                            let before = o.meta().owner_references.len();
                            o.meta_mut().owner_references.retain(|r| r.uid != uid);
                            Ok((o.meta().owner_references.len() != before).then_some(()))
                        })
                        .await;
                    if let Err(e) = r {
                        if !matches!(e, StoreError::NotFound { .. }) {
                            return Err(e);
                        }
                    }
                }
                remove_finalizer(store, &s, FINALIZER_ORPHAN).await
            } else if has_finalizer(&obj, FINALIZER_FOREGROUND) {
                let deps = store.dependents_of(&uid);
                if deps.is_empty() {
                    return remove_finalizer(store, &s, FINALIZER_FOREGROUND).await;
                }
                for dep in deps {
                    let d = dep.decode();
                    if !dep.deleting || !has_finalizer(&d, FINALIZER_FOREGROUND) {
                        delete(store, &dep, Propagation::Foreground).await?;
                    }
                }
                Ok(())
            } else {
                Ok(())
            }
        }
        Item::Namespace(name) => {
            let Ok(ns) = store.get_stored(Kind::Namespace, "", &name) else {
                return Ok(());
            };
            if !ns.deleting {
                return Ok(());
            }
            let mut remaining = 0usize;
            let mut set = JoinSet::new();
            for kind in Kind::ALL.iter().filter(|k| k.namespaced()) {
                let list = store.list(
                    *kind,
                    &ListOptions {
                        namespace: Some(name.clone()),
                        ..Default::default()
                    },
                )?;
                for s in list.items {
                    remaining += 1;
                    if !s.deleting {
                        let st = store.clone();
                        set.spawn(async move { delete(&st, &s, Propagation::Background).await });
                        if set.len() >= PARALLEL {
                            if let Some(Ok(Err(e))) = set.join_next().await {
                                tracing::warn!(error = %e, "namespace deletion step failed");
                            }
                        }
                    }
                }
            }
            while let Some(r) = set.join_next().await {
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "namespace deletion step failed");
                }
            }
            if remaining > 0 {
                return Ok(());
            }
            let r = store
                .update_with(Kind::Namespace, "", &name, false, |o| {
                    let Object::Namespace(n) = o else {
                        return Ok(None);
                    };
                    let Some(spec) = n.spec.as_mut() else {
                        return Ok(None);
                    };
                    let before = spec.finalizers.len();
                    spec.finalizers.retain(|f| f != FINALIZER_NAMESPACE);
                    Ok((spec.finalizers.len() != before).then_some(()))
                })
                .await;
            match r {
                Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}
