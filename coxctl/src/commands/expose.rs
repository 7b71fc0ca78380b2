//! `coxctl expose (deployment|rs|rc|pod|svc) NAME`: a Service for an object, as kubectl's
//! `expose` builds it — selector from the object (pod labels, a workload's matchLabels, a
//! Service's selector), ports and their protocols from its containers (or Service ports) unless
//! `--port` is given, `port-N` names when there are several, targetPort `--target-port` or the
//! port, labels copied from the object, name `--name` or the object's.
use std::collections::BTreeMap;

use clap::Args;
use coxswain_api::v1::{
    ContainerPort, IntOrString, ObjectMeta, PodSpec, Service, ServicePort, ServiceSpec,
};
use coxswain_api::{Kind, Object};

use crate::client::{other, Client, Result};
use crate::output::name_line;

#[derive(Debug, Args)]
pub struct ExposeArgs {
    /// TYPE NAME or TYPE/NAME: deployment, replicaset, replicationcontroller, pod or service.
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The port the Service serves on (default: the object's ports).
    #[arg(long)]
    pub port: Option<String>,
    /// The port (number or name) on the pods the Service sends traffic to (default: --port).
    #[arg(long)]
    pub target_port: Option<String>,
    /// ClusterIP, NodePort, LoadBalancer or ExternalName (default ClusterIP).
    #[arg(long = "type")]
    pub service_type: Option<String>,
    /// The Service's name (default: the object's).
    #[arg(long)]
    pub name: Option<String>,
    /// The label selector (key=value,...) for the Service (default: the object's).
    #[arg(long, short = 'l')]
    pub selector: Option<String>,
    /// TCP, UDP or SCTP (default: the object's port protocols, else TCP).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Labels for the Service (key=value,...; default: the object's).
    #[arg(long)]
    pub labels: Option<String>,
    /// ClusterIP to assign ("None" for a headless Service).
    #[arg(long)]
    pub cluster_ip: Option<String>,
    /// An external IP the Service also accepts traffic on.
    #[arg(long)]
    pub external_ip: Option<String>,
    /// None or ClientIP.
    #[arg(long)]
    pub session_affinity: Option<String>,
}

fn parse_map(s: &str, what: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for pair in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| other(format!("invalid {what}: {pair:?}")))?;
        m.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(m)
}

fn container_ports(spec: Option<&PodSpec>) -> Vec<ContainerPort> {
    spec.map(|s| s.containers.iter().flat_map(|c| c.ports.clone()).collect())
        .unwrap_or_default()
}

/// kubectl's canBeExposed + MapBasedSelectorForObject + PortsForObject + ProtocolsForObject +
/// labels: (selector, [(port, protocol)], labels) of the object.
type Introspected = (
    BTreeMap<String, String>,
    Vec<(i32, String)>,
    BTreeMap<String, String>,
);

fn introspect(obj: &Object) -> Result<Introspected> {
    let from_containers = |ps: Vec<ContainerPort>| -> Vec<(i32, String)> {
        ps.into_iter()
            .map(|p| {
                let proto = if p.protocol.is_empty() {
                    "TCP".into()
                } else {
                    p.protocol
                };
                (p.container_port, proto)
            })
            .collect()
    };
    let labels = obj.meta().labels.clone();
    let workload = |sel: Option<&coxswain_api::v1::LabelSelector>, kind: &str| {
        let sel = sel.cloned().unwrap_or_default();
        if !sel.match_expressions.is_empty() {
            return Err(other(format!(
                "couldn't convert expressions - {:?} to map-based selector format",
                sel.match_expressions
                    .iter()
                    .map(|e| format!("{} {} {:?}", e.key, e.operator, e.values))
                    .collect::<Vec<_>>()
            )));
        }
        if sel.match_labels.is_empty() {
            return Err(other(format!("the {kind} has no pod selector set")));
        }
        Ok(sel.match_labels)
    };
    match obj {
        Object::Pod(p) => {
            if labels.is_empty() {
                return Err(other("the pod has no labels and cannot be exposed"));
            }
            let ports = from_containers(container_ports(p.spec.as_ref()));
            Ok((labels.clone(), ports, labels))
        }
        Object::Service(s) => {
            let spec = s.spec.clone().unwrap_or_default();
            if spec.selector.is_empty() {
                return Err(other("the service has no pod selector set"));
            }
            let ports = spec
                .ports
                .iter()
                .map(|p| {
                    let proto = if p.protocol.is_empty() {
                        "TCP".into()
                    } else {
                        p.protocol.clone()
                    };
                    (p.port, proto)
                })
                .collect();
            Ok((spec.selector, ports, labels))
        }
        Object::Deployment(d) => {
            let spec = d.spec.clone().unwrap_or_default();
            let sel = workload(spec.selector.as_ref(), "deployment")?;
            let ports = from_containers(container_ports(
                spec.template.as_ref().and_then(|t| t.spec.as_ref()),
            ));
            Ok((sel, ports, labels))
        }
        Object::ReplicaSet(r) => {
            let spec = r.spec.clone().unwrap_or_default();
            let sel = workload(spec.selector.as_ref(), "replica set")?;
            let ports = from_containers(container_ports(
                spec.template.as_ref().and_then(|t| t.spec.as_ref()),
            ));
            Ok((sel, ports, labels))
        }
        other_kind => Err(other(format!(
            "cannot expose a {}",
            expose_kind_name(other_kind.kind())
        ))),
    }
}

