//! The backends themselves: the etcd-like contract, a redb restart, etcd's prefix list.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::Kind;
use coxswain_store::backend::{Backend, EmbeddedBackend, EmbeddedOptions};
use coxswain_store::{Store, StoreConfig};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_restart_keeps_data_and_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = EmbeddedOptions {
        data_dir: Some(dir.path().to_path_buf()),
        cache_bytes: 1 << 20,
    };
    let (uid, rev) = {
        let b: Arc<dyn Backend> = Arc::new(EmbeddedBackend::open(opts.clone()).expect("open"));
        let s = Store::open(b, StoreConfig::default()).await.expect("store");
        let o = s
            .create(configmap("default", "kept"), false)
            .await
            .expect("create");
        (o.meta().uid.clone(), s.revision())
    };
    // The writer thread of the first backend exits once its store is dropped; redb allows one
    // open per file, so wait for it to close.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let b: Arc<dyn Backend> = loop {
        match EmbeddedBackend::open(opts.clone()) {
            Ok(b) => break Arc::new(b),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("the first store's backend never closed: {e}"),
        }
    };
    let s = Store::open(b, StoreConfig::default())
        .await
        .expect("reopen");
    let o = s
        .get(Kind::ConfigMap, "default", "kept")
        .expect("survived restart");
    assert_eq!(o.meta().uid, uid);
    assert_eq!(s.revision(), rev, "revision continues from the stored one");
    let next = s
        .create(configmap("default", "after"), false)
        .await
        .expect("create");
    assert!(rv(&next) > rev);
}

/// The backend contract itself, as etcd's: compare-and-swap, one revision per transaction,
/// the feed in revision order. Keys are under `/registry/`, the store's root.
async fn backend_contract(b: Arc<dyn Backend>) {
    use bytes::Bytes;
    use coxswain_store::backend::{Op, Txn, TxnResult};
    let (snap, mut feed) = b.start().await.expect("start");
    let base = snap.revision;
    let r1 = b
        .txn(Txn::put_if(
            "/registry/k/a".into(),
            0,
            Bytes::from_static(b"1"),
        ))
        .await
        .expect("txn");
    assert_eq!(r1, TxnResult::Committed { revision: base + 1 });
    // Create of an existing key conflicts and names its revision.
    let c = b
        .txn(Txn::put_if(
            "/registry/k/a".into(),
            0,
            Bytes::from_static(b"x"),
        ))
        .await
        .expect("txn");
    assert_eq!(
        c,
        TxnResult::Conflict {
            key: "/registry/k/a".into(),
            mod_revision: base + 1
        }
    );
    // A multi-op transaction commits at one revision.
    let t = Txn {
        compares: vec![
            ("/registry/k/a".into(), base + 1),
            ("/registry/k/b".into(), 0),
        ],
        ops: vec![
            Op::Put {
                key: "/registry/k/b".into(),
                value: Bytes::from_static(b"2"),
            },
            Op::Delete {
                key: "/registry/k/a".into(),
            },
        ],
    };
    assert_eq!(
        b.txn(t).await.expect("txn"),
        TxnResult::Committed { revision: base + 2 }
    );
    let mut changes = Vec::new();
    while changes.len() < 3 {
        changes.extend(
            tokio::time::timeout(Duration::from_secs(5), feed.recv())
                .await
                .expect("feed")
                .expect("open"),
        );
    }
    let seen: Vec<(i64, &str, bool)> = changes
        .iter()
        .map(|c| (c.revision, c.key.as_str(), c.value.is_some()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (base + 1, "/registry/k/a", true),
            (base + 2, "/registry/k/b", true),
            (base + 2, "/registry/k/a", false)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_contract_memory() {
    backend_contract(Arc::new(EmbeddedBackend::memory())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_contract_redb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = EmbeddedBackend::open(EmbeddedOptions {
        data_dir: Some(dir.path().to_path_buf()),
        cache_bytes: 1 << 20,
    })
    .expect("open");
    backend_contract(Arc::new(b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_contract_etcd() {
    let (_etcd, b) = etcd_backend("/registry").await;
    backend_contract(Arc::new(b)).await;
}

/// A consistent read of one kind from etcd itself (a store whose cache is stuck falls back
/// to it): exactly the keys under the prefix, at etcd's current revision, under a non-default
/// `--etcd-prefix`; the embedded backend has none (its store's cache is always current).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_lists_a_prefix_from_etcd() {
    use bytes::Bytes;
    use coxswain_store::backend::{Txn, TxnResult};
    let (_etcd, b) = etcd_backend("/conformance").await;
    let _feed = b.start().await.expect("start");
    let mut last = 0;
    for key in [
        "/registry/pods/default/a",
        "/registry/pods/kube-system/b",
        "/registry/podsx/default/not-a-pod",
        "/registry/configmaps/default/c",
    ] {
        match b
            .txn(Txn::put_if(key.into(), 0, Bytes::from(key.to_string())))
            .await
            .expect("txn")
        {
            TxnResult::Committed { revision } => last = revision,
            r => panic!("{r:?}"),
        }
    }
    let snap = b
        .list_prefix("/registry/pods/")
        .await
        .expect("list")
        .expect("etcd lists");
    let keys: Vec<&str> = snap.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["/registry/pods/default/a", "/registry/pods/kube-system/b"]
    );
    assert_eq!(snap.kvs[0].value, Bytes::from("/registry/pods/default/a"));
    assert!(snap.revision >= last);
    assert!(b.list_prefix("/registry/pods").await.is_err());
    let embedded = EmbeddedBackend::memory();
    assert!(embedded
        .list_prefix("/registry/pods/")
        .await
        .expect("list")
        .is_none());
}
