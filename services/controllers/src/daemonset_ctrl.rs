//! The DaemonSet controller (Kubernetes' `DaemonSetsController.syncDaemonSet`): one pod per
//! node that should run it; pods are pinned to their node by node affinity and bound by the
//! scheduler; pods on nodes that no longer qualify (relabelled, NoExecute-tainted, deleted) are
//! deleted; RollingUpdate (maxUnavailable) or OnDelete; ControllerRevisions; status.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1::{DaemonSetStatus, Pod};
use coxswain_api::Resource;

use crate::daemonset::{
    add_daemon_tolerations, node_affinity_for, node_should_run, plan_node,
    rolling_update_deletions, target_node, DaemonPod,
};
use crate::deployment_ctrl::CHANGE_CAUSE_ANNOTATION;
use crate::manager::{exp_key, Ctx};
use crate::podctl::{create_pods, delete_pods, now, pod_from_template};
use crate::replicaset::{is_pod_available, is_pod_ready, ready_since};
use crate::runtime::{controller_ref, key_of, split_key, Action, Result};
use crate::statefulset::REVISION_LABEL;
use crate::time::parse_rfc3339;

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map_or("", |s| s.phase.as_str())
}

pub async fn reconcile(ctx: Arc<Ctx>, key: String) -> Result<Action> {
    if key == "*" {
        for d in ctx.ds.list() {
            ctx.q.ds.add(key_of(d.metadata()));
        }
        return Ok(Action::Await);
    }
    let (ns, name) = split_key(&key);
    let ek = exp_key("DaemonSet", ns, name);
    let Some(ds) = ctx.ds.get(ns, name) else {
        ctx.exp.forget(&ek);
        return Ok(Action::Await);
    };
    if !ds.metadata().deletion_timestamp.is_empty() {
        return Ok(Action::Await);
    }
    let spec = ds.spec.clone().unwrap_or_default();
    let template = spec.template.clone().unwrap_or_default();
    let tspec = template.spec.clone().unwrap_or_default();
    let cause = ds
        .metadata()
        .annotations
        .get(CHANGE_CAUSE_ANNOTATION)
        .cloned();
    let (hash, _) =
        crate::revisions::ensure(&ctx, ds.as_ref(), "DaemonSet", &template, cause.as_ref()).await?;

    let uid = ds.metadata().uid.clone();
    // Owned pods, after adopting matching orphans and releasing pods that no longer match.
    let Ok(selector) = coxswain_api::selector::LabelSelector::from_proto(spec.selector.as_ref())
    else {
        return Ok(Action::Await);
    };
    // Expectations first, then the cache, as upstream's syncs do: read the other way round, a
    // pod created by the previous sync can land in the cache (satisfying the expectations)
    // after this sync read the cache without it, and this sync would create it twice.
    let needs_sync = ctx.exp.satisfied(&ek);
    let pods: Vec<Arc<Pod>> =
        crate::replicaset_ctrl::claim_pods(&ctx, ds.as_ref(), "apps/v1", "DaemonSet", &selector)
            .await?;
    let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    let mut homeless: Vec<Arc<Pod>> = Vec::new();
    for p in &pods {
        match p.spec.as_ref().and_then(target_node) {
            Some(n) => by_node.entry(n).or_default().push(p.clone()),
            None => homeless.push(p.clone()),
        }
    }
    let nodes = ctx.nodes.list();
    let node_names: BTreeSet<String> = nodes.iter().map(|n| n.metadata().name.clone()).collect();
    let now = now();
    let min_ready = spec.min_ready_seconds;

    let mut status = DaemonSetStatus {
        observed_generation: ds.metadata().generation,
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        conditions: ds
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut to_create: Vec<String> = Vec::new();
    let mut to_delete: Vec<Arc<Pod>> = Vec::new();
    // (node, pod, available) of live pods from an older revision, on nodes that should run.
    let mut old: Vec<(String, String, bool)> = Vec::new();
    let mut unavailable_nodes = 0;
    for node in &nodes {
        let nname = node.metadata().name.clone();
        let (should_run, may_continue) = node_should_run(&tspec, node);
        let on_node = by_node.get(&nname).cloned().unwrap_or_default();
        let live: Vec<&Arc<Pod>> = on_node
            .iter()
            .filter(|p| {
                p.metadata().deletion_timestamp.is_empty()
                    && !matches!(phase(p), "Succeeded" | "Failed")
            })
            .collect();
        if should_run {
            status.desired_number_scheduled += 1;
            if !live.is_empty() {
                status.current_number_scheduled += 1;
            }
            let p = live.first();
            let ready = p.is_some_and(|p| is_pod_ready(p));
            let available = p.is_some_and(|p| is_pod_available(p, min_ready, now));
            if ready {
                status.number_ready += 1;
            }
            if available {
                status.number_available += 1;
            } else {
                unavailable_nodes += 1;
            }
            if let Some(p) = p {
                let current = p.metadata().labels.get(REVISION_LABEL) == Some(&hash);
                if current {
                    status.updated_number_scheduled += 1;
                } else {
                    old.push((nname.clone(), p.metadata().name.clone(), available));
                }
            }
        } else if !live.is_empty() {
            status.number_misscheduled += 1;
        }
        let views: Vec<DaemonPod> = on_node
            .iter()
            .map(|p| DaemonPod {
                name: p.metadata().name.clone(),
                terminal: matches!(phase(p), "Succeeded" | "Failed"),
                terminating: !p.metadata().deletion_timestamp.is_empty(),
                created: parse_rfc3339(&p.metadata().creation_timestamp).unwrap_or(0),
            })
            .collect();
        let (create, delete) = plan_node(should_run, may_continue, &views);
        if create {
            to_create.push(nname.clone());
        }
        for d in delete {
            if let Some(p) = on_node.iter().find(|p| p.metadata().name == d) {
                to_delete.push(p.clone());
            }
        }
    }
    // Pods for nodes that no longer exist, or pinned to no node at all.
    for (n, ps) in &by_node {
        if !node_names.contains(n) {
            to_delete.extend(
                ps.iter()
                    .filter(|p| p.metadata().deletion_timestamp.is_empty())
                    .cloned(),
            );
        }
    }
    to_delete.extend(
        homeless
            .into_iter()
            .filter(|p| p.metadata().deletion_timestamp.is_empty()),
    );
    status.number_unavailable = unavailable_nodes;

    // RollingUpdate: replace old pods within maxUnavailable.
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.r#type != "OnDelete" && !old.is_empty() {
        let max_unavailable = strategy
            .rolling_update
            .as_ref()
            .and_then(|r| r.max_unavailable.as_ref())
            .map(|v| v.scaled_value(status.desired_number_scheduled, true))
            .transpose()
            .map_err(|e| anyhow::anyhow!("spec.updateStrategy.rollingUpdate.maxUnavailable: {e}"))?
            .unwrap_or(1)
            .max(if status.desired_number_scheduled > 0 {
                1
            } else {
                0
            });
        for pname in rolling_update_deletions(&old, max_unavailable, unavailable_nodes) {
            if let Some(p) = pods.iter().find(|p| p.metadata().name == pname) {
                if !to_delete
                    .iter()
                    .any(|d| d.metadata().uid == p.metadata().uid)
                {
                    to_delete.push(p.clone());
                }
            }
        }
    }

    let mut err = None;
    if needs_sync {
        if !to_delete.is_empty() {
            err = delete_pods(&ctx, ds.as_ref(), &ek, to_delete).await;
        } else if !to_create.is_empty() {
            let owner = controller_ref("apps/v1", "DaemonSet", ds.metadata());
            let new: Vec<Pod> = to_create
                .iter()
                .map(|node| {
                    let mut p =
                        pod_from_template(&template, ns, owner.clone(), &format!("{name}-"));
                    p.metadata
                        .get_or_insert_with(Default::default)
                        .labels
                        .insert(REVISION_LABEL.into(), hash.clone());
                    let s = p.spec.get_or_insert_with(Default::default);
                    add_daemon_tolerations(s);
                    s.affinity = Some(node_affinity_for(s.affinity.as_ref(), node));
                    p
                })
                .collect();
            ctx.exp.expect_creations(&ek, new.len());
            err = create_pods(&ctx, ds.as_ref(), &ek, new).await.1;
        }
    }

    if ds.status.as_ref() != Some(&status) {
        let mut nd = (*ds).clone();
        nd.status = Some(status.clone());
        match ctx.client.update_status(&nd).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(Action::Await),
            Err(e) => return Err(e.into()),
        }
    }
    let limit = spec.revision_history_limit.unwrap_or(10);
    let in_use: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata().labels.get(REVISION_LABEL).cloned())
        .chain(std::iter::once(hash))
        .collect();
    crate::revisions::truncate(&ctx, &uid, limit, &in_use).await?;
    if let Some(e) = err {
        return Err(e.into());
    }
    if min_ready > 0 && status.number_ready > status.number_available {
        let wait = pods
            .iter()
            .filter_map(|p| ready_since(p))
            .map(|t| t + i64::from(min_ready) + 1 - now)
            .filter(|d| *d > 0)
            .min()
            .unwrap_or(1);
        return Ok(Action::Requeue(Duration::from_secs(wait as u64)));
    }
    Ok(Action::Await)
}
