//! The client configuration: a kubeconfig-shaped file (clusters, users, contexts,
//! current-context) that `coxswain up` writes to `<data-dir>/admin.conf` and merges into
//! `~/.coxswain/config`, as kind merges into `~/.kube/config`.
//!
//! Where it is read from: `--kubeconfig FILE`, else `$COXCONFIG`, else `~/.coxswain/config`.
//!
//! The credentials of the chosen context are installed process-wide ([`install`]); every
//! connection to an `https://` server then uses the cluster's CA and the user's client
//! certificate. `http://` servers are plain and carry no credentials.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion", default = "v1")]
    pub api_version: String,
    #[serde(default = "config_kind")]
    pub kind: String,
    #[serde(rename = "current-context", default)]
    pub current_context: String,
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    #[serde(default)]
    pub users: Vec<NamedUser>,
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub preferences: BTreeMap<String, serde_json::Value>,
}

fn v1() -> String {
    "v1".into()
}

fn config_kind() -> String {
    "Config".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: Cluster,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cluster {
    pub server: String,
    #[serde(
        rename = "certificate-authority-data",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub certificate_authority_data: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NamedUser {
    pub name: String,
    pub user: User,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct User {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    #[serde(
        rename = "client-certificate-data",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub client_certificate_data: String,
    #[serde(
        rename = "client-key-data",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub client_key_data: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NamedContext {
    pub name: String,
    pub context: Context,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Context {
    pub cluster: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Invalid(String),
}

/// What a context resolves to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    pub context: String,
    pub server: String,
    pub namespace: String,
    pub credentials: Credentials,
}

/// PEM texts and a token; empty when absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Credentials {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub token: String,
}

/// `$COXCONFIG`, else `~/.coxswain/config` (None without a home directory).
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COXCONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".coxswain").join("config"))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(field: &str, s: &str) -> Result<String, ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| ConfigError::Invalid(format!("{field}: not base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| ConfigError::Invalid(format!("{field}: not PEM text")))
}

impl Kubeconfig {
    pub fn parse(text: &str) -> Result<Kubeconfig, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Kubeconfig {
                api_version: v1(),
                kind: config_kind(),
                ..Default::default()
            });
        }
        coxswain_api::yaml::from_str(text).map_err(ConfigError::Invalid)
    }

    /// Read a file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Kubeconfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Self::parse(&t)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::parse(""),
            Err(e) => Err(ConfigError::Io(format!("{}: {e}", path.display()))),
        }
    }

    pub fn to_yaml(&self) -> String {
        serde_json::to_value(self)
            .map(|v| coxswain_api::yaml::to_string(&v))
            .unwrap_or_default()
    }

    /// Write as a 0600 file (its directory created 0700 when missing).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |e: std::io::Error| ConfigError::Io(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io)?;
                set_mode(dir, 0o700).map_err(io)?;
            }
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, self.to_yaml()).map_err(io)?;
        set_mode(&tmp, 0o600).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// A one-context configuration for a cluster (`name`) and its admin user.
    pub fn single(name: &str, server: &str, user: &str, creds: &Credentials) -> Kubeconfig {
        Kubeconfig {
            api_version: v1(),
            kind: config_kind(),
            current_context: name.to_string(),
            clusters: vec![NamedCluster {
                name: name.to_string(),
                cluster: Cluster {
                    server: server.to_string(),
                    certificate_authority_data: b64(&creds.ca_pem),
                },
            }],
            users: vec![NamedUser {
                name: user.to_string(),
                user: User {
                    token: creds.token.clone(),
                    client_certificate_data: b64(&creds.cert_pem),
                    client_key_data: b64(&creds.key_pem),
                },
            }],
            contexts: vec![NamedContext {
                name: name.to_string(),
                context: Context {
                    cluster: name.to_string(),
                    user: user.to_string(),
                    namespace: String::new(),
                },
            }],
            preferences: BTreeMap::new(),
        }
    }

    /// Merge `other` in: entries of the same name are replaced, others kept; `other`'s
    /// current-context becomes current (as `kind create cluster` does).
    pub fn merge(&mut self, other: &Kubeconfig) {
        fn put<T: Clone>(list: &mut Vec<T>, items: &[T], name: impl Fn(&T) -> &str) {
            for it in items {
                match list.iter_mut().find(|x| name(x) == name(it)) {
                    Some(x) => *x = it.clone(),
                    None => list.push(it.clone()),
                }
            }
        }
        put(&mut self.clusters, &other.clusters, |c| &c.name);
        put(&mut self.users, &other.users, |u| &u.name);
        put(&mut self.contexts, &other.contexts, |c| &c.name);
        if !other.current_context.is_empty() {
            self.current_context = other.current_context.clone();
        }
    }

    /// The server, namespace and credentials of `context` (None: the current context).
    pub fn resolve(&self, context: Option<&str>) -> Result<Resolved, ConfigError> {
        let name = context.unwrap_or(&self.current_context);
        if name.is_empty() {
            return Err(ConfigError::Invalid("current-context is not set".into()));
        }
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "context was not found for specified context: {name}"
                ))
            })?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.context.cluster)
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "cluster \"{}\" of context \"{name}\" not found",
                    ctx.context.cluster
                ))
            })?;
        let user = self
            .users
            .iter()
            .find(|u| u.name == ctx.context.user)
            .map(|u| u.user.clone())
            .unwrap_or_default();
        Ok(Resolved {
            context: name.to_string(),
            server: cluster.cluster.server.clone(),
            namespace: ctx.context.namespace.clone(),
            credentials: Credentials {
                ca_pem: unb64(
                    "certificate-authority-data",
                    &cluster.cluster.certificate_authority_data,
                )?,
                cert_pem: unb64("client-certificate-data", &user.client_certificate_data)?,
                key_pem: unb64("client-key-data", &user.client_key_data)?,
                token: user.token,
            },
        })
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

