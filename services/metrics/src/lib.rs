//! The metrics pipeline (`coxswain.v1.Metrics`), metrics-server's job over gRPC: a scraper that
//! asks every node agent for its Stats every resolution period, a storage of the last two
//! points per container (rates computed at read time), a TTL store of pushed custom and
//! external metrics, and the service that serves both to `coxctl top` and the HPA.
//!
//! - [`storage`], [`pushed`], [`time`]: pure logic, unit-tested.
//! - [`scrape`]: one concurrent, bounded scrape of every agent.
//! - [`requests`]: the service proxies' per-Service request rate as an Object metric.
//! - [`service`]: the gRPC service over the informer caches and the state.
//! - [`start`]: the informers and the scrape loop.
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use coxswain_api::v1::metrics_server::MetricsServer;
use coxswain_api::v1::{Node, Pod};
use coxswain_client::{Cache, Client, Informer, SharedInformers};

pub mod pushed;
pub mod requests;
pub mod scrape;
pub mod select;
pub mod service;
pub mod storage;
pub mod time;

pub use service::Service;

/// The pipeline's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// How often every agent is scraped (metrics-server's --metric-resolution).
    pub resolution: Duration,
    /// Agent endpoints scraped at once.
    pub concurrency: usize,
    /// Timeout of one agent request (and of connecting to it).
    pub request_timeout: Duration,
    /// Where nodes without an agent endpoint are asked (the server hosting in-process agents).
    pub fallback_endpoint: String,
    /// At most this many pushed series are kept.
    pub max_pushed_series: usize,
    /// The service proxies' Prometheus endpoints (`http://host:port/metrics`) whose request
    /// counters become the `requests-per-second` Object metric of each Service; empty: none.
    pub proxy_metrics: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resolution: Duration::from_secs(15),
            concurrency: 64,
            request_timeout: Duration::from_secs(10),
            fallback_endpoint: String::new(),
            max_pushed_series: 100_000,
            proxy_metrics: vec![],
        }
    }
}

/// What the scraper writes and the service reads.
#[derive(Debug)]
pub struct State {
    pub storage: RwLock<storage::Storage>,
    pub pushed: Mutex<pushed::Pushed>,
    /// The last scrape's report.
    pub last_scrape: Mutex<scrape::Report>,
}

/// A running pipeline.
#[derive(Clone)]
pub struct Handle {
    service: Service,
    task: Arc<tokio::task::AbortHandle>,
}

impl Handle {
    /// The gRPC service (add it to a tonic server).
    pub fn server(&self) -> MetricsServer<Service> {
        MetricsServer::new(self.service.clone()).max_decoding_message_size(64 << 20)
    }

    /// Waits until the Node and Pod informers have their first list.
    pub async fn wait_synced(&self) {
        self.service.nodes.wait_synced().await;
        self.service.pods.wait_synced().await;
    }

    /// The shared state (for benchmarks and tests).
    pub fn state(&self) -> Arc<State> {
        self.service.state.clone()
    }

    /// Stop the scrape loop and the informers.
    pub fn stop(&self) {
        self.task.abort();
        self.service.nodes.stop();
        self.service.pods.stop();
    }
}

/// Start the informers and the scrape loop (returns at once).
pub fn start(client: Client, config: Config) -> Handle {
    let nodes = Informer::<Node>::new(client.clone());
    start_with(nodes, Informer::<Pod>::new(client), config)
}

/// [`start`] with the pods read from `informers`' pod informer (in `coxswain up` the process's
/// one pod watch), which the caller starts.
pub fn start_shared(client: Client, informers: &SharedInformers, config: Config) -> Handle {
    start_with(
        Informer::<Node>::new(client),
        informers.informer::<Pod>(),
        config,
    )
}

fn start_with(nodes: Informer<Node>, pods: Informer<Pod>, config: Config) -> Handle {
    let nodes = nodes.start();
    let pods = select::with_label_index(pods).start();
    let state = Arc::new(State {
        storage: RwLock::new(storage::Storage::default()),
        pushed: Mutex::new(pushed::Pushed::new(config.max_pushed_series)),
        last_scrape: Mutex::new(scrape::Report::default()),
    });
    let rates = (!config.proxy_metrics.is_empty()).then(|| {
        requests::run(
            state.clone(),
            config.proxy_metrics.clone(),
            config.resolution,
            config
                .request_timeout
                .min(config.resolution.max(Duration::from_secs(1))),
            // A proxy gone silent ages out after three missed scrapes.
            config.resolution * 3,
        )
    });
    let scrape = run(state.clone(), nodes.clone(), config);
    let task = tokio::spawn(async move {
        match rates {
            Some(rates) => {
                tokio::join!(scrape, rates);
            }
            None => scrape.await,
        }
    });
    Handle {
        service: Service { state, nodes, pods },
        task: Arc::new(task.abort_handle()),
    }
}

async fn run(state: Arc<State>, nodes: Cache<Node>, config: Config) {
    let agents = scrape::Agents::default();
    let mut tick = tokio::time::interval(config.resolution);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    nodes.wait_synced().await;
    loop {
        tick.tick().await;
        let (batch, report) = scrape::scrape(
            &nodes.list(),
            &agents,
            &config.fallback_endpoint,
            config.concurrency,
            config
                .request_timeout
                .min(config.resolution.max(Duration::from_secs(1))),
        )
        .await;
        metrics::histogram!("coxswain_metrics_scrape_duration_seconds")
            .record(report.duration.as_secs_f64());
        metrics::gauge!("coxswain_metrics_scraped_pods").set(report.pods as f64);
        if report.failed > 0 {
            metrics::counter!("coxswain_metrics_scrape_failures_total")
                .increment(report.failed as u64);
        }
        tracing::debug!(
            nodes = report.nodes,
            pods = report.pods,
            failed = report.failed,
            took = ?report.duration,
            "scraped the agents"
        );
        if let Ok(mut s) = state.storage.write() {
            s.store(batch);
        }
        if let Ok(mut p) = state.pushed.lock() {
            p.expire(time::now_nanos());
        }
        if let Ok(mut r) = state.last_scrape.lock() {
            *r = report;
        }
    }
}
