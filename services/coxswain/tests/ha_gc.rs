//! The garbage collector and the namespace deleter with several store replicas (issue 18 §2):
//! every `coxswain store` on one etcd runs both, so they run concurrently on purpose. They are
//! safe that way because each step is level-triggered and guarded in etcd:
//! - a dependent is deleted with its uid as a precondition, and only once all its owners'
//!   uids are absent from the replica's cache; the cache is a prefix of etcd's history and a
//!   uid never comes back, so an owner seen absent stays absent;
//! - finalizers and ownerReferences are removed by compare-and-swap updates;
//! - a create is refused once its replica has seen the namespace terminating (upstream's
//!   NamespaceLifecycle admission), and the deleter waits `--namespace-deletion-grace` (5 s,
//!   upstream's namespace controller) after it saw the mark before it lists, so every create
//!   admitted before the mark, through either replica, has landed and is deleted before the
//!   `kubernetes` finalizer is removed.
//!
//! Here two replicas collect owners deleted through the other (background, foreground,
//! orphan), and a namespace is deleted through one while eight writers create in it through
//! both: the namespace goes, and etcd holds nothing of it afterwards.
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1::{ConfigMap, Namespace, ObjectMeta, OwnerReference};
use coxswain_client::{Client, DeleteParams, ListParams};
use coxswain_test_support::etcd::Etcd;
use coxswain_test_support::{wait_for, Coxswain};

const T: Duration = Duration::from_secs(60);
const DEPENDENTS: usize = 30;

fn configmap(ns: &str, name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    let owner_references = owner
        .and_then(|o| o.metadata.as_ref())
        .map(|m| {
            vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: m.name.clone(),
                uid: m.uid.clone(),
                ..Default::default()
            }]
        })
        .unwrap_or_default();
    ConfigMap {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: ns.into(),
            owner_references,
            ..Default::default()
        }),
        data: [("k".to_string(), name.to_string())].into_iter().collect(),
        ..Default::default()
    }
}

async fn names(client: &Client, ns: &str) -> Option<BTreeSet<String>> {
    let (items, _) = client
        .list::<ConfigMap>(ns, &ListParams::default())
        .await
        .ok()?;
    Some(
        items
            .into_iter()
            .filter_map(|c| c.metadata.map(|m| m.name))
            .collect(),
    )
}

/// Owner `name` with DEPENDENTS dependents, made through `via`; returns the dependents' names.
async fn family(via: &Client, name: &str) -> Vec<String> {
    let owner = via
        .create(&configmap("default", name, None))
        .await
        .expect("create owner");
    let mut deps = Vec::new();
    for i in 0..DEPENDENTS {
        let d = format!("{name}-dep-{i}");
        via.create(&configmap("default", &d, Some(&owner)))
            .await
            .expect("create dependent");
        deps.push(d);
    }
    deps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_store_replicas_collect_garbage_and_delete_namespaces_together() {
    let etcd = Etcd::start().expect("start etcd");
    let a = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store a");
    let b = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store b");
    let ca = Client::connect(&a.url()).await.expect("client a");
    let cb = Client::connect(&b.url()).await.expect("client b");

    // Background: the owner made through a, deleted through b; both collectors race to delete
    // the dependents, each delete carries the dependent's uid.
    let deps = family(&ca, "bg").await;
    cb.delete::<ConfigMap>("default", "bg", &DeleteParams::background())
        .await
        .expect("delete bg");
    wait_for("bg's dependents collected", T, || async {
        let left = names(&ca, "default").await?;
        deps.iter().all(|d| !left.contains(d)).then_some(())
    })
    .await
    .expect("background collection");

    // Foreground: the owner stays until its dependents are gone, then goes.
    let deps = family(&cb, "fg").await;
    ca.delete::<ConfigMap>("default", "fg", &DeleteParams::foreground())
        .await
        .expect("delete fg");
    wait_for("fg and its dependents gone", T, || async {
        let left = names(&cb, "default").await?;
        (!left.contains("fg") && deps.iter().all(|d| !left.contains(d))).then_some(())
    })
    .await
    .expect("foreground collection");

    // Orphan: the dependents stay, without the reference.
    let deps = family(&ca, "or").await;
    cb.delete::<ConfigMap>("default", "or", &DeleteParams::orphan())
        .await
        .expect("delete or");
    wait_for("or gone, its dependents orphaned", T, || async {
        let (items, _) = ca
            .list::<ConfigMap>("default", &ListParams::default())
            .await
            .ok()?;
        let mut orphans = 0;
        for c in &items {
            let m = c.metadata.as_ref()?;
            if m.name == "or" {
                return None;
            }
            if deps.contains(&m.name) && m.owner_references.is_empty() {
                orphans += 1;
            }
        }
        (orphans == DEPENDENTS).then_some(())
    })
    .await
    .expect("orphaning");

    // A namespace deleted through a while eight writers create in it through both replicas.
    ca.create(&Namespace {
        metadata: Some(ObjectMeta {
            name: "doomed".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("create namespace");
    wait_for("doomed seen by b", T, || async {
        cb.get::<Namespace>("", "doomed").await.ok()?.map(|_| ())
    })
    .await
    .expect("namespace on b");
    let acked = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let client = if w % 2 == 0 { ca.clone() } else { cb.clone() };
        let acked = acked.clone();
        writers.spawn(async move {
            // Create until refused: the namespace is terminating or gone (bounded).
            for i in 0..2000 {
                match client
                    .create(&configmap("doomed", &format!("w{w}-{i}"), None))
                    .await
                {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) if e.is_not_found() || e.to_string().contains("being terminated") => {
                        return;
                    }
                    Err(e) => panic!("writer {w}: {e}"),
                }
            }
        });
    }
    wait_for("writes landing in doomed", T, || {
        let n = acked.load(Ordering::SeqCst);
        async move { (n >= 40).then_some(()) }
    })
    .await
    .expect("writes before the delete");
    ca.delete::<Namespace>("", "doomed", &DeleteParams::background())
        .await
        .expect("delete namespace");
    while let Some(r) = writers.join_next().await {
        r.expect("writer");
    }
    wait_for("doomed gone from both replicas", T, || async {
        let on_a = ca.get::<Namespace>("", "doomed").await.ok()?;
        let on_b = cb.get::<Namespace>("", "doomed").await.ok()?;
        (on_a.is_none() && on_b.is_none()).then_some(())
    })
    .await
    .expect("namespace deleted");
    // Nothing of it is left in etcd: no object was created after the deleter's last look.
    let left = etcd
        .ctl(&["get", "/registry/", "--prefix", "--keys-only"])
        .expect("etcdctl");
    let stray: Vec<&str> = left.lines().filter(|k| k.contains("/doomed/")).collect();
    assert!(
        stray.is_empty(),
        "left in etcd after the namespace went: {stray:?}"
    );
    assert!(acked.load(Ordering::SeqCst) >= 40);
}
