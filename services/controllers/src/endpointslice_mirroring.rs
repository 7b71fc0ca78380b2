//! The EndpointSlices mirrored from user-managed Endpoints, as upstream's
//! `pkg/controller/endpointslicemirroring` computes them (pure). Consumers of slices (the service
//! proxy) then see selectorless Services' hand-made Endpoints too.
//!
//! - Mirrored: the Endpoints of a Service that exists and has no selector, unless labelled
//!   `endpointslice.kubernetes.io/skip-mirror: "true"` (the `kubernetes` Service's are).
//! - One slice per address type and port set; `addresses` become `ready: true`,
//!   `notReadyAddresses` `ready: false`; at most 1,000 addresses per subset (ready first).
//! - Labels: the Endpoints' own (but service-name/managed-by), `kubernetes.io/service-name` and
//!   `endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io`;
//!   annotations copied but the trigger time and kubectl's last-applied configuration. The
//!   Endpoints own the slices (garbage collection).
use std::collections::{BTreeMap, BTreeSet};

use coxswain_api::v1::{
    Endpoint, EndpointAddress, EndpointConditions, EndpointSlice, EndpointSlicePort, Endpoints,
    ObjectMeta, OwnerReference, Service,
};

use crate::endpointslice::{Plan, PortMapKey, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};

/// The mirroring controller's managed-by value.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// Endpoints labelled with this ("true") are not mirrored.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Addresses mirrored per subset at most (`--mirroring-max-endpoints-per-subset`).
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

const DROPPED_ANNOTATIONS: [&str; 2] = [
    "endpoints.kubernetes.io/last-change-trigger-time",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// The Endpoints of `svc` should be mirrored.
pub fn should_mirror(svc: &Service, eps: &Endpoints) -> bool {
    let selectorless = svc.spec.as_ref().is_none_or(|s| s.selector.is_empty());
    let skip = eps
        .metadata
        .as_ref()
        .and_then(|m| m.labels.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true");
    selectorless && !skip
}

fn address_type(ip: &str) -> Option<&'static str> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(_) => Some("IPv4"),
        std::net::IpAddr::V6(_) => Some("IPv6"),
    }
}

fn to_endpoint(a: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![a.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: None,
            terminating: None,
        }),
        hostname: Some(a.hostname.clone()).filter(|h| !h.is_empty()),
        target_ref: a.target_ref.clone(),
        node_name: a.node_name.clone().filter(|n| !n.is_empty()),
        zone: None,
        hints: None,
        deprecated_topology: Default::default(),
    }
}

