//! `coxctl exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARGS...]`: kubectl's exec over the
//! pod's agent (`coxswain.v1.NodeAgent/Exec`, a bidirectional stream). The command's exit code
//! becomes coxctl's, with kubectl's "command terminated with exit code N". With `-t` and a
//! terminal on stdin, the local terminal is put in raw mode for the session and its size
//! follows SIGWINCH.
use std::io::Write;

use clap::Args;
use coxswain_api::v1::{ExecRequest, ExecStart, TerminalSize};
use coxswain_api::{Kind, Object};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::client::{from_status, other, CliError, Client, Result};

/// The Node annotation naming the agent's gRPC endpoint.
/// The Pod annotation naming the container kubectl picks by default.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod (NAME or pod/NAME).
    pub pod: String,
    /// Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation
    /// for selecting the container to be attached or the first container in the pod.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Only print output from the remote session.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// The local terminal in raw mode until dropped.
struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

fn terminal_size() -> Option<TerminalSize> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdin()))
        .ok()?;
    Some(TerminalSize {
        width: ws.ws_col.into(),
        height: ws.ws_row.into(),
    })
}

fn exec_error(st: tonic::Status) -> CliError {
    match st.code() {
        Code::FailedPrecondition => {
            other(format!("unable to upgrade connection: {}", st.message()))
        }
        Code::Internal => CliError::Server {
            reason: "InternalError",
            message: format!(
                "Internal error occurred: error executing command in container: {}",
                st.message()
            ),
        },
        Code::InvalidArgument => CliError::Server {
            reason: "BadRequest",
            message: st.message().to_string(),
        },
        _ => from_status(st),
    }
}

pub async fn run(client: &mut Client, a: &ExecArgs, ns: &str, server: &str) -> Result<()> {
    if a.command.is_empty() {
        return Err(other(
            "you must specify at least one command for the container",
        ));
    }
    let name = a
        .pod
        .strip_prefix("pod/")
        .or_else(|| a.pod.strip_prefix("pods/"))
        .unwrap_or(&a.pod);
    let Object::Pod(pod) = client.get(Kind::Pod, ns, name).await? else {
        return Err(other("not a pod"));
    };
    let phase = pod
        .status
        .as_ref()
        .map(|s| s.phase.clone())
        .unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(other(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let container = match &a.container {
        Some(c) => c.clone(),
        None => {
            let annotated = pod
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.get(DEFAULT_CONTAINER).cloned())
                .filter(|c| spec.containers.iter().any(|x| &x.name == c));
            let first = spec
                .containers
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default();
            if annotated.is_none() && spec.containers.len() > 1 && !a.quiet {
                eprintln!(
                    "Defaulted container \"{first}\" out of: {}",
                    spec.containers
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            annotated.unwrap_or(first)
        }
    };
    if spec.node_name.is_empty() {
        return Err(CliError::Server {
            reason: "BadRequest",
            message: format!("pod {name} does not have a host assigned"),
        });
    }
    use std::io::IsTerminal;
    let mut tty = a.tty;
    if tty && !(a.stdin && std::io::stdin().is_terminal()) {
        if !a.quiet {
            eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        }
        tty = false;
    }
    let mut agent = super::logs::node_agent(client, server, &spec.node_name).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<ExecRequest>(16);
    let start = ExecStart {
        node_name: spec.node_name.clone(),
        namespace: ns.to_string(),
        pod: name.to_string(),
        container,
        command: a.command.clone(),
        stdin: a.stdin,
        tty,
        size: if tty { terminal_size() } else { None },
    };
    let _ = tx
        .send(ExecRequest {
            start: Some(start),
            ..Default::default()
        })
        .await;
    let raw = tty.then(RawMode::enter);
    if a.stdin {
        // A thread: a blocking read of stdin must not hold the runtime at exit.
        let tx = tx.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 8192];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.blocking_send(ExecRequest {
                            stdin_eof: true,
                            ..Default::default()
                        });
                        return;
                    }
                    Ok(n) => {
                        let req = ExecRequest {
                            stdin: buf[..n].to_vec(),
                            ..Default::default()
                        };
                        if tx.blocking_send(req).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    if tty {
        let tx = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut winch) = signal(SignalKind::window_change()) else {
                return;
            };
            while winch.recv().await.is_some() {
                let req = ExecRequest {
                    resize: terminal_size(),
                    ..Default::default()
                };
                if tx.send(req).await.is_err() {
                    return;
                }
            }
        });
    }
    // The request stream stays open while the session runs (stdin may end before it does).
    let keep = tx;
    let outbound = tokio_stream::wrappers::ReceiverStream::new(rx);
    let result = async {
        let mut stream = agent.exec(outbound).await.map_err(exec_error)?.into_inner();
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let mut code = None;
        while let Some(msg) = stream.next().await {
            let msg = msg.map_err(exec_error)?;
            if !msg.stdout.is_empty() {
                let _ = out.write_all(&msg.stdout).and_then(|_| out.flush());
            }
            if !msg.stderr.is_empty() {
                let _ = err.write_all(&msg.stderr).and_then(|_| err.flush());
            }
            if msg.exit_code.is_some() {
                code = msg.exit_code;
            }
        }
        Ok::<_, CliError>(code)
    }
    .await;
    drop(raw);
    drop(keep);
    match result? {
        Some(0) => Ok(()),
        Some(code) => {
            eprintln!("command terminated with exit code {code}");
            std::process::exit(code);
        }
        None => Err(other(
            "the connection to the agent ended before the command did",
        )),
    }
}
