//! The write-ahead log's flags reach the embedded backend (docs/store.md): the segment size is
//! the size of the segment files, and the checkpoint settings decide when a sealed segment,
//! which redb then holds, is deleted.
use std::path::Path;
use std::time::Duration;

use coxswain_api::v1::{ConfigMap, ObjectMeta};
use coxswain_api::Object;
use coxswain_test_support::{wait_for, Coxswain};

/// The segment files of the log under `data_dir` and their lengths, in order.
fn segments(data_dir: &Path) -> Vec<u64> {
    let mut segs: Vec<(String, u64)> = std::fs::read_dir(data_dir.join("wal"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
                .filter_map(|e| {
                    Some((
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().ok()?.len(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    segs.sort();
    segs.into_iter().map(|(_, len)| len).collect()
}

/// Write ConfigMaps of 200 KiB each, 1.6 MB in all: more than one 1 MiB segment holds.
async fn fill(c: &Coxswain) {
    let mut client = c.client().await.expect("client");
    for i in 0..8 {
        let cm = Object::ConfigMap(ConfigMap {
            metadata: Some(ObjectMeta {
                name: format!("big-{i}"),
                namespace: "default".into(),
                ..Default::default()
            }),
            data: [("k".to_string(), "x".repeat(200 << 10))]
                .into_iter()
                .collect(),
            ..Default::default()
        });
        client
            .create(coxswain_api::v1::CreateRequest {
                object: Some(cm.to_any()),
                dry_run: false,
            })
            .await
            .expect("create");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_size_and_checkpoint_interval_reach_the_log() {
    let c = Coxswain::start_with(
        &["store"],
        &[
            "--wal-segment-size",
            "1Mi",
            "--wal-checkpoint-interval",
            "1h",
            "--wal-checkpoint-batch",
            "1000000",
        ],
    )
    .expect("start coxswain");
    // The log is open once the store answers: its segment is preallocated to the flag's size.
    assert_eq!(segments(&c.data_dir), vec![1 << 20]);
    fill(&c).await;
    // Every write is acknowledged only once durable in the log, so the segment switch has
    // happened; with no checkpoint due for an hour, the sealed segment is still there.
    let segs = segments(&c.data_dir);
    assert!(segs.len() >= 2, "segments {segs:?}");
    assert!(segs.iter().all(|len| *len == 1 << 20), "segments {segs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_batch_reaches_the_log() {
    // A checkpoint after every change (the interval alone would wait an hour): the segment
    // sealed by the writes is applied to redb and deleted.
    let c = Coxswain::start_with(
        &["store"],
        &[
            "--wal-segment-size",
            "1Mi",
            "--wal-checkpoint-interval",
            "1h",
            "--wal-checkpoint-batch",
            "1",
        ],
    )
    .expect("start coxswain");
    fill(&c).await;
    let segs = wait_for(
        "the sealed segments deleted",
        Duration::from_secs(30),
        || {
            let segs = segments(&c.data_dir);
            async move { (segs.len() == 1).then_some(segs) }
        },
    )
    .await
    .expect("checkpointed");
    assert_eq!(segs, vec![1 << 20]);
}
