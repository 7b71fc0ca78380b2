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
//! - a claim naming its volume (`spec.volumeName`) is bound to it as upstream's syncClaim
//!   does ([`named_claim`]): a missing volume is waited for, one claimed by another claim
//!   leaves it Pending; once bound, losing the volume makes it Lost;
//! - when the claim goes, the PV is Released, then per its reclaimPolicy deleted (with its
//!   directory) or kept (Retain).
//!
//! The matching and the PV to provision are pure functions in [`crate::volume`].
use std::path::PathBuf;
use std::sync::Arc;

use coxswain_api::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeStatus, Pod, StorageClass,
};
use coxswain_api::Resource;
use coxswain_client::{
    Cache, Client, DeleteParams, Event, Informer, ObjectRef, RateLimit, Recorder, WorkQueue,
};

use crate::runtime::{key_of, split_key, Action, Result};
use crate::volume::*;

/// Index of pods by `namespace/claimName`, one entry per claim they use.
const CLAIM_INDEX: &str = "claim";
/// Index of unbound claims by storage class name ("" for none).
const UNBOUND_CLASS_INDEX: &str = "unbound-class";
/// Index of claims by the volume they name (spec.volumeName).
const NAMED_VOLUME_INDEX: &str = "named-volume";

/// Key prefix of PV keys in the queue (claims are `namespace/name`).
const PV_KEY: &str = "pv:";

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

/// The claim, volume and class informers and the queue, started before the controller manager's
/// shared pod informer: that one informer (one per kind, as upstream's shared informer factory)
/// carries this controller's [`CLAIM_INDEX`] and [`Parts::pod_handler`], so a pod event is
/// decoded once per process, not once per controller that looks at pods.
pub struct Parts {
    claims: Cache<PersistentVolumeClaim>,
    volumes: Cache<PersistentVolume>,
    classes: Cache<StorageClass>,
    queue: WorkQueue<String>,
}

impl Parts {
    pub fn start(client: &Client, rl: RateLimit) -> Parts {
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
                .index(NAMED_VOLUME_INDEX, |c: &PersistentVolumeClaim| {
                    c.spec
                        .as_ref()
                        .filter(|s| !s.volume_name.is_empty())
                        .map(|s| vec![s.volume_name.clone()])
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
                            // So may a claim that names this volume, made before it.
                            None => {
                                let named = claims.by_index(NAMED_VOLUME_INDEX, &o.metadata().name);
                                for c in claims
                                    .by_index(UNBOUND_CLASS_INDEX, &spec.storage_class_name)
                                    .into_iter()
                                    .chain(named)
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
        Parts {
            claims,
            volumes,
            classes,
            queue,
        }
    }

    /// The claims cache (the controller manager shares it rather than watching claims twice).
    pub fn claims(&self) -> &Cache<PersistentVolumeClaim> {
        &self.claims
    }

    /// The index the shared pod cache must carry for this controller: a pod's claims,
    /// `namespace/claimName`.
    pub fn pod_index() -> (&'static str, fn(&Pod) -> Vec<String>) {
        (CLAIM_INDEX, claims_of)
    }

    /// The shared pod informer's handler: a scheduled pod's claims (a WaitForFirstConsumer
    /// claim is provisioned on its node), and a deleted pod's (a claim being deleted may be
    /// released now).
    pub fn pod_handler(&self) -> impl Fn(&Event<Pod>) + Send + Sync + 'static {
        let q = self.queue.clone();
        move |ev: &Event<Pod>| match ev {
            Event::Added(p) | Event::Modified { new: p, .. }
                if p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty()) =>
            {
                for k in claims_of(p) {
                    q.add(k);
                }
            }
            Event::Deleted(p) => {
                for k in claims_of(p) {
                    q.add(k);
                }
            }
            _ => {}
        }
    }
}

/// Make the default class and run the workers, over `parts` and the shared pod cache `pods`
/// (built with [`Parts::pod_index`] and [`Parts::pod_handler`]).
pub fn start(
    client: Client,
    parts: Parts,
    pods: Cache<Pod>,
    base: PathBuf,
    workers: usize,
) -> Arc<VolumeCtx> {
    let Parts {
        claims,
        volumes,
        classes,
        queue,
    } = parts;
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
    /// Stop its informers and queue (the shared pod cache is the controller manager's).
    pub fn stop(&self) {
        self.claims.stop();
        self.volumes.stop();
        self.classes.stop();
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
        // The provisioner cannot honour a selector (sig-storage-lib-external-provisioner's
        // "claim Selector is not supported"): such a claim waits for a matching volume.
        if pvc.spec.as_ref().is_some_and(|s| s.selector.is_some()) {
            self.recorder.warning(
                &ObjectRef::from_resource(pvc.as_ref()),
                "ProvisioningFailed",
                format!(
                    "failed to provision volume with StorageClass {:?}: claim Selector is not supported",
                    class.metadata().name
                ),
            );
            self.set_claim_phase(&pvc, "Pending").await?;
            return Ok(Action::Await);
        }
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
                Err(e) if e.is_already_exists() => pv.clone(),
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

    /// A claim naming its volume, as upstream's syncClaim ([`named_claim`]).
    async fn sync_bound_claim(&self, pvc: &Arc<PersistentVolumeClaim>) -> Result<Action> {
        let name = pvc
            .spec
            .as_ref()
            .map(|s| s.volume_name.clone())
            .unwrap_or_default();
        let mut pv = self.volumes.get("", &name);
        let mut step = named_claim(pvc, pv.as_deref());
        if matches!(step, NamedClaim::Lost(..)) {
            // The cache may lag behind a volume just made or bound: ask the store before
            // calling the claim lost.
            pv = self
                .client
                .get::<PersistentVolume>("", &name)
                .await?
                .map(Arc::new);
            step = named_claim(pvc, pv.as_deref());
        }
        let obj = ObjectRef::from_resource(pvc.as_ref());
        match (step, pv) {
            (NamedClaim::Bind, Some(pv)) => return self.bind(pvc, (*pv).clone()).await,
            (NamedClaim::MarkBound, Some(pv)) => self.mark_bound(pvc, &pv).await?,
            (NamedClaim::Pending(event), _) => {
                if let Some((reason, msg)) = event {
                    self.recorder.warning(&obj, reason, msg);
                }
                self.set_claim_phase(pvc, "Pending").await?;
            }
            (NamedClaim::Lost(reason, msg), _) => {
                if pvc.status.as_ref().is_none_or(|s| s.phase != "Lost") {
                    self.recorder.warning(&obj, reason, msg);
                }
                self.set_claim_phase(pvc, "Lost").await?;
            }
            (NamedClaim::Invalid(e), _) => return Err(anyhow::anyhow!(e)),
            (NamedClaim::Bind | NamedClaim::MarkBound, None) => {}
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
