use super::*;
use coxswain_api::v1::{ObjectMeta, OwnerReference, Pod, PodSpec};

#[test]
fn relists_ask_not_older_than_the_cache_then_the_most_recent_state() {
    assert_eq!(relist_resource_version("", false), "");
    assert_eq!(relist_resource_version("41", false), "41");
    assert_eq!(relist_resource_version("41", true), "");
    assert_eq!(relist_resource_version("", true), "");
    // A list older than asked is refused; the same, newer, or unchecked ones are not.
    assert!(older_than_asked("41", "40"));
    assert!(older_than_asked("41", ""));
    assert!(!older_than_asked("41", "41"));
    assert!(!older_than_asked("41", "57"));
    assert!(!older_than_asked("", "3"));
    assert!(!older_than_asked("0", "3"));
}
use std::sync::atomic::{AtomicUsize, Ordering};

fn pod(name: &str, node: &str, owner: &str, rv: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            resource_version: rv.into(),
            owner_references: vec![OwnerReference {
                uid: owner.into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        spec: Some(PodSpec {
            node_name: node.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node_of(p: &Pod) -> Vec<String> {
    vec![p
        .spec
        .as_ref()
        .map(|s| s.node_name.clone())
        .unwrap_or_default()]
}

#[tokio::test]
async fn indexes_follow_updates_and_deletes() {
    let cache = Informer::<Pod>::detached().index("node", node_of).start();
    cache.apply(WatchEvent::Added(pod("a", "n1", "rs1", "1")));
    cache.apply(WatchEvent::Added(pod("b", "n1", "rs2", "2")));
    assert_eq!(cache.by_index("node", "n1").len(), 2);
    assert_eq!(cache.by_owner("rs1").len(), 1);
    cache.apply(WatchEvent::Modified(pod("a", "n2", "rs1", "3")));
    assert_eq!(cache.by_index("node", "n1").len(), 1);
    assert_eq!(cache.by_index("node", "n2").len(), 1);
    cache.apply(WatchEvent::Deleted(pod("b", "n1", "rs2", "4")));
    assert_eq!(cache.count_index("node", "n1"), 0);
    assert!(cache.by_owner("rs2").is_empty());
    assert_eq!(cache.list_namespace("default").len(), 1);
    assert_eq!(cache.resource_version(), "4");
}

#[tokio::test]
async fn multi_valued_indexes_keep_unchanged_values_and_move_changed_ones() {
    let labels = |p: &Pod| -> Vec<String> {
        let m = p.metadata();
        m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
    };
    let with = |rv: &str, l: &[(&str, &str)]| {
        let mut p = pod("a", "n1", "rs1", rv);
        if let Some(m) = p.metadata.as_mut() {
            m.labels = l
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
        p
    };
    let cache = Informer::<Pod>::detached().index("label", labels).start();
    cache.apply(WatchEvent::Added(with(
        "1",
        &[("app", "x"), ("tier", "web")],
    )));
    // An update that changes no indexed value (a status write) keeps every entry.
    cache.apply(WatchEvent::Modified(with(
        "2",
        &[("app", "x"), ("tier", "web")],
    )));
    assert_eq!(cache.count_index("label", "app=x"), 1);
    assert_eq!(cache.count_index("label", "tier=web"), 1);
    assert_eq!(cache.by_owner("rs1").len(), 1);
    // One value changes, one stays, one is new.
    cache.apply(WatchEvent::Modified(with(
        "3",
        &[("app", "x"), ("tier", "db"), ("v", "2")],
    )));
    assert_eq!(cache.count_index("label", "app=x"), 1);
    assert_eq!(cache.count_index("label", "tier=web"), 0);
    assert_eq!(cache.count_index("label", "tier=db"), 1);
    assert_eq!(cache.count_index("label", "v=2"), 1);
    cache.apply(WatchEvent::Deleted(with("4", &[])));
    for v in ["app=x", "tier=db", "v=2"] {
        assert_eq!(cache.count_index("label", v), 0, "{v}");
    }
    assert!(cache.by_owner("rs1").is_empty());
}

#[tokio::test]
async fn relist_emits_only_the_differences_then_synced() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let cache = Informer::<Pod>::detached()
        .on_event(move |e: &Event<Pod>| {
            let tag = match e {
                Event::Added(p) => format!("+{}", p.metadata().name),
                Event::Modified { new, .. } => format!("~{}", new.metadata().name),
                Event::Deleted(p) => format!("-{}", p.metadata().name),
                Event::Synced => "synced".into(),
            };
            s.lock().unwrap().push(tag);
        })
        .start();
    assert!(!cache.is_synced());
    cache.replace(
        vec![pod("a", "", "", "1"), pod("b", "", "", "2")],
        "2".into(),
    );
    assert!(cache.is_synced());
    cache.replace(
        vec![pod("a", "", "", "1"), pod("c", "", "", "5")],
        "5".into(),
    );
    let mut got = seen.lock().unwrap().clone();
    got[..2].sort();
    got[3..5].sort();
    assert_eq!(got, ["+a", "+b", "synced", "+c", "-b", "synced"]);
    assert_eq!(cache.len(), 2);
}

#[tokio::test]
async fn transform_applies_to_list_watch_and_deletes_before_the_cache() {
    use coxswain_api::v1::PodStatus;
    let with_status = |name: &str, rv: &str| Pod {
        status: Some(PodStatus {
            phase: "Running".into(),
            ..Default::default()
        }),
        ..pod(name, "n1", "rs1", rv)
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let cache = Informer::<Pod>::detached()
        .index("node", node_of)
        .transform(move |mut p: Pod| {
            c.fetch_add(1, Ordering::SeqCst);
            p.status = None;
            if let Some(s) = p.spec.as_mut() {
                s.node_name = format!("{}-t", s.node_name);
            }
            p
        })
        .on_event(move |e: &Event<Pod>| {
            if let Some(o) = e.object() {
                s.lock().unwrap().push(o.status.is_none());
            }
        })
        .start();
    cache.replace(
        vec![with_status("a", "1"), with_status("b", "2")],
        "2".into(),
    );
    cache.apply(WatchEvent::Modified(with_status("a", "3")));
    assert!(cache.get("default", "a").unwrap().status.is_none());
    // Indexes see the transformed object.
    assert_eq!(cache.count_index("node", "n1-t"), 2);
    assert_eq!(cache.count_index("node", "n1"), 0);
    cache.apply(WatchEvent::Deleted(with_status("b", "4")));
    // A relist transforms only what changed: "a" at resourceVersion 3 is kept as it is.
    let before = calls.load(Ordering::SeqCst);
    cache.replace(
        vec![with_status("a", "3"), with_status("c", "5")],
        "5".into(),
    );
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);
    assert!(cache.get("default", "c").unwrap().status.is_none());
    assert_eq!(cache.resource_version(), "5");
    // Every handler call saw a transformed object (adds, the update, the delete).
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|t| *t));
}

#[tokio::test]
async fn handlers_run_after_the_cache_changed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let cache_slot: Arc<Mutex<Option<Cache<Pod>>>> = Arc::new(Mutex::new(None));
    let (h, slot) = (hits.clone(), cache_slot.clone());
    let cache = Informer::<Pod>::detached()
        .on_event(move |e: &Event<Pod>| {
            if let (Event::Added(p), Some(c)) = (e, slot.lock().unwrap().as_ref()) {
                assert!(c.get("default", &p.metadata().name).is_some());
                h.fetch_add(1, Ordering::SeqCst);
            }
        })
        .start();
    *cache_slot.lock().unwrap() = Some(cache.clone());
    cache.apply(WatchEvent::Added(pod("a", "", "", "1")));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
