//! The PersistentVolume controller (upstream's PersistentVolumeController) with a local-path
//! provisioner (rancher.io/local-path's semantics) and the cluster's default StorageClass:
//! - `standard` (default class, provisioner [`PROVISIONER`], WaitForFirstConsumer, reclaim
//!   Delete) is created at start when no class named so exists;
//! - an unbound claim without a class gets the default class (retroactive assignment);
//! - a claim of an Immediate class, or of no class, binds the smallest Available PV that fits
//!   (class, access modes, capacity); a claim of a provisioning class gets a new PV — for
//!   WaitForFirstConsumer once a pod using it is scheduled, on that pod's node: one directory
//!   per volume under the provisioner's base directory, pinned to the node by nodeAffinity;
//! - binding writes PV.spec.claimRef, PVC.spec.volumeName, both statuses (Bound) and the
//!   claim's capacity and access modes;
//! - when the claim goes, the PV is Released, then per its reclaimPolicy deleted (with its
//!   directory) or kept (Retain).
//!
//! The matching and the PV to provision are pure functions ([`best_match`], [`provisioned_pv`]).
use std::path::PathBuf;
use std::sync::Arc;

use coxswain_api::quantity::Quantity;
use coxswain_api::v1::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectMeta,
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
    PersistentVolumeStatus, Pod, StorageClass, VolumeNodeAffinity,
};
use coxswain_api::Resource;
use coxswain_client::{
    Cache, Client, DeleteParams, Event, Informer, ObjectRef, RateLimit, Recorder, WorkQueue,
};

use crate::runtime::{key_of, split_key, Action, Result};

/// The finalizers the StorageObjectInUseProtection admission puts on every claim and volume:
/// a claim in use by a scheduled pod, and a Bound volume, are not removed until released.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// The provisioner of the default class.
pub const PROVISIONER: &str = "coxswain.io/local-path";
/// The default class's name.
pub const DEFAULT_CLASS: &str = "standard";
pub const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Index of pods by `namespace/claimName`, one entry per claim they use.
const CLAIM_INDEX: &str = "claim";
/// Index of unbound claims by storage class name ("" for none).
const UNBOUND_CLASS_INDEX: &str = "unbound-class";

/// Key prefix of PV keys in the queue (claims are `namespace/name`).
const PV_KEY: &str = "pv:";

/// The claims a pod uses, as `namespace/claim` keys.
fn claims_of(p: &Pod) -> Vec<String> {
    let ns = &p.metadata().namespace;
    p.spec
        .iter()
        .flat_map(|s| s.volumes.iter())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| format!("{ns}/{}", c.claim_name))
        .collect()
}

fn storage_of(pvc: &PersistentVolumeClaim) -> Option<Quantity> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.get("storage"))
        .and_then(|q| Quantity::parse(q).ok())
}

