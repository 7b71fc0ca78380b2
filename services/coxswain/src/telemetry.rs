//! The metrics listener every `coxswain` subcommand has: `--metrics-listen ADDR` (port 0 by
//! default: a free port), served from `coxswain-telemetry`, its address printed as
//! ` metrics=ADDR` in the subcommand's ready line.
use std::net::SocketAddr;
use std::sync::OnceLock;

use clap::Args;

/// A subcommand's own flags plus `--metrics-listen`.
#[derive(Args, Clone, Debug)]
pub struct WithMetrics<T: Args> {
    #[command(flatten)]
    pub args: T,
    /// Prometheus metrics listen address, served at /metrics (port 0: any free port; printed as
    /// `metrics=ADDR` in the ready line).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_listen: SocketAddr,
}

impl<T: Args> WithMetrics<T> {
    /// Start this process's metrics endpoint; returns the subcommand's own flags.
    pub async fn start(self, component: &'static str) -> anyhow::Result<T> {
        let addr = coxswain_telemetry::start(component, self.metrics_listen)
            .await
            .map_err(|e| anyhow::anyhow!("--metrics-listen: {e}"))?;
        let _ = METRICS_ADDR.set(addr);
        Ok(self.args)
    }
}

static METRICS_ADDR: OnceLock<SocketAddr> = OnceLock::new();

/// ` metrics=ADDR` for a ready line (empty when this process serves no metrics).
pub fn ready_suffix() -> String {
    METRICS_ADDR
        .get()
        .map(|a| format!(" metrics={a}"))
        .unwrap_or_default()
}
