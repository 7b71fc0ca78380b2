//! Node agent benchmarks (issue 3 §5), against a running store and agent:
//!
//! - `agent-sim`: one `coxswain agent --sim-nodes N` process. Reports the agent's RSS with its
//!   nodes registered, the store's request rate from heartbeats while idle (from the store's
//!   Prometheus counters), then creates pods bound round-robin to the sim nodes at a fixed rate
//!   and reports bound→Running latency (client create → watch event with phase Running) and
//!   the agent's RSS with every pod running.
//! - `agent-process`: pods of the built-in web server (`nginx`) created one at a time on a
//!   process-runtime node; create → Running latency (Running means the server accepts
//!   connections), plus a real GET to each pod.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use coxswain_api::v1::{Container, ContainerPort, ObjectMeta, Pod, PodSpec};
use coxswain_client::{Client, DeleteParams, ListParams, WatchEvent};
use tokio_stream::StreamExt;

use super::rss_kib;

async fn scrape(metrics: &str) -> anyhow::Result<HashMap<String, f64>> {
    // Minimal HTTP/1.0 GET of /metrics.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = metrics.trim_start_matches("http://").trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    let mut out = HashMap::new();
    for line in body.lines() {
        if !line.starts_with("apiserver_request_total{") {
            continue;
        }
        let Some((labels, v)) = line.rsplit_once(' ') else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        // VERB or VERB/subresource (UPDATE/status), as apiserver_request_total counts them.
        let method = match label("subresource").as_str() {
            "" => label("verb"),
            sub => format!("{}/{sub}", label("verb")),
        };
        *out.entry(method).or_insert(0.0) += v.parse::<f64>().unwrap_or(0.0);
    }
    Ok(out)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn bench_pod(name: &str, node: &str, image: &str, ports: bool) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            labels: [("app".to_string(), "agent-bench".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            node_name: node.into(),
            containers: vec![Container {
                name: "c".into(),
                image: image.into(),
                ports: if ports {
                    vec![ContainerPort {
                        container_port: 80,
                        protocol: "TCP".into(),
                        ..Default::default()
                    }]
                } else {
                    vec![]
                },
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Watches pods and records when each first shows phase Running.
fn running_watch(
    client: Client,
    seen: Arc<Mutex<HashMap<String, Instant>>>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let (_, rv) = client
            .list::<Pod>("default", &ListParams::labels("app=agent-bench"))
            .await?;
        let mut w = Box::pin(
            client
                .watch::<Pod>("default", &ListParams::labels("app=agent-bench"), &rv)
                .await?,
        );
        while let Some(ev) = w.next().await {
            let pod = match ev? {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => p,
                _ => continue,
            };
            if pod.status.as_ref().map(|s| s.phase.as_str()) == Some("Running") {
                let name = pod.metadata.unwrap_or_default().name;
                seen.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
        Ok(())
    })
}

/// What `agent-sim` measures against.
pub struct SimOpts {
    pub server: String,
    pub metrics: String,
    pub agent_pid: u32,
    pub nodes: usize,
    pub prefix: String,
    pub pods: usize,
    pub rate: u64,
    pub idle: Duration,
}

pub async fn sim(o: &SimOpts) -> anyhow::Result<()> {
    let (server, metrics, agent_pid, nodes, prefix, pods, rate, idle) = (
        o.server.as_str(),
        o.metrics.as_str(),
        o.agent_pid,
        o.nodes,
        o.prefix.as_str(),
        o.pods,
        o.rate,
        o.idle,
    );
    let client = Client::connect(server).await?;
    // Every node registered and Ready.
    let t0 = Instant::now();
    loop {
        let (list, _) = client
            .list::<coxswain_api::v1::Node>("", &ListParams::default())
            .await?;
        let ready = list
            .iter()
            .filter(|n| {
                n.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.r#type == "Ready" && c.status == "True")
                })
            })
            .count();
        if ready >= nodes {
            break;
        }
        if t0.elapsed() > Duration::from_secs(300) {
            bail!("only {ready} of {nodes} nodes Ready after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_nodes = rss_kib(agent_pid)?;
    println!(
        "nodes: {nodes} Ready; agent RSS {:.1} MiB ({:.1} KiB per node, runtime included)",
        rss_nodes as f64 / 1024.0,
        rss_nodes as f64 / nodes as f64
    );
    // Heartbeat load while idle.
    let before = scrape(metrics).await?;
    tokio::time::sleep(idle).await;
    let after = scrape(metrics).await?;
    let mut line = String::new();
    let mut writes = 0.0;
    for (m, v) in &after {
        let d = v - before.get(m).copied().unwrap_or(0.0);
        if d > 0.0 {
            line.push_str(&format!(" {m}={:.1}/s", d / idle.as_secs_f64()));
            let verb = m.split('/').next().unwrap_or("");
            if ["CREATE", "UPDATE", "PATCH", "DELETE"].contains(&verb) {
                writes += d;
            }
        }
    }
    println!(
        "idle heartbeat load over {:?}: writes {:.1}/s ({:.3}/s per node); requests:{line}",
        idle,
        writes / idle.as_secs_f64(),
        writes / idle.as_secs_f64() / nodes as f64
    );

    // Pods at a fixed rate.
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let watch = running_watch(client.clone(), seen.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..pods {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let name = format!("sim-bench-{i}");
        let node = format!("{prefix}-{}", i % nodes + 1);
        let pod = bench_pod(&name, &node, "nginx", false);
        let permit = sem.clone().acquire_owned().await?;
        let client = client.clone();
        let sent = sent.clone();
        tasks.spawn(async move {
            let t = Instant::now();
            let r = client.create(&pod).await;
            if let Ok(mut s) = sent.lock() {
                s.insert(name, t);
            }
            drop(permit);
            r.map(|_| ())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let sent_secs = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = seen.lock().map(|s| s.len()).unwrap_or(0);
        if n >= pods {
            break;
        }
        if Instant::now() > deadline {
            println!("only {n} of {pods} pods Running after 120 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watch.abort();
    let all_running = start.elapsed().as_secs_f64();
    let mut lat: Vec<Duration> = {
        let sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        sent.iter()
            .filter_map(|(n, t)| seen.get(n).map(|r| r.saturating_duration_since(*t)))
            .collect()
    };
    lat.sort();
    println!(
        "pods: {pods} created in {sent_secs:.1} s ({:.0}/s), all Running after {all_running:.1} s",
        pods as f64 / sent_secs
    );
    println!(
        "bound→Running latency: p50 {} p90 {} p99 {} max {}",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.9)),
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 1.0))
    );
    let rss_pods = rss_kib(agent_pid)?;
    println!(
        "agent RSS with pods {:.1} MiB: {:.2} KiB per pod",
        rss_pods as f64 / 1024.0,
        (rss_pods as f64 - rss_nodes as f64) / pods as f64
    );
    Ok(())
}

pub async fn process(server: &str, node: &str, pods: usize) -> anyhow::Result<()> {
    let client = Client::connect(server).await?;
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let watch = running_watch(client.clone(), seen.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut lat = vec![];
    for i in 0..pods {
        let name = format!("web-bench-{i}");
        let t = Instant::now();
        client
            .create(&bench_pod(&name, node, "nginx:1.17.9", true))
            .await?;
        let deadline = t + Duration::from_secs(30);
        let at = loop {
            if let Some(at) = seen.lock().ok().and_then(|s| s.get(&name).copied()) {
                break at;
            }
            if Instant::now() > deadline {
                bail!("{name} not Running after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        lat.push(at.saturating_duration_since(t));
        let pod = client
            .get::<Pod>("default", &name)
            .await?
            .context("pod vanished")?;
        let ip = pod.status.map(|s| s.pod_ip).unwrap_or_default();
        // The server really answers.
        let mut s = tokio::net::TcpStream::connect(format!("{ip}:80")).await?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).await?;
        if !buf.starts_with("HTTP/1.1 200") {
            bail!("GET {ip}: {buf}");
        }
        // Keep the node under its pod range: delete as we go.
        client
            .delete::<Pod>("default", &name, &DeleteParams::default())
            .await?;
    }
    watch.abort();
    lat.sort();
    println!(
        "process runtime, built-in web server, {pods} pods one at a time: create→Running p50 {} p90 {} p99 {} max {}",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.9)),
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 1.0))
    );
    Ok(())
}
