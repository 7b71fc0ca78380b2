//! `coxswain.v1.Reviews`: what a separately run node agent asks the store to authenticate and
//! authorize its own callers, as the kubelet's `--authentication-token-webhook` and
//! `--authorization-mode=Webhook` do (upstream's TokenReview and SubjectAccessReview), and its
//! serving certificate (a CertificateSigningRequest for `kubernetes.io/kubelet-serving`).
//!
//! - TokenReview: the caller needs `create tokenreviews` (authentication.k8s.io); the token is
//!   tried against the server's own token authenticators (the token file, ServiceAccount
//!   tokens). A refused token is `authenticated: false`, not an error.
//! - SubjectAccessReview: the caller needs `create subjectaccessreviews` (authorization.k8s.io);
//!   the answer is the server's authorizer's (masters, Node, RBAC) for the user and groups given.
//! - SignKubeletServing: the caller needs `create certificatesigningrequests`
//!   (certificates.k8s.io), and is the node the request names or may `approve` the signer
//!   `kubernetes.io/kubelet-serving` (upstream's approval rule); the request must satisfy
//!   upstream's `ValidateKubeletServingCSR` (checked by the signer, [`ServingSigner`]).
use std::sync::Arc;

use coxswain_api::v1::reviews_server::{Reviews, ReviewsServer};
use coxswain_api::v1::{
    KubeletServingCertificate, KubeletServingRequest, ReviewUserInfo, SubjectAccessReviewSpec,
    SubjectAccessReviewStatus, TokenReviewSpec, TokenReviewStatus,
};
use coxswain_client::authz::{Attributes, Authorizer};
use tonic::{Request, Response, Status};

use crate::authn::{Authenticator, UserInfo};

/// The signer `kubernetes.io/kubelet-serving`.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// Signs a kubelet serving certificate request with the cluster CA: Ok((node name, certificate
/// PEM)), Err(why the request is invalid).
pub trait ServingSigner: Send + Sync + 'static {
    fn sign(&self, csr_pem: &str) -> Result<(String, String), String>;
    /// The CA's certificate (PEM).
    fn ca_pem(&self) -> String;
}

pub struct ReviewService {
    authn: Arc<Authenticator>,
    authz: Arc<dyn Authorizer>,
    signer: Option<Arc<dyn ServingSigner>>,
}

fn invalid(kind: &str, field: &str, message: &str) -> Status {
    crate::error::status(
        tonic::Code::InvalidArgument,
        "Invalid",
        format!("{kind} is invalid: {field}: {message}"),
    )
}

fn bounded(s: &str, field: &str, max: usize) -> Result<(), Status> {
    match s.len() > max {
        true => Err(invalid(
            "request",
            field,
            &format!("Too long: may not be more than {max} bytes"),
        )),
        false => Ok(()),
    }
}

