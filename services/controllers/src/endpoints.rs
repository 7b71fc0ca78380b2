//! The Endpoints of a Service, as upstream's `pkg/controller/endpoint` computes them (pure: a
//! Service and its selected pods in, the desired Endpoints out).
//!
//! - Pods that are terminal, have no IP, or are terminating (unless the Service publishes
//!   not-ready addresses) are left out ([`should_pod_be_in_endpoints`]).
//! - Each pod gives one address per Service port, with the targetPort resolved on that pod
//!   ([`find_port`]: a number as is, a name looked up in the pod's container ports of the same
//!   protocol); a port that does not resolve on a pod leaves that pod out for that port.
//! - Ready pods (or every pod with `publishNotReadyAddresses`) go under `addresses`, the others
//!   under `notReadyAddresses`; headless Services without ports get address-only subsets.
//! - `hostname` is the pod's `spec.hostname` when its `spec.subdomain` names the Service.
//! - Subsets are repacked (`RepackSubsets`): addresses sharing the same ports form one subset.
//! - Over 1,000 addresses the Endpoints are truncated (proportionally per subset, not-ready ones
//!   first) and annotated `endpoints.kubernetes.io/over-capacity: truncated`.
use std::collections::{BTreeMap, BTreeSet};

use coxswain_api::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, ObjectReference, Pod,
    Service, ServicePort,
};

/// The annotation on Endpoints truncated to [`MAX_CAPACITY`] addresses.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
/// The label on Endpoints and EndpointSlices of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Most addresses (ready and not ready) one Endpoints object holds.
pub const MAX_CAPACITY: usize = 1000;

/// The pod's phase is Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().map(|s| s.phase.as_str()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    crate::replicaset::is_pod_ready(pod)
}

/// The pod is being deleted.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty())
}

/// The pod's IP (status.podIP, else the first of status.podIPs); empty without one.
pub fn pod_ip(pod: &Pod) -> &str {
    let Some(st) = pod.status.as_ref() else {
        return "";
    };
    if !st.pod_ip.is_empty() {
        return &st.pod_ip;
    }
    st.pod_ips.first().map_or("", |p| p.ip.as_str())
}

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an IP, and not terminating unless
/// `include_terminating`.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    !is_terminal(pod) && !pod_ip(pod).is_empty() && (include_terminating || !is_terminating(pod))
}

/// Upstream's `ShouldSetHostname`: the pod has a hostname and its subdomain is the Service's
/// name, in the Service's namespace.
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let (Some(spec), Some(pm), Some(sm)) = (
        pod.spec.as_ref(),
        pod.metadata.as_ref(),
        svc.metadata.as_ref(),
    ) else {
        return false;
    };
    !spec.hostname.is_empty() && spec.subdomain == sm.name && pm.namespace == sm.namespace
}

/// Upstream's `FindPort`: the number a Service port's targetPort means on this pod.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let Some(t) = sp.target_port.as_ref() else {
        return Some(sp.port);
    };
    if !t.is_string {
        return Some(if t.int_val == 0 { sp.port } else { t.int_val });
    }
    let spec = pod.spec.as_ref()?;
    let proto = if sp.protocol.is_empty() {
        "TCP"
    } else {
        sp.protocol.as_str()
    };
    let sidecars = spec
        .init_containers
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter())
        .find(|p| {
            let pp = if p.protocol.is_empty() {
                "TCP"
            } else {
                p.protocol.as_str()
            };
            p.name == t.str_val && pp == proto
        })
        .map(|p| p.container_port)
}

/// The Service selects pods (it has a non-empty selector and is not ExternalName): only then
/// do the controllers manage its Endpoints and EndpointSlices.
pub fn is_managed(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .is_some_and(|s| !s.selector.is_empty() && s.r#type != "ExternalName")
}

/// The Service is headless (clusterIP None).
pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| s.cluster_ip == "None")
}

/// A pod as a target reference.
pub fn target_ref(pod: &Pod) -> ObjectReference {
    let m = pod.metadata.clone().unwrap_or_default();
    ObjectReference {
        kind: "Pod".into(),
        namespace: m.namespace,
        name: m.name,
        uid: m.uid,
        ..Default::default()
    }
}

