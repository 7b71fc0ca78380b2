//! `loadgen hpa` against a `coxswain up` cluster with shortened HPA windows: seed S49 (nginx with
//! requests cpu=200m, an HPA at 2% CPU, min 1, max 10, a NodePort Service) scales out under the
//! load (replicas > 1, never above max) and back in to exactly min, and the timeline CSV and
//! SVG are written.
mod common;

use std::time::Duration;

use coxswain_api::v1::ApplyRequest;
use coxswain_client::{v1, Client};
use coxswain_test_support::{wait_for, Coxswain};

const S49: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: mayikt-sit
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  namespace: mayikt-sit
  labels:
    run: nginx
spec:
  replicas: 1
  selector:
    matchLabels:
      run: nginx
  template:
    metadata:
      labels:
        run: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.17.9
        resources:
          requests:
            cpu: 200m
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
  namespace: mayikt-sit
spec:
  type: NodePort
  selector:
    run: nginx
  ports:
  - port: 80
---
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: mayikt-hpa
  namespace: mayikt-sit
spec:
  minReplicas: 1
  maxReplicas: 10
  targetCPUUtilizationPercentage: 2
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: nginx
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_mode_reproduces_scale_out_and_scale_in() {
    let cx = Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            "--nodes",
            "2",
            "--node-status-update-frequency",
            "500ms",
            "--metrics-resolution",
            "500ms",
            "--metric-resolution",
            "1s",
            "--horizontal-pod-autoscaler-sync-period",
            "1s",
            "--horizontal-pod-autoscaler-downscale-stabilization",
            "5s",
            "--horizontal-pod-autoscaler-cpu-initialization-period",
            "1s",
            "--horizontal-pod-autoscaler-initial-readiness-delay",
            "1s",
        ],
    )
    .expect("coxswain up");
    let c = Client::connect(&cx.url()).await.unwrap();
    c.raw()
        .apply(ApplyRequest {
            manifest: S49.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_for("nginx ready", Duration::from_secs(30), || async {
        let d: v1::Deployment = c.get("mayikt-sit", "nginx").await.ok()??;
        (d.status?.ready_replicas == 1).then_some(())
    })
    .await
    .unwrap();
    let out = tempfile_dir();
    let o = common::loadgen(&[
        "hpa",
        "svc/nginx",
        "--hpa",
        "mayikt-hpa",
        "-n",
        "mayikt-sit",
        "--via",
        "node-port",
        "--stages",
        "2s:200,10s:200",
        "--settle-timeout",
        "60s",
        "--out",
        out.to_str().unwrap(),
        "--server",
        &cx.url(),
    ])
    .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let csv = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    eprintln!("{}\n{}\n{csv}", o.stderr, o.stdout);
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.len() >= 10, "{csv}");
    let current: Vec<i32> = rows.iter().map(|r| r[7].parse().unwrap()).collect();
    let peak = *current.iter().max().unwrap();
    assert!(peak > 1 && peak <= 10, "peak {peak}\n{csv}\n{}", o.stderr);
    assert_eq!(*current.last().unwrap(), 1, "{csv}");
    // status.currentReplicas is 0 until the HPA's first sync (as in Kubernetes); from then on it
    // stays within min..=max.
    assert!(
        current
            .iter()
            .skip_while(|r| **r == 0)
            .all(|r| (1..=10).contains(r)),
        "{csv}"
    );
    assert!(o.stdout.contains("first scale-up after"), "{}", o.stdout);
    assert!(
        !o.stdout.contains("back at minReplicas 1 never"),
        "{}",
        o.stdout
    );
    let svg = std::fs::read_to_string(out.join("timeline.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("HPA current"),
        "{}",
        &svg[..svg.len().min(500)]
    );
    // The PNG: a real image of the plot's size, not an empty canvas.
    let png = std::fs::read(out.join("timeline.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10_000, "{} bytes", png.len());
    let _ = std::fs::remove_dir_all(&out);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("loadgen-hpa-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
