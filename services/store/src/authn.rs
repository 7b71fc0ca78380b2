//! Authentication, as kube-apiserver's: every request is either authenticated as a user (name and
//! groups), let in as `system:anonymous` when anonymous requests are allowed, or answered
//! UNAUTHENTICATED. Health (`grpc.health.v1`) and reflection stay open, as `/healthz` does.
//!
//! Authenticators, tried in kube-apiserver's order (`pkg/kubeapiserver/authenticator/config.go`:
//! x509, then bearer tokens, in a `union` where the first that authenticates wins):
//! - client certificates verified by the TLS layer against the client CA: the subject's
//!   CommonName is the user and its Organizations the groups (upstream's
//!   `CommonNameUserConversion`; a certificate without a CommonName authenticates no one and the
//!   other credentials are tried). The certificate's subject is read with `yasna` (DER); the
//!   chain itself was verified by rustls. A request with a valid certificate is its user, whatever
//!   its `authorization` header says;
//! - bearer tokens (`authorization: Bearer <token>`) from a static token file in
//!   kube-apiserver's `--token-auth-file` CSV format: `token,user,uid,"group1,group2"`;
//! - ServiceAccount tokens (JWTs the cluster's `sa.key` signed, [`crate::satoken`]), checked
//!   against the ServiceAccount and pod they name;
//! - anonymous (`--anonymous-auth`), only when nothing above was presented: a wrong token is
//!   UNAUTHENTICATED, never anonymous (upstream's `union.NewFailOnError(chain, anonymous)`).
//!
//! The user is put in the request's extensions ([`UserInfo`]) for authorization.
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// An authenticated (or anonymous) user (shared with every service's authorization).
pub use coxswain_client::authz::UserInfo;

/// Who may come in.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    tokens: HashMap<String, UserInfo>,
    /// ServiceAccount tokens (None: not accepted).
    service_accounts: Option<Arc<crate::satoken::TokenAuthenticator>>,
    /// Let unauthenticated requests in as `system:anonymous` (`--anonymous-auth`).
    pub anonymous: bool,
}

/// Errors of the token file, with its line number.
#[derive(Debug, thiserror::Error)]
#[error("token file line {line}: {message}")]
pub struct TokenFileError {
    pub line: usize,
    pub message: String,
}

/// Split one CSV record (double quotes group, `""` is a quote).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out)
}

impl Authenticator {
    pub fn new(anonymous: bool) -> Authenticator {
        Authenticator {
            tokens: HashMap::new(),
            service_accounts: None,
            anonymous,
        }
    }

    /// Add a token.
    pub fn add_token(&mut self, token: &str, user: UserInfo) {
        self.tokens.insert(token.to_string(), user);
    }

    /// Load kube-apiserver's token file: `token,user,uid[,"group1,group2"]` per line.
    pub fn load_token_csv(&mut self, text: &str) -> Result<(), TokenFileError> {
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| TokenFileError {
                line: i + 1,
                message,
            };
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let f = csv_fields(line).map_err(err)?;
            if f.len() < 3 {
                return Err(err(format!(
                    "expected at least 3 fields (token,user,uid), got {}",
                    f.len()
                )));
            }
            if f[0].is_empty() || f[1].is_empty() {
                return Err(err("token and user must not be empty".into()));
            }
            let groups = f
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            self.add_token(
                &f[0],
                UserInfo {
                    name: f[1].clone(),
                    uid: f[2].clone(),
                    groups,
                },
            );
        }
        Ok(())
    }

    /// The user of a request with this `authorization` header and this peer certificate (the
    /// first of the chain): the certificate's if it names one ([`cert_user`]), else the bearer
    /// token's, else anonymous when allowed. Err: the status to answer with.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        peer_cert: Option<&[u8]>,
    ) -> Result<UserInfo, tonic::Status> {
        match peer_cert.and_then(cert_user) {
            Some(u) => Ok(u),
            None => self.token_or_anonymous(authorization),
        }
    }

    /// The rest of [`Authenticator::authenticate`], once no certificate named a user: the bearer
    /// token's user (a wrong token is UNAUTHENTICATED), else anonymous when allowed. A header
    /// that is not `Bearer <token>` carries no token, as upstream's `bearertoken` reads it.
    fn token_or_anonymous(&self, authorization: Option<&[u8]>) -> Result<UserInfo, tonic::Status> {
        if let Some(t) = authorization.and_then(bearer_token) {
            if let Some(sa) = &self.service_accounts {
                if crate::satoken::looks_like_jwt(t) {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64);
                    return sa.authenticate(t, now).map_err(|reason| {
                        // Upstream answers 401 without the reason; the log has it.
                        tracing::debug!(%reason, "service account token refused");
                        tonic::Status::unauthenticated("invalid bearer token")
                    });
                }
            }
            return match self.tokens.get(t) {
                Some(u) => Ok(with_authenticated(u.clone())),
                // A wrong token is not anonymous: upstream answers 401.
                None => Err(tonic::Status::unauthenticated("invalid bearer token")),
            };
        }
        if self.anonymous {
            return Ok(UserInfo::anonymous());
        }
        Err(tonic::Status::unauthenticated(NO_CREDENTIALS))
    }
}

