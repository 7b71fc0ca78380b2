//! Watches on every backend: resuming, too old and too new resourceVersions; bookmarks.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::selector::LabelSelector;
use coxswain_api::Kind;
use coxswain_store::backend::{Backend, EmbeddedBackend};
use coxswain_store::cache::EventType;
use coxswain_store::store::{DeleteOptions, WatchEvent, WatchOptions};
use coxswain_store::{Store, StoreConfig, StoreError};

use crate::common::*;

async fn watch_resume_and_too_old(h: Harness) {
    let s = &h.store;
    let start = s.revision();
    let mut rx = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            resource_version: Some(start),
            ..Default::default()
        })
        .expect("watch");
    let mut revs = Vec::new();
    for i in 0..10 {
        let o = s
            .create(configmap("default", &format!("c{i}")), false)
            .await
            .expect("create");
        revs.push(rv(&o));
    }
    s.delete(Kind::ConfigMap, "default", "c0", &DeleteOptions::default())
        .await
        .expect("delete");
    for (i, want) in revs.iter().enumerate() {
        let (typ, o) = next_change(&mut rx).await;
        assert_eq!(typ, EventType::Added);
        assert_eq!(o.name(), format!("c{i}"));
        assert_eq!(rv(&o), *want);
    }
    let (typ, o) = next_change(&mut rx).await;
    assert_eq!((typ, o.name()), (EventType::Deleted, "c0"));

    // Resume from the middle: exactly the later events, no gap, no duplicate.
    let mut rx2 = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            resource_version: Some(revs[4]),
            ..Default::default()
        })
        .expect("watch from middle");
    for want in &revs[5..] {
        let (_, o) = next_change(&mut rx2).await;
        assert_eq!(rv(&o), *want);
    }
    let (typ, _) = next_change(&mut rx2).await;
    assert_eq!(typ, EventType::Deleted);

    // Without a resourceVersion: ADDED for everything there, then changes.
    let mut rx3 = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            ..Default::default()
        })
        .expect("watch");
    for _ in 0..9 {
        assert_eq!(next_change(&mut rx3).await.0, EventType::Added);
    }

    // Label-filtered watches see objects enter and leave the selection.
    let mut rx4 = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            labels: LabelSelector::parse("sel=yes").expect("selector"),
            resource_version: Some(s.revision()),
            ..Default::default()
        })
        .expect("watch");
    let c1 = s
        .patch(
            Kind::ConfigMap,
            "default",
            "c1",
            r#"{"metadata":{"labels":{"sel":"yes"}}}"#,
            false,
        )
        .await
        .expect("patch");
    let _ = s
        .patch(
            Kind::ConfigMap,
            "default",
            "c2",
            r#"{"metadata":{"labels":{"other":"x"}}}"#,
            false,
        )
        .await
        .expect("patch");
    s.patch(
        Kind::ConfigMap,
        "default",
        "c1",
        r#"{"metadata":{"labels":{"sel":"no"}}}"#,
        false,
    )
    .await
    .expect("patch");
    let (t1, o1) = next_change(&mut rx4).await;
    assert_eq!((t1, o1.name(), rv(&o1)), (EventType::Added, "c1", rv(&c1)));
    let (t2, o2) = next_change(&mut rx4).await;
    assert_eq!((t2, o2.name()), (EventType::Deleted, "c1"));
}

async fn watch_too_old(h: Harness) {
    let s = &h.store;
    let start = s.revision();
    for i in 0..20 {
        s.create(configmap("default", &format!("c{i}")), false)
            .await
            .expect("create");
    }
    match s.watch(WatchOptions {
        resource_version: Some(start),
        ..Default::default()
    }) {
        Err(e @ StoreError::TooOld { .. }) => assert_eq!(e.code(), tonic::Code::OutOfRange),
        Err(e) => panic!("expected TooOld, got {e:?}"),
        Ok(_) => panic!("expected TooOld, got a watch"),
    }
    // Within the window it works.
    assert!(s
        .watch(WatchOptions {
            resource_version: Some(s.revision() - 3),
            ..Default::default()
        })
        .is_ok());
}

/// A watch from a resourceVersion the store has not reached waits for it (and then serves from
/// exactly there), or fails with "Too large resource version" — never serving older revisions.
async fn watch_from_the_future(h: Harness) {
    let s = &h.store;
    let now = s.revision();
    let mut rx = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            resource_version: Some(now + 2),
            ..Default::default()
        })
        .expect("watch");
    for i in 0..3 {
        s.create(configmap("default", &format!("f{i}")), false)
            .await
            .expect("create");
    }
    // Revision now+2 was reached: the watch serves what came after it, the third create.
    let (t, o) = next_change(&mut rx).await;
    assert_eq!((t, o.name()), (EventType::Added, "f2"));

    let far = s.revision() + 1000;
    let mut rx = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            resource_version: Some(far),
            ..Default::default()
        })
        .expect("watch");
    s.create(configmap("default", "meanwhile"), false)
        .await
        .expect("create");
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an answer within the wait")
        .expect("watch open");
    match ev {
        Err(e @ StoreError::TooLarge { .. }) => {
            assert!(
                e.to_string()
                    .starts_with(&format!("Too large resource version: {far}, current: ")),
                "{e}"
            );
            assert_eq!(tonic::Status::from(e).code(), tonic::Code::OutOfRange);
        }
        Err(e) => panic!("expected TooLarge, got {e}"),
        Ok(_) => panic!("a watch from the future delivered an older event"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_bookmarks_carry_the_current_revision() {
    let backend: Arc<dyn Backend> = Arc::new(EmbeddedBackend::memory());
    let config = StoreConfig {
        bookmark_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let s = Store::open(backend, config).await.expect("store");
    s.create(configmap("default", "a"), false)
        .await
        .expect("create");
    let mut rx = s
        .watch(WatchOptions {
            kind: Some(Kind::ConfigMap),
            resource_version: Some(s.revision()),
            bookmarks: true,
            ..Default::default()
        })
        .expect("watch");
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("in time")
        .expect("open")
        .expect("ok");
    match ev {
        WatchEvent::Bookmark { kind, revision } => {
            assert_eq!(kind, Some(Kind::ConfigMap));
            assert_eq!(revision, s.revision());
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

backends! {
    watch_from_the_future,
    watch_resume_and_too_old,
    watch_too_old(5),
}