fn address(pod: &Pod, svc: &Service) -> EndpointAddress {
    let node = pod
        .spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default();
    EndpointAddress {
        ip: pod_ip(pod).to_string(),
        hostname: if should_set_hostname(pod, svc) {
            pod.spec
                .as_ref()
                .map(|s| s.hostname.clone())
                .unwrap_or_default()
        } else {
            String::new()
        },
        node_name: Some(node).filter(|n| !n.is_empty()),
        target_ref: Some(target_ref(pod)),
    }
}

/// The subsets of a Service over its selected pods (any order), repacked and sorted.
pub fn subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let tolerate = spec.publish_not_ready_addresses;
    // (port or None for "no ports") → address key → (address, ready)
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddrKey, bool>> = BTreeMap::new();
    let mut addrs: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, tolerate) {
            continue;
        }
        let a = address(pod, svc);
        let key = AddrKey::of(&a);
        let ready = tolerate || is_ready(pod);
        let mut put = |port: Option<PortKey>| {
            let e = by_port
                .entry(port)
                .or_default()
                .entry(key.clone())
                .or_insert(ready);
            *e = *e || ready;
        };
        if spec.ports.is_empty() {
            if spec.cluster_ip == "None" {
                put(None);
            }
        } else {
            for sp in &spec.ports {
                if let Some(n) = find_port(pod, sp) {
                    put(Some(PortKey {
                        name: sp.name.clone(),
                        port: n,
                        protocol: if sp.protocol.is_empty() {
                            "TCP".into()
                        } else {
                            sp.protocol.clone()
                        },
                        app_protocol: sp.app_protocol.clone(),
                    }));
                }
            }
        }
        addrs.entry(key).or_insert(a);
    }
    repack(by_port, &addrs)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

/// Addresses are told apart by IP and target uid (upstream's addressKey).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AddrKey {
    ip: String,
    uid: String,
}

impl AddrKey {
    fn of(a: &EndpointAddress) -> AddrKey {
        AddrKey {
            ip: a.ip.clone(),
            uid: a
                .target_ref
                .as_ref()
                .map(|r| r.uid.clone())
                .unwrap_or_default(),
        }
    }
}

/// Upstream's `RepackSubsets`: group ports by the exact set of (address, ready) offering them;
/// each group is one subset. Addresses sorted by (IP, uid), ports by (name, port, protocol),
/// subsets by their first address.
fn repack(
    by_port: BTreeMap<Option<PortKey>, BTreeMap<AddrKey, bool>>,
    addrs: &BTreeMap<AddrKey, EndpointAddress>,
) -> Vec<EndpointSubset> {
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Vec<PortKey>> = BTreeMap::new();
    for (port, set) in by_port {
        let g = groups.entry(set.into_iter().collect()).or_default();
        if let Some(p) = port {
            g.push(p);
        }
    }
    let mut out: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(set, ports)| {
            let mut ss = EndpointSubset::default();
            for (k, ready) in set {
                let Some(a) = addrs.get(&k) else { continue };
                if ready {
                    ss.addresses.push(a.clone());
                } else {
                    ss.not_ready_addresses.push(a.clone());
                }
            }
            ss.ports = ports
                .into_iter()
                .map(|p| EndpointPort {
                    name: p.name,
                    port: p.port,
                    protocol: p.protocol,
                    app_protocol: p.app_protocol,
                })
                .collect();
            ss
        })
        .collect();
    out.sort_by_key(subset_sort_key);
    out
}

fn subset_sort_key(s: &EndpointSubset) -> (String, String, i32) {
    let first = s.addresses.first().or(s.not_ready_addresses.first());
    (
        first.map(|a| a.ip.clone()).unwrap_or_default(),
        s.ports.first().map(|p| p.name.clone()).unwrap_or_default(),
        s.ports.first().map_or(0, |p| p.port),
    )
}

fn count(subsets: &[EndpointSubset]) -> (usize, usize) {
    subsets.iter().fold((0, 0), |(r, n), s| {
        (r + s.addresses.len(), n + s.not_ready_addresses.len())
    })
}

