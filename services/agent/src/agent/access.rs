//! What the NodeAgent service reads of a running pod: where a container's log is (and whether
//! more may come), and what `exec` runs in a container.
use super::*;

/// A container log file and a check whether more may come.
pub struct LogTarget {
    pub path: PathBuf,
    pub live: Box<dyn Fn() -> bool + Send + Sync>,
}

impl<R: Runtime> NodeAgent<R> {
    /// Where the log of a container lives, and whether that instance is still running.
    pub fn log_target(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogTarget, tonic::Status> {
        let uid = self
            .names
            .lock()
            .ok()
            .and_then(|n| n.get(&format!("{namespace}/{pod}")).cloned())
            .ok_or_else(|| {
                tonic::Status::not_found(format!(
                    "pods \"{pod}\" not found on node {}",
                    self.config.name
                ))
            })?;
        let w = self
            .workers
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?;
        let w = w
            .get(&uid)
            .ok_or_else(|| tonic::Status::not_found(format!("pods \"{pod}\" not found")))?;
        let spec = w.pod.spec.clone().unwrap_or_default();
        let all: Vec<String> = spec
            .init_containers
            .iter()
            .chain(spec.containers.iter())
            .map(|c| c.name.clone())
            .collect();
        let container = if container.is_empty() {
            if spec.containers.len() == 1 {
                spec.containers[0].name.clone()
            } else {
                return Err(tonic::Status::invalid_argument(format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]",
                    spec.containers
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )));
            }
        } else if all.iter().any(|c| c == container) {
            container.to_string()
        } else {
            return Err(tonic::Status::invalid_argument(format!(
                "container {container} is not valid for pod {pod}"
            )));
        };
        let status = w.status();
        let cs = status
            .container_statuses
            .iter()
            .chain(status.init_container_statuses.iter())
            .find(|c| c.name == container)
            .cloned()
            .unwrap_or_default();
        let current = w
            .instances
            .lock()
            .ok()
            .and_then(|i| i.current.iter().find(|(n, _, _)| n == &container).cloned());
        let Some((_, attempt, _)) = current else {
            let reason = cs
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .map(|w| w.reason.clone())
                .unwrap_or_else(|| "ContainerCreating".into());
            return Err(tonic::Status::failed_precondition(format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: {}",
                if reason == "ErrImagePull" || reason == "ImagePullBackOff" {
                    "trying and failing to pull image".to_string()
                } else {
                    reason
                }
            )));
        };
        let attempt = if previous {
            if attempt == 0 {
                return Err(tonic::Status::invalid_argument(format!(
                    "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                )));
            }
            attempt - 1
        } else {
            attempt
        };
        let path = self
            .ctx
            .runtime
            .log_path(&uid, &container, attempt)
            .ok_or_else(|| tonic::Status::unimplemented("this runtime keeps no logs"))?;
        let running_id = format!("{uid}-{container}-{attempt}");
        let status_rx = w.status.subscribe();
        let term = w.term.subscribe();
        Ok(LogTarget {
            path,
            live: Box::new(move || {
                if previous {
                    return false;
                }
                if term.has_changed().is_err() {
                    return false;
                }
                let st = status_rx
                    .borrow()
                    .as_ref()
                    .map(PackedStatus::unpack)
                    .unwrap_or_default();
                st.container_statuses
                    .iter()
                    .chain(st.init_container_statuses.iter())
                    .any(|c| {
                        c.name == container
                            && c.container_id == format!("coxswain://{running_id}")
                            && c.state.as_ref().is_some_and(|s| s.running.is_some())
                    })
            }),
        })
    }

    /// What `exec` runs in a running container of a pod on this node (kubelet's exec lookup:
    /// an unknown or stopped container is "container not found").
    pub fn exec_command(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        cmd: &[String],
    ) -> Result<crate::runtime::ExecCommand, tonic::Status> {
        let uid = self
            .names
            .lock()
            .ok()
            .and_then(|n| n.get(&format!("{namespace}/{pod}")).cloned())
            .ok_or_else(|| tonic::Status::not_found(format!("pods \"{pod}\" not found")))?;
        let (info, spec, status) = {
            let w = self
                .workers
                .lock()
                .map_err(|_| tonic::Status::internal("poisoned"))?;
            let w = w
                .get(&uid)
                .ok_or_else(|| tonic::Status::not_found(format!("pods \"{pod}\" not found")))?;
            let status = w.status();
            (
                w.info.clone(),
                w.pod.spec.clone().unwrap_or_default(),
                status,
            )
        };
        let name = if container.is_empty() {
            match spec.containers.as_slice() {
                [c] => c.name.clone(),
                cs => {
                    return Err(tonic::Status::invalid_argument(format!(
                        "a container name must be specified for pod {pod}, choose one of: [{}]",
                        cs.iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    )))
                }
            }
        } else {
            container.to_string()
        };
        let not_found =
            || tonic::Status::failed_precondition(format!("container not found (\"{name}\")"));
        let c = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter())
            .find(|c| c.name == name)
            .ok_or_else(not_found)?;
        let running = status
            .container_statuses
            .iter()
            .chain(status.init_container_statuses.iter())
            .any(|s| s.name == name && s.state.as_ref().is_some_and(|s| s.running.is_some()));
        if !running {
            return Err(not_found());
        }
        self.ctx
            .runtime
            .exec_command(&info, c, cmd)
            .map_err(tonic::Status::internal)
    }
}
