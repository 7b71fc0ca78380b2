//! Builders for tests: nodes and pods with just the fields a case needs.
use std::collections::BTreeMap;
use std::sync::Arc;

use coxswain_api::v1;

use crate::snapshot::{NodeInfo, Snapshot};

pub fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn node(name: &str, kv: &[(&str, &str)]) -> v1::Node {
    v1::Node {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            labels: labels(kv),
            ..Default::default()
        }),
        spec: Some(v1::NodeSpec::default()),
        status: Some(v1::NodeStatus {
            allocatable: labels(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn with_alloc(mut n: v1::Node, kv: &[(&str, &str)]) -> v1::Node {
    n.status.as_mut().unwrap().allocatable = labels(kv);
    n
}

pub fn taint(key: &str, value: &str, effect: &str) -> v1::Taint {
    v1::Taint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
        ..Default::default()
    }
}

pub fn with_taints(mut n: v1::Node, taints: Vec<v1::Taint>) -> v1::Node {
    n.spec.as_mut().unwrap().taints = taints;
    n
}

pub fn pod(name: &str, kv: &[(&str, &str)]) -> v1::Pod {
    v1::Pod {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            labels: labels(kv),
            ..Default::default()
        }),
        spec: Some(v1::PodSpec {
            containers: vec![v1::Container {
                name: "c".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn container(requests: &[(&str, &str)]) -> v1::Container {
    v1::Container {
        name: "c".into(),
        resources: Some(v1::ResourceRequirements {
            requests: labels(requests),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn spec(p: &mut v1::Pod) -> &mut v1::PodSpec {
    p.spec.get_or_insert_with(Default::default)
}

pub fn on(mut p: v1::Pod, node: &str) -> v1::Pod {
    spec(&mut p).node_name = node.into();
    p
}

pub fn affinity(p: &mut v1::Pod) -> &mut v1::Affinity {
    spec(p).affinity.get_or_insert_with(Default::default)
}

pub fn req(key: &str, op: &str, values: &[&str]) -> v1::NodeSelectorRequirement {
    v1::NodeSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

pub fn selector(kv: &[(&str, &str)]) -> v1::LabelSelector {
    v1::LabelSelector {
        match_labels: labels(kv),
        ..Default::default()
    }
}

pub fn pod_term(kv: &[(&str, &str)], topology_key: &str) -> v1::PodAffinityTerm {
    v1::PodAffinityTerm {
        label_selector: Some(selector(kv)),
        topology_key: topology_key.into(),
        ..Default::default()
    }
}

pub fn snapshot(nodes: Vec<v1::Node>, pods: Vec<v1::Pod>) -> Snapshot {
    Snapshot::new(
        nodes.into_iter().map(Arc::new),
        pods.into_iter().map(Arc::new),
    )
}

pub fn info(n: v1::Node, pods: Vec<v1::Pod>) -> NodeInfo {
    let mut ni = NodeInfo::new(Arc::new(n));
    for p in pods {
        ni.add_pod(Arc::new(p));
    }
    ni
}
