//! One container's life under the restart policy: pull, prepare, start, supervise (postStart,
//! probes, exit, termination, an image changed in place), stop (preStop, SIGTERM, SIGKILL); the
//! crash and image-pull back-offs between runs are in [`super::backoff`].
use super::backoff::{crash_backoff, human, pull_backoff};
use super::probe::{hook_action, hook_failure, probe_all};
use super::sources::prepare;
use super::*;
/// One container's life under the restart policy.
pub(super) async fn container_loop<R: Runtime>(
    sh: Arc<Shared<R>>,
    c: Box<Container>,
    init: bool,
    mut term: Termination,
) {
    let mut backoff = Backoff::new(sh.ctx.config.backoff_base, sh.ctx.config.backoff_max);
    let mut pull_backoff_state =
        Backoff::new(sh.ctx.config.backoff_base, sh.ctx.config.backoff_max);
    // Sidecars (restartable init containers) always restart. The policy is read once, as two
    // flags (the future keeps no copy of the string).
    let (never, on_failure) = if init {
        (false, false)
    } else {
        let pod = sh.pod();
        let policy = restart_policy(spec_of(&pod));
        (policy == "Never", policy == "OnFailure")
    };
    let mut attempt = sh.first_attempt(init, &c.name);
    // A container is taken from the pod's latest version for each attempt (it may have been
    // given another image in place; nothing else of it may change), and the loop keeps only
    // its name: a running container's future holds no copy of it (a Container is ~500 bytes
    // inline plus its strings: sim pods' memory, issue 17). A sidecar keeps the copy it
    // started with, as before (an init container's new image applies from the pod's next
    // start).
    let name: Box<str> = c.name.as_str().into();
    let mut sidecar = init.then_some(c);
    loop {
        if is_terminating(&term).is_some() {
            return;
        }
        let c = match sidecar.take() {
            Some(c) => c,
            None => match latest_container(&sh, &name) {
                Some(c) => Box::new(c),
                // Validation keeps a pod's containers (only their images change).
                None => return,
            },
        };
        let started = Instant::now();
        let (result, c) = run_attempt(&sh, c, init, attempt, &mut term).await;
        let c = match c {
            Some(c) => c,
            None => match latest_container(&sh, &name) {
                Some(c) => Box::new(c),
                None => return,
            },
        };
        let exit_code = match result {
            RunResult::Stopped => return,
            RunResult::Changed => {
                attempt += 1;
                sidecar = init.then_some(c);
                continue;
            }
            RunResult::PullFailed => {
                // The back-offs are boxed: a running container's future holds neither.
                let wait = pull_backoff(&sh, &c, init, &mut pull_backoff_state, &mut term);
                if !Box::pin(wait).await {
                    return;
                }
                sidecar = init.then_some(c);
                continue;
            }
            RunResult::Exited(e) => Some(e.code),
            // Killed by the agent: restarted unless the policy is Never (kubelet).
            RunResult::Killed => None,
            RunResult::Failed => Some(128),
        };
        let restart = if never {
            false
        } else if on_failure {
            exit_code != Some(0)
        } else {
            true
        };
        if !restart {
            return;
        }
        if started.elapsed() >= sh.ctx.config.backoff_reset {
            backoff.reset();
        }
        attempt += 1;
        let delay = backoff.next_delay();
        if !Box::pin(crash_backoff(&sh, &c, init, delay, attempt, &mut term)).await {
            return;
        }
        sidecar = init.then_some(c);
    }
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

/// A started container instance: what its supervision and its stop need.
struct Running {
    /// The container as prepared (env from ConfigMaps/Secrets filled in), if it needed that.
    prepared: Option<Box<Container>>,
    started: Started,
    started_at: String,
}

/// Pulls, starts and supervises one container instance until it ends. The start and the stop
/// are boxed and let go once done: while the container runs, the future holds what runs
/// (`Running`) and the supervision, none of the start's or the stop's locals (sim pods'
/// memory, issue 17).
pub(super) async fn run_once<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    attempt: u32,
    term: &mut Termination,
) -> RunResult {
    let (run, hook_stop, implicit_ready_delay) =
        match Box::pin(start_once(sh, c, init, attempt, term)).await {
            Ok(started) => started,
            Err(result) => return result,
        };
    let cause = match hook_stop {
        Some(cause) => cause,
        None => {
            let rc = run.prepared.as_deref().unwrap_or(c);
            if is_plain(rc, init, implicit_ready_delay) {
                supervise_plain(sh, &rc.name, &rc.image, &run.started, term).await
            } else {
                Box::pin(supervise(
                    sh,
                    rc,
                    init,
                    &run.started,
                    term,
                    implicit_ready_delay,
                ))
                .await
            }
        }
    };
    Box::pin(stop_once(sh, c, init, &run, cause)).await
}

