//! `coxctl top node|pod`: kubectl top over `coxswain.v1.Metrics` — the same columns, units
//! (CPU in millicores, memory in Mi), percentages of allocatable, sorting, and errors
//! ("Metrics API not available" when no Metrics service answers, "metrics not available yet"
//! before the first two scrapes).
use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use coxswain_api::quantity::Quantity;
use coxswain_api::v1::metrics_client::MetricsClient;
use coxswain_api::v1::{
    GetNodeMetricsRequest, GetPodMetricsRequest, ListNodeMetricsRequest, ListPodMetricsRequest,
    NodeMetrics, PodMetrics,
};
use coxswain_api::{Kind, Object};
use tonic::transport::Channel;
use tonic::Code;

use crate::client::{from_status, other, CliError, Client, Result};
use crate::table::tabwrite;

/// kubectl's metricsCreationDelay: younger pods without metrics are "not available yet".
const METRICS_CREATION_DELAY_SECS: i128 = 120;

#[derive(Debug, Subcommand)]
pub enum TopWhat {
    /// Display resource (CPU/memory) usage of nodes.
    #[command(visible_aliases = ["nodes", "no"])]
    Node(TopNodeArgs),
    /// Display resource (CPU/memory) usage of pods.
    #[command(visible_aliases = ["pods", "po"])]
    Pod(TopPodArgs),
}

#[derive(Debug, Args)]
pub struct TopNodeArgs {
    /// One node (NAME).
    pub name: Option<String>,
    /// Label selector ("app=x,env!=dev").
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Sort by cpu or memory.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Percentages of the node's capacity instead of its allocatable.
    #[arg(long)]
    pub show_capacity: bool,
}

#[derive(Debug, Args)]
pub struct TopPodArgs {
    /// One pod (NAME).
    pub name: Option<String>,
    /// Pods of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector ("app=x,env!=dev").
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Print the usage of each container.
    #[arg(long)]
    pub containers: bool,
    /// Sort by cpu or memory.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Print the sum of the usage.
    #[arg(long)]
    pub sum: bool,
}

fn metrics_status(st: tonic::Status) -> CliError {
    match st.code() {
        Code::Unimplemented => other("Metrics API not available"),
        _ => from_status(st),
    }
}

fn check_sort_by(s: &Option<String>) -> Result<()> {
    match s.as_deref() {
        None | Some("") | Some("cpu") | Some("memory") => Ok(()),
        Some(_) => Err(other("--sort-by accepts only cpu or memory")),
    }
}

/// (nano-units of cpu, bytes of memory) of a usage map.
fn usage_of(u: &BTreeMap<String, String>) -> (Quantity, Quantity) {
    let q = |k: &str| {
        u.get(k)
            .and_then(|v| Quantity::parse(v).ok())
            .unwrap_or_default()
    };
    (q("cpu"), q("memory"))
}

/// kubectl's printSingleResourceUsage: "%vm" of MilliValue, "%vMi" of Value / 2^20.
fn cpu_cell(q: &Quantity) -> String {
    format!("{}m", q.milli_value())
}

fn memory_cell(q: &Quantity) -> String {
    format!("{}Mi", q.value() / (1024 * 1024))
}

/// kubectl's percentage: int64(float64(used.MilliValue()) / float64(available.MilliValue()) * 100).
fn percent(used: &Quantity, available: &Quantity) -> String {
    let a = available.milli_value();
    let f = if a == 0 {
        f64::INFINITY
    } else {
        used.milli_value() as f64 / a as f64 * 100.0
    };
    // Go's int64 conversion of +Inf/NaN is implementation-defined; print what amd64 prints.
    let v = if f.is_finite() { f as i64 } else { i64::MIN };
    format!("{v}%")
}

fn metrics_client(client: &Client) -> MetricsClient<Channel> {
    MetricsClient::new(client.channel()).max_decoding_message_size(256 << 20)
}

pub async fn run(client: &mut Client, what: &TopWhat, ns: &str) -> Result<()> {
    match what {
        TopWhat::Node(a) => top_node(client, a).await,
        TopWhat::Pod(a) => top_pod(client, a, ns).await,
    }
}

