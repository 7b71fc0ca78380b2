//! The Deployment controller (Kubernetes' `DeploymentController.syncDeployment`): claim
//! ReplicaSets, find or create the new ReplicaSet (named `<deployment>-<pod-template-hash>`),
//! sync revisions, then either scale proportionally (a replicas change), or roll out
//! (RollingUpdate / Recreate), clean up old ReplicaSets past revisionHistoryLimit, and write the
//! status with its Available/Progressing conditions. Paused Deployments only scale.
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{
    Deployment, LabelSelector as ProtoSelector, ObjectMeta, PodTemplateSpec, ReplicaSet,
    ReplicaSetSpec,
};
use coxswain_api::Resource;
use coxswain_client::{DeleteParams, ObjectRef};

use crate::manager::{Ctx, ORPHAN_INDEX};
use crate::podctl::{adopt, now, release};
use crate::rollout::{
    deployment_conditions, deployment_status, desired_replicas, is_recreate, max_revision,
    new_rs_new_replicas, older_first, plan_old_scale_down, pod_template_hash, proportional_scale,
    recreate_step, replica_annotations, revision, rs_replicas, ConditionInput, RecreateStep,
    DEFAULT_PROGRESS_DEADLINE_SECONDS, POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION,
};
use crate::runtime::{controller_of, controller_ref, key_of, split_key, Action, Result};

/// The annotation recording why a revision was made (kubectl --record).
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
/// revisionHistoryLimit when unset.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

/// A ReplicaSet's template without the pod-template-hash label equals the Deployment's.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(m) = t.metadata.as_mut() {
            m.labels.remove(POD_TEMPLATE_HASH_LABEL);
        }
        if t.metadata
            .as_ref()
            .is_some_and(|m| *m == ObjectMeta::default())
        {
            t.metadata = None;
        }
        t
    };
    strip(a) == strip(b)
}

