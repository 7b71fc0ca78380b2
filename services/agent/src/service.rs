//! The `coxswain.v1.NodeAgent` gRPC service: container logs and usage summaries of the nodes
//! this process hosts, routed by node name.
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use coxswain_api::v1::node_agent_server::{NodeAgent, NodeAgentServer};
use coxswain_api::v1::{
    ContainerStats, ExecRequest, LogChunk, LogsRequest, NodeStats, PodStats, StatsRequest,
    StatsSummary,
};
use coxswain_client::authz::Attributes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::agent::{LogTarget, NodeAgent as Agent, NodeUsage, PodUsage};
use crate::runtime::Runtime;

/// What the service needs of a node (object-safe over the runtime type).
pub trait NodeApi: Send + Sync {
    fn log_target(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogTarget, Status>;
    fn usage(&self) -> Vec<PodUsage>;
    /// What `exec` runs in a running container.
    fn exec_command(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        cmd: &[String],
    ) -> Result<crate::runtime::ExecCommand, Status>;
    /// The node's own usage (None: report the sum of its pods).
    fn node_usage(&self) -> Option<NodeUsage>;
}

impl<R: Runtime> NodeApi for Agent<R> {
    fn log_target(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogTarget, Status> {
        Agent::log_target(self, namespace, pod, container, previous)
    }

    fn usage(&self) -> Vec<PodUsage> {
        Agent::usage(self)
    }

    fn exec_command(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        cmd: &[String],
    ) -> Result<crate::runtime::ExecCommand, Status> {
        Agent::exec_command(self, namespace, pod, container, cmd)
    }

    fn node_usage(&self) -> Option<NodeUsage> {
        Agent::node_usage(self)
    }
}

/// Nodes served by this process.
#[derive(Clone, Default)]
pub struct Registry {
    nodes: Arc<RwLock<HashMap<String, Arc<dyn NodeApi>>>>,
}

impl Registry {
    pub fn add(&self, name: &str, node: Arc<dyn NodeApi>) {
        if let Ok(mut n) = self.nodes.write() {
            n.insert(name.to_string(), node);
        }
    }

    fn get(&self, name: &str) -> Result<Arc<dyn NodeApi>, Status> {
        let nodes = self
            .nodes
            .read()
            .map_err(|_| Status::internal("registry poisoned"))?;
        if name.is_empty() && nodes.len() == 1 {
            if let Some(n) = nodes.values().next() {
                return Ok(n.clone());
            }
        }
        nodes.get(name).cloned().ok_or_else(|| {
            Status::not_found(format!(
                "node \"{name}\" is not served by this agent endpoint"
            ))
        })
    }

