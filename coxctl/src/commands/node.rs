//! Node maintenance verbs, as kubectl has them: `taint`, `cordon`, `uncordon`, `drain`.
//!
//! - `taint`: parse `key=value:Effect`, `key:Effect`, `key=value:Effect-`, `key:Effect-`,
//!   `key-` (kubectl's parseTaints), merge with the node's taints (reorganizeTaints), and write
//!   spec.taints. NoExecute taints added get `timeAdded`.
//! - `cordon`/`uncordon`: spec.unschedulable.
//! - `drain`: cordon, then evict (graceful delete) every pod on the node that kubectl's drain
//!   filters allow, and wait until they are gone.
use std::time::Duration;

use clap::Args;
use coxswain_api::v1::{Node, Pod, Taint};
use coxswain_api::Kind;
use serde_json::json;

use crate::client::{other, CliError, Client, Result};

const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

#[derive(Debug, Args)]
pub struct TaintArgs {
    /// node NAME... KEY_1=VAL_1:TAINT_EFFECT_1 ... (or node/NAME); KEY[:EFFECT]- removes.
    #[arg(required = true)]
    pub args: Vec<String>,
    /// If true, allow taints to be overwritten, otherwise reject taint updates that overwrite
    /// existing taints.
    #[arg(long)]
    pub overwrite: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all nodes in the cluster.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CordonArgs {
    /// NODE
    pub node: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// NODE
    pub node: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Ignore DaemonSet-managed pods.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Continue even if there are pods using emptyDir (local data that will be deleted when
    /// the node is drained).
    #[arg(long, alias = "delete-local-data")]
    pub delete_emptydir_data: bool,
    /// Continue even if there are pods that do not declare a controller.
    #[arg(long)]
    pub force: bool,
    /// Period of time in seconds given to each pod to terminate gracefully. If negative, the
    /// default value specified in the pod will be used.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i32,
    /// The length of time to wait before giving up, zero means infinite (e.g. 30s, 2m).
    #[arg(long, default_value = "0s")]
    pub timeout: String,
}

// === taint ===

/// One parsed taint argument.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    key: String,
    value: String,
    effect: String,
}

impl Spec {
    /// As `Taint.ToString()`.
    fn to_taint_string(&self) -> String {
        match (self.value.is_empty(), self.effect.is_empty()) {
            (true, true) => self.key.clone(),
            (false, true) => format!("{}={}:", self.key, self.value),
            (true, false) => format!("{}:{}", self.key, self.effect),
            (false, false) => format!("{}={}:{}", self.key, self.value, self.effect),
        }
    }
}

fn is_qualified_name(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok {
        return Some("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into());
    }
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Some("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
        }
    }
    None
}

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// kubectl's parseTaint: `key=value:effect`, `key:effect` or `key`.
fn parse_one(st: &str) -> Result<Spec> {
    let parts: Vec<&str> = st.split(':').collect();
    let (key, value, effect) = match parts.as_slice() {
        [k] => (k.to_string(), String::new(), String::new()),
        [kv, effect] => {
            if !EFFECTS.contains(effect) {
                return Err(other(format!(
                    "invalid taint effect: {effect}, unsupported taint effect"
                )));
            }
            let kv_parts: Vec<&str> = kv.split('=').collect();
            if kv_parts.len() > 2 {
                return Err(other(format!("invalid taint spec: {st}")));
            }
            let value = kv_parts.get(1).map(|v| v.to_string()).unwrap_or_default();
            if !is_label_value(&value) {
                return Err(other(format!("invalid taint spec: {st}, a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")));
            }
            (kv_parts[0].to_string(), value, effect.to_string())
        }
        _ => return Err(other(format!("invalid taint spec: {st}"))),
    };
    if let Some(e) = is_qualified_name(&key) {
        return Err(other(format!("invalid taint spec: {st}, {e}")));
    }
    Ok(Spec { key, value, effect })
}

/// kubectl's parseTaints: (to add, to remove).
fn parse_specs(specs: &[String]) -> Result<(Vec<Spec>, Vec<Spec>)> {
    let mut add: Vec<Spec> = Vec::new();
    let mut remove = Vec::new();
    for s in specs {
        if let Some(r) = s.strip_suffix('-') {
            let t = parse_one(r)?;
            remove.push(Spec {
                value: String::new(),
                ..t
            });
        } else {
            let t = parse_one(s)?;
            if t.effect.is_empty() {
                return Err(other(format!("unknown taint spec: {s}")));
            }
            if add.iter().any(|a| a.key == t.key && a.effect == t.effect) {
                return Err(other(format!(
                    "duplicated taints with the same key and effect: {}",
                    t.to_taint_string()
                )));
            }
            add.push(t);
        }
    }
    Ok((add, remove))
}

/// What `taint` did to one node.
#[derive(Debug, PartialEq, Eq)]
enum Operation {
    Tainted,
    Untainted,
    Modified,
}

impl Operation {
    fn word(&self) -> &'static str {
        match self {
            Operation::Tainted => "tainted",
            Operation::Untainted => "untainted",
            Operation::Modified => "modified",
        }
    }
}

