//! Helpers every test of this binary shares: `up` with the sim runtime and three nodes, pod
//! state and listing.
use std::time::Duration;

use coxswain_api::v1::Pod;
use coxswain_client::{Client, ListParams};
pub use coxswain_test_support::objects::{deleting, phase, ready};
use coxswain_test_support::{wait_for, Coxswain};

pub const T: Duration = Duration::from_secs(40);

pub fn up(extra: &[&str]) -> Coxswain {
    for b in ["coxswain", "coxctl"] {
        assert!(
            coxswain_test_support::bin(b).exists(),
            "{b} is not built: run `cargo build -p coxswain -p coxctl` first"
        );
    }
    let mut args = vec!["--in-memory", "--runtime", "sim", "--nodes", "3"];
    args.extend_from_slice(extra);
    Coxswain::start_with(&["up"], &args).expect("coxswain up")
}

pub fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()
}

pub async fn pods(c: &Client, ns: &str, sel: &str) -> Vec<Pod> {
    c.list::<Pod>(ns, &ListParams::labels(sel))
        .await
        .map(|x| x.0)
        .unwrap_or_default()
}

/// Waits until no pod of `ns` matches the label selector `sel`; `what` names the wait.
pub async fn wait_pods_gone(c: &Client, ns: &str, sel: &str, what: &str) {
    wait_for(what, T, || async {
        pods(c, ns, sel).await.is_empty().then_some(())
    })
    .await
    .unwrap();
}
