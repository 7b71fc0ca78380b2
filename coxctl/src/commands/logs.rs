//! `coxctl logs POD [-c CONTAINER] [-f] [--previous] [--tail N]`: kubectl's logs. The pod's
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
    /// The pod (NAME or pod/NAME).
    pub pod: String,
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

pub async fn run(client: &mut Client, a: &LogsArgs, ns: &str, server: &str) -> Result<()> {
    let name = a
        .pod
        .strip_prefix("pod/")
        .or_else(|| a.pod.strip_prefix("pods/"))
        .unwrap_or(&a.pod);
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
    let endpoint = match client.get(Kind::Node, "", &spec.node_name).await {
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
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| CliError::Connect(format!("{url}: {e}")))?;
    let mut agent = NodeAgentClient::new(channel);
    let req = LogsRequest {
        node_name: spec.node_name.clone(),
        namespace: ns.to_string(),
        pod: name.to_string(),
        container,
        follow: a.follow,
        previous: a.previous,
        tail_lines: (a.tail >= 0).then_some(a.tail),
    };
    let mut stream = agent.logs(req).await.map_err(bad_request)?.into_inner();
    let mut out = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(bad_request)?;
        out.write_all(&chunk.data)
            .and_then(|_| out.flush())
            .map_err(|e| other(format!("writing the log: {e}")))?;
    }
    Ok(())
}
