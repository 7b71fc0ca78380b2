//! Pod writes shared by the pod-owning controllers: create from a template in slow-start batches
//! (1, 2, 4, …; stop at the first failing batch) with expectations and `SuccessfulCreate` /
//! `FailedCreate` Events; delete with expectations and `SuccessfulDelete` / `FailedDelete`;
//! adopt and release by patching ownerReferences.
use std::sync::Arc;

use coxswain_api::v1::{ObjectMeta, OwnerReference, Pod, PodTemplateSpec};
use coxswain_api::Resource;
use coxswain_client::{DeleteParams, ObjectRef};
use tokio::task::JoinSet;

use crate::manager::Ctx;
use crate::replicaset::slow_start_batches;

/// A pod from a template: template labels/annotations, the owner's controller reference, and
/// either `name` or `generateName = prefix`.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    ns: &str,
    owner: OwnerReference,
    generate_name: &str,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: Some(ObjectMeta {
            generate_name: generate_name.to_string(),
            namespace: ns.to_string(),
            labels: tm.labels,
            annotations: tm.annotations,
            owner_references: vec![owner],
            ..Default::default()
        }),
        spec: template.spec.clone(),
        ..Default::default()
    }
}

/// Create `pods` in slow-start batches. `exp_key` must already expect `pods.len()` creations;
/// the creations that are not attempted or fail are marked observed. Returns how many were
/// created and the first error.
pub async fn create_pods<O: Resource>(
    ctx: &Arc<Ctx>,
    owner: &O,
    exp_key: &str,
    pods: Vec<Pod>,
) -> (usize, Option<coxswain_client::Error>) {
    let total = pods.len();
    let mut it = pods.into_iter();
    let mut created = 0;
    let mut first_err = None;
    let oref = ObjectRef::from(owner);
    for batch in slow_start_batches(total) {
        let mut set = JoinSet::new();
        for pod in it.by_ref().take(batch) {
            let client = ctx.client.clone();
            // The reconcile's request id (crate::runtime) goes with its spawned writes.
            let id = coxswain_client::trace::current();
            set.spawn(coxswain_client::trace::scope(id, async move {
                client.create(&pod).await
            }));
        }
        let mut failed = false;
        while let Some(res) = set.join_next().await {
            match res {
                Ok(Ok(p)) => {
                    created += 1;
                    ctx.rec(O::KIND).normal(
                        &oref,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.metadata().name),
                    );
                }
                Ok(Err(e)) => {
                    failed = true;
                    ctx.exp.creation_observed(exp_key);
                    ctx.rec(O::KIND)
                        .warning(&oref, "FailedCreate", format!("Error creating: {e}"));
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    failed = true;
                    ctx.exp.creation_observed(exp_key);
                }
            }
        }
        if failed {
            break;
        }
    }
    // Skipped creations will never be observed.
    for _ in it {
        ctx.exp.creation_observed(exp_key);
    }
    (created, first_err)
}

/// Delete `pods` (expectations set here). Returns the first error.
pub async fn delete_pods<O: Resource>(
    ctx: &Arc<Ctx>,
    owner: &O,
    exp_key: &str,
    pods: Vec<Arc<Pod>>,
) -> Option<coxswain_client::Error> {
    ctx.exp.expect_deletions(
        exp_key,
        pods.iter()
            .map(|p| p.metadata().uid.clone())
            .collect::<Vec<_>>(),
    );
    let oref = ObjectRef::from(owner);
    let mut set = JoinSet::new();
    for pod in pods {
        let client = ctx.client.clone();
        let id = coxswain_client::trace::current();
        set.spawn(coxswain_client::trace::scope(id, async move {
            let m = pod.metadata();
            let res = client
                .delete::<Pod>(
                    &m.namespace,
                    &m.name,
                    &DeleteParams {
                        precondition_uid: Some(m.uid.clone()),
                        ..Default::default()
                    },
                )
                .await;
            (pod, res)
        }));
    }
    let mut first_err = None;
    while let Some(res) = set.join_next().await {
        let Ok((pod, res)) = res else { continue };
        let m = pod.metadata();
        match res {
            Ok(()) => ctx.rec(O::KIND).normal(
                &oref,
                "SuccessfulDelete",
                format!("Deleted pod: {}", m.name),
            ),
            Err(e) if e.is_not_found() => ctx.exp.deletion_observed(exp_key, &m.uid),
            Err(e) => {
                ctx.exp.deletion_observed(exp_key, &m.uid);
                ctx.rec(O::KIND)
                    .warning(&oref, "FailedDelete", format!("Error deleting: {e}"));
                first_err.get_or_insert(e);
            }
        }
    }
    first_err
}

/// Make `owner` the controller of `obj` (adoption) by patching its ownerReferences.
pub async fn adopt<R: Resource + serde::de::DeserializeOwned>(
    ctx: &Arc<Ctx>,
    obj: &R,
    owner: OwnerReference,
) -> coxswain_client::Result<R> {
    let m = obj.metadata();
    let mut refs = m.owner_references.clone();
    refs.retain(|r| r.uid != owner.uid);
    refs.push(owner);
    ctx.client
        .patch::<R>(
            &m.namespace,
            &m.name,
            &serde_json::json!({"metadata": {"ownerReferences": refs}}),
        )
        .await
}

/// Remove `owner_uid`'s reference from `obj` (release).
pub async fn release<R: Resource + serde::de::DeserializeOwned>(
    ctx: &Arc<Ctx>,
    obj: &R,
    owner_uid: &str,
) -> coxswain_client::Result<R> {
    let m = obj.metadata();
    let refs: Vec<&OwnerReference> = m
        .owner_references
        .iter()
        .filter(|r| r.uid != owner_uid)
        .collect();
    ctx.client
        .patch::<R>(
            &m.namespace,
            &m.name,
            &serde_json::json!({"metadata": {"ownerReferences": refs}}),
        )
        .await
}

/// Now, seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
