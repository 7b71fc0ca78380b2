//! `coxctl patch KIND NAME -p PATCH [--type strategic|merge|json]`. A merge patch goes to the
//! store as it is; strategic merge and JSON (RFC 6902) patches are applied here to the current
//! object and written back with its resourceVersion (a conflict is retried).
use clap::Args;
use coxswain_api::{Kind, Object};
use serde_json::{Map, Value};

use crate::client::{other, CliError, Client, Result};
use crate::printers::resource_name;
use crate::resources::parse_targets;

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// KIND NAME or KIND/NAME.
    #[arg(required = true)]
    pub resources: Vec<String>,
    /// The patch to apply (JSON or YAML).
    #[arg(short = 'p', long)]
    pub patch: Option<String>,
    /// A file holding the patch.
    #[arg(long)]
    pub patch_file: Option<String>,
    /// The type of patch: json, merge or strategic.
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
    /// Patch the status subresource.
    #[arg(long)]
    pub subresource: Option<String>,
    /// Output format (name, json, yaml).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// The merge key of a list field in Kubernetes' strategic merge patch (`patchMergeKey`).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "hostAliases" => "ip",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Lists of scalars that strategic merge patches merge (`patchStrategy:"merge"`).
fn merges_scalars(field: &str) -> bool {
    field == "finalizers"
}

/// Kubernetes' strategic merge patch of `patch` into `target` (maps merge, null deletes,
/// keyed lists merge by key with `$patch: delete`, `$patch: replace` replaces).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    strategic_at(target, patch, "");
}

fn strategic_at(target: &mut Value, patch: &Value, field: &str) {
    match patch {
        Value::Object(p) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut p = p.clone();
                p.remove("$patch");
                *target = Value::Object(p);
                return;
            }
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Some(t) = target.as_object_mut() else {
                return;
            };
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    t.remove(k);
                    continue;
                }
                match t.get_mut(k) {
                    Some(cur) => strategic_at(cur, v, k),
                    None => {
                        let mut fresh = Value::Null;
                        strategic_at(&mut fresh, v, k);
                        t.insert(k.clone(), fresh);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let (Some(key), Some(cur)) = (merge_key(field), target.as_array_mut()) {
                for item in items {
                    let id = &item[key];
                    let pos = cur.iter().position(|c| !id.is_null() && &c[key] == id);
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (pos, delete) {
                        (Some(i), true) => {
                            cur.remove(i);
                        }
                        (Some(i), false) => strategic_at(&mut cur[i], item, ""),
                        (None, true) => {}
                        (None, false) => {
                            let mut fresh = Value::Null;
                            strategic_at(&mut fresh, item, "");
                            cur.push(fresh);
                        }
                    }
                }
            } else if let (true, Some(cur)) = (merges_scalars(field), target.as_array_mut()) {
                for item in items {
                    if !cur.contains(item) {
                        cur.push(item.clone());
                    }
                }
            } else {
                *target = patch.clone();
            }
        }
        other => *target = other.clone(),
    }
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

/// Split a JSON pointer into its parent pointer's tokens and its last token.
fn pointer_parts(path: &str) -> std::result::Result<(Vec<String>, String), String> {
    if path.is_empty() {
        return Err("the root cannot be changed".into());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    let mut toks: Vec<String> = rest.split('/').map(unescape).collect();
    let last = toks.pop().unwrap_or_default();
    Ok((toks, last))
}

fn walk<'a>(
    v: &'a mut Value,
    toks: &[String],
    path: &str,
) -> std::result::Result<&'a mut Value, String> {
    let mut cur = v;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: {path:?}"))?;
    }
    Ok(cur)
}

fn remove_at(v: &mut Value, path: &str) -> std::result::Result<Value, String> {
    let (toks, last) = pointer_parts(path)?;
    let parent = walk(v, &toks, path)?;
    match parent {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("unable to remove nonexistent key: {last}: missing value")),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(format!("unable to remove index {last} of {path:?}")),
        },
        _ => Err(format!("doc is missing path: {path:?}")),
    }
}

fn add_at(
    v: &mut Value,
    path: &str,
    value: Value,
    replace: bool,
) -> std::result::Result<(), String> {
    let (toks, last) = pointer_parts(path)?;
    let parent = walk(v, &toks, path)?;
    match parent {
        Value::Object(m) => {
            if replace && !m.contains_key(&last) {
                return Err(format!(
                    "replace operation does not apply: doc is missing key: {path}: missing value"
                ));
            }
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
                return Ok(());
            }
            match last.parse::<usize>() {
                Ok(i) if replace && i < a.len() => {
                    a[i] = value;
                    Ok(())
                }
                Ok(i) if !replace && i <= a.len() => {
                    a.insert(i, value);
                    Ok(())
                }
                _ => Err(format!("unable to access invalid index: {last}")),
            }
        }
        _ => Err(format!("doc is missing path: {path:?}")),
    }
}

/// RFC 6902 JSON patch: add, remove, replace, move, copy, test.
pub fn json_patch(target: &mut Value, ops: &Value) -> std::result::Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("json patch must be a list of operations")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("operation is missing path")?;
        let kind = op["op"].as_str().ok_or("operation is missing op")?;
        match kind {
            "add" => add_at(target, path, op["value"].clone(), false)?,
            "replace" => add_at(target, path, op["value"].clone(), true)?,
            "remove" => {
                remove_at(target, path)?;
            }
            "move" | "copy" => {
                let from = op["from"].as_str().ok_or("operation is missing from")?;
                let v = if kind == "move" {
                    remove_at(target, from)?
                } else {
                    target
                        .pointer(from)
                        .cloned()
                        .ok_or_else(|| format!("doc is missing from path: {from:?}"))?
                };
                add_at(target, path, v, false)?;
            }
            "test" => {
                if target.pointer(path) != Some(&op["value"]) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            x => return Err(format!("Unexpected kind: {x}")),
        }
    }
    Ok(())
}

