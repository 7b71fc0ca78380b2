//! The scheduling loop. One task owns the [`SchedulerCache`] and the [`SchedulingQueue`];
//! informers (nodes, pods, namespaces) feed it events over a channel, so there is one writer
//! and no locks:
//!
//! 1. apply every pending event (bound pods and nodes to the cache — each change re-queues
//!    the unschedulable pods it may help; pending pods of our profiles to the queue);
//! 2. pop the best pod and run one cycle with its profile (`spec.schedulerName`), in-tree
//!    filters, extenders' Filter, scores, extenders' Prioritize;
//! 3. on success *assume* the pod on the node (the next cycle sees it at once) and bind
//!    asynchronously (the store's BindBatch, gathered by [`crate::binder`], or the binding
//!    extender); the outcome comes back as
//!    an event: success records `Scheduled`, failure forgets the assumed pod and retries with
//!    back-off;
//! 4. on failure record `FailedScheduling`, set the PodScheduled=False condition (reason
//!    Unschedulable, or SchedulerError for errors) and park the pod until a relevant event.
//!
//! Pods naming a scheduler this process does not serve, pods with a nodeName and pods being
//! deleted are never touched.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use coxswain_api::v1;
use coxswain_client::{Client, Event, Informer, ObjectRef, Recorder, SharedInformers};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::binder::Batcher;
use crate::cache::SchedulerCache;
use crate::config::SchedulerConfig;
use crate::explain::Explanation;
use crate::extender::Extender;
use crate::framework::{
    find_feasible_observed, rejected_statuses, resolve_gated, run_post_filters_observed,
    score_nodes_observed, score_totals_observed, select_best, select_host, Filtered, PluginScore,
    Profile, ScheduleError, Status, DEFAULT_SCHEDULER_NAME,
};
use crate::metrics::Observer;
use crate::queue::{pod_key, QueueConfig, QueuedPod, SchedulingQueue};
use crate::snapshot::pod_spec;

mod binding;
mod live_explain;

use binding::{BindError, Recorded};
use live_explain::PendingExplain;

/// The reason of the Warning event a pod gets when an extender's failure is skipped (an
/// ignorable extender's Filter, or any extender's Prioritize) and the cycle goes on.
/// kube-scheduler only logs these; the event makes them visible on the pod.
pub const EXTENDER_IGNORED: &str = "SchedulerExtenderIgnored";

/// Loop options.
#[derive(Debug, Clone)]
pub struct Options {
    pub queue: QueueConfig,
    /// Percentage of cycles whose plugin calls are timed
    /// (`scheduler_plugin_execution_duration_seconds`; upstream's 10).
    pub plugin_metrics_sample_percent: u32,
    /// How long binding a pod waits for its volumes to be bound (VolumeBinding's
    /// bindTimeoutSeconds; upstream's 600 s).
    pub volume_bind_timeout: std::time::Duration,
    /// How the DefaultBinder's bindings are batched ([`crate::binder`]).
    pub bind_batch: crate::binder::BatchOptions,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            queue: QueueConfig::default(),
            plugin_metrics_sample_percent: crate::metrics::DEFAULT_PLUGIN_METRICS_SAMPLE_PERCENT,
            volume_bind_timeout: crate::plugins::volume_binding::DEFAULT_BIND_TIMEOUT,
            bind_batch: crate::binder::BatchOptions::default(),
        }
    }
}

/// The profile name a pod asks for (`default-scheduler` when unset).
pub fn scheduler_name(pod: &v1::Pod) -> &str {
    let n = pod_spec(pod).scheduler_name.as_str();
    if n.is_empty() {
        DEFAULT_SCHEDULER_NAME
    } else {
        n
    }
}

fn deleting(pod: &v1::Pod) -> bool {
    pod.metadata
        .as_ref()
        .is_some_and(|m| !m.deletion_timestamp.is_empty())
}

fn terminal(pod: &v1::Pod) -> bool {
    matches!(
        pod.status.as_ref().map(|s| s.phase.as_str()),
        Some("Succeeded" | "Failed")
    )
}

enum Msg {
    Node(Event<v1::Node>),
    Pod(Event<v1::Pod>),
    Namespace(Event<v1::Namespace>),
    /// A claim, volume or class changed.
    Volume,
    Bound {
        key: String,
        pod: Arc<v1::Pod>,
        node: String,
        /// When the binding was issued: the Scheduled event's time.
        issued: std::time::SystemTime,
        attempts: u32,
        profile: usize,
        result: Result<Recorded, BindError>,
    },
    Explain {
        pod: Arc<v1::Pod>,
        reply: oneshot::Sender<Result<Explanation, String>>,
    },
}

