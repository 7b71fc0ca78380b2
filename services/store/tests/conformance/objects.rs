//! Objects on every backend: CRUD and metadata, conflicts and errors, selectors and pagination,
//! patch and update preconditions, server-side apply; and Service IP and port allocation.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::selector::{FieldSelector, LabelSelector};
use coxswain_api::{Kind, Object};
use coxswain_store::backend::{Backend, EmbeddedBackend};
use coxswain_store::store::{DeleteOptions, ListOptions};
use coxswain_store::{Store, StoreConfig, StoreError};

use crate::common::*;

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

backends! {
    patch_and_update_preconditions,
    crud_and_metadata,
    conflicts_and_errors,
    selectors_and_pagination,
    apply_creates_updates_and_keeps_controller_fields,
}
