//! A typed client over the ObjectStore gRPC service.
use std::time::Duration;

use coxswain_api::v1::object_store_client::ObjectStoreClient;
use coxswain_api::v1::{
    BindRequest, CreateRequest, DeleteRequest, GetRequest, ListRequest, PatchRequest,
    UpdateRequest, WatchRequest,
};
use coxswain_api::{Object, Resource};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};
use crate::trace::outgoing;

/// Label and field selectors for lists and watches (the store's syntax, as kubectl's).
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub label_selector: String,
    pub field_selector: String,
}

impl ListParams {
    pub fn labels(selector: impl Into<String>) -> Self {
        ListParams {
            label_selector: selector.into(),
            ..Default::default()
        }
    }
    pub fn fields(selector: impl Into<String>) -> Self {
        ListParams {
            field_selector: selector.into(),
            ..Default::default()
        }
    }
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    /// "Background" (default), "Foreground" or "Orphan".
    pub propagation: Option<String>,
    /// For pods bound to a node: the grace period (None: the pod's own; 0: at once).
    pub grace_period_seconds: Option<i32>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

impl DeleteParams {
    pub fn background() -> Self {
        Self::default()
    }
    pub fn foreground() -> Self {
        DeleteParams {
            propagation: Some("Foreground".into()),
            ..Default::default()
        }
    }
    pub fn orphan() -> Self {
        DeleteParams {
            propagation: Some("Orphan".into()),
            ..Default::default()
        }
    }
    /// Remove at once, without graceful termination.
    pub fn now() -> Self {
        DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        }
    }
}

/// One change seen by a watch.
#[derive(Debug, Clone)]
pub enum WatchEvent<R> {
    Added(R),
    Modified(R),
    Deleted(R),
    /// The store has reached this resourceVersion.
    Bookmark(String),
}

/// "ns/name", or "name" for cluster-scoped objects: the key caches and queues use.
pub fn object_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

/// A typed client of the object store. Cheap to clone: clones share one HTTP/2 connection.
#[derive(Clone)]
pub struct Client {
    inner: ObjectStoreClient<Channel>,
    /// The connection, for the server's other services (TokenRequest).
    channel: Channel,
    /// The leader election's own Lease writes, exempt from the process's lease fence.
    lease_writer: bool,
}

impl Client {
    /// Connect now (fails when the store is not there).
    pub async fn connect(url: &str) -> Result<Client> {
        if let Some(urls) = crate::failover::split(url) {
            return crate::failover::balanced(&urls, |u| endpoint(u, None))
                .map(Client::from_channel);
        }
        let ch = crate::scheme::connect(&endpoint(url, None)?)
            .await
            .map_err(|e| Error::connect(&e))?;
        Ok(Client::from_channel(ch))
    }

    /// Connect on first use, and reconnect after failures (for components started beside the
    /// store in one process).
    pub fn lazy(url: &str) -> Result<Client> {
        if let Some(urls) = crate::failover::split(url) {
            return crate::failover::balanced(&urls, |u| endpoint(u, None))
                .map(Client::from_channel);
        }
        Ok(Client::from_channel(crate::scheme::connect_lazy(
            &endpoint(url, None)?,
        )))
    }

    /// [`Client::lazy`] as one component of this process, with the credentials installed for
    /// it ([`crate::config::install_as`]; the process-wide ones when it has none).
    pub fn lazy_as(url: &str, component: &str) -> Result<Client> {
        if let Some(urls) = crate::failover::split(url) {
            return crate::failover::balanced(&urls, |u| endpoint(u, Some(component)))
                .map(Client::from_channel);
        }
        Ok(Client::from_channel(crate::scheme::connect_lazy(
            &endpoint(url, Some(component))?,
        )))
    }

    pub fn from_channel(ch: Channel) -> Client {
        Client {
            inner: ObjectStoreClient::new(ch.clone())
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(64 << 20),
            channel: ch,
            lease_writer: false,
        }
    }

    /// This client for a leader election's Lease writes: not gated on the process's lease
    /// fence ([`crate::leaderelection`]), which every other write of the process is.
    pub fn lease_writer(&self) -> Client {
        Client {
            inner: self.inner.clone(),
            channel: self.channel.clone(),
            lease_writer: true,
        }
    }

    /// Before a write: refused when this process leads under election and its lease is no
    /// longer known valid.
    fn fence(&self, verb: &'static str, kind: &str) -> Result<()> {
        if self.lease_writer {
            return Ok(());
        }
        crate::leaderelection::check_write(verb, kind)
    }

    /// TokenRequest: a token of a ServiceAccount (`coxswain.v1.ServiceAccountTokens`).
    pub async fn create_token(
        &self,
        req: coxswain_api::v1::TokenRequest,
    ) -> Result<coxswain_api::v1::TokenRequestStatus> {
        let mut c =
            coxswain_api::v1::service_account_tokens_client::ServiceAccountTokensClient::new(
                self.channel.clone(),
            );
        Ok(c.create_token(outgoing(req)).await?.into_inner())
    }

