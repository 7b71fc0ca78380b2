//! coxctl: kubectl for coxswain. Thin entry point: parse the command line, connect, dispatch.
mod age;
mod cli;
mod client;
mod commands;
mod describe;
mod jsonpath;
mod jv;
mod output;
mod printers;
mod resources;
mod sigpipe;
mod table;
mod zero;

use cli::{Cli, Command};
use client::{CliError, Client};
use commands::label::Field;

async fn run(mut cli: Cli) -> Result<(), CliError> {
    if let Command::Config(a) = &cli.command {
        return commands::config::run(a, &cli.kubeconfig, &cli.context);
    }
    let context_ns = commands::config::resolve(&mut cli.server, &cli.kubeconfig, &cli.context)?;
    if cli.namespace_defaulted && !context_ns.is_empty() {
        cli.namespace = context_ns;
    }
    let ns = cli.namespace.as_str();
    match &cli.command {
        Command::Version(a) => return commands::misc::version(a, &cli.server).await,
        Command::Completion(a) => return commands::completion::run(a),
        Command::Explain(a) => return commands::explain::run(a),
        Command::ApiResources => {
            print!("{}", commands::misc::api_resources());
            return Ok(());
        }
        Command::ApiVersions => {
            print!("{}", commands::misc::api_versions());
            return Ok(());
        }
        _ => {}
    }
    client::set_request_id(cli.request_id.as_deref())?;
    let mut client = Client::connect(&cli.server).await?;
    match &cli.command {
        Command::Apply(a) => commands::apply::apply(&mut client, a, ns).await,
        Command::Create(a) => {
            commands::apply::create(&mut client, a, ns, cli.namespace_explicit).await
        }
        Command::Get(a) => commands::get::run(&mut client, a, ns).await,
        Command::Describe(a) => describe::run(&mut client, a, ns).await,
        Command::Delete(a) => commands::delete::run(&mut client, a, ns).await,
        Command::Label(a) => commands::label::run(&mut client, a, ns, Field::Labels).await,
        Command::Annotate(a) => commands::label::run(&mut client, a, ns, Field::Annotations).await,
        Command::Logs(a) => commands::logs::run(&mut client, a, ns, &cli.server).await,
        Command::Exec(a) => commands::exec::run(&mut client, a, ns, &cli.server).await,
        Command::Taint(a) => commands::node::taint(&mut client, a).await,
        Command::Cordon(a) => commands::node::cordon(&mut client, a, true).await,
        Command::Uncordon(a) => commands::node::cordon(&mut client, a, false).await,
        Command::Drain(a) => commands::node::drain(&mut client, a).await,
        Command::Expose(a) => commands::expose::run(&mut client, a, ns).await,
        Command::Scale(a) => commands::workloads::scale(&mut client, a, ns).await,
        Command::Autoscale(a) => commands::autoscale::run(&mut client, a, ns).await,
        Command::Set(a) => commands::workloads::set(&mut client, a, ns).await,
        Command::Rollout(a) => commands::workloads::rollout(&mut client, a, ns).await,
        Command::Schedule(a) => commands::schedule::run(&mut client, a, ns).await,
        Command::Top(a) => commands::top::run(&mut client, a, ns).await,
        Command::Wait(a) => commands::wait::run(&mut client, a, ns).await,
        Command::Run(a) => commands::run::run(&mut client, a, ns).await,
        Command::Patch(a) => commands::patch::run(&mut client, a, ns).await,
        Command::Replace(a) => commands::edit::replace(&mut client, a, ns).await,
        Command::Edit(a) => commands::edit::edit(&mut client, a, ns).await,
        Command::Diff(a) => {
            let code = commands::edit::diff(&mut client, a, ns).await?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Events(a) => commands::cluster::events(&mut client, a, ns).await,
        Command::Auth(a) => commands::auth::run(&mut client, a, ns).await,
        Command::ClusterInfo(a) => {
            commands::cluster::cluster_info(&mut client, a, ns, &cli.server).await
        }
        Command::Version(_)
        | Command::Completion(_)
        | Command::Explain(_)
        | Command::ApiResources
        | Command::ApiVersions
        | Command::Config(_) => Ok(()),
    }
}

fn main() {
    sigpipe::install();
    let cli = Cli::parse_noting_namespace();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli)) {
        if !matches!(e, CliError::Reported) {
            eprintln!("{e}");
        }
        std::process::exit(1);
    }
}
