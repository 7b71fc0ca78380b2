//! The in-memory view DNS answers from: namespaces, Services, EndpointSlices and (in `verified`
//! pod mode) pod IPs, reduced to what a DNS answer needs and updated one object at a time by the
//! informers' events. It owns no I/O and no clock.
//!
//! Objects are kept by namespace then name, so a lookup borrows the query's labels and allocates
//! nothing. EndpointSlices are kept under the Service their `kubernetes.io/service-name` label
//! names (CoreDNS' EndpointsKey index), so a Service's endpoints are the merge of its slices.
//! Reverse indexes (IP → Service, IP → slice) serve PTR.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use coxswain_api::v1;

/// A port as DNS sees it (ServicePort or EndpointSlice port). Port -1 stands for "no ports"
/// (CoreDNS' sentinel for a slice without ports): it answers A queries, never SRV.
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
    /// clusterIP "None": answers come from the EndpointSlices.
    Headless,
    /// type ExternalName: a CNAME to spec.externalName.
    ExternalName(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svc {
    pub kind: SvcKind,
    pub ports: Vec<Port>,
}

/// One ready address of a slice, with the label it is found under
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

/// One EndpointSlice as DNS sees it: CoreDNS' conversion gives one subset per slice (its ready
/// endpoints' addresses and the slice's ports).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Eps {
    pub subsets: Vec<Subset>,
}

type ByName<T> = HashMap<Box<str>, HashMap<Box<str>, Arc<T>>>;
/// A Service's slices by slice name (ordered, so answers come in a stable order).
type Slices = BTreeMap<Box<str>, Arc<Eps>>;
/// (namespace, name) of an object, as a reverse index stores it.
pub type ObjKey = (Box<str>, Box<str>);
/// (namespace, Service, slice) of an EndpointSlice.
pub type SliceKey = (Box<str>, Box<str>, Box<str>);

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The whole view. One writer (the informer handlers), many readers (queries).
#[derive(Debug, Default)]
pub struct Index {
    namespaces: HashSet<Box<str>>,
    services: ByName<Svc>,
    /// namespace → Service → its slices.
    slices: HashMap<Box<str>, HashMap<Box<str>, Slices>>,
    /// (namespace, slice) → the Service the slice is indexed under.
    slice_owner: HashMap<ObjKey, Box<str>>,
    svc_by_ip: HashMap<IpAddr, Vec<ObjKey>>,
    eps_by_ip: HashMap<IpAddr, Vec<SliceKey>>,
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

fn dns_port(name: Option<&str>, protocol: Option<&str>, port: Option<i32>) -> Port {
    Port {
        name: name.unwrap_or("").into(),
        protocol: protocol.unwrap_or("").into(),
        port: port.unwrap_or(-1),
    }
}

/// The DNS view of an EndpointSlice (CoreDNS' EndpointSliceToEndpoints): the Service its
/// `kubernetes.io/service-name` label names (None without one: it backs no Service), and one
/// subset of the slice's ports (the -1 sentinel when it has none) and the addresses of its
/// ready endpoints (`ready` unset counts as ready, as the API says). The EndpointSlice
/// controller marks not-ready pods ready when the Service publishes them. Addresses that are
/// not IPs (FQDN slices) are skipped.
pub fn eps_from(s: &v1::EndpointSlice) -> Option<(String, Eps)> {
    let svc = s
        .metadata
        .as_ref()?
        .labels
        .get(SERVICE_NAME_LABEL)
        .filter(|n| !n.is_empty())?;
    let ports = if s.ports.is_empty() {
        vec![dns_port(None, None, None)]
    } else {
        s.ports
            .iter()
            .map(|p| {
                // The API server defaults a port's protocol to TCP.
                let proto = p
                    .protocol
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .or(Some("TCP"));
                dns_port(p.name.as_deref(), proto, p.port)
            })
            .collect()
    };
    let addresses = s
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| {
            let hostname = e.hostname.as_deref().unwrap_or("");
            e.addresses.iter().filter_map(move |a| {
                let ip = ip_of(a)?;
                Some(Addr {
                    hostname: endpoint_hostname(hostname, &ip),
                    ip,
                })
            })
        })
        .collect();
    Some((
        svc.clone(),
        Eps {
            subsets: vec![Subset { addresses, ports }],
        },
    ))
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

    /// Insert or replace (`Some((service, view))`) or remove (`None`) the EndpointSlice
    /// ns/slice; a slice whose Service label changed moves to the new Service.
    pub fn set_slice(&mut self, ns: &str, slice: &str, new: Option<(&str, Eps)>) {
        let owner_key = key(ns, slice);
        if let Some(old_svc) = self.slice_owner.remove(&owner_key) {
            self.remove_slice(ns, &old_svc, slice);
        }
        let Some((svc, eps)) = new else {
            return;
        };
        let k: SliceKey = (ns.into(), svc.into(), slice.into());
        for ip in eps_ips(&eps) {
            let v = self.eps_by_ip.entry(*ip).or_default();
            if !v.contains(&k) {
                v.push(k.clone());
            }
        }
        self.slice_owner.insert(owner_key, svc.into());
        self.slices
            .entry(ns.into())
            .or_default()
            .entry(svc.into())
            .or_default()
            .insert(slice.into(), Arc::new(eps));
    }