async fn claim_replica_sets(
    ctx: &Arc<Ctx>,
    d: &Deployment,
    selector: &LabelSelector,
) -> Result<Vec<ReplicaSet>> {
    let m = d.metadata();
    let mut out = Vec::new();
    for rs in ctx.rs.by_owner(&m.uid) {
        let rm = rs.metadata();
        if controller_of(rm).is_none_or(|r| r.uid != m.uid) {
            continue;
        }
        if selector.matches(&rm.labels) {
            out.push((*rs).clone());
        } else if rm.deletion_timestamp.is_empty() {
            match release(ctx, rs.as_ref(), &m.uid).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let candidates: Vec<Arc<ReplicaSet>> = ctx
        .rs
        .by_index(ORPHAN_INDEX, &m.namespace)
        .into_iter()
        .filter(|rs| {
            let rm = rs.metadata();
            rm.deletion_timestamp.is_empty() && selector.matches(&rm.labels)
        })
        .collect();
    if m.deletion_timestamp.is_empty()
        && !candidates.is_empty()
        && crate::replicaset_ctrl::can_adopt(ctx, d).await?
    {
        for rs in candidates {
            match adopt(ctx, rs.as_ref(), controller_ref("apps/v1", "Deployment", m)).await {
                Ok(n) => out.push(n),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    out.sort_by(older_first);
    Ok(out)
}

/// Write a ReplicaSet's replicas (and the Deployment's replica annotations); record
/// `ScalingReplicaSet` on the Deployment.
async fn scale_rs(ctx: &Arc<Ctx>, d: &Deployment, rs: &mut ReplicaSet, to: i32) -> Result<()> {
    let from = rs_replicas(rs);
    let ann = replica_annotations(d);
    let meta = rs.metadata.get_or_insert_with(Default::default);
    let ann_changed = ann.iter().any(|(k, v)| meta.annotations.get(k) != Some(v));
    if from == to && !ann_changed {
        return Ok(());
    }
    meta.annotations.extend(ann);
    rs.spec.get_or_insert_with(Default::default).replicas = Some(to);
    *rs = ctx.client.update(rs).await?;
    if from != to {
        let dir = if to > from { "up" } else { "down" };
        ctx.rec(coxswain_api::Kind::Deployment).normal(
            &ObjectRef::from(d),
            "ScalingReplicaSet",
            format!(
                "Scaled {dir} replica set {} from {from} to {to}",
                rs.metadata().name
            ),
        );
    }
    Ok(())
}

fn template_of(d: &Deployment) -> PodTemplateSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default()
}

/// The new ReplicaSet (template equal to the Deployment's), with its revision synced; created
/// when missing and `create`.
async fn new_replica_set(
    ctx: &Arc<Ctx>,
    d: &mut Deployment,
    rss: &mut Vec<ReplicaSet>,
    create: bool,
) -> Result<(Option<usize>, bool)> {
    let template = template_of(d);
    let existing = rss.iter().position(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignore_hash(t, &template))
    });
    let old: Vec<ReplicaSet> = rss
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != existing)
        .map(|(_, r)| r.clone())
        .collect();
    let next_rev = max_revision(&old) + 1;
    let cause = d
        .metadata()
        .annotations
        .get(CHANGE_CAUSE_ANNOTATION)
        .cloned();
    if let Some(i) = existing {
        let rs = &mut rss[i];
        let cur = revision(rs).unwrap_or(0);
        let cause_differs = cause
            .as_ref()
            .is_some_and(|c| rs.metadata().annotations.get(CHANGE_CAUSE_ANNOTATION) != Some(c));
        if cur < next_rev || cause_differs {
            let m = rs.metadata.get_or_insert_with(Default::default);
            if cur < next_rev {
                m.annotations
                    .insert(REVISION_ANNOTATION.into(), next_rev.to_string());
            }
            if let Some(c) = &cause {
                m.annotations
                    .insert(CHANGE_CAUSE_ANNOTATION.into(), c.clone());
            }
            *rs = ctx.client.update(rs).await?;
        }
        sync_deployment_revision(ctx, d, revision(&rss[i]).unwrap_or(next_rev)).await?;
        return Ok((Some(i), false));
    }
    if !create {
        return Ok((None, false));
    }
    let collision = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = pod_template_hash(&template, collision);
    let dm = d.metadata().clone();
    let mut t = template.clone();
    t.metadata
        .get_or_insert_with(Default::default)
        .labels
        .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    let mut selector: ProtoSelector = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    selector
        .match_labels
        .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    let mut labels = template
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    let mut annotations = replica_annotations(d);
    annotations.insert(REVISION_ANNOTATION.into(), next_rev.to_string());
    if let Some(c) = &cause {
        annotations.insert(CHANGE_CAUSE_ANNOTATION.into(), c.clone());
    }
    let all_total: i32 = rss.iter().map(rs_replicas).sum();
    let replicas = if is_recreate(d) {
        desired_replicas(d)
    } else {
        new_rs_new_replicas(d, all_total, 0)
    };
    let rs = ReplicaSet {
        metadata: Some(ObjectMeta {
            name: format!("{}-{hash}", dm.name),
            namespace: dm.namespace.clone(),
            labels,
            annotations,
            owner_references: vec![controller_ref("apps/v1", "Deployment", &dm)],
            ..Default::default()
        }),
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: d.spec.as_ref().map_or(0, |s| s.min_ready_seconds),
            selector: Some(selector),
            template: Some(t),
        }),
        ..Default::default()
    };
    match ctx.client.create(&rs).await {
        Ok(created) => {
            let name = created.metadata().name.clone();
            if replicas > 0 {
                ctx.rec(coxswain_api::Kind::Deployment).normal(
                    &ObjectRef::from(&*d),
                    "ScalingReplicaSet",
                    format!("Scaled up replica set {name} from 0 to {replicas}"),
                );
            }
            rss.push(created);
            sync_deployment_revision(ctx, d, next_rev).await?;
            Ok((Some(rss.len() - 1), true))
        }
        Err(e) if e.is_already_exists() => {
            // A hash collision with a ReplicaSet we do not own or with another template: bump
            // collisionCount so the next hash differs.
            let mut nd = d.clone();
            let st = nd.status.get_or_insert_with(Default::default);
            st.collision_count = Some(st.collision_count.unwrap_or(0) + 1);
            ctx.client.update_status(&nd).await?;
            Err(anyhow::anyhow!(
                "hash collision creating {}",
                rs.metadata().name
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn sync_deployment_revision(ctx: &Arc<Ctx>, d: &mut Deployment, rev: i64) -> Result<()> {
    let r = rev.to_string();
    if d.metadata().annotations.get(REVISION_ANNOTATION) == Some(&r) {
        return Ok(());
    }
    d.metadata_mut()
        .annotations
        .insert(REVISION_ANNOTATION.into(), r);
    *d = ctx.client.update(d).await?;
    Ok(())
}

/// A replicas change: some active ReplicaSet was last scaled for a different replicas count.
fn is_scaling_event(d: &Deployment, rss: &[ReplicaSet]) -> bool {
    let want = desired_replicas(d).to_string();
    rss.iter().filter(|rs| rs_replicas(rs) > 0).any(|rs| {
        rs.metadata()
            .annotations
            .get(crate::rollout::DESIRED_REPLICAS_ANNOTATION)
            .is_some_and(|v| *v != want)
    })
}

pub async fn reconcile(ctx: Arc<Ctx>, key: String) -> Result<Action> {
    let (ns, name) = split_key(&key);
    if name == "*" {
        for d in ctx.deploys.list_namespace(ns) {
            ctx.q.deploy.add(key_of(d.metadata()));
        }
        return Ok(Action::Await);
    }
    let Some(d) = ctx.deploys.get(ns, name) else {
        return Ok(Action::Await);
    };
    let mut d = (*d).clone();
    let Ok(selector) = LabelSelector::from_proto(d.spec.as_ref().and_then(|s| s.selector.as_ref()))
    else {
        return Ok(Action::Await);
    };
    if selector.is_everything() {
        ctx.rec(coxswain_api::Kind::Deployment).warning(
            &ObjectRef::from(&d),
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.",
        );
        return Ok(Action::Await);
    }
    let mut rss = claim_replica_sets(&ctx, &d, &selector).await?;
    let old_status = d.status.clone().unwrap_or_default();
    if !d.metadata().deletion_timestamp.is_empty() {
        return sync_status(&ctx, &d, &rss, None, false, &old_status).await;
    }
    let paused = d.spec.as_ref().is_some_and(|s| s.paused);

    let scaling = is_scaling_event(&d, &rss);
    let create = !paused && !scaling && !is_recreate(&d);
    let (new_idx, created) = new_replica_set(&ctx, &mut d, &mut rss, create).await?;

    if paused || scaling {
        // Proportional scaling only.
        let new_name = new_idx.map(|i| rss[i].metadata().name.clone());
        for (rs_name, size) in proportional_scale(&d, &rss, new_name.as_deref()) {
            if let Some(rs) = rss.iter_mut().find(|r| r.metadata().name == rs_name) {
                scale_rs(&ctx, &d, rs, size).await?;
            }
        }
        if paused {
            cleanup(&ctx, &d, &rss, new_idx).await?;
        }
        return sync_status(&ctx, &d, &rss, new_idx, created, &old_status).await;
    }

    if is_recreate(&d) {
        let old: Vec<ReplicaSet> = rss
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_idx)
            .map(|(_, r)| r.clone())
            .collect();
        let old_pods_running = old
            .iter()
            .any(|rs| crate::rollout::old_pods_running(&ctx.pods.by_owner(&rs.metadata().uid)));
        let new_rs = new_idx.map(|i| rss[i].clone());
        match recreate_step(&d, &old, old_pods_running, new_rs.as_ref()) {
            RecreateStep::ScaleDownOld(names) => {
                for n in names {
                    if let Some(rs) = rss.iter_mut().find(|r| r.metadata().name == n) {
                        scale_rs(&ctx, &d, rs, 0).await?;
                    }
                }
            }
            RecreateStep::WaitForOldPods => {}
            RecreateStep::ScaleUpNew(n) => {
                let (idx, created) = match new_idx {
                    Some(i) => (i, false),
                    None => {
                        let (i, c) = new_replica_set(&ctx, &mut d, &mut rss, true).await?;
                        (i.ok_or_else(|| anyhow::anyhow!("no new replica set"))?, c)
                    }
                };
                if !created {
                    let mut rs = rss[idx].clone();
                    scale_rs(&ctx, &d, &mut rs, n).await?;
                    rss[idx] = rs;
                }
                return sync_status(&ctx, &d, &rss, Some(idx), created, &old_status).await;
            }
            RecreateStep::Done => {
                cleanup(&ctx, &d, &rss, new_idx).await?;
            }
        }
        return sync_status(&ctx, &d, &rss, new_idx, created, &old_status).await;
    }

    // RollingUpdate.
    let Some(ni) = new_idx else {
        return sync_status(&ctx, &d, &rss, None, created, &old_status).await;
    };
    let desired = desired_replicas(&d);
    let all_total: i32 = rss.iter().map(rs_replicas).sum();
    let cur = rs_replicas(&rss[ni]);
    let target = if cur > desired {
        desired
    } else {
        new_rs_new_replicas(&d, all_total, cur)
    };
    if target != cur {
        let mut rs = rss[ni].clone();
        scale_rs(&ctx, &d, &mut rs, target).await?;
        rss[ni] = rs;
        return sync_status(&ctx, &d, &rss, Some(ni), created, &old_status).await;
    }
    let old: Vec<ReplicaSet> = rss
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != ni)
        .map(|(_, r)| r.clone())
        .collect();
    let plan = plan_old_scale_down(&d, Some(&rss[ni]), &old);
    if !plan.is_empty() {
        for (n, size) in plan {
            if let Some(rs) = rss.iter_mut().find(|r| r.metadata().name == n) {
                scale_rs(&ctx, &d, rs, size).await?;
            }
        }
        return sync_status(&ctx, &d, &rss, Some(ni), created, &old_status).await;
    }
    let complete = rs_replicas(&rss[ni]) == desired
        && rss[ni]
            .status
            .as_ref()
            .is_some_and(|s| s.available_replicas == desired)
        && old.iter().all(|rs| rs_replicas(rs) == 0);
    if complete {
        cleanup(&ctx, &d, &rss, Some(ni)).await?;
    }
    sync_status(&ctx, &d, &rss, Some(ni), created, &old_status).await
}

/// Delete old ReplicaSets beyond revisionHistoryLimit (oldest revision first; only those
/// scaled to 0 with no pods left).
async fn cleanup(
    ctx: &Arc<Ctx>,
    d: &Deployment,
    rss: &[ReplicaSet],
    new_idx: Option<usize>,
) -> Result<()> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
        .max(0) as usize;
    let mut old: Vec<&ReplicaSet> = rss
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_idx)
        .map(|(_, r)| r)
        .collect();
    if old.len() <= limit {
        return Ok(());
    }
    old.sort_by_key(|rs| revision(rs).unwrap_or(0));
    let excess = old.len() - limit;
    for rs in old.into_iter().take(excess) {
        let idle = rs_replicas(rs) == 0
            && rs.status.as_ref().is_none_or(|s| s.replicas == 0)
            && rs.metadata().deletion_timestamp.is_empty();
        if !idle {
            continue;
        }
        let m = rs.metadata();
        match ctx
            .client
            .delete::<ReplicaSet>(
                &m.namespace,
                &m.name,
                &DeleteParams {
                    precondition_uid: Some(m.uid.clone()),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn sync_status(
    ctx: &Arc<Ctx>,
    d: &Deployment,
    rss: &[ReplicaSet],
    new_idx: Option<usize>,
    created: bool,
    old_status: &coxswain_api::v1::DeploymentStatus,
) -> Result<Action> {
    let new_rs = new_idx.map(|i| &rss[i]);
    let mut status = deployment_status(d, new_rs, rss);
    let now = now();
    let new_name = new_rs.map(|r| r.metadata().name.clone());
    status.conditions = deployment_conditions(&ConditionInput {
        deployment: d,
        new_rs: new_name.as_deref(),
        new_rs_created: created,
        old_status,
        new_status: &status,
        now,
        last_progress: None,
    });
    if d.status.as_ref() != Some(&status) {
        let mut nd = d.clone();
        nd.status = Some(status.clone());
        match ctx.client.update_status(&nd).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(Action::Await),
            Err(e) => return Err(e.into()),
        }
    }
    // While a rollout is in progress, look again when the progress deadline would pass.
    let progressing = status
        .conditions
        .iter()
        .find(|c| c.r#type == "Progressing")
        .is_some_and(|c| c.status == "True" && c.reason != "NewReplicaSetAvailable");
    if progressing && !d.spec.as_ref().is_some_and(|s| s.paused) {
        let deadline = d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
        return Ok(Action::Requeue(Duration::from_secs(
            u64::try_from(deadline).unwrap_or(600) + 1,
        )));
    }
    Ok(Action::Await)
}
