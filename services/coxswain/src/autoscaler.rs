//! The HorizontalPodAutoscaler controller in the daemon: in `coxswain controllers --server URL`
//! and in-process in `coxswain up`, where `coxswain.v1.Autoscaler` (Recommend, History) is
//! served on the main gRPC port beside it. Every period and window is a flag, with
//! kube-controller-manager's names and defaults.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coxswain_api::v1::autoscaler_server::AutoscalerServer;
use coxswain_autoscaler::calc::CalcConfig;
use coxswain_autoscaler::decide::DecideConfig;
use coxswain_autoscaler::engine::Config;
use coxswain_autoscaler::metrics::GrpcMetrics;
use coxswain_autoscaler::service::AutoscalerService;

use crate::duration;

/// Flags of the HPA controller (shared by `coxswain controllers` and `coxswain up`).
#[derive(Args, Clone, Debug)]
pub struct AutoscalerOpts {
    /// How often every HPA is evaluated.
    #[arg(long, default_value = "15s", value_parser = duration::parse)]
    pub horizontal_pod_autoscaler_sync_period: Duration,
    /// The relative distance of the usage ratio from 1.0 below which nothing is scaled.
    #[arg(long, default_value_t = 0.1)]
    pub horizontal_pod_autoscaler_tolerance: f64,
    /// After a pod starts, CPU samples are skipped until its readiness settled and one whole
    /// metric window passed since.
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    pub horizontal_pod_autoscaler_cpu_initialization_period: Duration,
    /// After a pod starts, an unready pod counts as never ready within this delay.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub horizontal_pod_autoscaler_initial_readiness_delay: Duration,
    /// The scale-down stabilization window of HPAs without spec.behavior (and the default of
    /// behavior.scaleDown.stabilizationWindowSeconds).
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    pub horizontal_pod_autoscaler_downscale_stabilization: Duration,
    /// HPAs evaluated at once.
    #[arg(long, default_value_t = 5)]
    pub concurrent_horizontal_pod_autoscaler_syncs: usize,
    /// Decisions kept per HPA for `Autoscaler.History`.
    #[arg(long, default_value_t = 100)]
    pub horizontal_pod_autoscaler_history: usize,
    /// The `coxswain.v1.Metrics` service (default: the store's address, where `up` serves it).
    #[arg(long, env = "COXSWAIN_METRICS_API")]
    pub metrics_api: Option<String>,
    /// Do not run the HPA controller.
    #[arg(long)]
    pub no_autoscaler: bool,
}

impl AutoscalerOpts {
    pub fn config(&self) -> Config {
        let ms = |d: Duration| d.as_millis() as i64;
        Config {
            sync_period: self.horizontal_pod_autoscaler_sync_period,
            decide: DecideConfig {
                tolerance: self.horizontal_pod_autoscaler_tolerance,
                calc: CalcConfig {
                    cpu_initialization_period_ms: ms(
                        self.horizontal_pod_autoscaler_cpu_initialization_period
                    ),
                    initial_readiness_delay_ms: ms(
                        self.horizontal_pod_autoscaler_initial_readiness_delay
                    ),
                },
                downscale_stabilization_ms: ms(
                    self.horizontal_pod_autoscaler_downscale_stabilization
                ),
            },
            workers: self.concurrent_horizontal_pod_autoscaler_syncs,
            history: self.horizontal_pod_autoscaler_history,
            component: "horizontal-pod-autoscaler".into(),
        }
    }
}

fn start(
    url: &str,
    opts: &AutoscalerOpts,
    informers: &coxswain_client::SharedInformers,
) -> anyhow::Result<coxswain_autoscaler::controller::Controller> {
    let client = coxswain_client::Client::lazy_as(url, "controller-manager")
        .context("autoscaler: client")?;
    // Default: the first store of a --server list (where `up` serves the Metrics service).
    let first_store = url.split(',').next().unwrap_or(url).trim();
    let metrics = GrpcMetrics::lazy_as(
        opts.metrics_api.as_deref().unwrap_or(first_store),
        "controller-manager",
    )
    .context("autoscaler: metrics client")?;
    Ok(coxswain_autoscaler::controller::start_shared(
        client,
        informers,
        Arc::new(metrics),
        opts.config(),
    ))
}

/// Start the controller in this process against `url` (returns at once) and give the
/// Autoscaler service over its engine, for the main gRPC server. Its pod informer joins
/// `informers` (the process's one pod watch), which the caller starts.
pub fn spawn(
    url: &str,
    opts: &AutoscalerOpts,
    informers: &coxswain_client::SharedInformers,
) -> anyhow::Result<Option<AutoscalerServer<AutoscalerService>>> {
    if opts.no_autoscaler {
        return Ok(None);
    }
    let ctl = start(url, opts, informers)?;
    let server = AutoscalerService::new(ctl.engine.clone()).into_server();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        ctl.stop();
    });
    Ok(Some(server))
}

/// In `coxswain controllers`: start beside the workload controllers, sharing their pod
/// informer; stops on SIGINT/SIGTERM.
pub fn spawn_controller(
    url: &str,
    opts: &AutoscalerOpts,
    informers: &coxswain_client::SharedInformers,
) -> anyhow::Result<()> {
    spawn(url, opts, informers).map(drop)
}
