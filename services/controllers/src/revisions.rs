//! ControllerRevisions of DaemonSets and StatefulSets (Kubernetes' `controller/history`): one
//! per distinct pod template, named `<owner>-<hash>`, numbered; the current template's revision
//! is (re)numbered highest, so a rollback makes an old revision current again. Old revisions
//! beyond revisionHistoryLimit that no pod uses are deleted.
use std::collections::BTreeSet;
use std::sync::Arc;

use coxswain_api::v1::{ControllerRevision, ObjectMeta, PodTemplateSpec};
use coxswain_api::Resource;
use coxswain_client::DeleteParams;

use crate::manager::Ctx;
use crate::rollout::pod_template_hash;
use crate::runtime::{controller_of, controller_ref, Result};
use crate::statefulset::{revision_data, template_from_revision};

/// The owner's revisions, lowest number first.
pub fn owned(ctx: &Ctx, uid: &str) -> Vec<Arc<ControllerRevision>> {
    let mut v: Vec<Arc<ControllerRevision>> = ctx
        .revisions
        .by_owner(uid)
        .into_iter()
        .filter(|r| controller_of(r.metadata()).is_some_and(|o| o.uid == uid))
        .collect();
    v.sort_by_key(|r| r.revision);
    v
}

/// Make sure the template's revision exists and is the highest; returns (revision name = the
/// pods' controller-revision-hash, revision number).
pub async fn ensure<O: Resource>(
    ctx: &Arc<Ctx>,
    owner: &O,
    kind: &str,
    template: &PodTemplateSpec,
    change_cause: Option<&String>,
) -> Result<(String, i64)> {
    let m = owner.metadata();
    let revs = owned(ctx, &m.uid);
    let max = revs
        .iter()
        .map(|r| i64::from(r.revision))
        .max()
        .unwrap_or(0);
    if let Some(r) = revs
        .iter()
        .find(|r| template_from_revision(r).as_ref() == Some(template))
    {
        let name = r.metadata().name.clone();
        if i64::from(r.revision) < max {
            let mut nr = (**r).clone();
            nr.revision = (max + 1) as i32;
            ctx.client.update(&nr).await?;
            return Ok((name, max + 1));
        }
        return Ok((name, i64::from(r.revision)));
    }
    let hash = pod_template_hash(template, None);
    let name = format!("{}-{hash}", m.name);
    let mut annotations = std::collections::BTreeMap::new();
    if let Some(c) = change_cause {
        annotations.insert(
            crate::deployment_ctrl::CHANGE_CAUSE_ANNOTATION.to_string(),
            c.clone(),
        );
    }
    let rev = ControllerRevision {
        metadata: Some(ObjectMeta {
            name: name.clone(),
            namespace: m.namespace.clone(),
            labels: template
                .metadata
                .as_ref()
                .map(|t| t.labels.clone())
                .unwrap_or_default(),
            annotations,
            owner_references: vec![controller_ref("apps/v1", kind, m)],
            ..Default::default()
        }),
        data: revision_data(template),
        revision: (max + 1) as i32,
        ..Default::default()
    };
    match ctx.client.create(&rev).await {
        Ok(_) => Ok((name, max + 1)),
        Err(e) if e.is_already_exists() => {
            // Created by an earlier sync whose event has not reached the cache yet.
            Ok((name, max + 1))
        }
        Err(e) => Err(e.into()),
    }
}

/// Delete the oldest revisions beyond `limit`, except those named in `in_use`.
pub async fn truncate(
    ctx: &Arc<Ctx>,
    uid: &str,
    limit: i32,
    in_use: &BTreeSet<String>,
) -> Result<()> {
    let revs = owned(ctx, uid);
    let candidates: Vec<&Arc<ControllerRevision>> = revs
        .iter()
        .filter(|r| !in_use.contains(&r.metadata().name))
        .collect();
    let limit = limit.max(0) as usize;
    if candidates.len() <= limit {
        return Ok(());
    }
    for r in &candidates[..candidates.len() - limit] {
        let m = r.metadata();
        match ctx
            .client
            .delete::<ControllerRevision>(&m.namespace, &m.name, &DeleteParams::default())
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
