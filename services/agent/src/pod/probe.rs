//! Probes and lifecycle hooks: their actions (named ports, the pod IP as default host, scaled
//! sleeps), Kubernetes' hook failure messages, and the probe loops with their thresholds.
use super::*;
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

pub(super) fn hook_action<R: Runtime>(
    sh: &Shared<R>,
    c: &Container,
    h: &LifecycleHandler,
) -> Option<Action> {
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
pub(super) fn hook_failure(sh_key: &str, c: &Container, action: &Action, msg: &str) -> String {
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

/// Probe results with thresholds. Returns on a liveness or startup failure.
pub(super) async fn probe_all<R: Runtime>(
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
