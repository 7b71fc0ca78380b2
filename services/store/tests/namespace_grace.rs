//! The namespace deleter's grace (upstream's `namespaceDeletionGracePeriod`): a create does not
//! compare its namespace in its transaction, so an object admitted just before the namespace
//! was marked (here, or through another store replica whose cache had not seen the mark yet)
//! may land after the mark. The deleter waits the grace before it lists, and deletes it too.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coxswain_api::v1;
use coxswain_api::{Kind, Object};
use coxswain_store::backend::{Backend, EmbeddedBackend, Txn, TxnResult};
use coxswain_store::cache::backend_key;
use coxswain_store::store::{DeleteOptions, ListOptions};
use coxswain_store::{gc, Store, StoreConfig};
use coxswain_test_support::wait_for;

const T: Duration = Duration::from_secs(20);

fn meta(ns: &str, name: &str) -> Option<v1::ObjectMeta> {
    Some(v1::ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_landing_after_the_mark_is_deleted_within_the_grace() {
    let grace = Duration::from_millis(1500);
    let backend = Arc::new(EmbeddedBackend::memory());
    let config = StoreConfig {
        namespace_deletion_grace: grace,
        ..Default::default()
    };
    let s = Store::open(backend.clone(), config).await.expect("store");
    tokio::spawn(gc::run(s.clone()));
    let ns = Object::Namespace(v1::Namespace {
        metadata: meta("", "doomed"),
        ..Default::default()
    });
    s.create(ns, false).await.expect("namespace");
    let cm = |name: &str| {
        Object::ConfigMap(v1::ConfigMap {
            metadata: meta("doomed", name),
            ..Default::default()
        })
    };
    s.create(cm("before"), false).await.expect("configmap");
    // Admitted now, committed after the mark: what another replica's create can do.
    let (late, _) = s
        .create_encoded(cm("late"), true)
        .await
        .expect("admitted (dry run)");
    let marked_at = Instant::now();
    s.delete(Kind::Namespace, "", "doomed", &DeleteOptions::default())
        .await
        .expect("mark the namespace");
    let key = backend_key(Kind::ConfigMap, "doomed", "late");
    let value = Bytes::from(late.encode_to_vec());
    let r = backend
        .txn(Txn::put_if(key, 0, value))
        .await
        .expect("the late create commits");
    assert!(matches!(r, TxnResult::Committed { .. }), "{r:?}");
    wait_for("the late configmap in the cache", T, || async {
        s.get(Kind::ConfigMap, "doomed", "late").ok().map(|_| ())
    })
    .await
    .unwrap();
    wait_for("namespace gone", T, || async {
        s.get(Kind::Namespace, "", "doomed").is_err().then_some(())
    })
    .await
    .unwrap();
    assert!(
        marked_at.elapsed() >= grace,
        "the namespace went after {:?}, before the grace of {grace:?}",
        marked_at.elapsed()
    );
    let left = s
        .list(
            Kind::ConfigMap,
            &ListOptions {
                namespace: Some("doomed".into()),
                ..Default::default()
            },
        )
        .expect("list");
    assert!(
        left.items.is_empty(),
        "left behind: {:?}",
        left.items.iter().map(|i| i.name()).collect::<Vec<_>>()
    );
}