/// kubectl's "Kind.group" in `cannot expose a StatefulSet.apps`.
fn expose_kind_name(kind: Kind) -> String {
    match kind.group() {
        "" => kind.as_str().to_string(),
        g => format!("{}.{g}", kind.as_str()),
    }
}

/// The Service kubectl's expose would create for `obj`.
pub fn build_service(obj: &Object, a: &ExposeArgs) -> Result<Service> {
    let (obj_selector, obj_ports, obj_labels) = introspect(obj)?;
    let selector = match &a.selector {
        Some(s) => parse_map(s, "selector")?,
        None => obj_selector,
    };
    let labels = match &a.labels {
        Some(s) => parse_map(s, "labels")?,
        None => obj_labels,
    };
    let protocols: BTreeMap<i32, String> = obj_ports.iter().cloned().collect();
    let port_strings: Vec<String> = match &a.port {
        Some(p) => p.split(',').map(str::to_string).collect(),
        None => obj_ports.iter().map(|(p, _)| p.to_string()).collect(),
    };
    if port_strings.is_empty() {
        return Err(other(
            "couldn't find port via --port flag or introspection\nSee 'coxctl expose -h' for help and examples",
        ));
    }
    let mut ports = Vec::new();
    for (i, ps) in port_strings.iter().enumerate() {
        let port: i32 = ps
            .trim()
            .parse()
            .map_err(|_| other(format!("invalid port {ps:?}")))?;
        let protocol = match &a.protocol {
            Some(p) => p.clone(),
            None => protocols
                .get(&port)
                .cloned()
                .unwrap_or_else(|| "TCP".into()),
        };
        let target_port = match &a.target_port {
            Some(t) => match t.parse::<i32>() {
                Ok(n) => IntOrString::int(n),
                Err(_) => IntOrString::string(t.clone()),
            },
            None => IntOrString::int(port),
        };
        ports.push(ServicePort {
            name: if port_strings.len() > 1 {
                format!("port-{}", i + 1)
            } else {
                String::new()
            },
            protocol,
            port,
            target_port: Some(target_port),
            ..Default::default()
        });
    }
    let name = a.name.clone().unwrap_or_else(|| obj.name().to_string());
    Ok(Service {
        api_version: "v1".into(),
        kind: "Service".into(),
        metadata: Some(ObjectMeta {
            name,
            namespace: obj.namespace().to_string(),
            labels,
            ..Default::default()
        }),
        spec: Some(ServiceSpec {
            ports,
            selector,
            r#type: a.service_type.clone().unwrap_or_default(),
            cluster_ip: a.cluster_ip.clone().unwrap_or_default(),
            external_ips: a.external_ip.iter().cloned().collect(),
            session_affinity: a.session_affinity.clone().unwrap_or_default(),
            ..Default::default()
        }),
        status: None,
    })
}

