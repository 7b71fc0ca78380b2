//! Node agents end to end on the real binary: `coxswain up --nodes 2 --runtime process` with
//! shortened timers, the seed-002 pod manifests bound by spec.nodeName, real HTTP GETs to pod
//! IPs, `coxctl logs`, and the sim runtime.
//!
//! Each test uses its own pod network octet so parallel clusters never share pod IPs.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use coxswain_test_support::{fast_up_with, scenarios_dir, wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn cluster(octet: u8, extra: &[&str]) -> Coxswain {
    let octet = octet.to_string();
    let defaults = [
        "--pod-network-octet",
        &octet,
        "--backoff-initial",
        "1s",
        "--backoff-max",
        "2s",
        "--metrics-resolution",
        "300ms",
    ];
    // A flag given in `extra` replaces the default.
    fast_up_with(&defaults, extra).expect("start coxswain up")
}

/// A scenario manifest with every Pod bound to `node` and moved to namespace `ns`.
fn manifest(file: &str, node: &str, ns: &str) -> String {
    let text = std::fs::read_to_string(scenarios_dir().join(file)).expect("scenario file");
    text.split("\n---\n")
        .map(|doc| {
            let doc = doc.replace("namespace: mayikt-sit", &format!("namespace: {ns}"));
            if doc.contains("kind: Pod") {
                doc.replacen("\nspec:\n", &format!("\nspec:\n  nodeName: {node}\n"), 1)
            } else {
                doc
            }
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn apply(c: &Coxswain, yaml: &str) {
    c.apply(yaml);
}

fn namespace(c: &Coxswain, ns: &str) {
    c.coxctl(&["create", "namespace", ns]).success();
}

fn pod(c: &Coxswain, ns: &str, name: &str) -> Option<Value> {
    let out = c.coxctl(&["get", "pod", name, "-n", ns, "-o", "json"]);
    if !out.ok {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

fn s<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut v = v;
    for p in path.split('.') {
        v = match p.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[p],
        };
    }
    v
}

/// The STATUS column of `coxctl get pod`.
fn status_column(c: &Coxswain, ns: &str, name: &str) -> String {
    let out = c.coxctl(&["get", "pod", name, "-n", ns, "--no-headers"]);
    out.stdout
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

fn wait_status(c: &Coxswain, ns: &str, name: &str, want: &str) {
    wait_until(&format!("{ns}/{name} STATUS {want}"), T, || {
        (status_column(c, ns, name) == want).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n{}",
            c.coxctl(&["get", "pod", name, "-n", ns]).stdout,
            c.coxctl(&["get", "pod", name, "-n", ns, "-o", "yaml"])
                .stdout
        )
    });
}

fn restarts(p: &Value) -> i64 {
    s(p, "status.containerStatuses.0.restartCount")
        .as_i64()
        .unwrap_or(0)
}

fn http_get(ip: &str, port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// GET once the server answers: Running means the process started, not that it listens yet
/// (as in Kubernetes, where only a readiness probe says that).
fn http_get_answered(ip: &str, port: u16, path: &str) -> (u16, String) {
    wait_until("the server answered", T, || http_get(ip, port, path)).expect("answered")
}

fn events_of(c: &Coxswain, ns: &str, name: &str) -> String {
    c.coxctl(&["describe", "pod", name, "-n", ns]).stdout
}

#[test]
fn nodes_register_with_labels_taints_capacity_and_a_renewed_lease() {
    let c = cluster(
        201,
        &[
            "--control-plane-node",
            "master",
            "--node-labels",
            "disktype=ssd",
        ],
    );
    let out = wait_until("three Ready nodes", T, || {
        let out = c.coxctl(&["get", "nodes"]).stdout;
        (out.matches(" Ready ").count() == 3).then_some(out)
    })
    .unwrap();
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("master") && l.contains("control-plane")),
        "{out}"
    );
    let wide = c.coxctl(&["get", "nodes", "-o", "wide"]).success().stdout;
    assert!(wide.contains("INTERNAL-IP"), "{wide}");
    assert!(
        wide.contains("127.201.1.1") && wide.contains("127.201.2.1"),
        "{wide}"
    );
    assert!(wide.contains("coxswain-process://"), "{wide}");

    let n: Value =
        serde_json::from_str(&c.coxctl(&["get", "node", "node1", "-o", "json"]).stdout).unwrap();
    let labels = s(&n, "metadata.labels");
    assert_eq!(labels["kubernetes.io/hostname"], "node1");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert!(labels["kubernetes.io/arch"].is_string());
    assert_eq!(labels["disktype"], "ssd");
    assert_eq!(s(&n, "status.capacity.pods"), "110");
    assert_eq!(s(&n, "status.allocatable.pods"), "110");
    let ready = s(&n, "status.conditions")
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "KubeletReady");
    assert!(n["metadata"]["annotations"]["coxswain.io/agent-endpoint"]
        .as_str()
        .unwrap()
        .ends_with(&c.grpc));

    let m: Value =
        serde_json::from_str(&c.coxctl(&["get", "node", "master", "-o", "json"]).stdout).unwrap();
    let taints = s(&m, "spec.taints").as_array().unwrap();
    assert!(taints.iter().any(
        |t| t["key"] == "node-role.kubernetes.io/control-plane" && t["effect"] == "NoSchedule"
    ));

    // The Lease is renewed.
    let renew = |c: &Coxswain| {
        let l: Value = serde_json::from_str(
            &c.coxctl(&[
                "get",
                "lease",
                "node1",
                "-n",
                "kube-node-lease",
                "-o",
                "json",
            ])
            .stdout,
        )
        .ok()?;
        Some((
            l["spec"]["renewTime"].as_str()?.to_string(),
            l["spec"]["holderIdentity"].as_str()?.to_string(),
            l["metadata"]["resourceVersion"].as_str()?.to_string(),
        ))
    };
    let (_, holder, rv) = wait_until("lease", T, || renew(&c)).unwrap();
    assert_eq!(holder, "node1");
    wait_until("lease renewed", T, || {
        renew(&c).filter(|(_, _, rv2)| *rv2 != rv).map(|_| ())
    })
    .unwrap();
}

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
fn sim_runtime_scripts_pods_by_annotation_and_reports_usage() {
    let c = cluster(207, &["--runtime", "sim"]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: job
  annotations: {sim.coxswain.io/run-duration: 1s}
spec:
  nodeName: node1
  restartPolicy: Never
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata:
  name: sick
  annotations: {sim.coxswain.io/fail-liveness-after: 0s}
spec:
  nodeName: node2
  containers:
  - name: c
    image: nginx
    livenessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Pod
metadata:
  name: busy
  annotations: {sim.coxswain.io/cpu: 250m, sim.coxswain.io/memory: 64Mi, sim.coxswain.io/ready-after: 1s}
spec:
  nodeName: node1
  containers: [{name: c, image: nginx}]
"#,
    );
    wait_status(&c, "default", "job", "Completed");
    wait_until("sick restarted", T, || {
        pod(&c, "default", "sick").filter(|p| restarts(p) >= 1)
    })
    .unwrap();
    wait_until("busy ready", T, || {
        pod(&c, "default", "busy").filter(|p| s(p, "status.containerStatuses.0.ready") == true)
    })
    .unwrap();
    let wide = c.coxctl(&["get", "nodes", "-o", "wide"]).stdout;
    assert!(wide.contains("coxswain-sim://"), "{wide}");

    // Usage through the NodeAgent Stats RPC on the main port.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = c.url();
    let (cpu, mem) = rt.block_on(async move {
        let agent = coxswain_api::v1::node_agent_client::NodeAgentClient::new(
            coxswain_test_support::channel(&url).await.unwrap(),
        );
        coxswain_test_support::wait_for("busy usage", T, || {
            let mut agent = agent.clone();
            async move {
                let s = agent
                    .stats(coxswain_api::v1::StatsRequest {
                        node_name: "node1".into(),
                    })
                    .await
                    .ok()?
                    .into_inner();
                let p = s
                    .nodes
                    .first()?
                    .pods
                    .iter()
                    .find(|p| p.name == "busy")?
                    .clone();
                (p.cpu_usage_nano_cores > 0)
                    .then_some((p.cpu_usage_nano_cores, p.memory_working_set_bytes))
            }
        })
        .await
        .unwrap()
    });
    assert!((200_000_000..=300_000_000).contains(&cpu), "{cpu}");

    // Another component marks the pod not ready and adds its own condition (as the node
    // lifecycle controller does): the agent restores its Ready and keeps the other condition.
    let url = c.url();
    rt.block_on(async move {
        use coxswain_api::v1::{Condition, Pod};
        let client = coxswain_client::Client::connect(&url).await.unwrap();
        let mut p: Pod = client.get("default", "busy").await.unwrap().unwrap();
        let st = p.status.as_mut().unwrap();
        for c in st.conditions.iter_mut().filter(|c| c.r#type == "Ready") {
            c.status = "False".into();
        }
        st.conditions.push(Condition {
            r#type: "DisruptionTarget".into(),
            status: "True".into(),
            reason: "Test".into(),
            ..Default::default()
        });
        client.update_status(&p).await.unwrap();
        coxswain_test_support::wait_for("Ready restored, foreign condition kept", T, || {
            let client = client.clone();
            async move {
                let p: Pod = client.get("default", "busy").await.ok()??;
                let conds = p.status?.conditions;
                let ready = conds
                    .iter()
                    .any(|c| c.r#type == "Ready" && c.status == "True");
                let kept = conds.iter().any(|c| c.r#type == "DisruptionTarget");
                (ready && kept).then_some(())
            }
        })
        .await
        .unwrap();
    });
    assert_eq!(mem, 64 << 20);
}

#[test]
fn process_runtime_reports_cpu_of_the_burner_image() {
    let c = cluster(208, &[]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: burner
  annotations: {coxswain.io/burn-millis: "30"}
spec:
  nodeName: node1
  containers:
  - name: php
    image: registry.k8s.io/hpa-example
    ports: [{containerPort: 8080}]
"#,
    );
    wait_status(&c, "default", "burner", "Running");
    let p = pod(&c, "default", "burner").unwrap();
    let ip = s(&p, "status.podIP").as_str().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = c.url();
    let cpu = rt.block_on(async move {
        let agent = coxswain_api::v1::node_agent_client::NodeAgentClient::new(
            coxswain_test_support::channel(&url).await.unwrap(),
        );
        coxswain_test_support::wait_for("burner CPU usage", T, || {
            let mut agent = agent.clone();
            let ip = ip.clone();
            async move {
                // Load: a few requests per poll.
                tokio::task::spawn_blocking(move || {
                    for _ in 0..5 {
                        let r = http_get(&ip, 8080, "/");
                        assert_eq!(r.map(|r| (r.0, r.1)), Some((200, "OK!".to_string())));
                    }
                })
                .await
                .ok()?;
                let s = agent
                    .stats(coxswain_api::v1::StatsRequest {
                        node_name: "node1".into(),
                    })
                    .await
                    .ok()?
                    .into_inner();
                let p = s
                    .nodes
                    .first()?
                    .pods
                    .iter()
                    .find(|p| p.name == "burner")?
                    .clone();
                let c = p.containers.first()?;
                (c.cpu_usage_nano_cores > 50_000_000 && c.memory_working_set_bytes > 0)
                    .then_some(c.cpu_usage_nano_cores)
            }
        })
        .await
        .unwrap()
    });
    assert!(cpu > 50_000_000, "{cpu}");
}

/// A `coxswain agent` process; SIGKILLed on drop.
struct AgentProc {
    child: std::process::Child,
    grpc: String,
}

impl AgentProc {
    fn start(server: &str, node: &str, root: &std::path::Path) -> AgentProc {
        let root = root.to_string_lossy().to_string();
        Self::start_args(&[
            "--node-name",
            node,
            "--server",
            server,
            "--pod-cidr",
            "127.209.1.0",
            "--root-dir",
            &root,
            "--pod-time-scale",
            "0.1",
            "--lease-renew-interval",
            "300ms",
        ])
    }

    fn start_args(args: &[&str]) -> AgentProc {
        use std::io::BufRead;
        let mut child = std::process::Command::new(coxswain_test_support::bin("coxswain"))
            .args(["agent", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn coxswain agent");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(T).expect("agent ready line");
        assert!(line.starts_with("coxswain agent ready"), "{line}");
        let grpc = line
            .split_whitespace()
            .find_map(|p| p.strip_prefix("grpc="))
            .unwrap()
            .to_string();
        AgentProc { child, grpc }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_separate_agent_serves_logs_and_finishes_deletions_after_a_restart() {
    let c = cluster(209, &["--nodes", "0"]);
    let root = tempfile::tempdir().unwrap();
    let agent = AgentProc::start(&c.url(), "edge1", root.path());
    wait_until("edge1 Ready", T, || {
        c.coxctl(&["get", "node", "edge1"])
            .stdout
            .contains(" Ready ")
            .then_some(())
    })
    .unwrap();
    let n: Value =
        serde_json::from_str(&c.coxctl(&["get", "node", "edge1", "-o", "json"]).stdout).unwrap();
    assert_eq!(
        n["metadata"]["annotations"]["coxswain.io/agent-endpoint"],
        // TLS when the store has it (the agent then authenticates its callers).
        format!("{}://{}", c.url().split("://").next().unwrap(), agent.grpc)
    );
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  nodeName: edge1
  terminationGracePeriodSeconds: 600
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "trap '' TERM; echo started; while true; do sleep 0.2; done"]
"#,
    );
    wait_status(&c, "default", "stubborn", "Running");
    let p = pod(&c, "default", "stubborn").unwrap();
    assert!(s(&p, "status.podIP")
        .as_str()
        .unwrap()
        .starts_with("127.209.1."));
    wait_until("log", T, || {
        let out = c.coxctl(&["logs", "stubborn"]);
        (out.stdout == "started\n").then_some(())
    })
    .unwrap();
    // Deleting: the container ignores SIGTERM and the grace period is long: Terminating.
    c.coxctl(&["delete", "pod", "stubborn", "--wait=false"])
        .success();
    wait_status(&c, "default", "stubborn", "Terminating");
    // The agent dies mid-deletion; a new one finishes it, and runs a pod bound meanwhile.
    drop(agent);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: later}
spec:
  nodeName: edge1
  containers: [{name: web, image: nginx}]
"#,
    );
    let _agent = AgentProc::start(&c.url(), "edge1", root.path());
    wait_until("stubborn removed", T, || {
        pod(&c, "default", "stubborn").is_none().then_some(())
    })
    .unwrap();
    wait_status(&c, "default", "later", "Running");
    let p = pod(&c, "default", "later").unwrap();
    let ip = s(&p, "status.podIP").as_str().unwrap().to_string();
    assert_eq!(http_get_answered(&ip, 80, "/").0, 200);
}

#[test]
fn one_agent_process_hosts_many_sim_nodes() {
    let c = cluster(210, &["--nodes", "0"]);
    let url = c.url();
    let _agent = AgentProc::start_args(&[
        "--sim-nodes",
        "50",
        "--server",
        &url,
        "--sim-node-prefix",
        "kwok",
        "--no-events",
    ]);
    wait_until("50 Ready sim nodes", T, || {
        let out = c.coxctl(&["get", "nodes", "--no-headers"]).stdout;
        (out.lines().filter(|l| l.contains(" Ready ")).count() == 50).then_some(())
    })
    .unwrap();
    let mut yaml = String::new();
    for i in 0..200 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, annotations: {{sim.coxswain.io/run-duration: 1s}}}}\nspec:\n  nodeName: kwok-{}\n  restartPolicy: Never\n  containers: [{{name: c, image: busybox}}]\n",
            i % 50 + 1
        ));
    }
    apply(&c, &yaml);
    wait_until("200 pods Succeeded", T, || {
        let out = c.coxctl(&["get", "pods", "--no-headers"]).stdout;
        (out.lines().filter(|l| l.contains("Completed")).count() == 200).then_some(())
    })
    .unwrap();
    let wide = c
        .coxctl(&["get", "pods", "-o", "wide", "--no-headers"])
        .stdout;
    assert!(
        wide.lines()
            .any(|l| l.starts_with("p49 ") && l.contains("kwok-50")),
        "{wide}"
    );
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

