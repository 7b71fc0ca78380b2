//! The in-memory view DNS answers from: namespaces, Services, Endpoints and (in `verified` pod
//! mode) pod IPs, reduced to what a DNS answer needs and updated one object at a time by the
//! informers' events. It owns no I/O and no clock.
//!
//! Objects are kept by namespace then name, so a lookup borrows the query's labels and allocates
//! nothing; reverse indexes (IP → Service, IP → Endpoints) serve PTR.
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use coxswain_api::v1;

/// A port as DNS sees it (ServicePort or EndpointPort). Port -1 stands for "no ports" (CoreDNS'
/// sentinel for Endpoints subsets without ports): it answers A queries, never SRV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: Box<str>,
    pub protocol: Box<str>,
    pub port: i32,
}

/// What a Service answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvcKind {
    /// spec.clusterIPs (or clusterIP) that parse as addresses.
    ClusterIp(Vec<IpAddr>),
    /// clusterIP "None": answers come from the Endpoints.
    Headless,
    /// type ExternalName: a CNAME to spec.externalName.
    ExternalName(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svc {
    pub kind: SvcKind,
    pub ports: Vec<Port>,
}

/// One ready address of an Endpoints subset, with the label it is found under
/// (`hostname`, else the IP with dashes: CoreDNS' endpointHostname).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub ip: IpAddr,
    pub hostname: Box<str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    pub addresses: Vec<Addr>,
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Eps {
    pub subsets: Vec<Subset>,
}

type ByName<T> = HashMap<Box<str>, HashMap<Box<str>, Arc<T>>>;
/// (namespace, name) of an object, as a reverse index stores it.
pub type ObjKey = (Box<str>, Box<str>);

/// The whole view. One writer (the informer handlers), many readers (queries).
#[derive(Debug, Default)]
pub struct Index {
    namespaces: HashSet<Box<str>>,
    services: ByName<Svc>,
    endpoints: ByName<Eps>,
    svc_by_ip: HashMap<IpAddr, Vec<ObjKey>>,
    eps_by_ip: HashMap<IpAddr, Vec<ObjKey>>,
    /// pod IP → namespaces of the pods that have it (a count per namespace).
    pods_by_ip: HashMap<IpAddr, HashMap<Box<str>, u32>>,
    /// The SOA serial: the time of the last change (set by the caller).
    pub serial: u32,
}

fn ip_of(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// CoreDNS' endpointHostname: the address's hostname, else its IP with '.'/':' as '-'.
pub fn endpoint_hostname(hostname: &str, ip: &IpAddr) -> Box<str> {
    if !hostname.is_empty() {
        return hostname.into();
    }
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-").into(),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-").into(),
    }
}

/// The DNS view of a Service.
pub fn svc_from(s: &v1::Service) -> Svc {
    let spec = s.spec.clone().unwrap_or_default();
    let ports = spec
        .ports
        .iter()
        .map(|p| Port {
            name: p.name.as_str().into(),
            protocol: if p.protocol.is_empty() {
                "TCP".into()
            } else {
                p.protocol.as_str().into()
            },
            port: p.port,
        })
        .collect();
    let kind = if spec.r#type == "ExternalName" {
        SvcKind::ExternalName(spec.external_name.as_str().into())
    } else if spec.cluster_ip == "None" {
        SvcKind::Headless
    } else {
        let ips: Vec<IpAddr> = if spec.cluster_ips.is_empty() {
            ip_of(&spec.cluster_ip).into_iter().collect()
        } else {
            spec.cluster_ips.iter().filter_map(|s| ip_of(s)).collect()
        };
        SvcKind::ClusterIp(ips)
    };
    Svc { kind, ports }
}

/// The DNS view of an Endpoints object: ready addresses only (`addresses`; the endpoints
/// controller puts not-ready pods there too when the Service publishes them).
pub fn eps_from(e: &v1::Endpoints) -> Eps {
    let subsets = e
        .subsets
        .iter()
        .map(|ss| {
            let ports = if ss.ports.is_empty() {
                vec![Port {
                    name: "".into(),
                    protocol: "".into(),
                    port: -1,
                }]
            } else {
                ss.ports
                    .iter()
                    .map(|p| Port {
                        name: p.name.as_str().into(),
                        protocol: if p.protocol.is_empty() {
                            "TCP".into()
                        } else {
                            p.protocol.as_str().into()
                        },
                        port: p.port,
                    })
                    .collect()
            };
            let addresses = ss
                .addresses
                .iter()
                .filter_map(|a| {
                    let ip = ip_of(&a.ip)?;
                    Some(Addr {
                        hostname: endpoint_hostname(&a.hostname, &ip),
                        ip,
                    })
                })
                .collect();
            Subset { addresses, ports }
        })
        .collect();
    Eps { subsets }
}

