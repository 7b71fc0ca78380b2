//! `coxctl wait --for=delete|condition=C[=V]|jsonpath=EXPR[=V]`, and the wait for deletion
//! that `delete` does by default (kubectl's `--wait=true`).
use std::time::Duration;

use clap::Args;
use coxswain_api::{Kind, Object};
use serde_json::Value;

use crate::client::{other, CliError, Client, Result};
use crate::jsonpath;
use crate::printers::resource_name;
use crate::resources::parse_targets;

/// How often a condition is re-read while waiting.
const POLL: Duration = Duration::from_millis(100);

/// kubectl's timeout flag, a Go duration as pflag's DurationVar reads it ("0s", "30s", "1m";
/// a bare number has no unit and is refused); a negative value means a week.
pub fn parse_timeout(s: &str) -> Result<Duration> {
    let ns = coxswain_api::duration::parse_signed(s).map_err(|e| {
        other(format!(
            "invalid argument \"{s}\" for \"--timeout\" flag: {e}"
        ))
    })?;
    Ok(match u64::try_from(ns) {
        Ok(ns) => Duration::from_nanos(ns),
        Err(_) => Duration::from_secs(7 * 24 * 3600),
    })
}

/// The plural resource name kubectl's timeout messages use ("pods/x", "deployments/x").
fn plural_ref(kind: Kind, name: &str) -> String {
    format!("{}/{name}", kind.plural())
}

