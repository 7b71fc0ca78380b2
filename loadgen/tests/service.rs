//! `svc/NAME` targets resolved through a real `coxswain store`: an unknown Service is a clear
//! error with nothing sent; a LoadBalancer ingress IP and a nodePort on a Ready node's
//! InternalIP carry the load to a real server on loopback.
mod common;

use std::sync::atomic::Ordering;

use common::*;
use coxswain_api::v1::ApplyRequest;
use coxswain_client::{v1, Client};
use coxswain_test_support::Coxswain;

async fn apply(c: &Client, manifest: &str) {
    c.raw()
        .apply(ApplyRequest {
            manifest: manifest.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("apply: {e}\n{manifest}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_service_is_refused_before_sending() {
    let cx = Coxswain::start().unwrap();
    let url = cx.url();
    let o = loadgen(&[
        "svc/nope",
        "-n",
        "mayikt-sit",
        "--server",
        &url,
        "--requests",
        "5",
    ])
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("services \"nope\" not found in namespace \"mayikt-sit\""),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("nothing was sent"), "{}", o.stderr);
    // No store there at all.
    let o = loadgen(&[
        "svc/nope",
        "--server",
        &format!("http://127.0.0.1:{}", closed_port()),
    ])
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("connecting to the store"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_addresses_carry_the_load() {
    let cx = Coxswain::start().unwrap();
    let url = cx.url();
    let c = Client::connect(&url).await.unwrap();
    let s = server().await;
    let port = s.addr.port();
    apply(
        &c,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: lg\n",
    )
    .await;
    apply(
        &c,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: lg\nspec:\n  type: LoadBalancer\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: {port}\n    targetPort: 80\n"
        ),
    )
    .await;
    // No ingress yet: a clear error.
    let o = loadgen(&["svc/web", "-n", "lg", "--via", "lb", "--server", &url]).await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("no LoadBalancer ingress IP yet"),
        "{}",
        o.stderr
    );
    let _: v1::Service = c
        .patch_status(
            "lg",
            "web",
            &serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}),
        )
        .await
        .unwrap();
    let o = loadgen(&[
        "svc/web",
        "-n",
        "lg",
        "--via",
        "lb",
        "--port",
        "http",
        "--path",
        "/delay/1",
        "--server",
        &url,
        "--requests",
        "30",
        "-c",
        "3",
        "-o",
        "json",
        "--quiet",
    ])
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let j = o.json();
    assert_eq!(j["status"]["200"], 30, "{j}");
    assert_eq!(
        j["target"],
        format!("svc/web -n lg → http://127.0.0.1:{port}/delay/1")
    );
    assert_eq!(s.hits.load(Ordering::SeqCst), 30);

    // A nodePort on a Ready node's InternalIP: the server takes a port in the nodePort range.
    let (l, node_port) = (30000..32768u16)
        .find_map(|p| {
            std::net::TcpListener::bind(("127.0.0.1", p))
                .ok()
                .map(|l| (l, p))
        })
        .expect("a free port in 30000-32767");
    drop(l);
    let s2 = server_on(node_port).await;
    apply(
        &c,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: np\n  namespace: lg\nspec:\n  type: NodePort\n  selector:\n    app: web\n  ports:\n  - port: 80\n    nodePort: {node_port}\n"
        ),
    )
    .await;
    apply(&c, "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n").await;
    let _: v1::Node = c
        .patch_status(
            "",
            "n1",
            &serde_json::json!({"status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "conditions": [{"type": "Ready", "status": "True"}],
            }}),
        )
        .await
        .unwrap();
    let o = loadgen(&[
        "svc/np",
        "-n",
        "lg",
        "--via",
        "node-port",
        "--server",
        &url,
        "--requests",
        "10",
        "-o",
        "json",
        "--quiet",
    ])
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.json()["status"]["200"], 10);
    assert_eq!(s2.hits.load(Ordering::SeqCst), 10);
    // ClusterIP Services without a nodePort: a clear error for --via node-port.
    apply(
        &c,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: cip\n  namespace: lg\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n",
    )
    .await;
    let o = loadgen(&[
        "svc/cip",
        "-n",
        "lg",
        "--via",
        "node-port",
        "--server",
        &url,
    ])
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("has no nodePort"), "{}", o.stderr);
}