fn forward<R>(ev: &Event<R>) -> Event<R> {
    match ev {
        Event::Added(o) => Event::Added(Arc::clone(o)),
        Event::Modified { old, new } => Event::Modified {
            old: Arc::clone(old),
            new: Arc::clone(new),
        },
        Event::Deleted(o) => Event::Deleted(Arc::clone(o)),
        Event::Synced => Event::Synced,
    }
}

/// A handle on a running scheduler: its profiles, Explain, and the pod cache.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<Msg>,
    pub profiles: Arc<Vec<Profile>>,
    pods: coxswain_client::Cache<v1::Pod>,
    nodes: coxswain_client::Cache<v1::Node>,
    namespaces: coxswain_client::Cache<v1::Namespace>,
    volumes: crate::plugins::volume_binding::InformerVolumes,
    stop: Arc<tokio::sync::Notify>,
}

impl SchedulerHandle {
    /// Explain a pod against the live cache (never binds).
    pub async fn explain(&self, pod: Arc<v1::Pod>) -> Result<Explanation, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Explain { pod, reply })
            .map_err(|_| "the scheduler has stopped".to_string())?;
        rx.await
            .map_err(|_| "the scheduler has stopped".to_string())?
    }

    /// Stop the informers (their watches end, so a server shutting down gracefully is not
    /// held open by them) and the loop.
    pub fn stop(&self) {
        self.pods.stop();
        self.nodes.stop();
        self.namespaces.stop();
        self.volumes.stop();
        self.stop.notify_one();
    }

    /// A pod from the scheduler's informer cache.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Arc<v1::Pod>> {
        self.pods.get(namespace, name)
    }
}

struct Loop {
    client: Client,
    batcher: Batcher,
    profiles: Arc<Vec<Profile>>,
    extenders: Vec<Vec<Extender>>,
    recorders: Vec<Recorder>,
    by_name: HashMap<String, usize>,
    /// The framework metrics, one per profile.
    observers: Vec<Observer>,
    cache: SchedulerCache,
    queue: SchedulingQueue,
    tx: mpsc::UnboundedSender<Msg>,
    next_start: usize,
    nodes_synced: bool,
    pods_synced: bool,
    volumes: crate::plugins::volume_binding::Volumes,
    volume_bind_timeout: std::time::Duration,
    /// The pod informer's cache: a failed binding requeues the latest version from it.
    pods: coxswain_client::Cache<v1::Pod>,
}

/// Start the scheduler: informers and the loop, on the current tokio runtime.
pub fn start(
    client: Client,
    config: SchedulerConfig,
    opts: Options,
) -> Result<SchedulerHandle, String> {
    let informers = SharedInformers::new(client.clone());
    let handle = start_shared(client, &informers, config, opts)?;
    informers.start();
    Ok(handle)
}

