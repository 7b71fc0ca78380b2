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
//! What it does not isolate (documented in docs/security.md): there is no PID, network, IPC or
//! user namespace; a process may still reach another pod's files through `/proc/<pid>/root` or
//! `/proc/<pid>/cwd` when both run as the same uid; the rest of the host's filesystem is shared.
use std::path::{Path, PathBuf};

/// Where a container's private view comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolation {
    /// The directory covered by a tmpfs (everything under it hidden).
    pub cover: PathBuf,
}

impl Isolation {
    /// The wrapper's arguments for a container that keeps `keep` (directories under the covered
    /// one; others are left out, they are visible anyway).
    pub fn args(&self, keep: &[PathBuf]) -> Vec<String> {
        let mut out = vec![
            "--private-dir".to_string(),
            self.cover.to_string_lossy().into_owned(),
        ];
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
    pub fn wrap(&self, mut argv: Vec<String>, keep: &[PathBuf]) -> Vec<String> {
        if argv.get(1).map(String::as_str) == Some("builtin")
            && argv.get(2).map(String::as_str) == Some("run-as")
        {
            let tail = argv.split_off(3);
            argv.extend(self.args(keep));
            argv.extend(tail);
        }
        argv
    }
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

/// Whether this machine lets the agent give containers a private mount namespace: a child
/// process (`EXE builtin ns-probe --dir D`) tries exactly what the wrapper does, in a scratch
/// directory. Err: why not.
pub fn detect(exe: &Path, scratch: &Path) -> Result<(), String> {
    let keep = scratch.join("keep");
    std::fs::create_dir_all(&keep).map_err(|e| format!("creating {}: {e}", keep.display()))?;
    let out = std::process::Command::new(exe)
        .args(["builtin", "ns-probe", "--dir"])
        .arg(scratch)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running the probe: {e}"))?;
    let _ = std::fs::remove_dir_all(scratch);
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// The probe's side: enter the namespace over `dir`, keeping `dir/keep`, and check the view.
pub fn probe(dir: &Path) -> Result<(), String> {
    let keep = dir.join("keep");
    let marker = dir.join("hidden");
    std::fs::write(&marker, b"x").map_err(|e| e.to_string())?;
    enter(dir, std::slice::from_ref(&keep)).map_err(|e| format!("mount namespace: {e}"))?;
    if marker.exists() || !keep.is_dir() {
        return Err("the private view does not hide and keep as it should".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_gets_the_private_directory_and_what_it_keeps() {
        let iso = Isolation {
            cover: "/data".into(),
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