static INSTALLED: RwLock<Option<Credentials>> = RwLock::new(None);

/// Use these credentials for every later `https://` connection of this process.
pub fn install(creds: Credentials) {
    if let Ok(mut g) = INSTALLED.write() {
        *g = Some(creds);
    }
}

/// The installed credentials.
pub fn installed() -> Option<Credentials> {
    INSTALLED.read().ok().and_then(|g| g.clone())
}

/// Install the credentials of `context` (None: the current one) of `kubeconfig` (None:
/// [`default_path`]). A missing default file, or one without contexts, installs nothing (plain
/// `http://` servers need no credentials); a missing explicit file is an error.
pub fn install_from(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<(), ConfigError> {
    let path = match kubeconfig {
        Some(p) if !p.exists() => {
            return Err(ConfigError::Io(format!(
                "stat {}: no such file or directory",
                p.display()
            )))
        }
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) => p,
            None => return Ok(()),
        },
    };
    let conf = Kubeconfig::load(&path)?;
    if conf.contexts.is_empty() || (context.is_none() && conf.current_context.is_empty()) {
        return match context {
            Some(c) => Err(ConfigError::Invalid(format!(
                "context was not found for specified context: {c}"
            ))),
            None => Ok(()),
        };
    }
    install(conf.resolve(context)?.credentials);
    Ok(())
}

static IDENTITIES: RwLock<BTreeMap<String, Credentials>> = RwLock::new(BTreeMap::new());

/// Credentials for the connections of one component of this process (`coxswain up` runs the
/// scheduler, controllers, proxy... in one process, each with its own identity, as upstream's
/// components each have their kubeconfig). Clients made with [`secure_as`] or
/// [`crate::Client::lazy_as`] under this name use them.
pub fn install_as(component: &str, creds: Credentials) {
    if let Ok(mut g) = IDENTITIES.write() {
        g.insert(component.to_string(), creds);
    }
}

/// The credentials of a component: its own when installed, else the process-wide ones.
pub fn installed_as(component: &str) -> Option<Credentials> {
    IDENTITIES
        .read()
        .ok()
        .and_then(|g| g.get(component).cloned())
        .or_else(installed)
}

/// `endpoint` with TLS (the CA, the client certificate) when the URL is https and credentials
/// are installed.
pub fn secure(
    endpoint: tonic::transport::Endpoint,
    url: &str,
) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    with_credentials(endpoint, url, installed())
}

/// [`secure`] with a component's own credentials ([`install_as`]), the process-wide ones when
/// it has none.
pub fn secure_as(
    endpoint: tonic::transport::Endpoint,
    url: &str,
    component: &str,
) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    with_credentials(endpoint, url, installed_as(component))
}

fn with_credentials(
    endpoint: tonic::transport::Endpoint,
    url: &str,
    creds: Option<Credentials>,
) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    let Some(c) = creds else {
        return Ok(endpoint);
    };
    let mut tls = tonic::transport::ClientTlsConfig::new();
    if !c.ca_pem.is_empty() {
        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(&c.ca_pem));
    }
    if !c.cert_pem.is_empty() && !c.key_pem.is_empty() {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            &c.cert_pem,
            &c.key_pem,
        ));
    }
    endpoint.tls_config(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(tag: &str) -> Credentials {
        Credentials {
            ca_pem: format!("ca-{tag}"),
            cert_pem: format!("cert-{tag}"),
            key_pem: format!("key-{tag}"),
            token: format!("tok-{tag}"),
        }
    }

    #[test]
    fn merge_replaces_same_names_keeps_others_and_switches_context() {
        let mut home = Kubeconfig::single("other", "https://10.0.0.1:6443", "bob", &creds("o"));
        let a = Kubeconfig::single(
            "coxswain",
            "https://127.0.0.1:50051",
            "coxswain-admin",
            &creds("a"),
        );
        home.merge(&a);
        assert_eq!(home.current_context, "coxswain");
        assert_eq!(home.contexts.len(), 2);
        let b = Kubeconfig::single(
            "coxswain",
            "https://127.0.0.1:50052",
            "coxswain-admin",
            &creds("b"),
        );
        home.merge(&b);
        assert_eq!(home.clusters.len(), 2);
        let r = home.resolve(None).unwrap();
        assert_eq!(r.server, "https://127.0.0.1:50052");
        assert_eq!(r.credentials, creds("b"));
        assert_eq!(home.resolve(Some("other")).unwrap().credentials, creds("o"));
        let e = home.resolve(Some("nope")).unwrap_err().to_string();
        assert!(e.contains("context was not found"), "{e}");
        // Round trip through YAML, kubeconfig field names.
        let text = home.to_yaml();
        assert!(text.contains("current-context: coxswain"), "{text}");
        assert!(text.contains("certificate-authority-data:"), "{text}");
        assert_eq!(Kubeconfig::parse(&text).unwrap(), home);
    }

    #[test]
    fn save_is_0600_and_a_missing_file_is_empty() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("sub/config");
        assert_eq!(Kubeconfig::load(&p).unwrap().contexts.len(), 0);
        Kubeconfig::single("c", "https://x:1", "u", &creds("x"))
            .save(&p)
            .unwrap();
        let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600);
        assert_eq!(Kubeconfig::load(&p).unwrap().current_context, "c");
    }
}
