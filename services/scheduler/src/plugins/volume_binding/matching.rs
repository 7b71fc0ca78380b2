//! Which PV a delayed claim can take on a node (upstream's FindMatchingVolume), and whether the
//! claim's class can provision there (checkVolumeProvisions).
use std::collections::HashSet;
use std::sync::Arc;

use coxswain_api::quantity::Quantity;
use coxswain_api::v1;

use super::claims::class_name;
use super::lister::meta_of;
use crate::plugins::node_affinity::node_selector_matches;

pub(super) fn requested(pvc: &v1::PersistentVolumeClaim) -> Option<Quantity> {
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

/// upstream's MatchTopologySelectorTerms over a StorageClass's allowedTopologies: no terms
/// admit every node, an empty term none; otherwise the node must carry, for every expression of some term, the
/// expression's key with one of its values.
pub fn allowed_topologies_match(class: &v1::StorageClass, node: &v1::Node) -> bool {
    if class.allowed_topologies.is_empty() {
        return true;
    }
    let labels = node.metadata.as_ref().map(|m| &m.labels);
    // An empty term selects no node.
    class.allowed_topologies.iter().any(|term| {
        !term.match_label_expressions.is_empty()
            && term.match_label_expressions.iter().all(|req| {
                labels
                    .and_then(|l| l.get(&req.key))
                    .is_some_and(|v| req.values.contains(v))
            })
    })
}
