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
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use crate::framework::{ExtenderConfig, PluginArgs, Profile, Registry, DEFAULT_SCHEDULER_NAME};
use crate::plugins::{DEFAULT_FILTERS, DEFAULT_POST_FILTERS, DEFAULT_SCORES};

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

/// One extension point's enabled plugins (name, weight) after merging `custom` over
/// `defaults` (upstream's `mergePluginSet`), and the names disabled there.
fn merge(
    defaults: &[(String, i64)],
    custom: &RawPluginSet,
) -> (Vec<(String, i64)>, BTreeSet<String>) {
    let disabled: BTreeSet<String> = custom.disabled.iter().map(|p| p.name.clone()).collect();
    let custom_enabled: Vec<(String, i64)> = custom
        .enabled
        .iter()
        .map(|p| (p.name.clone(), p.weight.unwrap_or(0)))
        .collect();
    let mut replaced = BTreeSet::new();
    let mut out = Vec::new();
    if !disabled.contains("*") {
        for (name, w) in defaults {
            if disabled.contains(name) {
                continue;
            }
            match custom_enabled.iter().position(|(n, _)| n == name) {
                Some(i) => {
                    replaced.insert(i);
                    let cw = custom_enabled[i].1;
                    out.push((name.clone(), if cw == 0 { *w } else { cw }));
                }
                None => out.push((name.clone(), *w)),
            }
        }
    }
    for (i, p) in custom_enabled.iter().enumerate() {
        if !replaced.contains(&i) {
            out.push(p.clone());
        }
    }
    (out, disabled)
}

#[derive(Clone, Copy, PartialEq)]
enum Point {
    Filter,
    PostFilter,
    Score,
}

fn implements(registry: &Registry, name: &str, point: Point) -> bool {
    let Some(p) = registry.build(name) else {
        // Plugins that need args are checked once built with them; assume they implement it.
        return registry.contains(name);
    };
    match point {
        Point::Filter => p.as_filter().is_some() || p.as_pre_filter().is_some(),
        Point::PostFilter => p.as_post_filter().is_some(),
        Point::Score => p.as_score().is_some(),
    }
}

