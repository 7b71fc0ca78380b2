use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use coxswain_api::v1::{ObjectMeta, Pod, PodSpec};
use coxswain_api::Resource;
use coxswain_test_support::objects::node_index as node_of;

use super::*;
use crate::client::WatchEvent;
use crate::informer::Event;

fn pod(name: &str, node: &str, rv: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            resource_version: rv.into(),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            node_name: node.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A client that is never dialled (lazy): the factory below is never started.
fn factory() -> SharedInformers {
    SharedInformers::new(Client::lazy("http://127.0.0.1:1").unwrap())
}

fn tags(log: &Arc<Mutex<Vec<String>>>, who: &'static str) -> impl Fn(&Event<Pod>) {
    let log = log.clone();
    move |e: &Event<Pod>| {
        let tag = match e {
            Event::Added(p) => format!("{who}+{}", p.metadata().name),
            Event::Modified { new, .. } => format!("{who}~{}", new.metadata().name),
            Event::Deleted(p) => format!("{who}-{}", p.metadata().name),
            Event::Synced => format!("{who}:synced"),
        };
        log.lock().unwrap().push(tag);
    }
}

#[tokio::test]
async fn components_share_one_cache_with_every_index_and_handlers_in_order() {
    let f = factory();
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = f
        .informer::<Pod>()
        .index("node", node_of)
        .on_event(tags(&log, "a"))
        .start();
    let b = f
        .informer::<Pod>()
        .index("by-name", |p: &Pod| vec![p.metadata().name.clone()])
        .on_event(tags(&log, "b"))
        .start();
    assert_eq!(f.len(), 1);
    a.replace(vec![pod("x", "n1", "1")], "1".into());
    b.apply(WatchEvent::Modified(pod("x", "n2", "2")));
    // One object, the same allocation, seen through either handle.
    assert!(Arc::ptr_eq(
        &a.get("default", "x").unwrap(),
        &b.get("default", "x").unwrap()
    ));
    // Both components' indexes, whichever handle asks.
    assert_eq!(b.count_index("node", "n2"), 1);
    assert_eq!(a.count_index("node", "n1"), 0);
    assert_eq!(a.count_index("by-name", "x"), 1);
    assert_eq!(
        *log.lock().unwrap(),
        ["a+x", "b+x", "a:synced", "b:synced", "a~x", "b~x"]
    );
}

#[tokio::test]
async fn a_late_component_gets_what_the_cache_holds_then_synced_then_changes() {
    let f = factory();
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = f.informer::<Pod>().start();
    a.replace(vec![pod("x", "n1", "1"), pod("y", "", "2")], "2".into());
    let b = f
        .informer::<Pod>()
        .index("node", node_of)
        .on_event(tags(&log, "b"))
        .start();
    // The index is built over what was already there.
    assert_eq!(b.count_index("node", "n1"), 1);
    a.apply(WatchEvent::Deleted(pod("x", "n1", "3")));
    let mut got = log.lock().unwrap().clone();
    got[..2].sort();
    assert_eq!(got, ["b+x", "b+y", "b:synced", "b-x"]);
    assert_eq!(b.count_index("node", "n1"), 0);
}

#[tokio::test]
async fn the_first_registration_of_an_index_name_defines_it() {
    let f = factory();
    let a = f.informer::<Pod>().index("k", node_of).start();
    let _b = f
        .informer::<Pod>()
        .index("k", |p: &Pod| vec![p.metadata().name.clone()])
        .start();
    a.apply(WatchEvent::Added(pod("x", "n1", "1")));
    assert_eq!(a.count_index("k", "n1"), 1);
    assert_eq!(a.count_index("k", "x"), 0);
}

#[tokio::test]
async fn a_stopped_component_gets_no_more_events_and_the_others_keep_theirs() {
    let f = factory();
    let hits = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let counter = |i: usize| {
        let h = hits[i].clone();
        move |_: &Event<Pod>| {
            h.fetch_add(1, Ordering::SeqCst);
        }
    };
    let a = f.informer::<Pod>().on_event(counter(0)).start();
    let b = f.informer::<Pod>().on_event(counter(1)).start();
    a.apply(WatchEvent::Added(pod("x", "", "1")));
    a.stop();
    // A second stop of the same component (a clone of its handle) changes nothing.
    a.clone().stop();
    b.apply(WatchEvent::Added(pod("y", "", "2")));
    assert_eq!(hits[0].load(Ordering::SeqCst), 1);
    assert_eq!(hits[1].load(Ordering::SeqCst), 2);
    // The cache is still one: the stopped component's handle reads it.
    assert_eq!(a.len(), 2);
}

#[tokio::test]
async fn a_namespace_selector_or_transform_gets_an_informer_of_its_own() {
    let f = factory();
    let shared = f.informer::<Pod>().start();
    let own = [
        f.informer::<Pod>().namespace("default").start(),
        f.informer::<Pod>().label_selector("app=x").start(),
        f.informer::<Pod>()
            .field_selector("spec.nodeName=n1")
            .start(),
        f.informer::<Pod>().transform(|p| p).start(),
    ];
    shared.apply(WatchEvent::Added(pod("x", "", "1")));
    for c in &own {
        assert!(c.is_empty());
        c.stop();
    }
    assert_eq!(shared.len(), 1);
    assert_eq!(f.len(), 1);
}

#[tokio::test]
async fn kinds_get_one_informer_each() {
    use coxswain_api::v1::Node;
    let f = factory();
    let _p = f.informer::<Pod>().start();
    let _n = f.informer::<Node>().start();
    let _p2 = f.informer::<Pod>().start();
    assert_eq!(f.len(), 2);
}
