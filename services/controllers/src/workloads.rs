//! The `coxswain.v1.Workloads` gRPC service: kubectl's imperative workload verbs done
//! server-side over the store (a [`Client`]): scale, set image, rollout
//! status/history/undo/pause/resume/restart. Messages are kubectl's.
use std::pin::Pin;
use std::time::Duration;

use coxswain_api::v1::workloads_server::{Workloads, WorkloadsServer};
use coxswain_api::v1::{
    ControllerRevision, DaemonSet, Deployment, PodTemplateSpec, ReplicaSet, Revision,
    RolloutHistoryRequest, RolloutHistoryResponse, RolloutStatusMessage, RolloutStatusRequest,
    RolloutUndoRequest, ScaleRequest, SetImageRequest, StatefulSet, WorkloadRef, WorkloadResponse,
};
use coxswain_api::{Kind, Resource};
use coxswain_client::authz::Attributes;
use coxswain_client::{Client, ListParams};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::deployment_ctrl::{equal_ignore_hash, CHANGE_CAUSE_ANNOTATION};
use crate::rollout::{revision, POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION};
use crate::runtime::controller_of;

/// The annotation `rollout restart` sets on the pod template.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// The service; `poll` is how often RolloutStatus looks at the object.
#[derive(Clone)]
pub struct WorkloadsService {
    client: Client,
    poll: Duration,
}

impl WorkloadsService {
    pub fn new(client: Client) -> Self {
        WorkloadsService {
            client,
            poll: Duration::from_millis(200),
        }
    }
    pub fn into_server(self) -> WorkloadsServer<Self> {
        WorkloadsServer::new(self)
    }
}

fn status_of(e: coxswain_client::Error) -> Status {
    use coxswain_client::Error as E;
    match e {
        E::NotFound(m) => Status::not_found(m),
        E::AlreadyExists(m) => Status::already_exists(m),
        E::Conflict(m) => Status::aborted(m),
        E::Invalid(m) => Status::invalid_argument(m),
        E::Gone(m) => Status::out_of_range(m),
        E::Transport(s) => s,
        E::Decode(m) => Status::internal(m),
    }
}

/// A workload of one of the kinds the verbs apply to.
#[derive(Clone)]
enum W {
    Deploy(Deployment),
    Rs(ReplicaSet),
    Sts(StatefulSet),
    Ds(DaemonSet),
}

impl W {
    fn kind_name(&self) -> &'static str {
        match self {
            W::Deploy(_) => "deployment.apps",
            W::Rs(_) => "replicaset.apps",
            W::Sts(_) => "statefulset.apps",
            W::Ds(_) => "daemonset.apps",
        }
    }
    fn name(&self) -> &str {
        match self {
            W::Deploy(o) => &o.metadata().name,
            W::Rs(o) => &o.metadata().name,
            W::Sts(o) => &o.metadata().name,
            W::Ds(o) => &o.metadata().name,
        }
    }
    fn annotations_mut(&mut self) -> &mut std::collections::BTreeMap<String, String> {
        match self {
            W::Deploy(o) => &mut o.metadata_mut().annotations,
            W::Rs(o) => &mut o.metadata_mut().annotations,
            W::Sts(o) => &mut o.metadata_mut().annotations,
            W::Ds(o) => &mut o.metadata_mut().annotations,
        }
    }
    fn template_mut(&mut self) -> &mut PodTemplateSpec {
        match self {
            W::Deploy(o) => o
                .spec
                .get_or_insert_with(Default::default)
                .template
                .get_or_insert_with(Default::default),
            W::Rs(o) => o
                .spec
                .get_or_insert_with(Default::default)
                .template
                .get_or_insert_with(Default::default),
            W::Sts(o) => o
                .spec
                .get_or_insert_with(Default::default)
                .template
                .get_or_insert_with(Default::default),
            W::Ds(o) => o
                .spec
                .get_or_insert_with(Default::default)
                .template
                .get_or_insert_with(Default::default),
        }
    }
    fn replicas_mut(&mut self) -> Option<&mut Option<i32>> {
        match self {
            W::Deploy(o) => Some(&mut o.spec.get_or_insert_with(Default::default).replicas),
            W::Rs(o) => Some(&mut o.spec.get_or_insert_with(Default::default).replicas),
            W::Sts(o) => Some(&mut o.spec.get_or_insert_with(Default::default).replicas),
            W::Ds(_) => None,
        }
    }
}

