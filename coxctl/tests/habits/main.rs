//! kubectl habits against the real `coxswain` binary (issue 16 §1, §2): delete waits, create
//! goes on past errors, client-side YAML errors, label/annotate messages and prefixed keys,
//! `get -w` on a missing object, `wait`, `-o jsonpath|custom-columns`, `--sort-by`, `-L`.

mod common;
mod edit;
mod inspect;
mod lifecycle;
mod output;