/// kubectl's updateTaints/reorganizeTaints: the node's new taint list, or kubectl's error.
fn reorganize(
    node_name: &str,
    old: &[Taint],
    add: &[Spec],
    remove: &[Spec],
    overwrite: bool,
    now: &str,
) -> Result<(Operation, Vec<Taint>)> {
    if !overwrite {
        let exists: Vec<&str> = add
            .iter()
            .flat_map(|a| {
                old.iter()
                    .filter(move |o| o.key == a.key && o.effect == a.effect)
                    .map(move |_| a.key.as_str())
            })
            .collect();
        if !exists.is_empty() {
            return Err(other(format!(
                "node {node_name} already has {} taint(s) with same effect(s) and --overwrite is false",
                exists.join(",")
            )));
        }
    }
    let mut new: Vec<Taint> = add
        .iter()
        .map(|a| {
            // An unchanged NoExecute taint keeps its timeAdded; a new one gets "now".
            let kept = old
                .iter()
                .find(|o| o.key == a.key && o.effect == a.effect && o.value == a.value)
                .map(|o| o.time_added.clone());
            Taint {
                key: a.key.clone(),
                value: a.value.clone(),
                effect: a.effect.clone(),
                time_added: if a.effect == "NoExecute" {
                    kept.unwrap_or_else(|| now.to_string())
                } else {
                    String::new()
                },
            }
        })
        .collect();
    for o in old {
        if !new.iter().any(|t| t.key == o.key && t.effect == o.effect) {
            new.push(o.clone());
        }
    }
    let added = old.len() != new.len();
    let mut errors = Vec::new();
    let mut removed = false;
    for r in remove {
        let before = new.len();
        if r.effect.is_empty() {
            new.retain(|t| t.key != r.key);
        } else {
            new.retain(|t| !(t.key == r.key && t.effect == r.effect));
        }
        removed = new.len() != before;
        if !removed {
            errors.push(format!("taint {:?} not found", r.to_taint_string()));
        }
    }
    if !errors.is_empty() {
        return Err(other(aggregate(&errors)));
    }
    let op = if (added && removed) || overwrite {
        Operation::Modified
    } else if added {
        Operation::Tainted
    } else {
        Operation::Untainted
    };
    Ok((op, new))
}

/// An aggregate error message as Kubernetes' utilerrors prints it.
fn aggregate(errors: &[String]) -> String {
    if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("[{}]", errors.join(", "))
    }
}

fn typed_node(obj: coxswain_api::Object) -> Result<Node> {
    obj.into_typed::<Node>()
        .ok_or_else(|| other("the server returned an object that is not a Node"))
}

/// Resolve node arguments: `node NAME...`, `nodes/NAME`, or a kind with -l/--all.
async fn select_nodes(
    client: &mut Client,
    resource_args: &[String],
    selector: Option<&str>,
    all: bool,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut kind_given = false;
    for a in resource_args {
        if let Some((k, n)) = a.split_once('/') {
            check_node_kind(k)?;
            names.push(n.to_string());
        } else if !kind_given && names.is_empty() {
            check_node_kind(a)?;
            kind_given = true;
        } else {
            names.push(a.clone());
        }
    }
    if names.is_empty() {
        if all || selector.is_some() {
            let (items, _) = client
                .list(Kind::Node, "", selector.unwrap_or(""), "")
                .await?;
            names = items.iter().map(|o| o.name().to_string()).collect();
        } else {
            return Err(other(
                "at least one resource name must be specified since 'all' parameter is not set",
            ));
        }
    }
    Ok(names)
}

