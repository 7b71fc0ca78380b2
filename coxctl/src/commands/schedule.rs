//! `coxctl schedule explain POD | -f MANIFEST` and `coxctl schedule profiles`: the scheduler's
//! `coxswain.v1.Scheduler` service (by default on the same server as the store; `--scheduler`
//! points at a scheduler running alone).
use clap::{Args, Subcommand};
use coxswain_api::v1::scheduler_client::SchedulerClient;
use coxswain_api::v1::{ExplainRequest, ExplainResponse, ListProfilesRequest};
use tonic::transport::Channel;

use crate::client::{from_status, other, server_url, Client, Result};
use crate::table::render;

#[derive(Debug, Subcommand)]
pub enum ScheduleWhat {
    /// Explain where a pod would be scheduled and why, per node and plugin (never binds).
    Explain(ExplainArgs),
    /// List the scheduler's profiles: plugins per extension point, weights, extenders.
    Profiles(ProfilesArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A stored pod's name (in -n NAMESPACE).
    pub pod: Option<String>,
    /// A pod manifest (file, or "-" for stdin) to explain without creating it.
    #[arg(short = 'f', long = "filename", conflicts_with = "pod")]
    pub file: Option<String>,
    /// The scheduler's address when it runs alone (`coxswain scheduler --listen`).
    #[arg(long)]
    pub scheduler: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// The scheduler's address when it runs alone (`coxswain scheduler --listen`).
    #[arg(long)]
    pub scheduler: Option<String>,
}

async fn scheduler(client: &Client, addr: &Option<String>) -> Result<SchedulerClient<Channel>> {
    match addr {
        None => Ok(SchedulerClient::new(client.channel())),
        Some(a) => {
            let url = server_url(a);
            let ch = Channel::from_shared(url.clone())
                .map_err(|e| other(format!("--scheduler {a:?}: {e}")))?;
            let ch = coxswain_client::config::secure(ch, &url)
                .map_err(|e| other(format!("--scheduler {a:?}: TLS: {e}")))?
                .connect()
                .await
                .map_err(|e| other(format!("connecting to the scheduler at {a}: {e}")))?;
            Ok(SchedulerClient::new(ch))
        }
    }
}

pub async fn run(client: &mut Client, w: &ScheduleWhat, ns: &str) -> Result<()> {
    match w {
        ScheduleWhat::Explain(a) => explain(client, a, ns).await,
        ScheduleWhat::Profiles(a) => profiles(client, a).await,
    }
}

async fn explain(client: &Client, a: &ExplainArgs, ns: &str) -> Result<()> {
    let req = match (&a.pod, &a.file) {
        (Some(name), None) => ExplainRequest {
            namespace: ns.into(),
            name: name.clone(),
            manifest: String::new(),
        },
        (None, Some(f)) => {
            let sources = crate::commands::apply::read_sources(std::slice::from_ref(f))?;
            let text = sources
                .into_iter()
                .map(|s| s.text)
                .collect::<Vec<_>>()
                .join("\n---\n");
            ExplainRequest {
                namespace: ns.into(),
                name: String::new(),
                manifest: text,
            }
        }
        _ => {
            return Err(other(
                "give a pod name or -f MANIFEST (see coxctl schedule explain --help)",
            ))
        }
    };
    let resp = scheduler(client, &a.scheduler)
        .await?
        .explain(req)
        .await
        .map_err(from_status)?
        .into_inner();
    print!("{}", format_explanation(&resp));
    Ok(())
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.into()
    }
}

