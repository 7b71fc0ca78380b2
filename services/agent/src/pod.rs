//! The pod state machine: one async worker per pod drives init containers, containers, hooks,
//! probes, restarts with back-off and graceful termination over a [`Runtime`], and reports
//! status and events through a [`PodSink`]. It only uses tokio time, so it is tested with a
//! paused clock over the sim runtime.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::time::now_rfc3339;
use coxswain_api::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIp, IntOrString, LifecycleHandler, Pod, PodIp,
    PodStatus, Probe,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cell;
use crate::runtime::{Action, ActionKind, Exit, Outcome, PodInfo, Runtime, Started};
use crate::status::{recompute, restart_policy, Backoff, PackedStatus};

mod backoff;
mod container;
mod probe;
mod sources;

use backoff::{crash_backoff, pull_backoff};
use container::{container_loop, run_once};
use sources::refresh_projected;

/// Timing of the state machine (flags of the agent).
#[derive(Clone, Debug)]
pub struct Config {
    /// Container restart and image pull back-off: initial delay and cap.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A container that ran this long has its back-off reset.
    pub backoff_reset: Duration,
    /// Multiplies every duration taken from a pod spec (probe delays/periods/timeouts, grace
    /// periods, sleep hooks); 1.0 in production, smaller in tests.
    pub time_scale: f64,
    /// How often a running pod's projected volumes are written again (the kubelet's
    /// `--sync-frequency`): a ServiceAccount token is renewed past 80 % of its life.
    pub volume_sync: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            backoff_reset: Duration::from_secs(600),
            time_scale: 1.0,
            volume_sync: Duration::from_secs(60),
        }
    }
}

impl Config {
    pub fn secs(&self, s: i64) -> Duration {
        Duration::from_secs_f64((s.max(0) as f64) * self.time_scale)
    }
}

/// Where a pod worker reports.
pub trait PodSink: Send + Sync + 'static {
    /// The pod's full status, after every change (the sink may coalesce). The worker and the
    /// sink share one copy, encoded (`PackedStatus`).
    fn status(&self, pod: &Pod, status: PackedStatus);
    /// An event about the pod (`field_path` like `spec.containers{nginx}`).
    fn event(&self, pod: &Pod, field_path: &str, warning: bool, reason: &str, message: String);
}

/// The data of a ConfigMap or Secret, by key.
pub type Data = std::collections::BTreeMap<String, Vec<u8>>;

/// Boxed future of an [`ObjectSource`] lookup.
pub type DataFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Data>, String>> + Send + 'a>>;

/// Where ConfigMaps and Secrets come from (the store), for env and volumes.
pub trait ObjectSource: Send + Sync + 'static {
    /// `kind` is "ConfigMap" or "Secret"; Ok(None) when it does not exist.
    fn data<'a>(&'a self, kind: &'static str, namespace: &'a str, name: &'a str) -> DataFuture<'a>;

    /// A ServiceAccount token (TokenRequest) for a projected volume.
    fn token(&self, _req: coxswain_api::v1::TokenRequest) -> TokenFuture<'_> {
        Box::pin(async { Err("service account tokens are not available".to_string()) })
    }
}

/// Boxed future of an [`ObjectSource::token`].
pub type TokenFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>;

/// Per-node state shared by the workers.
pub struct NodeCtx<R: Runtime> {
    pub runtime: Arc<R>,
    pub config: Config,
    pub sink: Arc<dyn PodSink>,
    /// ConfigMaps and Secrets for env and volumes (None: left unresolved).
    pub objects: Option<Arc<dyn ObjectSource>>,
    /// Images pulled on this node (for IfNotPresent "already present on machine").
    pub images: Mutex<HashSet<String>>,
}

/// Live record of a container instance, for logs and stats.
#[derive(Clone, Debug, Default)]
pub struct Instances {
    /// (container, attempt, runtime id)
    pub current: Vec<(String, u32, String)>,
}

