//! VolumeBinding: a pod's PersistentVolumeClaims must be bound, or bindable on the node, as
//! upstream's plugin and its volume binder decide:
//! - PreFilter: every claim must exist and not be being deleted (else
//!   UnschedulableAndUnresolvable `persistentvolumeclaim "X" not found` / `... is being
//!   deleted`); a claim that is not yet fully bound and whose class binds Immediately (or that
//!   has no class) leaves the pod `pod has unbound immediate PersistentVolumeClaims` until the
//!   PV controller binds it;
//! - Filter: a bound claim's volume must exist and its node affinity must match the node
//!   (`node(s) had volume node affinity conflict`); a WaitForFirstConsumer claim needs either
//!   an Available PV of its class that fits (access modes, capacity, node affinity) or a class
//!   that can provision (`node(s) didn't find available persistent volumes to bind`);
//! - PreBind ([`Decisions::apply`], run by the scheduling loop before the pod's Bind): the
//!   chosen PVs get their claimRef, claims to provision get the `selected-node` annotation,
//!   and the pod is bound only once every claim is bound (within the bind timeout).
//!
//! The claims, volumes and classes come from a [`VolumeLister`] the scheduling loop puts in
//! the [`Snapshot`] (informer caches); the decisions are pure functions of it.
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::quantity::Quantity;
use coxswain_api::v1;

use crate::framework::{ClusterEvent, Code, CycleState, Filter, Plugin, PreFilter, Status};
use crate::plugins::node_affinity::node_selector_matches;
use crate::snapshot::{pod_namespace, pod_spec, NodeInfo, Snapshot};

pub const NAME: &str = "VolumeBinding";
pub const ERR_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
pub const ERR_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const ERR_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
/// The provisioner of classes that cannot provision (static PVs only).
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// upstream's VolumeBindingArgs.bindTimeoutSeconds default.
pub const DEFAULT_BIND_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the plugin reads claims, volumes and classes.
pub trait VolumeLister: Send + Sync {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<v1::PersistentVolumeClaim>>;
    fn volume(&self, name: &str) -> Option<Arc<v1::PersistentVolume>>;
    fn volumes(&self) -> Vec<Arc<v1::PersistentVolume>>;
    fn class(&self, name: &str) -> Option<Arc<v1::StorageClass>>;
}

/// The lister the snapshot carries.
#[derive(Clone)]
pub struct Volumes(pub Arc<dyn VolumeLister>);

impl fmt::Debug for Volumes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Volumes")
    }
}

/// A lister over fixed objects (tests, dry runs).
#[derive(Default)]
pub struct StaticVolumes {
    pub claims: Vec<Arc<v1::PersistentVolumeClaim>>,
    pub volumes: Vec<Arc<v1::PersistentVolume>>,
    pub classes: Vec<Arc<v1::StorageClass>>,
}

fn meta_of(m: &Option<v1::ObjectMeta>) -> (&str, &str) {
    m.as_ref()
        .map_or(("", ""), |m| (m.namespace.as_str(), m.name.as_str()))
}

impl VolumeLister for StaticVolumes {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<v1::PersistentVolumeClaim>> {
        self.claims
            .iter()
            .find(|c| meta_of(&c.metadata) == (namespace, name))
            .cloned()
    }
    fn volume(&self, name: &str) -> Option<Arc<v1::PersistentVolume>> {
        self.volumes
            .iter()
            .find(|v| meta_of(&v.metadata).1 == name)
            .cloned()
    }
    fn volumes(&self) -> Vec<Arc<v1::PersistentVolume>> {
        self.volumes.clone()
    }
    fn class(&self, name: &str) -> Option<Arc<v1::StorageClass>> {
        self.classes
            .iter()
            .find(|c| meta_of(&c.metadata).1 == name)
            .cloned()
    }
}

/// A lister over the scheduler's informer caches.
#[derive(Clone)]
pub struct InformerVolumes {
    pub claims: coxswain_client::Cache<v1::PersistentVolumeClaim>,
    pub volumes: coxswain_client::Cache<v1::PersistentVolume>,
    pub classes: coxswain_client::Cache<v1::StorageClass>,
}