    fn remove_slice(&mut self, ns: &str, svc: &str, slice: &str) {
        let Some(by_svc) = self.slices.get_mut(ns) else {
            return;
        };
        let Some(slices) = by_svc.get_mut(svc) else {
            return;
        };
        let Some(old) = slices.remove(slice) else {
            return;
        };
        if slices.is_empty() {
            by_svc.remove(svc);
        }
        if by_svc.is_empty() {
            self.slices.remove(ns);
        }
        let k: SliceKey = (ns.into(), svc.into(), slice.into());
        for ip in eps_ips(&old) {
            if let Some(v) = self.eps_by_ip.get_mut(ip) {
                v.retain(|x| *x != k);
                if v.is_empty() {
                    self.eps_by_ip.remove(ip);
                }
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

    /// The subsets of every slice of the Service ns/name (CoreDNS' EpIndex lookup).
    pub fn endpoint_subsets(&self, ns: &str, name: &str) -> impl Iterator<Item = &Subset> {
        self.slices
            .get(ns)
            .and_then(|m| m.get(name))
            .into_iter()
            .flat_map(|s| s.values())
            .flat_map(|e| e.subsets.iter())
    }

    /// One slice of the Service ns/svc.
    pub fn slice(&self, ns: &str, svc: &str, slice: &str) -> Option<&Arc<Eps>> {
        self.slices.get(ns)?.get(svc)?.get(slice)
    }

    pub fn pod_has_ip(&self, ns: &str, ip: &IpAddr) -> bool {
        self.pods_by_ip.get(ip).is_some_and(|m| m.contains_key(ns))
    }

    /// Services whose ClusterIPs include `ip`.
    pub fn services_by_ip(&self, ip: &IpAddr) -> &[ObjKey] {
        self.svc_by_ip.get(ip).map_or(&[], |v| v)
    }

    /// Slices with a ready address `ip`.
    pub fn endpoints_by_ip(&self, ip: &IpAddr) -> &[SliceKey] {
        self.eps_by_ip.get(ip).map_or(&[], |v| v)
    }

    /// Services and EndpointSlices held (for metrics and tests).
    pub fn counts(&self) -> (usize, usize) {
        (
            self.services.values().map(|m| m.len()).sum(),
            self.slice_owner.len(),
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

        ix.set_slice(
            "default",
            "web-1",
            Some(("web", eps(&["10.0.0.1", "10.0.0.2"]))),
        );
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(ix.endpoints_by_ip(&ip1).len(), 1);
        ix.set_slice("default", "web-1", Some(("web", eps(&["10.0.0.2"]))));
        assert!(ix.endpoints_by_ip(&ip1).is_empty());
        assert_eq!(ix.endpoints_by_ip(&ip2).len(), 1);
        ix.set_slice("default", "web-1", None);
        assert!(ix.endpoints_by_ip(&ip2).is_empty());
        assert_eq!(ix.counts(), (0, 0));
    }

    fn slice(svc: Option<&str>, eps: &[(&str, Option<bool>, Option<&str>)]) -> v1::EndpointSlice {
        v1::EndpointSlice {
            metadata: Some(v1::ObjectMeta {
                name: "web-x1".into(),
                namespace: "default".into(),
                labels: svc
                    .map(|s| (SERVICE_NAME_LABEL.to_string(), s.to_string()))
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            address_type: "IPv4".into(),
            endpoints: eps
                .iter()
                .map(|(ip, ready, host)| v1::Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: Some(v1::EndpointConditions {
                        ready: *ready,
                        ..Default::default()
                    }),
                    hostname: host.map(|h| h.to_string()),
                    ..Default::default()
                })
                .collect(),
            ports: vec![v1::EndpointSlicePort {
                name: Some("http".into()),
                protocol: None,
                port: Some(80),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_slice_keeps_its_ready_endpoints_under_its_service() {
        let s = slice(
            Some("web"),
            &[
                ("10.0.0.1", Some(true), Some("web-0")),
                ("10.0.0.2", Some(false), None),
                ("10.0.0.3", None, None),
                ("db.example.com", Some(true), None),
            ],
        );
        let (svc, e) = eps_from(&s).unwrap();
        assert_eq!(svc, "web");
        let ss = &e.subsets[0];
        let got: Vec<(String, &str)> = ss
            .addresses
            .iter()
            .map(|a| (a.ip.to_string(), &*a.hostname))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.1".to_string(), "web-0"),
                ("10.0.0.3".to_string(), "10-0-0-3")
            ]
        );
        assert_eq!(
            ss.ports,
            [Port {
                name: "http".into(),
                protocol: "TCP".into(),
                port: 80
            }]
        );
        // No service-name label: the slice backs no Service.
        assert!(eps_from(&slice(None, &[])).is_none());
        // No ports: the sentinel.
        let mut s = slice(Some("web"), &[]);
        s.ports.clear();
        assert_eq!(eps_from(&s).unwrap().1.subsets[0].ports[0].port, -1);
    }

    #[test]
    fn a_services_slices_merge_and_move_with_their_label() {
        let mut ix = Index::default();
        ix.set_slice("default", "web-a", Some(("web", eps(&["10.0.0.1"]))));
        ix.set_slice("default", "web-b", Some(("web", eps(&["10.0.0.2"]))));
        let ips = |ix: &Index, svc: &str| -> Vec<String> {
            ix.endpoint_subsets("default", svc)
                .flat_map(|s| s.addresses.iter().map(|a| a.ip.to_string()))
                .collect()
        };
        assert_eq!(ips(&ix, "web"), ["10.0.0.1", "10.0.0.2"]);
        // The label moves web-b to another Service.
        ix.set_slice("default", "web-b", Some(("api", eps(&["10.0.0.2"]))));
        assert_eq!(ips(&ix, "web"), ["10.0.0.1"]);
        assert_eq!(ips(&ix, "api"), ["10.0.0.2"]);
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(&*ix.endpoints_by_ip(&ip2)[0].1, "api");
        ix.set_slice("default", "web-a", None);
        ix.set_slice("default", "web-b", None);
        assert!(ips(&ix, "web").is_empty() && ips(&ix, "api").is_empty());
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
