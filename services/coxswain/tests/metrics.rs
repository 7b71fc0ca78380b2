//! The metrics pipeline end to end on the real binary: `coxctl top` against `coxswain up` with
//! `--metric-resolution 1s` (S48: errors first, then numbers, with the process runtime and a
//! real CPU burner), sim pods whose `sim.coxswain.io/cpu` annotation patch changes the reported
//! usage, pushed pods/object/external metrics expiring with their TTL, and
//! `coxswain metrics-server` as its own process.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coxswain_api::v1::metrics_client::MetricsClient;
use coxswain_api::v1::{
    GetExternalMetricRequest, GetObjectMetricRequest, GetPodsMetricRequest, ListNodeMetricsRequest,
    ListPodMetricsRequest, ObjectReference, PushMetricsRequest, PushedMetric,
};
use coxswain_test_support::component::{field, Component};
use coxswain_test_support::{bin, scenarios_dir, wait_for, wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(40);

fn cluster(extra: &[&str]) -> Coxswain {
    let mut args = vec!["--metric-resolution", "1s"];
    args.extend_from_slice(extra);
    Coxswain::start_fast_up(&args).expect("start coxswain up")
}

fn apply(c: &Coxswain, yaml: &str) {
    c.apply(yaml);
}

fn pod_json(c: &Coxswain, ns: &str, name: &str) -> Option<Value> {
    let out = c.coxctl(&["get", "pod", name, "-n", ns, "-o", "json"]);
    out.ok.then(|| serde_json::from_str(&out.stdout).ok())?
}

fn wait_running(c: &Coxswain, ns: &str, name: &str) -> Value {
    wait_until(&format!("{ns}/{name} Running"), T, || {
        let p = pod_json(c, ns, name)?;
        (p["status"]["phase"] == "Running").then_some(p)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", c.coxctl(&["get", "pods", "-A"]).stdout))
}

/// The rows of a `top` table (header included), split on runs of spaces.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Millicores of a "123m" cell.
fn milli(cell: &str) -> i64 {
    cell.trim_end_matches('m').parse().unwrap_or(-1)
}

/// This machine's memory working set in MiB, as cAdvisor counts the root cgroup's.
fn host_working_set_mib() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |name: &str| -> Option<f64> {
        let l = text.lines().find(|l| l.starts_with(&format!("{name}:")))?;
        l.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kib("MemTotal")? - kib("MemFree")? - kib("Inactive(file)").unwrap_or(0.0)) / 1024.0)
}

/// The row of `name` in a table (first column).
fn row<'a>(table: &'a [Vec<String>], name: &str) -> Option<&'a Vec<String>> {
    table.iter().find(|r| r.first().is_some_and(|n| n == name))
}

fn http_get(ip: &str, port: u16) -> bool {
    let Ok(addr) = format!("{ip}:{port}").parse() else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        s,
        "GET / HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut out = String::new();
    s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.1 200")
}