/// [`start`] with the pod informer joining `informers` (in `coxswain up` the process's one pod
/// informer, shared with the controllers and the node lifecycle controller); the caller starts
/// the factory once every component has registered.
pub fn start_shared(
    client: Client,
    informers: &SharedInformers,
    config: SchedulerConfig,
    opts: Options,
) -> Result<SchedulerHandle, String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut extenders = Vec::new();
    for p in &config.profiles {
        extenders.push(
            p.extenders
                .iter()
                .cloned()
                .map(Extender::new)
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let profiles = Arc::new(config.profiles);
    let t = tx.clone();
    let nodes = Informer::<v1::Node>::new(client.clone())
        .on_event(move |ev| {
            let _ = t.send(Msg::Node(forward(ev)));
        })
        .start();
    let t = tx.clone();
    let pods = informers
        .informer::<v1::Pod>()
        .on_event(move |ev| {
            let _ = t.send(Msg::Pod(forward(ev)));
        })
        .start();
    let t = tx.clone();
    let namespaces = Informer::<v1::Namespace>::new(client.clone())
        .on_event(move |ev| {
            let _ = t.send(Msg::Namespace(forward(ev)));
        })
        .start();
    let volume_informers = {
        let t1 = tx.clone();
        let t2 = tx.clone();
        let t3 = tx.clone();
        crate::plugins::volume_binding::InformerVolumes {
            claims: Informer::<v1::PersistentVolumeClaim>::new(client.clone())
                .on_event(move |_| {
                    let _ = t1.send(Msg::Volume);
                })
                .start(),
            volumes: Informer::<v1::PersistentVolume>::new(client.clone())
                .on_event(move |_| {
                    let _ = t2.send(Msg::Volume);
                })
                .start(),
            classes: Informer::<v1::StorageClass>::new(client.clone())
                .on_event(move |_| {
                    let _ = t3.send(Msg::Volume);
                })
                .start(),
        }
    };
    let volumes = crate::plugins::volume_binding::Volumes(Arc::new(volume_informers.clone()));
    let mut cache = SchedulerCache::new();
    cache.set_volumes(volumes.clone());
    let recorders = profiles
        .iter()
        .map(|p| Recorder::new(client.clone(), &p.scheduler_name, ""))
        .collect();
    let by_name = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| (p.scheduler_name.clone(), i))
        .collect();
    let l = Loop {
        batcher: Batcher::start(client.clone(), opts.bind_batch),
        client,
        profiles: Arc::clone(&profiles),
        extenders,
        recorders,
        by_name,
        observers: profiles
            .iter()
            .map(|p| Observer::new(&p.scheduler_name, opts.plugin_metrics_sample_percent))
            .collect(),
        cache,
        queue: SchedulingQueue::new(opts.queue),
        tx: tx.clone(),
        next_start: 0,
        nodes_synced: false,
        pods_synced: false,
        volumes,
        volume_bind_timeout: opts.volume_bind_timeout,
        pods: pods.clone(),
    };
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = Arc::clone(&stop);
    tokio::spawn(async move {
        tokio::select! {
            _ = l.run(rx) => {}
            _ = stopped.notified() => {}
        }
    });
    tracing::info!(
        profiles = ?profiles.iter().map(|p| p.scheduler_name.as_str()).collect::<Vec<_>>(),
        "scheduler started"
    );
    Ok(SchedulerHandle {
        tx,
        profiles,
        pods,
        nodes,
        namespaces,
        volumes: volume_informers,
        stop,
    })
}

impl Loop {
    fn responsible(&self, pod: &v1::Pod) -> bool {
        self.by_name.contains_key(scheduler_name(pod))
    }

    fn on_events(&mut self, evs: Vec<crate::framework::ClusterEvent>) {
        let now = Instant::now();
        for e in evs {
            self.queue.on_event(e, now);
        }
    }

    fn pod_changed(&mut self, pod: Arc<v1::Pod>) {
        let key = pod_key(&pod);
        if !pod_spec(&pod).node_name.is_empty() {
            self.queue.delete(&key);
            let evs = self.cache.upsert_pod(pod);
            self.on_events(evs);
            return;
        }
        if deleting(&pod) || terminal(&pod) || !self.responsible(&pod) {
            self.queue.delete(&key);
            return;
        }
        if self.cache.is_assumed(&key) {
            // Decided; the binding is in flight.
            return;
        }
        self.queue.add(pod, Instant::now());
    }

