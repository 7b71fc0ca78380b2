//! TokenRequest (`coxswain.v1.ServiceAccountTokens/CreateToken`), as kube-apiserver's
//! `serviceaccounts/token` subresource (`pkg/registry/core/serviceaccount/storage/token.go`):
//! the caller needs `create` on `serviceaccounts/token` for the ServiceAccount; the token is
//! bound to a Pod or Secret of the same namespace (its uid must match, if given), and a pod's
//! token also names the pod's node. A node agent (NodeRestriction) may only ask for a token
//! bound to a pod on its node that runs as that ServiceAccount.
use std::sync::Arc;

use coxswain_api::v1::service_account_tokens_server::{
    ServiceAccountTokens, ServiceAccountTokensServer,
};
use coxswain_api::v1::{TokenRequest, TokenRequestStatus};
use coxswain_api::{Kind, Object};
use tonic::{Request, Response, Status};

use crate::authz::{forbidden, StoreAuthorizer};
use crate::satoken::{Claims, Private, Ref, Signer, DEFAULT_EXPIRATION, MIN_EXPIRATION};
use crate::Store;

/// The longest token issued by default (`--service-account-max-token-expiration`).
pub const DEFAULT_MAX_EXPIRATION: i64 = 48 * 3600;

pub struct TokenService {
    store: Store,
    signer: Arc<Signer>,
    authz: Arc<StoreAuthorizer>,
    max_expiration: i64,
}

fn invalid(field: &str, message: &str) -> Status {
    crate::error::status(
        tonic::Code::InvalidArgument,
        "Invalid",
        format!("TokenRequest.authentication.k8s.io is invalid: {field}: {message}"),
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl TokenService {
    pub fn new(store: Store, signer: Arc<Signer>, authz: Arc<StoreAuthorizer>) -> TokenService {
        TokenService {
            store,
            signer,
            authz,
            max_expiration: DEFAULT_MAX_EXPIRATION,
        }
    }

    /// `--service-account-max-token-expiration` (seconds; at least [`MIN_EXPIRATION`]).
    pub fn with_max_expiration(mut self, secs: i64) -> TokenService {
        self.max_expiration = secs.max(MIN_EXPIRATION);
        self
    }

    pub fn into_server(self) -> ServiceAccountTokensServer<TokenService> {
        ServiceAccountTokensServer::new(self)
    }

    /// The claims for a request (the caller is already authorized), at `now`.
    pub fn claims(
        &self,
        r: &TokenRequest,
        user: Option<&crate::authn::UserInfo>,
        now: i64,
    ) -> Result<Claims, Status> {
        if r.namespace.is_empty() {
            return Err(invalid("metadata.namespace", "Required value"));
        }
        if r.name.is_empty() {
            return Err(invalid("metadata.name", "Required value"));
        }
        let exp = match r.expiration_seconds {
            0 => DEFAULT_EXPIRATION,
            e if e < MIN_EXPIRATION => {
                return Err(invalid(
                    "spec.expirationSeconds",
                    &format!("Invalid value: {e}: may not specify a duration less than 10 minutes"),
                ))
            }
            e if e > 1 << 32 => {
                return Err(invalid(
                    "spec.expirationSeconds",
                    &format!(
                        "Invalid value: {e}: may not specify a duration larger than 2^32 seconds"
                    ),
                ))
            }
            e => e.min(self.max_expiration),
        };
        let sa = self
            .store
            .get_stored(Kind::ServiceAccount, &r.namespace, &r.name)
            .map_err(|_| {
                crate::error::status(
                    tonic::Code::NotFound,
                    "NotFound",
                    format!("serviceaccounts \"{}\" not found", r.name),
                )
            })?;
        let mut k8s = Private {
            namespace: r.namespace.clone(),
            serviceaccount: Ref {
                name: r.name.clone(),
                uid: sa.uid.to_string(),
            },
            ..Default::default()
        };
        let node = user.and_then(crate::node_authz::node_identity);
        let bound = r.bound_object_ref.as_ref().filter(|b| !b.kind.is_empty());
        match bound {
            None if node.is_some() => {
                return Err(forbidden("node requested token not bound to a pod"));
            }
            None => {}
            Some(b) => {
                let kind = match b.kind.as_str() {
                    "Pod" => Kind::Pod,
                    "Secret" => Kind::Secret,
                    other => {
                        return Err(invalid(
                            "spec.boundObjectRef.kind",
                            &format!(
                            "Unsupported value: {other:?}: supported values: \"Pod\", \"Secret\""
                        ),
                        ))
                    }
                };
                let obj = self
                    .store
                    .get_stored(kind, &r.namespace, &b.name)
                    .map_err(|_| {
                        crate::error::status(
                            tonic::Code::NotFound,
                            "NotFound",
                            format!("{} \"{}\" not found", kind.plural(), b.name),
                        )
                    })?;
                if !b.uid.is_empty() && *obj.uid != *b.uid {
                    return Err(crate::error::status(
                        tonic::Code::Aborted,
                        "Conflict",
                        format!(
                            "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
                            b.uid
                        ),
                    ));
                }
                let reference = Ref {
                    name: b.name.clone(),
                    uid: obj.uid.to_string(),
                };
                match obj.decode() {
                    Object::Pod(p) => {
                        let spec = p.spec.unwrap_or_default();
                        if let Some(node) = node {
                            if spec.node_name != node {
                                return Err(forbidden(
                                    "node requested token bound to a pod scheduled on a different node",
                                ));
                            }
                            if spec.service_account_name != r.name {
                                return Err(forbidden(
                                    "node requested token bound to a pod that runs as a different service account",
                                ));
                            }
                        }
                        if !spec.node_name.is_empty() {
                            let uid = self
                                .store
                                .get_stored(Kind::Node, "", &spec.node_name)
                                .map(|n| n.uid.to_string())
                                .unwrap_or_default();
                            k8s.node = Some(Ref {
                                name: spec.node_name,
                                uid,
                            });
                        }
                        k8s.pod = Some(reference);
                    }
                    _ if node.is_some() => {
                        return Err(forbidden("node requested token not bound to a pod"));
                    }
                    _ => k8s.secret = Some(reference),
                }
            }
        }
        let aud = match r.audiences.is_empty() {
            true => self.signer.api_audiences.clone(),
            false => r.audiences.clone(),
        };
        Ok(Claims {
            aud,
            exp: now + exp,
            iat: now,
            nbf: now,
            iss: self.signer.issuer.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            sub: format!("system:serviceaccount:{}:{}", r.namespace, r.name),
            k8s,
        })
    }
}

#[tonic::async_trait]
impl ServiceAccountTokens for TokenService {
    async fn create_token(
        &self,
        req: Request<TokenRequest>,
    ) -> Result<Response<TokenRequestStatus>, Status> {
        let user = req.extensions().get::<crate::authn::UserInfo>().cloned();
        let r = req.into_inner();
        if let Some(u) = &user {
            let a = crate::rbac::Attributes {
                verb: "create".into(),
                resource: "serviceaccounts".into(),
                subresource: "token".into(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                ..Default::default()
            };
            coxswain_client::authz::Authorizer::authorize(self.authz.as_ref(), u, &a)?;
        }
        let now = now();
        let claims = self.claims(&r, user.as_ref(), now)?;
        let signer = self.signer.clone();
        let exp = claims.exp;
        // ECDSA signing off the reactor.
        let token = tokio::task::spawn_blocking(move || signer.sign(&claims))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::internal)?;
        Ok(Response::new(TokenRequestStatus {
            token,
            expiration_timestamp: coxswain_api::time::format_rfc3339(exp),
        }))
    }
}
