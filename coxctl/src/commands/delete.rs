//! `coxctl delete`.
use coxswain_api::Kind;

use crate::cli::DeleteArgs;
use crate::client::{other, CliError, Client, Result};
use crate::commands::apply::read_sources;
use crate::commands::wait::{parse_timeout, wait_deleted, Target};
use crate::printers::resource_name;
use crate::resources::parse_targets;

/// The propagation policy of a `--cascade` value.
pub fn propagation_policy(cascade: &str) -> Result<&'static str> {
    match cascade.to_ascii_lowercase().as_str() {
        "background" | "true" | "" => Ok("Background"),
        "foreground" => Ok("Foreground"),
        "orphan" | "false" => Ok("Orphan"),
        x => Err(other(format!(
            "invalid cascade value ({x}). Must be \"background\", \"foreground\", or \"orphan\""
        ))),
    }
}

/// The objects to delete: (kind, namespace, name).
async fn collect(
    client: &mut Client,
    args: &DeleteArgs,
    namespace: &str,
) -> Result<Vec<(Kind, String, String)>> {
    let mut out = Vec::new();
    if !args.files.is_empty() {
        if !args.resources.is_empty() {
            return Err(other("resource(s) cannot be given together with -f"));
        }
        for src in read_sources(&args.files)? {
            if src.text.trim().is_empty() {
                continue;
            }
            // The objects are named from the manifest itself, as kubectl does: what the store
            // holds now may differ from the file (admission adds fields), and must not matter.
            let parsed = coxswain_api::manifest::parse_manifests(&src.text)
                .map_err(|e| other(format!("error parsing {}: {e}", src.name)))?;
            for p in parsed {
                let kind = p.object.kind();
                let ns = if !kind.namespaced() {
                    String::new()
                } else if p.object.namespace().is_empty() {
                    namespace.to_string()
                } else {
                    p.object.namespace().to_string()
                };
                out.push((kind, ns, p.object.name().to_string()));
            }
        }
        return Ok(out);
    }
    let targets = parse_targets(&args.resources)?;
    for (kind, names) in &targets.groups {
        if names.is_empty() {
            if !args.all && args.selector.is_none() {
                return Err(other(format!(
                    "resource(s) were provided, but no name was specified (use --all to delete all {})",
                    kind.plural()
                )));
            }
            let ns = if args.all_namespaces { "" } else { namespace };
            let sel = args.selector.clone().unwrap_or_default();
            let (items, _) = client.list(*kind, ns, &sel, "").await?;
            for o in items {
                out.push((*kind, o.namespace().to_string(), o.name().to_string()));
            }
        } else {
            for n in names {
                out.push((*kind, namespace.to_string(), n.clone()));
            }
        }
    }
    Ok(out)
}

pub async fn run(client: &mut Client, args: &DeleteArgs, namespace: &str) -> Result<()> {
    if args.resources.is_empty() && args.files.is_empty() {
        return Err(other(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let policy = propagation_policy(&args.cascade)?;
    let grace = if args.force && args.grace_period <= 0 {
        Some(0)
    } else if args.now {
        Some(1)
    } else if args.grace_period >= 0 {
        Some(args.grace_period)
    } else {
        None
    };
    if args.force && grace == Some(0) {
        eprintln!("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.");
    }
    let targets = collect(client, args, namespace).await?;
    if targets.is_empty() {
        if !args.ignore_not_found {
            eprintln!("No resources found");
        }
        return Ok(());
    }
    let wait = match args.wait.as_str() {
        "true" => true,
        "false" => false,
        x => {
            return Err(other(format!(
                "invalid argument \"{x}\" for \"--wait\" flag: strconv.ParseBool: parsing \"{x}\": invalid syntax"
            )))
        }
    };
    let timeout = match parse_timeout(&args.timeout)? {
        t if t.is_zero() => std::time::Duration::from_secs(7 * 24 * 3600),
        t => t,
    };
    let mut failed = false;
    let mut deleted: Vec<Target> = Vec::new();
    for (kind, ns, name) in targets {
        match client.delete(kind, &ns, &name, policy, grace).await {
            Ok(obj) => {
                println!("{} \"{name}\" deleted", resource_name(kind));
                deleted.push(Target {
                    kind,
                    namespace: ns,
                    name,
                    uid: obj.map(|o| o.meta().uid.clone()).unwrap_or_default(),
                });
            }
            Err(CliError::Server {
                reason: "NotFound", ..
            }) if args.ignore_not_found => {}
            Err(e @ CliError::Server { .. }) => {
                eprintln!("{e}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    // kubectl waits for the objects to be gone (finalizers, graceful termination), so that
    // `delete -f x; create -f x` works. Orphaning deletes wait too.
    if wait {
        if let Err(e) = wait_deleted(client, &deleted, timeout).await {
            eprintln!("{e}");
            failed = true;
        }
    }
    if failed {
        return Err(CliError::Reported);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_values() {
        assert_eq!(propagation_policy("background").unwrap(), "Background");
        assert_eq!(propagation_policy("true").unwrap(), "Background");
        assert_eq!(propagation_policy("foreground").unwrap(), "Foreground");
        assert_eq!(propagation_policy("orphan").unwrap(), "Orphan");
        assert_eq!(propagation_policy("false").unwrap(), "Orphan");
        assert!(propagation_policy("sideways").is_err());
    }
}