/// The answer to a request that presented nothing that names a user, anonymous requests not
/// being allowed.
pub const NO_CREDENTIALS: &str = "Unauthorized: no credentials (a bearer token, or a client \
     certificate with a subject CommonName) were given";

/// The user a client certificate the TLS layer verified names (upstream's
/// `CommonNameUserConversion`): its subject's CommonName, in its Organizations and
/// `system:authenticated`. None when it has no CommonName (or cannot be read): it then
/// authenticates no one, and the request's other credentials are tried.
pub fn cert_user(der: &[u8]) -> Option<UserInfo> {
    let (cn, orgs) = subject_of(der)?;
    (!cn.is_empty()).then(|| {
        with_authenticated(UserInfo {
            name: cn,
            uid: String::new(),
            groups: orgs,
        })
    })
}

fn with_authenticated(mut u: UserInfo) -> UserInfo {
    if !u.groups.iter().any(|g| g == "system:authenticated") {
        u.groups.push("system:authenticated".into());
    }
    u
}

const OID_CN: &[u64] = &[2, 5, 4, 3];
const OID_O: &[u64] = &[2, 5, 4, 10];

/// The subject's CommonName and Organizations of a DER certificate.
pub fn subject_of(der: &[u8]) -> Option<(String, Vec<String>)> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let subject = r.next().read_sequence(|r| {
                // version [0] EXPLICIT, optional
                r.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_der()))?;
                r.next().read_der()?; // serialNumber
                r.next().read_der()?; // signature
                r.next().read_der()?; // issuer
                r.next().read_der()?; // validity
                let subject = r.next().read_der()?;
                // The rest (key, extensions) is not needed.
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(subject)
            })?;
            r.next().read_der()?; // signatureAlgorithm
            r.next().read_der()?; // signatureValue
            Ok(subject)
        })
    })
    .ok()
    .and_then(|subject| parse_name(&subject))
}

/// The DER of the first PEM block of a text.
pub fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The subject's CommonName and Organizations of a DER certificate request (PKCS#10), every
/// Organization kept (the signature is checked elsewhere).
pub fn csr_subject_of(der: &[u8]) -> Option<(String, Vec<String>)> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let subject = r.next().read_sequence(|r| {
                r.next().read_der()?; // version
                let subject = r.next().read_der()?;
                // The key and the attributes are not needed.
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(subject)
            })?;
            r.next().read_der()?; // signatureAlgorithm
            r.next().read_der()?; // signature
            Ok(subject)
        })
    })
    .ok()
    .and_then(|subject| parse_name(&subject))
}