struct Shared<R: Runtime> {
    ctx: Arc<NodeCtx<R>>,
    /// Shared with the agent's record of the pod (one copy per pod; sim pods' memory).
    info: Arc<PodInfo>,
    /// Shared with the sink (one copy per pod, encoded; sim pods' memory, issue 17).
    status: Mutex<PackedStatus>,
    instances: Arc<Mutex<Instances>>,
    /// The latest version of the pod object (container images may change in place). The
    /// worker keeps no copy of its own: the agent passes every new version on, so the pod is
    /// held once, shared with the informer's cache (sim pods' memory, issue 17).
    latest: cell::Receiver<Arc<Pod>>,
    /// Set once activeDeadlineSeconds ran out: the pod is Failed (DeadlineExceeded).
    deadline_exceeded: std::sync::atomic::AtomicBool,
    /// Notified after every status change.
    changed: tokio::sync::Notify,
    /// The attempt number each container (init?, name) starts from: 0, or after a stored
    /// status was adopted, the count it had reached.
    first_attempt: std::collections::HashMap<(bool, String), u32>,
    /// Containers (init?, name) a restarted agent found terminated for good: not run again.
    done: std::collections::HashSet<(bool, String)>,
}

const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// Asks a worker to stop its pod: `Some(grace)`.
pub type Termination = cell::Receiver<Option<Duration>>;

/// How a worker ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Termination was requested and every container is stopped.
    Terminated,
}

fn key_of(pod: &Pod) -> String {
    let m = pod.metadata.clone().unwrap_or_default();
    format!("{}_{}({})", m.name, m.namespace, m.uid)
}

fn waiting(reason: &str, message: &str) -> Option<ContainerState> {
    Some(ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: reason.into(),
            message: message.into(),
        }),
        ..Default::default()
    })
}

impl<R: Runtime> Shared<R> {
    fn first_attempt(&self, init: bool, name: &str) -> u32 {
        self.first_attempt
            .get(&(init, name.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The pod's latest version.
    fn pod(&self) -> Arc<Pod> {
        self.latest.borrow().clone()
    }

    fn update(&self, f: impl FnOnce(&mut PodStatus)) {
        let snapshot = {
            let Ok(mut guard) = self.status.lock() else {
                return;
            };
            let mut st = guard.unpack();
            f(&mut st);
            recompute(spec_of(&self.latest.borrow()), &mut st);
            if self
                .deadline_exceeded
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                st.phase = "Failed".into();
                st.reason = "DeadlineExceeded".into();
                st.message = DEADLINE_MESSAGE.into();
            }
            *guard = PackedStatus::pack(&st);
            guard.clone()
        };
        self.ctx.sink.status(&self.pod(), snapshot);
        self.changed.notify_waiters();
    }

    fn find_container<'a>(
        st: &'a PodStatus,
        init: bool,
        name: &str,
    ) -> Option<&'a ContainerStatus> {
        let list = if init {
            &st.init_container_statuses
        } else {
            &st.container_statuses
        };
        list.iter().find(|c| c.name == name)
    }

    fn container<'a>(
        st: &'a mut PodStatus,
        init: bool,
        name: &str,
    ) -> Option<&'a mut ContainerStatus> {
        let list = if init {
            &mut st.init_container_statuses
        } else {
            &mut st.container_statuses
        };
        list.iter_mut().find(|c| c.name == name)
    }

    fn update_container(&self, init: bool, name: &str, f: impl FnOnce(&mut ContainerStatus)) {
        self.update(|st| {
            if let Some(c) = Self::container(st, init, name) {
                f(c);
            }
        });
    }

    fn event(&self, c: Option<(&Container, bool)>, warning: bool, reason: &str, message: String) {
        let path = match c {
            Some((c, true)) => format!("spec.initContainers{{{}}}", c.name),
            Some((c, false)) => format!("spec.containers{{{}}}", c.name),
            None => String::new(),
        };
        self.ctx
            .sink
            .event(&self.pod(), &path, warning, reason, message);
    }

    fn grace(&self) -> Duration {
        self.ctx.config.secs(
            spec_of(&self.latest.borrow())
                .termination_grace_period_seconds
                .unwrap_or(30) as i64,
        )
    }
}

