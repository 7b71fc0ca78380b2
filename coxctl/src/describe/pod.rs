//! `describe pod` and the pieces of a pod template other describers print (containers, probes,
//! volumes, tolerations), as kubectl's describePod and DescribePodTemplate.
use serde_json::Value;

use crate::jv::{arr, at, b, i, map, opt_i, s};

use super::{annotations, conditions, controller_of, pairs, strs, ts, W};
use crate::age;

pub fn probe(p: &Value) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        opt_i(p, "initialDelaySeconds").unwrap_or(0),
        opt_i(p, "timeoutSeconds").unwrap_or(1),
        opt_i(p, "periodSeconds").unwrap_or(10),
        opt_i(p, "successThreshold").unwrap_or(1),
        opt_i(p, "failureThreshold").unwrap_or(3),
    );
    if !at(p, "exec").is_null() {
        let cmd: Vec<String> = arr(p, "exec.command")
            .iter()
            .map(|c| c.as_str().unwrap_or("").to_string())
            .collect();
        return format!("exec [{}] {attrs}", cmd.join(" "));
    }
    if !at(p, "httpGet").is_null() {
        let scheme = s(p, "httpGet.scheme").to_ascii_lowercase();
        let scheme = if scheme.is_empty() {
            "http".to_string()
        } else {
            scheme
        };
        let port = s(p, "httpGet.port");
        let host = s(p, "httpGet.host");
        let hostport = if port.is_empty() {
            host.into_owned()
        } else {
            format!("{host}:{port}")
        };
        return format!(
            "http-get {scheme}://{hostport}{} {attrs}",
            s(p, "httpGet.path")
        );
    }
    if !at(p, "tcpSocket").is_null() {
        return format!(
            "tcp-socket {}:{} {attrs}",
            s(p, "tcpSocket.host"),
            s(p, "tcpSocket.port")
        );
    }
    if !at(p, "grpc").is_null() {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            i(p, "grpc.port"),
            s(p, "grpc.service")
        );
    }
    format!("unknown {attrs}")
}

pub(super) fn container_state(w: &mut W, label: &str, st: &Value) {
    if !at(st, "running").is_null() {
        w.line(2, format!("{label}:\tRunning"));
        w.line(3, format!("Started:\t{}", ts(st, "running.startedAt")));
    } else if !at(st, "waiting").is_null() {
        w.line(2, format!("{label}:\tWaiting"));
        let r = s(st, "waiting.reason");
        if !r.is_empty() {
            w.line(3, format!("Reason:\t{r}"));
        }
        let m = s(st, "waiting.message");
        if !m.is_empty() {
            w.line(3, format!("Message:\t{m}"));
        }
    } else if !at(st, "terminated").is_null() {
        let t = at(st, "terminated");
        w.line(2, format!("{label}:\tTerminated"));
        let r = s(t, "reason");
        if !r.is_empty() {
            w.line(3, format!("Reason:\t{r}"));
        }
        let m = s(t, "message");
        if !m.is_empty() {
            w.line(3, format!("Message:\t{}", m.trim()));
        }
        w.line(3, format!("Exit Code:\t{}", i(t, "exitCode")));
        if i(t, "signal") != 0 {
            w.line(3, format!("Signal:\t{}", i(t, "signal")));
        }
        w.line(3, format!("Started:\t{}", ts(t, "startedAt")));
        w.line(3, format!("Finished:\t{}", ts(t, "finishedAt")));
    } else {
        w.line(2, format!("{label}:\tWaiting"));
    }
}