/// One object to wait on: kind, namespace, name and (when known) the UID that must be gone.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Wait until every target is gone (or replaced by an object with another UID). Returns
/// kubectl's timeout error naming the first object still there.
pub async fn wait_deleted(
    client: &mut Client,
    targets: &[Target],
    timeout: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    for t in targets {
        loop {
            match client.get(t.kind, &t.namespace, &t.name).await {
                Ok(o) if t.uid.is_empty() || o.meta().uid == t.uid => {}
                Ok(_) => break,
                Err(CliError::Server {
                    reason: "NotFound", ..
                }) => break,
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(other(format!(
                    "timed out waiting for the condition on {}",
                    plural_ref(t.kind, &t.name)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// KIND NAME... or KIND/NAME...
    pub resources: Vec<String>,
    /// The condition to wait on: delete, condition=NAME[=VALUE], jsonpath='{EXPR}'[=VALUE],
    /// create.
    #[arg(long = "for", required = true)]
    pub for_: String,
    /// The length of time to wait before giving up (negative: a week).
    #[arg(long, default_value = "30s", allow_hyphen_values = true)]
    pub timeout: String,
    /// Select all resources of the kind in the namespace.
    #[arg(long)]
    pub all: bool,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector ("metadata.name=x").
    #[arg(long)]
    pub field_selector: Option<String>,
}

/// What `--for` asks.
#[derive(Debug, Clone, PartialEq)]
pub enum For {
    Delete,
    Create,
    /// Condition type and wanted status (default "True"), compared case-insensitively.
    Condition(String, String),
    /// A JSONPath and the wanted value (None: the path only has to exist).
    JsonPath(jsonpath::Template, Option<String>),
}

pub fn parse_for(s: &str) -> Result<For> {
    let lower = s.to_ascii_lowercase();
    if lower == "delete" {
        return Ok(For::Delete);
    }
    if lower == "create" {
        return Ok(For::Create);
    }
    if let Some(rest) = s.strip_prefix("condition=") {
        let (cond, value) = match rest.split_once('=') {
            Some((c, v)) => (c.to_string(), v.to_string()),
            None => match rest.strip_prefix("!") {
                Some(c) => (c.to_string(), "false".to_string()),
                None => (rest.to_string(), "true".to_string()),
            },
        };
        if cond.is_empty() {
            return Err(other(format!("unrecognized condition: {s:?}")));
        }
        return Ok(For::Condition(cond, value));
    }
    if let Some(rest) = s.strip_prefix("jsonpath=") {
        // The expression ends at the '=' after its closing brace (or the last '=' for a bare
        // path such as .status.phase=Running).
        let (expr, value) = split_jsonpath_value(rest);
        if expr.is_empty() {
            return Err(other("jsonpath expression cannot be empty"));
        }
        let expr = if expr.starts_with('{') {
            expr.to_string()
        } else {
            format!("{{{expr}}}")
        };
        let t = jsonpath::Template::parse(&expr)
            .map_err(|e| other(format!("unrecognized condition: {s:?}: {e}")))?;
        return Ok(For::JsonPath(t, value.map(str::to_string)));
    }
    Err(other(format!("unrecognized condition: {s:?}")))
}

fn split_jsonpath_value(rest: &str) -> (&str, Option<&str>) {
    if rest.starts_with('{') {
        if let Some(close) = rest.rfind('}') {
            let (expr, tail) = rest.split_at(close + 1);
            return (expr, tail.strip_prefix('='));
        }
        return (rest, None);
    }
    match rest.split_once('=') {
        Some((e, v)) => (e, Some(v)),
        None => (rest, None),
    }
}

/// Whether `obj` meets the condition (Delete and Create are handled by the caller).
pub fn condition_met(obj: &Value, f: &For) -> bool {
    match f {
        For::Delete | For::Create => false,
        For::Condition(c, want) => {
            let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
            obj["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|cond| {
                    cond["type"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case(c))
                        && cond["status"]
                            .as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case(want))
                        && cond["observedGeneration"]
                            .as_i64()
                            .is_none_or(|g| g >= generation)
                })
        }
        For::JsonPath(t, want) => match t.values(obj) {
            Ok(vals) if !vals.is_empty() => match want {
                None => true,
                Some(w) => vals.len() == 1 && jsonpath::scalar_text(&vals[0]).as_deref() == Some(w),
            },
            _ => false,
        },
    }
}

pub async fn run(client: &mut Client, args: &WaitArgs, namespace: &str) -> Result<()> {
    let timeout = parse_timeout(&args.timeout)?;
    let f = parse_for(&args.for_)?;
    if args.resources.is_empty() {
        return Err(other(
            "You must provide one or more resources by argument or filename.",
        ));
    }
    let targets = parse_targets(&args.resources)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let ns = if args.all_namespaces { "" } else { namespace };
    let mut objects: Vec<(Kind, String, String)> = Vec::new();
    for (kind, names) in &targets.groups {
        if names.is_empty() {
            if !args.all && args.selector.is_none() && args.field_selector.is_none() {
                return Err(other(
                    "resource(s) were provided, but no name was specified",
                ));
            }
            let sel = args.selector.clone().unwrap_or_default();
            let fs = args.field_selector.clone().unwrap_or_default();
            let (items, _) = client.list(*kind, ns, &sel, &fs).await?;
            for o in items {
                objects.push((*kind, o.namespace().to_string(), o.name().to_string()));
            }
        } else {
            for n in names {
                objects.push((*kind, namespace.to_string(), n.clone()));
            }
        }
    }
    if objects.is_empty() {
        if f == For::Delete {
            return Ok(());
        }
        return Err(other("no matching resources found"));
    }
    for (kind, ns, name) in objects {
        let mut first = true;
        loop {
            let got = client.get(kind, &ns, &name).await;
            let done = match (&got, &f) {
                (
                    Err(CliError::Server {
                        reason: "NotFound", ..
                    }),
                    For::Delete,
                ) => true,
                (
                    Err(CliError::Server {
                        reason: "NotFound", ..
                    }),
                    _,
                ) if f != For::Create && tokio::time::Instant::now() >= deadline => {
                    return Err(got.err().unwrap_or(CliError::Reported));
                }
                (Err(CliError::Server { .. }), _) => false,
                (Err(_), _) => return Err(got.err().unwrap_or(CliError::Reported)),
                (Ok(_), For::Create) => true,
                (Ok(_), For::Delete) => false,
                (Ok(o), _) => condition_met(&served(o), &f),
            };
            if done {
                // kubectl ignores what was already gone when asked to wait for its deletion.
                if !(first && f == For::Delete) {
                    println!("{}/{name} condition met", resource_name(kind));
                }
                break;
            }
            first = false;
            if tokio::time::Instant::now() >= deadline {
                return Err(other(format!(
                    "timed out waiting for the condition on {}",
                    plural_ref(kind, &name)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

fn served(o: &Object) -> Value {
    let mut v = o.to_json_value();
    crate::commands::autoscale::served_as_v2(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn for_flags_parse_like_kubectl() {
        assert_eq!(parse_for("delete").unwrap(), For::Delete);
        assert_eq!(
            parse_for("condition=Ready").unwrap(),
            For::Condition("Ready".into(), "true".into())
        );
        assert_eq!(
            parse_for("condition=Ready=false").unwrap(),
            For::Condition("Ready".into(), "false".into())
        );
        assert!(parse_for("jsonpath={.status.phase}=Running").is_ok());
        assert!(parse_for("jsonpath=.status.phase=Running").is_ok());
        assert_eq!(
            parse_for("sideways").unwrap_err().to_string(),
            "error: unrecognized condition: \"sideways\""
        );
        assert!(parse_timeout("-1s").unwrap() > Duration::from_secs(3600));
        assert_eq!(parse_timeout("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_timeout("30").unwrap_err().to_string(),
            "error: invalid argument \"30\" for \"--timeout\" flag: time: missing unit in duration \"30\""
        );
    }

    #[test]
    fn conditions_and_jsonpaths_match() {
        let o = json!({"metadata": {"generation": 2}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"},
                           {"type": "Available", "status": "True", "observedGeneration": 1}]}});
        assert!(condition_met(&o, &parse_for("condition=ready").unwrap()));
        assert!(!condition_met(
            &o,
            &parse_for("condition=Ready=False").unwrap()
        ));
        // A condition observed for an older generation does not count.
        assert!(!condition_met(
            &o,
            &parse_for("condition=Available").unwrap()
        ));
        assert!(condition_met(
            &o,
            &parse_for("jsonpath={.status.phase}=Running").unwrap()
        ));
        assert!(!condition_met(
            &o,
            &parse_for("jsonpath={.status.phase}=Failed").unwrap()
        ));
        assert!(condition_met(
            &o,
            &parse_for("jsonpath={.status.phase}").unwrap()
        ));
        assert!(!condition_met(
            &o,
            &parse_for("jsonpath={.status.nope}").unwrap()
        ));
    }
}
