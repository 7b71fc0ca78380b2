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
use std::sync::Arc;

mod gate;
mod x509;

pub use gate::{AuthnLayer, Gate, Gated, PeerCerts, Presented, StoreGate};
pub use x509::{cert_user, csr_subject_of, pem_der, subject_of};

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

fn with_authenticated(mut u: UserInfo) -> UserInfo {
    if !u.groups.iter().any(|g| g == "system:authenticated") {
        u.groups.push("system:authenticated".into());
    }
    u
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
