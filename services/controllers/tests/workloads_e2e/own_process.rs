//! The controllers as their own process against a `coxswain store`.
use coxswain_client::Client;
use coxswain_test_support::{scenarios_dir, wait_for, Coxswain};

use crate::common::{pods, NS, T};

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
