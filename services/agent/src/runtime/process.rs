//! The process runtime: every container is a real child process in its own process group.
//!
//! - `command`/`args` run as given on the host (`/bin/sh -c "…"` works as in busybox).
//! - An image without a command runs what the [`Catalog`] says, served by the coxswain binary
//!   itself: `coxswain builtin web|cpu-burner|idle …`.
//! - Each container gets a directory `ROOT/<pod uid>/<container>/` holding its log files
//!   (`<attempt>.log`, CRI records: see [`crate::crilog`]) and the in-image directories the catalog maps (nginx's
//!   `/usr/share/nginx/html` is `html/`); those in-image paths are rewritten to the container's
//!   directory in the container's command, args, exec probes and exec hooks, so a postStart
//!   `echo mayikt > /usr/share/nginx/html/index.html` changes the page the container serves.
//! - When the agent is root, every process of a container (its command, exec probes and hooks,
//!   `exec`) runs as the container's user ([`super::user`]): `runAsUser`/`runAsGroup`, else
//!   the node's default non-root user. Its `/tmp`, the image's directories and a working
//!   directory made for it are its own; emptyDir and claim directories are 0777 as the
//!   kubelet and local-path make them; its log files stay the agent's.
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use coxswain_api::v1::Container;
use tokio::process::Command;

use super::user::{self, RunAs, UserPolicy};
use super::{
    container_env, expand, Action, ActionKind, ExecCommand, Exit, Outcome, PodInfo, Runtime,
    Started, Usage,
};
use crate::catalog::{Catalog, Resolved, Workload};
use crate::net;

mod group;
mod paths;
mod probe;

pub use group::{exit_code, group_usage, kill_group, kill_leftovers};
use paths::{resolvable, workdir, workdir_in_image};
pub use paths::{rewrite_paths, unrewrite_paths};

struct Proc {
    pgid: i32,
    pod_uid: String,
    container: String,
    attempt: u32,
}

pub struct ProcessRuntime {
    root: PathBuf,
    exe: PathBuf,
    catalog: Catalog,
    procs: Mutex<HashMap<String, Proc>>,
    users: UserPolicy,
    /// The directory a container's private mount namespace covers (`root` unless set).
    private_dir: Option<PathBuf>,
    /// Set once at start when the machine allows private mount namespaces.
    isolation: std::sync::OnceLock<super::isolation::Isolation>,
}

impl ProcessRuntime {
    /// `root`: where container directories and logs go; `exe`: the coxswain binary serving the
    /// built-in workloads.
    pub fn new(root: PathBuf, exe: PathBuf, catalog: Catalog) -> ProcessRuntime {
        ProcessRuntime {
            root,
            exe,
            catalog,
            procs: Mutex::new(HashMap::new()),
            users: UserPolicy::of_this_process(),
            private_dir: None,
            isolation: std::sync::OnceLock::new(),
        }
    }

    /// Cover this directory (an ancestor of the root: `coxswain up`'s data directory) with each
    /// container's private view, instead of the root alone ([`super::isolation`]).
    pub fn with_private_dir(mut self, dir: PathBuf) -> ProcessRuntime {
        if self.root.starts_with(&dir) {
            self.private_dir = Some(dir);
        }
        self
    }

    /// Whether containers get a private mount namespace (detected by [`Self::prepare_root`]).
    pub fn isolation(&self) -> Option<&super::isolation::Isolation> {
        self.isolation.get()
    }

    /// The wrapper's argv with the private view's arguments: the pod's directory and the
    /// host directories under the covered one that the container mounts.
    fn isolated(
        &self,
        argv: Vec<String>,
        pod: &PodInfo,
        paths: &[(String, PathBuf)],
    ) -> Vec<String> {
        let Some(iso) = self.isolation.get() else {
            return argv;
        };
        self.view(iso, argv, pod, paths)
    }

