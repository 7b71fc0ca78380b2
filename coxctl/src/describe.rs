//! `coxctl describe`: kubectl-like text per kind, then the object's Events.
//!
//! Text is written with '\t' between a label and its value and aligned at the end with Go's
//! tabwriter rules (padding 2), as kubectl's describers do.
use coxswain_api::{Kind, Object};
use serde_json::Value;

use crate::age;
use crate::cli::DescribeArgs;
use crate::client::{CliError, Client, Result};
use crate::jv::{arr, at, b, format_labels, format_selector, i, map, opt_b, opt_i, s};
use crate::printers::core as pcore;
use crate::resources::parse_targets;
use crate::table::tabwrite;

mod hpa;
mod node;
mod pvc;
mod small;

/// Objects related to the described one (fetched by `run`; empty in tests as needed).
#[derive(Debug, Default)]
pub struct Related {
    /// Events about the object.
    pub events: Vec<Value>,
    /// ReplicaSets owned by a Deployment.
    pub replicasets: Vec<Value>,
    /// Pods owned by a ReplicaSet, Job, DaemonSet or StatefulSet.
    pub pods: Vec<Value>,
    /// The Endpoints of a Service.
    pub endpoints: Option<Value>,
    /// A Node's Lease (or why it could not be read).
    pub lease: node::LeaseLookup,
}

struct W {
    out: String,
}

impl W {
    fn new() -> W {
        W { out: String::new() }
    }
    fn line(&mut self, level: usize, text: impl AsRef<str>) {
        for _ in 0..level {
            self.out.push_str("  ");
        }
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }
    /// "Label:\tfirst" and "\tmore" lines for a multi-line value ("<none>" when empty).
    fn multiline(&mut self, level: usize, label: &str, values: &[String]) {
        if values.is_empty() {
            self.line(level, format!("{label}:\t<none>"));
            return;
        }
        self.line(level, format!("{label}:\t{}", values[0]));
        for v in &values[1..] {
            self.line(level, format!("\t{v}"));
        }
    }
    fn finish(self) -> String {
        tabwrite(&self.out, 0, 2)
    }
}

fn pairs(v: &Value, path: &str) -> Vec<String> {
    map(v, path)
        .into_iter()
        .map(|(k, x)| format!("{k}={x}"))
        .collect()
}

/// kubectl's printAnnotationsMultiline: `key: value` sorted by key, without the last-applied
/// configuration; a value longer than 140 characters with its key, or spanning lines, goes on
/// lines of its own under `key:`, each cut at 138 bytes with "...".
fn annotations(v: &Value, path: &str) -> Vec<String> {
    const MAX_ANNOTATION_LEN: usize = 140;
    let mut out = Vec::new();
    for (k, x) in map(v, path) {
        if k == "kubectl.kubernetes.io/last-applied-configuration" {
            continue;
        }
        let value = x.strip_suffix('\n').unwrap_or(&x);
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            out.push(format!("{k}:"));
            for line in value.split('\n') {
                out.push(format!("  {}", shorten(line, MAX_ANNOTATION_LEN - 2)));
            }
        } else {
            out.push(format!("{k}: {value}"));
        }
    }
    out
}

/// The first `max` bytes of `s` (at a character boundary) and "...", when it is longer.
fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn ts(v: &Value, path: &str) -> String {
    match age::parse_rfc3339(&s(v, path)) {
        Some(t) => age::format_rfc1123z(t),
        None => "<unset>".into(),
    }
}

fn controller_of(o: &Value) -> Option<String> {
    arr(o, "metadata.ownerReferences")
        .iter()
        .find(|r| opt_b(r, "controller") == Some(true))
        .map(|r| format!("{}/{}", s(r, "kind"), s(r, "name")))
}

fn header(w: &mut W, o: &Value, namespaced: bool, with_created: bool) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    if namespaced {
        w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    }
    if with_created {
        w.line(
            0,
            format!(
                "CreationTimestamp:\t{}",
                ts(o, "metadata.creationTimestamp")
            ),
        );
    }
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
}

/// kubectl's DescribeProbe.
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