#[test]
fn containers_of_a_pod_share_an_empty_dir_and_nginx_serves_a_mounted_docroot() {
    let c = cluster(212, &[]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: shared}
spec:
  nodeName: node1
  volumes: [{name: html, emptyDir: {}}]
  containers:
  - name: nginx
    image: nginx
    volumeMounts: [{name: html, mountPath: /usr/share/nginx/html}]
  - name: writer
    image: busybox
    command: ["/bin/sh", "-c", "echo from-the-sidecar > /pages/index.html; echo written; sleep 3600"]
    volumeMounts: [{name: html, mountPath: /pages}]
"#,
    );
    wait_status(&c, "default", "shared", "Running");
    let ip = s(&pod(&c, "default", "shared").unwrap(), "status.podIP")
        .as_str()
        .unwrap()
        .to_string();
    wait_until("the sidecar's page served", T, || {
        http_get(&ip, 80, "/")
            .filter(|(code, body)| *code == 200 && body.trim() == "from-the-sidecar")
            .map(|_| ())
    })
    .unwrap();
    let log = c
        .coxctl(&["logs", "shared", "-c", "writer"])
        .success()
        .stdout;
    assert_eq!(log, "written\n");
    let err = c.coxctl(&["logs", "shared"]).failure().stderr;
    assert!(
        err.contains(
            "a container name must be specified for pod shared, choose one of: [nginx writer]"
        ),
        "{err}"
    );
}

