//! `--leader-elect` for the separate processes (scheduler, controllers, node-lifecycle,
//! metrics-server): several replicas run, the one holding the component's Lease acts
//! (coxswain_client::leaderelection, client-go's semantics). Every write of such a process is
//! gated on its lease: refused once the renew deadline of its last successful renewal passed,
//! so a leader frozen past it (SIGSTOP) writes nothing when it resumes. A process that loses
//! its Lease exits, as upstream components do (OnStoppedLeading is fatal), so it cannot act
//! on; a clean shutdown releases the Lease so a standby takes over at its next retry.
use std::time::Duration;

use clap::Args;
use coxswain_client::leaderelection::{default_identity, LeaderElectionConfig, LeaderElector};
use coxswain_client::Client;

use crate::duration;

/// Leader election flags (kube-scheduler's and kube-controller-manager's names and defaults).
#[derive(Args, Clone, Debug)]
pub struct LeaderElectOpts {
    /// Run as one of several replicas: act only while holding the component's Lease in
    /// `--leader-elect-resource-namespace`.
    #[arg(long)]
    pub leader_elect: bool,
    /// How long a standby waits after the last observed renewal before taking the Lease.
    #[arg(long, default_value = "15s", value_parser = duration::parse)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before it stops leading.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub leader_elect_renew_deadline: Duration,
    /// Between attempts to acquire or renew.
    #[arg(long, default_value = "2s", value_parser = duration::parse)]
    pub leader_elect_retry_period: Duration,
    /// The Lease's name (default: the component's: kube-scheduler, kube-controller-manager,
    /// coxswain-node-lifecycle, coxswain-metrics-server).
    #[arg(long)]
    pub leader_elect_resource_name: Option<String>,
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
}

/// The Lease this process holds; release it on a clean shutdown.
pub struct Leading {
    task: tokio::task::JoinHandle<()>,
    client: Client,
    config: LeaderElectionConfig,
}

impl Leading {
    pub async fn release(self) {
        self.task.abort();
        if let Ok(mut e) = LeaderElector::new(self.client, self.config) {
            e.release().await;
        }
    }
}

impl LeaderElectOpts {
    /// With `--leader-elect`: print `coxswain <component> candidate identity=ID`, block until
    /// this process holds the Lease, then renew it in the background and exit the process if
    /// it is lost. Without: None at once.
    pub async fn lead(
        &self,
        client: Client,
        default_name: &str,
        component: &str,
    ) -> anyhow::Result<Option<Leading>> {
        if !self.leader_elect {
            return Ok(None);
        }
        let mut config = LeaderElectionConfig::new(
            self.leader_elect_resource_name
                .clone()
                .unwrap_or_else(|| default_name.to_string()),
            default_identity(),
        );
        config.namespace = self.leader_elect_resource_namespace.clone();
        config.lease_duration = self.leader_elect_lease_duration;
        config.renew_deadline = self.leader_elect_renew_deadline;
        config.retry_period = self.leader_elect_retry_period;
        let mut elector = LeaderElector::new(client.clone(), config.clone())
            .map_err(|e| anyhow::anyhow!("--leader-elect: {e}"))?;
        // Every write of this process is the leader's: each is refused once the renew
        // deadline of the last successful renewal has passed (lease-gated writes).
        elector.fence_process();
        println!(
            "coxswain {component} candidate identity={} lease={}/{}",
            config.identity, config.namespace, config.name
        );
        elector.acquire().await;
        println!("coxswain {component} leading identity={}", config.identity);
        let task = tokio::spawn(async move {
            let lost = elector.hold().await;
            eprintln!("coxswain: leaderelection lost: {lost}");
            std::process::exit(1);
        });
        Ok(Some(Leading {
            task,
            client,
            config,
        }))
    }
}
