//! `coxctl label` and `coxctl annotate`: JSON merge patches of metadata.labels/annotations.
use coxswain_api::Kind;
use serde_json::{json, Value};

use crate::cli::LabelArgs;
use crate::client::{other, CliError, Client, Result};
use crate::printers::resource_name;
use crate::resources::{key_patch, parse_key_changes, parse_targets, split_label_args};

/// Which map is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Labels,
    Annotations,
}

impl Field {
    fn what(self) -> &'static str {
        match self {
            Field::Labels => "label",
            Field::Annotations => "annotation",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Field::Labels => "labels",
            Field::Annotations => "annotations",
        }
    }
    fn done(self) -> &'static str {
        match self {
            Field::Labels => "labeled",
            Field::Annotations => "annotated",
        }
    }
}

pub async fn run(
    client: &mut Client,
    args: &LabelArgs,
    namespace: &str,
    field: Field,
) -> Result<()> {
    let (res_args, change_args) = split_label_args(&args.args);
    if change_args.is_empty() {
        return Err(other(format!(
            "at least one {} update is required",
            field.what()
        )));
    }
    let changes = parse_key_changes(&change_args, field.what())?;
    let targets = parse_targets(&res_args)?;

    let mut objects: Vec<(Kind, String, String)> = Vec::new();
    for (kind, names) in &targets.groups {
        if names.is_empty() {
            if !args.all && args.selector.is_none() {
                return Err(other(
                    "resource(s) were provided, but no name was specified",
                ));
            }
            let ns = if args.all_namespaces { "" } else { namespace };
            let sel = args.selector.clone().unwrap_or_default();
            let (items, _) = client.list(*kind, ns, &sel, "").await?;
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
        eprintln!("No resources found");
        return Ok(());
    }

    let mut failed = false;
    for (kind, ns, name) in objects {
        let r = label_one(client, kind, &ns, &name, &changes, args.overwrite, field).await;
        match r {
            Ok(true) => println!("{}/{name} {}", resource_name(kind), field.done()),
            Ok(false) => println!("{}/{name} not {}", resource_name(kind), field.done()),
            Err(e @ (CliError::Server { .. } | CliError::Other(_))) => {
                eprintln!("{e}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    if failed {
        return Err(CliError::Reported);
    }
    Ok(())
}

async fn label_one(
    client: &mut Client,
    kind: Kind,
    ns: &str,
    name: &str,
    changes: &[crate::resources::KeyChange],
    overwrite: bool,
    field: Field,
) -> Result<bool> {
    let obj = client.get(kind, ns, name).await?;
    let current = match field {
        Field::Labels => obj.meta().labels.clone(),
        Field::Annotations => obj.meta().annotations.clone(),
    };
    let current: std::collections::BTreeMap<String, String> = current.into_iter().collect();
    let Some(patch) = key_patch(&current, changes, overwrite, field.what())? else {
        return Ok(false);
    };
    let mut meta = serde_json::Map::new();
    meta.insert(field.key().to_string(), Value::Object(patch));
    let body = json!({ "metadata": Value::Object(meta) });
    client.patch(kind, ns, name, &body).await?;
    Ok(true)
}
