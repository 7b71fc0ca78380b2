//! EndpointSlice (`discovery.k8s.io/v1`) validation, as upstream's
//! `pkg/apis/discovery/validation`: addressType, at most 1,000 endpoints of 1–100 addresses each
//! (IPs of the slice's family, or FQDNs), node names, hostnames, topology labels, hints, and at
//! most 20,000 ports with unique names and a protocol.
use std::collections::BTreeSet;

use super::{
    check, duplicate, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, required,
    unsupported, validate_labels, validate_port_number, Errs, PROTOCOLS,
};
use crate::error::FieldError;
use crate::v1;

/// Most endpoints in one slice.
pub const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_HINTS: usize = 8;
const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];

fn too_many(e: &mut Errs, path: impl Into<String>, n: usize, max: usize) {
    e.push(FieldError::new(
        path,
        format!("Too many: {n}: must have at most {max} items"),
    ));
}

fn invalid_q(e: &mut Errs, path: impl Into<String>, value: &str, detail: &str) {
    e.push(FieldError::new(
        path,
        format!("Invalid value: {value:?}: {detail}"),
    ));
}

pub(super) fn validate_endpoint_slice(e: &mut Errs, es: &v1::EndpointSlice) {
    let ty = es.address_type.as_str();
    if ty.is_empty() {
        required(e, "addressType", "");
    } else if !ADDRESS_TYPES.contains(&ty) {
        unsupported(e, "addressType", ty, ADDRESS_TYPES);
    }
    if es.endpoints.len() > MAX_ENDPOINTS {
        too_many(e, "endpoints", es.endpoints.len(), MAX_ENDPOINTS);
    } else {
        for (i, ep) in es.endpoints.iter().enumerate() {
            validate_endpoint(e, &format!("endpoints[{i}]"), ty, ep);
        }
    }
    if es.ports.len() > MAX_PORTS {
        too_many(e, "ports", es.ports.len(), MAX_PORTS);
        return;
    }
    let mut names = BTreeSet::new();
    for (i, p) in es.ports.iter().enumerate() {
        let path = format!("ports[{i}]");
        let name = p.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            check(e, &format!("{path}.name"), name, is_dns1123_label(name));
        }
        if !names.insert(name) {
            duplicate(e, format!("{path}.name"), name);
        }
        match p.protocol.as_deref() {
            None => required(e, format!("{path}.protocol"), ""),
            Some(pr) if !PROTOCOLS.contains(&pr) => {
                unsupported(e, format!("{path}.protocol"), pr, PROTOCOLS)
            }
            Some(_) => {}
        }
        if let Some(port) = p.port {
            validate_port_number(e, &format!("{path}.port"), port);
        }
        if let Some(ap) = p.app_protocol.as_deref() {
            check(e, &format!("{path}.appProtocol"), ap, is_qualified_name(ap));
        }
    }
}

