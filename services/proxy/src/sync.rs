//! The control loop, incremental as kube-proxy's change trackers are: informers over Services,
//! EndpointSlices and Nodes record which Services changed (a slice names its Service with the
//! `kubernetes.io/service-name` label); each pass re-plans only those Services, so the cost of
//! an endpoint change does not grow with the number of Services. A Service's balancers get
//! their new endpoints in place (open connections are untouched), its listeners are opened and
//! closed, LoadBalancer Services get their ingress IPs. A node change that moves a node's
//! address or pod range, and a relist, re-plan every Service; the resync period retries failed
//! listens and expires idle affinities.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use coxswain_client::{v1, Cache, Client, Event, Informer};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::forward::{self, ForwardConfig, Port, Route, RouteCell, Shared};
use crate::routing::{Backend, NodeInfo};
use crate::table::{self, FrontendPlan, Pool, PortKey, Protocol};

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The slice cache's index of slices by their Service's `namespace/name`.
const SERVICE_INDEX: &str = "service";

/// Called after a Service port's endpoints changed in its balancer (benchmarks and tests
/// observe the routing with it). Must be cheap: it runs on the sync loop.
#[derive(Clone)]
pub struct Observer(pub Arc<ObserverFn>);

/// What an [`Observer`] calls: the Service port and its endpoints now.
pub type ObserverFn = dyn Fn(&PortKey, &[Backend]) + Send + Sync;

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// The proxy's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Extra addresses NodePorts listen on (besides every node's InternalIP).
    pub node_port_addresses: Vec<IpAddr>,
    /// Where LoadBalancer ingress IPs come from; None: LoadBalancer Services stay pending.
    pub load_balancer_pool: Option<Pool>,
    pub forward: ForwardConfig,
    /// How often failed listens are retried, affinities expired and LoadBalancer ingress
    /// writes retried, without a change.
    pub sync_period: Duration,
    pub observer: Option<Observer>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_port_addresses: vec![],
            load_balancer_pool: None,
            forward: ForwardConfig::default(),
            sync_period: Duration::from_secs(5),
            observer: None,
        }
    }
}

type SvcKey = (String, String);
type Addr = (SocketAddr, Protocol);
type Age = (String, String, String);

/// What changed since the last pass.
#[derive(Debug, Default)]
struct Dirty {
    services: HashSet<SvcKey>,
    /// Every Service (a relist).
    all: bool,
    /// A node's address or pod range.
    nodes: bool,
    /// The LoadBalancer allocation may have to change.
    lb: bool,
}

struct Frontend {
    route: RouteCell,
    key: PortKey,
    owner: SvcKey,
    age: Age,
    task: JoinHandle<()>,
}

/// What one Service holds.
#[derive(Debug, Default)]
struct SvcState {
    ports: Vec<PortKey>,
    /// The addresses it wants (held, failed or held by an older Service).
    wants: Vec<Addr>,
}

/// The proxy's live state.
pub struct Proxy {
    client: Client,
    config: Config,
    shared: Arc<Shared>,
    ports: HashMap<PortKey, Arc<Port>>,
    frontends: HashMap<Addr, Frontend>,
    services: HashMap<SvcKey, SvcState>,
    /// Services that want an address an older Service holds: woken when it is released.
    blocked: HashMap<Addr, BTreeSet<SvcKey>>,
    /// Listeners that could not be opened: the Service and the error last logged.
    failed: HashMap<Addr, (SvcKey, String)>,
    nodes: Vec<NodeInfo>,
    in_flight: Arc<Mutex<BTreeMap<(String, String), Ipv4Addr>>>,
}

fn key_of(m: Option<&v1::ObjectMeta>) -> SvcKey {
    m.map(|m| (m.namespace.clone(), m.name.clone()))
        .unwrap_or_default()
}

fn slice_service(s: &v1::EndpointSlice) -> Option<SvcKey> {
    let m = s.metadata.as_ref()?;
    let name = m.labels.get(SERVICE_NAME_LABEL).filter(|n| !n.is_empty())?;
    Some((m.namespace.clone(), name.clone()))
}

