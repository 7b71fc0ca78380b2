//! What every test here shares: the cluster, Node and Pod builders, the fake kubelet, and
//! readings of a Node's taints and conditions and a Pod's state.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{
    Condition, Container, Lease, LeaseSpec, Namespace, Node, NodeStatus, ObjectMeta, Pod, PodSpec,
    PodStatus, Toleration,
};
use coxswain_client::{Client, DeleteParams, ListParams, Resource};
pub use coxswain_test_support::objects::deleting;
use coxswain_test_support::{bin, wait_for, Coxswain};

pub const T: Duration = Duration::from_secs(15);
pub const LEASE_NS: &str = "kube-node-lease";

pub fn now_micro() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let base = coxswain_api::time::format_rfc3339(d.as_secs() as i64);
    format!("{}.{:06}Z", base.trim_end_matches('Z'), d.subsec_micros())
}

pub fn meta(ns: &str, name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        ..Default::default()
    })
}

pub fn ready(status: &str) -> Condition {
    Condition {
        r#type: "Ready".into(),
        status: status.into(),
        reason: "KubeletReady".into(),
        message: "kubelet is posting ready status".into(),
        last_heartbeat_time: now_micro(),
        last_transition_time: now_micro(),
        ..Default::default()
    }
}

pub fn pod(name: &str, node: &str, tolerations: Vec<Toleration>) -> Pod {
    Pod {
        metadata: meta("default", name),
        spec: Some(PodSpec {
            node_name: node.into(),
            containers: vec![Container {
                name: "c".into(),
                image: "nginx".into(),
                ..Default::default()
            }],
            tolerations,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A fake kubelet for a set of nodes: registers them Ready, renews their Leases, and deletes
/// (grace 0) pods being deleted on them — while the node is "up".
pub struct FakeKubelet {
    up: Arc<Mutex<HashMap<String, bool>>>,
    /// Renewal rounds begun (see `settled`).
    rounds: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKubelet {
    pub async fn start(client: &Client, nodes: &[&str]) -> anyhow::Result<FakeKubelet> {
        match client
            .create(&Namespace {
                metadata: meta("", LEASE_NS),
                ..Default::default()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(e.into()),
        }
        for n in nodes {
            let node = client
                .create(&Node {
                    metadata: meta("", n),
                    ..Default::default()
                })
                .await?;
            let mut node = node;
            node.status = Some(NodeStatus {
                conditions: vec![ready("True")],
                ..Default::default()
            });
            client.update_status(&node).await?;
            client
                .create(&Lease {
                    metadata: meta(LEASE_NS, n),
                    spec: Some(LeaseSpec {
                        holder_identity: Some(n.to_string()),
                        lease_duration_seconds: Some(40),
                        renew_time: now_micro(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?;
        }
        let up: Arc<Mutex<HashMap<String, bool>>> = Arc::new(Mutex::new(
            nodes.iter().map(|n| (n.to_string(), true)).collect(),
        ));
        let rounds = Arc::new(AtomicU64::new(0));
        let (c, u, r) = (client.clone(), up.clone(), rounds.clone());
        let task = tokio::spawn(async move {
            loop {
                r.fetch_add(1, Ordering::SeqCst);
                let alive: Vec<String> = u
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, up)| **up)
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in alive {
                    if let Ok(Some(mut l)) = c.get::<Lease>(LEASE_NS, &n).await {
                        l.spec.get_or_insert_with(Default::default).renew_time = now_micro();
                        let _ = c.update(&l).await;
                    }
                    let field = format!("spec.nodeName={n}");
                    if let Ok((pods, _)) = c.list::<Pod>("", &ListParams::fields(field)).await {
                        for p in pods {
                            let m = p.metadata();
                            if !m.deletion_timestamp.is_empty() {
                                let _ = c
                                    .delete::<Pod>(&m.namespace, &m.name, &DeleteParams::now())
                                    .await;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Ok(FakeKubelet { up, rounds, task })
    }

    /// Returns once a renewal round has begun after this call, so the round under way when a
    /// node was stopped (which may still renew it) is over.
    pub async fn settled(&self) -> anyhow::Result<()> {
        let from = self.rounds.load(Ordering::SeqCst);
        wait_for("a renewal round after the stop", T, || async {
            (self.rounds.load(Ordering::SeqCst) >= from + 2).then_some(())
        })
        .await
    }

    pub fn stop(&self, node: &str) {
        self.up.lock().unwrap().insert(node.to_string(), false);
    }

    /// The node comes back: Ready=True with a new heartbeat, renewals resume.
    pub async fn resume(&self, client: &Client, node: &str) -> anyhow::Result<()> {
        for _ in 0..5 {
            let mut n = client.get::<Node>("", node).await?.expect("node");
            n.status.get_or_insert_with(Default::default).conditions = vec![ready("True")];
            match client.update_status(&n).await {
                Ok(_) => break,
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        self.up.lock().unwrap().insert(node.to_string(), true);
        Ok(())
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn start_up() -> Coxswain {
    for b in ["coxswain", "coxctl"] {
        assert!(
            bin(b).exists(),
            "{} is not built: run `cargo build -p coxswain -p coxctl` first",
            bin(b).display()
        );
    }
    Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            "--nodes",
            "0",
            "--no-controllers",
            "--node-monitor-period",
            "200ms",
            "--node-monitor-grace-period",
            "2s",
            "--default-unreachable-toleration-seconds",
            "3",
            "--default-not-ready-toleration-seconds",
            "3",
            "--pod-gc-period",
            "200ms",
            "--pod-gc-quarantine",
            "1s",
            "--node-eviction-rate",
            "100",
        ],
    )
    .expect("start coxswain up")
}

pub fn taints(n: &Node) -> Vec<(String, String, String)> {
    n.spec
        .as_ref()
        .map(|s| {
            s.taints
                .iter()
                .map(|t| (t.key.clone(), t.effect.clone(), t.time_added.clone()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn ready_of(n: &Node) -> (String, String) {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready"))
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

pub fn pod_ready(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

/// The agent's part: the pod runs and is Ready.
pub async fn set_running(client: &Client, name: &str) -> anyhow::Result<()> {
    let mut p = client.get::<Pod>("default", name).await?.expect("pod");
    p.status = Some(PodStatus {
        phase: "Running".into(),
        conditions: vec![Condition {
            r#type: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    client.update_status(&p).await?;
    Ok(())
}
