//! The HPA controller loop: an HPA informer and a pod informer, a work queue that brings every
//! HPA back each `--horizontal-pod-autoscaler-sync-period` (the first time one period after it
//! is added, as upstream), and per key: gather the inputs,
//! [`decide`], write the scale, record the Events, write the status when it changed, and keep
//! the decision for `Autoscaler.History`.
use std::sync::Arc;

use coxswain_api::v1::{HorizontalPodAutoscaler, Pod};
use coxswain_client::{
    Cache, Client, Event, Informer, ObjectRef, Recorder, SharedInformers, WorkQueue,
};

use crate::decide::{decide, fail_rescale, record_rescale};
use crate::engine::{key, Config, Engine};
use crate::metrics::MetricsClient;

/// The running controller.
pub struct Controller {
    pub engine: Arc<Engine>,
    pub hpas: Cache<HorizontalPodAutoscaler>,
    queue: WorkQueue<String>,
}

impl Controller {
    /// Wait until both caches hold a complete list.
    pub async fn wait_synced(&self) {
        self.hpas.wait_synced().await;
        self.engine.pods.wait_synced().await;
    }

    /// End the watches and the workers.
    pub fn stop(&self) {
        self.queue.shutdown();
        self.hpas.stop();
        self.engine.pods.stop();
    }
}

/// Start the informers and workers (returns at once).
pub fn start(client: Client, metrics: Arc<dyn MetricsClient>, config: Config) -> Controller {
    let pods = Informer::<Pod>::new(client.clone());
    start_with(client, pods, metrics, config)
}

/// [`start`] with the pods read from `informers`' pod informer (in `coxswain up` and
/// `coxswain controllers` the process's one pod watch), which the caller starts.
pub fn start_shared(
    client: Client,
    informers: &SharedInformers,
    metrics: Arc<dyn MetricsClient>,
    config: Config,
) -> Controller {
    start_with(client, informers.informer::<Pod>(), metrics, config)
}

fn start_with(
    client: Client,
    pods: Informer<Pod>,
    metrics: Arc<dyn MetricsClient>,
    config: Config,
) -> Controller {
    let pods = coxswain_metrics::select::with_label_index(pods).start();
    let engine = Arc::new(Engine::new(client.clone(), metrics, pods, config.clone()));
    let queue: WorkQueue<String> = WorkQueue::named(Default::default(), "horizontalpodautoscaler");
    let q = queue.clone();
    let e = engine.clone();
    let period = config.sync_period;
    // Upstream's enqueueHPA: every add and update queues the key after one sync period (its
    // queue's FixedItemIntervalRateLimiter), and a key already waiting keeps its earlier time;
    // so a new HPA is first evaluated one period after it is seen, and an edit does not jump
    // the queue.
    let hpas = Informer::<HorizontalPodAutoscaler>::new(client.clone())
        .on_event(move |ev| match ev {
            Event::Added(h) => q.add_after(hpa_key(h), period),
            Event::Modified { new, .. } => q.add_after(hpa_key(new), period),
            Event::Deleted(h) => e.forget(&hpa_key(h)),
            Event::Synced => {}
        })
        .start();
    let recorder = Recorder::new(client, &config.component, "");
    for _ in 0..config.workers.max(1) {
        let (engine, hpas, queue, recorder) = (
            engine.clone(),
            hpas.clone(),
            queue.clone(),
            recorder.clone(),
        );
        tokio::spawn(async move {
            while let Some(k) = queue.next().await {
                let exists = reconcile(&engine, &hpas, &recorder, &k).await;
                queue.done(&k);
                if exists {
                    queue.add_after(k, engine.config.sync_period);
                }
            }
        });
    }
    Controller {
        engine,
        hpas,
        queue,
    }
}

fn hpa_key(h: &HorizontalPodAutoscaler) -> String {
    let m = h.metadata.clone().unwrap_or_default();
    key(&m.namespace, &m.name)
}

/// One reconcile; false when the HPA is gone.
async fn reconcile(
    engine: &Engine,
    hpas: &Cache<HorizontalPodAutoscaler>,
    recorder: &Recorder,
    k: &str,
) -> bool {
    let Some(hpa) = hpas.get_key(k) else {
        engine.forget(k);
        return false;
    };
    let started = std::time::Instant::now();
    let inputs = engine.gather(&hpa).await;
    let cfg = engine.config.decide;
    let mut d = engine.with_memory(k, |mem| decide(&hpa, &inputs, mem, &cfg));
    let ns = hpa
        .metadata
        .as_ref()
        .map(|m| m.namespace.clone())
        .unwrap_or_default();
    if d.rescale {
        let target = hpa
            .spec
            .as_ref()
            .and_then(|s| s.scale_target_ref.clone())
            .unwrap_or_default();
        match engine.write_scale(&ns, &target, d.desired_replicas).await {
            Ok(()) => {
                let now = engine.clock.now_ms();
                engine.with_memory(k, |mem| record_rescale(&hpa, &d, mem, &cfg, now));
                tracing::info!(hpa = k, from = d.current_replicas, to = d.desired_replicas, reason = %d.rescale_reason, "rescaled");
            }
            Err(e) => {
                let now = coxswain_api::time::now_rfc3339();
                fail_rescale(&mut d, &e, &now);
            }
        }
    }
    let obj = ObjectRef::from_resource(&*hpa);
    for e in &d.events {
        if e.r#type == "Warning" {
            recorder.warning(&obj, &e.reason, e.message.clone());
        } else {
            recorder.normal(&obj, &e.reason, e.message.clone());
        }
    }
    if !d.error.is_empty() {
        tracing::debug!(hpa = k, error = %d.error, "reconcile");
    }
    if d.status.is_some() && d.status != hpa.status {
        let mut updated = (*hpa).clone();
        updated.status = d.status.clone();
        // The controller is the status' only writer; the cache may lag its last write.
        if let Some(m) = updated.metadata.as_mut() {
            m.resource_version.clear();
        }
        if let Err(e) = engine.client.update_status(&updated).await {
            tracing::debug!(hpa = k, error = %e, "status update");
        }
    }
    // One line per evaluation (the benchmark reads them: coverage of every sync period).
    tracing::debug!(
        hpa = k,
        current = d.current_replicas,
        desired = d.desired_replicas,
        took_us = started.elapsed().as_micros() as u64,
        "reconciled"
    );
    engine.push_history(k, d);
    true
}
