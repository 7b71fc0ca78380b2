//! The workload benchmark (BENCHMARKS.md, "Workload controllers"): against a running cluster
//! with simulated nodes, apply a Deployment of REPLICAS pods and time apply → every pod Running
//! and Ready; then roll it to a new image and time the rollout while checking, at every event of
//! a pod informer (every state the watch shows, not samples), that active pods never exceed
//! replicas + maxSurge and Ready pods never drop below replicas − maxUnavailable. The counts are
//! kept incrementally by the informer's handler, so the bench's own CPU (it shares the machine
//! with the cluster it measures) is its watch's decoding, not a scan of every pod every 5 ms.
//!
//! Usage: `cargo run --release -p coxswain-controllers --example rollout_bench -- URL REPLICAS NODES`
//!
//! `CPU_PIDS="up=1234 agent=1235"` (bench/workloads.sh sets it): also print the CPU (user +
//! system, all threads, from `/proc/PID/stat`) each named process spent from the create to all
//! Running and in the rollout, one `cpu` line per phase.
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coxswain_api::v1::{
    Container, Deployment, DeploymentSpec, DeploymentStrategy, IntOrString, LabelSelector, Node,
    ObjectMeta, Pod, PodSpec, PodTemplateSpec, RollingUpdateDeployment,
};
use coxswain_api::Resource;
use coxswain_client::{Client, Event, Informer, ListParams};

fn active(p: &Pod) -> bool {
    p.metadata().deletion_timestamp.is_empty()
        && !matches!(
            p.status.as_ref().map_or("", |s| s.phase.as_str()),
            "Succeeded" | "Failed"
        )
}

fn ready(p: &Pod) -> bool {
    active(p)
        && p.status.as_ref().is_some_and(|s| {
            s.phase == "Running"
                && s.conditions
                    .iter()
                    .any(|c| c.r#type == "Ready" && c.status == "True")
        })
}

fn image(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map_or("", |c| c.image.as_str())
}

/// The pod counts the bench waits on and bounds, kept by the informer's handler.
#[derive(Default)]
struct Counts {
    active: AtomicI64,
    ready: AtomicI64,
    /// Ready pods with the rollout's image.
    updated: AtomicI64,
    /// While set (the rollout), every change updates the extremes below.
    watching: AtomicBool,
    max_active: AtomicUsize,
    min_ready: AtomicUsize,
}

impl Counts {
    fn new() -> Arc<Counts> {
        Arc::new(Counts {
            min_ready: AtomicUsize::new(usize::MAX),
            ..Default::default()
        })
    }

    fn add(&self, p: &Pod, sign: i64) {
        if active(p) {
            self.active.fetch_add(sign, Ordering::SeqCst);
        }
        if ready(p) {
            self.ready.fetch_add(sign, Ordering::SeqCst);
            if image(p) == NEW_IMAGE {
                self.updated.fetch_add(sign, Ordering::SeqCst);
            }
        }
    }

    /// One informer event: the counts after it are the state the watch shows at that point.
    fn on_event(&self, ev: &Event<Pod>) {
        match ev {
            Event::Added(p) => self.add(p, 1),
            Event::Modified { old, new } => {
                self.add(old, -1);
                self.add(new, 1);
            }
            Event::Deleted(p) => self.add(p, -1),
            Event::Synced => {}
        }
        if self.watching.load(Ordering::SeqCst) {
            let n = |x: &AtomicI64| x.load(Ordering::SeqCst).max(0) as usize;
            self.max_active.fetch_max(n(&self.active), Ordering::SeqCst);
            self.min_ready.fetch_min(n(&self.ready), Ordering::SeqCst);
        }
    }

    fn get(&self, x: &AtomicI64) -> usize {
        x.load(Ordering::SeqCst).max(0) as usize
    }
}

const NEW_IMAGE: &str = "nginx:1.17.8";

/// The processes named in `CPU_PIDS` ("name=pid name=pid"), whose CPU each phase reports.
fn cpu_pids() -> anyhow::Result<Vec<(String, u32)>> {
    let v = std::env::var("CPU_PIDS").unwrap_or_default();
    v.split_whitespace()
        .map(|kv| {
            let (k, p) = kv
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("CPU_PIDS: {kv:?} is not name=pid"))?;
            Ok((k.to_string(), p.parse()?))
        })
        .collect()
}

/// utime + stime of a process (every thread), in seconds, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) closed by the last ')'; utime and stime
    // are fields 14 and 15 of the line, 12 and 13 after the ')'.
    let rest = stat
        .rsplit_once(')')
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat: no ')'"))?
        .1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(f.get(i)
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat: short"))?
            .parse::<f64>()?)
    };
    // USER_HZ: 100 on every Linux ABI the workspace builds for.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Every named process's CPU now.
fn cpu_now(pids: &[(String, u32)]) -> anyhow::Result<Vec<f64>> {
    pids.iter().map(|(_, p)| cpu_seconds(*p)).collect()
}

