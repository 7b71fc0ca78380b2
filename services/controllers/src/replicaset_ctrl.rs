//! The ReplicaSet controller (Kubernetes' `ReplicaSetController.syncReplicaSet`): adopt matching
//! orphan pods and release owned pods that no longer match, create/delete toward spec.replicas
//! (slow start, deletion ranking, at most 500 per sync, expectations), write status. Scaling
//! down ranks the pods as upstream's `getPodsToDelete`, with the co-location counts over the
//! pods of every ReplicaSet sharing this one's controller ([`related_pods`]).
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{Pod, ReplicaSet};
use coxswain_api::Resource;
use coxswain_client::Cache;

use crate::manager::{exp_key, Ctx, ORPHAN_INDEX};
use crate::podctl::{adopt, create_pods, delete_pods, now, pod_from_template, release};
use crate::replicaset::{
    active_pods_on_node, is_pod_active, is_pod_ready, now_nanos, ready_since, replica_diff,
    replica_set_pods_to_delete, replica_set_status, ReplicaDiff,
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

/// Upstream's `getIndirectlyRelatedPods`: the pods (from the cache, active or not) matching the
/// selector of any ReplicaSet with the same controller as `rs` (for a Deployment: all its
/// ReplicaSets, old and new), each once. A ReplicaSet without a controller has none, as
/// upstream (its pods then all rank 0 for co-location). A related ReplicaSet whose selector does
/// not parse contributes no pods, as upstream (it "does not match any pods"; validation rejects
/// such selectors anyway).
pub fn related_pods(rss: &Cache<ReplicaSet>, pods: &Cache<Pod>, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
    let Some(cref) = controller_of(rs.metadata()) else {
        return Vec::new();
    };
    let ns = &rs.metadata().namespace;
    let selectors: Vec<LabelSelector> = rss
        .by_owner(&cref.uid)
        .into_iter()
        .filter(|r| {
            r.metadata().namespace == *ns
                && controller_of(r.metadata()).is_some_and(|c| c.uid == cref.uid)
        })
        .filter_map(|r| {
            LabelSelector::from_proto(r.spec.as_ref().and_then(|s| s.selector.as_ref())).ok()
        })
        .collect();
    if selectors.is_empty() {
        return Vec::new();
    }
    pods.list_namespace(ns)
        .into_iter()
        .filter(|p| {
            let labels = &p.metadata().labels;
            selectors.iter().any(|s| s.matches(labels))
        })
        .collect()
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
                let related = related_pods(&ctx.rs, &ctx.pods, rs.as_ref());
                let on_node = active_pods_on_node(&related);
                let victims: Vec<Arc<Pod>> =
                    replica_set_pods_to_delete(&active, &on_node, Some(now_nanos()), n)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::rank_for_deletion;
    use crate::replicaset::tests::pod;
    use coxswain_api::v1::{LabelSelector as Selector, ObjectMeta, OwnerReference, ReplicaSetSpec};
    use coxswain_client::{Informer, WatchEvent};

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            uid: uid.into(),
            controller: Some(true),
            ..Default::default()
        }
    }

    fn replica_set(name: &str, uid: &str, controller: Option<&str>, hash: &str) -> ReplicaSet {
        ReplicaSet {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                uid: uid.into(),
                owner_references: controller.map(owner).into_iter().collect(),
                ..Default::default()
            }),
            spec: Some(ReplicaSetSpec {
                selector: Some(Selector {
                    match_labels: [("app".to_string(), "web".to_string())]
                        .into_iter()
                        .chain(Some(("hash".to_string(), hash.to_string())))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A Running, Ready pod of `hash` on `node`, controlled by `rs_uid`.
    fn rs_pod(name: &str, node: &str, hash: &str, rs_uid: &str) -> Pod {
        let mut p = pod(name, "Running", node, Some(1_000), 0, 1_000);
        let m = p.metadata.as_mut().unwrap();
        m.namespace = "default".into();
        m.uid = format!("uid-{name}");
        m.labels = [("app", "web"), ("hash", hash)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.owner_references = vec![owner(rs_uid)];
        p
    }

    /// Upstream's rule 5 counts the pods of every ReplicaSet of the same Deployment: the new
    /// ReplicaSet's pod on the node crowded with the old ReplicaSet's pods goes first, though
    /// within the new ReplicaSet alone both nodes hold one pod.
    #[tokio::test]
    async fn co_location_counts_the_related_replica_sets_pods() {
        let rss: Cache<ReplicaSet> = Informer::detached().start();
        let pods: Cache<Pod> = Informer::detached().start();
        let new = replica_set("web-new", "rs-new", Some("deploy-1"), "new");
        let old = replica_set("web-old", "rs-old", Some("deploy-1"), "old");
        let other = replica_set("other", "rs-other", Some("deploy-2"), "other");
        for r in [&new, &old, &other] {
            rss.apply(WatchEvent::Added(r.clone()));
        }
        let mut gone = rs_pod("old-3", "n2", "old", "rs-old");
        gone.status.as_mut().unwrap().phase = "Succeeded".into();
        for p in [
            rs_pod("new-a", "n1", "new", "rs-new"),
            rs_pod("new-b", "n2", "new", "rs-new"),
            rs_pod("old-1", "n1", "old", "rs-old"),
            rs_pod("old-2", "n1", "old", "rs-old"),
            gone,
            // Another Deployment's pods on n2 are not related.
            rs_pod("other-1", "n2", "other", "rs-other"),
            rs_pod("other-2", "n2", "other", "rs-other"),
            rs_pod("other-3", "n2", "other", "rs-other"),
        ] {
            pods.apply(WatchEvent::Added(p));
        }
        let related = related_pods(&rss, &pods, &new);
        let mut names: Vec<&str> = related.iter().map(|p| p.metadata().name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["new-a", "new-b", "old-1", "old-2", "old-3"]);
        let on_node = active_pods_on_node(&related);
        assert_eq!((on_node.get("n1"), on_node.get("n2")), (Some(&3), Some(&1)));

        let mine: Vec<Arc<Pod>> = pods.by_owner("rs-new");
        let first = rank_for_deletion(&mine, &on_node, None)[0];
        assert_eq!(
            mine[first].metadata().name,
            "new-a",
            "n1 holds 3 related pods"
        );

        // A ReplicaSet without a controller has no related pods (upstream: all rank 0).
        let lone = replica_set("lone", "rs-lone", None, "new");
        assert!(related_pods(&rss, &pods, &lone).is_empty());
    }
}
