//! upstream's FindPodVolumes (the decisions for one node, or why the node does not fit) and
//! the PreBind that writes them and waits until every claim is bound.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1;

use super::claims::{annotation, class_name, fully_bound, pod_claims, PodClaims};
use super::lister::{meta_of, VolumeLister, Volumes};
use super::matching::{allowed_topologies_match, matching_volume, volume_fits_node};
use super::{
    ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE, ERR_BIND_CONFLICT, ERR_NODE_CONFLICT,
    ERR_PV_NOT_EXIST, ERR_UNBOUND_IMMEDIATE, NO_PROVISIONER,
};

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
        // checkVolumeProvisions: the class must be able to provision, and provision where
        // its allowedTopologies admit the node.
        for pvc in &d.provisions {
            let can = l.class(class_name(pvc)).is_some_and(|c| {
                !c.provisioner.is_empty()
                    && c.provisioner != NO_PROVISIONER
                    && allowed_topologies_match(&c, node)
            });
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
