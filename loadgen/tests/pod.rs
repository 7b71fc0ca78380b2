//! The `coxswain/loadgen` catalog image: a Pod running loadgen (the binary beside coxswain) with
//! its args sends load from inside a `coxswain up` cluster and completes.
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use coxswain_api::v1::ApplyRequest;
use coxswain_client::{v1, Client};
use coxswain_test_support::{wait_for, Coxswain};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loadgen_pod_sends_load_and_succeeds() {
    let s = server().await;
    let cx = Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            "--nodes",
            "1",
            "--node-status-update-frequency",
            "500ms",
        ],
    )
    .expect("coxswain up");
    let c = Client::connect(&cx.url()).await.unwrap();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lg\n  namespace: default\nspec:\n  nodeName: node1\n  restartPolicy: Never\n  containers:\n  - name: loadgen\n    image: coxswain/loadgen:latest\n    args: [\"{}\", \"-n\", \"25\", \"-c\", \"5\", \"--threshold\", \"errors==0\", \"--quiet\"]\n",
        s.url("/delay/1")
    );
    c.raw()
        .apply(ApplyRequest {
            manifest: pod,
            ..Default::default()
        })
        .await
        .unwrap();
    let phase = wait_for(
        "the loadgen pod to finish",
        Duration::from_secs(60),
        || async {
            let p: v1::Pod = c.get("default", "lg").await.ok()??;
            let ph = p.status?.phase;
            (ph == "Succeeded" || ph == "Failed").then_some(ph)
        },
    )
    .await
    .unwrap();
    assert_eq!(phase, "Succeeded", "{}", cx.log());
    assert_eq!(s.hits.load(Ordering::SeqCst), 25);
}
