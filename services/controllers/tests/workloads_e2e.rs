//! End-to-end tests of the workload controllers and the Workloads service on the real `coxswain
//! up` binary. Until node agents run pods, a "fake kubelet" in the test moves pods through their
//! phases with UpdateStatus (Running + Ready, or Succeeded/Failed), and invariants are checked
//! on every poll while the controllers work.
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1::{Condition, Deployment, Event as KEvent, Job, Pod, PodStatus, ReplicaSet};
use coxswain_api::Resource;
use coxswain_client::{Client, DeleteParams, ListParams};
use coxswain_test_support::{scenarios_dir, wait_for, Coxswain};

const NS: &str = "mayikt-sit";
const T: Duration = Duration::from_secs(30);

fn up() -> Coxswain {
    for b in ["coxswain", "coxctl"] {
        assert!(
            coxswain_test_support::bin(b).exists(),
            "{b} is not built: run `cargo build -p coxswain -p coxctl` first"
        );
    }
    Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            // No node agents and no scheduler: the test's fake kubelet owns pod status.
            "--nodes",
            "0",
            "--no-scheduler",
            "--job-backoff-base",
            "100ms",
            "--job-backoff-max",
            "400ms",
        ],
    )
    .expect("coxswain up")
}

fn now() -> String {
    coxswain_api::time::now_rfc3339()
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map_or("", |s| s.phase.as_str())
}

fn ready(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    })
}

fn deleting(p: &Pod) -> bool {
    !p.metadata().deletion_timestamp.is_empty()
}

/// What the fake kubelet does with a new pod.
#[derive(Clone, Copy)]
enum Fate {
    RunReady,
    Succeed,
    Fail,
}

