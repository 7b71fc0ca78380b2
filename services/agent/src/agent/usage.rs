//! Usage sampling: every pod's containers and the node itself, every metrics resolution, for
//! the Stats RPC and the resource metrics.
use super::*;

/// The wall clock as RFC 3339 with nanoseconds.
fn now_rfc3339_nanos() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = coxswain_api::time::format_rfc3339(d.as_secs() as i64);
    format!("{}.{:09}Z", secs.trim_end_matches('Z'), d.subsec_nanos())
}

/// Usage of one container over the last window.
#[derive(Clone, Debug, Default)]
pub struct ContainerUsage {
    pub name: String,
    pub cpu_nano_cores: u64,
    pub cpu_core_nanos: u64,
    pub memory_bytes: u64,
}

/// The node's own usage at one sample (kubelet's node summary: the whole machine).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeUsage {
    /// When it was sampled (RFC 3339 with nanoseconds).
    pub time: String,
    /// Average over the last sampling window.
    pub cpu_nano_cores: u64,
    /// Cumulative CPU time of the machine.
    pub cpu_core_nanos: u64,
    pub memory_bytes: u64,
}

#[derive(Clone, Debug, Default)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub time: String,
    pub window: Duration,
    pub containers: Vec<ContainerUsage>,
}

impl<R: Runtime> NodeAgent<R> {
    /// Samples container usage every metrics_resolution.
    ///
    /// (The sample time carries nanoseconds: the metrics pipeline divides by it.)
    pub async fn sample_usage(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.metrics_resolution);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sample_once();
        }
    }

    pub fn sample_once(&self) {
        type Snapshot = (Arc<PodInfo>, Arc<Pod>, Vec<(String, u32, String)>);
        let workers: Vec<Snapshot> = match self.workers.lock() {
            Ok(w) => w
                .values()
                .map(|w| {
                    (
                        w.info.clone(),
                        w.pod.clone(),
                        w.instances
                            .lock()
                            .map(|i| i.current.clone())
                            .unwrap_or_default(),
                    )
                })
                .collect(),
            Err(_) => return,
        };
        let sample_time = now_rfc3339_nanos();
        self.sample_node(&sample_time);
        let mut samples = match self.last_samples.lock() {
            Ok(s) => s,
            Err(_) => return,
        };
        let mut out = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (info, pod, instances) in workers {
            let containers = pod.spec.as_ref().map_or(&[][..], |s| &s.containers[..]);
            let mut pu = PodUsage {
                namespace: info.namespace.clone(),
                name: info.name.clone(),
                uid: info.uid.clone(),
                time: sample_time.clone(),
                window: self.config.metrics_resolution,
                containers: vec![],
            };
            for (name, _attempt, id) in instances {
                let Some(c) = containers.iter().find(|c| c.name == name) else {
                    continue;
                };
                let Some(u) = self.ctx.runtime.usage(&info, c, &id) else {
                    continue;
                };
                // The time of this reading, taken right after it: a rate over a window taken
                // before the loop would be off by however long the thread was descheduled
                // between the two (a 250m sim pod read as 144m on a loaded machine).
                let now = tokio::time::Instant::now();
                seen.insert(id.clone());
                let nano_cores = match samples.get(&id) {
                    Some((t, prev)) if now > *t => {
                        let dt = (now - *t).as_nanos().max(1);
                        ((u.cpu_nanos.saturating_sub(prev.cpu_nanos)) as u128 * 1_000_000_000 / dt)
                            as u64
                    }
                    _ => 0,
                };
                samples.insert(id, (now, u));
                pu.containers.push(ContainerUsage {
                    name,
                    cpu_nano_cores: nano_cores,
                    cpu_core_nanos: u.cpu_nanos,
                    memory_bytes: u.memory_bytes,
                });
            }
            out.insert(info.uid.clone(), pu);
        }
        samples.retain(|id, _| seen.contains(id));
        if let Ok(mut u) = self.usage.lock() {
            *u = out;
        }
    }

    /// Samples the node's own usage, when the runtime reports one.
    fn sample_node(&self, time: &str) {
        let Some(u) = self.ctx.runtime.node_usage() else {
            return;
        };
        let now = tokio::time::Instant::now();
        let Ok(mut last) = self.node_usage.lock() else {
            return;
        };
        let nano_cores = match last.as_ref() {
            Some((t, prev)) if now > *t => {
                let dt = (now - *t).as_nanos().max(1);
                (u.cpu_nanos.saturating_sub(prev.cpu_core_nanos) as u128 * 1_000_000_000 / dt)
                    as u64
            }
            _ => 0,
        };
        *last = Some((
            now,
            NodeUsage {
                time: time.to_string(),
                cpu_nano_cores: nano_cores,
                cpu_core_nanos: u.cpu_nanos,
                memory_bytes: u.memory_bytes,
            },
        ));
    }

    /// The node's own latest usage sample (None on simulated nodes).
    pub fn node_usage(&self) -> Option<NodeUsage> {
        self.node_usage
            .lock()
            .ok()
            .and_then(|u| u.as_ref().map(|(_, n)| n.clone()))
    }

    /// The latest usage sample of every pod.
    pub fn usage(&self) -> Vec<PodUsage> {
        self.usage
            .lock()
            .map(|u| u.values().cloned().collect())
            .unwrap_or_default()
    }
}
