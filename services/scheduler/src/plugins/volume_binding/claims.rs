//! A pod's claims as upstream's binder sorts them (GetPodVolumeClaims: fully bound, delayed,
//! immediate — pre-bound claims with them), and the
//! PreFilter's rejections of missing, deleting and lost claims.
use std::sync::Arc;

use coxswain_api::v1;

use super::lister::VolumeLister;
use super::matching::requested;
use super::ANN_BIND_COMPLETED;
use crate::framework::Status;
use crate::snapshot::{pod_namespace, pod_spec};

/// A pod's claims, sorted as the binder sorts them.
#[derive(Debug, Default, Clone)]
pub struct PodClaims {
    pub bound: Vec<Arc<v1::PersistentVolumeClaim>>,
    /// Not bound, WaitForFirstConsumer: bound (or provisioned) for the chosen node.
    pub delayed: Vec<Arc<v1::PersistentVolumeClaim>>,
    /// Not bound, Immediate (or no class), or naming their volume: the PV controller binds
    /// them.
    pub immediate: Vec<Arc<v1::PersistentVolumeClaim>>,
}

fn claim_names(pod: &v1::Pod) -> impl Iterator<Item = &str> {
    pod_spec(pod)
        .volumes
        .iter()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
}

pub(super) fn annotation<'a>(m: &'a Option<v1::ObjectMeta>, key: &str) -> Option<&'a str> {
    m.as_ref()
        .and_then(|m| m.annotations.get(key))
        .map(String::as_str)
}

/// upstream's IsPVCFullyBound: a volume name and the bind-completed annotation.
pub fn fully_bound(pvc: &v1::PersistentVolumeClaim) -> bool {
    pvc.spec.as_ref().is_some_and(|s| !s.volume_name.is_empty())
        && annotation(&pvc.metadata, ANN_BIND_COMPLETED).is_some()
}

pub(super) fn class_name(pvc: &v1::PersistentVolumeClaim) -> &str {
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
        // A claim naming its volume (pre-bound) waits for the PV controller to bind it, as an
        // Immediate one: once bound, only its volume's node affinity is checked.
        let prebound = pvc.spec.as_ref().is_some_and(|s| !s.volume_name.is_empty());
        if delay && !prebound {
            out.delayed.push(pvc);
        } else {
            out.immediate.push(pvc);
        }
    }
    // The binder matches the smallest requests first.
    out.delayed.sort_by_key(|c| requested(c));
    Ok(any.then_some(out))
}
