//! DaemonSets on simulated nodes (S07/S08/S09).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1::{DaemonSet, Pod};
use coxswain_api::Resource;
use coxswain_client::{Client, DeleteParams};
use coxswain_test_support::{scenarios_dir, wait_for};

use crate::common::*;

/// S07/S08/S09: one pod per eligible node, never two on a node; relabelling adds and removes
/// the pod; a cordoned node keeps (and gets back) its pod; a rolling update replaces every pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_one_pod_per_eligible_node() {
    let cx = up(&["--control-plane-node", "k8s-master"]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let d = scenarios_dir();
    let d = d.to_str().unwrap();
    let twice = Arc::new(AtomicBool::new(false));
    // Continuous invariant: never two live pods of one DaemonSet on one node.
    let watcher = {
        let c = c.clone();
        let twice = twice.clone();
        tokio::spawn(async move {
            loop {
                for sel in ["app=prometheus", "app=ssd-monitor"] {
                    let mut per: BTreeMap<String, usize> = BTreeMap::new();
                    for p in pods(&c, "default", sel).await {
                        let n = node_of(&p);
                        if !n.is_empty()
                            && !deleting(&p)
                            && !matches!(phase(&p), "Failed" | "Succeeded")
                        {
                            *per.entry(n).or_default() += 1;
                        }
                    }
                    if per.values().any(|v| *v > 1) {
                        twice.store(true, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    cx.coxctl(&[
        "apply",
        "-f",
        &format!("{d}/02-daemonset-node-exporter.yaml"),
    ])
    .success();
    let running = wait_for("3 running exporter pods", T, || async {
        let ps: Vec<Pod> = pods(&c, "default", "app=prometheus").await;
        (ps.len() == 3 && ps.iter().all(|p| phase(p) == "Running")).then_some(ps)
    })
    .await
    .unwrap();
    let nodes: BTreeSet<String> = running.iter().map(node_of).collect();
    assert_eq!(
        nodes,
        ["node1", "node2", "node3"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "one per worker, none on the tainted control plane"
    );
    for p in &running {
        let m = p.metadata();
        assert_eq!(
            m.name.len(),
            "node-exporter-daemonset-".len() + 5,
            "{}",
            m.name
        );
        assert!(p
            .spec
            .as_ref()
            .unwrap()
            .tolerations
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unschedulable"));
    }
    wait_for("ds status 3/3", T, || async {
        let ds = c
            .get::<DaemonSet>("default", "node-exporter-daemonset")
            .await
            .ok()??;
        let st = ds.status?;
        (st.desired_number_scheduled == 3
            && st.current_number_scheduled == 3
            && st.number_ready == 3
            && st.updated_number_scheduled == 3
            && st.number_available == 3)
            .then_some(())
    })
    .await
    .unwrap();

    // ssd-monitor: nothing until a node is labelled disk=ssd.
    cx.coxctl(&[
        "create",
        "-f",
        &format!("{d}/56-daemonset-ssd-monitor.yaml"),
    ])
    .success();
    wait_for("ssd-monitor observed", T, || async {
        let ds = c.get::<DaemonSet>("default", "ssd-monitor").await.ok()??;
        (ds.status?.observed_generation >= 1).then_some(())
    })
    .await
    .unwrap();
    let out = cx.coxctl(&["get", "ds", "ssd-monitor"]).success().stdout;
    assert!(out.contains("disk=ssd"), "{out}");
    assert!(pods(&c, "default", "app=ssd-monitor").await.is_empty());
    cx.coxctl(&["label", "node", "node1", "disk=ssd"]).success();
    wait_for("ssd-monitor on node1", T, || async {
        let ps = pods(&c, "default", "app=ssd-monitor").await;
        (ps.len() == 1 && node_of(&ps[0]) == "node1" && phase(&ps[0]) == "Running").then_some(())
    })
    .await
    .unwrap();
    cx.coxctl(&["label", "node", "node1", "disk=hdd", "--overwrite"])
        .success();
    wait_pods_gone(&c, "default", "app=ssd-monitor", "ssd-monitor gone").await;

    // Cordon node2, delete its exporter pod: it comes back on node2.
    cx.coxctl(&["cordon", "node2"]).success();
    let victim = running.iter().find(|p| node_of(p) == "node2").unwrap();
    c.delete::<Pod>("default", &victim.metadata().name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for("replacement on cordoned node2", T, || async {
        let ps = pods(&c, "default", "app=prometheus").await;
        ps.iter()
            .any(|p| {
                node_of(p) == "node2"
                    && p.metadata().name != victim.metadata().name
                    && phase(p) == "Running"
            })
            .then_some(())
    })
    .await
    .unwrap();

    // Rolling update to a new image: every pod replaced, one at a time (maxUnavailable 1).
    cx.coxctl(&[
        "set",
        "image",
        "ds",
        "node-exporter-daemonset",
        "node-exporter=prom/node-exporter:v2",
    ])
    .success();
    cx.coxctl(&["rollout", "status", "ds", "node-exporter-daemonset"])
        .success();
    let ps: Vec<Pod> = pods(&c, "default", "app=prometheus")
        .await
        .into_iter()
        .filter(|p| !deleting(p))
        .collect();
    assert_eq!(ps.len(), 3);
    assert!(ps
        .iter()
        .all(|p| p.spec.as_ref().unwrap().containers[0].image == "prom/node-exporter:v2"));
    let hist = cx
        .coxctl(&["rollout", "history", "ds", "node-exporter-daemonset"])
        .success()
        .stdout;
    assert!(hist.lines().any(|l| l.starts_with("2 ")), "{hist}");

    // Deleting the DaemonSet deletes its pods.
    cx.coxctl(&["delete", "ds", "node-exporter-daemonset"])
        .success();
    wait_pods_gone(&c, "default", "app=prometheus", "exporter pods gone").await;
    watcher.abort();
    assert!(
        !twice.load(Ordering::SeqCst),
        "two pods of a DaemonSet on one node"
    );
}
