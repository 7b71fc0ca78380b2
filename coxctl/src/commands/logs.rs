//! `coxctl logs POD [-c CONTAINER] [-f] [--previous] [--tail N] [--timestamps] [--since D |
//! --since-time T]`: kubectl's logs. The pod's
//! node names its agent's endpoint (annotation `coxswain.io/agent-endpoint`); the agent's
//! `coxswain.v1.NodeAgent/Logs` streams the container's log.
use std::io::Write;
use std::time::Duration;

use clap::Args;
use coxswain_api::v1::node_agent_client::NodeAgentClient;
use coxswain_api::v1::LogsRequest;
use coxswain_api::{Kind, Object};
use tokio_stream::StreamExt;
use tonic::transport::Endpoint;
use tonic::Code;

use crate::client::{from_status, other, server_url, CliError, Client, Result};

/// The Node annotation naming the agent's gRPC endpoint.
const ENDPOINT_ANNOTATION: &str = "coxswain.io/agent-endpoint";

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod (NAME or pod/NAME), or a workload (deploy/NAME, rs/, sts/, ds/, job/, svc/)
    /// whose first pod is read.
    pub pod: Option<String>,
    /// Read the logs of every pod matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Prefix each line with its source (pod/NAME/CONTAINER).
    #[arg(long)]
    pub prefix: bool,
    /// With -l, the most pods read at once.
    #[arg(long, default_value_t = 5)]
    pub max_log_requests: usize,
    /// The container (may be omitted when the pod has one container).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Stream the log as it grows.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The log of the previous, terminated instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Include timestamps on each line in the log output.
    #[arg(long)]
    pub timestamps: bool,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h. Defaults to all
    /// logs. Only one of since-time / since may be used.
    #[arg(long, default_value = "0s")]
    pub since: String,
    /// Only return logs after a specific date (RFC3339). Defaults to all logs. Only one of
    /// since-time / since may be used.
    #[arg(long, default_value = "")]
    pub since_time: String,
}

