//! kubectl's `create` generators against the real `coxswain` binary: `create deployment`,
//! `create configmap`, `create secret generic`, and `scale`'s client-side replica check
//! (kubernetes/kubectl pkg/cmd/create/create_deployment.go, create_configmap.go,
//! create_secret.go; pkg/cmd/scale/scale.go Validate).
use std::time::Duration;

use coxswain_test_support::{wait_until, Coxswain};

fn json(c: &Coxswain, args: &[&str]) -> serde_json::Value {
    let out = c.coxctl(args).success();
    serde_json::from_str(&out.stdout).expect("json output")
}

#[test]
fn create_deployment_builds_what_kubectl_builds_and_it_runs() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    let out = c
        .coxctl(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.25",
            "--replicas=2",
            "--port=80",
        ])
        .success();
    assert_eq!(out.stdout, "deployment.apps/web created\n");
    let d = json(&c, &["get", "deployment", "web", "-o", "json"]);
    assert_eq!(d["metadata"]["labels"], serde_json::json!({"app": "web"}));
    assert_eq!(
        d["spec"]["selector"],
        serde_json::json!({"matchLabels": {"app": "web"}})
    );
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"],
        serde_json::json!({"app": "web"})
    );
    assert_eq!(d["spec"]["replicas"], 2);
    let ctr = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(ctr["name"], "nginx");
    assert_eq!(ctr["image"], "nginx:1.25");
    assert_eq!(
        ctr["ports"],
        serde_json::json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    // The Deployment's pods come up.
    let out = c
        .coxctl(&[
            "wait",
            "--for=jsonpath={.status.readyReplicas}=2",
            "deployment/web",
            "--timeout=60s",
        ])
        .success();
    assert_eq!(out.stdout, "deployment.apps/web condition met\n");
    let pods = json(&c, &["get", "pods", "-l", "app=web", "-o", "json"]);
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(2));

    // Again: the server's AlreadyExists, with kubectl's prefix.
    let out = c
        .coxctl(&["create", "deployment", "web", "--image=nginx"])
        .failure();
    assert!(
        out.stderr
            .starts_with("error: failed to create deployment: ")
            && out.stderr.contains("\"web\" already exists"),
        "{}",
        out.stderr
    );
    // Negative replicas: kubectl leaves them to the server's validation.
    let out = c
        .coxctl(&["create", "deploy", "neg", "--image=x", "--replicas", "-1"])
        .failure();
    assert!(
        out.stderr
            .starts_with("error: failed to create deployment: ")
            && out.stderr.contains("spec.replicas: Invalid value: -1"),
        "{}",
        out.stderr
    );
    // No image: kubectl's required-flag message.
    let out = c.coxctl(&["create", "deployment", "noimg"]).failure();
    assert_eq!(out.stderr, "error: required flag(s) \"image\" not set\n");

    // `scale` refuses a negative count before asking the server.
    let out = c
        .coxctl(&["scale", "deployment", "web", "--replicas=-1"])
        .failure();
    assert_eq!(
        out.stderr,
        "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0\n"
    );
    let out = c
        .coxctl(&["scale", "deployment/web", "--replicas=1"])
        .success();
    assert_eq!(out.stdout, "deployment.apps/web scaled\n");
    wait_until("web scaled to 1", Duration::from_secs(30), || {
        let d = json(&c, &["get", "deployment", "web", "-o", "json"]);
        (d["status"]["replicas"] == 1).then_some(())
    })
    .expect("scaled down");
}

#[test]
fn dry_run_yaml_applies_and_configmaps_and_secrets_take_literals_and_files() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    // --dry-run=client -o yaml prints kubectl's object and creates nothing; piped to apply, it
    // is accepted as it is (creationTimestamp: null and all).
    let out = c
        .coxctl(&[
            "create",
            "deployment",
            "job-runner",
            "--image=registry.local:5000/tools/busy_box:1",
            "--dry-run=client",
            "-o",
            "yaml",
            "--",
            "sleep",
            "3600",
        ])
        .success();
    let y = &out.stdout;
    assert!(y.starts_with("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  creationTimestamp: null\n  labels:\n    app: job-runner\n"), "{y}");
    assert!(
        y.contains("      - command:\n        - sleep\n        - \"3600\"\n"),
        "{y}"
    );
    assert!(y.contains("        name: busy-box-"), "{y}");
    assert!(
        y.contains("  strategy: {}\n") && y.ends_with("status: {}\n"),
        "{y}"
    );
    let got = c.coxctl(&["get", "deployment", "job-runner"]).failure();
    assert!(got.stderr.contains("NotFound"), "{}", got.stderr);
    let out = c.coxctl_in(&["apply", "-f", "-"], None, Some(y)).success();
    assert_eq!(out.stdout, "deployment.apps/job-runner created\n");

    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("app.properties"), "color=blue\n").expect("write");
    std::fs::write(dir.path().join("mode"), "fast").expect("write");
    let d = dir.path().display().to_string();
    let out = c
        .coxctl(&[
            "create",
            "configmap",
            "cfg",
            "--from-literal=level=debug",
            &format!("--from-file={d}"),
        ])
        .success();
    assert_eq!(out.stdout, "configmap/cfg created\n");
    let cm = json(&c, &["get", "configmap", "cfg", "-o", "json"]);
    assert_eq!(
        cm["data"],
        serde_json::json!({"app.properties": "color=blue\n", "level": "debug", "mode": "fast"})
    );
    let out = c
        .coxctl(&["create", "cm", "bad", "--from-literal=novalue"])
        .failure();
    assert_eq!(
        out.stderr,
        "error: invalid literal source novalue, expected key=value\n"
    );
    let out = c
        .coxctl(&[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
            &format!("--from-file=pw={d}/mode"),
        ])
        .success();
    assert_eq!(out.stdout, "secret/creds created\n");
    let s = json(&c, &["get", "secret", "creds", "-o", "json"]);
    assert_eq!(
        s["data"],
        serde_json::json!({"pw": "ZmFzdA==", "user": "YWRtaW4="})
    );
    assert_eq!(s["type"], "Opaque");
    let out = c
        .coxctl(&["create", "secret", "generic", "creds", "--from-literal=a=b"])
        .failure();
    assert!(
        out.stderr.starts_with("error: failed to create secret ")
            && out.stderr.contains("already exists"),
        "{}",
        out.stderr
    );
}
