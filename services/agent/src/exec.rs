//! One `exec` session (kubelet's /exec behind `kubectl exec`): the command runs as a child of
//! the agent in the container's environment, working directory and paths, in its own process
//! group; stdin, stdout and stderr are streamed over the bidirectional `NodeAgent/Exec` call,
//! and the last answer carries the exit code. With `tty`, the command runs on a pseudo-terminal
//! (its controlling terminal, through util-linux `setsid --ctty`), resized as the client's is.
//! The command is the container's user as its other processes are: `argv` changes to it (the
//! run-as wrapper), and a container that keeps root's uid gets its group (`runAsGroup`) here.
//! A client that goes away kills the command's process group.
use std::io::{Read, Write};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use coxswain_api::v1::{ExecRequest, ExecResponse, ExecStart, TerminalSize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

use crate::runtime::process::{container_process, exit_code, kill_group};
use crate::runtime::{user, ExecCommand};

pub type ExecStream = Pin<Box<dyn Stream<Item = Result<ExecResponse, Status>> + Send>>;

type Tx = mpsc::Sender<Result<ExecResponse, Status>>;

const CHUNK: usize = 32 * 1024;

/// How long output still in flight is awaited after the command exited (a process that left
/// the group may hold the output open).
const DRAIN: Duration = Duration::from_secs(2);

/// Starts the command and returns the stream of its output.
pub fn start(
    cmd: ExecCommand,
    start: &ExecStart,
    inbound: tonic::Streaming<ExecRequest>,
) -> Result<ExecStream, Status> {
    let (tx, rx) = mpsc::channel(16);
    if start.tty {
        tty_session(cmd, start, inbound, tx)?;
    } else {
        pipe_session(cmd, start.stdin, inbound, tx)?;
    }
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

fn spawn_error(argv0: &str, e: std::io::Error) -> Status {
    Status::internal(format!(
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{argv0}\": {e}: unknown"
    ))
}

fn code_of(st: std::io::Result<std::process::ExitStatus>) -> i32 {
    st.map_or(128, exit_code)
}

/// Kills the command's process group (its leader's pid), if it started.
fn kill(pgid: Option<u32>) {
    if let Some(pgid) = pgid {
        kill_group(pgid as i32, true);
    }
}

type Paths = std::sync::Arc<Vec<(String, std::path::PathBuf)>>;

/// Output as the container shows it: host directories named by their container paths (text
/// only; a path split between two reads is left as it is).
fn container_view(paths: &Paths, data: Vec<u8>) -> Vec<u8> {
    if paths.is_empty() {
        return data;
    }
    match String::from_utf8(data) {
        Ok(s) => crate::runtime::process::unrewrite_paths(&s, paths).into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

/// Forwards one output stream as stdout or stderr answers until it ends.
async fn forward<R: AsyncRead + Unpin>(mut from: R, stderr: bool, tx: Tx, paths: Paths) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let data = container_view(&paths, buf[..n].to_vec());
        let msg = if stderr {
            ExecResponse {
                stderr: data,
                ..Default::default()
            }
        } else {
            ExecResponse {
                stdout: data,
                ..Default::default()
            }
        };
        if tx.send(Ok(msg)).await.is_err() {
            return;
        }
    }
}

fn pipe_session(
    cmd: ExecCommand,
    with_stdin: bool,
    mut inbound: tonic::Streaming<ExecRequest>,
    tx: Tx,
) -> Result<(), Status> {
    // The container's process as its command and probes get it, with stdin when asked for.
    let mut command = container_process(&cmd.argv, &cmd.ids, &cmd.env, &cmd.cwd);
    if with_stdin {
        command.stdin(Stdio::piped());
    }
    command.kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| spawn_error(&cmd.argv[0], e))?;
    let pgid = child.id();
    let mut stdin = child.stdin.take();
    let mut outputs = tokio::task::JoinSet::new();
    let paths: Paths = std::sync::Arc::new(cmd.output_paths.clone());
    if let Some(out) = child.stdout.take() {
        outputs.spawn(forward(out, false, tx.clone(), paths.clone()));
    }
    if let Some(err) = child.stderr.take() {
        outputs.spawn(forward(err, true, tx.clone(), paths));
    }
    tokio::spawn(async move {
        let input = async {
            while let Ok(Some(req)) = inbound.message().await {
                if let Some(w) = stdin.as_mut() {
                    if !req.stdin.is_empty() && w.write_all(&req.stdin).await.is_err() {
                        stdin = None;
                    }
                }
                if req.stdin_eof {
                    stdin = None;
                }
            }
            // The client went away (or half-closed): no more input.
            drop(stdin.take());
            std::future::pending::<()>().await;
        };
        let code = tokio::select! {
            st = child.wait() => code_of(st),
            _ = input => unreachable!(),
            _ = tx.closed() => {
                kill(pgid);
                return;
            }
        };
        kill(pgid);
        let _ = tokio::time::timeout(DRAIN, async {
            while outputs.join_next().await.is_some() {}
        })
        .await;
        let _ = tx
            .send(Ok(ExecResponse {
                exit_code: Some(code),
                ..Default::default()
            }))
            .await;
    });
    Ok(())
}

fn winsize(size: &TerminalSize) -> rustix::termios::Winsize {
    rustix::termios::Winsize {
        ws_row: size.height.min(u16::MAX as u32) as u16,
        ws_col: size.width.min(u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A new pseudo-terminal: its controller and the terminal's path.
fn open_pty() -> std::io::Result<(std::fs::File, std::path::PathBuf)> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&controller)?;
    unlockpt(&controller)?;
    let name = ptsname(&controller, Vec::new())?;
    let path = std::path::PathBuf::from(name.to_string_lossy().to_string());
    Ok((std::fs::File::from(controller), path))
}

fn tty_session(
    cmd: ExecCommand,
    start: &ExecStart,
    mut inbound: tonic::Streaming<ExecRequest>,
    tx: Tx,
) -> Result<(), Status> {
    let io = |e: std::io::Error| Status::internal(format!("allocating a terminal: {e}"));
    let (controller, path) = open_pty().map_err(io)?;
    if let Some(size) = &start.size {
        let _ = rustix::termios::tcsetwinsize(&controller, winsize(size));
    }
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let (t_out, t_err) = (
        terminal.try_clone().map_err(io)?,
        terminal.try_clone().map_err(io)?,
    );
    // setsid --ctty: a new session whose controlling terminal is the pty, so ^C reaches the
    // command and a shell runs job control.
    let (program, args): (String, Vec<String>) =
        if std::path::Path::new("/usr/bin/setsid").is_file() {
            let mut a = vec!["--ctty".to_string()];
            a.extend(cmd.argv.iter().cloned());
            ("/usr/bin/setsid".into(), a)
        } else {
            (cmd.argv[0].clone(), cmd.argv[1..].to_vec())
        };
    let mut command = Command::new(program);
    command
        .args(&args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TERM", "xterm")
        .current_dir(&cmd.cwd)
        .stdin(Stdio::from(terminal))
        .stdout(Stdio::from(t_out))
        .stderr(Stdio::from(t_err))
        .kill_on_drop(true);
    user::apply_root_group(&mut command, &cmd.ids);
    let mut child = command.spawn().map_err(|e| spawn_error(&cmd.argv[0], e))?;
    // Only the child holds the terminal now: its output ends when the command's does.
    drop(command);
    let pgid = child.id();
    let mut reader = controller.try_clone().map_err(io)?;
    let mut writer = controller;
    // Terminal output, read on a thread (a pty is not pollable through tokio's file API).
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf) {
                // EIO: every holder of the terminal closed it.
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let resize_fd = writer.try_clone().map_err(io)?;
    std::thread::spawn(move || {
        while let Ok(data) = in_rx.recv() {
            if writer.write_all(&data).is_err() {
                return;
            }
        }
    });
    let with_stdin = start.stdin;
    tokio::spawn(async move {
        let input = async {
            while let Ok(Some(req)) = inbound.message().await {
                if let Some(size) = &req.resize {
                    let _ = rustix::termios::tcsetwinsize(&resize_fd, winsize(size));
                }
                if with_stdin && !req.stdin.is_empty() {
                    let _ = in_tx.send(req.stdin);
                }
                if req.stdin_eof && with_stdin {
                    // End of input on a terminal: the EOF character (^D).
                    let _ = in_tx.send(vec![4]);
                }
            }
            std::future::pending::<()>().await;
        };
        let out = tx.clone();
        let paths: Paths = std::sync::Arc::new(cmd.output_paths.clone());
        let mut output = tokio::spawn(async move {
            while let Some(data) = out_rx.recv().await {
                let msg = ExecResponse {
                    stdout: container_view(&paths, data),
                    ..Default::default()
                };
                if out.send(Ok(msg)).await.is_err() {
                    break;
                }
            }
        });
        let code = tokio::select! {
            st = child.wait() => code_of(st),
            _ = input => unreachable!(),
            _ = tx.closed() => {
                kill(pgid);
                return;
            }
        };
        kill(pgid);
        let _ = tokio::time::timeout(DRAIN, &mut output).await;
        let _ = tx
            .send(Ok(ExecResponse {
                exit_code: Some(code),
                ..Default::default()
            }))
            .await;
    });
    Ok(())
}