    fn handle(&mut self, m: Msg) -> Option<PendingExplain> {
        match m {
            Msg::Node(ev) => match ev {
                Event::Added(n) | Event::Modified { new: n, .. } => {
                    let evs = self.cache.upsert_node(n);
                    self.on_events(evs);
                }
                Event::Deleted(n) => {
                    self.cache.remove_node(crate::snapshot::node_name(&n));
                }
                Event::Synced => self.nodes_synced = true,
            },
            Msg::Pod(ev) => match ev {
                Event::Added(p) | Event::Modified { new: p, .. } => self.pod_changed(p),
                Event::Deleted(p) => {
                    let key = pod_key(&p);
                    self.queue.delete(&key);
                    let evs = self.cache.remove_pod(&p);
                    self.on_events(evs);
                }
                Event::Synced => self.pods_synced = true,
            },
            Msg::Namespace(ev) => match ev {
                Event::Added(n) | Event::Modified { new: n, .. } => self.cache.upsert_namespace(&n),
                Event::Deleted(n) => {
                    if let Some(m) = &n.metadata {
                        self.cache.remove_namespace(&m.name);
                    }
                }
                Event::Synced => {}
            },
            Msg::Volume => self.on_events(vec![crate::framework::ClusterEvent::VolumeChange]),
            Msg::Bound {
                key,
                pod,
                node,
                issued,
                attempts,
                profile,
                result,
            } => self.bound(key, pod, (node, issued), attempts, profile, result),
            Msg::Explain { pod, reply } => return Some(PendingExplain { pod, reply }),
        }
        None
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        // scheduler_pending_pods is a walk over the queue: at most once a second while busy.
        let mut gauges_at: Option<StdInstant> = None;
        loop {
            let mut explains = Vec::new();
            while let Ok(m) = rx.try_recv() {
                if let Some(e) = self.handle(m) {
                    explains.push(e);
                }
            }
            for e in explains {
                self.explain(e).await;
            }
            if self.nodes_synced && self.pods_synced {
                self.queue.flush(Instant::now());
                if gauges_at.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) {
                    gauges_at = Some(StdInstant::now());
                    self.pending_gauges();
                }
                if let Some(qp) = self.queue.pop() {
                    self.schedule(qp).await;
                    continue;
                }
                self.pending_gauges();
                gauges_at = Some(StdInstant::now());
            }
            let wake = if self.nodes_synced && self.pods_synced {
                self.queue.next_wakeup()
            } else {
                None
            };
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => {
                        if let Some(e) = self.handle(m) {
                            self.explain(e).await;
                        }
                    }
                    None => return,
                },
                _ = sleep => {}
            }
        }
    }

    /// One cycle with extenders: in-tree filters, extenders' Filter, scores, extenders'
    /// Prioritize, select.
    async fn decide(&mut self, profile_idx: usize, pod: &v1::Pod) -> Result<String, ScheduleError> {
        let profile = &self.profiles[profile_idx];
        let snapshot = self.cache.snapshot();
        let obs = &mut self.observers[profile_idx];
        obs.begin_cycle();
        let Filtered {
            mut state,
            mut feasible,
            fit_error: mut err,
            mut rejections,
            mut gated,
            ..
        } = find_feasible_observed(profile, snapshot, pod, &mut self.next_start, obs)?;
        let exts: Vec<&Extender> = self.extenders[profile_idx]
            .iter()
            .filter(|e| e.config.is_interested(pod))
            .collect();
        // Failures of ignorable extenders: the cycle goes on without them, and the pod gets
        // one Warning event per cycle saying which were skipped and why.
        let mut ignored: Vec<String> = Vec::new();
        for ext in exts.iter().filter(|e| e.config.filter) {
            if feasible.is_empty() {
                break;
            }
            let infos: Vec<_> = feasible.iter().map(|&i| &snapshot.nodes[i]).collect();
            match ext.filter(pod, &infos).await {
                Ok(r) => {
                    for (n, reason) in &r.failed {
                        err.diagnosis.insert(
                            n.clone(),
                            Status::unschedulable(reason.clone()).with_plugin(ext.name()),
                        );
                    }
                    for (n, reason) in &r.unresolvable {
                        err.diagnosis.insert(
                            n.clone(),
                            Status::unresolvable(reason.clone()).with_plugin(ext.name()),
                        );
                    }
                    if !r.failed.is_empty() || !r.unresolvable.is_empty() {
                        err.unschedulable_plugins.insert(ext.name());
                    }
                    feasible.retain(|&i| r.feasible.iter().any(|n| n == snapshot.nodes[i].name()));
                }
                Err(e) if ext.config.ignorable => {
                    tracing::warn!(error = %e, "ignorable extender failed; skipping it");
                    metrics::counter!("coxswain_scheduler_extender_errors_total", "ignored" => "true").increment(1);
                    ignored.push(e);
                }
                Err(e) => {
                    metrics::counter!("coxswain_scheduler_extender_errors_total", "ignored" => "false").increment(1);
                    return Err(ScheduleError::Error(e));
                }
            }
        }
        if !ignored.is_empty() {
            self.recorders[profile_idx].warning(
                &ObjectRef::from(pod),
                EXTENDER_IGNORED,
                format!(
                    "Skipped ignorable extender(s) that failed: {}",
                    ignored.join("; ")
                ),
            );
        }
        if feasible.is_empty() {
            // The extenders may have emptied it: the skipped nodes' filters are needed now.
            resolve_gated(
                profile,
                &state,
                pod,
                snapshot,
                &mut gated,
                &mut rejections,
                &mut err,
            );
            let rejected = rejected_statuses(profile, &state, pod, snapshot, &rejections);
            for (i, s) in rejected {
                err.diagnosis
                    .insert(snapshot.nodes[i].name().to_string(), s);
            }
            let obs = &mut self.observers[profile_idx];
            run_post_filters_observed(profile, &state, pod, snapshot, &mut err, obs);
            return Err(ScheduleError::Unschedulable(Box::new(err)));
        }
        let prioritizers: Vec<&&Extender> = exts.iter().filter(|e| e.config.prioritize).collect();
        if feasible.len() == 1 && prioritizers.is_empty() {
            return Ok(snapshot.nodes[feasible[0]].name().to_string());
        }
        let obs = &mut self.observers[profile_idx];
        if prioritizers.is_empty() {
            let totals = score_totals_observed(profile, &mut state, pod, snapshot, &feasible, obs);
            return Ok(snapshot.nodes[feasible[select_best(&totals)]]
                .name()
                .to_string());
        }
        let mut scores =
            score_nodes_observed(profile, &mut state, pod, snapshot, &feasible, false, obs);
        for ext in prioritizers {
            let infos: Vec<_> = feasible.iter().map(|&i| &snapshot.nodes[i]).collect();
            match ext.prioritize(pod, &infos).await {
                Ok(m) => {
                    for s in scores.iter_mut() {
                        let raw = m.get(&*s.node).copied().unwrap_or(0);
                        let (normalized, weighted) = ext.weigh(raw);
                        s.total += weighted;
                        s.plugins.push(PluginScore {
                            plugin: ext.name().into(),
                            raw,
                            normalized,
                            weight: ext.config.weight,
                            weighted,
                        });
                    }
                }
                Err(e) => {
                    // As upstream: a failing Prioritize only loses that extender's scores.
                    tracing::warn!(error = %e, "extender Prioritize failed; ignored");
                    self.recorders[profile_idx].warning(
                        &ObjectRef::from(pod),
                        EXTENDER_IGNORED,
                        format!("Ignored the scores of an extender that failed: {e}"),
                    );
                }
            }
        }
        Ok(scores[select_host(&scores)].node.to_string())
    }

    /// scheduler_pending_pods{queue}, as kube-scheduler counts them.
    fn pending_gauges(&self) {
        let (active, backoff, unschedulable, _in_flight) = self.queue.counts();
        metrics::gauge!("scheduler_pending_pods", "queue" => "active").set(active as f64);
        metrics::gauge!("scheduler_pending_pods", "queue" => "backoff").set(backoff as f64);
        metrics::gauge!("scheduler_pending_pods", "queue" => "unschedulable")
            .set(unschedulable as f64);
    }

    async fn schedule(&mut self, qp: QueuedPod) {
        let pod = Arc::clone(&qp.pod);
        let Some(&profile) = self.by_name.get(scheduler_name(&pod)) else {
            self.queue.done(&qp.key);
            return;
        };
        let started = StdInstant::now();
        let result = self.decide(profile, &pod).await;
        let outcome = match &result {
            Ok(_) => "scheduled",
            Err(ScheduleError::Unschedulable(_)) => "unschedulable",
            Err(ScheduleError::Error(_)) => "error",
        };
        let profile_name = self.profiles[profile].scheduler_name.clone();
        metrics::histogram!("scheduler_scheduling_attempt_duration_seconds", "result" => outcome, "profile" => profile_name.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("scheduler_schedule_attempts_total", "result" => outcome, "profile" => profile_name)
            .increment(1);
        let obj = ObjectRef::from(&*pod);
        match result {
            Ok(node) => {
                self.cache.assume(&pod, &node);
                self.queue.done(&qp.key);
                self.spawn_bind(qp, profile, node);
            }
            Err(ScheduleError::Unschedulable(fit)) => {
                let msg = fit.to_string();
                tracing::debug!(pod = %qp.key, %msg, "unschedulable");
                self.recorders[profile].warning(&obj, "FailedScheduling", msg.clone());
                self.set_condition(&pod, "Unschedulable", &msg);
                let events = self.profiles[profile].events_for(&fit.unschedulable_plugins);
                self.queue.unschedulable(&qp, events, Instant::now());
            }
            Err(ScheduleError::Error(msg)) => {
                tracing::warn!(pod = %qp.key, %msg, "scheduling error");
                self.recorders[profile].warning(&obj, "FailedScheduling", msg.clone());
                self.set_condition(&pod, "SchedulerError", &msg);
                self.queue.error(&qp, Instant::now());
            }
        }
    }
}
