//! `coxctl get`.
use std::io::Write;

use coxswain_api::{Kind, Object};
use serde_json::Value;

use crate::age;
use crate::cli::GetArgs;
use crate::client::{other, CliError, Client, Result};
use crate::output::{self, Format};
use crate::printers::{self, TableOptions};
use crate::resources::{parse_targets, Targets};
use crate::table;

/// "No resources found in default namespace." / "No resources found".
pub fn no_resources_message(namespace: &str, all_namespaces: bool, kinds: &[Kind]) -> String {
    if all_namespaces || kinds.iter().all(|k| !k.namespaced()) {
        "No resources found".to_string()
    } else {
        format!("No resources found in {namespace} namespace.")
    }
}

/// Fetch the objects of every group: named ones with Get (NotFound reported and remembered),
/// the others with List. Returns the objects per kind and whether an error was reported.
pub async fn fetch(
    client: &mut Client,
    targets: &Targets,
    namespace: &str,
    all_namespaces: bool,
    selector: &str,
    field_selector: &str,
) -> Result<(Vec<(Kind, Vec<Object>)>, bool)> {
    let mut out = Vec::new();
    let mut failed = false;
    let list_ns = if all_namespaces { "" } else { namespace };
    for (kind, names) in &targets.groups {
        let mut objs = Vec::new();
        if names.is_empty() {
            let (items, _) = client
                .list(*kind, list_ns, selector, field_selector)
                .await?;
            objs = items;
        } else {
            for name in names {
                match client.get(*kind, namespace, name).await {
                    Ok(o) => objs.push(o),
                    Err(e @ CliError::Server { .. }) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        out.push((*kind, objs));
    }
    Ok((out, failed))
}

fn table_options(args: &GetArgs, format: &Format, with_kind: bool) -> TableOptions {
    TableOptions {
        wide: *format == Format::Wide,
        all_namespaces: args.all_namespaces,
        show_labels: args.show_labels,
        with_kind,
    }
}

pub async fn run(client: &mut Client, args: &GetArgs, namespace: &str) -> Result<()> {
    let format = output::Format::parse(args.output.as_deref())?;
    let targets = parse_targets(&args.resources)?;
    let selector = args.selector.clone().unwrap_or_default();
    let field_selector = args.field_selector.clone().unwrap_or_default();
    let watching = args.watch || args.watch_only;
    if watching && targets.groups.len() > 1 {
        return Err(other("you may only specify a single resource type"));
    }
    let sort_by = match &args.sort_by {
        Some(p) if !p.is_empty() => Some(output::relaxed_path(p)?),
        _ => None,
    };

    let mut stdout = std::io::stdout().lock();
    let now = age::now();
    let mut failed = false;
    let mut groups: Vec<(Kind, Vec<Value>)> = Vec::new();
    if !args.watch_only {
        let (fetched, f) = fetch(
            client,
            &targets,
            namespace,
            args.all_namespaces,
            &selector,
            &field_selector,
        )
        .await?;
        failed = f;
        for (kind, objs) in fetched {
            let mut vals: Vec<Value> = objs.iter().map(Object::to_json_value).collect();
            vals.iter_mut()
                .for_each(|v| crate::commands::autoscale::served_as(v, &args.resources));
            if prints_fields(&format) {
                vals.iter_mut().for_each(|v| crate::zero::fill(kind, v));
            }
            if targets
                .groups
                .iter()
                .any(|(k, n)| *k == kind && n.is_empty())
            {
                printers::sort_objects(kind, &mut vals);
            }
            if let Some(sort) = &sort_by {
                sort_by_path(&mut vals, sort)?;
            }
            groups.push((kind, vals));
        }
    }
    let total: usize = groups.iter().map(|(_, v)| v.len()).sum();
    let any_named = targets.groups.iter().any(|(_, n)| !n.is_empty());
    let mut widths: Vec<usize> = Vec::new();
    let mut header_printed = false;

    match &format {
        Format::Table | Format::Wide => {
            let mut first = true;
            for (kind, vals) in &groups {
                if vals.is_empty() {
                    continue;
                }
                let opts = table_options(args, &format, targets.multi);
                let mut rows = printers::table(*kind, vals, now, &opts, args.no_headers);
                add_label_columns(&mut rows, vals, &args.label_columns, &opts, args.no_headers);
                if !first {
                    crate::sigpipe::ok(writeln!(stdout));
                }
                first = false;
                widths = table::widths(&rows);
                crate::sigpipe::ok(write!(stdout, "{}", table::render(&rows)));
                header_printed = true;
            }
        }
        Format::CustomColumns(cols) => {
            let mut rows: Vec<Vec<String>> = Vec::new();
            if !args.no_headers {
                rows.push(cols.iter().map(|(h, _)| h.clone()).collect());
            }
            for (_, vals) in &groups {
                rows.extend(vals.iter().map(|v| output::custom_row(cols, v)));
            }
            if rows.len() > usize::from(!args.no_headers) {
                widths = table::widths(&rows);
                crate::sigpipe::ok(write!(stdout, "{}", table::render(&rows)));
                header_printed = true;
            }
        }
        Format::Json | Format::Yaml | Format::JsonPath(_) => {
            let all: Vec<Value> = groups.into_iter().flat_map(|(_, v)| v).collect();
            if !watching || !all.is_empty() {
                let doc = if targets.single && all.len() == 1 {
                    all.into_iter().next().unwrap_or(Value::Null)
                } else if targets.single && all.is_empty() {
                    // The error was reported already.
                    Value::Null
                } else {
                    output::list(all)
                };
                if !doc.is_null() {
                    let text = match &format {
                        Format::Json => output::to_json(&doc),
                        Format::JsonPath(t) => t.render(&doc).map_err(other)?,
                        _ => output::to_yaml(&doc),
                    };
                    crate::sigpipe::ok(write!(stdout, "{text}"));
                }
            }
        }
        Format::Name => {
            for (kind, vals) in &groups {
                for v in vals {
                    crate::sigpipe::ok(writeln!(
                        stdout,
                        "{}",
                        output::name_line(*kind, &crate::jv::s(v, "metadata.name"))
                    ));
                }
            }
        }
    }
    crate::sigpipe::ok(stdout.flush());
    drop(stdout);

    if total == 0
        && !any_named
        && !watching
        && matches!(
            format,
            Format::Table | Format::Wide | Format::Name | Format::CustomColumns(_)
        )
    {
        let kinds: Vec<Kind> = targets.groups.iter().map(|(k, _)| *k).collect();
        eprintln!(
            "{}",
            no_resources_message(namespace, args.all_namespaces, &kinds)
        );
    }

    // kubectl does not watch what it could not get.
    if watching && !(failed && args.watch) {
        let (kind, names) = targets.groups[0].clone();
        let opts = table_options(args, &format, targets.multi);
        watch(
            client,
            kind,
            &names,
            args,
            namespace,
            &selector,
            &field_selector,
            &format,
            &opts,
            widths,
            header_printed,
        )
        .await?;
    }
    if failed {
        return Err(CliError::Reported);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn watch(
    client: &mut Client,
    kind: Kind,
    names: &[String],
    args: &GetArgs,
    namespace: &str,
    selector: &str,
    field_selector: &str,
    format: &Format,
    opts: &TableOptions,
    mut widths: Vec<usize>,
    mut header_printed: bool,
) -> Result<()> {
    let ns = if args.all_namespaces { "" } else { namespace };
    let mut fs = field_selector.to_string();
    if names.len() == 1 {
        if !fs.is_empty() {
            fs.push(',');
        }
        fs.push_str(&format!("metadata.name={}", names[0]));
    }
    // Changes after the current revision.
    let (_, mut rv) = client.list(kind, ns, selector, &fs).await?;
    let mut first_yaml = true;
    loop {
        let mut stream = client.watch(kind, ns, selector, &fs, &rv).await?;
        loop {
            let ev = match stream.message().await {
                Ok(Some(ev)) => ev,
                // The server ended the stream: watch again from the last revision seen.
                Ok(None) => break,
                Err(st) if st.code() == tonic::Code::OutOfRange => {
                    let (_, new_rv) = client.list(kind, ns, selector, &fs).await?;
                    rv = new_rv;
                    break;
                }
                Err(st) => return Err(crate::client::from_status(st)),
            };
            if ev.r#type == "BOOKMARK" || ev.r#type == "ERROR" {
                continue;
            }
            if !ev.resource_version.is_empty() {
                rv = ev.resource_version.clone();
            }
            let Some(any) = ev.object else { continue };
            let Ok(obj) = Object::from_any(&any) else {
                continue;
            };
            if names.len() > 1 && !names.iter().any(|n| n == obj.name()) {
                continue;
            }
            let mut v = obj.to_json_value();
            crate::commands::autoscale::served_as(&mut v, &args.resources);
            if prints_fields(format) {
                crate::zero::fill(kind, &mut v);
            }
            let mut out = std::io::stdout().lock();
            match format {
                Format::Table | Format::Wide | Format::CustomColumns(_) => {
                    let (h, row) = match format {
                        Format::CustomColumns(cols) => (
                            cols.iter().map(|(h, _)| h.clone()).collect(),
                            output::custom_row(cols, &v),
                        ),
                        _ => {
                            let mut rows = vec![
                                printers::header(kind, opts),
                                printers::row(kind, &v, age::now(), opts),
                            ];
                            add_label_columns(
                                &mut rows,
                                std::slice::from_ref(&v),
                                &args.label_columns,
                                opts,
                                false,
                            );
                            let row = rows.pop().unwrap_or_default();
                            (rows.pop().unwrap_or_default(), row)
                        }
                    };
                    if !header_printed && !args.no_headers {
                        widths = table::widths(&[h.clone(), row.clone()]);
                        crate::sigpipe::ok(writeln!(out, "{}", table::line(&h, &widths)));
                    }
                    header_printed = true;
                    if widths.is_empty() {
                        widths = table::widths(std::slice::from_ref(&row));
                    }
                    crate::sigpipe::ok(writeln!(out, "{}", table::line(&row, &widths)));
                }
                Format::Json => {
                    crate::sigpipe::ok(write!(out, "{}", output::to_json(&v)));
                }
                Format::JsonPath(t) => {
                    crate::sigpipe::ok(write!(out, "{}", t.render(&v).unwrap_or_default()));
                }
                Format::Yaml => {
                    if !first_yaml {
                        crate::sigpipe::ok(writeln!(out, "---"));
                    }
                    first_yaml = false;
                    crate::sigpipe::ok(write!(out, "{}", output::to_yaml(&v)));
                }
                Format::Name => {
                    crate::sigpipe::ok(writeln!(out, "{}", output::name_line(kind, obj.name())));
                }
            }
            crate::sigpipe::ok(out.flush());
        }
    }
}

/// Whether the output shows the object's fields (then zero values kubectl always writes are
/// put back); tables read missing fields as zero anyway.
fn prints_fields(format: &Format) -> bool {
    !matches!(format, Format::Table | Format::Wide | Format::Name)
}

/// kubectl's `-L`: one column per label, headed by the key's last path segment in upper case,
/// placed before `--show-labels`' LABELS column.
fn add_label_columns(
    rows: &mut [Vec<String>],
    objs: &[Value],
    keys: &[String],
    opts: &TableOptions,
    no_headers: bool,
) {
    if keys.is_empty() {
        return;
    }
    let skip = usize::from(!no_headers);
    let at = |row: &Vec<String>| row.len() - usize::from(opts.show_labels);
    if !no_headers {
        if let Some(h) = rows.first_mut() {
            let pos = at(h);
            for (i, k) in keys.iter().enumerate() {
                let last = k.rsplit('/').next().unwrap_or(k);
                h.insert(pos + i, last.to_ascii_uppercase());
            }
        }
    }
    for (row, obj) in rows.iter_mut().skip(skip).zip(objs) {
        let pos = at(row);
        for (i, k) in keys.iter().enumerate() {
            let v = obj["metadata"]["labels"][k.as_str()]
                .as_str()
                .unwrap_or("")
                .to_string();
            row.insert(pos + i, v);
        }
    }
}

/// kubectl's `--sort-by`: numbers numerically, quantities by value, other text in natural
/// order; objects without the field first. The sort is stable.
fn sort_by_path(vals: &mut [Value], t: &crate::jsonpath::Template) -> Result<()> {
    let key = |v: &Value| t.values(v).unwrap_or_default().into_iter().next();
    vals.sort_by(|a, b| compare_values(key(a).as_ref(), key(b).as_ref()));
    Ok(())
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => coxswain_api::quantity::Quantity::parse(s)
            .ok()
            .map(|q| q.nano_value() as f64),
        _ => None,
    };
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(x), Some(y)) => match (num(x), num(y)) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(Ordering::Equal),
            _ => natural_cmp(
                &crate::jsonpath::scalar_text(x).unwrap_or_default(),
                &crate::jsonpath::scalar_text(y).unwrap_or_default(),
            ),
        },
    }
}

