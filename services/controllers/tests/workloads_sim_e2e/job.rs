//! Jobs on simulated nodes: OnFailure, activeDeadlineSeconds and ttlSecondsAfterFinished
//! (S13/S17).
use coxswain_api::v1::Job;
use coxswain_client::Client;
use coxswain_test_support::wait_for;

use crate::common::*;

fn job_condition(j: &Job, t: &str) -> Option<String> {
    j.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == t && c.status == "True")
        .map(|c| c.reason.clone())
}

/// S13/S17: OnFailure restarts in place and the restarts count toward backoffLimit (one pod
/// only); activeDeadlineSeconds fails the Job with DeadlineExceeded and kills its pods;
/// ttlSecondsAfterFinished 0 deletes a finished Job and its pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_onfailure_deadline_and_ttl() {
    let cx = up(&["--backoff-initial", "100ms", "--backoff-max", "200ms"]);
    let c = Client::connect(&cx.url()).await.unwrap();
    let job = |name: &str, spec: &str, ann: &str, policy: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{spec}  template:\n    metadata:\n      labels:\n        app: {name}\n      annotations:\n{ann}    spec:\n      restartPolicy: {policy}\n      containers:\n      - name: c\n        image: busybox\n"
        )
    };
    let onfailure = job(
        "onfailure",
        "  backoffLimit: 2\n",
        "        sim.coxswain.io/run-duration: 50ms\n        sim.coxswain.io/exit-code: \"1\"\n",
        "OnFailure",
    );
    let deadline = job(
        "deadline",
        "  activeDeadlineSeconds: 2\n  parallelism: 2\n  completions: 4\n",
        "        sim.coxswain.io/ready-after: 0s\n",
        "Never",
    );
    let ttl = job(
        "ttl",
        "  ttlSecondsAfterFinished: 0\n  completions: 2\n",
        "        sim.coxswain.io/run-duration: 50ms\n",
        "Never",
    );
    for m in [&onfailure, &deadline, &ttl] {
        cx.coxctl_in(&["apply", "-f", "-"], None, Some(m)).success();
    }
    // TTL 0: completes, then the Job and its pods disappear.
    wait_for("ttl job deleted with its pods", T, || async {
        let gone = c.get::<Job>("default", "ttl").await.ok()?.is_none();
        (gone && pods(&c, "default", "app=ttl").await.is_empty()).then_some(())
    })
    .await
    .unwrap();
    // OnFailure: one pod, restarted in place, then BackoffLimitExceeded.
    let j = wait_for("onfailure failed", T, || async {
        let j = c.get::<Job>("default", "onfailure").await.ok()??;
        (job_condition(&j, "Failed")? == "BackoffLimitExceeded").then_some(j)
    })
    .await
    .unwrap();
    assert_eq!(j.status.unwrap().succeeded, 0);
    let ps = pods(&c, "default", "app=onfailure").await;
    assert!(
        ps.len() <= 1,
        "OnFailure must not create new pods: {}",
        ps.len()
    );
    // activeDeadlineSeconds: Failed/DeadlineExceeded, no pod left running, none succeeded.
    let j = wait_for("deadline exceeded", T, || async {
        let j = c.get::<Job>("default", "deadline").await.ok()??;
        (job_condition(&j, "Failed")? == "DeadlineExceeded").then_some(j)
    })
    .await
    .unwrap();
    let st = j.status.unwrap();
    assert_eq!((st.succeeded, st.active), (0, 0));
    wait_for("deadline pods stopped", T, || async {
        pods(&c, "default", "app=deadline")
            .await
            .iter()
            .all(|p| deleting(p) || matches!(phase(p), "Failed" | "Succeeded"))
            .then_some(())
    })
    .await
    .unwrap();
    let desc = cx.coxctl(&["describe", "job", "deadline"]).success().stdout;
    assert!(desc.contains("DeadlineExceeded"), "{desc}");
}
