//! The HorizontalPodAutoscaler end to end on the real binary with sim nodes whose CPU use the
//! pods' `sim.coxswain.io/cpu` annotation scripts (S49 with short windows): scale out under
//! load without ever exceeding maxReplicas, back in to exactly minReplicas once the load is
//! gone; `coxctl autoscale`, `get hpa`, `describe hpa`, `autoscale explain`; bad input.
use std::time::Duration;

use coxswain_test_support::objects::nginx_deployment;
use coxswain_test_support::{bin, scenarios_dir, wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn cluster() -> Coxswain {
    Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            "--nodes",
            "2",
            "--runtime",
            "sim",
            "--metrics-resolution",
            "300ms",
            "--metric-resolution",
            "1s",
            "--horizontal-pod-autoscaler-sync-period",
            "1s",
            "--horizontal-pod-autoscaler-downscale-stabilization",
            "3s",
            "--horizontal-pod-autoscaler-cpu-initialization-period",
            "10s",
        ],
    )
    .expect("start coxswain up")
}

fn num(v: &Value, path: &[&str]) -> i64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_i64().unwrap_or(0)
}

/// The seed's Deployment (44) with every pod burning `cpu`.
fn deployment(cpu: &str) -> String {
    let text = std::fs::read_to_string(scenarios_dir().join("44-deployment-nginx-hpa-target.yaml"))
        .expect("scenario 44");
    text.replace(
        "    metadata:\n      labels:\n        run: nginx\n",
        &format!("    metadata:\n      labels:\n        run: nginx\n      annotations:\n        sim.coxswain.io/cpu: {cpu}\n"),
    )
}