impl InformerVolumes {
    pub fn stop(&self) {
        self.claims.stop();
        self.volumes.stop();
        self.classes.stop();
    }
}

impl VolumeLister for InformerVolumes {
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<v1::PersistentVolumeClaim>> {
        self.claims.get(namespace, name)
    }
    fn volume(&self, name: &str) -> Option<Arc<v1::PersistentVolume>> {
        self.volumes.get("", name)
    }
    fn volumes(&self) -> Vec<Arc<v1::PersistentVolume>> {
        self.volumes.list()
    }
    fn class(&self, name: &str) -> Option<Arc<v1::StorageClass>> {
        self.classes.get("", name)
    }
}

/// A pod's claims, sorted as the binder sorts them.
#[derive(Debug, Default, Clone)]
pub struct PodClaims {
    pub bound: Vec<Arc<v1::PersistentVolumeClaim>>,
    /// Not bound, WaitForFirstConsumer: bound (or provisioned) for the chosen node.
    pub delayed: Vec<Arc<v1::PersistentVolumeClaim>>,
    /// Not bound, Immediate (or no class): the PV controller binds them.
    pub immediate: Vec<Arc<v1::PersistentVolumeClaim>>,
}

fn claim_names(pod: &v1::Pod) -> impl Iterator<Item = &str> {
    pod_spec(pod)
        .volumes
        .iter()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
}

fn annotation<'a>(m: &'a Option<v1::ObjectMeta>, key: &str) -> Option<&'a str> {
    m.as_ref()
        .and_then(|m| m.annotations.get(key))
        .map(String::as_str)
}

/// upstream's IsPVCFullyBound: a volume name and the bind-completed annotation.
pub fn fully_bound(pvc: &v1::PersistentVolumeClaim) -> bool {
    pvc.spec.as_ref().is_some_and(|s| !s.volume_name.is_empty())
        && annotation(&pvc.metadata, ANN_BIND_COMPLETED).is_some()
}

fn class_name(pvc: &v1::PersistentVolumeClaim) -> &str {
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The claims of a pod (None when it has none), or the PreFilter's rejection.
pub fn pod_claims(pod: &v1::Pod, l: &dyn VolumeLister) -> Result<Option<PodClaims>, Status> {
    let ns = pod_namespace(pod);
    let mut out = PodClaims::default();
    let mut any = false;
    for name in claim_names(pod) {
        any = true;
        let Some(pvc) = l.claim(ns, name) else {
            return Err(Status::unresolvable(format!(
                "persistentvolumeclaim \"{name}\" not found"
            )));
        };
        if pvc
            .metadata
            .as_ref()
            .is_some_and(|m| !m.deletion_timestamp.is_empty())
        {
            return Err(Status::unresolvable(format!(
                "persistentvolumeclaim \"{name}\" is being deleted"
            )));
        }
        if pvc.status.as_ref().is_some_and(|s| s.phase == "Lost") {
            let vol = pvc.spec.as_ref().map_or("", |s| s.volume_name.as_str());
            return Err(Status::unresolvable(format!(
                "persistentvolumeclaim \"{name}\" bound to non-existent persistentvolume \"{vol}\""
            )));
        }
        if fully_bound(&pvc) {
            out.bound.push(pvc);
            continue;
        }
        // shouldDelayBinding: only a named class can delay; a missing class is an error.
        let class = class_name(&pvc);
        let delay = if class.is_empty() {
            false
        } else {
            match l.class(class) {
                Some(c) => c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"),
                None => {
                    return Err(Status::error(format!(
                        "storageclass.storage.k8s.io \"{class}\" not found"
                    )))
                }
            }
        };
        if delay {
            out.delayed.push(pvc);
        } else {
            out.immediate.push(pvc);
        }
    }
    // The binder matches the smallest requests first.
    out.delayed.sort_by_key(|c| requested(c));
    Ok(any.then_some(out))
}

fn requested(pvc: &v1::PersistentVolumeClaim) -> Option<Quantity> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.get("storage"))
        .and_then(|q| Quantity::parse(q).ok())
}

