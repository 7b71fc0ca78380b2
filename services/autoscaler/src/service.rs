//! `coxswain.v1.Autoscaler`: Recommend (a what-if through the controller's own [`decide`], no
//! side effects) and History (the controller's latest decisions).
use std::sync::Arc;

use coxswain_api::manifest::parse_manifests;
use coxswain_api::v1::autoscaler_server::{Autoscaler, AutoscalerServer};
use coxswain_api::v1::{
    Decision, HistoryRequest, HistoryResponse, HorizontalPodAutoscaler, RecommendRequest, Scenario,
    TimedReplicas,
};
use coxswain_api::Object;
use coxswain_client::authz::{check, check_extensions, Attributes};
use tonic::{Request, Response, Status};

use crate::behavior::{Memory, Recommendation, ScaleEvent};
use crate::calc::{parse_time_ms, PodInfo};
use crate::decide::{decide, MetricInput, Scale};
use crate::engine::{key, Engine};
use crate::spec;

/// The service over the controller's engine.
#[derive(Clone)]
pub struct AutoscalerService {
    engine: Arc<Engine>,
}

impl AutoscalerService {
    pub fn new(engine: Arc<Engine>) -> AutoscalerService {
        AutoscalerService { engine }
    }

    pub fn into_server(self) -> AutoscalerServer<AutoscalerService> {
        AutoscalerServer::new(self)
    }

    async fn load(&self, req: &RecommendRequest) -> Result<HorizontalPodAutoscaler, Status> {
        if !req.manifest.is_empty() {
            let mut parsed = parse_manifests(&req.manifest)
                .map_err(|e| Status::invalid_argument(format!("manifest: {e}")))?;
            if parsed.len() != 1 {
                return Err(Status::invalid_argument(
                    "manifest: must hold exactly one HorizontalPodAutoscaler",
                ));
            }
            let mut obj = parsed.remove(0).object;
            let Object::HorizontalPodAutoscaler(_) = &obj else {
                return Err(Status::invalid_argument(format!(
                    "manifest.kind: Unsupported value: {:?}: supported values: \"HorizontalPodAutoscaler\"",
                    obj.kind().as_str()
                )));
            };
            coxswain_api::defaults::apply_defaults(&mut obj);
            let errs = coxswain_api::validation::validate(&obj);
            if !errs.is_empty() {
                let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                return Err(Status::invalid_argument(text.join("; ")));
            }
            let Object::HorizontalPodAutoscaler(mut h) = obj else {
                unreachable!("checked above")
            };
            let m = h.metadata.get_or_insert_with(Default::default);
            if m.namespace.is_empty() {
                m.namespace = if req.namespace.is_empty() {
                    "default".into()
                } else {
                    req.namespace.clone()
                };
            }
            return Ok(h);
        }
        if req.name.is_empty() {
            return Err(Status::invalid_argument(
                "name: Required value: a stored HPA's name, or a manifest",
            ));
        }
        let ns = if req.namespace.is_empty() {
            "default"
        } else {
            &req.namespace
        };
        match self
            .engine
            .client
            .get::<HorizontalPodAutoscaler>(ns, &req.name)
            .await
        {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(Status::not_found(format!(
                "horizontalpodautoscalers.autoscaling {:?} not found",
                req.name
            ))),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }
}

fn times(list: &[TimedReplicas], path: &str) -> Result<Vec<(i32, i64)>, Status> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            parse_time_ms(&t.time)
                .map(|ms| (t.replicas, ms))
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "scenario.{path}[{i}].time: Invalid value: {:?}: must be an RFC 3339 time",
                        t.time
                    ))
                })
        })
        .collect()
}

fn scenario_memory(s: &Scenario) -> Result<Memory, Status> {
    let ev = |(change, at_ms)| ScaleEvent {
        change,
        at_ms,
        outdated: false,
    };
    Ok(Memory {
        recommendations: times(&s.recommendations, "recommendations")?
            .into_iter()
            .map(|(replicas, at_ms)| Recommendation { replicas, at_ms })
            .collect(),
        up_events: times(&s.scale_up_events, "scaleUpEvents")?
            .into_iter()
            .map(ev)
            .collect(),
        down_events: times(&s.scale_down_events, "scaleDownEvents")?
            .into_iter()
            .map(ev)
            .collect(),
    })
}

/// A scenario's replacement for one metric, if it has one.
fn scenario_metric(s: &Scenario, m: &coxswain_api::v1::MetricSpec) -> Option<MetricInput> {
    match m.r#type.as_str() {
        "Resource" | "ContainerResource" => s
            .pod_metrics
            .as_ref()
            .map(|l| MetricInput::Resource(Ok(l.items.clone()))),
        "Pods" => {
            let n = m.pods.as_ref()?.metric.as_ref()?.name.clone();
            s.pods_metrics
                .get(&n)
                .map(|l| MetricInput::Pods(Ok(l.items.clone())))
        }
        "Object" => {
            let n = m.object.as_ref()?.metric.as_ref()?.name.clone();
            s.object_metrics
                .get(&n)
                .map(|v| MetricInput::Object(Ok(v.clone())))
        }
        "External" => {
            let n = m.external.as_ref()?.metric.as_ref()?.name.clone();
            s.external_metrics
                .get(&n)
                .map(|l| MetricInput::External(Ok(l.items.clone())))
        }
        _ => None,
    }
}

