//! `coxswain store|up --etcd-servers` on the real binary with a real etcd on loopback (issue 18
//! §1): objects land at Kubernetes' keys with resourceVersion = etcd's mod_revision, survive a
//! store restart and are served by a second store on the same etcd, and the whole cluster runs
//! a Deployment on etcd.
use std::time::Duration;

use coxswain_test_support::etcd::Etcd;
use coxswain_test_support::{wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn etcd_mod_revision(etcd: &Etcd, key: &str) -> Option<String> {
    let out = etcd.ctl(&["get", key, "-w", "json"]).expect("etcdctl get");
    let v: Value = serde_json::from_str(&out).expect("etcdctl json");
    v["kvs"][0]["mod_revision"].as_i64().map(|r| r.to_string())
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: on-etcd\n  namespace: default\ndata:\n  k: v\n";

#[test]
fn store_on_etcd_keeps_kubernetes_keys_across_restarts_and_replicas() {
    let etcd = Etcd::start().expect("start etcd");
    let mut c =
        Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("start store");
    c.apply(CM);
    let rv = c.json(&["get", "cm", "on-etcd"])["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_string();
    assert_eq!(
        etcd_mod_revision(&etcd, "/registry/configmaps/default/on-etcd").as_deref(),
        Some(rv.as_str())
    );

    // The data is etcd's: a restarted store serves it unchanged, and so does a second store.
    c.restart().expect("restart store");
    let again = c.json(&["get", "cm", "on-etcd"]);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        Value::from(rv.clone())
    );
    let other = Coxswain::start_with(
        &["store", "--etcd-prefix", "/registry"],
        &["--etcd-servers", &etcd.url],
    )
    .expect("start a second store");
    let seen = other.json(&["get", "cm", "on-etcd"]);
    assert_eq!(seen["metadata"]["resourceVersion"], Value::from(rv));
    assert_eq!(seen["data"]["k"], "v");
}

#[test]
fn store_refuses_an_unreachable_etcd_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    match Coxswain::start_with(&["store"], &["--etcd-servers", &url]) {
        Ok(c) => panic!("started on no etcd: {}", c.log()),
        Err(e) => assert!(format!("{e:#}").contains("cannot reach etcd"), "{e:#}"),
    }
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: nginx\n        image: nginx:1.17.9\n";

#[test]
fn up_on_etcd_runs_a_deployment() {
    let etcd = Etcd::start().expect("start etcd");
    let c = Coxswain::start_fast_up(&["--etcd-servers", &etcd.url]).expect("start up on etcd");
    c.apply(DEPLOY);
    wait_until("3 available replicas", T, || {
        let d = c.json(&["get", "deploy", "web"]);
        (d["status"]["availableReplicas"].as_i64() == Some(3)).then_some(())
    })
    .expect("deployment available");
    let pods = etcd
        .ctl(&["get", "/registry/pods/default/", "--prefix", "--keys-only"])
        .expect("etcdctl");
    assert_eq!(
        pods.lines()
            .filter(|l| l.contains("/registry/pods/default/web-"))
            .count(),
        3,
        "{pods}"
    );
}
