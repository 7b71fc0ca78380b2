//! Two schedulers side by side (`coxswain scheduler` beside `up`'s) and pods naming an unknown
//! scheduler.
use std::process::{Child, Command, Stdio};

use coxswain_client::Client;
use coxswain_test_support::bin;

use crate::common::*;

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_side_by_side_and_unknown_scheduler_names() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("second.yaml");
    std::fs::write(
        &cfg,
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: my-scheduler\n  plugins:\n    score:\n      disabled: [{name: \"*\"}]\n",
    )
    .unwrap();
    let c = start_up(&[]);
    let client = Client::connect(&c.url()).await.expect("client");
    seed_nodes(&client).await;
    let mut child = Command::new(bin("coxswain"))
        .args(["scheduler", "--server", &c.url(), "--config"])
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("coxswain scheduler");
    let stdout = child.stdout.take().unwrap();
    let second = Proc(child);
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut l = String::new();
        std::io::BufReader::new(stdout).read_line(&mut l).ok();
        l
    })
    .await
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("coxswain scheduler ready grpc=")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("ready line")
        .to_string();

    // Nobody serves "nobody": created first, it must stay untouched.
    create(&c, "two", &bare_pod("two", "orphan", "nobody"));
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("two", "mine", "my-scheduler")),
    )
    .success();
    c.coxctl_in(
        &["create", "-f", "-"],
        None,
        Some(&bare_pod("two", "theirs", "default-scheduler")),
    )
    .success();
    wait_bound(&client, "two", "mine").await;
    wait_bound(&client, "two", "theirs").await;
    let ev = wait_event(&client, "two", "mine", "Scheduled").await;
    assert_eq!(
        ev.source.as_ref().map(|s| s.component.as_str()),
        Some("my-scheduler")
    );
    let ev = wait_event(&client, "two", "theirs", "Scheduled").await;
    assert_eq!(
        ev.source.as_ref().map(|s| s.component.as_str()),
        Some("default-scheduler")
    );
    // Both schedulers have seen "orphan" (created before the others) and left it alone.
    let orphan = pod(&client, "two", "orphan").await;
    assert!(node_of(&orphan).is_empty());
    assert!(scheduled_condition(&orphan).is_none(), "{orphan:?}");
    assert!(events(&client, "two", "orphan").await.is_empty());

    // The second scheduler's own Scheduler service.
    let out = c
        .coxctl(&["schedule", "profiles", "--scheduler", &addr])
        .success()
        .stdout;
    assert!(out.contains("Profile: my-scheduler"), "{out}");
    assert!(out.contains("score: -"), "{out}");
    let out = c
        .coxctl(&[
            "schedule",
            "explain",
            "mine",
            "-n",
            "two",
            "--scheduler",
            &addr,
        ])
        .success()
        .stdout;
    assert!(out.contains("Scheduler:  my-scheduler"), "{out}");
    // The main server's scheduler does not serve my-scheduler.
    let out = c
        .coxctl(&["schedule", "explain", "mine", "-n", "two"])
        .failure();
    assert!(
        out.stderr.contains("no profile \"my-scheduler\""),
        "{}",
        out.stderr
    );
    drop(second);
}
