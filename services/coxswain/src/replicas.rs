//! `coxswain up --etcd-servers URL --replicas N` (issue 18 §3): the replicated topology in one
//! command. This process is store replica 1 and keeps what is not replicated (the node agents,
//! the proxy, the DNS, the metrics pipeline); it starts N−1 more `coxswain store` processes on
//! the same etcd and N replicas of each leader-elected component (`coxswain scheduler`,
//! `controllers` (with the HPA), `node-lifecycle`, each `--leader-elect` with `--server` naming
//! every store replica), and runs none of those in-process.
//!
//! The children are this process's: their stdout lines go to its log (with their pid), a
//! SIGTERM/SIGINT here is passed on (so leaders release their Leases), and each child exits when
//! this process is gone however it ended (the children's stdin is a pipe from here; they run
//! with `COXSWAIN_EXIT_WITH_STDIN` and exit at its end of file).
//!
//! A child that exits is restarted, as a supervisor (the kubelet) would: after the kubelet's
//! crash-loop backoff (`--replica-restart-backoff`, 10 s, doubled per exit up to
//! `--replica-restart-backoff-max`, 5 min; back to the base once a replica ran 2× the maximum
//! without exiting), with the same arguments (a store replica on the same address, so the
//! components' `--server` lists stay right). Nothing is restarted once `up` is stopping.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::duration;
use crate::etcd::EtcdOpts;

/// The environment variable that makes a process exit when its stdin ends.
pub const EXIT_WITH_STDIN: &str = "COXSWAIN_EXIT_WITH_STDIN";

/// The leader-elected components `--replicas` runs N of, as separate processes.
const COMPONENTS: [&str; 3] = ["scheduler", "controllers", "node-lifecycle"];

#[derive(Args, Clone, Debug)]
pub struct ReplicaOpts {
    /// With --etcd-servers: run N store replicas (this process and N−1 `coxswain store`
    /// processes on the same etcd) and N `--leader-elect` replicas of the scheduler, the
    /// controllers and the node lifecycle controller. 1: everything in this process.
    #[arg(long, env = "COXSWAIN_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// The replicas' leaseDuration (`--leader-elect-lease-duration` of each component).
    #[arg(long = "leader-elect-lease-duration", default_value = "15s", value_parser = duration::parse)]
    pub lease_duration: Duration,
    /// The replicas' renewDeadline.
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s", value_parser = duration::parse)]
    pub renew_deadline: Duration,
    /// The replicas' retryPeriod.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = duration::parse)]
    pub retry_period: Duration,
    /// The delay before restarting a replica that exited (the kubelet's crash-loop backoff:
    /// doubled at each exit up to --replica-restart-backoff-max).
    #[arg(long = "replica-restart-backoff", default_value = "10s", value_parser = duration::parse)]
    pub restart_backoff: Duration,
    /// The longest restart delay; a replica that ran twice this long without exiting starts
    /// again from --replica-restart-backoff.
    #[arg(long = "replica-restart-backoff-max", default_value = "5m", value_parser = duration::parse)]
    pub restart_backoff_max: Duration,
}

impl ReplicaOpts {
    pub fn enabled(&self) -> bool {
        self.replicas > 1
    }

    /// Refuse `--replicas` without etcd (the embedded store is one process's file) or of 0.
    pub fn check(&self, etcd: &EtcdOpts) -> anyhow::Result<()> {
        if self.replicas == 0 {
            bail!("--replicas: at least 1");
        }
        if self.restart_backoff.is_zero() {
            bail!("--replica-restart-backoff: must be more than 0 (a replica that keeps exiting would be restarted in a busy loop)");
        }
        if self.enabled() && etcd.etcd_servers.iter().all(|s| s.trim().is_empty()) {
            bail!("--replicas {}: needs --etcd-servers (the replicas share etcd; the embedded store is one process's)", self.replicas);
        }
        Ok(())
    }
}

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What `up` needs to start the other store replicas like itself.
pub struct StoreLike<'a> {
    pub etcd: &'a EtcdOpts,
    pub data_dir: &'a Path,
    pub auth: bool,
}

