//! The node lifecycle controller in the real `coxswain up` over real gRPC, with shortened
//! timers, and the node verbs of the real `coxctl`. The nodes here are Node objects the test
//! creates; a fake kubelet in the test renews their Leases, posts Ready, and finishes graceful
//! pod deletions, and can be stopped per node.
//!
//! Needs the `coxswain` and `coxctl` binaries built (`cargo build -p coxswain -p coxctl`;
//! `cargo test --workspace` builds them).
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{
    Condition, Container, DaemonSet, Lease, LeaseSpec, Namespace, Node, NodeStatus, ObjectMeta,
    OwnerReference, Pod, PodSpec, PodStatus, ReplicaSet, Toleration,
};
use coxswain_client::{Client, DeleteParams, ListParams, Resource};
use coxswain_test_support::{bin, sim_agent, wait_for, Coxswain};

const T: Duration = Duration::from_secs(15);
const LEASE_NS: &str = "kube-node-lease";

fn now_micro() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let base = coxswain_api::time::format_rfc3339(d.as_secs() as i64);
    format!("{}.{:06}Z", base.trim_end_matches('Z'), d.subsec_micros())
}

fn meta(ns: &str, name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        ..Default::default()
    })
}

fn ready(status: &str) -> Condition {
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

fn pod(name: &str, node: &str, tolerations: Vec<Toleration>) -> Pod {
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
struct FakeKubelet {
    up: Arc<Mutex<HashMap<String, bool>>>,
    /// Renewal rounds begun (see `settled`).
    rounds: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKubelet {
    async fn start(client: &Client, nodes: &[&str]) -> anyhow::Result<FakeKubelet> {
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
    async fn settled(&self) -> anyhow::Result<()> {
        let from = self.rounds.load(Ordering::SeqCst);
        wait_for("a renewal round after the stop", T, || async {
            (self.rounds.load(Ordering::SeqCst) >= from + 2).then_some(())
        })
        .await
    }

    fn stop(&self, node: &str) {
        self.up.lock().unwrap().insert(node.to_string(), false);
    }

    /// The node comes back: Ready=True with a new heartbeat, renewals resume.
    async fn resume(&self, client: &Client, node: &str) -> anyhow::Result<()> {
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

fn start_up() -> Coxswain {
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

fn taints(n: &Node) -> Vec<(String, String, String)> {
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

fn ready_of(n: &Node) -> (String, String) {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready"))
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

fn deleting(p: &Pod) -> bool {
    !p.metadata().deletion_timestamp.is_empty()
}

fn pod_ready(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

/// The agent's part: the pod runs and is Ready.
async fn set_running(client: &Client, name: &str) -> anyhow::Result<()> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_goes_unknown_its_pods_are_evicted_and_it_comes_back_clean(
) -> anyhow::Result<()> {
    let cx = start_up();
    let client = Client::connect(&cx.url()).await?;
    let kubelet = FakeKubelet::start(&client, &["fake-a", "fake-b"]).await?;

    // Default tolerations (3 s here) from admission; one pod tolerates unreachable forever.
    client.create(&pod("web", "fake-a", vec![])).await?;
    let forever = Toleration {
        key: "node.kubernetes.io/unreachable".into(),
        operator: "Exists".into(),
        effect: "NoExecute".into(),
        ..Default::default()
    };
    client
        .create(&pod("stays", "fake-a", vec![forever]))
        .await?;
    client.create(&pod("elsewhere", "fake-b", vec![])).await?;
    for p in ["web", "stays", "elsewhere"] {
        set_running(&client, p).await?;
    }
    let web = client.get::<Pod>("default", "web").await?.expect("web");
    let secs: Vec<Option<i32>> = web
        .spec
        .as_ref()
        .unwrap()
        .tolerations
        .iter()
        .map(|t| t.toleration_seconds)
        .collect();
    assert_eq!(
        secs,
        vec![Some(3), Some(3)],
        "default tolerations from admission"
    );

    // Healthy for longer than the grace period: nothing happens.
    tokio::time::sleep(Duration::from_millis(2500)).await; // observation window, not sync
    let a = client.get::<Node>("", "fake-a").await?.expect("node");
    assert_eq!(ready_of(&a).0, "True");
    assert!(taints(&a).is_empty(), "{:?}", taints(&a));

    // fake-a goes silent.
    kubelet.stop("fake-a");
    let a = wait_for(
        "fake-a Ready=Unknown with the unreachable taints",
        T,
        || async {
            let n = client.get::<Node>("", "fake-a").await.ok()??;
            let t = taints(&n);
            (ready_of(&n) == ("Unknown".into(), "NodeStatusUnknown".into())
                && t.iter()
                    .any(|(k, e, _)| k == "node.kubernetes.io/unreachable" && e == "NoExecute"))
            .then_some(n)
        },
    )
    .await?;
    let t = taints(&a);
    assert!(t.contains(&(
        "node.kubernetes.io/unreachable".into(),
        "NoSchedule".into(),
        t.iter().find(|x| x.1 == "NoSchedule").unwrap().2.clone()
    )));
    let added =
        coxswain_api::time::parse_rfc3339(&t.iter().find(|x| x.1 == "NoExecute").unwrap().2)
            .expect("timeAdded set");
    let cond = a
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.r#type == "Ready")
        .unwrap();
    assert_eq!(cond.message, "Kubelet stopped posting node status.");
    // The other node is untouched.
    let b = client.get::<Node>("", "fake-b").await?.expect("node");
    assert_eq!(ready_of(&b).0, "True");
    assert!(taints(&b).is_empty());

    // Its pods are marked not ready; web is not evicted before its 3 s run out.
    let web = wait_for("web Ready=False", T, || async {
        let p = client.get::<Pod>("default", "web").await.ok()??;
        (pod_ready(&p) == "False").then_some(p)
    })
    .await?;
    let web = wait_for("web evicted (deletionTimestamp)", T, || async {
        let p = client.get::<Pod>("default", "web").await.ok()??;
        deleting(&p).then_some(p)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; last seen {web:?}"))?;
    let deleted_at = coxswain_api::time::parse_rfc3339(&web.metadata().deletion_timestamp).unwrap();
    assert!(
        deleted_at - added >= 2,
        "evicted {}s after the taint, tolerationSeconds 3",
        deleted_at - added
    );
    let st = web.status.as_ref().unwrap();
    assert_eq!(st.reason, "NodeLost");
    assert_eq!(
        st.message,
        "Node fake-a which was running pod web is unresponsive"
    );
    // coxctl shows such a pod as Unknown, as kubectl does.
    let out = cx.coxctl(&["get", "pods"]).success().stdout;
    let line = out.lines().find(|l| l.starts_with("web ")).unwrap_or("");
    assert!(line.contains(" Unknown "), "{out}");
    let out = cx.coxctl(&["get", "nodes"]).success().stdout;
    assert!(
        out.lines()
            .any(|l| l.starts_with("fake-a ") && l.contains(" NotReady ")),
        "{out}"
    );
    // Events: TaintManagerEviction on the pod.
    let out = cx.coxctl(&["describe", "pod", "web"]).success().stdout;
    assert!(
        out.contains("TaintManagerEviction")
            && out.contains("Marking for deletion Pod default/web"),
        "{out}"
    );

    // The pod tolerating forever stays (not ready); the pod elsewhere is untouched.
    let stays = client.get::<Pod>("default", "stays").await?.expect("stays");
    assert!(!deleting(&stays));
    assert_eq!(pod_ready(&stays), "False");
    let elsewhere = client
        .get::<Pod>("default", "elsewhere")
        .await?
        .expect("pod");
    assert!(!deleting(&elsewhere));
    assert_eq!(pod_ready(&elsewhere), "True");

    // The node comes back: taints lifted, the evicted pod finished by its kubelet, nothing
    // moves back.
    kubelet.resume(&client, "fake-a").await?;
    wait_for("fake-a Ready without taints", T, || async {
        let n = client.get::<Node>("", "fake-a").await.ok()??;
        (ready_of(&n).0 == "True" && taints(&n).is_empty()).then_some(())
    })
    .await?;
    wait_for("web removed by the returning kubelet", T, || async {
        client
            .get::<Pod>("default", "web")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    let stays = client.get::<Pod>("default", "stays").await?.expect("stays");
    assert!(!deleting(&stays));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coxctl_taint_no_execute_evicts_the_non_tolerating_pod_at_once() -> anyhow::Result<()> {
    let cx = start_up();
    let client = Client::connect(&cx.url()).await?;
    let _kubelet = FakeKubelet::start(&client, &["node1"]).await?;
    let tolerate = Toleration {
        key: "tag".into(),
        operator: "Equal".into(),
        value: "mayikt".into(),
        effect: "NoExecute".into(),
        ..Default::default()
    };
    client
        .create(&pod("mayikt-pod-plain", "node1", vec![]))
        .await?;
    client
        .create(&pod("mayikt-pod-tolerate", "node1", vec![tolerate]))
        .await?;

    let out = cx
        .coxctl(&["taint", "nodes", "node1", "tag=mayikt:NoExecute"])
        .success();
    assert_eq!(out.stdout, "node/node1 tainted\n");
    let started = std::time::Instant::now();
    // Evicted promptly (well under the default tolerations' 3 s: they do not match tag).
    wait_for("plain pod gone", T, || async {
        client
            .get::<Pod>("default", "mayikt-pod-plain")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let tol = client
        .get::<Pod>("default", "mayikt-pod-tolerate")
        .await?
        .expect("tolerating pod stays");
    assert!(!deleting(&tol));

    // kubectl's errors and removal forms.
    let out = cx
        .coxctl(&["taint", "nodes", "node1", "tag=other:NoExecute"])
        .failure();
    assert_eq!(
        out.stderr,
        "error: node node1 already has tag taint(s) with same effect(s) and --overwrite is false\n"
    );
    let out = cx
        .coxctl(&["taint", "node", "node1", "tag=mayikt:NoSchedule"])
        .success();
    assert_eq!(out.stdout, "node/node1 tainted\n");
    let out = cx
        .coxctl(&["taint", "nodes", "node1", "tag=mayikt:NoExecute-"])
        .success();
    assert_eq!(out.stdout, "node/node1 untainted\n");
    let out = cx.coxctl(&["taint", "nodes/node1", "tag-"]).success();
    assert_eq!(out.stdout, "node/node1 untainted\n");
    let out = cx.coxctl(&["taint", "nodes", "node1", "tag-"]).failure();
    assert_eq!(out.stderr, "error: taint \"tag\" not found\n");
    let out = cx.coxctl(&["describe", "node", "node1"]).success().stdout;
    assert!(
        out.lines()
            .any(|l| l.starts_with("Taints:") && l.trim_end().ends_with("<none>")),
        "{out}"
    );
    // S03: the control-plane taint, removed and restored with an empty value.
    cx.coxctl(&[
        "taint",
        "node",
        "node1",
        "node-role.kubernetes.io/master=:NoSchedule",
    ])
    .success();
    let out = cx.coxctl(&["describe", "node", "node1"]).success().stdout;
    assert!(
        out.contains("node-role.kubernetes.io/master:NoSchedule"),
        "{out}"
    );
    let out = cx
        .coxctl(&["taint", "node", "node1", "node-role.kubernetes.io/master-"])
        .success();
    assert_eq!(out.stdout, "node/node1 untainted\n");
    Ok(())
}

fn owner(kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_uncordon_and_drain_as_kubectl() -> anyhow::Result<()> {
    let cx = start_up();
    let client = Client::connect(&cx.url()).await?;
    let _kubelet = FakeKubelet::start(&client, &["node1", "node2"]).await?;

    // cordon / uncordon
    let out = cx.coxctl(&["cordon", "node1"]).success();
    assert_eq!(out.stdout, "node/node1 cordoned\n");
    let out = cx.coxctl(&["cordon", "node1"]).success();
    assert_eq!(out.stdout, "node/node1 already cordoned\n");
    let out = cx.coxctl(&["get", "nodes"]).success().stdout;
    assert!(
        out.lines()
            .any(|l| l.starts_with("node1 ") && l.contains(" Ready,SchedulingDisabled ")),
        "{out}"
    );
    wait_for("the unschedulable taint", T, || async {
        let n = client.get::<Node>("", "node1").await.ok()??;
        taints(&n)
            .iter()
            .any(|(k, e, _)| k == "node.kubernetes.io/unschedulable" && e == "NoSchedule")
            .then_some(())
    })
    .await?;
    let out = cx.coxctl(&["uncordon", "node1"]).success();
    assert_eq!(out.stdout, "node/node1 uncordoned\n");
    wait_for("the unschedulable taint lifted", T, || async {
        let n = client.get::<Node>("", "node1").await.ok()??;
        taints(&n).is_empty().then_some(())
    })
    .await?;

    // drain: an RS pod, a DaemonSet pod and a bare pod on node2 (no controllers run here, so
    // the owners are plain objects).
    let rs = client
        .create(&ReplicaSet {
            metadata: meta("default", "web-rs"),
            ..serde_json::from_value(serde_json::json!({
                "spec": {"selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
            }))?
        })
        .await?;
    let ds = client
        .create(&DaemonSet {
            metadata: meta("default", "agent-ds"),
            ..serde_json::from_value(serde_json::json!({
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
            }))?
        })
        .await?;
    let mut p = pod("web-1", "node2", vec![]);
    p.metadata.as_mut().unwrap().owner_references =
        vec![owner("ReplicaSet", "web-rs", &rs.metadata().uid)];
    client.create(&p).await?;
    let mut p = pod("agent-1", "node2", vec![]);
    p.metadata.as_mut().unwrap().owner_references =
        vec![owner("DaemonSet", "agent-ds", &ds.metadata().uid)];
    client.create(&p).await?;
    client.create(&pod("bare", "node2", vec![])).await?;

    let out = cx.coxctl(&["drain", "node2"]).failure();
    assert_eq!(out.stdout, "node/node2 cordoned\n");
    assert_eq!(
        out.stderr,
        "error: unable to drain node \"node2\" due to error: [cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent-1, cannot delete Pods that declare no controller (use --force to override): default/bare], continuing command...\n\
         There are pending nodes to be drained:\n node2\n\
         cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent-1\n\
         cannot delete Pods that declare no controller (use --force to override): default/bare\n"
    );
    // Nothing was evicted.
    assert!(!deleting(
        &client.get::<Pod>("default", "web-1").await?.expect("web-1")
    ));

    let out = cx
        .coxctl(&[
            "drain",
            "node2",
            "--ignore-daemonsets",
            "--force",
            "--timeout",
            "20s",
        ])
        .success();
    assert_eq!(
        out.stderr,
        "Warning: ignoring DaemonSet-managed Pods: default/agent-1; deleting Pods that declare no controller: default/bare\n"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"node/node2 already cordoned"));
    assert_eq!(lines.last(), Some(&"node/node2 drained"));
    for l in [
        "evicting pod default/web-1",
        "evicting pod default/bare",
        "pod/web-1 evicted",
        "pod/bare evicted",
    ] {
        assert!(lines.contains(&l), "{}", out.stdout);
    }
    assert!(client.get::<Pod>("default", "web-1").await?.is_none());
    assert!(client.get::<Pod>("default", "bare").await?.is_none());
    assert!(client.get::<Pod>("default", "agent-1").await?.is_some());
    let out = cx.coxctl(&["get", "nodes"]).success().stdout;
    assert!(
        out.lines()
            .any(|l| l.starts_with("node2 ") && l.contains(" Ready,SchedulingDisabled ")),
        "{out}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_times_out_when_the_node_does_not_finish_its_pods() -> anyhow::Result<()> {
    let cx = start_up();
    let client = Client::connect(&cx.url()).await?;
    let kubelet = FakeKubelet::start(&client, &["node1", "node2"]).await?;
    client.create(&pod("bare", "node1", vec![])).await?;
    // The kubelet is gone but the node not yet Unknown: the pod stays Terminating.
    kubelet.stop("node1");
    let out = cx
        .coxctl(&["drain", "node1", "--force", "--timeout", "1s"])
        .failure();
    assert!(
        out.stderr.starts_with(
            "Warning: deleting Pods that declare no controller: default/bare\n\
             error: unable to drain node \"node1\" due to error: drain did not complete within 1s, continuing command...\n"
        ),
        "{}",
        out.stderr
    );
    let p = client.get::<Pod>("default", "bare").await?.expect("bare");
    assert!(deleting(&p));
    Ok(())
}

/// A `coxswain node-lifecycle` process against `server`, killed when dropped.
struct LifecycleProcess {
    child: std::process::Child,
}

impl LifecycleProcess {
    /// Starts it with `flags` and waits for its ready line.
    async fn start(server: &str, flags: &[&str]) -> anyhow::Result<LifecycleProcess> {
        let mut child = std::process::Command::new(bin("coxswain"))
            .args(["node-lifecycle", "--server", server])
            .args(flags)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout");
        let this = LifecycleProcess { child };
        let ready = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stdout)
                .lines()
                .next()
                .and_then(|l| l.ok())
        });
        let line = tokio::time::timeout(T, ready).await??.unwrap_or_default();
        anyhow::ensure!(
            line.starts_with("coxswain node-lifecycle ready server="),
            "{line}"
        );
        Ok(this)
    }
}

impl Drop for LifecycleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pods_by_node(pods: &[Pod]) -> HashMap<String, (usize, usize)> {
    // node → (live, being deleted)
    let mut m: HashMap<String, (usize, usize)> = HashMap::new();
    for p in pods {
        let e = m.entry(pod_node(p)).or_default();
        if deleting(p) {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    m
}

fn pod_node(p: &Pod) -> String {
    p.spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn running(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| s.phase == "Running")
}

/// S04 with a real agent process: its pods go Unknown and are replaced on the other node; the
/// agent comes back and the stale pods are removed; nothing moves back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s04_a_killed_agent_process_fails_over_and_its_stale_pods_go_when_it_returns(
) -> anyhow::Result<()> {
    let cx = Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            "--nodes",
            "1",
            "--runtime",
            "sim",
            "--lease-renew-interval",
            "200ms",
            "--node-status-update-frequency",
            "500ms",
            "--node-monitor-period",
            "200ms",
            "--node-monitor-grace-period",
            "2s",
            "--default-unreachable-toleration-seconds",
            "2",
            "--default-not-ready-toleration-seconds",
            "2",
        ],
    )?;
    let client = Client::connect(&cx.url()).await?;
    let mut agent = sim_agent(&cx.url(), "node2");
    for n in ["node1", "node2"] {
        wait_for(&format!("{n} Ready"), T, || async {
            let node = client.get::<Node>("", n).await.ok()??;
            (ready_of(&node).0 == "True").then_some(())
        })
        .await?;
    }
    // Place all three replicas on node2 (node1 cordoned while they are scheduled).
    cx.coxctl(&["cordon", "node1"]).success();
    let manifest =
        coxswain_test_support::scenarios_dir().join("04-deployment-nginx-replicas3.yaml");
    cx.coxctl(&["apply", "-f", manifest.to_str().unwrap()])
        .success();
    let sel = ListParams::labels("app=web_server");
    wait_for("3 pods Running on node2", T, || async {
        let (pods, _) = client.list::<Pod>("default", &sel).await.ok()?;
        (pods.len() == 3 && pods.iter().all(|p| pod_node(p) == "node2" && running(p))).then_some(())
    })
    .await?;
    cx.coxctl(&["uncordon", "node1"]).success();
    // A pod that tolerates unreachable forever (as DaemonSet pods do) stays through it all.
    let forever = Toleration {
        key: "node.kubernetes.io/unreachable".into(),
        operator: "Exists".into(),
        effect: "NoExecute".into(),
        ..Default::default()
    };
    client.create(&pod("stays", "node2", vec![forever])).await?;
    wait_for("stays Ready", T, || async {
        let p = client.get::<Pod>("default", "stays").await.ok()??;
        (pod_ready(&p) == "True").then_some(())
    })
    .await?;

    // The agent process dies.
    agent.kill9();
    wait_for("node2 NotReady", T, || async {
        let out = cx.coxctl(&["get", "nodes"]);
        out.stdout
            .lines()
            .any(|l| l.starts_with("node2 ") && l.contains(" NotReady "))
            .then_some(())
    })
    .await?;
    // Its pods show Unknown (and stay listed), three new ones run on node1.
    let pods = wait_for("3 Unknown on node2 and 3 Running on node1", T, || async {
        let (pods, _) = client.list::<Pod>("default", &sel).await.ok()?;
        let m = pods_by_node(&pods);
        let on1 = pods
            .iter()
            .filter(|p| pod_node(p) == "node1" && running(p) && !deleting(p))
            .count();
        (m.get("node2") == Some(&(0, 3)) && on1 == 3).then_some(pods)
    })
    .await?;
    assert_eq!(pods.len(), 6);
    let out = cx.coxctl(&["get", "pods", "-o", "wide"]).success().stdout;
    let unknown = out
        .lines()
        .filter(|l| l.contains(" Unknown ") && l.contains(" node2 "))
        .count();
    assert_eq!(unknown, 3, "{out}");
    let stays = client.get::<Pod>("default", "stays").await?.expect("stays");
    assert!(!deleting(&stays));
    assert_eq!(pod_ready(&stays), "False");

    // The agent comes back: the stale pods are removed, nothing moves back.
    let _agent = sim_agent(&cx.url(), "node2");
    wait_for("node2 Ready without taints", T, || async {
        let n = client.get::<Node>("", "node2").await.ok()??;
        (ready_of(&n).0 == "True" && taints(&n).is_empty()).then_some(())
    })
    .await?;
    wait_for("only the 3 pods on node1 remain", T, || async {
        let (pods, _) = client.list::<Pod>("default", &sel).await.ok()?;
        (pods.len() == 3 && pods.iter().all(|p| pod_node(p) == "node1")).then_some(())
    })
    .await?;
    wait_for("stays Ready again on node2", T, || async {
        let p = client.get::<Pod>("default", "stays").await.ok()??;
        (pod_ready(&p) == "True" && !deleting(&p)).then_some(())
    })
    .await?;
    Ok(())
}

fn has_unreachable_no_execute(n: &Node) -> bool {
    taints(n)
        .iter()
        .any(|(k, e, _)| k == "node.kubernetes.io/unreachable" && e == "NoExecute")
}

/// Upstream's disruption rules: 3 of 4 nodes silent is a partial disruption of a small zone,
/// so none gets the NoExecute taint (only NoSchedule); when one returns the zone is normal
/// again and the others are tainted one at a time at --node-eviction-rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_disruption_stops_no_execute_tainting_and_the_rate_limits_it_after(
) -> anyhow::Result<()> {
    // b, c and d must go silent in the same monitor pass: were one seen overdue a pass before
    // the others, the zone would still be Normal then and it would be tainted at once (as
    // upstream would). So they are stopped before the controller runs: its first pass sees the
    // same leases for all four, and b, c and d are never renewed afterwards.
    let cx = Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            "--nodes",
            "0",
            "--no-controllers",
            "--no-node-lifecycle",
        ],
    )?;
    let client = Client::connect(&cx.url()).await?;
    let nodes = ["zone-a", "zone-b", "zone-c", "zone-d"];
    let kubelet = FakeKubelet::start(&client, &nodes).await?;
    for n in &nodes[1..] {
        kubelet.stop(n);
    }
    kubelet.settled().await?;
    let _lifecycle = LifecycleProcess::start(
        &cx.url(),
        &[
            "--node-monitor-period",
            "100ms",
            "--node-monitor-grace-period",
            "2s",
            "--node-eviction-rate",
            "0.5",
        ],
    )
    .await?;
    wait_for("b, c, d Unknown with unreachable:NoSchedule", T, || async {
        for n in &nodes[1..] {
            let node = client.get::<Node>("", n).await.ok()??;
            let t = taints(&node);
            if ready_of(&node).0 != "Unknown"
                || !t
                    .iter()
                    .any(|(k, e, _)| k == "node.kubernetes.io/unreachable" && e == "NoSchedule")
            {
                return None;
            }
        }
        Some(())
    })
    .await?;
    // Partial disruption: no NoExecute taint for a while (an observation window).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in &nodes[1..] {
        let node = client.get::<Node>("", n).await?.expect("node");
        assert!(
            !has_unreachable_no_execute(&node),
            "{n}: {:?}",
            taints(&node)
        );
    }
    // zone-b returns: 2 of 4 not ready is normal; c and d get NoExecute one per 2 s.
    kubelet.resume(&client, "zone-b").await?;
    let back = std::time::Instant::now();
    let first = wait_for("one of c, d tainted NoExecute", T, || async {
        let mut hit = None;
        for n in ["zone-c", "zone-d"] {
            let node = client.get::<Node>("", n).await.ok()??;
            if has_unreachable_no_execute(&node) {
                hit = Some(n);
            }
        }
        hit
    })
    .await?;
    let t1 = back.elapsed();
    // The limiter was stopped (rate 0) and restarts drained, as upstream's SwapLimiter.
    assert!(
        t1 >= Duration::from_millis(1500),
        "first taint after {t1:?}"
    );
    let other = if first == "zone-c" {
        "zone-d"
    } else {
        "zone-c"
    };
    let node = client.get::<Node>("", other).await?.expect("node");
    assert!(!has_unreachable_no_execute(&node), "both tainted at once");
    wait_for("the other tainted NoExecute", T, || async {
        let node = client.get::<Node>("", other).await.ok()??;
        has_unreachable_no_execute(&node).then_some(())
    })
    .await?;
    let t2 = back.elapsed();
    assert!(
        t2 - t1 >= Duration::from_millis(1500),
        "second taint {:?} after the first, rate 0.5/s",
        t2 - t1
    );
    Ok(())
}

/// A node that does not come back: deleting it lets the pod GC remove its Unknown pods; a
/// down node tainted out-of-service (non-graceful shutdown) has its terminating pods removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_gc_removes_the_pods_of_deleted_and_out_of_service_nodes() -> anyhow::Result<()> {
    let cx = start_up();
    let client = Client::connect(&cx.url()).await?;
    let kubelet = FakeKubelet::start(&client, &["gone", "shut", "alive"]).await?;
    client.create(&pod("on-gone", "gone", vec![])).await?;
    client.create(&pod("on-shut", "shut", vec![])).await?;
    kubelet.stop("gone");
    kubelet.stop("shut");
    wait_for("both pods evicted and left Unknown", T, || async {
        for name in ["on-gone", "on-shut"] {
            let p = client.get::<Pod>("default", name).await.ok()??;
            if !deleting(&p) {
                return None;
            }
        }
        Some(())
    })
    .await?;

    let out = cx.coxctl(&["delete", "node", "gone"]).success();
    assert_eq!(out.stdout, "node \"gone\" deleted\n");
    wait_for("on-gone garbage collected", T, || async {
        client
            .get::<Pod>("default", "on-gone")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;

    // Still there: the node is only down.
    assert!(client.get::<Pod>("default", "on-shut").await?.is_some());
    cx.coxctl(&[
        "taint",
        "node",
        "shut",
        "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute",
    ])
    .success();
    wait_for("on-shut garbage collected", T, || async {
        client
            .get::<Pod>("default", "on-shut")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    Ok(())
}

/// S38's NoExecute part with the real scheduler and agents: the plain pod is evicted from
/// node1 promptly (terminated and deleted), the tolerating one keeps running, a recreated plain
/// pod is not placed on node1; removing the taint leaves `Taints: <none>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s38_no_execute_with_the_real_scheduler_and_agents() -> anyhow::Result<()> {
    let cx = Coxswain::start_with(
        &["up"],
        &["--in-memory", "--nodes", "2", "--runtime", "sim"],
    )?;
    let client = Client::connect(&cx.url()).await?;
    let dir = coxswain_test_support::scenarios_dir();
    let f = |name: &str| dir.join(name).to_string_lossy().into_owned();
    cx.coxctl(&["apply", "-f", &f("00-namespace-mayikt-sit.yaml")])
        .success();
    cx.coxctl(&["create", "-f", &f("37-pod-taint-toleration.yaml")])
        .success();
    let both_running = || async {
        let (pods, _) = client
            .list::<Pod>("mayikt-sit", &ListParams::default())
            .await
            .ok()?;
        (pods.len() == 2 && pods.iter().all(|p| pod_node(p) == "node1" && running(p))).then_some(())
    };
    wait_for("both pods Running on node1", T, both_running).await?;

    let out = cx
        .coxctl(&["taint", "nodes", "node1", "tag=mayikt:NoExecute"])
        .success();
    assert_eq!(out.stdout, "node/node1 tainted\n");
    let started = std::time::Instant::now();
    wait_for("mayikt-pod-plain evicted and deleted", T, || async {
        client
            .get::<Pod>("mayikt-sit", "mayikt-pod-plain")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    let took = started.elapsed();
    let tol = client
        .get::<Pod>("mayikt-sit", "mayikt-pod-tolerate")
        .await?
        .expect("tolerating pod");
    assert!(running(&tol) && !deleting(&tol));
    let out = cx
        .coxctl(&["describe", "pod", "mayikt-pod-tolerate", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(!out.contains("TaintManagerEviction"), "{out}");

    // Recreated: the tolerating pod goes to node1 again, the plain one is not placed there.
    cx.coxctl(&["delete", "pod", "mayikt-pod-tolerate", "-n", "mayikt-sit"])
        .success();
    wait_for("both pods gone", T, || async {
        let (pods, _) = client
            .list::<Pod>("mayikt-sit", &ListParams::default())
            .await
            .ok()?;
        pods.is_empty().then_some(())
    })
    .await?;
    cx.coxctl(&["create", "-f", &f("37-pod-taint-toleration.yaml")])
        .success();
    wait_for("tolerating pod Running on node1", T, || async {
        let p = client
            .get::<Pod>("mayikt-sit", "mayikt-pod-tolerate")
            .await
            .ok()??;
        (pod_node(&p) == "node1" && running(&p)).then_some(())
    })
    .await?;
    let out = wait_for("plain pod FailedScheduling on the taint", T, || async {
        let out = cx
            .coxctl(&["describe", "pod", "mayikt-pod-plain", "-n", "mayikt-sit"])
            .stdout;
        out.contains("FailedScheduling").then_some(out)
    })
    .await?;
    assert!(out.contains("untolerated taint"), "{out}");
    let plain = client
        .get::<Pod>("mayikt-sit", "mayikt-pod-plain")
        .await?
        .expect("plain");
    assert_eq!(pod_node(&plain), "");

    let out = cx
        .coxctl(&["taint", "nodes", "node1", "tag=mayikt:NoExecute-"])
        .success();
    assert_eq!(out.stdout, "node/node1 untainted\n");
    let out = cx.coxctl(&["describe", "node", "node1"]).success().stdout;
    assert!(
        out.lines()
            .any(|l| l.starts_with("Taints:") && l.trim_end().ends_with("<none>")),
        "{out}"
    );
    eprintln!("S38: NoExecute taint to plain pod gone: {took:?}");
    Ok(())
}

/// `coxswain node-lifecycle --server URL` as its own process does the same job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_process_marks_a_silent_node_unknown() -> anyhow::Result<()> {
    let cx = Coxswain::start_with(
        &["up"],
        &["--in-memory", "--nodes", "0", "--no-node-lifecycle"],
    )?;
    let client = Client::connect(&cx.url()).await?;
    let kubelet = FakeKubelet::start(&client, &["solo-a", "solo-b"]).await?;
    let _lifecycle = LifecycleProcess::start(
        &cx.url(),
        &[
            "--node-monitor-period",
            "200ms",
            "--node-monitor-grace-period",
            "2s",
        ],
    )
    .await?;
    kubelet.stop("solo-a");
    wait_for(
        "solo-a Unknown and tainted by the standalone process",
        T,
        || async {
            let n = client.get::<Node>("", "solo-a").await.ok()??;
            (ready_of(&n).0 == "Unknown" && has_unreachable_no_execute(&n)).then_some(())
        },
    )
    .await?;
    let b = client.get::<Node>("", "solo-b").await?.expect("solo-b");
    assert_eq!(ready_of(&b).0, "True");
    Ok(())
}
