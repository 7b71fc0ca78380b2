//! Which PV a delayed claim can take on a node (upstream's FindMatchingVolume, in
//! component-helpers storage/volume pv_helpers.go), and whether the
//! claim's class can provision there (checkVolumeProvisions).
use std::collections::HashSet;
use std::sync::Arc;

use coxswain_api::quantity::Quantity;
use coxswain_api::selector::LabelSelector;
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

/// A missing volumeMode is Filesystem on both sides (upstream's CheckVolumeModeMismatches).
fn volume_mode(m: &Option<String>) -> &str {
    m.as_deref().unwrap_or("Filesystem")
}

/// upstream's FindMatchingVolume for a delayed claim on a node (scheduler path), over the
/// volumes not already chosen for another claim of the pod:
/// - every candidate needs the capacity asked for, the claim's volumeMode and no deletion
///   timestamp; a volume bound to another claim is skipped;
/// - a volume pre-bound to the claim (its claimRef) is the answer if its node affinity admits
///   the node, and there is no match at all if it does not;
/// - else the smallest Available volume whose labels match the claim's selector, of the
///   claim's class, whose node affinity admits the node and whose access modes include the
///   claim's.
///
/// A claim naming its volume (`spec.volumeName`) never comes here: the PV controller binds it
/// ([`super::pod_claims`] puts it with the immediate claims). A selector that cannot be read
/// matches nothing.
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
    let selector = match &spec.selector {
        None => None,
        Some(s) => Some(LabelSelector::from_proto(Some(s)).ok()?),
    };
    let bound_to_us = |s: &v1::PersistentVolumeSpec| {
        s.claim_ref.as_ref().is_some_and(|r| {
            r.namespace == ns && r.name == name && (r.uid.is_empty() || r.uid == uid)
        })
    };
    // Every candidate: enough capacity, the same volumeMode, not being deleted.
    let base = |pv: &v1::PersistentVolume, s: &v1::PersistentVolumeSpec| {
        let big_enough = match (&want, capacity(pv)) {
            (Some(w), Some(c)) => c >= *w,
            (None, _) => true,
            (Some(_), None) => false,
        };
        big_enough
            && volume_mode(&s.volume_mode) == volume_mode(&spec.volume_mode)
            && pv
                .metadata
                .as_ref()
                .is_none_or(|m| m.deletion_timestamp.is_empty())
    };
    // An unbound candidate also needs the phase, the selector, the class, the node and the
    // access modes.
    let fits = |pv: &v1::PersistentVolume, s: &v1::PersistentVolumeSpec| {
        let available = pv.status.as_ref().is_none_or(|st| {
            st.phase.is_empty() || st.phase == "Available" || st.phase == "Pending"
        });
        let no_labels = std::collections::BTreeMap::new();
        let labels = pv.metadata.as_ref().map_or(&no_labels, |m| &m.labels);
        available
            && selector.as_ref().is_none_or(|sel| sel.matches(labels))
            && s.storage_class_name == class_name(pvc)
            && volume_fits_node(pv, node)
            && spec.access_modes.iter().all(|m| s.access_modes.contains(m))
    };
    let mut best: Option<(&Arc<v1::PersistentVolume>, Option<Quantity>)> = None;
    for pv in volumes {
        let Some(s) = pv.spec.as_ref() else {
            continue;
        };
        if chosen.contains(meta_of(&pv.metadata).1) {
            continue;
        }
        if s.claim_ref.is_some() && !bound_to_us(s) {
            continue;
        }
        if !base(pv, s) {
            continue;
        }
        if bound_to_us(s) {
            return volume_fits_node(pv, node).then(|| pv.clone());
        }
        if !fits(pv, s) {
            continue;
        }
        let qty = capacity(pv);
        if best.as_ref().is_none_or(|(_, q)| *q > qty) {
            best = Some((pv, qty));
        }
    }
    best.map(|(pv, _)| pv.clone())
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