#[test]
fn s49_scales_out_to_at_most_max_and_back_to_exactly_min() {
    let c = cluster();
    c.coxctl(&["create", "ns", "mayikt-sit"]).success();
    c.coxctl_in(&["apply", "-f", "-"], None, Some(&deployment("110m")))
        .success();
    let hpa_file = scenarios_dir().join("45-hpa-mayikt.yaml");
    let out = c
        .coxctl(&["create", "-f", hpa_file.to_str().expect("path")])
        .success();
    assert!(
        out.stdout
            .contains("horizontalpodautoscaler.autoscaling/mayikt-hpa created"),
        "{}",
        out.stdout
    );

    // 110m of 200m is 55% against 2%: the controller wants far more than 10 and stops at 10.
    let mut max_seen = 0;
    wait_until("scale-out to maxReplicas", T, || {
        let d = c.json(&["get", "deploy", "nginx", "-n", "mayikt-sit"]);
        let h = c.json(&["get", "hpa", "mayikt-hpa", "-n", "mayikt-sit"]);
        let replicas = num(&d, &["spec", "replicas"]);
        max_seen = max_seen
            .max(replicas)
            .max(num(&h, &["status", "desiredReplicas"]));
        (num(&h, &["status", "currentReplicas"]) == 10).then_some(())
    })
    .expect("scaled out");
    assert!(max_seen <= 10, "went above maxReplicas: {max_seen}");
    let table = c
        .coxctl(&["get", "hpa", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("Deployment/nginx"), "{table}");
    let row = table.lines().nth(1).expect("row");
    assert!(row.contains("%/2%"), "{table}");
    let describe = c
        .coxctl(&["describe", "hpa", "mayikt-hpa", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(describe.contains("Reference:"), "{describe}");
    assert!(
        describe.contains("resource cpu on pods  (as a percentage of request):"),
        "{describe}"
    );
    assert!(describe.contains("Max replicas:"), "{describe}");
    assert!(describe.contains("SuccessfulRescale"), "{describe}");
    assert!(describe.contains("above target"), "{describe}");
    let explain = c
        .coxctl(&["autoscale", "explain", "mayikt-hpa", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(
        explain.contains("cpu resource utilization (percentage of request)"),
        "{explain}"
    );
    assert!(explain.contains("Desired replicas: 10"), "{explain}");

    // -o json|yaml at the version asked for: autoscaling/v2 by default; autoscaling/v1 keeps
    // its two cpu fields and carries the rest in upstream's round-trip annotations.
    let v2 = c.json(&["get", "hpa", "mayikt-hpa", "-n", "mayikt-sit"]);
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        2
    );
    assert!(v2["metadata"]["annotations"]
        .get("autoscaling.alpha.kubernetes.io/conditions")
        .is_none());
    let v1 = c.json(&[
        "get",
        "hpa.v1.autoscaling",
        "mayikt-hpa",
        "-n",
        "mayikt-sit",
    ]);
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 2);
    assert!(v1["spec"].get("metrics").is_none(), "{v1}");
    assert!(
        v1["status"]["currentCPUUtilizationPercentage"].as_i64() > Some(2),
        "{v1}"
    );
    assert!(v1["status"].get("conditions").is_none(), "{v1}");
    let ann = |k: &str| -> Value {
        let text = v1["metadata"]["annotations"][k].as_str().unwrap_or("null");
        serde_json::from_str(text).expect("annotation JSON")
    };
    let conds = ann("autoscaling.alpha.kubernetes.io/conditions");
    assert!(
        conds
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["type"] == "AbleToScale")),
        "{v1}"
    );
    let current = ann("autoscaling.alpha.kubernetes.io/current-metrics");
    assert_eq!(current[0]["resource"]["name"], "cpu", "{v1}");
    assert_eq!(
        current[0]["resource"]["currentAverageUtilization"],
        v1["status"]["currentCPUUtilizationPercentage"]
    );
    let yaml = c
        .coxctl(&[
            "get",
            "hpa.v1.autoscaling",
            "mayikt-hpa",
            "-n",
            "mayikt-sit",
            "-o",
            "yaml",
        ])
        .success()
        .stdout;
    assert!(yaml.starts_with("apiVersion: autoscaling/v1"), "{yaml}");
    assert!(yaml.contains("targetCPUUtilizationPercentage: 2"), "{yaml}");

    // The load stops: every pod down to 1m (0.5%).
    c.coxctl(&[
        "annotate",
        "pods",
        "-l",
        "run=nginx",
        "-n",
        "mayikt-sit",
        "sim.coxswain.io/cpu=1m",
        "--overwrite",
    ])
    .success();
    let mut min_seen = i64::MAX;
    wait_until("scale-in to minReplicas", T, || {
        let d = c.json(&["get", "deploy", "nginx", "-n", "mayikt-sit"]);
        let replicas = num(&d, &["spec", "replicas"]);
        min_seen = min_seen.min(replicas);
        (replicas == 1).then_some(())
    })
    .expect("scaled in");
    assert_eq!(min_seen, 1, "went below minReplicas");
    // It stays at exactly 1: the controller keeps deciding 1 (TooFewReplicas or within range).
    wait_until("steady at minReplicas", T, || {
        let h = c.json(&["get", "hpa", "mayikt-hpa", "-n", "mayikt-sit"]);
        let d = c.json(&["get", "deploy", "nginx", "-n", "mayikt-sit"]);
        assert_eq!(num(&d, &["spec", "replicas"]), 1, "left minReplicas");
        let conds = h["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ok = num(&h, &["status", "currentReplicas"]) == 1
            && num(&h, &["status", "desiredReplicas"]) == 1
            && conds
                .iter()
                .any(|c| c["type"] == "ScalingActive" && c["status"] == "True");
        ok.then_some(())
    })
    .expect("steady");
    let events = c
        .coxctl(&["get", "events", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(events.contains("All metrics below target"), "{events}");
}

#[test]
fn autoscale_command_and_bad_input() {
    let c = cluster();
    c.coxctl_in(
        &["apply", "-f", "-"],
        None,
        Some(&deployment("0m").replace("namespace: mayikt-sit", "namespace: default")),
    )
    .success();
    let out = c
        .coxctl(&[
            "autoscale",
            "deployment",
            "nginx",
            "--min=1",
            "--max=10",
            "--cpu-percent=2",
        ])
        .success();
    assert_eq!(
        out.stdout.trim(),
        "horizontalpodautoscaler.autoscaling/nginx autoscaled"
    );
    wait_until("TARGETS with a value", T, || {
        let t = c.coxctl(&["get", "hpa", "nginx"]).success().stdout;
        t.lines()
            .nth(1)
            .is_some_and(|r| r.contains("cpu: 0%/2%"))
            .then_some(())
    })
    .expect("targets");

    // kubectl's flag checks.
    let e = c.coxctl(&["autoscale", "deployment", "nginx"]).failure();
    assert!(
        e.stderr
            .contains("--max=MAXPODS is required and must be at least 1, max: -1"),
        "{}",
        e.stderr
    );
    let e = c
        .coxctl(&["autoscale", "deployment", "nginx", "--min=5", "--max=3"])
        .failure();
    assert_eq!(
        e.stderr.trim(),
        "error: --max=MAXPODS must be larger or equal to --min=MINPODS, max: 3, min: 5"
    );
    let e = c
        .coxctl(&["autoscale", "deployment", "nope", "--max=3"])
        .failure();
    assert!(e.stderr.contains("not found"), "{}", e.stderr);

    // Invalid specs are refused with the field path.
    let bad = |spec: &str| {
        format!("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: bad\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: nginx\n{spec}")
    };
    let e = c
        .coxctl_in(
            &["create", "-f", "-"],
            None,
            Some(&bad("  minReplicas: 5\n  maxReplicas: 3\n")),
        )
        .failure();
    assert!(
        e.stderr.contains(
            "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"
        ),
        "{}",
        e.stderr
    );
    let e = c
        .coxctl_in(
            &["create", "-f", "-"],
            None,
            Some(&bad("  maxReplicas: 0\n")),
        )
        .failure();
    assert!(
        e.stderr
            .contains("spec.maxReplicas: Invalid value: 0: must be greater than 0"),
        "{}",
        e.stderr
    );
    let e = c
        .coxctl_in(
            &["create", "-f", "-"],
            None,
            Some(&bad("  maxReplicas: 3\n  metrics:\n  - type: Magic\n")),
        )
        .failure();
    assert!(
        e.stderr
            .contains("spec.metrics[0].type: Unsupported value: \"Magic\""),
        "{}",
        e.stderr
    );

    // Targets that cannot be scaled: the condition and Event upstream writes.
    let target = |name: &str, kind: &str, api: &str, target: &str| {
        format!("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\nspec:\n  scaleTargetRef:\n    apiVersion: {api}\n    kind: {kind}\n    name: {target}\n  maxReplicas: 3\n")
    };
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&target("missing", "Deployment", "apps/v1", "nope")),
    )
    .success();
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&target("unknown", "Widget", "example.com/v1", "w")),
    )
    .success();
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&target("unscalable", "DaemonSet", "apps/v1", "ds")),
    )
    .success();
    for (name, msg) in [
        ("missing", "deployments.apps \"nope\" not found"),
        (
            "unscalable",
            "the server could not find the requested resource",
        ),
        (
            "unknown",
            "no matches for kind \"Widget\" in group \"example.com\"",
        ),
    ] {
        wait_until("FailedGetScale", T, || {
            let h = c.json(&["get", "hpa", name]);
            let conds = h["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            conds
                .iter()
                .any(|c| {
                    c["type"] == "AbleToScale"
                        && c["status"] == "False"
                        && c["reason"] == "FailedGetScale"
                        && c["message"].as_str().is_some_and(|m| m.ends_with(msg))
                })
                .then_some(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let events = c.coxctl(&["get", "events"]).success().stdout;
    assert!(events.contains("FailedGetScale"), "{events}");

    // autoscaling/v2beta1 is read as the API server converts it, and served as v2.
    let out = c
        .coxctl_in(
            &["create", "-f", "-"],
            None,
            Some("apiVersion: autoscaling/v2beta1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: old\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: nope}\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource: {name: cpu, targetAverageUtilization: 40}\n"),
        )
        .success();
    assert!(
        out.stderr
            .contains("autoscaling/v2beta1 HorizontalPodAutoscaler is deprecated"),
        "{}",
        out.stderr
    );
    let old = c.json(&["get", "hpa", "old"]);
    assert_eq!(
        old["spec"]["metrics"][0]["resource"]["target"],
        serde_json::json!({"type": "Utilization", "averageUtilization": 40})
    );
    let old = c.json(&["get", "hpa.v2beta1.autoscaling", "old"]);
    assert_eq!(
        old["spec"]["metrics"][0]["resource"]["targetAverageUtilization"],
        40
    );

    // A second HPA on the same pods: both are ambiguous, as upstream.
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&target("nginx-2", "Deployment", "apps/v1", "nginx")),
    )
    .success();
    wait_until("AmbiguousSelector", T, || {
        let h = c.json(&["get", "hpa", "nginx-2"]);
        let conds = h["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conds
            .iter()
            .any(|c| {
                c["type"] == "ScalingActive"
                    && c["reason"] == "AmbiguousSelector"
                    && c["message"] == "pods by selector run=nginx are controlled by multiple HPAs: [default/nginx default/nginx-2]"
            })
            .then_some(())
    })
    .expect("ambiguous");
}

/// The Service and the HorizontalPodAutoscaler beside one nginx pod of Deployment web.
const WEB: &str = "---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 80
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Object
    object:
      describedObject: {apiVersion: v1, kind: Service, name: web}
      metric: {name: requests-per-second}
      target: {type: Value, value: \"10\"}
";

/// One HTTP/1.0 GET through `addr`; true on a 200.
fn get_ok(addr: &std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n").is_err() {
        return false;
    }
    let mut out = String::new();
    s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.") && out.contains(" 200 ")
}

/// The `requests-per-second` Object metric of Service default/web as the HPA last read it
/// (status.currentMetrics), in thousandths.
fn service_rps(c: &Coxswain) -> Option<i64> {
    let h = c.json(&["get", "hpa", "web"]);
    let m = h["status"]["currentMetrics"]
        .as_array()?
        .iter()
        .find(|m| m["type"] == "Object")?
        .clone();
    assert_eq!(m["object"]["describedObject"]["kind"], "Service", "{h}");
    assert_eq!(m["object"]["metric"]["name"], "requests-per-second", "{h}");
    let v = m["object"]["current"]["value"].as_str()?;
    coxswain_api::quantity::Quantity::parse(v)
        .ok()
        .map(|q| q.milli_value())
}

/// The service proxy's per-Service request rate is the Service's `requests-per-second` Object
/// metric: load through the ClusterIP (real pods, real proxy) scales the Deployment out to
/// maxReplicas and never past it; when the load stops the rate falls to 0 and it scales back
/// to exactly minReplicas.
#[test]
fn service_request_rate_as_an_object_metric_scales_out_and_in() {
    let c = Coxswain::start_fast_up(&[
        "--metric-resolution",
        "1s",
        "--horizontal-pod-autoscaler-sync-period",
        "1s",
        "--horizontal-pod-autoscaler-downscale-stabilization",
        "2s",
    ])
    .expect("start coxswain up");
    c.apply(&(nginx_deployment("web", 1) + WEB));
    let ip = c.json(&["get", "svc", "web"])["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    let addr: std::net::SocketAddr = format!("{ip}:80").parse().expect("address");
    wait_until("web answers through its ClusterIP", T, || {
        get_ok(&addr).then_some(())
    })
    .expect("web up");

    // `get hpa -w` streams a row per change of the HPA.
    let mut watch = std::process::Command::new(bin("coxctl"))
        .args(["get", "hpa", "web", "-w", "--server", &c.url()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("coxctl get hpa -w");
    let rows = {
        use std::io::BufRead;
        let stdout = watch.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        rx
    };

    // About 40 requests a second, for at most 60 s or 3,000 requests: 4x the target of 10.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let end = std::time::Instant::now() + Duration::from_secs(60);
            let mut n = 0;
            while n < 3000
                && std::time::Instant::now() < end
                && !stop.load(std::sync::atomic::Ordering::Relaxed)
            {
                let next = std::time::Instant::now() + Duration::from_millis(25);
                get_ok(&addr);
                n += 1;
                std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
            }
        })
    };
    let rps = wait_until("the HPA reads the Service's request rate", T, || {
        service_rps(&c).filter(|m| *m > 10_000)
    })
    .expect("requests-per-second above target");
    assert!(rps < 200_000, "{rps}m requests per second");
    let mut max_seen = 0;
    wait_until("scale-out to maxReplicas on the request rate", T, || {
        let d = c.json(&["get", "deploy", "web"]);
        let h = c.json(&["get", "hpa", "web"]);
        max_seen = max_seen
            .max(num(&d, &["spec", "replicas"]))
            .max(num(&h, &["status", "desiredReplicas"]));
        (num(&h, &["status", "currentReplicas"]) == 3).then_some(())
    })
    .expect("scaled out");
    assert!(max_seen <= 3, "went above maxReplicas: {max_seen}");
    // The watch printed the header, then rows up to 3 replicas with the rate in TARGETS.
    let mut lines = vec![];
    let scaled_row = wait_until("get hpa -w shows 3 replicas", T, || {
        while let Ok(l) = rows.try_recv() {
            lines.push(l);
        }
        lines
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|r| r.len() == 7 && r[0] == "web" && r[5] == "3")
            .map(|r| r.join(" "))
    })
    .unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(lines[0].starts_with("NAME"), "{lines:?}");
    let cells: Vec<&str> = scaled_row.split(' ').collect();
    assert_eq!(
        &cells[1..5],
        ["Deployment/web", cells[2], "1", "3"],
        "{lines:?}"
    );
    assert!(
        cells[2].ends_with("/10") && cells[2] != "<unknown>/10",
        "{lines:?}"
    );
    let describe = c.coxctl(&["describe", "hpa", "web"]).success().stdout;
    assert!(
        describe.contains("\"requests-per-second\" on Service/web"),
        "{describe}"
    );
    assert!(describe.contains("above target"), "{describe}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().expect("load thread");
    wait_until("the rate the HPA reads falls to 0", T, || {
        (service_rps(&c) == Some(0)).then_some(())
    })
    .expect("rate 0");
    let mut min_seen = i64::MAX;
    wait_until("scale-in to minReplicas", T, || {
        let d = c.json(&["get", "deploy", "web"]);
        let replicas = num(&d, &["spec", "replicas"]);
        min_seen = min_seen.min(replicas);
        (replicas == 1).then_some(())
    })
    .expect("scaled in");
    assert_eq!(min_seen, 1, "went below minReplicas");
}
