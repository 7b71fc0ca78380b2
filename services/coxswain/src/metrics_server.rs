//! The metrics pipeline in the daemon: in-process in `coxswain up` (served on the main gRPC
//! port) and `coxswain metrics-server --server URL --listen ADDR` as its own process. Flags
//! are named as metrics-server names them.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coxswain_api::v1::metrics_server::MetricsServer;
use coxswain_metrics::{Config, Service};

use crate::duration;

/// Flags of the metrics pipeline (shared by `coxswain metrics-server` and `up`).
#[derive(Args, Clone, Debug)]
pub struct MetricsOpts {
    /// How often every node agent is scraped; CPU is the rate between the last two scrapes.
    #[arg(long, env = "COXSWAIN_METRIC_RESOLUTION", default_value = "15s", value_parser = duration::parse)]
    pub metric_resolution: Duration,
    /// Timeout of one request to an agent (capped at the resolution).
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub kubelet_request_timeout: Duration,
    /// Agent endpoints scraped at once.
    #[arg(long, default_value_t = 64)]
    pub metric_scrape_concurrency: usize,
    /// At most this many pushed custom/external series are kept.
    #[arg(long, default_value_t = 100_000)]
    pub max_pushed_series: usize,
    /// Prometheus endpoints of service proxies (`http://127.0.0.1:9465/metrics`, repeatable or
    /// comma-separated): their per-Service request counters become each Service's
    /// `requests-per-second` Object metric. In `up` the in-process proxy's is used by default.
    #[arg(long, value_delimiter = ',')]
    pub proxy_metrics_url: Vec<String>,
    /// Do not run the metrics pipeline in `coxswain up` (`coxctl top`: Metrics API not
    /// available).
    #[arg(long)]
    pub no_metrics_server: bool,
}

impl MetricsOpts {
    fn config(&self, server: &str) -> anyhow::Result<Config> {
        if self.metric_resolution < Duration::from_millis(100) {
            anyhow::bail!("--metric-resolution must be at least 100ms");
        }
        for u in &self.proxy_metrics_url {
            coxswain_metrics::requests::check_url(u)
                .map_err(|e| anyhow::anyhow!("--proxy-metrics-url: {e}"))?;
        }
        Ok(Config {
            resolution: self.metric_resolution,
            concurrency: self.metric_scrape_concurrency.max(1),
            request_timeout: self.kubelet_request_timeout,
            fallback_endpoint: server.to_string(),
            max_pushed_series: self.max_pushed_series,
            proxy_metrics: self.proxy_metrics_url.clone(),
        })
    }
}

/// `coxswain metrics-server`.
#[derive(Args, Clone, Debug)]
pub struct MetricsServerArgs {
    /// The object store (a `coxswain up` or `coxswain store`).
    #[arg(
        long,
        env = "COXSWAIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// gRPC listen address of the Metrics service (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:4443")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub opts: MetricsOpts,
}

/// Start the pipeline in this process against `url`; None with --no-metrics-server.
/// `local_proxy`: the in-process proxy's /metrics URL, scraped unless --proxy-metrics-url names
/// others. Its pod informer joins `informers`, which the caller starts.
pub fn spawn(
    url: &str,
    opts: &MetricsOpts,
    local_proxy: Option<String>,
    informers: &coxswain_client::SharedInformers,
) -> anyhow::Result<Option<MetricsServer<Service>>> {
    if opts.no_metrics_server {
        return Ok(None);
    }
    let client =
        coxswain_client::Client::lazy_as(url, "metrics-server").context("metrics: client")?;
    let mut config = opts.config(url)?;
    if config.proxy_metrics.is_empty() {
        config.proxy_metrics.extend(local_proxy);
    }
    let handle = coxswain_metrics::start_shared(client, informers, config);
    Ok(Some(handle.server()))
}

/// `coxswain metrics-server --server URL --listen ADDR`: run until SIGINT/SIGTERM.
pub async fn run(args: MetricsServerArgs) -> anyhow::Result<()> {
    let client = coxswain_client::Client::lazy(&args.server).context("metrics: client")?;
    let handle = coxswain_metrics::start(client, args.opts.config(&args.server)?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<MetricsServer<Service>>().await;
    let reflection = crate::reflection::v1()?;
    let reflection_v1alpha = crate::reflection::v1alpha()?;
    println!(
        "coxswain metrics-server ready grpc={local} server={}{}",
        args.server,
        crate::telemetry::ready_suffix()
    );
    let h = handle.clone();
    tonic::transport::Server::builder()
        .layer(coxswain_telemetry::grpc::RequestMetricsLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(handle.server())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                crate::shutdown_signal().await;
                h.stop();
            },
        )
        .await
        .context("serving gRPC")?;
    tracing::info!("metrics-server stopped");
    Ok(())
}