fn check_node_kind(k: &str) -> Result<()> {
    match Kind::parse(k) {
        Some(Kind::Node) => Ok(()),
        Some(_) => Err(other(format!(
            "invalid resource type {k}, only node types are supported"
        ))),
        None => Err(other(format!(
            "the server doesn't have a resource type \"{k}\""
        ))),
    }
}

pub async fn taint(client: &mut Client, args: &TaintArgs) -> Result<()> {
    if args.all && args.selector.is_some() {
        return Err(other(
            "setting 'all' parameter with a label selector is not allowed",
        ));
    }
    // Resource arguments come first; the first argument that looks like a taint starts the
    // taint list (kubectl: anything containing '=' or ':' or ending in '-').
    let split = args
        .args
        .iter()
        .position(|a| a.contains('=') || a.contains(':') || a.ends_with('-'))
        .unwrap_or(args.args.len());
    let (res, specs) = args.args.split_at(split);
    if specs.is_empty() {
        return Err(other("at least one taint update is required"));
    }
    let (add, remove) = parse_specs(specs)?;
    let conflicts: Vec<String> = add
        .iter()
        .filter(|a| {
            remove
                .iter()
                .any(|r| r.key == a.key && (r.effect.is_empty() || r.effect == a.effect))
        })
        .map(Spec::to_taint_string)
        .collect();
    if !conflicts.is_empty() {
        return Err(other(format!(
            "can not both modify and remove the following taint(s) in the same command: {}",
            conflicts.join(", ")
        )));
    }
    let names = select_nodes(client, res, args.selector.as_deref(), args.all).await?;
    let now = coxswain_api::time::now_rfc3339();
    for name in names {
        let node = typed_node(client.get(Kind::Node, "", &name).await?)?;
        let old = node
            .spec
            .as_ref()
            .map(|s| s.taints.clone())
            .unwrap_or_default();
        let (op, new) = reorganize(&name, &old, &add, &remove, args.overwrite, &now)?;
        let taints = serde_json::to_value(&new).map_err(|e| other(e.to_string()))?;
        client
            .patch(Kind::Node, "", &name, &json!({"spec": {"taints": taints}}))
            .await?;
        println!("node/{name} {}", op.word());
    }
    Ok(())
}

// === cordon / uncordon ===

async fn set_unschedulable(client: &mut Client, name: &str, on: bool) -> Result<bool> {
    let node = typed_node(client.get(Kind::Node, "", name).await?)?;
    if node.spec.as_ref().is_some_and(|s| s.unschedulable) == on {
        return Ok(false);
    }
    client
        .patch(
            Kind::Node,
            "",
            name,
            &json!({"spec": {"unschedulable": on}}),
        )
        .await?;
    Ok(true)
}

async fn cordon_nodes(client: &mut Client, args: &CordonArgs, on: bool) -> Result<Vec<String>> {
    let names = match (&args.node, &args.selector) {
        (Some(n), _) => vec![n.strip_prefix("node/").unwrap_or(n).to_string()],
        (None, Some(sel)) => client
            .list(Kind::Node, "", sel, "")
            .await?
            .0
            .iter()
            .map(|o| o.name().to_string())
            .collect(),
        (None, None) => {
            return Err(other(
                "USAGE: cordon NODE [flags]\nSee 'coxctl cordon -h' for help and examples",
            ))
        }
    };
    let verb = if on { "cordoned" } else { "uncordoned" };
    for name in &names {
        if set_unschedulable(client, name, on).await? {
            println!("node/{name} {verb}");
        } else {
            println!("node/{name} already {verb}");
        }
    }
    Ok(names)
}

pub async fn cordon(client: &mut Client, args: &CordonArgs, on: bool) -> Result<()> {
    cordon_nodes(client, args, on).await.map(|_| ())
}

// === drain ===

/// kubectl drain's per-pod verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Delete,
    Skip,
    Warn { delete: bool, message: String },
    Error(String),
}

const DAEMONSET_FATAL: &str = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DAEMONSET_WARNING: &str = "ignoring DaemonSet-managed Pods";
const LOCAL_STORAGE_FATAL: &str =
    "Pods with local storage (use --delete-emptydir-data to override)";
const LOCAL_STORAGE_WARNING: &str = "deleting Pods with local storage";
const UNMANAGED_FATAL: &str = "Pods that declare no controller (use --force to override)";
const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";