/// Upstream's `truncateEndpoints`: keep at most [`MAX_CAPACITY`] addresses, proportionally per
/// subset — all ready ones first (dropping not-ready ones), or every not-ready one beyond the
/// ready. True when it truncated.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let (ready, not_ready) = count(subsets);
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut can_add = max;
    for s in subsets.iter_mut() {
        let n = if truncate_ready {
            s.addresses.len()
        } else {
            s.not_ready_addresses.len()
        };
        let to_add = ((n as f64 / total as f64) * max as f64).ceil() as usize;
        let to_add = to_add.min(can_add);
        if truncate_ready {
            s.addresses.truncate(to_add);
            s.not_ready_addresses.clear();
            can_add -= s.addresses.len();
        } else {
            s.not_ready_addresses.truncate(to_add);
            can_add -= s.not_ready_addresses.len();
        }
    }
    true
}

/// The Endpoints the controller wants for `svc` given the current object (None when there is
/// none yet): labels from the Service (plus the headless label), the over-capacity annotation
/// when truncated. Returns None when `current` is already as desired.
pub fn desired(svc: &Service, pods: &[&Pod], current: Option<&Endpoints>) -> Option<Endpoints> {
    let sm = svc.metadata.clone().unwrap_or_default();
    let mut subsets = subsets(svc, pods);
    let truncated = truncate(&mut subsets);
    // A truncated subset may have lost all its addresses.
    subsets.retain(|s| !s.addresses.is_empty() || !s.not_ready_addresses.is_empty());
    let mut labels = sm.labels.clone();
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    let mut new = current.cloned().unwrap_or_else(|| Endpoints {
        api_version: "v1".into(),
        kind: "Endpoints".into(),
        metadata: Some(ObjectMeta {
            name: sm.name.clone(),
            namespace: sm.namespace.clone(),
            ..Default::default()
        }),
        subsets: vec![],
    });
    let m = new.metadata.get_or_insert_with(Default::default);
    m.labels = labels;
    if truncated {
        m.annotations
            .insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
    } else {
        m.annotations.remove(OVER_CAPACITY_ANNOTATION);
    }
    new.subsets = subsets;
    if current.is_some_and(|c| *c == new) {
        return None;
    }
    Some(new)
}

/// The set of `(namespace, name)` of Services whose selector matches `labels` among `services`.
pub fn selecting<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    labels: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    services
        .into_iter()
        .filter(|s| is_managed(s) && selector_matches(s, labels))
        .filter_map(|s| s.metadata.as_ref().map(|m| m.name.clone()))
        .collect()
}

/// The Service's (equality) selector matches `labels`.
pub fn selector_matches(svc: &Service, labels: &BTreeMap<String, String>) -> bool {
    svc.spec.as_ref().is_some_and(|s| {
        !s.selector.is_empty() && s.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    })
}

