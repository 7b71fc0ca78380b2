//! kubectl's `create` generators against the real `coxswain` binary: `create deployment`,
//! `create configmap`, `create secret generic`, and `scale`'s client-side replica check
//! (kubernetes/kubectl pkg/cmd/create/create_deployment.go, create_configmap.go,
//! create_secret.go; pkg/cmd/scale/scale.go Validate).
use std::time::Duration;

use coxswain_client::config::Kubeconfig;
use coxswain_test_support::{bin, pki, wait_until, CmdOutput, Coxswain};

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
    let d = c.json(&["get", "deployment", "web"]);
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
    let pods = c.json(&["get", "pods", "-l", "app=web"]);
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
        let d = c.json(&["get", "deployment", "web"]);
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
    let cm = c.json(&["get", "configmap", "cfg"]);
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
    let s = c.json(&["get", "secret", "creds"]);
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

/// coxctl with `env` set (and COXSWAIN_NAMESPACE only when `env` names it).
fn coxctl_env(c: &Coxswain, env: &[(&str, &str)], args: &[&str]) -> CmdOutput {
    let mut cmd = std::process::Command::new(bin("coxctl"));
    cmd.args(args)
        .env("COXSWAIN_SERVER", c.url())
        .env("COXCONFIG", &pki().kubeconfig)
        .env_remove("COXSWAIN_NAMESPACE")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run coxctl");
    CmdOutput {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// kubectl writes the namespace into a generated object only when `-n/--namespace` gave it
/// (clientcmd's Namespace() is explicit for the flag alone; create_configmap.go: `if
/// o.EnforceNamespace`); the object is created in the namespace in every case. The context's
/// namespace is the default namespace, and not explicit; so is COXSWAIN_NAMESPACE.
#[test]
fn generated_objects_name_their_namespace_only_when_n_gave_it() {
    let c = Coxswain::start().expect("start coxswain");
    c.coxctl(&["create", "namespace", "team"]).success();
    let cm = |name: &str| {
        vec![
            "create".to_string(),
            "configmap".into(),
            name.into(),
            "--from-literal=k=v".into(),
        ]
    };
    let dry = |name: &str| {
        let mut a = cm(name);
        a.extend(["--dry-run=client".into(), "-o".into(), "yaml".into()]);
        a
    };
    let args = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let run = |env: &[(&str, &str)], pre: &[&str], v: Vec<String>| {
        let mut all: Vec<&str> = pre.to_vec();
        all.extend(v.iter().map(String::as_str));
        coxctl_env(&c, env, &all).success().stdout
    };
    // No -n: no namespace line, before or after the flag.
    let y = run(&[], &[], dry("a"));
    assert_eq!(
        y,
        "apiVersion: v1\ndata:\n  k: v\nkind: ConfigMap\nmetadata:\n  creationTimestamp: null\n  name: a\n",
        "{}",
        args(&dry("a"))
    );
    let with_n = "metadata:\n  creationTimestamp: null\n  name: a\n  namespace: team\n";
    assert!(run(&[], &["-n", "team"], dry("a")).contains(with_n));
    let mut after = dry("a");
    after.extend(["--namespace".into(), "team".into()]);
    assert!(run(&[], &[], after).contains(with_n));
    // -n default is explicit too.
    assert!(run(&[], &["-n", "default"], dry("a")).contains("  namespace: default\n"));

    // COXSWAIN_NAMESPACE picks the namespace, not enforced.
    let env = [("COXSWAIN_NAMESPACE", "team")];
    assert!(!run(&env, &[], dry("a")).contains("namespace:"));
    assert_eq!(
        run(&env, &[], cm("from-env")),
        "configmap/from-env created\n"
    );
    c.coxctl(&["get", "configmap", "from-env", "-n", "team"])
        .success();

    // The context's namespace: the default namespace, not enforced.
    let dir = tempfile::tempdir().expect("tmp");
    let conf = dir.path().join("config");
    let mut k = Kubeconfig::load(&pki().kubeconfig).expect("kubeconfig");
    for ctx in &mut k.contexts {
        ctx.context.namespace = "team".into();
    }
    k.save(&conf).expect("save");
    let conf = conf.display().to_string();
    let env = [("COXCONFIG", conf.as_str())];
    assert!(!run(&env, &[], dry("a")).contains("namespace:"));
    let mut made = cm("from-context");
    made.extend(["-o".into(), "yaml".into()]);
    let y = run(&env, &[], made);
    assert!(y.contains("  namespace: team\n"), "{y}");
    let listed = run(&env, &[], vec!["get".into(), "configmaps".into()]);
    assert!(
        listed.contains("from-context") && listed.contains("from-env"),
        "{listed}"
    );
    // The flag wins over the context.
    let y = run(&env, &["-n", "default"], dry("a"));
    assert!(y.contains("  namespace: default\n"), "{y}");
}
