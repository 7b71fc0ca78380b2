//! `coxswain-bench`: throughput, latency and memory of the object store, measured over gRPC,
//! and the same load against etcd for a same-session ratio. See BENCHMARKS.md and bench/run.sh.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use coxswain_api::v1::object_store_client::ObjectStoreClient;
use coxswain_api::v1::{self, CreateRequest, GetRequest, WatchRequest};
use coxswain_api::Object;
use tonic::transport::Channel;

mod agent;
mod scheduler;

#[derive(Parser)]
#[command(name = "coxswain-bench")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Node agent, sim runtime: one `coxswain agent --sim-nodes N` process (pid given): RSS
    /// per node, idle heartbeat load on the store, pods bound at a fixed rate → Running latency,
    /// RSS per pod.
    AgentSim {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        server: String,
        /// The store's metrics address (host:port).
        #[arg(long)]
        metrics: String,
        #[arg(long)]
        agent_pid: u32,
        #[arg(long, default_value_t = 1000)]
        nodes: usize,
        #[arg(long, default_value = "sim-node")]
        prefix: String,
        #[arg(long, default_value_t = 10_000)]
        pods: usize,
        /// Pod creates per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Seconds of idle heartbeat measurement.
        #[arg(long, default_value_t = 20)]
        idle_secs: u64,
    },
    /// Node agent, process runtime: built-in web server pods created one at a time on NODE;
    /// create → Running latency.
    AgentProcess {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        server: String,
        #[arg(long, default_value = "node1")]
        node: String,
        #[arg(long, default_value_t = 50)]
        pods: usize,
    },
    /// Creates/s then gets/s of typical pods, at each client count.
    Store {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        server: String,
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        clients: Vec<usize>,
        /// Operations per client count.
        #[arg(long, default_value_t = 20_000)]
        ops: usize,
        /// Namespace to create into (must exist).
        #[arg(long, default_value = "default")]
        namespace: String,
    },
    /// Puts/s to etcd of values the size of the encoded typical pod, at each client count.
    #[cfg(feature = "etcd")]
    Etcd {
        #[arg(long, default_value = "127.0.0.1:2379")]
        endpoint: String,
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        clients: Vec<usize>,
        #[arg(long, default_value_t = 20_000)]
        ops: usize,
        /// Each op is the store's create instead of a put: a Txn comparing the key's
        /// mod_revision with 0, then the put (etcd's compare-and-create, as kube-apiserver's).
        #[arg(long)]
        txn: bool,
        /// HTTP/2 connections to etcd (0: one per client, at most 8). The store uses 1.
        #[arg(long, default_value_t = 0)]
        connections: usize,
        /// Also keep a watch of the whole prefix open on a connection of its own and read its
        /// events, as a store replica's watch cache does.
        #[arg(long)]
        watch: bool,
    },
    /// Watch delivery latency: W open watches, writes at R/s for D seconds; each write carries
    /// its send time and matches one watch's label selector (as a kubelet's pod watch matches
    /// its node's pods); `--broad` more watches see every write.
    Watch {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        server: String,
        #[arg(long, default_value_t = 1000)]
        watches: usize,
        #[arg(long, default_value_t = 0)]
        broad: usize,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Send the writes to this store (default: --server, where the watches are): another
        /// store replica on the same etcd measures the fan-out across replicas.
        #[arg(long)]
        write_server: Option<String>,
    },
    /// Memory per stored pod: RSS of the coxswain process (by pid) before and after creating N
    /// pods.
    Memory {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        server: String,
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 100_000)]
        pods: usize,
        #[arg(long, default_value_t = 64)]
        clients: usize,
    },
    /// Scheduler throughput (scheduler_perf-like): pods/s in-process (framework + cache +
    /// queue) or end to end through a running `coxswain up` (`--mode e2e --server URL`).
    Scheduler {
        #[arg(long, default_value = "in-process")]
        mode: String,
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        server: String,
        #[arg(long, default_value_t = 5000)]
        nodes: usize,
        #[arg(long, default_value_t = 10_000)]
        pods: usize,
        /// basic, node-affinity, taint, anti-affinity, affinity, preferred.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "basic,node-affinity,taint,anti-affinity,affinity,preferred"
        )]
        workloads: Vec<String>,
        /// Repetitions per workload (in-process); the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// e2e: concurrent pod creators.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// in-process: pods bound before the clock starts (other namespace and labels; a
        /// tenth with pod anti-affinity), spread round-robin over the nodes.
        #[arg(long, default_value_t = 0)]
        existing_pods: usize,
    },
}

