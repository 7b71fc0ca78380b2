//! The StatefulSet controller (Kubernetes' `StatefulSetControl.UpdateStatefulSet`): ordinal pods
//! `<set>-<n>` with hostname = pod name and subdomain = serviceName, one PVC per claim template
//! and pod (`<claim>-<pod>`, created once and kept), OrderedReady or Parallel management,
//! RollingUpdate in reverse ordinal order down to the partition, OnDelete, ControllerRevisions
//! and status (currentRevision/updateRevision).
use std::collections::BTreeSet;
use std::sync::Arc;

use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{
    ObjectMeta, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec,
    StatefulSet, StatefulSetStatus, Volume,
};
use coxswain_api::Resource;
use coxswain_client::ObjectRef;

use crate::deployment_ctrl::CHANGE_CAUSE_ANNOTATION;
use crate::manager::{exp_key, Ctx};
use crate::podctl::{create_pods, delete_pods, now};
use crate::replicaset::{is_pod_available, is_pod_ready};
use crate::replicaset_ctrl::claim_pods;
use crate::runtime::{controller_ref, split_key, Action, Result};
use crate::statefulset::{
    claim_name, ordinal_of, plan, pod_name, template_from_revision, PlanInput, PodView, Step,
    POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL,
};

fn phase(p: &Pod) -> &str {
    p.status.as_ref().map_or("", |s| s.phase.as_str())
}

/// The pod with ordinal `o` from `template`, revision `rev`.
fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, o: i32, rev: &str) -> Pod {
    let m = set.metadata();
    let spec = set.spec.clone().unwrap_or_default();
    let name = pod_name(&m.name, o);
    let tm = template.metadata.clone().unwrap_or_default();
    let mut labels = tm.labels;
    labels.insert(REVISION_LABEL.into(), rev.to_string());
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), o.to_string());
    let mut ps = template.spec.clone().unwrap_or_default();
    ps.hostname = name.clone();
    ps.subdomain = spec.service_name.clone();
    for claim in &spec.volume_claim_templates {
        let cname = claim.metadata.as_ref().map_or("", |m| m.name.as_str());
        ps.volumes.retain(|v| v.name != cname);
        ps.volumes.push(Volume {
            name: cname.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(cname, &name),
                read_only: false,
            }),
            ..Default::default()
        });
    }
    Pod {
        metadata: Some(ObjectMeta {
            name,
            namespace: m.namespace.clone(),
            labels,
            annotations: tm.annotations,
            owner_references: vec![controller_ref("apps/v1", "StatefulSet", m)],
            ..Default::default()
        }),
        spec: Some(ps),
        ..Default::default()
    }
}

/// Create the pod's claims that do not exist yet (they are never deleted by the controller).
async fn ensure_claims(ctx: &Arc<Ctx>, set: &StatefulSet, pod: &str) -> Result<()> {
    let m = set.metadata();
    let spec = set.spec.clone().unwrap_or_default();
    let sel_labels = spec
        .selector
        .as_ref()
        .map(|s| s.match_labels.clone())
        .unwrap_or_default();
    for tpl in &spec.volume_claim_templates {
        let tname = tpl.metadata.as_ref().map_or("", |m| m.name.as_str());
        let cname = claim_name(tname, pod);
        if ctx.pvcs.get(&m.namespace, &cname).is_some() {
            continue;
        }
        let mut labels = tpl
            .metadata
            .as_ref()
            .map(|m| m.labels.clone())
            .unwrap_or_default();
        labels.extend(sel_labels.clone());
        // persistentVolumeClaimRetentionPolicy.whenDeleted: Delete → the set owns its claims
        // (a plain, non-controller reference, as upstream), so the GC deletes them with it.
        let owner_references = if spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .is_some_and(|p| p.when_deleted == "Delete")
        {
            vec![plain_ref("StatefulSet", m)]
        } else {
            vec![]
        };
        let pvc = PersistentVolumeClaim {
            metadata: Some(ObjectMeta {
                name: cname.clone(),
                namespace: m.namespace.clone(),
                labels,
                owner_references,
                annotations: tpl
                    .metadata
                    .as_ref()
                    .map(|m| m.annotations.clone())
                    .unwrap_or_default(),
                ..Default::default()
            }),
            spec: tpl.spec.clone(),
            ..Default::default()
        };
        match ctx.client.create(&pvc).await {
            Ok(_) => ctx.rec(coxswain_api::Kind::StatefulSet).normal(
                &ObjectRef::from(set),
                "SuccessfulCreate",
                format!(
                    "create Claim {cname} Pod {pod} in StatefulSet {} success",
                    m.name
                ),
            ),
            Err(e) if e.is_already_exists() => {}
            Err(e) => {
                ctx.rec(coxswain_api::Kind::StatefulSet).warning(
                    &ObjectRef::from(set),
                    "FailedCreate",
                    format!(
                        "create Claim {cname} for Pod {pod} in StatefulSet {} failed error: {e}",
                        m.name
                    ),
                );
                return Err(e.into());
            }
        }
    }
    Ok(())
}

