//! The `coxswain.v1.ObjectStore` gRPC service: request decoding, metrics, and the mapping of
//! store errors to status codes. All semantics live in [`Store`].
use std::pin::Pin;

use coxswain_api::selector::{FieldSelector, LabelSelector};
use coxswain_api::v1::object_store_server::ObjectStore;
use coxswain_api::v1::{
    ApplyRequest, ApplyResponse, ApplyResult, BindBatchRequest, BindBatchResponse, BindRequest,
    CreateRequest, DeleteRequest, GetRequest, ListRequest, ListResponse, ObjectResponse,
    PatchRequest, UpdateRequest, WatchEvent as PbWatchEvent, WatchRequest,
};
use coxswain_api::{Kind, Object};
use coxswain_telemetry::grpc::ResourceSlot;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::authz::{forbidden, StoreAuthorizer};
use crate::error::{bad_request, cap_message};
use crate::store::{
    truncate_for_message, DeleteOptions, ListOptions, Propagation, Store, WatchOptions,
};
use coxswain_client::authz::Authorizer;

pub use coxswain_api::v1::object_store_server::ObjectStoreServer;

mod bind_batch;
pub use bind_batch::MAX_BINDINGS;
mod watch;
pub use watch::StoreServer;
use watch::WatchEvents;

/// The largest request accepted: Kubernetes' 3 MiB request body (an object itself is limited to
/// 1.5 MiB by admission).
pub const MAX_REQUEST_BYTES: usize = 3 << 20;

/// The gRPC service over a store.
#[derive(Clone)]
pub struct ObjectStoreService {
    store: Store,
    authz: std::sync::Arc<StoreAuthorizer>,
}

impl ObjectStoreService {
    pub fn new(store: Store) -> Self {
        ObjectStoreService {
            authz: std::sync::Arc::new(StoreAuthorizer::new(store.clone())),
            store,
        }
    }

    /// The same service deciding with `authz` (shared with the server's other services).
    pub fn with_authorizer(mut self, authz: std::sync::Arc<StoreAuthorizer>) -> Self {
        self.authz = authz;
        self
    }

    /// RBAC for a call ([`crate::rbac`]): allowed when authentication is off (no user in the
    /// request), for `system:masters`, or when a bound role's rule allows it; otherwise
    /// PERMISSION_DENIED with kubectl's Forbidden message.
    fn authorize<T>(
        &self,
        req: &Request<T>,
        verb: &str,
        kind: Kind,
        namespace: &str,
        name: &str,
        subresource: &str,
    ) -> Result<(), Status> {
        self.authorize_attrs(req, attrs(verb, kind, namespace, name, subresource))
    }

