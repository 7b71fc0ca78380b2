//! One Prometheus setup for every process `coxswain` can start.
//!
//! - [`install`] sets the global `metrics` recorder (histogram buckets, HELP text of every
//!   family in [`FAMILIES`]) once per process.
//! - Families whose values are read at scrape time (process_*, build info, object state from the
//!   store's cache, the agents' resource usage) are [`Collector`]s registered with [`register`].
//! - [`serve`] answers `GET /metrics` with both.
//! - [`grpc::RequestMetricsLayer`] counts and times every gRPC request of a server.
//!
//! It owns no component's metrics: each component records its own, under the names listed here.
use std::sync::{Arc, Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub mod grpc;
mod http_server;
pub mod process;
pub mod text;

pub use http_server::{serve, serve_tls, tls_config};
/// The TLS configuration [`serve_tls`] takes.
pub type TlsConfig = rustls::ServerConfig;
pub use text::Type;

/// A family recorded through the `metrics` macros: its name, type and HELP text.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    pub name: &'static str,
    pub typ: Type,
    pub help: &'static str,
}

const fn f(name: &'static str, typ: Type, help: &'static str) -> Family {
    Family { name, typ, help }
}

use Type::{Counter, Gauge, Histogram};

/// Every family recorded through the `metrics` macros in any coxswain process. A family is
/// rendered only once it has a value, so each endpoint shows the ones its components record.
pub const FAMILIES: &[Family] = &[
    // The store and the other gRPC services (the request-metrics layer).
    f("apiserver_request_total", Counter, "Counter of apiserver requests broken out for each verb, resource and HTTP response code."),
    f("apiserver_request_duration_seconds", Histogram, "Response latency distribution in seconds for each verb and resource (a watch: until its stream starts)."),
    f("apiserver_storage_objects", Gauge, "Number of stored objects at the time of last check split by kind."),
    f("apiserver_registered_watchers", Gauge, "Number of currently registered watchers for a given resource (all: a watch of every kind)."),
    f("apiserver_watch_events_total", Counter, "Number of events sent in watch clients."),
    f("coxswain_store_revision", Gauge, "The store's current revision (the resourceVersion of its latest write)."),
    f("apiserver_watch_cache_consistent_read_total", Counter, "Counter for consistent reads from cache (lists with no resourceVersion on a store sharing etcd); fallback=true: read from etcd, the cache had not caught up."),
    f("coxswain_storage_commit_duration_seconds", Histogram, "Time of one durable group commit of the embedded backend (the write and its fsync)."),
    f("coxswain_storage_commit_batch_size", Histogram, "Transactions written by one durable group commit (one fsync) of the embedded backend."),
    // Scheduler.
    f("scheduler_schedule_attempts_total", Counter, "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem."),
    f("scheduler_pending_pods", Gauge, "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods."),
    f("scheduler_scheduling_attempt_duration_seconds", Histogram, "Scheduling attempt latency in seconds (scheduling algorithm + binding)."),
    f("scheduler_framework_extension_point_duration_seconds", Histogram, "Latency for running all plugins of a specific extension point."),
    f("scheduler_plugin_execution_duration_seconds", Histogram, "Duration for running a plugin at a specific extension point."),
    f("scheduler_preemption_attempts_total", Counter, "Total preemption attempts in the cluster till now"),
    f("coxswain_scheduler_binds_total", Counter, "Binding requests the scheduler made, by result."),
    f("coxswain_scheduler_extender_errors_total", Counter, "Scheduler extender calls that failed, by whether the extender is ignorable."),
    f("coxswain_scheduler_bind_batch_size", Histogram, "Bindings the scheduler sent in one store request (BindBatch; 1 = a plain Bind)."),
    // Controllers.
    f("workqueue_depth", Gauge, "Current depth of workqueue."),
    f("workqueue_adds_total", Counter, "Total number of adds handled by workqueue."),
    f("workqueue_retries_total", Counter, "Total number of retries handled by workqueue."),
    f("workqueue_queue_duration_seconds", Histogram, "How long in seconds an item stays in workqueue before being requested."),
    f("workqueue_work_duration_seconds", Histogram, "How long in seconds processing an item from workqueue takes."),
    f("coxswain_controller_reconcile_seconds", Histogram, "Duration of one reconcile of one object, by controller."),
    f("coxswain_controller_reconcile_errors_total", Counter, "Reconciles that failed and were retried, by controller."),
    f("leader_election_master_status", Gauge, "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name."),
    f("node_collector_evictions_total", Counter, "Number of Node evictions that happened since current instance of NodeController started."),
    // Agents.
    f("kubelet_pod_start_duration_seconds", Histogram, "Duration in seconds from the kubelet seeing a pod for the first time to the pod starting to run."),
    f("prober_probe_total", Counter, "Cumulative number of a liveness, readiness or startup probe for a container by result."),
    // Metrics pipeline.
    f("coxswain_metrics_scrape_duration_seconds", Histogram, "Time of one scrape of every node agent by the metrics pipeline."),
    f("coxswain_metrics_scraped_pods", Gauge, "Pods with usage in the metrics pipeline's last scrape."),
    f("coxswain_metrics_scrape_failures_total", Counter, "Node agents the metrics pipeline failed to scrape."),
    // Service proxy.
    f("coxswain_proxy_connections_total", Counter, "Connections (TCP) or sessions (UDP) the proxy accepted for a Service port."),
    f("coxswain_proxy_rejected_total", Counter, "Connections the proxy refused for a Service port (no ready endpoint, limits)."),
    f("coxswain_proxy_endpoint_dial_errors_total", Counter, "Connects to an endpoint that failed or timed out."),
    f("coxswain_proxy_bytes_total", Counter, "Bytes the proxy carried for a Service port, by direction."),
    f("coxswain_proxy_udp_datagrams_total", Counter, "UDP datagrams the proxy carried for a Service port."),
    f("coxswain_proxy_active_connections", Gauge, "Connections the proxy holds open for a Service port."),
    f("coxswain_proxy_requests_total", Counter, "Requests the proxy carried for a Service port."),
    // Clients and authentication.
    f("coxswain_events_dropped_total", Counter, "Events a component's recorder dropped because its queue was full."),
    f("coxswain_events_filtered_total", Counter, "Events a component's recorder did not write (spam filter or aggregation)."),
    f("coxswain_authentication_failures_total", Counter, "Requests the store refused because their credentials did not authenticate."),
    f("coxswain_node_authorizer_index_misses_total", Counter, "Node authorizer questions answered by scanning the node's pods because its index had not caught up with the store."),
];

