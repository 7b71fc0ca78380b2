//! Looking at a workload: run, events, cluster-info, logs, and describe's layout.
use std::time::Duration;

use coxswain_test_support::{wait_until, Coxswain};

use crate::common::get_json;

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
