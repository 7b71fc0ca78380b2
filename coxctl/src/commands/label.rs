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
            Ok(msg) => println!("{}/{name} {msg}", resource_name(kind)),
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
) -> Result<&'static str> {
    let obj = client.get(kind, ns, name).await?;
    let current = match field {
        Field::Labels => obj.meta().labels.clone(),
        Field::Annotations => obj.meta().annotations.clone(),
    };
    let current: std::collections::BTreeMap<String, String> = current.into_iter().collect();
    let Some(patch) = key_patch(&current, changes, overwrite, field.what())? else {
        return Ok(unchanged_message(field));
    };
    let mut after = current.clone();
    for (k, v) in &patch {
        match v.as_str() {
            Some(v) => after.insert(k.clone(), v.to_string()),
            None => after.remove(k),
        };
    }
    let mut meta = serde_json::Map::new();
    meta.insert(field.key().to_string(), Value::Object(patch));
    let body = json!({ "metadata": Value::Object(meta) });
    client.patch(kind, ns, name, &body).await?;
    Ok(changed_message(field, &current, &after, overwrite))
}

/// kubectl annotate always says "annotated"; label says "not labeled" when nothing changed.
fn unchanged_message(field: Field) -> &'static str {
    match field {
        Field::Labels => "not labeled",
        Field::Annotations => "annotated",
    }
}

/// kubectl label's message: "unlabeled" when the object got shorter without --overwrite
/// (its `updateDataChangeMsg`), else "labeled".
fn changed_message(
    field: Field,
    before: &std::collections::BTreeMap<String, String>,
    after: &std::collections::BTreeMap<String, String>,
    overwrite: bool,
) -> &'static str {
    let len = |m: &std::collections::BTreeMap<String, String>| {
        serde_json::to_string(m).map(|s| s.len()).unwrap_or(0)
    };
    match field {
        Field::Annotations => "annotated",
        Field::Labels if !overwrite && len(after) < len(before) => "unlabeled",
        Field::Labels => "labeled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_kubectl() {
        let m = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let before = m(&[("a", "1"), ("disktype", "ssd")]);
        let removed = m(&[("a", "1")]);
        assert_eq!(
            changed_message(Field::Labels, &before, &removed, false),
            "unlabeled"
        );
        assert_eq!(
            changed_message(Field::Labels, &before, &removed, true),
            "labeled"
        );
        assert_eq!(
            changed_message(Field::Labels, &removed, &before, false),
            "labeled"
        );
        assert_eq!(
            changed_message(Field::Annotations, &before, &removed, false),
            "annotated"
        );
        assert_eq!(unchanged_message(Field::Labels), "not labeled");
    }
}