fn key(ns: &str, name: &str) -> ObjKey {
    (ns.into(), name.into())
}

fn unindex(map: &mut HashMap<IpAddr, Vec<ObjKey>>, ip: &IpAddr, k: &ObjKey) {
    if let Some(v) = map.get_mut(ip) {
        v.retain(|x| x != k);
        if v.is_empty() {
            map.remove(ip);
        }
    }
}

fn svc_ips(s: &Svc) -> &[IpAddr] {
    match &s.kind {
        SvcKind::ClusterIp(ips) => ips,
        _ => &[],
    }
}

fn eps_ips(e: &Eps) -> impl Iterator<Item = &IpAddr> {
    e.subsets
        .iter()
        .flat_map(|s| s.addresses.iter().map(|a| &a.ip))
}

impl Index {
    pub fn set_namespace(&mut self, name: &str, present: bool) {
        if present {
            self.namespaces.insert(name.into());
        } else {
            self.namespaces.remove(name);
        }
    }

    pub fn has_namespace(&self, name: &str) -> bool {
        self.namespaces.contains(name)
    }

    /// Insert or replace (`Some`) or remove (`None`) the Service ns/name.
    pub fn set_service(&mut self, ns: &str, name: &str, svc: Option<Svc>) {
        let k = key(ns, name);
        let old = match svc {
            Some(s) => {
                let s = Arc::new(s);
                for ip in svc_ips(&s) {
                    let v = self.svc_by_ip.entry(*ip).or_default();
                    if !v.contains(&k) {
                        v.push(k.clone());
                    }
                }
                let old = self
                    .services
                    .entry(ns.into())
                    .or_default()
                    .insert(name.into(), s.clone());
                if let Some(o) = &old {
                    for ip in svc_ips(o) {
                        if !svc_ips(&s).contains(ip) {
                            unindex(&mut self.svc_by_ip, ip, &k);
                        }
                    }
                }
                return;
            }
            None => {
                let m = self.services.get_mut(ns);
                let old = m.and_then(|m| m.remove(name));
                if self.services.get(ns).is_some_and(|m| m.is_empty()) {
                    self.services.remove(ns);
                }
                old
            }
        };
        if let Some(o) = old {
            for ip in svc_ips(&o) {
                unindex(&mut self.svc_by_ip, ip, &k);
            }
        }
    }

    /// Insert or replace (`Some`) or remove (`None`) the Endpoints ns/name.
    pub fn set_endpoints(&mut self, ns: &str, name: &str, eps: Option<Eps>) {
        let k = key(ns, name);
        let old = match eps {
            Some(e) => {
                let e = Arc::new(e);
                for ip in eps_ips(&e) {
                    let v = self.eps_by_ip.entry(*ip).or_default();
                    if !v.contains(&k) {
                        v.push(k.clone());
                    }
                }
                let old = self
                    .endpoints
                    .entry(ns.into())
                    .or_default()
                    .insert(name.into(), e.clone());
                if let Some(o) = old {
                    for ip in eps_ips(&o) {
                        if !eps_ips(&e).any(|x| x == ip) {
                            unindex(&mut self.eps_by_ip, ip, &k);
                        }
                    }
                }
                return;
            }
            None => {
                let old = self.endpoints.get_mut(ns).and_then(|m| m.remove(name));
                if self.endpoints.get(ns).is_some_and(|m| m.is_empty()) {
                    self.endpoints.remove(ns);
                }
                old
            }
        };
        if let Some(o) = old {
            for ip in eps_ips(&o) {
                unindex(&mut self.eps_by_ip, ip, &k);
            }
        }
    }

    /// A pod's IP appeared (`add`) or went away in namespace `ns` (verified pod mode).
    pub fn pod_ip(&mut self, ns: &str, ip: IpAddr, add: bool) {
        if add {
            *self
                .pods_by_ip
                .entry(ip)
                .or_default()
                .entry(ns.into())
                .or_default() += 1;
        } else if let Some(m) = self.pods_by_ip.get_mut(&ip) {
            if let Some(c) = m.get_mut(ns) {
                *c -= 1;
                if *c == 0 {
                    m.remove(ns);
                }
            }
            if m.is_empty() {
                self.pods_by_ip.remove(&ip);
            }
        }
    }

    pub fn service(&self, ns: &str, name: &str) -> Option<&Arc<Svc>> {
        self.services.get(ns)?.get(name)
    }

    /// The Service with the index's own copies of its namespace and name.
    pub fn service_entry(&self, ns: &str, name: &str) -> Option<(&str, &str, &Arc<Svc>)> {
        let (nk, m) = self.services.get_key_value(ns)?;
        let (k, v) = m.get_key_value(name)?;
        Some((nk, k, v))
    }

