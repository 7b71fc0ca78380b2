//! Which endpoint a new connection goes to: the userspace kube-proxy's round-robin load
//! balancer with ClientIP session affinity, restricted by the traffic policies, over the
//! endpoints of a Service port merged from its EndpointSlices as kube-proxy's
//! EndpointSliceCache merges them. Pure logic over an injectable clock (tokio's `Instant`, so
//! tests run on a paused clock).
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use coxswain_api::v1;
use tokio::time::Instant;

/// A usable endpoint of one Service port: ready, or serving while terminating (the fallback
/// when no ready endpoint is in scope, KEP-1669).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    pub addr: SocketAddr,
    /// The node the endpoint runs on ("" when the slice does not say).
    pub node: String,
    /// Ready (else it is serving and terminating).
    pub ready: bool,
}

/// Which endpoints a connection may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every ready endpoint (traffic policy Cluster).
    All,
    /// Only the endpoints on this node (traffic policy Local).
    Node(&'a str),
}

impl Scope<'_> {
    fn admits(&self, b: &Backend) -> bool {
        match self {
            Scope::All => true,
            Scope::Node(n) => b.node == *n,
        }
    }
}

/// How traffic reached the proxy: it decides the traffic policy that applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The ClusterIP; `internal_local`: internalTrafficPolicy Local.
    ClusterIp { internal_local: bool },
    /// A NodePort on `node`'s InternalIP; `external_local`: externalTrafficPolicy Local.
    NodePort { node: String, external_local: bool },
    /// A NodePort on an extra `--nodeport-addresses` address, or a LoadBalancer ingress IP:
    /// no node receives it, so every ready endpoint serves it.
    External,
}

/// The scope of a connection that came in through `entry` from a client on `client_node` (the
/// node whose pod range or InternalIP holds the client's address, if any).
///
/// internalTrafficPolicy Local keeps in-cluster traffic on the client's node; traffic from the
/// host (no node) is routed as Cluster. externalTrafficPolicy Local only uses the endpoints of
/// the node whose NodePort was hit.
pub fn scope<'a>(entry: &'a Entry, client_node: Option<&'a str>) -> Scope<'a> {
    match entry {
        Entry::ClusterIp {
            internal_local: true,
        } => client_node.map_or(Scope::All, Scope::Node),
        Entry::NodePort {
            node,
            external_local: true,
        } => Scope::Node(node),
        _ => Scope::All,
    }
}

/// Round-robin over one Service port's ready endpoints, with ClientIP affinity.
#[derive(Debug, Default)]
pub struct Balancer {
    backends: Vec<Backend>,
    next: usize,
    affinity: Option<Duration>,
    sticky: HashMap<IpAddr, (SocketAddr, Instant)>,
}

impl Balancer {
    pub fn new() -> Balancer {
        Balancer::default()
    }

