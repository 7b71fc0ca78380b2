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
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
        if self.enabled() && etcd.etcd_servers.iter().all(|s| s.trim().is_empty()) {
            bail!("--replicas {}: needs --etcd-servers (the replicas share etcd; the embedded store is one process's)", self.replicas);
        }
        Ok(())
    }
}

/// What `up` needs to start the other store replicas like itself.
pub struct StoreLike<'a> {
    pub etcd: &'a EtcdOpts,
    pub data_dir: &'a Path,
    pub auth: bool,
}

/// The running children; dropping it kills them.
pub struct Replicas {
    children: Vec<(String, Child)>,
    /// Every store replica's URL, this process's first: the components' `--server`.
    pub servers: Vec<String>,
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
        let mut r = Replicas {
            children: Vec::new(),
            servers: vec![url.to_string()],
        };
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
            let (child, line) = spawn(&name, &args, Some("coxswain ready ")).await?;
            let grpc = line
                .as_deref()
                .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("grpc=")))
                .context("the replica's ready line has no grpc=")?
                .to_string();
            r.servers.push(format!("{scheme}://{grpc}"));
            r.children.push((name, child));
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
                r.children.push((name, child));
            }
        }
        tracing::info!(servers = %servers, processes = r.children.len(), "replicas started");
        // For users: the --server list of every store replica.
        println!("coxswain replicas servers={servers}");
        Ok(r)
    }

    /// Pass SIGTERM on to every child and wait (bounded) for them to end: leaders release
    /// their Leases. Those still running after `grace` are killed.
    pub async fn stop(mut self, grace: Duration) {
        for (_, c) in &self.children {
            if let Some(pid) = c.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        let all = async {
            for (_, c) in &mut self.children {
                let _ = c.wait().await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            for (name, c) in &mut self.children {
                tracing::warn!(replica = %name, "did not stop in time; killed");
                let _ = c.kill().await;
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
