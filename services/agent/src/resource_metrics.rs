//! kubelet's resource metrics (`/metrics/resource`) for the nodes this process hosts, rendered
//! at scrape time from the agents' last usage samples: node, pod and container CPU (cumulative
//! seconds) and memory working set. One process can host many nodes (`--sim-nodes`), so every
//! series carries a `node` label; a node's usage is the sum over its pods.
use coxswain_telemetry::text::{header, sample, Type};

use crate::agent::PodUsage;
use crate::service::Registry;

/// A pod family: name, type, HELP and its value of a pod.
type PodFamily = (&'static str, Type, &'static str, fn(&PodUsage) -> f64);

/// (node name, its pods' usage), rendered in the text format.
pub fn render(nodes: &[(String, Vec<PodUsage>)], out: &mut String) {
    header(
        out,
        "node_cpu_usage_seconds_total",
        Type::Counter,
        "Cumulative cpu time consumed by the node in core-seconds",
    );
    for (node, pods) in nodes {
        let nanos: u64 = pods
            .iter()
            .flat_map(|p| &p.containers)
            .map(|c| c.cpu_core_nanos)
            .sum();
        sample(
            out,
            "node_cpu_usage_seconds_total",
            &[("node", node)],
            nanos as f64 / 1e9,
        );
    }
    header(
        out,
        "node_memory_working_set_bytes",
        Type::Gauge,
        "Current working set of the node in bytes",
    );
    for (node, pods) in nodes {
        let bytes: u64 = pods
            .iter()
            .flat_map(|p| &p.containers)
            .map(|c| c.memory_bytes)
            .sum();
        sample(
            out,
            "node_memory_working_set_bytes",
            &[("node", node)],
            bytes as f64,
        );
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
        for (node, pods) in nodes {
            for p in pods {
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
        for (node, pods) in nodes {
            for p in pods {
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
        let mut nodes: Vec<(String, Vec<PodUsage>)> = self
            .nodes()
            .into_iter()
            .map(|(name, n)| (name, n.usage()))
            .collect();
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        render(&nodes, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ContainerUsage;

    #[test]
    fn node_and_pod_usage_are_sums_of_their_containers() {
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
        render(&[("n1".into(), vec![pod])], &mut out);
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
    }
}