fn parse_name(der: &[u8]) -> Option<(String, Vec<String>)> {
    let mut cn = String::new();
    let mut orgs = Vec::new();
    yasna::parse_der(der, |r| {
        r.read_sequence_of(|r| {
            r.read_set_of(|r| {
                r.read_sequence(|r| {
                    let oid = r.next().read_oid()?;
                    let value = r.next().read_der()?;
                    let text = yasna::parse_der(&value, |r| {
                        r.read_utf8string().or_else(|_| Ok(String::new()))
                    })
                    .unwrap_or_default();
                    let text = if text.is_empty() {
                        yasna::parse_der(&value, |r| r.read_printable_string()).unwrap_or_default()
                    } else {
                        text
                    };
                    if oid.components().as_slice() == OID_CN {
                        cn = text;
                    } else if oid.components().as_slice() == OID_O {
                        orgs.push(text);
                    }
                    Ok(())
                })
            })
        })
    })
    .ok()?;
    Some((cn, orgs))
}

/// The token of an `authorization: Bearer <token>` header (trimmed; the scheme in either case
/// kube-apiserver accepts). None for any other header: upstream's `bearertoken` then
/// authenticates no one. An empty token is Some(""), refused as a wrong one (upstream lets it
/// fall through to anonymous; here TokenReview reviews its token through
/// [`Authenticator::authenticate`], and an empty token must not come back as anonymous).
pub fn bearer_token(header: &[u8]) -> Option<&str> {
    let h = std::str::from_utf8(header).ok()?;
    let t = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))?;
    Some(t.trim())
}

/// Health and reflection: open to everyone, as `/healthz`.
pub fn open_path(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}

/// A connection's verified client certificates (the chain, the peer's first), as the TLS layer
/// hands them to every request of the connection: one `Arc` per connection.
pub type PeerCerts = Arc<Vec<tonic::transport::CertificateDer<'static>>>;

/// The users of client certificates, by connection: rustls verified the chain once, at the
/// handshake, and the subject cannot change on that connection, so it is parsed once per
/// connection instead of once per request (the DER walk and its allocations were most of
/// authentication's cost per call).
///
/// Keyed by the address of the connection's certificate list. An entry holds a [`Weak`] to it:
/// the allocation (not the certificates) outlives the connection while the entry exists, so
/// the address cannot name another connection's list. Bounded: a full map first drops the
/// entries of closed connections, then everything.
///
/// A certificate that names no one (no CommonName) is remembered as such (None).
#[derive(Default)]
struct PeerUsers {
    map: RwLock<HashMap<usize, (WeakCerts, Option<UserInfo>)>>,
}

type WeakCerts = Weak<Vec<tonic::transport::CertificateDer<'static>>>;

/// The most connections whose user is remembered.
const MAX_PEERS: usize = 4096;

impl PeerUsers {
    /// The remembered user of this connection's certificate: Some(None) when it names no one,
    /// None when nothing is remembered.
    fn get(&self, certs: &PeerCerts) -> Option<Option<UserInfo>> {
        let map = self.map.read().ok()?;
        let (weak, user) = map.get(&(Arc::as_ptr(certs) as usize))?;
        // The same allocation (kept by the Weak), so the same connection's list.
        (Weak::as_ptr(weak) == Arc::as_ptr(certs)).then(|| user.clone())
    }

    fn remember(&self, certs: &PeerCerts, user: &Option<UserInfo>) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= MAX_PEERS {
            map.retain(|_, (weak, _)| weak.strong_count() > 0);
            if map.len() >= MAX_PEERS {
                map.clear();
            }
        }
        map.insert(
            Arc::as_ptr(certs) as usize,
            (Arc::downgrade(certs), user.clone()),
        );
    }

    /// The user the request's connection's certificate names ([`cert_user`]; read once per
    /// connection). None: it names no one.
    fn user(&self, certs: &PeerCerts) -> Option<UserInfo> {
        if let Some(u) = self.get(certs) {
            return u;
        }
        let user = certs.first().and_then(|c| cert_user(c.as_ref()));
        self.remember(certs, &user);
        user
    }
}

/// The tower layer authenticating every request but health and reflection; a disabled one
/// passes everything through (authentication off). With an authorizer, it travels with each
/// authenticated request beside the user ([`coxswain_client::authz::Authz`]), for every
/// service's handlers to ask.
#[derive(Clone)]
pub struct AuthnLayer {
    auth: Option<Arc<Authenticator>>,
    authz: Option<coxswain_client::authz::Authz>,
    peers: Arc<PeerUsers>,
}