    /// The wrapper's argv for a command run beside container `c` (an exec probe, a hook,
    /// `exec`): in the namespaces of its running instance when it has a PID namespace of its
    /// own, else a private view made as the container's.
    fn beside(
        &self,
        argv: Vec<String>,
        pod: &PodInfo,
        c: &Container,
        paths: &[(String, PathBuf)],
    ) -> Vec<String> {
        let Some(iso) = self.isolation.get() else {
            return argv;
        };
        if iso.pid {
            let wrapper = self.procs.lock().ok().and_then(|procs| {
                procs
                    .values()
                    .filter(|p| p.pod_uid == pod.uid && p.container == c.name)
                    .max_by_key(|p| p.attempt)
                    .map(|p| p.pgid)
            });
            if let Some(init) = wrapper.and_then(super::isolation::first_child) {
                return iso.wrap_join(argv, init);
            }
        }
        self.view(iso, argv, pod, paths)
    }

    fn view(
        &self,
        iso: &super::isolation::Isolation,
        argv: Vec<String>,
        pod: &PodInfo,
        paths: &[(String, PathBuf)],
    ) -> Vec<String> {
        let own = self.root.join(&pod.uid);
        let mut keep = vec![own.clone()];
        for (_, p) in paths {
            if p.starts_with(&iso.cover) && !p.starts_with(&own) && !keep.contains(p) {
                keep.push(p.clone());
            }
        }
        iso.wrap(argv, &keep)
    }

    /// The uid/gid an image runs as when the pod names none and the agent is root
    /// (`--default-run-as-user`, `--default-run-as-group`; 65534 by default). When containers
    /// run as another user, the root directory's ancestors are made reachable (traverse only,
    /// see [`user::make_reachable`]).
    pub fn with_default_user(mut self, uid: u32, gid: u32) -> ProcessRuntime {
        self.users.default_uid = uid;
        self.users.default_gid = gid;
        self
    }

    /// Makes the root directory reachable by the containers' users, when they are others
    /// than the agent's.
    pub fn prepare_root(&self) {
        if !self.users.can_change_user() {
            return;
        }
        let _ = std::fs::create_dir_all(&self.root);
        let cover = self
            .private_dir
            .clone()
            .unwrap_or_else(|| self.root.clone());
        let scratch = self.root.join(".ns-probe");
        match super::isolation::detect(&self.wrapper_exe(), &scratch) {
            Ok(allowed) => {
                tracing::info!(covered = %cover.display(), pid_namespace = allowed.pid, "containers get a private mount namespace: other pods' directories are hidden from them");
                let _ = self.isolation.set(super::isolation::Isolation {
                    cover,
                    pid: allowed.pid,
                });
            }
            Err(why) => {
                tracing::warn!(%why, "no private mount namespaces for containers: pods running as the same uid can read each other's files (tokens included) by their host paths");
            }
        }
        // Every process of a container that runs as another user (its command, exec probes and
        // hooks, `exec`) goes through the wrapper. With a private view the covered directory
        // is a tmpfs in each of them, holding the pod's own directories: on the host it stays
        // private (0700), and only its ancestors must let them through. Without one, they
        // reach their directories by the host path: the root's ancestors up to it.
        let reach = match self.isolation.get() {
            Some(iso) => iso.cover.parent().map(Path::to_path_buf),
            None => Some(self.root.clone()),
        };
        for d in reach.iter().flat_map(|r| user::make_reachable(r)) {
            tracing::info!(dir = %d.display(), "made traversable (g+x,o+x) for containers running as another user");
        }
    }

    /// This binary as another process names it (the `run-as` wrapper is started by `setsid`
    /// for a terminal, where `/proc/self/exe` would be setsid): `/proc/<agent pid>/exe`, which
    /// still names it after a rebuild replaced the file.
    fn wrapper_exe(&self) -> PathBuf {
        if self.exe == Path::new("/proc/self/exe") {
            PathBuf::from(format!("/proc/{}/exe", std::process::id()))
        } else {
            self.exe.clone()
        }
    }

    /// The identity container `c` of `pod` runs as.
    fn run_as(&self, pod: &PodInfo, c: &Container) -> Result<RunAs, String> {
        self.users.run_as(pod.security_context.as_ref(), c)
    }

    fn container_dir(&self, pod_uid: &str, container: &str) -> PathBuf {
        self.root.join(pod_uid).join(container)
    }

