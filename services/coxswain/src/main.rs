//! `coxswain`: the control-plane daemon.
//!
//! - `coxswain up`: the all-in-one cluster (the store and every service that exists) in one
//!   process, on the embedded store.
//! - `coxswain store`: the object store alone.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use coxswain_store::backend::{Backend, EmbeddedBackend, EmbeddedOptions};
use coxswain_store::server::{ObjectStoreServer, ObjectStoreService};
use coxswain_store::{gc, Store, StoreConfig};
use tokio::net::TcpListener;

mod agent;
mod autoscaler;
mod builtin;
mod controllers;
mod dns;
mod duration;
mod etcd;
mod leader;
mod logging;
mod metrics_server;
mod nodelifecycle;
mod proxy;
mod reflection;
mod replicas;
mod scheduler;
mod security;
mod security_agent;
mod telemetry;
mod wal;

/// mimalloc: per create at 64 clients, glibc's malloc and free (their arena locks and
/// consolidation across the runtime's threads) took ~15 % of the store's CPU (perf, issue 17).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "coxswain",
    version,
    about = "A Kubernetes-style control plane, on one machine in seconds"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (for people) or JSON, one object per line (for machines); RUST_LOG
    /// filters either way.
    #[arg(
        long,
        global = true,
        env = "COXSWAIN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: logging::LogFormat,
    /// The client configuration the components run as their own processes read their
    /// credentials from (default: $COXCONFIG, else ~/.coxswain/config).
    #[arg(long, global = true, env = "COXCONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The context of that configuration (default: its current-context).
    #[arg(long, global = true)]
    context: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the all-in-one cluster: the object store and every control-plane service.
    Up(StoreArgs),
    /// Run the object store alone.
    Store(StoreArgs),
    /// Run the workload controllers against a store (`--server`).
    Controllers(telemetry::WithMetrics<controllers::ControllersArgs>),
    /// Run a scheduler against a store (`--server`, `--config`, `--listen`).
    Scheduler(telemetry::WithMetrics<scheduler::SchedulerArgs>),
    /// Run the node lifecycle controller (heartbeats, node taints, NoExecute eviction) against a
    /// store (`--server`).
    NodeLifecycle(telemetry::WithMetrics<nodelifecycle::NodeLifecycleArgs>),
    /// Run a node agent (the kubelet) against a store (`--server`): one node, or
    /// `--sim-nodes N` simulated ones.
    Agent(telemetry::WithMetrics<agent::AgentArgs>),
    /// Run the metrics pipeline (coxswain.v1.Metrics: resource metrics scraped from the node
    /// agents, pushed custom/external metrics) against a store (`--server`, `--listen`).
    MetricsServer(telemetry::WithMetrics<metrics_server::MetricsServerArgs>),
    /// Run the service proxy (ClusterIP, NodePort and LoadBalancer traffic to ready endpoints)
    /// against a store (`--server`).
    Proxy(proxy::ProxyArgs),
    /// Run the cluster DNS (CoreDNS' kubernetes plugin rules over UDP and TCP) against a store
    /// (`--server`).
    Dns(telemetry::WithMetrics<dns::DnsArgs>),
    /// Generate a cluster PKI (CA, admin and component credentials) into a directory: the files
    /// `up` writes to `<data-dir>/pki` on first start.
    Pki(security::PkiArgs),
    /// Built-in container workloads of the process runtime (internal).
    #[command(hide = true)]
    Builtin(builtin::BuiltinArgs),
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// gRPC listen address (port 0: any free port; the address chosen is printed).
    #[arg(long, env = "COXSWAIN_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Prometheus metrics listen address (served at /metrics).
    #[arg(
        long,
        env = "COXSWAIN_METRICS_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    metrics_listen: SocketAddr,
    /// Record no metrics (no recorder, no /metrics listener; the ready line says
    /// `metrics=off`): the baseline of the instrumentation-cost benchmark.
    #[arg(long, env = "COXSWAIN_NO_METRICS")]
    no_metrics: bool,
    /// Directory of the embedded store's data file.
    #[arg(long, env = "COXSWAIN_DATA_DIR", default_value = "coxswain-data")]
    data_dir: PathBuf,
    #[command(flatten)]
    etcd: etcd::EtcdOpts,
    #[command(flatten)]
    replicas: replicas::ReplicaOpts,
    /// Keep everything in memory: nothing survives a restart.
    #[arg(long, env = "COXSWAIN_IN_MEMORY")]
    in_memory: bool,
    /// An EncryptionConfiguration (kube-apiserver's format: aescbc, aesgcm, identity) whose
    /// providers encrypt the named resources, e.g. Secrets, at rest.
    #[arg(long, env = "COXSWAIN_ENCRYPTION_PROVIDER_CONFIG")]
    encryption_provider_config: Option<PathBuf>,
    /// Page cache of the embedded store, MiB.
    #[arg(long, env = "COXSWAIN_CACHE_MIB", default_value_t = 16)]
    cache_mib: usize,
    #[command(flatten)]
    wal: wal::WalOpts,
    /// Change events kept for watch resumption; a watch from an older resourceVersion gets
    /// OUT_OF_RANGE ("too old") and relists.
    #[arg(long, env = "COXSWAIN_WATCH_HISTORY", default_value_t = 100_000)]
    watch_history: usize,
    /// Interval of BOOKMARK events on watches that allow them (e.g. 10s, 500ms).
    #[arg(long, env = "COXSWAIN_BOOKMARK_INTERVAL", default_value = "10s", value_parser = duration::parse)]
    bookmark_interval: Duration,
    /// How long the namespace deleter waits after it saw a namespace terminating before it
    /// deletes the content (upstream's namespace controller: 5 s), so creates admitted through
    /// any store replica before the mark have landed and are deleted too.
    #[arg(long, env = "COXSWAIN_NAMESPACE_DELETION_GRACE", default_value = "5s", value_parser = duration::parse)]
    namespace_deletion_grace: Duration,
    /// How long a watch or list from a resourceVersion this store has not reached waits for
    /// it before it fails with "Too large resource version" (kube-apiserver: 3 s); also how
    /// long a consistent list or a write waits for this store's cache to reach etcd's current
    /// revision before UNAVAILABLE.
    #[arg(long, env = "COXSWAIN_TOO_LARGE_RESOURCE_VERSION_WAIT", default_value = "3s", value_parser = duration::parse)]
    too_large_resource_version_wait: Duration,
    #[command(flatten)]
    controllers: controllers::ControllerOpts,
    #[command(flatten)]
    scheduler: scheduler::SchedulerOpts,
    #[command(flatten)]
    node_lifecycle: nodelifecycle::NodeLifecycleOpts,
    #[command(flatten)]
    autoscaler: autoscaler::AutoscalerOpts,
    #[command(flatten)]
    agents: agent::UpAgentOpts,
    #[command(flatten)]
    metrics: metrics_server::MetricsOpts,
    #[command(flatten)]
    service_net: proxy::ServiceNetOpts,
    #[command(flatten)]
    dns: dns::DnsOpts,
    #[command(flatten)]
    security: security::SecurityOpts,
    /// tolerationSeconds of the not-ready:NoExecute toleration every pod gets at admission
    /// unless it tolerates that taint already.
    #[arg(
        long,
        env = "COXSWAIN_DEFAULT_NOT_READY_TOLERATION_SECONDS",
        default_value_t = 300
    )]
    default_not_ready_toleration_seconds: i32,
    /// The same for the unreachable:NoExecute taint.
    #[arg(
        long,
        env = "COXSWAIN_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
        default_value_t = 300
    )]
    default_unreachable_toleration_seconds: i32,
    /// Requests one client connection may have in flight at once; more wait (kube-apiserver's
    /// max-requests-inflight, per connection).
    #[arg(long, env = "COXSWAIN_MAX_REQUESTS_INFLIGHT", default_value_t = 400)]
    max_requests_inflight: usize,
    /// HTTP/2 streams (requests and open watches) one connection may hold at once.
    #[arg(
        long,
        env = "COXSWAIN_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 1000
    )]
    max_streams_per_connection: u32,
    /// A unary request that has not answered by then ends with DEADLINE_EXCEEDED (kube-apiserver's
    /// --request-timeout); watches and other streams are not cut by it.
    #[arg(long, env = "COXSWAIN_REQUEST_TIMEOUT", default_value = "60s", value_parser = duration::parse)]
    request_timeout: Duration,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    replicas::exit_with_stdin();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !matches!(
        cli.command,
        Command::Up(_) | Command::Store(_) | Command::Pki(_) | Command::Builtin(_)
    ) {
        security::install_client_credentials(cli.kubeconfig.as_deref(), cli.context.as_deref())?;
    }
    rt.block_on(async move {
        match cli.command {
            Command::Up(args) => serve(args, "up").await,
            Command::Store(args) => serve(args, "store").await,
            Command::Controllers(a) => controllers::run(a.start("controllers").await?).await,
            Command::Scheduler(a) => scheduler::run(a.start("scheduler").await?).await,
            Command::NodeLifecycle(a) => nodelifecycle::run(a.start("node-lifecycle").await?).await,
            Command::Agent(a) => agent::run(a.start("agent").await?).await,
            Command::MetricsServer(a) => {
                metrics_server::run(a.start("metrics-server").await?).await
            }
            Command::Proxy(args) => proxy::run(args).await,
            Command::Dns(a) => dns::run(a.start("dns").await?).await,
            Command::Pki(args) => security::run_pki(&args),
            Command::Builtin(args) => builtin::run(args).await,
        }
    })
}

