//! Pod status writes: one queue and one task per node instead of a writer task per pod (sim
//! pods' memory, issue 17). A pod has at most one write in flight, and a write always sends the
//! pod's latest status, so the statuses made while a write is in flight coalesce into one. A
//! failed write is retried with back-off (50 ms doubling to 5 s), at once when a newer status
//! waits; a pod retrying holds no write slot while it waits, so other pods are not starved.
//!
//! As the kubelet's status manager, a pod's final status is written before the agent removes
//! the pod object (`flushed`, then the delete), and nothing more is written for a pod the agent
//! knows is deleted (`deleted`: the informer saw it go, or a write found its UID gone).
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{Condition, ObjectMeta, Pod, PodStatus};
use coxswain_client::Client;
use tokio::sync::{oneshot, Notify};

use crate::cell;
use crate::status::PackedStatus;
use tokio::task::JoinSet;

/// The conditions the agent owns; others (DisruptionTarget, readiness gates) are kept.
pub(crate) const OWN_CONDITIONS: &[&str] = &[
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// Writes in flight at once per node.
const MAX_IN_FLIGHT: usize = 32;
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// What the status writer shares with the event handler: digests of the statuses it wrote
/// recently (so our own writes coming back are recognised) and the conditions other components
/// set on the pod (kept in every write).
#[derive(Default)]
pub(crate) struct WriterState {
    pub(crate) recent: Mutex<VecDeque<u64>>,
    pub(crate) foreign: Mutex<Vec<Condition>>,
}

pub(crate) fn digest(st: &PodStatus) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    st.phase.hash(&mut h);
    st.reason.hash(&mut h);
    let mut conds: Vec<(&str, &str)> = st
        .conditions
        .iter()
        .map(|c| (c.r#type.as_str(), c.status.as_str()))
        .collect();
    conds.sort();
    conds.hash(&mut h);
    for c in st
        .container_statuses
        .iter()
        .chain(&st.init_container_statuses)
    {
        c.name.hash(&mut h);
        c.ready.hash(&mut h);
        c.restart_count.hash(&mut h);
        c.container_id.hash(&mut h);
        let s = c.state.as_ref();
        (
            s.and_then(|s| s.waiting.as_ref())
                .map(|w| w.reason.as_str()),
            s.is_some_and(|s| s.running.is_some()),
            s.and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code),
        )
            .hash(&mut h);
    }
    h.finish()
}

/// One pod's place in the queue.
struct Slot {
    /// The pod's latest status (also read by admission and the log follower).
    tx: cell::Sender<Option<PackedStatus>>,
    sync: Arc<WriterState>,
    /// "namespace/name".
    key: Box<str>,
    /// A status waits to be written.
    dirty: bool,
    /// Queued, being written, or waiting out a retry back-off.
    busy: bool,
    /// The pod is gone from the store (a write got NotFound): nothing more is written.
    gone: bool,
    /// The next retry back-off.
    retry: Duration,
    /// When the agent first saw the pod, until its first Running status is written
    /// (kubelet_pod_start_duration_seconds).
    seen: Option<std::time::Instant>,
    /// Told once no write of the pod waits or is in flight (`flushed`).
    flushed: Option<oneshot::Sender<()>>,
}

impl Slot {
    /// Nothing of the pod waits or is in flight.
    fn idle(&mut self) {
        self.busy = false;
        if let Some(f) = self.flushed.take() {
            let _ = f.send(());
        }
    }
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    queue: VecDeque<String>,
}

/// A node's status writer.
#[derive(Default)]
pub(crate) struct StatusQueue {
    inner: Mutex<Inner>,
    wake: Notify,
    started: AtomicBool,
}

struct Job {
    uid: String,
    key: Box<str>,
    status: PackedStatus,
    sync: Arc<WriterState>,
}

enum Outcome {
    /// Written; whether its phase was Running.
    Written(bool),
    Failed,
    Gone,
}

impl StatusQueue {
    /// Starts the node's writer task on the first pod (the caller is on the runtime).
    pub(crate) fn start(self: &Arc<Self>, client: &Client) {
        if !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().run(client.clone()));
        }
    }

    /// A pod whose statuses are to be written.
    pub(crate) fn add(
        &self,
        uid: &str,
        key: &str,
        tx: cell::Sender<Option<PackedStatus>>,
        sync: Arc<WriterState>,
    ) {
        if let Ok(mut i) = self.inner.lock() {
            i.slots.insert(
                uid.to_string(),
                Slot {
                    tx,
                    sync,
                    key: key.into(),
                    dirty: false,
                    busy: false,
                    gone: false,
                    retry: FIRST_RETRY,
                    seen: Some(std::time::Instant::now()),
                    flushed: None,
                },
            );
        }
    }

    pub(crate) fn remove(&self, uid: &str) {
        if let Ok(mut i) = self.inner.lock() {
            i.slots.remove(uid);
        }
    }

    /// The pod is gone from the store (the informer saw it deleted): its pending status is
    /// dropped and nothing more is written (the kubelet's status manager drops the status of a
    /// deleted pod).
    pub(crate) fn deleted(&self, uid: &str) {
        if let Ok(mut i) = self.inner.lock() {
            if let Some(s) = i.slots.get_mut(uid) {
                s.gone = true;
                s.dirty = false;
                if let Some(f) = s.flushed.take() {
                    let _ = f.send(());
                }
            }
        }
    }

    /// Resolves once the pod's latest status has been written (or its write was tried and
    /// failed, or the pod is gone): the kubelet's status manager removes a terminated pod's
    /// object only after writing its final status, so the delete never races its own write.
    pub(crate) fn flushed(&self, uid: &str) -> impl std::future::Future<Output = ()> {
        let rx = self.inner.lock().ok().and_then(|mut i| {
            let s = i.slots.get_mut(uid)?;
            if !s.busy || s.gone {
                return None;
            }
            let (tx, rx) = oneshot::channel();
            s.flushed = Some(tx);
            Some(rx)
        });
        async move {
            if let Some(rx) = rx {
                let _ = rx.await;
            }
        }
    }

    /// The pod's new status: kept, and written.
    pub(crate) fn set(&self, uid: &str, status: PackedStatus) {
        self.mark(uid, Some(status));
    }

    /// Writes the pod's latest status again (the stored one is not ours), if it has one.
    pub(crate) fn rewrite(&self, uid: &str) {
        self.mark(uid, None);
    }

    fn mark(&self, uid: &str, status: Option<PackedStatus>) {
        let Ok(mut i) = self.inner.lock() else {
            return;
        };
        let Some(s) = i.slots.get_mut(uid) else {
            return;
        };
        match status {
            Some(st) => {
                s.tx.send_replace(Some(st));
            }
            None if s.tx.borrow().is_none() => return,
            None => {}
        }
        if s.gone {
            return;
        }
        s.dirty = true;
        if !s.busy {
            s.busy = true;
            i.queue.push_back(uid.to_string());
            drop(i);
            self.wake.notify_one();
        }
    }

    /// The next pod to write, with its latest status.
    fn next(&self) -> Option<Job> {
        let mut i = self.inner.lock().ok()?;
        while let Some(uid) = i.queue.pop_front() {
            let Some(s) = i.slots.get_mut(&uid) else {
                continue;
            };
            let status = s.tx.borrow().clone();
            match status {
                Some(status) if s.dirty && !s.gone => {
                    s.dirty = false;
                    return Some(Job {
                        key: s.key.clone(),
                        sync: s.sync.clone(),
                        uid,
                        status,
                    });
                }
                _ => s.idle(),
            }
        }
        None
    }

    /// A write ended: record it, and queue the pod again when a newer status waits (after a
    /// back-off when the write failed and none does).
    fn done(self: &Arc<Self>, uid: String, outcome: Outcome) {
        let Ok(mut i) = self.inner.lock() else {
            return;
        };
        let Some(s) = i.slots.get_mut(&uid) else {
            return;
        };
        let mut delay = None;
        match outcome {
            Outcome::Gone => {
                s.gone = true;
                s.idle();
                return;
            }
            Outcome::Written(running) => {
                s.retry = FIRST_RETRY;
                if running {
                    if let Some(seen) = s.seen.take() {
                        metrics::histogram!("kubelet_pod_start_duration_seconds")
                            .record(seen.elapsed().as_secs_f64());
                    }
                }
            }
            Outcome::Failed => {
                if !s.dirty {
                    delay = Some(s.retry);
                    s.retry = (s.retry * 2).min(MAX_RETRY);
                }
                s.dirty = true;
                // The write was tried: a pod waiting for it to be removed does not wait for
                // the retries (the removal, not the status, is what its deletion needs).
                if let Some(f) = s.flushed.take() {
                    let _ = f.send(());
                }
            }
        }
        if !s.dirty {
            s.idle();
            return;
        }
        match delay {
            None => {
                i.queue.push_back(uid);
                drop(i);
                self.wake.notify_one();
            }
            Some(d) => {
                drop(i);
                let this = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    if let Ok(mut i) = this.inner.lock() {
                        if i.slots.contains_key(&uid) {
                            i.queue.push_back(uid);
                        }
                    }
                    this.wake.notify_one();
                });
            }
        }
    }

    async fn run(self: Arc<Self>, client: Client) {
        let mut writes = JoinSet::new();
        loop {
            while writes.len() < MAX_IN_FLIGHT {
                let Some(job) = self.next() else {
                    break;
                };
                let client = client.clone();
                writes.spawn(async move {
                    let outcome = write(&client, &job).await;
                    (job.uid, outcome)
                });
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                Some(Ok((uid, outcome))) = writes.join_next(), if !writes.is_empty() => {
                    self.done(uid, outcome);
                }
            }
        }
    }
}

/// One status write (the pod's own conditions and the foreign ones it carries).
async fn write(client: &Client, job: &Job) -> Outcome {
    let mut status = job.status.unpack();
    let running = status.phase == "Running";
    if let Ok(f) = job.sync.foreign.lock() {
        status
            .conditions
            .retain(|c| OWN_CONDITIONS.contains(&c.r#type.as_str()));
        status.conditions.extend(f.iter().cloned());
    }
    if let Ok(mut r) = job.sync.recent.lock() {
        r.push_back(digest(&status));
        if r.len() > 8 {
            r.pop_front();
        }
    }
    let (namespace, name) = job.key.split_once('/').unwrap_or(("", &job.key));
    let pod = Pod {
        metadata: Some(ObjectMeta {
            name: name.to_string(),
            namespace: namespace.to_string(),
            uid: job.uid.clone(),
            ..Default::default()
        }),
        status: Some(status),
        ..Default::default()
    };
    match client.update_status(&pod).await {
        Ok(_) => Outcome::Written(running),
        Err(e) if e.is_not_found() => Outcome::Gone,
        Err(e) => {
            tracing::debug!(pod = %name, error = %e, "status update failed");
            Outcome::Failed
        }
    }
}
