//! The resource-metrics storage, as metrics-server's `pkg/storage`: for every node and every
//! pod container the last two points of the cumulative CPU counter, nothing else. Usage is
//! computed at read time: CPU is the counter's rate between the two points, memory the last
//! working set. A pod (or node) is served only once it has two points, i.e. after two scrapes;
//! whatever is missing from the newest scrape (its agent did not answer, the pod is gone) drops
//! out at once. A node whose agent reports the machine's own usage (kubelet's node summary) is
//! served from that; a node without one (sim nodes) as the sum of its pods.
use std::collections::{BTreeMap, HashMap};

use crate::time::{Nanos, NANOS_PER_SEC};

/// One sample of a container: when, its cumulative CPU (core-nanoseconds) and working set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    pub timestamp: Nanos,
    pub cpu_core_nanos: u64,
    pub memory_bytes: u64,
}

/// Namespace and name of a pod.
pub type PodKey = (String, String);

/// One pod as a scrape saw it.
#[derive(Clone, Debug, Default)]
pub struct PodSample {
    pub node: String,
    pub uid: String,
    pub containers: BTreeMap<String, Point>,
}

/// One node as a scrape saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSample {
    /// The node's own sample time, else when its agent's answer arrived.
    pub timestamp: Nanos,
    /// The machine's cumulative CPU and working set, when its agent reports them.
    pub own: Option<Point>,
}

impl NodeSample {
    /// A node whose agent reports no usage of its own: the sum of its pods is served.
    pub fn pods_only(received: Nanos) -> NodeSample {
        NodeSample {
            timestamp: received,
            own: None,
        }
    }
}

/// The result of one scrape of every node.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Every node that answered.
    pub nodes: BTreeMap<String, NodeSample>,
    pub pods: HashMap<PodKey, PodSample>,
}

/// Usage of one container (or a whole pod or node).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_nano_cores: u64,
    pub memory_bytes: u64,
}

impl Usage {
    fn add(&mut self, o: Usage) {
        self.cpu_nano_cores = self.cpu_nano_cores.saturating_add(o.cpu_nano_cores);
        self.memory_bytes = self.memory_bytes.saturating_add(o.memory_bytes);
    }
}

/// A pod's usage as served: per container, with the sample's time and window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodUsage {
    pub timestamp: Nanos,
    pub window: Nanos,
    pub containers: Vec<(String, Usage)>,
}

/// A node's usage as served: its own, or the sum over its pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeUsage {
    pub timestamp: Nanos,
    pub window: Nanos,
    pub usage: Usage,
}

#[derive(Clone, Debug, Default)]
struct PodEntry {
    node: String,
    uid: String,
    last: BTreeMap<String, Point>,
    prev: BTreeMap<String, Point>,
}

/// The last two points of everything scraped.
#[derive(Debug, Default)]
pub struct Storage {
    node_last: HashMap<String, NodeSample>,
    node_prev: HashMap<String, NodeSample>,
    pods: HashMap<PodKey, PodEntry>,
    by_node: HashMap<String, Vec<PodKey>>,
}

/// metrics-server's rule for keeping a previous point: the newer point replaces the stored last
/// one only when it is newer; an unchanged sample (the agent has not sampled again) keeps the
/// stored previous point; a point older than the previous one drops it.
fn previous<T: Copy>(
    new_ts: Nanos,
    last: Option<(Nanos, T)>,
    prev: Option<(Nanos, T)>,
) -> Option<(Nanos, T)> {
    let (last_ts, last_v) = last?;
    if new_ts > last_ts {
        Some((last_ts, last_v))
    } else {
        prev.filter(|(ts, _)| *ts < new_ts)
    }
}