/// The human-readable explanation.
pub fn format_explanation(r: &ExplainResponse) -> String {
    let mut out = String::new();
    out.push_str(&format!("Pod:        {}\n", r.pod));
    out.push_str(&format!("Scheduler:  {}\n", r.scheduler_name));
    if !r.bound_node.is_empty() {
        out.push_str(&format!(
            "Bound to:   {} (explained as if it were not placed yet)\n",
            r.bound_node
        ));
    }
    match r.chosen_node.as_str() {
        "" => out.push_str(&format!("Result:     no node fits: {}\n", r.message)),
        n => out.push_str(&format!("Result:     would be scheduled on {n}\n")),
    }
    out.push('\n');
    let mut rows = vec![vec![
        "NODE".to_string(),
        "FEASIBLE".into(),
        "RANK".into(),
        "SCORE".into(),
        "REASON".into(),
    ]];
    let mut nodes: Vec<_> = r.nodes.iter().collect();
    nodes.sort_by_key(|n| (n.rank == 0, n.rank));
    for n in &nodes {
        let reasons: Vec<String> = n
            .filters
            .iter()
            .filter(|v| !matches!(v.code.as_str(), "Success" | "Skip"))
            .map(|v| format!("{}: {}", v.plugin, dash(&v.reason)))
            .collect();
        rows.push(vec![
            n.node.clone(),
            if n.feasible { "yes" } else { "no" }.into(),
            if n.rank > 0 {
                n.rank.to_string()
            } else {
                "-".into()
            },
            if n.feasible {
                n.total_score.to_string()
            } else {
                "-".into()
            },
            dash(&reasons.join("; ")),
        ]);
    }
    out.push_str(&render(&rows));
    for n in &nodes {
        out.push_str(&format!(
            "\nNode {}: {}\n",
            n.node,
            if n.feasible {
                format!("feasible, rank {}, score {}", n.rank, n.total_score)
            } else {
                "not feasible".into()
            }
        ));
        let mut f = vec![vec![
            "  FILTER".to_string(),
            "VERDICT".into(),
            "REASON".into(),
        ]];
        for v in &n.filters {
            f.push(vec![
                format!("  {}", v.plugin),
                v.code.clone(),
                dash(&v.reason),
            ]);
        }
        out.push_str(&render(&f));
        if !n.scores.is_empty() {
            let mut s = vec![vec![
                "  SCORE".to_string(),
                "RAW".into(),
                "NORMALIZED".into(),
                "WEIGHT".into(),
                "WEIGHTED".into(),
            ]];
            for p in &n.scores {
                s.push(vec![
                    format!("  {}", p.plugin),
                    p.raw.to_string(),
                    p.normalized.to_string(),
                    p.weight.to_string(),
                    p.weighted.to_string(),
                ]);
            }
            s.push(vec![
                "  TOTAL".into(),
                String::new(),
                String::new(),
                String::new(),
                n.total_score.to_string(),
            ]);
            out.push_str(&render(&s));
        }
    }
    out
}

async fn profiles(client: &Client, a: &ProfilesArgs) -> Result<()> {
    let resp = scheduler(client, &a.scheduler)
        .await?
        .list_profiles(ListProfilesRequest {})
        .await
        .map_err(from_status)?
        .into_inner();
    let mut out = String::new();
    for p in &resp.profiles {
        out.push_str(&format!("Profile: {}\n", p.scheduler_name));
        out.push_str(&format!(
            "  percentageOfNodesToScore: {}\n",
            if p.percentage_of_nodes_to_score == 0 {
                "adaptive".to_string()
            } else {
                p.percentage_of_nodes_to_score.to_string()
            }
        ));
        for ep in &p.extension_points {
            let names: Vec<String> = ep
                .plugins
                .iter()
                .map(|pl| {
                    if ep.extension_point == "score" {
                        format!("{} (weight {})", pl.name, pl.weight)
                    } else {
                        pl.name.clone()
                    }
                })
                .collect();
            out.push_str(&format!(
                "  {}: {}\n",
                ep.extension_point,
                dash(&names.join(", "))
            ));
        }
        if p.extenders.is_empty() {
            out.push_str("  extenders: -\n");
        }
        for e in &p.extenders {
            let mut verbs = Vec::new();
            if e.filter {
                verbs.push("filter");
            }
            if e.prioritize {
                verbs.push("prioritize");
            }
            if e.bind {
                verbs.push("bind");
            }
            out.push_str(&format!(
                "  extender: {} verbs={} weight={} timeout={} ignorable={}\n",
                e.address,
                verbs.join(","),
                e.weight,
                e.timeout,
                e.ignorable
            ));
        }
    }
    print!("{out}");
    Ok(())
}