fn capacity(pv: &v1::PersistentVolume) -> Option<Quantity> {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.get("storage"))
        .and_then(|q| Quantity::parse(q).ok())
}

/// The PV's node affinity admits the node (a PV without one is reachable from every node).
pub fn volume_fits_node(pv: &v1::PersistentVolume, node: &v1::Node) -> bool {
    match pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    {
        Some(sel) => node_selector_matches(sel, node),
        None => true,
    }
}

/// upstream's FindMatchingVolume for a delayed claim on a node: the PV pre-bound to the claim
/// (its claimRef, or the claim's volumeName) if it fits, else the smallest Available PV of the
/// claim's class with the claim's access modes, enough capacity and a node affinity that
/// admits the node, not already chosen for another claim of the pod.
pub fn matching_volume(
    pvc: &v1::PersistentVolumeClaim,
    volumes: &[Arc<v1::PersistentVolume>],
    node: &v1::Node,
    chosen: &HashSet<String>,
) -> Option<Arc<v1::PersistentVolume>> {
    let spec = pvc.spec.as_ref()?;
    let (ns, name) = meta_of(&pvc.metadata);
    let uid = pvc.metadata.as_ref().map_or("", |m| m.uid.as_str());
    let want = requested(pvc);
    let fits = |pv: &v1::PersistentVolume| {
        let Some(s) = pv.spec.as_ref() else {
            return false;
        };
        s.storage_class_name == class_name(pvc)
            && spec.access_modes.iter().all(|m| s.access_modes.contains(m))
            && match (&want, capacity(pv)) {
                (Some(w), Some(c)) => c >= *w,
                (None, _) => true,
                (Some(_), None) => false,
            }
            && pv
                .metadata
                .as_ref()
                .is_none_or(|m| m.deletion_timestamp.is_empty())
            && volume_fits_node(pv, node)
    };
    let prebound_to_us = |pv: &v1::PersistentVolume| {
        pv.spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some_and(|r| {
                r.namespace == ns && r.name == name && (r.uid.is_empty() || r.uid == uid)
            })
    };
    if !spec.volume_name.is_empty() {
        return volumes
            .iter()
            .find(|pv| meta_of(&pv.metadata).1 == spec.volume_name)
            .filter(|pv| fits(pv))
            .cloned();
    }
    if let Some(pv) = volumes.iter().find(|pv| prebound_to_us(pv) && fits(pv)) {
        return Some(pv.clone());
    }
    volumes
        .iter()
        .filter(|pv| {
            let free = pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_none())
                && pv.status.as_ref().is_none_or(|s| {
                    s.phase.is_empty() || s.phase == "Available" || s.phase == "Pending"
                });
            free && !chosen.contains(meta_of(&pv.metadata).1) && fits(pv)
        })
        .min_by_key(|pv| capacity(pv))
        .cloned()
}

/// What binding the pod's claims on one node takes.
#[derive(Debug, Default, Clone)]
pub struct Decisions {
    /// Claims and the PVs chosen for them.
    pub bindings: Vec<(Arc<v1::PersistentVolumeClaim>, Arc<v1::PersistentVolume>)>,
    /// Claims to provision on the node.
    pub provisions: Vec<Arc<v1::PersistentVolumeClaim>>,
    /// Every claim of the pod (bound ones included), waited for before the pod binds.
    pub all: Vec<(String, String)>,
    pub node: String,
}