fn validate_endpoint(e: &mut Errs, path: &str, ty: &str, ep: &v1::Endpoint) {
    let ap = format!("{path}.addresses");
    if ep.addresses.is_empty() {
        required(e, &ap, "must contain at least 1 address");
    } else if ep.addresses.len() > MAX_ADDRESSES {
        too_many(e, &ap, ep.addresses.len(), MAX_ADDRESSES);
    }
    for (j, a) in ep.addresses.iter().enumerate() {
        let p = format!("{ap}[{j}]");
        match ty {
            "IPv4" if a.parse::<std::net::Ipv4Addr>().is_err() => {
                invalid_q(e, p, a, "must be a valid IPv4 address")
            }
            "IPv6" if a.parse::<std::net::Ipv6Addr>().is_err() => {
                invalid_q(e, p, a, "must be a valid IPv6 address")
            }
            "FQDN" => {
                let msgs = is_dns1123_subdomain(a);
                if !a.contains('.') {
                    invalid_q(
                        e,
                        p,
                        a,
                        "should be a domain with at least two segments separated by dots",
                    );
                } else {
                    check(e, &p, a, msgs);
                }
            }
            _ => {}
        }
    }
    if let Some(n) = ep.node_name.as_deref() {
        check(e, &format!("{path}.nodeName"), n, is_dns1123_subdomain(n));
    }
    let tp = format!("{path}.deprecatedTopology");
    if ep.deprecated_topology.len() > MAX_TOPOLOGY_LABELS {
        too_many(e, &tp, ep.deprecated_topology.len(), MAX_TOPOLOGY_LABELS);
    }
    validate_labels(e, &tp, &ep.deprecated_topology);
    if let Some(h) = ep.hostname.as_deref() {
        check(e, &format!("{path}.hostname"), h, is_dns1123_label(h));
    }
    if let Some(h) = &ep.hints {
        let zp = format!("{path}.hints.forZones");
        if h.for_zones.len() > MAX_HINTS {
            too_many(e, &zp, h.for_zones.len(), MAX_HINTS);
        }
        let mut seen = BTreeSet::new();
        for (i, z) in h.for_zones.iter().enumerate() {
            let p = format!("{zp}[{i}].name");
            if !seen.insert(z.name.as_str()) {
                duplicate(e, p.clone(), &z.name);
            }
            check(e, &p, &z.name, super::is_valid_label_value(&z.name));
        }
        let np = format!("{path}.hints.forNodes");
        if h.for_nodes.len() > MAX_HINTS {
            too_many(e, &np, h.for_nodes.len(), MAX_HINTS);
        }
        let mut seen = BTreeSet::new();
        for (i, n) in h.for_nodes.iter().enumerate() {
            let p = format!("{np}[{i}].name");
            if !seen.insert(n.name.as_str()) {
                duplicate(e, p.clone(), &n.name);
            }
            check(e, &p, &n.name, is_dns1123_subdomain(&n.name));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::kinds::Object;

    fn parse_one(text: &str) -> Object {
        crate::manifest::parse_manifests(text)
            .expect("parses")
            .remove(0)
            .object
    }

    fn errors(text: &str) -> Vec<String> {
        let mut o = parse_one(text);
        crate::defaults::apply_defaults(&mut o);
        crate::validation::validate(&o)
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    const HEAD: &str = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s-abc\n  labels:\n    kubernetes.io/service-name: s\n";

    #[test]
    fn a_controller_written_slice_is_valid_and_ports_default_to_tcp() {
        let text = format!("{HEAD}addressType: IPv4\nendpoints:\n- addresses: [\"127.1.0.5\"]\n  conditions: {{ready: true, serving: true, terminating: false}}\n  nodeName: node1\n  hostname: web-0\n  targetRef: {{kind: Pod, name: web-0, namespace: default}}\nports:\n- name: http\n  port: 80\n");
        assert!(errors(&text).is_empty(), "{:?}", errors(&text));
        let mut o = parse_one(&text);
        crate::defaults::apply_defaults(&mut o);
        let Object::EndpointSlice(es) = o else {
            panic!("kind")
        };
        assert_eq!(es.ports[0].protocol.as_deref(), Some("TCP"));
    }

    #[test]
    fn bad_slices_name_the_field() {
        let e = errors(&format!("{HEAD}endpoints:\n- addresses: []\n"));
        assert!(
            e.contains(&"addressType: Required value".to_string()),
            "{e:?}"
        );
        assert!(
            e.contains(
                &"endpoints[0].addresses: Required value: must contain at least 1 address"
                    .to_string()
            ),
            "{e:?}"
        );
        let e = errors(&format!("{HEAD}addressType: IPv5\n"));
        assert!(
            e.iter()
                .any(|x| x.starts_with("addressType: Unsupported value: \"IPv5\"")),
            "{e:?}"
        );
        let e = errors(&format!("{HEAD}addressType: IPv4\nendpoints:\n- addresses: [\"::1\"]\nports:\n- name: a\n  port: 0\n- name: a\n  protocol: XTP\n"));
        assert!(
            e.contains(
                &"endpoints[0].addresses[0]: Invalid value: \"::1\": must be a valid IPv4 address"
                    .to_string()
            ),
            "{e:?}"
        );
        assert!(
            e.contains(&"ports[1].name: Duplicate value: \"a\"".to_string()),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|x| x.starts_with("ports[0].port: Invalid value: 0")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|x| x.starts_with("ports[1].protocol: Unsupported value: \"XTP\"")),
            "{e:?}"
        );
    }

    #[test]
    fn address_type_is_immutable() {
        let a = parse_one(&format!("{HEAD}addressType: IPv4\n"));
        let b = parse_one(&format!("{HEAD}addressType: IPv6\n"));
        let e: Vec<String> = crate::validation::validate_update(&a, &b)
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            e,
            vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
        );
    }
}