    /// New endpoints (any order) and affinity timeout (None: sessionAffinity None). Clients
    /// stuck to an endpoint that is gone lose their affinity; the others keep it.
    /// Returns whether the endpoints changed.
    pub fn update(&mut self, mut backends: Vec<Backend>, affinity: Option<Duration>) -> bool {
        backends.sort();
        backends.dedup_by(|a, b| a.addr == b.addr);
        let changed = backends != self.backends;
        if changed {
            self.backends = backends;
            if !self.backends.is_empty() {
                self.next %= self.backends.len();
            }
        }
        if affinity.is_none() {
            self.sticky.clear();
        } else {
            let live = &self.backends;
            self.sticky
                .retain(|_, (a, _)| live.iter().any(|b| b.addr == *a));
        }
        self.affinity = affinity;
        changed
    }

    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The endpoints to try for a new connection from `client`, in order: the first is the
    /// choice (the client's sticky endpoint, else the next in round-robin order), the others
    /// are the fallbacks when a connect fails. Empty: reject the connection.
    ///
    /// As kube-proxy's CategorizeEndpoints: the ready endpoints in scope; when there are none,
    /// the serving-and-terminating ones in scope.
    pub fn pick(&mut self, client: IpAddr, scope: Scope<'_>, now: Instant) -> Vec<SocketAddr> {
        let n = self.backends.len();
        let in_scope = |ready: bool| -> Vec<usize> {
            (0..n)
                .filter(|&i| self.backends[i].ready == ready && scope.admits(&self.backends[i]))
                .collect()
        };
        let mut eligible = in_scope(true);
        if eligible.is_empty() {
            eligible = in_scope(false);
        }
        if eligible.is_empty() {
            return vec![];
        }
        let mut first = None;
        if let Some(ttl) = self.affinity {
            if let Some((addr, last)) = self.sticky.get_mut(&client) {
                if now.saturating_duration_since(*last) < ttl {
                    first = eligible
                        .iter()
                        .position(|&i| self.backends[i].addr == *addr);
                    if first.is_some() {
                        *last = now;
                    }
                }
            }
        }
        let first = match first {
            Some(p) => p,
            None => {
                // The first eligible endpoint at or after the cursor.
                let start = self.next % n;
                let p = eligible.iter().position(|&i| i >= start).unwrap_or(0);
                self.next = (eligible[p] + 1) % n;
                if self.affinity.is_some() {
                    self.sticky
                        .insert(client, (self.backends[eligible[p]].addr, now));
                }
                p
            }
        };
        eligible[first..]
            .iter()
            .chain(&eligible[..first])
            .map(|&i| self.backends[i].addr)
            .collect()
    }

    /// The connection from `client` went to `addr` (after the first choice failed): its
    /// affinity follows, as the userspace proxy's sessionAffinityReset did.
    pub fn connected(&mut self, client: IpAddr, addr: SocketAddr, now: Instant) {
        if self.affinity.is_some() {
            self.sticky.insert(client, (addr, now));
        }
    }

    /// Forget affinities idle for longer than the timeout (bounds the table).
    pub fn expire(&mut self, now: Instant) {
        if let Some(ttl) = self.affinity {
            self.sticky
                .retain(|_, (_, last)| now.saturating_duration_since(*last) < ttl);
        }
    }

    pub fn sticky_clients(&self) -> usize {
        self.sticky.len()
    }
}

/// The affinity timeout of a Service: Some(timeoutSeconds, 10800 by default) for ClientIP.
pub fn affinity(spec: &v1::ServiceSpec) -> Option<Duration> {
    (spec.session_affinity == "ClientIP").then(|| {
        let secs = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .filter(|s| *s > 0)
            .unwrap_or(10800);
        Duration::from_secs(secs as u64)
    })
}

/// The usable endpoints of Service port `port` in the Service's EndpointSlices, merged as
/// kube-proxy's EndpointSliceCache merges them: slice ports match by name and protocol (a port
/// without a name or number is ignored), an endpoint's first address counts, conditions are
/// read with their defaults (ready and serving unless false, terminating only if true), and an
/// address:port seen in several slices counts once. Endpoints neither ready nor
/// serving-and-terminating are left out. Only IP slices of the ClusterIP's family are used.
pub fn backends_from_slices(
    port: &v1::ServicePort,
    slices: &[&v1::EndpointSlice],
    ipv6: bool,
) -> Vec<Backend> {
    let protocol = if port.protocol.is_empty() {
        "TCP"
    } else {
        port.protocol.as_str()
    };
    let family = if ipv6 { "IPv6" } else { "IPv4" };
    let mut sorted: Vec<&v1::EndpointSlice> = slices.to_vec();
    sorted.sort_by(|a, b| {
        let name = |s: &v1::EndpointSlice| s.metadata.as_ref().map(|m| m.name.clone());
        name(a).cmp(&name(b))
    });
    let mut seen: HashSet<SocketAddr> = HashSet::new();
    let mut out = vec![];
    for slice in sorted {
        if slice.address_type != family {
            continue;
        }
        let Some(number) = slice
            .ports
            .iter()
            .find(|p| {
                p.name.as_deref() == Some(port.name.as_str())
                    && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .and_then(|p| p.port)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n != 0)
        else {
            continue;
        };
        for e in &slice.endpoints {
            let Some(ip) = e.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue;
            };
            if ip.is_ipv6() != ipv6 {
                continue;
            }
            let c = e.conditions.unwrap_or_default();
            let ready = c.ready.unwrap_or(true);
            let serving = c.serving.unwrap_or(true);
            let terminating = c.terminating.unwrap_or(false);
            if !(ready || serving && terminating) {
                continue;
            }
            let addr = SocketAddr::new(ip, number);
            if seen.insert(addr) {
                out.push(Backend {
                    addr,
                    node: e.node_name.clone().unwrap_or_default(),
                    ready,
                });
            }
        }
    }
    out
}

