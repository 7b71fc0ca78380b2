//! `coxctl describe`: kubectl-like text per kind, then the object's Events.
//!
//! Text is written with '\t' between a label and its value and aligned at the end with Go's
//! tabwriter rules (padding 2), as kubectl's describers do.
use coxswain_api::{Kind, Object};
use serde_json::Value;

use crate::age;
use crate::cli::DescribeArgs;
use crate::client::{CliError, Client, Result};
use crate::jv::{arr, i, map, opt_b, s};
use crate::printers::core as pcore;
use crate::resources::parse_targets;
use crate::table::tabwrite;

mod batch;
mod hpa;
mod node;
mod pod;
mod pvc;
mod service;
mod small;
#[cfg(test)]
mod tests;
mod workloads;

use batch::{describe_cronjob, describe_job};
use pod::{describe_pod, taint};
use service::describe_service;
use workloads::{
    describe_daemonset, describe_deployment, describe_replicaset, describe_statefulset,
};

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

fn strs(v: &Value, path: &str) -> Vec<String> {
    arr(v, path)
        .iter()
        .map(|x| x.as_str().unwrap_or("").to_string())
        .collect()
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
        Kind::Job => describe_job(&mut w, o),
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