async fn serve(mut args: StoreArgs, mode: &str) -> anyhow::Result<()> {
    let prometheus = match args.no_metrics {
        true => None,
        false => Some(
            coxswain_telemetry::install(if mode == "up" { "up" } else { "store" })
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
    };

    args.replicas.check(&args.etcd)?;
    if args.replicas.enabled() {
        anyhow::ensure!(mode == "up", "--replicas is a flag of `coxswain up`");
        // Those run as N --leader-elect processes each (replicas.rs), none in this one.
        args.scheduler.no_scheduler = true;
        args.controllers.no_controllers = true;
        args.autoscaler.no_autoscaler = true;
        args.node_lifecycle.no_node_lifecycle = true;
    }
    let mut backend: Arc<dyn Backend> = match etcd::open(&args.etcd).await? {
        Some(b) => b,
        None => Arc::new(
            EmbeddedBackend::open_with(
                EmbeddedOptions {
                    data_dir: (!args.in_memory).then(|| args.data_dir.clone()),
                    cache_bytes: args.cache_mib << 20,
                },
                args.wal.options(),
            )
            .with_context(|| format!("opening the store in {}", args.data_dir.display()))?,
        ),
    };
    if let Some(path) = &args.encryption_provider_config {
        let config = coxswain_store::encryption::EncryptionConfig::load(path)
            .with_context(|| format!("--encryption-provider-config {}", path.display()))?;
        backend = Arc::new(coxswain_store::encryption::EncryptedBackend::new(
            backend, config,
        ));
    }
    security::check_bind(&args.security, args.listen)?;
    // Bound before the store opens: `up` derives its service ranges from the port.
    let grpc = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let service_net = proxy::resolve(
        &args.service_net,
        &mut args.agents,
        grpc.local_addr()?.port(),
        mode,
    )?;
    let config = StoreConfig {
        service_cluster_ip_range: service_net.range,
        watch_history: args.watch_history,
        bookmark_interval: args.bookmark_interval,
        namespace_deletion_grace: args.namespace_deletion_grace,
        too_large_resource_version_wait: args.too_large_resource_version_wait,
        default_not_ready_toleration_seconds: args.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds: args.default_unreachable_toleration_seconds,
        // Only where the controllers publish kube-root-ca.crt and agents can mount the volume.
        mount_service_account_tokens: args.security.auth && mode == "up",
        ..Default::default()
    };
    let store = Store::open(backend, config)
        .await
        .context("opening the store")?;
    tokio::spawn(gc::run(store.clone()));
    if args.security.auth {
        // Upstream's default ClusterRoles and bindings, as kube-apiserver's RBAC post-start hook.
        match coxswain_store::bootstrap::reconcile(&store).await {
            Ok(n) => tracing::info!(written = n, "reconciled the bootstrap RBAC policy"),
            Err(e) => tracing::warn!(error = %e, "reconciling the bootstrap RBAC policy"),
        }
    }
    coxswain_telemetry::register(coxswain_store::state_metrics::StateMetrics::new(
        store.clone(),
    ));

    let grpc_addr = grpc.local_addr()?;
    // Under --auth: the PKI, admin.conf, and the components' credentials; they dial https.
    let secured = match args.security.auth {
        true => Some(security::prepare(
            &args.security,
            &args.data_dir,
            args.listen,
            grpc_addr,
            &[service_net.range.first().into()],
        )?),
        false => None,
    };
    let url = match &secured {
        Some(s) => {
            coxswain_client::config::install(s.components.clone());
            // Each component with its own identity and upstream's roles, not system:masters.
            for (component, creds) in &s.identities {
                coxswain_client::config::install_as(component, creds.clone());
            }
            format!("https://{grpc_addr}")
        }
        None => format!("http://{grpc_addr}"),
    };
    let metrics_addr = match prometheus {
        Some(prometheus) => {
            let metrics = TcpListener::bind(args.metrics_listen)
                .await
                .with_context(|| format!("binding {}", args.metrics_listen))?;
            let addr = metrics.local_addr()?;
            let tls = secured.as_ref().and_then(|s| s.metrics_tls.clone());
            tokio::spawn(coxswain_telemetry::serve_tls(metrics, prometheus, tls));
            addr.to_string()
        }
        None => "off".to_string(),
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ObjectStoreServer<ObjectStoreService>>()
        .await;
    let reflection_v1 = reflection::v1()?;
    let reflection_v1alpha = reflection::v1alpha()?;

    tracing::info!(
        mode,
        grpc = %grpc_addr,
        metrics = %metrics_addr,
        backend = store.backend_name(),
        data_dir = %args.data_dir.display(),
        "coxswain is serving"
    );
    // One informer per kind for the in-process components that share them (client-go's
    // SharedInformerFactory): one pod watch and one decode per pod event for the scheduler, the
    // controllers, the HPA controller, the metrics server and the node lifecycle controller. It
    // lists and watches as the controller-manager (allowed to list and watch every kind), and
    // starts once all registered.
    let informers = coxswain_client::SharedInformers::new(
        coxswain_client::Client::lazy_as(&url, "controller-manager")
            .context("shared informers: client")?,
    );
    let scheduler_service = match mode {
        "up" => scheduler::spawn(&url, &args.scheduler, &informers)?,
        _ => None,
    };
    let agents = coxswain_agent::service::Registry::default();
    coxswain_telemetry::register(Arc::new(agents.clone()));
    let mut autoscaler_service = None;
    let metrics_service = match mode {
        "up" => metrics_server::spawn(
            &url,
            &args.metrics,
            // The in-process proxy's request counters: each Service's requests-per-second.
            (!args.service_net.no_proxy && metrics_addr != "off")
                .then(|| format!("http://{metrics_addr}/metrics")),
            &informers,
        )?,
        _ => None,
    };
    let mut args = args;
    if metrics_service.is_some() {
        // The in-process agents sample at least as often as the pipeline scrapes.
        let r = &mut args.agents.node.metrics_resolution;
        *r = (*r).min(args.metrics.metric_resolution);
    }
    if mode == "up" {
        args.controllers
            .local_path_dir
            .get_or_insert_with(|| args.data_dir.join("local-path"));
        controllers::spawn(&url, &args.controllers, &informers)?;
        autoscaler_service = autoscaler::spawn(&url, &args.autoscaler, &informers)?;
        nodelifecycle::spawn(&url, &args.node_lifecycle, &informers)?;
        informers.start();
        // On SIGINT/SIGTERM end the shared watches: the gRPC server's graceful shutdown waits
        // for open streams.
        let i = informers.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            i.stop();
        });
        proxy::spawn_up(&url, &args.service_net, &service_net)?;
        agent::spawn_up(&url, &args.data_dir, &args.agents, &agents)?;
    }
    proxy::ensure_kubernetes_service(&store, &service_net, grpc_addr).await;
    let replicas = match mode == "up" && args.replicas.enabled() {
        true => Some(
            replicas::Replicas::start(
                &args.replicas,
                &url,
                replicas::StoreLike {
                    etcd: &args.etcd,
                    data_dir: &args.data_dir,
                    auth: secured.is_some(),
                },
            )
            .await?,
        ),
        false => None,
    };
    let dns_addr = match mode {
        "up" => dns::spawn(&url, &args.dns).await?,
        _ => None,
    };
    // A line for scripts and tests that start coxswain on port 0.
    match dns_addr {
        Some(dns) => println!("coxswain ready grpc={grpc_addr} metrics={metrics_addr} dns={dns}"),
        None => println!("coxswain ready grpc={grpc_addr} metrics={metrics_addr}"),
    }

    // grpc.health.v1 answers SERVING for every service this process serves.
    {
        use coxswain_api::v1::{
            autoscaler_server, metrics_server as metrics_pb, node_agent_server, scheduler_server,
            workloads_server,
        };
        let mut served = vec![
            node_agent_server::SERVICE_NAME,
            workloads_server::SERVICE_NAME,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ];
        for (on, name) in [
            (scheduler_service.is_some(), scheduler_server::SERVICE_NAME),
            (
                autoscaler_service.is_some(),
                autoscaler_server::SERVICE_NAME,
            ),
            (metrics_service.is_some(), metrics_pb::SERVICE_NAME),
        ] {
            if on {
                served.push(name);
            }
        }
        for name in served {
            health
                .set_service_status(name, tonic_health::ServingStatus::Serving)
                .await;
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder();
    if let Some(s) = &secured {
        builder = builder.tls_config(s.tls.clone()).context("TLS")?;
    }
    // One authorizer (Node, RBAC) for the store and every other service on this port.
    let authz = Arc::new(coxswain_store::authz::StoreAuthorizer::new(store.clone()));
    let authn = secured
        .as_ref()
        .map_or_else(coxswain_store::authn::AuthnLayer::disabled, |s| {
            let objects: Arc<dyn coxswain_store::satoken::Objects> = Arc::new(store.clone());
            s.layer
                .clone()
                .with_authorizer(authz.clone())
                .with_service_account_tokens(Arc::new(
                    coxswain_store::satoken::TokenAuthenticator::new(s.sa_signer.clone(), objects),
                ))
        });
    // TokenRequest, with the signing key (served only with authentication on).
    let token_service = secured.as_ref().map(|s| {
        coxswain_store::tokens::TokenService::new(store.clone(), s.sa_signer.clone(), authz.clone())
            .into_server()
    });
    // TokenReview, SubjectAccessReview and the kubelet-serving signer, for separate agents.
    let review_service = secured.as_ref().and_then(|s| {
        let authenticator = authn.authenticator()?;
        let signer: Arc<dyn coxswain_store::reviews::ServingSigner> = s.kubelet_signer.clone();
        Some(
            coxswain_store::reviews::ReviewService::new(authenticator, authz.clone(), Some(signer))
                .into_server(),
        )
    });
    let server = builder
        .layer(authn)
        .layer(coxswain_telemetry::grpc::RequestMetricsLayer)
        .concurrency_limit_per_connection(args.max_requests_inflight.max(1))
        .max_concurrent_streams(Some(args.max_streams_per_connection.max(1)))
        .timeout(args.request_timeout)
        .add_service(agents.into_server())
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            ObjectStoreService::new(store)
                .with_authorizer(authz)
                .into_server(),
        )
        .add_optional_service(scheduler_service)
        .add_optional_service(token_service)
        .add_optional_service(review_service)
        .add_optional_service(autoscaler_service)
        .add_optional_service(metrics_service)
        .add_service(controllers::workloads_service(&url)?)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
            async {
                let _ = stop_rx.await;
            },
        );
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r.context("serving gRPC")?,
        _ = shutdown_signal() => {
            let _ = stop_tx.send(());
            // The server drains its connections; open watches (the in-process components'
            // among them) never end by themselves, so they get a short grace and are then cut.
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(r) => r.context("serving gRPC")?,
                Err(_) => tracing::info!("closing the watches still open"),
            }
        }
    }
    if let Some(r) = replicas {
        r.stop().await;
    }
    tracing::info!("coxswain stopped");
    Ok(())
}

/// How long open streams may take to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
