//! Issue 15 §2: a real Prometheus (Debian's `prometheus`, installed by .ci/run) scrapes
//! `coxswain up` and the separate processes with the shipped scrape config, and its HTTP API
//! shows the cluster; `promtool check metrics` passes on every endpoint; the shipped rules pass
//! `promtool check rules` and their unit tests. Nothing here is skipped: without prometheus or
//! promtool the tests fail.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coxswain_test_support::component::{field, Component};
use coxswain_test_support::objects::nginx_deployment;
use coxswain_test_support::{wait_until, Coxswain};

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/observability")
}

/// A separate `coxswain <subcommand>` process (killed on drop) and its metrics address.
struct Proc {
    _component: Component,
    metrics: String,
}

impl Proc {
    fn start(sub: &str, args: &[&str], log: &Path) -> Proc {
        let all: Vec<&str> = std::iter::once(sub).chain(args.iter().copied()).collect();
        let mut component = Component::start(&all, log);
        let line = component.ready(&format!("coxswain {sub} ready"), Duration::from_secs(30));
        Proc {
            metrics: field(&line, "metrics"),
            _component: component,
        }
    }
}

/// GET over a plain socket; (status code, body).
fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // Prometheus may answer chunked; its JSON is one chunk-framed document then.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `promtool check metrics` on one endpoint's scrape.
fn promtool_check_metrics(addr: &str) {
    let (code, body) = http_get(addr, "/metrics").unwrap();
    assert_eq!(code, 200, "{addr}: {body}");
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on {addr}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus on a loopback port with the shipped config, killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Prometheus {
    /// The shipped config with each job's target replaced by the address in `targets`, and a
    /// 1 s scrape interval.
    fn start(dir: &Path, targets: &[(&str, &str)]) -> Prometheus {
        let mut config = std::fs::read_to_string(docs().join("prometheus.yml")).unwrap();
        let defaults = [
            ("coxswain", "127.0.0.1:9464"),
            ("scheduler", "127.0.0.1:10259"),
            ("controllers", "127.0.0.1:10257"),
            ("node-lifecycle", "127.0.0.1:10258"),
            ("agent", "127.0.0.1:10255"),
            ("metrics-server", "127.0.0.1:10256"),
        ];
        for (job, default) in defaults {
            let (_, actual) = targets
                .iter()
                .find(|(j, _)| *j == job)
                .unwrap_or_else(|| panic!("no target for job {job}"));
            let from = format!("targets: [\"{default}\"]");
            assert_eq!(config.matches(&from).count(), 1, "{from} in prometheus.yml");
            config = config.replace(&from, &format!("targets: [\"{actual}\"]"));
        }
        config = config
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        std::fs::copy(docs().join("rules.yml"), dir.join("rules.yml")).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("prometheus (Debian's prometheus package; .ci/run installs it)");
        let p = Prometheus { child, addr, log };
        wait_until("prometheus ready", Duration::from_secs(30), || {
            matches!(http_get(&p.addr, "/-/ready"), Ok((200, _))).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}: {}", p.log()));
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query's result vector: (labels, value).
    fn query(&self, q: &str) -> Vec<(serde_json::Value, f64)> {
        let (code, body) =
            http_get(&self.addr, &format!("/api/v1/query?query={}", urlencode(q))).unwrap();
        assert_eq!(code, 200, "{q}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{q}: {body}");
        v["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let value = r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN);
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// Wait until `check` accepts the result of `q`.
    fn wait(&self, what: &str, q: &str, check: impl Fn(&[(serde_json::Value, f64)]) -> bool) {
        let mut last = Vec::new();
        let r = wait_until(what, Duration::from_secs(60), || {
            last = self.query(q);
            check(&last).then_some(())
        });
        if let Err(e) = r {
            panic!("{e}; last result of {q}: {last:?}");
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        resources:
          requests: {cpu: 100m}
";

#[test]
fn prometheus_scrapes_every_process_and_sees_the_workload() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Coxswain::start_fast_up(&[
        "--runtime",
        "sim",
        "--no-scheduler",
        "--no-controllers",
        "--no-node-lifecycle",
        "--metric-resolution",
        "1s",
        "--metrics-resolution",
        "1s",
    ])
    .unwrap();
    let server = up.url();
    let log = |n: &str| tmp.path().join(format!("{n}.log"));
    let scheduler = Proc::start("scheduler", &["--server", &server], &log("scheduler"));
    let controllers = Proc::start("controllers", &["--server", &server], &log("controllers"));
    let lifecycle = Proc::start("node-lifecycle", &["--server", &server], &log("nl"));
    let agent = Proc::start(
        "agent",
        &[
            "--server",
            &server,
            "--sim-nodes",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--metrics-resolution",
            "1s",
        ],
        &log("agent"),
    );
    let metrics_server = Proc::start(
        "metrics-server",
        &[
            "--server",
            &server,
            "--listen",
            "127.0.0.1:0",
            "--metric-resolution",
            "1s",
        ],
        &log("metrics-server"),
    );
    let targets = [
        ("coxswain", up.metrics.as_str()),
        ("scheduler", scheduler.metrics.as_str()),
        ("controllers", controllers.metrics.as_str()),
        ("node-lifecycle", lifecycle.metrics.as_str()),
        ("agent", agent.metrics.as_str()),
        ("metrics-server", metrics_server.metrics.as_str()),
    ];
    let prom = Prometheus::start(tmp.path(), &targets);

    up.apply(WEB).success();

    // Every target is up.
    prom.wait("up == 1 for all six targets", "up", |r| {
        r.len() == 6 && r.iter().all(|(_, v)| *v == 1.0)
    });
    // The store's request rate is positive.
    prom.wait(
        "a positive request rate",
        "sum(rate(apiserver_request_total[10s]))",
        |r| r.first().is_some_and(|(_, v)| *v > 0.0),
    );
    prom.wait(
        "creates of pods counted by resource",
        // subresource="": the pods themselves, not their bindings (one BindBatch request
        // carries several).
        "apiserver_request_total{verb=\"CREATE\",resource=\"pods\",subresource=\"\",code=\"200\"}",
        |r| r.first().is_some_and(|(_, v)| *v >= 3.0),
    );
    // The Deployment's replicas, from the store's cache.
    prom.wait(
        "kube_deployment_status_replicas == 3",
        "kube_deployment_status_replicas{namespace=\"default\",deployment=\"web\"}",
        |r| r.len() == 1 && r[0].1 == 3.0,
    );
    prom.wait(
        "three Running web pods",
        "sum(kube_pod_status_phase{namespace=\"default\",pod=~\"web-.*\",phase=\"Running\"})",
        |r| r.first().is_some_and(|(_, v)| *v == 3.0),
    );
    // A pod's CPU usage series, from whichever agent runs it.
    prom.wait(
        "pod CPU series of the web pods",
        "pod_cpu_usage_seconds_total{namespace=\"default\",pod=~\"web-.*\"}",
        |r| r.len() == 3,
    );
    // The work queues of the separate controllers process.
    prom.wait(
        "the deployment work queue counted adds",
        "workqueue_adds_total{job=\"controllers\",name=\"deployment\"}",
        |r| r.first().is_some_and(|(_, v)| *v >= 1.0),
    );
    prom.wait(
        "the separate scheduler scheduled the pods",
        "sum(scheduler_schedule_attempts_total{job=\"scheduler\",result=\"scheduled\"})",
        |r| r.first().is_some_and(|(_, v)| *v >= 3.0),
    );

    for (job, addr) in targets {
        let (_, body) = http_get(addr, "/metrics").unwrap();
        assert!(
            body.contains("process_resident_memory_bytes ")
                && body.contains(&format!("component=\"{}\"", component(job))),
            "{job}: {body}"
        );
        promtool_check_metrics(addr);
    }
}

fn component(job: &str) -> &str {
    match job {
        "coxswain" => "up",
        j => j,
    }
}

#[test]
fn shipped_prometheus_config_and_rules_pass_promtool() {
    let run = |args: &[&str]| {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(docs())
            .output()
            .expect("promtool (Debian's prometheus package; .ci/run installs it)");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["check", "config", "prometheus.yml"]);
    run(&["check", "rules", "rules.yml"]);
    run(&["test", "rules", "rules_test.yml"]);
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(docs().join("dashboard-hpa.json")).unwrap())
            .unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    for family in [
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_horizontalpodautoscaler_status_target_metric",
        "kube_horizontalpodautoscaler_spec_target_metric",
        "apiserver_request_total",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(family)),
            "dashboard has no panel over {family}"
        );
    }
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let mut c = Coxswain::start_with(&["store", "--log-format", "json"], &[]).unwrap();
    c.coxctl(&["get", "pods", "nope"]).failure();
    c.terminate().unwrap();
    let log = c.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    for l in &lines {
        assert!(l["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
        assert!(l["level"].is_string() && l["message"].is_string(), "{l}");
    }
    let serving = lines
        .iter()
        .find(|l| l["message"] == "coxswain is serving")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(serving["fields"]["grpc"], c.grpc.as_str(), "{serving}");
    assert_eq!(serving["level"], "INFO");
}

/// The JSON log lines in `text` whose message is `message` and whose `request_id` is `id`.
fn lines_of(text: &str, message: &str, id: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == message && l["fields"]["request_id"] == id)
        .collect()
}

/// Issue 15 §3: one `coxctl apply` followed through the logs of separate processes. The store
/// stamps the Deployment's watch event with the apply's x-request-id; the controllers process
/// reconciles the Deployment with it (its log line) and sends it with the ReplicaSet it creates
/// (the store's line for that create). A Workloads call (`coxctl scale`) carries the id too,
/// and so do the writes the Workloads service and then the controllers make for it.
#[test]
fn a_request_id_follows_an_apply_from_the_store_to_the_controllers_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Coxswain::start_fast_up(&[
        "--log-format",
        "json",
        "--runtime",
        "sim",
        "--nodes",
        "1",
        "--no-controllers",
    ])
    .unwrap();
    let ctrl_log = tmp.path().join("controllers.log");
    let _controllers = Proc::start(
        "controllers",
        &["--server", &up.url(), "--log-format", "json"],
        &ctrl_log,
    );
    let controllers = || std::fs::read_to_string(&ctrl_log).unwrap_or_default();
    let t = Duration::from_secs(30);
    up.coxctl_in(
        &["--request-id", "trace-web-1", "apply", "-f", "-"],
        None,
        Some(&nginx_deployment("web", 1)),
    )
    .success();
    // The store's line for the Deployment's write.
    let store_line = |id: &str, resource: &str, verbs: &[&str]| {
        lines_of(&up.log(), "request", id).into_iter().find(|l| {
            l["fields"]["resource"] == resource
                && l["fields"]["code"] == "200"
                && verbs.iter().any(|v| l["fields"]["verb"] == *v)
        })
    };
    wait_until("the store's line for the apply", t, || {
        store_line("trace-web-1", "deployments", &["APPLY", "CREATE", "PATCH"])
    })
    .unwrap();
    // The controller's line for the reconcile of that Deployment.
    let rec = wait_until("the deployment controller's line", t, || {
        lines_of(&controllers(), "reconcile", "trace-web-1")
            .into_iter()
            .find(|l| l["fields"]["controller"] == "deployment")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", controllers()));
    assert_eq!(rec["fields"]["key"], "default/web", "{rec}");
    assert_eq!(rec["level"], "INFO", "{rec}");
    // The store's line for the ReplicaSet the controller created under it.
    let rs = wait_until("the store's line for the ReplicaSet create", t, || {
        store_line("trace-web-1", "replicasets", &["CREATE"])
    })
    .unwrap_or_else(|e| panic!("{e}: {}", up.log()));
    assert_eq!(rs["level"], "INFO", "{rs}");
    // The ReplicaSet controller, reconciling the ReplicaSet created under the id, creates the
    // pod with it.
    wait_until("the store's line for the pod create", t, || {
        store_line("trace-web-1", "pods", &["CREATE"])
    })
    .unwrap_or_else(|e| panic!("{e}: {}", up.log()));

    // A Workloads call: the Workloads service's line, its write of the Deployment, and the
    // controller's write of the ReplicaSet's new replica count all carry the id.
    up.coxctl(&[
        "--request-id",
        "trace-scale-2",
        "scale",
        "deployment",
        "web",
        "--replicas",
        "2",
    ])
    .success();
    wait_until("the Workloads service's line", t, || {
        store_line("trace-scale-2", "workloads", &["SCALE"])
    })
    .unwrap_or_else(|e| panic!("{e}: {}", up.log()));
    wait_until("the Deployment's write under the scale", t, || {
        store_line("trace-scale-2", "deployments", &["UPDATE", "PATCH"])
    })
    .unwrap_or_else(|e| panic!("{e}: {}", up.log()));
    wait_until("the ReplicaSet's write under the scale", t, || {
        store_line("trace-scale-2", "replicasets", &["UPDATE", "PATCH"])
    })
    .unwrap_or_else(|e| panic!("{e}: {}", up.log()));
    // Writes made without an id (the agent's pod status, the scheduler's binding) carry none:
    // the ids seen are only the two given.
    for l in up.log().lines() {
        let Ok(l) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if l["message"] == "request" {
            let id = l["fields"]["request_id"].as_str().unwrap_or_default();
            assert!(
                id == "trace-web-1" || id == "trace-scale-2" || id.len() == 36,
                "{l}"
            );
        }
    }
}