impl AuthnLayer {
    pub fn new(auth: Authenticator) -> AuthnLayer {
        AuthnLayer {
            auth: Some(Arc::new(auth)),
            authz: None,
            peers: Default::default(),
        }
    }

    pub fn disabled() -> AuthnLayer {
        AuthnLayer {
            auth: None,
            authz: None,
            peers: Default::default(),
        }
    }

    /// Accept ServiceAccount tokens ([`crate::satoken`]).
    pub fn with_service_account_tokens(
        mut self,
        sa: Arc<crate::satoken::TokenAuthenticator>,
    ) -> AuthnLayer {
        if let Some(a) = &mut self.auth {
            Arc::make_mut(a).service_accounts = Some(sa);
        }
        self
    }

    /// The authenticator (None: authentication off), for TokenReview.
    pub fn authenticator(&self) -> Option<Arc<Authenticator>> {
        self.auth.clone()
    }

    /// Give every authenticated request this authorizer.
    pub fn with_authorizer(
        mut self,
        authz: Arc<dyn coxswain_client::authz::Authorizer>,
    ) -> AuthnLayer {
        self.authz = Some(coxswain_client::authz::Authz(authz));
        self
    }
}

impl<S> tower::Layer<S> for AuthnLayer {
    type Service = Gated<S, StoreGate>;
    fn layer(&self, inner: S) -> Gated<S, StoreGate> {
        let gate = self.auth.clone().map(|auth| {
            Arc::new(StoreGate {
                auth,
                authz: self.authz.clone(),
                peers: self.peers.clone(),
            })
        });
        Gated { inner, gate }
    }
}

/// The store's [`Gate`]: the [`Authenticator`], at once (client certificates' users remembered
/// per connection); the user, and the authorizer when there is one, go with the request.
pub struct StoreGate {
    auth: Arc<Authenticator>,
    authz: Option<coxswain_client::authz::Authz>,
    peers: Arc<PeerUsers>,
}

impl Gate for StoreGate {
    type Admitted = UserInfo;
    type Future = std::future::Ready<Result<UserInfo, tonic::Status>>;

    /// [`Authenticator::authenticate`], with the certificate's user read once per connection.
    fn admit(self: Arc<Self>, c: Presented<'_>) -> Self::Future {
        let user = match c.certs.and_then(|certs| self.peers.user(certs)) {
            Some(u) => Ok(u),
            None => self.auth.token_or_anonymous(c.authorization),
        };
        if user.is_err() {
            metrics::counter!("coxswain_authentication_failures_total").increment(1);
        }
        std::future::ready(user)
    }

    fn admitted<B>(&self, user: UserInfo, req: &mut http::Request<B>) {
        req.extensions_mut().insert(user);
        if let Some(authz) = &self.authz {
            req.extensions_mut().insert(authz.clone());
        }
    }
}

/// What a [`Gate`] is shown of a request.
pub struct Presented<'a> {
    /// The `authorization` header.
    pub authorization: Option<&'a [u8]>,
    /// The client certificates the TLS layer verified (none: not TLS, or no certificate). A
    /// certificate that names a user wins over the `authorization` header, as x509 comes before
    /// bearer tokens in kube-apiserver's authenticator union ([`Authenticator::authenticate`]).
    pub certs: Option<&'a PeerCerts>,
    /// The request's path (`/package.Service/Method`).
    pub path: &'a str,
}

/// One server's authentication (and authorization) of every request but health and
/// reflection ([`open_path`]), for [`Gated`]: the store's ([`StoreGate`]) and a node agent's
/// ([`crate::kubelet_auth::KubeletAuth`]).
pub trait Gate: Send + Sync + 'static {
    /// What an admitted request is given ([`Gate::admitted`]).
    type Admitted: Send + 'static;
    type Future: std::future::Future<Output = Result<Self::Admitted, tonic::Status>>
        + Send
        + 'static;
    /// Whether the request may go on: Err is the answer it gets instead.
    fn admit(self: Arc<Self>, request: Presented<'_>) -> Self::Future;
    /// Puts what the request was given in its extensions.
    fn admitted<B>(&self, admitted: Self::Admitted, req: &mut http::Request<B>);
}

