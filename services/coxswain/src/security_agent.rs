//! A separately run `coxswain agent`'s own port, secured as the kubelet's: TLS with a serving
//! certificate the cluster CA signed, client certificates from the cluster CA, bearer tokens
//! checked with TokenReview and every call with SubjectAccessReview against the store
//! ([`coxswain_store::kubelet_auth`]).
//!
//! The serving certificate is `--tls-cert-file`/`--tls-private-key-file`, else the agent makes
//! a key and asks the store to sign a request for it (`Reviews/SignKubeletServing`, upstream's
//! `kubernetes.io/kubelet-serving` signer: CN `system:node:<name>`, O `system:nodes`, the
//! listen address and the node name as subject alternative names). The store side of that
//! signer is [`CaSigner`].
//!
//! An agent whose store is plain `http://` (a cluster run with `--auth=false`) serves plain
//! gRPC and checks nobody, as before: there is no CA and no store to ask.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use coxswain_api::v1::reviews_client::ReviewsClient;
use coxswain_api::v1::KubeletServingRequest;
use coxswain_store::kubelet_auth::{KubeletAuth, KubeletAuthConfig, KubeletAuthLayer};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tonic::transport::{Certificate, Channel, Endpoint, Identity, ServerTlsConfig};

use crate::duration;

/// `coxswain agent`'s serving and authentication flags (the kubelet's).
#[derive(Args, Clone, Debug)]
pub struct AgentServingOpts {
    /// The serving certificate (PEM); default: one the store signs for this agent.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The serving certificate's key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Client certificates signed by these CAs (PEM) authenticate; default: the cluster CA of
    /// the kubeconfig.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Let calls without credentials in as `system:anonymous` (authorization then decides).
    #[arg(long = "anonymous-auth", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// Check bearer tokens with a TokenReview to the store (else a bearer token is not looked
    /// at: no credentials, as upstream's kubelet without a token authenticator).
    #[arg(long, default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub authentication_token_webhook: bool,
    /// How long a TokenReview's answer is kept.
    #[arg(long, default_value = "2m", value_parser = duration::parse)]
    pub authentication_token_webhook_cache_ttl: Duration,
    /// `Webhook` (a SubjectAccessReview to the store for every call) or `AlwaysAllow`.
    #[arg(long, default_value = "Webhook")]
    pub authorization_mode: String,
    /// How long an allowing SubjectAccessReview is kept.
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    pub authorization_webhook_cache_authorized_ttl: Duration,
    /// How long a denying SubjectAccessReview is kept.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,
    /// How long to keep asking an unreachable store for the serving certificate.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub serving_certificate_timeout: Duration,
}

/// What the agent's server needs: its TLS configuration and authentication layer.
pub struct AgentServing {
    pub tls: ServerTlsConfig,
    pub layer: KubeletAuthLayer,
}

/// A channel to the store (the first address of a list) with the agent's own credentials.
fn store_channel(server: &str) -> anyhow::Result<Channel> {
    let url = server
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let ep = Endpoint::from_shared(url.clone())
        .with_context(|| format!("--server {url:?}"))?
        .connect_timeout(Duration::from_secs(5));
    let ep = coxswain_client::config::secure(ep, &url).context("TLS to the store")?;
    // Through the client library's connector: a wrong scheme fails naming the right one.
    Ok(coxswain_client::scheme::connect_lazy(&ep))
}

/// The subject alternative names of the agent's serving certificate.
fn serving_names(listen: SocketAddr, nodes: &[String]) -> Vec<String> {
    let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !listen.ip().is_unspecified() && !sans.contains(&listen.ip().to_string()) {
        sans.push(listen.ip().to_string());
    }
    for n in nodes {
        if !sans.contains(n) && rcgen::string::Ia5String::try_from(n.as_str()).is_ok() {
            sans.push(n.clone());
        }
    }
    sans
}