/// upstream's FindPodVolumes: the decisions for a node, or the reasons it does not fit.
pub fn find_pod_volumes(
    claims: &PodClaims,
    l: &dyn VolumeLister,
    node: &v1::Node,
) -> Result<Decisions, Vec<&'static str>> {
    let mut reasons = Vec::new();
    for pvc in &claims.bound {
        let name = pvc.spec.as_ref().map_or("", |s| s.volume_name.as_str());
        match l.volume(name) {
            None => {
                if !reasons.contains(&ERR_PV_NOT_EXIST) {
                    reasons.push(ERR_PV_NOT_EXIST);
                }
            }
            Some(pv) if !volume_fits_node(&pv, node) => {
                if !reasons.contains(&ERR_NODE_CONFLICT) {
                    reasons.push(ERR_NODE_CONFLICT);
                }
            }
            Some(_) => {}
        }
    }
    let node_name = meta_of(&node.metadata).1;
    let mut d = Decisions {
        node: node_name.to_string(),
        ..Default::default()
    };
    let mut satisfied = true;
    if !claims.delayed.is_empty() {
        let volumes = l.volumes();
        let mut chosen = HashSet::new();
        for pvc in &claims.delayed {
            match annotation(&pvc.metadata, ANN_SELECTED_NODE) {
                Some(n) if n != node_name => {
                    satisfied = false;
                    continue;
                }
                Some(_) => {
                    d.provisions.push(pvc.clone());
                    continue;
                }
                None => {}
            }
            match matching_volume(pvc, &volumes, node, &chosen) {
                Some(pv) => {
                    chosen.insert(meta_of(&pv.metadata).1.to_string());
                    d.bindings.push((pvc.clone(), pv));
                }
                None => d.provisions.push(pvc.clone()),
            }
        }
        // checkVolumeProvisions: the class must be able to provision.
        for pvc in &d.provisions {
            let can = l
                .class(class_name(pvc))
                .is_some_and(|c| c.provisioner != NO_PROVISIONER);
            if !can {
                satisfied = false;
            }
        }
    }
    if !satisfied {
        reasons.push(ERR_BIND_CONFLICT);
    }
    if !reasons.is_empty() {
        return Err(reasons);
    }
    for pvc in claims
        .bound
        .iter()
        .chain(&claims.delayed)
        .chain(&claims.immediate)
    {
        let (ns, name) = meta_of(&pvc.metadata);
        d.all.push((ns.to_string(), name.to_string()));
    }
    Ok(d)
}

/// The decisions for a pod on a node, for the bind step (None: nothing to do).
pub fn decide(
    volumes: &Volumes,
    pod: &v1::Pod,
    node: &v1::Node,
) -> Result<Option<Decisions>, String> {
    let claims = match pod_claims(pod, volumes.0.as_ref()) {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(None),
        Err(s) => return Err(s.message()),
    };
    if !claims.immediate.is_empty() {
        return Err(ERR_UNBOUND_IMMEDIATE.into());
    }
    find_pod_volumes(&claims, volumes.0.as_ref(), node)
        .map(Some)
        .map_err(|r| r.join(", "))
}

fn claim_ref(pvc: &v1::PersistentVolumeClaim) -> v1::ObjectReference {
    let m = pvc.metadata.clone().unwrap_or_default();
    v1::ObjectReference {
        kind: "PersistentVolumeClaim".into(),
        namespace: m.namespace,
        name: m.name,
        uid: m.uid,
        api_version: "v1".into(),
        resource_version: m.resource_version,
        ..Default::default()
    }
}

