//! The tower layer in front of a server's services: [`Gated`], deciding through a [`Gate`],
//! the store's [`StoreGate`] with the users of client certificates remembered per connection.
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::{cert_user, open_path, Authenticator, UserInfo};

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
    use crate::authn::NO_CREDENTIALS;

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
