//! Pod specs (ValidatePodSpec): volumes, containers, ports, env, resources, probes and lifecycle
//! handlers, and the pod-level fields.
use super::*;

pub(super) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
pub(super) const TAINT_EFFECTS: &[&str] = &["NoExecute", "NoSchedule", "PreferNoSchedule"];

#[derive(Default)]
pub(super) struct PodCtx<'a> {
    /// Restart policies the owner allows (empty: any of Always, OnFailure, Never).
    pub(super) restart_policies: &'a [&'a str],
    /// Volume names provided from outside the pod spec (StatefulSet claim templates).
    pub(super) extra_volumes: Vec<String>,
    /// Owner kind for "activeDeadlineSeconds in X is not Supported".
    pub(super) forbid_active_deadline: Option<&'a str>,
}

pub(super) fn validate_pod_spec(e: &mut Errs, path: &str, spec: &v1::PodSpec, ctx: &PodCtx) {
    let root = Path::Root(path);
    let path = &root;
    // Volumes.
    let mut volumes: BTreeSet<&str> = ctx.extra_volumes.iter().map(String::as_str).collect();
    let mut seen_volumes = BTreeSet::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let p = path.index("volumes", i);
        if v.name.is_empty() {
            required(e, p.field("name"), "");
        } else {
            check(e, p.field("name"), &v.name, is_dns1123_label(&v.name));
            if !seen_volumes.insert(v.name.as_str()) {
                duplicate(e, p.field("name"), &v.name);
            }
        }
        volumes.insert(v.name.as_str());
        let sources = [
            v.host_path.is_some(),
            v.empty_dir.is_some(),
            v.persistent_volume_claim.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
            v.projected.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        match sources {
            0 => required(e, p, "must specify a volume type"),
            1 => {}
            _ => forbidden(e, p, "may not specify more than 1 volume type"),
        }
        if let Some(hp) = &v.host_path {
            if hp.path.is_empty() {
                required(e, p.field("hostPath.path"), "");
            }
            if let Some(t) = &hp.r#type {
                one_of(
                    e,
                    p.field("hostPath.type"),
                    t,
                    &[
                        "",
                        "BlockDevice",
                        "CharDevice",
                        "Directory",
                        "DirectoryOrCreate",
                        "File",
                        "FileOrCreate",
                        "Socket",
                    ],
                    true,
                );
            }
        }
        if let Some(ed) = &v.empty_dir {
            one_of(
                e,
                p.field("emptyDir.medium"),
                &ed.medium,
                &["", "Memory", "HugePages"],
                true,
            );
            if !ed.size_limit.is_empty() {
                validate_quantity(e, p.field("emptyDir.sizeLimit"), &ed.size_limit);
            }
        }
        if let Some(c) = &v.persistent_volume_claim {
            if c.claim_name.is_empty() {
                required(e, p.field("persistentVolumeClaim.claimName"), "");
            }
        }
        if let Some(c) = &v.config_map {
            if c.name.is_empty() {
                required(e, p.field("configMap.name"), "");
            }
        }
        if let Some(s) = &v.secret {
            if s.secret_name.is_empty() {
                required(e, p.field("secret.secretName"), "");
            }
        }
        if let Some(pr) = &v.projected {
            projected::validate(e, &p.field("projected"), pr);
        }
    }

    // Containers.
    if spec.containers.is_empty() {
        required(e, path.field("containers"), "");
    }
    let mut names = BTreeSet::new();
    let mut port_names = BTreeSet::new();
    for (field, list) in [
        ("initContainers", &spec.init_containers),
        ("containers", &spec.containers),
    ] {
        for (i, c) in list.iter().enumerate() {
            let p = path.index(field, i);
            validate_container(
                e,
                &p,
                c,
                &volumes,
                field == "initContainers",
                &mut port_names,
            );
            if !c.name.is_empty() && !names.insert(c.name.as_str()) {
                duplicate(e, p.field("name"), &c.name);
            }
        }
    }

    // Pod-level fields.
    let restart = &spec.restart_policy;
    if ctx.restart_policies.is_empty() {
        one_of(
            e,
            path.field("restartPolicy"),
            restart,
            &["Always", "OnFailure", "Never"],
            true,
        );
    } else if restart.is_empty() {
        required(e, path.field("restartPolicy"), "");
    } else if !ctx.restart_policies.contains(&restart.as_str()) {
        unsupported(
            e,
            path.field("restartPolicy"),
            restart,
            ctx.restart_policies,
        );
    }
    one_of(
        e,
        path.field("dnsPolicy"),
        &spec.dns_policy,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        true,
    );
    if spec.dns_policy == "None" && spec.dns_config.is_none() {
        required(
            e,
            path.field("dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        );
    }
    if let Some(t) = spec.termination_grace_period_seconds {
        non_negative(e, path.field("terminationGracePeriodSeconds"), t.into());
    }
    if let Some(a) = spec.active_deadline_seconds {
        if let Some(owner) = ctx.forbid_active_deadline {
            forbidden(
                e,
                path.field("activeDeadlineSeconds"),
                &format!("activeDeadlineSeconds in {owner} is not Supported"),
            );
        } else if a < 1 {
            invalid(
                e,
                path.field("activeDeadlineSeconds"),
                a,
                "must be between 1 and 2147483647, inclusive",
            );
        }
    }
    validate_labels(e, path.field("nodeSelector"), &spec.node_selector);
    if !spec.service_account_name.is_empty() {
        check(
            e,
            path.field("serviceAccountName"),
            &spec.service_account_name,
            is_dns1123_subdomain(&spec.service_account_name),
        );
    }
    if !spec.node_name.is_empty() {
        check(
            e,
            path.field("nodeName"),
            &spec.node_name,
            is_dns1123_subdomain(&spec.node_name),
        );
    }
    if !spec.hostname.is_empty() {
        check(
            e,
            path.field("hostname"),
            &spec.hostname,
            is_dns1123_label(&spec.hostname),
        );
    }
    if !spec.subdomain.is_empty() {
        check(
            e,
            path.field("subdomain"),
            &spec.subdomain,
            is_dns1123_label(&spec.subdomain),
        );
    }
    for (i, t) in spec.tolerations.iter().enumerate() {
        validate_toleration(e, &path.index("tolerations", i), t);
    }
    if let Some(a) = &spec.affinity {
        validate_affinity(e, &path.field("affinity"), a);
    }
    for (i, c) in spec.topology_spread_constraints.iter().enumerate() {
        let p = path.index("topologySpreadConstraints", i);
        if c.max_skew <= 0 {
            invalid(
                e,
                p.field("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            );
        }
        if c.topology_key.is_empty() {
            required(e, p.field("topologyKey"), "can not be empty");
        }
        one_of(
            e,
            p.field("whenUnsatisfiable"),
            &c.when_unsatisfiable,
            &["DoNotSchedule", "ScheduleAnyway"],
            false,
        );
        // ValidatePodSpec's validateTopologySpreadConstraints: ValidateLabelSelector, invalid
        // label values included (AllowInvalidTopologySpreadConstraintLabelSelector is false).
        if let Some(s) = &c.label_selector {
            validate_label_selector(e, &p.field("labelSelector"), s);
        }
    }
    if let Some(p) = &spec.preemption_policy {
        one_of(
            e,
            path.field("preemptionPolicy"),
            p,
            &["Never", "PreemptLowerPriority"],
            false,
        );
    }
    for (name, v) in &spec.overhead {
        validate_quantity(e, path.key("overhead", name), v);
    }
}

pub(super) fn validate_container<'a>(
    e: &mut Errs,
    p: &Path<'_>,
    c: &'a v1::Container,
    volumes: &BTreeSet<&str>,
    init: bool,
    port_names: &mut BTreeSet<&'a str>,
) {
    if c.name.is_empty() {
        required(e, p.field("name"), "");
    } else {
        check(e, p.field("name"), &c.name, is_dns1123_label(&c.name));
    }
    if c.image.trim().is_empty() {
        required(e, p.field("image"), "");
    } else if c.image != c.image.trim() {
        invalid_str(
            e,
            p.field("image"),
            &c.image,
            "must not have leading or trailing whitespace",
        );
    }
    one_of(
        e,
        p.field("imagePullPolicy"),
        &c.image_pull_policy,
        &["Always", "IfNotPresent", "Never"],
        true,
    );
    one_of(
        e,
        p.field("terminationMessagePolicy"),
        &c.termination_message_policy,
        &["File", "FallbackToLogsOnError"],
        true,
    );
    for (i, port) in c.ports.iter().enumerate() {
        let pp = p.index("ports", i);
        if !port.name.is_empty() {
            check(
                e,
                pp.field("name"),
                &port.name,
                is_valid_port_name(&port.name),
            );
            if !port_names.insert(port.name.as_str()) {
                duplicate(e, pp.field("name"), &port.name);
            }
        }
        if port.container_port == 0 {
            required(e, pp.field("containerPort"), "");
        } else {
            validate_port_number(e, pp.field("containerPort"), port.container_port);
        }
        if port.host_port != 0 {
            validate_port_number(e, pp.field("hostPort"), port.host_port);
        }
        one_of(e, pp.field("protocol"), &port.protocol, PROTOCOLS, true);
    }
    for (i, env) in c.env.iter().enumerate() {
        let ep = p.index("env", i);
        if env.name.is_empty() {
            required(e, ep.field("name"), "");
        } else if env.name.contains('=') || !env.name.chars().all(|ch| (' '..='~').contains(&ch)) {
            invalid_str(
                e,
                ep.field("name"),
                &env.name,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            );
        }
        if let Some(from) = &env.value_from {
            if !env.value.is_empty() {
                invalid_str(
                    e,
                    ep.field("valueFrom"),
                    "",
                    "may not be specified when `value` is not empty",
                );
            }
            let n = [
                from.field_ref.is_some(),
                from.resource_field_ref.is_some(),
                from.config_map_key_ref.is_some(),
                from.secret_key_ref.is_some(),
            ]
            .into_iter()
            .filter(|x| *x)
            .count();
            if n == 0 {
                invalid_str(e, ep.field("valueFrom"), "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
            } else if n > 1 {
                invalid_str(
                    e,
                    ep.field("valueFrom"),
                    "",
                    "may not have more than one field specified at a time",
                );
            }
            if let Some(f) = &from.field_ref {
                if f.field_path.is_empty() {
                    required(e, ep.field("valueFrom.fieldRef.fieldPath"), "");
                }
            }
            if let Some(k) = &from.config_map_key_ref {
                if k.key.is_empty() {
                    required(e, ep.field("valueFrom.configMapKeyRef.key"), "");
                }
            }
            if let Some(k) = &from.secret_key_ref {
                if k.key.is_empty() {
                    required(e, ep.field("valueFrom.secretKeyRef.key"), "");
                }
            }
        }
    }
    if let Some(r) = &c.resources {
        validate_resources(e, &p.field("resources"), &r.limits, &r.requests);
    }
    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mp = p.index("volumeMounts", i);
        if m.name.is_empty() {
            required(e, mp.field("name"), "");
        } else if !volumes.contains(m.name.as_str()) {
            not_found(e, mp.field("name"), &m.name);
        }
        if m.mount_path.is_empty() {
            required(e, mp.field("mountPath"), "");
        } else if !mount_paths.insert(m.mount_path.as_str()) {
            invalid_str(e, mp.field("mountPath"), &m.mount_path, "must be unique");
        }
        if m.sub_path.starts_with('/') || m.sub_path.split('/').any(|s| s == "..") {
            invalid_str(
                e,
                mp.field("subPath"),
                &m.sub_path,
                "must be a relative path without '..'",
            );
        }
    }
    for (name, probe, liveness_like) in [
        ("livenessProbe", &c.liveness_probe, true),
        ("readinessProbe", &c.readiness_probe, false),
        ("startupProbe", &c.startup_probe, true),
    ] {
        if let Some(pr) = probe {
            if init && c.restart_policy.as_deref() != Some("Always") {
                forbidden(
                    e,
                    p.field(name),
                    "may not be set for init containers without restartPolicy=Always",
                );
                continue;
            }
            validate_probe(e, &p.field(name), pr, liveness_like);
        }
    }
    if let Some(l) = &c.lifecycle {
        for (name, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
            if let Some(h) = h {
                validate_lifecycle_handler(e, &p.field("lifecycle").field(name), h);
            }
        }
    }
    if let Some(rp) = &c.restart_policy {
        if !init {
            forbidden(
                e,
                p.field("restartPolicy"),
                "may not be set for non-init containers",
            );
        } else if rp != "Always" {
            unsupported(e, p.field("restartPolicy"), rp, &["Always"]);
        }
    }
}

pub(super) fn validate_resources(
    e: &mut Errs,
    p: &Path<'_>,
    limits: &BTreeMap<String, String>,
    requests: &BTreeMap<String, String>,
) {
    let mut parsed_limits = BTreeMap::new();
    for (name, v) in limits {
        let path = p.key("limits", name);
        check(e, path, name, is_qualified_name(name));
        if let Some(q) = validate_quantity(e, path, v) {
            if q.sign() < 0 {
                invalid_str(e, path, v, "must be greater than or equal to 0");
            }
            parsed_limits.insert(name.as_str(), q);
        }
    }
    for (name, v) in requests {
        let path = p.key("requests", name);
        check(e, path, name, is_qualified_name(name));
        if let Some(q) = validate_quantity(e, path, v) {
            if q.sign() < 0 {
                invalid_str(e, path, v, "must be greater than or equal to 0");
            }
            if let Some(l) = parsed_limits.get(name.as_str()) {
                if q > *l {
                    invalid_str(
                        e,
                        path,
                        &q.canonical(),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            l.canonical()
                        ),
                    );
                }
            }
        }
    }
}

/// What probes and lifecycle hooks share: exactly one handler (`others` counts the kind's own
/// extra handlers: grpc for probes, sleep for hooks), and the exec/httpGet/tcpSocket fields.
pub(super) fn validate_handler(
    e: &mut Errs,
    p: &Path<'_>,
    exec: Option<&v1::ExecAction>,
    http_get: Option<&v1::HttpGetAction>,
    tcp_socket: Option<&v1::TcpSocketAction>,
    others: usize,
) {
    let n = usize::from(exec.is_some())
        + usize::from(http_get.is_some())
        + usize::from(tcp_socket.is_some())
        + others;
    match n {
        0 => required(e, p, "must specify a handler type"),
        1 => {}
        _ => forbidden(e, p, "may not specify more than 1 handler type"),
    }
    if exec.is_some_and(|x| x.command.is_empty()) {
        required(e, p.field("exec.command"), "");
    }
    if let Some(h) = http_get {
        validate_http_get(e, &p.field("httpGet"), h);
    }
    if let Some(t) = tcp_socket {
        validate_int_or_port_name(e, p.field("tcpSocket.port"), t.port.as_ref());
    }
}

pub(super) fn validate_probe(e: &mut Errs, p: &Path<'_>, pr: &v1::Probe, liveness_like: bool) {
    validate_handler(
        e,
        p,
        pr.exec.as_ref(),
        pr.http_get.as_ref(),
        pr.tcp_socket.as_ref(),
        usize::from(pr.grpc.is_some()),
    );
    if let Some(g) = &pr.grpc {
        validate_port_number(e, p.field("grpc.port"), g.port);
    }
    for (name, v) in [
        ("initialDelaySeconds", pr.initial_delay_seconds),
        ("timeoutSeconds", pr.timeout_seconds),
        ("periodSeconds", pr.period_seconds),
        ("successThreshold", pr.success_threshold),
        ("failureThreshold", pr.failure_threshold),
    ] {
        if let Some(v) = v {
            non_negative(e, p.field(name), v.into());
        }
    }
    if liveness_like {
        if let Some(s) = pr.success_threshold {
            if s != 1 {
                invalid(e, p.field("successThreshold"), s, "must be 1");
            }
        }
    }
    if let Some(t) = pr.termination_grace_period_seconds {
        if t <= 0 {
            invalid(
                e,
                p.field("terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            );
        }
        if !liveness_like {
            invalid(
                e,
                p.field("terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            );
        }
    }
}

pub(super) fn validate_http_get(e: &mut Errs, p: &Path<'_>, h: &v1::HttpGetAction) {
    validate_int_or_port_name(e, p.field("port"), h.port.as_ref());
    one_of(e, p.field("scheme"), &h.scheme, &["HTTP", "HTTPS"], true);
    for (i, hd) in h.http_headers.iter().enumerate() {
        if hd.name.is_empty() {
            required(e, p.index("httpHeaders", i).field("name"), "");
        }
    }
}

pub(super) fn validate_lifecycle_handler(e: &mut Errs, p: &Path<'_>, h: &v1::LifecycleHandler) {
    validate_handler(
        e,
        p,
        h.exec.as_ref(),
        h.http_get.as_ref(),
        h.tcp_socket.as_ref(),
        usize::from(h.sleep.is_some()),
    );
    if let Some(s) = &h.sleep {
        if s.seconds < 0 {
            invalid(
                e,
                p.field("sleep.seconds"),
                s.seconds,
                "must be greater than or equal to 0",
            );
        }
    }
}
