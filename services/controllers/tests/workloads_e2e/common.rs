//! Helpers every test of this binary shares: `up` without node agents, the fake kubelet, pod
//! state and listing.
use std::collections::BTreeSet;
use std::time::Duration;

use coxswain_api::v1::{Condition, Event as KEvent, Pod, PodStatus, ReplicaSet};
use coxswain_api::Resource;
use coxswain_client::{Client, ListParams};
pub use coxswain_test_support::objects::{deleting, phase, ready};
use coxswain_test_support::Coxswain;

pub const NS: &str = "mayikt-sit";
pub const T: Duration = Duration::from_secs(30);

pub fn up() -> Coxswain {
    for b in ["coxswain", "coxctl"] {
        assert!(
            coxswain_test_support::bin(b).exists(),
            "{b} is not built: run `cargo build -p coxswain -p coxctl` first"
        );
    }
    Coxswain::start_with(
        &["up"],
        &[
            "--in-memory",
            // No node agents and no scheduler: the test's fake kubelet owns pod status.
            "--nodes",
            "0",
            "--no-scheduler",
            "--job-backoff-base",
            "100ms",
            "--job-backoff-max",
            "400ms",
        ],
    )
    .expect("coxswain up")
}

pub fn now() -> String {
    coxswain_api::time::now_rfc3339()
}

/// What the fake kubelet does with a new pod.
#[derive(Clone, Copy)]
pub enum Fate {
    RunReady,
    Succeed,
    Fail,
}

/// Move every pod of `ns` without a phase to `fate` (repeatedly, until the test ends).
pub fn fake_kubelet(client: Client, ns: &'static str, fate: Fate) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok((pods, _)) = client.list::<Pod>(ns, &ListParams::default()).await {
                for mut p in pods {
                    if !phase(&p).is_empty() && phase(&p) != "Pending" || deleting(&p) {
                        continue;
                    }
                    let (ph, rd) = match fate {
                        Fate::RunReady => ("Running", "True"),
                        Fate::Succeed => ("Succeeded", "False"),
                        Fate::Fail => ("Failed", "False"),
                    };
                    p.status = Some(PodStatus {
                        phase: ph.into(),
                        conditions: vec![Condition {
                            r#type: "Ready".into(),
                            status: rd.into(),
                            last_transition_time: now(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    });
                    let _ = client.update_status(&p).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

pub async fn pods(c: &Client, ns: &str) -> Vec<Pod> {
    c.list::<Pod>(ns, &ListParams::default())
        .await
        .map(|x| x.0)
        .unwrap_or_default()
}

pub async fn rss(c: &Client, ns: &str) -> Vec<ReplicaSet> {
    c.list::<ReplicaSet>(ns, &ListParams::default())
        .await
        .map(|x| x.0)
        .unwrap_or_default()
}

pub async fn events(c: &Client, ns: &str) -> Vec<KEvent> {
    c.list::<KEvent>(ns, &ListParams::default())
        .await
        .map(|x| x.0)
        .unwrap_or_default()
}

pub fn names(ps: &[Pod]) -> BTreeSet<String> {
    ps.iter().map(|p| p.metadata().name.clone()).collect()
}

pub fn image_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.image.clone())
        .unwrap_or_default()
}
