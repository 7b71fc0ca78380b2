//! Lists at one revision on every backend: a paged list is one consistent snapshot (every page
//! at the first page's revision), Exact lists, and what is left when the revision is gone
//! (410 Expired, with a token that continues at the most recent revision for a paged list).
//! Requests go through `ListFreshness::parse` as the server's List handler does.
use std::sync::Arc;

use coxswain_api::selector::LabelSelector;
use coxswain_api::{Kind, Object};
use coxswain_store::store::{ListFreshness, ListOptions, ListResult};
use coxswain_store::{Store, StoreConfig, StoreError};

use crate::common::*;

/// A List request as the server takes it: resourceVersion, resourceVersionMatch, continue,
/// limit (in "default", optionally with a label selector).
async fn list(
    s: &Store,
    rv: &str,
    matching: &str,
    token: &str,
    limit: usize,
    labels: &str,
) -> Result<ListResult, StoreError> {
    let freshness = ListFreshness::parse(rv, matching, token, limit as i64)?;
    let opts = ListOptions {
        namespace: Some("default".into()),
        labels: LabelSelector::parse(labels).expect("selector"),
        limit,
        continue_token: Some(token.to_string()),
        ..Default::default()
    };
    s.list_fresh(Kind::ConfigMap, &opts, freshness).await
}

/// name=value of each item ("value": the "v" label), in order.
fn items(l: &ListResult) -> Vec<String> {
    l.items
        .iter()
        .map(|s| {
            let o = s.decode();
            let v = o.meta().labels.get("v").cloned().unwrap_or_default();
            format!("{}={v}", o.name())
        })
        .collect()
}

fn cm(name: &str, v: &str) -> Object {
    let mut o = configmap("default", name);
    o.meta_mut().labels.insert("v".into(), v.into());
    o.meta_mut().labels.insert("app".into(), "x".into());
    o
}

async fn put(s: &Store, name: &str, v: &str) -> i64 {
    let o = match s.get(Kind::ConfigMap, "default", name) {
        Ok(mut o) => {
            o.meta_mut().labels.insert("v".into(), v.into());
            s.update(o).await.expect("update")
        }
        Err(_) => s.create(cm(name, v), false).await.expect("create"),
    };
    rv(&o)
}

/// Ten ConfigMaps c0..c9 at "1"; the first page of 4 (a consistent read); then changes before
/// and after the page boundary. The pages after the first are read at the first's revision.
async fn changes_after_the_first_page(s: &Store, labels: &str) -> (ListResult, ListResult) {
    for i in 0..10 {
        put(s, &format!("c{i}"), "1").await;
    }
    let first = list(s, "", "", "", 4, labels).await.expect("first page");
    assert_eq!(items(&first), ["c0=1", "c1=1", "c2=1", "c3=1"]);
    assert_eq!(first.remaining, 6);
    // Changed after the first page: a listed one, unlisted ones, a deletion and new names
    // before and after the rest.
    put(s, "c1", "2").await;
    put(s, "c6", "2").await;
    put(s, "c4a", "new").await;
    put(s, "c99", "new").await;
    s.delete(Kind::ConfigMap, "default", "c5", &Default::default())
        .await
        .expect("delete");
    let token = first.continue_token.clone().expect("a continue token");
    let second = list(s, "", "", &token, 4, labels)
        .await
        .expect("second page");
    (first, second)
}

async fn paged_lists_are_one_snapshot(h: Harness) {
    let s = &h.store;
    let (first, second) = changes_after_the_first_page(s, "").await;
    assert_eq!(items(&second), ["c4=1", "c5=1", "c6=1", "c7=1"]);
    assert_eq!(second.revision, first.revision);
    assert_eq!(second.remaining, 2);
    let token = second.continue_token.clone().expect("a third page");
    // A resourceVersion "0" with a continue token reads at the token's revision too.
    let third = list(s, "0", "", &token, 4, "").await.expect("third page");
    assert_eq!(items(&third), ["c8=1", "c9=1"]);
    assert_eq!(third.revision, first.revision);
    assert!(third.continue_token.is_none());
    // Objects read at the snapshot keep their resourceVersion of then.
    assert!(second.items.iter().all(|o| o.revision <= first.revision));
    // A new list sees the changes.
    let now = list(s, "", "", "", 0, "").await.expect("now");
    assert_eq!(
        items(&now),
        [
            "c0=1", "c1=2", "c2=1", "c3=1", "c4=1", "c4a=new", "c6=2", "c7=1", "c8=1", "c9=1",
            "c99=new"
        ]
    );
    assert!(now.revision > first.revision);
    // A filtered paged list is the same snapshot, filtered.
    let page = list(s, "", "", "", 2, "v=new").await.expect("filtered");
    assert_eq!(items(&page), ["c4a=new", "c99=new"]);
}

