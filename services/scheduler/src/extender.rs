//! Calls to out-of-process extenders (`coxswain.v1.SchedulerExtender`), each bounded by the
//! extender's timeout. Semantics follow kube-scheduler's HTTP extenders:
//! - Filter runs after the in-tree filters, over the feasible nodes; the nodes it fails are
//!   reported with its reasons. A failing call fails the cycle unless the extender is
//!   `ignorable`, in which case it is skipped.
//! - Prioritize scores 0..=10 per node; the score is scaled to 0..=100 and multiplied by the
//!   extender's weight. A failing Prioritize is ignored (as upstream).
//! - Bind replaces the store's Bind for the pods the binding extender is interested in.
use std::collections::BTreeMap;

use coxswain_api::v1;
use coxswain_api::v1::scheduler_extender_client::SchedulerExtenderClient;
use tonic::transport::Channel;

use crate::framework::{ExtenderConfig, MAX_NODE_SCORE};
use crate::snapshot::NodeInfo;

/// kube-scheduler's `MaxExtenderPriority`.
pub const MAX_EXTENDER_PRIORITY: i64 = 10;

/// A connected (lazily) extender.
#[derive(Clone)]
pub struct Extender {
    pub config: ExtenderConfig,
    client: SchedulerExtenderClient<Channel>,
}

/// What Filter said.
#[derive(Debug, Clone, Default)]
pub struct FilterResult {
    pub feasible: Vec<String>,
    pub failed: BTreeMap<String, String>,
    pub unresolvable: BTreeMap<String, String>,
}

impl Extender {
    pub fn new(config: ExtenderConfig) -> Result<Extender, String> {
        let ch = Channel::from_shared(config.address.clone())
            .map_err(|e| format!("extender address {:?}: {e}", config.address))?
            .connect_timeout(config.timeout)
            .connect_lazy();
        Ok(Extender {
            config,
            client: SchedulerExtenderClient::new(ch),
        })
    }

    /// `extender <address>`, as it appears in scores and messages.
    pub fn name(&self) -> String {
        format!("extender {}", self.config.address)
    }

    fn nodes(&self, nodes: &[&NodeInfo]) -> (Vec<String>, Vec<v1::Node>) {
        let names = nodes.iter().map(|n| n.name().to_string()).collect();
        let full = if self.config.node_cache_capable {
            vec![]
        } else {
            nodes.iter().map(|n| (*n.node).clone()).collect()
        };
        (names, full)
    }

    async fn timed<T>(
        &self,
        verb: &str,
        f: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(self.config.timeout, f).await {
            Err(_) => Err(format!(
                "{} {verb}: no answer within {:?}",
                self.name(),
                self.config.timeout
            )),
            Ok(Err(s)) => Err(format!(
                "{} {verb}: {:?}: {}",
                self.name(),
                s.code(),
                s.message()
            )),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }

    pub async fn filter(&self, pod: &v1::Pod, nodes: &[&NodeInfo]) -> Result<FilterResult, String> {
        let (node_names, full) = self.nodes(nodes);
        let mut c = self.client.clone();
        let r = self
            .timed(
                "Filter",
                c.filter(v1::ExtenderFilterRequest {
                    pod: Some(pod.clone()),
                    node_names,
                    nodes: full,
                }),
            )
            .await?;
        if !r.error.is_empty() {
            return Err(format!("{} Filter: {}", self.name(), r.error));
        }
        Ok(FilterResult {
            feasible: r.node_names,
            failed: r.failed_nodes.into_iter().collect(),
            unresolvable: r.failed_and_unresolvable_nodes.into_iter().collect(),
        })
    }

    /// Raw 0..=10 scores by node name.
    pub async fn prioritize(
        &self,
        pod: &v1::Pod,
        nodes: &[&NodeInfo],
    ) -> Result<BTreeMap<String, i64>, String> {
        let (node_names, full) = self.nodes(nodes);
        let mut c = self.client.clone();
        let r = self
            .timed(
                "Prioritize",
                c.prioritize(v1::ExtenderPrioritizeRequest {
                    pod: Some(pod.clone()),
                    node_names,
                    nodes: full,
                }),
            )
            .await?;
        Ok(r.priorities
            .into_iter()
            .map(|h| (h.host, h.score.clamp(0, MAX_EXTENDER_PRIORITY)))
            .collect())
    }

    /// The weighted contribution of a raw score.
    pub fn weigh(&self, raw: i64) -> (i64, i64) {
        let normalized = raw * (MAX_NODE_SCORE / MAX_EXTENDER_PRIORITY);
        (normalized, normalized * self.config.weight)
    }

    pub async fn bind(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
    ) -> Result<(), String> {
        let mut c = self.client.clone();
        let r = self
            .timed(
                "Bind",
                c.bind(v1::ExtenderBindRequest {
                    pod_name: name.into(),
                    pod_namespace: namespace.into(),
                    pod_uid: uid.into(),
                    node: node.into(),
                }),
            )
            .await?;
        if r.error.is_empty() {
            Ok(())
        } else {
            Err(format!("{} Bind: {}", self.name(), r.error))
        }
    }
}