fn parse_ref(r: Option<&WorkloadRef>) -> Result<(Kind, String, String), Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("target: required"))?;
    let kind = Kind::parse(&r.kind).ok_or_else(|| {
        Status::invalid_argument(format!("target.kind: unknown kind {:?}", r.kind))
    })?;
    if r.name.is_empty() {
        return Err(Status::invalid_argument("target.name: required"));
    }
    let ns = if r.namespace.is_empty() {
        "default".to_string()
    } else {
        r.namespace.clone()
    };
    Ok((kind, ns, r.name.clone()))
}

/// Authorize the caller for what kubectl's own request would be: `verb` on the target's
/// resource (or its `subresource`), in its namespace, by name. The service's reads and writes
/// then go out under its own identity.
fn authorize<T>(
    req: &Request<T>,
    target: Option<&WorkloadRef>,
    verb: &str,
    subresource: &str,
) -> Result<(), Status> {
    let (kind, ns, name) = parse_ref(target)?;
    let a = Attributes::resource(verb, kind.group(), kind.plural(), &ns, &name)
        .on_subresource(subresource);
    coxswain_client::authz::check(req, &a)
}

/// `rollout history`/`undo` also list the target's revisions: ReplicaSets of a Deployment,
/// ControllerRevisions of a StatefulSet or DaemonSet, in its namespace.
fn authorize_history<T>(req: &Request<T>, target: Option<&WorkloadRef>) -> Result<(), Status> {
    let (kind, ns, _) = parse_ref(target)?;
    let resource = match kind {
        Kind::Deployment => Kind::ReplicaSet.plural(),
        _ => Kind::ControllerRevision.plural(),
    };
    coxswain_client::authz::check(
        req,
        &Attributes::resource("list", "apps", resource, &ns, ""),
    )
}

impl WorkloadsService {
    async fn get(&self, kind: Kind, ns: &str, name: &str) -> Result<W, Status> {
        let nf = |plural: &str| Status::not_found(format!("{plural} {name:?} not found"));
        let c = &self.client;
        Ok(match kind {
            Kind::Deployment => W::Deploy(
                c.get(ns, name)
                    .await
                    .map_err(status_of)?
                    .ok_or_else(|| nf("deployments.apps"))?,
            ),
            Kind::ReplicaSet => W::Rs(
                c.get(ns, name)
                    .await
                    .map_err(status_of)?
                    .ok_or_else(|| nf("replicasets.apps"))?,
            ),
            Kind::StatefulSet => W::Sts(
                c.get(ns, name)
                    .await
                    .map_err(status_of)?
                    .ok_or_else(|| nf("statefulsets.apps"))?,
            ),
            Kind::DaemonSet => W::Ds(
                c.get(ns, name)
                    .await
                    .map_err(status_of)?
                    .ok_or_else(|| nf("daemonsets.apps"))?,
            ),
            other => {
                return Err(Status::invalid_argument(format!(
                    "target.kind: {} is not a workload (deployment, replicaset, statefulset, daemonset)",
                    other.as_str()
                )))
            }
        })
    }

    async fn put(&self, w: &W) -> Result<(), coxswain_client::Error> {
        let c = &self.client;
        match w {
            W::Deploy(o) => c.update(o).await.map(|_| ()),
            W::Rs(o) => c.update(o).await.map(|_| ()),
            W::Sts(o) => c.update(o).await.map(|_| ()),
            W::Ds(o) => c.update(o).await.map(|_| ()),
        }
    }

    /// Read, change, write; retried on conflicts. `f` returns the message or an error.
    /// Pause or resume a Deployment (`kubectl rollout pause|resume`).
    async fn set_paused(
        &self,
        r: WorkloadRef,
        paused: bool,
    ) -> Result<Response<WorkloadResponse>, Status> {
        let (verb, already) = if paused {
            ("paused", "already paused")
        } else {
            ("resumed", "not paused")
        };
        let message = self
            .mutate(Some(&r), |w| match w {
                W::Deploy(d) => {
                    let spec = d.spec.get_or_insert_with(Default::default);
                    let name = d.metadata.as_ref().map_or("", |m| &m.name).to_string();
                    if spec.paused == paused {
                        return Err(Status::failed_precondition(format!(
                            "deployments.apps {name:?} is {already}"
                        )));
                    }
                    spec.paused = paused;
                    Ok(Some(format!("deployment.apps/{name} {verb}")))
                }
                other => Err(Status::invalid_argument(format!(
                    "target.kind: {} cannot be {verb}",
                    other.kind_name()
                ))),
            })
            .await?;
        Ok(Response::new(WorkloadResponse { message }))
    }

