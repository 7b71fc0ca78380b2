//! The DefaultBinder's bindings in batches (issue 17 §2). Every pod's binding cycle runs in its
//! own task, as upstream's goroutine per pod; where it would call the store's `Bind` it hands
//! the binding to one [`Batcher`] task instead, which sends what has gathered as one
//! `ObjectStore/BindBatch`:
//!
//! - a batch goes when it holds `--bind-batch-size` bindings, or `--bind-batch-linger` after its
//!   first binding arrived, whichever is first; several batches may be in flight;
//! - each binding gets its own answer, exactly the one a single `Bind` would have given (the
//!   store authorizes, validates and applies each on its own), so the loop's handling of a
//!   result is unchanged: the pod was assumed before, a failed binding forgets it and requeues
//!   it, a bound one records `Scheduled`;
//! - a failure of the whole call (the store unreachable) is every binding's failure;
//! - a store without `BindBatch` (UNIMPLEMENTED) gets single `Bind`s from then on, and so does
//!   every binding when the batch size is 1;
//! - a binding may carry the pod's `Scheduled` Event when the recorder's correlator decided to
//!   create a new one: in a `BindBatch` the store admits it with the binding and creates it
//!   once the binding succeeded, after answering; the answer carries the admission
//!   ([`Carried`]); sent as a single `Bind` it is not carried, and the recorder writes it as any
//!   other Event.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coxswain_client::{Client, Error};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// `--bind-batch-size`'s default.
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// `--bind-batch-linger`'s default.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(1);

/// How bindings are batched.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// The most bindings in one call (1: a single `Bind` per pod, no batching).
    pub size: usize,
    /// The longest a binding waits for others to join its batch.
    pub linger: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            size: DEFAULT_BATCH_SIZE,
            linger: DEFAULT_LINGER,
        }
    }
}

/// One binding: a pod (by namespace, name and uid precondition) to a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    /// The Event to create once it is bound (the `Scheduled` Event), if any.
    pub event: Option<Box<coxswain_api::v1::Event>>,
}

/// A bound binding's Event: the store's admission of it when it rode in the `BindBatch` (the
/// store creates an admitted one after answering); None
/// when the binding carried none, or it was not carried (a single `Bind`, or a store without
/// the field).
pub type Carried = Option<Result<(), Error>>;

/// Where bindings go: the store in production, a fake in tests.
pub trait Sink: Clone + Send + Sync + 'static {
    /// One `Bind`.
    fn bind(&self, b: Binding) -> impl std::future::Future<Output = Result<(), Error>> + Send;
    /// One `BindBatch`: a result per binding, in order.
    fn bind_batch(
        &self,
        bs: Vec<Binding>,
    ) -> impl std::future::Future<Output = Result<Vec<Result<Carried, Error>>, Error>> + Send;
}

impl Sink for Client {
    async fn bind(&self, b: Binding) -> Result<(), Error> {
        Client::bind(self, &b.namespace, &b.name, &b.uid, &b.node).await
    }

    async fn bind_batch(&self, bs: Vec<Binding>) -> Result<Vec<Result<Carried, Error>>, Error> {
        let reqs = bs
            .into_iter()
            .map(|b| coxswain_api::v1::BindRequest {
                namespace: b.namespace,
                name: b.name,
                uid: b.uid,
                node_name: b.node,
                event: b.event.map(|e| coxswain_api::Object::Event(*e).to_any()),
            })
            .collect();
        Client::bind_batch(self, reqs).await
    }
}

type Pending = (Binding, oneshot::Sender<Result<Carried, Error>>);

/// The handle the binding cycles send their bindings through. Cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Batcher {
    /// Start the batching task on the current runtime; it ends when every handle is dropped.
    pub fn start<S: Sink>(sink: S, opts: BatchOptions) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(sink, opts, rx));
        Batcher { tx }
    }

    /// Bind one pod: resolves once its batch is answered.
    pub async fn bind(&self, b: Binding) -> Result<Carried, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((b, reply)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Transport(tonic::Status::unavailable(
        "the scheduler's binder has stopped",
    ))
}

async fn run<S: Sink>(sink: S, opts: BatchOptions, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let size = opts.size.max(1);
    // Cleared when the store answers BindBatch with UNIMPLEMENTED.
    let batches = Arc::new(AtomicBool::new(size > 1));
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + opts.linger;
        let mut batch = vec![first];
        while batch.len() < size {
            match rx.try_recv() {
                Ok(p) => {
                    batch.push(p);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                _ => break,
            }
        }
        metrics::histogram!("coxswain_scheduler_bind_batch_size").record(batch.len() as f64);
        tokio::spawn(send(sink.clone(), batch, Arc::clone(&batches)));
    }
}

