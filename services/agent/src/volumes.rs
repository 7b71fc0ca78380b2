//! Persistent volumes on the node (the kubelet's volume manager, for the volumes coxswain has):
//! before a pod's containers start, each persistentVolumeClaim volume is resolved to its bound
//! PersistentVolume and mounted as that volume's directory (hostPath or local path). A claim
//! not bound yet is waited for (the PV controller binds it once the pod is scheduled, for a
//! WaitForFirstConsumer class), at most `wait`; past that the runtime's per-claim directory is
//! used, as before binding existed.
use std::time::Duration;

use coxswain_api::v1::{HostPathVolumeSource, PersistentVolume, PersistentVolumeClaim};
use coxswain_client::Client;

use crate::runtime::PodInfo;

/// How often an unbound claim is looked at again.
const POLL: Duration = Duration::from_millis(100);

/// The directory of a bound claim's volume, if the claim is bound.
async fn bound_path(client: &Client, namespace: &str, claim: &str) -> Option<String> {
    let pvc: PersistentVolumeClaim = client.get(namespace, claim).await.ok()??;
    let volume = pvc.spec.as_ref().map(|s| s.volume_name.clone())?;
    if volume.is_empty() || pvc.status.as_ref().map(|s| s.phase.as_str()) != Some("Bound") {
        return None;
    }
    let pv: PersistentVolume = client.get("", &volume).await.ok()??;
    let spec = pv.spec?;
    spec.host_path
        .map(|h| h.path)
        .or(spec.local.map(|l| l.path))
        .filter(|p| !p.is_empty())
}

/// Replace every claim volume of `info` by its PV's directory.
pub async fn mount_claims(client: &Client, info: &mut PodInfo, wait: Duration) {
    for v in info.volumes.iter_mut() {
        let Some(claim) = v.persistent_volume_claim.as_ref() else {
            continue;
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(path) = bound_path(client, &info.namespace, &claim.claim_name).await {
                if let Err(e) = std::fs::create_dir_all(&path) {
                    tracing::warn!(path, error = %e, "creating the volume's directory");
                }
                v.persistent_volume_claim = None;
                v.host_path = Some(HostPathVolumeSource {
                    path,
                    r#type: Some("DirectoryOrCreate".into()),
                });
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(pod = %info.name, claim = %claim.claim_name, "claim not bound; using a node-local directory");
                break;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