const OWNER_RS: &str = "web-7d4b9c8f6d";

/// A typical pod, as a Deployment's ReplicaSet creates it (owned by `owner_uid`).
fn typical_pod(ns: &str, i: usize, owner_uid: &str) -> Object {
    let manifest = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"web-7d4b9c8f6d-{i:07}","namespace":"{ns}",
        "labels":{{"app":"web","pod-template-hash":"7d4b9c8f6d"}},
        "ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"{OWNER_RS}","uid":"{owner_uid}","controller":true,"blockOwnerDeletion":true}}]}},
        "spec":{{"containers":[{{"name":"nginx","image":"nginx:1.17.9","ports":[{{"containerPort":80,"protocol":"TCP"}}],
        "resources":{{"requests":{{"cpu":"100m","memory":"128Mi"}},"limits":{{"cpu":"500m","memory":"256Mi"}}}}}}]}}}}"#
    );
    let value: serde_json::Value = serde_json::from_str(&manifest).unwrap_or_default();
    coxswain_api::Kind::Pod
        .from_json_value(value)
        .unwrap_or_else(|_| coxswain_api::Kind::Pod.empty())
}

/// The stored size of a typical pod: defaults applied, identity set, as the store keeps it.
fn stored_pod_bytes() -> Vec<u8> {
    let mut pod = typical_pod("default", 0, "6a1f3c1e-4d7b-4a8e-9a0e-2f1b1c9d3e5a");
    coxswain_api::defaults::apply_defaults(&mut pod);
    let m = pod.meta_mut();
    m.uid = "0b7f9b0e-8a3c-4c1e-9a57-3d2f6c1b7e44".into();
    m.creation_timestamp = "2026-11-22T12:00:00Z".into();
    m.resource_version = "123456".into();
    pod.encode_to_vec()
}

/// Make sure the pods' owner ReplicaSet exists (so the garbage collector keeps them); its uid.
async fn ensure_owner(server: &str, ns: &str) -> anyhow::Result<String> {
    let mut c = connect(server).await?;
    let rs = format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {OWNER_RS}\n  namespace: {ns}\nspec:\n  replicas: 0\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: nginx\n        image: nginx:1.17.9\n"
    );
    let r = c
        .apply(v1::ApplyRequest {
            manifest: rs,
            ..Default::default()
        })
        .await?
        .into_inner();
    let obj = r
        .results
        .first()
        .and_then(|r| r.object.as_ref())
        .context("apply returned the ReplicaSet")?;
    Ok(Object::from_any(obj)?.meta().uid.clone())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn connect(server: &str) -> anyhow::Result<ObjectStoreClient<Channel>> {
    use coxswain_client::config;
    // An https server (`up --auth`): the CA and client certificate of the current context of
    // $COXCONFIG, else ~/.coxswain/config.
    if server.starts_with("https://") && config::installed().is_none() {
        if let Some(p) = config::default_path() {
            let conf = config::Kubeconfig::load(&p).map_err(|e| anyhow::anyhow!("{e}"))?;
            let r = conf.resolve(None).map_err(|e| anyhow::anyhow!("{e}"))?;
            config::install(r.credentials);
        }
    }
    let ep = config::secure(
        tonic::transport::Endpoint::from_shared(server.to_string())?,
        server,
    )?;
    Ok(ObjectStoreClient::new(
        ep.connect().await.context("connecting")?,
    ))
}

