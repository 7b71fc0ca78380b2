//! The image catalog: which image references "resolve" (can be pulled) and what an image runs
//! when the container gives no command.
//!
//! Built-in defaults cover the seeds' images (nginx, httpd, busybox, hpa-example, …); a YAML or
//! JSON file can replace them (`--image-catalog FILE`):
//!
//! ```yaml
//! images:
//!   - name: nginx            # repository, matched on its last path segment (library/nginx, docker.io/nginx)
//!     workload: web          # web | cpu-burner | print | shell | idle | loadgen
//!     paths:                 # in-image directories mapped into each container's own directory
//!       /usr/share/nginx/html: html
//!     index: "<h1>Welcome to nginx!</h1>"
//!     tags: [stable]         # extra tags beyond "latest" and version-like ones (1.17.9, v2, 3-alpine)
//!   - name: hpa-example
//!     workload: cpu-burner
//!     burnMillis: 50         # CPU time burnt per request
//!   - name: ssd-monitor
//!     workload: print        # prints message every intervalMillis
//!     message: SSD OK
//!     intervalMillis: 5000
//! unknownImages: idle        # idle | reject — what other repositories do
//! ```
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What an image runs when the container has no command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// A static web server on each containerPort: 200 on `/`, files of the docroot, 404 elsewhere.
    Web,
    /// An HTTP server burning CPU per request (the HPA walkthrough's php-apache / hpa-example).
    CpuBurner,
    /// A long-running process that does nothing.
    Idle,
    /// Prints `message` every `intervalMillis` (a log-producing image such as ssd-monitor).
    Print,
    /// A base OS image whose default command is a shell: with no terminal attached it exits 0
    /// at once (busybox, alpine, ubuntu, …); `args` run as the command.
    Shell,
    /// The `loadgen` binary installed beside coxswain, with the container's `args`
    /// (`coxswain/loadgen`).
    Loadgen,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    pub name: String,
    pub workload: Workload,
    #[serde(default)]
    pub paths: BTreeMap<String, String>,
    #[serde(default)]
    pub index: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub burn_millis: Option<u64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub interval_millis: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownImages {
    Idle,
    Reject,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub images: Vec<ImageEntry>,
    #[serde(default = "default_unknown")]
    pub unknown_images: UnknownImages,
}

fn default_unknown() -> UnknownImages {
    UnknownImages::Idle
}

/// A resolved image reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub workload: Workload,
    /// In-image path → directory name under the container's own directory.
    pub paths: BTreeMap<String, String>,
    pub index: Option<String>,
    pub burn_millis: u64,
    pub message: Option<String>,
    pub interval_millis: u64,
    /// The image ID reported in containerStatuses.
    pub image_id: String,
}

const NGINX_INDEX: &str = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully installed and\nworking.</p>\n</body>\n</html>\n";

impl Default for Catalog {
    fn default() -> Self {
        let web = |name: &str, dir: &str, index: &str| ImageEntry {
            name: name.into(),
            workload: Workload::Web,
            paths: [(dir.to_string(), "html".to_string())]
                .into_iter()
                .collect(),
            index: Some(index.into()),
            tags: vec!["stable".into(), "mainline".into(), "alpine".into()],
            burn_millis: None,
            message: None,
            interval_millis: None,
        };
        let burner = |name: &str| ImageEntry {
            name: name.into(),
            workload: Workload::CpuBurner,
            paths: BTreeMap::new(),
            index: None,
            tags: vec![],
            burn_millis: Some(50),
            message: None,
            interval_millis: None,
        };
        let shell = |name: &str| ImageEntry {
            name: name.into(),
            workload: Workload::Shell,
            paths: BTreeMap::new(),
            index: None,
            tags: vec![
                "musl".into(),
                "glibc".into(),
                "uclibc".into(),
                "jammy".into(),
                "noble".into(),
                "bookworm".into(),
                "bullseye".into(),
            ],
            burn_millis: None,
            message: None,
            interval_millis: None,
        };
        Catalog {
            images: vec![
                shell("busybox"),
                shell("alpine"),
                shell("ubuntu"),
                shell("debian"),
                shell("centos"),
                web("nginx", "/usr/share/nginx/html", NGINX_INDEX),
                web(
                    "httpd",
                    "/usr/local/apache2/htdocs",
                    "<html><body><h1>It works!</h1></body></html>\n",
                ),
                web(
                    "tomcat",
                    "/usr/local/tomcat/webapps/ROOT",
                    "Apache Tomcat\n",
                ),
                ImageEntry {
                    name: "ssd-monitor".into(),
                    workload: Workload::Print,
                    paths: BTreeMap::new(),
                    index: None,
                    tags: vec![],
                    burn_millis: None,
                    message: Some("SSD OK".into()),
                    interval_millis: Some(5000),
                },
                burner("hpa-example"),
                burner("php-apache"),
                ImageEntry {
                    name: "loadgen".into(),
                    workload: Workload::Loadgen,
                    paths: BTreeMap::new(),
                    index: None,
                    tags: vec![],
                    burn_millis: None,
                    message: None,
                    interval_millis: None,
                },
            ],
            unknown_images: UnknownImages::Idle,
        }
    }
}

