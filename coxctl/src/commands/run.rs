//! `coxctl run NAME --image=IMAGE`: today's kubectl creates a Pod labelled run=NAME; the old
//! form the seeds use (`--requests`, `--limits`, `--replicas`, as kubectl before 1.18 with its
//! deployment/apps.v1 generator) creates a Deployment. `--expose --port` adds a Service.
use clap::Args;
use coxswain_api::Kind;
use serde_json::{json, Map, Value};

use crate::client::{other, Client, Result};
use crate::output;
use crate::printers::resource_name;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The name of the pod (or, in the old form, deployment).
    pub name: String,
    /// The container image.
    #[arg(long)]
    pub image: String,
    /// The port the container exposes.
    #[arg(long)]
    pub port: Option<i32>,
    /// Labels (k=v,k2=v2); default run=NAME.
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Annotations (k=v), repeatable.
    #[arg(long)]
    pub annotations: Vec<String>,
    /// Environment variables (K=V), repeatable.
    #[arg(long)]
    pub env: Vec<String>,
    /// Always, OnFailure or Never.
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// The image pull policy.
    #[arg(long)]
    pub image_pull_policy: Option<String>,
    /// The extra arguments are the command, not the arguments.
    #[arg(long)]
    pub command: bool,
    /// Also create a ClusterIP Service on --port.
    #[arg(long)]
    pub expose: bool,
    /// "none", "client" or "server".
    #[arg(long, num_args = 0..=1, default_missing_value = "client", default_value = "none")]
    pub dry_run: String,
    /// Output format (yaml, json, name).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Old form: resource requests (cpu=200m,memory=64Mi); creates a Deployment.
    #[arg(long)]
    pub requests: Option<String>,
    /// Old form: resource limits; creates a Deployment.
    #[arg(long)]
    pub limits: Option<String>,
    /// Old form: the number of replicas; creates a Deployment.
    #[arg(long)]
    pub replicas: Option<i32>,
    /// Arguments (or, with --command, the command) of the container.
    #[arg(last = true)]
    pub args: Vec<String>,
}

fn pairs(text: &str, what: &str) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for p in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| other(format!("invalid {what}: {p:?}, expected key=value")))?;
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

/// The objects `run` creates, in creation order (Service first, as kubectl prints it).
pub fn build(a: &RunArgs, namespace: &str) -> Result<Vec<(Kind, Value)>> {
    if a.image.is_empty() {
        return Err(other("--image is required"));
    }
    if !matches!(a.restart.as_str(), "Always" | "OnFailure" | "Never") {
        return Err(other(format!("invalid restart policy: {}", a.restart)));
    }
    let labels = match &a.labels {
        Some(l) => pairs(l, "label")?,
        None => {
            let mut m = Map::new();
            m.insert("run".into(), json!(a.name));
            m
        }
    };
    let mut container = json!({"name": a.name, "image": a.image, "resources": {}});
    if let Some(p) = a.port {
        container["ports"] = json!([{"containerPort": p}]);
    }
    if !a.env.is_empty() {
        let env: Vec<Value> = a
            .env
            .iter()
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                json!({"name": k, "value": v})
            })
            .collect();
        container["env"] = Value::Array(env);
    }
    if let Some(p) = &a.image_pull_policy {
        container["imagePullPolicy"] = json!(p);
    }
    if !a.args.is_empty() {
        container[if a.command { "command" } else { "args" }] = json!(a.args);
    }
    for (flag, field) in [(&a.requests, "requests"), (&a.limits, "limits")] {
        if let Some(r) = flag {
            container["resources"][field] = Value::Object(pairs(r, "resource")?);
        }
    }
    let mut annotations = Map::new();
    for an in &a.annotations {
        annotations.extend(pairs(an, "annotation")?);
    }
    let mut meta = json!({"name": a.name, "namespace": namespace, "labels": labels});
    if !annotations.is_empty() {
        meta["annotations"] = Value::Object(annotations);
    }
    let pod_spec = json!({
        "containers": [container],
        "restartPolicy": a.restart,
        "dnsPolicy": "ClusterFirst",
    });
    let old_form = a.requests.is_some() || a.limits.is_some() || a.replicas.is_some();
    let mut out = Vec::new();
    if a.expose {
        let port = a
            .port
            .ok_or_else(|| other("--port must be set when exposing a service"))?;
        out.push((
            Kind::Service,
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": a.name, "namespace": namespace},
                "spec": {"ports": [{"port": port, "protocol": "TCP", "targetPort": port}],
                         "selector": labels}}),
        ));
    }
    if old_form {
        out.push((
            Kind::Deployment,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": a.name, "namespace": namespace, "labels": labels},
                "spec": {"replicas": a.replicas.unwrap_or(1),
                         "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}),
        ));
    } else {
        out.push((
            Kind::Pod,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}),
        ));
    }
    Ok(out)
}

