//! RBAC's escalation prevention, as upstream's (`pkg/registry/rbac/validation` and the
//! `policybased` storages of roles and bindings): a user may only write a role whose every
//! permission it already holds (or with the `escalate` verb on roles), and may only bind a
//! role whose every permission it holds in the binding's scope (or with the `bind` verb on
//! that role).
use coxswain_api::v1;

use crate::authn::UserInfo;
use crate::rbac::{Attributes, Snapshot};

fn has(set: &[String], want: &str) -> bool {
    set.iter().any(|x| x == want)
}

/// Upstream's `resourceCoversAll` for one resource: `*`, an exact match, or `*/sub` for a
/// subresource.
fn resource_covers(owner: &[String], resource: &str) -> bool {
    if has(owner, "*") || has(owner, resource) {
        return true;
    }
    match resource.split_once('/') {
        Some((_, sub)) => has(owner, &format!("*/{sub}")),
        None => false,
    }
}

/// Upstream's `nonResourceURLCovers`.
fn url_covers(owner: &str, url: &str) -> bool {
    owner == url
        || owner
            .strip_suffix('*')
            .is_some_and(|prefix| url.starts_with(prefix))
}

/// One verb/group/resource/name (or verb/URL) of a servant rule, upstream's `BreakdownRule`.
#[derive(Debug)]
enum Atom<'a> {
    Resource {
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        name: Option<&'a str>,
    },
    Url {
        verb: &'a str,
        url: &'a str,
    },
}

fn breakdown(rule: &v1::PolicyRule) -> Vec<Atom<'_>> {
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                if rule.resource_names.is_empty() {
                    out.push(Atom::Resource {
                        verb,
                        group,
                        resource,
                        name: None,
                    });
                }
                for name in &rule.resource_names {
                    out.push(Atom::Resource {
                        verb,
                        group,
                        resource,
                        name: Some(name),
                    });
                }
            }
        }
        for url in &rule.non_resource_urls {
            out.push(Atom::Url { verb, url });
        }
    }
    out
}

/// Upstream's `ruleCovers` for one atom.
fn covers_atom(owner: &v1::PolicyRule, atom: &Atom<'_>) -> bool {
    let verb_ok = |v: &str| has(&owner.verbs, "*") || has(&owner.verbs, v);
    match *atom {
        Atom::Url { verb, url } => {
            verb_ok(verb) && owner.non_resource_urls.iter().any(|o| url_covers(o, url))
        }
        Atom::Resource {
            verb,
            group,
            resource,
            name,
        } => {
            verb_ok(verb)
                && (has(&owner.api_groups, "*") || has(&owner.api_groups, group))
                && resource_covers(&owner.resources, resource)
                && match name {
                    _ if owner.resource_names.is_empty() => true,
                    Some(n) => has(&owner.resource_names, n),
                    None => false,
                }
        }
    }
}

/// Upstream's `Covers`: the servant rules no owner rule covers (empty: all covered).
pub fn uncovered<'a>(
    owner: &[v1::PolicyRule],
    servant: &'a [v1::PolicyRule],
) -> Vec<&'a v1::PolicyRule> {
    servant
        .iter()
        .filter(|rule| {
            !breakdown(rule)
                .iter()
                .all(|atom| owner.iter().any(|o| covers_atom(o, atom)))
        })
        .collect()
}

fn rule_text(r: &v1::PolicyRule) -> String {
    let mut parts = Vec::new();
    if !r.api_groups.is_empty() {
        parts.push(format!("APIGroups:{:?}", r.api_groups));
    }
    if !r.resources.is_empty() {
        parts.push(format!("Resources:{:?}", r.resources));
    }
    if !r.resource_names.is_empty() {
        parts.push(format!("ResourceNames:{:?}", r.resource_names));
    }
    if !r.non_resource_urls.is_empty() {
        parts.push(format!("NonResourceURLs:{:?}", r.non_resource_urls));
    }
    parts.push(format!("Verbs:{:?}", r.verbs));
    format!("{{{}}}", parts.join(", "))
}

