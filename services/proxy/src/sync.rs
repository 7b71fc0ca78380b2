//! The control loop: informers over Services, Endpoints and Nodes; after every change (and every
//! resync period) the plan is recomputed and applied: balancers get their new endpoints in
//! place, listeners are opened and closed, LoadBalancer Services get their ingress IPs.
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use coxswain_client::{v1, Cache, Client, Informer};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::forward::{self, ForwardConfig, Port, Route, RouteCell, Shared};
use crate::routing::NodeInfo;
use crate::table::{self, FrontendPlan, Pool, PortKey, Protocol};

/// The proxy's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Extra addresses NodePorts listen on (besides every node's InternalIP).
    pub node_port_addresses: Vec<IpAddr>,
    /// Where LoadBalancer ingress IPs come from; None: LoadBalancer Services stay pending.
    pub load_balancer_pool: Option<Pool>,
    pub forward: ForwardConfig,
    /// How often the whole state is re-applied even without changes (retries failed binds).
    pub sync_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_port_addresses: vec![],
            load_balancer_pool: None,
            forward: ForwardConfig::default(),
            sync_period: Duration::from_secs(5),
        }
    }
}

struct Frontend {
    route: RouteCell,
    key: PortKey,
    task: JoinHandle<()>,
}

/// The proxy's live state.
pub struct Proxy {
    client: Client,
    config: Config,
    shared: Arc<Shared>,
    ports: HashMap<PortKey, Arc<Port>>,
    frontends: HashMap<(SocketAddr, Protocol), Frontend>,
    /// Listeners that could not be opened, with the error last logged.
    failed: HashMap<(SocketAddr, Protocol), String>,
    in_flight: Arc<Mutex<BTreeMap<(String, String), Ipv4Addr>>>,
}

/// Run the proxy against the store behind `client` until the task is dropped.
pub async fn run(client: Client, config: Config) {
    let notify = Arc::new(Notify::new());
    let (n1, n2, n3) = (notify.clone(), notify.clone(), notify.clone());
    let services = Informer::<v1::Service>::new(client.clone())
        .on_event(move |_| n1.notify_one())
        .start();
    let endpoints = Informer::<v1::Endpoints>::new(client.clone())
        .on_event(move |_| n2.notify_one())
        .start();
    let nodes = Informer::<v1::Node>::new(client.clone())
        .on_event(move |_| n3.notify_one())
        .start();
    services.wait_synced().await;
    endpoints.wait_synced().await;
    nodes.wait_synced().await;
    let mut proxy = Proxy::new(client, config);
    tracing::info!("service proxy synced");
    loop {
        proxy.sync(&services, &endpoints, &nodes).await;
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(proxy.config.sync_period) => {}
        }
    }
}

impl Proxy {
    pub fn new(client: Client, config: Config) -> Proxy {
        Proxy {
            client,
            shared: Arc::new(Shared::new(config.forward.clone())),
            config,
            ports: HashMap::new(),
            frontends: HashMap::new(),
            failed: HashMap::new(),
            in_flight: Arc::default(),
        }
    }