struct DrainFlags {
    ignore_daemonsets: bool,
    delete_emptydir_data: bool,
    force: bool,
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().map(|s| s.phase.as_str()),
        Some("Succeeded" | "Failed")
    )
}

fn controller_of(pod: &Pod) -> Option<&coxswain_api::v1::OwnerReference> {
    pod.metadata
        .as_ref()?
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
}

/// kubectl's drain filters in order (daemonSet, mirrorPod, localStorage, unreplicated); the
/// last warning wins, an error or skip stops. `daemonset_exists` answers whether the pod's
/// controlling DaemonSet exists (Err = the lookup's error message).
fn verdict(
    pod: &Pod,
    flags: &DrainFlags,
    daemonset_exists: impl Fn(&str) -> std::result::Result<bool, String>,
) -> Verdict {
    let mut last = Verdict::Delete;
    // daemonSetFilter
    if let Some(c) = controller_of(pod).filter(|c| c.kind == "DaemonSet") {
        if !finished(pod) {
            match daemonset_exists(&c.name) {
                Ok(true) => {
                    if !flags.ignore_daemonsets {
                        return Verdict::Error(DAEMONSET_FATAL.into());
                    }
                    return Verdict::Warn {
                        delete: false,
                        message: DAEMONSET_WARNING.into(),
                    };
                }
                Ok(false) => {
                    let msg = format!("daemonsets.apps \"{}\" not found", c.name);
                    if !flags.force {
                        return Verdict::Error(msg);
                    }
                    last = Verdict::Warn {
                        delete: true,
                        message: msg,
                    };
                }
                Err(e) => return Verdict::Error(e),
            }
        }
    }
    // mirrorPodFilter
    if pod
        .metadata
        .as_ref()
        .is_some_and(|m| m.annotations.contains_key("kubernetes.io/config.mirror"))
    {
        return Verdict::Skip;
    }
    // localStorageFilter
    let local = pod
        .spec
        .as_ref()
        .is_some_and(|s| s.volumes.iter().any(|v| v.empty_dir.is_some()));
    if local && !finished(pod) {
        if !flags.delete_emptydir_data {
            return Verdict::Error(LOCAL_STORAGE_FATAL.into());
        }
        last = Verdict::Warn {
            delete: true,
            message: LOCAL_STORAGE_WARNING.into(),
        };
    }
    // unreplicatedFilter
    if !finished(pod) && controller_of(pod).is_none() {
        if !flags.force {
            return Verdict::Error(UNMANAGED_FATAL.into());
        }
        last = Verdict::Warn {
            delete: true,
            message: UNMANAGED_WARNING.into(),
        };
    }
    last
}

fn pod_key(p: &Pod) -> (String, String) {
    let m = p.metadata.clone().unwrap_or_default();
    (m.namespace, m.name)
}

/// Group "message: ns/a, ns/b" lines in first-seen order.
fn grouped(items: &[(String, String)]) -> Vec<String> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (msg, pod) in items {
        match groups.iter_mut().find(|(m, _)| m == msg) {
            Some((_, pods)) => pods.push(pod.clone()),
            None => groups.push((msg.clone(), vec![pod.clone()])),
        }
    }
    groups
        .into_iter()
        .map(|(m, pods)| format!("{m}: {}", pods.join(", ")))
        .collect()
}

/// A Go duration (`30s`, `2m`, `1h30m`, `500ms`, `0`): the one parser, Go's `time.ParseDuration`.
fn parse_go_duration(s: &str) -> Option<Duration> {
    coxswain_api::duration::parse(s).ok()
}

/// A duration as Go prints it (`30s`, `2m0s`, `1h0m0s`, `1.5s`).
fn format_go_duration(d: Duration) -> String {
    let total = d.as_secs();
    let frac = d.subsec_millis();
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let secs = if frac > 0 {
        format!("{s}.{}", format!("{frac:03}").trim_end_matches('0'))
    } else {
        s.to_string()
    };
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else if total == 0 && frac > 0 {
        format!("{frac}ms")
    } else {
        format!("{secs}s")
    }
}

fn parse_timeout(s: &str) -> Result<Option<Duration>> {
    let d = parse_go_duration(s).ok_or_else(|| {
        other(format!(
            "invalid argument \"{s}\" for \"--timeout\" flag: time: invalid duration \"{s}\""
        ))
    })?;
    Ok((!d.is_zero()).then_some(d))
}

