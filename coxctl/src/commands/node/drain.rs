//! `coxctl drain`: cordon, then evict every pod kubectl's drain filters allow, and wait until
//! they are gone.
use std::time::Duration;

use coxswain_api::v1::Pod;
use coxswain_api::Kind;

use super::{aggregate, cordon_nodes, CordonArgs, DrainArgs};
use crate::client::{other, CliError, Client, Result};

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
