//! Builders shared by the authorization modules' unit tests (RBAC, escalation, the Node
//! authorizer): policy rules, request attributes and users from string slices.
use coxswain_api::v1;

use crate::authn::UserInfo;
use crate::rbac::Attributes;

/// A resource rule: verbs on resources of API groups, limited to `names` when not empty.
pub fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> v1::PolicyRule {
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    v1::PolicyRule {
        verbs: s(verbs),
        api_groups: s(groups),
        resources: s(resources),
        resource_names: s(names),
        non_resource_urls: vec![],
    }
}

/// A resource request: `verb` on `group`/`res` (`sub`resource) in `ns`, by `name`.
pub fn attrs(verb: &str, group: &str, res: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        api_group: group.into(),
        resource: res.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
        ..Default::default()
    }
}

/// A user and its groups.
pub fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        uid: String::new(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    }
}
