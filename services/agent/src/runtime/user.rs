//! Who a container's processes run as: the pod's and container's `securityContext`
//! (`runAsUser`, `runAsGroup`, `runAsNonRoot`, `fsGroup`, `supplementalGroups`), the node's
//! default non-root user when the agent is root, and the privilege drop in the child.
//!
//! As upstream's kubelet (`verifyRunAsNonRoot`, `DetermineEffectiveSecurityContext`): the
//! container's fields win over the pod's. A runtime that starts processes as root decides the
//! "image user" here: an image's own user is the node's default (`--default-run-as-user`,
//! 65534 `nobody` unless set), as every image in the catalog runs as nobody. A runtime that is
//! not root cannot change user: its containers run as the agent's own uid, and a container
//! asking for another uid is refused (it never runs as someone it did not ask to be).
//!
//! The drop itself happens in `coxswain builtin run-as` ([`wrap`], [`drop_privileges`]), which
//! execs the container's command once it is that user.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use coxswain_api::v1::{Container, PodSecurityContext};
use tokio::process::Command;

/// The identity a container's processes get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: `fsGroup`, then `supplementalGroups`.
    pub groups: Vec<u32>,
    /// `PR_SET_NO_NEW_PRIVS`: unless `allowPrivilegeEscalation: true`, a non-root container
    /// cannot regain privileges through the host's setuid programs (it shares their files).
    pub no_new_privs: bool,
}

/// The node's policy: what an image's user is, and whether the agent can change user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPolicy {
    /// The agent's effective uid and gid.
    pub own_uid: u32,
    pub own_gid: u32,
    /// The uid/gid of an image's own user (no `runAsUser`/`runAsGroup`), when the agent is root.
    pub default_uid: u32,
    pub default_gid: u32,
}

/// `nobody`/`nogroup`.
pub const NOBODY: u32 = 65534;

impl UserPolicy {
    /// The policy of this process, with `nobody` as an image's user.
    pub fn of_this_process() -> UserPolicy {
        UserPolicy {
            own_uid: rustix::process::geteuid().as_raw(),
            own_gid: rustix::process::getegid().as_raw(),
            default_uid: NOBODY,
            default_gid: NOBODY,
        }
    }

    /// Whether containers can run as another user than the agent's.
    pub fn can_change_user(&self) -> bool {
        self.own_uid == 0
    }

    /// The uid an image runs as when the pod names none.
    pub fn image_uid(&self) -> u32 {
        if self.can_change_user() {
            self.default_uid
        } else {
            self.own_uid
        }
    }

    /// The identity of container `c` of a pod with security context `pod_sc`. Err: the
    /// container asks for a uid or gid this agent cannot give it (the message for
    /// CreateContainerError).
    pub fn run_as(
        &self,
        pod_sc: Option<&PodSecurityContext>,
        c: &Container,
    ) -> Result<RunAs, String> {
        let sc = c.security_context.as_ref();
        let uid = sc
            .and_then(|s| s.run_as_user)
            .or(pod_sc.and_then(|p| p.run_as_user));
        let gid = sc
            .and_then(|s| s.run_as_group)
            .or(pod_sc.and_then(|p| p.run_as_group));
        let mut groups: Vec<u32> = vec![];
        if let Some(p) = pod_sc {
            for g in p.fs_group.iter().chain(p.supplemental_groups.iter()) {
                if *g >= 0 && !groups.contains(&(*g as u32)) {
                    groups.push(*g as u32);
                }
            }
        }
        let no_new_privs = sc.and_then(|s| s.allow_privilege_escalation) != Some(true);
        let id = |v: Option<i32>, field: &str| -> Result<Option<u32>, String> {
            match v {
                Some(v) if v < 0 => Err(format!("{field} {v} is not a valid id")),
                Some(v) => Ok(Some(v as u32)),
                None => Ok(None),
            }
        };
        let (uid, gid) = (id(uid, "runAsUser")?, id(gid, "runAsGroup")?);
        if !self.can_change_user() {
            // Not root: the agent's own uid, and nothing else.
            if let Some(u) = uid.filter(|u| *u != self.own_uid) {
                return Err(format!(
                    "cannot run as uid {u}: the node agent runs as uid {} and cannot change user",
                    self.own_uid
                ));
            }
            if let Some(g) = gid.filter(|g| *g != self.own_gid) {
                return Err(format!(
                    "cannot run as gid {g}: the node agent runs as gid {} and cannot change group",
                    self.own_gid
                ));
            }
            return Ok(RunAs {
                uid: self.own_uid,
                gid: self.own_gid,
                groups: vec![],
                no_new_privs,
            });
        }
        let uid = uid.unwrap_or(self.default_uid);
        // An image's user has its own primary group; a numeric uid alone gets the node's
        // default group (never the host's root group, which runc would give it).
        let gid = gid.unwrap_or(if uid == 0 { 0 } else { self.default_gid });
        Ok(RunAs {
            uid,
            gid,
            groups,
            no_new_privs: no_new_privs && uid != 0,
        })
    }
}

