//! What the proxy should be doing for one Service, computed from it, its EndpointSlices and the
//! Nodes: one entry per Service port (its usable endpoints and affinity) and one listener per
//! address it is reached on (ClusterIP, NodePorts, LoadBalancer ingress and external IPs); and
//! the LoadBalancer ingress allocation. Pure functions.
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1;

use crate::routing::{affinity, backends_from_slices, Backend, Entry, NodeInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "" | "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            // SCTP is not carried.
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// One Service port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub namespace: String,
    pub service: String,
    /// The port's name ("" for a single unnamed port).
    pub port: String,
    pub protocol: Protocol,
}

impl std::fmt::Display for PortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        write!(f, "/{}", self.protocol.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PortPlan {
    pub key: PortKey,
    pub backends: Vec<Backend>,
    pub affinity: Option<Duration>,
}

/// A listener: traffic to `listen` over `protocol` goes to Service port `key`.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontendPlan {
    pub listen: SocketAddr,
    pub protocol: Protocol,
    pub key: PortKey,
    pub entry: Entry,
}

/// One Service's ports and listeners.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub ports: Vec<PortPlan>,
    pub frontends: Vec<FrontendPlan>,
}

pub fn meta(svc: &v1::Service) -> (String, String) {
    svc.metadata
        .as_ref()
        .map(|m| (m.namespace.clone(), m.name.clone()))
        .unwrap_or_default()
}

/// How two Services claiming one address are ordered: the older (then the smaller
/// namespace/name) keeps it.
pub fn age(svc: &v1::Service) -> (String, String, String) {
    svc.metadata
        .as_ref()
        .map(|m| {
            (
                m.creation_timestamp.clone(),
                m.namespace.clone(),
                m.name.clone(),
            )
        })
        .unwrap_or_default()
}