/// Buckets of every duration histogram (seconds).
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upstream's `metrics.ExponentialBuckets(start, factor, count)`.
fn exponential(start: f64, factor: f64, count: i32) -> Vec<f64> {
    (0..count).map(|i| start * factor.powi(i)).collect()
}

/// Families whose buckets are kube-scheduler's (metrics.go), not [`DURATION_BUCKETS`].
fn upstream_buckets() -> Vec<(&'static str, Vec<f64>)> {
    vec![
        // Start with 1ms, the last bucket [~16s, Inf).
        (
            "scheduler_scheduling_attempt_duration_seconds",
            exponential(0.001, 2.0, 15),
        ),
        // Start with 0.1ms, the last bucket [~200ms, Inf).
        (
            "scheduler_framework_extension_point_duration_seconds",
            exponential(0.0001, 2.0, 12),
        ),
        // Start with 0.01ms, the last bucket [~22ms, Inf): plugin latency is sensitive.
        (
            "scheduler_plugin_execution_duration_seconds",
            exponential(0.00001, 1.5, 20),
        ),
    ]
}

/// Buckets of the commit batch size.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Something that appends families to a scrape (text format, HELP and TYPE included).
pub trait Collector: Send + Sync {
    fn collect(&self, out: &mut String);
}

impl<F: Fn(&mut String) + Send + Sync> Collector for F {
    fn collect(&self, out: &mut String) {
        self(out)
    }
}