/// The attributes a SubjectAccessReview asks about (upstream's `ResourceAttributesFrom` and
/// `NonResourceAttributesFrom`).
pub fn attributes_of(spec: &SubjectAccessReviewSpec) -> Result<Attributes, Status> {
    const KIND: &str = "SubjectAccessReview.authorization.k8s.io";
    match (&spec.resource_attributes, &spec.non_resource_attributes) {
        (Some(r), None) => {
            if r.verb.is_empty() {
                return Err(invalid(
                    KIND,
                    "spec.resourceAttributes.verb",
                    "Required value",
                ));
            }
            let mut a = Attributes::resource(&r.verb, &r.group, &r.resource, &r.namespace, &r.name);
            a.subresource = r.subresource.clone();
            Ok(a)
        }
        (None, Some(n)) => {
            if n.verb.is_empty() || n.path.is_empty() {
                return Err(invalid(
                    KIND,
                    "spec.nonResourceAttributes",
                    "path and verb are required",
                ));
            }
            Ok(Attributes::path(&n.verb, &n.path))
        }
        (Some(_), Some(_)) => Err(invalid(
            KIND,
            "spec.resourceAttributes",
            "cannot be specified in combination with nonResourceAttributes",
        )),
        (None, None) => Err(invalid(
            KIND,
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

impl ReviewService {
    pub fn new(
        authn: Arc<Authenticator>,
        authz: Arc<dyn Authorizer>,
        signer: Option<Arc<dyn ServingSigner>>,
    ) -> ReviewService {
        ReviewService {
            authn,
            authz,
            signer,
        }
    }

    pub fn into_server(self) -> ReviewsServer<ReviewService> {
        ReviewsServer::new(self)
    }

    /// The caller may do `verb` on `resource` of `group` (authentication off: anyone may).
    fn may<T>(
        &self,
        req: &Request<T>,
        verb: &str,
        group: &str,
        resource: &str,
    ) -> Result<(), Status> {
        match req.extensions().get::<UserInfo>() {
            Some(u) => self
                .authz
                .authorize(u, &Attributes::resource(verb, group, resource, "", "")),
            None => Ok(()),
        }
    }

    /// The TokenReview's answer for a token.
    pub fn review_token(&self, spec: &TokenReviewSpec) -> Result<TokenReviewStatus, Status> {
        if !spec.audiences.is_empty() {
            return Err(invalid(
                "TokenReview.authentication.k8s.io",
                "spec.audiences",
                "only the API server's own audiences are reviewed here (leave it empty)",
            ));
        }
        bounded(&spec.token, "spec.token", 16 << 10)?;
        if spec.token.is_empty() {
            return Err(invalid(
                "TokenReview.authentication.k8s.io",
                "spec.token",
                "Required value",
            ));
        }
        let header = format!("Bearer {}", spec.token);
        Ok(
            match self.authn.authenticate(Some(header.as_bytes()), None) {
                Ok(u) => TokenReviewStatus {
                    authenticated: true,
                    user: Some(ReviewUserInfo {
                        username: u.name,
                        uid: u.uid,
                        groups: u.groups,
                    }),
                    audiences: vec![],
                    error: String::new(),
                },
                Err(s) => TokenReviewStatus {
                    authenticated: false,
                    user: None,
                    audiences: vec![],
                    error: s.message().to_string(),
                },
            },
        )
    }

    /// The SubjectAccessReview's answer.
    pub fn review_access(
        &self,
        spec: &SubjectAccessReviewSpec,
    ) -> Result<SubjectAccessReviewStatus, Status> {
        if spec.user.is_empty() && spec.groups.is_empty() {
            return Err(invalid(
                "SubjectAccessReview.authorization.k8s.io",
                "spec.user,spec.groups",
                "at least one of user or group must be specified",
            ));
        }
        let a = attributes_of(spec)?;
        let user = UserInfo {
            name: spec.user.clone(),
            uid: spec.uid.clone(),
            groups: spec.groups.clone(),
        };
        Ok(match self.authz.authorize(&user, &a) {
            Ok(()) => SubjectAccessReviewStatus {
                allowed: true,
                ..Default::default()
            },
            Err(s) => SubjectAccessReviewStatus {
                allowed: false,
                denied: false,
                reason: s.message().to_string(),
                evaluation_error: String::new(),
            },
        })
    }
}

#[tonic::async_trait]
impl Reviews for ReviewService {
    async fn token_review(
        &self,
        req: Request<TokenReviewSpec>,
    ) -> Result<Response<TokenReviewStatus>, Status> {
        self.may(&req, "create", "authentication.k8s.io", "tokenreviews")?;
        let spec = req.into_inner();
        Ok(Response::new(self.review_token(&spec)?))
    }

    async fn subject_access_review(
        &self,
        req: Request<SubjectAccessReviewSpec>,
    ) -> Result<Response<SubjectAccessReviewStatus>, Status> {
        self.may(
            &req,
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
        )?;
        Ok(Response::new(self.review_access(req.get_ref())?))
    }

    async fn sign_kubelet_serving(
        &self,
        req: Request<KubeletServingRequest>,
    ) -> Result<Response<KubeletServingCertificate>, Status> {
        self.may(
            &req,
            "create",
            "certificates.k8s.io",
            "certificatesigningrequests",
        )?;
        let Some(signer) = self.signer.clone() else {
            return Err(Status::failed_precondition(
                "this server has no cluster CA to sign with",
            ));
        };
        let user = req.extensions().get::<UserInfo>().cloned();
        let pem = req.into_inner().csr_pem;
        bounded(&pem, "csr_pem", 16 << 10)?;
        // Parsing and signing (ECDSA) off the reactor.
        let s = signer.clone();
        let (node, cert) = tokio::task::spawn_blocking(move || s.sign(&pem))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|m| {
                invalid(
                    "CertificateSigningRequest.certificates.k8s.io",
                    "spec.request",
                    &m,
                )
            })?;
        if let Some(u) = &user {
            // Approval: a node for itself, else whoever may approve this signer.
            let own = crate::node_authz::node_identity(u) == Some(node.as_str());
            if !own {
                let a = Attributes::resource(
                    "approve",
                    "certificates.k8s.io",
                    "signers",
                    "",
                    KUBELET_SERVING_SIGNER,
                );
                self.authz.authorize(u, &a).map_err(|_| {
                    crate::authz::forbidden(format!(
                        "user {:?} may not have a serving certificate issued for node {node:?}: \
                         only that node, or who may approve signer {KUBELET_SERVING_SIGNER}",
                        u.name
                    ))
                })?;
            }
        }
        Ok(Response::new(KubeletServingCertificate {
            certificate_pem: cert,
            ca_pem: signer.ca_pem(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{NonResourceAttributes, ResourceAttributes};

    struct OnlyAlice;
    impl Authorizer for OnlyAlice {
        fn authorize(&self, u: &UserInfo, a: &Attributes) -> Result<(), Status> {
            match (u.name.as_str(), a.resource.as_str()) {
                ("alice", "nodes") => Ok(()),
                _ => Err(crate::authz::forbidden(format!("{} may not", u.name))),
            }
        }
    }

    fn service() -> ReviewService {
        let mut a = Authenticator::new(false);
        a.load_token_csv("t1,alice,u1,\"dev\"\n").unwrap();
        ReviewService::new(Arc::new(a), Arc::new(OnlyAlice), None)
    }

    #[test]
    fn token_reviews_name_the_user_or_say_why_not() {
        let s = service();
        let ok = s
            .review_token(&TokenReviewSpec {
                token: "t1".into(),
                audiences: vec![],
            })
            .unwrap();
        assert!(ok.authenticated);
        let u = ok.user.unwrap();
        assert_eq!(u.username, "alice");
        assert_eq!(u.groups, ["dev", "system:authenticated"]);
        let no = s
            .review_token(&TokenReviewSpec {
                token: "nope".into(),
                audiences: vec![],
            })
            .unwrap();
        assert!(!no.authenticated && no.user.is_none() && !no.error.is_empty());
        assert!(s.review_token(&TokenReviewSpec::default()).is_err());
        let e = s
            .review_token(&TokenReviewSpec {
                token: "t1".into(),
                audiences: vec!["other".into()],
            })
            .unwrap_err();
        assert!(e.message().contains("spec.audiences"), "{e}");
    }

    #[test]
    fn access_reviews_ask_the_authorizer_for_the_user_given() {
        let s = service();
        let spec = |user: &str| SubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: "get".into(),
                resource: "nodes".into(),
                subresource: "proxy".into(),
                name: "n1".into(),
                ..Default::default()
            }),
            user: user.into(),
            ..Default::default()
        };
        assert!(s.review_access(&spec("alice")).unwrap().allowed);
        let bob = s.review_access(&spec("bob")).unwrap();
        assert!(!bob.allowed && bob.reason.contains("bob"));
        let mut both = spec("alice");
        both.non_resource_attributes = Some(NonResourceAttributes {
            path: "/healthz".into(),
            verb: "get".into(),
        });
        assert!(s.review_access(&both).is_err());
        assert!(s.review_access(&spec("")).is_err());
        let a = attributes_of(&spec("x")).unwrap();
        assert_eq!(
            (a.resource.as_str(), a.subresource.as_str(), a.name.as_str()),
            ("nodes", "proxy", "n1")
        );
    }
}