    /// In-container paths and the host directories they are: the container's volume mounts,
    /// its own /tmp, and the image's directories from the catalog.
    fn path_map(
        &self,
        pod: &PodInfo,
        c: &Container,
        resolved: Option<&Resolved>,
        dir: &Path,
    ) -> Vec<(String, PathBuf)> {
        let mut map: Vec<(String, PathBuf)> = vec![];
        for m in &c.volume_mounts {
            let Some(v) = pod.volumes.iter().find(|v| v.name == m.name) else {
                continue;
            };
            let base = if let Some(h) = &v.host_path {
                PathBuf::from(&h.path)
            } else if let Some(pvc) = &v.persistent_volume_claim {
                // Node-local storage per claim, kept across pods (local-path style).
                self.root
                    .join("pvc")
                    .join(&pod.namespace)
                    .join(&pvc.claim_name)
            } else {
                // emptyDir (and configMap/secret, whose files are not materialised): one
                // directory per pod, shared by its containers.
                self.root.join(&pod.uid).join("volumes").join(&v.name)
            };
            let target = if m.sub_path.is_empty() {
                base
            } else {
                base.join(&m.sub_path)
            };
            if v.host_path.is_none() && !target.is_dir() {
                let _ = std::fs::create_dir_all(&target);
                // Every container of the pod writes there, whatever its user.
                user::set_mode(&target, 0o777);
            }
            let mount = m.mount_path.trim_end_matches('/');
            if mount.starts_with('/') && mount.len() > 1 {
                map.push((mount.to_string(), target));
            }
        }
        map.push(("/tmp".into(), dir.join("tmp")));
        if let Some(r) = resolved {
            map.extend(r.paths.iter().map(|(k, v)| (k.clone(), dir.join(v))));
        }
        let _ = std::fs::create_dir_all(dir.join("tmp"));
        map
    }

    fn rewrite(&self, map: &[(String, PathBuf)], s: &str) -> String {
        rewrite_paths(s, map)
    }

    /// The argv of a container: command+args as given, else the catalog's built-in workload.
    fn argv(
        &self,
        pod: &PodInfo,
        c: &Container,
        resolved: &Resolved,
        dir: &Path,
        env: &[(String, String)],
    ) -> Vec<String> {
        let paths = self.path_map(pod, c, Some(resolved), dir);
        let map = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|a| self.rewrite(&paths, &expand(a, env)))
                .collect()
        };
        let exe = self.exe.to_string_lossy().to_string();
        let cwd = workdir_in_image(c);
        let user = if !c.command.is_empty() {
            let mut argv = map(&c.command);
            argv.extend(map(&c.args));
            // A command the host does not have is the image's own program (nginx's `nginx`,
            // node-exporter's `/bin/node_exporter`): its catalog workload stands in for it.
            // Base OS images must name host programs.
            (resolved.workload == Workload::Shell || resolvable(&argv[0], &cwd)).then_some(argv)
        } else if resolved.workload == Workload::Shell && !c.args.is_empty() {
            // busybox & co. have no entrypoint: args are the command.
            Some(map(&c.args))
        } else if resolved.workload == Workload::Shell {
            Some(vec!["/bin/sh".into()])
        } else {
            // Other images' args go to their (simulated) entrypoint.
            None
        };
        let user = user.map(|mut argv| {
            // A relative program path is relative to the container's working directory ("/").
            if argv[0].contains('/') && !argv[0].starts_with('/') {
                argv[0] = cwd.join(&argv[0]).to_string_lossy().to_string();
            }
            argv
        });
        if let Some(user) = user {
            let mut argv = vec![exe, "builtin".into(), "supervise".into(), "--".into()];
            argv.extend(user);
            return argv;
        }
        let mut ports: Vec<i32> = c
            .ports
            .iter()
            .filter(|p| p.protocol.is_empty() || p.protocol.eq_ignore_ascii_case("TCP"))
            .map(|p| p.container_port)
            .collect();
        if ports.is_empty() {
            ports.push(80);
        }
        let mut argv = vec![exe, "builtin".into()];
        match resolved.workload {
            Workload::Web => {
                argv.push("web".into());
                // The image's docroot, or the volume mounted over it.
                let docroot = resolved
                    .paths
                    .keys()
                    .next()
                    .map(|p| PathBuf::from(rewrite_paths(p, &paths)))
                    .unwrap_or_else(|| dir.join("html"));
                argv.extend(["--root".into(), docroot.to_string_lossy().into()]);
            }
            Workload::CpuBurner => {
                argv.push("cpu-burner".into());
                let ms = pod
                    .annotations
                    .get("coxswain.io/burn-millis")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(resolved.burn_millis);
                argv.extend(["--burn-millis".into(), ms.to_string()]);
            }
            Workload::Idle | Workload::Shell => {
                argv.push("idle".into());
                return argv;
            }
            Workload::Loadgen => {
                // The image's entrypoint is loadgen; the container's args are its flags.
                argv.push("loadgen".into());
                argv.extend(map(&c.args));
                return argv;
            }
            Workload::Print => {
                argv.push("print".into());
                argv.extend([
                    "--message".into(),
                    resolved.message.clone().unwrap_or_default(),
                    "--interval-millis".into(),
                    resolved.interval_millis.to_string(),
                ]);
                return argv;
            }
        }
        argv.extend(["--addr".into(), pod.ip.to_string()]);
        for p in ports {
            argv.extend(["--port".into(), p.to_string()]);
        }
        argv
    }
}

