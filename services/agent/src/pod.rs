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
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::runtime::{Action, ActionKind, Exit, Outcome, PodInfo, Runtime, Started};
use crate::status::{recompute, restart_policy, Backoff};

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
    /// sink share one copy: the next change copies it only while the sink still holds it.
    fn status(&self, pod: &Pod, status: Arc<PodStatus>);
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
    /// Shared with the sink (one copy per pod; sim pods' memory, issue 17).
    status: Mutex<Arc<PodStatus>>,
    instances: Arc<Mutex<Instances>>,
    /// The latest version of the pod object (container images may change in place). The
    /// worker keeps no copy of its own: the agent passes every new version on, so the pod is
    /// held once, shared with the informer's cache (sim pods' memory, issue 17).
    latest: watch::Receiver<Arc<Pod>>,
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
pub type Termination = watch::Receiver<Option<Duration>>;

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
            let st = Arc::make_mut(&mut guard);
            f(st);
            recompute(spec_of(&self.latest.borrow()), st);
            if self
                .deadline_exceeded
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                st.phase = "Failed".into();
                st.reason = "DeadlineExceeded".into();
                st.message = DEADLINE_MESSAGE.into();
            }
            Arc::clone(&guard)
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
    let (stop_tx, term) = watch::channel(None);
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
    latest: watch::Receiver<Arc<Pod>>,
    mut external: Termination,
) -> Ended {
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
            first_attempt.insert((init, c.name.clone()), next);
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
        status: Mutex::new(Arc::new(initial)),
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

    // Sidecars stop on termination, or after the containers are done for good (no task
    // for a pod without sidecars).
    let (side_tx, side_rx) = watch::channel(None);
    if spec
        .init_containers
        .iter()
        .any(|c| is_sidecar(c) && !sh.done.contains(&(true, c.name.clone())))
    {
        let mut t = term.clone();
        let side_tx = side_tx.clone();
        tokio::spawn(async move {
            let g = terminated(&mut t).await;
            side_tx.send_replace(Some(g));
        });
    }
    let mut sidecars = JoinSet::new();

    // Init containers, one at a time, in order.
    for c in &spec.init_containers {
        if sh.done.contains(&(true, c.name.clone())) {
            continue;
        }
        if is_sidecar(c) {
            // Runs for the pod's life; the next one starts once it has started.
            let (sh2, c2, rx) = (sh.clone(), Box::new(c.clone()), side_rx.clone());
            sidecars.spawn(async move { container_loop(sh2, c2, true, rx).await });
            loop {
                let notified = sh.changed.notified();
                let started = sh
                    .status
                    .lock()
                    .ok()
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
                    _ = terminated(&mut term) => return finish(&sh, &mut external).await,
                }
            }
            continue;
        }
        let mut backoff = Backoff::new(sh.ctx.config.backoff_base, sh.ctx.config.backoff_max);
        let mut attempt = sh.first_attempt(true, &c.name);
        loop {
            if is_terminating(&term).is_some() {
                return finish(&sh, &mut external).await;
            }
            // Boxed (as the other one-off steps below): the worker's idle future then holds
            // none of an init container's run (sim pods' memory, issue 17).
            match Box::pin(run_once(&sh, c, true, attempt, &mut term)).await {
                RunResult::Exited(exit) if exit.code == 0 => break,
                RunResult::Stopped => return finish(&sh, &mut external).await,
                RunResult::Exited(_)
                | RunResult::Killed
                | RunResult::Changed
                | RunResult::Failed => {
                    if restart_policy(spec) == "Never" {
                        // The pod fails; nothing else runs.
                        sh.update(|_| {});
                        terminated(&mut term).await;
                        return finish(&sh, &mut external).await;
                    }
                    attempt += 1;
                    let delay = backoff.next_delay();
                    if !Box::pin(crash_backoff(&sh, c, true, delay, attempt, &mut term)).await {
                        return finish(&sh, &mut external).await;
                    }
                }
                RunResult::PullFailed => {
                    if !Box::pin(pull_backoff(&sh, c, true, &mut backoff, &mut term)).await {
                        return finish(&sh, &mut external).await;
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

    // Containers: a single one runs in this task, several each in their own task.
    let mut to_run: Vec<Box<Container>> = spec
        .containers
        .iter()
        .filter(|c| !sh.done.contains(&(false, c.name.clone())))
        .map(|c| Box::new(c.clone()))
        .collect();
    drop(pod_ref);
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
    side_tx.send_replace(Some(sh.grace()));
    while sidecars.join_next().await.is_some() {}
    // Every container is done for good (a terminal phase) or was stopped (deletion, deadline).
    finish(&sh, &mut external).await
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

/// One container's life under the restart policy.
async fn container_loop<R: Runtime>(
    sh: Arc<Shared<R>>,
    // Boxed, as the prepared copy in run_once: a Container is kilobytes inline, and a running
    // container's task keeps it for its life (sim pods' memory, issue 17).
    c: Box<Container>,
    init: bool,
    mut term: Termination,
) {
    let mut backoff = Backoff::new(sh.ctx.config.backoff_base, sh.ctx.config.backoff_max);
    let mut pull_backoff_state =
        Backoff::new(sh.ctx.config.backoff_base, sh.ctx.config.backoff_max);
    // Sidecars (restartable init containers) always restart.
    let policy = if init {
        "Always".to_string()
    } else {
        restart_policy(spec_of(&sh.pod())).to_string()
    };
    let mut attempt = sh.first_attempt(init, &c.name);
    let mut c = c;
    loop {
        if is_terminating(&term).is_some() {
            return;
        }
        // The image may have been changed in place.
        if let Some(latest) = latest_container(&sh, &c.name).filter(|_| !init) {
            c.image = latest.image;
        }
        let started = Instant::now();
        let result = run_once(&sh, &c, init, attempt, &mut term).await;
        let exit_code = match result {
            RunResult::Stopped => return,
            RunResult::Changed => {
                attempt += 1;
                continue;
            }
            RunResult::PullFailed => {
                if !pull_backoff(&sh, &c, init, &mut pull_backoff_state, &mut term).await {
                    return;
                }
                continue;
            }
            RunResult::Exited(e) => Some(e.code),
            // Killed by the agent: restarted unless the policy is Never (kubelet).
            RunResult::Killed => None,
            RunResult::Failed => Some(128),
        };
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => exit_code != Some(0),
            _ => true,
        };
        if !restart {
            return;
        }
        if started.elapsed() >= sh.ctx.config.backoff_reset {
            backoff.reset();
        }
        attempt += 1;
        let delay = backoff.next_delay();
        if !crash_backoff(&sh, &c, init, delay, attempt, &mut term).await {
            return;
        }
    }
}

/// Waits out a crash back-off (CrashLoopBackOff). Returns false on termination.
async fn crash_backoff<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    delay: Duration,
    _attempt: u32,
    term: &mut Termination,
) -> bool {
    if delay > Duration::ZERO {
        let msg = format!(
            "back-off {} restarting failed container={} pod={}",
            human(delay),
            c.name,
            key_of(&sh.pod())
        );
        sh.update_container(init, &c.name, |s| {
            if let Some(st) = s.state.take() {
                if st.terminated.is_some() {
                    s.last_state = Some(st);
                }
            }
            s.state = waiting("CrashLoopBackOff", &msg);
            s.ready = false;
        });
        sh.event(
            Some((c, init)),
            true,
            "BackOff",
            format!(
                "Back-off restarting failed container {} in pod {}",
                c.name,
                key_of(&sh.pod())
            ),
        );
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = terminated(term) => false,
    }
}

/// Waits out an image pull back-off (ImagePullBackOff). Returns false on termination.
async fn pull_backoff<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    backoff: &mut Backoff,
    term: &mut Termination,
) -> bool {
    let delay = backoff.next_from_base();
    // Errors other than pull errors keep their reason while waiting for the retry.
    let never = sh
        .status
        .lock()
        .ok()
        .and_then(|st| {
            Shared::<R>::find_container(&st, init, &c.name)
                .and_then(|s| s.state.clone())
                .and_then(|s| s.waiting)
        })
        .is_some_and(|w| {
            matches!(
                w.reason.as_str(),
                "ErrImageNeverPull" | "CreateContainerConfigError" | "ContainerCreating"
            )
        });
    if never {
        return tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = terminated(term) => false,
        };
    }
    // ErrImagePull stays visible until the next sync (about a second), then ImagePullBackOff.
    let first = delay.min(Duration::from_secs(1)) / 2;
    tokio::select! {
        _ = tokio::time::sleep(first) => {}
        _ = terminated(term) => return false,
    }
    let delay = delay - first;
    let msg = format!("Back-off pulling image \"{}\"", c.image);
    sh.update_container(init, &c.name, |s| {
        s.state = waiting("ImagePullBackOff", &msg);
    });
    sh.event(Some((c, init)), false, "BackOff", msg);
    sh.event(
        Some((c, init)),
        true,
        "Failed",
        "Error: ImagePullBackOff".into(),
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = terminated(term) => false,
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (m, r) = (s / 60, s % 60);
    if m > 0 {
        format!("{m}m{r}s")
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Resolves a probe's or hook's action: named ports, default host (the pod IP), scaled sleep.
fn action_of<R: Runtime>(
    sh: &Shared<R>,
    c: &Container,
    exec: Option<&coxswain_api::v1::ExecAction>,
    http: Option<&coxswain_api::v1::HttpGetAction>,
    tcp: Option<&coxswain_api::v1::TcpSocketAction>,
    sleep: Option<i32>,
) -> Option<Action> {
    let port = |p: &Option<IntOrString>| -> Option<u16> {
        let p = p.as_ref()?;
        if p.is_string {
            c.ports
                .iter()
                .find(|cp| cp.name == p.str_val)
                .map(|cp| cp.container_port as u16)
                .or_else(|| p.str_val.parse().ok())
        } else {
            u16::try_from(p.int_val).ok()
        }
    };
    let host = |h: &str| {
        if h.is_empty() {
            sh.info.ip.to_string()
        } else {
            h.to_string()
        }
    };
    if let Some(e) = exec {
        return Some(Action::Exec(e.command.clone()));
    }
    if let Some(h) = http {
        return Some(Action::Http {
            host: host(&h.host),
            port: port(&h.port)?,
            path: h.path.clone(),
            scheme: h.scheme.clone(),
            headers: h
                .http_headers
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect(),
        });
    }
    if let Some(t) = tcp {
        return Some(Action::Tcp {
            host: host(&t.host),
            port: port(&t.port)?,
        });
    }
    sleep.map(|s| Action::Sleep(sh.ctx.config.secs(s as i64)))
}

fn hook_action<R: Runtime>(sh: &Shared<R>, c: &Container, h: &LifecycleHandler) -> Option<Action> {
    action_of(
        sh,
        c,
        h.exec.as_ref(),
        h.http_get.as_ref(),
        h.tcp_socket.as_ref(),
        h.sleep.as_ref().map(|s| s.seconds),
    )
}

fn probe_action<R: Runtime>(sh: &Shared<R>, c: &Container, p: &Probe) -> Option<Action> {
    action_of(
        sh,
        c,
        p.exec.as_ref(),
        p.http_get.as_ref(),
        p.tcp_socket.as_ref(),
        None,
    )
}

/// Kubernetes' hook failure message.
fn hook_failure(sh_key: &str, c: &Container, action: &Action, msg: &str) -> String {
    match action {
        Action::Exec(cmd) => format!(
            "Exec lifecycle hook ({cmd:?}) for Container \"{}\" in Pod \"{sh_key}\" failed - error: {msg}, message: \"\"",
            c.name
        ),
        Action::Http { path, .. } => format!(
            "HTTP lifecycle hook ({path}) for Container \"{}\" in Pod \"{sh_key}\" failed - error: {msg}",
            c.name
        ),
        Action::Tcp { .. } => format!(
            "TCP lifecycle hook for Container \"{}\" in Pod \"{sh_key}\" failed - error: {msg}",
            c.name
        ),
        Action::Sleep(_) => msg.to_string(),
    }
}

/// A restartable init container (a sidecar): `restartPolicy: Always` on an init container.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn latest_container<R: Runtime>(sh: &Shared<R>, name: &str) -> Option<Container> {
    sh.latest
        .borrow()
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == name)
        .cloned()
}

/// Resolves when the pod's spec gives this container another image.
async fn definition_changed<R: Runtime>(sh: &Shared<R>, c: &Container) {
    let mut rx = sh.latest.clone();
    loop {
        let changed = {
            let pod = rx.borrow_and_update();
            pod.spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|x| x.name == c.name))
                .is_some_and(|x| x.image != c.image)
        };
        if changed {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Why a running container is being stopped.
enum StopCause {
    Changed,
    Exited(Exit),
    Probe(&'static str, String),
    Terminate(Duration),
}

/// Pulls, starts and supervises one container instance until it ends.
async fn run_once<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    attempt: u32,
    term: &mut Termination,
) -> RunResult {
    let rt = sh.ctx.runtime.clone();
    let who = Some((c, init));
    // Pull.
    let present = sh
        .ctx
        .images
        .lock()
        .map(|i| i.contains(&c.image))
        .unwrap_or(false);
    let policy = if c.image_pull_policy.is_empty() {
        "IfNotPresent"
    } else {
        c.image_pull_policy.as_str()
    };
    let image_id = if policy == "Never" && !present {
        // Built-in catalog images count as present; anything else cannot be pulled.
        match Box::pin(rt.pull(&sh.info, &c.image)).await {
            Ok(id) => id,
            Err(_) => {
                let msg = format!(
                    "Container image \"{}\" is not present with pull policy of Never",
                    c.image
                );
                sh.event(who, true, "ErrImageNeverPull", msg.clone());
                sh.update_container(init, &c.name, |s| {
                    s.state = waiting("ErrImageNeverPull", &msg);
                });
                return RunResult::PullFailed;
            }
        }
    } else if present && policy != "Always" {
        if attempt == 0 {
            sh.event(
                who,
                false,
                "Pulled",
                format!("Container image \"{}\" already present on machine", c.image),
            );
        }
        Box::pin(rt.pull(&sh.info, &c.image))
            .await
            .unwrap_or_default()
    } else {
        sh.event(
            who,
            false,
            "Pulling",
            format!("Pulling image \"{}\"", c.image),
        );
        let t0 = Instant::now();
        match Box::pin(rt.pull(&sh.info, &c.image)).await {
            Ok(id) => {
                if let Ok(mut i) = sh.ctx.images.lock() {
                    i.insert(c.image.clone());
                }
                let took = t0.elapsed();
                sh.event(
                    who,
                    false,
                    "Pulled",
                    format!(
                        "Successfully pulled image \"{}\" in {:?} ({:?} including waiting)",
                        c.image, took, took
                    ),
                );
                id
            }
            Err(msg) => {
                sh.event(
                    who,
                    true,
                    "Failed",
                    format!("Failed to pull image \"{}\": {msg}", c.image),
                );
                sh.event(who, true, "Failed", "Error: ErrImagePull".into());
                sh.update_container(init, &c.name, |s| {
                    s.state = waiting("ErrImagePull", &msg);
                });
                return RunResult::PullFailed;
            }
        }
    };

    // Env from ConfigMaps/Secrets, and configMap/secret volume files.
    // None: the container as it is (no copy kept for its life).
    let resolved_c = match Box::pin(prepare(sh, c)).await {
        Ok(c2) => c2,
        Err((reason, msg)) => {
            if reason == "CreateContainerConfigError" {
                sh.event(who, true, "Failed", format!("Error: {msg}"));
            } else {
                sh.event(None, true, "FailedMount", msg.clone());
            }
            sh.update_container(init, &c.name, |s| {
                s.state = waiting(reason, &msg);
            });
            return RunResult::PullFailed;
        }
    };
    let c = resolved_c.as_deref().unwrap_or(c);
    let who = Some((c, init));
    // runAsNonRoot, checked as the kubelet checks it before creating the container.
    if let Err(msg) = crate::runtime::user::verify_run_as_non_root(
        &sh.info.name,
        &sh.info.namespace,
        &sh.info.uid,
        sh.info.security_context.as_ref(),
        c,
        rt.image_uid(),
    ) {
        sh.event(who, true, "Failed", format!("Error: {msg}"));
        sh.update_container(init, &c.name, |s| {
            s.state = waiting("CreateContainerConfigError", &msg);
        });
        return RunResult::PullFailed;
    }

    // Create and start.
    let start = Box::pin(rt.start(&sh.info, c, attempt, init && !is_sidecar(c)));
    let started: Started = match start.await {
        Ok(s) => s,
        Err(msg) => {
            sh.event(who, true, "Failed", format!("Error: {msg}"));
            let now = now_rfc3339();
            sh.update_container(init, &c.name, |s| {
                if let Some(st) = s.state.take() {
                    if st.terminated.is_some() {
                        s.last_state = Some(st);
                    }
                }
                s.state = Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 128,
                        reason: "StartError".into(),
                        message: msg.clone(),
                        started_at: now.clone(),
                        finished_at: now.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                s.restart_count = attempt as i32;
            });
            return RunResult::Failed;
        }
    };
    if let Ok(mut i) = sh.instances.lock() {
        i.current.retain(|(n, _, _)| n != &c.name);
        i.current
            .push((c.name.clone(), attempt, started.id.clone()));
    }
    sh.event(
        who,
        false,
        "Created",
        format!("Created container: {}", c.name),
    );
    sh.event(
        who,
        false,
        "Started",
        format!("Started container {}", c.name),
    );
    let started_at = now_rfc3339();
    let container_id = format!("coxswain://{}", started.id);
    // Sidecars get probes and hooks like containers; plain init containers do not.
    let plain_init = init && !is_sidecar(c);
    let has_startup = !plain_init && c.startup_probe.is_some();
    let has_readiness = !plain_init && c.readiness_probe.is_some();
    let implicit_ready_delay = if plain_init || has_readiness {
        None
    } else {
        rt.readiness_delay(&sh.info, c)
    };
    {
        let started_at = started_at.clone();
        let container_id = container_id.clone();
        let image = c.image.clone();
        sh.update_container(init, &c.name, move |s| {
            if let Some(st) = s.state.take() {
                if st.terminated.is_some() {
                    s.last_state = Some(st);
                }
            }
            s.state = Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: started_at.clone(),
                }),
                ..Default::default()
            });
            s.restart_count = attempt as i32;
            s.image = image.clone();
            s.container_id = container_id;
            s.image_id = image_id;
            s.started = Some(!has_startup);
            s.ready =
                !plain_init && !has_startup && !has_readiness && implicit_ready_delay.is_none();
        });
    }

    let cause = supervise(sh, c, init, &started, term, implicit_ready_delay).await;
    let exit = match cause {
        StopCause::Exited(e) => e,
        StopCause::Changed => {
            sh.event(
                who,
                false,
                "Killing",
                format!("Container {} definition changed, will be restarted", c.name),
            );
            let e = Box::pin(stop_container(sh, c, &started, sh.grace())).await;
            record_exit(sh, c, init, &started_at, &container_id, &e, true);
            return RunResult::Changed;
        }
        StopCause::Probe(which, message) => {
            sh.event(who, false, "Killing", message);
            let probe = match which {
                "startup" => c.startup_probe.as_ref(),
                _ => c.liveness_probe.as_ref(),
            };
            let grace = probe
                .and_then(|p| p.termination_grace_period_seconds)
                .map(|g| sh.ctx.config.secs(g as i64))
                .unwrap_or_else(|| sh.grace());
            let e = Box::pin(stop_container(sh, c, &started, grace)).await;
            // It will be restarted (unless Never): it must not look Succeeded meanwhile.
            let restarting = restart_policy(spec_of(&sh.pod())) != "Never";
            record_exit(sh, c, init, &started_at, &container_id, &e, restarting);
            return RunResult::Killed;
        }
        StopCause::Terminate(grace) => {
            sh.event(
                who,
                false,
                "Killing",
                format!("Stopping container {}", c.name),
            );
            let e = Box::pin(stop_container(sh, c, &started, grace)).await;
            record_exit(sh, c, init, &started_at, &container_id, &e, false);
            return RunResult::Stopped;
        }
    };
    record_exit(sh, c, init, &started_at, &container_id, &exit, false);
    RunResult::Exited(exit)
}

