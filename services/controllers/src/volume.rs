//! The PersistentVolume controller's pure logic (upstream's pkg/controller/volume/persistentvolume
//! index.go and util.go): which Available volume fits a claim ([`best_match`],
//! [`volume_satisfies_claim`], [`prebound_volume`]), whether a claim is in use
//! ([`claim_in_use`]), the PV the local-path provisioner makes ([`provisioned_pv`]) and the
//! cluster's default StorageClass ([`default_class`]). The loop is [`crate::volume_ctrl`].
use coxswain_api::quantity::Quantity;
use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectMeta,
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, Pod,
    StorageClass, VolumeNodeAffinity,
};
use coxswain_api::Resource;

/// The finalizers the StorageObjectInUseProtection admission puts on every claim and volume:
/// a claim in use by a scheduled pod, and a Bound volume, are not removed until released.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// The provisioner of the default class.
pub const PROVISIONER: &str = "coxswain.io/local-path";
/// The default class's name.
pub const DEFAULT_CLASS: &str = "standard";
pub const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
pub(crate) const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub(crate) const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub(crate) const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub(crate) const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The claims a pod uses, as `namespace/claim` keys.
pub(crate) fn claims_of(p: &Pod) -> Vec<String> {
    let ns = &p.metadata().namespace;
    p.spec
        .iter()
        .flat_map(|s| s.volumes.iter())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| format!("{ns}/{}", c.claim_name))
        .collect()
}

pub(crate) fn storage_of(pvc: &PersistentVolumeClaim) -> Option<Quantity> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.get("storage"))
        .and_then(|q| Quantity::parse(q).ok())
}

pub(crate) fn capacity_of(pv: &PersistentVolume) -> Option<Quantity> {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.get("storage"))
        .and_then(|q| Quantity::parse(q).ok())
}

/// upstream's checkVolumeSatisfyClaim, for a volume the claim names (spec.volumeName): not
/// being deleted, at least the requested size, the claim's class, volume mode and access modes.
pub fn volume_satisfies_claim(
    pv: &PersistentVolume,
    pvc: &PersistentVolumeClaim,
) -> std::result::Result<(), String> {
    let spec = pvc.spec.clone().unwrap_or_default();
    let pv_spec = pv.spec.clone().unwrap_or_default();
    if !pv.metadata().deletion_timestamp.is_empty() {
        return Err(format!(
            "the volume is marked for deletion {:?}",
            pv.metadata().name
        ));
    }
    let want = storage_of(pvc).map_or(0, |q| q.value());
    if capacity_of(pv).map_or(0, |q| q.value()) < want {
        return Err("requested PV is too small".into());
    }
    if pv_spec.storage_class_name != spec.storage_class_name.clone().unwrap_or_default() {
        return Err("storageClassName does not match".into());
    }
    let mode = |m: &Option<String>| m.clone().unwrap_or_else(|| "Filesystem".into());
    if mode(&pv_spec.volume_mode) != mode(&spec.volume_mode) {
        return Err("incompatible volumeMode".into());
    }
    if !spec
        .access_modes
        .iter()
        .all(|m| pv_spec.access_modes.contains(m))
    {
        return Err("incompatible accessMode".into());
    }
    Ok(())
}

/// A missing volumeMode is Filesystem (upstream's CheckVolumeModeMismatches).
fn volume_mode(m: &Option<String>) -> &str {
    m.as_deref().unwrap_or("Filesystem")
}

