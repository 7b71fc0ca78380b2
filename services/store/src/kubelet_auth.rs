//! A separately run node agent's own port (`coxswain agent --listen`), authenticated and
//! authorized as the kubelet's (`--client-ca-file`, `--authentication-token-webhook`,
//! `--authorization-mode=Webhook`; upstream's `pkg/kubelet/server/auth.go`):
//! - a client certificate the TLS layer verified against the cluster CA names the user (its
//!   CommonName) and groups (its Organizations), whatever the `authorization` header says;
//! - else a bearer token is sent to the store in a TokenReview ([`crate::reviews`]); a refused
//!   one is UNAUTHENTICATED;
//! - else (no certificate naming a user, no bearer token, or tokens not accepted):
//!   UNAUTHENTICATED, unless anonymous requests are allowed (`system:anonymous`).
//!
//! That is upstream's `DelegatingAuthenticatorConfig`: a union of x509 then the token webhook,
//! the first that authenticates winning, then anonymous only when none of them failed (the
//! store's [`crate::authn::Authenticator`] has the same order).
//! - every request is then put to the store in a SubjectAccessReview with the kubelet's
//!   attributes ([`kubelet_attributes`]): resource `nodes`, the node's name, and the subresource
//!   `stats`, `metrics`, `log` or else `proxy`. A refusal is PERMISSION_DENIED with the
//!   kubelet's message.
//!
//! Answers are cached as upstream's webhook clients cache them (tokens 2 minutes, allowed 5
//! minutes, denied 30 seconds by default; all flags), in bounded maps. Health and reflection
//! stay open.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coxswain_api::v1::reviews_client::ReviewsClient;
use coxswain_api::v1::{ResourceAttributes, SubjectAccessReviewSpec, TokenReviewSpec};
use coxswain_client::authz::Attributes;
use tonic::transport::Channel;

use crate::authn::{Gate, Gated, Presented, UserInfo};

/// The most cached answers of each kind; a full cache is emptied.
const MAX_CACHED: usize = 10_000;

/// How the agent decides.
#[derive(Debug, Clone)]
pub struct KubeletAuthConfig {
    /// The node name the attributes carry (empty when one agent serves many nodes: only rules
    /// without resourceNames then match).
    pub node_name: String,
    /// Let requests without credentials in as `system:anonymous`.
    pub anonymous: bool,
    /// Check bearer tokens with TokenReview (else a bearer token is refused).
    pub token_webhook: bool,
    /// Ask the store with SubjectAccessReview (else every authenticated caller is allowed:
    /// `--authorization-mode=AlwaysAllow`).
    pub authorize: bool,
    pub token_ttl: Duration,
    pub authorized_ttl: Duration,
    pub unauthorized_ttl: Duration,
}

/// The kubelet's attributes for a NodeAgent call (upstream's
/// `nodeAuthorizerAttributesGetter.GetRequestAttributes`): resource `nodes` named after the
/// node; `/stats/` → `stats`, `/metrics` → `metrics`, `/logs/` → `log`, anything else
/// (container logs, exec) → `proxy`. The verb is what the kubelet's HTTP method would be: a
/// read is `get`, exec (a POST) `create`.
pub fn kubelet_attributes(path: &str, node: &str) -> Attributes {
    let method = path.rsplit('/').next().unwrap_or_default();
    let (verb, sub) = match method {
        "Stats" => ("get", "stats"),
        "Metrics" => ("get", "metrics"),
        "NodeLogs" => ("get", "log"),
        // kubelet's /containerLogs/: a GET under the proxy subresource.
        "Logs" => ("get", "proxy"),
        _ => ("create", "proxy"),
    };
    Attributes::resource(verb, "", "nodes", "", node).on_subresource(sub)
}

/// The kubelet's refusal message.
pub fn forbidden_message(user: &str, a: &Attributes) -> String {
    format!(
        "Forbidden (user={user}, verb={}, resource={}, subresource(s)=[{}])",
        a.verb, a.resource, a.subresource
    )
}

type Cached<T> = Mutex<HashMap<String, (Instant, T)>>;

/// The authenticator and authorizer of the agent's port.
pub struct KubeletAuth {
    config: KubeletAuthConfig,
    client: ReviewsClient<Channel>,
    tokens: Cached<Result<UserInfo, String>>,
    decisions: Cached<Result<(), String>>,
}

fn cached<T: Clone>(c: &Cached<T>, key: &str, now: Instant) -> Option<T> {
    let map = c.lock().ok()?;
    map.get(key)
        .filter(|(until, _)| *until > now)
        .map(|(_, v)| v.clone())
}

fn remember<T>(c: &Cached<T>, key: String, until: Instant, v: T) {
    if let Ok(mut map) = c.lock() {
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(key, (until, v));
    }
}

