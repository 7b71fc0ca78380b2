//! Changing objects as kubectl does: label/annotate, patch, replace, edit (also on a terminal)
//! and diff.
use std::process::{Command, Stdio};

use coxswain_test_support::{bin, Coxswain};

use crate::common::{get_json, write};

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