async fn top_node(client: &mut Client, a: &TopNodeArgs) -> Result<()> {
    check_sort_by(&a.sort_by)?;
    if a.name.is_some() && a.selector.is_some() {
        return Err(other("only one of NAME or --selector can be provided"));
    }
    let mut mc = metrics_client(client);
    let selector = a.selector.clone().unwrap_or_default();
    let mut metrics: Vec<NodeMetrics> = match &a.name {
        Some(name) => vec![mc
            .get_node_metrics(GetNodeMetricsRequest { name: name.clone() })
            .await
            .map_err(metrics_status)?
            .into_inner()],
        None => {
            mc.list_node_metrics(ListNodeMetricsRequest {
                label_selector: selector.clone(),
            })
            .await
            .map_err(metrics_status)?
            .into_inner()
            .items
        }
    };
    if metrics.is_empty() {
        return Err(other("metrics not available yet"));
    }
    let nodes: Vec<Object> = match &a.name {
        Some(name) => vec![client.get(Kind::Node, "", name).await?],
        None => client.list(Kind::Node, "", &selector, "").await?.0,
    };
    let mut available: BTreeMap<String, (Quantity, Quantity)> = BTreeMap::new();
    for o in nodes {
        let Object::Node(n) = o else { continue };
        let name = n
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let st = n.status.unwrap_or_default();
        let res = if a.show_capacity {
            st.capacity
        } else {
            st.allocatable
        };
        available.insert(name, usage_of(&res));
    }
    let name_of = |m: &NodeMetrics| {
        m.metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default()
    };
    match a.sort_by.as_deref() {
        Some("cpu") => {
            metrics.sort_by_key(|m| std::cmp::Reverse(usage_of(&m.usage).0.milli_value()))
        }
        Some("memory") => metrics.sort_by_key(|m| std::cmp::Reverse(usage_of(&m.usage).1.value())),
        _ => metrics.sort_by_key(name_of),
    }
    let mut text = String::new();
    if !a.no_headers {
        text.push_str("NAME\tCPU(cores)\tCPU(%)\tMEMORY(bytes)\tMEMORY(%)\t\n");
    }
    for m in &metrics {
        let name = name_of(m);
        let (cpu, mem) = usage_of(&m.usage);
        text.push_str(&name);
        text.push('\t');
        text.push_str(&cpu_cell(&cpu));
        text.push('\t');
        if let Some((c, _)) = available.get(&name).filter(|(c, _)| !c.is_zero()) {
            text.push_str(&percent(&cpu, c));
            text.push('\t');
        }
        text.push_str(&memory_cell(&mem));
        text.push('\t');
        if let Some((_, mm)) = available.get(&name).filter(|(_, mm)| !mm.is_zero()) {
            text.push_str(&percent(&mem, mm));
            text.push('\t');
        }
        text.push('\n');
        available.remove(&name);
    }
    // Nodes without metrics, as kubectl's printMissingMetricsNodeLine lays them out.
    for name in available.keys() {
        text.push_str(&format!("{name}\t<unknown>\t\t\t<unknown>\t\t\t\n"));
    }
    print!("{}", tabwrite(&text, 6, 3));
    Ok(())
}

fn pod_key(m: &PodMetrics) -> (String, String) {
    m.metadata
        .as_ref()
        .map(|m| (m.namespace.clone(), m.name.clone()))
        .unwrap_or_default()
}

/// The sum over a pod's containers.
fn pod_sum(m: &PodMetrics) -> (Quantity, Quantity) {
    m.containers
        .iter()
        .fold((Quantity::zero(), Quantity::zero()), |(c, mm), x| {
            let (xc, xm) = usage_of(&x.usage);
            (c.add(&xc), mm.add(&xm))
        })
}

