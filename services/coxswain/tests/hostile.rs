//! Requests a hostile or careless client can send to the real binary: each gets a clear error,
//! stores nothing, and never stops the server from answering everybody else.
use std::time::{Duration, Instant};

use coxswain_api::v1::{ApplyRequest, GetRequest, PatchRequest};
use coxswain_test_support::Coxswain;

fn configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

/// The exact reproduction of the wedge: a merge patch renaming `fix` to the existing `victim`
/// used to retry its conflict forever at 100% CPU. Now it is INVALID_ARGUMENT naming the field,
/// and the server keeps answering.
#[tokio::test]
async fn a_patch_renaming_its_object_is_rejected_and_wedges_nothing() {
    let c = Coxswain::start().expect("start coxswain");
    let mut client = c.client().await.expect("client");
    for name in ["fix", "victim"] {
        client
            .apply(ApplyRequest {
                manifest: configmap(name),
                namespace: "default".into(),
                ..Default::default()
            })
            .await
            .expect("apply");
    }
    let body = r#"{"kind":"cm","namespace":"default","name":"fix","patch":"{\"metadata\":{\"name\":\"victim\"}}"}"#;
    let (ok, out, err) = c.grpcurl_admin(&[
        "-max-time",
        "10",
        "-d",
        body,
        &c.grpc,
        "coxswain.v1.ObjectStore/Patch",
    ]);
    assert!(!ok, "{out}");
    assert!(err.contains("InvalidArgument"), "{err}");
    assert!(err.contains("metadata.name"), "{err}");
    // The namespace too.
    let err = client
        .patch(PatchRequest {
            kind: "cm".into(),
            namespace: "default".into(),
            name: "fix".into(),
            patch: r#"{"metadata":{"namespace":"kube-system"}}"#.into(),
            ..Default::default()
        })
        .await
        .expect_err("renamespacing patch");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("metadata.namespace"), "{err}");
    // Everybody else is still served, and both objects are as they were.
    let (ok, out, err) =
        c.grpcurl_admin(&["-max-time", "5", &c.grpc, "grpc.health.v1.Health/Check"]);
    assert!(ok && out.contains("SERVING"), "{out}{err}");
    for name in ["fix", "victim"] {
        client
            .get(GetRequest {
                kind: "cm".into(),
                namespace: "default".into(),
                name: name.into(),
            })
            .await
            .expect("get");
    }
}

/// A manifest nested 100,000 levels deep is refused at once, before the YAML parser sees it,
/// and a request over Kubernetes' 3 MiB body limit is refused by the transport; the server
/// answers other clients meanwhile and afterwards.
#[tokio::test]
async fn deep_and_oversized_requests_are_refused_without_stalling_others() {
    let c = Coxswain::start().expect("start coxswain");
    let mut client = c.client().await.expect("client");
    let depth = 100_000;
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  k: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let mut senders = Vec::new();
    for _ in 0..4 {
        let mut cl = client.clone();
        let manifest = deep.clone();
        senders.push(tokio::spawn(async move {
            cl.apply(ApplyRequest {
                manifest,
                namespace: "default".into(),
                ..Default::default()
            })
            .await
        }));
    }
    // Health stays answered while the deep manifests are being refused.
    let mut health = c.client().await.expect("client");
    let start = Instant::now();
    health
        .get(GetRequest {
            kind: "ns".into(),
            name: "default".into(),
            ..Default::default()
        })
        .await
        .expect("get while hostile requests are in flight");
    assert!(start.elapsed() < Duration::from_secs(5));
    for s in senders {
        let err = s.await.expect("join").expect_err("deep manifest");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
        assert!(err.message().contains("nests deeper than"), "{err}");
    }
    // Over 3 MiB: refused by the transport, nothing stored.
    let big = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  k: \"{}\"\n",
        "x".repeat(4 << 20)
    );
    let err = client
        .apply(ApplyRequest {
            manifest: big,
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect_err("oversized request");
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err}");
    for name in ["deep", "big"] {
        let err = client
            .get(GetRequest {
                kind: "cm".into(),
                namespace: "default".into(),
                name: name.into(),
            })
            .await
            .expect_err("nothing stored");
        assert_eq!(err.code(), tonic::Code::NotFound);
    }
    client
        .apply(ApplyRequest {
            manifest: configmap("after"),
            namespace: "default".into(),
            ..Default::default()
        })
        .await
        .expect("the server still serves");
}

/// A 200 KB selector is refused with a message short enough for any client's header limit.
#[tokio::test]
async fn error_messages_do_not_echo_huge_input() {
    let c = Coxswain::start().expect("start coxswain");
    let mut client = c.client().await.expect("client");
    let selector = format!("a in ({}", "x,".repeat(100_000));
    let err = client
        .list(coxswain_api::v1::ListRequest {
            kind: "pods".into(),
            label_selector: selector,
            ..Default::default()
        })
        .await
        .expect_err("bad selector");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().starts_with("labelSelector: "), "{err}");
    assert!(err.message().len() < 1024, "{} bytes", err.message().len());
    let err = client
        .get(GetRequest {
            kind: "k".repeat(200_000),
            name: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown kind");
    assert!(err.message().len() < 1024, "{} bytes", err.message().len());
}
