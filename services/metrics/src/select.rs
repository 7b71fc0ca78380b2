//! Label-selector lookups over an informer cache without scanning the namespace: an index of
//! every object under each of its `namespace, key, value` label pairs, and [`select`], which
//! reads the smallest bucket one of the selector's equality (`=`, `in`) requirements names and
//! checks the rest. A selector without such a requirement scans the namespace, as a lister does.
//! Shared by the metrics service and the HPA controller, which both ask "the pods of this
//! namespace under this selector" once per request or reconcile.
use std::sync::Arc;

use coxswain_api::selector::{LabelSelector, Op};
use coxswain_api::Resource;
use coxswain_client::{Cache, Informer};

/// The index's name.
pub const LABELS_INDEX: &str = "labels";

fn bucket(namespace: &str, key: &str, value: &str) -> String {
    format!("{namespace}\0{key}\0{value}")
}

/// The index values of one object: one per label.
pub fn label_values<R: Resource>(o: &R) -> Vec<String> {
    let m = o.metadata();
    m.labels
        .iter()
        .map(|(k, v)| bucket(&m.namespace, k, v))
        .collect()
}

/// Add the label index to an informer.
pub fn with_label_index<R: Resource + Send + Sync + 'static>(i: Informer<R>) -> Informer<R> {
    i.index(LABELS_INDEX, label_values::<R>)
}

/// The objects of `namespace` (all namespaces when empty) that `sel` selects. The cache must
/// carry [`LABELS_INDEX`] (else every lookup scans).
pub fn select<R: Resource + Send + Sync + 'static>(
    cache: &Cache<R>,
    namespace: &str,
    sel: &LabelSelector,
) -> Vec<Arc<R>> {
    if sel.nothing {
        return Vec::new();
    }
    let matches = |o: &Arc<R>| sel.matches(&o.metadata().labels);
    if namespace.is_empty() {
        let all = cache.list();
        return all.into_iter().filter(matches).collect();
    }
    // The equality requirement with the fewest candidates.
    let best = sel
        .requirements
        .iter()
        .filter(|r| matches!(r.op, Op::Eq | Op::In))
        .map(|r| {
            let n: usize = r
                .values
                .iter()
                .map(|v| cache.count_index(LABELS_INDEX, &bucket(namespace, &r.key, v)))
                .sum();
            (n, r)
        })
        .min_by_key(|(n, _)| *n);
    match best {
        Some((_, r)) => r
            .values
            .iter()
            .flat_map(|v| cache.by_index(LABELS_INDEX, &bucket(namespace, &r.key, v)))
            .filter(matches)
            .collect(),
        None => cache
            .list_namespace(namespace)
            .into_iter()
            .filter(matches)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::{ObjectMeta, Pod};
    use coxswain_client::WatchEvent;

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                namespace: ns.into(),
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn names(v: Vec<Arc<Pod>>) -> Vec<String> {
        let mut n: Vec<String> = v
            .iter()
            .map(|p| p.metadata.as_ref().unwrap().name.clone())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn selects_through_the_index_as_a_scan_would() {
        let cache = with_label_index(Informer::<Pod>::detached()).start();
        cache.apply(WatchEvent::Added(pod(
            "a",
            "p1",
            &[("app", "x"), ("t", "1")],
        )));
        cache.apply(WatchEvent::Added(pod(
            "a",
            "p2",
            &[("app", "x"), ("t", "2")],
        )));
        cache.apply(WatchEvent::Added(pod("a", "p3", &[("app", "y")])));
        cache.apply(WatchEvent::Added(pod("b", "p4", &[("app", "x")])));
        let s = |t: &str| LabelSelector::parse(t).unwrap();
        assert_eq!(names(select(&cache, "a", &s("app=x"))), ["p1", "p2"]);
        assert_eq!(names(select(&cache, "a", &s("app=x,t!=2"))), ["p1"]);
        assert_eq!(
            names(select(&cache, "a", &s("app in (x,y)"))),
            ["p1", "p2", "p3"]
        );
        assert_eq!(names(select(&cache, "a", &s("t"))), ["p1", "p2"]);
        assert_eq!(names(select(&cache, "a", &s(""))), ["p1", "p2", "p3"]);
        assert_eq!(names(select(&cache, "", &s("app=x"))), ["p1", "p2", "p4"]);
        assert!(select(&cache, "a", &LabelSelector::nothing()).is_empty());
        // A relabelled pod moves between buckets.
        cache.apply(WatchEvent::Modified(pod("a", "p1", &[("app", "y")])));
        assert_eq!(names(select(&cache, "a", &s("app=x"))), ["p2"]);
        assert_eq!(names(select(&cache, "a", &s("app=y"))), ["p1", "p3"]);
        cache.apply(WatchEvent::Deleted(pod("a", "p3", &[("app", "y")])));
        assert_eq!(names(select(&cache, "a", &s("app=y"))), ["p1"]);
    }
}
