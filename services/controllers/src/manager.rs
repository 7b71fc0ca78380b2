//! The controller manager: one shared informer per kind (pods, nodes, ReplicaSets, Deployments,
//! DaemonSets, StatefulSets, ControllerRevisions, PVCs, Jobs, CronJobs; Services, Endpoints and
//! EndpointSlices in [`crate::endpoints_ctrl`]), one work queue per
//! controller, event handlers that route changes to the owning controller's queue, and the
//! workers. [`start`] spawns everything and returns at once.
//!
//! Caches are indexed so no reconcile lists all pods: by owner uid (built in), by node
//! ([`NODE_INDEX`]) and, for adoption, the pods/ReplicaSets without a controller by namespace
//! ([`ORPHAN_INDEX`]).
use std::sync::Arc;
use std::time::Duration;

use coxswain_api::v1::{
    ControllerRevision, CronJob, DaemonSet, Deployment, Job, Node, PersistentVolumeClaim, Pod,
    ReplicaSet, StatefulSet,
};
use coxswain_api::Resource;
use coxswain_client::{
    Cache, Client, Event, Informer, RateLimit, Recorder, SharedInformers, WorkQueue,
};

use crate::runtime::{controller_of, key_of, Expectations};

/// Index of pods by spec.nodeName.
pub const NODE_INDEX: &str = "node";
/// Index of objects without a controller ownerReference, by namespace.
pub const ORPHAN_INDEX: &str = "orphan";

/// Every period and back-off of the controllers.
#[derive(Debug, Clone)]
pub struct Config {
    /// Workers per controller.
    pub workers: usize,
    /// How long a controller waits for its own creations/deletions to show up in its cache.
    pub expectations_ttl: Duration,
    /// Per-key retry back-off after a failed reconcile: first delay and cap.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Job pod re-creation back-off after failures (Kubernetes: 10 s doubling, capped at 6 min).
    pub job_backoff_base: Duration,
    pub job_backoff_max: Duration,
    /// Added to the wall clock by the CronJob controller (tests start "in the future" to see a
    /// minute boundary at once); 0 in production.
    pub cron_clock_offset: Duration,
    /// How fast the CronJob controller's clock runs (1.0 = real time; tests use e.g. 30).
    pub cron_clock_rate: f64,
    /// How often every CronJob is looked at at least (it also wakes at its next start time).
    pub cron_resync: Duration,
    /// Component name on Events.
    pub component: String,
    /// Most endpoints in one EndpointSlice (`--max-endpoints-per-slice`).
    pub max_endpoints_per_slice: usize,
    /// Where the local-path provisioner of the default StorageClass makes volume directories.
    pub local_path_dir: std::path::PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 4,
            expectations_ttl: Duration::from_secs(300),
            retry_base: Duration::from_millis(5),
            retry_max: Duration::from_secs(60),
            job_backoff_base: crate::job::DEFAULT_BACKOFF_BASE,
            job_backoff_max: crate::job::DEFAULT_BACKOFF_MAX,
            cron_clock_offset: Duration::ZERO,
            cron_clock_rate: 1.0,
            cron_resync: Duration::from_secs(10),
            component: "controller-manager".into(),
            max_endpoints_per_slice: crate::endpointslice::DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            local_path_dir: std::env::temp_dir().join("coxswain-local-path"),
        }
    }
}

/// One work queue per controller.
#[derive(Clone)]
pub struct Queues {
    pub rs: WorkQueue<String>,
    pub deploy: WorkQueue<String>,
    pub ds: WorkQueue<String>,
    pub sts: WorkQueue<String>,
    pub job: WorkQueue<String>,
    pub cron: WorkQueue<String>,
}

