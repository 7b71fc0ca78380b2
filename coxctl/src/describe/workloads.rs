//! `describe` for Deployments, ReplicaSets, DaemonSets and StatefulSets (kubectl's
//! describeDeployment, describeReplicaSet, describeDaemonSet, describeStatefulSet).
use serde_json::Value;

use crate::jv::{arr, at, format_labels, format_selector, i, map, opt_i, s};

use super::pod::pod_template;
use super::{annotations, conditions, controller_of, header, pairs, strs, ts, Related, W};

pub(super) fn rs_summary(rs: &Value) -> String {
    format!(
        "{} ({}/{} replicas created)",
        s(rs, "metadata.name"),
        i(rs, "status.replicas"),
        opt_i(rs, "spec.replicas").unwrap_or(1)
    )
}

pub(super) fn template_without_hash(v: &Value) -> Value {
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

pub(super) fn describe_deployment(w: &mut W, o: &Value, rel: &Related) {
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

pub(super) fn pod_counts(pods: &[Value]) -> (usize, usize, usize, usize) {
    let count = |p: &str| pods.iter().filter(|x| s(x, "status.phase") == p).count();
    (
        count("Running"),
        count("Pending"),
        count("Succeeded"),
        count("Failed"),
    )
}

/// `Selector:` from spec.selector.
pub(super) fn selector_line(w: &mut W, o: &Value) {
    w.line(
        0,
        format!("Selector:\t{}", format_selector(at(o, "spec.selector"))),
    );
}

/// The head kubectl prints for ReplicaSets and Jobs: name, namespace, selector, labels,
/// annotations and the controller.
pub(super) fn selector_head(w: &mut W, o: &Value) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    selector_line(w, o);
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    if let Some(c) = controller_of(o) {
        w.line(0, format!("Controlled By:\t{c}"));
    }
}

pub(super) fn describe_replicaset(w: &mut W, o: &Value, rel: &Related) {
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

pub(super) fn describe_daemonset(w: &mut W, o: &Value, rel: &Related) {
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

pub(super) fn describe_statefulset(w: &mut W, o: &Value, rel: &Related) {
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
