//! The ServiceAccount admission plugin's token mount
//! (`plugin/pkg/admission/serviceaccount/admission.go`): unless the pod (first) or its
//! ServiceAccount says `automountServiceAccountToken: false`, every container that mounts
//! nothing at `/var/run/secrets/kubernetes.io/serviceaccount` mounts there, read-only, a
//! projected volume `kube-api-access-XXXXX` of a bound token (`token`, 3607 s, refreshed by the
//! node agent), the cluster CA (`ca.crt` from the ConfigMap `kube-root-ca.crt`) and the
//! namespace (`namespace`, from the downward API).
use coxswain_api::v1::{
    ConfigMapProjection, DownwardApiProjection, DownwardApiVolumeFile, KeyToPath,
    ObjectFieldSelector, PodSpec, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use rand::Rng;

/// Where the token, CA and namespace appear in a container.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The volume's name prefix.
pub const VOLUME_PREFIX: &str = "kube-api-access-";
/// The ConfigMap every namespace has with the cluster CA (the root-ca-cert-publisher's).
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Upstream's `WarnOnlyBoundTokenExpirationSeconds`.
pub const TOKEN_EXPIRATION: i64 = 3607;

/// `shouldAutomount`: the pod's preference, else its ServiceAccount's, else true.
pub fn should_automount(pod: Option<bool>, service_account: Option<bool>) -> bool {
    pod.or(service_account).unwrap_or(true)
}

/// The projected volume's source (`TokenVolumeSource`).
pub fn token_volume_source() -> ProjectedVolumeSource {
    ProjectedVolumeSource {
        default_mode: Some(0o644),
        sources: vec![
            VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    path: "token".into(),
                    expiration_seconds: Some(TOKEN_EXPIRATION as i32),
                    audience: String::new(),
                }),
                ..Default::default()
            },
            VolumeProjection {
                config_map: Some(ConfigMapProjection {
                    name: ROOT_CA_CONFIGMAP.into(),
                    items: vec![KeyToPath {
                        key: "ca.crt".into(),
                        path: "ca.crt".into(),
                        mode: None,
                    }],
                    optional: None,
                }),
                ..Default::default()
            },
            VolumeProjection {
                downward_api: Some(DownwardApiProjection {
                    items: vec![DownwardApiVolumeFile {
                        path: "namespace".into(),
                        field_ref: Some(ObjectFieldSelector {
                            api_version: "v1".into(),
                            field_path: "metadata.namespace".into(),
                        }),
                        mode: None,
                    }],
                }),
                ..Default::default()
            },
        ],
    }
}

/// `names.SimpleNameGenerator`'s five characters.
fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `mountServiceAccountToken`: the volume mount in every container lacking one at
/// [`MOUNT_PATH`], and the volume (reusing a `kube-api-access-*` one the pod has).
pub fn mount_service_account_token(spec: &mut PodSpec) {
    let existing = spec
        .volumes
        .iter()
        .find(|v| v.name.starts_with(VOLUME_PREFIX))
        .map(|v| v.name.clone());
    let name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{}", suffix()));
    let mut needed = false;
    for c in spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
    {
        if c.volume_mounts.iter().any(|m| m.mount_path == MOUNT_PATH) {
            continue;
        }
        c.volume_mounts.push(VolumeMount {
            name: name.clone(),
            mount_path: MOUNT_PATH.into(),
            read_only: true,
            ..Default::default()
        });
        needed = true;
    }
    if existing.is_none() && needed {
        spec.volumes.push(Volume {
            name,
            projected: Some(token_volume_source()),
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::Container;

    fn container(name: &str) -> Container {
        Container {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_container_mounts_one_projected_volume() {
        let mut spec = PodSpec {
            init_containers: vec![container("init")],
            containers: vec![container("a"), container("b")],
            ..Default::default()
        };
        // One container mounts its own volume there already.
        spec.containers[1].volume_mounts.push(VolumeMount {
            name: "mine".into(),
            mount_path: MOUNT_PATH.into(),
            ..Default::default()
        });
        mount_service_account_token(&mut spec);
        assert_eq!(spec.volumes.len(), 1);
        let v = &spec.volumes[0];
        assert!(v.name.starts_with(VOLUME_PREFIX) && v.name.len() == VOLUME_PREFIX.len() + 5);
        let p = v.projected.as_ref().unwrap();
        assert_eq!(p.default_mode, Some(0o644));
        assert_eq!(
            p.sources[0].service_account_token.as_ref().unwrap().path,
            "token"
        );
        assert_eq!(
            p.sources[1].config_map.as_ref().unwrap().name,
            "kube-root-ca.crt"
        );
        for c in [&spec.init_containers[0], &spec.containers[0]] {
            assert_eq!(c.volume_mounts.len(), 1);
            assert_eq!(c.volume_mounts[0].name, v.name);
            assert!(c.volume_mounts[0].read_only);
        }
        assert_eq!(spec.containers[1].volume_mounts.len(), 1);
        // Again (an update): nothing more.
        let before = spec.clone();
        mount_service_account_token(&mut spec);
        assert_eq!(spec, before);
    }

    #[test]
    fn the_pod_then_the_service_account_decide() {
        assert!(should_automount(None, None));
        assert!(!should_automount(None, Some(false)));
        assert!(should_automount(Some(true), Some(false)));
        assert!(!should_automount(Some(false), Some(true)));
    }
}