/// Pods and Services for the controllers' table tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use coxswain_api::v1::{
        Condition, Container, ContainerPort, IntOrString, ObjectMeta, Pod, PodSpec, PodStatus,
        Service, ServicePort, ServiceSpec,
    };

    pub(crate) fn pod(name: &str, ip: &str, ready: bool) -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("uid-{name}"),
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                node_name: "node1".into(),
                containers: vec![Container {
                    name: "c".into(),
                    ports: vec![ContainerPort {
                        name: "http".into(),
                        container_port: 8080,
                        protocol: "TCP".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: "Running".into(),
                pod_ip: ip.into(),
                conditions: vec![Condition {
                    r#type: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(crate) fn svc(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                namespace: "default".into(),
                labels: [("tier".to_string(), "front".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(ServiceSpec {
                selector: [("app".to_string(), "web".to_string())].into(),
                ports,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(crate) fn port(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: name.into(),
            port,
            protocol: "TCP".into(),
            target_port: Some(target),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{pod, port, svc};
    use super::*;
    use coxswain_api::v1::IntOrString;

    fn ips(a: &[EndpointAddress]) -> Vec<&str> {
        a.iter().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_pods_are_addresses_and_the_others_not_ready_addresses() {
        let s = svc(vec![port("", 80, IntOrString::int(8080))]);
        let (a, b, c) = (
            pod("a", "127.1.0.2", true),
            pod("b", "127.1.0.3", false),
            pod("c", "127.1.0.1", true),
        );
        let ss = subsets(&s, &[&a, &b, &c]);
        assert_eq!(ss.len(), 1, "{ss:?}");
        assert_eq!(ips(&ss[0].addresses), ["127.1.0.1", "127.1.0.2"]);
        assert_eq!(ips(&ss[0].not_ready_addresses), ["127.1.0.3"]);
        assert_eq!(ss[0].ports[0].port, 8080);
        let addr = &ss[0].addresses[0];
        assert_eq!(addr.node_name.as_deref(), Some("node1"));
        let r = addr.target_ref.as_ref().expect("targetRef");
        assert_eq!(
            (r.kind.as_str(), r.name.as_str(), r.uid.as_str()),
            ("Pod", "c", "uid-c")
        );

        let mut s2 = s.clone();
        s2.spec.as_mut().expect("spec").publish_not_ready_addresses = true;
        let ss = subsets(&s2, &[&a, &b]);
        assert_eq!(ips(&ss[0].addresses), ["127.1.0.2", "127.1.0.3"]);
        assert!(ss[0].not_ready_addresses.is_empty());
    }

    #[test]
    fn terminating_terminal_and_ipless_pods_leave() {
        let s = svc(vec![port("", 80, IntOrString::int(80))]);
        let mut t = pod("t", "127.1.0.9", true);
        t.metadata.as_mut().expect("m").deletion_timestamp = "2026-01-01T00:00:00Z".into();
        let mut done = pod("d", "127.1.0.8", false);
        done.status.as_mut().expect("st").phase = "Succeeded".into();
        let noip = pod("n", "", false);
        let ok = pod("ok", "127.1.0.1", true);
        let ss = subsets(&s, &[&t, &done, &noip, &ok]);
        assert_eq!(ss.len(), 1);
        assert_eq!(ips(&ss[0].addresses), ["127.1.0.1"]);
        assert!(ss[0].not_ready_addresses.is_empty());
        // publishNotReadyAddresses keeps terminating pods.
        let mut s2 = s.clone();
        s2.spec.as_mut().expect("spec").publish_not_ready_addresses = true;
        assert_eq!(
            ips(&subsets(&s2, &[&t, &ok])[0].addresses),
            ["127.1.0.1", "127.1.0.9"]
        );
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let s = svc(vec![port("web", 80, IntOrString::string("http"))]);
        let a = pod("a", "127.1.0.1", true);
        let mut b = pod("b", "127.1.0.2", true);
        b.spec.as_mut().expect("spec").containers[0].ports[0].container_port = 9090;
        let mut c = pod("c", "127.1.0.3", true);
        c.spec.as_mut().expect("spec").containers[0].ports.clear();
        let ss = subsets(&s, &[&a, &b, &c]);
        assert_eq!(ss.len(), 2, "{ss:?}");
        assert_eq!(ips(&ss[0].addresses), ["127.1.0.1"]);
        assert_eq!(ss[0].ports[0].port, 8080);
        assert_eq!(ss[0].ports[0].name, "web");
        assert_eq!(ips(&ss[1].addresses), ["127.1.0.2"]);
        assert_eq!(ss[1].ports[0].port, 9090);
        // A UDP port of the same name does not match a TCP service port.
        let mut d = pod("d", "127.1.0.4", true);
        d.spec.as_mut().expect("spec").containers[0].ports[0].protocol = "UDP".into();
        assert!(subsets(&s, &[&d]).is_empty());
    }

    #[test]
    fn ports_offered_by_the_same_addresses_share_a_subset() {
        let s = svc(vec![
            port("a", 80, IntOrString::int(8080)),
            port("b", 81, IntOrString::int(8081)),
        ]);
        let (p, q) = (pod("p", "127.1.0.1", true), pod("q", "127.1.0.2", false));
        let ss = subsets(&s, &[&p, &q]);
        assert_eq!(ss.len(), 1);
        assert_eq!(ss[0].ports.len(), 2);
        assert_eq!(ips(&ss[0].addresses), ["127.1.0.1"]);
        assert_eq!(ips(&ss[0].not_ready_addresses), ["127.1.0.2"]);
    }

    #[test]
    fn headless_services_give_hostnames_and_portless_subsets() {
        let mut s = svc(vec![]);
        s.spec.as_mut().expect("spec").cluster_ip = "None".into();
        let mut a = pod("web-0", "127.1.0.1", true);
        let sp = a.spec.as_mut().expect("spec");
        sp.hostname = "web-0".into();
        sp.subdomain = "web".into();
        let mut b = pod("other", "127.1.0.2", true);
        let sp = b.spec.as_mut().expect("spec");
        sp.hostname = "other".into();
        sp.subdomain = "elsewhere".into();
        let ss = subsets(&s, &[&a, &b]);
        assert_eq!(ss.len(), 1);
        assert!(ss[0].ports.is_empty());
        assert_eq!(ss[0].addresses[0].hostname, "web-0");
        assert_eq!(ss[0].addresses[1].hostname, "");
        let ep = desired(&s, &[&a], None).expect("new");
        assert_eq!(
            ep.metadata.as_ref().expect("m").labels.get(HEADLESS_LABEL),
            Some(&String::new())
        );
        // A non-headless service without ports has no subsets.
        assert!(subsets(&svc(vec![]), &[&a]).is_empty());
    }

    #[test]
    fn over_capacity_is_truncated_and_annotated() {
        let s = svc(vec![port("", 80, IntOrString::int(80))]);
        let pods: Vec<Pod> = (0..1200)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("127.2.{}.{}", i / 250, i % 250 + 1),
                    i % 3 != 0,
                )
            })
            .collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let ep = desired(&s, &refs, None).expect("new");
        let (r, n) = count(&ep.subsets);
        assert_eq!((r, n), (800, 200), "ready kept, not-ready truncated to fit");
        assert_eq!(
            ep.metadata
                .as_ref()
                .expect("m")
                .annotations
                .get(OVER_CAPACITY_ANNOTATION),
            Some(&"truncated".to_string())
        );
        // Back under capacity: the annotation goes.
        let ep2 = desired(&s, &refs[..10], Some(&ep)).expect("changed");
        assert!(ep2.metadata.as_ref().expect("m").annotations.is_empty());
        // More than 1000 ready: ready ones truncated, not-ready dropped.
        let mut ss = vec![EndpointSubset {
            addresses: vec![EndpointAddress::default(); 1500],
            not_ready_addresses: vec![EndpointAddress::default(); 10],
            ports: vec![],
        }];
        assert!(truncate(&mut ss));
        assert_eq!(count(&ss), (1000, 0));
    }

    #[test]
    fn desired_is_none_when_nothing_changed() {
        let s = svc(vec![port("", 80, IntOrString::int(80))]);
        let a = pod("a", "127.1.0.1", true);
        let ep = desired(&s, &[&a], None).expect("new");
        assert_eq!(
            ep.metadata.as_ref().expect("m").labels.get("tier"),
            Some(&"front".into())
        );
        assert!(desired(&s, &[&a], Some(&ep)).is_none());
        let b = pod("a", "127.1.0.1", false);
        let ep2 = desired(&s, &[&b], Some(&ep)).expect("readiness flip");
        assert!(ep2.subsets[0].addresses.is_empty());
        assert_eq!(ips(&ep2.subsets[0].not_ready_addresses), ["127.1.0.1"]);
    }

    #[test]
    fn selectorless_and_external_name_services_are_not_managed() {
        let mut s = svc(vec![]);
        assert!(is_managed(&s));
        s.spec.as_mut().expect("spec").selector.clear();
        assert!(!is_managed(&s));
        let mut e = svc(vec![]);
        e.spec.as_mut().expect("spec").r#type = "ExternalName".into();
        assert!(!is_managed(&e));
    }
}