impl KubeletAuth {
    /// `store` is a channel to the store with the agent's own credentials.
    pub fn new(config: KubeletAuthConfig, store: Channel) -> KubeletAuth {
        KubeletAuth {
            config,
            client: ReviewsClient::new(store),
            tokens: Default::default(),
            decisions: Default::default(),
        }
    }

    /// The caller: the user its certificate names, else its bearer token's (TokenReview, when
    /// `token_webhook`), else anonymous when allowed.
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        peer_cert: Option<&[u8]>,
    ) -> Result<UserInfo, tonic::Status> {
        if let Some(u) = peer_cert.and_then(crate::authn::cert_user) {
            return Ok(u);
        }
        let unauthorized =
            |why: &str| tonic::Status::unauthenticated(format!("Unauthorized: {why}"));
        // Without the token webhook there is no token authenticator: a bearer token is not
        // looked at, as upstream's kubelet without --authentication-token-webhook.
        let token = authorization
            .and_then(crate::authn::bearer_token)
            .filter(|_| self.config.token_webhook);
        if let Some(token) = token {
            if token.is_empty() {
                return Err(unauthorized("invalid bearer token"));
            }
            let now = Instant::now();
            let r = match cached(&self.tokens, token, now) {
                Some(r) => r,
                None => {
                    let spec = TokenReviewSpec {
                        token: token.to_string(),
                        audiences: vec![],
                    };
                    let status = self
                        .client
                        .clone()
                        .token_review(spec)
                        .await
                        .map_err(|s| {
                            tracing::warn!(error = %s.message(), "TokenReview failed");
                            unauthorized("the token could not be reviewed")
                        })?
                        .into_inner();
                    let r = match (status.authenticated, status.user) {
                        (true, Some(u)) => Ok(UserInfo {
                            name: u.username,
                            uid: u.uid,
                            groups: u.groups,
                        }),
                        _ => Err(status.error),
                    };
                    remember(
                        &self.tokens,
                        token.to_string(),
                        now + self.config.token_ttl,
                        r.clone(),
                    );
                    r
                }
            };
            return r.map_err(|why| {
                tracing::debug!(%why, "bearer token refused");
                unauthorized("invalid bearer token")
            });
        }
        if self.config.anonymous {
            return Ok(UserInfo::anonymous());
        }
        Err(tonic::Status::unauthenticated(crate::authn::NO_CREDENTIALS))
    }

    /// Whether `user` may make the call at `path` (a SubjectAccessReview).
    pub async fn authorize(&self, user: &UserInfo, path: &str) -> Result<(), tonic::Status> {
        if !self.config.authorize {
            return Ok(());
        }
        let a = kubelet_attributes(path, &self.config.node_name);
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
            user.name,
            user.uid,
            user.groups.join(","),
            a.verb,
            a.subresource
        );
        let now = Instant::now();
        let decision = match cached(&self.decisions, &key, now) {
            Some(d) => d,
            None => {
                let spec = SubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: a.namespace.clone(),
                        verb: a.verb.clone(),
                        group: a.api_group.clone(),
                        version: "v1".into(),
                        resource: a.resource.clone(),
                        subresource: a.subresource.clone(),
                        name: a.name.clone(),
                    }),
                    non_resource_attributes: None,
                    user: user.name.clone(),
                    groups: user.groups.clone(),
                    uid: user.uid.clone(),
                };
                let status = self
                    .client
                    .clone()
                    .subject_access_review(spec)
                    .await
                    .map_err(|s| {
                        tracing::warn!(error = %s.message(), "SubjectAccessReview failed");
                        tonic::Status::internal(format!(
                            "Authorization error (user={}, verb={}, resource={}, subresource(s)=[{}])",
                            user.name, a.verb, a.resource, a.subresource
                        ))
                    })?
                    .into_inner();
                let (d, ttl) = match status.allowed {
                    true => (Ok(()), self.config.authorized_ttl),
                    false => (Err(status.reason), self.config.unauthorized_ttl),
                };
                remember(&self.decisions, key, now + ttl, d.clone());
                d
            }
        };
        decision.map_err(|reason| {
            tracing::debug!(%reason, user = %user.name, "agent call denied");
            crate::authz::forbidden(forbidden_message(&user.name, &a))
        })
    }
}

/// The tower layer of the agent's server.
#[derive(Clone)]
pub struct KubeletAuthLayer {
    auth: Option<Arc<KubeletAuth>>,
}

impl KubeletAuthLayer {
    pub fn new(auth: KubeletAuth) -> KubeletAuthLayer {
        KubeletAuthLayer {
            auth: Some(Arc::new(auth)),
        }
    }

    /// Everyone in (an agent of a store without authentication).
    pub fn disabled() -> KubeletAuthLayer {
        KubeletAuthLayer { auth: None }
    }
}

impl<S> tower::Layer<S> for KubeletAuthLayer {
    type Service = Gated<S, KubeletAuth>;
    fn layer(&self, inner: S) -> Gated<S, KubeletAuth> {
        Gated::new(inner, self.auth.clone())
    }
}

