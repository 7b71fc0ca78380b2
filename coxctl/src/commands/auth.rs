//! `coxctl auth can-i VERB RESOURCE [NAME]`: asks the server whether the caller may do it (a
//! SelfSubjectAccessReview, `coxswain.v1.ObjectStore/AccessReview`), prints kubectl's `yes` or
//! `no`, and exits 1 on `no` as kubectl does.
use clap::{Args, Subcommand};
use coxswain_api::v1::object_store_client::ObjectStoreClient;
use coxswain_api::v1::AccessReviewRequest;

use crate::client::{other, CliError, Client};

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Check whether an action is allowed: `coxctl auth can-i list pods -n dev`,
    /// `coxctl auth can-i get pods/log`, `coxctl auth can-i delete deployments.apps web`.
    CanI {
        /// get, list, watch, create, update, patch, delete, or `*`.
        verb: String,
        /// A resource as kubectl takes it: `pods`, `deploy`, `deployments.apps`, `pods/log`.
        resource: String,
        /// Only this object.
        name: Option<String>,
        /// In every namespace (cluster-wide).
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Print nothing; the exit status answers.
        #[arg(short, long)]
        quiet: bool,
    },
}

pub async fn run(client: &mut Client, a: &AuthArgs, namespace: &str) -> Result<(), CliError> {
    let AuthCommand::CanI {
        verb,
        resource,
        name,
        all_namespaces,
        quiet,
    } = &a.command;
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_string(), s.to_string()),
        None => (resource.clone(), String::new()),
    };
    let mut store = ObjectStoreClient::new(client.channel());
    let r = store
        .access_review(AccessReviewRequest {
            verb: verb.clone(),
            resource,
            subresource,
            namespace: match all_namespaces {
                true => String::new(),
                false => namespace.to_string(),
            },
            name: name.clone().unwrap_or_default(),
        })
        .await
        .map_err(|s| other(format!("error: {}", s.message())))?
        .into_inner();
    if !quiet {
        println!("{}", if r.allowed { "yes" } else { "no" });
    }
    if !r.allowed {
        if !quiet && !r.reason.is_empty() {
            eprintln!("{}", r.reason);
        }
        std::process::exit(1);
    }
    Ok(())
}
