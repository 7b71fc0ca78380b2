//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1) from YAML or JSON, turned into
//! [`Profile`]s. Errors name the field (`profiles[0].plugins.score.enabled[1].name: ...`).
//!
//! What is read:
//! - `percentageOfNodesToScore` (top level, and per profile, which wins);
//! - `profiles[].schedulerName` (default `default-scheduler`; unique);
//! - `profiles[].plugins.<point>.enabled[{name, weight}]` / `.disabled[{name}]` for `multiPoint`,
//!   `filter`, `postFilter` and `score`, merged with the defaults as kube-scheduler merges them:
//!   the defaults live at `multiPoint`; `disabled: [{name: "*"}]` drops every default of that
//!   point; a default re-enabled with a new weight keeps its place; a plugin enabled at
//!   `multiPoint` goes to every point it implements unless disabled there. A plugin's PreFilter
//!   runs when it filters, its PreScore when it scores, so `preFilter`/`preScore` (and
//!   `queueSort`, `reserve`, `permit`, `preBind`, `bind`, `postBind`) are accepted and their
//!   plugin names checked, but do not change what runs;
//! - `profiles[].pluginConfig[{name, args}]` (see each plugin's `from_args`);
//! - `extenders[]` (every profile) and `profiles[].extenders[]` (that profile): `urlPrefix`
//!   (or `address`), `weight`, `httpTimeout` (or `timeout`, e.g. `5s`, `500ms`), `ignorable`,
//!   `nodeCacheCapable`, `managedResources[{name}]`, and `filterVerb` / `prioritizeVerb` /
//!   `bindVerb` (non-empty: the extender implements that call; when none is given, Filter and
//!   Prioritize are called and Bind is not).
use std::time::Duration;

use serde::Deserialize;

use crate::framework::{ExtenderConfig, Profile, Registry};

mod profile;
#[cfg(test)]
mod tests;

use profile::build_profile;

