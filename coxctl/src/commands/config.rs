//! `coxctl config`: the client configuration (kubectl config's view, get-contexts, use-context,
//! current-context), and how coxctl picks its server and credentials from it.
//!
//! The file: `--kubeconfig FILE`, else `$COXCONFIG`, else `~/.coxswain/config`. `--server` (or
//! `COXSWAIN_SERVER`) wins over the context's server; an `https://` server is dialled with the
//! context's CA and client certificate.
use std::path::PathBuf;

use clap::{Args, Subcommand};
use coxswain_client::config::{default_path, install, Kubeconfig};

use crate::client::{other, CliError};

/// The server coxctl dials when neither `--server` nor a configuration names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Display the merged configuration (certificate data and tokens redacted unless --raw).
    View {
        /// Show certificate data and tokens.
        #[arg(long)]
        raw: bool,
        /// Only what the current context uses.
        #[arg(long)]
        minify: bool,
    },
    /// Describe one or many contexts.
    GetContexts {
        /// Only the names.
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Set the current-context in the configuration file.
    UseContext { name: String },
    /// Display the current-context.
    CurrentContext,
}

fn path_of(explicit: &Option<PathBuf>) -> Result<PathBuf, CliError> {
    explicit
        .clone()
        .or_else(default_path)
        .ok_or_else(|| other("no configuration file: set --kubeconfig or COXCONFIG"))
}

fn load(explicit: &Option<PathBuf>) -> Result<(PathBuf, Kubeconfig), CliError> {
    let p = path_of(explicit)?;
    if explicit.is_some() && !p.exists() {
        return Err(other(format!(
            "stat {}: no such file or directory",
            p.display()
        )));
    }
    let c = Kubeconfig::load(&p).map_err(|e| other(e.to_string()))?;
    Ok((p, c))
}

/// Fill in the server (when not given) and install the credentials of the chosen context;
/// the context's namespace ("" when it has none or there is no usable context).
pub fn resolve(
    server: &mut String,
    kubeconfig: &Option<PathBuf>,
    context: &Option<String>,
) -> Result<String, CliError> {
    let (_, conf) = load(kubeconfig)?;
    let usable =
        !conf.contexts.is_empty() && (context.is_some() || !conf.current_context.is_empty());
    if !usable {
        if let Some(c) = context {
            return Err(other(format!(
                "context was not found for specified context: {c}"
            )));
        }
        if server.is_empty() {
            *server = DEFAULT_SERVER.to_string();
        }
        return Ok(String::new());
    }
    let r = conf
        .resolve(context.as_deref())
        .map_err(|e| other(e.to_string()))?;
    if server.is_empty() {
        *server = r.server;
        install(r.credentials);
    } else if server.starts_with("https://") {
        install(r.credentials);
    }
    Ok(r.namespace)
}

fn redact(conf: &mut Kubeconfig) {
    for c in &mut conf.clusters {
        if !c.cluster.certificate_authority_data.is_empty() {
            c.cluster.certificate_authority_data = "DATA+OMITTED".into();
        }
    }
    for u in &mut conf.users {
        if !u.user.client_certificate_data.is_empty() {
            u.user.client_certificate_data = "DATA+OMITTED".into();
        }
        if !u.user.client_key_data.is_empty() {
            u.user.client_key_data = "DATA+OMITTED".into();
        }
        if !u.user.token.is_empty() {
            u.user.token = "REDACTED".into();
        }
    }
}

pub fn run(
    a: &ConfigArgs,
    kubeconfig: &Option<PathBuf>,
    context: &Option<String>,
) -> Result<(), CliError> {
    let (path, mut conf) = load(kubeconfig)?;
    match &a.command {
        ConfigCommand::View { raw, minify } => {
            if *minify {
                let name = context.clone().unwrap_or(conf.current_context.clone());
                let ctx = conf
                    .contexts
                    .iter()
                    .find(|c| c.name == name)
                    .cloned()
                    .ok_or_else(|| other(format!("context \"{name}\" does not exist")))?;
                conf.contexts = vec![ctx.clone()];
                conf.clusters.retain(|c| c.name == ctx.context.cluster);
                conf.users.retain(|u| u.name == ctx.context.user);
                conf.current_context = name;
            }
            if !raw {
                redact(&mut conf);
            }
            print!("{}", conf.to_yaml());
            Ok(())
        }
        ConfigCommand::GetContexts { output } => {
            if output.as_deref() == Some("name") {
                for c in &conf.contexts {
                    println!("{}", c.name);
                }
                return Ok(());
            }
            let rows: Vec<[String; 5]> = conf
                .contexts
                .iter()
                .map(|c| {
                    [
                        if c.name == conf.current_context {
                            "*"
                        } else {
                            ""
                        }
                        .to_string(),
                        c.name.clone(),
                        c.context.cluster.clone(),
                        c.context.user.clone(),
                        c.context.namespace.clone(),
                    ]
                })
                .collect();
            let header = ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"].map(String::from);
            let mut widths = [0usize; 5];
            for r in std::iter::once(&header).chain(rows.iter()) {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.len());
                }
            }
            for r in std::iter::once(&header).chain(rows.iter()) {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
            Ok(())
        }
        ConfigCommand::UseContext { name } => {
            if !conf.contexts.iter().any(|c| &c.name == name) {
                return Err(other(format!(
                    "no context exists with the name: \"{name}\""
                )));
            }
            conf.current_context = name.clone();
            conf.save(&path).map_err(|e| other(e.to_string()))?;
            println!("Switched to context \"{name}\".");
            Ok(())
        }
        ConfigCommand::CurrentContext => {
            if conf.current_context.is_empty() {
                return Err(other("current-context is not set"));
            }
            println!("{}", conf.current_context);
            Ok(())
        }
    }
}
