//! Upstream's bootstrap RBAC policy (`bootstrap/policy.yaml`, transcribed from
//! `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`), reconciled at start as kube-apiserver's
//! `rbac/bootstrap-roles` post-start hook does: a missing ClusterRole or ClusterRoleBinding is
//! created; an existing one annotated `rbac.authorization.kubernetes.io/autoupdate: "true"`
//! gets the rules and subjects it lacks added (never removed); one annotated `"false"` is left
//! as its owner changed it.
use coxswain_api::{v1, Kind, Object};

use crate::escalation::uncovered;
use crate::Store;

pub const POLICY: &str = include_str!("bootstrap/policy.yaml");
const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// The bootstrap ClusterRoles and ClusterRoleBindings.
pub fn policy() -> Vec<Object> {
    coxswain_api::manifest::parse_manifests(POLICY)
        .expect("the bootstrap policy parses")
        .into_iter()
        .map(|p| p.object)
        .collect()
}

fn autoupdate(meta: &Option<v1::ObjectMeta>) -> bool {
    meta.as_ref()
        .and_then(|m| m.annotations.get(AUTOUPDATE))
        .is_none_or(|v| v != "false")
}

/// What reconciling one object would change (None: nothing).
fn reconciled(existing: Object, want: &Object) -> Option<Object> {
    match (existing, want) {
        (Object::ClusterRole(mut have), Object::ClusterRole(want)) => {
            if !autoupdate(&have.metadata) {
                return None;
            }
            let missing: Vec<_> = uncovered(&have.rules, &want.rules)
                .into_iter()
                .cloned()
                .collect();
            if missing.is_empty() {
                return None;
            }
            have.rules.extend(missing);
            Some(Object::ClusterRole(have))
        }
        (Object::ClusterRoleBinding(mut have), Object::ClusterRoleBinding(want)) => {
            if !autoupdate(&have.metadata) {
                return None;
            }
            let missing: Vec<_> = want
                .subjects
                .iter()
                .filter(|s| !have.subjects.contains(s))
                .cloned()
                .collect();
            if missing.is_empty() {
                return None;
            }
            have.subjects.extend(missing);
            Some(Object::ClusterRoleBinding(have))
        }
        _ => None,
    }
}

/// Create or complete every bootstrap object; returns how many were written.
pub async fn reconcile(store: &Store) -> crate::error::Result<usize> {
    let mut written = 0;
    for want in policy() {
        let kind = want.kind();
        debug_assert!(matches!(kind, Kind::ClusterRole | Kind::ClusterRoleBinding));
        match store.get_stored(kind, "", want.name()) {
            Err(_) => {
                store.create(want, false).await?;
                written += 1;
            }
            Ok(s) => {
                if let Some(obj) = reconciled(s.decode(), &want) {
                    store.update(obj).await?;
                    written += 1;
                }
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_holds_upstreams_roles_and_bindings() {
        let p = policy();
        let names: Vec<_> = p.iter().map(|o| (o.kind(), o.name().to_string())).collect();
        for want in [
            "cluster-admin",
            "system:discovery",
            "system:basic-user",
            "system:public-info-viewer",
            "system:node",
            "system:node-proxier",
            "system:kube-scheduler",
            "system:volume-scheduler",
            "system:kube-controller-manager",
            "system:controller:deployment-controller",
            "system:controller:horizontal-pod-autoscaler",
            "admin",
            "edit",
            "view",
            "system:aggregate-to-view",
            "system:controller:clusterrole-aggregation-controller",
        ] {
            assert!(
                names.contains(&(Kind::ClusterRole, want.to_string())),
                "{want}"
            );
        }
        let Some(Object::ClusterRoleBinding(b)) = p
            .iter()
            .find(|o| o.kind() == Kind::ClusterRoleBinding && o.name() == "cluster-admin")
        else {
            panic!("no cluster-admin binding")
        };
        assert_eq!(b.subjects[0].name, "system:masters");
        assert_eq!(
            b.role_ref.as_ref().map(|r| r.name.as_str()),
            Some("cluster-admin")
        );
    }

    #[test]
    fn reconcile_adds_what_is_missing_and_respects_autoupdate_false() {
        let p = policy();
        let want = p
            .iter()
            .find(|o| o.name() == "system:kube-scheduler" && o.kind() == Kind::ClusterRole)
            .unwrap()
            .clone();
        let Object::ClusterRole(mut cut) = want.clone() else {
            panic!()
        };
        let full = cut.rules.len();
        cut.rules.truncate(2);
        let Some(Object::ClusterRole(fixed)) = reconciled(Object::ClusterRole(cut.clone()), &want)
        else {
            panic!("nothing reconciled")
        };
        assert!(fixed.rules.len() >= full);
        assert!(reconciled(Object::ClusterRole(fixed), &want).is_none());
        if let Some(m) = cut.metadata.as_mut() {
            m.annotations.insert(AUTOUPDATE.into(), "false".into());
        }
        assert!(reconciled(Object::ClusterRole(cut), &want).is_none());
    }
}