/// A key and a certificate request for the kubelet-serving signer.
pub fn serving_request(node: &str, sans: Vec<String>) -> anyhow::Result<(KeyPair, String)> {
    let mut params = CertificateParams::new(sans)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("system:node:{node}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    let key = KeyPair::generate()?;
    let csr = params.serialize_request(&key)?.pem()?;
    Ok((key, csr))
}

/// The serving certificate signed by the store, asked until `timeout` while it is unreachable.
async fn request_serving(
    store: Channel,
    node: &str,
    sans: Vec<String>,
    timeout: Duration,
) -> anyhow::Result<(String, String)> {
    let (key, csr) = serving_request(node, sans)?;
    let mut client = ReviewsClient::new(store);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut backoff = Duration::from_millis(200);
    loop {
        match client
            .sign_kubelet_serving(KubeletServingRequest {
                csr_pem: csr.clone(),
            })
            .await
        {
            Ok(r) => return Ok((r.into_inner().certificate_pem, key.serialize_pem())),
            Err(s) => {
                // A wrong scheme ("the server at H:P speaks plain HTTP/2, not TLS: use
                // http://H:P") is no reason to ask again.
                let wrong_scheme = coxswain_client::scheme::find(&s);
                if wrong_scheme.is_none()
                    && s.code() == tonic::Code::Unavailable
                    && tokio::time::Instant::now() + backoff < deadline
                {
                    tracing::info!(error = %s.message(), "the store is not reachable yet; asking again for the serving certificate");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                bail!(
                    "the store did not sign this agent's serving certificate: {}",
                    wrong_scheme.unwrap_or_else(|| s.message().to_string())
                )
            }
        }
    }
}

/// The agent's TLS and authentication, or None when its store is plain `http://` and no
/// certificate is given (nothing to check callers against).
pub async fn prepare(
    opts: &AgentServingOpts,
    server: &str,
    listen: SocketAddr,
    nodes: &[String],
) -> anyhow::Result<Option<AgentServing>> {
    if !server.starts_with("https://") && opts.tls_cert_file.is_none() {
        return Ok(None);
    }
    let authorize = match opts.authorization_mode.as_str() {
        "Webhook" => true,
        "AlwaysAllow" => false,
        m => bail!("--authorization-mode: {m:?} is neither Webhook nor AlwaysAllow"),
    };
    let creds = coxswain_client::config::installed().unwrap_or_default();
    let client_ca = match &opts.client_ca_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("--client-ca-file {}", f.display()))?,
        None => creds.ca_pem.clone(),
    };
    if client_ca.is_empty() {
        bail!("no client CA: give --client-ca-file, or a kubeconfig with the cluster's CA");
    }
    let store = store_channel(server)?;
    let (cert, key) = match (&opts.tls_cert_file, &opts.tls_private_key_file) {
        (Some(c), Some(k)) => (
            std::fs::read_to_string(c)
                .with_context(|| format!("--tls-cert-file {}", c.display()))?,
            std::fs::read_to_string(k)
                .with_context(|| format!("--tls-private-key-file {}", k.display()))?,
        ),
        _ => {
            let node = nodes.first().context("no node name")?;
            let sans = serving_names(listen, nodes);
            request_serving(store.clone(), node, sans, opts.serving_certificate_timeout).await?
        }
    };
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&cert, &key))
        .client_ca_root(Certificate::from_pem(&client_ca))
        .client_auth_optional(true);
    let config = KubeletAuthConfig {
        // One agent for many simulated nodes has no single name to put in the attributes.
        node_name: match nodes {
            [one] => one.clone(),
            _ => String::new(),
        },
        anonymous: opts.anonymous_auth,
        token_webhook: opts.authentication_token_webhook,
        authorize,
        token_ttl: opts.authentication_token_webhook_cache_ttl,
        authorized_ttl: opts.authorization_webhook_cache_authorized_ttl,
        unauthorized_ttl: opts.authorization_webhook_cache_unauthorized_ttl,
    };
    tracing::info!(
        anonymous = opts.anonymous_auth,
        authorization = %opts.authorization_mode,
        "serving the agent over TLS; callers are authenticated and authorized by the store"
    );
    Ok(Some(AgentServing {
        tls,
        layer: KubeletAuthLayer::new(KubeletAuth::new(config, store)),
    }))
}