/// A Service whose change may move the LoadBalancer allocation.
fn lb_relevant(s: &v1::Service) -> bool {
    s.spec
        .as_ref()
        .is_some_and(|sp| sp.r#type == "LoadBalancer")
        || !table::ingress_ips(s).is_empty()
}

fn with<T>(d: &Mutex<Dirty>, n: &Notify, f: impl FnOnce(&mut Dirty) -> T) {
    if let Ok(mut d) = d.lock() {
        f(&mut d);
    }
    n.notify_one();
}

/// Run the proxy against the store behind `client` until the task is dropped.
pub async fn run(client: Client, config: Config) {
    let dirty = Arc::new(Mutex::new(Dirty::default()));
    let notify = Arc::new(Notify::new());
    let services = {
        let (d, n) = (dirty.clone(), notify.clone());
        Informer::<v1::Service>::new(client.clone())
            .on_event(move |ev: &Event<v1::Service>| {
                with(&d, &n, |d| match ev {
                    Event::Synced => {
                        d.all = true;
                        d.lb = true;
                    }
                    Event::Modified { old, new } => {
                        d.services.insert(key_of(new.metadata.as_ref()));
                        d.lb |= lb_relevant(old) || lb_relevant(new);
                    }
                    Event::Added(o) | Event::Deleted(o) => {
                        d.services.insert(key_of(o.metadata.as_ref()));
                        d.lb |= lb_relevant(o);
                    }
                })
            })
            .start()
    };
    let slices = {
        let (d, n) = (dirty.clone(), notify.clone());
        Informer::<v1::EndpointSlice>::new(client.clone())
            .index(SERVICE_INDEX, |s: &v1::EndpointSlice| {
                slice_service(s)
                    .map(|(ns, name)| format!("{ns}/{name}"))
                    .into_iter()
                    .collect()
            })
            .on_event(move |ev: &Event<v1::EndpointSlice>| {
                with(&d, &n, |d| match ev {
                    Event::Synced => d.all = true,
                    Event::Modified { old, new } => {
                        d.services.extend(slice_service(old));
                        d.services.extend(slice_service(new));
                    }
                    Event::Added(o) | Event::Deleted(o) => d.services.extend(slice_service(o)),
                })
            })
            .start()
    };
    let nodes = {
        let (d, n) = (dirty.clone(), notify.clone());
        Informer::<v1::Node>::new(client.clone())
            .on_event(move |ev: &Event<v1::Node>| {
                // Heartbeats change nothing the proxy uses: ignored.
                if let Event::Modified { old, new } = ev {
                    if NodeInfo::from_node(old) == NodeInfo::from_node(new) {
                        return;
                    }
                }
                with(&d, &n, |d| d.nodes = true)
            })
            .start()
    };
    services.wait_synced().await;
    slices.wait_synced().await;
    nodes.wait_synced().await;
    let mut proxy = Proxy::new(client, config);
    tracing::info!("service proxy synced");
    with(&dirty, &notify, |d| {
        d.all = true;
        d.lb = true;
    });
    let mut resync_at = Instant::now() + proxy.config.sync_period;
    loop {
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep_until(resync_at) => {}
        }
        let mut batch = dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        if Instant::now() >= resync_at {
            resync_at = Instant::now() + proxy.config.sync_period;
            proxy.expire_affinities();
            batch
                .services
                .extend(proxy.failed.values().map(|(k, _)| k.clone()));
            batch.lb = true;
        }
        proxy.apply(batch, &services, &slices, &nodes).await;
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
            services: HashMap::new(),
            blocked: HashMap::new(),
            failed: HashMap::new(),
            nodes: vec![],
            in_flight: Arc::default(),
        }
    }

    /// Apply one batch of changes.
    async fn apply(
        &mut self,
        batch: Dirty,
        services: &Cache<v1::Service>,
        slices: &Cache<v1::EndpointSlice>,
        nodes: &Cache<v1::Node>,
    ) {
        let mut all = batch.all;
        if batch.nodes || batch.all {
            let infos: Vec<NodeInfo> = nodes
                .list()
                .iter()
                .map(|n| NodeInfo::from_node(n))
                .collect();
            if infos != self.nodes {
                self.nodes = infos.clone();
                self.shared.set_nodes(infos);
                all = true;
            }
        }
        let mut queue: VecDeque<SvcKey> = if all {
            let mut keys: BTreeSet<SvcKey> = self.services.keys().cloned().collect();
            keys.extend(services.list().iter().map(|s| key_of(s.metadata.as_ref())));
            keys.extend(batch.services);
            keys.into_iter().collect()
        } else {
            let mut keys: Vec<SvcKey> = batch.services.into_iter().collect();
            keys.sort();
            keys.into()
        };
        // A Service taking an address over, or releasing one, re-plans the others involved;
        // the older always wins, so this ends; bounded anyway.
        let mut budget = queue.len() * 4 + 16;
        while let Some(k) = queue.pop_front() {
            let svc = services.get(&k.0, &k.1);
            let own = slices.by_index(SERVICE_INDEX, &format!("{}/{}", k.0, k.1));
            let refs: Vec<&v1::EndpointSlice> = own.iter().map(|s| s.as_ref()).collect();
            let wake = self.sync_service(&k, svc.as_deref(), &refs).await;
            for w in wake {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                queue.push_back(w);
            }
        }
        if batch.lb || batch.all {
            if let Some(pool) = self.config.load_balancer_pool {
                self.assign_load_balancers(&services.list(), &pool);
            }
        }
    }

    /// Re-plan one Service (None: it is gone). Returns the Services to re-plan because of it.
    async fn sync_service(
        &mut self,
        k: &SvcKey,
        svc: Option<&v1::Service>,
        slices: &[&v1::EndpointSlice],
    ) -> Vec<SvcKey> {
        let plan = match svc {
            Some(s) => table::plan(s, slices, &self.nodes, &self.config.node_port_addresses),
            None => table::Plan::default(),
        };
        let age = svc.map(table::age).unwrap_or_default();
        let old = self.services.remove(k).unwrap_or_default();
        let now = Instant::now();

        // Balancers: new endpoints in place (open connections are untouched).
        let mut ports = Vec::with_capacity(plan.ports.len());
        for p in plan.ports {
            let port = self
                .ports
                .entry(p.key.clone())
                .or_insert_with(|| Arc::new(Port::new(p.key.clone())))
                .clone();
            if let Ok(mut b) = port.balancer.lock() {
                let changed = b.update(p.backends, p.affinity);
                b.expire(now);
                if changed {
                    if let Some(o) = &self.config.observer {
                        (o.0)(&p.key, b.backends());
                    }
                }
            }
            ports.push(p.key);
        }
        for pk in &old.ports {
            if !ports.contains(pk) {
                self.ports.remove(pk);
            }
        }

        // Listeners.
        let wanted: HashMap<Addr, FrontendPlan> = plan
            .frontends
            .into_iter()
            .map(|f| ((f.listen, f.protocol), f))
            .collect();
        let mut wake = vec![];
        for a in &old.wants {
            if !wanted.contains_key(a) {
                self.release(a, k, &mut wake).await;
            }
        }
        let mut wants: Vec<Addr> = wanted.keys().copied().collect();
        wants.sort();
        for a in &wants {
            let f = &wanted[a];
            let Some(port) = self.ports.get(&f.key).cloned() else {
                continue;
            };
            let route = Arc::new(Route {
                port,
                entry: f.entry.clone(),
            });
            if let Some(existing) = self.frontends.get_mut(a) {
                if existing.owner != *k {
                    if existing.age < age {
                        // An older Service holds it.
                        self.blocked.entry(*a).or_default().insert(k.clone());
                        continue;
                    }
                    tracing::warn!(listen = %a.0, from = %existing.key, to = %f.key, "an older Service takes this address over");
                    wake.push(existing.owner.clone());
                    existing.owner = k.clone();
                    existing.age = age.clone();
                }
                if let Some(b) = self.blocked.get_mut(a) {
                    b.remove(k);
                }
                let same = existing
                    .route
                    .read()
                    .map(|r| Arc::ptr_eq(&r.port, &route.port) && r.entry == route.entry)
                    .unwrap_or(false);
                if !same {
                    if let Ok(mut r) = existing.route.write() {
                        *r = route;
                    }
                    existing.key = f.key.clone();
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
                    if self.failed.remove(a).is_some() {
                        tracing::info!(listen = %f.listen, service = %f.key, "listening now");
                    }
                    self.frontends.insert(
                        *a,
                        Frontend {
                            route: cell,
                            key: f.key.clone(),
                            owner: k.clone(),
                            age: age.clone(),
                            task,
                        },
                    );
                }
                Err(e) => {
                    let msg = e.to_string();
                    if self.failed.get(a).map(|(_, m)| m) != Some(&msg) {
                        tracing::error!(
                            listen = %f.listen,
                            protocol = f.protocol.as_str(),
                            service = %f.key,
                            error = %msg,
                            "cannot listen for this Service address (is another cluster on this machine using the same --service-cluster-ip-range, or another process this port?); retrying every sync period"
                        );
                    }
                    self.failed.insert(*a, (k.clone(), msg));
                }
            }
        }
        if svc.is_some() || !ports.is_empty() || !wants.is_empty() {
            self.services.insert(k.clone(), SvcState { ports, wants });
        }
        wake
    }

    /// `k` no longer wants address `a`: close it if `k` holds it, and wake the Services that
    /// were waiting for it.
    async fn release(&mut self, a: &Addr, k: &SvcKey, wake: &mut Vec<SvcKey>) {
        if let Some(b) = self.blocked.get_mut(a) {
            b.remove(k);
        }
        if self.failed.get(a).is_some_and(|(o, _)| o == k) {
            self.failed.remove(a);
        }
        if self.frontends.get(a).is_some_and(|f| &f.owner == k) {
            if let Some(f) = self.frontends.remove(a) {
                tracing::debug!(listen = %a.0, service = %f.key, "closing");
                f.task.abort();
                // Wait until the socket is closed, so that it can be opened again at once.
                let _ = f.task.await;
            }
            if let Some(waiting) = self.blocked.remove(a) {
                wake.extend(waiting);
            }
        }
    }

    fn expire_affinities(&self) {
        let now = Instant::now();
        for p in self.ports.values() {
            if let Ok(mut b) = p.balancer.lock() {
                b.expire(now);
            }
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
