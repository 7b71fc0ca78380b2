//! The simulated runtime (KWOK-like): no processes. Containers start at once and pod
//! annotations script what they do. Each key may be given pod-wide (`sim.coxswain.io/KEY`) or
//! for one container (`sim.coxswain.io/CONTAINER.KEY`, which wins):
//!
//! | key | effect |
//! |---|---|
//! | `run-duration` (e.g. `5s`) | main containers exit after this (default: run until stopped) |
//! | `exit-code` | their exit code (default 0) |
//! | `init-duration` | init containers exit 0 after this (default: at once) |
//! | `ready-after` | readiness (probe or not) succeeds only this long after start |
//! | `fail-liveness-after` | liveness probes fail from this long after start |
//! | `cpu` (`250m`), `memory` (`64Mi`) | the usage reported for each container (a patch applies from the next sample) |
//!
//! Image references resolve through the same catalog as the process runtime, so
//! `nginx:no-such-tag` gives ErrImagePull here too.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::quantity::Quantity;
use coxswain_api::v1::Container;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Action, ActionKind, Exit, Outcome, PodInfo, Runtime, Started, Usage};
use crate::catalog::Catalog;
use crate::cell;
use crate::duration::parse_duration;

pub const PREFIX: &str = "sim.coxswain.io/";

struct SimContainer {
    pod_uid: String,
    started: Instant,
    tx: cell::Sender<Option<Exit>>,
    /// The cumulative CPU counter (core-nanoseconds) and when it was last advanced: each
    /// interval counts at the `cpu` annotation's value at its end, so a patched annotation
    /// changes the rate from then on and the counter never jumps or goes back.
    cpu: (Instant, u64),
}

pub struct SimRuntime {
    catalog: Catalog,
    containers: Mutex<HashMap<String, SimContainer>>,
    timers: Arc<Timers>,
}

/// A container's exit sender and the exit code it is to send.
type ScriptedExit = (cell::Sender<Option<Exit>>, i32);

/// The containers' scripted exits (`run-duration`, `init-duration`): one timer task per runtime
/// instead of a task per container, so a sim pod has no task of its own for its script (sim
/// pods' memory, issue 17). Each exit is sent at its due time, as a sleep would.
#[derive(Default)]
struct Timers {
    /// (due, sequence) → the container's exit sender and its exit code.
    due: Mutex<BTreeMap<(Instant, u64), ScriptedExit>>,
    seq: AtomicU64,
    wake: Notify,
    started: AtomicBool,
}

impl Timers {
    /// The container exits with `code` at `at` (unless it was stopped before).
    fn add(self: &Arc<Self>, at: Instant, tx: cell::Sender<Option<Exit>>, code: i32) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut d) = self.due.lock() {
            d.insert((at, seq), (tx, code));
        }
        if !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().run());
        }
        self.wake.notify_one();
    }

    async fn run(self: Arc<Self>) {
        loop {
            let next = {
                let Ok(mut d) = self.due.lock() else {
                    return;
                };
                let now = Instant::now();
                while let Some(entry) = d.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let (tx, code) = entry.remove();
                    tx.send_if_modified(|e| {
                        if e.is_none() {
                            *e = Some(Exit {
                                code,
                                signal: 0,
                                reason: None,
                            });
                            true
                        } else {
                            false
                        }
                    });
                }
                d.first_key_value().map(|((at, _), _)| *at)
            };
            // A timer added meanwhile has stored a permit: notified() returns at once.
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}

/// A sim annotation for a container: the container-specific key wins over the pod-wide one.
pub fn annotation(pod: &PodInfo, container: &str, key: &str) -> Option<String> {
    pod.annotations
        .get(&format!("{PREFIX}{container}.{key}"))
        .or_else(|| pod.annotations.get(&format!("{PREFIX}{key}")))
}

fn duration_of(pod: &PodInfo, container: &str, key: &str) -> Option<Duration> {
    annotation(pod, container, key).and_then(|v| parse_duration(&v).ok())
}

impl SimRuntime {
    pub fn new(catalog: Catalog) -> SimRuntime {
        SimRuntime {
            catalog,
            containers: Mutex::new(HashMap::new()),
            timers: Default::default(),
        }
    }

    fn elapsed(&self, id: &str) -> Option<Duration> {
        self.containers
            .lock()
            .ok()?
            .get(id)
            .map(|c| c.started.elapsed())
    }