fn capacity_of(pv: &PersistentVolume) -> Option<Quantity> {
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

/// upstream's findBestMatchForClaim: among unclaimed PVs of the claim's class whose access
/// modes include the claim's, the smallest whose capacity covers the request.
pub fn best_match<'a>(
    pvc: &PersistentVolumeClaim,
    pvs: impl IntoIterator<Item = &'a PersistentVolume>,
) -> Option<&'a PersistentVolume> {
    let spec = pvc.spec.as_ref()?;
    let class = spec.storage_class_name.clone().unwrap_or_default();
    let want = storage_of(pvc)?;
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
    pvs.into_iter().find(|pv| {
        pv.metadata().deletion_timestamp.is_empty()
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

fn claim_ref(pvc: &PersistentVolumeClaim) -> ObjectReference {
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

/// The controller's state.
pub struct VolumeCtx {
    client: Client,
    claims: Cache<PersistentVolumeClaim>,
    volumes: Cache<PersistentVolume>,
    classes: Cache<StorageClass>,
    pods: Cache<Pod>,
    queue: WorkQueue<String>,
    recorder: Recorder,
    base: PathBuf,
}

/// Start the informers, make the default class, and run the workers.
pub fn start(client: Client, rl: RateLimit, base: PathBuf, workers: usize) -> Arc<VolumeCtx> {
    let queue = WorkQueue::named(rl, "persistentvolume");
    let claims = {
        let q = queue.clone();
        Informer::<PersistentVolumeClaim>::new(client.clone())
            .index(UNBOUND_CLASS_INDEX, |c: &PersistentVolumeClaim| {
                c.spec
                    .as_ref()
                    .filter(|s| s.volume_name.is_empty())
                    .map(|s| vec![s.storage_class_name.clone().unwrap_or_default()])
                    .unwrap_or_default()
            })
            .on_event(move |ev: &Event<PersistentVolumeClaim>| match ev {
                Event::Added(o) | Event::Modified { new: o, .. } => q.add(key_of(o.metadata())),
                Event::Deleted(o) => {
                    let v = o
                        .spec
                        .as_ref()
                        .map(|s| s.volume_name.clone())
                        .unwrap_or_default();
                    if !v.is_empty() {
                        q.add(format!("{PV_KEY}{v}"));
                    }
                }
                _ => {}
            })
            .start()
    };
    let volumes = {
        let (q, claims) = (queue.clone(), claims.clone());
        Informer::<PersistentVolume>::new(client.clone())
            .on_event(move |ev: &Event<PersistentVolume>| {
                if let Event::Added(o) | Event::Modified { new: o, .. } = ev {
                    q.add(format!("{PV_KEY}{}", o.metadata().name));
                    let Some(spec) = o.spec.as_ref() else { return };
                    match &spec.claim_ref {
                        Some(c) => q.add(format!("{}/{}", c.namespace, c.name)),
                        // An unclaimed volume may fit a claim left Pending before this volume
                        // was seen (the claim and volume watches are not ordered with each
                        // other; upstream finds it at its periodic claim resync): the unbound
                        // claims of its class are looked at again.
                        None => {
                            for c in claims.by_index(UNBOUND_CLASS_INDEX, &spec.storage_class_name)
                            {
                                q.add(key_of(c.metadata()));
                            }
                        }
                    }
                }
            })
            .start()
    };
    let classes = {
        let (q, claims) = (queue.clone(), claims.clone());
        Informer::<StorageClass>::new(client.clone())
            .on_event(move |ev: &Event<StorageClass>| {
                if let Event::Added(_) | Event::Modified { .. } = ev {
                    for c in claims.list() {
                        q.add(key_of(c.metadata()));
                    }
                }
            })
            .start()
    };
    let pods = {
        let q = queue.clone();
        Informer::<Pod>::new(client.clone())
            .index(CLAIM_INDEX, claims_of)
            .on_event(move |ev: &Event<Pod>| match ev {
                Event::Added(p) | Event::Modified { new: p, .. }
                    if p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty()) =>
                {
                    for k in claims_of(p) {
                        q.add(k);
                    }
                }
                // A claim being deleted may be released now.
                Event::Deleted(p) => {
                    for k in claims_of(p) {
                        q.add(k);
                    }
                }
                _ => {}
            })
            .start()
    };
    let ctx = Arc::new(VolumeCtx {
        recorder: Recorder::new(client.clone(), "persistentvolume-controller", ""),
        client,
        claims,
        volumes,
        classes,
        pods,
        queue,
        base,
    });
    let c = ctx.clone();
    tokio::spawn(async move {
        c.classes.wait_synced().await;
        if c.classes.get("", DEFAULT_CLASS).is_none() {
            if let Err(e) = c.client.create(&default_class(&c.base)).await {
                tracing::debug!(error = %e, "creating the default StorageClass");
            }
        }
        c.claims.wait_synced().await;
        c.volumes.wait_synced().await;
        c.pods.wait_synced().await;
        for o in c.claims.list() {
            c.queue.add(key_of(o.metadata()));
        }
        for o in c.volumes.list() {
            c.queue.add(format!("{PV_KEY}{}", o.metadata().name));
        }
        let c2 = c.clone();
        crate::runtime::run("persistentvolume", c.queue.clone(), workers, move |k| {
            let c3 = c2.clone();
            async move { c3.reconcile(k).await }
        })
        .await;
    });
    ctx
}

impl VolumeCtx {
    pub fn stop(&self) {
        self.claims.stop();
        self.volumes.stop();
        self.classes.stop();
        self.pods.stop();
        self.queue.shutdown();
    }

    async fn reconcile(&self, key: String) -> Result<Action> {
        match key.strip_prefix(PV_KEY) {
            Some(name) => self.sync_volume(name).await,
            None => self.sync_claim(&key).await,
        }
    }

    fn default_class(&self) -> Option<Arc<StorageClass>> {
        self.classes
            .list()
            .into_iter()
            .filter(|c| {
                c.metadata()
                    .annotations
                    .get(IS_DEFAULT_CLASS)
                    .map(String::as_str)
                    == Some("true")
            })
            .max_by(|a, b| {
                a.metadata()
                    .creation_timestamp
                    .cmp(&b.metadata().creation_timestamp)
            })
    }

    async fn sync_claim(&self, key: &str) -> Result<Action> {
        let (ns, name) = split_key(key);
        let Some(pvc) = self.claims.get(ns, name) else {
            return Ok(Action::Await);
        };
        if !pvc.metadata().deletion_timestamp.is_empty() {
            return self.release_claim(&pvc, key).await;
        }
        let spec = pvc.spec.clone().unwrap_or_default();
        if !spec.volume_name.is_empty() {
            return self.sync_bound_claim(&pvc).await;
        }
        let Some(class_name) = spec.storage_class_name.clone() else {
            // Retroactive default class assignment.
            if let Some(class) = self.default_class() {
                let mut c = (*pvc).clone();
                c.spec
                    .get_or_insert_with(Default::default)
                    .storage_class_name = Some(class.metadata().name.clone());
                self.client.update(&c).await?;
            } else {
                return self.bind_static(&pvc).await;
            }
            return Ok(Action::Await);
        };
        if let Some(pv) = prebound_volume(&pvc, self.volumes.list().iter().map(|p| p.as_ref())) {
            let pv = pv.clone();
            return self.bind(&pvc, pv).await;
        }
        let class = self.classes.get("", &class_name);
        let provisions = class.as_ref().is_some_and(|c| c.provisioner == PROVISIONER);
        let wait = class
            .as_ref()
            .and_then(|c| c.volume_binding_mode.as_deref())
            == Some("WaitForFirstConsumer");
        if !wait {
            if let Some(pv) = best_match(&pvc, self.volumes.list().iter().map(|p| p.as_ref())) {
                let pv = pv.clone();
                return self.bind(&pvc, pv).await;
            }
        }
        let Some(class) = class.filter(|_| provisions) else {
            self.set_claim_phase(&pvc, "Pending").await?;
            return Ok(Action::Await);
        };
        let node = if wait {
            // The node the scheduler selected (its VolumeBinding's PreBind), else the node of
            // a pod that names the claim and was placed without the scheduler.
            let selected = pvc.metadata().annotations.get(SELECTED_NODE).cloned();
            let scheduled = selected.or_else(|| {
                self.pods
                    .by_index(CLAIM_INDEX, key)
                    .into_iter()
                    .filter(|p| p.metadata().deletion_timestamp.is_empty())
                    .find_map(|p| {
                        p.spec
                            .as_ref()
                            .map(|s| s.node_name.clone())
                            .filter(|n| !n.is_empty())
                    })
            });
            match scheduled {
                Some(n) => n,
                None => {
                    if pvc.status.as_ref().is_none_or(|s| s.phase.is_empty()) {
                        self.recorder.normal(
                            &ObjectRef::from_resource(pvc.as_ref()),
                            "WaitForFirstConsumer",
                            "waiting for first consumer to be created before binding",
                        );
                    }
                    self.set_claim_phase(&pvc, "Pending").await?;
                    return Ok(Action::Await);
                }
            }
        } else {
            String::new()
        };
        let base = class
            .parameters
            .get("nodePath")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.base.clone());
        let pv = provisioned_pv(&pvc, &class, &node, &base);
        if let Some(dir) = pv.spec.as_ref().and_then(|s| s.host_path.as_ref()) {
            std::fs::create_dir_all(&dir.path)?;
        }
        let pv_name = pv.metadata().name.clone();
        let created = match self.volumes.get("", &pv_name) {
            Some(existing) => (*existing).clone(),
            None => match self.client.create(&pv).await {
                Ok(p) => p,
                Err(e) if e.to_string().contains("already exists") => pv.clone(),
                Err(e) => return Err(e.into()),
            },
        };
        self.recorder.normal(
            &ObjectRef::from_resource(pvc.as_ref()),
            "ProvisioningSucceeded",
            format!("Successfully provisioned volume {pv_name}"),
        );
        let mut claim = (*pvc).clone();
        if !node.is_empty() {
            claim
                .metadata_mut()
                .annotations
                .insert(SELECTED_NODE.into(), node);
        }
        self.bind_claim_side(claim, &created).await
    }

    /// A claim without a provisioning class: bind a PV made by hand, if one fits.
    async fn bind_static(&self, pvc: &Arc<PersistentVolumeClaim>) -> Result<Action> {
        match best_match(pvc, self.volumes.list().iter().map(|p| p.as_ref())) {
            Some(pv) => {
                let pv = pv.clone();
                self.bind(pvc, pv).await
            }
            None => {
                self.set_claim_phase(pvc, "Pending").await?;
                Ok(Action::Await)
            }
        }
    }

    /// Bind: the PV's claimRef first (so no other claim takes it), then the claim.
    async fn bind(
        &self,
        pvc: &Arc<PersistentVolumeClaim>,
        mut pv: PersistentVolume,
    ) -> Result<Action> {
        pv.spec.get_or_insert_with(Default::default).claim_ref = Some(claim_ref(pvc));
        pv.metadata_mut()
            .annotations
            .insert(BOUND_BY_CONTROLLER.into(), "yes".into());
        let pv = self.client.update(&pv).await?;
        self.bind_claim_side((**pvc).clone(), &pv).await
    }

    async fn bind_claim_side(
        &self,
        mut claim: PersistentVolumeClaim,
        pv: &PersistentVolume,
    ) -> Result<Action> {
        let pv_name = pv.metadata().name.clone();
        claim.spec.get_or_insert_with(Default::default).volume_name = pv_name.clone();
        let a = &mut claim.metadata_mut().annotations;
        a.insert(BIND_COMPLETED.into(), "yes".into());
        a.insert(BOUND_BY_CONTROLLER.into(), "yes".into());
        let claim = self.client.update(&claim).await?;
        self.mark_bound(&claim, pv).await?;
        Ok(Action::Await)
    }

    async fn sync_bound_claim(&self, pvc: &Arc<PersistentVolumeClaim>) -> Result<Action> {
        let name = pvc
            .spec
            .as_ref()
            .map(|s| s.volume_name.clone())
            .unwrap_or_default();
        match self.volumes.get("", &name) {
            Some(pv) => {
                let ours = pv
                    .spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .is_some_and(|r| r.uid == pvc.metadata().uid);
                if ours {
                    self.mark_bound(pvc, &pv).await?;
                } else if pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_none()) {
                    // Pre-bound by the user (spec.volumeName): complete the PV side, if the
                    // volume satisfies the claim (else the claim stays Pending, as upstream).
                    if let Err(why) = volume_satisfies_claim(&pv, pvc) {
                        self.recorder.warning(
                            &ObjectRef::from_resource(pvc.as_ref()),
                            "VolumeMismatch",
                            format!(
                                "Cannot bind to requested volume {:?}: {why}",
                                pv.metadata().name
                            ),
                        );
                        self.set_claim_phase(pvc, "Pending").await?;
                        return Ok(Action::Await);
                    }
                    return self.bind(pvc, (*pv).clone()).await;
                } else {
                    self.set_claim_phase(pvc, "Lost").await?;
                }
            }
            None => {
                if pvc.status.as_ref().is_some_and(|s| s.phase == "Bound") {
                    self.set_claim_phase(pvc, "Lost").await?;
                }
            }
        }
        Ok(Action::Await)
    }

    /// Both statuses say Bound; the claim's carries the volume's capacity and access modes.
    async fn mark_bound(&self, pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> Result<()> {
        let pv_spec = pv.spec.clone().unwrap_or_default();
        let want = coxswain_api::v1::PersistentVolumeClaimStatus {
            phase: "Bound".into(),
            access_modes: pv_spec.access_modes.clone(),
            capacity: pv_spec.capacity.clone(),
            conditions: pvc
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default(),
        };
        if pvc.status.as_ref() != Some(&want) {
            let mut c = pvc.clone();
            c.status = Some(want);
            self.client.update_status(&c).await?;
        }
        if pv.status.as_ref().map(|s| s.phase.as_str()) != Some("Bound") {
            let mut v = pv.clone();
            v.status = Some(PersistentVolumeStatus {
                phase: "Bound".into(),
                last_phase_transition_time: coxswain_api::time::now_rfc3339(),
                ..Default::default()
            });
            self.client.update_status(&v).await?;
        }
        Ok(())
    }

    async fn set_claim_phase(&self, pvc: &PersistentVolumeClaim, phase: &str) -> Result<()> {
        if pvc.status.as_ref().map(|s| s.phase.as_str()) == Some(phase) {
            return Ok(());
        }
        let mut c = pvc.clone();
        c.status.get_or_insert_with(Default::default).phase = phase.into();
        self.client.update_status(&c).await?;
        Ok(())
    }

    async fn set_volume_phase(&self, pv: &PersistentVolume, phase: &str) -> Result<()> {
        if pv.status.as_ref().map(|s| s.phase.as_str()) == Some(phase) {
            return Ok(());
        }
        let mut v = pv.clone();
        v.status = Some(PersistentVolumeStatus {
            phase: phase.into(),
            last_phase_transition_time: coxswain_api::time::now_rfc3339(),
            ..Default::default()
        });
        self.client.update_status(&v).await?;
        Ok(())
    }

    /// The pvc-protection controller: a claim being deleted loses its finalizer once no
    /// scheduled pod names it.
    async fn release_claim(&self, pvc: &Arc<PersistentVolumeClaim>, key: &str) -> Result<Action> {
        if !pvc
            .metadata()
            .finalizers
            .iter()
            .any(|f| f == PVC_PROTECTION)
        {
            return Ok(Action::Await);
        }
        let pods = self.pods.by_index(CLAIM_INDEX, key);
        if claim_in_use(pods.iter().map(|p| p.as_ref())) {
            return Ok(Action::Await);
        }
        // The cache may lag: ask the store before letting the claim go.
        let (ns, _) = split_key(key);
        let (live, _) = self.client.list::<Pod>(ns, &Default::default()).await?;
        let name = &pvc.metadata().name;
        let users = live.iter().filter(|p| {
            p.spec.as_ref().is_some_and(|s| {
                s.volumes.iter().any(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .is_some_and(|c| &c.claim_name == name)
                })
            })
        });
        if claim_in_use(users) {
            return Ok(Action::Await);
        }
        let mut c = (**pvc).clone();
        c.metadata_mut().finalizers.retain(|f| f != PVC_PROTECTION);
        self.client.update(&c).await?;
        Ok(Action::Await)
    }

    async fn sync_volume(&self, name: &str) -> Result<Action> {
        let Some(pv) = self.volumes.get("", name) else {
            return Ok(Action::Await);
        };
        if !pv.metadata().deletion_timestamp.is_empty() {
            // The pv-protection controller: a volume being deleted keeps its finalizer while
            // it is Bound.
            let bound = pv.status.as_ref().is_some_and(|s| s.phase == "Bound");
            if !bound {
                if pv.metadata().finalizers.iter().any(|f| f == PV_PROTECTION) {
                    let mut v = (*pv).clone();
                    v.metadata_mut().finalizers.retain(|f| f != PV_PROTECTION);
                    self.client.update(&v).await?;
                }
                return Ok(Action::Await);
            }
            // Bound: released below once its claim is gone.
        }
        let spec = pv.spec.clone().unwrap_or_default();
        let Some(r) = spec.claim_ref.as_ref() else {
            self.set_volume_phase(&pv, "Available").await?;
            return Ok(Action::Await);
        };
        let claim = self.claims.get(&r.namespace, &r.name);
        let claim_gone = match &claim {
            None => true,
            Some(c) => !r.uid.is_empty() && c.metadata().uid != r.uid,
        };
        if !claim_gone {
            // Bound, or still binding: the claim's sync finishes it.
            return Ok(Action::Await);
        }
        // The claim may be missing only from our cache: ask the store before releasing.
        if claim.is_none() {
            let live: Option<PersistentVolumeClaim> =
                self.client.get(&r.namespace, &r.name).await?;
            if live.is_some_and(|c| r.uid.is_empty() || c.metadata().uid == r.uid) {
                return Ok(Action::Await);
            }
        }
        self.set_volume_phase(&pv, "Released").await?;
        if spec.persistent_volume_reclaim_policy == "Delete" {
            if pv
                .metadata()
                .annotations
                .get(PROVISIONED_BY)
                .map(String::as_str)
                == Some(PROVISIONER)
            {
                if let Some(h) = &spec.host_path {
                    let _ = std::fs::remove_dir_all(&h.path);
                }
            }
            self.client
                .delete::<PersistentVolume>("", name, &DeleteParams::default())
                .await?;
        }
        Ok(Action::Await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};

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
}