    /// The user of a request that authorization applies to (None: authentication is off, or
    /// a member of `system:masters`).
    fn restricted_user<'a, T>(&self, req: &'a Request<T>) -> Option<&'a crate::authn::UserInfo> {
        req.extensions()
            .get::<crate::authn::UserInfo>()
            .filter(|u| !crate::authz::is_master(u))
    }

    /// RBAC's escalation prevention and NodeRestriction for an object a user writes
    /// ([`crate::escalation`], [`crate::node_authz::check_node_write`]).
    fn check_write<T>(&self, req: &Request<T>, obj: &Object) -> Result<(), Status> {
        let Some(user) = self.restricted_user(req) else {
            return Ok(());
        };
        crate::node_authz::check_node_write(user, obj).map_err(|reason| {
            let a = attrs("update", obj.kind(), obj.namespace(), obj.name(), "");
            forbidden(format!(
                "{}: {reason}",
                crate::rbac::forbidden_message(user, &a)
            ))
        })?;
        let snap = || self.authz.rbac();
        let checked = match obj {
            Object::Role(r) => crate::escalation::check_role(
                &snap(),
                user,
                obj_namespace(obj),
                obj.name(),
                &r.rules,
            ),
            Object::ClusterRole(r) => {
                crate::escalation::check_role(&snap(), user, "", obj.name(), &r.rules)
            }
            Object::RoleBinding(b) => match &b.role_ref {
                Some(r) => crate::escalation::check_binding(&snap(), user, obj_namespace(obj), r),
                None => Err("roleRef: Required value".to_string()),
            },
            Object::ClusterRoleBinding(b) => match &b.role_ref {
                Some(r) => crate::escalation::check_binding(&snap(), user, "", r),
                None => Err("roleRef: Required value".to_string()),
            },
            _ => Ok(()),
        };
        checked.map_err(|reason| {
            forbidden(format!(
                "{} {:?} is forbidden: {reason}",
                qualified(obj.kind()),
                obj.name()
            ))
        })
    }

    /// A merge patch of an RBAC object by a user who is not a master needs `escalate` (roles)
    /// or `bind` (bindings) on it: the patched result is not known before it is written.
    fn check_rbac_patch<T>(
        &self,
        req: &Request<T>,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<(), Status> {
        let verb = match kind {
            Kind::Role | Kind::ClusterRole => "escalate",
            Kind::RoleBinding | Kind::ClusterRoleBinding => "bind",
            _ => return Ok(()),
        };
        let Some(user) = self.restricted_user(req) else {
            return Ok(());
        };
        let a = attrs(verb, kind, namespace, name, "");
        if self.authz.rbac().allows(user, &a) {
            return Ok(());
        }
        let message = format!(
            "{} {name:?} is forbidden: patching {} needs the {verb:?} verb on it (apply or \
             update the whole object instead)",
            qualified(kind),
            kind.plural()
        );
        Err(forbidden(message))
    }

    fn authorize_attrs<T>(
        &self,
        req: &Request<T>,
        a: crate::rbac::Attributes,
    ) -> Result<(), Status> {
        match req.extensions().get::<crate::authn::UserInfo>() {
            Some(user) => self.authz.authorize(user, &a),
            None => Ok(()),
        }
    }

    /// Apply for a user who is not a master: every document authorized first (`create` when
    /// the object does not exist, else `patch`, as kubectl apply's requests are).
    async fn authorize_apply(&self, req: &Request<ApplyRequest>) -> Result<(), Status> {
        let Some(user) = req.extensions().get::<crate::authn::UserInfo>() else {
            return Ok(());
        };
        if crate::authz::is_master(user) {
            return Ok(());
        }
        let text = req.get_ref().manifest.clone();
        let parsed =
            tokio::task::spawn_blocking(move || coxswain_api::manifest::parse_manifests(&text))
                .await
                .map_err(|e| {
                    crate::error::status(tonic::Code::Internal, "InternalError", e.to_string())
                })?;
        let Ok(parsed) = parsed else {
            // Invalid manifests are answered by the store with their field errors.
            return Ok(());
        };
        let default_ns = match req.get_ref().namespace.as_str() {
            "" => "default",
            ns => ns,
        };
        for p in parsed {
            let o = &p.object;
            let ns = match o.namespace() {
                "" => default_ns,
                ns => ns,
            };
            let verb = match self.store.get_stored(o.kind(), ns, o.name()) {
                Ok(_) => "patch",
                Err(_) => "create",
            };
            self.authorize(req, verb, o.kind(), ns, o.name(), "")?;
            let mut o = o.clone();
            if o.kind().namespaced() && o.namespace().is_empty() {
                o.meta_mut().namespace = ns.to_string();
            }
            self.check_write(req, &o)?;
        }
        Ok(())
    }

    /// The service to serve: the generated server, with Watch encoded from the cache's
    /// bytes ([`StoreServer`]).
    pub fn into_server(self) -> StoreServer {
        StoreServer::new(self)
    }
}

/// The authorization attributes of a resource request.
fn attrs(
    verb: &str,
    kind: Kind,
    namespace: &str,
    name: &str,
    subresource: &str,
) -> crate::rbac::Attributes {
    crate::rbac::Attributes {
        verb: verb.to_string(),
        api_group: kind.group().to_string(),
        resource: kind.plural().to_string(),
        subresource: subresource.to_string(),
        namespace: match kind.namespaced() {
            true => namespace.to_string(),
            false => String::new(),
        },
        name: name.to_string(),
        ..Default::default()
    }
}

/// `roles.rbac.authorization.k8s.io`: a kind's resource as upstream's messages name it.
fn qualified(kind: Kind) -> String {
    match kind.group() {
        "" => kind.plural().to_string(),
        g => format!("{}.{g}", kind.plural()),
    }
}

/// A namespaced object's namespace, `default` when unset (as a create defaults it).
fn obj_namespace(obj: &Object) -> &str {
    match obj.namespace() {
        "" => "default",
        ns => ns,
    }
}

/// The slot in which the request-metrics layer (`coxswain_telemetry::grpc`, counting every
/// RPC in `apiserver_request_total`) takes the request's resource; a detached one outside it.
fn slot<T>(req: &Request<T>) -> ResourceSlot {
    req.extensions()
        .get::<ResourceSlot>()
        .cloned()
        .unwrap_or_default()
}