/// S48 with real CPU: `top` fails with kubectl's start-up error, then shows the burner's
/// usage and every node's row with percentages of allocatable; when the load stops the CPU
/// falls back.
#[test]
fn s48_top_errors_first_then_real_numbers() {
    let c = cluster(&[]);
    // Right after start nothing has been scraped twice.
    let out = c.coxctl(&["top", "nodes"]).failure();
    assert_eq!(out.stderr, "error: metrics not available yet\n");
    let out = c.coxctl(&["top", "pods", "-n", "mayikt-sit"]).success();
    assert_eq!(out.stderr, "No resources found in mayikt-sit namespace.\n");

    // The seed's metrics-server manifest is an ordinary workload.
    let manifest = std::fs::read_to_string(scenarios_dir().join("43-metrics-server.yaml")).unwrap();
    apply(&c, &manifest);

    let nodes = wait_until("top nodes shows both nodes", T, || {
        let out = c.coxctl(&["top", "nodes"]);
        let t = rows(&out.stdout);
        (out.ok && row(&t, "node1").is_some() && row(&t, "node2").is_some()).then_some(out.stdout)
    })
    .unwrap();
    let header = nodes.lines().next().unwrap();
    assert_eq!(
        header,
        "NAME    CPU(cores)   CPU(%)   MEMORY(bytes)   MEMORY(%)   "
    );

    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: burner
  labels: {app: burner}
spec:
  nodeName: node1
  containers:
  - name: php
    image: registry.k8s.io/hpa-example
    ports: [{containerPort: 8080}]
    resources: {requests: {cpu: 200m}}
"#,
    );
    let p = wait_running(&c, "default", "burner");
    let ip = p["status"]["podIP"].as_str().unwrap().to_string();

    // Load: back-to-back requests (each burns 50 ms of CPU) from two threads, bounded in time.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ip) = (stop.clone(), ip.clone());
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    http_get(&ip, 8080);
                }
            })
        })
        .collect();
    let busy = wait_until("top pod burner shows CPU load", T, || {
        let out = c.coxctl(&["top", "pod", "burner"]);
        let t = rows(&out.stdout);
        let r = row(&t, "burner")?;
        (milli(&r[1]) >= 100).then(|| r.clone())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", c.coxctl(&["top", "pods"]).stdout));
    assert!(busy[2].ends_with("Mi"), "{busy:?}");

    // Process-runtime nodes report the machine's own usage (/proc/stat, /proc/meminfo), as
    // kubelet's node summary: node1 carries at least the burner's load; CPU(%) of its 4
    // allocatable cores.
    let n1 = wait_until("node1 CPU in top nodes", T, || {
        let out = c.coxctl(&["top", "nodes"]);
        let t = rows(&out.stdout);
        let r = row(&t, "node1")?;
        (milli(&r[1]) >= 100).then(|| r.clone())
    })
    .unwrap();
    let pct: i64 = n1[2].trim_end_matches('%').parse().unwrap();
    assert_eq!(pct, milli(&n1[1]) * 100 / 4000, "{n1:?}");
    assert!(n1[4].ends_with('%'), "{n1:?}");
    // Its memory is the machine's working set (MemTotal - MemFree - Inactive(file)), not the
    // few MiB of its pods: within 30% of what this test reads around the same moment.
    wait_until("node memory is the machine's working set", T, || {
        let before = host_working_set_mib()?;
        let out = c.coxctl(&["top", "nodes"]);
        let after = host_working_set_mib()?;
        let t = rows(&out.stdout);
        let mib: f64 = row(&t, "node1")?[3].strip_suffix("Mi")?.parse().ok()?;
        (mib >= before.min(after) * 0.7 && mib <= before.max(after) * 1.3).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", c.coxctl(&["top", "nodes"]).stdout));

    let out = c
        .coxctl(&["top", "pods", "--containers", "-l", "app=burner"])
        .success();
    let t = rows(&out.stdout);
    assert_eq!(t[0], ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]);
    assert_eq!(&t[1][..2], ["burner", "php"]);
    let out = c.coxctl(&["top", "pods", "-A"]).success();
    assert_eq!(
        rows(&out.stdout)[0],
        ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    );
    let out = c.coxctl(&["top", "pods", "-n", "kube-system"]).success();
    assert!(out.stdout.contains("metrics-server-"), "{}", out.stdout);

    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.join().unwrap();
    }
    wait_until("burner CPU falls after the load", T, || {
        let out = c.coxctl(&["top", "pod", "burner"]);
        let t = rows(&out.stdout);
        (milli(&row(&t, "burner")?[1]) < 30).then_some(())
    })
    .unwrap();

    let out = c.coxctl(&["top", "pod", "nope"]).failure();
    assert_eq!(
        out.stderr,
        "Error from server (NotFound): podmetrics.metrics.k8s.io \"default/nope\" not found\n"
    );
    let out = c.coxctl(&["top", "nodes", "--sort-by", "disk"]).failure();
    assert_eq!(out.stderr, "error: --sort-by accepts only cpu or memory\n");
}

/// Sim pods report what their annotations script, and patching the annotation changes the
/// usage `top` shows (what drives the HPA at scale on sim nodes).
#[test]
fn sim_pod_usage_follows_its_annotation() {
    let c = cluster(&["--runtime", "sim"]);
    for (name, cpu) in [("sim-a", "250m"), ("sim-b", "100m")] {
        apply(
            &c,
            &format!(
                r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: sim}}
  annotations: {{sim.coxswain.io/cpu: "{cpu}", sim.coxswain.io/memory: "64Mi"}}
spec:
  containers:
  - name: app
    image: nginx
"#
            ),
        );
    }
    let near = |cell: &str, want: i64| (milli(cell) - want).abs() <= 3;
    wait_until("sim pods at their scripted usage", T, || {
        let out = c.coxctl(&["top", "pods", "-l", "app=sim", "--sort-by", "cpu"]);
        let t = rows(&out.stdout);
        (t.len() == 3
            && t[1][0] == "sim-a"
            && near(&t[1][1], 250)
            && t[1][2] == "64Mi"
            && t[2][0] == "sim-b"
            && near(&t[2][1], 100))
        .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", c.coxctl(&["top", "pods"]).stdout));

    c.coxctl(&[
        "annotate",
        "pod",
        "sim-b",
        "sim.coxswain.io/cpu=750m",
        "--overwrite",
    ])
    .success();
    wait_until("sim-b follows the patched annotation", T, || {
        let out = c.coxctl(&["top", "pods", "-l", "app=sim", "--sort-by", "cpu"]);
        let t = rows(&out.stdout);
        (t.len() == 3 && t[1][0] == "sim-b" && near(&t[1][1], 750)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", c.coxctl(&["top", "pods"]).stdout));

    // The node sums its pods: 750m + 250m on whichever nodes they run.
    wait_until("the nodes sum their pods", T, || {
        let out = c.coxctl(&["top", "nodes", "--no-headers"]);
        let sum: i64 = rows(&out.stdout).iter().map(|r| milli(&r[1])).sum();
        ((sum - 1000).abs() <= 6).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", c.coxctl(&["top", "nodes"]).stdout));

    // A deleted pod drops out.
    c.coxctl(&["delete", "pod", "sim-a"]).success();
    wait_until("sim-a drops out", T, || {
        let out = c.coxctl(&["top", "pods"]);
        (out.ok && !out.stdout.contains("sim-a")).then_some(())
    })
    .unwrap();
}

fn pushed(ty: &str, name: &str, obj: Option<(&str, &str)>, value: &str, ttl: &str) -> PushedMetric {
    PushedMetric {
        r#type: ty.into(),
        metric_name: name.into(),
        described_object: obj.map(|(kind, name)| ObjectReference {
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
            ..Default::default()
        }),
        namespace: "default".into(),
        value: value.into(),
        ttl: ttl.into(),
        ..Default::default()
    }
}

/// Pushed pods, object and external metrics are served to the HPA's queries until their TTL
/// passes; bad pushes are INVALID_ARGUMENT naming the field.
#[test]
fn pushed_metrics_expire_with_their_ttl() {
    let c = cluster(&["--runtime", "sim"]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {containers: [{name: app, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {containers: [{name: app, image: nginx}]}
"#,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = c.url();
    rt.block_on(async move {
        let mut m = MetricsClient::new(coxswain_test_support::channel(&url).await.unwrap());
        // The pods must be in the service's informer before a Pods query can name them.
        wait_for("pods known", T, || {
            let mut m = m.clone();
            async move {
                let r = m
                    .push_metrics(PushMetricsRequest {
                        metrics: vec![
                            pushed("pods", "rps", Some(("Pod", "web-1")), "12", "3s"),
                            pushed("pods", "rps", Some(("Pod", "other")), "40", "3s"),
                        ],
                    })
                    .await
                    .ok()?;
                assert_eq!(r.into_inner().accepted, 2);
                let got = m
                    .get_pods_metric(GetPodsMetricRequest {
                        namespace: "default".into(),
                        metric_name: "rps".into(),
                        label_selector: "app=web".into(),
                        metric_selector: String::new(),
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .items;
                (got.len() == 1).then_some(got)
            }
        })
        .await
        .map(|got| {
            assert_eq!(got[0].value, "12");
            assert_eq!(got[0].described_object.as_ref().unwrap().name, "web-1");
        })
        .unwrap();

        let mut ext = pushed("external", "queue_messages_ready", None, "30", "3s");
        ext.metric_labels
            .insert("queue".into(), "worker_tasks".into());
        m.push_metrics(PushMetricsRequest {
            metrics: vec![
                pushed(
                    "object",
                    "requests-per-second",
                    Some(("deployment", "web")),
                    "2k",
                    "3s",
                ),
                ext,
            ],
        })
        .await
        .unwrap();
        let v = m
            .get_object_metric(GetObjectMetricRequest {
                described_object: Some(ObjectReference {
                    kind: "Deployment".into(),
                    namespace: "default".into(),
                    name: "web".into(),
                    ..Default::default()
                }),
                metric_name: "requests-per-second".into(),
                metric_selector: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v.value, "2k");
        assert_eq!(v.described_object.unwrap().api_version, "apps/v1");
        let ext_req = GetExternalMetricRequest {
            namespace: "default".into(),
            metric_name: "queue_messages_ready".into(),
            metric_selector: "queue=worker_tasks".into(),
        };
        let e = m
            .get_external_metric(ext_req.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(e.items.len(), 1);
        assert_eq!(e.items[0].value, "30");

        // Bad input.
        let err = m
            .push_metrics(PushMetricsRequest {
                metrics: vec![pushed("histogram", "x", None, "1", "")],
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message()
                .starts_with("metrics[0].type: Unsupported value"),
            "{err:?}"
        );
        let err = m
            .push_metrics(PushMetricsRequest {
                metrics: vec![pushed("external", "x", None, "1", "later")],
            })
            .await
            .unwrap_err();
        assert!(
            err.message().starts_with("metrics[0].ttl: Invalid value"),
            "{err:?}"
        );
        let err = m
            .list_pod_metrics(ListPodMetricsRequest {
                namespace: String::new(),
                label_selector: "app in (".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message().starts_with("labelSelector: Invalid value"),
            "{err:?}"
        );

        // After the TTL every series is gone.
        wait_for("pushed values expire", Duration::from_secs(10), || {
            let mut m = m.clone();
            let ext_req = ext_req.clone();
            async move {
                let pods = m
                    .get_pods_metric(GetPodsMetricRequest {
                        namespace: "default".into(),
                        metric_name: "rps".into(),
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .items;
                let ext = m
                    .get_external_metric(ext_req)
                    .await
                    .ok()?
                    .into_inner()
                    .items;
                let obj = m
                    .get_object_metric(GetObjectMetricRequest {
                        described_object: Some(ObjectReference {
                            kind: "Deployment".into(),
                            namespace: "default".into(),
                            name: "web".into(),
                            ..Default::default()
                        }),
                        metric_name: "requests-per-second".into(),
                        metric_selector: String::new(),
                    })
                    .await;
                let gone = obj.is_err_and(|e| e.code() == tonic::Code::NotFound);
                (pods.is_empty() && ext.is_empty() && gone).then_some(())
            }
        })
        .await
        .unwrap();
    });
}

/// A `coxswain metrics-server` child process, killed on drop.
/// `coxswain metrics-server` (killed on drop) and its gRPC address.
struct MetricsServerProcess {
    _component: Component,
    grpc: String,
}

impl MetricsServerProcess {
    fn start(server: &str, extra: &[&str]) -> MetricsServerProcess {
        let mut args = vec![
            "metrics-server",
            "--server",
            server,
            "--listen",
            "127.0.0.1:0",
            "--metric-resolution",
            "1s",
        ];
        args.extend_from_slice(extra);
        let mut component = Component::start_temp(&args);
        let line = component.ready("coxswain metrics-server ready", Duration::from_secs(30));
        MetricsServerProcess {
            grpc: field(&line, "grpc"),
            _component: component,
        }
    }
}

/// With the in-process pipeline off, `top` says the API is not available; a separate
/// `coxswain metrics-server` scrapes the same agents and serves the same API.
#[test]
fn metrics_server_runs_as_its_own_process() {
    let c = cluster(&[
        "--runtime",
        "sim",
        "--no-metrics-server",
        "--metrics-resolution",
        "1s",
    ]);
    let out = c.coxctl(&["top", "nodes"]).failure();
    assert_eq!(out.stderr, "error: Metrics API not available\n");
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: sim-c
  labels: {app: sim}
  annotations: {sim.coxswain.io/cpu: "300m", sim.coxswain.io/memory: "32Mi"}
spec: {containers: [{name: app, image: nginx}]}
"#,
    );
    // A bad proxy metrics URL is refused at start.
    let out = Command::new(bin("coxswain"))
        .args([
            "metrics-server",
            "--listen",
            "127.0.0.1:0",
            "--proxy-metrics-url",
            "ftp://127.0.0.1/metrics",
        ])
        .output()
        .expect("run coxswain metrics-server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--proxy-metrics-url: invalid value \"ftp://127.0.0.1/metrics\""),
        "{err}"
    );
    // It scrapes the cluster's proxy (in `up`, on its metrics address) for request rates.
    let proxy_metrics = format!("http://{}/metrics", c.metrics);
    let ms = MetricsServerProcess::start(&c.url(), &["--proxy-metrics-url", &proxy_metrics]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let m = MetricsClient::connect(format!("http://{}", ms.grpc))
            .await
            .unwrap();
        let pod = wait_for("sim-c metrics from the separate process", T, || {
            let mut m = m.clone();
            async move {
                let items = m
                    .list_pod_metrics(ListPodMetricsRequest {
                        namespace: "default".into(),
                        label_selector: "app=sim".into(),
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .items;
                items.into_iter().next()
            }
        })
        .await
        .unwrap();
        let usage = &pod.containers[0].usage;
        assert_eq!(usage["memory"], "32Mi");
        let cpu = coxswain_api::quantity::Quantity::parse(&usage["cpu"])
            .unwrap()
            .milli_value();
        assert!((cpu - 300).abs() <= 3, "{usage:?}");
        assert!(pod.window.ends_with('s'), "{}", pod.window);
        let nodes = m
            .clone()
            .list_node_metrics(ListNodeMetricsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .items;
        assert_eq!(nodes.len(), 2, "{nodes:?}");
        // The `kubernetes` Service carries gRPC (not HTTP/1): its request rate is 0, served
        // once the proxy's counters have been scraped twice.
        let rps = wait_for("the kubernetes Service's requests-per-second", T, || {
            let mut m = m.clone();
            async move {
                m.get_object_metric(GetObjectMetricRequest {
                    described_object: Some(ObjectReference {
                        kind: "Service".into(),
                        namespace: "default".into(),
                        name: "kubernetes".into(),
                        ..Default::default()
                    }),
                    metric_name: "requests-per-second".into(),
                    metric_selector: String::new(),
                })
                .await
                .ok()
                .map(|r| r.into_inner())
            }
        })
        .await
        .unwrap();
        assert_eq!(rps.value, "0", "{rps:?}");
        assert_eq!(rps.described_object.unwrap_or_default().kind, "Service");
        drop(ms);
    });
}
