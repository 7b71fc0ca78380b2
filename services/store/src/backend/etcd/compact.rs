//! The etcd backend's compactor, as kube-apiserver's.
use std::sync::Arc;

use super::pb::etcdserverpb::{
    compare, request_op, response_op, CompactionRequest, Compare, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};
use super::{Shared, COMPACT_REV_KEY};

/// kube-apiserver's compactor: every interval, whoever wins the CAS on `compact_rev_key`
/// (compare its version with the last one seen) compacts to the revision it saw one interval
/// ago; the others learn the new version and try again next interval.
pub(super) async fn compactor(s: Arc<Shared>) {
    let mut version = 0;
    let mut revision = 0;
    let mut tick = tokio::time::interval(s.opts.compaction_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match compact_once(&s, version, revision).await {
            Ok((v, r)) => (version, revision) = (v, r),
            Err(e) => tracing::warn!(error = %e, "etcd compaction"),
        }
    }
}

/// One round: returns the version of `compact_rev_key` and the revision to compact to next.
async fn compact_once(s: &Shared, version: i64, revision: i64) -> Result<(i64, i64), String> {
    let req = TxnRequest {
        compare: vec![Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Version as i32,
            key: COMPACT_REV_KEY.to_vec(),
            target_union: Some(compare::TargetUnion::Version(version)),
            range_end: Vec::new(),
        }],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: COMPACT_REV_KEY.to_vec(),
                value: revision.to_string().into(),
                ..Default::default()
            })),
        }],
        failure: vec![RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: COMPACT_REV_KEY.to_vec(),
                ..Default::default()
            })),
        }],
    };
    let mut kv = s.kv();
    let resp = tokio::time::timeout(s.opts.request_timeout, kv.txn(req))
        .await
        .map_err(|_| "Txn timed out".to_string())?
        .map_err(|e| e.message().to_string())?
        .into_inner();
    let current = resp.header.map_or(0, |h| h.revision);
    if !resp.succeeded {
        // Another store compacted this interval; follow its version.
        let theirs = resp
            .responses
            .first()
            .and_then(|r| match &r.response {
                Some(response_op::Response::ResponseRange(r)) => r.kvs.first(),
                _ => None,
            })
            .map_or(version, |kv| kv.version);
        return Ok((theirs, current));
    }
    if revision == 0 {
        // Nothing seen an interval ago yet (the first round): no compaction.
        return Ok((version + 1, current));
    }
    let started = std::time::Instant::now();
    match tokio::time::timeout(
        s.opts.request_timeout,
        kv.compact(CompactionRequest {
            revision,
            physical: false,
        }),
    )
    .await
    {
        Ok(Ok(_)) => {
            tracing::info!(revision, took = ?started.elapsed(), "etcd compacted");
        }
        // Already compacted past it (another tool did): fine.
        Ok(Err(e)) if e.code() == tonic::Code::OutOfRange => {}
        Ok(Err(e)) => return Err(e.message().to_string()),
        Err(_) => return Err("Compact timed out".into()),
    }
    Ok((version + 1, current))
}