/// A process of a container (its command, an exec probe or hook): `argv` as [`user::wrap`] and
/// the private view made it, with the container's root group when it keeps root's uid
/// ([`user::apply_root_group`]), exactly `env`, in `cwd`, no stdin, its output piped, leading its
/// own process group (killed as one: the container's leftovers, a timed-out probe's children);
/// `exec` sessions without a terminal too (`crate::exec`).
pub(crate) fn container_process(
    argv: &[String],
    ids: &RunAs,
    env: &[(String, String)],
    cwd: &Path,
) -> Command {
    let mut command = Command::new(&argv[0]);
    if argv[0] == "/proc/self/exe" {
        command.arg0("coxswain");
    }
    user::apply_root_group(&mut command, ids);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    command
}

impl Drop for ProcessRuntime {
    fn drop(&mut self) {
        if let Ok(procs) = self.procs.lock() {
            for p in procs.values() {
                kill_group(p.pgid, true);
            }
        }
    }
}

impl Runtime for ProcessRuntime {
    fn version(&self) -> String {
        format!("coxswain-process://{}", env!("CARGO_PKG_VERSION"))
    }

    fn image_uid(&self) -> Option<u32> {
        Some(self.users.image_uid())
    }

    async fn pull(&self, _pod: &PodInfo, image: &str) -> Result<String, String> {
        self.catalog.resolve(image).map(|r| r.image_id)
    }