pub async fn run(client: &mut Client, a: &ExposeArgs, ns: &str) -> Result<()> {
    let (kind, name) = match a.resource.as_slice() {
        [one] => one
            .split_once('/')
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .ok_or_else(|| other(format!("you must provide a resource name: {one}")))?,
        [k, n] => (k.clone(), n.clone()),
        _ => return Err(other("one resource is required")),
    };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "rc" | "replicationcontroller" | "replicationcontrollers" => {
            return Err(other(
                "the server doesn't have a resource type \"replicationcontrollers\"",
            ))
        }
        _ => crate::resources::parse_kind(&kind)?,
    };
    let obj = client.get(kind, ns, &name).await?;
    let svc = build_service(&obj, a)?;
    let created = client.create(&Object::Service(svc)).await?;
    println!("{} exposed", name_line(Kind::Service, created.name()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::manifest::parse_manifests;

    fn args(extra: &[&str]) -> ExposeArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: ExposeArgs,
        }
        let mut v = vec!["expose"];
        v.extend_from_slice(extra);
        P::parse_from(v).a
    }

    fn obj(text: &str) -> Object {
        parse_manifests(text).expect("parses").remove(0).object
    }

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: nginx\n  namespace: mayikt-sit\n  labels: {run: nginx}\nspec:\n  selector:\n    matchLabels: {run: nginx}\n  template:\n    metadata:\n      labels: {run: nginx}\n    spec:\n      containers:\n      - name: nginx\n        image: nginx\n";

    #[test]
    fn a_deployment_exposes_with_its_selector_and_the_given_port() {
        let s = build_service(
            &obj(DEPLOY),
            &args(&["deployment", "nginx", "--type=NodePort", "--port=80"]),
        )
        .expect("service");
        let m = s.metadata.as_ref().expect("m");
        assert_eq!(
            (m.name.as_str(), m.namespace.as_str()),
            ("nginx", "mayikt-sit")
        );
        assert_eq!(m.labels.get("run"), Some(&"nginx".to_string()));
        let spec = s.spec.as_ref().expect("spec");
        assert_eq!(spec.r#type, "NodePort");
        assert_eq!(spec.selector.get("run"), Some(&"nginx".to_string()));
        assert_eq!(spec.ports.len(), 1);
        let p = &spec.ports[0];
        assert_eq!(
            (p.name.as_str(), p.port, p.protocol.as_str()),
            ("", 80, "TCP")
        );
        assert_eq!(p.target_port, Some(IntOrString::int(80)));
        // Without --port and without container ports there is nothing to expose.
        let e = build_service(&obj(DEPLOY), &args(&["deployment", "nginx"])).expect_err("no port");
        assert!(e
            .to_string()
            .contains("couldn't find port via --port flag or introspection"));
    }

    #[test]
    fn ports_and_protocols_come_from_the_pod_when_not_given() {
        let pod = obj("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    ports:\n    - containerPort: 80\n    - containerPort: 53\n      protocol: UDP\n");
        let s = build_service(
            &pod,
            &args(&["pod", "web", "--name", "front", "--target-port", "http"]),
        )
        .expect("service");
        assert_eq!(s.metadata.as_ref().expect("m").name, "front");
        let spec = s.spec.expect("spec");
        let got: Vec<(String, i32, String, IntOrString)> = spec
            .ports
            .into_iter()
            .map(|p| (p.name, p.port, p.protocol, p.target_port.expect("tp")))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "port-1".to_string(),
                    80,
                    "TCP".to_string(),
                    IntOrString::string("http")
                ),
                (
                    "port-2".to_string(),
                    53,
                    "UDP".to_string(),
                    IntOrString::string("http")
                ),
            ]
        );
        assert_eq!(spec.selector.get("app"), Some(&"web".to_string()));
    }

    #[test]
    fn what_cannot_be_exposed_says_why() {
        let unlabelled = obj("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: nginx\n");
        let e = build_service(&unlabelled, &args(&["pod", "p", "--port", "80"]))
            .expect_err("no labels");
        assert_eq!(
            e.to_string(),
            "error: the pod has no labels and cannot be exposed"
        );
        let cm = obj("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n");
        let e = build_service(&cm, &args(&["cm", "c", "--port", "80"])).expect_err("cm");
        assert_eq!(e.to_string(), "error: cannot expose a ConfigMap");
        let sts = obj("apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  selector:\n    matchLabels: {a: b}\n  template:\n    metadata:\n      labels: {a: b}\n    spec:\n      containers: [{name: c, image: nginx}]\n");
        let e = build_service(&sts, &args(&["sts", "s", "--port", "80"])).expect_err("sts");
        assert_eq!(e.to_string(), "error: cannot expose a StatefulSet.apps");
        let svc = obj(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports: [{port: 80}]\n",
        );
        let e = build_service(&svc, &args(&["svc", "s"])).expect_err("selectorless");
        assert_eq!(e.to_string(), "error: the service has no pod selector set");
    }
}
