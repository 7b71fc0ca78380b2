//! A paged list is one snapshot across store replicas on one etcd (issue 18): the continue
//! token carries the first page's revision, so a page asked of another replica (a client that
//! failed over, or a balancer) is read at that revision, not at that replica's "now"; so is a
//! `resourceVersionMatch=Exact` list. Real processes, real etcd, the List RPC as clients send it.
use coxswain_api::v1::{ListRequest, ListResponse};
use coxswain_api::Object;
use coxswain_client::{Client, DeleteParams, Resource};
use coxswain_test_support::etcd::Etcd;
use coxswain_test_support::{configmap, Coxswain};

/// The names in a page.
fn names(r: &ListResponse) -> Vec<String> {
    r.items
        .iter()
        .map(|a| Object::from_any(a).expect("decodes").name().to_string())
        .collect()
}

async fn list(
    store: &Coxswain,
    limit: i32,
    token: &str,
    rv: &str,
    matching: &str,
) -> Result<ListResponse, tonic::Status> {
    let mut c = store.client().await.expect("client");
    c.list(ListRequest {
        kind: "ConfigMap".into(),
        namespace: "default".into(),
        label_selector: "paged=yes".into(),
        limit,
        r#continue: token.into(),
        resource_version: rv.into(),
        resource_version_match: matching.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_list_continues_on_another_replica_at_the_first_pages_revision() {
    let etcd = Etcd::start().expect("start etcd");
    let a = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store a");
    let b = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store b");
    let writer = Client::connect(&a.url()).await.expect("client of a");
    let paged = |name: &str| {
        let mut c = configmap(name);
        c.metadata_mut().labels.insert("paged".into(), "yes".into());
        c
    };
    for i in 0..6 {
        writer
            .create(&paged(&format!("page-{i}")))
            .await
            .expect("create");
    }
    let first = list(&a, 2, "", "", "").await.expect("first page through a");
    assert_eq!(names(&first), ["page-0", "page-1"]);
    assert!(!first.r#continue.is_empty());
    // Through a, after the first page: one not yet listed goes, a new one sorts among the rest.
    writer
        .delete::<coxswain_api::v1::ConfigMap>("default", "page-2", &DeleteParams::default())
        .await
        .expect("delete");
    writer.create(&paged("page-2a")).await.expect("create");
    let after = writer
        .create(&paged("page-9"))
        .await
        .expect("create")
        .metadata()
        .resource_version
        .clone();

    // The rest through b, which has seen those writes (or waits for them): the first page's
    // state, at its revision.
    let second = list(&b, 2, &first.r#continue, "", "")
        .await
        .expect("second page through b");
    assert_eq!(names(&second), ["page-2", "page-3"]);
    assert_eq!(second.resource_version, first.resource_version);
    assert_eq!(second.remaining_item_count, 2);
    let third = list(&b, 2, &second.r#continue, "", "")
        .await
        .expect("third page through b");
    assert_eq!(names(&third), ["page-4", "page-5"]);
    assert!(third.r#continue.is_empty());

    // Exact at the first page's revision, through b; and now (not older than the last write).
    let exact = list(&b, 0, "", &first.resource_version, "Exact")
        .await
        .expect("exact through b");
    assert_eq!(
        names(&exact),
        ["page-0", "page-1", "page-2", "page-3", "page-4", "page-5"]
    );
    let now = list(&b, 0, "", &after, "NotOlderThan")
        .await
        .expect("now through b");
    assert_eq!(
        names(&now),
        ["page-0", "page-1", "page-2a", "page-3", "page-4", "page-5", "page-9"]
    );
    // Upstream's validation, through the server.
    let e = list(&b, 0, "", "0", "Exact").await.expect_err("refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("resourceVersionMatch"),
        "{}",
        e.message()
    );
    let e = list(&b, 2, "not-a-token", "", "")
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().starts_with("continue: Invalid value"),
        "{}",
        e.message()
    );
}