/// Upstream's `ConfirmNoEscalation`: Err with its message when `user`'s rules in `namespace`
/// do not cover `rules`.
pub fn confirm_no_escalation(
    snap: &Snapshot,
    user: &UserInfo,
    namespace: &str,
    rules: &[v1::PolicyRule],
) -> Result<(), String> {
    let owner = snap.rules_for(user, namespace);
    let missing = uncovered(&owner, rules);
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing.iter().map(|r| rule_text(r)).collect();
    Err(format!(
        "user {:?} (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        user.groups,
        list.join("\n")
    ))
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn verb_on(verb: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        api_group: RBAC_GROUP.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    }
}

/// A Role or ClusterRole write (`namespace` empty for a ClusterRole): allowed with `escalate`
/// on the kind (upstream's `RoleEscalationAuthorized`), else when the writer holds every rule.
pub fn check_role(
    snap: &Snapshot,
    user: &UserInfo,
    namespace: &str,
    name: &str,
    rules: &[v1::PolicyRule],
) -> Result<(), String> {
    let resource = if namespace.is_empty() {
        "clusterroles"
    } else {
        "roles"
    };
    if snap.allows(user, &verb_on("escalate", resource, namespace, name)) {
        return Ok(());
    }
    confirm_no_escalation(snap, user, namespace, rules)
}

/// A RoleBinding or ClusterRoleBinding write (`namespace` empty for a ClusterRoleBinding):
/// allowed with `bind` on the role it names (upstream's `BindingAuthorized`), else when the
/// writer holds every rule of that role in the binding's scope. A roleRef to a missing role is
/// upstream's NotFound, here an Err.
pub fn check_binding(
    snap: &Snapshot,
    user: &UserInfo,
    namespace: &str,
    role_ref: &v1::RoleRef,
) -> Result<(), String> {
    let resource = match role_ref.kind.as_str() {
        "ClusterRole" => "clusterroles",
        "Role" => "roles",
        other => return Err(format!("roleRef.kind: Unsupported value: {other:?}")),
    };
    let bind_ns = if resource == "roles" { namespace } else { "" };
    let mut bind = verb_on("bind", resource, bind_ns, &role_ref.name);
    // A ClusterRole bound by a RoleBinding: `bind` may be granted in the binding's namespace.
    if resource == "clusterroles" {
        bind.namespace = namespace.to_string();
    }
    if snap.allows(user, &bind) {
        return Ok(());
    }
    let Some(rules) = snap.role_rules(namespace, role_ref) else {
        return Err(format!(
            "{}.{RBAC_GROUP} {:?} not found",
            resource, role_ref.name
        ));
    };
    confirm_no_escalation(snap, user, namespace, &rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_builders::rule;

    #[test]
    fn covers_as_upstream() {
        let owner = [
            rule(&["get", "list"], &[""], &["pods", "*/status"], &[]),
            rule(&["get"], &[""], &["configmaps"], &["a", "b"]),
        ];
        let ok = [
            rule(&["get"], &[""], &["pods"], &[]),
            rule(&["list"], &[""], &["deployments/status"], &[]),
            rule(&["get"], &[""], &["configmaps"], &["a"]),
        ];
        assert!(uncovered(&owner, &ok).is_empty());
        for bad in [
            rule(&["delete"], &[""], &["pods"], &[]),
            rule(&["get"], &["apps"], &["pods"], &[]),
            rule(&["get"], &[""], &["pods/log"], &[]),
            // No names is every name: not covered by a rule limited to names.
            rule(&["get"], &[""], &["configmaps"], &[]),
            rule(&["get"], &[""], &["configmaps"], &["c"]),
        ] {
            assert_eq!(
                uncovered(&owner, std::slice::from_ref(&bad)).len(),
                1,
                "{bad:?}"
            );
        }
        let star = [rule(&["*"], &["*"], &["*"], &[])];
        assert!(uncovered(&star, &ok).is_empty());
        let mut url = rule(&["get"], &[], &[], &[]);
        url.non_resource_urls = vec!["/apis/*".into()];
        let mut want = rule(&["get"], &[], &[], &[]);
        want.non_resource_urls = vec!["/apis/apps".into()];
        assert!(uncovered(&[url.clone()], &[want.clone()]).is_empty());
        want.non_resource_urls = vec!["/version".into()];
        assert_eq!(uncovered(&[url], &[want]).len(), 1);
    }
}