fn record_exit<R: Runtime>(
    sh: &Shared<R>,
    c: &Container,
    init: bool,
    started_at: &str,
    container_id: &str,
    exit: &Exit,
    restarting: bool,
) {
    let reason = exit.reason.clone().unwrap_or_else(|| {
        if exit.code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        }
    });
    let finished = now_rfc3339();
    sh.update_container(init, &c.name, |s| {
        let terminated = Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: exit.code,
                signal: exit.signal,
                reason,
                started_at: started_at.into(),
                finished_at: finished,
                container_id: container_id.into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        if restarting {
            s.last_state = terminated;
            s.state = waiting("ContainerCreating", "");
        } else {
            s.state = terminated;
        }
        s.ready = false;
        s.started = Some(false);
    });
}

/// preStop (bounded by the grace period), SIGTERM, then SIGKILL when the grace period is over.
async fn stop_container<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    started: &Started,
    grace: Duration,
) -> Exit {
    let deadline = Instant::now() + grace;
    if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
        if let Some(action) = hook_action(sh, c, h) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let run = sh.ctx.runtime.run(
                &sh.info,
                c,
                &started.id,
                ActionKind::PreStop,
                &action,
                remaining,
            );
            let outcome = tokio::select! {
                o = run => Some(o),
                _ = tokio::time::sleep(remaining) => None,
                e = started.wait() => { return e; }
            };
            let failure = match outcome {
                Some(Outcome::Failure(m)) => Some(m),
                None => Some(format!("PreStopHook timed out after {}", human(grace))),
                Some(Outcome::Success) => None,
            };
            if let Some(m) = failure {
                sh.event(
                    Some((c, false)),
                    true,
                    "FailedPreStopHook",
                    hook_failure(&key_of(&sh.pod()), c, &action, &m),
                );
            }
        }
    }
    sh.ctx.runtime.signal(&started.id, false);
    let remaining = deadline.saturating_duration_since(Instant::now());
    tokio::select! {
        e = started.wait() => e,
        _ = tokio::time::sleep(remaining) => {
            sh.ctx.runtime.signal(&started.id, true);
            started.wait().await
        }
    }
}

