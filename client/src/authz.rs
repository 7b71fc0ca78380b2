//! Authorization of the calls every coxswain gRPC service serves, in Kubernetes' terms.
//!
//! The server's authentication layer (`coxswain_store::authn`) puts the caller ([`UserInfo`])
//! and the server's [`Authorizer`] ([`Authz`]) in each request's extensions. A handler names
//! what its call does as Kubernetes would see the request ([`Attributes`]: verb, API group,
//! resource, subresource, namespace, name — `update deployments/scale`, `create pods/exec`,
//! `get pods` in `metrics.k8s.io`) and asks [`check`]. The store's own ObjectStore service and
//! every other service (Scheduler, Workloads, NodeAgent, Metrics, Autoscaler) are thus decided
//! by the same authorizer (the Node authorizer, then RBAC).
//!
//! With authentication off there is no user in the request and every call is allowed, as
//! before. A user without an authorizer (a server that authenticates but was given none) is
//! refused: authorization fails closed.
use std::sync::Arc;

/// An authenticated (or anonymous) user: upstream's `user.Info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        }
    }
}

/// What a request does to what (upstream's `authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// A non-resource request's path (`/version`); empty for resource requests.
    pub path: String,
    /// A list or watch's field selector (the Node authorizer reads `spec.nodeName=`).
    pub field_selector: String,
}

impl Attributes {
    /// A resource request: `verb` on `resource` of `api_group` ("" is the core group), in
    /// `namespace` ("" for cluster-scoped resources or every namespace), on `name` ("" for a
    /// list or a create).
    pub fn resource(
        verb: &str,
        api_group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            verb: verb.into(),
            api_group: api_group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// The same request on a subresource (`scale`, `log`, `exec`, `stats`).
    pub fn on_subresource(mut self, subresource: &str) -> Attributes {
        self.subresource = subresource.into();
        self
    }

    /// A non-resource request (`get /configz`).
    pub fn path(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }
}

/// Decides whether a user may do something; a refusal is the status to answer with
/// (PERMISSION_DENIED with upstream's Forbidden message).
pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, user: &UserInfo, a: &Attributes) -> Result<(), tonic::Status>;
}

/// The server's authorizer, as a request extension.
#[derive(Clone)]
pub struct Authz(pub Arc<dyn Authorizer>);

/// Whether the caller of `req` may do `a` (see the module's documentation).
pub fn check<T>(req: &tonic::Request<T>, a: &Attributes) -> Result<(), tonic::Status> {
    check_extensions(req.extensions(), a)
}

/// [`check`] with a request's extensions (a streaming call that reads its first message
/// before it knows what it does).
pub fn check_extensions(ext: &tonic::Extensions, a: &Attributes) -> Result<(), tonic::Status> {
    let Some(user) = ext.get::<UserInfo>() else {
        return Ok(());
    };
    match ext.get::<Authz>() {
        Some(Authz(authz)) => authz.authorize(user, a),
        None => Err(tonic::Status::permission_denied(format!(
            "forbidden: no authorizer is configured for this server (user {:?})",
            user.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OnlyGets;
    impl Authorizer for OnlyGets {
        fn authorize(&self, _u: &UserInfo, a: &Attributes) -> Result<(), tonic::Status> {
            match a.verb.as_str() {
                "get" => Ok(()),
                _ => Err(tonic::Status::permission_denied("no")),
            }
        }
    }

    #[test]
    fn calls_are_checked_only_with_a_user_and_fail_closed_without_an_authorizer() {
        let get = Attributes::resource("get", "", "pods", "d", "p").on_subresource("log");
        assert_eq!(get.subresource, "log");
        let create = Attributes::resource("create", "", "pods", "d", "p").on_subresource("exec");
        // Authentication off: no user, everything allowed.
        let req = tonic::Request::new(());
        assert!(check(&req, &create).is_ok());
        // A user and the server's authorizer: it decides.
        let mut req = tonic::Request::new(());
        req.extensions_mut().insert(UserInfo::anonymous());
        req.extensions_mut().insert(Authz(Arc::new(OnlyGets)));
        assert!(check(&req, &get).is_ok());
        assert_eq!(
            check(&req, &create).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        // A user and no authorizer: refused.
        let mut req = tonic::Request::new(());
        req.extensions_mut().insert(UserInfo::anonymous());
        assert_eq!(
            check(&req, &get).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
    }
}
