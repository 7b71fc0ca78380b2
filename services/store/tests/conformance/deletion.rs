//! Deletion on every backend: finalizers, garbage collection in each propagation, namespaces.
use coxswain_api::{Kind, Object};
use coxswain_store::store::{DeleteOptions, ListOptions, Propagation};
use coxswain_store::StoreError;

use crate::common::*;

async fn finalizers(h: Harness) {
    let s = &h.store;
    let mut c = configmap("default", "fin");
    c.meta_mut().finalizers.push("example.com/hold".into());
    s.create(c, false).await.expect("create");
    let marked = s
        .delete(Kind::ConfigMap, "default", "fin", &DeleteOptions::default())
        .await
        .expect("delete");
    assert!(!marked.meta().deletion_timestamp.is_empty());
    let still = s
        .get(Kind::ConfigMap, "default", "fin")
        .expect("still there");
    assert!(!still.meta().deletion_timestamp.is_empty());
    // Deleting again changes nothing.
    let again = s
        .delete(Kind::ConfigMap, "default", "fin", &DeleteOptions::default())
        .await
        .expect("delete again");
    assert_eq!(again.meta().resource_version, still.meta().resource_version);
    s.update_with(Kind::ConfigMap, "default", "fin", false, |o| {
        o.meta_mut().finalizers.clear();
        Ok(Some(()))
    })
    .await
    .expect("remove finalizer");
    assert!(matches!(
        s.get(Kind::ConfigMap, "default", "fin"),
        Err(StoreError::NotFound { .. })
    ));
}

async fn gc_background(h: Harness) {
    let s = &h.store;
    let owner = s
        .create(configmap("default", "owner"), false)
        .await
        .expect("owner");
    for i in 0..3 {
        s.create(
            owned_by(pod("default", &format!("dep{i}"), &[]), &owner),
            false,
        )
        .await
        .expect("dependent");
    }
    s.delete(
        Kind::ConfigMap,
        "default",
        "owner",
        &DeleteOptions::default(),
    )
    .await
    .expect("delete owner");
    assert!(
        s.get(Kind::ConfigMap, "default", "owner").is_err(),
        "background: owner goes at once"
    );
    eventually("dependents collected", || {
        s.list(Kind::Pod, &ListOptions::default())
            .expect("list")
            .items
            .is_empty()
    })
    .await;
}

async fn gc_foreground(h: Harness) {
    let s = &h.store;
    let owner = s
        .create(configmap("default", "owner"), false)
        .await
        .expect("owner");
    let mid = s
        .create(owned_by(configmap("default", "mid"), &owner), false)
        .await
        .expect("mid");
    s.create(owned_by(pod("default", "leaf", &[]), &mid), false)
        .await
        .expect("leaf");
    let opts = DeleteOptions {
        propagation: Propagation::Foreground,
        ..Default::default()
    };
    let marked = s
        .delete(Kind::ConfigMap, "default", "owner", &opts)
        .await
        .expect("delete");
    assert!(marked
        .meta()
        .finalizers
        .iter()
        .any(|f| f == "foregroundDeletion"));
    eventually("the whole chain is gone", || {
        s.get(Kind::ConfigMap, "default", "owner").is_err()
            && s.get(Kind::ConfigMap, "default", "mid").is_err()
            && s.get(Kind::Pod, "default", "leaf").is_err()
    })
    .await;
}

async fn gc_orphan(h: Harness) {
    let s = &h.store;
    let owner = s
        .create(configmap("default", "owner"), false)
        .await
        .expect("owner");
    s.create(owned_by(pod("default", "kept", &[]), &owner), false)
        .await
        .expect("dep");
    let opts = DeleteOptions {
        propagation: Propagation::Orphan,
        ..Default::default()
    };
    s.delete(Kind::ConfigMap, "default", "owner", &opts)
        .await
        .expect("delete");
    eventually("owner gone", || {
        s.get(Kind::ConfigMap, "default", "owner").is_err()
    })
    .await;
    let kept = s.get(Kind::Pod, "default", "kept").expect("dependent kept");
    assert!(
        kept.meta().owner_references.is_empty(),
        "orphaned: no owner reference left"
    );
}

async fn namespace_deletion(h: Harness) {
    let s = &h.store;
    s.create(namespace("doomed"), false).await.expect("ns");
    for i in 0..5 {
        s.create(pod("doomed", &format!("p{i}"), &[]), false)
            .await
            .expect("pod");
        s.create(configmap("doomed", &format!("c{i}")), false)
            .await
            .expect("cm");
    }
    let marked = s
        .delete(Kind::Namespace, "", "doomed", &DeleteOptions::default())
        .await
        .expect("delete ns");
    let Object::Namespace(n) = &marked else {
        panic!("namespace")
    };
    assert_eq!(
        n.status.as_ref().map(|s| s.phase.as_str()),
        Some("Terminating")
    );
    match s.create(configmap("doomed", "late"), false).await {
        Err(StoreError::Forbidden(m)) => assert!(m.contains("being terminated"), "{m}"),
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected Forbidden, got {other:?}"),
    }
    eventually("namespace and contents gone", || {
        s.get(Kind::Namespace, "", "doomed").is_err()
    })
    .await;
    let opts = ListOptions {
        namespace: Some("doomed".into()),
        ..Default::default()
    };
    assert!(s.list(Kind::Pod, &opts).expect("list").items.is_empty());
    assert!(s
        .list(Kind::ConfigMap, &opts)
        .expect("list")
        .items
        .is_empty());
    // The namespace can be created again.
    s.create(namespace("doomed"), false)
        .await
        .expect("recreate");
}

backends! {
    finalizers,
    gc_background,
    gc_foreground,
    gc_orphan,
    namespace_deletion,
}