/// The resource label of a kind name: its plural, or "unknown" (bounded).
fn resource_of(kind: &str) -> &'static str {
    Kind::parse(kind).map_or("unknown", Kind::plural)
}

/// The resource label of an object in an Any.
fn resource_of_any(any: Option<&prost_types::Any>) -> &'static str {
    any.and_then(|a| coxswain_api::kinds::kind_of_type_url(&a.type_url).ok())
        .map_or("unknown", Kind::plural)
}

fn parse_kind(name: &str) -> Result<Kind, Status> {
    if name.is_empty() {
        return Err(bad_request("kind: Required value"));
    }
    Kind::parse(name).ok_or_else(|| {
        bad_request(format!(
            "the server doesn't have a resource type \"{}\"",
            truncate_for_message(name)
        ))
    })
}

fn object_of(any: Option<&prost_types::Any>) -> Result<Object, Status> {
    let any = any.ok_or_else(|| bad_request("object: Required value"))?;
    Object::from_any(any).map_err(|e| bad_request(format!("object: {e}")))
}

fn selectors(labels: &str, fields: &str) -> Result<(LabelSelector, FieldSelector), Status> {
    let l = LabelSelector::parse(labels).map_err(|e| {
        bad_request(cap_message(format!(
            "labelSelector: {}",
            truncate_for_message(&e.to_string())
        )))
    })?;
    let f = FieldSelector::parse(fields).map_err(|e| {
        bad_request(cap_message(format!(
            "fieldSelector: {}",
            truncate_for_message(&e.to_string())
        )))
    })?;
    Ok((l, f))
}

fn parse_rv(rv: &str) -> Result<Option<i64>, Status> {
    match rv {
        "" | "0" => Ok(None),
        s => s.parse::<i64>().map(Some).map_err(|_| {
            bad_request(format!(
                "resourceVersion: Invalid value: {s:?}: must be an integer"
            ))
        }),
    }
}

fn respond(obj: Object) -> Response<ObjectResponse> {
    Response::new(ObjectResponse {
        object: Some(obj.to_any()),
        warnings: vec![],
    })
}