async fn send<S: Sink>(sink: S, batch: Vec<Pending>, batches: Arc<AtomicBool>) {
    if batch.len() > 1 && batches.load(Ordering::Relaxed) {
        let bindings = batch.iter().map(|(b, _)| b.clone()).collect();
        match sink.bind_batch(bindings).await {
            Ok(results) if results.len() == batch.len() => {
                for ((_, reply), r) in batch.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
                return;
            }
            Ok(results) => {
                let msg = format!(
                    "BindBatch answered {} results for {} bindings",
                    results.len(),
                    batch.len()
                );
                for (_, reply) in batch {
                    let _ = reply.send(Err(Error::Transport(tonic::Status::internal(msg.clone()))));
                }
                return;
            }
            Err(Error::Transport(s)) if s.code() == tonic::Code::Unimplemented => {
                tracing::info!("the store has no BindBatch: binding one pod per call");
                batches.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                for (_, reply) in batch {
                    let _ = reply.send(Err(clone_error(&e)));
                }
                return;
            }
        }
    }
    // One Bind per pod, concurrently (as the binding cycles did before batching).
    for (b, reply) in batch {
        let sink = sink.clone();
        tokio::spawn(async move {
            let _ = reply.send(sink.bind(b).await.map(|()| None));
        });
    }
}

/// The same error for every binding of a batch whose call failed.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Transport(s) => Error::Transport(tonic::Status::new(s.code(), s.message())),
        other => Error::Transport(tonic::Status::unavailable(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the calls; answers Conflict for the pods named in `conflicts`.
    #[derive(Clone, Default)]
    struct Fake {
        calls: Arc<Mutex<Vec<Vec<String>>>>,
        conflicts: Vec<String>,
        unimplemented: bool,
    }

    impl Fake {
        fn answer(&self, b: &Binding) -> Result<(), Error> {
            if self.conflicts.contains(&b.name) {
                Err(Error::Conflict(format!(
                    "pod {} is already assigned to node \"other\"",
                    b.name
                )))
            } else {
                Ok(())
            }
        }
    }

    impl Sink for Fake {
        async fn bind(&self, b: Binding) -> Result<(), Error> {
            self.calls.lock().unwrap().push(vec![b.name.clone()]);
            self.answer(&b)
        }

        async fn bind_batch(&self, bs: Vec<Binding>) -> Result<Vec<Result<Carried, Error>>, Error> {
            if self.unimplemented {
                return Err(Error::Transport(tonic::Status::unimplemented("no")));
            }
            self.calls
                .lock()
                .unwrap()
                .push(bs.iter().map(|b| b.name.clone()).collect());
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(bs
                .iter()
                .map(|b| self.answer(b).map(|()| b.event.as_ref().map(|_| Ok(()))))
                .collect())
        }
    }

    fn binding(i: usize) -> Binding {
        Binding {
            namespace: "ns".into(),
            name: format!("p{i}"),
            uid: String::new(),
            node: "n".into(),
            event: None,
        }
    }

    async fn bind_all(b: &Batcher, n: usize) -> Vec<Result<Carried, Error>> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.bind(binding(i)).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn batches_are_bounded_and_each_binding_gets_its_own_answer() {
        let fake = Fake {
            conflicts: vec!["p3".into()],
            ..Default::default()
        };
        let b = Batcher::start(
            fake.clone(),
            BatchOptions {
                size: 4,
                linger: Duration::from_millis(10),
            },
        );
        let results = bind_all(&b, 10).await;
        for (i, r) in results.iter().enumerate() {
            match i {
                3 => assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}"),
                _ => assert!(r.is_ok(), "p{i}: {r:?}"),
            }
        }
        let calls = fake.calls.lock().unwrap().clone();
        let mut names: Vec<String> = calls.iter().flatten().cloned().collect();
        names.sort();
        assert_eq!(names.len(), 10, "every binding sent once: {calls:?}");
        names.dedup();
        assert_eq!(names.len(), 10, "{calls:?}");
        assert!(calls.iter().all(|c| c.len() <= 4), "{calls:?}");
        assert_eq!(calls.len(), 3, "4 + 4 + 2: {calls:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_binding_waits_at_most_the_linger() {
        let fake = Fake::default();
        let b = Batcher::start(
            fake.clone(),
            BatchOptions {
                size: 64,
                linger: Duration::from_millis(10),
            },
        );
        let started = Instant::now();
        b.bind(binding(0)).await.unwrap();
        // The linger, then one plain Bind (a batch of one is not sent as a BindBatch; the
        // fake answers a Bind at once), and nothing more.
        assert_eq!(started.elapsed(), Duration::from_millis(10));
        assert_eq!(fake.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn without_bind_batch_in_the_store_or_with_size_1_each_pod_is_bound_alone() {
        for (size, unimplemented) in [(1, false), (8, true)] {
            let fake = Fake {
                conflicts: vec!["p1".into()],
                unimplemented,
                ..Default::default()
            };
            let b = Batcher::start(
                fake.clone(),
                BatchOptions {
                    size,
                    linger: Duration::from_millis(10),
                },
            );
            let results = bind_all(&b, 5).await;
            assert!(matches!(results[1], Err(Error::Conflict(_))));
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
            let calls = fake.calls.lock().unwrap().clone();
            assert_eq!(calls.len(), 5, "size {size}: {calls:?}");
            assert!(calls.iter().all(|c| c.len() == 1));
        }
    }
}
