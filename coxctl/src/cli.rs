//! Command line: kubectl's verbs and flags.
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "coxctl",
    version,
    about = "coxctl controls the coxswain cluster (kubectl's verbs and flags)"
)]
pub struct Cli {
    /// The address of the coxswain server (http://host:port or host:port).
    #[arg(
        long,
        short = 's',
        global = true,
        env = "COXSWAIN_SERVER",
        default_value = "",
        hide_default_value = true
    )]
    pub server: String,
    /// The client configuration file (default: $COXCONFIG, else ~/.coxswain/config); its
    /// current context names the server (else http://127.0.0.1:50051) and the credentials.
    #[arg(long, global = true, env = "COXCONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The context of the configuration file to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace scope for this request.
    #[arg(
        long,
        short = 'n',
        global = true,
        env = "COXSWAIN_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// The namespace came from `-n/--namespace` (kubectl's EnforceNamespace: generators such
    /// as `create deployment` then write it into the object).
    #[arg(skip)]
    pub namespace_explicit: bool,
    /// Neither the flag nor COXSWAIN_NAMESPACE gave the namespace: the context's, if any.
    #[arg(skip)]
    pub namespace_defaulted: bool,
    /// The x-request-id every request carries (1 to 64 of A-Z a-z 0-9 . _ : -); the store logs
    /// it with each request. Default: a random UUID per invocation.
    #[arg(long, global = true, env = "COXCTL_REQUEST_ID")]
    pub request_id: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parse the command line, noting where the namespace came from (as clientcmd's
    /// Namespace(): only the flag is explicit; COXSWAIN_NAMESPACE, like in-cluster
    /// POD_NAMESPACE, and the context's namespace are not).
    pub fn parse_noting_namespace() -> Cli {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let m = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit());
        let source = m.value_source("namespace");
        cli.namespace_explicit = source == Some(ValueSource::CommandLine);
        cli.namespace_defaulted = !matches!(
            source,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        cli
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply a configuration to a resource by file name or stdin.
    Apply(ApplyArgs),
    /// Create a resource from a file or from stdin, or a namespace.
    Create(CreateArgs),
    /// Display one or many resources.
    Get(GetArgs),
    /// Show details of a specific resource or group of resources.
    Describe(DescribeArgs),
    /// Delete resources by file names, stdin, resources and names, or by label selector.
    Delete(DeleteArgs),
    /// Update the labels on a resource.
    Label(LabelArgs),
    /// Update the annotations on a resource.
    Annotate(LabelArgs),
    /// Print the logs of a container in a pod.
    Logs(crate::commands::logs::LogsArgs),
    /// Execute a command in a container.
    Exec(crate::commands::exec::ExecArgs),
    /// Update the taints on one or more nodes.
    Taint(crate::commands::node::TaintArgs),
    /// Mark node as unschedulable.
    Cordon(crate::commands::node::CordonArgs),
    /// Mark node as schedulable.
    Uncordon(crate::commands::node::CordonArgs),
    /// Drain node in preparation for maintenance.
    Drain(crate::commands::node::DrainArgs),
    /// Expose a deployment, replica set, pod or service as a new Service.
    Expose(crate::commands::expose::ExposeArgs),
    /// Set a new size for a deployment, replica set or stateful set.
    Scale(crate::commands::workloads::ScaleArgs),
    /// Auto-scale a deployment, replica set or stateful set (`autoscale explain HPA`: why).
    Autoscale(crate::commands::autoscale::AutoscaleArgs),
    /// Set specific features on objects (`set image`).
    #[command(subcommand)]
    Set(crate::commands::workloads::SetWhat),
    /// Manage the rollout of a resource (status, history, undo, pause, resume, restart).
    #[command(subcommand)]
    Rollout(crate::commands::workloads::RolloutWhat),
    /// Ask the scheduler: `schedule explain POD | -f MANIFEST`, `schedule profiles`.
    #[command(subcommand)]
    Schedule(crate::commands::schedule::ScheduleWhat),
    /// Display resource (CPU/memory) usage of nodes or pods.
    #[command(subcommand)]
    Top(crate::commands::top::TopWhat),
    /// Wait for a specific condition on one or many resources.
    Wait(crate::commands::wait::WaitArgs),
    /// Run a particular image on the cluster (a Pod; the old --requests form: a Deployment).
    Run(crate::commands::run::RunArgs),
    /// Update fields of a resource (strategic merge, JSON merge or JSON patch).
    Patch(crate::commands::patch::PatchArgs),
    /// Replace a resource by file name or stdin.
    Replace(crate::commands::edit::ReplaceArgs),
    /// Edit a resource on the server with $KUBE_EDITOR or $EDITOR.
    Edit(crate::commands::edit::EditArgs),
    /// Diff the live version against the would-be applied version.
    Diff(crate::commands::edit::DiffArgs),
    /// List events.
    Events(crate::commands::cluster::EventsArgs),
    /// Display cluster information.
    #[command(name = "cluster-info")]
    ClusterInfo(crate::commands::cluster::ClusterInfoArgs),
    /// Print the client and server version information.
    Version(crate::commands::misc::VersionArgs),
    /// Modify or view the client configuration (contexts and credentials).
    Config(crate::commands::config::ConfigArgs),
    /// Inspect authorization: `auth can-i VERB RESOURCE [NAME]`.
    Auth(crate::commands::auth::AuthArgs),
    /// Get the documentation of a resource and its fields (TYPE[.FIELD...], --recursive).
    Explain(crate::commands::explain::ExplainArgs),
    /// Output shell completion code for the specified shell (bash, zsh, fish or powershell).
    Completion(crate::commands::completion::CompletionArgs),
    /// Print the supported API resources on the server.
    #[command(name = "api-resources")]
    ApiResources,
    /// Print the supported API versions on the server, in the form of "group/version".
    #[command(name = "api-versions")]
    ApiVersions,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The files (or directories, or "-" for stdin) that contain the configuration to apply.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    /// "none", "client" or "server": only show what would be done.
    #[arg(long, num_args = 0..=1, default_missing_value = "client", default_value = "none")]
    pub dry_run: String,
    /// Record the command as the kubernetes.io/change-cause annotation of workloads.
    #[arg(long)]
    pub record: bool,
    /// Accepted for compatibility (ignored).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub validate: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateArgs {
    /// The files (or directories, or "-" for stdin) that contain the configuration to create.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    /// "none", "client" or "server": only show what would be done.
    #[arg(long, num_args = 0..=1, default_missing_value = "client", default_value = "none")]
    pub dry_run: String,
    /// Record the command as the kubernetes.io/change-cause annotation of workloads.
    #[arg(long)]
    pub record: bool,
    /// Accepted for compatibility (ignored).
    #[arg(long, hide = true)]
    pub save_config: bool,
    #[command(subcommand)]
    pub what: Option<CreateWhat>,
}

#[derive(Debug, Subcommand)]
pub enum CreateWhat {
    /// Create a namespace with the specified name.
    #[command(alias = "ns")]
    Namespace { name: String },
    /// Create a service account with the specified name.
    #[command(alias = "sa")]
    Serviceaccount { name: String },
    /// Create a job with the specified name (from a cron job: --from=cronjob/NAME).
    Job {
        name: String,
        /// The cron job to take the job template from (cronjob/NAME).
        #[arg(long)]
        from: String,
    },
    /// Create a deployment with the specified name.
    #[command(alias = "deploy")]
    Deployment(crate::commands::create::DeploymentArgs),
    /// Create a config map from a local file, directory or literal value.
    #[command(alias = "cm")]
    Configmap(crate::commands::create::ConfigMapArgs),
    /// Create a secret using a specified subcommand.
    #[command(subcommand)]
    Secret(crate::commands::create::SecretWhat),
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// KIND[,KIND...] [NAME...] or KIND/NAME...
    pub resources: Vec<String>,
    /// List the requested object(s) across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector ("app=x,env!=dev,tier in (a,b)").
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector ("status.phase=Running").
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Output format: wide, yaml, json, name, jsonpath=…, custom-columns=….
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// After listing/getting the requested objects, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes to the requested object(s), without listing/getting first.
    #[arg(long)]
    pub watch_only: bool,
    /// When printing, show all labels as the last column.
    #[arg(long)]
    pub show_labels: bool,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Labels to print as columns (-L app -L tier, or -L app,tier).
    #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
    pub label_columns: Vec<String>,
    /// Sort list types by this JSONPath ('{.metadata.name}' or .metadata.name).
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Accepted for compatibility (completed pods are always shown).
    #[arg(short = 'a', long, hide = true)]
    pub show_all: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// KIND [NAME...] or KIND/NAME...
    #[arg(required = true)]
    pub resources: Vec<String>,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// KIND NAME... or KIND/NAME...
    pub resources: Vec<String>,
    /// Files (or directories, or "-") naming the objects to delete.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete all objects of the kind in the namespace.
    #[arg(long)]
    pub all: bool,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// background, foreground or orphan (true = background, false = orphan).
    #[arg(long, num_args = 0..=1, default_missing_value = "background", default_value = "background")]
    pub cascade: String,
    /// Seconds given to the object to terminate gracefully (-1: the object's default).
    #[arg(long, default_value_t = -1)]
    pub grace_period: i32,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Wait for resources to be gone before returning (--wait=false: return at once).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true", action = clap::ArgAction::Set)]
    pub wait: String,
    /// How long to wait before giving up on a delete (0: a week).
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Immediate deletion (grace period 1).
    #[arg(long)]
    pub now: bool,
    /// Immediate deletion (with --grace-period=0).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LabelArgs {
    /// KIND NAME KEY=VAL... KEY-... (or KIND/NAME)
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Allow changing the value of an existing key.
    #[arg(long)]
    pub overwrite: bool,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all objects of the kind in the namespace.
    #[arg(long)]
    pub all: bool,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}
