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

fn table_options(args: &GetArgs, format: Format, with_kind: bool) -> TableOptions {
    TableOptions {
        wide: format == Format::Wide,
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
                .for_each(crate::commands::autoscale::served_as_v2);
            if targets
                .groups
                .iter()
                .any(|(k, n)| *k == kind && n.is_empty())
            {
                printers::sort_objects(kind, &mut vals);
            }
            groups.push((kind, vals));
        }
    }
    let total: usize = groups.iter().map(|(_, v)| v.len()).sum();
    let any_named = targets.groups.iter().any(|(_, n)| !n.is_empty());
    let mut widths: Vec<usize> = Vec::new();
    let mut header_printed = false;

    match format {
        Format::Table | Format::Wide => {
            let mut first = true;
            for (kind, vals) in &groups {
                if vals.is_empty() {
                    continue;
                }
                let opts = table_options(args, format, targets.multi);
                let rows = printers::table(*kind, vals, now, &opts, args.no_headers);
                if !first {
                    writeln!(stdout).ok();
                }
                first = false;
                widths = table::widths(&rows);
                write!(stdout, "{}", table::render(&rows)).ok();
                header_printed = true;
            }
        }
        Format::Json | Format::Yaml => {
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
                    let text = if format == Format::Json {
                        output::to_json(&doc)
                    } else {
                        output::to_yaml(&doc)
                    };
                    write!(stdout, "{text}").ok();
                }
            }
        }
        Format::Name => {
            for (kind, vals) in &groups {
                for v in vals {
                    writeln!(
                        stdout,
                        "{}",
                        output::name_line(*kind, &crate::jv::s(v, "metadata.name"))
                    )
                    .ok();
                }
            }
        }
    }
    stdout.flush().ok();
    drop(stdout);

    if total == 0
        && !any_named
        && !watching
        && matches!(format, Format::Table | Format::Wide | Format::Name)
    {
        let kinds: Vec<Kind> = targets.groups.iter().map(|(k, _)| *k).collect();
        eprintln!(
            "{}",
            no_resources_message(namespace, args.all_namespaces, &kinds)
        );
    }

    if watching {
        let (kind, names) = targets.groups[0].clone();
        let opts = table_options(args, format, targets.multi);
        watch(
            client,
            kind,
            &names,
            args,
            namespace,
            &selector,
            &field_selector,
            format,
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
    format: Format,
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
            crate::commands::autoscale::served_as_v2(&mut v);
            let mut out = std::io::stdout().lock();
            match format {
                Format::Table | Format::Wide => {
                    let row = printers::row(kind, &v, age::now(), opts);
                    if !header_printed && !args.no_headers {
                        let h = printers::header(kind, opts);
                        widths = table::widths(&[h.clone(), row.clone()]);
                        writeln!(out, "{}", table::line(&h, &widths)).ok();
                    }
                    header_printed = true;
                    if widths.is_empty() {
                        widths = table::widths(std::slice::from_ref(&row));
                    }
                    writeln!(out, "{}", table::line(&row, &widths)).ok();
                }
                Format::Json => {
                    write!(out, "{}", output::to_json(&v)).ok();
                }
                Format::Yaml => {
                    if !first_yaml {
                        writeln!(out, "---").ok();
                    }
                    first_yaml = false;
                    write!(out, "{}", output::to_yaml(&v)).ok();
                }
                Format::Name => {
                    writeln!(out, "{}", output::name_line(kind, obj.name())).ok();
                }
            }
            out.flush().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