fn container_state(w: &mut W, label: &str, st: &Value) {
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

fn strs(v: &Value, path: &str) -> Vec<String> {
    arr(v, path)
        .iter()
        .map(|x| x.as_str().unwrap_or("").to_string())
        .collect()
}

/// Containers of a pod spec (with their statuses when given).
fn containers(w: &mut W, level: usize, list: &[Value], statuses: &[Value], name_prefix: &str) {
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

fn volumes(w: &mut W, level: usize, vols: &[Value]) {
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

fn taint(t: &Value) -> String {
    let v = s(t, "value");
    if v.is_empty() {
        format!("{}:{}", s(t, "key"), s(t, "effect"))
    } else {
        format!("{}={v}:{}", s(t, "key"), s(t, "effect"))
    }
}

fn pod_template(w: &mut W, tpl: &Value) {
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

fn conditions(w: &mut W, o: &Value, with_reason: bool) {
    let conds = arr(o, "status.conditions");
    if conds.is_empty() {
        return;
    }
    w.line(0, "Conditions:");
    if with_reason {
        w.line(1, "Type\tStatus\tReason");
        w.line(1, "----\t------\t------");
        for c in conds {
            w.line(
                1,
                format!("{} \t{}\t{}", s(c, "type"), s(c, "status"), s(c, "reason")),
            );
        }
    } else {
        w.line(1, "Type\tStatus");
        for c in conds {
            w.line(1, format!("{} \t{} ", s(c, "type"), s(c, "status")));
        }
    }
}

fn events(w: &mut W, evs: &[Value], now: i64) {
    if evs.is_empty() {
        w.line(0, "Events:\t<none>");
        return;
    }
    // Events form their own table (kubectl flushes its writer first).
    let mut ev = W::new();
    ev.line(0, "Events:");
    ev.line(1, "Type\tReason\tAge\tFrom\tMessage");
    ev.line(1, "----\t------\t----\t----\t-------");
    let mut sorted = evs.to_vec();
    sorted.sort_by_key(pcore::event_order);
    for e in &sorted {
        let first = {
            let et = s(e, "eventTime");
            if et.is_empty() {
                age::since(&s(e, "firstTimestamp"), now)
            } else {
                age::since(&et, now)
            }
        };
        let count = i(e, "count");
        let interval = if count > 1 {
            format!(
                "{} (x{count} over {first})",
                age::since(&s(e, "lastTimestamp"), now)
            )
        } else {
            first
        };
        let mut source = s(e, "source.component").into_owned();
        if source.is_empty() {
            source = s(e, "reportingComponent").into_owned();
        }
        ev.line(
            1,
            format!(
                "{}\t{}\t{interval}\t{source}\t{}",
                s(e, "type"),
                s(e, "reason"),
                s(e, "message").trim()
            ),
        );
    }
    let text = w.out.clone();
    w.out = format!("{}{}", tabwrite(&text, 0, 2), ev.finish());
}

fn describe_pod(w: &mut W, o: &Value) {
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

fn rs_summary(rs: &Value) -> String {
    format!(
        "{} ({}/{} replicas created)",
        s(rs, "metadata.name"),
        i(rs, "status.replicas"),
        opt_i(rs, "spec.replicas").unwrap_or(1)
    )
}

fn template_without_hash(v: &Value) -> Value {
    let mut t = at(v, "spec.template").clone();
    if let Some(labels) = t
        .get_mut("metadata")
        .and_then(|m| m.get_mut("labels"))
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    t
}

fn describe_deployment(w: &mut W, o: &Value, rel: &Related) {
    header(w, o, true, true);
    let replicas = opt_i(o, "spec.replicas").unwrap_or(1);
    selector_line(w, o);
    w.line(
        0,
        format!(
            "Replicas:\t{replicas} desired | {} updated | {} total | {} available | {} unavailable",
            i(o, "status.updatedReplicas"),
            i(o, "status.replicas"),
            i(o, "status.availableReplicas"),
            i(o, "status.unavailableReplicas")
        ),
    );
    let ty = s(o, "spec.strategy.type");
    let ty = if ty.is_empty() {
        "RollingUpdate".into()
    } else {
        ty.into_owned()
    };
    w.line(0, format!("StrategyType:\t{ty}"));
    w.line(
        0,
        format!("MinReadySeconds:\t{}", i(o, "spec.minReadySeconds")),
    );
    if ty == "RollingUpdate" {
        let mu = s(o, "spec.strategy.rollingUpdate.maxUnavailable");
        let ms = s(o, "spec.strategy.rollingUpdate.maxSurge");
        w.line(
            0,
            format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge",
                if mu.is_empty() {
                    "25%".into()
                } else {
                    mu.into_owned()
                },
                if ms.is_empty() {
                    "25%".into()
                } else {
                    ms.into_owned()
                }
            ),
        );
    }
    pod_template(w, at(o, "spec.template"));
    conditions(w, o, true);
    let tpl = template_without_hash(o);
    let new = rel
        .replicasets
        .iter()
        .find(|rs| template_without_hash(rs) == tpl);
    // GetAllReplicaSets' allOldRSs: every other owned ReplicaSet, scaled down or not; both
    // lines only when there is a ReplicaSet at all (describeDeployment).
    let old: Vec<String> = rel
        .replicasets
        .iter()
        .filter(|rs| Some(*rs) != new)
        .map(rs_summary)
        .collect();
    if old.is_empty() && new.is_none() {
        return;
    }
    w.line(
        0,
        format!(
            "OldReplicaSets:\t{}",
            if old.is_empty() {
                "<none>".into()
            } else {
                old.join(", ")
            }
        ),
    );
    w.line(
        0,
        format!(
            "NewReplicaSet:\t{}",
            new.map(rs_summary).unwrap_or_else(|| "<none>".into())
        ),
    );
}

fn pod_counts(pods: &[Value]) -> (usize, usize, usize, usize) {
    let count = |p: &str| pods.iter().filter(|x| s(x, "status.phase") == p).count();
    (
        count("Running"),
        count("Pending"),
        count("Succeeded"),
        count("Failed"),
    )
}

/// `Selector:` from spec.selector.
fn selector_line(w: &mut W, o: &Value) {
    w.line(
        0,
        format!("Selector:\t{}", format_selector(at(o, "spec.selector"))),
    );
}

/// The head kubectl prints for ReplicaSets and Jobs: name, namespace, selector, labels,
/// annotations and the controller.
fn selector_head(w: &mut W, o: &Value) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    selector_line(w, o);
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    if let Some(c) = controller_of(o) {
        w.line(0, format!("Controlled By:\t{c}"));
    }
}

fn describe_replicaset(w: &mut W, o: &Value, rel: &Related) {
    selector_head(w, o);
    w.line(
        0,
        format!(
            "Replicas:\t{} current / {} desired",
            i(o, "status.replicas"),
            opt_i(o, "spec.replicas").unwrap_or(1)
        ),
    );
    let (r, p, su, f) = pod_counts(&rel.pods);
    w.line(
        0,
        format!("Pods Status:\t{r} Running / {p} Waiting / {su} Succeeded / {f} Failed"),
    );
    pod_template(w, at(o, "spec.template"));
    conditions(w, o, true);
}

fn describe_daemonset(w: &mut W, o: &Value, rel: &Related) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    selector_line(w, o);
    w.line(
        0,
        format!(
            "Node-Selector:\t{}",
            format_labels(&map(o, "spec.template.spec.nodeSelector"))
        ),
    );
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    w.line(
        0,
        format!(
            "Desired Number of Nodes Scheduled: {}",
            i(o, "status.desiredNumberScheduled")
        ),
    );
    w.line(
        0,
        format!(
            "Current Number of Nodes Scheduled: {}",
            i(o, "status.currentNumberScheduled")
        ),
    );
    w.line(
        0,
        format!(
            "Number of Nodes Scheduled with Up-to-date Pods: {}",
            i(o, "status.updatedNumberScheduled")
        ),
    );
    w.line(
        0,
        format!(
            "Number of Nodes Scheduled with Available Pods: {}",
            i(o, "status.numberAvailable")
        ),
    );
    w.line(
        0,
        format!(
            "Number of Nodes Misscheduled: {}",
            i(o, "status.numberMisscheduled")
        ),
    );
    let (r, p, su, f) = pod_counts(&rel.pods);
    w.line(
        0,
        format!("Pods Status:\t{r} Running / {p} Waiting / {su} Succeeded / {f} Failed"),
    );
    pod_template(w, at(o, "spec.template"));
}

fn describe_statefulset(w: &mut W, o: &Value, rel: &Related) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    w.line(
        0,
        format!(
            "CreationTimestamp:\t{}",
            ts(o, "metadata.creationTimestamp")
        ),
    );
    selector_line(w, o);
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    w.line(
        0,
        format!(
            "Replicas:\t{} desired | {} total",
            opt_i(o, "spec.replicas").unwrap_or(1),
            i(o, "status.replicas")
        ),
    );
    let ty = s(o, "spec.updateStrategy.type");
    w.line(
        0,
        format!(
            "Update Strategy:\t{}",
            if ty.is_empty() {
                "RollingUpdate".into()
            } else {
                ty.into_owned()
            }
        ),
    );
    if let Some(p) = opt_i(o, "spec.updateStrategy.rollingUpdate.partition") {
        w.line(1, format!("Partition:\t{p}"));
        let mu = s(o, "spec.updateStrategy.rollingUpdate.maxUnavailable");
        if !mu.is_empty() {
            w.line(1, format!("MaxUnavailable:\t{mu}"));
        }
    }
    let (r, p, su, f) = pod_counts(&rel.pods);
    w.line(
        0,
        format!("Pods Status:\t{r} Running / {p} Waiting / {su} Succeeded / {f} Failed"),
    );
    pod_template(w, at(o, "spec.template"));
    let vcts = arr(o, "spec.volumeClaimTemplates");
    if vcts.is_empty() {
        w.line(0, "Volume Claims:\t<none>");
    } else {
        w.line(0, "Volume Claims:");
        for v in vcts {
            // describeVolumeClaimTemplates.
            w.line(1, format!("Name:\t{}", s(v, "metadata.name")));
            w.line(
                1,
                format!("StorageClass:\t{}", s(v, "spec.storageClassName")),
            );
            w.multiline(1, "Labels", &pairs(v, "metadata.labels"));
            let ann: Vec<String> = map(v, "metadata.annotations")
                .into_iter()
                .map(|(k, x)| format!("{k}={x}"))
                .collect();
            w.multiline(1, "Annotations", &ann);
            let cap = s(v, "spec.resources.requests.storage");
            w.line(
                1,
                format!(
                    "Capacity:\t{}",
                    if cap.is_empty() {
                        "<default>".into()
                    } else {
                        cap
                    }
                ),
            );
            let modes: Vec<String> = strs(v, "spec.accessModes");
            w.line(1, format!("Access Modes:\t[{}]", modes.join(" ")));
        }
    }
}

fn describe_job(w: &mut W, o: &Value, now: i64) {
    selector_head(w, o);
    w.line(
        0,
        format!(
            "Parallelism:\t{}",
            opt_i(o, "spec.parallelism").unwrap_or(1)
        ),
    );
    match opt_i(o, "spec.completions") {
        Some(c) => w.line(0, format!("Completions:\t{c}")),
        None => w.line(0, "Completions:\t<unset>"),
    }
    let mode = s(o, "spec.completionMode");
    w.line(
        0,
        format!(
            "Completion Mode:\t{}",
            if mode.is_empty() {
                "NonIndexed".into()
            } else {
                mode.into_owned()
            }
        ),
    );
    w.line(0, format!("Suspend:\t{}", b(o, "spec.suspend")));
    w.line(
        0,
        format!(
            "Backoff Limit:\t{}",
            opt_i(o, "spec.backoffLimit").unwrap_or(6)
        ),
    );
    if let Some(t) = opt_i(o, "spec.ttlSecondsAfterFinished") {
        w.line(0, format!("TTL Seconds After Finished:\t{t}"));
    }
    let start = age::parse_rfc3339(&s(o, "status.startTime"));
    if start.is_some() {
        w.line(0, format!("Start Time:\t{}", ts(o, "status.startTime")));
    }
    let end = age::parse_rfc3339(&s(o, "status.completionTime"));
    if let Some(e) = end {
        w.line(
            0,
            format!("Completed At:\t{}", ts(o, "status.completionTime")),
        );
        if let Some(st) = start {
            w.line(0, format!("Duration:\t{}", age::human_duration(e - st)));
        }
    } else if let Some(st) = start {
        w.line(0, format!("Duration:\t{}", age::human_duration(now - st)));
    }
    if let Some(a) = opt_i(o, "spec.activeDeadlineSeconds") {
        w.line(0, format!("Active Deadline Seconds:\t{a}s"));
    }
    w.line(
        0,
        format!(
            "Pods Statuses:\t{} Active ({} Ready) / {} Succeeded / {} Failed",
            i(o, "status.active"),
            i(o, "status.ready"),
            i(o, "status.succeeded"),
            i(o, "status.failed")
        ),
    );
    pod_template(w, at(o, "spec.template"));
    conditions(w, o, true);
}

fn describe_cronjob(w: &mut W, o: &Value) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    w.line(0, format!("Schedule:\t{}", s(o, "spec.schedule")));
    let tz = s(o, "spec.timeZone");
    if !tz.is_empty() {
        w.line(0, format!("Time Zone:\t{tz}"));
    }
    let policy = s(o, "spec.concurrencyPolicy");
    w.line(
        0,
        format!(
            "Concurrency Policy:\t{}",
            if policy.is_empty() {
                "Allow".into()
            } else {
                policy.into_owned()
            }
        ),
    );
    w.line(
        0,
        format!(
            "Suspend:\t{}",
            if b(o, "spec.suspend") {
                "True"
            } else {
                "False"
            }
        ),
    );
    let unset = |v: Option<i64>| v.map_or("<unset>".to_string(), |v| v.to_string());
    w.line(
        0,
        format!(
            "Successful Job History Limit:\t{}",
            opt_i(o, "spec.successfulJobsHistoryLimit").unwrap_or(3)
        ),
    );
    w.line(
        0,
        format!(
            "Failed Job History Limit:\t{}",
            opt_i(o, "spec.failedJobsHistoryLimit").unwrap_or(1)
        ),
    );
    w.line(
        0,
        format!(
            "Starting Deadline Seconds:\t{}",
            opt_i(o, "spec.startingDeadlineSeconds")
                .map_or("<unset>".to_string(), |v| format!("{v}s"))
        ),
    );
    let sel = at(o, "spec.jobTemplate.spec.selector");
    w.line(
        0,
        format!(
            "Selector:\t{}",
            if sel.is_null() {
                "<unset>".into()
            } else {
                format_selector(sel)
            }
        ),
    );
    w.line(
        0,
        format!(
            "Parallelism:\t{}",
            unset(opt_i(o, "spec.jobTemplate.spec.parallelism"))
        ),
    );
    w.line(
        0,
        format!(
            "Completions:\t{}",
            unset(opt_i(o, "spec.jobTemplate.spec.completions"))
        ),
    );
    pod_template(w, at(o, "spec.jobTemplate.spec.template"));
    let last = s(o, "status.lastScheduleTime");
    w.line(
        0,
        format!(
            "Last Schedule Time:\t{}",
            if last.is_empty() {
                "<unset>".into()
            } else {
                ts(o, "status.lastScheduleTime")
            }
        ),
    );
    let active: Vec<String> = arr(o, "status.active")
        .iter()
        .map(|r| s(r, "name").into_owned())
        .collect();
    w.line(
        0,
        format!(
            "Active Jobs:\t{}",
            if active.is_empty() {
                "<none>".into()
            } else {
                active.join(", ")
            }
        ),
    );
}