/// kubectl's --since and --since-time as the request's sinceSeconds and sinceTime: a Go
/// duration rounded up to whole seconds (0: not set), an RFC 3339 time.
fn since_of(a: &LogsArgs) -> Result<(Option<i64>, String)> {
    let d = coxswain_api::duration::parse_signed(&a.since).map_err(other)?;
    if d < 0 {
        return Err(other("--since must be greater than 0"));
    }
    let secs = (d as u64).div_ceil(1_000_000_000) as i64;
    let since = (secs > 0).then_some(secs);
    if since.is_some() && !a.since_time.is_empty() {
        return Err(other(
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    if !a.since_time.is_empty() && coxswain_api::time::parse_rfc3339(&a.since_time).is_none() {
        return Err(other(format!(
            "parsing time \"{}\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"{}\" as RFC3339",
            a.since_time, a.since_time
        )));
    }
    Ok((since, a.since_time.clone()))
}

fn bad_request(st: tonic::Status) -> CliError {
    match st.code() {
        Code::InvalidArgument | Code::FailedPrecondition => CliError::Server {
            reason: "BadRequest",
            message: st.message().to_string(),
        },
        _ => from_status(st),
    }
}

/// The selector of a workload or service whose pods `logs KIND/NAME` reads.
async fn selector_of(client: &mut Client, kind: Kind, ns: &str, name: &str) -> Result<String> {
    let v = client.get(kind, ns, name).await?.to_json_value();
    let sel = if kind == Kind::Service {
        crate::jv::format_labels(&crate::jv::map(&v, "spec.selector"))
    } else {
        crate::jv::format_selector(&v["spec"]["selector"])
    };
    if sel.is_empty() || sel == "<none>" {
        return Err(other(format!(
            "cannot attach to {}/{name}: selector is empty",
            crate::printers::resource_name(kind)
        )));
    }
    Ok(sel)
}

/// Pods of a selector, running ones first, then by name.
async fn pods_of(client: &mut Client, ns: &str, sel: &str) -> Result<Vec<Object>> {
    let (mut pods, _) = client.list(Kind::Pod, ns, sel, "").await?;
    pods.sort_by_key(|p| {
        let v = p.to_json_value();
        (
            crate::jv::s(&v, "status.phase") != "Running",
            p.name().to_string(),
        )
    });
    Ok(pods)
}

pub async fn run(client: &mut Client, a: &LogsArgs, ns: &str, server: &str) -> Result<()> {
    since_of(a)?;
    let names: Vec<String> = match (&a.pod, &a.selector) {
        (Some(_), Some(_)) => return Err(other("only a selector (-l) or a POD name is allowed")),
        (None, None) => return Err(other("expected POD, TYPE/NAME, or a selector (-l)")),
        (None, Some(sel)) => {
            let pods = pods_of(client, ns, sel).await?;
            if pods.is_empty() {
                eprintln!("No resources found in {ns} namespace.");
                return Ok(());
            }
            if a.follow && pods.len() > a.max_log_requests {
                return Err(other(format!(
                    "you are attempting to follow {} log streams, but maximum allowed concurrency is {}, use --max-log-requests to increase the limit",
                    pods.len(),
                    a.max_log_requests
                )));
            }
            pods.iter().map(|p| p.name().to_string()).collect()
        }
        (Some(p), None) => match p.split_once('/') {
            Some((k, n)) if !matches!(k, "pod" | "pods" | "po") => {
                let kind = crate::resources::parse_kind(k)?;
                let sel = selector_of(client, kind, ns, n).await?;
                let pods = pods_of(client, ns, &sel).await?;
                let Some(first) = pods.first() else {
                    return Err(other("timed out waiting for the condition"));
                };
                if pods.len() > 1 {
                    eprintln!("Found {} pods, using pod/{}", pods.len(), first.name());
                }
                vec![first.name().to_string()]
            }
            Some((_, n)) => vec![n.to_string()],
            None => vec![p.clone()],
        },
    };
    let prefix = a.prefix;
    if a.follow && names.len() > 1 {
        let mut set = tokio::task::JoinSet::new();
        for n in names {
            let mut c = client.clone();
            let (ns, server) = (ns.to_string(), server.to_string());
            let args = LogsArgs {
                pod: None,
                selector: None,
                prefix,
                max_log_requests: a.max_log_requests,
                container: a.container.clone(),
                follow: true,
                previous: a.previous,
                tail: a.tail,
                timestamps: a.timestamps,
                since: a.since.clone(),
                since_time: a.since_time.clone(),
            };
            set.spawn(async move { pod_logs(&mut c, &args, &ns, &server, &n, prefix).await });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| other(e.to_string()))??;
        }
        return Ok(());
    }
    for n in names {
        pod_logs(client, a, ns, server, &n, prefix).await?;
    }
    Ok(())
}

/// A NodeAgent client for `node`: the agent's endpoint annotation on the Node, else the server
/// (in `up`, the agents serve on the store's address), over TLS when the config says so.
pub(super) async fn node_agent(
    client: &mut Client,
    server: &str,
    node: &str,
) -> Result<NodeAgentClient<tonic::transport::Channel>> {
    let endpoint = match client.get(Kind::Node, "", node).await {
        Ok(Object::Node(n)) => n
            .metadata
            .and_then(|m| m.annotations.get(ENDPOINT_ANNOTATION).cloned())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let url = if endpoint.is_empty() {
        server_url(server)
    } else {
        endpoint
    };
    let channel = Endpoint::from_shared(url.clone())
        .map_err(|e| CliError::Connect(format!("invalid agent address {url:?}: {e}")))?
        .connect_timeout(Duration::from_secs(5));
    let channel = coxswain_client::config::secure(channel, &url)
        .map_err(|e| CliError::Connect(format!("{url}: TLS: {e}")))?
        .connect()
        .await
        .map_err(|e| CliError::Connect(format!("{url}: {e}")))?;
    Ok(NodeAgentClient::new(channel))
}

async fn pod_logs(
    client: &mut Client,
    a: &LogsArgs,
    ns: &str,
    server: &str,
    name: &str,
    prefix: bool,
) -> Result<()> {
    let Object::Pod(pod) = client.get(Kind::Pod, ns, name).await? else {
        return Err(other("not a pod"));
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let container = a.container.clone().unwrap_or_default();
    if spec.node_name.is_empty() {
        let c = if container.is_empty() {
            spec.containers
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default()
        } else {
            container.clone()
        };
        return Err(CliError::Server {
            reason: "BadRequest",
            message: format!(
                "container \"{c}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            ),
        });
    }
    let mut agent = node_agent(client, server, &spec.node_name).await?;
    let (since_seconds, since_time) = since_of(a)?;
    let req = LogsRequest {
        node_name: spec.node_name.clone(),
        namespace: ns.to_string(),
        pod: name.to_string(),
        container,
        follow: a.follow,
        previous: a.previous,
        tail_lines: (a.tail >= 0).then_some(a.tail),
        timestamps: a.timestamps,
        since_seconds,
        since_time,
    };
    let label = format!("[pod/{name}/{}] ", req_container(&spec, &req.container));
    let mut stream = agent.logs(req).await.map_err(bad_request)?.into_inner();
    let mut out = std::io::stdout();
    // With --prefix, whole lines only: a partial line waits for the rest.
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(bad_request)?;
        let data = if prefix {
            pending.extend_from_slice(&chunk.data);
            let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            let rest = pending.split_off(end + 1);
            let whole = std::mem::replace(&mut pending, rest);
            let mut buf = Vec::new();
            for line in whole.split_inclusive(|b| *b == b'\n') {
                buf.extend_from_slice(label.as_bytes());
                buf.extend_from_slice(line);
            }
            buf
        } else {
            chunk.data
        };
        out.write_all(&data)
            .and_then(|_| out.flush())
            .map_err(|e| {
                crate::sigpipe::exit_if_broken(&e);
                other(format!("writing the log: {e}"))
            })?;
    }
    if prefix && !pending.is_empty() {
        let _ = out.write_all(label.as_bytes());
        let _ = out.write_all(&pending);
        let _ = out.write_all(b"\n");
    }
    Ok(())
}

fn req_container(spec: &coxswain_api::v1::PodSpec, c: &str) -> String {
    if !c.is_empty() {
        return c.to_string();
    }
    spec.containers
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_default()
}
