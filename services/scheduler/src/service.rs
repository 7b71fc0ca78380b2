//! The `coxswain.v1.Scheduler` gRPC service: Explain (a dry run against the running
//! scheduler's live cache; never binds) and ListProfiles.
use std::sync::Arc;

use coxswain_api::kinds::Object;
use coxswain_api::v1;
use coxswain_api::v1::scheduler_server::{Scheduler, SchedulerServer};
use coxswain_client::authz::{check, Attributes};
use tonic::{Request, Response, Status};

use crate::explain::Explanation;
use crate::framework::Profile;
use crate::runner::SchedulerHandle;

/// Serves a running scheduler.
#[derive(Clone)]
pub struct SchedulerService {
    handle: SchedulerHandle,
}

impl SchedulerService {
    pub fn new(handle: SchedulerHandle) -> SchedulerService {
        SchedulerService { handle }
    }

    pub fn into_server(self) -> SchedulerServer<SchedulerService> {
        SchedulerServer::new(self)
    }
}

fn pod_from_manifest(text: &str, namespace: &str) -> Result<v1::Pod, Status> {
    let parsed = coxswain_api::manifest::parse_manifests(text)
        .map_err(|e| Status::invalid_argument(format!("manifest: {e}")))?;
    let mut objs: Vec<Object> = parsed.into_iter().map(|p| p.object).collect();
    if objs.len() != 1 {
        return Err(Status::invalid_argument(format!(
            "manifest: expected exactly one Pod, got {} objects",
            objs.len()
        )));
    }
    let mut obj = objs.remove(0);
    coxswain_api::defaults::apply_defaults(&mut obj);
    match obj {
        Object::Pod(mut p) => {
            let m = p.metadata.get_or_insert_with(Default::default);
            if m.namespace.is_empty() {
                m.namespace = if namespace.is_empty() {
                    "default".into()
                } else {
                    namespace.into()
                };
            }
            if m.name.is_empty() {
                m.name = if m.generate_name.is_empty() {
                    "explained-pod".into()
                } else {
                    format!("{}explained", m.generate_name)
                };
            }
            Ok(p)
        }
        other => Err(Status::invalid_argument(format!(
            "manifest: kind: expected Pod, got {}",
            other.kind().as_str()
        ))),
    }
}

/// The wire form of an explanation.
pub fn to_proto(e: &Explanation, bound_node: &str) -> v1::ExplainResponse {
    v1::ExplainResponse {
        pod: e.pod.clone(),
        scheduler_name: e.scheduler_name.clone(),
        nodes: e
            .nodes
            .iter()
            .map(|n| v1::NodeExplanation {
                node: n.node.clone(),
                feasible: n.feasible,
                filters: n
                    .filters
                    .iter()
                    .map(|v| v1::FilterVerdict {
                        plugin: v.plugin.clone(),
                        code: v.code.clone(),
                        reason: v.reason.clone(),
                    })
                    .collect(),
                scores: n
                    .scores
                    .iter()
                    .map(|s| v1::ScoreDetail {
                        plugin: s.plugin.to_string(),
                        raw: s.raw,
                        normalized: s.normalized,
                        weight: s.weight,
                        weighted: s.weighted,
                    })
                    .collect(),
                total_score: n.total,
                rank: n.rank as i32,
            })
            .collect(),
        chosen_node: e.chosen.clone().unwrap_or_default(),
        ranking: e.ranking.clone(),
        message: e.message.clone(),
        bound_node: bound_node.to_string(),
    }
}