/// Tags every repository has: "latest", plus anything version-like ("1.17.9", "v2", "3-alpine").
fn tag_resolves(tag: &str, extra: &[String]) -> bool {
    const COMMON: &[&str] = &[
        "latest", "stable", "alpine", "slim", "musl", "glibc", "uclibc",
    ];
    if COMMON.contains(&tag) || extra.iter().any(|t| t == tag) {
        return true;
    }
    let t = tag.strip_prefix('v').unwrap_or(tag);
    t.chars().next().is_some_and(|c| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
}

/// Splits "registry/ns/name:tag@digest" into (last name segment, tag, has digest).
pub fn split_reference(image: &str) -> (String, String, bool) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, _)) => (r, true),
        None => (image, false),
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], &rest[last_slash + i + 1..]),
        None => (rest, ""),
    };
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    (name, tag.to_string(), digest)
}

impl Catalog {
    pub fn load(path: &Path) -> anyhow::Result<Catalog> {
        let text = std::fs::read_to_string(path)?;
        coxswain_api::yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Resolves an image reference the way a registry would: unknown tags and empty references
    /// fail with the message a container runtime gives.
    pub fn resolve(&self, image: &str) -> Result<Resolved, String> {
        if image.trim().is_empty() {
            return Err("image reference is empty".into());
        }
        let (name, tag, digest) = split_reference(image);
        let entry = self.images.iter().find(|e| e.name == name);
        let extra: &[String] = entry.map(|e| e.tags.as_slice()).unwrap_or(&[]);
        let tag_ok = digest || tag.is_empty() || tag_resolves(&tag, extra);
        let not_found = || {
            format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{}\": \
                 failed to resolve reference \"{}\": {}: not found",
                qualified(image),
                qualified(image),
                qualified(image)
            )
        };
        if !tag_ok {
            return Err(not_found());
        }
        let image_id = format!("coxswain-catalog://{}", qualified(image));
        match entry {
            Some(e) => Ok(Resolved {
                workload: e.workload,
                paths: e.paths.clone(),
                index: e.index.clone(),
                burn_millis: e.burn_millis.unwrap_or(50),
                message: e.message.clone(),
                interval_millis: e.interval_millis.unwrap_or(5000),
                image_id,
            }),
            None if self.unknown_images == UnknownImages::Idle => Ok(Resolved {
                workload: Workload::Idle,
                paths: BTreeMap::new(),
                index: None,
                burn_millis: 0,
                message: None,
                interval_millis: 5000,
                image_id,
            }),
            None => Err(not_found()),
        }
    }
}

/// "nginx:1.17.9" → "docker.io/library/nginx:1.17.9", as containerd names it.
pub fn qualified(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut s = if has_registry {
        image.to_string()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    };
    let (_, tag, digest) = split_reference(image);
    if tag.is_empty() && !digest {
        s.push_str(":latest");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_a_registry() {
        let c = Catalog::default();
        assert_eq!(c.resolve("nginx:1.17.9").unwrap().workload, Workload::Web);
        assert_eq!(c.resolve("nginx").unwrap().workload, Workload::Web);
        assert_eq!(
            c.resolve("docker.io/library/nginx:1.17.9-alpine")
                .unwrap()
                .workload,
            Workload::Web
        );
        assert_eq!(
            c.resolve("registry.k8s.io/hpa-example").unwrap().workload,
            Workload::CpuBurner
        );
        assert_eq!(c.resolve("busybox:1.30").unwrap().workload, Workload::Shell);
        assert_eq!(
            c.resolve("coxswain/loadgen").unwrap().workload,
            Workload::Loadgen
        );
        assert_eq!(c.resolve("redis:7").unwrap().workload, Workload::Idle);
        let err = c.resolve("nginx:no-such-tag").unwrap_err();
        assert!(err.contains("docker.io/library/nginx:no-such-tag"), "{err}");
        assert!(c.resolve("").is_err());
        assert!(c.resolve("localhost:5000/app:v2").is_ok());
    }

    #[test]
    fn qualified_names() {
        assert_eq!(qualified("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(qualified("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(
            qualified("registry.k8s.io/pause:3.9"),
            "registry.k8s.io/pause:3.9"
        );
    }
}