    async fn start(
        &self,
        pod: &PodInfo,
        c: &Container,
        attempt: u32,
        _init: bool,
    ) -> Result<Started, String> {
        let resolved = self.catalog.resolve(&c.image)?;
        let ids = self.run_as(pod, c)?;
        let dir = self.container_dir(&pod.uid, &c.name);
        // A fresh "image filesystem" per start, as a restarted container gets.
        for sub in resolved.paths.values() {
            let d = dir.join(sub);
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
            if let Some(index) = &resolved.index {
                std::fs::write(d.join("index.html"), index)
                    .map_err(|e| format!("writing {}: {e}", d.display()))?;
                user::give(&d.join("index.html"), Some(&ids));
            }
            // The image's files are the image user's.
            user::give(&d, Some(&ids));
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        std::fs::create_dir_all(dir.join("tmp"))
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        user::give(&dir.join("tmp"), Some(&ids));
        // Logs of the current and the previous instance are kept, as the kubelet keeps them.
        if attempt >= 2 {
            let _ = std::fs::remove_file(dir.join(format!("{}.log", attempt - 2)));
        }
        let log_path = dir.join(format!("{attempt}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
        let env = container_env(pod, c);
        let argv = self.argv(pod, c, &resolved, &dir, &env);
        if let Some(pos) = argv.iter().position(|a| a == "--") {
            if let Some(cmd) = argv.get(pos + 1) {
                if !resolvable(cmd, &workdir_in_image(c)) {
                    return Err(format!(
                        "failed to create containerd task: failed to create shim task: OCI runtime \
                         create failed: runc create failed: unable to start container process: \
                         exec: \"{cmd}\": {}",
                        if cmd.contains('/') {
                            format!("stat {cmd}: no such file or directory")
                        } else {
                            "executable file not found in $PATH".to_string()
                        }
                    ));
                }
            }
        }
        // As the container's user: the wrapper execs the command once it is.
        let argv = user::wrap(&self.wrapper_exe(), &ids, argv);
        let argv = self.isolated(argv, pod, &self.path_map(pod, c, Some(&resolved), &dir));
        let cwd = workdir(c, &self.path_map(pod, c, Some(&resolved), &dir), &dir);
        if cwd != dir && cwd.starts_with(&dir) {
            // A working directory made in the container's own tree is its user's, as runc
            // makes it.
            user::give(&cwd, Some(&ids));
        }
        let mut command = container_process(&argv, &ids, &env, &cwd);
        let mut child = command.spawn().map_err(|e| {
            format!(
                "failed to create containerd task: failed to create shim task: OCI runtime create \
                 failed: exec: \"{}\": {}",
                argv[0],
                if e.kind() == std::io::ErrorKind::NotFound {
                    "executable file not found in $PATH".to_string()
                } else {
                    e.to_string()
                }
            )
        })?;
        let pid = child.id().unwrap_or(0) as i32;
        let _ = std::fs::write(dir.join("pgid"), pid.to_string());
        // The output goes to the log file as CRI records, each line stamped as it arrives.
        let log = std::sync::Arc::new(Mutex::new(log));
        let mut pumps = tokio::task::JoinSet::new();
        if let Some(out) = child.stdout.take() {
            pumps.spawn(crate::crilog::pump(out, "stdout", log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            pumps.spawn(crate::crilog::pump(err, "stderr", log));
        }
        let id = format!("{}-{}-{attempt}", pod.uid, c.name);
        self.procs.lock().map_err(|e| e.to_string())?.insert(
            id.clone(),
            Proc {
                pgid: pid,
                pod_uid: pod.uid.clone(),
                container: c.name.clone(),
                attempt,
            },
        );
        let (tx, rx) = crate::cell::channel(None);
        let serves = matches!(resolved.workload, Workload::Web | Workload::CpuBurner)
            && c.command.is_empty();
        let first_port = c
            .ports
            .iter()
            .find(|p| p.protocol.is_empty() || p.protocol.eq_ignore_ascii_case("TCP"))
            .map(|p| p.container_port as u16)
            .unwrap_or(80);
        let mut rx_wait = rx.clone();
        tokio::spawn(async move {
            let exit = match child.wait().await {
                Ok(st) => Exit {
                    code: exit_code(st),
                    signal: st.signal().unwrap_or(0),
                    reason: None,
                },
                Err(_) => Exit {
                    code: 128,
                    signal: 0,
                    reason: None,
                },
            };
            // The container is its process group: leftovers (a shell's children) go with it.
            kill_group(pid, true);
            // Its last output is in the log before the exit is known (bounded: a process that
            // left the group may hold the pipe).
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while pumps.join_next().await.is_some() {}
            })
            .await;
            tx.send_replace(Some(exit));
        });
        if serves {
            // "Started" for a built-in server means listening, as nginx is within milliseconds.
            let addr = std::net::SocketAddr::new(pod.ip.into(), first_port);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while tokio::time::Instant::now() < deadline {
                if rx_wait.borrow_and_update().is_some() {
                    break;
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        Ok(Started { id, exit: rx })
    }

    async fn run(
        &self,
        pod: &PodInfo,
        c: &Container,
        _id: &str,
        _kind: ActionKind,
        action: &Action,
        timeout: Duration,
    ) -> Outcome {
        match action {
            Action::Exec(cmd) => self.exec(pod, c, cmd, timeout).await,
            Action::Http {
                host,
                port,
                path,
                scheme,
                headers,
            } => net::http_get(scheme, host, *port, path, headers, timeout).await,
            Action::Tcp { host, port } => net::tcp_check(host, *port, timeout).await,
            Action::Sleep(d) => {
                tokio::time::sleep(*d).await;
                Outcome::Success
            }
        }
    }

    fn signal(&self, id: &str, kill: bool) {
        let pgid = self
            .procs
            .lock()
            .ok()
            .and_then(|p| p.get(id).map(|p| p.pgid));
        if let Some(pgid) = pgid {
            kill_group(pgid, kill);
        }
    }

    fn remove_pod(&self, pod_uid: &str) {
        if let Ok(mut procs) = self.procs.lock() {
            procs.retain(|_, p| {
                if p.pod_uid == pod_uid {
                    kill_group(p.pgid, true);
                    false
                } else {
                    true
                }
            });
        }
        let _ = std::fs::remove_dir_all(self.root.join(pod_uid));
    }

    fn usage(&self, _pod: &PodInfo, _c: &Container, id: &str) -> Option<Usage> {
        let pgid = self.procs.lock().ok()?.get(id)?.pgid;
        group_usage(pgid)
    }

    fn node_usage(&self) -> Option<Usage> {
        crate::node_stats::read()
    }

    fn materializes_volumes(&self) -> bool {
        true
    }

    fn write_volume(
        &self,
        pod: &PodInfo,
        volume: &str,
        files: &std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<(), String> {
        let dir = self.root.join(&pod.uid).join("volumes").join(volume);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        for (path, content) in files {
            if path.split('/').any(|seg| seg == "..") || path.starts_with('/') {
                continue;
            }
            let f = dir.join(path);
            if let Some(parent) = f.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::write(&f, content).map_err(|e| format!("writing {}: {e}", f.display()))?;
        }
        Ok(())
    }

    fn exec_command(
        &self,
        pod: &PodInfo,
        c: &Container,
        cmd: &[String],
    ) -> Result<ExecCommand, String> {
        let first = cmd.first().ok_or("exec: no command")?;
        let resolved = self.catalog.resolve(&c.image).ok();
        let dir = self.container_dir(&pod.uid, &c.name);
        let paths = self.path_map(pod, c, resolved.as_ref(), &dir);
        let env = container_env(pod, c);
        // The container's paths mapped as in its command (no $(VAR) expansion: exec's argv is
        // taken as it is, as the runtime's exec does).
        let mut argv: Vec<String> = cmd.iter().map(|a| self.rewrite(&paths, a)).collect();
        let cwd = workdir_in_image(c);
        if argv[0].contains('/') && !argv[0].starts_with('/') {
            argv[0] = self.rewrite(&paths, &cwd.join(&argv[0]).to_string_lossy());
        }
        if !resolvable(&argv[0], &cwd) {
            return Err(format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{first}\": {}: unknown",
                if first.contains('/') {
                    format!("stat {first}: no such file or directory")
                } else {
                    "executable file not found in $PATH".to_string()
                }
            ));
        }
        // As the container's user (the wrapper execs the command once it is).
        let ids = self.run_as(pod, c)?;
        let argv = user::wrap(&self.wrapper_exe(), &ids, argv);
        let argv = self.beside(argv, pod, c, &paths);
        // What the command prints names the container's paths: its volumes, /tmp, the
        // image's directories, and its own directory as `/` (the working directory).
        // The working directory is the container's: workingDir through the container's
        // paths (its /tmp, a volume, an image directory), else its own directory (`/`).
        let cwd = workdir(c, &paths, &dir);
        let mut output_paths = paths;
        output_paths.push(("/".into(), dir.clone()));
        Ok(ExecCommand {
            argv,
            env,
            cwd,
            output_paths,
            ids,
        })
    }

    fn log_path(&self, pod_uid: &str, container: &str, attempt: u32) -> Option<PathBuf> {
        Some(
            self.container_dir(pod_uid, container)
                .join(format!("{attempt}.log")),
        )
    }
}
