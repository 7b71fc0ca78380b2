//! A closed stdout ends coxctl as it ends kubectl: at once, silently, status 141 in the shell.
//!
//! Go (kubectl) exits with SIGPIPE when a write to a broken pipe on file descriptor 1 or 2
//! fails, and returns EPIPE for any other descriptor (os/signal: "SIGPIPE"). Rust ignores
//! SIGPIPE for the whole process, which coxctl's connections need (a closed socket must be an
//! error, not death), so a closed stdout shows up here as an EPIPE error instead: `println!`
//! panics on it and a `write` returns it. This module turns exactly those into Go's exit —
//! `coxctl get pods | head -1` and `coxctl completion bash | head` end quietly with the shell
//! seeing 141 (kubectl's 128 + SIGPIPE; coxctl exits with that status rather than by the
//! signal, see [`die`]) — and leaves every other error as it was.
use std::io;

/// Route `println!`'s panic on a closed stdout to [`die`]; every other panic goes to the
/// default hook unchanged.
pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        // std's message for a failed print!/println!: "failed printing to stdout: <io error>".
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            die();
        }
        default(info)
    }));
}

/// A write to stdout whose other errors coxctl has always ignored (a table row): a closed
/// pipe still ends the process as in Go.
pub fn ok(r: io::Result<()>) {
    if let Err(e) = r {
        exit_if_broken(&e);
    }
}

/// Ends the process as Go does when `e` is a broken pipe on stdout; returns otherwise.
pub fn exit_if_broken(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        die();
    }
}

fn die() -> ! {
    // Go dies of the signal itself; the workspace forbids the unsafe code that restoring
    // SIGPIPE's default disposition takes, so coxctl exits with the status a shell reports for
    // that death (128 + SIGPIPE), flushing nothing more.
    std::process::exit(128 + SIGPIPE)
}

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;