fn collectors() -> &'static Mutex<Vec<Arc<dyn Collector>>> {
    static C: OnceLock<Mutex<Vec<Arc<dyn Collector>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Add a collector to this process's scrapes.
pub fn register(c: Arc<dyn Collector>) {
    collectors()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(c);
}

/// Every registered collector's families plus process_* and the build info.
pub fn collect_all(component: &str, out: &mut String) {
    process::collect(out);
    text::header(
        out,
        "coxswain_build_info",
        Type::Gauge,
        "A metric with a constant '1' value labeled by the version of coxswain and the component the process runs.",
    );
    text::sample(
        out,
        "coxswain_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("component", component),
        ],
        1.0,
    );
    let list: Vec<Arc<dyn Collector>> = collectors()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for c in list {
        c.collect(out);
    }
}

/// This process's metrics: the recorder's handle and the component it names in build info.
#[derive(Clone)]
pub struct Telemetry {
    handle: PrometheusHandle,
    component: &'static str,
}

impl Telemetry {
    /// The whole text of one scrape.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        collect_all(self.component, &mut out);
        out
    }
}

/// How often histogram samples are folded into their buckets between scrapes (the exporter's
/// own default `upkeep_timeout`).
pub const UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample until upkeep folds it into the buckets; a scrape
/// runs upkeep, but a process nobody scrapes would hold every sample it ever recorded. This
/// thread runs it every `period` (`install_recorder`, unlike the exporter's own HTTP listener,
/// spawns none).
fn spawn_upkeep(handle: PrometheusHandle, period: std::time::Duration) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(period);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread: histograms fold only at scrapes");
    }
}

/// Install the global recorder with every family's HELP text (once per process).
pub fn install(component: &'static str) -> Result<Telemetry, String> {
    let mut builder = PrometheusBuilder::new()
        .set_buckets(DURATION_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("coxswain_storage_commit_batch_size".into()),
                BATCH_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("coxswain_scheduler_bind_batch_size".into()),
                BATCH_BUCKETS,
            )
        })
        .map_err(|e| format!("metrics buckets: {e}"))?;
    for (name, buckets) in upstream_buckets() {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.into()), &buckets)
            .map_err(|e| format!("metrics buckets of {name}: {e}"))?;
    }
    let handle = builder
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))?;
    describe();
    spawn_upkeep(handle.clone(), UPKEEP_PERIOD);
    Ok(Telemetry { handle, component })
}

/// Give every family in [`FAMILIES`] its HELP text in the installed recorder.
pub fn describe() {
    for fam in FAMILIES {
        match fam.typ {
            Type::Counter => metrics::describe_counter!(fam.name, fam.help),
            Type::Gauge => metrics::describe_gauge!(fam.name, fam.help),
            Type::Histogram => metrics::describe_histogram!(fam.name, fam.help),
        }
    }
}

/// Install, bind `addr` and serve /metrics; returns the bound address (port 0: any free port).
pub async fn start(
    component: &'static str,
    addr: std::net::SocketAddr,
) -> Result<std::net::SocketAddr, String> {
    let telemetry = install(component)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("binding {addr}: {e}"))?;
    tokio::spawn(serve(listener, telemetry));
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_names_follow_the_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for fam in FAMILIES {
            assert!(seen.insert(fam.name), "{} twice", fam.name);
            assert!(!fam.help.is_empty());
            assert!(
                fam.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                fam.name
            );
            assert_eq!(
                fam.typ == Type::Counter,
                fam.name.ends_with("_total"),
                "{}",
                fam.name
            );
            if fam.typ == Type::Histogram && !fam.name.ends_with("_batch_size") {
                assert!(fam.name.ends_with("_seconds"), "{}", fam.name);
            }
        }
    }
}