/// What every reconcile gets: the client, the caches, the recorder, the queues and the config.
pub struct Ctx {
    pub client: Client,
    pub cfg: Config,
    /// One event recorder per controller ("replicaset-controller", …), as Kubernetes names
    /// the source of its Events.
    pub recorders: std::collections::HashMap<coxswain_api::Kind, Recorder>,
    /// For kinds without their own recorder.
    pub recorder: Recorder,
    pub pods: Cache<Pod>,
    pub nodes: Cache<Node>,
    pub rs: Cache<ReplicaSet>,
    pub deploys: Cache<Deployment>,
    pub ds: Cache<DaemonSet>,
    pub sts: Cache<StatefulSet>,
    pub revisions: Cache<ControllerRevision>,
    pub pvcs: Cache<PersistentVolumeClaim>,
    pub jobs: Cache<Job>,
    pub cronjobs: Cache<CronJob>,
    pub q: Queues,
    /// Pod creations/deletions in flight, keyed `Kind/namespace/name` of the owner.
    pub exp: Expectations,
    pub job_failures: crate::job_ctrl::FailureClock,
    /// The Endpoints and EndpointSlice controllers.
    pub svc: Arc<crate::endpoints_ctrl::SvcCtx>,
    /// The PersistentVolume controller (its claims cache is [`Ctx::pvcs`]).
    pub volume: Arc<crate::volume_ctrl::VolumeCtx>,
}

impl Ctx {
    /// The recorder of the controller of `kind`.
    pub fn rec(&self, kind: coxswain_api::Kind) -> &Recorder {
        self.recorders.get(&kind).unwrap_or(&self.recorder)
    }

    /// Stop: end every informer's watch (so a server shutting down gracefully is not held
    /// open by them) and shut the queues down (workers finish their current key and exit).
    pub fn stop(&self) {
        self.pods.stop();
        self.nodes.stop();
        self.rs.stop();
        self.deploys.stop();
        self.ds.stop();
        self.sts.stop();
        self.revisions.stop();
        self.pvcs.stop();
        self.jobs.stop();
        self.cronjobs.stop();
        self.svc.stop();
        self.volume.stop();
        for q in [
            &self.q.rs,
            &self.q.deploy,
            &self.q.ds,
            &self.q.sts,
            &self.q.job,
            &self.q.cron,
        ] {
            q.shutdown();
        }
    }

    /// Every cache has its initial list.
    pub async fn wait_synced(&self) {
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
        self.rs.wait_synced().await;
        self.deploys.wait_synced().await;
        self.ds.wait_synced().await;
        self.sts.wait_synced().await;
        self.revisions.wait_synced().await;
        self.pvcs.wait_synced().await;
        self.jobs.wait_synced().await;
        self.cronjobs.wait_synced().await;
        self.svc.wait_synced().await;
    }
}

/// The expectations key of a pod owner.
pub fn exp_key(kind: &str, ns: &str, name: &str) -> String {
    format!("{kind}/{ns}/{name}")
}

fn orphan_ns<R: Resource>(r: &R) -> Vec<String> {
    let m = r.metadata();
    if controller_of(m).is_none() {
        vec![m.namespace.clone()]
    } else {
        vec![]
    }
}

fn enqueue_owner(q: &Queues, exp: &Expectations, pod: &Pod, created: bool, deleted: bool) {
    let Some(m) = pod.metadata.as_ref() else {
        return;
    };
    let Some(owner) = controller_of(m) else {
        return;
    };
    let queue = match owner.kind.as_str() {
        "ReplicaSet" => &q.rs,
        "Job" => &q.job,
        "DaemonSet" => &q.ds,
        "StatefulSet" => &q.sts,
        _ => return,
    };
    let ek = exp_key(&owner.kind, &m.namespace, &owner.name);
    if created {
        exp.creation_observed(&ek);
    }
    if deleted {
        exp.deletion_observed(&ek, &m.uid);
    }
    queue.add(format!("{}/{}", m.namespace, owner.name));
}

