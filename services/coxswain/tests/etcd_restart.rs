//! Restart etcd itself with its data kept (issue 18 §4): every component reconnects without
//! manual action. A store on etcd, with the scheduler, the controllers and an agent as separate
//! processes talking to it, runs a Deployment; etcd is killed (the store then refuses writes as
//! unavailable) and started again on the same ports and data directory. Afterwards the store
//! serves the old objects and writes again, its watch feed resumes from etcd's history, and a
//! Deployment created after the restart is scheduled, its pods made by the controllers and run
//! by the agent; the first Deployment, scaled up, gets its new pods too.
use std::time::Duration;

use coxswain_test_support::component::Component;
use coxswain_test_support::etcd::Etcd;
use coxswain_test_support::{wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: c\n        image: busybox:1.30\n        command: [\"/bin/sh\", \"-c\", \"sleep 300\"]\n"
    )
}

/// The pods of `app` that are Running on a node, or None if coxctl did not answer.
fn running(c: &Coxswain, app: &str) -> Option<usize> {
    let out = c.coxctl(&["get", "pods", "-l", &format!("app={app}"), "-o", "json"]);
    if !out.ok {
        return None;
    }
    let v: Value = serde_json::from_str(&out.stdout).ok()?;
    Some(
        v["items"]
            .as_array()?
            .iter()
            .filter(|p| {
                p["status"]["phase"] == "Running"
                    && p["spec"]["nodeName"]
                        .as_str()
                        .is_some_and(|n| !n.is_empty())
            })
            .count(),
    )
}

fn wait_running(c: &Coxswain, app: &str, n: usize, what: &str) {
    wait_until(&format!("{n} Running pods of {app} ({what})"), T, || {
        (running(c, app) == Some(n)).then_some(())
    })
    .unwrap_or_else(|e| {
        let pods = c.coxctl(&["get", "pods", "-o", "wide"]);
        panic!(
            "{e}\n{}{}\nstore log:\n{}",
            pods.stdout,
            pods.stderr,
            c.log()
        )
    });
}

#[test]
fn every_component_reconnects_after_etcd_restarts() {
    let mut etcd = Etcd::start().expect("start etcd");
    let store = Coxswain::start_with(&["store"], &["--etcd-servers", &etcd.url]).expect("store");
    let server = store.url();
    let tmp = tempfile::tempdir().expect("tmp");
    let _scheduler = Component::start(
        &["scheduler", "--server", &server],
        &tmp.path().join("scheduler.log"),
    );
    let _controllers = Component::start(
        &["controllers", "--server", &server],
        &tmp.path().join("controllers.log"),
    );
    let _agent = Component::start(
        &[
            "agent",
            "--server",
            &server,
            "--node-name",
            "restart-node",
            "--listen",
            "127.0.0.1:0",
            "--pod-time-scale",
            "0.1",
            "--lease-renew-interval",
            "300ms",
            "--node-status-update-frequency",
            "500ms",
        ],
        &tmp.path().join("agent.log"),
    );

    store.apply(&deployment("before", 2)).success();
    wait_running(&store, "before", 2, "before the restart");

    // etcd goes away: the store answers writes with an error instead of acknowledging them.
    etcd.kill9();
    wait_until("the store refusing a write while etcd is down", T, || {
        let out = store.coxctl(&["create", "namespace", "while-down"]);
        (!out.ok && out.stderr.contains("unavailable")).then_some(())
    })
    .expect("a refused write");

    // Same ports, same data directory.
    etcd.restart().expect("restart etcd");

    // The store writes again (an attempt whose answer was lost while the connection to etcd
    // came back may have landed: AlreadyExists on a later attempt means it did) ...
    wait_until("the store accepting writes again", T, || {
        let out = store.coxctl(&["create", "namespace", "after"]);
        (out.ok || out.stderr.contains("already exists")).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\nstore log:\n{}", store.log()));
    // ... its watch feed resumed (the write is in etcd and served from the store's cache) ...
    wait_until("namespace after served by the store", T, || {
        store
            .coxctl(&["get", "namespace", "after", "-o", "name"])
            .ok
            .then_some(())
    })
    .expect("the write read back");
    let keys = etcd
        .ctl(&["get", "/registry/namespaces/after", "--keys-only"])
        .expect("etcdctl");
    assert!(keys.contains("/registry/namespaces/after"), "{keys}");

    assert!(
        store.log().contains("etcd watch ended; resuming"),
        "the store's feed did not see etcd go away:\n{}",
        store.log()
    );
    // ... and the scheduler, the controllers and the agent carry on without being restarted.
    store.apply(&deployment("after", 2)).success();
    wait_running(&store, "after", 2, "created after the restart");
    store
        .coxctl(&["scale", "deployment", "before", "--replicas", "3"])
        .success();
    wait_running(&store, "before", 3, "scaled after the restart");
    // The node stayed (or became again) Ready: the agent's status updates reach the store.
    wait_until("restart-node Ready", T, || {
        let out = store.coxctl(&["get", "node", "restart-node", "-o", "json"]);
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    })
    .expect("node Ready after the restart");
}
