//! Workload verbs over the `coxswain.v1.Workloads` service: `scale`, `set image`,
//! `rollout status|history|undo|pause|resume|restart`, and `create job NAME --from=cronjob/X`.
use clap::{Args, Subcommand};
use coxswain_api::v1::workloads_client::WorkloadsClient;
use coxswain_api::v1::{
    CronJob, Job, ObjectMeta, OwnerReference, RolloutHistoryRequest, RolloutStatusRequest,
    RolloutUndoRequest, ScaleRequest, SetImageRequest, WorkloadRef,
};
use coxswain_api::{Kind, Object};

use crate::client::{from_status, other, Client, Result};

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// TYPE NAME or TYPE/NAME (deployment, replicaset, statefulset).
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The new desired number of replicas.
    #[arg(long, allow_negative_numbers = true)]
    pub replicas: i32,
    /// Precondition: the current replicas must be this (-1: no condition).
    #[arg(long, allow_negative_numbers = true)]
    pub current_replicas: Option<i32>,
}

#[derive(Debug, Subcommand)]
pub enum SetWhat {
    /// Update the image of a pod template: TYPE NAME CONTAINER=IMAGE...
    Image(SetImageArgs),
}

#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// TYPE NAME or TYPE/NAME, then CONTAINER_NAME=IMAGE pairs ("*=IMAGE": every container).
    #[arg(required = true, num_args = 2..)]
    pub args: Vec<String>,
    /// Record the command as the kubernetes.io/change-cause annotation.
    #[arg(long)]
    pub record: bool,
}

#[derive(Debug, Subcommand)]
pub enum RolloutWhat {
    /// Show the status of the rollout (waits until it completes).
    Status(RolloutStatusArgs),
    /// View rollout history.
    History(RolloutHistoryArgs),
    /// Undo a previous rollout.
    Undo(RolloutUndoArgs),
    /// Mark the resource as paused.
    Pause(RolloutTarget),
    /// Resume a paused resource.
    Resume(RolloutTarget),
    /// Restart a resource (its pods are replaced).
    Restart(RolloutTarget),
}

