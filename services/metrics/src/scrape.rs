//! The scraper: every resolution period, ask every node agent for its Stats (concurrently,
//! bounded, each request with a timeout) and turn the answers into a [`Batch`]. Nodes that share
//! an agent endpoint (the in-process agents of `coxswain up`, or `coxswain agent --sim-nodes N`)
//! are asked in one request.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coxswain_api::v1::node_agent_client::NodeAgentClient;
use coxswain_api::v1::{Node, StatsRequest, StatsSummary};
use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint};

use crate::storage::{Batch, NodeSample, PodSample, Point};
use crate::time::{now_nanos, parse_nanos};

/// The Node annotation naming its agent's gRPC endpoint.
pub const ENDPOINT_ANNOTATION: &str = "coxswain.io/agent-endpoint";

/// Where a node's agent answers: the annotation, else the InternalIP and the kubelet port of
/// status.daemonEndpoints, else `fallback` (the server, which hosts in-process agents).
pub fn endpoint_of(node: &Node, fallback: &str) -> String {
    let meta = node.metadata.as_ref();
    if let Some(e) = meta.and_then(|m| m.annotations.get(ENDPOINT_ANNOTATION)) {
        if !e.is_empty() {
            return e.clone();
        }
    }
    let status = node.status.as_ref();
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|k| k.port)
        .unwrap_or(0);
    let ip = status.and_then(|s| {
        s.addresses
            .iter()
            .find(|a| a.r#type == "InternalIP")
            .map(|a| a.address.clone())
    });
    match ip {
        Some(ip) if port > 0 => format!("http://{ip}:{port}"),
        _ => fallback.to_string(),
    }
}

/// Clients of the agents, one channel per endpoint.
#[derive(Default, Clone)]
pub struct Agents {
    clients: Arc<Mutex<HashMap<String, NodeAgentClient<Channel>>>>,
}

impl Agents {
    fn client(&self, url: &str, timeout: Duration) -> Option<NodeAgentClient<Channel>> {
        let mut c = self.clients.lock().ok()?;
        if let Some(client) = c.get(url) {
            return Some(client.clone());
        }
        let ep = Endpoint::from_shared(url.to_string())
            .ok()?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        // As metrics-server's own identity (its role holds nodes/stats).
        let ep = coxswain_client::config::secure_as(ep, url, "metrics-server").ok()?;
        let client = NodeAgentClient::new(ep.connect_lazy()).max_decoding_message_size(512 << 20);
        c.insert(url.to_string(), client.clone());
        Some(client)
    }

    /// Forget endpoints no node names any more.
    fn retain(&self, live: &BTreeMap<String, Vec<String>>) {
        if let Ok(mut c) = self.clients.lock() {
            c.retain(|url, _| live.contains_key(url));
        }
    }
}

/// How a scrape went.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub endpoints: usize,
    pub failed: usize,
    pub nodes: usize,
    pub pods: usize,
    pub duration: Duration,
}

/// Scrape every node once.
pub async fn scrape(
    nodes: &[Arc<Node>],
    agents: &Agents,
    fallback: &str,
    concurrency: usize,
    timeout: Duration,
) -> (Batch, Report) {
    let started = Instant::now();
    let mut by_endpoint: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in nodes {
        let Some(name) = n.metadata.as_ref().map(|m| m.name.clone()) else {
            continue;
        };
        by_endpoint
            .entry(endpoint_of(n, fallback))
            .or_default()
            .push(name);
    }
    agents.retain(&by_endpoint);
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut report = Report {
        endpoints: by_endpoint.len(),
        ..Default::default()
    };
    for (url, names) in by_endpoint {
        let Some(mut client) = agents.client(&url, timeout) else {
            tracing::warn!(endpoint = %url, "invalid agent endpoint");
            report.failed += 1;
            continue;
        };
        let sem = sem.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let node_name = if names.len() == 1 {
                names[0].clone()
            } else {
                String::new()
            };
            let r = tokio::time::timeout(timeout, client.stats(StatsRequest { node_name })).await;
            let r = match r {
                Ok(Ok(s)) => Ok(s.into_inner()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("timed out after {timeout:?}")),
            };
            (url, names, r, now_nanos())
        });
    }
    let mut batch = Batch::default();
    while let Some(done) = tasks.join_next().await {
        let Ok((url, names, r, received)) = done else {
            report.failed += 1;
            continue;
        };
        match r {
            Ok(summary) => add_summary(&mut batch, &names, summary, received),
            Err(e) => {
                report.failed += 1;
                tracing::debug!(endpoint = %url, error = %e, "scraping the agent failed");
            }
        }
    }
    report.nodes = batch.nodes.len();
    report.pods = batch.pods.len();
    report.duration = started.elapsed();
    (batch, report)
}