/// The LoadBalancer ingress IPs a Service has in its status.
pub fn ingress_ips(svc: &v1::Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .map(|lb| {
            lb.ingress
                .iter()
                .filter_map(|i| i.ip.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The plan for one Service and its EndpointSlices (those labelled with its name);
/// `extra_node_port_addresses` are `--nodeport-addresses`. A Service port without usable
/// endpoints gets no listener, so connections to it are refused (kube-proxy's REJECT).
/// ExternalName and headless Services get nothing (DNS only).
pub fn plan(
    svc: &v1::Service,
    slices: &[&v1::EndpointSlice],
    nodes: &[NodeInfo],
    extra_node_port_addresses: &[IpAddr],
) -> Plan {
    let mut out = Plan::default();
    let Some(spec) = &svc.spec else {
        return out;
    };
    if spec.r#type == "ExternalName" {
        return out;
    }
    let Ok(cluster_ip) = spec.cluster_ip.parse::<IpAddr>() else {
        return out;
    };
    let (namespace, service) = meta(svc);
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let external_local = spec.external_traffic_policy == "Local";
    let lb_ips = if spec.r#type == "LoadBalancer" {
        ingress_ips(svc)
    } else {
        vec![]
    };
    let external_ips: Vec<IpAddr> = spec
        .external_ips
        .iter()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let mut taken: HashSet<(SocketAddr, Protocol)> = HashSet::new();
    for port in &spec.ports {
        let Some(protocol) = Protocol::parse(&port.protocol) else {
            continue;
        };
        let Ok(number) = u16::try_from(port.port) else {
            continue;
        };
        let key = PortKey {
            namespace: namespace.clone(),
            service: service.clone(),
            port: port.name.clone(),
            protocol,
        };
        let backends = backends_from_slices(port, slices, cluster_ip.is_ipv6());
        let serving = !backends.is_empty();
        out.ports.push(PortPlan {
            key: key.clone(),
            backends,
            affinity: affinity(spec),
        });
        if !serving {
            continue;
        }
        let mut add = |listen: SocketAddr, entry: Entry| {
            if taken.insert((listen, protocol)) {
                out.frontends.push(FrontendPlan {
                    listen,
                    protocol,
                    key: key.clone(),
                    entry,
                });
            }
        };
        add(
            SocketAddr::new(cluster_ip, number),
            Entry::ClusterIp { internal_local },
        );
        if let Ok(np) = u16::try_from(port.node_port) {
            if np != 0 {
                for n in nodes {
                    if let Some(ip) = n.internal_ip {
                        add(
                            SocketAddr::new(ip, np),
                            Entry::NodePort {
                                node: n.name.clone(),
                                external_local,
                            },
                        );
                    }
                }
                for ip in extra_node_port_addresses {
                    add(SocketAddr::new(*ip, np), Entry::External);
                }
            }
        }
        for ip in lb_ips.iter().chain(&external_ips) {
            add(SocketAddr::new(*ip, number), Entry::External);
        }
    }
    out
}

/// The LoadBalancer ingress pool (`--load-balancer-ip-range`), an IPv4 CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    base: u32,
    size: u32,
}

impl Pool {
    /// "a.b.c.d/n", 8 <= n <= 30.
    pub fn parse(s: &str) -> Result<Pool, String> {
        let (net, len) = crate::routing::parse_cidr(s)
            .ok_or_else(|| format!("{s:?} is not an IPv4 CIDR (a.b.c.d/n)"))?;
        if !(8..=30).contains(&len) {
            return Err(format!("{s:?}: the prefix length must be 8..30"));
        }
        let size = 1u32 << (32 - len as u32);
        Ok(Pool {
            base: u32::from(net) & !(size - 1),
            size,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => (self.base..self.base + self.size).contains(&u32::from(v4)),
            IpAddr::V6(_) => false,
        }
    }

    /// Usable addresses: not the network or broadcast address.
    fn usable(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (self.base + 1..self.base + self.size - 1).map(Ipv4Addr::from)
    }
}

/// A status write the LoadBalancer allocator wants: give the Service this ingress IP, or
/// (None) clear the ingress of a Service that is no longer a LoadBalancer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub namespace: String,
    pub name: String,
    pub ip: Option<Ipv4Addr>,
}

/// What to write so that every LoadBalancer Service has an ingress IP from `pool` (its
/// spec.loadBalancerIP when that is in the pool and free) and no other Service keeps one.
/// `in_flight` are addresses being written right now (not yet seen in a status).
pub fn lb_assignments(
    services: &[Arc<v1::Service>],
    pool: &Pool,
    in_flight: &BTreeMap<(String, String), Ipv4Addr>,
) -> Vec<Assignment> {
    let mut used: HashSet<IpAddr> = in_flight.values().map(|ip| IpAddr::V4(*ip)).collect();
    for s in services {
        for ip in ingress_ips(s) {
            if pool.contains(ip) {
                used.insert(ip);
            }
        }
    }
    let mut out = vec![];
    let mut sorted: Vec<&Arc<v1::Service>> = services.iter().collect();
    sorted.sort_by_key(|s| meta(s));
    for s in sorted {
        let (namespace, name) = meta(s);
        let Some(spec) = &s.spec else { continue };
        let has = ingress_ips(s);
        let key = (namespace.clone(), name.clone());
        if spec.r#type == "LoadBalancer" {
            if !has.is_empty() || in_flight.contains_key(&key) {
                continue;
            }
            // Another class's load balancer owns it.
            if spec
                .load_balancer_class
                .as_deref()
                .is_some_and(|c| !c.is_empty())
            {
                continue;
            }
            let wanted =
                spec.load_balancer_ip.parse::<Ipv4Addr>().ok().filter(|ip| {
                    pool.contains(IpAddr::V4(*ip)) && !used.contains(&IpAddr::V4(*ip))
                });
            let ip = wanted.or_else(|| pool.usable().find(|ip| !used.contains(&IpAddr::V4(*ip))));
            if let Some(ip) = ip {
                used.insert(IpAddr::V4(ip));
                out.push(Assignment {
                    namespace,
                    name,
                    ip: Some(ip),
                });
            }
        } else if has.iter().any(|ip| pool.contains(*ip)) {
            out.push(Assignment {
                namespace,
                name,
                ip: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: serde_json::Value) -> Arc<v1::Service> {
        Arc::new(serde_json::from_value(v).expect("service"))
    }

    fn slice(v: serde_json::Value) -> v1::EndpointSlice {
        serde_json::from_value(v).expect("slice")
    }

    fn nodes() -> Vec<NodeInfo> {
        ["node1", "node2"]
            .iter()
            .enumerate()
            .map(|(i, n)| NodeInfo {
                name: n.to_string(),
                internal_ip: Some(IpAddr::from([127, 10, i as u8 + 1, 1])),
                pod_cidr: None,
            })
            .collect()
    }

    #[test]
    fn listeners_for_cluster_ip_node_ports_and_load_balancers() {
        let web = svc(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "clusterIP": "127.255.10.5",
                     "externalTrafficPolicy": "Local",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                               {"name": "dns", "port": 53, "protocol": "UDP"},
                               {"name": "none", "port": 81, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.10.1"}]}}
        }));
        let s = slice(serde_json::json!({
            "metadata": {"name": "web-abc", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.10.1.5"], "nodeName": "node1"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                      {"name": "dns", "port": 5353, "protocol": "UDP"}]}));
        let extra = vec![IpAddr::from([127, 0, 0, 1])];
        let p = plan(&web, &[&s], &nodes(), &extra);
        let listens: Vec<(String, Protocol)> = p
            .frontends
            .iter()
            .map(|f| (f.listen.to_string(), f.protocol))
            .collect();
        assert_eq!(
            listens,
            vec![
                ("127.255.10.5:80".into(), Protocol::Tcp),
                ("127.10.1.1:30080".into(), Protocol::Tcp),
                ("127.10.2.1:30080".into(), Protocol::Tcp),
                ("127.0.0.1:30080".into(), Protocol::Tcp),
                ("127.0.10.1:80".into(), Protocol::Tcp),
                ("127.255.10.5:53".into(), Protocol::Udp),
                ("127.0.10.1:53".into(), Protocol::Udp),
            ]
        );
        assert_eq!(
            p.frontends[2].entry,
            Entry::NodePort {
                node: "node2".into(),
                external_local: true
            }
        );
        assert_eq!(p.frontends[3].entry, Entry::External);
        // The port without endpoints has an entry but no listener (refused).
        assert_eq!(p.ports.len(), 3);
        assert!(p.ports[2].backends.is_empty());
        // No slices: no listener at all; headless and ExternalName: nothing.
        assert!(plan(&web, &[], &nodes(), &extra).frontends.is_empty());
        let headless = svc(serde_json::json!({
            "metadata": {"name": "headless", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }));
        assert!(plan(&headless, &[&s], &nodes(), &extra).ports.is_empty());
    }

    #[test]
    fn load_balancers_get_free_pool_addresses() {
        let pool = Pool::parse("127.0.10.0/30").expect("pool");
        let services = vec![
            svc(
                serde_json::json!({"metadata": {"name": "a", "namespace": "default"},
                "spec": {"type": "LoadBalancer"}}),
            ),
            svc(
                serde_json::json!({"metadata": {"name": "b", "namespace": "default"},
                "spec": {"type": "LoadBalancer"},
                "status": {"loadBalancer": {"ingress": [{"ip": "127.0.10.1"}]}}}),
            ),
            svc(
                serde_json::json!({"metadata": {"name": "c", "namespace": "default"},
                "spec": {"type": "LoadBalancer"}}),
            ),
            svc(
                serde_json::json!({"metadata": {"name": "was", "namespace": "default"},
                "spec": {"type": "ClusterIP"},
                "status": {"loadBalancer": {"ingress": [{"ip": "127.0.10.9"}]}}}),
            ),
        ];
        let got = lb_assignments(&services, &pool, &BTreeMap::new());
        assert_eq!(
            got,
            vec![Assignment {
                namespace: "default".into(),
                name: "a".into(),
                ip: Some(Ipv4Addr::new(127, 0, 10, 2)),
            }],
            "one free address left (a /30 has two usable); c stays pending; 127.0.10.9 is not ours"
        );
        let mut flying = BTreeMap::new();
        flying.insert(("default".into(), "a".into()), Ipv4Addr::new(127, 0, 10, 2));
        assert!(lb_assignments(&services, &pool, &flying).is_empty());
        let wide = Pool::parse("127.0.10.0/24").expect("pool");
        let got = lb_assignments(&services, &wide, &BTreeMap::new());
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[2].ip, None,
            "the ClusterIP service's ingress is cleared"
        );
    }
}
