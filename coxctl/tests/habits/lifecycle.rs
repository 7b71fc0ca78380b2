//! Creating, deleting and watching: delete waits, create goes on past errors, client-side YAML
//! errors, `get -w` on a missing object.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coxswain_test_support::{bin, wait_until, Coxswain};

use crate::common::write;

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: nginx
    image: nginx
";

#[test]
fn delete_waits_until_the_object_is_gone_so_create_again_works() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    let dir = tempfile::tempdir().expect("tmp");
    let f = write(&dir, "pod.yaml", POD);
    for round in 0..3 {
        let out = c.coxctl(&["create", "-f", &f]).success();
        assert_eq!(out.stdout, "pod/web created\n", "round {round}");
        let out = c
            .coxctl(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"])
            .success();
        assert_eq!(out.stdout, "pod/web condition met\n");
        let out = c.coxctl(&["delete", "-f", &f]).success();
        assert_eq!(out.stdout, "pod \"web\" deleted\n");
        // Gone when delete returns: no Terminating leftover.
        let got = c.coxctl(&["get", "pod", "web"]).failure();
        assert_eq!(
            got.stderr,
            "Error from server (NotFound): pods \"web\" not found\n"
        );
    }
    // Waiting for the deletion of what is not there succeeds at once, silently.
    let out = c.coxctl(&["wait", "--for=delete", "pod/web"]).success();
    assert_eq!(out.stdout, "");
    // A timeout names the object as kubectl does.
    c.coxctl(&["create", "-f", &f]).success();
    let out = c
        .coxctl(&[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "pod/web",
            "--timeout=30s",
        ])
        .success();
    assert_eq!(out.stdout, "pod/web condition met\n");
    let out = c
        .coxctl(&[
            "wait",
            "--for=condition=Ready=false",
            "pod/web",
            "--timeout=1s",
        ])
        .failure();
    assert_eq!(
        out.stderr,
        "error: timed out waiting for the condition on pods/web\n"
    );
    // --wait=false returns at once; `wait --for=delete` then waits for the object.
    c.coxctl(&["delete", "pod", "web", "--wait=false"])
        .success();
    let out = c
        .coxctl(&["wait", "--for=delete", "pod/web", "--timeout=30s"])
        .success();
    assert!(
        out.stdout.is_empty() || out.stdout == "pod/web condition met\n",
        "{}",
        out.stdout
    );
    c.coxctl(&["get", "pod", "web"]).failure();
}

#[test]
fn create_goes_on_past_errors_and_yaml_syntax_errors_are_client_side() {
    let c = Coxswain::start().expect("start coxswain");
    let dir = tempfile::tempdir().expect("tmp");
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n");
    let f = write(
        &dir,
        "three.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    let out = c.coxctl(&["create", "-f", &f]).failure();
    assert_eq!(out.stdout, "configmap/a created\nconfigmap/c created\n");
    assert_eq!(
        out.stderr,
        format!(
            "Error from server (AlreadyExists): error when creating \"{f}\": configmaps \"b\" already exists\n"
        )
    );
    c.coxctl(&["get", "cm", "a"]).success();
    c.coxctl(&["get", "cm", "c"]).success();

    let bad = write(
        &dir,
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata\n  name: d\n",
    );
    let out = c.coxctl(&["create", "-f", &bad]).failure();
    assert!(
        out.stderr
            .starts_with(&format!("error: error parsing {bad}: ")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("line"), "{}", out.stderr);
    assert!(!out.stderr.contains("Error from server"), "{}", out.stderr);
    c.coxctl(&["get", "cm", "d"]).failure();
}

#[test]
fn get_watch_on_a_missing_object_exits_as_kubectl() {
    let c = Coxswain::start().expect("start coxswain");
    let mut child = Command::new(bin("coxctl"))
        .args(["get", "job", "nope", "-w"])
        .env("COXSWAIN_SERVER", c.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coxctl");
    let start = Instant::now();
    let status = wait_until("coxctl get -w to exit", Duration::from_secs(10), || {
        child.try_wait().ok().flatten()
    });
    if status.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "get -w on a missing job kept watching ({:?})",
            start.elapsed()
        );
    }
    let out = child.wait_with_output().expect("output");
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error from server (NotFound): jobs.batch \"nope\" not found\n"
    );
}