async fn top_pod(client: &mut Client, a: &TopPodArgs, ns: &str) -> Result<()> {
    check_sort_by(&a.sort_by)?;
    if a.name.is_some() && a.selector.is_some() {
        return Err(other("only one of NAME or --selector can be provided"));
    }
    let mut mc = metrics_client(client);
    let selector = a.selector.clone().unwrap_or_default();
    let mut metrics: Vec<PodMetrics> = match &a.name {
        Some(name) => vec![mc
            .get_pod_metrics(GetPodMetricsRequest {
                namespace: ns.to_string(),
                name: name.clone(),
            })
            .await
            .map_err(metrics_status)?
            .into_inner()],
        None => {
            mc.list_pod_metrics(ListPodMetricsRequest {
                namespace: if a.all_namespaces {
                    String::new()
                } else {
                    ns.to_string()
                },
                label_selector: selector.clone(),
            })
            .await
            .map_err(metrics_status)?
            .into_inner()
            .items
        }
    };
    if metrics.is_empty() {
        verify_empty_metrics(client, a, ns, &selector).await?;
        if a.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {ns} namespace.");
        }
        return Ok(());
    }
    let with_ns = a.all_namespaces;
    match a.sort_by.as_deref() {
        Some("cpu") => metrics.sort_by_key(|m| std::cmp::Reverse(pod_sum(m).0.milli_value())),
        Some("memory") => metrics.sort_by_key(|m| std::cmp::Reverse(pod_sum(m).1.value())),
        _ => metrics.sort_by(|x, y| {
            let (xn, xp) = pod_key(x);
            let (yn, yp) = pod_key(y);
            if with_ns && xn != yn {
                xn.cmp(&yn)
            } else {
                xp.cmp(&yp)
            }
        }),
    }
    let mut text = String::new();
    let mut columns = 3;
    if !a.no_headers {
        if with_ns {
            text.push_str("NAMESPACE\t");
            columns += 1;
        }
        if a.containers {
            text.push_str("POD\t");
            columns += 1;
        }
        text.push_str("NAME\tCPU(cores)\tMEMORY(bytes)\t\n");
    }
    let (mut total_cpu, mut total_mem) = (Quantity::zero(), Quantity::zero());
    for m in &mut metrics {
        let (namespace, name) = pod_key(m);
        let (c, mm) = pod_sum(m);
        total_cpu = total_cpu.add(&c);
        total_mem = total_mem.add(&mm);
        if a.containers {
            match a.sort_by.as_deref() {
                Some("cpu") => m
                    .containers
                    .sort_by_key(|c| std::cmp::Reverse(usage_of(&c.usage).0.milli_value())),
                Some("memory") => m
                    .containers
                    .sort_by_key(|c| std::cmp::Reverse(usage_of(&c.usage).1.value())),
                _ => m.containers.sort_by(|x, y| x.name.cmp(&y.name)),
            }
            for c in &m.containers {
                let (cc, cm) = usage_of(&c.usage);
                if with_ns {
                    text.push_str(&namespace);
                    text.push('\t');
                }
                text.push_str(&format!(
                    "{name}\t{}\t{}\t{}\t\n",
                    c.name,
                    cpu_cell(&cc),
                    memory_cell(&cm)
                ));
            }
        } else {
            if with_ns {
                text.push_str(&namespace);
                text.push('\t');
            }
            text.push_str(&format!(
                "{name}\t{}\t{}\t\n",
                cpu_cell(&c),
                memory_cell(&mm)
            ));
        }
    }
    if a.sum {
        // kubectl's printPodResourcesSum.
        text.push_str(&"\t".repeat(columns - 2));
        text.push_str("________\t________\t\n");
        text.push_str(&"\t".repeat(columns - 3));
        text.push_str(&format!(
            "\t{}\t{}\t\n",
            cpu_cell(&total_cpu),
            memory_cell(&total_mem)
        ));
    }
    print!("{}", tabwrite(&text, 6, 3));
    Ok(())
}

/// kubectl's verifyEmptyMetrics: pods younger than two minutes have no metrics yet; an older
/// one is reported by name and age.
async fn verify_empty_metrics(
    client: &mut Client,
    a: &TopPodArgs,
    ns: &str,
    selector: &str,
) -> Result<()> {
    let namespace = if a.all_namespaces { "" } else { ns };
    let (pods, _) = client.list(Kind::Pod, namespace, selector, "").await?;
    if pods.is_empty() {
        return Ok(());
    }
    let now = coxswain_metrics::time::now_nanos();
    for o in pods {
        let Object::Pod(p) = o else { continue };
        let m = p.metadata.unwrap_or_default();
        let created = coxswain_api::time::parse_rfc3339(&m.creation_timestamp).unwrap_or(0);
        let age = now - i128::from(created) * coxswain_metrics::time::NANOS_PER_SEC;
        if age > METRICS_CREATION_DELAY_SECS * coxswain_metrics::time::NANOS_PER_SEC {
            return Err(other(format!(
                "Metrics not available for pod {}/{}, age: {}",
                m.namespace,
                m.name,
                coxswain_metrics::time::go_duration(std::time::Duration::from_nanos(
                    age.max(0) as u64
                ))
            )));
        }
    }
    Err(other("metrics not available yet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn cells_as_kubectl_prints_them() {
        assert_eq!(cpu_cell(&q("105273846n")), "106m");
        assert_eq!(cpu_cell(&q("0")), "0m");
        assert_eq!(memory_cell(&q("12Mi")), "12Mi");
        assert_eq!(memory_cell(&q("1234567")), "1Mi");
        assert_eq!(percent(&q("250m"), &q("4")), "6%");
        assert_eq!(percent(&q("512Mi"), &q("8Gi")), "6%");
    }
}
