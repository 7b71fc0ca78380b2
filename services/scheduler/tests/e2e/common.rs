//! Helpers every test of this binary shares: `up` with fast timers and no agents, the Node
//! objects the tests create, scenario manifests, and waits for bindings and events.
use std::process::Command;
use std::time::Duration;

use coxswain_api::v1::{Condition, Event, Node, NodeSpec, NodeStatus, ObjectMeta, Pod, Taint};
use coxswain_client::{Client, ListParams};
use coxswain_test_support::{bin, scenarios_dir, wait_for, Coxswain};

pub const T: Duration = Duration::from_secs(20);
pub const CP: &str = "node-role.kubernetes.io/control-plane";
pub const HOST: &str = "kubernetes.io/hostname";

/// Flags for `up` so tests run in seconds and only the nodes the test creates exist.
pub fn up_flags(extra: &[&str]) -> Vec<String> {
    let help = Command::new(bin("coxswain"))
        .args(["up", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut f: Vec<String> = vec![
        "--pod-initial-backoff".into(),
        "100ms".into(),
        "--pod-max-backoff".into(),
        "500ms".into(),
    ];
    // Other components of `up` that would add nodes or taint silent ones.
    if help.contains("--nodes ") {
        f.extend(["--nodes".into(), "0".into()]);
    }
    if help.contains("--node-monitor-grace-period") {
        f.extend(["--node-monitor-grace-period".into(), "10m".into()]);
    }
    f.extend(extra.iter().map(|s| s.to_string()));
    f
}

pub fn start_up(extra: &[&str]) -> Coxswain {
    let flags = up_flags(extra);
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    Coxswain::start_with(&["up"], &refs).expect("start coxswain up")
}

pub fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
    let mut l: std::collections::BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert(HOST.into(), name.into());
    let res = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    Node {
        metadata: Some(ObjectMeta {
            name: name.into(),
            labels: l,
            ..Default::default()
        }),
        spec: Some(NodeSpec {
            taints,
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: res(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]),
            allocatable: res(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]),
            conditions: vec![Condition {
                r#type: "Ready".into(),
                status: "True".into(),
                reason: "KubeletReady".into(),
                last_heartbeat_time: coxswain_api::time::now_rfc3339(),
                last_transition_time: coxswain_api::time::now_rfc3339(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn cp_taint() -> Taint {
    Taint {
        key: CP.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    }
}

/// The seed cluster: a tainted control plane, node1 (nodev=v1, nodenum=1), node2 (nodev=v2,
/// nodenum=2), node3 (no nodev).
pub async fn seed_nodes(client: &Client) {
    for n in [
        node("control-plane", &[(CP, "")], vec![cp_taint()]),
        node("node1", &[("nodev", "v1"), ("nodenum", "1")], vec![]),
        node("node2", &[("nodev", "v2"), ("nodenum", "2")], vec![]),
        node("node3", &[], vec![]),
    ] {
        client.create(&n).await.expect("create node");
    }
}

/// A scenario manifest with its namespace replaced (each step gets a fresh namespace, so no
/// pod needs deleting: bound pods wait for an agent to finish a graceful deletion).
pub fn scenario(file: &str, ns: &str) -> String {
    std::fs::read_to_string(scenarios_dir().join(file))
        .expect("scenario manifest")
        .replace("namespace: mayikt-sit", &format!("namespace: {ns}"))
}

pub fn create(c: &Coxswain, ns: &str, text: &str) {
    c.coxctl(&["create", "namespace", ns]).success();
    c.coxctl_in(&["create", "-f", "-"], None, Some(text))
        .success();
}

pub async fn pod(client: &Client, ns: &str, name: &str) -> Pod {
    client
        .get::<Pod>(ns, name)
        .await
        .expect("get pod")
        .expect("pod exists")
}

pub fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()
}

pub async fn wait_bound(client: &Client, ns: &str, name: &str) -> String {
    wait_for(&format!("{ns}/{name} bound"), T, || async {
        let p = client.get::<Pod>(ns, name).await.ok().flatten()?;
        Some(node_of(&p)).filter(|n| !n.is_empty())
    })
    .await
    .expect("pod bound")
}

pub async fn events(client: &Client, ns: &str, pod: &str) -> Vec<Event> {
    let (evs, _) = client
        .list::<Event>(ns, &ListParams::default())
        .await
        .expect("list events");
    evs.into_iter()
        .filter(|e| e.involved_object.as_ref().is_some_and(|o| o.name == pod))
        .collect()
}

pub async fn wait_event(client: &Client, ns: &str, pod: &str, reason: &str) -> Event {
    wait_for(&format!("{reason} event for {ns}/{pod}"), T, || async {
        events(client, ns, pod)
            .await
            .into_iter()
            .find(|e| e.reason == reason)
    })
    .await
    .expect("event")
}

pub fn scheduled_condition(p: &Pod) -> Option<Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == "PodScheduled")
        .cloned()
}

pub fn bare_pod(ns: &str, name: &str, scheduler: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  schedulerName: {scheduler}\n  containers:\n  - name: c\n    image: nginx\n"
    )
}
