//! Node agents in the daemon: `coxswain agent --node-name N --server URL` (own process, or
//! `--sim-nodes 1000` simulated nodes) and in-process in `coxswain up --nodes N`.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use coxswain_agent::agent::{Host, NodeConfig};
use coxswain_agent::catalog::Catalog;
use coxswain_agent::pod;
use coxswain_agent::runtime::process::ProcessRuntime;
use coxswain_agent::runtime::sim::SimRuntime;
use coxswain_agent::service::Registry;
use coxswain_api::v1::Taint;
use coxswain_client::Client;

use crate::duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// Containers are real child processes.
    Process,
    /// Simulated containers (no processes), scripted by pod annotations.
    Sim,
}

/// Node and pod-lifecycle flags shared by `coxswain agent` and `coxswain up`.
#[derive(Args, Clone, Debug)]
pub struct NodeOpts {
    /// The container runtime.
    #[arg(long, env = "COXSWAIN_RUNTIME", value_enum, default_value = "process")]
    pub runtime: RuntimeKind,
    /// Extra node labels: k=v,k2=v2.
    #[arg(long, default_value = "")]
    pub node_labels: String,
    /// Taints the node registers with: key=value:Effect,key:Effect.
    #[arg(long, default_value = "")]
    pub register_with_taints: String,
    /// Node capacity (and allocatable): CPU.
    #[arg(long, default_value = "4")]
    pub node_cpu: String,
    /// Node capacity (and allocatable): memory.
    #[arg(long, default_value = "8Gi")]
    pub node_memory: String,
    /// Node capacity (and allocatable): pods.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// How often the node's Lease in kube-node-lease is renewed.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub lease_renew_interval: Duration,
    /// The Lease's leaseDurationSeconds.
    #[arg(long, default_value_t = 40)]
    pub lease_duration_seconds: i32,
    /// How often the node status is checked (and written when it changed).
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub node_status_update_frequency: Duration,
    /// How often the node status is written even when unchanged.
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    pub node_status_report_frequency: Duration,
    /// How often container CPU/memory usage is sampled (the Stats RPC).
    #[arg(long, default_value = "15s", value_parser = duration::parse)]
    pub metrics_resolution: Duration,
    /// Container restart (CrashLoopBackOff) and image pull back-off: the first delay.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub backoff_initial: Duration,
    /// The back-off cap.
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    pub backoff_max: Duration,
    /// A container that ran this long without failing has its back-off reset.
    #[arg(long, default_value = "10m", value_parser = duration::parse)]
    pub backoff_reset: Duration,
    /// Multiplies every duration read from a pod spec (probe delays, periods and timeouts,
    /// grace periods); for tests, e.g. 0.1.
    #[arg(long, default_value_t = 1.0)]
    pub pod_time_scale: f64,
    /// How often running pods' projected volumes are written again, renewing ServiceAccount
    /// tokens past 80 % of their life (the kubelet's `--sync-frequency`).
    #[arg(long, default_value = "1m", value_parser = duration::parse)]
    pub sync_frequency: Duration,
    /// Image catalog file (YAML/JSON) replacing the built-in one.
    #[arg(long)]
    pub image_catalog: Option<PathBuf>,
    /// Do not record Events (for load tests).
    #[arg(long)]
    pub no_events: bool,
    /// The uid a process-runtime container runs as when its pod names no `runAsUser` and the
    /// agent is root (an image's own user; 65534 is `nobody`).
    #[arg(long, default_value_t = 65534)]
    pub default_run_as_user: u32,
    /// The gid of such a container when its pod names no `runAsGroup`.
    #[arg(long, default_value_t = 65534)]
    pub default_run_as_group: u32,
}

/// `coxswain up`'s agent flags.
#[derive(Args, Clone, Debug)]
pub struct UpAgentOpts {
    /// Number of in-process nodes (node1..nodeN); 0 for none.
    #[arg(long, env = "COXSWAIN_NODES", default_value_t = 3)]
    pub nodes: u32,
    /// An extra node tainted node-role.kubernetes.io/control-plane:NoSchedule (as kubeadm).
    #[arg(long)]
    pub control_plane_node: Option<String>,
    /// Second octet of the pod network: node i gets pod IPs 127.OCTET.i.0/24 (the control-plane
    /// node i=0). Default: the first octet from 10 + (gRPC port mod 190) on that no other
    /// `coxswain up` on this machine holds (each holds 127.O.255.254:65535 while it runs).
    #[arg(long)]
    pub pod_network_octet: Option<u8>,
    #[command(flatten)]
    pub node: NodeOpts,
}