fn describe_service(w: &mut W, o: &Value, rel: &Related) {
    header(w, o, true, false);
    w.line(
        0,
        format!("Selector:\t{}", format_labels(&map(o, "spec.selector"))),
    );
    let ty = s(o, "spec.type");
    w.line(
        0,
        format!(
            "Type:\t{}",
            if ty.is_empty() {
                "ClusterIP".into()
            } else {
                ty.into_owned()
            }
        ),
    );
    let policy = s(o, "spec.ipFamilyPolicy");
    if !policy.is_empty() {
        w.line(0, format!("IP Family Policy:\t{policy}"));
    }
    let families: Vec<String> = arr(o, "spec.ipFamilies")
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect();
    w.line(
        0,
        format!(
            "IP Families:\t{}",
            if families.is_empty() {
                "<none>".into()
            } else {
                families.join(",")
            }
        ),
    );
    let ip = s(o, "spec.clusterIP");
    w.line(
        0,
        format!(
            "IP:\t{}",
            if ip.is_empty() {
                "<none>".into()
            } else {
                ip.into_owned()
            }
        ),
    );
    let ips: Vec<String> = arr(o, "spec.clusterIPs")
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect();
    if !ips.is_empty() {
        w.line(0, format!("IPs:\t{}", ips.join(",")));
    }
    let strs = |path: &str| -> Vec<String> {
        arr(o, path)
            .iter()
            .map(|f| f.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let external = strs("spec.externalIPs");
    if !external.is_empty() {
        w.line(0, format!("External IPs:\t{}", external.join(",")));
    }
    let lb_ip = s(o, "spec.loadBalancerIP");
    if !lb_ip.is_empty() {
        w.line(0, format!("Desired LoadBalancer IP:\t{lb_ip}"));
    }
    let ext_name = s(o, "spec.externalName");
    if !ext_name.is_empty() {
        w.line(0, format!("External Name:\t{ext_name}"));
    }
    let ingress: Vec<String> = arr(o, "status.loadBalancer.ingress")
        .iter()
        .map(|g| {
            let ip = s(g, "ip");
            if ip.is_empty() {
                s(g, "hostname").into_owned()
            } else {
                ip.into_owned()
            }
        })
        .collect();
    if !ingress.is_empty() {
        w.line(0, format!("LoadBalancer Ingress:\t{}", ingress.join(", ")));
    }
    let eps = rel.endpoints.as_ref();
    let ports = arr(o, "spec.ports");
    for p in ports {
        let name = s(p, "name");
        let name = if name.is_empty() {
            "<unset>".into()
        } else {
            name.into_owned()
        };
        let proto = s(p, "protocol");
        let proto = if proto.is_empty() {
            "TCP".into()
        } else {
            proto.into_owned()
        };
        w.line(0, format!("Port:\t{name}\t{}/{proto}", i(p, "port")));
        let tp = s(p, "targetPort");
        let tp = if tp.is_empty() {
            i(p, "port").to_string()
        } else {
            tp.into_owned()
        };
        w.line(0, format!("TargetPort:\t{tp}/{proto}"));
        if i(p, "nodePort") > 0 {
            w.line(
                0,
                format!("NodePort:\t{name}\t{}/{proto}", i(p, "nodePort")),
            );
        }
        let list = eps
            .map(|e| pcore::endpoints_list_for(e, Some(&s(p, "name"))))
            .unwrap_or_else(|| "<none>".into());
        w.line(0, format!("Endpoints:\t{list}"));
    }
    if ports.is_empty() {
        let list = eps
            .map(pcore::endpoints_list)
            .unwrap_or_else(|| "<none>".into());
        w.line(0, format!("Endpoints:\t{list}"));
    }
    let sa = s(o, "spec.sessionAffinity");
    w.line(
        0,
        format!(
            "Session Affinity:\t{}",
            if sa.is_empty() {
                "None".into()
            } else {
                sa.into_owned()
            }
        ),
    );
    let etp = s(o, "spec.externalTrafficPolicy");
    if !etp.is_empty() {
        w.line(0, format!("External Traffic Policy:\t{etp}"));
    }
    let itp = s(o, "spec.internalTrafficPolicy");
    if !itp.is_empty() {
        w.line(0, format!("Internal Traffic Policy:\t{itp}"));
    }
    let hc = i(o, "spec.healthCheckNodePort");
    if hc != 0 {
        w.line(0, format!("HealthCheck NodePort:\t{hc}"));
    }
    let ranges = arr(o, "spec.loadBalancerSourceRanges");
    if !ranges.is_empty() {
        let r: Vec<&str> = ranges.iter().filter_map(|v| v.as_str()).collect();
        w.line(0, format!("LoadBalancer Source Ranges:\t{}", r.join(",")));
    }
}

fn yaml_block(w: &mut W, label: &str, v: &Value) {
    if v.is_null() || v.as_object().is_some_and(|m| m.is_empty()) {
        return;
    }
    w.line(0, format!("{label}:"));
    let text = coxswain_api::yaml::to_string(v);
    for l in text.lines() {
        // No tabs here: keep the YAML as it is.
        w.line(1, l.replace('\t', "  "));
    }
}

fn describe_generic(w: &mut W, kind: Kind, o: &Value) {
    header(w, o, kind.namespaced(), true);
    if let Some(c) = controller_of(o) {
        w.line(0, format!("Controlled By:\t{c}"));
    }
    if let Some(m) = o.as_object() {
        for (k, v) in m {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            let mut label = k.clone();
            if let Some(f) = label.get_mut(0..1) {
                f.make_ascii_uppercase();
            }
            match v {
                Value::Object(_) | Value::Array(_) => yaml_block(w, &label, v),
                other => w.line(
                    0,
                    format!("{label}:\t{}", s(&serde_json::json!({"x": other}), "x")),
                ),
            }
        }
    }
}

/// The describe text of one object.
pub fn describe_object(kind: Kind, o: &Value, rel: &Related, now: i64) -> String {
    let mut w = W::new();
    match kind {
        Kind::Pod => describe_pod(&mut w, o),
        Kind::Deployment => describe_deployment(&mut w, o, rel),
        Kind::ReplicaSet => describe_replicaset(&mut w, o, rel),
        Kind::DaemonSet => describe_daemonset(&mut w, o, rel),
        Kind::StatefulSet => describe_statefulset(&mut w, o, rel),
        Kind::Job => describe_job(&mut w, o, now),
        Kind::CronJob => describe_cronjob(&mut w, o),
        Kind::Node => node::describe_node(&mut w, o, &rel.lease, &rel.pods, now),
        Kind::ConfigMap => small::describe_configmap(&mut w, o),
        Kind::Secret => small::describe_secret(&mut w, o),
        Kind::PersistentVolume => small::describe_pv(&mut w, o, now),
        Kind::Endpoints => small::describe_endpoints(&mut w, o),
        Kind::Service => describe_service(&mut w, o, rel),
        Kind::HorizontalPodAutoscaler => hpa::describe_hpa(&mut w, o),
        Kind::PersistentVolumeClaim => {
            let used_by: Vec<String> = rel
                .pods
                .iter()
                .map(|p| s(p, "metadata.name").into_owned())
                .collect();
            pvc::describe_pvc(&mut w, o, &used_by)
        }
        _ => describe_generic(&mut w, kind, o),
    }
    if kind != Kind::Secret {
        events(&mut w, &rel.events, now);
    }
    // events() aligned everything already when there were events.
    if w.out.contains('\t') {
        w.finish()
    } else {
        w.out
    }
}

async fn related(client: &mut Client, kind: Kind, obj: &Object) -> Result<Related> {
    let mut rel = Related::default();
    let ns = obj.namespace().to_string();
    let uid = obj.meta().uid.clone();
    let mut fs = format!("involvedObject.name={}", obj.name());
    if kind.namespaced() {
        fs.push_str(&format!(",involvedObject.namespace={ns}"));
    }
    let ev_ns = if kind.namespaced() { ns.as_str() } else { "" };
    if let Ok((evs, _)) = client.list(Kind::Event, ev_ns, "", &fs).await {
        rel.events = evs
            .iter()
            .map(Object::to_json_value)
            .filter(|e| {
                let k = s(e, "involvedObject.kind");
                let u = s(e, "involvedObject.uid");
                (k.is_empty() || k == kind.as_str())
                    && (u.is_empty() || uid.is_empty() || u == uid.as_str())
            })
            .collect();
    }
    let owned = |o: &Object| {
        o.meta()
            .owner_references
            .iter()
            .any(|r| r.uid == uid && r.controller == Some(true))
    };
    match kind {
        Kind::Deployment => {
            if let Ok((items, _)) = client.list(Kind::ReplicaSet, &ns, "", "").await {
                rel.replicasets = items
                    .iter()
                    .filter(|o| owned(o))
                    .map(Object::to_json_value)
                    .collect();
            }
        }
        Kind::ReplicaSet | Kind::DaemonSet | Kind::StatefulSet | Kind::Job => {
            if let Ok((items, _)) = client.list(Kind::Pod, &ns, "", "").await {
                rel.pods = items
                    .iter()
                    .filter(|o| owned(o))
                    .map(Object::to_json_value)
                    .collect();
            }
        }
        Kind::PersistentVolumeClaim => {
            // "Used By": the pods whose volumes name the claim.
            if let Ok((items, _)) = client.list(Kind::Pod, &ns, "", "").await {
                let claim = obj.name().to_string();
                let mut pods: Vec<Value> = items
                    .iter()
                    .map(Object::to_json_value)
                    .filter(|p| {
                        arr(p, "spec.volumes")
                            .iter()
                            .any(|v| s(v, "persistentVolumeClaim.claimName") == claim)
                    })
                    .collect();
                pods.sort_by_key(|p| s(p, "metadata.name").into_owned());
                rel.pods = pods;
            }
        }
        Kind::Node => {
            rel.lease = Some(
                match client.get(Kind::Lease, "kube-node-lease", obj.name()).await {
                    Ok(l) => Ok(l.to_json_value()),
                    Err(CliError::Server { message, .. }) => Err(message),
                    Err(e) => Err(e.to_string()),
                },
            );
            let fs = format!("spec.nodeName={}", obj.name());
            if let Ok((items, _)) = client.list(Kind::Pod, "", "", &fs).await {
                let mut pods: Vec<Value> = items
                    .iter()
                    .map(Object::to_json_value)
                    .filter(|p| {
                        s(p, "spec.nodeName") == obj.name()
                            && !matches!(&*s(p, "status.phase"), "Succeeded" | "Failed")
                    })
                    .collect();
                pods.sort_by_key(|p| {
                    (
                        s(p, "metadata.namespace").into_owned(),
                        s(p, "metadata.name").into_owned(),
                    )
                });
                rel.pods = pods;
            }
        }
        Kind::Service => {
            rel.endpoints = client
                .get(Kind::Endpoints, &ns, obj.name())
                .await
                .ok()
                .map(|o| o.to_json_value());
        }
        _ => {}
    }
    Ok(rel)
}

pub async fn run(client: &mut Client, args: &DescribeArgs, namespace: &str) -> Result<()> {
    let targets = parse_targets(&args.resources)?;
    let selector = args.selector.clone().unwrap_or_default();
    let (groups, failed) = crate::commands::get::fetch(
        client,
        &targets,
        namespace,
        args.all_namespaces,
        &selector,
        "",
    )
    .await?;
    let now = age::now();
    let mut first = true;
    let mut total = 0;
    for (kind, mut objs) in groups {
        objs.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
        for obj in objs {
            total += 1;
            let rel = related(client, kind, &obj).await?;
            let text = describe_object(kind, &obj.to_json_value(), &rel, now);
            if first {
                print!("{text}");
                first = false;
            } else {
                print!("\n\n{text}");
            }
        }
    }
    if total == 0 && !failed {
        let kinds: Vec<Kind> = targets.groups.iter().map(|(k, _)| *k).collect();
        eprintln!(
            "{}",
            crate::commands::get::no_resources_message(namespace, args.all_namespaces, &kinds)
        );
    }
    if failed {
        return Err(CliError::Reported);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_704_164_645 + 60;

    #[test]
    fn annotations_print_like_kubectl() {
        let long = "x".repeat(150);
        let o = json!({"metadata": {"annotations": {
            "deployment.kubernetes.io/revision": "2",
            "kubectl.kubernetes.io/last-applied-configuration": "{}\n",
            "a/multi": "one\ntwo\n",
            "z/long": long,
        }}});
        let mut w = W::new();
        w.multiline(0, "Annotations", &annotations(&o, "metadata.annotations"));
        let cut = format!("{}...", "x".repeat(138));
        assert_eq!(
            w.finish(),
            format!(
                "Annotations:  a/multi:\n                one\n                two\n              \
                 deployment.kubernetes.io/revision: 2\n              z/long:\n                {cut}\n"
            )
        );
        let only_last_applied = json!({"metadata": {"annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{}"}}});
        let mut w = W::new();
        w.multiline(
            0,
            "Annotations",
            &annotations(&only_last_applied, "metadata.annotations"),
        );
        assert_eq!(w.finish(), "Annotations:  <none>\n");
    }

    #[test]
    fn probes_print_like_kubectl() {
        let p = json!({"httpGet": {"path": "/mayikt", "port": 80}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3});
        assert_eq!(
            probe(&p),
            "http-get http://:80/mayikt delay=0s timeout=1s period=10s #success=1 #failure=3"
        );
        let p = json!({"exec": {"command": ["/bin/cat", "/tmp/mayikt.txt"]}, "initialDelaySeconds": 10, "failureThreshold": 2});
        assert_eq!(
            probe(&p),
            "exec [/bin/cat /tmp/mayikt.txt] delay=10s timeout=1s period=10s #success=1 #failure=2"
        );
        let p = json!({"tcpSocket": {"port": 8080}});
        assert_eq!(
            probe(&p),
            "tcp-socket :8080 delay=0s timeout=1s period=10s #success=1 #failure=3"
        );
    }

    #[test]
    fn tolerations_print_like_kubectl() {
        assert_eq!(
            toleration(
                &json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
            ),
            "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s"
        );
        assert_eq!(
            toleration(
                &json!({"key": "tag", "operator": "Equal", "value": "mayikt", "effect": "NoSchedule"})
            ),
            "tag=mayikt:NoSchedule"
        );
        assert_eq!(toleration(&json!({"operator": "Exists"})), "op=Exists");
    }

    #[test]
    fn pod_describe_has_the_key_lines() {
        let pod = json!({"metadata": {"name": "nginx-abc-x", "namespace": "default", "uid": "u1",
                "creationTimestamp": "2024-01-02T03:04:05Z", "labels": {"app": "nginx", "pod-template-hash": "abc"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "nginx-abc", "uid": "r", "controller": true}]},
            "spec": {"nodeName": "node1", "containers": [{"name": "nginx", "image": "nginx:1.7.9",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "livenessProbe": {"httpGet": {"path": "/mayikt", "port": 80}}}]},
            "status": {"phase": "Running", "hostIP": "192.168.1.2", "podIP": "10.0.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2024-01-02T03:04:09Z"}}}]}});
        let ev = json!({"type": "Normal", "reason": "Scheduled", "message": "Successfully assigned default/nginx-abc-x to node1",
            "source": {"component": "default-scheduler"}, "firstTimestamp": "2024-01-02T03:04:05Z",
            "lastTimestamp": "2024-01-02T03:04:05Z", "count": 1, "involvedObject": {"kind": "Pod", "name": "nginx-abc-x"}});
        let rel = Related {
            events: vec![ev],
            ..Default::default()
        };
        let out = describe_object(Kind::Pod, &pod, &rel, NOW);
        assert!(out.starts_with("Name:"), "{out}");
        assert!(
            out.contains("Controlled By:  ReplicaSet/nginx-abc\n"),
            "{out}"
        );
        assert!(
            out.contains("Node:             node1/192.168.1.2\n")
                || out.contains("node1/192.168.1.2"),
            "{out}"
        );
        assert!(
            out.contains("Labels:")
                && out.contains("app=nginx")
                && out.contains("pod-template-hash=abc"),
            "{out}"
        );
        assert!(
            out.contains(
                "http-get http://:80/mayikt delay=0s timeout=1s period=10s #success=1 #failure=3"
            ),
            "{out}"
        );
        assert!(out.contains("State:          Running"), "{out}");
        assert!(out.contains("Restart Count:  0"), "{out}");
        assert!(
            out.contains("Events:\n  Type    Reason     Age   From               Message\n"),
            "{out}"
        );
        assert!(out.contains("  Normal  Scheduled  60s   default-scheduler  Successfully assigned default/nginx-abc-x to node1\n"), "{out}");
        assert!(!out.contains('\t'));
    }

    #[test]
    fn deployment_describe_replicas_strategy_and_replicasets() {
        let tpl = json!({"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.7.9"}]}});
        let d = json!({"metadata": {"name": "nginx-deployment", "namespace": "default", "uid": "d1", "creationTimestamp": "2024-01-02T03:04:05Z"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}}, "template": tpl,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
            "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}});
        let mut rs_tpl = tpl.clone();
        rs_tpl["metadata"]["labels"]["pod-template-hash"] = json!("5c689d88bb");
        let rs = json!({"metadata": {"name": "nginx-deployment-5c689d88bb"}, "spec": {"replicas": 2, "template": rs_tpl}, "status": {"replicas": 2}});
        let rel = Related {
            replicasets: vec![rs],
            ..Default::default()
        };
        let out = describe_object(Kind::Deployment, &d, &rel, NOW);
        assert!(
            out.contains("2 desired | 2 updated | 2 total | 2 available | 0 unavailable"),
            "{out}"
        );
        assert!(
            out.contains("StrategyType:") && out.contains("RollingUpdate\n"),
            "{out}"
        );
        assert!(out.contains("25% max unavailable, 25% max surge"), "{out}");
        assert!(
            out.contains("NewReplicaSet:     nginx-deployment-5c689d88bb (2/2 replicas created)\n"),
            "{out}"
        );
        assert!(out.contains("OldReplicaSets:    <none>\n"), "{out}");
        assert!(
            out.contains("Pod Template:\n  Labels:  app=nginx\n  Containers:\n   nginx:\n"),
            "{out}"
        );
        assert!(out.ends_with("Events:            <none>\n"), "{out}");
    }

    #[test]
    fn replicaset_and_node_describe() {
        let rs = json!({"metadata": {"name": "r", "namespace": "default",
                "ownerReferences": [{"kind": "Deployment", "name": "nginx-deployment", "controller": true}]},
            "spec": {"replicas": 2}, "status": {"replicas": 2}});
        let pods = vec![
            json!({"status": {"phase": "Running"}}),
            json!({"status": {"phase": "Pending"}}),
        ];
        let out = describe_object(
            Kind::ReplicaSet,
            &rs,
            &Related {
                pods,
                ..Default::default()
            },
            NOW,
        );
        assert!(
            out.contains("Controlled By:  Deployment/nginx-deployment"),
            "{out}"
        );
        assert!(
            out.contains("Replicas:       2 current / 2 desired"),
            "{out}"
        );
        assert!(
            out.contains("Pods Status:    1 Running / 1 Waiting / 0 Succeeded / 0 Failed"),
            "{out}"
        );
        let node = json!({"metadata": {"name": "k8s-master", "labels": {"node-role.kubernetes.io/master": ""}},
            "spec": {"taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                       "capacity": {"cpu": "2"}}});
        let out = describe_object(Kind::Node, &node, &Related::default(), NOW);
        assert!(out.contains("Roles:              master"), "{out}");
        assert!(
            out.contains("Taints:             node-role.kubernetes.io/master:NoSchedule"),
            "{out}"
        );
        assert!(out.contains("Unschedulable:      false"), "{out}");
        let node2 = json!({"metadata": {"name": "n"}});
        let out = describe_object(Kind::Node, &node2, &Related::default(), NOW);
        assert!(out.contains("Taints:") && out.contains("<none>"), "{out}");
    }

    #[test]
    fn configmaps_describe_like_kubectl_and_other_kinds_print_yaml() {
        let cm = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"}});
        let out = describe_object(Kind::ConfigMap, &cm, &Related::default(), NOW);
        assert!(out.contains("\nData\n====\nk:\n----\nv\n\n"), "{out}");
        let sa = json!({"metadata": {"name": "s", "namespace": "default"},
            "imagePullSecrets": [{"name": "reg"}]});
        let out = describe_object(Kind::ServiceAccount, &sa, &Related::default(), NOW);
        assert!(out.contains("ImagePullSecrets:\n  - name: reg\n"), "{out}");
    }
}