/// The store's side of the kubelet-serving signer: upstream's `ValidateKubeletServingCSR`, then
/// a server-auth certificate from the cluster CA.
pub struct CaSigner {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl CaSigner {
    pub fn new(issuer: Issuer<'static, KeyPair>, ca_pem: String) -> CaSigner {
        CaSigner { issuer, ca_pem }
    }
}

/// Upstream's checks of a kubelet serving request's subject and names: the node's name.
fn validate_kubelet_serving(cn: &str, orgs: &[String], sans: &[SanType]) -> Result<String, String> {
    if orgs != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    let node = cn
        .strip_prefix("system:node:")
        .filter(|n| !n.is_empty())
        .ok_or("subject common name does not begin with system:node:")?;
    let mut names = 0;
    for s in sans {
        match s {
            SanType::DnsName(_) | SanType::IpAddress(_) => names += 1,
            SanType::Rfc822Name(_) => return Err("email subjectAltNames are not allowed".into()),
            SanType::URI(_) => return Err("URI subjectAltNames are not allowed".into()),
            _ => return Err("only DNS and IP subjectAltNames are allowed".into()),
        }
    }
    if names == 0 {
        return Err("DNS or IP subjectAltName is required".into());
    }
    Ok(node.to_string())
}

impl coxswain_store::reviews::ServingSigner for CaSigner {
    fn sign(&self, csr_pem: &str) -> Result<(String, String), String> {
        let req = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| format!("not a valid certificate request: {e}"))?;
        let der = coxswain_store::authn::pem_der(csr_pem).ok_or("not a PEM certificate request")?;
        let (cn, orgs) =
            coxswain_store::authn::csr_subject_of(&der).ok_or("the request has no subject")?;
        let node = validate_kubelet_serving(&cn, &orgs, &req.params.subject_alt_names)?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:nodes");
        params.subject_alt_names = req.params.subject_alt_names.clone();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let cert = params
            .signed_by(&req.public_key, &self.issuer)
            .map_err(|e| format!("signing: {e}"))?;
        Ok((node, cert.pem()))
    }

    fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_store::reviews::ServingSigner;

    fn signer() -> CaSigner {
        let tmp = tempfile::tempdir().unwrap();
        crate::security::generate(tmp.path()).unwrap();
        crate::security::ca_signer(tmp.path()).unwrap()
    }

    #[test]
    fn the_signer_issues_a_nodes_serving_certificate_and_refuses_other_requests() {
        let s = signer();
        let (_key, csr) =
            serving_request("edge1", vec!["127.0.0.1".into(), "edge1".into()]).unwrap();
        let (node, cert) = s.sign(&csr).unwrap();
        assert_eq!(node, "edge1");
        let (cn, orgs) =
            coxswain_store::authn::subject_of(&coxswain_store::authn::pem_der(&cert).unwrap())
                .unwrap();
        assert_eq!(cn, "system:node:edge1");
        assert_eq!(orgs, ["system:nodes"]);
        // Another subject: refused.
        let mut params = CertificateParams::new(vec!["x".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes-admin");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        let key = KeyPair::generate().unwrap();
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        assert!(s.sign(&csr).unwrap_err().contains("system:nodes"));
        assert!(s.sign("garbage").is_err());
    }

    #[test]
    fn kubelet_serving_names_are_checked_as_upstream() {
        let ip = SanType::IpAddress("127.0.0.1".parse().unwrap());
        let orgs = vec!["system:nodes".to_string()];
        assert_eq!(
            validate_kubelet_serving("system:node:a", &orgs, std::slice::from_ref(&ip)).unwrap(),
            "a"
        );
        assert!(
            validate_kubelet_serving("system:node:", &orgs, std::slice::from_ref(&ip)).is_err()
        );
        assert!(validate_kubelet_serving("system:node:a", &orgs, &[]).is_err());
        let two = vec!["system:nodes".to_string(), "x".to_string()];
        assert!(validate_kubelet_serving("system:node:a", &two, &[ip]).is_err());
        let uri = SanType::URI("spiffe://x".try_into().unwrap());
        assert!(validate_kubelet_serving("system:node:a", &orgs, &[uri]).is_err());
        let names = serving_names("0.0.0.0:1".parse().unwrap(), &["n1".into()]);
        assert_eq!(names, ["localhost", "127.0.0.1", "n1"]);
    }
}