fn spec_of(pod: &Pod) -> &coxswain_api::v1::PodSpec {
    static EMPTY: std::sync::OnceLock<coxswain_api::v1::PodSpec> = std::sync::OnceLock::new();
    pod.spec
        .as_ref()
        .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
}

fn is_terminating(term: &Termination) -> Option<Duration> {
    *term.borrow()
}

/// Waits until termination is requested; returns the grace period.
async fn terminated(term: &mut Termination) -> Duration {
    loop {
        if let Some(g) = *term.borrow_and_update() {
            return g;
        }
        if term.changed().await.is_err() {
            // The agent dropped the pod: stop at once.
            return Duration::ZERO;
        }
    }
}

/// activeDeadlineSeconds: a task that passes the pod's termination request on, or once the
/// deadline runs out marks the pod DeadlineExceeded and stops its containers (with the pod's
/// grace period, or the one of a later termination request). Returns what the containers watch.
fn deadline_task<R: Runtime>(
    sh: &Arc<Shared<R>>,
    deadline: Duration,
    mut ext: Termination,
) -> Termination {
    let (stop_tx, term) = cell::channel(None);
    let sh = sh.clone();
    tokio::spawn(async move {
        tokio::select! {
            g = terminated(&mut ext) => {
                stop_tx.send_replace(Some(g));
            }
            _ = tokio::time::sleep(deadline) => {
                sh.deadline_exceeded.store(true, std::sync::atomic::Ordering::SeqCst);
                sh.event(None, true, "DeadlineExceeded", DEADLINE_MESSAGE.into());
                stop_tx.send_replace(Some(sh.grace()));
                sh.update(|_| {});
                let g = terminated(&mut ext).await;
                stop_tx.send_replace(Some(g));
            }
        }
    });
    term
}

/// Runs a pod until termination is requested and its containers are stopped.
pub async fn run_pod<R: Runtime>(
    ctx: Arc<NodeCtx<R>>,
    pod: Arc<Pod>,
    info: Arc<PodInfo>,
    instances: Arc<Mutex<Instances>>,
    latest: cell::Receiver<Arc<Pod>>,
    mut external: Termination,
) -> Ended {
    // The pod's start (its status, init containers, sidecars) is boxed and let go once done:
    // while the containers run, the worker's future holds none of it (sim pods' memory).
    let start = start_pod(ctx, pod, info, instances, latest, &mut external);
    let (sh, term, side, mut to_run) = match Box::pin(start).await {
        Ok(started) => started,
        Err(ended) => return ended,
    };
    // Containers: a single one runs in this task, several each in their own task.
    if to_run.len() == 1 {
        // The list's buffer is let go too, not kept for the container's life.
        let c = to_run.pop();
        drop(to_run);
        if let Some(c) = c {
            container_loop(sh.clone(), c, false, term.clone()).await;
        }
    } else {
        let mut set = JoinSet::new();
        for c in to_run {
            let sh = sh.clone();
            let term = term.clone();
            set.spawn(async move { container_loop(sh, c, false, term).await });
        }
        while set.join_next().await.is_some() {}
    }
    // Then the sidecars, which would run forever.
    if let Some((side_tx, mut sidecars)) = side {
        side_tx.send_replace(Some(sh.grace()));
        while sidecars.join_next().await.is_some() {}
    }
    // Every container is done for good (a terminal phase) or was stopped (deletion, deadline).
    finish(&sh, &mut external).await
}

/// The sidecars' stop request and their tasks.
type Sidecars = (cell::Sender<Option<Duration>>, JoinSet<()>);

/// A pod's start, up to its containers: its first status, the activeDeadlineSeconds task, the
/// sidecars and init containers. Ok: the worker's state, what the containers watch, the
/// sidecars and the containers to run; Err: how the worker ended meanwhile (terminated).
async fn start_pod<R: Runtime>(
    ctx: Arc<NodeCtx<R>>,
    pod: Arc<Pod>,
    info: Arc<PodInfo>,
    instances: Arc<Mutex<Instances>>,
    latest: cell::Receiver<Arc<Pod>>,
    external: &mut Termination,
) -> Result<
    (
        Arc<Shared<R>>,
        Termination,
        Option<Sidecars>,
        Vec<Box<Container>>,
    ),
    Ended,
