//! The workload controllers in the daemon: `coxswain controllers --server URL` (their own
//! process) and in-process in `coxswain up`. Every period and back-off is a flag.
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coxswain_controllers::manager::{self, Config};

use crate::duration;

/// Flags of the controllers (shared by `coxswain controllers` and `coxswain up`).
#[derive(Args, Clone, Debug)]
pub struct ControllerOpts {
    /// Reconcile workers per controller.
    #[arg(long, env = "COXSWAIN_CONTROLLER_WORKERS", default_value_t = 4)]
    pub controller_workers: usize,
    /// How long a controller waits for its own pod creations/deletions to appear in its cache.
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    pub expectations_ttl: Duration,
    /// First retry delay after a failed reconcile (doubling per failure).
    #[arg(long, default_value = "5ms", value_parser = duration::parse)]
    pub controller_retry_base: Duration,
    /// Longest retry delay after failed reconciles.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub controller_retry_max: Duration,
    /// Job: delay before re-creating a pod after the first failure (doubles per failure).
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub job_backoff_base: Duration,
    /// Job: longest re-creation delay.
    #[arg(long, default_value = "6m", value_parser = duration::parse)]
    pub job_backoff_max: Duration,
    /// CronJob: added to the wall clock (tests only: start the clock just before a minute
    /// boundary so a `* * * * *` schedule fires within seconds).
    #[arg(long, default_value = "0s", value_parser = duration::parse)]
    pub cron_clock_offset: Duration,
    /// CronJob: how fast the controller's clock runs (tests only: 30 makes a minute pass in 2 s).
    #[arg(long, default_value_t = 1.0)]
    pub cron_clock_rate: f64,
    /// CronJob: how often every CronJob is looked at (it also wakes at its next start time).
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub cron_resync: Duration,
    /// EndpointSlice: most endpoints in one slice (kube-controller-manager's flag).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_endpoints_per_slice: u64,
    /// Where the default StorageClass's local-path provisioner makes one directory per volume
    /// (in `coxswain up`: DATA_DIR/local-path).
    #[arg(long)]
    pub local_path_dir: Option<std::path::PathBuf>,
    /// Do not run the workload controllers (in `coxswain up`, or in `coxswain controllers`,
    /// which then runs the HPA controller alone).
    #[arg(long)]
    pub no_controllers: bool,
}

impl ControllerOpts {
    pub fn config(&self) -> Config {
        Config {
            workers: self.controller_workers,
            expectations_ttl: self.expectations_ttl,
            retry_base: self.controller_retry_base,
            retry_max: self.controller_retry_max,
            job_backoff_base: self.job_backoff_base,
            job_backoff_max: self.job_backoff_max,
            cron_clock_offset: self.cron_clock_offset,
            cron_clock_rate: self.cron_clock_rate,
            cron_resync: self.cron_resync,
            component: "controller-manager".into(),
            max_endpoints_per_slice: self.max_endpoints_per_slice as usize,
            local_path_dir: self
                .local_path_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("coxswain-local-path")),
        }
    }
}

/// `coxswain controllers`.
#[derive(Args, Clone, Debug)]
pub struct ControllersArgs {
    /// The object store (a `coxswain up` or `coxswain store`).
    #[arg(
        long,
        env = "COXSWAIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    #[command(flatten)]
    pub opts: ControllerOpts,
    #[command(flatten)]
    pub autoscaler: crate::autoscaler::AutoscalerOpts,
    #[command(flatten)]
    pub leader: crate::leader::LeaderElectOpts,
}

/// Start the controllers in this process against `url` (returns at once); their pod informer
/// joins `informers`, which the caller starts.
pub fn spawn(
    url: &str,
    opts: &ControllerOpts,
    informers: &coxswain_client::SharedInformers,
) -> anyhow::Result<()> {
    if opts.no_controllers {
        return Ok(());
    }
    let client = coxswain_client::Client::lazy_as(url, "controller-manager")
        .context("controllers: client")?;
    let ctx = manager::start(client, opts.config(), informers);
    // On SIGINT/SIGTERM end the informers' watches: the gRPC server's graceful shutdown waits
    // for open streams, and these would never end on their own.
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        ctx.stop();
    });
    Ok(())
}

/// `coxswain controllers --server URL`: run until SIGINT/SIGTERM.
pub async fn run(args: ControllersArgs) -> anyhow::Result<()> {
    let client = coxswain_client::Client::connect(&args.server)
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    // With --leader-elect, act only once this replica holds the kube-controller-manager Lease
    // (the HPA controller with them, as in kube-controller-manager).
    let leading = args
        .leader
        .lead(client.clone(), "kube-controller-manager", "controllers")
        .await?;
    // --no-controllers here leaves the HPA controller alone in the process.
    let informers = coxswain_client::SharedInformers::new(client.clone());
    let ctx =
        (!args.opts.no_controllers).then(|| manager::start(client, args.opts.config(), &informers));
    crate::autoscaler::spawn_controller(&args.server, &args.autoscaler, &informers)?;
    informers.start();
    if let Some(ctx) = &ctx {
        ctx.wait_synced().await;
    }
    println!(
        "coxswain controllers ready server={}{}",
        args.server,
        crate::telemetry::ready_suffix()
    );
    crate::shutdown_signal().await;
    if let Some(ctx) = &ctx {
        ctx.stop();
    }
    informers.stop();
    if let Some(l) = leading {
        l.release().await;
    }
    Ok(())
}

/// The `coxswain.v1.Workloads` service for the main gRPC server: it talks to the store at `url`.
pub fn workloads_service(
    url: &str,
) -> anyhow::Result<
    coxswain_api::v1::workloads_server::WorkloadsServer<
        coxswain_controllers::workloads::WorkloadsService,
    >,
> {
    let client = coxswain_client::Client::lazy_as(url, "workloads").context("workloads: client")?;
    Ok(coxswain_controllers::workloads::WorkloadsService::new(client).into_server())
}
