//! Exec probes and hooks of the process runtime: the command runs as the container does,
//! through the `run-as` wrapper, timed from its start.
use std::time::Duration;

use coxswain_api::v1::Container;

use super::paths::{resolvable, unrewrite_paths, workdir};
use super::{container_process, exit_code, kill_group, ProcessRuntime};
use crate::runtime::user;
use crate::runtime::{container_env, expand, Outcome, PodInfo};

impl ProcessRuntime {
    pub(super) async fn exec(
        &self,
        pod: &PodInfo,
        c: &Container,
        cmd: &[String],
        timeout: Duration,
    ) -> Outcome {
        let Some(first) = cmd.first() else {
            return Outcome::Failure("exec: no command".into());
        };
        let resolved = self.catalog.resolve(&c.image).ok();
        let dir = self.container_dir(&pod.uid, &c.name);
        let paths = self.path_map(pod, c, resolved.as_ref(), &dir);
        let env = container_env(pod, c);
        let argv: Vec<String> = cmd
            .iter()
            .map(|a| self.rewrite(&paths, &expand(a, &env)))
            .collect();
        let ids = match self.run_as(pod, c) {
            Ok(ids) => ids,
            Err(e) => return Outcome::Failure(e),
        };
        let cwd = workdir(c, &paths, &dir);
        let not_found = || {
            Outcome::Failure(format!(
                "exec: \"{first}\": stat {first}: no such file or directory"
            ))
        };
        // A probe or hook runs as the container does: through the `run-as` wrapper (the
        // container's user, groups and capabilities, and its private mount namespace), which
        // execs the command in place, so the process group it leads is the command's and a
        // timeout kills both. The wrapper reports a missing program only on its stderr: it is
        // looked up first, as for `exec`.
        let argv = user::wrap(&self.wrapper_exe(), &ids, argv);
        let wrapped = argv.len() > cmd.len();
        if wrapped && !resolvable(&argv[argv.len() - cmd.len()], &cwd) {
            return not_found();
        }
        let argv = self.beside(argv, pod, c, &paths);
        // The wrapper times the command from its start; the agent's own deadline, later by
        // the wrapper's start-up, is the backstop.
        let (argv, deadline) = match wrapped {
            true => (
                crate::runtime::isolation::wrap_timeout(argv, timeout),
                timeout + WRAPPER_START_ALLOWANCE,
            ),
            false => (argv, timeout),
        };
        let mut command = container_process(&argv, &ids, &env, &cwd);
        command.kill_on_drop(true);
        let child = match command.spawn() {
            Ok(ch) => ch,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
            Err(e) => return Outcome::Failure(format!("exec: \"{first}\": stat {first}: {e}")),
        };
        let pid = child.id();
        let timed_out = || {
            Outcome::Failure(format!(
                "command '{}' timed out after {}s",
                cmd.join(" "),
                timeout.as_secs_f64()
            ))
        };
        match tokio::time::timeout(deadline, child.wait_with_output()).await {
            Ok(Ok(out))
                if wrapped
                    && String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .any(|l| l == crate::runtime::isolation::TIMED_OUT) =>
            {
                timed_out()
            }
            Ok(Ok(out)) => {
                if out.status.success() {
                    Outcome::Success
                } else {
                    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
                    text.push_str(&String::from_utf8_lossy(&out.stderr));
                    // The container's paths, as the program inside it would print them.
                    let text = unrewrite_paths(text.trim(), &paths);
                    let code = exit_code(out.status);
                    if text.is_empty() {
                        Outcome::Failure(format!("command '{}' exited with {code}", cmd.join(" ")))
                    } else {
                        Outcome::Failure(text)
                    }
                }
            }
            Ok(Err(e)) => Outcome::Failure(e.to_string()),
            Err(_) => {
                if let Some(pid) = pid {
                    kill_group(pid as i32, true);
                }
                timed_out()
            }
        }
    }
}

/// How much later than an exec probe's or hook's timeout the agent kills a wrapped command
/// itself: the `run-as` wrapper times the command from its start, this covers the wrapper's
/// own start (an exec of this binary, and namespaces to join or make).
const WRAPPER_START_ALLOWANCE: Duration = Duration::from_secs(5);
