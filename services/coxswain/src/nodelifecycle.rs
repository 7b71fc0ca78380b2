//! The node lifecycle controller in the daemon: `coxswain node-lifecycle --server URL` (its
//! own process) and in-process in `coxswain up`. Every period and grace is a flag, named as
//! kube-controller-manager names them.
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coxswain_client::RateLimit;
use coxswain_nodelifecycle::disruption::Rates;
use coxswain_nodelifecycle::podgc::GcConfig;
use coxswain_nodelifecycle::Config;

use crate::duration;

/// Flags of the node lifecycle controller (shared by `coxswain node-lifecycle` and `up`).
#[derive(Args, Clone, Debug)]
pub struct NodeLifecycleOpts {
    /// How often every node's heartbeat is checked.
    #[arg(long, env = "COXSWAIN_NODE_MONITOR_PERIOD", default_value = "5s", value_parser = duration::parse)]
    pub node_monitor_period: Duration,
    /// A node with no heartbeat (Lease renewal or status update) for this long becomes
    /// Ready=Unknown and gets the unreachable taints.
    #[arg(long, env = "COXSWAIN_NODE_MONITOR_GRACE_PERIOD", default_value = "40s", value_parser = duration::parse)]
    pub node_monitor_grace_period: Duration,
    /// The same for a node that has never posted a Ready condition.
    #[arg(long, env = "COXSWAIN_NODE_STARTUP_GRACE_PERIOD", default_value = "60s", value_parser = duration::parse)]
    pub node_startup_grace_period: Duration,
    /// Nodes per second that get NoExecute (unreachable/not-ready) taints in a healthy zone.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f64,
    /// The same in a partially disrupted zone larger than --large-cluster-size-threshold.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,
    /// Share of not-Ready nodes (more than 2) at which a zone is partially disrupted.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f64,
    /// Partially disrupted zones up to this many nodes stop evicting altogether.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: usize,
    /// Terminated pods kept before the oldest are garbage collected (0: never).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
    /// How often the pod garbage collector runs.
    #[arg(long, default_value = "20s", value_parser = duration::parse)]
    pub pod_gc_period: Duration,
    /// How long a pod's node must be missing before the pod is garbage collected.
    #[arg(long, default_value = "40s", value_parser = duration::parse)]
    pub pod_gc_quarantine: Duration,
    /// Do not run the node lifecycle controller in `coxswain up`.
    #[arg(long)]
    pub no_node_lifecycle: bool,
}

impl NodeLifecycleOpts {
    pub fn config(&self) -> Config {
        Config {
            monitor_period: self.node_monitor_period,
            monitor_grace: self.node_monitor_grace_period,
            startup_grace: self.node_startup_grace_period,
            retry: RateLimit {
                base: Duration::from_millis(5),
                max: Duration::from_secs(30),
            },
            rates: Rates {
                healthy: self.node_eviction_rate,
                secondary: self.secondary_node_eviction_rate,
                unhealthy_zone_threshold: self.unhealthy_zone_threshold,
                large_cluster_size_threshold: self.large_cluster_size_threshold,
            },
            gc: GcConfig {
                period: self.pod_gc_period,
                quarantine: self.pod_gc_quarantine,
                terminated_threshold: self.terminated_pod_gc_threshold,
            },
        }
    }
}

/// `coxswain node-lifecycle`.
#[derive(Args, Clone, Debug)]
pub struct NodeLifecycleArgs {
    /// The object store (a `coxswain up` or `coxswain store`).
    #[arg(
        long,
        env = "COXSWAIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    #[command(flatten)]
    pub opts: NodeLifecycleOpts,
    #[command(flatten)]
    pub leader: crate::leader::LeaderElectOpts,
}

/// Start the controller in this process against `url` (returns at once); its pod informer
/// joins `informers`, which the caller starts.
pub fn spawn(
    url: &str,
    opts: &NodeLifecycleOpts,
    informers: &coxswain_client::SharedInformers,
) -> anyhow::Result<()> {
    if opts.no_node_lifecycle {
        return Ok(());
    }
    let client = coxswain_client::Client::lazy_as(url, "controller-manager")
        .context("node lifecycle: client")?;
    coxswain_nodelifecycle::start(client, opts.config(), informers);
    Ok(())
}

/// `coxswain node-lifecycle --server URL`: run until SIGINT/SIGTERM.
pub async fn run(args: NodeLifecycleArgs) -> anyhow::Result<()> {
    let client = coxswain_client::Client::connect(&args.server)
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    // With --leader-elect, act only once this replica holds the coxswain-node-lifecycle Lease.
    let leading = args
        .leader
        .lead(client.clone(), "coxswain-node-lifecycle", "node-lifecycle")
        .await?;
    let informers = coxswain_client::SharedInformers::new(client.clone());
    let handle = coxswain_nodelifecycle::start(client, args.opts.config(), &informers);
    informers.start();
    handle.wait_synced().await;
    println!(
        "coxswain node-lifecycle ready server={}{}",
        args.server,
        crate::telemetry::ready_suffix()
    );
    crate::shutdown_signal().await;
    if let Some(l) = leading {
        l.release().await;
    }
    Ok(())
}