/// upstream's findBestMatchForClaim: among unclaimed PVs of the claim's class and volumeMode
/// whose access modes include the claim's and whose labels match the claim's selector, the
/// smallest whose capacity covers the request. A selector that cannot be read matches nothing.
pub fn best_match<'a>(
    pvc: &PersistentVolumeClaim,
    pvs: impl IntoIterator<Item = &'a PersistentVolume>,
) -> Option<&'a PersistentVolume> {
    let spec = pvc.spec.as_ref()?;
    let class = spec.storage_class_name.clone().unwrap_or_default();
    let want = storage_of(pvc)?;
    let selector = match &spec.selector {
        None => None,
        Some(s) => Some(LabelSelector::from_proto(Some(s)).ok()?),
    };
    pvs.into_iter()
        .filter(|pv| {
            let Some(s) = pv.spec.as_ref() else {
                return false;
            };
            let free = s.claim_ref.is_none()
                && pv.metadata().deletion_timestamp.is_empty()
                && pv
                    .status
                    .as_ref()
                    .is_none_or(|st| st.phase == "Available" || st.phase == "Pending");
            free && s.storage_class_name == class
                && volume_mode(&s.volume_mode) == volume_mode(&spec.volume_mode)
                && selector
                    .as_ref()
                    .is_none_or(|sel| sel.matches(&pv.metadata().labels))
                && spec.access_modes.iter().all(|m| s.access_modes.contains(m))
                && capacity_of(pv).is_some_and(|c| c >= want)
        })
        .min_by(|a, b| capacity_of(a).cmp(&capacity_of(b)))
}

/// A PV pre-bound to the claim (its claimRef names the claim, as the scheduler's VolumeBinding
/// or a user writes it) that is not being deleted and holds the request (upstream's
/// findMatchingVolume skips a smaller volume before it looks at the claimRef): upstream binds
/// it first, whatever the binding mode.
pub fn prebound_volume<'a>(
    pvc: &PersistentVolumeClaim,
    pvs: impl IntoIterator<Item = &'a PersistentVolume>,
) -> Option<&'a PersistentVolume> {
    let m = pvc.metadata();
    let want = storage_of(pvc);
    let claim_mode = pvc.spec.as_ref().and_then(|s| s.volume_mode.clone());
    pvs.into_iter().find(|pv| {
        pv.metadata().deletion_timestamp.is_empty()
            && pv
                .spec
                .as_ref()
                .is_some_and(|s| volume_mode(&s.volume_mode) == volume_mode(&claim_mode))
            && want
                .as_ref()
                .is_none_or(|w| capacity_of(pv).is_some_and(|c| c >= *w))
            && pv
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .is_some_and(|r| {
                    r.namespace == m.namespace
                        && r.name == m.name
                        && (r.uid.is_empty() || r.uid == m.uid)
                })
    })
}

/// upstream's pvc-protection rule: a claim is in use while a pod scheduled to a node (whatever
/// its phase) names it.
pub fn claim_in_use<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> bool {
    pods.into_iter()
        .any(|p| p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty()))
}

