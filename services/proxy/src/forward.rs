//! The data path: a listener per Service address, TCP connections spliced both ways (nodelay on
//! both sides; the client's bytes pass an HTTP/1 request counter on the way, see
//! [`crate::http`]), UDP carried over per-client sessions that end after an idle timeout.
//! Routing per connection is one balancer lookup.
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::routing::{node_of, scope, Balancer, Entry, NodeInfo};
use crate::table::PortKey;

/// Data-path settings.
#[derive(Clone, Debug)]
pub struct ForwardConfig {
    /// How long a connect to one endpoint may take before the next is tried.
    pub connect_timeout: Duration,
    /// A UDP session with no datagram either way for this long ends.
    pub udp_idle_timeout: Duration,
    /// UDP sessions per listener at most; datagrams from further clients are dropped.
    pub udp_max_sessions: usize,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            connect_timeout: Duration::from_secs(1),
            udp_idle_timeout: Duration::from_secs(10),
            udp_max_sessions: 1024,
        }
    }
}

/// Endpoints tried for one connection at most (the first choice and its fallbacks).
const MAX_DIALS: usize = 8;

/// Prometheus counters of one Service port.
pub struct PortMetrics {
    connections: Counter,
    /// HTTP/1 requests (TCP) and client datagrams (UDP).
    requests: Counter,
    rejected: Counter,
    dial_errors: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    datagrams: Counter,
    active: Gauge,
}

impl PortMetrics {
    fn new(key: &PortKey) -> PortMetrics {
        let labels = [
            ("namespace", key.namespace.clone()),
            ("service", key.service.clone()),
            ("port", key.port.clone()),
            ("protocol", key.protocol.as_str().to_string()),
        ];
        PortMetrics {
            connections: metrics::counter!("coxswain_proxy_connections_total", &labels),
            requests: metrics::counter!("coxswain_proxy_requests_total", &labels),
            rejected: metrics::counter!("coxswain_proxy_rejected_total", &labels),
            dial_errors: metrics::counter!("coxswain_proxy_endpoint_dial_errors_total", &labels),
            bytes_in: metrics::counter!(
                "coxswain_proxy_bytes_total",
                &[&labels[..], &[("direction", "in".to_string())]].concat()
            ),
            bytes_out: metrics::counter!(
                "coxswain_proxy_bytes_total",
                &[&labels[..], &[("direction", "out".to_string())]].concat()
            ),
            datagrams: metrics::counter!("coxswain_proxy_udp_datagrams_total", &labels),
            active: metrics::gauge!("coxswain_proxy_active_connections", &labels),
        }
    }
}

/// One Service port: its balancer and counters, shared by all of its listeners.
pub struct Port {
    pub key: PortKey,
    pub balancer: Mutex<Balancer>,
    metrics: PortMetrics,
}

impl Port {
    pub fn new(key: PortKey) -> Port {
        Port {
            metrics: PortMetrics::new(&key),
            key,
            balancer: Mutex::new(Balancer::new()),
        }
    }

    fn pick(&self, client: IpAddr, entry: &Entry, nodes: &[NodeInfo]) -> Vec<SocketAddr> {
        let s = scope(entry, node_of(nodes, client));
        match self.balancer.lock() {
            Ok(mut b) => b.pick(client, s, Instant::now()),
            Err(_) => vec![],
        }
    }
}

/// Where a listener's traffic goes; swapped in place when the Service changes.
pub struct Route {
    pub port: Arc<Port>,
    pub entry: Entry,
}

/// State every listener reads: the nodes (to place clients) and the settings.
pub struct Shared {
    nodes: RwLock<Arc<Vec<NodeInfo>>>,
    pub config: ForwardConfig,
}

impl Shared {
    pub fn new(config: ForwardConfig) -> Shared {
        Shared {
            nodes: RwLock::new(Arc::new(vec![])),
            config,
        }
    }

    pub fn set_nodes(&self, nodes: Vec<NodeInfo>) {
        if let Ok(mut n) = self.nodes.write() {
            if **n != nodes {
                *n = Arc::new(nodes);
            }
        }
    }

    fn nodes(&self) -> Arc<Vec<NodeInfo>> {
        self.nodes.read().map(|n| n.clone()).unwrap_or_default()
    }
}

pub type RouteCell = Arc<RwLock<Arc<Route>>>;

fn current(route: &RouteCell) -> Option<Arc<Route>> {
    route.read().ok().map(|r| r.clone())
}

/// A TCP listener on `addr` (SO_REUSEADDR, so a listener closed a moment ago can come back).
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(1024)
}

pub async fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::bind(addr).await
}

/// Accept connections on `listener` and forward each to an endpoint of the current route.
pub fn spawn_tcp(listener: TcpListener, route: RouteCell, shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (sock, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(r) = current(&route) else { continue };
            let shared = shared.clone();
            tokio::spawn(tcp_connection(sock, peer, r, shared));
        }
    })
}

