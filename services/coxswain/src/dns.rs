//! Cluster DNS in the daemon: `coxswain dns --server URL` (its own process) and in-process in
//! `coxswain up`. Binds the UDP and TCP listeners, starts the informers, and publishes the
//! listener as the `kube-dns` Service of kube-system (selectorless, with Endpoints pointing at
//! the listener), so the service proxy routes `<kube-dns ClusterIP>:53` to it.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use coxswain_api::v1;
use coxswain_client::Client;
use coxswain_dns::server::{self, ServerConfig};
use coxswain_dns::upstream::{parse_resolv_conf, Upstream};
use coxswain_dns::{Dns, PodMode, Zone};
use tokio::net::{TcpListener, UdpSocket};

use crate::duration;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outside {
    /// Forward to the upstream resolvers (the host's /etc/resolv.conf by default).
    Forward,
    /// Answer REFUSED.
    Refuse,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodsArg {
    Disabled,
    Insecure,
    Verified,
}

/// Flags of the cluster DNS (shared by `coxswain dns` and `up`).
#[derive(Args, Clone, Debug)]
pub struct DnsOpts {
    /// DNS listen address, UDP and TCP on the same port (port 0: any free port). Default:
    /// 127.0.0.1:53 when this process may bind it, else 127.0.0.1:<--dns-port>.
    #[arg(long, env = "COXSWAIN_DNS_LISTEN")]
    pub dns_listen: Option<SocketAddr>,
    /// The port used when port 53 cannot be bound and --dns-listen is not given (0: any free
    /// port).
    #[arg(long, env = "COXSWAIN_DNS_PORT", default_value_t = 0)]
    pub dns_port: u16,
    /// The cluster domain DNS answers for.
    #[arg(long, env = "COXSWAIN_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Names outside the cluster domain: forward them to the upstream resolvers, or refuse.
    #[arg(long, value_enum, default_value = "forward")]
    pub dns_outside: Outside,
    /// Upstream resolvers (IP:PORT, comma-separated). Default: the nameservers of
    /// --resolv-conf.
    #[arg(long, value_delimiter = ',')]
    pub dns_upstream: Vec<SocketAddr>,
    /// The resolver configuration the upstreams are read from.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// How long one upstream gets to answer before the next is tried (then SERVFAIL).
    #[arg(long, default_value = "2s", value_parser = duration::parse)]
    pub dns_upstream_timeout: Duration,
    /// TTL of the cluster's records, seconds (CoreDNS' default 5).
    #[arg(long, default_value_t = 5)]
    pub dns_ttl: u32,
    /// `<a-b-c-d>.<ns>.pod.<domain>`: disabled, insecure (any IP, as kube-dns), or verified
    /// (only the IPs of pods in that namespace).
    #[arg(long, value_enum, default_value = "insecure")]
    pub dns_pods: PodsArg,
    /// A DNS-over-TCP connection idle this long is closed.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub dns_tcp_idle_timeout: Duration,
    /// UDP receive loops.
    #[arg(long, default_value_t = 2)]
    pub dns_udp_workers: usize,
    /// Do not publish the listener as the kube-dns Service of kube-system.
    #[arg(long)]
    pub no_kube_dns_service: bool,
    /// Do not run the cluster DNS in `coxswain up`.
    #[arg(long)]
    pub no_dns: bool,
}

/// `coxswain dns`.
#[derive(Args, Clone, Debug)]
pub struct DnsArgs {
    /// The object store (a `coxswain up` or `coxswain store`).
    #[arg(
        long,
        env = "COXSWAIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    #[command(flatten)]
    pub opts: DnsOpts,
}

async fn bind(opts: &DnsOpts) -> anyhow::Result<(UdpSocket, TcpListener)> {
    if let Some(addr) = opts.dns_listen {
        return server::bind_pair(addr)
            .await
            .with_context(|| format!("binding DNS on {addr}"));
    }
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match server::bind_pair(SocketAddr::new(lo, 53)).await {
        Ok(p) => Ok(p),
        Err(e) => {
            tracing::info!(error = %e, port = opts.dns_port, "DNS cannot bind port 53; using --dns-port");
            let addr = SocketAddr::new(lo, opts.dns_port);
            server::bind_pair(addr)
                .await
                .with_context(|| format!("binding DNS on {addr}"))
        }
    }
}

fn server_config(opts: &DnsOpts, own: SocketAddr) -> ServerConfig {
    let upstream = (opts.dns_outside == Outside::Forward).then(|| {
        let servers = if opts.dns_upstream.is_empty() {
            let text = std::fs::read_to_string(&opts.resolv_conf).unwrap_or_default();
            parse_resolv_conf(&text, &[own])
        } else {
            opts.dns_upstream.clone()
        };
        if servers.is_empty() {
            tracing::warn!(resolv_conf = %opts.resolv_conf.display(), "no upstream resolvers: names outside the cluster domain get SERVFAIL");
        }
        Upstream {
            servers,
            timeout: opts.dns_upstream_timeout,
        }
    });
    ServerConfig {
        upstream,
        tcp_idle_timeout: opts.dns_tcp_idle_timeout,
        udp_workers: opts.dns_udp_workers,
        ..Default::default()
    }
}

/// Bind, start the informers and the server loops; returns the listener address. In `up`
/// the store is this very process, reached through a lazy client.
pub async fn start(client: Client, opts: &DnsOpts) -> anyhow::Result<SocketAddr> {
    let pods = match opts.dns_pods {
        PodsArg::Disabled => PodMode::Disabled,
        PodsArg::Insecure => PodMode::Insecure,
        PodsArg::Verified => PodMode::Verified,
    };
    let zone = Zone::new(&opts.cluster_domain, opts.dns_ttl, pods).map_err(anyhow::Error::msg)?;
    let (udp, tcp) = bind(opts).await?;
    let addr = udp.local_addr()?;
    let dns = Arc::new(Dns::new(zone));
    let cfg = Arc::new(server_config(opts, addr));
    let watch = coxswain_dns::watch::start(client.clone(), dns.clone());
    // The informers live as long as the process.
    std::mem::forget(watch);
    tokio::spawn(server::serve_udp(Arc::new(udp), dns.clone(), cfg.clone()));
    tokio::spawn(server::serve_tcp(tcp, dns, cfg));
    if !opts.no_kube_dns_service {
        tokio::spawn(publish(client, addr));
    }
    tracing::info!(%addr, domain = %opts.cluster_domain, "cluster DNS is serving");
    Ok(addr)
}

/// `up`: the cluster DNS in-process against `url`; None with --no-dns.
pub async fn spawn(url: &str, opts: &DnsOpts) -> anyhow::Result<Option<SocketAddr>> {
    if opts.no_dns {
        return Ok(None);
    }
    let client = Client::lazy_as(url, "dns").context("dns: client")?;
    start(client, opts).await.map(Some)
}

/// `coxswain dns --server URL`: run until SIGINT/SIGTERM.
pub async fn run(args: DnsArgs) -> anyhow::Result<()> {
    let client = Client::connect(&args.server)
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    let addr = start(client, &args.opts).await?;
    println!(
        "coxswain dns ready server={} dns={addr}{}",
        args.server,
        crate::telemetry::ready_suffix()
    );
    crate::shutdown_signal().await;
    Ok(())
}

const KUBE_SYSTEM: &str = "kube-system";
const KUBE_DNS: &str = "kube-dns";

/// kube-dns' ports: (name, protocol), both on port 53.
const KUBE_DNS_PORTS: [(&str, &str); 2] = [("dns", "UDP"), ("dns-tcp", "TCP")];

/// The kube-dns Service (selectorless, so the endpoints controller leaves its Endpoints to
/// us) and Endpoints pointing at `addr`. Retries until the store takes them.
async fn publish(client: Client, addr: SocketAddr) {
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    let mut delay = Duration::from_millis(50);
    loop {
        match publish_once(&client, ip, addr.port()).await {
            Ok(()) => {
                tracing::info!(%ip, port = addr.port(), "kube-dns Service and Endpoints published");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "publishing kube-dns; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn publish_once(client: &Client, ip: IpAddr, port: u16) -> anyhow::Result<()> {
    let labels: std::collections::BTreeMap<String, String> = [
        ("k8s-app", "kube-dns"),
        ("kubernetes.io/name", "CoreDNS"),
        ("kubernetes.io/cluster-service", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let svc_ports: Vec<v1::ServicePort> = KUBE_DNS_PORTS
        .into_iter()
        .map(|(name, protocol)| v1::ServicePort {
            name: name.into(),
            protocol: protocol.into(),
            port: 53,
            target_port: Some(v1::IntOrString::int(port as i32)),
            ..Default::default()
        })
        .collect();
    match client.get::<v1::Service>(KUBE_SYSTEM, KUBE_DNS).await? {
        None => {
            let svc = v1::Service {
                api_version: "v1".into(),
                kind: "Service".into(),
                metadata: Some(v1::ObjectMeta {
                    name: KUBE_DNS.into(),
                    namespace: KUBE_SYSTEM.into(),
                    labels: labels.clone(),
                    ..Default::default()
                }),
                spec: Some(v1::ServiceSpec {
                    ports: svc_ports,
                    r#type: "ClusterIP".into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match client.create(&svc).await {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Some(mut svc) => {
            let spec = svc.spec.get_or_insert_with(Default::default);
            let same = spec.ports.len() == svc_ports.len()
                && spec
                    .ports
                    .iter()
                    .zip(&svc_ports)
                    .all(|(a, b)| a.name == b.name && a.target_port == b.target_port);
            if !same {
                // Keep the nodePorts the store gave, if any; only the target ports move.
                spec.ports = svc_ports;
                client.update(&svc).await?;
            }
        }
    }
    let subsets = vec![v1::EndpointSubset {
        addresses: vec![v1::EndpointAddress {
            ip: ip.to_string(),
            ..Default::default()
        }],
        ports: KUBE_DNS_PORTS
            .into_iter()
            .map(|(name, protocol)| v1::EndpointPort {
                name: name.into(),
                port: port as i32,
                protocol: protocol.into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }];
    match client.get::<v1::Endpoints>(KUBE_SYSTEM, KUBE_DNS).await? {
        None => {
            let ep = v1::Endpoints {
                api_version: "v1".into(),
                kind: "Endpoints".into(),
                metadata: Some(v1::ObjectMeta {
                    name: KUBE_DNS.into(),
                    namespace: KUBE_SYSTEM.into(),
                    labels,
                    ..Default::default()
                }),
                subsets,
            };
            client.create(&ep).await?;
        }
        Some(mut ep) => {
            if ep.subsets != subsets {
                ep.subsets = subsets;
                client.update(&ep).await?;
            }
        }
    }
    Ok(())
}