    async fn mutate<F>(&self, target: Option<&WorkloadRef>, f: F) -> Result<String, Status>
    where
        F: Fn(&mut W) -> Result<Option<String>, Status>,
    {
        let (kind, ns, name) = parse_ref(target)?;
        for _ in 0..10 {
            let mut w = self.get(kind, &ns, &name).await?;
            let Some(msg) = f(&mut w)? else {
                return Ok(String::new());
            };
            match self.put(&w).await {
                Ok(()) => return Ok(msg),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(status_of(e)),
            }
        }
        Err(Status::aborted("too many conflicting updates; try again"))
    }

    async fn owned_replica_sets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, Status> {
        let m = d.metadata();
        let (all, _) = self
            .client
            .list::<ReplicaSet>(&m.namespace, &ListParams::default())
            .await
            .map_err(status_of)?;
        Ok(all
            .into_iter()
            .filter(|rs| controller_of(rs.metadata()).is_some_and(|r| r.uid == m.uid))
            .collect())
    }

    async fn owned_revisions(
        &self,
        uid: &str,
        ns: &str,
    ) -> Result<Vec<ControllerRevision>, Status> {
        let (all, _) = self
            .client
            .list::<ControllerRevision>(ns, &ListParams::default())
            .await
            .map_err(status_of)?;
        let mut v: Vec<ControllerRevision> = all
            .into_iter()
            .filter(|r| controller_of(r.metadata()).is_some_and(|o| o.uid == uid))
            .collect();
        v.sort_by_key(|r| r.revision);
        Ok(v)
    }

    /// (revision, change-cause, template) of every revision, oldest first.
    async fn history(&self, w: &W) -> Result<Vec<(i64, String, PodTemplateSpec)>, Status> {
        match w {
            W::Deploy(d) => {
                let mut v: Vec<(i64, String, PodTemplateSpec)> = self
                    .owned_replica_sets(d)
                    .await?
                    .iter()
                    .filter_map(|rs| {
                        let rev = revision(rs)?;
                        let cause = rs
                            .metadata()
                            .annotations
                            .get(CHANGE_CAUSE_ANNOTATION)
                            .cloned()
                            .unwrap_or_default();
                        let mut t = rs.spec.as_ref()?.template.clone()?;
                        if let Some(m) = t.metadata.as_mut() {
                            m.labels.remove(POD_TEMPLATE_HASH_LABEL);
                        }
                        Some((rev, cause, t))
                    })
                    .collect();
                v.sort_by_key(|x| x.0);
                Ok(v)
            }
            W::Sts(o) => {
                self.revision_history(&o.metadata().uid, &o.metadata().namespace)
                    .await
            }
            W::Ds(o) => {
                self.revision_history(&o.metadata().uid, &o.metadata().namespace)
                    .await
            }
            W::Rs(_) => Err(Status::invalid_argument(
                "target.kind: no rollout history for replicasets",
            )),
        }
    }

    async fn revision_history(
        &self,
        uid: &str,
        ns: &str,
    ) -> Result<Vec<(i64, String, PodTemplateSpec)>, Status> {
        Ok(self
            .owned_revisions(uid, ns)
            .await?
            .into_iter()
            .map(|r| {
                let cause = r
                    .metadata()
                    .annotations
                    .get(CHANGE_CAUSE_ANNOTATION)
                    .cloned()
                    .unwrap_or_default();
                let t = crate::statefulset::template_from_revision(&r).unwrap_or_default();
                (i64::from(r.revision), cause, t)
            })
            .collect())
    }
}

