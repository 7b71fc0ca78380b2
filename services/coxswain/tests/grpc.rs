//! The real `coxswain` binary over real gRPC: reflection and health through the real grpcurl,
//! Apply/Get/List/Watch, metrics, graceful shutdown.
use std::process::Command;
use std::time::Duration;

use coxswain_api::v1::{ApplyRequest, GetRequest, ListRequest, WatchRequest};
use coxswain_api::{Kind, Object};
use coxswain_test_support::Coxswain;

#[test]
fn grpcurl_lists_and_describes_services_by_reflection() {
    let c = Coxswain::start().expect("start coxswain");
    let (ok, out, err) = c.grpcurl_admin(&[&c.grpc, "list"]);
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l == "coxswain.v1.ObjectStore"), "{out}");
    assert!(out.lines().any(|l| l == "grpc.health.v1.Health"), "{out}");
    let (ok, out, err) = c.grpcurl_admin(&[&c.grpc, "describe", "coxswain.v1.ObjectStore"]);
    assert!(ok, "{err}");
    for rpc in [
        "Apply",
        "Create",
        "Get",
        "List",
        "Update",
        "UpdateStatus",
        "Patch",
        "Delete",
        "Watch",
    ] {
        assert!(
            out.contains(&format!("rpc {rpc} ")),
            "describe lists {rpc}: {out}"
        );
    }
    let (ok, out, err) = c.grpcurl_admin(&[&c.grpc, "describe", "coxswain.v1.PodSpec"]);
    assert!(ok, "{err}");
    assert!(out.contains("node_selector"), "{out}");
    let (ok, out, err) = c.grpcurl_admin(&[&c.grpc, "grpc.health.v1.Health/Check"]);
    assert!(ok, "{err}");
    assert!(out.contains("SERVING"), "{out}");
}

