//! The gRPC connection to the object store, and kubectl-style errors.
use std::time::Duration;

use coxswain_api::v1::object_store_client::ObjectStoreClient;
use coxswain_api::v1::{
    ApplyRequest, ApplyResponse, CreateRequest, DeleteRequest, GetRequest, ListRequest,
    PatchRequest, UpdateRequest, VersionInfo, VersionRequest, WatchEvent, WatchRequest,
};
use coxswain_api::{Kind, Object};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use crate::printers::plural_name;

/// An error as kubectl prints it.
#[derive(Debug)]
pub enum CliError {
    /// "Error from server (Reason): message".
    Server {
        reason: &'static str,
        message: String,
    },
    /// "Unable to connect to the server: ...".
    Connect(String),
    /// "error: ...".
    Other(String),
    /// Errors were already printed; exit with status 1.
    Reported,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Server { reason, message } => {
                write!(f, "Error from server ({reason}): {message}")
            }
            CliError::Connect(m) => write!(f, "Unable to connect to the server: {m}"),
            CliError::Other(m) => write!(f, "error: {m}"),
            CliError::Reported => Ok(()),
        }
    }
}

impl std::error::Error for CliError {}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

pub fn other(msg: impl Into<String>) -> CliError {
    CliError::Other(msg.into())
}

/// The kubectl reason of a gRPC status code.
pub fn reason_of(code: Code) -> &'static str {
    match code {
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::InvalidArgument => "Invalid",
        Code::Aborted => "Conflict",
        // The store's "well-formed but not allowed" (deleting kube-system, creating in a
        // terminating namespace) is kube-apiserver's 403 Forbidden.
        Code::FailedPrecondition | Code::PermissionDenied => "Forbidden",
        Code::Unauthenticated => "Unauthorized",
        Code::OutOfRange => "Expired",
        Code::DeadlineExceeded => "Timeout",
        Code::ResourceExhausted => "TooManyRequests",
        Code::Unimplemented => "MethodNotAllowed",
        _ => "InternalError",
    }
}

/// Map a gRPC status to a kubectl error.
pub fn from_status(st: tonic::Status) -> CliError {
    if st.code() == Code::Unavailable {
        let mut msg = st.message().to_string();
        let mut src = std::error::Error::source(&st);
        while let Some(e) = src {
            let s = e.to_string();
            if !msg.contains(&s) {
                msg = if msg.is_empty() {
                    s
                } else {
                    format!("{msg}: {s}")
                };
            }
            src = e.source();
        }
        return CliError::Connect(msg);
    }
    CliError::Server {
        reason: detail_reason(&st).unwrap_or_else(|| reason_of(st.code())),
        message: st.message().to_string(),
    }
}

/// The StatusReason the server sent in the status' ErrorInfo, when it is one kubectl knows.
pub fn detail_reason(st: &tonic::Status) -> Option<&'static str> {
    use tonic_types::StatusExt;
    let details = st.get_error_details();
    let reason = details.error_info()?.reason.as_str();
    // metav1.StatusReason's values.
    const REASONS: &[&str] = &[
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "StoreReadError",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "Expired",
        "ServiceUnavailable",
    ];
    REASONS.iter().copied().find(|r| *r == reason)
}

/// A NotFound error worded as kubectl's: `pods "x" not found`.
pub fn not_found(kind: Kind, name: &str) -> CliError {
    CliError::Server {
        reason: "NotFound",
        message: format!("{} \"{name}\" not found", plural_name(kind)),
    }
}

/// Map an error of a call about one named object; NotFound gets kubectl's wording.
fn named_status(kind: Kind, name: &str, st: tonic::Status) -> CliError {
    if st.code() == Code::NotFound {
        not_found(kind, name)
    } else {
        from_status(st)
    }
}

/// "http://host:port" for "host:port" (a scheme is optional).
pub fn server_url(server: &str) -> String {
    if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg = format!("{msg}: {t}");
        }
        src = s.source();
    }
    msg
}

fn decode(any: Option<prost_types::Any>) -> Result<Object> {
    let any = any.ok_or_else(|| other("the server returned no object"))?;
    Object::from_any(&any).map_err(|e| other(e.to_string()))
}