impl Storage {
    /// Replace the stored points with a new scrape (metrics-server's Store).
    pub fn store(&mut self, batch: Batch) {
        let mut node_last = HashMap::with_capacity(batch.nodes.len());
        let mut node_prev = HashMap::with_capacity(batch.nodes.len());
        for (node, sample) in batch.nodes {
            let prev = previous(
                sample.timestamp,
                self.node_last.get(&node).map(|p| (p.timestamp, *p)),
                self.node_prev.get(&node).map(|p| (p.timestamp, *p)),
            );
            // A machine counter that went backwards (a reboot): no rate until the next scrape.
            let reset = |p: &NodeSample| match (sample.own, p.own) {
                (Some(new), Some(old)) => new.cpu_core_nanos < old.cpu_core_nanos,
                _ => false,
            };
            if let Some((_, p)) = prev.filter(|(_, p)| !reset(p)) {
                node_prev.insert(node.clone(), p);
            }
            node_last.insert(node, sample);
        }
        let mut pods = HashMap::with_capacity(batch.pods.len());
        let mut by_node: HashMap<String, Vec<PodKey>> = HashMap::new();
        for (key, sample) in batch.pods {
            let old = self
                .pods
                .remove(&key)
                .filter(|o| o.uid == sample.uid || sample.uid.is_empty());
            let mut prev = BTreeMap::new();
            if let Some(old) = &old {
                for (name, p) in &sample.containers {
                    let last = old.last.get(name).copied();
                    // A counter that went backwards means a restarted container: no rate yet.
                    if last.is_some_and(|l| p.cpu_core_nanos < l.cpu_core_nanos) {
                        continue;
                    }
                    let keep = previous(
                        p.timestamp,
                        last.map(|l| (l.timestamp, l)),
                        old.prev.get(name).map(|l| (l.timestamp, *l)),
                    );
                    if let Some((_, point)) = keep {
                        prev.insert(name.clone(), point);
                    }
                }
            }
            by_node
                .entry(sample.node.clone())
                .or_default()
                .push(key.clone());
            pods.insert(
                key,
                PodEntry {
                    node: sample.node,
                    uid: sample.uid,
                    last: sample.containers,
                    prev,
                },
            );
        }
        self.node_last = node_last;
        self.node_prev = node_prev;
        self.pods = pods;
        self.by_node = by_node;
    }

    /// A pod's usage, once every container of it has two points.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodUsage> {
        let e = self.pods.get(&(namespace.to_string(), name.to_string()))?;
        pod_usage(e)
    }

    /// The node a pod was last scraped on.
    pub fn pod_node(&self, namespace: &str, name: &str) -> Option<&str> {
        self.pods
            .get(&(namespace.to_string(), name.to_string()))
            .map(|e| e.node.as_str())
    }

    /// A node's usage once it has been scraped twice: the machine's own (the rate of its CPU
    /// counter, its last working set) when its agent reports it, else the CPU of its pods that
    /// have a rate and the working set of all of them.
    pub fn node(&self, name: &str) -> Option<NodeUsage> {
        let last = *self.node_last.get(name)?;
        let prev = *self.node_prev.get(name)?;
        match (last.own, prev.own) {
            (Some(l), Some(p)) => {
                let window = l.timestamp - p.timestamp;
                if window <= 0 || l.cpu_core_nanos < p.cpu_core_nanos {
                    return None;
                }
                let delta = i128::from(l.cpu_core_nanos - p.cpu_core_nanos);
                return Some(NodeUsage {
                    timestamp: l.timestamp,
                    window,
                    usage: Usage {
                        cpu_nano_cores: (delta * NANOS_PER_SEC / window).min(i128::from(u64::MAX))
                            as u64,
                        memory_bytes: l.memory_bytes,
                    },
                });
            }
            // Its own usage has one point so far.
            (Some(_), None) => return None,
            _ => {}
        }
        let (last, prev) = (last.timestamp, prev.timestamp);
        let mut usage = Usage::default();
        for key in self.by_node.get(name).into_iter().flatten() {
            let Some(e) = self.pods.get(key) else {
                continue;
            };
            match pod_usage(e) {
                Some(p) => p.containers.iter().for_each(|(_, u)| usage.add(*u)),
                None => {
                    usage.memory_bytes = usage
                        .memory_bytes
                        .saturating_add(e.last.values().map(|p| p.memory_bytes).sum::<u64>())
                }
            }
        }
        Some(NodeUsage {
            timestamp: last,
            window: last - prev,
            usage,
        })
    }

    /// Pods with stored points (served or not yet).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Nodes that answered the last scrape.
    pub fn node_count(&self) -> usize {
        self.node_last.len()
    }
}