fn orphan_pod_changed(
    q: &Queues,
    rs: &Cache<ReplicaSet>,
    sts: &Cache<StatefulSet>,
    ds: &Cache<DaemonSet>,
    pod: &Pod,
) {
    let Some(m) = pod.metadata.as_ref() else {
        return;
    };
    if controller_of(m).is_some() || !m.deletion_timestamp.is_empty() {
        return;
    }
    for r in rs.list_namespace(&m.namespace) {
        if selector_matches(r.spec.as_ref().and_then(|s| s.selector.as_ref()), &m.labels) {
            q.rs.add(key_of(r.metadata()));
        }
    }
    for s in sts.list_namespace(&m.namespace) {
        if selector_matches(s.spec.as_ref().and_then(|s| s.selector.as_ref()), &m.labels) {
            q.sts.add(key_of(s.metadata()));
        }
    }
    for d in ds.list_namespace(&m.namespace) {
        if selector_matches(d.spec.as_ref().and_then(|s| s.selector.as_ref()), &m.labels) {
            q.ds.add(key_of(d.metadata()));
        }
    }
}

/// A label selector (from the API) matches `labels`; an invalid or absent selector matches
/// nothing.
pub fn selector_matches(
    sel: Option<&coxswain_api::v1::LabelSelector>,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    sel.is_some()
        && coxswain_api::selector::LabelSelector::from_proto(sel).is_ok_and(|s| s.matches(labels))
}