/// Watches a running container: postStart, probes, its exit and pod termination.
async fn supervise<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    started: &Started,
    term: &mut Termination,
    implicit_ready_delay: Option<Duration>,
) -> StopCause {
    let plain_init = init && !is_sidecar(c);
    // postStart runs right after start; the container is killed if it fails.
    if let Some(h) = (!plain_init)
        .then(|| c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()))
        .flatten()
    {
        if let Some(action) = hook_action(sh, c, h) {
            let timeout = sh.grace().max(Duration::from_secs(1));
            let run = Box::pin(sh.ctx.runtime.run(
                &sh.info,
                c,
                &started.id,
                ActionKind::PostStart,
                &action,
                timeout,
            ));
            let outcome = tokio::select! {
                o = run => o,
                e = started.wait() => return StopCause::Exited(e),
                g = terminated(term) => return StopCause::Terminate(g),
            };
            if let Outcome::Failure(m) = outcome {
                let msg = hook_failure(&key_of(&sh.pod()), c, &action, &m);
                sh.event(Some((c, false)), true, "FailedPostStartHook", msg);
                return StopCause::Probe("postStart", "FailedPostStartHook".into());
            }
        }
    }
    if plain_init {
        return tokio::select! {
            e = started.wait() => StopCause::Exited(e),
            g = terminated(term) => StopCause::Terminate(g),
        };
    }
    // Probes (and a scripted readiness delay) are boxed and set up only for a container that
    // has any: a plain container's idle state holds none of them (sim pods' memory, issue 17).
    let has_probes = c.startup_probe.is_some()
        || c.readiness_probe.is_some()
        || c.liveness_probe.is_some()
        || implicit_ready_delay.is_some();
    let probes = async {
        if has_probes {
            Box::pin(probe_all(sh, c, init, started, implicit_ready_delay)).await
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        e = started.wait() => StopCause::Exited(e),
        g = terminated(term) => StopCause::Terminate(g),
        (which, msg) = probes => StopCause::Probe(which, msg),
        _ = definition_changed(sh, c) => StopCause::Changed,
    }
}

