//! Node maintenance verbs, as kubectl has them: `taint`, `cordon`, `uncordon`, `drain`.
//!
//! - `taint`: parse `key=value:Effect`, `key:Effect`, `key=value:Effect-`, `key:Effect-`,
//!   `key-` (kubectl's parseTaints), merge with the node's taints (reorganizeTaints), and write
//!   spec.taints. NoExecute taints added get `timeAdded`.
//! - `cordon`/`uncordon`: spec.unschedulable.
//! - `drain`: cordon, then evict (graceful delete) every pod on the node that kubectl's drain
//!   filters allow, and wait until they are gone.
//!
//! This module holds the arguments, node selection and cordon; `taint.rs` and `drain.rs` the
//! two larger verbs.
use clap::Args;
use coxswain_api::v1::Node;
use coxswain_api::Kind;
use serde_json::json;

use crate::client::{other, Client, Result};

mod drain;
mod taint;

pub use drain::drain;
pub use taint::taint;

#[derive(Debug, Args)]
pub struct TaintArgs {
    /// node NAME... KEY_1=VAL_1:TAINT_EFFECT_1 ... (or node/NAME); KEY[:EFFECT]- removes.
    #[arg(required = true)]
    pub args: Vec<String>,
    /// If true, allow taints to be overwritten, otherwise reject taint updates that overwrite
    /// existing taints.
    #[arg(long)]
    pub overwrite: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all nodes in the cluster.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CordonArgs {
    /// NODE
    pub node: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// NODE
    pub node: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Ignore DaemonSet-managed pods.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Continue even if there are pods using emptyDir (local data that will be deleted when
    /// the node is drained).
    #[arg(long, alias = "delete-local-data")]
    pub delete_emptydir_data: bool,
    /// Continue even if there are pods that do not declare a controller.
    #[arg(long)]
    pub force: bool,
    /// Period of time in seconds given to each pod to terminate gracefully. If negative, the
    /// default value specified in the pod will be used.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i32,
    /// The length of time to wait before giving up, zero means infinite (e.g. 30s, 2m).
    #[arg(long, default_value = "0s")]
    pub timeout: String,
}

/// An aggregate error message as Kubernetes' utilerrors prints it.
fn aggregate(errors: &[String]) -> String {
    if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("[{}]", errors.join(", "))
    }
}

fn typed_node(obj: coxswain_api::Object) -> Result<Node> {
    obj.into_typed::<Node>()
        .ok_or_else(|| other("the server returned an object that is not a Node"))
}

/// Resolve node arguments: `node NAME...`, `nodes/NAME`, or a kind with -l/--all.
async fn select_nodes(
    client: &mut Client,
    resource_args: &[String],
    selector: Option<&str>,
    all: bool,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut kind_given = false;
    for a in resource_args {
        if let Some((k, n)) = a.split_once('/') {
            check_node_kind(k)?;
            names.push(n.to_string());
        } else if !kind_given && names.is_empty() {
            check_node_kind(a)?;
            kind_given = true;
        } else {
            names.push(a.clone());
        }
    }
    if names.is_empty() {
        if all || selector.is_some() {
            let (items, _) = client
                .list(Kind::Node, "", selector.unwrap_or(""), "")
                .await?;
            names = items.iter().map(|o| o.name().to_string()).collect();
        } else {
            return Err(other(
                "at least one resource name must be specified since 'all' parameter is not set",
            ));
        }
    }
    Ok(names)
}

fn check_node_kind(k: &str) -> Result<()> {
    match Kind::parse(k) {
        Some(Kind::Node) => Ok(()),
        Some(_) => Err(other(format!(
            "invalid resource type {k}, only node types are supported"
        ))),
        None => Err(other(format!(
            "the server doesn't have a resource type \"{k}\""
        ))),
    }
}

// === cordon / uncordon ===

async fn set_unschedulable(client: &mut Client, name: &str, on: bool) -> Result<bool> {
    let node = typed_node(client.get(Kind::Node, "", name).await?)?;
    if node.spec.as_ref().is_some_and(|s| s.unschedulable) == on {
        return Ok(false);
    }
    client
        .patch(
            Kind::Node,
            "",
            name,
            &json!({"spec": {"unschedulable": on}}),
        )
        .await?;
    Ok(true)
}

async fn cordon_nodes(client: &mut Client, args: &CordonArgs, on: bool) -> Result<Vec<String>> {
    let names = match (&args.node, &args.selector) {
        (Some(n), _) => vec![n.strip_prefix("node/").unwrap_or(n).to_string()],
        (None, Some(sel)) => client
            .list(Kind::Node, "", sel, "")
            .await?
            .0
            .iter()
            .map(|o| o.name().to_string())
            .collect(),
        (None, None) => {
            return Err(other(
                "USAGE: cordon NODE [flags]\nSee 'coxctl cordon -h' for help and examples",
            ))
        }
    };
    let verb = if on { "cordoned" } else { "uncordoned" };
    for name in &names {
        if set_unschedulable(client, name, on).await? {
            println!("node/{name} {verb}");
        } else {
            println!("node/{name} already {verb}");
        }
    }
    Ok(names)
}

pub async fn cordon(client: &mut Client, args: &CordonArgs, on: bool) -> Result<()> {
    cordon_nodes(client, args, on).await.map(|_| ())
}

#[cfg(test)]
mod cli_tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn taint_flags_parse_after_the_taint_arguments() {
        let cli = Cli::try_parse_from([
            "coxctl",
            "taint",
            "nodes",
            "node1",
            "tag=mayikt:NoExecute",
            "key-",
            "--overwrite",
        ])
        .unwrap();
        let Command::Taint(a) = cli.command else {
            panic!("not taint")
        };
        assert!(a.overwrite);
        assert_eq!(
            a.args,
            vec!["nodes", "node1", "tag=mayikt:NoExecute", "key-"]
        );
        let cli =
            Cli::try_parse_from(["coxctl", "drain", "node2", "--grace-period", "-1"]).unwrap();
        let Command::Drain(d) = cli.command else {
            panic!("not drain")
        };
        assert_eq!(d.grace_period, -1);
    }
}