/// Containers of a pod spec (with their statuses when given).
pub(super) fn containers(
    w: &mut W,
    level: usize,
    list: &[Value],
    statuses: &[Value],
    name_prefix: &str,
) {
    for c in list {
        let name = s(c, "name");
        let st = statuses.iter().find(|x| s(x, "name") == name);
        w.line(level, format!("{name_prefix}{name}:"));
        let l = level + 1;
        if let Some(st) = st {
            let id = s(st, "containerID");
            if !id.is_empty() {
                w.line(l, format!("Container ID:\t{id}"));
            }
        }
        w.line(l, format!("Image:\t{}", s(c, "image")));
        if let Some(st) = st {
            w.line(l, format!("Image ID:\t{}", s(st, "imageID")));
        }
        // "80/TCP" for each port's container (or host) port.
        let port_list = |field: &str| -> Vec<String> {
            arr(c, "ports")
                .iter()
                .map(|p| {
                    let proto = s(p, "protocol");
                    let proto = if proto.is_empty() {
                        "TCP".to_string()
                    } else {
                        proto.to_string()
                    };
                    format!("{}/{proto}", i(p, field))
                })
                .collect()
        };
        let ports = port_list("containerPort");
        let host_ports = port_list("hostPort");
        if ports.len() > 1 {
            w.line(l, format!("Ports:\t{}", ports.join(", ")));
            w.line(l, format!("Host Ports:\t{}", host_ports.join(", ")));
        } else {
            w.line(
                l,
                format!(
                    "Port:\t{}",
                    ports.first().cloned().unwrap_or_else(|| "<none>".into())
                ),
            );
            w.line(
                l,
                format!(
                    "Host Port:\t{}",
                    host_ports
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "<none>".into())
                ),
            );
        }
        for (label, path) in [("Command", "command"), ("Args", "args")] {
            let items = strs(c, path);
            if !items.is_empty() {
                w.line(l, format!("{label}:"));
                for x in items {
                    w.line(l + 1, x);
                }
            }
        }
        if let Some(st) = st {
            container_state(w, "State", at(st, "state"));
            let last = at(st, "lastState");
            if last.as_object().is_some_and(|m| !m.is_empty()) {
                container_state(w, "Last State", last);
            }
            w.line(
                l,
                format!("Ready:\t{}", if b(st, "ready") { "True" } else { "False" }),
            );
            w.line(l, format!("Restart Count:\t{}", i(st, "restartCount")));
        }
        for (label, path) in [
            ("Limits", "resources.limits"),
            ("Requests", "resources.requests"),
        ] {
            let m = map(c, path);
            if !m.is_empty() {
                w.line(l, format!("{label}:"));
                for (k, v) in m {
                    w.line(l + 1, format!("{k}:\t{v}"));
                }
            }
        }
        for (label, path) in [
            ("Liveness", "livenessProbe"),
            ("Readiness", "readinessProbe"),
            ("Startup", "startupProbe"),
        ] {
            let p = at(c, path);
            if !p.is_null() {
                w.line(l, format!("{label}:\t{}", probe(p)));
            }
        }
        let env = arr(c, "env");
        if env.is_empty() {
            w.line(l, "Environment:\t<none>");
        } else {
            w.line(l, "Environment:");
            for e in env {
                let v = if at(e, "valueFrom").is_null() {
                    s(e, "value").into_owned()
                } else {
                    "(from a source)".into()
                };
                w.line(l + 1, format!("{}:\t{v}", s(e, "name")));
            }
        }
        let mounts = arr(c, "volumeMounts");
        if mounts.is_empty() {
            w.line(l, "Mounts:\t<none>");
        } else {
            w.line(l, "Mounts:");
            for m in mounts {
                let mode = if b(m, "readOnly") { "ro" } else { "rw" };
                let sub = s(m, "subPath");
                let sub = if sub.is_empty() {
                    String::new()
                } else {
                    format!(",path=\"{sub}\"")
                };
                w.line(
                    l + 1,
                    format!("{} from {} ({mode}{sub})", s(m, "mountPath"), s(m, "name")),
                );
            }
        }
    }
}

