//! `coxctl events` and `coxctl cluster-info [dump]`.
use clap::{Args, Subcommand};
use coxswain_api::Kind;
use serde_json::Value;

use crate::age;
use crate::client::{other, Client, Result};
use crate::jv::s;
use crate::output;
use crate::printers::core::event_last_seen;
use crate::table;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events about this object (KIND/NAME or NAME for a pod).
    #[arg(long = "for")]
    pub for_object: Option<String>,
    /// Only events of these types (Normal, Warning), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format: json or yaml (default: a table).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
}

/// kubectl events' LAST SEEN: "5m", or "5m (x3 over 10m)" for a repeated event.
fn last_seen(e: &Value, now: i64) -> String {
    let last = event_last_seen(e)
        .map(|t| age::human_duration(now - t))
        .unwrap_or_else(|| "<unknown>".into());
    let count = e["count"].as_i64().unwrap_or(0);
    let first = age::parse_rfc3339(&s(e, "firstTimestamp"));
    match first {
        Some(f) if count > 1 => format!("{last} (x{count} over {})", age::human_duration(now - f)),
        _ => last,
    }
}

pub async fn events(client: &mut Client, args: &EventsArgs, namespace: &str) -> Result<()> {
    let ns = if args.all_namespaces { "" } else { namespace };
    let (items, _) = client.list(Kind::Event, ns, "", "").await?;
    let mut evs: Vec<Value> = items.iter().map(|o| o.to_json_value()).collect();
    if let Some(f) = &args.for_object {
        let (kind, name) = match f.split_once('/') {
            Some((k, n)) => (Some(crate::resources::parse_kind(k)?), n.to_string()),
            None => (Some(Kind::Pod), f.clone()),
        };
        evs.retain(|e| {
            s(e, "involvedObject.name") == name
                && kind.is_none_or(|k| s(e, "involvedObject.kind") == k.as_str())
        });
    }
    if !args.types.is_empty() {
        for t in &args.types {
            if !t.eq_ignore_ascii_case("Normal") && !t.eq_ignore_ascii_case("Warning") {
                return Err(other(format!(
                    "valid --types are Normal or Warning, not {t:?}"
                )));
            }
        }
        evs.retain(|e| {
            args.types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&s(e, "type")))
        });
    }
    evs.sort_by_key(crate::printers::core::event_order);
    match args.output.as_deref() {
        Some("json") => {
            print!("{}", output::to_json(&output::list(evs)));
            return Ok(());
        }
        Some("yaml") => {
            print!("{}", output::to_yaml(&output::list(evs)));
            return Ok(());
        }
        Some(x) => return Err(other(format!("unable to match a printer suitable for the output format \"{x}\", allowed formats are: json,yaml"))),
        None => {}
    }
    if evs.is_empty() {
        if args.all_namespaces {
            eprintln!("No events found.");
        } else {
            eprintln!("No events found in {namespace} namespace.");
        }
        return Ok(());
    }
    let now = age::now();
    let mut rows: Vec<Vec<String>> = Vec::new();
    if !args.no_headers {
        let mut h = vec![];
        if args.all_namespaces {
            h.push("NAMESPACE".to_string());
        }
        h.extend(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"].map(String::from));
        rows.push(h);
    }
    for e in &evs {
        let mut r = vec![];
        if args.all_namespaces {
            r.push(s(e, "metadata.namespace").into_owned());
        }
        r.push(last_seen(e, now));
        r.push(s(e, "type").into_owned());
        r.push(s(e, "reason").into_owned());
        r.push(format!(
            "{}/{}",
            s(e, "involvedObject.kind"),
            s(e, "involvedObject.name")
        ));
        r.push(s(e, "message").trim().to_string());
        rows.push(r);
    }
    print!("{}", table::render(&rows));
    Ok(())
}

#[derive(Debug, Args)]
pub struct ClusterInfoArgs {
    #[command(subcommand)]
    pub what: Option<ClusterInfoWhat>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterInfoWhat {
    /// Dump cluster information (nodes, and per namespace events, services, workloads, pods)
    /// as JSON, for debugging.
    Dump {
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Namespaces to dump (default: kube-system and the current one).
        #[arg(long, value_delimiter = ',')]
        namespaces: Vec<String>,
    },
}

pub async fn cluster_info(
    client: &mut Client,
    args: &ClusterInfoArgs,
    namespace: &str,
    server: &str,
) -> Result<()> {
    match &args.what {
        None => {
            // kubectl's colours: the name green, the address yellow.
            println!(
                "\x1b[0;32mKubernetes control plane\x1b[0m is running at \x1b[0;33m{}\x1b[0m",
                crate::client::server_url(server)
            );
            let (svcs, _) = client
                .list(
                    Kind::Service,
                    "kube-system",
                    "kubernetes.io/cluster-service=true",
                    "",
                )
                .await?;
            for svc in svcs {
                let name = svc.name().to_string();
                let v = svc.to_json_value();
                let shown = v["metadata"]["labels"]["kubernetes.io/name"]
                    .as_str()
                    .unwrap_or(&name)
                    .to_string();
                println!(
                    "\x1b[0;32m{shown}\x1b[0m is running at \x1b[0;33m{}/api/v1/namespaces/kube-system/services/{name}/proxy\x1b[0m",
                    crate::client::server_url(server)
                );
            }
            println!(
                "\nTo further debug and diagnose cluster problems, use 'coxctl cluster-info dump'."
            );
            Ok(())
        }
        Some(ClusterInfoWhat::Dump {
            all_namespaces,
            namespaces,
        }) => {
            let (nodes, _) = client.list(Kind::Node, "", "", "").await?;
            print!(
                "{}",
                output::to_json(&output::list(
                    nodes.iter().map(|o| o.to_json_value()).collect()
                ))
            );
            let nss: Vec<String> = if *all_namespaces {
                let (all, _) = client.list(Kind::Namespace, "", "", "").await?;
                all.iter().map(|n| n.name().to_string()).collect()
            } else if namespaces.is_empty() {
                let mut v = vec!["kube-system".to_string()];
                if namespace != "kube-system" {
                    v.push(namespace.to_string());
                }
                v
            } else {
                namespaces.clone()
            };
            for ns in nss {
                for kind in [
                    Kind::Event,
                    Kind::Service,
                    Kind::DaemonSet,
                    Kind::Deployment,
                    Kind::ReplicaSet,
                    Kind::Pod,
                ] {
                    let (items, _) = client.list(kind, &ns, "", "").await?;
                    print!(
                        "{}",
                        output::to_json(&output::list(
                            items.iter().map(|o| o.to_json_value()).collect()
                        ))
                    );
                }
            }
            Ok(())
        }
    }
}