/// `coxswain agent`.
#[derive(Args, Clone, Debug)]
pub struct AgentArgs {
    /// The object store (a `coxswain up` or `coxswain store`).
    #[arg(
        long,
        env = "COXSWAIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// This node's name.
    #[arg(long, env = "COXSWAIN_NODE_NAME")]
    pub node_name: Option<String>,
    /// Simulate this many nodes (sim-node-1..N, or PREFIX-1..N) in this process; implies
    /// `--runtime sim`.
    #[arg(long)]
    pub sim_nodes: Option<u32>,
    /// Name prefix of simulated nodes.
    #[arg(long, default_value = "sim-node")]
    pub sim_node_prefix: String,
    /// Listen address of this agent's NodeAgent gRPC service (logs, stats).
    #[arg(long, default_value = "127.0.0.1:10250")]
    pub listen: SocketAddr,
    /// The node's pod range (a /24 inside 127.0.0.0/8, e.g. 127.1.7.0); derived from the name
    /// by default.
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// Where container directories and logs go.
    #[arg(long)]
    pub root_dir: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeOpts,
    #[command(flatten)]
    pub serving: crate::security_agent::AgentServingOpts,
}

fn parse_labels(s: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("--node-labels: {part:?} is not key=value"))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

fn parse_taints(s: &str) -> anyhow::Result<Vec<Taint>> {
    let mut out = vec![];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kv, effect) = part
            .rsplit_once(':')
            .with_context(|| format!("--register-with-taints: {part:?} has no :Effect"))?;
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            bail!("--register-with-taints: effect {effect:?} must be NoSchedule, PreferNoSchedule or NoExecute");
        }
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        out.push(Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
            time_added: String::new(),
        });
    }
    Ok(out)
}

impl NodeOpts {
    fn node_config(&self, name: &str, endpoint: &str) -> anyhow::Result<NodeConfig> {
        let mut c = NodeConfig::new(name);
        c.labels = parse_labels(&self.node_labels)?;
        c.taints = parse_taints(&self.register_with_taints)?;
        c.capacity.insert("cpu".into(), self.node_cpu.clone());
        c.capacity.insert("memory".into(), self.node_memory.clone());
        c.capacity.insert("pods".into(), self.max_pods.to_string());
        c.lease_renew_interval = self.lease_renew_interval;
        c.lease_duration_seconds = self.lease_duration_seconds;
        c.status_update_frequency = self.node_status_update_frequency;
        c.status_report_frequency = self.node_status_report_frequency;
        c.metrics_resolution = self.metrics_resolution;
        c.endpoint = endpoint.into();
        c.events = !self.no_events;
        Ok(c)
    }

    fn pod_config(&self) -> pod::Config {
        pod::Config {
            backoff_base: self.backoff_initial,
            backoff_max: self.backoff_max,
            backoff_reset: self.backoff_reset,
            time_scale: self.pod_time_scale,
            volume_sync: self.sync_frequency,
        }
    }

    fn catalog(&self) -> anyhow::Result<Catalog> {
        match &self.image_catalog {
            Some(p) => Catalog::load(p).with_context(|| format!("reading {}", p.display())),
            None => Ok(Catalog::default()),
        }
    }
}

