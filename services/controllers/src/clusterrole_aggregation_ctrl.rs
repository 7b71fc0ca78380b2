//! The clusterrole-aggregation controller (upstream's
//! `pkg/controller/clusterroleaggregation`): a ClusterRole with an `aggregationRule` has as its
//! rules those of every other ClusterRole its selectors match, in name order, each rule once.
//! `admin`, `edit` and `view` are built this way from `system:aggregate-to-*` (and from any
//! ClusterRole a user labels `rbac.authorization.k8s.io/aggregate-to-view: "true"`).
use std::sync::Arc;

use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{ClusterRole, PolicyRule};
use coxswain_api::Resource;
use coxswain_client::{Cache, Client, Event, Informer, RateLimit, WorkQueue};

use crate::runtime::{Action, Result};

/// The rules `role` should have given every ClusterRole (None: it aggregates nothing).
pub fn aggregated_rules(role: &ClusterRole, all: &[Arc<ClusterRole>]) -> Option<Vec<PolicyRule>> {
    let rule = role.aggregation_rule.as_ref()?;
    let mut sorted: Vec<&Arc<ClusterRole>> = all.iter().collect();
    sorted.sort_by(|a, b| a.metadata().name.cmp(&b.metadata().name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for sel in &rule.cluster_role_selectors {
        let Ok(sel) = LabelSelector::from_proto(Some(sel)) else {
            continue;
        };
        for other in &sorted {
            if other.metadata().name == role.metadata().name
                || !sel.matches(&other.metadata().labels)
            {
                continue;
            }
            for r in &other.rules {
                if !rules.contains(r) {
                    rules.push(r.clone());
                }
            }
        }
    }
    Some(rules)
}

pub struct AggregationCtx {
    client: Client,
    roles: Cache<ClusterRole>,
    queue: WorkQueue<String>,
}

/// Start the informer and the workers; keys are aggregated ClusterRoles' names.
pub fn start(client: Client, rl: RateLimit, workers: usize) -> Arc<AggregationCtx> {
    let queue = WorkQueue::named(rl, "clusterrole_aggregator");
    let cell: Arc<std::sync::OnceLock<Cache<ClusterRole>>> = Default::default();
    let roles = {
        let q = queue.clone();
        let cell = cell.clone();
        Informer::<ClusterRole>::new(client.clone())
            .on_event(move |_: &Event<ClusterRole>| {
                // Any change may change what any aggregated role selects (upstream enqueues
                // them all).
                if let Some(cache) = cell.get() {
                    for r in cache.list() {
                        if r.aggregation_rule.is_some() {
                            q.add(r.metadata().name.clone());
                        }
                    }
                }
            })
            .start()
    };
    let _ = cell.set(roles.clone());
    let ctx = Arc::new(AggregationCtx {
        client,
        roles,
        queue,
    });
    let c = ctx.clone();
    tokio::spawn(async move {
        c.roles.wait_synced().await;
        for r in c.roles.list() {
            if r.aggregation_rule.is_some() {
                c.queue.add(r.metadata().name.clone());
            }
        }
        let c2 = c.clone();
        crate::runtime::run(
            "clusterrole_aggregator",
            c.queue.clone(),
            workers,
            move |k| {
                let c3 = c2.clone();
                async move { c3.sync(k).await }
            },
        )
        .await;
    });
    ctx
}

impl AggregationCtx {
    pub fn stop(&self) {
        self.roles.stop();
        self.queue.shutdown();
    }

    async fn sync(&self, name: String) -> Result<Action> {
        let Some(role) = self.roles.get("", &name) else {
            return Ok(Action::Await);
        };
        let Some(rules) = aggregated_rules(&role, &self.roles.list()) else {
            return Ok(Action::Await);
        };
        if rules == role.rules {
            return Ok(Action::Await);
        }
        let mut updated = (*role).clone();
        updated.rules = rules;
        self.client.update(&updated).await?;
        Ok(Action::Await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{AggregationRule, LabelSelector as Sel, ObjectMeta};

    fn role(name: &str, labels: &[(&str, &str)], verbs: &[&str]) -> Arc<ClusterRole> {
        Arc::new(ClusterRole {
            metadata: Some(ObjectMeta {
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            rules: verbs
                .iter()
                .map(|v| PolicyRule {
                    verbs: vec![v.to_string()],
                    api_groups: vec![String::new()],
                    resources: vec!["pods".into()],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn an_aggregated_role_has_the_selected_roles_rules_in_name_order_once() {
        let mut view = (*role("view", &[], &[])).clone();
        view.aggregation_rule = Some(AggregationRule {
            cluster_role_selectors: vec![Sel {
                match_labels: [("agg".to_string(), "true".to_string())].into(),
                ..Default::default()
            }],
        });
        let view = Arc::new(view);
        let all = vec![
            view.clone(),
            role("z-extra", &[("agg", "true")], &["list", "get"]),
            role("a-base", &[("agg", "true")], &["get"]),
            role("other", &[("agg", "false")], &["delete"]),
        ];
        let rules = aggregated_rules(&view, &all).expect("aggregates");
        let verbs: Vec<_> = rules.iter().map(|r| r.verbs[0].as_str()).collect();
        assert_eq!(verbs, ["get", "list"]);
        assert!(aggregated_rules(&all[1], &all).is_none());
    }
}
