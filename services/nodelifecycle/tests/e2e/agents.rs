//! With real agents and the real scheduler: a killed agent process fails over (S04), and
//! NoExecute taints evict what does not tolerate them (S38).
use std::collections::HashMap;

use coxswain_api::v1::{Node, Pod, Toleration};
use coxswain_client::{Client, ListParams};
use coxswain_test_support::{sim_agent, wait_for, Coxswain};

use crate::common::*;

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