fn build_profile(
    i: usize,
    raw: &RawProfile,
    registry: &Registry,
    global_pct: Option<i64>,
    global_extenders: &[ExtenderConfig],
) -> Result<Profile, ConfigError> {
    let path = format!("profiles[{i}]");
    let name = raw
        .scheduler_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string());
    let empty = RawPlugins::default();
    let plugins = raw.plugins.as_ref().unwrap_or(&empty);

    // Every plugin name given anywhere must be registered ("*" only under disabled).
    for (point, set) in [
        ("multiPoint", &plugins.multi_point),
        ("queueSort", &plugins.queue_sort),
        ("preEnqueue", &plugins.pre_enqueue),
        ("preFilter", &plugins.pre_filter),
        ("filter", &plugins.filter),
        ("postFilter", &plugins.post_filter),
        ("preScore", &plugins.pre_score),
        ("score", &plugins.score),
        ("reserve", &plugins.reserve),
        ("permit", &plugins.permit),
        ("preBind", &plugins.pre_bind),
        ("bind", &plugins.bind),
        ("postBind", &plugins.post_bind),
    ] {
        for (list, items) in [("enabled", &set.enabled), ("disabled", &set.disabled)] {
            for (j, p) in items.iter().enumerate() {
                let f = format!("{path}.plugins.{point}.{list}[{j}]");
                if p.name.is_empty() {
                    return Err(err(format!("{f}.name"), "Required value"));
                }
                if p.name == "*" && list == "disabled" {
                    continue;
                }
                if !registry.contains(&p.name) {
                    return Err(err(
                        format!("{f}.name"),
                        format!(
                            "Invalid value: {:?}: plugin is not registered (known: {})",
                            p.name,
                            registry.names().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                if let Some(w) = p.weight {
                    if list == "enabled" && !(0..=100).contains(&w) {
                        return Err(err(
                            format!("{f}.weight"),
                            format!("Invalid value: {w}: must be in the range 0..=100"),
                        ));
                    }
                }
            }
        }
    }

    // The defaults, at multiPoint.
    let mut default_multi: Vec<(String, i64)> = Vec::new();
    for n in DEFAULT_FILTERS.iter().chain(DEFAULT_POST_FILTERS) {
        default_multi.push((n.to_string(), 0));
    }
    for (n, w) in DEFAULT_SCORES {
        match default_multi.iter_mut().find(|(m, _)| m == n) {
            Some(e) => e.1 = *w,
            None => default_multi.push((n.to_string(), *w)),
        }
    }
    let (multi, _) = merge(&default_multi, &plugins.multi_point);

    let expand = |point: Point, set: &RawPluginSet| -> Vec<(String, i64)> {
        let (specific, disabled) = merge(&[], set);
        let mut out: Vec<(String, i64)> = Vec::new();
        // Part 1: specific plugins that override a multiPoint one, in their order.
        for (n, w) in &specific {
            if multi.iter().any(|(m, _)| m == n) {
                out.push((n.clone(), *w));
            }
        }
        // Part 2: multiPoint plugins implementing this point, unless disabled here.
        if !disabled.contains("*") {
            for (n, w) in &multi {
                if disabled.contains(n) || out.iter().any(|(m, _)| m == n) {
                    continue;
                }
                if implements(registry, n, point) {
                    out.push((n.clone(), *w));
                }
            }
        }
        // Part 3: the other specific plugins.
        for (n, w) in &specific {
            if !out.iter().any(|(m, _)| m == n) {
                out.push((n.clone(), *w));
            }
        }
        // Score weights: 0 (unset) means 1, unless multiPoint gave one.
        for (n, w) in out.iter_mut() {
            if *w == 0 {
                *w = multi
                    .iter()
                    .find(|(m, _)| m == n)
                    .map_or(0, |(_, mw)| *mw)
                    .max(1);
            }
        }
        out
    };
    let filters = expand(Point::Filter, &plugins.filter);
    let post_filters = expand(Point::PostFilter, &plugins.post_filter);
    let scores = expand(Point::Score, &plugins.score);

    let mut args: BTreeMap<String, PluginArgs> = BTreeMap::new();
    for (j, pc) in raw.plugin_config.iter().enumerate() {
        let f = format!("{path}.pluginConfig[{j}]");
        if pc.name.is_empty() {
            return Err(err(format!("{f}.name"), "Required value"));
        }
        if !registry.contains(&pc.name) {
            return Err(err(
                format!("{f}.name"),
                format!("Invalid value: {:?}: plugin is not registered", pc.name),
            ));
        }
        if args
            .insert(pc.name.clone(), pc.args.clone().unwrap_or(PluginArgs::Null))
            .is_some()
        {
            return Err(err(
                format!("{f}.name"),
                format!("Duplicate value: {:?}", pc.name),
            ));
        }
        // Build once to report bad args with their path.
        if let Some(Err(e)) = registry.build_with(&pc.name, &args[&pc.name]) {
            return Err(err(format!("{f}.args"), e));
        }
    }

    let names = |v: &[(String, i64)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let f = names(&filters);
    let pf = names(&post_filters);
    let s: Vec<(&str, i64)> = scores.iter().map(|(n, w)| (n.as_str(), *w)).collect();
    let mut profile = Profile::build(
        &name,
        registry,
        &f.iter().map(String::as_str).collect::<Vec<_>>(),
        &pf.iter().map(String::as_str).collect::<Vec<_>>(),
        &s,
        &args,
    )
    .map_err(|e| err(format!("{path}.plugins"), e))?;
    profile.percentage_of_nodes_to_score = match check_pct(
        &format!("{path}.percentageOfNodesToScore"),
        raw.percentage_of_nodes_to_score,
    )? {
        Some(p) => Some(p),
        None => global_pct,
    };
    profile.extenders = global_extenders.to_vec();
    for (j, e) in raw.extenders.iter().enumerate() {
        profile
            .extenders
            .push(extender(&format!("{path}.extenders[{j}]"), e)?);
    }
    if profile.extenders.iter().filter(|e| e.bind).count() > 1 {
        return Err(err(
            format!("{path}.extenders"),
            "Invalid value: only one extender can implement bind",
        ));
    }
    Ok(profile)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Profile) -> (Vec<&str>, Vec<(&str, i64)>) {
        (
            p.filters.iter().map(|p| p.name()).collect(),
            p.scores.iter().map(|(p, w)| (p.name(), *w)).collect(),
        )
    }

    #[test]
    fn empty_config_is_the_default_profile() {
        let c = SchedulerConfig::from_yaml("{}").unwrap();
        assert_eq!(c.profiles.len(), 1);
        let d = Profile::default_profile();
        assert_eq!(c.profiles[0].scheduler_name, "default-scheduler");
        assert_eq!(names(&c.profiles[0]), names(&d));
        assert_eq!(
            c.profiles[0]
                .post_filters
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>(),
            ["DefaultPreemption"]
        );
    }

    #[test]
    fn enable_disable_weights_and_star() {
        let c = SchedulerConfig::from_yaml(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 50
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
      enabled:
      - name: NodeAffinity
        weight: 7
- schedulerName: no-scoring
  percentageOfNodesToScore: 100
  plugins:
    score:
      disabled:
      - name: "*"
    filter:
      disabled:
      - name: "*"
      enabled:
      - name: NodeName
      - name: TaintToleration
"#,
        )
        .unwrap();
        let p = c.profile("default-scheduler").unwrap();
        let (f, s) = names(p);
        assert_eq!(f, crate::plugins::DEFAULT_FILTERS);
        assert_eq!(
            s,
            // Upstream's order: a plugin re-configured at `score` comes first.
            [
                ("NodeAffinity", 7),
                ("TaintToleration", 3),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
            ]
        );
        assert_eq!(p.percentage_of_nodes_to_score, Some(50));
        let q = c.profile("no-scoring").unwrap();
        let (f, s) = names(q);
        assert_eq!(f, ["NodeName", "TaintToleration"]);
        assert!(s.is_empty());
        assert_eq!(q.percentage_of_nodes_to_score, Some(100));
    }

    #[test]
    fn multi_point_disable_all_then_enable() {
        let c = SchedulerConfig::from_yaml(
            r#"
profiles:
- schedulerName: minimal
  plugins:
    multiPoint:
      disabled: [{name: "*"}]
      enabled: [{name: NodeName}, {name: NodeResourcesFit, weight: 4}]
"#,
        )
        .unwrap();
        let (f, s) = names(&c.profiles[0]);
        assert_eq!(f, ["NodeName", "NodeResourcesFit"]);
        assert_eq!(s, [("NodeResourcesFit", 4)]);
        assert!(c.profiles[0].post_filters.is_empty());
    }

    #[test]
    fn plugin_config_args() {
        let c = SchedulerConfig::from_yaml(
            r#"
profiles:
- pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 2}, {name: memory, weight: 1}]
  - name: InterPodAffinity
    args: {hardPodAffinityWeight: 5}
"#,
        )
        .unwrap();
        assert_eq!(c.profiles[0].scheduler_name, "default-scheduler");
    }

    #[test]
    fn extenders() {
        let c = SchedulerConfig::from_yaml(
            r#"
extenders:
- urlPrefix: http://127.0.0.1:7070
  filterVerb: filter
  prioritizeVerb: prioritize
  weight: 3
  httpTimeout: 500ms
  ignorable: true
profiles:
- schedulerName: a
- schedulerName: b
  extenders:
  - address: http://127.0.0.1:7071
    bindVerb: bind
"#,
        )
        .unwrap();
        let a = &c.profile("a").unwrap().extenders;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].timeout, Duration::from_millis(500));
        assert!(a[0].ignorable && a[0].filter && a[0].prioritize && !a[0].bind);
        assert_eq!(a[0].weight, 3);
        let b = &c.profile("b").unwrap().extenders;
        assert_eq!(b.len(), 2);
        assert!(b[1].bind && !b[1].filter && !b[1].prioritize);
    }

    #[test]
    fn errors_name_the_field() {
        for (yaml, want) in [
            (
                "profiles:\n- plugins:\n    score:\n      enabled:\n      - name: Nope\n",
                "profiles[0].plugins.score.enabled[0].name: Invalid value: \"Nope\": plugin is not registered",
            ),
            (
                "profiles:\n- schedulerName: a\n- schedulerName: a\n",
                "profiles[1].schedulerName: Duplicate value: \"a\"",
            ),
            (
                "percentageOfNodesToScore: 120\n",
                "percentageOfNodesToScore: Invalid value: 120: not in valid range [0-100]",
            ),
            (
                "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: Bogus\n",
                "profiles[0].pluginConfig[0].args: scoringStrategy.type: Unsupported value: \"Bogus\"",
            ),
            (
                "profiles:\n- pluginConfig:\n  - name: InterPodAffinity\n    args: {hardPodAffinityWeight: 500}\n",
                "profiles[0].pluginConfig[0].args: hardPodAffinityWeight: Invalid value: 500",
            ),
            (
                "extenders:\n- weight: 1\n",
                "extenders[0].urlPrefix: Required value",
            ),
            (
                "extenders:\n- urlPrefix: http://x\n  httpTimeout: soon\n",
                "extenders[0].httpTimeout: Invalid value: \"soon\"",
            ),
            (
                "profiles:\n- schedulerName: a\n  plugnis: {}\n",
                "profiles[0]: unknown field `plugnis`",
            ),
            ("kind: Pod\n", "kind: Invalid value: \"Pod\""),
        ] {
            let e = SchedulerConfig::from_yaml(yaml).unwrap_err().to_string();
            assert!(e.starts_with(want), "{yaml}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("x"), None);
    }
}