    /// Every node this process hosts, by name.
    pub fn nodes(&self) -> Vec<(String, Arc<dyn NodeApi>)> {
        self.nodes
            .read()
            .map(|n| n.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    pub fn into_server(self) -> NodeAgentServer<Service> {
        NodeAgentServer::new(Service { registry: self })
    }
}

pub struct Service {
    registry: Registry,
}

type LogStream = Pin<Box<dyn Stream<Item = Result<LogChunk, Status>> + Send>>;

const CHUNK: usize = 32 * 1024;

#[tonic::async_trait]
impl NodeAgent for Service {
    type LogsStream = LogStream;

    async fn logs(&self, req: Request<LogsRequest>) -> Result<Response<LogStream>, Status> {
        // kubectl logs: `get pods/log`.
        let r = req.get_ref();
        let ns = if r.namespace.is_empty() {
            "default"
        } else {
            &r.namespace
        };
        let a = Attributes::resource("get", "", "pods", ns, &r.pod).on_subresource("log");
        coxswain_client::authz::check(&req, &a)?;
        let r = req.into_inner();
        if r.pod.is_empty() {
            return Err(Status::invalid_argument("pod: Required value"));
        }
        if r.tail_lines.is_some_and(|t| t < 0) {
            return Err(Status::invalid_argument("tailLines: must be >= 0"));
        }
        let node = self.registry.get(&r.node_name)?;
        let namespace = if r.namespace.is_empty() {
            "default".to_string()
        } else {
            r.namespace.clone()
        };
        let view = log_view(&r, crate::crilog::now_nanos())?;
        let target = node.log_target(&namespace, &r.pod, &r.container, r.previous)?;
        let mut file = tokio::fs::File::open(&target.path)
            .await
            .map_err(|e| Status::not_found(format!("log of {}: {e}", r.pod)))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<LogChunk, Status>>(16);
        let follow = r.follow;
        let tail = r.tail_lines;
        tokio::spawn(async move {
            // The file holds CRI records; complete record lines are rendered, a record still
            // being written waits in `pending`.
            let mut pos: u64 = 0;
            let mut pending: Vec<u8> = Vec::new();
            let mut at_line_start = true;
            let send = |data: Vec<u8>| {
                let tx = tx.clone();
                async move {
                    for c in data.chunks(CHUNK) {
                        if tx.send(Ok(LogChunk { data: c.to_vec() })).await.is_err() {
                            return false;
                        }
                    }
                    true
                }
            };
            if let Some(n) = tail {
                let mut all = Vec::new();
                if file.read_to_end(&mut all).await.is_err() {
                    return;
                }
                pos = all.len() as u64;
                let end = all.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let from = crate::crilog::tail_offset(&all[..end], n as usize);
                let mut out = Vec::new();
                crate::crilog::render(&all[from..end], view, &mut at_line_start, &mut out);
                pending = all.split_off(end);
                if !send(out).await {
                    return;
                }
            }
            let mut buf = vec![0u8; CHUNK];
            loop {
                let live = follow && (target.live)();
                if file.seek(std::io::SeekFrom::Start(pos)).await.is_err() {
                    return;
                }
                let mut got = false;
                loop {
                    match file.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            got = true;
                            pos += n as u64;
                            pending.extend_from_slice(&buf[..n]);
                            let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
                                continue;
                            };
                            let rest = pending.split_off(end + 1);
                            let whole = std::mem::replace(&mut pending, rest);
                            let mut out = Vec::new();
                            crate::crilog::render(&whole, view, &mut at_line_start, &mut out);
                            if !out.is_empty() && !send(out).await {
                                return;
                            }
                        }
                    }
                }
                if !live {
                    if !pending.is_empty() {
                        let mut out = Vec::new();
                        crate::crilog::render(&pending, view, &mut at_line_start, &mut out);
                        send(out).await;
                    }
                    return;
                }
                if !got {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = tx.closed() => return,
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    type ExecStream = crate::exec::ExecStream;

    async fn exec(
        &self,
        req: Request<tonic::Streaming<ExecRequest>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let (_, extensions, mut inbound) = req.into_parts();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("start: Required value"))?;
        let start = first
            .start
            .ok_or_else(|| Status::invalid_argument("start: Required value"))?;
        if start.pod.is_empty() {
            return Err(Status::invalid_argument("start.pod: Required value"));
        }
        if start.command.is_empty() {
            return Err(Status::invalid_argument("start.command: Required value"));
        }
        let namespace = if start.namespace.is_empty() {
            "default"
        } else {
            start.namespace.as_str()
        };
        // kubectl exec: `create pods/exec`.
        let a = Attributes::resource("create", "", "pods", namespace, &start.pod)
            .on_subresource("exec");
        coxswain_client::authz::check_extensions(&extensions, &a)?;
        let node = self.registry.get(&start.node_name)?;
        let cmd = node.exec_command(namespace, &start.pod, &start.container, &start.command)?;
        crate::exec::start(cmd, &start, inbound).map(Response::new)
    }

    async fn stats(&self, req: Request<StatsRequest>) -> Result<Response<StatsSummary>, Status> {
        // The kubelet's /stats/summary: `get nodes/stats` of each node answered for.
        let check = |node: &str| {
            let a = Attributes::resource("get", "", "nodes", "", node).on_subresource("stats");
            coxswain_client::authz::check(&req, &a)
        };
        let r = req.get_ref().clone();
        let nodes: Vec<(String, Arc<dyn NodeApi>)> = if r.node_name.is_empty() {
            self.registry
                .nodes
                .read()
                .map_err(|_| Status::internal("registry poisoned"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            vec![(r.node_name.clone(), self.registry.get(&r.node_name)?)]
        };
        for (name, _) in &nodes {
            check(name)?;
        }
        let mut out = StatsSummary::default();
        for (name, n) in nodes {
            let mut pods: Vec<PodStats> = n
                .usage()
                .into_iter()
                .map(|p| {
                    let containers: Vec<ContainerStats> = p
                        .containers
                        .iter()
                        .map(|c| ContainerStats {
                            name: c.name.clone(),
                            cpu_usage_nano_cores: c.cpu_nano_cores,
                            cpu_usage_core_nano_seconds: c.cpu_core_nanos,
                            memory_working_set_bytes: c.memory_bytes,
                        })
                        .collect();
                    PodStats {
                        cpu_usage_nano_cores: containers
                            .iter()
                            .map(|c| c.cpu_usage_nano_cores)
                            .sum(),
                        memory_working_set_bytes: containers
                            .iter()
                            .map(|c| c.memory_working_set_bytes)
                            .sum(),
                        namespace: p.namespace,
                        name: p.name,
                        uid: p.uid,
                        time: p.time,
                        window: format!("{}s", p.window.as_secs_f64()),
                        containers,
                    }
                })
                .collect();
            pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            let own = n.node_usage().unwrap_or_default();
            out.nodes.push(NodeStats {
                node_name: name,
                pods,
                time: own.time,
                cpu_usage_nano_cores: own.cpu_nano_cores,
                cpu_usage_core_nano_seconds: own.cpu_core_nanos,
                memory_working_set_bytes: own.memory_bytes,
            });
        }
        out.nodes.sort_by(|a, b| a.node_name.cmp(&b.node_name));
        Ok(Response::new(out))
    }
}

/// How a Logs request wants the records shown: kubelet's validation of the log options
/// (sinceSeconds > 0, at most one of sinceSeconds and sinceTime), with `now` for sinceSeconds.
fn log_view(r: &LogsRequest, now: i128) -> Result<crate::crilog::View, Status> {
    let since = match (r.since_seconds, r.since_time.is_empty()) {
        (Some(_), false) => {
            return Err(Status::invalid_argument(
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ))
        }
        (Some(s), true) if s <= 0 => {
            return Err(Status::invalid_argument(format!(
                "sinceSeconds: Invalid value: {s}: must be greater than 0"
            )))
        }
        (Some(s), true) => Some(now - s as i128 * 1_000_000_000),
        (None, false) => Some(crate::crilog::parse_nanos(&r.since_time).ok_or_else(|| {
            Status::invalid_argument(format!(
                "sinceTime: Invalid value: {:?}: must be an RFC 3339 time",
                r.since_time
            ))
        })?),
        (None, true) => None,
    };
    Ok(crate::crilog::View {
        timestamps: r.timestamps,
        since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_options_are_validated_as_kubelet_does() {
        let sec = 1_000_000_000i128;
        let req = |since_seconds: Option<i64>, since_time: &str| LogsRequest {
            since_seconds,
            since_time: since_time.into(),
            timestamps: true,
            ..Default::default()
        };
        let v = log_view(&req(Some(10), ""), 100 * sec).unwrap();
        assert_eq!(v.since, Some(90 * sec));
        assert!(v.timestamps);
        let v = log_view(&req(None, "1970-01-01T00:01:00Z"), 100 * sec).unwrap();
        assert_eq!(v.since, Some(60 * sec));
        assert_eq!(log_view(&req(None, ""), 0).unwrap().since, None);
        let e = log_view(&req(Some(0), ""), 0).unwrap_err();
        assert!(
            e.message().starts_with("sinceSeconds: Invalid value: 0"),
            "{e}"
        );
        let e = log_view(&req(Some(1), "1970-01-01T00:01:00Z"), 0).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = log_view(&req(None, "soon"), 0).unwrap_err();
        assert!(e.message().starts_with("sinceTime: Invalid value"), "{e}");
    }
}