/// The kubelet's crash-loop backoff (client-go's `flowcontrol.Backoff` as the kubelet uses it
/// per container): the first exit waits `base`, each later one twice the last delay, at most
/// `max`; an exit more than 2×`max` after the previous one starts again from `base`.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    last: Option<(Instant, Duration)>,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            last: None,
        }
    }

    /// The delay before the restart that follows an exit at `now`.
    pub fn next(&mut self, now: Instant) -> Duration {
        let delay = match self.last {
            Some((at, prev)) if now.saturating_duration_since(at) <= self.max * 2 => {
                (prev * 2).min(self.max)
            }
            _ => self.base,
        };
        self.last = Some((now, delay));
        delay
    }
}

/// The running children, each under its supervising task; dropping it kills them.
pub struct Replicas {
    tasks: Vec<(String, JoinHandle<()>)>,
    stopping: watch::Sender<bool>,
    /// Sets `stopping` at up's stop signal.
    on_signal: JoinHandle<()>,
    /// Every store replica's URL, this process's first: the components' `--server`.
    pub servers: Vec<String>,
}

impl Drop for Replicas {
    fn drop(&mut self) {
        self.stopping.send_replace(true);
        self.on_signal.abort();
        for (_, t) in &self.tasks {
            // The task's Child is dropped with it: kill_on_drop.
            t.abort();
        }
    }
}

/// One child: how to start it again.
struct Spec {
    name: String,
    args: Vec<String>,
    ready: Option<&'static str>,
}

/// Keep `child` running: when it exits (and `up` is not stopping) start it again after the
/// backoff; when `up` stops, pass SIGTERM on and wait up to `grace`, then kill.
async fn supervise(
    spec: Spec,
    child: Child,
    mut backoff: Backoff,
    mut stopping: watch::Receiver<bool>,
    grace: Duration,
) {
    let name = spec.name.as_str();
    let mut child = Some(child);
    let mut restarts = 0u32;
    loop {
        if let Some(c) = child.as_mut() {
            let pid = c.id().unwrap_or(0);
            // Held while the child runs: tokio's `wait` closes a stdin left in the Child, and
            // its end of file stops the child.
            let _stdin = c.stdin.take();
            let exited = tokio::select! {
                status = c.wait() => Some(status),
                _ = stopping.wait_for(|s| *s) => None,
            };
            let status = match exited {
                // Up stopped it (or it ended with up's stop signal): not restarted.
                Some(_) if *stopping.borrow() => return,
                Some(status) => status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                None => {
                    term(c);
                    if tokio::time::timeout(grace, c.wait()).await.is_err() {
                        tracing::warn!(replica = %name, pid, "did not stop in time; killed");
                        let _ = c.kill().await;
                    }
                    return;
                }
            };
            let delay = backoff.next(Instant::now());
            tracing::warn!(replica = %name, pid, %status, restart_in = ?delay, "replica exited");
            child = None;
        } else {
            let delay = backoff.next(Instant::now());
            tracing::warn!(replica = %name, restart_in = ?delay, "replica did not start");
        }
        let delay = backoff.last.map_or(Duration::ZERO, |(_, d)| d);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let started = tokio::select! {
            r = spawn(name, &spec.args, spec.ready) => r,
            _ = stopping.wait_for(|s| *s) => return,
        };
        match started {
            Ok((c, _)) => {
                restarts += 1;
                tracing::info!(replica = %name, pid = c.id().unwrap_or(0), restarts, "replica restarted");
                child = Some(c);
            }
            Err(e) => tracing::warn!(replica = %name, "restarting: {e:#}"),
        }
    }
}

/// SIGTERM to a running child.
fn term(c: &Child) {
    if let Some(pid) = c.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
}

fn exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("locating the coxswain binary")
}

