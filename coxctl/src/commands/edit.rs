//! `coxctl replace -f`, `coxctl edit`, `coxctl diff -f`: whole-object writes, as kubectl does
//! them.
use std::process::Command;

use clap::Args;
use coxswain_api::{Kind, Object};
use serde_json::Value;

use crate::client::{other, CliError, Client, Result};
use crate::commands::apply::{read_sources, split_documents};
use crate::commands::patch::update_json;
use crate::output;
use crate::printers::resource_name;
use crate::resources::parse_targets;

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// The files (or "-") holding the objects' new configuration.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    /// Delete and re-create the objects.
    #[arg(long)]
    pub force: bool,
}

fn with_namespace(mut obj: Object, namespace: &str) -> Object {
    if obj.kind().namespaced() && obj.meta().namespace.is_empty() {
        obj.meta_mut().namespace = namespace.to_string();
    }
    obj
}

pub async fn replace(client: &mut Client, args: &ReplaceArgs, namespace: &str) -> Result<()> {
    let mut failed = false;
    for src in read_sources(&args.files)? {
        for doc in split_documents(&src.text) {
            let parsed = match coxswain_api::manifest::parse_manifests(&doc) {
                Ok(p) => p,
                Err(coxswain_api::error::Error::Parse(m)) => {
                    eprintln!("error: error parsing {}: {m}", src.name);
                    failed = true;
                    break;
                }
                Err(e) => {
                    eprintln!("error: error validating \"{}\": {e}", src.name);
                    failed = true;
                    continue;
                }
            };
            for p in parsed {
                let obj = with_namespace(p.object, namespace);
                let (kind, name) = (obj.kind(), obj.name().to_string());
                let r = if args.force {
                    replace_force(client, &obj).await
                } else {
                    client.update(&obj).await.map(|_| ())
                };
                match r {
                    Ok(()) => println!("{}/{name} replaced", resource_name(kind)),
                    Err(CliError::Server { reason, message }) => {
                        eprintln!(
                            "{}",
                            CliError::Server {
                                reason,
                                message: format!(
                                    "error when replacing \"{}\": {message}",
                                    src.name
                                ),
                            }
                        );
                        failed = true;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if failed {
        return Err(CliError::Reported);
    }
    Ok(())
}

async fn replace_force(client: &mut Client, obj: &Object) -> Result<()> {
    let (kind, ns, name) = (
        obj.kind(),
        obj.namespace().to_string(),
        obj.name().to_string(),
    );
    if let Ok(Some(old)) = client.delete(kind, &ns, &name, "Background", None).await {
        let t = crate::commands::wait::Target {
            kind,
            namespace: ns.clone(),
            name: name.clone(),
            uid: old.meta().uid.clone(),
        };
        crate::commands::wait::wait_deleted(client, &[t], std::time::Duration::from_secs(60))
            .await?;
    }
    let mut fresh = obj.clone();
    fresh.meta_mut().resource_version.clear();
    fresh.meta_mut().uid.clear();
    client.create(&fresh).await.map(|_| ())
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// KIND NAME or KIND/NAME.
    #[arg(required = true)]
    pub resources: Vec<String>,
    /// The format to edit in: yaml or json.
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: String,
}

const EDIT_HEADER: &str =
    "# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
";

/// The editor kubectl runs: KUBE_EDITOR, then EDITOR, then vi.
fn editor() -> String {
    ["KUBE_EDITOR", "EDITOR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

pub async fn edit(client: &mut Client, args: &EditArgs, namespace: &str) -> Result<()> {
    let targets = parse_targets(&args.resources)?;
    let (kind, name) = match targets.groups.as_slice() {
        [(k, names)] if names.len() == 1 => (*k, names[0].clone()),
        _ => return Err(other("edit takes one object: KIND NAME or KIND/NAME")),
    };
    let json_fmt = match args.output.as_str() {
        "yaml" => false,
        "json" => true,
        x => {
            return Err(other(format!(
                "the flag 'output' must be one of yaml|json, not {x:?}"
            )))
        }
    };
    let obj = client.get(kind, namespace, &name).await?;
    let original = obj.to_json_value();
    let body = if json_fmt {
        output::to_json(&original)
    } else {
        output::to_yaml(&original)
    };
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "coxctl-edit-{}-{}.{}",
        std::process::id(),
        name,
        if json_fmt { "json" } else { "yaml" }
    ));
    let mut content = format!("{EDIT_HEADER}{body}");
    let mut last_tried: Option<String> = None;
    // Each failed save re-opens the file with the errors; an unchanged re-save ends it.
    loop {
        std::fs::write(&path, &content)
            .map_err(|e| other(format!("writing {}: {e}", path.display())))?;
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("{} \"$1\"", editor()))
            .arg("coxctl-edit")
            .arg(&path)
            .status()
            .map_err(|e| other(format!("unable to launch the editor \"{}\": {e}", editor())))?;
        if !status.success() {
            return Err(other(format!(
                "there was a problem with the editor \"{}\"",
                editor()
            )));
        }
        let edited = std::fs::read_to_string(&path)
            .map_err(|e| other(format!("reading {}: {e}", path.display())))?;
        let stripped = strip_comments(&edited);
        if stripped.trim().is_empty() {
            let _ = std::fs::remove_file(&path);
            println!("Edit cancelled, no changes made.");
            return Ok(());
        }
        if last_tried.as_deref() == Some(stripped.as_str()) {
            eprintln!(
                "error: Edit cancelled, no valid changes were saved.\nA copy of your changes has been stored to \"{}\"",
                path.display()
            );
            return Err(CliError::Reported);
        }
        let parsed: std::result::Result<Value, String> = if json_fmt {
            serde_json::from_str(&stripped).map_err(|e| e.to_string())
        } else {
            coxswain_api::yaml::to_json(&stripped).map_err(|e| e.to_string())
        };
        let errors = match parsed {
            Err(e) => vec![format!("The edited file had a syntax error: {e}")],
            Ok(v) if v == original => {
                let _ = std::fs::remove_file(&path);
                println!("Edit cancelled, no changes made.");
                return Ok(());
            }
            Ok(v) => match update_json(client, v).await {
                Ok(_) => {
                    let _ = std::fs::remove_file(&path);
                    println!("{}/{name} edited", resource_name(kind));
                    return Ok(());
                }
                Err(CliError::Server { message, .. }) => vec![
                    format!("{} \"{name}\" was not valid:", kind.plural()),
                    format!("* {message}"),
                ],
                Err(e) => return Err(e),
            },
        };
        last_tried = Some(stripped.clone());
        let notes: String = errors.iter().map(|e| format!("# {e}\n")).collect();
        content = format!("{EDIT_HEADER}{notes}#\n{stripped}");
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The files (or "-") holding the configuration to compare with the live objects.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
}

/// The diff file name kubectl uses: "apps.v1.Deployment.default.nginx".
fn diff_name(kind: Kind, ns: &str, name: &str) -> String {
    let gv = kind.api_version().replace('/', ".");
    format!("{gv}.{}.{ns}.{name}", kind.as_str())
}

fn for_diff(mut v: Value) -> String {
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    output::to_yaml(&v)
}

/// `coxctl diff -f`: the live objects against what applying the files would make (a server
/// dry run), compared with `diff -u -N` (or KUBECTL_EXTERNAL_DIFF). Exit 0: no differences,
/// 1: differences, >1: an error.
pub async fn diff(client: &mut Client, args: &DiffArgs, namespace: &str) -> Result<i32> {
    let tmp = std::env::temp_dir().join(format!("coxctl-diff-{}", std::process::id()));
    let (live, merged) = (tmp.join("LIVE"), tmp.join("MERGED"));
    for d in [&live, &merged] {
        std::fs::create_dir_all(d).map_err(|e| other(format!("creating {}: {e}", d.display())))?;
    }
    let result = async {
        for src in read_sources(&args.files)? {
            for doc in split_documents(&src.text) {
                let resp = client.apply(doc, namespace, false, true).await?;
                for r in resp.results {
                    let Some(kind) = crate::commands::apply::result_kind(&r.kind) else {
                        continue;
                    };
                    let file = diff_name(kind, &r.namespace, &r.name);
                    let mut after = r
                        .object
                        .as_ref()
                        .and_then(|a| Object::from_any(a).ok())
                        .map(|o| o.to_json_value());
                    let before = match client.get(kind, &r.namespace, &r.name).await {
                        Ok(o) => Some(o.to_json_value()),
                        Err(CliError::Server {
                            reason: "NotFound", ..
                        }) => None,
                        Err(e) => return Err(e),
                    };
                    // A dry run writes nothing: the merged object keeps the live revision.
                    if let (Some(a), Some(b)) = (after.as_mut(), before.as_ref()) {
                        if a["metadata"].get("resourceVersion").is_none() {
                            if let (Some(m), Some(rv)) = (
                                a["metadata"].as_object_mut(),
                                b["metadata"].get("resourceVersion"),
                            ) {
                                m.insert("resourceVersion".into(), rv.clone());
                            }
                        }
                    }
                    let after = after.map(for_diff).unwrap_or_default();
                    let before = before.map(for_diff).unwrap_or_default();
                    let write = |dir: &std::path::Path, text: &str| {
                        if text.is_empty() {
                            return Ok(());
                        }
                        std::fs::write(dir.join(&file), text)
                            .map_err(|e| other(format!("writing diff file: {e}")))
                    };
                    write(&live, &before)?;
                    write(&merged, &after)?;
                }
            }
        }
        let program = std::env::var("KUBECTL_EXTERNAL_DIFF")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "diff -u -N".to_string());
        let mut parts = program.split_whitespace();
        let exe = parts.next().unwrap_or("diff");
        let status = Command::new(exe)
            .args(parts)
            .arg(&live)
            .arg(&merged)
            .status()
            .map_err(|e| other(format!("failed to run \"{exe}\": {e}")))?;
        Ok(status.code().unwrap_or(2))
    }
    .await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_helpers() {
        assert_eq!(strip_comments("# a\nb: 1\n  # c\nd: 2"), "b: 1\nd: 2\n");
        assert_eq!(
            diff_name(Kind::Deployment, "default", "nginx"),
            "apps.v1.Deployment.default.nginx"
        );
        assert_eq!(diff_name(Kind::Pod, "ns", "p"), "v1.Pod.ns.p");
    }
}