#[test]
fn grpcurl_apply_get_list_and_errors() {
    let c = Coxswain::start().expect("start coxswain");
    let manifest = std::fs::read_to_string(
        coxswain_test_support::scenarios_dir().join("38-replicaset-mayikt-rp.yaml"),
    )
    .expect("scenario manifest");
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mayikt-sit\n---\n";
    let body = serde_json::json!({ "manifest": format!("{ns}{manifest}") }).to_string();
    let (ok, out, err) = c.grpcurl_admin(&["-d", &body, &c.grpc, "coxswain.v1.ObjectStore/Apply"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["kind"], "ReplicaSet");
    assert_eq!(results[1]["action"], "created");
    // The object comes back with its fields by reflection, in Kubernetes' JSON names.
    assert_eq!(
        results[1]["object"]["@type"],
        "type.googleapis.com/coxswain.v1.ReplicaSet"
    );
    assert_eq!(
        results[1]["object"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.17.9"
    );

    let get = r#"{"kind":"rs","namespace":"mayikt-sit","name":"mayikt-rp"}"#;
    let (ok, out, err) = c.grpcurl_admin(&["-d", get, &c.grpc, "coxswain.v1.ObjectStore/Get"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["object"]["spec"]["replicas"], 3, "{out}");

    let list = r#"{"kind":"namespaces"}"#;
    let (ok, out, err) = c.grpcurl_admin(&["-d", list, &c.grpc, "coxswain.v1.ObjectStore/List"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let names: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    for ns in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "mayikt-sit",
    ] {
        assert!(names.contains(&ns), "{ns} listed: {out}");
    }

    let missing = r#"{"kind":"pods","namespace":"default","name":"nope"}"#;
    let (ok, _, err) = c.grpcurl_admin(&["-d", missing, &c.grpc, "coxswain.v1.ObjectStore/Get"]);
    assert!(!ok);
    assert!(
        err.contains("NotFound") && err.contains("pods \"nope\" not found"),
        "{err}"
    );
    // The ErrorInfo in the status details decodes through reflection (google.rpc's descriptors
    // are registered), so grpcurl prints Kubernetes' StatusReason.
    assert!(
        err.contains("type.googleapis.com/google.rpc.ErrorInfo")
            && err.contains(r#""reason":"NotFound""#),
        "{err}"
    );

    let invalid = std::fs::read_to_string(
        coxswain_test_support::scenarios_dir()
            .join("invalid/02-pod-liveness-initialdelaysecands.yaml"),
    )
    .expect("invalid manifest");
    let body = serde_json::json!({ "manifest": invalid }).to_string();
    let (ok, _, err) = c.grpcurl_admin(&["-d", &body, &c.grpc, "coxswain.v1.ObjectStore/Apply"]);
    assert!(!ok);
    assert!(err.contains("InvalidArgument"), "{err}");
    assert!(
        err.contains("spec.containers[0].livenessProbe.initialDelaySecands"),
        "{err}"
    );
}

#[test]
fn grpcurl_watch_streams_events() {
    let c = Coxswain::start().expect("start coxswain");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let rv = rt.block_on(async {
        let mut client = c.client().await.expect("client");
        client
            .list(ListRequest {
                kind: "ConfigMap".into(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .resource_version
    });
    let req = format!(r#"{{"kind":"cm","namespace":"default","resource_version":"{rv}"}}"#);
    let child = Command::new("grpcurl")
        .args(c.grpcurl_flags())
        .args([
            "-max-time",
            "3",
            "-d",
            &req,
            &c.grpc,
            "coxswain.v1.ObjectStore/Watch",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("grpcurl");
    rt.block_on(async {
        let mut client = c.client().await.expect("client");
        // Give grpcurl time to connect; events after rv are delivered regardless of when the
        // watch opens, since it resumes from rv.
        for i in 0..3 {
            let m = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w{i}\ndata:\n  k: v\n"
            );
            client
                .apply(ApplyRequest {
                    manifest: m,
                    ..Default::default()
                })
                .await
                .expect("apply");
        }
    });
    let out = child.wait_with_output().expect("grpcurl output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // grpcurl prints one JSON document per message.
    let events: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("json stream");
    let names: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or(""),
                e["object"]["metadata"]["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![("ADDED", "w0"), ("ADDED", "w1"), ("ADDED", "w2")],
        "{stdout}"
    );
}

#[tokio::test]
async fn typed_client_watch_and_metrics() {
    let c = Coxswain::start().expect("start coxswain");
    let mut client = c.client().await.expect("client");
    let rv = client
        .list(ListRequest {
            kind: "Pod".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .resource_version;
    let mut stream = client
        .watch(WatchRequest {
            kind: "Pod".into(),
            resource_version: rv,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
    client
        .apply(ApplyRequest {
            manifest: pod.into(),
            ..Default::default()
        })
        .await
        .expect("apply");
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("event in time")
        .expect("ok")
        .expect("some");
    assert_eq!(ev.r#type, "ADDED");
    let obj = Object::from_any(ev.object.as_ref().expect("object")).expect("decodes");
    assert_eq!((obj.kind(), obj.name()), (Kind::Pod, "p"));
    // Defaults were applied by the server.
    let Object::Pod(p) = &obj else { panic!("pod") };
    let spec = p.spec.as_ref().expect("spec");
    assert_eq!(spec.restart_policy, "Always");
    assert_eq!(spec.scheduler_name, "default-scheduler");
    let got = client
        .get(GetRequest {
            kind: "po".into(),
            namespace: "default".into(),
            name: "p".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        Object::from_any(got.object.as_ref().expect("object"))
            .expect("decodes")
            .meta()
            .resource_version,
        ev.resource_version
    );

    let body = reqwest_free_get(&c.metrics, "/metrics");
    assert!(
        body.contains(
            "apiserver_request_total{verb=\"APPLY\",resource=\"pods\",subresource=\"\",code=\"200\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "apiserver_request_total{verb=\"GET\",resource=\"pods\",subresource=\"\",code=\"200\"}"
        ),
        "{body}"
    );
    assert!(
        body.contains("apiserver_request_duration_seconds_bucket{verb=\"GET\",resource=\"pods\""),
        "{body}"
    );
    assert!(
        body.contains("apiserver_storage_objects{resource=\"pods\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("apiserver_registered_watchers{resource=\"pods\"}"),
        "{body}"
    );
    assert!(body.contains("coxswain_store_revision"), "{body}");
}

/// GET over a plain TCP socket (no HTTP client dependency).
fn reqwest_free_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect metrics");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn sigterm_shuts_down_gracefully_and_data_survives() {
    let mut c = Coxswain::start().expect("start coxswain");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client = c.client().await.expect("client");
        let m = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\ndata:\n  k: v\n";
        client
            .apply(ApplyRequest {
                manifest: m.into(),
                ..Default::default()
            })
            .await
            .expect("apply");
    });
    assert!(
        c.terminate().expect("stops"),
        "exit status 0 after SIGTERM; log:\n{}",
        c.log()
    );
    c.restart().expect("restart");
    rt.block_on(async {
        let mut client = c.client().await.expect("client");
        client
            .get(GetRequest {
                kind: "cm".into(),
                namespace: "default".into(),
                name: "kept".into(),
            })
            .await
            .expect("the ConfigMap survived the restart");
    });
}
