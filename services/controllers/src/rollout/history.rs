//! The pod-template hash that names a Deployment's ReplicaSets, and the revision numbers its
//! ReplicaSets carry (Kubernetes' `deployment/util`).
use coxswain_api::v1::{Pod, PodTemplateSpec, ReplicaSet};
use coxswain_api::Object;

use super::REVISION_ANNOTATION;

/// Kubernetes' safe-encode alphabet (no vowels, no confusable characters).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable hash of a pod template, as the `pod-template-hash` label and the ReplicaSet name
/// suffix: FNV-1a (32 bit) over the protobuf encoding of the template (map fields are encoded in
/// key order, so equal templates hash equally), plus the collision count as 8 little-endian bytes
/// when set; the decimal digits are then rendered with Kubernetes' safe-encode alphabet (at most
/// 10 characters). Kubernetes hashes a different rendering, so values differ from upstream.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let pod = Pod {
        metadata: template.metadata.clone(),
        spec: template.spec.clone(),
        ..Default::default()
    };
    let mut bytes = Object::Pod(pod).encode_to_vec();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// The revision recorded on a ReplicaSet (its [`REVISION_ANNOTATION`]), if any.
pub fn revision(rs: &ReplicaSet) -> Option<i64> {
    rs.metadata
        .as_ref()?
        .annotations
        .get(REVISION_ANNOTATION)?
        .parse()
        .ok()
}

/// The highest revision among `rss` (0 if none).
pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().filter_map(revision).max().unwrap_or(0)
}

/// The revision the new ReplicaSet gets: one more than the highest of the OLD ReplicaSets (a
/// rollback to an old ReplicaSet thus makes it the newest revision again).
pub fn next_revision(old: &[ReplicaSet]) -> i64 {
    max_revision(old) + 1
}

/// The second-highest revision (the target of `rollout undo` without `--to-revision`), 0 if none.
pub fn previous_revision(rss: &[ReplicaSet]) -> i64 {
    let mut revs: Vec<i64> = rss.iter().filter_map(revision).collect();
    revs.sort_unstable();
    revs.dedup();
    revs.iter().rev().nth(1).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::tests::{annotated, rs};
    use coxswain_api::v1::{Container, ObjectMeta, PodSpec};
    use std::collections::BTreeMap;

    #[test]
    fn hash_is_stable_and_safe() {
        let t = |image: &str| PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: BTreeMap::from([("app".into(), "nginx".into())]),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "nginx".into(),
                    image: image.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let a = pod_template_hash(&t("nginx:1.17.9"), None);
        assert_eq!(a, pod_template_hash(&t("nginx:1.17.9"), None));
        assert_ne!(a, pod_template_hash(&t("nginx:1.17.8"), None));
        assert_ne!(a, pod_template_hash(&t("nginx:1.17.9"), Some(1)));
        assert!(!a.is_empty() && a.len() <= 10);
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{a}");
    }

    #[test]
    fn revisions() {
        let rss = vec![
            annotated(rs("a", 0, 0, 0), REVISION_ANNOTATION, "1"),
            annotated(rs("b", 1, 0, 0), REVISION_ANNOTATION, "3"),
            annotated(rs("c", 2, 0, 0), REVISION_ANNOTATION, "x"),
            rs("d", 3, 0, 0),
        ];
        assert_eq!(revision(&rss[1]), Some(3));
        assert_eq!(revision(&rss[2]), None);
        assert_eq!(max_revision(&rss), 3);
        assert_eq!(next_revision(&rss), 4);
        assert_eq!(next_revision(&[]), 1);
        assert_eq!(previous_revision(&rss), 1);
    }
}
