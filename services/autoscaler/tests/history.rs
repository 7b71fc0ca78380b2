//! Autoscaler.History keeps the last `--history` decisions per HPA (100 by default), oldest first,
//! and answers at most the `limit` asked for.
mod common;

use coxswain_api::v1::Decision;

fn decision(i: i32) -> Decision {
    Decision {
        namespace: "default".into(),
        name: "web".into(),
        current_replicas: i,
        ..Default::default()
    }
}

#[tokio::test]
async fn history_keeps_the_last_decisions_up_to_its_cap() {
    let engine = common::engine();
    assert_eq!(engine.config.history, 100, "upstream-like default cap");
    for i in 0..150 {
        engine.push_history("default/web", decision(i));
    }
    engine.push_history("default/other", decision(-1));
    let all = engine.history("default/web", usize::MAX);
    let replicas: Vec<i32> = all.iter().map(|d| d.current_replicas).collect();
    assert_eq!(
        replicas,
        (50..150).collect::<Vec<_>>(),
        "the newest 100, oldest first"
    );
    let last3: Vec<i32> = engine
        .history("default/web", 3)
        .iter()
        .map(|d| d.current_replicas)
        .collect();
    assert_eq!(last3, vec![147, 148, 149]);
    assert_eq!(engine.history("default/other", 10).len(), 1, "per HPA");
    assert!(engine.history("default/none", 10).is_empty());
}