/// Upstream's `verifyRunAsNonRoot` (pkg/kubelet/kuberuntime/security_context_others.go): with
/// `runAsNonRoot: true`, a `runAsUser` of 0, or an image that runs as root, refuses the
/// container (CreateContainerConfigError). `image_uid`: the uid the image runs as without a
/// `runAsUser`.
pub fn verify_run_as_non_root(
    pod_name: &str,
    pod_namespace: &str,
    pod_uid: &str,
    pod_sc: Option<&PodSecurityContext>,
    c: &Container,
    image_uid: Option<u32>,
) -> Result<(), String> {
    let sc = c.security_context.as_ref();
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or(pod_sc.and_then(|p| p.run_as_non_root));
    if non_root != Some(true) {
        return Ok(());
    }
    // format.Pod: name_namespace(uid).
    let pod = format!("{pod_name}_{pod_namespace}({pod_uid})");
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or(pod_sc.and_then(|p| p.run_as_user));
    if let Some(u) = run_as_user {
        if u == 0 {
            return Err(format!(
                "container's runAsUser breaks non-root policy (pod: {pod:?}, container: {})",
                c.name
            ));
        }
        return Ok(());
    }
    if image_uid == Some(0) {
        return Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {})",
            c.name
        ));
    }
    Ok(())
}

/// Whether a process started by this agent must change user to run as `ids`: the agent is root
/// and the container is not.
pub fn needs_drop(ids: &RunAs) -> bool {
    rustix::process::geteuid().is_root() && ids.uid != 0
}

/// The argv that runs `argv` as `ids`: `EXE builtin run-as --uid U --gid G [--groups a,b]
/// [--no-new-privs] -- argv…`, when the user must change ([`needs_drop`]); else `argv`. The
/// wrapper (this binary) drops privileges with [`drop_privileges`] and execs the command, so
/// no code runs between fork and exec in the agent (the workspace forbids `unsafe`, which
/// `pre_exec` is).
pub fn wrap(exe: &Path, ids: &RunAs, argv: Vec<String>) -> Vec<String> {
    if !needs_drop(ids) {
        return argv;
    }
    let mut out = vec![
        exe.to_string_lossy().into_owned(),
        "builtin".into(),
        "run-as".into(),
        // The wrapper dies with the agent, and starts nothing when the agent is gone already.
        "--parent-pid".into(),
        std::process::id().to_string(),
        "--uid".into(),
        ids.uid.to_string(),
        "--gid".into(),
        ids.gid.to_string(),
    ];
    if !ids.groups.is_empty() {
        let groups: Vec<String> = ids.groups.iter().map(u32::to_string).collect();
        out.extend(["--groups".into(), groups.join(",")]);
    }
    if ids.no_new_privs {
        out.push("--no-new-privs".into());
    }
    out.push("--".into());
    out.extend(argv);
    out
}

/// Makes `cmd` keep root's uid with the container's group (`runAsUser: 0`, `runAsGroup: G`).
pub fn apply_root_group(cmd: &mut Command, ids: &RunAs) {
    if ids.uid == 0 && ids.gid != 0 && rustix::process::geteuid().is_root() {
        cmd.gid(ids.gid);
    }
}

/// In the `run-as` wrapper, before it execs the container's command: supplementary groups,
/// gid, then uid of this thread (the one that execs: the new program gets its credentials).
/// Only `CAP_NET_BIND_SERVICE` is kept, as an ambient capability, so that a non-root container
/// can still listen on port 80 as in its own network namespace (containerd sets
/// `net.ipv4.ip_unprivileged_port_start=0` there; pods here share the host's). Nothing else of
/// root's capabilities survives the exec.
pub fn drop_privileges(ids: &RunAs) -> std::io::Result<()> {
    use rustix::process::{Gid, Uid};
    use rustix::thread::{self, CapabilitySet, CapabilitySets};
    let groups: Vec<Gid> = ids.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    thread::set_thread_groups(&groups)?;
    thread::set_thread_gid(Gid::from_raw(ids.gid))?;
    thread::set_keep_capabilities(true)?;
    thread::set_thread_uid(Uid::from_raw(ids.uid))?;
    let sets = |s: CapabilitySet| CapabilitySets {
        effective: s,
        permitted: s,
        inheritable: s,
    };
    // Best effort: a host that withholds the capability still runs the container, with no
    // capability at all.
    if thread::set_capabilities(None, sets(CapabilitySet::NET_BIND_SERVICE)).is_ok() {
        let _ = thread::configure_capability_in_ambient_set(CapabilitySet::NET_BIND_SERVICE, true);
    } else {
        thread::set_capabilities(None, sets(CapabilitySet::empty()))?;
    }
    thread::set_keep_capabilities(false)?;
    if ids.no_new_privs {
        thread::set_no_new_privs(true)?;
    }
    Ok(())
}

/// Gives `path` to the container's user (it writes there: its /tmp, the image's directories,
/// a working directory made for it). Root keeps what it has.
pub fn give(path: &Path, ids: Option<&RunAs>) {
    if let Some(ids) = ids.filter(|i| i.uid != 0) {
        if let Err(e) = std::os::unix::fs::chown(path, Some(ids.uid), Some(ids.gid)) {
            tracing::warn!(path = %path.display(), error = %e, "giving a container directory to its user failed");
        }
    }
}