#[test]
fn env_and_volumes_from_config_maps_and_secrets() {
    let c = cluster(213, &[]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: cfg}
spec:
  nodeName: node2
  restartPolicy: Never
  volumes:
  - name: conf
    configMap: {name: app-config}
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "echo $GREETING $PASSWORD $APP_mode; cat /etc/app/mode"]
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: app-secret, key: password}}
    envFrom:
    - prefix: APP_
      configMapRef: {name: app-config}
    volumeMounts: [{name: conf, mountPath: /etc/app}]
"#,
    );
    // Nothing exists yet: the volume cannot be set up.
    wait_until("FailedMount", T, || {
        events_of(&c, "default", "cfg")
            .contains(
                "MountVolume.SetUp failed for volume \"conf\" : configmap \"app-config\" not found",
            )
            .then_some(())
    })
    .unwrap();
    apply(
        &c,
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting: hello, mode: fast}
"#,
    );
    // The secret is still missing: CreateContainerConfigError.
    wait_status(&c, "default", "cfg", "CreateContainerConfigError");
    apply(
        &c,
        r#"
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData: {password: s3cret}
"#,
    );
    wait_status(&c, "default", "cfg", "Completed");
    let log = c.coxctl(&["logs", "cfg"]).success().stdout;
    assert_eq!(log, "hello s3cret fast\nfast");
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
fn admission_rejects_pods_beyond_the_node_capacity() {
    let c = cluster(215, &["--max-pods", "2", "--node-cpu", "2"]);
    let mut yaml = String::new();
    for name in ["a", "b"] {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: node1\n  containers: [{{name: c, image: nginx}}]\n"
        ));
    }
    apply(&c, &yaml);
    wait_status(&c, "default", "a", "Running");
    wait_status(&c, "default", "b", "Running");
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: third}
spec:
  nodeName: node1
  containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  nodeName: node2
  containers:
  - {name: c, image: nginx, resources: {requests: {cpu: "3"}}}
