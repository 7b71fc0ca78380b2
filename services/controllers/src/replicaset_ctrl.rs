//! The ReplicaSet controller (Kubernetes' `ReplicaSetController.syncReplicaSet`): adopt matching
//! orphan pods and release owned pods that no longer match, create/delete toward spec.replicas
//! (slow start, deletion ranking, at most 500 per sync, expectations), write status.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::Pod;
use coxswain_api::Resource;

use crate::manager::{exp_key, Ctx, ORPHAN_INDEX};
use crate::podctl::{adopt, create_pods, delete_pods, now, pod_from_template, release};
use crate::replicaset::{
    is_pod_active, is_pod_ready, pods_to_delete, ready_since, replica_diff, replica_set_status,
    ReplicaDiff,
};
use crate::runtime::{controller_of, controller_ref, split_key, Action, Result};

/// The pods `owner_uid` controls after adoption/release by `selector`.
pub async fn claim_pods<O: Resource>(
    ctx: &Arc<Ctx>,
    owner: &O,
    api_version: &str,
    kind: &str,
    selector: &LabelSelector,
) -> Result<Vec<Arc<Pod>>> {
    let m = owner.metadata();
    let mut out = Vec::new();
    for p in ctx.pods.by_owner(&m.uid) {
        let pm = p.metadata();
        if controller_of(pm).is_none_or(|r| r.uid != m.uid) {
            continue;
        }
        if selector.matches(&pm.labels) {
            out.push(p);
        } else if pm.deletion_timestamp.is_empty() {
            // No longer matches: release it (it becomes an orphan).
            match release(ctx, p.as_ref(), &m.uid).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    // Adopt orphans, unless the owner is being deleted.
    let candidates: Vec<Arc<Pod>> = ctx
        .pods
        .by_index(ORPHAN_INDEX, &m.namespace)
        .into_iter()
        .filter(|p| {
            let pm = p.metadata();
            pm.deletion_timestamp.is_empty() && selector.matches(&pm.labels)
        })
        .collect();
    if m.deletion_timestamp.is_empty() && !candidates.is_empty() && can_adopt(ctx, owner).await? {
        for p in candidates {
            match adopt(ctx, p.as_ref(), controller_ref(api_version, kind, m)).await {
                Ok(np) => out.push(Arc::new(np)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// Kubernetes' `RecheckDeletionTimestamp`: before adopting, read the owner from the store (not
/// the cache) and adopt only if it is the same object and not being deleted. (The cache may lag:
/// an orphaning delete first marks the owner, then strips the references of its dependents.)
pub async fn can_adopt<O: Resource>(ctx: &Arc<Ctx>, owner: &O) -> Result<bool> {
    let m = owner.metadata();
    Ok(ctx
        .client
        .get::<O>(&m.namespace, &m.name)
        .await?
        .is_some_and(|o| o.metadata().uid == m.uid && o.metadata().deletion_timestamp.is_empty()))
}

pub async fn reconcile(ctx: Arc<Ctx>, key: String) -> Result<Action> {
    let (ns, name) = split_key(&key);
    let ek = exp_key("ReplicaSet", ns, name);
    let Some(rs) = ctx.rs.get(ns, name) else {
        ctx.exp.forget(&ek);
        return Ok(Action::Await);
    };
    let spec = rs.spec.clone().unwrap_or_default();
    let Ok(selector) = LabelSelector::from_proto(spec.selector.as_ref()) else {
        return Ok(Action::Await);
    };
    // Expectations first, then the cache, as upstream's syncs do: read the other way round, a
    // pod created by the previous sync can land in the cache (satisfying the expectations)
    // after this sync read the cache without it, and this sync would create it twice.
    let needs_sync = ctx.exp.satisfied(&ek);
    let pods = claim_pods(&ctx, rs.as_ref(), "apps/v1", "ReplicaSet", &selector).await?;
    let active: Vec<Arc<Pod>> = pods.iter().filter(|p| is_pod_active(p)).cloned().collect();

    let mut err = None;
    let deleting = !rs.metadata().deletion_timestamp.is_empty();
    if needs_sync && !deleting {
        let desired = spec.replicas.unwrap_or(1);
        match replica_diff(desired, active.len()) {
            ReplicaDiff::InSync => {}
            ReplicaDiff::Create(n) => {
                let template = spec.template.clone().unwrap_or_default();
                let owner = controller_ref("apps/v1", "ReplicaSet", rs.metadata());
                let new: Vec<Pod> = (0..n)
                    .map(|_| pod_from_template(&template, ns, owner.clone(), &format!("{name}-")))
                    .collect();
                ctx.exp.expect_creations(&ek, n);
                err = create_pods(&ctx, rs.as_ref(), &ek, new).await.1;
            }
            ReplicaDiff::Delete(n) => {
                let victims: Vec<Arc<Pod>> = pods_to_delete(&active, n)
                    .into_iter()
                    .map(|i| active[i].clone())
                    .collect();
                err = delete_pods(&ctx, rs.as_ref(), &ek, victims).await;
            }
        }
    }

    // Status from the cache (the pods just created show up through the watch and trigger
    // another sync).
    let now = now();
    let status = replica_set_status(&rs, &pods, now);
    if rs.status.as_ref() != Some(&status) {
        let mut new = (*rs).clone();
        new.status = Some(status.clone());
        match ctx.client.update_status(&new).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(Action::Await),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(e) = err {
        return Err(e.into());
    }
    // minReadySeconds: look again when the next ready pod becomes available.
    let min_ready = spec.min_ready_seconds;
    if min_ready > 0 && status.ready_replicas > status.available_replicas {
        let wait = active
            .iter()
            .filter(|p| is_pod_ready(p))
            .filter_map(|p| ready_since(p))
            .map(|t| t + i64::from(min_ready) + 1 - now)
            .filter(|d| *d > 0)
            .min()
            .unwrap_or(1);
        return Ok(Action::Requeue(Duration::from_secs(wait as u64)));
    }
    Ok(Action::Await)
}
