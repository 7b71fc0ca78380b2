//! Propagation benchmark (issue: service networking §5): SERVICES selector Services and PODS
//! pods against a running store + `coxswain controllers`; the real proxy (this crate's `run`,
//! as `coxswain up` runs it in-process) programs them. Then FLIPS pod Ready flips, one at a
//! time: each pod's status is written as a sim kubelet would (KWOK-style: the bench is the
//! kubelet of PODS pods bound to `sim-N` nodes), and the time from the status write to
//!
//! - the Endpoints showing the change (a watch of Endpoints),
//! - the EndpointSlice showing it (a watch of EndpointSlices),
//! - the proxy's balancer for that Service port holding it (the proxy's observer hook),
//! - with `--dns ADDR` (a running `coxswain dns`), for the first `--headless` Services: the A
//!   answer of a headless Service over the same pods (`hl-N`, clusterIP None) gaining or losing
//!   the pod's IP, seen by real UDP queries repeated every `--dns-poll-ms`
//!
//! is measured per flip. Prints percentiles, and the process RSS before the proxy started and
//! once it had programmed every endpoint (memory per endpoint). Everything is bounded: each
//! flip waits at most `--flip-timeout`, the setup at most `--setup-timeout`.
//!
//!   cargo run --release -p coxswain-proxy --example propagation -- --server URL
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use coxswain_client::{v1, Client, Event, Informer};
use coxswain_proxy::{Config, Observer};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, Semaphore};

struct Args {
    server: String,
    namespace: String,
    services: usize,
    pods: usize,
    flips: usize,
    nodes: usize,
    flip_timeout: Duration,
    setup_timeout: Duration,
    dns: Option<SocketAddr>,
    headless: usize,
    cluster_domain: String,
    dns_poll: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        server: "http://127.0.0.1:50051".into(),
        namespace: "bench".into(),
        services: 1000,
        pods: 10_000,
        flips: 2000,
        nodes: 100,
        flip_timeout: Duration::from_secs(5),
        setup_timeout: Duration::from_secs(600),
        dns: None,
        headless: 100,
        cluster_domain: "cluster.local".into(),
        dns_poll: Duration::from_millis(1),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--server" => a.server = v,
            "--namespace" => a.namespace = v,
            "--services" => a.services = v.parse()?,
            "--pods" => a.pods = v.parse()?,
            "--flips" => a.flips = v.parse()?,
            "--nodes" => a.nodes = v.parse()?,
            "--flip-timeout-ms" => a.flip_timeout = Duration::from_millis(v.parse()?),
            "--setup-timeout-s" => a.setup_timeout = Duration::from_secs(v.parse()?),
            "--dns" => a.dns = Some(v.parse()?),
            "--headless" => a.headless = v.parse()?,
            "--cluster-domain" => a.cluster_domain = v,
            "--dns-poll-ms" => a.dns_poll = Duration::from_millis(v.parse()?),
            _ => bail!("unknown flag {flag}"),
        }
    }
    if a.services == 0 || a.pods < a.services {
        bail!("--pods must be at least --services, and --services at least 1");
    }
    a.headless = a.headless.min(a.services);
    Ok(a)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The flip being measured.
struct Pending {
    service: String,
    ip: String,
    ready: bool,
    t0: Instant,
    endpoints: Option<Duration>,
    slice: Option<Duration>,
    proxy: Option<Duration>,
    /// Some(None) while a DNS answer is awaited.
    dns: Option<Option<Duration>>,
}

impl Pending {
    fn complete(&self) -> bool {
        self.endpoints.is_some()
            && self.slice.is_some()
            && self.proxy.is_some()
            && !matches!(self.dns, Some(None))
    }
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Option<Pending>>,
    notify: Notify,
    /// Service name → endpoints programmed in the proxy (setup).
    programmed: Mutex<HashMap<String, usize>>,
}

impl Shared {
    fn mark(&self, service: &str, f: impl FnOnce(&mut Pending) -> bool) {
        if let Ok(mut p) = self.pending.lock() {
            if let Some(p) = p.as_mut().filter(|p| p.service == service) {
                if f(p) {
                    self.notify.notify_one();
                }
            }
        }
    }
}

fn svc_name(i: usize) -> String {
    format!("svc-{i}")
}

/// The headless Service over Service i's pods.
fn headless_name(i: usize) -> String {
    format!("hl-{i}")
}

/// One real DNS query: the A records of `name` (None: no answer within the timeout).
async fn resolve_a(sock: &UdpSocket, server: SocketAddr, name: &Name) -> Option<Vec<IpAddr>> {
    let mut m = Message::query();
    m.metadata.id = rand_id();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), RecordType::A));
    let packet = m.to_vec().ok()?;
    sock.send_to(&packet, server).await.ok()?;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        let Ok(r) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if r.metadata.id != m.metadata.id {
            continue; // a late answer to an earlier query
        }
        return Some(
            r.answers
                .iter()
                .filter_map(|rr| match &rr.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                })
                .collect(),
        );
    }
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn pod_ip(i: usize) -> String {
    format!("10.200.{}.{}", i / 250, i % 250 + 1)
}

