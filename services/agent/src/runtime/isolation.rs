//! A private mount namespace per container process, where the machine allows it (optional and
//! detected once at start): the process runtime's pods otherwise share the host's view, so a
//! pod running as the default uid (`nobody`) could read the projected ServiceAccount token of
//! any other pod running as `nobody` by its host path.
//!
//! In the `run-as` wrapper (root, before it becomes the container's user): `unshare(CLONE_NEWNS)`,
//! every mount made private (nothing propagates back to the host), a small tmpfs over the
//! covered directory (the agent's root directory, or under `coxswain up` the whole data
//! directory), and only this pod's own directories bind-mounted back at their paths. The
//! container then sees its own pod directory and the claims it mounts; other pods' directories,
//! the PKI and the database are not there. The covered directory itself may then be 0700 on the
//! host: in the container's view it is the tmpfs.
//!
//! Where the machine allows it too, a PID namespace per container: the wrapper
//! `unshare(CLONE_NEWPID)`s and starts the container's process as the namespace's first
//! (pid 1), which mounts a `/proc` of its own (inside the private mount namespace) before it
//! becomes the container's user. The container lists only its own processes and cannot reach
//! another pod's through `/proc/<pid>/root`. The wrapper stays outside as its parent
//! ([`Parent`]). Exec probes, hooks and `exec` join the running container's namespaces
//! ([`join`]).
//!
//! What it does not isolate (documented in docs/security.md): there is no network, IPC or user
//! namespace; without a PID namespace a process may still reach another pod's files through
//! `/proc/<pid>/root` or `/proc/<pid>/cwd` when both run as the same uid; the rest of the
//! host's filesystem is shared.
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a container's private view comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolation {
    /// The directory covered by a tmpfs (everything under it hidden).
    pub cover: PathBuf,
    /// Each container also gets a PID namespace of its own, with its own `/proc`.
    pub pid: bool,
}

impl Isolation {
    /// The wrapper's arguments for a container that keeps `keep` (directories under the covered
    /// one; others are left out, they are visible anyway).
    pub fn args(&self, keep: &[PathBuf]) -> Vec<String> {
        let mut out = vec![
            "--private-dir".to_string(),
            self.cover.to_string_lossy().into_owned(),
        ];
        if self.pid {
            out.push("--pid-namespace".into());
        }
        for k in keep
            .iter()
            .filter(|k| k.starts_with(&self.cover) && **k != self.cover)
        {
            out.push("--keep".into());
            out.push(k.to_string_lossy().into_owned());
        }
        out
    }

    /// `argv` from [`crate::runtime::user::wrap`] with this isolation's arguments, when it is the
    /// `run-as` wrapper (a container that runs as the agent's own user is not wrapped and not
    /// isolated).
    pub fn wrap(&self, argv: Vec<String>, keep: &[PathBuf]) -> Vec<String> {
        insert_wrapper_args(argv, self.args(keep))
    }

    /// `argv` from [`crate::runtime::user::wrap`] joining the namespaces of the running
    /// container whose first process (its namespace's init) is `pid`: an exec probe, a hook
    /// or `exec` sees what the container sees, its processes included.
    pub fn wrap_join(&self, argv: Vec<String>, pid: i32) -> Vec<String> {
        insert_wrapper_args(argv, vec!["--join".into(), pid.to_string()])
    }
}

/// `argv` from [`crate::runtime::user::wrap`] timing its command itself: `timeout` counts from
/// the command's start, the wrapper's own start not included (`run-as --timeout-millis`).
pub fn wrap_timeout(argv: Vec<String>, timeout: Duration) -> Vec<String> {
    let ms = timeout.as_millis().max(1).to_string();
    insert_wrapper_args(argv, vec!["--timeout-millis".into(), ms])
}

/// `args` after `EXE builtin run-as` (only there: another argv is returned as it is).
fn insert_wrapper_args(mut argv: Vec<String>, args: Vec<String>) -> Vec<String> {
    if argv.get(1).map(String::as_str) == Some("builtin")
        && argv.get(2).map(String::as_str) == Some("run-as")
    {
        let tail = argv.split_off(3);
        argv.extend(args);
        argv.extend(tail);
    }
    argv
}