#[derive(Debug, Args)]
pub struct RolloutTarget {
    /// TYPE NAME or TYPE/NAME.
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// Pin to a specific revision.
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
    /// Watch the status of the rollout until it's done.
    #[arg(short = 'w', long, default_value = "true", action = clap::ArgAction::Set)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct RolloutHistoryArgs {
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// See the details of this revision.
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

#[derive(Debug, Args)]
pub struct RolloutUndoArgs {
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The revision to roll back to; 0: the previous one.
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
}

/// (kind, name) from `TYPE NAME` or `TYPE/NAME`.
fn target(resource: &[String], ns: &str) -> Result<WorkloadRef> {
    let (kind, name) = match resource {
        [one] => one
            .split_once('/')
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .ok_or_else(|| other(format!("you must specify a name: {one}")))?,
        [k, n] => (k.clone(), n.clone()),
        _ => return Err(other("one resource is required")),
    };
    if Kind::parse(&kind).is_none() {
        return Err(other(format!(
            "error: the server doesn't have a resource type \"{kind}\""
        )));
    }
    Ok(WorkloadRef {
        kind,
        namespace: ns.to_string(),
        name,
    })
}

/// The Workloads client; every call carries this invocation's `x-request-id`.
type Intercept = fn(tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status>;

fn workloads(
    client: &Client,
) -> WorkloadsClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Intercept>,
> {
    WorkloadsClient::with_interceptor(client.channel(), crate::client::add_request_id as Intercept)
}

/// kubectl scale's client-side checks (ScaleOptions.Validate).
fn validate_scale(a: &ScaleArgs) -> Result<()> {
    if a.replicas < 0 {
        return Err(other(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
        ));
    }
    if a.current_replicas.is_some_and(|c| c < -1) {
        return Err(other(
            "The --current-replicas must specify an integer of -1 or greater",
        ));
    }
    Ok(())
}

pub async fn scale(client: &mut Client, a: &ScaleArgs, ns: &str) -> Result<()> {
    validate_scale(a)?;
    let resp = workloads(client)
        .scale(ScaleRequest {
            target: Some(target(&a.resource, ns)?),
            replicas: a.replicas,
            current_replicas: a.current_replicas.filter(|c| *c != -1),
        })
        .await
        .map_err(from_status)?;
    println!("{}", resp.into_inner().message);
    Ok(())
}

pub async fn set(client: &mut Client, w: &SetWhat, ns: &str) -> Result<()> {
    let SetWhat::Image(a) = w;
    let (res, pairs): (Vec<String>, Vec<String>) = {
        let split = a
            .args
            .iter()
            .position(|s| s.contains('='))
            .ok_or_else(|| other("at least one image update is required"))?;
        (a.args[..split].to_vec(), a.args[split..].to_vec())
    };
    let mut images = std::collections::HashMap::new();
    for p in pairs {
        let (c, i) = p
            .split_once('=')
            .ok_or_else(|| other(format!("invalid image update {p:?}")))?;
        images.insert(c.to_string(), i.to_string());
    }
    let change_cause = if a.record {
        std::iter::once("coxctl".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        String::new()
    };
    let resp = workloads(client)
        .set_image(SetImageRequest {
            target: Some(target(&res, ns)?),
            images: images.into_iter().collect(),
            change_cause,
        })
        .await
        .map_err(from_status)?;
    println!("{}", resp.into_inner().message);
    Ok(())
}

pub async fn rollout(client: &mut Client, w: &RolloutWhat, ns: &str) -> Result<()> {
    let mut wc = workloads(client);
    match w {
        RolloutWhat::Status(a) => {
            let mut stream = wc
                .rollout_status(RolloutStatusRequest {
                    target: Some(target(&a.resource, ns)?),
                    revision: a.revision,
                    no_watch: !a.watch,
                })
                .await
                .map_err(from_status)?
                .into_inner();
            while let Some(m) = stream.message().await.map_err(from_status)? {
                if m.failed {
                    return Err(other(m.message));
                }
                println!("{}", m.message);
            }
            Ok(())
        }
        RolloutWhat::History(a) => {
            let t = target(&a.resource, ns)?;
            let resp = wc
                .rollout_history(RolloutHistoryRequest {
                    target: Some(t.clone()),
                    revision: a.revision,
                })
                .await
                .map_err(from_status)?
                .into_inner();
            let kind = Kind::parse(&t.kind)
                .map_or("", |k| k.as_str())
                .to_ascii_lowercase();
            let group = Kind::parse(&t.kind).map_or("", |k| k.group());
            let res = if group.is_empty() {
                format!("{kind}/{}", t.name)
            } else {
                format!("{kind}.{group}/{}", t.name)
            };
            if a.revision > 0 {
                println!("{res} with revision #{}", a.revision);
                println!("Pod Template:");
                if let Some(tpl) = resp.template {
                    let v = serde_json::to_value(&tpl).unwrap_or_default();
                    let y = coxswain_api::yaml::to_string(&v);
                    for l in y.lines() {
                        println!("  {l}");
                    }
                }
                return Ok(());
            }
            println!("{res} ");
            let mut rows = vec![vec!["REVISION".to_string(), "CHANGE-CAUSE".to_string()]];
            for r in resp.revisions {
                rows.push(vec![
                    r.revision.to_string(),
                    if r.change_cause.is_empty() {
                        "<none>".into()
                    } else {
                        r.change_cause
                    },
                ]);
            }
            let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
            for r in rows {
                println!("{:<w$}  {}", r[0], r[1], w = w0.max(8));
            }
            println!();
            Ok(())
        }
        RolloutWhat::Undo(a) => {
            let resp = wc
                .rollout_undo(RolloutUndoRequest {
                    target: Some(target(&a.resource, ns)?),
                    to_revision: a.to_revision,
                })
                .await
                .map_err(from_status)?;
            println!("{}", resp.into_inner().message);
            Ok(())
        }
        RolloutWhat::Pause(a) => {
            let r = wc
                .pause(target(&a.resource, ns)?)
                .await
                .map_err(from_status)?;
            println!("{}", r.into_inner().message);
            Ok(())
        }
        RolloutWhat::Resume(a) => {
            let r = wc
                .resume(target(&a.resource, ns)?)
                .await
                .map_err(from_status)?;
            println!("{}", r.into_inner().message);
            Ok(())
        }
        RolloutWhat::Restart(a) => {
            let r = wc
                .restart(target(&a.resource, ns)?)
                .await
                .map_err(from_status)?;
            println!("{}", r.into_inner().message);
            Ok(())
        }
    }
}

/// `coxctl create job NAME --from=cronjob/X`: a Job from the CronJob's jobTemplate, owned by it,
/// annotated `cronjob.kubernetes.io/instantiate: manual`.
pub async fn create_job_from(client: &mut Client, name: &str, from: &str, ns: &str) -> Result<()> {
    let (k, cj_name) = from
        .split_once('/')
        .ok_or_else(|| other(format!("--from must be cronjob/NAME, not {from:?}")))?;
    if Kind::parse(k) != Some(Kind::CronJob) {
        return Err(other(format!(
            "error: from must be an existing cronjob: {from}"
        )));
    }
    let obj = client.get(Kind::CronJob, ns, cj_name).await?;
    let Object::CronJob(cj) = obj else {
        return Err(other("not a cronjob"));
    };
    let cj: CronJob = cj;
    let cm = cj.metadata.clone().unwrap_or_default();
    let tpl = cj
        .spec
        .as_ref()
        .and_then(|s| s.job_template.clone())
        .unwrap_or_default();
    let tm = tpl.metadata.unwrap_or_default();
    let mut annotations = tm.annotations;
    annotations.insert("cronjob.kubernetes.io/instantiate".into(), "manual".into());
    let job = Job {
        metadata: Some(ObjectMeta {
            name: name.to_string(),
            namespace: ns.to_string(),
            labels: tm.labels,
            annotations,
            owner_references: vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name: cm.name.clone(),
                uid: cm.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            ..Default::default()
        }),
        spec: tpl.spec,
        ..Default::default()
    };
    client.create(&Object::Job(job)).await?;
    println!("job.batch/{name} created");
    Ok(())
}
