//! A profile from its `KubeSchedulerConfiguration` entry: each extension point's plugins
//! merged over the defaults as kube-scheduler merges them, the plugins built with their args,
//! the extenders attached.
use std::collections::{BTreeMap, BTreeSet};

use super::{check_pct, err, extender, ConfigError, RawPluginSet, RawPlugins, RawProfile};
use crate::framework::{ExtenderConfig, PluginArgs, Profile, Registry, DEFAULT_SCHEDULER_NAME};
use crate::plugins::{DEFAULT_FILTERS, DEFAULT_POST_FILTERS, DEFAULT_SCORES};

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

pub(super) fn build_profile(
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
