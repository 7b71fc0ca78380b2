//! Deployments: rolling update bounds, history, undo and pause; Recreate; the progress deadline.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use coxswain_api::v1::{Deployment, Pod, ReplicaSet};
use coxswain_api::Resource;
use coxswain_client::Client;
use coxswain_test_support::{scenarios_dir, wait_for};

use crate::common::{
    deleting, events, fake_kubelet, image_of, names, pods, ready, rss, up, Fate, NS, T,
};

/// S42/S44/S45/S46: RollingUpdate with maxSurge 1 / maxUnavailable 0 never exceeds 4 pods nor
/// drops below 3 available; history, undo --to-revision, pause/resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolling_update_respects_bounds_history_undo_pause() {
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let dir = scenarios_dir();
    let d = dir.to_str().unwrap();
    cx.coxctl(&["apply", "-f", &format!("{d}/00-namespace-mayikt-sit.yaml")])
        .success();
    let _k = fake_kubelet(c.clone(), NS, Fate::RunReady);
    cx.coxctl(&[
        "create",
        "-f",
        &format!("{d}/42-deployment-mayikt-rollingupdate.yaml"),
        "--record",
    ])
    .success();
    let out = cx
        .coxctl(&["rollout", "status", "deploy", "mayikt-deployment", "-n", NS])
        .success()
        .stdout;
    assert!(
        out.trim_end()
            .ends_with("deployment \"mayikt-deployment\" successfully rolled out"),
        "{out}"
    );
    let rs1 = rss(&c, NS).await;
    assert_eq!(rs1.len(), 1);
    let rs1_name = rs1[0].metadata().name.clone();
    let hash = rs1[0]
        .metadata()
        .labels
        .get("pod-template-hash")
        .cloned()
        .unwrap();
    assert_eq!(rs1_name, format!("mayikt-deployment-{hash}"));
    let out = cx.coxctl(&["get", "deploy", "-n", NS]).success().stdout;
    assert!(out.contains("3/3"), "{out}");

    // The rollout, watched: never more than 4 pods, never fewer than 3 ready.
    cx.coxctl(&[
        "set",
        "image",
        "deploy",
        "mayikt-deployment",
        "nginx=nginx:1.17.8",
        "-n",
        NS,
    ])
    .success();
    let max_pods = Arc::new(AtomicUsize::new(0));
    let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
    wait_for("rollout to 1.17.8", T, || {
        let c = c.clone();
        let (mp, mr) = (max_pods.clone(), min_ready.clone());
        async move {
            let ps: Vec<Pod> = pods(&c, NS)
                .await
                .into_iter()
                .filter(|p| !deleting(p))
                .collect();
            mp.fetch_max(ps.len(), Ordering::SeqCst);
            mr.fetch_min(ps.iter().filter(|p| ready(p)).count(), Ordering::SeqCst);
            (ps.len() == 3 && ps.iter().all(|p| image_of(p) == "nginx:1.17.8" && ready(p)))
                .then_some(())
        }
    })
    .await
    .unwrap();
    let (max_pods, min_ready) = (
        max_pods.load(Ordering::SeqCst),
        min_ready.load(Ordering::SeqCst),
    );
    assert!(max_pods <= 4, "maxSurge 1 exceeded: {max_pods} pods");
    assert!(
        min_ready >= 3,
        "maxUnavailable 0 violated: {min_ready} ready"
    );
    cx.coxctl(&["rollout", "status", "deploy/mayikt-deployment", "-n", NS])
        .success();
    let all = rss(&c, NS).await;
    assert_eq!(all.len(), 2, "a second ReplicaSet");
    let old = all.iter().find(|r| r.metadata().name == rs1_name).unwrap();
    assert_eq!(
        old.spec.as_ref().unwrap().replicas,
        Some(0),
        "old kept at 0"
    );
    let evs = events(&c, NS).await;
    assert!(
        evs.iter().any(|e| e.reason == "ScalingReplicaSet"
            && e.message.starts_with("Scaled down replica set ")
            && e.message.contains(&rs1_name)),
        "{:?}",
        evs.iter().map(|e| &e.message).collect::<Vec<_>>()
    );

    let hist = cx
        .coxctl(&[
            "rollout",
            "history",
            "deploy",
            "mayikt-deployment",
            "-n",
            NS,
        ])
        .success()
        .stdout;
    assert!(
        hist.contains("REVISION") && hist.contains("CHANGE-CAUSE"),
        "{hist}"
    );
    assert!(
        hist.lines()
            .any(|l| l.starts_with("1 ") && l.contains("--record")),
        "{hist}"
    );
    assert!(hist.lines().any(|l| l.starts_with("2 ")), "{hist}");

    // undo to a missing revision fails and changes nothing.
    cx.coxctl(&[
        "rollout",
        "undo",
        "deploy",
        "mayikt-deployment",
        "--to-revision=9",
        "-n",
        NS,
    ])
    .failure();
    // undo --to-revision=1: the original RS back at 3, no third RS; history 2, 3.
    cx.coxctl(&[
        "rollout",
        "undo",
        "deployment",
        "mayikt-deployment",
        "--to-revision=1",
        "-n",
        NS,
    ])
    .success();
    wait_for("back on 1.17.9", T, || async {
        let ps: Vec<Pod> = pods(&c, NS)
            .await
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        let r = c.get::<ReplicaSet>(NS, &rs1_name).await.ok()??;
        (ps.len() == 3
            && ps.iter().all(|p| image_of(p) == "nginx:1.17.9" && ready(p))
            && r.spec.as_ref()?.replicas == Some(3))
        .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(rss(&c, NS).await.len(), 2, "no third ReplicaSet");
    let hist = cx
        .coxctl(&[
            "rollout",
            "history",
            "deploy",
            "mayikt-deployment",
            "-n",
            NS,
        ])
        .success()
        .stdout;
    let revs: Vec<&str> = hist
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<i64>().is_ok())
        .collect();
    assert_eq!(revs, vec!["2", "3"], "{hist}");

    // Pause: a template change makes no new ReplicaSet until resume.
    let paused = cx
        .coxctl(&["rollout", "pause", "deploy", "mayikt-deployment", "-n", NS])
        .success();
    assert!(
        paused
            .stdout
            .contains("deployment.apps/mayikt-deployment paused"),
        "{}",
        paused.stdout
    );
    let again = cx
        .coxctl(&["rollout", "pause", "deploy", "mayikt-deployment", "-n", NS])
        .failure();
    assert!(
        again.stderr.contains("is already paused"),
        "{}",
        again.stderr
    );
    cx.coxctl(&[
        "set",
        "image",
        "deploy",
        "mayikt-deployment",
        "nginx=nginx:1.17.7",
        "-n",
        NS,
    ])
    .success();
    wait_for("paused condition", T, || async {
        let d = c.get::<Deployment>(NS, "mayikt-deployment").await.ok()??;
        let st = d.status?;
        (st.observed_generation == d.metadata?.generation
            && st.conditions.iter().any(|c| c.reason == "DeploymentPaused"))
        .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(rss(&c, NS).await.len(), 2, "paused: no new ReplicaSet");
    let resumed = cx
        .coxctl(&["rollout", "resume", "deploy", "mayikt-deployment", "-n", NS])
        .success();
    assert!(
        resumed
            .stdout
            .contains("deployment.apps/mayikt-deployment resumed"),
        "{}",
        resumed.stdout
    );
    let again = cx
        .coxctl(&["rollout", "resume", "deploy", "mayikt-deployment", "-n", NS])
        .failure();
    assert!(again.stderr.contains("is not paused"), "{}", again.stderr);
    cx.coxctl(&["rollout", "status", "deploy", "mayikt-deployment", "-n", NS])
        .success();
    wait_for("rolled to 1.17.7", T, || async {
        let ps: Vec<Pod> = pods(&c, NS)
            .await
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        (ps.len() == 3 && ps.iter().all(|p| image_of(p) == "nginx:1.17.7")).then_some(())
    })
    .await
    .unwrap();
    // Scaling is proportional and creates no ReplicaSet.
    cx.coxctl(&[
        "scale",
        "deploy",
        "mayikt-deployment",
        "--replicas=6",
        "-n",
        NS,
    ])
    .success();
    wait_for("6 pods", T, || async {
        let ps: Vec<Pod> = pods(&c, NS)
            .await
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        (ps.len() == 6).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(rss(&c, NS).await.len(), 3);
    let desc = cx
        .coxctl(&["describe", "deploy", "mayikt-deployment", "-n", NS])
        .success()
        .stdout;
    assert!(desc.contains("ScalingReplicaSet"), "{desc}");
}

/// S43: Recreate: every old pod is gone before any new pod exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_recreate_removes_old_pods_first() {
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let dir = scenarios_dir();
    let d = dir.to_str().unwrap();
    cx.coxctl(&["apply", "-f", &format!("{d}/00-namespace-mayikt-sit.yaml")])
        .success();
    let _k = fake_kubelet(c.clone(), NS, Fate::RunReady);
    cx.coxctl(&[
        "apply",
        "-f",
        &format!("{d}/41-deployment-mayikt-recreate.yaml"),
    ])
    .success();
    cx.coxctl(&["rollout", "status", "deploy", "mayikt-deployment", "-n", NS])
        .success();
    cx.coxctl(&[
        "set",
        "image",
        "deploy/mayikt-deployment",
        "nginx=nginx:1.17.8",
        "-n",
        NS,
    ])
    .success();
    let overlap = Arc::new(AtomicBool::new(false));
    wait_for("recreated on 1.17.8", T, || {
        let c = c.clone();
        let o = overlap.clone();
        async move {
            let ps = pods(&c, NS).await;
            let old = ps.iter().any(|p| image_of(p) == "nginx:1.17.9");
            let new = ps.iter().any(|p| image_of(p) == "nginx:1.17.8");
            o.fetch_or(old && new, Ordering::SeqCst);
            (!old && ps.len() == 3 && ps.iter().all(ready)).then_some(())
        }
    })
    .await
    .unwrap();
    assert!(
        !overlap.load(Ordering::SeqCst),
        "old and new pods coexisted under Recreate"
    );
    assert_eq!(rss(&c, NS).await.len(), 2);

    // rollout restart: a new ReplicaSet (restartedAt in the template) replaces every pod.
    let before = names(&pods(&c, NS).await);
    let out = cx
        .coxctl(&[
            "rollout",
            "restart",
            "deploy",
            "mayikt-deployment",
            "-n",
            NS,
        ])
        .success()
        .stdout;
    assert_eq!(out.trim(), "deployment.apps/mayikt-deployment restarted");
    wait_for("restarted pods", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 3 && ps.iter().all(ready) && names(&ps).is_disjoint(&before)).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(rss(&c, NS).await.len(), 3);
}

/// progressDeadlineSeconds: pods that never become ready make the rollout fail with
/// Progressing=False/ProgressDeadlineExceeded, and `rollout status` exits non-zero saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_progress_deadline_exceeded() {
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let m = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\nspec:\n  replicas: 2\n  progressDeadlineSeconds: 1\n  selector:\n    matchLabels:\n      app: stuck\n  template:\n    metadata:\n      labels:\n        app: stuck\n    spec:\n      containers:\n      - name: c\n        image: nginx\n";
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(m)).success();
    wait_for("ProgressDeadlineExceeded", T, || async {
        let d = c.get::<Deployment>("default", "stuck").await.ok()??;
        d.status?
            .conditions
            .iter()
            .any(|c| {
                c.r#type == "Progressing"
                    && c.status == "False"
                    && c.reason == "ProgressDeadlineExceeded"
            })
            .then_some(())
    })
    .await
    .unwrap();
    let out = cx
        .coxctl(&["rollout", "status", "deploy", "stuck"])
        .failure();
    assert!(
        out.stderr
            .contains("deployment \"stuck\" exceeded its progress deadline"),
        "{}",
        out.stderr
    );
}