async fn set_ready(client: &Client, ns: &str, pod: usize, ready: bool) -> anyhow::Result<()> {
    let status = if ready { "True" } else { "False" };
    let patch = serde_json::json!({"status": {
        "phase": "Running",
        "podIP": pod_ip(pod),
        "podIPs": [{"ip": pod_ip(pod)}],
        "conditions": [
            {"type": "Ready", "status": status},
            {"type": "ContainersReady", "status": status},
            {"type": "PodScheduled", "status": "True"}
        ]
    }});
    client
        .patch_status::<v1::Pod>(ns, &format!("pod-{pod}"), &patch)
        .await?;
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    println!(
        "{name:<14} n={:<5} p50={} ms  p90={} ms  p99={} ms  max={} ms",
        v.len(),
        ms(pct(&v, 0.5)),
        ms(pct(&v, 0.9)),
        ms(pct(&v, 0.99)),
        ms(v.last().copied().unwrap_or_default())
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let client = Client::lazy(&a.server)?;
    let ns = a.namespace.clone();
    let shared = Arc::new(Shared::default());

    // Setup: namespace, Services, pods (bound to sim nodes), their Running+Ready status.
    let t = Instant::now();
    let _ = client
        .create(&serde_json::from_value::<v1::Namespace>(
            serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
            }),
        )?)
        .await;
    let sem = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..a.services {
        let svc: v1::Service = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": svc_name(i), "namespace": ns},
            "spec": {"selector": {"app": svc_name(i)},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
        }))?;
        let (c, permit) = (client.clone(), sem.clone().acquire_owned().await?);
        tasks.push(tokio::spawn(async move {
            let r = c.create(&svc).await.map(drop);
            drop(permit);
            r
        }));
    }
    for i in 0..a.pods {
        let pod: v1::Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("pod-{i}"), "namespace": ns,
                         "labels": {"app": svc_name(i % a.services)}},
            "spec": {"nodeName": format!("sim-{}", i % a.nodes),
                     "containers": [{"name": "web", "image": "nginx",
                                     "ports": [{"containerPort": 8080}]}]}
        }))?;
        let (c, permit, ns) = (
            client.clone(),
            sem.clone().acquire_owned().await?,
            ns.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = match c.create(&pod).await {
                Ok(_) => set_ready(&c, &ns, i, true).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            drop(permit);
            r.map_err(coxswain_client::Error::Invalid)
        }));
    }
    for i in 0..a.headless {
        let svc: v1::Service = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": headless_name(i), "namespace": ns},
            "spec": {"clusterIP": "None", "selector": {"app": svc_name(i)},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
        }))?;
        let (c, permit) = (client.clone(), sem.clone().acquire_owned().await?);
        tasks.push(tokio::spawn(async move {
            let r = c.create(&svc).await.map(drop);
            drop(permit);
            r
        }));
    }
    for t in tasks {
        if let Err(e) = t.await? {
            if !e.to_string().contains("already exists") {
                bail!("setup: {e}");
            }
        }
    }
    println!(
        "created {} Services (+{} headless over the first ones' pods) and {} ready pods in {:.1} s",
        a.services,
        a.headless,
        a.pods,
        t.elapsed().as_secs_f64()
    );

    // Watches of the controllers' output.
    let s1 = shared.clone();
    let endpoints = Informer::<v1::Endpoints>::new(client.clone())
        .namespace(ns.clone())
        .on_event(move |ev: &Event<v1::Endpoints>| {
            let Some(e) = ev.object() else { return };
            let Some(m) = e.metadata.as_ref() else { return };
            s1.mark(&m.name, |p| {
                let ready = e
                    .subsets
                    .iter()
                    .any(|s| s.addresses.iter().any(|a| a.ip == p.ip));
                if p.endpoints.is_none() && ready == p.ready {
                    p.endpoints = Some(p.t0.elapsed());
                    return true;
                }
                false
            });
        })
        .start();
    let s2 = shared.clone();
    let slices = Informer::<v1::EndpointSlice>::new(client.clone())
        .namespace(ns.clone())
        .on_event(move |ev: &Event<v1::EndpointSlice>| {
            let Some(s) = ev.object() else { return };
            let Some(svc) = s
                .metadata
                .as_ref()
                .and_then(|m| m.labels.get("kubernetes.io/service-name"))
            else {
                return;
            };
            s2.mark(svc, |p| {
                let Some(e) = s
                    .endpoints
                    .iter()
                    .find(|e| e.addresses.first() == Some(&p.ip))
                else {
                    return false;
                };
                let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if p.slice.is_none() && ready == p.ready {
                    p.slice = Some(p.t0.elapsed());
                    return true;
                }
                false
            });
        })
        .start();
    endpoints.wait_synced().await;
    slices.wait_synced().await;

    // The proxy, in this process, observed.
    let rss_before = rss_kib();
    let s3 = shared.clone();
    let observer = Observer(Arc::new(move |key, backends| {
        if let Ok(mut m) = s3.programmed.lock() {
            m.insert(key.service.clone(), backends.len());
        }
        s3.mark(&key.service, |p| {
            let ready = backends
                .iter()
                .any(|b| b.ready && b.addr.ip().to_string() == p.ip);
            if p.proxy.is_none() && ready == p.ready {
                p.proxy = Some(p.t0.elapsed());
                return true;
            }
            false
        });
    }));
    let config = Config {
        observer: Some(observer),
        ..Config::default()
    };
    let t = Instant::now();
    let proxy = tokio::spawn(coxswain_proxy::run(client.clone(), config));
    let per = a.pods / a.services;
    loop {
        let done = shared
            .programmed
            .lock()
            .map(|m| {
                (0..a.services)
                    .filter(|i| m.get(&svc_name(*i)).copied().unwrap_or(0) >= per)
                    .count()
            })
            .unwrap_or(0);
        if done == a.services {
            break;
        }
        if t.elapsed() > a.setup_timeout {
            bail!("the proxy programmed {done} of {} Services", a.services);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the listeners' tasks and caches settle before reading the memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib();
    println!(
        "proxy programmed {} Services / {} endpoints in {:.1} s",
        a.services,
        a.services * per,
        t.elapsed().as_secs_f64()
    );
    let endpoints_total = (a.services * per) as f64;
    println!(
        "proxy memory: RSS {} KiB before, {} KiB after: +{} KiB, {:.2} KiB per endpoint (caches of Services, EndpointSlices and Nodes, balancers, {} listeners)",
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before),
        rss_after.saturating_sub(rss_before) as f64 / endpoints_total,
        a.services
    );

    // DNS: every headless Service answers with all its pods before the flips start.
    let dns_names: Vec<Name> = (0..a.headless)
        .map(|i| {
            Name::from_ascii(format!(
                "{}.{ns}.svc.{}.",
                headless_name(i),
                a.cluster_domain
            ))
        })
        .collect::<Result<_, _>>()?;
    let dns_sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    if let Some(server) = a.dns {
        let t = Instant::now();
        for (i, name) in dns_names.iter().enumerate() {
            loop {
                let n = resolve_a(&dns_sock, server, name)
                    .await
                    .map_or(0, |v| v.len());
                if n >= per {
                    break;
                }
                if t.elapsed() > a.setup_timeout {
                    bail!("DNS: {name} has {n} of {per} addresses (headless Service {i})");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        println!(
            "DNS answers every headless Service with its {per} pods ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }

    // The flips, one at a time.
    let (mut ep, mut sl, mut px, mut dn, mut missed) = (vec![], vec![], vec![], vec![], 0usize);
    for k in 0..a.flips {
        let svc = k % a.services;
        let pod = svc; // the Service's first pod (pod i belongs to Service i % services)
        let ready = (k / a.services) % 2 == 1;
        if let Ok(mut p) = shared.pending.lock() {
            *p = Some(Pending {
                service: svc_name(svc),
                ip: pod_ip(pod),
                ready,
                t0: Instant::now(),
                endpoints: None,
                slice: None,
                proxy: None,
                dns: (a.dns.is_some() && svc < a.headless).then_some(None),
            });
        }
        set_ready(&client, &ns, pod, ready).await?;
        // Real queries until the headless Service's answer shows the flip (bounded by the
        // flip's deadline: the task is aborted with it).
        let poller = a.dns.filter(|_| svc < a.headless).map(|server| {
            let (sock, name, sh, poll) = (
                dns_sock.clone(),
                dns_names[svc].clone(),
                shared.clone(),
                a.dns_poll,
            );
            let ip: IpAddr = pod_ip(pod).parse().expect("pod IP");
            tokio::spawn(async move {
                loop {
                    if let Some(ips) = resolve_a(&sock, server, &name).await {
                        if ips.contains(&ip) == ready {
                            sh.mark(&svc_name(svc), |p| {
                                p.dns = Some(Some(p.t0.elapsed()));
                                true
                            });
                            return;
                        }
                    }
                    tokio::time::sleep(poll).await;
                }
            })
        });
        let deadline = tokio::time::Instant::now() + a.flip_timeout;
        loop {
            let complete = shared
                .pending
                .lock()
                .map(|p| p.as_ref().is_some_and(Pending::complete))
                .unwrap_or(false);
            if complete {
                break;
            }
            if tokio::time::timeout_at(deadline, shared.notify.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        if let Some(t) = poller {
            t.abort();
        }
        let p = shared.pending.lock().ok().and_then(|mut p| p.take());
        if let Some(p) = p {
            match (p.endpoints, p.slice, p.proxy, p.dns) {
                (Some(e), Some(s), Some(x), d) if !matches!(d, Some(None)) => {
                    ep.push(e);
                    sl.push(s);
                    px.push(x);
                    dn.extend(d.flatten());
                }
                _ => missed += 1,
            }
        }
    }
    println!(
        "{} Ready flips (one at a time) over {} Services x {} pods; {} not seen within {:?}",
        a.flips, a.services, a.pods, missed, a.flip_timeout
    );
    report("Endpoints", ep);
    report("EndpointSlice", sl);
    report("proxy routing", px);
    if a.dns.is_some() {
        report("DNS (headless)", dn);
    }
    proxy.abort();
    Ok(())
}
