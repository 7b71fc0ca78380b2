//! `coxswain-bench scheduler`: a scheduler_perf-like benchmark. N nodes, P pods per workload:
//! - `basic`: requests 100m/500Mi (scheduler_perf's SchedulingBasic pod);
//! - `node-affinity`: required node affinity zone In [zone1, zone2] (half the zones match);
//! - `taint`: a third of the nodes tainted NoSchedule, a third PreferNoSchedule; half the pods
//!   tolerate the NoSchedule taint;
//! - `anti-affinity`: required pod anti-affinity on kubernetes.io/hostname within 4 groups
//!   (every pod fits: P/4 ≤ N per group);
//! - `affinity`: required pod affinity on the zone against its own group (10 groups);
//! - `preferred`: preferred pod affinity (zone) and preferred node affinity.
//!
//! `--mode in-process`: the framework, the incremental cache with assume and the queue, no I/O
//! (pods/s from the first pod queued to the last assumed). `--mode e2e`: against a running
//! `coxswain up` (`--server`): create the nodes, then the pods through the store with many
//! clients, and time from the first create to the last pod seen bound on a watch.
//!
//! The bench client shares the machine's cores with the store and the scheduler, so in e2e it
//! decodes no more than it reads: a create's answer is checked for its status, not decoded into
//! a Pod, and a watched pod is decoded as [`PodBinding`] (its name and `spec.nodeName`; prost
//! skips the other fields without allocating). The store sends exactly what it sends to any
//! client; only the client's own CPU per pod is smaller.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use coxswain_api::v1;
use coxswain_client::{Client, ListParams};
use coxswain_scheduler::cache::SchedulerCache;
use coxswain_scheduler::framework::{schedule_one_observed, Profile};
use coxswain_scheduler::metrics::Observer;
use coxswain_scheduler::queue::{QueueConfig, SchedulingQueue};
use tokio_stream::StreamExt;

pub const WORKLOADS: &[&str] = &[
    "basic",
    "node-affinity",
    "taint",
    "anti-affinity",
    "affinity",
    "preferred",
];

const ZONES: usize = 10;
const HOST: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