    /// The raw generated client, for RPCs this wrapper does not cover.
    pub fn raw(&self) -> ObjectStoreClient<Channel> {
        self.inner.clone()
    }

    /// Get an object; None when it does not exist.
    pub async fn get<R: Resource>(&self, namespace: &str, name: &str) -> Result<Option<R>> {
        let r = self
            .raw()
            .get(outgoing(GetRequest {
                kind: R::KIND.as_str().into(),
                namespace: namespace.into(),
                name: name.into(),
            }))
            .await;
        match r {
            Ok(resp) => Ok(Some(typed(resp.into_inner().object)?)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(s.into()),
        }
    }

    /// List objects ("" namespace: all); returns the items and the list's resourceVersion. A
    /// consistent read: the list holds every write acknowledged before it was asked, through
    /// whichever store replica.
    pub async fn list<R: Resource>(
        &self,
        namespace: &str,
        lp: &ListParams,
    ) -> Result<(Vec<R>, String)> {
        self.list_at(namespace, lp, "").await
    }

    /// [`Client::list`] at a resourceVersion, as Kubernetes' ListOptions: "" the most recent
    /// state, "0" any (the store's cache as it is, at once), N not older than N (an error for
    /// which [`Error::is_too_large_resource_version`] holds when the store has not reached N
    /// within its wait).
    pub async fn list_at<R: Resource>(
        &self,
        namespace: &str,
        lp: &ListParams,
        resource_version: &str,
    ) -> Result<(Vec<R>, String)> {
        let resp = self
            .raw()
            .list(outgoing(ListRequest {
                kind: R::KIND.as_str().into(),
                namespace: namespace.into(),
                label_selector: lp.label_selector.clone(),
                field_selector: lp.field_selector.clone(),
                resource_version: resource_version.into(),
                ..Default::default()
            }))
            .await?
            .into_inner();
        let items = resp
            .items
            .into_iter()
            .map(|a| typed(Some(a)))
            .collect::<Result<Vec<R>>>()?;
        Ok((items, resp.resource_version))
    }

    pub async fn create<R: Resource>(&self, obj: &R) -> Result<R> {
        self.fence("create", R::KIND.as_str())?;
        let resp = self
            .raw()
            .create(outgoing(CreateRequest {
                object: Some(any_of(obj)),
                dry_run: false,
            }))
            .await?;
        typed(resp.into_inner().object)
    }

    /// Replace spec and metadata; a non-empty resourceVersion must match (Conflict otherwise).
    pub async fn update<R: Resource>(&self, obj: &R) -> Result<R> {
        self.fence("update", R::KIND.as_str())?;
        let resp = self
            .raw()
            .update(outgoing(UpdateRequest {
                object: Some(any_of(obj)),
                dry_run: false,
            }))
            .await?;
        typed(resp.into_inner().object)
    }

    /// Replace status only.
    pub async fn update_status<R: Resource>(&self, obj: &R) -> Result<R> {
        self.fence("update", R::KIND.as_str())?;
        let resp = self
            .raw()
            .update_status(outgoing(UpdateRequest {
                object: Some(any_of(obj)),
                dry_run: false,
            }))
            .await?;
        typed(resp.into_inner().object)
    }

    /// JSON merge patch of spec/metadata.
    pub async fn patch<R: Resource>(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<R> {
        self.patch_sub(namespace, name, patch, "").await
    }

    /// JSON merge patch of status.
    pub async fn patch_status<R: Resource>(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<R> {
        self.patch_sub(namespace, name, patch, "status").await
    }

    async fn patch_sub<R: Resource>(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
        subresource: &str,
    ) -> Result<R> {
        self.fence("patch", R::KIND.as_str())?;
        let resp = self
            .raw()
            .patch(outgoing(PatchRequest {
                kind: R::KIND.as_str().into(),
                namespace: namespace.into(),
                name: name.into(),
                patch_type: "merge".into(),
                patch: patch.to_string(),
                subresource: subresource.into(),
            }))
            .await?;
        typed(resp.into_inner().object)
    }

    /// Delete (or mark for deletion: finalizers, graceful pod termination). NotFound is an error.
    pub async fn delete<R: Resource>(
        &self,
        namespace: &str,
        name: &str,
        dp: &DeleteParams,
    ) -> Result<()> {
        self.fence("delete", R::KIND.as_str())?;
        self.raw()
            .delete(outgoing(DeleteRequest {
                kind: R::KIND.as_str().into(),
                namespace: namespace.into(),
                name: name.into(),
                propagation_policy: dp.propagation.clone().unwrap_or_default(),
                resource_version: dp.precondition_resource_version.clone().unwrap_or_default(),
                uid: dp.precondition_uid.clone().unwrap_or_default(),
                grace_period_seconds: dp.grace_period_seconds,
            }))
            .await?;
        Ok(())
    }

    /// Bind a pod to a node (the pods/binding subresource).
    pub async fn bind(&self, namespace: &str, name: &str, uid: &str, node: &str) -> Result<()> {
        self.fence("create", "Binding")?;
        self.raw()
            .bind(outgoing(BindRequest {
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.into(),
                node_name: node.into(),
                event: None,
            }))
            .await?;
        Ok(())
    }

    /// Bind many pods at once (`ObjectStore/BindBatch`): each binding's own outcome, in order, as
    /// [`Client::bind`] would have answered it alone. The outer error is the call's (the store
    /// unreachable, or UNIMPLEMENTED by a store without BindBatch). A bound binding's value is
    /// the store's admission of the Event it carried (`BindRequest.event`; an admitted one is
    /// created after the answer): None when it carried none, or when the store does not know the
    /// field and so wrote none.
    pub async fn bind_batch(
        &self,
        bindings: Vec<BindRequest>,
    ) -> Result<Vec<Result<Option<Result<()>>>>> {
        self.fence("create", "Binding")?;
        let n = bindings.len();
        let results = self
            .raw()
            .bind_batch(outgoing(coxswain_api::v1::BindBatchRequest { bindings }))
            .await?
            .into_inner()
            .results;
        if results.len() != n {
            return Err(Error::Decode(format!(
                "BindBatch answered {} results for {n} bindings",
                results.len()
            )));
        }
        Ok(results
            .into_iter()
            .map(|r| match tonic::Code::from(r.code) {
                tonic::Code::Ok => Ok(r.event.map(|e| match tonic::Code::from(e.code) {
                    tonic::Code::Ok => Ok(()),
                    code => Err(Error::from(tonic::Status::new(code, e.message))),
                })),
                code => Err(Error::from(tonic::Status::new(code, r.message))),
            })
            .collect())
    }

    /// Watch changes after `resource_version` ("" or "0": every current object as Added first).
    /// The stream ends when the server closes it; `Error::Gone` means relist.
    pub async fn watch<R: Resource>(
        &self,
        namespace: &str,
        lp: &ListParams,
        resource_version: &str,
    ) -> Result<impl Stream<Item = Result<WatchEvent<R>>> + Send + 'static> {
        let stream = self.watch_traced(namespace, lp, resource_version).await?;
        Ok(stream.map(|ev| ev.map(|(ev, _)| ev)))
    }

    /// [`Client::watch`], each event with the request id of the write that made it, if any
    /// (see [`crate::trace`]).
    pub async fn watch_traced<R: Resource>(
        &self,
        namespace: &str,
        lp: &ListParams,
        resource_version: &str,
    ) -> Result<
        impl Stream<Item = Result<(WatchEvent<R>, Option<std::sync::Arc<str>>)>> + Send + 'static,
    > {
        let stream = self
            .raw()
            .watch(outgoing(WatchRequest {
                kind: R::KIND.as_str().into(),
                namespace: namespace.into(),
                label_selector: lp.label_selector.clone(),
                field_selector: lp.field_selector.clone(),
                resource_version: resource_version.into(),
                allow_bookmarks: true,
            }))
            .await?
            .into_inner();
        Ok(stream.map(|ev| {
            let ev = ev?;
            let id = crate::trace::parse(&ev.request_id);
            Ok((
                match ev.r#type.as_str() {
                    "ADDED" => WatchEvent::Added(typed(ev.object)?),
                    "MODIFIED" => WatchEvent::Modified(typed(ev.object)?),
                    "DELETED" => WatchEvent::Deleted(typed(ev.object)?),
                    "BOOKMARK" => WatchEvent::Bookmark(ev.resource_version),
                    other => {
                        return Err(Error::Decode(format!("unknown watch event type {other:?}")))
                    }
                },
                id,
            ))
        }))
    }
}

fn endpoint(url: &str, component: Option<&str>) -> Result<Endpoint> {
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let ep = Endpoint::from_shared(url.clone())
        .map_err(|e| Error::Invalid(format!("server URL: {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    match component {
        Some(c) => crate::config::secure_as(ep, &url, c),
        None => crate::config::secure(ep, &url),
    }
    .map_err(|e| Error::Invalid(format!("TLS: {e}")))
}

fn any_of<R: Resource>(obj: &R) -> prost_types::Any {
    prost_types::Any {
        type_url: R::KIND.type_url(),
        value: obj.encode_to_vec(),
    }
}

fn typed<R: Resource>(any: Option<prost_types::Any>) -> Result<R> {
    let any = any.ok_or_else(|| Error::Decode("response carries no object".into()))?;
    let obj = Object::from_any(&any)?;
    let kind = obj.kind();
    R::from_object(obj)
        .ok_or_else(|| Error::Decode(format!("expected a {}, got a {kind}", R::KIND)))
}
