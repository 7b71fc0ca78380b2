//! Objects as tests read and write them: a pod's phase, readiness, deletion and node index, and
//! the nginx Deployment several tests run.
use coxswain_api::v1::Pod;
use coxswain_api::Resource;

/// The pod's status.phase ("" before its first status).
pub fn phase(p: &Pod) -> &str {
    p.status.as_ref().map_or("", |s| s.phase.as_str())
}

/// The pod's Ready condition is True.
pub fn ready(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "Ready" && c.status == "True")
    })
}

/// The pod's node as an informer index value (`Informer::index("node", node_index)`): none
/// while it is unscheduled, as the controllers' and the node lifecycle's node indexes.
pub fn node_index(p: &Pod) -> Vec<String> {
    p.spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
        .into_iter()
        .collect()
}

/// The pod is being deleted (it has a deletionTimestamp).
pub fn deleting(p: &Pod) -> bool {
    !p.metadata().deletion_timestamp.is_empty()
}

/// A Deployment `name` of `replicas` nginx pods labelled `app: NAME`, each serving port 80.
pub fn nginx_deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
"
    )
}