impl Decisions {
    /// PreBind: write the bindings (PV claimRef) and the provisioning requests (the claim's
    /// selected-node), then wait, polling the lister every `poll`, until every claim of the pod
    /// is fully bound to a PV that names it, at most `timeout`.
    pub async fn apply(
        &self,
        client: &coxswain_client::Client,
        volumes: &Volumes,
        timeout: Duration,
        poll: Duration,
    ) -> Result<(), String> {
        let err = |e: coxswain_client::Error| format!("binding volumes: {e}");
        for (pvc, pv) in &self.bindings {
            let mut pv = (**pv).clone();
            let spec = pv.spec.get_or_insert_with(Default::default);
            if spec.claim_ref.is_none() {
                spec.claim_ref = Some(claim_ref(pvc));
                pv.metadata
                    .get_or_insert_with(Default::default)
                    .annotations
                    .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
                client.update(&pv).await.map_err(err)?;
            }
        }
        for pvc in &self.provisions {
            if annotation(&pvc.metadata, ANN_SELECTED_NODE) != Some(self.node.as_str()) {
                let mut c = (**pvc).clone();
                c.metadata
                    .get_or_insert_with(Default::default)
                    .annotations
                    .insert(ANN_SELECTED_NODE.into(), self.node.clone());
                client.update(&c).await.map_err(err)?;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.all_bound(volumes.0.as_ref())? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err("binding volumes: timed out waiting for the condition".into());
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// upstream's checkBindings: every claim fully bound, its PV's claimRef naming it.
    fn all_bound(&self, l: &dyn VolumeLister) -> Result<bool, String> {
        for (ns, name) in &self.all {
            let Some(pvc) = l.claim(ns, name) else {
                return Err(format!(
                    "binding volumes: persistentvolumeclaim \"{name}\" not found"
                ));
            };
            if !fully_bound(&pvc) {
                return Ok(false);
            }
            let vol = pvc.spec.as_ref().map_or("", |s| s.volume_name.as_str());
            let uid = pvc.metadata.as_ref().map_or("", |m| m.uid.as_str());
            let ok = l.volume(vol).is_some_and(|pv| {
                pv.spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .is_some_and(|r| r.uid == uid)
            });
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

pub struct VolumeBinding;

struct PreFilterState(PodClaims);

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeLabel,
            ClusterEvent::VolumeChange,
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl PreFilter for VolumeBinding {
    fn pre_filter(&self, state: &mut CycleState, pod: &v1::Pod, snapshot: &Snapshot) -> Status {
        let Some(volumes) = snapshot.volumes.as_ref() else {
            return Status::skip();
        };
        match pod_claims(pod, volumes.0.as_ref()) {
            Ok(None) => Status::skip(),
            Err(s) => s,
            Ok(Some(c)) if !c.immediate.is_empty() => Status::unresolvable(ERR_UNBOUND_IMMEDIATE),
            Ok(Some(c)) => {
                state.write(PreFilterState(c));
                state.write(volumes.clone());
                Status::success()
            }
        }
    }
}

impl Filter for VolumeBinding {
    fn filter(&self, state: &CycleState, _pod: &v1::Pod, node: &NodeInfo) -> Status {
        let (Some(PreFilterState(claims)), Some(volumes)) =
            (state.read::<PreFilterState>(), state.read::<Volumes>())
        else {
            return Status::success();
        };
        match find_pod_volumes(claims, volumes.0.as_ref(), &node.node) {
            Ok(_) => Status::success(),
            Err(reasons) => Status::new(
                Code::UnschedulableAndUnresolvable,
                reasons.into_iter().map(String::from).collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;

    fn class(name: &str, provisioner: &str, mode: &str) -> Arc<v1::StorageClass> {
        Arc::new(v1::StorageClass {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            provisioner: provisioner.into(),
            volume_binding_mode: Some(mode.into()),
            ..Default::default()
        })
    }

    fn claim(name: &str, class: &str, size: &str) -> v1::PersistentVolumeClaim {
        v1::PersistentVolumeClaim {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("uid-{name}"),
                ..Default::default()
            }),
            spec: Some(v1::PersistentVolumeClaimSpec {
                access_modes: vec!["ReadWriteOnce".into()],
                storage_class_name: Some(class.into()),
                resources: Some(v1::VolumeResourceRequirements {
                    requests: [("storage".to_string(), size.to_string())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn bound(mut c: v1::PersistentVolumeClaim, pv: &str) -> v1::PersistentVolumeClaim {
        c.spec.as_mut().unwrap().volume_name = pv.into();
        c.metadata
            .as_mut()
            .unwrap()
            .annotations
            .insert(ANN_BIND_COMPLETED.into(), "yes".into());
        c
    }

    fn volume(name: &str, class: &str, size: &str, on: Option<&str>) -> v1::PersistentVolume {
        v1::PersistentVolume {
            metadata: Some(v1::ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: Some(v1::PersistentVolumeSpec {
                capacity: [("storage".to_string(), size.to_string())].into(),
                access_modes: vec!["ReadWriteOnce".into()],
                storage_class_name: class.into(),
                node_affinity: on.map(|n| v1::VolumeNodeAffinity {
                    required: Some(v1::NodeSelector {
                        node_selector_terms: vec![v1::NodeSelectorTerm {
                            match_expressions: vec![req("kubernetes.io/hostname", "In", &[n])],
                            ..Default::default()
                        }],
                    }),
                }),
                ..Default::default()
            }),
            status: Some(v1::PersistentVolumeStatus {
                phase: "Available".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod_with(claims: &[&str]) -> v1::Pod {
        let mut p = pod("p", &[]);
        spec(&mut p).volumes = claims
            .iter()
            .map(|c| v1::Volume {
                name: c.to_string(),
                persistent_volume_claim: Some(v1::PersistentVolumeClaimVolumeSource {
                    claim_name: c.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        p
    }

    fn host(name: &str) -> v1::Node {
        node(name, &[("kubernetes.io/hostname", name)])
    }

    fn lister(
        claims: Vec<v1::PersistentVolumeClaim>,
        volumes: Vec<v1::PersistentVolume>,
    ) -> StaticVolumes {
        StaticVolumes {
            claims: claims.into_iter().map(Arc::new).collect(),
            volumes: volumes.into_iter().map(Arc::new).collect(),
            classes: vec![
                class("standard", "coxswain.io/local-path", "WaitForFirstConsumer"),
                class("local", NO_PROVISIONER, "WaitForFirstConsumer"),
                class("fast", "example.com/fast", "Immediate"),
            ],
        }
    }

    /// PreFilter then Filter on one node, as the framework runs them.
    fn run(l: StaticVolumes, pod: &v1::Pod, n: v1::Node) -> (Code, Vec<String>) {
        let mut snap = snapshot(vec![n.clone()], vec![]);
        snap.volumes = Some(Volumes(Arc::new(l)));
        let mut state = CycleState::new();
        let s = VolumeBinding.pre_filter(&mut state, pod, &snap);
        if !s.is_success() {
            return (s.code, s.reasons.iter().map(|r| r.to_string()).collect());
        }
        let s = VolumeBinding.filter(&state, pod, &info(n, vec![]));
        (s.code, s.reasons.iter().map(|r| r.to_string()).collect())
    }

    #[test]
    fn prefilter_rejections_are_upstreams() {
        let p = pod_with(&["data"]);
        let (code, r) = run(lister(vec![], vec![]), &p, host("n1"));
        assert_eq!(code, Code::UnschedulableAndUnresolvable);
        assert_eq!(r, vec!["persistentvolumeclaim \"data\" not found"]);

        let mut c = claim("data", "standard", "1Gi");
        c.metadata.as_mut().unwrap().deletion_timestamp = "2026-01-01T00:00:00Z".into();
        let (code, r) = run(lister(vec![c], vec![]), &p, host("n1"));
        assert_eq!(code, Code::UnschedulableAndUnresolvable);
        assert_eq!(r, vec!["persistentvolumeclaim \"data\" is being deleted"]);

        let (code, r) = run(
            lister(vec![claim("data", "fast", "1Gi")], vec![]),
            &p,
            host("n1"),
        );
        assert_eq!(code, Code::UnschedulableAndUnresolvable);
        assert_eq!(r, vec![ERR_UNBOUND_IMMEDIATE]);

        // No class: immediate too (the PV controller binds it).
        let (code, r) = run(
            lister(vec![claim("data", "", "1Gi")], vec![]),
            &p,
            host("n1"),
        );
        assert_eq!(
            (code, r),
            (
                Code::UnschedulableAndUnresolvable,
                vec![ERR_UNBOUND_IMMEDIATE.to_string()]
            )
        );

        let (code, _) = run(lister(vec![], vec![]), &pod("plain", &[]), host("n1"));
        assert_eq!(code, Code::Skip);
    }

    #[test]
    fn bound_claims_follow_their_volumes_node_affinity() {
        let p = pod_with(&["data"]);
        let l = || {
            lister(
                vec![bound(claim("data", "standard", "1Gi"), "pv1")],
                vec![volume("pv1", "standard", "1Gi", Some("n1"))],
            )
        };
        assert_eq!(run(l(), &p, host("n1")).0, Code::Success);
        assert_eq!(
            run(l(), &p, host("n2")),
            (
                Code::UnschedulableAndUnresolvable,
                vec![ERR_NODE_CONFLICT.to_string()]
            )
        );
        let l = lister(
            vec![bound(claim("data", "standard", "1Gi"), "gone")],
            vec![],
        );
        assert_eq!(run(l, &p, host("n1")).1, vec![ERR_PV_NOT_EXIST.to_string()]);
    }

    #[test]
    fn delayed_claims_match_a_local_volume_or_provision() {
        let p = pod_with(&["data"]);
        // A no-provisioner class: only a matching PV on the node will do.
        let l = || {
            lister(
                vec![claim("data", "local", "1Gi")],
                vec![
                    volume("small", "local", "500Mi", Some("n1")),
                    volume("big", "local", "10Gi", Some("n1")),
                    volume("fit", "local", "2Gi", Some("n1")),
                    volume("other", "local", "2Gi", Some("n2")),
                ],
            )
        };
        assert_eq!(run(l(), &p, host("n1")).0, Code::Success);
        assert_eq!(run(l(), &p, host("n2")).0, Code::Success);
        assert_eq!(
            run(l(), &p, host("n3")),
            (
                Code::UnschedulableAndUnresolvable,
                vec![ERR_BIND_CONFLICT.to_string()]
            )
        );
        let l = l();
        let claims = pod_claims(&p, &l).unwrap().unwrap();
        let d = find_pod_volumes(&claims, &l, &host("n1")).unwrap();
        assert_eq!(d.bindings.len(), 1);
        assert_eq!(meta_of(&d.bindings[0].1.metadata).1, "fit");
        assert!(d.provisions.is_empty());

        // Too big for every PV of a no-provisioner class.
        let l = lister(
            vec![claim("data", "local", "100Gi")],
            vec![volume("fit", "local", "2Gi", Some("n1"))],
        );
        assert_eq!(
            run(l, &p, host("n1")).1,
            vec![ERR_BIND_CONFLICT.to_string()]
        );

        // A provisioning class provisions when nothing matches, on any node.
        let l = lister(vec![claim("data", "standard", "1Gi")], vec![]);
        let claims = pod_claims(&p, &l).unwrap().unwrap();
        let d = find_pod_volumes(&claims, &l, &host("n3")).unwrap();
        assert_eq!(d.provisions.len(), 1);
        assert_eq!(d.node, "n3");

        // A claim already given a node fits that node only.
        let mut c = claim("data", "standard", "1Gi");
        c.metadata
            .as_mut()
            .unwrap()
            .annotations
            .insert(ANN_SELECTED_NODE.into(), "n1".into());
        let l = || lister(vec![c.clone()], vec![]);
        assert_eq!(run(l(), &p, host("n1")).0, Code::Success);
        assert_eq!(
            run(l(), &p, host("n2")).1,
            vec![ERR_BIND_CONFLICT.to_string()]
        );
    }

    #[test]
    fn two_claims_never_take_the_same_volume() {
        let p = pod_with(&["a", "b"]);
        let l = lister(
            vec![claim("a", "local", "1Gi"), claim("b", "local", "1Gi")],
            vec![volume("only", "local", "1Gi", Some("n1"))],
        );
        assert_eq!(
            run(l, &p, host("n1")).1,
            vec![ERR_BIND_CONFLICT.to_string()]
        );
        let l = lister(
            vec![claim("a", "local", "1Gi"), claim("b", "local", "1Gi")],
            vec![
                volume("one", "local", "1Gi", Some("n1")),
                volume("two", "local", "1Gi", None),
            ],
        );
        assert_eq!(run(l, &p, host("n1")).0, Code::Success);
    }
}