/// The mirrored endpoints of `eps`, per slice group, in the Endpoints' order, each address once.
pub fn desired(eps: &Endpoints) -> BTreeMap<PortMapKey, Vec<Endpoint>> {
    let mut out: BTreeMap<PortMapKey, Vec<Endpoint>> = BTreeMap::new();
    let mut seen: BTreeSet<(PortMapKey, String)> = BTreeSet::new();
    for subset in &eps.subsets {
        let ports: Vec<EndpointSlicePort> = subset
            .ports
            .iter()
            .map(|p| EndpointSlicePort {
                name: Some(p.name.clone()),
                port: Some(p.port),
                protocol: Some(if p.protocol.is_empty() {
                    "TCP".into()
                } else {
                    p.protocol.clone()
                }),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let ready = subset.addresses.iter().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().map(|a| (a, false));
        for (a, is_ready) in ready.chain(not_ready).take(MAX_ENDPOINTS_PER_SUBSET) {
            let Some(t) = address_type(&a.ip) else {
                continue;
            };
            let key = PortMapKey::of_ports(t, &ports);
            if seen.insert((key.clone(), a.ip.clone())) {
                out.entry(key).or_default().push(to_endpoint(a, is_ready));
            }
        }
    }
    out
}

fn labels(eps: &Endpoints) -> BTreeMap<String, String> {
    let m = eps.metadata.clone().unwrap_or_default();
    let mut l: BTreeMap<String, String> = m
        .labels
        .into_iter()
        .filter(|(k, _)| k != SERVICE_NAME_LABEL && k != MANAGED_BY_LABEL)
        .collect();
    l.insert(SERVICE_NAME_LABEL.into(), m.name);
    l.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    l
}

fn annotations(eps: &Endpoints) -> BTreeMap<String, String> {
    eps.metadata
        .as_ref()
        .map(|m| {
            m.annotations
                .iter()
                .filter(|(k, _)| !DROPPED_ANNOTATIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn ports_of(key: &PortMapKey) -> Vec<EndpointSlicePort> {
    key.ports
        .iter()
        .map(|(n, p, pr, ap)| EndpointSlicePort {
            name: Some(n.clone()),
            port: Some(*p),
            protocol: Some(pr.clone()),
            app_protocol: ap.clone(),
        })
        .collect()
}

fn new_slice(eps: &Endpoints, key: &PortMapKey, endpoints: Vec<Endpoint>) -> EndpointSlice {
    let m = eps.metadata.clone().unwrap_or_default();
    EndpointSlice {
        api_version: "discovery.k8s.io/v1".into(),
        kind: "EndpointSlice".into(),
        metadata: Some(ObjectMeta {
            generate_name: format!("{}-", m.name),
            namespace: m.namespace.clone(),
            labels: labels(eps),
            annotations: annotations(eps),
            owner_references: vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Endpoints".into(),
                name: m.name.clone(),
                uid: m.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            ..Default::default()
        }),
        address_type: key.address_type.clone(),
        endpoints,
        ports: ports_of(key),
    }
}

/// The writes that make `existing` (the slices mirrored for this Service) mirror `eps`; None
/// for `eps` deletes them all.
pub fn reconcile(eps: Option<&Endpoints>, existing: &[&EndpointSlice]) -> Plan {
    let mut plan = Plan::default();
    let mut want = eps.map(desired).unwrap_or_default();
    let mut sorted: Vec<&EndpointSlice> = existing.to_vec();
    sorted.sort_by_key(|s| s.metadata.as_ref().map(|m| m.name.clone()));
    for s in sorted {
        let key = PortMapKey::of_ports(&s.address_type, &s.ports);
        let (Some(eps), Some(endpoints)) = (eps, want.remove(&key)) else {
            plan.delete.push(s.clone());
            continue;
        };
        let m = s.metadata.clone().unwrap_or_default();
        let (l, a) = (labels(eps), annotations(eps));
        if s.endpoints != endpoints || m.labels != l || m.annotations != a {
            let mut n = s.clone();
            n.endpoints = endpoints;
            let nm = n.metadata.get_or_insert_with(Default::default);
            nm.labels = l;
            nm.annotations = a;
            plan.update.push(n);
        }
    }
    if let Some(eps) = eps {
        for (key, endpoints) in want {
            plan.create.push(new_slice(eps, &key, endpoints));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(v: serde_json::Value) -> Endpoints {
        serde_json::from_value(v).expect("endpoints")
    }

    fn named(mut s: EndpointSlice, name: &str) -> EndpointSlice {
        s.metadata.get_or_insert_with(Default::default).name = name.into();
        s
    }

    #[test]
    fn ready_and_not_ready_addresses_become_one_slice_per_port_set() {
        let e = eps(serde_json::json!({
            "metadata": {"name": "db", "namespace": "default", "uid": "u1",
                         "labels": {"team": "a"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "x": "y"}},
            "subsets": [
                {"addresses": [{"ip": "127.10.1.5", "nodeName": "node1", "hostname": "db-0"}],
                 "notReadyAddresses": [{"ip": "127.10.1.6"}],
                 "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]},
                {"addresses": [{"ip": "127.10.2.5"}, {"ip": "127.10.1.5"}, {"ip": "not-an-ip"}],
                 "ports": [{"name": "sql", "port": 5432}]},
                {"addresses": [{"ip": "::1"}],
                 "ports": [{"name": "sql", "port": 5432}]}
            ]
        }));
        let plan = reconcile(Some(&e), &[]);
        assert_eq!(plan.create.len(), 2, "IPv4 and IPv6");
        let v4 = &plan.create[0];
        assert_eq!(v4.address_type, "IPv4");
        let ips: Vec<(&str, Option<bool>)> = v4
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.addresses[0].as_str(),
                    e.conditions.as_ref().and_then(|c| c.ready),
                )
            })
            .collect();
        assert_eq!(
            ips,
            vec![
                ("127.10.1.5", Some(true)),
                ("127.10.1.6", Some(false)),
                ("127.10.2.5", Some(true))
            ],
            "the same port set merges, an address once, invalid IPs skipped"
        );
        assert_eq!(v4.endpoints[0].hostname.as_deref(), Some("db-0"));
        assert_eq!(v4.endpoints[0].node_name.as_deref(), Some("node1"));
        let m = v4.metadata.as_ref().expect("meta");
        assert_eq!(
            m.labels.get(SERVICE_NAME_LABEL).map(String::as_str),
            Some("db")
        );
        assert_eq!(
            m.labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert_eq!(m.labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(m.annotations.len(), 1, "last-applied is not copied");
        assert_eq!(m.owner_references[0].kind, "Endpoints");
        assert_eq!(m.generate_name, "db-");
        assert_eq!(v4.ports[0].protocol.as_deref(), Some("TCP"));

        // Unchanged: nothing to write. A change: that slice updated; gone: deleted.
        let existing: Vec<EndpointSlice> = plan
            .create
            .iter()
            .enumerate()
            .map(|(i, s)| named(s.clone(), &format!("db-{i}")))
            .collect();
        let refs: Vec<&EndpointSlice> = existing.iter().collect();
        assert!(reconcile(Some(&e), &refs).is_empty());
        let mut e2 = e.clone();
        e2.subsets.truncate(2);
        e2.subsets[1].addresses.remove(0);
        let p = reconcile(Some(&e2), &refs);
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].endpoints.len(), 2);
        assert_eq!(p.delete.len(), 1, "the IPv6 slice");
        assert_eq!(reconcile(None, &refs).delete.len(), 2);
    }

    #[test]
    fn only_selectorless_services_without_skip_mirror_are_mirrored() {
        let svc = |sel: bool| -> Service {
            serde_json::from_value(if sel {
                serde_json::json!({"spec": {"selector": {"app": "x"}}})
            } else {
                serde_json::json!({"spec": {}})
            })
            .expect("svc")
        };
        let plain = eps(serde_json::json!({"metadata": {"name": "a"}}));
        let skip = eps(
            serde_json::json!({"metadata": {"name": "a", "labels": {SKIP_MIRROR_LABEL: "true"}}}),
        );
        assert!(should_mirror(&svc(false), &plain));
        assert!(!should_mirror(&svc(true), &plain));
        assert!(!should_mirror(&svc(false), &skip));
    }

    #[test]
    fn at_most_1000_addresses_per_subset() {
        let addrs: Vec<serde_json::Value> = (0..1200)
            .map(|i| serde_json::json!({"ip": format!("10.0.{}.{}", i / 250, i % 250 + 1)}))
            .collect();
        let e = eps(serde_json::json!({"metadata": {"name": "big"},
            "subsets": [{"addresses": addrs, "ports": [{"port": 80}]}]}));
        let d = desired(&e);
        assert_eq!(d.values().map(Vec::len).sum::<usize>(), 1000);
    }
}