/// `coxswain <args>` as a child of this process: stdin a pipe (it exits when we are gone),
/// stdout read line by line into our log; returns the first line starting with `ready`.
async fn spawn(
    name: &str,
    args: &[String],
    ready: Option<&str>,
) -> anyhow::Result<(Child, Option<String>)> {
    let mut child = Command::new(exe()?)
        .args(args)
        .env(EXIT_WITH_STDIN, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting replica {name}"))?;
    let pid = child.id().unwrap_or(0);
    let stdout = child.stdout.take().context("replica stdout")?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let want = ready.map(str::to_string);
    let who = name.to_string();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(replica = %who, pid, "{line}");
            if want.as_deref().is_some_and(|w| line.starts_with(w)) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(line);
                }
            }
        }
    });
    let line = match ready {
        None => None,
        Some(w) => Some(
            tokio::time::timeout(Duration::from_secs(60), rx)
                .await
                .map_err(|_| anyhow::anyhow!("replica {name}: no {w:?} line within 60s"))?
                .map_err(|_| anyhow::anyhow!("replica {name} exited before {w:?}"))?,
        ),
    };
    Ok((child, line))
}

/// Copy `<data-dir>/pki` into a replica's own data directory (the CA last: its presence means
/// the set is complete), so every replica serves with the cluster's CA and keys.
fn copy_pki(from: &Path, to: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(from)
        .with_context(|| format!("reading {}", from.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort_by_key(|p| p.file_name().is_some_and(|n| n == "ca.crt"));
    for f in files {
        let dst = to.join(f.file_name().context("file name")?);
        std::fs::copy(&f, &dst).with_context(|| format!("copying {}", f.display()))?;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn etcd_args(e: &EtcdOpts) -> Vec<String> {
    let mut a = vec![
        "--etcd-servers".to_string(),
        e.etcd_servers.join(","),
        "--etcd-prefix".into(),
        e.etcd_prefix.clone(),
        "--etcd-compaction-interval".into(),
        format!("{}ms", e.etcd_compaction_interval.as_millis()),
        "--etcd-connections".into(),
        e.etcd_connections.to_string(),
    ];
    for (flag, v) in [
        ("--etcd-cafile", &e.etcd_cafile),
        ("--etcd-certfile", &e.etcd_certfile),
        ("--etcd-keyfile", &e.etcd_keyfile),
    ] {
        if let Some(p) = v {
            a.push(flag.into());
            a.push(p.display().to_string());
        }
    }
    a
}

impl Replicas {
    /// Start the N−1 other store replicas, then N of each leader-elected component against
    /// all of them. `url`: this process's store.
    pub async fn start(
        opts: &ReplicaOpts,
        url: &str,
        me: StoreLike<'_>,
    ) -> anyhow::Result<Replicas> {
        let (stopping, _) = watch::channel(false);
        // Nothing is restarted once up has been asked to stop (a Ctrl-C reaches the children
        // too, before up stops them itself).
        let tx = stopping.clone();
        let on_signal = tokio::spawn(async move {
            crate::shutdown_signal().await;
            tx.send_replace(true);
        });
        let mut r = Replicas {
            tasks: Vec::new(),
            stopping,
            on_signal,
            servers: vec![url.to_string()],
        };
        let backoff = Backoff::new(opts.restart_backoff, opts.restart_backoff_max);
        let scheme = if me.auth { "https" } else { "http" };
        for k in 2..=opts.replicas {
            let name = format!("store-{k}");
            let dir = me.data_dir.join("replicas").join(&name);
            if me.auth {
                copy_pki(&me.data_dir.join("pki"), &dir.join("pki"))?;
            }
            let mut args = vec![
                "store".to_string(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--metrics-listen".into(),
                "127.0.0.1:0".into(),
                "--data-dir".into(),
                dir.display().to_string(),
                // Its admin kubeconfig stays in its directory, not merged into the user's.
                "--merge-kubeconfig".into(),
                dir.join("merged-config").display().to_string(),
                format!("--auth={}", me.auth),
            ];
            args.extend(etcd_args(me.etcd));
            let ready = "coxswain ready ";
            let (child, line) = spawn(&name, &args, Some(ready)).await?;
            let grpc = line
                .as_deref()
                .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("grpc=")))
                .context("the replica's ready line has no grpc=")?
                .to_string();
            r.servers.push(format!("{scheme}://{grpc}"));
            // Restarted on the same address: the components' --server lists name it.
            args[2] = grpc;
            r.supervise(
                Spec {
                    name,
                    args,
                    ready: Some(ready),
                },
                child,
                &backoff,
            );
        }
        let servers = r.servers.join(",");
        for component in COMPONENTS {
            for k in 1..=opts.replicas {
                let name = format!("{component}-{k}");
                let mut args = vec![
                    component.to_string(),
                    "--server".into(),
                    servers.clone(),
                    "--metrics-listen".into(),
                    "127.0.0.1:0".into(),
                    "--leader-elect".into(),
                    "--leader-elect-lease-duration".into(),
                    format!("{}ms", opts.lease_duration.as_millis()),
                    "--leader-elect-renew-deadline".into(),
                    format!("{}ms", opts.renew_deadline.as_millis()),
                    "--leader-elect-retry-period".into(),
                    format!("{}ms", opts.retry_period.as_millis()),
                ];
                if component == "controllers" {
                    // The HPA's metrics come from this process (the Metrics service is here).
                    args.push("--metrics-api".into());
                    args.push(url.to_string());
                }
                if me.auth {
                    // The admin's credentials (the components' own identities are issued in
                    // memory by `up` for its in-process components only).
                    args.push("--kubeconfig".into());
                    args.push(me.data_dir.join("admin.conf").display().to_string());
                }
                let (child, _) = spawn(&name, &args, None).await?;
                r.supervise(
                    Spec {
                        name,
                        args,
                        ready: None,
                    },
                    child,
                    &backoff,
                );
            }
        }
        tracing::info!(servers = %servers, processes = r.tasks.len(), "replicas started");
        // For users: the --server list of every store replica.
        println!("coxswain replicas servers={servers}");
        Ok(r)
    }

    fn supervise(&mut self, spec: Spec, child: Child, backoff: &Backoff) {
        let name = spec.name.clone();
        let task = tokio::spawn(supervise(
            spec,
            child,
            backoff.clone(),
            self.stopping.subscribe(),
            STOP_GRACE,
        ));
        self.tasks.push((name, task));
    }

    /// Stop restarting, pass SIGTERM on to every child and wait for them to end: leaders
    /// release their Leases. Those still running after the grace are killed.
    pub async fn stop(mut self) {
        self.stopping.send_replace(true);
        for (name, t) in std::mem::take(&mut self.tasks) {
            if let Err(e) = t.await {
                tracing::warn!(replica = %name, "supervisor: {e}");
            }
        }
    }
}

/// In a child started with `COXSWAIN_EXIT_WITH_STDIN`: exit when stdin ends (the parent is
/// gone, however it ended).
pub fn exit_with_stdin() {
    if std::env::var_os(EXIT_WITH_STDIN).is_none() {
        return;
    }
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_twice_the_cap() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(10), s(300));
        let t0 = Instant::now();
        let delays: Vec<u64> = (0..8).map(|i| b.next(t0 + s(i)).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300]);
        // Exactly 2×max after the last exit still counts as crash looping...
        assert_eq!(b.next(t0 + s(7 + 600)).as_secs(), 300);
        // ...more than that starts again from the base.
        assert_eq!(b.next(t0 + s(7 + 600 + 601)).as_secs(), 10);
        assert_eq!(b.next(t0 + s(7 + 600 + 602)).as_secs(), 20);
    }

    #[test]
    fn backoff_max_below_base_is_the_base() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(200), ms(100));
        let t0 = Instant::now();
        assert_eq!(b.next(t0), ms(200));
        assert_eq!(b.next(t0), ms(200));
    }
}