async fn exact_lists_read_a_past_revision(h: Harness) {
    let s = &h.store;
    put(s, "a", "1").await;
    let then = put(s, "b", "1").await;
    put(s, "a", "2").await;
    s.delete(Kind::ConfigMap, "default", "b", &Default::default())
        .await
        .expect("delete");
    put(s, "c", "1").await;
    let exact = list(s, &then.to_string(), "Exact", "", 0, "")
        .await
        .expect("exact");
    assert_eq!(items(&exact), ["a=1", "b=1"]);
    assert_eq!(exact.revision, then);
    // Upstream's legacy exact match: a paged list at N with no match; its pages stay at N.
    let paged = list(s, &then.to_string(), "", "", 1, "")
        .await
        .expect("paged");
    assert_eq!(items(&paged), ["a=1"]);
    let token = paged.continue_token.clone().expect("token");
    let rest = list(s, "", "", &token, 1, "").await.expect("rest");
    assert_eq!(items(&rest), ["b=1"]);
    assert_eq!(rest.revision, then);
    // Not older than N: the current state.
    let newer = list(s, &then.to_string(), "NotOlderThan", "", 1, "")
        .await
        .expect("not older than");
    assert_eq!(items(&newer), ["a=2"]);
    assert!(newer.revision > then);
    // Exact with "0" is refused as upstream.
    let e = list(s, "0", "Exact", "", 0, "")
        .await
        .err()
        .expect("refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
}

/// With a watch history of 2 changes, on etcd: a page after the first whose revision the cache
/// no longer holds is read from etcd at that revision, and so is an Exact list.
async fn a_page_past_the_cache_history_is_read_from_etcd(h: Harness) {
    let s = &h.store;
    assert_eq!(s.backend_name(), "etcd");
    let (first, second) = changes_after_the_first_page(s, "app=x").await;
    assert_eq!(items(&second), ["c4=1", "c5=1", "c6=1", "c7=1"]);
    assert_eq!(second.revision, first.revision);
    let exact = list(s, &first.revision.to_string(), "Exact", "", 0, "")
        .await
        .expect("exact from etcd");
    assert_eq!(exact.items.len(), 10);
    assert_eq!(exact.revision, first.revision);
}

/// The embedded backends with a watch history of 2: past it, a page is Expired with upstream's
/// message and a token that continues at the most recent revision; an Exact list is Expired.
async fn expired_past_the_embedded_history(s: &Store) {
    for i in 0..10 {
        put(s, &format!("c{i}"), "1").await;
    }
    let first = list(s, "", "", "", 4, "").await.expect("first page");
    let at = first.revision;
    for i in 0..3 {
        put(s, &format!("c{}", 7 + i), "2").await;
    }
    s.delete(Kind::ConfigMap, "default", "c5", &Default::default())
        .await
        .expect("delete");
    let token = first.continue_token.clone().expect("token");
    let e = list(s, "", "", &token, 4, "").await.err().expect("expired");
    let StoreError::Expired {
        message,
        continue_token: Some(latest),
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(message.starts_with("The provided continue parameter is too old"));
    assert_eq!(e.code(), tonic::Code::OutOfRange);
    // The hint continues after c3 at the most recent revision (inconsistent, as upstream says).
    let rest = list(s, "", "", latest, 0, "").await.expect("rest");
    assert_eq!(items(&rest), ["c4=1", "c6=1", "c7=2", "c8=2", "c9=2"]);
    assert!(rest.revision > at);
    let e = list(s, &at.to_string(), "Exact", "", 0, "")
        .await
        .err()
        .expect("expired");
    assert!(
        matches!(&e, StoreError::Expired { message, continue_token: None }
            if message == "The resourceVersion for the provided list is too old."),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_expired_past_the_history() {
    expired_past_the_embedded_history(&open(false, 2).await.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_expired_past_the_history() {
    expired_past_the_embedded_history(&open(true, 2).await.store).await;
}

/// etcd compacted past the first page's revision, and the cache's history too: Expired, and the
/// token it hands out continues at the most recent revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_compacted_past_the_first_page_is_expired() {
    let (etcd, b) = etcd_backend("/paging").await;
    let config = StoreConfig {
        watch_history: 2,
        ..Default::default()
    };
    let s = Store::open(Arc::new(b), config).await.expect("open store");
    for i in 0..6 {
        put(&s, &format!("c{i}"), "1").await;
    }
    let first = list(&s, "", "", "", 2, "").await.expect("first page");
    let mut last = 0;
    for i in 0..3 {
        last = put(&s, &format!("c{i}"), "2").await;
    }
    let etcd = tokio::task::spawn_blocking(move || {
        etcd.ctl(&["compact", &last.to_string()])
            .expect("etcdctl compact");
        etcd
    })
    .await
    .expect("join");
    let token = first.continue_token.clone().expect("token");
    let e = list(&s, "", "", &token, 2, "")
        .await
        .err()
        .expect("expired");
    let StoreError::Expired {
        continue_token: Some(latest),
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    let rest = list(&s, "", "", latest, 0, "").await.expect("rest");
    assert_eq!(items(&rest), ["c2=2", "c3=1", "c4=1", "c5=1"]);
    let e = list(&s, &first.revision.to_string(), "Exact", "", 0, "")
        .await
        .err()
        .expect("expired");
    assert!(
        matches!(
            e,
            StoreError::Expired {
                continue_token: None,
                ..
            }
        ),
        "{e:?}"
    );
    drop(etcd);
}

backends!(
    paged_lists_are_one_snapshot,
    exact_lists_read_a_past_revision,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_a_page_past_the_cache_history_is_read_from_etcd() {
    a_page_past_the_cache_history_is_read_from_etcd(open_etcd(2).await).await
}

/// With encryption at rest on etcd, a page read from etcd at a past revision is decrypted as
/// the cache's objects are (EncryptedBackend forwards range_at).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_encrypted_a_page_past_the_cache_history_is_decrypted() {
    use coxswain_store::encryption::{EncryptedBackend, EncryptionConfig};
    let (etcd, b) = etcd_backend("/paging-enc").await;
    let config = EncryptionConfig::parse(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [configmaps]\n  providers:\n  - aescbc: {keys: [{name: k1, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}\n",
    )
    .expect("encryption config");
    let backend = Arc::new(EncryptedBackend::new(Arc::new(b), config));
    let s = Store::open(
        backend,
        StoreConfig {
            watch_history: 2,
            ..Default::default()
        },
    )
    .await
    .expect("open store");
    let (first, second) = changes_after_the_first_page(&s, "").await;
    assert_eq!(items(&second), ["c4=1", "c5=1", "c6=1", "c7=1"]);
    assert_eq!(second.revision, first.revision);
    // Stored encrypted.
    let raw = etcd
        .ctl(&[
            "get",
            "/paging-enc/configmaps/default/c4",
            "--print-value-only",
        ])
        .expect("etcdctl get");
    assert!(raw.starts_with("k8s:enc:aescbc:v1:k1:"), "{raw}");
}

/// The same past the cache's history with no selector: each page read from etcd is `limit` + 1
/// keys, and remainingItemCount comes from etcd's count of the rest at the revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_an_unfiltered_page_past_the_cache_history_is_read_from_etcd() {
    let h = open_etcd(2).await;
    let s = &h.store;
    let (first, second) = changes_after_the_first_page(s, "").await;
    assert_eq!(items(&second), ["c4=1", "c5=1", "c6=1", "c7=1"]);
    assert_eq!(second.revision, first.revision);
    assert_eq!(second.remaining, 2);
    let token = second.continue_token.clone().expect("a third page");
    let third = list(s, "", "", &token, 4, "").await.expect("third page");
    assert_eq!(items(&third), ["c8=1", "c9=1"]);
    assert!(third.continue_token.is_none());
    assert_eq!(third.revision, first.revision);
}