/// The `x-request-id` every request of this invocation carries (kube-apiserver's Audit-ID
/// idea): the store logs it with the request, so one `coxctl apply` can be found in its log.
static REQUEST_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Use `id` (`--request-id`; checked as the store checks it: 1 to 64 of `A-Za-z0-9._:-`), or a
/// random UUID when None.
pub fn set_request_id(id: Option<&str>) -> Result<()> {
    let id = match id {
        Some(id) => {
            if !coxswain_client::request_id::valid(id) {
                return Err(CliError::Other(format!(
                    "--request-id {id:?}: must be 1 to {} characters of A-Z a-z 0-9 . _ : -",
                    coxswain_client::request_id::MAX_LEN
                )));
            }
            id.to_string()
        }
        None => coxswain_client::request_id::generate(),
    };
    let _ = REQUEST_ID.set(id);
    Ok(())
}

/// A tonic interceptor adding this invocation's `x-request-id` (for the services other than
/// the ObjectStore: Workloads' scale, set image and rollout verbs).
pub fn add_request_id(
    req: tonic::Request<()>,
) -> std::result::Result<tonic::Request<()>, tonic::Status> {
    let mut req = req;
    if let Some(v) = REQUEST_ID.get().and_then(|id| id.parse().ok()) {
        req.metadata_mut()
            .insert(coxswain_client::request_id::HEADER, v);
    }
    Ok(req)
}

/// `req` with this invocation's `x-request-id`.
fn with_request_id<T>(req: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(req);
    if let Some(v) = REQUEST_ID.get().and_then(|id| id.parse().ok()) {
        r.metadata_mut()
            .insert(coxswain_client::request_id::HEADER, v);
    }
    r
}

/// The object store client with kubectl-style errors.
#[derive(Clone)]
pub struct Client {
    inner: ObjectStoreClient<Channel>,
    channel: Channel,
}