type BoxFut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// The kubelet's authentication, then its authorization of the call; nothing goes with an
/// admitted request.
impl Gate for KubeletAuth {
    type Admitted = ();
    type Future = BoxFut<Result<(), tonic::Status>>;

    fn admit(self: Arc<Self>, c: Presented<'_>) -> Self::Future {
        let authorization = c.authorization.map(<[u8]>::to_vec);
        let cert = c.certs.and_then(|c| c.first().map(|c| c.as_ref().to_vec()));
        let path = c.path.to_string();
        Box::pin(async move {
            let user = self
                .authenticate(authorization.as_deref(), cert.as_deref())
                .await
                .inspect_err(|_| {
                    metrics::counter!("coxswain_authentication_failures_total").increment(1)
                })?;
            self.authorize(&user, &path).await
        })
    }

    fn admitted<B>(&self, _: (), _: &mut http::Request<B>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_map_to_the_kubelets_node_subresources() {
        let a = kubelet_attributes("/coxswain.v1.NodeAgent/Stats", "n1");
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource.as_str(),
                a.subresource.as_str(),
                a.name.as_str()
            ),
            ("get", "nodes", "stats", "n1")
        );
        let a = kubelet_attributes("/coxswain.v1.NodeAgent/Logs", "n1");
        assert_eq!((a.verb.as_str(), a.subresource.as_str()), ("get", "proxy"));
        let a = kubelet_attributes("/coxswain.v1.NodeAgent/Exec", "n1");
        assert_eq!(
            (a.verb.as_str(), a.subresource.as_str()),
            ("create", "proxy")
        );
        assert_eq!(
            forbidden_message("bob", &a),
            "Forbidden (user=bob, verb=create, resource=nodes, subresource(s)=[proxy])"
        );
    }

    fn cert(cn: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// An agent whose store cannot be reached: any TokenReview fails.
    fn agent(token_webhook: bool, anonymous: bool) -> KubeletAuth {
        let store = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        KubeletAuth::new(
            KubeletAuthConfig {
                node_name: "n1".into(),
                anonymous,
                token_webhook,
                authorize: false,
                token_ttl: Duration::from_secs(120),
                authorized_ttl: Duration::from_secs(300),
                unauthorized_ttl: Duration::from_secs(30),
            },
            store,
        )
    }

    /// As the store's authenticator and upstream's kubelet (x509 before the token webhook, the
    /// first that authenticates winning): a certificate naming a user wins over any bearer
    /// token, which is then not even reviewed.
    #[tokio::test]
    async fn a_certificate_wins_over_the_bearer_token_as_upstreams_kubelet() {
        let a = agent(true, false);
        let alice = cert("alice");
        for header in [&b"Bearer wrong"[..], b"Bearer ", b"Basic YWxpY2U6cHc="] {
            let u = a.authenticate(Some(header), Some(&alice)).await.unwrap();
            assert_eq!(u.name, "alice");
            assert_eq!(u.groups, ["system:authenticated"]);
        }
        // A certificate without a CommonName names no one: the token is reviewed (and the
        // unreachable store refuses it); without a token, no credentials.
        let nobody = cert("");
        let e = a
            .authenticate(Some(b"Bearer t"), Some(&nobody))
            .await
            .unwrap_err();
        assert_eq!(e.message(), "Unauthorized: the token could not be reviewed");
        let e = a.authenticate(None, Some(&nobody)).await.unwrap_err();
        assert_eq!(e.message(), crate::authn::NO_CREDENTIALS);
        // Anonymous only when nothing was presented that names a user or fails: a header that
        // is not a bearer token carries none, and without the token webhook a bearer token is
        // not looked at (upstream's kubelet has no token authenticator then).
        let a = agent(true, true);
        let u = a.authenticate(Some(b"Basic eDp5"), None).await.unwrap();
        assert_eq!(u.name, "system:anonymous");
        assert!(a.authenticate(Some(b"Bearer t"), None).await.is_err());
        let e = a.authenticate(Some(b"Bearer "), None).await.unwrap_err();
        assert_eq!(e.message(), "Unauthorized: invalid bearer token");
        let a = agent(false, true);
        let u = a.authenticate(Some(b"Bearer t"), None).await.unwrap();
        assert_eq!(u.name, "system:anonymous");
        let a = agent(false, false);
        let e = a.authenticate(Some(b"Bearer t"), None).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn caches_expire_and_stay_bounded() {
        let c: Cached<u32> = Default::default();
        let now = Instant::now();
        remember(&c, "a".into(), now + Duration::from_secs(1), 1);
        assert_eq!(cached(&c, "a", now), Some(1));
        assert_eq!(cached(&c, "a", now + Duration::from_secs(2)), None);
        for i in 0..MAX_CACHED + 5 {
            remember(&c, i.to_string(), now + Duration::from_secs(1), 0);
        }
        assert!(c.lock().unwrap().len() <= MAX_CACHED);
    }
}