/// Probe results with thresholds. Returns on a liveness or startup failure.
async fn probe_all<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    started: &Started,
    implicit_ready_delay: Option<Duration>,
) -> (&'static str, String) {
    if let Some(p) = &c.startup_probe {
        if probe_loop(sh, c, started, ActionKind::Startup, p, |_| {})
            .await
            .is_err()
        {
            return (
                "startup",
                format!(
                    "Container {} failed startup probe, will be restarted",
                    c.name
                ),
            );
        }
        sh.update_container(init, &c.name, |s| {
            s.started = Some(true);
            if c.readiness_probe.is_none() {
                s.ready = true;
            }
        });
    }
    let readiness = async {
        if let Some(p) = &c.readiness_probe {
            let name = c.name.clone();
            let _ = probe_loop(sh, c, started, ActionKind::Readiness, p, |ok| {
                sh.update_container(init, &name, |s| {
                    if s.ready != ok {
                        s.ready = ok;
                    }
                });
            })
            .await;
        } else if let Some(d) = implicit_ready_delay {
            tokio::time::sleep(d).await;
            sh.update_container(init, &c.name, |s| s.ready = true);
        }
        std::future::pending::<()>().await
    };
    let liveness = async {
        if let Some(p) = &c.liveness_probe {
            if probe_loop(sh, c, started, ActionKind::Liveness, p, |_| {})
                .await
                .is_err()
            {
                return (
                    "liveness",
                    format!(
                        "Container {} failed liveness probe, will be restarted",
                        c.name
                    ),
                );
            }
        }
        std::future::pending().await
    };
    tokio::select! {
        r = liveness => r,
        _ = readiness => unreachable_pending(),
    }
}

