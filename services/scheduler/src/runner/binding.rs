//! The loop's binding side: a decided pod's binding cycle (VolumeBinding's PreBind, then the
//! binding extender or the DefaultBinder through [`crate::binder`]), the outcome coming back
//! to the loop (`Scheduled`, or forget, `FailedScheduling` and requeue), and the
//! PodScheduled=False condition a failed cycle sets.
use std::sync::Arc;
use std::time::Instant as StdInstant;

use coxswain_api::v1;
use coxswain_client::ObjectRef;
use tokio::time::Instant;

use super::{Loop, Msg};
use crate::binder::Binding;
use crate::queue::QueuedPod;
use crate::snapshot::{pod_name, pod_namespace, pod_spec};

/// Whether a bound pod's `Scheduled` Event was recorded by its binding cycle (the DefaultBinder
/// decides it before the binding, so that a new Event rides in the BindBatch), or is still to
/// be recorded when the outcome reaches the loop (a binding extender's).
#[derive(Debug)]
pub(super) enum Recorded {
    Yes,
    No,
}

#[derive(Debug)]
pub(super) enum BindError {
    /// The pod is gone or bound already: nothing to retry.
    Gone(String),
    Failed(String),
}

fn condition_patch(pod: &v1::Pod, reason: &str, message: &str) -> Option<serde_json::Value> {
    let conds = pod
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    if let Some(c) = conds.iter().find(|c| c.r#type == "PodScheduled") {
        if c.status == "False" && c.reason == reason && c.message == message {
            return None;
        }
    }
    let now = coxswain_api::time::now_rfc3339();
    let mut out: Vec<serde_json::Value> = Vec::new();
    let mut replaced = false;
    for c in &conds {
        if c.r#type == "PodScheduled" {
            let since = if c.status == "False" && !c.last_transition_time.is_empty() {
                c.last_transition_time.clone()
            } else {
                now.clone()
            };
            out.push(serde_json::json!({
                "type": "PodScheduled", "status": "False", "reason": reason,
                "message": message, "lastTransitionTime": since,
            }));
            replaced = true;
        } else {
            out.push(serde_json::to_value(c).unwrap_or_default());
        }
    }
    if !replaced {
        out.push(serde_json::json!({
            "type": "PodScheduled", "status": "False", "reason": reason,
            "message": message, "lastTransitionTime": now,
        }));
    }
    Some(serde_json::json!({ "status": { "conditions": out } }))
}

impl Loop {
    pub(super) fn bound(
        &mut self,
        key: String,
        pod: Arc<v1::Pod>,
        (node, issued): (String, std::time::SystemTime),
        attempts: u32,
        profile: usize,
        result: Result<Recorded, BindError>,
    ) {
        let obj = ObjectRef::from(&*pod);
        match result {
            Ok(Recorded::Yes) => {
                metrics::counter!("coxswain_scheduler_binds_total", "result" => "ok").increment(1);
            }
            Ok(Recorded::No) => {
                metrics::counter!("coxswain_scheduler_binds_total", "result" => "ok").increment(1);
                // Stamped with the moment the binding was issued, not when this loop got the
                // answer: the node may already have acted on the bound pod (Pulling, ...), and
                // describe orders events by time.
                self.recorders[profile].normal_at(
                    &obj,
                    "Scheduled",
                    format!(
                        "Successfully assigned {}/{} to {node}",
                        pod_namespace(&pod),
                        pod_name(&pod)
                    ),
                    issued,
                );
            }
            Err(e) => {
                metrics::counter!("coxswain_scheduler_binds_total", "result" => "error")
                    .increment(1);
                self.cache.forget(&key);
                self.on_events(vec![crate::framework::ClusterEvent::AssignedPodDelete]);
                match e {
                    BindError::Gone(msg) => {
                        tracing::debug!(pod = %key, %msg, "binding found the pod gone or bound");
                    }
                    BindError::Failed(msg) => {
                        tracing::warn!(pod = %key, node, %msg, "binding failed");
                        let msg = format!("Binding rejected: {msg}");
                        self.recorders[profile].warning(&obj, "FailedScheduling", msg.clone());
                        self.set_condition(&pod, "SchedulerError", &msg);
                        // As upstream's handleSchedulingFailure: requeue the informer's latest
                        // version of the pod, not the one that was decided, and only while it
                        // is there and unbound. A pod bound meanwhile by someone else (whose
                        // binding here therefore conflicted) or deleted is not requeued.
                        match self.pods.get(pod_namespace(&pod), pod_name(&pod)) {
                            Some(latest) if pod_spec(&latest).node_name.is_empty() => {
                                self.queue
                                    .add_failed_binding(latest, attempts, Instant::now());
                            }
                            Some(latest) => tracing::debug!(
                                pod = %key,
                                node = pod_spec(&latest).node_name,
                                "the pod has been assigned to a node; not requeued"
                            ),
                            None => tracing::debug!(pod = %key, "the pod is gone; not requeued"),
                        }
                    }
                }
            }
        }
    }

