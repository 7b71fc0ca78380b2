//! The `coxswain.v1.NodeAgent` gRPC service: container logs and usage summaries of the nodes
//! this process hosts, routed by node name.
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use coxswain_api::v1::node_agent_server::{NodeAgent, NodeAgentServer};
use coxswain_api::v1::{
    ContainerStats, LogChunk, LogsRequest, NodeStats, PodStats, StatsRequest, StatsSummary,
};
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
        let target = node.log_target(&namespace, &r.pod, &r.container, r.previous)?;
        let mut file = tokio::fs::File::open(&target.path)
            .await
            .map_err(|e| Status::not_found(format!("log of {}: {e}", r.pod)))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<LogChunk, Status>>(16);
        let follow = r.follow;
        let tail = r.tail_lines;
        tokio::spawn(async move {
            // Initial content (optionally the last N lines).
            let mut pos: u64 = 0;
            if let Some(n) = tail {
                let mut all = Vec::new();
                if file.read_to_end(&mut all).await.is_err() {
                    return;
                }
                pos = all.len() as u64;
                let text = tail_lines(&all, n as usize);
                for c in text.chunks(CHUNK) {
                    if tx.send(Ok(LogChunk { data: c.to_vec() })).await.is_err() {
                        return;
                    }
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
                            if tx
                                .send(Ok(LogChunk {
                                    data: buf[..n].to_vec(),
                                }))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                if !live {
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

    async fn stats(&self, req: Request<StatsRequest>) -> Result<Response<StatsSummary>, Status> {
        let r = req.into_inner();
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

fn tail_lines(all: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let mut count = 0;
    let end = if all.ends_with(b"\n") {
        all.len() - 1
    } else {
        all.len()
    };
    for i in (0..end).rev() {
        if all[i] == b'\n' {
            count += 1;
            if count == n {
                return &all[i + 1..];
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::tail_lines;

    #[test]
    fn tails() {
        assert_eq!(tail_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail_lines(b"a\nb\nc", 5), b"a\nb\nc");
        assert_eq!(tail_lines(b"a\nb\n", 0), b"");
    }
}
