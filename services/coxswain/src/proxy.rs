//! The service proxy in the daemon: `coxswain proxy --server URL` (its own process) and
//! in-process in `coxswain up`; the service address ranges; the `kubernetes` Service.
//!
//! Addresses in `up` (all inside 127.0.0.0/8, so this host reaches them with no configuration):
//! the cluster's pod network octet O (node i's pods on 127.O.i.0/24, claimed so that no other
//! `coxswain up` on this machine holds it) also names its Service range, 127.255.O.0/24, and its
//! LoadBalancer pool, 127.0.O.0/24. Pod ranges never use the second octets 0 or 255 (pods:
//! 127.1–199.x, hashed node names 127.200–254.x), so neither range overlaps a pod range, and two
//! clusters never share an O, so their Services never collide.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coxswain_api::v1::IntOrString;
use coxswain_api::{v1, Kind, Object};
use coxswain_proxy::{Config, ForwardConfig, Pool};
use coxswain_store::alloc::ServiceRange;
use coxswain_store::store::DeleteOptions;
use coxswain_store::{Store, StoreError};

use crate::agent::UpAgentOpts;
use crate::duration;

/// Data-path flags shared by `coxswain proxy` and `coxswain up`.
#[derive(Args, Clone, Debug)]
pub struct ProxyOpts {
    /// Extra addresses every NodePort listens on besides each node's InternalIP (comma
    /// separated, e.g. 127.0.0.1).
    #[arg(long, value_delimiter = ',')]
    pub nodeport_addresses: Vec<IpAddr>,
    /// How long a connect to one endpoint may take before the next endpoint is tried.
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    pub proxy_connect_timeout: Duration,
    /// A UDP session (one client of one Service address) with no datagram either way for this
    /// long ends.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub udp_idle_timeout: Duration,
    /// UDP sessions per Service address at most; datagrams of further clients are dropped.
    #[arg(long, default_value_t = 1024)]
    pub udp_max_sessions: usize,
    /// How often the proxy re-applies everything without a change (retries failed listens).
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    pub proxy_sync_period: Duration,
}

impl ProxyOpts {
    fn config(&self, pool: Option<Pool>) -> Config {
        Config {
            node_port_addresses: self.nodeport_addresses.clone(),
            load_balancer_pool: pool,
            forward: ForwardConfig {
                connect_timeout: self.proxy_connect_timeout,
                udp_idle_timeout: self.udp_idle_timeout,
                udp_max_sessions: self.udp_max_sessions.max(1),
            },
            sync_period: self.proxy_sync_period,
            observer: None,
        }
    }
}

/// Service networking flags of `coxswain up` / `coxswain store`.
#[derive(Args, Clone, Debug)]
pub struct ServiceNetOpts {
    /// Where Services' ClusterIPs come from. `up`: 127.255.O.0/24 (O: the pod network octet);
    /// `store`: 10.96.0.0/12.
    #[arg(long, env = "COXSWAIN_SERVICE_CLUSTER_IP_RANGE", value_parser = ServiceRange::parse)]
    pub service_cluster_ip_range: Option<ServiceRange>,
    /// LoadBalancer ingress IPs come from here (`up`: 127.0.O.0/24).
    #[arg(long, value_parser = Pool::parse)]
    pub load_balancer_ip_range: Option<Pool>,
    /// Do not run the service proxy in `coxswain up`.
    #[arg(long)]
    pub no_proxy: bool,
    #[command(flatten)]
    pub proxy: ProxyOpts,
}

/// `coxswain proxy`.
#[derive(Args, Clone, Debug)]
pub struct ProxyArgs {
    /// The object store (a `coxswain up` or `coxswain store`).
    #[arg(
        long,
        env = "COXSWAIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// Prometheus metrics listen address (served at /metrics).
    #[arg(long, default_value = "127.0.0.1:9465")]
    pub metrics_listen: SocketAddr,
    /// LoadBalancer ingress IPs come from here; without it LoadBalancer Services stay
    /// `<pending>`.
    #[arg(long, value_parser = Pool::parse)]
    pub load_balancer_ip_range: Option<Pool>,
    #[command(flatten)]
    pub proxy: ProxyOpts,
}