/// Add the nodes of one agent answer that were asked for.
pub fn add_summary(batch: &mut Batch, asked: &[String], summary: StatsSummary, received: i128) {
    for node in summary.nodes {
        if !asked.contains(&node.node_name) {
            continue;
        }
        for pod in node.pods {
            let ts = parse_nanos(&pod.time).unwrap_or(received);
            let containers = pod
                .containers
                .into_iter()
                .map(|c| {
                    (
                        c.name,
                        Point {
                            timestamp: ts,
                            cpu_core_nanos: c.cpu_usage_core_nano_seconds,
                            memory_bytes: c.memory_working_set_bytes,
                        },
                    )
                })
                .collect();
            batch.pods.insert(
                (pod.namespace, pod.name),
                PodSample {
                    node: node.node_name.clone(),
                    uid: pod.uid,
                    containers,
                },
            );
        }
        // The machine's own usage when the agent reports it (kubelet's node summary).
        let own = parse_nanos(&node.time).map(|ts| Point {
            timestamp: ts,
            cpu_core_nanos: node.cpu_usage_core_nano_seconds,
            memory_bytes: node.memory_working_set_bytes,
        });
        batch.nodes.insert(
            node.node_name,
            NodeSample {
                timestamp: own.map_or(received, |p| p.timestamp),
                own,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{
        DaemonEndpoint, NodeAddress, NodeDaemonEndpoints, NodeStatus, ObjectMeta,
    };

    #[test]
    fn a_summary_adds_only_the_nodes_asked_for_with_sample_times() {
        use coxswain_api::v1::{ContainerStats, NodeStats, PodStats};
        let pod = |name: &str, time: &str| PodStats {
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            time: time.into(),
            containers: vec![ContainerStats {
                name: "app".into(),
                cpu_usage_core_nano_seconds: 7,
                memory_working_set_bytes: 9,
                ..Default::default()
            }],
            ..Default::default()
        };
        let summary = StatsSummary {
            nodes: vec![
                NodeStats {
                    node_name: "a".into(),
                    pods: vec![pod("p1", "2030-01-01T00:00:00.5Z"), pod("p2", "")],
                    time: "2030-01-01T00:00:01Z".into(),
                    cpu_usage_core_nano_seconds: 11,
                    memory_working_set_bytes: 12,
                    ..Default::default()
                },
                NodeStats {
                    node_name: "b".into(),
                    pods: vec![pod("p3", "")],
                    ..Default::default()
                },
            ],
        };
        let mut b = Batch::default();
        add_summary(&mut b, &["a".to_string()], summary, 42);
        assert_eq!(b.nodes.keys().collect::<Vec<_>>(), ["a"]);
        let t = parse_nanos("2030-01-01T00:00:01Z").unwrap();
        assert_eq!(
            b.nodes["a"],
            NodeSample {
                timestamp: t,
                own: Some(Point {
                    timestamp: t,
                    cpu_core_nanos: 11,
                    memory_bytes: 12
                })
            }
        );
        assert_eq!(b.pods.len(), 2);
        let p1 = &b.pods[&("default".to_string(), "p1".to_string())];
        assert_eq!(p1.node, "a");
        assert_eq!(
            p1.containers["app"].timestamp,
            parse_nanos("2030-01-01T00:00:00.5Z").unwrap()
        );
        // No sample time: the answer's arrival.
        assert_eq!(
            b.pods[&("default".to_string(), "p2".to_string())].containers["app"].timestamp,
            42
        );
    }

    #[test]
    fn endpoints_come_from_the_annotation_then_the_daemon_endpoint() {
        let mut n = Node {
            metadata: Some(ObjectMeta {
                name: "n1".into(),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                addresses: vec![NodeAddress {
                    r#type: "InternalIP".into(),
                    address: "127.0.0.9".into(),
                }],
                daemon_endpoints: Some(NodeDaemonEndpoints {
                    kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(endpoint_of(&n, "http://s"), "http://127.0.0.9:10250");
        n.metadata
            .as_mut()
            .unwrap()
            .annotations
            .insert(ENDPOINT_ANNOTATION.into(), "http://127.0.0.1:5".into());
        assert_eq!(endpoint_of(&n, "http://s"), "http://127.0.0.1:5");
        n.status = None;
        n.metadata.as_mut().unwrap().annotations.clear();
        assert_eq!(endpoint_of(&n, "http://s"), "http://s");
    }
}
