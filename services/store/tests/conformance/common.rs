//! What every test of the suite shares: a store on each backend, and object builders and waits.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1;
use coxswain_api::Object;
use coxswain_store::backend::{
    Backend, EmbeddedBackend, EmbeddedOptions, EtcdBackend, EtcdOptions,
};
use coxswain_store::cache::EventType;
use coxswain_store::store::WatchEvent;
use coxswain_store::{gc, Store, StoreConfig, StoreError};
use coxswain_test_support::etcd::Etcd;

pub struct Harness {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    _etcd: Option<Etcd>,
}

pub async fn open(durable: bool, history: usize) -> Harness {
    let (backend, dir): (Arc<dyn Backend>, _) = if durable {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = EmbeddedBackend::open(EmbeddedOptions {
            data_dir: Some(dir.path().to_path_buf()),
            cache_bytes: 1 << 20,
        })
        .expect("open redb");
        (Arc::new(b), Some(dir))
    } else {
        (Arc::new(EmbeddedBackend::memory()), None)
    };
    let config = StoreConfig {
        watch_history: history,
        ..Default::default()
    };
    let store = Store::open(backend, config).await.expect("open store");
    tokio::spawn(gc::run(store.clone()));
    Harness {
        store,
        _dir: dir,
        _etcd: None,
    }
}

/// A fresh etcd and an etcd backend on it, under a prefix other than the default so the key
/// mapping is exercised too.
pub async fn etcd_backend(prefix: &str) -> (Etcd, EtcdBackend) {
    let etcd = tokio::task::spawn_blocking(Etcd::start)
        .await
        .expect("join")
        .expect("start etcd");
    let b = EtcdBackend::connect(EtcdOptions {
        servers: vec![etcd.url.clone()],
        prefix: prefix.into(),
        compaction_interval: Duration::ZERO,
        // Requests spread over two connections: the suite holds with them in any order.
        connections: 2,
        ..Default::default()
    })
    .await
    .expect("connect to etcd");
    (etcd, b)
}

pub async fn open_etcd(history: usize) -> Harness {
    let (etcd, b) = etcd_backend("/conformance").await;
    let config = StoreConfig {
        watch_history: history,
        ..Default::default()
    };
    let store = Store::open(Arc::new(b), config).await.expect("open store");
    tokio::spawn(gc::run(store.clone()));
    Harness {
        store,
        _dir: None,
        _etcd: Some(etcd),
    }
}

pub fn meta(ns: &str, name: &str, labels: &[(&str, &str)]) -> Option<v1::ObjectMeta> {
    Some(v1::ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

pub fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Object {
    Object::Pod(v1::Pod {
        metadata: meta(ns, name, labels),
        spec: Some(v1::PodSpec {
            containers: vec![v1::Container {
                name: "c".into(),
                image: "nginx:1.17.9".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub fn configmap(ns: &str, name: &str) -> Object {
    Object::ConfigMap(v1::ConfigMap {
        metadata: meta(ns, name, &[]),
        ..Default::default()
    })
}

pub fn namespace(name: &str) -> Object {
    Object::Namespace(v1::Namespace {
        metadata: meta("", name, &[]),
        ..Default::default()
    })
}

pub fn owned_by(mut o: Object, owner: &Object) -> Object {
    o.meta_mut().owner_references.push(v1::OwnerReference {
        api_version: owner.kind().api_version().into(),
        kind: owner.kind().as_str().into(),
        name: owner.name().into(),
        uid: owner.meta().uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    o
}

pub fn rv(o: &Object) -> i64 {
    o.meta()
        .resource_version
        .parse()
        .expect("numeric resourceVersion")
}

pub async fn eventually<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn next_change(
    rx: &mut tokio::sync::mpsc::Receiver<Result<WatchEvent, StoreError>>,
) -> (EventType, Object) {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a watch event within 5 s")
            .expect("watch open")
            .expect("no watch error");
        if let WatchEvent::Change { typ, object } = ev {
            return (typ, object.decode());
        }
    }
}
