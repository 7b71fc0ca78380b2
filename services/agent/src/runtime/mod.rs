//! The container runtime interface the pod state machine drives, with two implementations:
//! [`process::ProcessRuntime`] (real child processes) and [`sim::SimRuntime`] (KWOK-like, no
//! processes; annotations script the behaviour).
use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1::{Container, Pod};

use crate::cell;

pub mod isolation;
pub mod process;
pub mod sim;
pub mod user;

/// What the runtime needs to know about a pod.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub node_name: String,
    pub ip: Ipv4Addr,
    pub host_ip: String,
    /// The pod's annotations and labels, as its latest version has them (read from the pod
    /// object the worker holds, not copied: sim pods' memory, issue 17).
    pub annotations: MetaMap,
    pub labels: MetaMap,
    pub service_account: String,
    /// The pod's volumes (emptyDir, hostPath, … as the process runtime maps them).
    pub volumes: Vec<coxswain_api::v1::Volume>,
    /// The pod's securityContext (who its containers run as).
    pub security_context: Option<coxswain_api::v1::PodSecurityContext>,
}

/// A pod's labels or annotations, read from the pod's latest version (the cell the agent
/// sends every new version to): the kubelet reads them from its current pod too (downward-API
/// env at a container's start, the sim runtime's scripting annotations).
#[derive(Clone)]
pub struct MetaMap {
    pod: cell::Receiver<Arc<Pod>>,
    annotations: bool,
}

impl MetaMap {
    /// The labels of the pod `pod` holds.
    pub fn labels(pod: cell::Receiver<Arc<Pod>>) -> Self {
        MetaMap {
            pod,
            annotations: false,
        }
    }

    /// The annotations of the pod `pod` holds.
    pub fn annotations(pod: cell::Receiver<Arc<Pod>>) -> Self {
        MetaMap {
            pod,
            annotations: true,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&BTreeMap<String, String>) -> T) -> T {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        let pod = self.pod.borrow();
        let map = pod.metadata.as_ref().map_or(&NONE, |m| {
            if self.annotations {
                &m.annotations
            } else {
                &m.labels
            }
        });
        f(map)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.with(|m| m.get(key).cloned())
    }

    /// A copy of the whole map.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.with(BTreeMap::clone)
    }
}

impl Default for MetaMap {
    /// An empty map.
    fn default() -> Self {
        MetaMap::labels(cell::channel(Arc::new(Pod::default())).1)
    }
}

impl std::fmt::Debug for MetaMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with(|m| m.fmt(f))
    }
}

/// A probe or lifecycle-hook action with its port already resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Exec(Vec<String>),
    Http {
        host: String,
        port: u16,
        path: String,
        scheme: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Sleep(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Liveness,
    Readiness,
    Startup,
    PostStart,
    PreStop,
}

impl ActionKind {
    pub fn probe_name(self) -> &'static str {
        match self {
            ActionKind::Liveness => "Liveness",
            ActionKind::Readiness => "Readiness",
            ActionKind::Startup => "Startup",
            ActionKind::PostStart => "PostStart",
            ActionKind::PreStop => "PreStop",
        }
    }
}

/// The result of a probe or hook: success, or the failure message Kubernetes shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
}

/// How a container ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub signal: i32,
    /// A runtime-determined reason ("OOMKilled"); otherwise Completed/Error by exit code.
    pub reason: Option<String>,
}

/// A started container: its id and a receiver that gets its exit (the light [`cell`] watch:
/// tokio's costs ~270 bytes more per container; sim pods' memory, issue 17).
#[derive(Clone)]
pub struct Started {
    pub id: String,
    pub exit: cell::Receiver<Option<Exit>>,
}

impl Started {
    /// Waits for the container's exit.
    pub async fn wait(&self) -> Exit {
        let mut rx = self.exit.clone();
        loop {
            if let Some(e) = rx.borrow_and_update().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone().unwrap_or(Exit {
                    code: 137,
                    signal: 9,
                    reason: None,
                });
            }
        }
    }
}

/// A command to run in a container: what `exec` starts.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecCommand {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Container paths and the host directories they are: the command's output is shown
    /// with the container's paths (empty: shown as it is).
    pub output_paths: Vec<(String, PathBuf)>,
    /// Who the container's processes are: `argv` changes to that user already (the run-as
    /// wrapper); a container that keeps root's uid gets its group at the spawn
    /// ([`user::apply_root_group`]), as its command does.
    pub ids: user::RunAs,
}

/// Cumulative usage of one container.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// CPU time used since the container started, nanoseconds.
    pub cpu_nanos: u64,
    /// Resident memory, bytes.
    pub memory_bytes: u64,
}