fn plain_ref(kind: &str, m: &ObjectMeta) -> coxswain_api::v1::OwnerReference {
    coxswain_api::v1::OwnerReference {
        api_version: if kind == "Pod" { "v1" } else { "apps/v1" }.into(),
        kind: kind.into(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        controller: None,
        block_owner_deletion: Some(true),
    }
}

/// persistentVolumeClaimRetentionPolicy.whenScaled: Delete → before a condemned pod goes, its
/// claims get a reference to it, so the GC deletes them after the pod.
async fn own_claims_by_pod(ctx: &Arc<Ctx>, set: &StatefulSet, pod: &Pod) -> Result<()> {
    let spec = set.spec.clone().unwrap_or_default();
    let pm = pod.metadata();
    for tpl in &spec.volume_claim_templates {
        let tname = tpl.metadata.as_ref().map_or("", |m| m.name.as_str());
        let Some(pvc) = ctx.pvcs.get(&pm.namespace, &claim_name(tname, &pm.name)) else {
            continue;
        };
        if pvc
            .metadata()
            .owner_references
            .iter()
            .any(|r| r.uid == pm.uid)
        {
            continue;
        }
        // As upstream: the set's reference goes (the GC deletes an object only when all its
        // owners are gone) and the pod's comes.
        let set_uid = &set.metadata().uid;
        let mut refs = pvc.metadata().owner_references.clone();
        refs.retain(|r| r.uid != *set_uid);
        refs.push(plain_ref("Pod", pm));
        match ctx
            .client
            .patch::<PersistentVolumeClaim>(
                &pm.namespace,
                &pvc.metadata().name,
                &serde_json::json!({"metadata": {"ownerReferences": refs}}),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub async fn reconcile(ctx: Arc<Ctx>, key: String) -> Result<Action> {
    let (ns, name) = split_key(&key);
    let ek = exp_key("StatefulSet", ns, name);
    let Some(set) = ctx.sts.get(ns, name) else {
        ctx.exp.forget(&ek);
        return Ok(Action::Await);
    };
    if !set.metadata().deletion_timestamp.is_empty() {
        return Ok(Action::Await);
    }
    let spec = set.spec.clone().unwrap_or_default();
    let Ok(selector) = LabelSelector::from_proto(spec.selector.as_ref()) else {
        return Ok(Action::Await);
    };
    let template = spec.template.clone().unwrap_or_default();
    let cause = set
        .metadata()
        .annotations
        .get(CHANGE_CAUSE_ANNOTATION)
        .cloned();
    let (update_rev, _) =
        crate::revisions::ensure(&ctx, set.as_ref(), "StatefulSet", &template, cause.as_ref())
            .await?;
    let prev = set.status.clone().unwrap_or_default();
    let current_rev = if prev.current_revision.is_empty() {
        update_rev.clone()
    } else {
        prev.current_revision.clone()
    };
    let current_template = ctx
        .revisions
        .get(ns, &current_rev)
        .and_then(|r| template_from_revision(&r))
        .unwrap_or_else(|| template.clone());

    // Expectations first, then the cache, as upstream's syncs do: read the other way round, a
    // pod created by the previous sync can land in the cache (satisfying the expectations)
    // after this sync read the cache without it, and this sync would create it twice.
    let needs_sync = ctx.exp.satisfied(&ek);
    let pods: Vec<Arc<Pod>> = claim_pods(&ctx, set.as_ref(), "apps/v1", "StatefulSet", &selector)
        .await?
        .into_iter()
        .filter(|p| ordinal_of(name, &p.metadata().name).is_some())
        .collect();
    let now = now();
    let min_ready = spec.min_ready_seconds;
    let views: Vec<PodView> = pods
        .iter()
        .map(|p| PodView {
            ordinal: ordinal_of(name, &p.metadata().name).unwrap_or(-1),
            revision: p
                .metadata()
                .labels
                .get(REVISION_LABEL)
                .cloned()
                .unwrap_or_default(),
            running_ready: phase(p) == "Running" && is_pod_available(p, min_ready, now),
            terminal: matches!(phase(p), "Succeeded" | "Failed"),
            terminating: !p.metadata().deletion_timestamp.is_empty(),
        })
        .collect();
    let replicas = spec.replicas.unwrap_or(1);
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let partition = strategy
        .rolling_update
        .as_ref()
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let when_scaled_delete = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .is_some_and(|p| p.when_scaled == "Delete");
    let steps = plan(&PlanInput {
        replicas,
        parallel: spec.pod_management_policy == "Parallel",
        on_delete: strategy.r#type == "OnDelete",
        partition,
        update_revision: &update_rev,
        pods: &views,
    });

    let mut err = None;
    if needs_sync && !steps.is_empty() {
        let mut creates = Vec::new();
        let mut deletes = Vec::new();
        for s in steps {
            match s {
                Step::Create(o) => {
                    let pname = pod_name(name, o);
                    ensure_claims(&ctx, &set, &pname).await?;
                    // Below the partition, pods keep the current revision.
                    let (t, rev) = if o < partition && current_rev != update_rev {
                        (&current_template, current_rev.as_str())
                    } else {
                        (&template, update_rev.as_str())
                    };
                    creates.push(new_pod(&set, t, o, rev));
                }
                Step::Delete(o) => {
                    if let Some(p) = pods
                        .iter()
                        .find(|p| ordinal_of(name, &p.metadata().name) == Some(o))
                    {
                        if o >= replicas && when_scaled_delete {
                            own_claims_by_pod(&ctx, &set, p).await?;
                        }
                        deletes.push(p.clone());
                    }
                }
            }
        }
        if !deletes.is_empty() {
            err = delete_pods(&ctx, set.as_ref(), &ek, deletes).await;
        }
        if !creates.is_empty() && err.is_none() {
            ctx.exp.expect_creations(&ek, creates.len());
            err = create_pods(&ctx, set.as_ref(), &ek, creates).await.1;
        }
    }

    // Status.
    let live: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| p.metadata().deletion_timestamp.is_empty())
        .collect();
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata().generation,
        replicas: live.len() as i32,
        ready_replicas: live.iter().filter(|p| is_pod_ready(p)).count() as i32,
        available_replicas: live
            .iter()
            .filter(|p| is_pod_available(p, min_ready, now))
            .count() as i32,
        current_replicas: live
            .iter()
            .filter(|p| p.metadata().labels.get(REVISION_LABEL) == Some(&current_rev))
            .count() as i32,
        updated_replicas: live
            .iter()
            .filter(|p| p.metadata().labels.get(REVISION_LABEL) == Some(&update_rev))
            .count() as i32,
        current_revision: current_rev.clone(),
        update_revision: update_rev.clone(),
        collision_count: prev.collision_count,
        conditions: prev.conditions.clone(),
    };
    if status.updated_replicas == replicas && status.ready_replicas == replicas {
        status.current_revision = update_rev.clone();
        status.current_replicas = status.updated_replicas;
    }
    if set.status.as_ref() != Some(&status) {
        let mut ns_ = (*set).clone();
        ns_.status = Some(status);
        match ctx.client.update_status(&ns_).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(Action::Await),
            Err(e) => return Err(e.into()),
        }
    }
    let in_use: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata().labels.get(REVISION_LABEL).cloned())
        .chain([update_rev, current_rev])
        .collect();
    crate::revisions::truncate(
        &ctx,
        &set.metadata().uid,
        spec.revision_history_limit.unwrap_or(10),
        &in_use,
    )
    .await?;
    if let Some(e) = err {
        return Err(e.into());
    }
    if min_ready > 0 {
        return Ok(Action::Requeue(std::time::Duration::from_secs(
            u64::try_from(min_ready).unwrap_or(1),
        )));
    }
    Ok(Action::Await)
}