async fn start_hosts(
    client: Client,
    opts: &NodeOpts,
    configs: Vec<NodeConfig>,
    root: &Path,
    registry: &Registry,
    private_dir: &Path,
) -> anyhow::Result<()> {
    let catalog = opts.catalog()?;
    match opts.runtime {
        RuntimeKind::Process => {
            // /proc/self/exe (resolved in the child, which is a fork of this process) still
            // names this binary after a rebuild replaced the file on disk; current_exe() would
            // then point at a deleted path.
            let proc_exe = PathBuf::from("/proc/self/exe");
            let exe = if proc_exe.exists() {
                proc_exe
            } else {
                std::env::current_exe().context("locating the coxswain binary")?
            };
            std::fs::create_dir_all(root)
                .with_context(|| format!("creating {}", root.display()))?;
            coxswain_agent::runtime::process::kill_leftovers(root);
            let rt = ProcessRuntime::new(root.to_path_buf(), exe, catalog)
                .with_default_user(opts.default_run_as_user, opts.default_run_as_group)
                .with_private_dir(private_dir.to_path_buf());
            rt.prepare_root();
            let rt = Arc::new(rt);
            let host = Host::start(client, rt, configs, opts.pod_config()).await?;
            for (name, n) in &host.nodes {
                registry.add(name, n.clone());
            }
            std::mem::forget(host);
        }
        RuntimeKind::Sim => {
            let rt = Arc::new(SimRuntime::new(catalog));
            let host = Host::start(client, rt, configs, opts.pod_config()).await?;
            for (name, n) in &host.nodes {
                registry.add(name, n.clone());
            }
            std::mem::forget(host);
        }
    }
    Ok(())
}

/// Picks the pod network octet O (pods on 127.O.N.x) no other `coxswain up` on this machine
/// uses: each claims its octet by listening on 127.O.255.254:65535 for its lifetime (node 255
/// never exists), starting from `first` and moving on while the claim is taken.
fn claim_pod_network(first: u8) -> u8 {
    for i in 0..190u16 {
        let o = (10 + (first as u16 - 10 + i) % 190) as u8;
        if let Ok(l) =
            std::net::TcpListener::bind((std::net::Ipv4Addr::new(127, o, 255, 254), 65535))
        {
            // Held until the process exits.
            std::mem::forget(l);
            return o;
        }
    }
    first
}

/// The pod network octet of `coxswain up` on gRPC port `grpc_port`: `--pod-network-octet`, or
/// one claimed now (see [`claim_pod_network`]). The service proxy derives its ranges from it.
pub(crate) fn pod_network_octet(opts: &UpAgentOpts, grpc_port: u16) -> anyhow::Result<u8> {
    match opts.pod_network_octet {
        Some(0) => bail!("--pod-network-octet must be 1..255"),
        Some(o) => {
            // Claimed too (when free), so that clusters choosing theirs skip it.
            match std::net::TcpListener::bind((std::net::Ipv4Addr::new(127, o, 255, 254), 65535)) {
                Ok(l) => std::mem::forget(l),
                Err(_) => tracing::warn!(
                    octet = o,
                    "--pod-network-octet: another coxswain up on this machine uses this octet; pod and Service addresses will collide"
                ),
            }
            Ok(o)
        }
        None => Ok(claim_pod_network((10 + grpc_port as u32 % 190) as u8)),
    }
}

/// In `coxswain up`: start node1..nodeN (and the control-plane node) against `url`; their
/// NodeAgent service is the main server's (`registry`). Returns at once.
pub fn spawn_up(
    url: &str,
    data_dir: &Path,
    opts: &UpAgentOpts,
    registry: &Registry,
) -> anyhow::Result<()> {
    let mut configs = vec![];
    let port: u32 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(0);
    let octet = match opts.pod_network_octet {
        Some(0) => bail!("--pod-network-octet must be 1..255"),
        Some(o) => o,
        None => claim_pod_network((10 + port % 190) as u8),
    };
    let range = |i: u32| std::net::Ipv4Addr::new(127, octet, (i % 256) as u8, 0);
    if let Some(cp) = &opts.control_plane_node {
        let mut c = opts.node.node_config(cp, url)?;
        c.taints.push(Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            value: String::new(),
            effect: "NoSchedule".into(),
            time_added: String::new(),
        });
        c.labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            String::new(),
        );
        c.pod_range = range(0);
        configs.push(c);
    }
    if opts.nodes > 254 {
        bail!("--nodes: at most 254 in-process nodes (use `coxswain agent --sim-nodes` for more)");
    }
    for i in 1..=opts.nodes {
        let mut c = opts.node.node_config(&format!("node{i}"), url)?;
        c.pod_range = range(i);
        configs.push(c);
    }
    if configs.is_empty() {
        return Ok(());
    }
    let client = Client::lazy_as(url, "nodes")?;
    let opts = opts.node.clone();
    // Absolute: containers run with their own working directory, and docroots, logs and
    // volumes are handed to them as paths under this root.
    let root = std::path::absolute(data_dir.join("agent"))?;
    let registry = registry.clone();
    // A container's private view covers the whole data directory (PKI, database, other pods).
    let data_dir = std::path::absolute(data_dir)?;
    tokio::spawn(async move {
        if let Err(e) = start_hosts(client, &opts, configs, &root, &registry, &data_dir).await {
            tracing::error!(error = %e, "starting the node agents failed");
        }
    });
    Ok(())
}

