//! Node health: a silent node goes Unknown and its pods are evicted, the disruption rules and
//! rate limits, the standalone `coxswain node-lifecycle` process, and pod GC of gone nodes.
use std::time::Duration;

use coxswain_api::v1::{Node, Pod, Toleration};
use coxswain_client::{Client, Resource};
use coxswain_test_support::{bin, wait_for, Coxswain};

use crate::common::*;

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