impl Client {
    pub async fn connect(server: &str) -> Result<Client> {
        // `--server a,b`: several store replicas; the first that takes the connection serves
        // this invocation (one command is short-lived: no balancing, no re-probing).
        if let Some(servers) = coxswain_client::failover::split(server) {
            let mut last = CliError::Connect(format!("--server {server:?}: no server given"));
            for s in servers {
                match Box::pin(Self::connect(s)).await {
                    Ok(c) => return Ok(c),
                    Err(e) => last = e,
                }
            }
            return Err(last);
        }
        let url = server_url(server);
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| CliError::Connect(format!("invalid server address {server:?}: {e}")))?
            .connect_timeout(Duration::from_secs(5));
        let endpoint = coxswain_client::config::secure(endpoint, &url)
            .map_err(|e| CliError::Connect(format!("{url}: TLS: {e}")))?;
        let channel = coxswain_client::scheme::connect(&endpoint)
            .await
            .map_err(|e| CliError::Connect(format!("{url}: {}", error_chain(&e))))?;
        let inner =
            ObjectStoreClient::new(channel.clone()).max_decoding_message_size(256 * 1024 * 1024);
        Ok(Client { inner, channel })
    }

    /// The server's version.Info.
    pub async fn version(&mut self) -> Result<VersionInfo> {
        let resp = self
            .inner
            .version(VersionRequest {})
            .await
            .map_err(from_status)?;
        Ok(resp.into_inner())
    }

    /// The connection, for the other services (Workloads).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub async fn get(&mut self, kind: Kind, namespace: &str, name: &str) -> Result<Object> {
        let ns = if kind.namespaced() { namespace } else { "" };
        let req = GetRequest {
            kind: kind.as_str().into(),
            namespace: ns.into(),
            name: name.into(),
        };
        let resp = self
            .inner
            .get(with_request_id(req))
            .await
            .map_err(|st| named_status(kind, name, st))?;
        decode(resp.into_inner().object)
    }

    /// Every object of a kind (all pages). `namespace` "" = all namespaces.
    pub async fn list(
        &mut self,
        kind: Kind,
        namespace: &str,
        label_selector: &str,
        field_selector: &str,
    ) -> Result<(Vec<Object>, String)> {
        let ns = if kind.namespaced() { namespace } else { "" };
        let mut items = Vec::new();
        let mut cont = String::new();
        loop {
            let req = ListRequest {
                kind: kind.as_str().into(),
                namespace: ns.into(),
                label_selector: label_selector.into(),
                field_selector: field_selector.into(),
                limit: 500,
                r#continue: cont.clone(),
                ..Default::default()
            };
            let resp = self
                .inner
                .list(with_request_id(req))
                .await
                .map_err(from_status)?
                .into_inner();
            for any in &resp.items {
                items.push(Object::from_any(any).map_err(|e| other(e.to_string()))?);
            }
            if resp.r#continue.is_empty() {
                return Ok((items, resp.resource_version));
            }
            cont = resp.r#continue;
        }
    }

    pub async fn apply(
        &mut self,
        manifest: String,
        namespace: &str,
        create_only: bool,
        dry_run: bool,
    ) -> Result<ApplyResponse> {
        let req = ApplyRequest {
            manifest,
            namespace: namespace.into(),
            create_only,
            dry_run,
        };
        Ok(self
            .inner
            .apply(with_request_id(req))
            .await
            .map_err(from_status)?
            .into_inner())
    }

    pub async fn create(&mut self, obj: &Object) -> Result<Object> {
        self.create_with(obj, false).await
    }

    /// Create an object, or with `dry_run` only have the server admit and validate it.
    pub async fn create_with(&mut self, obj: &Object, dry_run: bool) -> Result<Object> {
        let req = CreateRequest {
            object: Some(obj.to_any()),
            dry_run,
        };
        let resp = self
            .inner
            .create(with_request_id(req))
            .await
            .map_err(from_status)?;
        decode(resp.into_inner().object)
    }

    /// Replace an object (its resourceVersion, when set, must be the stored one).
    pub async fn update(&mut self, obj: &Object) -> Result<Object> {
        let req = UpdateRequest {
            object: Some(obj.to_any()),
            dry_run: false,
        };
        let resp = self
            .inner
            .update(with_request_id(req))
            .await
            .map_err(|st| named_status(obj.kind(), obj.name(), st))?;
        decode(resp.into_inner().object)
    }

    /// JSON merge patch of an object.
    pub async fn patch(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<Object> {
        let ns = if kind.namespaced() { namespace } else { "" };
        let req = PatchRequest {
            kind: kind.as_str().into(),
            namespace: ns.into(),
            name: name.into(),
            patch_type: "merge".into(),
            patch: patch.to_string(),
            subresource: String::new(),
        };
        let resp = self
            .inner
            .patch(with_request_id(req))
            .await
            .map_err(|st| named_status(kind, name, st))?;
        decode(resp.into_inner().object)
    }

    pub async fn delete(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        propagation_policy: &str,
        grace_period_seconds: Option<i32>,
    ) -> Result<Option<Object>> {
        let ns = if kind.namespaced() { namespace } else { "" };
        let req = DeleteRequest {
            kind: kind.as_str().into(),
            namespace: ns.into(),
            name: name.into(),
            propagation_policy: propagation_policy.into(),
            resource_version: String::new(),
            uid: String::new(),
            grace_period_seconds,
        };
        let resp = self
            .inner
            .delete(with_request_id(req))
            .await
            .map_err(|st| named_status(kind, name, st))?;
        Ok(resp
            .into_inner()
            .object
            .and_then(|a| Object::from_any(&a).ok()))
    }

    pub async fn watch(
        &mut self,
        kind: Kind,
        namespace: &str,
        label_selector: &str,
        field_selector: &str,
        resource_version: &str,
    ) -> Result<tonic::Streaming<WatchEvent>> {
        let ns = if kind.namespaced() { namespace } else { "" };
        let req = WatchRequest {
            kind: kind.as_str().into(),
            namespace: ns.into(),
            label_selector: label_selector.into(),
            field_selector: field_selector.into(),
            resource_version: resource_version.into(),
            allow_bookmarks: false,
        };
        Ok(self
            .inner
            .watch(with_request_id(req))
            .await
            .map_err(from_status)?
            .into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_get_a_scheme() {
        assert_eq!(server_url("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(
            server_url("http://127.0.0.1:50051"),
            "http://127.0.0.1:50051"
        );
        assert_eq!(server_url("https://x:1"), "https://x:1");
    }

    #[test]
    fn errors_print_like_kubectl() {
        assert_eq!(
            not_found(Kind::Pod, "x").to_string(),
            "Error from server (NotFound): pods \"x\" not found"
        );
        assert_eq!(
            not_found(Kind::Deployment, "x").to_string(),
            "Error from server (NotFound): deployments.apps \"x\" not found"
        );
        let e = from_status(tonic::Status::already_exists(
            "deployments.apps \"x\" already exists",
        ));
        assert_eq!(
            e.to_string(),
            "Error from server (AlreadyExists): deployments.apps \"x\" already exists"
        );
        let e = from_status(tonic::Status::invalid_argument(
            "spec.replicas: unknown field",
        ));
        assert_eq!(
            e.to_string(),
            "Error from server (Invalid): spec.replicas: unknown field"
        );
        let e = from_status(tonic::Status::aborted("conflict"));
        assert_eq!(e.to_string(), "Error from server (Conflict): conflict");
        let e = from_status(tonic::Status::unavailable("connection refused"));
        assert_eq!(
            e.to_string(),
            "Unable to connect to the server: connection refused"
        );
    }
}