pub(super) fn volumes(w: &mut W, level: usize, vols: &[Value]) {
    if vols.is_empty() {
        w.line(level, "Volumes:\t<none>");
        return;
    }
    w.line(level, "Volumes:");
    for v in vols {
        // kubectl's describeVolumes: names at LEVEL_1 (one more space inside a pod template),
        // each source's lines at LEVEL_2 whatever the nesting.
        let indent = if level > 0 { " " } else { "" };
        w.line(1, format!("{indent}{}:", s(v, "name")));
        let l = 2;
        if !at(v, "hostPath").is_null() {
            w.line(l, "Type:\tHostPath (bare host directory volume)");
            w.line(l, format!("Path:\t{}", s(v, "hostPath.path")));
            let ty = if at(v, "hostPath.type").is_null() {
                "<none>".into()
            } else {
                s(v, "hostPath.type")
            };
            w.line(l, format!("HostPathType:\t{ty}"));
        } else if !at(v, "emptyDir").is_null() {
            w.line(
                l,
                "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            w.line(l, format!("Medium:\t{}", s(v, "emptyDir.medium")));
            let sl = s(v, "emptyDir.sizeLimit");
            w.line(
                l,
                format!(
                    "SizeLimit:\t{}",
                    if sl.is_empty() {
                        "<unset>".into()
                    } else {
                        sl.into_owned()
                    }
                ),
            );
        } else if !at(v, "persistentVolumeClaim").is_null() {
            w.line(l, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)");
            w.line(
                l,
                format!("ClaimName:\t{}", s(v, "persistentVolumeClaim.claimName")),
            );
            w.line(
                l,
                format!("ReadOnly:\t{}", b(v, "persistentVolumeClaim.readOnly")),
            );
        } else if !at(v, "configMap").is_null() {
            w.line(l, "Type:\tConfigMap (a volume populated by a ConfigMap)");
            w.line(l, format!("Name:\t{}", s(v, "configMap.name")));
            w.line(l, format!("Optional:\t{}", b(v, "configMap.optional")));
        } else if !at(v, "secret").is_null() {
            w.line(l, "Type:\tSecret (a volume populated by a Secret)");
            w.line(l, format!("SecretName:\t{}", s(v, "secret.secretName")));
            w.line(l, format!("Optional:\t{}", b(v, "secret.optional")));
        } else if !at(v, "projected").is_null() {
            // kubectl's printProjectedVolumeSource (a nil *bool prints <nil>).
            w.line(
                l,
                "Type:\tProjected (a volume that contains injected data from multiple sources)",
            );
            let opt = |x: &Value| match x.as_bool() {
                Some(o) => o.to_string(),
                None => "<nil>".to_string(),
            };
            for src in at(v, "projected.sources").as_array().into_iter().flatten() {
                if !src["secret"].is_null() {
                    w.line(l, format!("SecretName:\t{}", s(src, "secret.name")));
                    w.line(
                        l,
                        format!("SecretOptionalName:\t{}", opt(&src["secret"]["optional"])),
                    );
                } else if !src["downwardAPI"].is_null() {
                    w.line(l, "DownwardAPI:\ttrue");
                } else if !src["configMap"].is_null() {
                    w.line(l, format!("ConfigMapName:\t{}", s(src, "configMap.name")));
                    w.line(
                        l,
                        format!("ConfigMapOptional:\t{}", opt(&src["configMap"]["optional"])),
                    );
                } else if !src["serviceAccountToken"].is_null() {
                    let exp = src["serviceAccountToken"]["expirationSeconds"]
                        .as_i64()
                        .unwrap_or(0);
                    w.line(l, format!("TokenExpirationSeconds:\t{exp}"));
                }
            }
        } else {
            w.line(l, "Type:\t<unknown>");
        }
    }
}

/// kubectl's toleration text: "key=value:effect op=Exists for 300s".
pub fn toleration(t: &Value) -> String {
    let mut out = String::new();
    let key = s(t, "key");
    let value = s(t, "value");
    out.push_str(&key);
    if !value.is_empty() {
        out.push('=');
        out.push_str(&value);
    }
    let effect = s(t, "effect");
    if !effect.is_empty() {
        out.push(':');
        out.push_str(&effect);
    }
    if s(t, "operator") == "Exists" && value.is_empty() {
        out.push_str(if key.is_empty() {
            "op=Exists"
        } else {
            " op=Exists"
        });
    }
    if let Some(sec) = opt_i(t, "tolerationSeconds") {
        out.push_str(&format!(" for {sec}s"));
    }
    out
}

pub(super) fn taint(t: &Value) -> String {
    let v = s(t, "value");
    if v.is_empty() {
        format!("{}:{}", s(t, "key"), s(t, "effect"))
    } else {
        format!("{}={v}:{}", s(t, "key"), s(t, "effect"))
    }
}

pub(super) fn pod_template(w: &mut W, tpl: &Value) {
    w.line(0, "Pod Template:");
    w.multiline(1, "Labels", &pairs(tpl, "metadata.labels"));
    if !map(tpl, "metadata.annotations").is_empty() {
        w.multiline(1, "Annotations", &annotations(tpl, "metadata.annotations"));
    }
    let spec = at(tpl, "spec");
    let sa = s(spec, "serviceAccountName");
    if !sa.is_empty() {
        w.line(1, format!("Service Account:\t{sa}"));
    }
    let init = arr(spec, "initContainers");
    if !init.is_empty() {
        w.line(1, "Init Containers:");
        containers(w, 1, init, &[], " ");
    }
    w.line(1, "Containers:");
    containers(w, 1, arr(spec, "containers"), &[], " ");
    volumes(w, 1, arr(spec, "volumes"));
    w.multiline(1, "Node-Selectors", &pairs(spec, "nodeSelector"));
    let tols: Vec<String> = arr(spec, "tolerations").iter().map(toleration).collect();
    w.multiline(1, "Tolerations", &tols);
}

pub(super) fn describe_pod(w: &mut W, o: &Value) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    if let Some(p) = opt_i(o, "spec.priority") {
        w.line(0, format!("Priority:\t{p}"));
    }
    let sa = s(o, "spec.serviceAccountName");
    w.line(
        0,
        format!(
            "Service Account:\t{}",
            if sa.is_empty() {
                "default".into()
            } else {
                sa.into_owned()
            }
        ),
    );
    let node = s(o, "spec.nodeName");
    if node.is_empty() {
        w.line(0, "Node:\t<none>");
    } else {
        w.line(0, format!("Node:\t{node}/{}", s(o, "status.hostIP")));
    }
    if !s(o, "status.startTime").is_empty() {
        w.line(0, format!("Start Time:\t{}", ts(o, "status.startTime")));
    }
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    if !s(o, "metadata.deletionTimestamp").is_empty() {
        w.line(
            0,
            format!(
                "Status:\tTerminating (lasts {})",
                age::since(&s(o, "metadata.deletionTimestamp"), age::now())
            ),
        );
        if let Some(g) = opt_i(o, "metadata.deletionGracePeriodSeconds") {
            w.line(0, format!("Termination Grace Period:\t{g}s"));
        }
    } else {
        let phase = s(o, "status.phase");
        w.line(
            0,
            format!(
                "Status:\t{}",
                if phase.is_empty() {
                    "Pending".into()
                } else {
                    phase.into_owned()
                }
            ),
        );
    }
    let reason = s(o, "status.reason");
    if !reason.is_empty() {
        w.line(0, format!("Reason:\t{reason}"));
    }
    let msg = s(o, "status.message");
    if !msg.is_empty() {
        w.line(0, format!("Message:\t{msg}"));
    }
    let ip = s(o, "status.podIP");
    w.line(0, format!("IP:\t{ip}"));
    let ips: Vec<String> = arr(o, "status.podIPs")
        .iter()
        .map(|p| s(p, "ip").into_owned())
        .collect();
    let ips = if ips.is_empty() && !ip.is_empty() {
        vec![ip.into_owned()]
    } else {
        ips
    };
    if ips.is_empty() {
        w.line(0, "IPs:\t<none>");
    } else {
        w.line(0, "IPs:");
        for x in ips {
            w.line(1, format!("IP:\t{x}"));
        }
    }
    if let Some(c) = controller_of(o) {
        w.line(0, format!("Controlled By:\t{c}"));
    }
    let init = arr(o, "spec.initContainers");
    if !init.is_empty() {
        w.line(0, "Init Containers:");
        containers(w, 1, init, arr(o, "status.initContainerStatuses"), "");
    }
    w.line(0, "Containers:");
    containers(
        w,
        1,
        arr(o, "spec.containers"),
        arr(o, "status.containerStatuses"),
        "",
    );
    conditions(w, o, false);
    volumes(w, 0, arr(o, "spec.volumes"));
    let qos = s(o, "status.qosClass");
    if !qos.is_empty() {
        w.line(0, format!("QoS Class:\t{qos}"));
    }
    w.multiline(0, "Node-Selectors", &pairs(o, "spec.nodeSelector"));
    let tols: Vec<String> = arr(o, "spec.tolerations").iter().map(toleration).collect();
    w.multiline(0, "Tolerations", &tols);
}