fn unreachable_pending() -> (&'static str, String) {
    ("", String::new())
}

/// One probe's loop: initial delay, then every period, with timeout and thresholds.
/// Readiness never returns Err (it reports through `on_change`); startup returns Ok on success;
/// liveness and startup return Err after failureThreshold consecutive failures.
async fn probe_loop<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    started: &Started,
    kind: ActionKind,
    p: &Probe,
    mut on_change: impl FnMut(bool),
) -> Result<(), String> {
    let cfg = &sh.ctx.config;
    let Some(action) = probe_action(sh, c, p) else {
        return Ok(());
    };
    let period = cfg.secs(p.period_seconds.unwrap_or(10).max(1) as i64);
    let timeout = cfg.secs(p.timeout_seconds.unwrap_or(1).max(1) as i64);
    let success_threshold = p.success_threshold.unwrap_or(1).max(1) as u32;
    let failure_threshold = p.failure_threshold.unwrap_or(3).max(1) as u32;
    tokio::time::sleep(cfg.secs(p.initial_delay_seconds.unwrap_or(0) as i64)).await;
    let (mut ok_run, mut fail_run) = (0u32, 0u32);
    let mut last: Option<bool> = None;
    loop {
        let t0 = Instant::now();
        let outcome = sh
            .ctx
            .runtime
            .run(&sh.info, c, &started.id, kind, &action, timeout)
            .await;
        let result = match outcome {
            Outcome::Success => "successful",
            Outcome::Failure(_) => "failed",
        };
        metrics::counter!("prober_probe_total", "probe_type" => kind.probe_name(), "result" => result)
            .increment(1);
        match outcome {
            Outcome::Success => {
                ok_run += 1;
                fail_run = 0;
                if ok_run >= success_threshold {
                    if kind == ActionKind::Startup {
                        return Ok(());
                    }
                    if last != Some(true) {
                        last = Some(true);
                        on_change(true);
                    }
                }
            }
            Outcome::Failure(m) => {
                fail_run += 1;
                ok_run = 0;
                sh.event(
                    Some((c, false)),
                    true,
                    "Unhealthy",
                    format!("{} probe failed: {m}", kind.probe_name()),
                );
                if fail_run >= failure_threshold {
                    if kind != ActionKind::Readiness {
                        return Err(m);
                    }
                    if last != Some(false) {
                        last = Some(false);
                        on_change(false);
                    }
                }
            }
        }
        let spent = t0.elapsed();
        tokio::time::sleep(period.saturating_sub(spent)).await;
    }
}

