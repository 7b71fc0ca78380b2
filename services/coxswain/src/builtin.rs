//! `coxswain builtin …` (hidden): the workloads the process runtime runs for catalog images, and
//! the supervisor wrapping user commands. Not meant to be run by hand.
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use coxswain_agent::builtin::{self, FileCacheConfig, WebKind};

use crate::duration;

#[derive(Args, Clone, Debug)]
pub struct BuiltinArgs {
    #[command(subcommand)]
    pub workload: Workload,
}

#[derive(Subcommand, Clone, Debug)]
pub enum Workload {
    /// A static web server (nginx/httpd images): the docroot's files, 404 elsewhere.
    Web {
        #[arg(long)]
        addr: IpAddr,
        #[arg(long = "port", required = true)]
        ports: Vec<u16>,
        #[arg(long)]
        root: PathBuf,
        /// How long a file is served from memory before it is looked at again (nginx's
        /// open_file_cache_valid; a file changed more recently is looked at sooner). 0, the
        /// default: looked at (one stat) on every request, as the official nginx image, which
        /// configures no open_file_cache; read again only when it changed.
        #[arg(long, default_value = "0s", value_parser = duration::parse)]
        open_file_cache_valid: Duration,
        /// How many URL paths' files are kept in memory (nginx's open_file_cache max=).
        #[arg(long, default_value_t = FileCacheConfig::default().max_entries)]
        open_file_cache_max: usize,
        /// How many bytes of file contents are kept in all; a file over a sixteenth of it is
        /// read on every request.
        #[arg(long, default_value_t = FileCacheConfig::default().max_bytes)]
        open_file_cache_max_bytes: usize,
    },
    /// An HTTP server burning CPU per request (hpa-example).
    CpuBurner {
        #[arg(long)]
        addr: IpAddr,
        #[arg(long = "port", required = true)]
        ports: Vec<u16>,
        #[arg(long, default_value_t = 50)]
        burn_millis: u64,
    },
    /// A process that idles until SIGTERM.
    Idle,
    /// Prints a message at an interval (log-producing images).
    Print {
        #[arg(long)]
        message: String,
        #[arg(long, default_value_t = 5000)]
        interval_millis: u64,
    },
    /// The `loadgen` binary beside this one, with these args (the coxswain/loadgen image).
    Loadgen {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Becomes a container's user (groups, gid, uid; CAP_NET_BIND_SERVICE kept as an ambient
    /// capability) and execs its command: how a root agent starts a non-root container.
    RunAs {
        #[arg(long)]
        uid: u32,
        #[arg(long)]
        gid: u32,
        #[arg(long, value_delimiter = ',')]
        groups: Vec<u32>,
        #[arg(long)]
        no_new_privs: bool,
        /// First a private mount namespace: this directory covered by a tmpfs, the `--keep`
        /// directories under it bind-mounted back (`coxswain_agent::runtime::isolation`).
        #[arg(long)]
        private_dir: Option<std::path::PathBuf>,
        #[arg(long)]
        keep: Vec<std::path::PathBuf>,
        /// Then a PID namespace: the command runs as its first process (pid 1), under a
        /// `/proc` of its own; this process stays outside as its parent.
        #[arg(long)]
        pid_namespace: bool,
        /// Internal: the first process of the new PID namespace mounts its `/proc`.
        #[arg(long, hide = true)]
        mount_proc: bool,
        /// The pid of the process starting this one (the agent gives its own): this process
        /// dies with it, and exits at once when it is gone already.
        #[arg(long)]
        parent_pid: Option<i32>,
        /// Instead of new namespaces, join those of the running container whose first process
        /// is PID (an exec probe, a hook, `exec`); the command runs as this process's child.
        #[arg(long, conflicts_with_all = ["private_dir", "pid_namespace"])]
        join: Option<i32>,
        /// An exec probe's or hook's timeout, counted from the command's start: the command
        /// runs as this process's child, killed with its process group then.
        #[arg(long)]
        timeout_millis: Option<u64>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
    /// Whether this machine allows the private mount namespace `run-as --private-dir` makes
    /// (tried over DIR, keeping DIR/keep); exits 1 with the reason when not.
    NsProbe {
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Internal: the probe's first process of a PID namespace.
        #[arg(long, hide = true)]
        pid_child: bool,
    },
    /// Runs a user command as a container's process.
    Supervise {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
}

pub async fn run(args: BuiltinArgs) -> anyhow::Result<()> {
    match args.workload {
        Workload::Web {
            addr,
            ports,
            root,
            open_file_cache_valid,
            open_file_cache_max,
            open_file_cache_max_bytes,
        } => {
            let cache = FileCacheConfig {
                valid: open_file_cache_valid,
                max_entries: open_file_cache_max,
                max_bytes: open_file_cache_max_bytes,
            };
            builtin::serve_web(addr, &ports, WebKind::Static { root, cache }).await
        }
        Workload::CpuBurner {
            addr,
            ports,
            burn_millis,
        } => builtin::serve_web(addr, &ports, WebKind::CpuBurner(burn_millis)).await,
        Workload::Print {
            message,
            interval_millis,
        } => {
            builtin::print(&message, std::time::Duration::from_millis(interval_millis)).await;
            Ok(())
        }
        Workload::Idle => {
            builtin::idle().await;
            Ok(())
        }
        Workload::Loadgen { args } => {
            use std::os::unix::process::CommandExt;
            builtin::die_with_parent(true);
            let exe = std::env::current_exe()?.with_file_name("loadgen");
            let err = std::process::Command::new(&exe).args(&args).exec();
            anyhow::bail!(
                "running {}: {err} (build it with cargo build -p loadgen)",
                exe.display()
            )
        }
        Workload::RunAs {
            uid,
            gid,
            groups,
            no_new_privs,
            private_dir,
            keep,
            pid_namespace,
            mount_proc,
            parent_pid,
            join,
            timeout_millis,
            argv,
        } => {
            let timeout = timeout_millis.map(std::time::Duration::from_millis);
            use coxswain_agent::runtime::isolation;
            use std::os::unix::process::CommandExt;
            // Before anything else (the first process of a PID namespace opens the host's
            // /proc/self here, before it mounts its own): die with the parent, and not start
            // at all when it died already. Armed again after each change of user, which
            // clears the signal.
            let guard = builtin::ParentDeath::new(parent_pid);
            let die_with_parent = || guard.arm(true);
            die_with_parent();
            let ids = coxswain_agent::runtime::user::RunAs {
                uid,
                gid,
                groups,
                no_new_privs,
            };
            if let Some(pid) = join {
                isolation::join(pid).map_err(|e| {
                    anyhow::anyhow!("joining the namespaces of the container's pid {pid}: {e}")
                })?;
                coxswain_agent::runtime::user::drop_privileges(&ids)
                    .map_err(|e| anyhow::anyhow!("becoming uid {uid} gid {gid}: {e}"))?;
                die_with_parent();
                // Only a child enters the PID namespace joined.
                let parent = isolation::Parent::start();
                let child = isolation::spawn_joined(
                    tokio::process::Command::new(&argv[0]).args(&argv[1..]),
                )
                .map_err(|e| anyhow::anyhow!("exec: \"{}\": {e}", argv[0]))?;
                std::process::exit(parent.wait(child, timeout).await);
            }
            if let Some(dir) = &private_dir {
                isolation::enter(dir, &keep).map_err(|e| {
                    anyhow::anyhow!("a private mount namespace over {}: {e}", dir.display())
                })?;
            }
            if pid_namespace {
                isolation::unshare_pid().map_err(|e| anyhow::anyhow!("a PID namespace: {e}"))?;
                // The namespace's first process is this binary again, which mounts the
                // namespace's /proc, becomes the container's user and execs the command.
                let mut first = tokio::process::Command::new("/proc/self/exe");
                first
                    .arg0("coxswain")
                    .args(["builtin", "run-as", "--mount-proc"]);
                first.args(["--uid", &uid.to_string(), "--gid", &gid.to_string()]);
                if !ids.groups.is_empty() {
                    let g: Vec<String> = ids.groups.iter().map(u32::to_string).collect();
                    first.args(["--groups", &g.join(",")]);
                }
                if no_new_privs {
                    first.arg("--no-new-privs");
                }
                // It checks its parent in this /proc's numbering (the host's, or the agent's
                // namespace's), which may not be this process's own.
                let me = std::fs::read_link("/proc/self")
                    .ok()
                    .and_then(|p| p.to_str()?.parse::<i32>().ok())
                    .unwrap_or(std::process::id() as i32);
                first.args(["--parent-pid", &me.to_string()]);
                let parent = isolation::Parent::start();
                let child = first
                    .arg("--")
                    .args(&argv)
                    .spawn()
                    .map_err(|e| anyhow::anyhow!("the PID namespace's first process: {e}"))?;
                std::process::exit(parent.wait(child, timeout).await);
            }
            if mount_proc {
                isolation::mount_proc().map_err(|e| anyhow::anyhow!("mounting /proc: {e}"))?;
            }
            coxswain_agent::runtime::user::drop_privileges(&ids)
                .map_err(|e| anyhow::anyhow!("becoming uid {uid} gid {gid}: {e}"))?;
            die_with_parent();
            if timeout.is_some() {
                let parent = isolation::Parent::start();
                let child = tokio::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .spawn()
                    .map_err(|e| anyhow::anyhow!("exec: \"{}\": {e}", argv[0]))?;
                std::process::exit(parent.wait(child, timeout).await);
            }
            let mut cmd = std::process::Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            if argv[0] == "/proc/self/exe" {
                cmd.arg0("coxswain");
            }
            let err = cmd.exec();
            anyhow::bail!("exec: \"{}\": {err}", argv[0])
        }
        Workload::NsProbe { dir, pid_child } => match pid_child {
            true => {
                coxswain_agent::runtime::isolation::probe_pid_child().map_err(anyhow::Error::msg)
            }
            false => coxswain_agent::runtime::isolation::probe(&dir).map_err(anyhow::Error::msg),
        },
        Workload::Supervise { argv } => {
            let code = builtin::supervise(&argv).await;
            std::process::exit(code);
        }
    }
}
