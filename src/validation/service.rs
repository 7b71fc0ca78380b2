//! Service specs (ValidateService).
use super::*;

pub(super) fn validate_service_spec(e: &mut Errs, spec: &v1::ServiceSpec) {
    let ty = spec.r#type.as_str();
    one_of(
        e,
        "spec.type",
        ty,
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        true,
    );
    let headless = spec.cluster_ip == "None";
    if ty == "ExternalName" {
        // ValidateServiceCreate: no IP family fields on an ExternalName Service (its selector,
        // if any, is allowed and ignored: the endpoint controllers skip ExternalName).
        if !spec.ip_families.is_empty() {
            forbidden(
                e,
                "spec.ipFamilies",
                "may not be set for ExternalName services",
            );
        }
        if spec.ip_family_policy.is_some() {
            forbidden(
                e,
                "spec.ipFamilyPolicy",
                "may not be set for ExternalName services",
            );
        }
        if spec.external_name.is_empty() {
            required(e, "spec.externalName", "");
        } else {
            check(
                e,
                "spec.externalName",
                &spec.external_name,
                is_dns1123_subdomain(spec.external_name.trim_end_matches('.')),
            );
        }
    } else if spec.ports.is_empty() && !headless {
        required(e, "spec.ports", "");
    }
    if headless && matches!(ty, "NodePort" | "LoadBalancer") {
        invalid_str(
            e,
            "spec.clusterIP",
            "None",
            &format!("may not be set to 'None' for {ty} services"),
        );
    } else if !spec.cluster_ip.is_empty()
        && !headless
        && spec.cluster_ip.parse::<std::net::IpAddr>().is_err()
    {
        invalid_str(
            e,
            "spec.clusterIP",
            &spec.cluster_ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        );
    }
    one_of(
        e,
        "spec.sessionAffinity",
        &spec.session_affinity,
        &["ClientIP", "None"],
        true,
    );
    if let Some(c) = &spec.session_affinity_config {
        if spec.session_affinity != "ClientIP" {
            forbidden(
                e,
                "spec.sessionAffinityConfig".to_string(),
                &format!(
                    "must not be set when session affinity is {}",
                    spec.session_affinity
                ),
            );
        } else if let Some(t) = c.client_ip.as_ref().and_then(|c| c.timeout_seconds) {
            if !(1..=86400).contains(&t) {
                invalid(
                    e,
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds".to_string(),
                    t,
                    "must be greater than 0 and less than 86400",
                );
            }
        }
    }
    let mut names = BTreeSet::new();
    let mut port_protocols = BTreeSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        if spec.ports.len() > 1 && port.name.is_empty() {
            required(e, format!("{p}.name"), "");
        } else if !port.name.is_empty() {
            check(
                e,
                &format!("{p}.name"),
                &port.name,
                is_dns1123_label(&port.name),
            );
            if !names.insert(port.name.clone()) {
                duplicate(e, format!("{p}.name"), &port.name);
            }
        }
        validate_port_number(e, &format!("{p}.port"), port.port);
        one_of(e, &format!("{p}.protocol"), &port.protocol, PROTOCOLS, true);
        if !port_protocols.insert((port.port, port.protocol.clone())) {
            duplicate(e, p.clone(), &format!("{}/{}", port.port, port.protocol));
        }
        if let Some(t) = &port.target_port {
            if t.is_string {
                if !t.str_val.is_empty() {
                    check(
                        e,
                        &format!("{p}.targetPort"),
                        &t.str_val,
                        is_valid_port_name(&t.str_val),
                    );
                }
            } else if t.int_val != 0 {
                validate_port_number(e, &format!("{p}.targetPort"), t.int_val);
            }
        }
        if port.node_port != 0 {
            if matches!(ty, "ClusterIP" | "" | "ExternalName") {
                forbidden(
                    e,
                    format!("{p}.nodePort"),
                    &format!(
                        "may not be used when `type` is '{}'",
                        if ty.is_empty() { "ClusterIP" } else { ty }
                    ),
                );
            } else if !(30000..=32767).contains(&port.node_port) {
                invalid(e, format!("{p}.nodePort"), port.node_port, "provided port is not in the valid range. The range of valid ports is 30000-32767");
            }
        }
    }
    validate_labels(e, "spec.selector", &spec.selector);
    if !spec.external_traffic_policy.is_empty() {
        if matches!(ty, "NodePort" | "LoadBalancer") {
            one_of(
                e,
                "spec.externalTrafficPolicy",
                &spec.external_traffic_policy,
                &["Cluster", "Local"],
                false,
            );
        } else {
            invalid_str(
                e,
                "spec.externalTrafficPolicy",
                &spec.external_traffic_policy,
                "may only be set for externally-accessible services",
            );
        }
    }
    if let Some(p) = &spec.internal_traffic_policy {
        one_of(
            e,
            "spec.internalTrafficPolicy",
            p,
            &["Cluster", "Local"],
            false,
        );
    }
}
