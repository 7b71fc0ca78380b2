//! VolumeBinding: a pod's PersistentVolumeClaims must be bound, or bindable on the node, as
//! upstream's plugin and its volume binder decide:
//! - PreFilter: every claim must exist and not be being deleted (else
//!   UnschedulableAndUnresolvable `persistentvolumeclaim "X" not found` / `... is being
//!   deleted`); a claim that is not yet fully bound and whose class binds Immediately (or that
//!   has no class, or that names its volume in `spec.volumeName`) leaves the pod `pod has
//!   unbound immediate PersistentVolumeClaims` until the PV controller binds it;
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
//!
//! Parts: [`lister`] (where claims, volumes and classes are read), [`claims`] (a pod's claims
//! sorted as the binder sorts them; the PreFilter's rejections), [`matching`] (which PV a
//! delayed claim can take on a node, and whether its class can provision there), [`binder`]
//! (FindPodVolumes' decisions for a node and the PreBind that writes and waits for them).
use crate::framework::{ClusterEvent, Code, CycleState, Filter, Plugin, PreFilter, Status};
use crate::snapshot::{NodeInfo, Snapshot};
use coxswain_api::v1;
use std::time::Duration;

mod binder;
mod claims;
mod lister;
mod matching;

pub use binder::{decide, find_pod_volumes, Decisions};
pub use claims::{fully_bound, pod_claims, PodClaims};
pub use lister::{InformerVolumes, StaticVolumes, VolumeLister, Volumes};
pub use matching::{allowed_topologies_match, matching_volume, volume_fits_node};

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
mod tests;
