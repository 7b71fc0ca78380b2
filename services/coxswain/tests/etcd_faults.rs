//! Faults with a real etcd and real store processes on loopback (issue 18 §4): a store replica
//! killed with SIGKILL under 8 writing clients loses no acknowledged write, and the clients,
//! given both replicas in one `--server` list, carry on through the other; coxctl given the
//! same list is served by the live one.
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1::ConfigMap;
use coxswain_client::{Client, ListParams};
use coxswain_test_support::etcd::Etcd;
use coxswain_test_support::{configmap, wait_for, Coxswain};

const WRITERS: usize = 8;
const PER_WRITER: usize = 40;
/// Attempts per create (a create that fails while a replica dies is retried).
const ATTEMPTS: usize = 200;

/// One writer: creates `w<i>-<n>` in order, retrying each until it is acknowledged (or found
/// to exist: an attempt whose answer was lost landed). Returns what was acknowledged.
async fn writer(client: Client, i: usize, acked: Arc<AtomicUsize>) -> (Vec<String>, usize) {
    let mut mine = Vec::new();
    let mut failures = 0;
    for n in 0..PER_WRITER {
        let name = format!("w{i}-{n}");
        for _ in 0..ATTEMPTS {
            match client.create(&configmap(&name)).await {
                Ok(_) => {
                    mine.push(name.clone());
                    acked.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Err(e) if e.is_already_exists() => break,
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }
    (mine, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_store_replica_loses_no_acknowledged_write() {
    let etcd = Etcd::start().expect("start etcd");
    let mut a = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store a");
    let b = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store b");
    let client = Client::connect(&format!("{},{}", a.url(), b.url()))
        .await
        .expect("client over both replicas");
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        tasks.spawn(writer(client.clone(), i, acked.clone()));
    }
    // Kill -9 replica a once a quarter of the writes are acknowledged.
    let quarter = WRITERS * PER_WRITER / 4;
    wait_for(
        "a quarter of the writes acknowledged",
        Duration::from_secs(60),
        || {
            let n = acked.load(Ordering::SeqCst);
            async move { (n >= quarter).then_some(()) }
        },
    )
    .await
    .expect("writes before the kill");
    let a_url = a.url();
    a.kill9();
    let at_kill = acked.load(Ordering::SeqCst);

    let mut acknowledged = BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        let (mine, _failures) = r.expect("writer");
        acknowledged.extend(mine);
    }
    assert!(
        acknowledged.len() > at_kill,
        "writes carried on through replica b after the kill ({} acknowledged, {at_kill} at the kill)",
        acknowledged.len()
    );
    // Every acknowledged write is there, read back through the surviving replica.
    let survivor = Client::connect(&b.url()).await.expect("client of b");
    let listed: BTreeSet<String> = survivor
        .list::<ConfigMap>("default", &ListParams::default())
        .await
        .expect("list")
        .0
        .into_iter()
        .filter_map(|c| c.metadata.map(|m| m.name))
        .collect();
    let lost: Vec<_> = acknowledged.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    // And every writer finished its whole sequence.
    assert_eq!(
        listed.iter().filter(|n| n.starts_with('w')).count(),
        WRITERS * PER_WRITER
    );
    // coxctl takes the same list and is served by the replica that is up.
    let servers = format!("{a_url},{}", b.url());
    let out = b
        .coxctl(&[
            "--server",
            &servers,
            "get",
            "configmap",
            "w0-0",
            "-o",
            "name",
        ])
        .success();
    assert_eq!(out.stdout.trim(), "configmap/w0-0");
}