/// "cpu PHASE: up 6.12s agent 2.03s": the CPU each process spent from `before` to `after`.
fn print_cpu(phase: &str, pids: &[(String, u32)], before: &[f64], after: &[f64]) {
    if pids.is_empty() {
        return;
    }
    let parts: Vec<String> = pids
        .iter()
        .zip(after.iter().zip(before))
        .map(|((name, _), (a, b))| format!("{name} {:.2}s", a - b))
        .collect();
    println!("cpu {phase}: {}", parts.join(" "));
}

async fn wait<F: Fn() -> bool>(what: &str, limit: Duration, f: F) -> anyhow::Result<Duration> {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > limit {
            anyhow::bail!("timed out after {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(t.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let replicas: i32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let nodes: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let pids = cpu_pids()?;
    let client = Client::connect(&url).await?;

    // Every node registered.
    let t = Instant::now();
    loop {
        let (ns, _) = client.list::<Node>("", &ListParams::default()).await?;
        if ns.len() >= nodes {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("only {} of {nodes} nodes registered", ns.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let counts = Counts::new();
    let c = counts.clone();
    let pods = Informer::<Pod>::new(client.clone())
        .namespace("default")
        .label_selector("app=bench")
        .on_event(move |ev: &Event<Pod>| c.on_event(ev))
        .start();
    pods.wait_synced().await;

    let labels = std::collections::BTreeMap::from([("app".to_string(), "bench".to_string())]);
    let d = Deployment {
        metadata: Some(ObjectMeta {
            name: "bench".into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: Some(LabelSelector {
                match_labels: labels.clone(),
                ..Default::default()
            }),
            strategy: Some(DeploymentStrategy {
                r#type: "RollingUpdate".into(),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::string("25%")),
                    max_unavailable: Some(IntOrString::string("25%")),
                }),
            }),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels,
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: "nginx:1.17.9".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let surge = (replicas + 3) / 4; // 25% rounded up
    let unavailable = replicas / 4; // 25% rounded down

    let cpu_before = cpu_now(&pids)?;
    let start = Instant::now();
    client.create(&d).await?;
    let r = replicas as usize;
    let created = wait("all pods created", Duration::from_secs(300), || {
        counts.get(&counts.active) >= r
    })
    .await?;
    wait("all pods Running", Duration::from_secs(300), || {
        counts.get(&counts.ready) >= r
    })
    .await?;
    let running = start.elapsed();
    println!(
        "deployment {replicas} replicas on {nodes} nodes: all pods created {:.2}s, all Running+Ready {:.2}s after create",
        created.as_secs_f64(),
        running.as_secs_f64()
    );
    print_cpu(
        "create to all Running",
        &pids,
        &cpu_before,
        &cpu_now(&pids)?,
    );

    // Rolling update with the bounds checked at every event.
    let mut cur: Deployment = client
        .get("default", "bench")
        .await?
        .ok_or_else(|| anyhow::anyhow!("deployment gone"))?;
    if let Some(c) = cur
        .spec
        .as_mut()
        .and_then(|s| s.template.as_mut())
        .and_then(|t| t.spec.as_mut())
        .and_then(|s| s.containers.first_mut())
    {
        c.image = NEW_IMAGE.into();
    }
    // A merge patch, not an Update: the controllers write the Deployment's status meanwhile, so an
    // Update carrying the resourceVersion read above would race them and fail with a conflict.
    let containers = cur
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| serde_json::to_value(&s.containers))
        .transpose()?
        .unwrap_or_default();
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": containers}}}});
    counts
        .max_active
        .store(counts.get(&counts.active), Ordering::SeqCst);
    counts
        .min_ready
        .store(counts.get(&counts.ready), Ordering::SeqCst);
    counts.watching.store(true, Ordering::SeqCst);
    let cpu_before = cpu_now(&pids)?;
    let start = Instant::now();
    client
        .patch::<Deployment>("default", "bench", &patch)
        .await?;
    wait("rollout", Duration::from_secs(300), || {
        counts.get(&counts.active) == r && counts.get(&counts.updated) == r
    })
    .await?;
    let took = start.elapsed();
    counts.watching.store(false, Ordering::SeqCst);
    let cpu_after = cpu_now(&pids)?;
    let (ma, mr) = (
        counts.max_active.load(Ordering::SeqCst),
        counts.min_ready.load(Ordering::SeqCst),
    );
    drop(pods);
    println!(
        "rolling update: {:.2}s; max active pods {ma} (bound {}), min Ready {mr} (bound {})",
        took.as_secs_f64(),
        replicas + surge,
        replicas - unavailable
    );
    print_cpu("rollout", &pids, &cpu_before, &cpu_after);
    if ma > (replicas + surge) as usize || mr < (replicas - unavailable) as usize {
        anyhow::bail!("rollout bounds violated");
    }
    Ok(())
}