> {
    // The spec is borrowed from the pod given, which is let go before the containers run:
    // from then on the worker reads the latest version (the pod is held once).
    let pod_ref = pod;
    let spec = spec_of(&pod_ref);
    // Containers stop on deletion, or when activeDeadlineSeconds runs out (the pod then stays,
    // Failed, until it is deleted).
    let deadline = spec
        .active_deadline_seconds
        .map(|s| ctx.config.secs(s as i64));
    let has_init = !spec.init_containers.is_empty();
    let mut first_attempt = std::collections::HashMap::new();
    let mut done = std::collections::HashSet::new();
    let initial = {
        let mut st = pod_ref.status.clone().unwrap_or_default();
        st.host_ip = info.host_ip.clone();
        st.host_ips = vec![HostIp {
            ip: info.host_ip.clone(),
        }];
        st.pod_ip = info.ip.to_string();
        st.pod_ips = vec![PodIp {
            ip: info.ip.to_string(),
        }];
        if st.start_time.is_empty() {
            st.start_time = now_rfc3339();
        }
        st.reason.clear();
        st.message.clear();
        // A pod this agent takes over (it restarted) keeps its restart counts.
        let old = (
            st.init_container_statuses.clone(),
            st.container_statuses.clone(),
        );
        let mut mk = |c: &Container, reason: &str, init: bool| {
            let fresh = ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone(),
                state: waiting(reason, ""),
                ready: false,
                restart_count: 0,
                started: Some(false),
                ..Default::default()
            };
            let olds = if init { &old.0 } else { &old.1 };
            let prev = olds.iter().find(|o| o.name == c.name);
            if crate::status::already_done(prev, init, is_sidecar(c), restart_policy(spec)) {
                // Terminated for good before the agent restarted: kept as it was, not run.
                done.insert((init, c.name.clone()));
                return prev.cloned().unwrap_or(fresh);
            }
            let (s, next) = crate::status::adopt(fresh, prev);
            // 0 unless adopted (`Shared::first_attempt`): no entry for a pod that starts fresh.
            if next != 0 {
                first_attempt.insert((init, c.name.clone()), next);
            }
            s
        };
        st.init_container_statuses = spec
            .init_containers
            .iter()
            .map(|c| mk(c, "PodInitializing", true))
            .collect();
        st.container_statuses = spec
            .containers
            .iter()
            .map(|c| {
                mk(
                    c,
                    if has_init {
                        "PodInitializing"
                    } else {
                        "ContainerCreating"
                    },
                    false,
                )
            })
            .collect();
        st
    };
    let sh = Arc::new(Shared {
        ctx,
        info,
        status: Mutex::new(PackedStatus::pack(&initial)),
        instances,
        latest,
        deadline_exceeded: Default::default(),
        changed: tokio::sync::Notify::new(),
        first_attempt,
        done,
    });
    sh.update(|_| {});
    refresh_projected(&sh);
    // With activeDeadlineSeconds, a task turns its expiry into a termination; without, the
    // containers stop on the pod's own termination request and no task is spawned.
    let mut term = match deadline {
        None => external.clone(),
        Some(d) => deadline_task(&sh, d, external.clone()),
    };

    // Sidecars stop on termination, or after the containers are done for good. A pod without
    // sidecars has neither their channel, nor their set, nor this task (sim pods' memory).
    let mut side = spec
        .init_containers
        .iter()
        .any(|c| is_sidecar(c) && !sh.done.contains(&(true, c.name.clone())))
        .then(|| {
            let (side_tx, side_rx) = cell::channel(None);
            let mut t = term.clone();
            let tx = side_tx.clone();
            tokio::spawn(async move {
                let g = terminated(&mut t).await;
                tx.send_replace(Some(g));
            });
            (side_tx, side_rx, JoinSet::new())
        });

    // Init containers, one at a time, in order.
    for c in &spec.init_containers {
        if sh.done.contains(&(true, c.name.clone())) {
            continue;
        }
        // A sidecar not done for good made `side`.
        if let (true, Some((_, side_rx, sidecars))) = (is_sidecar(c), side.as_mut()) {
            // Runs for the pod's life; the next one starts once it has started.
            let (sh2, c2, rx) = (sh.clone(), Box::new(c.clone()), side_rx.clone());
            sidecars.spawn(async move { container_loop(sh2, c2, true, rx).await });
            loop {
                let notified = sh.changed.notified();
                let started = sh
                    .status
                    .lock()
                    .ok()
                    .map(|st| st.unpack())
                    .and_then(|st| {
                        Shared::<R>::find_container(&st, true, &c.name).map(|s| {
                            s.started == Some(true)
                                && s.state.as_ref().is_some_and(|x| x.running.is_some())
                        })
                    })
                    .unwrap_or(false);
                if started {
                    break;
                }
                tokio::select! {
                    _ = notified => {}
                    _ = terminated(&mut term) => return Err(finish(&sh, external).await),
                }
            }
            continue;
        }
        let mut backoff = Backoff::new(sh.ctx.config.backoff_base, sh.ctx.config.backoff_max);
        let mut attempt = sh.first_attempt(true, &c.name);
        loop {
            if is_terminating(&term).is_some() {
                return Err(finish(&sh, external).await);
            }
            // Boxed (as the other one-off steps below): the worker's idle future then holds
            // none of an init container's run (sim pods' memory, issue 17).
            match Box::pin(run_once(&sh, c, true, attempt, &mut term)).await {
                RunResult::Exited(exit) if exit.code == 0 => break,
                RunResult::Stopped => return Err(finish(&sh, external).await),
                RunResult::Exited(_)
                | RunResult::Killed
                | RunResult::Changed
                | RunResult::Failed => {
                    if restart_policy(spec) == "Never" {
                        // The pod fails; nothing else runs.
                        sh.update(|_| {});
                        terminated(&mut term).await;
                        return Err(finish(&sh, external).await);
                    }
                    attempt += 1;
                    let delay = backoff.next_delay();
                    if !Box::pin(crash_backoff(&sh, c, true, delay, attempt, &mut term)).await {
                        return Err(finish(&sh, external).await);
                    }
                }
                RunResult::PullFailed => {
                    if !Box::pin(pull_backoff(&sh, c, true, &mut backoff, &mut term)).await {
                        return Err(finish(&sh, external).await);
                    }
                }
            }
        }
    }
    if has_init {
        for c in &spec.containers {
            if sh.done.contains(&(false, c.name.clone())) {
                continue;
            }
            sh.update_container(false, &c.name, |s| {
                s.state = waiting("ContainerCreating", "");
            });
        }
    }

    let to_run: Vec<Box<Container>> = spec
        .containers
        .iter()
        .filter(|c| !sh.done.contains(&(false, c.name.clone())))
        .map(|c| Box::new(c.clone()))
        .collect();
    drop(pod_ref);
    Ok((sh, term, side.map(|(tx, _, set)| (tx, set)), to_run))
}

/// Waits for the pod's deletion (at once when it is being deleted), then forgets its containers.
async fn finish<R: Runtime>(sh: &Arc<Shared<R>>, external: &mut Termination) -> Ended {
    if is_terminating(external).is_none() {
        sh.update(|_| {});
        terminated(external).await;
    }
    // Containers that never ran stay as they are; the pod object is deleted next.
    sh.ctx.runtime.remove_pod(&sh.info.uid);
    Ended::Terminated
}

enum RunResult {
    /// The container ran and exited.
    Exited(Exit),
    /// The agent killed it: failed liveness/startup probe or postStart hook.
    Killed,
    /// Its image changed in the pod spec: restarted at once, whatever the policy.
    Changed,
    /// It could not start (start error already recorded as terminated StartError).
    Failed,
    /// The image could not be pulled (ErrImagePull recorded), or the container's config
    /// (env from ConfigMaps/Secrets, volumes) could not be prepared.
    PullFailed,
    /// Pod termination: the container was stopped.
    Stopped,
}

/// A restartable init container (a sidecar): `restartPolicy: Always` on an init container.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}
