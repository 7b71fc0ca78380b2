//! The node verbs of `coxctl`: taint NoExecute, cordon, uncordon and drain, as kubectl's.
use std::time::Duration;

use coxswain_api::v1::{DaemonSet, Node, OwnerReference, Pod, ReplicaSet, Toleration};
use coxswain_client::{Client, Resource};
use coxswain_test_support::wait_for;

use crate::common::*;

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