/// The answer of a write from the object's stored encoding: it is not encoded a second time.
fn respond_encoded(kind: Kind, bytes: bytes::Bytes) -> Response<ObjectResponse> {
    Response::new(ObjectResponse {
        object: Some(prost_types::Any {
            type_url: kind.type_url(),
            value: bytes.into(),
        }),
        warnings: vec![],
    })
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<PbWatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl ObjectStore for ObjectStoreService {
    async fn apply(&self, req: Request<ApplyRequest>) -> Result<Response<ApplyResponse>, Status> {
        let slot = slot(&req);
        self.authorize_apply(&req).await?;
        async {
            let req = req.into_inner();
            let (applied, warnings) = self
                .store
                .apply(&req.manifest, &req.namespace, req.create_only, req.dry_run)
                .await?;
            if let Some(a) = applied.first() {
                slot.set(a.object.kind().plural());
            }
            let results = applied
                .into_iter()
                .map(|a| ApplyResult {
                    kind: a.object.kind().as_str().to_string(),
                    namespace: a.object.namespace().to_string(),
                    name: a.object.name().to_string(),
                    action: a.action.to_string(),
                    object: Some(a.object.to_any()),
                })
                .collect();
            Ok(Response::new(ApplyResponse { results, warnings }))
        }
        .await
    }

    async fn create(
        &self,
        req: Request<CreateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        slot(&req).set(resource_of_any(req.get_ref().object.as_ref()));
        async {
            let obj = object_of(req.get_ref().object.as_ref())?;
            let ns = match obj.namespace() {
                "" if obj.kind().namespaced() => "default",
                ns => ns,
            };
            self.authorize(&req, "create", obj.kind(), ns, "", "")?;
            self.check_write(&req, &obj)?;
            let dry_run = req.get_ref().dry_run;
            drop(req);
            // The stored encoding answers: the object is not encoded a second time.
            match self.store.create_encoded(obj, dry_run).await? {
                (obj, Some(bytes)) => Ok(respond_encoded(obj.kind(), bytes)),
                (obj, None) => Ok(respond(obj)),
            }
        }
        .await
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<ObjectResponse>, Status> {
        slot(&req).set(resource_of(&req.get_ref().kind));
        async {
            let kind = parse_kind(&req.get_ref().kind)?;
            let r = req.get_ref();
            self.authorize(&req, "get", kind, &r.namespace, &r.name, "")?;
            let req = req.get_ref();
            let s = self.store.get_stored(kind, &req.namespace, &req.name)?;
            Ok(Response::new(ObjectResponse {
                object: Some(s.to_any()),
                warnings: vec![],
            }))
        }
        .await
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        slot(&req).set(resource_of(&req.get_ref().kind));
        async {
            let kind = parse_kind(&req.get_ref().kind)?;
            let mut a = attrs("list", kind, &req.get_ref().namespace, "", "");
            a.field_selector = req.get_ref().field_selector.clone();
            self.authorize_attrs(&req, a)?;
            let req = req.get_ref();
            let (labels, fields) = selectors(&req.label_selector, &req.field_selector)?;
            let opts = ListOptions {
                namespace: Some(req.namespace.clone()),
                labels,
                fields,
                limit: req.limit.max(0) as usize,
                continue_token: Some(req.r#continue.clone()),
            };
            let freshness = crate::store::ListFreshness::parse(
                &req.resource_version,
                &req.resource_version_match,
                &req.r#continue,
                i64::from(req.limit),
            )?;
            let l = self.store.list_fresh(kind, &opts, freshness).await?;
            Ok(Response::new(ListResponse {
                items: l.items.iter().map(|s| s.to_any()).collect(),
                resource_version: l.revision.to_string(),
                r#continue: l.continue_token.unwrap_or_default(),
                remaining_item_count: l.remaining,
            }))
        }
        .await
    }

    async fn update(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        slot(&req).set(resource_of_any(req.get_ref().object.as_ref()));
        async {
            let obj = object_of(req.get_ref().object.as_ref())?;
            self.authorize(&req, "update", obj.kind(), obj.namespace(), obj.name(), "")?;
            self.check_write(&req, &obj)?;
            drop(req);
            let (obj, bytes) = self.store.update_encoded(obj, false).await?;
            Ok(respond_encoded(obj.kind(), bytes))
        }
        .await
    }

    async fn update_status(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        slot(&req).set(resource_of_any(req.get_ref().object.as_ref()));
        async {
            let obj = object_of(req.get_ref().object.as_ref())?;
            let (k, ns, name) = (obj.kind(), obj.namespace(), obj.name());
            self.authorize(&req, "update", k, ns, name, "status")?;
            self.check_write(&req, &obj)?;
            drop(req);
            let (obj, bytes) = self.store.update_encoded(obj, true).await?;
            Ok(respond_encoded(obj.kind(), bytes))
        }
        .await
    }

    async fn patch(&self, req: Request<PatchRequest>) -> Result<Response<ObjectResponse>, Status> {
        let slot = slot(&req);
        slot.set(resource_of(&req.get_ref().kind));
        async {
            let kind = parse_kind(&req.get_ref().kind)?;
            let r = req.get_ref();
            let sub = match r.subresource.as_str() {
                "status" => "status",
                _ => "",
            };
            self.authorize(&req, "patch", kind, &r.namespace, &r.name, sub)?;
            self.check_rbac_patch(&req, kind, &r.namespace, &r.name)?;
            let req = req.into_inner();
            match req.patch_type.as_str() {
                "" | "merge" | "application/merge-patch+json" => {}
                other => {
                    return Err(bad_request(format!(
                        "patchType: Unsupported value: {other:?}: supported values: \"merge\""
                    )))
                }
            }
            let status = match req.subresource.as_str() {
                "" => false,
                "status" => {
                    slot.set_subresource("status");
                    true
                }
                other => {
                    return Err(bad_request(format!(
                        "subresource {other:?} is not supported"
                    )))
                }
            };
            Ok(respond(
                self.store
                    .patch(kind, &req.namespace, &req.name, &req.patch, status)
                    .await?,
            ))
        }
        .await
    }

    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        slot(&req).set(resource_of(&req.get_ref().kind));
        async {
            let kind = parse_kind(&req.get_ref().kind)?;
            let r = req.get_ref();
            self.authorize(&req, "delete", kind, &r.namespace, &r.name, "")?;
            let req = req.into_inner();
            let opts = DeleteOptions {
                propagation: Propagation::parse(&req.propagation_policy)?,
                precondition_uid: Some(req.uid.clone()).filter(|s| !s.is_empty()),
                precondition_resource_version: Some(req.resource_version.clone())
                    .filter(|s| !s.is_empty()),
                grace_period_seconds: req.grace_period_seconds,
            };
            if req.grace_period_seconds.is_some_and(|g| g < 0) {
                return Err(bad_request(
                    "gracePeriodSeconds: Invalid value: must be >= 0",
                ));
            }
            match self
                .store
                .delete_encoded(kind, &req.namespace, &req.name, &opts)
                .await?
            {
                (obj, Some(bytes)) => Ok(respond_encoded(obj.kind(), bytes)),
                (obj, None) => Ok(respond(obj)),
            }
        }
        .await
    }

    async fn bind(&self, req: Request<BindRequest>) -> Result<Response<ObjectResponse>, Status> {
        slot(&req).set("pods");
        async {
            let r = req.get_ref();
            self.authorize(&req, "create", Kind::Pod, &r.namespace, &r.name, "binding")?;
            let req = req.into_inner();
            Ok(respond(
                self.store
                    .bind(&req.namespace, &req.name, &req.uid, &req.node_name)
                    .await?,
            ))
        }
        .await
    }

    async fn bind_batch(
        &self,
        req: Request<BindBatchRequest>,
    ) -> Result<Response<BindBatchResponse>, Status> {
        slot(&req).set("pods");
        self.bind_batch_inner(req).await
    }

    async fn version(
        &self,
        req: Request<coxswain_api::v1::VersionRequest>,
    ) -> Result<Response<coxswain_api::v1::VersionInfo>, Status> {
        // GET /version: system:public-info-viewer grants it to everyone, authenticated or not.
        self.authorize_attrs(
            &req,
            crate::rbac::Attributes {
                verb: "get".into(),
                path: "/version".into(),
                ..Default::default()
            },
        )?;
        Ok(Response::new(coxswain_api::version::info()))
    }

    async fn access_review(
        &self,
        req: Request<coxswain_api::v1::AccessReviewRequest>,
    ) -> Result<Response<coxswain_api::v1::AccessReviewResponse>, Status> {
        // A SelfSubjectAccessReview: system:basic-user grants it to every authenticated user.
        self.authorize_attrs(
            &req,
            crate::rbac::Attributes {
                verb: "create".into(),
                api_group: "authorization.k8s.io".into(),
                resource: "selfsubjectaccessreviews".into(),
                ..Default::default()
            },
        )?;
        let r = req.get_ref();
        if r.verb.is_empty() {
            return Err(bad_request("verb: Required value"));
        }
        let kind = parse_kind(&r.resource)?;
        let allowed = self
            .authorize(&req, &r.verb, kind, &r.namespace, &r.name, &r.subresource)
            .is_ok();
        Ok(Response::new(coxswain_api::v1::AccessReviewResponse {
            allowed,
            reason: String::new(),
        }))
    }

    type WatchStream = WatchStream;

    /// The generated service's Watch; [`StoreServer`] serves the method itself with
    /// [`watch::WatchCodec`] (the same events and wire bytes, encoded from the cache's bytes).
    async fn watch(
        &self,
        req: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        use tokio_stream::StreamExt;
        let events = self.open_watch(&req)?;
        Ok(Response::new(Box::pin(events.map(|r| r.map(watch::to_pb)))))
    }
}

impl ObjectStoreService {
    /// Authorize and start a client's watch: its events as the store queues them.
    fn open_watch(&self, req_outer: &Request<WatchRequest>) -> Result<WatchEvents, Status> {
        let resource = match req_outer.get_ref().kind.as_str() {
            "" => "all",
            k => resource_of(k),
        };
        slot(req_outer).set(resource);
        let req = req_outer.get_ref();
        let kind = if req.kind.is_empty() {
            None
        } else {
            Some(parse_kind(&req.kind)?)
        };
        match kind {
            Some(k) => {
                let mut a = attrs("watch", k, &req.namespace, "", "");
                a.field_selector = req.field_selector.clone();
                self.authorize_attrs(req_outer, a)?
            }
            // A watch of every kind: only for those who may watch everything.
            None => self.authorize_attrs(
                req_outer,
                crate::rbac::Attributes {
                    verb: "watch".into(),
                    api_group: "*".into(),
                    resource: "*".into(),
                    ..Default::default()
                },
            )?,
        }
        let (labels, fields) = selectors(&req.label_selector, &req.field_selector)?;
        let opts = WatchOptions {
            kind,
            namespace: Some(req.namespace.clone()),
            labels,
            fields,
            resource_version: parse_rv(&req.resource_version)?,
            bookmarks: req.allow_bookmarks,
        };
        Ok(WatchEvents::new(self.store.watch(opts)?, resource))
    }
}