/// Natural order: runs of digits compare by value ("pod-2" < "pod-10").
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        let o = match (x, y) {
            ((true, p), (true, q)) => {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then(p.cmp(q))
            }
            ((_, p), (_, q)) => p.cmp(q),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_by_orders_numbers_quantities_and_names_naturally() {
        let t = crate::output::relaxed_path(".v").unwrap();
        let mut vals = vec![
            serde_json::json!({"v": "pod-10"}),
            serde_json::json!({"v": "pod-2"}),
            serde_json::json!({}),
            serde_json::json!({"v": "pod-1"}),
        ];
        sort_by_path(&mut vals, &t).unwrap();
        let got: Vec<String> = vals
            .iter()
            .map(|v| crate::jv::s(v, "v").into_owned())
            .collect();
        assert_eq!(got, vec!["", "pod-1", "pod-2", "pod-10"]);
        let mut q = vec![
            serde_json::json!({"v": "1Gi"}),
            serde_json::json!({"v": "500Mi"}),
            serde_json::json!({"v": 3}),
        ];
        sort_by_path(&mut q, &t).unwrap();
        assert_eq!(q[0]["v"], 3);
        assert_eq!(q[1]["v"], "500Mi");
    }

    #[test]
    fn label_columns_go_before_labels() {
        let opts = TableOptions {
            show_labels: true,
            ..Default::default()
        };
        let mut rows = vec![
            vec!["NAME".to_string(), "LABELS".to_string()],
            vec!["a".to_string(), "app=x".to_string()],
        ];
        let objs = vec![serde_json::json!({"metadata": {"labels": {"app": "x"}}})];
        add_label_columns(
            &mut rows,
            &objs,
            &["app".to_string(), "example.com/tier".to_string()],
            &opts,
            false,
        );
        assert_eq!(rows[0], vec!["NAME", "APP", "TIER", "LABELS"]);
        assert_eq!(rows[1], vec!["a", "x", "", "app=x"]);
    }

    #[test]
    fn no_resources_wording() {
        assert_eq!(
            no_resources_message("default", false, &[Kind::Pod]),
            "No resources found in default namespace."
        );
        assert_eq!(
            no_resources_message("default", true, &[Kind::Pod]),
            "No resources found"
        );
        assert_eq!(
            no_resources_message("default", false, &[Kind::Node]),
            "No resources found"
        );
    }
}
