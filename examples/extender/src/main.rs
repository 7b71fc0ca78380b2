//! `coxswain-example-extender --listen 127.0.0.1:7070 --require disk=ssd --prefer zone=a`
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use coxswain_example_extender::{label, serve, Policy};

#[derive(Parser)]
#[command(
    name = "coxswain-example-extender",
    about = "An example coxswain.v1.SchedulerExtender: filter and prioritize nodes by label"
)]
struct Args {
    /// Listen address (port 0: any free port; printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Filter: only nodes with this label (key=value) fit.
    #[arg(long, value_parser = label)]
    require: Option<(String, String)>,
    /// Prioritize: nodes with this label (key=value) score 10, others 0.
    #[arg(long, value_parser = label)]
    prefer: Option<(String, String)>,
    /// Answer every call after this many milliseconds (to try `httpTimeout`).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Fail every call (to try `ignorable`).
    #[arg(long)]
    fail: bool,
    /// The store, for Bind (when the profile makes this extender the binder).
    #[arg(long)]
    server: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let store = match &a.server {
        Some(s) => Some(coxswain_client::Client::lazy(s).context("--server")?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    println!(
        "coxswain-example-extender ready grpc={}",
        listener.local_addr()?
    );
    let policy = Policy {
        require: a.require,
        prefer: a.prefer,
        delay: Duration::from_millis(a.delay_ms),
        fail: a.fail,
        store,
    };
    serve(listener, policy, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
