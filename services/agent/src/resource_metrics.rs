//! kubelet's resource metrics (`/metrics/resource`) for the nodes this process hosts, rendered
//! at scrape time from the agents' last usage samples: node, pod and container CPU (cumulative
//! seconds) and memory working set. One process can host many nodes (`--sim-nodes`), so every
//! series carries a `node` label; a node's usage is the machine's own (/proc/stat, /proc/meminfo)
//! on the process runtime, and the sum over its pods on simulated nodes.
use coxswain_telemetry::text::{header, sample, Type};

use crate::agent::{NodeUsage, PodUsage};
use crate::service::Registry;

/// A pod family: name, type, HELP and its value of a pod.
type PodFamily = (&'static str, Type, &'static str, fn(&PodUsage) -> f64);

/// One node as rendered: its name, its own usage when the runtime reports the machine's (the
/// process runtime, as kubelet's node summary), and its pods' usage.
pub struct NodeSample {
    pub name: String,
    pub own: Option<NodeUsage>,
    pub pods: Vec<PodUsage>,
}

impl NodeSample {
    /// (cumulative CPU nanoseconds, working set bytes): the machine's own when reported, else
    /// the sum over the node's pods (simulated nodes).
    fn usage(&self) -> (u64, u64) {
        if let Some(u) = &self.own {
            return (u.cpu_core_nanos, u.memory_bytes);
        }
        self.pods
            .iter()
            .flat_map(|p| &p.containers)
            .fold((0, 0), |(c, m), x| {
                (c + x.cpu_core_nanos, m + x.memory_bytes)
            })
    }
}

/// Every node's series, in the text format.
pub fn render(nodes: &[NodeSample], out: &mut String) {
    let node_families: [(&str, Type, &str, bool); 2] = [
        (
            "node_cpu_usage_seconds_total",
            Type::Counter,
            "Cumulative cpu time consumed by the node in core-seconds",
            true,
        ),
        (
            "node_memory_working_set_bytes",
            Type::Gauge,
            "Current working set of the node in bytes",
            false,
        ),
    ];
    for (name, typ, help, cpu) in node_families {
        header(out, name, typ, help);
        for n in nodes {
            let (cpu_nanos, bytes) = n.usage();
            let v = if cpu {
                cpu_nanos as f64 / 1e9
            } else {
                bytes as f64
            };
            sample(out, name, &[("node", &n.name)], v);
        }
    }
    let pod_families: [PodFamily; 2] = [
        (
            "pod_cpu_usage_seconds_total",
            Type::Counter,
            "Cumulative cpu time consumed by the pod in core-seconds",
            |p| p.containers.iter().map(|c| c.cpu_core_nanos).sum::<u64>() as f64 / 1e9,
        ),
        (
            "pod_memory_working_set_bytes",
            Type::Gauge,
            "Current working set of the pod in bytes",
            |p| p.containers.iter().map(|c| c.memory_bytes).sum::<u64>() as f64,
        ),
    ];
    for (name, typ, help, value) in pod_families {
        header(out, name, typ, help);
        for n in nodes {
            let node = &n.name;
            for p in &n.pods {
                sample(
                    out,
                    name,
                    &[
                        ("node", node),
                        ("namespace", &p.namespace),
                        ("pod", &p.name),
                    ],
                    value(p),
                );
            }
        }
    }
    let container_families: [(&str, Type, &str, bool); 2] = [
        (
            "container_cpu_usage_seconds_total",
            Type::Counter,
            "Cumulative cpu time consumed by the container in core-seconds",
            true,
        ),
        (
            "container_memory_working_set_bytes",
            Type::Gauge,
            "Current working set of the container in bytes",
            false,
        ),
    ];
    for (name, typ, help, cpu) in container_families {
        header(out, name, typ, help);
        for n in nodes {
            let node = &n.name;
            for p in &n.pods {
                for c in &p.containers {
                    let v = if cpu {
                        c.cpu_core_nanos as f64 / 1e9
                    } else {
                        c.memory_bytes as f64
                    };
                    sample(
                        out,
                        name,
                        &[
                            ("node", node),
                            ("namespace", &p.namespace),
                            ("pod", &p.name),
                            ("container", &c.name),
                        ],
                        v,
                    );
                }
            }
        }
    }
}

impl coxswain_telemetry::Collector for Registry {
    fn collect(&self, out: &mut String) {
        let mut nodes: Vec<NodeSample> = self
            .nodes()
            .into_iter()
            .map(|(name, n)| NodeSample {
                name,
                own: n.node_usage(),
                pods: n.usage(),
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        render(&nodes, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ContainerUsage;

    #[test]
    fn node_usage_is_the_machines_or_the_sum_of_its_pods() {
        let pod = PodUsage {
            namespace: "default".into(),
            name: "web-1".into(),
            containers: vec![
                ContainerUsage {
                    name: "a".into(),
                    cpu_core_nanos: 1_500_000_000,
                    memory_bytes: 1000,
                    ..Default::default()
                },
                ContainerUsage {
                    name: "b".into(),
                    cpu_core_nanos: 500_000_000,
                    memory_bytes: 24,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut out = String::new();
        let n1 = NodeSample {
            name: "n1".into(),
            own: None,
            pods: vec![pod.clone()],
        };
        render(&[n1], &mut out);
        assert!(
            out.contains("node_cpu_usage_seconds_total{node=\"n1\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("node_memory_working_set_bytes{node=\"n1\"} 1024\n"),
            "{out}"
        );
        assert!(out.contains(
            "pod_cpu_usage_seconds_total{node=\"n1\",namespace=\"default\",pod=\"web-1\"} 2\n"
        ));
        assert!(out.contains("container_memory_working_set_bytes{node=\"n1\",namespace=\"default\",pod=\"web-1\",container=\"b\"} 24\n"));
        assert_eq!(out.matches("# HELP").count(), 6);

        // A node whose runtime reports the machine's usage shows that, not its pods' sum.
        let mut out = String::new();
        let n2 = NodeSample {
            name: "n2".into(),
            own: Some(NodeUsage {
                time: String::new(),
                cpu_nano_cores: 0,
                cpu_core_nanos: 7_250_000_000,
                memory_bytes: 4096,
            }),
            pods: vec![pod],
        };
        render(&[n2], &mut out);
        assert!(
            out.contains("node_cpu_usage_seconds_total{node=\"n2\"} 7.25\n"),
            "{out}"
        );
        assert!(
            out.contains("node_memory_working_set_bytes{node=\"n2\"} 4096\n"),
            "{out}"
        );
        assert!(out.contains(
            "pod_cpu_usage_seconds_total{node=\"n2\",namespace=\"default\",pod=\"web-1\"} 2\n"
        ));
    }
}
