//! A container's life: init containers, lifecycle hooks, probes, restart policies, in-place
//! image changes and graceful deletion.
use std::time::Duration;

use coxswain_test_support::wait_until;
use serde_json::Value;

use crate::common::*;

#[test]
fn init_containers_run_in_order_then_the_web_server_answers() {
    let c = cluster(202, &[]);
    namespace(&c, "mayikt-sit");
    let yaml = manifest("13-pod-initcontainers.yaml", "node1", "mayikt-sit")
        .replace("sleep 40;", "sleep 2;");
    apply(&c, &yaml);
    wait_status(&c, "mayikt-sit", "mayikt-pod-initcontainer", "Init:0/2");
    wait_status(&c, "mayikt-sit", "mayikt-pod-initcontainer", "Running");
    let p = pod(&c, "mayikt-sit", "mayikt-pod-initcontainer").unwrap();
    let init = s(&p, "status.initContainerStatuses").as_array().unwrap();
    let t = |v: &Value, k: &str| {
        coxswain_api::time::parse_rfc3339(v["state"]["terminated"][k].as_str().unwrap()).unwrap()
    };
    assert_eq!(init[0]["state"]["terminated"]["reason"], "Completed");
    assert_eq!(
        init[1]["state"]["terminated"]["exitCode"]
            .as_i64()
            .unwrap_or(0),
        0
    );
    assert_eq!(init[1]["state"]["terminated"]["reason"], "Completed");
    assert!(t(&init[0], "finishedAt") <= t(&init[1], "startedAt"));
    let main_started = coxswain_api::time::parse_rfc3339(
        s(&p, "status.containerStatuses.0.state.running.startedAt")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(t(&init[1], "finishedAt") <= main_started);
    assert!(t(&init[0], "finishedAt") - t(&init[0], "startedAt") >= 1);
    assert_eq!(s(&p, "status.containerStatuses.0.ready"), true);
    let ip = s(&p, "status.podIP").as_str().unwrap().to_string();
    assert!(ip.starts_with("127.202.1."), "{ip}");
    let wide = c
        .coxctl(&["get", "pods", "-n", "mayikt-sit", "-o", "wide"])
        .stdout;
    assert!(wide.contains(&ip) && wide.contains("node1"), "{wide}");
    let (code, body) = http_get_answered(&ip, 80, "/");
    assert_eq!(code, 200);
    assert!(body.contains("Welcome to nginx!"), "{body}");
    assert_eq!(http_get(&ip, 80, "/mayikt").unwrap().0, 404);
}

#[test]
fn post_start_writes_the_page_and_pre_stop_runs_on_deletion() {
    let c = cluster(203, &[]);
    namespace(&c, "mayikt-sit");
    apply(
        &c,
        &manifest("14-pod-hooks-exec.yaml", "node2", "mayikt-sit"),
    );
    wait_status(&c, "mayikt-sit", "mayikt-nginx-pod", "Running");
    let p = pod(&c, "mayikt-sit", "mayikt-nginx-pod").unwrap();
    let ip = s(&p, "status.podIP").as_str().unwrap().to_string();
    let (code, body) = http_get_answered(&ip, 80, "/");
    assert_eq!((code, body.trim()), (200, "mayikt"));

    // A tcpSocket postStart on a closed port fails: FailedPostStartHook, killed, restarted.
    apply(
        &c,
        &manifest(
            "15-pod-hook-poststart-tcpsocket.yaml",
            "node1",
            "mayikt-sit",
        ),
    );
    wait_until("tcp hook pod restarted", T, || {
        pod(&c, "mayikt-sit", "mayikt-nginx-pod-tcp-hook").filter(|p| restarts(p) >= 1)
    })
    .unwrap();
    let ev = events_of(&c, "mayikt-sit", "mayikt-nginx-pod-tcp-hook");
    assert!(ev.contains("FailedPostStartHook"), "{ev}");
    assert!(ev.contains(":8080: connect: connection refused"), "{ev}");

    // Deletion: preStop (" /usr/sbin/nginx" does not exist: FailedPreStopHook), SIGTERM, removal.
    c.coxctl(&[
        "delete",
        "pod",
        "mayikt-nginx-pod",
        "-n",
        "mayikt-sit",
        "--wait=false",
    ])
    .success();
    wait_until("pod removed", T, || {
        pod(&c, "mayikt-sit", "mayikt-nginx-pod")
            .is_none()
            .then_some(())
    })
    .unwrap();
    let ev = c
        .coxctl(&["get", "events", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(ev.contains("FailedPreStopHook"), "{ev}");
    assert!(ev.contains("Stopping container main-container"), "{ev}");
    wait_until("server stopped", T, || {
        http_get(&ip, 80, "/").is_none().then_some(())
    })
    .unwrap();
}

#[test]
fn liveness_probes_of_each_kind_fail_then_pass() {
    let c = cluster(204, &[]);
    for (file, ns) in [
        ("17-pod-liveness-exec-failing.yaml", "exec-bad"),
        ("18-pod-liveness-exec-ok.yaml", "exec-ok"),
        ("19-pod-liveness-tcp-failing.yaml", "tcp-bad"),
        ("20-pod-liveness-tcp-ok.yaml", "tcp-ok"),
        ("21-pod-liveness-http-failing.yaml", "http-bad"),
        ("22-pod-liveness-http-ok.yaml", "http-ok"),
    ] {
        namespace(&c, ns);
        let node = if ns.ends_with("bad") {
            "node1"
        } else {
            "node2"
        };
        apply(&c, &manifest(file, node, ns));
    }
    for ns in ["exec-bad", "tcp-bad", "http-bad"] {
        wait_until(&format!("{ns} restarted"), T, || {
            pod(&c, ns, "mayikt-pod").filter(|p| restarts(p) >= 1)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", events_of(&c, ns, "mayikt-pod")));
    }
    let ev = events_of(&c, "http-bad", "mayikt-pod");
    assert!(
        ev.contains("Liveness probe failed: HTTP probe failed with statuscode: 404"),
        "{ev}"
    );
    assert!(
        ev.contains("Container nginx failed liveness probe, will be restarted"),
        "{ev}"
    );
    let ev = events_of(&c, "tcp-bad", "mayikt-pod");
    assert!(ev.contains(":8080: connect: connection refused"), "{ev}");
    let ev = events_of(&c, "exec-bad", "mayikt-pod");
    assert!(ev.contains("Liveness probe failed: "), "{ev}");
    // The passing probes ran as long as the failing ones needed to restart: no restarts, and
    // never failureThreshold failures in a row. (A single Unhealthy event is possible, as on a
    // real kubelet: the first probe runs at once (initialDelaySeconds 0) and may beat the
    // server's bind on a loaded machine, and a scaled 1 s timeout is 100 ms here.)
    for ns in ["exec-ok", "tcp-ok", "http-ok"] {
        let p = pod(&c, ns, "mayikt-pod").unwrap();
        let ev = events_of(&c, ns, "mayikt-pod");
        assert_eq!(restarts(&p), 0, "{ns}: {ev}");
        assert_eq!(status_column(&c, ns, "mayikt-pod"), "Running", "{ns}: {ev}");
        assert!(!ev.contains("will be restarted"), "{ns}: {ev}");
        assert!(!ev.contains("Killing"), "{ns}: {ev}");
    }
}

#[test]
fn restart_policies_jobs_logs_and_readiness() {
    let c = cluster(205, &[]);
    namespace(&c, "mayikt-sit");
    // A job-style pod succeeds; its log is readable.
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: job, namespace: mayikt-sit}
spec:
  nodeName: node1
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.30
    command: ["/bin/sh", "-c", "echo hello from $POD_NAME in $POD_NAMESPACE at $POD_IP; echo done"]
---
apiVersion: v1
kind: Pod
metadata: {name: fails, namespace: mayikt-sit}
spec:
  nodeName: node2
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.30
    command: ["/bin/sh", "-c", "echo failing; exit 3"]
---
apiVersion: v1
kind: Pod
metadata: {name: crashes, namespace: mayikt-sit}
spec:
  nodeName: node2
  restartPolicy: OnFailure
  containers:
  - name: c
    image: busybox:1.30
    command: ["/bin/sh", "-c", "echo attempt; exit 1"]
"#,
    );
    wait_status(&c, "mayikt-sit", "job", "Completed");
    let log = c
        .coxctl(&["logs", "job", "-n", "mayikt-sit"])
        .success()
        .stdout;
    let p = pod(&c, "mayikt-sit", "job").unwrap();
    let ip = s(&p, "status.podIP").as_str().unwrap();
    assert_eq!(log, format!("hello from job in mayikt-sit at {ip}\ndone\n"));
    assert_eq!(s(&p, "status.phase"), "Succeeded");
    wait_status(&c, "mayikt-sit", "fails", "Error");
    let p = pod(&c, "mayikt-sit", "fails").unwrap();
    assert_eq!(s(&p, "status.phase"), "Failed");
    assert_eq!(
        s(&p, "status.containerStatuses.0.state.terminated.exitCode"),
        3
    );
    assert_eq!(restarts(&p), 0);
    // OnFailure: restarted with back-off; the previous instance's log.
    wait_until("crashes restarted twice", T, || {
        pod(&c, "mayikt-sit", "crashes").filter(|p| restarts(p) >= 2)
    })
    .unwrap();
    wait_status(&c, "mayikt-sit", "crashes", "CrashLoopBackOff");
    let prev = c
        .coxctl(&["logs", "crashes", "-n", "mayikt-sit", "--previous"])
        .success()
        .stdout;
    assert_eq!(prev, "attempt\n");
    let ev = events_of(&c, "mayikt-sit", "crashes");
    assert!(
        ev.contains("Back-off restarting failed container c"),
        "{ev}"
    );

    // Follow: the stream ends when the container does.
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: counter, namespace: mayikt-sit}
spec:
  nodeName: node1
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"]
"#,
    );
    let followed = wait_until("logs -f", T, || {
        let out = c.coxctl(&["logs", "-f", "counter", "-n", "mayikt-sit"]);
        out.ok.then_some(out.stdout)
    })
    .unwrap();
    assert_eq!(followed, "1\n2\n3\n");

    // Never + failing liveness (23): killed once, not restarted, terminal phase.
    namespace(&c, "timing");
    apply(
        &c,
        &manifest("23-pod-liveness-timing.yaml", "node1", "timing"),
    );
    wait_until("timing pod terminal", T, || {
        pod(&c, "timing", "mayikt-pod").filter(|p| {
            let ph = s(p, "status.phase");
            ph == "Succeeded" || ph == "Failed"
        })
    })
    .unwrap();
    let p = pod(&c, "timing", "mayikt-pod").unwrap();
    assert_eq!(restarts(&p), 0);
    // Never + passing probe (24) stays Running.
    namespace(&c, "never");
    apply(
        &c,
        &manifest("24-pod-restartpolicy-never.yaml", "node2", "never"),
    );
    wait_status(&c, "never", "mayikt-pod", "Running");

    // Readiness (25): one pod Ready, the other Running 0/1 without restarts.
    namespace(&c, "ready");
    apply(
        &c,
        &manifest("25-pod-readiness-service.yaml", "node1", "ready"),
    );
    wait_until("ready pod Ready", T, || {
        pod(&c, "ready", "mayikt-pod-ready")
            .filter(|p| s(p, "status.containerStatuses.0.ready") == true)
    })
    .unwrap();
    wait_until("not-ready pod probed", T, || {
        events_of(&c, "ready", "mayikt-pod-not-ready")
            .contains("Readiness probe failed: HTTP probe failed with statuscode: 404")
            .then_some(())
    })
    .unwrap();
    let p = pod(&c, "ready", "mayikt-pod-not-ready").unwrap();
    assert_ne!(s(&p, "status.containerStatuses.0.ready"), true);
    assert_eq!(s(&p, "status.phase"), "Running");
    assert_eq!(restarts(&p), 0);
    let get = c.coxctl(&["get", "pods", "-n", "ready"]).stdout;
    assert!(
        get.lines().any(|l| l.starts_with("mayikt-pod-not-ready")
            && l.contains("0/1")
            && l.contains("Running")),
        "{get}"
    );
    // After Never + probe timing: the 24 pod is still Running without restarts.
    let p = pod(&c, "never", "mayikt-pod").unwrap();
    assert_eq!(restarts(&p), 0);
}

#[test]
fn failing_init_containers_show_init_error_and_init_crash_loop_back_off() {
    let c = cluster(214, &[]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: init-never}
spec:
  nodeName: node1
  restartPolicy: Never
  initContainers:
  - {name: ok, image: busybox, command: ["/bin/sh", "-c", "exit 0"]}
  - {name: bad, image: busybox, command: ["/bin/sh", "-c", "echo init failed; exit 1"]}
  containers: [{name: main, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: init-always}
spec:
  nodeName: node2
  initContainers:
  - {name: bad, image: busybox, command: ["/bin/sh", "-c", "exit 2"]}
  containers: [{name: main, image: nginx}]
"#,
    );
    wait_status(&c, "default", "init-never", "Init:Error");
    let p = pod(&c, "default", "init-never").unwrap();
    assert_eq!(s(&p, "status.phase"), "Failed");
    assert!(s(&p, "status.containerStatuses.0.state.waiting").is_object());
    let log = c
        .coxctl(&["logs", "init-never", "-c", "bad"])
        .success()
        .stdout;
    assert_eq!(log, "init failed\n");
    wait_status(&c, "default", "init-always", "Init:CrashLoopBackOff");
    let p = pod(&c, "default", "init-always").unwrap();
    assert_eq!(s(&p, "status.phase"), "Pending");
    assert!(
        s(&p, "status.initContainerStatuses.0.restartCount")
            .as_i64()
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn an_image_changed_in_place_restarts_the_container() {
    let c = cluster(216, &[]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: node1
  containers: [{name: nginx, image: "nginx:1.17.9", ports: [{containerPort: 80}]}]
"#,
    );
    wait_status(&c, "default", "web", "Running");
    let url = c.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use coxswain_api::v1::Pod;
        let client = coxswain_client::Client::connect(&url).await.unwrap();
        let mut p: Pod = client.get("default", "web").await.unwrap().unwrap();
        p.spec.as_mut().unwrap().containers[0].image = "nginx:1.19".into();
        client.update(&p).await.unwrap();
    });
    let p = wait_until("restarted with the new image", T, || {
        pod(&c, "default", "web").filter(|p| {
            restarts(p) == 1
                && s(p, "status.containerStatuses.0.image") == "nginx:1.19"
                && s(p, "status.containerStatuses.0.ready") == true
        })
    })
    .unwrap();
    let ip = s(&p, "status.podIP").as_str().unwrap();
    assert_eq!(http_get(ip, 80, "/").unwrap().0, 200);
    assert!(events_of(&c, "default", "web")
        .contains("Container nginx definition changed, will be restarted"));
}

#[test]
fn deletion_runs_pre_stop_before_sigterm_and_waits_for_it() {
    let c = cluster(217, &[]);
    let marker = tempfile::tempdir().unwrap();
    let dir = marker.path().to_string_lossy().to_string();
    apply(
        &c,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  nodeName: node2
  terminationGracePeriodSeconds: 100
  volumes: [{{name: out, hostPath: {{path: "{dir}"}}}}]
  containers:
  - name: c
    image: busybox
    # The hostPath is the test's private (root-owned) directory: root writes it, as upstream.
    securityContext: {{runAsUser: 0}}
    command: ["/bin/sh", "-c", "trap 'echo term >> /out/log; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
    lifecycle:
      preStop:
        exec: {{command: ["/bin/sh", "-c", "echo prestop-start >> /out/log; sleep 1; echo prestop-end >> /out/log"]}}
"#
        ),
    );
    wait_status(&c, "default", "graceful", "Running");
    let t0 = std::time::Instant::now();
    c.coxctl(&["delete", "pod", "graceful", "--wait=false"])
        .success();
    wait_until("pod removed", T, || {
        pod(&c, "default", "graceful").is_none().then_some(())
    })
    .unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    let log = std::fs::read_to_string(marker.path().join("log")).unwrap();
    assert_eq!(log, "prestop-start\nprestop-end\nterm\n");
}