/// The PV the local-path provisioner makes for a claim: `pvc-<uid>`, a directory under `base`
/// (on `node`, pinned there by nodeAffinity when given), the claim's size and access modes,
/// the class's reclaim policy, already claimed by the claim.
pub fn provisioned_pv(
    pvc: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
    base: &std::path::Path,
) -> PersistentVolume {
    let m = pvc.metadata();
    let spec = pvc.spec.clone().unwrap_or_default();
    let name = format!("pvc-{}", m.uid);
    let dir = base.join(format!("{name}_{}_{}", m.namespace, m.name));
    let node_affinity = (!node.is_empty()).then(|| VolumeNodeAffinity {
        required: Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: vec![NodeSelectorRequirement {
                    key: "kubernetes.io/hostname".into(),
                    operator: "In".into(),
                    values: vec![node.to_string()],
                }],
                ..Default::default()
            }],
        }),
    });
    PersistentVolume {
        metadata: Some(ObjectMeta {
            name,
            annotations: [(PROVISIONED_BY.to_string(), class.provisioner.clone())].into(),
            finalizers: vec![],
            ..Default::default()
        }),
        spec: Some(PersistentVolumeSpec {
            capacity: spec
                .resources
                .as_ref()
                .and_then(|r| r.requests.get("storage"))
                .map(|q| [("storage".to_string(), q.clone())].into())
                .unwrap_or_default(),
            access_modes: spec.access_modes.clone(),
            claim_ref: Some(claim_ref(pvc)),
            persistent_volume_reclaim_policy: class
                .reclaim_policy
                .clone()
                .unwrap_or_else(|| "Delete".into()),
            storage_class_name: class.metadata().name.clone(),
            volume_mode: spec.volume_mode.clone(),
            host_path: Some(HostPathVolumeSource {
                path: dir.to_string_lossy().into_owned(),
                r#type: Some("DirectoryOrCreate".into()),
            }),
            node_affinity,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// upstream's IsVolumeBoundToClaim: the volume's claimRef names the claim (and its uid, when
/// the claimRef has one).
pub fn volume_bound_to_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let m = pvc.metadata();
    pv.spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .is_some_and(|r| {
            r.namespace == m.namespace && r.name == m.name && (r.uid.is_empty() || r.uid == m.uid)
        })
}

/// What the controller does with a claim that names its volume (`spec.volumeName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedClaim {
    /// Write both sides of the binding (claimRef with the uid, the claim's annotations) and
    /// both statuses.
    Bind,
    /// Already bound on both sides: the statuses only.
    MarkBound,
    /// Stay Pending, with a Warning event (reason, message) when there is one.
    Pending(Option<(&'static str, String)>),
    /// Lost, a terminal phase, with its Warning event (reason, message).
    Lost(&'static str, &'static str),
    /// A binding that cannot happen (someone removed the claim's bind-completed annotation).
    Invalid(String),
}

/// upstream's syncClaim for a claim with `spec.volumeName`: without the bind-completed
/// annotation its syncUnboundClaim ("volume is requested": a missing volume is waited for, an
/// unclaimed one is bound if it satisfies the claim, one claimed by another claim leaves it
/// Pending), with it syncBoundClaim (a missing volume or one bound to another claim is Lost).
pub fn named_claim(pvc: &PersistentVolumeClaim, pv: Option<&PersistentVolume>) -> NamedClaim {
    let m = pvc.metadata();
    let completed = m.annotations.contains_key(BIND_COMPLETED);
    let Some(pv) = pv else {
        return if completed {
            NamedClaim::Lost(
                "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
            )
        } else {
            NamedClaim::Pending(None)
        };
    };
    let r = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if completed {
        return match r {
            None => NamedClaim::Bind,
            Some(r) if r.uid == m.uid => NamedClaim::MarkBound,
            Some(_) => NamedClaim::Lost(
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            ),
        };
    }
    let name = &pv.metadata().name;
    match r {
        None => match volume_satisfies_claim(pv, pvc) {
            Ok(()) => NamedClaim::Bind,
            Err(why) => NamedClaim::Pending(Some((
                "VolumeMismatch",
                format!("Cannot bind to requested volume {name:?}: {why}"),
            ))),
        },
        Some(_) if volume_bound_to_claim(pv, pvc) => NamedClaim::Bind,
        Some(_) if !m.annotations.contains_key(BOUND_BY_CONTROLLER) => NamedClaim::Pending(Some((
            "FailedBinding",
            format!("volume {name:?} already bound to a different claim."),
        ))),
        Some(r) => NamedClaim::Invalid(format!(
            "invalid binding of claim {:?} to volume {name:?}: volume already claimed by {:?}",
            format!("{}/{}", m.namespace, m.name),
            format!("{}/{}", r.namespace, r.name)
        )),
    }
}

pub(crate) fn claim_ref(pvc: &PersistentVolumeClaim) -> ObjectReference {
    let m = pvc.metadata();
    ObjectReference {
        kind: "PersistentVolumeClaim".into(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        api_version: "v1".into(),
        ..Default::default()
    }
}

/// The default class `standard`.
pub fn default_class(base: &std::path::Path) -> StorageClass {
    StorageClass {
        metadata: Some(ObjectMeta {
            name: DEFAULT_CLASS.into(),
            annotations: [(IS_DEFAULT_CLASS.to_string(), "true".to_string())].into(),
            ..Default::default()
        }),
        provisioner: PROVISIONER.into(),
        parameters: [("nodePath".to_string(), base.to_string_lossy().into_owned())].into(),
        reclaim_policy: Some("Delete".into()),
        volume_binding_mode: Some("WaitForFirstConsumer".into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{
        PersistentVolumeClaimSpec, PersistentVolumeStatus, VolumeResourceRequirements,
    };

    fn claim(class: Option<&str>, size: &str, modes: &[&str]) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: Some(ObjectMeta {
                name: "www-web-0".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                ..Default::default()
            }),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: modes.iter().map(|m| m.to_string()).collect(),
                storage_class_name: class.map(String::from),
                resources: Some(VolumeResourceRequirements {
                    requests: [("storage".to_string(), size.to_string())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn volume(name: &str, class: &str, size: &str, modes: &[&str]) -> PersistentVolume {
        PersistentVolume {
            metadata: Some(ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: Some(PersistentVolumeSpec {
                capacity: [("storage".to_string(), size.to_string())].into(),
                access_modes: modes.iter().map(|m| m.to_string()).collect(),
                storage_class_name: class.into(),
                ..Default::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: "Available".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_smallest_fitting_volume_of_the_class_is_chosen() {
        let pvs = [
            volume("big", "", "10Gi", &["ReadWriteOnce"]),
            volume("small", "", "1Gi", &["ReadWriteOnce"]),
            volume("tiny", "", "500Mi", &["ReadWriteOnce"]),
            volume("rox", "", "1Gi", &["ReadOnlyMany"]),
            volume("other-class", "fast", "1Gi", &["ReadWriteOnce"]),
        ];
        let c = claim(None, "1Gi", &["ReadWriteOnce"]);
        assert_eq!(
            best_match(&c, &pvs).map(|p| p.metadata().name.as_str()),
            Some("small")
        );
        let c = claim(Some("fast"), "1Gi", &["ReadWriteOnce"]);
        assert_eq!(
            best_match(&c, &pvs).map(|p| p.metadata().name.as_str()),
            Some("other-class")
        );
        let c = claim(None, "20Gi", &["ReadWriteOnce"]);
        assert!(best_match(&c, &pvs).is_none());
        let mut taken = pvs[1].clone();
        taken.spec.as_mut().unwrap().claim_ref = Some(ObjectReference::default());
        let c = claim(None, "1Gi", &["ReadWriteOnce"]);
        assert_eq!(
            best_match(&c, [&taken, &pvs[0]]).map(|p| p.metadata().name.as_str()),
            Some("big")
        );
    }

    #[test]
    fn a_provisioned_volume_is_a_directory_pinned_to_the_node() {
        let class = default_class(std::path::Path::new("/data/local-path"));
        let c = claim(Some("standard"), "1Gi", &["ReadWriteOnce"]);
        let pv = provisioned_pv(
            &c,
            &class,
            "node2",
            std::path::Path::new("/data/local-path"),
        );
        assert_eq!(pv.metadata().name, "pvc-u1");
        let s = pv.spec.unwrap();
        assert_eq!(s.capacity.get("storage").map(String::as_str), Some("1Gi"));
        assert_eq!(s.access_modes, vec!["ReadWriteOnce"]);
        assert_eq!(s.persistent_volume_reclaim_policy, "Delete");
        assert_eq!(s.storage_class_name, "standard");
        assert_eq!(s.claim_ref.unwrap().uid, "u1");
        assert_eq!(
            s.host_path.unwrap().path,
            "/data/local-path/pvc-u1_default_www-web-0"
        );
        let term = &s
            .node_affinity
            .unwrap()
            .required
            .unwrap()
            .node_selector_terms[0];
        assert_eq!(term.match_expressions[0].values, vec!["node2"]);
        assert_eq!(
            class.volume_binding_mode.as_deref(),
            Some("WaitForFirstConsumer")
        );
    }

    #[test]
    fn a_volume_smaller_than_the_claim_is_never_bound() {
        let c = claim(Some("manual"), "1Gi", &["ReadWriteOnce"]);
        let mut small = volume("small", "manual", "500Mi", &["ReadWriteOnce"]);
        small.spec.as_mut().unwrap().claim_ref = Some(claim_ref(&c));
        assert!(prebound_volume(&c, [&small]).is_none());
        let mut exact = volume("exact", "manual", "1024Mi", &["ReadWriteOnce"]);
        exact.spec.as_mut().unwrap().claim_ref = Some(claim_ref(&c));
        assert_eq!(
            prebound_volume(&c, [&small, &exact]).map(|p| p.metadata().name.as_str()),
            Some("exact")
        );
        assert!(best_match(&c, [&volume("v", "manual", "999Mi", &["ReadWriteOnce"])]).is_none());
        // Named by the claim: checkVolumeSatisfyClaim's reasons, in its order.
        let v = |size: &str, class: &str, modes: &[&str]| volume("v", class, size, modes);
        assert_eq!(
            volume_satisfies_claim(&v("500Mi", "manual", &["ReadWriteOnce"]), &c),
            Err("requested PV is too small".to_string())
        );
        assert_eq!(
            volume_satisfies_claim(&v("2Gi", "other", &["ReadWriteOnce"]), &c),
            Err("storageClassName does not match".to_string())
        );
        assert_eq!(
            volume_satisfies_claim(&v("2Gi", "manual", &["ReadOnlyMany"]), &c),
            Err("incompatible accessMode".to_string())
        );
        assert_eq!(
            volume_satisfies_claim(&v("2Gi", "manual", &["ReadWriteOnce", "ReadOnlyMany"]), &c),
            Ok(())
        );
    }

    #[test]
    fn the_claim_selector_and_volume_mode_narrow_the_match() {
        let label = |mut pv: PersistentVolume, k: &str, v: &str| {
            pv.metadata
                .as_mut()
                .unwrap()
                .labels
                .insert(k.into(), v.into());
            pv
        };
        let plain = volume("plain", "manual", "1Gi", &["ReadWriteOnce"]);
        let gold = label(
            volume("gold", "manual", "5Gi", &["ReadWriteOnce"]),
            "tier",
            "gold",
        );
        let mut block = volume("block", "manual", "1Gi", &["ReadWriteOnce"]);
        block.spec.as_mut().unwrap().volume_mode = Some("Block".into());
        let name = |p: Option<&PersistentVolume>| p.map(|p| p.metadata().name.clone());
        let mut c = claim(Some("manual"), "1Gi", &["ReadWriteOnce"]);
        // A Filesystem claim (unset) never takes the Block volume.
        assert_eq!(
            name(best_match(&c, [&block, &gold, &plain])).as_deref(),
            Some("plain")
        );
        c.spec.as_mut().unwrap().selector = Some(coxswain_api::v1::LabelSelector {
            match_labels: [("tier".to_string(), "gold".to_string())].into(),
            ..Default::default()
        });
        assert_eq!(
            name(best_match(&c, [&block, &gold, &plain])).as_deref(),
            Some("gold")
        );
        c.spec.as_mut().unwrap().selector = None;
        c.spec.as_mut().unwrap().volume_mode = Some("Block".into());
        assert_eq!(
            name(best_match(&c, [&block, &gold, &plain])).as_deref(),
            Some("block")
        );
        // Pre-bound to the claim but of the other volumeMode: not bound.
        let mut fs = volume("fs", "manual", "1Gi", &["ReadWriteOnce"]);
        fs.spec.as_mut().unwrap().claim_ref = Some(claim_ref(&c));
        assert!(prebound_volume(&c, [&fs]).is_none());
    }

    #[test]
    fn a_claim_naming_its_volume_follows_upstreams_sync_claim() {
        let c = claim(Some("manual"), "1Gi", &["ReadWriteOnce"]);
        let completed = |mut c: PersistentVolumeClaim| {
            c.metadata_mut()
                .annotations
                .insert(BIND_COMPLETED.into(), "yes".into());
            c
        };
        let by_controller = |mut c: PersistentVolumeClaim| {
            c.metadata_mut()
                .annotations
                .insert(BOUND_BY_CONTROLLER.into(), "yes".into());
            c
        };
        let with_ref = |ns: &str, name: &str, uid: &str| {
            let mut pv = volume("pv", "manual", "2Gi", &["ReadWriteOnce"]);
            pv.spec.as_mut().unwrap().claim_ref = Some(ObjectReference {
                namespace: ns.into(),
                name: name.into(),
                uid: uid.into(),
                ..Default::default()
            });
            pv
        };
        let free = volume("pv", "manual", "2Gi", &["ReadWriteOnce"]);
        let small = volume("pv", "manual", "500Mi", &["ReadWriteOnce"]);
        let other_class = volume("pv", "fast", "2Gi", &["ReadWriteOnce"]);
        let rox = volume("pv", "manual", "2Gi", &["ReadOnlyMany"]);
        let ours_no_uid = with_ref("default", "www-web-0", "");
        let ours = with_ref("default", "www-web-0", "u1");
        let old_uid = with_ref("default", "www-web-0", "u0");
        let theirs = with_ref("default", "other", "u9");
        let mismatch = |why: &str| {
            NamedClaim::Pending(Some((
                "VolumeMismatch",
                format!("Cannot bind to requested volume \"pv\": {why}"),
            )))
        };
        let lost = NamedClaim::Lost(
            "ClaimLost",
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
        );
        let misbound = NamedClaim::Lost(
            "ClaimMisbound",
            "Two claims are bound to the same volume, this one is bound incorrectly",
        );
        let cases: Vec<(&str, PersistentVolumeClaim, Option<&PersistentVolume>, NamedClaim)> = vec![
            // syncUnboundClaim, volume requested:
            ("missing volume: wait", c.clone(), None, NamedClaim::Pending(None)),
            ("unclaimed and fits", c.clone(), Some(&free), NamedClaim::Bind),
            ("too small", c.clone(), Some(&small), mismatch("requested PV is too small")),
            ("other class", c.clone(), Some(&other_class), mismatch("storageClassName does not match")),
            ("access modes", c.clone(), Some(&rox), mismatch("incompatible accessMode")),
            ("pre-bound both sides, no uid", c.clone(), Some(&ours_no_uid), NamedClaim::Bind),
            ("claimRef with our uid", c.clone(), Some(&ours), NamedClaim::Bind),
            ("claimRef of an older claim of that name", c.clone(), Some(&old_uid), NamedClaim::Pending(Some((
                "FailedBinding",
                "volume \"pv\" already bound to a different claim.".into(),
            )))),
            ("another claim's", c.clone(), Some(&theirs), NamedClaim::Pending(Some((
                "FailedBinding",
                "volume \"pv\" already bound to a different claim.".into(),
            )))),
            ("another claim's, the claim bound by the controller", by_controller(c.clone()), Some(&theirs),
                NamedClaim::Invalid("invalid binding of claim \"default/www-web-0\" to volume \"pv\": volume already claimed by \"default/other\"".into())),
            // syncBoundClaim:
            ("bound, volume gone", completed(c.clone()), None, lost),
            ("bound, volume came unbound", completed(c.clone()), Some(&free), NamedClaim::Bind),
            ("bound, even too small: no checks", completed(c.clone()), Some(&small), NamedClaim::Bind),
            ("bound both sides", completed(c.clone()), Some(&ours), NamedClaim::MarkBound),
            ("bound, the claimRef without uid", completed(c.clone()), Some(&ours_no_uid), misbound.clone()),
            ("bound, another claim's", completed(c.clone()), Some(&theirs), misbound),
        ];
        for (what, pvc, pv, want) in cases {
            assert_eq!(named_claim(&pvc, pv), want, "{what}");
        }
    }
}