/// While the pod runs, its projected volumes are written again every `volume_sync` (a
/// ServiceAccount token is renewed before it expires: [`crate::projected`]).
fn refresh_projected<R: Runtime>(sh: &Arc<Shared<R>>) {
    let Some(src) = sh.ctx.objects.clone() else {
        return;
    };
    if !sh.ctx.runtime.materializes_volumes() {
        return;
    }
    let volumes: Vec<_> = spec_of(&sh.pod())
        .volumes
        .iter()
        .filter_map(|v| Some((v.name.clone(), v.projected.clone()?)))
        .collect();
    if volumes.is_empty() {
        return;
    }
    let weak = Arc::downgrade(sh);
    let period = sh.ctx.config.volume_sync.max(Duration::from_millis(10));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(sh) = weak.upgrade() else {
                return;
            };
            for (name, p) in &volumes {
                match crate::projected::files(src.as_ref(), &sh.pod(), p).await {
                    Ok(files) => {
                        if let Err(e) = sh.ctx.runtime.write_volume(&sh.info, name, &files) {
                            tracing::warn!(pod = %sh.info.name, volume = %name, error = %e, "writing a projected volume");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(pod = %sh.info.name, volume = %name, error = %e, "refreshing a projected volume")
                    }
                }
            }
        }
    });
}