/// A patch as text: JSON, or YAML (kubectl accepts both).
fn parse_patch(text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .or_else(|_| coxswain_api::yaml::to_json(text).map_err(|e| e.to_string()))
        .map_err(|e| other(format!("unable to parse \"{text}\": {e}")))
}

/// Write `v` (the whole object's JSON) back with Update; NotFound/Conflict/Invalid as kubectl.
pub async fn update_json(client: &mut Client, v: Value) -> Result<Object> {
    let parsed = coxswain_api::manifest::parse_value(v).map_err(|e| CliError::Server {
        reason: "Invalid",
        message: e.to_string(),
    })?;
    client.update(&parsed.object).await
}

pub async fn run(client: &mut Client, args: &PatchArgs, namespace: &str) -> Result<()> {
    let text = match (&args.patch, &args.patch_file) {
        (Some(p), None) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| other(format!("unable to read patch file: {e}")))?,
        (Some(_), Some(_)) => return Err(other("both patch and patch-file cannot be specified")),
        (None, None) => {
            return Err(other(
                "must specify --patch or --patch-file containing the contents of the patch",
            ))
        }
    };
    let patch = parse_patch(&text)?;
    let targets = parse_targets(&args.resources)?;
    let (kind, name) = match targets.groups.as_slice() {
        [(k, names)] if names.len() == 1 => (*k, names[0].clone()),
        _ => {
            return Err(other(
                "you must specify exactly one resource to patch (KIND NAME or KIND/NAME)",
            ))
        }
    };
    let ptype = args.patch_type.as_str();
    if !matches!(ptype, "json" | "merge" | "strategic") {
        return Err(other(format!(
            "--type must be one of [json merge strategic], not \"{ptype}\""
        )));
    }
    let (changed, obj) = apply_patch(client, kind, namespace, &name, ptype, &patch).await?;
    match args.output.as_deref() {
        Some("json") => print!("{}", crate::output::to_json(&obj.to_json_value())),
        Some("yaml") => print!("{}", crate::output::to_yaml(&obj.to_json_value())),
        Some("name") => println!("{}/{name}", resource_name(kind)),
        _ if changed => println!("{}/{name} patched", resource_name(kind)),
        _ => println!("{}/{name} patched (no change)", resource_name(kind)),
    }
    Ok(())
}

async fn apply_patch(
    client: &mut Client,
    kind: Kind,
    namespace: &str,
    name: &str,
    ptype: &str,
    patch: &Value,
) -> Result<(bool, Object)> {
    for _ in 0..5 {
        let cur = client.get(kind, namespace, name).await?;
        let before = cur.to_json_value();
        if ptype == "merge" {
            let after = client.patch(kind, namespace, name, patch).await?;
            let changed = after.meta().resource_version != cur.meta().resource_version;
            return Ok((changed, after));
        }
        let mut v = before.clone();
        if ptype == "json" {
            json_patch(&mut v, patch).map_err(|e| CliError::Server {
                reason: "Invalid",
                message: format!(
                    "the server rejected our request due to an error in our request: {e}"
                ),
            })?;
        } else {
            if !patch.is_object() {
                return Err(other("strategic merge patch must be a JSON object"));
            }
            strategic_merge(&mut v, patch);
        }
        if v == before {
            return Ok((false, cur));
        }
        match update_json(client, v).await {
            Ok(o) => return Ok((true, o)),
            Err(CliError::Server {
                reason: "Conflict", ..
            }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(other(format!(
        "{}/{name}: too many conflicts while patching",
        resource_name(kind)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "nginx", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "redis"}],
            "tolerations": [{"key": "k"}], "finalizers": ["x"]}});
        strategic_merge(
            &mut pod,
            &json!({"spec": {"containers": [
                {"name": "a", "image": "nginx:1.25", "env": [{"name": "Y", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "busybox"}],
                "tolerations": [{"key": "t"}], "finalizers": ["y"]}}),
        );
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "a", "image": "nginx:1.25",
                 "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                {"name": "c", "image": "busybox"}],
                "tolerations": [{"key": "t"}], "finalizers": ["x", "y"]}})
        );
    }

    #[test]
    fn json_patches_follow_rfc_6902() {
        let mut v = json!({"spec": {"replicas": 1, "list": ["a", "c"]}});
        json_patch(
            &mut v,
            &json!([
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "add", "path": "/spec/list/1", "value": "b"},
                {"op": "add", "path": "/spec/list/-", "value": "d"},
                {"op": "copy", "from": "/spec/replicas", "path": "/spec/copy"},
                {"op": "move", "from": "/spec/copy", "path": "/moved"},
                {"op": "test", "path": "/moved", "value": 3},
                {"op": "add", "path": "/spec/a~1b", "value": true}
            ]),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"spec": {"replicas": 3, "list": ["a", "b", "c", "d"], "a/b": true}, "moved": 3})
        );
        assert!(json_patch(&mut v, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(json_patch(
            &mut v,
            &json!([{"op": "replace", "path": "/nope", "value": 1}])
        )
        .is_err());
        assert!(json_patch(
            &mut v,
            &json!([{"op": "test", "path": "/moved", "value": 4}])
        )
        .is_err());
    }
}