pub trait Runtime: Send + Sync + 'static {
    /// Reported as node.status.nodeInfo.containerRuntimeVersion.
    fn version(&self) -> String;

    /// The uid an image's processes run as without a `runAsUser` (checked against
    /// `runAsNonRoot`); None when the runtime runs no processes.
    fn image_uid(&self) -> Option<u32> {
        None
    }

    /// Resolves (pulls) an image; Err carries the runtime's message for ErrImagePull.
    fn pull(
        &self,
        pod: &PodInfo,
        image: &str,
    ) -> impl Future<Output = Result<String, String>> + Send;

    /// Creates and starts a container (`attempt` counts restarts). Err: the message for
    /// CreateContainerError / RunContainerError.
    fn start(
        &self,
        pod: &PodInfo,
        c: &Container,
        attempt: u32,
        init: bool,
    ) -> impl Future<Output = Result<Started, String>> + Send;

    /// Runs a probe or hook action against a running container.
    fn run(
        &self,
        pod: &PodInfo,
        c: &Container,
        id: &str,
        kind: ActionKind,
        action: &Action,
        timeout: Duration,
    ) -> impl Future<Output = Outcome> + Send;

    /// Sends SIGTERM (kill=false) or SIGKILL to a container.
    fn signal(&self, id: &str, kill: bool);

    /// Forgets a pod: its containers' files and state.
    fn remove_pod(&self, pod_uid: &str);

    /// Usage of a running container.
    fn usage(&self, pod: &PodInfo, c: &Container, id: &str) -> Option<Usage>;

    /// The node's own usage (the whole machine, as kubelet's node summary), if the runtime's
    /// nodes are real machines; None (the default) for simulated nodes, whose usage is the sum
    /// of their pods'.
    fn node_usage(&self) -> Option<Usage> {
        None
    }

    /// How to run `cmd` inside a running container (`kubectl exec`): the argv, environment and
    /// working directory as the container sees them. Err: the runtime's message.
    fn exec_command(
        &self,
        _pod: &PodInfo,
        _c: &Container,
        _cmd: &[String],
    ) -> Result<ExecCommand, String> {
        Err("exec is not supported by this container runtime".into())
    }

    /// The log file of one container attempt, if the runtime keeps logs.
    fn log_path(&self, pod_uid: &str, container: &str, attempt: u32) -> Option<PathBuf>;

    /// Whether volume files are real here (projected volumes, and so ServiceAccount tokens,
    /// are requested and written only then).
    fn materializes_volumes(&self) -> bool {
        false
    }

    /// Writes the files of a configMap/secret volume (key or item path → content).
    fn write_volume(
        &self,
        _pod: &PodInfo,
        _volume: &str,
        _files: &std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Delay before a container without a readiness probe reports ready (sim annotations).
    fn readiness_delay(&self, _pod: &PodInfo, _c: &Container) -> Option<Duration> {
        None
    }
}

/// Expands `$(VAR)` references in command/args as Kubernetes does (`$$` escapes).
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() && b[i + 1] == b'$' {
            out.push('$');
            i += 2;
            continue;
        }
        if b[i] == b'$' && i + 1 < b.len() && b[i + 1] == b'(' {
            if let Some(end) = s[i + 2..].find(')') {
                let name = &s[i + 2..i + 2 + end];
                if let Some((_, v)) = env.iter().rev().find(|(k, _)| k == name) {
                    out.push_str(v);
                    i += 3 + end;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The environment of a container: POD_* downward values, HOSTNAME and the container's env.
pub fn container_env(pod: &PodInfo, c: &Container) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOSTNAME".into(), pod.name.clone()),
        ("POD_NAME".into(), pod.name.clone()),
        ("POD_NAMESPACE".into(), pod.namespace.clone()),
        ("POD_IP".into(), pod.ip.to_string()),
        ("NODE_NAME".into(), pod.node_name.clone()),
    ];
    for e in &c.env {
        let value = match e.value_from.as_ref().and_then(|v| v.field_ref.as_ref()) {
            Some(f) => match f.field_path.as_str() {
                "metadata.name" => pod.name.clone(),
                "metadata.namespace" => pod.namespace.clone(),
                "metadata.uid" => pod.uid.clone(),
                "spec.nodeName" => pod.node_name.clone(),
                "spec.serviceAccountName" => pod.service_account.clone(),
                "status.podIP" => pod.ip.to_string(),
                "status.hostIP" => pod.host_ip.clone(),
                p => {
                    if let Some(k) = p
                        .strip_prefix("metadata.labels['")
                        .and_then(|r| r.strip_suffix("']"))
                    {
                        pod.labels.get(k).unwrap_or_default()
                    } else if let Some(k) = p
                        .strip_prefix("metadata.annotations['")
                        .and_then(|r| r.strip_suffix("']"))
                    {
                        pod.annotations.get(k).unwrap_or_default()
                    } else {
                        String::new()
                    }
                }
            },
            None => expand(&e.value, &env),
        };
        env.retain(|(k, _)| k != &e.name);
        env.push((e.name.clone(), value));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references() {
        let env = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)", &env), "x-$(B)-$(A)");
        assert_eq!(expand("é$(A)", &env), "éx");
    }
}