/// The resolved service networking of a daemon.
#[derive(Clone, Debug)]
pub struct ServiceNet {
    pub range: ServiceRange,
    pub pool: Option<Pool>,
}

/// Decide the ranges. In `up` this claims the pod network octet now (see the module docs) and
/// hands it to the agents.
pub fn resolve(
    opts: &ServiceNetOpts,
    agents: &mut UpAgentOpts,
    grpc_port: u16,
    mode: &str,
) -> anyhow::Result<ServiceNet> {
    if mode != "up" {
        return Ok(ServiceNet {
            range: opts.service_cluster_ip_range.unwrap_or_default(),
            pool: opts.load_balancer_ip_range,
        });
    }
    let octet = crate::agent::pod_network_octet(agents, grpc_port)?;
    agents.pod_network_octet = Some(octet);
    let range = match opts.service_cluster_ip_range {
        Some(r) => r,
        None => {
            ServiceRange::parse(&format!("127.255.{octet}.0/24")).map_err(anyhow::Error::msg)?
        }
    };
    let pool = match opts.load_balancer_ip_range {
        Some(p) => p,
        None => Pool::parse(&format!("127.0.{octet}.0/24")).map_err(anyhow::Error::msg)?,
    };
    Ok(ServiceNet {
        range,
        pool: Some(pool),
    })
}

/// The `kubernetes` Service in `default`: the range's first address, port 443, fronting the API
/// (gRPC) through the proxy; its Endpoints (labelled skip-mirror) and its EndpointSlice name
/// this daemon's address, as the API server's endpoint reconciler keeps them. Recreated when
/// the range changed since it was stored.
pub async fn ensure_kubernetes_service(store: &Store, net: &ServiceNet, grpc: SocketAddr) {
    if let Err(e) = ensure(store, net, grpc).await {
        tracing::warn!(error = %e, "could not write the kubernetes Service");
    }
}