pub async fn run(client: &mut Client, a: &RunArgs, namespace: &str) -> Result<()> {
    let objects = build(a, namespace)?;
    let (dry, suffix) = match a.dry_run.as_str() {
        "none" | "false" | "" => (false, ""),
        "client" | "true" => (true, " (dry run)"),
        "server" => (true, " (server dry run)"),
        x => {
            return Err(other(format!(
                "Invalid dry-run value ({x}). Must be \"none\", \"server\", or \"client\"."
            )))
        }
    };
    if a.requests.is_some() || a.limits.is_some() || a.replicas.is_some() {
        eprintln!("Warning: coxctl run --requests/--limits/--replicas is the old kubectl form (generator deployment/apps.v1): a Deployment is created. Today's kubectl run creates a Pod; use coxctl create deployment or a manifest instead.");
    }
    for (kind, v) in objects {
        let name = a.name.clone();
        if dry && a.dry_run != "server" {
            match a.output.as_deref() {
                Some("yaml") => print!("{}", output::to_yaml(&v)),
                Some("json") => print!("{}", output::to_json(&v)),
                _ => println!("{}/{name} created{suffix}", resource_name(kind)),
            }
            continue;
        }
        let text = serde_json::to_string(&v).unwrap_or_default();
        let resp = client.apply(text, namespace, true, dry).await?;
        for w in &resp.warnings {
            eprintln!("Warning: {w}");
        }
        match a.output.as_deref() {
            Some("yaml") | Some("json") => {
                for r in &resp.results {
                    if let Some(o) = r
                        .object
                        .as_ref()
                        .and_then(|x| coxswain_api::Object::from_any(x).ok())
                    {
                        let j = o.to_json_value();
                        if a.output.as_deref() == Some("yaml") {
                            print!("{}", output::to_yaml(&j));
                        } else {
                            print!("{}", output::to_json(&j));
                        }
                    }
                }
            }
            Some("name") => println!("{}/{name}", resource_name(kind)),
            _ => println!("{}/{name} created{suffix}", resource_name(kind)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: RunArgs,
    }

    fn args(v: &[&str]) -> RunArgs {
        T::parse_from(std::iter::once("run").chain(v.iter().copied())).a
    }

    #[test]
    fn today_s_form_makes_a_pod_and_the_old_form_a_deployment() {
        let objs = build(&args(&["nginx", "--image=nginx", "--port=80"]), "default").unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].0, Kind::Pod);
        assert_eq!(objs[0].1["metadata"]["labels"], json!({"run": "nginx"}));
        assert_eq!(
            objs[0].1["spec"]["containers"][0]["ports"][0]["containerPort"],
            80
        );
        let objs = build(
            &args(&[
                "nginx",
                "--image=nginx:1.17.9",
                "--requests=cpu=200m",
                "--expose",
                "--port=80",
            ]),
            "mayikt-sit",
        )
        .unwrap();
        assert_eq!(objs[0].0, Kind::Service);
        assert_eq!(objs[1].0, Kind::Deployment);
        assert_eq!(
            objs[1].1["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "200m"
        );
        let objs = build(
            &args(&[
                "b",
                "--image=busybox",
                "--restart=Never",
                "--command",
                "--",
                "sleep",
                "10",
            ]),
            "d",
        )
        .unwrap();
        assert_eq!(
            objs[0].1["spec"]["containers"][0]["command"],
            json!(["sleep", "10"])
        );
        assert!(build(&args(&["b", "--image=x", "--restart=Sometimes"]), "d").is_err());
    }
}