/// metrics-server's GetMetrics for one pod: only when every container has a previous point;
/// timestamp and window of the earliest container.
fn pod_usage(e: &PodEntry) -> Option<PodUsage> {
    let mut containers = Vec::with_capacity(e.last.len());
    let mut earliest: Option<(Nanos, Nanos)> = None;
    for (name, last) in &e.last {
        let prev = e.prev.get(name)?;
        let window = last.timestamp - prev.timestamp;
        if window <= 0 || last.cpu_core_nanos < prev.cpu_core_nanos {
            continue;
        }
        let delta = i128::from(last.cpu_core_nanos - prev.cpu_core_nanos);
        let cpu = (delta * NANOS_PER_SEC / window).min(i128::from(u64::MAX)) as u64;
        containers.push((
            name.clone(),
            Usage {
                cpu_nano_cores: cpu,
                memory_bytes: last.memory_bytes,
            },
        ));
        if earliest.is_none_or(|(ts, _)| ts > last.timestamp) {
            earliest = Some((last.timestamp, window));
        }
    }
    let (timestamp, window) = earliest?;
    Some(PodUsage {
        timestamp,
        window,
        containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = NANOS_PER_SEC;

    /// (container, timestamp, cumulative cpu, memory)
    type C<'a> = (&'a str, Nanos, u64, u64);

    fn batch(node_ts: Nanos, pods: &[(&str, &str, &[C])]) -> Batch {
        let mut b = Batch::default();
        b.nodes
            .insert("node1".into(), NodeSample::pods_only(node_ts));
        for (name, uid, cs) in pods {
            let mut s = PodSample {
                node: "node1".into(),
                uid: uid.to_string(),
                ..Default::default()
            };
            for (c, ts, cpu, mem) in cs.iter() {
                s.containers.insert(
                    c.to_string(),
                    Point {
                        timestamp: *ts,
                        cpu_core_nanos: *cpu,
                        memory_bytes: *mem,
                    },
                );
            }
            b.pods.insert(("default".into(), name.to_string()), s);
        }
        b
    }

    #[test]
    fn a_pod_appears_after_two_scrapes_with_the_counter_rate() {
        let mut st = Storage::default();
        st.store(batch(
            10 * S,
            &[("web", "u1", &[("app", 10 * S, 1_000_000_000, 5 << 20)])],
        ));
        assert_eq!(st.pod("default", "web"), None);
        assert_eq!(st.node("node1"), None);
        // 0.25 core-seconds over 1 s: 250m.
        st.store(batch(
            11 * S,
            &[("web", "u1", &[("app", 11 * S, 1_250_000_000, 6 << 20)])],
        ));
        let u = st.pod("default", "web").unwrap();
        assert_eq!(u.timestamp, 11 * S);
        assert_eq!(u.window, S);
        assert_eq!(
            u.containers,
            vec![(
                "app".to_string(),
                Usage {
                    cpu_nano_cores: 250_000_000,
                    memory_bytes: 6 << 20
                }
            )]
        );
        let n = st.node("node1").unwrap();
        assert_eq!(n.usage.cpu_nano_cores, 250_000_000);
        assert_eq!(n.window, S);
    }

    #[test]
    fn an_unchanged_sample_keeps_the_previous_point() {
        let mut st = Storage::default();
        st.store(batch(S, &[("web", "u1", &[("app", 10 * S, 0, 1)])]));
        st.store(batch(
            2 * S,
            &[("web", "u1", &[("app", 12 * S, 1_000_000_000, 1)])],
        ));
        // The agent has not sampled again: same point, the rate stays.
        st.store(batch(
            3 * S,
            &[("web", "u1", &[("app", 12 * S, 1_000_000_000, 1)])],
        ));
        let u = st.pod("default", "web").unwrap();
        assert_eq!(u.containers[0].1.cpu_nano_cores, 500_000_000);
        assert_eq!(u.window, 2 * S);
    }

    #[test]
    fn missing_pods_and_nodes_drop_out_and_restarts_reset() {
        let mut st = Storage::default();
        st.store(batch(S, &[("web", "u1", &[("app", S, 100, 1)])]));
        st.store(batch(2 * S, &[("web", "u1", &[("app", 2 * S, 200, 1)])]));
        assert!(st.pod("default", "web").is_some());
        // The counter went backwards (restart): no rate until the next scrape.
        st.store(batch(3 * S, &[("web", "u1", &[("app", 3 * S, 50, 1)])]));
        assert!(st.pod("default", "web").is_none());
        st.store(batch(4 * S, &[("web", "u1", &[("app", 4 * S, 150, 1)])]));
        assert!(st.pod("default", "web").is_some());
        // Recreated under the same name: starts over.
        st.store(batch(5 * S, &[("web", "u2", &[("app", 5 * S, 500, 1)])]));
        assert!(st.pod("default", "web").is_none());
        // The node did not answer: node and pods are gone.
        st.store(Batch::default());
        assert_eq!(st.pod_count(), 0);
        assert!(st.node("node1").is_none());
    }

    #[test]
    fn every_container_needs_two_points() {
        let mut st = Storage::default();
        st.store(batch(S, &[("web", "u1", &[("a", S, 0, 1)])]));
        st.store(batch(
            2 * S,
            &[("web", "u1", &[("a", 2 * S, 10, 1), ("b", 2 * S, 10, 1)])],
        ));
        assert!(st.pod("default", "web").is_none());
        // The node still counts the pod's memory.
        assert_eq!(st.node("node1").unwrap().usage.memory_bytes, 2);
    }

    fn own(ts: Nanos, cpu: u64, mem: u64) -> Batch {
        let mut b = batch(ts, &[("web", "u1", &[("app", ts, ts as u64 / 10, 7)])]);
        b.nodes.insert(
            "node1".into(),
            NodeSample {
                timestamp: ts,
                own: Some(Point {
                    timestamp: ts,
                    cpu_core_nanos: cpu,
                    memory_bytes: mem,
                }),
            },
        );
        b
    }

    #[test]
    fn a_node_reporting_its_own_usage_is_served_from_it_not_its_pods() {
        let mut st = Storage::default();
        st.store(own(10 * S, 50 * S as u64, 1 << 30));
        assert_eq!(st.node("node1"), None);
        // 3 core-seconds over 2 s: 1500m for the machine; its one pod uses 100m.
        st.store(own(12 * S, 53 * S as u64, 2 << 30));
        let n = st.node("node1").unwrap();
        assert_eq!(n.timestamp, 12 * S);
        assert_eq!(n.window, 2 * S);
        assert_eq!(
            n.usage,
            Usage {
                cpu_nano_cores: 1_500_000_000,
                memory_bytes: 2 << 30
            }
        );
        assert_eq!(
            st.pod("default", "web").unwrap().containers[0]
                .1
                .cpu_nano_cores,
            100_000_000
        );
        // The same sample again (the agent has not sampled since): the rate stays.
        st.store(own(12 * S, 53 * S as u64, 2 << 30));
        assert_eq!(
            st.node("node1").unwrap().usage.cpu_nano_cores,
            1_500_000_000
        );
        // The machine rebooted (counter back near zero): nothing until two points again.
        st.store(own(14 * S, S as u64, 1 << 30));
        assert_eq!(st.node("node1"), None);
        st.store(own(15 * S, 2 * S as u64, 1 << 30));
        assert_eq!(
            st.node("node1").unwrap().usage.cpu_nano_cores,
            1_000_000_000
        );
        // The agent stops reporting its own usage: back to the sum of the pods.
        st.store(batch(
            16 * S,
            &[("web", "u1", &[("app", 16 * S, 16 * S as u64 / 10, 7)])],
        ));
        assert_eq!(st.node("node1").unwrap().usage.cpu_nano_cores, 100_000_000);
    }
}