/// The container with env values from ConfigMaps/Secrets filled in (envFrom expanded, env
/// entries winning), after writing the pod's configMap/secret volume files. Err: the waiting
/// reason and message (CreateContainerConfigError, or ContainerCreating for a missing volume
/// source). Ok(None): the container needs nothing filled in and is used as it is.
async fn prepare<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
) -> Result<Option<Box<Container>>, (&'static str, String)> {
    let Some(src) = sh.ctx.objects.clone() else {
        return Ok(None);
    };
    let ns = sh.info.namespace.clone();
    let lower = |k: &str| {
        if k == "ConfigMap" {
            "configmap"
        } else {
            "secret"
        }
    };
    let fetch = |kind: &'static str, name: String, optional: bool| {
        let src = src.clone();
        let ns = ns.clone();
        async move {
            match src.data(kind, &ns, &name).await {
                Ok(Some(d)) => Ok(Some(d)),
                Ok(None) if optional => Ok(None),
                Ok(None) => Err(format!("{} \"{name}\" not found", lower(kind))),
                Err(e) => Err(e),
            }
        }
    };
    // Volumes first: a missing source keeps the pod in ContainerCreating.
    for v in spec_of(&sh.pod()).volumes.clone() {
        if let Some(p) = &v.projected {
            if !sh.ctx.runtime.materializes_volumes() {
                continue;
            }
            // A source made just after the pod (a new namespace's kube-root-ca.crt) is waited
            // for, at most one volume sync period, as the kubelet's volume manager retries.
            let deadline = tokio::time::Instant::now() + sh.ctx.config.volume_sync;
            let files = loop {
                match crate::projected::files(src.as_ref(), &sh.pod(), p).await {
                    Ok(files) => break files,
                    Err(_) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        return Err((
                            "ContainerCreating",
                            format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name),
                        ))
                    }
                }
            };
            sh.ctx
                .runtime
                .write_volume(&sh.info, &v.name, &files)
                .map_err(|e| ("ContainerCreating", e))?;
            continue;
        }
        let (kind, name, optional, items) = if let Some(cm) = &v.config_map {
            (
                "ConfigMap",
                cm.name.clone(),
                cm.optional.unwrap_or(false),
                cm.items.clone(),
            )
        } else if let Some(sec) = &v.secret {
            (
                "Secret",
                sec.secret_name.clone(),
                sec.optional.unwrap_or(false),
                sec.items.clone(),
            )
        } else {
            continue;
        };
        let data = fetch(kind, name.clone(), optional).await.map_err(|e| {
            (
                "ContainerCreating",
                format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name),
            )
        })?;
        let data = data.unwrap_or_default();
        let files: Data = if items.is_empty() {
            data
        } else {
            items
                .iter()
                .filter_map(|i| data.get(&i.key).map(|d| (i.path.clone(), d.clone())))
                .collect()
        };
        sh.ctx
            .runtime
            .write_volume(&sh.info, &v.name, &files)
            .map_err(|e| ("ContainerCreating", e))?;
    }
    if c.env_from.is_empty()
        && !c.env.iter().any(|e| {
            e.value_from
                .as_ref()
                .is_some_and(|f| f.config_map_key_ref.is_some() || f.secret_key_ref.is_some())
        })
    {
        return Ok(None);
    }
    let cfg = |e: String| ("CreateContainerConfigError", e);
    let mut env: Vec<coxswain_api::v1::EnvVar> = vec![];
    for from in &c.env_from {
        let (kind, name, optional) = if let Some(cm) = &from.config_map_ref {
            ("ConfigMap", cm.name.clone(), cm.optional.unwrap_or(false))
        } else if let Some(sec) = &from.secret_ref {
            ("Secret", sec.name.clone(), sec.optional.unwrap_or(false))
        } else {
            continue;
        };
        if let Some(d) = fetch(kind, name, optional).await.map_err(cfg)? {
            for (k, v) in d {
                env.push(coxswain_api::v1::EnvVar {
                    name: format!("{}{k}", from.prefix),
                    value: String::from_utf8_lossy(&v).into_owned(),
                    value_from: None,
                });
            }
        }
    }
    for e in &c.env {
        let key_ref = e.value_from.as_ref().and_then(|f| {
            f.config_map_key_ref
                .as_ref()
                .map(|r| {
                    (
                        "ConfigMap",
                        r.name.clone(),
                        r.key.clone(),
                        r.optional.unwrap_or(false),
                    )
                })
                .or_else(|| {
                    f.secret_key_ref.as_ref().map(|r| {
                        (
                            "Secret",
                            r.name.clone(),
                            r.key.clone(),
                            r.optional.unwrap_or(false),
                        )
                    })
                })
        });
        let Some((kind, name, key, optional)) = key_ref else {
            env.retain(|x| x.name != e.name);
            env.push(e.clone());
            continue;
        };
        let data = fetch(kind, name.clone(), optional).await.map_err(cfg)?;
        let value = match data.as_ref().and_then(|d| d.get(&key)) {
            Some(v) => String::from_utf8_lossy(v).into_owned(),
            None if optional => continue,
            None => {
                return Err(cfg(format!(
                    "couldn't find key {key} in {kind} {}/{name}",
                    sh.info.namespace
                )))
            }
        };
        env.retain(|x| x.name != e.name);
        env.push(coxswain_api::v1::EnvVar {
            name: e.name.clone(),
            value,
            value_from: None,
        });
    }
    let mut c2 = c.clone();
    c2.env = env;
    c2.env_from.clear();
    Ok(Some(Box::new(c2)))
}