/// The tower service in front of a server's services, deciding through its [`Gate`] (none:
/// authentication off, everything passes).
pub struct Gated<S, G> {
    inner: S,
    gate: Option<Arc<G>>,
}

impl<S: Clone, G> Clone for Gated<S, G> {
    fn clone(&self) -> Self {
        Gated {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
        }
    }
}

impl<S, G> Gated<S, G> {
    pub fn new(inner: S, gate: Option<Arc<G>>) -> Gated<S, G> {
        Gated { inner, gate }
    }
}

type BoxFut<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S, G, B> tower::Service<http::Request<B>> for Gated<S, G>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    G: Gate,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFut<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The service polled ready is the one that serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(gate) = self.gate.clone() else {
            return Box::pin(inner.call(req));
        };
        if open_path(req.uri().path()) {
            return Box::pin(inner.call(req));
        }
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|h| h.as_bytes());
        let certs = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|i| i.peer_certs())
            .filter(|c| !c.is_empty());
        let admit = gate.clone().admit(Presented {
            authorization,
            certs: certs.as_ref(),
            path: req.uri().path(),
        });
        Box::pin(async move {
            match admit.await {
                Ok(admitted) => {
                    gate.admitted(admitted, &mut req);
                    inner.call(req).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_the_upstream_csv_format() {
        let mut a = Authenticator::new(false);
        a.load_token_csv("# comment\nt1,alice,u1,\"dev,ops\"\nt2,bob,u2\n")
            .unwrap();
        let u = a.authenticate(Some(b"Bearer t1"), None).unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(
            a.authenticate(Some(b"Bearer t2"), None).unwrap().name,
            "bob"
        );
        let e = a.authenticate(Some(b"Bearer nope"), None).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let e = a.load_token_csv("x,y\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(a.load_token_csv("a,\"b,c\n").is_err());
    }

    #[test]
    fn no_credentials_is_unauthenticated_unless_anonymous_is_allowed() {
        let a = Authenticator::new(false);
        assert_eq!(
            a.authenticate(None, None).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let a = Authenticator::new(true);
        let u = a.authenticate(None, None).unwrap();
        assert_eq!(u.name, "system:anonymous");
        assert_eq!(u.groups, ["system:unauthenticated"]);
        // A bad token is refused even with anonymous allowed.
        assert!(a.authenticate(Some(b"Bearer bad"), None).is_err());
    }

    #[test]
    fn health_and_reflection_are_open() {
        assert!(open_path("/grpc.health.v1.Health/Check"));
        assert!(open_path(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!open_path("/coxswain.v1.ObjectStore/Get"));
    }
}

#[cfg(test)]
mod cert_tests {
    use super::*;

    #[test]
    fn a_client_certificate_names_the_user_and_its_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kubernetes-admin");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cn, orgs) = subject_of(cert.der()).unwrap();
        assert_eq!(cn, "kubernetes-admin");
        assert_eq!(orgs, ["system:masters"]);
        let a = Authenticator::new(false);
        let u = a.authenticate(None, Some(cert.der())).unwrap();
        assert_eq!(u.groups, ["system:masters", "system:authenticated"]);
        assert!(subject_of(b"not a certificate").is_none());
    }

    fn cert(cn: &str) -> PeerCerts {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        Arc::new(vec![params.self_signed(&key).unwrap().der().clone()])
    }

    #[test]
    fn a_connections_certificate_is_parsed_once_and_never_names_another_connection() {
        let peers = PeerUsers::default();
        let alice = cert("alice");
        assert!(peers.get(&alice).is_none());
        assert_eq!(peers.user(&alice).unwrap().name, "alice");
        // Remembered for this connection's list...
        assert_eq!(peers.get(&alice).unwrap().unwrap().name, "alice");
        // ...and for no other list, even with the same contents.
        let bob = cert("bob");
        assert!(peers.get(&bob).is_none());
        assert_eq!(peers.user(&bob).unwrap().name, "bob");
        let alice_again = Arc::new(alice.as_ref().clone());
        assert!(peers.get(&alice_again).is_none());
        // A closed connection's entry keeps its allocation, so no new list takes its address.
        let addr = Arc::as_ptr(&alice) as usize;
        drop(alice);
        for _ in 0..64 {
            let c = cert("mallory");
            assert_ne!(Arc::as_ptr(&c) as usize, addr);
            assert_eq!(peers.user(&c).unwrap().name, "mallory");
        }
        // A certificate without a CommonName names no one, and is remembered as such.
        let nobody = cert("");
        assert!(peers.user(&nobody).is_none());
        assert_eq!(peers.get(&nobody), Some(None));
    }

    #[test]
    fn the_remembered_connections_are_bounded() {
        let peers = PeerUsers::default();
        let c = cert("u");
        let lists: Vec<PeerCerts> = (0..MAX_PEERS + 10)
            .map(|_| Arc::new(c.as_ref().clone()))
            .collect();
        for l in &lists {
            peers.user(l).unwrap();
        }
        assert!(peers.map.read().unwrap().len() <= MAX_PEERS);
    }

    /// kube-apiserver's union tries x509 before bearer tokens and takes the first that
    /// authenticates: a certificate that names a user wins over any `authorization` header, a
    /// wrong token included; one without a CommonName authenticates no one, and the token (or
    /// anonymous) decides.
    #[test]
    fn a_certificate_wins_over_the_bearer_token_as_x509_comes_first_upstream() {
        let mut a = Authenticator::new(false);
        a.load_token_csv("good,bob,u2,\"dev\"\n").unwrap();
        let alice = cert("alice");
        let alice = Some(alice[0].as_ref());
        for header in [
            &b"Bearer wrong"[..],
            b"Bearer good",
            b"Bearer ",
            b"Basic YWxpY2U6cHc=",
        ] {
            let u = a.authenticate(Some(header), alice).unwrap();
            assert_eq!(u.name, "alice", "{}", String::from_utf8_lossy(header));
            assert_eq!(u.groups, ["system:authenticated"]);
        }
        // Through the store's gate too, with the user remembered for the connection.
        let gate = Arc::new(StoreGate {
            auth: Arc::new(a.clone()),
            authz: None,
            peers: Default::default(),
        });
        let certs = cert("alice");
        for _ in 0..2 {
            let u = gate
                .clone()
                .admit(Presented {
                    authorization: Some(b"Bearer wrong"),
                    certs: Some(&certs),
                    path: "/coxswain.v1.ObjectStore/Get",
                })
                .into_inner()
                .unwrap();
            assert_eq!(u.name, "alice");
        }
        // No CommonName: the token decides, a wrong one is refused.
        let nobody = cert("");
        let nobody_der = Some(nobody[0].as_ref());
        assert_eq!(
            a.authenticate(Some(b"Bearer good"), nobody_der)
                .unwrap()
                .name,
            "bob"
        );
        let e = a
            .authenticate(Some(b"Bearer wrong"), nobody_der)
            .unwrap_err();
        assert_eq!(e.message(), "invalid bearer token");
        let e = gate
            .clone()
            .admit(Presented {
                authorization: Some(b"Bearer wrong"),
                certs: Some(&nobody),
                path: "/coxswain.v1.ObjectStore/Get",
            })
            .into_inner()
            .unwrap_err();
        assert_eq!(e.message(), "invalid bearer token");
        // ...and without a token it is as if no certificate had been given.
        let e = a.authenticate(None, nobody_der).unwrap_err();
        assert_eq!(e.message(), NO_CREDENTIALS);
        a.anonymous = true;
        assert_eq!(
            a.authenticate(None, nobody_der).unwrap().name,
            "system:anonymous"
        );
        // A header that is not a bearer token carries none (upstream's bearertoken), but a
        // wrong or empty bearer token is never anonymous.
        assert_eq!(
            a.authenticate(Some(b"Basic YWxpY2U6cHc="), None)
                .unwrap()
                .name,
            "system:anonymous"
        );
        for header in [&b"Bearer wrong"[..], b"Bearer ", b"Bearer   "] {
            assert!(a.authenticate(Some(header), None).is_err());
        }
    }
}