    pub(super) fn set_condition(&self, pod: &v1::Pod, reason: &str, message: &str) {
        let Some(patch) = condition_patch(pod, reason, message) else {
            return;
        };
        let client = self.client.clone();
        let (ns, name) = (pod_namespace(pod).to_string(), pod_name(pod).to_string());
        tokio::spawn(async move {
            if let Err(e) = client.patch_status::<v1::Pod>(&ns, &name, &patch).await {
                if !e.is_not_found() {
                    tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "setting PodScheduled=False");
                }
            }
        });
    }

    pub(super) fn spawn_bind(&self, qp: QueuedPod, profile: usize, node: String) {
        let binder = self.extenders[profile]
            .iter()
            .find(|e| e.config.bind && e.config.is_interested(&qp.pod))
            .cloned();
        let client = self.client.clone();
        let batcher = self.batcher.clone();
        let recorder = self.recorders[profile].clone();
        let tx = self.tx.clone();
        let profile_name = self.profiles[profile].scheduler_name.clone();
        // The binder's plugin series only in a sampled cycle, as the other plugins'.
        let sampled = self.observers[profile].sampled() && binder.is_none();
        // VolumeBinding's PreBind: what to bind or provision on the chosen node.
        let uses_volumes = self.profiles[profile]
            .filters
            .iter()
            .any(|p| p.name() == crate::plugins::volume_binding::NAME);
        let volumes = match self.cache.snapshot().get(&node) {
            Some(info) if uses_volumes => {
                crate::plugins::volume_binding::decide(&self.volumes, &qp.pod, &info.node)
            }
            _ => Ok(None),
        };
        let lister = self.volumes.clone();
        let bind_timeout = self.volume_bind_timeout;
        tokio::spawn(async move {
            let pod = qp.pod;
            let (ns, name) = (pod_namespace(&pod).to_string(), pod_name(&pod).to_string());
            let uid = pod
                .metadata
                .as_ref()
                .map(|m| m.uid.clone())
                .unwrap_or_default();
            let issued = std::time::SystemTime::now();
            let started = StdInstant::now();
            let pre_bind = match volumes {
                Ok(Some(d)) => {
                    d.apply(
                        &client,
                        &lister,
                        bind_timeout,
                        std::time::Duration::from_millis(100),
                    )
                    .await
                }
                Ok(None) => Ok(()),
                Err(e) => Err(format!("running PreBind plugin \"VolumeBinding\": {e}")),
            };
            let result = match (pre_bind, binder) {
                (Err(e), _) => Err(BindError::Failed(e)),
                (Ok(()), binder) => match binder {
                    Some(ext) => ext
                        .bind(&ns, &name, &uid, &node)
                        .await
                        .map(|()| Recorded::No)
                        .map_err(BindError::Failed),
                    None => {
                        // The Scheduled Event, decided now: a new one rides in the binding
                        // (written by the store only if the pod is bound), a repeat is patched
                        // after it. A failed binding records nothing (`prepared` is dropped).
                        let message = format!("Successfully assigned {ns}/{name} to {node}");
                        let prepared = recorder.prepare_normal_at(
                            &ObjectRef::from(&*pod),
                            "Scheduled",
                            message,
                            issued,
                        );
                        let binding = Binding {
                            namespace: ns,
                            name,
                            uid,
                            node: node.clone(),
                            event: prepared.event().map(|e| Box::new(e.clone())),
                        };
                        match batcher.bind(binding).await {
                            Ok(carried) => {
                                prepared.done(carried);
                                Ok(Recorded::Yes)
                            }
                            Err(e) if e.is_not_found() => Err(BindError::Gone(e.to_string())),
                            Err(coxswain_client::Error::Transport(s))
                                if s.code() == tonic::Code::FailedPrecondition =>
                            {
                                Err(BindError::Gone(s.message().to_string()))
                            }
                            Err(e) => Err(BindError::Failed(e.to_string())),
                        }
                    }
                },
            };
            crate::metrics::record_bind(
                &profile_name,
                sampled.then_some("DefaultBinder"),
                result.is_ok(),
                started.elapsed().as_secs_f64(),
            );
            let _ = tx.send(Msg::Bound {
                key: qp.key,
                pod,
                node,
                issued,
                attempts: qp.attempts,
                profile,
                result,
            });
        });
    }
}
