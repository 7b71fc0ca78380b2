//! Serving securely: TLS (rustls) on gRPC, authentication (bearer tokens, client certificates,
//! `--anonymous-auth`), the cluster PKI `coxswain up --auth` generates, the admin kubeconfig it
//! writes, and the refusal to serve a non-loopback address in the clear.
//!
//! The PKI lives in `<data-dir>/pki/` (0700, files 0600) and is reused across restarts:
//! - `ca.crt`/`ca.key`: the cluster CA (rcgen, ECDSA P-256);
//! - `server.crt`/`server.key`: the serving certificate, re-issued by the CA at every start for
//!   localhost, 127.0.0.1, ::1, the listen address, the `kubernetes` Service's ClusterIP and
//!   its DNS names (as kubeadm's apiserver certificate);
//! - `admin.crt`/`admin.key`: `kubernetes-admin`, group `system:masters`;
//! - `tokens.csv`: the admin's bearer token, in kube-apiserver's token-file format;
//! - `sa.key`: the ServiceAccount token signing key (ECDSA P-256, PKCS#8; kubeadm's `sa.key`),
//!   made on the first start that lacks it.
//!
//! `<data-dir>/admin.conf` (0600) is the admin's kubeconfig; `up` also merges it into
//! `$COXCONFIG` or `~/.coxswain/config` (`--merge-kubeconfig` overrides that path).
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use coxswain_client::config::{Credentials, Kubeconfig};
use coxswain_store::authn::{Authenticator, AuthnLayer};
use coxswain_store::util::{create_private_dir, write_private};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

#[derive(Args, Clone, Debug, Default)]
pub struct SecurityOpts {
    /// Serve gRPC over TLS and authenticate every request (health and reflection stay open);
    /// on by default. `up` generates a cluster CA, a serving certificate and an admin credential
    /// in `<data-dir>/pki`, and writes `<data-dir>/admin.conf`. `--auth=false`: plain gRPC,
    /// anyone who reaches the port may do anything (loopback only).
    #[arg(long, env = "COXSWAIN_AUTH", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub auth: bool,
    /// Let requests without credentials in as `system:anonymous` (group
    /// `system:unauthenticated`), as kube-apiserver's flag.
    #[arg(long, env = "COXSWAIN_ANONYMOUS_AUTH", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// More bearer tokens, kube-apiserver's CSV format: `token,user,uid,"group1,group2"`.
    #[arg(long, env = "COXSWAIN_TOKEN_AUTH_FILE")]
    pub token_auth_file: Option<PathBuf>,
    /// Where `up --auth` merges its context (default: `$COXCONFIG`, else
    /// `~/.coxswain/config`).
    #[arg(long, env = "COXSWAIN_MERGE_KUBECONFIG")]
    pub merge_kubeconfig: Option<PathBuf>,
    /// Serve a non-loopback address without TLS and authentication (refused otherwise).
    #[arg(long, env = "COXSWAIN_INSECURE_ALLOW_REMOTE")]
    pub insecure_allow_remote: bool,
    /// Under `--auth`, serve /metrics over TLS with the serving certificate (scrape with the
    /// cluster CA: Prometheus' `scheme: https`, `tls_config: {ca_file: <data-dir>/pki/ca.crt}`).
    /// Off by default: metrics stay plain HTTP on loopback.
    #[arg(long, env = "COXSWAIN_METRICS_TLS")]
    pub metrics_tls: bool,
    /// More keys whose ServiceAccount tokens are accepted (repeatable, as kube-apiserver's
    /// flag): a previous `sa.key` (PKCS#8) or its public key (`PUBLIC KEY` PEM), so that the
    /// signing key can be rotated while the tokens it signed are still out. `pki/sa.key` signs
    /// and is always accepted.
    #[arg(long)]
    pub service_account_key_file: Vec<PathBuf>,
}

