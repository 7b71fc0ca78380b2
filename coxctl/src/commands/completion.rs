//! `coxctl completion bash|zsh|fish|powershell`: the shell completion script for every verb and
//! flag, generated from the command line definition (clap_complete), as kubectl's
//! `completion SHELL` prints it to stdout.
//!
//! ```sh
//! source <(coxctl completion bash)
//! ```
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::client::{other, Result};

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish or powershell.
    pub shell: String,
}

/// The script for `shell`.
pub fn script(shell: &str) -> Result<Vec<u8>> {
    let sh = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        "powershell" => Shell::PowerShell,
        other_shell => return Err(other(format!("Unsupported shell type {other_shell:?}."))),
    };
    let mut out = Vec::new();
    clap_complete::generate(sh, &mut Cli::command(), "coxctl", &mut out);
    Ok(out)
}

pub fn run(a: &CompletionArgs) -> Result<()> {
    use std::io::Write;
    let out = script(&a.shell)?;
    std::io::stdout().write_all(&out).map_err(|e| {
        crate::sigpipe::exit_if_broken(&e);
        other(format!("writing the script: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_verbs() {
        for sh in ["bash", "zsh", "fish", "powershell"] {
            let s = String::from_utf8(script(sh).expect(sh)).expect("utf-8");
            assert!(s.contains("coxctl"), "{sh}");
            assert!(s.contains("explain") || s.contains("describe"), "{sh}");
        }
        let e = script("tcsh").expect_err("tcsh");
        assert_eq!(e.to_string(), "error: Unsupported shell type \"tcsh\".");
    }
}