/// A container supervised by `supervise_plain`: no probes and no scripted readiness delay
/// (an init container only as a sidecar).
fn is_plain(c: &Container, init: bool, implicit_ready_delay: Option<Duration>) -> bool {
    (!init || is_sidecar(c))
        && c.startup_probe.is_none()
        && c.readiness_probe.is_none()
        && c.liveness_probe.is_none()
        && implicit_ready_delay.is_none()
}

/// `run_once` for a container the caller hands over: while a plain container (no probes, no
/// postStart hook that failed, not an init container) runs, its copy is let go and only its
/// name and image are kept; it is taken again from the pod's latest version, with the image
/// that ran, to be stopped (nothing else of a pod's container may change). Returns the copy
/// when it was kept.
async fn run_attempt<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: Box<Container>,
    init: bool,
    attempt: u32,
    term: &mut Termination,
) -> (RunResult, Option<Box<Container>>) {
    let plain = !init
        && c.startup_probe.is_none()
        && c.readiness_probe.is_none()
        && c.liveness_probe.is_none();
    if !plain {
        // Boxed: a probed container's supervision is (this future stays a plain one's size).
        let result = Box::pin(run_once(sh, &c, init, attempt, term)).await;
        return (result, Some(c));
    }
    let (run, hook_stop, implicit_ready_delay) =
        match Box::pin(start_once(sh, &c, init, attempt, term)).await {
            Ok(started) => started,
            Err(result) => return (result, Some(c)),
        };
    let cause = match hook_stop {
        Some(cause) => cause,
        None if implicit_ready_delay.is_some() => {
            let rc = run.prepared.as_deref().unwrap_or(&c);
            let supervised = supervise(sh, rc, init, &run.started, term, implicit_ready_delay);
            Box::pin(supervised).await
        }
        None => {
            // The box is let go here, not at the end of the function.
            let (name, image) = {
                let c = *{ c };
                (c.name, c.image)
            };
            let cause = supervise_plain(sh, &name, &image, &run.started, term).await;
            // Boxed: the stop's future is, and this one holds no Container inline.
            let mut c = Box::new(latest_container(sh, &name).unwrap_or_else(|| Container {
                name,
                ..Default::default()
            }));
            c.image = image;
            let result = Box::pin(stop_once(sh, &c, init, &run, cause)).await;
            return (result, None);
        }
    };
    let result = Box::pin(stop_once(sh, &c, init, &run, cause)).await;
    (result, Some(c))
}

