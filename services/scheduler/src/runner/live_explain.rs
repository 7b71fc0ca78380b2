//! Explain against the live cache, with the profile's extenders: the framework's
//! [`crate::explain::explain`], then each interested extender's Filter and Prioritize on the
//! nodes still feasible, and the ranking again. Never binds.
use std::collections::BTreeMap;
use std::sync::Arc;

use coxswain_api::v1;
use tokio::sync::oneshot;

use super::{scheduler_name, Loop};
use crate::explain::{explain, Explanation, Verdict};
use crate::extender::Extender;
use crate::framework::PluginScore;
use crate::queue::pod_key;
use crate::snapshot::{pod_name, pod_namespace, pod_spec, Snapshot};

pub(super) struct PendingExplain {
    pub(super) pod: Arc<v1::Pod>,
    pub(super) reply: oneshot::Sender<Result<Explanation, String>>,
}

impl Loop {
    pub(super) async fn explain(&mut self, req: PendingExplain) {
        let r = self.explain_inner(&req.pod).await;
        let _ = req.reply.send(r);
    }

    async fn explain_inner(&mut self, pod: &v1::Pod) -> Result<Explanation, String> {
        let name = scheduler_name(pod);
        let Some(&idx) = self.by_name.get(name) else {
            return Err(format!(
                "this scheduler has no profile {name:?} (it serves {})",
                self.profiles
                    .iter()
                    .map(|p| p.scheduler_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let profile = &self.profiles[idx];
        // A pod already placed is explained as if it were not there yet.
        let owned: Snapshot;
        let key = pod_key(pod);
        let snapshot = if !pod_spec(pod).node_name.is_empty() || self.cache.is_assumed(&key) {
            let mut s = self.cache.snapshot().clone();
            for i in 0..s.nodes.len() {
                s.remove_pod_at(i, pod_namespace(pod), pod_name(pod));
            }
            owned = s;
            &owned
        } else {
            self.cache.snapshot()
        };
        let mut unbound = pod.clone();
        if let Some(s) = unbound.spec.as_mut() {
            s.node_name.clear();
        }
        let mut e = explain(profile, snapshot, &unbound);
        let exts: Vec<&Extender> = self.extenders[idx]
            .iter()
            .filter(|x| x.config.is_interested(pod))
            .collect();
        if exts.is_empty() {
            return Ok(e);
        }
        let feasible_infos = |e: &Explanation| {
            e.nodes
                .iter()
                .filter(|n| n.feasible)
                .filter_map(|n| snapshot.get(&n.node))
                .collect::<Vec<_>>()
        };
        for ext in exts.iter().filter(|x| x.config.filter) {
            let infos = feasible_infos(&e);
            if infos.is_empty() {
                break;
            }
            let verdicts: BTreeMap<String, Verdict> = match ext.filter(&unbound, &infos).await {
                Ok(r) => infos
                    .iter()
                    .map(|ni| {
                        let n = ni.name().to_string();
                        let v = if let Some(reason) = r.failed.get(&n) {
                            ("Unschedulable", reason.clone())
                        } else if let Some(reason) = r.unresolvable.get(&n) {
                            ("UnschedulableAndUnresolvable", reason.clone())
                        } else if r.feasible.contains(&n) {
                            ("Success", String::new())
                        } else {
                            ("Unschedulable", "not returned by the extender".to_string())
                        };
                        (
                            n,
                            Verdict {
                                plugin: ext.name(),
                                code: v.0.into(),
                                reason: v.1,
                            },
                        )
                    })
                    .collect(),
                Err(msg) => infos
                    .iter()
                    .map(|ni| {
                        (
                            ni.name().to_string(),
                            Verdict {
                                plugin: ext.name(),
                                code: if ext.config.ignorable {
                                    "Skip"
                                } else {
                                    "Error"
                                }
                                .into(),
                                reason: if ext.config.ignorable {
                                    format!("ignorable, skipped: {msg}")
                                } else {
                                    msg.clone()
                                },
                            },
                        )
                    })
                    .collect(),
            };
            for n in e.nodes.iter_mut() {
                if let Some(v) = verdicts.get(&n.node) {
                    if !matches!(v.code.as_str(), "Success" | "Skip") {
                        n.feasible = false;
                        n.scores.clear();
                        n.total = 0;
                        n.rank = 0;
                    }
                    n.filters.push(v.clone());
                }
            }
        }
        let infos = feasible_infos(&e);
        for ext in exts.iter().filter(|x| x.config.prioritize) {
            if infos.is_empty() {
                break;
            }
            if let Ok(m) = ext.prioritize(&unbound, &infos).await {
                for n in e.nodes.iter_mut().filter(|n| n.feasible) {
                    let raw = m.get(&n.node).copied().unwrap_or(0);
                    let (normalized, weighted) = ext.weigh(raw);
                    n.total += weighted;
                    n.scores.push(PluginScore {
                        plugin: ext.name().into(),
                        raw,
                        normalized,
                        weight: ext.config.weight,
                        weighted,
                    });
                }
            }
        }
        // Re-rank (stable: ties keep node order in the ranking; the pick among them is random).
        let mut order: Vec<usize> = (0..e.nodes.len())
            .filter(|&i| e.nodes[i].feasible)
            .collect();
        order.sort_by(|a, b| e.nodes[*b].total.cmp(&e.nodes[*a].total));
        e.ranking.clear();
        for n in e.nodes.iter_mut() {
            n.rank = 0;
        }
        for (r, &i) in order.iter().enumerate() {
            e.nodes[i].rank = r + 1;
            e.ranking.push(e.nodes[i].node.clone());
        }
        e.chosen = crate::explain::pick_among_top(&order, |i| e.nodes[i].total)
            .map(|i| e.nodes[i].node.clone());
        if e.chosen.is_none() && e.message.is_empty() {
            e.message = format!(
                "0/{} nodes are available: no node passed the extenders' filters.",
                snapshot.len()
            );
        }
        Ok(e)
    }
}
