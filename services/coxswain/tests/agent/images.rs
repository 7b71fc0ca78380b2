//! Images: pull errors and back-off, and what the image catalog runs.
use std::time::Duration;

use coxswain_test_support::{scenarios_dir, wait_until};

use crate::common::*;

#[test]
fn a_missing_image_tag_gives_err_image_pull_then_image_pull_back_off() {
    let c = cluster(206, &["--backoff-initial", "3s", "--backoff-max", "10s"]);
    namespace(&c, "mayikt-sit");
    apply(
        &c,
        &manifest("26-pod-image-not-found.yaml", "node1", "mayikt-sit"),
    );
    wait_status(&c, "mayikt-sit", "mayikt-pod-bad-image", "ErrImagePull");
    wait_status(&c, "mayikt-sit", "mayikt-pod-bad-image", "ImagePullBackOff");
    let ev = events_of(&c, "mayikt-sit", "mayikt-pod-bad-image");
    assert!(
        ev.contains("Failed to pull image \"nginx:no-such-tag\""),
        "{ev}"
    );
    assert!(
        ev.contains("Back-off pulling image \"nginx:no-such-tag\""),
        "{ev}"
    );
    let logs = c.coxctl(&["logs", "mayikt-pod-bad-image", "-n", "mayikt-sit"]);
    assert!(!logs.ok);
    assert!(
        logs.stderr.contains("is waiting to start"),
        "{}",
        logs.stderr
    );
    // Deleting a pod that never started removes it at once.
    c.coxctl(&[
        "delete",
        "pod",
        "mayikt-pod-bad-image",
        "-n",
        "mayikt-sit",
        "--wait=false",
    ])
    .success();
    wait_until("pod removed", T, || {
        pod(&c, "mayikt-sit", "mayikt-pod-bad-image")
            .is_none()
            .then_some(())
    })
    .unwrap();
}

#[test]
fn images_run_what_the_catalog_says_and_a_job_runs_through_the_scheduler() {
    let c = cluster(211, &[]);
    namespace(&c, "mayikt-sit");
    // Seed 46: a Job (scheduled and run by the controllers of `up`) whose command is the
    // relative "bin/sh" (relative to the container's "/").
    let job = std::fs::read_to_string(scenarios_dir().join("46-job-mayikt-busybox-pod.yaml"))
        .unwrap()
        .replace("sleep 5 ;", "sleep 0.05 ;");
    apply(&c, &job);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: ssd-monitor, namespace: mayikt-sit}
spec:
  nodeName: node1
  containers: [{name: main, image: registry.cn-shanghai.aliyuncs.com/boogoo-ns/ssd-monitor:1.0}]
---
apiVersion: v1
kind: Pod
metadata: {name: exporter, namespace: mayikt-sit}
spec:
  nodeName: node2
  hostNetwork: true
  containers:
  - name: node-exporter
    image: prom/node-exporter
    command: [/bin/node_exporter, --path.procfs, /host/proc]
---
apiVersion: v1
kind: Pod
metadata: {name: metrics, namespace: mayikt-sit}
spec:
  nodeName: node2
  containers:
  - name: metrics-server
    image: registry.cn-hangzhou.aliyuncs.com/google_containers/metrics-server-amd64:v0.3.6
    args: [--kubelet-insecure-tls]
---
apiVersion: v1
kind: Pod
metadata: {name: nginx-cmd, namespace: mayikt-sit}
spec:
  nodeName: node1
  containers:
  - name: nginx
    image: nginx:1.17.9
    command: [nginx, -g, "daemon off;"]
    ports: [{containerPort: 8080}]
"#,
    );
    for p in ["exporter", "metrics", "nginx-cmd", "ssd-monitor"] {
        wait_status(&c, "mayikt-sit", p, "Running");
    }
    let exporter = pod(&c, "mayikt-sit", "exporter").unwrap();
    assert_eq!(
        s(&exporter, "status.podIP"),
        "127.211.2.1",
        "hostNetwork: the node's IP"
    );
    let ip = s(&pod(&c, "mayikt-sit", "nginx-cmd").unwrap(), "status.podIP")
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(http_get_answered(&ip, 8080, "/").0, 200);
    wait_until("SSD OK logged", T, || {
        c.coxctl(&["logs", "ssd-monitor", "-n", "mayikt-sit"])
            .stdout
            .starts_with("SSD OK\n")
            .then_some(())
    })
    .unwrap();
    // The Job's four pods complete, each with the countdown in its log.
    let pods = wait_until("4 job pods Completed", Duration::from_secs(60), || {
        let out = c
            .coxctl(&[
                "get",
                "pods",
                "-n",
                "mayikt-sit",
                "-l",
                "app=busybox-pod",
                "--no-headers",
            ])
            .stdout;
        let done: Vec<String> = out
            .lines()
            .filter(|l| l.contains("Completed"))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .collect();
        (done.len() >= 4).then_some(done)
    })
    .unwrap();
    let log = c
        .coxctl(&["logs", &pods[0], "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert_eq!(log, "9\n8\n7\n6\n5\n");
}
