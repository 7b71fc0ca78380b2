//! An example scheduler extender: a `coxswain.v1.SchedulerExtender` gRPC server any profile
//! can list (`extenders: [{urlPrefix: http://127.0.0.1:7070, weight: 5}]`).
//!
//! - Filter keeps the nodes carrying `require` (a `key=value` label) and fails the others with
//!   the reason `node(s) didn't have label key=value (example extender)`.
//! - Prioritize gives 10 to nodes carrying `prefer`, 0 to the rest.
//! - Bind binds through the store (when it has a client), so it can be the profile's binder.
//! - `delay` and `fail` make it slow or failing, to exercise `httpTimeout` and `ignorable`.
use std::collections::HashMap;
use std::time::Duration;

use coxswain_api::v1;
use coxswain_api::v1::scheduler_extender_server::{SchedulerExtender, SchedulerExtenderServer};
use tonic::{Request, Response, Status};

/// What the extender does.
#[derive(Clone, Default)]
pub struct Policy {
    pub require: Option<(String, String)>,
    pub prefer: Option<(String, String)>,
    pub delay: Duration,
    pub fail: bool,
    /// For Bind.
    pub store: Option<coxswain_client::Client>,
}

/// Parse `key=value`.
pub fn label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected key=value"))
}

pub struct Example {
    policy: Policy,
}

impl Example {
    pub fn new(policy: Policy) -> Example {
        Example { policy }
    }

    pub fn into_server(self) -> SchedulerExtenderServer<Example> {
        SchedulerExtenderServer::new(self)
    }

    async fn pause(&self) -> Result<(), Status> {
        if !self.policy.delay.is_zero() {
            tokio::time::sleep(self.policy.delay).await;
        }
        if self.policy.fail {
            return Err(Status::unavailable("example extender: failing on purpose"));
        }
        Ok(())
    }

    /// Node name → labels, from whole nodes when sent, else unknown (empty).
    fn labels(nodes: &[v1::Node]) -> HashMap<String, std::collections::BTreeMap<String, String>> {
        nodes
            .iter()
            .filter_map(|n| n.metadata.as_ref())
            .map(|m| (m.name.clone(), m.labels.clone()))
            .collect()
    }
}

fn has(labels: Option<&std::collections::BTreeMap<String, String>>, kv: &(String, String)) -> bool {
    labels.is_some_and(|l| l.get(&kv.0) == Some(&kv.1))
}

#[tonic::async_trait]
impl SchedulerExtender for Example {
    async fn filter(
        &self,
        req: Request<v1::ExtenderFilterRequest>,
    ) -> Result<Response<v1::ExtenderFilterResponse>, Status> {
        self.pause().await?;
        let r = req.into_inner();
        let labels = Example::labels(&r.nodes);
        let mut out = v1::ExtenderFilterResponse::default();
        for n in r.node_names {
            match &self.policy.require {
                Some(kv) if !has(labels.get(&n), kv) => {
                    out.failed_nodes.insert(
                        n,
                        format!(
                            "node(s) didn't have label {}={} (example extender)",
                            kv.0, kv.1
                        ),
                    );
                }
                _ => out.node_names.push(n),
            }
        }
        Ok(Response::new(out))
    }

    async fn prioritize(
        &self,
        req: Request<v1::ExtenderPrioritizeRequest>,
    ) -> Result<Response<v1::ExtenderPrioritizeResponse>, Status> {
        self.pause().await?;
        let r = req.into_inner();
        let labels = Example::labels(&r.nodes);
        let priorities = r
            .node_names
            .into_iter()
            .map(|n| {
                let score = match &self.policy.prefer {
                    Some(kv) if has(labels.get(&n), kv) => 10,
                    _ => 0,
                };
                v1::HostPriority { host: n, score }
            })
            .collect();
        Ok(Response::new(v1::ExtenderPrioritizeResponse { priorities }))
    }

    async fn bind(
        &self,
        req: Request<v1::ExtenderBindRequest>,
    ) -> Result<Response<v1::ExtenderBindResponse>, Status> {
        self.pause().await?;
        let r = req.into_inner();
        let Some(store) = &self.policy.store else {
            return Ok(Response::new(v1::ExtenderBindResponse {
                error: "example extender: started without --server, cannot bind".into(),
            }));
        };
        let error = match store
            .bind(&r.pod_namespace, &r.pod_name, &r.pod_uid, &r.node)
            .await
        {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        Ok(Response::new(v1::ExtenderBindResponse { error }))
    }
}

/// Serve on `listener` until the future `stop` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    policy: Policy,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(Example::new(policy).into_server())
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stop,
        )
        .await
}
