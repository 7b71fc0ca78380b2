//! The store conformance suite: Kubernetes API semantics, run against every backend
//! (in-memory, the durable redb file, and etcd: a real etcd per test, started on free loopback
//! ports by `coxswain_test_support::etcd`). A new backend adds one module to `backends!`.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::selector::{FieldSelector, LabelSelector};
use coxswain_api::v1;
use coxswain_api::{Kind, Object};
use coxswain_store::backend::{
    Backend, EmbeddedBackend, EmbeddedOptions, EtcdBackend, EtcdOptions,
};
use coxswain_store::cache::EventType;
use coxswain_store::store::{DeleteOptions, ListOptions, Propagation, WatchEvent, WatchOptions};
use coxswain_store::{gc, Store, StoreConfig, StoreError};
use coxswain_test_support::etcd::Etcd;

struct Harness {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    _etcd: Option<Etcd>,
}

async fn open(durable: bool, history: usize) -> Harness {
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
async fn etcd_backend(prefix: &str) -> (Etcd, EtcdBackend) {
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

async fn open_etcd(history: usize) -> Harness {
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

fn meta(ns: &str, name: &str, labels: &[(&str, &str)]) -> Option<v1::ObjectMeta> {
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

fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Object {
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

fn configmap(ns: &str, name: &str) -> Object {
    Object::ConfigMap(v1::ConfigMap {
        metadata: meta(ns, name, &[]),
        ..Default::default()
    })
}

fn namespace(name: &str) -> Object {
    Object::Namespace(v1::Namespace {
        metadata: meta("", name, &[]),
        ..Default::default()
    })
}

fn owned_by(mut o: Object, owner: &Object) -> Object {
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

fn rv(o: &Object) -> i64 {
    o.meta()
        .resource_version
        .parse()
        .expect("numeric resourceVersion")
}

async fn eventually<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next_change(
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

async fn crud_and_metadata(h: Harness) {
    let s = &h.store;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            s.get(Kind::Namespace, "", ns).is_ok(),
            "system namespace {ns} exists"
        );
    }
    let created = s
        .create(pod("default", "web", &[("app", "web")]), false)
        .await
        .expect("create");
    let m = created.meta();
    assert!(!m.uid.is_empty());
    assert!(!m.creation_timestamp.is_empty());
    assert_eq!(m.generation, 1);
    let got = s.get(Kind::Pod, "default", "web").expect("get");
    assert_eq!(got.meta().resource_version, created.meta().resource_version);
    assert_eq!(got.meta().uid, created.meta().uid);

    // A label change is not a spec change: generation stays.
    let mut relabeled = got.clone();
    relabeled
        .meta_mut()
        .labels
        .insert("tier".into(), "front".into());
    let relabeled = s.update(relabeled).await.expect("update labels");
    assert_eq!(relabeled.meta().generation, 1);
    assert!(rv(&relabeled) > rv(&created));

    // A spec change bumps generation.
    let mut changed = relabeled.clone();
    if let Object::Pod(p) = &mut changed {
        p.spec.as_mut().expect("spec").containers[0].image = "nginx:1.19".into();
    }
    let changed = s.update(changed).await.expect("update image");
    assert_eq!(changed.meta().generation, 2);

    // Update ignores status; UpdateStatus ignores spec.
    let mut with_status = changed.clone();
    if let Object::Pod(p) = &mut with_status {
        p.status.get_or_insert_with(Default::default).phase = "Running".into();
        p.spec.as_mut().expect("spec").containers[0].image = "nginx:9".into();
    }
    let after = s.update_status(with_status).await.expect("update status");
    let Object::Pod(p) = &after else {
        panic!("pod")
    };
    assert_eq!(p.status.as_ref().expect("status").phase, "Running");
    assert_eq!(
        p.spec.as_ref().expect("spec").containers[0].image,
        "nginx:1.19"
    );
    assert_eq!(after.meta().generation, 2);

    // An update that changes nothing writes nothing.
    let same = s.update(after.clone()).await.expect("no-op update");
    assert_eq!(same.meta().resource_version, after.meta().resource_version);

    // Patch (JSON merge patch).
    let patched = s
        .patch(
            Kind::Pod,
            "default",
            "web",
            r#"{"metadata":{"labels":{"tier":null,"x":"y"}}}"#,
            false,
        )
        .await
        .expect("patch");
    assert_eq!(
        patched.meta().labels.get("x").map(String::as_str),
        Some("y")
    );
    assert!(!patched.meta().labels.contains_key("tier"));

    s.delete(Kind::Pod, "default", "web", &DeleteOptions::default())
        .await
        .expect("delete");
    assert!(matches!(
        s.get(Kind::Pod, "default", "web"),
        Err(StoreError::NotFound { .. })
    ));
}

async fn conflicts_and_errors(h: Harness) {
    let s = &h.store;
    let a = s
        .create(configmap("default", "cfg"), false)
        .await
        .expect("create");
    match s.create(configmap("default", "cfg"), false).await {
        Err(StoreError::AlreadyExists { .. }) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let mut first = a.clone();
    first.meta_mut().labels.insert("a".into(), "1".into());
    s.update(first).await.expect("first writer wins");
    let mut stale = a.clone();
    stale.meta_mut().labels.insert("a".into(), "2".into());
    match s.update(stale).await {
        Err(e @ StoreError::Conflict { .. }) => {
            assert_eq!(e.code(), tonic::Code::Aborted);
            assert!(
                e.to_string().contains(&a.meta().resource_version),
                "names the stale version: {e}"
            );
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        s.get(Kind::ConfigMap, "default", "nope"),
        Err(StoreError::NotFound { .. })
    ));
    match s.create(configmap("missing-ns", "cfg"), false).await {
        Err(e @ StoreError::NotFound { .. }) => assert!(e.to_string().contains("missing-ns")),
        other => panic!("expected NotFound naming the namespace, got {other:?}"),
    }
    // Invalid objects are rejected and nothing is stored.
    let mut bad = pod("default", "bad", &[]);
    if let Object::Pod(p) = &mut bad {
        p.spec.as_mut().expect("spec").containers[0].image.clear();
    }
    match s.create(bad, false).await {
        Err(e @ StoreError::Invalid { .. }) => {
            assert!(e.to_string().contains("spec.containers[0].image"), "{e}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(s.get(Kind::Pod, "default", "bad").is_err());
    // generateName gets a random suffix.
    let mut g = configmap("default", "");
    g.meta_mut().generate_name = "gen-".into();
    let g = s.create(g, false).await.expect("generateName");
    assert!(
        g.name().starts_with("gen-") && g.name().len() == 9,
        "{}",
        g.name()
    );
    // A pod's spec is immutable apart from the fields Kubernetes lets change.
    let p = s
        .create(pod("default", "imm", &[]), false)
        .await
        .expect("create pod");
    let mut changed = p.clone();
    if let Object::Pod(x) = &mut changed {
        x.spec.as_mut().expect("spec").restart_policy = "Never".into();
    }
    match s.update(changed).await {
        Err(e @ StoreError::Invalid { .. }) => assert!(e.to_string().contains("spec"), "{e}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Deleting a system namespace is refused.
    assert!(matches!(
        s.delete(Kind::Namespace, "", "default", &DeleteOptions::default())
            .await,
        Err(StoreError::Forbidden(_))
    ));
}

async fn selectors_and_pagination(h: Harness) {
    let s = &h.store;
    s.create(namespace("other"), false).await.expect("ns");
    for i in 0..25 {
        let env = if i % 2 == 0 { "prod" } else { "dev" };
        let tier = ["a", "b", "c"][i % 3];
        s.create(
            pod(
                "default",
                &format!("p{i:02}"),
                &[("env", env), ("tier", tier)],
            ),
            false,
        )
        .await
        .expect("create");
    }
    s.create(pod("other", "x", &[("env", "prod")]), false)
        .await
        .expect("create");
    let list = |sel: &str, ns: Option<&str>| {
        let opts = ListOptions {
            namespace: ns.map(String::from),
            labels: LabelSelector::parse(sel).expect("selector"),
            ..Default::default()
        };
        s.list(Kind::Pod, &opts).expect("list").items.len()
    };
    assert_eq!(list("", None), 26);
    assert_eq!(list("", Some("default")), 25);
    assert_eq!(list("env=prod", Some("default")), 13);
    assert_eq!(list("env!=prod", None), 12);
    assert_eq!(list("tier in (a,b),env=prod", Some("default")), 9);
    assert_eq!(list("!tier", None), 1);

    let fs = ListOptions {
        fields: FieldSelector::parse("metadata.name=p03").expect("fields"),
        ..Default::default()
    };
    assert_eq!(s.list(Kind::Pod, &fs).expect("list").items.len(), 1);
    let bad = ListOptions {
        fields: FieldSelector::parse("spec.bogus=1").expect("parses"),
        ..Default::default()
    };
    assert!(matches!(
        s.list(Kind::Pod, &bad),
        Err(StoreError::BadRequest(_))
    ));

    // Pagination visits every item exactly once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let opts = ListOptions {
            limit: 7,
            continue_token: token.clone(),
            ..Default::default()
        };
        let page = s.list(Kind::Pod, &opts).expect("page");
        assert!(page.items.len() <= 7);
        seen.extend(
            page.items
                .iter()
                .map(|i| format!("{}/{}", i.namespace(), i.name())),
        );
        match page.continue_token {
            Some(t) => {
                assert!(page.remaining > 0);
                token = Some(t);
            }
            None => break,
        }
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(seen.len(), 26);
    assert_eq!(dedup.len(), 26);
}

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

async fn apply_creates_updates_and_keeps_controller_fields(h: Harness) {
    let s = &h.store;
    let m = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  labels: {a: \"1\", b: \"2\"}\ndata:\n  k: v\n";
    let (r, _) = s.apply(m, "default", false, false).await.expect("apply");
    assert_eq!(r[0].action, "created");
    let (r, _) = s.apply(m, "default", false, false).await.expect("re-apply");
    assert_eq!(r[0].action, "unchanged");
    // Something else adds an annotation; re-applying a changed manifest keeps it and drops
    // the label the manifest no longer has.
    s.patch(
        Kind::ConfigMap,
        "default",
        "app",
        r#"{"metadata":{"annotations":{"ctrl":"x"}}}"#,
        false,
    )
    .await
    .expect("patch");
    let m2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  labels: {a: \"1\"}\ndata:\n  k: w\n";
    let (r, _) = s
        .apply(m2, "default", false, false)
        .await
        .expect("apply changed");
    assert_eq!(r[0].action, "configured");
    let o = s.get(Kind::ConfigMap, "default", "app").expect("get");
    assert_eq!(
        o.meta().annotations.get("ctrl").map(String::as_str),
        Some("x")
    );
    assert!(!o.meta().labels.contains_key("b"));
    // create-only refuses an existing object.
    assert!(matches!(
        s.apply(m2, "default", true, false).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    // A multi-document manifest with one bad document stores nothing.
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\nspec:\n  containers:\n  - name: c\n";
    assert!(s.apply(bad, "default", false, false).await.is_err());
    assert!(s.get(Kind::ConfigMap, "default", "good").is_err());
}

macro_rules! backends {
    ($($test:ident $(($history:expr))?),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() { super::$test(open(false, backends!(@h $($history)?)).await).await }
            )*
        }
        mod redb {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() { super::$test(open(true, backends!(@h $($history)?)).await).await }
            )*
        }
        mod etcd {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() { super::$test(open_etcd(backends!(@h $($history)?)).await).await }
            )*
        }
    };
    (@h $h:expr) => { $h };
    (@h) => { 10_000 };
}

/// Hardening regressions: a patch may not rename its object (it used to retry its conflict
/// forever and wedge the server), a stale resourceVersion in a patch and a uid of another
/// incarnation in an update or patch are Conflicts, and a concurrent storm of patches without a
/// resourceVersion all land.
async fn patch_and_update_preconditions(h: Harness) {
    let s = &h.store;
    let fix = s
        .create(configmap("default", "fix"), false)
        .await
        .expect("create");
    s.create(configmap("default", "victim"), false)
        .await
        .expect("create");
    let renamed = tokio::time::timeout(
        Duration::from_secs(5),
        s.patch(
            Kind::ConfigMap,
            "default",
            "fix",
            r#"{"metadata":{"name":"victim"}}"#,
            false,
        ),
    )
    .await
    .expect("a renaming patch must answer at once");
    match renamed {
        Err(StoreError::BadRequest(m)) => assert!(
            m.contains("metadata.name") && m.contains("does not match the name on the URL"),
            "{m}"
        ),
        other => panic!("expected BadRequest, got {other:?}"),
    }
    match s
        .patch(
            Kind::ConfigMap,
            "default",
            "fix",
            r#"{"metadata":{"namespace":"kube-system"}}"#,
            false,
        )
        .await
    {
        Err(StoreError::BadRequest(m)) => assert!(m.contains("metadata.namespace"), "{m}"),
        other => panic!("expected BadRequest, got {other:?}"),
    }
    // The store still serves, and nothing changed.
    let got = s.get(Kind::ConfigMap, "default", "fix").expect("get");
    assert_eq!(rv(&got), rv(&fix));

    // A stale resourceVersion in a patch is a precondition that fails.
    s.patch(
        Kind::ConfigMap,
        "default",
        "fix",
        r#"{"data":{"a":"1"}}"#,
        false,
    )
    .await
    .expect("patch");
    let stale = format!(
        r#"{{"metadata":{{"resourceVersion":"{}"}},"data":{{"a":"2"}}}}"#,
        rv(&fix)
    );
    match s
        .patch(Kind::ConfigMap, "default", "fix", &stale, false)
        .await
    {
        Err(StoreError::Conflict { message, .. }) => {
            assert!(message.contains(&rv(&fix).to_string()), "{message}")
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // A current one passes.
    let cur = s.get(Kind::ConfigMap, "default", "fix").expect("get");
    let fresh = format!(
        r#"{{"metadata":{{"resourceVersion":"{}"}},"data":{{"a":"3"}}}}"#,
        rv(&cur)
    );
    s.patch(Kind::ConfigMap, "default", "fix", &fresh, false)
        .await
        .expect("patch with the current resourceVersion");

    // A uid of another incarnation: Conflict, in a patch and in an update.
    let other_uid = r#"{"metadata":{"uid":"00000000-0000-0000-0000-000000000000"}}"#;
    match s
        .patch(Kind::ConfigMap, "default", "fix", other_uid, false)
        .await
    {
        Err(StoreError::Conflict { message, .. }) => assert!(
            message.starts_with("Precondition failed: UID in precondition: 00000000"),
            "{message}"
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let mut upd = s.get(Kind::ConfigMap, "default", "fix").expect("get");
    upd.meta_mut().uid = "11111111-0000-0000-0000-000000000000".into();
    assert!(matches!(
        s.update(upd).await,
        Err(StoreError::Conflict { .. })
    ));

    // 32 concurrent patches without a resourceVersion: every one lands.
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.patch(
                Kind::ConfigMap,
                "default",
                "victim",
                &format!(r#"{{"data":{{"k{i}":"v"}}}}"#),
                false,
            )
            .await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("patch");
    }
    let Object::ConfigMap(v) = s.get(Kind::ConfigMap, "default", "victim").expect("get") else {
        panic!("kind")
    };
    assert_eq!(v.data.len(), 32);

    // Deeply nested patches are refused before parsing.
    let deep = format!("{}1{}", r#"{"a":"#.repeat(5000), "}".repeat(5000));
    assert!(matches!(
        s.patch(Kind::ConfigMap, "default", "victim", &deep, false)
            .await,
        Err(StoreError::BadRequest(_))
    ));
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

backends! {
    watch_from_the_future,
    patch_and_update_preconditions,
    crud_and_metadata,
    conflicts_and_errors,
    selectors_and_pagination,
    watch_resume_and_too_old,
    watch_too_old(5),
    finalizers,
    gc_background,
    gc_foreground,
    gc_orphan,
    namespace_deletion,
    apply_creates_updates_and_keeps_controller_fields,
}

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
    let b: Arc<dyn Backend> = loop {
        match EmbeddedBackend::open(opts.clone()) {
            Ok(b) => break Arc::new(b),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_unique_cluster_ips_and_node_ports() {
    let backend: Arc<dyn Backend> = Arc::new(EmbeddedBackend::memory());
    let s = Store::open(backend, StoreConfig::default())
        .await
        .expect("store");
    let svc = |name: &str, typ: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: {typ}\n  selector: {{app: x}}\n  ports:\n  - port: 80\n")
    };
    let mut ips = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for i in 0..20 {
        let (r, _) = s
            .apply(&svc(&format!("s{i}"), "NodePort"), "default", false, false)
            .await
            .expect("apply");
        let Object::Service(v) = &r[0].object else {
            panic!("service")
        };
        let spec = v.spec.as_ref().expect("spec");
        assert!(spec.cluster_ip.starts_with("10."), "{}", spec.cluster_ip);
        assert!((30000..=32767).contains(&spec.ports[0].node_port));
        assert!(ips.insert(spec.cluster_ip.clone()), "unique ClusterIP");
        assert!(ports.insert(spec.ports[0].node_port), "unique NodePort");
    }
    // Re-applying keeps what was allocated.
    let before = s.get(Kind::Service, "default", "s0").expect("get");
    let (r, _) = s
        .apply(&svc("s0", "NodePort"), "default", false, false)
        .await
        .expect("re-apply");
    assert_eq!(r[0].action, "unchanged");
    assert_eq!(r[0].object, before);
    // A requested NodePort that is taken is refused, naming the field.
    let Object::Service(v) = &before else {
        panic!("service")
    };
    let taken = v.spec.as_ref().expect("spec").ports[0].node_port;
    let m = format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: clash\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n    nodePort: {taken}\n");
    match s.apply(&m, "default", false, false).await {
        Err(e @ StoreError::Invalid { .. }) => {
            assert!(e.to_string().contains("spec.ports[0].nodePort"), "{e}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Headless stays headless.
    let h = "apiVersion: v1\nkind: Service\nmetadata:\n  name: h\nspec:\n  clusterIP: None\n  ports:\n  - port: 80\n";
    let (r, _) = s.apply(h, "default", false, false).await.expect("apply");
    let Object::Service(v) = &r[0].object else {
        panic!("service")
    };
    assert_eq!(v.spec.as_ref().expect("spec").cluster_ip, "None");
}