    pub fn endpoints(&self, ns: &str, name: &str) -> Option<&Arc<Eps>> {
        self.endpoints.get(ns)?.get(name)
    }

    pub fn pod_has_ip(&self, ns: &str, ip: &IpAddr) -> bool {
        self.pods_by_ip.get(ip).is_some_and(|m| m.contains_key(ns))
    }

    /// Services whose ClusterIPs include `ip`.
    pub fn services_by_ip(&self, ip: &IpAddr) -> &[ObjKey] {
        self.svc_by_ip.get(ip).map_or(&[], |v| v)
    }

    /// Endpoints with a ready address `ip`.
    pub fn endpoints_by_ip(&self, ip: &IpAddr) -> &[ObjKey] {
        self.eps_by_ip.get(ip).map_or(&[], |v| v)
    }

    /// Services and Endpoints held (for metrics and tests).
    pub fn counts(&self) -> (usize, usize) {
        (
            self.services.values().map(|m| m.len()).sum(),
            self.endpoints.values().map(|m| m.len()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ips: &[&str]) -> Svc {
        Svc {
            kind: SvcKind::ClusterIp(ips.iter().map(|s| s.parse().unwrap()).collect()),
            ports: vec![],
        }
    }

    fn eps(ips: &[&str]) -> Eps {
        Eps {
            subsets: vec![Subset {
                addresses: ips
                    .iter()
                    .map(|s| {
                        let ip = s.parse().unwrap();
                        Addr {
                            hostname: endpoint_hostname("", &ip),
                            ip,
                        }
                    })
                    .collect(),
                ports: vec![],
            }],
        }
    }

    #[test]
    fn reverse_indexes_follow_updates_and_deletes() {
        let mut ix = Index::default();
        let a: IpAddr = "127.1.0.5".parse().unwrap();
        let b: IpAddr = "127.1.0.6".parse().unwrap();
        ix.set_service("default", "web", Some(svc(&["127.1.0.5"])));
        assert_eq!(ix.services_by_ip(&a).len(), 1);
        ix.set_service("default", "web", Some(svc(&["127.1.0.6"])));
        assert!(ix.services_by_ip(&a).is_empty());
        assert_eq!(ix.services_by_ip(&b).len(), 1);
        ix.set_service("default", "web", None);
        assert!(ix.services_by_ip(&b).is_empty());
        assert!(ix.service("default", "web").is_none());

        ix.set_endpoints("default", "web", Some(eps(&["10.0.0.1", "10.0.0.2"])));
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(ix.endpoints_by_ip(&ip1).len(), 1);
        ix.set_endpoints("default", "web", Some(eps(&["10.0.0.2"])));
        assert!(ix.endpoints_by_ip(&ip1).is_empty());
        assert_eq!(ix.endpoints_by_ip(&ip2).len(), 1);
        ix.set_endpoints("default", "web", None);
        assert!(ix.endpoints_by_ip(&ip2).is_empty());
        assert_eq!(ix.counts(), (0, 0));
    }

    #[test]
    fn endpoint_hostname_is_hostname_or_dashed_ip() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(&*endpoint_hostname("web-1", &ip), "web-1");
        assert_eq!(&*endpoint_hostname("", &ip), "10-1-2-3");
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(&*endpoint_hostname("", &v6), "fd00--1");
    }

    #[test]
    fn pod_ips_are_counted_per_namespace() {
        let mut ix = Index::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        ix.pod_ip("a", ip, true);
        ix.pod_ip("a", ip, true);
        ix.pod_ip("a", ip, false);
        assert!(ix.pod_has_ip("a", &ip));
        ix.pod_ip("a", ip, false);
        assert!(!ix.pod_has_ip("a", &ip));
    }

    #[test]
    fn service_views() {
        let mut s = v1::Service {
            spec: Some(v1::ServiceSpec {
                cluster_ip: "None".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(svc_from(&s).kind, SvcKind::Headless);
        s.spec = Some(v1::ServiceSpec {
            r#type: "ExternalName".into(),
            external_name: "db.example.com".into(),
            ..Default::default()
        });
        assert_eq!(
            svc_from(&s).kind,
            SvcKind::ExternalName("db.example.com".into())
        );
        s.spec = Some(v1::ServiceSpec {
            cluster_ip: "127.1.0.1".into(),
            cluster_ips: vec!["127.1.0.1".into()],
            ..Default::default()
        });
        assert_eq!(
            svc_from(&s).kind,
            SvcKind::ClusterIp(vec!["127.1.0.1".parse().unwrap()])
        );
    }
}
