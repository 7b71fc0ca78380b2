//! kill -9 during concurrent writes loses no acknowledged write.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain_api::v1::{CreateRequest, ListRequest};
use coxswain_api::Kind;
use coxswain_test_support::{wait_for, Coxswain};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_concurrent_writes_loses_no_acknowledged_write() {
    let mut c = Coxswain::start().expect("start coxswain");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = c.client().await.expect("client");
    let mut tasks = Vec::new();
    for w in 0..16 {
        let mut client = client.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            // Bounded: at most 2,000 writes per writer; the kill ends it sooner.
            for i in 0..2000 {
                let mut cm = Kind::ConfigMap.empty();
                cm.meta_mut().name = format!("w{w}-{i}");
                cm.meta_mut().namespace = "default".into();
                let req = CreateRequest {
                    object: Some(cm.to_any()),
                    dry_run: false,
                };
                match client.create(req).await {
                    Ok(_) => acked.lock().expect("lock").push(format!("w{w}-{i}")),
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill once a good number of writes has been acknowledged.
    wait_for("300 acknowledged writes", Duration::from_secs(60), || {
        let n = acked.lock().expect("lock").len();
        async move { (n >= 300).then_some(()) }
    })
    .await
    .expect("writes acknowledged");
    c.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() < 16 * 2000,
        "the kill landed while writers were still writing"
    );
    c.restart().expect("restart on the same data");
    let mut client = c.client().await.expect("client");
    let list = client
        .list(ListRequest {
            kind: "cm".into(),
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let stored: std::collections::HashSet<String> = list
        .items
        .iter()
        .map(|a| {
            coxswain_api::Object::from_any(a)
                .expect("decodes")
                .name()
                .to_string()
        })
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}