/// One `kubectl rollout status` line for the object, and whether it is done / failed.
pub fn rollout_status_line(w: &W2) -> (String, bool, bool) {
    match w {
        W2::Deploy(d) => {
            let name = &d.metadata().name;
            let gen = d.metadata().generation;
            let st = d.status.clone().unwrap_or_default();
            if gen > st.observed_generation {
                return (
                    "Waiting for deployment spec update to be observed...".into(),
                    false,
                    false,
                );
            }
            if st
                .conditions
                .iter()
                .any(|c| c.r#type == "Progressing" && c.reason == "ProgressDeadlineExceeded")
            {
                return (
                    format!("deployment {name:?} exceeded its progress deadline"),
                    false,
                    true,
                );
            }
            let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            if st.updated_replicas < replicas {
                return (format!("Waiting for deployment {name:?} rollout to finish: {} out of {replicas} new replicas have been updated...", st.updated_replicas), false, false);
            }
            if st.replicas > st.updated_replicas {
                return (format!("Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...", st.replicas - st.updated_replicas), false, false);
            }
            if st.available_replicas < st.updated_replicas {
                return (format!("Waiting for deployment {name:?} rollout to finish: {} of {} updated replicas are available...", st.available_replicas, st.updated_replicas), false, false);
            }
            (
                format!("deployment {name:?} successfully rolled out"),
                true,
                false,
            )
        }
        W2::Ds(d) => {
            let name = &d.metadata().name;
            let st = d.status.clone().unwrap_or_default();
            if d.metadata().generation > st.observed_generation {
                return (
                    "Waiting for daemon set spec update to be observed...".into(),
                    false,
                    false,
                );
            }
            if st.updated_number_scheduled < st.desired_number_scheduled {
                return (format!("Waiting for daemon set {name:?} rollout to finish: {} out of {} new pods have been updated...", st.updated_number_scheduled, st.desired_number_scheduled), false, false);
            }
            if st.number_available < st.desired_number_scheduled {
                return (format!("Waiting for daemon set {name:?} rollout to finish: {} of {} updated pods are available...", st.number_available, st.desired_number_scheduled), false, false);
            }
            (
                format!("daemon set {name:?} successfully rolled out"),
                true,
                false,
            )
        }
        W2::Sts(s) => {
            let st = s.status.clone().unwrap_or_default();
            if st.observed_generation == 0 || s.metadata().generation > st.observed_generation {
                return (
                    "Waiting for statefulset spec update to be observed...".into(),
                    false,
                    false,
                );
            }
            let spec = s.spec.clone().unwrap_or_default();
            let replicas = spec.replicas.unwrap_or(1);
            if st.ready_replicas < replicas {
                return (
                    format!(
                        "Waiting for {} pods to be ready...",
                        replicas - st.ready_replicas
                    ),
                    false,
                    false,
                );
            }
            let partition = spec
                .update_strategy
                .as_ref()
                .filter(|u| u.r#type.is_empty() || u.r#type == "RollingUpdate")
                .and_then(|u| u.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0);
            if partition > 0 {
                if st.updated_replicas < replicas - partition {
                    return (format!("Waiting for partitioned roll out to finish: {} out of {} new pods have been updated...", st.updated_replicas, replicas - partition), false, false);
                }
                return (
                    format!(
                        "partitioned roll out complete: {} new pods have been updated...",
                        st.updated_replicas
                    ),
                    true,
                    false,
                );
            }
            if st.update_revision != st.current_revision {
                return (format!("waiting for statefulset rolling update to complete {} pods at revision {}...", st.updated_replicas, st.update_revision), false, false);
            }
            (
                format!(
                    "statefulset rolling update complete {} pods at revision {}...",
                    st.current_replicas, st.current_revision
                ),
                true,
                false,
            )
        }
    }
}

/// The kinds `rollout status` understands.
pub enum W2 {
    Deploy(Deployment),
    Ds(DaemonSet),
    Sts(StatefulSet),
}

type StatusStream = Pin<Box<dyn Stream<Item = Result<RolloutStatusMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Workloads for WorkloadsService {
    async fn scale(
        &self,
        req: Request<ScaleRequest>,
    ) -> Result<Response<WorkloadResponse>, Status> {
        // kubectl scale: a merge patch of the scale subresource, or with --current-replicas
        // a get and an update of it.
        let verb = match req.get_ref().current_replicas {
            Some(_) => "update",
            None => "patch",
        };
        authorize(&req, req.get_ref().target.as_ref(), verb, "scale")?;
        let r = req.into_inner();
        if r.replicas < 0 {
            return Err(Status::invalid_argument(
                "replicas: must be greater than or equal to 0",
            ));
        }
        let message = self
            .mutate(r.target.as_ref(), |w| {
                let kind = w.kind_name();
                let name = w.name().to_string();
                let Some(rep) = w.replicas_mut() else {
                    return Err(Status::invalid_argument(format!(
                        "target.kind: {kind} cannot be scaled"
                    )));
                };
                if let Some(cur) = r.current_replicas {
                    if rep.unwrap_or(1) != cur {
                        return Err(Status::failed_precondition(format!(
                            "Expected replicas to be {cur}, was {}",
                            rep.unwrap_or(1)
                        )));
                    }
                }
                *rep = Some(r.replicas);
                Ok(Some(format!("{kind}/{name} scaled")))
            })
            .await?;
        Ok(Response::new(WorkloadResponse { message }))
    }

    async fn set_image(
        &self,
        req: Request<SetImageRequest>,
    ) -> Result<Response<WorkloadResponse>, Status> {
        authorize(&req, req.get_ref().target.as_ref(), "patch", "")?;
        let r = req.into_inner();
        if r.images.is_empty() {
            return Err(Status::invalid_argument(
                "images: at least one container=image is required",
            ));
        }
        let message = self
            .mutate(r.target.as_ref(), |w| {
                let kind = w.kind_name();
                let name = w.name().to_string();
                let spec = w.template_mut().spec.get_or_insert_with(Default::default);
                for (cname, image) in &r.images {
                    let mut found = false;
                    for c in spec
                        .init_containers
                        .iter_mut()
                        .chain(spec.containers.iter_mut())
                    {
                        if cname == "*" || c.name == *cname {
                            c.image = image.clone();
                            found = true;
                        }
                    }
                    if !found {
                        return Err(Status::not_found(format!(
                            "unable to find container named {cname:?}"
                        )));
                    }
                }
                if !r.change_cause.is_empty() {
                    w.annotations_mut()
                        .insert(CHANGE_CAUSE_ANNOTATION.into(), r.change_cause.clone());
                }
                Ok(Some(format!("{kind}/{name} image updated")))
            })
            .await?;
        Ok(Response::new(WorkloadResponse { message }))
    }

    type RolloutStatusStream = StatusStream;

    async fn rollout_status(
        &self,
        req: Request<RolloutStatusRequest>,
    ) -> Result<Response<Self::RolloutStatusStream>, Status> {
        // kubectl rollout status: a get, then a watch of the object by name.
        let target = req.get_ref().target.as_ref();
        authorize(&req, target, "get", "")?;
        if !req.get_ref().no_watch {
            authorize(&req, target, "watch", "")?;
        }
        let r = req.into_inner();
        let (kind, ns, name) = parse_ref(r.target.as_ref())?;
        if !matches!(kind, Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet) {
            return Err(Status::invalid_argument(format!(
                "target.kind: no rollout status for {}",
                kind.plural()
            )));
        }
        // Fail at once on a missing object.
        self.get(kind, &ns, &name).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let svc = self.clone();
        tokio::spawn(async move {
            let mut last = String::new();
            loop {
                let w = match svc.get(kind, &ns, &name).await {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                if r.revision > 0 {
                    if let W::Deploy(d) = &w {
                        let cur: i64 = d
                            .metadata()
                            .annotations
                            .get(REVISION_ANNOTATION)
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if cur != r.revision {
                            let _ = tx
                                .send(Err(Status::failed_precondition(format!(
                                    "desired revision ({}) is different from the running revision ({cur})",
                                    r.revision
                                ))))
                                .await;
                            return;
                        }
                    }
                }
                let w2 = match w {
                    W::Deploy(d) => W2::Deploy(d),
                    W::Ds(d) => W2::Ds(d),
                    W::Sts(s) => W2::Sts(s),
                    W::Rs(_) => return,
                };
                let (message, done, failed) = rollout_status_line(&w2);
                if message != last || done || failed {
                    let msg = RolloutStatusMessage {
                        message: message.clone(),
                        done,
                        failed,
                    };
                    if tx.send(Ok(msg)).await.is_err() {
                        return; // the client went away
                    }
                    last = message;
                }
                if done || failed || r.no_watch {
                    return;
                }
                tokio::time::sleep(svc.poll).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn rollout_history(
        &self,
        req: Request<RolloutHistoryRequest>,
    ) -> Result<Response<RolloutHistoryResponse>, Status> {
        authorize(&req, req.get_ref().target.as_ref(), "get", "")?;
        authorize_history(&req, req.get_ref().target.as_ref())?;
        let r = req.into_inner();
        let (kind, ns, name) = parse_ref(r.target.as_ref())?;
        let w = self.get(kind, &ns, &name).await?;
        let hist = self.history(&w).await?;
        let mut resp = RolloutHistoryResponse::default();
        if r.revision > 0 {
            let Some((rev, cause, t)) = hist.into_iter().find(|h| h.0 == r.revision) else {
                return Err(Status::not_found(format!(
                    "unable to find the specified revision {}",
                    r.revision
                )));
            };
            resp.revisions.push(Revision {
                revision: rev,
                change_cause: cause,
            });
            resp.template = Some(t);
        } else {
            resp.revisions = hist
                .into_iter()
                .map(|(revision, change_cause, _)| Revision {
                    revision,
                    change_cause,
                })
                .collect();
        }
        Ok(Response::new(resp))
    }

    async fn rollout_undo(
        &self,
        req: Request<RolloutUndoRequest>,
    ) -> Result<Response<WorkloadResponse>, Status> {
        // kubectl rollout undo: reads the revisions, then patches the object.
        authorize(&req, req.get_ref().target.as_ref(), "patch", "")?;
        authorize_history(&req, req.get_ref().target.as_ref())?;
        let r = req.into_inner();
        let (kind, ns, name) = parse_ref(r.target.as_ref())?;
        let w = self.get(kind, &ns, &name).await?;
        if let W::Deploy(d) = &w {
            if d.spec.as_ref().is_some_and(|s| s.paused) {
                return Err(Status::failed_precondition(format!(
                    "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume deployment/{name}' and try again"
                )));
            }
        }
        let hist = self.history(&w).await?;
        let target_rev = if r.to_revision > 0 {
            r.to_revision
        } else {
            // The previous revision: the second highest.
            let mut revs: Vec<i64> = hist.iter().map(|h| h.0).collect();
            revs.sort_unstable();
            revs.dedup();
            match revs.iter().rev().nth(1) {
                Some(v) => *v,
                None => {
                    return Err(Status::failed_precondition("no rollout history found"));
                }
            }
        };
        let Some((_, _, template)) = hist.into_iter().find(|h| h.0 == target_rev) else {
            return Err(Status::not_found(format!(
                "unable to find specified revision {target_rev} in history"
            )));
        };
        let message = self
            .mutate(r.target.as_ref(), |w| {
                let kind = w.kind_name();
                let name = w.name().to_string();
                let t = w.template_mut();
                if equal_ignore_hash(t, &template) {
                    return Ok(Some(format!(
                        "{kind}/{name} skipped rollback (current template already matches revision {target_rev})"
                    )));
                }
                *t = template.clone();
                Ok(Some(format!("{kind}/{name} rolled back")))
            })
            .await?;
        Ok(Response::new(WorkloadResponse { message }))
    }

    async fn pause(&self, req: Request<WorkloadRef>) -> Result<Response<WorkloadResponse>, Status> {
        authorize(&req, Some(req.get_ref()), "patch", "")?;
        self.set_paused(req.into_inner(), true).await
    }

    async fn resume(
        &self,
        req: Request<WorkloadRef>,
    ) -> Result<Response<WorkloadResponse>, Status> {
        authorize(&req, Some(req.get_ref()), "patch", "")?;
        self.set_paused(req.into_inner(), false).await
    }

    async fn restart(
        &self,
        req: Request<WorkloadRef>,
    ) -> Result<Response<WorkloadResponse>, Status> {
        authorize(&req, Some(req.get_ref()), "patch", "")?;
        let r = req.into_inner();
        let now = crate::time::format_rfc3339(crate::podctl::now());
        let message = self
            .mutate(Some(&r), |w| {
                if matches!(w, W::Rs(_)) {
                    return Err(Status::invalid_argument(
                        "target.kind: replicasets cannot be restarted",
                    ));
                }
                let kind = w.kind_name();
                let name = w.name().to_string();
                w.template_mut()
                    .metadata
                    .get_or_insert_with(Default::default)
                    .annotations
                    .insert(RESTARTED_AT_ANNOTATION.into(), now.clone());
                Ok(Some(format!("{kind}/{name} restarted")))
            })
            .await?;
        Ok(Response::new(WorkloadResponse { message }))
    }
}