/// Sets `path`'s mode (a shared directory every container of the pod writes: emptyDir is
/// 0777, as the kubelet makes it).
pub fn set_mode(path: &Path, mode: u32) {
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Lets other users reach `root` (traverse only, no listing): every ancestor this process owns
/// that other users cannot search gets `g+x,o+x` (0700 becomes 0711). Without a mount
/// namespace a container's uid reaches its directories through their host path; the files in
/// those ancestors keep their own modes (0600 for the data directory's). Returns the
/// directories changed.
pub fn make_reachable(root: &Path) -> Vec<std::path::PathBuf> {
    let me = rustix::process::geteuid().as_raw();
    let mut changed = vec![];
    let Ok(root) = std::fs::canonicalize(root) else {
        return changed;
    };
    for dir in root.ancestors() {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o7777;
        if meta.uid() == me && mode & 0o011 != 0o011 {
            set_mode(dir, mode | 0o011);
            changed.push(dir.to_path_buf());
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::SecurityContext;

    fn root_policy() -> UserPolicy {
        UserPolicy {
            own_uid: 0,
            own_gid: 0,
            default_uid: NOBODY,
            default_gid: NOBODY,
        }
    }

    fn ctr(sc: Option<SecurityContext>) -> Container {
        Container {
            name: "c".into(),
            security_context: sc,
            ..Default::default()
        }
    }

    #[test]
    fn the_container_wins_over_the_pod_and_root_gives_nobody_by_default() {
        let p = root_policy();
        let pod = PodSecurityContext {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            fs_group: Some(2000),
            supplemental_groups: vec![4000, 2000],
            ..Default::default()
        };
        let got = p.run_as(Some(&pod), &ctr(None)).unwrap();
        assert_eq!(
            (got.uid, got.gid, got.groups.clone()),
            (1000, 3000, vec![2000, 4000])
        );
        assert!(got.no_new_privs);
        let c = ctr(Some(SecurityContext {
            run_as_user: Some(1500),
            allow_privilege_escalation: Some(true),
            ..Default::default()
        }));
        let got = p.run_as(Some(&pod), &c).unwrap();
        assert_eq!((got.uid, got.gid), (1500, 3000));
        assert!(!got.no_new_privs);
        let got = p.run_as(None, &ctr(None)).unwrap();
        assert_eq!((got.uid, got.gid), (NOBODY, NOBODY));
        let c = ctr(Some(SecurityContext {
            run_as_user: Some(0),
            ..Default::default()
        }));
        let got = p.run_as(None, &c).unwrap();
        assert_eq!((got.uid, got.gid), (0, 0));
        let c = ctr(Some(SecurityContext {
            run_as_user: Some(-1),
            ..Default::default()
        }));
        assert!(p.run_as(None, &c).is_err());
    }

    #[test]
    fn a_non_root_agent_runs_containers_as_itself_and_refuses_other_uids() {
        let p = UserPolicy {
            own_uid: 1001,
            own_gid: 1001,
            ..root_policy()
        };
        assert_eq!(p.image_uid(), 1001);
        let got = p.run_as(None, &ctr(None)).unwrap();
        assert_eq!((got.uid, got.gid), (1001, 1001));
        let c = ctr(Some(SecurityContext {
            run_as_user: Some(1000),
            ..Default::default()
        }));
        assert_eq!(
            p.run_as(None, &c).unwrap_err(),
            "cannot run as uid 1000: the node agent runs as uid 1001 and cannot change user"
        );
    }

    #[test]
    fn run_as_non_root_is_verified_as_the_kubelet_does() {
        let non_root = |u: Option<i32>| {
            ctr(Some(SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: u,
                ..Default::default()
            }))
        };
        let v = |c: &Container, pod: Option<&PodSecurityContext>, image: Option<u32>| {
            verify_run_as_non_root("web", "default", "u1", pod, c, image)
        };
        assert_eq!(
            v(&non_root(Some(0)), None, Some(NOBODY)).unwrap_err(),
            "container's runAsUser breaks non-root policy (pod: \"web_default(u1)\", container: c)"
        );
        assert_eq!(
            v(&non_root(None), None, Some(0)).unwrap_err(),
            "container has runAsNonRoot and image will run as root (pod: \"web_default(u1)\", container: c)"
        );
        assert!(v(&non_root(None), None, Some(NOBODY)).is_ok());
        assert!(v(&non_root(Some(1000)), None, Some(0)).is_ok());
        // The pod's field applies when the container sets none; the container's wins.
        let pod = PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(0),
            ..Default::default()
        };
        assert!(v(&ctr(None), Some(&pod), Some(NOBODY)).is_err());
        let lax = ctr(Some(SecurityContext {
            run_as_non_root: Some(false),
            ..Default::default()
        }));
        assert!(v(&lax, Some(&pod), Some(NOBODY)).is_ok());
    }
}
