//! The workload benchmark (BENCHMARKS.md, "Workload controllers"): against a running cluster
//! with simulated nodes, apply a Deployment of REPLICAS pods and time apply → every pod Running
//! and Ready; then roll it to a new image and time the rollout while checking, from a pod
//! informer sampled every 5 ms, that active pods never exceed replicas + maxSurge and Ready pods
//! never drop below replicas − maxUnavailable.
//!
//! Usage: `cargo run --release -p coxswain-controllers --example rollout_bench -- URL REPLICAS NODES`
use std::sync::Arc;
use std::time::{Duration, Instant};

use coxswain_api::v1::{
    Container, Deployment, DeploymentSpec, DeploymentStrategy, IntOrString, LabelSelector, Node,
    ObjectMeta, Pod, PodSpec, PodTemplateSpec, RollingUpdateDeployment,
};
use coxswain_api::Resource;
use coxswain_client::{Cache, Client, Informer, ListParams};

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

    let pods: Cache<Pod> = Informer::<Pod>::new(client.clone())
        .namespace("default")
        .label_selector("app=bench")
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

    let start = Instant::now();
    client.create(&d).await?;
    let p2 = pods.clone();
    let r = replicas as usize;
    let created = wait("all pods created", Duration::from_secs(300), || {
        p2.list().iter().filter(|p| active(p)).count() >= r
    })
    .await?;
    let p2 = pods.clone();
    wait("all pods Running", Duration::from_secs(300), || {
        p2.list().iter().filter(|p| ready(p)).count() >= r
    })
    .await?;
    let running = start.elapsed();
    println!(
        "deployment {replicas} replicas on {nodes} nodes: all pods created {:.2}s, all Running+Ready {:.2}s after create",
        created.as_secs_f64(),
        running.as_secs_f64()
    );

    // Rolling update with continuous bounds.
    let max_active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let min_ready = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
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
        c.image = "nginx:1.17.8".into();
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
    let start = Instant::now();
    client
        .patch::<Deployment>("default", "bench", &patch)
        .await?;
    let (ma, mr, p2) = (max_active.clone(), min_ready.clone(), pods.clone());
    wait("rollout", Duration::from_secs(300), || {
        let all = p2.list();
        let act = all.iter().filter(|p| active(p)).count();
        let rd = all.iter().filter(|p| ready(p)).count();
        ma.fetch_max(act, std::sync::atomic::Ordering::Relaxed);
        mr.fetch_min(rd, std::sync::atomic::Ordering::Relaxed);
        act == r
            && all
                .iter()
                .filter(|p| ready(p) && image(p) == "nginx:1.17.8")
                .count()
                == r
    })
    .await?;
    let took = start.elapsed();
    let (ma, mr) = (
        max_active.load(std::sync::atomic::Ordering::Relaxed),
        min_ready.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!(
        "rolling update: {:.2}s; max active pods {ma} (bound {}), min Ready {mr} (bound {})",
        took.as_secs_f64(),
        replicas + surge,
        replicas - unavailable
    );
    if ma > (replicas + surge) as usize || mr < (replicas - unavailable) as usize {
        anyhow::bail!("rollout bounds violated");
    }
    Ok(())
}