    /// Apply the current objects.
    pub async fn sync(
        &mut self,
        services: &Cache<v1::Service>,
        endpoints: &Cache<v1::Endpoints>,
        nodes: &Cache<v1::Node>,
    ) {
        let node_infos: Vec<NodeInfo> = nodes
            .list()
            .iter()
            .map(|n| NodeInfo::from_node(n))
            .collect();
        let all = services.list();
        let plan = table::plan(
            &all,
            |ns, name| endpoints.get(ns, name),
            &node_infos,
            &self.config.node_port_addresses,
        );
        self.shared.set_nodes(node_infos);

        // Balancers: new endpoints in place (open connections are untouched).
        let now = Instant::now();
        let mut live = HashMap::with_capacity(plan.ports.len());
        for p in plan.ports {
            let port = self
                .ports
                .remove(&p.key)
                .unwrap_or_else(|| Arc::new(Port::new(p.key.clone())));
            if let Ok(mut b) = port.balancer.lock() {
                b.update(p.backends, p.affinity);
                b.expire(now);
            }
            live.insert(p.key, port);
        }
        self.ports = live;

        // Listeners.
        let mut wanted: HashMap<(SocketAddr, Protocol), FrontendPlan> = plan
            .frontends
            .into_iter()
            .map(|f| ((f.listen, f.protocol), f))
            .collect();
        let gone: Vec<_> = self
            .frontends
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(f) = self.frontends.remove(&k) {
                tracing::debug!(listen = %k.0, service = %f.key, "closing");
                f.task.abort();
                // Wait until the socket is closed, so that it can be opened again at once.
                let _ = f.task.await;
            }
        }
        self.failed.retain(|k, _| wanted.contains_key(k));
        for (k, f) in wanted.drain() {
            let Some(port) = self.ports.get(&f.key).cloned() else {
                continue;
            };
            let route = Arc::new(Route {
                port,
                entry: f.entry.clone(),
            });
            if let Some(existing) = self.frontends.get_mut(&k) {
                let same = existing
                    .route
                    .read()
                    .map(|r| Arc::ptr_eq(&r.port, &route.port) && r.entry == route.entry)
                    .unwrap_or(false);
                if !same {
                    if let Ok(mut r) = existing.route.write() {
                        *r = route;
                    }
                    existing.key = f.key;
                }
                continue;
            }
            let cell: RouteCell = Arc::new(RwLock::new(route));
            let task = match f.protocol {
                Protocol::Tcp => forward::bind_tcp(f.listen)
                    .map(|l| forward::spawn_tcp(l, cell.clone(), self.shared.clone())),
                Protocol::Udp => match forward::bind_udp(f.listen).await {
                    Ok(s) => Ok(forward::spawn_udp(s, cell.clone(), self.shared.clone())),
                    Err(e) => Err(e),
                },
            };
            match task {
                Ok(task) => {
                    tracing::debug!(listen = %f.listen, service = %f.key, "listening");
                    if self.failed.remove(&k).is_some() {
                        tracing::info!(listen = %f.listen, service = %f.key, "listening now");
                    }
                    self.frontends.insert(
                        k,
                        Frontend {
                            route: cell,
                            key: f.key,
                            task,
                        },
                    );
                }
                Err(e) => {
                    let msg = e.to_string();
                    if self.failed.get(&k) != Some(&msg) {
                        tracing::error!(
                            listen = %f.listen,
                            protocol = f.protocol.as_str(),
                            service = %f.key,
                            error = %msg,
                            "cannot listen for this Service address (is another cluster on this machine using the same --service-cluster-ip-range, or another process this port?); retrying every sync period"
                        );
                    }
                    self.failed.insert(k, msg);
                }
            }
        }

        if let Some(pool) = self.config.load_balancer_pool {
            self.assign_load_balancers(&all, &pool);
        }
    }

    fn assign_load_balancers(&self, all: &[Arc<v1::Service>], pool: &Pool) {
        // A write in flight is done once the Service shows an ingress (or is gone).
        let flying = match self.in_flight.lock() {
            Ok(mut m) => {
                m.retain(|(ns, name), _| {
                    all.iter().any(|s| {
                        s.metadata
                            .as_ref()
                            .is_some_and(|m| &m.namespace == ns && &m.name == name)
                            && s.spec
                                .as_ref()
                                .is_some_and(|sp| sp.r#type == "LoadBalancer")
                            && table::ingress_ips(s).is_empty()
                    })
                });
                m.clone()
            }
            Err(_) => return,
        };
        for a in table::lb_assignments(all, pool, &flying) {
            let key = (a.namespace.clone(), a.name.clone());
            let patch = match a.ip {
                Some(ip) => {
                    if let Ok(mut m) = self.in_flight.lock() {
                        m.insert(key.clone(), ip);
                    }
                    serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": ip.to_string(), "ipMode": "VIP"}]}}})
                }
                None => serde_json::json!({"status": {"loadBalancer": {"ingress": []}}}),
            };
            let client = self.client.clone();
            let in_flight = self.in_flight.clone();
            tokio::spawn(async move {
                match client
                    .patch_status::<v1::Service>(&key.0, &key.1, &patch)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(service = %format!("{}/{}", key.0, key.1), ip = ?a.ip, "load balancer ingress")
                    }
                    Err(e) => {
                        tracing::warn!(service = %format!("{}/{}", key.0, key.1), error = %e, "writing the load balancer ingress failed");
                        if let Ok(mut m) = in_flight.lock() {
                            m.remove(&key);
                        }
                    }
                }
            });
        }
    }

    /// Addresses listened on, for tests and logs.
    pub fn listening(&self) -> Vec<(SocketAddr, Protocol)> {
        self.frontends.keys().copied().collect()
    }
}