/// Build the informers and queues, spawn every controller, and return the shared context.
///
/// The pod informer joins `informers` (in `coxswain up` the process's one pod informer,
/// shared with the scheduler and the node lifecycle controller): the caller starts the
/// factory once every component has registered.
pub fn start(client: Client, cfg: Config, informers: &SharedInformers) -> Arc<Ctx> {
    let rl = RateLimit {
        base: cfg.retry_base,
        max: cfg.retry_max,
    };
    let q = Queues {
        rs: WorkQueue::named(rl, "replicaset"),
        deploy: WorkQueue::named(rl, "deployment"),
        ds: WorkQueue::named(rl, "daemonset"),
        sts: WorkQueue::named(rl, "statefulset"),
        job: WorkQueue::named(rl, "job"),
        cron: WorkQueue::named(rl, "cronjob"),
    };
    let exp = Expectations::new(cfg.expectations_ttl);

    // ReplicaSets and StatefulSets are needed by the pod handler (orphans), so they come first.
    let rs: Cache<ReplicaSet> = {
        let q = q.clone();
        Informer::<ReplicaSet>::new(client.clone())
            .index(ORPHAN_INDEX, orphan_ns)
            .on_event(move |ev: &Event<ReplicaSet>| {
                let objs: Vec<&Arc<ReplicaSet>> = match ev {
                    Event::Added(o) | Event::Deleted(o) => vec![o],
                    Event::Modified { old, new } => vec![old, new],
                    _ => vec![],
                };
                for o in objs {
                    let m = o.metadata();
                    q.rs.add(key_of(m));
                    if let Some(owner) = controller_of(m).filter(|r| r.kind == "Deployment") {
                        q.deploy.add(format!("{}/{}", m.namespace, owner.name));
                    } else if controller_of(m).is_none() {
                        // An orphan may be adopted by a Deployment whose selector matches.
                        q.deploy.add(format!("{}/*", m.namespace));
                    }
                }
            })
            .start()
    };
    let sts: Cache<StatefulSet> = {
        let q = q.clone();
        Informer::<StatefulSet>::new(client.clone())
            .on_event(move |ev: &Event<StatefulSet>| {
                if let Some(o) = obj_of(ev) {
                    q.sts.add(key_of(o.metadata()));
                }
            })
            .start()
    };
    let ds: Cache<DaemonSet> = {
        let q = q.clone();
        Informer::<DaemonSet>::new(client.clone())
            .on_event(move |ev: &Event<DaemonSet>| {
                if let Some(o) = obj_of(ev) {
                    q.ds.add(key_of(o.metadata()));
                }
            })
            .start()
    };
    // Services, Endpoints and EndpointSlices: the pod handler routes to their queues too.
    let svc_parts = crate::endpoints_ctrl::Parts::start(&client, rl);
    // PersistentVolumes: the pod handler routes to their queue too (claims of scheduled pods).
    let volume_parts = crate::volume_ctrl::Parts::start(&client, rl);
    let (claim_index, claims_of) = crate::volume_ctrl::Parts::pod_index();
    let pods: Cache<Pod> = {
        let q = q.clone();
        let exp = exp.clone();
        let rs = rs.clone();
        let sts = sts.clone();
        let ds = ds.clone();
        informers
            .informer::<Pod>()
            .index(NODE_INDEX, |p: &Pod| {
                p.spec
                    .as_ref()
                    .map(|s| s.node_name.clone())
                    .filter(|n| !n.is_empty())
                    .into_iter()
                    .collect()
            })
            .index(ORPHAN_INDEX, orphan_ns)
            .index(
                crate::endpoints_ctrl::LABEL_INDEX,
                crate::endpoints_ctrl::label_pairs,
            )
            .index(claim_index, claims_of)
            .on_event(svc_parts.pod_handler())
            .on_event(volume_parts.pod_handler())
            .on_event(move |ev: &Event<Pod>| match ev {
                Event::Added(p) => {
                    enqueue_owner(&q, &exp, p, true, false);
                    orphan_pod_changed(&q, &rs, &sts, &ds, p);
                }
                Event::Modified { old, new } => {
                    let deleting = new
                        .metadata
                        .as_ref()
                        .is_some_and(|m| !m.deletion_timestamp.is_empty());
                    enqueue_owner(&q, &exp, new, false, deleting);
                    if old.metadata.as_ref().map(|m| &m.owner_references)
                        != new.metadata.as_ref().map(|m| &m.owner_references)
                    {
                        enqueue_owner(&q, &exp, old, false, false);
                    }
                    orphan_pod_changed(&q, &rs, &sts, &ds, new);
                }
                Event::Deleted(p) => enqueue_owner(&q, &exp, p, false, true),
                _ => {}
            })
            .start()
    };
    let nodes: Cache<Node> = {
        let q = q.clone();
        Informer::<Node>::new(client.clone())
            .on_event(move |ev: &Event<Node>| {
                if matches!(ev, Event::Synced) {
                    return;
                }
                // Every DaemonSet re-evaluates which nodes it should run on.
                q.ds.add("*".into());
            })
            .start()
    };
    let deploys: Cache<Deployment> = {
        let q = q.clone();
        Informer::<Deployment>::new(client.clone())
            .on_event(move |ev: &Event<Deployment>| {
                if let Some(o) = obj_of(ev) {
                    q.deploy.add(key_of(o.metadata()));
                }
            })
            .start()
    };
    let revisions: Cache<ControllerRevision> =
        Informer::<ControllerRevision>::new(client.clone()).start();
    // One claim informer for the StatefulSet and PersistentVolume controllers.
    let pvcs: Cache<PersistentVolumeClaim> = volume_parts.claims().clone();
    let jobs: Cache<Job> = {
        let q = q.clone();
        Informer::<Job>::new(client.clone())
            .on_event(move |ev: &Event<Job>| {
                if let Some(o) = obj_of(ev) {
                    let m = o.metadata();
                    q.job.add(key_of(m));
                    if let Some(owner) = controller_of(m).filter(|r| r.kind == "CronJob") {
                        q.cron.add(format!("{}/{}", m.namespace, owner.name));
                    }
                }
            })
            .start()
    };
    let cronjobs: Cache<CronJob> = {
        let q = q.clone();
        Informer::<CronJob>::new(client.clone())
            .on_event(move |ev: &Event<CronJob>| {
                if let Some(o) = obj_of(ev) {
                    q.cron.add(key_of(o.metadata()));
                }
            })
            .start()
    };

    // PersistentVolumes: binding, the local-path provisioner, the default StorageClass.
    let volume = crate::volume_ctrl::start(
        client.clone(),
        volume_parts,
        pods.clone(),
        cfg.local_path_dir.clone(),
        cfg.workers,
    );
    // A `default` ServiceAccount in every namespace.
    crate::serviceaccounts_ctrl::start(client.clone(), rl, cfg.workers);
    // A `kube-root-ca.crt` ConfigMap in every namespace (the pods' projected ca.crt).
    crate::rootca_ctrl::start(client.clone(), rl, cfg.workers);
    // admin, edit and view from the ClusterRoles their aggregationRule selects.
    crate::clusterrole_aggregation_ctrl::start(client.clone(), rl, cfg.workers);
    let recorder = Recorder::new(client.clone(), &cfg.component, "");
    use coxswain_api::Kind;
    let recorders = [
        (Kind::ReplicaSet, "replicaset-controller"),
        (Kind::Deployment, "deployment-controller"),
        (Kind::DaemonSet, "daemonset-controller"),
        (Kind::StatefulSet, "statefulset-controller"),
        (Kind::Job, "job-controller"),
        (Kind::CronJob, "cronjob-controller"),
    ]
    .into_iter()
    .map(|(k, name)| (k, Recorder::new(client.clone(), name, "")))
    .collect();
    let svc = Arc::new(crate::endpoints_ctrl::SvcCtx {
        client: client.clone(),
        parts: svc_parts,
        pods: pods.clone(),
        nodes: nodes.clone(),
        max_endpoints_per_slice: cfg.max_endpoints_per_slice,
    });
    let ctx = Arc::new(Ctx {
        client,
        cfg,
        recorders,
        recorder,
        pods,
        nodes,
        rs,
        deploys,
        ds,
        sts,
        revisions,
        pvcs,
        jobs,
        cronjobs,
        q,
        exp,
        job_failures: Default::default(),
        svc,
        volume,
    });

    let workers = ctx.cfg.workers;
    let c = ctx.clone();
    tokio::spawn(async move {
        c.wait_synced().await;
        tracing::info!("controllers: caches synced, starting workers");
        macro_rules! spawn_ctrl {
            ($name:literal, $queue:expr, $f:path) => {{
                let c2 = c.clone();
                tokio::spawn(crate::runtime::run(
                    $name,
                    $queue.clone(),
                    workers,
                    move |k| {
                        let c3 = c2.clone();
                        async move { $f(c3, k).await }
                    },
                ));
            }};
        }
        spawn_ctrl!("replicaset", c.q.rs, crate::replicaset_ctrl::reconcile);
        spawn_ctrl!("deployment", c.q.deploy, crate::deployment_ctrl::reconcile);
        spawn_ctrl!("job", c.q.job, crate::job_ctrl::reconcile);
        spawn_ctrl!("daemonset", c.q.ds, crate::daemonset_ctrl::reconcile);
        spawn_ctrl!("statefulset", c.q.sts, crate::statefulset_ctrl::reconcile);
        spawn_ctrl!("cronjob", c.q.cron, crate::cronjob_ctrl::reconcile);
        c.svc.spawn(workers);
        // Enqueue everything once the caches are complete (events before sync were queued too).
        for o in c.rs.list() {
            c.q.rs.add(key_of(o.metadata()));
        }
        for o in c.deploys.list() {
            c.q.deploy.add(key_of(o.metadata()));
        }
        for o in c.jobs.list() {
            c.q.job.add(key_of(o.metadata()));
        }
        for o in c.ds.list() {
            c.q.ds.add(key_of(o.metadata()));
        }
        for o in c.sts.list() {
            c.q.sts.add(key_of(o.metadata()));
        }
        // CronJobs are time driven: look at all of them periodically.
        loop {
            for o in c.cronjobs.list() {
                c.q.cron.add(key_of(o.metadata()));
            }
            tokio::time::sleep(c.cfg.cron_resync).await;
        }
    });
    ctx
}

fn obj_of<R>(ev: &Event<R>) -> Option<&Arc<R>> {
    match ev {
        Event::Added(o) | Event::Deleted(o) => Some(o),
        Event::Modified { new, .. } => Some(new),
        _ => None,
    }
}