pub async fn drain(client: &mut Client, args: &DrainArgs) -> Result<()> {
    let timeout = parse_timeout(&args.timeout)?;
    let cordon_args = CordonArgs {
        node: args.node.clone(),
        selector: args.selector.clone(),
    };
    let names = cordon_nodes(client, &cordon_args, true).await?;
    let flags = DrainFlags {
        ignore_daemonsets: args.ignore_daemonsets,
        delete_emptydir_data: args.delete_emptydir_data,
        force: args.force,
    };
    let mut remaining = Vec::new();
    let mut fatal: Option<Vec<String>> = None;
    for name in &names {
        match drain_one(client, name, &flags, args.grace_period, timeout).await {
            Ok(()) => println!("node/{name} drained"),
            Err(errs) => {
                eprintln!(
                    "error: unable to drain node {name:?} due to error: {}, continuing command...",
                    aggregate(&errs)
                );
                remaining.push(name.clone());
                fatal = Some(errs);
            }
        }
    }
    if let Some(errs) = fatal {
        eprintln!("There are pending nodes to be drained:");
        for n in &remaining {
            eprintln!(" {n}");
        }
        for e in errs {
            eprintln!("{e}");
        }
        return Err(CliError::Reported);
    }
    Ok(())
}

async fn drain_one(
    client: &mut Client,
    node: &str,
    flags: &DrainFlags,
    grace_period: i32,
    timeout: Option<Duration>,
) -> std::result::Result<(), Vec<String>> {
    let err = |e: CliError| vec![e.to_string()];
    let (items, _) = client
        .list(Kind::Pod, "", "", &format!("spec.nodeName={node}"))
        .await
        .map_err(err)?;
    let pods: Vec<Pod> = items
        .into_iter()
        .filter_map(|o| o.into_typed::<Pod>())
        .collect();
    // Which controlling DaemonSets exist.
    let mut ds_exists: Vec<((String, String), std::result::Result<bool, String>)> = Vec::new();
    for p in &pods {
        if let Some(c) = controller_of(p).filter(|c| c.kind == "DaemonSet") {
            let ns = pod_key(p).0;
            let key = (ns.clone(), c.name.clone());
            if ds_exists.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let r = match client.get(Kind::DaemonSet, &ns, &c.name).await {
                Ok(_) => Ok(true),
                Err(CliError::Server {
                    reason: "NotFound", ..
                }) => Ok(false),
                Err(e) => Err(e.to_string()),
            };
            ds_exists.push((key, r));
        }
    }
    let mut to_delete = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for p in &pods {
        let (ns, name) = pod_key(p);
        let v = verdict(p, flags, |ds| {
            ds_exists
                .iter()
                .find(|((n, d), _)| *n == ns && d == ds)
                .map(|(_, r)| r.clone())
                .unwrap_or(Ok(false))
        });
        let id = format!("{ns}/{name}");
        match v {
            Verdict::Delete => to_delete.push(p.clone()),
            Verdict::Skip => {}
            Verdict::Warn { delete, message } => {
                warnings.push((message, id));
                if delete {
                    to_delete.push(p.clone());
                }
            }
            Verdict::Error(message) => errors.push((message, id)),
        }
    }
    if !errors.is_empty() {
        return Err(grouped(&errors)
            .into_iter()
            .map(|e| format!("cannot delete {e}"))
            .collect());
    }
    if !warnings.is_empty() {
        eprintln!("Warning: {}", grouped(&warnings).join("; "));
    }
    let grace = (grace_period >= 0).then_some(grace_period);
    for p in &to_delete {
        let (ns, name) = pod_key(p);
        println!("evicting pod {ns}/{name}");
        match client.delete(Kind::Pod, &ns, &name, "", grace).await {
            Ok(_)
            | Err(CliError::Server {
                reason: "NotFound", ..
            }) => {}
            Err(e) => {
                return Err(vec![format!(
                    "error when evicting pods/{name:?} -n {ns:?}: {e}"
                )])
            }
        }
    }
    // Wait until every evicted pod is gone (or replaced by a new one of the same name).
    let start = tokio::time::Instant::now();
    let mut pending: Vec<Pod> = to_delete;
    loop {
        let mut still = Vec::new();
        for p in pending {
            let (ns, name) = pod_key(&p);
            let uid = p
                .metadata
                .as_ref()
                .map(|m| m.uid.clone())
                .unwrap_or_default();
            match client.get(Kind::Pod, &ns, &name).await {
                Ok(o) if o.meta().uid == uid => still.push(p),
                Ok(_)
                | Err(CliError::Server {
                    reason: "NotFound", ..
                }) => println!("pod/{name} evicted"),
                Err(e) => return Err(err(e)),
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if let Some(t) = timeout {
            if start.elapsed() >= t {
                return Err(vec![format!(
                    "drain did not complete within {}",
                    format_go_duration(t)
                )]);
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{
        EmptyDirVolumeSource, ObjectMeta, OwnerReference, PodSpec, PodStatus, Volume,
    };

    fn specs(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn t(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
            time_added: String::new(),
        }
    }

    #[test]
    fn taint_specs_parse_as_kubectl() {
        let (add, remove) = parse_specs(&specs(&[
            "tag=mayikt:NoSchedule",
            "node-role.kubernetes.io/master=:NoSchedule",
            "dedicated:NoExecute",
            "gone:NoSchedule-",
            "key-",
            "tag=mayikt:PreferNoSchedule-",
        ]))
        .unwrap();
        assert_eq!(add.len(), 3);
        assert_eq!(add[0].to_taint_string(), "tag=mayikt:NoSchedule");
        assert_eq!(
            add[1].to_taint_string(),
            "node-role.kubernetes.io/master:NoSchedule"
        );
        assert_eq!(add[2].to_taint_string(), "dedicated:NoExecute");
        let r: Vec<String> = remove.iter().map(Spec::to_taint_string).collect();
        assert_eq!(r, vec!["gone:NoSchedule", "key", "tag:PreferNoSchedule"]);
    }

    #[test]
    fn bad_taint_specs_fail_as_kubectl() {
        let e = |a: &str| parse_specs(&specs(&[a])).unwrap_err().to_string();
        assert_eq!(
            e("tag=mayikt:Sometimes"),
            "error: invalid taint effect: Sometimes, unsupported taint effect"
        );
        assert_eq!(e("tag"), "error: unknown taint spec: tag");
        assert!(e("tag=mayikt").starts_with("error: invalid taint spec: tag=mayikt, name part"));
        assert_eq!(
            e("a=b=c:NoSchedule"),
            "error: invalid taint spec: a=b=c:NoSchedule"
        );
        assert_eq!(e("a:b:c"), "error: invalid taint spec: a:b:c");
        assert!(e("-bad:NoSchedule")
            .starts_with("error: invalid taint spec: -bad:NoSchedule, name part"));
        assert_eq!(
            parse_specs(&specs(&["a=1:NoSchedule", "a=2:NoSchedule"]))
                .unwrap_err()
                .to_string(),
            "error: duplicated taints with the same key and effect: a=2:NoSchedule"
        );
    }

    #[test]
    fn adding_an_existing_taint_needs_overwrite() {
        let old = vec![t("tag", "mayikt", "NoSchedule")];
        let (add, _) = parse_specs(&specs(&["tag=other:NoSchedule"])).unwrap();
        let e = reorganize("node1", &old, &add, &[], false, "now").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: node node1 already has tag taint(s) with same effect(s) and --overwrite is false"
        );
        let (op, new) = reorganize("node1", &old, &add, &[], true, "now").unwrap();
        assert_eq!(op, Operation::Modified);
        assert_eq!(new, vec![t("tag", "other", "NoSchedule")]);
        // Same key, other effect: a second taint.
        let (add, _) = parse_specs(&specs(&["tag=mayikt:NoExecute"])).unwrap();
        let (op, new) =
            reorganize("node1", &old, &add, &[], false, "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(op, Operation::Tainted);
        assert_eq!(new.len(), 2);
        assert_eq!(new[0].time_added, "2026-01-01T00:00:00Z");
        assert_eq!(new[1].time_added, "");
    }

    #[test]
    fn removing_taints_by_key_and_effect_or_by_key() {
        let old = vec![
            t("tag", "mayikt", "NoSchedule"),
            t("tag", "mayikt", "NoExecute"),
            t("other", "", "PreferNoSchedule"),
        ];
        let (_, rm) = parse_specs(&specs(&["tag=mayikt:NoExecute-"])).unwrap();
        let (op, new) = reorganize("n", &old, &[], &rm, false, "now").unwrap();
        assert_eq!(op, Operation::Untainted);
        assert_eq!(new, vec![old[0].clone(), old[2].clone()]);
        let (_, rm) = parse_specs(&specs(&["tag-"])).unwrap();
        let (_, new) = reorganize("n", &old, &[], &rm, false, "now").unwrap();
        assert_eq!(new, vec![old[2].clone()]);
        let (_, rm) = parse_specs(&specs(&["missing:NoSchedule-"])).unwrap();
        let e = reorganize("n", &old, &[], &rm, false, "now").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: taint \"missing:NoSchedule\" not found"
        );
    }

    fn pod(owner: Option<&str>, empty_dir: bool, phase: &str) -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                name: "p".into(),
                namespace: "default".into(),
                owner_references: owner
                    .map(|k| {
                        vec![OwnerReference {
                            kind: k.into(),
                            name: "owner".into(),
                            controller: Some(true),
                            ..Default::default()
                        }]
                    })
                    .unwrap_or_default(),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                volumes: if empty_dir {
                    vec![Volume {
                        name: "v".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    }]
                } else {
                    vec![]
                },
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: phase.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(format_go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_go_duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn drain_filters_follow_kubectl() {
        let none = DrainFlags {
            ignore_daemonsets: false,
            delete_emptydir_data: false,
            force: false,
        };
        let all = DrainFlags {
            ignore_daemonsets: true,
            delete_emptydir_data: true,
            force: true,
        };
        let exists = |_: &str| Ok(true);
        assert_eq!(
            verdict(&pod(Some("ReplicaSet"), false, "Running"), &none, exists),
            Verdict::Delete
        );
        assert_eq!(
            verdict(&pod(Some("DaemonSet"), false, "Running"), &none, exists),
            Verdict::Error(DAEMONSET_FATAL.into())
        );
        assert_eq!(
            verdict(&pod(Some("DaemonSet"), false, "Running"), &all, exists),
            Verdict::Warn {
                delete: false,
                message: DAEMONSET_WARNING.into()
            }
        );
        assert_eq!(
            verdict(&pod(None, false, "Running"), &none, exists),
            Verdict::Error(UNMANAGED_FATAL.into())
        );
        assert_eq!(
            verdict(&pod(None, false, "Running"), &all, exists),
            Verdict::Warn {
                delete: true,
                message: UNMANAGED_WARNING.into()
            }
        );
        assert_eq!(
            verdict(&pod(Some("ReplicaSet"), true, "Running"), &none, exists),
            Verdict::Error(LOCAL_STORAGE_FATAL.into())
        );
        // Finished pods always go.
        assert_eq!(
            verdict(&pod(None, true, "Succeeded"), &none, exists),
            Verdict::Delete
        );
        // An orphaned DaemonSet pod needs --force.
        let gone = |_: &str| Ok(false);
        assert_eq!(
            verdict(&pod(Some("DaemonSet"), false, "Running"), &none, gone),
            Verdict::Error("daemonsets.apps \"owner\" not found".into())
        );
        assert_eq!(
            grouped(&[
                ("m1".into(), "ns/a".into()),
                ("m2".into(), "ns/b".into()),
                ("m1".into(), "ns/c".into())
            ]),
            vec!["m1: ns/a, ns/c", "m2: ns/b"]
        );
    }
}

#[cfg(test)]
mod cli_tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn taint_flags_parse_after_the_taint_arguments() {
        let cli = Cli::try_parse_from([
            "coxctl",
            "taint",
            "nodes",
            "node1",
            "tag=mayikt:NoExecute",
            "key-",
            "--overwrite",
        ])
        .unwrap();
        let Command::Taint(a) = cli.command else {
            panic!("not taint")
        };
        assert!(a.overwrite);
        assert_eq!(
            a.args,
            vec!["nodes", "node1", "tag=mayikt:NoExecute", "key-"]
        );
        let cli =
            Cli::try_parse_from(["coxctl", "drain", "node2", "--grace-period", "-1"]).unwrap();
        let Command::Drain(d) = cli.command else {
            panic!("not drain")
        };
        assert_eq!(d.grace_period, -1);
    }
}
