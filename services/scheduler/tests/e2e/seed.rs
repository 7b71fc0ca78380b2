//! The seed placement scenarios S32–S38 with their manifests: FailedScheduling events and
//! conditions, Explain through `coxctl` and the real grpcurl, ListProfiles.
use coxswain_api::v1::{Node, Pod, Taint};
use coxswain_client::Client;
use coxswain_test_support::{scenarios_dir, wait_for};

use crate::common::*;

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
    let (ok, out, err) = c.grpcurl_admin(&["-d", &body, &c.grpc, "coxswain.v1.Scheduler/Explain"]);
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
    let (ok, out, err) = c.grpcurl_admin(&[&c.grpc, "coxswain.v1.Scheduler/ListProfiles"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"schedulerName\": \"default-scheduler\""),
        "{out}"
    );

    // The scheduler's watches do not hold a graceful shutdown open.
    let mut c = c;
    assert!(c.terminate().expect("SIGTERM"), "exited cleanly");
}