/// Refuse a non-loopback bind in the clear unless explicitly allowed.
pub fn check_bind(opts: &SecurityOpts, listen: SocketAddr) -> anyhow::Result<()> {
    if listen.ip().is_loopback() || opts.auth || opts.insecure_allow_remote {
        return Ok(());
    }
    bail!(
        "refusing to serve {listen} without TLS and authentication: anyone who reaches it could \
         read every Secret and run commands on this host. Drop --auth=false, use a loopback \
         address, or --insecure-allow-remote"
    )
}

/// `coxswain pki`: a cluster PKI in a directory, the same files `up` generates in
/// `<data-dir>/pki` on first start; copied there, several clusters share one CA and admin.
#[derive(Args, Clone, Debug)]
pub struct PkiArgs {
    /// The directory to write (created 0700; files 0600).
    #[arg(long)]
    pub dir: PathBuf,
}

pub fn run_pki(a: &PkiArgs) -> anyhow::Result<()> {
    if a.dir.join("ca.crt").exists() {
        bail!("{} already holds a cluster CA", a.dir.display());
    }
    generate(&a.dir)?;
    println!("wrote the cluster PKI to {}", a.dir.display());
    Ok(())
}

/// For the components run as their own processes (scheduler, controllers, agent, ...): install
/// the credentials of the client configuration's current context (`--kubeconfig`, else
/// `$COXCONFIG`, else `~/.coxswain/config`), used for every `https://` server they dial. A
/// missing default file is no error: plain `http://` servers need none.
pub fn install_client_credentials(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<()> {
    coxswain_client::config::install_from(kubeconfig, context).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The in-process components and the identities upstream gives them: (component, user name,
/// groups). Each is bound to its upstream ClusterRoles by the bootstrap policy
/// (`coxswain_store::bootstrap`). The node lifecycle and autoscaler controllers run in
/// kube-controller-manager upstream, so they share its identity.
pub const COMPONENT_IDENTITIES: &[(&str, &str, &[&str])] = &[
    ("scheduler", "system:kube-scheduler", &[]),
    ("controller-manager", "system:kube-controller-manager", &[]),
    ("proxy", "system:kube-proxy", &[]),
    (
        "dns",
        "system:serviceaccount:kube-system:coredns",
        // One O only: rcgen keeps one attribute per type in a subject. Upstream's
        // ServiceAccounts are also in `system:serviceaccounts`, which nothing here binds.
        &["system:serviceaccounts:kube-system"],
    ),
    (
        "metrics-server",
        "system:serviceaccount:kube-system:metrics-server",
        // One O only: rcgen keeps one attribute per type in a subject. Upstream's
        // ServiceAccounts are also in `system:serviceaccounts`, which nothing here binds.
        &["system:serviceaccounts:kube-system"],
    ),
    // The in-process agents share one process and one pod watch, so they cannot be told apart
    // as the Node authorizer needs: they get upstream's system:node role cluster-wide (its
    // binding before the Node authorizer existed). A separate `coxswain agent` with a
    // `system:node:<name>` certificate is held to its own node.
    ("nodes", "system:coxswain:in-process-nodes", &[]),
    // The Workloads service's own reads and writes, after it authorized its caller.
    ("workloads", "system:coxswain:workloads", &[]),
    // What an in-process client that names no component is: authenticated, and allowed only
    // what every authenticated user is (discovery, access reviews).
    (FALLBACK, "system:coxswain:components", &[]),
];

/// The component name of [`Secured::components`].
const FALLBACK: &str = "components";

/// What the server and its in-process components need.
pub struct Secured {
    pub tls: ServerTlsConfig,
    pub layer: AuthnLayer,
    /// The credentials of in-process clients that have no identity of their own (installed
    /// process-wide): `system:coxswain:components`, with no role of its own.
    pub components: Credentials,
    /// Each in-process component's own credentials ([`COMPONENT_IDENTITIES`]).
    pub identities: Vec<(String, Credentials)>,
    /// The admin's kubeconfig path.
    #[allow(dead_code)]
    pub admin_conf: PathBuf,
    /// /metrics' TLS configuration under `--metrics-tls` (the serving certificate).
    pub metrics_tls: Option<std::sync::Arc<coxswain_telemetry::TlsConfig>>,
    /// Signs and verifies ServiceAccount tokens (`pki/sa.key`).
    pub sa_signer: std::sync::Arc<coxswain_store::satoken::Signer>,
    /// The kubelet-serving signer (the cluster CA), for separately run agents.
    pub kubelet_signer: std::sync::Arc<crate::security_agent::CaSigner>,
}

/// The kubelet-serving signer of a PKI directory (its CA).
pub fn ca_signer(dir: &Path) -> anyhow::Result<crate::security_agent::CaSigner> {
    let ca = read_pair(dir, "ca")?;
    let issuer = Issuer::new(
        ca_params()?,
        KeyPair::from_pem(&ca.key).context("the CA key")?,
    );
    Ok(crate::security_agent::CaSigner::new(issuer, ca.cert))
}

/// The ServiceAccount signing key of a PKI directory, made if missing, also accepting the
/// tokens of the keys in `more` (`--service-account-key-file`).
fn service_account_signer(
    dir: &Path,
    more: &[PathBuf],
) -> anyhow::Result<coxswain_store::satoken::Signer> {
    let path = dir.join("sa.key");
    if !path.exists() {
        let pem = coxswain_store::satoken::generate_key_pem().map_err(anyhow::Error::msg)?;
        write_private(&path, pem.as_bytes())?;
    }
    let pem =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut signer =
        coxswain_store::satoken::Signer::from_pem(&pem, coxswain_store::satoken::DEFAULT_ISSUER)
            .map_err(anyhow::Error::msg)?;
    for f in more {
        let pem = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        signer
            .add_verification_key_pem(&pem)
            .map_err(|e| anyhow::anyhow!("--service-account-key-file {}: {e}", f.display()))?;
    }
    Ok(signer)
}

struct Pair {
    cert: String,
    key: String,
}

fn read_pair(dir: &Path, name: &str) -> anyhow::Result<Pair> {
    let read =
        |f: String| std::fs::read_to_string(dir.join(&f)).with_context(|| format!("reading {f}"));
    Ok(Pair {
        cert: read(format!("{name}.crt"))?,
        key: read(format!("{name}.key"))?,
    })
}

fn write_pair(dir: &Path, name: &str, p: &Pair) -> anyhow::Result<()> {
    write_private(&dir.join(format!("{name}.crt")), p.cert.as_bytes())?;
    write_private(&dir.join(format!("{name}.key")), p.key.as_bytes())?;
    Ok(())
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    orgs: &[&str],
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> anyhow::Result<Pair> {
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        params.distinguished_name.push(DnType::OrganizationName, *o);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok(Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The cluster CA's parameters: the same at generation and when signing later (the issuer's
/// name and key identifier come from them and the key).
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "coxswain-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2099, 1, 1);
    Ok(ca)
}

/// The files of a new cluster PKI (all but the serving certificate, issued at every start).
pub fn generate(dir: &Path) -> anyhow::Result<()> {
    create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = ca_params()?;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let ca_pair = Pair {
        cert: ca_cert.pem(),
        key: ca_key.serialize_pem(),
    };
    let issuer = Issuer::new(ca, ca_key);
    let admin = leaf(
        &issuer,
        "kubernetes-admin",
        &["system:masters"],
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    // Written for tools that copy a PKI directory file by file; `up` no longer reads it (it
    // issues the fallback identity, with no role, at every start). Until 2026-12 this
    // certificate was in system:masters.
    let components = leaf(
        &issuer,
        "system:coxswain:components",
        &[],
        vec![],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let mut token = [0u8; 32];
    rand::rng().fill_bytes(&mut token);
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    write_pair(dir, "admin", &admin)?;
    write_pair(dir, "components", &components)?;
    write_private(
        &dir.join("tokens.csv"),
        format!("{token},kubernetes-admin,kubernetes-admin,\"system:masters\"\n").as_bytes(),
    )?;
    // The ServiceAccount signing key: one per cluster, so every replica sharing this PKI
    // accepts the tokens of the others.
    let sa_key = coxswain_store::satoken::generate_key_pem().map_err(anyhow::Error::msg)?;
    write_private(&dir.join("sa.key"), sa_key.as_bytes())?;
    // The CA last: its presence means the set is complete.
    write_pair(dir, "ca", &ca_pair)?;
    Ok(())
}

/// The serving certificate for this start: loopback, the listen address, the `kubernetes`
/// Service's addresses and names (kubeadm's apiserver SANs).
fn serving(ca: &Pair, listen: SocketAddr, service_ips: &[IpAddr]) -> anyhow::Result<Pair> {
    let issuer = Issuer::new(
        ca_params()?,
        KeyPair::from_pem(&ca.key).context("the CA key")?,
    );
    let mut sans: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "127.0.0.1",
        "::1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let ips = std::iter::once(listen.ip()).chain(service_ips.iter().copied());
    for ip in ips.filter(|ip| !ip.is_unspecified()) {
        if !sans.contains(&ip.to_string()) {
            sans.push(ip.to_string());
        }
    }
    leaf(
        &issuer,
        "coxswain",
        &[],
        sans,
        ExtendedKeyUsagePurpose::ServerAuth,
    )
}

/// Set up TLS and authentication for `up`/`store --auth`: the PKI (generated once), the admin
/// kubeconfig, the merge into the user's config.
pub fn prepare(
    opts: &SecurityOpts,
    data_dir: &Path,
    listen: SocketAddr,
    bound: SocketAddr,
    service_ips: &[IpAddr],
) -> anyhow::Result<Secured> {
    create_private_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let dir = data_dir.join("pki");
    create_private_dir(&dir)?;
    if !dir.join("ca.crt").exists() {
        generate(&dir).context("generating the cluster PKI")?;
    }
    let ca = read_pair(&dir, "ca")?;
    let server = serving(&ca, listen, service_ips).context("issuing the serving certificate")?;
    write_pair(&dir, "server", &server)?;
    let issuer = Issuer::new(
        ca_params()?,
        KeyPair::from_pem(&ca.key).context("the CA key")?,
    );
    let mut identities = Vec::new();
    for (component, user, groups) in COMPONENT_IDENTITIES {
        let pair = leaf(
            &issuer,
            user,
            groups,
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
        .with_context(|| format!("issuing {component}'s certificate"))?;
        identities.push((
            component.to_string(),
            Credentials {
                ca_pem: ca.cert.clone(),
                cert_pem: pair.cert,
                key_pem: pair.key,
                token: String::new(),
            },
        ));
    }
    let admin = read_pair(&dir, "admin")?;
    let components = identities
        .iter()
        .find(|(c, _)| c == FALLBACK)
        .map(|(_, creds)| creds.clone())
        .context("the fallback identity")?;
    let tokens = std::fs::read_to_string(dir.join("tokens.csv")).context("reading tokens.csv")?;
    let admin_token = tokens
        .lines()
        .next()
        .and_then(|l| l.split(',').next())
        .unwrap_or_default()
        .to_string();

    let mut auth = Authenticator::new(opts.anonymous_auth);
    auth.load_token_csv(&tokens)?;
    if let Some(f) = &opts.token_auth_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        auth.load_token_csv(&text)
            .with_context(|| format!("--token-auth-file {}", f.display()))?;
    }
    let metrics_tls = match opts.metrics_tls {
        true => Some(
            coxswain_telemetry::tls_config(&server.cert, &server.key)
                .map_err(|e| anyhow::anyhow!("--metrics-tls: {e}"))?,
        ),
        false => None,
    };
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&server.cert, &server.key))
        .client_ca_root(Certificate::from_pem(&ca.cert))
        .client_auth_optional(true);

    // The admin's kubeconfig, with the address clients should dial.
    let host = if bound.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
    } else {
        bound
    };
    let admin_creds = Credentials {
        ca_pem: ca.cert.clone(),
        cert_pem: admin.cert,
        key_pem: admin.key,
        token: admin_token,
    };
    let conf = Kubeconfig::single(
        "coxswain",
        &format!("https://{host}"),
        "coxswain-admin",
        &admin_creds,
    );
    let admin_conf = data_dir.join("admin.conf");
    write_private(&admin_conf, conf.to_yaml().as_bytes())?;
    tracing::info!(path = %admin_conf.display(), "wrote the admin kubeconfig");
    let merge = opts
        .merge_kubeconfig
        .clone()
        .or_else(coxswain_client::config::default_path);
    if let Some(path) = merge {
        let mut home = Kubeconfig::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        home.merge(&conf);
        match home.save(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "merged the context \"coxswain\""),
            Err(e) => tracing::warn!(error = %e, "could not merge the admin kubeconfig"),
        }
    }
    let sa_signer = std::sync::Arc::new(service_account_signer(
        &dir,
        &opts.service_account_key_file,
    )?);
    Ok(Secured {
        kubelet_signer: std::sync::Arc::new(ca_signer(&dir)?),
        sa_signer,
        tls,
        layer: AuthnLayer::new(auth),
        components,
        identities,
        admin_conf,
        metrics_tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_store::authn::{pem_der, subject_of};

    #[test]
    fn a_non_loopback_bind_in_the_clear_is_refused() {
        let remote: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let opts = SecurityOpts::default();
        assert!(check_bind(&opts, local).is_ok());
        let e = check_bind(&opts, remote).unwrap_err().to_string();
        assert!(e.contains("--insecure-allow-remote"), "{e}");
        let allowed = SecurityOpts {
            insecure_allow_remote: true,
            ..Default::default()
        };
        assert!(check_bind(&allowed, remote).is_ok());
        let auth = SecurityOpts {
            auth: true,
            ..Default::default()
        };
        assert!(check_bind(&auth, remote).is_ok());
    }

    #[test]
    fn the_pki_is_generated_once_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let bound: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let opts = SecurityOpts {
            auth: true,
            merge_kubeconfig: Some(tmp.path().join("home/config")),
            ..Default::default()
        };
        let data = tmp.path().join("data");
        let a = prepare(&opts, &data, listen, bound, &[]).unwrap();
        let b = prepare(&opts, &data, listen, bound, &[]).unwrap();
        // The CA is reused; the fallback identity has no group (no role of its own).
        assert_eq!(a.components.ca_pem, b.components.ca_pem);
        let (cn, orgs) =
            subject_of(&pem_der(&a.components.cert_pem).unwrap()).expect("a certificate");
        assert_eq!((cn.as_str(), orgs.len()), ("system:coxswain:components", 0));
        // Each component has its own identity, none of them a master.
        for (component, creds) in &a.identities {
            let (cn, orgs) = subject_of(&pem_der(&creds.cert_pem).unwrap()).expect("a certificate");
            let (_, user, groups) = COMPONENT_IDENTITIES
                .iter()
                .find(|(c, _, _)| c == component)
                .expect("a known component");
            assert_eq!(cn, *user);
            assert_eq!(orgs, *groups);
        }
        assert_eq!(a.identities.len(), COMPONENT_IDENTITIES.len());
        let conf = Kubeconfig::load(&a.admin_conf).unwrap();
        let r = conf.resolve(None).unwrap();
        assert_eq!(r.server, "https://127.0.0.1:4321");
        assert_eq!(r.credentials.token.len(), 64);
        let (cn, orgs) = subject_of(&pem_der(&r.credentials.cert_pem).unwrap()).unwrap();
        assert_eq!(
            (cn.as_str(), orgs),
            ("kubernetes-admin", vec!["system:masters".to_string()])
        );
        let home = Kubeconfig::load(&tmp.path().join("home/config")).unwrap();
        assert_eq!(home.current_context, "coxswain");
        use std::os::unix::fs::PermissionsExt;
        for f in [
            "admin.conf",
            "pki/ca.key",
            "pki/admin.key",
            "pki/tokens.csv",
            "pki/sa.key",
        ] {
            let m = std::fs::metadata(data.join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(m, 0o600, "{f}");
        }
    }
}