/// Move every pod of `ns` without a phase to `fate` (repeatedly, until the test ends).
fn fake_kubelet(client: Client, ns: &'static str, fate: Fate) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok((pods, _)) = client.list::<Pod>(ns, &ListParams::default()).await {
                for mut p in pods {
                    if !phase(&p).is_empty() && phase(&p) != "Pending" || deleting(&p) {
                        continue;
                    }
                    let (ph, rd) = match fate {
                        Fate::RunReady => ("Running", "True"),
                        Fate::Succeed => ("Succeeded", "False"),
                        Fate::Fail => ("Failed", "False"),
                    };
                    p.status = Some(PodStatus {
                        phase: ph.into(),
                        conditions: vec![Condition {
                            r#type: "Ready".into(),
                            status: rd.into(),
                            last_transition_time: now(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    });
                    let _ = client.update_status(&p).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

async fn pods(c: &Client, ns: &str) -> Vec<Pod> {
    c.list::<Pod>(ns, &ListParams::default())
        .await
        .map(|x| x.0)
        .unwrap_or_default()
}

async fn rss(c: &Client, ns: &str) -> Vec<ReplicaSet> {
    c.list::<ReplicaSet>(ns, &ListParams::default())
        .await
        .map(|x| x.0)
        .unwrap_or_default()
}

async fn events(c: &Client, ns: &str) -> Vec<KEvent> {
    c.list::<KEvent>(ns, &ListParams::default())
        .await
        .map(|x| x.0)
        .unwrap_or_default()
}

fn names(ps: &[Pod]) -> BTreeSet<String> {
    ps.iter().map(|p| p.metadata().name.clone()).collect()
}

fn image_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.image.clone())
        .unwrap_or_default()
}

/// S39/S40: ReplicaSet create, scale, self-heal, orphan and re-adopt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_scales_self_heals_orphans_and_adopts() {
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let dir = scenarios_dir();
    let d = dir.to_str().unwrap();
    cx.coxctl(&["apply", "-f", &format!("{d}/00-namespace-mayikt-sit.yaml")])
        .success();
    cx.coxctl(&["create", "-f", &format!("{d}/38-replicaset-mayikt-rp.yaml")])
        .success();
    let _k = fake_kubelet(c.clone(), NS, Fate::RunReady);
    let first = wait_for("3 pods", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 3).then_some(ps)
    })
    .await
    .unwrap();
    for p in &first {
        let m = p.metadata();
        let suffix = m
            .name
            .strip_prefix("mayikt-rp-")
            .expect("name = owner + suffix");
        assert_eq!(suffix.len(), 5, "5 random characters: {}", m.name);
        let r = &m.owner_references[0];
        assert_eq!(
            (
                r.kind.as_str(),
                r.name.as_str(),
                r.controller,
                r.block_owner_deletion
            ),
            ("ReplicaSet", "mayikt-rp", Some(true), Some(true))
        );
        assert_eq!(m.labels.get("app").map(String::as_str), Some("nginx-pod"));
    }
    // Status catches up: replicas 3, ready 3, observedGeneration.
    wait_for("rs status 3/3", T, || async {
        let rs = c.get::<ReplicaSet>(NS, "mayikt-rp").await.ok()??;
        let st = rs.status.clone()?;
        (st.replicas == 3
            && st.ready_replicas == 3
            && st.available_replicas == 3
            && st.fully_labeled_replicas == 3
            && st.observed_generation == rs.metadata().generation)
            .then_some(())
    })
    .await
    .unwrap();
    let out = cx.coxctl(&["get", "rs", "-n", NS]).success().stdout;
    assert!(
        out.contains("DESIRED") && out.contains("mayikt-rp"),
        "{out}"
    );

    // Scale to 6 keeps the 3 and adds exactly 3.
    let out = cx
        .coxctl(&["scale", "rs", "mayikt-rp", "--replicas=6", "-n", NS])
        .success()
        .stdout;
    assert_eq!(out.trim(), "replicaset.apps/mayikt-rp scaled");
    let six = wait_for("6 pods", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 6).then_some(ps)
    })
    .await
    .unwrap();
    assert!(names(&first).is_subset(&names(&six)));
    // Scale to 2 removes 4.
    cx.coxctl(&["scale", "rs/mayikt-rp", "--replicas=2", "-n", NS])
        .success();
    let two = wait_for("2 pods", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 2).then_some(ps)
    })
    .await
    .unwrap();
    // Self-heal: a deleted pod is replaced under a new name.
    let victim = two[0].metadata().name.clone();
    c.delete::<Pod>(NS, &victim, &DeleteParams::now())
        .await
        .unwrap();
    let healed = wait_for("replacement", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 2 && !names(&ps).contains(&victim)).then_some(ps)
    })
    .await
    .unwrap();
    // Events: SuccessfulCreate / SuccessfulDelete on the ReplicaSet.
    let evs = events(&c, NS).await;
    assert!(evs.iter().any(
        |e| e.reason == "SuccessfulCreate" && e.message.starts_with("Created pod: mayikt-rp-")
    ));
    assert!(evs.iter().any(|e| e.reason == "SuccessfulDelete"));

    // Orphan: the pods stay without an owner; re-creating the RS adopts them, creating none.
    cx.coxctl(&["delete", "rs", "mayikt-rp", "-n", NS, "--cascade=orphan"])
        .success();
    wait_for("orphaned", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 2 && ps.iter().all(|p| p.metadata().owner_references.is_empty())).then_some(())
    })
    .await
    .unwrap();
    cx.coxctl(&["apply", "-f", &format!("{d}/38-replicaset-mayikt-rp.yaml")])
        .success();
    let adopted = wait_for("adopted + 1 new", T, || async {
        let ps = pods(&c, NS).await;
        (ps.len() == 3
            && ps.iter().all(|p| {
                p.metadata()
                    .owner_references
                    .first()
                    .is_some_and(|r| r.controller == Some(true))
            }))
        .then_some(ps)
    })
    .await
    .unwrap();
    assert!(
        names(&healed).is_subset(&names(&adopted)),
        "orphans adopted, not replaced"
    );
}

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

