//! The etcd backend's change feed: one etcd watch on the prefix, resumed from etcd's history
//! when it breaks, and a relist (fed as the difference) when that history was compacted.
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::pb::etcdserverpb::{watch_request, WatchCreateRequest, WatchRequest};
use super::pb::mvccpb::event::EventType;
use super::Shared;
use crate::backend::{Change, KeyValue};

/// Why one watch stream ended.
enum WatchEnd {
    /// The store dropped the feed: stop.
    Closed,
    /// The next revision is compacted: relist.
    Compacted,
    Failed(String),
}

/// Follow etcd's watch from `revision` + 1 for as long as the feed is read.
pub(super) async fn follow(
    s: Arc<Shared>,
    mut known: HashMap<String, i64>,
    mut revision: i64,
    tx: mpsc::UnboundedSender<Vec<Change>>,
) {
    let mut pause = s.opts.retry_min;
    loop {
        let mut progressed = false;
        let end = watch_once(&s, &mut known, &mut revision, &tx, &mut progressed).await;
        if progressed {
            pause = s.opts.retry_min;
        }
        match end {
            WatchEnd::Closed => return,
            WatchEnd::Compacted => match s.list().await {
                Ok((at, kvs)) => {
                    let changes = resync(&mut known, at, kvs);
                    tracing::warn!(
                        from = revision + 1,
                        to = at,
                        changes = changes.len(),
                        "etcd compacted past the feed; relisted and fed the difference"
                    );
                    revision = revision.max(at);
                    if !changes.is_empty() && tx.send(changes).is_err() {
                        return;
                    }
                    s.fed.advance(revision);
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "relisting etcd after a compaction"),
            },
            WatchEnd::Failed(why) => {
                tracing::warn!(error = %why, next = revision + 1, "etcd watch ended; resuming")
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(s.opts.retry_max);
    }
}

async fn watch_once(
    s: &Shared,
    known: &mut HashMap<String, i64>,
    revision: &mut i64,
    tx: &mpsc::UnboundedSender<Vec<Change>>,
    progressed: &mut bool,
) -> WatchEnd {
    let (start, end) = s.keys.range();
    let (req_tx, req_rx) = mpsc::channel(1);
    let create = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: start,
                range_end: end,
                start_revision: *revision + 1,
                progress_notify: true,
                ..Default::default()
            },
        )),
    };
    if req_tx.send(create).await.is_err() {
        return WatchEnd::Failed("watch request channel closed".into());
    }
    let mut w = s.watch.clone();
    // `req_tx` stays alive for the stream's life: closing the request side ends the watch.
    let mut stream = match w
        .watch(tokio_stream::wrappers::ReceiverStream::new(req_rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => return WatchEnd::Failed(e.message().to_string()),
    };
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = tx.closed() => return WatchEnd::Closed,
        };
        let resp = match msg {
            Ok(Some(r)) => r,
            Ok(None) => return WatchEnd::Failed("stream closed by etcd".into()),
            Err(e) => return WatchEnd::Failed(e.message().to_string()),
        };
        if resp.compact_revision > 0 {
            return WatchEnd::Compacted;
        }
        if resp.canceled {
            return WatchEnd::Failed(format!("canceled by etcd: {}", resp.cancel_reason));
        }
        *progressed = true;
        if resp.events.is_empty() {
            continue;
        }
        let mut batch = Vec::with_capacity(resp.events.len());
        for ev in resp.events {
            let Some(kv) = ev.kv else { continue };
            *revision = (*revision).max(kv.mod_revision);
            let Some(key) = s.keys.store_key(&kv.key) else {
                continue;
            };
            if ev.r#type == EventType::Delete as i32 {
                known.remove(&key);
                batch.push(Change {
                    revision: kv.mod_revision,
                    key,
                    value: None,
                });
            } else {
                known.insert(key.clone(), kv.mod_revision);
                batch.push(Change {
                    revision: kv.mod_revision,
                    key,
                    value: Some(kv.value),
                });
            }
        }
        if !batch.is_empty() && tx.send(batch).is_err() {
            return WatchEnd::Closed;
        }
        s.fed.advance(*revision);
    }
}

/// The changes that take a consumer from `known` to the listing `kvs` taken at revision `at`:
/// every key whose mod_revision differs, at its own revision and in revision order, then every
/// key that is gone, deleted at `at`. Updates `known` to the listing.
pub(super) fn resync(known: &mut HashMap<String, i64>, at: i64, kvs: Vec<KeyValue>) -> Vec<Change> {
    let mut changes: Vec<Change> = Vec::new();
    let mut now: HashMap<String, i64> = HashMap::with_capacity(kvs.len());
    for kv in kvs {
        now.insert(kv.key.clone(), kv.mod_revision);
        if known.get(&kv.key) != Some(&kv.mod_revision) {
            changes.push(Change {
                revision: kv.mod_revision,
                key: kv.key,
                value: Some(kv.value),
            });
        }
    }
    changes.sort_by(|a, b| (a.revision, &a.key).cmp(&(b.revision, &b.key)));
    let mut gone: Vec<&String> = known.keys().filter(|k| !now.contains_key(*k)).collect();
    gone.sort();
    changes.extend(gone.into_iter().map(|k| Change {
        revision: at,
        key: k.clone(),
        value: None,
    }));
    *known = now;
    changes
}
