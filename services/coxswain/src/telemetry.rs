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
    /// Serve /metrics over HTTPS: with `--metrics-tls-cert-file`/`--metrics-tls-key-file`, else
    /// with a self-signed certificate for localhost made at start (as upstream components do
    /// without `--tls-cert-file`; scrape with `insecure_skip_verify` or the given certificate).
    #[arg(long)]
    pub metrics_tls: bool,
    /// PEM serving certificate (chain) for `--metrics-tls`.
    #[arg(long, requires = "metrics_tls_key_file")]
    pub metrics_tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key for `--metrics-tls-cert-file`.
    #[arg(long, requires = "metrics_tls_cert_file")]
    pub metrics_tls_key_file: Option<std::path::PathBuf>,
}

/// The serving certificate and key (PEM) of `--metrics-tls`.
fn metrics_identity<T: Args>(m: &WithMetrics<T>) -> anyhow::Result<(String, String)> {
    use anyhow::Context;
    if let (Some(c), Some(k)) = (&m.metrics_tls_cert_file, &m.metrics_tls_key_file) {
        let cert =
            std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?;
        let key = std::fs::read_to_string(k).with_context(|| format!("reading {}", k.display()))?;
        return Ok((cert, key));
    }
    let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(names)?.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl<T: Args> WithMetrics<T> {
    /// Start this process's metrics endpoint; returns the subcommand's own flags.
    pub async fn start(self, component: &'static str) -> anyhow::Result<T> {
        let addr = match self.metrics_tls {
            false => coxswain_telemetry::start(component, self.metrics_listen)
                .await
                .map_err(|e| anyhow::anyhow!("--metrics-listen: {e}"))?,
            true => {
                let (cert, key) = metrics_identity(&self)?;
                let tls = coxswain_telemetry::tls_config(&cert, &key)
                    .map_err(|e| anyhow::anyhow!("--metrics-tls: {e}"))?;
                let telemetry = coxswain_telemetry::install(component)
                    .map_err(|e| anyhow::anyhow!("--metrics-listen: {e}"))?;
                let listener = tokio::net::TcpListener::bind(self.metrics_listen)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("--metrics-listen {}: {e}", self.metrics_listen)
                    })?;
                let addr = listener.local_addr()?;
                tokio::spawn(coxswain_telemetry::serve_tls(
                    listener,
                    telemetry,
                    Some(tls),
                ));
                addr
            }
        };
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
