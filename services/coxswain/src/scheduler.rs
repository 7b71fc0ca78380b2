//! The scheduler in the daemon: in-process in `coxswain up` (its `coxswain.v1.Scheduler`
//! service on the main gRPC server), or alone as
//! `coxswain scheduler --server URL --config FILE [--listen ADDR]`. Several schedulers with
//! different profile names can run side by side; each touches only pods naming its profiles.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coxswain_api::v1::scheduler_server::SchedulerServer;
use coxswain_scheduler::queue::QueueConfig;
use coxswain_scheduler::runner::{self, Options};
use coxswain_scheduler::service::SchedulerService;
use coxswain_scheduler::SchedulerConfig;

use crate::duration;

/// Queue timings (shared by `coxswain scheduler` and `coxswain up`).
#[derive(Args, Clone, Debug)]
pub struct QueueOpts {
    /// First back-off of a pod that failed to schedule (doubles per attempt).
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    pub pod_initial_backoff: Duration,
    /// Longest back-off.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub pod_max_backoff: Duration,
    /// Unschedulable pods are retried at least this often even without a cluster event
    /// (kube-scheduler's podMaxInUnschedulablePodsDuration).
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    pub pod_max_in_unschedulable: Duration,
    /// Percentage of scheduling cycles whose plugin calls are timed
    /// (scheduler_plugin_execution_duration_seconds; kube-scheduler samples 10).
    #[arg(long, default_value_t = coxswain_scheduler::metrics::DEFAULT_PLUGIN_METRICS_SAMPLE_PERCENT,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub plugin_metrics_sample_percent: u32,
    /// How long binding a pod waits for its PersistentVolumeClaims to be bound
    /// (VolumeBinding's bindTimeoutSeconds).
    #[arg(long, default_value = "10m", value_parser = duration::parse)]
    pub volume_bind_timeout: Duration,
    /// The most pod bindings the scheduler sends to the store in one BindBatch call (1: one
    /// Bind per pod).
    #[arg(long, default_value_t = coxswain_scheduler::binder::DEFAULT_BATCH_SIZE,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=coxswain_store::server::MAX_BINDINGS as u64))]
    pub bind_batch_size: usize,
    /// The longest a binding waits for others to join its batch.
    #[arg(long, default_value = "1ms", value_parser = duration::parse)]
    pub bind_batch_linger: Duration,
}

impl QueueOpts {
    fn options(&self) -> Options {
        Options {
            queue: QueueConfig {
                initial_backoff: self.pod_initial_backoff,
                max_backoff: self.pod_max_backoff,
                unschedulable_timeout: self.pod_max_in_unschedulable,
            },
            plugin_metrics_sample_percent: self.plugin_metrics_sample_percent,
            volume_bind_timeout: self.volume_bind_timeout,
            bind_batch: coxswain_scheduler::binder::BatchOptions {
                size: self.bind_batch_size,
                linger: self.bind_batch_linger,
            },
        }
    }
}

/// Flags of the scheduler in `coxswain up`.
#[derive(Args, Clone, Debug)]
pub struct SchedulerOpts {
    /// A KubeSchedulerConfiguration (YAML) for the in-process scheduler; without it, one
    /// profile `default-scheduler` with the default plugins.
    #[arg(long, env = "COXSWAIN_SCHEDULER_CONFIG")]
    pub scheduler_config: Option<PathBuf>,
    /// Do not run the scheduler in `coxswain up`.
    #[arg(long)]
    pub no_scheduler: bool,
    #[command(flatten)]
    pub queue: QueueOpts,
}

/// `coxswain scheduler`.
#[derive(Args, Clone, Debug)]
pub struct SchedulerArgs {
    /// The object store (a `coxswain up` or `coxswain store`).
    #[arg(
        long,
        env = "COXSWAIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// A KubeSchedulerConfiguration (YAML); without it, one profile `default-scheduler`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Serve this scheduler's `coxswain.v1.Scheduler` service (Explain, ListProfiles) here
    /// (port 0: any free port; printed as `coxswain scheduler ready grpc=ADDR`).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub queue: QueueOpts,
    #[command(flatten)]
    pub leader: crate::leader::LeaderElectOpts,
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<SchedulerConfig> {
    match path {
        None => Ok(SchedulerConfig::default()),
        Some(p) => SchedulerConfig::from_file(p).map_err(|e| anyhow::anyhow!("{e}")),
    }
}

/// Start the scheduler in this process against `url`; returns its service for the main
/// server (None with `--no-scheduler`). Its pod informer joins `informers`, which the caller
/// starts.
pub fn spawn(
    url: &str,
    opts: &SchedulerOpts,
    informers: &coxswain_client::SharedInformers,
) -> anyhow::Result<Option<SchedulerServer<SchedulerService>>> {
    if opts.no_scheduler {
        return Ok(None);
    }
    let config = load(opts.scheduler_config.as_ref()).context("--scheduler-config")?;
    let client = coxswain_client::Client::lazy_as(url, "scheduler").context("scheduler: client")?;
    let handle = runner::start_shared(client, informers, config, opts.queue.options())
        .map_err(|e| anyhow::anyhow!(e))?;
    // On SIGINT/SIGTERM end the scheduler's watches, so the server's graceful shutdown is not
    // held open by them.
    let h = handle.clone();
    tokio::spawn(async move {
        if shutdown_signal().await.is_ok() {
            h.stop();
        }
    });
    Ok(Some(SchedulerService::new(handle).into_server()))
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    Ok(())
}

/// `coxswain scheduler`: run until SIGINT/SIGTERM.
pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let config = load(args.config.as_ref()).context("--config")?;
    let client = coxswain_client::Client::lazy(&args.server).context("scheduler: client")?;
    // With --leader-elect, schedule only once this replica holds the kube-scheduler Lease.
    let leading = args
        .leader
        .lead(client.clone(), "kube-scheduler", "scheduler")
        .await?;
    let handle =
        runner::start(client, config, args.queue.options()).map_err(|e| anyhow::anyhow!(e))?;
    let h = handle.clone();
    let stop = async move {
        let r = shutdown_signal().await;
        h.stop();
        if let Some(l) = leading {
            l.release().await;
        }
        r
    };
    match args.listen {
        None => {
            println!(
                "coxswain scheduler ready{}",
                crate::telemetry::ready_suffix()
            );
            stop.await?;
        }
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let local = listener.local_addr()?;
            let (health, health_service) = tonic_health::server::health_reporter();
            health
                .set_serving::<SchedulerServer<SchedulerService>>()
                .await;
            let reflection = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(coxswain_api::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1()?;
            let reflection_v1alpha = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(coxswain_api::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1alpha()?;
            println!(
                "coxswain scheduler ready grpc={local}{}",
                crate::telemetry::ready_suffix()
            );
            tonic::transport::Server::builder()
                .layer(coxswain_telemetry::grpc::RequestMetricsLayer)
                .add_service(health_service)
                .add_service(reflection)
                .add_service(reflection_v1alpha)
                .add_service(SchedulerService::new(handle).into_server())
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = stop.await;
                    },
                )
                .await
                .context("serving gRPC")?;
        }
    }
    tracing::info!("scheduler stopped");
    Ok(())
}
