//! What one rule allows (upstream's `RuleAllows`), and the Forbidden message when no rule does.

use coxswain_api::v1;

use super::Attributes;
use crate::authn::UserInfo;

pub const MASTERS: &str = "system:masters";

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// Upstream's `NonResourceURLMatches`: an exact path, or a prefix ending in `*`.
fn url_matches(rule: &str, path: &str) -> bool {
    rule == "*"
        || rule == path
        || rule
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// Upstream's `RuleAllows`, for resource and non-resource requests.
pub fn rule_allows(rule: &v1::PolicyRule, a: &Attributes) -> bool {
    rule_allows_traced(rule, a, &mut false)
}

/// [`rule_allows`], setting `by_name` when the answer turned on the rule's `resourceNames`.
pub(super) fn rule_allows_traced(
    rule: &v1::PolicyRule,
    a: &Attributes,
    by_name: &mut bool,
) -> bool {
    if !a.path.is_empty() {
        return has(&rule.verbs, &a.verb)
            && rule
                .non_resource_urls
                .iter()
                .any(|u| url_matches(u, &a.path));
    }
    if !has(&rule.verbs, &a.verb) || !has(&rule.api_groups, &a.api_group) {
        return false;
    }
    let combined = match a.subresource.is_empty() {
        true => a.resource.clone(),
        false => format!("{}/{}", a.resource, a.subresource),
    };
    let resource = rule.resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource.as_str()))
    });
    if !resource {
        return false;
    }
    if rule.resource_names.is_empty() {
        return true;
    }
    *by_name = true;
    rule.resource_names.contains(&a.name)
}

/// Upstream's Forbidden message: `pods is forbidden: User "x" cannot list resource "pods" in
/// API group "" in the namespace "default"` (`pods "web" is forbidden: …` with a name,
/// `… at the cluster scope` without a namespace; the resource is `deployments.apps` outside
/// the core group).
pub fn forbidden_message(user: &UserInfo, a: &Attributes) -> String {
    if !a.path.is_empty() {
        return format!(
            "forbidden: User {:?} cannot {} path {:?}",
            user.name, a.verb, a.path
        );
    }
    let gr = match a.api_group.is_empty() {
        true => a.resource.clone(),
        false => format!("{}.{}", a.resource, a.api_group),
    };
    let head = match a.name.is_empty() {
        true => format!("{gr} is forbidden"),
        false => format!("{gr} {:?} is forbidden", a.name),
    };
    let resource = match a.subresource.is_empty() {
        true => a.resource.clone(),
        false => format!("{}/{}", a.resource, a.subresource),
    };
    let scope = match a.namespace.is_empty() {
        true => "at the cluster scope".to_string(),
        false => format!("in the namespace {:?}", a.namespace),
    };
    format!(
        "{head}: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        user.name, a.verb, a.api_group
    )
}