async fn ensure(store: &Store, net: &ServiceNet, grpc: SocketAddr) -> anyhow::Result<()> {
    let first = net.range.first().to_string();
    let ip = match grpc.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let meta = || v1::ObjectMeta {
        name: "kubernetes".into(),
        namespace: "default".into(),
        labels: [("component", "apiserver"), ("provider", "kubernetes")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let labelled = |extra: &[(&str, &str)]| {
        let mut m = meta();
        m.labels
            .extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        m
    };
    let eps_meta = labelled(&[("endpointslice.kubernetes.io/skip-mirror", "true")]);
    let current = match store.get(Kind::Service, "default", "kubernetes") {
        Ok(Object::Service(s)) => Some(s),
        Ok(_) | Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let spec = current.as_ref().and_then(|s| s.spec.as_ref());
    let port_ok = spec.is_some_and(|s| {
        s.ports.len() == 1
            && s.ports[0].port == 443
            && s.ports[0].target_port == Some(IntOrString::int(grpc.port() as i32))
    });
    if spec.is_some_and(|s| s.cluster_ip != first) {
        store
            .delete(
                Kind::Service,
                "default",
                "kubernetes",
                &DeleteOptions::default(),
            )
            .await
            .context("deleting the kubernetes Service of another range")?;
    }
    let svc = v1::Service {
        api_version: "v1".into(),
        kind: "Service".into(),
        metadata: Some(meta()),
        spec: Some(v1::ServiceSpec {
            r#type: "ClusterIP".into(),
            cluster_ip: first.clone(),
            ports: vec![v1::ServicePort {
                name: "grpc".into(),
                protocol: "TCP".into(),
                port: 443,
                target_port: Some(IntOrString::int(grpc.port() as i32)),
                ..Default::default()
            }],
            session_affinity: "None".into(),
            ..Default::default()
        }),
        status: None,
    };
    match (spec.map(|s| s.cluster_ip == first), port_ok) {
        (Some(true), true) => {}
        (Some(true), false) => {
            let mut s = current.clone().unwrap_or_default();
            s.spec = svc.spec.clone();
            if let (Some(new), Some(old)) = (s.spec.as_mut(), spec) {
                new.cluster_ips = old.cluster_ips.clone();
            }
            store
                .update(Object::Service(s))
                .await
                .context("updating the kubernetes Service")?;
        }
        _ => {
            store
                .create(Object::Service(svc), false)
                .await
                .context("creating the kubernetes Service")?;
        }
    }
    let subsets = vec![v1::EndpointSubset {
        addresses: vec![v1::EndpointAddress {
            ip: ip.to_string(),
            ..Default::default()
        }],
        not_ready_addresses: vec![],
        ports: vec![v1::EndpointPort {
            name: "grpc".into(),
            port: grpc.port() as i32,
            protocol: "TCP".into(),
            app_protocol: None,
        }],
    }];
    match store.get(Kind::Endpoints, "default", "kubernetes") {
        Ok(Object::Endpoints(mut e)) => {
            let labels = &eps_meta.labels;
            if e.subsets != subsets || e.metadata.as_ref().map(|m| &m.labels) != Some(labels) {
                e.subsets = subsets;
                e.metadata.get_or_insert_with(Default::default).labels = labels.clone();
                store
                    .update(Object::Endpoints(e))
                    .await
                    .context("updating the kubernetes Endpoints")?;
            }
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            let e = v1::Endpoints {
                api_version: "v1".into(),
                kind: "Endpoints".into(),
                metadata: Some(eps_meta),
                subsets,
            };
            store
                .create(Object::Endpoints(e), false)
                .await
                .context("creating the kubernetes Endpoints")?;
        }
        Err(e) => return Err(e.into()),
    }
    // The slice the proxy reads.
    let slice_meta = labelled(&[("kubernetes.io/service-name", "kubernetes")]);
    let endpoints = vec![v1::Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(v1::EndpointConditions {
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
        }),
        ..Default::default()
    }];
    let ports = vec![v1::EndpointSlicePort {
        name: Some("grpc".into()),
        port: Some(grpc.port() as i32),
        protocol: Some("TCP".into()),
        app_protocol: None,
    }];
    let address_type = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
    match store.get(Kind::EndpointSlice, "default", "kubernetes") {
        Ok(Object::EndpointSlice(mut s)) => {
            let labels = &slice_meta.labels;
            if s.endpoints != endpoints
                || s.ports != ports
                || s.metadata.as_ref().map(|m| &m.labels) != Some(labels)
            {
                if s.address_type != address_type {
                    store
                        .delete(
                            Kind::EndpointSlice,
                            "default",
                            "kubernetes",
                            &DeleteOptions::default(),
                        )
                        .await
                        .context("deleting the kubernetes EndpointSlice")?;
                    return Box::pin(ensure(store, net, grpc)).await;
                }
                s.endpoints = endpoints;
                s.ports = ports;
                s.metadata.get_or_insert_with(Default::default).labels = labels.clone();
                store
                    .update(Object::EndpointSlice(s))
                    .await
                    .context("updating the kubernetes EndpointSlice")?;
            }
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            let s = v1::EndpointSlice {
                api_version: "discovery.k8s.io/v1".into(),
                kind: "EndpointSlice".into(),
                metadata: Some(slice_meta),
                address_type: address_type.into(),
                endpoints,
                ports,
            };
            store
                .create(Object::EndpointSlice(s), false)
                .await
                .context("creating the kubernetes EndpointSlice")?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// In `coxswain up`: run the proxy against `url`. Returns at once.
pub fn spawn_up(url: &str, opts: &ServiceNetOpts, net: &ServiceNet) -> anyhow::Result<()> {
    if opts.no_proxy {
        return Ok(());
    }
    let client = coxswain_client::Client::lazy_as(url, "proxy")?;
    tracing::info!(
        service_cluster_ip_range = %net.range,
        load_balancer_pool = ?net.pool,
        "starting the service proxy"
    );
    tokio::spawn(coxswain_proxy::run(client, opts.proxy.config(net.pool)));
    Ok(())
}

/// `coxswain proxy`.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    // The one metrics setup every process has (HELP for every family, process_*, build info).
    let metrics_addr = coxswain_telemetry::start("proxy", args.metrics_listen)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen: {e}"))?;
    let client = coxswain_client::Client::lazy(&args.server)?;
    let proxy = tokio::spawn(coxswain_proxy::run(
        client,
        args.proxy.config(args.load_balancer_ip_range),
    ));
    println!("coxswain proxy ready metrics={metrics_addr}");
    tokio::select! {
        r = proxy => r.context("the proxy stopped")?,
        _ = crate::shutdown_signal() => {}
    }
    Ok(())
}