    /// Containers currently known (for memory accounting in benchmarks).
    pub fn len(&self) -> usize {
        self.containers.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Runtime for SimRuntime {
    fn version(&self) -> String {
        format!("coxswain-sim://{}", env!("CARGO_PKG_VERSION"))
    }

    async fn pull(&self, _pod: &PodInfo, image: &str) -> Result<String, String> {
        self.catalog.resolve(image).map(|r| r.image_id)
    }

    async fn start(
        &self,
        pod: &PodInfo,
        c: &Container,
        attempt: u32,
        is_init: bool,
    ) -> Result<Started, String> {
        let id = format!("{}-{}-{attempt}", pod.uid, c.name);
        let (tx, rx) = cell::channel(None);
        let run = if is_init {
            Some(duration_of(pod, &c.name, "init-duration").unwrap_or_default())
        } else {
            duration_of(pod, &c.name, "run-duration")
        };
        let code = if is_init {
            // Init containers exit 0 unless their own exit-code is given.
            pod.annotations
                .get(&format!("{PREFIX}{}.exit-code", c.name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        } else {
            annotation(pod, &c.name, "exit-code")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        if let Some(run) = run {
            self.timers.add(Instant::now() + run, tx.clone(), code);
        }
        self.containers.lock().map_err(|e| e.to_string())?.insert(
            id.clone(),
            SimContainer {
                pod_uid: pod.uid.clone(),
                started: Instant::now(),
                tx,
                cpu: (Instant::now(), 0),
            },
        );
        Ok(Started { id, exit: rx })
    }

    async fn run(
        &self,
        pod: &PodInfo,
        c: &Container,
        id: &str,
        kind: ActionKind,
        action: &Action,
        _timeout: Duration,
    ) -> Outcome {
        if let Action::Sleep(d) = action {
            tokio::time::sleep(*d).await;
            return Outcome::Success;
        }
        let elapsed = self.elapsed(id).unwrap_or_default();
        let fail = |what: &str| match action {
            Action::Http { .. } => {
                Outcome::Failure("HTTP probe failed with statuscode: 500".into())
            }
            Action::Tcp { host, port } => Outcome::Failure(format!(
                "dial tcp {host}:{port}: connect: connection refused"
            )),
            _ => Outcome::Failure(format!("simulated {what} failure")),
        };
        match kind {
            ActionKind::Liveness => match duration_of(pod, &c.name, "fail-liveness-after") {
                Some(after) if elapsed >= after => fail("liveness"),
                _ => Outcome::Success,
            },
            ActionKind::Readiness => match duration_of(pod, &c.name, "ready-after") {
                Some(after) if elapsed < after => fail("readiness"),
                _ => Outcome::Success,
            },
            _ => Outcome::Success,
        }
    }

    fn signal(&self, id: &str, kill: bool) {
        if let Ok(c) = self.containers.lock() {
            if let Some(c) = c.get(id) {
                c.tx.send_if_modified(|e| {
                    if e.is_none() {
                        *e = Some(if kill {
                            Exit {
                                code: 137,
                                signal: 9,
                                reason: None,
                            }
                        } else {
                            Exit {
                                code: 0,
                                signal: 0,
                                reason: None,
                            }
                        });
                        true
                    } else {
                        false
                    }
                });
            }
        }
    }

    fn remove_pod(&self, pod_uid: &str) {
        if let Ok(mut c) = self.containers.lock() {
            c.retain(|_, c| c.pod_uid != pod_uid);
        }
    }

    fn usage(&self, pod: &PodInfo, c: &Container, id: &str) -> Option<Usage> {
        let milli = annotation(pod, &c.name, "cpu")
            .and_then(|v| Quantity::parse(&v).ok())
            .map(|q| q.milli_value().max(0) as u64)
            .unwrap_or(0);
        let memory = annotation(pod, &c.name, "memory")
            .and_then(|v| Quantity::parse(&v).ok())
            .map(|q| q.value().max(0) as u64)
            .unwrap_or(0);
        let mut containers = self.containers.lock().ok()?;
        let sc = containers.get_mut(id)?;
        let now = Instant::now();
        let dt = now.saturating_duration_since(sc.cpu.0);
        sc.cpu = (
            now,
            sc.cpu
                .1
                .saturating_add((milli as u128 * dt.as_nanos() / 1000) as u64),
        );
        Some(Usage {
            cpu_nanos: sc.cpu.1,
            memory_bytes: memory,
        })
    }

    fn log_path(&self, _pod_uid: &str, _container: &str, _attempt: u32) -> Option<PathBuf> {
        None
    }

    fn readiness_delay(&self, pod: &PodInfo, c: &Container) -> Option<Duration> {
        duration_of(pod, &c.name, "ready-after")
    }
}