/// The first child of `pid` (the wrapper's child is the first process of the container's PID
/// namespace), from `/proc/<pid>/task/<pid>/children`.
pub fn first_child(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// In the wrapper: children made from now on by this thread start a new PID namespace (the
/// first one is its init, pid 1).
pub fn unshare_pid() -> std::io::Result<()> {
    #[allow(deprecated)] // unshare_unsafe is unsafe only for CLONE_FILES, not used here.
    rustix::thread::unshare(rustix::thread::UnshareFlags::NEWPID)?;
    Ok(())
}

/// In the first process of a new PID namespace, inside its private mount namespace: a `/proc`
/// of this namespace over the host's, so that the container lists only its own processes and
/// reaches no other's files through `/proc/<pid>/root`.
pub fn mount_proc() -> std::io::Result<()> {
    use rustix::mount::MountFlags;
    rustix::mount::mount(
        "proc",
        "/proc",
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )?;
    Ok(())
}

/// In the wrapper, as root: join the mount and PID namespaces of the process `pid` (a running
/// container's init). The mount namespace applies to this thread at once (its working
/// directory is set again by its path, which the container's view has); the PID namespace to
/// the children it makes from now on.
pub fn join(pid: i32) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    use rustix::thread::LinkNameSpaceType;
    let open = |ns: &str| {
        rustix::fs::open(
            format!("/proc/{pid}/ns/{ns}"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let (pid_ns, mnt_ns) = (open("pid")?, open("mnt")?);
    let cwd = std::env::current_dir()?;
    // A thread sharing its filesystem attributes with others (the runtime's) may not change
    // its mount namespace.
    #[allow(deprecated)] // unshare_unsafe is unsafe only for CLONE_FILES, not used here.
    rustix::thread::unshare(rustix::thread::UnshareFlags::FS)?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&pid_ns),
        Some(LinkNameSpaceType::ProcessID),
    )?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&mnt_ns),
        Some(LinkNameSpaceType::Mount),
    )?;
    std::env::set_current_dir(cwd)
}

/// In the wrapper, as root: a new mount namespace for this thread, private mounts, a tmpfs over
/// `cover`, and `keep` bind-mounted back at its paths.
pub fn enter(cover: &Path, keep: &[PathBuf]) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    use rustix::mount::{MountFlags, MountPropagationFlags};
    #[allow(deprecated)] // unshare_unsafe is unsafe only for CLONE_FILES, not used here.
    rustix::thread::unshare(rustix::thread::UnshareFlags::NEWNS)?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )?;
    // Opened in the new namespace (a bind mount's source must be one of its mounts), before
    // the tmpfs hides them.
    let mut kept = Vec::new();
    for k in keep {
        if !k.starts_with(cover) || k == cover {
            continue;
        }
        let fd = rustix::fs::open(
            k,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        kept.push((k.clone(), fd));
    }
    rustix::mount::mount(
        "tmpfs",
        cover,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(c"mode=0755,size=1m"),
    )?;
    for (path, fd) in &kept {
        std::fs::create_dir_all(path)?;
        use std::os::fd::AsRawFd;
        rustix::mount::mount_bind(format!("/proc/self/fd/{}", fd.as_raw_fd()), path)?;
    }
    Ok(())
}

/// The wrapper as the parent of a container's first process in its PID namespace (or of a
/// command in a joined one). It dies with the agent and the namespace with it: both have armed
/// their parent-death signal ([`crate::builtin::ParentDeath`], the first process with the
/// wrapper's pid), so the first process gets SIGKILL when the wrapper dies and the kernel then
/// kills the rest. It outlives the signals the agent sends the container's process group
/// (SIGTERM reaches the container itself, whose exit decides); and it exits as its child did.
pub struct Parent {
    _signals: Vec<tokio::signal::unix::Signal>,
}

impl Parent {
    /// Before the child is made (in the runtime's context).
    pub fn start() -> Parent {
        use tokio::signal::unix::{signal, SignalKind};
        let _signals = [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::hangup(),
            SignalKind::quit(),
            SignalKind::user_defined1(),
            SignalKind::user_defined2(),
        ]
        .into_iter()
        .filter_map(|k| signal(k).ok())
        .collect();
        Parent { _signals }
    }

    /// The child's exit as this process's code: its code, else 128+signal. With a timeout
    /// (an exec probe's or hook's, counted from the command's start, not the wrapper's), a
    /// child still running then is killed with this process's group, [`TIMED_OUT`] on stderr
    /// first.
    pub async fn wait(self, mut child: tokio::process::Child, timeout: Option<Duration>) -> i32 {
        let pid = child.id().unwrap_or(0);
        // Awaited through the runtime's SIGCHLD handling, no thread of its blocking pool:
        // after unshare(CLONE_NEWPID) or a join this process may make no new thread (EINVAL).
        let waited = child.wait();
        let done = match timeout {
            Some(t) => match tokio::time::timeout(t, waited).await {
                Ok(done) => done,
                Err(_) => {
                    eprintln!("{TIMED_OUT}");
                    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                    let _ = rustix::process::kill_process_group(
                        rustix::process::getpgrp(),
                        rustix::process::Signal::KILL,
                    );
                    return 137;
                }
            },
            None => waited.await,
        };
        done.map_or(128, super::process::exit_code)
    }
}

/// What the wrapper prints on stderr when it killed a command that outlived its timeout
/// (`run-as --timeout-millis`).
pub const TIMED_OUT: &str = "coxswain run-as: the command timed out";