/// Pulls, prepares and starts one container instance, and runs its postStart hook: the
/// instance, why it stops already (its hook failed, or it exited or the pod is terminating
/// meanwhile) and the scripted readiness delay; Err: how the attempt ended (recorded).
async fn start_once<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    attempt: u32,
    term: &mut Termination,
) -> Result<(Running, Option<StopCause>, Option<Duration>), RunResult> {
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
                return Err(RunResult::PullFailed);
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
                return Err(RunResult::PullFailed);
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
            return Err(RunResult::PullFailed);
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
        return Err(RunResult::PullFailed);
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
            return Err(RunResult::Failed);
        }
    };
    if let Ok(mut i) = sh.instances.lock() {
        i.current.retain(|(n, _, _)| n != &c.name);
        // Room for what runs, not the four a first push makes (sim pods' memory).
        i.current.reserve_exact(1);
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
    // postStart runs right after the start and before the container is reported Running: as the
    // kubelet, whose pod sync (and so the status it publishes) waits for the hook, a container
    // whose postStart has not completed is still ContainerCreating and not ready.
    let has_post_start =
        !plain_init && c.lifecycle.as_ref().is_some_and(|l| l.post_start.is_some());
    let hook_stop = if has_post_start {
        // This instance counts as a restart even if its hook fails and it never runs.
        sh.update_container(init, &c.name, move |s| s.restart_count = attempt as i32);
        Box::pin(post_start(sh, c, &started, term)).await
    } else {
        None
    };
    if hook_stop.is_none() {
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
    let run = Running {
        prepared: resolved_c,
        started,
        started_at,
    };
    Ok((run, hook_stop, implicit_ready_delay))
}

/// Stops a started instance for `cause` (preStop, SIGTERM, SIGKILL as needed), records how it
/// ended and says what that means for the container's loop.
async fn stop_once<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    run: &Running,
    cause: StopCause,
) -> RunResult {
    let c = run.prepared.as_deref().unwrap_or(c);
    let who = Some((c, init));
    let (started, started_at) = (&run.started, &run.started_at);
    let container_id = format!("coxswain://{}", started.id);
    let exit = match cause {
        StopCause::Exited(e) => e,
        StopCause::Changed => {
            sh.event(
                who,
                false,
                "Killing",
                format!("Container {} definition changed, will be restarted", c.name),
            );
            let e = stop_container(sh, c, started, sh.grace()).await;
            record_exit(sh, c, init, started_at, &container_id, &e, true);
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
            let e = stop_container(sh, c, started, grace).await;
            // It will be restarted (unless Never): it must not look Succeeded meanwhile.
            let restarting = restart_policy(spec_of(&sh.pod())) != "Never";
            record_exit(sh, c, init, started_at, &container_id, &e, restarting);
            return RunResult::Killed;
        }
        StopCause::Terminate(grace) => {
            sh.event(
                who,
                false,
                "Killing",
                format!("Stopping container {}", c.name),
            );
            let e = stop_container(sh, c, started, grace).await;
            record_exit(sh, c, init, started_at, &container_id, &e, false);
            return RunResult::Stopped;
        }
    };
    record_exit(sh, c, init, started_at, &container_id, &exit, false);
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

/// The container's postStart hook, run right after its start: None when it succeeded (or has
/// no runnable action), else why the container stops — it exited or the pod is terminating
/// meanwhile, or the hook failed and the container is killed (FailedPostStartHook).
async fn post_start<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    started: &Started,
    term: &mut Termination,
) -> Option<StopCause> {
    let h = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())?;
    let action = hook_action(sh, c, h)?;
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
        e = started.wait() => return Some(StopCause::Exited(e)),
        g = terminated(term) => return Some(StopCause::Terminate(g)),
    };
    if let Outcome::Failure(m) = outcome {
        let msg = hook_failure(&key_of(&sh.pod()), c, &action, &m);
        sh.event(Some((c, false)), true, "FailedPostStartHook", msg);
        return Some(StopCause::Probe("postStart", "FailedPostStartHook".into()));
    }
    None
}

/// Watches a running container without probes (its postStart done): as [`supervise`]'s
/// select of its exit, the pod's termination and a new image, in one small future (what a
/// running plain container's worker holds for its life; sim pods' memory, issue 17). The three
/// cells' wake-ups are made before their values are read, so no change is missed.
async fn supervise_plain<R: Runtime>(
    sh: &Shared<R>,
    name: &str,
    image: &str,
    started: &Started,
    term: &mut Termination,
) -> StopCause {
    let latest = &sh.latest;
    let exit = &started.exit;
    loop {
        let (exited, terminating, changed) = (exit.notified(), term.notified(), latest.notified());
        // As `Started::wait`: the exit, or 137/SIGKILL once its sender is gone without one.
        if let Some(e) = exit.borrow().clone() {
            return StopCause::Exited(e);
        }
        if exit.is_closed() {
            return StopCause::Exited(Exit {
                code: 137,
                signal: 9,
                reason: None,
            });
        }
        // As `terminated`: the grace period, or at once when the agent dropped the pod.
        if let Some(g) = *term.borrow() {
            return StopCause::Terminate(g);
        }
        if term.is_closed() {
            return StopCause::Terminate(Duration::ZERO);
        }
        // As `definition_changed` (a gone sender: never).
        let image_changed = latest
            .borrow()
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|x| x.name == name))
            .is_some_and(|x| x.image != image);
        if image_changed {
            return StopCause::Changed;
        }
        tokio::select! {
            _ = exited => {}
            _ = terminating => {}
            _ = changed => {}
        }
    }
}

/// Watches a running container (its postStart done): probes, its exit and pod termination.
async fn supervise<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    started: &Started,
    term: &mut Termination,
    implicit_ready_delay: Option<Duration>,
) -> StopCause {
    let plain_init = init && !is_sidecar(c);
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