"#,
    );
    wait_status(&c, "default", "third", "OutOfpods");
    let p = pod(&c, "default", "third").unwrap();
    assert_eq!(s(&p, "status.phase"), "Failed");
    assert_eq!(
        s(&p, "status.message"),
        "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2"
    );
    wait_status(&c, "default", "big", "OutOfcpu");
    let p = pod(&c, "default", "big").unwrap();
    assert_eq!(
        s(&p, "status.message"),
        "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000"
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

#[test]
fn a_relative_data_dir_still_serves_the_nginx_page() {
    // The README runs `coxswain up` with the default, relative `--data-dir coxswain-data`;
    // containers run in their own directories, so every path handed to them must be absolute.
    let c = Coxswain::start_relative(
        &["up"],
        &["--in-memory", "--nodes", "1", "--pod-network-octet", "231"],
    )
    .expect("start coxswain up");
    namespace(&c, "rel");
    apply(
        &c,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: rel\nspec:\n  nodeName: node1\n  containers:\n  - name: nginx\n    image: nginx\n    ports:\n    - containerPort: 80\n",
    );
    let ip = wait_until("the pod running with an IP", T, || {
        let p = pod(&c, "rel", "web")?;
        let ip = s(&p, "status.podIP").as_str()?.to_string();
        (s(&p, "status.phase") == "Running" && !ip.is_empty()).then_some(ip)
    })
    .expect("running");
    let (code, body) = http_get_answered(&ip, 80, "/");
    assert_eq!(code, 200, "{body}");
}