/// In the wrapper that joined a container's namespaces ([`join`]): start `cmd` (its child, in
/// the container's PID namespace). On a terminal (`exec -it`), the child leads a process group
/// of its own, made the terminal's foreground group: a shell's job control sets the terminal's
/// group back when it exits, and the wrapper's group, outside the namespace, is not one it can
/// name there. Otherwise it stays in the wrapper's group, which the agent kills on a timeout.
pub fn spawn_joined(cmd: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    let stdin = rustix::stdio::stdin();
    let tty = rustix::termios::isatty(stdin);
    if tty {
        cmd.process_group(0);
    }
    let child = cmd.spawn()?;
    if tty {
        if let Some(pid) = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            // The child may have looked already and stopped itself (SIGTTIN) until it is in
            // the foreground: it is now, and continues.
            let _ = rustix::termios::tcsetpgrp(stdin, pid);
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::CONT);
        }
    }
    Ok(child)
}

/// What the machine allows ([`detect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// PID namespaces too (else only mount namespaces).
    pub pid: bool,
}

/// Whether this machine lets the agent give containers a private mount namespace, and a PID
/// namespace: a child process (`EXE builtin ns-probe --dir D`) tries exactly what the wrapper
/// does, in a scratch directory. Err: why not (no mount namespace); a PID namespace that
/// cannot be had is logged with its reason.
pub fn detect(exe: &Path, scratch: &Path) -> Result<Allowed, String> {
    let keep = scratch.join("keep");
    std::fs::create_dir_all(&keep).map_err(|e| format!("creating {}: {e}", keep.display()))?;
    let out = std::process::Command::new(exe)
        .args(["builtin", "ns-probe", "--dir"])
        .arg(scratch)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running the probe: {e}"))?;
    let _ = std::fs::remove_dir_all(scratch);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let pid = String::from_utf8_lossy(&out.stdout).trim() == PID_OK;
    if !pid {
        tracing::warn!(why = %String::from_utf8_lossy(&out.stderr).trim(), "no PID namespaces for containers: pods see each other's processes");
    }
    Ok(Allowed { pid })
}

/// What the probe prints when PID namespaces work.
const PID_OK: &str = "pid-namespace";

/// The probe's side: enter the namespace over `dir`, keeping `dir/keep`, and check the view;
/// then try a PID namespace (`exe builtin ns-probe --pid-child` as its first process) and print
/// [`PID_OK`] when it works, else its reason on stderr.
pub fn probe(dir: &Path) -> Result<(), String> {
    let keep = dir.join("keep");
    let marker = dir.join("hidden");
    std::fs::write(&marker, b"x").map_err(|e| e.to_string())?;
    enter(dir, std::slice::from_ref(&keep)).map_err(|e| format!("mount namespace: {e}"))?;
    if marker.exists() || !keep.is_dir() {
        return Err("the private view does not hide and keep as it should".into());
    }
    let pid = unshare_pid()
        .map_err(|e| format!("unshare(CLONE_NEWPID): {e}"))
        .and_then(|()| {
            std::process::Command::new("/proc/self/exe")
                .args(["builtin", "ns-probe", "--pid-child", "--dir"])
                .arg(dir)
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| format!("a first process in a PID namespace: {e}"))
        })
        .and_then(|out| match out.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        });
    match pid {
        Ok(()) => println!("{PID_OK}"),
        Err(why) => eprintln!("PID namespace: {why}"),
    }
    Ok(())
}

/// The PID probe's first process: mount its `/proc` and see itself as pid 1 there.
pub fn probe_pid_child() -> Result<(), String> {
    mount_proc().map_err(|e| format!("mounting /proc: {e}"))?;
    match std::fs::read_link("/proc/self") {
        Ok(p) if p == Path::new("1") => Ok(()),
        Ok(p) => Err(format!("pid {} in the new namespace, not 1", p.display())),
        Err(e) => Err(format!("reading /proc/self: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_gets_the_private_directory_and_what_it_keeps() {
        let iso = Isolation {
            cover: "/data".into(),
            pid: false,
        };
        let argv: Vec<String> = ["/exe", "builtin", "run-as", "--uid", "1", "--", "sh"]
            .map(String::from)
            .to_vec();
        let keep = ["/data/agent/u1".into(), "/elsewhere".into(), "/data".into()];
        let got = iso.wrap(argv, &keep);
        assert_eq!(
            got,
            [
                "/exe",
                "builtin",
                "run-as",
                "--private-dir",
                "/data",
                "--keep",
                "/data/agent/u1",
                "--uid",
                "1",
                "--",
                "sh"
            ]
        );
        // Not the wrapper: unchanged.
        let plain = vec!["sh".to_string()];
        assert_eq!(iso.wrap(plain.clone(), &keep), plain);
    }
}
