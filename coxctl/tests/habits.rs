//! kubectl habits against the real `coxswain` binary (issue 16 §1, §2): delete waits, create
//! goes on past errors, client-side YAML errors, label/annotate messages and prefixed keys,
//! `get -w` on a missing object, `wait`, `-o jsonpath|custom-columns`, `--sort-by`, `-L`.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coxswain_test_support::{bin, wait_until, Coxswain};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}

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
            "--for=condition=Ready=false",
            "pod/web",
            "--timeout=1s",
        ])
        .failure();
    // (It may still be starting; then the condition is met — retry once it is Ready.)
    if out.stdout.is_empty() {
        assert_eq!(
            out.stderr,
            "error: timed out waiting for the condition on pods/web\n"
        );
    }
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
fn label_and_annotate_remove_prefixed_keys_with_kubectl_messages() {
    let c = Coxswain::start().expect("start coxswain");
    c.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  annotations:\n    \
         deployment.kubernetes.io/max-replicas: \"4\"\n    plain: x\n",
    );
    let out = c
        .coxctl(&[
            "annotate",
            "cm",
            "m",
            "deployment.kubernetes.io/max-replicas-",
        ])
        .success();
    assert_eq!(out.stdout, "configmap/m annotated\n");
    let v: serde_json::Value =
        serde_json::from_str(&c.coxctl(&["get", "cm", "m", "-o", "json"]).success().stdout)
            .expect("json");
    assert_eq!(v["metadata"]["annotations"]["plain"], "x");
    assert!(
        v["metadata"]["annotations"]
            .get("deployment.kubernetes.io/max-replicas")
            .is_none(),
        "{v}"
    );
    let out = c
        .coxctl(&["label", "cm", "m", "example.com/disk=ssd", "tier=web"])
        .success();
    assert_eq!(out.stdout, "configmap/m labeled\n");
    let out = c
        .coxctl(&["label", "cm", "m", "example.com/disk-"])
        .success();
    assert_eq!(out.stdout, "configmap/m unlabeled\n");
    let out = c.coxctl(&["label", "cm", "m", "tier=web"]).success();
    assert_eq!(out.stdout, "configmap/m not labeled\n");
    let labels = c
        .coxctl(&["get", "cm", "m", "-o", "jsonpath={.metadata.labels}"])
        .success()
        .stdout;
    assert_eq!(labels, "{\"tier\":\"web\"}");
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

#[test]
fn jsonpath_custom_columns_sort_by_and_label_columns() {
    let c = Coxswain::start().expect("start coxswain");
    for (name, tier, data) in [("c10", "db", "3"), ("c2", "web", "1"), ("c1", "", "22")] {
        let labels = if tier.is_empty() {
            String::new()
        } else {
            format!("  labels:\n    example.com/tier: {tier}\n")
        };
        c.apply(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{labels}data:\n  num: \"{data}\"\n"
        ));
    }
    let out = c
        .coxctl(&["get", "cm", "-o", "jsonpath={.items[*].metadata.name}"])
        .success();
    assert_eq!(out.stdout, "c1 c10 c2");
    let out = c
        .coxctl(&[
            "get",
            "cm",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.data.num}{\"\\n\"}{end}",
        ])
        .success();
    assert_eq!(out.stdout, "c1=22\nc10=3\nc2=1\n");
    let out = c
        .coxctl(&["get", "cm", "c2", "-o", "jsonpath={.data.num}"])
        .success();
    assert_eq!(out.stdout, "1");
    let out = c
        .coxctl(&[
            "get",
            "cm",
            "-o",
            "custom-columns=NAME:.metadata.name,TIER:.metadata.labels.example\\.com/tier",
            "--sort-by=.data.num",
        ])
        .success();
    assert_eq!(
        out.stdout,
        "NAME   TIER\nc2     web\nc10    db\nc1     <none>\n"
    );
    let out = c
        .coxctl(&[
            "get",
            "cm",
            "--sort-by={.metadata.name}",
            "-L",
            "example.com/tier",
        ])
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].ends_with("TIER"),
        "{}",
        out.stdout
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(names, vec!["c1", "c2", "c10"]);
    assert!(lines[3].ends_with(" db"), "{}", out.stdout);
    let out = c
        .coxctl(&["get", "cm", "-o", "custom-columns=NAME"])
        .failure();
    assert_eq!(
        out.stderr,
        "error: unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>\n"
    );
}
