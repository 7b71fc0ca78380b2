//! `version`, `api-resources`, `api-versions`.
use coxswain_api::v1::VersionInfo;
use coxswain_api::Kind;
use serde::Serialize;

use crate::client::{other, CliError, Client, Result};
use crate::table;

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// If true, shows client version only (no server required).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub client: bool,
    /// One of 'yaml' or 'json'.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// version.Info in its JSON field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    major: String,
    minor: String,
    git_version: String,
    git_commit: String,
    git_tree_state: String,
    build_date: String,
    go_version: String,
    compiler: String,
    platform: String,
}

impl From<VersionInfo> for Info {
    fn from(v: VersionInfo) -> Info {
        Info {
            major: v.major,
            minor: v.minor,
            git_version: v.git_version,
            git_commit: v.git_commit,
            git_tree_state: v.git_tree_state,
            build_date: v.build_date,
            go_version: v.go_version,
            compiler: v.compiler,
            platform: v.platform,
        }
    }
}

/// kubectl's version.Version: the client's, and the server's when it answered.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Versions {
    client_version: Info,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<Info>,
}

/// `coxctl version`: "Client Version: v0.1.0" and "Server Version: v0.1.0", or with
/// `-o json|yaml` both version.Info objects. Without a server the client's is printed, then the
/// error (as kubectl does).
pub async fn version(a: &VersionArgs, server: &str) -> Result<()> {
    let format = match a.output.as_deref() {
        None | Some("") => None,
        Some(f @ ("json" | "yaml")) => Some(f),
        Some(f) => {
            return Err(other(format!(
                "--output must be 'yaml' or 'json', got {f:?}"
            )))
        }
    };
    let mut server_err: Option<CliError> = None;
    let server_version = if a.client {
        None
    } else {
        match Client::connect(server).await {
            Ok(mut c) => match c.version().await {
                Ok(v) => Some(Info::from(v)),
                Err(e) => {
                    server_err = Some(e);
                    None
                }
            },
            Err(e) => {
                server_err = Some(e);
                None
            }
        }
    };
    let v = Versions {
        client_version: Info::from(coxswain_api::version::info()),
        server_version,
    };
    print!("{}", render(&v, format));
    match server_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn render(v: &Versions, format: Option<&str>) -> String {
    match format {
        Some("json") => {
            let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
            s.push('\n');
            s
        }
        Some(_) => crate::output::to_yaml(&serde_json::to_value(v).unwrap_or_default()),
        None => {
            let mut s = format!("Client Version: {}\n", v.client_version.git_version);
            if let Some(sv) = &v.server_version {
                s.push_str(&format!("Server Version: {}\n", sv.git_version));
            }
            s
        }
    }
}

pub fn api_resources() -> String {
    let mut rows = vec![vec![
        "NAME".to_string(),
        "SHORTNAMES".into(),
        "APIVERSION".into(),
        "NAMESPACED".into(),
        "KIND".into(),
    ]];
    let mut kinds: Vec<Kind> = Kind::ALL.to_vec();
    kinds.sort_by_key(|k| (k.group().to_string(), k.plural()));
    for k in kinds {
        rows.push(vec![
            k.plural().to_string(),
            k.short_names().join(","),
            k.api_version().to_string(),
            k.namespaced().to_string(),
            k.as_str().to_string(),
        ]);
    }
    table::render(&rows)
}

pub fn api_versions() -> String {
    let mut v: Vec<&str> = Vec::new();
    for k in Kind::ALL {
        v.push(k.api_version());
        v.extend(k.other_api_versions().iter().copied());
    }
    v.sort();
    v.dedup();
    v.iter().map(|x| format!("{x}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prints_like_kubectl() {
        let v = Versions {
            client_version: Info::from(coxswain_api::version::info()),
            server_version: None,
        };
        let gv = format!("v{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(render(&v, None), format!("Client Version: {gv}\n"));
        let json = render(&v, Some("json"));
        assert!(
            json.starts_with(
                "{\n  \"clientVersion\": {\n    \"major\": \"0\",\n    \"minor\": \"1\",\n"
            ),
            "{json}"
        );
        assert!(!json.contains("serverVersion"), "{json}");
        let yaml = render(&v, Some("yaml"));
        assert!(
            yaml.starts_with("clientVersion:\n  buildDate: \"\"\n"),
            "{yaml}"
        );
        assert!(yaml.contains("\n  major: \"0\"\n"), "{yaml}");
    }

    #[test]
    fn api_resources_lists_every_kind() {
        let out = api_resources();
        assert!(out.starts_with("NAME"));
        assert!(out.contains("deployments"));
        assert!(out.lines().any(|l| l.starts_with("pods ")
            && l.contains(" po ")
            && l.contains("true")
            && l.ends_with("Pod")));
        assert_eq!(out.lines().count(), Kind::ALL.len() + 1);
        assert!(api_versions().lines().any(|l| l == "apps/v1"));
        assert!(api_versions().lines().any(|l| l == "v1"));
    }
}
