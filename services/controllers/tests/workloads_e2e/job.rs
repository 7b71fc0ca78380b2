//! Jobs: parallelism and completions, the backoff limit, suspend and resume, Indexed.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use coxswain_api::v1::Job;
use coxswain_api::Resource;
use coxswain_client::Client;
use coxswain_test_support::{scenarios_dir, wait_for};

use crate::common::{deleting, events, fake_kubelet, names, phase, pods, up, Fate, T};

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