#[tonic::async_trait]
impl Autoscaler for AutoscalerService {
    async fn recommend(
        &self,
        req: Request<RecommendRequest>,
    ) -> Result<Response<Decision>, Status> {
        let (_, extensions, req) = req.into_parts();
        let hpa = self.load(&req).await?;
        let s = req.scenario.clone().unwrap_or_default();
        let meta = hpa.metadata.clone().unwrap_or_default();
        let ns = meta.namespace.clone();
        // A stored HPA is read (`get`); an inline one is authorized as a server-side dry-run
        // `create` would be. A live scale is read as the HPA controller reads it.
        let hpas = "horizontalpodautoscalers";
        let a = match req.manifest.is_empty() {
            true => Attributes::resource("get", "autoscaling", hpas, &ns, &meta.name),
            false => Attributes::resource("create", "autoscaling", hpas, &ns, ""),
        };
        check_extensions(&extensions, &a)?;
        let k = key(&ns, &meta.name);
        let now_ms = if s.now.is_empty() {
            self.engine.clock.now_ms()
        } else {
            parse_time_ms(&s.now).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "scenario.now: Invalid value: {:?}: must be an RFC 3339 time",
                    s.now
                ))
            })?
        };
        let mut mem = if s.replace_memory {
            scenario_memory(&s)?
        } else {
            self.engine.memory(&k)
        };
        let target = hpa
            .spec
            .as_ref()
            .and_then(|s| s.scale_target_ref.clone())
            .unwrap_or_default();
        // The scale: live, unless the scenario gives all of it.
        let mut scale = if s.spec_replicas.is_some() && s.selector.is_some() {
            Ok(Scale::default())
        } else {
            if let Some(k) = coxswain_api::Kind::parse(&target.kind) {
                let a = Attributes::resource("get", k.group(), k.plural(), &ns, &target.name);
                check_extensions(&extensions, &a.on_subresource("scale"))?;
            }
            self.engine.get_scale(&ns, &target).await
        };
        if s.spec_replicas.is_some() || s.status_replicas.is_some() || s.selector.is_some() {
            let mut sc = scale.clone().unwrap_or_default();
            if let Some(v) = s.spec_replicas {
                sc.spec_replicas = v;
                // status.replicas follows spec.replicas unless given.
                sc.status_replicas = v;
            }
            if let Some(v) = s.status_replicas {
                sc.status_replicas = v;
            }
            if let Some(v) = &s.selector {
                sc.selector = v.clone();
            }
            scale = Ok(sc);
        }
        let selector = scale
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        // The pods, and the HPAs whose selectors select any of them (AmbiguousSelector), as
        // the controller would find them; nothing is remembered.
        let (pods, controlling): (Vec<PodInfo>, Vec<String>) = match &s.pods {
            Some(p) => (
                p.items.iter().map(PodInfo::from_pod).collect(),
                self.engine.controlling_peek(
                    &k,
                    &ns,
                    &selector,
                    p.items
                        .iter()
                        .filter_map(|p| p.metadata.as_ref().map(|m| &m.labels)),
                ),
            ),
            None => {
                let live = self.engine.selected(&ns, &selector);
                let controlling = self.engine.controlling_peek(
                    &k,
                    &ns,
                    &selector,
                    live.iter()
                        .filter_map(|p| p.metadata.as_ref().map(|m| &m.labels)),
                );
                (
                    live.iter().map(|p| PodInfo::from_pod(p)).collect(),
                    controlling,
                )
            }
        };
        let mut metrics = Vec::new();
        let mut resource = None;
        for m in spec::metrics(&hpa.spec.clone().unwrap_or_default()) {
            let input = match scenario_metric(&s, &m) {
                Some(i) => i,
                None if scale.is_ok() => {
                    self.engine
                        .fetch_metric(&ns, &m, &selector, &mut resource)
                        .await
                }
                None => MetricInput::None,
            };
            metrics.push(input);
        }
        let inputs = crate::decide::Inputs {
            scale,
            pods,
            metrics,
            now_ms,
            controlling,
        };
        let cfg = self.engine.config.decide;
        Ok(Response::new(decide(&hpa, &inputs, &mut mem, &cfg)))
    }

    async fn history(
        &self,
        req: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let r = req.get_ref();
        let ns = if r.namespace.is_empty() {
            "default"
        } else {
            &r.namespace
        };
        let a = Attributes::resource(
            "get",
            "autoscaling",
            "horizontalpodautoscalers",
            ns,
            &r.name,
        );
        check(&req, &a)?;
        let req = req.into_inner();
        if req.name.is_empty() {
            return Err(Status::invalid_argument("name: Required value"));
        }
        if req.limit < 0 {
            return Err(Status::invalid_argument(format!(
                "limit: Invalid value: {}: must be greater than or equal to 0",
                req.limit
            )));
        }
        let ns = if req.namespace.is_empty() {
            "default".to_string()
        } else {
            req.namespace.clone()
        };
        let limit = if req.limit == 0 {
            100
        } else {
            req.limit as usize
        };
        let decisions = self.engine.history(&key(&ns, &req.name), limit);
        if decisions.is_empty() {
            match self
                .engine
                .client
                .get::<HorizontalPodAutoscaler>(&ns, &req.name)
                .await
            {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(Status::not_found(format!(
                        "horizontalpodautoscalers.autoscaling {:?} not found",
                        req.name
                    )))
                }
                Err(e) => return Err(Status::unavailable(e.to_string())),
            }
        }
        Ok(Response::new(HistoryResponse { decisions }))
    }
}