/// Run `total` operations over `clients` concurrent workers; returns ops/s.
async fn drive<F, Fut>(clients: usize, total: usize, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                op(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS not found")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::AgentSim {
            server,
            metrics,
            agent_pid,
            nodes,
            prefix,
            pods,
            rate,
            idle_secs,
        } => {
            agent::sim(&agent::SimOpts {
                server,
                metrics,
                agent_pid,
                nodes,
                prefix,
                pods,
                rate,
                idle: Duration::from_secs(idle_secs),
            })
            .await?
        }
        Cmd::AgentProcess { server, node, pods } => agent::process(&server, &node, pods).await?,
        Cmd::Store {
            server,
            clients,
            ops,
            namespace,
        } => {
            let owner = ensure_owner(&server, &namespace).await?;
            println!(
                "payload: typical pod, {} bytes as stored",
                stored_pod_bytes().len()
            );
            println!("{:>8} {:>12} {:>12}", "clients", "creates/s", "gets/s");
            for (round, c) in clients.into_iter().enumerate() {
                let mut pool = Vec::new();
                for _ in 0..c.clamp(1, 8) {
                    pool.push(connect(&server).await?);
                }
                let pool = Arc::new(pool);
                let p = pool.clone();
                // Built once: the client's own work per request stays small, as etcd's does.
                let template = typical_pod(&namespace, 0, &owner);
                let creates = drive(c, ops, move |i| {
                    let mut client = p[i % p.len()].clone();
                    let mut pod = template.clone();
                    pod.meta_mut().name = format!("bench-{round}-{i}");
                    async move {
                        client
                            .create(CreateRequest {
                                object: Some(pod.to_any()),
                                dry_run: false,
                            })
                            .await?;
                        Ok(())
                    }
                })
                .await?;
                let ns = namespace.clone();
                let p = pool.clone();
                let gets = drive(c, ops, move |i| {
                    let mut client = p[i % p.len()].clone();
                    let req = GetRequest {
                        kind: "Pod".into(),
                        namespace: ns.clone(),
                        name: format!("bench-{round}-{i}"),
                    };
                    async move {
                        client.get(req).await?;
                        Ok(())
                    }
                })
                .await?;
                println!("{c:>8} {creates:>12.0} {gets:>12.0}");
            }
        }
        #[cfg(feature = "etcd")]
        Cmd::Etcd {
            endpoint,
            clients,
            ops,
            txn,
            connections,
            watch,
        } => {
            use etcd_client::{Compare, CompareOp, Txn, TxnOp};
            let value = stored_pod_bytes();
            println!(
                "payload: {} bytes (a typical pod as coxswain stores it); each op {}{}",
                value.len(),
                if txn {
                    "a Txn: compare mod_revision = 0, put"
                } else {
                    "a put"
                },
                if watch {
                    "; a watch of the prefix open"
                } else {
                    ""
                }
            );
            let _watching = if watch {
                let mut w = etcd_client::Client::connect([endpoint.as_str()], None).await?;
                let opts = etcd_client::WatchOptions::new().with_prefix();
                let mut stream = w.watch("/registry/", Some(opts)).await?;
                Some((
                    w,
                    tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} }),
                ))
            } else {
                None
            };
            println!(
                "{:>8} {:>12}",
                "clients",
                if txn { "creates/s" } else { "puts/s" }
            );
            for (round, c) in clients.into_iter().enumerate() {
                let mut pool = Vec::new();
                let conns = match connections {
                    0 => c.clamp(1, 8),
                    n => n,
                };
                for _ in 0..conns {
                    pool.push(etcd_client::Client::connect([endpoint.as_str()], None).await?);
                }
                let pool = Arc::new(pool);
                let v = Arc::new(value.clone());
                let puts = drive(c, ops, move |i| {
                    let mut client = pool[i % pool.len()].clone();
                    let v = v.clone();
                    async move {
                        let key = format!("/registry/pods/default/bench-{round}-{i}");
                        if txn {
                            let t = Txn::new()
                                .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, 0)])
                                .and_then([TxnOp::put(key.as_str(), v.as_slice(), None)]);
                            let r = client.txn(t).await?;
                            anyhow::ensure!(r.succeeded(), "the create of {key} found the key");
                        } else {
                            client.put(key, v.as_slice(), None).await?;
                        }
                        Ok(())
                    }
                })
                .await?;
                println!("{c:>8} {puts:>12.0}");
            }
        }
        Cmd::Watch {
            server,
            watches,
            broad,
            rate,
            seconds,
            write_server,
        } => {
            let client = connect(write_server.as_deref().unwrap_or(&server)).await?;
            let latencies = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
            let start_rv = {
                let mut c = client.clone();
                c.list(v1::ListRequest {
                    kind: "ConfigMap".into(),
                    limit: 1,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .resource_version
            };
            let total_watches = watches + broad;
            // The server holds at most --max-streams-per-connection streams on one connection
            // (1,000, as kube-apiserver's HTTP/2 limit): the watches go 500 to a connection and
            // the writes keep their own, as separate clients' would. On one shared connection the
            // writes waited forever behind 1,000 open watches.
            const WATCHES_PER_CONNECTION: usize = 500;
            let mut watch_clients = Vec::new();
            for _ in 0..total_watches.div_ceil(WATCHES_PER_CONNECTION) {
                watch_clients.push(connect(&server).await?);
            }
            let opened = Arc::new(AtomicUsize::new(0));
            for w in 0..total_watches {
                let mut c = watch_clients[w / WATCHES_PER_CONNECTION].clone();
                let lat = latencies.clone();
                let opened = opened.clone();
                let selector = if w < watches {
                    format!("w={w}")
                } else {
                    String::new()
                };
                let rv = start_rv.clone();
                tokio::spawn(async move {
                    let req = WatchRequest {
                        kind: "ConfigMap".into(),
                        namespace: "default".into(),
                        label_selector: selector,
                        resource_version: rv,
                        ..Default::default()
                    };
                    let Ok(resp) = c.watch(req).await else { return };
                    opened.fetch_add(1, Ordering::Relaxed);
                    let mut stream = resp.into_inner();
                    while let Ok(Some(ev)) = stream.message().await {
                        let Some(any) = ev.object else { continue };
                        let Ok(obj) = Object::from_any(&any) else {
                            continue;
                        };
                        if let Some(t) = obj.meta().annotations.get("sent") {
                            if let Ok(t) = t.parse::<u128>() {
                                let ms = (now_nanos().saturating_sub(t)) as f64 / 1e6;
                                lat.lock().unwrap_or_else(|p| p.into_inner()).push(ms);
                            }
                        }
                    }
                });
            }
            while opened.load(Ordering::Relaxed) < total_watches {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            println!("{total_watches} watches open ({watches} selective, {broad} broad); writing {rate}/s for {seconds}s");
            let total = (rate * seconds) as usize;
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = tokio::task::JoinSet::new();
            // Each write's own latency (create sent -> answered): the part of the delivery
            // latency spent before the watch fan-out (admission, the durable commit).
            let acks = Arc::new(std::sync::Mutex::new(Vec::<f64>::with_capacity(
                (rate * seconds) as usize,
            )));
            let started = Instant::now();
            for i in 0..total {
                tick.tick().await;
                let mut c = client.clone();
                let mut cm = coxswain_api::Kind::ConfigMap.empty();
                cm.meta_mut().name = format!("w-{}-{i}", std::process::id());
                cm.meta_mut().namespace = "default".into();
                cm.meta_mut()
                    .labels
                    .insert("w".into(), (i % watches.max(1)).to_string());
                cm.meta_mut()
                    .annotations
                    .insert("sent".into(), now_nanos().to_string());
                let acks = acks.clone();
                inflight.spawn(async move {
                    let sent = Instant::now();
                    let r = c
                        .create(CreateRequest {
                            object: Some(cm.to_any()),
                            dry_run: false,
                        })
                        .await;
                    let ms = sent.elapsed().as_secs_f64() * 1e3;
                    acks.lock().unwrap_or_else(|p| p.into_inner()).push(ms);
                    r
                });
                while inflight.len() > 512 {
                    inflight.join_next().await;
                }
            }
            while inflight.join_next().await.is_some() {}
            let achieved = total as f64 / started.elapsed().as_secs_f64();
            let expect = total * if watches > 0 { 1 } else { 0 } + total * broad;
            let deadline = Instant::now() + Duration::from_secs(10);
            while latencies.lock().unwrap_or_else(|p| p.into_inner()).len() < expect
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut l = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
            l.sort_by(|a, b| a.total_cmp(b));
            println!(
                "writes/s achieved {achieved:.0}; events delivered {} of {expect}; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
                l.len(),
                percentile(&l, 0.5),
                percentile(&l, 0.9),
                percentile(&l, 0.99),
                l.last().copied().unwrap_or(f64::NAN)
            );
            let mut a = acks.lock().unwrap_or_else(|p| p.into_inner()).clone();
            a.sort_by(|x, y| x.total_cmp(y));
            println!(
                "write acknowledged (create latency) ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
                percentile(&a, 0.5),
                percentile(&a, 0.9),
                percentile(&a, 0.99),
                a.last().copied().unwrap_or(f64::NAN)
            );
        }
        Cmd::Scheduler {
            mode,
            server,
            nodes,
            pods,
            workloads,
            runs,
            clients,
            existing_pods,
        } => {
            println!(
                "{:>14} {:>8} {:>8} {:>10} {:>12}",
                "workload", "nodes", "pods", "placed", "pods/s"
            );
            for w in &workloads {
                anyhow::ensure!(
                    scheduler::WORKLOADS.contains(&w.as_str()),
                    "--workloads: unknown {w:?} (known: {})",
                    scheduler::WORKLOADS.join(", ")
                );
                let mut rates = Vec::new();
                let mut placed = 0;
                for _ in 0..runs.max(1) {
                    let (n, secs) = match mode.as_str() {
                        "in-process" => scheduler::in_process(w, nodes, pods, existing_pods),
                        "e2e" => scheduler::e2e(&server, w, nodes, pods, clients, true).await?,
                        other => anyhow::bail!("--mode: {other:?}: in-process or e2e"),
                    };
                    placed = n;
                    rates.push(n as f64 / secs);
                    if mode == "e2e" {
                        break;
                    }
                }
                rates.sort_by(|a, b| a.total_cmp(b));
                let median = rates[rates.len() / 2];
                println!(
                    "{w:>14} {nodes:>8} {pods:>8} {placed:>10} {median:>12.0}   runs: {}",
                    rates
                        .iter()
                        .map(|r| format!("{r:.0}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
        Cmd::Memory {
            server,
            pid,
            pods,
            clients,
        } => {
            let owner = ensure_owner(&server, "default").await?;
            let before = rss_kib(pid)?;
            let mut pool = Vec::new();
            for _ in 0..8 {
                pool.push(connect(&server).await?);
            }
            let pool = Arc::new(pool);
            let p = pool.clone();
            let template = typical_pod("default", 0, &owner);
            let rate = drive(clients, pods, move |i| {
                let mut client = p[i % p.len()].clone();
                let mut pod = template.clone();
                pod.meta_mut().name = format!("web-7d4b9c8f6d-{i:07}");
                async move {
                    client
                        .create(CreateRequest {
                            object: Some(pod.to_any()),
                            dry_run: false,
                        })
                        .await?;
                    Ok(())
                }
            })
            .await?;
            let after = rss_kib(pid)?;
            let per_pod = (after.saturating_sub(before) as f64 * 1024.0) / pods as f64;
            println!(
                "{pods} pods created at {rate:.0}/s; RSS {before} KiB -> {after} KiB; {per_pod:.0} bytes per pod; {:.0} bytes per pod of total RSS",
                after as f64 * 1024.0 / pods as f64
            );
        }
    }
    Ok(())
}