/// `coxswain agent`.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    // TLS and the kubelet's authentication when the store has them (`security_agent`).
    let secure = args.server.starts_with("https://") || args.serving.tls_cert_file.is_some();
    let endpoint = format!("{}://{addr}", if secure { "https" } else { "http" });
    let mut opts = args.node.clone();
    let configs: Vec<NodeConfig> = match (args.sim_nodes, &args.node_name) {
        (Some(n), _) => {
            opts.runtime = RuntimeKind::Sim;
            (1..=n)
                .map(|i| {
                    let mut c =
                        opts.node_config(&format!("{}-{i}", args.sim_node_prefix), &endpoint)?;
                    c.pod_range =
                        std::net::Ipv4Addr::new(127, (64 + i / 256) as u8, (i % 256) as u8, 0);
                    Ok(c)
                })
                .collect::<anyhow::Result<_>>()?
        }
        (None, Some(name)) => {
            let mut c = opts.node_config(name, &endpoint)?;
            if let Some(cidr) = &args.pod_cidr {
                let ip: std::net::Ipv4Addr = cidr
                    .trim_end_matches("/24")
                    .parse()
                    .with_context(|| format!("--pod-cidr {cidr:?}"))?;
                if ip.octets()[0] != 127 {
                    bail!("--pod-cidr must be inside 127.0.0.0/8");
                }
                c.pod_range = ip;
            }
            vec![c]
        }
        (None, None) => bail!("--node-name or --sim-nodes is required"),
    };
    let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
    let serving = crate::security_agent::prepare(&args.serving, &args.server, addr, &names).await?;
    let root = std::path::absolute(args.root_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "coxswain-agent-{}",
            args.node_name.clone().unwrap_or_else(|| "sim".into())
        ))
    }))?;
    let registry = Registry::default();
    coxswain_telemetry::register(std::sync::Arc::new(registry.clone()));
    let client = Client::lazy(&args.server)?;
    let nodes = configs.len();
    start_hosts(client, &opts, configs, &root, &registry, &root).await?;
    println!(
        "coxswain agent ready nodes={nodes} grpc={addr}{}",
        crate::telemetry::ready_suffix()
    );
    let reflection = crate::reflection::v1()?;
    let reflection_v1alpha = crate::reflection::v1alpha()?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(s) = &serving {
        builder = builder.tls_config(s.tls.clone()).context("TLS")?;
    }
    builder
        .layer(serving.map_or_else(
            coxswain_store::kubelet_auth::KubeletAuthLayer::disabled,
            |s| s.layer,
        ))
        .layer(coxswain_telemetry::grpc::RequestMetricsLayer)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(registry.into_server())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            crate::shutdown_signal(),
        )
        .await
        .context("serving the agent's gRPC")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_claim_distinct_pod_networks() {
        let a = claim_pod_network(150);
        let b = claim_pod_network(150);
        assert!(a >= 150 && b > a, "{a} {b}");
        assert!((10..200).contains(&b));
    }

    #[test]
    fn parses_labels_and_taints() {
        let l = parse_labels("disktype=ssd, zone=a").unwrap();
        assert_eq!(l["disktype"], "ssd");
        let t = parse_taints("dedicated=gpu:NoSchedule,x:NoExecute").unwrap();
        assert_eq!(t[0].key, "dedicated");
        assert_eq!(t[0].value, "gpu");
        assert_eq!(t[1].effect, "NoExecute");
        assert!(parse_taints("k=v:Bad").is_err());
        assert!(parse_labels("novalue").is_err());
    }
}