fn map(kv: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The cluster's nodes for a workload.
pub fn nodes(workload: &str, n: usize) -> Vec<v1::Node> {
    (0..n)
        .map(|i| {
            let name = format!("node-{i:05}");
            let zone = format!("zone{}", i % ZONES + 1);
            let mut taints = vec![];
            if workload == "taint" {
                match i % 3 {
                    0 => taints.push(v1::Taint {
                        key: "dedicated".into(),
                        value: "infra".into(),
                        effect: "NoSchedule".into(),
                        ..Default::default()
                    }),
                    1 => taints.push(v1::Taint {
                        key: "spot".into(),
                        effect: "PreferNoSchedule".into(),
                        ..Default::default()
                    }),
                    _ => {}
                }
            }
            v1::Node {
                api_version: "v1".into(),
                kind: "Node".into(),
                metadata: Some(v1::ObjectMeta {
                    name: name.clone(),
                    labels: map(&[(HOST, &name), (ZONE, &zone)]),
                    ..Default::default()
                }),
                spec: Some(v1::NodeSpec {
                    taints,
                    ..Default::default()
                }),
                status: Some(v1::NodeStatus {
                    capacity: map(&[("cpu", "4"), ("memory", "32Gi"), ("pods", "110")]),
                    allocatable: map(&[("cpu", "4"), ("memory", "32Gi"), ("pods", "110")]),
                    conditions: vec![v1::Condition {
                        r#type: "Ready".into(),
                        status: "True".into(),
                        last_heartbeat_time: coxswain_api::time::now_rfc3339(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }
        })
        .collect()
}

fn term(labels: &[(&str, &str)], key: &str) -> v1::PodAffinityTerm {
    v1::PodAffinityTerm {
        label_selector: Some(v1::LabelSelector {
            match_labels: map(labels),
            ..Default::default()
        }),
        topology_key: key.into(),
        ..Default::default()
    }
}

/// Pod `i` of a workload.
pub fn pod(workload: &str, ns: &str, i: usize) -> v1::Pod {
    let mut labels = vec![("app".to_string(), "bench".to_string())];
    let mut spec = v1::PodSpec {
        containers: vec![v1::Container {
            name: "c".into(),
            image: "registry.k8s.io/pause:3.9".into(),
            resources: Some(v1::ResourceRequirements {
                requests: map(&[("cpu", "100m"), ("memory", "500Mi")]),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut aff = v1::Affinity::default();
    match workload {
        "node-affinity" => {
            aff.node_affinity = Some(v1::NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(v1::NodeSelector {
                    node_selector_terms: vec![v1::NodeSelectorTerm {
                        match_expressions: vec![v1::NodeSelectorRequirement {
                            key: ZONE.into(),
                            operator: "In".into(),
                            values: vec!["zone1".into(), "zone2".into()],
                        }],
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            });
        }
        "taint" if i.is_multiple_of(2) => {
            spec.tolerations = vec![v1::Toleration {
                key: "dedicated".into(),
                operator: "Equal".into(),
                value: "infra".into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            }];
        }
        "anti-affinity" => {
            let g = format!("g{}", i % 4);
            labels.push(("group".into(), g.clone()));
            aff.pod_anti_affinity = Some(v1::PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: vec![term(
                    &[("group", &g)],
                    HOST,
                )],
                ..Default::default()
            });
        }
        "affinity" => {
            let g = format!("g{}", i % 10);
            labels.push(("group".into(), g.clone()));
            aff.pod_affinity = Some(v1::PodAffinity {
                required_during_scheduling_ignored_during_execution: vec![term(
                    &[("group", &g)],
                    ZONE,
                )],
                ..Default::default()
            });
        }
        "preferred" => {
            let g = format!("g{}", i % 10);
            labels.push(("group".into(), g.clone()));
            aff.pod_affinity = Some(v1::PodAffinity {
                preferred_during_scheduling_ignored_during_execution: vec![
                    v1::WeightedPodAffinityTerm {
                        weight: 10,
                        pod_affinity_term: Some(term(&[("group", &g)], ZONE)),
                    },
                ],
                ..Default::default()
            });
            aff.node_affinity = Some(v1::NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: vec![
                    v1::PreferredSchedulingTerm {
                        weight: 5,
                        preference: Some(v1::NodeSelectorTerm {
                            match_expressions: vec![v1::NodeSelectorRequirement {
                                key: ZONE.into(),
                                operator: "In".into(),
                                values: vec![format!("zone{}", i % ZONES + 1)],
                            }],
                            ..Default::default()
                        }),
                    },
                ],
                ..Default::default()
            });
        }
        _ => {}
    }
    if aff != v1::Affinity::default() {
        spec.affinity = Some(aff);
    }
    spec.scheduler_name = "default-scheduler".into();
    v1::Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: Some(v1::ObjectMeta {
            name: format!("{workload}-{i:06}"),
            namespace: ns.into(),
            labels: labels.into_iter().collect(),
            ..Default::default()
        }),
        spec: Some(spec),
        status: None,
    }
}

/// Existing pod `i` of `existing` bound before a run (`--existing-pods`): namespace
/// `existing`, label `app=existing-<i % 50>`, bound round-robin to the `n` nodes; every tenth
/// has a required anti-affinity on the hostname against its own app. The workloads' pods
/// never match these (other namespace and labels), but InterPodAffinity must still account
/// them: they are the "30,000 existing pods" of issue 17.
pub fn existing_pod(i: usize, n: usize) -> v1::Pod {
    let app = format!("existing-{}", i % 50);
    let mut p = pod("basic", "existing", i);
    let meta = p.metadata.as_mut().expect("set");
    meta.name = format!("existing-{i:06}");
    meta.labels = map(&[("app", &app)]);
    let spec = p.spec.as_mut().expect("set");
    spec.node_name = format!("node-{:05}", i % n.max(1));
    if i.is_multiple_of(10) {
        spec.affinity = Some(v1::Affinity {
            pod_anti_affinity: Some(v1::PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: vec![term(
                    &[("app", &app)],
                    HOST,
                )],
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    p
}

/// In-process: (pods placed, seconds), with `existing` pods bound before the clock starts
/// ([`existing_pod`]). With `BENCH_FRAMEWORK_METRICS=PERCENT` in the
/// environment the cycles record the framework metrics as the scheduler's loop does (a real
/// Prometheus recorder, plugin calls timed in PERCENT % of the cycles); without it, none.
pub fn in_process(workload: &str, n: usize, p: usize, existing: usize) -> (usize, f64) {
    let profile = Profile::default_profile();
    let mut obs = match std::env::var("BENCH_FRAMEWORK_METRICS") {
        Ok(pct) => {
            static INSTALL: std::sync::Once = std::sync::Once::new();
            INSTALL.call_once(|| {
                let _ = coxswain_telemetry::install("bench");
            });
            Observer::new(&profile.scheduler_name, pct.parse().unwrap_or(10))
        }
        Err(_) => Observer::off(),
    };
    let mut cache = SchedulerCache::new();
    for node in nodes(workload, n) {
        cache.upsert_node(Arc::new(node));
    }
    for i in 0..existing {
        cache.upsert_pod(Arc::new(existing_pod(i, n)));
    }
    let pods: Vec<Arc<v1::Pod>> = (0..p)
        .map(|i| Arc::new(pod(workload, "bench", i)))
        .collect();
    let mut queue = SchedulingQueue::new(QueueConfig::default());
    let start = Instant::now();
    let now = tokio::time::Instant::now();
    for pd in pods {
        queue.add(pd, now);
    }
    let mut next = 0;
    let mut placed = 0;
    while let Some(qp) = queue.pop() {
        // As the scheduler's loop runs a cycle: totals only, no per-plugin score breakdown.
        match schedule_one_observed(
            &profile,
            cache.snapshot(),
            &qp.pod,
            &mut next,
            false,
            &mut obs,
        ) {
            Ok(r) => {
                cache.assume(&qp.pod, &r.node);
                queue.done(&qp.key);
                placed += 1;
            }
            Err(_) => queue.done(&qp.key),
        }
    }
    (placed, start.elapsed().as_secs_f64())
}

/// What the e2e bench reads of a watched pod (`coxswain.v1.Pod` field numbers): its name and
/// node.
#[derive(Clone, PartialEq, prost::Message)]
struct PodBinding {
    #[prost(message, optional, tag = "3")]
    metadata: Option<NameOnly>,
    #[prost(message, optional, tag = "4")]
    spec: Option<NodeNameOnly>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct NameOnly {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct NodeNameOnly {
    #[prost(string, tag = "12")]
    node_name: String,
}

/// Create `pod`, reading only the status of the answer (the store answers with the created
/// object; the bench does not need it).
async fn create_pod(c: &Client, pod: &v1::Pod) -> anyhow::Result<()> {
    use prost::Message;
    c.raw()
        .create(coxswain_client::trace::outgoing(
            coxswain_api::v1::CreateRequest {
                object: Some(prost_types::Any {
                    type_url: coxswain_api::Kind::Pod.type_url(),
                    value: pod.encode_to_vec(),
                }),
                dry_run: false,
            },
        ))
        .await?;
    Ok(())
}

/// End to end through a running `coxswain up`: (pods bound, seconds).
pub async fn e2e(
    server: &str,
    workload: &str,
    n: usize,
    p: usize,
    clients: usize,
    create_nodes: bool,
) -> anyhow::Result<(usize, f64)> {
    let client = Client::connect(server).await.context("connecting")?;
    if create_nodes {
        // Nodes already there with the workload's labels and taints are left alone, so a run
        // against a cluster set up by an earlier one (`--pods 0`) writes nothing before the
        // clock starts; the others are created, or updated to this workload's spec.
        let (have, _) = client.list::<v1::Node>("", &ListParams::default()).await?;
        let have: std::collections::HashMap<String, v1::Node> = have
            .into_iter()
            .filter_map(|nd| Some((nd.metadata.as_ref()?.name.clone(), nd)))
            .collect();
        let ns: Vec<v1::Node> = nodes(workload, n)
            .into_iter()
            .filter(|nd| {
                let m = nd.metadata.as_ref().expect("set");
                !have.get(&m.name).is_some_and(|h| {
                    h.metadata.as_ref().is_some_and(|hm| hm.labels == m.labels)
                        && h.spec.as_ref().map(|s| &s.taints) == nd.spec.as_ref().map(|s| &s.taints)
                })
            })
            .collect();
        let n = ns.len();
        let chunks: Vec<Vec<v1::Node>> = ns
            .chunks(n.div_ceil(16).max(1))
            .map(|c| c.to_vec())
            .collect();
        let mut tasks = Vec::new();
        for chunk in chunks {
            let c = client.clone();
            tasks.push(tokio::spawn(async move {
                for node in chunk {
                    match c.create(&node).await {
                        Ok(_) => {}
                        Err(e) if e.is_already_exists() => {
                            let mut cur = c
                                .get::<v1::Node>("", node.metadata.as_ref().unwrap().name.as_str())
                                .await?
                                .context("node vanished")?;
                            cur.spec = node.spec.clone();
                            c.update(&cur).await?;
                        }
                        Err(e) => return Err(anyhow::Error::from(e)),
                    }
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
    }
    let ns = format!("bench-{workload}");
    let nsobj = v1::Namespace {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        metadata: Some(v1::ObjectMeta {
            name: ns.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    match client.create(&nsobj).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e.into()),
    }
    // Watch the namespace's pods from now on; count first-seen bindings.
    let (_, rv) = client.list::<v1::Pod>(&ns, &ListParams::default()).await?;
    let mut stream = client
        .raw()
        .watch(coxswain_client::trace::outgoing(v1::WatchRequest {
            kind: coxswain_api::Kind::Pod.as_str().into(),
            namespace: ns.clone(),
            resource_version: rv,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let pods: Vec<v1::Pod> = (0..p).map(|i| pod(workload, &ns, i)).collect();
    let per = p.div_ceil(clients.max(1)).max(1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for chunk in pods.chunks(per) {
        let c = client.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for pd in chunk {
                create_pod(&c, &pd).await?;
            }
            anyhow::Ok(())
        }));
    }
    let mut bound = std::collections::HashSet::new();
    let deadline = start + Duration::from_secs(600);
    while bound.len() < p {
        let ev = tokio::time::timeout_at(deadline.into(), stream.next())
            .await
            .context("timed out waiting for bindings")?;
        let Some(ev) = ev else {
            anyhow::bail!("watch ended");
        };
        let ev = ev?;
        if !matches!(ev.r#type.as_str(), "ADDED" | "MODIFIED") {
            continue;
        }
        let Some(any) = ev.object else { continue };
        let pd = <PodBinding as prost::Message>::decode(any.value.as_slice())
            .context("decoding a watched pod")?;
        if pd.spec.is_some_and(|s| !s.node_name.is_empty()) {
            bound.insert(pd.metadata.map(|m| m.name).unwrap_or_default());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    for t in tasks {
        t.await??;
    }
    Ok((bound.len(), secs))
}