/// S15: completions 6 / parallelism 2 never has more than 2 active pods; completes 6/6.
/// S12: a failing Job (restartPolicy Never) stops at backoffLimit: Failed/BackoffLimitExceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_within_parallelism_and_fail_at_backoff_limit() {
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let dir = scenarios_dir();
    let d = dir.to_str().unwrap();
    let _k = fake_kubelet(c.clone(), "default", Fate::Succeed);
    cx.coxctl(&["apply", "-f", &format!("{d}/11-job-myjob-completions.yaml")])
        .success();
    let max_active = Arc::new(AtomicUsize::new(0));
    let job = wait_for("job complete", T, || {
        let c = c.clone();
        let m = max_active.clone();
        async move {
            let ps = pods(&c, "default").await;
            let active = ps
                .iter()
                .filter(|p| !matches!(phase(p), "Succeeded" | "Failed") && !deleting(p))
                .count();
            m.fetch_max(active, Ordering::SeqCst);
            let j = c.get::<Job>("default", "myjob").await.ok()??;
            j.status
                .as_ref()?
                .conditions
                .iter()
                .any(|c| c.r#type == "Complete" && c.status == "True")
                .then_some(j)
        }
    })
    .await
    .unwrap();
    let max_active = max_active.load(Ordering::SeqCst);
    assert!(max_active <= 2, "parallelism exceeded: {max_active}");
    let st = job.status.unwrap();
    assert_eq!((st.succeeded, st.active, st.failed), (6, 0, 0));
    assert!(!st.completion_time.is_empty() && !st.start_time.is_empty());
    assert_eq!(
        pods(&c, "default").await.len(),
        6,
        "no pod beyond completions"
    );
    let out = cx.coxctl(&["get", "job", "myjob"]).success().stdout;
    assert!(out.contains("6/6"), "{out}");
    assert!(events(&c, "default")
        .await
        .iter()
        .any(|e| e.reason == "Completed" && e.message == "Job completed"));

    // A failing Job in its own namespace, backoffLimit 2: 3 failed pods, then Failed.
    cx.coxctl(&["create", "ns", "fail"]).success();
    let _k2 = fake_kubelet(c.clone(), "fail", Fate::Fail);
    let manifest = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: bad\n  namespace: fail\nspec:\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n        command: [\"invalid_command\"]\n";
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(manifest))
        .success();
    let job = wait_for("job failed", T, || async {
        let j = c.get::<Job>("fail", "bad").await.ok()??;
        j.status
            .as_ref()?
            .conditions
            .iter()
            .any(|c| c.r#type == "Failed" && c.reason == "BackoffLimitExceeded")
            .then_some(j)
    })
    .await
    .unwrap();
    assert_eq!(job.status.unwrap().failed, 3);
    let ps = pods(&c, "fail").await;
    assert_eq!(ps.len(), 3, "no pod after the limit: {:?}", names(&ps));
    assert!(events(&c, "fail")
        .await
        .iter()
        .any(|e| e.reason == "BackoffLimitExceeded"));
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

/// suspend: a suspended Job has no pods and condition Suspended=True; resuming starts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_suspend_and_resume() {
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let m = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: later\nspec:\n  suspend: true\n  parallelism: 2\n  completions: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n";
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(m)).success();
    wait_for("Suspended condition", T, || async {
        let j = c.get::<Job>("default", "later").await.ok()??;
        j.status?
            .conditions
            .iter()
            .any(|c| c.r#type == "Suspended" && c.status == "True" && c.reason == "JobSuspended")
            .then_some(())
    })
    .await
    .unwrap();
    assert!(
        pods(&c, "default").await.is_empty(),
        "a suspended Job runs no pods"
    );
    c.patch::<Job>(
        "default",
        "later",
        &serde_json::json!({"spec": {"suspend": false}}),
    )
    .await
    .unwrap();
    wait_for("resumed with 2 pods", T, || async {
        let j = c.get::<Job>("default", "later").await.ok()??;
        let resumed =
            j.status?.conditions.iter().any(|c| {
                c.r#type == "Suspended" && c.status == "False" && c.reason == "JobResumed"
            });
        (resumed && pods(&c, "default").await.len() == 2).then_some(())
    })
    .await
    .unwrap();
}

/// `coxswain controllers --server URL` runs the controllers as their own process against a
/// `coxswain store`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_run_as_their_own_process() {
    let cx = Coxswain::start_with(&["store"], &["--in-memory"]).expect("coxswain store");
    let mut child = std::process::Command::new(coxswain_test_support::bin("coxswain"))
        .args(["controllers", "--server", &cx.url()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("coxswain controllers");
    let c = Client::connect(&cx.url()).await.unwrap();
    let dir = scenarios_dir();
    let d = dir.to_str().unwrap();
    cx.coxctl(&["apply", "-f", &format!("{d}/00-namespace-mayikt-sit.yaml")])
        .success();
    cx.coxctl(&["apply", "-f", &format!("{d}/38-replicaset-mayikt-rp.yaml")])
        .success();
    let res = wait_for(
        "3 pods from the separate controllers process",
        T,
        || async { (pods(&c, NS).await.len() == 3).then_some(()) },
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    res.unwrap();
}

/// Indexed Job: one pod per completion index (annotation and label
/// batch.kubernetes.io/job-completion-index, hostname `<job>-<index>`), completedIndexes
/// "0-2" at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_job_runs_each_index_once() {
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let _k = fake_kubelet(c.clone(), "default", Fate::Succeed);
    let m = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: idx\nspec:\n  completionMode: Indexed\n  completions: 3\n  parallelism: 3\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n";
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(m)).success();
    let j = wait_for("indexed job complete", T, || async {
        let j = c.get::<Job>("default", "idx").await.ok()??;
        j.status
            .as_ref()?
            .conditions
            .iter()
            .any(|c| c.r#type == "Complete" && c.status == "True")
            .then_some(j)
    })
    .await
    .unwrap();
    let st = j.status.unwrap();
    assert_eq!((st.succeeded, st.completed_indexes.as_str()), (3, "0-2"));
    let ps = pods(&c, "default").await;
    assert_eq!(ps.len(), 3);
    let mut idx: Vec<String> = ps
        .iter()
        .map(|p| {
            let m = p.metadata();
            let i = m.annotations["batch.kubernetes.io/job-completion-index"].clone();
            assert!(m.name.starts_with(&format!("idx-{i}-")), "{}", m.name);
            assert_eq!(p.spec.as_ref().unwrap().hostname, format!("idx-{i}"));
            i
        })
        .collect();
    idx.sort();
    assert_eq!(idx, vec!["0", "1", "2"]);
}

/// persistentVolumeClaimRetentionPolicy: whenScaled Delete removes a condemned pod's claim;
/// whenDeleted Delete removes the rest with the set. (The default, Retain, is in the sim test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_claim_retention_policy_delete() {
    use coxswain_api::v1::PersistentVolumeClaim;
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let _k = fake_kubelet(c.clone(), "default", Fate::RunReady);
    let m = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  podManagementPolicy: Parallel\n  serviceName: web\n  persistentVolumeClaimRetentionPolicy:\n    whenDeleted: Delete\n    whenScaled: Delete\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: c\n        image: nginx\n  volumeClaimTemplates:\n  - metadata:\n      name: www\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources:\n        requests:\n          storage: 1Gi\n";
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(m)).success();
    let claims = || async {
        let (v, _) = c
            .list::<PersistentVolumeClaim>("default", &ListParams::default())
            .await
            .ok()?;
        Some(
            v.into_iter()
                .map(|p| p.metadata().name.clone())
                .collect::<BTreeSet<_>>(),
        )
    };
    wait_for("2 claims, 2 pods", T, || async {
        let cl = claims().await?;
        (cl.len() == 2 && pods(&c, "default").await.len() == 2).then_some(())
    })
    .await
    .unwrap();
    cx.coxctl(&["scale", "sts", "web", "--replicas=1"])
        .success();
    wait_for("www-web-1 deleted with web-1", T, || async {
        let cl = claims().await?;
        (cl == BTreeSet::from(["www-web-0".to_string()]) && pods(&c, "default").await.len() == 1)
            .then_some(())
    })
    .await
    .unwrap();
    cx.coxctl(&["delete", "sts", "web"]).success();
    wait_for("claims deleted with the set", T, || async {
        claims().await?.is_empty().then_some(())
    })
    .await
    .unwrap();
}