/// The wire form of a profile.
pub fn profile_info(p: &Profile) -> v1::ProfileInfo {
    let refs = |it: Vec<(String, i64)>| {
        it.into_iter()
            .map(|(name, weight)| v1::PluginRef { name, weight })
            .collect()
    };
    let point = |name: &str, plugins| v1::ExtensionPointPlugins {
        extension_point: name.into(),
        plugins,
    };
    v1::ProfileInfo {
        scheduler_name: p.scheduler_name.clone(),
        extension_points: vec![
            point(
                "preFilter",
                refs(
                    p.filters
                        .iter()
                        .filter(|x| x.as_pre_filter().is_some())
                        .map(|x| (x.name().to_string(), 0))
                        .collect(),
                ),
            ),
            point(
                "filter",
                refs(
                    p.filters
                        .iter()
                        .filter(|x| x.as_filter().is_some())
                        .map(|x| (x.name().to_string(), 0))
                        .collect(),
                ),
            ),
            point(
                "postFilter",
                refs(
                    p.post_filters
                        .iter()
                        .map(|x| (x.name().to_string(), 0))
                        .collect(),
                ),
            ),
            point(
                "preScore",
                refs(
                    p.scores
                        .iter()
                        .filter(|(x, _)| x.as_pre_score().is_some())
                        .map(|(x, _)| (x.name().to_string(), 0))
                        .collect(),
                ),
            ),
            point(
                "score",
                refs(
                    p.scores
                        .iter()
                        .map(|(x, w)| (x.name().to_string(), *w))
                        .collect(),
                ),
            ),
        ],
        extenders: p
            .extenders
            .iter()
            .map(|e| v1::ExtenderInfo {
                address: e.address.clone(),
                weight: e.weight,
                timeout: format!("{:?}", e.timeout),
                ignorable: e.ignorable,
                bind: e.bind,
                filter: e.filter,
                prioritize: e.prioritize,
                node_cache_capable: e.node_cache_capable,
                managed_resources: e.managed_resources.clone(),
            })
            .collect(),
        percentage_of_nodes_to_score: p.percentage_of_nodes_to_score.unwrap_or(0) as i32,
    }
}

#[tonic::async_trait]
impl Scheduler for SchedulerService {
    async fn explain(
        &self,
        req: Request<v1::ExplainRequest>,
    ) -> Result<Response<v1::ExplainResponse>, Status> {
        // The answer shows how every node fits the pod: the caller may list nodes, and read
        // the stored pod, or (an inline pod) create pods in its namespace, as a server-side
        // dry run would need.
        check(&req, &Attributes::resource("list", "", "nodes", "", ""))?;
        let r = req.get_ref();
        let pod = if !r.manifest.trim().is_empty() {
            if !r.name.is_empty() {
                return Err(Status::invalid_argument(
                    "name: give either a stored pod's name or a manifest, not both",
                ));
            }
            let pod = pod_from_manifest(&r.manifest, &r.namespace)?;
            let ns = pod.metadata.as_ref().map_or("", |m| m.namespace.as_str());
            check(&req, &Attributes::resource("create", "", "pods", ns, ""))?;
            Arc::new(pod)
        } else {
            if r.name.is_empty() {
                return Err(Status::invalid_argument(
                    "name: Required value (or give an inline pod in manifest)",
                ));
            }
            let ns = if r.namespace.is_empty() {
                "default"
            } else {
                r.namespace.as_str()
            };
            check(&req, &Attributes::resource("get", "", "pods", ns, &r.name))?;
            self.handle.pod(ns, &r.name).ok_or_else(|| {
                Status::not_found(format!("pods \"{}\" not found in namespace {ns}", r.name))
            })?
        };
        let bound = pod
            .spec
            .as_ref()
            .map(|s| s.node_name.clone())
            .unwrap_or_default();
        let e = self
            .handle
            .explain(pod)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(to_proto(&e, &bound)))
    }

    async fn list_profiles(
        &self,
        req: Request<v1::ListProfilesRequest>,
    ) -> Result<Response<v1::ListProfilesResponse>, Status> {
        // kube-scheduler's configuration is served at /configz.
        check(&req, &Attributes::path("get", "/configz"))?;
        Ok(Response::new(v1::ListProfilesResponse {
            profiles: self.handle.profiles.iter().map(profile_info).collect(),
        }))
    }
}