/// A node as the proxy sees it: where its NodePorts listen and which client addresses are its.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ip: Option<IpAddr>,
    /// The pod range (network, prefix length).
    pub pod_cidr: Option<(Ipv4Addr, u8)>,
}

impl NodeInfo {
    pub fn from_node(n: &v1::Node) -> NodeInfo {
        let name = n
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let internal_ip = n
            .status
            .as_ref()
            .and_then(|s| s.addresses.iter().find(|a| a.r#type == "InternalIP"))
            .and_then(|a| a.address.parse().ok());
        let pod_cidr = n.spec.as_ref().and_then(|s| parse_cidr(&s.pod_cidr));
        NodeInfo {
            name,
            internal_ip,
            pod_cidr,
        }
    }

    fn holds(&self, ip: IpAddr) -> bool {
        if self.internal_ip == Some(ip) {
            return true;
        }
        match (ip, self.pod_cidr) {
            (IpAddr::V4(v4), Some((net, len))) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - len as u32)
                };
                u32::from(v4) & mask == u32::from(net) & mask
            }
            _ => false,
        }
    }
}

/// "a.b.c.d/n" (IPv4).
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((ip.parse().ok()?, len))
}

/// The node a client address belongs to (its pod range or its InternalIP).
pub fn node_of(nodes: &[NodeInfo], ip: IpAddr) -> Option<&str> {
    nodes.iter().find(|n| n.holds(ip)).map(|n| n.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(last: u8, node: &str) -> Backend {
        Backend {
            addr: SocketAddr::from(([127, 9, 0, last], 80)),
            node: node.into(),
            ready: true,
        }
    }

    fn terminating(last: u8, node: &str) -> Backend {
        Backend {
            ready: false,
            ..b(last, node)
        }
    }

    fn client(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[tokio::test(start_paused = true)]
    async fn round_robin_over_ready_endpoints_with_fallbacks() {
        let mut lb = Balancer::new();
        lb.update(vec![b(3, "n1"), b(1, "n1"), b(2, "n2")], None);
        let now = Instant::now();
        let firsts: Vec<u8> = (0..6)
            .map(|_| match lb.pick(client(1), Scope::All, now)[0] {
                SocketAddr::V4(a) => a.ip().octets()[3],
                _ => 0,
            })
            .collect();
        assert_eq!(firsts, vec![1, 2, 3, 1, 2, 3]);
        // Fallbacks: the rest, in round-robin order after the choice.
        let order = lb.pick(client(1), Scope::All, now);
        assert_eq!(order, vec![b(1, "").addr, b(2, "").addr, b(3, "").addr]);
        // An endpoint removed: the rotation continues over the rest.
        lb.update(vec![b(1, "n1"), b(3, "n1")], None);
        let next = lb.pick(client(1), Scope::All, now)[0];
        assert!(next == b(1, "").addr || next == b(3, "").addr);
        lb.update(vec![], None);
        assert!(lb.pick(client(1), Scope::All, now).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn client_ip_affinity_sticks_until_the_timeout() {
        let mut lb = Balancer::new();
        let ttl = Duration::from_secs(10);
        lb.update(vec![b(1, ""), b(2, ""), b(3, "")], Some(ttl));
        let t0 = Instant::now();
        let a = lb.pick(client(1), Scope::All, t0)[0];
        let other = lb.pick(client(2), Scope::All, t0)[0];
        assert_ne!(a, other, "another client takes the next endpoint");
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(9)).await;
            assert_eq!(
                lb.pick(client(1), Scope::All, Instant::now())[0],
                a,
                "sticks (each use renews)"
            );
        }
        // Idle past the timeout: round-robin again.
        tokio::time::advance(ttl).await;
        let now = Instant::now();
        let c = lb.pick(client(1), Scope::All, now)[0];
        assert_ne!(c, a);
        assert_eq!(
            lb.pick(client(1), Scope::All, now)[0],
            c,
            "and sticks to the new one"
        );
        // The sticky endpoint removed: the client moves, affinity follows the fallback.
        lb.update(
            lb.backends()
                .iter()
                .filter(|x| x.addr != c)
                .cloned()
                .collect(),
            Some(ttl),
        );
        let d = lb.pick(client(1), Scope::All, now)[0];
        assert_ne!(d, c);
        let e = lb.pick(client(1), Scope::All, now);
        assert_eq!(e[0], d);
        lb.connected(client(1), e[1], now);
        assert_eq!(lb.pick(client(1), Scope::All, now)[0], e[1]);
        tokio::time::advance(ttl * 2).await;
        lb.expire(Instant::now());
        assert_eq!(lb.sticky_clients(), 0);
        // Affinity turned off forgets every client.
        lb.pick(client(1), Scope::All, Instant::now());
        lb.update(lb.backends().to_vec(), None);
        assert_eq!(lb.sticky_clients(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_policies_restrict_to_the_node() {
        let mut lb = Balancer::new();
        lb.update(vec![b(1, "n1"), b(2, "n2"), b(3, "n1"), b(4, "n2")], None);
        let now = Instant::now();
        let local = Entry::NodePort {
            node: "n2".into(),
            external_local: true,
        };
        for _ in 0..8 {
            let got = lb.pick(client(1), scope(&local, None), now);
            assert_eq!(got.len(), 2);
            assert!(got
                .iter()
                .all(|a| *a == b(2, "").addr || *a == b(4, "").addr));
        }
        let cluster = Entry::NodePort {
            node: "n2".into(),
            external_local: false,
        };
        let firsts: std::collections::HashSet<_> = (0..4)
            .map(|_| lb.pick(client(1), scope(&cluster, None), now)[0])
            .collect();
        assert_eq!(firsts.len(), 4, "Cluster uses every endpoint");
        let none_here = Entry::NodePort {
            node: "n3".into(),
            external_local: true,
        };
        assert!(lb.pick(client(1), scope(&none_here, None), now).is_empty());
        // internalTrafficPolicy Local: the client's node; the host (no node) gets Cluster.
        let internal = Entry::ClusterIp {
            internal_local: true,
        };
        assert_eq!(scope(&internal, Some("n1")), Scope::Node("n1"));
        assert_eq!(scope(&internal, None), Scope::All);
        assert_eq!(
            scope(
                &Entry::ClusterIp {
                    internal_local: false
                },
                Some("n1")
            ),
            Scope::All
        );
        assert_eq!(scope(&Entry::External, Some("n1")), Scope::All);
    }

    #[tokio::test(start_paused = true)]
    async fn serving_terminating_endpoints_are_used_only_when_none_is_ready() {
        let mut lb = Balancer::new();
        lb.update(
            vec![b(1, "n1"), terminating(2, "n1"), terminating(3, "n2")],
            None,
        );
        let now = Instant::now();
        for _ in 0..4 {
            assert_eq!(lb.pick(client(1), Scope::All, now), vec![b(1, "").addr]);
        }
        // Local on n2: no ready endpoint there, so n2's serving-terminating one.
        assert_eq!(
            lb.pick(client(1), Scope::Node("n2"), now),
            vec![b(3, "").addr]
        );
        // No ready endpoint anywhere: every serving-terminating one.
        lb.update(vec![terminating(2, "n1"), terminating(3, "n2")], None);
        assert_eq!(lb.pick(client(1), Scope::All, now).len(), 2);
        assert!(lb.pick(client(1), Scope::Node("n3"), now).is_empty());
    }

    fn slice(v: serde_json::Value) -> v1::EndpointSlice {
        serde_json::from_value(v).expect("slice")
    }

    #[test]
    fn slices_merge_by_port_name_and_protocol_with_conditions_and_dedupe() {
        let a = slice(serde_json::json!({
            "metadata": {"name": "web-a"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                      {"name": "dns", "port": 53, "protocol": "UDP"}],
            "endpoints": [
                {"addresses": ["127.10.1.5"], "nodeName": "node1", "conditions": {"ready": true}},
                {"addresses": ["127.10.1.6"], "conditions": {"ready": false}},
                {"addresses": ["127.10.1.7"], "nodeName": "node1",
                 "conditions": {"ready": false, "serving": true, "terminating": true}},
                {"addresses": ["127.10.1.8"],
                 "conditions": {"ready": false, "serving": false, "terminating": true}},
                {"addresses": ["127.10.1.9"], "conditions": {}},
                {"addresses": []}
            ]
        }));
        let b2 = slice(serde_json::json!({
            "metadata": {"name": "web-b"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["127.10.2.5"], "nodeName": "node2", "conditions": {"ready": true}},
                {"addresses": ["127.10.1.5"], "nodeName": "node1", "conditions": {"ready": true}}
            ]
        }));
        let other_port = slice(serde_json::json!({
            "metadata": {"name": "web-c"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.10.3.5"]}]
        }));
        let v6 = slice(serde_json::json!({
            "metadata": {"name": "web-d"},
            "addressType": "IPv6",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["::1"]}]
        }));
        let nameless = slice(serde_json::json!({
            "metadata": {"name": "web-e"},
            "addressType": "IPv4",
            "ports": [{"port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.10.4.5"]}]
        }));
        let port = |name: &str, proto: &str| v1::ServicePort {
            name: name.into(),
            protocol: proto.into(),
            port: 80,
            ..Default::default()
        };
        let all = [&a, &b2, &other_port, &v6, &nameless];
        let http = backends_from_slices(&port("http", "TCP"), &all, false);
        let got: Vec<(String, &str, bool)> = http
            .iter()
            .map(|b| (b.addr.to_string(), b.node.as_str(), b.ready))
            .collect();
        assert_eq!(
            got,
            vec![
                ("127.10.1.5:8080".into(), "node1", true),
                ("127.10.1.7:8080".into(), "node1", false),
                ("127.10.1.9:8080".into(), "", true),
                ("127.10.2.5:8080".into(), "node2", true),
                ("127.10.3.5:9090".into(), "", true),
            ],
            "not-ready and non-serving terminating endpoints are out, 127.10.1.5 once, \
             absent conditions mean ready, the IPv6 and nameless-port slices are ignored"
        );
        assert_eq!(
            backends_from_slices(&port("dns", "UDP"), &all, false).len(),
            3
        );
        assert!(backends_from_slices(&port("dns", "TCP"), &all, false).is_empty());
        assert!(backends_from_slices(&port("", "TCP"), &all, false).is_empty());
        assert_eq!(
            backends_from_slices(&port("http", "TCP"), &all, true).len(),
            1
        );
    }

    #[test]
    fn clients_map_to_their_node() {
        let nodes = vec![
            NodeInfo {
                name: "node1".into(),
                internal_ip: Some("127.10.1.1".parse().unwrap()),
                pod_cidr: parse_cidr("127.10.1.0/24"),
            },
            NodeInfo {
                name: "node2".into(),
                internal_ip: Some("127.10.2.1".parse().unwrap()),
                pod_cidr: parse_cidr("127.10.2.0/24"),
            },
        ];
        assert_eq!(
            node_of(&nodes, "127.10.2.77".parse().unwrap()),
            Some("node2")
        );
        assert_eq!(
            node_of(&nodes, "127.10.1.1".parse().unwrap()),
            Some("node1")
        );
        assert_eq!(node_of(&nodes, "127.0.0.1".parse().unwrap()), None);
        let spec = v1::ServiceSpec {
            session_affinity: "ClientIP".into(),
            ..Default::default()
        };
        assert_eq!(affinity(&spec), Some(Duration::from_secs(10800)));
        assert_eq!(affinity(&v1::ServiceSpec::default()), None);
    }
}
