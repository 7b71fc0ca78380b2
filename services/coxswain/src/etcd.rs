//! `--etcd-*` flags of `coxswain store|up`: keep the objects in etcd (kube-apiserver's storage
//! flags) instead of the embedded store.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coxswain_store::backend::{Backend, EtcdBackend, EtcdOptions};

use crate::duration;

#[derive(Args, Clone, Debug)]
pub struct EtcdOpts {
    /// etcd client URLs, comma-separated (http://127.0.0.1:2379,…): the objects live in etcd
    /// instead of the embedded store. Unset: the embedded store in --data-dir.
    #[arg(long, env = "COXSWAIN_ETCD_SERVERS", value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    /// The root of every key in etcd: /registry/pods/<ns>/<name> with the default, as
    /// kube-apiserver.
    #[arg(long, env = "COXSWAIN_ETCD_PREFIX", default_value = "/registry")]
    pub etcd_prefix: String,
    /// How often etcd's history is compacted (to the revision of one interval ago); 0: never.
    #[arg(long, env = "COXSWAIN_ETCD_COMPACTION_INTERVAL", default_value = "5m", value_parser = duration::parse)]
    pub etcd_compaction_interval: Duration,
    /// PEM CA bundle that signed the etcd members' certificates (TLS to etcd).
    #[arg(long, env = "COXSWAIN_ETCD_CAFILE")]
    pub etcd_cafile: Option<PathBuf>,
    /// PEM client certificate for etcd's client-certificate authentication.
    #[arg(long, env = "COXSWAIN_ETCD_CERTFILE")]
    pub etcd_certfile: Option<PathBuf>,
    /// PEM key of --etcd-certfile.
    #[arg(long, env = "COXSWAIN_ETCD_KEYFILE")]
    pub etcd_keyfile: Option<PathBuf>,
    /// HTTP/2 connections to etcd for requests, used in turn (the watch has one more).
    #[arg(long, env = "COXSWAIN_ETCD_CONNECTIONS", default_value_t = 1)]
    pub etcd_connections: usize,
}

/// The etcd backend when --etcd-servers is given.
pub async fn open(opts: &EtcdOpts) -> anyhow::Result<Option<Arc<dyn Backend>>> {
    let servers: Vec<String> = opts
        .etcd_servers
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        return Ok(None);
    }
    let b = EtcdBackend::connect(EtcdOptions {
        servers: servers.clone(),
        prefix: opts.etcd_prefix.clone(),
        compaction_interval: opts.etcd_compaction_interval,
        ca_file: opts.etcd_cafile.clone(),
        cert_file: opts.etcd_certfile.clone(),
        key_file: opts.etcd_keyfile.clone(),
        connections: opts.etcd_connections,
        ..Default::default()
    })
    .await
    .with_context(|| format!("--etcd-servers {}", servers.join(",")))?;
    Ok(Some(Arc::new(b)))
}