/// A configuration error, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(path: impl std::fmt::Display, msg: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{path}: {msg}"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    percentage_of_nodes_to_score: Option<i64>,
    #[serde(default)]
    profiles: Vec<RawProfile>,
    #[serde(default)]
    extenders: Vec<RawExtender>,
    // Accepted and ignored (they configure kube-scheduler's process, not scheduling).
    #[serde(default)]
    parallelism: Option<i64>,
    #[serde(default)]
    leader_election: Option<serde_json::Value>,
    #[serde(default)]
    client_connection: Option<serde_json::Value>,
    #[serde(default)]
    pod_initial_backoff_seconds: Option<i64>,
    #[serde(default)]
    pod_max_backoff_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    scheduler_name: Option<String>,
    #[serde(default)]
    percentage_of_nodes_to_score: Option<i64>,
    #[serde(default)]
    plugins: Option<RawPlugins>,
    #[serde(default)]
    plugin_config: Vec<RawPluginConfig>,
    #[serde(default)]
    extenders: Vec<RawExtender>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPlugins {
    #[serde(default)]
    multi_point: RawPluginSet,
    #[serde(default)]
    queue_sort: RawPluginSet,
    #[serde(default)]
    pre_filter: RawPluginSet,
    #[serde(default)]
    filter: RawPluginSet,
    #[serde(default)]
    post_filter: RawPluginSet,
    #[serde(default)]
    pre_score: RawPluginSet,
    #[serde(default)]
    score: RawPluginSet,
    #[serde(default)]
    reserve: RawPluginSet,
    #[serde(default)]
    permit: RawPluginSet,
    #[serde(default)]
    pre_bind: RawPluginSet,
    #[serde(default)]
    bind: RawPluginSet,
    #[serde(default)]
    post_bind: RawPluginSet,
    #[serde(default)]
    pre_enqueue: RawPluginSet,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPluginSet {
    #[serde(default)]
    enabled: Vec<RawPlugin>,
    #[serde(default)]
    disabled: Vec<RawPlugin>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPlugin {
    #[serde(default)]
    name: String,
    #[serde(default)]
    weight: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPluginConfig {
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Option<serde_json::Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawExtender {
    #[serde(default)]
    url_prefix: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    filter_verb: Option<String>,
    #[serde(default)]
    prioritize_verb: Option<String>,
    #[serde(default)]
    bind_verb: Option<String>,
    #[serde(default)]
    preempt_verb: Option<String>,
    #[serde(default)]
    weight: Option<i64>,
    #[serde(default)]
    http_timeout: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    ignorable: bool,
    #[serde(default)]
    node_cache_capable: bool,
    #[serde(default)]
    enable_https: bool,
    #[serde(default)]
    managed_resources: Vec<RawManagedResource>,
    #[serde(default)]
    tls_config: Option<serde_json::Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawManagedResource {
    #[serde(default)]
    name: String,
    /// Accepted; the in-tree NodeResourcesFit does not ignore extended resources.
    #[serde(default)]
    #[allow(dead_code)]
    ignored_by_scheduler: bool,
}

/// A parsed configuration: the profiles, each with its extenders.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub profiles: Vec<Profile>,
}

impl Default for SchedulerConfig {
    /// One profile, `default-scheduler`, with the default plugins.
    fn default() -> Self {
        SchedulerConfig {
            profiles: vec![Profile::default_profile()],
        }
    }
}

/// Parse a Go-style duration: `5s`, `500ms`, `1m30s`, `2h`, `100us`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    coxswain_api::duration::parse(s).ok()
}

fn check_pct(path: &str, v: Option<i64>) -> Result<Option<i64>, ConfigError> {
    match v {
        Some(p) if !(0..=100).contains(&p) => Err(err(
            path,
            format!("Invalid value: {p}: not in valid range [0-100]"),
        )),
        Some(0) | None => Ok(None),
        other => Ok(other),
    }
}

fn extender(path: &str, e: &RawExtender) -> Result<ExtenderConfig, ConfigError> {
    let address = e
        .address
        .clone()
        .or_else(|| e.url_prefix.clone())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| err(format!("{path}.urlPrefix"), "Required value"))?;
    if !(address.starts_with("http://") || address.starts_with("https://")) {
        return Err(err(
            format!("{path}.urlPrefix"),
            format!("Invalid value: {address:?}: must be a URL such as http://127.0.0.1:7070"),
        ));
    }
    let timeout = match e.timeout.as_ref().or(e.http_timeout.as_ref()) {
        None => Duration::from_secs(5),
        Some(t) => parse_duration(t).ok_or_else(|| {
            err(
                format!("{path}.httpTimeout"),
                format!("Invalid value: {t:?}: a duration such as 5s or 500ms"),
            )
        })?,
    };
    let any_verb = e.filter_verb.is_some() || e.prioritize_verb.is_some() || e.bind_verb.is_some();
    let verb = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let weight = e.weight.unwrap_or(if any_verb { 0 } else { 1 });
    let prioritize = if any_verb {
        verb(&e.prioritize_verb)
    } else {
        true
    };
    if weight < 0 || (prioritize && weight == 0) {
        return Err(err(
            format!("{path}.weight"),
            format!("Invalid value: {weight}: must have a positive weight applied to it"),
        ));
    }
    Ok(ExtenderConfig {
        address,
        weight,
        timeout,
        ignorable: e.ignorable,
        bind: verb(&e.bind_verb),
        filter: if any_verb { verb(&e.filter_verb) } else { true },
        prioritize,
        node_cache_capable: e.node_cache_capable,
        managed_resources: e.managed_resources.iter().map(|m| m.name.clone()).collect(),
    })
}

impl SchedulerConfig {
    /// Parse YAML (or JSON) text with the in-tree registry.
    pub fn from_yaml(text: &str) -> Result<SchedulerConfig, ConfigError> {
        SchedulerConfig::from_yaml_with(text, &crate::plugins::in_tree_registry())
    }

    /// Parse YAML (or JSON) text with a registry (in-tree plus out-of-tree plugins).
    pub fn from_yaml_with(text: &str, registry: &Registry) -> Result<SchedulerConfig, ConfigError> {
        // As sigs.k8s.io/yaml: YAML to JSON (YAML 1.1 scalars, duplicate keys refused), then a
        // strict decode whose errors name the field path.
        let json = coxswain_api::yaml::to_json(text).map_err(|e| ConfigError(e.to_string()))?;
        let json = if json.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            json
        };
        let raw: RawConfig = match serde_path_to_error::deserialize(json) {
            Ok(r) => r,
            Err(e) => {
                let mut path = e.path().to_string();
                let inner = e.into_inner().to_string();
                // An unknown field is reported at its parent ("profiles[0]: unknown field").
                if inner.starts_with("unknown field") {
                    path = match path.rfind('.') {
                        Some(i) => path[..i].to_string(),
                        None => String::new(),
                    };
                }
                return Err(if path == "." || path.is_empty() {
                    ConfigError(inner)
                } else {
                    err(path, inner)
                });
            }
        };
        if let Some(k) = raw.kind.as_deref() {
            if k != "KubeSchedulerConfiguration" {
                return Err(err(
                    "kind",
                    format!("Invalid value: {k:?}: must be KubeSchedulerConfiguration"),
                ));
            }
        }
        if let Some(v) = raw.api_version.as_deref() {
            if !v.starts_with("kubescheduler.config.k8s.io/") {
                return Err(err(
                    "apiVersion",
                    format!("Invalid value: {v:?}: must be kubescheduler.config.k8s.io/v1"),
                ));
            }
        }
        let _ = (
            &raw.parallelism,
            &raw.leader_election,
            &raw.client_connection,
            &raw.pod_initial_backoff_seconds,
            &raw.pod_max_backoff_seconds,
        );
        let pct = check_pct("percentageOfNodesToScore", raw.percentage_of_nodes_to_score)?;
        let mut extenders = Vec::new();
        for (j, e) in raw.extenders.iter().enumerate() {
            let _ = (&e.preempt_verb, e.enable_https, &e.tls_config);
            extenders.push(extender(&format!("extenders[{j}]"), e)?);
        }
        if extenders.iter().filter(|e| e.bind).count() > 1 {
            return Err(err(
                "extenders",
                "Invalid value: only one extender can implement bind",
            ));
        }
        let raws = if raw.profiles.is_empty() {
            vec![RawProfile::default()]
        } else {
            raw.profiles
        };
        let mut profiles: Vec<Profile> = Vec::new();
        for (i, rp) in raws.iter().enumerate() {
            let p = build_profile(i, rp, registry, pct, &extenders)?;
            if profiles
                .iter()
                .any(|q| q.scheduler_name == p.scheduler_name)
            {
                return Err(err(
                    format!("profiles[{i}].schedulerName"),
                    format!("Duplicate value: {:?}", p.scheduler_name),
                ));
            }
            profiles.push(p);
        }
        Ok(SchedulerConfig { profiles })
    }

    /// Read and parse a file.
    pub fn from_file(path: &std::path::Path) -> Result<SchedulerConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("reading {}: {e}", path.display())))?;
        SchedulerConfig::from_yaml(&text)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    pub fn profile(&self, scheduler_name: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.scheduler_name == scheduler_name)
    }
}