async fn tcp_connection(
    inbound: TcpStream,
    peer: SocketAddr,
    route: Arc<Route>,
    shared: Arc<Shared>,
) {
    let port = &route.port;
    let candidates = port.pick(peer.ip(), &route.entry, &shared.nodes());
    let mut outbound = None;
    for (i, addr) in candidates.iter().take(MAX_DIALS).enumerate() {
        match tokio::time::timeout(shared.config.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                if i > 0 {
                    if let Ok(mut b) = port.balancer.lock() {
                        b.connected(peer.ip(), *addr, Instant::now());
                    }
                }
                outbound = Some(s);
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!(service = %port.key, endpoint = %addr, error = %e, "endpoint dial failed");
                port.metrics.dial_errors.increment(1);
            }
            Err(_) => {
                tracing::debug!(service = %port.key, endpoint = %addr, "endpoint dial timed out");
                port.metrics.dial_errors.increment(1);
            }
        }
    }
    let Some(outbound) = outbound else {
        // No (reachable) endpoint: reset the connection, as kube-proxy's REJECT does.
        port.metrics.rejected.increment(1);
        let _ = inbound.set_zero_linger();
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    port.metrics.connections.increment(1);
    port.metrics.active.increment(1.0);
    let r = splice(inbound, outbound, &port.metrics.requests).await;
    port.metrics.active.decrement(1.0);
    if let Ok((to_endpoint, to_client)) = r {
        port.metrics.bytes_in.increment(to_endpoint);
        port.metrics.bytes_out.increment(to_client);
    }
}

/// Copy both ways until both sides are done (each EOF is passed on as a write shutdown), or
/// either fails; the client's bytes are counted as HTTP/1 requests on the way.
async fn splice(
    inbound: TcpStream,
    outbound: TcpStream,
    requests: &Counter,
) -> io::Result<(u64, u64)> {
    let (mut from_client, mut to_client) = inbound.into_split();
    let (mut from_endpoint, mut to_endpoint) = outbound.into_split();
    let up = async {
        let mut counter = crate::http::RequestCounter::default();
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0u64;
        loop {
            let n = from_client.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let r = counter.feed(&buf[..n]);
            if r > 0 {
                requests.increment(r);
            }
            to_endpoint.write_all(&buf[..n]).await?;
            total += n as u64;
        }
        to_endpoint.shutdown().await?;
        Ok::<u64, io::Error>(total)
    };
    let down = async {
        let n = tokio::io::copy(&mut from_endpoint, &mut to_client).await?;
        to_client.shutdown().await?;
        Ok::<u64, io::Error>(n)
    };
    tokio::try_join!(up, down)
}

struct Session {
    upstream: UdpSocket,
    /// Milliseconds since `epoch` of the last datagram either way.
    last: AtomicU64,
    epoch: Instant,
}

impl Session {
    fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

/// Carry datagrams on `sock`: each client gets a session (a socket connected to the endpoint
/// chosen for it); replies go back from the Service address.
pub fn spawn_udp(sock: UdpSocket, route: RouteCell, shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let sock = Arc::new(sock);
        let sessions: Sessions = Arc::default();
        let mut buf = vec![0u8; 65536];
        let epoch = Instant::now();
        loop {
            let (n, client) = match sock.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(_) => continue,
            };
            let existing = sessions.lock().ok().and_then(|s| s.get(&client).cloned());
            let session = match existing {
                Some(s) => s,
                None => {
                    let Some(r) = current(&route) else { continue };
                    let full = sessions
                        .lock()
                        .map(|s| s.len() >= shared.config.udp_max_sessions)
                        .unwrap_or(true);
                    let port = &r.port;
                    if full {
                        port.metrics.rejected.increment(1);
                        continue;
                    }
                    let Some(endpoint) = port
                        .pick(client.ip(), &r.entry, &shared.nodes())
                        .first()
                        .copied()
                    else {
                        port.metrics.rejected.increment(1);
                        continue;
                    };
                    let Ok(upstream) = open_upstream(endpoint).await else {
                        port.metrics.dial_errors.increment(1);
                        continue;
                    };
                    let s = Arc::new(Session {
                        upstream,
                        last: AtomicU64::new(0),
                        epoch,
                    });
                    if let Ok(mut m) = sessions.lock() {
                        m.insert(client, s.clone());
                    }
                    port.metrics.connections.increment(1);
                    tokio::spawn(udp_replies(
                        sock.clone(),
                        client,
                        s.clone(),
                        sessions.clone(),
                        r.clone(),
                        shared.config.udp_idle_timeout,
                    ));
                    s
                }
            };
            session.touch();
            if session.upstream.send(&buf[..n]).await.is_ok() {
                if let Some(r) = current(&route) {
                    r.port.metrics.datagrams.increment(1);
                    r.port.metrics.requests.increment(1);
                    r.port.metrics.bytes_in.increment(n as u64);
                }
            }
        }
    })
}

async fn open_upstream(endpoint: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match endpoint {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(local).await?;
    s.connect(endpoint).await?;
    Ok(s)
}

async fn udp_replies(
    sock: Arc<UdpSocket>,
    client: SocketAddr,
    session: Arc<Session>,
    sessions: Sessions,
    route: Arc<Route>,
    idle: Duration,
) {
    let mut buf = vec![0u8; 65536];
    route.port.metrics.active.increment(1.0);
    loop {
        match tokio::time::timeout(idle, session.upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                session.touch();
                let _ = sock.send_to(&buf[..n], client).await;
                route.port.metrics.bytes_out.increment(n as u64);
            }
            // The endpoint is gone (ICMP port unreachable): the next datagram starts over.
            Ok(Err(_)) => break,
            Err(_) => {
                if session.idle() >= idle {
                    break;
                }
            }
        }
    }
    route.port.metrics.active.decrement(1.0);
    if let Ok(mut m) = sessions.lock() {
        if m.get(&client).is_some_and(|s| Arc::ptr_eq(s, &session)) {
            m.remove(&client);
        }
    }
}
